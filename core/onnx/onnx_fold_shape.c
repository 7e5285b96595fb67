/* onnx_fold_shape.c — constant folding of the ops that move data around (Reshape, Flatten,
 * Squeeze, Unsqueeze, Concat, Slice, Transpose), and the readers of their parameters (axes,
 * reshape targets, slice bounds) that the converts share. */
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_internal.h"

/* Normalized axes list from the `axes` attribute or input 1 (opset 13). */
hq_status_t onnxi_axes_of(onnxi_ctx_t *c, const Onnx__NodeProto *n, int rank, int64_t *axes,
                          int *count)
{
    int k;
    const int64_t *a = onnxi_attr_ints(n, "axes", &k);
    if (k >= 0) {
        for (int i = 0; i < k; i++)
            axes[i] = a[i];
        *count = k;
    } else {
        hq_tensor_t *t;
        hq_status_t st = onnxi_const_input(c, n, 1, false, &t);
        if (st != HQ_OK)
            return st;
        *count = 0;
        if (t && (st = onnxi_ints_of(c, n, t, axes, HQ_TENSOR_MAX_DIMS, count)) != HQ_OK)
            return st;
    }
    for (int i = 0; i < *count; i++) {
        if (axes[i] < 0)
            axes[i] += rank;
        if (axes[i] < 0 || axes[i] >= rank)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "axis %lld out of range for rank %d",
                      (long long)axes[i], rank);
    }
    return HQ_OK;
}

static hq_status_t fold_reshape_to(onnxi_ctx_t *c, const Onnx__NodeProto *n, const hq_tensor_t *src,
                                   int nd, const int64_t *shape)
{
    if (nd > HQ_TENSOR_MAX_DIMS)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "rank %d", nd);
    hq_tensor_t *t;
    hq_status_t st = onnxi_new_tensor(c, src->dtype, nd, shape, &t);
    if (st != HQ_OK)
        return st;
    if (t->nbytes != src->nbytes) {
        hq_tensor_destroy(t);
        NODE_FAIL(c, n, HQ_ERR_INVALID, "reshape changes the element count");
    }
    if (t->nbytes)
        memcpy(t->data, src->data, t->nbytes);
    return onnxi_set_const_output(c, n, 0, t);
}

/* Resolves a Reshape target (0 = copy, -1 = infer) against `in` dims. */
hq_status_t onnxi_reshape_target(onnxi_ctx_t *c, const Onnx__NodeProto *n, const int64_t *in,
                                 int in_nd, const hq_tensor_t *shape_t, int64_t *out, int *out_nd)
{
    hq_status_t st = onnxi_ints_of(c, n, shape_t, out, HQ_TENSOR_MAX_DIMS, out_nd);
    if (st != HQ_OK)
        return st;
    int64_t total = 1, known = 1;
    for (int d = 0; d < in_nd; d++)
        total *= in[d];
    int infer = -1;
    for (int d = 0; d < *out_nd; d++) {
        if (out[d] == 0 && !onnxi_attr_int(n, "allowzero", 0)) {
            if (d >= in_nd)
                NODE_FAIL(c, n, HQ_ERR_INVALID, "shape copies dimension %d of a rank-%d input", d,
                          in_nd);
            out[d] = in[d];
        }
        if (out[d] == -1) {
            if (infer >= 0)
                NODE_FAIL(c, n, HQ_ERR_INVALID, "shape has two -1 entries");
            infer = d;
            continue;
        }
        if (out[d] < 0 || out[d] > MAX_CONST_ELEMENTS)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "shape entry %lld", (long long)out[d]);
        known *= out[d];
        if (known > MAX_CONST_ELEMENTS)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "shape too large");
    }
    if (infer >= 0) {
        if (known == 0 || total % known)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "cannot infer the -1 dimension");
        out[infer] = total / known;
        known = total;
    }
    if (known != total)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "reshape from %lld to %lld elements", (long long)total,
                  (long long)known);
    return HQ_OK;
}

