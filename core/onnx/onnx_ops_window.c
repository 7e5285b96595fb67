/* onnx_ops_window.c — the ops that slide a window over H and W: Conv (conv, dw), ConvTranspose
 * (deconv), MaxPool, AveragePool, the global pools and ReduceMean over H and W; weights go from
 * ONNX [O, I, kH, kW] to hq [kH, kW, I, O]. A 1-D form on [N, C, L] is converted as the 2-D op
 * with H = 1. */
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_internal.h"

static hq_status_t window_params(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_layer_params_t *p,
                                 bool dilations_allowed)
{
    int k;
    const int64_t *v = onnxi_attr_ints(n, "strides", &k);
    if (k >= 0) {
        if (k != 2 || v[0] < 1 || v[1] < 1 || v[0] > 4096 || v[1] > 4096)
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "strides must be 2 positive values (2-D only)");
        p->stride_h = (int)v[0];
        p->stride_w = (int)v[1];
    }
    v = onnxi_attr_ints(n, "dilations", &k);
    if (k >= 0) {
        if (k != 2 || v[0] < 1 || v[1] < 1 || v[0] > 4096 || v[1] > 4096)
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "dilations must be 2 positive values");
        if (!dilations_allowed && (v[0] != 1 || v[1] != 1))
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED,
                      "dilations [%lld, %lld]: hq's average pool has no dilation (maxpool has)",
                      (long long)v[0], (long long)v[1]);
        p->dilation_h = (int)v[0];
        p->dilation_w = (int)v[1];
    }
    const char *ap = onnxi_attr_string(n, "auto_pad", "NOTSET");
    if (!strcmp(ap, "SAME_UPPER"))
        p->padding = HQ_PADDING_SAME_TENSORFLOW;
    else if (!strcmp(ap, "SAME_LOWER"))
        p->padding = HQ_PADDING_SAME;
    else if (!strcmp(ap, "VALID"))
        p->padding = HQ_PADDING_VALID;
    else if (!strcmp(ap, "NOTSET")) {
        v = onnxi_attr_ints(n, "pads", &k);
        p->padding = HQ_PADDING_VALID;
        if (k >= 0) {
            if (k != 4)
                NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "pads must have 4 values (2-D only)");
            for (int i = 0; i < 4; i++) {
                if (v[i] < 0 || v[i] > 65536)
                    NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "pad %lld out of range", (long long)v[i]);
                if (v[i])
                    p->padding = HQ_PADDING_EXPLICIT;
            }
            /* ONNX: [top, left, bottom, right] = [x1_begin, x2_begin, x1_end, x2_end]. */
            for (int i = 0; i < 4; i++)
                p->pads[i] = (int)v[i];
        }
    } else {
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "auto_pad '%s'", ap);
    }
    return HQ_OK;
}

hq_status_t onnxi_image_input(onnxi_ctx_t *c, const Onnx__NodeProto *n, onnxi_value_t **x,
                              int64_t dims[4])
{
    hq_status_t st = onnxi_layer_input(c, n, 0, x);
    int rank;
    if (st == HQ_OK)
        st = onnxi_onnx_shape_of(c, *x, &rank, dims);
    if (st == HQ_OK && rank == 3 && c->lift_1d) { /* [N, C, L] as [N, C, 1, L] */
        dims[3] = dims[2];
        dims[2] = 1;
        rank = 4;
    }
    if (st == HQ_OK && rank != 4)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "input '%s' has rank %d; only 4-D (NCHW) tensors",
                  (*x)->name, rank);
    return st;
}

