/* test_kernels_fast_emulator.c — the emulator with the fast kernel set against the reference set
 * on a small network that goes through every fast path (gathered, tapwise and 1x1 convs, fused
 * elementwise_add, depthwise, maxpool, scatter deconv, resize, batch norm, elementwise with a
 * per-channel operand, global pool, dense): every layer's output within the fast tolerance, the
 * same bits on 1, 2 and 3 threads and in any batch, and the planned scratch in the peak bytes. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "emulate/emulator_internal.h"
#include "emulate/kernels_fast.h"
#include "hq/emulate.h"
#include "hq/graph.h"
#include "hq/tensor.h"
#include "test_graphs.h"

#define MAX_LAYERS 32
#define BATCH 3

static hq_layer_params_t *params_of(hq_graph_t *g, int index)
{
    return &hq_graph_layer_mut(g, index)->params;
}

static void set_window(hq_graph_t *g, int index, int k, int stride, int pad, int cin, int cout,
                       hq_activation_t act)
{
    hq_layer_params_t *p = params_of(g, index);
    p->kernel_h = p->kernel_w = k;
    p->stride_h = p->stride_w = stride;
    p->kernel_in = cin;
    p->kernel_out = cout;
    p->padding = HQ_PADDING_EXPLICIT;
    p->pads[0] = p->pads[1] = p->pads[2] = p->pads[3] = pad;
    p->has_bias = cout > 0;
    p->activation = act;
}

typedef struct net {
    hq_graph_t *graph;
    hq_npz_t *params;
} net_t;

/* in [13, 11, 5] -> conv1 3x3 (5->20, gathered A) relu6 -> dw 3x3 s2 hardswish [7, 6, 20]
 * -> conv2 3x3 (20->24, tapwise A) -> conv3 1x1 (24->20) + dw (elementwise_add) leaky
 * -> maxpool 2x2 s2 [3, 3, 20] -> deconv 2x2 s2 (20->8) sigmoid [6, 6, 8] -> resize
 * bilinear [9, 10, 8] -> batch_norm -> ew_mult with in2 [1, 1, 8] -> global_avg_pool
 * -> dense (8->10) -> out */