static hq_status_t slice_constant(onnxi_ctx_t *c, const Onnx__NodeProto *n, const hq_tensor_t *src,
                                  const int64_t *starts, const int64_t *ends, const int64_t *axes,
                                  const int64_t *steps, int k)
{
    int nd = src->ndim;
    int64_t begin[HQ_TENSOR_MAX_DIMS], step[HQ_TENSOR_MAX_DIMS], shape[HQ_TENSOR_MAX_DIMS];
    for (int d = 0; d < nd; d++) {
        begin[d] = 0;
        step[d] = 1;
        shape[d] = src->shape[d];
    }
    for (int i = 0; i < k; i++) {
        int64_t ax = axes[i] < 0 ? axes[i] + nd : axes[i];
        if (ax < 0 || ax >= nd || steps[i] == 0)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "slice axis or step out of range");
        int64_t dim = src->shape[ax], s = starts[i], e = ends[i], st = steps[i];
        if (s < 0)
            s += dim;
        if (e < 0)
            e += dim;
        if (st > 0) {
            s = s < 0 ? 0 : s > dim ? dim : s;
            e = e < 0 ? 0 : e > dim ? dim : e;
            shape[ax] = e > s ? (e - s + st - 1) / st : 0;
        } else {
            s = s < 0 ? -1 : s > dim - 1 ? dim - 1 : s;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
            shape[ax] = s > e ? (s - e - st - 1) / -st : 0;
        }
        begin[ax] = s;
        step[ax] = st;
    }
    hq_tensor_t *t;
    hq_status_t st = onnxi_new_tensor(c, src->dtype, nd, shape, &t);
    if (st != HQ_OK)
        return st;
    int64_t strides[HQ_TENSOR_MAX_DIMS], idx[HQ_TENSOR_MAX_DIMS] = {0};
    onnxi_strides_of(src, strides);
    int64_t count = hq_tensor_count(t);
    for (int64_t i = 0; i < count; i++) {
        int64_t off = 0;
        for (int d = 0; d < nd; d++)
            off += (begin[d] + idx[d] * step[d]) * strides[d];
        onnxi_put_at(t, i, onnxi_tensor_at(src, off));
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < shape[d])
                break;
            idx[d] = 0;
        }
    }
    return onnxi_set_const_output(c, n, 0, t);
}

/* Slice parameters from attributes (opset < 10) or inputs. */
hq_status_t onnxi_slice_params(onnxi_ctx_t *c, const Onnx__NodeProto *n, int rank, int64_t *starts,
                               int64_t *ends, int64_t *axes, int64_t *steps, int *k)
{
    int ks = 0, ke = 0, ka = -1, kp = -1;
    const int64_t *a = onnxi_attr_ints(n, "starts", &ks);
    hq_status_t st;
    if (ks >= 0) {
        const int64_t *e = onnxi_attr_ints(n, "ends", &ke);
        const int64_t *x = onnxi_attr_ints(n, "axes", &ka);
        if (ke != ks || ks > HQ_TENSOR_MAX_DIMS || (ka >= 0 && ka != ks))
            NODE_FAIL(c, n, HQ_ERR_INVALID, "starts, ends and axes differ in length");
        for (int i = 0; i < ks; i++) {
            starts[i] = a[i];
            ends[i] = e[i];
            axes[i] = ka >= 0 ? x[i] : i;
            steps[i] = 1;
        }
        *k = ks;
    } else {
        hq_tensor_t *ts, *te, *ta, *tp;
        if ((st = onnxi_const_input(c, n, 1, true, &ts)) != HQ_OK ||
            (st = onnxi_const_input(c, n, 2, true, &te)) != HQ_OK ||
            (st = onnxi_const_input(c, n, 3, false, &ta)) != HQ_OK ||
            (st = onnxi_const_input(c, n, 4, false, &tp)) != HQ_OK)
            return st;
        if ((st = onnxi_ints_of(c, n, ts, starts, HQ_TENSOR_MAX_DIMS, &ks)) != HQ_OK ||
            (st = onnxi_ints_of(c, n, te, ends, HQ_TENSOR_MAX_DIMS, &ke)) != HQ_OK ||
            (ta && (st = onnxi_ints_of(c, n, ta, axes, HQ_TENSOR_MAX_DIMS, &ka)) != HQ_OK) ||
            (tp && (st = onnxi_ints_of(c, n, tp, steps, HQ_TENSOR_MAX_DIMS, &kp)) != HQ_OK))
            return st;
        if (ke != ks || (ta && ka != ks) || (tp && kp != ks))
            NODE_FAIL(c, n, HQ_ERR_INVALID, "starts, ends, axes and steps differ in length");
        for (int i = 0; i < ks; i++) {
            if (!ta)
                axes[i] = i;
            if (!tp)
                steps[i] = 1;
        }
        *k = ks;
    }
    for (int i = 0; i < *k; i++) {
        /* INT64_MAX style sentinels: clamp to something sane before arithmetic. */
        if (starts[i] > MAX_CONST_ELEMENTS)
            starts[i] = MAX_CONST_ELEMENTS;
        if (starts[i] < -MAX_CONST_ELEMENTS)
            starts[i] = -MAX_CONST_ELEMENTS;
        if (ends[i] > MAX_CONST_ELEMENTS)
            ends[i] = MAX_CONST_ELEMENTS;
        if (ends[i] < -MAX_CONST_ELEMENTS)
            ends[i] = -MAX_CONST_ELEMENTS;
        if (steps[i] > MAX_CONST_ELEMENTS || steps[i] < -MAX_CONST_ELEMENTS)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "step out of range");
        if (axes[i] < -rank || axes[i] >= rank)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "axis %lld out of range", (long long)axes[i]);
    }
    return HQ_OK;
}

