/* verify.c — `hq-diag --verify`: measures the advice instead of estimating it. After the prompts,
 * the float model is quantized again in memory (hq_optimize; the user's files are never
 * touched) with the archive's script merged with the accepted lines, exactly as
 * hq_diag_script_text merges them: once with every accepted line, and once with the accepted
 * lines of each cause of the triage alone. The output SQNR (quantized against fp_optimized, the
 * headline's measure) of the archive as given and of each re-quantization, on held-out samples,
 * gives the measured gain of each group; verify_report.c reports them. docs/diag.md,
 * "Verified fixes". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag/verify_internal.h"
#include "hq/quantize.h"
#include "util/util.h"

void hqi_diag_free_verify(hqi_diag_verify_t *v)
{
    if (!v)
        return;
    if (v->own_held)
        hq_dataset_destroy(v->held);
    for (int i = 0; i < v->run_count; i++) {
        free(v->runs[i].after_db);
        free(v->runs[i].error);
    }
    free(v->runs);
    free(v->before_db);
    free(v->baseline.after_db);
    free(v->baseline.error);
    free(v->data_path);
    free(v->from_path);
    free(v);
}

/* ---- checks before the run ------------------------------------------------------------------ */

/* The first command of the script that changes the graph (what hq optimize applies in its first
 * pass), or NULL: a quantized archive whose script has one cannot be optimized again, because its
 * graph already holds the change. */
static const hq_command_t *graph_change(const hq_script_t *script)
{
    static const char *const changes[] = {"normalization", "input_conversion",
                                          "change_output_activation"};
    for (int i = 0; i < hq_script_command_count(script); i++) {
        const hq_command_t *c = hq_script_command(script, i);
        for (size_t k = 0; c->name && k < sizeof changes / sizeof changes[0]; k++)
            if (!strcmp(c->name, changes[k]))
                return c;
    }
    return NULL;
}

/* calibset_size of the script's last model_optimization_config(calibration, ...), else 64 (the
 * quantizer's default, docs/quantizer.md). */
static int64_t script_calibset_size(const hq_script_t *script)
{
    int64_t size = 64;
    for (int i = 0; i < hq_script_command_count(script); i++) {
        const hq_command_t *c = hq_script_command(script, i);
        const hq_value_t *first = c->name ? hq_command_positional(c, 0) : NULL;
        const hq_value_t *v = hq_command_kwarg(c, "calibset_size");
        if (c->name && !strcmp(c->name, "model_optimization_config") && first && first->text &&
            !strcmp(first->text, "calibration") && v && v->kind == HQ_VALUE_NUMBER)
            size = (int64_t)v->number;
    }
    return size;
}

/* Reads every held-out sample once, so that bad data is refused before the run. */
static hq_status_t check_held(hqi_diag_verify_t *v, hq_error_t *err)
{
    hq_status_t st = HQ_OK;
    for (int i = 0; i < hq_dataset_input_count(v->held) && st == HQ_OK; i++) {
        hq_shape_t shape = hq_dataset_input_shape(v->held, i);
        int64_t size = 1;
        for (int k = 0; k < shape.ndim; k++)
            size *= shape.dims[k];
        float *sample = malloc((size_t)size * sizeof *sample);
        if (!sample)
            return hqi_nomem(err, "reading the held-out samples");
        for (int64_t s = 0; s < v->count && st == HQ_OK; s++)
            st = hq_dataset_read(v->held, i, v->first + s, 1, sample, err);
        free(sample);
    }
    return st;
}

/* The source of the re-quantizations can be used: a parsed archive of the same network, or the
 * archive opened when its script did not change the graph. */
