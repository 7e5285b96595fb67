/* merge.c — the output model script: the archive's script with the accepted recommendations
 * merged in. A new line that contradicts an existing line (same command about the same subject
 * and setting) takes its place, and the old line stays as a comment that says so; other lines are
 * appended, so later lines win as in any model script. The archive's script is checked against
 * the model-script vocabulary when the model is opened, since the output carries it to
 * `hq optimize -m`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag/diag_internal.h"
#include "script/script_query.h"
#include "util/util.h"

/* The text of a positional identifier-like value (layer name, glob, feature keyword), or NULL. */
static const char *subject_text(const hq_value_t *v)
{
    if (!v)
        return NULL;
    if (v->kind == HQ_VALUE_IDENT || v->kind == HQ_VALUE_GLOB || v->kind == HQ_VALUE_STRING)
        return v->text;
    return NULL;
}

/* Whether two `layers=` values share a layer (a single value counts as a one-item list). */
static bool layers_overlap(const hq_value_t *a, const hq_value_t *b)
{
    int na = a->kind == HQ_VALUE_LIST ? a->item_count : 1;
    int nb = b->kind == HQ_VALUE_LIST ? b->item_count : 1;
    for (int i = 0; i < na; i++) {
        const hq_value_t *x = a->kind == HQ_VALUE_LIST ? &a->items[i] : a;
        for (int k = 0; k < nb; k++) {
            const hq_value_t *y = b->kind == HQ_VALUE_LIST ? &b->items[k] : b;
            if (x->text && y->text && !strcmp(x->text, y->text))
                return true;
        }
    }
    return false;
}

static int setting_count(const hq_command_t *c)
{
    int n = 0;
    for (int i = 0; i < c->arg_count; i++)
        n += c->args[i].key && strcmp(c->args[i].key, "layers") != 0;
    return n;
}

bool hqi_diag_commands_contradict(const hq_command_t *a, const hq_command_t *b)
{
    if (!a->name || !b->name || strcmp(a->name, b->name))
        return false;
    /* `x = normalization(...)` against `y = normalization(...)`: different layers */
    if (a->result_count && b->result_count &&
        (a->result_count != b->result_count || strcmp(a->results[0], b->results[0])))
        return false;
    /* the subject: first positional name (layer, glob, or feature such as activation_clipping) */
    const char *sa = subject_text(hq_command_positional(a, 0));
    const char *sb = subject_text(hq_command_positional(b, 0));
    if ((sa || sb) && (!sa || !sb || strcmp(sa, sb)))
        return false;
    const hq_value_t *la = hq_command_kwarg(a, "layers"), *lb = hq_command_kwarg(b, "layers");
    if ((la || lb) && (!la || !lb || !layers_overlap(la, lb)))
        return false;
    /* the same setting: both without settings (normalization), or a shared setting key */
    int ka = setting_count(a), kb = setting_count(b);
    if (!ka && !kb)
        return true;
    for (int i = 0; i < b->arg_count; i++)
        if (b->args[i].key && strcmp(b->args[i].key, "layers") &&
            hq_command_kwarg(a, b->args[i].key))
            return true;
    return false;
}

/* Whether two values are the same setting: numbers equal to 3 significant digits (a value an
 * inspector measured again prints the same), names and strings equal, lists item by item. */
static bool values_equal(const hq_value_t *a, const hq_value_t *b)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == HQ_VALUE_NUMBER) {
        char x[32], y[32];
        snprintf(x, sizeof x, "%.3g", a->number);
        snprintf(y, sizeof y, "%.3g", b->number);
        return !strcmp(x, y);
    }
    if (a->kind == HQ_VALUE_LIST) {
        if (a->item_count != b->item_count)
            return false;
        for (int i = 0; i < a->item_count; i++)
            if (!values_equal(&a->items[i], &b->items[i]))
                return false;
        return true;
    }
    return a->text && b->text && !strcmp(a->text, b->text);
}

/* Whether `have` sets every argument of `line` to the same value. */
static bool command_holds(const hq_command_t *have, const hq_command_t *line)
{
    int positional = 0;
    for (int i = 0; i < line->arg_count; i++) {
        const hq_arg_t *arg = &line->args[i];
        const hq_value_t *v = arg->key ? hq_command_kwarg(have, arg->key)
                                       : hq_command_positional(have, positional++);
        if (!v || !values_equal(v, &arg->value))
            return false;
    }
    return true;
}

