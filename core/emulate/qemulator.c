/* qemulator.c — the quantized emulator target: graph walk over uint8/uint16 code buffers, one
 * runtime op per layer (lowered once, at create, by hqi_lower_layer: the op the compiler writes
 * into the program), quantization of the inputs and dequantization of taps and outputs. Each op
 * is the kernel call the deploy runtime's executor makes for it, on batched buffers. Conv,
 * depthwise and dense layers on 8-bit activations with 4/8-bit weights run the deploy runtime's
 * fast kernels (core/runtime/hqrt_fast.h, prepared once per layer, tested bit-exact against the
 * reference), elementwise and activation layers its vector kernels; everything else, and
 * everything under HQ_EMULATE_KERNELS=reference, runs the reference kernels
 * (core/runtime/hqrt_kernels_ref.c). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emulate/qemulator.h"
#include "numerics/lower.h"
#include "runtime/hqrt_fast.h"
#include "runtime/hqrt_kernels_ref.h"
#include "util/threadpool.h"
#include "util/util.h"

struct hqi_qemu {
    const hq_graph_t *graph;
    char *name;
    hqi_qmodel_t *model;
    hqi_op_t *ops;           /* per layer: its runtime op (hqi_lower_layer); input layers none */
    int *last_step;          /* per layer: topological position of its last reader */
    int threads;             /* >= 1: samples of a batch are split over this many threads */
    hqi_threadpool_t *pool;  /* started lazily at the first split run */
    hqrt_i_prepared_t *fast; /* per layer: the fast kernel's packed weights (fast == false: none) */
    double *type_seconds;    /* per layer type: kernel wall time is added here; NULL: not timed */
    int64_t *type_calls;     /* per layer type: layer runs, beside type_seconds */
};

/* Everything one layer call sees. */
typedef struct qcall {
    const hqi_qemu_t *qemu;
    const hq_layer_t *layer;
    const hqi_op_t *op; /* the layer's runtime op */
    int64_t batch;
    const hq_shape_t *in_shapes;
    const void *const *inputs;
    const hq_shape_t *out_shapes;
    void *const *outputs;
    const hqrt_i_prepared_t *fast; /* this layer's fast kernel, or NULL */
} qcall_t;

typedef hq_status_t (*qkernel_fn)(const qcall_t *c, hq_error_t *err);

/* The vector variant the elementwise and activation kernels run: none under
 * HQ_EMULATE_KERNELS=reference (no fast kernels were prepared), else the CPU's. */
static int vector_isa(const qcall_t *c)
{
    return c->qemu->fast ? hqrt_i_vector_isa() : HQRT_ISA_REFERENCE;
}

static size_t code_size(int bits)
{
    return bits == 16 ? 2u : 1u;
}

static hq_shape_t batched(const hq_layer_t *layer, int port, int64_t batch)
{
    hq_shape_t s = hq_layer_port_shape(layer, port);
    s.dims[0] = batch;
    return s;
}

static const hqi_qlayer_t *input_q(const qcall_t *c, int k)
{
    return &c->qemu->model->layers[c->layer->inputs[k]];
}

/* NHWC dims of a shape: rank 4 as is, rank 2 [N, C] as [N, 1, 1, C], rank 3 as [N, 1, D1, D2]. */
static hq_status_t to_dims(const hq_shape_t *s, hqrt_dims_t *d, hq_error_t *err)
{
    if (s->ndim == 4) {
        *d = (hqrt_dims_t){(int32_t)s->dims[0], (int32_t)s->dims[1], (int32_t)s->dims[2],
                           (int32_t)s->dims[3]};
    } else if (s->ndim == 2) {
        *d = (hqrt_dims_t){(int32_t)s->dims[0], 1, 1, (int32_t)s->dims[1]};
    } else if (s->ndim == 3) {
        *d = (hqrt_dims_t){(int32_t)s->dims[0], 1, (int32_t)s->dims[1], (int32_t)s->dims[2]};
    } else {
        return hqi_error(err, HQ_ERR_UNSUPPORTED, "tensor of rank %d, need 2, 3 or 4", s->ndim);
    }
    return HQ_OK;
}

/* The dims of the layer's first input and of its output. */
static hq_status_t io_dims(const qcall_t *c, hqrt_dims_t *in, hqrt_dims_t *out, hq_error_t *err)
{
    hq_status_t st = to_dims(&c->in_shapes[0], in, err);
    return st != HQ_OK ? st : to_dims(&c->out_shapes[0], out, err);
}

static hq_status_t to_shape(const hq_shape_t *s, hqrt_shape_t *o, hq_error_t *err)
{
    if (s->ndim < 1 || s->ndim > HQRT_MAX_DIMS)
        return hqi_error(err, HQ_ERR_UNSUPPORTED, "tensor of rank %d", s->ndim);
    o->ndim = s->ndim;
    for (int i = 0; i < s->ndim; i++)
        o->dims[i] = (int32_t)s->dims[i];
    return HQ_OK;
}

static hq_status_t kernel_status(int rc, const char *kernel, hq_error_t *err)
{
    return rc == HQRT_KERNEL_OK
               ? HQ_OK
               : hqi_error(err, HQ_ERR_ARGUMENT, "%s: inconsistent shapes or params", kernel);
}

