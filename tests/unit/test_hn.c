/* test_hn.c — `.hn` JSON: reading the fixtures, round trips, unknown keys, validation errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hq/graph.h"
#include "util/util.h"

static char *read_fixture(const char *name, size_t *len)
{
    char path[512];
    void *bytes = NULL;
    snprintf(path, sizeof(path), "%s/hn/%s", HQ_FIXTURES, name);
    assert_int_equal(hqi_read_file(path, 1 << 20, &bytes, len, NULL), HQ_OK);
    return bytes;
}

static hq_graph_t *load_fixture(const char *name)
{
    size_t len;
    char *text = read_fixture(name, &len);
    hq_graph_t *g = NULL;
    hq_error_t err = {0};
    hq_status_t st = hq_graph_from_json(text, len, name, &g, &err);
    if (st)
        fail_msg("%s", err.message);
    free(text);
    return g;
}

static char *to_json(const hq_graph_t *g)
{
    char *json = NULL;
    size_t len = 0;
    hq_error_t err = {0};
    assert_int_equal(hq_graph_to_json(g, &json, &len, &err), HQ_OK);
    assert_int_equal(strlen(json), len);
    return json;
}

static void assert_shape(hq_shape_t s, int ndim, int64_t d1, int64_t d2, int64_t d3)
{
    assert_int_equal(s.ndim, ndim);
    if (ndim > 1)
        assert_int_equal(s.dims[1], d1);
    if (ndim > 2)
        assert_int_equal(s.dims[2], d2);
    if (ndim > 3)
        assert_int_equal(s.dims[3], d3);
}

/* Layer-by-layer structural equality of two graphs. */
static void assert_graphs_equal(const hq_graph_t *a, const hq_graph_t *b)
{
    assert_string_equal(hq_graph_net_name(a), hq_graph_net_name(b));
    assert_int_equal(hq_graph_layer_count(a), hq_graph_layer_count(b));
    for (int i = 0; i < hq_graph_layer_count(a); i++) {
        const hq_layer_t *x = hq_graph_layer(a, i), *y = hq_graph_layer(b, i);
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->type, y->type);
        assert_int_equal(x->input_count, y->input_count);
        assert_int_equal(x->output_count, y->output_count);
        for (int j = 0; j < x->input_count; j++) {
            assert_int_equal(x->inputs[j], y->inputs[j]);
            assert_int_equal(x->input_ports[j], y->input_ports[j]);
        }
        for (int j = 0; j < x->output_count; j++) {
            assert_int_equal(x->outputs[j], y->outputs[j]);
            assert_int_equal(x->output_ports[j], y->output_ports[j]);
        }
        assert_memory_equal(&x->output_shape, &y->output_shape, sizeof(hq_shape_t));
        assert_int_equal(x->original_name_count, y->original_name_count);
        for (int j = 0; j < x->original_name_count; j++)
            assert_string_equal(x->original_names[j], y->original_names[j]);
        assert_string_equal(x->precision_mode, y->precision_mode);
        const hq_layer_params_t *p = &x->params, *q = &y->params;
        assert_int_equal(p->kernel_h, q->kernel_h);
        assert_int_equal(p->kernel_out, q->kernel_out);
        assert_int_equal(p->stride_w, q->stride_w);
        assert_int_equal(p->groups, q->groups);
        assert_int_equal(p->padding, q->padding);
        assert_memory_equal(p->pads, q->pads, sizeof(p->pads));
        assert_int_equal(p->activation, q->activation);
        assert_int_equal(p->axis, q->axis);
        assert_int_equal(p->split_count, q->split_count);
        if (p->split_count)
            assert_memory_equal(p->split_sizes, q->split_sizes, sizeof(int) * (size_t)p->split_count);
        assert_int_equal(p->channels, q->channels);
        if (p->channels) {
            assert_memory_equal(p->mean, q->mean, sizeof(float) * (size_t)p->channels);
            assert_memory_equal(p->std, q->std, sizeof(float) * (size_t)p->channels);
        }
    }
    int na, nb;
    const int *oa = hq_graph_outputs(a, &na), *ob = hq_graph_outputs(b, &nb);
    assert_int_equal(na, nb);
    if (na)
        assert_memory_equal(oa, ob, sizeof(int) * (size_t)na);
}

