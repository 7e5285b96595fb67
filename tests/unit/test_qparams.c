/* test_qparams.c — hqi_quant_build_params (float params + decisions -> q.npz keys) and
 * hqi_qmodel_load (q.npz -> checked per-layer structs) on small crafted graphs. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hq/graph.h"
#include "hq/tensor.h"
#include "numerics/qmodel.h"
#include "test_graphs.h"

static const hq_tensor_t *get(const hq_npz_t *q, const char *key, hq_dtype_t dtype)
{
    const hq_tensor_t *t = hq_npz_get(q, key);
    if (!t)
        fail_msg("missing key %s", key);
    assert_int_equal(t->dtype, dtype);
    return t;
}

/* in [1,1,1,1] -> conv 1x1 1->2 (activation act) -> out; weights {0.5, -0.25}, bias {0.1, -0.3} */
typedef struct small {
    hq_graph_t *g;
    hq_npz_t *fpo;
    hqi_layer_quant_t d[3];
} small_t;

static small_t make_small(hq_activation_t act)
{
    small_t s = {0};
    assert_int_equal(hq_graph_create("m", &s.g, NULL), HQ_OK);
    int in = test_add_layer(s.g, "in", HQ_LAYER_INPUT, -1);
    hq_shape_t shape = {4, {-1, 1, 1, 1}};
    assert_int_equal(hq_layer_set_output_shape(s.g, in, &shape, NULL), HQ_OK);
    int conv = test_add_layer(s.g, "conv", HQ_LAYER_CONV, in);
    hq_layer_params_t *p = &hq_graph_layer_mut(s.g, conv)->params;
    p->kernel_h = p->kernel_w = 1;
    p->kernel_in = 1;
    p->kernel_out = 2;
    p->has_bias = true;
    p->activation = act;
    p->activation_alpha = 0.1f;
    test_add_layer(s.g, "out", HQ_LAYER_OUTPUT, conv);
    assert_int_equal(hq_graph_finalize(s.g, "m", NULL), HQ_OK);
    assert_int_equal(hq_npz_create(&s.fpo, NULL), HQ_OK);
    const float w[2] = {0.5f, -0.25f}, b[2] = {0.1f, -0.3f};
    int64_t ks[4] = {1, 1, 1, 2}, bs[1] = {2};
    test_put_floats(s.fpo, "m/conv/kernel:0", 4, ks, w);
    test_put_floats(s.fpo, "m/conv/bias:0", 1, bs, b);
    s.d[0] = (hqi_layer_quant_t){8, 0, 8, 0.0f, 2.0f, 0, 0, 0, NULL};
    s.d[1] = (hqi_layer_quant_t){8, 8, 8, -1.0f, 1.0f, 0, 0, 0, NULL};
    s.d[2] = (hqi_layer_quant_t){8, 0, 8, -5.0f, 5.0f, 0, 0, 0, NULL}; /* ignored: pass-through */
    return s;
}

static void free_small(small_t *s)
{
    hq_graph_destroy(s->g);
    hq_npz_destroy(s->fpo);
}

static void weights_are_symmetric_per_channel_and_bias_is_in_accumulator_scale(void **state)
{
    (void)state;
    small_t s = make_small(HQ_ACT_LINEAR);
    hq_npz_t *q = NULL;
    hq_error_t err = {0};
    if (hqi_quant_build_params(s.g, s.fpo, s.d, &q, &err))
        fail_msg("%s", err.message);
    const int8_t *k = get(q, "m/conv/kernel:0", HQ_DTYPE_INT8)->data;
    assert_int_equal(k[0], 127);
    assert_int_equal(k[1], -127);
    const float *ks = get(q, "m/conv/kernel_scale:0", HQ_DTYPE_FLOAT32)->data;
    assert_float_equal(ks[0], (float)(0.5 / 127), 0);
    assert_float_equal(ks[1], (float)(0.25 / 127), 0);
    const float s_in = *(const float *)get(q, "m/in/qp_scale:0", HQ_DTYPE_FLOAT32)->data;
    assert_float_equal(s_in, (float)(2.0 / 255), 0);
    const int64_t *bias = get(q, "m/conv/bias:0", HQ_DTYPE_INT64)->data;
    assert_int_equal(bias[0], (int64_t)round(0.1f / ((double)s_in * ks[0])));
    assert_int_equal(bias[1], (int64_t)round(-0.3f / ((double)s_in * ks[1])));
    const int32_t *m = get(q, "m/conv/output_multiplier:0", HQ_DTYPE_INT32)->data;
    const int32_t *sh = get(q, "m/conv/output_shift:0", HQ_DTYPE_INT32)->data;
    const float s_out = *(const float *)get(q, "m/conv/qp_scale:0", HQ_DTYPE_FLOAT32)->data;
    int32_t em, es;
    hqi_quant_multiplier((double)s_in * ks[1] / s_out, &em, &es);
    assert_int_equal(m[1], em);
    assert_int_equal(sh[1], es);
    assert_int_equal(*(const int32_t *)get(q, "m/conv/requant_path:0", HQ_DTYPE_INT32)->data,
                     HQRT_PATH_GEMMLOWP);
    const int32_t *clamp = get(q, "m/conv/act_clamp:0", HQ_DTYPE_INT32)->data;
    assert_int_equal(clamp[0], 0);
    assert_int_equal(clamp[1], 255);
    /* the output layer repeats its input's encoding, not its own decision */
    assert_float_equal(*(const float *)get(q, "m/out/qp_scale:0", HQ_DTYPE_FLOAT32)->data, s_out,
                       0);
    hq_npz_destroy(q);
    free_small(&s);
}