/* ---- the runtime ops, on a batch of samples ------------------------------------------------ */

static hq_status_t q_copy(const qcall_t *c, hq_error_t *err)
{
    int64_t n = hqi_shape_count(&c->out_shapes[0]);
    if (n != hqi_shape_count(&c->in_shapes[0]) || input_q(c, 0)->bits != c->op->u.axis.bits)
        return hqi_error(err, HQ_ERR_ARGUMENT, "copy: input and output differ");
    memcpy(c->outputs[0], c->inputs[0], (size_t)n * code_size(c->op->u.axis.bits));
    return HQ_OK;
}

static hq_status_t q_const(const qcall_t *c, hq_error_t *err)
{
    (void)err;
    int64_t per = hqi_shape_count(&c->out_shapes[0]) / c->batch;
    size_t bytes = (size_t)per * code_size(c->op->u.constant.bits);
    for (int64_t n = 0; n < c->batch; n++)
        memcpy((char *)c->outputs[0] + (size_t)n * bytes, c->op->u.constant.codes.data, bytes);
    return HQ_OK;
}

/* A conv/dw/dense layer through its prepared fast kernel, sample by sample (the kernel takes one
 * sample; in and out carry the batch in n). Bit-exact with the reference kernels. */
static hq_status_t run_fast(const qcall_t *c, const hqrt_conv_params_t *cp, hqrt_dims_t in,
                            hqrt_dims_t out, const hqrt_addend_t *addend, hq_error_t *err)
{
    const size_t in_bytes = (size_t)in.h * (size_t)in.w * (size_t)in.c;
    const size_t out_count = (size_t)out.h * (size_t)out.w * (size_t)out.c;
    const size_t out_bytes = out_count * code_size(cp->out.out_bits);
    uint8_t *scratch =
        c->fast->scratch ? aligned_alloc(64, (c->fast->scratch + 63) / 64 * 64) : NULL;
    if (c->fast->scratch && !scratch)
        return hqi_nomem(err, "quantized emulator");
    hqrt_dims_t in1 = {1, in.h, in.w, in.c}, out1 = {1, out.h, out.w, out.c};
    int rc = 0;
    for (int64_t n = 0; n < in.n && rc == 0; n++) {
        hqrt_addend_t add1;
        if (addend) {
            add1 = *addend;
            add1.data =
                (const char *)addend->data + (size_t)n * out_count * code_size(addend->bits);
        }
        rc = hqrt_i_conv_fast(c->fast, cp, in1,
                              (const uint8_t *)c->inputs[0] + (size_t)n * in_bytes,
                              c->op->u.conv.bias.data, addend ? &add1 : NULL, out1,
                              (uint8_t *)c->outputs[0] + (size_t)n * out_bytes, 0, c->fast->rows,
                              scratch);
    }
    free(scratch);
    return rc == 0 ? HQ_OK : hqi_error(err, HQ_ERR_ARGUMENT, "fast conv: inconsistent params");
}

static bool is_affine(const hq_layer_t *layer)
{
    return layer->type == HQ_LAYER_BATCH_NORM || layer->type == HQ_LAYER_NORMALIZATION;
}

static hq_status_t q_conv(const qcall_t *c, hq_error_t *err)
{
    const hqrt_conv_params_t *cp = &c->op->u.conv.params;
    const void *w = c->op->u.conv.weights.data;
    const int64_t *bias = c->op->u.conv.bias.data;
    if (is_affine(c->layer)) { /* a 1x1 depthwise conv over rows x C, of any rank */
        const hq_shape_t *s = &c->in_shapes[0];
        int64_t C = s->dims[s->ndim - 1];
        hqrt_dims_t d = {(int32_t)(hqi_shape_count(s) / C), 1, 1, (int32_t)C};
        return kernel_status(hqrt_conv2d(cp, d, c->inputs[0], w, bias, NULL, d, c->outputs[0], NULL),
                             "normalization", err);
    }
    hqrt_dims_t in, out;
    hq_status_t st = io_dims(c, &in, &out, err);
    if (st != HQ_OK)
        return st;
    hqrt_addend_t add, *addp = NULL;
    if (c->op->input_count == 2) {
        if (hqi_shape_count(&c->in_shapes[1]) != hqi_shape_count(&c->out_shapes[0]))
            return hqi_error(err, HQ_ERR_ARGUMENT, "conv: the addend must have the output's shape");
        add = (hqrt_addend_t){c->inputs[1], input_q(c, 1)->bits, input_q(c, 1)->zp,
                              c->op->u.conv.addend_multiplier, c->op->u.conv.addend_shift};
        addp = &add;
    }
    if (c->fast)
        return run_fast(c, cp, in, out, addp, err);
    return kernel_status(hqrt_conv2d(cp, in, c->inputs[0], w, bias, addp, out, c->outputs[0], NULL),
                         "conv", err);
}

static hq_status_t q_deconv(const qcall_t *c, hq_error_t *err)
{
    hqrt_dims_t in, out;
    hq_status_t st = io_dims(c, &in, &out, err);
    if (st != HQ_OK)
        return st;
    return kernel_status(hqrt_i_deconv_fast(vector_isa(c), &c->op->u.conv.params, in,
                                            c->inputs[0], c->op->u.conv.weights.data,
                                            c->op->u.conv.bias.data, out, c->outputs[0], NULL),
                         "deconv", err);
}

