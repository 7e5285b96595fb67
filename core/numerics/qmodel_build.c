/* qmodel_build.c — the integer parameter builder: float params + the optimizer's per-layer
 * decisions -> `<net>.q.npz` (hqi_quant_build_params), and the scalar formulas it rests on
 * (multipliers, activation encodings). Every formula is in docs/numerics.md; the keys are in
 * hq-har(5). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/layer_types.h"
#include "numerics/activation.h"
#include "numerics/qmodel.h"
#include "util/util.h"

/* ---- scalar formulas ---------------------------------------------------------------------- */

void hqi_quant_multiplier(double ratio, int32_t *multiplier, int32_t *shift)
{
    *multiplier = 0;
    *shift = 0;
    if (ratio == 0.0 || !isfinite(ratio))
        return;
    int e = 0;
    double q = frexp(ratio, &e); /* ratio = q * 2^e, |q| in [0.5, 1) */
    int64_t fixed = hqrt_round_double(q * 2147483648.0);
    if (fixed == ((int64_t)1 << 31) || fixed == -((int64_t)1 << 31)) {
        fixed /= 2;
        e++;
    }
    if (e < -31)
        return; /* below 2^-32: the product rounds to 0 for any 32-bit input */
    if (e > 30) {
        *multiplier = ratio > 0 ? INT32_MAX : -INT32_MAX;
        *shift = 30;
        return;
    }
    *multiplier = (int32_t)fixed;
    *shift = e;
}

void hqi_quant_activation_qp(double lo, double hi, int bits, float *scale, int32_t *zp)
{
    if (lo > 0)
        lo = 0;
    if (hi < 0)
        hi = 0;
    const int32_t max = hqrt_code_max(bits);
    if (!(hi - lo > 0) || !isfinite(hi - lo)) {
        *scale = 1.0f;
        *zp = 0;
        return;
    }
    *scale = (float)((hi - lo) / (double)max);
    if (!(*scale > 0))
        *scale = 1e-30f;
    *zp = hqrt_clamp32(hqrt_round_double(-lo / (double)*scale), 0, max);
}

/* ---- builder context ------------------------------------------------------------------------ */

typedef struct builder {
    const hq_graph_t *graph;
    const hq_npz_t *fpo;
    const hqi_layer_quant_t *decisions;
    hq_npz_t *out;
    float *scale; /* per layer: output qp */
    int32_t *zp;
    int32_t *bits;
    hq_error_t *err;
} builder_t;

static hq_status_t put(builder_t *b, const hq_layer_t *layer, const char *suffix, hq_dtype_t dtype,
                       int ndim, const int64_t *shape, void **data)
{
    char key[1024];
    int len = snprintf(key, sizeof key, "%s/%s", layer->name, suffix);
    if (len < 0 || (size_t)len >= sizeof key)
        return hqi_error(b->err, HQ_ERR_LIMIT, "layer '%s': name too long", layer->name);
    hq_tensor_t *t = NULL;
    hq_status_t st = hq_tensor_create(dtype, ndim, shape, &t, b->err);
    if (st != HQ_OK)
        return st;
    *data = t->data;
    return hq_npz_put(b->out, key, t, b->err);
}

static hq_status_t put_i32(builder_t *b, const hq_layer_t *layer, const char *suffix,
                           const int32_t *values, int64_t count)
{
    void *data;
    hq_status_t st = put(b, layer, suffix, HQ_DTYPE_INT32, 1, &count, &data);
    if (st == HQ_OK)
        memcpy(data, values, (size_t)count * sizeof(int32_t));
    return st;
}

static hq_status_t put_f32(builder_t *b, const hq_layer_t *layer, const char *suffix,
                           const float *values, int64_t count)
{
    void *data;
    hq_status_t st = put(b, layer, suffix, HQ_DTYPE_FLOAT32, 1, &count, &data);
    if (st == HQ_OK)
        memcpy(data, values, (size_t)count * sizeof(float));
    return st;
}

/* A float32 copy of "<layer>/<suffix>" from the fp params (caller frees), or NULL + error. */
static hq_status_t get_float(builder_t *b, const hq_layer_t *layer, const char *suffix,
                             float **values, int64_t *count)
{
    char key[1024];
    snprintf(key, sizeof key, "%s/%s", layer->name, suffix);
    const hq_tensor_t *t = b->fpo ? hq_npz_get(b->fpo, key) : NULL;
    *values = NULL;
    if (!t)
        return hqi_error(b->err, HQ_ERR_NOT_FOUND, "layer '%s': fp params key '%s' missing",
                         layer->name, key);
    hq_tensor_t *f = NULL;
    hq_status_t st = hq_tensor_convert(t, HQ_DTYPE_FLOAT32, &f, b->err);
    if (st != HQ_OK)
        return st;
    *count = hq_tensor_count(f);
    *values = malloc((size_t)(*count > 0 ? *count : 1) * sizeof(float));
    if (*values)
        memcpy(*values, f->data, (size_t)*count * sizeof(float));
    hq_tensor_destroy(f);
    return *values ? HQ_OK : hqi_nomem(b->err, "quantized params");
}

