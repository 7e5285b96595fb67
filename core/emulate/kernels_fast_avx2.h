/* kernels_fast_avx2.h — what the AVX2+FMA files of the fast kernels share
 * (kernels_fast_avx2.c, kernels_fast_avx2_gemm.c, kernels_fast_avx2_dw.c; the AVX-512 table
 * takes the entries it does not replace from them): the target attribute, the activations in
 * registers (inline: a call per register would cost more than the activation), and the
 * functions of the AVX2 table. Only on GCC-compatible x86 compilers (HQI_FAST_AVX2 defined);
 * nothing here may run before hqi_fast_isa_avx2 saw AVX2 and FMA on the CPU. */
#ifndef HQ_CORE_EMULATE_KERNELS_FAST_AVX2_H
#define HQ_CORE_EMULATE_KERNELS_FAST_AVX2_H

#include <stdint.h>

#include "emulate/kernels_fast.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define HQI_FAST_AVX2 1
#include <immintrin.h>

#define HQ_AVX2 __attribute__((target("avx2,fma")))

/* The entries of the AVX2 table (hqi_fast_isa_t says what each computes). */
HQ_AVX2 void hqi_fast_avx2_act_row(const hqi_ref_act_t *act, float *row, const float *addend,
                                   int64_t channel0, int64_t count);
HQ_AVX2 void hqi_fast_avx2_gemm_6x16(int64_t kc, const float *const *a, const float *b,
                                     float *const *c, const float *init, const hqi_fast_epi_t *epi);
HQ_AVX2 void hqi_fast_avx2_gemm_6x32(int64_t kc, const float *const *a, const float *b,
                                     const float *b2, float *const *c, const float *init,
                                     const hqi_fast_epi_t *epi);
HQ_AVX2 void hqi_fast_avx2_gemm_6x8(int64_t kc, const float *const *a, const float *b,
                                    float *const *c, const float *init, const hqi_fast_epi_t *epi);
HQ_AVX2 void hqi_fast_avx2_gemm_1xn(int64_t kc, const float *a, const float *b, int64_t stride,
                                    int n, float *c, const float *init, const hqi_fast_epi_t *epi);
HQ_AVX2 void hqi_fast_avx2_dw_pixel(int64_t channels, int taps, const float *const *in,
                                    const float *const *w, const float *bias, float *out);
HQ_AVX2 void hqi_fast_avx2_dw_row(int64_t channels, int64_t pixels, const float *in, int64_t step,
                                  const int64_t *offsets, int taps, const float *w,
                                  const float *bias, float *out, const hqi_ref_act_t *act,
                                  const float *addend);
HQ_AVX2 void hqi_fast_avx2_dw_span(int64_t channels, int64_t x0, int64_t x1, const float *in,
                                   int64_t row_step, int64_t in_w, int rows, int kw, int stride,
                                   int dilation, int pad_left, const float *w, const float *bias,
                                   float *out, const hqi_ref_act_t *act, const float *addend);

/* Cephes' expf without its 2^n: n = round(v / ln 2) and the degree-6 polynomial of
 * r = v - n ln 2 (ln 2 in two parts), so that e^v = p * 2^n. The callers clamp v first and
 * make 2^n as their range allows (exp_avx2, sigmoid8). */
HQ_AVX2 static inline __attribute__((always_inline)) __m256 exp_reduced8(__m256 v, __m256 *n_out)
{
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(v, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), v);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500E-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
    *n_out = n;
    return _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
}

/* sigmoid, 8 lanes, as the reference writes it (1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x)
 * below), both from e = e^-|x| in (0, 1]: Cephes' expf range reduction and polynomial
 * (exp_reduced8, as kernels_fast_avx2.c's exp_avx2) with 2^n made from its exponent bits (n in
 * [-126, 0]: always normal), and the quotient by the reciprocal estimate refined by one Newton step
 * rather than a division. About 25 operations a register instead of exp_avx2's clamps and blends, a
 * second scaling and a division: in the epilogue of a narrow 1x1 convolution (K = 16) with silu the
 * activation, not the GEMM, was most of the time. Within a few ulp of the reference (the refined
 * estimate is within about 2^-22 of 1 / d); NaN stays NaN. */
HQ_AVX2 static inline __attribute__((always_inline)) __m256 sigmoid8(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    /* -|x|, kept above expf's normal range (e^-87.3 ~ 1e-38: 1 + e rounds to 1 long before) */
    const __m256 a =
        _mm256_max_ps(_mm256_or_ps(x, _mm256_set1_ps(-0.0f)), _mm256_set1_ps(-87.3365448f));
    __m256 n;
    const __m256 p = exp_reduced8(a, &n);
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

/* hqi_fast_avx2_act_row's vector step for one register (sigmoid and silu: sigmoid8); `slope` = the
 * 8 PReLU slopes of its columns. */
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

#endif

#endif