static void net_build(net_t *net)
{
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int in = test_add_layer(g, "in", HQ_LAYER_INPUT, -1);
    hq_shape_t s = test_shape4(13, 11, 5);
    assert_int_equal(hq_layer_set_output_shape(g, in, &s, NULL), HQ_OK);
    int in2 = test_add_layer(g, "in2", HQ_LAYER_INPUT, -1);
    s = test_shape4(1, 1, 8);
    assert_int_equal(hq_layer_set_output_shape(g, in2, &s, NULL), HQ_OK);
    int conv1 = test_add_layer(g, "conv1", HQ_LAYER_CONV, in);
    set_window(g, conv1, 3, 1, 1, 5, 20, HQ_ACT_RELU6);
    int dw = test_add_layer(g, "dw", HQ_LAYER_DW, conv1);
    set_window(g, dw, 3, 2, 1, 1, 20, HQ_ACT_HARDSWISH);
    params_of(g, dw)->groups = 20;
    int conv2 = test_add_layer(g, "conv2", HQ_LAYER_CONV, dw);
    set_window(g, conv2, 3, 1, 1, 20, 24, HQ_ACT_LINEAR);
    int conv3 = test_add_layer(g, "conv3", HQ_LAYER_CONV, conv2);
    set_window(g, conv3, 1, 1, 0, 24, 20, HQ_ACT_LEAKY);
    params_of(g, conv3)->activation_alpha = 0.1f;
    params_of(g, conv3)->elementwise_add = true;
    hq_error_t err = {0};
    if (hq_graph_connect(g, dw, 0, conv3, &err))
        fail_msg("connect: %s", err.message);
    int pool = test_add_layer(g, "pool", HQ_LAYER_MAXPOOL, conv3);
    set_window(g, pool, 2, 2, 0, 0, 0, HQ_ACT_LINEAR);
    int deconv = test_add_layer(g, "deconv", HQ_LAYER_DECONV, pool);
    set_window(g, deconv, 2, 2, 0, 20, 8, HQ_ACT_SIGMOID);
    int resize = test_add_layer(g, "resize", HQ_LAYER_RESIZE, deconv);
    s = test_shape4(9, 10, 8);
    assert_int_equal(hq_layer_set_output_shape(g, resize, &s, NULL), HQ_OK);
    params_of(g, resize)->resize_method = HQ_RESIZE_BILINEAR;
    params_of(g, resize)->resize_coords = HQ_RESIZE_HALF_PIXEL;
    int bn = test_add_layer(g, "bn", HQ_LAYER_BATCH_NORM, resize);
    params_of(g, bn)->epsilon = 1e-3f;
    int mult = test_add_layer(g, "mult", HQ_LAYER_EW_MULT, bn);
    if (hq_graph_connect(g, in2, 0, mult, &err))
        fail_msg("connect: %s", err.message);
    int gap = test_add_layer(g, "gap", HQ_LAYER_GLOBAL_AVG_POOL, mult);
    int fc = test_add_layer(g, "fc", HQ_LAYER_DENSE, gap);
    set_window(g, fc, 1, 1, 0, 8, 10, HQ_ACT_LINEAR);
    test_add_layer(g, "out", HQ_LAYER_OUTPUT, fc);
    if (hq_graph_finalize(g, "test.hn", &err))
        fail_msg("finalize: %s", err.message);

    hq_npz_t *p = NULL;
    assert_int_equal(hq_npz_create(&p, NULL), HQ_OK);
    test_put_filled(p, "net/conv1/kernel:0", 4, (int64_t[]){3, 3, 5, 20}, 1);
    test_put_filled(p, "net/conv1/bias:0", 1, (int64_t[]){20}, 2);
    test_put_filled(p, "net/dw/kernel:0", 4, (int64_t[]){3, 3, 1, 20}, 3);
    test_put_filled(p, "net/dw/bias:0", 1, (int64_t[]){20}, 4);
    test_put_filled(p, "net/conv2/kernel:0", 4, (int64_t[]){3, 3, 20, 24}, 5);
    test_put_filled(p, "net/conv2/bias:0", 1, (int64_t[]){24}, 6);
    test_put_filled(p, "net/conv3/kernel:0", 4, (int64_t[]){1, 1, 24, 20}, 7);
    test_put_filled(p, "net/conv3/bias:0", 1, (int64_t[]){20}, 8);
    test_put_filled(p, "net/deconv/kernel:0", 4, (int64_t[]){2, 2, 20, 8}, 9);
    test_put_filled(p, "net/deconv/bias:0", 1, (int64_t[]){8}, 10);
    test_put_filled(p, "net/bn/gamma:0", 1, (int64_t[]){8}, 11);
    test_put_filled(p, "net/bn/beta:0", 1, (int64_t[]){8}, 12);
    test_put_filled(p, "net/bn/moving_mean:0", 1, (int64_t[]){8}, 13);
    float *var = test_put_filled(p, "net/bn/moving_variance:0", 1, (int64_t[]){8}, 14);
    for (int i = 0; i < 8; i++)
        var[i] = 0.5f + fabsf(var[i]);
    test_put_filled(p, "net/fc/kernel:0", 2, (int64_t[]){8, 10}, 15);
    test_put_filled(p, "net/fc/bias:0", 1, (int64_t[]){10}, 16);
    net->graph = g;
    net->params = p;
}

static void net_free(net_t *net)
{
    hq_npz_destroy(net->params);
    hq_graph_destroy(net->graph);
}

/* Every layer's output of one run, copied out of the tap callback. */
typedef struct taps {
    float *data[MAX_LAYERS];
    int64_t count[MAX_LAYERS];
} taps_t;

