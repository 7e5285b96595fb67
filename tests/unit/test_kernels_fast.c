/* test_kernels_fast.c — the fast kernels (kernels_fast.h) against the reference kernels on random
 * shapes (odd sizes, strides, dilations, groups, depthwise multipliers, pads, every activation),
 * within the named tolerance, and bit for bit the same on 1, 2 and 3 threads. Each case runs
 * with the ISA the machine offers and with the portable code; the random and mobile-network
 * cases also with every narrower ISA the CPU runs (AVX-512, AVX2, portable). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "emulate/kernels_fast.h"
#include "emulate/kernels_ref.h"
#include "util/threadpool.h"

/* |fast - ref| <= TOL * (1 + |ref|): float accumulation (fast) against double (reference) on
 * sums of at most a few thousand products of values in [-1, 1). */
#define TOL HQI_FAST_TOLERANCE

static hqi_threadpool_t *pools[4]; /* [t] = t threads; [1] = NULL (serial) */

static uint32_t rng = 1;
static uint32_t next_u32(void)
{
    rng = rng * 1664525u + 1013904223u;
    return rng >> 8;
}
static int pick(int lo, int hi) /* inclusive */
{
    return lo + (int)(next_u32() % (uint32_t)(hi - lo + 1));
}
static void fill(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)((double)next_u32() / (double)(1u << 24) * 2.0 - 1.0);
}
static float *floats(int64_t n)
{
    float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    assert_non_null(x);
    return x;
}

static void assert_close(const float *got, const float *want, int64_t n, const char *what)
{
    for (int64_t i = 0; i < n; i++) {
        if ((isnan(want[i]) && isnan(got[i])) || want[i] == got[i])
            continue;
        double diff = fabs((double)got[i] - (double)want[i]);
        if (!(diff <= TOL * (1.0 + fabs((double)want[i]))))
            fail_msg("%s: element %lld: fast %.9g, reference %.9g", what, (long long)i,
                     (double)got[i], (double)want[i]);
    }
}

static int setup(void **state)
{
    (void)state;
    pools[1] = NULL;
    for (int t = 2; t <= 3; t++)
        if (hqi_threadpool_create(t, &pools[t], NULL) != HQ_OK)
            return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int t = 2; t <= 3; t++)
        hqi_threadpool_destroy(pools[t]);
    return 0;
}

static const hq_activation_t all_acts[] = {
    HQ_ACT_LINEAR,  HQ_ACT_RELU, HQ_ACT_RELU6,     HQ_ACT_LEAKY,       HQ_ACT_PRELU,
    HQ_ACT_SIGMOID, HQ_ACT_SILU, HQ_ACT_HARDSWISH, HQ_ACT_HARDSIGMOID, HQ_ACT_TANH,
    HQ_ACT_CLIP,    HQ_ACT_EXP,  HQ_ACT_GELU,
};

static hqi_ref_act_t make_act(hq_activation_t type, const float *slopes, int64_t channels)
{
    hqi_ref_act_t act = {type, 0.1f, 0.6f, NULL, 0};
    if (type == HQ_ACT_HARDSIGMOID) {
        act.alpha = 0.2f;
        act.beta = 0.5f;
    }
    if (type == HQ_ACT_CLIP) {
        act.alpha = -0.5f;
        act.beta = 0.75f;
    }
    if (type == HQ_ACT_PRELU) {
        act.slope = slopes;
        act.slope_count = next_u32() % 2 ? channels : 1;
    }
    return act;
}

/* ---- conv / deconv / dense ------------------------------------------------------------------ */

typedef struct conv_case {
    hqi_fast_kind_t kind;
    int64_t n, h, w, cin, cout;
    int groups;
    hqi_ref_window_t window;
    int output_pad_h, output_pad_w;
    bool bias, addend;
    hq_activation_t act;
} conv_case_t;

/* Runs one case through the reference and through the fast kernel on 1, 2 and 3 threads;
 * returns the fast output (the caller frees it) and its element count. */
static float *conv_case_output(const conv_case_t *cc, const char *what, int64_t *count)
{
    const hqi_ref_window_t *w = &cc->window;
    hqi_ref_dims_t in = {cc->n, cc->h, cc->w, cc->cin}, out = {cc->n, 1, 1, cc->cout};
    if (cc->kind == HQI_FAST_CONV) {
        out.h = hqi_ref_window_extent(cc->h, w->kernel_h, w->stride_h, w->dilation_h, w->pad_top,
                                      w->pad_bottom, false);
        out.w = hqi_ref_window_extent(cc->w, w->kernel_w, w->stride_w, w->dilation_w, w->pad_left,
                                      w->pad_right, false);
    } else if (cc->kind == HQI_FAST_DECONV) {
        out.h = hqi_ref_deconv_extent(cc->h, w->kernel_h, w->stride_h, w->dilation_h, w->pad_top,
                                      w->pad_bottom, cc->output_pad_h);
        out.w = hqi_ref_deconv_extent(cc->w, w->kernel_w, w->stride_w, w->dilation_w, w->pad_left,
                                      w->pad_right, cc->output_pad_w);
    }
    assert_true(out.h >= 1 && out.w >= 1);
    const int64_t kh = cc->kind == HQI_FAST_DENSE ? 1 : w->kernel_h;
    const int64_t kw = cc->kind == HQI_FAST_DENSE ? 1 : w->kernel_w;
    const int64_t weight_count = kh * kw * (cc->cin / cc->groups) * cc->cout;
    const int64_t in_count = in.n * in.h * in.w * in.c, out_count = out.n * out.h * out.w * out.c;
    float *x = floats(in_count), *k = floats(weight_count), *b = floats(cc->cout);
    float *add = floats(out_count), *slopes = floats(cc->cout);
    float *want = floats(out_count), *got = floats(out_count), *first = floats(out_count);
    fill(x, in_count);
    fill(k, weight_count);
    fill(b, cc->cout);
    fill(add, out_count);
    fill(slopes, cc->cout);
    hqi_ref_act_t act = make_act(cc->act, slopes, cc->cout);
    hq_error_t err = {0};
    hq_status_t st;
    if (cc->kind == HQI_FAST_CONV) {
        hqi_ref_conv_params_t p = {*w, cc->groups, act};
        st = hqi_ref_conv2d(&p, in, x, k, cc->bias ? b : NULL, cc->addend ? add : NULL, out, want,
                            &err);
    } else if (cc->kind == HQI_FAST_DECONV) {
        hqi_ref_deconv_params_t p = {*w, cc->output_pad_h, cc->output_pad_w, cc->groups, act};
        st = hqi_ref_deconv2d(&p, in, x, k, cc->bias ? b : NULL, out, want, &err);
    } else {
        st = hqi_ref_dense(cc->n, cc->cin, cc->cout, x, k, cc->bias ? b : NULL, &act, want, &err);
    }
    if (st != HQ_OK)
        fail_msg("%s: reference: %s", what, err.message);

    hqi_fast_conv_desc_t desc = {cc->kind,   *w,      cc->output_pad_h, cc->output_pad_w,
                                 cc->groups, cc->cin, cc->cout};
    hqi_fast_conv_t *conv = NULL;
    if (hqi_fast_conv_prepare(&desc, k, cc->bias ? b : NULL, &conv, &err) != HQ_OK)
        fail_msg("%s: prepare: %s", what, err.message);
    int64_t per_thread = hqi_fast_conv_scratch(conv);
    float *scratch = per_thread ? floats(per_thread * 3) : NULL;
    for (int threads = 1; threads <= 3; threads++) {
        memset(got, 0xff, (size_t)out_count * sizeof(float)); /* NaN: catches unwritten cells */
        if (hqi_fast_conv_run(conv, &act, in, x, cc->addend ? add : NULL, out, got, scratch,
                              pools[threads], &err) != HQ_OK)
            fail_msg("%s: fast: %s", what, err.message);
        if (threads == 1) {
            assert_close(got, want, out_count, what);
            memcpy(first, got, (size_t)out_count * sizeof(float));
        } else if (memcmp(first, got, (size_t)out_count * sizeof(float))) {
            fail_msg("%s: %d threads differ from 1 thread", what, threads);
        }
    }
    hqi_fast_conv_destroy(conv);
    free(scratch);
    free(x);
    free(k);
    free(b);
    free(add);
    free(slopes);
    free(want);
    free(got);
    *count = out_count;
    return first;
}

static void check_conv_case(const conv_case_t *cc, const char *what)
{
    int64_t count;
    free(conv_case_output(cc, what, &count));
}

static hqi_ref_window_t random_window(int max_kernel)
{
    hqi_ref_window_t w;
    w.kernel_h = pick(1, max_kernel);
    w.kernel_w = next_u32() % 3 ? w.kernel_h : pick(1, max_kernel);
    w.stride_h = pick(1, 3);
    w.stride_w = next_u32() % 3 ? w.stride_h : pick(1, 3);
    w.dilation_h = next_u32() % 4 ? 1 : pick(2, 3);
    w.dilation_w = next_u32() % 3 ? w.dilation_h : pick(1, 3);
    w.pad_top = pick(0, w.kernel_h);
    w.pad_left = pick(0, w.kernel_w);
    w.pad_bottom = pick(0, w.kernel_h);
    w.pad_right = pick(0, w.kernel_w);
    return w;
}

/* Sizes that cross the tile edges: a few rows of 6, panels of 16 and 8, K blocks of 256. */
static const int64_t channel_choices[] = {1, 3, 5, 8, 13, 16, 17, 24, 31, 40, 64};

