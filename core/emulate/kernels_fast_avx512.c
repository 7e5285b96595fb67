/* kernels_fast_avx512.c — the AVX-512 inner loops of the fast kernels: the GEMM micro-kernels
 * (6 rows x 16 or 32 columns in zmm registers) and the depthwise rows (16 channels per register,
 * the channels past the last multiple of 16 under a mask). Each function carries
 * __attribute__((target(...))), so the file builds with the project's portable flags and the
 * code runs only after hqi_fast_isa_avx512 saw AVX-512F/BW/DQ/VL on the CPU. The other entries of
 * the table (activations, elementwise, Winograd transforms, the 8-column GEMM) are the AVX2 ones.
 *
 * Every output element is summed as in the AVX2 and portable code: the seed (bias or the
 * previous K block), then the products in k (tap) order with one FMA each; only the number of
 * elements per register differs, so the sums are the same bits as the AVX2 code's. So are the
 * epilogues, except sigmoid and silu, which run in registers here with their own e^x and
 * reciprocal (within a few ulp). */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "emulate/kernels_fast.h"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>

#define HQ_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))

/* sigmoid, 16 lanes, as the reference writes it (1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x)
 * below), both from e = e^-|x| in (0, 1]: Cephes' expf range reduction and polynomial (as
 * kernels_fast_avx2.c's exp_avx2) with 2^n by scalef, and the quotient by a reciprocal estimate
 * refined by one Newton step rather than a division. About 20 operations a register instead of
 * the AVX2 form's 35 and a division: in the epilogue of a narrow 1x1 convolution (K = 16) the
 * activation, not the GEMM, is most of the time. Within a few ulp of the reference; NaN stays
 * NaN. */
HQ_AVX512 static inline __attribute__((always_inline)) __m512 sigmoid16(__m512 x)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    /* -|x|, kept above expf's normal range (e^-87.3 ~ 1e-38: 1 + e rounds to 1 long before) */
    const __m512 a =
        _mm512_max_ps(_mm512_or_ps(x, _mm512_set1_ps(-0.0f)), _mm512_set1_ps(-87.3365448f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(a, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), a);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500E-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, one));
    const __m512 e = _mm512_scalef_ps(p, n);
    const __m512 d = _mm512_add_ps(one, e);
    __m512 q = _mm512_rcp14_ps(d);
    q = _mm512_mul_ps(q, _mm512_fnmadd_ps(d, q, _mm512_set1_ps(2.0f)));
    const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mul_ps(_mm512_mask_blend_ps(neg, one, e), q);
}

/* act_row's vector step for 16 lanes (mask: the lanes that exist, for the slope load). */
HQ_AVX512 static inline __attribute__((always_inline)) __m512
act16(const hqi_ref_act_t *act, __m512 x, const float *slope, __mmask16 lanes)
{
    const __m512 zero = _mm512_setzero_ps();
    switch (act->type) {
    case HQ_ACT_RELU:
        return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ), x, zero);
    case HQ_ACT_RELU6: {
        const __m512 six = _mm512_set1_ps(6.0f);
        __m512 y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, six, _CMP_GT_OQ), x, six);
        return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ), y, zero);
    }
    case HQ_ACT_LEAKY:
        return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, zero, _CMP_GE_OQ),
                                    _mm512_mul_ps(_mm512_set1_ps(act->alpha), x), x);
    case HQ_ACT_PRELU:
        return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, zero, _CMP_GE_OQ),
                                    _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, slope), x), x);
    case HQ_ACT_HARDSWISH: {
        const __m512 six = _mm512_set1_ps(6.0f);
        __m512 t = _mm512_add_ps(x, _mm512_set1_ps(3.0f));
        __m512 r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(t, six, _CMP_GT_OQ), t, six);
        r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(t, zero, _CMP_LT_OQ), r, zero);
        return _mm512_div_ps(_mm512_mul_ps(x, r), six);
    }
    case HQ_ACT_HARDSIGMOID: {
        const __m512 one = _mm512_set1_ps(1.0f);
        __m512 y =
            _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(act->alpha), x), _mm512_set1_ps(act->beta));
        __m512 r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(y, one, _CMP_GT_OQ), y, one);
        return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(y, zero, _CMP_LT_OQ), r, zero);
    }
    case HQ_ACT_CLIP: {
        const __m512 alpha = _mm512_set1_ps(act->alpha), beta = _mm512_set1_ps(act->beta);
        __m512 y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, beta, _CMP_GT_OQ), x, beta);
        return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, alpha, _CMP_LT_OQ), y, alpha);
    }
    case HQ_ACT_SIGMOID:
        return sigmoid16(x);
    case HQ_ACT_SILU:
        return _mm512_mul_ps(x, sigmoid16(x));
    default:
        return x;
    }
}

/* The epilogue of one 16-column register of tile row `row`, columns off .. off+15. */
HQ_AVX512 static inline __attribute__((always_inline)) __m512 epi16(const hqi_fast_epi_t *epi,
                                                                    __m512 v, int row, int off)
{
    if (epi->add[row])
        v = _mm512_add_ps(v, _mm512_loadu_ps(epi->add[row] + off));
    if (epi->act->type != HQ_ACT_LINEAR)
        v = act16(epi->act, v,
                  epi->act->type == HQ_ACT_PRELU ? epi->act->slope + epi->channel0 + off : NULL,
                  0xffff);
    return v;
}

