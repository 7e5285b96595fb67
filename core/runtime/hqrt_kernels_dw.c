/* hqrt_kernels_dw.c — the depthwise kernels (groups == channels): their prepare, which
 * hqrt_kernels_avx2.c calls for every depthwise op (hqrt_i_dw_prepare), the AVX2 kernels
 * (HQRT_KIND_DW: exact float sums over widened input rows, or paired taps at strides of 2 and
 * more; see "AVX2" below) and the AVX-512 one (HQRT_KIND_DW512, when hqrt_i_vector_isa() is
 * AVX-512 at open time).
 *
 * AVX-512: windows of at most HQRT_DW_PAIR_TAPS taps: 32 channels per step, the raw codes of two
 * taps interleaved as int16 pairs and summed by vpmaddwd into int32 (|pair| <= 2 * 255 * 128),
 * started from bias - in_zp * sum(w), which makes the sum the reference's centred one; a tap
 * outside the input reads a row of in_zp codes, which that start cancels as the reference's pad
 * adds 0; 8 or 16 channels at stride 1: 32 / c output pixels per step. Larger windows: only the
 * taps inside the input, the centred code (|q - zp| <= 255)
 * times the weight (vpmulld), 16 channels per step. The last group of channels is masked, so
 * nothing is read past a pixel's channels. Every sum is exact in int32 for the taps prepare
 * allows, the same sums as the AVX2 kernel and the reference's int64 ones. The output stage of
 * a row: the int32 lanes of the VNNI kernel (hqrt_i_rq_merged_x16, constants prepared per block
 * of 16 channels) where they are exact for the layer (dw_fin_prepare), else
 * hqrt_i_stage_pixels, or with a residual addend hqrt_i_stage_row_addend per pixel. With
 * AVX512-VNNI, windows at stride 1 across take quads of columns instead (hqrt_kernels_dwq.c). */
#include <stdlib.h>
#include <string.h>

#include "hqrt_kernels_fast_internal.h"

#ifdef HQRT_HAVE_AVX2_BUILD
#include "hqrt_fast.h"

/* [first, last) of the kernel taps k with 0 <= origin + k * dilation < extent. */
static void taps_inside(int64_t origin, int32_t taps, int32_t dilation, int64_t extent,
                        int32_t *first, int32_t *last)
{
    int32_t k = 0;
    while (k < taps && origin + (int64_t)k * dilation < 0)
        k++;
    *first = k;
    while (k < taps && origin + (int64_t)k * dilation < extent)
        k++;
    *last = k;
}

/* A 1x1 window (a normalization: one multiplier per channel) also runs a row as one flat run of
 * out.w * c values, 16 per vector, with its per-channel constants repeated over lcm(c, 16)
 * values (at most DW_FLAT_MAX); 0 when it does not. */
#define DW_FLAT_MAX 1024
static int64_t flat_period(int64_t taps, int32_t c)
{
    int32_t g = c, e = 16;
    while (e) { /* gcd(c, 16) */
        const int32_t t = g % e;
        g = e, e = t;
    }
    const int64_t period = (int64_t)c / g * 16;
    return taps == 1 && period <= DW_FLAT_MAX ? period : 0;
}

/* Layers of 8 or 16 channels take 32 / c consecutive output pixels per 32-lane step at stride
 * 1 (lane l: pixel l / c, channel l % c; the pixels' taps are c bytes apart), with the pairs of
 * weights repeated over the lanes; 1 otherwise. */
static int32_t group_pixels(int32_t c)
{
    return c == 8 || c == 16 ? 32 / c : 1;
}

/* Packed weights: [taps][cpad] int32 (the per-tap products of windows too large to pair), [cpad]
 * int32 the sum of each channel's weights (init's in_zp correction), then the pairs of taps as
 * [pairs][cpad / 32][64] int16: per group of 32 channels the lanes of vpunpcklwd (dword i:
 * channel 8 * (i / 4) + i % 4) then of vpunpckhwd (the same + 4), each channel's two taps
 * adjacent; an odd last tap's partner and the channels past c weigh 0. Then the output stage's
 * int32 constants per block of 16 channels (hqrt_i_fin_t, see dw_fin_prepare) and the lut's
 * clamped codes (HQRT_I_LUT_BYTES: as int32, then as bytes); then, for a 1x1 window (flat_period),
 * the weight and the start (bias - in_zp * w) of each value of a period, [period] int32 each, and
 * the stage's constants per 16 values of it; last, for pixel groups (group_pixels), the pairs of
 * weights [pairs][64] int16 of 32 lanes whose channel is lane % c (vpunpck lane order as above). */
size_t hqrt_i_dw512_packed_bytes(int64_t taps, int32_t c, int64_t cpad)
{
    const int64_t pairs = (taps + 1) / 2, period = flat_period(taps, c);
    return (size_t)((taps + 1) * cpad) * sizeof(int32_t) +
           (size_t)(pairs * cpad * 2) * sizeof(int16_t) +
           (size_t)(cpad / 16) * sizeof(hqrt_i_fin_t) + HQRT_I_LUT_BYTES +
           (size_t)period * 2 * sizeof(int32_t) + (size_t)(period / 16) * sizeof(hqrt_i_fin_t) +
           (size_t)(group_pixels(c) > 1 ? pairs * 64 : 0) * sizeof(int16_t);
}

/* Where the pixel groups' pairs of weights start in packed (after everything else). */
static const int16_t *group_pairs(const int32_t *packed, int64_t taps, int32_t c, int64_t cpad)
{
    return (const int16_t *)(const void *)((const uint8_t *)(const void *)packed +
                                           hqrt_i_dw512_packed_bytes(taps, c, cpad) -
                                           (size_t)((taps + 1) / 2 * 64) * sizeof(int16_t));
}

const void *hqrt_i_dw512_finish(const int32_t *packed, int64_t taps, int64_t cpad)
{
    const int16_t *pairs16 = (const int16_t *)(const void *)(packed + (taps + 1) * cpad);
    return pairs16 + (taps + 1) / 2 * cpad * 2;
}

/* The stage's int32 constants for the row's sums, when they give the reference's codes: the
 * 32-bit path into 8-bit codes, no negative-side multipliers, every multiplier >= 0, and the
 * bias absent or folded into the int32 sums (hqrt_i_bias_folds), so that each sum is the
 * reference's accumulator and its clamp to int32 never acts. Returns whether they do. */
static bool dw_fin_prepare(const hqrt_output_stage_t *st, const int64_t *bias, int64_t taps,
                           int32_t c, int64_t cpad, hqrt_i_fin_t *fin, int32_t *lut32)
{
    if (st->path != HQRT_PATH_GEMMLOWP || st->multiplier_neg || st->out_bits != 8 ||
        (bias && !hqrt_i_bias_folds(bias, c, taps)))
        return false;
    for (int64_t o = 0; o < cpad; o++) {
        const int32_t i = st->count == 1 ? 0 : (int32_t)(o < c ? o : 0);
        if (st->multiplier[i] < 0)
            return false;
        /* channels past c: computed from zero sums, never stored */
        hqrt_i_fin_constants(o < c ? st->multiplier[i] : 0, o < c ? st->shift[i] : 0, (int)(o % 16),
                             &fin[o / 16]);
    }
    if (st->lut)
        hqrt_i_lut_prepare(st, lut32);
    return true;
}

size_t hqrt_i_dw512_scratch(int64_t out_w, int32_t c, int64_t cpad)
{
    return (size_t)((out_w * c + 15) / 16 * 16 + 2 * cpad + 32) * sizeof(int32_t) + (size_t)cpad;
}

