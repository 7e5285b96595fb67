/* hqrt_kernels_dwq.c — the AVX-512 depthwise rows on quads of columns (vpdpbusd), which the
 * depthwise prepare and AVX-512 kernel of hqrt_kernels_dw.c call. With AVX512-VNNI, a window
 * without dilation, at stride 1 across, with 8-bit (or 4-bit) weights and the prepared int32
 * stage (no addend) runs on vpdpbusd: each input row the window needs is rewritten once per call
 * into a row of quads, quad x holding for each channel the codes of the padded row's columns x ..
 * x + 3 as the four bytes of an int32 lane (columns outside the input: in_zp), so that the taps
 * kx = 4q .. 4q + 3 of kernel row ky are one vpdpbusd of the quad at ox + 4q against the weights
 * of those four taps (weight 0 past kw). 16 channels per step, their sums kept in registers from
 * init = bias - in_zp * sum(w) (as the paired taps start; a column or row of pads reads in_zp
 * codes, which init cancels, as the reference's pad adds 0) straight to the int32 output stage.
 * Sums of u8 x s8 products, exact in int32 for the taps prepare allows (the reference's int64
 * sums, as the paired taps). A quad row is built once per call and kept while the window's rows
 * move down (kernel_h slots, input row iy in slot iy % kernel_h). */

#include <stdlib.h>
#include <string.h>

#include "hqrt_kernels_fast_internal.h"

#ifdef HQRT_HAVE_AVX2_BUILD

/* Windows up to this wide take the quads (two quads per kernel row). */
#define DW_QUAD_MAX_W 8

static int32_t quads_per_row(int32_t kernel_w)
{
    return (kernel_w + 3) / 4;
}

bool hqrt_i_dwq_apply(const hqrt_conv_params_t *kp, int64_t taps)
{
    return hqrt_i_cpu_has_vnni() && kp->stride_w == 1 && kp->dilation_h == 1 &&
           kp->dilation_w == 1 && kp->weight_bits <= 8 && kp->in_bits == 8 &&
           kp->kernel_w <= DW_QUAD_MAX_W && taps <= HQRT_DW_PAIR_TAPS && taps > 1 &&
           !getenv("HQRT_NO_DW_QUADS");
}

/* Bytes of the quads' weights: [kernel_h][quads][cpad] int32 (four int8 taps per lane). */
size_t hqrt_i_dwq_weight_bytes(const hqrt_conv_params_t *kp, int64_t cpad)
{
    return (size_t)((int64_t)kp->kernel_h * quads_per_row(kp->kernel_w) * cpad) * sizeof(int32_t);
}

/* Channels per quad pixel: c rounded up to 16. */
static int64_t quad_channels(int32_t c)
{
    return ((int64_t)c + 15) / 16 * 16;
}

/* Quads per quad row: every column a window of the output row reads, and a whole last quad. */
static int64_t quad_row_width(const hqrt_conv_params_t *kp, int64_t out_w)
{
    return (out_w - 1) * kp->stride_w + 4 * (int64_t)quads_per_row(kp->kernel_w);
}

/* Scratch of the quads: kernel_h quad rows and one of in_zp codes, the init of each channel. */
size_t hqrt_i_dwq_scratch(const hqrt_conv_params_t *kp, int64_t out_w, int32_t c)
{
    const int64_t cq = quad_channels(c);
    return (size_t)(((int64_t)kp->kernel_h + 1) * quad_row_width(kp, out_w) * cq + cq) *
           sizeof(int32_t);
}

