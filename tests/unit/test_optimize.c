/* test_optimize.c — the float half of `hq optimize` on small archives built with the graph API:
 * model-script modifications (normalization, bgr_to_rgb, change_output_activation), batch-norm
 * folding and equalization (the float function must not change), concat range sharing,
 * compression choice, script handling. The integer builder is needed only by the iterative bias
 * correction test (hqi_optimize_run with build_integer true); the others stop before it. */
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
#include "graph/hw_arch.h"
#include "quant/compression.h"
#include "quant/holdout.h"
#include "quant/optimize.h"
#include "quant/optimize_bias.h"
#include "quant/precision.h"
#include "quant/ranges.h"
#include "test_graphs.h"
#include "test_optimizer.h"

static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* ---- building graphs, params and data ------------------------------------------------------ */

/* Kernel and bias for a conv layer; channel c of the output scaled by scale[c] when given. */
static void conv_params(hq_npz_t *npz, const hq_graph_t *g, int index, uint32_t seed,
                        const float *scale)
{
    const hq_layer_t *l = hq_graph_layer(g, index);
    const hq_layer_params_t *p = &l->params;
    char key[256];
    snprintf(key, sizeof key, "%s/kernel:0", l->name);
    int64_t kshape[4] = {p->kernel_h, p->kernel_w, p->kernel_in, p->kernel_out};
    float *w = test_put_filled(npz, key, 4, kshape, seed);
    if (scale)
        for (int64_t i = 0; i < kshape[0] * kshape[1] * kshape[2]; i++)
            for (int c = 0; c < p->kernel_out; c++)
                w[i * p->kernel_out + c] *= scale[c];
    snprintf(key, sizeof key, "%s/bias:0", l->name);
    int64_t bshape[1] = {p->kernel_out};
    float *b = test_put_filled(npz, key, 1, bshape, seed + 1);
    for (int c = 0; c < p->kernel_out; c++)
        b[c] *= 0.1f * (scale ? scale[c] : 1.0f);
}

/* Writes n samples of [h, w, c] data in [lo, hi) to a .npy and opens it for graph g. The values
 * go to *values when it is not NULL (caller frees). */
static hq_dataset_t *dataset_of(const hq_graph_t *g, int64_t n, int h, int w, int c, float lo,
                                float hi, uint32_t seed, float **values)
{
    int64_t shape[4] = {n, h, w, c};
    hq_tensor_t *t = NULL;
    assert_int_equal(hq_tensor_create(HQ_DTYPE_FLOAT32, 4, shape, &t, NULL), HQ_OK);
    float *x = t->data;
    test_fill(x, hq_tensor_count(t), seed);
    for (int64_t i = 0; i < hq_tensor_count(t); i++)
        x[i] = lo + (x[i] + 1.0f) * 0.5f * (hi - lo);
    char file[32];
    snprintf(file, sizeof file, "data_%u.npy", seed);
    return test_dataset_of_tensor(g, t, file, values);
}

/* Runs the optimizer's float half; fails the test on error. */
static void run_ok(hq_archive_t *a, const char *script_text, hq_dataset_t *ds, test_log_t *log,
                   hqi_optimize_result_t *result)
{
    hq_script_t *s = test_script_of(script_text);
    hq_optimize_options_t options = {0};
    options.log = test_log_capture;
    options.log_user = log;
    options.script_name = "test.alls";
    hq_error_t err = {0};
    hq_status_t st = hqi_optimize_run(a, s, ds, &options, false, result, &err);
    hq_script_destroy(s);
    if (st != HQ_OK)
        fail_msg("optimize: %s", err.message);
}

static hq_status_t run_status(hq_archive_t *a, const char *script_text, hq_dataset_t *ds,
                              hq_error_t *err)
{
    hq_script_t *s = test_script_of(script_text);
    hq_status_t st = hqi_optimize_run(a, s, ds, NULL, false, NULL, err);
    hq_script_destroy(s);
    return st;
}

/* Output 0 of a graph + params on n samples of x (caller frees). */
static float *emulate(const hq_graph_t *g, const hq_npz_t *params, hq_target_t target,
                      const float *x, int64_t n, int64_t *size)
{
    hq_emulator_t *emu = NULL;
    hq_error_t err = {0};
    if (hq_emulator_create(g, params, target, "test", &emu, &err))
        fail_msg("emulator: %s", err.message);
    *size = hq_emulator_output_size(emu, 0);
    float *out = malloc(sizeof(float) * (size_t)(*size * n));
    const float *ins[1] = {x};
    float *outs[1] = {out};
    if (hq_emulator_run(emu, n, ins, outs, NULL, NULL, &err))
        fail_msg("run: %s", err.message);
    hq_emulator_destroy(emu);
    return out;
}

static void assert_close(const float *got, const float *want, int64_t n, double tol)
{
    for (int64_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - want[i]) <= tol * (1.0 + fabs(want[i]))))
            fail_msg("element %lld: got %.9g, want %.9g", (long long)i, (double)got[i],
                     (double)want[i]);
}

/* ---- equalization ------------------------------------------------------------------------- */

/* in -> conv1 (3x3, 8 channels) -> conv2 (3x3, 6 channels) -> out, both linear, weights drawn
 * from the two seeds. */
static hq_graph_t *two_convs_graph(hq_npz_t **params, uint32_t seed1, uint32_t seed2)
{
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int in = test_add_input(g, "input_layer1", 6, 6, 3);
    int c1 = test_add_layer(g, "conv1", HQ_LAYER_CONV, in);
    test_set_conv(g, c1, 3, 3, 8, 1, HQ_ACT_LINEAR);
    int c2 = test_add_layer(g, "conv2", HQ_LAYER_CONV, c1);
    test_set_conv(g, c2, 3, 8, 6, 1, HQ_ACT_LINEAR);
    test_add_layer(g, "output_layer1", HQ_LAYER_OUTPUT, c2);
    test_finalize(g);
    assert_int_equal(hq_npz_create(params, NULL), HQ_OK);
    conv_params(*params, g, c1, seed1, NULL);
    conv_params(*params, g, c2, seed2, NULL);
    return g;
}

/* in -> conv1 (relu) -> conv2 (relu) -> act(relu) -> dw3 -> out, conv1's channels unbalanced. */
static hq_graph_t *chain_graph(hq_npz_t **params)
{
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int in = test_add_input(g, "input_layer1", 6, 6, 3);
    int c1 = test_add_layer(g, "conv1", HQ_LAYER_CONV, in);
    test_set_conv(g, c1, 3, 3, 8, 1, HQ_ACT_RELU);
    int c2 = test_add_layer(g, "conv2", HQ_LAYER_CONV, c1);
    test_set_conv(g, c2, 1, 8, 6, 0, HQ_ACT_LINEAR);
    int act = test_add_layer(g, "act1", HQ_LAYER_ACTIVATION, c2);
    hq_graph_layer_mut(g, act)->params.activation = HQ_ACT_RELU;
    int dw = test_add_layer(g, "dw3", HQ_LAYER_DW, act);
    test_set_conv(g, dw, 3, 1, 6, 1, HQ_ACT_LINEAR);
    test_add_layer(g, "output_layer1", HQ_LAYER_OUTPUT, dw);
    test_finalize(g);
    assert_int_equal(hq_npz_create(params, NULL), HQ_OK);
    float s1[8] = {0.01f, 50.0f, 1.0f, 0.2f, 8.0f, 0.05f, 3.0f, 100.0f};
    float s2[6] = {20.0f, 0.02f, 1.0f, 5.0f, 0.3f, 40.0f};
    conv_params(*params, g, c1, 11, s1);
    conv_params(*params, g, c2, 21, s2);
    conv_params(*params, g, dw, 31, NULL);
    return g;
}

/* max over channels / min over channels of max |w| per output channel */
static double channel_spread(const hq_tensor_t *k)
{
    int64_t cout = k->shape[k->ndim - 1], rows = hq_tensor_count(k) / cout;
    const float *w = k->data;
    double lo = INFINITY, hi = 0;
    for (int64_t c = 0; c < cout; c++) {
        double m = 0;
        for (int64_t r = 0; r < rows; r++)
            m = fmax(m, fabs(w[r * cout + c]));
        lo = fmin(lo, m);
        hi = fmax(hi, m);
    }
    return hi / lo;
}

