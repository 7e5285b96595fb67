/* test_noise.c — hq_analyze_noise on a quantized archive built here (decisions from float min/max,
 * no optimizer): cumulative SNR decreases along a chain, partial SNR singles out the layer with
 * 4-bit weights, results land in q.npz, and a non-quantized archive is refused. */
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

#include "hq/archive.h"
#include "hq/dataset.h"
#include "hq/emulate.h"
#include "hq/quantize.h"
#include "numerics/qmodel.h"
#include "test_graphs.h"

/* The state of test_uniform for the weights and inputs; make() restarts it. */
static uint32_t rng = 99;

typedef struct ranges {
    float lo[16], hi[16];
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
        r->lo[layer] = fminf(r->lo[layer], data[i]);
        r->hi[layer] = fmaxf(r->hi[layer], data[i]);
    }
    return HQ_OK;
}

enum { SAMPLES = 12, IN_SIZE = 6 * 6 * 4 };

typedef struct fixture {
    hq_archive_t *archive;
    hq_dataset_t *data;
    char path[64];
    int c1, c2, c3, out;
} fixture_t;

/* in 6x6x4 -> c1 3x3 8 relu -> c2 3x3 8 relu (weight_bits c2_bits) -> c3 1x1 4 -> out */
static fixture_t make(int c2_bits)
{
    fixture_t f = {0};
    hq_error_t err = {0};
    rng = 99;
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("chain", &g, &err), HQ_OK);
    int in = test_add_layer(g, "in", HQ_LAYER_INPUT, -1);
    hq_shape_t s = {4, {-1, 6, 6, 4}};
    assert_int_equal(hq_layer_set_output_shape(g, in, &s, &err), HQ_OK);
    f.c1 = test_add_layer(g, "c1", HQ_LAYER_CONV, in);
    test_set_conv(g, f.c1, 3, 4, 8, 1, HQ_ACT_RELU);
    f.c2 = test_add_layer(g, "c2", HQ_LAYER_CONV, f.c1);
    test_set_conv(g, f.c2, 3, 8, 8, 1, HQ_ACT_RELU);
    f.c3 = test_add_layer(g, "c3", HQ_LAYER_CONV, f.c2);
    test_set_conv(g, f.c3, 1, 8, 4, 0, HQ_ACT_LINEAR);
    f.out = test_add_layer(g, "out", HQ_LAYER_OUTPUT, f.c3);
    assert_int_equal(hq_graph_finalize(g, "chain", &err), HQ_OK);
    hq_npz_t *fpo = NULL;
    assert_int_equal(hq_npz_create(&fpo, &err), HQ_OK);
    int64_t k1[4] = {3, 3, 4, 8}, k2[4] = {3, 3, 8, 8}, k3[4] = {1, 1, 8, 4}, b8[1] = {8},
            b4[1] = {4};
    test_put_uniform(fpo, "chain/c1/kernel:0", 4, k1, 0.4f, &rng);
    test_put_uniform(fpo, "chain/c1/bias:0", 1, b8, 0.1f, &rng);
    test_put_uniform(fpo, "chain/c2/kernel:0", 4, k2, 0.3f, &rng);
    test_put_uniform(fpo, "chain/c2/bias:0", 1, b8, 0.1f, &rng);
    test_put_uniform(fpo, "chain/c3/kernel:0", 4, k3, 0.5f, &rng);
    test_put_uniform(fpo, "chain/c3/bias:0", 1, b4, 0.1f, &rng);
    /* the data set, as a file */
    hq_tensor_t *x = NULL;
    int64_t xs[4] = {SAMPLES, 6, 6, 4};
    assert_int_equal(hq_tensor_create(HQ_DTYPE_FLOAT32, 4, xs, &x, &err), HQ_OK);
    for (int64_t i = 0; i < SAMPLES * IN_SIZE; i++)
        ((float *)x->data)[i] = 2.0f * test_uniform(&rng);
    snprintf(f.path, sizeof f.path, "/tmp/hq_test_noise_%d.npy", (int)getpid());
    assert_int_equal(hq_npy_write_file(f.path, x, &err), HQ_OK);
    /* decisions from float min/max over the data */
    ranges_t r;
    memset(&r, 0, sizeof r);
    hq_emulator_t *emu = NULL;
    assert_int_equal(hq_emulator_create(g, fpo, HQ_TARGET_FP_OPTIMIZED, "f", &emu, &err), HQ_OK);
    const float *ins[1] = {x->data};
    assert_int_equal(hq_emulator_run(emu, SAMPLES, ins, NULL, range_tap, &r, &err), HQ_OK);
    hq_emulator_destroy(emu);
    hq_tensor_destroy(x);
    hqi_layer_quant_t d[5];
    for (int i = 0; i < 5; i++) {
        const hq_layer_t *l = hq_graph_layer(g, i);
        int wb = l->type == HQ_LAYER_CONV ? (i == f.c2 ? c2_bits : 8) : 0;
        d[i] = (hqi_layer_quant_t){8, wb, 8, r.lo[i], r.hi[i], 0, 0, 0, NULL};
    }
    hq_npz_t *q = NULL;
    if (hqi_quant_build_params(g, fpo, d, &q, &err))
        fail_msg("%s", err.message);
    assert_int_equal(hq_archive_create("chain", &f.archive, &err), HQ_OK);
    assert_int_equal(hq_archive_set_graph(f.archive, g, &err), HQ_OK);
    assert_int_equal(hq_archive_set_params(f.archive, HQ_PARAMS_FP_OPTIMIZED, fpo, &err), HQ_OK);
    assert_int_equal(hq_archive_set_params(f.archive, HQ_PARAMS_QUANTIZED, q, &err), HQ_OK);
    hq_graph_t *ag = NULL;
    assert_int_equal(hq_archive_graph(f.archive, &ag, &err), HQ_OK);
    if (hq_dataset_open(f.path, ag, &f.data, &err))
        fail_msg("%s", err.message);
    return f;
}