/* 6 x 16: one zmm accumulator per row. */
HQ_AVX512 static void gemm_6x16_avx512(int64_t kc, const float *const *a, const float *b,
                                       float *const *c, const float *init,
                                       const hqi_fast_epi_t *epi)
{
    __m512 c0, c1, c2, c3, c4, c5;
    /* without init the block's sum starts from zero and is added to C at the end */
    c0 = c1 = c2 = c3 = c4 = c5 = init ? _mm512_loadu_ps(init) : _mm512_setzero_ps();
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    for (int64_t k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_loadu_ps(b + k * 16);
        c0 = _mm512_fmadd_ps(_mm512_set1_ps(a0[k]), b0, c0);
        c1 = _mm512_fmadd_ps(_mm512_set1_ps(a1[k]), b0, c1);
        c2 = _mm512_fmadd_ps(_mm512_set1_ps(a2[k]), b0, c2);
        c3 = _mm512_fmadd_ps(_mm512_set1_ps(a3[k]), b0, c3);
        c4 = _mm512_fmadd_ps(_mm512_set1_ps(a4[k]), b0, c4);
        c5 = _mm512_fmadd_ps(_mm512_set1_ps(a5[k]), b0, c5);
    }
    if (!init) {
        c0 = _mm512_add_ps(_mm512_loadu_ps(c[0]), c0);
        c1 = _mm512_add_ps(_mm512_loadu_ps(c[1]), c1);
        c2 = _mm512_add_ps(_mm512_loadu_ps(c[2]), c2);
        c3 = _mm512_add_ps(_mm512_loadu_ps(c[3]), c3);
        c4 = _mm512_add_ps(_mm512_loadu_ps(c[4]), c4);
        c5 = _mm512_add_ps(_mm512_loadu_ps(c[5]), c5);
    }
    const bool fused = epi && hqi_fast_act_in_registers(epi->act);
    if (fused) {
        c0 = epi16(epi, c0, 0, 0);
        c1 = epi16(epi, c1, 1, 0);
        c2 = epi16(epi, c2, 2, 0);
        c3 = epi16(epi, c3, 3, 0);
        c4 = epi16(epi, c4, 4, 0);
        c5 = epi16(epi, c5, 5, 0);
    }
    _mm512_storeu_ps(c[0], c0);
    _mm512_storeu_ps(c[1], c1);
    _mm512_storeu_ps(c[2], c2);
    _mm512_storeu_ps(c[3], c3);
    _mm512_storeu_ps(c[4], c4);
    _mm512_storeu_ps(c[5], c5);
    const hqi_fast_isa_t *avx2 = hqi_fast_isa_avx2();
    for (int r = 0; epi && !fused && r < HQI_FAST_MR; r++)
        avx2->act_row(epi->act, c[r], epi->add[r], epi->channel0, HQI_FAST_NR);
}

/* 6 x 32 over two packed panels (b: columns 0..15, b2: 16..31): 12 accumulators, two B loads
 * and six broadcasts per k, so the two FMA ports, not the loads, set the pace. */
HQ_AVX512 static void gemm_6x32_avx512(int64_t kc, const float *const *a, const float *b,
                                       const float *b2, float *const *c, const float *init,
                                       const hqi_fast_epi_t *epi)
{
    __m512 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    c00 = c10 = c20 = c30 = c40 = c50 = init ? _mm512_loadu_ps(init) : _mm512_setzero_ps();
    c01 = c11 = c21 = c31 = c41 = c51 = init ? _mm512_loadu_ps(init + 16) : _mm512_setzero_ps();
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    for (int64_t k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_loadu_ps(b + k * 16);
        const __m512 b1 = _mm512_loadu_ps(b2 + k * 16);
        __m512 av = _mm512_set1_ps(a0[k]);
        c00 = _mm512_fmadd_ps(av, b0, c00);
        c01 = _mm512_fmadd_ps(av, b1, c01);
        av = _mm512_set1_ps(a1[k]);
        c10 = _mm512_fmadd_ps(av, b0, c10);
        c11 = _mm512_fmadd_ps(av, b1, c11);
        av = _mm512_set1_ps(a2[k]);
        c20 = _mm512_fmadd_ps(av, b0, c20);
        c21 = _mm512_fmadd_ps(av, b1, c21);
        av = _mm512_set1_ps(a3[k]);
        c30 = _mm512_fmadd_ps(av, b0, c30);
        c31 = _mm512_fmadd_ps(av, b1, c31);
        av = _mm512_set1_ps(a4[k]);
        c40 = _mm512_fmadd_ps(av, b0, c40);
        c41 = _mm512_fmadd_ps(av, b1, c41);
        av = _mm512_set1_ps(a5[k]);
        c50 = _mm512_fmadd_ps(av, b0, c50);
        c51 = _mm512_fmadd_ps(av, b1, c51);
    }
    if (!init) {
        c00 = _mm512_add_ps(_mm512_loadu_ps(c[0]), c00);
        c01 = _mm512_add_ps(_mm512_loadu_ps(c[0] + 16), c01);
        c10 = _mm512_add_ps(_mm512_loadu_ps(c[1]), c10);
        c11 = _mm512_add_ps(_mm512_loadu_ps(c[1] + 16), c11);
        c20 = _mm512_add_ps(_mm512_loadu_ps(c[2]), c20);
        c21 = _mm512_add_ps(_mm512_loadu_ps(c[2] + 16), c21);
        c30 = _mm512_add_ps(_mm512_loadu_ps(c[3]), c30);
        c31 = _mm512_add_ps(_mm512_loadu_ps(c[3] + 16), c31);
        c40 = _mm512_add_ps(_mm512_loadu_ps(c[4]), c40);
        c41 = _mm512_add_ps(_mm512_loadu_ps(c[4] + 16), c41);
        c50 = _mm512_add_ps(_mm512_loadu_ps(c[5]), c50);
        c51 = _mm512_add_ps(_mm512_loadu_ps(c[5] + 16), c51);
    }
    const bool fused = epi && hqi_fast_act_in_registers(epi->act);
    if (fused) {
        c00 = epi16(epi, c00, 0, 0);
        c01 = epi16(epi, c01, 0, 16);
        c10 = epi16(epi, c10, 1, 0);
        c11 = epi16(epi, c11, 1, 16);
        c20 = epi16(epi, c20, 2, 0);
        c21 = epi16(epi, c21, 2, 16);
        c30 = epi16(epi, c30, 3, 0);
        c31 = epi16(epi, c31, 3, 16);
        c40 = epi16(epi, c40, 4, 0);
        c41 = epi16(epi, c41, 4, 16);
        c50 = epi16(epi, c50, 5, 0);
        c51 = epi16(epi, c51, 5, 16);
    }
    _mm512_storeu_ps(c[0], c00);
    _mm512_storeu_ps(c[0] + 16, c01);
    _mm512_storeu_ps(c[1], c10);
    _mm512_storeu_ps(c[1] + 16, c11);
    _mm512_storeu_ps(c[2], c20);
    _mm512_storeu_ps(c[2] + 16, c21);
    _mm512_storeu_ps(c[3], c30);
    _mm512_storeu_ps(c[3] + 16, c31);
    _mm512_storeu_ps(c[4], c40);
    _mm512_storeu_ps(c[4] + 16, c41);
    _mm512_storeu_ps(c[5], c50);
    _mm512_storeu_ps(c[5] + 16, c51);
    const hqi_fast_isa_t *avx2 = hqi_fast_isa_avx2();
    for (int r = 0; epi && !fused && r < HQI_FAST_MR; r++)
        avx2->act_row(epi->act, c[r], epi->add[r], epi->channel0, 2 * HQI_FAST_NR);
}

