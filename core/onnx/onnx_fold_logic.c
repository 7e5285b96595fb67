/* onnx_fold_logic.c — constant folding of the elementwise ops with ONNX multidirectional
 * broadcasting (arithmetic, comparisons, logic, Where, Min/Max, Mod, Pow), of the generators
 * (Range, Expand, Tile, Split) and of the reductions. Exporters emit these on shapes and index
 * tables (torch's dynamic-axis exports, tf2onnx's padding and slicing arithmetic); on constants
 * they are computed here, never converted.
 *
 * Types: every tensor the importer holds is float32 or int64 (bool is int64 0 / 1). An op whose
 * inputs are all int64 computes in int64 (exact up to 2^53, far beyond any shape); a comparison
 * or logic op gives a bool (int64) tensor; Where gives the type of its value inputs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_internal.h"

/* Constant input i of n, past the fourth read from the value table; NULL when absent. */
static hq_tensor_t *input_at(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                             size_t i)
{
    if (i < 4)
        return in[i];
    if (i >= n->n_input || !n->input[i][0])
        return NULL;
    onnxi_value_t *v = onnxi_value_of(c, n->input[i]);
    return v && v->kind == VALUE_CONST ? v->constant : NULL;
}

/* Output shape of broadcasting `count` shapes together (numpy rules); *nd gets its rank. */
static hq_status_t broadcast_shape(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                   const hq_tensor_t *const *t, int count, int64_t *shape, int *nd)
{
    *nd = 0;
    for (int k = 0; k < count; k++)
        if (t[k]->ndim > *nd)
            *nd = t[k]->ndim;
    for (int d = 0; d < *nd; d++) {
        shape[d] = 1;
        for (int k = 0; k < count; k++) {
            int dk = d - (*nd - t[k]->ndim);
            int64_t e = dk >= 0 ? t[k]->shape[dk] : 1;
            if (e != 1 && shape[d] != 1 && e != shape[d])
                NODE_FAIL(c, n, HQ_ERR_INVALID,
                          "inputs do not broadcast (dimension %d is %lld in one, %lld in another)",
                          d, (long long)shape[d], (long long)e);
            if (e != 1)
                shape[d] = e;
        }
    }
    return HQ_OK;
}

hq_status_t onnxi_fold_elementwise(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                   const hq_tensor_t *const *t, int count, hq_dtype_t dtype,
                                   onnxi_elementwise_fn fn, size_t output)
{
    int64_t shape[HQ_TENSOR_MAX_DIMS], strides[ONNXI_MAX_ELEMENTWISE][HQ_TENSOR_MAX_DIMS];
    int nd;
    hq_status_t st;
    if (count > ONNXI_MAX_ELEMENTWISE)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "%d inputs (hq folds at most %d)", count,
                  ONNXI_MAX_ELEMENTWISE);
    if ((st = broadcast_shape(c, n, t, count, shape, &nd)) != HQ_OK)
        return st;
    bool integer = true;
    for (int k = 0; k < count; k++) {
        int64_t own[HQ_TENSOR_MAX_DIMS];
        onnxi_strides_of(t[k], own);
        for (int d = 0; d < nd; d++) {
            int dk = d - (nd - t[k]->ndim);
            strides[k][d] = dk >= 0 && t[k]->shape[dk] != 1 ? own[dk] : 0;
        }
        integer &= t[k]->dtype == HQ_DTYPE_INT64;
    }
    hq_tensor_t *out;
    if ((st = onnxi_new_tensor(c, dtype, nd, shape, &out)) != HQ_OK)
        return st;
    int64_t total = hq_tensor_count(out), idx[HQ_TENSOR_MAX_DIMS] = {0};
    for (int64_t i = 0; i < total; i++) {
        double x[ONNXI_MAX_ELEMENTWISE];
        for (int k = 0; k < count; k++) {
            int64_t off = 0;
            for (int d = 0; d < nd; d++)
                off += idx[d] * strides[k][d];
            x[k] = t[k]->data ? onnxi_tensor_at(t[k], off) : 0.0;
        }
        onnxi_put_at(out, i, fn(x, count, integer));
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < shape[d])
                break;
            idx[d] = 0;
        }
    }
    return onnxi_set_const_output(c, n, output, out);
}

