/* onnx_ops_layout.c — ops that select or rearrange data without arithmetic: Concat (or a pad
 * layer for constant channel padding), Split, Slice, Pad, Transpose, DepthToSpace, SpaceToDepth,
 * Softmax, Identity, Dropout, and Shape (a constant from a computed tensor's shape). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_internal.h"

hq_status_t onnxi_convert_concat(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    if (n->n_input < 1)
        NODE_FAIL(c, n, HQ_ERR_FORMAT, "has no inputs");
    onnxi_value_t *ref = NULL;
    hq_status_t st;
    for (size_t i = 0; i < n->n_input; i++) {
        onnxi_value_t *v;
        if ((st = onnxi_node_input(c, n, i, &v)) != HQ_OK)
            return st;
        if (!v)
            NODE_FAIL(c, n, HQ_ERR_FORMAT, "input %zu is missing", i + 1);
        if (v->kind == VALUE_LAYER && !ref)
            ref = v;
    }
    if (!ref)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "no computed input");
    if ((st = onnxi_materialize(c, ref)) != HQ_OK)
        return st;
    int axis = onnxi_map_axis(onnxi_attr_int(n, "axis", 1), ref->rank);
    if (axis < 0)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "concatenation along axis %lld (the batch)",
                  (long long)onnxi_attr_int(n, "axis", 1));
    if (n->n_input == 1)
        return onnxi_alias_output(c, n, ref);
    /* Layer + uniform constant along C (ConstantOfShape channel padding) -> a pad layer. */
    if (n->n_input == 2 && axis == ref->rank - 1 + (ref->rank == 4 ? 0 : 0) &&
        axis == (ref->rank == 4 ? 3 : 1)) {
        onnxi_value_t *v0 = onnxi_value_of(c, n->input[0]), *v1 = onnxi_value_of(c, n->input[1]);
        onnxi_value_t *k = v0->kind == VALUE_CONST ? v0 : v1->kind == VALUE_CONST ? v1 : NULL;
        if (k && ref->rank == 4) {
            int rank;
            int64_t dims[4];
            const hq_tensor_t *t = k->constant;
            if ((st = onnxi_onnx_shape_of(c, ref, &rank, dims)) != HQ_OK)
                return st;
            bool uniform = t->ndim == 4 && t->shape[2] == dims[2] && t->shape[3] == dims[3] &&
                           t->shape[1] > 0 && t->shape[1] <= 65536;
            for (int64_t i = 1; uniform && i < hq_tensor_count(t); i++)
                uniform = onnxi_tensor_at(t, i) == onnxi_tensor_at(t, 0);
            if (uniform) {
                int index;
                if ((st = onnxi_new_layer(c, HQ_LAYER_PAD, n, &index)) != HQ_OK ||
                    (st = onnxi_connect_value(c, ref, index)) != HQ_OK)
                    return st;
                hq_layer_params_t *p = onnxi_layer_params(c, index);
                p->pad_value = (float)onnxi_tensor_at(t, 0);
                if (!(fabsf(p->pad_value) <= CLIP_OPEN))
                    NODE_FAIL(c, n, HQ_ERR_INVALID, "padding value is not a finite number");
                p->pad_channels[k == v0 ? 0 : 1] = (int)t->shape[1];
                return onnxi_set_layer_output(c, n, 0, index, 0, 4);
            }
        }
    }
    int inputs[64];
    if (n->n_input > 64)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "more than 64 inputs");
    for (size_t i = 0; i < n->n_input; i++) {
        onnxi_value_t *v = onnxi_value_of(c, n->input[i]);
        if (!v || v->kind == VALUE_UNKNOWN)
            NODE_FAIL(c, n, HQ_ERR_FORMAT, "input %zu is missing", i + 1);
        if (v->kind == VALUE_CONST) {
            if ((st = onnxi_add_const_layer(c, n, v->constant, ref->rank, &inputs[i])) != HQ_OK)
                return st;
            continue;
        }
        if ((st = onnxi_materialize(c, v)) != HQ_OK)
            return st;
        if (v->rank != ref->rank)
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "inputs of rank %d and %d", v->rank, ref->rank);
        inputs[i] = -1;
    }
    int index;
    if ((st = onnxi_new_layer(c, HQ_LAYER_CONCAT, n, &index)) != HQ_OK)
        return st;
    onnxi_layer_params(c, index)->axis = axis;
    for (size_t i = 0; i < n->n_input; i++) {
        onnxi_value_t *v = onnxi_value_of(c, n->input[i]);
        st = inputs[i] >= 0 ? hq_graph_connect(c->graph, inputs[i], 0, index, c->err)
                            : onnxi_connect_value(c, v, index);
        if (st != HQ_OK)
            return st;
    }
    return onnxi_set_layer_output(c, n, 0, index, 0, ref->rank);
}