int hqrt_i_dw512_pack(const hqrt_conv_params_t *kp, const void *w, const int64_t *bias,
                      int64_t taps, int32_t c, int64_t cpad, int32_t *packed)
{
    const int32_t weight_bits = kp->weight_bits;
    memset(packed, 0, hqrt_i_dw512_packed_bytes(taps, c, cpad));
    int32_t *wsum = packed + taps * cpad;
    for (int64_t t = 0; t < taps; t++)
        for (int32_t ch = 0; ch < c; ch++) {
            const int32_t v = hqrt_i_weight_at(w, weight_bits, (size_t)(t * c + ch));
            packed[t * cpad + ch] = v;
            wsum[ch] += v;
        }
    int16_t *pairs16 = (int16_t *)(void *)(wsum + cpad);
    const int64_t pairs = (taps + 1) / 2;
    for (int64_t pr = 0; pr < pairs; pr++)
        for (int64_t g = 0; g < cpad / 32; g++)
            for (int l = 0; l < 32; l++) /* l < 16: vpunpcklwd's dword l, else vpunpckhwd's */
                for (int e = 0; e < 2; e++) {
                    const int d = l % 16;
                    const int64_t t = 2 * pr + e, ch = g * 32 + 8 * (d / 4) + d % 4 + 4 * (l / 16);
                    pairs16[((pr * (cpad / 32) + g) * 32 + l) * 2 + e] =
                        t < taps && ch < c ? (int16_t)packed[t * cpad + ch] : 0;
                }
    if (group_pixels(c) > 1) { /* the same pairs, lane l's channel l % c */
        int16_t *g16 = (int16_t *)(uintptr_t)group_pairs(packed, taps, c, cpad);
        for (int64_t pr = 0; pr < pairs; pr++)
            for (int l = 0; l < 32; l++)
                for (int e = 0; e < 2; e++) {
                    const int d = l % 16;
                    const int64_t t = 2 * pr + e, lane = 8 * (d / 4) + d % 4 + 4 * (l / 16);
                    g16[(pr * 32 + l) * 2 + e] =
                        t < taps ? (int16_t)packed[t * cpad + lane % c] : 0;
                }
    }
    hqrt_i_fin_t *fin = (hqrt_i_fin_t *)(void *)(pairs16 + pairs * cpad * 2);
    int32_t *lut32 = (int32_t *)(void *)(fin + cpad / 16);
    if (!dw_fin_prepare(&kp->out, bias, taps, c, cpad, fin, lut32))
        return 0;
    const int64_t period = flat_period(taps, c);
    if (!period)
        return 1;
    /* the flat run's constants: value j of a period is channel j % c */
    int32_t *w_rep = lut32 + HQRT_I_LUT_BYTES / sizeof(int32_t), *start = w_rep + period;
    hqrt_i_fin_t *fin_rep = (hqrt_i_fin_t *)(void *)(start + period);
    for (int64_t j = 0; j < period; j++) {
        const int32_t ch = (int32_t)(j % c), i = kp->out.count == 1 ? 0 : ch;
        w_rep[j] = packed[ch];
        /* folded (dw_fin_prepare checked it): the reference's accumulator stays in int32 */
        start[j] = (int32_t)((bias ? bias[ch] : 0) - (int64_t)kp->in_zp * packed[ch]);
        hqrt_i_fin_constants(kp->out.multiplier[i], kp->out.shift[i], (int)(j % 16),
                             &fin_rep[j / 16]);
    }
    return 3;
}

#define AVX512_TARGET HQRT_AVX512_TARGET

/* The int32 sums of one output pixel of a window too large for the paired taps: only the taps
 * inside the input, each the centred code times the weight (vpmulld), 16 channels per step,
 * from the int32 bias. */
AVX512_TARGET static void border_pixel(const hqrt_conv_params_t *kp, hqrt_dims_t in,
                                       const uint8_t *input, const int32_t *weights, size_t cpad,
                                       const int32_t *bias32, int64_t y0, int32_t ky0, int32_t ky1,
                                       int64_t x0, int32_t kx0, int32_t kx1, int32_t *acc)
{
    const int32_t c = in.c;
    const __m512i zp = _mm512_set1_epi32(kp->in_zp);
    const size_t row_bytes = (size_t)in.w * (size_t)c;
    for (int32_t ch = 0; ch < c; ch += 16) {
        const __mmask16 k = c - ch >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (c - ch)) - 1);
        __m512i a = _mm512_loadu_si512((const void *)(bias32 + ch));
        for (int32_t ky = ky0; ky < ky1; ky++) {
            const uint8_t *row =
                input + (size_t)(y0 + (int64_t)ky * kp->dilation_h) * row_bytes + ch;
            const int32_t *wrow = weights + (size_t)ky * (size_t)kp->kernel_w * cpad + ch;
            for (int32_t kx = kx0; kx < kx1; kx++) {
                const uint8_t *src = row + (size_t)(x0 + (int64_t)kx * kp->dilation_w) * (size_t)c;
                __m512i v =
                    _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, src)), zp);
                __m512i w = _mm512_load_si512((const void *)(wrow + (size_t)kx * cpad));
                a = _mm512_add_epi32(a, _mm512_mullo_epi32(v, w));
            }
        }
        _mm512_mask_storeu_epi32(acc + ch, k, a);
    }
}

/* The int32 sums of one output pixel: 32 channels per step, the window's taps in pairs (src:
 * each tap's first code; a tap outside the input points at a row of in_zp codes, and an odd
 * last tap's partner, under weight 0, too), the raw codes of a pair interleaved as int16 and
 * multiplied into int32 by vpmaddwd with the pair's weights (pairs16, in vpunpck{l,h}wd lane
 * order), then put back in channel order (vpermt2d) and started from init = bias - in_zp *
 * sum(w): the centred sum, as the reference's (an in_zp code adds in_zp * w, which init takes
 * away again, as the reference's pad adds 0). */
AVX512_TARGET static inline __attribute__((always_inline)) void
pixel_sums(int32_t c, const uint8_t *const *src, int64_t pairs, const int16_t *pairs16,
           size_t gstride, const int32_t *init, int32_t *acc)
{
    const __m512i idx_lo = _mm512_set_epi32(23, 22, 21, 20, 7, 6, 5, 4, 19, 18, 17, 16, 3, 2, 1, 0);
    const __m512i idx_hi =
        _mm512_set_epi32(31, 30, 29, 28, 15, 14, 13, 12, 27, 26, 25, 24, 11, 10, 9, 8);
    const int16_t *wg = pairs16;
    for (int32_t ch = 0; ch < c; ch += 32, wg += 64) {
        const int32_t n = c - ch < 32 ? c - ch : 32;
        const __mmask32 k = n == 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << n) - 1);
        __m512i lo = _mm512_setzero_si512(), hi = lo;
        const int16_t *wp = wg;
        for (int64_t pr = 0; pr < pairs; pr++, wp += gstride) {
            __m512i v0 = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(k, src[2 * pr] + ch));
            __m512i v1 = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(k, src[2 * pr + 1] + ch));
            /* lo: channels 0-3, 8-11, 16-19, 24-27; hi: 4-7, 12-15, 20-23, 28-31 */
            lo = _mm512_add_epi32(lo, _mm512_madd_epi16(_mm512_unpacklo_epi16(v0, v1),
                                                        _mm512_load_si512((const void *)wp)));
            hi =
                _mm512_add_epi32(hi, _mm512_madd_epi16(_mm512_unpackhi_epi16(v0, v1),
                                                       _mm512_load_si512((const void *)(wp + 32))));
        }
        __m512i s0 = _mm512_add_epi32(_mm512_permutex2var_epi32(lo, idx_lo, hi),
                                      _mm512_loadu_si512((const void *)(init + ch)));
        __m512i s1 = _mm512_add_epi32(_mm512_permutex2var_epi32(lo, idx_hi, hi),
                                      _mm512_loadu_si512((const void *)(init + ch + 16)));
        _mm512_mask_storeu_epi32(acc + ch, (__mmask16)k, s0);
        if (n > 16)
            _mm512_mask_storeu_epi32(acc + ch + 16, (__mmask16)(k >> 16), s1);
    }
}

