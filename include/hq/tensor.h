/* tensor.h — dense n-d arrays and their file formats: .npy (one array) and .npz (zip of .npy). */
#ifndef HQ_TENSOR_H
#define HQ_TENSOR_H

#include <stdbool.h>
#include <stdint.h>

#include "hq/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Element types hq reads and writes. Values are append-only. */
typedef enum hq_dtype {
    HQ_DTYPE_FLOAT32 = 0,
    HQ_DTYPE_FLOAT64,
    HQ_DTYPE_FLOAT16,
    HQ_DTYPE_UINT8,
    HQ_DTYPE_INT8,
    HQ_DTYPE_UINT16,
    HQ_DTYPE_INT16,
    HQ_DTYPE_INT32,
    HQ_DTYPE_INT64,
    HQ_DTYPE_BOOL,
    HQ_DTYPE_COUNT
} hq_dtype_t;

/* Size in bytes of one element; 0 for an invalid dtype. */
HQ_API size_t hq_dtype_size(hq_dtype_t dtype);
/* numpy-style name ("float32", "uint8", ...); "invalid" for an invalid dtype. Static string. */
HQ_API const char *hq_dtype_name(hq_dtype_t dtype);

#define HQ_TENSOR_MAX_DIMS 8

/* A dense array in C (row-major) order and the host's byte order (little endian).
 * Plain data: fields may be read directly. A tensor made by hq_tensor_create owns `data`. */
typedef struct hq_tensor {
    hq_dtype_t dtype;                    /* element type */
    int ndim;                            /* number of dimensions, 0 (scalar) .. HQ_TENSOR_MAX_DIMS */
    int64_t shape[HQ_TENSOR_MAX_DIMS];   /* extent of each dimension, all >= 0 */
    void *data;                          /* ndim==0: one element; NULL only when nbytes == 0 */
    size_t nbytes;                       /* element count * hq_dtype_size(dtype) */
} hq_tensor_t;

/* Allocates a zero-filled tensor. The caller owns *out and frees it with hq_tensor_destroy. */
HQ_API hq_status_t hq_tensor_create(hq_dtype_t dtype, int ndim, const int64_t *shape,
                                    hq_tensor_t **out, hq_error_t *err);
/* Deep copy. The caller owns *out. */
HQ_API hq_status_t hq_tensor_clone(const hq_tensor_t *src, hq_tensor_t **out, hq_error_t *err);
/* Copy converted to another dtype (float<->int conversions truncate toward zero like numpy's
 * astype, after clamping nothing: callers convert only values that fit). The caller owns *out. */
HQ_API hq_status_t hq_tensor_convert(const hq_tensor_t *src, hq_dtype_t dtype, hq_tensor_t **out,
                                     hq_error_t *err);
/* Frees the tensor and its data. Accepts NULL. */
HQ_API void hq_tensor_destroy(hq_tensor_t *tensor);
/* Number of elements (product of the shape; 1 for a scalar). */
HQ_API int64_t hq_tensor_count(const hq_tensor_t *tensor);

/* ---- .npy ------------------------------------------------------------------------------- */

/* What a .npy header says, before any data is read. */
typedef struct hq_npy_header {
    hq_dtype_t dtype;
    int ndim;
    int64_t shape[HQ_TENSOR_MAX_DIMS];
    bool fortran_order;     /* data is column-major on disk */
    bool big_endian;        /* data bytes are big endian on disk */
    int version_major;      /* 1, 2 or 3 */
    size_t data_offset;     /* byte offset of the first element from the start of the file */
    size_t data_bytes;      /* element count * element size */
} hq_npy_header_t;

/* Parses a .npy header from the first `len` bytes of a file. `name` is used in error messages
 * (a path or an archive member name). Does not check that the data is present. */
HQ_API hq_status_t hq_npy_parse_header(const void *bytes, size_t len, const char *name,
                                       hq_npy_header_t *header, hq_error_t *err);

