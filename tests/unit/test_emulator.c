/* test_emulator.c — the float graph executor on graphs built with the graph
 * API: results against direct computations written in the test, taps, batching,
 * params validation, the buffer plan, and archive targets. */
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

#include "emulate/emulator_internal.h"

#include "hq/archive.h"
#include "hq/emulate.h"
#include "hq/graph.h"
#include "hq/tensor.h"
#include "test_graphs.h"

/* ---- building graphs
 * -------------------------------------------------------------------- */

static hq_emulator_t *create_ok(const hq_graph_t *g, const hq_npz_t *params)
{
    hq_emulator_t *emu = NULL;
    hq_error_t err = {0};
    if (hq_emulator_create(g, params, HQ_TARGET_NATIVE, "test", &emu, &err))
        fail_msg("create: %s", err.message);
    return emu;
}

static void assert_close(const float *got, const double *want, int64_t n, double tol)
{
    for (int64_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - want[i]) <= tol * (1.0 + fabs(want[i]))))
            fail_msg("element %lld: got %.9g, want %.9g", (long long)i, (double)got[i], want[i]);
}

/* ---- conv -> maxpool -> dense
 * ----------------------------------------------------------- */

/* input [4,4,2] -> conv 3x3 pad 1 (2->3) relu -> maxpool 2x2 -> dense (12->5)
 * -> output */
typedef struct cnn {
    hq_graph_t *graph;
    hq_npz_t *params;
    const float *k1, *b1, *k2, *b2;
    int in, conv, pool, fc, out;
} cnn_t;

static void cnn_build(cnn_t *c)
{
    memset(c, 0, sizeof *c);
    assert_int_equal(hq_graph_create("net", &c->graph, NULL), HQ_OK);
    hq_graph_t *g = c->graph;
    c->in = test_add_input(g, "input_layer1", 4, 4, 2);
    c->conv = test_add_layer(g, "conv1", HQ_LAYER_CONV, c->in);
    test_set_conv(g, c->conv, 3, 2, 3, 1, HQ_ACT_RELU);
    c->pool = test_add_layer(g, "maxpool1", HQ_LAYER_MAXPOOL, c->conv);
    hq_layer_params_t *pp = &hq_graph_layer_mut(g, c->pool)->params;
    pp->kernel_h = pp->kernel_w = 2;
    pp->stride_h = pp->stride_w = 2;
    c->fc = test_add_layer(g, "fc1", HQ_LAYER_DENSE, c->pool);
    hq_layer_params_t *fp = &hq_graph_layer_mut(g, c->fc)->params;
    fp->kernel_in = 12;
    fp->kernel_out = 5;
    fp->has_bias = true;
    c->out = test_add_layer(g, "output_layer1", HQ_LAYER_OUTPUT, c->fc);
    test_finalize(g);
    assert_int_equal(hq_npz_create(&c->params, NULL), HQ_OK);
    c->k1 = test_put_filled(c->params, "net/conv1/kernel:0", 4, (int64_t[]){3, 3, 2, 3}, 1);
    c->b1 = test_put_filled(c->params, "net/conv1/bias:0", 1, (int64_t[]){3}, 2);
    c->k2 = test_put_filled(c->params, "net/fc1/kernel:0", 2, (int64_t[]){12, 5}, 3);
    c->b2 = test_put_filled(c->params, "net/fc1/bias:0", 1, (int64_t[]){5}, 4);
}

static void cnn_free(cnn_t *c)
{
    hq_npz_destroy(c->params);
    hq_graph_destroy(c->graph);
}

/* The network computed directly, one sample [4,4,2] -> 5 logits. */
static void cnn_direct(const cnn_t *c, const float *x, double *logits)
{
    double conv[4][4][3], pool[2][2][3];
    for (int y = 0; y < 4; y++)
        for (int xx = 0; xx < 4; xx++)
            for (int o = 0; o < 3; o++) {
                double acc = c->b1[o];
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++)
                        for (int i = 0; i < 2; i++) {
                            int sy = y + ky - 1, sx = xx + kx - 1;
                            if (sy >= 0 && sy < 4 && sx >= 0 && sx < 4)
                                acc += x[(sy * 4 + sx) * 2 + i] *
                                       c->k1[((ky * 3 + kx) * 2 + i) * 3 + o];
                        }
                conv[y][xx][o] = acc > 0 ? acc : 0;
            }
    for (int y = 0; y < 2; y++)
        for (int xx = 0; xx < 2; xx++)
            for (int o = 0; o < 3; o++)
                pool[y][xx][o] =
                    fmax(fmax(conv[2 * y][2 * xx][o], conv[2 * y][2 * xx + 1][o]),
                         fmax(conv[2 * y + 1][2 * xx][o], conv[2 * y + 1][2 * xx + 1][o]));
    for (int j = 0; j < 5; j++) {
        double acc = c->b2[j];
        for (int i = 0; i < 12; i++)
            acc += (&pool[0][0][0])[i] * c->k2[i * 5 + j];
        logits[j] = acc;
    }
}

/* ---- channel shuffle
 * -------------------------------------------------------------------- */

/* ONNX's channel shuffle of one NHWC pixel row set, as numpy does it: NCHW Reshape [N, g, C/g,
 * H, W], Transpose [0, 2, 1, 3, 4], Reshape back; output channel (q, p) of [C/g, g] is q*g + p. */
static void onnx_shuffle(const float *x, int64_t pixels, int64_t c, int64_t g, double *y)
{
    for (int64_t i = 0; i < pixels; i++)
        for (int64_t p = 0; p < g; p++)
            for (int64_t q = 0; q < c / g; q++)
                y[i * c + q * g + p] = x[i * c + p * (c / g) + q];
}

static void channel_shuffle_graph_matches_onnx_with_either_kernel_set(void **state)
{
    (void)state;
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int in = test_add_input(g, "in", 3, 5, 12);
    int shuffle = test_add_layer(g, "shuffle", HQ_LAYER_CHANNEL_SHUFFLE, in);
    hq_graph_layer_mut(g, shuffle)->params.groups = 3;
    test_add_layer(g, "out", HQ_LAYER_OUTPUT, shuffle);
    test_finalize(g);
    hq_npz_t *params = NULL;
    assert_int_equal(hq_npz_create(&params, NULL), HQ_OK);
    float x[2 * 180], y[2 * 180];
    double want[2 * 180];
    test_fill(x, 2 * 180, 21);
    onnx_shuffle(x, 2 * 15, 12, 3, want);
    for (int reference = 0; reference < 2; reference++) {
        if (reference)
            setenv("HQ_EMULATE_KERNELS", "reference", 1);
        hq_emulator_t *emu = create_ok(g, params);
        unsetenv("HQ_EMULATE_KERNELS");
        const float *inputs[1] = {x};
        float *outputs[1] = {y};
        assert_int_equal(hq_emulator_run(emu, 2, inputs, outputs, NULL, NULL, NULL), HQ_OK);
        assert_close(y, want, 2 * 180, 0);
        hq_emulator_destroy(emu);
    }
    hq_npz_destroy(params);
    hq_graph_destroy(g);
}

