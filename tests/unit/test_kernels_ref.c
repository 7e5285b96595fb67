/* test_kernels_ref.c — the scalar float32 reference kernels against hand-computed results and
 * tiny independent implementations written differently from the kernels. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "emulate/kernels_ref.h"

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const hqi_ref_act_t linear = {HQ_ACT_LINEAR, 0.0f, 0.0f, NULL, 0};

static void assert_close_array(const float *got, const float *want, int n, double tol)
{
    for (int i = 0; i < n; i++) {
        double diff = fabs((double)got[i] - (double)want[i]);
        if (!(diff <= tol * (1.0 + fabs((double)want[i])))) {
            fail_msg("element %d: got %.9g, want %.9g", i, (double)got[i], (double)want[i]);
        }
    }
}

/* Deterministic pseudo-random values in [-1, 1). */
static void fill(float *x, int n, uint32_t seed)
{
    uint32_t s = seed * 2654435761u + 1u;
    for (int i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((double)(s >> 8) / (double)(1u << 24) * 2.0 - 1.0);
    }
}

static hqi_ref_window_t window(int k, int s, int d, int pt, int pl, int pb, int pr)
{
    hqi_ref_window_t w = {k, k, s, s, d, d, pt, pl, pb, pr};
    return w;
}

/* ---- conv ------------------------------------------------------------------------------- */

static void conv_3x3_on_4x4_with_asymmetric_pads_matches_hand_result(void **state)
{
    (void)state;
    float in[16], k[9] = {0}, bias = 0.5f, out[9];
    for (int i = 0; i < 16; i++)
        in[i] = (float)(i + 1);
    k[0] = 1.0f; /* ky=0, kx=0 */
    k[8] = 2.0f; /* ky=2, kx=2 */
    hqi_ref_conv_params_t p = {window(3, 1, 1, 1, 0, 0, 1), 1, linear};
    hqi_ref_dims_t di = {1, 4, 4, 1}, dout = {1, 3, 3, 1};
    hq_error_t err;
    assert_int_equal(hqi_ref_conv2d(&p, di, in, k, &bias, NULL, dout, out, &err), HQ_OK);
    /* out[y][x] = in[y-1][x] + 2*in[y+1][x+2] + 0.5 (rows above / columns right are zero). */
    const float want[9] = {14.5f, 16.5f, 0.5f, 23.5f, 26.5f, 3.5f, 35.5f, 38.5f, 7.5f};
    assert_close_array(out, want, 9, 0);
}

static void conv_with_dilation_two_samples_every_other_pixel(void **state)
{
    (void)state;
    float in[25], k[9], out[1];
    for (int i = 0; i < 25; i++)
        in[i] = (float)(i + 1);
    for (int i = 0; i < 9; i++)
        k[i] = 1.0f;
    hqi_ref_conv_params_t p = {window(3, 1, 2, 0, 0, 0, 0), 1, linear};
    hqi_ref_dims_t di = {1, 5, 5, 1}, dout = {1, 1, 1, 1};
    assert_int_equal(hqi_ref_conv2d(&p, di, in, k, NULL, NULL, dout, out, NULL), HQ_OK);
    assert_float_equal(out[0], 1 + 3 + 5 + 11 + 13 + 15 + 21 + 23 + 25, 0);
    /* Without dilation the same kernel sums the top-left 3x3 block instead. */
    p.window.dilation_h = p.window.dilation_w = 1;
    hqi_ref_dims_t d3 = {1, 3, 3, 1};
    float out3[9];
    assert_int_equal(hqi_ref_conv2d(&p, di, in, k, NULL, NULL, d3, out3, NULL), HQ_OK);
    assert_float_equal(out3[0], 1 + 2 + 3 + 6 + 7 + 8 + 11 + 12 + 13, 0);
}

static void conv_stride_two_with_batch_two_keeps_images_apart(void **state)
{
    (void)state;
    float in[2 * 16], k[4] = {1, 1, 1, 1}, out[2 * 4];
    for (int i = 0; i < 32; i++)
        in[i] = i < 16 ? 1.0f : 10.0f;
    hqi_ref_conv_params_t p = {window(2, 2, 1, 0, 0, 0, 0), 1, linear};
    hqi_ref_dims_t di = {2, 4, 4, 1}, dout = {2, 2, 2, 1};
    assert_int_equal(hqi_ref_conv2d(&p, di, in, k, NULL, NULL, dout, out, NULL), HQ_OK);
    const float want[8] = {4, 4, 4, 4, 40, 40, 40, 40};
    assert_close_array(out, want, 8, 0);
}

/* Runs a groups=1 conv on channels [c0, c0+cin) of `in` producing channels [o0, o0+cout). */
static void conv_slice(const float *in, hqi_ref_dims_t di, int c0, int cin, const float *k_full,
                       int cout_total, int o0, int cout, float *out_full)
{
    float sub_in[5 * 5 * 8], sub_k[9 * 8 * 8], sub_out[5 * 5 * 8];
    for (int p = 0; p < di.h * di.w; p++)
        for (int c = 0; c < cin; c++)
            sub_in[p * cin + c] = in[p * di.c + c0 + c];
    for (int t = 0; t < 9; t++)
        for (int i = 0; i < cin; i++)
            for (int o = 0; o < cout; o++)
                sub_k[(t * cin + i) * cout + o] = k_full[(t * cin + i) * cout_total + o0 + o];
    hqi_ref_conv_params_t p = {window(3, 1, 1, 1, 1, 1, 1), 1, linear};
    hqi_ref_dims_t dsi = {1, di.h, di.w, cin}, dso = {1, di.h, di.w, cout};
    assert_int_equal(hqi_ref_conv2d(&p, dsi, sub_in, sub_k, NULL, NULL, dso, sub_out, NULL),
                     HQ_OK);
    for (int q = 0; q < di.h * di.w; q++)
        for (int o = 0; o < cout; o++)
            out_full[q * cout_total + o0 + o] = sub_out[q * cout + o];
}

static void depthwise_conv_equals_one_single_channel_conv_per_channel(void **state)
{
    (void)state;
    enum { H = 5, W = 5, C = 3, M = 2 }; /* channel multiplier 2: 6 outputs */
    float in[H * W * C], k[9 * C * M], out[H * W * C * M], want[H * W * C * M];
    fill(in, COUNT(in), 1);
    fill(k, COUNT(k), 2);
    hqi_ref_conv_params_t p = {window(3, 1, 1, 1, 1, 1, 1), C, linear};
    hqi_ref_dims_t di = {1, H, W, C}, dout = {1, H, W, C * M};
    assert_int_equal(hqi_ref_conv2d(&p, di, in, k, NULL, NULL, dout, out, NULL), HQ_OK);
    for (int c = 0; c < C; c++) /* input channel c feeds outputs c*M .. c*M+M-1 */
        conv_slice(in, di, c, 1, k, C * M, c * M, M, want);
    assert_close_array(out, want, COUNT(want), 1e-6);
}

static void grouped_conv_equals_separate_convs_on_channel_slices(void **state)
{
    (void)state;
    enum { H = 4, W = 5, CIN = 4, COUT = 6, G = 2 };
    float in[H * W * CIN], k[9 * (CIN / G) * COUT], out[H * W * COUT], want[H * W * COUT];
    fill(in, COUNT(in), 3);
    fill(k, COUNT(k), 4);
    hqi_ref_conv_params_t p = {window(3, 1, 1, 1, 1, 1, 1), G, linear};
    hqi_ref_dims_t di = {1, H, W, CIN}, dout = {1, H, W, COUT};
    assert_int_equal(hqi_ref_conv2d(&p, di, in, k, NULL, NULL, dout, out, NULL), HQ_OK);
    for (int g = 0; g < G; g++)
        conv_slice(in, di, g * CIN / G, CIN / G, k, COUT, g * COUT / G, COUT / G, want);
    assert_close_array(out, want, COUNT(want), 1e-6);
    /* A groups=1 conv with the same weights reads all channels and gives another answer. */
    p.groups = 1;
    float k1[9 * CIN * COUT];
    fill(k1, COUNT(k1), 4);
    assert_int_equal(hqi_ref_conv2d(&p, di, in, k1, NULL, NULL, dout, out, NULL), HQ_OK);
    assert_true(fabsf(out[0] - want[0]) > 1e-4f || fabsf(out[1] - want[1]) > 1e-4f);
}

