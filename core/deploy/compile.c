/* compile.c — hq_compile: a quantized archive -> a `.hqx` integer program (docs/deploy.md).
 *
 * The integer params are decoded by the numerics' decoder (hqi_qmodel_load) and each layer is
 * lowered to its runtime op by hqi_lower_layer (core/numerics/lower.c), the very op the quantized
 * emulator runs: this file only checks the program format's limits and writes the op's kernel
 * arguments in the program's layout. Layout, arena plan and checksum are the builder's
 * (core/runtime/hqrt_builder.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq/deploy.h"
#include "hq/hqrt.h"
#include "numerics/lower.h"
#include "numerics/qmodel.h"
#include "runtime/hqrt_builder.h"
#include "util/util.h"

/* A conv/dense/deconv layer whose output runs through a chain of per-code ops (elementwise ops
 * with a one-element constant, lookup tables, per-tensor activations) read by nothing else: the
 * chain becomes a table in the layer's output stage (see plan_fusions). */
typedef struct fusion {
    int last;         /* the chain's last layer: its tensor is the op's output */
    int32_t pre_zp;   /* the stage's table index is clamp(y + pre_zp, 0, 255) */
    uint8_t lut[256]; /* the chain's output code for each table index */
} fusion_t;

enum { SKIP_LAYER = 1, SKIP_OP = 2 };

typedef struct compiler {
    const hq_graph_t *graph;
    const hqi_qmodel_t *qmodel;
    hqrt_builder_t *b;
    int32_t **tensor; /* [layer][port] -> tensor id */
    fusion_t **fusion; /* [layer]: the chain fused into a conv's stage, or NULL */
    uint8_t *skip;     /* [layer]: SKIP_LAYER computed by a fused stage (or a constant only it
                          read), SKIP_OP the same but its tensor is the fused op's output */
    const char *name;  /* archive name for messages */
    hq_error_t *err;
} compiler_t;

/* Tensor extents of a graph shape (batch dropped): rank 4 [H,W,C], 3 [1,W,C], 2 [1,1,C]. */
static bool extents(const hq_shape_t *s, uint32_t *ndim, uint32_t *h, uint32_t *w, uint32_t *c)
{
    *ndim = (uint32_t)s->ndim;
    *h = *w = 1;
    for (int d = 1; d < s->ndim; d++)
        if (s->dims[d] < 1 || s->dims[d] > HQX_MAX_DIM)
            return false;
    switch (s->ndim) {
    case 4:
        *h = (uint32_t)s->dims[1];
        *w = (uint32_t)s->dims[2];
        *c = (uint32_t)s->dims[3];
        return true;
    case 3:
        *w = (uint32_t)s->dims[1];
        *c = (uint32_t)s->dims[2];
        return true;
    case 2:
        *c = (uint32_t)s->dims[1];
        return true;
    default:
        return false;
    }
}

static hq_status_t layer_error(compiler_t *cc, const hq_layer_t *l, const char *what)
{
    return hqi_error(cc->err, HQ_ERR_UNSUPPORTED, "%s: layer '%s' (%s): %s", cc->name, l->name,
                     hq_layer_type_name(l->type), what);
}

static hq_status_t builder_error(compiler_t *cc, const hq_layer_t *l)
{
    return hqi_error(cc->err, HQ_ERR_INVALID, "%s: layer '%s': %s", cc->name,
                     l ? l->name : "(program)", hqrt_b_error(cc->b));
}

static size_t code_bytes(int bits)
{
    return bits == 16 ? 2 : 1;
}

/* The on-disk output stage of a kernel's output stage; LUTs have 2^out_bits codes. */
static hqx_stage_t stage_blobs(compiler_t *cc, const hqrt_output_stage_t *s)
{
    hqx_stage_t d = {.path = s->path,
                     .count = s->count,
                     .pre_zp = s->pre_zp,
                     .act_min = s->act_min,
                     .act_max = s->act_max};
    size_t n = (size_t)(s->count > 0 ? s->count : 0) * sizeof(int32_t);
    if (s->multiplier)
        d.multiplier = hqrt_b_blob(cc->b, s->multiplier, n);
    if (s->shift)
        d.shift = hqrt_b_blob(cc->b, s->shift, n);
    if (s->multiplier_neg && s->shift_neg) {
        d.multiplier_neg = hqrt_b_blob(cc->b, s->multiplier_neg, n);
        d.shift_neg = hqrt_b_blob(cc->b, s->shift_neg, n);
    }
    if (s->lut)
        d.lut = hqrt_b_blob(cc->b, s->lut,
                            ((size_t)1 << s->out_bits) * code_bytes(s->out_bits));
    return d;
}

