/* test_onnx.c — ONNX import: op mappings, fusions, weight layouts, cuts and errors, on models
 * encoded here with a small protobuf writer, plus single-op models from libonnx's test data
 * checked numerically with the float emulator. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hq/emulate.h"
#include "hq/parse.h"
#include "onnx.pb-c.h"
#include "util/util.h"

/* ---- a minimal protobuf writer for ONNX models ------------------------------------------ */

static void pb_varint_raw(hqi_buf_t *b, uint64_t v)
{
    do {
        uint8_t byte = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            byte |= 0x80;
        hqi_buf_append(b, &byte, 1);
    } while (v);
}

static void pb_key(hqi_buf_t *b, int field, int wire)
{
    pb_varint_raw(b, (uint64_t)(field << 3 | wire));
}

static void pb_varint(hqi_buf_t *b, int field, int64_t v)
{
    pb_key(b, field, 0);
    pb_varint_raw(b, (uint64_t)v);
}

static void pb_bytes(hqi_buf_t *b, int field, const void *data, size_t len)
{
    pb_key(b, field, 2);
    pb_varint_raw(b, len);
    hqi_buf_append(b, data, len);
}

static void pb_str(hqi_buf_t *b, int field, const char *s)
{
    pb_bytes(b, field, s, strlen(s));
}

static void pb_msg(hqi_buf_t *b, int field, hqi_buf_t *sub)
{
    pb_bytes(b, field, sub->data, sub->len);
    hqi_buf_free(sub);
}

static void pb_float(hqi_buf_t *b, int field, float f)
{
    pb_key(b, field, 5);
    hqi_buf_append(b, &f, 4);
}

typedef struct model {
    hqi_buf_t graph;
} model_t;

static void tensor_proto(hqi_buf_t *t, const char *name, int ndim, const int64_t *dims,
                         const float *f, const int64_t *q)
{
    int64_t count = 1;
    for (int d = 0; d < ndim; d++) {
        pb_varint(t, 1, dims[d]);
        count *= dims[d];
    }
    pb_varint(t, 2,
              f ? ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT : ONNX__TENSOR_PROTO__DATA_TYPE__INT64);
    if (name)
        pb_str(t, 8, name);
    if (f)
        pb_bytes(t, 9, f, (size_t)count * 4);
    else
        pb_bytes(t, 9, q, (size_t)count * 8);
}

static void init_f(model_t *m, const char *name, int ndim, const int64_t *dims, const float *data)
{
    hqi_buf_t t = {0};
    tensor_proto(&t, name, ndim, dims, data, NULL);
    pb_msg(&m->graph, 5, &t);
}

static void init_i(model_t *m, const char *name, int ndim, const int64_t *dims, const int64_t *data)
{
    hqi_buf_t t = {0};
    tensor_proto(&t, name, ndim, dims, NULL, data);
    pb_msg(&m->graph, 5, &t);
}

/* Value info with a float tensor type; dims <= 0 are dynamic ("N"). */
static void value_info(model_t *m, int field, const char *name, int ndim, const int64_t *dims)
{
    hqi_buf_t vi = {0}, type = {0}, tt = {0}, shape = {0};
    for (int d = 0; d < ndim; d++) {
        hqi_buf_t dim = {0};
        if (dims[d] > 0)
            pb_varint(&dim, 1, dims[d]);
        else
            pb_str(&dim, 2, d == 0 ? "N" : "height");
        pb_msg(&shape, 1, &dim);
    }
    pb_varint(&tt, 1, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    pb_msg(&tt, 2, &shape);
    pb_msg(&type, 1, &tt);
    pb_str(&vi, 1, name);
    pb_msg(&vi, 2, &type);
    pb_msg(&m->graph, field, &vi);
}

static void input(model_t *m, const char *name, int ndim, const int64_t *dims)
{
    value_info(m, 11, name, ndim, dims);
}

static void output(model_t *m, const char *name)
{
    value_info(m, 12, name, 0, NULL);
}

/* Adds a node. `ins`/`outs` are comma-separated names (an empty entry is an absent input);
 * `attrs` is "key=value;..." where a value is "s:text", a float "1.5f" (ends in f), a float
 * list "f:1,2", or integers "3" / "1,2,3". */
static void node(model_t *m, const char *op, const char *name, const char *ins, const char *outs,
                 const char *attrs)
{
    hqi_buf_t n = {0};
    char buf[512];
    for (int list = 0; list < 2; list++) {
        const char *src = list ? outs : ins;
        if (!src)
            continue;
        snprintf(buf, sizeof buf, "%s", src);
        char *save = NULL;
        char *p = buf;
        for (;;) {
            char *comma = strchr(p, ',');
            if (comma)
                *comma = '\0';
            pb_str(&n, list ? 2 : 1, p);
            if (!comma)
                break;
            p = comma + 1;
        }
        (void)save;
    }
    pb_str(&n, 3, name);
    pb_str(&n, 4, op);
    if (attrs) {
        snprintf(buf, sizeof buf, "%s", attrs);
        for (char *item = strtok(buf, ";"); item; item = strtok(NULL, ";")) {
            char *eq = strchr(item, '=');
            *eq = '\0';
            const char *key = item, *val = eq + 1;
            hqi_buf_t a = {0};
            pb_str(&a, 1, key);
            size_t len = strlen(val);
            if (!strncmp(val, "s:", 2)) {
                pb_str(&a, 4, val + 2);
                pb_varint(&a, 20, 3);
            } else if (!strncmp(val, "f:", 2)) {
                for (const char *q = val + 2; *q;) {
                    char *end;
                    pb_float(&a, 7, strtof(q, &end));
                    q = *end == ',' ? end + 1 : end;
                }
                pb_varint(&a, 20, 6);
            } else if (len && val[len - 1] == 'f') {
                pb_float(&a, 2, strtof(val, NULL));
                pb_varint(&a, 20, 1);
            } else if (strchr(val, ',')) {
                for (const char *q = val; *q;) {
                    char *end;
                    pb_varint(&a, 8, strtoll(q, &end, 10));
                    q = *end == ',' ? end + 1 : end;
                }
                pb_varint(&a, 20, 7);
            } else {
                pb_varint(&a, 3, strtoll(val, NULL, 10));
                pb_varint(&a, 20, 2);
            }
            pb_msg(&n, 5, &a);
        }
    }
    pb_msg(&m->graph, 1, &n);
}

/* Finishes the model: the caller frees *bytes. */
static void model_bytes(model_t *m, int opset, void **bytes, size_t *len)
{
    hqi_buf_t model = {0}, op = {0};
    pb_varint(&model, 1, 8);
    pb_str(&m->graph, 2, "test");
    pb_msg(&model, 7, &m->graph);
    pb_varint(&op, 2, opset);
    pb_msg(&model, 8, &op);
    assert_false(model.failed);
    *bytes = model.data;
    *len = model.len;
}

static hq_status_t parse_model(model_t *m, const hq_parse_options_t *opts, hq_archive_t **out,
                               hq_error_t *err)
{
    void *bytes;
    size_t len;
    model_bytes(m, 13, &bytes, &len);
    hq_status_t st = hq_parse_onnx_memory(bytes, len, "m.onnx", opts, out, err);
    free(bytes);
    return st;
}

static hq_archive_t *parse_ok(model_t *m)
{
    hq_archive_t *archive = NULL;
    hq_error_t err = {0};
    hq_status_t st = parse_model(m, NULL, &archive, &err);
    if (st != HQ_OK)
        fail_msg("parse failed: %s", err.message);
    return archive;
}

static hq_graph_t *graph_of(hq_archive_t *a)
{
    hq_graph_t *g = NULL;
    assert_int_equal(hq_archive_graph(a, &g, NULL), HQ_OK);
    return g;
}

static const hq_layer_t *layer_named(hq_archive_t *a, const char *name)
{
    hq_graph_t *g = graph_of(a);
    int i = hq_graph_find(g, name);
    if (i < 0)
        fail_msg("no layer '%s'", name);
    return hq_graph_layer(g, i);
}

static const hq_tensor_t *param(hq_archive_t *a, const char *key)
{
    hq_npz_t *p = NULL;
    assert_int_equal(hq_archive_params(a, HQ_PARAMS_NATIVE, &p, NULL), HQ_OK);
    const hq_tensor_t *t = hq_npz_get(p, key);
    if (!t)
        fail_msg("no params key '%s'", key);
    return t;
}

static bool has_param(hq_archive_t *a, const char *key)
{
    hq_npz_t *p = NULL;
    assert_int_equal(hq_archive_params(a, HQ_PARAMS_NATIVE, &p, NULL), HQ_OK);
    return hq_npz_get(p, key) != NULL;
}

static void expect_error(model_t *m, const hq_parse_options_t *opts, hq_status_t want,
                         const char *message)
{
    hq_archive_t *archive = NULL;
    hq_error_t err = {0};
    assert_int_equal(parse_model(m, opts, &archive, &err), want);
    assert_null(archive);
    if (!strstr(err.message, message))
        fail_msg("error '%s' lacks '%s'", err.message, message);
    assert_null(strchr(err.message, '\n'));
}

static int count_type(hq_archive_t *a, hq_layer_type_t type)
{
    hq_graph_t *g = graph_of(a);
    int k = 0;
    for (int i = 0; i < hq_graph_layer_count(g); i++)
        k += hq_graph_layer(g, i)->type == type;
    return k;
}

static const int64_t IMG[4] = {1, 2, 4, 4};

/* A conv with 2 -> 3 channels, 3x3, weights w[o][i][y][x] = o*100 + i*10 + y*3 + x. */
static void add_conv(model_t *m, const char *name, const char *in, const char *out,
                     const char *attrs)
{
    float w[3 * 2 * 3 * 3], b[3] = {0.5f, -1.0f, 2.0f};
    for (int o = 0; o < 3; o++)
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 9; k++)
                w[(o * 2 + i) * 9 + k] = (float)(o * 100 + i * 10 + k);
    char wn[64], bn[64], ins[200];
    snprintf(wn, sizeof wn, "%s_w", name);
    snprintf(bn, sizeof bn, "%s_b", name);
    init_f(m, wn, 4, (int64_t[]){3, 2, 3, 3}, w);
    init_f(m, bn, 1, (int64_t[]){3}, b);
    snprintf(ins, sizeof ins, "%s,%s,%s", in, wn, bn);
    node(m, "Conv", name, ins, out, attrs);
}

/* ---- op mappings ------------------------------------------------------------------------ */

static void conv_weights_are_transposed_to_hwio_with_pads_and_names(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "image", 4, (int64_t[]){-1, 2, 4, 4});
    add_conv(&m, "/conv/Conv", "image", "y", "pads=1,0,1,2;strides=1,2");
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    assert_string_equal(hq_archive_net_name(a), "m");
    assert_int_equal(hq_archive_state(a), HQ_STATE_PARSED);
    const hq_layer_t *in = layer_named(a, "m/input_layer1");
    assert_string_equal(in->original_names[0], "image");
    assert_int_equal(in->output_shape.dims[0], -1);
    const hq_layer_t *conv = layer_named(a, "/conv/Conv");
    assert_string_equal(conv->name, "m/conv1");
    assert_int_equal(conv->type, HQ_LAYER_CONV);
    assert_int_equal(conv->params.padding, HQ_PADDING_EXPLICIT);
    assert_int_equal(conv->params.pads[0], 1); /* top */
    assert_int_equal(conv->params.pads[1], 0); /* left */
    assert_int_equal(conv->params.pads[2], 1); /* bottom */
    assert_int_equal(conv->params.pads[3], 2); /* right */
    assert_int_equal(conv->params.stride_w, 2);
    /* H: (4 + 2 - 3) / 1 + 1 = 4; W: (4 + 2 - 3) / 2 + 1 = 2 */
    assert_int_equal(conv->output_shape.dims[1], 4);
    assert_int_equal(conv->output_shape.dims[2], 2);
    assert_int_equal(conv->output_shape.dims[3], 3);
    const hq_tensor_t *k = param(a, "m/conv1/kernel:0");
    assert_int_equal(k->ndim, 4);
    assert_int_equal(k->shape[0], 3);
    assert_int_equal(k->shape[2], 2);
    assert_int_equal(k->shape[3], 3);
    const float *kd = k->data;
    /* kernel[y][x][i][o] = w[o][i][y][x] = o*100 + i*10 + y*3 + x */
    assert_float_equal(kd[((2 * 3 + 1) * 2 + 1) * 3 + 2], 200 + 10 + 7, 0);
    assert_float_equal(kd[((0 * 3 + 2) * 2 + 0) * 3 + 1], 100 + 0 + 2, 0);
    const hq_tensor_t *b = param(a, "m/conv1/bias:0");
    assert_float_equal(((float *)b->data)[2], 2.0f, 0);
    const hq_layer_t *out = layer_named(a, "m/output_layer1");
    assert_string_equal(out->original_names[0], "y");
    hq_archive_destroy(a);
}

static void conv_with_one_group_per_channel_becomes_dw(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, IMG);
    float w[4 * 1 * 3 * 3];
    for (int i = 0; i < 36; i++)
        w[i] = (float)i;
    init_f(&m, "w", 4, (int64_t[]){4, 1, 3, 3}, w);
    node(&m, "Conv", "dw", "x,w", "y", "group=2;auto_pad=s:SAME_UPPER");
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    const hq_layer_t *l = layer_named(a, "dw");
    assert_int_equal(l->type, HQ_LAYER_DW);
    assert_int_equal(l->params.padding, HQ_PADDING_SAME_TENSORFLOW);
    assert_int_equal(l->output_shape.dims[3], 4);
    const hq_tensor_t *k = param(a, "m/dw1/kernel:0");
    assert_int_equal(k->shape[2], 1);
    assert_int_equal(k->shape[3], 4);
    /* kernel[y][x][0][o] = w[o][0][y][x] */
    assert_float_equal(((float *)k->data)[(1 * 3 + 2) * 4 + 3], 3 * 9 + 5, 0);
    /* zero bias written when the node has none */
    assert_float_equal(((float *)param(a, "m/dw1/bias:0")->data)[0], 0, 0);
    hq_archive_destroy(a);
}

static void grouped_conv_keeps_groups_and_same_lower_padding(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, (int64_t[]){1, 4, 5, 5});
    float w[6 * 2 * 1 * 1] = {0};
    init_f(&m, "w", 4, (int64_t[]){6, 2, 1, 1}, w);
    node(&m, "Conv", "g", "x,w", "y", "group=2;auto_pad=s:SAME_LOWER;dilations=2,2");
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    const hq_layer_t *l = layer_named(a, "g");
    assert_int_equal(l->type, HQ_LAYER_CONV);
    assert_int_equal(l->params.groups, 2);
    assert_int_equal(l->params.kernel_in, 2);
    assert_int_equal(l->params.padding, HQ_PADDING_SAME);
    assert_int_equal(l->params.dilation_h, 2);
    hq_archive_destroy(a);
}

static void conv_transpose_becomes_deconv_with_ci_o_weights(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, (int64_t[]){1, 2, 3, 3});
    float w[2 * 3 * 2 * 2];
    for (int i = 0; i < 24; i++)
        w[i] = (float)i;
    init_f(&m, "w", 4, (int64_t[]){2, 3, 2, 2}, w);
    node(&m, "ConvTranspose", "up", "x,w", "y", "strides=2,2;output_padding=1,1");
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    const hq_layer_t *l = layer_named(a, "up");
    assert_int_equal(l->type, HQ_LAYER_DECONV);
    assert_int_equal(l->params.output_pads[0], 1);
    assert_int_equal(l->output_shape.dims[1], (3 - 1) * 2 + 2 + 1);
    assert_int_equal(l->output_shape.dims[3], 3);
    const hq_tensor_t *k = param(a, "m/deconv1/kernel:0");
    /* kernel[y][x][ci][o] = W[ci][o][y][x] */
    assert_float_equal(((float *)k->data)[((1 * 2 + 0) * 2 + 1) * 3 + 2], (1 * 3 + 2) * 4 + 2, 0);
    hq_archive_destroy(a);
}

static void batch_norm_after_conv_is_folded_into_kernel_and_bias(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, IMG);
    add_conv(&m, "c", "x", "t", NULL);
    float s[3] = {2, 1, 1}, bb[3] = {1, 0, 0}, mean[3] = {0.5f, 0, 0}, var[3] = {3, 1, 1};
    init_f(&m, "s", 1, (int64_t[]){3}, s);
    init_f(&m, "bb", 1, (int64_t[]){3}, bb);
    init_f(&m, "mean", 1, (int64_t[]){3}, mean);
    init_f(&m, "var", 1, (int64_t[]){3}, var);
    node(&m, "BatchNormalization", "bn", "t,s,bb,mean,var", "y", "epsilon=1.0f");
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    assert_int_equal(count_type(a, HQ_LAYER_BATCH_NORM), 0);
    const hq_layer_t *l = layer_named(a, "bn");
    assert_int_equal(l->type, HQ_LAYER_CONV);
    assert_true(l->params.batch_norm);
    assert_int_equal(l->original_name_count, 2);
    /* channel 0: scale 2/sqrt(3+1) = 1; bias (0.5 - 0.5)*1 + 1 = 1 */
    const float *k = param(a, "m/conv1/kernel:0")->data;
    assert_float_equal(k[0], 0.0f, 1e-6);
    assert_float_equal(k[1], 100.0f / sqrtf(2.0f), 1e-4);
    assert_float_equal(((float *)param(a, "m/conv1/bias:0")->data)[0], 1.0f, 1e-6);
    hq_archive_destroy(a);
}