static hq_status_t check_source(hq_diag_t *d, hqi_diag_verify_t *v, hq_error_t *err)
{
    if (hq_archive_state(d->archive) < HQ_STATE_QUANTIZED ||
        !hq_archive_has_params(d->archive, HQ_PARAMS_QUANTIZED))
        return hqi_error(err, HQ_ERR_STATE,
                         "%s: --verify compares re-quantizations with the quantized model, and "
                         "this archive is %s (quantize it first: hq optimize)",
                         d->model_path, hq_model_state_name(hq_archive_state(d->archive)));
    if (v->from_path) {
        hq_archive_t *from = NULL;
        hq_status_t st = hq_archive_open(v->from_path, &from, err);
        if (st == HQ_OK && hq_archive_state(from) != HQ_STATE_PARSED)
            st = hqi_error(err, HQ_ERR_INVALID,
                           "%s: --verify-from needs the parsed archive (the output of hq parse), "
                           "not a %s",
                           v->from_path, hq_model_state_name(hq_archive_state(from)));
        if (st == HQ_OK && strcmp(hq_archive_net_name(from), hq_archive_net_name(d->archive)) != 0)
            st = hqi_error(err, HQ_ERR_INVALID,
                           "%s: --verify-from holds network %s, and %s network %s", v->from_path,
                           hq_archive_net_name(from), d->model_path,
                           hq_archive_net_name(d->archive));
        hq_archive_destroy(from);
        return st;
    }
    hq_script_t *script = NULL;
    hq_status_t st = hq_archive_script(d->archive, &script, err);
    const hq_command_t *change = st == HQ_OK ? graph_change(script) : NULL;
    if (change)
        return hqi_error(err, HQ_ERR_INVALID,
                         "%s: --verify cannot take this archive back to its float model: its "
                         "script changed the graph (line %d: %s); give the parsed archive it was "
                         "optimized from: --verify-from PARSED.har",
                         d->model_path, change->line, change->name);
    return st;
}

hq_status_t hq_diag_set_verify(hq_diag_t *d, const hq_diag_verify_options_t *options,
                               hq_error_t *err)
{
    static const hq_diag_verify_options_t none = {0};
    if (!options)
        options = &none;
    if (!d->archive)
        return hqi_error(err, HQ_ERR_STATE, "hq-diag: open a model before --verify");
    if (!d->dataset)
        return hqi_error(err, HQ_ERR_INVALID,
                         "%s: --verify re-quantizes with the calibration data: give it with -d "
                         "DATASET",
                         d->model_path);
    hqi_diag_verify_t *v = calloc(1, sizeof *v);
    if (!v)
        return hqi_nomem(err, "--verify");
    v->threads = options->threads;
    v->data_path = options->data_path ? hqi_strdup(options->data_path) : NULL;
    v->from_path = options->from_path ? hqi_strdup(options->from_path) : NULL;
    hq_status_t st = (options->data_path && !v->data_path) || (options->from_path && !v->from_path)
                         ? hqi_nomem(err, "--verify")
                         : check_source(d, v, err);
    hq_script_t *script = NULL;
    if (st == HQ_OK)
        st = hq_archive_script(d->archive, &script, err);
    if (st == HQ_OK)
        v->calibset_size = script_calibset_size(script);
    if (st == HQ_OK && v->data_path) {
        st = hq_dataset_open(v->data_path, d->graph, &v->held, err);
        v->own_held = st == HQ_OK;
        if (st == HQ_OK) {
            int64_t n = hq_dataset_count(v->held);
            v->count = n < d->options.sample_count ? n : d->options.sample_count;
            if (v->count <= 0)
                st = hqi_error(err, HQ_ERR_INVALID, "%s: --verify-data holds no sample",
                               v->data_path);
        }
    } else if (st == HQ_OK) {
        int64_t n = hq_dataset_count(d->dataset);
        v->held = d->dataset;
        v->first = v->calibset_size;
        v->count = n - v->first < d->options.sample_count ? n - v->first : d->options.sample_count;
        if (v->count <= 0)
            st = hqi_error(err, HQ_ERR_INVALID,
                           "%s: --verify needs held-out samples, and the dataset's %lld sample(s) "
                           "are all used for calibration (calibset_size %lld): give --verify-data "
                           "HELD_OUT",
                           d->dataset_path, (long long)n, (long long)v->calibset_size);
    }
    if (st == HQ_OK)
        st = check_held(v, err);
    if (st != HQ_OK) {
        hqi_diag_free_verify(v);
        return st;
    }
    hqi_diag_free_verify(d->verify);
    d->verify = v;
    return HQ_OK;
}

/* ---- measuring ------------------------------------------------------------------------------ */

/* What the progress and log callbacks of one re-quantization need. */
typedef struct verify_progress {
    hq_diag_t *diag;
    const char *label;
} verify_progress_t;

