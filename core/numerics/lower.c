/* lower.c — hqi_lower_layer: each quantized layer type as the runtime op and kernel arguments
 * that compute it (lower.h). One function per family of types, one table from type to function. */
#include <string.h>

#include "graph/layer_types.h"
#include "numerics/lower.h"
#include "util/util.h"

/* Everything one lowering reads. */
typedef struct lowering {
    const hq_graph_t *graph;
    const hq_layer_t *layer;
    const hqi_qlayer_t *q;     /* the layer's params */
    const hqi_qmodel_t *model; /* for the inputs' encodings */
    hq_error_t *err;
} lowering_t;

typedef hq_status_t (*lower_fn)(const lowering_t *c, hqi_op_t *op);

static size_t code_bytes(int bits)
{
    return bits == 16 ? 2 : 1;
}

static const hqi_qlayer_t *input_q(const lowering_t *c, int k)
{
    return &c->model->layers[c->layer->inputs[k]];
}

/* Per-sample shape of the layer's input k. */
static hq_shape_t input_shape(const lowering_t *c, int k)
{
    return hq_layer_port_shape(hq_graph_layer(c->graph, c->layer->inputs[k]),
                               c->layer->input_ports[k]);
}

/* Per-sample element count (batch dropped). */
static int64_t sample_elements(const hq_shape_t *s)
{
    int64_t n = 1;
    for (int d = 1; d < s->ndim; d++)
        n *= s->dims[d];
    return n;
}

static hqi_op_data_t data(const void *p, size_t size)
{
    return p ? (hqi_op_data_t){p, size} : (hqi_op_data_t){NULL, 0};
}

static hq_status_t refuse(const lowering_t *c, const char *what)
{
    return hqi_error(c->err, HQ_ERR_UNSUPPORTED, "%s", what);
}

/* ---- arithmetic ------------------------------------------------------------------------------ */

/* conv, dw, dense, batch_norm, normalization (the last two as a 1x1 depthwise conv). */
static hq_status_t lower_conv(const lowering_t *c, hqi_op_t *op)
{
    const hq_layer_t *l = c->layer;
    const hq_layer_params_t *p = &l->params;
    const hqi_qlayer_t *q = c->q, *in = input_q(c, 0);
    bool dense = l->type == HQ_LAYER_DENSE;
    bool affine = l->type == HQ_LAYER_BATCH_NORM || l->type == HQ_LAYER_NORMALIZATION;
    hq_shape_t os = hq_layer_port_shape(l, 0), is = input_shape(c, 0);
    int64_t cout = os.dims[os.ndim - 1];
    hqrt_conv_params_t *cp = &op->u.conv.params;
    *cp = (hqrt_conv_params_t){.groups = dense ? 1 : p->groups,
                               .in_bits = in->bits,
                               .in_zp = in->zp,
                               .weight_bits = q->weight_bits,
                               .out = q->stage};
    int64_t taps = 1, cpg = 1;
    if (affine) {
        cp->kernel_h = cp->kernel_w = cp->stride_h = cp->stride_w = 1;
        cp->dilation_h = cp->dilation_w = 1;
        cp->groups = (int32_t)cout;
    } else if (!dense) {
        cp->kernel_h = p->kernel_h;
        cp->kernel_w = p->kernel_w;
        cp->stride_h = p->stride_h;
        cp->stride_w = p->stride_w;
        cp->dilation_h = p->dilation_h;
        cp->dilation_w = p->dilation_w;
        cp->pad_top = p->pads[0];
        cp->pad_left = p->pads[1];
        cp->pad_bottom = p->pads[2];
        cp->pad_right = p->pads[3];
        taps = (int64_t)p->kernel_h * p->kernel_w;
        cpg = p->groups > 0 ? is.dims[is.ndim - 1] / p->groups : 0;
    }
    if (!q->kernel || (q->weight_bits != 4 && q->weight_bits != 8 && q->weight_bits != 16))
        return refuse(c, "no integer kernel in the quantized params");
    int64_t wcount = dense ? sample_elements(&is) * cout : taps * cpg * cout;
    op->code = dense ? HQX_OP_DENSE : HQX_OP_CONV;
    op->input_count = 1;
    op->u.conv.weights = data(q->kernel, (size_t)wcount * code_bytes(q->weight_bits));
    op->u.conv.bias = data(q->bias, (size_t)cout * sizeof(int64_t));
    if (q->has_addend && !dense && !affine) {
        if (l->input_count < 2)
            return refuse(c, "elementwise_add without a second input");
        op->u.conv.addend_multiplier = q->input_multiplier[0];
        op->u.conv.addend_shift = q->input_shift[0];
        op->input_count = 2;
    }
    return HQ_OK;
}