/* gemm_6x32 whose second panel is the layer's last, with cols2 (1..15) columns: that half's
 * loads of C, the addend and the slope and its stores under a mask. Its epilogue is what the
 * 8-column AVX2 kernel or the stored-tile pass gave this panel before: in registers for the
 * activations that are the same operations there (not sigmoid and silu, whose AVX-512 form
 * differs in the last bits) when it has 8 columns, else act_row over its columns. */
HQ_AVX512 static void gemm_6x32_part_avx512(int64_t kc, const float *const *a, const float *b,
                                            const float *b2, int cols2, float *const *c,
                                            const float *init, const hqi_fast_epi_t *epi)
{
    const __mmask16 m2 = (__mmask16)((1u << cols2) - 1);
    __m512 lo[HQI_FAST_MR], hi[HQI_FAST_MR];
#pragma GCC unroll 6
    for (int r = 0; r < HQI_FAST_MR; r++) {
        lo[r] = init ? _mm512_loadu_ps(init) : _mm512_setzero_ps();
        hi[r] = init ? _mm512_maskz_loadu_ps(m2, init + 16) : _mm512_setzero_ps();
    }
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    for (int64_t k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_loadu_ps(b + k * 16);
        const __m512 b1 = _mm512_loadu_ps(b2 + k * 16);
        const float ak[HQI_FAST_MR] = {a0[k], a1[k], a2[k], a3[k], a4[k], a5[k]};
#pragma GCC unroll 6
        for (int r = 0; r < HQI_FAST_MR; r++) {
            const __m512 av = _mm512_set1_ps(ak[r]);
            lo[r] = _mm512_fmadd_ps(av, b0, lo[r]);
            hi[r] = _mm512_fmadd_ps(av, b1, hi[r]);
        }
    }
    if (!init) {
#pragma GCC unroll 6
        for (int r = 0; r < HQI_FAST_MR; r++) {
            lo[r] = _mm512_add_ps(_mm512_loadu_ps(c[r]), lo[r]);
            hi[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m2, c[r] + 16), hi[r]);
        }
    }
    const bool fused_lo = epi && hqi_fast_act_in_registers(epi->act);
    const bool fused_hi =
        fused_lo && cols2 == 8 && epi->act->type != HQ_ACT_SIGMOID && epi->act->type != HQ_ACT_SILU;
#pragma GCC unroll 6
    for (int r = 0; r < HQI_FAST_MR; r++) {
        if (fused_lo)
            lo[r] = epi16(epi, lo[r], r, 0);
        if (fused_hi) {
            if (epi->add[r])
                hi[r] = _mm512_add_ps(hi[r], _mm512_maskz_loadu_ps(m2, epi->add[r] + 16));
            if (epi->act->type != HQ_ACT_LINEAR)
                hi[r] = act16(epi->act, hi[r],
                              epi->act->type == HQ_ACT_PRELU ? epi->act->slope + epi->channel0 + 16
                                                             : NULL,
                              m2);
        }
        _mm512_storeu_ps(c[r], lo[r]);
        _mm512_mask_storeu_ps(c[r] + 16, m2, hi[r]);
    }
    const hqi_fast_isa_t *avx2 = hqi_fast_isa_avx2();
    for (int r = 0; epi && r < HQI_FAST_MR; r++) {
        if (!fused_lo)
            avx2->act_row(epi->act, c[r], epi->add[r], epi->channel0, HQI_FAST_NR);
        if (!fused_hi)
            avx2->act_row(epi->act, c[r] + 16, epi->add[r] ? epi->add[r] + 16 : NULL,
                          epi->channel0 + 16, cols2);
    }
}

