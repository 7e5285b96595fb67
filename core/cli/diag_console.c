/* diag_console.c — hq-diag's console, log file, progress bar and terminal questions. The library
 * (hq/diag.h) never prints; this file turns its events into what the user sees. */
#include "diag_console.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define SEPARATOR "------------------------------------------------------------"

static const char *const level_words[] = {"info", "warning", "error"};
static const char *const level_colours[] = {"\033[32m", "\033[33m", "\033[1;31m"};

void diag_console_init(diag_console_t *console, FILE *out, FILE *log, bool quiet)
{
    memset(console, 0, sizeof *console);
    console->out = out;
    console->log = log;
    const char *no_colour = getenv("NO_COLOR");
    bool allowed =
        !(no_colour && no_colour[0]) && !(getenv("TERM") && !strcmp(getenv("TERM"), "dumb"));
    console->colour = allowed && isatty(fileno(out));
    console->colour_err = allowed && isatty(STDERR_FILENO);
    hq_cli_progress_init(&console->bar, quiet);
}

static const char *word(hq_diag_level_t level)
{
    return (int)level >= 0 && level <= HQ_DIAG_ERROR ? level_words[level] : "info";
}

static void vlog(diag_console_t *c, const char *inspector, const char *level, const char *fmt,
                 va_list ap)
{
    if (!c->log)
        return;
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(c->log, "%s [%s] [%s] ", stamp, level, inspector ? inspector : "hq-diag");
    vfprintf(c->log, fmt, ap);
    fputc('\n', c->log);
    fflush(c->log);
}

void diag_console_log(diag_console_t *console, const char *inspector, const char *level,
                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(console, inspector, level, fmt, ap);
    va_end(ap);
}

static void end_progress(diag_console_t *c)
{
    hq_cli_progress_end(&c->bar);
}

/* "[level] " in colour when allowed. */
static void prefix(diag_console_t *c, FILE *f, hq_diag_level_t level)
{
    bool colour = f == c->out ? c->colour : f == stderr && c->colour_err;
    if (colour)
        fprintf(f, "%s[%s]\033[0m ", level_colours[level], word(level));
    else
        fprintf(f, "[%s] ", word(level));
}

void diag_console_line(diag_console_t *console, hq_diag_level_t level, bool to_stderr,
                       const char *fmt, ...)
{
    end_progress(console);
    FILE *f = to_stderr ? stderr : console->out;
    va_list ap;
    va_start(ap, fmt);
    prefix(console, f, level);
    vfprintf(f, fmt, ap);
    fputc('\n', f);
    fflush(f);
    va_end(ap);
    va_start(ap, fmt);
    vlog(console, NULL, word(level), fmt, ap);
    va_end(ap);
}

void diag_console_event(void *user, const hq_diag_event_t *e)
{
    diag_console_t *c = user;
    switch (e->kind) {
    case HQ_DIAG_EVENT_MESSAGE:
        end_progress(c);
        prefix(c, c->out, e->level);
        fprintf(c->out, "%s\n", e->text);
        fflush(c->out);
        diag_console_log(c, e->inspector, word(e->level), "%s", e->text);
        break;
    case HQ_DIAG_EVENT_MODULE:
        end_progress(c);
        if (c->colour)
            fprintf(c->out, "%s\n\033[1mModule: %s\033[0m\n", SEPARATOR, e->inspector);
        else
            fprintf(c->out, "%s\nModule: %s\n", SEPARATOR, e->inspector);
        fflush(c->out);
        diag_console_log(c, e->inspector, "info", "Module: %s", e->inspector);
        break;
    case HQ_DIAG_EVENT_SKIP:
        end_progress(c);
        prefix(c, c->out, HQ_DIAG_INFO);
        fprintf(c->out, "Skipping %s, %s\n", e->inspector, e->text);
        fflush(c->out);
        diag_console_log(c, e->inspector, "info", "Skipping %s, %s", e->inspector, e->text);
        break;
    case HQ_DIAG_EVENT_RECOMMENDATION:
        end_progress(c);
        fputs("  ", c->out);
        prefix(c, c->out, e->level);
        fprintf(c->out, "%d. %s", e->number, e->text);
        if (e->detail && e->detail[0])
            fprintf(c->out, "  # %s", e->detail);
        fputc('\n', c->out);
        fflush(c->out);
        diag_console_log(c, e->inspector, word(e->level), "Recommended %d. %s  # %s", e->number,
                         e->text, e->detail ? e->detail : "");
        break;
    case HQ_DIAG_EVENT_PROGRESS:
        hq_cli_progress(&c->bar, e->text, e->done, e->total);
        break;
    case HQ_DIAG_EVENT_LOG:
        diag_console_log(c, e->inspector, "debug", "%s", e->text);
        break;
    case HQ_DIAG_EVENT_DETAIL: /* the summary line stands for it on the console */
        diag_console_log(c, e->inspector, word(e->level), "%s", e->text);
        break;
    case HQ_DIAG_EVENT_VERIFY: /* its heading starts "Verification", its rows are indented */
        end_progress(c);
        if (e->text[0] != ' ')
            fprintf(c->out, "%s\n", SEPARATOR);
        fprintf(c->out, "%s\n", e->text);
        fflush(c->out);
        diag_console_log(c, NULL, word(e->level), "%s", e->text);
        break;
    case HQ_DIAG_EVENT_TRIAGE:
        end_progress(c);
        if (!e->inspector) /* the heading */
            fprintf(c->out, "%s\n", SEPARATOR);
        fprintf(c->out, "%s\n", e->text);
        fflush(c->out);
        diag_console_log(c, e->inspector, "info", "%s", e->text);
        break;
    }
}

