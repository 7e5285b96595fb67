/* quant_util.h — what every piece of the optimizer shares: the progress logger and access to
 * "<layer>/<suffix>" tensors of a params set. Internal to libhq; prefix hqi_. */
#ifndef HQI_QUANT_UTIL_H
#define HQI_QUANT_UTIL_H

#include <stdint.h>

#include "hq/graph.h"
#include "hq/quantize.h"
#include "hq/tensor.h"

/* Where the optimizer's progress and decisions go; fn may be NULL (silent). */
typedef struct hqi_logger {
    hq_log_fn fn;
    void *user;
} hqi_logger_t;

void hqi_logf(const hqi_logger_t *logger, hq_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "<layer name>/<suffix>" key lookup in a params set, any dtype (the caller checks it); NULL when
 * absent. */
const hq_tensor_t *hqi_param(const hq_npz_t *params, const hq_layer_t *layer, const char *suffix);
/* Writable float32 tensor of a layer (a float16/64 tensor is converted in place first). */
hq_status_t hqi_param_f32(hq_npz_t *params, const hq_layer_t *layer, const char *suffix,
                          hq_tensor_t **out, hq_error_t *err);
/* Stores a float32 / int32 / int64 vector under "<layer>/<suffix>" (or "<net>/<suffix>" when
 * layer is NULL, with net given). */
hq_status_t hqi_put_f32(hq_npz_t *npz, const char *prefix, const char *suffix, const float *v,
                        int64_t n, hq_error_t *err);
hq_status_t hqi_put_i32(hq_npz_t *npz, const char *prefix, const char *suffix, const int32_t *v,
                        int64_t n, hq_error_t *err);
hq_status_t hqi_put_i64(hq_npz_t *npz, const char *prefix, const char *suffix, const int64_t *v,
                        int64_t n, hq_error_t *err);

#endif
