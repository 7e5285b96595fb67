/* hqrt_kernels_ref.c — the scalar integer reference kernels (see hqrt_kernels_ref.h and
 * docs/numerics.md). Plain C11, no allocation, no float math: compiled unchanged into libhq
 * (quantized emulation) and libhqrt (deploy runtime). */
#include <string.h>

#include "hqrt_kernels_ref.h"

/* ---- helpers ----------------------------------------------------------------------------- */

static int bits_ok(int32_t bits)
{
    return bits == 8 || bits == 16;
}

static int dims_ok(hqrt_dims_t d)
{
    return d.n >= 1 && d.h >= 1 && d.w >= 1 && d.c >= 1;
}

static int shape_ok(const hqrt_shape_t *s)
{
    if (!s || s->ndim < 1 || s->ndim > HQRT_MAX_DIMS)
        return 0;
    for (int i = 0; i < s->ndim; i++)
        if (s->dims[i] < 1)
            return 0;
    return 1;
}

static int64_t shape_count(const hqrt_shape_t *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++)
        n *= s->dims[i];
    return n;
}

static size_t elem_size(int32_t bits)
{
    return bits == 16 ? 2u : 1u;
}

static int32_t load_weight(const void *w, int32_t bits, size_t index)
{
    return bits == 16 ? (int32_t)((const int16_t *)w)[index] : (int32_t)((const int8_t *)w)[index];
}

int hqrt_output_stage_check(const hqrt_output_stage_t *s, int32_t channels)
{
    if (!s || !bits_ok(s->out_bits) || !s->multiplier || !s->shift)
        return HQRT_KERNEL_ERR_ARGUMENT;
    if (s->count != 1 && s->count != channels)
        return HQRT_KERNEL_ERR_ARGUMENT;
    if ((s->multiplier_neg == NULL) != (s->shift_neg == NULL))
        return HQRT_KERNEL_ERR_ARGUMENT;
    if (s->path != HQRT_PATH_GEMMLOWP && s->path != HQRT_PATH_WIDE)
        return HQRT_KERNEL_ERR_ARGUMENT;
    int32_t max = hqrt_code_max(s->out_bits);
    if (s->out_zp < 0 || s->out_zp > max || s->act_min < 0 || s->act_min > s->act_max ||
        s->act_max > max || s->pre_zp < 0 || s->pre_zp > max)
        return HQRT_KERNEL_ERR_ARGUMENT;
    for (int32_t i = 0; i < s->count; i++)
        if (s->shift[i] < -31 || s->shift[i] > 30 ||
            (s->shift_neg && (s->shift_neg[i] < -31 || s->shift_neg[i] > 30)))
            return HQRT_KERNEL_ERR_ARGUMENT;
    return HQRT_KERNEL_OK;
}

static int32_t finish(const hqrt_output_stage_t *s, int64_t y)
{
    int64_t code;
    if (s->lut) {
        int32_t pre = (int32_t)hqrt_clamp64(y + s->pre_zp, 0, hqrt_code_max(s->out_bits));
        code = hqrt_load(s->lut, s->out_bits, (size_t)pre);
    } else {
        code = y + s->out_zp;
    }
    return (int32_t)hqrt_clamp64(code, s->act_min, s->act_max);
}

int32_t hqrt_output_code(const hqrt_output_stage_t *s, int64_t acc, int32_t channel)
{
    int32_t i = s->count == 1 ? 0 : channel;
    int64_t y;
    if (acc < 0 && s->multiplier_neg)
        y = hqrt_requantize(acc, s->multiplier_neg[i], s->shift_neg[i], s->path);
    else
        y = hqrt_requantize(acc, s->multiplier[i], s->shift[i], s->path);
    return finish(s, y);
}

int32_t hqrt_output_code_sum(const hqrt_output_stage_t *s, int64_t z, int32_t channel)
{
    int32_t i = s->count == 1 ? 0 : channel;
    if (z < 0 && s->multiplier_neg)
        z = hqrt_requantize(z, s->multiplier_neg[i], s->shift_neg[i], s->path);
    return finish(s, hqrt_rounding_divide_by_pot64(z, HQRT_SUM_FRAC_BITS));
}

/* ---- convolution family ------------------------------------------------------------------- */

static int conv_check(const hqrt_conv_params_t *p, hqrt_dims_t in, const void *input,
                      const void *weights, hqrt_dims_t out, const void *output)
{
    if (!p || !input || !weights || !output || !dims_ok(in) || !dims_ok(out))
        return HQRT_KERNEL_ERR_ARGUMENT;
    if (p->kernel_h < 1 || p->kernel_w < 1 || p->stride_h < 1 || p->stride_w < 1 ||
        p->dilation_h < 1 || p->dilation_w < 1 || p->pad_top < 0 || p->pad_left < 0 ||
        p->pad_bottom < 0 || p->pad_right < 0 || p->groups < 1 || in.c % p->groups ||
        out.c % p->groups || in.n != out.n)
        return HQRT_KERNEL_ERR_ARGUMENT;
    if (!bits_ok(p->in_bits) || p->in_zp < 0 || p->in_zp > hqrt_code_max(p->in_bits))
        return HQRT_KERNEL_ERR_ARGUMENT;
    if (p->weight_bits != 4 && p->weight_bits != 8 && p->weight_bits != 16)
        return HQRT_KERNEL_ERR_ARGUMENT;
    return hqrt_output_stage_check(&p->out, out.c);
}

size_t hqrt_conv2d_get_buffer_size(const hqrt_conv_params_t *params, hqrt_dims_t in)
{
    (void)params;
    (void)in;
    return 0;
}