static hq_status_t lower_deconv(const lowering_t *c, hqi_op_t *op)
{
    const hq_layer_params_t *p = &c->layer->params;
    const hqi_qlayer_t *q = c->q, *in = input_q(c, 0);
    hq_shape_t os = hq_layer_port_shape(c->layer, 0), is = input_shape(c, 0);
    int64_t cout = os.dims[os.ndim - 1];
    int64_t cpg = p->groups > 0 ? is.dims[is.ndim - 1] / p->groups : 0;
    op->u.conv.params = (hqrt_conv_params_t){.kernel_h = p->kernel_h,
                                             .kernel_w = p->kernel_w,
                                             .stride_h = p->stride_h,
                                             .stride_w = p->stride_w,
                                             .dilation_h = p->dilation_h,
                                             .dilation_w = p->dilation_w,
                                             .pad_top = p->pads[0],
                                             .pad_left = p->pads[1],
                                             .pad_bottom = p->pads[2],
                                             .pad_right = p->pads[3],
                                             .output_pad_h = p->output_pads[0],
                                             .output_pad_w = p->output_pads[1],
                                             .groups = p->groups,
                                             .in_bits = in->bits,
                                             .in_zp = in->zp,
                                             .weight_bits = q->weight_bits,
                                             .out = q->stage};
    if (!q->kernel)
        return refuse(c, "no integer kernel in the quantized params");
    int64_t wcount = (int64_t)p->kernel_h * p->kernel_w * cpg * cout;
    op->code = HQX_OP_DECONV;
    op->input_count = 1;
    op->u.conv.weights = data(q->kernel, (size_t)wcount * code_bytes(q->weight_bits));
    op->u.conv.bias = data(q->bias, (size_t)cout * sizeof(int64_t));
    return HQ_OK;
}

static hq_status_t lower_pool(const lowering_t *c, hqi_op_t *op)
{
    const hq_layer_t *l = c->layer;
    const hq_layer_params_t *p = &l->params;
    const hqi_qlayer_t *in = input_q(c, 0);
    hqrt_pool_params_t *pp = &op->u.pool;
    *pp = (hqrt_pool_params_t){
        .in_bits = in->bits, .in_zp = in->zp, .dilation_h = 1, .dilation_w = 1};
    op->code = HQX_OP_GLOBAL_AVG;
    if (l->type != HQ_LAYER_GLOBAL_AVG_POOL) {
        pp->kernel_h = p->kernel_h;
        pp->kernel_w = p->kernel_w;
        pp->stride_h = p->stride_h;
        pp->stride_w = p->stride_w;
        pp->pad_top = p->pads[0];
        pp->pad_left = p->pads[1];
        pp->pad_bottom = p->pads[2];
        pp->pad_right = p->pads[3];
        pp->count_include_pad = p->count_include_pad ? 1 : 0;
        op->code = l->type == HQ_LAYER_MAXPOOL ? HQX_OP_MAXPOOL : HQX_OP_AVGPOOL;
    }
    if (l->type == HQ_LAYER_MAXPOOL && (p->dilation_h > 1 || p->dilation_w > 1)) {
        /* its own op, so that a program without one keeps its older format version */
        pp->dilation_h = p->dilation_h;
        pp->dilation_w = p->dilation_w;
        op->code = HQX_OP_DILATED_MAXPOOL;
    }
    if (l->type != HQ_LAYER_MAXPOOL) /* a maxpool keeps its input's codes */
        pp->out = c->q->stage;
    op->input_count = 1;
    return HQ_OK;
}