static void conv_adds_the_addend_before_the_activation(void **state)
{
    (void)state;
    float in[1] = {2.0f}, k[1] = {1.0f}, addend[1] = {-5.0f}, out[1];
    hqi_ref_conv_params_t p = {window(1, 1, 1, 0, 0, 0, 0), 1, {HQ_ACT_RELU, 0, 0, NULL, 0}};
    hqi_ref_dims_t d = {1, 1, 1, 1};
    assert_int_equal(hqi_ref_conv2d(&p, d, in, k, NULL, addend, d, out, NULL), HQ_OK);
    assert_float_equal(out[0], 0.0f, 0); /* relu(2 - 5), not relu(2) - 5 */
    addend[0] = 1.5f;
    assert_int_equal(hqi_ref_conv2d(&p, d, in, k, NULL, addend, d, out, NULL), HQ_OK);
    assert_float_equal(out[0], 3.5f, 0);
}

static void conv_rejects_a_wrong_output_size_and_groups_that_do_not_divide(void **state)
{
    (void)state;
    float in[16] = {0}, k[9] = {0}, out[16];
    hqi_ref_conv_params_t p = {window(3, 1, 1, 0, 0, 0, 0), 1, linear};
    hqi_ref_dims_t di = {1, 4, 4, 1}, bad = {1, 4, 4, 1}, good = {1, 2, 2, 1};
    hq_error_t err;
    assert_int_equal(hqi_ref_conv2d(&p, di, in, k, NULL, NULL, bad, out, &err), HQ_ERR_ARGUMENT);
    assert_non_null(strstr(err.message, "conv2d: output: H extent 4, expected 2"));
    assert_int_equal(hqi_ref_conv2d(&p, di, in, k, NULL, NULL, good, out, &err), HQ_OK);
    p.groups = 2; /* 1 input channel */
    assert_int_equal(hqi_ref_conv2d(&p, di, in, k, NULL, NULL, good, out, &err), HQ_ERR_ARGUMENT);
    assert_non_null(strstr(err.message, "groups"));
    p.groups = 1;
    p.window.stride_h = 0;
    assert_int_equal(hqi_ref_conv2d(&p, di, in, k, NULL, NULL, good, out, &err), HQ_ERR_ARGUMENT);
    assert_non_null(strstr(err.message, "stride_h"));
    p.window.stride_h = 1;
    assert_int_equal(hqi_ref_conv2d(&p, di, in, NULL, NULL, NULL, good, out, &err),
                     HQ_ERR_ARGUMENT);
    assert_non_null(strstr(err.message, "weights"));
}

static void kernels_refuse_shapes_whose_element_count_overflows(void **state)
{
    (void)state;
    float x[1] = {0}, y[1];
    hq_error_t err;
    hqi_ref_dims_t huge = {1 << 20, 1 << 20, 1 << 20, 1 << 20};
    assert_int_equal(hqi_ref_global_avg_pool(huge, x, y, &err), HQ_ERR_LIMIT);
    assert_non_null(strstr(err.message, "global_avg_pool: input"));
    hqi_ref_dims_t negative = {1, -3, 1, 1};
    assert_int_equal(hqi_ref_global_avg_pool(negative, x, y, &err), HQ_ERR_ARGUMENT);
    hq_shape_t s = {3, {INT64_MAX, INT64_MAX, 2}};
    assert_int_equal(hqi_ref_softmax(&s, x, 1, y, &err), HQ_ERR_LIMIT);
    hq_shape_t bad_rank = {9, {1}};
    assert_int_equal(hqi_ref_softmax(&bad_rank, x, 0, y, &err), HQ_ERR_ARGUMENT);
}

/* ---- deconv ----------------------------------------------------------------------------- */

static void deconv_kernel_2_stride_2_tiles_the_scaled_kernel(void **state)
{
    (void)state;
    float in[4] = {1, 2, 3, 4}, k[4] = {1, 2, 3, 4}, bias = 1.0f, out[16];
    hqi_ref_deconv_params_t p = {window(2, 2, 1, 0, 0, 0, 0), 0, 0, 1, linear};
    hqi_ref_dims_t di = {1, 2, 2, 1}, dout = {1, 4, 4, 1};
    assert_int_equal(hqi_ref_deconv2d(&p, di, in, k, &bias, dout, out, NULL), HQ_OK);
    const float want[16] = {2, 3, 3, 5, 4, 5, 7, 9, 4, 7, 5, 9, 10, 13, 13, 17};
    assert_close_array(out, want, 16, 0);
}

static void deconv_checks_each_axis_against_its_own_extent_with_output_padding(void **state)
{
    (void)state;
    float in[6] = {0}, k[4] = {0}, out[4 * 7];
    hqi_ref_deconv_params_t p = {window(2, 2, 1, 0, 0, 0, 0), 0, 1, 1, linear};
    hqi_ref_dims_t di = {1, 2, 3, 1}, good = {1, 4, 7, 1}, short_w = {1, 4, 6, 1};
    hq_error_t err;
    assert_int_equal(hqi_ref_deconv2d(&p, di, in, k, NULL, good, out, &err), HQ_OK);
    assert_int_equal(hqi_ref_deconv2d(&p, di, in, k, NULL, short_w, out, &err), HQ_ERR_ARGUMENT);
    assert_non_null(strstr(err.message, "deconv2d: output: W extent 6, expected 7"));
    p.output_pad_w = 0;
    assert_int_equal(hqi_ref_deconv2d(&p, di, in, k, NULL, short_w, out, &err), HQ_OK);
}

static void deconv_pads_crop_the_canvas_and_output_padding_gets_only_bias(void **state)
{
    (void)state;
    /* 1-D along H: canvas [1, 10, 102, 20, 200, 0] (last row from output_padding), crop 1/1. */
    float in[2] = {1, 2}, k[3] = {1, 10, 100}, out[4], bias = 0.25f;
    hqi_ref_deconv_params_t p = {{3, 1, 2, 1, 1, 1, 1, 0, 1, 0}, 1, 0, 1, linear};
    hqi_ref_dims_t di = {1, 2, 1, 1}, dout = {1, 4, 1, 1};
    assert_int_equal(hqi_ref_deconv2d(&p, di, in, k, NULL, dout, out, NULL), HQ_OK);
    const float want[4] = {10, 102, 20, 200};
    assert_close_array(out, want, 4, 0);
    /* Without cropping at the end, the output_padding row holds the bias alone. */
    p.window.pad_bottom = 0;
    float out5[5];
    hqi_ref_dims_t d5 = {1, 5, 1, 1};
    assert_int_equal(hqi_ref_deconv2d(&p, di, in, k, &bias, d5, out5, NULL), HQ_OK);
    assert_float_equal(out5[4], 0.25f, 0);
    assert_float_equal(out5[3], 200.25f, 0);
    hq_error_t err;
    p.output_pad_h = 2; /* must be below the stride */
    assert_int_equal(hqi_ref_deconv2d(&p, di, in, k, NULL, d5, out5, &err), HQ_ERR_ARGUMENT);
    assert_non_null(strstr(err.message, "output_padding"));
}

static void deconv_with_groups_and_dilation_matches_a_scatter_implementation(void **state)
{
    (void)state;
    enum { H = 3, W = 2, CIN = 4, COUT = 6, G = 2, K = 3, S = 2, D = 2, P = 1, OP = 1 };
    enum { FULL_H = (H - 1) * S + D * (K - 1) + 1 + OP, FULL_W = (W - 1) * S + D * (K - 1) + 1 + OP };
    enum { OH = FULL_H - 2 * P, OW = FULL_W - 2 * P };
    float in[H * W * CIN], k[K * K * (CIN / G) * COUT], bias[COUT], out[OH * OW * COUT];
    float canvas[FULL_H * FULL_W * COUT], want[OH * OW * COUT];
    fill(in, COUNT(in), 5);
    fill(k, COUNT(k), 6);
    fill(bias, COUNT(bias), 7);
    memset(canvas, 0, sizeof(canvas));
    const int cpg = CIN / G, opg = COUT / G;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int ci = 0; ci < CIN; ci++) {
                int g = ci / cpg;
                for (int ky = 0; ky < K; ky++)
                    for (int kx = 0; kx < K; kx++)
                        for (int oo = 0; oo < opg; oo++) {
                            int o = g * opg + oo;
                            int fy = y * S + ky * D, fx = x * S + kx * D;
                            canvas[(fy * FULL_W + fx) * COUT + o] +=
                                in[(y * W + x) * CIN + ci] *
                                k[((ky * K + kx) * cpg + ci - g * cpg) * COUT + o];
                        }
            }
    for (int y = 0; y < OH; y++)
        for (int x = 0; x < OW; x++)
            for (int o = 0; o < COUT; o++)
                want[(y * OW + x) * COUT + o] = canvas[((y + P) * FULL_W + x + P) * COUT + o] + bias[o];
    hqi_ref_deconv_params_t p = {window(K, S, D, P, P, P, P), OP, OP, G, linear};
    hqi_ref_dims_t di = {1, H, W, CIN}, dout = {1, OH, OW, COUT};
    assert_int_equal(hqi_ref_deconv2d(&p, di, in, k, bias, dout, out, NULL), HQ_OK);
    assert_close_array(out, want, COUNT(want), 1e-5);
}

