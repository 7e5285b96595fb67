/* onnx_ops_reshape.c — Reshape, Flatten, Squeeze, Unsqueeze on computed tensors: an NCHW flatten
 * stays pending (the value's `flat` view) until a consumer needs it; other shapes become a
 * reshape, or transpose -> reshape -> transpose when the NHWC order differs from the NCHW one.
 * A channels-last view is in ONNX order already: its reshapes are one reshape layer, and
 * attention's q, k, v unstacked from one sequence become slices of its channels. */
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

/* ---- reshapes of channels-last views ------------------------------------------------------- */

/* The index of node n in the graph. */
static size_t node_index(const onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    size_t i = 0;
    while (i < c->g->n_node && c->g->node[i] != n)
        i++;
    return i;
}

/* Forgets the message of a failed look that only decided a pattern does not apply. */
static void clear_error(onnxi_ctx_t *c)
{
    if (c->err) {
        c->err->status = HQ_OK;
        c->err->message[0] = '\0';
    }
}

/* The index along axis 0 that reader r of a 5-D tensor takes as a 4-D tensor: Slice [i, i + 1)
 * on axis 0 read only by a Squeeze of axis 0 (*squeeze is that node), or Gather of the scalar i
 * on axis 0 (*squeeze = NULL). -1 when r is neither. */
static int64_t unstack_index(onnxi_ctx_t *c, const Onnx__NodeProto *r, size_t at, int64_t extent,
                             const Onnx__NodeProto **squeeze, size_t *squeeze_at)
{
    *squeeze = NULL;
    if (r->n_output != 1)
        return -1;
    if (!strcmp(r->op_type, "Gather") && r->n_input == 2 && onnxi_attr_int(r, "axis", 0) == 0) {
        onnxi_value_t *iv = onnxi_value_of(c, r->input[1]);
        if (!iv || iv->kind != VALUE_CONST || iv->constant->ndim != 0)
            return -1;
        int64_t i = onnxi_tensor_int_at(iv->constant, 0);
        i = i < 0 ? i + extent : i;
        return i >= 0 && i < extent ? i : -1;
    }
    if (strcmp(r->op_type, "Slice"))
        return -1;
    int64_t starts[HQ_TENSOR_MAX_DIMS], ends[HQ_TENSOR_MAX_DIMS], axes[HQ_TENSOR_MAX_DIMS],
        steps[HQ_TENSOR_MAX_DIMS];
    int k;
    if (onnxi_slice_params(c, r, 5, starts, ends, axes, steps, &k) != HQ_OK) {
        clear_error(c);
        return -1;
    }
    if (k != 1 || (axes[0] != 0 && axes[0] != -5) || steps[0] != 1)
        return -1;
    int64_t s = starts[0] < 0 ? starts[0] + extent : starts[0];
    int64_t e = ends[0] < 0 ? ends[0] + extent : ends[0] > extent ? extent : ends[0];
    if (s < 0 || s >= extent || e != s + 1)
        return -1;
    onnxi_value_t *o = onnxi_value_of(c, r->output[0]);
    for (size_t j = at + 1; o && o->uses == 1 && j < c->g->n_node; j++) {
        const Onnx__NodeProto *m = c->g->node[j];
        if (!c->node_needed[j] || m->n_input < 1 || strcmp(m->input[0], r->output[0]))
            continue;
        int64_t sq[HQ_TENSOR_MAX_DIMS];
        int count;
        if (strcmp(m->op_type, "Squeeze") || m->n_output != 1 ||
            onnxi_axes_of(c, m, 5, sq, &count) != HQ_OK || count != 1 || sq[0] != 0) {
            clear_error(c);
            return -1;
        }
        *squeeze = m;
        *squeeze_at = j;
        return s;
    }
    return -1;
}