static void batch_norm_with_a_shared_input_stays_a_layer_with_four_params(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, IMG);
    add_conv(&m, "c", "x", "t", NULL);
    float one[3] = {1, 1, 1};
    init_f(&m, "s", 1, (int64_t[]){3}, one);
    node(&m, "BatchNormalization", "bn", "t,s,s,s,s", "y", NULL);
    output(&m, "y");
    output(&m, "t");
    hq_archive_t *a = parse_ok(&m);
    const hq_layer_t *l = layer_named(a, "bn");
    assert_int_equal(l->type, HQ_LAYER_BATCH_NORM);
    assert_false(layer_named(a, "c")->params.batch_norm);
    assert_true(has_param(a, "m/batch_norm1/gamma:0"));
    assert_true(has_param(a, "m/batch_norm1/beta:0"));
    assert_true(has_param(a, "m/batch_norm1/moving_mean:0"));
    assert_true(has_param(a, "m/batch_norm1/moving_variance:0"));
    /* outputs in graph output order */
    int count;
    hq_graph_t *g = graph_of(a);
    const int *outs = hq_graph_outputs(g, &count);
    assert_int_equal(count, 2);
    assert_string_equal(hq_graph_layer(g, outs[0])->original_names[0], "y");
    assert_string_equal(hq_graph_layer(g, outs[1])->original_names[0], "t");
    hq_archive_destroy(a);
}

static void relu_fuses_into_its_only_producer_and_not_into_a_shared_one(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, IMG);
    add_conv(&m, "c1", "x", "t1", NULL);
    node(&m, "Relu", "r1", "t1", "y1", NULL);
    add_conv(&m, "c2", "x", "t2", NULL);
    node(&m, "Relu", "r2", "t2", "y2", NULL);
    output(&m, "y1");
    output(&m, "y2");
    output(&m, "t2");
    hq_archive_t *a = parse_ok(&m);
    assert_int_equal(layer_named(a, "c1")->params.activation, HQ_ACT_RELU);
    assert_int_equal(layer_named(a, "r1")->type, HQ_LAYER_CONV);
    assert_int_equal(layer_named(a, "c2")->params.activation, HQ_ACT_LINEAR);
    assert_int_equal(layer_named(a, "r2")->type, HQ_LAYER_ACTIVATION);
    assert_int_equal(layer_named(a, "r2")->params.activation, HQ_ACT_RELU);
    hq_archive_destroy(a);
}

static void no_fusion_when_an_alias_of_the_producer_is_read_elsewhere(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, IMG);
    add_conv(&m, "c", "x", "t", NULL);
    node(&m, "Identity", "id1", "t", "u", NULL);
    node(&m, "Identity", "id2", "t", "v", NULL);
    node(&m, "Relu", "r", "u", "y", NULL);
    node(&m, "Sigmoid", "s", "v", "z", NULL);
    output(&m, "y");
    output(&m, "z");
    hq_archive_t *a = parse_ok(&m);
    assert_int_equal(layer_named(a, "c")->params.activation, HQ_ACT_LINEAR);
    assert_int_equal(count_type(a, HQ_LAYER_ACTIVATION), 2);
    hq_archive_destroy(a);
    /* and a chain conv -> BN -> Relu still fuses completely */
    model_t m2 = {0};
    input(&m2, "x", 4, IMG);
    add_conv(&m2, "c", "x", "t", NULL);
    float one[3] = {1, 1, 1};
    init_f(&m2, "s", 1, (int64_t[]){3}, one);
    node(&m2, "BatchNormalization", "bn", "t,s,s,s,s", "b", NULL);
    node(&m2, "Identity", "id", "b", "u", NULL);
    node(&m2, "Relu", "r", "u", "y", NULL);
    output(&m2, "y");
    a = parse_ok(&m2);
    assert_int_equal(hq_graph_layer_count(graph_of(a)), 3);
    assert_int_equal(layer_named(a, "c")->params.activation, HQ_ACT_RELU);
    assert_true(layer_named(a, "c")->params.batch_norm);
    hq_archive_destroy(a);
}

static void clip_activations_map_to_relu6_leaky_hardsigmoid_and_clip(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, IMG);
    float zero = 0, six = 6, lo = -1;
    init_f(&m, "zero", 0, NULL, &zero);
    init_f(&m, "six", 0, NULL, &six);
    init_f(&m, "lo", 0, NULL, &lo);
    add_conv(&m, "c1", "x", "t1", NULL);
    node(&m, "Clip", "clip6", "t1,zero,six", "y1", NULL);
    add_conv(&m, "c2", "x", "t2", NULL);
    node(&m, "LeakyRelu", "leaky", "t2", "y2", "alpha=0.25f");
    add_conv(&m, "c3", "x", "t3", NULL);
    node(&m, "HardSigmoid", "hs", "t3", "y3", "alpha=0.3f;beta=0.4f");
    add_conv(&m, "c4", "x", "t4", NULL);
    node(&m, "Clip", "clip", "t4,lo,six", "y4", NULL);
    node(&m, "Sigmoid", "sig", "x", "y5", NULL);
    for (int i = 1; i <= 5; i++) {
        char name[8];
        snprintf(name, sizeof name, "y%d", i);
        output(&m, name);
    }
    hq_archive_t *a = parse_ok(&m);
    assert_int_equal(layer_named(a, "c1")->params.activation, HQ_ACT_RELU6);
    assert_int_equal(layer_named(a, "c2")->params.activation, HQ_ACT_LEAKY);
    assert_float_equal(layer_named(a, "c2")->params.activation_alpha, 0.25f, 1e-7);
    assert_int_equal(layer_named(a, "c3")->params.activation, HQ_ACT_HARDSIGMOID);
    assert_float_equal(layer_named(a, "c3")->params.activation_beta, 0.4f, 1e-7);
    assert_int_equal(layer_named(a, "c4")->params.activation, HQ_ACT_CLIP);
    assert_float_equal(layer_named(a, "c4")->params.activation_alpha, -1.0f, 0);
    assert_float_equal(layer_named(a, "c4")->params.activation_beta, 6.0f, 0);
    /* the input layer has no activation field: a standalone activation layer */
    assert_int_equal(layer_named(a, "sig")->type, HQ_LAYER_ACTIVATION);
    hq_archive_destroy(a);
}

static void max_and_min_with_constants_become_clips_that_survive_a_save(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, IMG);
    float zero = 0, six = 6, lo = -2;
    init_f(&m, "zero", 0, NULL, &zero);
    init_f(&m, "six", 0, NULL, &six);
    init_f(&m, "lo", 0, NULL, &lo);
    add_conv(&m, "c1", "x", "t1", NULL);
    node(&m, "Max", "max", "t1,zero", "a1", NULL);
    node(&m, "Min", "min", "a1,six", "y1", NULL);
    add_conv(&m, "c2", "x", "t2", NULL);
    node(&m, "Max", "max2", "lo,t2", "y2", NULL);
    output(&m, "y1");
    output(&m, "y2");
    hq_archive_t *a = parse_ok(&m);
    assert_int_equal(layer_named(a, "c1")->params.activation, HQ_ACT_RELU6);
    const hq_layer_t *c2 = layer_named(a, "c2");
    assert_int_equal(c2->params.activation, HQ_ACT_CLIP);
    assert_float_equal(c2->params.activation_alpha, -2, 0);
    assert_true(c2->params.activation_beta >= 1e37f);
    /* an open bound must still be a valid .hn number */
    void *bytes;
    size_t len;
    hq_archive_t *again = NULL;
    hq_graph_t *g = NULL;
    assert_int_equal(hq_archive_save_memory(a, &bytes, &len, NULL), HQ_OK);
    assert_int_equal(hq_archive_open_memory(bytes, len, "m.har", &again, NULL), HQ_OK);
    assert_int_equal(hq_archive_graph(again, &g, NULL), HQ_OK);
    hq_archive_destroy(again);
    free(bytes);
    hq_archive_destroy(a);
}

static void non_finite_activation_parameters_are_refused(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, IMG);
    node(&m, "LeakyRelu", "leaky", "x", "y", "alpha=inff");
    output(&m, "y");
    expect_error(
        &m, NULL, HQ_ERR_INVALID,
        "m.onnx: node 'leaky' (LeakyRelu): activation parameter inf is not a finite number");
}

static void prelu_slope_per_element_becomes_relu_plus_slope_times_min(void **state)
{
    (void)state;
    model_t m = {0};
    float slope[32];
    for (int i = 0; i < 32; i++)
        slope[i] = 0.01f * (float)i;
    input(&m, "x", 4, IMG);
    init_f(&m, "s", 3, (int64_t[]){2, 4, 4}, slope);
    node(&m, "PRelu", "pr", "x,s", "y", NULL);
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    assert_int_equal(count_type(a, HQ_LAYER_ACTIVATION), 2);
    assert_int_equal(count_type(a, HQ_LAYER_CONST_INPUT), 1);
    assert_int_equal(count_type(a, HQ_LAYER_EW_MULT), 1);
    assert_int_equal(count_type(a, HQ_LAYER_EW_ADD), 1);
    const hq_layer_t *pr = layer_named(a, "pr"); /* the node's name finds its output */
    assert_int_equal(pr->type, HQ_LAYER_EW_ADD);
    hq_archive_destroy(a);

    const struct {
        int ndim;
        int64_t dims[4];
        const char *message;
    } bad[2] = {{3,
                 {2, 4, 3},
                 "m.onnx: node 'pr' (PRelu): slope [2, 4, 3] does not broadcast to the input "
                 "[N, 2, 4, 4]"},
                {4,
                 {3, 2, 4, 4},
                 "m.onnx: node 'pr' (PRelu): slope [3, 2, 4, 4] varies along the batch axis of "
                 "the input [N, 2, 4, 4] (hq runs every sample on its own)"}};
    static const float zeros[96] = {0};
    for (int i = 0; i < 2; i++) {
        model_t b = {0};
        input(&b, "x", 4, IMG);
        init_f(&b, "s", bad[i].ndim, bad[i].dims, zeros);
        node(&b, "PRelu", "pr", "x,s", "y", NULL);
        output(&b, "y");
        expect_error(&b, NULL, i ? HQ_ERR_UNSUPPORTED : HQ_ERR_INVALID, bad[i].message);
    }
}

static void silu_and_hardswish_patterns_fuse_into_the_conv(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, IMG);
    float three = 3, zero = 0, six = 6;
    init_f(&m, "three", 0, NULL, &three);
    init_f(&m, "zero", 0, NULL, &zero);
    init_f(&m, "six", 0, NULL, &six);
    add_conv(&m, "c1", "x", "t1", NULL);
    node(&m, "Sigmoid", "s1", "t1", "g1", NULL);
    node(&m, "Mul", "silu", "t1,g1", "y1", NULL);
    /* x * relu6(x + 3) / 6 */
    add_conv(&m, "c2", "x", "t2", NULL);
    node(&m, "Add", "a2", "t2,three", "p2", NULL);
    node(&m, "Clip", "r2", "p2,zero,six", "q2", NULL);
    node(&m, "Mul", "m2", "t2,q2", "u2", NULL);
    node(&m, "Div", "hswish", "u2,six", "y2", NULL);
    /* x * HardSigmoid(x, 1/6, 0.5) */
    add_conv(&m, "c3", "x", "t3", NULL);
    node(&m, "HardSigmoid", "h3", "t3", "g3", "alpha=0.16666667f;beta=0.5f");
    node(&m, "Mul", "hswish2", "g3,t3", "y3", NULL);
    output(&m, "y1");
    output(&m, "y2");
    output(&m, "y3");
    hq_archive_t *a = parse_ok(&m);
    assert_int_equal(layer_named(a, "c1")->params.activation, HQ_ACT_SILU);
    assert_int_equal(layer_named(a, "c2")->params.activation, HQ_ACT_HARDSWISH);
    assert_int_equal(layer_named(a, "c3")->params.activation, HQ_ACT_HARDSWISH);
    assert_int_equal(count_type(a, HQ_LAYER_ACTIVATION), 0);
    assert_int_equal(count_type(a, HQ_LAYER_EW_MULT), 0);
    assert_int_equal(count_type(a, HQ_LAYER_CONST_INPUT), 0);
    /* every pattern node is remembered */
    assert_int_equal(hq_graph_find(graph_of(a), "a2"), hq_graph_find(graph_of(a), "c2"));
    hq_archive_destroy(a);
}

static void gelu_erf_forms_and_the_gelu_op_become_gelu(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, IMG);
    float one = 1, half = 0.5f, two = 2, sqrt2 = 1.41421f, rsqrt2 = 0.70710677f;
    init_f(&m, "one", 0, NULL, &one);
    init_f(&m, "half", 0, NULL, &half);
    init_f(&m, "two", 0, NULL, &two);
    init_f(&m, "sqrt2", 0, NULL, &sqrt2);
    init_f(&m, "rsqrt2", 0, NULL, &rsqrt2);
    /* torch's nn.GELU: ((x * (1 + Erf(x / sqrt2))) * 0.5 */
    add_conv(&m, "c1", "x", "t1", NULL);
    node(&m, "Div", "d1", "t1,sqrt2", "s1", NULL);
    node(&m, "Erf", "e1", "s1", "f1", NULL);
    node(&m, "Add", "a1", "f1,one", "g1", NULL);
    node(&m, "Mul", "m1", "t1,g1", "h1", NULL);
    node(&m, "Mul", "gelu1", "h1,half", "y1", NULL);
    /* (x * 0.5) * (1 + Erf(x * 0.7071)), the erf output first */
    add_conv(&m, "c2", "x", "t2", NULL);
    node(&m, "Mul", "h2", "half,t2", "u2", NULL);
    node(&m, "Mul", "d2", "rsqrt2,t2", "s2", NULL);
    node(&m, "Erf", "e2", "s2", "f2", NULL);
    node(&m, "Add", "a2", "one,f2", "g2", NULL);
    node(&m, "Mul", "gelu2", "g2,u2", "y2", NULL);
    /* x * ((1 + Erf(x / sqrt2)) / 2), standalone: c3's output has another reader */
    add_conv(&m, "c3", "x", "t3", NULL);
    node(&m, "Div", "d3", "t3,sqrt2", "s3", NULL);
    node(&m, "Erf", "e3", "s3", "f3", NULL);
    node(&m, "Add", "a3", "f3,one", "g3", NULL);
    node(&m, "Div", "h3", "g3,two", "u3", NULL);
    node(&m, "Mul", "gelu3", "t3,u3", "y3", NULL);
    node(&m, "Relu", "r3", "t3", "z3", NULL);
    /* the Gelu op (opset 20) */
    add_conv(&m, "c4", "x", "t4", NULL);
    node(&m, "Gelu", "gelu4", "t4", "y4", "approximate=s:none");
    output(&m, "y1");
    output(&m, "y2");
    output(&m, "y3");
    output(&m, "z3");
    output(&m, "y4");
    hq_archive_t *a = parse_ok(&m);
    assert_int_equal(layer_named(a, "c1")->params.activation, HQ_ACT_GELU);
    assert_int_equal(layer_named(a, "c2")->params.activation, HQ_ACT_GELU);
    assert_int_equal(layer_named(a, "c3")->params.activation, HQ_ACT_LINEAR);
    assert_int_equal(layer_named(a, "gelu3")->params.activation, HQ_ACT_GELU);
    assert_int_equal(layer_named(a, "c4")->params.activation, HQ_ACT_GELU);
    assert_int_equal(count_type(a, HQ_LAYER_ACTIVATION), 2); /* gelu3, r3 */
    assert_int_equal(count_type(a, HQ_LAYER_EW_MULT), 0);
    assert_int_equal(count_type(a, HQ_LAYER_EW_DIV), 0);
    assert_int_equal(count_type(a, HQ_LAYER_CONST_INPUT), 0);
    /* every pattern node is remembered */
    assert_int_equal(hq_graph_find(graph_of(a), "e1"), hq_graph_find(graph_of(a), "c1"));
    assert_int_equal(hq_graph_find(graph_of(a), "h2"), hq_graph_find(graph_of(a), "c2"));
    hq_archive_destroy(a);
}

static void gelu_tanh_approximation_is_refused(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, IMG);
    add_conv(&m, "c1", "x", "t1", NULL);
    node(&m, "Gelu", "gelu", "t1", "y", "approximate=s:tanh");
    output(&m, "y");
    expect_error(&m, NULL, HQ_ERR_UNSUPPORTED,
                 "m.onnx: node 'gelu' (Gelu): approximate 'tanh' is not supported (only 'none')");
}

static void flatten_before_gemm_permutes_dense_rows_to_nhwc_order(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, (int64_t[]){1, 2, 1, 3}); /* C=2, H=1, W=3 */
    /* Gemm B (transB): [cout=2, cin=6]; row r of A^T is c*3 + w */
    float b[12];
    for (int i = 0; i < 12; i++)
        b[i] = (float)i;
    float bias[2] = {7, 8};
    init_f(&m, "B", 2, (int64_t[]){2, 6}, b);
    init_f(&m, "C", 1, (int64_t[]){2}, bias);
    node(&m, "Flatten", "flat", "x", "f", NULL);
    node(&m, "Gemm", "fc", "f,B,C", "y", "transB=1;alpha=2.0f");
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    assert_int_equal(count_type(a, HQ_LAYER_RESHAPE) + count_type(a, HQ_LAYER_TRANSPOSE), 0);
    const hq_layer_t *l = layer_named(a, "fc");
    assert_int_equal(l->type, HQ_LAYER_DENSE);
    const hq_tensor_t *k = param(a, "m/dense1/kernel:0");
    assert_int_equal(k->shape[0], 6);
    assert_int_equal(k->shape[1], 2);
    /* NHWC row (w*2 + c) holds ONNX row (c*3 + w), times alpha */
    const float *kd = k->data;
    for (int c = 0; c < 2; c++)
        for (int w = 0; w < 3; w++)
            for (int o = 0; o < 2; o++)
                assert_float_equal(kd[(w * 2 + c) * 2 + o], 2.0f * b[o * 6 + c * 3 + w], 0);
    assert_float_equal(((float *)param(a, "m/dense1/bias:0")->data)[1], 8, 0);
    hq_archive_destroy(a);
}