/* ---- dense, batch norm, normalization, activation ---------------------------------------- */

static void dense_multiplies_rows_by_the_cin_by_cout_matrix(void **state)
{
    (void)state;
    const float in[6] = {1, 2, 3, 4, 5, 6}; /* [2, 3] */
    const float w[6] = {1, 0, 0, 1, 1, -1}; /* [3, 2] */
    const float b[2] = {0.5f, -100};
    float out[4];
    const hqi_ref_act_t relu = {HQ_ACT_RELU, 0, 0, NULL, 0};
    assert_int_equal(hqi_ref_dense(2, 3, 2, in, w, b, &relu, out, NULL), HQ_OK);
    const float want[4] = {4.5f, 0, 10.5f, 0};
    assert_close_array(out, want, 4, 0);
}

static void layer_norm_normalizes_each_row_over_its_channels_then_scales_and_shifts(void **state)
{
    (void)state;
    /* row 0: mean 2.5, population variance 1.25, + epsilon 0.25 = 1.5; row 1 is constant */
    const float in[8] = {1, 2, 3, 4, 5, 5, 5, 5}, gamma[4] = {1, 2, 1, -1}, beta[4] = {0, 0, 1, 0};
    float out[8];
    assert_int_equal(hqi_ref_layer_norm(2, 4, in, gamma, beta, 0.25f, out, NULL), HQ_OK);
    const float want[8] = {-1.22474487f, -0.81649658f, 1.40824829f, -1.22474487f, 0, 0, 1, 0};
    assert_close_array(out, want, 8, 1e-7);
    /* without gamma and beta: the normalized values alone, in place */
    float inplace[4] = {1, 2, 3, 4};
    assert_int_equal(hqi_ref_layer_norm(1, 4, inplace, NULL, NULL, 0.25f, inplace, NULL), HQ_OK);
    const float plain[4] = {-1.22474487f, -0.40824829f, 0.40824829f, 1.22474487f};
    assert_close_array(inplace, plain, 4, 1e-7);
    hq_error_t err;
    assert_int_equal(hqi_ref_layer_norm(2, 4, in, gamma, beta, 0.0f, out, &err), HQ_ERR_ARGUMENT);
    assert_non_null(strstr(err.message, "row 1 has variance 0"));
    assert_int_equal(hqi_ref_layer_norm(2, 4, in, gamma, beta, -1.0f, out, &err), HQ_ERR_ARGUMENT);
}

static void matmul_multiplies_one_matrix_per_channel(void **state)
{
    (void)state;
    /* channel 0: [[1, 2, 3], [4, 5, 6]] x [[1, 0], [0, 1], [1, 1]]; channel 1: the identity-ish
     * a = [[1, 0, 0], [0, 1, 0]] x b = [[2, 3], [4, 5], [6, 7]] */
    const float a[12] = {1, 1, 2, 0, 3, 0, 4, 0, 5, 1, 6, 0};
    const float b[12] = {1, 2, 0, 3, 0, 4, 1, 5, 1, 6, 1, 7};
    hq_shape_t as = {4, {1, 2, 3, 2}}, bs = {4, {1, 3, 2, 2}};
    float out[8];
    assert_int_equal(hqi_ref_matmul(&as, a, &bs, b, out, NULL), HQ_OK);
    /* out[i][j][c]: channel 0 [[4, 5], [10, 11]], channel 1 [[2, 3], [4, 5]] */
    const float want[8] = {4, 2, 5, 3, 10, 4, 11, 5};
    assert_close_array(out, want, 8, 0);
    hq_error_t err;
    hq_shape_t wrong = {4, {1, 2, 2, 2}};
    assert_int_equal(hqi_ref_matmul(&as, a, &wrong, b, out, &err), HQ_ERR_ARGUMENT);
    assert_non_null(strstr(err.message, "must agree in N, K and C"));
}

static void batch_norm_scales_by_gamma_over_sqrt_var_plus_epsilon(void **state)
{
    (void)state;
    const float in[4] = {3, 3, 5, 5}, gamma[2] = {2, 1}, beta[2] = {1, 0};
    const float mean[2] = {1, 1}, var[2] = {3, 15};
    float out[4];
    assert_int_equal(hqi_ref_batch_norm(2, 2, in, gamma, beta, mean, var, 1.0f, &linear, out,
                                        NULL),
                     HQ_OK);
    const float want[4] = {3, 0.5f, 5, 1};
    assert_close_array(out, want, 4, 1e-7);
    hq_error_t err;
    const float negative[2] = {-2, 0};
    assert_int_equal(hqi_ref_batch_norm(2, 2, in, gamma, beta, mean, negative, 1.0f, &linear,
                                        out, &err),
                     HQ_ERR_ARGUMENT);
    assert_non_null(strstr(err.message, "var[0]"));
}

static void normalization_subtracts_mean_and_divides_by_std_per_channel(void **state)
{
    (void)state;
    const float in[6] = {0, 128, 255, 10, 20, 30};
    const float mean[3] = {0, 128, 255}, std[3] = {1, 2, 5};
    float out[6];
    assert_int_equal(hqi_ref_normalization(2, 3, in, mean, std, 3, &linear, out, NULL), HQ_OK);
    const float want[6] = {0, 0, 0, 10, -54, -45};
    assert_close_array(out, want, 6, 1e-7);
    const float one_mean = 10, one_std = 10;
    assert_int_equal(hqi_ref_normalization(2, 3, in, &one_mean, &one_std, 1, &linear, out, NULL),
                     HQ_OK);
    assert_float_equal(out[1], 11.8f, 1e-5);
    hq_error_t err;
    const float zero_std[3] = {1, 0, 1};
    assert_int_equal(hqi_ref_normalization(2, 3, in, mean, zero_std, 3, &linear, out, &err),
                     HQ_ERR_ARGUMENT);
    assert_int_equal(hqi_ref_normalization(2, 3, in, mean, std, 2, &linear, out, &err),
                     HQ_ERR_ARGUMENT);
}