/* Winograd's products, 6 rows x 16 * W columns: the sum of the runs so far (s) and the run
 * being summed (t) both in registers, so that C is written once, not loaded and stored after
 * every run of a few channels. */
HQ_AVX512 static inline __attribute__((always_inline)) void
gemm_runs_body(int64_t kc, int64_t kb, const float *const *a, const float *b, const float *b2,
               float *const *c, const int W)
{
    __m512 s[HQI_FAST_MR][2], t[HQI_FAST_MR][2];
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
#pragma GCC unroll 6
    for (int r = 0; r < HQI_FAST_MR; r++)
        s[r][0] = s[r][1] = _mm512_setzero_ps(); /* replaced by the first run */
    for (int64_t k0 = 0; k0 < kc; k0 += kb) {
        const int64_t k1 = kc - k0 < kb ? kc : k0 + kb;
#pragma GCC unroll 6
        for (int r = 0; r < HQI_FAST_MR; r++)
            for (int j = 0; j < W; j++)
                t[r][j] = _mm512_setzero_ps();
        for (int64_t k = k0; k < k1; k++) {
            __m512 bv[2];
            bv[0] = _mm512_loadu_ps(b + k * 16);
            if (W == 2)
                bv[1] = _mm512_loadu_ps(b2 + k * 16);
            const float ak[HQI_FAST_MR] = {a0[k], a1[k], a2[k], a3[k], a4[k], a5[k]};
#pragma GCC unroll 6
            for (int r = 0; r < HQI_FAST_MR; r++) {
                const __m512 av = _mm512_set1_ps(ak[r]);
                for (int j = 0; j < W; j++)
                    t[r][j] = _mm512_fmadd_ps(av, bv[j], t[r][j]);
            }
        }
#pragma GCC unroll 6
        for (int r = 0; r < HQI_FAST_MR; r++)
            for (int j = 0; j < W; j++)
                s[r][j] = k0 ? _mm512_add_ps(s[r][j], t[r][j]) : t[r][j];
    }
#pragma GCC unroll 6
    for (int r = 0; r < HQI_FAST_MR; r++)
        for (int j = 0; j < W; j++)
            _mm512_storeu_ps(c[r] + 16 * j, s[r][j]);
}

HQ_AVX512 static void gemm_runs_avx512(int64_t kc, int64_t kb, const float *const *a,
                                       const float *b, const float *b2, float *const *c)
{
    if (b2)
        gemm_runs_body(kc, kb, a, b, b2, c, 2);
    else
        gemm_runs_body(kc, kb, a, b, NULL, c, 1);
}

/* nb K blocks of a 6 x 32 tile in one call: the sum of the blocks so far (s) and the block
 * being summed (t) in registers, C loaded (without init) and stored once. A convolution whose
 * K blocks are short (a first convolution on RGB: one block of kw x 3 values per kernel row)
 * otherwise spends more on C than on the products. */
HQ_AVX512 static void gemm_blocks_avx512(int nb, int64_t kc, const float *const *a,
                                         int64_t a_stride, const float *b, const float *b2,
                                         int64_t b_stride, float *const *c, const float *init,
                                         const hqi_fast_epi_t *epi)
{
    __m512 s[HQI_FAST_MR][2], t[HQI_FAST_MR][2];
#pragma GCC unroll 6
    for (int r = 0; r < HQI_FAST_MR; r++) {
        s[r][0] = init ? _mm512_loadu_ps(init) : _mm512_loadu_ps(c[r]);
        s[r][1] = init ? _mm512_loadu_ps(init + 16) : _mm512_loadu_ps(c[r] + 16);
    }
    for (int i = 0; i < nb; i++) {
        const float *const *ai = a + i * a_stride;
        const float *a0 = ai[0], *a1 = ai[1], *a2 = ai[2], *a3 = ai[3], *a4 = ai[4], *a5 = ai[5];
        const float *bi = b + i * b_stride, *b2i = b2 + i * b_stride;
        /* block 0 with init sums from the seed, every other block from zero */
        const bool seeded = i == 0 && init;
#pragma GCC unroll 6
        for (int r = 0; r < HQI_FAST_MR; r++) {
            t[r][0] = seeded ? s[r][0] : _mm512_setzero_ps();
            t[r][1] = seeded ? s[r][1] : _mm512_setzero_ps();
        }
        for (int64_t k = 0; k < kc; k++) {
            const __m512 b0 = _mm512_loadu_ps(bi + k * 16);
            const __m512 b1 = _mm512_loadu_ps(b2i + k * 16);
            const float ak[HQI_FAST_MR] = {a0[k], a1[k], a2[k], a3[k], a4[k], a5[k]};
#pragma GCC unroll 6
            for (int r = 0; r < HQI_FAST_MR; r++) {
                const __m512 av = _mm512_set1_ps(ak[r]);
                t[r][0] = _mm512_fmadd_ps(av, b0, t[r][0]);
                t[r][1] = _mm512_fmadd_ps(av, b1, t[r][1]);
            }
        }
#pragma GCC unroll 6
        for (int r = 0; r < HQI_FAST_MR; r++) {
            s[r][0] = seeded ? t[r][0] : _mm512_add_ps(s[r][0], t[r][0]);
            s[r][1] = seeded ? t[r][1] : _mm512_add_ps(s[r][1], t[r][1]);
        }
    }
    const bool fused = epi && hqi_fast_act_in_registers(epi->act);
#pragma GCC unroll 6
    for (int r = 0; r < HQI_FAST_MR; r++) {
        if (fused) {
            s[r][0] = epi16(epi, s[r][0], r, 0);
            s[r][1] = epi16(epi, s[r][1], r, 16);
        }
        _mm512_storeu_ps(c[r], s[r][0]);
        _mm512_storeu_ps(c[r] + 16, s[r][1]);
    }
    const hqi_fast_isa_t *avx2 = hqi_fast_isa_avx2();
    for (int r = 0; epi && !fused && r < HQI_FAST_MR; r++)
        avx2->act_row(epi->act, c[r], epi->add[r], epi->channel0, 2 * HQI_FAST_NR);
}