/* 16 channels from ch of `pixels` pixels' sums (c apart) to 8-bit codes with the prepared
 * int32 stage (exact: the negative-side correction, needed unless every y <= 0 clamps to one
 * code). */
AVX512_TARGET static inline __attribute__((always_inline)) void
finish_block(const hqrt_i_fin_t *f, const __m512i *cc, const hqrt_i_lut_regs_t *lut,
             const int32_t *sums, int32_t c, int32_t ch, int64_t pixels, uint8_t *out,
             const bool exact)
{
    const __mmask16 k = c - ch >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (c - ch)) - 1);
    const hqrt_i_rq_t rq = hqrt_i_rq_load(f);
    const __m512i left = _mm512_load_si512((const void *)f->left);
    const bool any_left = _mm512_test_epi32_mask(left, left) != 0;
    for (int64_t px = 0; px < pixels; px++) {
        const size_t at = (size_t)px * (size_t)c + (size_t)ch;
        __m512i x = _mm512_maskz_loadu_epi32(k, sums + at);
        if (any_left) /* x * 2^left saturated to int32, as hqrt_requantize32 */
            x = hqrt_i_sat_shl_x16(x, left);
        const __m128i codes = hqrt_i_code_bytes(hqrt_i_rq_merged_x16(x, &rq, exact), cc, lut);
        if (k == 0xFFFF) /* vpmovdb straight to memory (what a masked store becomes) is slow */
            _mm_storeu_si128((__m128i *)(void *)(out + at), codes);
        else
            _mm_mask_storeu_epi8(out + at, k, codes);
    }
}

/* 64 channels from ch of `pixels` pixels' sums (c apart) to 8-bit codes through a lut stage by
 * vpermi2b without pre-shifts: four blocks narrowed and looked up together (hqrt_i_codes64). */
AVX512_TARGET static void finish_block64(const hqrt_i_fin_t *f, const __m512i *cc64,
                                         const hqrt_i_lut_regs_t *lut, const int32_t *sums,
                                         int32_t c, int32_t ch, int64_t pixels, uint8_t *out)
{
    hqrt_i_rq_t rq[4];
    for (int b = 0; b < 4; b++)
        rq[b] = hqrt_i_rq_load(f + b);
    for (int64_t px = 0; px < pixels; px++) {
        const size_t at = (size_t)px * (size_t)c + (size_t)ch;
        __m512i y[4];
        for (int b = 0; b < 4; b++)
            y[b] = hqrt_i_rq_merged_x16(_mm512_loadu_si512((const void *)(sums + at + 16 * b)),
                                        &rq[b], true);
        _mm512_storeu_si512((void *)(out + at),
                            hqrt_i_codes64(y, cc64[0], cc64[1], cc64[2], lut, cc64[3]));
    }
}

/* The output stage of a row's sums through the int32 constants dw_fin_prepare made (wide: a lut
 * stage by vpermi2b whose channels do not pre-shift, 64 channels at a time where they can). */
AVX512_TARGET static void finish_row(const hqrt_output_stage_t *st, const hqrt_i_fin_t *fin,
                                     const int32_t *lut32, bool vbmi, bool wide,
                                     const int32_t *sums, int32_t c, int64_t pixels, uint8_t *out)
{
    const hqrt_i_lut_regs_t lut = hqrt_i_lut_load(lut32, vbmi);
    int32_t zp, lo, hi;
    hqrt_i_code_consts(st, &zp, &lo, &hi);
    const __m512i cc[3] = {_mm512_set1_epi32(zp), _mm512_set1_epi32(lo), _mm512_set1_epi32(hi)};
    const bool clamped = !lut32 && st->act_min >= st->out_zp;
    int32_t ch = 0;
    if (wide && lut32 && lut.vbmi) {
        const __m512i cc64[4] = {_mm512_set1_epi16((short)zp), _mm512_set1_epi8((char)st->act_min),
                                 _mm512_set1_epi8((char)st->act_max), hqrt_i_codes64_order()};
        for (; ch + 64 <= c; ch += 64)
            finish_block64(fin + ch / 16, cc64, &lut, sums, c, ch, pixels, out);
    }
    for (; ch < c; ch += 16) {
        if (clamped)
            finish_block(fin + ch / 16, cc, &lut, sums, c, ch, pixels, out, false);
        else
            finish_block(fin + ch / 16, cc, &lut, sums, c, ch, pixels, out, true);
    }
}

/* One output row of a 1x1 window as a flat run of n values (flat_period): start + q * w in
 * int32 (|q * w| <= 255 * 128), then the int32 stage, 16 values per vector, each block of the
 * period's constants loaded once per row. */
AVX512_TARGET static void flat_row(const hqrt_output_stage_t *st, const int32_t *flat,
                                   int64_t period, const int32_t *lut32, bool vbmi,
                                   const uint8_t *src, int64_t n, uint8_t *out)
{
    const hqrt_i_lut_regs_t lut = hqrt_i_lut_load(lut32, vbmi);
    const int32_t *w_rep = flat, *start = flat + period;
    const hqrt_i_fin_t *fin = (const hqrt_i_fin_t *)(const void *)(start + period);
    int32_t zp, lo, hi;
    hqrt_i_code_consts(st, &zp, &lo, &hi);
    const __m512i cc[3] = {_mm512_set1_epi32(zp), _mm512_set1_epi32(lo), _mm512_set1_epi32(hi)};
    const bool exact = lut32 || st->act_min < st->out_zp;
    for (int64_t b = 0; b < period; b += 16) {
        const hqrt_i_rq_t rq = hqrt_i_rq_load(fin + b / 16);
        const __m512i left = _mm512_load_si512((const void *)fin[b / 16].left);
        const bool any_left = _mm512_test_epi32_mask(left, left) != 0;
        const __m512i w = _mm512_load_si512((const void *)(w_rep + b));
        const __m512i s = _mm512_load_si512((const void *)(start + b));
        for (int64_t j = b; j < n; j += period) {
            const __mmask16 k = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
            const __m512i q = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, src + j));
            __m512i x = _mm512_add_epi32(s, _mm512_mullo_epi32(q, w));
            if (any_left)
                x = hqrt_i_sat_shl_x16(x, left);
            const __m128i codes = hqrt_i_code_bytes(exact ? hqrt_i_rq_merged_x16(x, &rq, true)
                                                          : hqrt_i_rq_merged_x16(x, &rq, false),
                                                    cc, &lut);
            if (k == 0xFFFF)
                _mm_storeu_si128((__m128i *)(void *)(out + j), codes);
            else
                _mm_mask_storeu_epi8(out + j, k, codes);
        }
    }
}