static hq_status_t keep_tap(void *user, int layer, int port, const hq_shape_t *shape,
                            const float *data, hq_error_t *err)
{
    (void)err;
    taps_t *taps = user;
    assert_true(layer < MAX_LAYERS && port == 0);
    int64_t n = 1;
    for (int d = 0; d < shape->ndim; d++)
        n *= shape->dims[d];
    free(taps->data[layer]);
    taps->data[layer] = malloc((size_t)n * sizeof(float));
    assert_non_null(taps->data[layer]);
    memcpy(taps->data[layer], data, (size_t)n * sizeof(float));
    taps->count[layer] = n;
    return HQ_OK;
}

static void taps_free(taps_t *taps)
{
    for (int i = 0; i < MAX_LAYERS; i++)
        free(taps->data[i]);
    memset(taps, 0, sizeof *taps);
}

/* An emulator of net (native target) on the kernel set `set`; the test fails when it cannot be
 * made. */
static hq_emulator_t *emulator_of(const net_t *net, const hqi_emu_kernel_set_t *set)
{
    hq_emulator_t *emu = NULL;
    hq_error_t err = {0};
    if (hqi_emulator_create_with_set(net->graph, net->params, HQ_TARGET_NATIVE, "t", set, &emu,
                                     &err))
        fail_msg("create: %s", err.message);
    return emu;
}

static void run_taps(const net_t *net, const hqi_emu_kernel_set_t *set, int threads, taps_t *taps)
{
    hq_emulator_t *emu = emulator_of(net, set);
    hq_error_t err = {0};
    assert_int_equal(hq_emulator_set_threads(emu, threads, &err), HQ_OK);
    float x[BATCH * 13 * 11 * 5], x2[BATCH * 8], y[BATCH * 10];
    test_fill(x, BATCH * 13 * 11 * 5, 100);
    test_fill(x2, BATCH * 8, 101);
    const float *inputs[2] = {x, x2};
    float *outputs[1] = {y};
    if (hq_emulator_run(emu, BATCH, inputs, outputs, keep_tap, taps, &err))
        fail_msg("run: %s", err.message);
    hq_emulator_destroy(emu);
}

static void every_layer_of_the_fast_set_matches_the_reference_set(void **state)
{
    (void)state;
    net_t net;
    net_build(&net);
    taps_t ref = {0}, fast = {0};
    run_taps(&net, hqi_emu_ref_set(), 1, &ref);
    run_taps(&net, hqi_emu_fast_set(), 1, &fast);
    int compared = 0;
    for (int layer = 0; layer < MAX_LAYERS; layer++) {
        if (!ref.data[layer])
            continue;
        const char *name = hq_graph_layer(net.graph, layer)->name;
        assert_int_equal(ref.count[layer], fast.count[layer]);
        for (int64_t i = 0; i < ref.count[layer]; i++) {
            double want = ref.data[layer][i], got = fast.data[layer][i];
            if (!(fabs(got - want) <= HQI_FAST_TOLERANCE * (1.0 + fabs(want))))
                fail_msg("%s: element %lld: fast %.9g, reference %.9g", name, (long long)i, got,
                         want);
        }
        compared++;
    }
    assert_int_equal(compared, hq_graph_layer_count(net.graph));
    taps_free(&ref);
    taps_free(&fast);
    net_free(&net);
}

