/* hqrt_builder.h — writes `.hqx` programs: tensors, ops and blobs in, a serialized, checksummed
 * program with its activation arena planned out. Used by the compiler (core/deploy/) and by the
 * runtime's own tests, so it is plain C in core/runtime/ (part of libhqrt, no libhq headers).
 * Internal: prefix hqrt_b_. Errors are reported as one line in the builder's message buffer. */
#ifndef HQRT_BUILDER_H
#define HQRT_BUILDER_H

#include <stddef.h>
#include <stdint.h>

#include "hqrt_format.h"

typedef struct hqrt_builder hqrt_builder_t;

/* A new empty program. NULL on allocation failure. Destroy with hqrt_b_destroy (accepts NULL). */
hqrt_builder_t *hqrt_b_create(const char *net_name, const char *hw_arch);
void hqrt_b_destroy(hqrt_builder_t *b);
/* The first error recorded by any call ("" when none). Owned by the builder. */
const char *hqrt_b_error(const hqrt_builder_t *b);

/* Adds a tensor; returns its id, or -1 (error recorded). ndim 4: [1, h, w, c]; 2: [1, c]. */
int32_t hqrt_b_tensor(hqrt_builder_t *b, const char *name, uint32_t ndim, uint32_t h, uint32_t w,
                      uint32_t c, uint32_t bits, float qp_scale, int32_t qp_zp);
/* Copies `size` bytes into the data area; the returned blob's offset is relative to the data
 * area until serialization rebases it (size 0 returns the absent blob). */
hqx_blob_t hqrt_b_blob(hqrt_builder_t *b, const void *data, size_t size);
/* Appends an op. `params` is the op code's params struct (copied), with blobs from hqrt_b_blob.
 * Returns 0, or -1 (error recorded). */
int hqrt_b_op(hqrt_builder_t *b, uint32_t code, const char *name, const void *params,
              uint32_t params_size, const int32_t *inputs, uint32_t input_count,
              const int32_t *outputs, uint32_t output_count);
/* Declares the program's inputs and outputs (tensor ids, in order). */
int hqrt_b_io(hqrt_builder_t *b, const int32_t *inputs, uint32_t input_count,
              const int32_t *outputs, uint32_t output_count);

/* Plans the arena (tensors alive at the same time never share bytes; greedy by size, 64-byte
 * slots) and serializes. The caller owns *bytes (free()). Returns 0 or -1. */
int hqrt_b_finish(hqrt_builder_t *b, uint8_t **bytes, size_t *len);

/* Recomputes the header checksum of a serialized program (after a deliberate edit, in tests). */
void hqrt_b_reseal(uint8_t *bytes, size_t len);

#endif