static void equalization_keeps_the_float_network_and_balances_channels(void **state)
{
    (void)state;
    hq_npz_t *params = NULL;
    hq_graph_t *g = chain_graph(&params);
    hq_archive_t *a = test_archive_of(g, params);
    float *x = NULL;
    hq_dataset_t *ds = dataset_of(g, 6, 6, 6, 3, -1.0f, 1.0f, 5, &x);
    test_log_t log = {""};
    hqi_optimize_result_t result;
    run_ok(a, "pre_quantization_optimization(equalization, policy=enabled)\n", ds, &log, &result);
    assert_int_equal(result.equalized_pairs, 2); /* conv1 -> conv2, conv2 -> act1 -> dw3 */
    hqi_optimize_result_free(&result);
    hq_graph_t *ng = NULL;
    hq_npz_t *fpo = NULL;
    assert_int_equal(hq_archive_graph(a, &ng, NULL), HQ_OK);
    assert_int_equal(hq_archive_params(a, HQ_PARAMS_FP_OPTIMIZED, &fpo, NULL), HQ_OK);
    int64_t size = 0;
    float *want = emulate(g, params, HQ_TARGET_NATIVE, x, 6, &size);
    float *got = emulate(ng, fpo, HQ_TARGET_FP_OPTIMIZED, x, 6, &size);
    assert_close(got, want, size * 6, 1e-4);
    const hq_tensor_t *k_before = hq_npz_get(params, "net/conv1/kernel:0");
    const hq_tensor_t *k_after = hq_npz_get(fpo, "net/conv1/kernel:0");
    assert_true(channel_spread(k_after) < channel_spread(k_before) / 10.0);
    free(want);
    free(got);
    hq_archive_destroy(a);

    /* disabled: fp_optimized kernels are the native ones */
    a = test_archive_of(g, params);
    run_ok(a,
           "pre_quantization_optimization(equalization, policy=disabled)\n"
           "model_optimization_flavor(optimization_level=0)\n",
           ds, &log, NULL);
    assert_int_equal(hq_archive_params(a, HQ_PARAMS_FP_OPTIMIZED, &fpo, NULL), HQ_OK);
    k_after = hq_npz_get(fpo, "net/conv1/kernel:0");
    assert_memory_equal(k_after->data, k_before->data, k_before->nbytes);
    hq_archive_destroy(a);
    hq_dataset_destroy(ds);
    free(x);
    hq_npz_destroy(params);
    hq_graph_destroy(g);
}

/* ---- batch-norm folding ------------------------------------------------------------------- */

static void a_standalone_batch_norm_is_folded_into_the_conv_before_it(void **state)
{
    (void)state;
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int in = test_add_input(g, "input_layer1", 5, 5, 3);
    int c1 = test_add_layer(g, "conv1", HQ_LAYER_CONV, in);
    test_set_conv(g, c1, 3, 3, 4, 1, HQ_ACT_LINEAR);
    int bn = test_add_layer(g, "bn1", HQ_LAYER_BATCH_NORM, c1);
    hq_graph_layer_mut(g, bn)->params.activation = HQ_ACT_RELU;
    test_add_layer(g, "output_layer1", HQ_LAYER_OUTPUT, bn);
    test_finalize(g);
    hq_npz_t *params = NULL;
    assert_int_equal(hq_npz_create(&params, NULL), HQ_OK);
    conv_params(params, g, c1, 3, NULL);
    int64_t c4[1] = {4};
    test_put_filled(params, "net/bn1/gamma:0", 1, c4, 7);
    test_put_filled(params, "net/bn1/beta:0", 1, c4, 8);
    test_put_filled(params, "net/bn1/moving_mean:0", 1, c4, 9);
    float *var = test_put_filled(params, "net/bn1/moving_variance:0", 1, c4, 10);
    for (int i = 0; i < 4; i++)
        var[i] = fabsf(var[i]) + 0.5f;
    hq_archive_t *a = test_archive_of(g, params);
    float *x = NULL;
    hq_dataset_t *ds = dataset_of(g, 4, 5, 5, 3, -2.0f, 2.0f, 9, &x);
    test_log_t log = {""};
    hqi_optimize_result_t result;
    run_ok(a, "", ds, &log, &result);
    assert_int_equal(result.folded_batch_norms, 1);
    hqi_optimize_result_free(&result);
    assert_non_null(strstr(log.text, "batch norm bn1 folded into conv1"));
    hq_graph_t *ng = NULL;
    hq_npz_t *fpo = NULL, *native = NULL;
    assert_int_equal(hq_archive_graph(a, &ng, NULL), HQ_OK);
    assert_int_equal(hq_graph_find(ng, "bn1"), -1);
    const hq_layer_t *conv = hq_graph_layer(ng, hq_graph_find(ng, "conv1"));
    assert_int_equal(conv->params.activation, HQ_ACT_RELU);
    assert_true(conv->params.batch_norm);
    assert_int_equal(hq_archive_params(a, HQ_PARAMS_FP_OPTIMIZED, &fpo, NULL), HQ_OK);
    assert_int_equal(hq_archive_params(a, HQ_PARAMS_NATIVE, &native, NULL), HQ_OK);
    int64_t size = 0;
    float *want = emulate(g, params, HQ_TARGET_NATIVE, x, 4, &size);
    float *got = emulate(ng, fpo, HQ_TARGET_FP_OPTIMIZED, x, 4, &size);
    float *got_native = emulate(ng, native, HQ_TARGET_NATIVE, x, 4, &size);
    assert_close(got, want, size * 4, 1e-4);
    assert_close(got_native, want, size * 4, 1e-4);
    free(want);
    free(got);
    free(got_native);
    free(x);
    hq_dataset_destroy(ds);
    hq_archive_destroy(a);
    hq_npz_destroy(params);
    hq_graph_destroy(g);
}

/* ---- model modifications ------------------------------------------------------------------ */

static hq_graph_t *single_conv_graph(hq_npz_t **params, hq_activation_t act)
{
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int in = test_add_input(g, "input_layer1", 4, 4, 3);
    int c1 = test_add_layer(g, "conv1", HQ_LAYER_CONV, in);
    test_set_conv(g, c1, 3, 3, 5, 1, act);
    test_add_layer(g, "output_layer1", HQ_LAYER_OUTPUT, c1);
    test_finalize(g);
    assert_int_equal(hq_npz_create(params, NULL), HQ_OK);
    conv_params(*params, g, c1, 41, NULL);
    return g;
}

static void normalization_inserts_a_layer_after_the_input(void **state)
{
    (void)state;
    hq_npz_t *params = NULL;
    hq_graph_t *g = single_conv_graph(&params, HQ_ACT_LINEAR);
    hq_archive_t *a = test_archive_of(g, params);
    float *x = NULL;
    hq_dataset_t *ds = dataset_of(g, 3, 4, 4, 3, 0.0f, 255.0f, 13, &x);
    test_log_t log = {""};
    run_ok(a, "norm1 = normalization([10.0, 20.0, 30.0], [2.0, 4.0, 8.0])\n", ds, &log, NULL);
    hq_graph_t *ng = NULL;
    assert_int_equal(hq_archive_graph(a, &ng, NULL), HQ_OK);
    int ni = hq_graph_find(ng, "norm1");
    assert_true(ni >= 0);
    const hq_layer_t *nl = hq_graph_layer(ng, ni);
    assert_int_equal(nl->type, HQ_LAYER_NORMALIZATION);
    assert_string_equal(hq_graph_layer(ng, nl->inputs[0])->bare_name, "input_layer1");
    const hq_layer_t *conv = hq_graph_layer(ng, hq_graph_find(ng, "conv1"));
    assert_int_equal(conv->inputs[0], ni);
    hq_npz_t *fpo = NULL;
    assert_int_equal(hq_archive_params(a, HQ_PARAMS_FP_OPTIMIZED, &fpo, NULL), HQ_OK);
    const hq_tensor_t *mean = hq_npz_get(fpo, "net/norm1/mean:0");
    assert_non_null(mean);
    assert_true(((const float *)mean->data)[2] == 30.0f);
    assert_non_null(hq_npz_get(fpo, "net/norm1/std:0"));
    assert_non_null(strstr(log.text, "norm1 inserted after input_layer1"));
    /* new network on x == old network on (x - mean) / std */
    float *xn = malloc(sizeof(float) * 3 * 4 * 4 * 3);
    const float m[3] = {10, 20, 30}, s[3] = {2, 4, 8};
    for (int i = 0; i < 3 * 4 * 4 * 3; i++)
        xn[i] = (x[i] - m[i % 3]) / s[i % 3];
    int64_t size = 0;
    float *want = emulate(g, params, HQ_TARGET_NATIVE, xn, 3, &size);
    float *got = emulate(ng, fpo, HQ_TARGET_FP_OPTIMIZED, x, 3, &size);
    assert_close(got, want, size * 3, 1e-4);
    free(want);
    free(got);
    free(xn);
    free(x);
    hq_dataset_destroy(ds);
    hq_archive_destroy(a);
    /* the wrong number of channels is refused naming the line */
    a = test_archive_of(g, params);
    ds = dataset_of(g, 2, 4, 4, 3, 0.0f, 1.0f, 14, NULL);
    hq_error_t err = {0};
    assert_int_equal(run_status(a, "\nnormalization([1.0, 2.0], [1.0, 1.0])\n", ds, &err),
                     HQ_ERR_INVALID);
    assert_non_null(strstr(err.message, "test.alls:2: normalization"));
    hq_dataset_destroy(ds);
    hq_archive_destroy(a);
    hq_npz_destroy(params);
    hq_graph_destroy(g);
}