hq_status_t onnxi_convert_split(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    onnxi_value_t *x;
    hq_status_t st = onnxi_layer_input(c, n, 0, &x);
    if (st != HQ_OK)
        return st;
    int rank;
    int64_t dims[4];
    if ((st = onnxi_onnx_shape_of(c, x, &rank, dims)) != HQ_OK)
        return st;
    int64_t oaxis = onnxi_attr_int(n, "axis", 0);
    int axis = onnxi_map_axis(oaxis, rank);
    if (axis < 0)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "split along axis %lld (the batch)", (long long)oaxis);
    int64_t extent = dims[oaxis < 0 ? oaxis + rank : oaxis];
    int count = (int)n->n_output;
    if (count < 1 || count > 1024)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "%d outputs", count);
    int sizes[1024];
    int k;
    const int64_t *split = onnxi_attr_ints(n, "split", &k);
    hq_tensor_t *ts = NULL;
    if (k < 0 && (st = onnxi_const_input(c, n, 1, false, &ts)) != HQ_OK)
        return st;
    int64_t total = 0;
    for (int i = 0; i < count; i++) {
        int64_t s;
        if (k >= 0 || ts) {
            if ((k >= 0 ? k : hq_tensor_count(ts)) != count)
                NODE_FAIL(c, n, HQ_ERR_INVALID, "split sizes do not match the %d outputs", count);
            s = k >= 0 ? split[i] : onnxi_tensor_int_at(ts, i);
        } else {
            s = (extent + count - 1) / count;
            if (i == count - 1)
                s = extent - s * (count - 1);
        }
        if (s < 1 || s > extent)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "split size %lld", (long long)s);
        sizes[i] = (int)s;
        total += s;
    }
    if (total != extent)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "split sizes sum to %lld, the axis has %lld",
                  (long long)total, (long long)extent);
    int index;
    if ((st = onnxi_new_layer(c, HQ_LAYER_FEATURE_SPLITTER, n, &index)) != HQ_OK ||
        (st = onnxi_connect_value(c, x, index)) != HQ_OK ||
        (st = hq_layer_set_split_sizes(c->graph, index, sizes, count, c->err)) != HQ_OK)
        return st;
    onnxi_layer_params(c, index)->axis = axis;
    for (int i = 0; i < count; i++)
        if ((st = onnxi_set_layer_output(c, n, (size_t)i, index, i, rank)) != HQ_OK)
            return st;
    return HQ_OK;
}