/* Conv (transposed = false) and ConvTranspose. */
static hq_status_t convert_conv(onnxi_ctx_t *c, const Onnx__NodeProto *n, bool transposed)
{
    onnxi_value_t *x;
    int64_t dims[4];
    hq_tensor_t *w, *b;
    hq_status_t st;
    if ((st = onnxi_image_input(c, n, &x, dims)) != HQ_OK ||
        (st = onnxi_const_input(c, n, 1, true, &w)) != HQ_OK ||
        (st = onnxi_const_input(c, n, 2, false, &b)) != HQ_OK)
        return st;
    hq_tensor_t w2d; /* 1-D weights [O, I, k] seen as [O, I, 1, k] (same data) */
    if (c->lift_1d && w->ndim == 3) {
        w2d = *w;
        w2d.ndim = 4;
        w2d.shape[3] = w->shape[2];
        w2d.shape[2] = 1;
        w = &w2d;
    }
    if (w->ndim != 4 || w->dtype != HQ_DTYPE_FLOAT32)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "weights '%s' must be a 4-D float tensor (rank %d)",
                  n->input[1], w->ndim);
    int64_t groups = onnxi_attr_int(n, "group", 1), cin = dims[1];
    int64_t kh = w->shape[2], kw = w->shape[3];
    int64_t cout = transposed ? w->shape[1] * groups : w->shape[0];
    int64_t cpg = transposed ? (groups > 0 ? w->shape[0] / groups : 0) : w->shape[1];
    if (groups < 1 || cpg * groups != cin || (transposed && w->shape[0] != cin) || cout % groups ||
        kh < 1 || kw < 1 || cout < 1)
        NODE_FAIL(c, n, HQ_ERR_INVALID,
                  "weights [%lld, %lld, %lld, %lld] with group %lld do not fit %lld input "
                  "channels",
                  (long long)w->shape[0], (long long)w->shape[1], (long long)kh, (long long)kw,
                  (long long)groups, (long long)cin);
    if (b && hq_tensor_count(b) != cout)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "bias has %lld values for %lld output channels",
                  (long long)hq_tensor_count(b), (long long)cout);
    int k;
    const int64_t *ks = onnxi_attr_ints(n, "kernel_shape", &k);
    if (k >= 0 && (k != 2 || ks[0] != kh || ks[1] != kw))
        NODE_FAIL(c, n, HQ_ERR_INVALID, "kernel_shape disagrees with the weights");
    if (kh > 65536 || kw > 65536)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "kernel too large");
    hq_layer_type_t type = transposed                                  ? HQ_LAYER_DECONV
                           : (groups > 1 && groups == cin && cpg == 1) ? HQ_LAYER_DW
                                                                       : HQ_LAYER_CONV;
    int index;
    if ((st = onnxi_new_layer(c, type, n, &index)) != HQ_OK ||
        (st = onnxi_connect_value(c, x, index)) != HQ_OK)
        return st;
    hq_layer_params_t *p = onnxi_layer_params(c, index);
    p->kernel_h = (int)kh;
    p->kernel_w = (int)kw;
    p->kernel_in = (int)cpg;
    p->kernel_out = (int)cout;
    p->groups = (int)groups;
    p->has_bias = true;
    if ((st = window_params(c, n, p, true)) != HQ_OK)
        return st;
    if (transposed) {
        const int64_t *op = onnxi_attr_ints(n, "output_padding", &k);
        if (k >= 0) {
            if (k != 2 || op[0] < 0 || op[1] < 0 || op[0] >= p->stride_h || op[1] >= p->stride_w)
                NODE_FAIL(c, n, HQ_ERR_INVALID, "output_padding out of range");
            p->output_pads[0] = (int)op[0];
            p->output_pads[1] = (int)op[1];
        }
        const int64_t *os = onnxi_attr_ints(n, "output_shape", &k);
        if (k >= 0) {
            /* ONNX: total = s*(in-1) + output_padding + (k-1)*d + 1 - out, split into pads
             * (SAME_UPPER puts the odd pixel at the start, everything else at the end). */
            if (k != 2 && k != 4)
                NODE_FAIL(c, n, HQ_ERR_INVALID, "output_shape needs 2 values");
            bool upper = !strcmp(onnxi_attr_string(n, "auto_pad", "NOTSET"), "SAME_UPPER");
            for (int a = 0; a < 2; a++) {
                int64_t want = os[k - 2 + a], in = dims[2 + a];
                int s = a ? p->stride_w : p->stride_h, d = a ? p->dilation_w : p->dilation_h;
                int64_t kk = a ? kw : kh;
                int64_t total = (int64_t)s * (in - 1) + p->output_pads[a] + (kk - 1) * d + 1 - want;
                if (want < 1 || want > (1 << 20) || total < -(int64_t)(s - 1) || total > 65536)
                    NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "output_shape %lld unreachable",
                              (long long)want);
                if (total < 0) {
                    p->output_pads[a] -= (int)total;
                    total = 0;
                    if (p->output_pads[a] >= s)
                        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "output_shape %lld unreachable",
                                  (long long)want);
                }
                int begin = (int)(upper ? total - total / 2 : total / 2);
                p->pads[a] = begin;
                p->pads[a + 2] = (int)total - begin;
            }
            p->padding = HQ_PADDING_EXPLICIT;
        }
    }
    int64_t shape[4] = {kh, kw, cpg, cout};
    hq_tensor_t *kernel, *bias;
    if ((st = onnxi_new_tensor(c, HQ_DTYPE_FLOAT32, 4, shape, &kernel)) != HQ_OK)
        return st;
    if ((st = onnxi_put_param(c, index, "kernel:0", kernel)) != HQ_OK)
        return st;
    const float *src = w->data;
    float *dst = kernel->data;
    int64_t opg = cout / groups;
    for (int64_t a = 0; a < w->shape[0]; a++)
        for (int64_t o = 0; o < w->shape[1]; o++)
            for (int64_t y = 0; y < kh; y++)
                for (int64_t xx = 0; xx < kw; xx++) {
                    float val = src[((a * w->shape[1] + o) * kh + y) * kw + xx];
                    int64_t i, oc;
                    if (transposed) { /* W[ci][o_in_group][ky][kx] */
                        int64_t g = a / cpg;
                        i = a - g * cpg;
                        oc = g * opg + o;
                    } else { /* W[oc][i][ky][kx] */
                        oc = a;
                        i = o;
                    }
                    dst[((y * kw + xx) * cpg + i) * cout + oc] = val;
                }
    if ((st = onnxi_new_tensor(c, HQ_DTYPE_FLOAT32, 1, &cout, &bias)) != HQ_OK)
        return st;
    if (b)
        for (int64_t i = 0; i < cout; i++)
            ((float *)bias->data)[i] = (float)onnxi_tensor_at(b, i);
    if ((st = onnxi_put_param(c, index, "bias:0", bias)) != HQ_OK)
        return st;
    return onnxi_set_layer_output(c, n, 0, index, 0, 4);
}

