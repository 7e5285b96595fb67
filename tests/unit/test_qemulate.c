/* test_qemulate.c — `--target quantized`: a tiny model whose output codes are recomputed here by
 * hand from the formulas of docs/numerics.md, the quality of quantized emulation against float
 * (SQNR) on a small random conv net at a8_w8 and a16_w16, and determinism (batching, threads). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "emulate/qemulator.h"
#include "hq/emulate.h"
#include "hq/graph.h"
#include "hq/tensor.h"
#include "numerics/qmodel.h"
#include "test_graphs.h"

/* ---- building graphs and params ---------------------------------------------------------------
 */

static uint32_t rng_state = 12345;
/* Per-layer float min/max over a batch, through the float emulator's taps. */
typedef struct ranges {
    float *lo, *hi;
} ranges_t;

static hq_status_t range_tap(void *user, int layer, int port, const hq_shape_t *shape,
                             const float *data, hq_error_t *err)
{
    (void)port;
    (void)err;
    ranges_t *r = user;
    int64_t n = 1;
    for (int d = 0; d < shape->ndim; d++)
        n *= shape->dims[d];
    for (int64_t i = 0; i < n; i++) {
        if (data[i] < r->lo[layer])
            r->lo[layer] = data[i];
        if (data[i] > r->hi[layer])
            r->hi[layer] = data[i];
    }
    return HQ_OK;
}

/* Decisions from float min/max (what the optimizer would decide without clipping), at `abits`
 * activations and `wbits` weights; concat inputs get the union of their ranges. */
static hqi_layer_quant_t *decide(const hq_graph_t *g, const hq_npz_t *params, const float *input,
                                 int64_t batch, int abits, int wbits, float *out)
{
    int count = hq_graph_layer_count(g);
    ranges_t r = {calloc((size_t)count, sizeof(float)), calloc((size_t)count, sizeof(float))};
    hq_emulator_t *emu = NULL;
    hq_error_t err = {0};
    if (hq_emulator_create(g, params, HQ_TARGET_NATIVE, "float", &emu, &err))
        fail_msg("%s", err.message);
    float *outs[1] = {out};
    if (hq_emulator_run(emu, batch, &input, outs, range_tap, &r, &err))
        fail_msg("%s", err.message);
    hq_emulator_destroy(emu);
    for (int i = 0; i < count; i++) {
        const hq_layer_t *l = hq_graph_layer(g, i);
        if (l->type != HQ_LAYER_CONCAT)
            continue;
        float lo = 0, hi = 0;
        for (int k = 0; k < l->input_count; k++) {
            lo = fminf(lo, r.lo[l->inputs[k]]);
            hi = fmaxf(hi, r.hi[l->inputs[k]]);
        }
        for (int k = 0; k < l->input_count; k++) {
            r.lo[l->inputs[k]] = lo;
            r.hi[l->inputs[k]] = hi;
        }
    }
    hqi_layer_quant_t *d = calloc((size_t)count, sizeof *d);
    for (int i = 0; i < count; i++) {
        const hq_layer_t *l = hq_graph_layer(g, i);
        bool weights = l->type == HQ_LAYER_CONV || l->type == HQ_LAYER_DW ||
                       l->type == HQ_LAYER_DENSE || l->type == HQ_LAYER_DECONV;
        d[i] = (hqi_layer_quant_t){abits, weights ? wbits : 0, abits, r.lo[i], r.hi[i], 0, 0, 0, NULL};
    }
    free(r.lo);
    free(r.hi);
    return d;
}

static double sqnr_db(const float *x, const float *y, int64_t n)
{
    double s = 0, e = 0;
    for (int64_t i = 0; i < n; i++) {
        s += (double)x[i] * x[i];
        e += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
    }
    return e > 0 ? 10 * log10(s / e) : 300.0;
}

/* ---- the tiny model, by hand
 * ----------------------------------------------------------------------- */

