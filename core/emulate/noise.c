/* noise.c — hq_analyze_noise: per-layer SQNR of the quantized model against fp_optimized.
 *
 * SIMPLE (cumulative): the float model and the quantized model run on the same samples; for every
 * layer, SQNR = 10 log10(sum x^2 / sum (x - x^)^2) over all its output values (every port) and all
 * samples, x the fp_optimized value, x^ the dequantized integer value -> ".../snr:0".
 * ADVANCED (partial): additionally, for every layer L, the float model runs with ONLY L quantized:
 * L's inputs (float, from the float run) are quantized with their producers' encodings, L runs its
 * integer kernel, its output codes are dequantized and replace L's float output; everything else
 * stays float. SQNR of the model outputs (all outputs pooled) against the all-float outputs ->
 * ".../partial_snr:0". For an input layer "quantized" means quantize-dequantize of the input.
 * Values are clamped to [-200, 200] dB (200 = no noise at all). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emulate/emulator_internal.h"
#include "emulate/noise.h"
#include "emulate/qemulator.h"
#include "hq/emulate.h"
#include "hq/quantize.h"
#include "util/util.h"

#define NOISE_DB_LIMIT 200.0
/* Float taps of one batch are kept for every layer: the batch is cut so that they fit here. */
#define NOISE_TAP_BYTES ((int64_t)256 << 20)

typedef struct noise {
    const hq_graph_t *graph;
    hqi_qemu_t *qemu;
    int layer_count;
    int *first_port; /* per layer: index of its port 0 in the flat port arrays */
    int port_total;
    int64_t *port_size; /* values per sample */
    float **taps;       /* per port: the float values of the current batch */
    int64_t batch;
    double *signal, *error; /* per layer (SIMPLE) */
    /* ADVANCED: the layer being quantized alone, and its integer outputs as floats */
    int only;
    float **only_out; /* per port of `only` */
    bool only_done;
} noise_t;

static int64_t per_sample(const hq_shape_t *s)
{
    int64_t n = 1;
    for (int d = 1; d < s->ndim; d++)
        n *= s->dims[d];
    return n;
}

double hqi_noise_db(double signal, double error)
{
    if (!(error > 0))
        return NOISE_DB_LIMIT;
    if (!(signal > 0))
        return -NOISE_DB_LIMIT;
    double db = 10.0 * log10(signal / error);
    return db > NOISE_DB_LIMIT ? NOISE_DB_LIMIT : db < -NOISE_DB_LIMIT ? -NOISE_DB_LIMIT : db;
}

/* float run: keep every layer's output */
static hq_status_t keep_tap(void *user, int layer, int port, const hq_shape_t *shape,
                            const float *data, hq_error_t *err)
{
    (void)err;
    noise_t *n = user;
    int k = n->first_port[layer] + port;
    int64_t count = per_sample(shape) * shape->dims[0];
    memcpy(n->taps[k], data, (size_t)count * sizeof(float));
    return HQ_OK;
}

/* quantized run: compare with the kept float values */
static hq_status_t compare_tap(void *user, int layer, int port, const hq_shape_t *shape,
                               const float *data, hq_error_t *err)
{
    (void)err;
    noise_t *n = user;
    const float *x = n->taps[n->first_port[layer] + port];
    int64_t count = per_sample(shape) * shape->dims[0];
    double s = 0, e = 0;
    for (int64_t i = 0; i < count; i++) {
        double d = (double)x[i] - (double)data[i];
        s += (double)x[i] * x[i];
        e += d * d;
    }
    n->signal[layer] += s;
    n->error[layer] += e;
    return HQ_OK;
}