static void run_conv_cases(int count, uint32_t seed)
{
    rng = seed;
    for (int i = 0; i < count; i++) {
        conv_case_t cc = {.kind = HQI_FAST_CONV};
        cc.n = pick(1, 3);
        cc.window = random_window(5);
        int shape = pick(0, 3); /* 0 dense, 1 grouped, 2 depthwise, 3 depthwise multiplier */
        cc.groups = 1;
        cc.cin = channel_choices[pick(0, 10)];
        cc.cout = channel_choices[pick(0, 10)];
        if (shape == 1) {
            cc.groups = pick(2, 4);
            cc.cin = cc.groups * pick(1, 20);
            cc.cout = cc.groups * pick(1, 12);
        } else if (shape >= 2) {
            cc.groups = (int)channel_choices[pick(0, 10)];
            cc.cin = cc.groups;
            cc.cout = cc.groups * (shape == 3 ? pick(2, 3) : 1);
        }
        const hqi_ref_window_t *w = &cc.window;
        int64_t eff_h = (int64_t)w->dilation_h * (w->kernel_h - 1) + 1;
        int64_t eff_w = (int64_t)w->dilation_w * (w->kernel_w - 1) + 1;
        cc.h = eff_h + pick(0, 12);
        cc.w = eff_w + pick(0, 12);
        cc.bias = next_u32() % 4 != 0;
        cc.addend = next_u32() % 3 == 0;
        cc.act = all_acts[i % (int)(sizeof all_acts / sizeof all_acts[0])];
        char what[192];
        snprintf(what, sizeof what,
                 "case %d: conv n%lld %lldx%lldx%lld -> %lld, g%d, k%dx%d s%dx%d d%dx%d "
                 "p%d,%d,%d,%d act %d",
                 i, (long long)cc.n, (long long)cc.h, (long long)cc.w, (long long)cc.cin,
                 (long long)cc.cout, cc.groups, w->kernel_h, w->kernel_w, w->stride_h, w->stride_w,
                 w->dilation_h, w->dilation_w, w->pad_top, w->pad_left, w->pad_bottom, w->pad_right,
                 (int)cc.act);
        check_conv_case(&cc, what);
    }
}

static void conv_matches_the_reference_on_random_shapes_and_threads(void **state)
{
    (void)state;
    run_conv_cases(120, 7);
}

