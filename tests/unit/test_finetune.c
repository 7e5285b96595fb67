/* test_finetune.c — post_quantization_optimization(finetune): on a crafted chain of two convs
 * (one block), block-wise reconstruction brings the quantized block's output closer to the float
 * block's on the same quantized input than round-to-nearest does, changes nothing but the two
 * layers' kernel:0 and bias:0, and gives the same bytes at any thread count; the script keys are
 * read, and out-of-range values refused with one line naming the script and the key. */
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
#include "quant/finetune.h"
#include "quant/optimize.h"
#include "quant/optimize_script.h"
#include "test_graphs.h"
#include "test_optimizer.h"

/* ---- a chain of two convs ---------------------------------------------------------------- */

enum { H = 8, W = 8, CIN = 6, MID = 8, COUT = 8, K = 3, SAMPLES = 16 };

/* input (8x8x6) -> conv1 (3x3, pad 1, 6 -> 8, relu) -> conv2 (3x3, pad 1, 8 -> 8, linear) ->
 * output: one block of two layers. */
static hq_graph_t *two_convs(hq_npz_t **params)
{
    const test_conv_t convs[2] = {{MID, HQ_ACT_RELU, 91, 92, 0.2f},
                                  {COUT, HQ_ACT_LINEAR, 96, 97, 0.0f}};
    return test_conv_chain(H, W, CIN, K, 2, convs, params);
}

/* The block's reconstruction error: the sum over every sample, position and channel of the
 * squared difference between the quantized network's output and the float (fp_optimized)
 * block's output computed on the input as the quantized network sees it. */
static double block_error(hq_archive_t *a, const float *x)
{
    hq_graph_t *g = NULL;
    hq_npz_t *q = NULL, *fpo = NULL;
    assert_int_equal(hq_archive_graph(a, &g, NULL), HQ_OK);
    assert_int_equal(hq_archive_params(a, HQ_PARAMS_QUANTIZED, &q, NULL), HQ_OK);
    assert_int_equal(hq_archive_params(a, HQ_PARAMS_FP_OPTIMIZED, &fpo, NULL), HQ_OK);
    const int64_t n = (int64_t)SAMPLES * H * W * COUT;
    float *yq = malloc(sizeof(float) * (size_t)n), *yf = malloc(sizeof(float) * (size_t)n);
    test_tap_t tap = {hq_graph_find(g, "input_layer1"),
                      malloc(sizeof(float) * SAMPLES * H * W * CIN), SAMPLES * H * W * CIN};
    hq_emulator_t *emu = NULL;
    hq_error_t err = {0};
    if (hq_emulator_create(g, q, HQ_TARGET_QUANTIZED, "test", &emu, &err))
        fail_msg("emulator: %s", err.message);
    const float *ins[1] = {x};
    float *outs[1] = {yq};
    if (hq_emulator_run(emu, SAMPLES, ins, outs, test_keep_layer, &tap, &err))
        fail_msg("run: %s", err.message);
    hq_emulator_destroy(emu);
    if (hq_emulator_create(g, fpo, HQ_TARGET_FP_OPTIMIZED, "test", &emu, &err))
        fail_msg("emulator: %s", err.message);
    ins[0] = tap.x;
    outs[0] = yf;
    if (hq_emulator_run(emu, SAMPLES, ins, outs, NULL, NULL, &err))
        fail_msg("run: %s", err.message);
    hq_emulator_destroy(emu);
    double total = 0;
    for (int64_t i = 0; i < n; i++)
        total += ((double)yq[i] - yf[i]) * ((double)yq[i] - yf[i]);
    free(tap.x);
    free(yq);
    free(yf);
    return total;
}

/* the least-MSE weights clip named, so that both rows round on the same grid whatever the
 * probe of the default clip would choose */
static const char common[] = "quantization_param({conv*}, precision_mode=a8_w4)\n"
                             "pre_quantization_optimization(weights_clipping, layers={conv*}, "
                             "mode=mmse_if4b)\n"
                             "post_quantization_optimization(bias_correction, policy=disabled)\n";

/* The chain quantized to 4-bit weights twice, bias correction off: with finetune the block's
 * reconstruction error falls well below round-to-nearest's; the two layers form one block; only
 * their kernel:0 and bias:0 differ, and some codes of each moved. */
