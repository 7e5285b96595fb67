/* hqrt_kernels_resize.c — hqrt_resize's fast path (hqrt_fast.h), the same codes as the
 * reference (hqrt_kernels_ref.c) over a range of output rows.
 *
 * The source taps of every output column are found once (hqrt_resize_source, the reference's
 * own), those of a row once per row. Nearest copies codes unchanged: each output pixel is a
 * memcpy of its source pixel's channels, and an output row whose source row is the previous
 * output row's (an upsampling) is a copy of that row. Bilinear on 8-bit codes computes the
 * reference's sum (1 - wy)·((1 - wx)·A + wx·B) + wy·((1 - wx)·C + wx·D) of centred codes with
 * Q15 weights in double lanes (8 per zmm on AVX-512, 4 per ymm on AVX2): every product and sum
 * (fused or not) is an integer below 2^40 in magnitude, so exact in a double; the reference's
 * RoundingDivideByPOT by 2^30 (to nearest, ties away from zero) is the quotient (exact: a power
 * of two) plus or minus one half, truncated. */
#include <string.h>

#include "hqrt_fast.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define HQRT_HAVE_RESIZE_VECTORS 1
#include <immintrin.h>
#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
#define AVX2_TARGET __attribute__((target("avx2")))
#endif

/* Output columns handled with taps on the stack (wider: the reference). */
#define RESIZE_MAX_WIDTH 4096

typedef struct column_taps {
    int32_t lo[RESIZE_MAX_WIDTH], hi[RESIZE_MAX_WIDTH], w[RESIZE_MAX_WIDTH];
} column_taps_t;

static bool resize_args_ok(const hqrt_resize_params_t *p, hqrt_dims_t in, const void *input,
                           hqrt_dims_t out, const void *output)
{
    return p && input && output && in.n >= 1 && in.h >= 1 && in.w >= 1 && in.c >= 1 &&
           out.n == in.n && out.h >= 1 && out.w >= 1 && out.c == in.c &&
           (p->bits == 8 || p->bits == 16) && p->zp >= 0 && p->zp <= hqrt_code_max(p->bits) &&
           p->method >= HQRT_RESIZE_NEAREST && p->method <= HQRT_RESIZE_BILINEAR &&
           p->coords >= HQRT_COORDS_ASYMMETRIC && p->coords <= HQRT_COORDS_PYTORCH_HALF_PIXEL &&
           out.w <= RESIZE_MAX_WIDTH;
}

#ifdef HQRT_HAVE_RESIZE_VECTORS
/* RoundingDivideByPOT(v, 30) of exact integers v held in doubles, then + zp, clamped to [0, 255]:
 * |v| / 2^30 is exact, adding +-1/2 is exact (|v| < 2^40), truncation gives ties away from 0. */
AVX512_TARGET static inline __m256i bilinear_finish_avx512(__m512d v, __m256i zp)
{
    const __m512d scale = _mm512_set1_pd(1.0 / (double)(1 << 30));
    __m512d q = _mm512_mul_pd(v, scale);
    __mmask8 neg = _mm512_cmp_pd_mask(q, _mm512_setzero_pd(), _CMP_LT_OQ);
    q = _mm512_add_pd(q, _mm512_mask_blend_pd(neg, _mm512_set1_pd(0.5), _mm512_set1_pd(-0.5)));
    __m256i r = _mm256_add_epi32(_mm512_cvttpd_epi32(q), zp);
    return _mm256_min_epi32(_mm256_max_epi32(r, _mm256_setzero_si256()), _mm256_set1_epi32(255));
}

AVX512_TARGET static inline __m512d centred8_avx512(const uint8_t *p, __mmask8 k, __m256i zp)
{
    __m128i b = _mm_maskz_loadu_epi8((__mmask16)k, p);
    return _mm512_cvtepi32_pd(_mm256_sub_epi32(_mm256_cvtepu8_epi32(b), zp));
}

