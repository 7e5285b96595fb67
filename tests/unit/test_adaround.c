/* test_adaround.c — post_quantization_optimization(adaround): on one conv layer, learned rounding
 * reconstructs the float pre-activations better than round-to-nearest, every weight stays at the
 * floor of its (clipped) float value over the scale or one step above, and only kernel:0 changes;
 * the script keys are read, and out-of-range values refused with one line naming the script and
 * the key. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hq/emulate.h"
#include "quant/adaround.h"
#include "quant/optimize.h"
#include "quant/optimize_script.h"
#include "test_graphs.h"
#include "test_optimizer.h"

/* ---- one conv layer ---------------------------------------------------------------------- */

enum { H = 8, W = 8, CIN = 6, COUT = 8, K = 3, SAMPLES = 16 };

/* input (8x8x6) -> conv1 (3x3, pad 1, 6 -> 8, no activation) -> output, kernel values spread so
 * that 4-bit rounding has something to choose. */
static hq_graph_t *one_conv(hq_npz_t **params)
{
    const test_conv_t conv1 = {COUT, HQ_ACT_LINEAR, 91, 92, 0.0f};
    return test_conv_chain(H, W, CIN, K, 1, &conv1, params);
}

/* ---- the shared fixture ------------------------------------------------------------------ */

/* One network, its params and SAMPLES random inputs (x) as a dataset: what most tests train. */
typedef struct fixture {
    hq_graph_t *g;
    hq_npz_t *params;
    float *x;
    hq_dataset_t *ds;
} fixture_t;

static fixture_t *fixture_of(hq_graph_t *(*build)(hq_npz_t **))
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->g = build(&f->params);
    f->ds = test_trainer_dataset(f->g, SAMPLES, H, W, CIN, &f->x);
    return f;
}

static void fixture_free(fixture_t *f)
{
    free(f->x);
    hq_dataset_destroy(f->ds);
    hq_npz_destroy(f->params);
    hq_graph_destroy(f->g);
    free(f);
}

static int setup_one_conv(void **state)
{
    *state = fixture_of(one_conv);
    return 0;
}

/* Also clears every measurement knob a test sets, so that a test that fails half-way does not
 * pass its settings on to the next. */
static int teardown(void **state)
{
    static const char *const knobs[] = {
        "HQ_ADAROUND_TARGET",     "HQ_ADAROUND_CENTER",    "HQ_ADAROUND_QDROP",
        "HQ_ADAROUND_QDROP_MODE", "HQ_ADAROUND_SHUFFLE",   "HQ_ADAROUND_SEED",
        "HQ_ADAROUND_POSITIONS",  "HQ_ADAROUND_BIAS_STEP", "HQ_ADAROUND_MIN_ROWS"};
    for (size_t k = 0; k < sizeof knobs / sizeof knobs[0]; k++)
        unsetenv(knobs[k]);
    fixture_free(*state);
    return 0;
}

/* The scripts' common lines: 4-bit weights, no bias correction, no finetune, so that what
 * changes the integer params is AdaRound alone; and AdaRound with a short schedule. */
#define NO_BIAS_NO_FINETUNE                                                                        \
    "post_quantization_optimization(bias_correction, policy=disabled)\n"                           \
    "post_quantization_optimization(finetune, policy=disabled)\n"
#define W4_CONV1 "quantization_param(conv1, precision_mode=a8_w4)\n" NO_BIAS_NO_FINETUNE
#define W4_BOTH "quantization_param({conv1, conv2}, precision_mode=a8_w4)\n" NO_BIAS_NO_FINETUNE
#define ADAROUND(epochs)                                                                           \
    "post_quantization_optimization(adaround, policy=enabled, epochs=" #epochs ", batch_size=4)\n"

/* The n values of `layer`'s output on the SAMPLES inputs x, as the emulator computes them with
 * `params` at `target` (malloc'd). */
static float *layer_values(const hq_graph_t *g, const hq_npz_t *params, hq_target_t target,
                           const char *layer, const float *x, int64_t n)
{
    test_tap_t tap = {hq_graph_find(g, layer), malloc(sizeof(float) * (size_t)n), n};
    hq_emulator_t *emu = NULL;
    hq_error_t err = {0};
    if (hq_emulator_create(g, params, target, "test", &emu, &err))
        fail_msg("emulator: %s", err.message);
    const float *ins[1] = {x};
    if (hq_emulator_run(emu, SAMPLES, ins, NULL, test_keep_layer, &tap, &err))
        fail_msg("run: %s", err.message);
    hq_emulator_destroy(emu);
    return tap.x;
}

/* Sum over every sample, position and channel of the squared difference between conv1's
 * pre-activation with the integer kernel (times its scales) and with the float kernel, both on
 * the input as the quantized network sees it; the weights' integer codes go to codes. */
