/* test_graph.c — the in-memory graph: building, lookup, editing, finalize and shape inference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hq/graph.h"

static hq_shape_t shape4(int64_t h, int64_t w, int64_t c)
{
    hq_shape_t s = {.ndim = 4, .dims = {-1, h, w, c}};
    return s;
}

static int add(hq_graph_t *g, const char *name, hq_layer_type_t type)
{
    int index = -1;
    hq_error_t err = {0};
    if (hq_graph_add_layer(g, name, type, &index, &err))
        fail_msg("%s", err.message);
    return index;
}

static void link_layers(hq_graph_t *g, int from, int port, int to)
{
    hq_error_t err = {0};
    if (hq_graph_connect(g, from, port, to, &err))
        fail_msg("%s", err.message);
}

static int add_input(hq_graph_t *g, const char *name, hq_shape_t shape)
{
    int index = add(g, name, HQ_LAYER_INPUT);
    assert_int_equal(hq_layer_set_output_shape(g, index, &shape, NULL), HQ_OK);
    return index;
}

static void finalize_ok(hq_graph_t *g)
{
    hq_error_t err = {0};
    if (hq_graph_finalize(g, "test.hn", &err))
        fail_msg("%s", err.message);
}

static void assert_shape(hq_shape_t s, int ndim, int64_t d1, int64_t d2, int64_t d3)
{
    char msg[128];
    snprintf(msg, sizeof(msg), "got ndim %d [%lld %lld %lld]", s.ndim, (long long)s.dims[1],
             (long long)s.dims[2], (long long)s.dims[3]);
    if (s.ndim != ndim || (ndim > 1 && s.dims[1] != d1) || (ndim > 2 && s.dims[2] != d2) ||
        (ndim > 3 && s.dims[3] != d3))
        fail_msg("expected ndim %d [%lld %lld %lld], %s", ndim, (long long)d1, (long long)d2,
                 (long long)d3, msg);
}

/* input (shape) -> one layer of `type` -> output; `setup` fills its params. */
typedef void (*setup_fn)(hq_graph_t *g, int index, hq_layer_params_t *p);

static hq_graph_t *single(hq_layer_type_t type, hq_shape_t in, setup_fn setup, int *index)
{
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int i = add_input(g, "in", in);
    int x = add(g, "x", type);
    int o = add(g, "out", HQ_LAYER_OUTPUT);
    link_layers(g, i, 0, x);
    link_layers(g, x, 0, o);
    if (setup)
        setup(g, x, &hq_graph_layer_mut(g, x)->params);
    *index = x;
    return g;
}

static hq_shape_t infer(hq_layer_type_t type, hq_shape_t in, setup_fn setup)
{
    int x;
    hq_graph_t *g = single(type, in, setup, &x);
    finalize_ok(g);
    hq_shape_t out = hq_graph_layer(g, x)->output_shape;
    assert_shape(hq_graph_layer(g, x + 1)->output_shape, out.ndim, out.dims[1], out.dims[2],
                 out.dims[3]);
    hq_graph_destroy(g);
    return out;
}

static void infer_fails(hq_layer_type_t type, hq_shape_t in, setup_fn setup, const char *message)
{
    int x;
    hq_graph_t *g = single(type, in, setup, &x);
    hq_error_t err = {0};
    assert_int_equal(hq_graph_finalize(g, "test.hn", &err), HQ_ERR_INVALID);
    assert_false(hq_graph_is_finalized(g));
    if (!strstr(err.message, message))
        fail_msg("'%s' lacks '%s'", err.message, message);
    hq_graph_destroy(g);
}

/* ---- names and lookup -------------------------------------------------------------------- */

static void every_type_and_activation_name_round_trips(void **state)
{
    (void)state;
    for (int t = 0; t < HQ_LAYER_TYPE_COUNT; t++) {
        hq_layer_type_t back;
        assert_non_null(hq_layer_type_name((hq_layer_type_t)t));
        assert_int_equal(hq_layer_type_from_name(hq_layer_type_name((hq_layer_type_t)t), &back),
                         HQ_OK);
        assert_int_equal(back, t);
    }
    for (int a = 0; a < HQ_ACT_COUNT; a++) {
        hq_activation_t back;
        assert_int_equal(hq_activation_from_name(hq_activation_name((hq_activation_t)a), &back),
                         HQ_OK);
        assert_int_equal(back, a);
    }
    assert_null(hq_layer_type_name(HQ_LAYER_TYPE_COUNT));
    assert_string_equal(hq_layer_type_name(HQ_LAYER_FEATURE_SPLITTER), "feature_splitter");
    assert_int_equal(hq_layer_type_from_name("Conv", NULL), HQ_ERR_NOT_FOUND);
    assert_int_equal(hq_activation_from_name("swish", NULL), HQ_ERR_NOT_FOUND);
}