AVX512_TARGET void hqrt_i_dw_rows_avx512(const hqrt_i_prepared_t *prep,
                                         const hqrt_conv_params_t *kp, hqrt_dims_t in,
                                         const uint8_t *input, const int64_t *bias,
                                         const hqrt_addend_t *addend, hqrt_dims_t out,
                                         uint8_t *output, int64_t row_begin, int64_t row_end,
                                         uint8_t *scratch)
{
    const int32_t c = in.c;
    const size_t cpad = (size_t)prep->depth_padded; /* channels rounded up to 32 */
    const int64_t taps = prep->depth, pairs = (taps + 1) / 2;
    const int32_t *weights = prep->packed;               /* [taps][cpad] int32 */
    const int32_t *wsum = weights + (size_t)taps * cpad; /* [cpad] sum of each channel's taps */
    const int16_t *pairs16 = (const int16_t *)(const void *)(wsum + cpad);
    /* the prepared int32 stage (prep->finish), the lut's codes after its blocks */
    const hqrt_i_fin_t *fin = prep->finish;
    const int32_t *lut_area = fin ? (const int32_t *)(const void *)(fin + cpad / 16) : NULL;
    const int32_t *lut32 = kp->out.lut ? lut_area : NULL;
    const int32_t bits = kp->out.out_bits;
    const size_t esize = bits == 16 ? 2u : 1u;
    /* the quads when the call's rows amortize the kernel_h - 1 quad rows above its first one
     * (threads sharing a small layer take pieces of one or two rows: the paired taps, which
     * prepare nothing per call, measured faster there) */
    if (prep->dw_quads && !addend && (row_end - row_begin) >= 2 * ((int64_t)kp->kernel_h - 1)) {
        hqrt_i_dwq_rows(prep, kp, in, input, bias, out, output, row_begin, row_end, scratch);
        return;
    }
    if (prep->direct && !addend) { /* a 1x1 window over whole rows (prepare checked) */
        const size_t n = (size_t)out.w * (size_t)c;
        for (int64_t oy = row_begin; oy < row_end; oy++)
            flat_row(&kp->out, lut_area + HQRT_I_LUT_BYTES / sizeof(int32_t), flat_period(taps, c),
                     lut32, prep->lut_vbmi, input + (size_t)oy * n, (int64_t)n,
                     output + (size_t)oy * n);
        return;
    }
    /* scratch: the row's sums [out.w][c], then the bias as int32 (when it folds), the paired
     * sums' starting values (both [cpad] int32), those of a pixel group (32 int32) and a row of
     * cpad in_zp codes */
    int32_t *sums = (int32_t *)(void *)scratch;
    int32_t *bias32 = sums + ((size_t)out.w * (size_t)c + 15) / 16 * 16;
    int32_t *init = bias32 + cpad, *group_init = init + cpad;
    uint8_t *zp_row = (uint8_t *)(void *)(group_init + 32);
    memset(zp_row, kp->in_zp, cpad);
    const bool fold = hqrt_i_bias_folds(bias, c, taps);
    for (size_t o = 0; o < cpad; o++) {
        bias32[o] = fold && o < (size_t)c ? (int32_t)bias[o] : 0;
        /* wraps only where the sums it starts, which end inside int32, wrap back */
        init[o] = (int32_t)((uint32_t)bias32[o] - (uint32_t)kp->in_zp * (uint32_t)wsum[o]);
    }
    const int64_t *stage_bias = fold ? NULL : bias;
    bool wide = fin != NULL; /* no channel pre-shifts its sum (finish_row) */
    for (size_t l = 0; wide && l < cpad; l++)
        wide = fin[l / 16].left[l % 16] == 0;
    const bool paired = taps <= HQRT_DW_PAIR_TAPS;
    /* pixel groups: at stride 1, when both ends of the group's windows lie inside the input */
    const int32_t gp = kp->stride_w == 1 && paired ? group_pixels(c) : 1;
    const int16_t *gpairs16 = gp > 1 ? group_pairs(weights, taps, c, (int64_t)cpad) : NULL;
    for (int l = 0; gp > 1 && l < 32; l++)
        group_init[l] = init[l % c];
    size_t toff[HQRT_DW_PAIR_TAPS + 1];
    for (int64_t t = 0; paired && t < taps; t++)
        toff[t] = ((size_t)(t / kp->kernel_w) * (size_t)kp->dilation_h * (size_t)in.w +
                   (size_t)(t % kp->kernel_w) * (size_t)kp->dilation_w) *
                  (size_t)c;
    const uint8_t *src[HQRT_DW_PAIR_TAPS + 1];
    src[paired ? taps : 0] = zp_row; /* an odd last tap's partner, under weight 0 */
    for (int64_t oy = row_begin; oy < row_end; oy++) {
        const int64_t y0 = oy * kp->stride_h - kp->pad_top;
        int32_t ky0, ky1;
        taps_inside(y0, kp->kernel_h, kp->dilation_h, in.h, &ky0, &ky1);
        const bool rows_inside = paired && ky0 == 0 && ky1 == kp->kernel_h;
        for (int64_t ox = 0; ox < out.w; ox++) {
            int32_t *acc = sums + (size_t)ox * (size_t)c;
            const int64_t x0 = ox * kp->stride_w - kp->pad_left;
            if (gp > 1 && rows_inside && ox + gp <= out.w && x0 >= 0 &&
                x0 + gp - 1 + (int64_t)(kp->kernel_w - 1) * kp->dilation_w < in.w) {
                const uint8_t *first = input + ((size_t)y0 * (size_t)in.w + (size_t)x0) * (size_t)c;
                for (int64_t t = 0; t < taps; t++)
                    src[t] = first + toff[t];
                pixel_sums(32, src, pairs, gpairs16, 64, group_init, acc);
                ox += gp - 1;
                continue;
            }
            int32_t kx0, kx1;
            taps_inside(x0, kp->kernel_w, kp->dilation_w, in.w, &kx0, &kx1);
            if (!paired) { /* a window too large for the paired taps */
                border_pixel(kp, in, input, weights, cpad, bias32, y0, ky0, ky1, x0, kx0, kx1, acc);
                continue;
            }
            if (rows_inside && kx0 == 0 && kx1 == kp->kernel_w) {
                const uint8_t *first = input + ((size_t)y0 * (size_t)in.w + (size_t)x0) * (size_t)c;
                for (int64_t t = 0; t < taps; t++)
                    src[t] = first + toff[t];
            } else { /* the taps outside the input read in_zp codes */
                for (int64_t t = 0; t < taps; t++) {
                    const int32_t ky = (int32_t)(t / kp->kernel_w),
                                  kx = (int32_t)(t % kp->kernel_w);
                    src[t] =
                        ky >= ky0 && ky < ky1 && kx >= kx0 && kx < kx1
                            ? input + ((size_t)(y0 + (int64_t)ky * kp->dilation_h) * (size_t)in.w +
                                       (size_t)(x0 + (int64_t)kx * kp->dilation_w)) *
                                          (size_t)c
                            : zp_row;
                }
            }
            pixel_sums(c, src, pairs, pairs16, cpad * 2, init, acc);
        }
        uint8_t *row_out = output + (size_t)oy * (size_t)out.w * (size_t)c * esize;
        if (!addend && fin) {
            finish_row(&kp->out, fin, lut32, prep->lut_vbmi, wide, sums, c, out.w, row_out);
            continue;
        }
        if (!addend) {
            hqrt_i_stage_pixels(HQRT_ISA_AVX512, &kp->out, sums, stage_bias, c, out.w, row_out);
            continue;
        }
        for (int64_t ox = 0; ox < out.w; ox++) {
            const size_t base = ((size_t)oy * (size_t)out.w + (size_t)ox) * (size_t)c;
            hqrt_i_stage_row_addend(HQRT_ISA_AVX512, &kp->out, sums + (size_t)ox * (size_t)c,
                                    stage_bias, 0, c, addend, base, output + base * esize);
        }
    }
}

/* ---- AVX2 -------------------------------------------------------------------------------------
 * Exact sums in float lanes: a centred code times a weight is an integer of magnitude at most
 * 255 * 128 = 32640, and a sum of at most DW_FLOAT_TAPS of them stays below 2^24, inside which
 * every integer is a float. A fused multiply-add rounds its exact result once, and that result is
 * such an integer, so each step is exact and the float sum of a window's taps is the reference's
 * integer sum, whatever the order. Windows of more taps add the float sum of every DW_FLOAT_TAPS
 * taps (whole kernel rows) into int32 lanes, exact for the taps prepare allows.
 *
 * Each input row a thread's output rows read is widened once into a row buffer: the centred codes
 * as floats, channel group (8 channels) by group, each group's columns contiguous, zeros in the
 * pad columns left and right, so that border windows take the same path as the others; a kernel
 * row wholly outside the input is left out of the window's rows. Buffers stay in slots keyed by
 * the input row while the next output rows read them. Output pixels then go DW_STEP at a time
 * through one group of 8 channels: 8 accumulators (the fused multiply-add's latency) per weight
 * vector, read from the buffer at constant offsets for the common windows at stride 1 (3x3, 5x5,
 * 7x7, 1x1), so that the compiler reuses a loaded input vector for the next pixel's next tap. A
 * row's int32 sums (the bias added, when it folds) then go through hqrt_i_stage_pixels, or with
 * a residual addend hqrt_i_stage_row_addend per pixel.
 *
 * Windows of at most HQRT_DW_PAIR_TAPS taps at a horizontal stride of 2 or more run the
 * paired-tap kernel instead (dw_pairs_rows, prep->direct): there every output pixel of a row
 * would widen four input pixels, which costs more than it saves (per-layer CPU time on
 * mobilenet_v2, mobilenet_v3_large, efficientnet_b0 and PP-OCRv4 det: 0.55-0.8x that kernel's
 * speed at stride 2). */
