/* verify_report.c — what `hq-diag --verify` reports (verify.c measures): the console table, the
 * `verify` object of --json, the HTML table of --report, the measured gain of each triage cause
 * and the held-out path the inspector context hands on. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "diag/verify_internal.h"
#include "util/util.h"

/* The lowest of the outputs' figures. */
double hqi_diag_verify_lowest(const double *db, int count)
{
    double low = INFINITY;
    for (int k = 0; k < count; k++)
        low = db[k] < low ? db[k] : low;
    return low;
}

double hqi_diag_verify_gain(const hqi_diag_verify_t *v, const hqi_diag_verify_run_t *run)
{
    return run->ok ? hqi_diag_verify_lowest(run->after_db, v->output_count) -
                         hqi_diag_verify_lowest(v->before_db, v->output_count)
                   : NAN;
}

const char *hqi_diag_verify_label(const hq_diag_t *d, const hqi_diag_verify_run_t *run)
{
    return run->module == HQI_DIAG_VERIFY_ALL    ? "every accepted line"
           : run->module == HQI_DIAG_VERIFY_NONE ? "the archive's script"
                                                 : hqi_diag_module_name(d, run->module);
}

/* Whether re-quantizing with the archive's script alone gave the archive's figures. */
bool hqi_diag_verify_reproduced(const hqi_diag_verify_t *v)
{
    if (!v->baseline.ok)
        return false;
    for (int k = 0; k < v->output_count; k++)
        if (!(fabs(v->baseline.after_db[k] - v->before_db[k]) <= HQI_DIAG_VERIFY_REPRODUCED_DB))
            return false;
    return true;
}

/* The table: one row per run, "before -> after" per output, the gain of the lowest output. */
void hqi_diag_verify_report(hq_diag_t *d)
{
    hqi_diag_verify_t *v = d->verify;
    int count;
    const int *outputs = hq_graph_outputs(d->graph, &count);
    char line[2048], source[1200];
    if (v->data_path)
        snprintf(source, sizeof source, "%lld held-out sample(s) of %s", (long long)v->count,
                 v->data_path);
    else
        snprintf(source, sizeof source, "samples %lld..%lld of %s (after calibset_size)",
                 (long long)v->first, (long long)(v->first + v->count - 1), d->dataset_path);
    hqi_diag_event(d, HQ_DIAG_EVENT_VERIFY, HQ_DIAG_INFO, NULL,
                   "Verification: output SQNR (dB, quantized vs fp_optimized) on %s; "
                   "re-quantized in memory from %s with calibration data %s",
                   source, v->from_path ? v->from_path : d->model_path, d->dataset_path);
    snprintf(line, sizeof line, "  %-28s %5s", "group", "lines");
    for (int k = 0; k < count && k < v->output_count; k++)
        snprintf(line + strlen(line), sizeof line - strlen(line), "  %22s",
                 hq_graph_layer(d->graph, outputs[k])->bare_name);
    snprintf(line + strlen(line), sizeof line - strlen(line), "  %10s", "gain");
    hqi_diag_event(d, HQ_DIAG_EVENT_VERIFY, HQ_DIAG_INFO, NULL, "%s", line);
    if (!v->baseline.ok)
        hqi_diag_event(d, HQ_DIAG_EVENT_VERIFY, HQ_DIAG_WARNING, NULL,
                       "  the archive's script alone could not be re-quantized: %s",
                       v->baseline.error ? v->baseline.error : "?");
    else if (!hqi_diag_verify_reproduced(v))
        hqi_diag_event(d, HQ_DIAG_EVENT_VERIFY, HQ_DIAG_WARNING, NULL,
                       "  the archive's script alone, re-quantized, gives %.2f dB where the "
                       "archive gives %.2f (lowest output): the archive was quantized with other "
                       "calibration data or settings; the gains below mix that difference in",
                       hqi_diag_verify_lowest(v->baseline.after_db, v->output_count),
                       hqi_diag_verify_lowest(v->before_db, v->output_count));
    for (int i = 0; i < v->run_count; i++) {
        const hqi_diag_verify_run_t *run = &v->runs[i];
        char group[128];
        if (run->module == HQI_DIAG_VERIFY_ALL)
            snprintf(group, sizeof group, "all accepted");
        else
            snprintf(group, sizeof group, "%d. %s", run->rank,
                     hqi_diag_module_name(d, run->module));
        snprintf(line, sizeof line, "  %-28s %5d", group, run->line_count);
        if (!run->ok) {
            snprintf(line + strlen(line), sizeof line - strlen(line), "  failed: %s",
                     run->error ? run->error : "?");
            hqi_diag_event(d, HQ_DIAG_EVENT_VERIFY, HQ_DIAG_WARNING, NULL, "%s", line);
            continue;
        }
        for (int k = 0; k < v->output_count; k++) {
            char pair[64];
            snprintf(pair, sizeof pair, "%.2f -> %.2f", v->before_db[k], run->after_db[k]);
            snprintf(line + strlen(line), sizeof line - strlen(line), "  %22s", pair);
        }
        double gain = hqi_diag_verify_gain(v, run);
        snprintf(line + strlen(line), sizeof line - strlen(line), "  %+7.2f dB", gain);
        hqi_diag_event(d, HQ_DIAG_EVENT_VERIFY, gain < 0 ? HQ_DIAG_WARNING : HQ_DIAG_INFO, NULL,
                       "%s", line);
    }
}

