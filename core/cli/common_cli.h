/* common_cli.h — helpers shared by the `hq` and `hq-diag` mains: failure reporting and option
 * tables that drive both --help and the man-page consistency test. */
#ifndef HQ_CLI_COMMON_H
#define HQ_CLI_COMMON_H

#include <stdbool.h>
#include <stdio.h>

#include "hq/hq.h"

/* Exit statuses shared by every hq tool. */
enum { HQ_EXIT_OK = 0, HQ_EXIT_FINDINGS = 1, HQ_EXIT_FAILURE = 2 };

/* Prints "<program>: <message>" on stderr (the detail from err, else the status string). */
void hq_cli_report(const char *program, hq_status_t status, const hq_error_t *err);

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

#endif