#define DW_FLOAT_TAPS 512
#define DW_STEP 8
#define DW_MAX_SLOTS 64 /* kernels taller than this (dilated) widen their rows per output row */

#define AVX2_TARGET __attribute__((target("avx2,fma")))

/* Where the AVX2 kernel keeps things in its scratch, from the op's shapes alone. */
typedef struct dw2_layout {
    int64_t groups; /* of 8 channels: (c + 7) / 8 */
    int64_t width;  /* buffer columns: column i holds input column i - pad_left */
    int64_t span;   /* input rows one output row's window covers */
    int64_t slots;  /* row buffers: span when at most DW_MAX_SLOTS, else kernel_h */
    size_t bias32, tags, ptrs, rows, bytes; /* byte offsets of each area, and the total */
} dw2_layout_t;

static dw2_layout_t dw2_layout(const hqrt_conv_params_t *kp, hqrt_dims_t in, hqrt_dims_t out)
{
    dw2_layout_t l;
    const int64_t steps = (out.w + DW_STEP - 1) / DW_STEP;
    l.groups = ((int64_t)in.c + 7) / 8;
    /* the last step's pixels past out.w read columns too */
    l.width =
        (steps * DW_STEP - 1) * kp->stride_w + (int64_t)(kp->kernel_w - 1) * kp->dilation_w + 1;
    l.span = (int64_t)(kp->kernel_h - 1) * kp->dilation_h + 1;
    l.slots = l.span <= DW_MAX_SLOTS ? l.span : kp->kernel_h;
    /* the row's sums [steps * DW_STEP][c] int32 and 8 more: the last step's pixels past out.w and
     * the lanes past c of the last group are stored too */
    size_t at = ((size_t)(steps * DW_STEP * in.c) + 8) * sizeof(int32_t);
    l.bias32 = at;
    at += (size_t)(l.groups * 8) * sizeof(int32_t);
    l.tags = at; /* the input row each slot holds, or -1 */
    at += (size_t)l.slots * sizeof(int64_t);
    l.ptrs = at; /* per kernel row inside the input: its buffer and its weights */
    at += (size_t)(2 * kp->kernel_h) * sizeof(void *);
    l.rows = at; /* [slots][groups][width][8] float, from the next 32-byte boundary */
    at += (size_t)(l.slots * l.groups * l.width * 8) * sizeof(float) + 32;
    l.bytes = at;
    return l;
}

/* Input row `src` (in_w pixels of c codes) into a row buffer: column i of group g at
 * dst[(g * width + i) * 8], the centred codes as floats, 0 in the pad columns and in the lanes
 * past c. `room`: readable bytes from src on (the input's end), so that the last group's 8-byte
 * load stays inside it; where it would not, that group is read code by code. */
AVX2_TARGET static void dw2_widen_row(const uint8_t *src, int64_t room, int32_t in_w, int32_t c,
                                      int32_t in_zp, int64_t pad_left, const dw2_layout_t *l,
                                      float *dst)
{
    const int64_t width = l->width, groups = l->groups, full = c / 8;
    const int64_t lo = pad_left < width ? pad_left : width;
    const int64_t hi = pad_left + in_w < width ? pad_left + in_w : width;
    for (int64_t g = 0; g < groups; g++) {
        float *d = dst + (size_t)(g * width) * 8;
        memset(d, 0, (size_t)lo * 8 * sizeof(float));
        memset(d + hi * 8, 0, (size_t)(width - hi) * 8 * sizeof(float));
    }
    const __m256i zp = _mm256_set1_epi32(in_zp);
    /* the last group's lanes past c read the next pixel's codes (weight 0, so they add 0) */
    const __m256i keep = _mm256_cmpgt_epi32(_mm256_set1_epi32(c - (int32_t)full * 8),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    /* group by group, so that the stores run along a group's columns */
    for (int64_t g = 0; g < full; g++) {
        const uint8_t *s = src + (size_t)(lo - pad_left) * (size_t)c + (size_t)(8 * g);
        float *d = dst + (size_t)(g * width + lo) * 8;
        for (int64_t i = lo; i < hi; i++, s += c, d += 8) {
            const __m256i q =
                _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)s));
            _mm256_storeu_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(q, zp)));
        }
    }
    if (full == groups)
        return;
    float *d = dst + (size_t)(full * width) * 8;
    for (int64_t i = lo; i < hi; i++) {
        const uint8_t *s = src + (size_t)(i - pad_left) * (size_t)c + (size_t)(8 * full);
        const int64_t at = (i - pad_left) * c + full * 8;
        __m256i q;
        if (room - at >= 8) {
            q = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)s));
        } else {
            int32_t v[8] = {0};
            for (int32_t ch = 0; ch < c - full * 8; ch++)
                v[ch] = s[ch];
            q = _mm256_loadu_si256((const __m256i *)(const void *)v);
        }
        q = _mm256_and_si256(_mm256_sub_epi32(q, zp), keep);
        _mm256_storeu_ps(d + (size_t)i * 8, _mm256_cvtepi32_ps(q));
    }
}

/* The float sums a[j] of DW_STEP pixels over kernel rows [r0, r1) (one group's buffers rows[r]
 * from column `off`, weights wrows[r] [kw][8]); kw, sw, dw: constants where inlined. */
AVX2_TARGET static inline __attribute__((always_inline)) void
dw2_float_sums(const float *const *rows, const float *const *wrows, int64_t r0, int64_t r1,
               size_t off, int kw, int sw, int dw, __m256 *a)
{
#pragma GCC unroll 8
    for (int j = 0; j < DW_STEP; j++)
        a[j] = _mm256_setzero_ps();
    for (int64_t r = r0; r < r1; r++) {
        const float *x = rows[r] + off, *w = wrows[r];
        for (int kx = 0; kx < kw; kx++) {
            const __m256 wv = _mm256_loadu_ps(w + kx * 8);
#pragma GCC unroll 8
            for (int j = 0; j < DW_STEP; j++)
                a[j] =
                    _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + (size_t)(j * sw + kx * dw) * 8), a[j]);
        }
    }
}

/* One group's pass over an output row: rows[r] (r < nrows) the buffers (this group's) of the
 * kernel rows inside the input, wrows[r] their weights; DW_STEP pixels per step, each pixel's
 * sums (b plus the float sums of `chunk` kernel rows at a time) stored at sums + ox * c: all 8
 * lanes, pixel after pixel, so that the lanes a group past c stores into the next pixel are
 * stored again by that pixel (see hqrt_i_dw_rows_avx2's group order). One float sum (the
 * common case) goes straight to the stores; more are added up in int32 lanes first. */