static hq_status_t fold_squeeze_or_unsqueeze(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                             hq_tensor_t *const in[4], bool un)
{
    hq_tensor_t *a = in[0];
    hq_status_t st;
    int64_t axes[HQ_TENSOR_MAX_DIMS];
    int k, kk, out_nd = a->ndim;
    (void)onnxi_attr_ints(n, "axes", &kk);
    int64_t count = kk >= 0 ? kk : (in[1] ? hq_tensor_count(in[1]) : 0);
    if (un)
        out_nd = a->ndim + (int)(count > HQ_TENSOR_MAX_DIMS ? HQ_TENSOR_MAX_DIMS + 1 : count);
    if (out_nd > HQ_TENSOR_MAX_DIMS || count > HQ_TENSOR_MAX_DIMS)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "rank too large");
    if ((st = onnxi_axes_of(c, n, un ? out_nd : a->ndim, axes, &k)) != HQ_OK)
        return st;
    int64_t shape[HQ_TENSOR_MAX_DIMS];
    int nd = 0;
    if (un) {
        bool is_new[HQ_TENSOR_MAX_DIMS] = {0};
        for (int i = 0; i < k; i++)
            is_new[axes[i]] = true;
        for (int d = 0, s = 0; d < out_nd; d++)
            shape[nd++] = is_new[d] ? 1 : (s < a->ndim ? a->shape[s++] : 1);
    } else {
        for (int d = 0; d < a->ndim; d++) {
            bool drop = false;
            for (int i = 0; i < k; i++)
                drop |= axes[i] == d;
            if (k == 0)
                drop = a->shape[d] == 1;
            if (!drop)
                shape[nd++] = a->shape[d];
        }
    }
    return fold_reshape_to(c, n, a, nd, shape);
}

hq_status_t onnxi_fold_unsqueeze(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                                 bool *folded)
{
    return fold_squeeze_or_unsqueeze(c, n, in, true);
}

hq_status_t onnxi_fold_squeeze(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                               bool *folded)
{
    return fold_squeeze_or_unsqueeze(c, n, in, false);
}

hq_status_t onnxi_fold_reshape(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                               bool *folded)
{
    hq_tensor_t *a = in[0];
    hq_status_t st;
    if (!in[1])
        NODE_FAIL(c, n, HQ_ERR_FORMAT, "needs a shape");
    int64_t shape[HQ_TENSOR_MAX_DIMS];
    int nd;
    if ((st = onnxi_reshape_target(c, n, a->shape, a->ndim, in[1], shape, &nd)) != HQ_OK)
        return st;
    return fold_reshape_to(c, n, a, nd, shape);
}

hq_status_t onnxi_fold_flatten(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                               bool *folded)
{
    hq_tensor_t *a = in[0];
    int64_t axis = onnxi_attr_int(n, "axis", 1);
    if (axis < 0)
        axis += a->ndim;
    if (axis < 0 || axis > a->ndim)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "axis out of range");
    int64_t shape[2] = {1, 1};
    for (int d = 0; d < a->ndim; d++)
        shape[d < axis ? 0 : 1] *= a->shape[d];
    return fold_reshape_to(c, n, a, 2, shape);
}