/* The quads' weights from the pack's [taps][cpad] int32 copy. */
void hqrt_i_dwq_pack(const hqrt_conv_params_t *kp, const int32_t *weights, int64_t cpad,
                     int32_t *quads)
{
    const int32_t nq = quads_per_row(kp->kernel_w);
    memset(quads, 0, hqrt_i_dwq_weight_bytes(kp, cpad));
    for (int32_t ky = 0; ky < kp->kernel_h; ky++)
        for (int32_t kx = 0; kx < kp->kernel_w; kx++)
            for (int64_t ch = 0; ch < cpad; ch++) {
                int8_t *lane = (int8_t *)(void *)&quads[((int64_t)ky * nq + kx / 4) * cpad + ch];
                lane[kx % 4] = (int8_t)weights[((int64_t)ky * kp->kernel_w + kx) * cpad + ch];
            }
}

#define QUAD_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")))

/* Quad row of input row `row` (NULL: a row of pads): quads [0, width) of the columns from
 * -pad_left, cq int32 per quad. */
QUAD_TARGET static void quad_row(const uint8_t *row, int32_t c, int64_t cq, int64_t in_w,
                                 int64_t first, int64_t width, int32_t zp, int32_t *dst)
{
    const __m512i zpv = _mm512_set1_epi32(zp);
    for (int32_t ch = 0; ch < c; ch += 16) {
        const __mmask16 k = c - ch >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (c - ch)) - 1);
        __m512i s = _mm512_setzero_si512();
        for (int64_t j = -3; j < width; j++) { /* column first + j + 3 enters the quad's top byte */
            const int64_t x = first + j + 3;
            const __m512i b = row && x >= 0 && x < in_w ? _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(
                                                              k, row + (size_t)x * (size_t)c + ch))
                                                        : zpv;
            s = _mm512_or_si512(_mm512_srli_epi32(s, 8), _mm512_slli_epi32(b, 24));
            if (j >= 0)
                _mm512_storeu_si512((void *)(dst + (size_t)j * (size_t)cq + ch), s);
        }
    }
}

/* One output row's 16 channels from ch: kernel rows rows[0 .. kh), nq quads each. */
QUAD_TARGET static inline __attribute__((always_inline)) void
quad_block(const int32_t *const *rows, const int32_t *qw, size_t cpad, int64_t cq, int32_t ch,
           int32_t c, int64_t out_w, int32_t stride, const int32_t *init, const hqrt_i_fin_t *f,
           const __m512i *cc, const hqrt_i_lut_regs_t *lut, bool exact, uint8_t *out, const int kh,
           const int nq)
{
    const __mmask16 k = c - ch >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (c - ch)) - 1);
    const hqrt_i_rq_t rq = hqrt_i_rq_load(f);
    const __m512i left = _mm512_load_si512((const void *)f->left);
    const bool any_left = _mm512_test_epi32_mask(left, left) != 0;
    const __m512i start = _mm512_loadu_si512((const void *)(init + ch));
    for (int64_t ox = 0; ox < out_w; ox++) {
        const size_t at = (size_t)(ox * stride) * (size_t)cq + (size_t)ch;
        __m512i acc = start;
        for (int ky = 0; ky < kh; ky++)
            for (int q = 0; q < nq; q++)
                acc = _mm512_dpbusd_epi32(
                    acc, _mm512_loadu_si512((const void *)(rows[ky] + at + (size_t)(4 * q) * cq)),
                    _mm512_load_si512((const void *)(qw + (size_t)(ky * nq + q) * cpad + ch)));
        if (any_left)
            acc = hqrt_i_sat_shl_x16(acc, left);
        const __m128i codes = hqrt_i_code_bytes(exact ? hqrt_i_rq_merged_x16(acc, &rq, true)
                                                      : hqrt_i_rq_merged_x16(acc, &rq, false),
                                                cc, lut);
        uint8_t *dst = out + (size_t)ox * (size_t)c + (size_t)ch;
        if (k == 0xFFFF)
            _mm_storeu_si128((__m128i *)(void *)dst, codes);
        else
            _mm_mask_storeu_epi8(dst, k, codes);
    }
}

/* One output row's 64 channels from ch (four whole blocks without a pre-shift; a lut only by
 * vpermi2b): the sums as quad_block, the codes by hqrt_i_codes64, one 64-byte store per pixel. */
