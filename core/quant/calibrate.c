/* calibrate.c — the calibration pass of `hq optimize`: one streaming run of the fp-optimized
 * float network over the first calibset_size samples, collecting per layer the output range, a
 * histogram, per-channel output means and per-channel pre-activation moments. Owned by the
 * optimizer.
 *
 * One pass only: the histogram's range is not known before the data has been seen, so each layer
 * keeps a working histogram of HQI_FINE_BINS bins over a range that starts as the first batch's
 * [min(min,0), max(max,0)] and grows by doubling towards the side that overflowed (pairs of bins
 * merge exactly). The stored 100-bin histogram is re-binned from it over the final range: exact
 * when the range never grew (the first batch held the extremes), else a working bin that straddles
 * stored bins is shared between them in proportion to the overlap (the working range is at most 4x
 * the final one, so a working bin is at most 1/2000 of the final range: the shared counts are the
 * only approximation). Pre-activations: conv/dw/deconv/dense layers with a non-linear activation
 * are split in a private copy of the graph (conv with linear activation, then an activation layer),
 * so the tap sees the value before the activation. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/layer_types.h"
#include "hq/emulate.h"
#include "quant/calibrate.h"
#include "quant/precision.h"
#include "util/util.h"

#define SPLIT_SUFFIX "__hq_preact_act"

typedef struct tap_state {
    hqi_calibration_t *cal;
    int original_count;    /* layers of the real graph */
    const int *owner;      /* calibration-graph layer -> real layer */
    const bool *is_preact; /* calibration-graph layer reports a pre-activation */
} tap_state_t;

static void stats_free(hqi_layer_stats_t *s)
{
    free(s->fine);
    free(s->channel_mean);
    free(s->preact_mean_sum);
    free(s->preact_var_sum);
    free(s->preact_sq_sum);
}

void hqi_calibration_destroy(hqi_calibration_t *calibration)
{
    if (!calibration)
        return;
    for (int i = 0; i < calibration->layer_count; i++)
        stats_free(&calibration->layers[i]);
    free(calibration->layers);
    free(calibration);
}

/* Grows the working histogram until it covers [lo, hi]. */
static void grow(hqi_layer_stats_t *s, double lo, double hi)
{
    for (int guard = 0; guard < 2100 && (lo < s->fine_lo || hi > s->fine_hi); guard++) {
        double width = s->fine_hi - s->fine_lo;
        int64_t *f = s->fine;
        if (hi > s->fine_hi) {
            for (int i = 0; i < HQI_FINE_BINS / 2; i++)
                f[i] = f[2 * i] + f[2 * i + 1];
            memset(f + HQI_FINE_BINS / 2, 0, sizeof(int64_t) * (HQI_FINE_BINS / 2));
            s->fine_hi = s->fine_lo + 2 * width;
        } else {
            for (int i = 0; i < HQI_FINE_BINS / 2; i++)
                f[HQI_FINE_BINS - 1 - i] =
                    f[HQI_FINE_BINS - 1 - 2 * i] + f[HQI_FINE_BINS - 2 - 2 * i];
            memset(f, 0, sizeof(int64_t) * (HQI_FINE_BINS / 2));
            s->fine_lo = s->fine_hi - 2 * width;
        }
    }
}

