/* script_internal.h — what the .alls parser, printer and script object share inside libhq:
 * the script struct, value/command cleanup, structural equality and the lexical rules that the
 * printer needs to check that what it prints will parse back. Prefix hqi_. */
#ifndef HQ_CORE_SCRIPT_INTERNAL_H
#define HQ_CORE_SCRIPT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "hq/script.h"

/* Deepest list nesting a script may use (`[[[...]]]`); deeper input is a parse error. */
#define HQI_SCRIPT_MAX_DEPTH 32
/* Most arguments one command may have (keeps the duplicate-keyword check cheap). */
#define HQI_SCRIPT_MAX_ARGS 1024
/* Largest script text hq_script_parse accepts. */
#define HQI_SCRIPT_MAX_BYTES ((size_t)64 << 20)

struct hq_script {
    char *name;   /* file name used in error messages */
    int count;    /* commands in use */
    int capacity; /* commands allocated */
    hq_command_t *commands;
};

/* Parses one line (no '\n' inside; trailing '\r's already removed) into *command, which the
 * caller then owns (hqi_command_clear). Errors read "<name>:<line>:<column>: <what>". */
hq_status_t hqi_script_parse_line(const char *text, size_t len, const char *name, int line,
                                  hq_command_t *command, hq_error_t *err);

/* Frees everything a value / command owns and zeroes it. */
void hqi_value_clear(hq_value_t *value);
void hqi_command_clear(hq_command_t *command);

/* Structural equality: same kinds, texts, numbers, quotes, keys, results, names, comments and
 * line numbers. */
bool hqi_value_equal(const hq_value_t *a, const hq_value_t *b);
bool hqi_command_equal(const hq_command_t *a, const hq_command_t *b);

/* Lexical classes shared by the tokenizer and the printer's checks. */
bool hqi_script_is_ident_start(unsigned char c);
bool hqi_script_is_ident_char(unsigned char c);
bool hqi_script_is_glob_char(unsigned char c);
/* True when `text` (NUL-terminated) lexes as exactly one token of `kind` (HQ_VALUE_IDENT or
 * HQ_VALUE_NUMBER): the printer's check that a value's text parses back as itself. */
bool hqi_script_is_single_token(const char *text, hq_value_kind_t kind);

#endif
