/* shapes.c — activation names, default params, and per-type param checks and shape inference
 * (NHWC). What each layer type is (name, arity, params) is in layer_types.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph_internal.h"
#include "util/util.h"

static const char *const activation_names[HQ_ACT_COUNT] = {
    [HQ_ACT_LINEAR] = "linear",   [HQ_ACT_RELU] = "relu",
    [HQ_ACT_RELU6] = "relu6",     [HQ_ACT_LEAKY] = "leaky",
    [HQ_ACT_PRELU] = "prelu",     [HQ_ACT_SIGMOID] = "sigmoid",
    [HQ_ACT_SILU] = "silu",       [HQ_ACT_HARDSWISH] = "hardswish",
    [HQ_ACT_HARDSIGMOID] = "hardsigmoid", [HQ_ACT_TANH] = "tanh",
    [HQ_ACT_CLIP] = "clip",       [HQ_ACT_EXP] = "exp",
    [HQ_ACT_GELU] = "gelu",
};

HQ_API const char *hq_activation_name(hq_activation_t activation)
{
    if ((int)activation < 0 || activation >= HQ_ACT_COUNT)
        return NULL;
    return activation_names[activation];
}

HQ_API hq_status_t hq_activation_from_name(const char *name, hq_activation_t *activation)
{
    for (int i = 0; name && i < HQ_ACT_COUNT; i++) {
        if (strcmp(activation_names[i], name) == 0) {
            if (activation)
                *activation = (hq_activation_t)i;
            return HQ_OK;
        }
    }
    return HQ_ERR_NOT_FOUND;
}

void hqi_layer_params_default(hq_layer_type_t type, hq_layer_params_t *p)
{
    memset(p, 0, sizeof(*p));
    p->kernel_h = p->kernel_w = 1;
    p->stride_h = p->stride_w = 1;
    p->dilation_h = p->dilation_w = 1;
    p->groups = 1;
    p->axis = 3;
    for (int i = 0; i < 3; i++)
        p->slice_step[i] = 1;
    p->block_size = 1;
    p->epsilon = 1e-5f;
    for (int i = 0; i < HQ_TENSOR_MAX_DIMS; i++)
        p->perm[i] = i;
    p->has_bias = hqi_layer_traits(type)->has_weights;
}

void hqi_layer_params_free(hq_layer_params_t *p)
{
    free(p->split_sizes);
    free(p->mean);
    free(p->std);
    p->split_sizes = NULL;
    p->mean = p->std = NULL;
    p->split_count = 0;
    p->channels = 0;
}

void hqi_shape_format(const hq_shape_t *shape, char *buf, size_t size)
{
    size_t used = 0;
    if (size == 0)
        return;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < shape->ndim && i < HQ_TENSOR_MAX_DIMS && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? ", " : "",
                                 (long long)shape->dims[i]);
    if (used < size)
        snprintf(buf + used, size - used, "]");
}

bool hqi_shape_equal(const hq_shape_t *a, const hq_shape_t *b)
{
    if (a->ndim != b->ndim || a->ndim < 1 || a->ndim > HQ_TENSOR_MAX_DIMS)
        return false;
    if (a->dims[0] != b->dims[0] && a->dims[0] != -1 && b->dims[0] != -1)
        return false;
    for (int i = 1; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i])
            return false;
    return true;
}

/* Elements per batch item (product of dims 1..), or -1 beyond 2^62. */
static int64_t shape_elements(const hq_shape_t *s)
{
    int64_t n = 1;
    for (int i = 1; i < s->ndim; i++) {
        if (s->dims[i] < 0 || (s->dims[i] > 0 && n > ((int64_t)1 << 62) / s->dims[i]))
            return -1;
        n *= s->dims[i];
    }
    return n;
}

/* ---- inference --------------------------------------------------------------------------- */

typedef struct infer_ctx {
    hq_layer_t *layer;
    const hqi_node_t *node;
    const char *file;
    hq_error_t *err;
} infer_ctx_t;

#define FAIL(ctx, ...) fail_layer(ctx, __VA_ARGS__)

