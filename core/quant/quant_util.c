/* quant_util.c — what every piece of the optimizer shares: the progress logger and reading and
 * writing "<layer>/<suffix>" tensors of a params set. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "quant/quant_util.h"
#include "util/util.h"

void hqi_logf(const hqi_logger_t *logger, hq_log_level_t level, const char *fmt, ...)
{
    if (!logger || !logger->fn)
        return;
    char message[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    logger->fn(logger->user, level, message);
}

const hq_tensor_t *hqi_param(const hq_npz_t *params, const hq_layer_t *layer, const char *suffix)
{
    char key[768];
    snprintf(key, sizeof key, "%s/%s", layer->name, suffix);
    return hq_npz_get(params, key);
}

hq_status_t hqi_param_f32(hq_npz_t *params, const hq_layer_t *layer, const char *suffix,
                          hq_tensor_t **out, hq_error_t *err)
{
    char key[768];
    snprintf(key, sizeof key, "%s/%s", layer->name, suffix);
    const hq_tensor_t *t = hq_npz_get(params, key);
    if (!t)
        return hqi_error(err, HQ_ERR_NOT_FOUND, "params: no '%s'", key);
    if (t->dtype != HQ_DTYPE_FLOAT32) {
        hq_tensor_t *c = NULL;
        hq_status_t st = hq_tensor_convert(t, HQ_DTYPE_FLOAT32, &c, err);
        if (st == HQ_OK)
            st = hq_npz_put(params, key, c, err);
        if (st != HQ_OK)
            return st;
        t = hq_npz_get(params, key);
    }
    /* the set owns the tensor; callers change its values in place */
    *out = (hq_tensor_t *)t;
    return HQ_OK;
}

static hq_status_t put_vector(hq_npz_t *npz, const char *prefix, const char *suffix,
                              hq_dtype_t dtype, const void *v, int64_t n, hq_error_t *err)
{
    hq_tensor_t *t = NULL;
    hq_status_t st = hq_tensor_create(dtype, 1, &n, &t, err);
    if (st != HQ_OK)
        return st;
    if (n)
        memcpy(t->data, v, (size_t)n * hq_dtype_size(dtype));
    char key[768];
    snprintf(key, sizeof key, "%s/%s", prefix, suffix);
    return hq_npz_put(npz, key, t, err);
}

hq_status_t hqi_put_f32(hq_npz_t *npz, const char *prefix, const char *suffix, const float *v,
                        int64_t n, hq_error_t *err)
{
    return put_vector(npz, prefix, suffix, HQ_DTYPE_FLOAT32, v, n, err);
}

hq_status_t hqi_put_i32(hq_npz_t *npz, const char *prefix, const char *suffix, const int32_t *v,
                        int64_t n, hq_error_t *err)
{
    return put_vector(npz, prefix, suffix, HQ_DTYPE_INT32, v, n, err);
}

hq_status_t hqi_put_i64(hq_npz_t *npz, const char *prefix, const char *suffix, const int64_t *v,
                        int64_t n, hq_error_t *err)
{
    return put_vector(npz, prefix, suffix, HQ_DTYPE_INT64, v, n, err);
}