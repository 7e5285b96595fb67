/* hqrt_kernels_fast_internal.h — what the fast kernels' two files share: hqrt_kernels_avx2.c
 * (the CPU checks, prepare and run of every fast kernel, the AVX2 kernels) and
 * hqrt_kernels_vnni.c (the AVX-512 VNNI kernels and their weight packing). Private to them. */
#ifndef HQRT_KERNELS_FAST_INTERNAL_H
#define HQRT_KERNELS_FAST_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hqrt_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#define HQRT_HAVE_AVX2_BUILD 1
#include <immintrin.h>
#endif

/* hqrt_i_prepared_t.kind: which fast kernel an op was prepared for. */
enum {
    HQRT_KIND_GEMM = 1,
    HQRT_KIND_DW = 2,
    HQRT_KIND_VNNI = 3,
    HQRT_KIND_MAXPOOL = 4,
    HQRT_KIND_DW512 = 5
};

/* Depthwise windows of at most this many taps run the paired-tap interior paths. */
#define HQRT_DW_PAIR_TAPS 64

/* The bias can start the int32 sums: with it every sum of `depth` products of |q - zp| <= 255
 * and |w| <= 128 stays inside int32, so the int64 sum of the reference is that int32 sum and
 * the stage's clamp of it to int32 never acts. */
static inline bool hqrt_i_bias_folds(const int64_t *bias, int32_t count, int64_t depth)
{
    const int64_t room = INT32_MAX - depth * 255 * 128;
    for (int32_t o = 0; bias && o < count; o++)
        if (bias[o] < -room || bias[o] > room)
            return false;
    return bias != NULL;
}

/* The end of one output value, written exactly as the reference conv does it. */
static inline int32_t hqrt_i_finish_value(const hqrt_conv_params_t *kp, const hqrt_addend_t *addend,
                                          int64_t acc, int32_t o, size_t oi)
{
    if (!addend)
        return hqrt_output_code(&kp->out, acc, o);
    int32_t i = kp->out.count == 1 ? 0 : o;
    int64_t t1 = hqrt_requantize(acc, kp->out.multiplier[i], kp->out.shift[i], kp->out.path);
    int64_t t2 = hqrt_requantize(hqrt_load(addend->data, addend->bits, oi) - addend->zp,
                                 addend->multiplier, addend->shift, kp->out.path);
    return hqrt_output_code_sum(&kp->out, t1 + t2, o);
}

/* Weight i of a [.., cout] weight tensor: int16 for 16-bit weights, else int8 (4/8-bit). */
static inline int32_t hqrt_i_weight_at(const void *w, int32_t bits, size_t i)
{
    return bits == 16 ? ((const int16_t *)w)[i] : ((const int8_t *)w)[i];
}

#ifdef HQRT_HAVE_AVX2_BUILD
/* The CPU has AVX512F/BW/DQ/VL and AVX512-VNNI (checked once, then cached). */
bool hqrt_i_cpu_has_vnni(void);

/* The VNNI part of hqrt_i_conv_prepare_kernel for a groups == 1 conv or a dense op that
 * qualifies (depth = taps * cin <= 65536): packs the weights, the int64 corrections and the
 * output-stage constants into prep->packed (aligned_alloc; the caller frees it) and fills prep. */
hqrt_status_t hqrt_i_vnni_prepare(const hqrt_conv_params_t *kp, bool dense, hqrt_dims_t out,
                                  const void *w, const int64_t *bias, int64_t depth, int64_t cin,
                                  bool exact_reads, const char *name, hqrt_i_prepared_t *prep,
                                  hqrt_error_t *err);

/* Output pixels [row_begin, row_end) of an op prepared by hqrt_i_vnni_prepare (a dense op as a
 * 1x1 conv of one pixel); the bias is folded into the packed corrections. */
void hqrt_i_vnni_rows(const hqrt_i_prepared_t *prep, const hqrt_conv_params_t *kp, hqrt_dims_t in,
                      const uint8_t *input, const int64_t *bias, const hqrt_addend_t *addend,
                      hqrt_dims_t out, uint8_t *output, int64_t row_begin, int64_t row_end,
                      uint8_t *scratch);

/* Depthwise output rows [row_begin, row_end) on AVX-512 (hqrt_kernels_dw.c): an op prepared with
 * kind HQRT_KIND_DW512 by hqrt_i_dw512_pack (cpad a multiple of 32; scratch
 * hqrt_i_dw512_scratch bytes). */
void hqrt_i_dw_rows_avx512(const hqrt_i_prepared_t *prep, const hqrt_conv_params_t *kp,
                           hqrt_dims_t in, const uint8_t *input, const int64_t *bias,
                           const hqrt_addend_t *addend, hqrt_dims_t out, uint8_t *output,
                           int64_t row_begin, int64_t row_end, uint8_t *scratch);

/* Bytes of packed weights for hqrt_i_dw512_pack, and of scratch for hqrt_i_dw_rows_avx512. */
size_t hqrt_i_dw512_packed_bytes(int64_t taps, int64_t cpad);
size_t hqrt_i_dw512_scratch(int64_t out_w, int32_t c, int64_t cpad);

/* Packs a depthwise layer's [kh, kw, 1, c] weights (weight_bits 4/8: int8) for
 * hqrt_i_dw_rows_avx512 into packed (hqrt_i_dw512_packed_bytes, 64-aligned). */
void hqrt_i_dw512_pack(const void *w, int32_t weight_bits, int64_t taps, int32_t c, int64_t cpad,
                       int32_t *packed);
#endif

#endif