hq_status_t onnxi_convert_slice(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    onnxi_value_t *x;
    int64_t dims[4];
    /* a [N, C, L] tensor is sliced as [N, C, 1, L] */
    onnxi_value_t *in = NULL;
    hq_status_t st = onnxi_node_input(c, n, 0, &in);
    int rank = in && in->kind == VALUE_LAYER && !in->flat && in->rank == 3 ? 3 : 4;
    c->lift_1d = rank == 3;
    if (st == HQ_OK)
        st = onnxi_image_input(c, n, &x, dims);
    c->lift_1d = false;
    if (st != HQ_OK)
        return st;
    int64_t starts[HQ_TENSOR_MAX_DIMS], ends[HQ_TENSOR_MAX_DIMS], axes[HQ_TENSOR_MAX_DIMS],
        steps[HQ_TENSOR_MAX_DIMS];
    int k;
    if ((st = onnxi_slice_params(c, n, rank, starts, ends, axes, steps, &k)) != HQ_OK)
        return st;
    for (int i = 0; i < k; i++) {
        if (axes[i] < 0)
            axes[i] += rank;
        if (rank == 3 && axes[i] == 2)
            axes[i] = 3; /* L is the 4-D W axis */
    }
    int index;
    if ((st = onnxi_new_layer(c, HQ_LAYER_SLICE, n, &index)) != HQ_OK ||
        (st = onnxi_connect_value(c, x, index)) != HQ_OK)
        return st;
    hq_layer_params_t *p = onnxi_layer_params(c, index);
    /* slice_* index: 0 = H (ONNX 2), 1 = W (ONNX 3), 2 = C (ONNX 1). */
    static const int slot_of[4] = {-1, 2, 0, 1};
    static const int onnx_of[3] = {2, 3, 1};
    for (int s = 0; s < 3; s++) {
        p->slice_begin[s] = 0;
        p->slice_end[s] = (int)dims[onnx_of[s]];
        p->slice_step[s] = 1;
    }
    for (int i = 0; i < k; i++) {
        int64_t ax = axes[i] < 0 ? axes[i] + 4 : axes[i];
        int64_t dim = dims[ax], s = starts[i], e = ends[i];
        if (steps[i] < 1)
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "step %lld (only positive steps)",
                      (long long)steps[i]);
        if (s < 0)
            s += dim;
        if (e < 0)
            e += dim;
        s = s < 0 ? 0 : s > dim ? dim : s;
        e = e < 0 ? 0 : e > dim ? dim : e;
        if (ax == 0) {
            if (s != 0 || e != dim)
                NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "slicing the batch");
            continue;
        }
        if (e <= s)
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "empty slice");
        int slot = slot_of[ax];
        p->slice_begin[slot] = (int)s;
        p->slice_end[slot] = (int)e;
        p->slice_step[slot] = (int)steps[i];
    }
    return onnxi_set_layer_output(c, n, 0, index, 0, rank);
}

hq_status_t onnxi_convert_pad(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    onnxi_value_t *x;
    int64_t dims[4];
    hq_status_t st = onnxi_image_input(c, n, &x, dims);
    if (st != HQ_OK)
        return st;
    int64_t pads[8];
    int k;
    const int64_t *pa = onnxi_attr_ints(n, "pads", &k);
    float value = onnxi_attr_float(n, "value", 0.0f);
    if (k >= 0) {
        if (k != 8)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "pads has %d values, needs 8", k);
        memcpy(pads, pa, sizeof pads);
    } else {
        hq_tensor_t *tp;
        if ((st = onnxi_const_input(c, n, 1, true, &tp)) != HQ_OK ||
            (st = onnxi_ints_of(c, n, tp, pads, 8, &k)) != HQ_OK ||
            (st = onnxi_scalar_input(c, n, 2, value, &value)) != HQ_OK)
            return st;
        if (k != 8)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "pads has %d values, needs 8", k);
        if (n->n_input > 3 && n->input[3][0])
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "the axes input");
    }
    if (!(fabsf(value) <= CLIP_OPEN))
        NODE_FAIL(c, n, HQ_ERR_INVALID, "pad value %g out of range", value);
    for (int i = 0; i < 8; i++)
        if (pads[i] < 0 || pads[i] > 65536)
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "pad %lld (negative or huge)", (long long)pads[i]);
    if (pads[0] || pads[4])
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "padding the batch");
    const char *mode = onnxi_attr_string(n, "mode", "constant");
    hq_pad_mode_t pm;
    if (!strcmp(mode, "constant"))
        pm = HQ_PAD_CONSTANT;
    else if (!strcmp(mode, "reflect"))
        pm = HQ_PAD_REFLECT;
    else if (!strcmp(mode, "edge"))
        pm = HQ_PAD_EDGE;
    else
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "mode '%s'", mode);
    int index;
    if ((st = onnxi_new_layer(c, HQ_LAYER_PAD, n, &index)) != HQ_OK ||
        (st = onnxi_connect_value(c, x, index)) != HQ_OK)
        return st;
    hq_layer_params_t *p = onnxi_layer_params(c, index);
    p->pad_mode = pm;
    p->pad_value = value;
    p->padding = HQ_PADDING_EXPLICIT;
    p->pads[0] = (int)pads[2];
    p->pads[1] = (int)pads[3];
    p->pads[2] = (int)pads[6];
    p->pads[3] = (int)pads[7];
    p->pad_channels[0] = (int)pads[1];
    p->pad_channels[1] = (int)pads[5];
    return onnxi_set_layer_output(c, n, 0, index, 0, 4);
}

