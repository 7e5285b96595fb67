/* runner.c — the hq-diag run: opens the model and dataset, checks each inspector's needs, runs it
 * with the inspector context (context.c), and offers its recommendation groups through the
 * caller's question callback. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag/diag_internal.h"
#include "util/util.h"

/* ---- opening -------------------------------------------------------------------------------- */

/* Reads every sample the run will use once, so that unreadable or non-finite data is refused
 * before any diagnostic is printed. */
static hq_status_t check_samples(hq_diag_t *diag, hq_error_t *err)
{
    enum { BATCH = 8 };
    hq_status_t st = HQ_OK;
    for (int input = 0; input < hq_dataset_input_count(diag->dataset) && st == HQ_OK; input++) {
        hq_shape_t shape = hq_dataset_input_shape(diag->dataset, input);
        size_t per_sample = 1;
        for (int d = 0; d < shape.ndim; d++)
            per_sample *= (size_t)shape.dims[d];
        float *batch = malloc(per_sample * BATCH * sizeof *batch);
        if (!batch)
            return hqi_nomem(err, "reading the dataset");
        for (int64_t first = 0; first < diag->samples && st == HQ_OK; first += BATCH) {
            int64_t n = diag->samples - first < BATCH ? diag->samples - first : BATCH;
            st = hq_dataset_read(diag->dataset, input, first, n, batch, err);
        }
        free(batch);
    }
    return st;
}

hq_status_t hq_diag_open(hq_diag_t *diag, const char *model_path, const char *dataset_path,
                         hq_error_t *err)
{
    if (diag->archive)
        return hqi_error(err, HQ_ERR_STATE, "hq-diag: a model is already open");
    diag->model_path = hqi_strdup(model_path);
    diag->dataset_path = hqi_strdup(dataset_path ? dataset_path : "");
    if (!diag->model_path || !diag->dataset_path)
        return hqi_nomem(err, model_path);
    hq_status_t st = hq_archive_open(model_path, &diag->archive, err);
    if (st == HQ_OK)
        st = hq_archive_graph(diag->archive, &diag->graph, err);
    if (st == HQ_OK) {
        hq_script_t *script;
        st = hq_archive_script(diag->archive, &script, err); /* a bad script fails here, early */
        if (st == HQ_OK)
            hqi_diag_check_script(diag);
    }
    if (st == HQ_OK && dataset_path)
        st = hq_dataset_open(dataset_path, diag->graph, &diag->dataset, err);
    if (st != HQ_OK)
        return st;
    if (diag->dataset) {
        int64_t n = hq_dataset_count(diag->dataset);
        diag->samples = n < diag->options.sample_count ? n : diag->options.sample_count;
        if (diag->samples <= 0)
            return hqi_error(err, HQ_ERR_INVALID, "%s: the dataset holds no sample", dataset_path);
        st = check_samples(diag, err);
    }
    if (st != HQ_OK)
        return st;
    if (!diag->hw_arch) {
        diag->hw_arch = hqi_strdup(hq_archive_hw_arch(diag->archive));
        diag->options.hw_arch = diag->hw_arch;
    }
    return HQ_OK;
}

hq_archive_t *hq_diag_archive(hq_diag_t *diag)
{
    return diag->archive;
}

int64_t hq_diag_sample_count(const hq_diag_t *diag)
{
    return diag->samples;
}

/* ---- the run -------------------------------------------------------------------------------- */

static bool is_quantized(const hq_diag_t *d)
{
    return hq_archive_state(d->archive) >= HQ_STATE_QUANTIZED &&
           hq_archive_has_params(d->archive, HQ_PARAMS_QUANTIZED);
}

/* What only a quantized model has: its params, its emulation, its noise analysis. */
#define NEEDS_QUANTIZATION                                                                         \
    (HQ_NEEDS_QUANTIZED | HQ_NEEDS_QUANTIZED_STATS | HQ_NEEDS_NOISE_ANALYSIS)

