/* stats.c — the ONE streaming statistics pass of hq-diag: every selected emulation target (float,
 * quantized, native) runs over the same dataset batches in lockstep, and a tap folds every layer
 * output into the statistics engine's accumulators (core/stats: range, histogram, per-channel
 * per-sample moments, pre-activation moments on the float pass) and into the SQNR against the
 * float pass. Nothing keeps the activations of more than one batch. The histograms are binned as
 * calibration bins them, so that for the same samples in the same batches (hq-diag's and
 * calibration's defaults: 64 samples, batches of 8) a layer's float histogram is the one the
 * archive stores. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag/diag_internal.h"
#include "util/util.h"

/* Above this many bytes of float activations per batch, per-layer SQNR is not computed in the
 * pass (it needs the float outputs of a batch kept until the quantized run of that batch). */
#define NOISE_BUFFER_LIMIT ((size_t)512 << 20)

int hqi_diag_quantized_target(void)
{
    hq_target_t t;
    return hq_target_from_name("quantized", &t) == HQ_OK ? (int)t : -1;
}

/* ---- accumulators --------------------------------------------------------------------------- */

size_t hqi_diag_stats_view(const hqi_stats_t *a, float *arrays, hq_layer_stats_t *s)
{
    s->struct_size = sizeof *s;
    s->samples = a->samples;
    s->count = a->count;
    s->min = (float)(a->count ? a->min : 0);
    s->max = (float)(a->count ? a->max : 0);
    s->mean = a->count ? a->sum / (double)a->count : 0;
    double var = a->count ? a->sumsq / (double)a->count - s->mean * s->mean : 0;
    s->std = var > 0 ? sqrt(var) : 0;
    double lo, hi;
    hqi_stats_histogram(a, s->histogram, &lo, &hi);
    s->histogram_lo = (float)lo;
    s->histogram_hi = (float)hi;
    s->channels = a->samples > 0 ? a->channels : 0;
    size_t used = 0;
    if (a->samples > 0) {
        s->channel_mean = arrays;
        s->channel_std = arrays + a->channels;
        used += 2 * (size_t)a->channels;
        hqi_stats_channel_moments(a, a->samples, arrays, arrays + a->channels);
    }
    if (a->has_preact && a->preact_samples > 0) {
        float *m = arrays + used;
        s->preact_mean = m;
        s->preact_std = m + a->channels;
        used += 2 * (size_t)a->channels;
        hqi_stats_preact_moments(a, HQI_STATS_SPREAD_PER_SAMPLE, m, m + a->channels);
    }
    return used;
}

static hq_status_t finish_set(hqi_diag_stats_t *set, hq_error_t *err)
{
    size_t floats = 0;
    for (int i = 0; i < set->count; i++) {
        const hqi_stats_t *a = &set->acc[i].stats;
        floats += 2 * (size_t)a->channels * (a->has_preact ? 2 : 1);
    }
    set->stats = calloc((size_t)set->count ? (size_t)set->count : 1, sizeof *set->stats);
    set->arrays = calloc(floats ? floats : 1, sizeof *set->arrays);
    if (!set->stats || !set->arrays)
        return hqi_nomem(err, "hq-diag statistics");
    float *next = set->arrays;
    for (int i = 0; i < set->count; i++) {
        hq_layer_stats_t *s = &set->stats[i];
        next += hqi_diag_stats_view(&set->acc[i].stats, next, s);
        s->layer = set->acc[i].layer;
        s->port = set->acc[i].port;
        s->target = set->target;
    }
    return HQ_OK;
}

static void free_set(hqi_diag_stats_t *set)
{
    for (int i = 0; i < set->count; i++)
        hqi_stats_free(&set->acc[i].stats);
    free(set->acc);
    free(set->first);
    free(set->stats);
    free(set->arrays);
    free(set->why);
    memset(set, 0, sizeof *set);
}