static void reads_resnet_block_fixture_with_inferred_shapes(void **state)
{
    (void)state;
    hq_graph_t *g = load_fixture("resnet_block.hn");
    assert_true(hq_graph_is_finalized(g));
    assert_int_equal(hq_graph_layer_count(g), 7);
    const hq_layer_t *conv1 = hq_graph_layer(g, hq_graph_find(g, "resnet/conv1"));
    assert_int_equal(conv1->type, HQ_LAYER_CONV);
    assert_int_equal(conv1->params.activation, HQ_ACT_RELU);
    assert_true(conv1->params.batch_norm);
    assert_int_equal(conv1->params.pads[0], 1);
    assert_int_equal(conv1->params.pads[3], 1);
    assert_shape(conv1->output_shape, 4, 8, 8, 8);
    assert_string_equal(conv1->precision_mode, "a8_w8");
    const hq_layer_t *fc = hq_graph_layer(g, hq_graph_find(g, "fc1"));
    assert_shape(fc->output_shape, 2, 10, 0, 0);
    assert_int_equal(hq_layer_param_count(fc), 8 * 10 + 10);
    int count;
    const int *outs = hq_graph_outputs(g, &count);
    assert_int_equal(count, 1);
    assert_string_equal(hq_graph_layer(g, outs[0])->name, "resnet/output_layer1");
    const int *ins = hq_graph_inputs(g, &count);
    assert_int_equal(count, 1);
    assert_int_equal(ins[0], 0);
    hq_graph_destroy(g);
}

static void parse_serialize_parse_gives_equal_graphs_for_every_fixture(void **state)
{
    (void)state;
    const char *fixtures[] = {"resnet_block.hn", "concat_split.hn", "two_outputs.hn"};
    for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
        hq_graph_t *a = load_fixture(fixtures[i]);
        char *json = to_json(a);
        hq_graph_t *b = NULL;
        hq_error_t err = {0};
        if (hq_graph_from_json(json, strlen(json), "again.hn", &b, &err))
            fail_msg("%s: %s", fixtures[i], err.message);
        assert_graphs_equal(a, b);
        char *json2 = to_json(b);
        assert_string_equal(json, json2); /* deterministic */
        free(json);
        free(json2);
        hq_graph_destroy(a);
        hq_graph_destroy(b);
    }
}

static void unknown_keys_survive_a_round_trip(void **state)
{
    (void)state;
    hq_graph_t *g = load_fixture("resnet_block.hn");
    char *json = to_json(g);
    assert_non_null(strstr(json, "\"hq_comment\":\t\"unknown top-level key kept\""));
    assert_non_null(strstr(json, "\"version\":\t\"1.0\""));
    assert_non_null(strstr(json, "\"compilation_params\""));
    assert_non_null(strstr(json, "\"bias_mode\":\t\"double_scale_initialization\""));
    assert_non_null(strstr(json, "\"future_param\""));
    /* Hailo convention: the order lists the layer that feeds each output layer. */
    assert_non_null(strstr(json, "\"output_layers_order\":\t[\"resnet/fc1\"]"));
    free(json);
    hq_graph_destroy(g);
}

static void splitter_pieces_reach_the_right_consumers(void **state)
{
    (void)state;
    hq_graph_t *g = load_fixture("concat_split.hn");
    const hq_layer_t *split = hq_graph_layer(g, hq_graph_find(g, "splitter1"));
    assert_int_equal(hq_layer_port_count(split), 2);
    assert_shape(hq_layer_port_shape(split, 0), 4, 4, 4, 2);
    assert_shape(hq_layer_port_shape(split, 1), 4, 4, 4, 4);
    const hq_layer_t *concat = hq_graph_layer(g, hq_graph_find(g, "concat1"));
    assert_int_equal(concat->input_ports[1], 1);
    assert_shape(concat->output_shape, 4, 4, 4, 8);
    hq_graph_destroy(g);
}

