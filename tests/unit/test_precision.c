/* test_precision.c — precision modes and their propagation (docs/numerics.md) on graphs built with the
 * graph API: 16 bit spreading through a feature_splitter and a concat, raised layers logged with
 * their reason, contradictions refused naming the chain of layers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "quant/precision.h"
#include "test_graphs.h"
#include "test_optimizer.h"

static void set_conv(hq_graph_t *g, int index, int cin, int cout)
{
    hq_layer_params_t *p = &hq_graph_layer_mut(g, index)->params;
    p->kernel_h = p->kernel_w = 1;
    p->kernel_in = cin;
    p->kernel_out = cout;
    p->padding = HQ_PADDING_VALID;
    p->has_bias = true;
}

/* in -> conv1 -> fs -> (conv2, conv3) -> concat -> out. Indices in the order added. */
enum { IN, CONV1, FS, CONV2, CONV3, CAT, OUT, LAYERS };

static hq_graph_t *splitter_graph(void)
{
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int in = test_add_layer(g, "input_layer1", HQ_LAYER_INPUT, -1);
    hq_shape_t shape = {4, {-1, 4, 4, 3}};
    assert_int_equal(hq_layer_set_output_shape(g, in, &shape, NULL), HQ_OK);
    int c1 = test_add_layer(g, "conv1", HQ_LAYER_CONV, -1);
    set_conv(g, c1, 3, 4);
    int fs = test_add_layer(g, "fs", HQ_LAYER_FEATURE_SPLITTER, -1);
    int sizes[2] = {2, 2};
    assert_int_equal(hq_layer_set_split_sizes(g, fs, sizes, 2, NULL), HQ_OK);
    int c2 = test_add_layer(g, "conv2", HQ_LAYER_CONV, -1);
    set_conv(g, c2, 2, 4);
    int c3 = test_add_layer(g, "conv3", HQ_LAYER_CONV, -1);
    set_conv(g, c3, 2, 4);
    int cat = test_add_layer(g, "concat1", HQ_LAYER_CONCAT, -1);
    int out = test_add_layer(g, "output_layer1", HQ_LAYER_OUTPUT, -1);
    test_connect(g, in, 0, c1);
    test_connect(g, c1, 0, fs);
    test_connect(g, fs, 0, c2);
    test_connect(g, fs, 1, c3);
    test_connect(g, c2, 0, cat);
    test_connect(g, c3, 0, cat);
    test_connect(g, cat, 0, out);
    hq_error_t err = {0};
    if (hq_graph_finalize(g, "test.hn", &err))
        fail_msg("finalize: %s", err.message);
    return g;
}

static void request(hqi_precision_request_t *r, const char *mode, int line)
{
    assert_int_equal(hqi_precision_parse(mode, r), HQ_OK);
    r->line = line;
}

static void assert_mode(const hqi_layer_quant_t *d, const char *want)
{
    char name[16];
    hqi_precision_name(d->input_bits, d->weight_bits, d->output_bits, name);
    assert_string_equal(name, want);
}