/* ---- comparisons, logic, selection ----------------------------------------------------------- */

static double equal(const double *x, int count, bool integer)
{
    return x[0] == x[1];
}

static double less(const double *x, int count, bool integer)
{
    return x[0] < x[1];
}

static double less_or_equal(const double *x, int count, bool integer)
{
    return x[0] <= x[1];
}

static double greater(const double *x, int count, bool integer)
{
    return x[0] > x[1];
}

static double greater_or_equal(const double *x, int count, bool integer)
{
    return x[0] >= x[1];
}

static double logical_and(const double *x, int count, bool integer)
{
    return x[0] != 0 && x[1] != 0;
}

static double logical_or(const double *x, int count, bool integer)
{
    return x[0] != 0 || x[1] != 0;
}

static double logical_xor(const double *x, int count, bool integer)
{
    return (x[0] != 0) != (x[1] != 0);
}

static double logical_not(const double *x, int count, bool integer)
{
    return x[0] == 0;
}

static double select(const double *x, int count, bool integer)
{
    return x[0] != 0 ? x[1] : x[2];
}

static double minimum(const double *x, int count, bool integer)
{
    double m = x[0];
    for (int k = 1; k < count; k++)
        m = x[k] < m || x[k] != x[k] ? x[k] : m; /* NaN propagates */
    return m;
}

static double maximum(const double *x, int count, bool integer)
{
    double m = x[0];
    for (int k = 1; k < count; k++)
        m = x[k] > m || x[k] != x[k] ? x[k] : m;
    return m;
}

static double sum(const double *x, int count, bool integer)
{
    double s = 0;
    for (int k = 0; k < count; k++)
        s += x[k];
    return s;
}

static double mean(const double *x, int count, bool integer)
{
    return sum(x, count, integer) / count;
}

/* Mod with fmod = 0: the sign of the divisor (Python's %); integer x % 0 is 0. */
static double modulo(const double *x, int count, bool integer)
{
    if (x[1] == 0)
        return integer ? 0 : NAN;
    double r = fmod(x[0], x[1]);
    return r != 0 && (r < 0) != (x[1] < 0) ? r + x[1] : r;
}

/* Mod with fmod = 1: the sign of the dividend (C's fmod). */
static double modulo_fmod(const double *x, int count, bool integer)
{
    if (x[1] == 0)
        return integer ? 0 : NAN;
    return fmod(x[0], x[1]);
}

static double power(const double *x, int count, bool integer)
{
    return pow(x[0], x[1]);
}

/* Folds the two-input op `fn` giving a bool (int64) tensor. */
static hq_status_t fold_predicate(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                  hq_tensor_t *const in[4], onnxi_elementwise_fn fn)
{
    if (!in[1])
        NODE_FAIL(c, n, HQ_ERR_FORMAT, "needs two inputs");
    const hq_tensor_t *t[2] = {in[0], in[1]};
    return onnxi_fold_elementwise(c, n, t, 2, HQ_DTYPE_INT64, fn, 0);
}

hq_status_t onnxi_fold_equal(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                             bool *folded)
{
    return fold_predicate(c, n, in, equal);
}

hq_status_t onnxi_fold_less(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                            bool *folded)
{
    return fold_predicate(c, n, in, less);
}

hq_status_t onnxi_fold_less_or_equal(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                     hq_tensor_t *const in[4], bool *folded)
{
    return fold_predicate(c, n, in, less_or_equal);
}

hq_status_t onnxi_fold_greater(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                               bool *folded)
{
    return fold_predicate(c, n, in, greater);
}

hq_status_t onnxi_fold_greater_or_equal(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                        hq_tensor_t *const in[4], bool *folded)
{
    return fold_predicate(c, n, in, greater_or_equal);
}

hq_status_t onnxi_fold_and(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded)
{
    return fold_predicate(c, n, in, logical_and);
}