static void find_tries_scoped_then_bare_then_original_names(void **state)
{
    (void)state;
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int a = add(g, "conv1", HQ_LAYER_CONV);
    int b = add(g, "conv2", HQ_LAYER_CONV);
    assert_int_equal(hq_layer_add_original_name(g, a, "/features/0/Conv", NULL), HQ_OK);
    /* "conv1" is also an original name of b: the bare name of a wins. */
    assert_int_equal(hq_layer_add_original_name(g, b, "conv1", NULL), HQ_OK);
    assert_int_equal(hq_graph_find(g, "net/conv2"), b);
    assert_int_equal(hq_graph_find(g, "conv2"), b);
    assert_int_equal(hq_graph_find(g, "conv1"), a);
    assert_int_equal(hq_graph_find(g, "/features/0/Conv"), a);
    assert_int_equal(hq_graph_find(g, "conv3"), -1);
    assert_int_equal(hq_graph_find(g, "net/conv"), -1);
    assert_string_equal(hq_graph_layer(g, b)->bare_name, "conv2");
    assert_null(hq_graph_layer(g, 2));
    hq_graph_destroy(g);
}

static void add_layer_refuses_a_duplicate_name(void **state)
{
    (void)state;
    hq_graph_t *g = NULL;
    hq_error_t err = {0};
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    add(g, "a", HQ_LAYER_ACTIVATION);
    assert_int_equal(hq_graph_add_layer(g, "a", HQ_LAYER_CONV, NULL, &err), HQ_ERR_ARGUMENT);
    assert_string_equal(err.message, "layer 'net/a' already exists");
    assert_int_equal(hq_graph_layer_count(g), 1);
    hq_graph_destroy(g);
}

/* ---- topology ---------------------------------------------------------------------------- */

/* in -> a -> {b, c} -> add -> out, with layers added in a scrambled order. */
static hq_graph_t *diamond(int *in, int *a, int *b, int *c, int *sum, int *out)
{
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    *out = add(g, "out", HQ_LAYER_OUTPUT);
    *sum = add(g, "add", HQ_LAYER_EW_ADD);
    *c = add(g, "c", HQ_LAYER_ACTIVATION);
    *b = add(g, "b", HQ_LAYER_ACTIVATION);
    *a = add(g, "a", HQ_LAYER_ACTIVATION);
    *in = add_input(g, "in", shape4(4, 4, 2));
    link_layers(g, *in, 0, *a);
    link_layers(g, *a, 0, *b);
    link_layers(g, *a, 0, *c);
    link_layers(g, *b, 0, *sum);
    link_layers(g, *c, 0, *sum);
    link_layers(g, *sum, 0, *out);
    return g;
}

static void topo_order_of_a_diamond_puts_producers_first(void **state)
{
    (void)state;
    int in, a, b, c, sum, out;
    hq_graph_t *g = diamond(&in, &a, &b, &c, &sum, &out);
    int count = -1;
    assert_null(hq_graph_topo_order(g, &count)); /* not finalized yet */
    assert_int_equal(count, 0);
    finalize_ok(g);
    const int *order = hq_graph_topo_order(g, &count);
    assert_int_equal(count, 6);
    int position[6];
    for (int i = 0; i < count; i++)
        position[order[i]] = i;
    assert_true(position[in] < position[a]);
    assert_true(position[a] < position[b] && position[a] < position[c]);
    assert_true(position[b] < position[sum] && position[c] < position[sum]);
    assert_true(position[sum] < position[out]);
    assert_shape(hq_graph_layer(g, out)->output_shape, 4, 4, 4, 2);
    hq_graph_destroy(g);
}

static void connect_building_a_cycle_fails_finalize(void **state)
{
    (void)state;
    int in, a, b, c, sum, out;
    hq_graph_t *g = diamond(&in, &a, &b, &c, &sum, &out);
    /* b now also takes its input from add: add -> b -> add. b has 2 inputs too. */
    link_layers(g, sum, 0, b);
    hq_error_t err = {0};
    assert_int_equal(hq_graph_finalize(g, "test.hn", &err), HQ_ERR_INVALID);
    /* activation arity (1) is checked before cycles */
    assert_non_null(strstr(err.message, "test.hn: layer 'net/b': activation takes 1 input, has 2"));
    hq_graph_destroy(g);

    g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int x = add(g, "x", HQ_LAYER_ACTIVATION), y = add(g, "y", HQ_LAYER_ACTIVATION);
    link_layers(g, x, 0, y);
    link_layers(g, y, 0, x);
    assert_int_equal(hq_graph_finalize(g, "test.hn", &err), HQ_ERR_INVALID);
    assert_true(strstr(err.message, "layer 'net/x' is on a cycle") ||
                strstr(err.message, "layer 'net/y' is on a cycle"));
    hq_graph_destroy(g);
}