/* Decodes a whole .npy held in memory into a C-order, little-endian tensor. The caller owns *out. */
HQ_API hq_status_t hq_npy_read_memory(const void *bytes, size_t len, const char *name,
                                      hq_tensor_t **out, hq_error_t *err);
/* Reads a .npy file. The caller owns *out. */
HQ_API hq_status_t hq_npy_read_file(const char *path, hq_tensor_t **out, hq_error_t *err);

/* Encodes a tensor as .npy (version 1.0 unless the header needs 2.0, C order, little endian).
 * The caller owns *bytes and frees it with free(). */
HQ_API hq_status_t hq_npy_write_memory(const hq_tensor_t *tensor, void **bytes, size_t *len,
                                       hq_error_t *err);
/* Writes a .npy file atomically (temporary file + rename): on failure nothing is left at `path`. */
HQ_API hq_status_t hq_npy_write_file(const char *path, const hq_tensor_t *tensor, hq_error_t *err);

/* ---- .npz ------------------------------------------------------------------------------- */

/* An ordered set of named tensors, as numpy.savez writes them (member "name.npy" <-> key "name"). */
typedef struct hq_npz hq_npz_t;

/* Empty set. The caller owns *out and frees it with hq_npz_destroy. */
HQ_API hq_status_t hq_npz_create(hq_npz_t **out, hq_error_t *err);
/* Frees the set and every tensor in it. Accepts NULL. */
HQ_API void hq_npz_destroy(hq_npz_t *npz);

/* Decodes a zip of .npy members (stored or deflated, zip64 aware) held in memory.
 * `name` is used in error messages. The caller owns *out. */
HQ_API hq_status_t hq_npz_read_memory(const void *bytes, size_t len, const char *name,
                                      hq_npz_t **out, hq_error_t *err);
HQ_API hq_status_t hq_npz_read_file(const char *path, hq_npz_t **out, hq_error_t *err);
/* hq_npz_read_file, or for a path ending in ".npy" that one array as a set holding it under the
 * key "array" (what a command that takes either file reads). */
HQ_API hq_status_t hq_npz_read_set_file(const char *path, hq_npz_t **out, hq_error_t *err);

/* Encodes the set as a zip; `compress` selects deflate (numpy.savez_compressed) or stored
 * (numpy.savez). Zip64 records are written where a member or offset needs them.
 * The caller owns *bytes (free()). Output is deterministic: same set, same bytes. */
HQ_API hq_status_t hq_npz_write_memory(const hq_npz_t *npz, bool compress, void **bytes,
                                       size_t *len, hq_error_t *err);
/* Writes the set to a file atomically. */
HQ_API hq_status_t hq_npz_write_file(const char *path, const hq_npz_t *npz, bool compress,
                                     hq_error_t *err);

/* Number of tensors, and the key of the i-th in insertion (or archive) order. Strings are owned
 * by the set and live until it is destroyed or the key is removed. */
HQ_API size_t hq_npz_count(const hq_npz_t *npz);
HQ_API const char *hq_npz_key(const hq_npz_t *npz, size_t index);
/* Tensor by key, or NULL. Owned by the set. */
HQ_API const hq_tensor_t *hq_npz_get(const hq_npz_t *npz, const char *key);
HQ_API const hq_tensor_t *hq_npz_get_index(const hq_npz_t *npz, size_t index);
/* Inserts or replaces `key`. The set takes ownership of `tensor` (also on failure). */
HQ_API hq_status_t hq_npz_put(hq_npz_t *npz, const char *key, hq_tensor_t *tensor,
                              hq_error_t *err);
/* Inserts or replaces `key` with a deep copy of `tensor`. */
HQ_API hq_status_t hq_npz_put_copy(hq_npz_t *npz, const char *key, const hq_tensor_t *tensor,
                                   hq_error_t *err);
/* Removes `key`; HQ_ERR_NOT_FOUND when absent. */
HQ_API hq_status_t hq_npz_remove(hq_npz_t *npz, const char *key, hq_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