static hq_status_t q_dense(const qcall_t *c, hq_error_t *err)
{
    const hqrt_conv_params_t *cp = &c->op->u.conv.params;
    int64_t cin = hqi_shape_count(&c->in_shapes[0]) / c->batch;
    int64_t cout = hqi_shape_count(&c->out_shapes[0]) / c->batch;
    if (c->fast)
        return run_fast(c, cp, (hqrt_dims_t){(int32_t)c->batch, 1, 1, (int32_t)cin},
                        (hqrt_dims_t){(int32_t)c->batch, 1, 1, (int32_t)cout}, NULL, err);
    return kernel_status(hqrt_dense(cp, (int32_t)c->batch, (int32_t)cin, (int32_t)cout,
                                    c->inputs[0], c->op->u.conv.weights.data,
                                    c->op->u.conv.bias.data, c->outputs[0]),
                         "dense", err);
}

static hq_status_t q_pool(const qcall_t *c, hq_error_t *err)
{
    hqrt_dims_t in, out;
    hq_status_t st = io_dims(c, &in, &out, err);
    if (st != HQ_OK)
        return st;
    const hqrt_pool_params_t *pp = &c->op->u.pool;
    if (c->op->code == HQX_OP_MAXPOOL || c->op->code == HQX_OP_DILATED_MAXPOOL)
        return kernel_status(hqrt_maxpool(pp, in, c->inputs[0], out, c->outputs[0]), "maxpool",
                             err);
    return kernel_status(hqrt_avgpool(pp, in, c->inputs[0], out, c->outputs[0]), "avgpool", err);
}

static hq_status_t q_global_pool(const qcall_t *c, hq_error_t *err)
{
    hqrt_dims_t in;
    hq_status_t st = to_dims(&c->in_shapes[0], &in, err);
    if (st != HQ_OK)
        return st;
    const hqrt_pool_params_t *pp = &c->op->u.pool;
    return kernel_status(
        hqrt_i_global_avg_pool_fast(vector_isa(c), pp->in_bits, pp->in_zp, &pp->out, in,
                                    c->inputs[0], c->outputs[0]),
        "global_avg_pool", err);
}

static hq_status_t q_ew(const qcall_t *c, hq_error_t *err)
{
    hqrt_shape_t as, bs, os;
    hq_status_t st = to_shape(&c->in_shapes[0], &as, err);
    if (st == HQ_OK)
        st = to_shape(&c->in_shapes[1], &bs, err);
    if (st == HQ_OK)
        st = to_shape(&c->out_shapes[0], &os, err);
    if (st != HQ_OK)
        return st;
    return kernel_status(hqrt_i_elementwise_fast(vector_isa(c), &c->op->u.eltwise, &as,
                                                 c->inputs[0], &bs, c->inputs[1], &os,
                                                 c->outputs[0]),
                         "elementwise", err);
}

static hq_status_t q_activation(const qcall_t *c, hq_error_t *err)
{
    const hq_shape_t *s = &c->in_shapes[0];
    int64_t count = hqi_shape_count(s), channels = s->dims[s->ndim - 1];
    int32_t in_bits = c->op->u.activation.in_bits;
    const hqrt_output_stage_t *stage = &c->op->u.activation.stage;
    if (c->op->code == HQX_OP_LUT)
        return kernel_status(hqrt_lut(in_bits, c->op->u.activation.lut.data,
                                      c->op->u.activation.out_bits, count, c->inputs[0],
                                      c->outputs[0]),
                             "lut", err);
    return kernel_status(hqrt_i_activation_fast(vector_isa(c), in_bits,
                                                c->op->u.activation.in_zp, stage, count / channels,
                                                (int32_t)channels, c->inputs[0], c->outputs[0]),
                         "activation", err);
}

static hq_status_t q_concat(const qcall_t *c, hq_error_t *err)
{
    hqrt_shape_t shapes[64], os;
    if (c->layer->input_count > 64)
        return hqi_error(err, HQ_ERR_LIMIT, "concat: more than 64 inputs");
    hq_status_t st = to_shape(&c->out_shapes[0], &os, err);
    for (int k = 0; k < c->layer->input_count && st == HQ_OK; k++)
        st = to_shape(&c->in_shapes[k], &shapes[k], err);
    if (st != HQ_OK)
        return st;
    return kernel_status(hqrt_concat(c->op->u.axis.bits, c->op->input_count, shapes, c->inputs,
                                     c->op->u.axis.axis, &os, c->outputs[0]),
                         "concat", err);
}

static hq_status_t q_split(const qcall_t *c, hq_error_t *err)
{
    hqrt_shape_t is;
    hq_status_t st = to_shape(&c->in_shapes[0], &is, err);
    if (st != HQ_OK)
        return st;
    int32_t sizes[256];
    int32_t count = c->op->u.axis.split_count;
    if (count < 1 || count > 256)
        return hqi_error(err, HQ_ERR_LIMIT, "split: %d pieces", count);
    for (int k = 0; k < count; k++)
        sizes[k] = c->op->u.axis.split_sizes[k];
    return kernel_status(hqrt_split(c->op->u.axis.bits, &is, c->inputs[0], c->op->u.axis.axis,
                                    count, sizes, c->outputs),
                         "split", err);
}