static void bgr_to_rgb_is_folded_into_the_first_conv(void **state)
{
    (void)state;
    hq_npz_t *params = NULL;
    hq_graph_t *g = single_conv_graph(&params, HQ_ACT_RELU);
    hq_archive_t *a = test_archive_of(g, params);
    float *x = NULL;
    hq_dataset_t *ds = dataset_of(g, 2, 4, 4, 3, 0.0f, 1.0f, 17, &x);
    test_log_t log = {""};
    run_ok(a,
           "normalization([0.1, 0.2, 0.3], [1.0, 2.0, 4.0])\n"
           "input_conversion(bgr_to_rgb)\n",
           ds, &log, NULL);
    assert_non_null(strstr(log.text, "folded into conv1"));
    hq_graph_t *ng = NULL;
    hq_npz_t *fpo = NULL, *native = NULL;
    assert_int_equal(hq_archive_graph(a, &ng, NULL), HQ_OK);
    assert_int_equal(hq_archive_params(a, HQ_PARAMS_FP_OPTIMIZED, &fpo, NULL), HQ_OK);
    assert_int_equal(hq_archive_params(a, HQ_PARAMS_NATIVE, &native, NULL), HQ_OK);
    /* the new network on BGR x == the old one on normalized RGB */
    float *rgb = malloc(sizeof(float) * 2 * 4 * 4 * 3);
    const float m[3] = {0.1f, 0.2f, 0.3f}, s[3] = {1, 2, 4};
    for (int p = 0; p < 2 * 4 * 4; p++)
        for (int c = 0; c < 3; c++)
            rgb[p * 3 + c] = (x[p * 3 + 2 - c] - m[c]) / s[c];
    int64_t size = 0;
    float *want = emulate(g, params, HQ_TARGET_NATIVE, rgb, 2, &size);
    float *got = emulate(ng, fpo, HQ_TARGET_FP_OPTIMIZED, x, 2, &size);
    float *got_native = emulate(ng, native, HQ_TARGET_NATIVE, x, 2, &size);
    assert_close(got, want, size * 2, 1e-4);
    assert_close(got_native, want, size * 2, 1e-4);
    free(want);
    free(got);
    free(got_native);
    free(rgb);
    free(x);
    hq_dataset_destroy(ds);
    hq_archive_destroy(a);
    hq_npz_destroy(params);
    hq_graph_destroy(g);
}

static void change_output_activation_sets_the_layer_activation(void **state)
{
    (void)state;
    hq_npz_t *params = NULL;
    hq_graph_t *g = single_conv_graph(&params, HQ_ACT_LINEAR);
    hq_archive_t *a = test_archive_of(g, params);
    hq_dataset_t *ds = dataset_of(g, 2, 4, 4, 3, 0.0f, 1.0f, 19, NULL);
    test_log_t log = {""};
    run_ok(a, "change_output_activation(conv1, sigmoid)\n", ds, &log, NULL);
    hq_graph_t *ng = NULL;
    assert_int_equal(hq_archive_graph(a, &ng, NULL), HQ_OK);
    assert_int_equal(hq_graph_layer(ng, hq_graph_find(ng, "conv1"))->params.activation,
                     HQ_ACT_SIGMOID);
    hq_archive_destroy(a);
    a = test_archive_of(g, params);
    hq_error_t err = {0};
    assert_int_equal(run_status(a, "change_output_activation(output_layer1, relu)\n", ds, &err),
                     HQ_ERR_INVALID);
    assert_non_null(strstr(err.message, "has no activation"));
    hq_archive_destroy(a);
    hq_dataset_destroy(ds);
    hq_npz_destroy(params);
    hq_graph_destroy(g);
}

/* ---- ranges ------------------------------------------------------------------------------- */

/* in -> (conv_a small, conv_b large) -> concat|ew_add -> out */
static hq_graph_t *two_branch_graph(hq_layer_type_t join, hq_npz_t **params)
{
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int in = test_add_input(g, "input_layer1", 4, 4, 2);
    int ca = test_add_layer(g, "conv_a", HQ_LAYER_CONV, in);
    test_set_conv(g, ca, 1, 2, 3, 0, HQ_ACT_LINEAR);
    int cb = test_add_layer(g, "conv_b", HQ_LAYER_CONV, in);
    test_set_conv(g, cb, 1, 2, 3, 0, HQ_ACT_LINEAR);
    int j = test_add_layer(g, "join", join, ca);
    hq_error_t err = {0};
    assert_int_equal(hq_graph_connect(g, cb, 0, j, &err), HQ_OK);
    test_add_layer(g, "output_layer1", HQ_LAYER_OUTPUT, j);
    test_finalize(g);
    assert_int_equal(hq_npz_create(params, NULL), HQ_OK);
    float small[3] = {0.1f, 0.1f, 0.1f}, large[3] = {10.0f, 10.0f, 10.0f};
    conv_params(*params, g, ca, 51, small);
    conv_params(*params, g, cb, 52, large);
    return g;
}

static void concat_inputs_share_one_range_and_add_inputs_do_not(void **state)
{
    (void)state;
    hq_npz_t *params = NULL;
    hq_graph_t *g = two_branch_graph(HQ_LAYER_CONCAT, &params);
    hq_archive_t *a = test_archive_of(g, params);
    hq_dataset_t *ds = dataset_of(g, 4, 4, 4, 2, -1.0f, 1.0f, 23, NULL);
    test_log_t log = {""};
    hqi_optimize_result_t r;
    run_ok(a, "", ds, &log, &r);
    int ia = hq_graph_find(g, "conv_a"), ib = hq_graph_find(g, "conv_b"),
        ij = hq_graph_find(g, "join");
    const hqi_stats_t *sa = &r.calibration->layers[ia], *sb = &r.calibration->layers[ib];
    assert_true(sb->max > 10 * sa->max); /* really different observed ranges */
    assert_true(r.decisions[ia].out_min == r.decisions[ib].out_min);
    assert_true(r.decisions[ia].out_max == r.decisions[ib].out_max);
    assert_true(r.decisions[ij].out_max == r.decisions[ib].out_max);
    assert_true(r.decisions[ia].out_min <= (float)fmin(sb->min, sa->min));
    assert_true(r.decisions[ia].out_max >= (float)fmax(sb->max, sa->max));
    assert_non_null(strstr(log.text, "join: the inputs of the concat share one range"));
    hqi_optimize_result_free(&r);
    hq_archive_destroy(a);
    hq_dataset_destroy(ds);
    hq_npz_destroy(params);
    hq_graph_destroy(g);

    g = two_branch_graph(HQ_LAYER_EW_ADD, &params);
    a = test_archive_of(g, params);
    ds = dataset_of(g, 4, 4, 4, 2, -1.0f, 1.0f, 23, NULL);
    run_ok(a, "", ds, &log, &r);
    assert_true(r.decisions[ia].out_max < r.decisions[ib].out_max / 10);
    hqi_optimize_result_free(&r);
    hq_archive_destroy(a);
    hq_dataset_destroy(ds);
    hq_npz_destroy(params);
    hq_graph_destroy(g);
}

static void forced_and_clipped_ranges_replace_the_observed_ones_and_contain_zero(void **state)
{
    (void)state;
    hq_npz_t *params = NULL;
    hq_graph_t *g = two_branch_graph(HQ_LAYER_EW_ADD, &params);
    hq_archive_t *a = test_archive_of(g, params);
    hq_dataset_t *ds = dataset_of(g, 8, 4, 4, 2, -1.0f, 1.0f, 29, NULL);
    test_log_t log = {""};
    hqi_optimize_result_t r;
    run_ok(a,
           "quantization_param(conv_a, force_range_out=[0.5, 3.0])\n"
           "pre_quantization_optimization(activation_clipping, layers=[conv_b], mode=manual, "
           "clipping_values=[-2.0, 2.5])\n"
           "pre_quantization_optimization(activation_clipping, layers={join}, mode=percentile, "
           "clipping_values=[1.0, 99.0])\n",
           ds, &log, &r);
    int ia = hq_graph_find(g, "conv_a"), ib = hq_graph_find(g, "conv_b"),
        ij = hq_graph_find(g, "join");
    assert_true(r.decisions[ia].out_min == 0.0f); /* widened to contain 0 */
    assert_true(r.decisions[ia].out_max == 3.0f);
    assert_true(r.decisions[ib].out_min == -2.0f);
    assert_true(r.decisions[ib].out_max == 2.5f);
    const hqi_stats_t *sj = &r.calibration->layers[ij];
    assert_true(r.decisions[ij].out_max < sj->max);
    assert_true(r.decisions[ij].out_min > sj->min);
    assert_true(r.decisions[ij].out_max > 0.5 * sj->max);
    assert_non_null(strstr(log.text, "force_range_out [0.5, 3] widened to contain 0"));
    hqi_optimize_result_free(&r);
    hq_archive_destroy(a);
    hq_dataset_destroy(ds);
    hq_npz_destroy(params);
    hq_graph_destroy(g);
}