/* Layer types whose output is a copy (or a selection) of their input codes: they output what
 * they receive, so they keep the input encoding whatever the decision says. */
bool hqi_qmodel_keeps_encoding(hq_layer_type_t type)
{
    return hqi_layer_traits(type)->passes_codes;
}

static bool act_uses_lut(hq_activation_t a)
{
    return a == HQ_ACT_SIGMOID || a == HQ_ACT_SILU || a == HQ_ACT_HARDSWISH ||
           a == HQ_ACT_HARDSIGMOID || a == HQ_ACT_TANH || a == HQ_ACT_EXP ||
           a == HQ_ACT_GELU;
}

/* The fallback pre-activation range of a LUT activation (docs/numerics.md). */
static void derive_pre_range(const hq_layer_t *layer, const hqi_layer_quant_t *d, double *lo,
                             double *hi)
{
    const hq_layer_params_t *p = &layer->params;
    double omax = d->out_max > 0 ? d->out_max : 0;
    switch (p->activation) {
    case HQ_ACT_SIGMOID:
    case HQ_ACT_TANH:
        *lo = -8;
        *hi = 8;
        break;
    case HQ_ACT_HARDSIGMOID: {
        double a = p->activation_alpha != 0 ? fabs(p->activation_alpha) : 0.2;
        double c = -p->activation_beta / (p->activation_alpha != 0 ? p->activation_alpha : 0.2);
        *lo = c - 0.5 / a - 1;
        *hi = c + 0.5 / a + 1;
        break;
    }
    case HQ_ACT_EXP:
        *hi = log(omax > 1e-6 ? omax : 1e-6);
        *lo = *hi - 16;
        break;
    default: /* silu, hardswish, gelu: identity-like for large x */
        *lo = -8;
        *hi = omax * 1.05 + 0.1;
        break;
    }
    if (*lo > 0)
        *lo = 0;
    if (*hi < 0)
        *hi = 0;
}

/* ---- output stage ------------------------------------------------------------------------------
 */

/* Builds the output-stage keys of a layer whose accumulator has scale acc_scale[c] (count 1 or
 * channels). `sum_mode`: the stage receives a fixed-point sum (multi-term op) whose scale is set by
 * the input multipliers; then output_multiplier is unused (ratio 1) and the negative multiplier is
 * alpha alone. *stage_scale receives the scale the terms must target (output or pre-activation). */
static hq_status_t build_stage(builder_t *b, int index, const double *acc_scale, int64_t count,
                               int64_t channels, bool sum_mode, const float *slope,
                               int64_t slope_count, double *stage_scale)
{
    const hq_layer_t *layer = hq_graph_layer(b->graph, index);
    const hq_layer_params_t *p = &layer->params;
    const hqi_layer_quant_t *d = &b->decisions[index];
    const int bits = b->bits[index];
    const int32_t max = hqrt_code_max(bits), zp = b->zp[index];
    const double s_out = b->scale[index];
    hq_activation_t act = p->activation;
    int32_t clamp[2] = {0, max};
    double s_stage = s_out;
    hq_status_t st = HQ_OK;

    if (act == HQ_ACT_RELU || act == HQ_ACT_RELU6 || act == HQ_ACT_CLIP) {
        double lo = act == HQ_ACT_CLIP ? p->activation_alpha : 0.0;
        clamp[0] = hqrt_clamp32(zp + hqrt_round_double(lo / s_out), 0, max);
        if (act == HQ_ACT_RELU6 || act == HQ_ACT_CLIP) {
            double hi = act == HQ_ACT_CLIP ? p->activation_beta : 6.0;
            clamp[1] = hqrt_clamp32(zp + hqrt_round_double(hi / s_out), clamp[0], max);
        }
    } else if (act_uses_lut(act)) {
        double lo = d->pre_min, hi = d->pre_max;
        if (lo == 0 && hi == 0)
            derive_pre_range(layer, d, &lo, &hi);
        float pre_scale;
        int32_t pre_zp;
        hqi_quant_activation_qp(lo, hi, bits, &pre_scale, &pre_zp);
        s_stage = pre_scale;
        int64_t n = (int64_t)max + 1;
        void *lut;
        st = put(b, layer, "lut:0", bits == 16 ? HQ_DTYPE_UINT16 : HQ_DTYPE_UINT8, 1, &n, &lut);
        hqi_ref_act_t fa = {act, p->activation_alpha, p->activation_beta, NULL, 0};
        for (int64_t i = 0; st == HQ_OK && i < n; i++) {
            float x = (float)((double)(i - pre_zp) * (double)pre_scale);
            double y = (double)hqi_ref_activate(&fa, x, 0);
            hqrt_store(lut, bits, (size_t)i,
                       hqrt_clamp32(zp + hqrt_round_double(y / s_out), 0, max));
        }
        if (st == HQ_OK)
            st = put_f32(b, layer, "pre_scale:0", &pre_scale, 1);
        if (st == HQ_OK)
            st = put_i32(b, layer, "pre_zp:0", &pre_zp, 1);
    } else if (act != HQ_ACT_LINEAR && act != HQ_ACT_LEAKY && act != HQ_ACT_PRELU) {
        return hqi_error(b->err, HQ_ERR_UNSUPPORTED,
                         "layer '%s': activation '%s' cannot be quantized", layer->name,
                         hq_activation_name(act));
    }
    if (st != HQ_OK)
        return st;
    *stage_scale = s_stage;

    bool neg = act == HQ_ACT_LEAKY || act == HQ_ACT_PRELU;
    int64_t n = count;
    if (act == HQ_ACT_PRELU && slope_count > 1)
        n = channels;
    int32_t *m = calloc((size_t)n * 4, sizeof *m);
    if (!m)
        return hqi_nomem(b->err, "quantized params");
    int32_t *s = m + n, *mn = m + 2 * n, *sn = m + 3 * n;
    for (int64_t c = 0; c < n; c++) {
        double ratio = sum_mode ? 1.0 : acc_scale[count == 1 ? 0 : c] / s_stage;
        hqi_quant_multiplier(ratio, &m[c], &s[c]);
        if (neg) {
            double alpha = act == HQ_ACT_LEAKY ? p->activation_alpha
                           : slope             ? slope[slope_count == 1 ? 0 : c]
                                               : 0.0;
            hqi_quant_multiplier(sum_mode ? alpha : ratio * alpha, &mn[c], &sn[c]);
        }
    }
    st = put_i32(b, layer, "output_multiplier:0", m, n);
    if (st == HQ_OK)
        st = put_i32(b, layer, "output_shift:0", s, n);
    if (st == HQ_OK && neg)
        st = put_i32(b, layer, "output_multiplier_neg:0", mn, n);
    if (st == HQ_OK && neg)
        st = put_i32(b, layer, "output_shift_neg:0", sn, n);
    if (st == HQ_OK)
        st = put_i32(b, layer, "act_clamp:0", clamp, 2);
    free(m);
    return st;
}