static double reconstruction_error(hq_archive_t *a, const float *x, int32_t *codes)
{
    hq_graph_t *g = NULL;
    hq_npz_t *q = NULL, *fpo = NULL;
    assert_int_equal(hq_archive_graph(a, &g, NULL), HQ_OK);
    assert_int_equal(hq_archive_params(a, HQ_PARAMS_QUANTIZED, &q, NULL), HQ_OK);
    assert_int_equal(hq_archive_params(a, HQ_PARAMS_FP_OPTIMIZED, &fpo, NULL), HQ_OK);
    const hq_tensor_t *kq = hq_npz_get(q, "net/conv1/kernel:0");
    const hq_tensor_t *ks = hq_npz_get(q, "net/conv1/kernel_scale:0");
    const hq_tensor_t *kf = hq_npz_get(fpo, "net/conv1/kernel:0");
    assert_non_null(kq);
    assert_int_equal(kq->dtype, HQ_DTYPE_INT8);
    const int8_t *wq = kq->data;
    const float *s = ks->data, *wf = kf->data;
    for (int i = 0; i < K * K * CIN * COUT; i++)
        codes[i] = wq[i];
    float *in = layer_values(g, q, HQ_TARGET_QUANTIZED, "input_layer1", x, SAMPLES * H * W * CIN);
    double total = 0;
    for (int n = 0; n < SAMPLES; n++)
        for (int oy = 0; oy < H; oy++)
            for (int ox = 0; ox < W; ox++)
                for (int o = 0; o < COUT; o++) {
                    double zq = 0, zf = 0;
                    for (int ky = 0; ky < K; ky++)
                        for (int kx = 0; kx < K; kx++) {
                            int iy = oy - 1 + ky, ix = ox - 1 + kx;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                                continue;
                            for (int i = 0; i < CIN; i++) {
                                double v = in[((n * H + iy) * W + ix) * CIN + i];
                                int widx = ((ky * K + kx) * CIN + i) * COUT + o;
                                zq += v * wq[widx] * s[o];
                                zf += v * wf[widx];
                            }
                        }
                    total += (zq - zf) * (zq - zf);
                }
    free(in);
    return total;
}

/* The same conv quantized to 4 bits twice, bias correction off: with AdaRound the error of the
 * pre-activations over every position (not only the sampled ones) falls well below nearest
 * rounding's; each AdaRound code is floor(w / s) or one above, at most one step from nearest;
 * some codes did move; nothing but kernel:0 differs. */
static void adaround_on_one_conv_beats_nearest_rounding_within_one_step(void **state)
{
    const fixture_t *f = *state;
    const char *text[2] = {W4_CONV1, W4_CONV1 ADAROUND(200)};
    hq_archive_t *a[2];
    double error[2];
    static int32_t codes[2][K * K * CIN * COUT];
    test_log_t log[2] = {{""}, {""}};
    for (int m = 0; m < 2; m++) {
        a[m] = test_archive_of(f->g, f->params);
        test_optimize(a[m], text[m], f->ds, 2, &log[m]);
        error[m] = reconstruction_error(a[m], f->x, codes[m]);
    }
    assert_non_null(strstr(log[0].text, "adaround: skipped (level 2 < 3)"));
    assert_non_null(strstr(log[1].text, "adaround: 1 layer(s) on 16 sample(s)"));
    if (!(error[1] < 0.8 * error[0]))
        fail_msg("error %g with adaround, %g with nearest rounding", error[1], error[0]);
    hq_npz_t *q = NULL, *q0 = NULL, *fpo = NULL;
    assert_int_equal(hq_archive_params(a[1], HQ_PARAMS_QUANTIZED, &q, NULL), HQ_OK);
    assert_int_equal(hq_archive_params(a[0], HQ_PARAMS_QUANTIZED, &q0, NULL), HQ_OK);
    assert_int_equal(hq_archive_params(a[1], HQ_PARAMS_FP_OPTIMIZED, &fpo, NULL), HQ_OK);
    const float *s = hq_npz_get(q, "net/conv1/kernel_scale:0")->data;
    const float *wf = hq_npz_get(fpo, "net/conv1/kernel:0")->data;
    int moved = 0;
    for (int i = 0; i < K * K * CIN * COUT; i++) {
        double lo = floor((double)wf[i] / s[i % COUT]);
        if (!(codes[1][i] == lo || codes[1][i] == lo + 1) || abs(codes[1][i] - codes[0][i]) > 1)
            fail_msg("weight %d: %g / %g gives code %d (nearest %d)", i, wf[i], s[i % COUT],
                     codes[1][i], codes[0][i]);
        assert_true(codes[1][i] >= -7 && codes[1][i] <= 7);
        moved += codes[1][i] != codes[0][i];
    }
    assert_true(moved > 0);
    for (size_t i = 0; i < hq_npz_count(q); i++) {
        const char *key = hq_npz_key(q, i);
        const hq_tensor_t *t1 = hq_npz_get_index(q, i), *t0 = hq_npz_get(q0, key);
        assert_non_null(t0);
        if (strstr(key, "conv1/kernel:0"))
            continue;
        assert_int_equal(t0->nbytes, t1->nbytes);
        if (memcmp(t0->data, t1->data, t1->nbytes))
            fail_msg("%s differs", key);
    }
    hq_archive_destroy(a[0]);
    hq_archive_destroy(a[1]);
}

