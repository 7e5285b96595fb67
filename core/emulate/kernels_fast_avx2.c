/* kernels_fast_avx2.c — the AVX2+FMA inner loops of the fast kernels that are not GEMM tiles
 * or depthwise rows (kernels_fast_avx2_gemm.c, kernels_fast_avx2_dw.c): the activation pass
 * (act_row) with its e^x and sigmoid, the elementwise ops and maxpool's running max, the
 * Winograd transforms, the global average pool's row sums, and the AVX2 table with its
 * run-time check. Each function carries __attribute__((target("avx2,fma"))) (HQ_AVX2), so the
 * files build with the project's portable flags and the code runs only after
 * hqi_fast_isa_avx2 saw both features on the CPU. */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "emulate/kernels_fast.h"
#include "emulate/kernels_fast_avx2.h"

#ifdef HQI_FAST_AVX2

/* e^x, 8 lanes: Cephes' expf (exp_reduced8: range reduction by ln 2 in two parts, degree-6
 * polynomial), within 2 ulp of expf over [-87.3, 88.7]; below that 0 (expf: a denormal or 0),
 * above +inf, and NaN stays NaN. */
HQ_AVX2 static __m256 exp_avx2(__m256 x)
{
    const __m256 hi = _mm256_set1_ps(88.7228391f), lo = _mm256_set1_ps(-87.3365448f);
    __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q), big = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
    __m256 v = _mm256_max_ps(_mm256_min_ps(x, hi), lo);
    __m256 n;
    const __m256 p = exp_reduced8(v, &n);
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
HQ_AVX2 void hqi_fast_avx2_act_row(const hqi_ref_act_t *act, float *row, const float *addend,
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
    .gemm_6x16 = hqi_fast_avx2_gemm_6x16,
    .act_row = hqi_fast_avx2_act_row,
    .dw_pixel = hqi_fast_avx2_dw_pixel,
    .gemm_6x8 = hqi_fast_avx2_gemm_6x8,
    .dw_row = hqi_fast_avx2_dw_row,
    .ew = ew_avx2,
    .max_into = max_into_avx2,
    .wino_in = wino_in_avx2,
    .wino_out = wino_out_avx2,
    .wino4_in = wino4_in_avx2,
    .wino4_out = wino4_out_avx2,
    .sum_pixels = sum_pixels_avx2,
    .gemm_1xn = hqi_fast_avx2_gemm_1xn,
    .gemm_6x32 = hqi_fast_avx2_gemm_6x32,
    .dw_span = hqi_fast_avx2_dw_span,
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
