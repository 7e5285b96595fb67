/* kernels_fast_avx2.c — the AVX2+FMA inner loops of the fast kernels. Each function carries
 * __attribute__((target("avx2,fma"))), so the file builds with the project's portable flags and
 * the code runs only after hqi_fast_isa_avx2 saw both features on the CPU. */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "emulate/kernels_fast.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>

#define HQ_AVX2 __attribute__((target("avx2,fma")))

HQ_AVX2 static void act_row_avx2(const hqi_ref_act_t *act, float *row, const float *addend,
                                 int64_t channel0, int64_t count);

/* The activations the GEMM epilogue and the depthwise rows apply in registers: the same
 * operations as act_row_avx2's vector loops (so the same bits), except sigmoid and silu, which
 * take sigmoid8 (within a few ulp of act_row_avx2's); the others go through act_row_avx2 after
 * the store. */
static bool act_in_registers(const hqi_ref_act_t *act)
{
    switch (act->type) {
    case HQ_ACT_SIGMOID:
    case HQ_ACT_SILU:
    case HQ_ACT_LINEAR:
    case HQ_ACT_RELU:
    case HQ_ACT_RELU6:
    case HQ_ACT_LEAKY:
    case HQ_ACT_HARDSWISH:
    case HQ_ACT_HARDSIGMOID:
    case HQ_ACT_CLIP:
        return true;
    case HQ_ACT_PRELU:
        return act->slope_count != 1;
    default:
        return false;
    }
}

/* sigmoid, 8 lanes, as the reference writes it (1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x)
 * below), both from e = e^-|x| in (0, 1]: Cephes' expf range reduction and polynomial (as
 * exp_avx2 below) with 2^n made from its exponent bits (n in [-126, 0]: always normal), and the
 * quotient by the reciprocal estimate refined by one Newton step rather than a division. About
 * 25 operations a register instead of exp_avx2's clamps and blends, a second scaling and a
 * division: in the epilogue of a narrow 1x1 convolution (K = 16) with silu the activation, not
 * the GEMM, was most of the time. Within a few ulp of the reference (the refined estimate is
 * within about 2^-22 of 1 / d); NaN stays NaN. */
HQ_AVX2 static inline __attribute__((always_inline)) __m256 sigmoid8(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    /* -|x|, kept above expf's normal range (e^-87.3 ~ 1e-38: 1 + e rounds to 1 long before) */
    const __m256 a =
        _mm256_max_ps(_mm256_or_ps(x, _mm256_set1_ps(-0.0f)), _mm256_set1_ps(-87.3365448f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(a, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), a);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500E-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, one));
    const __m256 scale = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
    /* below the clamp e^-|x| is 0, as expf's is (or a denormal): so silu(-inf) is NaN */
    const __m256 e = _mm256_andnot_ps(_mm256_cmp_ps(x, _mm256_set1_ps(-87.3365448f), _CMP_LT_OQ),
                                      _mm256_mul_ps(p, scale));
    const __m256 d = _mm256_add_ps(one, e);
    __m256 q = _mm256_rcp_ps(d);
    q = _mm256_mul_ps(q, _mm256_fnmadd_ps(d, q, _mm256_set1_ps(2.0f)));
    const __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    const __m256 y = _mm256_mul_ps(_mm256_blendv_ps(one, e, neg), q);
    /* NaN: the max above turned it into a number */
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

/* act_row_avx2's vector step for one register (sigmoid and silu: sigmoid8); `slope` = the 8
 * PReLU slopes of its columns. */
HQ_AVX2 static inline __attribute__((always_inline)) __m256 act8(const hqi_ref_act_t *act, __m256 x,
                                                                 const float *slope)
{
    const __m256 zero = _mm256_setzero_ps();
    switch (act->type) {
    case HQ_ACT_RELU:
        return _mm256_blendv_ps(x, zero, _mm256_cmp_ps(x, zero, _CMP_LT_OQ));
    case HQ_ACT_RELU6: {
        const __m256 six = _mm256_set1_ps(6.0f);
        __m256 y = _mm256_blendv_ps(x, six, _mm256_cmp_ps(x, six, _CMP_GT_OQ));
        return _mm256_blendv_ps(y, zero, _mm256_cmp_ps(x, zero, _CMP_LT_OQ));
    }
    case HQ_ACT_LEAKY:
        return _mm256_blendv_ps(_mm256_mul_ps(_mm256_set1_ps(act->alpha), x), x,
                                _mm256_cmp_ps(x, zero, _CMP_GE_OQ));
    case HQ_ACT_PRELU:
        return _mm256_blendv_ps(_mm256_mul_ps(_mm256_loadu_ps(slope), x), x,
                                _mm256_cmp_ps(x, zero, _CMP_GE_OQ));
    case HQ_ACT_HARDSWISH: {
        const __m256 six = _mm256_set1_ps(6.0f);
        __m256 t = _mm256_add_ps(x, _mm256_set1_ps(3.0f));
        __m256 r = _mm256_blendv_ps(t, six, _mm256_cmp_ps(t, six, _CMP_GT_OQ));
        r = _mm256_blendv_ps(r, zero, _mm256_cmp_ps(t, zero, _CMP_LT_OQ));
        return _mm256_div_ps(_mm256_mul_ps(x, r), six);
    }
    case HQ_ACT_HARDSIGMOID: {
        const __m256 one = _mm256_set1_ps(1.0f);
        __m256 y =
            _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(act->alpha), x), _mm256_set1_ps(act->beta));
        __m256 r = _mm256_blendv_ps(y, one, _mm256_cmp_ps(y, one, _CMP_GT_OQ));
        return _mm256_blendv_ps(r, zero, _mm256_cmp_ps(y, zero, _CMP_LT_OQ));
    }
    case HQ_ACT_CLIP: {
        const __m256 alpha = _mm256_set1_ps(act->alpha), beta = _mm256_set1_ps(act->beta);
        __m256 y = _mm256_blendv_ps(x, beta, _mm256_cmp_ps(x, beta, _CMP_GT_OQ));
        return _mm256_blendv_ps(y, alpha, _mm256_cmp_ps(x, alpha, _CMP_LT_OQ));
    }
    case HQ_ACT_SIGMOID:
        return sigmoid8(x);
    case HQ_ACT_SILU:
        return _mm256_mul_ps(x, sigmoid8(x));
    default:
        return x;
    }
}

/* One row of a tile: the addend, then the activation, in registers. */
#define EPI_ADD(v, row, off)                                                                       \
    if (epi->add[row])                                                                             \
    v = _mm256_add_ps(v, _mm256_loadu_ps(epi->add[row] + (off)))
#define EPI_ACT(v, off) v = act8(epi->act, v, slope + (off))

