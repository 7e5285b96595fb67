/* diag_console.h — hq-diag's terminal side: console lines (coloured on a TTY unless NO_COLOR),
 * the timestamped log file, the progress bar, and the questions asked on the terminal. */
#ifndef HQ_CLI_DIAG_CONSOLE_H
#define HQ_CLI_DIAG_CONSOLE_H

#include <stdbool.h>
#include <stdio.h>

#include "common_cli.h"
#include "hq/diag.h"

typedef struct diag_console {
    FILE *out;             /* console (stdout) */
    FILE *log;             /* log file, NULL when none */
    FILE *in;              /* answers (stdin) when interactive */
    FILE *prompt;          /* where questions are written (stdout) */
    bool colour;           /* ANSI colours on `out` */
    bool colour_err;       /* ANSI colours on stderr ("[error] Model is not quantized") */
    hq_cli_progress_t bar; /* the progress bar on stderr (common_cli.h) */
    bool input_closed;     /* EOF seen: further questions take their defaults */
} diag_console_t;

/* Sets up colour and progress from the terminal and the environment; `quiet` turns the progress
 * bar off. */
void diag_console_init(diag_console_t *console, FILE *out, FILE *log, bool quiet);
/* hq_diag_event_fn: prints and logs one event. */
void diag_console_event(void *user, const hq_diag_event_t *event);
/* hq_diag_pick_fn on the terminal: asks for line numbers ("1 3", "1-3", Enter for none) until
 * they are valid; takes none at end of input. */
void diag_console_pick(void *user, const char *inspector, int count, bool *accepted);
/* hq_diag_ask_fn: asks on the terminal until the answer is one of the choices. */
int diag_console_ask(void *user, const char *inspector, const char *question,
                     const char *const *choices, int count, int default_index);
/* A host line: "[level] text" on the console (stderr for errors when `to_stderr`) and the log. */
void diag_console_line(diag_console_t *console, hq_diag_level_t level, bool to_stderr,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A line for the log file only. */
void diag_console_log(diag_console_t *console, const char *inspector, const char *level,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