static void add_output(hqi_layer_stats_t *s, const hq_shape_t *shape, const float *x)
{
    int64_t total = 1;
    for (int d = 0; d < shape->ndim; d++)
        total *= shape->dims[d];
    double lo = 0.0, hi = 0.0; /* ranges always contain 0 */
    double bmin = INFINITY, bmax = -INFINITY;
    for (int64_t i = 0; i < total; i++) {
        double v = x[i];
        if (!isfinite(v)) {
            s->nonfinite++;
            continue;
        }
        bmin = v < bmin ? v : bmin;
        bmax = v > bmax ? v : bmax;
    }
    if (bmin > bmax)
        return;
    lo = bmin < 0 ? bmin : 0;
    hi = bmax > 0 ? bmax : 0;
    if (!s->seen) {
        s->seen = true;
        s->min = bmin;
        s->max = bmax;
        s->fine_lo = lo;
        s->fine_hi = hi > lo ? hi : lo + 1.0;
    } else {
        s->min = bmin < s->min ? bmin : s->min;
        s->max = bmax > s->max ? bmax : s->max;
    }
    grow(s, lo, hi);
    double scale = HQI_FINE_BINS / (s->fine_hi - s->fine_lo);
    for (int64_t i = 0; i < total; i++) {
        double v = x[i];
        if (!isfinite(v))
            continue;
        int64_t b = (int64_t)((v - s->fine_lo) * scale);
        b = b < 0 ? 0 : b >= HQI_FINE_BINS ? HQI_FINE_BINS - 1 : b;
        s->fine[b]++;
        s->count++;
    }
    /* per-channel means, per sample then summed */
    int64_t batch = shape->dims[0], c = s->channels;
    int64_t per = batch > 0 ? total / batch : 0;
    int64_t spatial = c > 0 ? per / c : 0;
    if (c <= 0 || spatial <= 0)
        return;
    for (int64_t n = 0; n < batch; n++)
        for (int64_t ch = 0; ch < c; ch++) {
            double sum = 0.0;
            const float *p = x + n * per + ch;
            for (int64_t k = 0; k < spatial; k++)
                sum += isfinite(p[k * c]) ? p[k * c] : 0.0;
            s->channel_mean[ch] += sum / (double)spatial;
        }
}

static void add_preact(hqi_layer_stats_t *s, const hq_shape_t *shape, const float *x)
{
    int64_t batch = shape->dims[0], c = s->channels, total = 1;
    for (int d = 0; d < shape->ndim; d++)
        total *= shape->dims[d];
    int64_t per = batch > 0 ? total / batch : 0;
    int64_t spatial = c > 0 ? per / c : 0;
    if (c <= 0 || spatial <= 0)
        return;
    s->preact_spatial = spatial;
    for (int64_t i = 0; i < total; i++) {
        double v = x[i];
        if (!isfinite(v))
            continue;
        if (!s->preact_samples && i == 0)
            s->preact_min = s->preact_max = v;
        s->preact_min = v < s->preact_min ? v : s->preact_min;
        s->preact_max = v > s->preact_max ? v : s->preact_max;
    }
    for (int64_t n = 0; n < batch; n++) {
        for (int64_t ch = 0; ch < c; ch++) {
            const float *p = x + n * per + ch;
            double sum = 0.0;
            for (int64_t k = 0; k < spatial; k++)
                sum += p[k * c];
            double mean = sum / (double)spatial, var = 0.0;
            for (int64_t k = 0; k < spatial; k++) {
                double dv = p[k * c] - mean;
                var += dv * dv;
            }
            var /= (double)spatial;
            if (isfinite(mean) && isfinite(var)) {
                s->preact_mean_sum[ch] += mean;
                s->preact_var_sum[ch] += var;
                s->preact_sq_sum[ch] += mean * mean;
            }
        }
        s->preact_samples++;
    }
}

/* Copies the graph, splitting the activation off conv-like layers so that taps see the
 * pre-activation. owner/is_preact are filled for every layer of the copy. */
static hq_status_t calibration_graph(const hq_graph_t *graph, hq_graph_t **out, int **owner,
                                     bool **is_preact, bool **split_out, hq_error_t *err)
{
    hq_graph_t *g = NULL;
    hq_status_t st = hq_graph_clone(graph, &g, err);
    if (st != HQ_OK)
        return st;
    int n = hq_graph_layer_count(graph);
    bool *split = calloc((size_t)n + 1, sizeof *split);
    if (!split) {
        hq_graph_destroy(g);
        return hqi_nomem(err, "calibration");
    }
    int added = 0;
    for (int i = 0; i < n && st == HQ_OK; i++) {
        const hq_layer_t *l = hq_graph_layer(graph, i);
        if (!hqi_layer_traits(l->type)->has_weights || l->params.activation == HQ_ACT_LINEAR ||
            l->params.activation == HQ_ACT_PRELU || l->output_count == 0)
            continue;
        char name[512];
        snprintf(name, sizeof name, "%s" SPLIT_SUFFIX, l->bare_name);
        int a = -1;
        st = hq_graph_add_layer(g, name, HQ_LAYER_ACTIVATION, &a, err);
        if (st != HQ_OK)
            break;
        hq_layer_t *act = hq_graph_layer_mut(g, a);
        hq_layer_t *conv = hq_graph_layer_mut(g, i);
        act->params.activation = conv->params.activation;
        act->params.activation_alpha = conv->params.activation_alpha;
        act->params.activation_beta = conv->params.activation_beta;
        conv->params.activation = HQ_ACT_LINEAR;
        st = hq_graph_insert_after(g, i, a, err);
        split[i] = true;
        added++;
    }
    if (st == HQ_OK)
        st = hq_graph_finalize(g, "calibration graph", err);
    int total = hq_graph_layer_count(g);
    int *own = st == HQ_OK ? malloc(sizeof(int) * (size_t)total) : NULL;
    bool *pre = st == HQ_OK ? calloc((size_t)total, sizeof(bool)) : NULL;
    if (st == HQ_OK && (!own || !pre))
        st = hqi_nomem(err, "calibration");
    if (st == HQ_OK) {
        for (int i = 0; i < total; i++) {
            own[i] = i;
            if (i < n)
                pre[i] = hqi_layer_traits(hq_graph_layer(graph, i)->type)->has_weights;
        }
        /* the added activation layers follow their conv */
        for (int i = n; i < total; i++) {
            const hq_layer_t *act = hq_graph_layer(g, i);
            own[i] = act->input_count ? act->inputs[0] : 0;
        }
    }
    if (st != HQ_OK) {
        free(own);
        free(pre);
        free(split);
        hq_graph_destroy(g);
        return st;
    }
    (void)added;
    *out = g;
    *owner = own;
    *is_preact = pre;
    *split_out = split;
    return HQ_OK;
}