int32_t hqi_quant_ew_kernel_op(hq_layer_type_t type)
{
    /* ew_sub runs as an add: the builder negated b's multiplier */
    static const int32_t ops[HQ_EW_COUNT] = {
        [HQ_EW_NONE] = -1,           [HQ_EW_ADD] = HQRT_EW_ADD, [HQ_EW_SUB] = HQRT_EW_ADD,
        [HQ_EW_MULT] = HQRT_EW_MULT, [HQ_EW_DIV] = -1,          [HQ_EW_MAX] = HQRT_EW_MAX,
        [HQ_EW_MIN] = HQRT_EW_MIN,
    };
    const hq_layer_type_traits_t *t = hqi_layer_traits(type);
    return t->quant_form == HQ_QUANT_ELEMENTWISE ? ops[t->ew_op] : -1;
}

static hq_status_t lower_eltwise(const lowering_t *c, hqi_op_t *op)
{
    if (c->layer->input_count != 2)
        return refuse(c, "needs two inputs");
    const hqi_qlayer_t *q = c->q, *a = input_q(c, 0), *b = input_q(c, 1);
    op->u.eltwise = (hqrt_ew_params_t){.op = hqi_quant_ew_kernel_op(c->layer->type),
                                       .a_bits = a->bits,
                                       .a_zp = a->zp,
                                       .b_bits = b->bits,
                                       .b_zp = b->zp,
                                       .a_multiplier = q->input_multiplier[0],
                                       .a_shift = q->input_shift[0],
                                       .b_multiplier = q->input_multiplier[1],
                                       .b_shift = q->input_shift[1],
                                       .out = q->stage};
    op->code = HQX_OP_ELTWISE;
    op->input_count = 2;
    return HQ_OK;
}

/* A standalone activation: a table of 2^in_bits codes when it has one, else an output stage. */
static hq_status_t lower_activation(const lowering_t *c, hqi_op_t *op)
{
    const hqi_qlayer_t *q = c->q, *in = input_q(c, 0);
    op->u.activation.in_bits = in->bits;
    op->u.activation.in_zp = in->zp;
    if (q->lut) {
        op->code = HQX_OP_LUT;
        op->u.activation.out_bits = q->bits;
        op->u.activation.lut = data(q->lut, ((size_t)1 << in->bits) * code_bytes(q->bits));
    } else {
        op->code = HQX_OP_ACTIVATION;
        op->u.activation.stage = q->stage;
    }
    op->input_count = 1;
    return HQ_OK;
}

static hq_status_t lower_softmax(const lowering_t *c, hqi_op_t *op)
{
    int32_t in_bits = input_q(c, 0)->bits;
    op->code = HQX_OP_SOFTMAX;
    op->input_count = 1;
    op->u.softmax.in_bits = in_bits;
    op->u.softmax.axis = c->layer->params.axis;
    op->u.softmax.exp_lut = data(c->q->lut, ((size_t)1 << in_bits) * sizeof(int32_t));
    op->u.softmax.stage = c->q->stage;
    return HQ_OK;
}

static hq_status_t lower_const(const lowering_t *c, hqi_op_t *op)
{
    if (!c->q->constant)
        return refuse(c, "no constant codes in the quantized params");
    hq_shape_t os = hq_layer_port_shape(c->layer, 0);
    op->code = HQX_OP_CONST;
    op->input_count = 0;
    op->u.constant.bits = c->q->bits;
    op->u.constant.codes =
        data(c->q->constant, (size_t)sample_elements(&os) * code_bytes(c->q->bits));
    return HQ_OK;
}

/* ---- data movement ---------------------------------------------------------------------------- */