static void modes_parse_as_written_and_bad_ones_are_refused(void **state)
{
    (void)state;
    hqi_precision_request_t r;
    assert_int_equal(hqi_precision_parse("a8_w4", &r), HQ_OK);
    assert_int_equal(r.in_bits, 8);
    assert_int_equal(r.weight_bits, 4);
    assert_int_equal(r.out_bits, 8);
    assert_int_equal(hqi_precision_parse("a16_w16_a8", &r), HQ_OK);
    assert_int_equal(r.in_bits, 16);
    assert_int_equal(r.out_bits, 8);
    assert_int_equal(hqi_precision_parse("a8_w8_a16", &r), HQ_OK);
    assert_int_equal(r.out_bits, 16);
    const char *bad[] = {"a9_w8",    "a8_w2", "a8_w8_",        "a8w8",
                         "a8_w8_a4", "",      "a16_w16_a16_x", "w8_a8"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(hqi_precision_parse(bad[i], &r), HQ_ERR_INVALID);
    char name[16];
    hqi_precision_name(16, 16, 8, name);
    assert_string_equal(name, "a16_w16_a8");
    hqi_precision_name(8, 0, 8, name);
    assert_string_equal(name, "a8_w8");
}

static void without_requests_every_layer_is_a8_w8(void **state)
{
    (void)state;
    hq_graph_t *g = splitter_graph();
    hqi_precision_request_t req[LAYERS] = {0};
    hqi_layer_quant_t dec[LAYERS] = {0};
    test_log_t log = {""};
    hqi_logger_t logger = {test_log_capture, &log};
    assert_int_equal(hqi_precision_propagate(g, req, dec, &logger, NULL), HQ_OK);
    for (int i = 0; i < LAYERS; i++) {
        assert_int_equal(dec[i].input_bits, 8);
        assert_int_equal(dec[i].output_bits, 8);
    }
    assert_int_equal(dec[CONV1].weight_bits, 8);
    assert_int_equal(dec[FS].weight_bits, 0);
    assert_string_equal(log.text, "");
    hq_graph_destroy(g);
}

static void
sixteen_bit_spreads_through_a_feature_splitter_and_raised_layers_are_logged(void **state)
{
    (void)state;
    hq_graph_t *g = splitter_graph();
    hqi_precision_request_t req[LAYERS] = {0};
    hqi_layer_quant_t dec[LAYERS] = {0};
    request(&req[CONV1], "a16_w16", 3);
    test_log_t log = {""};
    hqi_logger_t logger = {test_log_capture, &log};
    hq_error_t err = {0};
    assert_int_equal(hqi_precision_propagate(g, req, dec, &logger, &err), HQ_OK);
    assert_mode(&dec[IN], "a16_w16"); /* conv1 reads 16 bit: the input writes it */
    assert_mode(&dec[CONV1], "a16_w16");
    assert_mode(&dec[FS], "a16_w16"); /* outputs what it receives */
    assert_mode(&dec[CONV2], "a16_w16_a8");
    assert_mode(&dec[CONV3], "a16_w16_a8");
    assert_mode(&dec[CAT], "a8_w8");
    assert_mode(&dec[OUT], "a8_w8");
    assert_non_null(strstr(log.text, "fs raised to a16_w16: it outputs what it receives"));
    assert_non_null(strstr(log.text, "conv2 raised to a16_w16_a8: it reads a 16-bit tensor because "
                                     "of conv1 (a16_w16, line 3)"));
    assert_non_null(strstr(log.text, "conv1 -> fs -> conv2"));
    assert_non_null(strstr(log.text, "input_layer1 raised to a16_w16"));
    assert_null(strstr(log.text, "concat1 raised"));
    hq_graph_destroy(g);
}

static void
an_eight_bit_request_behind_the_splitter_is_a_contradiction_naming_the_chain(void **state)
{
    (void)state;
    hq_graph_t *g = splitter_graph();
    hqi_precision_request_t req[LAYERS] = {0};
    hqi_layer_quant_t dec[LAYERS] = {0};
    request(&req[CONV1], "a16_w16", 1);
    request(&req[CONV2], "a8_w8", 2);
    hq_error_t err = {0};
    assert_int_equal(hqi_precision_propagate(g, req, dec, NULL, &err), HQ_ERR_INVALID);
    assert_non_null(strstr(err.message, "contradiction"));
    assert_non_null(strstr(err.message, "conv1 -> fs -> conv2"));
    assert_non_null(strstr(err.message, "conv2 (a8_w8, line 2)"));
    assert_non_null(strstr(err.message, "conv1 (a16_w16, line 1)"));
    /* the boundary mode resolves it */
    request(&req[CONV2], "a16_w16_a8", 2);
    assert_int_equal(hqi_precision_propagate(g, req, dec, NULL, &err), HQ_OK);
    assert_mode(&dec[CONV2], "a16_w16_a8");
    hq_graph_destroy(g);
}

static void a_sixteen_bit_output_spreads_to_the_other_concat_input(void **state)
{
    (void)state;
    hq_graph_t *g = splitter_graph();
    hqi_precision_request_t req[LAYERS] = {0};
    hqi_layer_quant_t dec[LAYERS] = {0};
    request(&req[CONV2], "a8_w8_a16", 1);
    test_log_t log = {""};
    hqi_logger_t logger = {test_log_capture, &log};
    assert_int_equal(hqi_precision_propagate(g, req, dec, &logger, NULL), HQ_OK);
    assert_mode(&dec[CONV3], "a8_w8_a16");
    assert_mode(&dec[CAT], "a16_w16");
    assert_mode(&dec[OUT], "a16_w16");
    assert_mode(&dec[CONV1], "a8_w8");
    assert_non_null(strstr(log.text, "conv3 raised to a8_w8_a16: its output is read at 16 bit"));
    /* and an 8-bit request on the concat contradicts it */
    request(&req[CAT], "a8_w8", 5);
    hq_error_t err = {0};
    assert_int_equal(hqi_precision_propagate(g, req, dec, NULL, &err), HQ_ERR_INVALID);
    assert_non_null(strstr(err.message, "concat1"));
    assert_non_null(strstr(err.message, "conv2"));
    hq_graph_destroy(g);
}

static void a_pass_through_layer_cannot_change_width(void **state)
{
    (void)state;
    hq_graph_t *g = splitter_graph();
    hqi_precision_request_t req[LAYERS] = {0};
    hqi_layer_quant_t dec[LAYERS] = {0};
    request(&req[CAT], "a8_w8_a16", 4);
    hq_error_t err = {0};
    assert_int_equal(hqi_precision_propagate(g, req, dec, NULL, &err), HQ_ERR_INVALID);
    assert_non_null(strstr(err.message, "concat1 is a concat"));
    assert_non_null(strstr(err.message, "line 4"));
    hq_graph_destroy(g);
}

static void an_explicit_weight_width_is_kept(void **state)
{
    (void)state;
    hq_graph_t *g = splitter_graph();
    hqi_precision_request_t req[LAYERS] = {0};
    hqi_layer_quant_t dec[LAYERS] = {0};
    request(&req[CONV3], "a8_w4", 1);
    assert_int_equal(hqi_precision_propagate(g, req, dec, NULL, NULL), HQ_OK);
    assert_int_equal(dec[CONV3].weight_bits, 4);
    assert_int_equal(dec[CONV2].weight_bits, 8);
    hq_graph_destroy(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(modes_parse_as_written_and_bad_ones_are_refused),
        cmocka_unit_test(without_requests_every_layer_is_a8_w8),
        cmocka_unit_test(
            sixteen_bit_spreads_through_a_feature_splitter_and_raised_layers_are_logged),
        cmocka_unit_test(
            an_eight_bit_request_behind_the_splitter_is_a_contradiction_naming_the_chain),
        cmocka_unit_test(a_sixteen_bit_output_spreads_to_the_other_concat_input),
        cmocka_unit_test(a_pass_through_layer_cannot_change_width),
        cmocka_unit_test(an_explicit_weight_width_is_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
