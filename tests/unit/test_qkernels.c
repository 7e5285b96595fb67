/* test_qkernels.c — each integer reference kernel of core/runtime/hqrt_kernels_ref.c on a crafted
 * case whose expected codes are worked out by hand in the comments (docs/numerics.md formulas). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/hqrt_kernels_ref.h"

static const int32_t HALF = 1 << 30; /* multiplier of ratio 0.5 at shift 0, of 1 at shift 1 */
static const int32_t ONE_M = 1 << 30, ONE_S = 1;

/* A per-tensor output stage: ratio m * 2^(s-31), offset zp, clamp [lo, hi]. */
static hqrt_output_stage_t stage(const int32_t *m, const int32_t *s, int32_t count, int32_t bits,
                                 int32_t zp, int32_t lo, int32_t hi)
{
    hqrt_output_stage_t o = {
        HQRT_PATH_GEMMLOWP, count, m, s, NULL, NULL, NULL, 0, bits, zp, lo, hi};
    return o;
}

static void conv_requantizes_adds_zero_point_and_clamps(void **state)
{
    (void)state;
    /* 1x1 conv, 1 -> 1 channel: acc = 5 + 3 * (q - 10) for q = 10, 20, 30, 40 -> 5, 35, 65, 95;
     * * 0.5 -> 2.5, 17.5, 32.5, 47.5 -> 3, 18, 33, 48 (ties up); + 100; clamp at 140 */
    const uint8_t in[4] = {10, 20, 30, 40};
    const int8_t w[1] = {3};
    const int64_t bias[1] = {5};
    int32_t m = HALF, s = 0;
    hqrt_conv_params_t p = {
        1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 8, 10, 8, stage(&m, &s, 1, 8, 100, 0, 140)};
    uint8_t out[4];
    hqrt_dims_t d = {1, 2, 2, 1};
    assert_int_equal(hqrt_conv2d(&p, d, in, w, bias, NULL, d, out, NULL), HQRT_KERNEL_OK);
    assert_int_equal(out[0], 103);
    assert_int_equal(out[1], 118);
    assert_int_equal(out[2], 133);
    assert_int_equal(out[3], 140); /* 148 clamped (relu6-like upper bound) */
    /* a bad extent is refused before touching memory */
    hqrt_dims_t bad = {1, 3, 2, 1};
    assert_int_equal(hqrt_conv2d(&p, d, in, w, bias, NULL, bad, out, NULL),
                     HQRT_KERNEL_ERR_ARGUMENT);
}

static void conv_padding_contributes_zero_value(void **state)
{
    (void)state;
    /* 3x3 all-ones kernel on a 1x1 input of code zp+2 with pad 1: only the centre counts -> 2;
     * ratio 1 -> 2 + out zp 7 = 9. With pads reading zp as 0 the result would differ if zp were
     * used as a value (9 * zp). */
    const uint16_t in[1] = {1002};
    int8_t w[9];
    memset(w, 1, sizeof w);
    int32_t m = ONE_M, s = ONE_S;
    hqrt_conv_params_t p = {
        3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 16, 1000, 8, stage(&m, &s, 1, 8, 7, 0, 255)};
    p.out.path = HQRT_PATH_WIDE;
    uint8_t out[1];
    hqrt_dims_t d = {1, 1, 1, 1};
    assert_int_equal(hqrt_conv2d(&p, d, in, w, NULL, NULL, d, out, NULL), HQRT_KERNEL_OK);
    assert_int_equal(out[0], 9);
}

static void depthwise_conv_uses_per_channel_multipliers(void **state)
{
    (void)state;
    /* groups = 2, 1x1: channel 0 weight 2, ratio 1; channel 1 weight -1, ratio 0.5.
     * in (zp 0) = {4, 6}: acc = 8, -6 -> 8, -3 -> + zp 50 -> 58, 47 */
    const uint8_t in[2] = {4, 6};
    const int8_t w[2] = {2, -1};
    int32_t m[2] = {ONE_M, HALF}, s[2] = {ONE_S, 0};
    hqrt_conv_params_t p = {
        1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 2, 8, 0, 8, stage(m, s, 2, 8, 50, 0, 255)};
    uint8_t out[2];
    hqrt_dims_t d = {1, 1, 1, 2};
    assert_int_equal(hqrt_conv2d(&p, d, in, w, NULL, NULL, d, out, NULL), HQRT_KERNEL_OK);
    assert_int_equal(out[0], 58);
    assert_int_equal(out[1], 47);
}

