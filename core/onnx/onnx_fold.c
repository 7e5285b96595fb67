/* onnx_fold.c — constant folding: a node whose data inputs are all constants is computed here
 * (through its op table row's fold) instead of becoming a layer. Shape-driven subgraphs (Shape ->
 * Gather -> Concat -> Reshape) and small tables fold this way; this file has the folds of the
 * arithmetic and data ops, onnx_fold_shape.c those of the ops that move data around. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_internal.h"

/* Computed constants are shapes and small tables: a tight size limit keeps a tiny hostile
 * model (ConstantOfShape of a huge shape) from allocating gigabytes. */
#define MAX_FOLDED_ELEMENTS ((int64_t)1 << 24)

hq_status_t onnxi_fold_node(onnxi_ctx_t *c, const Onnx__NodeProto *n, const onnxi_op_t *op,
                            bool *folded)
{
    *folded = false;
    /* the inputs are checked for every node, folding or not: an undefined input name is
     * reported here, before any convert sees the node */
    hq_tensor_t *in[4] = {0};
    for (size_t i = 0; i < n->n_input; i++) {
        onnxi_value_t *v;
        hq_status_t st = onnxi_node_input(c, n, i, &v);
        if (st != HQ_OK)
            return st;
        if (v && v->kind != VALUE_CONST)
            return HQ_OK;
        if (i < 4)
            in[i] = v ? v->constant : NULL;
    }
    if (n->n_input == 0 || !in[0] || !op || !op->fold)
        return HQ_OK;
    int64_t saved = c->limit;
    c->limit = MAX_FOLDED_ELEMENTS;
    *folded = true;
    hq_status_t st = op->fold(c, n, in, folded);
    c->limit = saved;
    return st;
}

hq_status_t onnxi_ints_of(onnxi_ctx_t *c, const Onnx__NodeProto *n, const hq_tensor_t *t,
                          int64_t *out, int max, int *count)
{
    int64_t k = hq_tensor_count(t);
    if (t->ndim > 1 || k > max)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "expected a list of at most %d integers", max);
    for (int64_t i = 0; i < k; i++)
        out[i] = onnxi_tensor_int_at(t, i);
    *count = (int)k;
    return HQ_OK;
}

static double add(const double *x, int count, bool integer)
{
    return x[0] + x[1];
}

static double subtract(const double *x, int count, bool integer)
{
    return x[0] - x[1];
}

static double multiply(const double *x, int count, bool integer)
{
    return x[0] * x[1];
}

/* int64 division truncates (as onnxruntime's does), and x / 0 is 0 there; the integer
 * operands arrive as doubles, so the quotient is truncated in double (exact for the shapes and
 * indices folded here, and no overflow for values past int64) */
static double divide(const double *x, int count, bool integer)
{
    if (integer)
        return x[1] == 0 ? 0 : trunc(x[0] / x[1]);
    return x[0] / x[1];
}

/* a `fn` b with numpy broadcasting; int64 only when both are. */
static hq_status_t fold_arithmetic(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                   hq_tensor_t *const in[4], onnxi_elementwise_fn fn)
{
    if (!in[1])
        NODE_FAIL(c, n, HQ_ERR_FORMAT, "needs two inputs");
    const hq_tensor_t *t[2] = {in[0], in[1]};
    hq_dtype_t dtype = in[0]->dtype == HQ_DTYPE_INT64 && in[1]->dtype == HQ_DTYPE_INT64
                           ? HQ_DTYPE_INT64
                           : HQ_DTYPE_FLOAT32;
    return onnxi_fold_elementwise(c, n, t, 2, dtype, fn, 0);
}

hq_status_t onnxi_fold_add(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded)
{
    return fold_arithmetic(c, n, in, add);
}

hq_status_t onnxi_fold_sub(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded)
{
    return fold_arithmetic(c, n, in, subtract);
}

hq_status_t onnxi_fold_mul(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded)
{
    return fold_arithmetic(c, n, in, multiply);
}

hq_status_t onnxi_fold_div(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded)
{
    return fold_arithmetic(c, n, in, divide);
}

/* y = fn(x) elementwise, computed in double, stored in x's type. */
static hq_status_t fold_unary(onnxi_ctx_t *c, const Onnx__NodeProto *n, const hq_tensor_t *a,
                              double (*fn)(double))
{
    hq_tensor_t *t;
    hq_status_t st;
    if ((st = hq_tensor_clone(a, &t, c->err)) != HQ_OK)
        return st;
    for (int64_t i = 0; i < hq_tensor_count(t); i++)
        onnxi_put_at(t, i, fn(onnxi_tensor_at(a, i)));
    return onnxi_set_const_output(c, n, 0, t);
}

static double negate(double x)
{
    return -x;
}

static double reciprocal(double x)
{
    return 1.0 / x;
}

hq_status_t onnxi_fold_neg(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded)
{
    return fold_unary(c, n, in[0], negate);
}

hq_status_t onnxi_fold_sqrt(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                            bool *folded)
{
    return fold_unary(c, n, in[0], sqrt);
}

hq_status_t onnxi_fold_floor(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                             bool *folded)
{
    return fold_unary(c, n, in[0], floor);
}

hq_status_t onnxi_fold_ceil(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                            bool *folded)
{
    return fold_unary(c, n, in[0], ceil);
}

hq_status_t onnxi_fold_reciprocal(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                  hq_tensor_t *const in[4], bool *folded)
{
    return fold_unary(c, n, in[0], reciprocal);
}

hq_status_t onnxi_fold_identity(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                                bool *folded)
{
    return onnxi_alias_output(c, n, onnxi_value_of(c, n->input[0]));
}