/* One row over N full panels: N accumulators (independent chains, so the FMAs overlap), one
 * B load per FMA, a broadcast of a[k] shared by all. */
HQ_AVX512 static inline __attribute__((always_inline)) void
gemm_1xn_body(int64_t kc, const float *a, const float *b, int64_t stride, const int N, float *c,
              const float *init, const hqi_fast_epi_t *epi)
{
    __m512 acc[8];
    for (int j = 0; j < N; j++)
        acc[j] = init ? _mm512_loadu_ps(init + 16 * j) : _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        const __m512 av = _mm512_set1_ps(a[k]);
        for (int j = 0; j < N; j++)
            acc[j] = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + j * stride + k * 16), acc[j]);
    }
    for (int j = 0; !init && j < N; j++)
        acc[j] = _mm512_add_ps(_mm512_loadu_ps(c + 16 * j), acc[j]);
    const bool fused = epi && hqi_fast_act_in_registers(epi->act);
    for (int j = 0; j < N; j++)
        _mm512_storeu_ps(c + 16 * j, fused ? epi16(epi, acc[j], 0, 16 * j) : acc[j]);
    if (epi && !fused)
        hqi_fast_isa_avx2()->act_row(epi->act, c, epi->add[0], epi->channel0, 16 * (int64_t)N);
}

HQ_AVX512 static void gemm_1xn_avx512(int64_t kc, const float *a, const float *b, int64_t stride,
                                      int n, float *c, const float *init, const hqi_fast_epi_t *epi)
{
    switch (n) {
    case 8:
        gemm_1xn_body(kc, a, b, stride, 8, c, init, epi);
        break;
    case 7:
        gemm_1xn_body(kc, a, b, stride, 7, c, init, epi);
        break;
    case 6:
        gemm_1xn_body(kc, a, b, stride, 6, c, init, epi);
        break;
    case 5:
        gemm_1xn_body(kc, a, b, stride, 5, c, init, epi);
        break;
    case 4:
        gemm_1xn_body(kc, a, b, stride, 4, c, init, epi);
        break;
    case 3:
        gemm_1xn_body(kc, a, b, stride, 3, c, init, epi);
        break;
    case 2:
        gemm_1xn_body(kc, a, b, stride, 2, c, init, epi);
        break;
    default:
        gemm_1xn_body(kc, a, b, stride, 1, c, init, epi);
        break;
    }
}

/* One depthwise output register: the addend (laid out as the output), then the activation. */
HQ_AVX512 static inline __attribute__((always_inline)) void
dw_store(float *y, __m512 v, __mmask16 lanes, const hqi_ref_act_t *vact, const float *add,
         const float *slope)
{
    if (add)
        v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(lanes, add));
    if (vact)
        v = act16(vact, v, slope, lanes);
    _mm512_mask_storeu_ps(y, lanes, v);
}

/* Output pixels per strip of a depthwise row (dw_row_body). */
#define DW_STRIP 32

/* The shapes of window dw_row_body has loops for. */
enum { DW_ANY, DW_RUNS, DW_3X3_S1, DW_3X3_S2 };

/* P output pixels x 16 channels (lanes m) of a depthwise row, pixel p's window at x0 + p*step
 * + offsets[t]: a[p] (seeded by the caller) += the taps in order, one FMA each (as dw_pixel).
 * wc: the weights of this channel block (tap t at wc + t*ch); k3: the nine 3x3 weights, kept in
 * registers by the caller. P and `form` are constants in every copy, so that the arrays below
 * are registers:
 * - DW_3X3_S1: a kernel row's P + 2 input columns loaded once for its 3P FMAs;
 * - DW_3X3_S2: the same with stride 2: 2P + 1 input columns per kernel row for 3P FMAs;
 * - DW_RUNS: taps in runs of `run` consecutive columns (stride 1: 5x5, the border rows'
 *   shorter windows), over which the P pixels' inputs slide by one column per tap (one new
 *   input load and one weight load per P FMAs);
 * - DW_ANY: each tap loads its P inputs and its weight. */