/* gemmlowp arithmetic written out again from docs/numerics.md, independently of hqrt_numerics.h */
static int32_t hand_requantize(int64_t acc, double ratio)
{
    int e;
    double q = frexp(ratio, &e);
    int64_t m = (int64_t)round(q * 2147483648.0);
    if (m == ((int64_t)1 << 31)) {
        m /= 2;
        e++;
    }
    int64_t x = acc * ((int64_t)1 << (e > 0 ? e : 0));
    int64_t ab = x * m;
    int64_t high =
        (ab + (ab >= 0 ? ((int64_t)1 << 30) : 1 - ((int64_t)1 << 30))) / ((int64_t)1 << 31);
    int right = e > 0 ? 0 : -e;
    if (right == 0)
        return (int32_t)high;
    int64_t mask = ((int64_t)1 << right) - 1, rem = high & mask;
    int64_t threshold = (mask >> 1) + (high < 0);
    return (int32_t)((high >> right) + (rem > threshold));
}

static void tiny_model_output_matches_the_hand_computation(void **state)
{
    (void)state;
    hq_graph_t *g = NULL;
    hq_error_t err = {0};
    assert_int_equal(hq_graph_create("tiny", &g, &err), HQ_OK);
    int in = test_add_layer(g, "in", HQ_LAYER_INPUT, -1);
    hq_shape_t s = {4, {-1, 1, 2, 1}};
    assert_int_equal(hq_layer_set_output_shape(g, in, &s, &err), HQ_OK);
    int conv = test_add_layer(g, "conv", HQ_LAYER_CONV, in);
    test_set_conv(g, conv, 1, 1, 2, 0, HQ_ACT_RELU);
    int out = test_add_layer(g, "out", HQ_LAYER_OUTPUT, conv);
    (void)out;
    assert_int_equal(hq_graph_finalize(g, "tiny", &err), HQ_OK);
    hq_npz_t *fpo = NULL;
    assert_int_equal(hq_npz_create(&fpo, &err), HQ_OK);
    const float w[2] = {0.5f, -1.0f}, b[2] = {0.1f, 0.2f};
    int64_t ks[4] = {1, 1, 1, 2}, bs[1] = {2};
    test_put_floats(fpo, "tiny/conv/kernel:0", 4, ks, w);
    test_put_floats(fpo, "tiny/conv/bias:0", 1, bs, b);
    hqi_layer_quant_t d[3] = {{8, 0, 8, -1.0f, 1.0f, 0, 0, 0, NULL},
                              {8, 8, 8, 0.0f, 2.0f, 0, 0, 0, NULL},
                              {8, 0, 8, 0.0f, 2.0f, 0, 0, 0, NULL}};
    hq_npz_t *q = NULL;
    if (hqi_quant_build_params(g, fpo, d, &q, &err))
        fail_msg("%s", err.message);
    hq_emulator_t *emu = NULL;
    if (hq_emulator_create(g, q, HQ_TARGET_QUANTIZED, "tiny", &emu, &err))
        fail_msg("%s", err.message);
    const float x[2] = {1.0f, -0.5f};
    float y[4];
    const float *ins[1] = {x};
    float *outs[1] = {y};
    if (hq_emulator_run(emu, 1, ins, outs, NULL, NULL, &err))
        fail_msg("%s", err.message);

    /* by hand: input encoding [-1, 1] 8-bit: scale = float32(2/255), zp = round(1/scale) = 127 */
    const float s_in = (float)(2.0 / 255.0);
    const int32_t zp_in = (int32_t)round(1.0 / (double)s_in);
    assert_int_equal(zp_in, 127);
    int32_t qx[2];
    for (int i = 0; i < 2; i++)
        qx[i] = (int32_t)round((double)x[i] / (double)s_in) + zp_in; /* 254 and 63 */
    assert_int_equal(qx[0], 254);
    assert_int_equal(qx[1], 63);
    /* output encoding [0, 2]: scale float32(2/255), zp 0; relu clamps at zp */
    const float s_out = (float)(2.0 / 255.0);
    for (int c = 0; c < 2; c++) {
        /* weights: scale = max|w| / 127 (float32), q = round(w / scale) = +-127 */
        float ks_c = (float)(fabs((double)w[c]) / 127.0);
        int32_t wq = (int32_t)round((double)w[c] / (double)ks_c);
        assert_int_equal(abs(wq), 127);
        double acc_scale = (double)s_in * (double)ks_c;
        int64_t bias_q = (int64_t)round((double)b[c] / acc_scale);
        for (int i = 0; i < 2; i++) {
            int64_t acc = bias_q + (int64_t)wq * (qx[i] - zp_in);
            int32_t code = hand_requantize(acc, acc_scale / (double)s_out) + 0;
            code = code < 0 ? 0 : code > 255 ? 255 : code;
            float expect = (float)((double)code * (double)s_out);
            assert_float_equal(y[i * 2 + c], expect, 0);
        }
    }
    /* and the float result is close: conv(1.0) = 0.6, -0.8->0; conv(-0.5) = -0.15->0, 0.7 */
    assert_float_equal(y[0], 0.6f, 0.02f);
    assert_float_equal(y[1], 0.0f, 0.0f);
    assert_float_equal(y[3], 0.7f, 0.02f);
    hq_emulator_destroy(emu);
    hq_npz_destroy(q);
    hq_npz_destroy(fpo);
    hq_graph_destroy(g);
}

