/* kernels_ref_tensor.c — reference rank-generic kernels: broadcast elementwise binary ops,
 * softmax, reductions and argmax. */
#include <math.h>
#include <stddef.h>

#include "emulate/kernels_ref.h"
#include "util/util.h"

static float ew_apply(hqi_ref_ew_op_t op, float a, float b)
{
    switch (op) {
    case HQI_REF_EW_ADD:
        return a + b;
    case HQI_REF_EW_SUB:
        return a - b;
    case HQI_REF_EW_MUL:
        return a * b;
    case HQI_REF_EW_DIV:
        return a / b;
    case HQI_REF_EW_MAX: /* NaN propagates, as numpy.maximum and the ONNX reference */
        return isnan(a) || isnan(b) ? NAN : (a > b ? a : b);
    case HQI_REF_EW_MIN:
        return isnan(a) || isnan(b) ? NAN : (a < b ? a : b);
    case HQI_REF_EW_COUNT:
        break;
    }
    return a;
}

/* Row-major strides of `shape`, with 0 on axes of extent 1 when `broadcast` is set. */
static void strides_of(const hq_shape_t *shape, bool broadcast, int64_t *strides)
{
    int64_t step = 1;
    for (int i = shape->ndim - 1; i >= 0; i--) {
        strides[i] = broadcast && shape->dims[i] == 1 ? 0 : step;
        step *= shape->dims[i];
    }
}

hq_status_t hqi_ref_elementwise(hqi_ref_ew_op_t op, const hq_shape_t *a_shape, const float *a,
                                const hq_shape_t *b_shape, const float *b,
                                const hqi_ref_act_t *act, const hq_shape_t *out_shape,
                                float *output, hq_error_t *err)
{
    static const char kernel[] = "elementwise";
    int64_t count_a, count_b, count;
    hq_status_t st;
    if ((st = hqi_ref_shape_count(a_shape, kernel, "a", &count_a, err)) ||
        (st = hqi_ref_shape_count(b_shape, kernel, "b", &count_b, err)) ||
        (st = hqi_ref_shape_count(out_shape, kernel, "output", &count, err)) ||
        (st = hqi_ref_need(a, kernel, "a", err)) || (st = hqi_ref_need(b, kernel, "b", err)) ||
        (st = hqi_ref_need(output, kernel, "output", err)))
        return st;
    if ((int)op < 0 || op >= HQI_REF_EW_COUNT)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: op: unknown operation %d", kernel, (int)op);
    const int rank = out_shape->ndim;
    if (a_shape->ndim != rank || b_shape->ndim != rank)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: shapes: ranks %d and %d differ from output %d",
                         kernel, a_shape->ndim, b_shape->ndim, rank);
    for (int i = 0; i < rank; i++) {
        const int64_t da = a_shape->dims[i], db = b_shape->dims[i], dout = out_shape->dims[i];
        const int64_t wanted = da > db ? da : db;
        if ((da != dout && da != 1) || (db != dout && db != 1) || dout != wanted)
            return hqi_error(err, HQ_ERR_ARGUMENT,
                             "%s: shapes: axis %d: %lld and %lld do not broadcast to %lld",
                             kernel, i, (long long)da, (long long)db, (long long)dout);
    }
    if ((st = hqi_ref_act_check(act, out_shape->dims[rank - 1], kernel, err)))
        return st;
    int64_t stride_a[HQ_TENSOR_MAX_DIMS], stride_b[HQ_TENSOR_MAX_DIMS];
    int64_t index[HQ_TENSOR_MAX_DIMS] = {0};
    strides_of(a_shape, true, stride_a);
    strides_of(b_shape, true, stride_b);
    int64_t offset_a = 0, offset_b = 0;
    const int64_t channels = out_shape->dims[rank - 1];
    for (int64_t flat = 0; flat < count; flat++) {
        output[flat] = hqi_ref_activate(act, ew_apply(op, a[offset_a], b[offset_b]),
                                        flat % channels);
        /* Odometer increment of the output index, moving both operand offsets along. */
        for (int i = rank - 1; i >= 0; i--) {
            index[i]++;
            offset_a += stride_a[i];
            offset_b += stride_b[i];
            if (index[i] < out_shape->dims[i])
                break;
            offset_a -= stride_a[i] * index[i];
            offset_b -= stride_b[i] * index[i];
            index[i] = 0;
        }
    }
    return HQ_OK;
}