static void insert_after_puts_the_layer_on_every_outgoing_edge(void **state)
{
    (void)state;
    int in, a, b, c, sum, out;
    hq_graph_t *g = diamond(&in, &a, &b, &c, &sum, &out);
    int n = add(g, "norm", HQ_LAYER_ACTIVATION);
    hq_error_t err = {0};
    assert_int_equal(hq_graph_insert_after(g, a, n, &err), HQ_OK);
    const hq_layer_t *la = hq_graph_layer(g, a), *ln = hq_graph_layer(g, n);
    assert_int_equal(la->output_count, 1);
    assert_int_equal(la->outputs[0], n);
    assert_int_equal(ln->input_count, 1);
    assert_int_equal(ln->inputs[0], a);
    assert_int_equal(ln->output_count, 2);
    assert_int_equal(hq_graph_layer(g, b)->inputs[0], n);
    assert_int_equal(hq_graph_layer(g, c)->inputs[0], n);
    finalize_ok(g);
    /* A layer that already has edges cannot be inserted. */
    assert_int_equal(hq_graph_insert_after(g, b, n, &err), HQ_ERR_ARGUMENT);
    hq_graph_destroy(g);
}

static void insert_after_keeps_the_consumer_input_slot(void **state)
{
    (void)state;
    int in, a, b, c, sum, out;
    hq_graph_t *g = diamond(&in, &a, &b, &c, &sum, &out);
    int n = add(g, "scale", HQ_LAYER_ACTIVATION);
    assert_int_equal(hq_graph_insert_after(g, c, n, NULL), HQ_OK);
    const hq_layer_t *ls = hq_graph_layer(g, sum);
    assert_int_equal(ls->inputs[0], b);
    assert_int_equal(ls->inputs[1], n); /* c was the second operand; the new layer is too */
    finalize_ok(g);
    hq_graph_destroy(g);
}

static void bypass_layer_reconnects_consumers_and_renumbers(void **state)
{
    (void)state;
    int in, a, b, c, sum, out;
    hq_graph_t *g = diamond(&in, &a, &b, &c, &sum, &out);
    int order[1] = {out};
    assert_int_equal(hq_graph_set_outputs_order(g, order, 1, NULL), HQ_OK);
    finalize_ok(g);
    /* Layer indices: out 0, add 1, c 2, b 3, a 4, in 5. Bypass c (index 2). */
    assert_int_equal(hq_graph_bypass_layer(g, c, NULL), HQ_OK);
    assert_false(hq_graph_is_finalized(g));
    assert_int_equal(hq_graph_layer_count(g), 5);
    assert_int_equal(hq_graph_find(g, "c"), -1);
    int ia = hq_graph_find(g, "a"), isum = hq_graph_find(g, "add"), ib = hq_graph_find(g, "b");
    assert_int_equal(ia, 3);
    const hq_layer_t *la = hq_graph_layer(g, ia), *ls = hq_graph_layer(g, isum);
    assert_int_equal(la->output_count, 2);
    assert_int_equal(la->outputs[0], ib);
    assert_int_equal(la->outputs[1], isum);
    assert_int_equal(ls->inputs[0], ib);
    assert_int_equal(ls->inputs[1], ia); /* same slot c had */
    finalize_ok(g);
    int count;
    const int *outs = hq_graph_outputs(g, &count);
    assert_int_equal(count, 1);
    assert_string_equal(hq_graph_layer(g, outs[0])->bare_name, "out");
    /* add has two inputs: it cannot be bypassed. */
    hq_error_t err = {0};
    assert_int_equal(hq_graph_bypass_layer(g, isum, &err), HQ_ERR_ARGUMENT);
    assert_non_null(strstr(err.message, "'net/add' has 2 inputs"));
    hq_graph_destroy(g);
}

static void set_outputs_order_orders_outputs_and_refuses_other_layers(void **state)
{
    (void)state;
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int in = add_input(g, "in", shape4(2, 2, 1));
    int o1 = add(g, "o1", HQ_LAYER_OUTPUT), o2 = add(g, "o2", HQ_LAYER_OUTPUT);
    link_layers(g, in, 0, o1);
    link_layers(g, in, 0, o2);
    int count;
    const int *outs = hq_graph_outputs(g, &count);
    assert_int_equal(count, 2);
    assert_int_equal(outs[0], o1);
    int order[2] = {o2, o1};
    assert_int_equal(hq_graph_set_outputs_order(g, order, 2, NULL), HQ_OK);
    finalize_ok(g);
    outs = hq_graph_outputs(g, &count);
    assert_int_equal(outs[0], o2);
    assert_int_equal(outs[1], o1);
    hq_error_t err = {0};
    int bad[1] = {in};
    assert_int_equal(hq_graph_set_outputs_order(g, bad, 1, &err), HQ_ERR_ARGUMENT);
    int twice[2] = {o1, o1};
    assert_int_equal(hq_graph_set_outputs_order(g, twice, 2, &err), HQ_ERR_ARGUMENT);
    assert_non_null(strstr(err.message, "listed twice"));
    const int *ins = hq_graph_inputs(g, &count);
    assert_int_equal(count, 1);
    assert_int_equal(ins[0], in);
    hq_graph_destroy(g);
}