/* ---- a small random conv net
 * --------------------------------------------------------------------- */

typedef struct net {
    hq_graph_t *g;
    hq_npz_t *params;
    float *input;
    int64_t batch, in_size, out_size;
} net_t;

/* in 8x8x3 -> conv3x3 8 relu -> dw3x3 relu6 -> conv1x1 8 -> ew_add(conv1) -> silu (activation)
 * -> concat(conv1) -> resize bilinear x2 -> avgpool 2x2 -> maxpool 2x2 -> global_avg_pool
 * -> dense 4 -> out */
static net_t make_net_with(int64_t batch, bool softmax)
{
    net_t n = {0};
    hq_error_t err = {0};
    rng_state = 777;
    assert_int_equal(hq_graph_create("net", &n.g, &err), HQ_OK);
    hq_graph_t *g = n.g;
    int in = test_add_layer(g, "in", HQ_LAYER_INPUT, -1);
    hq_shape_t s = {4, {-1, 8, 8, 3}};
    assert_int_equal(hq_layer_set_output_shape(g, in, &s, &err), HQ_OK);
    int c1 = test_add_layer(g, "conv1", HQ_LAYER_CONV, in);
    test_set_conv(g, c1, 3, 3, 8, 1, HQ_ACT_RELU);
    int dw = test_add_layer(g, "dw", HQ_LAYER_DW, c1);
    test_set_conv(g, dw, 3, 1, 8, 1, HQ_ACT_RELU6);
    int c2 = test_add_layer(g, "conv2", HQ_LAYER_CONV, dw);
    test_set_conv(g, c2, 1, 8, 8, 0, HQ_ACT_LINEAR);
    int addl = test_add_layer(g, "add", HQ_LAYER_EW_ADD, c2);
    test_connect(g, c1, 0, addl);
    int act = test_add_layer(g, "silu", HQ_LAYER_ACTIVATION, addl);
    hq_graph_layer_mut(g, act)->params.activation = HQ_ACT_SILU;
    int cat = test_add_layer(g, "cat", HQ_LAYER_CONCAT, act);
    test_connect(g, c1, 0, cat);
    int rs = test_add_layer(g, "resize", HQ_LAYER_RESIZE, cat);
    hq_graph_layer_mut(g, rs)->params.resize_method = HQ_RESIZE_BILINEAR;
    hq_graph_layer_mut(g, rs)->params.resize_coords = HQ_RESIZE_HALF_PIXEL;
    hq_shape_t rshape = {4, {-1, 16, 16, 16}};
    hq_graph_layer_mut(g, rs)->output_shape = rshape;
    int ap = test_add_layer(g, "avgpool", HQ_LAYER_AVGPOOL, rs);
    hq_layer_params_t *pp = &hq_graph_layer_mut(g, ap)->params;
    pp->kernel_h = pp->kernel_w = pp->stride_h = pp->stride_w = 2;
    int mp = test_add_layer(g, "maxpool", HQ_LAYER_MAXPOOL, ap);
    pp = &hq_graph_layer_mut(g, mp)->params;
    pp->kernel_h = pp->kernel_w = pp->stride_h = pp->stride_w = 2;
    int gp = test_add_layer(g, "gap", HQ_LAYER_GLOBAL_AVG_POOL, mp);
    int fc = test_add_layer(g, "fc", HQ_LAYER_DENSE, gp);
    pp = &hq_graph_layer_mut(g, fc)->params;
    pp->kernel_in = 16;
    pp->kernel_out = 4;
    pp->has_bias = true;
    int last = fc;
    if (softmax) {
        last = test_add_layer(g, "softmax", HQ_LAYER_SOFTMAX, fc);
        hq_graph_layer_mut(g, last)->params.axis = 1;
    }
    test_add_layer(g, "out", HQ_LAYER_OUTPUT, last);
    if (hq_graph_finalize(g, "net", &err))
        fail_msg("finalize: %s", err.message);
    assert_int_equal(hq_npz_create(&n.params, &err), HQ_OK);
    int64_t k1[4] = {3, 3, 3, 8}, kd[4] = {3, 3, 1, 8}, k2[4] = {1, 1, 8, 8}, kf[2] = {16, 4},
            b8[1] = {8}, b4[1] = {4};
    test_put_uniform(n.params, "net/conv1/kernel:0", 4, k1, 0.4f, &rng_state);
    test_put_uniform(n.params, "net/conv1/bias:0", 1, b8, 0.1f, &rng_state);
    test_put_uniform(n.params, "net/dw/kernel:0", 4, kd, 0.5f, &rng_state);
    test_put_uniform(n.params, "net/dw/bias:0", 1, b8, 0.1f, &rng_state);
    test_put_uniform(n.params, "net/conv2/kernel:0", 4, k2, 0.5f, &rng_state);
    test_put_uniform(n.params, "net/conv2/bias:0", 1, b8, 0.1f, &rng_state);
    test_put_uniform(n.params, "net/fc/kernel:0", 2, kf, 0.5f, &rng_state);
    test_put_uniform(n.params, "net/fc/bias:0", 1, b4, 0.1f, &rng_state);
    n.batch = batch;
    n.in_size = 8 * 8 * 3;
    n.out_size = 4;
    n.input = malloc((size_t)(batch * n.in_size) * sizeof(float));
    for (int64_t i = 0; i < batch * n.in_size; i++)
        n.input[i] = 2.0f * test_uniform(&rng_state);
    return n;
}