AVX2_TARGET static inline __attribute__((always_inline)) void
dw2_group(const float *const *rows, const float *const *wrows, int64_t nrows, int64_t chunk, int kw,
          int sw, int dw, __m256i b, int64_t out_w, int32_t c, int32_t *sums)
{
    __m256 a[DW_STEP];
    if (nrows <= chunk) {
        for (int64_t ox = 0; ox < out_w; ox += DW_STEP) {
            dw2_float_sums(rows, wrows, 0, nrows, (size_t)(ox * sw) * 8, kw, sw, dw, a);
            int32_t *dst = sums + (size_t)ox * (size_t)c;
#pragma GCC unroll 8
            for (int j = 0; j < DW_STEP; j++)
                _mm256_storeu_si256((__m256i *)(void *)(dst + (size_t)j * (size_t)c),
                                    _mm256_add_epi32(b, _mm256_cvtps_epi32(a[j])));
        }
        return;
    }
    for (int64_t ox = 0; ox < out_w; ox += DW_STEP) {
        __m256i s[DW_STEP];
#pragma GCC unroll 8
        for (int j = 0; j < DW_STEP; j++)
            s[j] = b;
        for (int64_t r0 = 0; r0 < nrows; r0 += chunk) {
            const int64_t r1 = nrows - r0 < chunk ? nrows : r0 + chunk;
            dw2_float_sums(rows, wrows, r0, r1, (size_t)(ox * sw) * 8, kw, sw, dw, a);
#pragma GCC unroll 8
            for (int j = 0; j < DW_STEP; j++)
                s[j] = _mm256_add_epi32(s[j], _mm256_cvtps_epi32(a[j]));
        }
        int32_t *dst = sums + (size_t)ox * (size_t)c;
#pragma GCC unroll 8
        for (int j = 0; j < DW_STEP; j++)
            _mm256_storeu_si256((__m256i *)(void *)(dst + (size_t)j * (size_t)c), s[j]);
    }
}

#define DW2_GROUP(name, KW, SW, DL)                                                                \
    AVX2_TARGET __attribute__((noinline)) static void name(                                        \
        const float *const *rows, const float *const *wrows, int64_t nrows, int64_t chunk,         \
        __m256i b, int64_t out_w, int32_t c, int32_t *sums)                                        \
    {                                                                                              \
        dw2_group(rows, wrows, nrows, chunk, KW, SW, DL, b, out_w, c, sums);                       \
    }
DW2_GROUP(dw2_group_1x1, 1, 1, 1)
DW2_GROUP(dw2_group_3x3, 3, 1, 1)
DW2_GROUP(dw2_group_5x5, 5, 1, 1)
DW2_GROUP(dw2_group_7x7, 7, 1, 1)
#undef DW2_GROUP

/* Any other window: kw, stride and dilation at run time. */
AVX2_TARGET __attribute__((noinline)) static void
dw2_group_any(const float *const *rows, const float *const *wrows, int64_t nrows, int64_t chunk,
              int kw, int sw, int dw, __m256i b, int64_t out_w, int32_t c, int32_t *sums)
{
    dw2_group(rows, wrows, nrows, chunk, kw, sw, dw, b, out_w, c, sums);
}

/* The paired-tap kernel, for strides of 2 and more (prep->direct), where widening the input
 * rows (four input pixels per output pixel at stride 2) costs more than it saves: channels in
 * lanes, windows inside the input 16 channels at a time, the centred codes of two taps
 * interleaved as int16 pairs (vpunpck[lh]wd) and summed by vpmaddwd against weights packed per
 * pair in that lane order; border windows and the last channels 8 lanes at a time, vpmulld; int32
 * sums from the folded bias, then the same output stage calls as below. */
AVX2_TARGET static void dw_pairs_rows(const hqrt_i_prepared_t *prep, const hqrt_conv_params_t *kp,
                                      hqrt_dims_t in, const uint8_t *input, const int64_t *bias,
                                      const hqrt_addend_t *addend, hqrt_dims_t out, uint8_t *output,
                                      int64_t row_begin, int64_t row_end, uint8_t *scratch)
{
    const int32_t c = in.c;
    const int64_t cpad = prep->depth_padded; /* channels rounded up to 8 */
    const int32_t *weights = prep->packed;   /* [kh*kw][cpad] int32 */
    int32_t *acc = (int32_t *)(void *)scratch;
    const __m256i zp = _mm256_set1_epi32(kp->in_zp);
    const int32_t bits = kp->out.out_bits;
    const int isa = hqrt_i_vector_isa();
    /* no addend: a whole row's sums, then one output stage for the row */
    const bool by_row = !addend;
    /* the bias as int32 starting values when it folds (after the row's sums in scratch) */
    int32_t *bias32 = (int32_t *)(void *)scratch + prep->scratch / sizeof(int32_t) - cpad;
    const bool fold = hqrt_i_bias_folds(bias, c, prep->depth);
    for (int32_t o = 0; o < cpad; o++)
        bias32[o] = fold && o < c ? (int32_t)bias[o] : 0;
    const int64_t *stage_bias = fold ? NULL : bias;
    /* windows inside the input, 16 channels at a time: vpmaddwd on pairs of taps (tap offsets
     * from the window's first pixel; weights after the int32 ones, see dw_pack_pairs) */
    const int64_t taps = (int64_t)kp->kernel_h * kp->kernel_w, pairs = (taps + 1) / 2;
    const int64_t groups = c / 16, gstride = cpad / 16;
    const int16_t *w16 = (const int16_t *)(const void *)(weights + taps * cpad);
    const __m256i zp16 = _mm256_set1_epi16((int16_t)kp->in_zp);
    size_t toff[HQRT_DW_PAIR_TAPS + 1];
    for (int64_t t = 0; t < taps && taps <= HQRT_DW_PAIR_TAPS; t++)
        toff[t] = ((size_t)(t / kp->kernel_w) * (size_t)kp->dilation_h * (size_t)in.w +
                   (size_t)(t % kp->kernel_w) * (size_t)kp->dilation_w) *
                  (size_t)c;
    toff[taps <= HQRT_DW_PAIR_TAPS ? taps : 0] = toff[0]; /* an odd last tap's partner: weight 0 */
    for (int64_t oy = row_begin; oy < row_end; oy++) {
        const int64_t y0 = oy * kp->stride_h - kp->pad_top;
        const bool rows_inside =
            y0 >= 0 && y0 + (int64_t)(kp->kernel_h - 1) * kp->dilation_h < in.h;
        for (int64_t ox = 0; ox < out.w; ox++) {
            if (by_row)
                acc = (int32_t *)(void *)scratch + ox * c;
            int64_t ch = 0;
            const int64_t x0 = ox * kp->stride_w - kp->pad_left;
            if (rows_inside && taps <= HQRT_DW_PAIR_TAPS && x0 >= 0 &&
                x0 + (int64_t)(kp->kernel_w - 1) * kp->dilation_w < in.w) {
                const uint8_t *first = input + ((size_t)y0 * (size_t)in.w + (size_t)x0) * (size_t)c;
                for (int64_t g = 0; g < groups; g++, ch += 16) {
                    __m256i lo = _mm256_setzero_si256(), hi = lo;
                    const int16_t *wp = w16 + g * 32;
                    for (int64_t pr = 0; pr < pairs; pr++, wp += gstride * 32) {
                        __m256i v0 = _mm256_sub_epi16(
                            _mm256_cvtepu8_epi16(_mm_loadu_si128(
                                (const __m128i *)(const void *)(first + toff[2 * pr] + ch))),
                            zp16);
                        __m256i v1 = _mm256_sub_epi16(
                            _mm256_cvtepu8_epi16(_mm_loadu_si128(
                                (const __m128i *)(const void *)(first + toff[2 * pr + 1] + ch))),
                            zp16);
                        /* channels 0-3 and 8-11 (lo), 4-7 and 12-15 (hi), taps paired */
                        lo = _mm256_add_epi32(
                            lo, _mm256_madd_epi16(
                                    _mm256_unpacklo_epi16(v0, v1),
                                    _mm256_load_si256((const __m256i *)(const void *)wp)));
                        hi = _mm256_add_epi32(
                            hi, _mm256_madd_epi16(
                                    _mm256_unpackhi_epi16(v0, v1),
                                    _mm256_load_si256((const __m256i *)(const void *)(wp + 16))));
                    }
                    __m256i s0 = _mm256_permute2x128_si256(lo, hi, 0x20);
                    __m256i s1 = _mm256_permute2x128_si256(lo, hi, 0x31);
                    _mm256_storeu_si256(
                        (__m256i *)(void *)(acc + ch),
                        _mm256_add_epi32(
                            s0, _mm256_loadu_si256((const __m256i *)(const void *)(bias32 + ch))));
                    _mm256_storeu_si256(
                        (__m256i *)(void *)(acc + ch + 8),
                        _mm256_add_epi32(s1, _mm256_loadu_si256((
                                                 const __m256i *)(const void *)(bias32 + ch + 8))));
                }
            }
            for (; ch + 8 <= c; ch += 8) {
                __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(bias32 + ch));
                for (int32_t ky = 0; ky < kp->kernel_h; ky++) {
                    int64_t y = oy * kp->stride_h - kp->pad_top + (int64_t)ky * kp->dilation_h;
                    if (y < 0 || y >= in.h)
                        continue;
                    for (int32_t kx = 0; kx < kp->kernel_w; kx++) {
                        int64_t x = ox * kp->stride_w - kp->pad_left + (int64_t)kx * kp->dilation_w;
                        if (x < 0 || x >= in.w)
                            continue;
                        const uint8_t *src =
                            input + ((size_t)y * (size_t)in.w + (size_t)x) * (size_t)c + ch;
                        __m128i b = _mm_loadl_epi64((const __m128i *)(const void *)src);
                        __m256i v = _mm256_sub_epi32(_mm256_cvtepu8_epi32(b), zp);
                        __m256i w = _mm256_load_si256(
                            (const __m256i *)(const void *)(weights +
                                                            (ky * kp->kernel_w + kx) * cpad + ch));
                        a = _mm256_add_epi32(a, _mm256_mullo_epi32(v, w));
                    }
                }
                _mm256_storeu_si256((__m256i *)(void *)(acc + ch), a);
            }
            for (; ch < c; ch++) { /* channel tail */
                int32_t a = bias32[ch];
                for (int32_t ky = 0; ky < kp->kernel_h; ky++) {
                    int64_t y = oy * kp->stride_h - kp->pad_top + (int64_t)ky * kp->dilation_h;
                    if (y < 0 || y >= in.h)
                        continue;
                    for (int32_t kx = 0; kx < kp->kernel_w; kx++) {
                        int64_t x = ox * kp->stride_w - kp->pad_left + (int64_t)kx * kp->dilation_w;
                        if (x < 0 || x >= in.w)
                            continue;
                        int32_t q =
                            input[((size_t)y * (size_t)in.w + (size_t)x) * (size_t)c + (size_t)ch] -
                            kp->in_zp;
                        a += q * weights[(ky * kp->kernel_w + kx) * cpad + ch];
                    }
                }
                acc[ch] = a;
            }
            if (by_row)
                continue;
            size_t base = ((size_t)oy * (size_t)out.w + (size_t)ox) * (size_t)c;
            if (addend)
                hqrt_i_stage_row_addend(isa, &kp->out, acc, stage_bias, 0, c, addend, base,
                                        output + base * (bits == 16 ? 2u : 1u));
            else
                hqrt_i_stage_row(isa, &kp->out, acc, stage_bias, 0, c,
                                 output + base * (bits == 16 ? 2u : 1u));
        }
        if (by_row)
            hqrt_i_stage_pixels(
                isa, &kp->out, (const int32_t *)(const void *)scratch, stage_bias, c, out.w,
                output + (size_t)oy * (size_t)out.w * (size_t)c * (bits == 16 ? 2u : 1u));
    }
}