/* Why an inspector with these needs cannot run here, or NULL. `buf` holds built reasons. */
static const char *unmet_need(hq_diag_t *d, uint32_t needs, char *buf, size_t size)
{
    const char *why;
    if ((needs & NEEDS_QUANTIZATION) && !is_quantized(d))
        return "the model is not quantized";
    if ((needs & (HQ_NEEDS_DATASET | HQ_NEEDS_FLOAT_STATS | HQ_NEEDS_QUANTIZED_STATS |
                  HQ_NEEDS_RGB_IMAGES | HQ_NEEDS_NATIVE_STATS)) &&
        !d->dataset)
        return "no dataset given (use -d DATASET)";
    if ((needs & HQ_NEEDS_FP_OPTIMIZED) &&
        !hq_archive_has_params(d->archive, HQ_PARAMS_FP_OPTIMIZED))
        return "the archive has no fp-optimized params (run hq optimize)";
    if (needs & HQ_NEEDS_NOISE_ANALYSIS) {
        bool any = false;
        for (int l = 0; d->noise && l < hq_graph_layer_count(d->graph) && !any; l++)
            any = d->noise[l].noise.has_cumulative || d->noise[l].noise.has_partial;
        if (!any)
            return d->dataset ? "no noise analysis in the archive and none could be computed "
                                "(run hq analyze-noise)"
                              : "no noise analysis in the archive (run hq analyze-noise, or give "
                                "-d DATASET)";
    }
    if ((needs & HQ_NEEDS_FLOAT_STATS) && !d->stats[HQ_STATS_FLOAT].ran) {
        snprintf(buf, size, "float statistics unavailable: %s",
                 d->stats[HQ_STATS_FLOAT].why ? d->stats[HQ_STATS_FLOAT].why : "not computed");
        return buf;
    }
    if ((needs & HQ_NEEDS_QUANTIZED_STATS) && !d->stats[HQ_STATS_QUANTIZED].ran) {
        snprintf(buf, size, "quantized statistics unavailable: %s",
                 d->stats[HQ_STATS_QUANTIZED].why ? d->stats[HQ_STATS_QUANTIZED].why
                                                  : "not computed");
        return buf;
    }
    if ((needs & HQ_NEEDS_NATIVE_STATS) && !hqi_diag_stats_set(d, HQ_STATS_NATIVE)->ran) {
        why = d->stats[HQ_STATS_NATIVE].why;
        snprintf(buf, size, "native statistics unavailable: %s", why ? why : "not computed");
        return buf;
    }
    if (needs & HQ_NEEDS_RGB_IMAGES) {
        hq_shape_t shape = hq_dataset_input_shape(d->dataset, 0);
        if (shape.ndim != 3 || shape.dims[2] != 3)
            return "the data is not 3-channel images";
        int layer = hq_dataset_input_layer(d->dataset, 0);
        const hqi_diag_stats_t *set = &d->stats[HQ_STATS_FLOAT];
        if (set->ran && layer >= 0 && set->stats[set->first[layer]].min < 0)
            return "the data has negative values, so it is not raw images";
    }
    return NULL;
}

/* True when a model-script line changes what the network sees at its input (a normalization
 * layer or an input conversion): every statistic of this run was measured before it. */
bool hqi_diag_changes_input(const char *line)
{
    if (strstr(line, "input_conversion("))
        return true;
    const char *p = strstr(line, "normalization(");
    return p && (p == line || p[-1] == ' ' || p[-1] == '=');
}

bool hqi_diag_changes_network(const char *line)
{
    return strstr(line, "model_optimization_flavor(") != NULL ||
           strstr(line, "compression_params") != NULL;
}

/* Offers the recommendation groups module `module` made, in the order of their first line. Once a
 * line that changes the input is accepted, the groups offered after it default to none/no: their
 * evidence (ranges, histograms, SQNR) was measured on the input as it was, and accepting them
 * together with the fix can undo it (a clipping range measured on un-normalized data). */