static net_t make_net(int64_t batch)
{
    return make_net_with(batch, false);
}

static void free_net(net_t *n)
{
    hq_graph_destroy(n->g);
    hq_npz_destroy(n->params);
    free(n->input);
}

/* SQNR of the quantized outputs against float at the given precision. */
static double net_sqnr(net_t *n, int abits, int wbits, hq_npz_t **q_out)
{
    float *ref = malloc((size_t)(n->batch * n->out_size) * sizeof(float));
    float *got = malloc((size_t)(n->batch * n->out_size) * sizeof(float));
    hqi_layer_quant_t *d = decide(n->g, n->params, n->input, n->batch, abits, wbits, ref);
    hq_npz_t *q = NULL;
    hq_error_t err = {0};
    if (hqi_quant_build_params(n->g, n->params, d, &q, &err))
        fail_msg("build: %s", err.message);
    hq_emulator_t *emu = NULL;
    if (hq_emulator_create(n->g, q, HQ_TARGET_QUANTIZED, "net", &emu, &err))
        fail_msg("create: %s", err.message);
    const float *ins[1] = {n->input};
    float *outs[1] = {got};
    if (hq_emulator_run(emu, n->batch, ins, outs, NULL, NULL, &err))
        fail_msg("run: %s", err.message);
    double db = sqnr_db(ref, got, n->batch * n->out_size);
    hq_emulator_destroy(emu);
    free(d);
    free(ref);
    free(got);
    if (q_out)
        *q_out = q;
    else
        hq_npz_destroy(q);
    return db;
}