QUAD_TARGET static inline __attribute__((always_inline)) void
quad_block64(const int32_t *const *rows, const int32_t *qw, size_t cpad, int64_t cq, int32_t ch,
             int32_t c, int64_t out_w, const int32_t *init, const hqrt_i_fin_t *f,
             const __m512i *cc64, const hqrt_i_lut_regs_t *lut, bool exact, uint8_t *out,
             const int kh, const int nq)
{
    hqrt_i_rq_t rq[4];
    __m512i start[4];
    for (int b = 0; b < 4; b++) {
        rq[b] = hqrt_i_rq_load(f + b);
        start[b] = _mm512_loadu_si512((const void *)(init + ch + 16 * b));
    }
    for (int64_t ox = 0; ox < out_w; ox++) {
        const size_t at = (size_t)ox * (size_t)cq + (size_t)ch;
        __m512i acc[4] = {start[0], start[1], start[2], start[3]};
        for (int ky = 0; ky < kh; ky++)
            for (int q = 0; q < nq; q++) {
                const int32_t *src = rows[ky] + at + (size_t)(4 * q) * cq;
                const int32_t *w = qw + (size_t)(ky * nq + q) * cpad + ch;
                for (int b = 0; b < 4; b++)
                    acc[b] = _mm512_dpbusd_epi32(acc[b],
                                                 _mm512_loadu_si512((const void *)(src + 16 * b)),
                                                 _mm512_load_si512((const void *)(w + 16 * b)));
            }
        __m512i y[4];
        for (int b = 0; b < 4; b++)
            y[b] = exact ? hqrt_i_rq_merged_x16(acc[b], &rq[b], true)
                         : hqrt_i_rq_merged_x16(acc[b], &rq[b], false);
        _mm512_storeu_si512((void *)(out + (size_t)ox * (size_t)c + (size_t)ch),
                            hqrt_i_codes64(y, cc64[0], cc64[1], cc64[2], lut, cc64[3]));
    }
}