static void conv_with_addend_sums_in_fixed_point(void **state)
{
    (void)state;
    /* acc = 1 * (q - 0) = 3; conv term ratio 0.5 * 256 = 128 -> 384; addend (q 5, zp 0) ratio
     * 0.25 * 256 = 64 -> 320; z = 704 -> /256 = 2.75 -> 3; + zp 10 = 13 */
    const uint8_t in[1] = {3}, add_codes[1] = {5};
    const int8_t w[1] = {1};
    int32_t m = HALF, s = 8; /* 0.5 * 2^8 */
    hqrt_conv_params_t p = {
        1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 8, 0, 8, stage(&m, &s, 1, 8, 10, 0, 255)};
    hqrt_addend_t a = {add_codes, 8, 0, HALF, 7}; /* 0.25 * 2^8 */
    uint8_t out[1];
    hqrt_dims_t d = {1, 1, 1, 1};
    assert_int_equal(hqrt_conv2d(&p, d, in, w, NULL, &a, d, out, NULL), HQRT_KERNEL_OK);
    assert_int_equal(out[0], 13);
}

static void leaky_uses_the_negative_multiplier_below_zero(void **state)
{
    (void)state;
    /* acc = q - 100: +20 -> ratio 0.5 -> 10; -20 -> ratio 0.5 * 0.25: SRDHM(-20, 0.5) = -10
     * exactly, then RoundingDivideByPOT(-10, 2) = -2.5 -> -3 (away from zero) */
    const uint8_t in[2] = {120, 80};
    int32_t m = HALF, s = 0, mn = HALF, sn = -2;
    hqrt_output_stage_t o = stage(&m, &s, 1, 8, 50, 0, 255);
    o.multiplier_neg = &mn;
    o.shift_neg = &sn;
    uint8_t out[2];
    assert_int_equal(hqrt_activation(8, 100, &o, 1, 2, in, out), HQRT_KERNEL_OK);
    assert_int_equal(out[0], 60);
    assert_int_equal(out[1], 47);
}

static void lut_indexes_by_the_input_code(void **state)
{
    (void)state;
    uint8_t lut[256];
    for (int i = 0; i < 256; i++)
        lut[i] = (uint8_t)(255 - i);
    const uint8_t in[3] = {0, 7, 255};
    uint16_t out16[3];
    uint16_t lut16[256];
    for (int i = 0; i < 256; i++)
        lut16[i] = (uint16_t)(i * 100);
    uint8_t out[3];
    assert_int_equal(hqrt_lut(8, lut, 8, 3, in, out), HQRT_KERNEL_OK);
    assert_int_equal(out[0], 255);
    assert_int_equal(out[1], 248);
    assert_int_equal(out[2], 0);
    assert_int_equal(hqrt_lut(8, lut16, 16, 3, in, out16), HQRT_KERNEL_OK);
    assert_int_equal(out16[1], 700);
}

static void dense_accumulates_over_inputs(void **state)
{
    (void)state;
    /* in (zp 1) {3, 5} -> {2, 4}; w [2,2] = {{1, -2}, {3, 1}}: o0 = 2 + 12 = 14, o1 = -4 + 4 +
     * bias 7 = 7; 16-bit weights, wide path, ratio 1, zp 0 */
    const uint8_t in[2] = {3, 5};
    const int16_t w[4] = {1, -2, 3, 1};
    const int64_t bias[2] = {0, 7};
    int32_t m = ONE_M, s = ONE_S;
    hqrt_conv_params_t p = {0};
    p.in_bits = 8;
    p.in_zp = 1;
    p.weight_bits = 16;
    p.out = stage(&m, &s, 1, 16, 0, 0, 65535);
    p.out.path = HQRT_PATH_WIDE;
    uint16_t out[2];
    assert_int_equal(hqrt_dense(&p, 1, 2, 2, in, w, bias, out), HQRT_KERNEL_OK);
    assert_int_equal(out[0], 14);
    assert_int_equal(out[1], 7);
}