static void every_activation_follows_its_formula(void **state)
{
    (void)state;
    const float slopes[2] = {0.5f, 0.25f};
    const struct {
        hqi_ref_act_t act;
        float x, want;
    } cases[] = {
        {{HQ_ACT_LINEAR, 0, 0, NULL, 0}, -3, -3},
        {{HQ_ACT_RELU, 0, 0, NULL, 0}, -3, 0},
        {{HQ_ACT_RELU, 0, 0, NULL, 0}, 3, 3},
        {{HQ_ACT_RELU6, 0, 0, NULL, 0}, 7, 6},
        {{HQ_ACT_RELU6, 0, 0, NULL, 0}, -1, 0},
        {{HQ_ACT_LEAKY, 0.1f, 0, NULL, 0}, -2, -0.2f},
        {{HQ_ACT_LEAKY, 0.1f, 0, NULL, 0}, 2, 2},
        {{HQ_ACT_SIGMOID, 0, 0, NULL, 0}, 0, 0.5f},
        {{HQ_ACT_SIGMOID, 0, 0, NULL, 0}, -200, 0},
        {{HQ_ACT_SIGMOID, 0, 0, NULL, 0}, 2, 0.880797077977882f},
        {{HQ_ACT_SILU, 0, 0, NULL, 0}, 2, 1.761594155955765f},
        {{HQ_ACT_HARDSWISH, 0, 0, NULL, 0}, 1, 4.0f / 6.0f},
        {{HQ_ACT_HARDSWISH, 0, 0, NULL, 0}, -4, 0},
        {{HQ_ACT_HARDSWISH, 0, 0, NULL, 0}, 4, 4},
        {{HQ_ACT_HARDSIGMOID, 0.2f, 0.5f, NULL, 0}, 1, 0.7f},
        {{HQ_ACT_HARDSIGMOID, 0.2f, 0.5f, NULL, 0}, 10, 1},
        {{HQ_ACT_HARDSIGMOID, 0.2f, 0.5f, NULL, 0}, -10, 0},
        {{HQ_ACT_TANH, 0, 0, NULL, 0}, 1, 0.761594155955765f},
        {{HQ_ACT_CLIP, -1, 2, NULL, 0}, 5, 2},
        {{HQ_ACT_CLIP, -1, 2, NULL, 0}, -5, -1},
        {{HQ_ACT_CLIP, -1, 2, NULL, 0}, 0.5f, 0.5f},
        {{HQ_ACT_EXP, 0, 0, NULL, 0}, 1, 2.718281828459045f},
        {{HQ_ACT_GELU, 0, 0, NULL, 0}, 1, 0.8413447460685429f},
        {{HQ_ACT_GELU, 0, 0, NULL, 0}, -1, -0.1586552539314571f},
        {{HQ_ACT_GELU, 0, 0, NULL, 0}, 0, 0},
        {{HQ_ACT_GELU, 0, 0, NULL, 0}, 3, 2.99595030590511f},
        {{HQ_ACT_GELU, 0, 0, NULL, 0}, -0.75, -0.1699705143f},
        {{HQ_ACT_GELU, 0, 0, NULL, 0}, -10, 0},
    };
    for (int i = 0; i < COUNT(cases); i++) {
        float y;
        assert_int_equal(hqi_ref_activation(&cases[i].act, 1, 1, &cases[i].x, &y, NULL), HQ_OK);
        if (fabsf(y - cases[i].want) > 1e-6f)
            fail_msg("case %d (activation %d, x=%g): got %.9g, want %.9g", i,
                     (int)cases[i].act.type, (double)cases[i].x, (double)y,
                     (double)cases[i].want);
    }
    /* prelu: one slope per channel; in-place on a 2x2 tensor. */
    hqi_ref_act_t prelu = {HQ_ACT_PRELU, 0, 0, slopes, 2};
    float x[4] = {-2, -2, 3, -4};
    assert_int_equal(hqi_ref_activation(&prelu, 2, 2, x, x, NULL), HQ_OK);
    const float want[4] = {-1, -0.5f, 3, -1};
    assert_close_array(x, want, 4, 0);
    hq_error_t err;
    prelu.slope_count = 3;
    assert_int_equal(hqi_ref_activation(&prelu, 2, 2, x, x, &err), HQ_ERR_ARGUMENT);
    assert_non_null(strstr(err.message, "prelu"));
    hqi_ref_act_t unknown = {HQ_ACT_COUNT, 0, 0, NULL, 0};
    assert_int_equal(hqi_ref_activation(&unknown, 2, 2, x, x, &err), HQ_ERR_ARGUMENT);
}

/* ---- pools ------------------------------------------------------------------------------ */

static void maxpool_treats_pads_as_minus_infinity(void **state)
{
    (void)state;
    const float in[4] = {-5, -6, -7, -8};
    float out[9];
    hqi_ref_pool_params_t p = {window(2, 1, 1, 1, 1, 1, 1), false};
    hqi_ref_dims_t di = {1, 2, 2, 1}, dout = {1, 3, 3, 1};
    assert_int_equal(hqi_ref_maxpool(&p, di, in, dout, out, NULL), HQ_OK);
    const float want[9] = {-5, -5, -6, -5, -5, -6, -7, -7, -8};
    assert_close_array(out, want, 9, 0);
}

static void dilated_maxpool_takes_every_dilation_th_value_and_skips_pads(void **state)
{
    (void)state;
    /* as the runtime's test: 2x2 window, dilation 2, stride 1, pad top 1 on 4x4 values; the
     * padded row never wins, even against negative values */
    const float in[16] = {-5, -1, -9, -3, 2, 8, 4, 7, 6, 0, 11, 10, 12, 15, 13, 14};
    float out[6];
    hqi_ref_pool_params_t p = {window(2, 1, 2, 1, 0, 0, 0), false};
    hqi_ref_dims_t di = {1, 4, 4, 1}, dout = {1, 3, 2, 1};
    assert_int_equal(hqi_ref_maxpool(&p, di, in, dout, out, NULL), HQ_OK);
    const float want[6] = {4, 8, 11, 10, 13, 15};
    assert_close_array(out, want, 6, 0);
    const float neg[16] = {-5, -1, -9, -3, -2, -8, -4, -7, -6, 0, -11, -10, -12, -15, -13, -14};
    assert_int_equal(hqi_ref_maxpool(&p, di, neg, dout, out, NULL), HQ_OK);
    assert_true(out[0] == -2.0f && out[1] == -7.0f);
}

static void avgpool_counts_pads_only_with_count_include_pad(void **state)
{
    (void)state;
    const float in[4] = {1, 2, 3, 4};
    float out[9];
    hqi_ref_pool_params_t p = {window(2, 1, 1, 1, 1, 1, 1), false};
    hqi_ref_dims_t di = {1, 2, 2, 1}, dout = {1, 3, 3, 1};
    assert_int_equal(hqi_ref_avgpool(&p, di, in, dout, out, NULL), HQ_OK);
    const float exclude[9] = {1, 1.5f, 2, 2, 2.5f, 3, 3, 3.5f, 4};
    assert_close_array(out, exclude, 9, 1e-7);
    p.count_include_pad = true;
    assert_int_equal(hqi_ref_avgpool(&p, di, in, dout, out, NULL), HQ_OK);
    const float include[9] = {0.25f, 0.75f, 0.5f, 1, 2.5f, 1.5f, 0.75f, 1.75f, 1};
    assert_close_array(out, include, 9, 1e-7);
}

static void avgpool_in_ceil_mode_never_counts_cells_beyond_the_padded_input(void **state)
{
    (void)state;
    /* H = 4, kernel 3, stride 2, pads 1/1: ceil mode adds a third window over rows 3, 4 (pad)
     * and 5 (beyond the padded input). */
    const float in[4] = {1, 2, 3, 4};
    float out[3];
    hqi_ref_pool_params_t p = {{3, 1, 2, 1, 1, 1, 1, 0, 1, 0}, true};
    assert_int_equal(hqi_ref_window_extent(4, 3, 2, 1, 1, 1, false), 2);
    assert_int_equal(hqi_ref_window_extent(4, 3, 2, 1, 1, 1, true), 3);
    hqi_ref_dims_t di = {1, 4, 1, 1}, dout = {1, 3, 1, 1};
    assert_int_equal(hqi_ref_avgpool(&p, di, in, dout, out, NULL), HQ_OK);
    const float include[3] = {1, 3, 2}; /* (0+1+2)/3, (2+3+4)/3, (4+0)/2 */
    assert_close_array(out, include, 3, 1e-7);
    p.count_include_pad = false;
    assert_int_equal(hqi_ref_avgpool(&p, di, in, dout, out, NULL), HQ_OK);
    const float exclude[3] = {1.5f, 3, 4};
    assert_close_array(out, exclude, 3, 1e-7);
    hq_error_t err;
    hqi_ref_dims_t too_big = {1, 4, 1, 1};
    assert_int_equal(hqi_ref_avgpool(&p, di, in, too_big, out, &err), HQ_ERR_ARGUMENT);
    assert_non_null(strstr(err.message, "expected 2 (floor) or 3 (ceil)"));
}

static void window_extent_in_ceil_mode_drops_a_window_starting_in_the_end_padding(void **state)
{
    (void)state;
    /* in 5, kernel 2, stride 2, pads 0/1: ceil gives 3 windows; the 3rd starts at 4 < 5. */
    assert_int_equal(hqi_ref_window_extent(5, 2, 2, 1, 0, 1, true), 3);
    /* in 4, kernel 1, stride 2, pads 0/1: ceil would give 3, but window 3 starts at 4 = end
     * of the input, inside the padding: dropped (PyTorch/ONNX). */
    assert_int_equal(hqi_ref_window_extent(4, 1, 2, 1, 0, 1, true), 2);
    assert_int_equal(hqi_ref_window_extent(2, 5, 1, 1, 0, 0, false), -1);
}

static void global_avg_pool_averages_each_channel_of_each_image(void **state)
{
    (void)state;
    const float in[2 * 2 * 2 * 2] = {1, 10, 2, 20, 3, 30, 4, 40, 0, 0, 0, 0, 0, 0, 8, -8};
    float out[4];
    hqi_ref_dims_t di = {2, 2, 2, 2};
    assert_int_equal(hqi_ref_global_avg_pool(di, in, out, NULL), HQ_OK);
    const float want[4] = {2.5f, 25, 2, -2};
    assert_close_array(out, want, 4, 0);
}

