/* test_lower.c — hqi_lower_layer: each layer family becomes the runtime op and kernel arguments
 * that both the compiler and the quantized emulator use (inputs' encodings from the producers,
 * the output stage from the layer, constant data borrowed from the params), and a type without
 * a runtime op is refused. The params are written here by hand, without a q.npz. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hq/graph.h"
#include "numerics/lower.h"
#include "test_graphs.h"

static const int32_t multiplier[4] = {1 << 30, 1 << 30, 1 << 30, 1 << 30};
static const int32_t shift[4] = {-1, -1, -1, -1};
static const int8_t kernel[3 * 3 * 2 * 4] = {1};
static const int64_t bias[4] = {5, 6, 7, 8};

static hqrt_output_stage_t stage(int32_t count, int32_t bits, int32_t zp)
{
    return (hqrt_output_stage_t){.path = HQRT_PATH_GEMMLOWP,
                                 .count = count,
                                 .multiplier = multiplier,
                                 .shift = shift,
                                 .out_bits = bits,
                                 .out_zp = zp,
                                 .act_min = 0,
                                 .act_max = bits == 16 ? 65535 : 255};
}

/* in [N,4,4,2] -> conv 3x3 (4 channels, + the second input "side" as its addend) -> ew_sub(conv,
 * side) -> batch_norm -> ew_div(bn, side) -> output; every layer 8-bit except side (16-bit). */
typedef struct net {
    hq_graph_t *g;
    hqi_qmodel_t model;
    hqi_qlayer_t layers[8];
    int in, side, conv, sub, bn, div;
} net_t;

static int setup(void **state)
{
    static net_t n;
    memset(&n, 0, sizeof n);
    hq_error_t err = {0};
    assert_int_equal(hq_graph_create("net", &n.g, &err), HQ_OK);
    hq_graph_t *g = n.g;
    hq_shape_t s = {4, {-1, 4, 4, 2}}, s4 = {4, {-1, 4, 4, 4}};
    n.in = test_add_layer(g, "in", HQ_LAYER_INPUT, -1);
    assert_int_equal(hq_layer_set_output_shape(g, n.in, &s, &err), HQ_OK);
    n.side = test_add_layer(g, "side", HQ_LAYER_INPUT, -1);
    assert_int_equal(hq_layer_set_output_shape(g, n.side, &s4, &err), HQ_OK);
    n.conv = test_add_layer(g, "conv", HQ_LAYER_CONV, -1);
    hq_layer_params_t *p = &hq_graph_layer_mut(g, n.conv)->params;
    p->kernel_h = p->kernel_w = 3;
    p->kernel_in = 2;
    p->kernel_out = 4;
    p->padding = HQ_PADDING_EXPLICIT;
    p->pads[0] = p->pads[1] = p->pads[2] = p->pads[3] = 1;
    p->has_bias = true;
    p->elementwise_add = true;
    test_connect(g, n.in, 0, n.conv);
    test_connect(g, n.side, 0, n.conv);
    n.sub = test_add_layer(g, "sub", HQ_LAYER_EW_SUB, -1);
    test_connect(g, n.conv, 0, n.sub);
    test_connect(g, n.side, 0, n.sub);
    n.bn = test_add_layer(g, "bn", HQ_LAYER_BATCH_NORM, -1);
    test_connect(g, n.sub, 0, n.bn);
    n.div = test_add_layer(g, "div", HQ_LAYER_EW_DIV, -1);
    test_connect(g, n.bn, 0, n.div);
    test_connect(g, n.side, 0, n.div);
    test_connect(g, n.div, 0, test_add_layer(g, "out", HQ_LAYER_OUTPUT, -1));
    if (hq_graph_finalize(g, "net", &err))
        fail_msg("finalize: %s", err.message);

    n.model.layer_count = hq_graph_layer_count(g);
    assert_true(n.model.layer_count <= 8);
    n.model.layers = n.layers;
    for (int i = 0; i < n.model.layer_count; i++)
        n.layers[i] = (hqi_qlayer_t){.bits = 8, .scale = 0.5f, .zp = 3};
    n.layers[n.side] = (hqi_qlayer_t){.bits = 16, .scale = 0.25f, .zp = 1000};
    hqi_qlayer_t *c = &n.layers[n.conv];
    c->weight_bits = 8;
    c->kernel = kernel;
    c->bias = bias;
    c->stage = stage(4, 8, 3);
    c->has_addend = true;
    c->input_multiplier[0] = 1234;
    c->input_shift[0] = -2;
    hqi_qlayer_t *e = &n.layers[n.sub];
    e->stage = stage(1, 8, 3);
    e->input_multiplier[0] = 111;
    e->input_multiplier[1] = -222;
    e->input_shift[0] = 1;
    e->input_shift[1] = 2;
    hqi_qlayer_t *b = &n.layers[n.bn];
    b->weight_bits = 8;
    b->kernel = kernel;
    b->bias = bias;
    b->stage = stage(4, 8, 3);
    *state = &n;
    return 0;
}

static int teardown(void **state)
{
    net_t *n = *state;
    hq_graph_destroy(n->g);
    return 0;
}