int hqrt_conv2d(const hqrt_conv_params_t *p, hqrt_dims_t in, const void *input, const void *weights,
                const int64_t *bias, const hqrt_addend_t *addend, hqrt_dims_t out, void *output,
                void *scratch)
{
    (void)scratch;
    if (conv_check(p, in, input, weights, out, output) != HQRT_KERNEL_OK)
        return HQRT_KERNEL_ERR_ARGUMENT;
    int64_t eff_h = (int64_t)p->dilation_h * (p->kernel_h - 1) + 1;
    int64_t eff_w = (int64_t)p->dilation_w * (p->kernel_w - 1) + 1;
    if ((in.h + p->pad_top + p->pad_bottom - eff_h) < 0 ||
        (in.w + p->pad_left + p->pad_right - eff_w) < 0 ||
        out.h != (in.h + p->pad_top + p->pad_bottom - eff_h) / p->stride_h + 1 ||
        out.w != (in.w + p->pad_left + p->pad_right - eff_w) / p->stride_w + 1)
        return HQRT_KERNEL_ERR_ARGUMENT;
    if (addend &&
        (!addend->data || !bits_ok(addend->bits) || addend->zp < 0 ||
         addend->zp > hqrt_code_max(addend->bits) || addend->shift < -31 || addend->shift > 30))
        return HQRT_KERNEL_ERR_ARGUMENT;
    const int32_t cpg = in.c / p->groups, opg = out.c / p->groups;
    for (int32_t n = 0; n < out.n; n++)
        for (int32_t oh = 0; oh < out.h; oh++)
            for (int32_t ow = 0; ow < out.w; ow++)
                for (int32_t o = 0; o < out.c; o++) {
                    const int32_t g = o / opg;
                    int64_t acc = bias ? hqrt_clamp64(bias[o], -HQRT_ACC_LIMIT, HQRT_ACC_LIMIT) : 0;
                    for (int32_t ky = 0; ky < p->kernel_h; ky++) {
                        int64_t y =
                            (int64_t)oh * p->stride_h - p->pad_top + (int64_t)ky * p->dilation_h;
                        if (y < 0 || y >= in.h)
                            continue;
                        for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                            int64_t x = (int64_t)ow * p->stride_w - p->pad_left +
                                        (int64_t)kx * p->dilation_w;
                            if (x < 0 || x >= in.w)
                                continue;
                            size_t base = (size_t)((((int64_t)n * in.h + y) * in.w + x) * in.c +
                                                   (int64_t)g * cpg);
                            size_t wbase =
                                (size_t)((((int64_t)ky * p->kernel_w + kx) * cpg) * out.c + o);
                            for (int32_t i = 0; i < cpg; i++) {
                                int32_t q =
                                    hqrt_load(input, p->in_bits, base + (size_t)i) - p->in_zp;
                                int32_t w = load_weight(weights, p->weight_bits,
                                                        wbase + (size_t)i * (size_t)out.c);
                                acc += (int64_t)q * w;
                            }
                        }
                    }
                    size_t oi = (size_t)((((int64_t)n * out.h + oh) * out.w + ow) * out.c + o);
                    int32_t code;
                    if (addend) {
                        int64_t t1 =
                            hqrt_requantize(acc, p->out.multiplier[p->out.count == 1 ? 0 : o],
                                            p->out.shift[p->out.count == 1 ? 0 : o], p->out.path);
                        int64_t t2 =
                            hqrt_requantize(hqrt_load(addend->data, addend->bits, oi) - addend->zp,
                                            addend->multiplier, addend->shift, p->out.path);
                        code = hqrt_output_code_sum(&p->out, hqrt_add_sat(t1, t2), o);
                    } else {
                        code = hqrt_output_code(&p->out, acc, o);
                    }
                    hqrt_store(output, p->out.out_bits, oi, code);
                }
    return HQRT_KERNEL_OK;
}

size_t hqrt_deconv2d_get_buffer_size(const hqrt_conv_params_t *params, hqrt_dims_t in)
{
    (void)params;
    (void)in;
    return 0;
}

int hqrt_deconv2d_check(const hqrt_conv_params_t *p, hqrt_dims_t in, const void *input,
                        const void *weights, hqrt_dims_t out, const void *output)
{
    if (conv_check(p, in, input, weights, out, output) != HQRT_KERNEL_OK)
        return HQRT_KERNEL_ERR_ARGUMENT;
    if (p->output_pad_h < 0 || p->output_pad_w < 0)
        return HQRT_KERNEL_ERR_ARGUMENT;
    int64_t full_h = ((int64_t)in.h - 1) * p->stride_h +
                     (int64_t)p->dilation_h * (p->kernel_h - 1) + 1 + p->output_pad_h;
    int64_t full_w = ((int64_t)in.w - 1) * p->stride_w +
                     (int64_t)p->dilation_w * (p->kernel_w - 1) + 1 + p->output_pad_w;
    if (out.h != full_h - p->pad_top - p->pad_bottom ||
        out.w != full_w - p->pad_left - p->pad_right)
        return HQRT_KERNEL_ERR_ARGUMENT;
    return HQRT_KERNEL_OK;
}