hq_status_t onnxi_convert_conv(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_conv(c, n, false);
}

hq_status_t onnxi_convert_conv_transpose(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_conv(c, n, true);
}

/* MaxPool, AveragePool (global = false) and GlobalMaxPool, GlobalAveragePool. */
static hq_status_t convert_pool(onnxi_ctx_t *c, const Onnx__NodeProto *n, bool global, bool max)
{
    onnxi_value_t *x;
    int64_t dims[4];
    hq_status_t st = onnxi_image_input(c, n, &x, dims);
    if (st != HQ_OK)
        return st;
    int index;
    if (global && max) {
        /* a maxpool whose one window is the whole image (hq has no global max layer) */
        if ((st = onnxi_new_layer(c, HQ_LAYER_MAXPOOL, n, &index)) != HQ_OK ||
            (st = onnxi_connect_value(c, x, index)) != HQ_OK)
            return st;
        hq_layer_params_t *p = onnxi_layer_params(c, index);
        p->kernel_h = p->stride_h = (int)dims[2];
        p->kernel_w = p->stride_w = (int)dims[3];
        p->dilation_h = p->dilation_w = 1;
        p->padding = HQ_PADDING_VALID;
        return onnxi_set_layer_output(c, n, 0, index, 0, 4);
    }
    if (global) {
        if ((st = onnxi_new_layer(c, HQ_LAYER_GLOBAL_AVG_POOL, n, &index)) != HQ_OK ||
            (st = onnxi_connect_value(c, x, index)) != HQ_OK)
            return st;
        return onnxi_set_layer_output(c, n, 0, index, 0, 4);
    }
    if (n->n_output > 1 && n->output[1][0])
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "the Indices output");
    int k;
    const int64_t *ks = onnxi_attr_ints(n, "kernel_shape", &k);
    if (k != 2 || ks[0] < 1 || ks[1] < 1 || ks[0] > 65536 || ks[1] > 65536)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "kernel_shape must be 2 positive values");
    if (onnxi_attr_int(n, "storage_order", 0))
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "storage_order=1");
    hq_layer_params_t w;
    memset(&w, 0, sizeof w);
    w.stride_h = w.stride_w = w.dilation_h = w.dilation_w = 1;
    w.kernel_h = (int)ks[0];
    w.kernel_w = (int)ks[1];
    if ((st = window_params(c, n, &w, max)) != HQ_OK)
        return st;
    if ((w.dilation_h > 1 || w.dilation_w > 1) &&
        (w.padding == HQ_PADDING_SAME || w.padding == HQ_PADDING_SAME_TENSORFLOW))
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED,
                  "auto_pad '%s' with dilations: the ONNX spec pads for the dilated window, "
                  "onnxruntime for the undilated one; export with explicit pads",
                  onnxi_attr_string(n, "auto_pad", "NOTSET"));
    bool include_pad = !max && onnxi_attr_int(n, "count_include_pad", 0);
    /* Ceil mode: extra rows/cols at the end so the floor rule gives the ceil size; a last
     * window that would start in the end padding is dropped, as ONNX does. */
    int extra[2] = {0, 0};
    bool explicit_pads = w.padding == HQ_PADDING_EXPLICIT;
    if (onnxi_attr_int(n, "ceil_mode", 0) &&
        (w.padding == HQ_PADDING_EXPLICIT || w.padding == HQ_PADDING_VALID)) {
        if (w.padding == HQ_PADDING_VALID)
            memset(w.pads, 0, sizeof w.pads);
        int64_t ext[2] = {dims[2], dims[3]};
        for (int a = 0; a < 2; a++) {
            int s = a ? w.stride_w : w.stride_h;
            int64_t kk = a ? (int64_t)w.dilation_w * (w.kernel_w - 1) + 1
                           : (int64_t)w.dilation_h * (w.kernel_h - 1) + 1; /* the window's span */
            int64_t span = ext[a] + w.pads[a] + w.pads[a + 2] - kk;
            if (span < 0)
                continue;
            int64_t out = (span + s - 1) / s + 1;
            if ((out - 1) * s >= ext[a] + w.pads[a]) /* last window must start inside */
                out--;
            int64_t more = (out - 1) * s + kk - (ext[a] + w.pads[a] + w.pads[a + 2]);
            if (more > 0)
                extra[a] = (int)more;
        }
    }
    /* The ceil-mode cells are never counted by ONNX's average (its divisor stops at the
     * declared pads), but hq counts every padded cell when count_include_pad is set. Without
     * declared pads that is count_include_pad = 0; with them, the declared pads become a zero
     * `pad` layer (cells the average then counts as data) and the pool pads only the ceil
     * cells, uncounted: the same divisor as ONNX. */
    int pad_layer = -1;
    if (include_pad && (extra[0] || extra[1])) {
        include_pad = false;
        if (explicit_pads) {
            if ((st = onnxi_new_layer(c, HQ_LAYER_PAD, NULL, &pad_layer)) != HQ_OK ||
                (st = onnxi_connect_value(c, x, pad_layer)) != HQ_OK)
                return st;
            hq_layer_params_t *pp = onnxi_layer_params(c, pad_layer);
            pp->pad_mode = HQ_PAD_CONSTANT;
            pp->pad_value = 0.0f;
            pp->padding = HQ_PADDING_EXPLICIT;
            memcpy(pp->pads, w.pads, sizeof pp->pads);
            memset(w.pads, 0, sizeof w.pads);
        }
    }
    if (extra[0] || extra[1]) {
        w.padding = HQ_PADDING_EXPLICIT;
        w.pads[2] += extra[0];
        w.pads[3] += extra[1];
    }
    if ((st = onnxi_new_layer(c, max ? HQ_LAYER_MAXPOOL : HQ_LAYER_AVGPOOL, n, &index)) != HQ_OK)
        return st;
    st = pad_layer >= 0 ? hq_graph_connect(c->graph, pad_layer, 0, index, c->err)
                        : onnxi_connect_value(c, x, index);
    if (st != HQ_OK)
        return st;
    hq_layer_params_t *p = onnxi_layer_params(c, index);
    p->kernel_h = w.kernel_h;
    p->kernel_w = w.kernel_w;
    p->stride_h = w.stride_h;
    p->stride_w = w.stride_w;
    p->dilation_h = w.dilation_h;
    p->dilation_w = w.dilation_w;
    p->padding = w.padding;
    memcpy(p->pads, w.pads, sizeof p->pads);
    p->count_include_pad = include_pad;
    return onnxi_set_layer_output(c, n, 0, index, 0, 4);
}