void hqi_diag_free_stats(hq_diag_t *diag)
{
    for (int t = 0; t < 3; t++)
        free_set(&diag->stats[t]);
    free(diag->noise);
    diag->noise = NULL;
    free(diag->output_signal);
    free(diag->output_error);
    free(diag->native_signal);
    free(diag->native_error);
    free(diag->decisions);
    free(diag->output_agree);
    free(diag->native_agree);
    diag->output_signal = diag->output_error = NULL;
    diag->native_signal = diag->native_error = NULL;
    diag->decisions = NULL;
    diag->output_agree = diag->native_agree = NULL;
}

static hq_status_t init_set(hq_diag_t *diag, hqi_diag_stats_t *set, hq_target_t target,
                            hq_error_t *err)
{
    int layers = hq_graph_layer_count(diag->graph);
    set->target = target;
    set->first = calloc((size_t)layers + 1, sizeof *set->first);
    if (!set->first)
        return hqi_nomem(err, "hq-diag statistics");
    for (int l = 0; l < layers; l++)
        set->first[l + 1] = set->first[l] + hq_layer_port_count(hq_graph_layer(diag->graph, l));
    set->count = set->first[layers];
    set->acc = calloc((size_t)set->count ? (size_t)set->count : 1, sizeof *set->acc);
    if (!set->acc)
        return hqi_nomem(err, "hq-diag statistics");
    for (int l = 0; l < layers; l++) {
        const hq_layer_t *layer = hq_graph_layer(diag->graph, l);
        for (int p = set->first[l]; p < set->first[l + 1]; p++) {
            hqi_diag_acc_t *a = &set->acc[p];
            a->layer = l;
            a->port = p - set->first[l];
            hq_shape_t shape = hq_layer_port_shape(layer, a->port);
            int channels = shape.ndim > 1 ? (int)shape.dims[shape.ndim - 1] : 1;
            hq_status_t st = hqi_stats_init(&a->stats, channels, hqi_stats_has_preact(layer->type),
                                            "hq-diag statistics", err);
            if (st != HQ_OK)
                return st;
        }
    }
    return HQ_OK;
}

/* ---- the pass ------------------------------------------------------------------------------- */

typedef struct pass {
    hq_diag_t *diag;
    int slot; /* hq_stats_target_t being filled */
    hqi_diag_stats_t *set;
    const hqi_stats_split_t *split; /* NULL: the tap sees the archive graph */
    bool keep_float;            /* copy float outputs for the noise computation */
    bool compare;               /* quantized run: compare against the kept float outputs */
    float **kept;               /* [entries] float outputs of the current batch */
    int64_t *kept_len;          /* [entries] floats in kept[i] */
    double *signal, *error;     /* [entries] */
} pass_t;

static hq_status_t tap(void *user, int layer, int port, const hq_shape_t *shape, const float *data,
                       hq_error_t *err)
{
    pass_t *p = user;
    unsigned kind = HQI_STATS_TAP_OUTPUT;
    int original = layer;
    if (p->split) {
        kind = hqi_stats_tap_kind(p->split, layer, &original);
        if (layer >= p->split->original_count)
            port = 0; /* an appended activation reports its layer's output */
    }
    if (!kind || original < 0 || original >= hq_graph_layer_count(p->diag->graph))
        return HQ_OK;
    if (port < 0 || p->set->first[original] + port >= p->set->first[original + 1])
        return HQ_OK;
    int entry = p->set->first[original] + port;
    hqi_stats_t *a = &p->set->acc[entry].stats;
    int64_t n = hqi_shape_count(shape);
    if (kind & HQI_STATS_TAP_PREACT)
        hqi_stats_add_preact(a, shape, data);
    if (!(kind & HQI_STATS_TAP_OUTPUT))
        return HQ_OK;
    hqi_stats_add_output(a, shape, data);
    if (p->keep_float) {
        if (p->kept_len[entry] < n) {
            float *grown = realloc(p->kept[entry], (size_t)n * sizeof *grown);
            if (!grown)
                return hqi_nomem(err, "hq-diag noise buffers");
            p->kept[entry] = grown;
        }
        memcpy(p->kept[entry], data, (size_t)n * sizeof *data);
        p->kept_len[entry] = n;
    }
    if (p->compare && p->kept[entry] && p->kept_len[entry] == n) {
        const float *f = p->kept[entry];
        for (int64_t i = 0; i < n; i++) {
            double d = (double)data[i] - f[i];
            if (isfinite(d)) {
                p->signal[entry] += (double)f[i] * f[i];
                p->error[entry] += d * d;
            }
        }
    }
    return HQ_OK;
}

