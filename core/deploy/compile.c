/* compile.c — hq_compile: a quantized archive -> a `.hqx` integer program (docs/deploy.md).
 *
 * The integer params are decoded by the numerics' own decoder (hqi_qmodel_load), and each layer
 * becomes the op whose runtime kernel is the one the quantized emulator calls for that layer type
 * (core/emulate/qemulator.c), with the same parameters: the program runs the same arithmetic by
 * construction. Layout, arena plan and checksum are the builder's (core/runtime/hqrt_builder.c).
 * Owner: deploy helper (issue 7). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq/deploy.h"
#include "hq/hqrt.h"
#include "quant/quant.h"
#include "runtime/hqrt_builder.h"
#include "util/util.h"

typedef struct compiler {
    const hq_graph_t *graph;
    const hqi_qmodel_t *qmodel;
    hqrt_builder_t *b;
    int32_t **tensor; /* [layer][port] -> tensor id */
    const char *name; /* archive name for messages */
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

/* The on-disk output stage of a decoded stage; LUTs have 2^out_bits codes. */
static hqx_stage_t stage_blobs(compiler_t *cc, const hqrt_output_stage_t *s, int out_bits)
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
        d.lut = hqrt_b_blob(cc->b, s->lut, ((size_t)1 << out_bits) * code_bytes(out_bits));
    return d;
}

/* Input tensor ids of a layer, in the op's order. */
static void input_ids(compiler_t *cc, const hq_layer_t *l, int32_t *ids)
{
    for (int k = 0; k < l->input_count; k++)
        ids[k] = cc->tensor[l->inputs[k]][l->input_ports[k]];
}

/* Per-sample element count of a layer's input k. */
static int64_t input_elements(compiler_t *cc, const hq_layer_t *l, int k)
{
    hq_shape_t s = hq_layer_port_shape(hq_graph_layer(cc->graph, l->inputs[k]), l->input_ports[k]);
    int64_t n = 1;
    for (int d = 1; d < s.ndim; d++)
        n *= s.dims[d];
    return n;
}