hq_status_t onnxi_fold_or(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                          bool *folded)
{
    return fold_predicate(c, n, in, logical_or);
}

hq_status_t onnxi_fold_xor(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded)
{
    return fold_predicate(c, n, in, logical_xor);
}

hq_status_t onnxi_fold_not(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded)
{
    const hq_tensor_t *t[1] = {in[0]};
    return onnxi_fold_elementwise(c, n, t, 1, HQ_DTYPE_INT64, logical_not, 0);
}

hq_status_t onnxi_fold_where(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                             bool *folded)
{
    if (!in[1] || !in[2])
        NODE_FAIL(c, n, HQ_ERR_FORMAT, "needs a condition and two value inputs");
    const hq_tensor_t *t[3] = {in[0], in[1], in[2]};
    hq_dtype_t dtype = in[1]->dtype == HQ_DTYPE_INT64 && in[2]->dtype == HQ_DTYPE_INT64
                           ? HQ_DTYPE_INT64
                           : HQ_DTYPE_FLOAT32;
    return onnxi_fold_elementwise(c, n, t, 3, dtype, select, 0);
}

/* Variadic Min, Max, Sum, Mean: int64 when every input is. */
static hq_status_t fold_variadic(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                                 onnxi_elementwise_fn fn, bool mean_op)
{
    const hq_tensor_t *t[ONNXI_MAX_ELEMENTWISE];
    int count = 0;
    bool integer = true;
    for (size_t i = 0; i < n->n_input; i++) {
        hq_tensor_t *x = input_at(c, n, in, i);
        if (!x)
            continue;
        if (count == ONNXI_MAX_ELEMENTWISE)
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "more than %d inputs", ONNXI_MAX_ELEMENTWISE);
        t[count++] = x;
        integer &= x->dtype == HQ_DTYPE_INT64;
    }
    return onnxi_fold_elementwise(c, n, t, count,
                                  integer && !mean_op ? HQ_DTYPE_INT64 : HQ_DTYPE_FLOAT32, fn, 0);
}

hq_status_t onnxi_fold_min(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded)
{
    return fold_variadic(c, n, in, minimum, false);
}

hq_status_t onnxi_fold_max(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded)
{
    return fold_variadic(c, n, in, maximum, false);
}

hq_status_t onnxi_fold_sum(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded)
{
    return fold_variadic(c, n, in, sum, false);
}

hq_status_t onnxi_fold_mean(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                            bool *folded)
{
    return fold_variadic(c, n, in, mean, true);
}

hq_status_t onnxi_fold_mod(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded)
{
    if (!in[1])
        NODE_FAIL(c, n, HQ_ERR_FORMAT, "needs two inputs");
    const hq_tensor_t *t[2] = {in[0], in[1]};
    bool integer = in[0]->dtype == HQ_DTYPE_INT64 && in[1]->dtype == HQ_DTYPE_INT64;
    bool c_fmod = onnxi_attr_int(n, "fmod", 0) != 0;
    if (!integer && !c_fmod)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "fmod must be 1 for floating-point inputs");
    return onnxi_fold_elementwise(c, n, t, 2, integer ? HQ_DTYPE_INT64 : HQ_DTYPE_FLOAT32,
                                  c_fmod ? modulo_fmod : modulo, 0);
}

/* Pow: the result has the type of the base. */
hq_status_t onnxi_fold_pow(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded)
{
    if (!in[1])
        NODE_FAIL(c, n, HQ_ERR_FORMAT, "needs two inputs");
    const hq_tensor_t *t[2] = {in[0], in[1]};
    return onnxi_fold_elementwise(c, n, t, 2, in[0]->dtype, power, 0);
}

/* ---- generators ---------------------------------------------------------------------------- */

static hq_status_t scalar_of(onnxi_ctx_t *c, const Onnx__NodeProto *n, const hq_tensor_t *t,
                             const char *what, double *out)
{
    if (!t || hq_tensor_count(t) != 1)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "%s must be a scalar", what);
    *out = onnxi_tensor_at(t, 0);
    return HQ_OK;
}