static void offer_groups(hq_diag_t *d, int module)
{
    static const char *const yes_no[] = {"y", "n"};
    static const char *const levels[] = {"none", "warning", "all", "pick"};
    enum { PICK = 3 };
    const char *name = hqi_diag_module_name(d, module);
    for (int i = 0; i < d->rec_count; i++) {
        hqi_diag_rec_t *first = &d->recs[i];
        if (first->module != module || first->offered)
            continue;
        const char *question = NULL;
        int number = 0;
        for (int k = i; k < d->rec_count; k++) {
            hqi_diag_rec_t *r = &d->recs[k];
            if (r->module != module || strcmp(r->group, first->group))
                continue;
            r->offered = true;
            if (!question && r->question)
                question = r->question;
            hq_diag_event_t ev = {.kind = HQ_DIAG_EVENT_RECOMMENDATION,
                                  .level = r->level,
                                  .inspector = name,
                                  .text = r->line,
                                  .detail = r->reason,
                                  .number = ++number};
            if (d->options.on_event)
                d->options.on_event(d->options.event_user, &ev);
        }
        bool stale = d->input_changed_by && !hqi_diag_changes_input(first->line);
        if (stale)
            hqi_diag_event(d, HQ_DIAG_EVENT_MESSAGE, HQ_DIAG_WARNING, name,
                           "These lines were measured before the accepted `%s` changed the "
                           "input; they default to no: re-run hq optimize with the new script, "
                           "then hq-diag, to get them measured again",
                           d->input_changed_by);
        int answer;
        if (first->group_kind == HQ_GROUP_LEVELS) {
            int def =
                first->default_answer >= HQ_ACCEPT_NONE && first->default_answer <= HQ_ACCEPT_ALL
                    ? first->default_answer
                    : HQ_ACCEPT_WARNING;
            if (stale)
                def = HQ_ACCEPT_NONE;
            answer = hqi_diag_ask(d, module,
                                  question ? question : "Apply the recommended changes?", levels,
                                  d->options.pick ? 4 : 3, def);
        } else {
            int def = first->default_answer == HQ_ANSWER_YES && !stale ? 0 : 1;
            answer = hqi_diag_ask(d, module,
                                  question ? question : "Apply the recommended changes?", yes_no,
                                  2, def) == 0
                         ? HQ_ACCEPT_ALL
                         : HQ_ACCEPT_NONE;
        }
        if (!d->options.ask && d->options.accept == HQ_DIAG_ACCEPT_NONE)
            answer = HQ_ACCEPT_NONE;
        else if (!d->options.ask && d->options.accept == HQ_DIAG_ACCEPT_ALL)
            answer = HQ_ACCEPT_ALL;
        bool *picked = NULL;
        if (answer == PICK) {
            picked = calloc((size_t)number, sizeof *picked);
            if (picked)
                d->options.pick(d->options.ask_user, name, number, picked);
        }
        int accepted = 0, total = 0;
        for (int k = i; k < d->rec_count; k++) {
            hqi_diag_rec_t *r = &d->recs[k];
            if (r->module != module || strcmp(r->group, first->group))
                continue;
            total++;
            r->accepted = answer == PICK
                              ? picked && picked[total - 1]
                              : answer == HQ_ACCEPT_ALL ||
                                    (answer == HQ_ACCEPT_WARNING && r->level >= HQ_DIAG_WARNING);
            accepted += r->accepted;
            if (r->accepted && !d->input_changed_by && hqi_diag_changes_input(r->line))
                d->input_changed_by = r->line;
        }
        free(picked);
        static const char *const answers[] = {"none", "warning", "all"};
        if (d->options.ask)
            hqi_diag_event(d, HQ_DIAG_EVENT_MESSAGE, HQ_DIAG_INFO, name,
                           "Accepted %d of %d recommended line(s)", accepted, total);
        else if (d->options.accept != HQ_DIAG_ACCEPT_DEFAULTS)
            hqi_diag_event(d, HQ_DIAG_EVENT_MESSAGE, HQ_DIAG_INFO, name,
                           "Accepted %d of %d recommended line(s) (non-interactive answer: %s)",
                           accepted, total,
                           d->options.accept == HQ_DIAG_ACCEPT_ALL ? "all" : "none");
        else
            hqi_diag_event(d, HQ_DIAG_EVENT_MESSAGE, HQ_DIAG_INFO, name,
                           "Accepted %d of %d recommended line(s) (non-interactive default: %s)",
                           accepted, total,
                           first->group_kind == HQ_GROUP_LEVELS ? answers[answer]
                           : answer == HQ_ACCEPT_ALL            ? "yes"
                                                                : "no");
    }
}