/* concat, feature_splitter, reduce_max, argmax, output, reshape. */
static hq_status_t lower_axis(const lowering_t *c, hqi_op_t *op)
{
    const hq_layer_t *l = c->layer;
    op->u.axis.bits = c->q->bits;
    op->u.axis.axis = l->params.axis;
    op->input_count = 1;
    switch (l->type) {
    case HQ_LAYER_CONCAT:
        op->code = HQX_OP_CONCAT;
        op->input_count = l->input_count;
        break;
    case HQ_LAYER_FEATURE_SPLITTER:
        op->code = HQX_OP_SPLIT;
        op->u.axis.split_count = l->params.split_count;
        op->u.axis.split_sizes = l->params.split_sizes;
        break;
    case HQ_LAYER_REDUCE_MAX:
        op->code = HQX_OP_REDUCE_MAX;
        break;
    case HQ_LAYER_ARGMAX:
        op->code = HQX_OP_ARGMAX;
        op->u.axis.bits = input_q(c, 0)->bits;
        op->u.axis.out_bits = c->q->bits;
        break;
    default: /* output, reshape: the codes as they are */
        op->code = HQX_OP_COPY;
        op->u.axis.axis = 0;
        break;
    }
    return HQ_OK;
}

static hq_status_t lower_slice(const lowering_t *c, hqi_op_t *op)
{
    const hq_layer_params_t *p = &c->layer->params;
    hq_shape_t is = input_shape(c, 0);
    /* extents on H, W, C: rank 4 [N,H,W,C], 3 [N,W,C], 2 [N,C]; the ends are clamped to them
     * (another rank is refused by the op's callers, which check every tensor's rank) */
    int64_t ext[3] = {1, 1, 1};
    bool known = is.ndim >= 2 && is.ndim <= 4;
    for (int d = 1; known && d < is.ndim; d++)
        ext[3 - is.ndim + d] = is.dims[d];
    hqrt_slice_params_t *sp = &op->u.slice.params;
    for (int a = 0; a < 3; a++) {
        sp->begin[a] = p->slice_begin[a];
        sp->end[a] = known && p->slice_end[a] > ext[a] ? (int32_t)ext[a] : p->slice_end[a];
        sp->step[a] = p->slice_step[a];
    }
    op->code = HQX_OP_SLICE;
    op->input_count = 1;
    op->u.slice.bits = c->q->bits;
    return HQ_OK;
}

static hq_status_t lower_pad(const lowering_t *c, hqi_op_t *op)
{
    static const int32_t modes[] = {[HQ_PAD_CONSTANT] = HQRT_PAD_CONSTANT,
                                    [HQ_PAD_REFLECT] = HQRT_PAD_REFLECT,
                                    [HQ_PAD_EDGE] = HQRT_PAD_EDGE};
    const hq_layer_params_t *p = &c->layer->params;
    op->u.pad.params = (hqrt_pad_params_t){.mode = modes[p->pad_mode],
                                           .value_code = c->q->pad_code,
                                           .before = {p->pads[0], p->pads[1], p->pad_channels[0]},
                                           .after = {p->pads[2], p->pads[3], p->pad_channels[1]}};
    op->code = HQX_OP_PAD;
    op->input_count = 1;
    op->u.pad.bits = c->q->bits;
    return HQ_OK;
}

const char *hqi_lower_params_unsupported(const hq_layer_t *layer)
{
    const hq_layer_params_t *p = &layer->params;
    if (layer->type != HQ_LAYER_RESIZE)
        return NULL;
    if (p->resize_coords == HQ_RESIZE_TF_HALF_PIXEL_FOR_NN)
        return "resize with coordinates tf_half_pixel_for_nn has no integer form (the integer "
               "resize maps asymmetric, half_pixel, pytorch_half_pixel and align_corners)";
    if (p->resize_method == HQ_RESIZE_NEAREST && p->nearest_ceil)
        return "resize with nearest rounding up (ceil or round_prefer_ceil) has no integer form "
               "(the integer resize rounds down or to the nearest, ties down)";
    if (p->resize_scales[0] != 0 || p->resize_scales[1] != 0)
        return "resize by a scale that is not output / input (a fractional output size from "
               "ONNX scales) has no integer form; export the model with sizes instead of scales";
    return NULL;
}