static void deconv_scatters_with_stride(void **state)
{
    (void)state;
    /* 1-D along W: in {1, 2} (zp 0), kernel 2 {1, 10}, stride 2 -> full {1, 10, 2, 20} */
    const uint8_t in[2] = {1, 2};
    const int8_t w[2] = {1, 10};
    int32_t m = ONE_M, s = ONE_S;
    hqrt_conv_params_t p = {
        1, 2, 1, 2, 1, 1, 0, 0, 0, 0, 0, 0, 1, 8, 0, 8, stage(&m, &s, 1, 8, 0, 0, 255)};
    uint8_t out[4];
    hqrt_dims_t di = {1, 1, 2, 1}, dout = {1, 1, 4, 1};
    assert_int_equal(hqrt_deconv2d(&p, di, in, w, NULL, dout, out, NULL), HQRT_KERNEL_OK);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 10);
    assert_int_equal(out[2], 2);
    assert_int_equal(out[3], 20);
}

static void pools_max_on_codes_and_average_with_the_count_folded_in(void **state)
{
    (void)state;
    /* 2x2 input {1, 2, 3, 4} (zp 1), 2x2 window stride 1, pad bottom/right 1, no pad counting:
     * windows: (0,0) all four -> sum (0+1+2+3) = 6 / 4 = 1.5 -> 2; (0,1) {2,4} -> (1+3)/2 = 2;
     * (1,0) {3,4} -> (2+3)/2 = 2.5 -> 3; (1,1) {4} -> 3 */
    const uint8_t in[4] = {1, 2, 3, 4};
    int32_t m[4], s[4];
    /* entry k-1 has ratio 1/k: 1 -> (2^30, 1), 1/2 -> (2^30, 0), 1/3 -> (1431655765, -1),
     * 1/4 -> (2^30, -1) */
    m[0] = ONE_M, s[0] = 1, m[1] = HALF, s[1] = 0, m[2] = 1431655765, s[2] = -1, m[3] = HALF,
    s[3] = -1;
    hqrt_pool_params_t p = {2, 2, 1, 1, 0, 0, 1, 1, 0, 8, 1, stage(m, s, 4, 8, 1, 0, 255), 1, 1};
    hqrt_dims_t d = {1, 2, 2, 1};
    uint8_t out[4];
    assert_int_equal(hqrt_avgpool(&p, d, in, d, out), HQRT_KERNEL_OK);
    assert_int_equal(out[0], 2 + 1);
    assert_int_equal(out[1], 2 + 1);
    assert_int_equal(out[2], 3 + 1);
    assert_int_equal(out[3], 3 + 1);
    assert_int_equal(hqrt_maxpool(&p, d, in, d, out), HQRT_KERNEL_OK);
    assert_int_equal(out[0], 4);
    assert_int_equal(out[1], 4);
    assert_int_equal(out[2], 4);
    assert_int_equal(out[3], 4);
    /* global: sum 6 * 1/4 -> 2 (1.5 up) + zp 1 */
    int32_t gm = HALF, gs = -1;
    hqrt_output_stage_t g = stage(&gm, &gs, 1, 8, 1, 0, 255);
    assert_int_equal(hqrt_global_avg_pool(8, 1, &g, d, in, out), HQRT_KERNEL_OK);
    assert_int_equal(out[0], 3);
}