static void conv_relu_maxpool_dense_matches_a_direct_computation(void **state)
{
    (void)state;
    cnn_t c;
    cnn_build(&c);
    hq_emulator_t *emu = create_ok(c.graph, c.params);
    assert_int_equal(hq_emulator_input_size(emu, 0), 32);
    assert_int_equal(hq_emulator_output_size(emu, 0), 5);
    float x[3 * 32], y[3 * 5];
    test_fill(x, 3 * 32, 7);
    for (int i = 0; i < 3 * 32; i++)
        x[i] *= 4.0f;
    const float *inputs[1] = {x};
    float *outputs[1] = {y};
    hq_error_t err = {0};
    if (hq_emulator_run(emu, 3, inputs, outputs, NULL, NULL, &err))
        fail_msg("run: %s", err.message);
    double want[3 * 5];
    for (int n = 0; n < 3; n++)
        cnn_direct(&c, x + n * 32, want + n * 5);
    assert_close(y, want, 15, 1e-5);
    hq_emulator_destroy(emu);
    cnn_free(&c);
}

typedef struct tap_log {
    int calls[16];
    int64_t batch_seen[16];
    int ports[16];
} tap_log_t;

static hq_status_t log_tap(void *user, int layer, int port, const hq_shape_t *shape,
                           const float *data, hq_error_t *err)
{
    (void)err;
    tap_log_t *log = user;
    assert_non_null(data);
    log->calls[layer]++;
    log->ports[layer] |= 1 << port;
    log->batch_seen[layer] = shape->dims[0];
    return HQ_OK;
}

static void taps_see_every_layer_once_per_batch_with_the_batch_in_the_shape(void **state)
{
    (void)state;
    cnn_t c;
    cnn_build(&c);
    hq_emulator_t *emu = create_ok(c.graph, c.params);
    float x[2 * 32];
    test_fill(x, 64, 9);
    const float *inputs[1] = {x};
    tap_log_t log;
    memset(&log, 0, sizeof log);
    assert_int_equal(hq_emulator_run(emu, 2, inputs, NULL, log_tap, &log, NULL), HQ_OK);
    assert_int_equal(hq_emulator_run(emu, 2, inputs, NULL, log_tap, &log, NULL), HQ_OK);
    for (int l = 0; l < hq_graph_layer_count(c.graph); l++) {
        assert_int_equal(log.calls[l], 2);
        assert_int_equal(log.batch_seen[l], 2);
    }
    hq_emulator_destroy(emu);
    cnn_free(&c);
}

static hq_status_t failing_tap(void *user, int layer, int port, const hq_shape_t *shape,
                               const float *data, hq_error_t *err)
{
    (void)user, (void)port, (void)shape, (void)data;
    if (layer == 1) {
        snprintf(err->message, sizeof err->message, "tap refused");
        err->status = HQ_ERR_IO;
        return HQ_ERR_IO;
    }
    return HQ_OK;
}

static void a_failing_tap_stops_the_run_with_its_status(void **state)
{
    (void)state;
    cnn_t c;
    cnn_build(&c);
    hq_emulator_t *emu = create_ok(c.graph, c.params);
    float x[32] = {0};
    const float *inputs[1] = {x};
    hq_error_t err = {0};
    assert_int_equal(hq_emulator_run(emu, 1, inputs, NULL, failing_tap, NULL, &err), HQ_ERR_IO);
    assert_string_equal(err.message, "tap refused");
    hq_emulator_destroy(emu);
    cnn_free(&c);
}

static void batch_size_does_not_change_results(void **state)
{
    (void)state;
    cnn_t c;
    cnn_build(&c);
    hq_emulator_t *emu = create_ok(c.graph, c.params);
    float x[7 * 32], whole[7 * 5], single[7 * 5];
    test_fill(x, 7 * 32, 11);
    const float *inputs[1] = {x};
    float *outputs[1] = {whole};
    assert_int_equal(hq_emulator_run(emu, 7, inputs, outputs, NULL, NULL, NULL), HQ_OK);
    for (int n = 0; n < 7; n++) {
        const float *one_in[1] = {x + n * 32};
        float *one_out[1] = {single + n * 5};
        assert_int_equal(hq_emulator_run(emu, 1, one_in, one_out, NULL, NULL, NULL), HQ_OK);
    }
    assert_memory_equal(whole, single, sizeof whole);
    hq_emulator_destroy(emu);
    cnn_free(&c);
}

typedef struct collect {
    float out[7 * 5];
    int batches;
    int64_t next;
} collect_t;

static hq_status_t collect_batch(void *user, int64_t first, int64_t count,
                                 const float *const *outputs, hq_error_t *err)
{
    (void)err;
    collect_t *c = user;
    assert_int_equal(first, c->next);
    memcpy(c->out + first * 5, outputs[0], (size_t)count * 5 * sizeof(float));
    c->next = first + count;
    c->batches++;
    return HQ_OK;
}

static void streaming_a_dataset_in_batches_of_any_size_gives_the_same_outputs(void **state)
{
    (void)state;
    cnn_t c;
    cnn_build(&c);
    hq_emulator_t *emu = create_ok(c.graph, c.params);
    char dir[] = "/tmp/test_emulator_XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/data.npy", dir);
    int64_t shape[4] = {7, 4, 4, 2};
    hq_tensor_t *t = NULL;
    assert_int_equal(hq_tensor_create(HQ_DTYPE_FLOAT32, 4, shape, &t, NULL), HQ_OK);
    test_fill(t->data, 7 * 32, 13);
    assert_int_equal(hq_npy_write_file(path, t, NULL), HQ_OK);
    double want[7 * 5];
    for (int n = 0; n < 7; n++)
        cnn_direct(&c, (const float *)t->data + n * 32, want + n * 5);
    hq_dataset_t *ds = NULL;
    hq_error_t err = {0};
    if (hq_dataset_open(path, c.graph, &ds, &err))
        fail_msg("dataset: %s", err.message);
    static const int64_t sizes[] = {1, 3, 7, 100};
    static const int batches[] = {7, 3, 1, 1};
    collect_t first;
    memset(&first, 0, sizeof first);
    for (int s = 0; s < 4; s++) {
        collect_t got;
        memset(&got, 0, sizeof got);
        if (hq_emulator_run_dataset(emu, ds, sizes[s], collect_batch, NULL, &got, &err))
            fail_msg("run_dataset: %s", err.message);
        assert_int_equal(got.batches, batches[s]);
        assert_int_equal(got.next, 7);
        assert_close(got.out, want, 35, 1e-5);
        if (s == 0)
            first = got;
        else
            assert_memory_equal(first.out, got.out, sizeof got.out);
    }
    assert_int_equal(hq_emulator_run_dataset(emu, ds, 0, NULL, NULL, NULL, NULL), HQ_ERR_ARGUMENT);
    hq_dataset_destroy(ds);
    hq_tensor_destroy(t);
    unlink(path);
    rmdir(dir);
    hq_emulator_destroy(emu);
    cnn_free(&c);
}