/* 12 accumulators of 8 floats, 2 B vectors and 1 broadcast: 15 of the 16 ymm registers. */
HQ_AVX2 static inline __attribute__((always_inline)) void
gemm_6x16_body(int64_t kc, const float *const *a, const float *b, float *const *c,
               const float *init, const hqi_fast_epi_t *epi)
{
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    /* without init the block's sum starts from zero and is added to C at the end */
    c00 = c10 = c20 = c30 = c40 = c50 = init ? _mm256_loadu_ps(init) : _mm256_setzero_ps();
    c01 = c11 = c21 = c31 = c41 = c51 = init ? _mm256_loadu_ps(init + 8) : _mm256_setzero_ps();
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    for (int64_t k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_loadu_ps(b);
        const __m256 b1 = _mm256_loadu_ps(b + 8);
        b += 16;
        __m256 av = _mm256_broadcast_ss(a0 + k);
        c00 = _mm256_fmadd_ps(av, b0, c00);
        c01 = _mm256_fmadd_ps(av, b1, c01);
        av = _mm256_broadcast_ss(a1 + k);
        c10 = _mm256_fmadd_ps(av, b0, c10);
        c11 = _mm256_fmadd_ps(av, b1, c11);
        av = _mm256_broadcast_ss(a2 + k);
        c20 = _mm256_fmadd_ps(av, b0, c20);
        c21 = _mm256_fmadd_ps(av, b1, c21);
        av = _mm256_broadcast_ss(a3 + k);
        c30 = _mm256_fmadd_ps(av, b0, c30);
        c31 = _mm256_fmadd_ps(av, b1, c31);
        av = _mm256_broadcast_ss(a4 + k);
        c40 = _mm256_fmadd_ps(av, b0, c40);
        c41 = _mm256_fmadd_ps(av, b1, c41);
        av = _mm256_broadcast_ss(a5 + k);
        c50 = _mm256_fmadd_ps(av, b0, c50);
        c51 = _mm256_fmadd_ps(av, b1, c51);
    }
    if (!init) {
        c00 = _mm256_add_ps(_mm256_loadu_ps(c[0]), c00);
        c01 = _mm256_add_ps(_mm256_loadu_ps(c[0] + 8), c01);
        c10 = _mm256_add_ps(_mm256_loadu_ps(c[1]), c10);
        c11 = _mm256_add_ps(_mm256_loadu_ps(c[1] + 8), c11);
        c20 = _mm256_add_ps(_mm256_loadu_ps(c[2]), c20);
        c21 = _mm256_add_ps(_mm256_loadu_ps(c[2] + 8), c21);
        c30 = _mm256_add_ps(_mm256_loadu_ps(c[3]), c30);
        c31 = _mm256_add_ps(_mm256_loadu_ps(c[3] + 8), c31);
        c40 = _mm256_add_ps(_mm256_loadu_ps(c[4]), c40);
        c41 = _mm256_add_ps(_mm256_loadu_ps(c[4] + 8), c41);
        c50 = _mm256_add_ps(_mm256_loadu_ps(c[5]), c50);
        c51 = _mm256_add_ps(_mm256_loadu_ps(c[5] + 8), c51);
    }
    const bool fused = epi && act_in_registers(epi->act);
    if (fused) {
        const float *slope =
            epi->act->type == HQ_ACT_PRELU ? epi->act->slope + epi->channel0 : NULL;
        EPI_ADD(c00, 0, 0);
        EPI_ADD(c01, 0, 8);
        EPI_ADD(c10, 1, 0);
        EPI_ADD(c11, 1, 8);
        EPI_ADD(c20, 2, 0);
        EPI_ADD(c21, 2, 8);
        EPI_ADD(c30, 3, 0);
        EPI_ADD(c31, 3, 8);
        EPI_ADD(c40, 4, 0);
        EPI_ADD(c41, 4, 8);
        EPI_ADD(c50, 5, 0);
        EPI_ADD(c51, 5, 8);
        if (epi->act->type != HQ_ACT_LINEAR) {
            EPI_ACT(c00, 0);
            EPI_ACT(c01, 8);
            EPI_ACT(c10, 0);
            EPI_ACT(c11, 8);
            EPI_ACT(c20, 0);
            EPI_ACT(c21, 8);
            EPI_ACT(c30, 0);
            EPI_ACT(c31, 8);
            EPI_ACT(c40, 0);
            EPI_ACT(c41, 8);
            EPI_ACT(c50, 0);
            EPI_ACT(c51, 8);
        }
    }
    _mm256_storeu_ps(c[0], c00);
    _mm256_storeu_ps(c[0] + 8, c01);
    _mm256_storeu_ps(c[1], c10);
    _mm256_storeu_ps(c[1] + 8, c11);
    _mm256_storeu_ps(c[2], c20);
    _mm256_storeu_ps(c[2] + 8, c21);
    _mm256_storeu_ps(c[3], c30);
    _mm256_storeu_ps(c[3] + 8, c31);
    _mm256_storeu_ps(c[4], c40);
    _mm256_storeu_ps(c[4] + 8, c41);
    _mm256_storeu_ps(c[5], c50);
    _mm256_storeu_ps(c[5] + 8, c51);
    for (int r = 0; epi && !fused && r < HQI_FAST_MR; r++)
        act_row_avx2(epi->act, c[r], epi->add[r], epi->channel0, HQI_FAST_NR);
}

HQ_AVX2 static void gemm_6x16_avx2(int64_t kc, const float *const *a, const float *b,
                                   float *const *c, const float *init, const hqi_fast_epi_t *epi)
{
    gemm_6x16_body(kc, a, b, c, init, epi);
}

/* Two panels side by side (b: columns 0..15, b2: 16..31) as two 6x16 tiles in one call, the
 * first's then the second's (AVX2 has registers for one): the same sums and epilogue per
 * element as gemm_6x16 on each panel, the same bits. A tile of 16 columns over K = 16..64 is a
 * few hundred cycles, so the tile loop's bookkeeping per call was a tenth of a narrow 1x1
 * convolution's time; one call per two panels halves it. */
HQ_AVX2 static void gemm_6x32_avx2(int64_t kc, const float *const *a, const float *b,
                                   const float *b2, float *const *c, const float *init,
                                   const hqi_fast_epi_t *epi)
{
    gemm_6x16_body(kc, a, b, c, init, epi);
    float *c2[HQI_FAST_MR];
    hqi_fast_epi_t epi2;
    for (int r = 0; r < HQI_FAST_MR; r++)
        c2[r] = c[r] + HQI_FAST_NR;
    if (epi) {
        epi2 = *epi;
        epi2.channel0 += HQI_FAST_NR;
        for (int r = 0; r < HQI_FAST_MR; r++)
            epi2.add[r] = epi->add[r] ? epi->add[r] + HQI_FAST_NR : NULL;
    }
    gemm_6x16_body(kc, a, b2, c2, init ? init + HQI_FAST_NR : NULL, epi ? &epi2 : NULL);
}

/* e^x, 8 lanes: Cephes' expf (range reduction by ln 2 in two parts, degree-6 polynomial),
 * within 2 ulp of expf over [-87.3, 88.7]; below that 0 (expf: a denormal or 0), above +inf,
 * and NaN stays NaN. */
HQ_AVX2 static __m256 exp_avx2(__m256 x)
{
    const __m256 hi = _mm256_set1_ps(88.7228391f), lo = _mm256_set1_ps(-87.3365448f);
    __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q), big = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
    __m256 v = _mm256_max_ps(_mm256_min_ps(x, hi), lo);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(v, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), v);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500E-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* 2^n: n in [-126, 128]; split so that 2^n never leaves the normal range on its own */
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i half = _mm256_srai_epi32(ni, 1);
    __m256 s1 =
        _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, _mm256_set1_epi32(127)), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_add_epi32(_mm256_sub_epi32(ni, half), _mm256_set1_epi32(127)), 23));
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), big);
    y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
    return _mm256_blendv_ps(y, x, nan);
}

/* sigmoid as the reference writes it: 1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) below, with a
 * true division (tanh's form, 2 sigmoid(2x) - 1, needs the quotient to the last bit near 0). */
HQ_AVX2 static __m256 sigmoid_avx2(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    __m256 e = exp_avx2(_mm256_blendv_ps(_mm256_sub_ps(_mm256_setzero_ps(), x), x, neg));
    return _mm256_div_ps(_mm256_blendv_ps(one, e, neg), _mm256_add_ps(one, e));
}

/* The activations that are a few compares and multiplies run 8 lanes at a time, with the same
 * operations in the same order as hqi_ref_activate (so the same bits); sigmoid, silu, tanh and
 * exp use the vector e^x above and a true division (within a few ulp of the reference; the
 * AVX-512 table runs this pass too, so its results stay as they were: only the epilogues in
 * registers take sigmoid8); prelu with a shared slope, gelu and the tails call hqi_ref_activate
 * per element. */