int64_t hqi_diag_input_size(const hq_diag_t *diag, int input)
{
    int count;
    const int *inputs = hq_graph_inputs(diag->graph, &count);
    if (input < 0 || input >= count)
        return 0;
    hq_shape_t shape = hq_graph_layer(diag->graph, inputs[input])->output_shape;
    int64_t n = 1;
    for (int d = 1; d < shape.ndim; d++)
        n *= shape.dims[d];
    return n;
}

hq_status_t hqi_diag_read_batch(hq_diag_t *diag, int64_t first, int64_t count, float **inputs,
                                hq_error_t *err)
{
    int graph_count;
    const int *graph_inputs = hq_graph_inputs(diag->graph, &graph_count);
    for (int i = 0; i < hq_dataset_input_count(diag->dataset); i++) {
        int layer = hq_dataset_input_layer(diag->dataset, i), slot = i;
        for (int g = 0; g < graph_count; g++)
            if (graph_inputs[g] == layer)
                slot = g;
        if (slot >= graph_count)
            return hqi_error(err, HQ_ERR_INVALID, "%s: dataset input %d feeds no model input",
                             diag->dataset_path, i);
        hq_status_t st = hq_dataset_read(diag->dataset, i, first, count, inputs[slot], err);
        if (st != HQ_OK)
            return st;
    }
    return HQ_OK;
}

hq_status_t hqi_diag_emulator(hq_diag_t *diag, hq_target_t target, hq_emulator_t **out,
                              hq_error_t *err)
{
    if ((int)target < 0 || (size_t)target >= sizeof diag->emulators / sizeof diag->emulators[0])
        return hqi_error(err, HQ_ERR_ARGUMENT, "emulation target %d does not exist", (int)target);
    if (!diag->emulators[target]) {
        hq_status_t st =
            hq_emulator_create_from_archive(diag->archive, target, &diag->emulators[target], err);
        if (st != HQ_OK)
            return st;
    }
    *out = diag->emulators[target];
    return HQ_OK;
}

void hqi_diag_load_noise(hq_diag_t *diag)
{
    int layers = hq_graph_layer_count(diag->graph);
    free(diag->noise);
    diag->noise = calloc((size_t)layers + 1, sizeof *diag->noise);
    if (!diag->noise)
        return;
    hq_npz_t *q = NULL;
    if (hq_archive_has_params(diag->archive, HQ_PARAMS_QUANTIZED))
        hq_archive_params(diag->archive, HQ_PARAMS_QUANTIZED, &q, NULL);
    for (int l = 0; l < layers; l++) {
        hq_layer_noise_t *n = &diag->noise[l].noise;
        n->struct_size = sizeof *n;
        n->layer = l;
        n->source = "archive";
        if (!q)
            continue;
        const hq_layer_t *layer = hq_graph_layer(diag->graph, l);
        char key[512];
        snprintf(key, sizeof key, "%s/layer_noise_analysis/snr:0", layer->name);
        const hq_tensor_t *t = hq_npz_get(q, key);
        if (t && t->dtype == HQ_DTYPE_FLOAT32 && t->nbytes >= 4) {
            n->has_cumulative = true;
            n->cumulative_db = ((const float *)t->data)[0];
        }
        snprintf(key, sizeof key, "%s/layer_noise_analysis/partial_snr:0", layer->name);
        t = hq_npz_get(q, key);
        if (t && t->dtype == HQ_DTYPE_FLOAT32 && t->nbytes >= 4) {
            n->has_partial = true;
            n->partial_db = ((const float *)t->data)[0];
        }
    }
    diag->noise_loaded = true;
}