static void a8_w8_emulation_is_close_to_float(void **state)
{
    (void)state;
    net_t n = make_net(16);
    double db = net_sqnr(&n, 8, 8, NULL);
    print_message("a8_w8 output SQNR %.1f dB\n", db);
    assert_true(db > 30.0);
    free_net(&n);
}

static void a16_w16_emulation_is_much_closer_to_float(void **state)
{
    (void)state;
    net_t n = make_net(16);
    double db16 = net_sqnr(&n, 16, 16, NULL);
    double db8 = net_sqnr(&n, 8, 4, NULL);
    print_message("a16_w16 output SQNR %.1f dB, a8_w4 %.1f dB\n", db16, db8);
    assert_true(db16 > 60.0);
    assert_true(db8 < db16); /* the property can fail: 4-bit weights are worse */
    free_net(&n);
}

static void a_softmax_head_is_quantized_too(void **state)
{
    (void)state;
    net_t n = make_net_with(16, true);
    double db8 = net_sqnr(&n, 8, 8, NULL), db16 = net_sqnr(&n, 16, 16, NULL);
    print_message("softmax head: a8_w8 %.1f dB, a16_w16 %.1f dB\n", db8, db16);
    assert_true(db8 > 30.0);
    assert_true(db16 > 60.0);
    free_net(&n);
}

static void results_do_not_depend_on_batching_or_threads(void **state)
{
    (void)state;
    net_t n = make_net(4);
    hq_npz_t *q = NULL;
    net_sqnr(&n, 8, 8, &q);
    hq_error_t err = {0};
    hq_emulator_t *emu = NULL;
    if (hq_emulator_create(n.g, q, HQ_TARGET_QUANTIZED, "net", &emu, &err))
        fail_msg("%s", err.message);
    float whole[16], single[16], threaded[16];
    const float *ins[1] = {n.input};
    float *outs[1] = {whole};
    assert_int_equal(hq_emulator_set_threads(emu, 1, &err), HQ_OK);
    assert_int_equal(hq_emulator_run(emu, 4, ins, outs, NULL, NULL, &err), HQ_OK);
    for (int b = 0; b < 4; b++) {
        const float *one[1] = {n.input + b * n.in_size};
        float *o[1] = {single + b * 4};
        assert_int_equal(hq_emulator_run(emu, 1, one, o, NULL, NULL, &err), HQ_OK);
    }
    assert_memory_equal(whole, single, sizeof whole);
    for (int threads = 2; threads <= 5; threads++) { /* 2 and 3 split 4 samples unevenly */
        assert_int_equal(hq_emulator_set_threads(emu, threads, &err), HQ_OK);
        memset(threaded, 0, sizeof threaded);
        outs[0] = threaded;
        assert_int_equal(hq_emulator_run(emu, 4, ins, outs, NULL, NULL, &err), HQ_OK);
        assert_memory_equal(whole, threaded, sizeof whole);
    }
    hq_emulator_destroy(emu);
    hq_npz_destroy(q);
    free_net(&n);
}

static hq_status_t count_taps(void *user, int layer, int port, const hq_shape_t *shape,
                              const float *data, hq_error_t *err)
{
    (void)layer;
    (void)port;
    (void)shape;
    (void)data;
    (void)err;
    (*(int *)user)++;
    return HQ_OK;
}

