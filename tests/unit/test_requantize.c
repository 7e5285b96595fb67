/* test_requantize.c — the integer arithmetic of hqrt_numerics.h and the multiplier / activation
 * encoding formulas of numerics/qmodel_build.c against values computed by hand (docs/numerics.md). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "numerics/qmodel.h"
#include "runtime/hqrt_numerics.h"

static void srdhm_rounds_half_up_and_saturates(void **state)
{
    (void)state;
    const int32_t half = 1 << 30; /* 0.5 in Q31 */
    /* gemmlowp's nudge makes ties go up (toward +inf), not away from zero */
    assert_int_equal(hqrt_srdhm(3, half), 2);      /* 1.5 -> 2 */
    assert_int_equal(hqrt_srdhm(-3, half), -1);    /* -1.5 -> -1 */
    assert_int_equal(hqrt_srdhm(1, half), 1);      /* 0.5 -> 1 */
    assert_int_equal(hqrt_srdhm(-1, half), 0);     /* -0.5 -> 0 */
    assert_int_equal(hqrt_srdhm(-7, half), -3);    /* -3.5 -> -3 */
    assert_int_equal(hqrt_srdhm(5, 1 << 29), 1);   /* 1.25 -> 1 */
    assert_int_equal(hqrt_srdhm(-5, 1 << 29), -1); /* -1.25 -> -1 */
    assert_int_equal(hqrt_srdhm(half, half), 1 << 29);
    assert_int_equal(hqrt_srdhm(INT32_MIN, INT32_MIN), INT32_MAX);
    assert_int_equal(hqrt_srdhm(INT32_MIN, INT32_MAX), -INT32_MAX); /* -(2^31 - 1) exactly */
    assert_int_equal(hqrt_srdhm(INT32_MAX, INT32_MAX), INT32_MAX - 1);
}

static void rounding_divide_by_pot_rounds_ties_away_from_zero(void **state)
{
    (void)state;
    assert_int_equal(hqrt_rounding_divide_by_pot(5, 1), 3);   /* 2.5 */
    assert_int_equal(hqrt_rounding_divide_by_pot(-5, 1), -3); /* -2.5 */
    assert_int_equal(hqrt_rounding_divide_by_pot(6, 2), 2);   /* 1.5 */
    assert_int_equal(hqrt_rounding_divide_by_pot(-6, 2), -2); /* -1.5 */
    assert_int_equal(hqrt_rounding_divide_by_pot(7, 2), 2);   /* 1.75 */
    assert_int_equal(hqrt_rounding_divide_by_pot(-7, 2), -2);
    assert_int_equal(hqrt_rounding_divide_by_pot(5, 2), 1); /* 1.25 */
    assert_int_equal(hqrt_rounding_divide_by_pot(-5, 2), -1);
    assert_int_equal(hqrt_rounding_divide_by_pot(42, 0), 42);
    assert_int_equal(hqrt_rounding_divide_by_pot(INT32_MAX, 31), 1);
    assert_int_equal(hqrt_rounding_divide_by_pot(INT32_MIN, 31), -1);
    assert_int_equal(hqrt_rounding_divide_by_pot(1 << 30, 31), 1);       /* exactly 0.5 */
    assert_int_equal(hqrt_rounding_divide_by_pot(-(1 << 30), 31), -1);   /* exactly -0.5 */
    assert_int_equal(hqrt_rounding_divide_by_pot((1 << 30) - 1, 31), 0); /* just below 0.5 */
    assert_int_equal(hqrt_rounding_divide_by_pot64(-((int64_t)3 << 40), 41), -2); /* -1.5 */
    assert_int_equal(hqrt_rounding_divide_by_pot64(((int64_t)1 << 61) - 1, 62), 0);
}