/* Input tensor ids of a layer, in the op's order. */
static void input_ids(compiler_t *cc, const hq_layer_t *l, int32_t *ids)
{
    for (int k = 0; k < l->input_count; k++)
        ids[k] = cc->tensor[l->inputs[k]][l->input_ports[k]];
}

static hqx_blob_t data_blob(compiler_t *cc, hqi_op_data_t d)
{
    return hqrt_b_blob(cc->b, d.data, d.size);
}

/* The params struct of a lowered op, in the program's layout; *size its bytes. */
static void serialize(compiler_t *cc, const hqi_op_t *op, void *params, uint32_t *size)
{
    switch (op->code) {
    case HQX_OP_CONV:
    case HQX_OP_DENSE:
    case HQX_OP_DECONV: {
        const hqrt_conv_params_t *k = &op->u.conv.params;
        hqx_conv_params_t cp = {.kernel_h = k->kernel_h,
                                .kernel_w = k->kernel_w,
                                .stride_h = k->stride_h,
                                .stride_w = k->stride_w,
                                .dilation_h = k->dilation_h,
                                .dilation_w = k->dilation_w,
                                .pad_top = k->pad_top,
                                .pad_left = k->pad_left,
                                .pad_bottom = k->pad_bottom,
                                .pad_right = k->pad_right,
                                .groups = k->groups,
                                .weight_bits = k->weight_bits,
                                .addend_multiplier = op->u.conv.addend_multiplier,
                                .addend_shift = op->u.conv.addend_shift,
                                .output_pad_h = k->output_pad_h,
                                .output_pad_w = k->output_pad_w};
        cp.weights = data_blob(cc, op->u.conv.weights);
        cp.bias = data_blob(cc, op->u.conv.bias);
        cp.stage = stage_blobs(cc, &k->out);
        memcpy(params, &cp, *size = sizeof cp);
        return;
    }
    case HQX_OP_MAXPOOL:
    case HQX_OP_AVGPOOL:
    case HQX_OP_GLOBAL_AVG: {
        const hqrt_pool_params_t *k = &op->u.pool;
        hqx_pool_params_t pp = {.kernel_h = k->kernel_h,
                                .kernel_w = k->kernel_w,
                                .stride_h = k->stride_h,
                                .stride_w = k->stride_w,
                                .pad_top = k->pad_top,
                                .pad_left = k->pad_left,
                                .pad_bottom = k->pad_bottom,
                                .pad_right = k->pad_right,
                                .count_include_pad = k->count_include_pad};
        if (op->code != HQX_OP_MAXPOOL)
            pp.stage = stage_blobs(cc, &k->out);
        memcpy(params, &pp, *size = sizeof pp);
        return;
    }
    case HQX_OP_DILATED_MAXPOOL: {
        const hqrt_pool_params_t *k = &op->u.pool;
        hqx_dilated_pool_params_t dp = {.pool = {.kernel_h = k->kernel_h,
                                                 .kernel_w = k->kernel_w,
                                                 .stride_h = k->stride_h,
                                                 .stride_w = k->stride_w,
                                                 .pad_top = k->pad_top,
                                                 .pad_left = k->pad_left,
                                                 .pad_bottom = k->pad_bottom,
                                                 .pad_right = k->pad_right},
                                        .dilation_h = k->dilation_h,
                                        .dilation_w = k->dilation_w};
        memcpy(params, &dp, *size = sizeof dp);
        return;
    }
    case HQX_OP_ELTWISE: {
        const hqrt_ew_params_t *k = &op->u.eltwise;
        hqx_eltwise_params_t ep = {.op = k->op,
                                   .a_multiplier = k->a_multiplier,
                                   .a_shift = k->a_shift,
                                   .b_multiplier = k->b_multiplier,
                                   .b_shift = k->b_shift};
        ep.stage = stage_blobs(cc, &k->out);
        memcpy(params, &ep, *size = sizeof ep);
        return;
    }
    case HQX_OP_ACTIVATION:
    case HQX_OP_LUT: {
        hqx_stage_params_t sp = {0};
        if (op->code == HQX_OP_LUT)
            sp.stage.lut = data_blob(cc, op->u.activation.lut);
        else
            sp.stage = stage_blobs(cc, &op->u.activation.stage);
        memcpy(params, &sp, *size = sizeof sp);
        return;
    }
    case HQX_OP_SOFTMAX: {
        hqx_softmax_params_t sp = {.axis = op->u.softmax.axis};
        sp.exp_lut = data_blob(cc, op->u.softmax.exp_lut);
        sp.stage = stage_blobs(cc, &op->u.softmax.stage);
        memcpy(params, &sp, *size = sizeof sp);
        return;
    }
    case HQX_OP_CONST: {
        hqx_const_params_t kp = {data_blob(cc, op->u.constant.codes)};
        memcpy(params, &kp, *size = sizeof kp);
        return;
    }
    case HQX_OP_SLICE: {
        hqx_slice_params_t sp = {0};
        memcpy(sp.begin, op->u.slice.params.begin, sizeof sp.begin);
        memcpy(sp.end, op->u.slice.params.end, sizeof sp.end);
        memcpy(sp.step, op->u.slice.params.step, sizeof sp.step);
        memcpy(params, &sp, *size = sizeof sp);
        return;
    }
    case HQX_OP_PAD: {
        hqx_pad_params_t pp = {.mode = op->u.pad.params.mode,
                               .value_code = op->u.pad.params.value_code};
        memcpy(pp.before, op->u.pad.params.before, sizeof pp.before);
        memcpy(pp.after, op->u.pad.params.after, sizeof pp.after);
        memcpy(params, &pp, *size = sizeof pp);
        return;
    }
    case HQX_OP_RESIZE: {
        hqx_resize_params_t rp = {.method = op->u.resize.method,
                                  .coords = op->u.resize.coords,
                                  .round_prefer_floor = op->u.resize.round_prefer_floor};
        memcpy(params, &rp, *size = sizeof rp);
        return;
    }
    case HQX_OP_DEPTH_TO_SPACE:
    case HQX_OP_SPACE_TO_DEPTH: {
        hqx_block_params_t bp = {.block = op->u.block.block, .crd = op->u.block.crd};
        memcpy(params, &bp, *size = sizeof bp);
        return;
    }
    case HQX_OP_TRANSPOSE: {
        hqx_transpose_params_t tp;
        memcpy(tp.perm, op->u.transpose.perm, sizeof tp.perm);
        memcpy(params, &tp, *size = sizeof tp);
        return;
    }
    case HQX_OP_LAYER_NORM: {
        hqx_layer_norm_params_t np = {.weight_bits = op->u.layer_norm.params.weight_bits,
                                      .epsilon_term = op->u.layer_norm.params.epsilon_term};
        np.gamma = data_blob(cc, op->u.layer_norm.gamma);
        np.bias = data_blob(cc, op->u.layer_norm.bias);
        np.stage = stage_blobs(cc, &op->u.layer_norm.params.out);
        memcpy(params, &np, *size = sizeof np);
        return;
    }
    case HQX_OP_TRANSPOSE_VIEW: {
        hqx_transpose_view_params_t vp = {.ndim = op->u.transpose.view_ndim};
        memcpy(vp.dims, op->u.transpose.view, sizeof vp.dims);
        memcpy(vp.perm, op->u.transpose.perm, sizeof vp.perm);
        memcpy(params, &vp, *size = sizeof vp);
        return;
    }
    default: { /* CONCAT, SPLIT, REDUCE_MAX, ARGMAX, COPY */
        hqx_axis_params_t ap = {.axis = op->u.axis.axis};
        memcpy(params, &ap, *size = sizeof ap);
        return;
    }
    }
}

