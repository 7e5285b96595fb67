/* verify.c — `hq-diag --verify`: measures the advice instead of estimating it. After the prompts,
 * the float model is quantized again in memory (hq_optimize; the user's files are never
 * touched) with the archive's script merged with the accepted lines, exactly as
 * hq_diag_script_text merges them: once with every accepted line, and once with the accepted
 * lines of each cause of the triage alone. The output SQNR (quantized against fp_optimized, the
 * headline's measure) of the archive as given and of each re-quantization, on held-out samples,
 * gives the measured gain of each group. docs/diag.md, "Verified fixes". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "diag/diag_internal.h"
#include "hq/quantize.h"
#include "util/util.h"

/* One re-quantization: the whole accepted set, or one triage cause's accepted lines. */
typedef struct verify_run {
    int module;       /* the cause's module; -2: every accepted line */
    int rank;         /* the cause's triage rank; 0 for every accepted line */
    int line_count;   /* accepted lines it applies */
    double *after_db; /* [outputs] */
    bool ok;
    char *error; /* why the re-quantization or its measurement failed */
} verify_run_t;

#define VERIFY_ALL (-2)
#define VERIFY_NONE (-3) /* the archive's script alone: does re-quantizing reproduce it? */
/* Largest difference from the archive's own figures that still counts as reproduced: the
 * rounding of the printed figures; re-quantizing the same float model with the same script and
 * data gives the same integer params, hence the same figures, bit for bit. */
#define VERIFY_REPRODUCED_DB 0.01