static void a_conv_with_an_addend_reads_two_inputs_and_carries_the_addend_term(void **state)
{
    net_t *n = *state;
    hqi_op_t op;
    hq_error_t err = {0};
    assert_int_equal(hqi_lower_layer(n->g, &n->model, n->conv, &op, &err), HQ_OK);
    assert_int_equal(op.code, HQX_OP_CONV);
    assert_int_equal(op.input_count, 2);
    assert_int_equal(op.output_count, 1);
    const hqrt_conv_params_t *cp = &op.u.conv.params;
    assert_int_equal(cp->kernel_h, 3);
    assert_int_equal(cp->pad_right, 1);
    assert_int_equal(cp->groups, 1);
    assert_int_equal(cp->in_bits, 8); /* the producer's encoding */
    assert_int_equal(cp->in_zp, 3);
    assert_int_equal(cp->output_pad_h, 0);
    assert_ptr_equal(cp->out.multiplier, multiplier);
    assert_ptr_equal(op.u.conv.weights.data, kernel);
    assert_int_equal(op.u.conv.weights.size, 3 * 3 * 2 * 4); /* taps * cin/groups * cout */
    assert_ptr_equal(op.u.conv.bias.data, bias);
    assert_int_equal(op.u.conv.bias.size, 4 * sizeof(int64_t));
    assert_int_equal(op.u.conv.addend_multiplier, 1234);
    assert_int_equal(op.u.conv.addend_shift, -2);
}

static void ew_sub_is_an_eltwise_add_with_each_inputs_encoding(void **state)
{
    net_t *n = *state;
    hqi_op_t op;
    hq_error_t err = {0};
    assert_int_equal(hqi_lower_layer(n->g, &n->model, n->sub, &op, &err), HQ_OK);
    assert_int_equal(op.code, HQX_OP_ELTWISE);
    assert_int_equal(op.input_count, 2);
    const hqrt_ew_params_t *ep = &op.u.eltwise;
    assert_int_equal(ep->op, HQRT_EW_ADD);
    assert_int_equal(ep->a_bits, 8);
    assert_int_equal(ep->a_zp, 3);
    assert_int_equal(ep->b_bits, 16);
    assert_int_equal(ep->b_zp, 1000);
    assert_int_equal(ep->b_multiplier, -222);
    assert_int_equal(ep->b_shift, 2);
    assert_int_equal(ep->out.count, 1);
}

static void batch_norm_is_a_1x1_depthwise_conv_over_its_channels(void **state)
{
    net_t *n = *state;
    hqi_op_t op;
    hq_error_t err = {0};
    assert_int_equal(hqi_lower_layer(n->g, &n->model, n->bn, &op, &err), HQ_OK);
    assert_int_equal(op.code, HQX_OP_CONV);
    assert_int_equal(op.input_count, 1);
    const hqrt_conv_params_t *cp = &op.u.conv.params;
    assert_int_equal(cp->kernel_h, 1);
    assert_int_equal(cp->kernel_w, 1);
    assert_int_equal(cp->stride_h, 1);
    assert_int_equal(cp->dilation_w, 1);
    assert_int_equal(cp->groups, 4);
    assert_int_equal(op.u.conv.weights.size, 4);
}

static void a_type_without_a_runtime_op_is_refused(void **state)
{
    net_t *n = *state;
    hqi_op_t op;
    hq_error_t err = {0};
    assert_false(hqi_lower_supported(HQ_LAYER_EW_DIV));
    assert_false(hqi_lower_supported(HQ_LAYER_INPUT));
    assert_int_equal(hqi_lower_layer(n->g, &n->model, n->div, &op, &err), HQ_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "ew_div"));
}

static void channel_shuffle_is_a_transpose_of_the_channels_split_in_two(void **state)
{
    (void)state;
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int in = test_add_input(g, "in", 4, 5, 6);
    int shuffle = test_add_layer(g, "shuffle", HQ_LAYER_CHANNEL_SHUFFLE, in);
    hq_graph_layer_mut(g, shuffle)->params.groups = 3;
    test_add_layer(g, "out", HQ_LAYER_OUTPUT, shuffle);
    test_finalize(g);
    hqi_qlayer_t layers[3];
    for (int i = 0; i < 3; i++)
        layers[i] = (hqi_qlayer_t){.bits = 16, .scale = 0.5f, .zp = 3};
    hqi_qmodel_t model = {.layer_count = 3, .layers = layers};
    hqi_op_t op;
    assert_int_equal(hqi_lower_layer(g, &model, shuffle, &op, NULL), HQ_OK);
    assert_int_equal(op.code, HQX_OP_TRANSPOSE_VIEW);
    assert_int_equal(op.input_count, 1);
    assert_int_equal(op.u.transpose.bits, 16);
    const int32_t view[HQRT_MAX_DIMS] = {1, 4, 5, 3, 2, 1};
    const int32_t perm[HQRT_MAX_DIMS] = {0, 1, 2, 4, 3, 5};
    assert_int_equal(op.u.transpose.view_ndim, 5);
    assert_memory_equal(op.u.transpose.view, view, sizeof view);
    assert_memory_equal(op.u.transpose.perm, perm, sizeof perm);
    hq_graph_destroy(g);
}

static void missing_weights_are_refused_without_a_layer_prefix(void **state)
{
    net_t *n = *state;
    hqi_op_t op;
    hq_error_t err = {0};
    n->layers[n->conv].kernel = NULL;
    hq_status_t st = hqi_lower_layer(n->g, &n->model, n->conv, &op, &err);
    n->layers[n->conv].kernel = kernel;
    assert_int_equal(st, HQ_ERR_UNSUPPORTED);
    assert_string_equal(err.message, "no integer kernel in the quantized params");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_conv_with_an_addend_reads_two_inputs_and_carries_the_addend_term),
        cmocka_unit_test(ew_sub_is_an_eltwise_add_with_each_inputs_encoding),
        cmocka_unit_test(batch_norm_is_a_1x1_depthwise_conv_over_its_channels),
        cmocka_unit_test(a_type_without_a_runtime_op_is_refused),
        cmocka_unit_test(missing_weights_are_refused_without_a_layer_prefix),
        cmocka_unit_test(channel_shuffle_is_a_transpose_of_the_channels_split_in_two),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