HQ_AVX2 static void act_row_avx2(const hqi_ref_act_t *act, float *row, const float *addend,
                                 int64_t channel0, int64_t count)
{
    int64_t j = 0;
    if (addend) {
        for (; j + 8 <= count; j += 8)
            _mm256_storeu_ps(row + j,
                             _mm256_add_ps(_mm256_loadu_ps(row + j), _mm256_loadu_ps(addend + j)));
        for (; j < count; j++)
            row[j] += addend[j];
    }
    const __m256 zero = _mm256_setzero_ps();
    const __m256 six = _mm256_set1_ps(6.0f), three = _mm256_set1_ps(3.0f);
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 alpha = _mm256_set1_ps(act->alpha), beta = _mm256_set1_ps(act->beta);
    j = 0;
    switch (act->type) {
    case HQ_ACT_LINEAR:
        return;
    case HQ_ACT_RELU:
        for (; j + 8 <= count; j += 8) {
            __m256 x = _mm256_loadu_ps(row + j);
            /* x < 0 ? 0 : x keeps -0.0 and NaN as the scalar form does */
            _mm256_storeu_ps(row + j,
                             _mm256_blendv_ps(x, zero, _mm256_cmp_ps(x, zero, _CMP_LT_OQ)));
        }
        break;
    case HQ_ACT_RELU6:
        for (; j + 8 <= count; j += 8) {
            __m256 x = _mm256_loadu_ps(row + j);
            __m256 y = _mm256_blendv_ps(x, six, _mm256_cmp_ps(x, six, _CMP_GT_OQ));
            _mm256_storeu_ps(row + j,
                             _mm256_blendv_ps(y, zero, _mm256_cmp_ps(x, zero, _CMP_LT_OQ)));
        }
        break;
    case HQ_ACT_LEAKY:
        for (; j + 8 <= count; j += 8) {
            __m256 x = _mm256_loadu_ps(row + j);
            __m256 neg = _mm256_cmp_ps(x, zero, _CMP_GE_OQ);
            _mm256_storeu_ps(row + j, _mm256_blendv_ps(_mm256_mul_ps(alpha, x), x, neg));
        }
        break;
    case HQ_ACT_PRELU:
        if (act->slope_count != 1) {
            for (; j + 8 <= count; j += 8) {
                __m256 x = _mm256_loadu_ps(row + j);
                __m256 s = _mm256_loadu_ps(act->slope + channel0 + j);
                __m256 pos = _mm256_cmp_ps(x, zero, _CMP_GE_OQ);
                _mm256_storeu_ps(row + j, _mm256_blendv_ps(_mm256_mul_ps(s, x), x, pos));
            }
        }
        break;
    case HQ_ACT_HARDSWISH:
        for (; j + 8 <= count; j += 8) {
            __m256 x = _mm256_loadu_ps(row + j);
            __m256 t = _mm256_add_ps(x, three);
            __m256 r = _mm256_blendv_ps(t, six, _mm256_cmp_ps(t, six, _CMP_GT_OQ));
            r = _mm256_blendv_ps(r, zero, _mm256_cmp_ps(t, zero, _CMP_LT_OQ));
            _mm256_storeu_ps(row + j, _mm256_div_ps(_mm256_mul_ps(x, r), six));
        }
        break;
    case HQ_ACT_HARDSIGMOID:
        for (; j + 8 <= count; j += 8) {
            __m256 y = _mm256_add_ps(_mm256_mul_ps(alpha, _mm256_loadu_ps(row + j)), beta);
            __m256 r = _mm256_blendv_ps(y, one, _mm256_cmp_ps(y, one, _CMP_GT_OQ));
            _mm256_storeu_ps(row + j,
                             _mm256_blendv_ps(r, zero, _mm256_cmp_ps(y, zero, _CMP_LT_OQ)));
        }
        break;
    case HQ_ACT_SIGMOID:
        for (; j + 8 <= count; j += 8)
            _mm256_storeu_ps(row + j, sigmoid_avx2(_mm256_loadu_ps(row + j)));
        break;
    case HQ_ACT_SILU:
        for (; j + 8 <= count; j += 8) {
            __m256 x = _mm256_loadu_ps(row + j);
            _mm256_storeu_ps(row + j, _mm256_mul_ps(x, sigmoid_avx2(x)));
        }
        break;
    case HQ_ACT_TANH:
        /* tanh x = 2 sigmoid(2x) - 1: an absolute error of a few 1e-8 near 0 */
        for (; j + 8 <= count; j += 8) {
            __m256 x = _mm256_loadu_ps(row + j);
            __m256 s2 = sigmoid_avx2(_mm256_add_ps(x, x));
            _mm256_storeu_ps(row + j, _mm256_sub_ps(_mm256_add_ps(s2, s2), one));
        }
        break;
    case HQ_ACT_EXP:
        for (; j + 8 <= count; j += 8)
            _mm256_storeu_ps(row + j, exp_avx2(_mm256_loadu_ps(row + j)));
        break;
    case HQ_ACT_CLIP:
        for (; j + 8 <= count; j += 8) {
            __m256 x = _mm256_loadu_ps(row + j);
            __m256 y = _mm256_blendv_ps(x, beta, _mm256_cmp_ps(x, beta, _CMP_GT_OQ));
            _mm256_storeu_ps(row + j,
                             _mm256_blendv_ps(y, alpha, _mm256_cmp_ps(x, alpha, _CMP_LT_OQ)));
        }
        break;
    default:
        break;
    }
    for (; j < count; j++)
        row[j] = hqi_ref_activate(act, row[j], channel0 + j);
}

HQ_AVX2 static void dw_pixel_avx2(int64_t channels, int taps, const float *const *in,
                                  const float *const *w, const float *bias, float *out)
{
    int64_t c = 0;
    for (; c + 32 <= channels; c += 32) {
        __m256 a0, a1, a2, a3;
        if (bias) {
            a0 = _mm256_loadu_ps(bias + c);
            a1 = _mm256_loadu_ps(bias + c + 8);
            a2 = _mm256_loadu_ps(bias + c + 16);
            a3 = _mm256_loadu_ps(bias + c + 24);
        } else {
            a0 = a1 = a2 = a3 = _mm256_setzero_ps();
        }
        for (int t = 0; t < taps; t++) {
            const float *x = in[t] + c, *k = w[t] + c;
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x), _mm256_loadu_ps(k), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + 8), _mm256_loadu_ps(k + 8), a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + 16), _mm256_loadu_ps(k + 16), a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + 24), _mm256_loadu_ps(k + 24), a3);
        }
        _mm256_storeu_ps(out + c, a0);
        _mm256_storeu_ps(out + c + 8, a1);
        _mm256_storeu_ps(out + c + 16, a2);
        _mm256_storeu_ps(out + c + 24, a3);
    }
    for (; c + 8 <= channels; c += 8) {
        __m256 acc = bias ? _mm256_loadu_ps(bias + c) : _mm256_setzero_ps();
        for (int t = 0; t < taps; t++)
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(in[t] + c), _mm256_loadu_ps(w[t] + c), acc);
        _mm256_storeu_ps(out + c, acc);
    }
    for (; c < channels; c++) {
        float acc = bias ? bias[c] : 0.0f;
        for (int t = 0; t < taps; t++)
            acc = __builtin_fmaf(in[t][c], w[t][c], acc);
        out[c] = acc;
    }
}

HQ_AVX2 static void gemm_6x8_avx2(int64_t kc, const float *const *a, const float *b,
                                  float *const *c, const float *init, const hqi_fast_epi_t *epi)
{
    __m256 c0, c1, c2, c3, c4, c5;
    c0 = c1 = c2 = c3 = c4 = c5 = init ? _mm256_loadu_ps(init) : _mm256_setzero_ps();
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    for (int64_t k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_loadu_ps(b);
        b += 16;
        c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(a0 + k), b0, c0);
        c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(a1 + k), b0, c1);
        c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(a2 + k), b0, c2);
        c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(a3 + k), b0, c3);
        c4 = _mm256_fmadd_ps(_mm256_broadcast_ss(a4 + k), b0, c4);
        c5 = _mm256_fmadd_ps(_mm256_broadcast_ss(a5 + k), b0, c5);
    }
    if (!init) {
        c0 = _mm256_add_ps(_mm256_loadu_ps(c[0]), c0);
        c1 = _mm256_add_ps(_mm256_loadu_ps(c[1]), c1);
        c2 = _mm256_add_ps(_mm256_loadu_ps(c[2]), c2);
        c3 = _mm256_add_ps(_mm256_loadu_ps(c[3]), c3);
        c4 = _mm256_add_ps(_mm256_loadu_ps(c[4]), c4);
        c5 = _mm256_add_ps(_mm256_loadu_ps(c[5]), c5);
    }
    /* the AVX-512 table runs this kernel for its last panels of 8 columns: sigmoid and silu
     * stay in act_row_avx2's form there, as its results were */
    const bool fused = epi && act_in_registers(epi->act) && epi->act->type != HQ_ACT_SIGMOID &&
                       epi->act->type != HQ_ACT_SILU;
    if (fused) {
        const float *slope =
            epi->act->type == HQ_ACT_PRELU ? epi->act->slope + epi->channel0 : NULL;
        EPI_ADD(c0, 0, 0);
        EPI_ADD(c1, 1, 0);
        EPI_ADD(c2, 2, 0);
        EPI_ADD(c3, 3, 0);
        EPI_ADD(c4, 4, 0);
        EPI_ADD(c5, 5, 0);
        if (epi->act->type != HQ_ACT_LINEAR) {
            EPI_ACT(c0, 0);
            EPI_ACT(c1, 0);
            EPI_ACT(c2, 0);
            EPI_ACT(c3, 0);
            EPI_ACT(c4, 0);
            EPI_ACT(c5, 0);
        }
    }
    _mm256_storeu_ps(c[0], c0);
    _mm256_storeu_ps(c[1], c1);
    _mm256_storeu_ps(c[2], c2);
    _mm256_storeu_ps(c[3], c3);
    _mm256_storeu_ps(c[4], c4);
    _mm256_storeu_ps(c[5], c5);
    for (int r = 0; epi && !fused && r < HQI_FAST_MR; r++)
        act_row_avx2(epi->act, c[r], epi->add[r], epi->channel0, 8);
}