static hq_status_t q_slice(const qcall_t *c, hq_error_t *err)
{
    hqrt_dims_t in, out;
    hq_status_t st = io_dims(c, &in, &out, err);
    if (st != HQ_OK)
        return st;
    return kernel_status(hqrt_slice(c->op->u.slice.bits, &c->op->u.slice.params, in, c->inputs[0],
                                    out, c->outputs[0]),
                         "slice", err);
}

static hq_status_t q_pad(const qcall_t *c, hq_error_t *err)
{
    hqrt_dims_t in, out;
    hq_status_t st = io_dims(c, &in, &out, err);
    if (st != HQ_OK)
        return st;
    return kernel_status(
        hqrt_pad(c->op->u.pad.bits, &c->op->u.pad.params, in, c->inputs[0], out, c->outputs[0]),
        "pad", err);
}

static hq_status_t q_resize(const qcall_t *c, hq_error_t *err)
{
    hqrt_dims_t in, out;
    hq_status_t st = io_dims(c, &in, &out, err);
    if (st != HQ_OK)
        return st;
    return kernel_status(hqrt_resize(&c->op->u.resize, in, c->inputs[0], out, c->outputs[0]),
                         "resize", err);
}

static hq_status_t q_block(const qcall_t *c, hq_error_t *err)
{
    hqrt_dims_t in;
    hq_status_t st = to_dims(&c->in_shapes[0], &in, err);
    if (st != HQ_OK)
        return st;
    int32_t bits = c->op->u.block.bits, block = c->op->u.block.block;
    if (c->op->code == HQX_OP_DEPTH_TO_SPACE)
        return kernel_status(hqrt_depth_to_space(bits, block, c->op->u.block.crd, in,
                                                 c->inputs[0], c->outputs[0]),
                             "depth_to_space", err);
    return kernel_status(hqrt_space_to_depth(bits, block, in, c->inputs[0], c->outputs[0]),
                         "space_to_depth", err);
}

static hq_status_t q_transpose(const qcall_t *c, hq_error_t *err)
{
    hqrt_shape_t is;
    hq_status_t st = to_shape(&c->in_shapes[0], &is, err);
    if (st != HQ_OK)
        return st;
    if (c->op->code == HQX_OP_TRANSPOSE_VIEW) { /* the view of one sample, batched */
        int32_t batch = is.dims[0];
        is.ndim = c->op->u.transpose.view_ndim;
        memcpy(is.dims, c->op->u.transpose.view, sizeof is.dims);
        is.dims[0] = batch;
    }
    return kernel_status(hqrt_transpose(c->op->u.transpose.bits, &is, c->inputs[0],
                                        c->op->u.transpose.perm, c->outputs[0]),
                         "transpose", err);
}

static hq_status_t q_reduce_max(const qcall_t *c, hq_error_t *err)
{
    hqrt_shape_t is;
    hq_status_t st = to_shape(&c->in_shapes[0], &is, err);
    if (st != HQ_OK)
        return st;
    return kernel_status(hqrt_reduce_max(c->op->u.axis.bits, &is, c->inputs[0],
                                         c->op->u.axis.axis, c->outputs[0]),
                         "reduce_max", err);
}

static hq_status_t q_argmax(const qcall_t *c, hq_error_t *err)
{
    hqrt_shape_t is;
    hq_status_t st = to_shape(&c->in_shapes[0], &is, err);
    if (st != HQ_OK)
        return st;
    return kernel_status(hqrt_argmax(c->op->u.axis.bits, &is, c->inputs[0],
                                     c->op->u.axis.out_bits, c->outputs[0]),
                         "argmax", err);
}

static hq_status_t q_softmax(const qcall_t *c, hq_error_t *err)
{
    hqrt_shape_t is;
    hq_status_t st = to_shape(&c->in_shapes[0], &is, err);
    if (st != HQ_OK)
        return st;
    return kernel_status(hqrt_softmax(c->op->u.softmax.in_bits, c->op->u.softmax.exp_lut.data,
                                      &c->op->u.softmax.stage, &is, c->op->u.softmax.axis,
                                      c->inputs[0], c->outputs[0]),
                         "softmax", err);
}

static hq_status_t q_layer_norm(const qcall_t *c, hq_error_t *err)
{
    const hq_shape_t *s = &c->in_shapes[0];
    int64_t channels = s->dims[s->ndim - 1];
    if (channels > INT32_MAX)
        return hqi_error(err, HQ_ERR_LIMIT, "layer_norm: %lld channels", (long long)channels);
    return kernel_status(hqrt_layer_norm(&c->op->u.layer_norm.params,
                                         hqi_shape_count(s) / channels, (int32_t)channels,
                                         c->inputs[0], c->op->u.layer_norm.gamma.data,
                                         c->op->u.layer_norm.bias.data, c->outputs[0]),
                         "layer_norm", err);
}

/* One entry per runtime op: the kernel call the program's executor (core/runtime/hqrt_run.c)
 * makes for it, on the emulator's batched buffers. */