/* Index of the choice `answer` names: the whole word or a unique prefix, any case; yes/no also
 * take "yes"/"no". -1 when none. */
static int match_choice(const char *answer, const char *const *choices, int count)
{
    size_t len = strlen(answer);
    if (count == 2 && !strcmp(choices[0], "y") && !strcmp(choices[1], "n")) {
        if (!strcasecmp(answer, "y") || !strcasecmp(answer, "yes"))
            return 0;
        if (!strcasecmp(answer, "n") || !strcasecmp(answer, "no"))
            return 1;
        return -1;
    }
    int found = -1;
    for (int i = 0; i < count; i++) {
        if (!strcasecmp(answer, choices[i]))
            return i;
        if (len && !strncasecmp(answer, choices[i], len)) {
            if (found >= 0)
                return -1;
            found = i;
        }
    }
    return found;
}

int diag_console_ask(void *user, const char *inspector, const char *question,
                     const char *const *choices, int count, int default_index)
{
    diag_console_t *c = user;
    end_progress(c);
    bool yes_no = count == 2 && !strcmp(choices[0], "y") && !strcmp(choices[1], "n");
    if (!c->in)
        return default_index;
    for (;;) {
        if (yes_no) {
            fprintf(c->prompt, "%s %s ", question, default_index == 0 ? "[Y/n]" : "[y/N]");
        } else {
            fprintf(c->prompt, "%s (", question);
            for (int i = 0; i < count; i++)
                fprintf(c->prompt, "%s%s", i ? "/" : "", choices[i]);
            fprintf(c->prompt, ") [%s] ", choices[default_index]);
        }
        fflush(c->prompt);
        if (c->input_closed) { /* say what was decided for the person reading the screen */
            fprintf(c->prompt, "%s (end of input)\n", choices[default_index]);
            return default_index;
        }
        char line[256];
        if (!fgets(line, sizeof line, c->in)) {
            c->input_closed = true;
            fputc('\n', c->prompt);
            diag_console_log(c, inspector, "info", "%s -> end of input, default '%s'", question,
                             choices[default_index]);
            return default_index;
        }
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        size_t n = strlen(s);
        while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
            s[--n] = '\0';
        int answer = n ? match_choice(s, choices, count) : default_index;
        if (answer >= 0) {
            diag_console_log(c, inspector, "info", "%s -> %s", question, choices[answer]);
            return answer;
        }
        fprintf(c->prompt, "Please answer ");
        if (yes_no) {
            fprintf(c->prompt, "y or n.\n");
        } else {
            for (int i = 0; i < count; i++)
                fprintf(c->prompt, "%s%s", i ? (i == count - 1 ? " or " : ", ") : "", choices[i]);
            fprintf(c->prompt, ".\n");
        }
    }
}

/* Reads "1 3", "1-3" or a mix into accepted[]; false (nothing set) when a number is out of
 * 1..count or the text is not numbers. */
static bool parse_numbers(const char *text, int count, bool *accepted)
{
    bool wanted[count > 0 ? count : 1];
    memset(wanted, 0, sizeof wanted);
    const char *p = text;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        char *end;
        long first = strtol(p, &end, 10), last;
        if (end == p)
            return false;
        p = end;
        if (*p == '-') {
            last = strtol(p + 1, &end, 10);
            if (end == p + 1)
                return false;
            p = end;
        } else {
            last = first;
        }
        if (first < 1 || last > count || first > last)
            return false;
        for (long k = first; k <= last; k++)
            wanted[k - 1] = true;
    }
    memcpy(accepted, wanted, (size_t)count * sizeof *accepted);
    return true;
}

void diag_console_pick(void *user, const char *inspector, int count, bool *accepted)
{
    diag_console_t *c = user;
    end_progress(c);
    if (!c->in)
        return;
    for (;;) {
        fprintf(c->prompt, "Lines to accept (e.g. 1 3 or 1-%d; Enter for none): ", count);
        fflush(c->prompt);
        if (c->input_closed) {
            fprintf(c->prompt, "(end of input)\n");
            return;
        }
        char line[256];
        if (!fgets(line, sizeof line, c->in)) {
            c->input_closed = true;
            fputc('\n', c->prompt);
            diag_console_log(c, inspector, "info", "pick -> end of input, none");
            return;
        }
        line[strcspn(line, "\r\n")] = '\0';
        if (parse_numbers(line, count, accepted)) {
            diag_console_log(c, inspector, "info", "pick -> '%s'", line);
            return;
        }
        fprintf(c->prompt, "Please give numbers from 1 to %d, e.g. 1 3 or 1-%d.\n", count, count);
    }
}