static void lookup_table_pre_ranges_skip_inputs_whose_output_saturates(void **state)
{
    (void)state;
    double lo, hi;
    /* hardswish is 0 below -3: exact cut */
    hqi_lut_pre_range(HQ_ACT_HARDSWISH, 0, 0, -68.0, 40.0, -0.375, 40.0, 8, &lo, &hi);
    assert_true(lo == -3.0);
    assert_true(hi > 39.0 && hi <= 40.0);
    /* sigmoid with an 8-bit [0, 1] output: beyond |x| ~ 6.9 every input gives an end code */
    hqi_lut_pre_range(HQ_ACT_SIGMOID, 0, 0, -148.0, 100.0, 0.0, 1.0, 8, &lo, &hi);
    double q = 1.0 / 255.0;
    assert_true(fabs(1.0 / (1.0 + exp(-lo)) - q / 4) < 1e-9);
    assert_true(fabs(1.0 / (1.0 + exp(-hi)) - (1 - q / 4)) < 1e-9);
    /* 16-bit output keeps more of the tail */
    double lo16, hi16;
    hqi_lut_pre_range(HQ_ACT_SIGMOID, 0, 0, -148.0, 100.0, 0.0, 1.0, 16, &lo16, &hi16);
    assert_true(lo16 < lo - 4.0);
    /* an observed range inside the useful one is kept */
    hqi_lut_pre_range(HQ_ACT_SIGMOID, 0, 0, -2.0, 1.5, 0.0, 1.0, 8, &lo, &hi);
    assert_true(lo == -2.0 && hi == 1.5);
    /* silu: far-left inputs are within a quarter step of 0; the minimum stays in range */
    hqi_lut_pre_range(HQ_ACT_SILU, 0, 0, -50.0, 10.0, -0.28, 10.0, 8, &lo, &hi);
    assert_true(lo > -50.0 && lo < -1.2785);
    double q_silu = 10.28 / 255.0;
    assert_true(fabs(lo / (1.0 + exp(-lo))) <= q_silu / 4 + 1e-9);
    /* gelu: the same, its minimum -0.17 at -0.7518 */
    hqi_lut_pre_range(HQ_ACT_GELU, 0, 0, -50.0, 10.0, -0.17, 10.0, 8, &lo, &hi);
    assert_true(lo > -50.0 && lo < -0.7518);
    double q_gelu = 10.17 / 255.0;
    assert_true(fabs(0.5 * lo * (1.0 + erf(lo / sqrt(2.0)))) <= q_gelu / 4 + 1e-9);
    assert_true(0.5 * (lo + 0.01) * (1.0 + erf((lo + 0.01) / sqrt(2.0))) < -q_gelu / 4);
    /* no saturation on the right of hardswish, nor above -3 on the left */
    hqi_lut_pre_range(HQ_ACT_HARDSWISH, 0, 0, -2.0, 5.0, -0.375, 5.0, 8, &lo, &hi);
    assert_true(lo == -2.0);
}

/* ---- compression -------------------------------------------------------------------------- */

/* in -> conv1 (3x3, 4->64) -> conv2 (3x3, 64->32) -> conv3 (1x1, 32->16) -> conv4 (1x1 16->8) */
static hq_graph_t *sized_graph(hq_npz_t **params)
{
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int in = test_add_input(g, "input_layer1", 4, 4, 4);
    int c1 = test_add_layer(g, "conv1", HQ_LAYER_CONV, in);
    test_set_conv(g, c1, 3, 4, 64, 1, HQ_ACT_RELU);
    int c2 = test_add_layer(g, "conv2", HQ_LAYER_CONV, c1);
    test_set_conv(g, c2, 3, 64, 32, 1, HQ_ACT_RELU);
    int c3 = test_add_layer(g, "conv3", HQ_LAYER_CONV, c2);
    test_set_conv(g, c3, 1, 32, 16, 0, HQ_ACT_RELU);
    int c4 = test_add_layer(g, "conv4", HQ_LAYER_CONV, c3);
    test_set_conv(g, c4, 1, 16, 8, 0, HQ_ACT_LINEAR);
    test_add_layer(g, "output_layer1", HQ_LAYER_OUTPUT, c4);
    test_finalize(g);
    if (params) {
        assert_int_equal(hq_npz_create(params, NULL), HQ_OK);
        for (int i = c1; i <= c4; i++)
            conv_params(*params, g, i, 60 + (uint32_t)i, NULL);
    }
    return g;
}

/* sizes: conv1 2304, conv2 18432, conv3 512, conv4 128; total 21376 */
static void compression_levels_take_the_largest_layers_first(void **state)
{
    (void)state;
    hq_graph_t *g = sized_graph(NULL);
    int n = hq_graph_layer_count(g);
    hqi_precision_request_t req[8] = {0};
    hqi_layer_quant_t dec[8] = {0};
    hqi_compression_result_t res;
    test_log_t log = {""};
    hqi_logger_t logger = {test_log_capture, &log};
    int c1 = hq_graph_find(g, "conv1"), c2 = hq_graph_find(g, "conv2"),
        c3 = hq_graph_find(g, "conv3"), c4 = hq_graph_find(g, "conv4");
    /* level 0: nothing */
    assert_int_equal(hqi_precision_propagate(g, req, dec, NULL, NULL), HQ_OK);
    assert_int_equal(hqi_compression_choose(g, NULL, 0, -1, 1 << 30, dec, &res, &logger, NULL),
                     HQ_OK);
    assert_int_equal(res.layers_4bit, 0);
    assert_int_equal(res.level, 0);
    /* level 5: everything */
    assert_int_equal(hqi_compression_choose(g, NULL, 5, -1, 1 << 30, dec, &res, &logger, NULL),
                     HQ_OK);
    assert_int_equal(res.layers_4bit, 4);
    assert_true(fabs(res.ratio_4bit - 1.0) < 1e-12);
    /* level 1 (20%): conv2 (86%) does not fit, conv1 (10.8%) does, conv3 (2.4%) too, conv4 too */
    assert_int_equal(hqi_precision_propagate(g, req, dec, NULL, NULL), HQ_OK);
    assert_int_equal(hqi_compression_choose(g, NULL, 1, -1, 1 << 30, dec, &res, &logger, NULL),
                     HQ_OK);
    assert_int_equal(dec[c2].weight_bits, 8);
    assert_int_equal(dec[c1].weight_bits, 4);
    assert_int_equal(dec[c3].weight_bits, 4);
    assert_int_equal(dec[c4].weight_bits, 4);
    assert_true(fabs(res.ratio_4bit - (2304.0 + 512 + 128) / 21376.0) < 1e-9);
    assert_int_equal(res.level, 1);
    /* explicit ratio 0.9: conv2 first, then conv1 would overshoot, conv3 fits */
    assert_int_equal(hqi_precision_propagate(g, req, dec, NULL, NULL), HQ_OK);
    assert_int_equal(hqi_compression_choose(g, NULL, 3, 0.9, 1 << 30, dec, &res, &logger, NULL),
                     HQ_OK);
    assert_int_equal(dec[c2].weight_bits, 4);
    assert_int_equal(dec[c1].weight_bits, 8);
    assert_int_equal(dec[c3].weight_bits, 4);
    assert_int_equal(res.level, -2);
    /* a locked layer is never compressed */
    bool locked[8] = {false};
    locked[c2] = true;
    assert_int_equal(hqi_precision_propagate(g, req, dec, NULL, NULL), HQ_OK);
    assert_int_equal(hqi_compression_choose(g, locked, 5, -1, 1 << 30, dec, &res, &logger, NULL),
                     HQ_OK);
    assert_int_equal(dec[c2].weight_bits, 8);
    assert_int_equal(dec[c1].weight_bits, 4);
    (void)n;
    hq_graph_destroy(g);
}

static void weights_beyond_the_arch_memory_are_compressed_implicitly(void **state)
{
    (void)state;
    hq_graph_t *g = sized_graph(NULL);
    hqi_precision_request_t req[8] = {0};
    hqi_layer_quant_t dec[8] = {0};
    hqi_compression_result_t res;
    test_log_t log = {""};
    hqi_logger_t logger = {test_log_capture, &log};
    int c1 = hq_graph_find(g, "conv1"), c2 = hq_graph_find(g, "conv2");
    /* fits: no compression */
    assert_int_equal(hqi_precision_propagate(g, req, dec, NULL, NULL), HQ_OK);
    assert_int_equal(hqi_compression_choose(g, NULL, -1, -1, 21376, dec, &res, &logger, NULL),
                     HQ_OK);
    assert_int_equal(res.layers_4bit, 0);
    assert_int_equal(res.level, 0);
    assert_string_equal(log.text, "");
    /* 21376 bytes in 20000: saving 1376 bytes needs conv2 (saves 9216) */
    assert_int_equal(hqi_compression_choose(g, NULL, -1, -1, 20000, dec, &res, &logger, NULL),
                     HQ_OK);
    assert_int_equal(res.level, -1);
    assert_int_equal(dec[c2].weight_bits, 4);
    assert_int_equal(dec[c1].weight_bits, 8);
    assert_int_equal(res.weight_bytes, 21376 - 9216);
    assert_non_null(strstr(log.text, "implicit compression"));
    /* the per-arch table knows hailo8 and refuses names it does not know */
    const hq_cost_model_t *arch = NULL;
    hq_error_t err = {0};
    assert_int_equal(hqi_hw_arch_find("hailo8", &arch, NULL), HQ_OK);
    assert_true(arch->weight_memory_bytes > 0);
    assert_int_equal(hqi_hw_arch_find("hailo99", &arch, &err), HQ_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "hailo8l"));
    hq_graph_destroy(g);
}