/* Runs a single-input, single-output archive on `in` (NHWC) with the emulator. */
static void emulate(hq_archive_t *a, const float *in, float *out, int64_t out_count)
{
    hq_emulator_t *emu = NULL;
    hq_error_t err = {0};
    if (hq_emulator_create_from_archive(a, HQ_TARGET_NATIVE, &emu, &err) != HQ_OK)
        fail_msg("%s", err.message);
    assert_int_equal(hq_emulator_output_size(emu, 0), out_count);
    const float *ins[1] = {in};
    float *outs[1] = {out};
    if (hq_emulator_run(emu, 1, ins, outs, NULL, NULL, &err) != HQ_OK)
        fail_msg("%s", err.message);
    hq_emulator_destroy(emu);
}

static void flatten_gemm_and_flatten_reshape_compute_what_onnx_computes(void **state)
{
    (void)state;
    /* x: NCHW [1, 2, 2, 3] = 0..11; y = Gemm(Flatten(x), B) with B[k][o] = k*(o+1) */
    float b[12 * 2];
    for (int k = 0; k < 12; k++)
        for (int o = 0; o < 2; o++)
            b[k * 2 + o] = (float)(k * (o + 1)) * 0.01f;
    float nchw[12], nhwc[12];
    for (int i = 0; i < 12; i++)
        nchw[i] = (float)i - 3.5f;
    for (int ch = 0; ch < 2; ch++)
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 3; x++)
                nhwc[(y * 3 + x) * 2 + ch] = nchw[(ch * 2 + y) * 3 + x];
    model_t m = {0};
    input(&m, "x", 4, (int64_t[]){1, 2, 2, 3});
    init_f(&m, "B", 2, (int64_t[]){12, 2}, b);
    node(&m, "Flatten", "flat", "x", "f", NULL);
    node(&m, "Gemm", "fc", "f,B", "y", NULL);
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    float out[2];
    emulate(a, nhwc, out, 2);
    for (int o = 0; o < 2; o++) {
        float want = 0;
        for (int k = 0; k < 12; k++)
            want += nchw[k] * b[k * 2 + o];
        assert_float_equal(out[o], want, 1e-4);
    }
    hq_archive_destroy(a);
    /* Flatten as an output: the NCHW order, through transpose + reshape */
    model_t m2 = {0};
    input(&m2, "x", 4, (int64_t[]){1, 2, 2, 3});
    node(&m2, "Flatten", "flat", "x", "y", NULL);
    output(&m2, "y");
    a = parse_ok(&m2);
    float flat[12];
    emulate(a, nhwc, flat, 12);
    for (int i = 0; i < 12; i++)
        assert_float_equal(flat[i], nchw[i], 0);
    hq_archive_destroy(a);
    /* Reshape [1,2,2,3] -> [1,3,2,2]: transpose, reshape, transpose */
    model_t m3 = {0};
    input(&m3, "x", 4, (int64_t[]){1, 2, 2, 3});
    int64_t shape[4] = {1, 3, 2, 2};
    init_i(&m3, "shape", 1, (int64_t[]){4}, shape);
    node(&m3, "Reshape", "rs", "x,shape", "y", NULL);
    output(&m3, "y");
    a = parse_ok(&m3);
    float re[12];
    emulate(a, nhwc, re, 12);
    /* ONNX y[c][h][w] = nchw[(c*2 + h)*2 + w]; hq gives NHWC */
    for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 2; x++)
                assert_float_equal(re[(y * 2 + x) * 3 + ch], nchw[(ch * 2 + y) * 2 + x], 0);
    hq_archive_destroy(a);
}

static void flatten_feeding_a_non_dense_is_materialized_in_nchw_order(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, (int64_t[]){1, 2, 2, 2});
    node(&m, "Flatten", "flat", "x", "y", NULL);
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    assert_int_equal(count_type(a, HQ_LAYER_TRANSPOSE), 1);
    const hq_layer_t *r = layer_named(a, "m/reshape1");
    assert_int_equal(r->output_shape.ndim, 2);
    assert_int_equal(r->output_shape.dims[1], 8);
    hq_archive_destroy(a);
}

static void matmul_with_constant_becomes_dense_and_add_folds_into_bias(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 2, (int64_t[]){-1, 3});
    float w[6] = {1, 2, 3, 4, 5, 6}, bias[2] = {10, 20};
    init_f(&m, "W", 2, (int64_t[]){3, 2}, w);
    init_f(&m, "bias", 1, (int64_t[]){2}, bias);
    node(&m, "MatMul", "mm", "x,W", "t", NULL);
    node(&m, "Add", "add", "t,bias", "y", NULL);
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    assert_int_equal(count_type(a, HQ_LAYER_EW_ADD), 0);
    assert_float_equal(((float *)param(a, "m/dense1/kernel:0")->data)[3], 4, 0);
    assert_float_equal(((float *)param(a, "m/dense1/bias:0")->data)[1], 20, 0);
    assert_int_equal(hq_graph_find(graph_of(a), "add"), hq_graph_find(graph_of(a), "mm"));
    hq_archive_destroy(a);
}

static void add_of_two_tensors_becomes_conv_elementwise_add_then_relu(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, (int64_t[]){1, 3, 4, 4});
    float w[3 * 3] = {0};
    init_f(&m, "w", 4, (int64_t[]){3, 3, 1, 1}, w);
    node(&m, "Conv", "c", "x,w", "t", NULL);
    node(&m, "Add", "res", "x,t", "s", NULL);
    node(&m, "Relu", "r", "s", "y", NULL);
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    const hq_layer_t *l = layer_named(a, "c");
    assert_true(l->params.elementwise_add);
    assert_int_equal(l->input_count, 2);
    assert_int_equal(l->params.activation, HQ_ACT_RELU);
    assert_int_equal(count_type(a, HQ_LAYER_EW_ADD), 0);
    hq_archive_destroy(a);
}

static void elementwise_ops_between_tensors_and_with_constants(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, IMG);
    input(&m, "z", 4, IMG);
    float k[2] = {2, 3}, full[2 * 4 * 4];
    for (int i = 0; i < 32; i++)
        full[i] = (float)i;
    init_f(&m, "k", 3, (int64_t[]){2, 1, 1}, k);
    init_f(&m, "full", 4, (int64_t[]){1, 2, 4, 4}, full);
    node(&m, "Sub", "sub", "x,z", "a", NULL);
    node(&m, "Mul", "mul", "a,k", "b", NULL);    /* not foldable: ew_sub producer */
    node(&m, "Div", "div", "full,b", "c", NULL); /* constant first operand */
    node(&m, "Max", "max", "c,z", "y", NULL);
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    assert_int_equal(layer_named(a, "sub")->type, HQ_LAYER_EW_SUB);
    assert_int_equal(layer_named(a, "m/ew_mult1")->type, HQ_LAYER_EW_MULT);
    assert_int_equal(layer_named(a, "m/ew_max1")->type, HQ_LAYER_EW_MAX);
    const hq_layer_t *div = layer_named(a, "m/ew_div1");
    hq_graph_t *g = graph_of(a);
    assert_int_equal(hq_graph_layer(g, div->inputs[0])->type, HQ_LAYER_CONST_INPUT);
    const hq_tensor_t *kc = param(a, "m/const_input1/const:0");
    assert_int_equal(kc->shape[3], 2);
    assert_float_equal(((float *)kc->data)[1], 3, 0);
    const hq_tensor_t *fc = param(a, "m/const_input2/const:0");
    /* NHWC [1, 4, 4, 2]: (h=1, w=2, c=1) = full[1][1][2] = 16 + 4 + 2 */
    assert_float_equal(((float *)fc->data)[((1 * 4 + 2) * 2) + 1], 22, 0);
    hq_archive_destroy(a);
}

/* (x * (1/255) - mean) / std on the input, as exporters write the preprocessing: one
 * normalization layer with the composed mean and std (it quantizes as an affine layer, where ew_*
 * layers with constants would not), computing what the ONNX graph computes; a constant first
 * operand of Sub keeps its ew_sub and const_input, and so does a Mul on a computed tensor whose
 * producer cannot take it (an ew_add). */
static void input_preprocessing_by_constants_becomes_one_normalization(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, IMG);
    input(&m, "z", 4, IMG);
    float scale = 1.0f / 255, mean[2] = {0.485f, 0.406f}, std[2] = {0.229f, 0.225f}, k[2] = {3, 5};
    init_f(&m, "scale", 1, (int64_t[]){1}, &scale);
    init_f(&m, "mean", 3, (int64_t[]){2, 1, 1}, mean);
    init_f(&m, "std", 3, (int64_t[]){2, 1, 1}, std);
    init_f(&m, "k", 3, (int64_t[]){2, 1, 1}, k);
    node(&m, "Mul", "mul", "x,scale", "a", NULL);
    node(&m, "Sub", "sub", "a,mean", "b", NULL);
    node(&m, "Div", "div", "b,std", "c", NULL);
    node(&m, "Sub", "ksub", "k,z", "d", NULL); /* k - z: not (z - mean) / std */
    node(&m, "Add", "add", "c,d", "e", NULL);
    node(&m, "Mul", "kmul", "e,k", "y", NULL); /* on an ew_add: a const_input */
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    assert_int_equal(count_type(a, HQ_LAYER_NORMALIZATION), 1);
    const hq_layer_t *norm = layer_named(a, "mul");
    assert_int_equal(norm->type, HQ_LAYER_NORMALIZATION);
    assert_int_equal(norm->params.channels, 2);
    assert_int_equal(norm->original_name_count, 3); /* mul, sub, div */
    for (int ch = 0; ch < 2; ch++) {
        assert_float_equal(norm->params.mean[ch], mean[ch] * 255, 1e-3);
        assert_float_equal(norm->params.std[ch], std[ch] * 255, 1e-4);
    }
    assert_int_equal(layer_named(a, "m/ew_sub1")->type, HQ_LAYER_EW_SUB);
    assert_int_equal(layer_named(a, "m/ew_mult1")->type, HQ_LAYER_EW_MULT);
    assert_int_equal(count_type(a, HQ_LAYER_CONST_INPUT), 2);
    /* x = z = 0..31 (NHWC [1, 4, 4, 2]); y = ((x / 255 - mean) / std + k - z) * k */
    hq_emulator_t *emu = NULL;
    hq_error_t err = {0};
    if (hq_emulator_create_from_archive(a, HQ_TARGET_NATIVE, &emu, &err) != HQ_OK)
        fail_msg("%s", err.message);
    float in[32], out[32];
    for (int i = 0; i < 32; i++)
        in[i] = (float)i * 7;
    const float *ins[2] = {in, in};
    float *outs[1] = {out};
    if (hq_emulator_run(emu, 1, ins, outs, NULL, NULL, &err) != HQ_OK)
        fail_msg("%s", err.message);
    for (int i = 0; i < 32; i++) {
        int ch = i % 2;
        float want = ((in[i] * scale - mean[ch]) / std[ch] + k[ch] - in[i]) * k[ch];
        assert_float_equal(out[i], want, 1e-4 * fabsf(want) + 1e-5);
    }
    hq_emulator_destroy(emu);
    hq_archive_destroy(a);
}

static void pools_map_with_count_include_pad_and_ceil_mode(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, (int64_t[]){1, 2, 5, 5});
    node(&m, "MaxPool", "mp", "x", "a", "kernel_shape=2,2;strides=2,2;ceil_mode=1");
    node(&m, "AveragePool", "ap", "a", "b", "kernel_shape=3,3;pads=1,1,1,1;count_include_pad=1");
    node(&m, "GlobalAveragePool", "gap", "b", "y", NULL);
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    const hq_layer_t *mp = layer_named(a, "mp");
    assert_int_equal(mp->type, HQ_LAYER_MAXPOOL);
    assert_int_equal(mp->output_shape.dims[1], 3); /* ceil((5 - 2) / 2) + 1 */
    const hq_layer_t *ap = layer_named(a, "ap");
    assert_true(ap->params.count_include_pad);
    assert_int_equal(ap->output_shape.dims[1], 3);
    assert_int_equal(layer_named(a, "gap")->type, HQ_LAYER_GLOBAL_AVG_POOL);
    hq_archive_destroy(a);
}

static void maxpool_dilations_are_kept_and_dilated_average_pools_refused(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, (int64_t[]){1, 2, 9, 8});
    node(&m, "MaxPool", "mp", "x", "y",
         "kernel_shape=3,2;dilations=2,3;strides=2,1;pads=1,1,0,0;ceil_mode=1");
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    const hq_layer_t *mp = layer_named(a, "mp");
    assert_int_equal(mp->type, HQ_LAYER_MAXPOOL);
    assert_int_equal(mp->params.dilation_h, 2);
    assert_int_equal(mp->params.dilation_w, 3);
    /* H: ceil((9 + 1 - 5) / 2) + 1 = 4 (the last window starts at row 5, inside); W: 8 + 1 - 4
     * = 5 + 1 = 6 */
    assert_int_equal(mp->output_shape.dims[1], 4);
    assert_int_equal(mp->output_shape.dims[2], 6);
    hq_archive_destroy(a);

    const char *bad[2][3] = {
        {"AveragePool", "kernel_shape=2,2;dilations=2,2",
         "m.onnx: node 'p' (AveragePool): dilations [2, 2]: hq's average pool has no dilation "
         "(maxpool has)"},
        {"MaxPool", "kernel_shape=2,2;dilations=2,2;auto_pad=s:SAME_UPPER",
         "m.onnx: node 'p' (MaxPool): auto_pad 'SAME_UPPER' with dilations: the ONNX spec pads for "
         "the dilated window, onnxruntime for the undilated one; export with explicit pads"}};
    for (int i = 0; i < 2; i++) {
        model_t b = {0};
        input(&b, "x", 4, IMG);
        node(&b, bad[i][0], "p", "x", "y", bad[i][1]);
        output(&b, "y");
        expect_error(&b, NULL, HQ_ERR_UNSUPPORTED, bad[i][2]);
    }
}

static void ceil_mode_average_with_pads_counted_is_a_pad_then_an_uncounted_pool(void **state)
{
    (void)state;
    /* ONNX's divisor stops at the declared pads: the ceil-mode cells beyond are not counted.
     * x = 1..9 on 3x3, kernel 2, stride 2, pads 1 at the top only, ceil: output 2x2; the
     * bottom-right window covers rows 1..2 (row 3 is a ceil cell) and columns 1..2 (column 3
     * likewise), divisor 4, not 4 with 2 cells of ceil padding counted as zeros. */
    model_t m = {0};
    input(&m, "x", 4, (int64_t[]){1, 1, 3, 3});
    node(&m, "AveragePool", "ap", "x", "y",
         "kernel_shape=2,2;strides=2,2;pads=1,0,0,0;count_include_pad=1;ceil_mode=1");
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    assert_int_equal(count_type(a, HQ_LAYER_PAD), 1);
    const hq_layer_t *ap = layer_named(a, "ap");
    assert_int_equal(ap->type, HQ_LAYER_AVGPOOL);
    assert_false(ap->params.count_include_pad);
    assert_int_equal(ap->output_shape.dims[1], 2);
    assert_int_equal(ap->output_shape.dims[2], 2);
    const float in[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    float out[4];
    emulate(a, in, out, 4);
    /* windows: rows {-1 (pad), 0} x cols {0, 1}: (0 + 0 + 1 + 2) / 4; cols {2, 3}: (0 + 3) / 2
     * (column 3 is a ceil cell, uncounted; the pad row is counted); rows {1, 2} x cols {0, 1}:
     * (4 + 5 + 7 + 8) / 4; x cols {2, 3}: (6 + 9) / 2 */
    assert_float_equal(out[0], 0.75f, 1e-6);
    assert_float_equal(out[1], 1.5f, 1e-6);
    assert_float_equal(out[2], 6.0f, 1e-6);
    assert_float_equal(out[3], 7.5f, 1e-6);
    hq_archive_destroy(a);

    /* without declared pads the average counts only the image */
    model_t m2 = {0};
    input(&m2, "x", 4, (int64_t[]){1, 1, 3, 3});
    node(&m2, "AveragePool", "ap", "x", "y",
         "kernel_shape=2,2;strides=2,2;count_include_pad=1;ceil_mode=1");
    output(&m2, "y");
    a = parse_ok(&m2);
    assert_int_equal(count_type(a, HQ_LAYER_PAD), 0);
    emulate(a, in, out, 4);
    assert_float_equal(out[0], 3.0f, 1e-6);  /* (1 + 2 + 4 + 5) / 4 */
    assert_float_equal(out[1], 4.5f, 1e-6);  /* (3 + 6) / 2 */
    assert_float_equal(out[2], 7.5f, 1e-6);  /* (7 + 8) / 2 */
    assert_float_equal(out[3], 9.0f, 1e-6);
    hq_archive_destroy(a);
}

static void concat_split_slice_and_pad_remap_axes_to_nhwc(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, (int64_t[]){1, 4, 6, 6});
    int64_t split[2] = {1, 3}, starts[2] = {1, 2}, ends[2] = {5, 100}, axes[2] = {2, 1};
    int64_t pads[8] = {0, 1, 2, 0, 0, 0, 1, 3};
    init_i(&m, "split", 1, (int64_t[]){2}, split);
    init_i(&m, "starts", 1, (int64_t[]){2}, starts);
    init_i(&m, "ends", 1, (int64_t[]){2}, ends);
    init_i(&m, "axes", 1, (int64_t[]){2}, axes);
    init_i(&m, "pads", 1, (int64_t[]){8}, pads);
    node(&m, "Split", "split", "x,split", "s0,s1", "axis=1");
    node(&m, "Concat", "cat", "s1,s0", "c", "axis=1");
    node(&m, "Slice", "slice", "c,starts,ends,axes", "d", NULL);
    node(&m, "Pad", "pad", "d,pads", "y", "mode=s:reflect");
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    const hq_layer_t *sp = layer_named(a, "split");
    assert_int_equal(sp->type, HQ_LAYER_FEATURE_SPLITTER);
    assert_int_equal(sp->params.axis, 3);
    assert_int_equal(sp->params.split_sizes[1], 3);
    const hq_layer_t *cat = layer_named(a, "cat");
    assert_int_equal(cat->params.axis, 3);
    assert_int_equal(cat->input_ports[0], 1);
    const hq_layer_t *sl = layer_named(a, "slice");
    assert_int_equal(sl->params.slice_begin[0], 1); /* H */
    assert_int_equal(sl->params.slice_end[0], 5);
    assert_int_equal(sl->params.slice_begin[2], 2); /* C */
    assert_int_equal(sl->params.slice_end[2], 4);
    const hq_layer_t *pad = layer_named(a, "pad");
    assert_int_equal(pad->params.pad_mode, HQ_PAD_REFLECT);
    assert_int_equal(pad->params.pads[0], 2);
    assert_int_equal(pad->params.pads[3], 3);
    assert_int_equal(pad->params.pad_channels[0], 1);
    /* [1, 4-2+1, 6] ... H = 4 + 2 + 1, W = 6 + 3, C = 2 + 1 */
    assert_int_equal(pad->output_shape.dims[1], 7);
    assert_int_equal(pad->output_shape.dims[2], 9);
    assert_int_equal(pad->output_shape.dims[3], 3);
    hq_archive_destroy(a);
}

