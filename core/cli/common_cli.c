/* common_cli.c — failure reporting, option printing, derived names and tensor summaries shared
 * by the hq mains. */
#include "common_cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void hq_cli_report(const char *program, hq_status_t status, const hq_error_t *err)
{
    const char *detail = err && err->message[0] ? err->message : hq_status_string(status);
    fprintf(stderr, "%s: %s\n", program, detail);
}

int hq_cli_fail(const char *program, const char *message, const char *arg)
{
    fprintf(stderr, "%s: %s%s%s%s\n", program, message, arg ? " '" : "", arg ? arg : "",
            arg ? "'" : "");
    return HQ_EXIT_FAILURE;
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

int hq_cli_positional(const char *program, const char *what, const char *word,
                      const char **positional)
{
    if (word[0] == '-' && word[1])
        return hq_cli_fail(program, "unknown option", word);
    if (*positional) {
        char message[128];
        snprintf(message, sizeof message, "one %s at a time, extra argument", what);
        return hq_cli_fail(program, message, word);
    }
    *positional = word;
    return HQ_EXIT_OK;
}

char *hq_cli_derived_name(const char *path, const char *suffix)
{
    size_t len = strlen(path);
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    if (dot && (!slash || dot > slash + 1))
        len = (size_t)(dot - path);
    char *out = malloc(len + strlen(suffix) + 1);
    if (out) {
        memcpy(out, path, len);
        strcpy(out + len, suffix);
    }
    return out;
}

void hq_cli_print_tensor_summary(const char *name, const char *kind, const hq_tensor_t *t)
{
    const float *x = t->data;
    int64_t n = hq_tensor_count(t);
    double lo = INFINITY, hi = -INFINITY, sum = 0.0;
    for (int64_t k = 0; k < n; k++) {
        lo = x[k] < lo ? x[k] : lo;
        hi = x[k] > hi ? x[k] : hi;
        sum += x[k];
    }
    char shape[128];
    size_t used = (size_t)snprintf(shape, sizeof shape, "(");
    for (int d = 0; d < t->ndim && used < sizeof shape; d++)
        used += (size_t)snprintf(shape + used, sizeof shape - used, d ? ",%lld" : "%lld",
                                 (long long)t->shape[d]);
    if (used < sizeof shape)
        snprintf(shape + used, sizeof shape - used, ")");
    printf("%-32s %-8s shape %-18s min %-12.6g max %-12.6g mean %.6g\n", name, kind, shape,
           n ? lo : 0.0, n ? hi : 0.0, n ? sum / (double)n : 0.0);
}