/* One layer: its op as the numerics lower it, checked against the program format's limits and
 * serialized. */
static hq_status_t emit(compiler_t *cc, int index)
{
    const hq_layer_t *l = hq_graph_layer(cc->graph, index);
    int32_t ins[HQX_MAX_OP_INPUTS];
    if (l->input_count > (int)HQX_MAX_OP_INPUTS)
        return layer_error(cc, l, "more inputs than the program format allows (64)");
    if (!hqi_lower_supported(l->type))
        return layer_error(cc, l, "not supported by the deploy runtime");
    hqi_op_t op;
    hq_error_t detail = {0};
    if (hqi_lower_layer(cc->graph, cc->qmodel, index, &op, &detail) != HQ_OK)
        return layer_error(cc, l, detail.message);
    if (op.code == HQX_OP_SPLIT && op.output_count > (int)HQX_MAX_OP_OUTPUTS)
        return layer_error(cc, l, "more pieces than the program format allows (64)");
    if (op.code == HQX_OP_SLICE || op.code == HQX_OP_TRANSPOSE) {
        hq_shape_t is =
            hq_layer_port_shape(hq_graph_layer(cc->graph, l->inputs[0]), l->input_ports[0]);
        uint32_t nd, h, w, c;
        if (op.code == HQX_OP_SLICE && !extents(&is, &nd, &h, &w, &c))
            return layer_error(cc, l, "input rank outside the program format");
        if (op.code == HQX_OP_TRANSPOSE && is.ndim > 4)
            return layer_error(cc, l, "rank above 4");
    }
    input_ids(cc, l, ins);
    const fusion_t *f = cc->fusion[index];
    if (f) { /* the chain's table as the stage's, the chain's last tensor as the output */
        hqrt_output_stage_t *s = &op.u.conv.params.out;
        s->lut = f->lut;
        s->pre_zp = f->pre_zp;
        s->act_min = 0;
        s->act_max = 255;
    }
    union {
        hqx_conv_params_t conv;
        hqx_softmax_params_t softmax;
        hqx_pool_params_t pool;
        hqx_dilated_pool_params_t dilated_pool;
        hqx_eltwise_params_t eltwise;
        hqx_layer_norm_params_t layer_norm;
    } params; /* room for the largest params struct */
    uint32_t size = 0;
    serialize(cc, &op, &params, &size);
    int rc = hqrt_b_op(cc->b, op.code, l->name, &params, size, ins, (uint32_t)op.input_count,
                       cc->tensor[f ? f->last : index], (uint32_t)op.output_count);
    return rc ? builder_error(cc, l) : HQ_OK;
}