static hq_status_t emit(compiler_t *cc, int index)
{
    const hq_layer_t *l = hq_graph_layer(cc->graph, index);
    const hqi_qlayer_t *q = &cc->qmodel->layers[index];
    const hq_layer_params_t *p = &l->params;
    int32_t ins[HQX_MAX_OP_INPUTS];
    if (l->input_count > (int)HQX_MAX_OP_INPUTS)
        return layer_error(cc, l, "more inputs than the program format allows (64)");
    input_ids(cc, l, ins);
    int32_t *outs = cc->tensor[index];
    int ports = hq_layer_port_count(l);
    int32_t in_bits = l->input_count ? cc->qmodel->layers[l->inputs[0]].bits : 0;
    int rc = 0;
    switch (l->type) {
    case HQ_LAYER_CONV:
    case HQ_LAYER_DW:
    case HQ_LAYER_DENSE:
    case HQ_LAYER_BATCH_NORM:
    case HQ_LAYER_NORMALIZATION: {
        bool dense = l->type == HQ_LAYER_DENSE;
        bool affine = l->type == HQ_LAYER_BATCH_NORM || l->type == HQ_LAYER_NORMALIZATION;
        hq_shape_t os = hq_layer_port_shape(l, 0);
        int64_t cout = os.dims[os.ndim - 1];
        int64_t cin = dense ? input_elements(cc, l, 0) : 0;
        hqx_conv_params_t cp = {.groups = dense ? 1 : p->groups, .weight_bits = q->weight_bits};
        int64_t taps = 1, cpg = 1;
        if (affine) { /* a 1x1 depthwise conv, as the emulator runs it */
            cp.kernel_h = cp.kernel_w = cp.stride_h = cp.stride_w = 1;
            cp.dilation_h = cp.dilation_w = 1;
            cp.groups = (int32_t)cout;
        } else if (!dense) {
            cp.kernel_h = p->kernel_h;
            cp.kernel_w = p->kernel_w;
            cp.stride_h = p->stride_h;
            cp.stride_w = p->stride_w;
            cp.dilation_h = p->dilation_h;
            cp.dilation_w = p->dilation_w;
            cp.pad_top = p->pads[0];
            cp.pad_left = p->pads[1];
            cp.pad_bottom = p->pads[2];
            cp.pad_right = p->pads[3];
            hq_shape_t is =
                hq_layer_port_shape(hq_graph_layer(cc->graph, l->inputs[0]), l->input_ports[0]);
            taps = (int64_t)p->kernel_h * p->kernel_w;
            cpg = p->groups > 0 ? is.dims[is.ndim - 1] / p->groups : 0;
        }
        if (!q->kernel || (q->weight_bits != 4 && q->weight_bits != 8 && q->weight_bits != 16))
            return layer_error(cc, l, "no integer kernel in the quantized params");
        int64_t wcount = dense ? cin * cout : taps * cpg * cout;
        cp.weights = hqrt_b_blob(cc->b, q->kernel, (size_t)wcount * code_bytes(q->weight_bits));
        if (q->bias)
            cp.bias = hqrt_b_blob(cc->b, q->bias, (size_t)cout * sizeof(int64_t));
        cp.stage = stage_blobs(cc, &q->stage, q->bits);
        int nin = 1;
        if (q->has_addend && !dense && !affine) {
            if (l->input_count < 2)
                return layer_error(cc, l, "elementwise_add without a second input");
            cp.addend_multiplier = q->input_multiplier[0];
            cp.addend_shift = q->input_shift[0];
            nin = 2;
        }
        rc = hqrt_b_op(cc->b, dense ? HQX_OP_DENSE : HQX_OP_CONV, l->name, &cp, sizeof cp, ins,
                       (uint32_t)nin, outs, 1);
        break;
    }
    case HQ_LAYER_MAXPOOL:
    case HQ_LAYER_AVGPOOL:
    case HQ_LAYER_GLOBAL_AVG_POOL: {
        hqx_pool_params_t pp = {0};
        uint32_t code = HQX_OP_GLOBAL_AVG;
        if (l->type != HQ_LAYER_GLOBAL_AVG_POOL) {
            pp = (hqx_pool_params_t){.kernel_h = p->kernel_h,
                                     .kernel_w = p->kernel_w,
                                     .stride_h = p->stride_h,
                                     .stride_w = p->stride_w,
                                     .pad_top = p->pads[0],
                                     .pad_left = p->pads[1],
                                     .pad_bottom = p->pads[2],
                                     .pad_right = p->pads[3],
                                     .count_include_pad = p->count_include_pad ? 1 : 0};
            code = l->type == HQ_LAYER_MAXPOOL ? HQX_OP_MAXPOOL : HQX_OP_AVGPOOL;
        }
        if (l->type != HQ_LAYER_MAXPOOL)
            pp.stage = stage_blobs(cc, &q->stage, q->bits);
        rc = hqrt_b_op(cc->b, code, l->name, &pp, sizeof pp, ins, 1, outs, 1);
        break;
    }
    case HQ_LAYER_EW_ADD:
    case HQ_LAYER_EW_SUB:
    case HQ_LAYER_EW_MULT:
    case HQ_LAYER_EW_MAX:
    case HQ_LAYER_EW_MIN: {
        if (l->input_count != 2)
            return layer_error(cc, l, "needs two inputs");
        hqx_eltwise_params_t ep = {.op = hqi_quant_ew_kernel_op(l->type),
                                   .a_multiplier = q->input_multiplier[0],
                                   .a_shift = q->input_shift[0],
                                   .b_multiplier = q->input_multiplier[1],
                                   .b_shift = q->input_shift[1]};
        ep.stage = stage_blobs(cc, &q->stage, q->bits);
        rc = hqrt_b_op(cc->b, HQX_OP_ELTWISE, l->name, &ep, sizeof ep, ins, 2, outs, 1);
        break;
    }
    case HQ_LAYER_ACTIVATION: {
        hqx_stage_params_t sp = {0};
        uint32_t code = HQX_OP_ACTIVATION;
        if (q->lut) {
            code = HQX_OP_LUT;
            sp.stage.lut = hqrt_b_blob(cc->b, q->lut, ((size_t)1 << in_bits) * code_bytes(q->bits));
        } else {
            sp.stage = stage_blobs(cc, &q->stage, q->bits);
        }
        rc = hqrt_b_op(cc->b, code, l->name, &sp, sizeof sp, ins, 1, outs, 1);
        break;
    }
    case HQ_LAYER_CONCAT:
    case HQ_LAYER_FEATURE_SPLITTER: {
        hqx_axis_params_t ap = {.axis = p->axis};
        bool split = l->type == HQ_LAYER_FEATURE_SPLITTER;
        if (split && ports > (int)HQX_MAX_OP_OUTPUTS)
            return layer_error(cc, l, "more pieces than the program format allows (64)");
        rc = hqrt_b_op(cc->b, split ? HQX_OP_SPLIT : HQX_OP_CONCAT, l->name, &ap, sizeof ap, ins,
                       (uint32_t)l->input_count, outs, split ? (uint32_t)ports : 1);
        break;
    }
    case HQ_LAYER_RESIZE: {
        static const int32_t coords[] = {[HQ_RESIZE_ASYMMETRIC] = HQRT_COORDS_ASYMMETRIC,
                                         [HQ_RESIZE_HALF_PIXEL] = HQRT_COORDS_HALF_PIXEL,
                                         [HQ_RESIZE_ALIGN_CORNERS] = HQRT_COORDS_ALIGN_CORNERS,
                                         [HQ_RESIZE_PYTORCH_HALF_PIXEL] =
                                             HQRT_COORDS_PYTORCH_HALF_PIXEL};
        hqx_resize_params_t rp = {.method = p->resize_method == HQ_RESIZE_BILINEAR
                                                ? HQRT_RESIZE_BILINEAR
                                                : HQRT_RESIZE_NEAREST,
                                  .coords = coords[p->resize_coords],
                                  .round_prefer_floor = p->nearest_round ? 1 : 0};
        rc = hqrt_b_op(cc->b, HQX_OP_RESIZE, l->name, &rp, sizeof rp, ins, 1, outs, 1);
        break;
    }
    case HQ_LAYER_OUTPUT:
    case HQ_LAYER_RESHAPE: {
        hqx_axis_params_t none = {0};
        rc = hqrt_b_op(cc->b, HQX_OP_COPY, l->name, &none, sizeof none, ins, 1, outs, 1);
        break;
    }
    case HQ_LAYER_DECONV: {
        hq_shape_t os = hq_layer_port_shape(l, 0);
        hq_shape_t is =
            hq_layer_port_shape(hq_graph_layer(cc->graph, l->inputs[0]), l->input_ports[0]);
        int64_t cout = os.dims[os.ndim - 1];
        int64_t cpg = p->groups > 0 ? is.dims[is.ndim - 1] / p->groups : 0;
        hqx_conv_params_t cp = {.kernel_h = p->kernel_h,
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
                                .weight_bits = q->weight_bits};
        if (!q->kernel)
            return layer_error(cc, l, "no integer kernel in the quantized params");
        int64_t wcount = (int64_t)p->kernel_h * p->kernel_w * cpg * cout;
        cp.weights = hqrt_b_blob(cc->b, q->kernel, (size_t)wcount * code_bytes(q->weight_bits));
        if (q->bias)
            cp.bias = hqrt_b_blob(cc->b, q->bias, (size_t)cout * sizeof(int64_t));
        cp.stage = stage_blobs(cc, &q->stage, q->bits);
        rc = hqrt_b_op(cc->b, HQX_OP_DECONV, l->name, &cp, sizeof cp, ins, 1, outs, 1);
        break;
    }
    case HQ_LAYER_CONST_INPUT: {
        hq_shape_t os = hq_layer_port_shape(l, 0);
        int64_t n = 1;
        for (int d = 1; d < os.ndim; d++)
            n *= os.dims[d];
        if (!q->constant)
            return layer_error(cc, l, "no constant codes in the quantized params");
        hqx_const_params_t kp = {hqrt_b_blob(cc->b, q->constant, (size_t)n * code_bytes(q->bits))};
        rc = hqrt_b_op(cc->b, HQX_OP_CONST, l->name, &kp, sizeof kp, ins, 0, outs, 1);
        break;
    }
    case HQ_LAYER_SLICE: {
        hq_shape_t is =
            hq_layer_port_shape(hq_graph_layer(cc->graph, l->inputs[0]), l->input_ports[0]);
        uint32_t nd, ext[3];
        if (!extents(&is, &nd, &ext[0], &ext[1], &ext[2]))
            return layer_error(cc, l, "input rank outside the program format");
        hqx_slice_params_t sp = {0};
        for (int a = 0; a < 3; a++) { /* the emulator clamps the end to the extent too */
            sp.begin[a] = p->slice_begin[a];
            sp.end[a] = p->slice_end[a] > (int)ext[a] ? (int)ext[a] : p->slice_end[a];
            sp.step[a] = p->slice_step[a];
        }
        rc = hqrt_b_op(cc->b, HQX_OP_SLICE, l->name, &sp, sizeof sp, ins, 1, outs, 1);
        break;
    }
    case HQ_LAYER_PAD: {
        static const int32_t modes[] = {[HQ_PAD_CONSTANT] = HQRT_PAD_CONSTANT,
                                        [HQ_PAD_REFLECT] = HQRT_PAD_REFLECT,
                                        [HQ_PAD_EDGE] = HQRT_PAD_EDGE};
        hqx_pad_params_t pp = {.mode = modes[p->pad_mode],
                               .value_code = q->pad_code,
                               .before = {p->pads[0], p->pads[1], p->pad_channels[0]},
                               .after = {p->pads[2], p->pads[3], p->pad_channels[1]}};
        rc = hqrt_b_op(cc->b, HQX_OP_PAD, l->name, &pp, sizeof pp, ins, 1, outs, 1);
        break;
    }
    case HQ_LAYER_DEPTH_TO_SPACE:
    case HQ_LAYER_SPACE_TO_DEPTH: {
        hqx_block_params_t bp = {.block = p->block_size, .crd = p->depth_to_space_crd ? 1 : 0};
        rc = hqrt_b_op(cc->b,
                       l->type == HQ_LAYER_DEPTH_TO_SPACE ? HQX_OP_DEPTH_TO_SPACE
                                                          : HQX_OP_SPACE_TO_DEPTH,
                       l->name, &bp, sizeof bp, ins, 1, outs, 1);
        break;
    }
    case HQ_LAYER_TRANSPOSE: {
        hqx_transpose_params_t tp = {{0, 1, 2, 3}};
        hq_shape_t is =
            hq_layer_port_shape(hq_graph_layer(cc->graph, l->inputs[0]), l->input_ports[0]);
        if (is.ndim > 4)
            return layer_error(cc, l, "rank above 4");
        for (int d = 0; d < is.ndim; d++)
            tp.perm[d] = p->perm[d];
        rc = hqrt_b_op(cc->b, HQX_OP_TRANSPOSE, l->name, &tp, sizeof tp, ins, 1, outs, 1);
        break;
    }
    case HQ_LAYER_REDUCE_MAX:
    case HQ_LAYER_ARGMAX: {
        hqx_axis_params_t ap = {.axis = p->axis};
        rc = hqrt_b_op(cc->b, l->type == HQ_LAYER_ARGMAX ? HQX_OP_ARGMAX : HQX_OP_REDUCE_MAX,
                       l->name, &ap, sizeof ap, ins, 1, outs, 1);
        break;
    }
    case HQ_LAYER_SOFTMAX: {
        hqx_softmax_params_t sp = {.axis = p->axis};
        sp.exp_lut = hqrt_b_blob(cc->b, q->lut, ((size_t)1 << in_bits) * sizeof(int32_t));
        sp.stage = stage_blobs(cc, &q->stage, q->bits);
        rc = hqrt_b_op(cc->b, HQX_OP_SOFTMAX, l->name, &sp, sizeof sp, ins, 1, outs, 1);
        break;
    }
    default:
        return layer_error(cc, l, "not supported by the deploy runtime");
    }
    return rc ? builder_error(cc, l) : HQ_OK;
}

static hq_status_t build(compiler_t *cc, const char *net, const char *hw_arch, uint8_t **bytes,
                         size_t *len)
{
    const hq_graph_t *g = cc->graph;
    int count = hq_graph_layer_count(g);
    cc->b = hqrt_b_create(net, hw_arch);
    cc->tensor = calloc((size_t)count + 1, sizeof *cc->tensor);
    if (!cc->b || !cc->tensor)
        return hqi_nomem(cc->err, "compile");
    int order_count = 0;
    const int *order = hq_graph_topo_order(g, &order_count);
    /* tensors first: one per output piece of every layer, with the layer's output encoding */
    for (int t = 0; t < order_count; t++) {
        const hq_layer_t *l = hq_graph_layer(g, order[t]);
        const hqi_qlayer_t *q = &cc->qmodel->layers[order[t]];
        int ports = hq_layer_port_count(l);
        cc->tensor[order[t]] = calloc((size_t)ports, sizeof(int32_t));
        if (!cc->tensor[order[t]])
            return hqi_nomem(cc->err, "compile");
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
        if (l->type == HQ_LAYER_INPUT)
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
    free(cc.tensor);
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