/* One row over N (1..4) full panels: 2N accumulators (independent chains, so the FMAs overlap),
 * one B load per FMA, one broadcast of a[k] for all; each element summed as gemm_6x16 sums it. */
HQ_AVX2 static inline __attribute__((always_inline)) void
gemm_1xn_body(int64_t kc, const float *a, const float *b, int64_t stride, const int N, float *c,
              const float *init, const hqi_fast_epi_t *epi, int64_t off)
{
    __m256 acc[8];
    for (int j = 0; j < 2 * N; j++)
        acc[j] = init ? _mm256_loadu_ps(init + 8 * j) : _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        const __m256 av = _mm256_broadcast_ss(a + k);
        for (int j = 0; j < N; j++) {
            acc[2 * j] = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + j * stride + k * 16), acc[2 * j]);
            acc[2 * j + 1] =
                _mm256_fmadd_ps(av, _mm256_loadu_ps(b + j * stride + k * 16 + 8), acc[2 * j + 1]);
        }
    }
    for (int j = 0; !init && j < 2 * N; j++)
        acc[j] = _mm256_add_ps(_mm256_loadu_ps(c + 8 * j), acc[j]);
    const bool fused = epi && act_in_registers(epi->act);
    const float *slope =
        fused && epi->act->type == HQ_ACT_PRELU ? epi->act->slope + epi->channel0 + off : NULL;
    for (int j = 0; j < 2 * N; j++) {
        __m256 v = acc[j];
        if (fused) {
            if (epi->add[0])
                v = _mm256_add_ps(v, _mm256_loadu_ps(epi->add[0] + off + 8 * j));
            if (epi->act->type != HQ_ACT_LINEAR)
                v = act8(epi->act, v, slope ? slope + 8 * j : NULL);
        }
        _mm256_storeu_ps(c + 8 * j, v);
    }
    if (epi && !fused)
        act_row_avx2(epi->act, c, epi->add[0] ? epi->add[0] + off : NULL, epi->channel0 + off,
                     16 * (int64_t)N);
}

/* One row over n (1..8) full panels, four panels (eight accumulators) at a time. */
HQ_AVX2 static void gemm_1xn_avx2(int64_t kc, const float *a, const float *b, int64_t stride, int n,
                                  float *c, const float *init, const hqi_fast_epi_t *epi)
{
    for (int j = 0; j < n; j += 4) {
        const int64_t off = 16 * (int64_t)j;
        const float *bj = b + j * stride, *ij = init ? init + off : NULL;
        switch (n - j < 4 ? n - j : 4) {
        case 4:
            gemm_1xn_body(kc, a, bj, stride, 4, c + off, ij, epi, off);
            break;
        case 3:
            gemm_1xn_body(kc, a, bj, stride, 3, c + off, ij, epi, off);
            break;
        case 2:
            gemm_1xn_body(kc, a, bj, stride, 2, c + off, ij, epi, off);
            break;
        default:
            gemm_1xn_body(kc, a, bj, stride, 1, c + off, ij, epi, off);
            break;
        }
    }
}

/* One depthwise output register: the addend (laid out as the output), then the activation
 * (NULL: none). */
HQ_AVX2 static inline __attribute__((always_inline)) __m256
dw_finish(__m256 v, const hqi_ref_act_t *act, const float *add, const float *slope)
{
    if (add)
        v = _mm256_add_ps(v, _mm256_loadu_ps(add));
    return act ? act8(act, v, slope) : v;
}

/* 3x3 stride 1 (the kernel rows' inputs at r0, r1, r2 for the first pixel), `groups` groups of
 * four pixels, all channels of a group before the next: the loop of dw_row_avx2's dense rows
 * alone, with the activation's type a constant (`type`), so that the compiler keeps the
 * addresses and weights in registers instead of the stack (twice the speed of that loop inside
 * the general function). The same sums in the same order; channels past the last multiple of 8
 * are left to the caller. */
HQ_AVX2 static inline __attribute__((always_inline)) void
dw3x3_body(int64_t channels, int64_t groups, const float *r0, const float *r1, const float *r2,
           const float *w, const float *bias, float *out, const hqi_ref_act_t *act,
           hq_activation_t type, const float *addend)
{
    hqi_ref_act_t fixed = {0};
    if (act) {
        fixed = *act;
        fixed.type = type;
    }
    const hqi_ref_act_t *vact = act ? &fixed : NULL;
    const int64_t c4 = 4 * channels;
    for (int64_t g = 0; g < groups; g++, r0 += c4, r1 += c4, r2 += c4, out += c4) {
        const float *add = addend ? addend + g * c4 : NULL;
        for (int64_t c = 0; c + 8 <= channels; c += 8) {
            __m256 a0 = bias ? _mm256_loadu_ps(bias + c) : _mm256_setzero_ps();
            __m256 a1 = a0, a2 = a0, a3 = a0;
#define DW3_ROW(r, t)                                                                              \
    {                                                                                              \
        const float *x = (r) + c;                                                                  \
        const __m256 k0 = _mm256_loadu_ps(w + (t)*channels + c);                                   \
        const __m256 k1 = _mm256_loadu_ps(w + ((t) + 1) * channels + c);                           \
        const __m256 k2 = _mm256_loadu_ps(w + ((t) + 2) * channels + c);                           \
        __m256 v = _mm256_loadu_ps(x);                                                             \
        a0 = _mm256_fmadd_ps(v, k0, a0);                                                           \
        v = _mm256_loadu_ps(x + channels);                                                         \
        a0 = _mm256_fmadd_ps(v, k1, a0);                                                           \
        a1 = _mm256_fmadd_ps(v, k0, a1);                                                           \
        v = _mm256_loadu_ps(x + 2 * channels);                                                     \
        a0 = _mm256_fmadd_ps(v, k2, a0);                                                           \
        a1 = _mm256_fmadd_ps(v, k1, a1);                                                           \
        a2 = _mm256_fmadd_ps(v, k0, a2);                                                           \
        v = _mm256_loadu_ps(x + 3 * channels);                                                     \
        a1 = _mm256_fmadd_ps(v, k2, a1);                                                           \
        a2 = _mm256_fmadd_ps(v, k1, a2);                                                           \
        a3 = _mm256_fmadd_ps(v, k0, a3);                                                           \
        v = _mm256_loadu_ps(x + 4 * channels);                                                     \
        a2 = _mm256_fmadd_ps(v, k2, a2);                                                           \
        a3 = _mm256_fmadd_ps(v, k1, a3);                                                           \
        v = _mm256_loadu_ps(x + 5 * channels);                                                     \
        a3 = _mm256_fmadd_ps(v, k2, a3);                                                           \
    }
            DW3_ROW(r0, 0);
            DW3_ROW(r1, 3);
            DW3_ROW(r2, 6);
#undef DW3_ROW
            const float *slope = type == HQ_ACT_PRELU ? act->slope + c : NULL;
            float *y = out + c;
            const float *ad = add ? add + c : NULL;
            _mm256_storeu_ps(y, dw_finish(a0, vact, ad, slope));
            _mm256_storeu_ps(y + channels, dw_finish(a1, vact, ad ? ad + channels : NULL, slope));
            _mm256_storeu_ps(y + 2 * channels,
                             dw_finish(a2, vact, ad ? ad + 2 * channels : NULL, slope));
            _mm256_storeu_ps(y + 3 * channels,
                             dw_finish(a3, vact, ad ? ad + 3 * channels : NULL, slope));
        }
    }
}