static hq_status_t lower_resize(const lowering_t *c, hqi_op_t *op)
{
    const char *why = hqi_lower_params_unsupported(c->layer);
    if (why)
        return refuse(c, why);
    static const int32_t coords[] = {[HQ_RESIZE_ASYMMETRIC] = HQRT_COORDS_ASYMMETRIC,
                                     [HQ_RESIZE_HALF_PIXEL] = HQRT_COORDS_HALF_PIXEL,
                                     [HQ_RESIZE_ALIGN_CORNERS] = HQRT_COORDS_ALIGN_CORNERS,
                                     [HQ_RESIZE_PYTORCH_HALF_PIXEL] =
                                         HQRT_COORDS_PYTORCH_HALF_PIXEL};
    const hq_layer_params_t *p = &c->layer->params;
    op->u.resize = (hqrt_resize_params_t){
        .method = p->resize_method == HQ_RESIZE_BILINEAR ? HQRT_RESIZE_BILINEAR
                                                         : HQRT_RESIZE_NEAREST,
        .coords = coords[p->resize_coords],
        .round_prefer_floor = p->nearest_round ? 1 : 0,
        .bits = c->q->bits,
        .zp = c->q->zp};
    op->code = HQX_OP_RESIZE;
    op->input_count = 1;
    return HQ_OK;
}

static hq_status_t lower_block(const lowering_t *c, hqi_op_t *op)
{
    const hq_layer_params_t *p = &c->layer->params;
    op->code = c->layer->type == HQ_LAYER_DEPTH_TO_SPACE ? HQX_OP_DEPTH_TO_SPACE
                                                         : HQX_OP_SPACE_TO_DEPTH;
    op->input_count = 1;
    op->u.block.bits = c->q->bits;
    op->u.block.block = p->block_size;
    op->u.block.crd = p->depth_to_space_crd ? 1 : 0;
    return HQ_OK;
}

static hq_status_t lower_transpose(const lowering_t *c, hqi_op_t *op)
{
    hq_shape_t is = input_shape(c, 0);
    for (int d = 0; d < HQRT_MAX_DIMS; d++)
        op->u.transpose.perm[d] = d < is.ndim ? c->layer->params.perm[d] : d;
    op->code = HQX_OP_TRANSPOSE;
    op->input_count = 1;
    op->u.transpose.bits = c->q->bits;
    return HQ_OK;
}

/* channel_shuffle: the last axis C viewed as [g, C/g] and those two swapped, i.e. a transpose
 * of the rank+1 view [1, ..., g, C/g] with the last two axes exchanged. */
static hq_status_t lower_channel_shuffle(const lowering_t *c, hqi_op_t *op)
{
    hq_shape_t is = input_shape(c, 0);
    int64_t channels = is.dims[is.ndim - 1], groups = c->layer->params.groups;
    if (is.ndim + 1 > HQRT_MAX_DIMS || groups < 1 || channels % groups != 0)
        return refuse(c, "channel_shuffle: groups must divide the channels of a rank <= 5 input");
    int n = is.ndim + 1;
    for (int d = 0; d < HQRT_MAX_DIMS; d++) {
        op->u.transpose.view[d] = d == 0 || d >= n ? 1 : (int32_t)is.dims[d];
        op->u.transpose.perm[d] = d;
    }
    op->u.transpose.view[n - 2] = (int32_t)groups;
    op->u.transpose.view[n - 1] = (int32_t)(channels / groups);
    op->u.transpose.perm[n - 2] = n - 1;
    op->u.transpose.perm[n - 1] = n - 2;
    op->u.transpose.view_ndim = n;
    op->code = HQX_OP_TRANSPOSE_VIEW;
    op->input_count = 1;
    op->u.transpose.bits = c->q->bits;
    return HQ_OK;
}

/* layer_norm: the runtime's integer layer normalization; gamma codes and bias are the layer's
 * kernel:0 and bias:0 (docs/numerics.md). */