/* ---- every weighted layer type ------------------------------------------------------------ */

/* input (8x8x6) -> one layer of `type` (4-bit weights, no activation) -> output. */
static hq_graph_t *one_layer(hq_layer_type_t type, hq_npz_t **params)
{
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int in = test_add_input(g, "input_layer1", H, W, CIN);
    int l = test_add_layer(g, "layer1", type, in);
    hq_layer_params_t *p = &hq_graph_layer_mut(g, l)->params;
    int64_t kshape[4] = {K, K, CIN, COUT};
    int kdims = 4;
    if (type == HQ_LAYER_DW) {
        test_set_conv(g, l, K, 1, CIN, 1, HQ_ACT_LINEAR);
        kshape[2] = 1;
        kshape[3] = CIN;
    } else if (type == HQ_LAYER_DECONV) {
        test_set_conv(g, l, K, CIN, COUT, 1, HQ_ACT_LINEAR);
        p->stride_h = p->stride_w = 2;
    } else {
        p->kernel_in = H * W * CIN;
        p->kernel_out = COUT;
        p->has_bias = true;
        kshape[0] = H * W * CIN;
        kshape[1] = COUT;
        kdims = 2;
    }
    test_add_layer(g, "output_layer1", HQ_LAYER_OUTPUT, l);
    test_finalize(g);
    assert_int_equal(hq_npz_create(params, NULL), HQ_OK);
    int64_t bshape[1] = {kshape[kdims - 1]};
    test_put_filled(*params, "net/layer1/kernel:0", kdims, kshape, 94);
    float *b = test_put_filled(*params, "net/layer1/bias:0", 1, bshape, 95);
    for (int c = 0; c < bshape[0]; c++)
        b[c] *= 0.1f;
    return g;
}

/* Sum of squared differences between the quantized and the fp-optimized outputs on x. */
static double output_error(hq_archive_t *a, const float *x)
{
    hq_graph_t *g = NULL;
    assert_int_equal(hq_archive_graph(a, &g, NULL), HQ_OK);
    int count = 0;
    const int *outs = hq_graph_outputs(g, &count);
    hq_shape_t shape = hq_layer_port_shape(hq_graph_layer(g, outs[0]), 0);
    int64_t n = SAMPLES;
    for (int d = 1; d < shape.ndim; d++)
        n *= shape.dims[d];
    float *y[2] = {malloc(sizeof(float) * (size_t)n), malloc(sizeof(float) * (size_t)n)};
    const hq_params_kind_t kinds[2] = {HQ_PARAMS_QUANTIZED, HQ_PARAMS_FP_OPTIMIZED};
    const hq_target_t targets[2] = {HQ_TARGET_QUANTIZED, HQ_TARGET_FP_OPTIMIZED};
    for (int k = 0; k < 2; k++) {
        hq_npz_t *params = NULL;
        assert_int_equal(hq_archive_params(a, kinds[k], &params, NULL), HQ_OK);
        hq_emulator_t *emu = NULL;
        hq_error_t err = {0};
        if (hq_emulator_create(g, params, targets[k], "test", &emu, &err))
            fail_msg("emulator: %s", err.message);
        const float *ins[1] = {x};
        float *outputs[1] = {y[k]};
        if (hq_emulator_run(emu, SAMPLES, ins, outputs, NULL, NULL, &err))
            fail_msg("run: %s", err.message);
        hq_emulator_destroy(emu);
    }
    double total = 0;
    for (int64_t i = 0; i < n; i++)
        total += ((double)y[0][i] - y[1][i]) * ((double)y[0][i] - y[1][i]);
    free(y[0]);
    free(y[1]);
    return total;
}

/* Depthwise, deconv (stride 2) and dense layers are trained too: the quantized network's output
 * comes closer to the float one than with round-to-nearest. */