/* dw3x3_body for the activation `act` (NULL: none; one applied in registers). */
HQ_AVX2 __attribute__((noinline)) static void
dw3x3_avx2(int64_t channels, int64_t groups, const float *r0, const float *r1, const float *r2,
           const float *w, const float *bias, float *out, const hqi_ref_act_t *act,
           const float *addend)
{
    switch (act ? act->type : HQ_ACT_LINEAR) {
    case HQ_ACT_LINEAR:
        dw3x3_body(channels, groups, r0, r1, r2, w, bias, out, NULL, HQ_ACT_LINEAR, addend);
        break;
    case HQ_ACT_RELU:
        dw3x3_body(channels, groups, r0, r1, r2, w, bias, out, act, HQ_ACT_RELU, addend);
        break;
    case HQ_ACT_RELU6:
        dw3x3_body(channels, groups, r0, r1, r2, w, bias, out, act, HQ_ACT_RELU6, addend);
        break;
    case HQ_ACT_HARDSWISH:
        dw3x3_body(channels, groups, r0, r1, r2, w, bias, out, act, HQ_ACT_HARDSWISH, addend);
        break;
    case HQ_ACT_SILU:
        dw3x3_body(channels, groups, r0, r1, r2, w, bias, out, act, HQ_ACT_SILU, addend);
        break;
    default:
        dw3x3_body(channels, groups, r0, r1, r2, w, bias, out, act, act->type, addend);
        break;
    }
}

/* Output pixels per strip of a depthwise row (dw_row_body). */
#define DW_STRIP 32

/* The shapes of window dw_row_body has loops for: taps in kernel rows of 3 or 5 consecutive
 * columns (3x3 and 5x5 windows, and the border rows' windows of fewer kernel rows) at stride 1
 * or 2, and any other window. */
enum { DW_ANY, DW_R3S1, DW_R5S1, DW_R3S2, DW_R5S2 };

/* P output pixels x 8 channels of a depthwise row, pixel p's window at x0 + p*step + offsets[t]:
 * a[p] (seeded by the caller) += the taps in order, one FMA each (as dw_pixel). wc: the weights
 * of this channel block (tap t at wc + t*ch). P and `form` are constants in every copy, so that
 * the arrays below are registers (P accumulators, a kernel row's R weights and one input: at
 * most 14 of the 16):
 * - runs of R columns at stride S: each kernel row's weights loaded once, then its input
 *   columns one after the other, column j feeding pixel (j - i) / S at tap i for every i it
 *   is a tap of; the taps of one pixel come in order as j grows. Each input column is loaded
 *   once for up to R FMAs (3x3 stride 1, eight pixels: 10 loads and 3 weights for 24 FMAs);
 * - any other window: each tap loads its weight and its P inputs. */
HQ_AVX2 static inline __attribute__((always_inline)) void
dw_group(__m256 *a, const int P, const float *x0, int64_t step, int64_t ch, const int64_t *offsets,
         int taps, const float *wc, const int form)
{
    if (form == DW_ANY) {
        for (int t = 0; t < taps; t++) {
            const int64_t o = offsets[t];
            const __m256 k = _mm256_loadu_ps(wc + t * ch);
#pragma GCC unroll 8
            for (int p = 0; p < P; p++)
                a[p] = _mm256_fmadd_ps(_mm256_loadu_ps(x0 + p * step + o), k, a[p]);
        }
        return;
    }
    const int R = form == DW_R3S1 || form == DW_R3S2 ? 3 : 5;
    const int S = form == DW_R3S2 || form == DW_R5S2 ? 2 : 1;
    for (int t = 0; t < taps; t += R) {
        const float *r = x0 + offsets[t];
        __m256 k[5];
#pragma GCC unroll 5
        for (int i = 0; i < R; i++)
            k[i] = _mm256_loadu_ps(wc + (t + i) * ch);
#pragma GCC unroll 24
        for (int j = 0; j < S * (P - 1) + R; j++) {
            const __m256 v = _mm256_loadu_ps(r + j * ch);
#pragma GCC unroll 5
            for (int i = 0; i < R; i++)
                if (j >= i && (j - i) % S == 0 && (j - i) / S < P)
                    a[(j - i) / S] = _mm256_fmadd_ps(v, k[i], a[(j - i) / S]);
        }
    }
}

/* P pixels of one channel block: the seed, dw_group, then the addend and activation on the
 * stores (pixel p's output at y + p*ch). */
HQ_AVX2 static inline __attribute__((always_inline)) void
dw_pixels(const int P, const float *x0, int64_t step, int64_t ch, const int64_t *offsets, int taps,
          const float *wc, const int form, __m256 seed, float *y, const float *add,
          const hqi_ref_act_t *vact, const float *slope)
{
    __m256 a[8];
#pragma GCC unroll 8
    for (int p = 0; p < P; p++)
        a[p] = seed;
    dw_group(a, P, x0, step, ch, offsets, taps, wc, form);
#pragma GCC unroll 8
    for (int p = 0; p < P; p++)
        _mm256_storeu_ps(y + p * ch, dw_finish(a[p], vact, add ? add + p * ch : NULL, slope));
}

/* One output pixel of a depthwise row, the V (1 or 4) registers of channels from x0's: V
 * independent sums over the taps in order (bias_c: the bias of those channels or NULL), then
 * the addend and the activation on the stores. */
HQ_AVX2 static inline __attribute__((always_inline)) void
dw_one(const int V, const float *x0, int64_t ch, const int64_t *offsets, int taps, const float *wc,
       const float *bias_c, float *y, const float *add, const hqi_ref_act_t *vact,
       const float *slope)
{
    __m256 a[4];
#pragma GCC unroll 4
    for (int v = 0; v < V; v++)
        a[v] = bias_c ? _mm256_loadu_ps(bias_c + 8 * v) : _mm256_setzero_ps();
    for (int t = 0; t < taps; t++) {
        const float *x = x0 + offsets[t], *k = wc + t * ch;
#pragma GCC unroll 4
        for (int v = 0; v < V; v++)
            a[v] = _mm256_fmadd_ps(_mm256_loadu_ps(x + 8 * v), _mm256_loadu_ps(k + 8 * v), a[v]);
    }
#pragma GCC unroll 4
    for (int v = 0; v < V; v++)
        _mm256_storeu_ps(y + 8 * v, dw_finish(a[v], vact, add ? add + 8 * v : NULL,
                                              slope ? slope + 8 * v : NULL));
}

/* Depthwise rows: eight output pixels x 8 channels per step (eight independent sums: the FMA's
 * latency times its two ports; four sums ran at half the FMA rate), then a step of four and
 * single pixels for the last ones; one block of 8 channels along a strip of DW_STRIP pixels
 * before the next, so that the kernel rows' inputs of that block stay in L1 while the windows
 * slide over them and the next block finds the rest of their cache lines there. Loops by window
 * (`form`, see dw_group) and activation (`type`), both constants in each copy, so that the
 * compiler keeps addresses and weights in registers. Each output element: bias, then the taps
 * in order, one FMA each (as dw_pixel); then the addend and the activation (NULL: none) in
 * registers. Channels past the last multiple of 8 are left to the caller. */