int hqrt_deconv2d(const hqrt_conv_params_t *p, hqrt_dims_t in, const void *input,
                  const void *weights, const int64_t *bias, hqrt_dims_t out, void *output,
                  void *scratch)
{
    (void)scratch;
    if (hqrt_deconv2d_check(p, in, input, weights, out, output) != HQRT_KERNEL_OK)
        return HQRT_KERNEL_ERR_ARGUMENT;
    const int32_t cpg = in.c / p->groups, opg = out.c / p->groups;
    for (int32_t n = 0; n < out.n; n++)
        for (int32_t oh = 0; oh < out.h; oh++)
            for (int32_t ow = 0; ow < out.w; ow++)
                for (int32_t o = 0; o < out.c; o++) {
                    const int32_t g = o / opg;
                    int64_t acc = bias ? hqrt_clamp64(bias[o], -HQRT_ACC_LIMIT, HQRT_ACC_LIMIT) : 0;
                    const int64_t fy = (int64_t)oh + p->pad_top, fx = (int64_t)ow + p->pad_left;
                    for (int32_t ky = 0; ky < p->kernel_h; ky++) {
                        int64_t ty = fy - (int64_t)ky * p->dilation_h;
                        if (ty < 0 || ty % p->stride_h)
                            continue;
                        int64_t ih = ty / p->stride_h;
                        if (ih >= in.h)
                            continue;
                        for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                            int64_t tx = fx - (int64_t)kx * p->dilation_w;
                            if (tx < 0 || tx % p->stride_w)
                                continue;
                            int64_t iw = tx / p->stride_w;
                            if (iw >= in.w)
                                continue;
                            size_t base = (size_t)((((int64_t)n * in.h + ih) * in.w + iw) * in.c +
                                                   (int64_t)g * cpg);
                            size_t wbase =
                                (size_t)((((int64_t)ky * p->kernel_w + kx) * cpg) * out.c + o);
                            for (int32_t i = 0; i < cpg; i++) {
                                int32_t q =
                                    hqrt_load(input, p->in_bits, base + (size_t)i) - p->in_zp;
                                acc += (int64_t)q * load_weight(weights, p->weight_bits,
                                                                wbase + (size_t)i * (size_t)out.c);
                            }
                        }
                    }
                    size_t oi = (size_t)((((int64_t)n * out.h + oh) * out.w + ow) * out.c + o);
                    hqrt_store(output, p->out.out_bits, oi, hqrt_output_code(&p->out, acc, o));
                }
    return HQRT_KERNEL_OK;
}

int hqrt_dense(const hqrt_conv_params_t *p, int32_t batch, int32_t cin, int32_t cout,
               const void *input, const void *weights, const int64_t *bias, void *output)
{
    if (!p || !input || !weights || !output || batch < 1 || cin < 1 || cout < 1)
        return HQRT_KERNEL_ERR_ARGUMENT;
    if (!bits_ok(p->in_bits) || p->in_zp < 0 || p->in_zp > hqrt_code_max(p->in_bits) ||
        (p->weight_bits != 4 && p->weight_bits != 8 && p->weight_bits != 16) ||
        hqrt_output_stage_check(&p->out, cout) != HQRT_KERNEL_OK)
        return HQRT_KERNEL_ERR_ARGUMENT;
    for (int32_t n = 0; n < batch; n++)
        for (int32_t o = 0; o < cout; o++) {
            int64_t acc = bias ? hqrt_clamp64(bias[o], -HQRT_ACC_LIMIT, HQRT_ACC_LIMIT) : 0;
            for (int32_t i = 0; i < cin; i++) {
                int32_t q =
                    hqrt_load(input, p->in_bits, (size_t)n * (size_t)cin + (size_t)i) - p->in_zp;
                acc += (int64_t)q *
                       load_weight(weights, p->weight_bits, (size_t)i * (size_t)cout + (size_t)o);
            }
            hqrt_store(output, p->out.out_bits, (size_t)n * (size_t)cout + (size_t)o,
                       hqrt_output_code(&p->out, acc, o));
        }
    return HQRT_KERNEL_OK;
}

/* ---- pooling ------------------------------------------------------------------------------ */

static int pool_check(const hqrt_pool_params_t *p, hqrt_dims_t in, const void *input,
                      hqrt_dims_t out, const void *output)
{
    if (!p || !input || !output || !dims_ok(in) || !dims_ok(out) || in.n != out.n || in.c != out.c)
        return HQRT_KERNEL_ERR_ARGUMENT;
    if (p->kernel_h < 1 || p->kernel_w < 1 || p->stride_h < 1 || p->stride_w < 1 ||
        p->dilation_h < 1 || p->dilation_w < 1 || p->pad_top < 0 || p->pad_left < 0 ||
        p->pad_bottom < 0 || p->pad_right < 0)
        return HQRT_KERNEL_ERR_ARGUMENT;
    if (!bits_ok(p->in_bits) || p->in_zp < 0 || p->in_zp > hqrt_code_max(p->in_bits))
        return HQRT_KERNEL_ERR_ARGUMENT;
    return HQRT_KERNEL_OK;
}

int hqrt_maxpool(const hqrt_pool_params_t *p, hqrt_dims_t in, const void *input, hqrt_dims_t out,
                 void *output)
{
    if (pool_check(p, in, input, out, output) != HQRT_KERNEL_OK)
        return HQRT_KERNEL_ERR_ARGUMENT;
    for (int32_t n = 0; n < out.n; n++)
        for (int32_t oh = 0; oh < out.h; oh++)
            for (int32_t ow = 0; ow < out.w; ow++)
                for (int32_t c = 0; c < out.c; c++) {
                    int32_t best = -1;
                    for (int32_t ky = 0; ky < p->kernel_h; ky++) {
                        int64_t y =
                            (int64_t)oh * p->stride_h - p->pad_top + (int64_t)ky * p->dilation_h;
                        if (y < 0 || y >= in.h)
                            continue;
                        for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                            int64_t x = (int64_t)ow * p->stride_w - p->pad_left +
                                        (int64_t)kx * p->dilation_w;
                            if (x < 0 || x >= in.w)
                                continue;
                            int32_t q = hqrt_load(
                                input, p->in_bits,
                                (size_t)((((int64_t)n * in.h + y) * in.w + x) * in.c + c));
                            if (q > best)
                                best = q;
                        }
                    }
                    hqrt_store(output, p->in_bits,
                               (size_t)((((int64_t)n * out.h + oh) * out.w + ow) * out.c + c),
                               best < 0 ? p->in_zp : best);
                }
    return HQRT_KERNEL_OK;
}