/* Attention's q, k, v unstacked from one projection: the view [N, T, K] reshaped to
 * [N, T, S, A, B] (`to`), a Transpose bringing S to the front and the batch second, and readers
 * that each take one index i of S (unstack_index). Piece i is the channels [i·K/S, (i+1)·K/S)
 * of the view, [N, T, A, B] in ONNX order, permuted as the Transpose permutes T, A and B: a
 * slice, a reshape and (unless the order is kept) one transpose to the NCHW layout. */
static hq_status_t unstack(onnxi_ctx_t *c, const Onnx__NodeProto *n, onnxi_value_t *x,
                           const int64_t *in, const int64_t *to, bool *done)
{
    enum { MAX_PIECES = 16 };
    if (to[0] != 1 || to[1] != in[1] || to[2] < 1 || to[2] * to[3] * to[4] != in[2])
        return HQ_OK;
    size_t self = node_index(c, n), ti = 0;
    onnxi_value_t *ro = onnxi_value_of(c, n->output[0]);
    const Onnx__NodeProto *t = NULL;
    for (size_t j = self + 1; ro && ro->uses == 1 && j < c->g->n_node && !t; j++)
        if (c->node_needed[j] && c->g->node[j]->n_input >= 1 &&
            !strcmp(c->g->node[j]->input[0], n->output[0])) {
            t = c->g->node[j];
            ti = j;
        }
    int k;
    const int64_t *perm = t && !strcmp(t->op_type, "Transpose") && t->n_output == 1
                              ? onnxi_attr_ints(t, "perm", &k)
                              : NULL;
    if (!perm || k != 5 || perm[0] != 2 || perm[1] != 0)
        return HQ_OK;
    for (int d = 2; d < 5; d++)
        if (perm[d] < 0 || perm[d] > 4)
            return HQ_OK;
    /* the order of T, A, B after the Transpose, as axes 1..3 of [N, T, A, B] */
    static const int axis_of[5] = {0, 1, -1, 2, 3};
    int order[4] = {0, axis_of[perm[2]], axis_of[perm[3]], axis_of[perm[4]]};
    if (order[1] < 1 || order[2] < 1 || order[3] < 1 || order[1] == order[2] ||
        order[2] == order[3] || order[1] == order[3])
        return HQ_OK;
    /* every reader of the Transpose takes one piece */
    const Onnx__NodeProto *readers[MAX_PIECES], *squeezes[MAX_PIECES];
    size_t reader_at[MAX_PIECES], squeeze_at[MAX_PIECES];
    int64_t index[MAX_PIECES];
    int count = 0;
    onnxi_value_t *tv = onnxi_value_of(c, t->output[0]);
    for (size_t j = ti + 1; tv && j < c->g->n_node; j++) {
        const Onnx__NodeProto *m = c->g->node[j];
        if (!c->node_needed[j] || m->n_input < 1 || strcmp(m->input[0], t->output[0]))
            continue;
        if (count == MAX_PIECES)
            return HQ_OK;
        readers[count] = m;
        reader_at[count] = j;
        index[count] = unstack_index(c, m, j, to[2], &squeezes[count], &squeeze_at[count]);
        if (index[count] < 0 || (!strcmp(m->op_type, "Slice") && !squeezes[count]))
            return HQ_OK;
        count++;
    }
    if (!tv || count == 0 || count != tv->uses)
        return HQ_OK;
    const int64_t group = to[3] * to[4];
    const int hq_perm[4] = {0, order[2], order[3], order[1]}; /* [N, a1, a2, a3] as NCHW */
    const bool keep = hq_perm[1] == 1 && hq_perm[2] == 2 && hq_perm[3] == 3;
    hq_status_t st = HQ_OK;
    for (int p = 0; p < count && st == HQ_OK; p++) {
        const Onnx__NodeProto *last = squeezes[p] ? squeezes[p] : readers[p];
        int slice, index_out;
        if ((st = onnxi_new_layer(c, HQ_LAYER_SLICE, readers[p], &slice)) != HQ_OK ||
            (st = onnxi_connect_value(c, x, slice)) != HQ_OK)
            break;
        hq_layer_params_t *sp = onnxi_layer_params(c, slice);
        /* slice_* index: 0 = H, 1 = W, 2 = C */
        const int64_t begin[3] = {0, 0, index[p] * group},
                      end[3] = {1, in[1], (index[p] + 1) * group};
        for (int s = 0; s < 3; s++) {
            sp->slice_begin[s] = (int)begin[s];
            sp->slice_end[s] = (int)end[s];
            sp->slice_step[s] = 1;
        }
        onnxi_value_t piece = *x;
        piece.layer = slice;
        piece.port = 0;
        hq_shape_t four = {4, {-1, in[1], to[3], to[4]}};
        if ((st = onnxi_add_reshape(c, &piece, &four, &index_out)) != HQ_OK)
            break;
        if (!keep && (st = onnxi_add_transpose(c, index_out, 0, hq_perm, 4, &index_out)) != HQ_OK)
            break;
        const Onnx__NodeProto *names[3] = {n, t, squeezes[p]};
        for (int k2 = 0; k2 < 3 && st == HQ_OK; k2++)
            if (names[k2])
                st = hq_layer_add_original_name(c->graph, index_out, onnxi_node_label(names[k2]),
                                                c->err);
        if (st == HQ_OK)
            st = onnxi_set_layer_output(c, last, 0, index_out, 0, 4);
        c->plans[reader_at[p]].skip = true;
        if (squeezes[p])
            c->plans[squeeze_at[p]].skip = true;
    }
    c->plans[ti].skip = true;
    *done = true;
    return st;
}