HQ_AVX2 static inline __attribute__((always_inline)) void
dw_row_body(int64_t channels, int64_t pixels, const float *in, int64_t step, const int64_t *offsets,
            int taps, const float *w, const float *bias, float *out, const hqi_ref_act_t *act,
            const float *addend, const int form, const hq_activation_t type)
{
    hqi_ref_act_t fixed = {0};
    if (act) {
        fixed = *act;
        fixed.type = type;
    }
    const hqi_ref_act_t *vact = act ? &fixed : NULL;
    const int64_t ch = channels;
    for (int64_t q = 0; q < pixels;) {
        const int P = pixels - q >= 8 ? 8 : pixels - q >= 4 ? 4 : 1;
        const float *x0 = in + q * step;
        float *y = out + q * ch;
        const float *add = addend ? addend + q * ch : NULL;
        int64_t c = 0;
        /* one pixel: four channel blocks at a time (four independent sums) */
        for (; P == 1 && c + 32 <= channels; c += 32)
            dw_one(4, x0 + c, ch, offsets, taps, w + c, bias ? bias + c : NULL, y + c,
                   add ? add + c : NULL, vact, type == HQ_ACT_PRELU && act ? act->slope + c : NULL);
        for (; c + 8 <= channels; c += 8) {
            const __m256 seed = bias ? _mm256_loadu_ps(bias + c) : _mm256_setzero_ps();
            const float *slope = type == HQ_ACT_PRELU && act ? act->slope + c : NULL;
            if (P == 8)
                dw_pixels(8, x0 + c, step, ch, offsets, taps, w + c, form, seed, y + c,
                          add ? add + c : NULL, vact, slope);
            else if (P == 4)
                dw_pixels(4, x0 + c, step, ch, offsets, taps, w + c, form, seed, y + c,
                          add ? add + c : NULL, vact, slope);
            else
                dw_pixels(1, x0 + c, step, ch, offsets, taps, w + c, DW_ANY, seed, y + c,
                          add ? add + c : NULL, vact, slope);
        }
        q += P;
    }
}

/* dw_row_body of one window form for the activation `act` (NULL: none; one applied in
 * registers): a copy per common activation, the type a constant in each. */
#define DW_ROW_FORM(name, form)                                                                    \
    HQ_AVX2 __attribute__((noinline)) static void name(                                            \
        int64_t channels, int64_t pixels, const float *in, int64_t step, const int64_t *offsets,   \
        int taps, const float *w, const float *bias, float *out, const hqi_ref_act_t *act,         \
        const float *addend)                                                                       \
    {                                                                                              \
        switch (act ? act->type : HQ_ACT_LINEAR) {                                                 \
        case HQ_ACT_LINEAR:                                                                        \
            dw_row_body(channels, pixels, in, step, offsets, taps, w, bias, out, NULL, addend,     \
                        form, HQ_ACT_LINEAR);                                                      \
            break;                                                                                 \
        case HQ_ACT_RELU:                                                                          \
            dw_row_body(channels, pixels, in, step, offsets, taps, w, bias, out, act, addend,      \
                        form, HQ_ACT_RELU);                                                        \
            break;                                                                                 \
        case HQ_ACT_RELU6:                                                                         \
            dw_row_body(channels, pixels, in, step, offsets, taps, w, bias, out, act, addend,      \
                        form, HQ_ACT_RELU6);                                                       \
            break;                                                                                 \
        case HQ_ACT_HARDSWISH:                                                                     \
            dw_row_body(channels, pixels, in, step, offsets, taps, w, bias, out, act, addend,      \
                        form, HQ_ACT_HARDSWISH);                                                   \
            break;                                                                                 \
        case HQ_ACT_SILU:                                                                          \
            dw_row_body(channels, pixels, in, step, offsets, taps, w, bias, out, act, addend,      \
                        form, HQ_ACT_SILU);                                                        \
            break;                                                                                 \
        default:                                                                                   \
            dw_row_body(channels, pixels, in, step, offsets, taps, w, bias, out, act, addend,      \
                        form, act->type);                                                          \
            break;                                                                                 \
        }                                                                                          \
    }
DW_ROW_FORM(dw_r3s1_avx2, DW_R3S1)
DW_ROW_FORM(dw_r5s1_avx2, DW_R5S1)
DW_ROW_FORM(dw_r3s2_avx2, DW_R3S2)
DW_ROW_FORM(dw_r5s2_avx2, DW_R5S2)
DW_ROW_FORM(dw_any_avx2, DW_ANY)
#undef DW_ROW_FORM

/* Whether the taps are kernel rows of `len` consecutive columns (offsets one pixel apart
 * within a row). */
static bool taps_in_runs(const int64_t *offsets, int taps, int len, int64_t channels)
{
    if (taps % len)
        return false;
    for (int t = 0; t < taps; t++)
        if (t % len && offsets[t] - offsets[t - 1] != channels)
            return false;
    return true;
}

/* The channels past the last multiple of 8 of one depthwise output pixel, one at a time, each
 * summed as dw_pixel sums it; then the addend and the activation (NULL: none) as act_row's
 * scalar tail applies them. Tap t reads base + offsets[t], its weights at w + t*channels. */
HQ_AVX2 static void dw_tail(int64_t channels, int taps, const float *base, const int64_t *offsets,
                    const float *w, const float *bias, float *y, const hqi_ref_act_t *vact,
                    const float *add)
{
    for (int64_t d = channels - channels % 8; d < channels; d++) {
        float acc = bias ? bias[d] : 0.0f;
        for (int t = 0; t < taps; t++)
            acc = __builtin_fmaf(base[offsets[t] + d], w[t * channels + d], acc);
        if (add)
            acc += add[d];
        y[d] = vact ? hqi_ref_activate(vact, acc, d) : acc;
    }
}

/* Depthwise rows: every pixel's channels up to the last multiple of 8 by the loop of its
 * window's form (dw_row_body), the rest one at a time; an activation not applied in registers
 * after the sums. */
HQ_AVX2 static void dw_row_avx2(int64_t channels, int64_t pixels, const float *in, int64_t step,
                                const int64_t *offsets, int taps, const float *w, const float *bias,
                                float *out, const hqi_ref_act_t *act, const float *addend)
{
    const bool fused = !act || act_in_registers(act);
    const hqi_ref_act_t *vact = act && act->type != HQ_ACT_LINEAR && fused ? act : NULL;
    const float *vadd = fused ? addend : NULL;
    if (channels >= 8) {
        const bool s1 = step == channels, s2 = step == 2 * channels;
        const bool rows3 = taps_in_runs(offsets, taps, 3, channels);
        int64_t done = 0;
        if (s1 && rows3 && taps == 9 && pixels >= 4) {
            /* 3x3 stride 1: four pixels at a time as before (eight, by dw_group, were slower) */
            dw3x3_avx2(channels, pixels / 4, in + offsets[0], in + offsets[3], in + offsets[6], w,
                       bias, out, vact, vadd);
            done = pixels / 4 * 4;
        }
        if (done == pixels)
            ;
        else if (done)
            dw_r3s1_avx2(channels, pixels - done, in + done * step, step, offsets, taps, w, bias,
                         out + done * channels, vact, vadd ? vadd + done * channels : NULL);
        else if ((s1 || s2) && taps_in_runs(offsets, taps, 5, channels))
            (s1 ? dw_r5s1_avx2 : dw_r5s2_avx2)(channels, pixels, in, step, offsets, taps, w, bias,
                                               out, vact, vadd);
        else if ((s1 || s2) && rows3)
            (s1 ? dw_r3s1_avx2 : dw_r3s2_avx2)(channels, pixels, in, step, offsets, taps, w, bias,
                                               out, vact, vadd);
        else
            dw_any_avx2(channels, pixels, in, step, offsets, taps, w, bias, out, vact, vadd);
    }
    for (int64_t q = 0; q < pixels; q++) {
        if (channels % 8)
            dw_tail(channels, taps, in + q * step, offsets, w, bias, out + q * channels, vact,
                    vadd ? vadd + q * channels : NULL);
        /* an activation not applied in registers: after the sums, with the addend */
        if (act && !fused)
            act_row_avx2(act, out + q * channels, addend ? addend + q * channels : NULL, 0,
                         channels);
    }
}

/* dw_span's pixels x0 .. x1-1 for the W (1 or 4) registers of channels c .. c + 8W - 1: W
 * independent sums per pixel (one alone waits on the FMA's latency at every tap). */