/* ---- elementwise ------------------------------------------------------------------------ */

static void elementwise_broadcasts_n11c_against_nhwc_in_either_order(void **state)
{
    (void)state;
    enum { N = 2, H = 3, W = 2, C = 4 };
    float big[N * H * W * C], small[N * C], out[N * H * W * C], want[N * H * W * C];
    fill(big, COUNT(big), 8);
    fill(small, COUNT(small), 9);
    const hq_shape_t sb = {4, {N, H, W, C}}, ss = {4, {N, 1, 1, C}};
    for (int n = 0; n < N; n++)
        for (int p = 0; p < H * W; p++)
            for (int c = 0; c < C; c++)
                want[(n * H * W + p) * C + c] = big[(n * H * W + p) * C + c] * small[n * C + c];
    assert_int_equal(hqi_ref_elementwise(HQI_REF_EW_MUL, &ss, small, &sb, big, &linear, &sb, out,
                                         NULL),
                     HQ_OK);
    assert_close_array(out, want, COUNT(want), 0);
    assert_int_equal(hqi_ref_elementwise(HQI_REF_EW_MUL, &sb, big, &ss, small, &linear, &sb, out,
                                         NULL),
                     HQ_OK);
    assert_close_array(out, want, COUNT(want), 0);
}

static void elementwise_broadcasts_both_operands_and_applies_the_activation(void **state)
{
    (void)state;
    /* a [1, 2, 1, 1] - b [2, 1, 1, 3] -> [2, 2, 1, 3], then relu. */
    const float a[2] = {1, 5}, b[6] = {0, 2, 4, 10, 20, 30};
    float out[12];
    const hq_shape_t sa = {4, {1, 2, 1, 1}}, sb = {4, {2, 1, 1, 3}}, so = {4, {2, 2, 1, 3}};
    const hqi_ref_act_t relu = {HQ_ACT_RELU, 0, 0, NULL, 0};
    assert_int_equal(hqi_ref_elementwise(HQI_REF_EW_SUB, &sa, a, &sb, b, &relu, &so, out, NULL),
                     HQ_OK);
    const float want[12] = {1, 0, 0, 5, 3, 1, 0, 0, 0, 0, 0, 0};
    assert_close_array(out, want, 12, 0);
    const float x[2] = {1, -6}, y[2] = {4, 3};
    const hq_shape_t s2 = {2, {1, 2}};
    float r[2];
    assert_int_equal(hqi_ref_elementwise(HQI_REF_EW_DIV, &s2, x, &s2, y, &linear, &s2, r, NULL),
                     HQ_OK);
    assert_float_equal(r[0], 0.25f, 0);
    assert_float_equal(r[1], -2, 0);
    assert_int_equal(hqi_ref_elementwise(HQI_REF_EW_MAX, &s2, x, &s2, y, &linear, &s2, r, NULL),
                     HQ_OK);
    assert_float_equal(r[0], 4, 0);
    assert_float_equal(r[1], 3, 0);
    assert_int_equal(hqi_ref_elementwise(HQI_REF_EW_MIN, &s2, x, &s2, y, &linear, &s2, r, NULL),
                     HQ_OK);
    assert_float_equal(r[0], 1, 0);
    assert_float_equal(r[1], -6, 0);
    assert_int_equal(hqi_ref_elementwise(HQI_REF_EW_ADD, &s2, x, &s2, y, &linear, &s2, r, NULL),
                     HQ_OK);
    assert_float_equal(r[1], -3, 0);
    const float with_nan[2] = {NAN, 1};
    assert_int_equal(hqi_ref_elementwise(HQI_REF_EW_MAX, &s2, with_nan, &s2, y, &linear, &s2, r,
                                         NULL),
                     HQ_OK);
    assert_true(isnan(r[0]));
    assert_float_equal(r[1], 3, 0);
    hq_error_t err;
    const hq_shape_t s3 = {2, {1, 3}};
    assert_int_equal(hqi_ref_elementwise(HQI_REF_EW_ADD, &s2, x, &s3, y, &linear, &s3, r, &err),
                     HQ_ERR_ARGUMENT);
    assert_non_null(strstr(err.message, "do not broadcast"));
}

/* ---- layout ----------------------------------------------------------------------------- */

static void concat_and_split_on_channels_and_rows_are_inverse(void **state)
{
    (void)state;
    const float a[4] = {1, 2, 3, 4}, b[2] = {5, 6}; /* [1, 2, 1, 2] and [1, 2, 1, 1] */
    const hq_shape_t shapes[2] = {{4, {1, 2, 1, 2}}, {4, {1, 2, 1, 1}}}, so = {4, {1, 2, 1, 3}};
    const float *inputs[2] = {a, b};
    float out[6];
    assert_int_equal(hqi_ref_concat(2, shapes, inputs, 3, &so, out, NULL), HQ_OK);
    const float want[6] = {1, 2, 5, 3, 4, 6};
    assert_close_array(out, want, 6, 0);
    float pa[4], pb[2];
    float *pieces[2] = {pa, pb};
    const int sizes[2] = {2, 1};
    assert_int_equal(hqi_ref_split(&so, out, 3, 2, sizes, pieces, NULL), HQ_OK);
    assert_close_array(pa, a, 4, 0);
    assert_close_array(pb, b, 2, 0);
    /* Along H the inputs are stacked whole. */
    const hq_shape_t rows[2] = {{4, {1, 2, 1, 2}}, {4, {1, 1, 1, 2}}}, sr = {4, {1, 3, 1, 2}};
    assert_int_equal(hqi_ref_concat(2, rows, inputs, 1, &sr, out, NULL), HQ_OK);
    const float want_rows[6] = {1, 2, 3, 4, 5, 6};
    assert_close_array(out, want_rows, 6, 0);
    hq_error_t err;
    const int bad_sizes[2] = {2, 2};
    assert_int_equal(hqi_ref_split(&so, out, 3, 2, bad_sizes, pieces, &err), HQ_ERR_ARGUMENT);
    assert_int_equal(hqi_ref_concat(2, shapes, inputs, 3, &sr, out, &err), HQ_ERR_ARGUMENT);
}

static void slice_keeps_begin_to_end_by_step_on_each_axis(void **state)
{
    (void)state;
    float in[4 * 5 * 3], out[2 * 2 * 2];
    for (int i = 0; i < COUNT(in); i++)
        in[i] = (float)i;
    hqi_ref_slice_params_t p = {{1, 0, 0}, {4, 4, 3}, {2, 3, 2}};
    hqi_ref_dims_t di = {1, 4, 5, 3}, dout = {1, 2, 2, 2};
    assert_int_equal(hqi_ref_slice(&p, di, in, dout, out, NULL), HQ_OK);
    /* rows 1, 3; cols 0, 3; channels 0, 2 */
    const float want[8] = {15, 17, 24, 26, 45, 47, 54, 56};
    assert_close_array(out, want, 8, 0);
    hq_error_t err;
    p.end[1] = 6;
    assert_int_equal(hqi_ref_slice(&p, di, in, dout, out, &err), HQ_ERR_ARGUMENT);
}

static void pad_constant_reflect_and_edge_on_width_and_channels(void **state)
{
    (void)state;
    const float in[3] = {1, 2, 3};
    float out[6];
    hqi_ref_dims_t row = {1, 1, 3, 1}, wide = {1, 1, 6, 1}, chan = {1, 1, 1, 3},
                   deep = {1, 1, 1, 6};
    hqi_ref_pad_params_t p = {HQ_PAD_CONSTANT, 9, {0, 2, 0}, {0, 1, 0}};
    assert_int_equal(hqi_ref_pad(&p, row, in, wide, out, NULL), HQ_OK);
    const float constant[6] = {9, 9, 1, 2, 3, 9};
    assert_close_array(out, constant, 6, 0);
    p.mode = HQ_PAD_REFLECT;
    assert_int_equal(hqi_ref_pad(&p, row, in, wide, out, NULL), HQ_OK);
    const float reflect[6] = {3, 2, 1, 2, 3, 2};
    assert_close_array(out, reflect, 6, 0);
    p.mode = HQ_PAD_EDGE;
    assert_int_equal(hqi_ref_pad(&p, row, in, wide, out, NULL), HQ_OK);
    const float edge[6] = {1, 1, 1, 2, 3, 3};
    assert_close_array(out, edge, 6, 0);
    hqi_ref_pad_params_t pc = {HQ_PAD_REFLECT, 0, {0, 0, 2}, {0, 0, 1}};
    assert_int_equal(hqi_ref_pad(&pc, chan, in, deep, out, NULL), HQ_OK);
    assert_close_array(out, reflect, 6, 0);
    hq_error_t err;
    pc.before[2] = 3; /* reflect needs pads below the extent */
    hqi_ref_dims_t deeper = {1, 1, 1, 7};
    assert_int_equal(hqi_ref_pad(&pc, chan, in, deeper, out, &err), HQ_ERR_ARGUMENT);
    assert_non_null(strstr(err.message, "reflect"));
}