static const qkernel_fn qkernels[HQX_OP_COUNT_] = {
    [HQX_OP_CONV] = q_conv,
    [HQX_OP_DENSE] = q_dense,
    [HQX_OP_MAXPOOL] = q_pool,
    [HQX_OP_DILATED_MAXPOOL] = q_pool,
    [HQX_OP_AVGPOOL] = q_pool,
    [HQX_OP_GLOBAL_AVG] = q_global_pool,
    [HQX_OP_ELTWISE] = q_ew,
    [HQX_OP_ACTIVATION] = q_activation,
    [HQX_OP_LUT] = q_activation,
    [HQX_OP_CONCAT] = q_concat,
    [HQX_OP_SPLIT] = q_split,
    [HQX_OP_RESIZE] = q_resize,
    [HQX_OP_COPY] = q_copy,
    [HQX_OP_DECONV] = q_deconv,
    [HQX_OP_CONST] = q_const,
    [HQX_OP_SLICE] = q_slice,
    [HQX_OP_PAD] = q_pad,
    [HQX_OP_DEPTH_TO_SPACE] = q_block,
    [HQX_OP_SPACE_TO_DEPTH] = q_block,
    [HQX_OP_TRANSPOSE] = q_transpose,
    [HQX_OP_TRANSPOSE_VIEW] = q_transpose,
    [HQX_OP_LAYER_NORM] = q_layer_norm,
    [HQX_OP_REDUCE_MAX] = q_reduce_max,
    [HQX_OP_ARGMAX] = q_argmax,
    [HQX_OP_SOFTMAX] = q_softmax,
};

/* ---- create / destroy ------------------------------------------------------------------------ */

/* The output dims a conv's window geometry gives: the fast kernels index the input from the
 * output position without the reference kernels' per-tap bounds, so a layer whose stored shapes
 * disagree (a damaged archive) stays on the reference path, which reports it. */
static bool conv_geometry_ok(const hqrt_conv_params_t *cp, hqrt_dims_t in, hqrt_dims_t out)
{
    if (cp->stride_h < 1 || cp->stride_w < 1 || cp->dilation_h < 1 || cp->dilation_w < 1)
        return false;
    int64_t span_h = (int64_t)cp->dilation_h * (cp->kernel_h - 1) + 1;
    int64_t span_w = (int64_t)cp->dilation_w * (cp->kernel_w - 1) + 1;
    int64_t h = (int64_t)in.h + cp->pad_top + cp->pad_bottom - span_h;
    int64_t w = (int64_t)in.w + cp->pad_left + cp->pad_right - span_w;
    return h >= 0 && w >= 0 && h / cp->stride_h + 1 == out.h && w / cp->stride_w + 1 == out.w;
}

/* Packs the weights of every conv/dw/dense op the fast kernels take (8-bit input, 4/8-bit
 * weights; hqrt_i_conv_prepare_kernel decides), unless HQ_EMULATE_KERNELS=reference. The
 * emulator's buffers have no slack after them, so the kernels are told never to read past an
 * input (exact_reads). */
static hq_status_t prepare_fast(hqi_qemu_t *q, hq_error_t *err)
{
    const char *choice = getenv("HQ_EMULATE_KERNELS");
    if (choice && !strcmp(choice, "reference"))
        return HQ_OK;
    const int count = hq_graph_layer_count(q->graph);
    q->fast = calloc((size_t)count + 1, sizeof *q->fast);
    if (!q->fast)
        return hqi_nomem(err, "quantized emulator");
    for (int i = 0; i < count; i++) {
        const hq_layer_t *layer = hq_graph_layer(q->graph, i);
        const hqi_op_t *op = &q->ops[i];
        bool dense = op->code == HQX_OP_DENSE;
        if ((op->code != HQX_OP_CONV || is_affine(layer)) && !dense)
            continue;
        hq_shape_t in_shape =
            batched(hq_graph_layer(q->graph, layer->inputs[0]), layer->input_ports[0], 1);
        hq_shape_t out_shape = batched(layer, 0, 1);
        hqrt_dims_t in, out;
        if (to_dims(&in_shape, &in, NULL) != HQ_OK || to_dims(&out_shape, &out, NULL) != HQ_OK)
            continue; /* the layer call reports it */
        if (dense) {
            in = (hqrt_dims_t){1, 1, 1, (int32_t)hqi_shape_count(&in_shape)};
            out = (hqrt_dims_t){1, 1, 1, (int32_t)hqi_shape_count(&out_shape)};
        }
        const hqrt_conv_params_t *cp = &op->u.conv.params;
        if (hqrt_output_stage_check(&cp->out, out.c) != HQRT_KERNEL_OK ||
            (!dense && !conv_geometry_ok(cp, in, out)))
            continue; /* likewise */
        hqrt_error_t rerr;
        if (hqrt_i_conv_prepare_kernel(cp, dense, in, out, op->u.conv.weights.data,
                                       op->u.conv.bias.data, true, q->name, &q->fast[i],
                                       &rerr) != HQRT_OK)
            return hqi_error(err, HQ_ERR_NOMEM, "%s", rerr.message);
    }
    return HQ_OK;
}