int hqrt_avgpool(const hqrt_pool_params_t *p, hqrt_dims_t in, const void *input, hqrt_dims_t out,
                 void *output)
{
    if (pool_check(p, in, input, out, output) != HQRT_KERNEL_OK || p->dilation_h != 1 ||
        p->dilation_w != 1 ||
        hqrt_output_stage_check(&p->out, p->kernel_h * p->kernel_w) != HQRT_KERNEL_OK ||
        p->out.count != p->kernel_h * p->kernel_w)
        return HQRT_KERNEL_ERR_ARGUMENT;
    for (int32_t n = 0; n < out.n; n++)
        for (int32_t oh = 0; oh < out.h; oh++)
            for (int32_t ow = 0; ow < out.w; ow++)
                for (int32_t c = 0; c < out.c; c++) {
                    int64_t acc = 0;
                    int32_t counted = 0;
                    for (int32_t ky = 0; ky < p->kernel_h; ky++) {
                        int64_t y = (int64_t)oh * p->stride_h - p->pad_top + ky;
                        if (y < -p->pad_top || y >= (int64_t)in.h + p->pad_bottom)
                            continue;
                        for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                            int64_t x = (int64_t)ow * p->stride_w - p->pad_left + kx;
                            if (x < -p->pad_left || x >= (int64_t)in.w + p->pad_right)
                                continue;
                            int inside = y >= 0 && y < in.h && x >= 0 && x < in.w;
                            if (inside) {
                                acc +=
                                    hqrt_load(
                                        input, p->in_bits,
                                        (size_t)((((int64_t)n * in.h + y) * in.w + x) * in.c + c)) -
                                    p->in_zp;
                                counted++;
                            } else if (p->count_include_pad) {
                                counted++;
                            }
                        }
                    }
                    size_t oi = (size_t)((((int64_t)n * out.h + oh) * out.w + ow) * out.c + c);
                    int32_t code =
                        counted ? hqrt_output_code(&p->out, acc, counted - 1)
                                : hqrt_clamp32(p->out.out_zp, p->out.act_min, p->out.act_max);
                    hqrt_store(output, p->out.out_bits, oi, code);
                }
    return HQRT_KERNEL_OK;
}

int hqrt_global_avg_pool(int32_t in_bits, int32_t in_zp, const hqrt_output_stage_t *out,
                         hqrt_dims_t in, const void *input, void *output)
{
    if (!input || !output || !dims_ok(in) || !bits_ok(in_bits) || in_zp < 0 ||
        in_zp > hqrt_code_max(in_bits) || hqrt_output_stage_check(out, 1) != HQRT_KERNEL_OK)
        return HQRT_KERNEL_ERR_ARGUMENT;
    for (int32_t n = 0; n < in.n; n++)
        for (int32_t c = 0; c < in.c; c++) {
            int64_t acc = 0;
            for (int64_t i = 0; i < (int64_t)in.h * in.w; i++)
                acc +=
                    hqrt_load(input, in_bits, (size_t)(((int64_t)n * in.h * in.w + i) * in.c + c)) -
                    in_zp;
            hqrt_store(output, out->out_bits, (size_t)((int64_t)n * in.c + c),
                       hqrt_output_code(out, acc, 0));
        }
    return HQRT_KERNEL_OK;
}

/* ---- elementwise ---------------------------------------------------------------------------- */

/* Offset into an operand broadcast to `out` of the element at out coordinate `coord`. */
static size_t broadcast_offset(const hqrt_shape_t *s, const hqrt_shape_t *out, const int32_t *coord)
{
    size_t off = 0;
    for (int d = 0; d < out->ndim; d++)
        off = off * (size_t)s->dims[d] + (size_t)(s->dims[d] == 1 ? 0 : coord[d]);
    return off;
}

int hqrt_elementwise_check(const hqrt_ew_params_t *p, const hqrt_shape_t *as, const void *a,
                           const hqrt_shape_t *bs, const void *b, const hqrt_shape_t *os,
                           const void *output)
{
    if (!p || !a || !b || !output || !shape_ok(as) || !shape_ok(bs) || !shape_ok(os) ||
        as->ndim != os->ndim || bs->ndim != os->ndim)
        return HQRT_KERNEL_ERR_ARGUMENT;
    for (int d = 0; d < os->ndim; d++)
        if ((as->dims[d] != os->dims[d] && as->dims[d] != 1) ||
            (bs->dims[d] != os->dims[d] && bs->dims[d] != 1) ||
            (as->dims[d] != os->dims[d] && bs->dims[d] != os->dims[d]))
            return HQRT_KERNEL_ERR_ARGUMENT;
    if (p->op < HQRT_EW_ADD || p->op > HQRT_EW_MIN || !bits_ok(p->a_bits) || !bits_ok(p->b_bits) ||
        p->a_zp < 0 || p->a_zp > hqrt_code_max(p->a_bits) || p->b_zp < 0 ||
        p->b_zp > hqrt_code_max(p->b_bits) || p->a_shift < -31 || p->a_shift > 30 ||
        p->b_shift < -31 || p->b_shift > 30)
        return HQRT_KERNEL_ERR_ARGUMENT;
    const int32_t channels = os->dims[os->ndim - 1];
    return hqrt_output_stage_check(&p->out, channels);
}