/* ---- resize ----------------------------------------------------------------------------- */

/* Independent 1-D resize: the ONNX reference written per mode, in the test's own words. */
static float resize_1d(const float *x, int in, int out, int pos, hq_resize_method_t method,
                       hq_resize_coords_t coords, bool round_prefer_floor, bool up, double scale)
{
    double s = scale > 0 ? scale : (double)out / in, v;
    if (scale > 0 && coords != HQ_RESIZE_ALIGN_CORNERS) { /* float32, as onnxruntime */
        float sf = (float)scale, half = coords == HQ_RESIZE_ASYMMETRIC ? 0.0f : 0.5f;
        float shift = coords == HQ_RESIZE_ASYMMETRIC || coords == HQ_RESIZE_TF_HALF_PIXEL_FOR_NN
                          ? 0.0f
                          : 0.5f;
        v = coords == HQ_RESIZE_PYTORCH_HALF_PIXEL && out == 1 ? 0 : ((float)pos + half) / sf - shift;
    } else if (coords == HQ_RESIZE_ALIGN_CORNERS)
        v = out == 1 ? 0 : pos * (in - 1.0) / (out - 1.0);
    else if (coords == HQ_RESIZE_ASYMMETRIC)
        v = pos / s;
    else if (coords == HQ_RESIZE_PYTORCH_HALF_PIXEL && out == 1)
        v = 0;
    else if (coords == HQ_RESIZE_TF_HALF_PIXEL_FOR_NN)
        v = (pos + 0.5) / s;
    else
        v = (pos + 0.5) / s - 0.5;
    if (method == HQ_RESIZE_NEAREST) {
        double frac = v - floor(v);
        int idx = (int)floor(v);
        if (round_prefer_floor ? (frac > 0.5 || (up && frac == 0.5)) : (up && frac > 0))
            idx++;
        idx = idx < 0 ? 0 : idx > in - 1 ? in - 1 : idx;
        return x[idx];
    }
    int lo = (int)floor(v);
    double t = v - lo;
    int a = lo < 0 ? 0 : lo > in - 1 ? in - 1 : lo;
    int b = lo + 1 < 0 ? 0 : lo + 1 > in - 1 ? in - 1 : lo + 1;
    return (float)(x[a] * (1 - t) + x[b] * t);
}

static void resize_matches_hand_values_for_each_coordinate_mode(void **state)
{
    (void)state;
    const float two[2] = {0, 4};
    float out[4];
    hqi_ref_dims_t d2 = {1, 1, 2, 1}, d4 = {1, 1, 4, 1}, d3 = {1, 1, 3, 1}, d1 = {1, 1, 1, 1};
    hqi_ref_resize_params_t p = {.method = HQ_RESIZE_NEAREST, .coords = HQ_RESIZE_ASYMMETRIC};
    assert_int_equal(hqi_ref_resize(&p, d2, two, d4, out, NULL), HQ_OK);
    const float nearest[4] = {0, 0, 4, 4};
    assert_close_array(out, nearest, 4, 0);
    p = (hqi_ref_resize_params_t){.method = HQ_RESIZE_BILINEAR, .coords = HQ_RESIZE_HALF_PIXEL};
    assert_int_equal(hqi_ref_resize(&p, d2, two, d4, out, NULL), HQ_OK);
    const float half_pixel[4] = {0, 1, 3, 4}; /* x_in = -0.25, 0.25, 0.75, 1.25, clamped */
    assert_close_array(out, half_pixel, 4, 1e-7);
    p.coords = HQ_RESIZE_ASYMMETRIC;
    assert_int_equal(hqi_ref_resize(&p, d2, two, d4, out, NULL), HQ_OK);
    const float asymmetric[4] = {0, 2, 4, 4};
    assert_close_array(out, asymmetric, 4, 1e-7);
    p.coords = HQ_RESIZE_ALIGN_CORNERS;
    assert_int_equal(hqi_ref_resize(&p, d2, two, d3, out, NULL), HQ_OK);
    const float corners[3] = {0, 2, 4};
    assert_close_array(out, corners, 3, 1e-7);
    /* Output of one pixel: half_pixel samples x_in = 0.5, pytorch_half_pixel x_in = 0. */
    p.coords = HQ_RESIZE_HALF_PIXEL;
    assert_int_equal(hqi_ref_resize(&p, d2, two, d1, out, NULL), HQ_OK);
    assert_float_equal(out[0], 2, 1e-7);
    p.coords = HQ_RESIZE_PYTORCH_HALF_PIXEL;
    assert_int_equal(hqi_ref_resize(&p, d2, two, d1, out, NULL), HQ_OK);
    assert_float_equal(out[0], 0, 0);
}

static void resize_nearest_floor_and_round_prefer_floor_differ_where_they_should(void **state)
{
    (void)state;
    /* 3 -> 5 half_pixel: x_in = -0.2, 0.4, 1.0, 1.6, 2.2 */
    const float in[3] = {10, 20, 30};
    float out[5];
    hqi_ref_dims_t d3 = {1, 1, 3, 1}, d5 = {1, 1, 5, 1};
    hqi_ref_resize_params_t p = {.method = HQ_RESIZE_NEAREST, .coords = HQ_RESIZE_HALF_PIXEL};
    assert_int_equal(hqi_ref_resize(&p, d3, in, d5, out, NULL), HQ_OK);
    const float floor_mode[5] = {10, 10, 20, 20, 30};
    assert_close_array(out, floor_mode, 5, 0);
    p.round_prefer_floor = true;
    assert_int_equal(hqi_ref_resize(&p, d3, in, d5, out, NULL), HQ_OK);
    const float round_mode[5] = {10, 10, 20, 30, 30};
    assert_close_array(out, round_mode, 5, 0);
    p.nearest_ceil = true; /* round_prefer_ceil: only ties differ from round_prefer_floor */
    assert_int_equal(hqi_ref_resize(&p, d3, in, d5, out, NULL), HQ_OK);
    assert_close_array(out, round_mode, 5, 0);
    p.round_prefer_floor = false; /* ceil */
    assert_int_equal(hqi_ref_resize(&p, d3, in, d5, out, NULL), HQ_OK);
    const float ceil_mode[5] = {10, 20, 20, 30, 30};
    assert_close_array(out, ceil_mode, 5, 0);
    /* A tie (x_in = 1.5, asymmetric 3 -> 2) goes to the floor, or with prefer_ceil up. */
    hqi_ref_dims_t d2 = {1, 1, 2, 1};
    p.coords = HQ_RESIZE_ASYMMETRIC;
    p.round_prefer_floor = true;
    p.nearest_ceil = false;
    assert_int_equal(hqi_ref_resize(&p, d3, in, d2, out, NULL), HQ_OK);
    assert_float_equal(out[1], 20, 0);
    p.nearest_ceil = true;
    assert_int_equal(hqi_ref_resize(&p, d3, in, d2, out, NULL), HQ_OK);
    assert_float_equal(out[1], 30, 0);
    /* A given scale maps with it, not with out / in: 3 -> 4 at scale 1.5, asymmetric, floor:
     * x_in = 0, 0.67, 1.33, 2 (out / in would give 0, 0.75, 1.5, 2.25) */
    hqi_ref_dims_t d4 = {1, 1, 4, 1};
    p.round_prefer_floor = false;
    p.nearest_ceil = false;
    p.scale_w = 1.5;
    p.coords = HQ_RESIZE_TF_HALF_PIXEL_FOR_NN; /* x_in = 0.33, 1, 1.67, 2.33 */
    assert_int_equal(hqi_ref_resize(&p, d3, in, d4, out, NULL), HQ_OK);
    const float tf_nn[4] = {10, 20, 20, 30};
    assert_close_array(out, tf_nn, 4, 0);
    /* 12 -> 20 at 1.7, asymmetric floor: output 17 reads index 10 (17 / 1.7f is 10 in float,
     * as onnxruntime computes it; 9.9999997 in double) */
    float ramp[12], wide[20];
    for (int i = 0; i < 12; i++)
        ramp[i] = (float)i;
    hqi_ref_dims_t d12 = {1, 1, 12, 1}, d20 = {1, 1, 20, 1};
    hqi_ref_resize_params_t q = {.method = HQ_RESIZE_NEAREST,
                                 .coords = HQ_RESIZE_ASYMMETRIC,
                                 .scale_w = 1.7};
    assert_int_equal(hqi_ref_resize(&q, d12, ramp, d20, wide, NULL), HQ_OK);
    assert_float_equal(wide[17], 10, 0);
    p.method = HQ_RESIZE_BILINEAR;
    p.coords = HQ_RESIZE_ASYMMETRIC;
    assert_int_equal(hqi_ref_resize(&p, d3, in, d4, out, NULL), HQ_OK);
    const float scaled[4] = {10, 10 + 20 / 3.0f, 20 + 10 / 3.0f, 30};
    assert_close_array(out, scaled, 4, 1e-5);
}