static void the_fast_set_gives_the_same_bits_on_one_two_and_three_threads(void **state)
{
    (void)state;
    net_t net;
    net_build(&net);
    taps_t one = {0}, more = {0};
    /* every layer of this small network is below the work the executor hands to the pool:
     * hand them all to it, and also check the default (serial small layers) */
    run_taps(&net, hqi_emu_fast_set(), 1, &one);
    for (int threads = 2; threads <= 4; threads++) {
        if (threads <= 3)
            setenv("HQ_EMULATE_PARALLEL_ALL", "1", 1);
        run_taps(&net, hqi_emu_fast_set(), threads == 4 ? 2 : threads, &more);
        unsetenv("HQ_EMULATE_PARALLEL_ALL");
        for (int layer = 0; layer < MAX_LAYERS; layer++)
            if (one.data[layer] &&
                memcmp(one.data[layer], more.data[layer], (size_t)one.count[layer] * sizeof(float)))
                fail_msg("%s: %d threads differ from 1", hq_graph_layer(net.graph, layer)->name,
                         threads);
        taps_free(&more);
    }
    taps_free(&one);
    net_free(&net);
}

static void a_batch_gives_the_same_bits_as_its_samples_one_by_one(void **state)
{
    (void)state;
    net_t net;
    net_build(&net);
    hq_emulator_t *emu = emulator_of(&net, hqi_emu_fast_set());
    assert_int_equal(hq_emulator_set_threads(emu, 2, NULL), HQ_OK);
    float x[BATCH * 13 * 11 * 5], x2[BATCH * 8], whole[BATCH * 10], single[BATCH * 10];
    test_fill(x, BATCH * 13 * 11 * 5, 200);
    test_fill(x2, BATCH * 8, 201);
    const float *inputs[2] = {x, x2};
    float *outputs[1] = {whole};
    assert_int_equal(hq_emulator_run(emu, BATCH, inputs, outputs, NULL, NULL, NULL), HQ_OK);
    for (int n = 0; n < BATCH; n++) {
        const float *one[2] = {x + n * 13 * 11 * 5, x2 + n * 8};
        float *out[1] = {single + n * 10};
        assert_int_equal(hq_emulator_run(emu, 1, one, out, NULL, NULL, NULL), HQ_OK);
    }
    assert_memory_equal(whole, single, sizeof whole);
    hq_emulator_destroy(emu);
    net_free(&net);
}

static hq_status_t ignore_tap(void *user, int layer, int port, const hq_shape_t *shape,
                              const float *data, hq_error_t *err)
{
    (void)user, (void)layer, (void)port, (void)shape, (void)data, (void)err;
    return HQ_OK;
}

/* An untapped run goes through the network a few samples at a time (HQ_EMULATE_CHUNK fixes how
 * many; a tapped run is one pass): the same bits, and the peak of one pass. */
static void passes_of_a_few_samples_give_the_same_bits_as_one_pass(void **state)
{
    (void)state;
    net_t net;
    net_build(&net);
    hq_emulator_t *emu = emulator_of(&net, hqi_emu_fast_set());
    assert_int_equal(hq_emulator_set_threads(emu, 2, NULL), HQ_OK);
    float x[BATCH * 13 * 11 * 5], x2[BATCH * 8], whole[BATCH * 10], parts[BATCH * 10];
    test_fill(x, BATCH * 13 * 11 * 5, 300);
    test_fill(x2, BATCH * 8, 301);
    const float *inputs[2] = {x, x2};
    float *outputs[1] = {whole};
    assert_int_equal(hq_emulator_run(emu, BATCH, inputs, outputs, ignore_tap, NULL, NULL), HQ_OK);
    const int64_t peak_one = hq_emulator_peak_bytes(emu, 1);
    /* with the threads running whole samples each (the default) and with every pass split by
     * rows (HQ_EMULATE_LANES=0, where the peak is that of one pass) */
    for (int lanes = 0; lanes <= 1; lanes++) {
        if (!lanes)
            setenv("HQ_EMULATE_LANES", "0", 1);
        for (int chunk = 1; chunk < BATCH; chunk++) {
            char text[8];
            snprintf(text, sizeof text, "%d", chunk);
            setenv("HQ_EMULATE_CHUNK", text, 1);
            memset(parts, 0xff, sizeof parts);
            outputs[0] = parts;
            assert_int_equal(hq_emulator_run(emu, BATCH, inputs, outputs, NULL, NULL, NULL),
                             HQ_OK);
            assert_memory_equal(whole, parts, sizeof whole);
            if (lanes)
                continue;
            if (chunk == 1)
                assert_int_equal(hq_emulator_peak_bytes(emu, BATCH), peak_one);
            else
                assert_true(hq_emulator_peak_bytes(emu, BATCH) > peak_one);
        }
        unsetenv("HQ_EMULATE_LANES");
    }
    unsetenv("HQ_EMULATE_CHUNK");
    hq_emulator_destroy(emu);
    net_free(&net);
}