struct hqi_diag_verify {
    char *data_path; /* --verify-data, or NULL */
    char *from_path; /* --verify-from, or NULL: the archive opened */
    int threads;
    hq_dataset_t *held;    /* the held-out samples: --verify-data, or the run's dataset */
    bool own_held;         /* held was opened here */
    int64_t first, count;  /* held-out samples [first, first + count) of held */
    int64_t calibset_size; /* of the archive's script: the samples calibration uses */
    bool ran;
    int output_count;
    double *before_db;     /* [outputs] the archive as given */
    verify_run_t baseline; /* the archive's script re-quantized without any accepted line */
    verify_run_t *runs;
    int run_count;
};

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
static hq_status_t run_script(hq_diag_t *d, const verify_run_t *run, hq_script_t **out,
                              hq_error_t *err)
{
    bool *kept = malloc(((size_t)d->rec_count + 1) * sizeof *kept);
    if (!kept)
        return hqi_nomem(err, "--verify");
    for (int r = 0; r < d->rec_count; r++) {
        kept[r] = d->recs[r].accepted;
        d->recs[r].accepted =
            kept[r] && (run->module == VERIFY_ALL || d->recs[r].module == run->module);
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
static hq_status_t requantize(hq_diag_t *d, verify_run_t *run, const char *label, hq_error_t *err)
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

/* The lowest of the outputs' figures. */
static double lowest(const double *db, int count)
{
    double low = INFINITY;
    for (int k = 0; k < count; k++)
        low = db[k] < low ? db[k] : low;
    return low;
}

static double run_gain(const hqi_diag_verify_t *v, const verify_run_t *run)
{
    return run->ok ? lowest(run->after_db, v->output_count) - lowest(v->before_db, v->output_count)
                   : NAN;
}

static const char *run_label(const hq_diag_t *d, const verify_run_t *run)
{
    return run->module == VERIFY_ALL    ? "every accepted line"
           : run->module == VERIFY_NONE ? "the archive's script"
                                        : hqi_diag_module_name(d, run->module);
}

/* Whether re-quantizing with the archive's script alone gave the archive's figures. */
static bool reproduced(const hqi_diag_verify_t *v)
{
    if (!v->baseline.ok)
        return false;
    for (int k = 0; k < v->output_count; k++)
        if (!(fabs(v->baseline.after_db[k] - v->before_db[k]) <= VERIFY_REPRODUCED_DB))
            return false;
    return true;
}

static hq_status_t add_run(hqi_diag_verify_t *v, int module, int rank, int lines, hq_error_t *err)
{
    verify_run_t *grown = realloc(v->runs, ((size_t)v->run_count + 1) * sizeof *grown);
    if (!grown)
        return hqi_nomem(err, "--verify");
    v->runs = grown;
    verify_run_t *run = &v->runs[v->run_count];
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

/* The table: one row per run, "before -> after" per output, the gain of the lowest output. */
static void report(hq_diag_t *d)
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
    else if (!reproduced(v))
        hqi_diag_event(d, HQ_DIAG_EVENT_VERIFY, HQ_DIAG_WARNING, NULL,
                       "  the archive's script alone, re-quantized, gives %.2f dB where the "
                       "archive gives %.2f (lowest output): the archive was quantized with other "
                       "calibration data or settings; the gains below mix that difference in",
                       lowest(v->baseline.after_db, v->output_count),
                       lowest(v->before_db, v->output_count));
    for (int i = 0; i < v->run_count; i++) {
        const verify_run_t *run = &v->runs[i];
        char group[128];
        if (run->module == VERIFY_ALL)
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
        double gain = run_gain(v, run);
        snprintf(line + strlen(line), sizeof line - strlen(line), "  %+7.2f dB", gain);
        hqi_diag_event(d, HQ_DIAG_EVENT_VERIFY, gain < 0 ? HQ_DIAG_WARNING : HQ_DIAG_INFO, NULL,
                       "%s", line);
    }
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
    hq_status_t st = add_run(v, VERIFY_ALL, 0, accepted, err);
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
    v->baseline.module = VERIFY_NONE;
    v->baseline.after_db = calloc((size_t)v->output_count + 1, sizeof *v->baseline.after_db);
    if (st == HQ_OK && !v->baseline.after_db)
        st = hqi_nomem(err, "--verify");
    if (st != HQ_OK)
        return st;
    hq_error_t baseline_err = {0};
    v->baseline.ok =
        requantize(d, &v->baseline, run_label(d, &v->baseline), &baseline_err) == HQ_OK;
    if (!v->baseline.ok)
        v->baseline.error = hqi_strdup(baseline_err.message);
    for (int i = 0; i < v->run_count; i++) {
        verify_run_t *run = &v->runs[i];
        hq_error_t e = {0};
        run->ok = requantize(d, run, run_label(d, run), &e) == HQ_OK;
        if (!run->ok)
            run->error = hqi_strdup(e.message);
    }
    report(d);
    return HQ_OK;
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
        const verify_run_t *run = &v->runs[i];
        /* a cause whose lines are every accepted line was measured by the first run */
        if (run->module == module || (run->module == VERIFY_ALL && lines > 0 && lines == accepted))
            return run_gain(v, run);
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
    cJSON_AddItemToObject(o, "before_db", db_array(v->before_db, v->output_count));
    cJSON_AddItemToObject(o, "baseline_db",
                          v->baseline.ok ? db_array(v->baseline.after_db, v->output_count)
                                         : cJSON_CreateNull());
    if (v->baseline.ok)
        cJSON_AddBoolToObject(o, "reproduced", reproduced(v));
    else
        cJSON_AddNullToObject(o, "reproduced");
    cJSON *runs = cJSON_AddArrayToObject(o, "runs");
    for (int i = 0; i < v->run_count; i++) {
        const verify_run_t *run = &v->runs[i];
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "group", run->module == VERIFY_ALL ? "all" : "cause");
        if (run->module == VERIFY_ALL) {
            cJSON_AddNullToObject(r, "rank");
            cJSON_AddNullToObject(r, "inspector");
        } else {
            cJSON_AddNumberToObject(r, "rank", run->rank);
            cJSON_AddStringToObject(r, "inspector", hqi_diag_module_name(d, run->module));
        }
        cJSON *lines = cJSON_AddArrayToObject(r, "lines");
        for (int k = 0; k < d->rec_count; k++)
            if (d->recs[k].accepted &&
                (run->module == VERIFY_ALL || d->recs[k].module == run->module))
                cJSON_AddItemToArray(lines, cJSON_CreateString(d->recs[k].line));
        if (run->ok) {
            cJSON_AddItemToObject(r, "after_db", db_array(run->after_db, v->output_count));
            double gain = run_gain(v, run);
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
                   "<h2 id=\"verify\">Verified fixes</h2>\n<p>Output SQNR (dB, quantized vs "
                   "fp_optimized) on %lld held-out sample(s) of <code>",
                   (long long)v->count);
    html_text(b, v->data_path ? v->data_path : d->dataset_path);
    hqi_buf_printf(b, "</code>%s, the archive as given and re-quantized in memory from <code>",
                   v->data_path ? "" : " after calibset_size");
    html_text(b, v->from_path ? v->from_path : d->model_path);
    hqi_buf_printf(b, "</code> with each group's accepted lines.</p>\n");
    if (v->baseline.ok && !reproduced(v))
        hqi_buf_printf(b,
                       "<p class=\"warning\">The archive's script alone, re-quantized, gives "
                       "%.2f dB where the archive gives %.2f (lowest output): the archive was "
                       "quantized with other calibration data or settings.</p>\n",
                       lowest(v->baseline.after_db, v->output_count),
                       lowest(v->before_db, v->output_count));
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
        const verify_run_t *run = &v->runs[i];
        hqi_buf_printf(b, "<tr><td>");
        if (run->module == VERIFY_ALL)
            hqi_buf_printf(b, "all accepted");
        else {
            hqi_buf_printf(b, "%d. ", run->rank);
            html_text(b, hqi_diag_module_name(d, run->module));
        }
        hqi_buf_printf(b, "</td><td>");
        for (int r = 0; r < d->rec_count; r++)
            if (d->recs[r].accepted &&
                (run->module == VERIFY_ALL || d->recs[r].module == run->module)) {
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
        double gain = run_gain(v, run);
        hqi_buf_printf(b, "<td class=\"%s\">%+.2f</td></tr>\n", gain < 0 ? "warning" : "info",
                       gain);
    }
    hqi_buf_printf(b, "</table>\n");
}