static void on_progress(void *user, const char *stage, int64_t done, int64_t total)
{
    verify_progress_t *p = user;
    char text[256];
    snprintf(text, sizeof text, "Verifying %s: %s", p->label, stage ? stage : "");
    hq_diag_event_t ev = {
        .kind = HQ_DIAG_EVENT_PROGRESS, .text = text, .done = done, .total = total};
    if (p->diag->options.on_event)
        p->diag->options.on_event(p->diag->options.event_user, &ev);
}

static void on_log(void *user, hq_log_level_t level, const char *message)
{
    verify_progress_t *p = user;
    if (level >= HQ_LOG_INFO)
        hqi_diag_event(p->diag, HQ_DIAG_EVENT_LOG, HQ_DIAG_INFO, NULL, "verify %s: %s", p->label,
                       message);
}

/* Reads held-out samples [first, first + n) into the inputs of `graph` (whose input layers carry
 * the names of the run's graph inputs the held-out data was matched to). */
static hq_status_t read_held(hq_diag_t *d, const hq_graph_t *graph, int64_t first, int64_t n,
                             float **inputs, hq_error_t *err)
{
    hqi_diag_verify_t *v = d->verify;
    int count;
    const int *graph_inputs = hq_graph_inputs(graph, &count);
    for (int i = 0; i < hq_dataset_input_count(v->held); i++) {
        int layer = hq_dataset_input_layer(v->held, i), slot = -1;
        const char *name = layer >= 0 ? hq_graph_layer(d->graph, layer)->name : NULL;
        for (int g = 0; g < count && name; g++)
            if (!strcmp(hq_graph_layer(graph, graph_inputs[g])->name, name))
                slot = g;
        if (slot < 0)
            return hqi_error(err, HQ_ERR_INVALID,
                             "held-out input %d (%s) feeds no input of the re-quantized model", i,
                             name ? name : "?");
        hq_status_t st = hq_dataset_read(v->held, i, first, n, inputs[slot], err);
        if (st != HQ_OK)
            return st;
    }
    return HQ_OK;
}

/* Output SQNR (dB, per output) of the quantized emulation of `archive` against its fp_optimized
 * one (native when it has none) on the held-out samples: the headline's measure. */
static hq_status_t measure(hq_diag_t *d, hq_archive_t *archive, const char *label, double *db,
                           hq_error_t *err)
{
    hqi_diag_verify_t *v = d->verify;
    hq_emulator_t *ref = NULL, *quant = NULL;
    hq_target_t float_target = hq_archive_has_params(archive, HQ_PARAMS_FP_OPTIMIZED)
                                   ? HQ_TARGET_FP_OPTIMIZED
                                   : HQ_TARGET_NATIVE;
    hq_status_t st = hq_emulator_create_from_archive(archive, float_target, &ref, err);
    if (st == HQ_OK)
        st = hq_emulator_create_from_archive(archive, HQ_TARGET_QUANTIZED, &quant, err);
    if (st == HQ_OK && v->threads > 0)
        st = hq_emulator_set_threads(ref, v->threads, err);
    if (st == HQ_OK && v->threads > 0)
        st = hq_emulator_set_threads(quant, v->threads, err);
    const hq_graph_t *graph = st == HQ_OK ? hq_emulator_graph(ref) : NULL;
    int in_count = 0, out_count = v->output_count;
    if (graph)
        hq_graph_inputs(graph, &in_count);
    int64_t batch = d->options.batch_size;
    float **inputs = calloc((size_t)in_count + 1, sizeof *inputs);
    float **a = calloc((size_t)out_count + 1, sizeof *a),
          **b = calloc((size_t)out_count + 1, sizeof *b);
    double *signal = calloc((size_t)out_count + 1, sizeof *signal);
    double *error = calloc((size_t)out_count + 1, sizeof *error);
    if (st == HQ_OK && (!inputs || !a || !b || !signal || !error))
        st = hqi_nomem(err, "--verify");
    for (int i = 0; st == HQ_OK && i < in_count; i++)
        if (!(inputs[i] = malloc((size_t)(batch * hq_emulator_input_size(ref, i)) * sizeof(float))))
            st = hqi_nomem(err, "--verify");
    for (int k = 0; st == HQ_OK && k < out_count; k++) {
        int64_t size = hq_emulator_output_size(ref, k);
        if (size != hq_emulator_output_size(quant, k))
            st = hqi_error(err, HQ_ERR_INVALID, "%s: output %d differs between targets", label, k);
        else if (!(a[k] = malloc((size_t)(batch * size) * sizeof(float))) ||
                 !(b[k] = malloc((size_t)(batch * size) * sizeof(float))))
            st = hqi_nomem(err, "--verify");
    }
    char text[256];
    snprintf(text, sizeof text, "Verifying %s: held-out SQNR", label);
    for (int64_t s = 0; st == HQ_OK && s < v->count; s += batch) {
        int64_t n = v->count - s < batch ? v->count - s : batch;
        st = read_held(d, graph, v->first + s, n, inputs, err);
        if (st == HQ_OK)
            st = hq_emulator_run(ref, n, (const float *const *)inputs, a, NULL, NULL, err);
        if (st == HQ_OK)
            st = hq_emulator_run(quant, n, (const float *const *)inputs, b, NULL, NULL, err);
        for (int k = 0; st == HQ_OK && k < out_count; k++)
            for (int64_t i = 0; i < n * hq_emulator_output_size(ref, k); i++) {
                double f = a[k][i], e = b[k][i] - f;
                signal[k] += f * f;
                error[k] += e * e;
            }
        hq_diag_event_t ev = {
            .kind = HQ_DIAG_EVENT_PROGRESS, .text = text, .done = s + n, .total = v->count};
        if (st == HQ_OK && d->options.on_event)
            d->options.on_event(d->options.event_user, &ev);
    }
    for (int k = 0; st == HQ_OK && k < out_count; k++)
        db[k] = hqi_diag_sqnr_db(signal[k], error[k]);
    for (int i = 0; inputs && i < in_count; i++)
        free(inputs[i]);
    for (int k = 0; k < out_count; k++) {
        free(a ? a[k] : NULL);
        free(b ? b[k] : NULL);
    }
    free(inputs);
    free(a);
    free(b);
    free(signal);
    free(error);
    hq_emulator_destroy(ref);
    hq_emulator_destroy(quant);
    return st;
}