static void output_order_follows_output_layers_order(void **state)
{
    (void)state;
    hq_graph_t *g = load_fixture("two_outputs.hn");
    int count;
    const int *outs = hq_graph_outputs(g, &count);
    assert_int_equal(count, 2);
    assert_string_equal(hq_graph_layer(g, outs[0])->bare_name, "output_layer2");
    assert_string_equal(hq_graph_layer(g, outs[1])->bare_name, "output_layer1");
    const hq_layer_t *d2s = hq_graph_layer(g, hq_graph_find(g, "d2s1"));
    assert_shape(d2s->output_shape, 4, 32, 32, 4);
    const hq_layer_t *norm = hq_graph_layer(g, hq_graph_find(g, "norm1"));
    assert_int_equal(norm->params.channels, 3);
    assert_true(norm->params.mean[1] == 116.28f);
    hq_graph_destroy(g);
}

/* ---- validation errors ------------------------------------------------------------------- */

/* input [-1,4,4,C_IN] -> x (type/params given) -> output; shapes of x's output not stored. */
static char *chain(const char *type, const char *params, int cin)
{
    static char buf[4096];
    snprintf(buf, sizeof(buf),
             "{\"name\":\"net\",\"layers\":{"
             "\"net/in\":{\"type\":\"input_layer\",\"input\":[],\"output\":[\"net/x\"],"
             "\"input_shapes\":[[-1,4,4,%d]],\"output_shapes\":[[-1,4,4,%d]]},"
             "\"net/x\":{\"type\":\"%s\",\"input\":[\"net/in\"],\"output\":[\"net/out\"],"
             "\"params\":%s},"
             "\"net/out\":{\"type\":\"output_layer\",\"input\":[\"net/x\"],\"output\":[]}}}",
             cin, cin, type, params);
    return buf;
}

static void expect_error(const char *json, hq_status_t status, const char *message)
{
    hq_graph_t *g = NULL;
    hq_error_t err = {0};
    hq_status_t st = hq_graph_from_json(json, strlen(json), "model.hn", &g, &err);
    if (st == HQ_OK)
        fail_msg("expected an error containing '%s'", message);
    assert_null(g);
    if (status != HQ_OK)
        assert_int_equal(st, status);
    if (!strstr(err.message, message))
        fail_msg("message '%s' lacks '%s'", err.message, message);
    assert_non_null(strstr(err.message, "model.hn: "));
    assert_null(strchr(err.message, '\n'));
}

static void expect_ok(const char *json)
{
    hq_graph_t *g = NULL;
    hq_error_t err = {0};
    if (hq_graph_from_json(json, strlen(json), "model.hn", &g, &err))
        fail_msg("%s", err.message);
    hq_graph_destroy(g);
}

static void dangling_input_is_reported_with_both_names(void **state)
{
    (void)state;
    const char *json =
        "{\"name\":\"net\",\"layers\":{"
        "\"net/in\":{\"type\":\"input_layer\",\"input\":[],\"output\":[],"
        "\"input_shapes\":[[-1,4,4,3]]},"
        "\"net/conv2\":{\"type\":\"activation\",\"input\":[\"net/conv9\"],\"output\":[]}}}";
    expect_error(json, HQ_ERR_NOT_FOUND,
                 "model.hn: layer 'net/conv2' input 'net/conv9' does not exist");
}

static void one_sided_edge_names_both_layers(void **state)
{
    (void)state;
    const char *json =
        "{\"name\":\"net\",\"layers\":{"
        "\"net/in\":{\"type\":\"input_layer\",\"input\":[],\"output\":[],"
        "\"input_shapes\":[[-1,4,4,3]]},"
        "\"net/act\":{\"type\":\"activation\",\"input\":[\"net/in\"],\"output\":[]}}}";
    expect_error(json, HQ_ERR_INVALID,
                 "layer 'net/act' lists input 'net/in', but 'net/in' does not list 'net/act'");
    const char *reverse =
        "{\"name\":\"net\",\"layers\":{"
        "\"net/in\":{\"type\":\"input_layer\",\"input\":[],\"output\":[\"net/act\"],"
        "\"input_shapes\":[[-1,4,4,3]]},"
        "\"net/act\":{\"type\":\"activation\",\"input\":[],\"output\":[]}}}";
    expect_error(reverse, HQ_ERR_INVALID, "layer 'net/in' lists output 'net/act'");
}