static void constant_of_shape_channel_padding_becomes_a_pad_layer(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, (int64_t[]){1, 2, 3, 3});
    int64_t shape[4] = {1, 5, 3, 3};
    init_i(&m, "shape", 1, (int64_t[]){4}, shape);
    node(&m, "ConstantOfShape", "zeros", "shape", "z", NULL);
    node(&m, "Concat", "cat", "x,z", "y", "axis=1");
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    const hq_layer_t *p = layer_named(a, "cat");
    assert_int_equal(p->type, HQ_LAYER_PAD);
    assert_int_equal(p->params.pad_channels[1], 5);
    assert_int_equal(p->output_shape.dims[3], 7);
    hq_archive_destroy(a);
}

static void resize_by_scales_and_sizes_sets_method_and_coordinates(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, (int64_t[]){1, 2, 3, 4});
    float scales[4] = {1, 1, 2, 2};
    int64_t sizes[4] = {1, 2, 5, 7};
    init_f(&m, "scales", 1, (int64_t[]){4}, scales);
    init_i(&m, "sizes", 1, (int64_t[]){4}, sizes);
    node(&m, "Resize", "up", "x,,scales", "a",
         "mode=s:nearest;coordinate_transformation_mode=s:asymmetric;nearest_mode=s:floor");
    node(&m, "Resize", "lin", "a,,,sizes", "y",
         "mode=s:linear;coordinate_transformation_mode=s:align_corners");
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    const hq_layer_t *up = layer_named(a, "up");
    assert_int_equal(up->params.resize_method, HQ_RESIZE_NEAREST);
    assert_int_equal(up->params.resize_coords, HQ_RESIZE_ASYMMETRIC);
    assert_false(up->params.nearest_round);
    assert_int_equal(up->output_shape.dims[1], 6);
    assert_int_equal(up->output_shape.dims[2], 8);
    const hq_layer_t *lin = layer_named(a, "lin");
    assert_int_equal(lin->params.resize_method, HQ_RESIZE_BILINEAR);
    assert_int_equal(lin->params.resize_coords, HQ_RESIZE_ALIGN_CORNERS);
    assert_int_equal(lin->output_shape.dims[2], 7);
    hq_archive_destroy(a);
}

static void resize_nearest_modes_fractional_scales_and_axes_are_kept_through_the_hn(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, (int64_t[]){1, 2, 3, 4});
    float frac[4] = {1, 1, 1.5f, 1.3f}, hw[2] = {2, 2};
    int64_t sizes[4] = {1, 2, 5, 7};
    init_f(&m, "frac", 1, (int64_t[]){4}, frac);
    init_f(&m, "hw", 1, (int64_t[]){2}, hw);
    init_i(&m, "sizes", 1, (int64_t[]){4}, sizes);
    node(&m, "Resize", "ceil", "x,,frac", "a",
         "mode=s:nearest;coordinate_transformation_mode=s:half_pixel;nearest_mode=s:ceil");
    node(&m, "Resize", "prefer_ceil", "a,,,sizes", "b",
         "mode=s:nearest;coordinate_transformation_mode=s:tf_half_pixel_for_nn;"
         "nearest_mode=s:round_prefer_ceil");
    node(&m, "Resize", "by_axes", "b,,hw", "y", "mode=s:linear;axes=2,3");
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    hq_graph_t *g = graph_of(a);
    char *json = NULL;
    size_t len = 0;
    hq_graph_t *back = NULL;
    assert_int_equal(hq_graph_to_json(g, &json, &len, NULL), HQ_OK);
    assert_int_equal(hq_graph_from_json(json, len, "m.hn", &back, NULL), HQ_OK);
    for (int pass = 0; pass < 2; pass++) {
        const hq_graph_t *gr = pass ? back : g;
        /* 3 x 1.5 = 4.5 -> 4 rows, mapped with 1.5; 4 x 1.3 = 5.2 -> 5 columns, with 1.3 */
        const hq_layer_t *ceil_layer = hq_graph_layer(gr, hq_graph_find(gr, "ceil"));
        assert_int_equal(ceil_layer->output_shape.dims[1], 4);
        assert_int_equal(ceil_layer->output_shape.dims[2], 5);
        assert_float_equal(ceil_layer->params.resize_scales[0], 1.5f, 0);
        assert_float_equal(ceil_layer->params.resize_scales[1], 1.3f, 0);
        assert_true(ceil_layer->params.nearest_ceil);
        assert_false(ceil_layer->params.nearest_round);
        const hq_layer_t *pc = hq_graph_layer(gr, hq_graph_find(gr, "prefer_ceil"));
        assert_int_equal(pc->params.resize_coords, HQ_RESIZE_TF_HALF_PIXEL_FOR_NN);
        assert_true(pc->params.nearest_ceil && pc->params.nearest_round);
        assert_float_equal(pc->params.resize_scales[0], 0, 0); /* sizes: out / in */
        const hq_layer_t *ax = hq_graph_layer(gr, hq_graph_find(gr, "by_axes"));
        assert_int_equal(ax->output_shape.dims[1], 10);
        assert_int_equal(ax->output_shape.dims[2], 14);
        assert_float_equal(ax->params.resize_scales[1], 0, 0); /* whole: out / in */
    }
    free(json);
    hq_graph_destroy(back);
    hq_archive_destroy(a);
}

static void resize_forms_hq_cannot_compute_are_refused_with_the_reason(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"mode=s:cubic", "mode 'cubic' is not supported (hq resizes nearest or linear)"},
        {"mode=s:linear;coordinate_transformation_mode=s:tf_crop_and_resize",
         "'tf_crop_and_resize' (a crop box from the roi input, then a resize) is not supported"},
        {"mode=s:linear;antialias=1", "antialias 1"},
        {"mode=s:linear;coordinate_transformation_mode=s:align_corners",
         "align_corners with scale 1.3 on an extent of 4 (a fractional output size): the ONNX "
         "reference maps with 5.2 - 1, onnxruntime with 5 - 1; export with sizes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        model_t m = {0};
        input(&m, "x", 4, (int64_t[]){1, 2, 3, 4});
        float frac[4] = {1, 1, 2, 1.3f};
        init_f(&m, "frac", 1, (int64_t[]){4}, frac);
        node(&m, "Resize", "r", "x,,frac", "y", cases[i][0]);
        output(&m, "y");
        expect_error(&m, NULL, HQ_ERR_UNSUPPORTED, cases[i][1]);
    }
}

static void shape_driven_reshape_is_folded_with_constant_nodes(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, (int64_t[]){-1, 3, 1, 1});
    /* Paddle-style: weights as Constant nodes; reshape target from Shape -> Gather -> Concat */
    hqi_buf_t t = {0}, attr = {0}, n = {0};
    int64_t zero = 0, minus1[1] = {-1};
    tensor_proto(&t, NULL, 0, NULL, NULL, &zero);
    pb_str(&attr, 1, "value");
    pb_msg(&attr, 5, &t);
    pb_varint(&attr, 20, 4);
    pb_str(&n, 2, "idx");
    pb_str(&n, 3, "const_idx");
    pb_str(&n, 4, "Constant");
    pb_msg(&n, 5, &attr);
    pb_msg(&m.graph, 1, &n);
    init_i(&m, "minus1", 1, (int64_t[]){1}, minus1);
    node(&m, "Shape", "shape", "x", "s", NULL);
    node(&m, "Gather", "gather", "s,idx", "n", "axis=0");
    node(&m, "Unsqueeze", "unsq", "n", "n1", "axes=0,");
    node(&m, "Concat", "cat", "n1,minus1", "target", "axis=0");
    node(&m, "Reshape", "reshape", "x,target", "y", NULL);
    output(&m, "y");
    void *bytes;
    size_t len;
    model_bytes(&m, 11, &bytes, &len);
    hq_archive_t *a = NULL;
    hq_error_t err = {0};
    hq_status_t st = hq_parse_onnx_memory(bytes, len, "m.onnx", NULL, &a, &err);
    free(bytes);
    if (st != HQ_OK)
        fail_msg("%s", err.message);
    /* [N,3,1,1] -> [N,3]: one reshape, no transpose */
    hq_graph_t *g = graph_of(a);
    assert_int_equal(hq_graph_layer_count(g), 3);
    assert_int_equal(count_type(a, HQ_LAYER_RESHAPE), 1);
    int count;
    const int *outs = hq_graph_outputs(g, &count);
    assert_int_equal(hq_graph_layer(g, outs[0])->output_shape.ndim, 2);
    assert_int_equal(hq_graph_layer(g, outs[0])->output_shape.dims[1], 3);
    hq_archive_destroy(a);
}

static void transpose_and_depth_to_space_and_softmax_remap(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, (int64_t[]){1, 8, 2, 3});
    node(&m, "DepthToSpace", "d2s", "x", "a", "blocksize=2;mode=s:CRD");
    node(&m, "Transpose", "tr", "a", "b", "perm=0,1,3,2");
    node(&m, "Softmax", "sm", "b", "y", "axis=1");
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    const hq_layer_t *d = layer_named(a, "d2s");
    assert_int_equal(d->type, HQ_LAYER_DEPTH_TO_SPACE);
    assert_true(d->params.depth_to_space_crd);
    const hq_layer_t *t = layer_named(a, "tr");
    /* ONNX swaps H and W: NHWC perm [0, 2, 1, 3] */
    assert_int_equal(t->params.perm[1], 2);
    assert_int_equal(t->params.perm[2], 1);
    assert_int_equal(t->params.perm[3], 3);
    assert_int_equal(t->output_shape.dims[1], 6);
    assert_int_equal(layer_named(a, "sm")->params.axis, 3);
    hq_archive_destroy(a);
}

static void identity_and_dropout_disappear(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, IMG);
    node(&m, "Identity", "id", "x", "a", NULL);
    node(&m, "Dropout", "drop", "a", "b", NULL);
    node(&m, "Relu", "r", "b", "y", NULL);
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    assert_int_equal(hq_graph_layer_count(graph_of(a)), 3);
    hq_archive_destroy(a);
}

/* ---- cuts ------------------------------------------------------------------------------- */

static void build_chain(model_t *m)
{
    input(m, "x", 4, IMG);
    add_conv(m, "c1", "x", "t1", NULL);
    node(m, "Relu", "r1", "t1", "a", NULL);
    node(m, "MaxPool", "mp", "a", "b", "kernel_shape=2,2;strides=2,2");
    node(m, "NonMaxSuppression", "/head/NonMaxSuppression", "b", "y", NULL);
    output(m, "y");
}

static void unsupported_op_names_node_type_and_the_way_out(void **state)
{
    (void)state;
    model_t m = {0};
    build_chain(&m);
    expect_error(&m, NULL, HQ_ERR_UNSUPPORTED,
                 "m.onnx: node '/head/NonMaxSuppression' (NonMaxSuppression) is post-processing "
                 "hq cannot convert; cut before it with --end-node-names mp");
}

static void the_way_out_names_a_computed_input_not_a_constant_node(void **state)
{
    (void)state;
    /* Paddle keeps weights in Constant nodes: cutting at one would not get past the op */
    model_t m = {0};
    input(&m, "x", 4, IMG);
    add_conv(&m, "c1", "x", "t", NULL);
    node(&m, "Constant", "kc", NULL, "k", "value_float=2.0f");
    node(&m, "Mod", "mod", "k,t", "y", NULL);
    output(&m, "y");
    expect_error(&m, NULL, HQ_ERR_UNSUPPORTED,
                 "node 'mod' (Mod) is post-processing hq cannot convert; cut before it with "
                 "--end-node-names c1");
}

static void end_node_names_make_their_outputs_the_outputs(void **state)
{
    (void)state;
    model_t m = {0};
    build_chain(&m);
    const char *end[] = {"mp"};
    hq_parse_options_t opts = {
        .end_nodes = end, .end_count = 1, .net_name = "cut", .hw_arch = "hailo8l"};
    hq_archive_t *a = NULL;
    hq_error_t err = {0};
    assert_int_equal(parse_model(&m, &opts, &a, &err), HQ_OK);
    assert_string_equal(hq_archive_hw_arch(a), "hailo8l");
    hq_graph_t *g = graph_of(a);
    int count;
    const int *outs = hq_graph_outputs(g, &count);
    assert_int_equal(count, 1);
    assert_string_equal(hq_graph_layer(g, outs[0])->original_names[0], "b");
    assert_int_equal(hq_graph_find(g, "cut/maxpool1"), hq_graph_layer(g, outs[0])->inputs[0]);
    hq_archive_destroy(a);
}

static void start_node_names_make_their_inputs_inputs_with_inferred_shapes(void **state)
{
    (void)state;
    model_t m = {0};
    build_chain(&m);
    const char *start[] = {"mp"}, *end[] = {"mp"};
    hq_parse_options_t opts = {
        .start_nodes = start, .start_count = 1, .end_nodes = end, .end_count = 1};
    hq_archive_t *a = NULL;
    hq_error_t err = {0};
    if (parse_model(&m, &opts, &a, &err) != HQ_OK)
        fail_msg("%s", err.message);
    hq_graph_t *g = graph_of(a);
    assert_int_equal(hq_graph_layer_count(g), 3);
    const hq_layer_t *in = layer_named(a, "m/input_layer1");
    assert_string_equal(in->original_names[0], "a");
    assert_int_equal(in->output_shape.dims[1], 2);
    assert_int_equal(in->output_shape.dims[3], 3);
    hq_archive_destroy(a);
}

static void graph_inputs_read_after_a_start_cut_stay_inputs(void **state)
{
    (void)state;
    /* a skip connection from the image: cutting at c2 keeps x, which the Concat still reads;
     * x has a dynamic size that --tensor-shapes gives (both passes must see it) */
    model_t m = {0};
    input(&m, "x", 4, (int64_t[]){-1, 2, 0, 0});
    node(&m, "Sigmoid", "s", "x", "a", NULL);
    add_conv(&m, "c2", "a", "t2", "pads=1,1,1,1");
    node(&m, "Concat", "cat", "t2,x", "y", "axis=1");
    output(&m, "y");
    const char *start[] = {"c2"};
    hq_shape_t shapes[1] = {{4, {1, 2, 4, 4}}};
    hq_parse_options_t opts = {.start_nodes = start, .start_count = 1, .input_shapes = shapes,
                               .input_shape_count = 1};
    hq_archive_t *a = NULL;
    hq_error_t err = {0};
    if (parse_model(&m, &opts, &a, &err) != HQ_OK)
        fail_msg("%s", err.message);
    hq_graph_t *g = graph_of(a);
    int count;
    const int *ins = hq_graph_inputs(g, &count);
    assert_int_equal(count, 2);
    assert_string_equal(hq_graph_layer(g, ins[0])->original_names[0], "a");
    assert_string_equal(hq_graph_layer(g, ins[1])->original_names[0], "x");
    assert_int_equal(count_type(a, HQ_LAYER_ACTIVATION), 0); /* the sigmoid is cut off */
    assert_int_equal(count_type(a, HQ_LAYER_CONCAT), 1);
    assert_int_equal(layer_named(a, "cat")->output_shape.dims[3], 5);
    hq_archive_destroy(a);
}