static void conv_with_a_deep_kernel_crosses_k_blocks_and_matches(void **state)
{
    (void)state;
    rng = 99;
    /* K = 3*3*300 (tapwise blocks of 150) and 5*5*12 = 300 (gathered blocks of 150), and a
     * 1x1 with 600 input channels (direct, 3 blocks) */
    const conv_case_t cases[] = {
        {HQI_FAST_CONV,
         2,
         7,
         9,
         300,
         37,
         1,
         {3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
         0,
         0,
         true,
         true,
         HQ_ACT_RELU},
        {HQI_FAST_CONV,
         1,
         11,
         8,
         12,
         20,
         1,
         {5, 5, 2, 1, 1, 1, 2, 2, 2, 2},
         0,
         0,
         true,
         false,
         HQ_ACT_HARDSWISH},
        {HQI_FAST_CONV,
         3,
         5,
         5,
         600,
         9,
         1,
         {1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
         0,
         0,
         false,
         true,
         HQ_ACT_LINEAR},
        {HQI_FAST_CONV,
         2,
         9,
         9,
         64,
         64,
         1,
         {1, 1, 2, 2, 1, 1, 0, 0, 0, 0},
         0,
         0,
         true,
         false,
         HQ_ACT_LEAKY},
        /* Winograd F(2x2, 3x3) with 160 -> 144 channels and uneven pads */
        {HQI_FAST_CONV,
         1,
         9,
         7,
         160,
         144,
         1,
         {3, 3, 1, 1, 1, 1, 0, 2, 2, 0},
         0,
         0,
         true,
         false,
         HQ_ACT_LINEAR},
        /* more rows than one tile, 24 = 16 + 8 columns */
        {HQI_FAST_CONV,
         3,
         7,
         6,
         20,
         24,
         1,
         {3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
         0,
         0,
         true,
         false,
         HQ_ACT_LINEAR},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "deep case %zu", i);
        check_conv_case(&cases[i], what);
    }
}

/* The addend and activation applied inside the micro-kernels (GEMM tiles of 16 and 8 columns,
 * rows of depthwise 3x3 pixels four at a time) against the reference, for every activation,
 * with and without an addend, with channel counts that leave vector and scalar tails. */
static void fused_epilogues_match_the_reference_for_every_activation(void **state)
{
    (void)state;
    rng = 2026;
    const int64_t dw_channels[] = {8, 13, 24, 40};
    const int acts = (int)(sizeof all_acts / sizeof all_acts[0]);
    for (int a = 0; a < acts; a++)
        for (int with_addend = 0; with_addend < 2; with_addend++) {
            /* 1x1 (direct, full 16- and 8-wide tiles), 3x3 dense (tapwise) and 3x3 depthwise
             * at strides 1 and 2 */
            const conv_case_t cases[] = {
                {HQI_FAST_CONV,
                 2,
                 5,
                 7,
                 16,
                 40,
                 1,
                 {1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
                 0,
                 0,
                 a % 2 == 0,
                 with_addend,
                 all_acts[a]},
                {HQI_FAST_CONV,
                 1,
                 6,
                 9,
                 24,
                 32,
                 1,
                 {3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
                 0,
                 0,
                 true,
                 with_addend,
                 all_acts[a]},
                {HQI_FAST_CONV,
                 2,
                 6,
                 19,
                 dw_channels[a % 4],
                 dw_channels[a % 4],
                 (int)dw_channels[a % 4],
                 {3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
                 0,
                 0,
                 a % 3 != 0,
                 with_addend,
                 all_acts[a]},
                {HQI_FAST_CONV,
                 1,
                 9,
                 23,
                 dw_channels[(a + 1) % 4],
                 dw_channels[(a + 1) % 4],
                 (int)dw_channels[(a + 1) % 4],
                 {3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
                 0,
                 0,
                 true,
                 with_addend,
                 all_acts[a]},
            };
            for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                char what[96];
                snprintf(what, sizeof what, "fused case %zu, act %d, addend %d", i,
                         (int)all_acts[a], with_addend);
                check_conv_case(&cases[i], what);
            }
        }
}

/* Winograd F(4x4, 3x3) at its largest (128 -> 128 channels, K = 1152): its transforms scale
 * rounding errors by up to ~100, so near-cancelling outputs are checked against the header's
 * bound, |fast - ref| <= 1e-4 (|ref| + sum of |terms|) + 1e-6, with sum of |terms| the
 * reference convolution of |x| by |w| plus |bias|; the worst element must also stay under a
 * tenth of it (measured: 0.015 of it). */
static void winograd_4x4_stays_within_the_header_bound_at_128_channels(void **state)
{
    (void)state;
    rng = 4444;
    const int64_t n = 2, h = 13, w = 10, c = 128;
    const hqi_ref_window_t win = {3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
    const hqi_ref_dims_t in = {n, h, w, c}, out = {n, h, w, c};
    const int64_t in_count = n * h * w * c, k_count = 9 * c * c;
    float *x = floats(in_count), *k = floats(k_count), *b = floats(c);
    float *ax = floats(in_count), *ak = floats(k_count), *ab = floats(c);
    float *want = floats(in_count), *bound = floats(in_count), *got = floats(in_count);
    fill(x, in_count);
    fill(k, k_count);
    fill(b, c);
    for (int64_t i = 0; i < in_count; i++)
        ax[i] = fabsf(x[i]);
    for (int64_t i = 0; i < k_count; i++)
        ak[i] = fabsf(k[i]);
    for (int64_t i = 0; i < c; i++)
        ab[i] = fabsf(b[i]);
    hqi_ref_act_t linear = {HQ_ACT_LINEAR, 0, 0, NULL, 0};
    hqi_ref_conv_params_t p = {win, 1, linear};
    hq_error_t err = {0};
    assert_int_equal(hqi_ref_conv2d(&p, in, x, k, b, NULL, out, want, &err), HQ_OK);
    assert_int_equal(hqi_ref_conv2d(&p, in, ax, ak, ab, NULL, out, bound, &err), HQ_OK);
    hqi_fast_conv_desc_t desc = {HQI_FAST_CONV, win, 0, 0, 1, c, c};
    hqi_fast_conv_t *conv = NULL;
    assert_int_equal(hqi_fast_conv_prepare(&desc, k, b, &conv, &err), HQ_OK);
    float *scratch = floats(hqi_fast_conv_scratch(conv));
    assert_int_equal(hqi_fast_conv_run(conv, &linear, in, x, NULL, out, got, scratch, NULL, &err),
                     HQ_OK);
    double worst = 0.0;
    for (int64_t i = 0; i < in_count; i++) {
        double allowed = 1e-4 * (fabs((double)want[i]) + (double)bound[i]) + 1e-6;
        double used = fabs((double)got[i] - (double)want[i]) / allowed;
        if (used > worst)
            worst = used;
    }
    if (!(worst <= 0.1))
        fail_msg("F(4x4, 3x3) error at %.3g of the header's bound", worst);
    hqi_fast_conv_destroy(conv);
    free(scratch);
    free(x);
    free(k);
    free(b);
    free(ax);
    free(ak);
    free(ab);
    free(want);
    free(bound);
    free(got);
}

/* A stack of LAYERS 3x3 convolutions (c -> c channels, ReLU, He-scaled weights: activations of
 * order one all the way down, as in a trained network), run by the reference from its own
 * outputs and by the fast kernels from theirs, in each convolution form (forms[f]: the
 * environment variable that forces it at prepare time, NULL for the default choice). error[f]:
 * max |fast - ref| over the range of the reference's last output, the figure the import sweep
 * holds to 1e-4. */
#define LAYERS 16
static void conv_stack_errors(int64_t c, int64_t side, const char *const forms[3], double error[3])
{
    const hqi_ref_window_t win = {3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
    const hqi_ref_dims_t dims = {1, side, side, c};
    const int64_t count = side * side * c, k_count = 9 * c * c;
    float *input = floats(count), *ref = floats(count), *fast = floats(count);
    float *next = floats(count), *k = floats(LAYERS * k_count);
    fill(input, count);
    fill(k, LAYERS * k_count);
    const float scale = (float)sqrt(6.0 / (9.0 * (double)c)); /* variance 2 / fan-in */
    for (int64_t i = 0; i < LAYERS * k_count; i++)
        k[i] *= scale;
    hqi_ref_act_t relu = {HQ_ACT_RELU, 0, 0, NULL, 0};
    hqi_ref_conv_params_t p = {win, 1, relu};
    hq_error_t err = {0};
    memcpy(ref, input, (size_t)count * sizeof(float));
    for (int l = 0; l < LAYERS; l++) {
        assert_int_equal(
            hqi_ref_conv2d(&p, dims, ref, k + l * k_count, NULL, NULL, dims, next, &err), HQ_OK);
        memcpy(ref, next, (size_t)count * sizeof(float));
    }
    double lo = ref[0], hi = ref[0];
    for (int64_t i = 0; i < count; i++) {
        lo = fmin(lo, ref[i]);
        hi = fmax(hi, ref[i]);
    }
    for (int f = 0; f < 3; f++) {
        if (forms[f])
            assert_int_equal(setenv(forms[f], "1", 1), 0);
        memcpy(fast, input, (size_t)count * sizeof(float));
        for (int l = 0; l < LAYERS; l++) {
            hqi_fast_conv_desc_t desc = {HQI_FAST_CONV, win, 0, 0, 1, c, c};
            hqi_fast_conv_t *conv = NULL;
            assert_int_equal(hqi_fast_conv_prepare(&desc, k + l * k_count, NULL, &conv, &err),
                             HQ_OK);
            float *scratch = floats(hqi_fast_conv_scratch(conv));
            assert_int_equal(
                hqi_fast_conv_run(conv, &relu, dims, fast, NULL, dims, next, scratch, NULL, &err),
                HQ_OK);
            memcpy(fast, next, (size_t)count * sizeof(float));
            hqi_fast_conv_destroy(conv);
            free(scratch);
        }
        if (forms[f])
            assert_int_equal(unsetenv(forms[f]), 0);
        double worst = 0.0;
        for (int64_t i = 0; i < count; i++)
            worst = fmax(worst, fabs((double)fast[i] - (double)ref[i]));
        error[f] = worst / (hi - lo);
    }
    free(input);
    free(ref);
    free(fast);
    free(next);
    free(k);
}

/* Deep networks add up every layer's rounding, and the import sweep allows 1e-4 of the output
 * range for a whole network (FCN-ResNet50: 70 layers). On 16 stacked 3x3 layers of 64 and of 128
 * channels each form must stay within a small share of that. Measured (64 / 128 channels, the
 * same on AVX-512 and AVX2, within 10% portable): F(4x4) 1.9e-6 / 1.9e-6, F(2x2) 6.6e-7 /
 * 6.3e-7, direct 7.1e-7 / 8.7e-7 of the range. Before the F(4x4) points 0, 1, -1, 1/2, -2 and
 * the sums in runs (each K block and each run of WINO_KB channels summed from zero, then added),
 * F(4x4) was at 5.1e-6 / 5.0e-6, F(2x2) 8.9e-7 / 1.15e-6 and the direct form 1.6e-6 / 2.3e-6:
 * each bound below fails them. */
static void deep_conv_stacks_stay_within_a_share_of_the_import_tolerance(void **state)
{
    (void)state;
    static const char *const forms[3] = {NULL, "HQ_EMULATE_WINOGRAD2", "HQ_EMULATE_NO_WINOGRAD"};
    static const char *const names[3] = {"default (F(4x4))", "F(2x2)", "direct"};
    static const double bound[3] = {3e-6, 1e-6, 1.2e-6};
    static const int64_t channels[] = {64, 128};
    for (size_t i = 0; i < 2; i++) {
        double error[3];
        rng = 5151;
        conv_stack_errors(channels[i], 16, forms, error);
        for (int f = 0; f < 3; f++)
            if (!(error[f] <= bound[f]))
                fail_msg("%lld channels, %s: error %.3g of the range, over %.3g",
                         (long long)channels[i], names[f], error[f], bound[f]);
    }
}

static void deconv_matches_the_reference_with_and_without_overlap(void **state)
{
    (void)state;
    rng = 1234;
    for (int i = 0; i < 60; i++) {
        conv_case_t cc = {.kind = HQI_FAST_DECONV};
        cc.n = pick(1, 2);
        cc.h = pick(1, 7);
        cc.w = pick(1, 7);
        if (i % 3 == 0) { /* stride == kernel, no pads: the scatter path */
            int k = pick(1, 3);
            cc.window = (hqi_ref_window_t){k, k, k, k, 1, 1, 0, 0, 0, 0};
        } else {
            cc.window = random_window(4);
            hqi_ref_window_t *w = &cc.window;
            w->pad_top = pick(0, w->kernel_h - 1);
            w->pad_bottom = pick(0, w->kernel_h - 1);
            w->pad_left = pick(0, w->kernel_w - 1);
            w->pad_right = pick(0, w->kernel_w - 1);
            cc.output_pad_h = pick(0, w->stride_h - 1);
            cc.output_pad_w = pick(0, w->stride_w - 1);
            if (hqi_ref_deconv_extent(cc.h, w->kernel_h, w->stride_h, w->dilation_h, w->pad_top,
                                      w->pad_bottom, cc.output_pad_h) < 1 ||
                hqi_ref_deconv_extent(cc.w, w->kernel_w, w->stride_w, w->dilation_w, w->pad_left,
                                      w->pad_right, cc.output_pad_w) < 1) {
                i--;
                continue;
            }
        }
        cc.groups = i % 5 == 4 ? 2 : 1;
        cc.cin = cc.groups * pick(1, 20);
        cc.cout = cc.groups * pick(1, 20);
        cc.bias = i % 2 == 0;
        cc.act = all_acts[i % (int)(sizeof all_acts / sizeof all_acts[0])];
        char what[128];
        snprintf(what, sizeof what, "deconv case %d: %lldx%lld %lld -> %lld g%d k%d s%d", i,
                 (long long)cc.h, (long long)cc.w, (long long)cc.cin, (long long)cc.cout, cc.groups,
                 cc.window.kernel_h, cc.window.stride_h);
        check_conv_case(&cc, what);
    }
}

static void dense_matches_the_reference_for_small_and_odd_sizes(void **state)
{
    (void)state;
    rng = 555;
    for (int i = 0; i < 30; i++) {
        conv_case_t cc = {.kind = HQI_FAST_DENSE, .groups = 1, .h = 1, .w = 1};
        cc.n = pick(1, 13);
        cc.cin = pick(1, 700);
        cc.cout = pick(1, 70);
        cc.bias = i % 2 == 0;
        cc.act = all_acts[i % (int)(sizeof all_acts / sizeof all_acts[0])];
        char what[96];
        snprintf(what, sizeof what, "dense case %d: %lld x %lld -> %lld", i, (long long)cc.n,
                 (long long)cc.cin, (long long)cc.cout);
        check_conv_case(&cc, what);
    }
}

static void conv_refuses_shapes_it_was_not_prepared_for(void **state)
{
    (void)state;
    float k[2 * 3 * 3 * 4] = {0}, x[5 * 5 * 2] = {0}, y[5 * 5 * 4], scratch[HQI_FAST_MC * 18];
    hqi_fast_conv_desc_t desc = {HQI_FAST_CONV, {3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 0, 1, 2, 4};
    hqi_fast_conv_t *conv = NULL;
    hq_error_t err = {0};
    assert_int_equal(hqi_fast_conv_prepare(&desc, k, NULL, &conv, &err), HQ_OK);
    hqi_ref_act_t act = {HQ_ACT_LINEAR, 0, 0, NULL, 0};
    hqi_ref_dims_t in = {1, 5, 5, 2}, out = {1, 5, 5, 4}, wrong = {1, 4, 5, 4};
    /* row-wise: border pixels gather each of the 3 kernel rows (3 taps x 2 channels) */
    assert_int_equal(hqi_fast_conv_scratch(conv), HQI_FAST_MC * 6 * 3);
    assert_int_equal(hqi_fast_conv_run(conv, &act, in, x, NULL, out, y, NULL, NULL, &err),
                     HQ_ERR_ARGUMENT);
    assert_string_equal(err.message, "conv2d: scratch: pointer is NULL");
    assert_int_equal(hqi_fast_conv_run(conv, &act, in, x, NULL, out, y, scratch, NULL, &err),
                     HQ_OK);
    assert_int_equal(hqi_fast_conv_run(conv, &act, in, x, NULL, wrong, y, scratch, NULL, &err),
                     HQ_ERR_ARGUMENT);
    assert_string_equal(err.message, "conv2d: output: H extent 4, expected 5");
    hqi_ref_dims_t three = {1, 5, 5, 3};
    assert_int_equal(hqi_fast_conv_run(conv, &act, three, x, NULL, out, y, scratch, NULL, &err),
                     HQ_ERR_ARGUMENT);
    hqi_fast_conv_destroy(conv);
    desc.groups = 3; /* does not divide 2 channels */
    assert_int_equal(hqi_fast_conv_prepare(&desc, k, NULL, &conv, &err), HQ_ERR_ARGUMENT);
    assert_null(conv);
}

/* A transposed convolution's output is checked against its own extents (the taps' canvas plus
 * output padding, not a convolution's), on the W axis too. */
static void deconv_refuses_an_output_of_a_convolutions_extent(void **state)
{
    (void)state;
    float k[2 * 2 * 1 * 1] = {0}, x[2 * 3] = {0}, y[4 * 7];
    hqi_fast_conv_desc_t desc = {HQI_FAST_DECONV, {2, 2, 2, 2, 1, 1, 0, 0, 0, 0}, 0, 1, 1, 1, 1};
    hqi_fast_conv_t *conv = NULL;
    hq_error_t err = {0};
    assert_int_equal(hqi_fast_conv_prepare(&desc, k, NULL, &conv, &err), HQ_OK);
    hqi_ref_act_t act = {HQ_ACT_LINEAR, 0, 0, NULL, 0};
    hqi_ref_dims_t in = {1, 2, 3, 1}, out = {1, 4, 7, 1}, as_conv = {1, 1, 1, 1};
    assert_int_equal(hqi_fast_conv_run(conv, &act, in, x, NULL, out, y, NULL, NULL, &err), HQ_OK);
    assert_int_equal(hqi_fast_conv_run(conv, &act, in, x, NULL, as_conv, y, NULL, NULL, &err),
                     HQ_ERR_ARGUMENT);
    assert_string_equal(err.message, "deconv2d: output: H extent 1, expected 4");
    hqi_ref_dims_t short_w = {1, 4, 6, 1}; /* 6 without the output padding column */
    assert_int_equal(hqi_fast_conv_run(conv, &act, in, x, NULL, short_w, y, NULL, NULL, &err),
                     HQ_ERR_ARGUMENT);
    assert_string_equal(err.message, "deconv2d: output: W extent 6, expected 7");
    hqi_fast_conv_destroy(conv);
}

/* ---- memory-bound kernels ------------------------------------------------------------------- */

static void pools_match_the_reference_including_ceil_extents_and_nan(void **state)
{
    (void)state;
    rng = 4242;
    for (int i = 0; i < 80; i++) {
        hqi_ref_pool_params_t p = {random_window(4), next_u32() % 2 == 0};
        p.window.dilation_h = p.window.dilation_w = 1;
        hqi_ref_window_t *w = &p.window;
        if (w->pad_top >= w->kernel_h)
            w->pad_top = w->kernel_h - 1;
        if (w->pad_left >= w->kernel_w)
            w->pad_left = w->kernel_w - 1;
        if (w->pad_bottom >= w->kernel_h)
            w->pad_bottom = w->kernel_h - 1;
        if (w->pad_right >= w->kernel_w)
            w->pad_right = w->kernel_w - 1;
        hqi_ref_dims_t in = {pick(1, 2), w->kernel_h + pick(0, 9), w->kernel_w + pick(0, 9),
                             channel_choices[pick(0, 10)]};
        bool ceil_mode = i % 2;
        hqi_ref_dims_t out = {in.n,
                              hqi_ref_window_extent(in.h, w->kernel_h, w->stride_h, 1, w->pad_top,
                                                    w->pad_bottom, ceil_mode),
                              hqi_ref_window_extent(in.w, w->kernel_w, w->stride_w, 1, w->pad_left,
                                                    w->pad_right, ceil_mode),
                              in.c};
        int64_t n_in = in.n * in.h * in.w * in.c, n_out = out.n * out.h * out.w * out.c;
        float *x = floats(n_in), *want = floats(n_out), *got = floats(n_out);
        fill(x, n_in);
        if (i % 7 == 0)
            x[pick(0, (int)n_in - 1)] = NAN;
        hq_error_t err = {0};
        for (int max = 0; max <= 1; max++) {
            hq_status_t st = max ? hqi_ref_maxpool(&p, in, x, out, want, &err)
                                 : hqi_ref_avgpool(&p, in, x, out, want, &err);
            if (st != HQ_OK)
                fail_msg("pool case %d: reference: %s", i, err.message);
            for (int threads = 1; threads <= 3; threads += 2) {
                st = max ? hqi_fast_maxpool(&p, in, x, out, got, pools[threads], &err)
                         : hqi_fast_avgpool(&p, in, x, out, got, pools[threads], &err);
                if (st != HQ_OK)
                    fail_msg("pool case %d: fast: %s", i, err.message);
                char what[64];
                snprintf(what, sizeof what, "pool case %d (%s)", i, max ? "max" : "avg");
                if (max) /* a max is exact */
                    for (int64_t q = 0; q < n_out; q++)
                        if (!(isnan(want[q]) && isnan(got[q])) && want[q] != got[q])
                            fail_msg("%s: element %lld: %g vs %g", what, (long long)q,
                                     (double)got[q], (double)want[q]);
                assert_close(got, want, n_out, what);
            }
        }
        free(x);
        free(want);
        free(got);
    }
}

static void global_avg_pool_of_a_large_map_stays_within_tolerance_on_every_isa(void **state)
{
    (void)state;
    rng = 77;
    hqi_ref_dims_t in = {2, 160, 160, 19};
    int64_t n = in.n * in.h * in.w * in.c;
    float *x = floats(n), want[2 * 19], got[2 * 19];
    fill(x, n);
    for (int64_t i = 0; i < n; i++)
        x[i] += 3.0f; /* a large mean: float row sums alone would drift */
    hq_error_t err = {0};
    assert_int_equal(hqi_ref_global_avg_pool(in, x, want, &err), HQ_OK);
    assert_int_equal(hqi_fast_global_avg_pool(in, x, got, pools[2], &err), HQ_OK);
    assert_close(got, want, 2 * 19, "global_avg_pool");
    free(x);
    /* every ISA, channel counts on and off the vector widths (row sums of 8, 16 and 64 lanes
     * with masked or scalar tails, and more than one chunk of 512), the same bits */
    const hqi_fast_isa_t *isas[] = {&hqi_fast_isa_portable, hqi_fast_isa_avx2(),
                                    hqi_fast_isa_avx512()};
    const int64_t widths[] = {1, 13, 32, 77, 144, 600};
    for (int k = 0; k < 6; k++) {
        hqi_ref_dims_t d = {2, 9, 11, widths[k]};
        int64_t count = d.n * d.h * d.w * d.c;
        float *y = floats(count), *ref = floats(2 * d.c), *first = floats(2 * d.c),
              *out = floats(2 * d.c);
        fill(y, count);
        assert_int_equal(hqi_ref_global_avg_pool(d, y, ref, &err), HQ_OK);
        for (int i = 0; i < 3; i++) {
            if (!isas[i])
                continue;
            hqi_fast_isa_override(isas[i]);
            assert_int_equal(hqi_fast_global_avg_pool(d, y, out, pools[2], &err), HQ_OK);
            assert_close(out, ref, 2 * d.c, isas[i]->name);
            if (i == 0)
                memcpy(first, out, (size_t)(2 * d.c) * sizeof(float));
            else if (memcmp(first, out, (size_t)(2 * d.c) * sizeof(float)))
                fail_msg("global_avg_pool %lld channels: %s differs from portable", (long long)d.c,
                         isas[i]->name);
        }
        hqi_fast_isa_override(NULL);
        free(y);
        free(ref);
        free(first);
        free(out);
    }
}

static hq_shape_t shape4(int64_t n, int64_t h, int64_t w, int64_t c)
{
    hq_shape_t s = {4, {n, h, w, c}};
    return s;
}

static void elementwise_matches_the_reference_for_every_op_and_broadcast(void **state)
{
    (void)state;
    rng = 31337;
    for (int op = 0; op < HQI_REF_EW_COUNT; op++) {
        for (int pattern = 0; pattern < 6; pattern++) {
            int64_t n = 2, h = 5, w = 7, c = channel_choices[pick(0, 10)];
            hq_shape_t out = shape4(n, h, w, c), full = out;
            hq_shape_t small = pattern < 2   ? shape4(n, 1, 1, c)
                               : pattern < 4 ? shape4(1, 1, 1, 1)
                                             : shape4(n, 1, 1, 1);
            bool small_first = pattern % 2;
            if (pattern == 5)
                small = full; /* equal shapes */
            int64_t n_full = n * h * w * c, n_small = small.dims[0] * small.dims[3];
            if (pattern == 5)
                n_small = n_full;
            float *a = floats(n_full), *b = floats(n_small), *want = floats(n_full);
            float *got = floats(n_full);
            fill(a, n_full);
            fill(b, n_small);
            b[0] = 0.0f; /* a division by zero */
            if (op >= HQI_REF_EW_MAX)
                a[3 % n_full] = NAN;
            float slopes[64];
            fill(slopes, 64);
            hqi_ref_act_t act = make_act(all_acts[(op * 6 + pattern) % 12], slopes, c);
            const hq_shape_t *sa = small_first ? &small : &full, *sb = small_first ? &full : &small;
            const float *pa = small_first ? b : a, *pb = small_first ? a : b;
            hq_error_t err = {0};
            assert_int_equal(
                hqi_ref_elementwise((hqi_ref_ew_op_t)op, sa, pa, sb, pb, &act, &out, want, &err),
                HQ_OK);
            assert_int_equal(hqi_fast_elementwise((hqi_ref_ew_op_t)op, sa, pa, sb, pb, &act, &out,
                                                  got, pools[3], &err),
                             HQ_OK);
            char what[64];
            snprintf(what, sizeof what, "elementwise op %d pattern %d", op, pattern);
            assert_close(got, want, n_full, what);
            free(a);
            free(b);
            free(want);
            free(got);
        }
    }
    /* a broadcast the fast kernel leaves to the reference */
    hq_shape_t a = shape4(2, 1, 7, 3), b = shape4(2, 5, 1, 3), out = shape4(2, 5, 7, 3);
    float x[42], y[30], z[210];
    hqi_ref_act_t linear = {HQ_ACT_LINEAR, 0, 0, NULL, 0};
    hq_error_t err = {0};
    assert_int_equal(
        hqi_fast_elementwise(HQI_REF_EW_ADD, &a, x, &b, y, &linear, &out, z, NULL, &err),
        HQ_ERR_UNSUPPORTED);
}

static void resize_matches_the_reference_for_every_mode(void **state)
{
    (void)state;
    rng = 8080;
    for (int method = 0; method <= HQ_RESIZE_BILINEAR; method++)
        for (int coords = 0; coords <= HQ_RESIZE_TF_HALF_PIXEL_FOR_NN; coords++)
            for (int round = 0; round < 8; round++) {
                hqi_ref_resize_params_t p = {
                    (hq_resize_method_t)method, (hq_resize_coords_t)coords, round & 1,
                    (round & 2) != 0,           round & 4 ? 1.7 : 0,        round & 4 ? 0.6 : 0};
                hqi_ref_dims_t in = {2, pick(1, 9), pick(1, 9), channel_choices[pick(0, 10)]};
                hqi_ref_dims_t out = {2, pick(1, 20), pick(1, 20), in.c};
                int64_t n_in = in.n * in.h * in.w * in.c, n_out = out.n * out.h * out.w * out.c;
                float *x = floats(n_in), *want = floats(n_out), *got = floats(n_out);
                fill(x, n_in);
                hq_error_t err = {0};
                assert_int_equal(hqi_ref_resize(&p, in, x, out, want, &err), HQ_OK);
                assert_int_equal(hqi_fast_resize(&p, in, x, out, got, pools[2], &err), HQ_OK);
                assert_close(got, want, n_out, "resize");
                free(x);
                free(want);
                free(got);
            }
}

static void channel_shuffle_matches_the_reference_bit_for_bit_on_any_threads(void **state)
{
    (void)state;
    rng = 9090;
    const int64_t groups[] = {1, 2, 3, 4, 8};
    for (int k = 0; k < 5; k++)
        for (int t = 1; t <= 3; t++) {
            int64_t g = groups[k], c = g * channel_choices[pick(0, 10)];
            hq_shape_t s = shape4(pick(1, 3), pick(1, 9), pick(1, 9), c);
            int64_t n = s.dims[0] * s.dims[1] * s.dims[2] * c;
            float *x = floats(n), *want = floats(n), *got = floats(n);
            fill(x, n);
            hq_error_t err = {0};
            assert_int_equal(hqi_ref_channel_shuffle(&s, (int)g, x, want, &err), HQ_OK);
            assert_int_equal(hqi_fast_channel_shuffle(&s, (int)g, x, got, pools[t], &err), HQ_OK);
            assert_memory_equal(got, want, (size_t)n * sizeof(float));
            free(x);
            free(want);
            free(got);
        }
    float x[6], y[6];
    const hq_shape_t s = shape4(1, 1, 1, 6);
    hq_error_t err = {0};
    assert_int_equal(hqi_fast_channel_shuffle(&s, 4, x, y, NULL, &err), HQ_ERR_ARGUMENT);
    assert_non_null(strstr(err.message, "channel_shuffle: groups 4"));
}

static void activation_and_folded_batch_norm_match_the_reference(void **state)
{
    (void)state;
    rng = 2024;
    for (size_t a = 0; a < sizeof all_acts / sizeof all_acts[0]; a++) {
        int64_t rows = pick(1, 300), c = channel_choices[pick(0, 10)];
        float *x = floats(rows * c), *want = floats(rows * c), *got = floats(rows * c);
        float *gamma = floats(c), *beta = floats(c), *mean = floats(c), *var = floats(c);
        float *scale = floats(c), *shift = floats(c), slopes[64];
        fill(x, rows * c);
        x[0] = 4.0f; /* past relu6's and hardswish's corners */
        fill(gamma, c);
        fill(beta, c);
        fill(mean, c);
        fill(var, c);
        fill(slopes, 64);
        for (int64_t k = 0; k < c; k++) {
            var[k] = fabsf(var[k]) + 0.1f;
            double s = gamma[k] / sqrt((double)var[k] + 1e-5);
            scale[k] = (float)s;
            shift[k] = (float)(beta[k] - mean[k] * s);
        }
        hqi_ref_act_t act = make_act(all_acts[a], slopes, c);
        hq_error_t err = {0};
        assert_int_equal(hqi_ref_activation(&act, rows, c, x, want, &err), HQ_OK);
        assert_int_equal(hqi_fast_activation(&act, rows, c, x, got, pools[2], &err), HQ_OK);
        assert_close(got, want, rows * c, "activation");
        if (all_acts[a] != HQ_ACT_EXP && all_acts[a] != HQ_ACT_SIGMOID &&
            all_acts[a] != HQ_ACT_SILU && all_acts[a] != HQ_ACT_TANH)
            for (int64_t i = 0; i < rows * c; i++) /* the simple ones are the same formulas */
                if (want[i] != got[i])
                    fail_msg("activation %d: element %lld: %.9g vs %.9g", (int)all_acts[a],
                             (long long)i, (double)got[i], (double)want[i]);
        assert_int_equal(
            hqi_ref_batch_norm(rows, c, x, gamma, beta, mean, var, 1e-5f, &act, want, &err), HQ_OK);
        assert_int_equal(hqi_fast_affine(&act, rows, c, scale, shift, x, got, pools[3], &err),
                         HQ_OK);
        assert_close(got, want, rows * c, "batch_norm");
        free(x);
        free(want);
        free(got);
        free(gamma);
        free(beta);
        free(mean);
        free(var);
        free(scale);
        free(shift);
    }
}

static void the_portable_code_matches_the_reference_too(void **state)
{
    (void)state;
    hqi_fast_isa_override(&hqi_fast_isa_portable);
    assert_string_equal(hqi_fast_isa_name(), "portable");
    run_conv_cases(40, 11);
    rng = 12;
    conv_case_t scatter = {
        HQI_FAST_DECONV, 1, 5, 6, 7, 3, 1, {2, 2, 2, 2, 1, 1, 0, 0, 0, 0}, 0, 0, true, false,
        HQ_ACT_SIGMOID};
    check_conv_case(&scatter, "portable scatter deconv");
    hqi_fast_isa_override(NULL);
}

/* Layers of MobileNetV2/V3 and EfficientNet shape (depthwise 3x3 and 5x5 at strides 1 and 2
 * with channel counts off the 16-lane grid, narrow 1x1 convolutions K = 16..64 with and without
 * residual addend, the 3-channel stem), shrunk to small maps with odd sizes. */
static const conv_case_t mobile_cases[] = {
    {HQI_FAST_CONV,
     2,
     13,
     11,
     72,
     72,
     72,
     {3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
     0,
     0,
     true,
     false,
     HQ_ACT_RELU6},
    {HQI_FAST_CONV,
     1,
     15,
     9,
     61,
     61,
     61,
     {3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
     0,
     0,
     true,
     true,
     HQ_ACT_HARDSWISH},
    {HQI_FAST_CONV,
     1,
     11,
     14,
     120,
     120,
     120,
     {5, 5, 1, 1, 1, 1, 2, 2, 2, 2},
     0,
     0,
     true,
     false,
     HQ_ACT_SILU},
    /* 5x5 stride 1 with channels past the last multiple of 8 (and of 16) and an addend: the
     * depthwise rows' sliding runs of taps, their channel tail and the border rows' shorter
     * windows */
    {HQI_FAST_CONV,
     1,
     9,
     13,
     36,
     36,
     36,
     {5, 5, 1, 1, 1, 1, 2, 2, 2, 2},
     0,
     0,
     true,
     true,
     HQ_ACT_RELU6},
    {HQI_FAST_CONV,
     2,
     17,
     12,
     40,
     40,
     40,
     {5, 5, 2, 2, 1, 1, 2, 2, 2, 2},
     0,
     0,
     false,
     false,
     HQ_ACT_PRELU},
    {HQI_FAST_CONV,
     1,
     9,
     9,
     37,
     37,
     37,
     {3, 3, 1, 1, 2, 2, 2, 2, 2, 2},
     0,
     0,
     true,
     true,
     HQ_ACT_LINEAR},
    {HQI_FAST_CONV,
     2,
     7,
     13,
     16,
     96,
     1,
     {1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
     0,
     0,
     true,
     false,
     HQ_ACT_RELU6},
    {HQI_FAST_CONV,
     1,
     11,
     7,
     24,
     144,
     1,
     {1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
     0,
     0,
     true,
     true,
     HQ_ACT_HARDSWISH},
    {HQI_FAST_CONV,
     1,
     9,
     10,
     64,
     40,
     1,
     {1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
     0,
     0,
     true,
     true,
     HQ_ACT_LINEAR},
    {HQI_FAST_CONV,
     2,
     5,
     11,
     40,
     83,
     1,
     {1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
     0,
     0,
     false,
     false,
     HQ_ACT_SIGMOID},
    {HQI_FAST_CONV,
     1,
     23,
     21,
     3,
     32,
     1,
     {3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
     0,
     0,
     true,
     false,
     HQ_ACT_HARDSWISH},
    {HQI_FAST_DENSE,
     3,
     1,
     1,
     77,
     70,
     1,
     {1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
     0,
     0,
     true,
     false,
     HQ_ACT_LEAKY},
    /* one-row GEMMs: batch-1 dense (62 full panels and a partial one, two K blocks) and
     * squeeze-excitation 1x1 convolutions on a 1x1 map, batch 1 and 7 (a full tile + a row) */
    {HQI_FAST_DENSE,
     1,
     1,
     1,
     300,
     1000,
     1,
     {1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
     0,
     0,
     true,
     false,
     HQ_ACT_HARDSWISH},
    {HQI_FAST_CONV,
     1,
     1,
     1,
     72,
     24,
     1,
     {1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
     0,
     0,
     true,
     false,
     HQ_ACT_RELU},
    {HQI_FAST_CONV,
     1,
     1,
     1,
     24,
     72,
     1,
     {1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
     0,
     0,
     true,
     true,
     HQ_ACT_HARDSIGMOID},
    {HQI_FAST_CONV,
     7,
     1,
     1,
     40,
     160,
     1,
     {1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
     0,
     0,
     false,
     true,
     HQ_ACT_SILU},
    {HQI_FAST_DENSE,
     1,
     1,
     1,
     64,
     48,
     1,
     {1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
     0,
     0,
     true,
     false,
     HQ_ACT_GELU},
    /* first convolutions read row by row: a 7x7 stride 2 stem to 64 channels with an addend
     * and PReLU (applied after the store), and a 3x3 one to 40 channels (a pair of panels and a
     * partial one) whose odd map leaves tiles of fewer than 6 rows */
    {HQI_FAST_CONV,
     2,
     23,
     19,
     3,
     64,
     1,
     {7, 7, 2, 2, 1, 1, 3, 3, 3, 3},
     0,
     0,
     true,
     true,
     HQ_ACT_PRELU},
    {HQI_FAST_CONV,
     1,
     15,
     17,
     3,
     40,
     1,
     {3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
     0,
     0,
     false,
     false,
     HQ_ACT_RELU6},
    /* weights over 512 KiB, so tasks of 288 rows: a 1x1 convolution 256 -> 520 channels on 323
     * rows (a full task and a partial one) with an addend, and a 3x3 stride 2 one 64 -> 300
     * channels read tap by tap */
    {HQI_FAST_CONV,
     1,
     19,
     17,
     256,
     520,
     1,
     {1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
     0,
     0,
     true,
     true,
     HQ_ACT_RELU6},
    {HQI_FAST_CONV,
     1,
     35,
     33,
     64,
     300,
     1,
     {3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
     0,
     0,
     true,
     false,
     HQ_ACT_HARDSWISH},
    /* Depthwise rows by groups of eight, four and the last one to three pixels, and the border
     * pixels left and right of them channel block by channel block (dw_span): a 7 x 7 map at
     * 5x5 (3 inner pixels between spans of two), 10 columns at 3x3 (8 inner), dilation 2 (the
     * loop for any window, spans that skip every other column), stride 2 with uneven pads, a
     * map narrower than the window (spans only), per-channel prelu and activations applied
     * after the sums (tanh, gelu) */
    {HQI_FAST_CONV,
     2,
     7,
     7,
     40,
     40,
     40,
     {5, 5, 1, 1, 1, 1, 2, 2, 2, 2},
     0,
     0,
     true,
     true,
     HQ_ACT_HARDSWISH},
    {HQI_FAST_CONV,
     1,
     9,
     10,
     24,
     24,
     24,
     {3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
     0,
     0,
     true,
     true,
     HQ_ACT_TANH},
    {HQI_FAST_CONV,
     1,
     11,
     13,
     33,
     33,
     33,
     {3, 3, 1, 1, 2, 2, 2, 2, 2, 2},
     0,
     0,
     false,
     false,
     HQ_ACT_PRELU},
    {HQI_FAST_CONV,
     1,
     8,
     15,
     20,
     20,
     20,
     {5, 5, 2, 2, 1, 1, 1, 2, 2, 1},
     0,
     0,
     true,
     true,
     HQ_ACT_GELU},
    {HQI_FAST_CONV,
     2,
     4,
     3,
     19,
     19,
     19,
     {5, 5, 1, 1, 1, 1, 2, 2, 2, 2},
     0,
     0,
     true,
     false,
     HQ_ACT_RELU},
    /* 1x1 convolutions whose last panel is partial, paired with a full one in one 32-column
     * tile (gemm_6x32_part): 24 and 120 outputs (an even number of panels), 40, 72 and 200 (odd:
     * the first panel goes alone), 21 (5 columns: the epilogue by act_row), K = 300 (two K
     * blocks: C loaded under the mask), a per-channel slope, and silu (its last 8 columns not in
     * the AVX-512 registers' form) */
    {HQI_FAST_CONV,
     1,
     9,
     7,
     144,
     24,
     1,
     {1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
     0,
     0,
     true,
     true,
     HQ_ACT_LINEAR},
    {HQI_FAST_CONV,
     2,
     5,
     7,
     40,
     72,
     1,
     {1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
     0,
     0,
     true,
     false,
     HQ_ACT_HARDSWISH},
    {HQI_FAST_CONV,
     1,
     7,
     9,
     300,
     40,
     1,
     {1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
     0,
     0,
     true,
     true,
     HQ_ACT_PRELU},
    {HQI_FAST_CONV,
     1,
     6,
     6,
     24,
     200,
     1,
     {1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
     0,
     0,
     false,
     false,
     HQ_ACT_RELU},
    {HQI_FAST_CONV,
     1,
     5,
     9,
     20,
     21,
     1,
     {1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
     0,
     0,
     true,
     true,
     HQ_ACT_TANH},
    {HQI_FAST_CONV,
     1,
     8,
     5,
     16,
     120,
     1,
     {1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
     0,
     0,
     true,
     false,
     HQ_ACT_RELU6},
    {HQI_FAST_CONV,
     1,
     6,
     7,
     24,
     40,
     1,
     {1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
     0,
     0,
     true,
     true,
     HQ_ACT_SILU},
    /* Winograd layers (3x3 stride 1, padded): F(4x4) with an odd panel left over after the
     * pairs (48 columns) and a channel count that ends in a short run, F(2x2) with 144 ->
     * 200 channels (13 panels) */
    {HQI_FAST_CONV,
     2,
     11,
     9,
     37,
     48,
     1,
     {3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
     0,
     0,
     true,
     true,
     HQ_ACT_RELU},
    {HQI_FAST_CONV,
     1,
     7,
     6,
     144,
     200,
     1,
     {3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
     0,
     0,
     true,
     false,
     HQ_ACT_LINEAR},
};

/* Every ISA the CPU runs (portable, AVX2, AVX-512) against the reference on random shapes and
 * mobile-network shapes; the AVX2 and AVX-512 results are the same bits (the same sums per
 * element, one FMA per product in the same order, the same epilogue operations) except where
 * AVX-512 computes sigmoid and silu its own way. */
static void every_isa_matches_the_reference_and_the_vector_isas_agree(void **state)
{
    (void)state;
    const hqi_fast_isa_t *isas[] = {&hqi_fast_isa_portable, hqi_fast_isa_avx2(),
                                    hqi_fast_isa_avx512()};
    const int n_cases = (int)(sizeof mobile_cases / sizeof mobile_cases[0]);
    float *avx2_out[sizeof mobile_cases / sizeof mobile_cases[0]] = {NULL};
    for (int i = 0; i < 3; i++) {
        if (!isas[i])
            continue;
        hqi_fast_isa_override(isas[i]);
        assert_string_equal(hqi_fast_isa_name(), isas[i]->name);
        run_conv_cases(50, 31);
        for (int c = 0; c < n_cases; c++) {
            char what[96];
            snprintf(what, sizeof what, "%s: mobile case %d", isas[i]->name, c);
            rng = 1000u + (uint32_t)c;
            int64_t count;
            float *got = conv_case_output(&mobile_cases[c], what, &count);
            if (i == 1) {
                avx2_out[c] = got;
                continue;
            }
            const hq_activation_t act = mobile_cases[c].act;
            if (i == 2 && avx2_out[c] && act != HQ_ACT_SIGMOID && act != HQ_ACT_SILU)
                for (int64_t e = 0; e < count; e++)
                    if (memcmp(&got[e], &avx2_out[c][e], sizeof(float)))
                        fail_msg("%s: element %lld: avx512 %.9g, avx2 %.9g", what, (long long)e,
                                 (double)got[e], (double)avx2_out[c][e]);
            free(got);
        }
    }
    for (int c = 0; c < n_cases; c++)
        free(avx2_out[c]);
    hqi_fast_isa_override(NULL);
}

/* dw_span_gives_the_bits_of_dw_pixel_and_act_row for one ISA. */
static void dw_span_matches(const hqi_fast_isa_t *isa)
{
    rng = 77;
    for (int a = 0; a < (int)(sizeof all_acts / sizeof all_acts[0]); a++) {
        for (int trial = 0; trial < 6; trial++) {
            const int64_t ch = pick(1, 40), in_w = pick(1, 9);
            const int kw = pick(1, 5), stride = pick(1, 2), dilation = pick(1, 2);
            const int rows = pick(1, 3), pad = pick(0, kw - 1);
            const int64_t span = (int64_t)dilation * (kw - 1) + 1;
            if (in_w + 2 * pad < span)
                continue;
            const int64_t out_w = (in_w + 2 * pad - span) / stride + 1;
            const int64_t row_step = in_w * ch;
            float *in = floats(rows * row_step), *w = floats(rows * kw * ch), *bias = floats(ch);
            float *slopes = floats(ch), *add = floats(out_w * ch);
            float *got = floats(out_w * ch), *want = floats(out_w * ch);
            fill(in, rows * row_step);
            fill(w, rows * kw * ch);
            fill(bias, ch);
            fill(slopes, ch);
            fill(add, out_w * ch);
            const hqi_ref_act_t act = make_act(all_acts[a], slopes, ch);
            const bool with_add = trial % 2;
            isa->dw_span(ch, 0, out_w, in, row_step, in_w, rows, kw, stride, dilation, pad, w, bias,
                         got, &act, with_add ? add : NULL);
            for (int64_t q = 0; q < out_w; q++) {
                const float *ins[15], *ws[15];
                int used = 0;
                for (int r = 0; r < rows; r++)
                    for (int kx = 0; kx < kw; kx++) {
                        const int64_t ix = q * stride - pad + (int64_t)kx * dilation;
                        if (ix < 0 || ix >= in_w)
                            continue;
                        ins[used] = in + r * row_step + ix * ch;
                        ws[used++] = w + ((int64_t)r * kw + kx) * ch;
                    }
                isa->dw_pixel(ch, used, ins, ws, bias, want + q * ch);
                isa->act_row(&act, want + q * ch, with_add ? add + q * ch : NULL, 0, ch);
            }
            for (int64_t e = 0; e < out_w * ch; e++)
                if (memcmp(&got[e], &want[e], sizeof(float)))
                    fail_msg("%s: act %d, %lld channels, in_w %lld, k %d s %d d %d pad %d: "
                             "element %lld: dw_span %.9g, dw_pixel + act_row %.9g",
                             isa->name, (int)all_acts[a], (long long)ch, (long long)in_w, kw, stride, dilation,
                             pad, (long long)e, (double)got[e], (double)want[e]);
            free(in);
            free(w);
            free(bias);
            free(slopes);
            free(add);
            free(got);
            free(want);
        }
    }
}

/* Each vector ISA's dw_span (AVX2, and AVX-512 where the CPU has it) gives, bit for bit, what
 * its dw_pixel gives on each pixel's taps inside the input followed by act_row (with the
 * addend): every activation, windows of 1 to 5 columns, strides and dilations 1 and 2, pads up
 * to the window, channel counts off the 8- and 16-lane grids. */
static void dw_span_gives_the_bits_of_dw_pixel_and_act_row(void **state)
{
    (void)state;
    const hqi_fast_isa_t *isas[] = {hqi_fast_isa_avx2(), hqi_fast_isa_avx512()};
    int checked = 0;
    for (int i = 0; i < 2; i++) {
        const hqi_fast_isa_t *isa = isas[i];
        if (!isa || !isa->dw_span)
            continue;
        checked++;
        dw_span_matches(isa);
    }
    if (!checked)
        skip();
}

/* dw_row_gives_the_bits_of_dw_pixel_and_act_row for one ISA. */
static void dw_row_matches(const hqi_fast_isa_t *isa)
{
    rng = 91;
    for (int a = 0; a < (int)(sizeof all_acts / sizeof all_acts[0]); a++) {
        /* sigmoid and silu in registers take a faster form than act_row's (a few ulp apart) */
        if (all_acts[a] == HQ_ACT_SIGMOID || all_acts[a] == HQ_ACT_SILU)
            continue;
        for (int trial = 0; trial < 12; trial++) {
            /* windows: 3x3 and 5x5 at strides 1 and 2 (whole or the border rows' 1 to 4
             * kernel rows), and dilation 2 (no runs of consecutive columns) */
            const int kw = trial % 2 ? 5 : 3, stride = pick(1, 2), dilation = trial % 5 == 4 ? 2 : 1;
            const int rows = trial % 3 == 2 ? pick(1, kw - 1) : kw;
            const int64_t ch = pick(1, 44), pixels = pick(1, 21);
            const int64_t in_w = (pixels - 1) * stride + (int64_t)(kw - 1) * dilation + 1;
            const int64_t row_step = in_w * ch, step = stride * ch;
            const int taps = rows * kw;
            int64_t offsets[25];
            for (int t = 0; t < taps; t++)
                offsets[t] = ((int64_t)(t / kw) * dilation * in_w + (t % kw) * dilation) * ch;
            float *in = floats(rows * dilation * row_step), *w = floats(taps * ch), *bias = floats(ch);
            float *slopes = floats(ch), *add = floats(pixels * ch);
            float *got = floats(pixels * ch), *want = floats(pixels * ch);
            fill(in, rows * dilation * row_step);
            fill(w, taps * ch);
            fill(bias, ch);
            fill(slopes, ch);
            fill(add, pixels * ch);
            const hqi_ref_act_t act = make_act(all_acts[a], slopes, ch);
            const bool with_add = trial % 4 < 2, with_bias = trial % 7 != 3;
            isa->dw_row(ch, pixels, in, step, offsets, taps, w, with_bias ? bias : NULL, got, &act,
                        with_add ? add : NULL);
            for (int64_t q = 0; q < pixels; q++) {
                const float *ins[25], *ws[25];
                for (int t = 0; t < taps; t++) {
                    ins[t] = in + q * step + offsets[t];
                    ws[t] = w + t * ch;
                }
                isa->dw_pixel(ch, taps, ins, ws, with_bias ? bias : NULL, want + q * ch);
                isa->act_row(&act, want + q * ch, with_add ? add + q * ch : NULL, 0, ch);
            }
            for (int64_t e = 0; e < pixels * ch; e++)
                if (memcmp(&got[e], &want[e], sizeof(float)))
                    fail_msg("%s: act %d, %lld channels, %lld pixels, k %d (%d rows) s %d d %d: "
                             "element %lld: dw_row %.9g, dw_pixel + act_row %.9g",
                             isa->name, (int)all_acts[a], (long long)ch, (long long)pixels, kw,
                             rows, stride, dilation, (long long)e, (double)got[e], (double)want[e]);
            free(in);
            free(w);
            free(bias);
            free(slopes);
            free(add);
            free(got);
            free(want);
        }
    }
}

/* Each ISA's depthwise rows (dw_row: groups of eight, four and single pixels, sliding runs of
 * 3 and 5 columns at strides 1 and 2, any other window, channel tails off the 8- and 16-lane
 * grids) give, bit for bit, what its dw_pixel gives on each pixel followed by act_row (with the
 * addend), for every activation but sigmoid and silu. */
static void dw_row_gives_the_bits_of_dw_pixel_and_act_row(void **state)
{
    (void)state;
    const hqi_fast_isa_t *isas[] = {&hqi_fast_isa_portable, hqi_fast_isa_avx2(),
                                    hqi_fast_isa_avx512()};
    for (int i = 0; i < 3; i++)
        if (isas[i])
            dw_row_matches(isas[i]);
}

/* The Winograd products of an ISA's gemm_runs are, bit for bit, what gemm_6x16 gives when
 * called once per run of kb (the first from zero, the others added to C), for two panels and
 * one, depths that end in a short run, and a run longer than the depth. */
static void gemm_runs_sums_as_gemm_6x16_does_run_by_run(void **state)
{
    (void)state;
    const hqi_fast_isa_t *isas[] = {hqi_fast_isa_avx2(), hqi_fast_isa_avx512()};
    static const int64_t shapes[][2] = {{16, 16}, {37, 16}, {128, 16}, {255, 16}, {9, 16}, {50, 7}};
    rng = 77u;
    for (int i = 0; i < 2; i++) {
        if (!isas[i] || !isas[i]->gemm_runs)
            continue;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            for (int two = 0; two < 2; two++) {
                const int64_t kc = shapes[s][0], kb = shapes[s][1];
                float *a = floats(HQI_FAST_MR * kc), *b = floats(2 * kc * HQI_FAST_NR);
                float got[HQI_FAST_MR][2 * HQI_FAST_NR], want[HQI_FAST_MR][2 * HQI_FAST_NR];
                fill(a, HQI_FAST_MR * kc);
                fill(b, 2 * kc * HQI_FAST_NR);
                memset(got, 0, sizeof got);
                memset(want, 0, sizeof want);
                const float *a6[HQI_FAST_MR];
                float *cg[HQI_FAST_MR];
                for (int r = 0; r < HQI_FAST_MR; r++) {
                    a6[r] = a + r * kc;
                    cg[r] = got[r];
                }
                const float *b2 = two ? b + kc * HQI_FAST_NR : NULL;
                isas[i]->gemm_runs(kc, kb, a6, b, b2, cg);
                static const float zeros[HQI_FAST_NR];
                for (int half = 0; half <= two; half++) {
                    float *cw[HQI_FAST_MR];
                    for (int r = 0; r < HQI_FAST_MR; r++)
                        cw[r] = want[r] + half * HQI_FAST_NR;
                    for (int64_t k0 = 0; k0 < kc; k0 += kb) {
                        const float *ak[HQI_FAST_MR];
                        for (int r = 0; r < HQI_FAST_MR; r++)
                            ak[r] = a6[r] + k0;
                        isas[i]->gemm_6x16(kc - k0 < kb ? kc - k0 : kb, ak,
                                           b + (half * kc + k0) * HQI_FAST_NR, cw,
                                           k0 ? NULL : zeros, NULL);
                    }
                }
                for (int r = 0; r < HQI_FAST_MR; r++)
                    for (int j = 0; j < (two ? 2 : 1) * HQI_FAST_NR; j++)
                        if (memcmp(&got[r][j], &want[r][j], sizeof(float)))
                            fail_msg("%s: gemm_runs kc %lld kb %lld %s: [%d][%d] %.9g, run by "
                                     "run %.9g",
                                     isas[i]->name, (long long)kc, (long long)kb,
                                     two ? "two panels" : "one panel", r, j, (double)got[r][j],
                                     (double)want[r][j]);
                free(a);
                free(b);
            }
        }
    }
}

/* An ISA's gemm_blocks gives, bit for bit, what gemm_6x32 gives when called once per K block
 * (the seed or C on the first, the epilogue after the last), with and without a seed, for
 * one block and several, short and long blocks, an activation in registers and one after the
 * store. */
static void gemm_blocks_sums_as_gemm_6x32_does_block_by_block(void **state)
{
    (void)state;
    const hqi_fast_isa_t *isas[] = {hqi_fast_isa_avx2(), hqi_fast_isa_avx512()};
    static const int shapes[][2] = {{7, 21}, {3, 9}, {1, 5}, {2, 128}};
    const hq_activation_t acts[] = {HQ_ACT_RELU, HQ_ACT_PRELU, HQ_ACT_SILU};
    enum { W = 2 * HQI_FAST_NR };
    rng = 91u;
    for (int i = 0; i < 2; i++) {
        if (!isas[i] || !isas[i]->gemm_blocks)
            continue;
        for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
            for (int seeded = 0; seeded < 2; seeded++) {
                const int nb = shapes[sh][0];
                const int64_t kc = shapes[sh][1], b_stride = 3 * kc * HQI_FAST_NR;
                float *a = floats(nb * HQI_FAST_MR * kc), *b = floats(nb * b_stride);
                float init[W], slopes[W], add[HQI_FAST_MR][W];
                float got[HQI_FAST_MR][W], want[HQI_FAST_MR][W];
                fill(a, nb * HQI_FAST_MR * kc);
                fill(b, nb * b_stride);
                fill(init, W);
                fill(slopes, W);
                fill(&add[0][0], HQI_FAST_MR * W);
                fill(&got[0][0], HQI_FAST_MR * W);
                memcpy(want, got, sizeof got);
                const hq_activation_t act_type = acts[(sh + (size_t)seeded) % 3];
                const hqi_ref_act_t act = make_act(act_type, slopes, W);
                hqi_fast_epi_t epi = {.act = &act, .channel0 = 0};
                const float *rows[8 * HQI_FAST_MR];
                float *cg[HQI_FAST_MR], *cw[HQI_FAST_MR];
                for (int r = 0; r < HQI_FAST_MR; r++) {
                    cg[r] = got[r];
                    cw[r] = want[r];
                    epi.add[r] = r % 2 ? add[r] : NULL;
                }
                for (int blk = 0; blk < nb; blk++)
                    for (int r = 0; r < HQI_FAST_MR; r++)
                        rows[blk * HQI_FAST_MR + r] = a + (blk * HQI_FAST_MR + r) * kc;
                const float *b2 = b + kc * HQI_FAST_NR;
                isas[i]->gemm_blocks(nb, kc, rows, HQI_FAST_MR, b, b2, b_stride, cg,
                                     seeded ? init : NULL, &epi);
                for (int blk = 0; blk < nb; blk++)
                    isas[i]->gemm_6x32(kc, rows + blk * HQI_FAST_MR, b + blk * b_stride,
                                       b2 + blk * b_stride, cw, blk == 0 && seeded ? init : NULL,
                                       blk == nb - 1 ? &epi : NULL);
                for (int r = 0; r < HQI_FAST_MR; r++)
                    for (int j = 0; j < W; j++)
                        if (memcmp(&got[r][j], &want[r][j], sizeof(float)))
                            fail_msg("%s: gemm_blocks %d x %lld %s: [%d][%d] %.9g, block by "
                                     "block %.9g",
                                     isas[i]->name, nb, (long long)kc, seeded ? "seeded" : "on C",
                                     r, j, (double)got[r][j], (double)want[r][j]);
                free(a);
                free(b);
            }
        }
    }
}

/* The AVX2 gemm_6x32 (two 6x16 tiles in one call) gives, bit for bit, what gemm_6x16 gives on
 * each panel: seeded or added to C, with the addend on some rows and the activations that the
 * epilogue applies in registers (relu, per-channel prelu, silu) or after the store (tanh). */
static void avx2_gemm_6x32_is_two_gemm_6x16_tiles(void **state)
{
    (void)state;
    const hqi_fast_isa_t *isa = hqi_fast_isa_avx2();
    if (!isa || !isa->gemm_6x32)
        skip();
    const hq_activation_t acts[] = {HQ_ACT_LINEAR, HQ_ACT_RELU, HQ_ACT_PRELU, HQ_ACT_SILU,
                                    HQ_ACT_TANH};
    enum { W = 2 * HQI_FAST_NR };
    rng = 57u;
    for (int trial = 0; trial < 20; trial++) {
        const int64_t kc = pick(1, 70);
        const bool seeded = trial % 2, with_epi = trial % 5 != 4;
        float *a = floats(HQI_FAST_MR * kc), *b = floats(kc * HQI_FAST_NR);
        float *b2 = floats(kc * HQI_FAST_NR);
        float init[W], slopes[W + 7], add[HQI_FAST_MR][W];
        float got[HQI_FAST_MR][W], want[HQI_FAST_MR][W];
        fill(a, HQI_FAST_MR * kc);
        fill(b, kc * HQI_FAST_NR);
        fill(b2, kc * HQI_FAST_NR);
        fill(init, W);
        fill(slopes, W + 7);
        fill(&add[0][0], HQI_FAST_MR * W);
        fill(&got[0][0], HQI_FAST_MR * W);
        memcpy(want, got, sizeof got);
        const hqi_ref_act_t act = make_act(acts[trial % 5], slopes, W + 7);
        const float *rows[HQI_FAST_MR];
        float *cg[HQI_FAST_MR], *cw[HQI_FAST_MR], *cw2[HQI_FAST_MR];
        hqi_fast_epi_t epi = {.act = &act, .channel0 = 7}, epi2 = epi;
        for (int r = 0; r < HQI_FAST_MR; r++) {
            rows[r] = a + r * kc;
            cg[r] = got[r];
            cw[r] = want[r];
            cw2[r] = want[r] + HQI_FAST_NR;
            epi.add[r] = r % 2 ? add[r] : NULL;
            epi2.add[r] = r % 2 ? add[r] + HQI_FAST_NR : NULL;
        }
        epi2.channel0 = epi.channel0 + HQI_FAST_NR;
        isa->gemm_6x32(kc, rows, b, b2, cg, seeded ? init : NULL, with_epi ? &epi : NULL);
        isa->gemm_6x16(kc, rows, b, cw, seeded ? init : NULL, with_epi ? &epi : NULL);
        isa->gemm_6x16(kc, rows, b2, cw2, seeded ? init + HQI_FAST_NR : NULL,
                       with_epi ? &epi2 : NULL);
        for (int r = 0; r < HQI_FAST_MR; r++)
            for (int j = 0; j < W; j++)
                if (memcmp(&got[r][j], &want[r][j], sizeof(float)))
                    fail_msg("gemm_6x32 k %lld act %d %s: [%d][%d] %.9g, two 6x16 tiles %.9g",
                             (long long)kc, (int)acts[trial % 5], seeded ? "seeded" : "on C", r,
                             j, (double)got[r][j], (double)want[r][j]);
        free(a);
        free(b);
        free(b2);
    }
}

/* HQ_EMULATE_ISA narrows the choice; without it the widest the CPU runs is chosen. */
static void the_environment_forces_a_narrower_isa(void **state)
{
    (void)state;
    const hqi_fast_isa_t *widest = hqi_fast_isa_avx512() ? hqi_fast_isa_avx512()
                                   : hqi_fast_isa_avx2() ? hqi_fast_isa_avx2()
                                                         : &hqi_fast_isa_portable;
    assert_int_equal(setenv("HQ_EMULATE_ISA", "portable", 1), 0);
    hqi_fast_isa_override(NULL);
    assert_string_equal(hqi_fast_isa_name(), "portable");
    assert_int_equal(setenv("HQ_EMULATE_ISA", "avx2", 1), 0);
    hqi_fast_isa_override(NULL);
    assert_string_equal(hqi_fast_isa_name(), hqi_fast_isa_avx2() ? "avx2+fma" : "portable");
    assert_int_equal(unsetenv("HQ_EMULATE_ISA"), 0);
    hqi_fast_isa_override(NULL);
    assert_string_equal(hqi_fast_isa_name(), widest->name);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv_matches_the_reference_on_random_shapes_and_threads),
        cmocka_unit_test(fused_epilogues_match_the_reference_for_every_activation),
        cmocka_unit_test(winograd_4x4_stays_within_the_header_bound_at_128_channels),
        cmocka_unit_test(deep_conv_stacks_stay_within_a_share_of_the_import_tolerance),
        cmocka_unit_test(conv_with_a_deep_kernel_crosses_k_blocks_and_matches),
        cmocka_unit_test(deconv_matches_the_reference_with_and_without_overlap),
        cmocka_unit_test(dense_matches_the_reference_for_small_and_odd_sizes),
        cmocka_unit_test(conv_refuses_shapes_it_was_not_prepared_for),
        cmocka_unit_test(deconv_refuses_an_output_of_a_convolutions_extent),
        cmocka_unit_test(pools_match_the_reference_including_ceil_extents_and_nan),
        cmocka_unit_test(global_avg_pool_of_a_large_map_stays_within_tolerance_on_every_isa),
        cmocka_unit_test(elementwise_matches_the_reference_for_every_op_and_broadcast),
        cmocka_unit_test(resize_matches_the_reference_for_every_mode),
        cmocka_unit_test(channel_shuffle_matches_the_reference_bit_for_bit_on_any_threads),
        cmocka_unit_test(activation_and_folded_batch_norm_match_the_reference),
        cmocka_unit_test(the_portable_code_matches_the_reference_too),
        cmocka_unit_test(every_isa_matches_the_reference_and_the_vector_isas_agree),
        cmocka_unit_test(gemm_runs_sums_as_gemm_6x16_does_run_by_run),
        cmocka_unit_test(dw_span_gives_the_bits_of_dw_pixel_and_act_row),
        cmocka_unit_test(dw_row_gives_the_bits_of_dw_pixel_and_act_row),
        cmocka_unit_test(gemm_blocks_sums_as_gemm_6x32_does_block_by_block),
        cmocka_unit_test(avx2_gemm_6x32_is_two_gemm_6x16_tiles),
        cmocka_unit_test(the_environment_forces_a_narrower_isa),
    };
    printf("fast kernels: %s\n", hqi_fast_isa_name());
    return cmocka_run_group_tests(tests, setup, teardown);
}