static void cycle_is_reported_with_a_layer_on_it(void **state)
{
    (void)state;
    const char *json =
        "{\"name\":\"net\",\"layers\":{"
        "\"net/in\":{\"type\":\"input_layer\",\"input\":[],\"output\":[\"net/add\"],"
        "\"input_shapes\":[[-1,4,4,3]]},"
        "\"net/add\":{\"type\":\"ew_add\",\"input\":[\"net/in\",\"net/act\"],"
        "\"output\":[\"net/act\"]},"
        "\"net/act\":{\"type\":\"activation\",\"input\":[\"net/add\"],\"output\":[\"net/add\"]}}}";
    hq_graph_t *g = NULL;
    hq_error_t err = {0};
    assert_int_equal(hq_graph_from_json(json, strlen(json), "model.hn", &g, &err), HQ_ERR_INVALID);
    assert_non_null(strstr(err.message, "is on a cycle"));
    assert_true(strstr(err.message, "'net/add'") || strstr(err.message, "'net/act'"));
}

static void unknown_type_and_activation_are_refused(void **state)
{
    (void)state;
    expect_error(chain("foo", "{}", 3), HQ_ERR_UNSUPPORTED, "layer 'net/x': unknown type 'foo'");
    expect_error(chain("activation", "{\"activation\":\"swishy\"}", 3), HQ_ERR_INVALID,
                 "layer 'net/x': unknown activation 'swishy'");
    expect_ok(chain("activation", "{\"activation\":\"hardswish\"}", 3));
}

static void wrong_arity_is_refused(void **state)
{
    (void)state;
    expect_error(chain("ew_add", "{}", 3), HQ_ERR_INVALID, "ew_add takes 2 inputs, has 1");
    expect_error(chain("concat", "{\"axis\":3}", 3), HQ_ERR_INVALID,
                 "concat takes at least 2 inputs, has 1");
}

static void bad_params_are_refused(void **state)
{
    (void)state;
    expect_error(chain("conv", "{\"kernel_shape\":[0,3,3,8]}", 3), HQ_ERR_INVALID,
                 "kernel 0x3");
    expect_error(chain("conv", "{\"kernel_shape\":[3,3,3,8],\"strides\":[1,0,1,1]}", 3),
                 HQ_ERR_INVALID, "stride 0x1");
    expect_error(chain("conv", "{\"kernel_shape\":[1,1,2,8],\"groups\":2}", 6), HQ_ERR_INVALID,
                 "groups 2 do not divide");
    expect_ok(chain("conv", "{\"kernel_shape\":[1,1,3,8],\"groups\":2}", 6));
    expect_error(chain("feature_splitter", "{\"axis\":3,\"split_sizes\":[1,1]}", 3),
                 HQ_ERR_INVALID, "split_sizes sum to 2, the input has 3");
    expect_error(chain("slice", "{\"slice_begin\":[0,0,0],\"slice_end\":[5,4,3]}", 3),
                 HQ_ERR_INVALID, "slice [0, 5) on H is out of range");
    expect_error(chain("conv", "{\"kernel_shape\":[3,3,3,8],\"strides\":[2,1,1,1]}", 3),
                 HQ_ERR_FORMAT, "'strides' must have the form [1, h, w, 1]");
    expect_error(chain("conv", "{\"kernel_shape\":[3,3,3,8],\"padding\":\"FULL\"}", 3),
                 HQ_ERR_FORMAT, "'padding': unknown value 'FULL'");
}

