/* tensor.c — dense n-d arrays: creation, copies and dtype conversion. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hq/tensor.h"
#include "util/util.h"

/* Per-dtype properties, indexed by hq_dtype_t. */
static const struct {
    const char *name;
    size_t size;
} dtype_table[HQ_DTYPE_COUNT] = {
    [HQ_DTYPE_FLOAT32] = {"float32", 4}, [HQ_DTYPE_FLOAT64] = {"float64", 8},
    [HQ_DTYPE_FLOAT16] = {"float16", 2}, [HQ_DTYPE_UINT8] = {"uint8", 1},
    [HQ_DTYPE_INT8] = {"int8", 1},       [HQ_DTYPE_UINT16] = {"uint16", 2},
    [HQ_DTYPE_INT16] = {"int16", 2},     [HQ_DTYPE_INT32] = {"int32", 4},
    [HQ_DTYPE_INT64] = {"int64", 8},     [HQ_DTYPE_BOOL] = {"bool", 1},
};

static bool dtype_valid(hq_dtype_t dtype)
{
    return (int)dtype >= 0 && dtype < HQ_DTYPE_COUNT;
}

HQ_API size_t hq_dtype_size(hq_dtype_t dtype)
{
    return dtype_valid(dtype) ? dtype_table[dtype].size : 0;
}

HQ_API const char *hq_dtype_name(hq_dtype_t dtype)
{
    return dtype_valid(dtype) ? dtype_table[dtype].name : "invalid";
}

HQ_API hq_status_t hq_tensor_create(hq_dtype_t dtype, int ndim, const int64_t *shape,
                                    hq_tensor_t **out, hq_error_t *err)
{
    *out = NULL;
    if (!dtype_valid(dtype))
        return hqi_error(err, HQ_ERR_ARGUMENT, "tensor: invalid dtype %d", (int)dtype);
    if (ndim < 0 || ndim > HQ_TENSOR_MAX_DIMS)
        return hqi_error(err, HQ_ERR_ARGUMENT, "tensor: %d dimensions, expected 0..%d", ndim,
                         HQ_TENSOR_MAX_DIMS);
    if (ndim > 0 && !shape)
        return hqi_error(err, HQ_ERR_ARGUMENT, "tensor: shape is NULL");
    size_t nbytes = dtype_table[dtype].size;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return hqi_error(err, HQ_ERR_ARGUMENT, "tensor: dimension %d is negative (%lld)", i,
                             (long long)shape[i]);
        if ((uint64_t)shape[i] > SIZE_MAX || !hqi_mul_size(nbytes, (size_t)shape[i], &nbytes) ||
            nbytes > (size_t)INT64_MAX)
            return hqi_error(err, HQ_ERR_LIMIT, "tensor: shape overflows the address space");
    }
    hq_tensor_t *t = calloc(1, sizeof *t);
    if (!t)
        return hqi_nomem(err, "tensor");
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->nbytes = nbytes;
    if (nbytes > 0) {
        t->data = calloc(1, nbytes);
        if (!t->data) {
            free(t);
            return hqi_nomem(err, "tensor");
        }
    }
    *out = t;
    return HQ_OK;
}

HQ_API hq_status_t hq_tensor_clone(const hq_tensor_t *src, hq_tensor_t **out, hq_error_t *err)
{
    *out = NULL;
    if (!src)
        return hqi_error(err, HQ_ERR_ARGUMENT, "tensor: source is NULL");
    hq_status_t st = hq_tensor_create(src->dtype, src->ndim, src->shape, out, err);
    if (st != HQ_OK)
        return st;
    if ((*out)->nbytes != src->nbytes) {
        hq_tensor_destroy(*out);
        *out = NULL;
        return hqi_error(err, HQ_ERR_ARGUMENT, "tensor: nbytes %zu does not match the shape",
                         src->nbytes);
    }
    if (src->nbytes)
        memcpy((*out)->data, src->data, src->nbytes);
    return HQ_OK;
}

HQ_API void hq_tensor_destroy(hq_tensor_t *tensor)
{
    if (!tensor)
        return;
    free(tensor->data);
    free(tensor);
}

HQ_API int64_t hq_tensor_count(const hq_tensor_t *tensor)
{
    if (!tensor)
        return 0;
    int64_t count = 1;
    for (int i = 0; i < tensor->ndim && i < HQ_TENSOR_MAX_DIMS; i++) {
        if (__builtin_mul_overflow(count, tensor->shape[i], &count))
            return -1; /* only for hand-made tensors with an impossible shape */
    }
    return count;
}

/* ---- conversion ------------------------------------------------------------------------ */

/* One element, loaded either as an exact integer or as a double (float sources). */
typedef struct {
    bool is_float;
    int64_t i;
    double f;
} scalar_t;