static void requantize32_is_srdhm_then_divide(void **state)
{
    (void)state;
    const int32_t half = 1 << 30;
    assert_int_equal(hqrt_requantize32(100, half, 0), 50);  /* x * 0.5 */
    assert_int_equal(hqrt_requantize32(100, half, -1), 25); /* x * 0.25 */
    assert_int_equal(hqrt_requantize32(100, half, 1), 100); /* x * 1 */
    assert_int_equal(hqrt_requantize32(-100, half, 2), -200);
    /* double rounding of the 32-bit path: 3 * 0.25 = 0.75; SRDHM gives round(1.5) = 2, then
     * round(2 / 2) = 1 */
    assert_int_equal(hqrt_requantize32(3, half, -1), 1);
    /* 5 * 0.25 = 1.25: SRDHM round(2.5) = 3, then round(1.5) = 2 (the single rounding gives 1) */
    assert_int_equal(hqrt_requantize32(5, half, -1), 2);
    assert_int_equal(hqrt_requantize64(5, half, -1), 1);
    /* shift at the left end: the left shift saturates to INT32_MAX first */
    assert_int_equal(hqrt_requantize32(5, half, 30), 1 << 30);
    /* at the right end: INT32_MAX * (2^31-1)/2^31 / 2^31 = 0.99999... -> 1 */
    assert_int_equal(hqrt_requantize32(INT32_MAX, INT32_MAX, -31), 1);
    assert_int_equal(hqrt_requantize32(1000, INT32_MAX, -31), 0);
    assert_int_equal(hqrt_requantize(((int64_t)1 << 40), half, 0, HQRT_PATH_GEMMLOWP),
                     (INT32_MAX / 2) + 1); /* accumulator saturated to int32 first */
}

static void requantize64_is_one_exact_rounding(void **state)
{
    (void)state;
    const int32_t half = 1 << 30;
    assert_int_equal(hqrt_requantize64(3, half, -1), 1); /* 0.75 */
    assert_int_equal(hqrt_requantize64(-3, half, -1), -1);
    assert_int_equal(hqrt_requantize64(5, half, 0), 3);   /* 2.5 */
    assert_int_equal(hqrt_requantize64(-5, half, 0), -3); /* -2.5 */
    assert_int_equal(hqrt_requantize64(5, -half, 0), -3); /* negative multiplier */
    assert_int_equal(hqrt_requantize64(((int64_t)1 << 40) + 1, half, 0), ((int64_t)1 << 39) + 1);
    assert_int_equal(hqrt_requantize64(-(((int64_t)1 << 40) + 1), half, 0),
                     -(((int64_t)1 << 39) + 1));
    /* 3 * 1610612736 / 2^31 = 2.25 at shift 0 -> 2; at shift 1 -> 4.5 -> 5 */
    assert_int_equal(hqrt_requantize64(3, 1610612736, 0), 2);
    assert_int_equal(hqrt_requantize64(3, 1610612736, 1), 5);
    /* both ends of the shift range */
    assert_int_equal(hqrt_requantize64((int64_t)1 << 40, half, -31), 256); /* 2^40 * 2^-32 */
    assert_int_equal(hqrt_requantize64(7, half, 30), (int64_t)7 << 29);
    /* saturation of the result and of the input */
    assert_int_equal(hqrt_requantize64(INT64_MAX, INT32_MAX, 30), HQRT_ACC_LIMIT);
    assert_int_equal(hqrt_requantize64(INT64_MIN, INT32_MAX, 30), -HQRT_ACC_LIMIT);
    assert_int_equal(hqrt_requantize64(0, INT32_MAX, 30), 0);
}