hq_status_t onnxi_fold_concat(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                              bool *folded)
{
    hq_tensor_t *a = in[0], *t = NULL;
    hq_status_t st;
    int64_t axis = onnxi_attr_int(n, "axis", 0);
    if (axis < 0)
        axis += a->ndim;
    if (axis < 0 || axis >= a->ndim)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "axis out of range");
    int64_t shape[HQ_TENSOR_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[axis] = 0;
    bool any_float = false;
    for (size_t i = 0; i < n->n_input; i++) {
        onnxi_value_t *v = onnxi_value_of(c, n->input[i]);
        if (!v || v->kind != VALUE_CONST)
            return *folded = false, HQ_OK;
        hq_tensor_t *x = v->constant;
        if (x->ndim != a->ndim)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "inputs differ in rank");
        for (int d = 0; d < a->ndim; d++)
            if (d != axis && x->shape[d] != a->shape[d])
                NODE_FAIL(c, n, HQ_ERR_INVALID, "inputs differ in shape");
        shape[axis] += x->shape[axis];
        any_float |= x->dtype == HQ_DTYPE_FLOAT32;
    }
    if ((st = onnxi_new_tensor(c, any_float ? HQ_DTYPE_FLOAT32 : HQ_DTYPE_INT64, a->ndim, shape,
                               &t)) != HQ_OK)
        return st;
    int64_t outer = 1, inner = 1, pos = 0;
    for (int d = 0; d < axis; d++)
        outer *= a->shape[d];
    for (int d = (int)axis + 1; d < a->ndim; d++)
        inner *= a->shape[d];
    for (size_t i = 0; i < n->n_input; i++) {
        hq_tensor_t *x = onnxi_value_of(c, n->input[i])->constant;
        int64_t ext = x->shape[axis];
        for (int64_t o = 0; o < outer; o++)
            for (int64_t j = 0; j < ext * inner; j++)
                onnxi_put_at(t, (o * shape[axis] + pos) * inner + j,
                             onnxi_tensor_at(x, o * ext * inner + j));
        pos += ext;
    }
    return onnxi_set_const_output(c, n, 0, t);
}

hq_status_t onnxi_fold_slice(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                             bool *folded)
{
    hq_tensor_t *a = in[0];
    hq_status_t st;
    int64_t starts[HQ_TENSOR_MAX_DIMS], ends[HQ_TENSOR_MAX_DIMS], axes[HQ_TENSOR_MAX_DIMS],
        steps[HQ_TENSOR_MAX_DIMS];
    int k;
    if ((st = onnxi_slice_params(c, n, a->ndim, starts, ends, axes, steps, &k)) != HQ_OK)
        return st;
    return slice_constant(c, n, a, starts, ends, axes, steps, k);
}

hq_status_t onnxi_fold_transpose(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                                 bool *folded)
{
    hq_tensor_t *a = in[0], *t = NULL;
    hq_status_t st;
    int k;
    const int64_t *perm = onnxi_attr_ints(n, "perm", &k);
    int p[HQ_TENSOR_MAX_DIMS];
    for (int d = 0; d < a->ndim; d++)
        p[d] = k >= 0 ? (int)(d < k ? perm[d] : -1) : a->ndim - 1 - d;
    int64_t shape[HQ_TENSOR_MAX_DIMS], strides[HQ_TENSOR_MAX_DIMS], idx[HQ_TENSOR_MAX_DIMS] = {0};
    bool seen[HQ_TENSOR_MAX_DIMS] = {0};
    if (k >= 0 && k != a->ndim)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "perm has %d entries for rank %d", k, a->ndim);
    for (int d = 0; d < a->ndim; d++) {
        if (p[d] < 0 || p[d] >= a->ndim || seen[p[d]])
            NODE_FAIL(c, n, HQ_ERR_INVALID, "perm is not a permutation");
        seen[p[d]] = true;
        shape[d] = a->shape[p[d]];
    }
    onnxi_strides_of(a, strides);
    if ((st = onnxi_new_tensor(c, a->dtype, a->ndim, shape, &t)) != HQ_OK)
        return st;
    for (int64_t i = 0; i < hq_tensor_count(t); i++) {
        int64_t off = 0;
        for (int d = 0; d < a->ndim; d++)
            off += idx[d] * strides[p[d]];
        onnxi_put_at(t, i, onnxi_tensor_at(a, off));
        for (int d = a->ndim - 1; d >= 0; d--) {
            if (++idx[d] < shape[d])
                break;
            idx[d] = 0;
        }
    }
    return onnxi_set_const_output(c, n, 0, t);
}
