/* hqrt_fast.h — the fast kernels' interface, shared by the executor (hqrt_run.c) and libhq's
 * quantized emulator (core/emulate/qemulator.c): the weights of one conv/dw/dense op packed once
 * for the fast kernels (hqrt_kernels_avx2.c, hqrt_kernels_vnni.c), then runs over output rows.
 * Model-independent: it takes the numerics' kernel parameters (hqrt_kernels_ref.h), never a
 * program. Plain C; no libhq headers (libhqrt is built from core/runtime/ alone). */
#ifndef HQRT_FAST_H
#define HQRT_FAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hqrt_kernels_ref.h"
#include "hq/hqrt.h"

/* Bytes after each arena that fast kernels may read (never use) with full-width vector loads. */
#define HQRT_ARENA_SLACK 64

/* Per-op data prepared at open time for the fast kernels. Owned by the model. */
typedef struct hqrt_i_prepared {
    bool fast;            /* the op runs a fast kernel (conv/dense, maxpool), split by rows */
    int kind;             /* fast kernel variant (hqrt_kernels_fast_internal.h) */
    bool dense;           /* a dense op: the input is one pixel of h*w*c channels */
    bool direct;          /* VNNI: 1x1 window, input pixels used in place when possible */
    int64_t rows;         /* output rows (VNNI conv: output pixels) the threads share */
    int64_t min_rows;     /* fewest rows worth one piece of a shared op (>= 1) */
    void *packed;         /* weights repacked for the fast kernel (aligned_alloc), or NULL */
    int64_t depth;        /* accumulation depth per output (taps * channels per group) */
    int64_t depth_padded; /* depth rounded up to the kernel's vector width */
    int64_t row_bytes;    /* VNNI: bytes per kernel row when rows are padded to 4, else 0 */
    bool exact_reads;     /* never read past an input's last byte (buffers without slack) */
    size_t scratch;       /* bytes of scratch one thread needs */
    const void *finish;   /* VNNI: per-block output-stage constants inside packed, or NULL */
} hqrt_i_prepared_t;

/* Fast conv/dw/dense (hqrt_kernels_avx2.c, hqrt_kernels_vnni.c). prepare decides whether an op
 * qualifies (8-bit input, 4/8-bit weights, shapes the kernel handles) and packs its weights; run
 * computes output rows [row_begin, row_end) bit-exactly like hqrt_conv2d / hqrt_dense (same
 * int64 sums, same output stage functions).
 * prepare takes the kernel's own parameters (in/out dims of one sample); exact_reads for input
 * buffers without HQRT_ARENA_SLACK bytes after them (no padded rows, no wide patch copies). The
 * quantized emulator prepares its conv/dense layers this way. Free prep->packed when done. */
hqrt_status_t hqrt_i_conv_prepare_kernel(const hqrt_conv_params_t *kp, bool dense, hqrt_dims_t in,
                                         hqrt_dims_t out, const void *w, const int64_t *bias,
                                         bool exact_reads, const char *name,
                                         hqrt_i_prepared_t *prep, hqrt_error_t *err);
int hqrt_i_conv_fast(const hqrt_i_prepared_t *prep, const hqrt_conv_params_t *kp, hqrt_dims_t in,
                     const uint8_t *input, const int64_t *bias, const hqrt_addend_t *addend,
                     hqrt_dims_t out, uint8_t *output, int64_t row_begin, int64_t row_end,
                     uint8_t *scratch);

#endif