bool hqi_diag_script_holds(const hq_diag_t *diag, const hq_command_t *line)
{
    hq_script_t *script = NULL;
    if (!diag->archive || hq_archive_script(diag->archive, &script, NULL) != HQ_OK)
        return false;
    /* the last line about the same setting is the one hq optimize applies */
    const hq_command_t *last = NULL;
    for (int i = 0; i < hq_script_command_count(script); i++)
        if (hqi_diag_commands_contradict(hq_script_command(script, i), line))
            last = hq_script_command(script, i);
    return last && command_holds(last, line);
}

void hqi_diag_check_script(hq_diag_t *diag)
{
    hq_script_t *script = NULL;
    if (hq_archive_script(diag->archive, &script, NULL) != HQ_OK)
        return;
    for (int i = 0; i < hq_script_command_count(script); i++) {
        hq_error_t err = {0};
        if (hqi_script_check_command(hq_script_command(script, i), hqi_script_name(script), NULL,
                                     NULL, NULL, &err) != HQ_OK)
            hqi_diag_event(diag, HQ_DIAG_EVENT_MESSAGE, HQ_DIAG_WARNING, NULL,
                           "%s: hq optimize refuses a model script with this line; the script "
                           "hq-diag writes keeps it",
                           err.message);
    }
}

/* Appends a comment line, keeping it on one line. */
static void put_comment(hqi_buf_t *out, const char *prefix, const char *text)
{
    hqi_buf_printf(out, "# %s", prefix);
    for (const char *p = text; p && *p; p++)
        hqi_buf_append(out, *p == '\n' || *p == '\r' ? " " : p, 1);
    hqi_buf_append(out, "\n", 1);
}

/* The first words of the output's first line, and the line above the appended lines. */
#define HEADER_START "Model script for "
#define ADDED_MARKER "---- added by hq-diag ----"

/* The one command of a parsed recommendation (NULL: none). */
static const hq_command_t *last_command(const hq_script_t *line)
{
    const hq_command_t *mine = NULL;
    for (int i = 0; line && i < hq_script_command_count(line); i++)
        if (hq_script_command(line, i)->name)
            mine = hq_script_command(line, i);
    return mine;
}