static void dilated_maxpool_takes_every_dilation_th_code_and_skips_pads(void **state)
{
    (void)state;
    /* 4x4 codes, 2x2 window with dilation 2, stride 1, pad top 1: the windows of output row 0
     * reach input rows -1 (padding, ignored) and 1; rows 1 and 2 read rows {0, 2} and {1, 3}. */
    const uint8_t in[16] = {5, 1, 9, 3, 2, 8, 4, 7, 6, 0, 11, 10, 12, 15, 13, 14};
    hqrt_pool_params_t p = {2, 2, 1, 1, 1, 0, 0, 0, 0, 8, 0, {0}, 2, 2};
    hqrt_dims_t di = {1, 4, 4, 1}, dout = {1, 3, 2, 1};
    uint8_t out[6];
    assert_int_equal(hqrt_maxpool(&p, di, in, dout, out), HQRT_KERNEL_OK);
    const uint8_t want[6] = {4, 8, 11, 10, 13, 15};
    assert_memory_equal(out, want, 6);
    p.dilation_w = 0; /* no dilation is 1, never 0 */
    assert_int_equal(hqrt_maxpool(&p, di, in, dout, out), HQRT_KERNEL_ERR_ARGUMENT);
    p.dilation_w = 2; /* the average pool has no dilation */
    assert_int_equal(hqrt_avgpool(&p, di, in, dout, out), HQRT_KERNEL_ERR_ARGUMENT);
}

static void elementwise_add_rescales_both_inputs(void **state)
{
    (void)state;
    /* a scale = out scale (ratio 256 -> (2^30, 9)), b scale = half (128 -> (2^30, 8));
     * a 10 - zp 0, b 5 - zp 0: z = 2560 + 640 = 3200 -> 12.5 -> 13 (+ zp 0).
     * broadcast: b has one element for two a's */
    const uint8_t a[2] = {10, 20}, b[1] = {5};
    int32_t m = ONE_M, s = ONE_S;
    hqrt_ew_params_t p = {HQRT_EW_ADD, 8, 0,    8, 0,
                          HALF,        9, HALF, 8, stage(&m, &s, 1, 8, 0, 0, 255)};
    hqrt_shape_t as = {2, {1, 2}}, bs = {2, {1, 1}}, os = {2, {1, 2}};
    uint8_t out[2];
    assert_int_equal(hqrt_elementwise(&p, &as, a, &bs, b, &os, out), HQRT_KERNEL_OK);
    assert_int_equal(out[0], 13);
    assert_int_equal(out[1], 23); /* 5120 + 640 = 5760 / 256 = 22.5 -> 23 */
    /* ew_sub: b's multiplier negated: 10 - 2.5 = 7.5 -> 8; 20 - 2.5 = 17.5 -> 18 */
    p.b_multiplier = -HALF;
    assert_int_equal(hqrt_elementwise(&p, &as, a, &bs, b, &os, out), HQRT_KERNEL_OK);
    assert_int_equal(out[0], 8);
    assert_int_equal(out[1], 18);
    /* max / min of the terms */
    p.b_multiplier = HALF;
    p.op = HQRT_EW_MIN;
    assert_int_equal(hqrt_elementwise(&p, &as, a, &bs, b, &os, out), HQRT_KERNEL_OK);
    assert_int_equal(out[0], 3); /* 2.5 -> 3 */
    /* mult: (10-0)*(5-0) = 50 * 0.5 = 25 */
    p.op = HQRT_EW_MULT;
    m = HALF;
    s = 0;
    assert_int_equal(hqrt_elementwise(&p, &as, a, &bs, b, &os, out), HQRT_KERNEL_OK);
    assert_int_equal(out[0], 25);
    assert_int_equal(out[1], 50);
    /* incompatible shapes are refused */
    hqrt_shape_t cs = {2, {1, 3}};
    assert_int_equal(hqrt_elementwise(&p, &as, a, &cs, b, &os, out), HQRT_KERNEL_ERR_ARGUMENT);
}