static int input_bits_of(const builder_t *b, const hq_layer_t *layer, int k)
{
    return b->bits[layer->inputs[k]];
}

static int32_t requant_path(const builder_t *b, const hq_layer_t *layer, int weight_bits)
{
    bool wide = weight_bits == 16;
    for (int k = 0; k < layer->input_count; k++)
        wide = wide || input_bits_of(b, layer, k) == 16;
    return wide ? HQRT_PATH_WIDE : HQRT_PATH_GEMMLOWP;
}

static hq_status_t put_path(builder_t *b, const hq_layer_t *layer, int weight_bits)
{
    int32_t path = requant_path(b, layer, weight_bits);
    return put_i32(b, layer, "requant_path:0", &path, 1);
}

/* ---- weighted layers ------------------------------------------------------------------------- */

/* Quantizes a float kernel (last axis = cout) and bias per output channel, writes kernel:0 (with
 * `shape`), kernel_scale:0, bias:0, weight_bits:0 and the output stage. `s_in` is the scale of
 * the values the kernel multiplies (the input's, or layer_norm's 2^-16). */
static hq_status_t build_weighted(builder_t *b, int index, const float *w, int64_t wcount, int ndim,
                                  const int64_t *shape, const float *bias, int64_t cout,
                                  const float *slope, int64_t slope_count, double s_in)
{
    const hq_layer_t *layer = hq_graph_layer(b->graph, index);
    const hqi_layer_quant_t *d = &b->decisions[index];
    int wb = d->weight_bits ? d->weight_bits : 8;
    if (wb != 4 && wb != 8 && wb != 16)
        return hqi_error(b->err, HQ_ERR_INVALID, "layer '%s': weight_bits %d, need 4, 8 or 16",
                         layer->name, wb);
    if (cout < 1 || wcount % cout)
        return hqi_error(b->err, HQ_ERR_INVALID,
                         "layer '%s': kernel of %lld values for %lld channels", layer->name,
                         (long long)wcount, (long long)cout);
    const int32_t wmax = (1 << (wb - 1)) - 1;
    const double layer_clip = d->weight_clip > 0 ? d->weight_clip : INFINITY;
    float *ks = NULL;
    double *acc_scale = calloc((size_t)cout, sizeof *acc_scale);
    void *kq = NULL, *bq = NULL;
    hq_status_t st = acc_scale ? HQ_OK : hqi_nomem(b->err, "quantized params");
    if (st == HQ_OK)
        st = put(b, layer, "kernel_scale:0", HQ_DTYPE_FLOAT32, 1, &cout, (void **)&ks);
    if (st == HQ_OK)
        st = put(b, layer, "kernel:0", wb == 16 ? HQ_DTYPE_INT16 : HQ_DTYPE_INT8, ndim, shape, &kq);
    if (st == HQ_OK)
        st = put(b, layer, "bias:0", HQ_DTYPE_INT64, 1, &cout, &bq);
    for (int64_t c = 0; st == HQ_OK && c < cout; c++) {
        const double clip = d->weight_clip_channels && d->weight_clip_channels[c] > 0
                                ? d->weight_clip_channels[c]
                                : layer_clip;
        double m = 0;
        for (int64_t i = c; i < wcount; i += cout) {
            double v = fabs((double)w[i]);
            if (v > clip)
                v = clip;
            if (v > m)
                m = v;
        }
        ks[c] = m > 0 ? (float)(m / wmax) : 1.0f;
        if (!(ks[c] > 0))
            ks[c] = 1e-30f;
        for (int64_t i = c; i < wcount; i += cout) {
            double v = (double)w[i];
            v = v > clip ? clip : v < -clip ? -clip : v;
            int32_t q = hqrt_clamp32(hqrt_round_double(v / (double)ks[c]), -wmax, wmax);
            if (wb == 16)
                ((int16_t *)kq)[i] = (int16_t)q;
            else
                ((int8_t *)kq)[i] = (int8_t)q;
        }
        acc_scale[c] = s_in * (double)ks[c];
        ((int64_t *)bq)[c] = bias ? hqrt_round_double((double)bias[c] / acc_scale[c]) : 0;
    }
    int32_t wbits = wb;
    if (st == HQ_OK)
        st = put_i32(b, layer, "weight_bits:0", &wbits, 1);
    if (st == HQ_OK)
        st = put_path(b, layer, wb);
    const bool addend = layer->params.elementwise_add && layer->input_count >= 2 &&
                        (layer->type == HQ_LAYER_CONV || layer->type == HQ_LAYER_DW);
    double stage_scale = 0;
    if (st == HQ_OK && addend) {
        /* the conv term and the addend term both land at stage scale * 2^8 */
        /* the stage keys (clamp, lut, negative slope) first; then the real multipliers replace
         * its ratio-1 output_multiplier */
        if (st == HQ_OK)
            st = build_stage(b, index, acc_scale, cout, cout, true, slope, slope_count,
                             &stage_scale);
        if (st == HQ_OK) {
            int32_t *m = calloc((size_t)cout * 2, sizeof *m);
            if (!m) {
                st = hqi_nomem(b->err, "quantized params");
            } else {
                for (int64_t c = 0; c < cout; c++)
                    hqi_quant_multiplier(acc_scale[c] / stage_scale * (1 << HQRT_SUM_FRAC_BITS),
                                         &m[c], &m[cout + c]);
                st = put_i32(b, layer, "output_multiplier:0", m, cout);
                if (st == HQ_OK)
                    st = put_i32(b, layer, "output_shift:0", m + cout, cout);
                int32_t am, ash;
                hqi_quant_multiplier((double)b->scale[layer->inputs[1]] / stage_scale *
                                         (1 << HQRT_SUM_FRAC_BITS),
                                     &am, &ash);
                if (st == HQ_OK)
                    st = put_i32(b, layer, "addend_multiplier:0", &am, 1);
                if (st == HQ_OK)
                    st = put_i32(b, layer, "addend_shift:0", &ash, 1);
                free(m);
            }
        }
    } else if (st == HQ_OK) {
        st = build_stage(b, index, acc_scale, cout, cout, false, slope, slope_count, &stage_scale);
    }
    free(acc_scale);
    return st;
}

