/* common_cli.c — failure reporting and option printing shared by the hq mains. */
#include "common_cli.h"

#include <stdlib.h>

void hq_cli_report(const char *program, hq_status_t status, const hq_error_t *err)
{
    const char *detail = err && err->message[0] ? err->message : hq_status_string(status);
    fprintf(stderr, "%s: %s\n", program, detail);
}

void hq_cli_print_options(FILE *out, const hq_cli_option_t *options)
{
    for (const hq_cli_option_t *o = options; o->flags; o++)
        fprintf(out, "  %-28s %s\n", o->flags, o->help);
}

bool hq_cli_parse_int(const char *text, long long lo, long long hi, long long *out)
{
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (!end || *end || end == text || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}
