/* common_cli.h — helpers shared by the `hq` and `hq-diag` mains: failure reporting, option
 * tables that drive both --help and the man-page consistency test, the end of an option loop,
 * the up-front check of output paths, derived file names, the one-line summary of a tensor and
 * the progress bar. */
#ifndef HQ_CLI_COMMON_H
#define HQ_CLI_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "hq/hq.h"

/* Exit statuses shared by every hq tool. */
enum { HQ_EXIT_OK = 0, HQ_EXIT_FINDINGS = 1, HQ_EXIT_FAILURE = 2 };

/* Prints "<program>: <message>" on stderr (the detail from err, else the status string). */
void hq_cli_report(const char *program, hq_status_t status, const hq_error_t *err);

/* Prints "<program>: <message>" on stderr, then " '<arg>'" when arg is not NULL; returns
 * HQ_EXIT_FAILURE, so that a command's argument parsing can `return hq_cli_fail(...)`. */
int hq_cli_fail(const char *program, const char *message, const char *arg);

/* One option of a command, as --help prints it and the man page documents it. */
typedef struct hq_cli_option {
    const char *flags;    /* "-d, --dataset PATH" */
    const char *help;     /* one line */
} hq_cli_option_t;

/* Prints the usage line, the option table and a trailing note to `out`. */
void hq_cli_print_options(FILE *out, const hq_cli_option_t *options);

/* Parses a whole decimal integer in [lo, hi] into *out; false (and *out untouched) when the text
 * is empty, has anything after the digits, or is out of range. */
bool hq_cli_parse_int(const char *text, long long lo, long long hi, long long *out);

/* Takes a command-line word that no option of the command claimed: an option ("-x", where a lone
 * "-" is a positional) is unknown; a positional is stored in *positional, unless one was already
 * there ("one <what> at a time", `what` being e.g. "archive"). Returns HQ_EXIT_OK, or
 * HQ_EXIT_FAILURE after saying why on stderr (hq_cli_fail). */
int hq_cli_positional(const char *program, const char *what, const char *word,
                      const char **positional);

/* Checks, before a command does any work, that an output file can be written at `path`: the path
 * is not empty, does not end in '/', is not an existing folder, and its folder exists, is a folder
 * and may be written to (outputs are written beside their final name and renamed into place, so
 * the folder's permission is what counts). `option` names where the path came from ("-o",
 * "--json", "output" for a default name). Returns HQ_EXIT_OK, or prints one line
 * "<program>: <option> <path>: <what is wrong>" on stderr and returns HQ_EXIT_FAILURE. */
int hq_cli_check_output_file(const char *program, const char *option, const char *path);

/* The same check for a folder that will receive files: `path` exists, is a folder and may be
 * written to. */
int hq_cli_check_output_folder(const char *program, const char *option, const char *path);

/* Whether `text` ends with `suffix` (a file name's extension, say). */
bool hq_cli_has_suffix(const char *text, const char *suffix);

/* "<dir>/<stem><suffix>" for "<dir>/<stem>.<ext>" (the path itself plus suffix when its last
 * component has no extension), or NULL when out of memory. The caller frees it. */
char *hq_cli_derived_name(const char *path, const char *suffix);

/* Prints one line on stdout: `name`, `kind` ("output", "tap"), the shape, and the minimum,
 * maximum and mean of the float32 tensor `t` (NaN values are left out of the minimum and maximum;
 * an empty tensor shows 0 for all three). */
void hq_cli_print_tensor_summary(const char *name, const char *kind, const hq_tensor_t *t);

/* The progress bar of the long passes, on stderr: "\r<stage> [####......] done/total pct ETA".
 * Drawn only when stderr is a terminal and --quiet was not given, so that piped or redirected
 * runs write exactly what they wrote without it. */
typedef struct hq_cli_progress {
    bool enabled;   /* stderr is a terminal and --quiet was not given */
    bool open;      /* a bar line is on screen (no newline yet) */
    char stage[96]; /* the pass drawn */
    double started; /* monotonic seconds of the stage's first report */
    int64_t first;  /* units done at that report: the rate is measured from there */
    double drawn;   /* monotonic seconds of the last redraw (redraws are 10 a second at most) */
    int width;      /* characters of the line on screen, which a shorter redraw blanks out */
} hq_cli_progress_t;

/* The --quiet option row every command's table carries; hq_cli_is_quiet recognizes it. */
#define HQ_CLI_QUIET_OPTION {"-q, --quiet", "no progress bar (drawn on stderr only on a terminal)"}
bool hq_cli_is_quiet(const char *word);

void hq_cli_progress_init(hq_cli_progress_t *bar, bool quiet);
/* hq_progress_fn with `user` a hq_cli_progress_t: redraws the bar; a new stage starts a new line,
 * done == total ends it. */
void hq_cli_progress(void *user, const char *stage, int64_t done, int64_t total);
/* Ends an open bar line (before other output goes to the terminal, or after a failed pass). */
void hq_cli_progress_end(hq_cli_progress_t *bar);

#endif