static void depthwise_deconv_and_dense_layers_are_trained(void **state)
{
    (void)state;
    const hq_layer_type_t types[] = {HQ_LAYER_DW, HQ_LAYER_DECONV, HQ_LAYER_DENSE};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        hq_npz_t *params = NULL;
        hq_graph_t *g = one_layer(types[t], &params);
        float *x = NULL;
        hq_dataset_t *ds = test_trainer_dataset(g, SAMPLES, H, W, CIN, &x);
#define W4_LAYER1 "quantization_param(layer1, precision_mode=a8_w4)\n" NO_BIAS_NO_FINETUNE
        hq_archive_t *near = test_archive_of(g, params), *ada = test_archive_of(g, params);
        test_log_t log[2] = {{""}, {""}};
        test_optimize(near, W4_LAYER1, ds, 2, &log[0]);
        test_optimize(ada, W4_LAYER1 ADAROUND(200), ds, 2, &log[1]);
#undef W4_LAYER1
        if (!strstr(log[1].text, "adaround: 1 layer(s) on 16 sample(s)"))
            fail_msg("%s: %s", hq_layer_type_name(types[t]), log[1].text);
        double e_near = output_error(near, x), e_ada = output_error(ada, x);
        if (!(e_ada < 0.9 * e_near))
            fail_msg("%s: output error %g with adaround, %g with nearest rounding\n%s",
                     hq_layer_type_name(types[t]), e_ada, e_near, log[1].text);
        free(x);
        hq_archive_destroy(near);
        hq_archive_destroy(ada);
        hq_dataset_destroy(ds);
        hq_npz_destroy(params);
        hq_graph_destroy(g);
    }
}

/* mode=train_4bit (the default) leaves an 8-bit layer alone and says why. */
static void train_4bit_skips_layers_with_8bit_weights(void **state)
{
    const fixture_t *f = *state;
    hq_archive_t *a = test_archive_of(f->g, f->params);
    test_log_t log = {""};
    test_optimize(a, "post_quantization_optimization(adaround, policy=enabled)\n", f->ds, 2, &log);
    assert_non_null(strstr(log.text, "adaround: no layer to train (mode=train_4bit and no layer "
                                     "has 4-bit weights)"));
    hq_archive_destroy(a);
}

/* Without epochs= in the script the steps per layer stop at the default budget, and the log says
 * so; an explicit epochs= runs what it asks for. */
static void default_epochs_stop_at_the_step_budget(void **state)
{
    const fixture_t *f = *state;
    const char *text[2] = {W4_CONV1 "post_quantization_optimization(adaround, policy=enabled, "
                                    "batch_size=1)\n",
                           W4_CONV1 "post_quantization_optimization(adaround, policy=enabled, "
                                    "batch_size=1, epochs=170)\n"};
    const char *want[2] = {"adaround: 1 layer(s) on 16 sample(s), 2560 step(s) each",
                           "adaround: 1 layer(s) on 16 sample(s), 2720 step(s) each"};
    for (int m = 0; m < 2; m++) {
        hq_archive_t *a = test_archive_of(f->g, f->params);
        test_log_t log = {""};
        test_optimize(a, text[m], f->ds, 2, &log);
        if (!strstr(log.text, want[m]))
            fail_msg("no '%s' in\n%s", want[m], log.text);
        const char *budget = "adaround: 320 epoch(s) of 16 sample(s) would be 5120 step(s) per "
                             "layer; the default budget is 2560 (epochs= in the script lifts it)";
        assert_true((strstr(log.text, budget) != NULL) == (m == 0));
        hq_archive_destroy(a);
    }
}

/* ---- the float network's outputs as the target ------------------------------------------- */

/* input (8x8x6) -> conv1 (3x3, 6 -> 8, relu) -> conv2 (3x3, 8 -> 8, linear) -> output. */
static hq_graph_t *two_convs(hq_npz_t **params)
{
    const test_conv_t convs[2] = {{COUT, HQ_ACT_RELU, 96, 98, 0.2f},
                                  {COUT, HQ_ACT_LINEAR, 97, 99, 0.0f}};
    return test_conv_chain(H, W, CIN, K, 2, convs, params);
}

static int setup_two_convs(void **state)
{
    *state = fixture_of(two_convs);
    return 0;
}

/* conv2's pre-activations (no bias) on every sample and position: the integer kernel times its
 * scales on conv1's output as the quantized network computes it (zq), the float kernel on the
 * float network's (zf); [SAMPLES * H * W * COUT] each. */
