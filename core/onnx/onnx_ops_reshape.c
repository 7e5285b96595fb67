/* onnx_ops_reshape.c — Reshape, Flatten, Squeeze, Unsqueeze on computed tensors: an NCHW flatten
 * stays pending (the value's `flat` view) until a consumer needs it; other shapes become a
 * reshape, or transpose -> reshape -> transpose when the NHWC order differs from the NCHW one. */
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_internal.h"

/* Gives node n's output the ONNX shape `to` (batch first, reported as 1) of value x. */
static hq_status_t reshape_value_4d(onnxi_ctx_t *c, const Onnx__NodeProto *n, onnxi_value_t *x,
                                    int to_rank, const int64_t *to)
{
    int rank;
    int64_t in[4];
    hq_status_t st = onnxi_onnx_shape_of(c, x, &rank, in);
    if (st != HQ_OK)
        return st;
    if (rank == 3) { /* [N, C, L] is [N, C, 1, L] */
        in[3] = in[2];
        in[2] = 1;
        rank = 4;
    }
    onnxi_value_t *out = onnxi_value_of(c, n->output[0]);
    if (!out || out->kind != VALUE_UNKNOWN)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "output produced twice");
    if (to_rank == 2) {
        if (rank == 4) { /* NCHW flatten: pending until a consumer needs it */
            if ((st = onnxi_alias_output(c, n, x)) != HQ_OK)
                return st;
            out->rank = 2;
            out->flat = true;
            out->flat_c = in[1];
            out->flat_h = in[2];
            out->flat_w = in[3];
            return HQ_OK;
        }
        return onnxi_alias_output(c, n, x);
    }
    if (x->flat && to[1] == x->flat_c && to[2] == x->flat_h && to[3] == x->flat_w) {
        if ((st = onnxi_alias_output(c, n, x)) != HQ_OK)
            return st;
        out->flat = false;
        out->rank = 4;
        return HQ_OK;
    }
    if ((st = onnxi_materialize(c, x)) != HQ_OK)
        return st;
    if (rank == 4 && in[1] == to[1] && in[2] == to[2] && in[3] == to[3])
        return onnxi_alias_output(c, n, x);
    int index;
    hq_shape_t shape = {4, {-1, to[2], to[3], to[1]}};
    /* One reshape when the NHWC order is the NCHW order's: no spatial extent on either side,
     * or the channels unchanged (H x W regrouped, e.g. [N, C, H, W] -> [N, C, H*W]: c stays
     * innermost in NHWC and (h, w) keep their row-major order). */
    bool simple = (rank == 2 && to[2] * to[3] == 1) ||
                  (rank == 4 && ((in[2] * in[3] == 1 && to[2] * to[3] == 1) || in[1] == to[1]));
    if (simple) {
        if ((st = onnxi_add_reshape(c, x, &shape, &index)) != HQ_OK)
            return st;
    } else {
        /* Exact NCHW semantics: NHWC -> NCHW order, reshape there, back to NHWC. */
        onnxi_value_t tmp = *x;
        if (rank == 4) {
            static const int to_nchw[4] = {0, 3, 1, 2};
            if ((st = onnxi_add_transpose(c, x->layer, x->port, to_nchw, 4, &index)) != HQ_OK)
                return st;
            tmp.layer = index;
            tmp.port = 0;
        }
        hq_shape_t mid = {4, {-1, to[1], to[2], to[3]}};
        if ((st = onnxi_add_reshape(c, &tmp, &mid, &index)) != HQ_OK)
            return st;
        static const int to_nhwc[4] = {0, 2, 3, 1};
        if ((st = onnxi_add_transpose(c, index, 0, to_nhwc, 4, &index)) != HQ_OK)
            return st;
    }
    if ((st = hq_layer_add_original_name(c->graph, index, onnxi_node_label(n), c->err)) != HQ_OK)
        return st;
    return onnxi_set_layer_output(c, n, 0, index, 0, 4);
}

/* Reshape to an ONNX shape of rank 2, 3 or 4 with batch 1. A rank-3 shape [1, C, L] is built as
 * the rank-4 [1, C, 1, L] (the same hq tensor) and then labelled rank 3. */
static hq_status_t reshape_value(onnxi_ctx_t *c, const Onnx__NodeProto *n, onnxi_value_t *x,
                                 int to_rank, const int64_t *to)
{
    if (to_rank < 2 || to_rank > 4 || to[0] != 1)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED,
                  "reshape to rank %d with batch %lld; hq keeps [N, C], [N, C, L] and "
                  "[N, C, H, W] tensors",
                  to_rank, (long long)(to_rank ? to[0] : 0));
    int64_t to4[4] = {to[0], to[1], 1, to_rank == 3 ? to[2] : 1};
    hq_status_t st = reshape_value_4d(c, n, x, to_rank == 3 ? 4 : to_rank, to_rank == 3 ? to4 : to);
    onnxi_value_t *out = onnxi_value_of(c, n->output[0]);
    if (st == HQ_OK && out && out->kind == VALUE_LAYER)
        out->rank = to_rank;
    return st;
}

