/* onnx_nhwc.c — ONNX tensors (NCHW, rank 2, 3 or 4) held as hq layer outputs (NHWC): their
 * shapes both ways, pending flattens made real, axis mapping. */
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_internal.h"

static hq_status_t ensure_finalized(onnxi_ctx_t *c)
{
    if (hq_graph_is_finalized(c->graph))
        return HQ_OK;
    return hq_graph_finalize(c->graph, c->name, c->err);
}

/* The hq (NHWC) shape of a layer value, materialized or not. */
hq_status_t onnxi_hq_shape_of(onnxi_ctx_t *c, const onnxi_value_t *v, hq_shape_t *shape)
{
    hq_status_t st = ensure_finalized(c);
    if (st != HQ_OK)
        return st;
    *shape = hq_layer_port_shape(hq_graph_layer(c->graph, v->layer), v->port);
    return HQ_OK;
}

/* The ONNX (NCHW) shape of a layer value, batch reported as 1. */
hq_status_t onnxi_onnx_shape_of(onnxi_ctx_t *c, const onnxi_value_t *v, int *rank, int64_t dims[4])
{
    if (v->flat) {
        *rank = 2;
        dims[0] = 1;
        dims[1] = v->flat_c * v->flat_h * v->flat_w;
        return HQ_OK;
    }
    hq_shape_t s;
    hq_status_t st = onnxi_hq_shape_of(c, v, &s);
    if (st != HQ_OK)
        return st;
    if (s.ndim == 4 && v->nhwc && v->rank == 3) { /* the layer output [-1, 1, L, C] is the ONNX
                                                      tensor [N, L, C] */
        *rank = 3;
        dims[0] = 1;
        dims[1] = s.dims[2];
        dims[2] = s.dims[3];
        dims[3] = 1;
    } else if (s.ndim == 4 && v->nhwc) { /* the layer output is the ONNX tensor [N, H, W, C] */
        *rank = 4;
        dims[0] = 1;
        dims[1] = s.dims[1];
        dims[2] = s.dims[2];
        dims[3] = s.dims[3];
    } else if (s.ndim == 4 && v->rank == 3 && s.dims[1] == 1) {
        *rank = 3;
        dims[0] = 1;
        dims[1] = s.dims[3];
        dims[2] = s.dims[2];
        dims[3] = 1;
    } else if (s.ndim == 4) {
        *rank = 4;
        dims[0] = 1;
        dims[1] = s.dims[3];
        dims[2] = s.dims[1];
        dims[3] = s.dims[2];
    } else if (s.ndim == 2) {
        *rank = 2;
        dims[0] = 1;
        dims[1] = s.dims[1];
    } else {
        return hqi_error(c->err, HQ_ERR_UNSUPPORTED, "%s: tensor '%s' has rank %d", c->name,
                         v->name, s.ndim);
    }
    return HQ_OK;
}

/* Channel count of a layer value (ONNX dim 1). */
hq_status_t onnxi_channels_of(onnxi_ctx_t *c, const onnxi_value_t *v, int64_t *channels)
{
    int rank;
    int64_t dims[4] = {0};
    hq_status_t st = onnxi_onnx_shape_of(c, v, &rank, dims);
    *channels = dims[1];
    return st;
}

hq_status_t onnxi_add_reshape(onnxi_ctx_t *c, const onnxi_value_t *from, const hq_shape_t *to,
                              int *index)
{
    hq_status_t st = onnxi_new_layer(c, HQ_LAYER_RESHAPE, NULL, index);
    if (st == HQ_OK)
        st = hq_graph_connect(c->graph, from->layer, from->port, *index, c->err);
    if (st == HQ_OK)
        st = hq_layer_set_output_shape(c->graph, *index, to, c->err);
    return st;
}

hq_status_t onnxi_add_transpose(onnxi_ctx_t *c, int layer, int port, const int *perm, int ndim,
                                int *index)
{
    hq_status_t st = onnxi_new_layer(c, HQ_LAYER_TRANSPOSE, NULL, index);
    if (st == HQ_OK)
        st = hq_graph_connect(c->graph, layer, port, *index, c->err);
    if (st == HQ_OK)
        for (int d = 0; d < ndim; d++)
            onnxi_layer_params(c, *index)->perm[d] = perm[d];
    return st;
}

/* Turns a pending NCHW flatten into layers: NHWC -> NCHW order (transpose) -> [-1, C*H*W]; a
 * channels-last view into the transpose that holds [N, H, W, C] (or [N, L, C]) as hq holds any
 * NCHW tensor. */
hq_status_t onnxi_materialize(onnxi_ctx_t *c, onnxi_value_t *v)
{
    if (v->kind == VALUE_LAYER && v->nhwc) {
        static const int to_onnx_order[4] = {0, 2, 3, 1}, swap_last[4] = {0, 1, 3, 2};
        int index;
        hq_status_t st = onnxi_add_transpose(c, v->layer, v->port,
                                             v->rank == 3 ? swap_last : to_onnx_order, 4, &index);
        const Onnx__NodeProto *t = v->producer >= 0 ? c->g->node[v->producer] : NULL;
        if (st == HQ_OK && t && !strcmp(t->op_type, "Transpose")) /* the node it stands for */
            st = hq_layer_add_original_name(c->graph, index, onnxi_node_label(t), c->err);
        if (st != HQ_OK)
            return st;
        v->layer = index;
        v->port = 0;
        v->nhwc = false;
        return HQ_OK;
    }
    if (v->kind != VALUE_LAYER || !v->flat)
        return HQ_OK;
    int layer = v->layer, port = v->port, index;
    hq_status_t st;
    if (v->flat_h * v->flat_w != 1 && v->flat_c != 1) {
        static const int to_nchw[4] = {0, 3, 1, 2};
        st = onnxi_add_transpose(c, layer, port, to_nchw, 4, &index);
        if (st != HQ_OK)
            return st;
        layer = index;
        port = 0;
    }
    onnxi_value_t tmp = *v;
    tmp.layer = layer;
    tmp.port = port;
    hq_shape_t to = {2, {-1, v->flat_c * v->flat_h * v->flat_w}};
    st = onnxi_add_reshape(c, &tmp, &to, &index);
    if (st != HQ_OK)
        return st;
    v->layer = index;
    v->port = 0;
    v->flat = false;
    return HQ_OK;
}

/* Input `i` as a layer tensor (materialized). */
hq_status_t onnxi_layer_input(onnxi_ctx_t *c, const Onnx__NodeProto *n, size_t i,
                              onnxi_value_t **out)
{
    hq_status_t st = onnxi_node_input(c, n, i, out);
    if (st != HQ_OK)
        return st;
    if (!*out)
        NODE_FAIL(c, n, HQ_ERR_FORMAT, "input %zu is missing", i + 1);
    if ((*out)->kind != VALUE_LAYER)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "input '%s' is a constant; hq needs a computed tensor",
                  (*out)->name);
    return onnxi_materialize(c, *out);
}

/* ONNX axis (may be negative) of a rank-`rank` tensor -> NHWC axis; -1 when not mappable. */
int onnxi_map_axis(int64_t axis, int rank)
{
    if (axis < 0)
        axis += rank;
    if (axis <= 0 || axis >= rank)
        return -1;
    if (rank == 4) {
        static const int nchw_to_nhwc[4] = {0, 3, 1, 2};
        return nchw_to_nhwc[axis];
    }
    if (rank == 3) { /* [N, C, L] is held as [-1, 1, L, C] */
        static const int ncl_to_nhwc[3] = {0, 3, 2};
        return ncl_to_nhwc[axis];
    }
    return (int)axis;
}