/* ---- params validation
 * ------------------------------------------------------------------ */

static void missing_params_are_refused_naming_the_layer_and_key(void **state)
{
    (void)state;
    cnn_t c;
    cnn_build(&c);
    hq_emulator_t *emu = NULL;
    hq_error_t err = {0};
    assert_int_equal(hq_npz_remove(c.params, "net/fc1/bias:0", NULL), HQ_OK);
    assert_int_equal(hq_emulator_create(c.graph, c.params, HQ_TARGET_NATIVE, "m.har", &emu, &err),
                     HQ_ERR_NOT_FOUND);
    assert_null(emu);
    assert_string_equal(err.message, "m.har: layer 'net/fc1': params key 'net/fc1/bias:0' missing");
    assert_int_equal(hq_emulator_create(c.graph, NULL, HQ_TARGET_NATIVE, "m.har", &emu, &err),
                     HQ_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "'net/conv1/kernel:0' missing"));
    cnn_free(&c);
}

static void a_misshapen_kernel_is_refused_with_both_shapes(void **state)
{
    (void)state;
    cnn_t c;
    cnn_build(&c);
    test_put_filled(c.params, "net/conv1/kernel:0", 4, (int64_t[]){3, 3, 2, 4}, 1);
    hq_emulator_t *emu = NULL;
    hq_error_t err = {0};
    assert_int_equal(hq_emulator_create(c.graph, c.params, HQ_TARGET_NATIVE, "m.har", &emu, &err),
                     HQ_ERR_INVALID);
    assert_string_equal(err.message, "m.har: layer 'net/conv1': params key 'net/conv1/kernel:0' "
                                     "has shape [3, 3, 2, 4], expected [3, 3, 2, 3]");
    assert_null(emu);
    cnn_free(&c);
}

static void float64_params_are_converted(void **state)
{
    (void)state;
    cnn_t c;
    cnn_build(&c);
    float x[32], want_out[5], got_out[5];
    test_fill(x, 32, 5);
    const float *inputs[1] = {x};
    float *outputs[1] = {want_out};
    hq_emulator_t *emu = create_ok(c.graph, c.params);
    assert_int_equal(hq_emulator_run(emu, 1, inputs, outputs, NULL, NULL, NULL), HQ_OK);
    hq_emulator_destroy(emu);
    hq_tensor_t *wide = NULL;
    assert_int_equal(
        hq_tensor_convert(hq_npz_get(c.params, "net/fc1/kernel:0"), HQ_DTYPE_FLOAT64, &wide, NULL),
        HQ_OK);
    assert_int_equal(hq_npz_put(c.params, "net/fc1/kernel:0", wide, NULL), HQ_OK);
    emu = create_ok(c.graph, c.params);
    outputs[0] = got_out;
    assert_int_equal(hq_emulator_run(emu, 1, inputs, outputs, NULL, NULL, NULL), HQ_OK);
    assert_memory_equal(want_out, got_out, sizeof got_out);
    hq_emulator_destroy(emu);
    cnn_free(&c);
}

static void a_layer_type_without_a_kernel_is_refused_naming_the_layer(void **state)
{
    (void)state;
    cnn_t c;
    cnn_build(&c);
    hqi_emu_kernel_fn kernels[HQ_LAYER_TYPE_COUNT];
    memcpy(kernels, hqi_emu_ref_kernels, sizeof kernels);
    kernels[HQ_LAYER_MAXPOOL] = NULL;
    hq_emulator_t *emu = NULL;
    hq_error_t err = {0};
    assert_int_equal(hqi_emulator_create_with_kernels(c.graph, c.params, HQ_TARGET_NATIVE, "m.har",
                                                      kernels, &emu, &err),
                     HQ_ERR_UNSUPPORTED);
    assert_string_equal(err.message,
                        "m.har: layer 'net/maxpool1': type 'maxpool' cannot be emulated");
    assert_null(emu);
    kernels[HQ_LAYER_MAXPOOL] = hqi_emu_ref_kernels[HQ_LAYER_MAXPOOL];
    assert_int_equal(hqi_emulator_create_with_kernels(c.graph, c.params, HQ_TARGET_NATIVE, "m.har",
                                                      kernels, &emu, &err),
                     HQ_OK);
    hq_emulator_destroy(emu);
    cnn_free(&c);
}

static void a_batch_below_one_and_missing_inputs_are_refused(void **state)
{
    (void)state;
    cnn_t c;
    cnn_build(&c);
    hq_emulator_t *emu = create_ok(c.graph, c.params);
    float x[32] = {0};
    const float *inputs[1] = {x};
    const float *none[1] = {NULL};
    assert_int_equal(hq_emulator_run(emu, 0, inputs, NULL, NULL, NULL, NULL), HQ_ERR_ARGUMENT);
    assert_int_equal(hq_emulator_run(emu, 1, NULL, NULL, NULL, NULL, NULL), HQ_ERR_ARGUMENT);
    hq_error_t err = {0};
    assert_int_equal(hq_emulator_run(emu, 1, none, NULL, NULL, NULL, &err), HQ_ERR_ARGUMENT);
    assert_non_null(strstr(err.message, "input layer 'net/input_layer1'"));
    hq_emulator_destroy(emu);
    cnn_free(&c);
}

static void an_unfinalized_graph_is_refused(void **state)
{
    (void)state;
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    test_add_input(g, "in", 2, 2, 1);
    hq_emulator_t *emu = NULL;
    assert_int_equal(hq_emulator_create(g, NULL, HQ_TARGET_NATIVE, "x", &emu, NULL), HQ_ERR_STATE);
    assert_null(emu);
    hq_graph_destroy(g);
}

/* ---- the buffer plan
 * -------------------------------------------------------------------- */