/* Input 0 of a reshaping node (a computed tensor) and its ONNX shape. */
static hq_status_t reshape_source(onnxi_ctx_t *c, const Onnx__NodeProto *n, onnxi_value_t **x,
                                  int *rank, int64_t in[4])
{
    hq_status_t st = onnxi_node_input(c, n, 0, x);
    if (st != HQ_OK)
        return st;
    if (!*x || (*x)->kind != VALUE_LAYER)
        NODE_FAIL(c, n, HQ_ERR_FORMAT, "input 1 is missing");
    return onnxi_onnx_shape_of(c, *x, rank, in);
}

hq_status_t onnxi_convert_reshape(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    onnxi_value_t *x;
    int rank;
    int64_t in[4], to[HQ_TENSOR_MAX_DIMS];
    int to_rank = 0;
    hq_status_t st = reshape_source(c, n, &x, &rank, in);
    if (st != HQ_OK)
        return st;
    hq_tensor_t *ts;
    if ((st = onnxi_const_input(c, n, 1, true, &ts)) != HQ_OK ||
        (st = onnxi_reshape_target(c, n, in, rank, ts, to, &to_rank)) != HQ_OK)
        return st;
    bool done = false;
    if (to_rank == 6 && rank == 4 && to[0] == 1 && !x->flat &&
        (st = onnxi_pixel_shuffle(c, n, x, in, to, &done)) != HQ_OK)
        return st;
    if (to_rank == 5 && rank == 4 && to[0] == 1 && !x->flat &&
        (st = onnxi_channel_shuffle(c, n, x, in, to, &done)) != HQ_OK)
        return st;
    if (done)
        return HQ_OK;
    return reshape_value(c, n, x, to_rank, to);
}

hq_status_t onnxi_convert_flatten(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    onnxi_value_t *x;
    int rank;
    int64_t in[4], to[HQ_TENSOR_MAX_DIMS];
    int to_rank = 0;
    hq_status_t st = reshape_source(c, n, &x, &rank, in);
    if (st != HQ_OK)
        return st;
    int64_t axis = onnxi_attr_int(n, "axis", 1);
    if (axis < 0)
        axis += rank;
    if (axis != 1)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "axis %lld (only 1)", (long long)axis);
    to_rank = 2;
    to[0] = 1;
    to[1] = 1;
    for (int d = 1; d < rank; d++)
        to[1] *= in[d];
    return reshape_value(c, n, x, to_rank, to);
}

/* Squeeze (un = false) and Unsqueeze. */
static hq_status_t convert_squeeze_or_unsqueeze(onnxi_ctx_t *c, const Onnx__NodeProto *n, bool un)
{
    onnxi_value_t *x;
    int rank;
    int64_t in[4], to[HQ_TENSOR_MAX_DIMS];
    int to_rank = 0;
    hq_status_t st = reshape_source(c, n, &x, &rank, in);
    if (st != HQ_OK)
        return st;
    int64_t axes[HQ_TENSOR_MAX_DIMS];
    int k;
    int kk;
    (void)onnxi_attr_ints(n, "axes", &kk);
    hq_tensor_t *ta = NULL;
    if (kk < 0 && (st = onnxi_const_input(c, n, 1, false, &ta)) != HQ_OK)
        return st;
    int count = kk >= 0 ? kk : ta ? (int)hq_tensor_count(ta) : 0;
    if (count > HQ_TENSOR_MAX_DIMS - rank)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "too many axes");
    if ((st = onnxi_axes_of(c, n, un ? rank + count : rank, axes, &k)) != HQ_OK)
        return st;
    if (un) {
        bool is_new[HQ_TENSOR_MAX_DIMS] = {0};
        for (int i = 0; i < k; i++)
            is_new[axes[i]] = true;
        if (is_new[0]) /* the batch would move to axis 1 */
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "a new axis before the batch");
        to_rank = rank + k;
        for (int d = 0, s = 0; d < to_rank; d++)
            to[d] = is_new[d] ? 1 : (s < rank ? in[s++] : 1);
    } else {
        for (int d = 0; d < rank; d++) {
            bool drop = k == 0 ? in[d] == 1 && d > 0 : false;
            for (int i = 0; i < k; i++)
                drop |= axes[i] == d;
            if (drop && d == 0)
                NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "squeezing the batch axis");
            if (drop && in[d] != 1)
                NODE_FAIL(c, n, HQ_ERR_INVALID, "squeezing axis %d of extent %lld", d,
                          (long long)in[d]);
            if (!drop)
                to[to_rank++] = in[d];
        }
    }
    return reshape_value(c, n, x, to_rank, to);
}

hq_status_t onnxi_convert_squeeze(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_squeeze_or_unsqueeze(c, n, false);
}

hq_status_t onnxi_convert_unsqueeze(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_squeeze_or_unsqueeze(c, n, true);
}
