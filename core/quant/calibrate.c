/* calibrate.c — the calibration pass of `hq optimize`: one streaming run of the fp-optimized
 * float network over the first calibset_size samples, folding every layer's output and
 * pre-activation into the statistics engine (core/stats: range, histogram, per-channel output
 * means, per-channel pre-activation moments), and the storing of those statistics in q.npz.
 * Pre-activations are tapped on the engine's split-activation clone of the
 * graph (hqi_stats_split_activations), the same one hq-diag's statistics pass runs on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq/emulate.h"
#include "quant/calibrate.h"
#include "quant/precision.h"
#include "util/util.h"

void hqi_calibration_destroy(hqi_calibration_t *calibration)
{
    if (!calibration)
        return;
    for (int i = 0; i < calibration->layer_count; i++)
        hqi_stats_free(&calibration->layers[i]);
    free(calibration->layers);
    free(calibration);
}

typedef struct tap {
    hqi_calibration_t *cal;
    const hqi_stats_split_t *split;
} tap_t;

static hq_status_t on_tap(void *user, int layer, int port, const hq_shape_t *shape,
                          const float *data, hq_error_t *err)
{
    (void)port; /* the pieces of a splitter go into one set of statistics */
    (void)err;
    tap_t *t = user;
    int real = -1;
    unsigned kind = hqi_stats_tap_kind(t->split, layer, &real);
    if (real < 0 || real >= t->cal->layer_count)
        return HQ_OK;
    hqi_stats_t *s = &t->cal->layers[real];
    if (kind & HQI_STATS_TAP_PREACT)
        hqi_stats_add_preact(s, shape, data);
    if (kind & HQI_STATS_TAP_OUTPUT)
        hqi_stats_add_output(s, shape, data);
    return HQ_OK;
}

hq_status_t hqi_calibration_sources(const hq_graph_t *graph, hq_dataset_t *data,
                                    char *const *input_names, int *source, hq_error_t *err)
{
    int in_count = 0;
    const int *ins = hq_graph_inputs(graph, &in_count);
    int ds_count = hq_dataset_input_count(data);
    for (int k = 0; k < in_count; k++) {
        source[k] = -1;
        const hq_layer_t *in = hq_graph_layer(graph, ins[k]);
        for (int j = 0; j < ds_count; j++)
            if (input_names ? strcmp(input_names[j], in->name) == 0 : j == k)
                source[k] = j;
        if (source[k] < 0 && ds_count == 1 && in_count == 1)
            source[k] = 0;
        if (source[k] < 0)
            return hqi_error(err, HQ_ERR_NOT_FOUND,
                             "calibration: the dataset has no data for input '%s'", in->name);
    }
    return HQ_OK;
}