static void clone_is_deep(void **state)
{
    (void)state;
    int in, a, b, c, sum, out;
    hq_graph_t *g = diamond(&in, &a, &b, &c, &sum, &out);
    assert_int_equal(hq_layer_add_original_name(g, a, "/relu", NULL), HQ_OK);
    finalize_ok(g);
    hq_graph_t *copy = NULL;
    assert_int_equal(hq_graph_clone(g, &copy, NULL), HQ_OK);
    assert_true(hq_graph_is_finalized(copy));
    assert_int_equal(hq_graph_bypass_layer(copy, c, NULL), HQ_OK);
    assert_int_equal(hq_graph_layer_count(g), 6);
    assert_int_equal(hq_graph_layer_count(copy), 5);
    assert_int_equal(hq_graph_find(copy, "/relu"), hq_graph_find(copy, "a"));
    assert_ptr_not_equal(hq_graph_layer(copy, 0)->name, hq_graph_layer(g, 0)->name);
    hq_graph_destroy(copy);
    hq_graph_destroy(g);
    hq_graph_destroy(NULL);
}

/* ---- shape inference, one case per type -------------------------------------------------- */

static void set_conv_3x3_s2_same(hq_graph_t *g, int i, hq_layer_params_t *p)
{
    (void)g;
    (void)i;
    p->kernel_h = p->kernel_w = 3;
    p->kernel_in = 3;
    p->kernel_out = 16;
    p->stride_h = p->stride_w = 2;
    p->padding = HQ_PADDING_SAME;
}

static void set_conv_3x3_s2_same_tf(hq_graph_t *g, int i, hq_layer_params_t *p)
{
    set_conv_3x3_s2_same(g, i, p);
    p->kernel_h = p->kernel_w = 4;
    p->padding = HQ_PADDING_SAME_TENSORFLOW;
}

static void set_conv_dilated_explicit(hq_graph_t *g, int i, hq_layer_params_t *p)
{
    (void)g;
    (void)i;
    p->kernel_h = 3;
    p->kernel_w = 1;
    p->kernel_in = 3;
    p->kernel_out = 4;
    p->dilation_h = 2;
    p->padding = HQ_PADDING_EXPLICIT;
    p->pads[0] = 1; /* top */
    p->pads[2] = 0;
    p->pads[1] = 2; /* left */
}

static void conv_output_follows_padding_stride_and_dilation(void **state)
{
    (void)state;
    int x;
    hq_graph_t *g = single(HQ_LAYER_CONV, shape4(7, 8, 3), set_conv_3x3_s2_same, &x);
    finalize_ok(g);
    const hq_layer_t *l = hq_graph_layer(g, x);
    assert_shape(l->output_shape, 4, 4, 4, 16);
    /* H: 7 -> 4, total pad 2 (1/1); W: 8 -> 4, total pad 1, extra at the start for SAME. */
    assert_int_equal(l->params.pads[0], 1);
    assert_int_equal(l->params.pads[2], 1);
    assert_int_equal(l->params.pads[1], 1);
    assert_int_equal(l->params.pads[3], 0);
    assert_int_equal(hq_layer_param_count(l), 3 * 3 * 3 * 16 + 16);
    hq_graph_destroy(g);

    g = single(HQ_LAYER_CONV, shape4(8, 8, 3), set_conv_3x3_s2_same_tf, &x);
    finalize_ok(g);
    l = hq_graph_layer(g, x);
    assert_shape(l->output_shape, 4, 4, 4, 16);
    assert_int_equal(l->params.pads[0], 1); /* total 2 */
    assert_int_equal(l->params.pads[2], 1);
    hq_graph_destroy(g);

    /* H: 6 + 1 - (2*2+1) + 1 = 3; W: 5 + 2 - 1 + 1 = 7 */
    assert_shape(infer(HQ_LAYER_CONV, shape4(6, 5, 3), set_conv_dilated_explicit), 4, 3, 7, 4);
}

static void set_grouped(hq_graph_t *g, int i, hq_layer_params_t *p)
{
    (void)g;
    (void)i;
    p->kernel_in = 2;
    p->kernel_out = 6;
    p->groups = 3;
}

static void set_grouped_bad(hq_graph_t *g, int i, hq_layer_params_t *p)
{
    set_grouped(g, i, p);
    p->kernel_out = 5;
}

static void grouped_conv_needs_groups_dividing_both_channel_counts(void **state)
{
    (void)state;
    assert_shape(infer(HQ_LAYER_CONV, shape4(2, 2, 6), set_grouped), 4, 2, 2, 6);
    infer_fails(HQ_LAYER_CONV, shape4(2, 2, 6), set_grouped_bad, "groups 3 do not divide");
    infer_fails(HQ_LAYER_CONV, shape4(2, 2, 5), set_grouped, "groups 3 do not divide");
}

static void set_dw(hq_graph_t *g, int i, hq_layer_params_t *p)
{
    (void)g;
    (void)i;
    p->kernel_h = p->kernel_w = 3;
    p->kernel_in = 1;
    p->kernel_out = 8;
    p->padding = HQ_PADDING_SAME;
}