static void compression_level_from_the_script_lands_in_the_archive(void **state)
{
    (void)state;
    hq_npz_t *params = NULL;
    hq_graph_t *g = sized_graph(&params);
    hq_archive_t *a = test_archive_of(g, params);
    hq_dataset_t *ds = dataset_of(g, 2, 4, 4, 4, 0.0f, 1.0f, 31, NULL);
    test_log_t log = {""};
    run_ok(a, "model_optimization_flavor(compression_level=5)\n", ds, &log, NULL);
    hq_npz_t *q = NULL;
    assert_int_equal(hq_archive_params(a, HQ_PARAMS_QUANTIZED, &q, NULL), HQ_OK);
    const hq_tensor_t *ratio = hq_npz_get(q, "net/compression/ratio_4bit:0");
    const hq_tensor_t *level = hq_npz_get(q, "net/compression/level:0");
    assert_non_null(ratio);
    assert_non_null(level);
    assert_true(((const float *)ratio->data)[0] == 1.0f);
    assert_int_equal(((const int32_t *)level->data)[0], 5);
    hq_graph_t *ng = NULL;
    assert_int_equal(hq_archive_graph(a, &ng, NULL), HQ_OK);
    assert_string_equal(hq_graph_layer(ng, hq_graph_find(ng, "conv2"))->precision_mode, "a8_w4");
    hq_archive_destroy(a);
    hq_dataset_destroy(ds);
    hq_npz_destroy(params);
    hq_graph_destroy(g);
}

/* ---- script handling ---------------------------------------------------------------------- */

static void unknown_commands_are_kept_and_reported_once(void **state)
{
    (void)state;
    hq_npz_t *params = NULL;
    hq_graph_t *g = single_conv_graph(&params, HQ_ACT_RELU);
    hq_archive_t *a = test_archive_of(g, params);
    hq_dataset_t *ds = dataset_of(g, 2, 4, 4, 3, 0.0f, 1.0f, 37, NULL);
    test_log_t log = {""};
    const char *text = "# comment kept\n"
                       "nms_postprocess(meta.json, meta_arch=yolov5)\n"
                       "nms_postprocess(other.json)\n"
                       "pre_quantization_optimization(dead_channels_removal, policy=enabled)\n"
                       "quantization_param(conv1, precision_mode=a16_w16, bias_mode=double)\n";
    run_ok(a, text, ds, &log, NULL);
    assert_int_equal(count_of(log.text, "nms_postprocess: not applied"), 1);
    assert_int_equal(count_of(log.text, "pre_quantization_optimization dead_channels_removal: not applied"),
                     1);
    assert_int_equal(count_of(log.text, "quantization_param key 'bias_mode': not applied"), 1);
    hq_script_t *kept = NULL;
    assert_int_equal(hq_archive_script(a, &kept, NULL), HQ_OK);
    assert_int_equal(hq_script_command_count(kept), 5);
    char *printed = NULL;
    assert_int_equal(hq_script_print(kept, &printed, NULL), HQ_OK);
    assert_non_null(strstr(printed, "nms_postprocess(other.json)"));
    assert_non_null(strstr(printed, "# comment kept"));
    free(printed);
    hq_graph_t *ng = NULL;
    assert_int_equal(hq_archive_graph(a, &ng, NULL), HQ_OK);
    assert_string_equal(hq_graph_layer(ng, hq_graph_find(ng, "conv1"))->precision_mode, "a16_w16");
    assert_int_equal(hq_archive_state(a), HQ_STATE_FP_OPTIMIZED);
    hq_archive_destroy(a);
    hq_dataset_destroy(ds);
    hq_npz_destroy(params);
    hq_graph_destroy(g);
}