/* One output row of 8-bit bilinear: rows r0 (weight 2^15 - wy) and r1 (wy) of the input. */
AVX512_TARGET static void bilinear_row_avx512(const column_taps_t *t, const uint8_t *r0,
                                              const uint8_t *r1, int32_t wy, int32_t width,
                                              int32_t c, int32_t zp, uint8_t *out)
{
    const double one = (double)(1 << HQRT_RESIZE_FRAC_BITS);
    const __m512d wy1 = _mm512_set1_pd((double)wy), wy0 = _mm512_set1_pd(one - wy);
    const __m256i z = _mm256_set1_epi32(zp);
    for (int32_t ow = 0; ow < width; ow++) {
        const __m512d wx1 = _mm512_set1_pd((double)t->w[ow]), wx0 = _mm512_set1_pd(one - t->w[ow]);
        const size_t lo = (size_t)t->lo[ow] * (size_t)c, hi = (size_t)t->hi[ow] * (size_t)c;
        for (int32_t ch = 0; ch < c; ch += 8) {
            __mmask8 k = c - ch >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << (c - ch)) - 1);
            __m512d top = _mm512_fmadd_pd(wx0, centred8_avx512(r0 + lo + ch, k, z),
                                          _mm512_mul_pd(wx1, centred8_avx512(r0 + hi + ch, k, z)));
            __m512d bot = _mm512_fmadd_pd(wx0, centred8_avx512(r1 + lo + ch, k, z),
                                          _mm512_mul_pd(wx1, centred8_avx512(r1 + hi + ch, k, z)));
            __m512d v = _mm512_fmadd_pd(wy0, top, _mm512_mul_pd(wy1, bot));
            _mm256_mask_cvtepi32_storeu_epi8(out + (size_t)ow * (size_t)c + ch, k,
                                             bilinear_finish_avx512(v, z));
        }
    }
}

AVX2_TARGET static inline __m256d centred8_avx2(const uint8_t *p, int n, int32_t zp)
{
    int32_t t = 0;
    memcpy(&t, p, (size_t)n);
    __m128i v = _mm_sub_epi32(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(t)), _mm_set1_epi32(zp));
    return _mm256_cvtepi32_pd(v);
}

/* The same, 4 channels per ymm of doubles. */
AVX2_TARGET static void bilinear_row_avx2(const column_taps_t *t, const uint8_t *r0,
                                          const uint8_t *r1, int32_t wy, int32_t width, int32_t c,
                                          int32_t zp, uint8_t *out)
{
    const double one = (double)(1 << HQRT_RESIZE_FRAC_BITS);
    const __m256d wy1 = _mm256_set1_pd((double)wy), wy0 = _mm256_set1_pd(one - wy);
    const __m256d scale = _mm256_set1_pd(1.0 / (double)(1 << 30));
    for (int32_t ow = 0; ow < width; ow++) {
        const __m256d wx1 = _mm256_set1_pd((double)t->w[ow]), wx0 = _mm256_set1_pd(one - t->w[ow]);
        const size_t lo = (size_t)t->lo[ow] * (size_t)c, hi = (size_t)t->hi[ow] * (size_t)c;
        for (int32_t ch = 0; ch < c; ch += 4) {
            const int n = c - ch >= 4 ? 4 : c - ch;
            __m256d top = _mm256_add_pd(_mm256_mul_pd(wx0, centred8_avx2(r0 + lo + ch, n, zp)),
                                        _mm256_mul_pd(wx1, centred8_avx2(r0 + hi + ch, n, zp)));
            __m256d bot = _mm256_add_pd(_mm256_mul_pd(wx0, centred8_avx2(r1 + lo + ch, n, zp)),
                                        _mm256_mul_pd(wx1, centred8_avx2(r1 + hi + ch, n, zp)));
            __m256d q = _mm256_mul_pd(
                _mm256_add_pd(_mm256_mul_pd(wy0, top), _mm256_mul_pd(wy1, bot)), scale);
            __m256d half = _mm256_blendv_pd(_mm256_set1_pd(0.5), _mm256_set1_pd(-0.5),
                                            _mm256_cmp_pd(q, _mm256_setzero_pd(), _CMP_LT_OQ));
            __m128i r =
                _mm_add_epi32(_mm256_cvttpd_epi32(_mm256_add_pd(q, half)), _mm_set1_epi32(zp));
            r = _mm_min_epi32(_mm_max_epi32(r, _mm_setzero_si128()), _mm_set1_epi32(255));
            int32_t codes = _mm_cvtsi128_si32(_mm_packus_epi16(_mm_packus_epi32(r, r), r));
            memcpy(out + (size_t)ow * (size_t)c + ch, &codes, (size_t)n);
        }
    }
}
#endif