hq_status_t hq_diag_script_text(const hq_diag_t *diag, char **text, hq_error_t *err)
{
    *text = NULL;
    if (!diag->archive)
        return hqi_error(err, HQ_ERR_STATE, "hq-diag: no model opened");
    hq_script_t *base = NULL;
    hq_status_t st = hq_archive_script(diag->archive, &base, err);
    if (st != HQ_OK)
        return st;
    int accepted = hq_diag_accepted_count(diag);
    /* parse the accepted lines once; which existing command each one replaces */
    hq_script_t **lines = calloc((size_t)diag->rec_count + 1, sizeof *lines);
    int *replaces = malloc(((size_t)diag->rec_count + 1) * sizeof *replaces);
    int base_count = hq_script_command_count(base);
    int *replaced_by = malloc(((size_t)base_count + 1) * sizeof *replaced_by);
    if (!lines || !replaces || !replaced_by) {
        free(lines);
        free(replaces);
        free(replaced_by);
        return hqi_nomem(err, "merge");
    }
    for (int c = 0; c < base_count; c++)
        replaced_by[c] = -1;
    for (int r = 0; r < diag->rec_count && st == HQ_OK; r++) {
        replaces[r] = -1;
        if (!diag->recs[r].accepted)
            continue;
        st = hq_script_parse(diag->recs[r].line, strlen(diag->recs[r].line), "recommendation",
                             &lines[r], err);
        if (st != HQ_OK)
            break;
        const hq_command_t *mine = last_command(lines[r]);
        /* an earlier accepted line about the same setting gives way to this one: in the base's
         * place when it had one, else as a comment */
        for (int p = 0; mine && p < r; p++) {
            const hq_command_t *earlier = last_command(lines[p]);
            if (!diag->recs[p].accepted || replaces[p] == -2 || !earlier ||
                !hqi_diag_commands_contradict(earlier, mine))
                continue;
            if (replaces[p] >= 0) {
                replaced_by[replaces[p]] = r;
                if (replaces[r] == -1)
                    replaces[r] = replaces[p];
            }
            replaces[p] = -2;
        }
        for (int c = 0; mine && c < base_count; c++) {
            if (!hqi_diag_commands_contradict(hq_script_command(base, c), mine))
                continue;
            /* a later accepted line about the same thing wins over an earlier one */
            for (int p = 0; p < r; p++)
                if (replaces[p] == c)
                    replaces[p] = -2; /* superseded: written as a comment */
            replaced_by[c] = r;
            if (replaces[r] == -1)
                replaces[r] = c;
        }
    }
    hqi_buf_t out = {0};
    if (st == HQ_OK) {
        hqi_buf_printf(&out, "# %s%s written by hq-diag %s: the archive's script", HEADER_START,
                       hq_archive_net_name(diag->archive), hq_version());
        hqi_buf_printf(&out,
                       " with %d accepted recommendation(s). Run: hq optimize -m <this file>\n",
                       accepted);
    }
    bool header = false; /* the "added by hq-diag" marker is written (or the base has it) */
    for (int c = 0; c < base_count && st == HQ_OK; c++) {
        const hq_command_t *command = hq_script_command(base, c);
        /* a script hq-diag wrote before: its first line is replaced by this run's, and its
         * marker still heads the lines appended after it */
        if (!command->name && command->comment && strstr(command->comment, HEADER_START) &&
            strstr(command->comment, "written by hq-diag"))
            continue;
        if (!command->name && command->comment && strstr(command->comment, ADDED_MARKER))
            header = true;
        char *old = NULL;
        st = hq_command_print(command, &old, err);
        if (st != HQ_OK)
            break;
        int r = replaced_by[c];
        if (r < 0) {
            hqi_buf_printf(&out, "%s\n", old);
        } else {
            char prefix[256];
            snprintf(prefix, sizeof prefix,
                     "hq-diag (%s) replaced: ", hqi_diag_module_name(diag, diag->recs[r].module));
            put_comment(&out, prefix, old);
            if (replaces[r] == c) {
                put_comment(&out, "reason: ", diag->recs[r].reason);
                hqi_buf_printf(&out, "%s\n", diag->recs[r].line);
            }
        }
        free(old);
    }
    for (int r = 0; r < diag->rec_count && st == HQ_OK; r++) {
        if (!diag->recs[r].accepted || replaces[r] >= 0)
            continue;
        if (!header) {
            hqi_buf_printf(&out, "\n# %s\n", ADDED_MARKER);
            header = true;
        }
        char prefix[256];
        snprintf(prefix, sizeof prefix, "%s: ", hqi_diag_module_name(diag, diag->recs[r].module));
        put_comment(&out, prefix, diag->recs[r].reason);
        if (replaces[r] == -2)
            hqi_buf_printf(&out, "# superseded by a later recommendation: %s\n",
                           diag->recs[r].line);
        else
            hqi_buf_printf(&out, "%s\n", diag->recs[r].line);
    }
    for (int r = 0; r < diag->rec_count; r++)
        hq_script_destroy(lines[r]);
    free(lines);
    free(replaces);
    free(replaced_by);
    hqi_buf_zeros(&out, 1);
    if (st == HQ_OK && out.failed)
        st = hqi_nomem(err, "merge");
    if (st != HQ_OK) {
        hqi_buf_free(&out);
        return st;
    }
    /* the result must be a script `hq optimize -m` accepts */
    hq_script_t *check = NULL;
    st = hq_script_parse((const char *)out.data, out.len - 1, "merged model script", &check, err);
    hq_script_destroy(check);
    if (st != HQ_OK) {
        hqi_buf_free(&out);
        return st;
    }
    *text = (char *)out.data;
    return HQ_OK;
}

hq_status_t hq_diag_write_script(const hq_diag_t *diag, const char *path, hq_error_t *err)
{
    char *text = NULL;
    hq_status_t st = hq_diag_script_text(diag, &text, err);
    if (st == HQ_OK)
        st = hqi_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return st;
}