/* ---- stage fusion ------------------------------------------------------------------------------
 * A layer's 8-bit output code is finish(stage, y) = clamp(base[clamp(y + P, 0, 255)], act_min,
 * act_max), with base the stage's table (P = pre_zp) or the identity (P = out_zp; act_min and
 * act_max lie inside [0, 255], so clamping first to the codes' range changes nothing). An op that
 * maps each 8-bit code to an 8-bit code on its own (an elementwise op with a one-element
 * constant and a per-tensor stage, a lookup table, a per-tensor activation) is a function F of
 * 256 values, computed here by the reference kernel itself; a chain of them after a conv whose
 * output nothing else reads is the stage with table F(clamp(base[i], act_min, act_max)), index
 * offset P and bounds [0, 255]. The program then computes every code of the chain's last tensor
 * in the conv's output stage, exactly as the separate ops would from the same codes, and the
 * intermediate tensors are never written. */

/* The layer's only consumer, or -1 (several readers, a graph output or a splitter). */
static int only_consumer(compiler_t *cc, int index, const bool *is_output)
{
    const hq_layer_t *l = hq_graph_layer(cc->graph, index);
    if (is_output[index] || hq_layer_port_count(l) != 1 || l->output_count != 1)
        return -1;
    return l->outputs[0];
}