static void finetune_on_a_two_conv_chain_beats_nearest_rounding(void **state)
{
    (void)state;
    hq_npz_t *params = NULL;
    hq_graph_t *g = two_convs(&params);
    float *x = NULL;
    hq_dataset_t *ds = test_trainer_dataset(g, SAMPLES, H, W, CIN, &x);
    char text[2][512];
    snprintf(text[0], sizeof text[0], "%spost_quantization_optimization(finetune, policy=disabled)\n",
             common);
    snprintf(text[1], sizeof text[1],
             "%spost_quantization_optimization(finetune, policy=enabled, epochs=60, "
             "batch_size=4)\n",
             common);
    hq_archive_t *a[2];
    double error[2];
    test_log_t log[2] = {{""}, {""}};
    for (int m = 0; m < 2; m++) {
        a[m] = test_archive_of(g, params);
        test_optimize(a[m], text[m], ds, 2, &log[m]);
        error[m] = block_error(a[m], x);
    }
    assert_non_null(strstr(log[0].text, "finetune: skipped (policy=disabled in the script)"));
    if (!strstr(log[1].text, "finetune: 1 block(s) of 2 layer(s) on 16 sample(s), 240 step(s)"))
        fail_msg("%s", log[1].text);
    print_message("block error: %g with nearest rounding, %g with finetune\n", error[0], error[1]);
    if (!(error[1] < 0.7 * error[0]))
        fail_msg("block error %g with finetune, %g with nearest rounding\n%s", error[1],
                 error[0], log[1].text);
    hq_npz_t *q = NULL, *q0 = NULL;
    assert_int_equal(hq_archive_params(a[1], HQ_PARAMS_QUANTIZED, &q, NULL), HQ_OK);
    assert_int_equal(hq_archive_params(a[0], HQ_PARAMS_QUANTIZED, &q0, NULL), HQ_OK);
    int changed = 0;
    for (size_t i = 0; i < hq_npz_count(q); i++) {
        const char *key = hq_npz_key(q, i);
        const hq_tensor_t *t1 = hq_npz_get_index(q, i), *t0 = hq_npz_get(q0, key);
        assert_non_null(t0);
        assert_int_equal(t0->nbytes, t1->nbytes);
        bool same = memcmp(t0->data, t1->data, t1->nbytes) == 0;
        bool trained = strstr(key, "conv") && (strstr(key, "/kernel:0") || strstr(key, "/bias:0"));
        if (!same && !trained)
            fail_msg("%s differs", key);
        if (!same && strstr(key, "/kernel:0")) {
            const int8_t *c = t1->data;
            for (size_t k = 0; k < t1->nbytes; k++)
                assert_true(c[k] >= -7 && c[k] <= 7);
        }
        changed += !same && strstr(key, "/kernel:0");
    }
    assert_int_equal(changed, 2);
    free(x);
    hq_archive_destroy(a[0]);
    hq_archive_destroy(a[1]);
    hq_dataset_destroy(ds);
    hq_npz_destroy(params);
    hq_graph_destroy(g);
}

/* mode=train_4bit (the default) trains only blocks with a layer at 4-bit weights: at a8_w8 the
 * chain is left as rounded (and the run says why), with mode=train_all it is trained. */
static void train_4bit_leaves_8bit_blocks_and_train_all_trains_them(void **state)
{
    (void)state;
    hq_npz_t *params = NULL;
    hq_graph_t *g = two_convs(&params);
    float *x = NULL;
    hq_dataset_t *ds = test_trainer_dataset(g, SAMPLES, H, W, CIN, &x);
    static const char *const text[2] = {
        "post_quantization_optimization(bias_correction, policy=disabled)\n"
        "post_quantization_optimization(finetune, policy=enabled, epochs=20, batch_size=4)\n",
        "post_quantization_optimization(bias_correction, policy=disabled)\n"
        "post_quantization_optimization(finetune, policy=enabled, epochs=20, batch_size=4, "
        "mode=train_all)\n"};
    test_log_t log[2] = {{""}, {""}};
    for (int m = 0; m < 2; m++) {
        hq_archive_t *a = test_archive_of(g, params);
        test_optimize(a, text[m], ds, 1, &log[m]);
        hq_archive_destroy(a);
    }
    if (!strstr(log[0].text, "finetune: nothing to train (mode=train_4bit and no block has a "
                             "layer at 4-bit weights)"))
        fail_msg("%s", log[0].text);
    if (!strstr(log[1].text, "finetune: 1 block(s) of 2 layer(s) on 16 sample(s)"))
        fail_msg("%s", log[1].text);
    free(x);
    hq_dataset_destroy(ds);
    hq_npz_destroy(params);
    hq_graph_destroy(g);
}