static hq_status_t lower_layer_norm(const lowering_t *c, hqi_op_t *op)
{
    const hqi_qlayer_t *q = c->q, *in = input_q(c, 0);
    hq_shape_t is = input_shape(c, 0);
    int64_t channels = is.dims[is.ndim - 1];
    if (!q->kernel || !q->bias)
        return refuse(c, "no gamma codes or bias in the quantized params");
    if (channels > HQRT_NORM_MAX_CHANNELS)
        return refuse(c, "layer_norm over more than 32767 channels");
    op->code = HQX_OP_LAYER_NORM;
    op->input_count = 1;
    op->u.layer_norm.params = (hqrt_layer_norm_params_t){.in_bits = in->bits,
                                                         .in_zp = in->zp,
                                                         .weight_bits = q->weight_bits,
                                                         .epsilon_term = q->epsilon_term,
                                                         .out = q->stage};
    op->u.layer_norm.gamma = data(q->kernel, (size_t)channels * code_bytes(q->weight_bits));
    op->u.layer_norm.bias = data(q->bias, (size_t)channels * sizeof(int64_t));
    return HQ_OK;
}

/* One entry per layer type; NULL: no runtime op (input layers, ew_div, reduce_sum). */
static const lower_fn lowerings[HQ_LAYER_TYPE_COUNT] = {
    [HQ_LAYER_OUTPUT] = lower_axis,
    [HQ_LAYER_RESHAPE] = lower_axis,
    [HQ_LAYER_CONST_INPUT] = lower_const,
    [HQ_LAYER_CONV] = lower_conv,
    [HQ_LAYER_DW] = lower_conv,
    [HQ_LAYER_DECONV] = lower_deconv,
    [HQ_LAYER_DENSE] = lower_conv,
    [HQ_LAYER_BATCH_NORM] = lower_conv,
    [HQ_LAYER_NORMALIZATION] = lower_conv,
    [HQ_LAYER_MAXPOOL] = lower_pool,
    [HQ_LAYER_AVGPOOL] = lower_pool,
    [HQ_LAYER_GLOBAL_AVG_POOL] = lower_pool,
    [HQ_LAYER_EW_ADD] = lower_eltwise,
    [HQ_LAYER_EW_SUB] = lower_eltwise,
    [HQ_LAYER_EW_MULT] = lower_eltwise,
    [HQ_LAYER_EW_MAX] = lower_eltwise,
    [HQ_LAYER_EW_MIN] = lower_eltwise,
    [HQ_LAYER_ACTIVATION] = lower_activation,
    [HQ_LAYER_CONCAT] = lower_axis,
    [HQ_LAYER_FEATURE_SPLITTER] = lower_axis,
    [HQ_LAYER_SLICE] = lower_slice,
    [HQ_LAYER_PAD] = lower_pad,
    [HQ_LAYER_RESIZE] = lower_resize,
    [HQ_LAYER_DEPTH_TO_SPACE] = lower_block,
    [HQ_LAYER_SPACE_TO_DEPTH] = lower_block,
    [HQ_LAYER_TRANSPOSE] = lower_transpose,
    [HQ_LAYER_REDUCE_MAX] = lower_axis,
    [HQ_LAYER_ARGMAX] = lower_axis,
    [HQ_LAYER_SOFTMAX] = lower_softmax,
    [HQ_LAYER_CHANNEL_SHUFFLE] = lower_channel_shuffle,
    [HQ_LAYER_LAYER_NORM] = lower_layer_norm,
};

bool hqi_lower_supported(hq_layer_type_t type)
{
    return (int)type >= 0 && type < HQ_LAYER_TYPE_COUNT && lowerings[type];
}

hq_status_t hqi_lower_layer(const hq_graph_t *graph, const hqi_qmodel_t *model, int index,
                            hqi_op_t *op, hq_error_t *err)
{
    memset(op, 0, sizeof *op);
    const hq_layer_t *layer = graph && model ? hq_graph_layer(graph, index) : NULL;
    if (!layer || index >= model->layer_count)
        return hqi_error(err, HQ_ERR_ARGUMENT, "no layer %d", index);
    if (!hqi_lower_supported(layer->type))
        return hqi_error(err, HQ_ERR_UNSUPPORTED, "type '%s' has no runtime op",
                         hq_layer_type_name(layer->type));
    if (layer->type != HQ_LAYER_CONST_INPUT && layer->input_count < 1)
        return hqi_error(err, HQ_ERR_UNSUPPORTED, "no input");
    lowering_t c = {graph, layer, &model->layers[index], model, err};
    op->output_count = hq_layer_port_count(layer);
    return lowerings[layer->type](&c, op);
}