static void stored_shape_mismatch_prints_both_shapes(void **state)
{
    (void)state;
    const char *json =
        "{\"name\":\"net\",\"layers\":{"
        "\"net/in\":{\"type\":\"input_layer\",\"input\":[],\"output\":[\"net/x\"],"
        "\"input_shapes\":[[-1,4,4,3]]},"
        "\"net/x\":{\"type\":\"conv\",\"input\":[\"net/in\"],\"output\":[],"
        "\"output_shapes\":[[-1,4,4,9]],"
        "\"params\":{\"kernel_shape\":[3,3,3,8],\"padding\":\"SAME\"}}}}";
    expect_error(json, HQ_ERR_INVALID,
                 "layer 'net/x': output shape mismatch: inferred [-1, 4, 4, 8], stored [-1, 4, 4, 9]");
    const char *input_side =
        "{\"name\":\"net\",\"layers\":{"
        "\"net/in\":{\"type\":\"input_layer\",\"input\":[],\"output\":[\"net/x\"],"
        "\"input_shapes\":[[-1,4,4,3]]},"
        "\"net/x\":{\"type\":\"activation\",\"input\":[\"net/in\"],\"output\":[],"
        "\"input_shapes\":[[-1,4,5,3]]}}}";
    expect_error(input_side, HQ_ERR_INVALID,
                 "input 0 shape mismatch: inferred [-1, 4, 4, 3], stored [-1, 4, 5, 3]");
}

static void malformed_json_and_structure_are_refused(void **state)
{
    (void)state;
    expect_error("{\"name\":", HQ_ERR_FORMAT, "invalid JSON");
    expect_error("[]", HQ_ERR_FORMAT, "top level must be a JSON object");
    expect_error("{\"name\":\"n\"}", HQ_ERR_FORMAT, "field 'layers'");
    expect_error("{\"name\":\"n\",\"layers\":{\"n/a\":{\"type\":\"input_layer\","
                 "\"input_shapes\":[[-1,4,0,3]]}}}",
                 HQ_ERR_FORMAT, "'input_shapes' = 0 must be an integer in [1, 1073741824]");
    expect_error("{\"name\":\"n\",\"layers\":{\"n/a\":{\"type\":\"input_layer\"}}}",
                 HQ_ERR_INVALID, "output shape is not given");
    expect_error("{\"name\":\"n\",\"layers\":{\"n/a\":{\"type\":\"input_layer\",\"input_shapes\":"
                 "[[-1,2]]},\"n/a\":{\"type\":\"input_layer\",\"input_shapes\":[[-1,2]]}}}",
                 HQ_ERR_INVALID, "layer 'n/a' is defined twice");
    expect_error("{\"name\":\"n\",\"net_params\":{\"output_layers_order\":[\"n/zz\"]},"
                 "\"layers\":{\"n/a\":{\"type\":\"input_layer\",\"input_shapes\":[[-1,2]]}}}",
                 HQ_ERR_NOT_FOUND, "'output_layers_order' names 'n/zz', which does not exist");
}

static void resize_takes_its_stored_shape_and_checks_channels(void **state)
{
    (void)state;
    const char *fmt =
        "{\"name\":\"net\",\"layers\":{"
        "\"net/in\":{\"type\":\"input_layer\",\"input\":[],\"output\":[\"net/x\"],"
        "\"input_shapes\":[[-1,4,4,3]]},"
        "\"net/x\":{\"type\":\"resize\",\"input\":[\"net/in\"],\"output\":[],"
        "\"output_shapes\":[[-1,12,7,%d]],\"params\":{\"resize_method\":\"bilinear\"}}}}";
    char json[1024];
    snprintf(json, sizeof(json), fmt, 3);
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_from_json(json, strlen(json), "model.hn", &g, NULL), HQ_OK);
    const hq_layer_t *x = hq_graph_layer(g, 1);
    assert_shape(x->output_shape, 4, 12, 7, 3);
    assert_int_equal(x->params.resize_method, HQ_RESIZE_BILINEAR);
    /* Rewritten and re-read, the shape is still there. */
    char *out = to_json(g);
    hq_graph_t *h = NULL;
    assert_int_equal(hq_graph_from_json(out, strlen(out), "again.hn", &h, NULL), HQ_OK);
    assert_shape(hq_graph_layer(h, 1)->output_shape, 4, 12, 7, 3);
    free(out);
    hq_graph_destroy(g);
    hq_graph_destroy(h);
    snprintf(json, sizeof(json), fmt, 4);
    expect_error(json, HQ_ERR_INVALID, "must keep the channels of the input");
}