/* Computes the integer output of `only` from its producers' kept float values. */
static hq_status_t quantize_only(noise_t *n, hq_error_t *err)
{
    const hq_layer_t *layer = hq_graph_layer(n->graph, n->only);
    const hqi_qlayer_t *ql = hqi_qemu_layer(n->qemu, n->only);
    const int ports = hq_layer_port_count(layer);
    if (layer->type == HQ_LAYER_INPUT) {
        int64_t count = n->port_size[n->first_port[n->only]] * n->batch;
        void *codes = malloc((size_t)count * 2 + 1);
        if (!codes)
            return hqi_nomem(err, "noise analysis");
        hqi_qemu_quantize(ql, n->taps[n->first_port[n->only]], count, codes);
        hqi_qemu_dequantize(ql, codes, count, n->only_out[0]);
        free(codes);
        return HQ_OK;
    }
    const void **ins = calloc((size_t)layer->input_count + 1, sizeof *ins);
    void **outs = calloc((size_t)ports + 1, sizeof *outs);
    hq_status_t st = ins && outs ? HQ_OK : hqi_nomem(err, "noise analysis");
    for (int k = 0; k < layer->input_count && st == HQ_OK; k++) {
        int producer = layer->inputs[k];
        int pk = n->first_port[producer] + layer->input_ports[k];
        int64_t count = n->port_size[pk] * n->batch;
        void *codes = malloc((size_t)count * 2 + 1);
        if (!codes) {
            st = hqi_nomem(err, "noise analysis");
            break;
        }
        hqi_qemu_quantize(hqi_qemu_layer(n->qemu, producer), n->taps[pk], count, codes);
        ins[k] = codes;
    }
    for (int p = 0; p < ports && st == HQ_OK; p++) {
        outs[p] = malloc((size_t)(n->port_size[n->first_port[n->only] + p] * n->batch) * 2 + 1);
        if (!outs[p])
            st = hqi_nomem(err, "noise analysis");
    }
    if (st == HQ_OK)
        st = hqi_qemu_run_layer(n->qemu, n->only, n->batch, ins, outs, err);
    for (int p = 0; p < ports && st == HQ_OK; p++)
        hqi_qemu_dequantize(ql, outs[p], n->port_size[n->first_port[n->only] + p] * n->batch,
                            n->only_out[p]);
    for (int k = 0; ins && k < layer->input_count; k++)
        free((void *)ins[k]);
    for (int p = 0; outs && p < ports; p++)
        free(outs[p]);
    free(ins);
    free(outs);
    return st;
}

/* float run with one layer quantized: its tap replaces the float output in place. The emulator
 * hands taps the very buffer the consumers read next (documented in emulate.h: "each layer's
 * output right after it is computed"), so the replacement propagates downstream. */
static hq_status_t replace_tap(void *user, int layer, int port, const hq_shape_t *shape,
                               const float *data, hq_error_t *err)
{
    noise_t *n = user;
    if (layer != n->only)
        return HQ_OK;
    if (!n->only_done) {
        hq_status_t st = quantize_only(n, err);
        if (st != HQ_OK)
            return st;
        n->only_done = true;
    }
    memcpy((float *)data, n->only_out[port],
           (size_t)(per_sample(shape) * shape->dims[0]) * sizeof(float));
    return HQ_OK;
}

/* subset run: the float values of the reference run of this batch */
static const float *preset_tap(void *user, int layer, int port)
{
    const noise_t *n = user;
    return n->taps[n->first_port[layer] + port];
}

/* Which layers the run with only `only` quantized must compute: `only` and everything
 * downstream of it. The others hold the reference run's values: those that feed a computed
 * layer or are graph outputs are copied from the taps, the rest are skipped. `stack` is scratch
 * of the layer count. */