/* One thread or two: the very same integer params. */
static void finetune_does_not_depend_on_the_thread_count(void **state)
{
    (void)state;
    hq_npz_t *params = NULL;
    hq_graph_t *g = two_convs(&params);
    float *x = NULL;
    hq_dataset_t *ds = test_trainer_dataset(g, SAMPLES, H, W, CIN, &x);
    char text[512];
    snprintf(text, sizeof text,
             "%spost_quantization_optimization(finetune, policy=enabled, epochs=3, "
             "batch_size=4)\n",
             common);
    hq_archive_t *a[2];
    test_log_t log[2] = {{""}, {""}};
    for (int m = 0; m < 2; m++) {
        a[m] = test_archive_of(g, params);
        test_optimize(a[m], text, ds, m + 1, &log[m]);
    }
    hq_npz_t *q0 = NULL, *q1 = NULL;
    assert_int_equal(hq_archive_params(a[0], HQ_PARAMS_QUANTIZED, &q0, NULL), HQ_OK);
    assert_int_equal(hq_archive_params(a[1], HQ_PARAMS_QUANTIZED, &q1, NULL), HQ_OK);
    assert_int_equal(hq_npz_count(q0), hq_npz_count(q1));
    for (size_t i = 0; i < hq_npz_count(q0); i++) {
        const hq_tensor_t *t0 = hq_npz_get_index(q0, i);
        const hq_tensor_t *t1 = hq_npz_get(q1, hq_npz_key(q0, i));
        assert_non_null(t1);
        if (t0->nbytes != t1->nbytes || memcmp(t0->data, t1->data, t0->nbytes))
            fail_msg("%s differs between 1 and 2 threads", hq_npz_key(q0, i));
    }
    free(x);
    hq_archive_destroy(a[0]);
    hq_archive_destroy(a[1]);
    hq_dataset_destroy(ds);
    hq_npz_destroy(params);
    hq_graph_destroy(g);
}

/* A loss layer that is not trained, and ce, are reported with one warning each; the block still
 * trains. */
static void loss_layers_and_ce_are_reported(void **state)
{
    (void)state;
    hq_npz_t *params = NULL;
    hq_graph_t *g = two_convs(&params);
    float *x = NULL;
    hq_dataset_t *ds = test_trainer_dataset(g, SAMPLES, H, W, CIN, &x);
    hq_archive_t *a = test_archive_of(g, params);
    test_log_t log = {""};
    char text[512];
    snprintf(text, sizeof text,
             "%spost_quantization_optimization(finetune, epochs=1, loss_layer_names=[conv1, "
             "output_layer1], loss_types=[cosine, ce])\n",
             common);
    test_optimize(a, text, ds, 2, &log);
    assert_non_null(strstr(log.text, "finetune: loss_layer_names: 'output_layer1' is not a layer "
                                     "finetune trains"));
    assert_non_null(strstr(log.text, "finetune: loss_types ce compares class scores with labels"));
    /* conv1 is a loss layer: its block ends there, conv2 is a block of its own */
    if (!strstr(log.text, "finetune: 2 block(s) of 2 layer(s)"))
        fail_msg("%s", log.text);
    free(x);
    hq_archive_destroy(a);
    hq_dataset_destroy(ds);
    hq_npz_destroy(params);
    hq_graph_destroy(g);
}

/* ---- the script's keys ------------------------------------------------------------------- */

static hq_status_t read_config(const char *text, hqi_optimize_config_t *cfg, test_log_t *log,
                               hq_error_t *err)
{
    return test_read_config(two_convs, text, cfg, log, err);
}