static void dw_takes_one_group_per_channel(void **state)
{
    (void)state;
    int x;
    hq_graph_t *g = single(HQ_LAYER_DW, shape4(5, 5, 8), set_dw, &x);
    finalize_ok(g);
    const hq_layer_t *l = hq_graph_layer(g, x);
    assert_shape(l->output_shape, 4, 5, 5, 8);
    assert_int_equal(l->params.groups, 8);
    assert_int_equal(hq_layer_param_count(l), 3 * 3 * 8 + 8);
    hq_graph_destroy(g);
    infer_fails(HQ_LAYER_DW, shape4(5, 5, 3), set_dw, "depthwise kernel");
}

static void set_deconv(hq_graph_t *g, int i, hq_layer_params_t *p)
{
    (void)g;
    (void)i;
    p->kernel_h = p->kernel_w = 4;
    p->kernel_in = 3;
    p->kernel_out = 5;
    p->stride_h = p->stride_w = 2;
    p->padding = HQ_PADDING_EXPLICIT;
    p->pads[0] = p->pads[1] = p->pads[2] = p->pads[3] = 1;
    p->output_pads[1] = 1;
}

static void deconv_upsamples_by_the_stride(void **state)
{
    (void)state;
    /* (6-1)*2 + 4 - 2 = 12; W gets the extra output_padding column. */
    assert_shape(infer(HQ_LAYER_DECONV, shape4(6, 6, 3), set_deconv), 4, 12, 13, 5);
}

static void set_dense(hq_graph_t *g, int i, hq_layer_params_t *p)
{
    (void)g;
    (void)i;
    p->kernel_in = 12;
    p->kernel_out = 10;
}

static void dense_flattens_its_input_to_a_vector(void **state)
{
    (void)state;
    hq_shape_t s = infer(HQ_LAYER_DENSE, shape4(2, 2, 3), set_dense);
    assert_int_equal(s.ndim, 2);
    assert_int_equal(s.dims[1], 10);
    infer_fails(HQ_LAYER_DENSE, shape4(2, 2, 4), set_dense, "expects 12 input features");
}

static void set_pool(hq_graph_t *g, int i, hq_layer_params_t *p)
{
    (void)g;
    (void)i;
    p->kernel_h = p->kernel_w = 3;
    p->stride_h = p->stride_w = 2;
}

static void set_zero_kernel(hq_graph_t *g, int i, hq_layer_params_t *p)
{
    (void)g;
    (void)i;
    p->kernel_h = 0;
}

static void set_zero_stride(hq_graph_t *g, int i, hq_layer_params_t *p)
{
    (void)g;
    (void)i;
    p->stride_w = 0;
}

static void pools_shrink_spatially_and_refuse_zero_windows(void **state)
{
    (void)state;
    assert_shape(infer(HQ_LAYER_MAXPOOL, shape4(7, 9, 5), set_pool), 4, 3, 4, 5);
    assert_shape(infer(HQ_LAYER_AVGPOOL, shape4(7, 9, 5), set_pool), 4, 3, 4, 5);
    assert_shape(infer(HQ_LAYER_GLOBAL_AVG_POOL, shape4(7, 9, 5), NULL), 4, 1, 1, 5);
    infer_fails(HQ_LAYER_MAXPOOL, shape4(7, 9, 5), set_zero_kernel, "kernel 0x1");
    infer_fails(HQ_LAYER_MAXPOOL, shape4(7, 9, 5), set_zero_stride, "stride 1x0");
    infer_fails(HQ_LAYER_MAXPOOL, shape4(2, 2, 5), set_pool, "larger than the padded input");
}

/* in1 (a) and in2 (b) -> ew op -> out */
static hq_status_t ew(hq_layer_type_t type, hq_shape_t a, hq_shape_t b, hq_shape_t *out,
                      hq_error_t *err)
{
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int i1 = add_input(g, "in1", a), i2 = add_input(g, "in2", b);
    int x = add(g, "x", type);
    link_layers(g, i1, 0, x);
    link_layers(g, i2, 0, x);
    hq_status_t st = hq_graph_finalize(g, "test.hn", err);
    *out = hq_graph_layer(g, x)->output_shape;
    hq_graph_destroy(g);
    return st;
}

static void elementwise_ops_broadcast_ones_in_h_w_and_c(void **state)
{
    (void)state;
    hq_shape_t out;
    hq_error_t err = {0};
    assert_int_equal(ew(HQ_LAYER_EW_ADD, shape4(4, 4, 8), shape4(4, 4, 8), &out, &err), HQ_OK);
    assert_shape(out, 4, 4, 4, 8);
    assert_int_equal(ew(HQ_LAYER_EW_MULT, shape4(4, 4, 8), shape4(1, 1, 8), &out, &err), HQ_OK);
    assert_shape(out, 4, 4, 4, 8);
    assert_int_equal(ew(HQ_LAYER_EW_SUB, shape4(1, 1, 8), shape4(4, 4, 1), &out, &err), HQ_OK);
    assert_shape(out, 4, 4, 4, 8);
    assert_int_equal(ew(HQ_LAYER_EW_DIV, shape4(4, 1, 8), shape4(1, 5, 8), &out, &err), HQ_OK);
    assert_shape(out, 4, 4, 5, 8);
    assert_int_equal(ew(HQ_LAYER_EW_MAX, shape4(4, 4, 8), shape4(4, 4, 8), &out, &err), HQ_OK);
    assert_int_equal(ew(HQ_LAYER_EW_MIN, shape4(4, 4, 8), shape4(4, 4, 8), &out, &err), HQ_OK);
    assert_int_equal(ew(HQ_LAYER_EW_ADD, shape4(4, 4, 8), shape4(4, 4, 3), &out, &err),
                     HQ_ERR_INVALID);
    assert_non_null(strstr(err.message, "do not broadcast"));
}