/* Shape of a constant, with opset 15's start and end (clamped, negative from the back). */
hq_status_t onnxi_fold_shape(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                             bool *folded)
{
    hq_tensor_t *a = in[0], *t = NULL;
    hq_status_t st;
    int64_t rank = a->ndim;
    int64_t start = onnxi_attr_int(n, "start", 0), end = onnxi_attr_int(n, "end", rank);
    start += start < 0 ? rank : 0;
    end += end < 0 ? rank : 0;
    start = start < 0 ? 0 : start > rank ? rank : start;
    end = end < start ? start : end > rank ? rank : end;
    int64_t len = end - start;
    if ((st = onnxi_new_tensor(c, HQ_DTYPE_INT64, 1, &len, &t)) != HQ_OK)
        return st;
    for (int64_t i = 0; i < len; i++)
        ((int64_t *)t->data)[i] = a->shape[start + i];
    return onnxi_set_const_output(c, n, 0, t);
}

/* Size: the element count as an int64 scalar. */
hq_status_t onnxi_fold_size(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                            bool *folded)
{
    hq_tensor_t *t = NULL;
    int64_t none[1] = {0};
    hq_status_t st = onnxi_new_tensor(c, HQ_DTYPE_INT64, 0, none, &t);
    if (st != HQ_OK)
        return st;
    ((int64_t *)t->data)[0] = hq_tensor_count(in[0]);
    return onnxi_set_const_output(c, n, 0, t);
}

hq_status_t onnxi_fold_cast(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                            bool *folded)
{
    hq_tensor_t *a = in[0], *t = NULL;
    hq_status_t st;
    int64_t to = onnxi_attr_int(n, "to", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    bool fl = to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
              to == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ||
              to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16;
    if ((st = onnxi_new_tensor(c, fl ? HQ_DTYPE_FLOAT32 : HQ_DTYPE_INT64, a->ndim, a->shape, &t)) !=
        HQ_OK)
        return st;
    /* to an integer type truncates toward zero; to bool is x != 0 */
    bool to_bool = to == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL;
    for (int64_t i = 0; i < hq_tensor_count(t); i++) {
        double x = onnxi_tensor_at(a, i);
        if (to_bool)
            x = x != 0;
        else if (!fl && !(x > -9.2e18 && x < 9.2e18))
            x = 0;
        onnxi_put_at(t, i, x);
    }
    return onnxi_set_const_output(c, n, 0, t);
}

hq_status_t onnxi_fold_constant_of_shape(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                         hq_tensor_t *const in[4], bool *folded)
{
    hq_tensor_t *a = in[0], *t = NULL;
    hq_status_t st;
    int64_t shape[HQ_TENSOR_MAX_DIMS];
    int nd = 0;
    if ((st = onnxi_ints_of(c, n, a, shape, HQ_TENSOR_MAX_DIMS, &nd)) != HQ_OK)
        return st;
    const Onnx__AttributeProto *va = onnxi_find_attr(n, "value");
    hq_tensor_t *fill = NULL;
    if (va && va->t && (st = onnxi_decode_tensor(c, va->t, "value", &fill)) != HQ_OK)
        return st;
    st = onnxi_new_tensor(c, fill ? fill->dtype : HQ_DTYPE_FLOAT32, nd, shape, &t);
    if (st == HQ_OK && fill && hq_tensor_count(fill) >= 1)
        for (int64_t i = 0; i < hq_tensor_count(t); i++)
            onnxi_put_at(t, i, onnxi_tensor_at(fill, 0));
    hq_tensor_destroy(fill);
    if (st != HQ_OK)
        return st;
    return onnxi_set_const_output(c, n, 0, t);
}

hq_status_t onnxi_fold_gather(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                              bool *folded)
{
    hq_tensor_t *a = in[0], *t = NULL;
    hq_status_t st;
    if (!in[1])
        NODE_FAIL(c, n, HQ_ERR_FORMAT, "needs indices");
    hq_tensor_t *ix = in[1];
    int64_t axis = onnxi_attr_int(n, "axis", 0);
    if (axis < 0)
        axis += a->ndim;
    if (axis < 0 || axis >= a->ndim || a->ndim - 1 + ix->ndim > HQ_TENSOR_MAX_DIMS)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "axis out of range");
    int64_t shape[HQ_TENSOR_MAX_DIMS];
    int nd = 0;
    for (int d = 0; d < axis; d++)
        shape[nd++] = a->shape[d];
    for (int d = 0; d < ix->ndim; d++)
        shape[nd++] = ix->shape[d];
    for (int d = (int)axis + 1; d < a->ndim; d++)
        shape[nd++] = a->shape[d];
    if ((st = onnxi_new_tensor(c, a->dtype, nd, shape, &t)) != HQ_OK)
        return st;
    int64_t outer = 1, inner = 1, dim = a->shape[axis], nix = hq_tensor_count(ix);
    for (int d = 0; d < axis; d++)
        outer *= a->shape[d];
    for (int d = (int)axis + 1; d < a->ndim; d++)
        inner *= a->shape[d];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < nix; j++) {
            int64_t k = onnxi_tensor_int_at(ix, j);
            if (k < 0)
                k += dim;
            if (k < 0 || k >= dim) {
                hq_tensor_destroy(t);
                NODE_FAIL(c, n, HQ_ERR_INVALID, "index out of range");
            }
            for (int64_t i = 0; i < inner; i++)
                onnxi_put_at(t, (o * nix + j) * inner + i,
                             onnxi_tensor_at(a, (o * dim + k) * inner + i));
        }
    return onnxi_set_const_output(c, n, 0, t);
}
