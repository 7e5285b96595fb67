/* test_graphs.h — building small graphs, params and data for the unit tests and fuzz targets:
 * layers added and linked through the graph API, conv geometry, deterministic pseudo-random
 * tensors put into an npz. Every function stops the test on an error from the library (a cmocka
 * failure naming the call; abort() in the fuzz targets, built with TEST_GRAPHS_ABORT), so a
 * caller never checks a status. */
#ifndef HQ_TEST_GRAPHS_H
#define HQ_TEST_GRAPHS_H

#include <stdint.h>

#include "hq/graph.h"
#include "hq/tensor.h"

/* An NHWC shape with a free batch: {-1, h, w, c}. */
hq_shape_t test_shape4(int64_t h, int64_t w, int64_t c);

/* Adds layer `name` of `type` and connects output 0 of layer `from` to it (none when from < 0).
 * Returns its index. */
int test_add_layer(hq_graph_t *g, const char *name, hq_layer_type_t type, int from);

/* Connects output `port` of layer `from` to the next free input of layer `to`. */
void test_connect(hq_graph_t *g, int from, int port, int to);

/* Adds an input layer `name` with output shape {-1, h, w, c}. Returns its index. */
int test_add_input(hq_graph_t *g, const char *name, int64_t h, int64_t w, int64_t c);

/* Conv-like geometry of layer `index`: k x k kernel, cin -> cout channels, explicit padding of
 * `pad` on every side, a bias, the fused activation `act`. Stride and dilation are left as
 * hq_graph_add_layer set them. */
void test_set_conv(hq_graph_t *g, int index, int k, int cin, int cout, int pad,
                   hq_activation_t act);

/* hq_graph_finalize under the file name "test.hn". */
void test_finalize(hq_graph_t *g);

/* One conv of test_conv_chain: its output channels, fused activation, and the seeds of its
 * params: the kernel test_fill(kernel_seed), the bias bias_offset + 0.1 * test_fill(bias_seed). */
typedef struct test_conv {
    int channels;
    hq_activation_t act;
    uint32_t kernel_seed, bias_seed;
    float bias_offset;
} test_conv_t;

/* Net "net": input_layer1 ({-1, h, w, c}) -> conv1 -> ... -> conv<count> -> output_layer1, each
 * conv k x k with a padding of k / 2 on every side (so the output is h x w too) and the channels
 * and activation of convs[i]; its kernel ({k, k, in, out}) and bias go into *params (created
 * here, the caller destroys it with the graph). Finalized. */
hq_graph_t *test_conv_chain(int64_t h, int64_t w, int64_t c, int k, int count,
                            const test_conv_t *convs, hq_npz_t **params);

/* n deterministic values in [-1, 1) drawn from `seed` (the same seed, the same values). */
void test_fill(float *x, int64_t n, uint32_t seed);

/* Puts a float32 tensor of `shape` filled by test_fill(seed) under `key`. Returns its data, owned
 * by the npz. */
float *test_put_filled(hq_npz_t *npz, const char *key, int ndim, const int64_t *shape,
                       uint32_t seed);

/* Puts a float32 tensor of `shape` holding a copy of `values` under `key`. */
void test_put_floats(hq_npz_t *npz, const char *key, int ndim, const int64_t *shape,
                     const float *values);

/* The next value of the linear congruential sequence in *state, uniform in [-1, 1) with a step of
 * 1/32768. */
float test_uniform(uint32_t *state);

/* Puts a float32 tensor of `shape` holding amp * test_uniform(state), element by element. */
void test_put_uniform(hq_npz_t *npz, const char *key, int ndim, const int64_t *shape, float amp,
                      uint32_t *state);

#endif
