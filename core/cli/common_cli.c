/* common_cli.c — failure reporting, option printing, output-path checks, derived names, tensor
 * summaries and the progress bar shared by the hq mains. */
#include "common_cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Room for a path and a few words about it in one message. */
#define PATH_MAX_TEXT 4200

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

/* Says in `why` what keeps `folder` from receiving new files; false when nothing does. */
static bool folder_unwritable(const char *folder, char *why, size_t size)
{
    struct stat sb;
    if (stat(folder, &sb) != 0) {
        if (errno == ENOENT)
            snprintf(why, size, "folder %.1024s does not exist", folder);
        else
            snprintf(why, size, "folder %.1024s: %s", folder, strerror(errno));
        return true;
    }
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(why, size, "%.1024s is not a folder", folder);
        return true;
    }
    if (access(folder, W_OK | X_OK) != 0) {
        snprintf(why, size, "folder %.1024s is not writable: %s", folder, strerror(errno));
        return true;
    }
    return false;
}

int hq_cli_check_output_file(const char *program, const char *option, const char *path)
{
    char why[PATH_MAX_TEXT];
    size_t len = strlen(path);
    struct stat sb;
    if (len == 0) {
        fprintf(stderr, "%s: %s: the output path is empty\n", program, option);
        return HQ_EXIT_FAILURE;
    }
    if (path[len - 1] == '/' || (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))) {
        fprintf(stderr, "%s: %s %s: is a folder, not a file\n", program, option, path);
        return HQ_EXIT_FAILURE;
    }
    const char *slash = strrchr(path, '/');
    char folder[PATH_MAX_TEXT];
    if (!slash)
        snprintf(folder, sizeof folder, ".");
    else if (slash == path)
        snprintf(folder, sizeof folder, "/");
    else
        snprintf(folder, sizeof folder, "%.*s", (int)(slash - path), path);
    if (folder_unwritable(folder, why, sizeof why)) {
        fprintf(stderr, "%s: %s %s: %s\n", program, option, path, why);
        return HQ_EXIT_FAILURE;
    }
    return HQ_EXIT_OK;
}

int hq_cli_check_output_folder(const char *program, const char *option, const char *path)
{
    char why[PATH_MAX_TEXT];
    if (folder_unwritable(path[0] ? path : ".", why, sizeof why)) {
        fprintf(stderr, "%s: %s %s: %s\n", program, option, path, why);
        return HQ_EXIT_FAILURE;
    }
    return HQ_EXIT_OK;
}

bool hq_cli_has_suffix(const char *text, const char *suffix)
{
    size_t n = strlen(text), k = strlen(suffix);
    return n >= k && strcmp(text + n - k, suffix) == 0;
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

bool hq_cli_is_quiet(const char *word)
{
    return !strcmp(word, "-q") || !strcmp(word, "--quiet");
}

static double monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void hq_cli_progress_init(hq_cli_progress_t *bar, bool quiet)
{
    memset(bar, 0, sizeof *bar);
    bar->enabled = !quiet && isatty(STDERR_FILENO);
}

void hq_cli_progress_end(hq_cli_progress_t *bar)
{
    if (bar && bar->open) {
        fputc('\n', stderr);
        fflush(stderr);
        bar->open = false;
    }
}

/* "1:05" or "2:03:40". */
static void format_duration(double seconds, char *out, size_t size)
{
    long long s = seconds < 0 ? 0 : (long long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(out, size, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(out, size, "%lld:%02lld", s / 60, s % 60);
}

void hq_cli_progress(void *user, const char *stage, int64_t done, int64_t total)
{
    hq_cli_progress_t *bar = user;
    if (!bar || !bar->enabled || total <= 0)
        return;
    if (!stage)
        stage = "";
    done = done < 0 ? 0 : done > total ? total : done;
    double now = monotonic_seconds();
    bool new_stage = strncmp(bar->stage, stage, sizeof bar->stage - 1) != 0 || !bar->open;
    if (new_stage) {
        hq_cli_progress_end(bar);
        snprintf(bar->stage, sizeof bar->stage, "%s", stage);
        bar->started = now;
        bar->first = done;
    } else if (done < total && now - bar->drawn < 0.1) {
        return;
    }
    bar->drawn = now;
    enum { WIDTH = 30 };
    int filled = (int)(done * WIDTH / total);
    char cells[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++)
        cells[i] = i < filled ? '#' : '.';
    cells[WIDTH] = '\0';
    char timing[48] = "";
    char t[24];
    if (done == total && !new_stage) {
        format_duration(now - bar->started, t, sizeof t);
        snprintf(timing, sizeof timing, " in %s", t);
    } else if (done < total && done > bar->first && now > bar->started) {
        format_duration((now - bar->started) / (double)(done - bar->first) * (double)(total - done),
                        t, sizeof t);
        snprintf(timing, sizeof timing, " ETA %s", t);
    } else if (done < total) {
        snprintf(timing, sizeof timing, " ETA --:--");
    }
    /* spaces blank what a longer previous line left: the bar writes no escape sequence, so that
     * a terminal with NO_COLOR gets none */
    int width = fprintf(stderr, "\r%s [%s] %lld/%lld %3d%%%s", bar->stage, cells, (long long)done,
                        (long long)total, (int)(done * 100 / total), timing);
    if (!new_stage && width < bar->width)
        fprintf(stderr, "%*s", bar->width - width, "");
    bar->width = width > bar->width || new_stage ? width : bar->width;
    bar->open = true;
    if (done == total)
        hq_cli_progress_end(bar);
    fflush(stderr);
}