static double sqnr_db(double signal, double error)
{
    if (error <= 0)
        return signal > 0 ? 200.0 : 0.0; /* identical: report a ceiling, not infinity */
    if (signal <= 0)
        return -200.0;
    return 10.0 * log10(signal / error);
}

double hqi_diag_sqnr_db(double signal, double error)
{
    return sqnr_db(signal, error);
}

static bool any_needs(hq_diag_t *diag, uint32_t needs)
{
    return hq_diag_order_needs(diag, needs);
}

typedef struct run {
    int slot; /* hq_stats_target_t */
    hq_target_t target;
    hqi_stats_split_t split; /* float pass: the graph with activations split off */
    bool use_split;
    bool active; /* the emulator was built; the run takes part in the pass */
    /* its layer outputs go into the statistics set of its slot: always for the float run; for
       the quantized and native runs only when an inspector needs that set (a run there for the
       headline alone only gives model outputs) */
    bool collect;
    hq_emulator_t *emu;
    hq_npz_t *params; /* borrowed from the archive */
    float **outputs;  /* [outputs] one batch of model outputs */
    int64_t batches;  /* batches emulated in the pass (logged: one pass, every batch once) */
} run_t;

/* Adds one batch of `n` samples to the output SQNR of `test` against `reference`: the signal is
 * the reference output, the error their difference; and, for the outputs judged by their
 * decisions, to the decision agreement (agreement.c). */
static void add_output_noise(const run_t *test, const run_t *reference, int64_t n, int out_count,
                             const hqi_diag_decision_t *decisions, double *signal, double *error,
                             hqi_diag_agreement_t *agree)
{
    for (int k = 0; k < out_count; k++) {
        int64_t size = n * hq_emulator_output_size(reference->emu, k);
        if (size != n * hq_emulator_output_size(test->emu, k))
            continue;
        for (int64_t i = 0; i < size; i++) {
            double f = reference->outputs[k][i], e = test->outputs[k][i] - f;
            signal[k] += f * f;
            error[k] += e * e;
        }
        if (decisions && agree)
            hqi_diag_agreement_add(&decisions[k], reference->outputs[k], test->outputs[k], size,
                                   &agree[k]);
    }
}

/* The float emulator on the split graph; on failure the pass goes on without pre-activation
 * moments (the plain emulator is built by the caller). */
static void start_split_float(hq_diag_t *d, run_t *run)
{
    hq_params_kind_t kind =
        run->target == HQ_TARGET_FP_OPTIMIZED ? HQ_PARAMS_FP_OPTIMIZED : HQ_PARAMS_NATIVE;
    hq_error_t se = {0};
    if (hq_archive_params(d->archive, kind, &run->params, &se) == HQ_OK &&
        hqi_stats_split_activations(d->graph, &run->split, &se) == HQ_OK &&
        hq_emulator_create(run->split.graph, run->params, run->target, hq_archive_path(d->archive),
                           &run->emu, &se) == HQ_OK) {
        run->use_split = true;
        return;
    }
    hqi_stats_split_free(&run->split);
    hqi_diag_event(d, HQ_DIAG_EVENT_LOG, HQ_DIAG_INFO, NULL,
                   "pre-activation statistics unavailable: %s", se.message);
}