AVX2_TARGET void hqrt_i_dw_rows_avx2(const hqrt_i_prepared_t *prep, const hqrt_conv_params_t *kp,
                                     hqrt_dims_t in, const uint8_t *input, const int64_t *bias,
                                     const hqrt_addend_t *addend, hqrt_dims_t out, uint8_t *output,
                                     int64_t row_begin, int64_t row_end, uint8_t *scratch)
{
    if (prep->direct) {
        dw_pairs_rows(prep, kp, in, input, bias, addend, out, output, row_begin, row_end, scratch);
        return;
    }
    const int32_t c = in.c;
    const dw2_layout_t l = dw2_layout(kp, in, out);
    const int64_t taps = prep->depth, kw = kp->kernel_w;
    const float *wf = prep->packed; /* [groups][taps][8] */
    int32_t *sums = (int32_t *)(void *)scratch;
    int32_t *bias32 = (int32_t *)(void *)(scratch + l.bias32);
    int64_t *tags = (int64_t *)(void *)(scratch + l.tags);
    const float **rows = (const float **)(void *)(scratch + l.ptrs);
    const float **wrows = rows + kp->kernel_h;
    float *buffers = (float *)(((uintptr_t)(scratch + l.rows) + 31) & ~(uintptr_t)31);
    const size_t slot_floats = (size_t)(l.groups * l.width) * 8;
    const bool fold = hqrt_i_bias_folds(bias, c, taps);
    for (int64_t o = 0; o < l.groups * 8; o++)
        bias32[o] = fold && o < c ? (int32_t)bias[o] : 0;
    const int64_t *stage_bias = fold ? NULL : bias;
    for (int64_t s = 0; s < l.slots; s++)
        tags[s] = -1;
    const int64_t chunk = DW_FLOAT_TAPS / kw; /* kernel rows per float sum (prepare: >= 1) */
    const int sw = kp->stride_w, dl = kp->dilation_w;
    const size_t esize = kp->out.out_bits == 16 ? 2u : 1u, row_codes = (size_t)in.w * (size_t)c;
    const int64_t room = (int64_t)in.h * (int64_t)row_codes;
    const int isa = hqrt_i_vector_isa();
    /* the group with lanes past c first: its stores into the next pixel's first channels are
     * then stored again by the full groups (or, with fewer than 8 channels, by that pixel) */
    const int64_t full = c / 8, first = full < l.groups ? full : 0;
    for (int64_t oy = row_begin; oy < row_end; oy++) {
        const int64_t y0 = oy * kp->stride_h - kp->pad_top;
        int64_t nrows = 0;
        for (int32_t ky = 0; ky < kp->kernel_h; ky++) {
            const int64_t y = y0 + (int64_t)ky * kp->dilation_h;
            if (y < 0 || y >= in.h)
                continue;
            const int64_t slot = l.span <= DW_MAX_SLOTS ? y % l.span : ky;
            float *buf = buffers + (size_t)slot * slot_floats;
            if (tags[slot] != y) {
                dw2_widen_row(input + (size_t)y * row_codes, room - y * (int64_t)row_codes, in.w, c,
                              kp->in_zp, kp->pad_left, &l, buf);
                tags[slot] = y;
            }
            rows[nrows] = buf;
            wrows[nrows++] = wf + (size_t)(ky * kw) * 8;
        }
        for (int64_t k = 0; k < l.groups; k++) {
            const int64_t g = (first + k) % l.groups;
            const __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(bias32 + g * 8));
            const size_t goff = (size_t)(g * l.width) * 8, woff = (size_t)(g * taps) * 8;
            for (int64_t r = 0; r < nrows; r++) {
                rows[r] += goff;
                wrows[r] += woff;
            }
            int32_t *gs = sums + g * 8;
            if (dl != 1 || sw != 1 || (kw != 1 && kw != 3 && kw != 5 && kw != 7))
                dw2_group_any(rows, wrows, nrows, chunk, (int)kw, sw, dl, b, out.w, c, gs);
            else if (kw == 1)
                dw2_group_1x1(rows, wrows, nrows, chunk, b, out.w, c, gs);
            else if (kw == 3)
                dw2_group_3x3(rows, wrows, nrows, chunk, b, out.w, c, gs);
            else if (kw == 5)
                dw2_group_5x5(rows, wrows, nrows, chunk, b, out.w, c, gs);
            else
                dw2_group_7x7(rows, wrows, nrows, chunk, b, out.w, c, gs);
            for (int64_t r = 0; r < nrows; r++) {
                rows[r] -= goff;
                wrows[r] -= woff;
            }
        }
        uint8_t *row_out = output + (size_t)oy * (size_t)out.w * (size_t)c * esize;
        if (!addend) {
            hqrt_i_stage_pixels(isa, &kp->out, sums, stage_bias, c, out.w, row_out);
            continue;
        }
        for (int64_t ox = 0; ox < out.w; ox++) {
            const size_t base = ((size_t)oy * (size_t)out.w + (size_t)ox) * (size_t)c;
            hqrt_i_stage_row_addend(isa, &kp->out, sums + (size_t)ox * (size_t)c, stage_bias, 0, c,
                                    addend, base, output + base * esize);
        }
    }
}