static void multiplier_comes_from_frexp_like_tflite(void **state)
{
    (void)state;
    int32_t m = -1, s = -1;
    hqi_quant_multiplier(0.0, &m, &s);
    assert_int_equal(m, 0);
    assert_int_equal(s, 0);
    hqi_quant_multiplier(0.5, &m, &s);
    assert_int_equal(m, 1 << 30);
    assert_int_equal(s, 0);
    hqi_quant_multiplier(1.0, &m, &s);
    assert_int_equal(m, 1 << 30);
    assert_int_equal(s, 1);
    hqi_quant_multiplier(3.0, &m, &s); /* 0.75 * 2^2 */
    assert_int_equal(m, 1610612736);
    assert_int_equal(s, 2);
    hqi_quant_multiplier(-0.5, &m, &s);
    assert_int_equal(m, -(1 << 30));
    assert_int_equal(s, 0);
    /* q * 2^31 rounds up to 2^31: halved and the exponent raised */
    hqi_quant_multiplier(1.0 - ldexp(1.0, -40), &m, &s);
    assert_int_equal(m, 1 << 30);
    assert_int_equal(s, 1);
    /* tiny: 2^-31 is still representable, 2^-33 is not */
    hqi_quant_multiplier(ldexp(1.0, -31), &m, &s);
    assert_int_equal(m, 1 << 30);
    assert_int_equal(s, -30);
    hqi_quant_multiplier(ldexp(1.0, -33), &m, &s);
    assert_int_equal(m, 0);
    assert_int_equal(s, 0);
    hqi_quant_multiplier(1e-12, &m, &s);
    assert_int_equal(m, 0);
    /* >= 2^31: saturated */
    hqi_quant_multiplier(ldexp(1.0, 40), &m, &s);
    assert_int_equal(m, INT32_MAX);
    assert_int_equal(s, 30);
    /* round trip: m * 2^(s-31) within 2^-31 relative of the ratio */
    const double ratios[] = {0.0123, 0.999, 1.7, 123.456, 3.3e-7};
    for (size_t i = 0; i < sizeof ratios / sizeof ratios[0]; i++) {
        hqi_quant_multiplier(ratios[i], &m, &s);
        assert_true(m >= (1 << 30));
        assert_true(fabs(ldexp((double)m, s - 31) / ratios[i] - 1) < ldexp(1.0, -30));
    }
}

static void activation_encoding_makes_zero_exact(void **state)
{
    (void)state;
    float scale;
    int32_t zp;
    hqi_quant_activation_qp(-1.0, 1.0, 8, &scale, &zp);
    assert_float_equal(scale, 2.0f / 255.0f, 1e-9);
    /* zp uses the float32 scale: 1 / 0.0078431377 = 127.49999 -> 127 (not round(127.5)) */
    assert_int_equal(zp, 127);
    hqi_quant_activation_qp(0.0, 6.0, 8, &scale, &zp);
    assert_int_equal(zp, 0);
    hqi_quant_activation_qp(2.0, 5.0, 8, &scale, &zp); /* widened to [0, 5] */
    assert_float_equal(scale, 5.0f / 255.0f, 1e-9);
    assert_int_equal(zp, 0);
    hqi_quant_activation_qp(-3.0, -1.0, 16, &scale, &zp); /* widened to [-3, 0] */
    assert_int_equal(zp, 65535);
    hqi_quant_activation_qp(0.0, 0.0, 8, &scale, &zp);
    assert_float_equal(scale, 1.0f, 0);
    assert_int_equal(zp, 0);
}

static void input_quantization_rounds_half_away_and_clamps(void **state)
{
    (void)state;
    assert_int_equal(hqrt_quantize_value(0.5f, 1.0f, 0, 8), 1);
    assert_int_equal(hqrt_quantize_value(-0.5f, 1.0f, 10, 8), 9);
    assert_int_equal(hqrt_quantize_value(-1.5f, 1.0f, 10, 8), 8);
    assert_int_equal(hqrt_quantize_value(1000.0f, 1.0f, 0, 8), 255);
    assert_int_equal(hqrt_quantize_value(-1000.0f, 1.0f, 0, 16), 0);
    assert_int_equal(hqrt_quantize_value(1000.0f, 1.0f, 0, 16), 1000);
    assert_float_equal(hqrt_dequantize_value(3, 0.5f, 1), 1.0f, 0);
    assert_float_equal(hqrt_dequantize_value(0, 0.5f, 1), -0.5f, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(srdhm_rounds_half_up_and_saturates),
        cmocka_unit_test(rounding_divide_by_pot_rounds_ties_away_from_zero),
        cmocka_unit_test(requantize32_is_srdhm_then_divide),
        cmocka_unit_test(requantize64_is_one_exact_rounding),
        cmocka_unit_test(multiplier_comes_from_frexp_like_tflite),
        cmocka_unit_test(activation_encoding_makes_zero_exact),
        cmocka_unit_test(input_quantization_rounds_half_away_and_clamps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
