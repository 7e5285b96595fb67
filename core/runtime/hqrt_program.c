/* hqrt_program.c — opening a `.hqx` program: mapping, the validator, I/O descriptions, the edge
 * quantize/dequantize helpers and status text. The validator is the runtime's only line of
 * defence: nothing reads a table entry, a params struct or a blob until it has checked every
 * offset, size, alignment, op code, tensor id, shape and the arena plan (docs/deploy.md,
 * "Validation"). Messages are one line: "<name>: <what is wrong>". */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hqrt_fast.h"
#include "hqrt_internal.h"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#endif

hqrt_status_t hqrt_i_fail(hqrt_error_t *err, hqrt_status_t status, const char *fmt, ...)
{
    if (err) {
        err->status = status;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        /* names come from the program's string table: never let them break the one line */
        for (char *p = err->message; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
    }
    return status;
}

uint64_t hqrt_i_checksum(const uint8_t *bytes, size_t len)
{
    uint64_t h = HQX_FNV_OFFSET;
    for (size_t i = 0; i < len; i++) {
        uint8_t b = (i >= 24 && i < 32) ? 0 : bytes[i];
        h = (h ^ b) * HQX_FNV_PRIME;
    }
    return h;
}

const char *hqrt_status_text(hqrt_status_t status)
{
    switch (status) {
    case HQRT_OK:
        return "ok";
    case HQRT_ERR_IO:
        return "i/o error";
    case HQRT_ERR_FORMAT:
        return "corrupt program";
    case HQRT_ERR_UNSUPPORTED:
        return "unsupported program";
    case HQRT_ERR_NOMEM:
        return "out of memory";
    case HQRT_ERR_ARGUMENT:
        return "invalid argument";
    }
    return "unknown status";
}

/* ---- validation ------------------------------------------------------------------------- */

/* What the validator knows while it walks a program. */
typedef struct check {
    const uint8_t *base;
    uint64_t size;
    const char *name;
    const hqx_header_t *h;
    const hqx_tensor_t *tensors;
    const hqx_op_t *ops;
    const uint32_t *ids;
    hqrt_error_t *err;
} check_t;

#define BAD(...) hqrt_i_fail(c->err, HQRT_ERR_FORMAT, __VA_ARGS__)

/* [offset, offset + count * elem) inside [lo, hi), offset aligned: no overflow possible since
 * every operand is checked against the 64-bit file size first. */
static bool range_ok(uint64_t offset, uint64_t count, uint64_t elem, uint64_t align, uint64_t lo,
                     uint64_t hi)
{
    if (offset < lo || offset > hi || (align && offset % align))
        return false;
    if (elem && count > (hi - offset) / elem)
        return false;
    return true;
}

static const char *op_name(const check_t *c, const hqx_op_t *op)
{
    /* Only called after the strings section and the op's name offset were checked. */
    return (const char *)c->base + c->h->strings_offset + op->name;
}

static bool blob_ok(const check_t *c, hqx_blob_t b, uint64_t want)
{
    if (b.size != want)
        return false;
    if (!b.size)
        return b.offset == 0;
    return range_ok(b.offset, b.size, 1, HQX_ALIGN, c->h->data_offset, c->size);
}

static bool same_extent(const hqx_tensor_t *a, const hqx_tensor_t *b);

static const hqx_tensor_t *op_tensor(const check_t *c, const hqx_op_t *op, bool output, int i)
{
    return &c->tensors[c->ids[(output ? op->outputs_first : op->inputs_first) + (uint32_t)i]];
}

static int64_t window_extent(int64_t in, int32_t k, int32_t s, int32_t d, int32_t pb, int32_t pe)
{
    int64_t eff = (int64_t)d * (k - 1) + 1;
    int64_t span = in + pb + pe - eff;
    return span < 0 ? -1 : span / s + 1;
}

static bool same_qp(const hqx_tensor_t *a, const hqx_tensor_t *b)
{
    return a->bits == b->bits && a->qp_zp == b->qp_zp && a->qp_scale == b->qp_scale;
}

static bool clamp_ok(int32_t lo, int32_t hi, uint32_t bits)
{
    int32_t top = (int32_t)((1u << bits) - 1);
    return lo >= 0 && lo <= hi && hi <= top;
}

/* Shifts in [-31, 30]: gemmlowp's rounding divide is defined for exponents 0..31 and the left
 * shift must not overflow. Any multiplier is arithmetic-safe (hqrt_numerics.h). */
static bool requant_values_ok(const int32_t *mult, const int32_t *shift, int64_t n)
{
    (void)mult;
    for (int64_t i = 0; i < n; i++)
        if (shift[i] < -31 || shift[i] > 30)
            return false;
    return true;
}

static bool window_ok(int32_t k, int32_t s, int32_t d, int32_t pb, int32_t pe, int32_t kmax)
{
    return k >= 1 && k <= kmax && s >= 1 && s <= HQX_MAX_PARAM && d >= 1 && d <= HQX_MAX_PARAM &&
           pb >= 0 && pb <= HQX_MAX_PARAM && pe >= 0 && pe <= HQX_MAX_PARAM;
}

/* An output stage: blob sizes, value ranges (Q31 multipliers, shifts in [-31, 30]) and clamp;
 * the numerics' own check has the last word. `channels` is the output's innermost extent. */
static hqrt_status_t check_stage(const check_t *c, const hqx_op_t *op, const hqx_stage_t *s,
                                 const hqx_tensor_t *out, uint64_t want_count, bool allow_one)
{
    const char *ln = op_name(c, op);
    if (s->count < 1 || ((uint64_t)s->count != want_count && !(allow_one && s->count == 1)))
        return BAD("%s: layer %s: output stage has %d multipliers, expected %llu", c->name, ln,
                   s->count, (unsigned long long)want_count);
    uint64_t bytes = (uint64_t)s->count * 4;
    bool has_neg = s->multiplier_neg.size || s->shift_neg.size;
    if (!blob_ok(c, s->multiplier, bytes) || !blob_ok(c, s->shift, bytes) ||
        (has_neg && (!blob_ok(c, s->multiplier_neg, bytes) || !blob_ok(c, s->shift_neg, bytes))))
        return BAD("%s: layer %s: multiplier/shift blobs out of bounds or of the wrong size",
                   c->name, ln);
    if (!has_neg && (s->multiplier_neg.offset || s->shift_neg.offset))
        return BAD("%s: layer %s: empty blob with an offset", c->name, ln);
    uint64_t lut_bytes = ((uint64_t)1 << out->bits) * (out->bits / 8);
    if (s->lut.size ? !blob_ok(c, s->lut, lut_bytes) : s->lut.offset != 0)
        return BAD("%s: layer %s: lookup table blob of the wrong size or out of bounds", c->name,
                   ln);
    if (!clamp_ok(s->act_min, s->act_max, out->bits) ||
        (s->lut.size && (s->pre_zp < 0 || s->pre_zp > (int32_t)((1u << out->bits) - 1))))
        return BAD("%s: layer %s: clamp [%d, %d] or pre-activation zero point outside %u-bit "
                   "codes",
                   c->name, ln, s->act_min, s->act_max, out->bits);
    hqrt_output_stage_t stage = hqrt_i_stage(c->base, s, out);
    if (hqrt_output_stage_check(&stage, (int32_t)want_count) != 0)
        return BAD("%s: layer %s: output stage rejected (path %d, multiplier or shift out of "
                   "range)",
                   c->name, ln, s->path);
    return HQRT_OK;
}

/* An optional bias blob: absent (size and offset 0), or `channels` int64 in the data area, each
 * within +-2^62 (with an accumulation depth <= 2^30 and products below 2^32 the int64 sum stays
 * exact). */
static hqrt_status_t check_bias(const check_t *c, const hqx_op_t *op, hqx_blob_t b,
                                uint32_t channels)
{
    if (!b.size && !b.offset)
        return HQRT_OK;
    const char *ln = op_name(c, op);
    if (!blob_ok(c, b, (uint64_t)channels * 8))
        return BAD("%s: layer %s: bias blob out of bounds or not %u int64", c->name, ln, channels);
    const int64_t *bias = (const int64_t *)(c->base + b.offset);
    for (uint32_t i = 0; i < channels; i++)
        if (bias[i] > ((int64_t)1 << 62) || bias[i] < -((int64_t)1 << 62))
            return BAD("%s: layer %s: bias %u out of range", c->name, ln, i);
    return HQRT_OK;
}

static hqrt_status_t check_conv(const check_t *c, const hqx_op_t *op)
{
    const hqx_conv_params_t *p = (const void *)(c->base + op->params_offset);
    const hqx_tensor_t *in = op_tensor(c, op, false, 0), *out = op_tensor(c, op, true, 0);
    const char *ln = op_name(c, op);
    bool dense = op->code == HQX_OP_DENSE;
    uint64_t cin, taps;
    if (dense) {
        if (out->ndim != 2 || op->input_count != 1 || p->groups != 1)
            return BAD("%s: layer %s: dense needs one input, groups 1 and a [1, C] output", c->name,
                       ln);
        cin = (uint64_t)in->h * in->w * in->c;
        taps = 1;
    } else {
        if (!window_ok(p->kernel_h, p->stride_h, p->dilation_h, p->pad_top, p->pad_bottom,
                       HQX_MAX_PARAM) ||
            !window_ok(p->kernel_w, p->stride_w, p->dilation_w, p->pad_left, p->pad_right,
                       HQX_MAX_PARAM))
            return BAD("%s: layer %s: conv window out of range", c->name, ln);
        if (p->groups < 1 || in->c % (uint32_t)p->groups || out->c % (uint32_t)p->groups)
            return BAD("%s: layer %s: %d groups do not divide %u input and %u output channels",
                       c->name, ln, p->groups, in->c, out->c);
        int64_t oh, ow;
        if (op->code == HQX_OP_DECONV) {
            if (p->output_pad_h < 0 || p->output_pad_w < 0 || p->output_pad_h > HQX_MAX_PARAM ||
                p->output_pad_w > HQX_MAX_PARAM)
                return BAD("%s: layer %s: deconv output padding out of range", c->name, ln);
            oh = ((int64_t)in->h - 1) * p->stride_h + (int64_t)p->dilation_h * (p->kernel_h - 1) +
                 1 + p->output_pad_h - p->pad_top - p->pad_bottom;
            ow = ((int64_t)in->w - 1) * p->stride_w + (int64_t)p->dilation_w * (p->kernel_w - 1) +
                 1 + p->output_pad_w - p->pad_left - p->pad_right;
        } else {
            oh = window_extent(in->h, p->kernel_h, p->stride_h, p->dilation_h, p->pad_top,
                               p->pad_bottom);
            ow = window_extent(in->w, p->kernel_w, p->stride_w, p->dilation_w, p->pad_left,
                               p->pad_right);
        }
        if (oh != out->h || ow != out->w)
            return BAD("%s: layer %s: conv output is %ux%u, the window gives %lldx%lld", c->name,
                       ln, out->h, out->w, (long long)oh, (long long)ow);
        cin = in->c / (uint32_t)p->groups;
        taps = (uint64_t)p->kernel_h * (uint64_t)p->kernel_w;
    }
    if (p->weight_bits != 4 && p->weight_bits != 8 && p->weight_bits != 16)
        return BAD("%s: layer %s: weight bits %d (4, 8 or 16)", c->name, ln, p->weight_bits);
    uint64_t depth = taps * cin;
    if (depth > ((uint64_t)1 << 30))
        return BAD("%s: layer %s: accumulation depth %llu above 2^30", c->name, ln,
                   (unsigned long long)depth);
    uint64_t wbytes = depth * out->c * (p->weight_bits == 16 ? 2 : 1);
    if (!blob_ok(c, p->weights, wbytes))
        return BAD("%s: layer %s: weights blob: %llu bytes at %llu, expected %llu bytes in the "
                   "data area",
                   c->name, ln, (unsigned long long)p->weights.size,
                   (unsigned long long)p->weights.offset, (unsigned long long)wbytes);
    hqrt_status_t st = check_bias(c, op, p->bias, out->c);
    if (st != HQRT_OK)
        return st;
    if (op->input_count == 2) {
        const hqx_tensor_t *add = op_tensor(c, op, false, 1);
        if (!same_extent(add, out) ||
            !requant_values_ok(&p->addend_multiplier, &p->addend_shift, 1))
            return BAD("%s: layer %s: fused addend of another shape or bad multiplier", c->name,
                       ln);
    }
    return check_stage(c, op, &p->stage, out, out->c, true);
}

static hqrt_status_t check_pool(const check_t *c, const hqx_op_t *op)
{
    const hqx_pool_params_t *p = (const void *)(c->base + op->params_offset);
    const hqx_tensor_t *in = op_tensor(c, op, false, 0), *out = op_tensor(c, op, true, 0);
    const char *ln = op_name(c, op);
    if (in->c != out->c || in->ndim != 4 || out->ndim != 4)
        return BAD("%s: layer %s: pool changes the channel count or is not on images", c->name, ln);
    if (op->code == HQX_OP_GLOBAL_AVG) {
        if (out->h != 1 || out->w != 1)
            return BAD("%s: layer %s: global average pool output is not 1x1", c->name, ln);
        return check_stage(c, op, &p->stage, out, 1, false);
    }
    int32_t dh = 1, dw = 1;
    if (op->code == HQX_OP_DILATED_MAXPOOL) {
        const hqx_dilated_pool_params_t *d = (const void *)p;
        dh = d->dilation_h;
        dw = d->dilation_w;
        if ((dh == 1 && dw == 1) || p->count_include_pad)
            return BAD("%s: layer %s: dilated maxpool without dilation or counting pads", c->name,
                       ln);
    }
    if (!window_ok(p->kernel_h, p->stride_h, dh, p->pad_top, p->pad_bottom, 1 << 15) ||
        !window_ok(p->kernel_w, p->stride_w, dw, p->pad_left, p->pad_right, 1 << 15) ||
        (uint64_t)p->kernel_h * (uint64_t)p->kernel_w > (1u << 16))
        return BAD("%s: layer %s: pool window out of range", c->name, ln);
    int64_t oh = window_extent(in->h, p->kernel_h, p->stride_h, dh, p->pad_top, p->pad_bottom);
    int64_t ow = window_extent(in->w, p->kernel_w, p->stride_w, dw, p->pad_left, p->pad_right);
    if (oh != out->h || ow != out->w)
        return BAD("%s: layer %s: pool output shape does not follow from its input", c->name, ln);
    if (op->code == HQX_OP_MAXPOOL || op->code == HQX_OP_DILATED_MAXPOOL)
        return same_qp(in, out)
                   ? HQRT_OK
                   : BAD("%s: layer %s: maxpool input and output quantization differ", c->name, ln);
    return check_stage(c, op, &p->stage, out, (uint64_t)p->kernel_h * (uint64_t)p->kernel_w, false);
}

static bool same_extent(const hqx_tensor_t *a, const hqx_tensor_t *b)
{
    return a->ndim == b->ndim && a->h == b->h && a->w == b->w && a->c == b->c;
}

static bool broadcasts_to(const hqx_tensor_t *a, const hqx_tensor_t *out)
{
    return a->ndim == out->ndim && (a->h == out->h || a->h == 1) && (a->w == out->w || a->w == 1) &&
           (a->c == out->c || a->c == 1);
}

static hqrt_status_t check_eltwise(const check_t *c, const hqx_op_t *op)
{
    const hqx_eltwise_params_t *p = (const void *)(c->base + op->params_offset);
    const hqx_tensor_t *a = op_tensor(c, op, false, 0), *b = op_tensor(c, op, false, 1);
    const hqx_tensor_t *out = op_tensor(c, op, true, 0);
    const char *ln = op_name(c, op);
    if (!broadcasts_to(a, out) || !broadcasts_to(b, out))
        return BAD("%s: layer %s: elementwise operands do not broadcast to the output", c->name,
                   ln);
    if (p->op < HQRT_EW_ADD || p->op > HQRT_EW_MIN)
        return BAD("%s: layer %s: unknown elementwise operation %d", c->name, ln, p->op);
    if (!requant_values_ok(&p->a_multiplier, &p->a_shift, 1) ||
        !requant_values_ok(&p->b_multiplier, &p->b_shift, 1))
        return BAD("%s: layer %s: operand multiplier or shift out of range", c->name, ln);
    return check_stage(c, op, &p->stage, out, out->c, true);
}

static hqrt_status_t check_activation(const check_t *c, const hqx_op_t *op)
{
    const hqx_stage_params_t *p = (const void *)(c->base + op->params_offset);
    const hqx_tensor_t *in = op_tensor(c, op, false, 0), *out = op_tensor(c, op, true, 0);
    const char *ln = op_name(c, op);
    if ((uint64_t)in->h * in->w * in->c != (uint64_t)out->h * out->w * out->c || in->c != out->c)
        return BAD("%s: layer %s: activation changes the shape", c->name, ln);
    if (op->code == HQX_OP_LUT) {
        uint64_t bytes = ((uint64_t)1 << in->bits) * (out->bits / 8);
        if (!blob_ok(c, p->stage.lut, bytes))
            return BAD("%s: layer %s: lookup table needs %llu bytes in the data area", c->name, ln,
                       (unsigned long long)bytes);
        return HQRT_OK;
    }
    return check_stage(c, op, &p->stage, out, out->c, true);
}

static hqrt_status_t check_concat(const check_t *c, const hqx_op_t *op)
{
    const hqx_axis_params_t *p = (const void *)(c->base + op->params_offset);
    bool split = op->code == HQX_OP_SPLIT;
    const hqx_tensor_t *whole = split ? op_tensor(c, op, false, 0) : op_tensor(c, op, true, 0);
    int parts = split ? op->output_count : op->input_count;
    const char *ln = op_name(c, op);
    if (p->axis < 1 || p->axis >= (int32_t)whole->ndim)
        return BAD("%s: layer %s: axis %d out of range", c->name, ln, p->axis);
    /* extent along axis of a tensor, in its own rank */
    uint64_t sum = 0;
    for (int i = 0; i < parts; i++) {
        const hqx_tensor_t *t = op_tensor(c, op, split, i);
        uint32_t e[3] = {t->h, t->w, t->c}, we[3] = {whole->h, whole->w, whole->c};
        int ax = p->axis + 3 - (int)whole->ndim; /* index into {h, w, c} */
        if (t->ndim != whole->ndim || t->bits != whole->bits)
            return BAD("%s: layer %s: piece %d differs from the whole in rank or bits", c->name, ln,
                       i);
        for (int d = 0; d < 3; d++)
            if (d != ax && e[d] != we[d])
                return BAD("%s: layer %s: piece %d differs from the whole off the axis", c->name,
                           ln, i);
        sum += e[ax];
    }
    uint32_t we[3] = {whole->h, whole->w, whole->c};
    int wax = p->axis + 3 - (int)whole->ndim;
    if (sum != we[wax])
        return BAD("%s: layer %s: pieces add up to %llu along the axis, the whole has %u", c->name,
                   ln, (unsigned long long)sum, we[wax]);
    return HQRT_OK;
}

static hqrt_status_t check_resize(const check_t *c, const hqx_op_t *op)
{
    const hqx_resize_params_t *p = (const void *)(c->base + op->params_offset);
    const hqx_tensor_t *in = op_tensor(c, op, false, 0), *out = op_tensor(c, op, true, 0);
    const char *ln = op_name(c, op);
    if (in->ndim != 4 || in->c != out->c || !same_qp(in, out) || p->method < 0 ||
        p->method > HQRT_RESIZE_BILINEAR || p->coords < 0 ||
        p->coords > HQRT_COORDS_PYTORCH_HALF_PIXEL ||
        (p->round_prefer_floor != 0 && p->round_prefer_floor != 1))
        return BAD("%s: layer %s: resize changes channels or quantization, or bad mode", c->name,
                   ln);
    return HQRT_OK;
}

static hqrt_status_t check_copy(const check_t *c, const hqx_op_t *op)
{
    const hqx_tensor_t *in = op_tensor(c, op, false, 0), *out = op_tensor(c, op, true, 0);
    if (in->bytes != out->bytes || in->bits != out->bits)
        return BAD("%s: layer %s: copy between tensors of different sizes", c->name,
                   op_name(c, op));
    return HQRT_OK;
}

/* A tensor's kernel shape: [1, h, w, c], [1, w, c] or [1, c]; returns the rank. */
static int tensor_dims(const hqx_tensor_t *t, int64_t *d)
{
    int n = 0;
    d[n++] = 1;
    if (t->ndim == 4)
        d[n++] = t->h;
    if (t->ndim >= 3)
        d[n++] = t->w;
    d[n++] = t->c;
    return n;
}

static hqrt_status_t check_const(const check_t *c, const hqx_op_t *op)
{
    const hqx_const_params_t *p = (const void *)(c->base + op->params_offset);
    const hqx_tensor_t *out = op_tensor(c, op, true, 0);
    if (!blob_ok(c, p->data, out->bytes))
        return BAD("%s: layer %s: constant blob is not the output's %llu bytes in the data area",
                   c->name, op_name(c, op), (unsigned long long)out->bytes);
    return HQRT_OK;
}

static hqrt_status_t check_slice(const check_t *c, const hqx_op_t *op)
{
    const hqx_slice_params_t *p = (const void *)(c->base + op->params_offset);
    const hqx_tensor_t *in = op_tensor(c, op, false, 0), *out = op_tensor(c, op, true, 0);
    const uint32_t ie[3] = {in->h, in->w, in->c}, oe[3] = {out->h, out->w, out->c};
    if (in->bits != out->bits || in->ndim != out->ndim)
        return BAD("%s: layer %s: slice changes bits or rank", c->name, op_name(c, op));
    for (int a = 0; a < 3; a++)
        if (p->step[a] < 1 || p->begin[a] < 0 || p->begin[a] >= p->end[a] ||
            (uint32_t)p->end[a] > ie[a] ||
            oe[a] != (uint32_t)((p->end[a] - p->begin[a] + p->step[a] - 1) / p->step[a]))
            return BAD("%s: layer %s: slice bounds do not fit the input or the output", c->name,
                       op_name(c, op));
    return HQRT_OK;
}

static hqrt_status_t check_pad(const check_t *c, const hqx_op_t *op)
{
    const hqx_pad_params_t *p = (const void *)(c->base + op->params_offset);
    const hqx_tensor_t *in = op_tensor(c, op, false, 0), *out = op_tensor(c, op, true, 0);
    const uint32_t ie[3] = {in->h, in->w, in->c}, oe[3] = {out->h, out->w, out->c};
    if (in->bits != out->bits || in->ndim != out->ndim || p->mode < HQRT_PAD_CONSTANT ||
        p->mode > HQRT_PAD_EDGE || p->value_code < 0 ||
        p->value_code > (int32_t)((1u << out->bits) - 1))
        return BAD("%s: layer %s: pad mode, value or bits invalid", c->name, op_name(c, op));
    for (int a = 0; a < 3; a++)
        if (p->before[a] < 0 || p->after[a] < 0 || p->before[a] > HQX_MAX_PARAM ||
            p->after[a] > HQX_MAX_PARAM ||
            (uint64_t)oe[a] != (uint64_t)ie[a] + (uint64_t)p->before[a] + (uint64_t)p->after[a] ||
            (p->mode == HQRT_PAD_REFLECT &&
             ((uint32_t)p->before[a] >= ie[a] || (uint32_t)p->after[a] >= ie[a])))
            return BAD("%s: layer %s: pad amounts do not fit the input or the output", c->name,
                       op_name(c, op));
    return HQRT_OK;
}

static hqrt_status_t check_block(const check_t *c, const hqx_op_t *op)
{
    const hqx_block_params_t *p = (const void *)(c->base + op->params_offset);
    const hqx_tensor_t *in = op_tensor(c, op, false, 0), *out = op_tensor(c, op, true, 0);
    bool d2s = op->code == HQX_OP_DEPTH_TO_SPACE;
    const hqx_tensor_t *deep = d2s ? in : out, *wide = d2s ? out : in;
    uint64_t b = p->block > 0 && p->block <= 4096 ? (uint64_t)p->block : 0;
    if (!b || (p->crd != 0 && p->crd != 1) || in->bits != out->bits || in->ndim != 4 ||
        out->ndim != 4 || (uint64_t)deep->h * b != wide->h || (uint64_t)deep->w * b != wide->w ||
        (uint64_t)wide->c * b * b != deep->c)
        return BAD("%s: layer %s: block size %d does not relate the input and output shapes",
                   c->name, op_name(c, op), p->block);
    return HQRT_OK;
}

static hqrt_status_t check_transpose(const check_t *c, const hqx_op_t *op)
{
    const hqx_transpose_params_t *p = (const void *)(c->base + op->params_offset);
    const hqx_tensor_t *in = op_tensor(c, op, false, 0), *out = op_tensor(c, op, true, 0);
    int64_t id[4], od[4];
    int n = tensor_dims(in, id);
    int m = tensor_dims(out, od);
    bool seen[4] = {false, false, false, false};
    bool ok = n == m && in->bits == out->bits && p->perm[0] == 0;
    for (int d = 0; ok && d < n; d++) {
        ok = p->perm[d] >= 0 && p->perm[d] < n && !seen[p->perm[d]] && od[d] == id[p->perm[d]];
        if (ok)
            seen[p->perm[d]] = true;
    }
    return ok ? HQRT_OK
              : BAD("%s: layer %s: permutation does not map the input shape to the output", c->name,
                    op_name(c, op));
}

static hqrt_status_t check_transpose_view(const check_t *c, const hqx_op_t *op)
{
    const hqx_transpose_view_params_t *p = (const void *)(c->base + op->params_offset);
    const hqx_tensor_t *in = op_tensor(c, op, false, 0), *out = op_tensor(c, op, true, 0);
    bool seen[HQX_MAX_VIEW_DIMS] = {false};
    uint64_t count = 1;
    bool ok = p->ndim >= 2 && p->ndim <= (int32_t)HQX_MAX_VIEW_DIMS && p->dims[0] == 1 &&
              p->perm[0] == 0 && in->bits == out->bits && p->reserved == 0;
    for (int d = 0; ok && d < HQX_MAX_VIEW_DIMS; d++) {
        if (d >= p->ndim) {
            ok = p->dims[d] == 1 && p->perm[d] == d;
            continue;
        }
        ok = p->dims[d] >= 1 && (uint64_t)p->dims[d] <= HQX_MAX_DIM && p->perm[d] >= 0 &&
             p->perm[d] < p->ndim && !seen[p->perm[d]];
        if (ok) {
            seen[p->perm[d]] = true;
            count *= (uint64_t)p->dims[d];
        }
    }
    uint64_t in_count = (uint64_t)in->h * in->w * in->c;
    uint64_t out_count = (uint64_t)out->h * out->w * out->c;
    return ok && count == in_count && count == out_count
               ? HQRT_OK
               : BAD("%s: layer %s: the view or its permutation does not fit the input and output",
                     c->name, op_name(c, op));
}

static hqrt_status_t check_reduce(const check_t *c, const hqx_op_t *op)
{
    const hqx_axis_params_t *p = (const void *)(c->base + op->params_offset);
    const hqx_tensor_t *in = op_tensor(c, op, false, 0), *out = op_tensor(c, op, true, 0);
    int64_t id[4], od[4];
    int n = tensor_dims(in, id);
    int m = tensor_dims(out, od);
    int axis = op->code == HQX_OP_ARGMAX ? n - 1 : p->axis;
    bool ok =
        n == m && axis >= 1 && axis < n && (op->code == HQX_OP_ARGMAX || in->bits == out->bits);
    for (int d = 0; ok && d < n; d++)
        ok = od[d] == (d == axis ? 1 : id[d]);
    return ok ? HQRT_OK
              : BAD("%s: layer %s: reduction axis or output shape invalid", c->name,
                    op_name(c, op));
}

static hqrt_status_t check_softmax(const check_t *c, const hqx_op_t *op)
{
    const hqx_softmax_params_t *p = (const void *)(c->base + op->params_offset);
    const hqx_tensor_t *in = op_tensor(c, op, false, 0), *out = op_tensor(c, op, true, 0);
    const char *ln = op_name(c, op);
    int64_t id[4], od[4];
    int n = tensor_dims(in, id);
    bool ok = tensor_dims(out, od) == n && p->axis >= 1 && p->axis < n;
    for (int d = 0; ok && d < n; d++)
        ok = od[d] == id[d];
    if (!ok)
        return BAD("%s: layer %s: softmax axis %d or output shape invalid", c->name, ln, p->axis);
    uint64_t entries = (uint64_t)1 << in->bits;
    if (!blob_ok(c, p->exp_lut, entries * 4))
        return BAD("%s: layer %s: softmax exp table needs %llu bytes in the data area", c->name, ln,
                   (unsigned long long)(entries * 4));
    const int32_t *e = (const int32_t *)(const void *)(c->base + p->exp_lut.offset);
    ok = e[0] == (1 << 30);
    for (uint64_t d = 1; ok && d < entries; d++)
        ok = e[d] >= 0 && e[d] <= (1 << 30);
    if (!ok)
        return BAD("%s: layer %s: softmax exp table must start with 2^30 and stay in [0, 2^30]",
                   c->name, ln);
    return check_stage(c, op, &p->stage, out, 1, true);
}

static hqrt_status_t check_layer_norm(const check_t *c, const hqx_op_t *op)
{
    const hqx_layer_norm_params_t *p = (const void *)(c->base + op->params_offset);
    const hqx_tensor_t *in = op_tensor(c, op, false, 0), *out = op_tensor(c, op, true, 0);
    const char *ln = op_name(c, op);
    if (!same_extent(in, out) || in->c > HQRT_NORM_MAX_CHANNELS || p->reserved != 0 ||
        (p->weight_bits != 4 && p->weight_bits != 8 && p->weight_bits != 16) ||
        p->epsilon_term < 1 || p->epsilon_term > HQRT_NORM_EPSILON_MAX)
        return BAD("%s: layer %s: layer_norm shape, channels (at most %d), weight bits or "
                   "epsilon term invalid",
                   c->name, ln, HQRT_NORM_MAX_CHANNELS);
    if (!blob_ok(c, p->gamma, (uint64_t)out->c * (p->weight_bits == 16 ? 2 : 1)))
        return BAD("%s: layer %s: layer_norm gamma blob is not %u codes in the data area", c->name,
                   ln, out->c);
    hqrt_status_t st = check_bias(c, op, p->bias, out->c);
    if (st != HQRT_OK)
        return st;
    return check_stage(c, op, &p->stage, out, out->c, true);
}

/* What each op code accepts. Table over switch: adding an op is one row. */
typedef struct op_rule {
    const char *name;
    uint32_t params_size;
    uint16_t min_inputs, max_inputs;
    uint16_t min_outputs, max_outputs;
    hqrt_status_t (*check)(const check_t *c, const hqx_op_t *op);
} op_rule_t;

static const op_rule_t op_rules[HQX_OP_COUNT_] = {
    [HQX_OP_CONV] = {"conv", sizeof(hqx_conv_params_t), 1, 2, 1, 1, check_conv},
    [HQX_OP_DENSE] = {"dense", sizeof(hqx_conv_params_t), 1, 1, 1, 1, check_conv},
    [HQX_OP_MAXPOOL] = {"maxpool", sizeof(hqx_pool_params_t), 1, 1, 1, 1, check_pool},
    [HQX_OP_AVGPOOL] = {"avgpool", sizeof(hqx_pool_params_t), 1, 1, 1, 1, check_pool},
    [HQX_OP_GLOBAL_AVG] = {"global_avg_pool", sizeof(hqx_pool_params_t), 1, 1, 1, 1, check_pool},
    [HQX_OP_ELTWISE] = {"eltwise", sizeof(hqx_eltwise_params_t), 2, 2, 1, 1, check_eltwise},
    [HQX_OP_ACTIVATION] = {"activation", sizeof(hqx_stage_params_t), 1, 1, 1, 1, check_activation},
    [HQX_OP_LUT] = {"lut", sizeof(hqx_stage_params_t), 1, 1, 1, 1, check_activation},
    [HQX_OP_CONCAT] = {"concat", sizeof(hqx_axis_params_t), 1, HQX_MAX_OP_INPUTS, 1, 1,
                       check_concat},
    [HQX_OP_SPLIT] = {"split", sizeof(hqx_axis_params_t), 1, 1, 1, HQX_MAX_OP_OUTPUTS,
                      check_concat},
    [HQX_OP_RESIZE] = {"resize", sizeof(hqx_resize_params_t), 1, 1, 1, 1, check_resize},
    [HQX_OP_COPY] = {"copy", sizeof(hqx_axis_params_t), 1, 1, 1, 1, check_copy},
    [HQX_OP_DECONV] = {"deconv", sizeof(hqx_conv_params_t), 1, 1, 1, 1, check_conv},
    [HQX_OP_CONST] = {"const", sizeof(hqx_const_params_t), 0, 0, 1, 1, check_const},
    [HQX_OP_SLICE] = {"slice", sizeof(hqx_slice_params_t), 1, 1, 1, 1, check_slice},
    [HQX_OP_PAD] = {"pad", sizeof(hqx_pad_params_t), 1, 1, 1, 1, check_pad},
    [HQX_OP_DEPTH_TO_SPACE] = {"depth_to_space", sizeof(hqx_block_params_t), 1, 1, 1, 1,
                               check_block},
    [HQX_OP_SPACE_TO_DEPTH] = {"space_to_depth", sizeof(hqx_block_params_t), 1, 1, 1, 1,
                               check_block},
    [HQX_OP_TRANSPOSE] = {"transpose", sizeof(hqx_transpose_params_t), 1, 1, 1, 1, check_transpose},
    [HQX_OP_REDUCE_MAX] = {"reduce_max", sizeof(hqx_axis_params_t), 1, 1, 1, 1, check_reduce},
    [HQX_OP_ARGMAX] = {"argmax", sizeof(hqx_axis_params_t), 1, 1, 1, 1, check_reduce},
    [HQX_OP_SOFTMAX] = {"softmax", sizeof(hqx_softmax_params_t), 1, 1, 1, 1, check_softmax},
    [HQX_OP_TRANSPOSE_VIEW] = {"transpose_view", sizeof(hqx_transpose_view_params_t), 1, 1, 1, 1,
                               check_transpose_view},
    [HQX_OP_LAYER_NORM] = {"layer_norm", sizeof(hqx_layer_norm_params_t), 1, 1, 1, 1,
                           check_layer_norm},
    [HQX_OP_DILATED_MAXPOOL] = {"dilated_maxpool", sizeof(hqx_dilated_pool_params_t), 1, 1, 1, 1,
                                check_pool},
};

const char *hqrt_i_op_kind(uint32_t code)
{
    return code < HQX_OP_COUNT_ && op_rules[code].name ? op_rules[code].name : "?";
}

static hqrt_status_t check_sections(check_t *c)
{
    const hqx_header_t *h = c->h;
    uint64_t n = c->size;
    if (h->flags)
        return BAD("%s: header flags 0x%x: unknown in version %u", c->name, h->flags, h->version);
    if (h->tensor_count < 1 || h->tensor_count > HQX_MAX_TENSORS)
        return BAD("%s: tensor count %u out of range", c->name, h->tensor_count);
    if (h->op_count < 1 || h->op_count > HQX_MAX_OPS)
        return BAD("%s: op count %u out of range", c->name, h->op_count);
    if (h->input_count < 1 || h->output_count < 1 || h->input_count > h->tensor_count ||
        h->output_count > h->tensor_count)
        return BAD("%s: %u inputs and %u outputs for %u tensors", c->name, h->input_count,
                   h->output_count, h->tensor_count);
    if (!range_ok(h->tensors_offset, h->tensor_count, sizeof(hqx_tensor_t), 8, HQX_HEADER_SIZE, n))
        return BAD("%s: tensor table out of bounds (offset %llu)", c->name,
                   (unsigned long long)h->tensors_offset);
    if (!range_ok(h->ops_offset, h->op_count, sizeof(hqx_op_t), 8, HQX_HEADER_SIZE, n))
        return BAD("%s: op table out of bounds (offset %llu)", c->name,
                   (unsigned long long)h->ops_offset);
    if (!range_ok(h->ids_offset, h->id_count, 4, 4, HQX_HEADER_SIZE, n))
        return BAD("%s: id list out of bounds (offset %llu)", c->name,
                   (unsigned long long)h->ids_offset);
    if (!range_ok(h->params_offset, h->params_size, 1, 8, HQX_HEADER_SIZE, n))
        return BAD("%s: params area out of bounds", c->name);
    if (!range_ok(h->strings_offset, h->strings_size, 1, 1, HQX_HEADER_SIZE, n) ||
        h->strings_size < 1 || h->strings_size > UINT32_MAX ||
        c->base[h->strings_offset + h->strings_size - 1] != 0)
        return BAD("%s: string table out of bounds or not NUL-terminated", c->name);
    if (h->data_offset % HQX_ALIGN || h->data_offset < HQX_HEADER_SIZE || h->data_offset > n ||
        h->data_size != n - h->data_offset)
        return BAD("%s: data area (offset %llu, %llu bytes) does not end the file", c->name,
                   (unsigned long long)h->data_offset, (unsigned long long)h->data_size);
    if (h->net_name >= h->strings_size)
        return BAD("%s: network name offset out of the string table", c->name);
    if ((uint64_t)h->io_first + h->input_count + h->output_count > h->id_count)
        return BAD("%s: program input/output ids out of the id list", c->name);
    c->tensors = (const void *)(c->base + h->tensors_offset);
    c->ops = (const void *)(c->base + h->ops_offset);
    c->ids = (const void *)(c->base + h->ids_offset);
    return HQRT_OK;
}

static hqrt_status_t check_tensors(const check_t *c)
{
    const hqx_header_t *h = c->h;
    for (uint32_t i = 0; i < h->tensor_count; i++) {
        const hqx_tensor_t *t = &c->tensors[i];
        if (t->name >= h->strings_size)
            return BAD("%s: tensor %u: name offset out of the string table", c->name, i);
        if (t->bits != 8 && t->bits != 16)
            return BAD("%s: tensor %u: %u bits (8 or 16)", c->name, i, t->bits);
        if (t->ndim < 2 || t->ndim > 4 || t->h < 1 || t->w < 1 || t->c < 1 || t->h > HQX_MAX_DIM ||
            t->w > HQX_MAX_DIM || t->c > HQX_MAX_DIM || (t->ndim < 4 && t->h != 1) ||
            (t->ndim == 2 && t->w != 1))
            return BAD("%s: tensor %u: shape out of range", c->name, i);
        uint64_t bytes = (uint64_t)t->h * t->w;
        if (bytes > HQX_MAX_TENSOR_BYTES || (bytes *= t->c) > HQX_MAX_TENSOR_BYTES ||
            (bytes *= t->bits / 8) > HQX_MAX_TENSOR_BYTES || bytes != t->bytes)
            return BAD("%s: tensor %u: size %llu does not match its shape", c->name, i,
                       (unsigned long long)t->bytes);
        if (t->arena_offset % HQX_ALIGN || t->arena_offset > h->arena_size ||
            t->bytes > h->arena_size - t->arena_offset)
            return BAD("%s: tensor %u: arena slot [%llu, +%llu) outside the %llu-byte arena",
                       c->name, i, (unsigned long long)t->arena_offset,
                       (unsigned long long)t->bytes, (unsigned long long)h->arena_size);
        if (t->qp_zp < 0 || t->qp_zp > (int32_t)((1u << t->bits) - 1) || !(t->qp_scale > 0) ||
            !isfinite(t->qp_scale))
            return BAD("%s: tensor %u: quantization (scale %g, zp %d) invalid", c->name, i,
                       (double)t->qp_scale, t->qp_zp);
    }
    return HQRT_OK;
}

static hqrt_status_t check_ops(const check_t *c, hqrt_i_live_t *live)
{
    const hqx_header_t *h = c->h;
    for (uint32_t t = 0; t < h->tensor_count; t++)
        live[t] = (hqrt_i_live_t){INT64_MIN, INT64_MIN};
    for (uint32_t i = 0; i < h->input_count; i++) {
        uint32_t t = c->ids[h->io_first + i];
        if (t >= h->tensor_count || live[t].def != INT64_MIN)
            return BAD("%s: program input %u: bad or repeated tensor id %u", c->name, i, t);
        live[t] = (hqrt_i_live_t){-1, -1};
    }
    for (uint32_t i = 0; i < h->op_count; i++) {
        const hqx_op_t *op = &c->ops[i];
        if (op->name >= h->strings_size)
            return BAD("%s: op %u: name offset out of the string table", c->name, i);
        if (op->code == 0 || op->code >= HQX_OP_COUNT_ || !op_rules[op->code].check)
            return BAD("%s: op %u (%s): unknown op code %u", c->name, i, op_name(c, op), op->code);
        const op_rule_t *r = &op_rules[op->code];
        if (hqx_op_version(op->code) > h->version)
            return BAD("%s: op %u (%s): %s needs format version %u, the program is version %u",
                       c->name, i, op_name(c, op), r->name, hqx_op_version(op->code), h->version);
        if (op->input_count < r->min_inputs || op->input_count > r->max_inputs ||
            op->output_count < r->min_outputs || op->output_count > r->max_outputs)
            return BAD("%s: op %u (%s): %s with %u inputs and %u outputs", c->name, i,
                       op_name(c, op), r->name, op->input_count, op->output_count);
        if ((uint64_t)op->inputs_first + op->input_count > h->id_count ||
            (uint64_t)op->outputs_first + op->output_count > h->id_count)
            return BAD("%s: op %u (%s): tensor ids out of the id list", c->name, i, op_name(c, op));
        if (op->params_size != r->params_size || op->params_offset % 8 ||
            op->params_offset < h->params_offset ||
            op->params_offset - h->params_offset > h->params_size ||
            op->params_size > h->params_size - (op->params_offset - h->params_offset))
            return BAD("%s: op %u (%s): params (%u bytes at %llu) out of the params area or "
                       "not %u bytes",
                       c->name, i, op_name(c, op), op->params_size,
                       (unsigned long long)op->params_offset, r->params_size);
        for (uint32_t k = 0; k < op->input_count; k++) {
            uint32_t t = c->ids[op->inputs_first + k];
            if (t >= h->tensor_count)
                return BAD("%s: op %u (%s): input %u: tensor id %u out of range", c->name, i,
                           op_name(c, op), k, t);
            if (live[t].def == INT64_MIN)
                return BAD("%s: op %u (%s): input %u reads tensor %u before it is produced",
                           c->name, i, op_name(c, op), k, t);
            live[t].last = i;
        }
        for (uint32_t k = 0; k < op->output_count; k++) {
            uint32_t t = c->ids[op->outputs_first + k];
            if (t >= h->tensor_count || live[t].def != INT64_MIN)
                return BAD("%s: op %u (%s): output %u writes tensor %u twice or out of range",
                           c->name, i, op_name(c, op), k, t);
            live[t] = (hqrt_i_live_t){i, i};
        }
        hqrt_status_t st = r->check(c, op);
        if (st != HQRT_OK)
            return st;
    }
    for (uint32_t i = 0; i < h->output_count; i++) {
        uint32_t t = c->ids[h->io_first + h->input_count + i];
        if (t >= h->tensor_count || live[t].def < 0)
            return BAD("%s: program output %u: tensor %u is not produced by an op", c->name, i, t);
        live[t].last = h->op_count;
    }
    for (uint32_t t = 0; t < h->tensor_count; t++)
        if (live[t].def == INT64_MIN)
            return BAD("%s: tensor %u is neither a program input nor produced by an op", c->name,
                       t);
    return HQRT_OK;
}

/* Two tensors alive at the same time must not share arena bytes. Checked by a sweep over the
 * program: each newly defined tensor against every tensor still alive. */
static hqrt_status_t check_arena(const check_t *c, const hqrt_i_live_t *live)
{
    const hqx_header_t *h = c->h;
    uint32_t n = h->tensor_count;
    uint32_t *alive = malloc((size_t)n * sizeof *alive);
    if (!alive)
        return hqrt_i_fail(c->err, HQRT_ERR_NOMEM, "%s: out of memory", c->name);
    uint32_t count = 0;
    hqrt_status_t st = HQRT_OK;
    /* Program inputs are defined at step -1, op outputs at their op's step. */
    for (int64_t step = -1; step < (int64_t)h->op_count && st == HQRT_OK; step++) {
        uint32_t kept = 0; /* drop tensors dead before this step */
        for (uint32_t k = 0; k < count; k++)
            if (live[alive[k]].last >= step)
                alive[kept++] = alive[k];
        count = kept;
        uint32_t first_new = count;
        if (step < 0) {
            for (uint32_t i = 0; i < h->input_count; i++)
                alive[count++] = c->ids[h->io_first + i];
        } else {
            const hqx_op_t *op = &c->ops[step];
            for (uint32_t k = 0; k < op->output_count; k++)
                alive[count++] = c->ids[op->outputs_first + k];
        }
        for (uint32_t a = first_new; a < count && st == HQRT_OK; a++) {
            const hqx_tensor_t *ta = &c->tensors[alive[a]];
            for (uint32_t b = 0; b < a; b++) {
                const hqx_tensor_t *tb = &c->tensors[alive[b]];
                if (ta->arena_offset < tb->arena_offset + tb->bytes &&
                    tb->arena_offset < ta->arena_offset + ta->bytes) {
                    st = BAD("%s: arena plan: tensors %u and %u are alive together and overlap",
                             c->name, alive[a], alive[b]);
                    break;
                }
            }
        }
    }
    free(alive);
    return st;
}

hqrt_status_t hqrt_i_validate(const uint8_t *bytes, size_t len, const char *name, hqrt_error_t *err)
{
    check_t cs = {.base = bytes, .size = len, .name = name, .err = err}, *c = &cs;
    if (len < HQX_HEADER_SIZE)
        return BAD("%s: %zu bytes, shorter than the %u-byte header", name, len, HQX_HEADER_SIZE);
    if ((uintptr_t)bytes % 8)
        return hqrt_i_fail(err, HQRT_ERR_ARGUMENT, "%s: program bytes not 8-byte aligned", name);
    const hqx_header_t *h = (const void *)bytes;
    c->h = h;
    if (memcmp(h->magic, HQX_MAGIC, 8))
        return BAD("%s: not an hq program (bad magic)", name);
    if (h->version < 1 || h->version > HQX_VERSION)
        return hqrt_i_fail(err, HQRT_ERR_UNSUPPORTED,
                           "%s: program format version %u, this runtime reads versions 1 to %u",
                           name, h->version, HQX_VERSION);
    if (h->header_size != HQX_HEADER_SIZE)
        return BAD("%s: header size %u, expected %u", name, h->header_size, HQX_HEADER_SIZE);
    if (h->total_size != len)
        return BAD("%s: truncated or padded: header says %llu bytes, file has %zu", name,
                   (unsigned long long)h->total_size, len);
    uint64_t sum = hqrt_i_checksum(bytes, len);
    if (sum != h->checksum)
        return BAD("%s: checksum mismatch (stored %016llx, computed %016llx): corrupt program",
                   name, (unsigned long long)h->checksum, (unsigned long long)sum);
    if (memchr(h->hw_arch, 0, sizeof h->hw_arch) == NULL)
        return BAD("%s: hw_arch not NUL-terminated", name);
    hqrt_status_t st = check_sections(c);
    if (st == HQRT_OK)
        st = check_tensors(c);
    if (st != HQRT_OK)
        return st;
    hqrt_i_live_t *live = malloc((size_t)h->tensor_count * sizeof *live);
    if (!live)
        return hqrt_i_fail(err, HQRT_ERR_NOMEM, "%s: out of memory", name);
    st = check_ops(c, live);
    if (st == HQRT_OK)
        st = check_arena(c, live);
    free(live);
    return st;
}

/* ---- open / describe / close -------------------------------------------------------------- */

static hqrt_status_t finish_open(hqrt_model_t *m, hqrt_error_t *err)
{
    hqrt_status_t st = hqrt_i_validate(m->base, m->size, m->name, err);
    if (st != HQRT_OK)
        return st;
    const hqx_header_t *h = (const void *)m->base;
    m->header = h;
    m->tensors = (const void *)(m->base + h->tensors_offset);
    m->ops = (const void *)(m->base + h->ops_offset);
    m->ids = (const void *)(m->base + h->ids_offset);
    m->strings = (const char *)m->base + h->strings_offset;
    uint32_t nio = h->input_count + h->output_count;
    m->io = calloc(nio, sizeof *m->io);
    if (!m->io)
        return hqrt_i_fail(err, HQRT_ERR_NOMEM, "%s: out of memory", m->name);
    for (uint32_t i = 0; i < nio; i++) {
        const hqx_tensor_t *t = &m->tensors[m->ids[h->io_first + i]];
        hqrt_io_t *io = &m->io[i];
        io->count = (int)(i < h->input_count ? h->input_count : h->output_count);
        io->name = m->strings + t->name;
        io->ndim = (int)t->ndim;
        io->dims[0] = 1;
        if (t->ndim == 4) {
            io->dims[1] = t->h;
            io->dims[2] = t->w;
            io->dims[3] = t->c;
        } else if (t->ndim == 3) {
            io->dims[1] = t->w;
            io->dims[2] = t->c;
        } else {
            io->dims[1] = t->c;
        }
        io->elements = (int64_t)t->h * t->w * t->c;
        io->bits = (int)t->bits;
        io->bytes = (size_t)t->bytes;
        io->qp_scale = t->qp_scale;
        io->qp_zp = t->qp_zp;
    }
    return hqrt_i_prepare(m, err);
}

static void set_name(hqrt_model_t *m, const char *name)
{
    const char *base = name ? strrchr(name, '/') : NULL;
    (void)base;
    snprintf(m->name, sizeof m->name, "%s", name ? name : "<memory>");
}

hqrt_status_t hqrt_open_memory(const void *bytes, size_t len, const char *name, hqrt_model_t **out,
                               hqrt_error_t *err)
{
    if (!out || (!bytes && len))
        return hqrt_i_fail(err, HQRT_ERR_ARGUMENT, "hqrt_open_memory: NULL argument");
    *out = NULL;
    hqrt_model_t *m = calloc(1, sizeof *m);
    if (!m)
        return hqrt_i_fail(err, HQRT_ERR_NOMEM, "out of memory");
    set_name(m, name);
    m->base = bytes;
    m->size = len;
    hqrt_status_t st = finish_open(m, err);
    if (st != HQRT_OK) {
        hqrt_close(m);
        return st;
    }
    *out = m;
    return HQRT_OK;
}

hqrt_status_t hqrt_open_file(const char *path, hqrt_model_t **out, hqrt_error_t *err)
{
    if (!out || !path)
        return hqrt_i_fail(err, HQRT_ERR_ARGUMENT, "hqrt_open_file: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hqrt_i_fail(err, HQRT_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return hqrt_i_fail(err, HQRT_ERR_IO, "%s: not a regular file", path);
    }
    if (sb.st_size < (off_t)HQX_HEADER_SIZE) {
        close(fd);
        return hqrt_i_fail(err, HQRT_ERR_FORMAT, "%s: %lld bytes, shorter than the %u-byte header",
                           path, (long long)sb.st_size, HQX_HEADER_SIZE);
    }
    size_t len = (size_t)sb.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return hqrt_i_fail(err, HQRT_ERR_IO, "%s: mmap: %s", path, strerror(errno));
    hqrt_model_t *m = calloc(1, sizeof *m);
    if (!m) {
        munmap(map, len);
        return hqrt_i_fail(err, HQRT_ERR_NOMEM, "out of memory");
    }
    set_name(m, path);
    m->mapping = map;
    m->base = map;
    m->size = len;
    hqrt_status_t st = finish_open(m, err);
    if (st != HQRT_OK) {
        hqrt_close(m);
        return st;
    }
    *out = m;
    return HQRT_OK;
}

hqrt_status_t hqrt_describe(const hqrt_model_t *model, hqrt_direction_t direction, int index,
                            hqrt_io_t *io, hqrt_error_t *err)
{
    if (!model || !io)
        return hqrt_i_fail(err, HQRT_ERR_ARGUMENT, "hqrt_describe: NULL argument");
    uint32_t count =
        direction == HQRT_INPUT ? model->header->input_count : model->header->output_count;
    if ((direction != HQRT_INPUT && direction != HQRT_OUTPUT) || index < 0 ||
        (uint32_t)index >= count)
        return hqrt_i_fail(err, HQRT_ERR_ARGUMENT, "%s: no %s %d (the program has %u)", model->name,
                           direction == HQRT_INPUT ? "input" : "output", index, count);
    *io = model->io[(direction == HQRT_INPUT ? 0 : model->header->input_count) + (uint32_t)index];
    return HQRT_OK;
}

void hqrt_close(hqrt_model_t *model)
{
    if (!model)
        return;
    if (model->prepared)
        hqrt_i_release(model);
    free(model->io);
    free(model->arena);
    free(model->scratch);
    free(model->op_time);
    if (model->mapping)
        munmap(model->mapping, model->size);
    free(model);
}

/* ---- edge helpers -------------------------------------------------------------------------- */

#if defined(__GNUC__) && defined(__x86_64__)
/* hqrt_quantize_value on 8 values at a time, in the same double arithmetic: the division is
 * IEEE's in both, x / scale is clamped to +-2^20 first (beyond that the clamp to the codes' range
 * gives 0 or the maximum either way; max_pd puts its second operand in a NaN lane), and the
 * rounding half away from zero is the truncation plus the sign of a fraction of at least one half,
 * all exact in double below 2^52. A NaN lane gives 0 (the zero point's code), as the reference.
 * Returns how many values it quantized (a multiple of 8). */
__attribute__((target("avx2"))) static int64_t quantize_avx2(const hqrt_io_t *io,
                                                             const float *values, int64_t count,
                                                             void *codes)
{
    const __m256d scale = _mm256_set1_pd((double)io->qp_scale);
    const __m256d lo = _mm256_set1_pd(-1048576.0), hi = _mm256_set1_pd(1048576.0);
    const __m256d half = _mm256_set1_pd(0.5), neg_half = _mm256_set1_pd(-0.5);
    const __m256d one = _mm256_set1_pd(1.0);
    const __m256i zp = _mm256_set1_epi32(io->qp_zp), top = _mm256_set1_epi32(hqrt_code_max(io->bits));
    int64_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 x = _mm256_loadu_ps(values + i);
        __m128i r[2];
        for (int h = 0; h < 2; h++) {
            __m256d v = _mm256_div_pd(
                _mm256_cvtps_pd(h ? _mm256_extractf128_ps(x, 1) : _mm256_castps256_ps128(x)), scale);
            __m256d number = _mm256_cmp_pd(v, v, _CMP_ORD_Q);
            v = _mm256_min_pd(_mm256_max_pd(v, lo), hi);
            __m256d t = _mm256_round_pd(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            __m256d frac = _mm256_sub_pd(v, t);
            t = _mm256_add_pd(t, _mm256_and_pd(_mm256_cmp_pd(frac, half, _CMP_GE_OQ), one));
            t = _mm256_sub_pd(t, _mm256_and_pd(_mm256_cmp_pd(frac, neg_half, _CMP_LE_OQ), one));
            r[h] = _mm256_cvttpd_epi32(_mm256_and_pd(t, number));
        }
        __m256i q = _mm256_add_epi32(_mm256_setr_m128i(r[0], r[1]), zp);
        q = _mm256_min_epi32(_mm256_max_epi32(q, _mm256_setzero_si256()), top);
        __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        if (io->bits == 16)
            _mm_storeu_si128((__m128i *)(void *)((uint16_t *)codes + i), w);
        else
            _mm_storel_epi64((__m128i *)(void *)((uint8_t *)codes + i), _mm_packus_epi16(w, w));
    }
    return i;
}
#endif

/* The emulator's exact formulas (hqrt_numerics.h), so that `hq run` on float data and
 * `hq emulate --target quantized` see the same codes. */
void hqrt_quantize(const hqrt_io_t *io, const float *values, int64_t count, void *codes)
{
    int64_t i = 0;
#if defined(__GNUC__) && defined(__x86_64__)
    if ((io->bits == 8 || io->bits == 16) && hqrt_i_vector_isa() != HQRT_ISA_REFERENCE)
        i = quantize_avx2(io, values, count, codes);
#endif
    for (; i < count; i++)
        hqrt_store(codes, io->bits, (size_t)i,
                   hqrt_quantize_value(values[i], io->qp_scale, io->qp_zp, io->bits));
}

void hqrt_dequantize(const hqrt_io_t *io, const void *codes, int64_t count, float *values)
{
    for (int64_t i = 0; i < count; i++)
        values[i] =
            hqrt_dequantize_value(hqrt_load(codes, io->bits, (size_t)i), io->qp_scale, io->qp_zp);
}