static hq_status_t get_slope(builder_t *b, const hq_layer_t *layer, float **slope, int64_t *count)
{
    *slope = NULL;
    *count = 0;
    if (layer->params.activation != HQ_ACT_PRELU)
        return HQ_OK;
    return get_float(b, layer, "prelu_slope:0", slope, count);
}

static hq_status_t build_conv_like(builder_t *b, int index)
{
    const hq_layer_t *layer = hq_graph_layer(b->graph, index);
    const hq_layer_params_t *p = &layer->params;
    float *w = NULL, *bias = NULL, *slope = NULL;
    int64_t wcount = 0, bcount = 0, scount = 0;
    hq_status_t st = get_float(b, layer, "kernel:0", &w, &wcount);
    if (st == HQ_OK && p->has_bias)
        st = get_float(b, layer, "bias:0", &bias, &bcount);
    if (st == HQ_OK)
        st = get_slope(b, layer, &slope, &scount);
    int64_t cout = p->kernel_out;
    if (st == HQ_OK && bias && bcount != cout)
        st = hqi_error(b->err, HQ_ERR_INVALID, "layer '%s': bias has %lld values, need %lld",
                       layer->name, (long long)bcount, (long long)cout);
    int64_t shape4[4] = {p->kernel_h, p->kernel_w, p->kernel_in, p->kernel_out};
    int64_t shape2[2] = {p->kernel_in, p->kernel_out};
    bool dense = layer->type == HQ_LAYER_DENSE;
    if (st == HQ_OK &&
        wcount != (dense ? shape2[0] * shape2[1] : shape4[0] * shape4[1] * shape4[2] * shape4[3]))
        st = hqi_error(b->err, HQ_ERR_INVALID, "layer '%s': kernel has %lld values", layer->name,
                       (long long)wcount);
    if (st == HQ_OK)
        st = build_weighted(b, index, w, wcount, dense ? 2 : 4, dense ? shape2 : shape4, bias, cout,
                            slope, scount, b->scale[layer->inputs[0]]);
    free(w);
    free(bias);
    free(slope);
    return st;
}