static void the_planned_peak_is_below_the_sum_of_activations_on_a_chain(void **state)
{
    (void)state;
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int prev = test_add_input(g, "in", 8, 8, 4);
    char name[16];
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof name, "act%d", i);
        prev = test_add_layer(g, name, HQ_LAYER_ACTIVATION, prev);
        hq_graph_layer_mut(g, prev)->params.activation = i % 2 ? HQ_ACT_RELU : HQ_ACT_TANH;
    }
    test_add_layer(g, "out", HQ_LAYER_OUTPUT, prev);
    test_finalize(g);
    hq_emulator_t *emu = create_ok(g, NULL);
    int64_t one = 8 * 8 * 4 * (int64_t)sizeof(float);
    int64_t sum = one * 9; /* eight activations and the output */
    int64_t peak = hq_emulator_peak_bytes(emu, 1);
    assert_true(peak >= 2 * one); /* a layer's input and output are alive together */
    assert_true(peak <= 2 * one);
    assert_true(peak < sum);
    /* a batch runs in passes of a few samples (here, without weights, one: docs/emulation.md)
     * and holds the buffers of one pass; forced to one pass of 5, five times as much */
    assert_int_equal(hq_emulator_set_threads(emu, 1, NULL), HQ_OK);
    assert_int_equal(hq_emulator_peak_bytes(emu, 5), peak);
    setenv("HQ_EMULATE_CHUNK", "5", 1);
    assert_int_equal(hq_emulator_peak_bytes(emu, 5), 5 * peak);
    /* on 2 threads each runs whole samples on buffers of its own: two passes' worth, unless a
     * pass must hold more samples than a thread's share (then one pass split by rows) */
    assert_int_equal(hq_emulator_set_threads(emu, 2, NULL), HQ_OK);
    assert_int_equal(hq_emulator_peak_bytes(emu, 5), 5 * peak);
    unsetenv("HQ_EMULATE_CHUNK");
    assert_int_equal(hq_emulator_peak_bytes(emu, 5), 2 * peak);
    assert_int_equal(hq_emulator_peak_bytes(emu, 1), peak);
    assert_int_equal(hq_emulator_peak_bytes(emu, 0), 0);
    /* and the values are still right: tanh then relu, alternating */
    float x[256], y[256];
    test_fill(x, 256, 3);
    const float *inputs[1] = {x};
    float *outputs[1] = {y};
    assert_int_equal(hq_emulator_run(emu, 1, inputs, outputs, NULL, NULL, NULL), HQ_OK);
    for (int i = 0; i < 256; i++) {
        double v = x[i];
        for (int k = 0; k < 8; k++)
            v = k % 2 ? (v > 0 ? v : 0) : tanh(v);
        assert_true(fabs(y[i] - v) < 1e-6);
    }
    hq_emulator_destroy(emu);
    hq_graph_destroy(g);
}

static void a_residual_branch_keeps_its_input_alive_until_the_add(void **state)
{
    (void)state;
    /* in -> conv 1x1 (x2, bias 1) -> ew_add(in, conv) -> out */
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int in = test_add_input(g, "in", 2, 2, 1);
    int conv = test_add_layer(g, "conv", HQ_LAYER_CONV, in);
    test_set_conv(g, conv, 1, 1, 1, 0, HQ_ACT_LINEAR);
    int sum = test_add_layer(g, "add", HQ_LAYER_EW_ADD, -1);
    test_connect(g, in, 0, sum);
    test_connect(g, conv, 0, sum);
    test_add_layer(g, "out", HQ_LAYER_OUTPUT, sum);
    test_finalize(g);
    hq_npz_t *params = NULL;
    assert_int_equal(hq_npz_create(&params, NULL), HQ_OK);
    float *k = test_put_filled(params, "net/conv/kernel:0", 4, (int64_t[]){1, 1, 1, 1}, 0);
    float *b = test_put_filled(params, "net/conv/bias:0", 1, (int64_t[]){1}, 0);
    k[0] = 2.0f;
    b[0] = 1.0f;
    hq_emulator_t *emu = create_ok(g, params);
    float x[4] = {1, 2, 3, -4}, y[4];
    const float *inputs[1] = {x};
    float *outputs[1] = {y};
    assert_int_equal(hq_emulator_run(emu, 1, inputs, outputs, NULL, NULL, NULL), HQ_OK);
    float want[4] = {4, 7, 10, -11}; /* x + 2x + 1 */
    assert_memory_equal(y, want, sizeof want);
    hq_emulator_destroy(emu);
    hq_npz_destroy(params);
    hq_graph_destroy(g);
}

/* subset runs: conv's output replaced by 10 + x, the other branch held from presets */
static hq_status_t replace_conv_tap(void *user, int layer, int port, const hq_shape_t *shape,
                                    const float *data, hq_error_t *err)
{
    (void)port;
    (void)err;
    const int *conv = user;
    if (layer == *conv)
        for (int64_t i = 0; i < shape->dims[0] * 4; i++)
            ((float *)data)[i] += 10.0f;
    return HQ_OK;
}

static const float *preset_side(void *user, int layer, int port)
{
    (void)layer;
    (void)port;
    return user;
}