/* Tap adapter that knows which layers were split. */
typedef struct tap2 {
    tap_state_t base;
    const bool *split; /* real layer i reports its output through its activation copy */
} tap2_t;

static hq_status_t on_tap2(void *user, int layer, int port, const hq_shape_t *shape,
                           const float *data, hq_error_t *err)
{
    (void)port;
    (void)err;
    tap2_t *t = user;
    int real = t->base.owner[layer];
    hqi_layer_stats_t *s = &t->base.cal->layers[real];
    if (layer < t->base.original_count) {
        if (t->base.is_preact[layer])
            add_preact(s, shape, data);
        if (!t->split[layer])
            add_output(s, shape, data);
    } else {
        add_output(s, shape, data);
    }
    return HQ_OK;
}

hq_status_t hqi_calibrate(const hq_graph_t *graph, const hq_npz_t *params, hq_dataset_t *data,
                          char *const *input_names, int64_t count, int64_t batch_size, int threads,
                          const hqi_logger_t *logger, hqi_calibration_t **out, hq_error_t *err)
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
        hqi_layer_stats_t *s = &cal->layers[i];
        hq_shape_t shape = hq_layer_port_shape(l, 0);
        s->channels = shape.ndim > 1 ? (int)shape.dims[shape.ndim - 1] : 1;
        s->has_preact = hqi_layer_traits(l->type)->has_weights;
        s->fine = calloc(HQI_FINE_BINS, sizeof(int64_t));
        s->channel_mean = calloc((size_t)s->channels, sizeof(double));
        if (s->has_preact) {
            s->preact_mean_sum = calloc((size_t)s->channels, sizeof(double));
            s->preact_var_sum = calloc((size_t)s->channels, sizeof(double));
            s->preact_sq_sum = calloc((size_t)s->channels, sizeof(double));
        }
        if (!s->fine || !s->channel_mean ||
            (s->has_preact && (!s->preact_mean_sum || !s->preact_var_sum || !s->preact_sq_sum)))
            st = hqi_nomem(err, "calibration");
    }
    hq_graph_t *g = NULL;
    int *owner = NULL;
    bool *is_preact = NULL, *split = NULL;
    if (st == HQ_OK)
        st = calibration_graph(graph, &g, &owner, &is_preact, &split, err);
    hq_emulator_t *emu = NULL;
    if (st == HQ_OK)
        st =
            hq_emulator_create(g, params, HQ_TARGET_FP_OPTIMIZED, "fp_optimized params", &emu, err);
    if (st == HQ_OK && threads > 0)
        st = hq_emulator_set_threads(emu, threads, err);
    /* dataset input j feeds graph input k */
    int in_count = 0;
    const int *ins = st == HQ_OK ? hq_graph_inputs(g, &in_count) : NULL;
    int ds_count = hq_dataset_input_count(data);
    int *source = st == HQ_OK ? malloc(sizeof(int) * (size_t)(in_count ? in_count : 1)) : NULL;
    float **buffers =
        st == HQ_OK ? calloc((size_t)(in_count ? in_count : 1), sizeof(float *)) : NULL;
    if (st == HQ_OK && (!source || !buffers))
        st = hqi_nomem(err, "calibration");
    for (int k = 0; k < in_count && st == HQ_OK; k++) {
        source[k] = -1;
        const hq_layer_t *in = hq_graph_layer(g, ins[k]);
        for (int j = 0; j < ds_count; j++)
            if (input_names ? strcmp(input_names[j], in->name) == 0 : j == k)
                source[k] = j;
        if (source[k] < 0 && ds_count == 1 && in_count == 1)
            source[k] = 0;
        if (source[k] < 0) {
            st = hqi_error(err, HQ_ERR_NOT_FOUND,
                           "calibration: the dataset has no data for input '%s'", in->name);
            break;
        }
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
    tap2_t tap = {{cal, n, owner, is_preact}, split};
    for (int64_t first = 0; first < count && st == HQ_OK; first += batch_size) {
        int64_t b = count - first < batch_size ? count - first : batch_size;
        for (int k = 0; k < in_count && st == HQ_OK; k++)
            st = hq_dataset_read(data, source[k], first, b, buffers[k], err);
        if (st == HQ_OK)
            st = hq_emulator_run(emu, b, (const float *const *)buffers, NULL, on_tap2, &tap, err);
        if (st == HQ_OK)
            hqi_logf(logger, HQ_LOG_DEBUG, "calibration: %lld/%lld samples", (long long)(first + b),
                     (long long)count);
    }
    cal->samples = count;
    for (int i = 0; i < n && st == HQ_OK; i++) {
        hqi_layer_stats_t *s = &cal->layers[i];
        for (int c = 0; c < s->channels; c++)
            s->channel_mean[c] /= (double)count;
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
    hq_graph_destroy(g);
    free(owner);
    free(is_preact);
    free(split);
    if (st != HQ_OK) {
        hqi_calibration_destroy(cal);
        return st;
    }
    *out = cal;
    return HQ_OK;
}

void hqi_stats_histogram(const hqi_layer_stats_t *s, int64_t hist[HQI_HIST_BINS])
{
    memset(hist, 0, sizeof(int64_t) * HQI_HIST_BINS);
    if (!s->seen)
        return;
    double lo = s->min < 0 ? s->min : 0, hi = s->max > 0 ? s->max : 0;
    if (!(hi > lo) || (s->fine_lo == lo && s->fine_hi == hi)) {
        /* the working grid is the final range: exact (see the file comment) */
        for (int i = 0; i < HQI_FINE_BINS; i++)
            hist[hi > lo ? i / (HQI_FINE_BINS / HQI_HIST_BINS) : 0] += s->fine[i];
        return;
    }
    /* a working bin straddling stored bins is shared in proportion to the overlap; the shares
       are rounded by largest remainder so that the total count is kept */
    double share[HQI_HIST_BINS] = {0};
    double fw = (s->fine_hi - s->fine_lo) / HQI_FINE_BINS, cw = (hi - lo) / HQI_HIST_BINS;
    for (int i = 0; i < HQI_FINE_BINS; i++) {
        if (!s->fine[i])
            continue;
        double a = s->fine_lo + i * fw, b = a + fw;
        a = a < lo ? lo : a;
        b = b > hi ? hi : b;
        if (b <= a) { /* outside [lo, hi]: only rounding puts counts there */
            int j = s->fine_lo + (i + 0.5) * fw < lo ? 0 : HQI_HIST_BINS - 1;
            share[j] += (double)s->fine[i];
            continue;
        }
        int ja = (int)floor((a - lo) / cw), jb = (int)floor((b - lo) / cw);
        ja = ja < 0 ? 0 : ja >= HQI_HIST_BINS ? HQI_HIST_BINS - 1 : ja;
        jb = jb < 0 ? 0 : jb >= HQI_HIST_BINS ? HQI_HIST_BINS - 1 : jb;
        for (int j = ja; j <= jb; j++) {
            double x0 = lo + j * cw, x1 = x0 + cw;
            double o0 = a > x0 ? a : x0, o1 = b < x1 ? b : x1;
            if (o1 > o0)
                share[j] += (double)s->fine[i] * (o1 - o0) / (b - a);
        }
    }
    int64_t assigned = 0;
    for (int j = 0; j < HQI_HIST_BINS; j++) {
        hist[j] = (int64_t)floor(share[j]);
        share[j] -= (double)hist[j];
        assigned += hist[j];
    }
    for (int64_t left = s->count - assigned; left > 0; left--) {
        int best = 0;
        for (int j = 1; j < HQI_HIST_BINS; j++)
            best = share[j] > share[best] ? j : best;
        hist[best]++;
        share[best] = -1.0;
    }
}

/* The value of rank r (0-based) in sorted order, the counts of a working bin taken as spread
 * evenly over it: within one working bin of the true value. */
static double value_at_rank(const hqi_layer_stats_t *s, double r)
{
    double fw = (s->fine_hi - s->fine_lo) / HQI_FINE_BINS, below = 0.0;
    for (int i = 0; i < HQI_FINE_BINS; i++) {
        if (s->fine[i] && below + (double)s->fine[i] > r)
            return s->fine_lo + (i + (r - below + 0.5) / (double)s->fine[i]) * fw;
        below += (double)s->fine[i];
    }
    return s->max;
}

double hqi_stats_percentile(const hqi_layer_stats_t *s, double percent)
{
    if (!s->seen || s->count == 0)
        return 0.0;
    if (percent <= 0)
        return s->min;
    if (percent >= 100)
        return s->max;
    /* numpy's default ("linear"): between the order statistics around p * (count - 1) */
    double k = percent / 100.0 * (double)(s->count - 1);
    double r = floor(k), frac = k - r;
    double v = value_at_rank(s, r) * (1.0 - frac) + value_at_rank(s, r + 1) * frac;
    return v < s->min ? s->min : v > s->max ? s->max : v;
}

void hqi_stats_preact(const hqi_layer_stats_t *s, float *mean, float *std)
{
    for (int c = 0; c < s->channels; c++) {
        double n = (double)(s->preact_samples ? s->preact_samples : 1);
        double m = s->preact_mean_sum ? s->preact_mean_sum[c] / n : 0.0;
        double v;
        if (s->preact_spatial > 1)
            v = s->preact_var_sum[c] / n;
        else /* one value per sample (dense): the spread across samples */
            v = s->preact_sq_sum ? s->preact_sq_sum[c] / n - m * m : 0.0;
        mean[c] = (float)m;
        std[c] = (float)sqrt(v > 0 ? v : 0.0);
    }
}

hq_status_t hqi_calibration_store(const hq_graph_t *graph, const hqi_calibration_t *cal,
                                  hq_npz_t *q, hq_error_t *err)
{
    hq_status_t st = HQ_OK;
    for (int i = 0; i < cal->layer_count && st == HQ_OK; i++) {
        const hq_layer_t *l = hq_graph_layer(graph, i);
        const hqi_layer_stats_t *s = &cal->layers[i];
        if (!s->seen)
            continue;
        float limvals[2] = {(float)s->min, (float)s->max};
        int64_t hist[HQI_HIST_BINS];
        hqi_stats_histogram(s, hist);
        st = hqi_put_f32(q, l->name, "stats/output_0/stats_limvals:0", limvals, 2, err);
        if (st == HQ_OK)
            st = hqi_put_i64(q, l->name, "stats/output_0/histogram:0", hist, HQI_HIST_BINS, err);
        float *m = malloc(sizeof(float) * (size_t)s->channels * 2);
        if (st == HQ_OK && !m)
            st = hqi_nomem(err, "calibration stats");
        if (st == HQ_OK) {
            for (int c = 0; c < s->channels; c++)
                m[c] = (float)s->channel_mean[c];
            st = hqi_put_f32(q, l->name, "stats/output_0/channel_mean:0", m, s->channels, err);
        }
        if (st == HQ_OK && s->has_preact && s->preact_samples) {
            float pre[2] = {(float)s->preact_min, (float)s->preact_max};
            st = hqi_put_f32(q, l->name, "stats/preact_limvals:0", pre, 2, err);
        }
        if (st == HQ_OK && s->has_preact && s->preact_samples) {
            hqi_stats_preact(s, m, m + s->channels);
            st = hqi_put_f32(q, l->name, "stats/preact_mean:0", m, s->channels, err);
            if (st == HQ_OK)
                st = hqi_put_f32(q, l->name, "stats/preact_std:0", m + s->channels, s->channels,
                                 err);
        }
        free(m);
    }
    return st;
}