HQ_AVX512 static inline __attribute__((always_inline)) void
dw_group(__m512 *a, const int P, const float *x0, int64_t step, int64_t ch, const int64_t *offsets,
         int taps, int run, const float *wc, const __m512 *k3, __mmask16 m, const int form)
{
    if (form == DW_3X3_S1) {
        for (int t = 0; t < 9; t += 3) {
            const float *r = x0 + offsets[t];
            __m512 v[8 + 2];
#pragma GCC unroll 10
            for (int i = 0; i < P + 2; i++)
                v[i] = _mm512_maskz_loadu_ps(m, r + i * ch);
#pragma GCC unroll 8
            for (int p = 0; p < P; p++)
                a[p] = _mm512_fmadd_ps(
                    v[p + 2], k3[t + 2],
                    _mm512_fmadd_ps(v[p + 1], k3[t + 1], _mm512_fmadd_ps(v[p], k3[t], a[p])));
        }
    } else if (form == DW_3X3_S2) {
        for (int t = 0; t < 9; t += 3) {
            const float *r = x0 + offsets[t];
            __m512 prev = _mm512_maskz_loadu_ps(m, r); /* column 2p, shared with pixel p - 1 */
#pragma GCC unroll 8
            for (int p = 0; p < P; p++) {
                const __m512 mid = _mm512_maskz_loadu_ps(m, r + (2 * p + 1) * ch);
                const __m512 next = _mm512_maskz_loadu_ps(m, r + (2 * p + 2) * ch);
                a[p] = _mm512_fmadd_ps(
                    next, k3[t + 2],
                    _mm512_fmadd_ps(mid, k3[t + 1], _mm512_fmadd_ps(prev, k3[t], a[p])));
                prev = next;
            }
        }
    } else if (form == DW_RUNS) {
        for (int t = 0; t < taps; t += run) {
            const float *r = x0 + offsets[t];
            const float *k = wc + t * ch;
            __m512 v[8];
#pragma GCC unroll 8
            for (int p = 0; p < P; p++)
                v[p] = _mm512_maskz_loadu_ps(m, r + p * ch);
            for (int i = 0;; i++) {
                const __m512 kv = _mm512_maskz_loadu_ps(m, k + i * ch);
#pragma GCC unroll 8
                for (int p = 0; p < P; p++)
                    a[p] = _mm512_fmadd_ps(v[p], kv, a[p]);
                if (i + 1 == run)
                    break;
#pragma GCC unroll 8
                for (int p = 0; p + 1 < P; p++)
                    v[p] = v[p + 1];
                v[P - 1] = _mm512_maskz_loadu_ps(m, r + (P + i) * ch);
            }
        }
    } else {
        for (int t = 0; t < taps; t++) {
            const int64_t o = offsets[t];
            const __m512 k = _mm512_maskz_loadu_ps(m, wc + t * ch);
#pragma GCC unroll 8
            for (int p = 0; p < P; p++)
                a[p] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x0 + p * step + o), k, a[p]);
        }
    }
}

/* P pixels of one channel block: the seed, dw_group, then the addend and activation on the
 * stores (pixel p's output at y + p*ch). */
HQ_AVX512 static inline __attribute__((always_inline)) void
dw_pixels(const int P, const float *x0, int64_t step, int64_t ch, const int64_t *offsets, int taps,
          int run, const float *wc, const __m512 *k3, __mmask16 m, const int form, __m512 seed,
          float *y, const float *add, const hqi_ref_act_t *vact, const float *slope)
{
    __m512 a[8];
#pragma GCC unroll 8
    for (int p = 0; p < P; p++)
        a[p] = seed;
    dw_group(a, P, x0, step, ch, offsets, taps, run, wc, k3, m, form);
#pragma GCC unroll 8
    for (int p = 0; p < P; p++)
        dw_store(y + p * ch, a[p], m, vact, add ? add + p * ch : NULL, slope);
}

/* dw_row_body's pixels q0 .. end-1 (a strip of at most DW_STRIP): the channel blocks one
 * after the other over the strip. */
HQ_AVX512 static inline __attribute__((always_inline)) void
dw_strip(int64_t channels, int64_t q0, int64_t end, const float *in, int64_t step,
         const int64_t *offsets, int taps, int run, const float *w, const float *bias, float *out,
         const hqi_ref_act_t *act, const hqi_ref_act_t *vact, const float *addend, const int form,
         const hq_activation_t type)
{
    const int64_t ch = channels;
    for (int64_t c = 0; c < channels; c += 16) {
        const __mmask16 m =
            channels - c >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (channels - c)) - 1);
        const __m512 seed = bias ? _mm512_maskz_loadu_ps(m, bias + c) : _mm512_setzero_ps();
        const float *slope = type == HQ_ACT_PRELU && act ? act->slope + c : NULL;
        __m512 k3[9]; /* 3x3: the weights stay in registers over the strip */
        if (form == DW_3X3_S1 || form == DW_3X3_S2)
            for (int t = 0; t < 9; t++)
                k3[t] = _mm512_maskz_loadu_ps(m, w + t * ch + c);
        int64_t q = q0;
        for (; q + 8 <= end; q += 8)
            dw_pixels(8, in + q * step + c, step, ch, offsets, taps, run, w + c, k3, m, form, seed,
                      out + q * ch + c, addend ? addend + q * ch + c : NULL, vact, slope);
        /* the last 1 to 7 pixels: a group of four, then one of the rest */
        for (int left = (int)(end - q); left > 0; left = (int)(end - q)) {
            const int P = left >= 4 ? 4 : left;
            const float *x0 = in + q * step + c;
            float *y = out + q * ch + c;
            const float *add = addend ? addend + q * ch + c : NULL;
            if (P == 4)
                dw_pixels(4, x0, step, ch, offsets, taps, run, w + c, k3, m, form, seed, y, add,
                          vact, slope);
            else if (P == 3)
                dw_pixels(3, x0, step, ch, offsets, taps, run, w + c, k3, m, form, seed, y, add,
                          vact, slope);
            else if (P == 2)
                dw_pixels(2, x0, step, ch, offsets, taps, run, w + c, k3, m, form, seed, y, add,
                          vact, slope);
            else
                dw_pixels(1, x0, step, ch, offsets, taps, run, w + c, k3, m, form, seed, y, add,
                          vact, slope);
            q += P;
        }
    }
}