/* batch_norm and normalization: a per-channel affine y = a[c] x + k[c], built as a 1x1
 * depthwise conv whose kernel is a[c] (so |a| quantizes to exactly +-(2^(b-1)-1)). */
static hq_status_t build_affine(builder_t *b, int index)
{
    const hq_layer_t *layer = hq_graph_layer(b->graph, index);
    const hq_layer_params_t *p = &layer->params;
    const hq_shape_t *os = &layer->output_shape;
    int64_t C = os->dims[os->ndim - 1];
    float *a = calloc((size_t)C, sizeof *a), *k = calloc((size_t)C, sizeof *k);
    float *g = NULL, *be = NULL, *mu = NULL, *var = NULL, *slope = NULL;
    int64_t n1 = 0, n2 = 0, n3 = 0, n4 = 0, scount = 0;
    hq_status_t st = a && k ? HQ_OK : hqi_nomem(b->err, "quantized params");
    if (st == HQ_OK && layer->type == HQ_LAYER_BATCH_NORM) {
        if ((st = get_float(b, layer, "gamma:0", &g, &n1)) == HQ_OK &&
            (st = get_float(b, layer, "beta:0", &be, &n2)) == HQ_OK &&
            (st = get_float(b, layer, "moving_mean:0", &mu, &n3)) == HQ_OK)
            st = get_float(b, layer, "moving_variance:0", &var, &n4);
        if (st == HQ_OK && (n1 != C || n2 != C || n3 != C || n4 != C))
            st = hqi_error(b->err, HQ_ERR_INVALID, "layer '%s': batch norm params need %lld values",
                           layer->name, (long long)C);
        for (int64_t c = 0; st == HQ_OK && c < C; c++) {
            double sc = (double)g[c] / sqrt((double)var[c] + (double)p->epsilon);
            a[c] = (float)sc;
            k[c] = (float)((double)be[c] - (double)mu[c] * sc);
        }
    } else if (st == HQ_OK) {
        if (p->channels != 1 && p->channels != C)
            st = hqi_error(b->err, HQ_ERR_INVALID,
                           "layer '%s': normalization has %d channels, "
                           "the tensor %lld",
                           layer->name, p->channels, (long long)C);
        for (int64_t c = 0; st == HQ_OK && c < C; c++) {
            double sd = p->std[p->channels == 1 ? 0 : c], m = p->mean[p->channels == 1 ? 0 : c];
            a[c] = (float)(1.0 / sd);
            k[c] = (float)(-m / sd);
        }
    }
    if (st == HQ_OK)
        st = get_slope(b, layer, &slope, &scount);
    int64_t shape[4] = {1, 1, 1, C};
    if (st == HQ_OK)
        st = build_weighted(b, index, a, C, 4, shape, k, C, slope, scount,
                            b->scale[layer->inputs[0]]);
    free(a);
    free(k);
    free(g);
    free(be);
    free(mu);
    free(var);
    free(slope);
    return st;
}

/* layer_norm: the integer layer normalization of docs/numerics.md. The normalized value t is in
 * Q16 (scale 2^-16), gamma quantizes per channel to exactly +-W (its magnitude goes into the
 * channel's multiplier), beta is the bias in the accumulator scale 2^-16 * kernel_scale_c, and
 * epsilon becomes epsilon_term = round(epsilon * C^2 / scale_in^2), the unit of C * S2 - S1^2. */