static void a_start_cut_whose_prefix_fails_reports_it_once(void **state)
{
    (void)state;
    /* the shapes of the cut tensors come from converting the part before the cut: when that
     * fails the error is reported (this path once freed the cut list twice) */
    model_t m = {0};
    input(&m, "x", 4, IMG);
    node(&m, "Hardmax", "hm", "x", "e", NULL);
    add_conv(&m, "c2", "e", "y", NULL);
    output(&m, "y");
    const char *start[] = {"c2"};
    hq_parse_options_t opts = {.start_nodes = start, .start_count = 1};
    expect_error(&m, &opts, HQ_ERR_UNSUPPORTED,
                 "m.onnx: node 'hm' (Hardmax) is not supported; it reads the network input "
                 "directly and feeds the output, so there is no node to cut the graph at");
}

static void build_rounded_input(model_t *m)
{
    input(m, "x", 4, IMG);
    node(m, "Round", "round", "x", "e", NULL);
    add_conv(m, "c2", "e", "y", NULL);
    output(m, "y");
}

static void unconvertible_preprocessing_names_the_start_cut_that_then_parses(void **state)
{
    (void)state;
    /* an elementwise op hq cannot convert on the image: the network starts after it, and the
     * cut tensor has the image's shape */
    model_t m = {0};
    build_rounded_input(&m);
    expect_error(&m, NULL, HQ_ERR_UNSUPPORTED,
                 "m.onnx: node 'round' (Round) is preprocessing hq cannot convert; start after it "
                 "with --start-node-names c2");
    m = (model_t){0};
    build_rounded_input(&m);
    const char *start[] = {"c2"};
    hq_parse_options_t opts = {.start_nodes = start, .start_count = 1};
    hq_archive_t *a = NULL;
    hq_error_t err = {0};
    if (parse_model(&m, &opts, &a, &err) != HQ_OK)
        fail_msg("%s", err.message);
    const hq_layer_t *in = layer_named(a, "m/input_layer1");
    assert_string_equal(in->original_names[0], "e");
    assert_int_equal(in->output_shape.dims[3], IMG[1]);
    assert_int_equal(count_type(a, HQ_LAYER_CONV), 1);
    hq_archive_destroy(a);
}

static void build_two_decoded_heads(model_t *m)
{
    input(m, "x", 4, IMG);
    add_conv(m, "body", "x", "f", NULL);
    node(m, "Relu", "box", "f", "b", NULL);
    node(m, "Sigmoid", "score", "f", "s", NULL);
    node(m, "NonZero", "nz", "s", "i", NULL);
    node(m, "Gather", "pick", "b,i", "y", NULL);
    node(m, "Tanh", "aux", "f", "z", NULL);
    output(m, "y");
    output(m, "z");
}

/* The model `build` makes, parsed with the cut --end-node-names end[0 .. count). */
static hq_archive_t *parse_with_end_cut(void (*build)(model_t *), const char *const *end, int count)
{
    model_t m = {0};
    build(&m);
    hq_parse_options_t opts = {.end_nodes = end, .end_count = count};
    hq_archive_t *a = NULL;
    hq_error_t err = {0};
    if (parse_model(&m, &opts, &a, &err) != HQ_OK)
        fail_msg("%s", err.message);
    return a;
}

static void the_end_cut_covers_every_path_to_the_outputs(void **state)
{
    (void)state;
    /* two heads, each decoded by an op hq cannot convert, and a third output that needs none:
     * the cut names the last layer of both heads and the producer of the third output */
    model_t m = {0};
    build_two_decoded_heads(&m);
    expect_error(&m, NULL, HQ_ERR_UNSUPPORTED,
                 "m.onnx: node 'nz' (NonZero) is post-processing hq cannot convert; cut before "
                 "it with --end-node-names score box aux");
    const char *end[] = {"score", "box", "aux"};
    hq_archive_t *a = parse_with_end_cut(build_two_decoded_heads, end, 3);
    int count;
    hq_graph_outputs(graph_of(a), &count);
    assert_int_equal(count, 3);
    hq_archive_destroy(a);
}

/* Two heads decoded as YOLOv5 does, through a rank-5 view hq refuses, concatenated into one
 * output, and a third output read straight from the first head. */
static void build_rank5_decoded_heads(model_t *m)
{
    input(m, "x", 4, IMG);
    init_i(m, "five", 1, (int64_t[]){5}, (int64_t[]){1, 3, 1, 2, 2});
    init_i(m, "three", 1, (int64_t[]){3}, (int64_t[]){1, 3, 4});
    const char *head[2] = {"1", "2"};
    for (int h = 0; h < 2; h++) {
        char name[16], ins[64], outs[16], out[16];
        snprintf(name, sizeof name, "c%s", head[h]);
        snprintf(out, sizeof out, "a%s", head[h]);
        add_conv(m, name, "x", out, NULL); /* [1, 3, 2, 2] */
        snprintf(name, sizeof name, "view%s", head[h]);
        snprintf(ins, sizeof ins, "a%s,five", head[h]);
        snprintf(outs, sizeof outs, "v%s", head[h]);
        node(m, "Reshape", name, ins, outs, NULL);
        snprintf(name, sizeof name, "sig%s", head[h]);
        snprintf(ins, sizeof ins, "v%s", head[h]);
        snprintf(outs, sizeof outs, "s%s", head[h]);
        node(m, "Sigmoid", name, ins, outs, NULL);
        snprintf(name, sizeof name, "flat%s", head[h]);
        snprintf(ins, sizeof ins, "s%s,three", head[h]);
        snprintf(outs, sizeof outs, "f%s", head[h]);
        node(m, "Reshape", name, ins, outs, NULL);
    }
    node(m, "Concat", "boxes", "f1,f2", "y", "axis=2");
    node(m, "Relu", "aux", "a1", "z", NULL);
    output(m, "y");
    output(m, "z");
}

static void a_refused_decode_names_the_end_cut_on_every_head(void **state)
{
    (void)state;
    /* the converter refuses the first head's rank-5 view; the second head's decode would fail
     * the same way, so the cut ends both heads where the network ends, and keeps the output
     * read straight from a head */
    model_t m = {0};
    build_rank5_decoded_heads(&m);
    expect_error(&m, NULL, HQ_ERR_UNSUPPORTED,
                 "m.onnx: node 'view1' (Reshape): reshape to rank 5 with batch 1; hq keeps [N, C], "
                 "[N, C, L] and [N, C, H, W] tensors; it is post-processing: cut before it with "
                 "--end-node-names c1 c2 aux");
    const char *end[] = {"c1", "c2", "aux"};
    hq_archive_t *a = parse_with_end_cut(build_rank5_decoded_heads, end, 3);
    int count;
    const int *outs = hq_graph_outputs(graph_of(a), &count);
    assert_int_equal(count, 3);
    assert_string_equal(hq_graph_layer(graph_of(a), outs[1])->original_names[0], "a2");
    assert_int_equal(count_type(a, HQ_LAYER_CONV), 2);
    hq_archive_destroy(a);
}

static void a_refusal_inside_the_network_keeps_its_reason_alone(void **state)
{
    (void)state;
    /* a conv after the refused view: cutting there would drop part of the network */
    model_t m = {0};
    input(&m, "x", 4, IMG);
    init_i(&m, "five", 1, (int64_t[]){5}, (int64_t[]){1, 3, 1, 2, 2});
    init_i(&m, "four", 1, (int64_t[]){4}, (int64_t[]){1, 2, 3, 2});
    add_conv(&m, "c1", "x", "a", NULL);
    node(&m, "Reshape", "view", "a,five", "v", NULL);
    node(&m, "Reshape", "back", "v,four", "b", NULL);
    add_conv(&m, "c2", "b", "y", "pads=1,1,1,1");
    output(&m, "y");
    hq_archive_t *archive = NULL;
    hq_error_t err = {0};
    assert_int_equal(parse_model(&m, NULL, &archive, &err), HQ_ERR_UNSUPPORTED);
    assert_string_equal(err.message, "m.onnx: node 'view' (Reshape): reshape to rank 5 with batch "
                                     "1; hq keeps [N, C], [N, C, L] and [N, C, H, W] tensors");
}

/* The image resized by a cubic Resize before the network; `recorded` adds the shape of the
 * resized tensor to the model's value_info. */
static void build_cubic_preprocessing(model_t *m, bool recorded)
{
    input(m, "x", 4, IMG);
    init_f(m, "scales", 1, (int64_t[]){4}, (float[]){1, 1, 2, 2});
    node(m, "Resize", "resize", "x,,scales", "e", "mode=s:cubic");
    add_conv(m, "c2", "e", "y", NULL);
    output(m, "y");
    if (recorded)
        value_info(m, 13, "e", 4, (int64_t[]){-1, 2, 8, 8});
}

static void a_refused_preprocessing_names_the_start_cut_when_its_shape_is_known(void **state)
{
    (void)state;
    model_t m = {0};
    build_cubic_preprocessing(&m, true);
    expect_error(&m, NULL, HQ_ERR_UNSUPPORTED,
                 "m.onnx: node 'resize' (Resize): mode 'cubic' is not supported (hq resizes "
                 "nearest or linear); it is preprocessing: start after it with "
                 "--start-node-names c2");
    m = (model_t){0};
    build_cubic_preprocessing(&m, true);
    const char *start[] = {"c2"};
    hq_parse_options_t opts = {.start_nodes = start, .start_count = 1};
    hq_archive_t *a = NULL;
    hq_error_t err = {0};
    if (parse_model(&m, &opts, &a, &err) != HQ_OK)
        fail_msg("%s", err.message);
    const hq_layer_t *in = layer_named(a, "m/input_layer1");
    assert_string_equal(in->original_names[0], "e");
    assert_int_equal(in->output_shape.dims[1], 8);
    hq_archive_destroy(a);
    /* without the recorded shape that cut could not learn it: the reason stands alone */
    m = (model_t){0};
    build_cubic_preprocessing(&m, false);
    hq_archive_t *archive = NULL;
    assert_int_equal(parse_model(&m, NULL, &archive, &err), HQ_ERR_UNSUPPORTED);
    assert_string_equal(err.message, "m.onnx: node 'resize' (Resize): mode 'cubic' is not "
                                     "supported (hq resizes nearest or linear)");
}

static void an_unknown_hw_arch_is_refused_naming_the_known_ones(void **state)
{
    (void)state;
    model_t m = {0};
    build_chain(&m);
    const char *end[] = {"mp"};
    hq_parse_options_t opts = {.end_nodes = end, .end_count = 1, .hw_arch = "hailo9"};
    expect_error(&m, &opts, HQ_ERR_ARGUMENT,
                 "m.onnx: --hw-arch: unknown hw_arch 'hailo9' (known: hailo8, ");
}

static void unknown_cut_node_is_reported(void **state)
{
    (void)state;
    model_t m = {0};
    build_chain(&m);
    const char *end[] = {"nope"};
    hq_parse_options_t opts = {.end_nodes = end, .end_count = 1};
    expect_error(&m, &opts, HQ_ERR_NOT_FOUND, "--end-node-names: no node named 'nope'");
}

/* ---- errors ----------------------------------------------------------------------------- */

static void truncated_protobuf_is_one_clear_line(void **state)
{
    (void)state;
    model_t m = {0};
    build_chain(&m);
    void *bytes;
    size_t len;
    model_bytes(&m, 13, &bytes, &len);
    hq_archive_t *a = NULL;
    hq_error_t err = {0};
    assert_int_equal(hq_parse_onnx_memory(bytes, len / 2, "m.onnx", NULL, &a, &err), HQ_ERR_FORMAT);
    assert_null(a);
    assert_non_null(strstr(err.message, "m.onnx: not a valid ONNX model"));
    free(bytes);
}

static void missing_initializer_is_named(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, IMG);
    node(&m, "Conv", "c", "x,weights", "y", NULL);
    output(&m, "y");
    expect_error(&m, NULL, HQ_ERR_INVALID,
                 "m.onnx: node 'c' (Conv): input 'weights' is not an initializer, a graph input "
                 "or the output of an earlier node");
}

static void dynamic_spatial_dimension_asks_for_a_static_shape(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, (int64_t[]){-1, 3, 0, 8});
    node(&m, "Relu", "r", "x", "y", NULL);
    output(&m, "y");
    expect_error(&m, NULL, HQ_ERR_UNSUPPORTED,
                 "m.onnx: input 'x': dimension 2 ('height') is dynamic; export the model with a "
                 "static input shape");
}

static void wrong_rank_weights_and_inputs_are_refused(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, IMG);
    float w[6] = {0};
    init_f(&m, "w", 2, (int64_t[]){3, 2}, w);
    node(&m, "Conv", "c", "x,w", "y", NULL);
    output(&m, "y");
    expect_error(&m, NULL, HQ_ERR_UNSUPPORTED,
                 "m.onnx: node 'c' (Conv): weights 'w' must be a 4-D float tensor (rank 2)");
    model_t m2 = {0};
    input(&m2, "x", 5, (int64_t[]){1, 2, 3, 4, 5});
    node(&m2, "Relu", "r", "x", "y", NULL);
    output(&m2, "y");
    expect_error(&m2, NULL, HQ_ERR_UNSUPPORTED, "m.onnx: input 'x' has rank 5");
    model_t m3 = {0};
    input(&m3, "x", 4, IMG);
    float w3[3 * 5 * 3 * 3] = {0};
    init_f(&m3, "w", 4, (int64_t[]){3, 5, 3, 3}, w3);
    node(&m3, "Conv", "c", "x,w", "y", NULL);
    output(&m3, "y");
    expect_error(&m3, NULL, HQ_ERR_INVALID, "do not fit 2 input channels");
}

/* ---- input shapes, rank-3 tensors, refusals found by the conformance sweep --------------- */

static void tensor_shapes_fill_dynamic_dimensions_and_must_agree_with_static_ones(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, (int64_t[]){-1, 3, 0, 0});
    node(&m, "Relu", "r", "x", "y", NULL);
    output(&m, "y");
    hq_shape_t shapes[1] = {{4, {1, 3, 32, 64}}};
    hq_parse_options_t opts = {.input_shapes = shapes, .input_shape_count = 1};
    hq_archive_t *a = NULL;
    hq_error_t err = {0};
    if (parse_model(&m, &opts, &a, &err) != HQ_OK)
        fail_msg("%s", err.message);
    const hq_layer_t *in = layer_named(a, "m/input_layer1");
    assert_int_equal(in->output_shape.dims[0], -1);
    assert_int_equal(in->output_shape.dims[1], 32);
    assert_int_equal(in->output_shape.dims[2], 64);
    assert_int_equal(in->output_shape.dims[3], 3);
    hq_archive_destroy(a);
    /* without the shape the dynamic height is refused, with a hint */
    model_t m1 = {0};
    input(&m1, "x", 4, (int64_t[]){-1, 3, 0, 0});
    node(&m1, "Relu", "r", "x", "y", NULL);
    output(&m1, "y");
    expect_error(&m1, NULL, HQ_ERR_UNSUPPORTED, "or give one with --tensor-shapes");
    /* a given shape that contradicts a static dimension, or has another rank */
    model_t m2 = {0};
    input(&m2, "x", 4, (int64_t[]){-1, 3, 0, 0});
    node(&m2, "Relu", "r", "x", "y", NULL);
    output(&m2, "y");
    shapes[0].dims[1] = 4;
    expect_error(&m2, &opts, HQ_ERR_INVALID,
                 "m.onnx: input 'x': dimension 1 is 3 in the model, 4 in the shape given for it");
    model_t m3 = {0};
    input(&m3, "x", 4, (int64_t[]){-1, 3, 0, 0});
    node(&m3, "Relu", "r", "x", "y", NULL);
    output(&m3, "y");
    hq_shape_t flat[1] = {{2, {1, 3}}};
    hq_parse_options_t opts3 = {.input_shapes = flat, .input_shape_count = 1};
    expect_error(&m3, &opts3, HQ_ERR_INVALID,
                 "input 'x' has rank 4, the shape given for it has rank 2");
}

static void rank_three_tensors_are_nchw_with_height_one_and_compute_what_onnx_does(void **state)
{
    (void)state;
    /* x [1, 2, 3] -> Softmax(axis 2, over L) -> Transpose [0, 2, 1] -> y [1, 3, 2] */
    model_t m = {0};
    input(&m, "x", 3, (int64_t[]){1, 2, 3});
    node(&m, "Softmax", "sm", "x", "s", "axis=2");
    node(&m, "Transpose", "tr", "s", "y", "perm=0,2,1");
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    const hq_layer_t *in = layer_named(a, "m/input_layer1");
    assert_int_equal(in->output_shape.ndim, 4);
    assert_int_equal(in->output_shape.dims[1], 1);
    assert_int_equal(in->output_shape.dims[2], 3);
    assert_int_equal(in->output_shape.dims[3], 2);
    assert_int_equal(layer_named(a, "m/softmax1")->params.axis, 2); /* NHWC W = ONNX L */
    /* ONNX x[c][l] = c * 3 + l; hq input [1, 1, L=3, C=2] holds x[c][l] at l * 2 + c */
    float x[6], out[6];
    for (int c = 0; c < 2; c++)
        for (int l = 0; l < 3; l++)
            x[l * 2 + c] = (float)(c * 3 + l);
    emulate(a, x, out, 6);
    /* ONNX y[l][c] = softmax over l of x[c][:]; y is [1, 3, 2] = hq [1, 1, 2, 3]: y[l][c] at
     * c * 3 + l */
    for (int c = 0; c < 2; c++) {
        double sum = 0;
        for (int l = 0; l < 3; l++)
            sum += exp((double)(c * 3 + l));
        for (int l = 0; l < 3; l++)
            assert_float_equal(out[c * 3 + l], exp((double)(c * 3 + l)) / sum, 1e-6);
    }
    hq_archive_destroy(a);
}

