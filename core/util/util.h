/* util.h — internal helpers shared by libhq's units: error reporting, whole-file I/O, atomic
 * writes, growable byte buffers, checked arithmetic, float16, shape element counts. Prefix hqi_
 * (internal). */
#ifndef HQ_CORE_UTIL_H
#define HQ_CORE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hq/common.h"

/* Fills *err (when not NULL) with `status` and a printf-formatted message; returns `status`
 * so that callers can write `return hqi_error(err, HQ_ERR_FORMAT, "%s: ...", name);`. */
hq_status_t hqi_error(hq_error_t *err, hq_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Shorthand for an allocation failure. */
hq_status_t hqi_nomem(hq_error_t *err, const char *where);

/* Reads a whole file (at most `limit` bytes, else HQ_ERR_LIMIT). The caller owns *bytes (free()).
 * A NUL is appended after the data (not counted in *len) so text can be parsed in place. */
hq_status_t hqi_read_file(const char *path, size_t limit, void **bytes, size_t *len,
                          hq_error_t *err);
/* Writes `len` bytes to `path` atomically: a temporary file in the same folder, fsync, rename.
 * On failure the temporary file is removed and `path` is untouched. */
hq_status_t hqi_write_file_atomic(const char *path, const void *bytes, size_t len,
                                  hq_error_t *err);

/* A growable byte buffer. Zero-initialize, append, take `data` (free()) or hqi_buf_free. */
typedef struct hqi_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool failed;   /* an allocation failed; further appends are ignored */
} hqi_buf_t;
void hqi_buf_append(hqi_buf_t *buf, const void *bytes, size_t len);
void hqi_buf_printf(hqi_buf_t *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hqi_buf_zeros(hqi_buf_t *buf, size_t len);
void hqi_buf_free(hqi_buf_t *buf);

/* Checked size arithmetic: false on overflow. */
bool hqi_mul_size(size_t a, size_t b, size_t *out);
bool hqi_add_size(size_t a, size_t b, size_t *out);

/* strdup that reports failure through NULL (C11 has no strdup). */
char *hqi_strdup(const char *s);
char *hqi_strndup(const char *s, size_t n);

/* IEEE half <-> single conversion (round to nearest even on the way down). */
float hqi_half_to_float(uint16_t h);
uint16_t hqi_float_to_half(float f);

/* Elements of a shape: the product of all its dims (1 for rank 0). The dims must be valid: no
 * overflow check. */
struct hq_shape;
int64_t hqi_shape_count(const struct hq_shape *shape);

#endif