static void a_subset_run_computes_only_its_layers_and_presets_the_rest(void **state)
{
    (void)state;
    /* in -> conv (x2 + 1) -> add(in, conv) -> out; in -> side conv (x3) -> out_side */
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int in = test_add_input(g, "in", 2, 2, 1);
    int conv = test_add_layer(g, "conv", HQ_LAYER_CONV, in);
    test_set_conv(g, conv, 1, 1, 1, 0, HQ_ACT_LINEAR);
    int sum = test_add_layer(g, "add", HQ_LAYER_EW_ADD, -1);
    test_connect(g, in, 0, sum);
    test_connect(g, conv, 0, sum);
    int out = test_add_layer(g, "out", HQ_LAYER_OUTPUT, sum);
    int side = test_add_layer(g, "side", HQ_LAYER_CONV, in);
    test_set_conv(g, side, 1, 1, 1, 0, HQ_ACT_LINEAR);
    int out_side = test_add_layer(g, "out_side", HQ_LAYER_OUTPUT, side);
    test_finalize(g);
    hq_npz_t *params = NULL;
    assert_int_equal(hq_npz_create(&params, NULL), HQ_OK);
    test_put_filled(params, "net/conv/kernel:0", 4, (int64_t[]){1, 1, 1, 1}, 0)[0] = 2.0f;
    test_put_filled(params, "net/conv/bias:0", 1, (int64_t[]){1}, 0)[0] = 1.0f;
    test_put_filled(params, "net/side/kernel:0", 4, (int64_t[]){1, 1, 1, 1}, 0)[0] = 3.0f;
    test_put_filled(params, "net/side/bias:0", 1, (int64_t[]){1}, 0)[0] = 0.0f;
    hq_emulator_t *emu = create_ok(g, params);
    int outputs_count = 0;
    const int *graph_outputs = hq_graph_outputs(g, &outputs_count);
    assert_int_equal(outputs_count, 2);
    int main_port = graph_outputs[0] == out ? 0 : 1;
    float x[4] = {1, 2, 3, -4}, y[2][4];
    const float *inputs[1] = {x};
    float *outputs[2] = {y[0], y[1]};
    /* the side branch is "known": a preset that differs from what its kernel would compute
     * shows that it was copied, not computed */
    float side_values[4] = {7, 7, 7, 7};
    unsigned char mode[8] = {0};
    mode[in] = HQI_SUBSET_COMPUTE;
    mode[conv] = HQI_SUBSET_COMPUTE;
    mode[sum] = HQI_SUBSET_COMPUTE;
    mode[out] = HQI_SUBSET_COMPUTE;
    mode[side] = HQI_SUBSET_PRESET;
    mode[out_side] = HQI_SUBSET_COMPUTE;
    hqi_subset_t subset = {.mode = mode, .preset = preset_side, .user = side_values};
    hq_emulator_reset_stats(emu);
    assert_int_equal(
        hqi_emulator_run_subset(emu, 1, inputs, outputs, replace_conv_tap, &conv, &subset, NULL),
        HQ_OK);
    float want_main[4] = {14, 17, 20, -1}; /* x + (2x + 1 + 10) */
    assert_memory_equal(y[main_port], want_main, sizeof want_main);
    assert_memory_equal(y[1 - main_port], side_values, sizeof side_values);
    int64_t conv_calls = 0;
    hq_emulator_type_seconds(emu, HQ_LAYER_CONV, &conv_calls);
    assert_int_equal(conv_calls, 1); /* conv ran, side did not */

    /* SKIP leaves a layer out: with the side output preset and its conv skipped */
    mode[side] = HQI_SUBSET_SKIP;
    mode[out_side] = HQI_SUBSET_PRESET;
    hq_emulator_reset_stats(emu);
    assert_int_equal(
        hqi_emulator_run_subset(emu, 1, inputs, outputs, replace_conv_tap, &conv, &subset, NULL),
        HQ_OK);
    assert_memory_equal(y[main_port], want_main, sizeof want_main);
    assert_memory_equal(y[1 - main_port], side_values, sizeof side_values);
    hq_emulator_type_seconds(emu, HQ_LAYER_CONV, &conv_calls);
    assert_int_equal(conv_calls, 1);

    /* a full run is unchanged by the subset runs before it */
    assert_int_equal(hq_emulator_run(emu, 1, inputs, outputs, NULL, NULL, NULL), HQ_OK);
    float full_main[4] = {4, 7, 10, -11}, full_side[4] = {3, 6, 9, -12};
    assert_memory_equal(y[main_port], full_main, sizeof full_main);
    assert_memory_equal(y[1 - main_port], full_side, sizeof full_side);
    /* missing modes are refused */
    hqi_subset_t empty = {0};
    assert_int_equal(hqi_emulator_run_subset(emu, 1, inputs, outputs, NULL, NULL, &empty, NULL),
                     HQ_ERR_ARGUMENT);
    hq_emulator_destroy(emu);
    hq_npz_destroy(params);
    hq_graph_destroy(g);
}

static void a_splitter_reports_each_piece_and_feeds_the_right_consumer(void **state)
{
    (void)state;
    /* in [1,1,4] -> split [1,3] on C -> piece 1 -> reduce_sum -> out; piece 0 ->
     * out0 */
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int in = test_add_input(g, "in", 1, 1, 4);
    int split = test_add_layer(g, "split", HQ_LAYER_FEATURE_SPLITTER, in);
    int sizes[2] = {1, 3};
    assert_int_equal(hq_layer_set_split_sizes(g, split, sizes, 2, NULL), HQ_OK);
    int out0 = test_add_layer(g, "out0", HQ_LAYER_OUTPUT, -1);
    test_connect(g, split, 0, out0);
    int red = test_add_layer(g, "sum", HQ_LAYER_REDUCE_SUM, -1);
    test_connect(g, split, 1, red);
    test_add_layer(g, "out1", HQ_LAYER_OUTPUT, red);
    test_finalize(g);
    hq_emulator_t *emu = create_ok(g, NULL);
    float x[8] = {1, 2, 3, 4, 10, 20, 30, 40}, y0[2], y1[2];
    const float *inputs[1] = {x};
    float *outputs[2] = {y0, y1};
    tap_log_t log;
    memset(&log, 0, sizeof log);
    assert_int_equal(hq_emulator_run(emu, 2, inputs, outputs, log_tap, &log, NULL), HQ_OK);
    float want0[2] = {1, 10}, want1[2] = {9, 90};
    assert_memory_equal(y0, want0, sizeof want0);
    assert_memory_equal(y1, want1, sizeof want1);
    assert_int_equal(log.calls[split], 2);
    assert_int_equal(log.ports[split], 3);
    hq_emulator_destroy(emu);
    hq_graph_destroy(g);
}

static void batch_norm_prelu_and_const_input_use_their_params(void **state)
{
    (void)state;
    /* in [1,1,2] -> batch_norm (prelu) -> ew_mult(const) -> out */
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int in = test_add_input(g, "in", 1, 1, 2);
    int bn = test_add_layer(g, "bn", HQ_LAYER_BATCH_NORM, in);
    hq_graph_layer_mut(g, bn)->params.activation = HQ_ACT_PRELU;
    hq_graph_layer_mut(g, bn)->params.epsilon = 0.0f;
    int k = test_add_layer(g, "k", HQ_LAYER_CONST_INPUT, -1);
    hq_shape_t ks = test_shape4(1, 1, 2);
    assert_int_equal(hq_layer_set_output_shape(g, k, &ks, NULL), HQ_OK);
    int mul = test_add_layer(g, "mul", HQ_LAYER_EW_MULT, -1);
    test_connect(g, bn, 0, mul);
    test_connect(g, k, 0, mul);
    test_add_layer(g, "out", HQ_LAYER_OUTPUT, mul);
    test_finalize(g);
    hq_npz_t *params = NULL;
    assert_int_equal(hq_npz_create(&params, NULL), HQ_OK);
    float *gamma = test_put_filled(params, "net/bn/gamma:0", 1, (int64_t[]){2}, 0);
    float *beta = test_put_filled(params, "net/bn/beta:0", 1, (int64_t[]){2}, 0);
    float *mean = test_put_filled(params, "net/bn/moving_mean:0", 1, (int64_t[]){2}, 0);
    float *var = test_put_filled(params, "net/bn/moving_variance:0", 1, (int64_t[]){2}, 0);
    float *slope = test_put_filled(params, "net/bn/prelu_slope:0", 1, (int64_t[]){2}, 0);
    hq_emulator_t *emu = NULL;
    hq_error_t err = {0};
    assert_int_equal(hq_emulator_create(g, params, HQ_TARGET_NATIVE, "t", &emu, &err),
                     HQ_ERR_NOT_FOUND);
    assert_string_equal(err.message, "t: layer 'net/k': params key 'net/k/const:0' missing");
    float *cst = test_put_filled(params, "net/k/const:0", 3, (int64_t[]){1, 1, 2}, 0);
    gamma[0] = 2, gamma[1] = 1;
    beta[0] = 0, beta[1] = 1;
    mean[0] = 1, mean[1] = 0;
    var[0] = 4, var[1] = 1;
    slope[0] = 0.5f, slope[1] = 0.25f;
    cst[0] = 3, cst[1] = -1;
    emu = create_ok(g, params);
    /* sample 0: x = (5, -3): bn = (2*(5-1)/2 + 0, (-3)/1 + 1) = (4, -2); prelu ->
     * (4, -0.5) sample 1: x = (-1, 1): bn = (2*(-2)/2, 2) = (-2, 2); prelu ->
     * (-1, 2); times (3, -1) */
    float x[4] = {5, -3, -1, 1}, y[4];
    const float *inputs[1] = {x};
    float *outputs[1] = {y};
    assert_int_equal(hq_emulator_run(emu, 2, inputs, outputs, NULL, NULL, NULL), HQ_OK);
    float want[4] = {12, 0.5f, -3, -2};
    assert_memory_equal(y, want, sizeof want);
    hq_emulator_destroy(emu);
    hq_npz_destroy(params);
    hq_graph_destroy(g);
}