void hqi_diag_compute_stats(hq_diag_t *diag)
{
    hq_error_t err = {0};
    hq_diag_t *d = diag;
    if (!d->noise_loaded)
        hqi_diag_load_noise(d);
    bool quantized = hq_archive_state(d->archive) >= HQ_STATE_QUANTIZED &&
                     hq_archive_has_params(d->archive, HQ_PARAMS_QUANTIZED);
    bool fp_optimized = hq_archive_has_params(d->archive, HQ_PARAMS_FP_OPTIMIZED);
    /* the headline (headline.c) compares the model outputs of every stage the archive has */
    bool headline = d->dataset && (quantized || fp_optimized);
    bool want_float =
        headline ||
        (d->dataset &&
         any_needs(d, HQ_NEEDS_FLOAT_STATS | HQ_NEEDS_RGB_IMAGES | HQ_NEEDS_QUANTIZED_STATS |
                          HQ_NEEDS_NATIVE_STATS | HQ_NEEDS_NOISE_ANALYSIS));
    int qt = hqi_diag_quantized_target();
    bool archive_noise = false;
    for (int l = 0; d->noise && l < hq_graph_layer_count(d->graph); l++)
        archive_noise |= d->noise[l].noise.has_cumulative;
    /* inspectors_quant: an inspector needs the quantized statistics or the per-layer SQNR
     * computed in the pass; the headline alone needs only the model outputs */
    bool inspectors_quant = d->dataset && quantized &&
                            (any_needs(d, HQ_NEEDS_QUANTIZED_STATS) ||
                             (!archive_noise && any_needs(d, HQ_NEEDS_NOISE_ANALYSIS)));
    bool want_quant = inspectors_quant || (headline && quantized);
    hq_target_t float_target = fp_optimized ? HQ_TARGET_FP_OPTIMIZED : HQ_TARGET_NATIVE;
    bool want_native = want_float && float_target != HQ_TARGET_NATIVE;
    const char *no_data = d->dataset ? "no selected inspector needs it" : "no dataset (-d) given";
    for (int t = 0; t < 3; t++) {
        free_set(&d->stats[t]);
        d->stats[t].why = hqi_strdup(no_data);
    }
    if (!want_quant && d->dataset && !quantized) {
        free(d->stats[HQ_STATS_QUANTIZED].why);
        d->stats[HQ_STATS_QUANTIZED].why = hqi_strdup("the model is not quantized");
    } else if (want_quant && qt < 0) {
        free(d->stats[HQ_STATS_QUANTIZED].why);
        d->stats[HQ_STATS_QUANTIZED].why =
            hqi_strdup("quantized emulation is not available in this libhq");
        want_quant = false;
    }
    if (!want_float)
        return;

    /* the targets of the pass: float (split graph for pre-activation), quantized, native */
    run_t runs[3];
    memset(runs, 0, sizeof runs);
    int run_count = 0;
    runs[run_count].slot = HQ_STATS_FLOAT;
    runs[run_count].collect = true;
    runs[run_count++].target = float_target;
    if (want_quant) {
        runs[run_count].slot = HQ_STATS_QUANTIZED;
        runs[run_count].collect = inspectors_quant;
        runs[run_count++].target = (hq_target_t)qt;
    }
    if (want_native) {
        runs[run_count].slot = HQ_STATS_NATIVE;
        runs[run_count].collect = any_needs(d, HQ_NEEDS_NATIVE_STATS);
        runs[run_count++].target = HQ_TARGET_NATIVE;
    }

    int layers = hq_graph_layer_count(d->graph);
    int out_count;
    const int *output_layers = hq_graph_outputs(d->graph, &out_count);
    int in_count;
    hq_graph_inputs(d->graph, &in_count);
    int64_t batch = d->options.batch_size;
    float **inputs = calloc((size_t)in_count + 1, sizeof *inputs);
    pass_t passes[3];
    memset(passes, 0, sizeof passes);
    hq_status_t st = inputs ? HQ_OK : hqi_nomem(&err, "hq-diag");
    for (int i = 0; i < in_count && st == HQ_OK; i++)
        if (!(inputs[i] = malloc((size_t)(batch * hqi_diag_input_size(d, i)) * sizeof(float))))
            st = hqi_nomem(&err, "hq-diag input batch");

    for (int r = 0; r < run_count && st == HQ_OK; r++) {
        hqi_diag_stats_t *set = &d->stats[runs[r].slot];
        hq_error_t e = {0};
        hq_status_t rs = runs[r].collect ? init_set(d, set, runs[r].target, &e) : HQ_OK;
        if (rs == HQ_OK && runs[r].slot == HQ_STATS_FLOAT)
            start_split_float(d, &runs[r]);
        if (rs == HQ_OK && !runs[r].emu)
            rs = hq_emulator_create_from_archive(d->archive, runs[r].target, &runs[r].emu, &e);
        if (rs == HQ_OK) {
            runs[r].outputs = calloc((size_t)out_count + 1, sizeof *runs[r].outputs);
            if (!runs[r].outputs)
                rs = hqi_nomem(&e, "hq-diag");
            for (int k = 0; k < out_count && rs == HQ_OK; k++)
                if (!(runs[r].outputs[k] =
                          malloc((size_t)(batch * hq_emulator_output_size(runs[r].emu, k)) *
                                 sizeof(float))))
                    rs = hqi_nomem(&e, "hq-diag output batch");
        }
        if (rs != HQ_OK) {
            /* a run only the headline asked for is reported by the headline */
            bool inspectors_asked = runs[r].slot == HQ_STATS_FLOAT ||
                                    (runs[r].slot == HQ_STATS_QUANTIZED && inspectors_quant) ||
                                    (runs[r].slot == HQ_STATS_NATIVE &&
                                     any_needs(d, HQ_NEEDS_NATIVE_STATS));
            hqi_diag_event(d, inspectors_asked ? HQ_DIAG_EVENT_MESSAGE : HQ_DIAG_EVENT_LOG,
                           HQ_DIAG_WARNING, NULL, "Statistics of %s emulation unavailable: %s",
                           hq_target_name(runs[r].target) ? hq_target_name(runs[r].target) : "?",
                           e.message);
            free_set(set);
            set->why = hqi_strdup(e.message);
            runs[r].collect = false;
            if (runs[r].slot == HQ_STATS_FLOAT) { /* nothing to compare with: stop */
                st = rs;
                err = e;
            }
            continue;
        }
        runs[r].active = true;
        passes[r] = (pass_t){.diag = d,
                             .slot = runs[r].slot,
                             .set = set,
                             .split = runs[r].use_split ? &runs[r].split : NULL};
    }

    /* per-layer SQNR in lockstep: needs the float outputs of a batch kept for the quantized run */
    int quant_run = -1, native_run = -1;
    for (int r = 0; r < run_count; r++) {
        if (runs[r].slot == HQ_STATS_QUANTIZED && runs[r].active && runs[0].active)
            quant_run = r;
        if (runs[r].slot == HQ_STATS_NATIVE && runs[r].active && runs[0].active)
            native_run = r;
    }
    d->output_count = out_count;
    free(d->decisions);
    d->decisions = calloc((size_t)out_count + 1, sizeof *d->decisions);
    for (int k = 0; d->decisions && k < out_count; k++)
        d->decisions[k] = hqi_diag_output_decision(d->graph, output_layers[k]);
    double *signal = NULL, *error = NULL;
    float **kept = NULL;
    int64_t *kept_len = NULL;
    if (st == HQ_OK && quant_run > 0 && inspectors_quant) {
        size_t bytes = 0;
        for (int l = 0; l < layers; l++) {
            const hq_layer_t *layer = hq_graph_layer(d->graph, l);
            for (int p = 0; p < hq_layer_port_count(layer); p++) {
                hq_shape_t shape = hq_layer_port_shape(layer, p);
                int64_t per_sample = 1;
                for (int k = 1; k < shape.ndim; k++)
                    per_sample *= shape.dims[k] > 0 ? shape.dims[k] : 1;
                bytes += (size_t)per_sample * (size_t)batch * sizeof(float);
            }
        }
        int entries = d->stats[HQ_STATS_FLOAT].count;
        if (bytes <= NOISE_BUFFER_LIMIT && entries == d->stats[HQ_STATS_QUANTIZED].count) {
            signal = calloc((size_t)entries + 1, sizeof *signal);
            error = calloc((size_t)entries + 1, sizeof *error);
            kept = calloc((size_t)entries + 1, sizeof *kept);
            kept_len = calloc((size_t)entries + 1, sizeof *kept_len);
            if (signal && error && kept && kept_len) {
                passes[0].keep_float = true;
                passes[0].kept = passes[quant_run].kept = kept;
                passes[0].kept_len = passes[quant_run].kept_len = kept_len;
                passes[quant_run].compare = true;
                passes[quant_run].signal = signal;
                passes[quant_run].error = error;
            }
        } else {
            hqi_diag_event(d, HQ_DIAG_EVENT_LOG, HQ_DIAG_INFO, NULL,
                           "per-layer SQNR not computed: a batch of float activations needs %zu MB",
                           bytes >> 20);
        }
    }
    if (st == HQ_OK && quant_run > 0) {
        free(d->output_signal);
        free(d->output_error);
        d->output_signal = calloc((size_t)out_count + 1, sizeof *d->output_signal);
        d->output_error = calloc((size_t)out_count + 1, sizeof *d->output_error);
        free(d->output_agree);
        d->output_agree = calloc((size_t)out_count + 1, sizeof *d->output_agree);
    }
    if (st == HQ_OK && native_run > 0) {
        free(d->native_signal);
        free(d->native_error);
        d->native_signal = calloc((size_t)out_count + 1, sizeof *d->native_signal);
        d->native_error = calloc((size_t)out_count + 1, sizeof *d->native_error);
        free(d->native_agree);
        d->native_agree = calloc((size_t)out_count + 1, sizeof *d->native_agree);
    }

    int64_t total = d->samples, batches_read = 0;
    for (int64_t first = 0; first < total && st == HQ_OK; first += batch) {
        int64_t n = total - first < batch ? total - first : batch;
        st = hqi_diag_read_batch(d, first, n, inputs, &err);
        batches_read += st == HQ_OK;
        for (int r = 0; r < run_count && st == HQ_OK; r++)
            if (runs[r].active) {
                st = hq_emulator_run(runs[r].emu, n, (const float *const *)inputs, runs[r].outputs,
                                     runs[r].collect ? tap : NULL, &passes[r], &err);
                runs[r].batches += st == HQ_OK;
            }
        if (st == HQ_OK && quant_run > 0 && d->output_signal && d->output_error)
            add_output_noise(&runs[quant_run], &runs[0], n, out_count, d->decisions,
                             d->output_signal, d->output_error, d->output_agree);
        if (st == HQ_OK && native_run > 0 && d->native_signal && d->native_error)
            add_output_noise(&runs[0], &runs[native_run], n, out_count, d->decisions,
                             d->native_signal, d->native_error, d->native_agree);
        if (d->options.on_event) {
            hq_diag_event_t ev = {.kind = HQ_DIAG_EVENT_PROGRESS,
                                  .text = "Collecting statistics",
                                  .done = first + n,
                                  .total = total};
            d->options.on_event(d->options.event_user, &ev);
        }
    }

    {
        /* one line saying what the one pass did: each batch read once and run once per target */
        static const char *const slots[] = {"float", "quantized", "native"};
        char targets[256] = "";
        size_t at = 0;
        for (int r = 0; r < run_count && at < sizeof targets; r++)
            if (runs[r].active)
                at += (size_t)snprintf(
                    targets + at, sizeof targets - at, "%s%s %s (%lld)", at ? ", " : "",
                    slots[runs[r].slot],
                    hq_target_name(runs[r].target) ? hq_target_name(runs[r].target) : "?",
                    (long long)runs[r].batches);
        hqi_diag_event(d, HQ_DIAG_EVENT_LOG, HQ_DIAG_INFO, NULL,
                       "statistics pass: %lld samples in %lld batches of %lld, each read once; "
                       "batches emulated per target: %s",
                       (long long)total, (long long)batches_read, (long long)batch, targets);
    }
    for (int r = 0; r < run_count; r++) {
        hqi_diag_stats_t *set = &d->stats[runs[r].slot];
        hq_error_t e = {0};
        if (!runs[r].active) {
            /* its reason is recorded already */
        } else if (!runs[r].collect) {
            /* model outputs only: the set stays empty, saying why (or why the pass failed) */
            free(set->why);
            set->why = hqi_strdup(st != HQ_OK ? err.message : no_data);
        } else if (st == HQ_OK && finish_set(set, &e) == HQ_OK) {
            set->ran = true;
            free(set->why);
            set->why = NULL;
        } else {
            free(set->why);
            set->why = hqi_strdup(st != HQ_OK ? err.message : e.message);
        }
        hq_emulator_destroy(runs[r].emu);
        hqi_stats_split_free(&runs[r].split);
        if (runs[r].outputs)
            for (int k = 0; k < out_count; k++)
                free(runs[r].outputs[k]);
        free(runs[r].outputs);
    }
    if (st != HQ_OK)
        hqi_diag_event(d, HQ_DIAG_EVENT_MESSAGE, HQ_DIAG_WARNING, NULL,
                       "Statistics pass failed: %s", err.message);
    if (st == HQ_OK && native_run > 0)
        d->native_sqnr_ran = d->native_signal && d->native_error;
    if (st == HQ_OK && quant_run > 0) {
        d->output_sqnr_ran = d->output_signal && d->output_error;
        if (signal && error && d->noise)
            for (int l = 0; l < layers; l++) {
                int entry = d->stats[HQ_STATS_FLOAT].first ? d->stats[HQ_STATS_FLOAT].first[l] : -1;
                hqi_diag_noise_t *n = &d->noise[l];
                if (entry < 0 || n->noise.has_cumulative || (!signal[entry] && !error[entry]))
                    continue;
                n->signal = signal[entry];
                n->error = error[entry];
                n->computed = true;
                n->noise.has_cumulative = true;
                n->noise.cumulative_db = sqnr_db(signal[entry], error[entry]);
                n->noise.source = "computed";
            }
    }
    if (kept)
        for (int i = 0; i < d->stats[HQ_STATS_FLOAT].count; i++)
            free(kept[i]);
    free(kept);
    free(kept_len);
    free(signal);
    free(error);
    if (inputs)
        for (int i = 0; i < in_count; i++)
            free(inputs[i]);
    free(inputs);
}

double hqi_diag_output_sqnr(const hq_diag_t *diag, int output)
{
    return sqnr_db(diag->output_signal[output], diag->output_error[output]);
}

double hqi_diag_native_sqnr(const hq_diag_t *diag, int output)
{
    return sqnr_db(diag->native_signal[output], diag->native_error[output]);
}

static double agreement(const hq_diag_t *diag, const hqi_diag_agreement_t *agree, int output)
{
    if (!agree || !diag->decisions || diag->decisions[output].kind == HQI_DECISION_NONE)
        return NAN;
    return hqi_diag_agreement_pct(&agree[output]);
}

double hqi_diag_output_agreement(const hq_diag_t *diag, int output)
{
    return agreement(diag, diag->output_agree, output);
}

double hqi_diag_native_agreement(const hq_diag_t *diag, int output)
{
    return agreement(diag, diag->native_agree, output);
}