int hqrt_elementwise(const hqrt_ew_params_t *p, const hqrt_shape_t *as, const void *a,
                     const hqrt_shape_t *bs, const void *b, const hqrt_shape_t *os, void *output)
{
    if (hqrt_elementwise_check(p, as, a, bs, b, os, output) != HQRT_KERNEL_OK)
        return HQRT_KERNEL_ERR_ARGUMENT;
    int32_t coord[HQRT_MAX_DIMS] = {0};
    const int64_t total = shape_count(os);
    for (int64_t i = 0; i < total; i++) {
        int32_t qa = hqrt_load(a, p->a_bits, broadcast_offset(as, os, coord)) - p->a_zp;
        int32_t qb = hqrt_load(b, p->b_bits, broadcast_offset(bs, os, coord)) - p->b_zp;
        int32_t ch = coord[os->ndim - 1];
        int32_t code;
        if (p->op == HQRT_EW_MULT) {
            code = hqrt_output_code(&p->out, (int64_t)qa * qb, ch);
        } else {
            int64_t ta = hqrt_requantize(qa, p->a_multiplier, p->a_shift, p->out.path);
            int64_t tb = hqrt_requantize(qb, p->b_multiplier, p->b_shift, p->out.path);
            int64_t z = p->op == HQRT_EW_ADD   ? hqrt_add_sat(ta, tb)
                        : p->op == HQRT_EW_MAX ? (ta > tb ? ta : tb)
                                               : (ta < tb ? ta : tb);
            code = hqrt_output_code_sum(&p->out, z, ch);
        }
        hqrt_store(output, p->out.out_bits, (size_t)i, code);
        for (int d = os->ndim - 1; d >= 0; d--) {
            if (++coord[d] < os->dims[d])
                break;
            coord[d] = 0;
        }
    }
    return HQRT_KERNEL_OK;
}

int hqrt_activation_check(int32_t in_bits, int32_t in_zp, const hqrt_output_stage_t *out,
                          int64_t rows, int32_t channels, const void *input, const void *output)
{
    if (!input || !output || rows < 1 || channels < 1 || !bits_ok(in_bits) || in_zp < 0 ||
        in_zp > hqrt_code_max(in_bits) || hqrt_output_stage_check(out, channels) != HQRT_KERNEL_OK)
        return HQRT_KERNEL_ERR_ARGUMENT;
    return HQRT_KERNEL_OK;
}

int hqrt_activation(int32_t in_bits, int32_t in_zp, const hqrt_output_stage_t *out, int64_t rows,
                    int32_t channels, const void *input, void *output)
{
    if (hqrt_activation_check(in_bits, in_zp, out, rows, channels, input, output) != HQRT_KERNEL_OK)
        return HQRT_KERNEL_ERR_ARGUMENT;
    for (int64_t r = 0; r < rows; r++)
        for (int32_t c = 0; c < channels; c++) {
            size_t i = (size_t)(r * channels + c);
            hqrt_store(output, out->out_bits, i,
                       hqrt_output_code(out, hqrt_load(input, in_bits, i) - in_zp, c));
        }
    return HQRT_KERNEL_OK;
}

int hqrt_lut(int32_t in_bits, const void *lut, int32_t out_bits, int64_t count, const void *input,
             void *output)
{
    if (!lut || !input || !output || count < 1 || !bits_ok(in_bits) || !bits_ok(out_bits))
        return HQRT_KERNEL_ERR_ARGUMENT;
    for (int64_t i = 0; i < count; i++)
        hqrt_store(output, out_bits, (size_t)i,
                   hqrt_load(lut, out_bits, (size_t)hqrt_load(input, in_bits, (size_t)i)));
    return HQRT_KERNEL_OK;
}

/* ---- data movement ------------------------------------------------------------------------ */

static void around_axis(const hqrt_shape_t *s, int axis, int64_t *outer, int64_t *inner)
{
    *outer = *inner = 1;
    for (int i = 0; i < axis; i++)
        *outer *= s->dims[i];
    for (int i = axis + 1; i < s->ndim; i++)
        *inner *= s->dims[i];
}

int hqrt_concat(int32_t bits, int32_t count, const hqrt_shape_t *in_shapes,
                const void *const *inputs, int32_t axis, const hqrt_shape_t *os, void *output)
{
    if (!bits_ok(bits) || count < 1 || !in_shapes || !inputs || !output || !shape_ok(os) ||
        axis < 0 || axis >= os->ndim)
        return HQRT_KERNEL_ERR_ARGUMENT;
    int64_t sum = 0;
    for (int32_t k = 0; k < count; k++) {
        const hqrt_shape_t *s = &in_shapes[k];
        if (!shape_ok(s) || s->ndim != os->ndim || !inputs[k])
            return HQRT_KERNEL_ERR_ARGUMENT;
        for (int d = 0; d < s->ndim; d++)
            if (d != axis && s->dims[d] != os->dims[d])
                return HQRT_KERNEL_ERR_ARGUMENT;
        sum += s->dims[axis];
    }
    if (sum != os->dims[axis])
        return HQRT_KERNEL_ERR_ARGUMENT;
    const size_t es = elem_size(bits);
    int64_t outer, inner;
    around_axis(os, axis, &outer, &inner);
    int64_t at = 0;
    for (int32_t k = 0; k < count; k++) {
        const size_t row = (size_t)(in_shapes[k].dims[axis] * inner) * es;
        for (int64_t o = 0; o < outer; o++)
            memcpy((char *)output +
                       ((size_t)(o * os->dims[axis] * inner) + (size_t)(at * inner)) * es,
                   (const char *)inputs[k] + (size_t)o * row, row);
        at += in_shapes[k].dims[axis];
    }
    return HQRT_KERNEL_OK;
}