/* Nearest: output rows [row_begin, row_end) of every sample, codes copied. */
static void nearest_rows(const hqrt_resize_params_t *p, hqrt_dims_t in, const uint8_t *input,
                         hqrt_dims_t out, uint8_t *output, int64_t row_begin, int64_t row_end,
                         const column_taps_t *t)
{
    const size_t pixel = (size_t)in.c * (p->bits == 16 ? 2 : 1);
    const size_t in_row = pixel * (size_t)in.w, out_row = pixel * (size_t)out.w;
    for (int32_t n = 0; n < out.n; n++) {
        int64_t prev = -1;
        for (int64_t oh = row_begin; oh < row_end; oh++) {
            int64_t lo, hi;
            int32_t w;
            hqrt_resize_source(p, oh, in.h, out.h, &lo, &hi, &w);
            uint8_t *dst = output + ((size_t)n * (size_t)out.h + (size_t)oh) * out_row;
            if (lo == prev) { /* the previous output row again */
                memcpy(dst, dst - out_row, out_row);
                continue;
            }
            const uint8_t *src = input + ((size_t)n * (size_t)in.h + (size_t)lo) * in_row;
            for (int32_t ow = 0; ow < out.w; ow++)
                memcpy(dst + (size_t)ow * pixel, src + (size_t)t->lo[ow] * pixel, pixel);
            prev = lo;
        }
    }
}

int hqrt_i_resize_fast(int isa, const hqrt_resize_params_t *p, hqrt_dims_t in, const void *input,
                       hqrt_dims_t out, void *output, int64_t row_begin, int64_t row_end)
{
    const bool whole = row_begin == 0 && row_end == out.h;
    if (!resize_args_ok(p, in, input, out, output) || isa == HQRT_ISA_REFERENCE ||
        (p->method == HQRT_RESIZE_BILINEAR && p->bits != 8))
        return whole ? hqrt_resize(p, in, input, out, output) : HQRT_KERNEL_ERR_ARGUMENT;
    if (row_begin < 0 || row_end > out.h || row_begin >= row_end)
        return HQRT_KERNEL_ERR_ARGUMENT;
    column_taps_t t;
    for (int32_t ow = 0; ow < out.w; ow++) {
        int64_t lo, hi;
        int32_t w;
        hqrt_resize_source(p, ow, in.w, out.w, &lo, &hi, &w);
        t.lo[ow] = (int32_t)lo, t.hi[ow] = (int32_t)hi, t.w[ow] = w;
    }
    if (p->method == HQRT_RESIZE_NEAREST) {
        nearest_rows(p, in, input, out, output, row_begin, row_end, &t);
        return HQRT_KERNEL_OK;
    }
#ifdef HQRT_HAVE_RESIZE_VECTORS
    const size_t in_row = (size_t)in.w * (size_t)in.c, out_row = (size_t)out.w * (size_t)in.c;
    for (int32_t n = 0; n < out.n; n++)
        for (int64_t oh = row_begin; oh < row_end; oh++) {
            int64_t lo, hi;
            int32_t wy;
            hqrt_resize_source(p, oh, in.h, out.h, &lo, &hi, &wy);
            const uint8_t *base = (const uint8_t *)input + (size_t)n * (size_t)in.h * in_row;
            uint8_t *dst = (uint8_t *)output + ((size_t)n * (size_t)out.h + (size_t)oh) * out_row;
            if (isa == HQRT_ISA_AVX512)
                bilinear_row_avx512(&t, base + (size_t)lo * in_row, base + (size_t)hi * in_row, wy,
                                    out.w, in.c, p->zp, dst);
            else
                bilinear_row_avx2(&t, base + (size_t)lo * in_row, base + (size_t)hi * in_row, wy,
                                  out.w, in.c, p->zp, dst);
        }
    return HQRT_KERNEL_OK;
#else
    return HQRT_KERNEL_ERR_ARGUMENT; /* no vector ISA here: isa was the reference */
#endif
}

bool hqrt_i_resize_rows_fast(int isa, const hqrt_resize_params_t *p, hqrt_dims_t out)
{
    return p && isa != HQRT_ISA_REFERENCE && out.w <= RESIZE_MAX_WIDTH &&
           (p->method == HQRT_RESIZE_NEAREST ||
            (p->method == HQRT_RESIZE_BILINEAR && p->bits == 8));
}
