/* ranges.c — the float range each layer's output is quantized over, and weight
 * clipping.
 *
 * Per layer: the observed calibration [min, max] by default, or the activation_clipping range
 * (manual values, percentiles of the calibration histogram, or the least-MSE clip of that
 * histogram), or force_range_out; always
 * widened to contain 0 (zero padding and ReLU zeros must be exact). Then groups: a concat's inputs
 * and output, and the layers that only move values (output, feature_splitter, maxpool, slice, pad,
 * reshape, transpose, depth/space, nearest resize) with their input, form one group that gets one
 * range, the union of its members' ranges — forced ranges, when a member has one, win over
 * calibrated ones. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/layer_types.h"
#include "quant/precision.h"
#include "quant/ranges.h"
#include "runtime/hqrt_numerics.h"
#include "util/threadpool.h"
#include "util/util.h"

/* Smallest range width handed to the integer builder: a layer that only ever output zeros still
 * needs a non-zero scale. */
#define MIN_RANGE 1e-6

bool hqi_range_preserving(const hq_layer_t *layer)
{
    if (layer->type == HQ_LAYER_RESIZE)
        return layer->params.resize_method == HQ_RESIZE_NEAREST;
    return hqi_layer_traits(layer->type)->range_preserving && layer->input_count >= 1;
}