QUAD_TARGET void hqrt_i_dwq_rows(const hqrt_i_prepared_t *prep, const hqrt_conv_params_t *kp,
                                 hqrt_dims_t in, const uint8_t *input, const int64_t *bias,
                                 hqrt_dims_t out, uint8_t *output, int64_t row_begin,
                                 int64_t row_end, uint8_t *scratch)
{
    const int32_t c = in.c, kh = kp->kernel_h, nq = quads_per_row(kp->kernel_w);
    const size_t cpad = (size_t)prep->depth_padded;
    const int64_t taps = prep->depth, cq = quad_channels(c);
    const int64_t width = quad_row_width(kp, out.w);
    const int32_t *wsum = (const int32_t *)prep->packed + (size_t)taps * cpad;
    const hqrt_i_fin_t *fin = prep->finish;
    const int32_t *lut32 = kp->out.lut ? (const int32_t *)(const void *)(fin + cpad / 16) : NULL;
    const int32_t *qw =
        (const int32_t *)(const void *)((const uint8_t *)prep->packed +
                                        (hqrt_i_dw512_packed_bytes(taps, c, (int64_t)cpad) + 63) /
                                            64 * 64);
    int32_t *slots = (int32_t *)(void *)scratch, *zp_row = slots + (size_t)kh * width * cq;
    int32_t *init = zp_row + (size_t)width * cq;
    const bool fold = hqrt_i_bias_folds(bias, c, taps);
    for (int32_t o = 0; o < c; o++) /* wraps only where the exact sums, inside int32, wrap back */
        init[o] = (int32_t)((uint32_t)(fold ? (int32_t)bias[o] : 0) -
                            (uint32_t)kp->in_zp * (uint32_t)wsum[o]);
    quad_row(NULL, c, cq, in.w, -kp->pad_left, width, kp->in_zp, zp_row);
    int64_t held[HQRT_DW_PAIR_TAPS]; /* the input row in each slot, -1 for none */
    for (int32_t r = 0; r < kh; r++)
        held[r] = -1;
    const hqrt_i_lut_regs_t lut = hqrt_i_lut_load(lut32, prep->lut_vbmi);
    int32_t zp, lo, hi;
    hqrt_i_code_consts(&kp->out, &zp, &lo, &hi);
    const __m512i cc[3] = {_mm512_set1_epi32(zp), _mm512_set1_epi32(lo), _mm512_set1_epi32(hi)};
    const bool exact = lut32 || kp->out.act_min < kp->out.out_zp;
    /* 64 channels at a time (quad_block64) for a lut stage by vpermi2b whose channels do not
     * pre-shift their sums (left shifts 0): its lookups on 64 bytes instead of 16 made those
     * layers 10-25% faster; without a lut the saved clamps and narrowing were not worth the four
     * blocks' constants (mobilenet_v2's 7x7 layers 24 -> 27 us, its 56x56 ones 137 -> 131) */
    bool wide = lut32 && lut.vbmi;
    for (int64_t l = 0; wide && l < (int64_t)cpad; l++)
        wide = fin[l / 16].left[l % 16] == 0;
    const __m512i cc64[4] = {_mm512_set1_epi16((short)zp), _mm512_set1_epi8((char)kp->out.act_min),
                             _mm512_set1_epi8((char)kp->out.act_max), hqrt_i_codes64_order()};
    const int32_t *rows[HQRT_DW_PAIR_TAPS];
    const size_t row_bytes = (size_t)in.w * (size_t)c;
    for (int64_t oy = row_begin; oy < row_end; oy++) {
        const int64_t y0 = oy * kp->stride_h - kp->pad_top;
        for (int32_t ky = 0; ky < kh; ky++) {
            const int64_t iy = y0 + ky;
            if (iy < 0 || iy >= in.h) {
                rows[ky] = zp_row;
                continue;
            }
            const int32_t slot = (int32_t)(iy % kh);
            int32_t *dst = slots + (size_t)slot * (size_t)width * (size_t)cq;
            if (held[slot] != iy) {
                quad_row(input + (size_t)iy * row_bytes, c, cq, in.w, -kp->pad_left, width,
                         kp->in_zp, dst);
                held[slot] = iy;
            }
            rows[ky] = dst;
        }
        uint8_t *row_out = output + (size_t)oy * (size_t)out.w * (size_t)c;
        int32_t ch = 0;
        for (; wide && ch + 64 <= c; ch += 64) {
            const hqrt_i_fin_t *f = fin + ch / 16;
            if (kh == 3 && nq == 1)
                quad_block64(rows, qw, cpad, cq, ch, c, out.w, init, f, cc64, &lut, exact, row_out,
                             3, 1);
            else if (kh == 5 && nq == 2)
                quad_block64(rows, qw, cpad, cq, ch, c, out.w, init, f, cc64, &lut, exact, row_out,
                             5, 2);
            else
                quad_block64(rows, qw, cpad, cq, ch, c, out.w, init, f, cc64, &lut, exact, row_out,
                             kh, nq);
        }
        for (; ch < c; ch += 16) {
            const hqrt_i_fin_t *f = fin + ch / 16;
            if (kh == 3 && nq == 1)
                quad_block(rows, qw, cpad, cq, ch, c, out.w, kp->stride_w, init, f, cc, &lut, exact,
                           row_out, 3, 1);
            else if (kh == 5 && nq == 2)
                quad_block(rows, qw, cpad, cq, ch, c, out.w, kp->stride_w, init, f, cc, &lut, exact,
                           row_out, 5, 2);
            else
                quad_block(rows, qw, cpad, cq, ch, c, out.w, kp->stride_w, init, f, cc, &lut, exact,
                           row_out, kh, nq);
        }
    }
}
#endif
