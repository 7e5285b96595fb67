/* test_profile.c — hq's cost model and hq_profile: MAC counts by hand, the 16-bit cost factors,
 * unknown architectures and layer names refused, the estimate labelled by its model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hq/deploy.h"
#include "hq/hq.h"

static hq_archive_t *conv_archive(void)
{
    hq_archive_t *a = NULL;
    hq_error_t err = {0};
    if (hq_parse_onnx(HQ_FIXTURES "/onnx/conv.onnx", NULL, &a, &err) != HQ_OK)
        fail_msg("%s", err.message);
    return a;
}

static void every_known_architecture_has_a_model_and_unknown_ones_are_listed(void **state)
{
    (void)state;
    const char *known[] = {"hailo8",   "hailo8r",  "hailo8l", "hailo15h",
                           "hailo15m", "hailo15l", "hailo10h"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        hq_cost_model_t m;
        assert_int_equal(hq_cost_model_get(known[i], &m, NULL), HQ_OK);
        assert_string_equal(m.hw_arch, known[i]);
        assert_true(m.macs_per_second > 0 && m.weight_memory_bytes > 0);
        assert_true(m.cost_a16_w16 > m.cost_a16_w8 && m.cost_a16_w8 > 1.0);
    }
    hq_cost_model_t m;
    hq_error_t err = {0};
    assert_int_equal(hq_cost_model_get("tpu9", &m, &err), HQ_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "tpu9"));
    assert_non_null(strstr(err.message, "hailo15h"));
}

/* conv.onnx: a 4x4x2 input, a conv to 4x2x3 with a 3-tap window; MACs computed by hand from the
 * graph's own params. */
static void conv_macs_and_weight_bytes_follow_the_layer_shape(void **state)
{
    (void)state;
    hq_archive_t *a = conv_archive();
    hq_graph_t *g = NULL;
    assert_int_equal(hq_archive_graph(a, &g, NULL), HQ_OK);
    const hq_layer_t *conv = hq_graph_layer(g, hq_graph_find(g, "conv1"));
    assert_non_null(conv);
    const hq_layer_params_t *p = &conv->params;
    int64_t out =
        conv->output_shape.dims[1] * conv->output_shape.dims[2] * conv->output_shape.dims[3];
    int64_t want_macs = out * p->kernel_h * p->kernel_w * p->kernel_in;
    hq_profile_t *pr = NULL;
    hq_error_t err = {0};
    if (hq_profile(a, "hailo8", NULL, 0, &pr, &err) != HQ_OK)
        fail_msg("%s", err.message);
    const hq_layer_cost_t *c = NULL;
    for (int i = 0; i < pr->layer_count; i++)
        if (!strcmp(pr->layers[i].name, conv->name))
            c = &pr->layers[i];
    assert_non_null(c);
    assert_int_equal(c->macs, want_macs);
    assert_int_equal(c->weight_bytes, (int64_t)p->kernel_h * p->kernel_w * p->kernel_in *
                                          p->kernel_out); /* unquantized: a8_w8, 1 byte each */
    assert_string_equal(c->precision, "a8_w8");
    assert_true(pr->fps > 0 && pr->seconds_per_frame > 0);
    assert_false(pr->weights_stream);
    double sum = 0;
    for (int i = 0; i < pr->layer_count; i++)
        sum += pr->layers[i].seconds;
    assert_true(sum > pr->seconds_per_frame * 0.999999 && sum < pr->seconds_per_frame * 1.000001);
    hq_profile_destroy(pr);
    hq_archive_destroy(a);
}

static void raising_a_layer_to_sixteen_bit_costs_four_times_its_compute(void **state)
{
    (void)state;
    hq_archive_t *a = conv_archive();
    hq_profile_t *base = NULL, *raised = NULL;
    const char *names[] = {"conv1"};
    assert_int_equal(hq_profile(a, "hailo8", NULL, 0, &base, NULL), HQ_OK);
    assert_int_equal(hq_profile(a, "hailo8", names, 1, &raised, NULL), HQ_OK);
    const hq_layer_cost_t *b = NULL, *r = NULL;
    for (int i = 0; i < base->layer_count; i++)
        if (strstr(base->layers[i].name, "conv1")) {
            b = &base->layers[i];
            r = &raised->layers[i];
        }
    assert_non_null(b);
    assert_string_equal(r->precision, "a16_w16");
    assert_true(r->compute_seconds > 3.999 * b->compute_seconds &&
                r->compute_seconds < 4.001 * b->compute_seconds);
    assert_int_equal(r->weight_bytes, 2 * b->weight_bytes);
    assert_true(raised->fps <= base->fps);
    hq_profile_destroy(base);
    hq_profile_destroy(raised);
    /* the other layers are untouched, and a name that is not a layer is refused */
    hq_error_t err = {0};
    const char *bad[] = {"no_such_layer"};
    hq_profile_t *none = NULL;
    assert_int_equal(hq_profile(a, NULL, bad, 1, &none, &err), HQ_ERR_NOT_FOUND);
    assert_null(none);
    assert_non_null(strstr(err.message, "no_such_layer"));
    hq_archive_destroy(a);
}

static void a_slower_architecture_gives_a_lower_estimate(void **state)
{
    (void)state;
    hq_archive_t *a = conv_archive();
    hq_profile_t *fast = NULL, *slow = NULL;
    assert_int_equal(hq_profile(a, "hailo10h", NULL, 0, &fast, NULL), HQ_OK);
    assert_int_equal(hq_profile(a, "hailo15l", NULL, 0, &slow, NULL), HQ_OK);
    assert_true(slow->compute_seconds > fast->compute_seconds);
    assert_true(slow->fps < fast->fps);
    hq_profile_destroy(fast);
    hq_profile_destroy(slow);
    hq_archive_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_known_architecture_has_a_model_and_unknown_ones_are_listed),
        cmocka_unit_test(conv_macs_and_weight_bytes_follow_the_layer_shape),
        cmocka_unit_test(raising_a_layer_to_sixteen_bit_costs_four_times_its_compute),
        cmocka_unit_test(a_slower_architecture_gives_a_lower_estimate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