static void finetune_keys_are_read_and_bad_values_refused(void **state)
{
    (void)state;
    static hqi_optimize_config_t cfg;
    test_log_t log = {""};
    hq_error_t err = {0};
    assert_int_equal(read_config("model_optimization_flavor(optimization_level=2)\n", &cfg, &log,
                                 &err),
                     HQ_OK);
    assert_int_equal(cfg.policy[HQI_ALGORITHM_FINETUNE], -1);
    assert_int_equal(cfg.finetune.epochs, 4);
    assert_int_equal(cfg.finetune.max_steps, 32); /* level 2's budget */
    assert_int_equal(cfg.finetune.loss_count, 0);
    assert_false(cfg.finetune.train_all); /* train_4bit */
    assert_int_equal(read_config("post_quantization_optimization(finetune, policy=enabled, "
                                 "dataset_size=128, epochs=12, batch_size=16, "
                                 "learning_rate=0.005, loss_layer_names=[conv1, conv2], "
                                 "loss_types=[l2, cosine], mode=train_all, decay_rate=0.5)\n",
                                 &cfg, &log, &err),
                     HQ_OK);
    const hqi_finetune_config_t *f = &cfg.finetune;
    assert_int_equal(cfg.policy[HQI_ALGORITHM_FINETUNE], 1);
    assert_int_equal(f->dataset_size, 128);
    assert_int_equal(f->epochs, 12);
    assert_int_equal(f->max_steps, 0); /* epochs given: no budget */
    assert_int_equal(f->batch_size, 16);
    assert_true(f->learning_rate == 0.005);
    assert_int_equal(f->loss_count, 2);
    assert_string_equal(f->loss_layers[1], "conv2");
    assert_int_equal(f->loss_type_count, 2);
    assert_int_equal(f->loss_types[0], HQI_FINETUNE_L2);
    assert_int_equal(f->loss_types[1], HQI_FINETUNE_COSINE);
    assert_true(f->train_all);
    /* a Hailo key hq does not read is reported, not refused */
    assert_non_null(strstr(log.text, "post_quantization_optimization key 'decay_rate': not "
                                     "applied"));
    assert_int_equal(read_config("post_quantization_optimization(finetune, loss_types=l2rel)\n",
                                 &cfg, &log, &err),
                     HQ_OK);
    assert_int_equal(cfg.finetune.loss_type_count, 1);
    assert_int_equal(cfg.finetune.loss_types[0], HQI_FINETUNE_L2REL);
    assert_int_equal(read_config("post_quantization_optimization(finetune, policy=disabled)\n",
                                 &cfg, &log, &err),
                     HQ_OK);
    assert_int_equal(cfg.policy[HQI_ALGORITHM_FINETUNE], 0);
    static const test_bad_key_t bad[] = {
        {"policy=maybe", "policy must be enabled or disabled"},
        {"mode=train_8bit", "mode must be train_4bit or train_all"},
        {"epochs=0", "epochs must be an integer from 1"},
        {"dataset_size=2.5", "dataset_size must be an integer"},
        {"batch_size=-1", "batch_size must be an integer from 1"},
        {"learning_rate=0", "learning_rate must be a number above 0"},
        {"learning_rate=11", "learning_rate must be a number above 0"},
        {"loss_types=[l2, mse]", "loss_types: 'mse' is not l2rel, l2, cosine or ce"},
        {"loss_types=3", "loss_types must be a loss or a list"},
        {"loss_layer_names=[conv1, 2]", "loss_layer_names must be a layer name or a list"},
        {"loss_layer_names=[conv1], loss_types=[l2, l2]", "loss_types must have one entry or one "
                                                          "per loss_layer_names entry"},
    };
    test_bad_keys_refused(two_convs, "finetune", bad, sizeof bad / sizeof bad[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(finetune_on_a_two_conv_chain_beats_nearest_rounding),
        cmocka_unit_test(finetune_does_not_depend_on_the_thread_count),
        cmocka_unit_test(train_4bit_leaves_8bit_blocks_and_train_all_trains_them),
        cmocka_unit_test(loss_layers_and_ce_are_reported),
        cmocka_unit_test(finetune_keys_are_read_and_bad_values_refused),
    };
    return cmocka_run_group_tests(tests, test_tmp_create, test_tmp_remove);
}