static hq_status_t build_layer_norm(builder_t *b, int index)
{
    const hq_layer_t *layer = hq_graph_layer(b->graph, index);
    const hq_shape_t *os = &layer->output_shape;
    int64_t C = os->dims[os->ndim - 1], n1 = 0, n2 = 0;
    float *g = NULL, *be = NULL;
    hq_status_t st = get_float(b, layer, "gamma:0", &g, &n1);
    if (st == HQ_OK)
        st = get_float(b, layer, "beta:0", &be, &n2);
    if (st == HQ_OK && (n1 != C || n2 != C))
        st = hqi_error(b->err, HQ_ERR_INVALID, "layer '%s': layer_norm params need %lld values",
                       layer->name, (long long)C);
    if (st == HQ_OK && C > HQRT_NORM_MAX_CHANNELS)
        st = hqi_error(b->err, HQ_ERR_UNSUPPORTED,
                       "layer '%s': layer_norm over %lld channels; the integer form takes at most "
                       "%d",
                       layer->name, (long long)C, HQRT_NORM_MAX_CHANNELS);
    int64_t shape[1] = {C};
    if (st == HQ_OK)
        st = build_weighted(b, index, g, C, 1, shape, be, C, NULL, 0,
                            ldexp(1.0, -HQRT_NORM_FRAC_BITS));
    if (st == HQ_OK) {
        double s_in = b->scale[layer->inputs[0]];
        double e = (double)layer->params.epsilon * (double)C * (double)C / (s_in * s_in);
        double limit = (double)HQRT_NORM_EPSILON_MAX;
        int64_t term = !(e >= 1.0) ? 1 : e >= limit ? HQRT_NORM_EPSILON_MAX : hqrt_round_double(e);
        int64_t one = 1;
        void *data;
        if ((st = put(b, layer, "epsilon_term:0", HQ_DTYPE_INT64, 1, &one, &data)) == HQ_OK)
            *(int64_t *)data = term;
    }
    free(g);
    free(be);
    return st;
}

/* ---- other arithmetic layers -------------------------------------------------------------------
 */

static hq_status_t build_ew(builder_t *b, int index)
{
    const hq_layer_t *layer = hq_graph_layer(b->graph, index);
    if (layer->input_count != 2)
        return hqi_error(b->err, HQ_ERR_INVALID, "layer '%s': needs 2 inputs", layer->name);
    const double sa = b->scale[layer->inputs[0]], sb = b->scale[layer->inputs[1]];
    float *slope = NULL;
    int64_t scount = 0;
    hq_status_t st = get_slope(b, layer, &slope, &scount);
    const hq_shape_t *os = &layer->output_shape;
    int64_t C = os->dims[os->ndim - 1];
    double stage = 0;
    if (st == HQ_OK)
        st = put_path(b, layer, 0);
    if (st == HQ_OK && layer->type == HQ_LAYER_EW_MULT) {
        double acc = sa * sb;
        st = build_stage(b, index, &acc, 1, C, false, slope, scount, &stage);
    } else if (st == HQ_OK) {
        double one = 1.0;
        st = build_stage(b, index, &one, 1, C, true, slope, scount, &stage);
        int32_t m[2], s[2];
        hqi_quant_multiplier(sa / stage * (1 << HQRT_SUM_FRAC_BITS), &m[0], &s[0]);
        double rb = sb / stage * (1 << HQRT_SUM_FRAC_BITS);
        hqi_quant_multiplier(layer->type == HQ_LAYER_EW_SUB ? -rb : rb, &m[1], &s[1]);
        if (st == HQ_OK)
            st = put_i32(b, layer, "input_multiplier:0", m, 2);
        if (st == HQ_OK)
            st = put_i32(b, layer, "input_shift:0", s, 2);
    }
    free(slope);
    return st;
}

static hq_status_t build_pool(builder_t *b, int index)
{
    const hq_layer_t *layer = hq_graph_layer(b->graph, index);
    const hq_layer_params_t *p = &layer->params;
    const double s_in = b->scale[layer->inputs[0]], s_out = b->scale[index];
    int64_t n = 1, hw = 1;
    if (layer->type == HQ_LAYER_AVGPOOL) {
        n = (int64_t)p->kernel_h * p->kernel_w;
    } else {
        const hq_shape_t *is = &layer->input_shapes[0];
        hw = is->ndim == 4 ? is->dims[1] * is->dims[2] : 1;
    }
    if (p->activation != HQ_ACT_LINEAR && p->activation != HQ_ACT_RELU)
        return hqi_error(b->err, HQ_ERR_UNSUPPORTED, "layer '%s': pool with activation '%s'",
                         layer->name, hq_activation_name(p->activation));
    int32_t *m = calloc((size_t)n * 2, sizeof *m);
    if (!m)
        return hqi_nomem(b->err, "quantized params");
    for (int64_t k = 0; k < n; k++)
        hqi_quant_multiplier(
            s_in / (s_out * (double)(n > 1 || layer->type == HQ_LAYER_AVGPOOL ? (k + 1) : hw)),
            &m[k], &m[n + k]);
    int32_t clamp[2] = {p->activation == HQ_ACT_RELU ? b->zp[index] : 0,
                        hqrt_code_max(b->bits[index])};
    hq_status_t st = put_i32(b, layer, "output_multiplier:0", m, n);
    if (st == HQ_OK)
        st = put_i32(b, layer, "output_shift:0", m + n, n);
    if (st == HQ_OK)
        st = put_i32(b, layer, "act_clamp:0", clamp, 2);
    if (st == HQ_OK)
        st = put_path(b, layer, 0);
    free(m);
    return st;
}