static void axes_that_move_the_batch_and_training_dropout_are_refused(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 3, (int64_t[]){1, 2, 3});
    node(&m, "Unsqueeze", "u", "x", "y", "axes=0,"); /* "0," : an ints attribute */
    output(&m, "y");
    void *bytes;
    size_t len;
    model_bytes(&m, 11, &bytes, &len); /* axes as an attribute: opset 11 */
    hq_archive_t *a = NULL;
    hq_error_t err = {0};
    assert_int_equal(hq_parse_onnx_memory(bytes, len, "m.onnx", NULL, &a, &err),
                     HQ_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "node 'u' (Unsqueeze): a new axis before the batch"));
    free(bytes);
    model_t m2 = {0};
    input(&m2, "x", 4, IMG);
    int64_t yes = 1;
    init_i(&m2, "training", 0, NULL, &yes);
    float ratio = 0.5f;
    init_f(&m2, "ratio", 0, NULL, &ratio);
    node(&m2, "Dropout", "d", "x,ratio,training", "y", NULL);
    output(&m2, "y");
    expect_error(&m2, NULL, HQ_ERR_UNSUPPORTED,
                 "node 'd' (Dropout): training_mode is not a constant false");
}

static void global_max_pool_is_one_maxpool_window_over_the_image(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, IMG);
    node(&m, "GlobalMaxPool", "g", "x", "y", NULL);
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    const hq_layer_t *l = layer_named(a, "m/maxpool1");
    assert_int_equal(l->params.kernel_h, 4);
    assert_int_equal(l->params.kernel_w, 4);
    assert_int_equal(l->output_shape.dims[1], 1);
    float x[32], out[2];
    for (int i = 0; i < 32; i++)
        x[i] = (float)((i * 7) % 32) - 3.0f; /* NHWC, channel = i % 2 */
    emulate(a, x, out, 2);
    float want[2] = {-1e30f, -1e30f};
    for (int i = 0; i < 32; i++)
        want[i % 2] = fmaxf(want[i % 2], x[i]);
    assert_float_equal(out[0], want[0], 0);
    assert_float_equal(out[1], want[1], 0);
    hq_archive_destroy(a);
}

static void pixel_shuffle_reshape_transpose_reshape_becomes_depth_to_space(void **state)
{
    (void)state;
    for (int crd = 0; crd < 2; crd++) {
        /* x [1, 8, 1, 1] -> y [1, 2, 2, 2] with r = 2, C = 2 */
        model_t m = {0};
        input(&m, "x", 4, (int64_t[]){1, 8, 1, 1});
        int64_t six[6] = {1, 2, 2, 2, 1, 1}, four[4] = {1, 2, 2, 2};
        init_i(&m, "s6", 1, (int64_t[]){6}, six);
        init_i(&m, "s4", 1, (int64_t[]){4}, four);
        node(&m, "Reshape", "r1", "x,s6", "a", NULL);
        node(&m, "Transpose", "t", "a", "b", crd ? "perm=0,1,4,2,5,3" : "perm=0,3,4,1,5,2");
        node(&m, "Reshape", "r2", "b,s4", "y", NULL);
        output(&m, "y");
        hq_archive_t *a = parse_ok(&m);
        assert_int_equal(count_type(a, HQ_LAYER_DEPTH_TO_SPACE), 1);
        assert_int_equal(count_type(a, HQ_LAYER_TRANSPOSE), 0);
        assert_int_equal(count_type(a, HQ_LAYER_RESHAPE), 0);
        const hq_layer_t *l = layer_named(a, "m/depth_to_space1");
        assert_int_equal(l->params.block_size, 2);
        assert_int_equal(l->params.depth_to_space_crd, crd);
        float x[8], out[8];
        for (int i = 0; i < 8; i++)
            x[i] = (float)(i + 1);
        emulate(a, x, out, 8);
        for (int c = 0; c < 2; c++)
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++) {
                    int src = crd ? c * 4 + i * 2 + j : (i * 2 + j) * 2 + c;
                    assert_float_equal(out[(i * 2 + j) * 2 + c], x[src], 0);
                }
        hq_archive_destroy(a);
    }
}

static void channel_shuffle_reshape_transpose_reshape_becomes_channel_shuffle(void **state)
{
    (void)state;
    /* x [1, 6, 1, 1] viewed as [1, g = 3, 2, 1, 1], axes 1 and 2 swapped, viewed back */
    model_t m = {0};
    input(&m, "x", 4, (int64_t[]){1, 6, 1, 1});
    int64_t five[5] = {1, 3, 2, 1, 1}, four[4] = {1, -1, 1, 1};
    init_i(&m, "s5", 1, (int64_t[]){5}, five);
    init_i(&m, "s4", 1, (int64_t[]){4}, four);
    node(&m, "Reshape", "r1", "x,s5", "a", NULL);
    node(&m, "Transpose", "t", "a", "b", "perm=0,2,1,3,4");
    node(&m, "Reshape", "r2", "b,s4", "y", NULL);
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    assert_int_equal(count_type(a, HQ_LAYER_CHANNEL_SHUFFLE), 1);
    assert_int_equal(count_type(a, HQ_LAYER_TRANSPOSE), 0);
    assert_int_equal(count_type(a, HQ_LAYER_RESHAPE), 0);
    assert_int_equal(layer_named(a, "m/channel_shuffle1")->params.groups, 3);
    float x[6] = {1, 2, 3, 4, 5, 6}, out[6];
    emulate(a, x, out, 6);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            assert_float_equal(out[i * 3 + j], x[j * 2 + i], 0);
    hq_archive_destroy(a);
}

static void reduce_mean_over_h_and_w_is_a_global_average_pool(void **state)
{
    (void)state;
    for (int keep = 0; keep < 2; keep++) {
        model_t m = {0};
        input(&m, "x", 4, (int64_t[]){1, 2, 2, 2});
        node(&m, "ReduceMean", "mean", "x", "y", keep ? "axes=-1,2" : "axes=2,3;keepdims=0");
        output(&m, "y");
        hq_archive_t *a = parse_ok(&m);
        assert_int_equal(count_type(a, HQ_LAYER_GLOBAL_AVG_POOL), 1);
        float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, out[2]; /* NHWC: channel 0 = 1, 3, 5, 7 */
        emulate(a, x, out, 2);
        assert_float_equal(out[0], 4, 1e-6);
        assert_float_equal(out[1], 5, 1e-6);
        hq_archive_destroy(a);
    }
    model_t m = {0};
    input(&m, "x", 4, (int64_t[]){1, 2, 2, 2});
    node(&m, "ReduceMean", "mean", "x", "y", "axes=1,2,3");
    output(&m, "y");
    expect_error(&m, NULL, HQ_ERR_UNSUPPORTED, "mean over axes other than [2, 3]");
}

/* ONNX LayerNormalization over the last axis of rows x c values (double). */
static void layer_norm_rows(const float *x, int rows, int c, const float *g, const float *b,
                            double eps, double *y)
{
    for (int r = 0; r < rows; r++) {
        double mean = 0, var = 0;
        for (int k = 0; k < c; k++)
            mean += x[r * c + k] / (double)c;
        for (int k = 0; k < c; k++)
            var += (x[r * c + k] - mean) * (x[r * c + k] - mean) / (double)c;
        for (int k = 0; k < c; k++)
            y[r * c + k] = (x[r * c + k] - mean) / sqrt(var + eps) * g[k] + b[k];
    }
}

/* x [1, 3, 1, 2] -> Transpose to [N, H, W, C] -> normalize over C -> MatMul [3, 2] + bias ->
 * Transpose back: in hq a layer_norm and a 1x1 conv on NHWC, no transpose. */
static void layer_normalization_between_channels_last_transposes_needs_no_transpose(void **state)
{
    (void)state;
    const float g[3] = {1.5f, -0.5f, 1}, b[3] = {0.25f, 0, -1}, w[6] = {1, -1, 0.5f, 2, -2, 0};
    const float bias[2] = {0.5f, -0.25f};
    model_t m = {0};
    input(&m, "x", 4, (int64_t[]){1, 3, 1, 2});
    init_f(&m, "g", 1, (int64_t[]){3}, g);
    init_f(&m, "b", 1, (int64_t[]){3}, b);
    init_f(&m, "w", 2, (int64_t[]){3, 2}, w);
    init_f(&m, "bias", 1, (int64_t[]){2}, bias);
    node(&m, "Transpose", "to_nhwc", "x", "a", "perm=0,2,3,1");
    node(&m, "LayerNormalization", "ln", "a,g,b", "n", "axis=-1;epsilon=0.01f");
    node(&m, "MatMul", "fc", "n,w", "f", NULL);
    node(&m, "Add", "fc_bias", "bias,f", "h", NULL);
    node(&m, "Transpose", "to_nchw", "h", "y", "perm=0,3,1,2");
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    assert_int_equal(count_type(a, HQ_LAYER_LAYER_NORM), 1);
    assert_int_equal(count_type(a, HQ_LAYER_CONV), 1);
    assert_int_equal(count_type(a, HQ_LAYER_TRANSPOSE), 0);
    assert_int_equal(count_type(a, HQ_LAYER_EW_ADD), 0);
    assert_float_equal(layer_named(a, "ln")->params.epsilon, 0.01f, 0);
    const float x[6] = {1, 2, 4, 3, 3, 6}; /* NHWC: two positions of three channels */
    double n[6];
    layer_norm_rows(x, 2, 3, g, b, 0.01, n);
    float out[4];
    emulate(a, x, out, 4);
    for (int p = 0; p < 2; p++)
        for (int o = 0; o < 2; o++) {
            double want = bias[o];
            for (int c = 0; c < 3; c++)
                want += n[p * 3 + c] * w[c * 2 + o];
            assert_float_equal(out[p * 2 + o], want, 1e-5);
        }
    hq_archive_destroy(a);
}

/* torch's opset-13 LayerNorm: ReduceMean, Sub, Pow 2, ReduceMean, Add eps, Sqrt, Div, Mul gamma,
 * Add beta; over the last axis of a channels-last view and over axis 1 of an NCHW tensor. */
static void layer_norm_decomposition_becomes_one_layer_norm(void **state)
{
    (void)state;
    const float g[3] = {2, 1, 0.5f}, b[3] = {0, 1, -1}, two = 2, eps = 1e-3f;
    for (int nchw = 0; nchw < 2; nchw++) {
        model_t m = {0};
        input(&m, "x", 4, (int64_t[]){1, 3, 1, 2});
        init_f(&m, "g", 1, (int64_t[]){3}, g);
        init_f(&m, "g3", 3, (int64_t[]){3, 1, 1}, g);
        init_f(&m, "b", 1, (int64_t[]){3}, b);
        init_f(&m, "b3", 3, (int64_t[]){3, 1, 1}, b);
        init_f(&m, "two", 0, NULL, &two);
        init_f(&m, "eps", 0, NULL, &eps);
        const char *x = nchw ? "x" : "t";
        if (!nchw)
            node(&m, "Transpose", "to_nhwc", "x", "t", "perm=0,2,3,1");
        char ins[64];
        node(&m, "ReduceMean", "mean", x, "mu", nchw ? "axes=1," : "axes=-1,");
        snprintf(ins, sizeof ins, "%s,mu", x);
        node(&m, "Sub", "sub", ins, "d", NULL);
        node(&m, "Pow", "pow", "d,two", "d2", NULL);
        node(&m, "ReduceMean", "var", "d2", "v", nchw ? "axes=1," : "axes=-1,");
        node(&m, "Add", "add_eps", "v,eps", "ve", NULL);
        node(&m, "Sqrt", "sqrt", "ve", "sd", NULL);
        node(&m, "Div", "div", "d,sd", "nm", NULL);
        node(&m, "Mul", "gamma", nchw ? "nm,g3" : "nm,g", "ng", NULL);
        node(&m, "Add", "beta", nchw ? "ng,b3" : "b,ng", nchw ? "y" : "nb", NULL);
        if (!nchw)
            node(&m, "Transpose", "to_nchw", "nb", "y", "perm=0,3,1,2");
        output(&m, "y");
        hq_archive_t *a = parse_ok(&m);
        assert_int_equal(count_type(a, HQ_LAYER_LAYER_NORM), 1);
        assert_int_equal(hq_graph_layer_count(graph_of(a)), 3); /* input, layer_norm, output */
        const float in[6] = {1, -2, 4, 0.5f, 3, 3};
        double want[6];
        layer_norm_rows(in, 2, 3, g, b, eps, want);
        float out[6];
        emulate(a, in, out, 6);
        for (int i = 0; i < 6; i++)
            assert_float_equal(out[i], want[i], 1e-5);
        hq_archive_destroy(a);
    }
}

/* LayerNormalization of [N, C] features (a transformer MLP's input): over C, no view needed. */
static void layer_normalization_of_a_feature_vector_normalizes_its_channels(void **state)
{
    (void)state;
    const float g[4] = {1, 2, -1, 0.5f}, b[4] = {0, 0.5f, 0, -1};
    model_t m = {0};
    input(&m, "x", 2, (int64_t[]){1, 4});
    init_f(&m, "g", 1, (int64_t[]){4}, g);
    init_f(&m, "b", 1, (int64_t[]){4}, b);
    node(&m, "LayerNormalization", "ln", "x,g,b", "y", "axis=1;epsilon=0.001f");
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    assert_int_equal(count_type(a, HQ_LAYER_LAYER_NORM), 1);
    const float x[4] = {3, -1, 0.5f, 2};
    double want[4];
    layer_norm_rows(x, 1, 4, g, b, 1e-3, want);
    float out[4];
    emulate(a, x, out, 4);
    for (int i = 0; i < 4; i++)
        assert_float_equal(out[i], want[i], 1e-5);
    hq_archive_destroy(a);
}

static void layer_norm_over_other_axes_than_the_channels_is_refused(void **state)
{
    (void)state;
    const float g[6] = {1, 1, 1, 1, 1, 1}, two = 2, eps = 1e-5f;
    model_t m = {0};
    input(&m, "x", 4, (int64_t[]){1, 3, 1, 2});
    init_f(&m, "g", 3, (int64_t[]){3, 1, 2}, g);
    node(&m, "LayerNormalization", "ln", "x,g", "y", "axis=1");
    output(&m, "y");
    expect_error(&m, NULL, HQ_ERR_UNSUPPORTED, "node 'ln' (LayerNormalization): normalizes over "
                                               "axes 1..3 of the rank-4 tensor 'x'");
    model_t d = {0};
    input(&d, "x", 4, (int64_t[]){1, 3, 1, 2});
    init_f(&d, "two", 0, NULL, &two);
    init_f(&d, "eps", 0, NULL, &eps);
    node(&d, "ReduceMean", "mean", "x", "mu", "axes=-1,");
    node(&d, "Sub", "sub", "x,mu", "dd", NULL);
    node(&d, "Pow", "pow", "dd,two", "d2", NULL);
    node(&d, "ReduceMean", "var", "d2", "v", "axes=-1,");
    node(&d, "Add", "add_eps", "v,eps", "ve", NULL);
    node(&d, "Sqrt", "sqrt", "ve", "sd", NULL);
    node(&d, "Div", "div", "dd,sd", "y", NULL);
    output(&d, "y");
    expect_error(&d, NULL, HQ_ERR_UNSUPPORTED, "node 'mean' (ReduceMean): normalizes over axes [3]");
}

/* A channels-last view read by an op that needs the NCHW meaning gets the transpose hq always
 * made: Softmax over the view's last axis is a softmax over C. */
static void a_channels_last_view_read_by_another_op_is_materialized(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, (int64_t[]){1, 2, 1, 2});
    node(&m, "Transpose", "to_nhwc", "x", "a", "perm=0,2,3,1");
    node(&m, "Softmax", "sm", "a", "y", "axis=-1");
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    assert_int_equal(count_type(a, HQ_LAYER_TRANSPOSE), 1);
    assert_int_equal(layer_named(a, "to_nhwc")->type, HQ_LAYER_TRANSPOSE); /* its ONNX name */
    const float x[4] = {0, 1, 2, 2}; /* NHWC: position 0 (0, 1), position 1 (2, 2) */
    float out[4];
    emulate(a, x, out, 4);
    /* the output [N, H, W, C] read as NCHW: hq holds it as [1, W, C, H], i.e. the same order */
    assert_float_equal(out[0], 1 / (1 + expf(1)), 1e-6);
    assert_float_equal(out[1], 1 / (1 + expf(-1)), 1e-6);
    assert_float_equal(out[2], 0.5f, 1e-6);
    assert_float_equal(out[3], 0.5f, 1e-6);
    hq_archive_destroy(a);
}

/* Attention's scores: x [1, 2 heads, 2, 3] times its own transpose [1, 2, 3, 2] -> [1, 2, 2, 2],
 * one product per head; a rank-3 product is refused naming the node. */
static void matmul_of_two_computed_tensors_is_one_product_per_channel(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, (int64_t[]){1, 2, 2, 3});
    node(&m, "Transpose", "kt", "x", "t", "perm=0,1,3,2");
    node(&m, "MatMul", "scores", "x,t", "y", NULL);
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    assert_int_equal(count_type(a, HQ_LAYER_MATMUL), 1);
    float x[12], out[8];
    for (int i = 0; i < 12; i++)
        x[i] = (float)(i % 5) - 1.5f;
    emulate(a, x, out, 8);
    /* NHWC x[i][k][h] = x[(i * 3 + k) * 2 + h]; out[i][j][h] = sum_k x[i][k][h] x[j][k][h] */
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            for (int h = 0; h < 2; h++) {
                float want = 0;
                for (int k = 0; k < 3; k++)
                    want += x[(i * 3 + k) * 2 + h] * x[(j * 3 + k) * 2 + h];
                assert_float_equal(out[(i * 2 + j) * 2 + h], want, 1e-5);
            }
    hq_archive_destroy(a);
    model_t r = {0};
    input(&r, "x", 3, (int64_t[]){1, 2, 3});
    node(&r, "Transpose", "kt", "x", "t", "perm=0,2,1");
    node(&r, "MatMul", "scores", "x,t", "y", NULL);
    output(&r, "y");
    expect_error(&r, NULL, HQ_ERR_UNSUPPORTED,
                 "node 'scores' (MatMul): MatMul of two computed tensors of ranks 3 and 3");
}