hq_status_t onnxi_fold_range(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                             bool *folded)
{
    double start = 0, limit = 0, delta = 0;
    hq_status_t st;
    if ((st = scalar_of(c, n, in[0], "start", &start)) != HQ_OK ||
        (st = scalar_of(c, n, in[1], "limit", &limit)) != HQ_OK ||
        (st = scalar_of(c, n, in[2], "delta", &delta)) != HQ_OK)
        return st;
    if (delta == 0 || !isfinite(start) || !isfinite(limit) || !isfinite(delta))
        NODE_FAIL(c, n, HQ_ERR_INVALID, "range %g to %g by %g", start, limit, delta);
    double steps = ceil((limit - start) / delta);
    if (steps > (double)MAX_CONST_ELEMENTS)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "range of %.0f elements", steps);
    int64_t count = steps > 0 ? (int64_t)steps : 0;
    hq_tensor_t *t;
    if ((st = onnxi_new_tensor(c, in[0]->dtype, 1, &count, &t)) != HQ_OK)
        return st;
    for (int64_t i = 0; i < count; i++)
        onnxi_put_at(t, i, start + (double)i * delta);
    return onnxi_set_const_output(c, n, 0, t);
}

static double first(const double *x, int count, bool integer)
{
    return x[0];
}

/* Expand: the input broadcast against the shape input (either side may have the 1s). */
hq_status_t onnxi_fold_expand(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                              bool *folded)
{
    if (!in[1])
        NODE_FAIL(c, n, HQ_ERR_FORMAT, "needs a shape");
    hq_tensor_t target = {.dtype = HQ_DTYPE_FLOAT32}; /* a shape only: no data is read */
    int nd;
    hq_status_t st = onnxi_ints_of(c, n, in[1], target.shape, HQ_TENSOR_MAX_DIMS, &nd);
    if (st != HQ_OK)
        return st;
    target.ndim = nd;
    for (int d = 0; d < nd; d++)
        if (target.shape[d] < 0)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "shape entry %lld", (long long)target.shape[d]);
    const hq_tensor_t *t[2] = {in[0], &target};
    return onnxi_fold_elementwise(c, n, t, 2, in[0]->dtype, first, 0);
}

hq_status_t onnxi_fold_tile(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                            bool *folded)
{
    hq_tensor_t *a = in[0], *t;
    int64_t repeats[HQ_TENSOR_MAX_DIMS], shape[HQ_TENSOR_MAX_DIMS], strides[HQ_TENSOR_MAX_DIMS];
    int k;
    hq_status_t st;
    if (!in[1])
        NODE_FAIL(c, n, HQ_ERR_FORMAT, "needs repeats");
    if ((st = onnxi_ints_of(c, n, in[1], repeats, HQ_TENSOR_MAX_DIMS, &k)) != HQ_OK)
        return st;
    if (k != a->ndim)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "%d repeats for a rank-%d input", k, a->ndim);
    for (int d = 0; d < k; d++) {
        if (repeats[d] < 0 || repeats[d] > MAX_CONST_ELEMENTS)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "repeat %lld", (long long)repeats[d]);
        shape[d] = a->shape[d] * repeats[d];
    }
    if ((st = onnxi_new_tensor(c, a->dtype, a->ndim, shape, &t)) != HQ_OK)
        return st;
    onnxi_strides_of(a, strides);
    int64_t idx[HQ_TENSOR_MAX_DIMS] = {0}, total = hq_tensor_count(t);
    for (int64_t i = 0; i < total; i++) {
        int64_t off = 0;
        for (int d = 0; d < a->ndim; d++)
            off += (idx[d] % a->shape[d]) * strides[d];
        onnxi_put_at(t, i, onnxi_tensor_at(a, off));
        for (int d = a->ndim - 1; d >= 0; d--) {
            if (++idx[d] < shape[d])
                break;
            idx[d] = 0;
        }
    }
    return onnxi_set_const_output(c, n, 0, t);
}