/* ---- every layer type
 * ------------------------------------------------------------------- */

/* Configures layer `index` of type T on input [4, 4, 4]; binary layers get a
 * second input. */
typedef void (*type_setup_fn)(hq_graph_t *g, int index);

static void setup_nothing(hq_graph_t *g, int index)
{
    (void)g, (void)index;
}
static void setup_conv(hq_graph_t *g, int index)
{
    test_set_conv(g, index, 3, 4, 4, 1, HQ_ACT_RELU6);
}
static void setup_dw(hq_graph_t *g, int index)
{
    test_set_conv(g, index, 3, 1, 8, 1, HQ_ACT_LEAKY);
    hq_graph_layer_mut(g, index)->params.activation_alpha = 0.1f;
}
static void setup_deconv(hq_graph_t *g, int index)
{
    test_set_conv(g, index, 2, 4, 2, 0, HQ_ACT_LINEAR);
    hq_layer_params_t *p = &hq_graph_layer_mut(g, index)->params;
    p->stride_h = p->stride_w = 2;
}
static void setup_dense(hq_graph_t *g, int index)
{
    hq_layer_params_t *p = &hq_graph_layer_mut(g, index)->params;
    p->kernel_in = 64;
    p->kernel_out = 3;
    p->has_bias = true;
    p->activation = HQ_ACT_SILU;
}
static void setup_batch_norm(hq_graph_t *g, int index)
{
    hq_graph_layer_mut(g, index)->params.epsilon = 1e-3f;
}
static void setup_activation(hq_graph_t *g, int index)
{
    hq_graph_layer_mut(g, index)->params.activation = HQ_ACT_HARDSWISH;
}
static void setup_normalization(hq_graph_t *g, int index)
{
    const float mean[4] = {0.1f, 0.2f, 0.3f, 0.4f}, std[4] = {1, 2, 3, 4};
    assert_int_equal(hq_layer_set_normalization(g, index, mean, std, 4, NULL), HQ_OK);
}
static void setup_pool(hq_graph_t *g, int index)
{
    hq_layer_params_t *p = &hq_graph_layer_mut(g, index)->params;
    p->kernel_h = p->kernel_w = 2;
    p->stride_h = p->stride_w = 2;
}
static void setup_split(hq_graph_t *g, int index)
{
    int sizes[2] = {1, 3};
    assert_int_equal(hq_layer_set_split_sizes(g, index, sizes, 2, NULL), HQ_OK);
}
static void setup_slice(hq_graph_t *g, int index)
{
    hq_layer_params_t *p = &hq_graph_layer_mut(g, index)->params;
    int begin[3] = {0, 1, 0}, end[3] = {4, 4, 4}, step[3] = {2, 1, 2};
    memcpy(p->slice_begin, begin, sizeof begin);
    memcpy(p->slice_end, end, sizeof end);
    memcpy(p->slice_step, step, sizeof step);
}
static void setup_pad(hq_graph_t *g, int index)
{
    hq_layer_params_t *p = &hq_graph_layer_mut(g, index)->params;
    p->padding = HQ_PADDING_EXPLICIT;
    p->pads[0] = 1;
    p->pads[3] = 2;
    p->pad_channels[0] = 1;
    p->pad_mode = HQ_PAD_REFLECT;
}
static void setup_resize(hq_graph_t *g, int index)
{
    hq_shape_t out = test_shape4(7, 8, 4);
    assert_int_equal(hq_layer_set_output_shape(g, index, &out, NULL), HQ_OK);
    hq_graph_layer_mut(g, index)->params.resize_method = HQ_RESIZE_BILINEAR;
    hq_graph_layer_mut(g, index)->params.resize_coords = HQ_RESIZE_HALF_PIXEL;
}
static void setup_block(hq_graph_t *g, int index)
{
    hq_graph_layer_mut(g, index)->params.block_size = 2;
}
static void setup_reshape(hq_graph_t *g, int index)
{
    hq_shape_t out = test_shape4(16, 2, 2);
    assert_int_equal(hq_layer_set_output_shape(g, index, &out, NULL), HQ_OK);
}
static void setup_transpose(hq_graph_t *g, int index)
{
    int perm[4] = {0, 2, 1, 3};
    memcpy(hq_graph_layer_mut(g, index)->params.perm, perm, sizeof perm);
}
static void setup_groups2(hq_graph_t *g, int index)
{
    hq_graph_layer_mut(g, index)->params.groups = 2;
}
static void setup_axis2(hq_graph_t *g, int index)
{
    hq_graph_layer_mut(g, index)->params.axis = 2;
}

typedef struct type_case {
    type_setup_fn setup;
    int inputs; /* 1, or 2 for a second input [1, 1, 4] (concat: [4, 4, 4]) */
} type_case_t;