static void bad_script_values_and_archive_states_are_refused(void **state)
{
    (void)state;
    hq_npz_t *params = NULL;
    hq_graph_t *g = single_conv_graph(&params, HQ_ACT_RELU);
    hq_dataset_t *ds = dataset_of(g, 2, 4, 4, 3, 0.0f, 1.0f, 41, NULL);
    struct {
        const char *script;
        const char *message;
    } cases[] = {
        {"quantization_param(conv1, precision_mode=a9_w8)\n", "test.alls:1: quantization_param"},
        {"quantization_param(conv9, precision_mode=a8_w8)\n", "no layer named 'conv9'"},
        {"model_optimization_flavor(compression_level=7)\n", "compression_level must be"},
        {"model_optimization_config(calibration, batch_size=0)\n", "batch_size must be"},
        {"quantization_param(conv1, force_range_out=[3, 1])\n", "force_range_out"},
        {"pre_quantization_optimization(activation_clipping, layers=[conv1], mode=percentile, "
         "clipping_values=[50, 101])\n",
         "percentiles"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hq_archive_t *a = test_archive_of(g, params);
        hq_error_t err = {0};
        assert_int_equal(run_status(a, cases[i].script, ds, &err), HQ_ERR_INVALID);
        if (!strstr(err.message, cases[i].message))
            fail_msg("case %zu: '%s' lacks '%s'", i, err.message, cases[i].message);
        assert_int_equal(hq_archive_state(a), HQ_STATE_PARSED);
        hq_archive_destroy(a);
    }
    hq_archive_t *a = test_archive_of(g, params);
    assert_int_equal(hq_archive_set_state(a, HQ_STATE_QUANTIZED, NULL), HQ_OK);
    hq_error_t err = {0};
    assert_int_equal(run_status(a, "", ds, &err), HQ_ERR_STATE);
    assert_non_null(strstr(err.message, "parsed_model"));
    hq_archive_destroy(a);
    hq_dataset_destroy(ds);
    hq_npz_destroy(params);
    hq_graph_destroy(g);
}

static void calibset_size_limits_the_samples_run(void **state)
{
    (void)state;
    hq_npz_t *params = NULL;
    hq_graph_t *g = single_conv_graph(&params, HQ_ACT_LINEAR);
    hq_archive_t *a = test_archive_of(g, params);
    hq_dataset_t *ds = dataset_of(g, 20, 4, 4, 3, 0.0f, 1.0f, 43, NULL);
    test_log_t log = {""};
    hqi_optimize_result_t r;
    run_ok(a, "model_optimization_config(calibration, batch_size=3, calibset_size=7)\n", ds, &log,
           &r);
    assert_int_equal(r.calibration->samples, 7);
    int in = hq_graph_find(g, "input_layer1");
    assert_int_equal(r.calibration->layers[in].count, 7 * 4 * 4 * 3);
    assert_non_null(strstr(log.text, "calibration: 7 sample(s) in batches of 3"));
    hqi_optimize_result_free(&r);
    hq_archive_destroy(a);
    hq_dataset_destroy(ds);
    hq_npz_destroy(params);
    hq_graph_destroy(g);
}

/* Analytic bias correction against a hand computation (docs/quantizer.md section 8): 4-bit
 * weights [0.3, -0.1] on one output channel quantize with scale 0.3 / 7 to [7, -2], so
 * dW = [0, -2 * 0.3 / 7 + 0.1]; with input channel means [2, 5] the bias loses
 * sum dW * E[x] = 5 * (0.1 - 0.6 / 7). 16-bit weights leave it (almost) alone. */
static void bias_correction_subtracts_the_expected_weight_error(void **state)
{
    (void)state;
    hq_graph_t *g = NULL;
    hq_error_t err = {0};
    assert_int_equal(hq_graph_create("bc", &g, &err), HQ_OK);
    int in = test_add_layer(g, "in", HQ_LAYER_INPUT, -1);
    hq_shape_t s = {4, {-1, 2, 2, 2}};
    assert_int_equal(hq_layer_set_output_shape(g, in, &s, &err), HQ_OK);
    int conv = test_add_layer(g, "conv", HQ_LAYER_CONV, in);
    test_set_conv(g, conv, 1, 2, 1, 0, HQ_ACT_LINEAR);
    test_add_layer(g, "out", HQ_LAYER_OUTPUT, conv);
    test_finalize(g);
    hq_npz_t *fpo = NULL;
    assert_int_equal(hq_npz_create(&fpo, &err), HQ_OK);
    int64_t ks[4] = {1, 1, 2, 1}, bs[1] = {1};
    char kkey[256], bkey[256];
    snprintf(kkey, sizeof kkey, "%s/kernel:0", hq_graph_layer(g, conv)->name);
    snprintf(bkey, sizeof bkey, "%s/bias:0", hq_graph_layer(g, conv)->name);
    float *w = test_put_filled(fpo, kkey, 4, ks, 1);
    float *b = test_put_filled(fpo, bkey, 1, bs, 2);
    w[0] = 0.3f;
    w[1] = -0.1f;
    b[0] = 0.25f;
    double means[2] = {2.0 * 4, 5.0 * 4}; /* summed over 4 samples: channel means 2 and 5 */
    hqi_stats_t stats[3] = {{0}};
    stats[in].seen = true;
    stats[in].channels = 2;
    stats[in].channel_mean_sum = means;
    hqi_calibration_t cal = {3, stats, 4};
    hqi_layer_quant_t dec[3] = {{0}};
    for (int i = 0; i < 3; i++)
        dec[i] = (hqi_layer_quant_t){8, 8, 8, -1.0f, 1.0f, 0, 0, 0, NULL};
    dec[conv].weight_bits = 4;
    hq_npz_t *out = NULL;
    int corrected = 0;
    if (hqi_bias_correct(g, fpo, &cal, dec, &out, &corrected, &err))
        fail_msg("%s", err.message);
    assert_int_equal(corrected, 1);
    double scale = (double)(float)(0.3f / 7.0); /* float32(m / W), docs/numerics.md */
    double dw1 = -2.0 * scale - (double)-0.1f, dw0 = 7.0 * scale - (double)0.3f;
    double want = 0.25 - (dw0 * 2.0 + dw1 * 5.0);
    assert_float_equal(((const float *)hq_npz_get(out, bkey)->data)[0], want, 1e-6);
    assert_float_equal(b[0], 0.25f, 0.0f); /* the fp-optimized params keep the float bias */
    hq_npz_destroy(out);
    /* 16 bit: scale 0.3 / 32767, -0.1 / scale = -10922.33 -> -10922, a correction of ~1.5e-5 */
    dec[conv].weight_bits = 16;
    assert_int_equal(hqi_bias_correct(g, fpo, &cal, dec, &out, &corrected, &err), HQ_OK);
    scale = (double)(float)(0.3f / 32767.0);
    dw0 = 32767.0 * scale - (double)0.3f;
    dw1 = -10922.0 * scale - (double)-0.1f;
    want = 0.25 - (dw0 * 2.0 + dw1 * 5.0);
    assert_true(fabs(want - 0.25) > 1e-6 && fabs(want - 0.25) < 1e-4);
    assert_float_equal(((const float *)hq_npz_get(out, bkey)->data)[0], want, 1e-7);
    hq_npz_destroy(out);
    hq_npz_destroy(fpo);
    hq_graph_destroy(g);
}

/* ---- iterative bias correction -------------------------------------------------------------- */

typedef struct channel_sum {
    int layer;
    int64_t channels;
    double sum[16]; /* per channel, over every sample and position */
    int64_t rows;   /* positions times samples added */
} channel_sum_t;

static hq_status_t sum_channels(void *user, int layer, int port, const hq_shape_t *shape,
                                const float *data, hq_error_t *err)
{
    (void)port;
    (void)err;
    channel_sum_t *c = user;
    if (layer != c->layer)
        return HQ_OK;
    int64_t n = 1;
    for (int d = 0; d < shape->ndim; d++)
        n *= shape->dims[d];
    for (int64_t i = 0; i < n; i++)
        c->sum[i % c->channels] += data[i];
    c->rows += n / c->channels;
    return HQ_OK;
}

/* Per-channel mean of layer `name`'s output over the n samples of x: quantized minus float. */
static void mean_error(hq_archive_t *a, const char *name, const float *x, int64_t n,
                       double *error, int64_t *channels)
{
    hq_graph_t *g = NULL;
    hq_npz_t *fpo = NULL, *q = NULL;
    assert_int_equal(hq_archive_graph(a, &g, NULL), HQ_OK);
    assert_int_equal(hq_archive_params(a, HQ_PARAMS_FP_OPTIMIZED, &fpo, NULL), HQ_OK);
    assert_int_equal(hq_archive_params(a, HQ_PARAMS_QUANTIZED, &q, NULL), HQ_OK);
    int layer = hq_graph_find(g, name);
    assert_true(layer >= 0);
    hq_shape_t shape = hq_layer_port_shape(hq_graph_layer(g, layer), 0);
    channel_sum_t sums[2] = {{0}};
    const hq_npz_t *params[2] = {q, fpo};
    const hq_target_t targets[2] = {HQ_TARGET_QUANTIZED, HQ_TARGET_FP_OPTIMIZED};
    for (int k = 0; k < 2; k++) {
        hq_emulator_t *emu = NULL;
        hq_error_t err = {0};
        if (hq_emulator_create(g, params[k], targets[k], "test", &emu, &err))
            fail_msg("emulator: %s", err.message);
        sums[k].layer = layer;
        sums[k].channels = shape.dims[shape.ndim - 1];
        assert_true(sums[k].channels <= 16);
        const float *ins[1] = {x};
        if (hq_emulator_run(emu, n, ins, NULL, sum_channels, &sums[k], &err))
            fail_msg("run: %s", err.message);
        hq_emulator_destroy(emu);
    }
    *channels = sums[0].channels;
    for (int64_t c = 0; c < *channels; c++)
        error[c] = sums[0].sum[c] / (double)sums[0].rows - sums[1].sum[c] / (double)sums[1].rows;
}

/* One bias step of layer `name`: s_in * kernel_scale per channel, the accumulator's unit. */
static double bias_step(hq_archive_t *a, const char *name, int64_t c)
{
    hq_graph_t *g = NULL;
    hq_npz_t *q = NULL;
    assert_int_equal(hq_archive_graph(a, &g, NULL), HQ_OK);
    assert_int_equal(hq_archive_params(a, HQ_PARAMS_QUANTIZED, &q, NULL), HQ_OK);
    const hq_layer_t *l = hq_graph_layer(g, hq_graph_find(g, name));
    char key[512];
    snprintf(key, sizeof key, "%s/qp_scale:0", hq_graph_layer(g, l->inputs[0])->name);
    double s_in = ((const float *)hq_npz_get(q, key)->data)[0];
    snprintf(key, sizeof key, "%s/kernel_scale:0", l->name);
    return s_in * ((const float *)hq_npz_get(q, key)->data)[c];
}

/* in -> conv1 -> conv2 -> out, 4-bit weights, no activation: without correction conv2's channels
 * are off on average (its own weight error and what conv1 passes on); iterative correction brings
 * every channel's mean error on the calibration samples within one bias step (plus a twentieth
 * of an output step for the output rounding; before: up to ~0.8, i.e. 2.6 output steps), and only
 * the integer biases differ. */
static void iterative_bias_correction_zeroes_the_mean_error_of_each_channel(void **state)
{
    (void)state;
    hq_npz_t *params = NULL;
    hq_graph_t *g = two_convs_graph(&params, 51, 61);
    float *x = NULL;
    hq_dataset_t *ds = dataset_of(g, 24, 6, 6, 3, 0.0f, 2.0f, 71, &x);
    /* the weights clip named: both rows round on one grid, whatever the default's probe picks */
    const char *common = "quantization_param({conv*}, precision_mode=a8_w4)\n"
                         "pre_quantization_optimization(weights_clipping, layers={conv*}, "
                         "mode=mmse_if4b)\n"
                         "model_optimization_config(calibration, batch_size=5)\n";
    const char *modes[2] = {"post_quantization_optimization(bias_correction, policy=disabled)\n",
                            "post_quantization_optimization(bias_correction, policy=enabled, "
                            "mode=iterative)\n"};
    hq_archive_t *archives[2];
    double error[2][16];
    int64_t channels = 0;
    for (int m = 0; m < 2; m++) {
        archives[m] = test_archive_of(g, params);
        char text[512];
        snprintf(text, sizeof text, "%s%s", common, modes[m]);
        hq_script_t *s = test_script_of(text);
        test_log_t log = {""};
        hq_optimize_options_t options = {0};
        options.log = test_log_capture;
        options.log_user = &log;
        hq_error_t err = {0};
        if (hqi_optimize_run(archives[m], s, ds, &options, true, NULL, &err))
            fail_msg("optimize: %s", err.message);
        hq_script_destroy(s);
        assert_int_equal(count_of(log.text, "iterative, 2 layer(s) corrected"), m);
        mean_error(archives[m], "conv2", x, 24, error[m], &channels);
    }
    hq_graph_t *qg = NULL;
    hq_npz_t *q = NULL;
    assert_int_equal(hq_archive_graph(archives[1], &qg, NULL), HQ_OK);
    assert_int_equal(hq_archive_params(archives[1], HQ_PARAMS_QUANTIZED, &q, NULL), HQ_OK);
    double out_step = ((const float *)hqi_param(q, hq_graph_layer(qg, hq_graph_find(qg, "conv2")),
                                                "qp_scale:0")
                           ->data)[0];
    double before = 0, largest_tol = 0;
    for (int64_t c = 0; c < channels; c++) {
        double tol = bias_step(archives[1], "conv2", c) + 0.05 * out_step;
        before = fmax(before, fabs(error[0][c]));
        largest_tol = fmax(largest_tol, tol);
        if (!(fabs(error[1][c]) <= tol))
            fail_msg("channel %lld: mean error %g after correction, %g before, tolerance %g",
                     (long long)c, error[1][c], error[0][c], tol);
    }
    assert_true(before > 10.0 * largest_tol); /* the error was there to correct */
    /* only bias:0 tensors differ between the two quantized param sets */
    hq_npz_t *q0 = NULL;
    assert_int_equal(hq_archive_params(archives[0], HQ_PARAMS_QUANTIZED, &q0, NULL), HQ_OK);
    for (size_t i = 0; i < hq_npz_count(q); i++) {
        const char *key = hq_npz_key(q, i);
        const hq_tensor_t *t1 = hq_npz_get_index(q, i), *t0 = hq_npz_get(q0, key);
        assert_non_null(t0);
        if (strstr(key, "bias:0") || strstr(key, "layer_noise_analysis"))
            continue;
        assert_int_equal(t0->nbytes, t1->nbytes);
        if (memcmp(t0->data, t1->data, t1->nbytes))
            fail_msg("%s differs", key);
    }
    free(x);
    hq_archive_destroy(archives[0]);
    hq_archive_destroy(archives[1]);
    hq_dataset_destroy(ds);
    hq_npz_destroy(params);
    hq_graph_destroy(g);
}

/* The walk that runs every layer once on cached codes and the full passes before each corrected
 * layer give the same integer params, byte for byte, on a network with a branch and a 16-bit
 * layer. */
static void iterative_bias_correction_by_walk_matches_full_passes(void **state)
{
    (void)state;
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int in = test_add_input(g, "input_layer1", 6, 6, 3);
    int c1 = test_add_layer(g, "conv1", HQ_LAYER_CONV, in);
    test_set_conv(g, c1, 3, 3, 8, 1, HQ_ACT_RELU);
    int c2 = test_add_layer(g, "conv2", HQ_LAYER_CONV, c1);
    test_set_conv(g, c2, 3, 8, 6, 1, HQ_ACT_LINEAR);
    int c3 = test_add_layer(g, "conv3", HQ_LAYER_CONV, c1);
    test_set_conv(g, c3, 1, 8, 6, 0, HQ_ACT_LINEAR);
    int add = test_add_layer(g, "ew_add1", HQ_LAYER_EW_ADD, c2);
    test_connect(g, c3, 0, add);
    int c4 = test_add_layer(g, "conv4", HQ_LAYER_CONV, add);
    test_set_conv(g, c4, 3, 6, 5, 1, HQ_ACT_LINEAR);
    test_add_layer(g, "output_layer1", HQ_LAYER_OUTPUT, c4);
    test_finalize(g);
    hq_npz_t *params = NULL;
    assert_int_equal(hq_npz_create(&params, NULL), HQ_OK);
    conv_params(params, g, c1, 111, NULL);
    conv_params(params, g, c2, 121, NULL);
    conv_params(params, g, c3, 131, NULL);
    conv_params(params, g, c4, 141, NULL);
    hq_dataset_t *ds = dataset_of(g, 21, 6, 6, 3, -1.0f, 2.0f, 151, NULL);
    hq_archive_t *a = test_archive_of(g, params);
    hq_script_t *s =
        test_script_of("quantization_param({conv*}, precision_mode=a8_w4)\n"
                  "quantization_param(conv4, precision_mode=a8_w8_a16)\n"
                  "model_optimization_config(calibration, batch_size=4)\n"
                  "post_quantization_optimization(bias_correction, policy=disabled)\n");
    hqi_optimize_result_t result;
    hq_error_t err = {0};
    if (hqi_optimize_run(a, s, ds, NULL, true, &result, &err))
        fail_msg("optimize: %s", err.message);
    hq_script_destroy(s);
    hq_graph_t *qg = NULL;
    hq_npz_t *q = NULL, *copies[2];
    assert_int_equal(hq_archive_graph(a, &qg, NULL), HQ_OK);
    assert_int_equal(hq_archive_params(a, HQ_PARAMS_QUANTIZED, &q, NULL), HQ_OK);
    int64_t limits[2] = {0, -1};
    int corrected[2];
    for (int k = 0; k < 2; k++) {
        assert_int_equal(hq_npz_create(&copies[k], NULL), HQ_OK);
        for (size_t i = 0; i < hq_npz_count(q); i++)
            assert_int_equal(hq_npz_put_copy(copies[k], hq_npz_key(q, i), hq_npz_get_index(q, i),
                                             NULL),
                             HQ_OK);
        if (hqi_bias_correct_iterative(qg, result.calibration, copies[k], ds, NULL, 21, 4, 2,
                                       limits[k], &corrected[k], &err))
            fail_msg("iterative: %s", err.message);
    }
    assert_int_equal(corrected[0], 4);
    assert_int_equal(corrected[1], 4);
    int changed = 0;
    for (size_t i = 0; i < hq_npz_count(q); i++) {
        const char *key = hq_npz_key(q, i);
        const hq_tensor_t *t0 = hq_npz_get(copies[0], key), *t1 = hq_npz_get(copies[1], key);
        assert_int_equal(t0->nbytes, t1->nbytes);
        if (memcmp(t0->data, t1->data, t1->nbytes))
            fail_msg("%s differs between the walk and the full passes", key);
        changed += memcmp(t0->data, hq_npz_get_index(q, i)->data, t0->nbytes) != 0;
    }
    assert_int_equal(changed, 4); /* the four biases, and nothing else */
    for (int k = 0; k < 2; k++)
        hq_npz_destroy(copies[k]);
    hqi_optimize_result_free(&result);
    hq_archive_destroy(a);
    hq_dataset_destroy(ds);
    hq_npz_destroy(params);
    hq_graph_destroy(g);
}

/* A layer without an integer form (ew_div between computed tensors) could be neither emulated
 * quantized nor compiled: hq optimize refuses it before any work, naming the layer and the type,
 * and leaves the archive as it was. */
static void a_layer_without_integer_form_is_refused_before_any_work(void **s)
{
    (void)s;
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int in = test_add_input(g, "input_layer1", 6, 6, 3);
    int c1 = test_add_layer(g, "conv1", HQ_LAYER_CONV, in);
    test_set_conv(g, c1, 3, 3, 4, 1, HQ_ACT_RELU);
    int c2 = test_add_layer(g, "conv2", HQ_LAYER_CONV, c1);
    test_set_conv(g, c2, 3, 4, 4, 1, HQ_ACT_LINEAR);
    int div = test_add_layer(g, "ew_div1", HQ_LAYER_EW_DIV, c2);
    test_connect(g, c1, 0, div);
    test_add_layer(g, "output_layer1", HQ_LAYER_OUTPUT, div);
    test_finalize(g);
    hq_npz_t *params = NULL;
    assert_int_equal(hq_npz_create(&params, NULL), HQ_OK);
    conv_params(params, g, c1, 161, NULL);
    conv_params(params, g, c2, 171, NULL);
    hq_dataset_t *ds = dataset_of(g, 12, 6, 6, 3, 0.5f, 2.0f, 181, NULL);
    hq_archive_t *a = test_archive_of(g, params);
    hq_script_t *script = test_script_of("model_optimization_flavor(optimization_level=1)\n");
    test_log_t log = {""};
    hq_optimize_options_t options = {0};
    options.log = test_log_capture;
    options.log_user = &log;
    hq_error_t err = {0};
    hq_status_t st = hqi_optimize_run(a, script, ds, &options, true, NULL, &err);
    hq_script_destroy(script);
    assert_int_equal(st, HQ_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "layer 'net/ew_div1': type ew_div has no integer form"));
    assert_int_equal(count_of(log.text, "calibration:"), 0);
    assert_int_equal(hq_archive_state(a), HQ_STATE_PARSED);
    hq_archive_destroy(a);
    hq_dataset_destroy(ds);
    hq_npz_destroy(params);
    hq_graph_destroy(g);
}