static void subset_modes(const hq_graph_t *graph, int only, unsigned char *mode, int *stack)
{
    int count = hq_graph_layer_count(graph);
    memset(mode, HQI_SUBSET_SKIP, (size_t)count);
    int top = 0;
    mode[only] = HQI_SUBSET_COMPUTE;
    stack[top++] = only;
    while (top > 0) {
        const hq_layer_t *l = hq_graph_layer(graph, stack[--top]);
        for (int k = 0; k < l->output_count; k++)
            if (mode[l->outputs[k]] != HQI_SUBSET_COMPUTE) {
                mode[l->outputs[k]] = HQI_SUBSET_COMPUTE;
                stack[top++] = l->outputs[k];
            }
    }
    int out_count = 0;
    const int *outputs = hq_graph_outputs(graph, &out_count);
    for (int o = 0; o < out_count; o++)
        if (mode[outputs[o]] == HQI_SUBSET_SKIP)
            mode[outputs[o]] = HQI_SUBSET_PRESET;
    for (int i = 0; i < count; i++) {
        const hq_layer_t *l = hq_graph_layer(graph, i);
        if (l->type == HQ_LAYER_INPUT) {
            mode[i] = HQI_SUBSET_COMPUTE; /* its values are the run's inputs */
            continue;
        }
        if (mode[i] != HQI_SUBSET_COMPUTE)
            continue;
        for (int k = 0; k < l->input_count; k++)
            if (mode[l->inputs[k]] == HQI_SUBSET_SKIP)
                mode[l->inputs[k]] = HQI_SUBSET_PRESET;
    }
}

static hq_status_t put_db(hq_npz_t *q, const hq_layer_t *layer, const char *suffix, double db,
                          hq_error_t *err)
{
    char key[1024];
    snprintf(key, sizeof key, "%s/layer_noise_analysis/%s", layer->name, suffix);
    int64_t one = 1;
    hq_tensor_t *t = NULL;
    hq_status_t st = hq_tensor_create(HQ_DTYPE_FLOAT32, 1, &one, &t, err);
    if (st != HQ_OK)
        return st;
    *(float *)t->data = (float)db;
    return hq_npz_put(q, key, t, err);
}

/* Which dataset input feeds each graph input (as hq_emulator_run_dataset matches them). */
static hq_status_t match_inputs(const hq_graph_t *g, hq_dataset_t *data, const char *path,
                                int *source, hq_error_t *err)
{
    int in_count = 0;
    const int *inputs = hq_graph_inputs(g, &in_count);
    int ds = hq_dataset_input_count(data);
    for (int i = 0; i < in_count; i++) {
        source[i] = -1;
        for (int j = 0; j < ds; j++)
            if (hq_dataset_input_layer(data, j) == inputs[i])
                source[i] = j;
        if (source[i] < 0 && in_count == 1 && ds == 1 && hq_dataset_input_layer(data, 0) < 0)
            source[i] = 0;
        if (source[i] < 0)
            return hqi_error(err, HQ_ERR_NOT_FOUND, "%s: the dataset has no data for input '%s'",
                             path, hq_graph_layer(g, inputs[i])->name);
        hq_shape_t s = hq_dataset_input_shape(data, source[i]);
        int64_t size = 1;
        for (int d = 0; d < s.ndim; d++)
            size *= s.dims[d];
        if (size != per_sample(&hq_graph_layer(g, inputs[i])->output_shape))
            return hqi_error(err, HQ_ERR_INVALID,
                             "%s: input '%s' takes %lld values per sample, the dataset has %lld",
                             path, hq_graph_layer(g, inputs[i])->name,
                             (long long)per_sample(&hq_graph_layer(g, inputs[i])->output_shape),
                             (long long)size);
    }
    return HQ_OK;
}