/* Most taps of a depthwise window the fast kernels take: every int32 lane stays exact. */
#define DW_MAX_TAPS 65536

hqrt_status_t hqrt_i_dw_prepare(const hqrt_conv_params_t *kp, hqrt_dims_t in, hqrt_dims_t out,
                                const void *w, const int64_t *bias, const char *name,
                                hqrt_i_prepared_t *prep, hqrt_error_t *err)
{
    const int32_t cout = out.c;
    int64_t taps = (int64_t)kp->kernel_h * kp->kernel_w;
    if (taps > DW_MAX_TAPS)
        return HQRT_OK;
    if (hqrt_i_vector_isa() == HQRT_ISA_AVX512) {
        const int64_t cpad = ((int64_t)in.c + 31) / 32 * 32;
        /* the pairs' layout, then (64-aligned) the quads' weights when they apply */
        const size_t bytes = (hqrt_i_dw512_packed_bytes(taps, in.c, cpad) + 63) / 64 * 64;
        const bool quads = hqrt_i_dwq_apply(kp, taps);
        const size_t quad_bytes = quads ? hqrt_i_dwq_weight_bytes(kp, cpad) : 0;
        int32_t *packed = aligned_alloc(64, (bytes + quad_bytes + 63) / 64 * 64);
        if (!packed)
            return hqrt_i_fail(err, HQRT_ERR_NOMEM, "%s: out of memory", name);
        const int fin = hqrt_i_dw512_pack(kp, w, bias, taps, in.c, cpad, packed);
        if (quads)
            hqrt_i_dwq_pack(kp, packed, cpad, (int32_t *)(void *)((uint8_t *)packed + bytes));
        /* a 1x1 window, stride 1, no pads: each output row is its input row, run flat */
        const bool flat = (fin & 2) && kp->stride_h == 1 && kp->stride_w == 1 && kp->pad_top == 0 &&
                          kp->pad_left == 0 && kp->pad_bottom == 0 && kp->pad_right == 0 &&
                          out.h == in.h && out.w == in.w;
        /* the quads take every layer with the int32 stage but the flat rows */
        const bool dw_quads = quads && (fin & 1) && !flat;
        size_t scratch = hqrt_i_dw512_scratch(out.w, in.c, cpad);
        if (dw_quads && hqrt_i_dwq_scratch(kp, out.w, in.c) > scratch)
            scratch = hqrt_i_dwq_scratch(kp, out.w, in.c);
        *prep = (hqrt_i_prepared_t){.fast = true,
                                    .kind = HQRT_KIND_DW512,
                                    .direct = flat,
                                    .rows = out.h,
                                    .packed = packed,
                                    .depth = taps,
                                    .depth_padded = cpad,
                                    .scratch = scratch,
                                    .finish =
                                        (fin & 1) ? hqrt_i_dw512_finish(packed, taps, cpad) : NULL,
                                    .lut_vbmi = kp->out.lut && hqrt_i_lut_vbmi(),
                                    .dw_quads = dw_quads};
        return HQRT_OK;
    }
    if (kp->stride_w >= 2 && taps <= HQRT_DW_PAIR_TAPS) { /* the paired-tap kernel */
        int64_t cpad = ((int64_t)in.c + 15) / 16 * 16;    /* groups of 16 channels */
        /* [taps][cpad] int32, then (AVX2) the pairs of taps [pairs][cpad / 16][32] int16 */
        const int64_t pairs = (taps + 1) / 2;
        size_t bytes =
            (size_t)(taps * cpad) * sizeof(int32_t) + (size_t)(pairs * cpad * 2) * sizeof(int16_t);
        int32_t *packed = aligned_alloc(64, (bytes + 63) / 64 * 64);
        if (!packed)
            return hqrt_i_fail(err, HQRT_ERR_NOMEM, "%s: out of memory", name);
        memset(packed, 0, bytes);
        for (int64_t t = 0; t < taps; t++)
            for (int32_t ch = 0; ch < cout; ch++)
                packed[t * cpad + ch] =
                    hqrt_i_weight_at(w, kp->weight_bits, (size_t)(t * cout + ch));
        /* per pair and group of 16 channels: the lanes of vpunpcklwd (channels 0-3, 8-11) then
         * of vpunpckhwd (4-7, 12-15), each channel's two taps adjacent; an odd last tap's
         * partner weighs 0 */
        int16_t *pairs16 = (int16_t *)(void *)(packed + taps * cpad);
        static const int lane_channel[16] = {0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15};
        for (int64_t pr = 0; pr < pairs; pr++)
            for (int64_t g = 0; g < cpad / 16; g++)
                for (int l = 0; l < 16; l++)
                    for (int e = 0; e < 2; e++) {
                        const int64_t t = 2 * pr + e, ch = g * 16 + lane_channel[l];
                        pairs16[((pr * (cpad / 16) + g) * 16 + l) * 2 + e] =
                            t < taps && ch < cout ? (int16_t)packed[t * cpad + ch] : 0;
                    }
        *prep = (hqrt_i_prepared_t){
            .fast = true,
            .kind = HQRT_KIND_DW,
            .direct = true,
            .rows = out.h,
            .packed = packed,
            .depth = taps,
            .depth_padded = cpad,
            /* the sums of a row, then the bias as int32 */
            .scratch =
                (size_t)((out.w * in.c > cpad ? out.w * in.c : cpad) + cpad) * sizeof(int32_t)};
        return HQRT_OK;
    }
    /* the AVX2 kernel's float sums: whole kernel rows of at most DW_FLOAT_TAPS taps; centred
     * codes in [-255, 255] (pads cannot be negative, but the kernel's buffers assume it) */
    if (kp->kernel_w > DW_FLOAT_TAPS || kp->in_zp < 0 || kp->in_zp > 255 || kp->pad_left < 0 ||
        kp->pad_top < 0)
        return HQRT_OK;
    const dw2_layout_t l = dw2_layout(kp, in, out);
    /* [groups][taps][8] float: a group's weights tap after tap, 0 past c */
    const size_t bytes = (size_t)(l.groups * taps * 8) * sizeof(float);
    float *packed = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!packed)
        return hqrt_i_fail(err, HQRT_ERR_NOMEM, "%s: out of memory", name);
    memset(packed, 0, bytes);
    for (int64_t t = 0; t < taps; t++)
        for (int32_t ch = 0; ch < cout; ch++)
            packed[((ch / 8) * taps + t) * 8 + ch % 8] =
                (float)hqrt_i_weight_at(w, kp->weight_bits, (size_t)(t * cout + ch));
    *prep = (hqrt_i_prepared_t){.fast = true,
                                .kind = HQRT_KIND_DW,
                                .rows = out.h,
                                .packed = packed,
                                .depth = taps,
                                .depth_padded = l.groups * 8,
                                .scratch = l.bytes};
    return HQRT_OK;
}
#endif