static void concat_sums_its_axis_and_splitter_splits_it(void **state)
{
    (void)state;
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int in = add_input(g, "in", shape4(3, 3, 10));
    int sp = add(g, "split", HQ_LAYER_FEATURE_SPLITTER);
    int cat = add(g, "cat", HQ_LAYER_CONCAT);
    int sizes[3] = {2, 3, 5};
    assert_int_equal(hq_layer_set_split_sizes(g, sp, sizes, 3, NULL), HQ_OK);
    link_layers(g, in, 0, sp);
    link_layers(g, sp, 2, cat);
    link_layers(g, sp, 0, cat);
    finalize_ok(g);
    const hq_layer_t *ls = hq_graph_layer(g, sp), *lc = hq_graph_layer(g, cat);
    assert_int_equal(hq_layer_port_count(ls), 3);
    assert_shape(hq_layer_port_shape(ls, 1), 4, 3, 3, 3);
    assert_int_equal(hq_layer_port_shape(ls, 3).ndim, 0);
    assert_shape(lc->input_shapes[0], 4, 3, 3, 5);
    assert_shape(lc->output_shape, 4, 3, 3, 7);
    /* Concat along W. */
    hq_graph_layer_mut(g, cat)->params.axis = 2;
    hq_error_t err = {0};
    assert_int_equal(hq_graph_finalize(g, "test.hn", &err), HQ_ERR_INVALID);
    assert_non_null(strstr(err.message, "does not match input 0"));
    /* A piece that does not exist. */
    hq_graph_layer_mut(g, cat)->params.axis = 3;
    link_layers(g, sp, 3, cat);
    assert_int_equal(hq_graph_finalize(g, "test.hn", &err), HQ_ERR_INVALID);
    assert_non_null(strstr(err.message, "takes piece 3 of 'net/split', which has 3"));
    hq_graph_destroy(g);
}

static void set_slice(hq_graph_t *g, int i, hq_layer_params_t *p)
{
    (void)g;
    (void)i;
    p->slice_begin[0] = 1;
    p->slice_end[0] = 8;
    p->slice_step[0] = 3;
    p->slice_end[1] = 4;
    p->slice_begin[2] = 2;
    p->slice_end[2] = 3;
}

static void set_pad(hq_graph_t *g, int i, hq_layer_params_t *p)
{
    (void)g;
    (void)i;
    p->pads[0] = 1;
    p->pads[3] = 2;
    p->pad_channels[1] = 3;
}

static void slice_and_pad_change_extents(void **state)
{
    (void)state;
    assert_shape(infer(HQ_LAYER_SLICE, shape4(8, 4, 4), set_slice), 4, 3, 4, 1);
    infer_fails(HQ_LAYER_SLICE, shape4(7, 4, 4), set_slice, "slice [1, 8) on H is out of range");
    assert_shape(infer(HQ_LAYER_PAD, shape4(4, 4, 2), set_pad), 4, 5, 6, 5);
}

static void set_resize_shape(hq_graph_t *g, int i, hq_layer_params_t *p)
{
    (void)p;
    hq_shape_t s = shape4(9, 10, 3);
    assert_int_equal(hq_layer_set_output_shape(g, i, &s, NULL), HQ_OK);
}

static void set_reshape_shape(hq_graph_t *g, int i, hq_layer_params_t *p)
{
    (void)p;
    hq_shape_t s = {.ndim = 2, .dims = {-1, 48}};
    assert_int_equal(hq_layer_set_output_shape(g, i, &s, NULL), HQ_OK);
}

static void resize_and_reshape_take_the_given_shape(void **state)
{
    (void)state;
    assert_shape(infer(HQ_LAYER_RESIZE, shape4(3, 5, 3), set_resize_shape), 4, 9, 10, 3);
    infer_fails(HQ_LAYER_RESIZE, shape4(3, 5, 3), NULL, "output shape is not given");
    infer_fails(HQ_LAYER_RESIZE, shape4(3, 5, 4), set_resize_shape, "keep the channels");
    hq_shape_t s = infer(HQ_LAYER_RESHAPE, shape4(4, 4, 3), set_reshape_shape);
    assert_int_equal(s.ndim, 2);
    assert_int_equal(s.dims[1], 48);
    infer_fails(HQ_LAYER_RESHAPE, shape4(4, 4, 2), set_reshape_shape, "changes the element count");
}