/* Depthwise rows: eight output pixels x 16 channels per step (each weight serves eight FMAs,
 * eight independent sums hide the FMA latency), then a step of four and one of the last
 * one to three pixels, with the weights still in registers; one block of 16 channels along a
 * strip of DW_STRIP pixels before the next, so that the kernel rows' inputs of that block stay
 * in L1 while the windows slide over them, and the strip's inputs of all blocks (kh x 34 pixels
 * x C floats) stay in L1/L2 from one block to the next (along a whole row of 112 pixels they
 * came back from L3: 112 x 112 x 32 at 3x3 took 1.3x as long). Channels past the last multiple of
 * 16 run under a mask. Loops by window (`form`, see dw_group) and activation (`type`), both
 * constants in each copy. Each output element: bias, then the taps in order, one FMA each (as
 * dw_pixel); then the addend and the activation (NULL: none) in registers. */
HQ_AVX512 static inline __attribute__((always_inline)) void
dw_row_body(int64_t channels, int64_t pixels, const float *in, int64_t step, const int64_t *offsets,
            int taps, int run, const float *w, const float *bias, float *out,
            const hqi_ref_act_t *act, const float *addend, const int form,
            const hq_activation_t type)
{
    hqi_ref_act_t fixed = {0};
    if (act) {
        fixed = *act;
        fixed.type = type;
    }
    const hqi_ref_act_t *vact = act ? &fixed : NULL;
    for (int64_t q0 = 0; q0 < pixels; q0 += DW_STRIP) {
        const int64_t end = pixels - q0 < DW_STRIP ? pixels : q0 + DW_STRIP;
        dw_strip(channels, q0, end, in, step, offsets, taps, run, w, bias, out, act, vact, addend,
                 form, type);
    }
}

/* dw_row_body of one window form for the activation `act` (NULL: none; one applied in
 * registers): a copy per common activation, the type a constant in each. */
#define DW_ROW_CALL(a, type)                                                                       \
    dw_row_body(channels, pixels, in, step, offsets, taps, run, w, bias, out, a, addend, form, type)
#define DW_ROW_FORM(name, window)                                                                  \
    HQ_AVX512 __attribute__((noinline)) static void name(                                          \
        int64_t channels, int64_t pixels, const float *in, int64_t step, const int64_t *offsets,   \
        int taps, int run, const float *w, const float *bias, float *out,                          \
        const hqi_ref_act_t *act, const float *addend)                                             \
    {                                                                                              \
        const int form = window;                                                                   \
        HQI_FAST_BY_ACTIVATION(act, DW_ROW_CALL)                                                   \
    }
DW_ROW_FORM(dw_3x3_s1_avx512, DW_3X3_S1)
DW_ROW_FORM(dw_3x3_s2_avx512, DW_3X3_S2)
DW_ROW_FORM(dw_runs_avx512, DW_RUNS)
DW_ROW_FORM(dw_any_avx512, DW_ANY)
#undef DW_ROW_FORM
#undef DW_ROW_CALL

/* Depthwise rows: every pixel by the loop of its window's form (dw_row_body); an activation
 * not applied in registers after the sums. */
HQ_AVX512 static void dw_row_avx512(int64_t channels, int64_t pixels, const float *in, int64_t step,
                                    const int64_t *offsets, int taps, const float *w,
                                    const float *bias, float *out, const hqi_ref_act_t *act,
                                    const float *addend)
{
    const hqi_fast_dw_finish_t finish = hqi_fast_dw_finish_of(act, addend, true);
    const hqi_ref_act_t *vact = finish.vact;
    const float *vadd = finish.vadd;
    const bool rows3 = taps == 9 && hqi_fast_taps_in_runs(offsets, taps, 3, channels);
    int run = 0;
    for (int len = 5; !run && len >= 3 && step == channels; len -= 2)
        run = hqi_fast_taps_in_runs(offsets, taps, len, channels) ? len : 0;
    if (rows3 && step == channels)
        dw_3x3_s1_avx512(channels, pixels, in, step, offsets, taps, 3, w, bias, out, vact, vadd);
    else if (rows3 && step == 2 * channels)
        dw_3x3_s2_avx512(channels, pixels, in, step, offsets, taps, 3, w, bias, out, vact, vadd);
    else if (run)
        dw_runs_avx512(channels, pixels, in, step, offsets, taps, run, w, bias, out, vact, vadd);
    else
        dw_any_avx512(channels, pixels, in, step, offsets, taps, 0, w, bias, out, vact, vadd);
    if (finish.after)
        hqi_fast_dw_finish_after(hqi_fast_isa_avx2()->act_row, act, out, addend, pixels, channels);
}

/* Depthwise border pixels (dw_span): one block of 16 channels over all of the span's pixels
 * before the next, so that the block's weights (rows x kw x 64 bytes) stay in L1 instead of
 * the whole layer's being read again for every pixel (7 x 7 x 1152 at 5 x 5: 115 KB); each
 * pixel sums the taps inside, in order (a tap outside is skipped, not added as zero: the same
 * bits as dw_pixel, -0 included), then the addend and the activation in registers, except
 * sigmoid and silu: act_row's. */