int hqrt_split(int32_t bits, const hqrt_shape_t *is, const void *input, int32_t axis, int32_t count,
               const int32_t *sizes, void *const *outputs)
{
    if (!bits_ok(bits) || !shape_ok(is) || !input || axis < 0 || axis >= is->ndim || count < 1 ||
        !sizes || !outputs)
        return HQRT_KERNEL_ERR_ARGUMENT;
    int64_t sum = 0;
    for (int32_t k = 0; k < count; k++) {
        if (sizes[k] < 1 || !outputs[k])
            return HQRT_KERNEL_ERR_ARGUMENT;
        sum += sizes[k];
    }
    if (sum != is->dims[axis])
        return HQRT_KERNEL_ERR_ARGUMENT;
    const size_t es = elem_size(bits);
    int64_t outer, inner;
    around_axis(is, axis, &outer, &inner);
    int64_t at = 0;
    for (int32_t k = 0; k < count; k++) {
        const size_t row = (size_t)(sizes[k] * inner) * es;
        for (int64_t o = 0; o < outer; o++)
            memcpy((char *)outputs[k] + (size_t)o * row,
                   (const char *)input +
                       ((size_t)(o * is->dims[axis] * inner) + (size_t)(at * inner)) * es,
                   row);
        at += sizes[k];
    }
    return HQRT_KERNEL_OK;
}

static void copy_elem(void *dst, size_t di, const void *src, size_t si, size_t es)
{
    memcpy((char *)dst + di * es, (const char *)src + si * es, es);
}

int hqrt_slice(int32_t bits, const hqrt_slice_params_t *p, hqrt_dims_t in, const void *input,
               hqrt_dims_t out, void *output)
{
    if (!bits_ok(bits) || !p || !input || !output || !dims_ok(in) || !dims_ok(out) || in.n != out.n)
        return HQRT_KERNEL_ERR_ARGUMENT;
    const int32_t in_ext[3] = {in.h, in.w, in.c}, out_ext[3] = {out.h, out.w, out.c};
    for (int a = 0; a < 3; a++) {
        if (p->step[a] < 1 || p->begin[a] < 0 || p->end[a] > in_ext[a] || p->begin[a] >= p->end[a])
            return HQRT_KERNEL_ERR_ARGUMENT;
        if (out_ext[a] != (p->end[a] - p->begin[a] + p->step[a] - 1) / p->step[a])
            return HQRT_KERNEL_ERR_ARGUMENT;
    }
    const size_t es = elem_size(bits);
    size_t oi = 0;
    for (int32_t n = 0; n < out.n; n++)
        for (int32_t h = 0; h < out.h; h++)
            for (int32_t w = 0; w < out.w; w++)
                for (int32_t c = 0; c < out.c; c++) {
                    int64_t y = p->begin[0] + (int64_t)h * p->step[0];
                    int64_t x = p->begin[1] + (int64_t)w * p->step[1];
                    int64_t z = p->begin[2] + (int64_t)c * p->step[2];
                    copy_elem(output, oi++, input,
                              (size_t)((((int64_t)n * in.h + y) * in.w + x) * in.c + z), es);
                }
    return HQRT_KERNEL_OK;
}

/* Source index of padded position i (may be outside [0, extent)) for reflect/edge modes. */
static int64_t pad_source(int32_t mode, int64_t i, int64_t extent)
{
    if (mode == HQRT_PAD_EDGE)
        return i < 0 ? 0 : i >= extent ? extent - 1 : i;
    if (extent == 1)
        return 0;
    const int64_t period = 2 * (extent - 1);
    int64_t m = i % period;
    if (m < 0)
        m += period;
    return m < extent ? m : period - m;
}

int hqrt_pad(int32_t bits, const hqrt_pad_params_t *p, hqrt_dims_t in, const void *input,
             hqrt_dims_t out, void *output)
{
    if (!bits_ok(bits) || !p || !input || !output || !dims_ok(in) || !dims_ok(out) ||
        in.n != out.n || p->mode < HQRT_PAD_CONSTANT || p->mode > HQRT_PAD_EDGE ||
        p->value_code < 0 || p->value_code > hqrt_code_max(bits))
        return HQRT_KERNEL_ERR_ARGUMENT;
    const int32_t in_ext[3] = {in.h, in.w, in.c}, out_ext[3] = {out.h, out.w, out.c};
    for (int a = 0; a < 3; a++)
        if (p->before[a] < 0 || p->after[a] < 0 ||
            out_ext[a] != (int64_t)in_ext[a] + p->before[a] + p->after[a])
            return HQRT_KERNEL_ERR_ARGUMENT;
    const size_t es = elem_size(bits);
    size_t oi = 0;
    for (int32_t n = 0; n < out.n; n++)
        for (int32_t h = 0; h < out.h; h++)
            for (int32_t w = 0; w < out.w; w++)
                for (int32_t c = 0; c < out.c; c++, oi++) {
                    int64_t y = h - p->before[0], x = w - p->before[1], z = c - p->before[2];
                    int outside = y < 0 || y >= in.h || x < 0 || x >= in.w || z < 0 || z >= in.c;
                    if (outside && p->mode == HQRT_PAD_CONSTANT) {
                        hqrt_store(output, bits, oi, p->value_code);
                        continue;
                    }
                    y = pad_source(p->mode, y, in.h);
                    x = pad_source(p->mode, x, in.w);
                    z = pad_source(p->mode, z, in.c);
                    copy_elem(output, oi, input,
                              (size_t)((((int64_t)n * in.h + y) * in.w + x) * in.c + z), es);
                }
    return HQRT_KERNEL_OK;
}

/* floor(a / b) for b > 0. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* Source coordinate of output index x as an exact fraction num / den (den > 0). */
static void resize_fraction(int32_t coords, int64_t x, int64_t in, int64_t out, int64_t *num,
                            int64_t *den)
{
    switch (coords) {
    case HQRT_COORDS_HALF_PIXEL:
        *num = (2 * x + 1) * in - out;
        *den = 2 * out;
        return;
    case HQRT_COORDS_PYTORCH_HALF_PIXEL:
        if (out > 1) {
            *num = (2 * x + 1) * in - out;
            *den = 2 * out;
        } else {
            *num = 0;
            *den = 1;
        }
        return;
    case HQRT_COORDS_ALIGN_CORNERS:
        if (out > 1) {
            *num = x * (in - 1);
            *den = out - 1;
        } else {
            *num = 0;
            *den = 1;
        }
        return;
    default:
        *num = x * in;
        *den = out;
        return;
    }
}