/* ---- results -------------------------------------------------------------------------------- */

const char *hqi_diag_validation_path(const hq_diag_t *d)
{
    return d->verify ? d->verify->data_path : NULL;
}

double hqi_diag_measured_gain(const hq_diag_t *d, int module)
{
    const hqi_diag_verify_t *v = d->verify;
    if (!v || !v->ran || module < 0)
        return NAN;
    int lines = 0, accepted = hq_diag_accepted_count(d);
    for (int r = 0; r < d->rec_count; r++)
        lines += d->recs[r].accepted && d->recs[r].module == module;
    for (int i = 0; i < v->run_count; i++) {
        const hqi_diag_verify_run_t *run = &v->runs[i];
        /* a cause whose lines are every accepted line was measured by the first run */
        if (run->module == module ||
            (run->module == HQI_DIAG_VERIFY_ALL && lines > 0 && lines == accepted))
            return hqi_diag_verify_gain(v, run);
    }
    return NAN;
}

static cJSON *db_array(const double *db, int count)
{
    cJSON *a = cJSON_CreateArray();
    for (int k = 0; a && k < count; k++)
        cJSON_AddItemToArray(a, isfinite(db[k]) ? cJSON_CreateNumber(db[k]) : cJSON_CreateNull());
    return a;
}

void *hqi_diag_verify_json(const hq_diag_t *d)
{
    const hqi_diag_verify_t *v = d->verify;
    if (!v || !v->ran)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON *held = cJSON_AddObjectToObject(o, "held_out");
    cJSON_AddStringToObject(held, "data", v->data_path ? v->data_path : d->dataset_path);
    cJSON_AddNumberToObject(held, "first", (double)v->first);
    cJSON_AddNumberToObject(held, "samples", (double)v->count);
    cJSON_AddStringToObject(o, "from", v->from_path ? v->from_path : d->model_path);
    cJSON_AddStringToObject(o, "calibration_data", d->dataset_path);
    cJSON_AddStringToObject(o, "measure", "quantized_vs_fp_optimized");
    cJSON *outputs = cJSON_AddArrayToObject(o, "outputs");
    int count;
    const int *layers = hq_graph_outputs(d->graph, &count);
    for (int k = 0; k < count && k < v->output_count; k++)
        cJSON_AddItemToArray(outputs,
                             cJSON_CreateString(hq_graph_layer(d->graph, layers[k])->bare_name));
    /* with no accepted line nothing was re-quantized, nor measured */
    cJSON_AddItemToObject(o, "before_db",
                          v->run_count ? db_array(v->before_db, v->output_count)
                                       : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "baseline_db",
                          v->baseline.ok ? db_array(v->baseline.after_db, v->output_count)
                                         : cJSON_CreateNull());
    if (v->baseline.ok)
        cJSON_AddBoolToObject(o, "reproduced", hqi_diag_verify_reproduced(v));
    else
        cJSON_AddNullToObject(o, "reproduced");
    cJSON *runs = cJSON_AddArrayToObject(o, "runs");
    for (int i = 0; i < v->run_count; i++) {
        const hqi_diag_verify_run_t *run = &v->runs[i];
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "group", run->module == HQI_DIAG_VERIFY_ALL ? "all" : "cause");
        if (run->module == HQI_DIAG_VERIFY_ALL) {
            cJSON_AddNullToObject(r, "rank");
            cJSON_AddNullToObject(r, "inspector");
        } else {
            cJSON_AddNumberToObject(r, "rank", run->rank);
            cJSON_AddStringToObject(r, "inspector", hqi_diag_module_name(d, run->module));
        }
        cJSON *lines = cJSON_AddArrayToObject(r, "lines");
        for (int k = 0; k < d->rec_count; k++)
            if (d->recs[k].accepted &&
                (run->module == HQI_DIAG_VERIFY_ALL || d->recs[k].module == run->module))
                cJSON_AddItemToArray(lines, cJSON_CreateString(d->recs[k].line));
        if (run->ok) {
            cJSON_AddItemToObject(r, "after_db", db_array(run->after_db, v->output_count));
            double gain = hqi_diag_verify_gain(v, run);
            cJSON_AddItemToObject(r, "gain_db",
                                  isfinite(gain) ? cJSON_CreateNumber(gain) : cJSON_CreateNull());
            cJSON_AddNullToObject(r, "error");
        } else {
            cJSON_AddNullToObject(r, "after_db");
            cJSON_AddNullToObject(r, "gain_db");
            cJSON_AddStringToObject(r, "error", run->error ? run->error : "");
        }
        cJSON_AddItemToArray(runs, r);
    }
    return o;
}