HQ_API hq_status_t hq_analyze_noise(hq_archive_t *archive, hq_dataset_t *data, int64_t count,
                                    hq_noise_mode_t mode, const hq_optimize_options_t *options,
                                    hq_error_t *err)
{
    if (!archive || !data)
        return hqi_error(err, HQ_ERR_ARGUMENT, "noise analysis: archive or data missing");
    if (mode != HQ_NOISE_SIMPLE && mode != HQ_NOISE_ADVANCED)
        return hqi_error(err, HQ_ERR_ARGUMENT, "noise analysis: unknown mode %d", (int)mode);
    const char *path = hq_archive_path(archive);
    if (!path || !path[0])
        path = hq_archive_net_name(archive);
    hq_graph_t *graph = NULL;
    hq_npz_t *fpo = NULL, *q = NULL;
    hq_status_t st = hq_archive_graph(archive, &graph, err);
    if (st == HQ_OK && (!hq_archive_has_params(archive, HQ_PARAMS_FP_OPTIMIZED) ||
                        !hq_archive_has_params(archive, HQ_PARAMS_QUANTIZED)))
        return hqi_error(err, HQ_ERR_STATE,
                         "%s: noise analysis needs a quantized archive (members '%s.fpo.npz' and "
                         "'%s.q.npz'; run hq optimize first)",
                         path, hq_archive_net_name(archive), hq_archive_net_name(archive));
    if (st == HQ_OK)
        st = hq_archive_params(archive, HQ_PARAMS_FP_OPTIMIZED, &fpo, err);
    if (st == HQ_OK)
        st = hq_archive_params(archive, HQ_PARAMS_QUANTIZED, &q, err);
    if (st != HQ_OK)
        return st;

    noise_t n = {0};
    n.graph = graph;
    n.layer_count = hq_graph_layer_count(graph);
    int in_count = 0, out_count = 0;
    const int *graph_inputs = hq_graph_inputs(graph, &in_count);
    const int *graph_outputs = hq_graph_outputs(graph, &out_count);
    hq_emulator_t *emu = NULL;
    char name[1024];
    snprintf(name, sizeof name, "%s: %s.q.npz", path, hq_archive_net_name(archive));
    st = hqi_qemu_create(graph, q, name, &n.qemu, err);
    snprintf(name, sizeof name, "%s: %s.fpo.npz", path, hq_archive_net_name(archive));
    if (st == HQ_OK)
        st = hq_emulator_create(graph, fpo, HQ_TARGET_FP_OPTIMIZED, name, &emu, err);
    if (st == HQ_OK && options && options->threads > 0)
        st = hq_emulator_set_threads(emu, options->threads, err);
    if (st == HQ_OK && options && options->threads > 0)
        st = hqi_qemu_set_threads(n.qemu, options->threads, err);

    n.first_port = calloc((size_t)n.layer_count + 1, sizeof *n.first_port);
    n.signal = calloc((size_t)n.layer_count + 1, sizeof *n.signal);
    n.error = calloc((size_t)n.layer_count + 1, sizeof *n.error);
    double *partial_s = calloc((size_t)n.layer_count + 1, sizeof *partial_s);
    double *partial_e = calloc((size_t)n.layer_count + 1, sizeof *partial_e);
    unsigned char *modes = calloc((size_t)n.layer_count + 1, 1);
    int *stack = calloc((size_t)n.layer_count + 1, sizeof *stack);
    int *source = calloc((size_t)in_count + 1, sizeof *source);
    if (st == HQ_OK && (!n.first_port || !n.signal || !n.error || !partial_s || !partial_e ||
                        !source || !modes || !stack))
        st = hqi_nomem(err, "noise analysis");
    int64_t sample_floats = 0;
    int max_ports = 1;
    for (int i = 0; i < n.layer_count && st == HQ_OK; i++) {
        const hq_layer_t *l = hq_graph_layer(graph, i);
        n.first_port[i] = n.port_total;
        n.port_total += hq_layer_port_count(l);
        if (hq_layer_port_count(l) > max_ports)
            max_ports = hq_layer_port_count(l);
    }
    if (st == HQ_OK) {
        n.port_size = calloc((size_t)n.port_total + 1, sizeof *n.port_size);
        n.taps = calloc((size_t)n.port_total + 1, sizeof *n.taps);
        n.only_out = calloc((size_t)max_ports + 1, sizeof *n.only_out);
        if (!n.port_size || !n.taps || !n.only_out)
            st = hqi_nomem(err, "noise analysis");
    }
    for (int i = 0; i < n.layer_count && st == HQ_OK; i++) {
        const hq_layer_t *l = hq_graph_layer(graph, i);
        for (int p = 0; p < hq_layer_port_count(l); p++) {
            hq_shape_t s = hq_layer_port_shape(l, p);
            n.port_size[n.first_port[i] + p] = per_sample(&s);
            sample_floats += per_sample(&s);
        }
    }
    if (st == HQ_OK)
        st = match_inputs(graph, data, path, source, err);
    int64_t total = hq_dataset_count(data);
    if (count > 0 && count < total)
        total = count;
    int64_t batch = options && options->batch_size > 0 ? options->batch_size : 8;
    while (batch > 1 && batch * sample_floats * (int64_t)sizeof(float) > NOISE_TAP_BYTES)
        batch /= 2;
    if (batch > total)
        batch = total > 0 ? total : 1;
    n.batch = batch;
    for (int k = 0; k < n.port_total && st == HQ_OK; k++)
        if (!(n.taps[k] = malloc((size_t)(n.port_size[k] * batch) * sizeof(float))))
            st = hqi_nomem(err, "noise analysis");
    float **in_data = calloc((size_t)in_count + 1, sizeof *in_data);
    float **pristine = calloc((size_t)in_count + 1, sizeof *pristine);
    float **outs = calloc((size_t)out_count + 1, sizeof *outs);
    float **ref = calloc((size_t)out_count + 1, sizeof *ref);
    if (st == HQ_OK && (!in_data || !pristine || !outs || !ref))
        st = hqi_nomem(err, "noise analysis");
    for (int i = 0; i < in_count && st == HQ_OK; i++) {
        size_t bytes = (size_t)(n.port_size[n.first_port[graph_inputs[i]]] * batch) * sizeof(float);
        in_data[i] = malloc(bytes);
        pristine[i] = malloc(bytes);
        if (!in_data[i] || !pristine[i])
            st = hqi_nomem(err, "noise analysis");
    }
    for (int o = 0; o < out_count && st == HQ_OK; o++) {
        size_t bytes =
            (size_t)(n.port_size[n.first_port[graph_outputs[o]]] * batch) * sizeof(float);
        outs[o] = malloc(bytes);
        ref[o] = malloc(bytes);
        if (!outs[o] || !ref[o])
            st = hqi_nomem(err, "noise analysis");
    }
    for (int p = 0; p < max_ports && st == HQ_OK; p++) {
        int64_t largest = 0;
        for (int k = 0; k < n.port_total; k++)
            largest = n.port_size[k] > largest ? n.port_size[k] : largest;
        if (!(n.only_out[p] = malloc((size_t)(largest * batch) * sizeof(float))))
            st = hqi_nomem(err, "noise analysis");
    }
    if (st == HQ_OK && options && options->log) {
        char line[256];
        snprintf(line, sizeof line, "noise analysis (%s): %lld samples, %d layers, batch %lld",
                 mode == HQ_NOISE_ADVANCED ? "advanced" : "simple", (long long)total, n.layer_count,
                 (long long)batch);
        options->log(options->log_user, HQ_LOG_INFO, line);
    }
    int order_count = 0;
    const int *order = hq_graph_topo_order(graph, &order_count);
    /* progress in sample runs: advanced runs the float network once more per layer */
    hq_progress_fn progress = options ? options->progress : NULL;
    const char *stage =
        mode == HQ_NOISE_ADVANCED ? "noise analysis (advanced)" : "noise analysis (simple)";
    int64_t runs_per_sample = mode == HQ_NOISE_ADVANCED ? (int64_t)order_count + 1 : 1;
    int64_t runs_done = 0;
    for (int64_t first = 0; first < total && st == HQ_OK; first += batch) {
        int64_t b = total - first < batch ? total - first : batch;
        n.batch = b;
        for (int i = 0; i < in_count && st == HQ_OK; i++) {
            st = hq_dataset_read(data, source[i], first, b, pristine[i], err);
            if (st == HQ_OK)
                memcpy(in_data[i], pristine[i],
                       (size_t)(n.port_size[n.first_port[graph_inputs[i]]] * b) * sizeof(float));
        }
        if (st == HQ_OK)
            st = hq_emulator_run(emu, b, (const float *const *)in_data, ref, keep_tap, &n, err);
        if (st == HQ_OK)
            st =
                hqi_qemu_run(n.qemu, b, (const float *const *)pristine, NULL, compare_tap, &n, err);
        runs_done += b;
        if (st == HQ_OK && progress)
            progress(options->progress_user, stage, runs_done, total * runs_per_sample);
        for (int t = 0; t < order_count && st == HQ_OK && mode == HQ_NOISE_ADVANCED; t++) {
            /* A layer without inputs (a constant, or an input whose data its encoding holds
             * exactly) whose integer output has equalled its float output on every sample so
             * far changes nothing when quantized alone: the run would reproduce the float
             * outputs, error 0. Constants are most of these (PP-OCR det has 48). */
            if (hq_graph_layer(graph, order[t])->input_count == 0 && !(n.error[order[t]] > 0)) {
                runs_done += b;
                continue;
            }
            n.only = order[t];
            n.only_done = false;
            for (int i = 0; i < in_count; i++)
                memcpy(in_data[i], pristine[i],
                       (size_t)(n.port_size[n.first_port[graph_inputs[i]]] * b) * sizeof(float));
            /* The float taps kept above stay valid: only this run's buffers change. Layers
             * that do not depend on `only` keep the reference run's values (the same bits a
             * float run would compute): only `only` and what lies downstream of it run. */
            subset_modes(graph, order[t], modes, stack);
            hqi_subset_t subset = {.mode = modes, .preset = preset_tap, .user = &n};
            st = hqi_emulator_run_subset(emu, b, (const float *const *)in_data, outs, replace_tap,
                                         &n, &subset, err);
            for (int o = 0; o < out_count && st == HQ_OK; o++) {
                int64_t c = n.port_size[n.first_port[graph_outputs[o]]] * b;
                for (int64_t i = 0; i < c; i++) {
                    double d = (double)ref[o][i] - (double)outs[o][i];
                    partial_s[order[t]] += (double)ref[o][i] * ref[o][i];
                    partial_e[order[t]] += d * d;
                }
            }
            runs_done += b;
            if (st == HQ_OK && progress)
                progress(options->progress_user, stage, runs_done, total * runs_per_sample);
        }
    }
    for (int i = 0; i < n.layer_count && st == HQ_OK; i++) {
        const hq_layer_t *l = hq_graph_layer(graph, i);
        st = put_db(q, l, "snr:0", hqi_noise_db(n.signal[i], n.error[i]), err);
        if (st == HQ_OK && mode == HQ_NOISE_ADVANCED)
            st = put_db(q, l, "partial_snr:0", hqi_noise_db(partial_s[i], partial_e[i]), err);
    }
    for (int i = 0; in_data && i < in_count; i++) {
        free(in_data[i]);
        free(pristine[i]);
    }
    for (int o = 0; outs && o < out_count; o++) {
        free(outs[o]);
        free(ref[o]);
    }
    for (int k = 0; n.taps && k < n.port_total; k++)
        free(n.taps[k]);
    for (int p = 0; n.only_out && p < max_ports; p++)
        free(n.only_out[p]);
    free(in_data);
    free(pristine);
    free(outs);
    free(ref);
    free(n.taps);
    free(n.only_out);
    free(n.port_size);
    free(n.first_port);
    free(n.signal);
    free(n.error);
    free(partial_s);
    free(partial_e);
    free(modes);
    free(stack);
    free(source);
    hq_emulator_destroy(emu);
    hqi_qemu_destroy(n.qemu);
    return st;
}