static void conv2_preactivations(hq_archive_t *a, const float *x, double *zq, double *zf)
{
    hq_graph_t *g = NULL;
    hq_npz_t *q = NULL, *fpo = NULL;
    assert_int_equal(hq_archive_graph(a, &g, NULL), HQ_OK);
    assert_int_equal(hq_archive_params(a, HQ_PARAMS_QUANTIZED, &q, NULL), HQ_OK);
    assert_int_equal(hq_archive_params(a, HQ_PARAMS_FP_OPTIMIZED, &fpo, NULL), HQ_OK);
    const int8_t *wq = hq_npz_get(q, "net/conv2/kernel:0")->data;
    const float *s = hq_npz_get(q, "net/conv2/kernel_scale:0")->data;
    const float *wf = hq_npz_get(fpo, "net/conv2/kernel:0")->data;
    const hq_npz_t *params[2] = {q, fpo};
    const hq_target_t targets[2] = {HQ_TARGET_QUANTIZED, HQ_TARGET_FP_OPTIMIZED};
    double *out[2] = {zq, zf};
    for (int m = 0; m < 2; m++) {
        float *in = layer_values(g, params[m], targets[m], "conv1", x, SAMPLES * H * W * COUT);
        for (int n = 0; n < SAMPLES; n++)
            for (int oy = 0; oy < H; oy++)
                for (int ox = 0; ox < W; ox++)
                    for (int o = 0; o < COUT; o++) {
                        double z = 0;
                        for (int ky = 0; ky < K; ky++)
                            for (int kx = 0; kx < K; kx++) {
                                int iy = oy - 1 + ky, ix = ox - 1 + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                                    continue;
                                for (int i = 0; i < COUT; i++) {
                                    double v = in[((n * H + iy) * W + ix) * COUT + i];
                                    int widx = ((ky * K + kx) * COUT + i) * COUT + o;
                                    z += v * (m == 0 ? wq[widx] * (double)s[o] : wf[widx]);
                                }
                            }
                        out[m][((n * H + oy) * W + ox) * COUT + o] = z;
                    }
        free(in);
    }
}

/* Sum over channels of the squared error of zq against zf over every sample and position, about
 * its mean per channel when `centred` (what a bias correction leaves). */
static double chain_error(const double *zq, const double *zf, bool centred)
{
    const int rows = SAMPLES * H * W;
    double total = 0;
    for (int o = 0; o < COUT; o++) {
        double mean = 0;
        for (int r = 0; centred && r < rows; r++)
            mean += (zq[r * COUT + o] - zf[r * COUT + o]) / rows;
        for (int r = 0; r < rows; r++) {
            double e = zq[r * COUT + o] - zf[r * COUT + o] - mean;
            total += e * e;
        }
    }
    return total;
}

/* Both convs at 4 bits, bias correction off, every position sampled: trained against the float
 * network's outputs (HQ_ADAROUND_TARGET=float), conv2 compensates part of what conv1's rounding
 * and the activation's quantization changed, so its pre-activations end closer to the float
 * network's than when trained against the float kernel on the quantized input; with the error
 * centred (HQ_ADAROUND_CENTER=1) the error about the mean is what falls. */
static void float_target_brings_the_second_layer_closer_to_the_float_network(void **state)
{
    const fixture_t *f = *state;
    const size_t n = SAMPLES * H * W * COUT;
    double *zq = malloc(sizeof(double) * n), *zf = malloc(sizeof(double) * n);
    for (int centred = 0; centred < 2; centred++) {
        double error[2];
        for (int m = 0; m < 2; m++) {
            setenv("HQ_ADAROUND_TARGET", m ? "float" : "quantized", 1);
            setenv("HQ_ADAROUND_CENTER", centred ? "1" : "0", 1);
            hq_archive_t *a = test_archive_of(f->g, f->params);
            test_log_t log = {""};
            test_optimize(a, W4_BOTH ADAROUND(100), f->ds, 2, &log);
            assert_non_null(strstr(log.text, "adaround: 2 layer(s) on 16 sample(s)"));
            conv2_preactivations(a, f->x, zq, zf);
            error[m] = chain_error(zq, zf, centred);
            if (getenv("DBG"))
                fprintf(stderr, "c%d m%d %g\n%s", centred, m, error[m], log.text);
            hq_archive_destroy(a);
        }
        if (!(error[1] < 0.97 * error[0]))
            fail_msg("centred %d: conv2's error %g against the float network's outputs, %g "
                     "against the float kernel on the quantized input",
                     centred, error[1], error[0]);
    }
    unsetenv("HQ_ADAROUND_TARGET");
    unsetenv("HQ_ADAROUND_CENTER");
    free(zq);
    free(zf);
}

/* ---- QDrop ---------------------------------------------------------------------------------- */

/* The integer kernels of both convs of `a`, conv1's then conv2's. */
static void two_conv_codes(hq_archive_t *a, int8_t *codes)
{
    hq_npz_t *q = NULL;
    assert_int_equal(hq_archive_params(a, HQ_PARAMS_QUANTIZED, &q, NULL), HQ_OK);
    const hq_tensor_t *k1 = hq_npz_get(q, "net/conv1/kernel:0"),
                      *k2 = hq_npz_get(q, "net/conv2/kernel:0");
    assert_int_equal(k1->nbytes, K * K * CIN * COUT);
    assert_int_equal(k2->nbytes, K * K * COUT * COUT);
    memcpy(codes, k1->data, k1->nbytes);
    memcpy(codes + k1->nbytes, k2->data, k2->nbytes);
}