static const type_case_t type_cases[HQ_LAYER_TYPE_COUNT] = {
    [HQ_LAYER_CONV] = {setup_conv, 1},
    [HQ_LAYER_DW] = {setup_dw, 1},
    [HQ_LAYER_DECONV] = {setup_deconv, 1},
    [HQ_LAYER_DENSE] = {setup_dense, 1},
    [HQ_LAYER_BATCH_NORM] = {setup_batch_norm, 1},
    [HQ_LAYER_ACTIVATION] = {setup_activation, 1},
    [HQ_LAYER_NORMALIZATION] = {setup_normalization, 1},
    [HQ_LAYER_MAXPOOL] = {setup_pool, 1},
    [HQ_LAYER_AVGPOOL] = {setup_pool, 1},
    [HQ_LAYER_GLOBAL_AVG_POOL] = {setup_nothing, 1},
    [HQ_LAYER_EW_ADD] = {setup_nothing, 2},
    [HQ_LAYER_EW_SUB] = {setup_nothing, 2},
    [HQ_LAYER_EW_MULT] = {setup_nothing, 2},
    [HQ_LAYER_EW_DIV] = {setup_nothing, 2},
    [HQ_LAYER_EW_MAX] = {setup_nothing, 2},
    [HQ_LAYER_EW_MIN] = {setup_nothing, 2},
    [HQ_LAYER_CONCAT] = {setup_nothing, 2},
    [HQ_LAYER_FEATURE_SPLITTER] = {setup_split, 1},
    [HQ_LAYER_SLICE] = {setup_slice, 1},
    [HQ_LAYER_PAD] = {setup_pad, 1},
    [HQ_LAYER_RESIZE] = {setup_resize, 1},
    [HQ_LAYER_DEPTH_TO_SPACE] = {setup_block, 1},
    [HQ_LAYER_SPACE_TO_DEPTH] = {setup_block, 1},
    [HQ_LAYER_SOFTMAX] = {setup_nothing, 1},
    [HQ_LAYER_RESHAPE] = {setup_reshape, 1},
    [HQ_LAYER_TRANSPOSE] = {setup_transpose, 1},
    [HQ_LAYER_REDUCE_MAX] = {setup_axis2, 1},
    [HQ_LAYER_REDUCE_SUM] = {setup_axis2, 1},
    [HQ_LAYER_ARGMAX] = {setup_nothing, 1},
    [HQ_LAYER_CHANNEL_SHUFFLE] = {setup_groups2, 1},
    [HQ_LAYER_LAYER_NORM] = {setup_batch_norm, 1},
    [HQ_LAYER_MATMUL] = {setup_nothing, 2},
};

/* Params of the shapes the layer's params imply, made up. */
static void put_layer_params(hq_npz_t *npz, const hq_layer_t *l)
{
    char key[128];
    const hq_layer_params_t *p = &l->params;
    int64_t c = l->output_shape.dims[l->output_shape.ndim - 1];
    static const char *const bn_keys[] = {"gamma:0", "beta:0", "moving_mean:0",
                                          "moving_variance:0"};
    if (l->type == HQ_LAYER_CONV || l->type == HQ_LAYER_DW || l->type == HQ_LAYER_DECONV) {
        snprintf(key, sizeof key, "%s/kernel:0", l->name);
        test_put_filled(npz, key, 4,
                        (int64_t[]){p->kernel_h, p->kernel_w, p->kernel_in, p->kernel_out}, 31);
    }
    if (l->type == HQ_LAYER_DENSE) {
        snprintf(key, sizeof key, "%s/kernel:0", l->name);
        test_put_filled(npz, key, 2, (int64_t[]){p->kernel_in, p->kernel_out}, 32);
    }
    if (p->has_bias) {
        snprintf(key, sizeof key, "%s/bias:0", l->name);
        test_put_filled(npz, key, 1, (int64_t[]){p->kernel_out}, 33);
    }
    for (int k = 0; l->type == HQ_LAYER_BATCH_NORM && k < 4; k++) {
        snprintf(key, sizeof key, "%s/%s", l->name, bn_keys[k]);
        float *x = test_put_filled(npz, key, 1, (int64_t[]){c}, 34 + (uint32_t)k);
        for (int64_t i = 0; k == 3 && i < c; i++)
            x[i] = 1.0f + fabsf(x[i]); /* a positive variance */
    }
    for (int k = 0; l->type == HQ_LAYER_LAYER_NORM && k < 2; k++) {
        snprintf(key, sizeof key, "%s/%s", l->name, bn_keys[k]);
        test_put_filled(npz, key, 1, (int64_t[]){c}, 38 + (uint32_t)k);
    }
}

static void every_layer_type_runs_and_gives_the_same_result_in_any_batch(void **state)
{
    (void)state;
    int tested = 0;
    for (int type = 0; type < HQ_LAYER_TYPE_COUNT; type++) {
        if (type == HQ_LAYER_INPUT || type == HQ_LAYER_OUTPUT || type == HQ_LAYER_CONST_INPUT)
            continue; /* in every graph; const_input:
                         batch_norm_prelu_and_const_input_... */
        const type_case_t *tc = &type_cases[type];
        if (!tc->setup)
            fail_msg("no test case for layer type %s", hq_layer_type_name((hq_layer_type_t)type));
        hq_graph_t *g = NULL;
        assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
        int in = test_add_input(g, "in", 4, 4, 4), in2 = -1;
        if (tc->inputs == 2)
            in2 = type == HQ_LAYER_CONCAT || type == HQ_LAYER_MATMUL
                      ? test_add_input(g, "in2", 4, 4, 4)
                                          : test_add_input(g, "in2", 1, 1, 4);
        int layer = test_add_layer(g, "layer", (hq_layer_type_t)type, in);
        if (in2 >= 0)
            test_connect(g, in2, 0, layer);
        tc->setup(g, layer);
        int pieces = type == HQ_LAYER_FEATURE_SPLITTER ? 2 : 1;
        for (int p = 0; p < pieces; p++) {
            int out = test_add_layer(g, p ? "out1" : "out0", HQ_LAYER_OUTPUT, -1);
            test_connect(g, layer, p, out);
        }
        hq_error_t err = {0};
        if (hq_graph_finalize(g, "test.hn", &err))
            fail_msg("%s: finalize: %s", hq_layer_type_name((hq_layer_type_t)type), err.message);
        hq_npz_t *params = NULL;
        assert_int_equal(hq_npz_create(&params, NULL), HQ_OK);
        put_layer_params(params, hq_graph_layer(g, layer));
        hq_emulator_t *emu = NULL;
        if (hq_emulator_create(g, params, HQ_TARGET_NATIVE, "t", &emu, &err))
            fail_msg("%s: create: %s", hq_layer_type_name((hq_layer_type_t)type), err.message);
        int64_t in_size[2] = {hq_emulator_input_size(emu, 0), hq_emulator_input_size(emu, 1)};
        float x[3 * 64], x2[3 * 64], whole[2][3 * 512], single[2][3 * 512];
        test_fill(x, 3 * 64, 40 + (uint32_t)type);
        test_fill(x2, 3 * 64, 80 + (uint32_t)type);
        for (int i = 0; i < 3 * 64; i++)
            x2[i] = x2[i] >= 0 ? x2[i] + 0.5f : x2[i] - 0.5f; /* no division by ~0 */
        const float *inputs[2] = {x, x2};
        float *outputs[2] = {whole[0], whole[1]};
        int64_t out_size[2] = {hq_emulator_output_size(emu, 0), hq_emulator_output_size(emu, 1)};
        assert_true(out_size[0] >= 1 && out_size[0] <= 512 && out_size[1] <= 512);
        if (hq_emulator_run(emu, 3, inputs, outputs, NULL, NULL, &err))
            fail_msg("%s: run: %s", hq_layer_type_name((hq_layer_type_t)type), err.message);
        for (int n = 0; n < 3; n++) {
            const float *one_in[2] = {x + n * in_size[0], x2 + n * in_size[1]};
            float *one_out[2] = {single[0] + n * out_size[0], single[1] + n * out_size[1]};
            assert_int_equal(hq_emulator_run(emu, 1, one_in, one_out, NULL, NULL, NULL), HQ_OK);
        }
        for (int p = 0; p < pieces; p++) {
            assert_memory_equal(whole[p], single[p], (size_t)(3 * out_size[p]) * sizeof(float));
            for (int64_t i = 0; i < 3 * out_size[p]; i++)
                assert_true(isfinite(whole[p][i]));
        }
        hq_emulator_destroy(emu);
        hq_npz_destroy(params);
        hq_graph_destroy(g);
        tested++;
    }
    assert_int_equal(tested, HQ_LAYER_TYPE_COUNT - 3);
}