/* Text with the characters HTML gives a meaning escaped. */
static void html_text(hqi_buf_t *b, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '<')
            hqi_buf_printf(b, "&lt;");
        else if (*s == '>')
            hqi_buf_printf(b, "&gt;");
        else if (*s == '&')
            hqi_buf_printf(b, "&amp;");
        else if (*s == '"')
            hqi_buf_printf(b, "&quot;");
        else
            hqi_buf_printf(b, "%c", *s);
    }
}

void hqi_diag_verify_html(const hq_diag_t *d, hqi_buf_t *b)
{
    const hqi_diag_verify_t *v = d->verify;
    if (!v || !v->ran)
        return;
    hqi_buf_printf(b,
                   "<h3 id=\"verify\">Verified fixes</h3>\n<p>Output SQNR (dB, quantized vs "
                   "fp_optimized) on %lld held-out sample(s) of <code>",
                   (long long)v->count);
    html_text(b, v->data_path ? v->data_path : d->dataset_path);
    hqi_buf_printf(b, "</code>%s, the archive as given and re-quantized in memory from <code>",
                   v->data_path ? "" : " after calibset_size");
    html_text(b, v->from_path ? v->from_path : d->model_path);
    hqi_buf_printf(b, "</code> with each group's accepted lines.</p>\n");
    if (v->baseline.ok && !hqi_diag_verify_reproduced(v))
        hqi_buf_printf(b,
                       "<p class=\"warning\">The archive's script alone, re-quantized, gives "
                       "%.2f dB where the archive gives %.2f (lowest output): the archive was "
                       "quantized with other calibration data or settings.</p>\n",
                       hqi_diag_verify_lowest(v->baseline.after_db, v->output_count),
                       hqi_diag_verify_lowest(v->before_db, v->output_count));
    if (v->run_count == 0) {
        hqi_buf_printf(b, "<p>No line accepted: nothing re-quantized.</p>\n");
        return;
    }
    int count;
    const int *outputs = hq_graph_outputs(d->graph, &count);
    hqi_buf_printf(b, "<table><tr><th>group</th><th>lines</th>");
    for (int k = 0; k < count && k < v->output_count; k++) {
        hqi_buf_printf(b, "<th>");
        html_text(b, hq_graph_layer(d->graph, outputs[k])->bare_name);
        hqi_buf_printf(b, " before &rarr; after</th>");
    }
    hqi_buf_printf(b, "<th>gain (dB)</th></tr>\n");
    for (int i = 0; i < v->run_count; i++) {
        const hqi_diag_verify_run_t *run = &v->runs[i];
        hqi_buf_printf(b, "<tr><td>");
        if (run->module == HQI_DIAG_VERIFY_ALL)
            hqi_buf_printf(b, "all accepted");
        else {
            hqi_buf_printf(b, "%d. ", run->rank);
            html_text(b, hqi_diag_module_name(d, run->module));
        }
        hqi_buf_printf(b, "</td><td>");
        for (int r = 0; r < d->rec_count; r++)
            if (d->recs[r].accepted &&
                (run->module == HQI_DIAG_VERIFY_ALL || d->recs[r].module == run->module)) {
                hqi_buf_printf(b, "<code>");
                html_text(b, d->recs[r].line);
                hqi_buf_printf(b, "</code><br>");
            }
        hqi_buf_printf(b, "</td>");
        if (!run->ok) {
            hqi_buf_printf(b, "<td colspan=\"%d\" class=\"warning\">failed: ", v->output_count + 1);
            html_text(b, run->error);
            hqi_buf_printf(b, "</td></tr>\n");
            continue;
        }
        for (int k = 0; k < v->output_count; k++)
            hqi_buf_printf(b, "<td>%.2f &rarr; %.2f</td>", v->before_db[k], run->after_db[k]);
        double gain = hqi_diag_verify_gain(v, run);
        hqi_buf_printf(b, "<td class=\"%s\">%+.2f</td></tr>\n", gain < 0 ? "warning" : "info",
                       gain);
    }
    hqi_buf_printf(b, "</table>\n");
}