/* The one code of a one-element constant layer read only by `consumer`, or -1. */
static int32_t const_code(compiler_t *cc, int index, int consumer, const bool *is_output)
{
    const hq_layer_t *l = hq_graph_layer(cc->graph, index);
    if (l->type != HQ_LAYER_CONST_INPUT || only_consumer(cc, index, is_output) != consumer)
        return -1;
    hqi_op_t op;
    hq_error_t ignored = {0};
    if (hqi_lower_layer(cc->graph, cc->qmodel, index, &op, &ignored) != HQ_OK ||
        op.code != HQX_OP_CONST || !op.u.constant.codes.data)
        return -1;
    size_t esize = code_bytes(op.u.constant.bits);
    if (op.u.constant.codes.size != esize)
        return -1;
    return hqrt_load(op.u.constant.codes.data, op.u.constant.bits, 0);
}

/* F of layer `index` reading the 8-bit chain tensor: codes[i] = F(codes[i]) for the 256 entries;
 * false when the layer is not such a per-code op. *constant: the constant layer it reads, or -1. */
static bool apply_per_code(compiler_t *cc, int index, int from, const bool *is_output,
                           uint8_t codes[256], int *constant)
{
    const hq_layer_t *l = hq_graph_layer(cc->graph, index);
    hqi_op_t op;
    hq_error_t ignored = {0};
    *constant = -1;
    if (!hqi_lower_supported(l->type) ||
        hqi_lower_layer(cc->graph, cc->qmodel, index, &op, &ignored) != HQ_OK)
        return false;
    uint8_t out[256];
    const hqrt_shape_t all = {.ndim = 1, .dims = {256}}, one = {.ndim = 1, .dims = {1}};
    if (op.code == HQX_OP_ELTWISE && l->input_count == 2) {
        const hqrt_ew_params_t *p = &op.u.eltwise;
        int slot = l->inputs[0] == from ? 0 : 1, other = l->inputs[1 - slot];
        if (l->inputs[slot] != from || other == from || p->out.count != 1 || p->out.out_bits != 8 ||
            (slot == 0 ? p->a_bits : p->b_bits) != 8)
            return false;
        int32_t c = const_code(cc, other, index, is_output);
        if (c < 0)
            return false;
        uint8_t c8[1] = {(uint8_t)c};
        uint16_t c16[1] = {(uint16_t)c};
        const void *cv = (slot == 0 ? p->b_bits : p->a_bits) == 16 ? (const void *)c16 : c8;
        int rc = slot == 0 ? hqrt_elementwise(p, &all, codes, &one, cv, &all, out)
                           : hqrt_elementwise(p, &one, cv, &all, codes, &all, out);
        if (rc != HQRT_KERNEL_OK)
            return false;
        *constant = other;
    } else if (op.code == HQX_OP_LUT && l->input_count == 1) {
        if (op.u.activation.in_bits != 8 || op.u.activation.out_bits != 8 ||
            !op.u.activation.lut.data || op.u.activation.lut.size != 256)
            return false;
        for (int i = 0; i < 256; i++)
            out[i] = ((const uint8_t *)op.u.activation.lut.data)[codes[i]];
    } else if (op.code == HQX_OP_ACTIVATION && l->input_count == 1) {
        const hqrt_output_stage_t *st = &op.u.activation.stage;
        if (op.u.activation.in_bits != 8 || st->count != 1 || st->out_bits != 8 ||
            hqrt_activation(8, op.u.activation.in_zp, st, 1, 256, codes, out) != HQRT_KERNEL_OK)
            return false;
    } else {
        return false;
    }
    memcpy(codes, out, sizeof out);
    return true;
}

/* Finds every conv/dense/deconv whose 8-bit output feeds such a chain, computes its table and
 * marks the chain's layers (and the constants only they read) as skipped. */