hq_status_t onnxi_split_sizes(onnxi_ctx_t *c, const Onnx__NodeProto *n, int64_t extent,
                              int64_t *sizes, int max, int *count)
{
    int k;
    const int64_t *attr = onnxi_attr_ints(n, "split", &k);
    hq_tensor_t *t = NULL;
    hq_status_t st;
    if (k < 0 && n->n_input > 1 && (st = onnxi_const_input(c, n, 1, false, &t)) != HQ_OK)
        return st;
    if (k >= 0 || t) {
        if (t && (st = onnxi_ints_of(c, n, t, sizes, max, &k)) != HQ_OK)
            return st;
        if (!t) {
            if (k > max)
                NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "%d parts (at most %d)", k, max);
            memcpy(sizes, attr, (size_t)k * sizeof *sizes);
        }
        if (k != (int)n->n_output)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "%d split sizes for %zu outputs", k, n->n_output);
        int64_t total = 0;
        for (int i = 0; i < k; i++) {
            if (sizes[i] < 0 || sizes[i] > extent)
                NODE_FAIL(c, n, HQ_ERR_INVALID, "split size %lld", (long long)sizes[i]);
            total += sizes[i];
        }
        if (total != extent)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "split sizes add up to %lld, the axis has %lld",
                      (long long)total, (long long)extent);
        *count = k;
        return HQ_OK;
    }
    /* equal parts; with num_outputs (opset 18) the last part may be smaller */
    int64_t parts = onnxi_attr_int(n, "num_outputs", (int64_t)n->n_output);
    if (parts != (int64_t)n->n_output || parts < 1 || parts > max)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "%lld parts for %zu outputs", (long long)parts,
                  n->n_output);
    bool ragged = onnxi_find_attr(n, "num_outputs") != NULL;
    if (!ragged && extent % parts)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "an axis of %lld does not split into %lld equal parts",
                  (long long)extent, (long long)parts);
    int64_t each = (extent + parts - 1) / parts;
    for (int64_t i = 0; i < parts; i++) {
        int64_t left = extent - i * each;
        sizes[i] = left < 0 ? 0 : left < each ? left : each;
    }
    *count = (int)parts;
    return HQ_OK;
}

hq_status_t onnxi_fold_split(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                             bool *folded)
{
    hq_tensor_t *a = in[0];
    int64_t axis = onnxi_attr_int(n, "axis", 0);
    if (axis < 0)
        axis += a->ndim;
    if (axis < 0 || axis >= a->ndim)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "axis out of range");
    int64_t sizes[64];
    int count;
    hq_status_t st = onnxi_split_sizes(c, n, a->shape[axis], sizes, 64, &count);
    if (st != HQ_OK)
        return st;
    int64_t outer = 1, inner = 1, pos = 0;
    for (int d = 0; d < axis; d++)
        outer *= a->shape[d];
    for (int d = (int)axis + 1; d < a->ndim; d++)
        inner *= a->shape[d];
    for (int k = 0; k < count; k++) {
        int64_t shape[HQ_TENSOR_MAX_DIMS];
        memcpy(shape, a->shape, sizeof shape);
        shape[axis] = sizes[k];
        hq_tensor_t *t;
        if ((st = onnxi_new_tensor(c, a->dtype, a->ndim, shape, &t)) != HQ_OK)
            return st;
        for (int64_t o = 0; o < outer; o++)
            for (int64_t j = 0; j < sizes[k] * inner; j++)
                onnxi_put_at(t, o * sizes[k] * inner + j,
                             onnxi_tensor_at(a, (o * a->shape[axis] + pos) * inner + j));
        pos += sizes[k];
        if (n->output[k][0] && (st = onnxi_set_const_output(c, n, (size_t)k, t)) != HQ_OK)
            return st;
        if (!n->output[k][0])
            hq_tensor_destroy(t);
    }
    return HQ_OK;
}

/* ---- reductions ---------------------------------------------------------------------------- */

enum { REDUCE_SUM, REDUCE_PROD, REDUCE_MEAN, REDUCE_MAX, REDUCE_MIN };