/* Optimizes a copy of the two convs of f with `text` on `threads` threads; conv2's chain error
 * (centred) to *error when not NULL, both kernels' codes to codes. */
static void run_two_convs(const fixture_t *f, const char *text, int threads, int8_t *codes,
                          double *error)
{
    hq_archive_t *a = test_archive_of(f->g, f->params);
    test_log_t log = {""};
    test_optimize(a, text, f->ds, threads, &log);
    two_conv_codes(a, codes);
    if (error) {
        const size_t n = SAMPLES * H * W * COUT;
        double *zq = malloc(sizeof(double) * n), *zf = malloc(sizeof(double) * n);
        conv2_preactivations(a, f->x, zq, zf);
        *error = chain_error(zq, zf, true);
        free(zq);
        free(zf);
    }
    hq_archive_destroy(a);
}

/* QDrop (HQ_ADAROUND_QDROP=p): with p = 1 every input the training reads is the float network's,
 * so conv2 learns other codes than from the quantized inputs alone (p = 0, the default); at
 * p = 0.5, per element and per sample, the draws do not depend on the thread count, and conv2
 * still ends closer to the float network than with round-to-nearest. */
static void qdrop_reads_the_float_inputs_and_does_not_depend_on_threads(void **state)
{
    const fixture_t *f = *state;
    const char *text = W4_BOTH ADAROUND(100);
    enum { CODES = K * K * CIN * COUT + K * K * COUT * COUT };
    static int8_t nearest[CODES], p0[CODES], p1[CODES], one[CODES], two[CODES];
    double e_nearest = 0, e_half = 0;
    run_two_convs(f, W4_BOTH, 2, nearest, &e_nearest);
    setenv("HQ_ADAROUND_QDROP", "0", 1);
    run_two_convs(f, text, 2, p0, NULL);
    const char *modes[2] = {"element", "sample"};
    for (int m = 0; m < 2; m++) {
        setenv("HQ_ADAROUND_QDROP_MODE", modes[m], 1);
        setenv("HQ_ADAROUND_QDROP", "1", 1);
        run_two_convs(f, text, 2, p1, NULL);
        int differ = 0;
        for (int i = K * K * CIN * COUT; i < CODES; i++)
            differ += p0[i] != p1[i];
        if (differ == 0)
            fail_msg("QDrop per %s: conv2 learned the same codes from the float inputs as from "
                     "the quantized ones",
                     modes[m]);
        setenv("HQ_ADAROUND_QDROP", "0.5", 1);
        run_two_convs(f, text, 1, one, NULL);
        run_two_convs(f, text, 2, two, &e_half);
        if (memcmp(one, two, CODES))
            fail_msg("QDrop per %s: the codes depend on the thread count", modes[m]);
        if (!(e_half < 0.9 * e_nearest))
            fail_msg("QDrop per %s: conv2's error %g, %g with round-to-nearest", modes[m], e_half,
                     e_nearest);
    }
    unsetenv("HQ_ADAROUND_QDROP");
    unsetenv("HQ_ADAROUND_QDROP_MODE");
}

/* ---- shuffled batches, another draw, the bias step --------------------------------------- */

/* HQ_ADAROUND_SHUFFLE=1 visits the samples in a new order every epoch: other codes than the fixed
 * batches, the same at 1 and 2 threads, and conv2 still ends closer to the float network than
 * with round-to-nearest. HQ_ADAROUND_SEED draws other positions (when fewer than every position
 * are drawn): other codes, again not depending on the thread count. */
static void shuffle_and_seed_change_the_codes_not_their_thread_independence(void **state)
{
    const fixture_t *f = *state;
    const char *text = W4_BOTH ADAROUND(100);
    enum { CODES = K * K * CIN * COUT + K * K * COUT * COUT };
    static int8_t nearest[CODES], fixed[CODES], one[CODES], two[CODES];
    double e_nearest = 0, e_shuffled = 0;
    run_two_convs(f, W4_BOTH, 2, nearest, &e_nearest);
    run_two_convs(f, text, 2, fixed, NULL);
    const char *knobs[2] = {"HQ_ADAROUND_SHUFFLE", "HQ_ADAROUND_SEED"};
    for (int m = 0; m < 2; m++) {
        if (m == 1)
            setenv("HQ_ADAROUND_POSITIONS", "16", 1); /* of 64: the draw matters */
        run_two_convs(f, text, 2, fixed, NULL);
        setenv(knobs[m], "1", 1);
        run_two_convs(f, text, 1, one, NULL);
        run_two_convs(f, text, 2, two, m == 0 ? &e_shuffled : NULL);
        unsetenv(knobs[m]);
        if (memcmp(one, two, CODES))
            fail_msg("%s=1: the codes depend on the thread count", knobs[m]);
        if (!memcmp(one, fixed, CODES))
            fail_msg("%s=1: the same codes as without", knobs[m]);
    }
    unsetenv("HQ_ADAROUND_POSITIONS");
    if (!(e_shuffled < 0.9 * e_nearest))
        fail_msg("shuffled: conv2's error %g, %g with round-to-nearest", e_shuffled, e_nearest);
}