hq_status_t hqi_qemu_create(const hq_graph_t *graph, const hq_npz_t *qparams, const char *name,
                            hqi_qemu_t **out, hq_error_t *err)
{
    if (!out)
        return hqi_error(err, HQ_ERR_ARGUMENT, "quantized emulator: out is NULL");
    *out = NULL;
    if (!name)
        name = "quantized emulator";
    hqi_qemu_t *q = calloc(1, sizeof *q);
    if (!q)
        return hqi_nomem(err, "quantized emulator");
    q->graph = graph;
    q->threads = hqi_default_threads();
    q->name = hqi_strdup(name);
    const int count = hq_graph_layer_count(graph);
    q->last_step = calloc((size_t)count + 1, sizeof *q->last_step);
    hq_status_t st = q->name && q->last_step ? HQ_OK : hqi_nomem(err, "quantized emulator");
    if (st == HQ_OK)
        st = hqi_qmodel_load(graph, qparams, name, &q->model, err);
    if (st == HQ_OK) {
        q->ops = calloc((size_t)count + 1, sizeof *q->ops);
        if (!q->ops)
            st = hqi_nomem(err, "quantized emulator");
    }
    for (int i = 0; i < count && st == HQ_OK; i++) {
        const hq_layer_t *layer = hq_graph_layer(graph, i);
        if (layer->type == HQ_LAYER_INPUT)
            continue;
        if (!hqi_lower_supported(layer->type)) {
            st =
                hqi_error(err, HQ_ERR_UNSUPPORTED, "%s: layer '%s': type '%s' cannot run quantized",
                          name, layer->name, hq_layer_type_name(layer->type));
            break;
        }
        hq_error_t detail = {0};
        st = hqi_lower_layer(graph, q->model, i, &q->ops[i], &detail);
        if (st != HQ_OK)
            hqi_error(err, st, "%s: layer '%s': %s", name, layer->name, detail.message);
        else if (!qkernels[q->ops[i].code])
            st = hqi_error(err, HQ_ERR_UNSUPPORTED, "%s: layer '%s': op %u cannot run quantized",
                           name, layer->name, q->ops[i].code);
    }
    int order_count = 0;
    const int *order = hq_graph_topo_order(graph, &order_count);
    for (int t = 0; t < order_count && st == HQ_OK; t++) {
        const hq_layer_t *layer = hq_graph_layer(graph, order[t]);
        q->last_step[order[t]] = t > q->last_step[order[t]] ? t : q->last_step[order[t]];
        for (int k = 0; k < layer->input_count; k++)
            if (q->last_step[layer->inputs[k]] < t)
                q->last_step[layer->inputs[k]] = t;
    }
    if (st == HQ_OK)
        st = prepare_fast(q, err);
    if (st != HQ_OK) {
        hqi_qemu_destroy(q);
        return st;
    }
    *out = q;
    return HQ_OK;
}

void hqi_qemu_destroy(hqi_qemu_t *q)
{
    if (!q)
        return;
    for (int i = 0; q->fast && i < hq_graph_layer_count(q->graph); i++)
        free(q->fast[i].packed);
    free(q->fast);
    free(q->ops);
    hqi_qmodel_destroy(q->model);
    hqi_threadpool_destroy(q->pool);
    free(q->last_step);
    free(q->name);
    free(q);
}

const hqi_qlayer_t *hqi_qemu_layer(const hqi_qemu_t *q, int layer)
{
    return q && layer >= 0 && layer < q->model->layer_count ? &q->model->layers[layer] : NULL;
}

void hqi_qemu_quantize(const hqi_qlayer_t *q, const float *x, int64_t count, void *codes)
{
    for (int64_t i = 0; i < count; i++)
        hqrt_store(codes, q->bits, (size_t)i, hqrt_quantize_value(x[i], q->scale, q->zp, q->bits));
}

void hqi_qemu_dequantize(const hqi_qlayer_t *q, const void *codes, int64_t count, float *x)
{
    for (int64_t i = 0; i < count; i++)
        x[i] = hqrt_dequantize_value(hqrt_load(codes, q->bits, (size_t)i), q->scale, q->zp);
}

/* ---- running ------------------------------------------------------------------------------------
 */

hq_status_t hqi_qemu_set_threads(hqi_qemu_t *q, int threads, hq_error_t *err)
{
    if (!q || threads < 0 || threads > HQI_THREADS_MAX)
        return hqi_error(err, HQ_ERR_ARGUMENT, "quantized emulator: %d threads, need 1 to %d",
                         threads, HQI_THREADS_MAX);
    if (threads == 0)
        threads = hqi_default_threads();
    if (threads != q->threads) {
        hqi_threadpool_destroy(q->pool);
        q->pool = NULL;
        q->threads = threads;
    }
    return HQ_OK;
}