static void taps_see_every_layer_and_a_missing_key_is_refused(void **state)
{
    (void)state;
    net_t n = make_net(2);
    hq_npz_t *q = NULL;
    net_sqnr(&n, 8, 8, &q);
    hq_error_t err = {0};
    hq_emulator_t *emu = NULL;
    assert_int_equal(hq_emulator_create(n.g, q, HQ_TARGET_QUANTIZED, "net", &emu, &err), HQ_OK);
    int taps = 0;
    const float *ins[1] = {n.input};
    assert_int_equal(hq_emulator_run(emu, 2, ins, NULL, count_taps, &taps, &err), HQ_OK);
    assert_int_equal(taps, hq_graph_layer_count(n.g));
    hq_emulator_destroy(emu);
    /* a q.npz without the conv's multipliers is refused naming the layer and key */
    assert_int_equal(hq_npz_remove(q, "net/conv2/output_multiplier:0", &err), HQ_OK);
    assert_int_not_equal(hq_emulator_create(n.g, q, HQ_TARGET_QUANTIZED, "net", &emu, &err), HQ_OK);
    assert_non_null(strstr(err.message, "net/conv2/output_multiplier:0"));
    hq_npz_destroy(q);
    free_net(&n);
}

static void resize_forms_without_an_integer_kernel_are_refused_naming_the_layer(void **state)
{
    (void)state;
    net_t n = make_net(2);
    float *ref = malloc((size_t)(n.batch * n.out_size) * sizeof(float));
    hqi_layer_quant_t *d = decide(n.g, n.params, n.input, n.batch, 8, 8, ref);
    hq_npz_t *q = NULL;
    hq_error_t err = {0};
    if (hqi_quant_build_params(n.g, n.params, d, &q, &err))
        fail_msg("build: %s", err.message);
    hq_layer_params_t *p = &hq_graph_layer_mut(n.g, hq_graph_find(n.g, "resize"))->params;
    const hq_layer_params_t saved = *p;
    /* nearest rounding up, a scale that is not out / in, tf_half_pixel_for_nn */
    for (int form = 0; form <= 3; form++) {
        p = &hq_graph_layer_mut(n.g, hq_graph_find(n.g, "resize"))->params;
        *p = saved;
        if (form == 0) {
            p->resize_method = HQ_RESIZE_NEAREST;
            p->nearest_ceil = true;
        } else if (form == 1) {
            p->resize_scales[0] = p->resize_scales[1] = 1.9f;
        } else if (form == 2) {
            p->resize_method = HQ_RESIZE_NEAREST;
            p->resize_coords = HQ_RESIZE_TF_HALF_PIXEL_FOR_NN;
        }
        if (hq_graph_finalize(n.g, "net", &err))
            fail_msg("finalize: %s", err.message);
        hq_emulator_t *emu = NULL;
        hq_status_t st = hq_emulator_create(n.g, q, HQ_TARGET_QUANTIZED, "net", &emu, &err);
        if (form == 3) { /* the layer as it was: no refusal */
            assert_int_equal(st, HQ_OK);
            hq_emulator_destroy(emu);
            continue;
        }
        if (st != HQ_ERR_UNSUPPORTED)
            fail_msg("form %d: status %d, '%s'", form, (int)st, err.message);
        assert_null(emu);
        if (!strstr(err.message, "layer 'net/resize'") || !strstr(err.message, "no integer form"))
            fail_msg("form %d: '%s'", form, err.message);
        assert_null(strchr(err.message, '\n'));
    }
    hq_npz_destroy(q);
    free(d);
    free(ref);
    free_net(&n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tiny_model_output_matches_the_hand_computation),
        cmocka_unit_test(a8_w8_emulation_is_close_to_float),
        cmocka_unit_test(a16_w16_emulation_is_much_closer_to_float),
        cmocka_unit_test(a_softmax_head_is_quantized_too),
        cmocka_unit_test(results_do_not_depend_on_batching_or_threads),
        cmocka_unit_test(taps_see_every_layer_and_a_missing_key_is_refused),
        cmocka_unit_test(resize_forms_without_an_integer_kernel_are_refused_naming_the_layer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