hq_status_t onnxi_convert_transpose(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    onnxi_value_t *x;
    hq_status_t st = onnxi_layer_input(c, n, 0, &x);
    if (st != HQ_OK)
        return st;
    int k;
    const int64_t *perm = onnxi_attr_ints(n, "perm", &k);
    if (k != x->rank)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "perm must list the %d axes", x->rank);
    bool seen[4] = {0};
    for (int i = 0; i < k; i++) {
        if (perm[i] < 0 || perm[i] >= k || seen[perm[i]])
            NODE_FAIL(c, n, HQ_ERR_INVALID, "perm is not a permutation");
        seen[perm[i]] = true;
    }
    if (perm[0] != 0)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "moving the batch axis");
    if (x->rank == 2)
        return onnxi_alias_output(c, n, x);
    int64_t perm4[4];
    if (x->rank == 3) { /* [N, C, L] = [N, C, 1, L]: ONNX axes 0, 1, 2 are 4-D axes 0, 1, 3 */
        static const int64_t to4[3] = {0, 1, 3};
        perm4[0] = 0, perm4[1] = to4[perm[1]], perm4[2] = 2, perm4[3] = to4[perm[2]];
        perm = perm4;
    }
    /* hq axis i holds ONNX axis inv[i]; out hq axis i = in hq axis map[perm[inv[i]]]. */
    static const int map[4] = {0, 3, 1, 2}, inv[4] = {0, 2, 3, 1};
    int q[4];
    bool identity = true;
    for (int i = 0; i < 4; i++) {
        q[i] = map[perm[inv[i]]];
        identity &= q[i] == i;
    }
    if (identity)
        return onnxi_alias_output(c, n, x);
    int index;
    if ((st = onnxi_add_transpose(c, x->layer, x->port, q, 4, &index)) != HQ_OK ||
        (st = hq_layer_add_original_name(c->graph, index, onnxi_node_label(n), c->err)) != HQ_OK)
        return st;
    return onnxi_set_layer_output(c, n, 0, index, 0, x->rank);
}

hq_status_t onnxi_convert_shape(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    onnxi_value_t *x;
    hq_status_t st = onnxi_node_input(c, n, 0, &x);
    if (st != HQ_OK)
        return st;
    if (!x)
        NODE_FAIL(c, n, HQ_ERR_FORMAT, "input 1 is missing");
    int rank;
    int64_t dims[4];
    if ((st = onnxi_onnx_shape_of(c, x, &rank, dims)) != HQ_OK)
        return st;
    int64_t start = onnxi_attr_int(n, "start", 0), end = onnxi_attr_int(n, "end", rank);
    if (start < 0)
        start += rank;
    if (end < 0)
        end += rank;
    start = start < 0 ? 0 : start > rank ? rank : start;
    end = end < start ? start : end > rank ? rank : end;
    int64_t len = end - start;
    hq_tensor_t *t;
    if ((st = onnxi_new_tensor(c, HQ_DTYPE_INT64, 1, &len, &t)) != HQ_OK)
        return st;
    for (int64_t i = 0; i < len; i++)
        ((int64_t *)t->data)[i] = dims[start + i];
    return onnxi_set_const_output(c, n, 0, t);
}

/* Identity and Dropout (dropout = true: its training_mode input must be a constant false). */
static hq_status_t convert_passthrough(onnxi_ctx_t *c, const Onnx__NodeProto *n, bool dropout)
{
    onnxi_value_t *x;
    hq_status_t st = onnxi_layer_input(c, n, 0, &x);
    if (st != HQ_OK)
        return st;
    if (n->n_output > 1 && n->output[1][0] && onnxi_value_of(c, n->output[1])->uses)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "the mask output is used");
    /* opset 12+: training_mode (input 3) true makes it random; inference means false */
    onnxi_value_t *training = NULL;
    if (dropout && (st = onnxi_node_input(c, n, 2, &training)) != HQ_OK)
        return st;
    if (training && (training->kind != VALUE_CONST || hq_tensor_count(training->constant) != 1 ||
                     onnxi_tensor_at(training->constant, 0) != 0))
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "training_mode is not a constant false");
    return onnxi_alias_output(c, n, x);
}