static void set_block2(hq_graph_t *g, int i, hq_layer_params_t *p)
{
    (void)g;
    (void)i;
    p->block_size = 2;
}

static void depth_and_space_trade_channels_for_pixels(void **state)
{
    (void)state;
    assert_shape(infer(HQ_LAYER_DEPTH_TO_SPACE, shape4(3, 4, 8), set_block2), 4, 6, 8, 2);
    assert_shape(infer(HQ_LAYER_SPACE_TO_DEPTH, shape4(4, 6, 3), set_block2), 4, 2, 3, 12);
    infer_fails(HQ_LAYER_DEPTH_TO_SPACE, shape4(3, 4, 6), set_block2, "not divisible");
    infer_fails(HQ_LAYER_SPACE_TO_DEPTH, shape4(3, 4, 6), set_block2, "not divisible");
}

static void set_groups3(hq_graph_t *g, int i, hq_layer_params_t *p)
{
    (void)g;
    (void)i;
    p->groups = 3;
}

static void channel_shuffle_keeps_the_shape_when_groups_divide_the_channels(void **state)
{
    (void)state;
    assert_shape(infer(HQ_LAYER_CHANNEL_SHUFFLE, shape4(3, 4, 12), set_groups3), 4, 3, 4, 12);
    infer_fails(HQ_LAYER_CHANNEL_SHUFFLE, shape4(3, 4, 8), set_groups3, "divide the 8 channels");
}

static void set_perm(hq_graph_t *g, int i, hq_layer_params_t *p)
{
    (void)g;
    (void)i;
    p->perm[1] = 3;
    p->perm[2] = 1;
    p->perm[3] = 2;
}

static void set_bad_perm(hq_graph_t *g, int i, hq_layer_params_t *p)
{
    (void)g;
    (void)i;
    p->perm[1] = 2;
}

static void set_axis2(hq_graph_t *g, int i, hq_layer_params_t *p)
{
    (void)g;
    (void)i;
    p->axis = 2;
}

static void set_axis0(hq_graph_t *g, int i, hq_layer_params_t *p)
{
    (void)g;
    (void)i;
    p->axis = 0;
}

static void shape_keeping_and_axis_ops_infer_as_documented(void **state)
{
    (void)state;
    assert_shape(infer(HQ_LAYER_TRANSPOSE, shape4(2, 3, 5), set_perm), 4, 5, 2, 3);
    infer_fails(HQ_LAYER_TRANSPOSE, shape4(2, 3, 5), set_bad_perm, "not a permutation");
    assert_shape(infer(HQ_LAYER_REDUCE_MAX, shape4(2, 3, 5), set_axis2), 4, 2, 1, 5);
    assert_shape(infer(HQ_LAYER_REDUCE_SUM, shape4(2, 3, 5), NULL), 4, 2, 3, 1);
    assert_shape(infer(HQ_LAYER_ARGMAX, shape4(2, 3, 5), NULL), 4, 2, 3, 1);
    assert_shape(infer(HQ_LAYER_SOFTMAX, shape4(2, 3, 5), NULL), 4, 2, 3, 5);
    infer_fails(HQ_LAYER_SOFTMAX, shape4(2, 3, 5), set_axis0, "axis 0 is out of range");
    assert_shape(infer(HQ_LAYER_ACTIVATION, shape4(2, 3, 5), NULL), 4, 2, 3, 5);
    assert_shape(infer(HQ_LAYER_BATCH_NORM, shape4(2, 3, 5), NULL), 4, 2, 3, 5);
}

static void set_norm(hq_graph_t *g, int i, hq_layer_params_t *p)
{
    (void)p;
    const float mean[3] = {1, 2, 3}, std[3] = {4, 5, 6};
    assert_int_equal(hq_layer_set_normalization(g, i, mean, std, 3, NULL), HQ_OK);
}

static void normalization_needs_one_mean_and_std_per_channel(void **state)
{
    (void)state;
    int x;
    hq_graph_t *g = single(HQ_LAYER_NORMALIZATION, shape4(2, 2, 3), set_norm, &x);
    finalize_ok(g);
    assert_int_equal(hq_layer_param_count(hq_graph_layer(g, x)), 6);
    assert_true(hq_graph_layer(g, x)->params.std[2] == 6.0f);
    hq_graph_destroy(g);
    infer_fails(HQ_LAYER_NORMALIZATION, shape4(2, 2, 4), set_norm, "3 values for 4 channels");
    infer_fails(HQ_LAYER_NORMALIZATION, shape4(2, 2, 3), NULL, "needs mean and std");
}

