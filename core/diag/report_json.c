/* report_json.c — `hq-diag --json`: every finding and recommendation with its inspector, level,
 * layer and numbers, plus the run's inspectors and per-layer SQNR. The schema is in hq-diag(1);
 * fields are only ever added. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "diag/diag_internal.h"
#include "util/util.h"

#define HQ_DIAG_JSON_SCHEMA 4

static const char *const priority_words[] = {"high", "medium", "low"};

static cJSON *layer_json(const hq_diag_t *d, int layer)
{
    const hq_layer_t *l = layer >= 0 ? hq_graph_layer(d->graph, layer) : NULL;
    return l ? cJSON_CreateString(l->bare_name) : cJSON_CreateNull();
}

static cJSON *number(double v)
{
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

static cJSON *build(const hq_diag_t *d)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "schema", HQ_DIAG_JSON_SCHEMA);
    cJSON_AddStringToObject(root, "hq_version", hq_version());
    cJSON_AddStringToObject(root, "model", d->model_path ? d->model_path : "");
    cJSON_AddStringToObject(root, "network", d->archive ? hq_archive_net_name(d->archive) : "");
    cJSON_AddStringToObject(root, "state",
                            d->archive ? hq_model_state_name(hq_archive_state(d->archive)) : "");
    cJSON_AddStringToObject(root, "hw_arch", d->hw_arch ? d->hw_arch : "");
    if (d->dataset)
        cJSON_AddStringToObject(root, "dataset", d->dataset_path);
    else
        cJSON_AddNullToObject(root, "dataset");
    cJSON_AddNumberToObject(root, "samples", (double)d->samples);

    int errors = hq_diag_finding_count(d, HQ_DIAG_ERROR);
    cJSON_AddNumberToObject(root, "exit_status", errors ? 1 : 0);
    cJSON *summary = cJSON_AddObjectToObject(root, "summary");
    cJSON_AddNumberToObject(summary, "info", hq_diag_finding_count(d, HQ_DIAG_INFO));
    cJSON_AddNumberToObject(summary, "warning", hq_diag_finding_count(d, HQ_DIAG_WARNING));
    cJSON_AddNumberToObject(summary, "error", errors);
    cJSON_AddNumberToObject(summary, "failed_inspectors", hq_diag_failure_count(d));
    cJSON_AddNumberToObject(summary, "recommendations", d->rec_count);
    cJSON_AddNumberToObject(summary, "accepted", hq_diag_accepted_count(d));

    cJSON *inspectors = cJSON_AddArrayToObject(root, "inspectors");
    for (int i = 0; i < d->order_count; i++) {
        int m = d->order[i];
        const hq_inspector_t *desc = &d->modules[m].slots;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", desc->name);
        cJSON_AddStringToObject(o, "priority", priority_words[desc->priority]);
        cJSON_AddStringToObject(o, "path", d->modules[m].path);
        const char *status = !d->ran                       ? "not_run"
                             : d->failed && d->failed[m]   ? "failed"
                             : d->skipped && d->skipped[m] ? "skipped"
                                                           : "ran";
        cJSON_AddStringToObject(o, "status", status);
        if (d->skipped && d->skipped[m])
            cJSON_AddStringToObject(o, "reason", d->skipped[m]);
        else
            cJSON_AddNullToObject(o, "reason");
        cJSON_AddItemToArray(inspectors, o);
    }

    cJSON *diagnostics = cJSON_AddArrayToObject(root, "diagnostics");
    for (int i = 0; i < d->finding_count; i++) {
        const hqi_diag_finding_t *f = &d->findings[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "inspector", hqi_diag_module_name(d, f->module));
        cJSON_AddStringToObject(o, "level", hqi_diag_level_word(f->level));
        cJSON_AddItemToObject(o, "layer", layer_json(d, f->layer));
        cJSON_AddStringToObject(o, "message", f->message);
        cJSON *numbers = cJSON_AddObjectToObject(o, "numbers");
        for (int k = 0; k < f->number_count; k++)
            cJSON_AddItemToObject(numbers, f->numbers[k].name, number(f->numbers[k].value));
        cJSON_AddItemToArray(diagnostics, o);
    }

    cJSON *recs = cJSON_AddArrayToObject(root, "recommendations");
    for (int i = 0; i < d->rec_count; i++) {
        const hqi_diag_rec_t *r = &d->recs[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "inspector", hqi_diag_module_name(d, r->module));
        cJSON_AddStringToObject(o, "level", hqi_diag_level_word(r->level));
        cJSON_AddItemToObject(o, "layer", layer_json(d, r->layer));
        cJSON_AddStringToObject(o, "line", r->line);
        cJSON_AddStringToObject(o, "reason", r->reason);
        cJSON_AddStringToObject(o, "group", r->group);
        cJSON_AddStringToObject(o, "group_kind",
                                r->group_kind == HQ_GROUP_LEVELS ? "levels" : "yes_no");
        cJSON_AddBoolToObject(o, "accepted", r->accepted);
        cJSON_AddItemToArray(recs, o);
    }

    cJSON *noise = cJSON_AddArrayToObject(root, "layer_sqnr");
    for (int l = 0; d->noise && d->graph && l < hq_graph_layer_count(d->graph); l++) {
        const hq_layer_noise_t *n = &d->noise[l].noise;
        if (!n->has_cumulative && !n->has_partial)
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "layer", layer_json(d, l));
        cJSON_AddItemToObject(o, "cumulative_db",
                              n->has_cumulative ? number(n->cumulative_db) : cJSON_CreateNull());
        cJSON_AddItemToObject(o, "partial_db",
                              n->has_partial ? number(n->partial_db) : cJSON_CreateNull());
        cJSON_AddStringToObject(o, "source", n->source ? n->source : "archive");
        cJSON_AddItemToArray(noise, o);
    }
    /* the headline's stage table and verdict (headline.c) */
    cJSON *outputs = cJSON_AddArrayToObject(root, "output_sqnr_db");
    int output_count = 0;
    const int *output_layers = d->graph ? hq_graph_outputs(d->graph, &output_count) : NULL;
    bool quant = d->output_sqnr_ran && d->output_count == output_count;
    bool native = d->native_sqnr_ran && d->output_count == output_count;
    bool reference = hqi_diag_reference_ran(d);
    for (int k = 0; (quant || native || reference) && k < output_count; k++) {
        cJSON *o = cJSON_CreateObject();
        const hq_layer_t *out = hq_graph_layer(d->graph, output_layers[k]);
        cJSON_AddItemToObject(o, "output", layer_json(d, output_layers[k]));
        cJSON_AddItemToObject(o, "layer",
                              layer_json(d, out->input_count == 1 ? out->inputs[0] : -1));
        cJSON_AddItemToObject(o, "quantized_vs_fp_optimized_db",
                              quant ? number(hqi_diag_output_sqnr(d, k)) : cJSON_CreateNull());
        cJSON_AddItemToObject(o, "fp_optimized_vs_native_db",
                              native ? number(hqi_diag_native_sqnr(d, k)) : cJSON_CreateNull());
        cJSON_AddItemToObject(o, "native_vs_reference_db",
                              reference ? number(hqi_diag_reference_sqnr(d, k))
                                        : cJSON_CreateNull());
        /* outputs judged by their decisions (agreement.c): how, and the agreement in % */
        hqi_diag_decision_kind_t kind = d->decisions ? d->decisions[k].kind : HQI_DECISION_NONE;
        const char *decision = hqi_diag_decision_name(kind);
        cJSON_AddItemToObject(o, "decision",
                              decision ? cJSON_CreateString(decision) : cJSON_CreateNull());
        cJSON_AddItemToObject(o, "quantized_vs_fp_optimized_agreement_pct",
                              quant && decision ? number(hqi_diag_output_agreement(d, k))
                                                : cJSON_CreateNull());
        cJSON_AddItemToObject(o, "fp_optimized_vs_native_agreement_pct",
                              native && decision ? number(hqi_diag_native_agreement(d, k))
                                                 : cJSON_CreateNull());
        cJSON_AddItemToArray(outputs, o);
    }
    if (d->verdict_made) {
        cJSON *verdict = cJSON_AddObjectToObject(root, "verdict");
        cJSON_AddStringToObject(verdict, "level", hqi_diag_level_word(d->verdict_level));
        cJSON_AddStringToObject(verdict, "summary", d->verdict_summary);
    } else {
        cJSON_AddNullToObject(root, "verdict");
    }

    /* the ranked causes (triage.c): measured_gain_db is --verify's (verify.c), else null */
    cJSON *triage = cJSON_AddArrayToObject(root, "triage");
    hqi_diag_cause_t causes[HQI_DIAG_TRIAGE_MAX];
    int cause_count = d->ran ? hqi_diag_triage(d, causes, HQI_DIAG_TRIAGE_MAX) : 0;
    for (int i = 0; i < cause_count; i++) {
        const hqi_diag_cause_t *c = &causes[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "rank", i + 1);
        cJSON_AddStringToObject(o, "inspector", hqi_diag_module_name(d, c->module));
        cJSON_AddStringToObject(o, "level", hqi_diag_level_word(c->level));
        cJSON_AddStringToObject(o, "summary", c->summary);
        cJSON *lines = cJSON_AddArrayToObject(o, "lines");
        for (int k = 0; k < d->rec_count; k++) {
            if (d->recs[k].module != c->module)
                continue;
            cJSON *line = cJSON_CreateObject();
            cJSON_AddStringToObject(line, "line", d->recs[k].line);
            cJSON_AddBoolToObject(line, "accepted", d->recs[k].accepted);
            cJSON_AddItemToArray(lines, line);
        }
        cJSON_AddItemToObject(o, "expected_gain_db", number(c->expected_gain_db));
        cJSON_AddItemToObject(o, "measured_gain_db",
                              number(hqi_diag_measured_gain(d, c->module)));
        cJSON_AddItemToArray(triage, o);
    }

    cJSON *verify = hqi_diag_verify_json(d);
    if (verify)
        cJSON_AddItemToObject(root, "verify", verify);
    else
        cJSON_AddNullToObject(root, "verify");

    cJSON *files = cJSON_AddArrayToObject(root, "files");
    for (int i = 0; i < d->file_count; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "inspector", hqi_diag_module_name(d, d->files[i].module));
        cJSON_AddStringToObject(o, "name", d->files[i].name);
        cJSON_AddItemToArray(files, o);
    }
    return root;
}

hq_status_t hq_diag_write_json(const hq_diag_t *diag, const char *path, hq_error_t *err)
{
    cJSON *root = build(diag);
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return hqi_nomem(err, path);
    size_t len = strlen(text);
    char *with_newline = malloc(len + 2);
    hq_status_t st;
    if (!with_newline) {
        st = hqi_nomem(err, path);
    } else {
        memcpy(with_newline, text, len);
        with_newline[len] = '\n';
        st = hqi_write_file_atomic(path, with_newline, len + 1, err);
    }
    free(with_newline);
    cJSON_free(text);
    return st;
}