static void resize_2d_matches_a_separable_independent_implementation(void **state)
{
    (void)state;
    enum { N = 2, IH = 3, IW = 4, C = 2, OH = 7, OW = 5 };
    float in[N * IH * IW * C], out[N * OH * OW * C], want[N * OH * OW * C];
    fill(in, COUNT(in), 10);
    for (int method = 0; method < 2; method++)
        for (int coords = 0; coords <= HQ_RESIZE_TF_HALF_PIXEL_FOR_NN; coords++)
            for (int rnd = 0; rnd < 8; rnd++) {
                /* rounding to the nearest or not, up or down, scale out / in or a given one */
                hqi_ref_resize_params_t p = {(hq_resize_method_t)method,
                                             (hq_resize_coords_t)coords,
                                             rnd & 1,
                                             (rnd & 2) != 0,
                                             rnd & 4 ? 2.4 : 0,
                                             rnd & 4 ? 1.3 : 0};
                hqi_ref_dims_t di = {N, IH, IW, C}, dout = {N, OH, OW, C};
                assert_int_equal(hqi_ref_resize(&p, di, in, dout, out, NULL), HQ_OK);
                for (int n = 0; n < N; n++)
                    for (int c = 0; c < C; c++) {
                        float rows[OW * IH]; /* columns first, then rows: separable */
                        for (int y = 0; y < IH; y++) {
                            float line[IW];
                            for (int x = 0; x < IW; x++)
                                line[x] = in[((n * IH + y) * IW + x) * C + c];
                            for (int x = 0; x < OW; x++)
                                rows[x * IH + y] =
                                    resize_1d(line, IW, OW, x, p.method, p.coords,
                                              p.round_prefer_floor, p.nearest_ceil, p.scale_w);
                        }
                        for (int x = 0; x < OW; x++)
                            for (int y = 0; y < OH; y++)
                                want[((n * OH + y) * OW + x) * C + c] =
                                    resize_1d(&rows[x * IH], IH, OH, y, p.method, p.coords,
                                              p.round_prefer_floor, p.nearest_ceil, p.scale_h);
                    }
                assert_close_array(out, want, COUNT(want), 1e-6);
            }
}

/* ---- depth/space ------------------------------------------------------------------------ */

static void depth_to_space_dcr_and_crd_order_channels_differently(void **state)
{
    (void)state;
    float in[8], out[8], back[8];
    for (int i = 0; i < 8; i++)
        in[i] = (float)i;
    hqi_ref_dims_t di = {1, 1, 1, 8};
    assert_int_equal(hqi_ref_depth_to_space(2, false, di, in, out, NULL), HQ_OK);
    const float dcr[8] = {0, 1, 2, 3, 4, 5, 6, 7}; /* [y][x][k]: block (i,j) takes (i*2+j)*2+k */
    assert_close_array(out, dcr, 8, 0);
    assert_int_equal(hqi_ref_depth_to_space(2, true, di, in, out, NULL), HQ_OK);
    const float crd[8] = {0, 4, 1, 5, 2, 6, 3, 7}; /* block (i,j) takes k*4 + i*2 + j */
    assert_close_array(out, crd, 8, 0);
    /* space_to_depth undoes DCR on a larger batched tensor. */
    float big[2 * 2 * 3 * 8], mid[2 * 4 * 6 * 2], again[2 * 2 * 3 * 8];
    fill(big, COUNT(big), 11);
    hqi_ref_dims_t db = {2, 2, 3, 8}, dm = {2, 4, 6, 2};
    assert_int_equal(hqi_ref_depth_to_space(2, false, db, big, mid, NULL), HQ_OK);
    assert_int_equal(hqi_ref_space_to_depth(2, dm, mid, again, NULL), HQ_OK);
    assert_close_array(again, big, COUNT(big), 0);
    (void)back;
    hq_error_t err;
    hqi_ref_dims_t odd = {1, 1, 1, 6};
    assert_int_equal(hqi_ref_depth_to_space(2, false, odd, in, out, &err), HQ_ERR_ARGUMENT);
}

/* ---- reductions ------------------------------------------------------------------------- */

static void softmax_sums_to_one_and_is_stable_at_one_thousand(void **state)
{
    (void)state;
    const float big[3] = {1000, 1001, 1002}, small[3] = {0, 1, 2};
    float a[3], b[3];
    const hq_shape_t s = {2, {1, 3}};
    assert_int_equal(hqi_ref_softmax(&s, big, 1, a, NULL), HQ_OK);
    assert_int_equal(hqi_ref_softmax(&s, small, 1, b, NULL), HQ_OK);
    assert_close_array(a, b, 3, 1e-7);
    assert_float_equal(a[0] + a[1] + a[2], 1.0f, 1e-6);
    assert_float_equal(b[2], 0.665240955774822f, 1e-7);
    /* Along H of [1, 2, 1, 2]: pairs (x[0], x[2]) and (x[1], x[3]). */
    const float x[4] = {0, 5, 0, -5};
    float y[4];
    const hq_shape_t s4 = {4, {1, 2, 1, 2}};
    assert_int_equal(hqi_ref_softmax(&s4, x, 1, y, NULL), HQ_OK);
    assert_float_equal(y[0], 0.5f, 1e-7);
    assert_float_equal(y[2], 0.5f, 1e-7);
    assert_float_equal(y[1] + y[3], 1.0f, 1e-7);
    assert_true(y[1] > 0.99f);
}

static void reduce_max_sum_and_argmax_on_an_axis(void **state)
{
    (void)state;
    const float x[6] = {1, 7, 3, 7, 2, -1}; /* [1, 1, 2, 3] */
    const hq_shape_t s = {4, {1, 1, 2, 3}};
    float r[3];
    assert_int_equal(hqi_ref_reduce_max(&s, x, 2, r, NULL), HQ_OK);
    const float max_w[3] = {7, 7, 3};
    assert_close_array(r, max_w, 3, 0);
    assert_int_equal(hqi_ref_reduce_sum(&s, x, 3, r, NULL), HQ_OK);
    const float sum_c[2] = {11, 8};
    assert_close_array(r, sum_c, 2, 0);
    assert_int_equal(hqi_ref_argmax(&s, x, r, NULL), HQ_OK);
    const float arg[2] = {1, 0}; /* ties keep the first index */
    assert_close_array(r, arg, 2, 0);
    const float with_nan[6] = {1, NAN, 3, 7, 2, -1};
    assert_int_equal(hqi_ref_reduce_max(&s, with_nan, 2, r, NULL), HQ_OK);
    assert_float_equal(r[0], 7, 0);
    assert_true(isnan(r[1])); /* NaN propagates through max */
    assert_int_equal(hqi_ref_argmax(&s, with_nan, r, NULL), HQ_OK);
    assert_float_equal(r[0], 2, 0); /* but argmax skips it */
    hq_error_t err;
    assert_int_equal(hqi_ref_reduce_sum(&s, x, 4, r, &err), HQ_ERR_ARGUMENT);
    assert_non_null(strstr(err.message, "reduce_sum: axis"));
}