static void a_param_key_of_another_type_is_kept_raw(void **state)
{
    (void)state;
    const char *json = chain("conv", "{\"kernel_shape\":[1,1,3,4],\"axis\":7,\"x\":null}", 3);
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_from_json(json, strlen(json), "model.hn", &g, NULL), HQ_OK);
    assert_int_equal(hq_graph_layer(g, 1)->params.axis, 3); /* conv has no axis: not read */
    char *out = to_json(g);
    assert_non_null(strstr(out, "\"axis\":\t7"));
    assert_non_null(strstr(out, "\"x\":\tnull"));
    free(out);
    hq_graph_destroy(g);
}

static void channel_shuffle_reads_and_writes_its_groups(void **state)
{
    (void)state;
    const char *json = chain("channel_shuffle", "{\"groups\":3}", 6);
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_from_json(json, strlen(json), "model.hn", &g, NULL), HQ_OK);
    const hq_layer_t *x = hq_graph_layer(g, 1);
    assert_int_equal(x->type, HQ_LAYER_CHANNEL_SHUFFLE);
    assert_int_equal(x->params.groups, 3);
    assert_shape(x->output_shape, 4, 4, 4, 6);
    char *out = to_json(g);
    assert_non_null(strstr(out, "\"type\":\t\"channel_shuffle\""));
    assert_non_null(strstr(out, "\"groups\":\t3"));
    assert_null(strstr(out, "\"activation\"")); /* only its own key */
    hq_graph_t *h = NULL;
    assert_int_equal(hq_graph_from_json(out, strlen(out), "again.hn", &h, NULL), HQ_OK);
    assert_graphs_equal(g, h);
    char *again = to_json(h);
    assert_string_equal(out, again);
    free(out);
    free(again);
    hq_graph_destroy(g);
    hq_graph_destroy(h);
    expect_error(chain("channel_shuffle", "{\"groups\":4}", 6), HQ_ERR_INVALID,
                 "groups 4 must be at least 1 and divide the 6 channels");
}

static void writing_an_unfinalized_graph_is_refused(void **state)
{
    (void)state;
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("n", &g, NULL), HQ_OK);
    assert_int_equal(hq_graph_add_layer(g, "in", HQ_LAYER_INPUT, NULL, NULL), HQ_OK);
    char *json = NULL;
    hq_error_t err = {0};
    assert_int_equal(hq_graph_to_json(g, &json, NULL, &err), HQ_ERR_STATE);
    assert_null(json);
    hq_graph_destroy(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_resnet_block_fixture_with_inferred_shapes),
        cmocka_unit_test(parse_serialize_parse_gives_equal_graphs_for_every_fixture),
        cmocka_unit_test(unknown_keys_survive_a_round_trip),
        cmocka_unit_test(splitter_pieces_reach_the_right_consumers),
        cmocka_unit_test(output_order_follows_output_layers_order),
        cmocka_unit_test(dangling_input_is_reported_with_both_names),
        cmocka_unit_test(one_sided_edge_names_both_layers),
        cmocka_unit_test(cycle_is_reported_with_a_layer_on_it),
        cmocka_unit_test(unknown_type_and_activation_are_refused),
        cmocka_unit_test(wrong_arity_is_refused),
        cmocka_unit_test(bad_params_are_refused),
        cmocka_unit_test(stored_shape_mismatch_prints_both_shapes),
        cmocka_unit_test(malformed_json_and_structure_are_refused),
        cmocka_unit_test(resize_takes_its_stored_shape_and_checks_channels),
        cmocka_unit_test(a_param_key_of_another_type_is_kept_raw),
        cmocka_unit_test(writing_an_unfinalized_graph_is_refused),
        cmocka_unit_test(channel_shuffle_reads_and_writes_its_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