static scalar_t load(hq_dtype_t dtype, const uint8_t *p)
{
    scalar_t s = {false, 0, 0.0};
    switch (dtype) {
    case HQ_DTYPE_FLOAT32: { float v; memcpy(&v, p, 4); s.is_float = true; s.f = v; break; }
    case HQ_DTYPE_FLOAT64: { double v; memcpy(&v, p, 8); s.is_float = true; s.f = v; break; }
    case HQ_DTYPE_FLOAT16: {
        uint16_t v; memcpy(&v, p, 2); s.is_float = true; s.f = hqi_half_to_float(v); break;
    }
    case HQ_DTYPE_UINT8: s.i = p[0]; break;
    case HQ_DTYPE_INT8: s.i = (int8_t)p[0]; break;
    case HQ_DTYPE_UINT16: { uint16_t v; memcpy(&v, p, 2); s.i = v; break; }
    case HQ_DTYPE_INT16: { int16_t v; memcpy(&v, p, 2); s.i = v; break; }
    case HQ_DTYPE_INT32: { int32_t v; memcpy(&v, p, 4); s.i = v; break; }
    case HQ_DTYPE_INT64: { int64_t v; memcpy(&v, p, 8); s.i = v; break; }
    case HQ_DTYPE_BOOL: s.i = p[0] != 0; break;
    default: break;
    }
    return s;
}

/* Float to integer, truncating toward zero. C leaves out-of-range conversions undefined, so
 * values outside [lo, hi] saturate and NaN becomes 0 (numpy's result there is unspecified). */
static int64_t float_to_int(double f, double lo, double hi)
{
    if (isnan(f))
        return 0;
    if (f <= lo)
        return (int64_t)lo;
    if (f >= hi)
        return (int64_t)hi;
    return (int64_t)f;
}

static void store(hq_dtype_t dtype, uint8_t *p, scalar_t s)
{
    /* Integer sources wrap like numpy's astype; float sources truncate (and saturate). */
#define TO_INT(lo, hi) (s.is_float ? float_to_int(s.f, (lo), (hi)) : s.i)
    switch (dtype) {
    case HQ_DTYPE_FLOAT32: {
        float v = s.is_float ? (float)s.f : (float)s.i; memcpy(p, &v, 4); break;
    }
    case HQ_DTYPE_FLOAT64: {
        double v = s.is_float ? s.f : (double)s.i; memcpy(p, &v, 8); break;
    }
    case HQ_DTYPE_FLOAT16: {
        uint16_t v = hqi_float_to_half(s.is_float ? (float)s.f : (float)s.i); memcpy(p, &v, 2);
        break;
    }
    case HQ_DTYPE_UINT8: p[0] = (uint8_t)(uint64_t)TO_INT(0, 255); break;
    case HQ_DTYPE_INT8: p[0] = (uint8_t)(uint64_t)TO_INT(-128, 127); break;
    case HQ_DTYPE_UINT16: {
        uint16_t v = (uint16_t)(uint64_t)TO_INT(0, 65535); memcpy(p, &v, 2); break;
    }
    case HQ_DTYPE_INT16: {
        uint16_t v = (uint16_t)(uint64_t)TO_INT(-32768, 32767); memcpy(p, &v, 2); break;
    }
    case HQ_DTYPE_INT32: {
        uint32_t v = (uint32_t)(uint64_t)TO_INT(-2147483648.0, 2147483647.0); memcpy(p, &v, 4);
        break;
    }
    case HQ_DTYPE_INT64: {
        /* 2^63 is the first double above INT64_MAX; -2^63 is exactly INT64_MIN. */
        int64_t v;
        if (!s.is_float)
            v = s.i;
        else if (isnan(s.f))
            v = 0;
        else if (s.f >= 9223372036854775808.0)
            v = INT64_MAX;
        else if (s.f <= -9223372036854775808.0)
            v = INT64_MIN;
        else
            v = (int64_t)s.f;
        memcpy(p, &v, 8);
        break;
    }
    case HQ_DTYPE_BOOL: p[0] = s.is_float ? s.f != 0.0 : s.i != 0; break;
    default: break;
    }
#undef TO_INT
}

HQ_API hq_status_t hq_tensor_convert(const hq_tensor_t *src, hq_dtype_t dtype, hq_tensor_t **out,
                                     hq_error_t *err)
{
    *out = NULL;
    if (!src || !dtype_valid(src->dtype))
        return hqi_error(err, HQ_ERR_ARGUMENT, "tensor: invalid source tensor");
    if (!dtype_valid(dtype))
        return hqi_error(err, HQ_ERR_ARGUMENT, "tensor: invalid target dtype %d", (int)dtype);
    hq_tensor_t *t;
    hq_status_t st = hq_tensor_create(dtype, src->ndim, src->shape, &t, err);
    if (st != HQ_OK)
        return st;
    size_t count = t->nbytes / dtype_table[dtype].size;
    size_t in_size = dtype_table[src->dtype].size;
    if (src->nbytes != count * in_size) {
        hq_tensor_destroy(t);
        return hqi_error(err, HQ_ERR_ARGUMENT, "tensor: nbytes %zu does not match the shape",
                         src->nbytes);
    }
    if (dtype == src->dtype) {
        if (count)
            memcpy(t->data, src->data, src->nbytes);
    } else {
        const uint8_t *in = src->data;
        uint8_t *o = t->data;
        size_t out_size = dtype_table[dtype].size;
        for (size_t i = 0; i < count; i++)
            store(dtype, o + i * out_size, load(src->dtype, in + i * in_size));
    }
    *out = t;
    return HQ_OK;
}