HQ_AVX2 static inline __attribute__((always_inline)) void
dw_span_block(const int W, int64_t c, int64_t ch, int64_t x0, int64_t x1, const float *in,
              int64_t row_step, int64_t in_w, int rows, int kw, int stride, int dilation,
              int pad_left, const float *w, const float *bias, float *out,
              const hqi_ref_act_t *vact, const float *vadd)
{
    const bool prelu = vact && vact->type == HQ_ACT_PRELU;
    for (int64_t q = x0; q < x1; q++) {
        const int64_t left = q * stride - pad_left; /* input column of tap kx = 0 */
        int lo = 0, hi = kw - 1;
        while (lo < kw && left + (int64_t)lo * dilation < 0)
            lo++;
        while (hi >= 0 && left + (int64_t)hi * dilation >= in_w)
            hi--;
        __m256 acc[4];
#pragma GCC unroll 4
        for (int v = 0; v < W; v++)
            acc[v] = bias ? _mm256_loadu_ps(bias + c + 8 * v) : _mm256_setzero_ps();
        for (int r = 0; r < rows; r++) {
            const float *x = in + r * row_step + c;
            const float *k = w + (int64_t)r * kw * ch + c;
            for (int kx = lo; kx <= hi; kx++) {
                const float *xk = x + (left + (int64_t)kx * dilation) * ch;
#pragma GCC unroll 4
                for (int v = 0; v < W; v++)
                    acc[v] = _mm256_fmadd_ps(_mm256_loadu_ps(xk + 8 * v),
                                             _mm256_loadu_ps(k + kx * ch + 8 * v), acc[v]);
            }
        }
        float *y = out + (q - x0) * ch + c;
        const float *add = vadd ? vadd + (q - x0) * ch + c : NULL;
#pragma GCC unroll 4
        for (int v = 0; v < W; v++)
            _mm256_storeu_ps(y + 8 * v, dw_finish(acc[v], vact, add ? add + 8 * v : NULL,
                                                  prelu ? vact->slope + c + 8 * v : NULL));
    }
}

/* Depthwise border pixels (dw_span): one block of 32 channels (then 8) over all of the span's
 * pixels before the next, so that the block's weights (rows x kw x 128 bytes) stay in L1
 * instead of the whole layer's being read again for every pixel (7 x 7 x 1152 at 5 x 5:
 * 115 KB); each pixel sums the taps inside, in order (a tap outside is skipped, not added as
 * zero: the same bits as dw_pixel, -0 included), then the addend and the activation in
 * registers, except sigmoid and silu: act_row's (the registers' form differs in the last bits).
 * The channels past the last multiple of 8 one at a time, as dw_pixel and act_row's scalar
 * tails do them. */
HQ_AVX2 static void dw_span_avx2(int64_t channels, int64_t x0, int64_t x1, const float *in,
                                 int64_t row_step, int64_t in_w, int rows, int kw, int stride,
                                 int dilation, int pad_left, const float *w, const float *bias,
                                 float *out, const hqi_ref_act_t *act, const float *addend)
{
    const bool fused =
        !act || (act_in_registers(act) && act->type != HQ_ACT_SIGMOID && act->type != HQ_ACT_SILU);
    const hqi_ref_act_t *vact = act && act->type != HQ_ACT_LINEAR && fused ? act : NULL;
    const float *vadd = fused ? addend : NULL;
    const int64_t ch = channels, full = channels - channels % 8;
    int64_t c = 0;
    for (; c + 32 <= full; c += 32)
        dw_span_block(4, c, ch, x0, x1, in, row_step, in_w, rows, kw, stride, dilation, pad_left,
                      w, bias, out, vact, vadd);
    for (; c < full; c += 8)
        dw_span_block(1, c, ch, x0, x1, in, row_step, in_w, rows, kw, stride, dilation, pad_left,
                      w, bias, out, vact, vadd);
    for (int64_t q = x0; full < channels && q < x1; q++) {
        const int64_t left = q * stride - pad_left;
        float *y = out + (q - x0) * ch;
        const float *add = vadd ? vadd + (q - x0) * ch : NULL;
        for (int64_t d = full; d < channels; d++) {
            float acc = bias ? bias[d] : 0.0f;
            for (int r = 0; r < rows; r++)
                for (int kx = 0; kx < kw; kx++) {
                    const int64_t ix = left + (int64_t)kx * dilation;
                    if (ix >= 0 && ix < in_w)
                        acc = __builtin_fmaf(in[r * row_step + ix * ch + d],
                                             w[((int64_t)r * kw + kx) * ch + d], acc);
                }
            if (add)
                acc += add[d];
            y[d] = vact ? hqi_ref_activate(vact, acc, d) : acc;
        }
    }
    if (act && !fused)
        for (int64_t q = 0; q < x1 - x0; q++)
            act_row_avx2(act, out + q * ch, addend ? addend + q * ch : NULL, 0, ch);
}

HQ_AVX2 static __m256 ew_vec(hqi_ref_ew_op_t op, __m256 x, __m256 y)
{
    switch (op) {
    case HQI_REF_EW_ADD:
        return _mm256_add_ps(x, y);
    case HQI_REF_EW_SUB:
        return _mm256_sub_ps(x, y);
    case HQI_REF_EW_MUL:
        return _mm256_mul_ps(x, y);
    case HQI_REF_EW_DIV:
        return _mm256_div_ps(x, y);
    case HQI_REF_EW_MAX:
    case HQI_REF_EW_MIN: {
        __m256 pick = op == HQI_REF_EW_MAX ? _mm256_cmp_ps(x, y, _CMP_GT_OQ)
                                           : _mm256_cmp_ps(x, y, _CMP_LT_OQ);
        __m256 r = _mm256_blendv_ps(y, x, pick);
        return _mm256_blendv_ps(r, _mm256_set1_ps(NAN), _mm256_cmp_ps(x, y, _CMP_UNORD_Q));
    }
    default:
        return x;
    }
}

HQ_AVX2 static void ew_avx2(hqi_ref_ew_op_t op, float *z, const float *x, int64_t xs,
                            const float *y, int64_t ys, int64_t n)
{
    int64_t i = 0;
    if (xs && ys) {
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(z + i, ew_vec(op, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    } else if (xs) {
        const __m256 b = _mm256_set1_ps(y[0]);
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(z + i, ew_vec(op, _mm256_loadu_ps(x + i), b));
    } else if (ys) {
        const __m256 a = _mm256_set1_ps(x[0]);
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(z + i, ew_vec(op, a, _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++)
        z[i] = hqi_fast_ew_one(op, x[i * xs], y[i * ys]);
}

HQ_AVX2 static void max_into_avx2(float *y, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(y + i);
        __m256 take =
            _mm256_or_ps(_mm256_cmp_ps(a, b, _CMP_GT_OQ), _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
        _mm256_storeu_ps(y + i, _mm256_blendv_ps(b, a, take));
    }
    for (; i < n; i++)
        y[i] = (x[i] > y[i] || x[i] != x[i]) ? x[i] : y[i];
}

/* The same operations in the same order as the portable transforms, 8 channels at a time. */
HQ_AVX2 static void wino_in_avx2(int64_t channels, const float *const *d, float *v, int64_t stride)
{
    int64_t c = 0;
    for (; c + 8 <= channels; c += 8) {
        __m256 r[4][4];
        for (int j = 0; j < 4; j++) {
            __m256 d0 = _mm256_loadu_ps(d[j] + c), d1 = _mm256_loadu_ps(d[4 + j] + c);
            __m256 d2 = _mm256_loadu_ps(d[8 + j] + c), d3 = _mm256_loadu_ps(d[12 + j] + c);
            r[0][j] = _mm256_sub_ps(d0, d2);
            r[1][j] = _mm256_add_ps(d1, d2);
            r[2][j] = _mm256_sub_ps(d2, d1);
            r[3][j] = _mm256_sub_ps(d1, d3);
        }
        for (int i = 0; i < 4; i++) {
            _mm256_storeu_ps(v + (4 * i + 0) * stride + c, _mm256_sub_ps(r[i][0], r[i][2]));
            _mm256_storeu_ps(v + (4 * i + 1) * stride + c, _mm256_add_ps(r[i][1], r[i][2]));
            _mm256_storeu_ps(v + (4 * i + 2) * stride + c, _mm256_sub_ps(r[i][2], r[i][1]));
            _mm256_storeu_ps(v + (4 * i + 3) * stride + c, _mm256_sub_ps(r[i][1], r[i][3]));
        }
    }
    if (c < channels) {
        const float *rest[16];
        for (int i = 0; i < 16; i++)
            rest[i] = d[i] + c;
        hqi_fast_isa_portable.wino_in(channels - c, rest, v + c, stride);
    }
}

HQ_AVX2 static void wino_out_avx2(int64_t channels, const float *m, int64_t stride,
                                  const float *bias, float *const *y)
{
    int64_t c = 0;
    for (; c + 8 <= channels; c += 8) {
        __m256 s[2][4];
        for (int j = 0; j < 4; j++) {
            __m256 m0 = _mm256_loadu_ps(m + j * stride + c);
            __m256 m1 = _mm256_loadu_ps(m + (4 + j) * stride + c);
            __m256 m2 = _mm256_loadu_ps(m + (8 + j) * stride + c);
            __m256 m3 = _mm256_loadu_ps(m + (12 + j) * stride + c);
            s[0][j] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
            s[1][j] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
        }
        __m256 b = bias ? _mm256_loadu_ps(bias + c) : _mm256_setzero_ps();
        for (int i = 0; i < 2; i++) {
            if (y[2 * i])
                _mm256_storeu_ps(
                    y[2 * i] + c,
                    _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s[i][0], s[i][1]), s[i][2]), b));
            if (y[2 * i + 1])
                _mm256_storeu_ps(
                    y[2 * i + 1] + c,
                    _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(s[i][1], s[i][2]), s[i][3]), b));
        }
    }
    if (c < channels) {
        float *rest[4];
        for (int i = 0; i < 4; i++)
            rest[i] = y[i] ? y[i] + c : NULL;
        hqi_fast_isa_portable.wino_out(channels - c, m + c, stride, bias ? bias + c : NULL, rest);
    }
}