static hq_status_t build_activation(builder_t *b, int index)
{
    const hq_layer_t *layer = hq_graph_layer(b->graph, index);
    const hq_layer_params_t *p = &layer->params;
    const int in = layer->inputs[0];
    if (act_uses_lut(p->activation)) {
        /* a table indexed by the input code itself: no arithmetic at run time */
        int64_t n = (int64_t)hqrt_code_max(b->bits[in]) + 1;
        const int ob = b->bits[index];
        void *lut;
        hq_status_t st =
            put(b, layer, "lut:0", ob == 16 ? HQ_DTYPE_UINT16 : HQ_DTYPE_UINT8, 1, &n, &lut);
        hqi_ref_act_t fa = {p->activation, p->activation_alpha, p->activation_beta, NULL, 0};
        for (int64_t i = 0; st == HQ_OK && i < n; i++) {
            float x = (float)((double)(i - b->zp[in]) * (double)b->scale[in]);
            double y = (double)hqi_ref_activate(&fa, x, 0);
            hqrt_store(lut, ob, (size_t)i,
                       hqrt_clamp32(b->zp[index] + hqrt_round_double(y / b->scale[index]), 0,
                                    hqrt_code_max(ob)));
        }
        return st;
    }
    float *slope = NULL;
    int64_t scount = 0;
    hq_status_t st = get_slope(b, layer, &slope, &scount);
    const hq_shape_t *os = &layer->output_shape;
    double acc = b->scale[in], stage;
    if (st == HQ_OK)
        st = put_path(b, layer, 0);
    if (st == HQ_OK)
        st = build_stage(b, index, &acc, 1, os->dims[os->ndim - 1], false, slope, scount, &stage);
    free(slope);
    return st;
}

static hq_status_t build_const(builder_t *b, int index)
{
    const hq_layer_t *layer = hq_graph_layer(b->graph, index);
    float *v = NULL;
    int64_t n = 0;
    hq_status_t st = get_float(b, layer, "const:0", &v, &n);
    void *codes;
    const int bits = b->bits[index];
    if (st == HQ_OK)
        st = put(b, layer, "const:0", bits == 16 ? HQ_DTYPE_UINT16 : HQ_DTYPE_UINT8, 1, &n, &codes);
    for (int64_t i = 0; st == HQ_OK && i < n; i++)
        hqrt_store(codes, bits, (size_t)i,
                   hqrt_quantize_value(v[i], b->scale[index], b->zp[index], bits));
    free(v);
    return st;
}

static hq_status_t build_pad(builder_t *b, int index)
{
    const hq_layer_t *layer = hq_graph_layer(b->graph, index);
    int32_t code =
        hqrt_quantize_value(layer->params.pad_value, b->scale[index], b->zp[index], b->bits[index]);
    return put_i32(b, layer, "pad_code:0", &code, 1);
}

/* softmax: an exp table indexed by max - q (Q30) and one output multiplier for the Q31
 * probability (docs/numerics.md). */
static hq_status_t build_softmax(builder_t *b, int index)
{
    const hq_layer_t *layer = hq_graph_layer(b->graph, index);
    const int in = layer->inputs[0];
    int64_t n = (int64_t)hqrt_code_max(b->bits[in]) + 1;
    void *lut;
    hq_status_t st = put(b, layer, "lut:0", HQ_DTYPE_INT32, 1, &n, &lut);
    for (int64_t d = 0; st == HQ_OK && d < n; d++)
        ((int32_t *)lut)[d] =
            (int32_t)hqrt_round_double(exp(-(double)d * (double)b->scale[in]) * 1073741824.0);
    int32_t m, s, path = HQRT_PATH_WIDE;
    hqi_quant_multiplier(ldexp(1.0, -31) / (double)b->scale[index], &m, &s);
    int32_t clamp[2] = {0, hqrt_code_max(b->bits[index])};
    if (st == HQ_OK)
        st = put_i32(b, layer, "output_multiplier:0", &m, 1);
    if (st == HQ_OK)
        st = put_i32(b, layer, "output_shift:0", &s, 1);
    if (st == HQ_OK)
        st = put_i32(b, layer, "act_clamp:0", clamp, 2);
    if (st == HQ_OK)
        st = put_i32(b, layer, "requant_path:0", &path, 1);
    return st;
}

typedef hq_status_t (*build_fn)(builder_t *b, int index);

static const build_fn builders[HQ_LAYER_TYPE_COUNT] = {
    [HQ_LAYER_CONV] = build_conv_like,
    [HQ_LAYER_DW] = build_conv_like,
    [HQ_LAYER_DECONV] = build_conv_like,
    [HQ_LAYER_DENSE] = build_conv_like,
    [HQ_LAYER_BATCH_NORM] = build_affine,
    [HQ_LAYER_NORMALIZATION] = build_affine,
    [HQ_LAYER_EW_ADD] = build_ew,
    [HQ_LAYER_EW_SUB] = build_ew,
    [HQ_LAYER_EW_MULT] = build_ew,
    [HQ_LAYER_EW_MAX] = build_ew,
    [HQ_LAYER_EW_MIN] = build_ew,
    [HQ_LAYER_AVGPOOL] = build_pool,
    [HQ_LAYER_GLOBAL_AVG_POOL] = build_pool,
    [HQ_LAYER_ACTIVATION] = build_activation,
    [HQ_LAYER_CONST_INPUT] = build_const,
    [HQ_LAYER_SOFTMAX] = build_softmax,
    [HQ_LAYER_PAD] = build_pad,
    [HQ_LAYER_LAYER_NORM] = build_layer_norm,
};