static void four_and_sixteen_bit_weights_use_their_ranges_and_paths(void **state)
{
    (void)state;
    small_t s = make_small(HQ_ACT_RELU6);
    hq_npz_t *q = NULL;
    s.d[1].weight_bits = 4;
    assert_int_equal(hqi_quant_build_params(s.g, s.fpo, s.d, &q, NULL), HQ_OK);
    const int8_t *k = get(q, "m/conv/kernel:0", HQ_DTYPE_INT8)->data;
    assert_int_equal(k[0], 7);
    assert_int_equal(k[1], -7);
    /* relu6 on [-1, 1] at 8 bit: zp 127 (float32 scale), max min(255, 127 + round(6/s)) */
    const int32_t *clamp = get(q, "m/conv/act_clamp:0", HQ_DTYPE_INT32)->data;
    assert_int_equal(clamp[0], 127);
    assert_int_equal(clamp[1], 255);
    hq_npz_destroy(q);
    s.d[0].output_bits = 16;
    s.d[1].weight_bits = 16;
    s.d[1].output_bits = 16;
    assert_int_equal(hqi_quant_build_params(s.g, s.fpo, s.d, &q, NULL), HQ_OK);
    const int16_t *k16 = get(q, "m/conv/kernel:0", HQ_DTYPE_INT16)->data;
    assert_int_equal(k16[0], 32767);
    assert_int_equal(*(const int32_t *)get(q, "m/conv/requant_path:0", HQ_DTYPE_INT32)->data,
                     HQRT_PATH_WIDE);
    assert_int_equal(*(const int32_t *)get(q, "m/out/activation_bits:0", HQ_DTYPE_INT32)->data, 16);
    hq_npz_destroy(q);
    /* weights_clipping: |w| clipped to 0.3 before the scale is chosen */
    s.d[1].weight_bits = 8;
    s.d[1].weight_clip = 0.3f;
    assert_int_equal(hqi_quant_build_params(s.g, s.fpo, s.d, &q, NULL), HQ_OK);
    const float *ks = get(q, "m/conv/kernel_scale:0", HQ_DTYPE_FLOAT32)->data;
    assert_float_equal(ks[0], (float)(0.3 / 127), 0);
    assert_float_equal(ks[1], (float)(0.25 / 127), 0);
    hq_npz_destroy(q);
    free_small(&s);
}

static void leaky_gets_negative_multipliers_and_sigmoid_a_table(void **state)
{
    (void)state;
    small_t s = make_small(HQ_ACT_LEAKY);
    hq_npz_t *q = NULL;
    assert_int_equal(hqi_quant_build_params(s.g, s.fpo, s.d, &q, NULL), HQ_OK);
    const int32_t *m = get(q, "m/conv/output_multiplier:0", HQ_DTYPE_INT32)->data;
    const int32_t *mn = get(q, "m/conv/output_multiplier_neg:0", HQ_DTYPE_INT32)->data;
    const int32_t *sh = get(q, "m/conv/output_shift:0", HQ_DTYPE_INT32)->data;
    const int32_t *shn = get(q, "m/conv/output_shift_neg:0", HQ_DTYPE_INT32)->data;
    /* negative ratio = positive ratio * 0.1 */
    double pos = ldexp((double)m[0], sh[0] - 31), neg = ldexp((double)mn[0], shn[0] - 31);
    assert_float_equal(neg / pos, 0.1, 1e-6);
    assert_null(hq_npz_get(q, "m/conv/lut:0"));
    hq_npz_destroy(q);
    free_small(&s);

    s = make_small(HQ_ACT_SIGMOID);
    s.d[1].out_min = 0.0f;
    s.d[1].out_max = 1.0f;
    s.d[1].pre_min = -4.0f;
    s.d[1].pre_max = 4.0f;
    assert_int_equal(hqi_quant_build_params(s.g, s.fpo, s.d, &q, NULL), HQ_OK);
    const hq_tensor_t *lut = get(q, "m/conv/lut:0", HQ_DTYPE_UINT8);
    assert_int_equal(hq_tensor_count(lut), 256);
    const uint8_t *l = lut->data;
    for (int i = 1; i < 256; i++)
        assert_true(l[i] >= l[i - 1]); /* sigmoid is monotonic */
    assert_float_equal(*(const float *)get(q, "m/conv/pre_scale:0", HQ_DTYPE_FLOAT32)->data,
                       (float)(8.0 / 255), 0);
    int32_t pre_zp = *(const int32_t *)get(q, "m/conv/pre_zp:0", HQ_DTYPE_INT32)->data;
    /* sigmoid(0) = 0.5; 0.5 / float32(1/255) = 127.49999 -> 127 */
    assert_int_equal(l[pre_zp], 127);
    hq_npz_destroy(q);
    free_small(&s);
}