static hq_status_t fold_reduce(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                               int kind)
{
    hq_tensor_t *a = in[0], *t;
    int64_t axes[HQ_TENSOR_MAX_DIMS];
    int k;
    hq_status_t st = onnxi_axes_of(c, n, a->ndim, axes, &k);
    if (st != HQ_OK)
        return st;
    bool reduced[HQ_TENSOR_MAX_DIMS] = {0};
    for (int i = 0; i < k; i++)
        reduced[axes[i]] = true;
    if (k == 0 && !onnxi_attr_int(n, "noop_with_empty_axes", 0))
        for (int d = 0; d < a->ndim; d++)
            reduced[d] = true;
    bool keep = onnxi_attr_int(n, "keepdims", 1) != 0;
    int64_t shape[HQ_TENSOR_MAX_DIMS], kept[HQ_TENSOR_MAX_DIMS];
    int nd = 0;
    for (int d = 0; d < a->ndim; d++) {
        kept[d] = reduced[d] ? 1 : a->shape[d];
        if (keep || !reduced[d])
            shape[nd++] = kept[d];
    }
    hq_dtype_t dtype = kind == REDUCE_MEAN ? HQ_DTYPE_FLOAT32 : a->dtype;
    if ((st = onnxi_new_tensor(c, dtype, nd, shape, &t)) != HQ_OK)
        return st;
    int64_t total = hq_tensor_count(t), count = hq_tensor_count(a);
    double *acc = calloc((size_t)(total ? total : 1), sizeof *acc);
    int64_t *seen = calloc((size_t)(total ? total : 1), sizeof *seen);
    if (!acc || !seen) {
        free(acc), free(seen), hq_tensor_destroy(t);
        return hqi_nomem(c->err, c->name);
    }
    int64_t idx[HQ_TENSOR_MAX_DIMS] = {0};
    for (int64_t i = 0; i < count; i++) {
        int64_t o = 0;
        for (int d = 0; d < a->ndim; d++)
            o = o * kept[d] + (reduced[d] ? 0 : idx[d]);
        double x = onnxi_tensor_at(a, i);
        if (!seen[o]++)
            acc[o] = x;
        else if (kind == REDUCE_PROD)
            acc[o] *= x;
        else if (kind == REDUCE_MAX)
            acc[o] = x > acc[o] ? x : acc[o];
        else if (kind == REDUCE_MIN)
            acc[o] = x < acc[o] ? x : acc[o];
        else
            acc[o] += x;
        for (int d = a->ndim - 1; d >= 0; d--) {
            if (++idx[d] < a->shape[d])
                break;
            idx[d] = 0;
        }
    }
    for (int64_t o = 0; o < total; o++) {
        double v = acc[o];
        if (!seen[o]) /* an empty reduction: the identity of the op */
            v = kind == REDUCE_PROD  ? 1
                : kind == REDUCE_MAX ? -INFINITY
                : kind == REDUCE_MIN ? INFINITY
                                     : 0;
        else if (kind == REDUCE_MEAN)
            v /= (double)seen[o];
        onnxi_put_at(t, o, v);
    }
    free(acc), free(seen);
    return onnxi_set_const_output(c, n, 0, t);
}

hq_status_t onnxi_fold_reduce_sum(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                  hq_tensor_t *const in[4], bool *folded)
{
    return fold_reduce(c, n, in, REDUCE_SUM);
}

hq_status_t onnxi_fold_reduce_prod(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                   hq_tensor_t *const in[4], bool *folded)
{
    return fold_reduce(c, n, in, REDUCE_PROD);
}

hq_status_t onnxi_fold_reduce_mean(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                   hq_tensor_t *const in[4], bool *folded)
{
    return fold_reduce(c, n, in, REDUCE_MEAN);
}

hq_status_t onnxi_fold_reduce_max(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                  hq_tensor_t *const in[4], bool *folded)
{
    return fold_reduce(c, n, in, REDUCE_MAX);
}

hq_status_t onnxi_fold_reduce_min(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                  hq_tensor_t *const in[4], bool *folded)
{
    return fold_reduce(c, n, in, REDUCE_MIN);
}