static int64_t clamp_index(int64_t v, int64_t extent)
{
    return v < 0 ? 0 : v >= extent ? extent - 1 : v;
}

typedef struct resize_tap {
    int64_t lo, hi;
    int32_t w_hi; /* Q15 weight of hi; lo gets 2^15 - w_hi */
} resize_tap_t;

static resize_tap_t resize_tap(const hqrt_resize_params_t *p, int64_t x, int64_t in, int64_t out)
{
    int64_t num, den;
    resize_fraction(p->coords, x, in, out, &num, &den);
    resize_tap_t t;
    if (p->method == HQRT_RESIZE_NEAREST) {
        /* floor(v), or ceil(v - 1/2) = -floor((den - 2 num) / (2 den)) */
        int64_t v =
            p->round_prefer_floor ? -floor_div(den - 2 * num, 2 * den) : floor_div(num, den);
        t.lo = t.hi = clamp_index(v, in);
        t.w_hi = 0;
        return t;
    }
    const int64_t one = (int64_t)1 << HQRT_RESIZE_FRAC_BITS;
    int64_t pos = floor_div(num * one, den);
    int64_t base = floor_div(pos, one);
    t.lo = clamp_index(base, in);
    t.hi = clamp_index(base + 1, in);
    t.w_hi = (int32_t)(pos - base * one);
    return t;
}

void hqrt_resize_source(const hqrt_resize_params_t *p, int64_t x, int64_t in, int64_t out,
                        int64_t *lo, int64_t *hi, int32_t *w_hi)
{
    resize_tap_t t = resize_tap(p, x, in, out);
    *lo = t.lo, *hi = t.hi, *w_hi = t.w_hi;
}

int hqrt_resize(const hqrt_resize_params_t *p, hqrt_dims_t in, const void *input, hqrt_dims_t out,
                void *output)
{
    if (!p || !input || !output || !dims_ok(in) || !dims_ok(out) || in.n != out.n ||
        in.c != out.c || !bits_ok(p->bits) || p->zp < 0 || p->zp > hqrt_code_max(p->bits) ||
        p->method < HQRT_RESIZE_NEAREST || p->method > HQRT_RESIZE_BILINEAR ||
        p->coords < HQRT_COORDS_ASYMMETRIC || p->coords > HQRT_COORDS_PYTORCH_HALF_PIXEL)
        return HQRT_KERNEL_ERR_ARGUMENT;
    const int64_t one = (int64_t)1 << HQRT_RESIZE_FRAC_BITS;
    size_t oi = 0;
    for (int32_t n = 0; n < out.n; n++)
        for (int32_t oh = 0; oh < out.h; oh++) {
            resize_tap_t ty = resize_tap(p, oh, in.h, out.h);
            for (int32_t ow = 0; ow < out.w; ow++) {
                resize_tap_t tx = resize_tap(p, ow, in.w, out.w);
                for (int32_t c = 0; c < out.c; c++, oi++) {
#define HQRT_AT(y, x)                                                                              \
    (hqrt_load(input, p->bits, (size_t)((((int64_t)n * in.h + (y)) * in.w + (x)) * in.c + c)) -    \
     p->zp)
                    if (p->method == HQRT_RESIZE_NEAREST) {
                        hqrt_store(output, p->bits, oi, HQRT_AT(ty.lo, tx.lo) + p->zp);
                        continue;
                    }
                    int64_t acc = (one - ty.w_hi) * ((one - tx.w_hi) * HQRT_AT(ty.lo, tx.lo) +
                                                     tx.w_hi * HQRT_AT(ty.lo, tx.hi)) +
                                  ty.w_hi * ((one - tx.w_hi) * HQRT_AT(ty.hi, tx.lo) +
                                             tx.w_hi * HQRT_AT(ty.hi, tx.hi));
#undef HQRT_AT
                    int64_t v = hqrt_rounding_divide_by_pot64(acc, 2 * HQRT_RESIZE_FRAC_BITS);
                    hqrt_store(output, p->bits, oi,
                               hqrt_clamp32(v + p->zp, 0, hqrt_code_max(p->bits)));
                }
            }
        }
    return HQRT_KERNEL_OK;
}

int hqrt_depth_to_space(int32_t bits, int32_t block, int32_t crd, hqrt_dims_t in, const void *input,
                        void *output)
{
    if (!bits_ok(bits) || !input || !output || !dims_ok(in) || block < 1 ||
        in.c % ((int64_t)block * block))
        return HQRT_KERNEL_ERR_ARGUMENT;
    const size_t es = elem_size(bits);
    const int64_t oc = in.c / ((int64_t)block * block), oh = (int64_t)in.h * block,
                  ow = (int64_t)in.w * block;
    size_t oi = 0;
    for (int64_t n = 0; n < in.n; n++)
        for (int64_t y = 0; y < oh; y++)
            for (int64_t x = 0; x < ow; x++)
                for (int64_t c = 0; c < oc; c++, oi++) {
                    int64_t by = y % block, bx = x % block;
                    int64_t ic =
                        crd ? c * block * block + by * block + bx : (by * block + bx) * oc + c;
                    copy_elem(output, oi, input,
                              (size_t)(((n * in.h + y / block) * in.w + x / block) * in.c + ic),
                              es);
                }
    return HQRT_KERNEL_OK;
}

