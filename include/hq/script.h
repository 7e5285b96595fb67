/* script.h — the model script (`.alls`): parsing, printing and layer-name globs.
 *
 * Grammar (one command per line, continued over further lines while a '(' or '[' is open; `#`
 * starts a comment):
 *   line    := [target {',' target} '='] ident '(' [arg {',' arg}] ')' [comment]
 *   target  := ident | '{' [glob-text] '}'   e.g. `{} = defuse_block(matmul1, defuse_count=4)`
 *   arg     := value | ident '=' value
 *   value   := number | ident | string | glob | '[' [value {',' value}] ']'
 *   glob    := '{' glob-text '}'            e.g. {conv*}, {conv1, conv2}
 * Every accepted line prints back to text that parses to the same command. */
#ifndef HQ_SCRIPT_H
#define HQ_SCRIPT_H

#include <stdbool.h>

#include "hq/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hq_value_kind {
    HQ_VALUE_NUMBER = 0,   /* `text` keeps the literal as written, `number` its value */
    HQ_VALUE_IDENT,        /* bare identifier: `text` (layer names, keywords like relu, enabled) */
    HQ_VALUE_STRING,       /* quoted string: `text` unescaped, `quote` the quote char used */
    HQ_VALUE_GLOB,         /* {pattern}: `text` is the pattern between the braces */
    HQ_VALUE_LIST,         /* [a, b, ...]: `items` */
} hq_value_kind_t;

typedef struct hq_value {
    hq_value_kind_t kind;
    char *text;                 /* NUMBER/IDENT/STRING/GLOB; NULL for LIST */
    double number;              /* NUMBER */
    char quote;                 /* STRING: '"' or '\'' */
    int item_count;             /* LIST */
    struct hq_value *items;     /* LIST */
} hq_value_t;

typedef struct hq_arg {
    char *key;                  /* NULL for a positional argument */
    hq_value_t value;
} hq_arg_t;

/* One command. Blank and comment-only lines are kept as commands with name == NULL so that the
 * script prints back with its comments. */
typedef struct hq_command {
    int line;                   /* 1-based source line (the first, for a multi-line command) */
    int result_count;
    char **results;             /* `a, b = cmd(...)` -> {"a", "b"}; a brace target keeps its
                                   braces: `{} = cmd(...)` -> {"{}"} */
    char *name;                 /* "quantization_param", or NULL for blank/comment lines */
    int arg_count;
    hq_arg_t *args;
    char *comment;              /* trailing "# ..." text without the '#', or NULL */
} hq_command_t;

typedef struct hq_script hq_script_t;

/* Parses script text. `name` (file name) prefixes errors: "model.alls:3:17: expected ')'".
 * The caller owns *out (hq_script_destroy). */
HQ_API hq_status_t hq_script_parse(const char *text, size_t len, const char *name,
                                   hq_script_t **out, hq_error_t *err);
HQ_API hq_status_t hq_script_create(hq_script_t **out, hq_error_t *err);
HQ_API void hq_script_destroy(hq_script_t *script);

HQ_API int hq_script_command_count(const hq_script_t *script);
/* Command by index (owned by the script) or NULL. */
HQ_API const hq_command_t *hq_script_command(const hq_script_t *script, int index);
/* Parses one line and appends it. */
HQ_API hq_status_t hq_script_append_line(hq_script_t *script, const char *line, hq_error_t *err);
/* Removes the command at `index`. */
HQ_API hq_status_t hq_script_remove(hq_script_t *script, int index, hq_error_t *err);

/* Prints the script as text, one command per line in canonical spacing (`a = cmd(x, k=v)`).
 * The caller owns *text (free()). */
HQ_API hq_status_t hq_script_print(const hq_script_t *script, char **text, hq_error_t *err);
/* Prints one command (no newline). The caller owns *text (free()). */
HQ_API hq_status_t hq_command_print(const hq_command_t *command, char **text, hq_error_t *err);

/* Keyword argument by key, or NULL. */
HQ_API const hq_value_t *hq_command_kwarg(const hq_command_t *command, const char *key);
/* i-th positional argument, or NULL. */
HQ_API const hq_value_t *hq_command_positional(const hq_command_t *command, int index);

/* Matches a layer name against a pattern: `*` any run, `?` one char, `{a,b}` alternatives,
 * `[abc]` a class. Patterns without a '/' match the bare name ("conv3" in "net/conv3"). */
HQ_API bool hq_glob_match(const char *pattern, const char *layer_name);

#ifdef __cplusplus
}
#endif
#endif