/* x [1, 3, 2] ([N, C, L]) -> Transpose to the sequence [N, L, C] -> LayerNorm over C -> MatMul
 * [3, 2] + bias: a layer_norm and a 1x1 conv on the layer output as it is; the [N, L, 2] output
 * is held as hq holds any [N, C, L] tensor, one transpose. */
static void a_sequence_is_a_view_for_layer_normalization_and_matmul(void **state)
{
    (void)state;
    const float g[3] = {1.5f, -0.5f, 1}, b[3] = {0.25f, 0, -1}, w[6] = {1, -1, 0.5f, 2, -2, 0};
    const float bias[2] = {0.5f, -0.25f};
    model_t m = {0};
    input(&m, "x", 3, (int64_t[]){1, 3, 2});
    init_f(&m, "g", 1, (int64_t[]){3}, g);
    init_f(&m, "b", 1, (int64_t[]){3}, b);
    init_f(&m, "w", 2, (int64_t[]){3, 2}, w);
    init_f(&m, "bias", 1, (int64_t[]){2}, bias);
    node(&m, "Transpose", "to_sequence", "x", "s", "perm=0,2,1");
    node(&m, "LayerNormalization", "ln", "s,g,b", "n", "axis=-1;epsilon=0.01f");
    node(&m, "MatMul", "fc", "n,w", "f", NULL);
    node(&m, "Add", "fc_bias", "f,bias", "y", NULL);
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    assert_int_equal(count_type(a, HQ_LAYER_LAYER_NORM), 1);
    assert_int_equal(count_type(a, HQ_LAYER_CONV), 1);
    assert_int_equal(count_type(a, HQ_LAYER_TRANSPOSE), 1);
    assert_int_equal(hq_graph_layer_count(graph_of(a)), 5); /* input, ln, conv, transpose, out */
    const float x[6] = {1, 2, 4, 3, 3, 6}; /* NHWC [1, 1, L, C]: two steps of three features */
    double n[6];
    layer_norm_rows(x, 2, 3, g, b, 0.01, n);
    float out[4];
    emulate(a, x, out, 4);
    /* the ONNX output [N, L, 2] is hq's [N, 1, 2, L] */
    for (int t = 0; t < 2; t++)
        for (int o = 0; o < 2; o++) {
            double want = bias[o];
            for (int c = 0; c < 3; c++)
                want += n[t * 3 + c] * w[c * 2 + o];
            assert_float_equal(out[o * 2 + t], want, 1e-5);
        }
    hq_archive_destroy(a);
}

/* The sequence [N, T, 6] reshaped to [N, T, 3, 1, 2] and transposed to [3, N, 1, T, 2]: each
 * index of the first axis (Gather, or Slice + Squeeze) is two channels of the sequence. A
 * Transpose that brings another axis first is refused as the rank-5 reshape it needs. */
static void unstacking_a_sequence_takes_channel_groups(void **state)
{
    (void)state;
    for (int form = 0; form < 3; form++) {
        model_t m = {0};
        input(&m, "x", 3, (int64_t[]){1, 6, 2});
        init_i(&m, "shape5", 1, (int64_t[]){5}, (int64_t[]){0, -1, 3, 1, 2});
        init_i(&m, "one", 0, NULL, (int64_t[]){1});
        init_i(&m, "s1", 1, (int64_t[]){1}, (int64_t[]){1});
        init_i(&m, "e2", 1, (int64_t[]){1}, (int64_t[]){2});
        init_i(&m, "ax0", 1, (int64_t[]){1}, (int64_t[]){0});
        node(&m, "Transpose", "to_sequence", "x", "s", "perm=0,2,1");
        node(&m, "Reshape", "split_heads", "s,shape5", "r", NULL);
        node(&m, "Transpose", "stack_first", "r", "t",
             form == 2 ? "perm=3,0,2,1,4" : "perm=2,0,3,1,4");
        if (form == 1) {
            node(&m, "Slice", "take", "t,s1,e2,ax0", "sl", NULL);
            node(&m, "Squeeze", "drop", "sl,ax0", "y", NULL);
        } else {
            node(&m, "Gather", "take", "t,one", "y", "axis=0");
        }
        output(&m, "y");
        if (form == 2) {
            expect_error(&m, NULL, HQ_ERR_UNSUPPORTED,
                         "node 'split_heads' (Reshape): reshape to rank 5 with batch 1");
            continue;
        }
        hq_archive_t *a = parse_ok(&m);
        assert_int_equal(count_type(a, HQ_LAYER_SLICE), 1);
        const float x[12] = {0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15}; /* [1, 1, T, 6] */
        float out[4];
        emulate(a, x, out, 4);
        /* piece 1: [N, 1, T, 2] = channels 2..3 of each step, hq's [N, T, 2, 1] */
        const float want[4] = {2, 3, 12, 13};
        for (int i = 0; i < 4; i++)
            assert_float_equal(out[i], want[i], 0);
        hq_archive_destroy(a);
    }
}

static void default_network_name_drops_only_the_last_extension(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 4, IMG);
    node(&m, "Relu", "r", "x", "y", NULL);
    output(&m, "y");
    void *bytes;
    size_t len;
    model_bytes(&m, 13, &bytes, &len);
    hq_archive_t *a = NULL;
    hq_error_t err = {0};
    assert_int_equal(
        hq_parse_onnx_memory(bytes, len, "models/ch_ppocr_mobile_v2.0_cls.onnx", NULL, &a, &err),
        HQ_OK);
    assert_string_equal(hq_archive_net_name(a), "ch_ppocr_mobile_v2_0_cls");
    hq_archive_destroy(a);
    free(bytes);
}

/* ---- libonnx's single-op test models ---------------------------------------------------- */

#define NODE_DATA "/usr/share/libonnx-testdata/data/node/"

static hq_tensor_t *read_pb_tensor(const char *path)
{
    void *bytes;
    size_t len;
    if (hqi_read_file(path, (size_t)1 << 28, &bytes, &len, NULL) != HQ_OK)
        return NULL;
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, bytes);
    free(bytes);
    assert_non_null(tp);
    assert_int_equal(tp->data_type, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    int64_t shape[HQ_TENSOR_MAX_DIMS];
    for (size_t d = 0; d < tp->n_dims; d++)
        shape[d] = tp->dims[d];
    hq_tensor_t *t = NULL;
    assert_int_equal(hq_tensor_create(HQ_DTYPE_FLOAT32, (int)tp->n_dims, shape, &t, NULL), HQ_OK);
    if (tp->raw_data.len)
        memcpy(t->data, tp->raw_data.data, t->nbytes);
    else
        memcpy(t->data, tp->float_data, t->nbytes);
    onnx__tensor_proto__free_unpacked(tp, NULL);
    return t;
}

/* Loads NODE_DATA/<name>/model.onnx with graph inputs 1.. turned into initializers from
 * test_data_set_0, parses it, and checks the emulator's output against output_0.pb. */
static uint8_t *node_test_bytes(const char *name, size_t *out_len)
{
    char path[512];
    snprintf(path, sizeof path, NODE_DATA "%s/model.onnx", name);
    void *bytes;
    size_t len;
    if (hqi_read_file(path, (size_t)1 << 28, &bytes, &len, NULL) != HQ_OK)
        return NULL;
    Onnx__ModelProto *model = onnx__model_proto__unpack(NULL, len, bytes);
    free(bytes);
    assert_non_null(model);
    Onnx__GraphProto *g = model->graph;
    /* weights: inputs 1.. as initializers */
    size_t extra = g->n_input > 1 ? g->n_input - 1 : 0;
    Onnx__TensorProto **inits = calloc(g->n_initializer + extra + 1, sizeof *inits);
    Onnx__TensorProto **loaded = calloc(extra + 1, sizeof *loaded);
    char **own_names = calloc(extra + 1, sizeof *own_names);
    for (size_t i = 0; i < g->n_initializer; i++)
        inits[i] = g->initializer[i];
    for (size_t i = 0; i < extra; i++) {
        char in_path[600];
        snprintf(in_path, sizeof in_path, NODE_DATA "%s/test_data_set_0/input_%zu.pb", name, i + 1);
        void *tb;
        size_t tl;
        assert_int_equal(hqi_read_file(in_path, (size_t)1 << 28, &tb, &tl, NULL), HQ_OK);
        loaded[i] = onnx__tensor_proto__unpack(NULL, tl, tb);
        free(tb);
        assert_non_null(loaded[i]);
        own_names[i] = loaded[i]->name;
        loaded[i]->name = g->input[i + 1]->name;
        inits[g->n_initializer + i] = loaded[i];
    }
    Onnx__TensorProto **old_inits = g->initializer;
    size_t old_n = g->n_initializer;
    g->initializer = inits;
    g->n_initializer = old_n + extra;
    size_t packed_len = onnx__model_proto__get_packed_size(model);
    uint8_t *packed = malloc(packed_len);
    onnx__model_proto__pack(model, packed);
    g->initializer = old_inits;
    g->n_initializer = old_n;
    for (size_t i = 0; i < extra; i++) {
        loaded[i]->name = own_names[i];
        onnx__tensor_proto__free_unpacked(loaded[i], NULL);
    }
    free(own_names);
    free(loaded);
    free(inits);
    onnx__model_proto__free_unpacked(model, NULL);

    *out_len = packed_len;
    return packed;
}

static hq_archive_t *parse_node_test(const char *name, bool run)
{
    char path[512];
    size_t packed_len;
    uint8_t *packed = node_test_bytes(name, &packed_len);
    if (!packed) {
        skip();
        return NULL;
    }
    hq_archive_t *a = NULL;
    hq_error_t err = {0};
    hq_status_t st = hq_parse_onnx_memory(packed, packed_len, name, NULL, &a, &err);
    free(packed);
    if (st != HQ_OK)
        fail_msg("%s", err.message);
    if (!run)
        return a;

    /* numerical conformance: NCHW input -> NHWC, emulate, NHWC -> compare with NCHW output */
    snprintf(path, sizeof path, NODE_DATA "%s/test_data_set_0/input_0.pb", name);
    hq_tensor_t *x = read_pb_tensor(path);
    snprintf(path, sizeof path, NODE_DATA "%s/test_data_set_0/output_0.pb", name);
    hq_tensor_t *want = read_pb_tensor(path);
    assert_int_equal(x->ndim, 4);
    assert_int_equal(want->ndim, 4);
    int64_t n = x->shape[0], c = x->shape[1], h = x->shape[2], w = x->shape[3];
    float *in = malloc(x->nbytes);
    for (int64_t b = 0; b < n; b++)
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t y = 0; y < h; y++)
                for (int64_t xx = 0; xx < w; xx++)
                    in[((b * h + y) * w + xx) * c + ch] =
                        ((float *)x->data)[((b * c + ch) * h + y) * w + xx];
    hq_emulator_t *emu = NULL;
    st = hq_emulator_create_from_archive(a, HQ_TARGET_NATIVE, &emu, &err);
    if (st != HQ_OK)
        fail_msg("%s", err.message);
    float *out = malloc(want->nbytes);
    const float *ins[1] = {in};
    float *outs[1] = {out};
    st = hq_emulator_run(emu, n, ins, outs, NULL, NULL, &err);
    if (st != HQ_OK)
        fail_msg("%s", err.message);
    int64_t oc = want->shape[1], oh = want->shape[2], ow = want->shape[3];
    assert_int_equal(hq_emulator_output_size(emu, 0), oc * oh * ow);
    for (int64_t b = 0; b < n; b++)
        for (int64_t ch = 0; ch < oc; ch++)
            for (int64_t y = 0; y < oh; y++)
                for (int64_t xx = 0; xx < ow; xx++) {
                    float e = ((float *)want->data)[((b * oc + ch) * oh + y) * ow + xx];
                    float got = out[((b * oh + y) * ow + xx) * oc + ch];
                    if (fabsf(e - got) > 1e-4f * (1 + fabsf(e)))
                        fail_msg("%s: output [%lld,%lld,%lld,%lld] = %g, expected %g", name,
                                 (long long)b, (long long)ch, (long long)y, (long long)xx, got, e);
                }
    hq_emulator_destroy(emu);
    free(in);
    free(out);
    hq_tensor_destroy(x);
    hq_tensor_destroy(want);
    return a;
}

static void onnx_test_models_parse_into_the_expected_layers(void **state)
{
    (void)state;
    /* 0.6 * 4 = 2.4: ONNX maps coordinates with 0.6, not with the size ratio 2 / 4: the
     * layer keeps the scale */
    size_t len;
    uint8_t *bytes = node_test_bytes("test_resize_downsample_scales_linear", &len);
    if (bytes) {
        hq_archive_t *r = NULL;
        hq_error_t err = {0};
        if (hq_parse_onnx_memory(bytes, len, "r.onnx", NULL, &r, &err) != HQ_OK)
            fail_msg("%s", err.message);
        const hq_layer_t *resize = layer_named(r, "Y");
        assert_float_equal(resize->params.resize_scales[0], 0.6f, 0);
        assert_float_equal(resize->params.resize_scales[1], 0.6f, 0);
        assert_int_equal(resize->output_shape.dims[2], 2);
        hq_archive_destroy(r);
        free(bytes);
    }
    hq_archive_t *a = parse_node_test("test_conv_with_strides_padding", false);
    const hq_layer_t *l = layer_named(a, "test_conv_with_strides_padding/conv1");
    assert_int_equal(l->params.stride_h, 2);
    assert_int_equal(l->params.pads[0], 1);
    assert_int_equal(l->output_shape.dims[1], 4);
    hq_archive_destroy(a);
    a = parse_node_test("test_maxpool_2d_pads", false);
    assert_int_equal(count_type(a, HQ_LAYER_MAXPOOL), 1);
    hq_archive_destroy(a);
    a = parse_node_test("test_averagepool_2d_pads_count_include_pad", false);
    l = layer_named(a, "y");
    assert_true(l->params.count_include_pad);
    hq_archive_destroy(a);
    a = parse_node_test("test_depthtospace_crd_mode_example", false);
    assert_true(layer_named(a, "y")->params.depth_to_space_crd);
    hq_archive_destroy(a);
    a = parse_node_test("test_resize_upsample_scales_nearest", false);
    assert_int_equal(layer_named(a, "Y")->params.resize_method, HQ_RESIZE_NEAREST);
    hq_archive_destroy(a);
}

static void onnx_test_models_match_their_reference_outputs_in_the_emulator(void **state)
{
    (void)state;
    static const char *models[] = {
        "test_conv_with_strides_padding",
        "test_conv_with_strides_no_padding",
        "test_conv_with_autopad_same",
        "test_basic_conv_with_padding",
        "test_maxpool_2d_pads",
        "test_maxpool_2d_same_upper",
        "test_maxpool_2d_strides",
        "test_averagepool_2d_pads_count_include_pad",
        "test_averagepool_2d_pads",
        "test_averagepool_2d_same_lower",
        "test_globalaveragepool",
        "test_depthtospace_example",
        "test_depthtospace_crd_mode_example",
        "test_resize_upsample_scales_nearest",
        "test_resize_upsample_scales_linear",
        "test_resize_upsample_scales_linear_align_corners",
        "test_convtranspose",
        "test_convtranspose_pads",
        "test_batchnorm_example",
        "test_conv_with_strides_and_asymmetric_padding",
        "test_maxpool_2d_ceil",
        "test_averagepool_2d_ceil",
        "test_averagepool_2d_precomputed_same_upper",
        "test_maxpool_2d_precomputed_same_upper",
        "test_averagepool_2d_same_upper",
        "test_maxpool_2d_same_lower",
        "test_maxpool_2d_default",
        "test_averagepool_2d_default",
        "test_averagepool_2d_strides",
        "test_maxpool_2d_precomputed_pads",
        "test_averagepool_2d_precomputed_pads_count_include_pad",
        "test_resize_upsample_sizes_nearest",
        "test_resize_downsample_sizes_linear_pytorch_half_pixel",
        "test_resize_upsample_sizes_nearest_floor_align_corners",
        "test_resize_downsample_sizes_nearest",
        "test_upsample_nearest",
        "test_spacetodepth",
        "test_spacetodepth_example",
        "test_convtranspose_autopad_same",
        "test_convtranspose_dilations",
        "test_convtranspose_kernel_shape",
        "test_convtranspose_pad",
        "test_convtranspose_with_kernel",
        "test_constant_pad",
    };
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, NODE_DATA "%s/model.onnx", models[i]);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        fclose(f);
        hq_archive_destroy(parse_node_test(models[i], true));
    }
}

/* ---- constant folding: what the evaluator computes ------------------------------------------ */

/* Parses m, whose graph ends Add(Relu(x), Cast(c, float)) -> y on an input x [N, k], and checks
 * that y = want for x = 0: the folded constant c reached the network with these values (as a
 * const_input: on the input itself the Add would be a normalization layer). */
