/* fuzz_qparams.c — libFuzzer target for the q.npz decoder (hqi_qmodel_load) and the integer
 * reference kernels behind it: a valid q.npz is built once for a small graph that uses every kind
 * of integer key (conv with leaky, dw with a fused sigmoid table, ew_add, ew_mult, avgpool,
 * bilinear resize, pad, concat, standalone activation table, softmax), then the fuzz input is
 * XORed over the values of its tensors (keys, dtypes and shapes kept), and the result is loaded
 * and, when accepted, run. Property: the decoder accepts only params the kernels can run without
 * reading or writing out of bounds or overflowing (ASan + UBSan watch). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "emulate/qemulator.h"
#include "hq/graph.h"
#include "hq/tensor.h"
#include "numerics/qmodel.h"
#include "test_graphs.h"

static hq_graph_t *graph;
static hq_npz_t *base;
static float input[2 * 4 * 4 * 2];

/* A k x k conv with "same" padding and activation_alpha 0.1 (the leaky slope). */
static void conv(int index, int k, int cin, int cout, hq_activation_t act)
{
    test_set_conv(graph, index, k, cin, cout, k / 2, act);
    hq_graph_layer_mut(graph, index)->params.activation_alpha = 0.1f;
}

static void put(hq_npz_t *npz, const char *key, int ndim, const int64_t *shape, float seed)
{
    hq_tensor_t *t = NULL;
    if (hq_tensor_create(HQ_DTYPE_FLOAT32, ndim, shape, &t, NULL) != HQ_OK)
        abort();
    for (int64_t i = 0; i < hq_tensor_count(t); i++)
        ((float *)t->data)[i] = seed * (float)((i * 7919) % 13 - 6) / 6.0f;
    if (hq_npz_put(npz, key, t, NULL) != HQ_OK)
        abort();
}

static void setup(void)
{
    if (hq_graph_create("f", &graph, NULL) != HQ_OK)
        abort();
    int in = test_add_layer(graph, "in", HQ_LAYER_INPUT, -1);
    hq_shape_t s = {4, {-1, 4, 4, 2}};
    hq_layer_set_output_shape(graph, in, &s, NULL);
    int c1 = test_add_layer(graph, "c1", HQ_LAYER_CONV, in);
    conv(c1, 3, 2, 4, HQ_ACT_LEAKY);
    int dw = test_add_layer(graph, "dw", HQ_LAYER_DW, c1);
    conv(dw, 3, 1, 4, HQ_ACT_SIGMOID);
    int sum = test_add_layer(graph, "sum", HQ_LAYER_EW_ADD, c1);
    hq_graph_connect(graph, dw, 0, sum, NULL);
    int mul = test_add_layer(graph, "mul", HQ_LAYER_EW_MULT, sum);
    hq_graph_connect(graph, dw, 0, mul, NULL);
    int pad = test_add_layer(graph, "pad", HQ_LAYER_PAD, mul);
    hq_layer_params_t *p = &hq_graph_layer_mut(graph, pad)->params;
    p->pads[2] = p->pads[3] = 1;
    p->pad_value = 0.5f;
    int ap = test_add_layer(graph, "ap", HQ_LAYER_AVGPOOL, pad);
    p = &hq_graph_layer_mut(graph, ap)->params;
    p->kernel_h = p->kernel_w = 2;
    p->stride_h = p->stride_w = 1;
    p->pads[0] = p->pads[1] = 1;
    int rs = test_add_layer(graph, "rs", HQ_LAYER_RESIZE, ap);
    hq_graph_layer_mut(graph, rs)->params.resize_method = HQ_RESIZE_BILINEAR;
    hq_graph_layer_mut(graph, rs)->params.resize_coords = HQ_RESIZE_HALF_PIXEL;
    hq_shape_t rshape = {4, {-1, 3, 3, 4}};
    hq_graph_layer_mut(graph, rs)->output_shape = rshape;
    int act = test_add_layer(graph, "act", HQ_LAYER_ACTIVATION, rs);
    hq_graph_layer_mut(graph, act)->params.activation = HQ_ACT_TANH;
    int sm = test_add_layer(graph, "sm", HQ_LAYER_SOFTMAX, act);
    hq_graph_layer_mut(graph, sm)->params.axis = 3;
    int cat = test_add_layer(graph, "cat", HQ_LAYER_CONCAT, sm);
    hq_graph_connect(graph, sm, 0, cat, NULL);
    test_add_layer(graph, "out", HQ_LAYER_OUTPUT, cat);
    if (hq_graph_finalize(graph, "f", NULL) != HQ_OK)
        abort();
    hq_npz_t *fpo = NULL;
    hq_npz_create(&fpo, NULL);
    int64_t k1[4] = {3, 3, 2, 4}, kd[4] = {3, 3, 1, 4}, b4[1] = {4};
    put(fpo, "f/c1/kernel:0", 4, k1, 0.5f);
    put(fpo, "f/c1/bias:0", 1, b4, 0.1f);
    put(fpo, "f/dw/kernel:0", 4, kd, 0.7f);
    put(fpo, "f/dw/bias:0", 1, b4, 0.2f);
    const int count = hq_graph_layer_count(graph);
    hqi_layer_quant_t *d = calloc((size_t)count, sizeof *d);
    for (int i = 0; i < count; i++) {
        const hq_layer_t *l = hq_graph_layer(graph, i);
        int wb = l->type == HQ_LAYER_CONV || l->type == HQ_LAYER_DW ? (i == dw ? 16 : 4) : 0;
        d[i] = (hqi_layer_quant_t){8, wb, i == dw || i == sum ? 16 : 8, -2.0f, 3.0f, 0, 0, 0, NULL};
    }
    if (hqi_quant_build_params(graph, fpo, d, &base, NULL) != HQ_OK)
        abort();
    free(d);
    hq_npz_destroy(fpo);
    for (size_t i = 0; i < sizeof input / sizeof input[0]; i++)
        input[i] = (float)((int)(i * 37 % 11) - 5) / 2.0f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!graph)
        setup();
    hq_npz_t *q = NULL;
    if (hq_npz_create(&q, NULL) != HQ_OK)
        return 0;
    size_t at = 0;
    for (size_t i = 0; i < hq_npz_count(base); i++) {
        hq_tensor_t *t = NULL;
        if (hq_tensor_clone(hq_npz_get_index(base, i), &t, NULL) != HQ_OK)
            break;
        uint8_t *bytes = t->data;
        for (size_t b = 0; b < t->nbytes && at < size; b++)
            bytes[b] ^= data[at++];
        if (hq_npz_put(q, hq_npz_key(base, i), t, NULL) != HQ_OK)
            break;
    }
    hqi_qemu_t *emu = NULL;
    if (hqi_qemu_create(graph, q, "fuzz.q.npz", &emu, NULL) == HQ_OK) {
        const float *ins[1] = {input};
        float out[2 * 4 * 4 * 8];
        float *outs[1] = {out};
        hq_error_t err;
        hqi_qemu_run(emu, 2, ins, outs, NULL, NULL, &err);
        hqi_qemu_destroy(emu);
    }
    hq_npz_destroy(q);
    return 0;
}