HQ_AVX512 static void dw_span_avx512(int64_t channels, int64_t x0, int64_t x1, const float *in,
                                     int64_t row_step, int64_t in_w, int rows, int kw, int stride,
                                     int dilation, int pad_left, const float *w, const float *bias,
                                     float *out, const hqi_ref_act_t *act, const float *addend)
{
    /* sigmoid and silu by act_row after the store, as the border pixels always had them */
    const hqi_fast_dw_finish_t finish = hqi_fast_dw_finish_of(act, addend, false);
    const hqi_ref_act_t *vact = finish.vact;
    const float *vadd = finish.vadd;
    const bool prelu = vact && vact->type == HQ_ACT_PRELU;
    const int64_t ch = channels;
    for (int64_t c = 0; c < channels; c += 16) {
        const __mmask16 m =
            channels - c >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (channels - c)) - 1);
        const __m512 seed = bias ? _mm512_maskz_loadu_ps(m, bias + c) : _mm512_setzero_ps();
        for (int64_t q = x0; q < x1; q++) {
            const int64_t left = q * stride - pad_left; /* input column of tap kx = 0 */
            int lo, hi;
            hqi_fast_taps_inside(left, kw, dilation, in_w, &lo, &hi);
            __m512 acc = seed;
            for (int r = 0; r < rows; r++) {
                const float *x = in + r * row_step + c;
                const float *k = w + (int64_t)r * kw * ch + c;
                for (int kx = lo; kx <= hi; kx++)
                    acc = _mm512_fmadd_ps(
                        _mm512_maskz_loadu_ps(m, x + (left + (int64_t)kx * dilation) * ch),
                        _mm512_maskz_loadu_ps(m, k + kx * ch), acc);
            }
            dw_store(out + (q - x0) * ch + c, acc, m, vact, vadd ? vadd + (q - x0) * ch + c : NULL,
                     prelu ? vact->slope + c : NULL);
        }
    }
    if (finish.after)
        hqi_fast_dw_finish_after(hqi_fast_isa_avx2()->act_row, act, out, addend, x1 - x0, ch);
}

/* Row sums of the global average pool: 64 channels (four registers) at a time, every pixel
 * added in order; the last registers under a mask. */
HQ_AVX512 static void sum_pixels_avx512(const float *x, int64_t pixels, int64_t stride,
                                        int64_t width, float *row)
{
    for (int64_t k = 0; k < width; k += 64) {
        __mmask16 m[4];
        for (int j = 0; j < 4; j++) {
            const int64_t left = width - k - 16 * j;
            m[j] = left >= 16 ? (__mmask16)0xffff
                   : left > 0 ? (__mmask16)((1u << left) - 1)
                              : (__mmask16)0;
        }
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        const float *p = x + k;
        for (int64_t q = 0; q < pixels; q++, p += stride) {
            s0 = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(m[0], p));
            s1 = _mm512_add_ps(s1, _mm512_maskz_loadu_ps(m[1], p + 16));
            s2 = _mm512_add_ps(s2, _mm512_maskz_loadu_ps(m[2], p + 32));
            s3 = _mm512_add_ps(s3, _mm512_maskz_loadu_ps(m[3], p + 48));
        }
        _mm512_mask_storeu_ps(row + k, m[0], s0);
        _mm512_mask_storeu_ps(row + k + 16, m[1], s1);
        _mm512_mask_storeu_ps(row + k + 32, m[2], s2);
        _mm512_mask_storeu_ps(row + k + 48, m[3], s3);
    }
}

/* Depthwise, one output pixel (the border pixels): 16 channels per register, a masked tail. */
HQ_AVX512 static void dw_pixel_avx512(int64_t channels, int taps, const float *const *in,
                                      const float *const *w, const float *bias, float *out)
{
    for (int64_t c = 0; c < channels; c += 16) {
        const __mmask16 m =
            channels - c >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (channels - c)) - 1);
        __m512 acc = bias ? _mm512_maskz_loadu_ps(m, bias + c) : _mm512_setzero_ps();
        for (int t = 0; t < taps; t++)
            acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, in[t] + c),
                                  _mm512_maskz_loadu_ps(m, w[t] + c), acc);
        _mm512_mask_storeu_ps(out + c, m, acc);
    }
}

static hqi_fast_isa_t isa_avx512;
static pthread_once_t isa_avx512_once = PTHREAD_ONCE_INIT;

/* The AVX2 table with the AVX-512 entries over it (filled once). */
static void fill_avx512(void)
{
    isa_avx512 = *hqi_fast_isa_avx2();
    isa_avx512.name = "avx512";
    isa_avx512.gemm_6x16 = gemm_6x16_avx512;
    isa_avx512.gemm_6x32 = gemm_6x32_avx512;
    isa_avx512.gemm_6x32_part = gemm_6x32_part_avx512;
    isa_avx512.gemm_runs = gemm_runs_avx512;
    isa_avx512.gemm_blocks = gemm_blocks_avx512;
    isa_avx512.gemm_1xn = gemm_1xn_avx512;
    isa_avx512.dw_row = dw_row_avx512;
    isa_avx512.dw_pixel = dw_pixel_avx512;
    isa_avx512.dw_span = dw_span_avx512;
    isa_avx512.sum_pixels = sum_pixels_avx512;
}

const hqi_fast_isa_t *hqi_fast_isa_avx512(void)
{
    __builtin_cpu_init();
    if (!hqi_fast_isa_avx2() || !__builtin_cpu_supports("avx512f") ||
        !__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512dq") ||
        !__builtin_cpu_supports("avx512vl"))
        return NULL;
    pthread_once(&isa_avx512_once, fill_avx512);
    return &isa_avx512;
}

#else

const hqi_fast_isa_t *hqi_fast_isa_avx512(void)
{
    return NULL;
}

#endif