/* The merged script with only the accepted lines `run` applies (every accepted line, or the
 * cause's): hq_diag_script_text with the other accepted lines set aside for the call. */
static hq_status_t run_script(hq_diag_t *d, const hqi_diag_verify_run_t *run, hq_script_t **out,
                              hq_error_t *err)
{
    bool *kept = malloc(((size_t)d->rec_count + 1) * sizeof *kept);
    if (!kept)
        return hqi_nomem(err, "--verify");
    for (int r = 0; r < d->rec_count; r++) {
        kept[r] = d->recs[r].accepted;
        d->recs[r].accepted =
            kept[r] && (run->module == HQI_DIAG_VERIFY_ALL || d->recs[r].module == run->module);
    }
    char *text = NULL;
    hq_status_t st = hq_diag_script_text(d, &text, err);
    for (int r = 0; r < d->rec_count; r++)
        d->recs[r].accepted = kept[r];
    free(kept);
    if (st == HQ_OK)
        st = hq_script_parse(text, strlen(text), "merged model script", out, err);
    free(text);
    return st;
}

/* Re-quantizes in memory with the run's lines and measures it. */
static hq_status_t requantize(hq_diag_t *d, hqi_diag_verify_run_t *run, const char *label,
                              hq_error_t *err)
{
    hqi_diag_verify_t *v = d->verify;
    hq_script_t *script = NULL;
    hq_archive_t *archive = NULL;
    hq_dataset_t *calib = NULL;
    hq_graph_t *graph = NULL;
    hq_status_t st = run_script(d, run, &script, err);
    if (st == HQ_OK)
        st = hq_archive_open(v->from_path ? v->from_path : d->model_path, &archive, err);
    if (st == HQ_OK && !v->from_path) { /* back to the float model: the graph and native params */
        st = hq_archive_set_params(archive, HQ_PARAMS_FP_OPTIMIZED, NULL, err);
        if (st == HQ_OK)
            st = hq_archive_set_params(archive, HQ_PARAMS_QUANTIZED, NULL, err);
        if (st == HQ_OK)
            st = hq_archive_set_state(archive, HQ_STATE_PARSED, err);
    }
    if (st == HQ_OK)
        st = hq_archive_graph(archive, &graph, err);
    if (st == HQ_OK) /* matched to this archive's input layers, as hq optimize matches it */
        st = hq_dataset_open(d->dataset_path, graph, &calib, err);
    verify_progress_t progress = {d, label};
    hq_optimize_options_t options = {
        .hw_arch = d->hw_arch,
        .threads = v->threads,
        .log = on_log,
        .log_user = &progress,
        .script_name = "merged model script",
        .progress = on_progress,
        .progress_user = &progress,
        .no_noise_analysis = 1,
    };
    if (st == HQ_OK)
        st = hq_optimize(archive, script, calib, &options, err);
    if (st == HQ_OK)
        st = measure(d, archive, label, run->after_db, err);
    hq_dataset_destroy(calib);
    hq_archive_destroy(archive);
    hq_script_destroy(script);
    return st;
}