__attribute__((format(printf, 2, 3))) static hq_status_t fail_layer(infer_ctx_t *ctx,
                                                                     const char *fmt, ...)
{
    char detail[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    return hqi_error(ctx->err, HQ_ERR_INVALID, "%s: layer '%s': %s", ctx->file, ctx->layer->name,
                     detail);
}

static const hq_shape_t *in_shape(infer_ctx_t *ctx, int i)
{
    return &ctx->layer->input_shapes[i];
}

static hq_status_t need_image(infer_ctx_t *ctx, int i)
{
    const hq_shape_t *s = in_shape(ctx, i);
    if (s->ndim != 4) {
        char buf[160];
        hqi_shape_format(s, buf, sizeof(buf));
        return FAIL(ctx, "input %d must be an image [-1, H, W, C], got %s", i, buf);
    }
    return HQ_OK;
}

static hq_status_t set_out(infer_ctx_t *ctx, const hq_shape_t *out)
{
    for (int i = 1; i < out->ndim; i++) {
        if (out->dims[i] < 1 || out->dims[i] > HQI_GRAPH_MAX_DIM) {
            char buf[160];
            hqi_shape_format(out, buf, sizeof(buf));
            return FAIL(ctx, "inferred output shape %s has an empty or too large dimension",
                        buf);
        }
    }
    ctx->layer->output_shape = *out;
    return HQ_OK;
}

static hq_status_t check_activation(infer_ctx_t *ctx)
{
    if (hqi_layer_traits(ctx->layer->type)->fused_activation &&
        !hq_activation_name(ctx->layer->params.activation))
        return FAIL(ctx, "unknown activation %d", (int)ctx->layer->params.activation);
    return HQ_OK;
}

/* Pads for one spatial axis given the padding mode; returns the output extent or -1. */
static int64_t conv_axis(hq_padding_t padding, int64_t in, int kernel, int stride, int dilation,
                         int *pad_begin, int *pad_end)
{
    int64_t effective = (int64_t)dilation * (kernel - 1) + 1;
    if (padding == HQ_PADDING_VALID) {
        *pad_begin = *pad_end = 0;
    } else if (padding == HQ_PADDING_SAME || padding == HQ_PADDING_SAME_TENSORFLOW) {
        int64_t out = (in + stride - 1) / stride;
        int64_t total = (out - 1) * stride + effective - in;
        if (total < 0)
            total = 0;
        int64_t small = total / 2, large = total - small;
        *pad_begin = (int)(padding == HQ_PADDING_SAME ? large : small);
        *pad_end = (int)(padding == HQ_PADDING_SAME ? small : large);
    }
    int64_t span = in + *pad_begin + *pad_end - effective;
    if (span < 0)
        return -1;
    return span / stride + 1;
}

static hq_status_t check_window(infer_ctx_t *ctx)
{
    hq_layer_params_t *p = &ctx->layer->params;
    if (p->kernel_h < 1 || p->kernel_w < 1 || p->kernel_h > HQI_GRAPH_MAX_DIM ||
        p->kernel_w > HQI_GRAPH_MAX_DIM)
        return FAIL(ctx, "kernel_shape: kernel %dx%d must be at least 1x1", p->kernel_h,
                    p->kernel_w);
    if (p->stride_h < 1 || p->stride_w < 1)
        return FAIL(ctx, "strides: stride %dx%d must be at least 1", p->stride_h, p->stride_w);
    if (p->dilation_h < 1 || p->dilation_w < 1)
        return FAIL(ctx, "dilations: dilation %dx%d must be at least 1", p->dilation_h,
                    p->dilation_w);
    if ((int64_t)p->dilation_h * (p->kernel_h - 1) + 1 > HQI_GRAPH_MAX_DIM ||
        (int64_t)p->dilation_w * (p->kernel_w - 1) + 1 > HQI_GRAPH_MAX_DIM)
        return FAIL(ctx, "kernel %dx%d with dilation %dx%d spans more than 2^30 pixels",
                    p->kernel_h, p->kernel_w, p->dilation_h, p->dilation_w);
    if ((int)p->padding < 0 || p->padding > HQ_PADDING_EXPLICIT)
        return FAIL(ctx, "padding: unknown padding %d", (int)p->padding);
    for (int i = 0; i < 4; i++)
        if (p->pads[i] < 0 || p->pads[i] > HQI_GRAPH_MAX_DIM)
            return FAIL(ctx, "pads: pad %d must be between 0 and 2^30", p->pads[i]);
    return HQ_OK;
}

/* Spatial output of a windowed op (conv, dw, pools), resolving pads. */
static hq_status_t window_output(infer_ctx_t *ctx, hq_shape_t *out)
{
    hq_layer_params_t *p = &ctx->layer->params;
    const hq_shape_t *in = in_shape(ctx, 0);
    int64_t oh = conv_axis(p->padding, in->dims[1], p->kernel_h, p->stride_h, p->dilation_h,
                           &p->pads[0], &p->pads[2]);
    int64_t ow = conv_axis(p->padding, in->dims[2], p->kernel_w, p->stride_w, p->dilation_w,
                           &p->pads[1], &p->pads[3]);
    if (oh < 1 || ow < 1)
        return FAIL(ctx, "kernel %dx%d (dilation %dx%d) is larger than the padded input %lldx%lld",
                    p->kernel_h, p->kernel_w, p->dilation_h, p->dilation_w,
                    (long long)(in->dims[1] + p->pads[0] + p->pads[2]),
                    (long long)(in->dims[2] + p->pads[1] + p->pads[3]));
    *out = *in;
    out->dims[1] = oh;
    out->dims[2] = ow;
    return HQ_OK;
}

static hq_status_t check_second_operand(infer_ctx_t *ctx, const hq_shape_t *out)
{
    hq_layer_t *l = ctx->layer;
    if (l->params.elementwise_add && l->input_count != 2)
        return FAIL(ctx, "elementwise_add needs 2 inputs, has %d", l->input_count);
    if (!l->params.elementwise_add && l->input_count != 1)
        return FAIL(ctx, "has %d inputs, expected 1 (2 only with elementwise_add)",
                    l->input_count);
    if (l->input_count == 2 && !hqi_shape_equal(in_shape(ctx, 1), out)) {
        char a[160], b[160];
        hqi_shape_format(in_shape(ctx, 1), a, sizeof(a));
        hqi_shape_format(out, b, sizeof(b));
        return FAIL(ctx, "elementwise_add operand %s does not match the output %s", a, b);
    }
    return HQ_OK;
}

static hq_status_t infer_conv(infer_ctx_t *ctx)
{
    hq_layer_params_t *p = &ctx->layer->params;
    hq_status_t st;
    if ((st = need_image(ctx, 0)) || (st = check_window(ctx)) || (st = check_activation(ctx)))
        return st;
    int64_t c = in_shape(ctx, 0)->dims[3];
    if (p->kernel_in < 1 || p->kernel_out < 1)
        return FAIL(ctx, "kernel_shape: channels %d -> %d must be at least 1", p->kernel_in,
                    p->kernel_out);
    if (ctx->layer->type == HQ_LAYER_DW) {
        /* Depthwise: one group per input channel, kernel [kh, kw, 1, C * multiplier]. */
        if (p->kernel_in != 1 || p->kernel_out % c != 0)
            return FAIL(ctx,
                        "kernel_shape: depthwise kernel [%d, %d, %d, %d] needs 1 input channel "
                        "per group and a multiple of the %lld input channels out",
                        p->kernel_h, p->kernel_w, p->kernel_in, p->kernel_out, (long long)c);
        p->groups = (int)c;
    }
    if (p->groups < 1)
        return FAIL(ctx, "groups %d must be at least 1", p->groups);
    if ((int64_t)p->kernel_in * p->groups != c || p->kernel_out % p->groups != 0)
        return FAIL(ctx,
                    "groups %d do not divide the channels: kernel_shape [%d, %d, %d, %d] on %lld "
                    "input channels",
                    p->groups, p->kernel_h, p->kernel_w, p->kernel_in, p->kernel_out,
                    (long long)c);
    hq_shape_t out;
    if ((st = window_output(ctx, &out)))
        return st;
    out.dims[3] = p->kernel_out;
    if ((st = check_second_operand(ctx, &out)))
        return st;
    return set_out(ctx, &out);
}

static hq_status_t infer_deconv(infer_ctx_t *ctx)
{
    hq_layer_params_t *p = &ctx->layer->params;
    hq_status_t st;
    if ((st = need_image(ctx, 0)) || (st = check_window(ctx)) || (st = check_activation(ctx)))
        return st;
    const hq_shape_t *in = in_shape(ctx, 0);
    if (p->kernel_in < 1 || p->kernel_out < 1 || p->groups < 1)
        return FAIL(ctx, "kernel_shape: channels %d -> %d and groups %d must be at least 1",
                    p->kernel_in, p->kernel_out, p->groups);
    if ((int64_t)p->kernel_in * p->groups != in->dims[3] || p->kernel_out % p->groups != 0)
        return FAIL(ctx, "groups %d do not divide the channels: %d per group on %lld channels",
                    p->groups, p->kernel_in, (long long)in->dims[3]);
    if (p->output_pads[0] < 0 || p->output_pads[1] < 0 || p->output_pads[0] >= p->stride_h ||
        p->output_pads[1] >= p->stride_w)
        return FAIL(ctx, "output_padding [%d, %d] must be between 0 and stride - 1",
                    p->output_pads[0], p->output_pads[1]);
    hq_shape_t out = *in;
    int kernel[2] = {p->kernel_h, p->kernel_w}, stride[2] = {p->stride_h, p->stride_w};
    int dilation[2] = {p->dilation_h, p->dilation_w};
    for (int a = 0; a < 2; a++) {
        int64_t full = (in->dims[1 + a] - 1) * stride[a] + (int64_t)dilation[a] * (kernel[a] - 1) +
                       1 + p->output_pads[a];
        if (p->padding == HQ_PADDING_VALID) {
            p->pads[a] = p->pads[a + 2] = 0;
        } else if (p->padding != HQ_PADDING_EXPLICIT) {
            int64_t total = full - in->dims[1 + a] * stride[a];
            if (total < 0)
                total = 0;
            int64_t small = total / 2, large = total - small;
            p->pads[a] = (int)(p->padding == HQ_PADDING_SAME ? large : small);
            p->pads[a + 2] = (int)(p->padding == HQ_PADDING_SAME ? small : large);
        }
        out.dims[1 + a] = full - p->pads[a] - p->pads[a + 2];
    }
    out.dims[3] = p->kernel_out;
    return set_out(ctx, &out);
}

static hq_status_t infer_dense(infer_ctx_t *ctx)
{
    hq_layer_params_t *p = &ctx->layer->params;
    hq_status_t st;
    if ((st = check_activation(ctx)))
        return st;
    const hq_shape_t *in = in_shape(ctx, 0);
    int64_t features = shape_elements(in);
    if (p->kernel_in < 1 || p->kernel_out < 1)
        return FAIL(ctx, "kernel_shape [%d, %d] must be positive", p->kernel_in, p->kernel_out);
    if (features != p->kernel_in)
        return FAIL(ctx, "kernel_shape expects %d input features, the input has %lld",
                    p->kernel_in, (long long)features);
    hq_shape_t out = {.ndim = 2, .dims = {in->dims[0], p->kernel_out}};
    return set_out(ctx, &out);
}

static hq_status_t infer_same(infer_ctx_t *ctx)
{
    hq_status_t st;
    if ((st = check_activation(ctx)))
        return st;
    return set_out(ctx, in_shape(ctx, 0));
}

static hq_status_t infer_batch_norm(infer_ctx_t *ctx)
{
    if (!(ctx->layer->params.epsilon >= 0.0f))
        return FAIL(ctx, "epsilon must not be negative");
    return infer_same(ctx);
}

static hq_status_t infer_normalization(infer_ctx_t *ctx)
{
    const hq_layer_params_t *p = &ctx->layer->params;
    const hq_shape_t *in = in_shape(ctx, 0);
    if (p->channels < 1 || !p->mean || !p->std)
        return FAIL(ctx, "normalization needs mean and std");
    if (p->channels != 1 && p->channels != in->dims[in->ndim - 1])
        return FAIL(ctx, "mean/std have %d values for %lld channels", p->channels,
                    (long long)in->dims[in->ndim - 1]);
    for (int i = 0; i < p->channels; i++)
        if (!(p->std[i] != 0.0f))
            return FAIL(ctx, "std[%d] must not be zero", i);
    return infer_same(ctx);
}

static hq_status_t infer_pool(infer_ctx_t *ctx)
{
    hq_status_t st;
    hq_shape_t out;
    if ((st = need_image(ctx, 0)) || (st = check_window(ctx)) || (st = window_output(ctx, &out)))
        return st;
    return set_out(ctx, &out);
}

static hq_status_t infer_global_pool(infer_ctx_t *ctx)
{
    hq_status_t st;
    if ((st = need_image(ctx, 0)))
        return st;
    hq_shape_t out = *in_shape(ctx, 0);
    out.dims[1] = out.dims[2] = 1;
    return set_out(ctx, &out);
}

static hq_status_t infer_elementwise(infer_ctx_t *ctx)
{
    hq_status_t st;
    if ((st = check_activation(ctx)))
        return st;
    const hq_shape_t *a = in_shape(ctx, 0), *b = in_shape(ctx, 1);
    char sa[160], sb[160];
    hqi_shape_format(a, sa, sizeof(sa));
    hqi_shape_format(b, sb, sizeof(sb));
    if (a->ndim != b->ndim)
        return FAIL(ctx, "operands %s and %s have different ranks", sa, sb);
    hq_shape_t out = *a;
    for (int i = 1; i < a->ndim; i++) {
        if (a->dims[i] != b->dims[i] && a->dims[i] != 1 && b->dims[i] != 1)
            return FAIL(ctx, "operands %s and %s do not broadcast (axis %d)", sa, sb, i);
        out.dims[i] = a->dims[i] > b->dims[i] ? a->dims[i] : b->dims[i];
    }
    return set_out(ctx, &out);
}

static hq_status_t check_axis(infer_ctx_t *ctx, const hq_shape_t *s)
{
    int axis = ctx->layer->params.axis;
    if (axis < 1 || axis >= s->ndim)
        return FAIL(ctx, "axis %d is out of range for a rank-%d tensor (1 .. %d)", axis, s->ndim,
                    s->ndim - 1);
    return HQ_OK;
}

static hq_status_t infer_concat(infer_ctx_t *ctx)
{
    hq_status_t st;
    const hq_shape_t *first = in_shape(ctx, 0);
    if ((st = check_axis(ctx, first)))
        return st;
    int axis = ctx->layer->params.axis;
    hq_shape_t out = *first;
    out.dims[axis] = 0;
    for (int i = 0; i < ctx->layer->input_count; i++) {
        const hq_shape_t *s = in_shape(ctx, i);
        bool ok = s->ndim == first->ndim;
        for (int d = 1; ok && d < s->ndim; d++)
            ok = d == axis || s->dims[d] == first->dims[d];
        if (!ok) {
            char a[160], b[160];
            hqi_shape_format(first, a, sizeof(a));
            hqi_shape_format(s, b, sizeof(b));
            return FAIL(ctx, "input %d %s does not match input 0 %s outside axis %d", i, b, a,
                        axis);
        }
        out.dims[axis] += s->dims[axis];
    }
    return set_out(ctx, &out);
}

static hq_status_t infer_splitter(infer_ctx_t *ctx)
{
    hq_status_t st;
    const hq_layer_params_t *p = &ctx->layer->params;
    const hq_shape_t *in = in_shape(ctx, 0);
    if ((st = check_axis(ctx, in)))
        return st;
    if (p->split_count < 1 || !p->split_sizes)
        return FAIL(ctx, "split_sizes is missing");
    int64_t sum = 0;
    for (int i = 0; i < p->split_count; i++) {
        if (p->split_sizes[i] < 1)
            return FAIL(ctx, "split_sizes[%d] = %d must be at least 1", i, p->split_sizes[i]);
        sum += p->split_sizes[i];
    }
    if (sum != in->dims[p->axis])
        return FAIL(ctx, "split_sizes sum to %lld, the input has %lld along axis %d",
                    (long long)sum, (long long)in->dims[p->axis], p->axis);
    hq_shape_t out = *in;
    out.dims[p->axis] = p->split_sizes[0];
    return set_out(ctx, &out);
}

static hq_status_t infer_slice(infer_ctx_t *ctx)
{
    hq_status_t st;
    const hq_layer_params_t *p = &ctx->layer->params;
    if ((st = need_image(ctx, 0)))
        return st;
    hq_shape_t out = *in_shape(ctx, 0);
    static const char axis_names[3] = {'H', 'W', 'C'};
    for (int a = 0; a < 3; a++) {
        int64_t dim = out.dims[1 + a];
        if (p->slice_step[a] < 1)
            return FAIL(ctx, "slice_step on %c is %d, must be at least 1", axis_names[a],
                        p->slice_step[a]);
        if (p->slice_begin[a] < 0 || p->slice_end[a] > dim || p->slice_begin[a] >= p->slice_end[a])
            return FAIL(ctx, "slice [%d, %d) on %c is out of range for extent %lld",
                        p->slice_begin[a], p->slice_end[a], axis_names[a], (long long)dim);
        out.dims[1 + a] = ((int64_t)p->slice_end[a] - p->slice_begin[a] + p->slice_step[a] - 1) /
                          p->slice_step[a];
    }
    return set_out(ctx, &out);
}

static hq_status_t infer_pad(infer_ctx_t *ctx)
{
    hq_status_t st;
    const hq_layer_params_t *p = &ctx->layer->params;
    if ((st = need_image(ctx, 0)))
        return st;
    if ((int)p->pad_mode < 0 || p->pad_mode > HQ_PAD_EDGE)
        return FAIL(ctx, "pad_mode: unknown mode %d", (int)p->pad_mode);
    const int before[3] = {p->pads[0], p->pads[1], p->pad_channels[0]};
    const int after[3] = {p->pads[2], p->pads[3], p->pad_channels[1]};
    hq_shape_t out = *in_shape(ctx, 0);
    for (int a = 0; a < 3; a++) {
        if (before[a] < 0 || after[a] < 0 || before[a] > HQI_GRAPH_MAX_DIM ||
            after[a] > HQI_GRAPH_MAX_DIM)
            return FAIL(ctx, "pads must be between 0 and 2^30, got %d and %d on axis %d",
                        before[a], after[a], a + 1);
        if (p->pad_mode == HQ_PAD_REFLECT && (before[a] >= out.dims[1 + a] ||
                                              after[a] >= out.dims[1 + a]))
            return FAIL(ctx, "reflect pads %d/%d must be smaller than the extent %lld on axis %d",
                        before[a], after[a], (long long)out.dims[1 + a], a + 1);
        out.dims[1 + a] += (int64_t)before[a] + after[a];
    }
    return set_out(ctx, &out);
}

/* The stored shape (from `.hn` or the builder) is the answer; check what can be checked. */
static hq_status_t stored_shape(infer_ctx_t *ctx, hq_shape_t *out)
{
    const hqi_node_t *node = ctx->node;
    const hq_shape_t *s = NULL;
    if (node && node->stored_shape_count > 0)
        s = &node->stored_shapes[0];
    else if (ctx->layer->output_shape.ndim > 0)
        s = &ctx->layer->output_shape;
    if (!s)
        return FAIL(ctx, "output shape is not given (%s takes it from output_shapes)",
                    hq_layer_type_name(ctx->layer->type));
    char buf[160];
    hqi_shape_format(s, buf, sizeof(buf));
    if (s->ndim < 1 || s->ndim > HQ_TENSOR_MAX_DIMS)
        return FAIL(ctx, "output shape %s has a bad rank", buf);
    if (s->dims[0] < -1 || s->dims[0] == 0 || s->dims[0] > HQI_GRAPH_MAX_DIM)
        return FAIL(ctx, "output shape %s has a bad batch dimension", buf);
    for (int i = 1; i < s->ndim; i++)
        if (s->dims[i] < 1 || s->dims[i] > HQI_GRAPH_MAX_DIM)
            return FAIL(ctx, "output shape %s has a dimension that is not positive", buf);
    *out = *s;
    return HQ_OK;
}

static hq_status_t infer_resize(infer_ctx_t *ctx)
{
    hq_status_t st;
    const hq_layer_params_t *p = &ctx->layer->params;
    hq_shape_t out;
    if ((st = need_image(ctx, 0)) || (st = stored_shape(ctx, &out)))
        return st;
    if ((int)p->resize_method < 0 || p->resize_method > HQ_RESIZE_BILINEAR)
        return FAIL(ctx, "resize_method: unknown method %d", (int)p->resize_method);
    if ((int)p->resize_coords < 0 || p->resize_coords > HQ_RESIZE_TF_HALF_PIXEL_FOR_NN)
        return FAIL(ctx, "resize_coords: unknown mode %d", (int)p->resize_coords);
    for (int i = 0; i < 2; i++)
        if (!(p->resize_scales[i] >= 0 && p->resize_scales[i] < 65536))
            return FAIL(ctx, "resize_scales: %g is not a scale", p->resize_scales[i]);
    const hq_shape_t *in = in_shape(ctx, 0);
    if (out.ndim != 4 || out.dims[3] != in->dims[3]) {
        char a[160], b[160];
        hqi_shape_format(&out, a, sizeof(a));
        hqi_shape_format(in, b, sizeof(b));
        return FAIL(ctx, "output shape %s must keep the channels of the input %s", a, b);
    }
    out.dims[0] = in->dims[0];
    return set_out(ctx, &out);
}

static hq_status_t infer_depth_space(infer_ctx_t *ctx)
{
    hq_status_t st;
    if ((st = need_image(ctx, 0)))
        return st;
    int64_t b = ctx->layer->params.block_size;
    hq_shape_t out = *in_shape(ctx, 0);
    if (b < 1 || b > 4096)
        return FAIL(ctx, "block_size %lld must be between 1 and 4096", (long long)b);
    if (ctx->layer->type == HQ_LAYER_DEPTH_TO_SPACE) {
        if (out.dims[3] % (b * b))
            return FAIL(ctx, "%lld channels are not divisible by block_size^2 = %lld",
                        (long long)out.dims[3], (long long)(b * b));
        out.dims[1] *= b;
        out.dims[2] *= b;
        out.dims[3] /= b * b;
    } else {
        if (out.dims[1] % b || out.dims[2] % b)
            return FAIL(ctx, "input %lldx%lld is not divisible by block_size %lld",
                        (long long)out.dims[1], (long long)out.dims[2], (long long)b);
        out.dims[1] /= b;
        out.dims[2] /= b;
        out.dims[3] *= b * b;
    }
    return set_out(ctx, &out);
}

static hq_status_t infer_softmax(infer_ctx_t *ctx)
{
    hq_status_t st;
    if ((st = check_axis(ctx, in_shape(ctx, 0))))
        return st;
    return set_out(ctx, in_shape(ctx, 0));
}

static hq_status_t infer_reshape(infer_ctx_t *ctx)
{
    hq_status_t st;
    hq_shape_t out;
    if ((st = stored_shape(ctx, &out)))
        return st;
    const hq_shape_t *in = in_shape(ctx, 0);
    int64_t a = shape_elements(in), b = shape_elements(&out);
    if (a != b || a < 0) {
        char sa[160], sb[160];
        hqi_shape_format(in, sa, sizeof(sa));
        hqi_shape_format(&out, sb, sizeof(sb));
        return FAIL(ctx, "reshape from %s to %s changes the element count", sa, sb);
    }
    out.dims[0] = in->dims[0];
    return set_out(ctx, &out);
}

static hq_status_t infer_transpose(infer_ctx_t *ctx)
{
    const int *perm = ctx->layer->params.perm;
    const hq_shape_t *in = in_shape(ctx, 0);
    bool seen[HQ_TENSOR_MAX_DIMS] = {false};
    hq_shape_t out = *in;
    if (perm[0] != 0)
        return FAIL(ctx, "perm must keep the batch axis first");
    for (int i = 0; i < in->ndim; i++) {
        if (perm[i] < 0 || perm[i] >= in->ndim || seen[perm[i]])
            return FAIL(ctx, "perm is not a permutation of the %d axes", in->ndim);
        seen[perm[i]] = true;
        out.dims[i] = in->dims[perm[i]];
    }
    return set_out(ctx, &out);
}

static hq_status_t infer_channel_shuffle(infer_ctx_t *ctx)
{
    const hq_shape_t *in = in_shape(ctx, 0);
    int64_t c = in->dims[in->ndim - 1], g = ctx->layer->params.groups;
    if (g < 1 || c % g != 0)
        return FAIL(ctx, "groups %lld must be at least 1 and divide the %lld channels",
                    (long long)g, (long long)c);
    return set_out(ctx, in);
}

/* a [N, I, K, C] times b [N, K, J, C], one matrix product per channel: [N, I, J, C]. */
static hq_status_t infer_matmul(infer_ctx_t *ctx)
{
    hq_status_t st;
    if ((st = need_image(ctx, 0)) || (st = need_image(ctx, 1)))
        return st;
    const hq_shape_t *a = in_shape(ctx, 0), *b = in_shape(ctx, 1);
    if (a->dims[2] != b->dims[1] || a->dims[3] != b->dims[3])
        return FAIL(ctx,
                    "matmul of [-1, %lld, %lld, %lld] and [-1, %lld, %lld, %lld]: the first's W "
                    "must be the second's H and the channels equal",
                    (long long)a->dims[1], (long long)a->dims[2], (long long)a->dims[3],
                    (long long)b->dims[1], (long long)b->dims[2], (long long)b->dims[3]);
    hq_shape_t out = {4, {-1, a->dims[1], b->dims[2], a->dims[3]}};
    return set_out(ctx, &out);
}

static hq_status_t infer_reduce(infer_ctx_t *ctx)
{
    hq_status_t st;
    hq_shape_t out = *in_shape(ctx, 0);
    if ((st = check_axis(ctx, &out)))
        return st;
    out.dims[ctx->layer->params.axis] = 1;
    return set_out(ctx, &out);
}

static hq_status_t infer_argmax(infer_ctx_t *ctx)
{
    hq_shape_t out = *in_shape(ctx, 0);
    out.dims[out.ndim - 1] = 1;
    return set_out(ctx, &out);
}

static hq_status_t infer_stored(infer_ctx_t *ctx)
{
    hq_shape_t out;
    hq_status_t st = stored_shape(ctx, &out);
    if (st)
        return st;
    if (out.ndim < 2)
        return FAIL(ctx, "shape needs a batch and at least one more axis");
    ctx->layer->output_shape = out;
    return HQ_OK;
}

typedef hq_status_t (*infer_fn)(infer_ctx_t *ctx);

/* Shape rule of each type. */
static const infer_fn infer_table[HQ_LAYER_TYPE_COUNT] = {
    [HQ_LAYER_INPUT] = infer_stored,
    [HQ_LAYER_OUTPUT] = infer_same,
    [HQ_LAYER_CONV] = infer_conv,
    [HQ_LAYER_DW] = infer_conv,
    [HQ_LAYER_DECONV] = infer_deconv,
    [HQ_LAYER_DENSE] = infer_dense,
    [HQ_LAYER_BATCH_NORM] = infer_batch_norm,
    [HQ_LAYER_ACTIVATION] = infer_same,
    [HQ_LAYER_NORMALIZATION] = infer_normalization,
    [HQ_LAYER_MAXPOOL] = infer_pool,
    [HQ_LAYER_AVGPOOL] = infer_pool,
    [HQ_LAYER_GLOBAL_AVG_POOL] = infer_global_pool,
    [HQ_LAYER_EW_ADD] = infer_elementwise,
    [HQ_LAYER_EW_SUB] = infer_elementwise,
    [HQ_LAYER_EW_MULT] = infer_elementwise,
    [HQ_LAYER_EW_DIV] = infer_elementwise,
    [HQ_LAYER_EW_MAX] = infer_elementwise,
    [HQ_LAYER_EW_MIN] = infer_elementwise,
    [HQ_LAYER_CONCAT] = infer_concat,
    [HQ_LAYER_FEATURE_SPLITTER] = infer_splitter,
    [HQ_LAYER_SLICE] = infer_slice,
    [HQ_LAYER_PAD] = infer_pad,
    [HQ_LAYER_RESIZE] = infer_resize,
    [HQ_LAYER_DEPTH_TO_SPACE] = infer_depth_space,
    [HQ_LAYER_SPACE_TO_DEPTH] = infer_depth_space,
    [HQ_LAYER_SOFTMAX] = infer_softmax,
    [HQ_LAYER_CONST_INPUT] = infer_stored,
    [HQ_LAYER_RESHAPE] = infer_reshape,
    [HQ_LAYER_TRANSPOSE] = infer_transpose,
    [HQ_LAYER_REDUCE_MAX] = infer_reduce,
    [HQ_LAYER_REDUCE_SUM] = infer_reduce,
    [HQ_LAYER_ARGMAX] = infer_argmax,
    [HQ_LAYER_CHANNEL_SHUFFLE] = infer_channel_shuffle,
    [HQ_LAYER_LAYER_NORM] = infer_same,
    [HQ_LAYER_MATMUL] = infer_matmul,
};

hq_status_t hqi_layer_infer_shape(hq_layer_t *layer, const hqi_node_t *node, const char *file,
                                  hq_error_t *err)
{
    infer_ctx_t ctx = {layer, node, file, err};
    for (int i = 0; i < layer->input_count; i++) {
        const hq_shape_t *s = &layer->input_shapes[i];
        if (s->ndim < 2 || s->ndim > HQ_TENSOR_MAX_DIMS) {
            char buf[160];
            hqi_shape_format(s, buf, sizeof(buf));
            return FAIL(&ctx, "input %d has shape %s, needs a batch and at least one more axis", i,
                        buf);
        }
    }
    if ((int)layer->type < 0 || layer->type >= HQ_LAYER_TYPE_COUNT)
        return FAIL(&ctx, "unknown type %d", (int)layer->type);
    return infer_table[layer->type](&ctx);
}