static hq_status_t plan_fusions(compiler_t *cc, const int *order, int order_count)
{
    int count = hq_graph_layer_count(cc->graph), out_count = 0;
    const int *gout = hq_graph_outputs(cc->graph, &out_count);
    bool *is_output = calloc((size_t)count + 1, sizeof *is_output);
    if (!is_output)
        return hqi_nomem(cc->err, "compile");
    for (int i = 0; i < out_count; i++)
        is_output[gout[i]] = true;
    for (int t = 0; t < order_count; t++) {
        int index = order[t];
        const hq_layer_t *l = hq_graph_layer(cc->graph, index);
        if (cc->skip[index] || !hqi_lower_supported(l->type))
            continue;
        hqi_op_t op;
        hq_error_t ignored = {0};
        if (hqi_lower_layer(cc->graph, cc->qmodel, index, &op, &ignored) != HQ_OK ||
            (op.code != HQX_OP_CONV && op.code != HQX_OP_DENSE && op.code != HQX_OP_DECONV))
            continue;
        const hqrt_output_stage_t *s = &op.u.conv.params.out;
        if (s->out_bits != 8)
            continue;
        uint8_t codes[256];
        for (int i = 0; i < 256; i++) {
            int32_t base = s->lut ? ((const uint8_t *)s->lut)[i] : i;
            codes[i] = (uint8_t)(base < s->act_min   ? s->act_min
                                 : base > s->act_max ? s->act_max
                                                     : base);
        }
        int last = index, next, constant;
        while ((next = only_consumer(cc, last, is_output)) >= 0 &&
               apply_per_code(cc, next, last, is_output, codes, &constant)) {
            cc->skip[next] = SKIP_LAYER;
            if (constant >= 0)
                cc->skip[constant] = SKIP_LAYER;
            last = next;
        }
        if (last == index)
            continue;
        cc->skip[last] = SKIP_OP;
        cc->fusion[index] = malloc(sizeof *cc->fusion[index]);
        if (!cc->fusion[index]) {
            free(is_output);
            return hqi_nomem(cc->err, "compile");
        }
        cc->fusion[index]->last = last;
        cc->fusion[index]->pre_zp = s->lut ? s->pre_zp : s->out_zp;
        memcpy(cc->fusion[index]->lut, codes, sizeof codes);
    }
    free(is_output);
    return HQ_OK;
}

static hq_status_t build(compiler_t *cc, const char *net, const char *hw_arch, uint8_t **bytes,
                         size_t *len)
{
    const hq_graph_t *g = cc->graph;
    int count = hq_graph_layer_count(g);
    cc->b = hqrt_b_create(net, hw_arch);
    cc->tensor = calloc((size_t)count + 1, sizeof *cc->tensor);
    cc->fusion = calloc((size_t)count + 1, sizeof *cc->fusion);
    cc->skip = calloc((size_t)count + 1, sizeof *cc->skip);
    if (!cc->b || !cc->tensor || !cc->fusion || !cc->skip)
        return hqi_nomem(cc->err, "compile");
    int order_count = 0;
    const int *order = hq_graph_topo_order(g, &order_count);
    hq_status_t planned = plan_fusions(cc, order, order_count);
    if (planned != HQ_OK)
        return planned;
    /* tensors first: one per output piece of every layer, with the layer's output encoding */
    for (int t = 0; t < order_count; t++) {
        const hq_layer_t *l = hq_graph_layer(g, order[t]);
        const hqi_qlayer_t *q = &cc->qmodel->layers[order[t]];
        int ports = hq_layer_port_count(l);
        cc->tensor[order[t]] = calloc((size_t)ports, sizeof(int32_t));
        if (!cc->tensor[order[t]])
            return hqi_nomem(cc->err, "compile");
        if (cc->skip[order[t]] == SKIP_LAYER || cc->fusion[order[t]])
            continue; /* never written: a fused conv writes its chain's last tensor */
        for (int port = 0; port < ports; port++) {
            hq_shape_t s = hq_layer_port_shape(l, port);
            uint32_t nd, h, w, c;
            if (!extents(&s, &nd, &h, &w, &c))
                return layer_error(cc, l, "output rank or extent outside the program format");
            char name[512];
            if (port)
                snprintf(name, sizeof name, "%s:%d", l->name, port);
            else
                snprintf(name, sizeof name, "%s", l->name);
            int32_t id =
                hqrt_b_tensor(cc->b, name, nd, h, w, c, (uint32_t)q->bits, q->scale, q->zp);
            if (id < 0)
                return builder_error(cc, l);
            cc->tensor[order[t]][port] = id;
        }
    }
    for (int t = 0; t < order_count; t++) {
        const hq_layer_t *l = hq_graph_layer(g, order[t]);
        if (l->type == HQ_LAYER_INPUT || cc->skip[order[t]])
            continue;
        hq_status_t st = emit(cc, order[t]);
        if (st != HQ_OK)
            return st;
    }
    int in_count = 0, out_count = 0;
    const int *gin = hq_graph_inputs(g, &in_count);
    const int *gout = hq_graph_outputs(g, &out_count);
    int32_t *ins = calloc((size_t)in_count + 1, sizeof *ins);
    int32_t *outs = calloc((size_t)out_count + 1, sizeof *outs);
    if (!ins || !outs) {
        free(ins), free(outs);
        return hqi_nomem(cc->err, "compile");
    }
    for (int i = 0; i < in_count; i++)
        ins[i] = cc->tensor[gin[i]][0];
    for (int i = 0; i < out_count; i++)
        outs[i] = cc->tensor[gout[i]][0];
    int rc = hqrt_b_io(cc->b, ins, (uint32_t)in_count, outs, (uint32_t)out_count);
    free(ins), free(outs);
    if (rc || hqrt_b_finish(cc->b, bytes, len))
        return builder_error(cc, NULL);
    return HQ_OK;
}