hq_status_t onnxi_convert_identity(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_passthrough(c, n, false);
}

hq_status_t onnxi_convert_dropout(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_passthrough(c, n, true);
}

bool onnxi_cast_to_float(const Onnx__NodeProto *n)
{
    int64_t to = onnxi_attr_int(n, "to", 0);
    return to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
           to == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ||
           to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16 ||
           to == ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16;
}

/* Cast of a computed tensor: to a floating-point type it passes through (hq computes in float32;
 * tf2onnx writes such casts around preprocessing); to an integer or bool it would change the
 * values, which no layer does: the node is then reported as one hq cannot convert, with the cut
 * that leaves it out. */
hq_status_t onnxi_convert_cast(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    if (!onnxi_cast_to_float(n) && !c->shapes_only) /* that pass only learns shapes */
        return onnxi_unconvertible_node(c, n, c->outputs, c->output_count);
    return convert_passthrough(c, n, false);
}

hq_status_t onnxi_convert_softmax(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    onnxi_value_t *x;
    hq_status_t st = onnxi_layer_input(c, n, 0, &x);
    if (st != HQ_OK)
        return st;
    int rank;
    int64_t dims[4];
    if ((st = onnxi_onnx_shape_of(c, x, &rank, dims)) != HQ_OK)
        return st;
    int index;
    int64_t oaxis = onnxi_attr_int(n, "axis", c->opset >= 13 ? -1 : 1);
    int axis = onnxi_map_axis(oaxis, rank);
    if (axis < 0)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "softmax over axis %lld", (long long)oaxis);
    /* before opset 13 the input is flattened from `axis` on: one axis only when the ones
     * after it are 1 */
    int64_t after = 1;
    for (int64_t d = (oaxis < 0 ? oaxis + rank : oaxis) + 1; d < rank; d++)
        after *= dims[d];
    if (c->opset < 13 && after != 1)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "opset < 13 softmax over several axes");
    if ((st = onnxi_new_layer(c, HQ_LAYER_SOFTMAX, n, &index)) != HQ_OK ||
        (st = onnxi_connect_value(c, x, index)) != HQ_OK)
        return st;
    onnxi_layer_params(c, index)->axis = axis;
    return onnxi_set_layer_output(c, n, 0, index, 0, rank);
}

/* DepthToSpace and SpaceToDepth (`type` says which). */
static hq_status_t convert_block_rearrange(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                           hq_layer_type_t type)
{
    onnxi_value_t *x;
    hq_status_t st = onnxi_layer_input(c, n, 0, &x);
    if (st != HQ_OK)
        return st;
    int rank;
    int64_t dims[4];
    if ((st = onnxi_onnx_shape_of(c, x, &rank, dims)) != HQ_OK)
        return st;
    int index;
    if (rank != 4)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "input of rank %d", rank);
    int64_t block = onnxi_attr_int(n, "blocksize", 0);
    if (block < 1 || block > 4096)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "blocksize %lld", (long long)block);
    if ((st = onnxi_new_layer(c, type, n, &index)) != HQ_OK ||
        (st = onnxi_connect_value(c, x, index)) != HQ_OK)
        return st;
    onnxi_layer_params(c, index)->block_size = (int)block;
    if (type == HQ_LAYER_DEPTH_TO_SPACE) {
        const char *mode = onnxi_attr_string(n, "mode", "DCR");
        if (strcmp(mode, "DCR") && strcmp(mode, "CRD"))
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "mode '%s'", mode);
        onnxi_layer_params(c, index)->depth_to_space_crd = !strcmp(mode, "CRD");
    }
    return onnxi_set_layer_output(c, n, 0, index, 0, 4);
}

hq_status_t onnxi_convert_depth_to_space(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_block_rearrange(c, n, HQ_LAYER_DEPTH_TO_SPACE);
}

hq_status_t onnxi_convert_space_to_depth(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_block_rearrange(c, n, HQ_LAYER_SPACE_TO_DEPTH);
}