/* HQ_ADAROUND_MIN_ROWS=16: conv1 has 54 weights per channel and conv2 72, both 1024 rows (16
 * samples of 64 positions): conv2, below 16 rows per weight, keeps round-to-nearest's codes and
 * the log says why, while conv1 learns exactly the codes it learns without the knob. */
static void min_rows_leaves_a_layer_with_too_few_rows_at_nearest(void **state)
{
    const fixture_t *f = *state;
    enum { CODES1 = K * K * CIN * COUT, CODES = CODES1 + K * K * COUT * COUT };
    static int8_t nearest[CODES], trained[CODES], skipped[CODES];
    run_two_convs(f, W4_BOTH, 2, nearest, NULL);
    run_two_convs(f, W4_BOTH ADAROUND(100), 2, trained, NULL);
    setenv("HQ_ADAROUND_MIN_ROWS", "16", 1);
    hq_archive_t *a = test_archive_of(f->g, f->params);
    test_log_t log = {""};
    test_optimize(a, W4_BOTH ADAROUND(100), f->ds, 2, &log);
    unsetenv("HQ_ADAROUND_MIN_ROWS");
    two_conv_codes(a, skipped);
    hq_archive_destroy(a);
    const char *want[] = {"adaround: conv2: 1024 row(s) for 72 weight(s) per channel, below "
                          "min_rows 16 per weight: left at round-to-nearest",
                          "adaround: 1 layer(s) on 16 sample(s)",
                          "adaround: 1 layer(s) left at round-to-nearest"};
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++)
        if (!strstr(log.text, want[w]))
            fail_msg("no '%s' in\n%s", want[w], log.text);
    assert_memory_equal(skipped, trained, CODES1);
    assert_memory_equal(skipped + CODES1, nearest + CODES1, CODES - CODES1);
    assert_memory_not_equal(trained + CODES1, nearest + CODES1, CODES - CODES1);
}

/* Per channel, the mean over every sample and position of conv2's output (the network's output:
 * linear) as the quantized network computes it minus the float network's; returns the sum of
 * their magnitudes. */
static double conv2_mean_error(hq_archive_t *a, const float *x)
{
    hq_graph_t *g = NULL;
    hq_npz_t *params[2] = {NULL, NULL};
    assert_int_equal(hq_archive_graph(a, &g, NULL), HQ_OK);
    assert_int_equal(hq_archive_params(a, HQ_PARAMS_QUANTIZED, &params[0], NULL), HQ_OK);
    assert_int_equal(hq_archive_params(a, HQ_PARAMS_FP_OPTIMIZED, &params[1], NULL), HQ_OK);
    const hq_target_t targets[2] = {HQ_TARGET_QUANTIZED, HQ_TARGET_FP_OPTIMIZED};
    const int64_t n = SAMPLES * H * W * COUT;
    double mean[2][COUT] = {{0}};
    for (int m = 0; m < 2; m++) {
        float *y = layer_values(g, params[m], targets[m], "conv2", x, n);
        for (int64_t e = 0; e < n; e++)
            mean[m][e % COUT] += y[e] / (double)(n / COUT);
        free(y);
    }
    double total = 0;
    for (int o = 0; o < COUT; o++)
        total += fabs(mean[0][o] - mean[1][o]);
    return total;
}

/* HQ_ADAROUND_BIAS_STEP=1 after the analytic bias correction (which does not measure the
 * quantized network, and after which no iterative pass runs): each trained layer's bias is set
 * from the float network's mean pre-activation on the sampled rows (every position here), so
 * conv2's output mean error against the float network falls well below what the analytic
 * correction and AdaRound's own bias update leave, which do not see what conv1 changed. */
static void bias_step_matches_the_float_networks_mean(void **state)
{
    const fixture_t *f = *state;
    const char *text = "quantization_param({conv1, conv2}, precision_mode=a8_w4)\n"
                       "post_quantization_optimization(bias_correction, policy=enabled, "
                       "mode=analytic)\n"
                       "post_quantization_optimization(finetune, policy=disabled)\n" ADAROUND(100);
    double error[2];
    for (int m = 0; m < 2; m++) {
        setenv("HQ_ADAROUND_BIAS_STEP", m ? "1" : "0", 1);
        hq_archive_t *a = test_archive_of(f->g, f->params);
        test_log_t log = {""};
        test_optimize(a, text, f->ds, 2, &log);
        assert_non_null(strstr(log.text, "adaround: 2 layer(s) on 16 sample(s)"));
        error[m] = conv2_mean_error(a, f->x);
        hq_archive_destroy(a);
    }
    unsetenv("HQ_ADAROUND_BIAS_STEP");
    if (getenv("DBG"))
        fprintf(stderr, "bias step %g, without %g\n", error[1], error[0]);
    if (!(error[1] < 0.5 * error[0]))
        fail_msg("conv2's mean error %g with the bias step, %g without", error[1], error[0]);
}