/* ---- gains on held-back samples ------------------------------------------------------------ */

static double sqnr_of(const float *ref, const float *got, int64_t n)
{
    double signal = 0, error = 0;
    for (int64_t i = 0; i < n; i++) {
        signal += (double)ref[i] * ref[i];
        error += ((double)ref[i] - got[i]) * ((double)ref[i] - got[i]);
    }
    return 10.0 * log10(signal / error);
}

/* 24 samples, calibset 16: the last 8 are held back. The probe's SQNR is the output SQNR of the two
 * emulations on exactly those samples, and the log's "before -> after" are the SQNRs of the
 * uncorrected and the corrected integer params there. */
static void gains_are_the_output_sqnr_on_the_held_back_samples(void **state)
{
    (void)state;
    hq_npz_t *params = NULL;
    hq_graph_t *g = two_convs_graph(&params, 81, 91);
    float *x = NULL;
    hq_dataset_t *ds = dataset_of(g, 24, 6, 6, 3, 0.0f, 2.0f, 101, &x);
    const char *modes[2] = {"disabled", "enabled"};
    hq_npz_t *qs[2];
    hq_archive_t *archives[2];
    test_log_t log = {""};
    for (int m = 0; m < 2; m++) {
        char text[512];
        snprintf(text, sizeof text,
                 "quantization_param({conv*}, precision_mode=a8_w4)\n"
                 "pre_quantization_optimization(weights_clipping, layers={conv*}, "
                 "mode=mmse_if4b)\n"
                 "model_optimization_config(calibration, calibset_size=16)\n"
                 "post_quantization_optimization(finetune, policy=disabled)\n"
                 "post_quantization_optimization(bias_correction, policy=%s)\n",
                 modes[m]);
        archives[m] = test_archive_of(g, params);
        hq_script_t *s = test_script_of(text);
        hq_optimize_options_t options = {0};
        options.log = test_log_capture;
        options.log_user = &log;
        hq_error_t err = {0};
        if (hqi_optimize_run(archives[m], s, ds, &options, true, NULL, &err))
            fail_msg("optimize: %s", err.message);
        hq_script_destroy(s);
        assert_int_equal(hq_archive_params(archives[m], HQ_PARAMS_QUANTIZED, &qs[m], NULL), HQ_OK);
    }
    assert_int_equal(
        count_of(log.text, "output SQNR measured on 8 held-back sample(s) [16, 24)"), 1);
    hq_graph_t *qg = NULL;
    hq_npz_t *fpo = NULL;
    assert_int_equal(hq_archive_graph(archives[1], &qg, NULL), HQ_OK);
    assert_int_equal(hq_archive_params(archives[1], HQ_PARAMS_FP_OPTIMIZED, &fpo, NULL), HQ_OK);
    const float *held = x + 16 * 6 * 6 * 3;
    int64_t size = 0;
    float *ref = emulate(qg, fpo, HQ_TARGET_FP_OPTIMIZED, held, 8, &size);
    double want[2];
    for (int m = 0; m < 2; m++) {
        float *got = emulate(qg, qs[m], HQ_TARGET_QUANTIZED, held, 8, &size);
        want[m] = sqnr_of(ref, got, size * 8);
        free(got);
    }
    hqi_holdout_t split = hqi_holdout_split(24, 16, HQI_HOLDOUT_MAX);
    hqi_sqnr_probe_t *probe = NULL;
    hq_error_t err = {0};
    if (hqi_sqnr_probe_create(qg, fpo, ds, NULL, &split, 3, 1, &probe, &err))
        fail_msg("probe: %s", err.message);
    for (int m = 0; m < 2; m++) {
        double db = 0;
        assert_int_equal(hqi_sqnr_probe_measure(probe, qs[m], &db, &err), HQ_OK);
        assert_true(fabs(db - want[m]) < 1e-9);
    }
    assert_true(want[1] > want[0] + 1.0); /* there was a gain to see */
    char line[160];
    snprintf(line, sizeof line, "output SQNR %.2f -> %.2f dB, gain %+.2f dB on held-back samples",
             want[0], want[1], want[1] - want[0]);
    if (count_of(log.text, line) != 1)
        fail_msg("no line '%s' in\n%s", line, log.text);
    hqi_sqnr_probe_destroy(probe);
    free(ref);
    for (int m = 0; m < 2; m++)
        hq_archive_destroy(archives[m]);
    hq_dataset_destroy(ds);
    free(x);
    hq_npz_destroy(params);
    hq_graph_destroy(g);
}

