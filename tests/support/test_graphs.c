/* test_graphs.c — the graph, params and data builders shared by the unit tests and fuzz targets
 * (test_graphs.h). */
#include "test_graphs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TEST_GRAPHS_ABORT
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#endif

/* Stops the test: a cmocka failure in the unit tests, abort() in the fuzz targets. */
static void stop(const char *call, const char *what, const hq_error_t *err)
{
#ifdef TEST_GRAPHS_ABORT
    fprintf(stderr, "%s %s: %s\n", call, what, err->message);
    abort();
#else
    fail_msg("%s %s: %s", call, what, err->message);
#endif
}

hq_shape_t test_shape4(int64_t h, int64_t w, int64_t c)
{
    hq_shape_t s = {4, {-1, h, w, c}};
    return s;
}

int test_add_layer(hq_graph_t *g, const char *name, hq_layer_type_t type, int from)
{
    int index = -1;
    hq_error_t err = {0};
    if (hq_graph_add_layer(g, name, type, &index, &err) != HQ_OK)
        stop("hq_graph_add_layer", name, &err);
    if (from >= 0)
        test_connect(g, from, 0, index);
    return index;
}

void test_connect(hq_graph_t *g, int from, int port, int to)
{
    hq_error_t err = {0};
    if (hq_graph_connect(g, from, port, to, &err) != HQ_OK)
        stop("hq_graph_connect", hq_graph_layer(g, to)->name, &err);
}

int test_add_input(hq_graph_t *g, const char *name, int64_t h, int64_t w, int64_t c)
{
    int index = test_add_layer(g, name, HQ_LAYER_INPUT, -1);
    hq_shape_t shape = test_shape4(h, w, c);
    hq_error_t err = {0};
    if (hq_layer_set_output_shape(g, index, &shape, &err) != HQ_OK)
        stop("hq_layer_set_output_shape", name, &err);
    return index;
}

void test_set_conv(hq_graph_t *g, int index, int k, int cin, int cout, int pad, hq_activation_t act)
{
    hq_layer_params_t *p = &hq_graph_layer_mut(g, index)->params;
    p->kernel_h = p->kernel_w = k;
    p->kernel_in = cin;
    p->kernel_out = cout;
    p->padding = HQ_PADDING_EXPLICIT;
    p->pads[0] = p->pads[1] = p->pads[2] = p->pads[3] = pad;
    p->has_bias = true;
    p->activation = act;
}

void test_finalize(hq_graph_t *g)
{
    hq_error_t err = {0};
    if (hq_graph_finalize(g, "test.hn", &err) != HQ_OK)
        stop("hq_graph_finalize", hq_graph_net_name(g), &err);
}

hq_graph_t *test_conv_chain(int64_t h, int64_t w, int64_t c, int k, int count,
                            const test_conv_t *convs, hq_npz_t **params)
{
    hq_graph_t *g = NULL;
    hq_error_t err = {0};
    if (hq_graph_create("net", &g, &err) != HQ_OK)
        stop("hq_graph_create", "net", &err);
    if (hq_npz_create(params, &err) != HQ_OK)
        stop("hq_npz_create", "params", &err);
    int from = test_add_input(g, "input_layer1", h, w, c);
    int64_t cin = c;
    char key[64];
    for (int i = 0; i < count; i++) { /* the layers and their kernels, then the biases */
        char name[32];
        snprintf(name, sizeof name, "conv%d", i + 1);
        from = test_add_layer(g, name, HQ_LAYER_CONV, from);
        test_set_conv(g, from, k, (int)cin, convs[i].channels, k / 2, convs[i].act);
        int64_t kshape[4] = {k, k, cin, convs[i].channels};
        snprintf(key, sizeof key, "net/%s/kernel:0", name);
        test_put_filled(*params, key, 4, kshape, convs[i].kernel_seed);
        cin = convs[i].channels;
    }
    for (int i = 0; i < count; i++) {
        int64_t bshape[1] = {convs[i].channels};
        snprintf(key, sizeof key, "net/conv%d/bias:0", i + 1);
        float *b = test_put_filled(*params, key, 1, bshape, convs[i].bias_seed);
        for (int o = 0; o < convs[i].channels; o++)
            b[o] = convs[i].bias_offset + 0.1f * b[o];
    }
    test_add_layer(g, "output_layer1", HQ_LAYER_OUTPUT, from);
    test_finalize(g);
    return g;
}

void test_fill(float *x, int64_t n, uint32_t seed)
{
    uint32_t s = seed * 2654435761u + 1u;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((double)(s >> 8) / (double)(1u << 24) * 2.0 - 1.0);
    }
}

/* Puts a float32 tensor of `shape` under `key`, holding `values`, or test_fill(seed) when NULL;
 * returns it as the npz holds it. */
static const hq_tensor_t *put_tensor(hq_npz_t *npz, const char *key, int ndim, const int64_t *shape,
                                     const float *values, uint32_t seed)
{
    hq_tensor_t *t = NULL;
    hq_error_t err = {0};
    if (hq_tensor_create(HQ_DTYPE_FLOAT32, ndim, shape, &t, &err) != HQ_OK)
        stop("hq_tensor_create", key, &err);
    if (values)
        memcpy(t->data, values, t->nbytes);
    else
        test_fill(t->data, hq_tensor_count(t), seed);
    if (hq_npz_put(npz, key, t, &err) != HQ_OK)
        stop("hq_npz_put", key, &err);
    return hq_npz_get(npz, key);
}

float *test_put_filled(hq_npz_t *npz, const char *key, int ndim, const int64_t *shape,
                       uint32_t seed)
{
    return put_tensor(npz, key, ndim, shape, NULL, seed)->data;
}

void test_put_floats(hq_npz_t *npz, const char *key, int ndim, const int64_t *shape,
                     const float *values)
{
    put_tensor(npz, key, ndim, shape, values, 0);
}

float test_uniform(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return (float)((*state >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

void test_put_uniform(hq_npz_t *npz, const char *key, int ndim, const int64_t *shape, float amp,
                      uint32_t *state)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= shape[d];
    float *v = malloc((size_t)n * sizeof *v);
    if (!v)
        abort();
    for (int64_t i = 0; i < n; i++)
        v[i] = amp * test_uniform(state);
    test_put_floats(npz, key, ndim, shape, v);
    free(v);
}