static void unmake(fixture_t *f)
{
    hq_dataset_destroy(f->data);
    hq_archive_destroy(f->archive);
    unlink(f->path);
}

static float db_of(fixture_t *f, const char *layer, const char *what)
{
    hq_npz_t *q = NULL;
    assert_int_equal(hq_archive_params(f->archive, HQ_PARAMS_QUANTIZED, &q, NULL), HQ_OK);
    char key[256];
    snprintf(key, sizeof key, "chain/%s/layer_noise_analysis/%s:0", layer, what);
    const hq_tensor_t *t = hq_npz_get(q, key);
    if (!t)
        fail_msg("missing %s", key);
    assert_int_equal(t->dtype, HQ_DTYPE_FLOAT32);
    return *(const float *)t->data;
}

static void cumulative_snr_decreases_along_a_chain(void **state)
{
    (void)state;
    fixture_t f = make(8);
    hq_error_t err = {0};
    if (hq_analyze_noise(f.archive, f.data, 0, HQ_NOISE_SIMPLE, NULL, &err))
        fail_msg("%s", err.message);
    float in = db_of(&f, "in", "snr"), c1 = db_of(&f, "c1", "snr"), c2 = db_of(&f, "c2", "snr"),
          c3 = db_of(&f, "c3", "snr"), out = db_of(&f, "out", "snr");
    print_message("snr in %.1f c1 %.1f c2 %.1f c3 %.1f out %.1f dB\n", in, c1, c2, c3, out);
    assert_true(in > c1 && c1 > c2 && c2 > c3);
    assert_float_equal(c3, out, 1e-4); /* output_layer copies its input */
    assert_true(c3 > 20.0f && in < 100.0f);
    /* simple mode writes no partial SNR */
    hq_npz_t *q = NULL;
    assert_int_equal(hq_archive_params(f.archive, HQ_PARAMS_QUANTIZED, &q, NULL), HQ_OK);
    assert_null(hq_npz_get(q, "chain/c1/layer_noise_analysis/partial_snr:0"));
    unmake(&f);
}

static void partial_snr_singles_out_the_4_bit_layer(void **state)
{
    (void)state;
    fixture_t f = make(4);
    hq_error_t err = {0};
    if (hq_analyze_noise(f.archive, f.data, 8, HQ_NOISE_ADVANCED, NULL, &err))
        fail_msg("%s", err.message);
    float p1 = db_of(&f, "c1", "partial_snr"), p2 = db_of(&f, "c2", "partial_snr"),
          p3 = db_of(&f, "c3", "partial_snr"), out = db_of(&f, "out", "snr");
    print_message("partial c1 %.1f c2 (4-bit) %.1f c3 %.1f, cumulative out %.1f dB\n", p1, p2, p3,
                  out);
    assert_true(p2 < p1 && p2 < p3);
    /* one layer quantized is less noisy than all of them */
    assert_true(p1 > out && p2 >= out - 0.5f && p3 > out);
    assert_true(p1 < 200.0f && p3 < 200.0f); /* the override did reach the outputs */
    unmake(&f);
}

static void a_float_archive_is_refused(void **state)
{
    (void)state;
    fixture_t f = make(8);
    hq_error_t err = {0};
    assert_int_equal(hq_archive_set_params(f.archive, HQ_PARAMS_QUANTIZED, NULL, &err), HQ_OK);
    assert_int_equal(hq_analyze_noise(f.archive, f.data, 0, HQ_NOISE_SIMPLE, NULL, &err),
                     HQ_ERR_STATE);
    assert_non_null(strstr(err.message, "hq optimize"));
    unmake(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cumulative_snr_decreases_along_a_chain),
        cmocka_unit_test(partial_snr_singles_out_the_4_bit_layer),
        cmocka_unit_test(a_float_archive_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