static void data_movement_kernels_copy_codes(void **state)
{
    (void)state;
    /* concat on channels of [1,1,1,1] and [1,1,1,2] 16-bit codes */
    const uint16_t x[1] = {7}, y[2] = {8, 9};
    const void *ins[2] = {x, y};
    hqrt_shape_t shapes[2] = {{4, {1, 1, 1, 1}}, {4, {1, 1, 1, 2}}}, os = {4, {1, 1, 1, 3}};
    uint16_t cat[3];
    assert_int_equal(hqrt_concat(16, 2, shapes, ins, 3, &os, cat), HQRT_KERNEL_OK);
    assert_int_equal(cat[0], 7);
    assert_int_equal(cat[2], 9);
    uint16_t p0[2], p1[1];
    void *outs[2] = {p0, p1};
    int32_t sizes[2] = {2, 1};
    assert_int_equal(hqrt_split(16, &os, cat, 3, 2, sizes, outs), HQRT_KERNEL_OK);
    assert_int_equal(p0[1], 8);
    assert_int_equal(p1[0], 9);
    /* slice every second column of 1x4 */
    const uint8_t row[4] = {1, 2, 3, 4};
    hqrt_slice_params_t sp = {{0, 0, 0}, {1, 4, 1}, {1, 2, 1}};
    uint8_t sl[2];
    assert_int_equal(
        hqrt_slice(8, &sp, (hqrt_dims_t){1, 1, 4, 1}, row, (hqrt_dims_t){1, 1, 2, 1}, sl),
        HQRT_KERNEL_OK);
    assert_int_equal(sl[0], 1);
    assert_int_equal(sl[1], 3);
    /* pad: constant code 99 on the left, reflect on the right */
    hqrt_pad_params_t pp = {HQRT_PAD_CONSTANT, 99, {0, 1, 0}, {0, 0, 0}};
    uint8_t padded[5];
    assert_int_equal(
        hqrt_pad(8, &pp, (hqrt_dims_t){1, 1, 4, 1}, row, (hqrt_dims_t){1, 1, 5, 1}, padded),
        HQRT_KERNEL_OK);
    assert_int_equal(padded[0], 99);
    assert_int_equal(padded[1], 1);
    pp.mode = HQRT_PAD_REFLECT;
    pp.before[1] = 0;
    pp.after[1] = 1;
    assert_int_equal(
        hqrt_pad(8, &pp, (hqrt_dims_t){1, 1, 4, 1}, row, (hqrt_dims_t){1, 1, 5, 1}, padded),
        HQRT_KERNEL_OK);
    assert_int_equal(padded[4], 3);
    /* depth_to_space then space_to_depth is the identity (DCR) */
    const uint8_t deep[4] = {1, 2, 3, 4};
    uint8_t wide[4], back[4];
    assert_int_equal(hqrt_depth_to_space(8, 2, 0, (hqrt_dims_t){1, 1, 1, 4}, deep, wide),
                     HQRT_KERNEL_OK);
    assert_int_equal(wide[2], 3); /* out [0,1,0] <- channel (1*2+0) */
    assert_int_equal(hqrt_space_to_depth(8, 2, (hqrt_dims_t){1, 2, 2, 1}, wide, back),
                     HQRT_KERNEL_OK);
    assert_memory_equal(back, deep, 4);
    /* transpose [1,2,3] -> [1,3,2] */
    const uint8_t t[6] = {1, 2, 3, 4, 5, 6};
    uint8_t tt[6];
    hqrt_shape_t ts = {3, {1, 2, 3}};
    const int32_t perm[3] = {0, 2, 1};
    assert_int_equal(hqrt_transpose(8, &ts, t, perm, tt), HQRT_KERNEL_OK);
    const uint8_t want[6] = {1, 4, 2, 5, 3, 6};
    assert_memory_equal(tt, want, 6);
    /* argmax / reduce_max on codes */
    uint8_t am[2], rm[2];
    assert_int_equal(hqrt_argmax(8, &ts, t, 8, am), HQRT_KERNEL_OK);
    assert_int_equal(am[0], 2);
    assert_int_equal(hqrt_reduce_max(8, &ts, t, 2, rm), HQRT_KERNEL_OK);
    assert_int_equal(rm[1], 6);
}