/* Splits a shape around `axis` into outer x extent x inner. */
static hq_status_t axis_split(const char *kernel, const hq_shape_t *shape, int axis,
                              int64_t *outer, int64_t *extent, int64_t *inner, hq_error_t *err)
{
    int64_t count;
    hq_status_t st = hqi_ref_shape_count(shape, kernel, "input", &count, err);
    if (st)
        return st;
    if (axis < 0 || axis >= shape->ndim)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: axis: %d is out of range for rank %d",
                         kernel, axis, shape->ndim);
    *outer = *inner = 1;
    for (int i = 0; i < axis; i++)
        *outer *= shape->dims[i];
    for (int i = axis + 1; i < shape->ndim; i++)
        *inner *= shape->dims[i];
    *extent = shape->dims[axis];
    return HQ_OK;
}

hq_status_t hqi_ref_softmax(const hq_shape_t *shape, const float *input, int axis, float *output,
                            hq_error_t *err)
{
    static const char kernel[] = "softmax";
    int64_t outer, extent, inner;
    hq_status_t st;
    if ((st = axis_split(kernel, shape, axis, &outer, &extent, &inner, err)) ||
        (st = hqi_ref_need(input, kernel, "input", err)) ||
        (st = hqi_ref_need(output, kernel, "output", err)))
        return st;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *x = input + o * extent * inner + i;
            float *y = output + o * extent * inner + i;
            float max = -INFINITY;
            for (int64_t k = 0; k < extent; k++)
                if (x[k * inner] > max || isnan(x[k * inner]))
                    max = x[k * inner];
            if (isinf(max) && max < 0)
                max = 0.0f; /* all -inf: exp(-inf) = 0 everywhere, sum 0, result NaN as ONNX */
            double sum = 0.0;
            for (int64_t k = 0; k < extent; k++) {
                const double e = exp((double)x[k * inner] - (double)max);
                y[k * inner] = (float)e;
                sum += e;
            }
            for (int64_t k = 0; k < extent; k++)
                y[k * inner] = (float)((double)y[k * inner] / sum);
        }
    return HQ_OK;
}

static hq_status_t reduce(bool is_max, const hq_shape_t *shape, const float *input, int axis,
                          float *output, hq_error_t *err)
{
    const char *kernel = is_max ? "reduce_max" : "reduce_sum";
    int64_t outer, extent, inner;
    hq_status_t st;
    if ((st = axis_split(kernel, shape, axis, &outer, &extent, &inner, err)) ||
        (st = hqi_ref_need(input, kernel, "input", err)) ||
        (st = hqi_ref_need(output, kernel, "output", err)))
        return st;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *x = input + o * extent * inner + i;
            double acc = is_max ? -INFINITY : 0.0;
            for (int64_t k = 0; k < extent; k++) {
                const double v = x[k * inner];
                if (!is_max)
                    acc += v;
                else if (v > acc || isnan(v)) /* once NaN, stays NaN (as numpy/ONNX) */
                    acc = v;
            }
            output[o * inner + i] = (float)acc;
        }
    return HQ_OK;
}

hq_status_t hqi_ref_reduce_max(const hq_shape_t *shape, const float *input, int axis,
                               float *output, hq_error_t *err)
{
    return reduce(true, shape, input, axis, output, err);
}

hq_status_t hqi_ref_reduce_sum(const hq_shape_t *shape, const float *input, int axis,
                               float *output, hq_error_t *err)
{
    return reduce(false, shape, input, axis, output, err);
}

hq_status_t hqi_ref_argmax(const hq_shape_t *shape, const float *input, float *output,
                           hq_error_t *err)
{
    static const char kernel[] = "argmax";
    int64_t outer, extent, inner;
    hq_status_t st;
    if ((st = hqi_ref_need(shape, kernel, "shape", err)) ||
        (st = axis_split(kernel, shape, shape->ndim - 1, &outer, &extent, &inner, err)) ||
        (st = hqi_ref_need(input, kernel, "input", err)) ||
        (st = hqi_ref_need(output, kernel, "output", err)))
        return st;
    for (int64_t o = 0; o < outer; o++) {
        const float *x = input + o * extent;
        int64_t best = -1;
        for (int64_t k = 0; k < extent; k++)
            if (!isnan(x[k]) && (best < 0 || x[k] > x[best]))
                best = k;
        output[o] = (float)(best < 0 ? 0 : best);
    }
    return HQ_OK;
}