hq_status_t hq_compile(hq_archive_t *archive, void **program, size_t *len, hq_error_t *err)
{
    if (program)
        *program = NULL;
    if (len)
        *len = 0;
    if (!archive)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_compile: archive is NULL");
    const char *name = hq_archive_path(archive);
    if (!name || !*name)
        name = hq_archive_net_name(archive);
    hq_model_state_t state = hq_archive_state(archive);
    if (state != HQ_STATE_QUANTIZED && state != HQ_STATE_COMPILED)
        return hqi_error(err, HQ_ERR_STATE,
                         "%s: state is %s; compile needs a quantized model (run hq optimize)", name,
                         hq_model_state_name(state));
    hq_graph_t *graph = NULL;
    hq_npz_t *qparams = NULL;
    hq_status_t st = hq_archive_graph(archive, &graph, err);
    if (st == HQ_OK)
        st = hq_archive_params(archive, HQ_PARAMS_QUANTIZED, &qparams, err);
    if (st == HQ_ERR_NOT_FOUND)
        st = hqi_error(err, HQ_ERR_STATE, "%s: no quantized params (<net>.q.npz)", name);
    hqi_qmodel_t *qmodel = NULL;
    if (st == HQ_OK)
        st = hqi_qmodel_load(graph, qparams, name, &qmodel, err);
    if (st != HQ_OK)
        return st;
    compiler_t cc = {.graph = graph, .qmodel = qmodel, .name = name, .err = err};
    uint8_t *bytes = NULL;
    size_t size = 0;
    st = build(&cc, hq_archive_net_name(archive), hq_archive_hw_arch(archive), &bytes, &size);
    for (int i = 0; cc.tensor && i < hq_graph_layer_count(graph); i++)
        free(cc.tensor[i]);
    for (int i = 0; cc.fusion && i < hq_graph_layer_count(graph); i++)
        free(cc.fusion[i]);
    free(cc.tensor);
    free(cc.fusion);
    free(cc.skip);
    hqrt_b_destroy(cc.b);
    hqi_qmodel_destroy(qmodel);
    if (st == HQ_OK) {
        /* the runtime's own validator has the last word before anything is stored */
        hqrt_model_t *check = NULL;
        hqrt_error_t rerr = {0};
        if (hqrt_open_memory(bytes, size, name, &check, &rerr) != HQRT_OK)
            st = hqi_error(err, HQ_ERR_INVALID, "compiled program does not validate: %s",
                           rerr.message);
        hqrt_close(check);
    }
    char member[512];
    if (st == HQ_OK) {
        snprintf(member, sizeof member, "%s.hqx", hq_archive_net_name(archive));
        st = hq_archive_set_member(archive, member, bytes, size, err);
    }
    if (st == HQ_OK)
        st = hq_archive_set_state(archive, HQ_STATE_COMPILED, err);
    if (st == HQ_OK && program) {
        *program = bytes;
        bytes = NULL;
    }
    if (st == HQ_OK && len)
        *len = size;
    free(bytes);
    return st;
}