/* ---- archives and targets
 * --------------------------------------------------------------- */

static void the_fp_optimized_target_uses_the_fpo_params_and_needs_them(void **state)
{
    (void)state;
    cnn_t c;
    cnn_build(&c);
    hq_archive_t *archive = NULL;
    assert_int_equal(hq_archive_create("net", &archive, NULL), HQ_OK);
    hq_graph_t *clone = NULL;
    assert_int_equal(hq_graph_clone(c.graph, &clone, NULL), HQ_OK);
    assert_int_equal(hq_archive_set_graph(archive, clone, NULL), HQ_OK);
    hq_npz_t *native = NULL;
    assert_int_equal(hq_npz_create(&native, NULL), HQ_OK);
    for (size_t i = 0; i < hq_npz_count(c.params); i++)
        assert_int_equal(
            hq_npz_put_copy(native, hq_npz_key(c.params, i), hq_npz_get_index(c.params, i), NULL),
            HQ_OK);
    assert_int_equal(hq_archive_set_params(archive, HQ_PARAMS_NATIVE, native, NULL), HQ_OK);

    hq_emulator_t *emu = NULL;
    hq_error_t err = {0};
    assert_int_equal(hq_emulator_create_from_archive(archive, HQ_TARGET_FP_OPTIMIZED, &emu, &err),
                     HQ_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "net.fpo.npz"));
    assert_null(emu);

    /* fpo params: the same network with the fc bias shifted by 1 */
    hq_npz_t *fpo = NULL;
    assert_int_equal(hq_npz_create(&fpo, NULL), HQ_OK);
    for (size_t i = 0; i < hq_npz_count(c.params); i++)
        assert_int_equal(
            hq_npz_put_copy(fpo, hq_npz_key(c.params, i), hq_npz_get_index(c.params, i), NULL),
            HQ_OK);
    float *bias = (float *)hq_npz_get(fpo, "net/fc1/bias:0")->data;
    for (int j = 0; j < 5; j++)
        bias[j] += 1.0f;
    assert_int_equal(hq_archive_set_params(archive, HQ_PARAMS_FP_OPTIMIZED, fpo, NULL), HQ_OK);

    float x[32], y_native[5], y_fpo[5];
    test_fill(x, 32, 21);
    const float *inputs[1] = {x};
    float *outputs[1] = {y_native};
    if (hq_emulator_create_from_archive(archive, HQ_TARGET_NATIVE, &emu, &err))
        fail_msg("create native: %s", err.message);
    assert_int_equal(hq_emulator_target(emu), HQ_TARGET_NATIVE);
    assert_int_equal(hq_emulator_run(emu, 1, inputs, outputs, NULL, NULL, NULL), HQ_OK);
    hq_emulator_destroy(emu);
    if (hq_emulator_create_from_archive(archive, HQ_TARGET_FP_OPTIMIZED, &emu, &err))
        fail_msg("create fpo: %s", err.message);
    outputs[0] = y_fpo;
    assert_int_equal(hq_emulator_run(emu, 1, inputs, outputs, NULL, NULL, NULL), HQ_OK);
    hq_emulator_destroy(emu);
    for (int j = 0; j < 5; j++)
        assert_true(fabsf(y_fpo[j] - (y_native[j] + 1.0f)) < 1e-5f);
    hq_archive_destroy(archive);
    cnn_free(&c);
}

static void target_names_round_trip(void **state)
{
    (void)state;
    hq_target_t t;
    assert_string_equal(hq_target_name(HQ_TARGET_NATIVE), "native");
    assert_string_equal(hq_target_name(HQ_TARGET_FP_OPTIMIZED), "fp_optimized");
    assert_null(hq_target_name(HQ_TARGET_COUNT));
    assert_int_equal(hq_target_from_name("fp_optimized", &t), HQ_OK);
    assert_int_equal(t, HQ_TARGET_FP_OPTIMIZED);
    assert_int_equal(hq_target_from_name("quantized", &t), HQ_OK);
    assert_int_equal(t, HQ_TARGET_QUANTIZED);
    assert_int_equal(hq_target_from_name("int8", &t), HQ_ERR_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv_relu_maxpool_dense_matches_a_direct_computation),
        cmocka_unit_test(channel_shuffle_graph_matches_onnx_with_either_kernel_set),
        cmocka_unit_test(taps_see_every_layer_once_per_batch_with_the_batch_in_the_shape),
        cmocka_unit_test(a_failing_tap_stops_the_run_with_its_status),
        cmocka_unit_test(batch_size_does_not_change_results),
        cmocka_unit_test(streaming_a_dataset_in_batches_of_any_size_gives_the_same_outputs),
        cmocka_unit_test(missing_params_are_refused_naming_the_layer_and_key),
        cmocka_unit_test(a_misshapen_kernel_is_refused_with_both_shapes),
        cmocka_unit_test(float64_params_are_converted),
        cmocka_unit_test(a_layer_type_without_a_kernel_is_refused_naming_the_layer),
        cmocka_unit_test(a_batch_below_one_and_missing_inputs_are_refused),
        cmocka_unit_test(an_unfinalized_graph_is_refused),
        cmocka_unit_test(the_planned_peak_is_below_the_sum_of_activations_on_a_chain),
        cmocka_unit_test(a_residual_branch_keeps_its_input_alive_until_the_add),
        cmocka_unit_test(a_subset_run_computes_only_its_layers_and_presets_the_rest),
        cmocka_unit_test(a_splitter_reports_each_piece_and_feeds_the_right_consumer),
        cmocka_unit_test(batch_norm_prelu_and_const_input_use_their_params),
        cmocka_unit_test(every_layer_type_runs_and_gives_the_same_result_in_any_batch),
        cmocka_unit_test(the_fp_optimized_target_uses_the_fpo_params_and_needs_them),
        cmocka_unit_test(target_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
