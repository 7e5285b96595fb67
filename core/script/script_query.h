/* script_query.h — what other parts of libhq may read of a script beyond the public API in
 * hq/script.h: the script's name and the model-script vocabulary (vocabulary.c), which says
 * which commands, first words and keys Hailo's model scripts use and who reads each command.
 * Internal to libhq; prefix hqi_. */
#ifndef HQ_CORE_SCRIPT_QUERY_H
#define HQ_CORE_SCRIPT_QUERY_H

#include <stdbool.h>

#include "hq/script.h"

/* The name the script was parsed under (the file name its error messages start with), owned by
 * the script; NULL for a NULL script. */
const char *hqi_script_name(const hq_script_t *script);

/* ---- the vocabulary ----------------------------------------------------------------------- */

/* Who reads a command. */
typedef enum hqi_script_side {
    HQI_SCRIPT_QUANTIZER = 0, /* model modification and quantization: read when the model is
                                 optimized (hq optimize) */
    HQI_SCRIPT_COMPILER,      /* resources, allocation, contexts, buffers: read by the compiler
                                 only; hq keeps them verbatim */
} hqi_script_side_t;

/* A first positional word a quantizer command takes (an algorithm, a section) and its keys. */
typedef struct hqi_script_word {
    const char *word;
    const char *const *keys; /* NULL-terminated */
} hqi_script_word_t;

/* One command name of the vocabulary. */
typedef struct hqi_script_spec {
    const char *name;
    hqi_script_side_t side;
    /* Keys the command takes whatever its first word, NULL-terminated. NULL together with
     * `words` NULL: the keys are not checked (the command's key set is not recorded here). */
    const char *const *keys;
    /* First positional words, ending with a {NULL} row; NULL when the first argument is no
     * fixed word (a layer, a list of numbers). A known word adds its keys to `keys`. */
    const hqi_script_word_t *words;
    const char *word_noun; /* what messages call the first word ("algorithm"), or NULL */
} hqi_script_spec_t;

/* The row of command `name`, or NULL when the vocabulary does not know it. A name of the form
 * `object.method` (`context_0.place`, a method of a result) is looked up by its method. */
const hqi_script_spec_t *hqi_script_spec(const char *name);
/* Every row, in table order; *count gets their number. */
const hqi_script_spec_t *hqi_script_specs(int *count);

/* Edit distance of two names (optimal string alignment: insertions, deletions, substitutions
 * and swaps of two adjacent characters count one each). */
int hqi_script_edit_distance(const char *a, const char *b);
/* The entry of the NULL-terminated list `known` that `name` is a near miss of: `name` is not in
 * the list and lies within edit distance 2 of the entry, and the distance is less than half of
 * `name`'s length; the nearest such entry (the first of equals), or NULL. */
const char *hqi_script_near_miss(const char *name, const char *const *known);

/* Called for each name a check finds far from every known one (kept: a newer compiler may know
 * it). `what` reads "unknown command 'x'", "<command>: unknown key 'k'" or "<command>: unknown
 * algorithm 'w'"; it is valid during the call only. */
typedef void (*hqi_script_unknown_fn)(void *user, const hq_command_t *command, const char *what);

/* Checks a command's name, its first word and its keys against the vocabulary. A near miss of a
 * known name (hqi_script_near_miss) is an error HQ_ERR_INVALID reading
 *   "<script_name>:<line>: unknown command 'x' (did you mean 'y'?)"
 *   "<script_name>:<line>: <command>: unknown key 'k' (did you mean 'key'?)"
 *   "<script_name>:<line>: <command>: unknown <noun> 'w' (did you mean 'word'?)"
 * Any other unknown name goes to `unknown` (may be NULL) and is no error; the first word and
 * keys of an unknown command, or of an unknown first word, are not checked. *spec (may be NULL)
 * gets the command's row or NULL. Comment-only lines (name NULL) pass. */
hq_status_t hqi_script_check_command(const hq_command_t *command, const char *script_name,
                                     const hqi_script_spec_t **spec, hqi_script_unknown_fn unknown,
                                     void *user, hq_error_t *err);
/* True when the vocabulary records the keys `command` (whose row is `spec`) takes and `key` is
 * not one of them: hqi_script_check_command reported it as unknown. */
bool hqi_script_key_unknown(const hqi_script_spec_t *spec, const hq_command_t *command,
                            const char *key);
/* True when `spec` lists first words and the command's first word is not one of them:
 * hqi_script_check_command reported it as unknown. */
bool hqi_script_word_unknown(const hqi_script_spec_t *spec, const hq_command_t *command);

#endif