static void const_input_takes_its_stored_shape(void **state)
{
    (void)state;
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int in = add_input(g, "in", shape4(4, 4, 3));
    int k = add(g, "k", HQ_LAYER_CONST_INPUT);
    hq_shape_t ks = shape4(1, 1, 3);
    assert_int_equal(hq_layer_set_output_shape(g, k, &ks, NULL), HQ_OK);
    int m = add(g, "m", HQ_LAYER_EW_MULT);
    link_layers(g, in, 0, m);
    link_layers(g, k, 0, m);
    finalize_ok(g);
    assert_shape(hq_graph_layer(g, m)->output_shape, 4, 4, 4, 3);
    assert_int_equal(hq_graph_layer(g, k)->input_shape_count, 0);
    int count;
    hq_graph_inputs(g, &count);
    assert_int_equal(count, 1); /* constants are not network inputs */
    hq_graph_destroy(g);
}

static void builder_shape_on_an_inferred_layer_is_checked(void **state)
{
    (void)state;
    int x;
    hq_graph_t *g = single(HQ_LAYER_ACTIVATION, shape4(2, 2, 3), NULL, &x);
    hq_shape_t wrong = shape4(2, 2, 4);
    assert_int_equal(hq_layer_set_output_shape(g, x, &wrong, NULL), HQ_OK);
    hq_error_t err = {0};
    assert_int_equal(hq_graph_finalize(g, "test.hn", &err), HQ_ERR_INVALID);
    assert_string_equal(err.message, "test.hn: layer 'net/x': output shape mismatch: inferred "
                                     "[-1, 2, 2, 3], stored [-1, 2, 2, 4]");
    hq_graph_destroy(g);
}

static void param_counts_cover_kernels_biases_and_norms(void **state)
{
    (void)state;
    hq_graph_t *g = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int c = add(g, "c", HQ_LAYER_CONV), d = add(g, "d", HQ_LAYER_DENSE);
    int m = add(g, "m", HQ_LAYER_MAXPOOL), b = add(g, "b", HQ_LAYER_BATCH_NORM);
    hq_layer_t *lc = hq_graph_layer_mut(g, c);
    lc->params.kernel_h = 3;
    lc->params.kernel_w = 5;
    lc->params.kernel_in = 4;
    lc->params.kernel_out = 7;
    assert_int_equal(hq_layer_param_count(lc), 3 * 5 * 4 * 7 + 7);
    lc->params.has_bias = false;
    assert_int_equal(hq_layer_param_count(lc), 3 * 5 * 4 * 7);
    hq_layer_t *ld = hq_graph_layer_mut(g, d);
    ld->params.kernel_in = 100;
    ld->params.kernel_out = 3;
    assert_int_equal(hq_layer_param_count(ld), 303);
    assert_int_equal(hq_layer_param_count(hq_graph_layer(g, m)), 0);
    hq_layer_t *lb = hq_graph_layer_mut(g, b);
    lb->output_shape = shape4(2, 2, 16);
    assert_int_equal(hq_layer_param_count(lb), 64);
    assert_int_equal(hq_layer_param_count(NULL), 0);
    hq_graph_destroy(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_type_and_activation_name_round_trips),
        cmocka_unit_test(find_tries_scoped_then_bare_then_original_names),
        cmocka_unit_test(add_layer_refuses_a_duplicate_name),
        cmocka_unit_test(topo_order_of_a_diamond_puts_producers_first),
        cmocka_unit_test(connect_building_a_cycle_fails_finalize),
        cmocka_unit_test(insert_after_puts_the_layer_on_every_outgoing_edge),
        cmocka_unit_test(insert_after_keeps_the_consumer_input_slot),
        cmocka_unit_test(bypass_layer_reconnects_consumers_and_renumbers),
        cmocka_unit_test(set_outputs_order_orders_outputs_and_refuses_other_layers),
        cmocka_unit_test(clone_is_deep),
        cmocka_unit_test(conv_output_follows_padding_stride_and_dilation),
        cmocka_unit_test(grouped_conv_needs_groups_dividing_both_channel_counts),
        cmocka_unit_test(dw_takes_one_group_per_channel),
        cmocka_unit_test(deconv_upsamples_by_the_stride),
        cmocka_unit_test(dense_flattens_its_input_to_a_vector),
        cmocka_unit_test(pools_shrink_spatially_and_refuse_zero_windows),
        cmocka_unit_test(elementwise_ops_broadcast_ones_in_h_w_and_c),
        cmocka_unit_test(concat_sums_its_axis_and_splitter_splits_it),
        cmocka_unit_test(slice_and_pad_change_extents),
        cmocka_unit_test(resize_and_reshape_take_the_given_shape),
        cmocka_unit_test(depth_and_space_trade_channels_for_pixels),
        cmocka_unit_test(channel_shuffle_keeps_the_shape_when_groups_divide_the_channels),
        cmocka_unit_test(shape_keeping_and_axis_ops_infer_as_documented),
        cmocka_unit_test(normalization_needs_one_mean_and_std_per_channel),
        cmocka_unit_test(const_input_takes_its_stored_shape),
        cmocka_unit_test(builder_shape_on_an_inferred_layer_is_checked),
        cmocka_unit_test(param_counts_cover_kernels_biases_and_norms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