/* An untapped batch of at least as many samples as threads runs whole samples on each thread
 * (lanes), the samples left over split by rows: the same bits as one thread for every batch
 * and thread count, each lane on buffers of its own, and every layer's run counted once per
 * pass in the per-type calls. */
static void threads_running_whole_samples_give_the_same_bits_as_one_thread(void **state)
{
    (void)state;
    enum { MOST = 7 };
    net_t net;
    net_build(&net);
    hq_emulator_t *emu = emulator_of(&net, hqi_emu_fast_set());
    float x[MOST * 13 * 11 * 5], x2[MOST * 8], one[MOST * 10], more[MOST * 10];
    test_fill(x, MOST * 13 * 11 * 5, 400);
    test_fill(x2, MOST * 8, 401);
    const float *inputs[2] = {x, x2};
    for (int64_t batch = 1; batch <= MOST; batch++) {
        float *outputs[1] = {one};
        assert_int_equal(hq_emulator_set_threads(emu, 1, NULL), HQ_OK);
        assert_int_equal(hq_emulator_run(emu, batch, inputs, outputs, NULL, NULL, NULL), HQ_OK);
        for (int threads = 2; threads <= 3; threads++)
            for (int chunk = 0; chunk <= 2; chunk++) {
                char text[8];
                snprintf(text, sizeof text, "%d", chunk);
                if (chunk)
                    setenv("HQ_EMULATE_CHUNK", text, 1);
                assert_int_equal(hq_emulator_set_threads(emu, threads, NULL), HQ_OK);
                hq_emulator_reset_stats(emu);
                memset(more, 0xff, sizeof more);
                outputs[0] = more;
                assert_int_equal(hq_emulator_run(emu, batch, inputs, outputs, NULL, NULL, NULL),
                                 HQ_OK);
                unsetenv("HQ_EMULATE_CHUNK");
                if (memcmp(one, more, (size_t)batch * 10 * sizeof(float)))
                    fail_msg("batch %lld, %d threads, chunk %d: differs from 1 thread",
                             (long long)batch, threads, chunk);
                int64_t calls = 0;
                hq_emulator_type_seconds(emu, HQ_LAYER_DENSE, &calls);
                /* the one dense layer runs once per pass: at least once, at most per sample */
                assert_true(calls >= 1 && calls <= batch);
            }
    }
    /* a batch of 4 on 2 threads runs 2 samples a thread: twice the buffers of one thread */
    assert_int_equal(hq_emulator_set_threads(emu, 1, NULL), HQ_OK);
    setenv("HQ_EMULATE_CHUNK", "1", 1);
    const int64_t slots_one = hq_emulator_peak_bytes(emu, 4) - hq_emulator_scratch_bytes(emu, 4);
    assert_int_equal(hq_emulator_set_threads(emu, 2, NULL), HQ_OK);
    assert_int_equal(hq_emulator_peak_bytes(emu, 4) - hq_emulator_scratch_bytes(emu, 4),
                     2 * slots_one);
    unsetenv("HQ_EMULATE_CHUNK");
    hq_emulator_destroy(emu);
    net_free(&net);
}