hq_status_t onnxi_convert_max_pool(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_pool(c, n, false, true);
}

hq_status_t onnxi_convert_average_pool(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_pool(c, n, false, false);
}

hq_status_t onnxi_convert_global_max_pool(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_pool(c, n, true, true);
}

hq_status_t onnxi_convert_global_average_pool(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_pool(c, n, true, false);
}

/* ReduceMean over H and W (axes [2, 3], either order, negative forms too) of an [N, C, H, W]
 * tensor, as torch exports x.mean([2, 3]): global_avg_pool. With keepdims 0 the [N, C] result is
 * the pending flatten of that [N, C, 1, 1], as a Flatten after GlobalAveragePool would be. */
hq_status_t onnxi_convert_reduce_mean(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    onnxi_value_t *x;
    int64_t dims[4], axes[HQ_TENSOR_MAX_DIMS];
    int count;
    hq_status_t st;
    if ((st = onnxi_image_input(c, n, &x, dims)) != HQ_OK ||
        (st = onnxi_axes_of(c, n, 4, axes, &count)) != HQ_OK)
        return st;
    bool h = false, w = false, other = false;
    for (int i = 0; i < count; i++) {
        h |= axes[i] == 2;
        w |= axes[i] == 3;
        other |= axes[i] < 2;
    }
    if (count != 2 || !h || !w || other)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED,
                  "mean over axes other than [2, 3] (hq averages over H and W only)");
    int index;
    if ((st = onnxi_new_layer(c, HQ_LAYER_GLOBAL_AVG_POOL, n, &index)) != HQ_OK ||
        (st = onnxi_connect_value(c, x, index)) != HQ_OK ||
        (st = onnxi_set_layer_output(c, n, 0, index, 0, 4)) != HQ_OK)
        return st;
    if (!onnxi_attr_int(n, "keepdims", 1)) {
        onnxi_value_t *out = onnxi_value_of(c, n->output[0]);
        out->rank = 2;
        out->flat = true;
        out->flat_c = dims[1];
        out->flat_h = 1;
        out->flat_w = 1;
    }
    return HQ_OK;
}