static void concat_inputs_with_different_encodings_are_refused(void **state)
{
    (void)state;
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("c", &g, NULL), HQ_OK);
    int a = test_add_layer(g, "a", HQ_LAYER_INPUT, -1),
        b = test_add_layer(g, "b", HQ_LAYER_INPUT, -1);
    hq_shape_t shape = {4, {-1, 1, 1, 2}};
    assert_int_equal(hq_layer_set_output_shape(g, a, &shape, NULL), HQ_OK);
    assert_int_equal(hq_layer_set_output_shape(g, b, &shape, NULL), HQ_OK);
    int cat = test_add_layer(g, "cat", HQ_LAYER_CONCAT, a);
    assert_int_equal(hq_graph_connect(g, b, 0, cat, NULL), HQ_OK);
    test_add_layer(g, "out", HQ_LAYER_OUTPUT, cat);
    assert_int_equal(hq_graph_finalize(g, "c", NULL), HQ_OK);
    hqi_layer_quant_t d[4] = {{8, 0, 8, -1, 1, 0, 0, 0, NULL},
                              {8, 0, 8, -1, 1, 0, 0, 0, NULL},
                              {8, 0, 8, -1, 1, 0, 0, 0, NULL},
                              {8, 0, 8, -1, 1, 0, 0, 0, NULL}};
    hq_npz_t *q = NULL;
    hq_error_t err = {0};
    assert_int_equal(hqi_quant_build_params(g, NULL, d, &q, &err), HQ_OK); /* shared: fine */
    hq_npz_destroy(q);
    d[1].out_max = 2;
    assert_int_equal(hqi_quant_build_params(g, NULL, d, &q, &err), HQ_ERR_INVALID);
    assert_null(q);
    assert_non_null(strstr(err.message, "c/cat"));
    assert_non_null(strstr(err.message, "c/b"));
    hq_graph_destroy(g);
}

static void loader_checks_dtypes_and_ranges_naming_the_key(void **state)
{
    (void)state;
    small_t s = make_small(HQ_ACT_RELU);
    hq_npz_t *q = NULL;
    hq_error_t err = {0};
    assert_int_equal(hqi_quant_build_params(s.g, s.fpo, s.d, &q, NULL), HQ_OK);
    hqi_qmodel_t *m = NULL;
    if (hqi_qmodel_load(s.g, q, "m.q.npz", &m, &err))
        fail_msg("%s", err.message);
    assert_int_equal(m->layers[1].weight_bits, 8);
    assert_int_equal(m->layers[1].stage.count, 2);
    assert_int_equal(m->layers[1].stage.act_min, m->layers[1].zp);
    hqi_qmodel_destroy(m);
    /* a float kernel */
    int64_t ks[4] = {1, 1, 1, 2};
    const float w[2] = {1, 2};
    hq_npz_t *bad = NULL;
    assert_int_equal(hq_npz_create(&bad, NULL), HQ_OK);
    for (size_t i = 0; i < hq_npz_count(q); i++)
        assert_int_equal(hq_npz_put_copy(bad, hq_npz_key(q, i), hq_npz_get_index(q, i), NULL),
                         HQ_OK);
    test_put_floats(bad, "m/conv/kernel:0", 4, ks, w);
    assert_int_equal(hqi_qmodel_load(s.g, bad, "m.q.npz", &m, &err), HQ_ERR_INVALID);
    assert_null(m);
    assert_non_null(strstr(err.message, "m/conv/kernel:0"));
    /* a shift out of range */
    hq_npz_destroy(bad);
    assert_int_equal(hq_npz_create(&bad, NULL), HQ_OK);
    for (size_t i = 0; i < hq_npz_count(q); i++)
        assert_int_equal(hq_npz_put_copy(bad, hq_npz_key(q, i), hq_npz_get_index(q, i), NULL),
                         HQ_OK);
    hq_tensor_t *t = NULL;
    int64_t two = 2;
    assert_int_equal(hq_tensor_create(HQ_DTYPE_INT32, 1, &two, &t, NULL), HQ_OK);
    ((int32_t *)t->data)[0] = 40;
    assert_int_equal(hq_npz_put(bad, "m/conv/output_shift:0", t, NULL), HQ_OK);
    assert_int_equal(hqi_qmodel_load(s.g, bad, "m.q.npz", &m, &err), HQ_ERR_INVALID);
    assert_non_null(strstr(err.message, "m/conv"));
    hq_npz_destroy(bad);
    hq_npz_destroy(q);
    free_small(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(weights_are_symmetric_per_channel_and_bias_is_in_accumulator_scale),
        cmocka_unit_test(four_and_sixteen_bit_weights_use_their_ranges_and_paths),
        cmocka_unit_test(leaky_gets_negative_multipliers_and_sigmoid_a_table),
        cmocka_unit_test(concat_inputs_with_different_encodings_are_refused),
        cmocka_unit_test(loader_checks_dtypes_and_ranges_naming_the_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