hq_status_t hqi_calibrate(const hq_graph_t *graph, const hq_npz_t *params, hq_dataset_t *data,
                          char *const *input_names, int64_t count, int64_t batch_size, int threads,
                          const hqi_logger_t *logger, hq_progress_fn progress, void *progress_user,
                          hqi_calibration_t **out, hq_error_t *err)
{
    *out = NULL;
    int n = hq_graph_layer_count(graph);
    int64_t available = hq_dataset_count(data);
    if (count <= 0 || count > available)
        count = available;
    if (count < 1)
        return hqi_error(err, HQ_ERR_INVALID, "calibration: the dataset has no samples");
    if (batch_size < 1)
        batch_size = 8;
    hqi_calibration_t *cal = calloc(1, sizeof *cal);
    if (!cal)
        return hqi_nomem(err, "calibration");
    cal->layer_count = n;
    cal->layers = calloc((size_t)(n ? n : 1), sizeof *cal->layers);
    hq_status_t st = cal->layers ? HQ_OK : hqi_nomem(err, "calibration");
    for (int i = 0; i < n && st == HQ_OK; i++) {
        const hq_layer_t *l = hq_graph_layer(graph, i);
        hq_shape_t shape = hq_layer_port_shape(l, 0);
        int channels = shape.ndim > 1 ? (int)shape.dims[shape.ndim - 1] : 1;
        st = hqi_stats_init(&cal->layers[i], channels, hqi_stats_has_preact(l->type),
                            "calibration", err);
    }
    hqi_stats_split_t split = {0};
    if (st == HQ_OK)
        st = hqi_stats_split_activations(graph, &split, err);
    hq_graph_t *g = split.graph;
    hq_emulator_t *emu = NULL;
    if (st == HQ_OK)
        st =
            hq_emulator_create(g, params, HQ_TARGET_FP_OPTIMIZED, "fp_optimized params", &emu, err);
    if (st == HQ_OK && threads > 0)
        st = hq_emulator_set_threads(emu, threads, err);
    /* dataset input j feeds graph input k */
    int in_count = 0;
    const int *ins = st == HQ_OK ? hq_graph_inputs(g, &in_count) : NULL;
    int *source = st == HQ_OK ? malloc(sizeof(int) * (size_t)(in_count ? in_count : 1)) : NULL;
    float **buffers =
        st == HQ_OK ? calloc((size_t)(in_count ? in_count : 1), sizeof(float *)) : NULL;
    if (st == HQ_OK && (!source || !buffers))
        st = hqi_nomem(err, "calibration");
    if (st == HQ_OK)
        st = hqi_calibration_sources(g, data, input_names, source, err);
    for (int k = 0; k < in_count && st == HQ_OK; k++) {
        const hq_layer_t *in = hq_graph_layer(g, ins[k]);
        int64_t size = hq_emulator_input_size(emu, k);
        hq_shape_t ds = hq_dataset_input_shape(data, source[k]);
        int64_t ds_size = 1;
        for (int d = 0; d < ds.ndim; d++)
            ds_size *= ds.dims[d];
        if (ds_size != size) {
            st = hqi_error(err, HQ_ERR_INVALID,
                           "calibration: input '%s' takes %lld values per sample, the dataset "
                           "gives %lld",
                           in->name, (long long)size, (long long)ds_size);
            break;
        }
        size_t bytes;
        if (!hqi_mul_size((size_t)size, (size_t)batch_size * sizeof(float), &bytes) ||
            !(buffers[k] = malloc(bytes)))
            st = hqi_nomem(err, "calibration batch");
    }
    tap_t tap = {cal, &split};
    for (int64_t first = 0; first < count && st == HQ_OK; first += batch_size) {
        int64_t b = count - first < batch_size ? count - first : batch_size;
        for (int k = 0; k < in_count && st == HQ_OK; k++)
            st = hq_dataset_read(data, source[k], first, b, buffers[k], err);
        if (st == HQ_OK)
            st = hq_emulator_run(emu, b, (const float *const *)buffers, NULL, on_tap, &tap, err);
        if (st == HQ_OK)
            hqi_logf(logger, HQ_LOG_DEBUG, "calibration: %lld/%lld samples", (long long)(first + b),
                     (long long)count);
        if (st == HQ_OK && progress)
            progress(progress_user, "calibration", first + b, count);
    }
    cal->samples = count;
    for (int i = 0; i < n && st == HQ_OK; i++) {
        const hqi_stats_t *s = &cal->layers[i];
        if (s->nonfinite)
            hqi_logf(logger, HQ_LOG_WARNING,
                     "calibration: %s produced %lld non-finite values (left out of its stats)",
                     hq_graph_layer(graph, i)->bare_name, (long long)s->nonfinite);
    }
    for (int k = 0; buffers && k < in_count; k++)
        free(buffers[k]);
    free(buffers);
    free(source);
    hq_emulator_destroy(emu);
    hqi_stats_split_free(&split);
    if (st != HQ_OK) {
        hqi_calibration_destroy(cal);
        return st;
    }
    *out = cal;
    return HQ_OK;
}

hq_status_t hqi_calibration_store(const hq_graph_t *graph, const hqi_calibration_t *cal,
                                  hq_npz_t *q, hq_error_t *err)
{
    hq_status_t st = HQ_OK;
    for (int i = 0; i < cal->layer_count && st == HQ_OK; i++) {
        const hq_layer_t *l = hq_graph_layer(graph, i);
        const hqi_stats_t *s = &cal->layers[i];
        if (!s->seen)
            continue;
        float limvals[2] = {(float)s->min, (float)s->max};
        int64_t hist[HQI_STATS_BINS];
        hqi_stats_histogram(s, hist, NULL, NULL);
        st = hqi_put_f32(q, l->name, "stats/output_0/stats_limvals:0", limvals, 2, err);
        if (st == HQ_OK)
            st = hqi_put_i64(q, l->name, "stats/output_0/histogram:0", hist, HQI_STATS_BINS, err);
        float *m = malloc(sizeof(float) * (size_t)s->channels * 2);
        if (st == HQ_OK && !m)
            st = hqi_nomem(err, "calibration stats");
        if (st == HQ_OK) {
            /* a splitter's pieces all add to one sum: the mean is per calibration sample */
            hqi_stats_channel_moments(s, cal->samples, m, NULL);
            st = hqi_put_f32(q, l->name, "stats/output_0/channel_mean:0", m, s->channels, err);
        }
        if (st == HQ_OK && s->has_preact && s->preact_samples) {
            float pre[2] = {(float)s->preact_min, (float)s->preact_max};
            st = hqi_put_f32(q, l->name, "stats/preact_limvals:0", pre, 2, err);
        }
        if (st == HQ_OK && s->has_preact && s->preact_samples) {
            hqi_stats_preact_moments(s, HQI_STATS_SPREAD_STORED, m, m + s->channels);
            st = hqi_put_f32(q, l->name, "stats/preact_mean:0", m, s->channels, err);
            if (st == HQ_OK)
                st = hqi_put_f32(q, l->name, "stats/preact_std:0", m + s->channels, s->channels,
                                 err);
        }
        free(m);
    }
    return st;
}