void hqi_qemu_time_layers(hqi_qemu_t *q, double *type_seconds, int64_t *type_calls)
{
    q->type_seconds = type_seconds;
    q->type_calls = type_seconds ? type_calls : NULL;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One layer call on `batch` samples, on the calling thread. */
static hq_status_t run_layer_serial(const hqi_qemu_t *q, const hq_layer_t *layer, int index,
                                    int64_t batch, const void *const *inputs, void *const *outputs,
                                    hq_error_t *err)
{
    hq_shape_t in_shapes[64], out_shapes[256];
    for (int k = 0; k < layer->input_count; k++)
        in_shapes[k] =
            batched(hq_graph_layer(q->graph, layer->inputs[k]), layer->input_ports[k], batch);
    for (int p = 0; p < hq_layer_port_count(layer); p++)
        out_shapes[p] = batched(layer, p, batch);
    qcall_t c = {.qemu = q,
                 .layer = layer,
                 .op = &q->ops[index],
                 .batch = batch,
                 .in_shapes = in_shapes,
                 .inputs = inputs,
                 .out_shapes = out_shapes,
                 .outputs = outputs,
                 .fast = q->fast && q->fast[index].fast ? &q->fast[index] : NULL};
    hq_error_t detail = {0};
    hq_status_t st = qkernels[c.op->code](&c, &detail);
    if (st != HQ_OK)
        return hqi_error(err, st, "%s: layer '%s': %s", q->name, layer->name, detail.message);
    return HQ_OK;
}

/* Layer types whose kernel treats the batch as an outer loop over independent samples (every
 * operand's axis 0 is the batch, nothing moves data across it): their samples can be split over
 * threads, each slice computing exactly the codes the whole call would. */
static bool splits_by_sample(hq_layer_type_t type)
{
    switch (type) {
    case HQ_LAYER_CONV:
    case HQ_LAYER_DW:
    case HQ_LAYER_DECONV:
    case HQ_LAYER_DENSE:
    case HQ_LAYER_BATCH_NORM:
    case HQ_LAYER_NORMALIZATION:
    case HQ_LAYER_MAXPOOL:
    case HQ_LAYER_AVGPOOL:
    case HQ_LAYER_GLOBAL_AVG_POOL:
    case HQ_LAYER_EW_ADD:
    case HQ_LAYER_EW_SUB:
    case HQ_LAYER_EW_MULT:
    case HQ_LAYER_EW_MAX:
    case HQ_LAYER_EW_MIN:
    case HQ_LAYER_ACTIVATION:
    case HQ_LAYER_RESIZE:
        return true;
    default:
        return false;
    }
}

typedef struct slice_job {
    const hqi_qemu_t *q;
    const hq_layer_t *layer;
    int index;
    int64_t batch, slices;
    const void *const *inputs;
    void *const *outputs;
    hq_status_t *status; /* per slice */
    hq_error_t *errors;  /* per slice */
} slice_job_t;

static void run_slice(void *context, int64_t task, int thread)
{
    (void)thread;
    const slice_job_t *j = context;
    const hq_layer_t *layer = j->layer;
    const int64_t first = j->batch * task / j->slices, last = j->batch * (task + 1) / j->slices;
    const void *ins[64];
    void *outs[256];
    for (int k = 0; k < layer->input_count; k++) {
        const hq_layer_t *producer = hq_graph_layer(j->q->graph, layer->inputs[k]);
        hq_shape_t one = batched(producer, layer->input_ports[k], 1);
        size_t bytes =
            (size_t)hqi_shape_count(&one) * code_size(j->q->model->layers[layer->inputs[k]].bits);
        ins[k] = (const char *)j->inputs[k] + (size_t)first * bytes;
    }
    for (int p = 0; p < hq_layer_port_count(layer); p++) {
        hq_shape_t one = batched(layer, p, 1);
        size_t bytes = (size_t)hqi_shape_count(&one) * code_size(j->q->model->layers[j->index].bits);
        outs[p] = (char *)j->outputs[p] + (size_t)first * bytes;
    }
    j->status[task] =
        run_layer_serial(j->q, layer, j->index, last - first, ins, outs, &j->errors[task]);
}

/* The pool is created on first use; the emulator is otherwise read-only during a run. */
static hq_status_t ensure_pool(const hqi_qemu_t *q, hq_error_t *err)
{
    hqi_qemu_t *mutable_q = (hqi_qemu_t *)q;
    return q->pool ? HQ_OK : hqi_threadpool_create(q->threads, &mutable_q->pool, err);
}

hq_status_t hqi_qemu_run_layer(const hqi_qemu_t *q, int index, int64_t batch,
                               const void *const *inputs, void *const *outputs, hq_error_t *err)
{
    const hq_layer_t *layer = hq_graph_layer(q->graph, index);
    if (!layer || batch < 1)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: bad layer or batch", q->name);
    if (layer->type == HQ_LAYER_INPUT)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: layer '%s': an input layer has no kernel",
                         q->name, layer->name);
    if (layer->input_count > 64 || hq_layer_port_count(layer) > 256)
        return hqi_error(err, HQ_ERR_LIMIT, "%s: layer '%s': too many inputs or outputs", q->name,
                         layer->name);
    int64_t slices = q->threads < batch ? q->threads : batch;
    if (slices < 2 || !splits_by_sample(layer->type))
        return run_layer_serial(q, layer, index, batch, inputs, outputs, err);
    hq_status_t created = ensure_pool(q, err);
    if (created != HQ_OK)
        return created;
    hq_status_t status[HQI_THREADS_MAX];
    hq_error_t *errors = calloc((size_t)slices, sizeof *errors);
    if (!errors)
        return hqi_nomem(err, "quantized emulator");
    slice_job_t job = {q, layer, index, batch, slices, inputs, outputs, status, errors};
    hqi_threadpool_run(q->pool, slices, run_slice, &job);
    hq_status_t st = HQ_OK;
    for (int64_t t = 0; t < slices && st == HQ_OK; t++)
        if (status[t] != HQ_OK) {
            st = status[t];
            if (err)
                *err = errors[t];
        }
    free(errors);
    return st;
}