static void peak_bytes_count_the_planned_scratch_per_thread(void **state)
{
    (void)state;
    net_t net;
    net_build(&net);
    hq_emulator_t *ref = emulator_of(&net, hqi_emu_ref_set());
    hq_emulator_t *fast = emulator_of(&net, hqi_emu_fast_set());
    assert_int_equal(hq_emulator_scratch_bytes(ref, 4), 0);
    assert_int_equal(hq_emulator_set_threads(ref, 1, NULL), HQ_OK);
    assert_int_equal(hq_emulator_set_threads(fast, 1, NULL), HQ_OK);
    /* the largest need: conv1 gathers MC rows x (3*3*5 = 45) floats per thread; conv2
     * (Winograd F(4x4, 3x3), 20 -> 24 channels) holds 36 transformed values of its tiles'
     * inputs (20) and products (24 padded to 32) */
    int64_t one = hq_emulator_scratch_bytes(fast, 4);
    int64_t gathered = HQI_FAST_MC * 45, winograd = 36 * HQI_FAST_MC * (20 + 32);
    assert_int_equal(one, (gathered > winograd ? gathered : winograd) * (int64_t)sizeof(float));
    assert_int_equal(hq_emulator_peak_bytes(fast, 4), hq_emulator_peak_bytes(ref, 4) + one);
    assert_int_equal(hq_emulator_set_threads(fast, 3, NULL), HQ_OK);
    assert_int_equal(hq_emulator_threads(fast), 3);
    assert_int_equal(hq_emulator_scratch_bytes(fast, 4), 3 * one);
    hq_error_t err = {0};
    assert_int_equal(hq_emulator_set_threads(fast, 257, &err), HQ_ERR_ARGUMENT);
    assert_int_equal(hq_emulator_set_threads(fast, -1, &err), HQ_ERR_ARGUMENT);
    hq_emulator_destroy(ref);
    hq_emulator_destroy(fast);
    net_free(&net);
}

static void layer_type_seconds_count_every_layer_run(void **state)
{
    (void)state;
    net_t net;
    net_build(&net);
    taps_t taps = {0};
    hq_emulator_t *emu = NULL;
    assert_int_equal(hq_emulator_create(net.graph, net.params, HQ_TARGET_NATIVE, "t", &emu, NULL),
                     HQ_OK);
    float x[13 * 11 * 5] = {0}, x2[8] = {0};
    const float *inputs[2] = {x, x2};
    for (int r = 0; r < 2; r++)
        assert_int_equal(hq_emulator_run(emu, 1, inputs, NULL, keep_tap, &taps, NULL), HQ_OK);
    int64_t calls = 0;
    assert_true(hq_emulator_type_seconds(emu, HQ_LAYER_CONV, &calls) >= 0.0);
    assert_int_equal(calls, 6); /* 3 convs, 2 runs */
    hq_emulator_type_seconds(emu, HQ_LAYER_DENSE, &calls);
    assert_int_equal(calls, 2);
    hq_emulator_reset_stats(emu);
    assert_true(hq_emulator_type_seconds(emu, HQ_LAYER_CONV, &calls) == 0.0);
    assert_int_equal(calls, 0);
    assert_true(hq_emulator_type_seconds(emu, HQ_LAYER_TYPE_COUNT, &calls) == 0.0);
    hq_emulator_destroy(emu);
    taps_free(&taps);
    net_free(&net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_layer_of_the_fast_set_matches_the_reference_set),
        cmocka_unit_test(the_fast_set_gives_the_same_bits_on_one_two_and_three_threads),
        cmocka_unit_test(a_batch_gives_the_same_bits_as_its_samples_one_by_one),
        cmocka_unit_test(passes_of_a_few_samples_give_the_same_bits_as_one_pass),
        cmocka_unit_test(threads_running_whole_samples_give_the_same_bits_as_one_thread),
        cmocka_unit_test(peak_bytes_count_the_planned_scratch_per_thread),
        cmocka_unit_test(layer_type_seconds_count_every_layer_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