int hqrt_space_to_depth(int32_t bits, int32_t block, hqrt_dims_t in, const void *input,
                        void *output)
{
    if (!bits_ok(bits) || !input || !output || !dims_ok(in) || block < 1 || in.h % block ||
        in.w % block)
        return HQRT_KERNEL_ERR_ARGUMENT;
    const size_t es = elem_size(bits);
    const int64_t oh = in.h / block, ow = in.w / block, oc = (int64_t)in.c * block * block;
    size_t oi = 0;
    for (int64_t n = 0; n < in.n; n++)
        for (int64_t y = 0; y < oh; y++)
            for (int64_t x = 0; x < ow; x++)
                for (int64_t c = 0; c < oc; c++, oi++) {
                    int64_t b = c / in.c, ic = c % in.c;
                    int64_t by = b / block, bx = b % block;
                    copy_elem(
                        output, oi, input,
                        (size_t)(((n * in.h + y * block + by) * in.w + x * block + bx) * in.c + ic),
                        es);
                }
    return HQRT_KERNEL_OK;
}

int hqrt_transpose(int32_t bits, const hqrt_shape_t *is, const void *input, const int32_t *perm,
                   void *output)
{
    if (!bits_ok(bits) || !shape_ok(is) || !input || !perm || !output)
        return HQRT_KERNEL_ERR_ARGUMENT;
    int seen[HQRT_MAX_DIMS] = {0};
    for (int d = 0; d < is->ndim; d++) {
        if (perm[d] < 0 || perm[d] >= is->ndim || seen[perm[d]])
            return HQRT_KERNEL_ERR_ARGUMENT;
        seen[perm[d]] = 1;
    }
    int64_t stride[HQRT_MAX_DIMS];
    stride[is->ndim - 1] = 1;
    for (int d = is->ndim - 2; d >= 0; d--)
        stride[d] = stride[d + 1] * is->dims[d + 1];
    int32_t coord[HQRT_MAX_DIMS] = {0};
    const size_t es = elem_size(bits);
    const int64_t total = shape_count(is);
    for (int64_t i = 0; i < total; i++) {
        int64_t src = 0;
        for (int d = 0; d < is->ndim; d++)
            src += (int64_t)coord[d] * stride[perm[d]];
        copy_elem(output, (size_t)i, input, (size_t)src, es);
        for (int d = is->ndim - 1; d >= 0; d--) {
            if (++coord[d] < is->dims[perm[d]])
                break;
            coord[d] = 0;
        }
    }
    return HQRT_KERNEL_OK;
}

int hqrt_reduce_max(int32_t bits, const hqrt_shape_t *s, const void *input, int32_t axis,
                    void *output)
{
    if (!bits_ok(bits) || !shape_ok(s) || !input || !output || axis < 0 || axis >= s->ndim)
        return HQRT_KERNEL_ERR_ARGUMENT;
    int64_t outer, inner;
    around_axis(s, axis, &outer, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int32_t best = -1;
            for (int64_t k = 0; k < s->dims[axis]; k++) {
                int32_t q = hqrt_load(input, bits, (size_t)((o * s->dims[axis] + k) * inner + i));
                if (q > best)
                    best = q;
            }
            hqrt_store(output, bits, (size_t)(o * inner + i), best);
        }
    return HQRT_KERNEL_OK;
}

int hqrt_argmax(int32_t in_bits, const hqrt_shape_t *s, const void *input, int32_t out_bits,
                void *output)
{
    if (!bits_ok(in_bits) || !bits_ok(out_bits) || !shape_ok(s) || !input || !output)
        return HQRT_KERNEL_ERR_ARGUMENT;
    const int64_t c = s->dims[s->ndim - 1], rows = shape_count(s) / c;
    for (int64_t r = 0; r < rows; r++) {
        int64_t best = 0;
        for (int64_t k = 1; k < c; k++)
            if (hqrt_load(input, in_bits, (size_t)(r * c + k)) >
                hqrt_load(input, in_bits, (size_t)(r * c + best)))
                best = k;
        hqrt_store(output, out_bits, (size_t)r, hqrt_clamp32(best, 0, hqrt_code_max(out_bits)));
    }
    return HQRT_KERNEL_OK;
}

int hqrt_softmax(int32_t in_bits, const int32_t *exp_lut, const hqrt_output_stage_t *out,
                 const hqrt_shape_t *s, int32_t axis, const void *input, void *output)
{
    if (!bits_ok(in_bits) || !exp_lut || !shape_ok(s) || !input || !output || axis < 0 ||
        axis >= s->ndim || hqrt_output_stage_check(out, 1) != HQRT_KERNEL_OK)
        return HQRT_KERNEL_ERR_ARGUMENT;
    int64_t outer, inner;
    around_axis(s, axis, &outer, &inner);
    const int64_t n = s->dims[axis];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int32_t best = 0;
            for (int64_t k = 0; k < n; k++) {
                int32_t q = hqrt_load(input, in_bits, (size_t)((o * n + k) * inner + i));
                best = q > best ? q : best;
            }
            int64_t sum = 0;
            for (int64_t k = 0; k < n; k++)
                sum += exp_lut[best - hqrt_load(input, in_bits, (size_t)((o * n + k) * inner + i))];
            for (int64_t k = 0; k < n; k++) {
                size_t at = (size_t)((o * n + k) * inner + i);
                int64_t e = exp_lut[best - hqrt_load(input, in_bits, at)];
                /* sum >= exp_lut[0] = 2^30 > 0; e * 2^31 < 2^62 */
                int64_t p = (e * ((int64_t)1 << 31) + sum / 2) / sum;
                hqrt_store(output, out->out_bits, at, hqrt_output_code(out, p, 0));
            }
        }
    return HQRT_KERNEL_OK;
}