static void expect_folded(model_t *m, int k, const float *want)
{
    node(m, "Relu", "folded_relu", "x", "folded_x", NULL);
    node(m, "Cast", "to_float", "c", "cf", "to=1");
    node(m, "Add", "add", "folded_x,cf", "y", NULL);
    output(m, "y");
    hq_archive_t *a = parse_ok(m);
    assert_int_equal(count_type(a, HQ_LAYER_CONST_INPUT), 1);
    float zeros[16] = {0}, got[16];
    emulate(a, zeros, got, k);
    for (int i = 0; i < k; i++)
        if (got[i] != want[i])
            fail_msg("element %d: folded %g, expected %g", i, got[i], want[i]);
    hq_archive_destroy(a);
}

static void comparisons_where_and_range_fold_with_broadcasting(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 2, (int64_t[]){-1, 4});
    int64_t zero = 0, one = 1, ten = 10;
    init_i(&m, "zero", 0, NULL, &zero);
    init_i(&m, "one", 0, NULL, &one);
    init_i(&m, "ten", 1, (int64_t[]){1}, &ten);
    node(&m, "Shape", "shape", "x", "s", NULL);                /* [1, 4] */
    node(&m, "Gather", "width", "s,one", "w", "axis=0");        /* 4 */
    node(&m, "Range", "range", "zero,w,one", "r", NULL);        /* [0, 1, 2, 3] */
    node(&m, "Greater", "gt", "r,one", "big", NULL);            /* [F, F, T, T] */
    node(&m, "Neg", "neg", "r", "nr", NULL);                    /* [0, -1, -2, -3] */
    node(&m, "Where", "where", "big,r,nr", "w1", NULL);         /* [0, -1, 2, 3] */
    node(&m, "Equal", "eq", "r,w", "last", NULL);               /* [F, F, F, F] */
    node(&m, "Not", "not", "last", "notlast", NULL);            /* [T, T, T, T] */
    node(&m, "LessOrEqual", "le", "r,one", "small", NULL);      /* [T, T, F, F] */
    node(&m, "And", "and", "small,notlast", "pick", NULL);      /* [T, T, F, F] */
    node(&m, "Where", "where2", "pick,ten,w1", "c", NULL);      /* [10, 10, 2, 3] */
    expect_folded(&m, 4, (const float[]){10, 10, 2, 3});
}

static void expand_tile_reductions_and_variadic_ops_fold(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 2, (int64_t[]){-1, 4});
    int64_t one = 1, three = 3, two[1] = {2}, four[1] = {4}, alt[4] = {2, 1, 2, 1};
    int64_t minus3 = -3;
    init_i(&m, "one", 0, NULL, &one);
    init_i(&m, "three", 0, NULL, &three);
    init_i(&m, "rep2", 1, (int64_t[]){1}, two);
    init_i(&m, "shape4", 1, (int64_t[]){1}, four);
    init_i(&m, "alt", 1, (int64_t[]){4}, alt);
    init_i(&m, "m3", 0, NULL, &minus3);
    node(&m, "Shape", "shape", "x", "s", NULL);                  /* [1, 4] */
    node(&m, "ReduceProd", "prod", "s", "p", "keepdims=0");       /* 4 */
    node(&m, "Expand", "expand", "p,shape4", "e", NULL);          /* [4, 4, 4, 4] */
    node(&m, "Range", "range", "one,three,one", "r", NULL);       /* [1, 2] */
    node(&m, "Tile", "tile", "r,rep2", "t", NULL);                /* [1, 2, 1, 2] */
    node(&m, "Mul", "mul", "t,e", "te", NULL);                    /* [4, 8, 4, 8] */
    node(&m, "Min", "min", "t,alt,te", "lo", NULL);               /* [1, 1, 1, 1] */
    node(&m, "Pow", "pow", "t,rep2", "sq", NULL);                 /* [1, 4, 1, 4] */
    node(&m, "Mod", "mod", "m3,t", "md", NULL);                   /* [0, 1, 0, 1] */
    node(&m, "Max", "max", "md,lo", "hi", NULL);                  /* [1, 1, 1, 1] */
    node(&m, "Sum", "sum", "te,sq,hi,md", "c0", NULL);            /* [6, 14, 6, 14] */
    node(&m, "ReduceSum", "rsum", "c0", "total", "keepdims=1");   /* [40] */
    node(&m, "Sub", "sub", "c0,total", "c", NULL);                /* [-34, -26, -34, -26] */
    expect_folded(&m, 4, (const float[]){-34, -26, -34, -26});
}

static void split_concat_slice_and_size_fold_on_floats(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 2, (int64_t[]){-1, 4});
    float v[6] = {1.5f, 2, 3, 4, 5, 6.25f};
    int64_t sizes[2] = {2, 4}, start = 1, end = 3, axis = 0;
    init_f(&m, "v", 1, (int64_t[]){6}, v);
    init_i(&m, "sizes", 1, (int64_t[]){2}, sizes);
    init_i(&m, "start", 1, (int64_t[]){1}, &start);
    init_i(&m, "end", 1, (int64_t[]){1}, &end);
    init_i(&m, "axis", 1, (int64_t[]){1}, &axis);
    node(&m, "Split", "split", "v,sizes", "a,b", "axis=0");         /* [1.5, 2], [3, 4, 5, 6.25] */
    node(&m, "Slice", "slice", "b,start,end,axis", "bs", NULL);     /* [4, 5] */
    node(&m, "Concat", "cat", "a,bs", "ab", "axis=0");              /* [1.5, 2, 4, 5] */
    node(&m, "Size", "size", "v", "n", NULL);                       /* 6 */
    node(&m, "Cast", "nf", "n", "nfl", "to=1");
    node(&m, "Mean", "mean", "ab,nfl", "c", NULL);                  /* [3.75, 4, 5, 5.5] */
    expect_folded(&m, 4, (const float[]){3.75f, 4, 5, 5.5f});
}

static void less_or_xor_float_mod_and_the_other_reductions_fold(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 2, (int64_t[]){-1, 4});
    float grid[8] = {-3.5f, 2, 7, -1, 4, -6, 0.5f, 9}, three = 3;
    int64_t two = 2, one = 1;
    init_f(&m, "grid", 2, (int64_t[]){2, 4}, grid);
    init_f(&m, "three", 0, NULL, &three);
    init_i(&m, "two", 0, NULL, &two);
    init_i(&m, "one", 0, NULL, &one);
    node(&m, "ReduceMax", "rmax", "grid", "hi", "axes=0,;keepdims=0");   /* [4, 2, 7, 9] */
    node(&m, "ReduceMin", "rmin", "grid", "lo", "axes=0,;keepdims=0");   /* [-3.5, -6, 0.5, -1] */
    node(&m, "ReduceMean", "rmean", "grid", "mid", "axes=0,;keepdims=0"); /* [0.25, -2, 3.75, 4] */
    node(&m, "Mod", "fmod", "hi,three", "rem", "fmod=1");               /* [1, 2, 1, 0] */
    node(&m, "Less", "lt", "lo,mid", "below", NULL);                    /* [T, T, T, T] */
    node(&m, "GreaterOrEqual", "ge", "rem,one", "ge1", NULL);           /* [T, T, T, F] */
    node(&m, "Xor", "xor", "below,ge1", "x1", NULL);                    /* [F, F, F, T] */
    node(&m, "Or", "or", "x1,x1", "x2", NULL);                          /* [F, F, F, T] */
    node(&m, "Where", "pick", "x2,two,rem", "r", NULL);                 /* [1, 2, 1, 2] */
    node(&m, "Add", "sum", "r,mid", "c", NULL);                         /* [1.25, 0, 4.75, 6] */
    expect_folded(&m, 4, (const float[]){1.25f, 0, 4.75f, 6});
}

static void integer_division_truncates_and_casts_truncate_toward_zero(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 2, (int64_t[]){-1, 4});
    int64_t num[4] = {7, -7, 9, 5}, den[4] = {2, 2, 0, -3};
    float f[4] = {-2.75f, 2.75f, 0.0f, -0.5f};
    init_i(&m, "num", 1, (int64_t[]){4}, num);
    init_i(&m, "den", 1, (int64_t[]){4}, den);
    init_f(&m, "f", 1, (int64_t[]){4}, f);
    node(&m, "Div", "div", "num,den", "q", NULL);       /* [3, -3, 0, -1] */
    node(&m, "Cast", "trunc", "f", "fi", "to=7");       /* [-2, 2, 0, 0] */
    node(&m, "Cast", "truth", "f", "fb", "to=9");       /* [1, 1, 0, 1] */
    node(&m, "Sum", "sum", "q,fi,fb", "c", NULL);       /* [2, 0, 0, 0] */
    expect_folded(&m, 4, (const float[]){2, 0, 0, 0});
}

static void equal_cast_and_where_on_computed_tensors_are_refused_naming_the_node(void **state)
{
    (void)state;
    static const char *const ops[][3] = {{"Equal", "x,zero", NULL},
                                         {"Where", "zero,x,x", NULL},
                                         {"Cast", "x", "to=7"}};
    for (int i = 0; i < 3; i++) {
        model_t m = {0};
        input(&m, "x", 4, IMG);
        float zero = 0;
        init_f(&m, "zero", 0, NULL, &zero);
        add_conv(&m, "c1", "x", "t", NULL);
        char ins[32];
        snprintf(ins, sizeof ins, "%s", ops[i][1]);
        ins[0] = ins[0] == 'x' ? 't' : ins[0];
        for (char *p = ins; (p = strstr(p, ",x")) != NULL; p += 2)
            p[1] = 't';
        node(&m, ops[i][0], "op", ins, "y", ops[i][2]);
        output(&m, "y");
        char want[128];
        snprintf(want, sizeof want,
                 "m.onnx: node 'op' (%s) is post-processing hq cannot convert; cut before it with "
                 "--end-node-names c1",
                 ops[i][0]);
        expect_error(&m, NULL, HQ_ERR_UNSUPPORTED, want);
    }
    /* a Cast to float of a computed tensor passes through */
    model_t m = {0};
    input(&m, "x", 4, IMG);
    add_conv(&m, "c1", "x", "t", NULL);
    node(&m, "Cast", "tofloat", "t", "y", "to=1");
    output(&m, "y");
    hq_archive_t *a = parse_ok(&m);
    assert_int_equal(hq_graph_layer_count(graph_of(a)), 3);
    hq_archive_destroy(a);
}

static void a_fold_that_does_not_broadcast_names_the_node_and_both_extents(void **state)
{
    (void)state;
    model_t m = {0};
    input(&m, "x", 2, (int64_t[]){-1, 4});
    int64_t a3[3] = {1, 2, 3}, a2[2] = {1, 2};
    init_i(&m, "a3", 1, (int64_t[]){3}, a3);
    init_i(&m, "a2", 1, (int64_t[]){2}, a2);
    node(&m, "Equal", "eq", "a3,a2", "c", NULL);
    node(&m, "Cast", "to_float", "c", "cf", "to=1");
    node(&m, "Add", "add", "x,cf", "y", NULL);
    output(&m, "y");
    expect_error(&m, NULL, HQ_ERR_INVALID,
                 "node 'eq' (Equal): inputs do not broadcast (dimension 0 is 3 in one, 2 in "
                 "another)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv_weights_are_transposed_to_hwio_with_pads_and_names),
        cmocka_unit_test(conv_with_one_group_per_channel_becomes_dw),
        cmocka_unit_test(grouped_conv_keeps_groups_and_same_lower_padding),
        cmocka_unit_test(conv_transpose_becomes_deconv_with_ci_o_weights),
        cmocka_unit_test(batch_norm_after_conv_is_folded_into_kernel_and_bias),
        cmocka_unit_test(batch_norm_with_a_shared_input_stays_a_layer_with_four_params),
        cmocka_unit_test(relu_fuses_into_its_only_producer_and_not_into_a_shared_one),
        cmocka_unit_test(no_fusion_when_an_alias_of_the_producer_is_read_elsewhere),
        cmocka_unit_test(clip_activations_map_to_relu6_leaky_hardsigmoid_and_clip),
        cmocka_unit_test(max_and_min_with_constants_become_clips_that_survive_a_save),
        cmocka_unit_test(non_finite_activation_parameters_are_refused),
        cmocka_unit_test(prelu_slope_per_element_becomes_relu_plus_slope_times_min),
        cmocka_unit_test(silu_and_hardswish_patterns_fuse_into_the_conv),
        cmocka_unit_test(gelu_erf_forms_and_the_gelu_op_become_gelu),
        cmocka_unit_test(gelu_tanh_approximation_is_refused),
        cmocka_unit_test(flatten_before_gemm_permutes_dense_rows_to_nhwc_order),
        cmocka_unit_test(flatten_feeding_a_non_dense_is_materialized_in_nchw_order),
        cmocka_unit_test(flatten_gemm_and_flatten_reshape_compute_what_onnx_computes),
        cmocka_unit_test(matmul_with_constant_becomes_dense_and_add_folds_into_bias),
        cmocka_unit_test(add_of_two_tensors_becomes_conv_elementwise_add_then_relu),
        cmocka_unit_test(elementwise_ops_between_tensors_and_with_constants),
        cmocka_unit_test(input_preprocessing_by_constants_becomes_one_normalization),
        cmocka_unit_test(pools_map_with_count_include_pad_and_ceil_mode),
        cmocka_unit_test(maxpool_dilations_are_kept_and_dilated_average_pools_refused),
        cmocka_unit_test(ceil_mode_average_with_pads_counted_is_a_pad_then_an_uncounted_pool),
        cmocka_unit_test(concat_split_slice_and_pad_remap_axes_to_nhwc),
        cmocka_unit_test(constant_of_shape_channel_padding_becomes_a_pad_layer),
        cmocka_unit_test(resize_by_scales_and_sizes_sets_method_and_coordinates),
        cmocka_unit_test(resize_nearest_modes_fractional_scales_and_axes_are_kept_through_the_hn),
        cmocka_unit_test(resize_forms_hq_cannot_compute_are_refused_with_the_reason),
        cmocka_unit_test(shape_driven_reshape_is_folded_with_constant_nodes),
        cmocka_unit_test(comparisons_where_and_range_fold_with_broadcasting),
        cmocka_unit_test(expand_tile_reductions_and_variadic_ops_fold),
        cmocka_unit_test(split_concat_slice_and_size_fold_on_floats),
        cmocka_unit_test(less_or_xor_float_mod_and_the_other_reductions_fold),
        cmocka_unit_test(integer_division_truncates_and_casts_truncate_toward_zero),
        cmocka_unit_test(equal_cast_and_where_on_computed_tensors_are_refused_naming_the_node),
        cmocka_unit_test(a_fold_that_does_not_broadcast_names_the_node_and_both_extents),
        cmocka_unit_test(transpose_and_depth_to_space_and_softmax_remap),
        cmocka_unit_test(identity_and_dropout_disappear),
        cmocka_unit_test(unsupported_op_names_node_type_and_the_way_out),
        cmocka_unit_test(the_way_out_names_a_computed_input_not_a_constant_node),
        cmocka_unit_test(end_node_names_make_their_outputs_the_outputs),
        cmocka_unit_test(start_node_names_make_their_inputs_inputs_with_inferred_shapes),
        cmocka_unit_test(graph_inputs_read_after_a_start_cut_stay_inputs),
        cmocka_unit_test(a_start_cut_whose_prefix_fails_reports_it_once),
        cmocka_unit_test(unconvertible_preprocessing_names_the_start_cut_that_then_parses),
        cmocka_unit_test(the_end_cut_covers_every_path_to_the_outputs),
        cmocka_unit_test(a_refused_decode_names_the_end_cut_on_every_head),
        cmocka_unit_test(a_refusal_inside_the_network_keeps_its_reason_alone),
        cmocka_unit_test(a_refused_preprocessing_names_the_start_cut_when_its_shape_is_known),
        cmocka_unit_test(an_unknown_hw_arch_is_refused_naming_the_known_ones),
        cmocka_unit_test(unknown_cut_node_is_reported),
        cmocka_unit_test(truncated_protobuf_is_one_clear_line),
        cmocka_unit_test(missing_initializer_is_named),
        cmocka_unit_test(dynamic_spatial_dimension_asks_for_a_static_shape),
        cmocka_unit_test(wrong_rank_weights_and_inputs_are_refused),
        cmocka_unit_test(tensor_shapes_fill_dynamic_dimensions_and_must_agree_with_static_ones),
        cmocka_unit_test(rank_three_tensors_are_nchw_with_height_one_and_compute_what_onnx_does),
        cmocka_unit_test(axes_that_move_the_batch_and_training_dropout_are_refused),
        cmocka_unit_test(global_max_pool_is_one_maxpool_window_over_the_image),
        cmocka_unit_test(pixel_shuffle_reshape_transpose_reshape_becomes_depth_to_space),
        cmocka_unit_test(channel_shuffle_reshape_transpose_reshape_becomes_channel_shuffle),
        cmocka_unit_test(reduce_mean_over_h_and_w_is_a_global_average_pool),
        cmocka_unit_test(layer_normalization_between_channels_last_transposes_needs_no_transpose),
        cmocka_unit_test(layer_norm_decomposition_becomes_one_layer_norm),
        cmocka_unit_test(layer_normalization_of_a_feature_vector_normalizes_its_channels),
        cmocka_unit_test(layer_norm_over_other_axes_than_the_channels_is_refused),
        cmocka_unit_test(a_channels_last_view_read_by_another_op_is_materialized),
        cmocka_unit_test(matmul_of_two_computed_tensors_is_one_product_per_channel),
        cmocka_unit_test(a_sequence_is_a_view_for_layer_normalization_and_matmul),
        cmocka_unit_test(unstacking_a_sequence_takes_channel_groups),
        cmocka_unit_test(default_network_name_drops_only_the_last_extension),
        cmocka_unit_test(onnx_test_models_parse_into_the_expected_layers),
        cmocka_unit_test(onnx_test_models_match_their_reference_outputs_in_the_emulator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