/* ---- the script's keys ------------------------------------------------------------------- */

static hq_status_t read_config(const char *text, hqi_optimize_config_t *cfg, test_log_t *log,
                               hq_error_t *err)
{
    return test_read_config(one_conv, text, cfg, log, err);
}

static void adaround_keys_are_read_and_bad_values_refused(void **state)
{
    (void)state;
    hqi_optimize_config_t cfg;
    test_log_t log = {""};
    hq_error_t err = {0};
    assert_int_equal(
        read_config("model_optimization_flavor(optimization_level=2)\n", &cfg, &log, &err), HQ_OK);
    assert_int_equal(cfg.policy[HQI_ALGORITHM_ADAROUND], -1);
    assert_int_equal(cfg.adaround.max_steps, 2560); /* the default budget per layer */
    assert_int_equal(read_config("post_quantization_optimization(adaround, policy=enabled, "
                                 "dataset_size=128, epochs=12, batch_size=16, "
                                 "learning_rate=0.005, warmup=0.3, b_range=[16, 3], "
                                 "mode=train_all, weight=0.02, decay_start=0.1)\n",
                                 &cfg, &log, &err),
                     HQ_OK);
    const hqi_adaround_config_t *a = &cfg.adaround;
    assert_int_equal(cfg.policy[HQI_ALGORITHM_ADAROUND], 1);
    assert_true(a->train_all);
    assert_int_equal(a->dataset_size, 128);
    assert_int_equal(a->epochs, 12);
    assert_int_equal(a->max_steps, 0); /* an explicit epochs= lifts the budget */
    assert_int_equal(a->batch_size, 16);
    assert_true(a->learning_rate == 0.005 && a->warmup == 0.3 && a->weight == 0.02);
    assert_true(a->beta_start == 16 && a->beta_end == 3);
    /* a Hailo key hq does not read is reported, not refused */
    assert_non_null(strstr(log.text, "post_quantization_optimization key 'decay_start': not "
                                     "applied"));
    assert_int_equal(read_config("post_quantization_optimization(adaround, policy=disabled)\n",
                                 &cfg, &log, &err),
                     HQ_OK);
    assert_int_equal(cfg.policy[HQI_ALGORITHM_ADAROUND], 0);
    static const test_bad_key_t bad[] = {
        {"policy=maybe", "policy must be enabled or disabled"},
        {"epochs=0", "epochs must be an integer from 1"},
        {"dataset_size=2.5", "dataset_size must be an integer"},
        {"batch_size=-1", "batch_size must be an integer from 1"},
        {"learning_rate=0", "learning_rate must be a number above 0"},
        {"warmup=1", "warmup must be a number from 0"},
        {"weight=-0.1", "weight must be a number from 0"},
        {"b_range=[2, 20]", "b_range must be [start, end]"},
        {"b_range=[20]", "b_range must be [start, end]"},
        {"mode=train_8bit", "mode must be train_4bit or train_all"},
    };
    test_bad_keys_refused(one_conv, "adaround", bad, sizeof bad / sizeof bad[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(adaround_on_one_conv_beats_nearest_rounding_within_one_step,
                                        setup_one_conv, teardown),
        cmocka_unit_test(depthwise_deconv_and_dense_layers_are_trained),
        cmocka_unit_test_setup_teardown(train_4bit_skips_layers_with_8bit_weights, setup_one_conv,
                                        teardown),
        cmocka_unit_test(adaround_keys_are_read_and_bad_values_refused),
        cmocka_unit_test_setup_teardown(default_epochs_stop_at_the_step_budget, setup_one_conv,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            float_target_brings_the_second_layer_closer_to_the_float_network, setup_two_convs,
            teardown),
        cmocka_unit_test_setup_teardown(qdrop_reads_the_float_inputs_and_does_not_depend_on_threads,
                                        setup_two_convs, teardown),
        cmocka_unit_test_setup_teardown(
            shuffle_and_seed_change_the_codes_not_their_thread_independence, setup_two_convs,
            teardown),
        cmocka_unit_test_setup_teardown(bias_step_matches_the_float_networks_mean, setup_two_convs,
                                        teardown),
        cmocka_unit_test_setup_teardown(min_rows_leaves_a_layer_with_too_few_rows_at_nearest,
                                        setup_two_convs, teardown),
    };
    return cmocka_run_group_tests(tests, test_tmp_create, test_tmp_remove);
}