static void resize_uses_exact_fixed_point_coordinates(void **state)
{
    (void)state;
    /* 1x2 -> 1x4, asymmetric: x_in = 0, 0.5, 1, 1.5 (clamped to 1); codes {10, 110}, zp 10:
     * bilinear {10, 60, 110, 110}; nearest {10, 10, 110, 110} */
    const uint8_t in[2] = {10, 110};
    uint8_t out[4];
    hqrt_resize_params_t p = {HQRT_RESIZE_BILINEAR, HQRT_COORDS_ASYMMETRIC, 0, 8, 10};
    hqrt_dims_t di = {1, 1, 2, 1}, dout = {1, 1, 4, 1};
    assert_int_equal(hqrt_resize(&p, di, in, dout, out), HQRT_KERNEL_OK);
    const uint8_t bil[4] = {10, 60, 110, 110};
    assert_memory_equal(out, bil, 4);
    p.method = HQRT_RESIZE_NEAREST;
    assert_int_equal(hqrt_resize(&p, di, in, dout, out), HQRT_KERNEL_OK);
    const uint8_t near[4] = {10, 10, 110, 110};
    assert_memory_equal(out, near, 4);
    /* half_pixel bilinear 2 -> 4: x_in = -0.25, 0.25, 0.75, 1.25 -> {10, 35, 85, 110} */
    p.method = HQRT_RESIZE_BILINEAR;
    p.coords = HQRT_COORDS_HALF_PIXEL;
    assert_int_equal(hqrt_resize(&p, di, in, dout, out), HQRT_KERNEL_OK);
    const uint8_t half[4] = {10, 35, 85, 110};
    assert_memory_equal(out, half, 4);
}

static void softmax_uses_the_exp_table_and_a_q31_probability(void **state)
{
    (void)state;
    /* in_scale ln(2): exp(-d ln2) = 2^-d, lut[d] = 2^(30-d). codes {5, 4, 5}: d = {0, 1, 0},
     * e = {2^30, 2^29, 2^30}, sum = 2.5 * 2^30, p = {0.4, 0.2, 0.4} * 2^31 rounded;
     * output scale 1/255 (ratio 255 * 2^-31 = 0.99609375 * 2^-23 -> (255 * 2^23, -23)), zp 0:
     * 0.4 * 255 = 102, 0.2 * 255 = 51 */
    int32_t lut[256];
    for (int d = 0; d < 256; d++)
        lut[d] = d <= 30 ? (int32_t)(1 << (30 - d)) : 0;
    const uint8_t in[3] = {5, 4, 5};
    uint8_t out[3];
    int32_t m = 255 << 23, s = -23;
    hqrt_output_stage_t o = stage(&m, &s, 1, 8, 0, 0, 255);
    o.path = HQRT_PATH_WIDE;
    hqrt_shape_t shape = {2, {1, 3}};
    assert_int_equal(hqrt_softmax(8, lut, &o, &shape, 1, in, out), HQRT_KERNEL_OK);
    assert_int_equal(out[0], 102);
    assert_int_equal(out[1], 51);
    assert_int_equal(out[2], 102);
    assert_int_equal(hqrt_softmax(8, lut, &o, &shape, 2, in, out), HQRT_KERNEL_ERR_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv_requantizes_adds_zero_point_and_clamps),
        cmocka_unit_test(conv_padding_contributes_zero_value),
        cmocka_unit_test(depthwise_conv_uses_per_channel_multipliers),
        cmocka_unit_test(conv_with_addend_sums_in_fixed_point),
        cmocka_unit_test(leaky_uses_the_negative_multiplier_below_zero),
        cmocka_unit_test(lut_indexes_by_the_input_code),
        cmocka_unit_test(dense_accumulates_over_inputs),
        cmocka_unit_test(deconv_scatters_with_stride),
        cmocka_unit_test(pools_max_on_codes_and_average_with_the_count_folded_in),
        cmocka_unit_test(dilated_maxpool_takes_every_dilation_th_code_and_skips_pads),
        cmocka_unit_test(elementwise_add_rescales_both_inputs),
        cmocka_unit_test(data_movement_kernels_copy_codes),
        cmocka_unit_test(resize_uses_exact_fixed_point_coordinates),
        cmocka_unit_test(softmax_uses_the_exp_table_and_a_q31_probability),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