static int find(int *parent, int x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

hq_status_t hqi_ranges_compute(const hq_graph_t *graph, const hqi_calibration_t *cal,
                               const hqi_range_request_t *req, hqi_layer_quant_t *dec,
                               const hqi_logger_t *logger, hq_error_t *err)
{
    int n = hq_graph_layer_count(graph);
    /* per layer: its range, union-find parent and whether a request fixed it; per group (at
     * its root): the range, whether a member's request fixed it and its computing members */
    double *lo = malloc(sizeof(double) * (size_t)(n ? n : 1) * 2);
    int *parent = malloc(sizeof(int) * (size_t)(n ? n : 1));
    int *forced = calloc((size_t)(n ? n : 1), sizeof(int));
    double *glo = malloc(sizeof(double) * (size_t)(n ? n : 1) * 2);
    int *gforced = calloc((size_t)(n ? n : 1), sizeof(int));
    int *gsize = calloc((size_t)(n ? n : 1), sizeof(int));
    hq_status_t st = HQ_OK;
    if (!lo || !parent || !forced || !glo || !gforced || !gsize) {
        st = hqi_nomem(err, "ranges");
        goto done;
    }
    double *hi = lo + n;
    for (int i = 0; i < n; i++) {
        const hq_layer_t *l = hq_graph_layer(graph, i);
        const hqi_stats_t *s = cal ? &cal->layers[i] : NULL;
        parent[i] = i;
        lo[i] = s && s->seen ? s->min : 0.0;
        hi[i] = s && s->seen ? s->max : 0.0;
        const hqi_range_request_t *r = &req[i];
        if (r->clip == HQI_CLIP_MANUAL) {
            lo[i] = r->clip_a;
            hi[i] = r->clip_b;
        } else if (r->clip == HQI_CLIP_PERCENTILE && s) {
            lo[i] = hqi_stats_percentile(s, r->clip_a);
            hi[i] = hqi_stats_percentile(s, r->clip_b);
        } else if (r->clip == HQI_CLIP_MMSE && s) {
            hqi_clip_mmse_activation(s, dec[i].output_bits ? dec[i].output_bits : 8, &lo[i],
                                     &hi[i]);
        }
        if (r->clip != HQI_CLIP_NONE)
            forced[i] = 1;
        if (r->clip != HQI_CLIP_NONE)
            hqi_logf(logger, HQ_LOG_INFO,
                     "%s: activation range clipped to [%g, %g] (observed [%g, %g])", l->bare_name,
                     lo[i], hi[i], s && s->seen ? s->min : 0.0, s && s->seen ? s->max : 0.0);
        if (r->force_out) {
            lo[i] = r->force_lo;
            hi[i] = r->force_hi;
            forced[i] = 1;
            if (lo[i] > 0 || hi[i] < 0)
                hqi_logf(logger, HQ_LOG_WARNING,
                         "%s: force_range_out [%g, %g] widened to contain 0", l->bare_name, lo[i],
                         hi[i]);
        }
        lo[i] = lo[i] < 0 ? lo[i] : 0.0;
        hi[i] = hi[i] > 0 ? hi[i] : 0.0;
    }
    /* groups: concat inputs + output, range-preserving layers + their input */
    for (int i = 0; i < n; i++) {
        const hq_layer_t *l = hq_graph_layer(graph, i);
        if (hqi_range_preserving(l))
            for (int k = 0; k < l->input_count; k++) {
                int a = find(parent, i), b = find(parent, l->inputs[k]);
                if (a != b)
                    parent[a] = b;
            }
    }
    double *ghi = glo + n;
    for (int i = 0; i < n; i++) {
        glo[i] = 0.0;
        ghi[i] = 0.0;
    }
    /* who speaks for a group: members with a request (force or clip) when there are any, else
       the members that compute values; layers that only move values (and a concat's own
       output) would re-widen a clipped input range */
    for (int i = 0; i < n; i++) {
        const hq_layer_t *l = hq_graph_layer(graph, i);
        int g = find(parent, i);
        if (forced[i])
            gforced[g] = 1;
        if (!hqi_range_preserving(l))
            gsize[g]++;
    }
    for (int i = 0; i < n; i++) {
        const hq_layer_t *l = hq_graph_layer(graph, i);
        int g = find(parent, i);
        bool source = !hqi_range_preserving(l);
        if (gforced[g] ? !forced[i] : (gsize[g] > 0 && !source))
            continue;
        glo[g] = lo[i] < glo[g] ? lo[i] : glo[g];
        ghi[g] = hi[i] > ghi[g] ? hi[i] : ghi[g];
    }
    for (int i = 0; i < n; i++) {
        const hq_layer_t *l = hq_graph_layer(graph, i);
        int g = find(parent, i);
        double a = glo[g], b = ghi[g];
        if (b - a < MIN_RANGE)
            b = a + MIN_RANGE;
        dec[i].out_min = (float)a;
        dec[i].out_max = (float)b;
        if (l->type != HQ_LAYER_CONCAT)
            continue;
        for (int k = 0; k < l->input_count; k++) {
            int p = l->inputs[k];
            if (lo[p] != a || hi[p] != b) {
                hqi_logf(logger, HQ_LOG_INFO,
                         "%s: the inputs of the concat share one range [%g, %g] (%s alone "
                         "spans [%g, %g])",
                         l->bare_name, a, b, hq_graph_layer(graph, p)->bare_name, lo[p], hi[p]);
                break;
            }
        }
    }
done:
    free(lo);
    free(parent);
    free(forced);
    free(glo);
    free(gforced);
    free(gsize);
    return st;
}

/* ---- activation clipping by least MSE -------------------------------------------------------- */

/* Edge k of the working histogram. */
static double fine_edge(const hqi_stats_t *s, int k)
{
    return s->fine_lo + (s->fine_hi - s->fine_lo) * k / HQI_STATS_FINE_BINS;
}

double hqi_clip_activation_error(const hqi_stats_t *s, int bits, double lo, double hi)
{
    if (!s->fine)
        return 0.0;
    double w = (s->fine_hi - s->fine_lo) / HQI_STATS_FINE_BINS;
    double step = (hi - lo) / (ldexp(1.0, bits) - 1.0), e = 0.0;
    for (int j = 0; j < HQI_STATS_FINE_BINS; j++) {
        double x = s->fine_lo + (j + 0.5) * w, c = (double)s->fine[j];
        e += x < lo ? c * (x - lo) * (x - lo) : x > hi ? c * (x - hi) * (x - hi)
                                                       : c * step * step / 12.0;
    }
    return e;
}

void hqi_clip_mmse_activation(const hqi_stats_t *s, int bits, double *lo, double *hi)
{
    enum { NB = HQI_STATS_FINE_BINS };
    *lo = *hi = 0.0;
    if (!s->seen || !s->fine)
        return;
    int first = -1, last = -1;
    for (int j = 0; j < NB; j++)
        if (s->fine[j]) {
            first = first < 0 ? j : first;
            last = j;
        }
    *lo = s->min < 0 ? s->min : 0.0;
    *hi = s->max > 0 ? s->max : 0.0;
    double *e_low = malloc(sizeof(double) * (NB + 1) * 3);
    if (first < 0 || !e_low) {
        free(e_low);
        return; /* no clipping */
    }
    double *e_high = e_low + NB + 1, *below = e_high + NB + 1;
    /* candidates: lo at edges a in [a0, k0] (edge <= 0), hi at edges b in [k1, b1] (edge >= 0) */
    int k0 = 0;
    while (k0 < NB && fine_edge(s, k0 + 1) <= 0.0)
        k0++;
    int k1 = fine_edge(s, k0) == 0.0 ? k0 : k0 + 1;
    int a0 = first < k0 ? first : k0, b1 = last + 1 > k1 ? last + 1 : k1;
    double w = (s->fine_hi - s->fine_lo) / NB;
    /* clipping errors, accumulated bin by bin from the empty ends: t1 and t2 are the sums of
       count * distance and count * distance^2 to the current edge */
    double t0 = 0, t1 = 0, t2 = 0;
    for (int a = a0; a <= k0; a++) {
        e_low[a] = t2;
        t2 += 2 * w * t1 + w * w * t0 + (double)s->fine[a] * w * w / 4;
        t1 += w * t0 + (double)s->fine[a] * w / 2;
        t0 += (double)s->fine[a];
    }
    t0 = t1 = t2 = 0;
    for (int b = b1; b >= k1; b--) {
        e_high[b] = t2;
        if (b == 0)
            break;
        double c = (double)s->fine[b - 1];
        t2 += 2 * w * t1 + w * w * t0 + c * w * w / 4;
        t1 += w * t0 + c * w / 2;
        t0 += c;
    }
    below[0] = 0;
    for (int j = 0; j < NB; j++)
        below[j + 1] = below[j] + (double)s->fine[j];
    /* both clipping errors grow as an edge moves towards 0 and the rounding error is >= 0, so a
       sweep stops as soon as the clipping errors alone reach the best */
    double levels = ldexp(1.0, bits) - 1.0, best = INFINITY;
    int best_a = a0, best_b = b1;
    for (int a = a0; a <= k0 && e_low[a] < best; a++) {
        double ea = fine_edge(s, a);
        for (int b = b1; b >= k1 && e_low[a] + e_high[b] < best; b--) {
            double step = (fine_edge(s, b) - ea) / levels;
            double e = e_low[a] + e_high[b] + (below[b] - below[a]) * step * step / 12.0;
            if (e < best) {
                best = e;
                best_a = a;
                best_b = b;
            }
        }
    }
    double a = fine_edge(s, best_a), b = fine_edge(s, best_b);
    a = a > s->min ? a : s->min;
    b = b < s->max ? b : s->max;
    *lo = a < 0 ? a : 0.0;
    *hi = b > 0 ? b : 0.0;
    free(e_low);
}

/* ---- weight clipping ------------------------------------------------------------------------ */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

double hqi_weight_clip_error(const float *w, int64_t count, int64_t stride, int bits, double clip)
{
    if (!(clip > 0))
        return 0.0;
    const int64_t wmax = ((int64_t)1 << (bits - 1)) - 1;
    float scale = (float)(clip / (double)wmax);
    if (!(scale > 0))
        scale = 1e-30f;
    double e = 0.0;
    for (int64_t k = 0; k < count; k++) {
        double v = (double)w[k * stride];
        double c = v > clip ? clip : v < -clip ? -clip : v;
        int64_t q = hqrt_round_double(c / (double)scale);
        q = q > wmax ? wmax : q < -wmax ? -wmax : q;
        double d = v - (double)q * (double)scale;
        e += d * d;
    }
    return e;
}

double hqi_weight_clip_mmse(const float *w, int64_t count, int64_t stride, int bits)
{
    double m = 0.0;
    for (int64_t k = 0; k < count; k++)
        m = fmax(m, fabs((double)w[k * stride]));
    if (!(m > 0))
        return 0.0;
    double best_clip = m, best = hqi_weight_clip_error(w, count, stride, bits, m);
    for (int k = HQI_WEIGHT_CLIP_STEPS - 1; k >= 1; k--) {
        double clip = m * k / HQI_WEIGHT_CLIP_STEPS;
        double e = hqi_weight_clip_error(w, count, stride, bits, clip);
        if (e < best) {
            best = e;
            best_clip = clip;
        }
    }
    return best_clip;
}

void hqi_weight_clip_free(hqi_layer_quant_t *dec, int count)
{
    for (int i = 0; dec && i < count; i++) {
        free(dec[i].weight_clip_channels);
        dec[i].weight_clip_channels = NULL;
    }
}

static hq_status_t weight_clips(const hq_graph_t *graph, const hq_npz_t *params,
                                const hqi_range_request_t *req, hqi_layer_quant_t *dec,
                                hqi_threadpool_t *pool, hq_error_t *err);

/* One layer's per-channel search, one task per output channel. */
typedef struct clip_job {
    const float *w;
    int64_t per_channel, cout;
    int bits;
    float *clips;
} clip_job_t;

static void clip_channel(void *context, int64_t c, int thread)
{
    (void)thread;
    const clip_job_t *j = context;
    /* The search reads the channel HQI_WEIGHT_CLIP_STEPS times: read in place, each pass would
     * touch one cache line per weight (the channel's weights are cout floats apart). A contiguous
     * copy stays in L1 and gives the very same sums. */
    float *chan = malloc(sizeof(float) * (size_t)j->per_channel);
    if (!chan) {
        j->clips[c] = (float)hqi_weight_clip_mmse(j->w + c, j->per_channel, j->cout, j->bits);
        return;
    }
    for (int64_t k = 0; k < j->per_channel; k++)
        chan[k] = j->w[c + k * j->cout];
    j->clips[c] = (float)hqi_weight_clip_mmse(chan, j->per_channel, 1, j->bits);
    free(chan);
}

/* Per output channel least-MSE clips of one layer (kernel's last axis = output channels), the
 * channels shared out over `pool` (NULL: in order). */
static hq_status_t weight_clip_channels(const hq_layer_t *l, const hq_tensor_t *k,
                                        hqi_layer_quant_t *d, hqi_threadpool_t *pool,
                                        hq_error_t *err)
{
    int64_t count = hq_tensor_count(k), cout = l->params.kernel_out;
    if (k->dtype != HQ_DTYPE_FLOAT32 || cout < 1 || count % cout)
        return HQ_OK; /* not a layout the builder clips per channel */
    float *clips = malloc(sizeof(float) * (size_t)cout);
    if (!clips)
        return hqi_nomem(err, "weights_clipping");
    clip_job_t job = {k->data, count / cout, cout, d->weight_bits ? d->weight_bits : 8, clips};
    hqi_threadpool_run(pool, cout, clip_channel, &job);
    d->weight_clip_channels = clips;
    return HQ_OK;
}

hq_status_t hqi_weight_clip_compute(const hq_graph_t *graph, const hq_npz_t *params,
                                    const hqi_range_request_t *req, hqi_layer_quant_t *dec,
                                    int threads, hq_error_t *err)
{
    int n = hq_graph_layer_count(graph);
    hqi_threadpool_t *pool = NULL;
    bool searched = false;
    for (int i = 0; i < n; i++)
        searched = searched || req[i].weight_clip == HQI_CLIP_MMSE ||
                   req[i].weight_clip == HQI_CLIP_MMSE_IF4B;
    if (searched) {
        hq_status_t st =
            hqi_threadpool_create(threads > 0 ? threads : hqi_default_threads(), &pool, err);
        if (st != HQ_OK)
            return st;
    }
    hq_status_t st = weight_clips(graph, params, req, dec, pool, err);
    hqi_threadpool_destroy(pool);
    return st;
}

static hq_status_t weight_clips(const hq_graph_t *graph, const hq_npz_t *params,
                                const hqi_range_request_t *req, hqi_layer_quant_t *dec,
                                hqi_threadpool_t *pool, hq_error_t *err)
{
    int n = hq_graph_layer_count(graph);
    for (int i = 0; i < n; i++) {
        const hq_layer_t *l = hq_graph_layer(graph, i);
        dec[i].weight_clip = 0.0f;
        if (req[i].weight_clip == HQI_CLIP_NONE || !hqi_layer_traits(l->type)->has_weights)
            continue;
        if (req[i].weight_clip == HQI_CLIP_MANUAL) {
            double a = fabs(req[i].weight_a), b = fabs(req[i].weight_b);
            dec[i].weight_clip = (float)(a > b ? a : b);
            continue;
        }
        if (req[i].weight_clip == HQI_CLIP_MMSE_IF4B && dec[i].weight_bits != 4)
            continue;
        const hq_tensor_t *k = hqi_param(params, l, "kernel:0");
        if (req[i].weight_clip == HQI_CLIP_MMSE || req[i].weight_clip == HQI_CLIP_MMSE_IF4B) {
            hq_status_t st = k ? weight_clip_channels(l, k, &dec[i], pool, err) : HQ_OK;
            if (st != HQ_OK)
                return st;
            continue;
        }
        if (!k)
            return hqi_error(err, HQ_ERR_NOT_FOUND, "weights_clipping: %s has no kernel", l->name);
        int64_t count = hq_tensor_count(k);
        float *abs_w = malloc(sizeof(float) * (size_t)(count ? count : 1));
        if (!abs_w)
            return hqi_nomem(err, "weights_clipping");
        for (int64_t j = 0; j < count; j++)
            abs_w[j] = fabsf(((const float *)k->data)[j]);
        qsort(abs_w, (size_t)count, sizeof(float), cmp_float);
        double p = req[i].weight_b > 0 ? req[i].weight_b : req[i].weight_a;
        int64_t at = (int64_t)floor(p / 100.0 * (double)(count - 1) + 0.5);
        at = at < 0 ? 0 : at >= count ? count - 1 : at;
        dec[i].weight_clip = count ? abs_w[at] : 0.0f;
        free(abs_w);
    }
    return HQ_OK;
}

/* ---- pre-activation ranges of lookup-table activations ------------------------------------ */

static double act_value(hq_activation_t act, double alpha, double beta, double x)
{
    switch (act) {
    case HQ_ACT_SIGMOID:
        return 1.0 / (1.0 + exp(-x));
    case HQ_ACT_TANH:
        return tanh(x);
    case HQ_ACT_SILU:
        return x / (1.0 + exp(-x));
    case HQ_ACT_HARDSWISH: {
        double r = x + 3.0;
        r = r < 0 ? 0 : r > 6 ? 6 : r;
        return x * r / 6.0;
    }
    case HQ_ACT_HARDSIGMOID: {
        double y = alpha * x + beta;
        return y < 0 ? 0 : y > 1 ? 1 : y;
    }
    case HQ_ACT_EXP:
        return exp(x);
    case HQ_ACT_GELU:
        return 0.5 * x * (1.0 + erf(x * 0.70710678118654752));
    default:
        return x;
    }
}

/* The x in [a, b] where the increasing f crosses y (f(a) <= y <= f(b)), by bisection. */
static double crossing(hq_activation_t act, double alpha, double beta, double a, double b, double y)
{
    for (int i = 0; i < 200; i++) {
        double m = 0.5 * (a + b);
        if (act_value(act, alpha, beta, m) < y)
            a = m;
        else
            b = m;
    }
    return b;
}

void hqi_lut_pre_range(hq_activation_t act, float alpha, float beta, double pre_min, double pre_max,
                       double out_min, double out_max, int out_bits, double *lo, double *hi)
{
    *lo = pre_min;
    *hi = pre_max;
    double q = (out_max - out_min) / (ldexp(1.0, out_bits) - 1.0);
    if (!(q > 0) || !(pre_max > pre_min))
        return;
    /* the increasing part of f that matters: below `flat` a non-monotonic f (silu, gelu,
       hardswish) is within half a step of 0 */
    double left = pre_min, right = pre_max;
    if (act == HQ_ACT_HARDSWISH)
        left = fmax(left, -3.0);
    if (act == HQ_ACT_SILU || act == HQ_ACT_GELU) {
        /* silu decreases to its minimum at -1.2785 (gelu at -0.7518) and rises back to 0
           towards -inf */
        double x = act == HQ_ACT_SILU ? -1.2785 : -0.7518;
        if (left < x && -act_value(act, alpha, beta, left) < q / 4) {
            double a = left, b = x; /* f(a) > -q/2 >= f(b): find where it crosses */
            for (int i = 0; i < 200; i++) {
                double m = 0.5 * (a + b);
                if (act_value(act, alpha, beta, m) > -q / 4)
                    a = m;
                else
                    b = m;
            }
            left = a;
        }
        if (left < x)
            left = fmin(left, x); /* keep the minimum itself */
        *lo = left;
        double top = out_max - q / 4;
        if (right > 0 && act_value(act, alpha, beta, right) > top)
            right = crossing(act, alpha, beta, fmax(left, 0.0), right, top);
        *hi = right;
        return;
    }
    if (act == HQ_ACT_HARDSIGMOID && alpha <= 0)
        return; /* decreasing: leave the observed range */
    /* inputs whose output is within a quarter step of the ends give the end codes */
    double bottom = out_min + q / 4, top = out_max - q / 4;
    if (act_value(act, alpha, beta, left) < bottom && act_value(act, alpha, beta, right) > bottom)
        left = crossing(act, alpha, beta, left, right, bottom);
    if (act_value(act, alpha, beta, right) > top && act_value(act, alpha, beta, left) < top)
        right = crossing(act, alpha, beta, left, right, top);
    *lo = left;
    *hi = right;
}