hq_status_t hq_diag_run(hq_diag_t *diag, hq_error_t *err)
{
    hq_diag_t *d = diag;
    if (!d->archive)
        return hqi_error(err, HQ_ERR_STATE, "hq-diag: no model opened");
    if (d->ran)
        return hqi_error(err, HQ_ERR_STATE, "hq-diag: already ran");
    /* pre-quantization: the inspectors that need nothing quantized run; when every selected one
     * needs it, nothing can run and the error says what makes the archive usable */
    int need_quantization = 0;
    for (int i = 0; !is_quantized(d) && i < d->order_count; i++)
        need_quantization += (d->modules[d->order[i]].slots.needs & NEEDS_QUANTIZATION) != 0;
    if (need_quantization > 0 && need_quantization == d->order_count)
        return hqi_error(err, HQ_ERR_STATE,
                         "Model %s is not quantized (state %s) and every selected inspector "
                         "needs a quantized model; quantize it first: hq optimize %s -d DATASET",
                         d->model_path, hq_model_state_name(hq_archive_state(d->archive)),
                         d->model_path);
    d->ran = true;
    d->failed = calloc((size_t)d->module_count + 1, sizeof *d->failed);
    d->skipped = calloc((size_t)d->module_count + 1, sizeof *d->skipped);
    if (!d->failed || !d->skipped)
        return hqi_nomem(err, "hq-diag");
    hqi_diag_event(d, HQ_DIAG_EVENT_LOG, HQ_DIAG_INFO, NULL,
                   "model %s (network %s, state %s), dataset %s (%lld samples used)", d->model_path,
                   hq_archive_net_name(d->archive),
                   hq_model_state_name(hq_archive_state(d->archive)),
                   d->dataset ? d->dataset_path : "none", (long long)d->samples);
    hqi_diag_compute_stats(d);
    hqi_diag_reference_pass(d);
    hqi_diag_headline(d);
    if (!is_quantized(d)) {
        char names[1024] = "";
        size_t at = 0;
        for (int i = 0; i < d->order_count && at < sizeof names; i++) {
            const hq_inspector_t *desc = &d->modules[d->order[i]].slots;
            if (desc->needs & NEEDS_QUANTIZATION)
                at += (size_t)snprintf(names + at, sizeof names - at, "%s%s", at ? ", " : "",
                                       desc->name);
        }
        if (need_quantization)
            hqi_diag_event(d, HQ_DIAG_EVENT_MESSAGE, HQ_DIAG_INFO, NULL,
                           "Pre-quantization run (%s is %s): skipped %d inspector(s) that need a "
                           "quantized model: %s (hq optimize %s -d DATASET quantizes it)",
                           d->model_path, hq_model_state_name(hq_archive_state(d->archive)),
                           need_quantization, names, d->model_path);
        else
            hqi_diag_event(d, HQ_DIAG_EVENT_MESSAGE, HQ_DIAG_INFO, NULL,
                           "Pre-quantization run (%s is %s): no selected inspector needs a "
                           "quantized model",
                           d->model_path, hq_model_state_name(hq_archive_state(d->archive)));
    }

    for (int i = 0; i < d->order_count; i++) {
        int m = d->order[i];
        const hq_inspector_t *desc = &d->modules[m].slots;
        char buf[1024];
        const char *why = unmet_need(d, desc->needs, buf, sizeof buf);
        if (why) {
            d->skipped[m] = hqi_strdup(why);
            /* the pre-quantization line named these already */
            if (!is_quantized(d) && (desc->needs & NEEDS_QUANTIZATION))
                hqi_diag_event(d, HQ_DIAG_EVENT_LOG, HQ_DIAG_INFO, desc->name, "Skipping %s, %s",
                               desc->name, why);
            else
                hqi_diag_event(d, HQ_DIAG_EVENT_SKIP, HQ_DIAG_INFO, desc->name, "%s", why);
            continue;
        }
        hqi_diag_event(d, HQ_DIAG_EVENT_MODULE, HQ_DIAG_INFO, desc->name, "%s", desc->name);
        hqi_diag_host_t host = {.diag = d, .module = m};
        hq_inspector_context_t ctx;
        hqi_diag_fill_context(&ctx, &host);
        void *state = NULL;
        hq_error_t e = {0};
        hq_status_t st = HQ_OK;
        if (desc->init)
            st = desc->init(&ctx, &state, &e);
        if (st == HQ_OK) {
            st = desc->run(&ctx, state, &e);
            if (desc->fini)
                desc->fini(state);
        }
        if (st != HQ_OK) {
            d->failed[m] = true;
            char message[HQ_ERROR_MESSAGE_MAX + 128];
            snprintf(message, sizeof message, "Inspector %s failed: %s", desc->name,
                     e.message[0] ? e.message : hq_status_string(st));
            hqi_diag_add_finding(d, m, HQ_DIAG_ERROR, -1, message, NULL, 0, 0);
        } else if (host.skip_reason) {
            d->skipped[m] = host.skip_reason;
            host.skip_reason = NULL;
            hqi_diag_event(d, HQ_DIAG_EVENT_SKIP, HQ_DIAG_INFO, desc->name, "%s", d->skipped[m]);
        }
        free(host.skip_reason);
        hqi_diag_fold_findings(d, m);
        offer_groups(d, m);
    }
    hqi_diag_report_triage(d);
    return HQ_OK;
}

int hq_diag_finding_count(const hq_diag_t *diag, hq_diag_level_t level)
{
    int n = 0;
    for (int i = 0; i < diag->finding_count; i++)
        n += diag->findings[i].level == level;
    return n;
}

int hq_diag_failure_count(const hq_diag_t *diag)
{
    int n = 0;
    for (int i = 0; diag->failed && i < diag->module_count; i++)
        n += diag->failed[i];
    return n;
}

int hq_diag_recommendation_count(const hq_diag_t *diag)
{
    return diag->rec_count;
}

int hq_diag_accepted_count(const hq_diag_t *diag)
{
    int n = 0;
    for (int i = 0; i < diag->rec_count; i++)
        n += diag->recs[i].accepted;
    return n;
}

const char *hqi_diag_level_word(hq_diag_level_t level)
{
    static const char *const words[] = {"info", "warning", "error"};
    return (int)level >= 0 && level <= HQ_DIAG_ERROR ? words[level] : "info";
}