/* Index of `layer` in a list, -1 when absent. */
static int position(const int *list, int count, int layer)
{
    for (int i = 0; i < count; i++)
        if (list[i] == layer)
            return i;
    return -1;
}

hq_status_t hqi_qemu_run(hqi_qemu_t *q, int64_t batch, const float *const *inputs,
                         float *const *outputs, hq_emulator_tap_fn tap, void *user, hq_error_t *err)
{
    const hq_graph_t *g = q->graph;
    const int count = hq_graph_layer_count(g);
    int in_count = 0, out_count = 0, order_count = 0;
    const int *graph_inputs = hq_graph_inputs(g, &in_count);
    const int *graph_outputs = hq_graph_outputs(g, &out_count);
    const int *order = hq_graph_topo_order(g, &order_count);
    /* codes[layer][port]: allocated when the layer runs, freed after its last reader */
    void ***codes = calloc((size_t)count + 1, sizeof *codes);
    float *deq = NULL;
    size_t deq_size = 0;
    hq_status_t st = codes ? HQ_OK : hqi_nomem(err, "quantized emulator");
    /* timed runs start the threads first, so that the first split layer is not charged for it */
    if (st == HQ_OK && q->type_seconds && q->threads > 1 && batch > 1)
        st = ensure_pool(q, err);
    for (int t = 0; t < order_count && st == HQ_OK; t++) {
        const int i = order[t];
        const hq_layer_t *layer = hq_graph_layer(g, i);
        const hqi_qlayer_t *ql = &q->model->layers[i];
        const int ports = hq_layer_port_count(layer);
        codes[i] = calloc((size_t)ports, sizeof *codes[i]);
        if (!codes[i]) {
            st = hqi_nomem(err, "quantized emulator");
            break;
        }
        for (int p = 0; p < ports && st == HQ_OK; p++) {
            hq_shape_t s = batched(layer, p, batch);
            codes[i][p] = malloc((size_t)hqi_shape_count(&s) * code_size(ql->bits) + 1);
            if (!codes[i][p])
                st = hqi_nomem(err, "quantized emulator");
        }
        if (st != HQ_OK)
            break;
        if (layer->type == HQ_LAYER_INPUT) {
            int k = position(graph_inputs, in_count, i);
            if (k < 0 || !inputs || !inputs[k]) {
                st = hqi_error(err, HQ_ERR_ARGUMENT, "%s: no data for input layer '%s'", q->name,
                               layer->name);
                break;
            }
            hq_shape_t s = batched(layer, 0, batch);
            hqi_qemu_quantize(ql, inputs[k], hqi_shape_count(&s), codes[i][0]);
        } else {
            const void *ins[64];
            for (int k = 0; k < layer->input_count && k < 64; k++)
                ins[k] = codes[layer->inputs[k]][layer->input_ports[k]];
            double start = q->type_seconds ? now_seconds() : 0.0;
            st = hqi_qemu_run_layer(q, i, batch, ins, codes[i], err);
            if (q->type_seconds) {
                q->type_seconds[layer->type] += now_seconds() - start;
                q->type_calls[layer->type]++;
            }
        }
        for (int p = 0; p < ports && st == HQ_OK; p++) {
            hq_shape_t s = batched(layer, p, batch);
            int64_t n = hqi_shape_count(&s);
            int o = p == 0 ? position(graph_outputs, out_count, i) : -1;
            float *dst = o >= 0 && outputs && outputs[o] ? outputs[o] : NULL;
            if (!dst && !tap)
                continue;
            if (!dst) {
                if ((size_t)n > deq_size) {
                    float *grown = realloc(deq, (size_t)n * sizeof *deq);
                    if (!grown) {
                        st = hqi_nomem(err, "quantized emulator");
                        break;
                    }
                    deq = grown;
                    deq_size = (size_t)n;
                }
                dst = deq;
            }
            hqi_qemu_dequantize(ql, codes[i][p], n, dst);
            if (tap)
                st = tap(user, i, p, &s, dst, err);
        }
        /* free what no later layer reads */
        for (int k = 0; k < layer->input_count; k++) {
            int producer = layer->inputs[k];
            if (q->last_step[producer] == t && codes[producer]) {
                for (int p = 0; p < hq_layer_port_count(hq_graph_layer(g, producer)); p++)
                    free(codes[producer][p]);
                free(codes[producer]);
                codes[producer] = NULL;
            }
        }
    }
    for (int i = 0; codes && i < count; i++) {
        if (!codes[i])
            continue;
        for (int p = 0; p < hq_layer_port_count(hq_graph_layer(g, i)); p++)
            free(codes[i][p]);
        free(codes[i]);
    }
    free(codes);
    free(deq);
    return st;
}