static hq_status_t add_run(hqi_diag_verify_t *v, int module, int rank, int lines, hq_error_t *err)
{
    hqi_diag_verify_run_t *grown = realloc(v->runs, ((size_t)v->run_count + 1) * sizeof *grown);
    if (!grown)
        return hqi_nomem(err, "--verify");
    v->runs = grown;
    hqi_diag_verify_run_t *run = &v->runs[v->run_count];
    memset(run, 0, sizeof *run);
    run->module = module;
    run->rank = rank;
    run->line_count = lines;
    run->after_db = calloc((size_t)v->output_count + 1, sizeof *run->after_db);
    if (!run->after_db)
        return hqi_nomem(err, "--verify");
    v->run_count++;
    return HQ_OK;
}

hq_status_t hq_diag_verify(hq_diag_t *d, hq_error_t *err)
{
    hqi_diag_verify_t *v = d->verify;
    if (!v)
        return hqi_error(err, HQ_ERR_STATE, "hq-diag: hq_diag_set_verify was not called");
    if (!d->ran)
        return hqi_error(err, HQ_ERR_STATE, "hq-diag: --verify runs after the diagnosis");
    if (v->ran)
        return hqi_error(err, HQ_ERR_STATE, "hq-diag: verified already");
    v->ran = true;
    hq_graph_outputs(d->graph, &v->output_count);
    v->before_db = calloc((size_t)v->output_count + 1, sizeof *v->before_db);
    if (!v->before_db)
        return hqi_nomem(err, "--verify");
    int accepted = hq_diag_accepted_count(d);
    if (accepted == 0) {
        hqi_diag_event(d, HQ_DIAG_EVENT_VERIFY, HQ_DIAG_INFO, NULL,
                       "Verification: no line accepted, nothing to re-quantize");
        return HQ_OK;
    }
    /* the runs: every accepted line, then each ranked cause with accepted lines of its own
     * (unless they are every accepted line: that run stands for it) */
    hq_status_t st = add_run(v, HQI_DIAG_VERIFY_ALL, 0, accepted, err);
    hqi_diag_cause_t causes[HQI_DIAG_TRIAGE_MAX];
    int cause_count = hqi_diag_triage(d, causes, HQI_DIAG_TRIAGE_MAX);
    for (int i = 0; st == HQ_OK && i < cause_count; i++) {
        int lines = 0;
        for (int r = 0; r < d->rec_count; r++)
            lines += d->recs[r].accepted && d->recs[r].module == causes[i].module;
        if (causes[i].module >= 0 && lines > 0 && lines < accepted)
            st = add_run(v, causes[i].module, i + 1, lines, err);
    }
    if (st == HQ_OK)
        st = measure(d, d->archive, "the archive as given", v->before_db, err);
    v->baseline.module = HQI_DIAG_VERIFY_NONE;
    v->baseline.after_db = calloc((size_t)v->output_count + 1, sizeof *v->baseline.after_db);
    if (st == HQ_OK && !v->baseline.after_db)
        st = hqi_nomem(err, "--verify");
    if (st != HQ_OK)
        return st;
    hq_error_t baseline_err = {0};
    v->baseline.ok =
        requantize(d, &v->baseline, hqi_diag_verify_label(d, &v->baseline), &baseline_err) == HQ_OK;
    if (!v->baseline.ok)
        v->baseline.error = hqi_strdup(baseline_err.message);
    for (int i = 0; i < v->run_count; i++) {
        hqi_diag_verify_run_t *run = &v->runs[i];
        hq_error_t e = {0};
        run->ok = requantize(d, run, hqi_diag_verify_label(d, run), &e) == HQ_OK;
        if (!run->ok)
            run->error = hqi_strdup(e.message);
    }
    hqi_diag_verify_report(d);
    return HQ_OK;
}