/* in (4x4x64) -> conv1 (1x1, 64 -> 2) at a8_w4: each output channel has 63 small weights and one
 * outlier (from input 63) that the default least-MSE clip cuts. The optimizer builds the integer
 * params with and without that clip and keeps the one with the better output SQNR (16 samples,
 * all calibration ones). Where input 63 is always zero the clip only refines the other weights'
 * grid: kept (scale below the outlier's). Where input 63 is large, cutting the outlier costs the
 * output more than the finer grid gains: dropped (the outlier at the largest code, scale
 * max|w| / 7), also when both are compared after the bias correction that follows. A script line
 * naming the layer is obeyed without the probe. */
static void default_weights_clip_is_kept_only_where_it_helps_the_output(void **state)
{
    (void)state;
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int in = test_add_input(g, "input_layer1", 4, 4, 64);
    int c1 = test_add_layer(g, "conv1", HQ_LAYER_CONV, in);
    test_set_conv(g, c1, 1, 64, 2, 0, HQ_ACT_LINEAR);
    test_add_layer(g, "output_layer1", HQ_LAYER_OUTPUT, c1);
    test_finalize(g);
    hq_npz_t *params = NULL;
    assert_int_equal(hq_npz_create(&params, NULL), HQ_OK);
    float k[128], b[2] = {0.05f, -0.05f};
    uint32_t seed = 7;
    for (int i = 0; i < 63; i++)
        for (int c = 0; c < 2; c++)
            k[i * 2 + c] = 0.1f * test_uniform(&seed);
    k[63 * 2] = 1.0f;
    k[63 * 2 + 1] = -1.0f;
    int64_t kshape[4] = {1, 1, 64, 2}, bshape[1] = {2};
    test_put_floats(params, "net/conv1/kernel:0", 4, kshape, k);
    test_put_floats(params, "net/conv1/bias:0", 1, bshape, b);
    const char *common = "quantization_param(conv1, precision_mode=a8_w4)\n"
                         "post_quantization_optimization(finetune, policy=disabled)\n";
    const char *no_bc = "post_quantization_optimization(bias_correction, policy=disabled)\n";
    struct {
        float amp;         /* input 63 = amp * uniform */
        const char *extra; /* script lines */
        const char *line;  /* expected in the log, NULL: no probe line */
        bool clipped;
    } cases[] = {
        {0.0f, no_bc, "(round to nearest): kept", true},
        {8.0f, no_bc, "(round to nearest): dropped", false},
        {8.0f, "pre_quantization_optimization(weights_clipping, layers=[conv1], mode=mmse_if4b)\n",
         NULL, true},
        /* with the iterative bias correction (the default) both are compared after one */
        {8.0f, "", "; after an iterative bias correction ", false},
    };
    for (int m = 0; m < 4; m++) {
        int64_t shape[4] = {16, 4, 4, 64};
        hq_tensor_t *t = NULL;
        assert_int_equal(hq_tensor_create(HQ_DTYPE_FLOAT32, 4, shape, &t, NULL), HQ_OK);
        float *x = t->data;
        test_fill(x, hq_tensor_count(t), 201);
        for (int64_t p = 0; p < 16 * 4 * 4; p++)
            x[p * 64 + 63] *= cases[m].amp;
        char file[32];
        snprintf(file, sizeof file, "clip_%d.npy", m);
        hq_dataset_t *ds = test_dataset_of_tensor(g, t, file, NULL);
        hq_error_t err = {0};
        char text[512];
        snprintf(text, sizeof text, "%s%s", common, cases[m].extra);
        hq_archive_t *a = test_archive_of(g, params);
        hq_script_t *s = test_script_of(text);
        test_log_t log = {""};
        hq_optimize_options_t options = {0};
        options.log = test_log_capture;
        options.log_user = &log;
        if (hqi_optimize_run(a, s, ds, &options, true, NULL, &err))
            fail_msg("optimize: %s", err.message);
        hq_script_destroy(s);
        const char *probe = strstr(log.text, "weights clipping: the default least-MSE clip on 1 "
                                             "layer(s): output SQNR ");
        if (cases[m].line ? !probe || !strstr(probe, cases[m].line) : probe != NULL)
            fail_msg("case %d: log\n%s", m, log.text);
        hq_npz_t *q = NULL;
        assert_int_equal(hq_archive_params(a, HQ_PARAMS_QUANTIZED, &q, NULL), HQ_OK);
        const float *scale = hq_npz_get(q, "net/conv1/kernel_scale:0")->data;
        const int8_t *codes = hq_npz_get(q, "net/conv1/kernel:0")->data;
        for (int c = 0; c < 2; c++) {
            if (cases[m].clipped) {
                assert_true(scale[c] < 0.9f / 7.0f);
            } else {
                assert_true(scale[c] == (float)(1.0 / 7.0));
                assert_int_equal(codes[63 * 2 + c], c == 0 ? 7 : -7);
            }
        }
        hq_archive_destroy(a);
        hq_dataset_destroy(ds);
    }
    hq_npz_destroy(params);
    hq_graph_destroy(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(equalization_keeps_the_float_network_and_balances_channels),
        cmocka_unit_test(a_standalone_batch_norm_is_folded_into_the_conv_before_it),
        cmocka_unit_test(normalization_inserts_a_layer_after_the_input),
        cmocka_unit_test(bgr_to_rgb_is_folded_into_the_first_conv),
        cmocka_unit_test(change_output_activation_sets_the_layer_activation),
        cmocka_unit_test(concat_inputs_share_one_range_and_add_inputs_do_not),
        cmocka_unit_test(forced_and_clipped_ranges_replace_the_observed_ones_and_contain_zero),
        cmocka_unit_test(lookup_table_pre_ranges_skip_inputs_whose_output_saturates),
        cmocka_unit_test(compression_levels_take_the_largest_layers_first),
        cmocka_unit_test(weights_beyond_the_arch_memory_are_compressed_implicitly),
        cmocka_unit_test(compression_level_from_the_script_lands_in_the_archive),
        cmocka_unit_test(unknown_commands_are_kept_and_reported_once),
        cmocka_unit_test(bad_script_values_and_archive_states_are_refused),
        cmocka_unit_test(calibset_size_limits_the_samples_run),
        cmocka_unit_test(bias_correction_subtracts_the_expected_weight_error),
        cmocka_unit_test(iterative_bias_correction_zeroes_the_mean_error_of_each_channel),
        cmocka_unit_test(iterative_bias_correction_by_walk_matches_full_passes),
        cmocka_unit_test(gains_are_the_output_sqnr_on_the_held_back_samples),
        cmocka_unit_test(default_weights_clip_is_kept_only_where_it_helps_the_output),
        cmocka_unit_test(a_layer_without_integer_form_is_refused_before_any_work),
    };
    return cmocka_run_group_tests(tests, test_tmp_create, test_tmp_remove);
}