static void transpose_nhwc_to_nchw_and_back_over_eight_axes(void **state)
{
    (void)state;
    float x[2 * 3 * 4], y[2 * 3 * 4];
    for (int i = 0; i < 24; i++)
        x[i] = (float)i;
    const hq_shape_t s = {4, {1, 2, 3, 4}}; /* H=2, W=3, C=4 */
    const int perm[4] = {0, 3, 1, 2};
    assert_int_equal(hqi_ref_transpose(&s, x, perm, y, NULL), HQ_OK);
    for (int c = 0; c < 4; c++)
        for (int h = 0; h < 2; h++)
            for (int w = 0; w < 3; w++)
                assert_float_equal(y[(c * 2 + h) * 3 + w], x[(h * 3 + w) * 4 + c], 0);
    float a[256], b[256], c2[256];
    fill(a, 256, 12);
    const hq_shape_t s8 = {8, {2, 2, 2, 2, 2, 2, 2, 2}};
    const int p8[8] = {7, 0, 6, 1, 5, 2, 4, 3}, inverse[8] = {1, 3, 5, 7, 6, 4, 2, 0};
    assert_int_equal(hqi_ref_transpose(&s8, a, p8, b, NULL), HQ_OK);
    hq_shape_t t8 = s8;
    assert_int_equal(hqi_ref_transpose(&t8, b, inverse, c2, NULL), HQ_OK);
    assert_close_array(c2, a, 256, 0);
    assert_true(memcmp(a, b, sizeof(a)) != 0);
    hq_error_t err;
    const int repeated[4] = {0, 1, 1, 2};
    assert_int_equal(hqi_ref_transpose(&s, x, repeated, y, &err), HQ_ERR_ARGUMENT);
    assert_non_null(strstr(err.message, "perm"));
}

/* ONNX's channel shuffle, step by step on an NHWC tensor: to NCHW, Reshape [N, g, C/g, H, W],
 * Transpose [0, 2, 1, 3, 4], Reshape [N, C, H, W], back to NHWC. */
static void onnx_channel_shuffle(const int64_t d[4], int64_t g, const float *x, float *y)
{
    const int64_t n = d[0], h = d[1], w = d[2], c = d[3], cpg = c / g;
    float nchw[4096], shuffled[4096];
    assert_true(n * h * w * c <= 4096);
    for (int64_t b = 0; b < n; b++)
        for (int64_t k = 0; k < c; k++)
            for (int64_t i = 0; i < h * w; i++)
                nchw[(b * c + k) * h * w + i] = x[(b * h * w + i) * c + k];
    /* [N, g, C/g, HW] -> [N, C/g, g, HW]; reshaped back, channel (q, p) is q * g + p */
    for (int64_t b = 0; b < n; b++)
        for (int64_t p = 0; p < g; p++)
            for (int64_t q = 0; q < cpg; q++)
                for (int64_t i = 0; i < h * w; i++)
                    shuffled[((b * cpg + q) * g + p) * h * w + i] =
                        nchw[((b * g + p) * cpg + q) * h * w + i];
    for (int64_t b = 0; b < n; b++)
        for (int64_t k = 0; k < c; k++)
            for (int64_t i = 0; i < h * w; i++)
                y[(b * h * w + i) * c + k] = shuffled[(b * c + k) * h * w + i];
}

static void channel_shuffle_matches_onnx_reshape_transpose_reshape(void **state)
{
    (void)state;
    /* numpy, x = arange(12).reshape(1, 1, 2, 6) in NHWC, ONNX's three steps in NCHW */
    const float want_g2[12] = {0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11};
    const float want_g3[12] = {0, 2, 4, 1, 3, 5, 6, 8, 10, 7, 9, 11};
    float x[12], y[12];
    for (int i = 0; i < 12; i++)
        x[i] = (float)i;
    const hq_shape_t s = {4, {1, 1, 2, 6}};
    assert_int_equal(hqi_ref_channel_shuffle(&s, 2, x, y, NULL), HQ_OK);
    assert_close_array(y, want_g2, 12, 0);
    assert_int_equal(hqi_ref_channel_shuffle(&s, 3, x, y, NULL), HQ_OK);
    assert_close_array(y, want_g3, 12, 0);
    assert_int_equal(hqi_ref_channel_shuffle(&s, 1, x, y, NULL), HQ_OK); /* one group: a copy */
    assert_close_array(y, x, 12, 0);
    const int64_t groups[] = {2, 3, 4, 6, 12};
    for (size_t k = 0; k < sizeof groups / sizeof groups[0]; k++) {
        const int64_t d[4] = {2, 3, 5, 12};
        const hq_shape_t big = {4, {d[0], d[1], d[2], d[3]}};
        float a[360], got[360], want[360];
        fill(a, 360, 50 + (uint32_t)k);
        onnx_channel_shuffle(d, groups[k], a, want);
        assert_int_equal(hqi_ref_channel_shuffle(&big, (int)groups[k], a, got, NULL), HQ_OK);
        assert_close_array(got, want, 360, 0);
    }
    hq_error_t err;
    assert_int_equal(hqi_ref_channel_shuffle(&s, 4, x, y, &err), HQ_ERR_ARGUMENT);
    assert_non_null(strstr(err.message, "channel_shuffle: groups 4"));
    assert_int_equal(hqi_ref_channel_shuffle(&s, 0, x, y, &err), HQ_ERR_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv_3x3_on_4x4_with_asymmetric_pads_matches_hand_result),
        cmocka_unit_test(conv_with_dilation_two_samples_every_other_pixel),
        cmocka_unit_test(conv_stride_two_with_batch_two_keeps_images_apart),
        cmocka_unit_test(depthwise_conv_equals_one_single_channel_conv_per_channel),
        cmocka_unit_test(grouped_conv_equals_separate_convs_on_channel_slices),
        cmocka_unit_test(conv_adds_the_addend_before_the_activation),
        cmocka_unit_test(conv_rejects_a_wrong_output_size_and_groups_that_do_not_divide),
        cmocka_unit_test(kernels_refuse_shapes_whose_element_count_overflows),
        cmocka_unit_test(deconv_kernel_2_stride_2_tiles_the_scaled_kernel),
        cmocka_unit_test(deconv_pads_crop_the_canvas_and_output_padding_gets_only_bias),
        cmocka_unit_test(deconv_checks_each_axis_against_its_own_extent_with_output_padding),
        cmocka_unit_test(deconv_with_groups_and_dilation_matches_a_scatter_implementation),
        cmocka_unit_test(dense_multiplies_rows_by_the_cin_by_cout_matrix),
        cmocka_unit_test(batch_norm_scales_by_gamma_over_sqrt_var_plus_epsilon),
        cmocka_unit_test(layer_norm_normalizes_each_row_over_its_channels_then_scales_and_shifts),
        cmocka_unit_test(matmul_multiplies_one_matrix_per_channel),
        cmocka_unit_test(normalization_subtracts_mean_and_divides_by_std_per_channel),
        cmocka_unit_test(every_activation_follows_its_formula),
        cmocka_unit_test(maxpool_treats_pads_as_minus_infinity),
        cmocka_unit_test(dilated_maxpool_takes_every_dilation_th_value_and_skips_pads),
        cmocka_unit_test(avgpool_counts_pads_only_with_count_include_pad),
        cmocka_unit_test(avgpool_in_ceil_mode_never_counts_cells_beyond_the_padded_input),
        cmocka_unit_test(window_extent_in_ceil_mode_drops_a_window_starting_in_the_end_padding),
        cmocka_unit_test(global_avg_pool_averages_each_channel_of_each_image),
        cmocka_unit_test(elementwise_broadcasts_n11c_against_nhwc_in_either_order),
        cmocka_unit_test(elementwise_broadcasts_both_operands_and_applies_the_activation),
        cmocka_unit_test(concat_and_split_on_channels_and_rows_are_inverse),
        cmocka_unit_test(slice_keeps_begin_to_end_by_step_on_each_axis),
        cmocka_unit_test(pad_constant_reflect_and_edge_on_width_and_channels),
        cmocka_unit_test(resize_matches_hand_values_for_each_coordinate_mode),
        cmocka_unit_test(resize_nearest_floor_and_round_prefer_floor_differ_where_they_should),
        cmocka_unit_test(resize_2d_matches_a_separable_independent_implementation),
        cmocka_unit_test(depth_to_space_dcr_and_crd_order_channels_differently),
        cmocka_unit_test(softmax_sums_to_one_and_is_stable_at_one_thousand),
        cmocka_unit_test(reduce_max_sum_and_argmax_on_an_axis),
        cmocka_unit_test(transpose_nhwc_to_nchw_and_back_over_eight_axes),
        cmocka_unit_test(channel_shuffle_matches_onnx_reshape_transpose_reshape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