hq_status_t onnxi_reshape_view(onnxi_ctx_t *c, const Onnx__NodeProto *n, onnxi_value_t *x,
                               bool *done)
{
    *done = false;
    int rank, to_rank = 0;
    int64_t in[4], to[HQ_TENSOR_MAX_DIMS];
    onnxi_value_t *tv = onnxi_value_of(c, n->input[1]);
    hq_status_t st = onnxi_onnx_shape_of(c, x, &rank, in);
    if (st != HQ_OK || !tv || tv->kind != VALUE_CONST)
        return st;
    if ((st = onnxi_reshape_target(c, n, in, rank, tv->constant, to, &to_rank)) != HQ_OK)
        return st;
    if (to_rank == 5 && rank == 3)
        return unstack(c, n, x, in, to, done);
    if (to_rank < 2 || to_rank > 4 || to[0] != 1)
        return HQ_OK; /* refused as any reshape to such a shape */
    /* the view is the ONNX tensor in its own order: the reshape is the layer's */
    hq_shape_t shape = {4, {-1, 1, to[1], to_rank == 3 ? to[2] : 1}};
    if (to_rank == 2)
        shape = (hq_shape_t){2, {-1, to[1]}};
    else if (to_rank == 4)
        shape = (hq_shape_t){4, {-1, to[1], to[2], to[3]}};
    hq_shape_t now;
    if ((st = onnxi_hq_shape_of(c, x, &now)) != HQ_OK)
        return st;
    bool same = now.ndim == shape.ndim;
    for (int d = 1; d < now.ndim && same; d++)
        same = now.dims[d] == shape.dims[d];
    if (same) {
        st = onnxi_alias_output(c, n, x);
    } else {
        int index;
        if ((st = onnxi_add_reshape(c, x, &shape, &index)) == HQ_OK &&
            (st = hq_layer_add_original_name(c->graph, index, onnxi_node_label(n), c->err)) ==
                HQ_OK)
            st = onnxi_set_layer_output(c, n, 0, index, 0, to_rank);
    }
    onnxi_value_t *out = onnxi_value_of(c, n->output[0]);
    if (st == HQ_OK && out && out->kind == VALUE_LAYER) {
        out->rank = to_rank;
        out->nhwc = to_rank != 2;
    }
    *done = true;
    return st;
}