/* The output encoding of a layer: its decision, or its input's for pass-through types. */
static hq_status_t choose_qp(builder_t *b, int index)
{
    const hq_layer_t *layer = hq_graph_layer(b->graph, index);
    const hqi_layer_quant_t *d = &b->decisions[index];
    if (hqi_qmodel_keeps_encoding(layer->type) && layer->input_count >= 1) {
        int first = layer->inputs[0];
        b->scale[index] = b->scale[first];
        b->zp[index] = b->zp[first];
        b->bits[index] = b->bits[first];
        for (int k = 1; k < layer->input_count; k++) {
            int o = layer->inputs[k];
            if (b->scale[o] != b->scale[first] || b->zp[o] != b->zp[first] ||
                b->bits[o] != b->bits[first])
                return hqi_error(
                    b->err, HQ_ERR_INVALID,
                    "layer '%s': input '%s' (scale %g, zp %d, %d bits) and input '%s' (scale %g, "
                    "zp %d, %d bits) must share one encoding",
                    layer->name, hq_graph_layer(b->graph, first)->name, (double)b->scale[first],
                    b->zp[first], b->bits[first], hq_graph_layer(b->graph, o)->name,
                    (double)b->scale[o], b->zp[o], b->bits[o]);
        }
        return HQ_OK;
    }
    int bits = d->output_bits ? d->output_bits : 8;
    if (bits != 8 && bits != 16)
        return hqi_error(b->err, HQ_ERR_INVALID, "layer '%s': output_bits %d, need 8 or 16",
                         layer->name, bits);
    b->bits[index] = bits;
    if (layer->type == HQ_LAYER_ARGMAX) {
        b->scale[index] = 1.0f; /* the code is the index */
        b->zp[index] = 0;
        return HQ_OK;
    }
    if (!isfinite(d->out_min) || !isfinite(d->out_max) || d->out_min > d->out_max)
        return hqi_error(b->err, HQ_ERR_INVALID, "layer '%s': output range [%g, %g] is invalid",
                         layer->name, (double)d->out_min, (double)d->out_max);
    hqi_quant_activation_qp(d->out_min, d->out_max, bits, &b->scale[index], &b->zp[index]);
    return HQ_OK;
}

hq_status_t hqi_quant_build_params(const hq_graph_t *graph, const hq_npz_t *fpo_params,
                                   const hqi_layer_quant_t *decisions, hq_npz_t **out,
                                   hq_error_t *err)
{
    if (!out)
        return hqi_error(err, HQ_ERR_ARGUMENT, "quantize: out is NULL");
    *out = NULL;
    if (!graph || !hq_graph_is_finalized(graph) || !decisions)
        return hqi_error(err, HQ_ERR_ARGUMENT, "quantize: graph or decisions missing");
    const int count = hq_graph_layer_count(graph);
    builder_t b = {graph, fpo_params, decisions, NULL, NULL, NULL, NULL, err};
    b.scale = calloc((size_t)count + 1, sizeof *b.scale);
    b.zp = calloc((size_t)count + 1, sizeof *b.zp);
    b.bits = calloc((size_t)count + 1, sizeof *b.bits);
    hq_status_t st = b.scale && b.zp && b.bits ? HQ_OK : hqi_nomem(err, "quantized params");
    if (st == HQ_OK)
        st = hq_npz_create(&b.out, err);
    int order_count = 0;
    const int *order = hq_graph_topo_order(graph, &order_count);
    for (int t = 0; t < order_count && st == HQ_OK; t++) {
        const int i = order[t];
        const hq_layer_t *layer = hq_graph_layer(graph, i);
        st = choose_qp(&b, i);
        int32_t bits = b.bits[i];
        if (st == HQ_OK)
            st = put_f32(&b, layer, "qp_scale:0", &b.scale[i], 1);
        if (st == HQ_OK)
            st = put_i32(&b, layer, "qp_zp:0", &b.zp[i], 1);
        if (st == HQ_OK)
            st = put_i32(&b, layer, "activation_bits:0", &bits, 1);
        if (st == HQ_OK && builders[layer->type])
            st = builders[layer->type](&b, i);
    }
    free(b.scale);
    free(b.zp);
    free(b.bits);
    if (st != HQ_OK) {
        hq_npz_destroy(b.out);
        return st;
    }
    *out = b.out;
    return HQ_OK;
}