/* F(4x4, 3x3) on the points 0, 1, -1, 1/2, -2 and infinity: the portable code's operations in
 * the same order, products and sums fused into FMAs, 8 channels at a time. */
HQ_AVX2 static inline __attribute__((always_inline)) void wino4_bt8(const __m256 d[6], __m256 r[6])
{
    const __m256 two = _mm256_set1_ps(2.0f), five = _mm256_set1_ps(5.0f),
                 half3 = _mm256_set1_ps(1.5f);
    const __m256 d3_d1 = _mm256_sub_ps(d[3], d[1]), d4_d2 = _mm256_sub_ps(d[4], d[2]);
    const __m256 d1_d3 = _mm256_sub_ps(d[1], d[3]), d2_d4 = _mm256_sub_ps(d[2], d[4]);
    r[0] = _mm256_fmadd_ps(half3, d3_d1, _mm256_fnmadd_ps(two, d[2], _mm256_add_ps(d[0], d[4])));
    r[1] = _mm256_fmadd_ps(two, _mm256_sub_ps(d[4], d[1]), _mm256_fmadd_ps(five, d[3], d[2]));
    r[2] = _mm256_fnmadd_ps(two, _mm256_add_ps(d[1], d[4]), _mm256_fmsub_ps(five, d[2], d[3]));
    r[3] = _mm256_fmadd_ps(two, d1_d3, d2_d4);
    r[4] = _mm256_fnmadd_ps(two, d2_d4, d1_d3);
    r[5] = _mm256_fmadd_ps(half3, d4_d2, _mm256_fnmadd_ps(two, d[3], _mm256_add_ps(d[5], d[1])));
}

HQ_AVX2 static inline __attribute__((always_inline)) void wino4_at8(const __m256 m[6], __m256 r[4])
{
    const __m256 a = _mm256_add_ps(m[1], m[2]), b = _mm256_sub_ps(m[1], m[2]);
    r[0] = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(m[0], a), m[3]), m[4]);
    r[1] = _mm256_fnmadd_ps(_mm256_set1_ps(2.0f), m[4],
                            _mm256_fmadd_ps(_mm256_set1_ps(0.5f), m[3], b));
    r[2] = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), m[4],
                           _mm256_fmadd_ps(_mm256_set1_ps(0.25f), m[3], a));
    r[3] = _mm256_add_ps(_mm256_fnmadd_ps(_mm256_set1_ps(8.0f), m[4],
                                          _mm256_fmadd_ps(_mm256_set1_ps(0.125f), m[3], b)),
                         m[5]);
}

HQ_AVX2 static void wino4_in_avx2(int64_t channels, const float *const *d, float *v, int64_t stride)
{
    int64_t c = 0;
    for (; c + 8 <= channels; c += 8) {
        __m256 t[6][6], col[6], r[6];
        for (int j = 0; j < 6; j++) {
            for (int i = 0; i < 6; i++)
                col[i] = _mm256_loadu_ps(d[6 * i + j] + c);
            wino4_bt8(col, r);
            for (int i = 0; i < 6; i++)
                t[i][j] = r[i];
        }
        for (int i = 0; i < 6; i++) {
            wino4_bt8(t[i], r);
            for (int j = 0; j < 6; j++)
                _mm256_storeu_ps(v + (6 * i + j) * stride + c, r[j]);
        }
    }
    if (c < channels) {
        const float *rest[36];
        for (int i = 0; i < 36; i++)
            rest[i] = d[i] + c;
        hqi_fast_isa_portable.wino4_in(channels - c, rest, v + c, stride);
    }
}

HQ_AVX2 static void wino4_out_avx2(int64_t channels, const float *m, int64_t stride,
                                   const float *bias, float *const *y)
{
    int64_t c = 0;
    for (; c + 8 <= channels; c += 8) {
        __m256 t[4][6], col[6], r[4];
        for (int j = 0; j < 6; j++) {
            for (int i = 0; i < 6; i++)
                col[i] = _mm256_loadu_ps(m + (6 * i + j) * stride + c);
            wino4_at8(col, r);
            for (int i = 0; i < 4; i++)
                t[i][j] = r[i];
        }
        const __m256 b = bias ? _mm256_loadu_ps(bias + c) : _mm256_setzero_ps();
        for (int i = 0; i < 4; i++) {
            wino4_at8(t[i], r);
            for (int j = 0; j < 4; j++)
                if (y[4 * i + j])
                    _mm256_storeu_ps(y[4 * i + j] + c, _mm256_add_ps(r[j], b));
        }
    }
    if (c < channels) {
        float *rest[16];
        for (int i = 0; i < 16; i++)
            rest[i] = y[i] ? y[i] + c : NULL;
        hqi_fast_isa_portable.wino4_out(channels - c, m + c, stride, bias ? bias + c : NULL, rest);
    }
}

/* Row sums of the global average pool: 32 channels (four registers) at a time, every pixel
 * added in order, then the channels past the last multiple of 32 (the same adds per lane). */
HQ_AVX2 static void sum_pixels_avx2(const float *x, int64_t pixels, int64_t stride, int64_t width,
                                    float *row)
{
    int64_t k = 0;
    for (; k + 32 <= width; k += 32) {
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        const float *p = x + k;
        for (int64_t q = 0; q < pixels; q++, p += stride) {
            s0 = _mm256_add_ps(s0, _mm256_loadu_ps(p));
            s1 = _mm256_add_ps(s1, _mm256_loadu_ps(p + 8));
            s2 = _mm256_add_ps(s2, _mm256_loadu_ps(p + 16));
            s3 = _mm256_add_ps(s3, _mm256_loadu_ps(p + 24));
        }
        _mm256_storeu_ps(row + k, s0);
        _mm256_storeu_ps(row + k + 8, s1);
        _mm256_storeu_ps(row + k + 16, s2);
        _mm256_storeu_ps(row + k + 24, s3);
    }
    if (k < width)
        hqi_fast_isa_portable.sum_pixels(x + k, pixels, stride, width - k, row + k);
}

static const hqi_fast_isa_t isa_avx2 = {
    .name = "avx2+fma",
    .gemm_6x16 = gemm_6x16_avx2,
    .act_row = act_row_avx2,
    .dw_pixel = dw_pixel_avx2,
    .gemm_6x8 = gemm_6x8_avx2,
    .dw_row = dw_row_avx2,
    .ew = ew_avx2,
    .max_into = max_into_avx2,
    .wino_in = wino_in_avx2,
    .wino_out = wino_out_avx2,
    .wino4_in = wino4_in_avx2,
    .wino4_out = wino4_out_avx2,
    .sum_pixels = sum_pixels_avx2,
    .gemm_1xn = gemm_1xn_avx2,
    .gemm_6x32 = gemm_6x32_avx2,
    .dw_span = dw_span_avx2,
};

const hqi_fast_isa_t *hqi_fast_isa_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &isa_avx2 : NULL;
}

#else

const hqi_fast_isa_t *hqi_fast_isa_avx2(void)
{
    return NULL;
}

#endif