/* ---- 1-D convolutions and pools ------------------------------------------------------------ */

void onnxi_lifted_free(onnxi_lifted_node_t *l)
{
    free(l->attrs);
    free(l->copies);
    free(l->ints);
}

hq_status_t onnxi_lift_1d_node(onnxi_ctx_t *c, const Onnx__NodeProto *n, onnxi_lifted_node_t *l)
{
    memset(l, 0, sizeof *l);
    l->node = *n;
    size_t total = 0;
    for (size_t i = 0; i < n->n_attribute; i++)
        total += 2 * n->attribute[i]->n_ints;
    l->attrs = calloc(n->n_attribute + 1, sizeof *l->attrs);
    l->copies = calloc(n->n_attribute + 1, sizeof *l->copies);
    l->ints = calloc(total + 1, sizeof *l->ints);
    if (!l->attrs || !l->copies || !l->ints) {
        onnxi_lifted_free(l);
        return hqi_nomem(c->err, c->name);
    }
    int64_t *next = l->ints;
    for (size_t i = 0; i < n->n_attribute; i++) {
        const Onnx__AttributeProto *a = n->attribute[i];
        l->copies[i] = *a;
        l->attrs[i] = &l->copies[i];
        const char *name = a->name ? a->name : "";
        bool pads = !strcmp(name, "pads");
        bool spatial = !strcmp(name, "kernel_shape") || !strcmp(name, "strides") ||
                       !strcmp(name, "dilations") || !strcmp(name, "output_padding") ||
                       !strcmp(name, "output_shape");
        if ((!pads && !spatial) || a->n_ints == 0)
            continue;
        if ((pads && a->n_ints != 2) || (spatial && a->n_ints != 1)) {
            onnxi_lifted_free(l);
            NODE_FAIL(c, n, HQ_ERR_INVALID, "attribute '%s' has %zu values for a 1-D input", name,
                      a->n_ints);
        }
        /* the new H axis: extent 1, stride/dilation 1, no padding */
        int64_t fill = !strcmp(name, "kernel_shape") || !strcmp(name, "strides") ||
                               !strcmp(name, "dilations") || !strcmp(name, "output_shape")
                           ? 1
                           : 0;
        int64_t *v = next;
        if (pads) {
            v[0] = 0, v[1] = a->ints[0], v[2] = 0, v[3] = a->ints[1];
            next += 4;
        } else {
            v[0] = fill, v[1] = a->ints[0];
            next += 2;
        }
        l->copies[i].ints = v;
        l->copies[i].n_ints = (size_t)(next - v);
    }
    l->node.attribute = l->attrs;
    return HQ_OK;
}