/* onnx_parse.c — ONNX import (`hq parse`): decodes the protobuf, folds constant subgraphs, and
 * maps NCHW ONNX nodes onto NHWC hq layers, transposing weights and remapping axes on the way.
 * docs/onnx.md describes each mapping; this file follows its order. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/layer_types.h"
#include "hq/parse.h"
#include "onnx.pb-c.h"
#include "graph/hw_arch.h"
#include "util/util.h"

/* Largest element count of one constant tensor hq accepts (2^31 floats = 8 GiB). */
#define MAX_CONST_ELEMENTS ((int64_t)1 << 31)

enum { VALUE_UNKNOWN = 0, VALUE_CONST, VALUE_LAYER };

/* What an ONNX tensor name stands for while the graph is built. */
typedef struct value {
    char *name;
    int kind;              /* VALUE_* */
    hq_tensor_t *constant; /* VALUE_CONST: float32 or int64, ONNX layout */
    int layer, port;       /* VALUE_LAYER: producer layer and output piece */
    int rank;              /* VALUE_LAYER: ONNX rank: 2 ([N, C]), 3 ([N, C, L], held as the
                              hq tensor [-1, 1, L, C], i.e. NCHW with H = 1) or 4 */
    bool flat;             /* VALUE_LAYER: ONNX [N, C*H*W] view of a rank-4 layer output that
                              is not materialized yet (a dense consuming it permutes its rows) */
    int64_t flat_c, flat_h, flat_w;
    int uses;     /* consuming node inputs + graph outputs (needed nodes only) */
    int producer; /* index of the node producing it, -1 for none */
    bool needed;  /* on a path to an output */
} value_t;

/* A params tensor of a layer, written as "<net>/<layer>/<suffix>" at the end. */
typedef struct param {
    int layer;
    const char *suffix;
    hq_tensor_t *tensor;
} param_t;

/* Per-node plan made before conversion (pattern fusions). */
typedef struct node_plan {
    bool skip; /* folded into a later node's pattern */
    int act;   /* >= 0: the node is this activation applied to `act_input` */
    const char *act_input;
    const char **extra_names; /* node names of the pattern, for original_names */
    int extra_count;
    int x_uses; /* reads of act_input by the node itself (the others are skipped) */
} node_plan_t;

typedef struct ctx {
    const char *name; /* file name for messages */
    hq_error_t *err;
    Onnx__GraphProto *g;
    int64_t opset;
    hq_graph_t *graph;
    value_t *values;
    int value_count, value_cap;
    int *table; /* open-addressing hash of value indices, -1 empty */
    int table_cap;
    param_t *params;
    int param_count, param_cap;
    node_plan_t *plans;
    const char **plan_names; /* storage of every plan's extra_names */
    int counters[HQ_LAYER_TYPE_COUNT];
    int64_t limit;                  /* largest tensor new_tensor makes (smaller while folding) */
    const hq_shape_t *input_shapes; /* opts->input_shapes: NCHW shapes for the graph inputs */
    bool lift_1d; /* the node being converted is a 1-D conv/pool on a [N, C, L] tensor, rewritten
                     as 2-D with H = 1 (lift_1d_node): image_input and op_conv take rank 3 */
    int input_shape_count;
} ctx_t;

/* A planned input replacement (--start-node-names): tensor `name` becomes an input layer. */
typedef struct input_override {
    const char *name;
    int rank;
    int64_t dims[4];
} input_override_t;

/* ---- small helpers ---------------------------------------------------------------------- */

static const char *node_label(const Onnx__NodeProto *n)
{
    if (n->name && n->name[0])
        return n->name;
    if (n->n_output > 0 && n->output[0][0])
        return n->output[0];
    return "?";
}

static hq_status_t node_error(ctx_t *c, const Onnx__NodeProto *n, hq_status_t st, const char *what)
{
    return hqi_error(c->err, st, "%s: node '%s' (%s): %s", c->name, node_label(n),
                     n->op_type ? n->op_type : "?", what);
}

#define NODE_FAIL(c, n, st, ...)                                                                   \
    do {                                                                                           \
        char msg_[320];                                                                            \
        snprintf(msg_, sizeof msg_, __VA_ARGS__);                                                  \
        return node_error((c), (n), (st), msg_);                                                   \
    } while (0)

static uint64_t hash_string(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int find_value(const ctx_t *c, const char *name)
{
    if (!c->table_cap)
        return -1;
    size_t mask = (size_t)c->table_cap - 1;
    for (size_t i = hash_string(name) & mask;; i = (i + 1) & mask) {
        int v = c->table[i];
        if (v < 0)
            return -1;
        if (!strcmp(c->values[v].name, name))
            return v;
    }
}

static hq_status_t grow_table(ctx_t *c)
{
    int cap = c->table_cap ? c->table_cap * 2 : 256;
    int *table = malloc((size_t)cap * sizeof *table);
    if (!table)
        return hqi_nomem(c->err, c->name);
    for (int i = 0; i < cap; i++)
        table[i] = -1;
    size_t mask = (size_t)cap - 1;
    for (int v = 0; v < c->value_count; v++) {
        size_t i = hash_string(c->values[v].name) & mask;
        while (table[i] >= 0)
            i = (i + 1) & mask;
        table[i] = v;
    }
    free(c->table);
    c->table = table;
    c->table_cap = cap;
    return HQ_OK;
}

/* The value named `name`, created (unknown) when absent. */
static hq_status_t intern_value(ctx_t *c, const char *name, value_t **out)
{
    int v = find_value(c, name);
    if (v >= 0) {
        *out = &c->values[v];
        return HQ_OK;
    }
    if ((c->value_count + 1) * 2 > c->table_cap && grow_table(c) != HQ_OK)
        return HQ_ERR_NOMEM;
    if (c->value_count == c->value_cap) {
        int cap = c->value_cap ? c->value_cap * 2 : 128;
        value_t *values = realloc(c->values, (size_t)cap * sizeof *values);
        if (!values)
            return hqi_nomem(c->err, c->name);
        c->values = values;
        c->value_cap = cap;
    }
    value_t *val = &c->values[c->value_count];
    memset(val, 0, sizeof *val);
    val->producer = -1;
    val->name = hqi_strdup(name);
    if (!val->name)
        return hqi_nomem(c->err, c->name);
    size_t mask = (size_t)c->table_cap - 1;
    size_t i = hash_string(name) & mask;
    while (c->table[i] >= 0)
        i = (i + 1) & mask;
    c->table[i] = c->value_count++;
    *out = val;
    return HQ_OK;
}

static const Onnx__AttributeProto *find_attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name))
            return n->attribute[i];
    return NULL;
}

static int64_t attr_int(const Onnx__NodeProto *n, const char *name, int64_t fallback)
{
    const Onnx__AttributeProto *a = find_attr(n, name);
    return a ? a->i : fallback;
}

static float attr_float(const Onnx__NodeProto *n, const char *name, float fallback)
{
    const Onnx__AttributeProto *a = find_attr(n, name);
    return a ? a->f : fallback;
}

/* String attribute copied into `buf` (64 bytes, truncated); `fallback` when absent. */
static const char *attr_string_buf(const Onnx__NodeProto *n, const char *name, const char *fallback,
                                   char *buf)
{
    const Onnx__AttributeProto *a = find_attr(n, name);
    if (!a || !a->s.data)
        return fallback;
    size_t len = a->s.len < 63 ? a->s.len : 63;
    memcpy(buf, a->s.data, len);
    buf[len] = '\0';
    return buf;
}

#define attr_string(n, name, fallback) attr_string_buf((n), (name), (fallback), (char[64]){0})

/* Integer list attribute; *count = -1 when absent. */
static const int64_t *attr_ints(const Onnx__NodeProto *n, const char *name, int *count)
{
    const Onnx__AttributeProto *a = find_attr(n, name);
    if (!a) {
        *count = -1;
        return NULL;
    }
    *count = a->n_ints > 64 ? 64 : (int)a->n_ints;
    return a->ints;
}

static void param_destroy_all(ctx_t *c)
{
    for (int i = 0; i < c->param_count; i++)
        hq_tensor_destroy(c->params[i].tensor);
    free(c->params);
    c->params = NULL;
    c->param_count = c->param_cap = 0;
}

/* Stores `tensor` (taken over, also on failure) as a param of `layer`. */
static hq_status_t put_param(ctx_t *c, int layer, const char *suffix, hq_tensor_t *tensor)
{
    for (int i = 0; i < c->param_count; i++)
        if (c->params[i].layer == layer && !strcmp(c->params[i].suffix, suffix)) {
            hq_tensor_destroy(c->params[i].tensor);
            c->params[i].tensor = tensor;
            return HQ_OK;
        }
    if (c->param_count == c->param_cap) {
        int cap = c->param_cap ? c->param_cap * 2 : 64;
        param_t *params = realloc(c->params, (size_t)cap * sizeof *params);
        if (!params) {
            hq_tensor_destroy(tensor);
            return hqi_nomem(c->err, c->name);
        }
        c->params = params;
        c->param_cap = cap;
    }
    c->params[c->param_count++] = (param_t){layer, suffix, tensor};
    return HQ_OK;
}

static hq_tensor_t *get_param(ctx_t *c, int layer, const char *suffix)
{
    for (int i = c->param_count - 1; i >= 0; i--)
        if (c->params[i].layer == layer && !strcmp(c->params[i].suffix, suffix))
            return c->params[i].tensor;
    return NULL;
}

static double tensor_at(const hq_tensor_t *t, int64_t i)
{
    if (t->dtype == HQ_DTYPE_INT64)
        return (double)((const int64_t *)t->data)[i];
    return ((const float *)t->data)[i];
}

/* A double as an int64 without undefined behaviour: NaN is 0, out-of-range values saturate at
 * +-2^62 (far beyond any size or index the importer accepts, so the usual checks reject them). */
static int64_t to_int64(double v)
{
    const double limit = 4611686018427387904.0; /* 2^62 */
    if (v != v)
        return 0;
    return v > limit ? (int64_t)limit : v < -limit ? -(int64_t)limit : (int64_t)v;
}

/* Element i as an integer: int64 tensors exactly, float ones through to_int64. */
static int64_t tensor_int_at(const hq_tensor_t *t, int64_t i)
{
    if (t->dtype == HQ_DTYPE_INT64)
        return ((const int64_t *)t->data)[i];
    return to_int64(((const float *)t->data)[i]);
}

static hq_status_t new_tensor(ctx_t *c, hq_dtype_t dtype, int ndim, const int64_t *shape,
                              hq_tensor_t **out)
{
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0 || shape[d] > MAX_CONST_ELEMENTS)
            return hqi_error(c->err, HQ_ERR_LIMIT, "%s: tensor dimension %lld out of range",
                             c->name, (long long)shape[d]);
    int64_t count = 1;
    for (int d = 0; d < ndim; d++) {
        count *= shape[d];
        if (count > c->limit)
            return hqi_error(c->err, HQ_ERR_LIMIT, "%s: tensor of more than %lld elements", c->name,
                             (long long)c->limit);
    }
    return hq_tensor_create(dtype, ndim, shape, out, c->err);
}

/* ---- TensorProto decoding --------------------------------------------------------------- */

static hq_status_t decode_tensor(ctx_t *c, const Onnx__TensorProto *tp, const char *what,
                                 hq_tensor_t **out)
{
    *out = NULL;
    if (tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL || tp->n_external_data)
        return hqi_error(c->err, HQ_ERR_UNSUPPORTED,
                         "%s: tensor '%s' uses external data; save the model with the weights "
                         "inside the .onnx file",
                         c->name, what);
    if (tp->n_dims > HQ_TENSOR_MAX_DIMS)
        return hqi_error(c->err, HQ_ERR_UNSUPPORTED, "%s: tensor '%s' has rank %zu (at most %d)",
                         c->name, what, tp->n_dims, HQ_TENSOR_MAX_DIMS);
    int64_t shape[HQ_TENSOR_MAX_DIMS];
    for (size_t d = 0; d < tp->n_dims; d++) {
        if (tp->dims[d] < 0 || tp->dims[d] > MAX_CONST_ELEMENTS)
            return hqi_error(c->err, HQ_ERR_FORMAT, "%s: tensor '%s': dimension %lld is invalid",
                             c->name, what, (long long)tp->dims[d]);
        shape[d] = tp->dims[d];
    }
    int dt = tp->data_type;
    bool is_float = dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
                    dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ||
                    dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16;
    size_t esize;
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
        esize = 4;
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
        esize = 8;
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
        esize = 2;
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
        esize = 1;
        break;
    default:
        return hqi_error(c->err, HQ_ERR_UNSUPPORTED, "%s: tensor '%s': data type %d unsupported",
                         c->name, what, dt);
    }
    /* Check the data against the shape before allocating: a tiny file may claim a huge shape. */
    int64_t count = 1;
    for (size_t d = 0; d < tp->n_dims; d++) {
        count *= shape[d];
        if (count > MAX_CONST_ELEMENTS)
            return hqi_error(c->err, HQ_ERR_LIMIT, "%s: tensor '%s' has more than 2^31 elements",
                             c->name, what);
    }
    size_t have;
    if (tp->raw_data.len || (tp->has_raw_data && count == 0))
        have = tp->raw_data.len / esize;
    else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        have = tp->n_float_data;
    else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE)
        have = tp->n_double_data;
    else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
        have = tp->n_int64_data;
    else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__UINT64 ||
             dt == ONNX__TENSOR_PROTO__DATA_TYPE__UINT32)
        have = tp->n_uint64_data;
    else
        have = tp->n_int32_data;
    bool raw = tp->raw_data.len > 0;
    if ((raw && tp->raw_data.len != (size_t)count * esize) || (!raw && have != (size_t)count))
        return hqi_error(c->err, HQ_ERR_FORMAT,
                         "%s: tensor '%s': shape holds %lld elements, data has %zu", c->name, what,
                         (long long)count, raw ? tp->raw_data.len / esize : have);
    hq_tensor_t *t = NULL;
    hq_status_t st =
        new_tensor(c, is_float ? HQ_DTYPE_FLOAT32 : HQ_DTYPE_INT64, (int)tp->n_dims, shape, &t);
    if (st != HQ_OK)
        return st;
    float *f = is_float ? t->data : NULL;
    int64_t *q = is_float ? NULL : t->data;
    const uint8_t *r = tp->raw_data.data;
    for (int64_t i = 0; i < count; i++) {
        const uint8_t *p = raw ? r + (size_t)i * esize : NULL;
        switch (dt) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
            if (raw)
                memcpy(&f[i], p, 4);
            else
                f[i] = tp->float_data[i];
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: {
            double d;
            if (raw)
                memcpy(&d, p, 8);
            else
                d = tp->double_data[i];
            f[i] = (float)d;
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: {
            uint16_t h;
            if (raw)
                memcpy(&h, p, 2);
            else
                h = (uint16_t)tp->int32_data[i];
            f[i] = hqi_half_to_float(h);
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
        case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
            if (raw)
                memcpy(&q[i], p, 8);
            else
                q[i] = dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? tp->int64_data[i]
                                                                  : (int64_t)tp->uint64_data[i];
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: {
            int32_t v;
            if (raw)
                memcpy(&v, p, 4);
            else
                v = tp->int32_data[i];
            q[i] = v;
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: {
            uint32_t v;
            if (raw)
                memcpy(&v, p, 4);
            else
                v = (uint32_t)tp->uint64_data[i];
            q[i] = v;
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: {
            int16_t v;
            if (raw)
                memcpy(&v, p, 2);
            else
                v = (int16_t)tp->int32_data[i];
            q[i] = v;
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: {
            uint16_t v;
            if (raw)
                memcpy(&v, p, 2);
            else
                v = (uint16_t)tp->int32_data[i];
            q[i] = v;
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
            q[i] = raw ? (int8_t)p[0] : (int8_t)tp->int32_data[i];
            break;
        default: /* uint8, bool */
            q[i] = raw ? p[0] : (uint8_t)tp->int32_data[i];
            break;
        }
    }
    *out = t;
    return HQ_OK;
}

/* ---- values ----------------------------------------------------------------------------- */

static value_t *value_of(ctx_t *c, const char *name)
{
    int v = find_value(c, name);
    return v < 0 ? NULL : &c->values[v];
}

/* The one-line answer for an operator hq cannot map. */
static hq_status_t unsupported_node(ctx_t *c, const Onnx__NodeProto *n);

/* Input `i` of a node: NULL when absent (optional input left empty). Fails on an undefined name. */
static hq_status_t node_input(ctx_t *c, const Onnx__NodeProto *n, size_t i, value_t **out)
{
    *out = NULL;
    if (i >= n->n_input || !n->input[i][0])
        return HQ_OK;
    value_t *v = value_of(c, n->input[i]);
    if (!v || v->kind == VALUE_UNKNOWN)
        NODE_FAIL(c, n, HQ_ERR_INVALID,
                  "input '%s' is not an initializer, a graph input or the output of an earlier "
                  "node",
                  n->input[i]);
    *out = v;
    return HQ_OK;
}

static hq_status_t const_input(ctx_t *c, const Onnx__NodeProto *n, size_t i, bool required,
                               hq_tensor_t **out)
{
    value_t *v;
    *out = NULL;
    hq_status_t st = node_input(c, n, i, &v);
    if (st != HQ_OK)
        return st;
    if (!v) {
        if (required)
            NODE_FAIL(c, n, HQ_ERR_FORMAT, "input %zu is missing", i + 1);
        return HQ_OK;
    }
    if (v->kind != VALUE_CONST)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "input '%s' must be a constant (initializer)", v->name);
    *out = v->constant;
    return HQ_OK;
}

static hq_status_t set_const_output(ctx_t *c, const Onnx__NodeProto *n, size_t k, hq_tensor_t *t)
{
    if (k >= n->n_output || !n->output[k][0]) {
        hq_tensor_destroy(t);
        return HQ_OK;
    }
    value_t *v = value_of(c, n->output[k]);
    if (!v) {
        hq_tensor_destroy(t);
        return hqi_error(c->err, HQ_ERR_INVALID, "%s: output '%s' unknown", c->name, n->output[k]);
    }
    if (v->kind != VALUE_UNKNOWN) {
        hq_tensor_destroy(t);
        NODE_FAIL(c, n, HQ_ERR_INVALID, "output '%s' is produced twice", v->name);
    }
    v->kind = VALUE_CONST;
    v->constant = t;
    return HQ_OK;
}

static hq_status_t set_layer_output(ctx_t *c, const Onnx__NodeProto *n, size_t k, int layer,
                                    int port, int rank)
{
    if (k >= n->n_output || !n->output[k][0])
        return HQ_OK;
    value_t *v = value_of(c, n->output[k]);
    if (!v)
        return hqi_error(c->err, HQ_ERR_INVALID, "%s: output '%s' unknown", c->name, n->output[k]);
    if (v->kind != VALUE_UNKNOWN)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "output '%s' is produced twice", v->name);
    v->kind = VALUE_LAYER;
    v->layer = layer;
    v->port = port;
    v->rank = rank;
    v->flat = false;
    return HQ_OK;
}

static hq_status_t alias_output(ctx_t *c, const Onnx__NodeProto *n, const value_t *src)
{
    if (n->n_output < 1 || !n->output[0][0])
        return HQ_OK;
    value_t *v = value_of(c, n->output[0]);
    if (!v || v->kind != VALUE_UNKNOWN)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "output produced twice");
    if (src->kind == VALUE_CONST) {
        hq_tensor_t *t;
        hq_status_t st = hq_tensor_clone(src->constant, &t, c->err);
        if (st != HQ_OK)
            return st;
        v->kind = VALUE_CONST;
        v->constant = t;
        return HQ_OK;
    }
    v->kind = VALUE_LAYER;
    v->layer = src->layer;
    v->port = src->port;
    v->rank = src->rank;
    v->flat = src->flat;
    v->flat_c = src->flat_c;
    v->flat_h = src->flat_h;
    v->flat_w = src->flat_w;
    return HQ_OK;
}

static hq_status_t new_layer(ctx_t *c, hq_layer_type_t type, const Onnx__NodeProto *n, int *index)
{
    char bare[64];
    snprintf(bare, sizeof bare, "%s%d", hq_layer_type_name(type), ++c->counters[type]);
    hq_status_t st = hq_graph_add_layer(c->graph, bare, type, index, c->err);
    if (st == HQ_OK && n)
        st = hq_layer_add_original_name(c->graph, *index, node_label(n), c->err);
    return st;
}

static hq_layer_params_t *lp(ctx_t *c, int index)
{
    return &hq_graph_layer_mut(c->graph, index)->params;
}

static hq_status_t ensure_finalized(ctx_t *c)
{
    if (hq_graph_is_finalized(c->graph))
        return HQ_OK;
    return hq_graph_finalize(c->graph, c->name, c->err);
}

/* The hq (NHWC) shape of a layer value, materialized or not. */
static hq_status_t hq_shape_of(ctx_t *c, const value_t *v, hq_shape_t *shape)
{
    hq_status_t st = ensure_finalized(c);
    if (st != HQ_OK)
        return st;
    *shape = hq_layer_port_shape(hq_graph_layer(c->graph, v->layer), v->port);
    return HQ_OK;
}

/* The ONNX (NCHW) shape of a layer value, batch reported as 1. */
static hq_status_t onnx_shape_of(ctx_t *c, const value_t *v, int *rank, int64_t dims[4])
{
    if (v->flat) {
        *rank = 2;
        dims[0] = 1;
        dims[1] = v->flat_c * v->flat_h * v->flat_w;
        return HQ_OK;
    }
    hq_shape_t s;
    hq_status_t st = hq_shape_of(c, v, &s);
    if (st != HQ_OK)
        return st;
    if (s.ndim == 4 && v->rank == 3 && s.dims[1] == 1) {
        *rank = 3;
        dims[0] = 1;
        dims[1] = s.dims[3];
        dims[2] = s.dims[2];
        dims[3] = 1;
    } else if (s.ndim == 4) {
        *rank = 4;
        dims[0] = 1;
        dims[1] = s.dims[3];
        dims[2] = s.dims[1];
        dims[3] = s.dims[2];
    } else if (s.ndim == 2) {
        *rank = 2;
        dims[0] = 1;
        dims[1] = s.dims[1];
    } else {
        return hqi_error(c->err, HQ_ERR_UNSUPPORTED, "%s: tensor '%s' has rank %d", c->name,
                         v->name, s.ndim);
    }
    return HQ_OK;
}

static hq_status_t add_reshape(ctx_t *c, const value_t *from, const hq_shape_t *to, int *index)
{
    hq_status_t st = new_layer(c, HQ_LAYER_RESHAPE, NULL, index);
    if (st == HQ_OK)
        st = hq_graph_connect(c->graph, from->layer, from->port, *index, c->err);
    if (st == HQ_OK)
        st = hq_layer_set_output_shape(c->graph, *index, to, c->err);
    return st;
}

static hq_status_t add_transpose(ctx_t *c, int layer, int port, const int *perm, int ndim,
                                 int *index)
{
    hq_status_t st = new_layer(c, HQ_LAYER_TRANSPOSE, NULL, index);
    if (st == HQ_OK)
        st = hq_graph_connect(c->graph, layer, port, *index, c->err);
    if (st == HQ_OK)
        for (int d = 0; d < ndim; d++)
            lp(c, *index)->perm[d] = perm[d];
    return st;
}

/* Turns a pending NCHW flatten into layers: NHWC -> NCHW order (transpose) -> [-1, C*H*W]. */
static hq_status_t materialize(ctx_t *c, value_t *v)
{
    if (v->kind != VALUE_LAYER || !v->flat)
        return HQ_OK;
    int layer = v->layer, port = v->port, index;
    hq_status_t st;
    if (v->flat_h * v->flat_w != 1 && v->flat_c != 1) {
        static const int to_nchw[4] = {0, 3, 1, 2};
        st = add_transpose(c, layer, port, to_nchw, 4, &index);
        if (st != HQ_OK)
            return st;
        layer = index;
        port = 0;
    }
    value_t tmp = *v;
    tmp.layer = layer;
    tmp.port = port;
    hq_shape_t to = {2, {-1, v->flat_c * v->flat_h * v->flat_w}};
    st = add_reshape(c, &tmp, &to, &index);
    if (st != HQ_OK)
        return st;
    v->layer = index;
    v->port = 0;
    v->flat = false;
    return HQ_OK;
}

/* Input `i` as a layer tensor (materialized). */
static hq_status_t layer_input(ctx_t *c, const Onnx__NodeProto *n, size_t i, value_t **out)
{
    hq_status_t st = node_input(c, n, i, out);
    if (st != HQ_OK)
        return st;
    if (!*out)
        NODE_FAIL(c, n, HQ_ERR_FORMAT, "input %zu is missing", i + 1);
    if ((*out)->kind != VALUE_LAYER)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "input '%s' is a constant; hq needs a computed tensor",
                  (*out)->name);
    return materialize(c, *out);
}

static hq_status_t connect_value(ctx_t *c, const value_t *v, int consumer)
{
    return hq_graph_connect(c->graph, v->layer, v->port, consumer, c->err);
}

/* Reads of a layer output still to come: the uses left on every value naming it (aliases made
 * by Identity, Flatten, fusions... share the layer). A node's reads are subtracted once the node
 * is converted, so the current node's own reads are still counted. */
static int pending_reads(const ctx_t *c, int layer, int port)
{
    int reads = 0;
    for (int i = 0; i < c->value_count; i++) {
        const value_t *v = &c->values[i];
        if (v->kind == VALUE_LAYER && v->layer == layer && v->port == port)
            reads += v->uses;
    }
    return reads;
}

/* True when the current node, reading `v` `reads` times, is the only reader of v's layer output
 * (no layer consumes it yet, no later node reads it), so that the layer can absorb what the node
 * does (weights, activation). */
static bool sole_reader(const ctx_t *c, const value_t *v, int reads)
{
    return v->kind == VALUE_LAYER && !v->flat && v->port == 0 &&
           hq_graph_layer(c->graph, v->layer)->output_count == 0 &&
           pending_reads(c, v->layer, v->port) == reads;
}

/* ONNX axis (may be negative) of a rank-`rank` tensor -> NHWC axis; -1 when not mappable. */
static int map_axis(int64_t axis, int rank)
{
    if (axis < 0)
        axis += rank;
    if (axis <= 0 || axis >= rank)
        return -1;
    if (rank == 4) {
        static const int nchw_to_nhwc[4] = {0, 3, 1, 2};
        return nchw_to_nhwc[axis];
    }
    if (rank == 3) { /* [N, C, L] is held as [-1, 1, L, C] */
        static const int ncl_to_nhwc[3] = {0, 3, 2};
        return ncl_to_nhwc[axis];
    }
    return (int)axis;
}

/* ---- constant folding ------------------------------------------------------------------- */

static hq_status_t ints_of(ctx_t *c, const Onnx__NodeProto *n, const hq_tensor_t *t, int64_t *out,
                           int max, int *count)
{
    int64_t k = hq_tensor_count(t);
    if (t->ndim > 1 || k > max)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "expected a list of at most %d integers", max);
    for (int64_t i = 0; i < k; i++)
        out[i] = tensor_int_at(t, i);
    *count = (int)k;
    return HQ_OK;
}

static void strides_of(const hq_tensor_t *t, int64_t *strides)
{
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        strides[d] = s;
        s *= t->shape[d];
    }
}

static void put_at(hq_tensor_t *t, int64_t i, double v)
{
    if (t->dtype == HQ_DTYPE_INT64)
        ((int64_t *)t->data)[i] = to_int64(v);
    else
        ((float *)t->data)[i] = (float)v;
}

static hq_status_t fold_binary(ctx_t *c, const Onnx__NodeProto *n, const hq_tensor_t *a,
                               const hq_tensor_t *b, char op)
{
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t shape[HQ_TENSOR_MAX_DIMS], sa[HQ_TENSOR_MAX_DIMS], sb[HQ_TENSOR_MAX_DIMS];
    int64_t as[HQ_TENSOR_MAX_DIMS], bs[HQ_TENSOR_MAX_DIMS];
    strides_of(a, as);
    strides_of(b, bs);
    for (int d = 0; d < nd; d++) {
        int da = d - (nd - a->ndim), db = d - (nd - b->ndim);
        int64_t ea = da >= 0 ? a->shape[da] : 1, eb = db >= 0 ? b->shape[db] : 1;
        if (ea != eb && ea != 1 && eb != 1)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "operands do not broadcast");
        shape[d] = ea == 1 ? eb : ea;
        sa[d] = (da >= 0 && ea != 1) ? as[da] : 0;
        sb[d] = (db >= 0 && eb != 1) ? bs[db] : 0;
    }
    hq_dtype_t dt = (a->dtype == HQ_DTYPE_INT64 && b->dtype == HQ_DTYPE_INT64) ? HQ_DTYPE_INT64
                                                                               : HQ_DTYPE_FLOAT32;
    hq_tensor_t *t;
    hq_status_t st = new_tensor(c, dt, nd, shape, &t);
    if (st != HQ_OK)
        return st;
    int64_t count = hq_tensor_count(t), idx[HQ_TENSOR_MAX_DIMS] = {0};
    for (int64_t i = 0; i < count; i++) {
        int64_t ia = 0, ib = 0;
        for (int d = 0; d < nd; d++) {
            ia += idx[d] * sa[d];
            ib += idx[d] * sb[d];
        }
        double x = tensor_at(a, ia), y = tensor_at(b, ib), r;
        switch (op) {
        case '+':
            r = x + y;
            break;
        case '-':
            r = x - y;
            break;
        case '*':
            r = x * y;
            break;
        default:
            if (dt == HQ_DTYPE_INT64)
                r = y == 0 ? 0 : (double)((int64_t)x / (int64_t)y);
            else
                r = x / y;
            break;
        }
        put_at(t, i, r);
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < shape[d])
                break;
            idx[d] = 0;
        }
    }
    return set_const_output(c, n, 0, t);
}

/* Normalized axes list from the `axes` attribute or input 1 (opset 13). */
static hq_status_t axes_of(ctx_t *c, const Onnx__NodeProto *n, int rank, int64_t *axes, int *count)
{
    int k;
    const int64_t *a = attr_ints(n, "axes", &k);
    if (k >= 0) {
        for (int i = 0; i < k; i++)
            axes[i] = a[i];
        *count = k;
    } else {
        hq_tensor_t *t;
        hq_status_t st = const_input(c, n, 1, false, &t);
        if (st != HQ_OK)
            return st;
        *count = 0;
        if (t && (st = ints_of(c, n, t, axes, HQ_TENSOR_MAX_DIMS, count)) != HQ_OK)
            return st;
    }
    for (int i = 0; i < *count; i++) {
        if (axes[i] < 0)
            axes[i] += rank;
        if (axes[i] < 0 || axes[i] >= rank)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "axis %lld out of range for rank %d",
                      (long long)axes[i], rank);
    }
    return HQ_OK;
}

static hq_status_t fold_reshape_to(ctx_t *c, const Onnx__NodeProto *n, const hq_tensor_t *src,
                                   int nd, const int64_t *shape)
{
    if (nd > HQ_TENSOR_MAX_DIMS)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "rank %d", nd);
    hq_tensor_t *t;
    hq_status_t st = new_tensor(c, src->dtype, nd, shape, &t);
    if (st != HQ_OK)
        return st;
    if (t->nbytes != src->nbytes) {
        hq_tensor_destroy(t);
        NODE_FAIL(c, n, HQ_ERR_INVALID, "reshape changes the element count");
    }
    if (t->nbytes)
        memcpy(t->data, src->data, t->nbytes);
    return set_const_output(c, n, 0, t);
}

/* Resolves a Reshape target (0 = copy, -1 = infer) against `in` dims. */
static hq_status_t reshape_target(ctx_t *c, const Onnx__NodeProto *n, const int64_t *in, int in_nd,
                                  const hq_tensor_t *shape_t, int64_t *out, int *out_nd)
{
    hq_status_t st = ints_of(c, n, shape_t, out, HQ_TENSOR_MAX_DIMS, out_nd);
    if (st != HQ_OK)
        return st;
    int64_t total = 1, known = 1;
    for (int d = 0; d < in_nd; d++)
        total *= in[d];
    int infer = -1;
    for (int d = 0; d < *out_nd; d++) {
        if (out[d] == 0 && !attr_int(n, "allowzero", 0)) {
            if (d >= in_nd)
                NODE_FAIL(c, n, HQ_ERR_INVALID, "shape copies dimension %d of a rank-%d input", d,
                          in_nd);
            out[d] = in[d];
        }
        if (out[d] == -1) {
            if (infer >= 0)
                NODE_FAIL(c, n, HQ_ERR_INVALID, "shape has two -1 entries");
            infer = d;
            continue;
        }
        if (out[d] < 0 || out[d] > MAX_CONST_ELEMENTS)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "shape entry %lld", (long long)out[d]);
        known *= out[d];
        if (known > MAX_CONST_ELEMENTS)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "shape too large");
    }
    if (infer >= 0) {
        if (known == 0 || total % known)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "cannot infer the -1 dimension");
        out[infer] = total / known;
        known = total;
    }
    if (known != total)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "reshape from %lld to %lld elements", (long long)total,
                  (long long)known);
    return HQ_OK;
}

static hq_status_t fold_slice(ctx_t *c, const Onnx__NodeProto *n, const hq_tensor_t *src,
                              const int64_t *starts, const int64_t *ends, const int64_t *axes,
                              const int64_t *steps, int k)
{
    int nd = src->ndim;
    int64_t begin[HQ_TENSOR_MAX_DIMS], step[HQ_TENSOR_MAX_DIMS], shape[HQ_TENSOR_MAX_DIMS];
    for (int d = 0; d < nd; d++) {
        begin[d] = 0;
        step[d] = 1;
        shape[d] = src->shape[d];
    }
    for (int i = 0; i < k; i++) {
        int64_t ax = axes[i] < 0 ? axes[i] + nd : axes[i];
        if (ax < 0 || ax >= nd || steps[i] == 0)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "slice axis or step out of range");
        int64_t dim = src->shape[ax], s = starts[i], e = ends[i], st = steps[i];
        if (s < 0)
            s += dim;
        if (e < 0)
            e += dim;
        if (st > 0) {
            s = s < 0 ? 0 : s > dim ? dim : s;
            e = e < 0 ? 0 : e > dim ? dim : e;
            shape[ax] = e > s ? (e - s + st - 1) / st : 0;
        } else {
            s = s < 0 ? -1 : s > dim - 1 ? dim - 1 : s;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
            shape[ax] = s > e ? (s - e - st - 1) / -st : 0;
        }
        begin[ax] = s;
        step[ax] = st;
    }
    hq_tensor_t *t;
    hq_status_t st = new_tensor(c, src->dtype, nd, shape, &t);
    if (st != HQ_OK)
        return st;
    int64_t strides[HQ_TENSOR_MAX_DIMS], idx[HQ_TENSOR_MAX_DIMS] = {0};
    strides_of(src, strides);
    int64_t count = hq_tensor_count(t);
    for (int64_t i = 0; i < count; i++) {
        int64_t off = 0;
        for (int d = 0; d < nd; d++)
            off += (begin[d] + idx[d] * step[d]) * strides[d];
        put_at(t, i, tensor_at(src, off));
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < shape[d])
                break;
            idx[d] = 0;
        }
    }
    return set_const_output(c, n, 0, t);
}

/* Slice parameters from attributes (opset < 10) or inputs. */
static hq_status_t slice_params(ctx_t *c, const Onnx__NodeProto *n, int rank, int64_t *starts,
                                int64_t *ends, int64_t *axes, int64_t *steps, int *k)
{
    int ks = 0, ke = 0, ka = -1, kp = -1;
    const int64_t *a = attr_ints(n, "starts", &ks);
    hq_status_t st;
    if (ks >= 0) {
        const int64_t *e = attr_ints(n, "ends", &ke);
        const int64_t *x = attr_ints(n, "axes", &ka);
        if (ke != ks || ks > HQ_TENSOR_MAX_DIMS || (ka >= 0 && ka != ks))
            NODE_FAIL(c, n, HQ_ERR_INVALID, "starts, ends and axes differ in length");
        for (int i = 0; i < ks; i++) {
            starts[i] = a[i];
            ends[i] = e[i];
            axes[i] = ka >= 0 ? x[i] : i;
            steps[i] = 1;
        }
        *k = ks;
    } else {
        hq_tensor_t *ts, *te, *ta, *tp;
        if ((st = const_input(c, n, 1, true, &ts)) != HQ_OK ||
            (st = const_input(c, n, 2, true, &te)) != HQ_OK ||
            (st = const_input(c, n, 3, false, &ta)) != HQ_OK ||
            (st = const_input(c, n, 4, false, &tp)) != HQ_OK)
            return st;
        if ((st = ints_of(c, n, ts, starts, HQ_TENSOR_MAX_DIMS, &ks)) != HQ_OK ||
            (st = ints_of(c, n, te, ends, HQ_TENSOR_MAX_DIMS, &ke)) != HQ_OK ||
            (ta && (st = ints_of(c, n, ta, axes, HQ_TENSOR_MAX_DIMS, &ka)) != HQ_OK) ||
            (tp && (st = ints_of(c, n, tp, steps, HQ_TENSOR_MAX_DIMS, &kp)) != HQ_OK))
            return st;
        if (ke != ks || (ta && ka != ks) || (tp && kp != ks))
            NODE_FAIL(c, n, HQ_ERR_INVALID, "starts, ends, axes and steps differ in length");
        for (int i = 0; i < ks; i++) {
            if (!ta)
                axes[i] = i;
            if (!tp)
                steps[i] = 1;
        }
        *k = ks;
    }
    for (int i = 0; i < *k; i++) {
        /* INT64_MAX style sentinels: clamp to something sane before arithmetic. */
        if (starts[i] > MAX_CONST_ELEMENTS)
            starts[i] = MAX_CONST_ELEMENTS;
        if (starts[i] < -MAX_CONST_ELEMENTS)
            starts[i] = -MAX_CONST_ELEMENTS;
        if (ends[i] > MAX_CONST_ELEMENTS)
            ends[i] = MAX_CONST_ELEMENTS;
        if (ends[i] < -MAX_CONST_ELEMENTS)
            ends[i] = -MAX_CONST_ELEMENTS;
        if (steps[i] > MAX_CONST_ELEMENTS || steps[i] < -MAX_CONST_ELEMENTS)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "step out of range");
        if (axes[i] < -rank || axes[i] >= rank)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "axis %lld out of range", (long long)axes[i]);
    }
    return HQ_OK;
}

/* Folds a node whose data inputs are all constants. *done = false when the op does not fold. */
static hq_status_t fold_node_inner(ctx_t *c, const Onnx__NodeProto *n, bool *done)
{
    const char *op = n->op_type;
    *done = false;
    hq_tensor_t *in[4] = {0};
    for (size_t i = 0; i < n->n_input && i < 4; i++) {
        value_t *v;
        hq_status_t st = node_input(c, n, i, &v);
        if (st != HQ_OK)
            return st;
        if (v && v->kind != VALUE_CONST)
            return HQ_OK;
        in[i] = v ? v->constant : NULL;
    }
    if (n->n_input == 0 || !in[0])
        return HQ_OK;
    hq_tensor_t *a = in[0], *t = NULL;
    hq_status_t st;
    *done = true;
    if (!strcmp(op, "Identity") || !strcmp(op, "Dropout"))
        return alias_output(c, n, value_of(c, n->input[0]));
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div")) {
        if (!in[1])
            NODE_FAIL(c, n, HQ_ERR_FORMAT, "needs two inputs");
        return fold_binary(c, n, a, in[1],
                           op[0] == 'A'   ? '+'
                           : op[0] == 'S' ? '-'
                           : op[0] == 'M' ? '*'
                                          : '/');
    }
    if (!strcmp(op, "Neg") || !strcmp(op, "Sqrt") || !strcmp(op, "Floor") || !strcmp(op, "Ceil") ||
        !strcmp(op, "Reciprocal")) {
        if ((st = hq_tensor_clone(a, &t, c->err)) != HQ_OK)
            return st;
        for (int64_t i = 0; i < hq_tensor_count(t); i++) {
            double x = tensor_at(a, i);
            double r = op[0] == 'N'   ? -x
                       : op[0] == 'S' ? sqrt(x)
                       : op[0] == 'F' ? floor(x)
                       : op[0] == 'C' ? ceil(x)
                                      : 1.0 / x;
            put_at(t, i, r);
        }
        return set_const_output(c, n, 0, t);
    }
    if (!strcmp(op, "Shape")) {
        int64_t dims[HQ_TENSOR_MAX_DIMS];
        for (int d = 0; d < a->ndim; d++)
            dims[d] = a->shape[d];
        int64_t len = a->ndim;
        if ((st = new_tensor(c, HQ_DTYPE_INT64, 1, &len, &t)) != HQ_OK)
            return st;
        memcpy(t->data, dims, (size_t)len * sizeof(int64_t));
        return set_const_output(c, n, 0, t);
    }
    if (!strcmp(op, "Cast")) {
        int64_t to = attr_int(n, "to", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
        bool fl = to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
                  to == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ||
                  to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16;
        if ((st = new_tensor(c, fl ? HQ_DTYPE_FLOAT32 : HQ_DTYPE_INT64, a->ndim, a->shape, &t)) !=
            HQ_OK)
            return st;
        for (int64_t i = 0; i < hq_tensor_count(t); i++) {
            double x = tensor_at(a, i);
            if (!fl && !(x > -9.2e18 && x < 9.2e18))
                x = 0;
            put_at(t, i, x);
        }
        return set_const_output(c, n, 0, t);
    }
    if (!strcmp(op, "ConstantOfShape")) {
        int64_t shape[HQ_TENSOR_MAX_DIMS];
        int nd = 0;
        if ((st = ints_of(c, n, a, shape, HQ_TENSOR_MAX_DIMS, &nd)) != HQ_OK)
            return st;
        const Onnx__AttributeProto *va = find_attr(n, "value");
        hq_tensor_t *fill = NULL;
        if (va && va->t && (st = decode_tensor(c, va->t, "value", &fill)) != HQ_OK)
            return st;
        st = new_tensor(c, fill ? fill->dtype : HQ_DTYPE_FLOAT32, nd, shape, &t);
        if (st == HQ_OK && fill && hq_tensor_count(fill) >= 1)
            for (int64_t i = 0; i < hq_tensor_count(t); i++)
                put_at(t, i, tensor_at(fill, 0));
        hq_tensor_destroy(fill);
        if (st != HQ_OK)
            return st;
        return set_const_output(c, n, 0, t);
    }
    if (!strcmp(op, "Gather")) {
        if (!in[1])
            NODE_FAIL(c, n, HQ_ERR_FORMAT, "needs indices");
        hq_tensor_t *ix = in[1];
        int64_t axis = attr_int(n, "axis", 0);
        if (axis < 0)
            axis += a->ndim;
        if (axis < 0 || axis >= a->ndim || a->ndim - 1 + ix->ndim > HQ_TENSOR_MAX_DIMS)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "axis out of range");
        int64_t shape[HQ_TENSOR_MAX_DIMS];
        int nd = 0;
        for (int d = 0; d < axis; d++)
            shape[nd++] = a->shape[d];
        for (int d = 0; d < ix->ndim; d++)
            shape[nd++] = ix->shape[d];
        for (int d = (int)axis + 1; d < a->ndim; d++)
            shape[nd++] = a->shape[d];
        if ((st = new_tensor(c, a->dtype, nd, shape, &t)) != HQ_OK)
            return st;
        int64_t outer = 1, inner = 1, dim = a->shape[axis], nix = hq_tensor_count(ix);
        for (int d = 0; d < axis; d++)
            outer *= a->shape[d];
        for (int d = (int)axis + 1; d < a->ndim; d++)
            inner *= a->shape[d];
        for (int64_t o = 0; o < outer; o++)
            for (int64_t j = 0; j < nix; j++) {
                int64_t k = tensor_int_at(ix, j);
                if (k < 0)
                    k += dim;
                if (k < 0 || k >= dim) {
                    hq_tensor_destroy(t);
                    NODE_FAIL(c, n, HQ_ERR_INVALID, "index out of range");
                }
                for (int64_t i = 0; i < inner; i++)
                    put_at(t, (o * nix + j) * inner + i, tensor_at(a, (o * dim + k) * inner + i));
            }
        return set_const_output(c, n, 0, t);
    }
    if (!strcmp(op, "Unsqueeze") || !strcmp(op, "Squeeze")) {
        bool un = op[0] == 'U';
        int64_t axes[HQ_TENSOR_MAX_DIMS];
        int k, kk, out_nd = a->ndim;
        (void)attr_ints(n, "axes", &kk);
        int64_t count = kk >= 0 ? kk : (in[1] ? hq_tensor_count(in[1]) : 0);
        if (un)
            out_nd = a->ndim + (int)(count > HQ_TENSOR_MAX_DIMS ? HQ_TENSOR_MAX_DIMS + 1 : count);
        if (out_nd > HQ_TENSOR_MAX_DIMS || count > HQ_TENSOR_MAX_DIMS)
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "rank too large");
        if ((st = axes_of(c, n, un ? out_nd : a->ndim, axes, &k)) != HQ_OK)
            return st;
        int64_t shape[HQ_TENSOR_MAX_DIMS];
        int nd = 0;
        if (un) {
            bool is_new[HQ_TENSOR_MAX_DIMS] = {0};
            for (int i = 0; i < k; i++)
                is_new[axes[i]] = true;
            for (int d = 0, s = 0; d < out_nd; d++)
                shape[nd++] = is_new[d] ? 1 : (s < a->ndim ? a->shape[s++] : 1);
        } else {
            for (int d = 0; d < a->ndim; d++) {
                bool drop = false;
                for (int i = 0; i < k; i++)
                    drop |= axes[i] == d;
                if (k == 0)
                    drop = a->shape[d] == 1;
                if (!drop)
                    shape[nd++] = a->shape[d];
            }
        }
        return fold_reshape_to(c, n, a, nd, shape);
    }
    if (!strcmp(op, "Reshape")) {
        if (!in[1])
            NODE_FAIL(c, n, HQ_ERR_FORMAT, "needs a shape");
        int64_t shape[HQ_TENSOR_MAX_DIMS];
        int nd;
        if ((st = reshape_target(c, n, a->shape, a->ndim, in[1], shape, &nd)) != HQ_OK)
            return st;
        return fold_reshape_to(c, n, a, nd, shape);
    }
    if (!strcmp(op, "Flatten")) {
        int64_t axis = attr_int(n, "axis", 1);
        if (axis < 0)
            axis += a->ndim;
        if (axis < 0 || axis > a->ndim)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "axis out of range");
        int64_t shape[2] = {1, 1};
        for (int d = 0; d < a->ndim; d++)
            shape[d < axis ? 0 : 1] *= a->shape[d];
        return fold_reshape_to(c, n, a, 2, shape);
    }
    if (!strcmp(op, "Concat")) {
        int64_t axis = attr_int(n, "axis", 0);
        if (axis < 0)
            axis += a->ndim;
        if (axis < 0 || axis >= a->ndim)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "axis out of range");
        int64_t shape[HQ_TENSOR_MAX_DIMS];
        memcpy(shape, a->shape, sizeof shape);
        shape[axis] = 0;
        bool any_float = false;
        for (size_t i = 0; i < n->n_input; i++) {
            value_t *v = value_of(c, n->input[i]);
            if (!v || v->kind != VALUE_CONST)
                return *done = false, HQ_OK;
            hq_tensor_t *x = v->constant;
            if (x->ndim != a->ndim)
                NODE_FAIL(c, n, HQ_ERR_INVALID, "inputs differ in rank");
            for (int d = 0; d < a->ndim; d++)
                if (d != axis && x->shape[d] != a->shape[d])
                    NODE_FAIL(c, n, HQ_ERR_INVALID, "inputs differ in shape");
            shape[axis] += x->shape[axis];
            any_float |= x->dtype == HQ_DTYPE_FLOAT32;
        }
        if ((st = new_tensor(c, any_float ? HQ_DTYPE_FLOAT32 : HQ_DTYPE_INT64, a->ndim, shape,
                             &t)) != HQ_OK)
            return st;
        int64_t outer = 1, inner = 1, pos = 0;
        for (int d = 0; d < axis; d++)
            outer *= a->shape[d];
        for (int d = (int)axis + 1; d < a->ndim; d++)
            inner *= a->shape[d];
        for (size_t i = 0; i < n->n_input; i++) {
            hq_tensor_t *x = value_of(c, n->input[i])->constant;
            int64_t ext = x->shape[axis];
            for (int64_t o = 0; o < outer; o++)
                for (int64_t j = 0; j < ext * inner; j++)
                    put_at(t, (o * shape[axis] + pos) * inner + j,
                           tensor_at(x, o * ext * inner + j));
            pos += ext;
        }
        return set_const_output(c, n, 0, t);
    }
    if (!strcmp(op, "Slice")) {
        int64_t starts[HQ_TENSOR_MAX_DIMS], ends[HQ_TENSOR_MAX_DIMS], axes[HQ_TENSOR_MAX_DIMS],
            steps[HQ_TENSOR_MAX_DIMS];
        int k;
        if ((st = slice_params(c, n, a->ndim, starts, ends, axes, steps, &k)) != HQ_OK)
            return st;
        return fold_slice(c, n, a, starts, ends, axes, steps, k);
    }
    if (!strcmp(op, "Transpose")) {
        int k;
        const int64_t *perm = attr_ints(n, "perm", &k);
        int p[HQ_TENSOR_MAX_DIMS];
        for (int d = 0; d < a->ndim; d++)
            p[d] = k >= 0 ? (int)(d < k ? perm[d] : -1) : a->ndim - 1 - d;
        int64_t shape[HQ_TENSOR_MAX_DIMS], strides[HQ_TENSOR_MAX_DIMS],
            idx[HQ_TENSOR_MAX_DIMS] = {0};
        bool seen[HQ_TENSOR_MAX_DIMS] = {0};
        if (k >= 0 && k != a->ndim)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "perm has %d entries for rank %d", k, a->ndim);
        for (int d = 0; d < a->ndim; d++) {
            if (p[d] < 0 || p[d] >= a->ndim || seen[p[d]])
                NODE_FAIL(c, n, HQ_ERR_INVALID, "perm is not a permutation");
            seen[p[d]] = true;
            shape[d] = a->shape[p[d]];
        }
        strides_of(a, strides);
        if ((st = new_tensor(c, a->dtype, a->ndim, shape, &t)) != HQ_OK)
            return st;
        for (int64_t i = 0; i < hq_tensor_count(t); i++) {
            int64_t off = 0;
            for (int d = 0; d < a->ndim; d++)
                off += idx[d] * strides[p[d]];
            put_at(t, i, tensor_at(a, off));
            for (int d = a->ndim - 1; d >= 0; d--) {
                if (++idx[d] < shape[d])
                    break;
                idx[d] = 0;
            }
        }
        return set_const_output(c, n, 0, t);
    }
    *done = false;
    return HQ_OK;
}

/* Computed constants are shapes and small tables: a tight size limit keeps a tiny hostile
 * model (ConstantOfShape of a huge shape) from allocating gigabytes. */
#define MAX_FOLDED_ELEMENTS ((int64_t)1 << 24)

static hq_status_t fold_node(ctx_t *c, const Onnx__NodeProto *n, bool *done)
{
    int64_t saved = c->limit;
    c->limit = MAX_FOLDED_ELEMENTS;
    hq_status_t st = fold_node_inner(c, n, done);
    c->limit = saved;
    return st;
}

/* An open clip bound. The .hn format keeps floats within +-3e38, so "no bound" is 1e38. */
#define CLIP_OPEN 1e38f

/* ---- activations ------------------------------------------------------------------------ */

static bool has_activation_field(hq_layer_type_t t)
{
    switch (t) {
    case HQ_LAYER_CONV:
    case HQ_LAYER_DW:
    case HQ_LAYER_DECONV:
    case HQ_LAYER_DENSE:
    case HQ_LAYER_BATCH_NORM:
    case HQ_LAYER_EW_ADD:
    case HQ_LAYER_EW_SUB:
    case HQ_LAYER_EW_MULT:
    case HQ_LAYER_EW_DIV:
    case HQ_LAYER_EW_MAX:
    case HQ_LAYER_EW_MIN:
    case HQ_LAYER_ACTIVATION:
        return true;
    default:
        return false;
    }
}

/* Channel count of a layer value (ONNX dim 1). */
static hq_status_t channels_of(ctx_t *c, const value_t *v, int64_t *channels)
{
    int rank;
    int64_t dims[4];
    hq_status_t st = onnx_shape_of(c, v, &rank, dims);
    *channels = dims[1];
    return st;
}

/* A constant that broadcasts against a rank-`rank` tensor with `channels` channels as a scalar or
 * a per-channel vector: *vec (caller frees) gets `channels` values. false when it is neither. */
static bool channel_vector(const hq_tensor_t *t, int rank, int64_t channels, float **vec)
{
    *vec = NULL;
    if (t->ndim > rank)
        return false;
    int64_t per = 1;
    for (int d = 0; d < t->ndim; d++) {
        int axis = d + rank - t->ndim;
        if (axis == 1)
            per = t->shape[d];
        else if (t->shape[d] != 1)
            return false;
    }
    if (per != 1 && per != channels)
        return false;
    float *v = malloc((size_t)(channels > 0 ? channels : 1) * sizeof *v);
    if (!v)
        return false;
    for (int64_t i = 0; i < channels; i++)
        v[i] = (float)tensor_at(t, per == 1 ? 0 : i);
    *vec = v;
    return true;
}

static hq_status_t vector_tensor(ctx_t *c, const float *v, int64_t count, hq_tensor_t **out)
{
    hq_status_t st = new_tensor(c, HQ_DTYPE_FLOAT32, 1, &count, out);
    if (st == HQ_OK && count)
        memcpy((*out)->data, v, (size_t)count * sizeof *v);
    return st;
}

/* Applies activation `act` to value x on behalf of node n: fused into x's producer when n is its
 * only consumer, else a standalone activation layer. `slope` (prelu, per channel) is copied. */
static hq_status_t apply_activation(ctx_t *c, const Onnx__NodeProto *n, value_t *x,
                                    hq_activation_t act, float alpha, float beta,
                                    const float *slope, int uses_here)
{
    if (!isfinite(alpha) && !(act == HQ_ACT_CLIP && isinf(alpha) && alpha < 0))
        NODE_FAIL(c, n, HQ_ERR_INVALID, "activation parameter %g is not a finite number", alpha);
    if (!isfinite(beta) && !(act == HQ_ACT_CLIP && isinf(beta) && beta > 0))
        NODE_FAIL(c, n, HQ_ERR_INVALID, "activation parameter %g is not a finite number", beta);
    /* hq stores clip bounds as finite floats: an open side is +-CLIP_OPEN. */
    if (alpha < -CLIP_OPEN)
        alpha = -CLIP_OPEN;
    if (beta > CLIP_OPEN)
        beta = CLIP_OPEN;
    if (act != HQ_ACT_CLIP && (fabsf(alpha) > CLIP_OPEN || fabsf(beta) > CLIP_OPEN))
        NODE_FAIL(c, n, HQ_ERR_INVALID, "activation parameter out of range");
    hq_status_t st = materialize(c, x);
    if (st != HQ_OK)
        return st;
    int64_t channels = 0;
    if (slope && (st = channels_of(c, x, &channels)) != HQ_OK)
        return st;
    int target = -1;
    if (sole_reader(c, x, uses_here)) {
        hq_layer_t *p = hq_graph_layer_mut(c->graph, x->layer);
        hq_layer_params_t *pp = &p->params;
        if (has_activation_field(p->type) && pp->activation == HQ_ACT_LINEAR) {
            target = x->layer;
        } else if (act == HQ_ACT_CLIP && has_activation_field(p->type) &&
                   (pp->activation == HQ_ACT_RELU || pp->activation == HQ_ACT_CLIP ||
                    pp->activation == HQ_ACT_RELU6)) {
            /* Max(x, lo) then Min(x, hi) and the like: intersect the ranges. */
            float lo = pp->activation == HQ_ACT_CLIP ? pp->activation_alpha : 0.0f;
            float hi = pp->activation == HQ_ACT_CLIP    ? pp->activation_beta
                       : pp->activation == HQ_ACT_RELU6 ? 6.0f
                                                        : CLIP_OPEN;
            alpha = alpha > lo ? alpha : lo;
            beta = beta < hi ? beta : hi;
            target = x->layer;
        }
    }
    if (act == HQ_ACT_CLIP && alpha == 0.0f && beta == 6.0f)
        act = HQ_ACT_RELU6;
    else if (act == HQ_ACT_CLIP && alpha == 0.0f && beta == CLIP_OPEN)
        act = HQ_ACT_RELU;
    if (target >= 0) {
        st = hq_layer_add_original_name(c->graph, target, node_label(n), c->err);
    } else {
        if ((st = new_layer(c, HQ_LAYER_ACTIVATION, n, &target)) != HQ_OK ||
            (st = connect_value(c, x, target)) != HQ_OK)
            return st;
    }
    if (st != HQ_OK)
        return st;
    hq_layer_params_t *pp = lp(c, target);
    pp->activation = act;
    pp->activation_alpha =
        act == HQ_ACT_LEAKY || act == HQ_ACT_HARDSIGMOID || act == HQ_ACT_CLIP ? alpha : 0.0f;
    pp->activation_beta = act == HQ_ACT_HARDSIGMOID || act == HQ_ACT_CLIP ? beta : 0.0f;
    if (slope) {
        hq_tensor_t *t;
        if ((st = vector_tensor(c, slope, channels, &t)) != HQ_OK ||
            (st = put_param(c, target, "prelu_slope:0", t)) != HQ_OK)
            return st;
    }
    return set_layer_output(c, n, 0, target, 0, x->rank);
}

static hq_status_t scalar_input(ctx_t *c, const Onnx__NodeProto *n, size_t i, float fallback,
                                float *out)
{
    hq_tensor_t *t;
    *out = fallback;
    hq_status_t st = const_input(c, n, i, false, &t);
    if (st != HQ_OK || !t)
        return st;
    if (hq_tensor_count(t) != 1)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "input %zu must be a scalar", i + 1);
    *out = (float)tensor_at(t, 0);
    return HQ_OK;
}

static hq_status_t op_activation(ctx_t *c, const Onnx__NodeProto *n)
{
    value_t *x;
    hq_status_t st = node_input(c, n, 0, &x);
    if (st != HQ_OK)
        return st;
    if (!x || x->kind != VALUE_LAYER)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "input must be a computed tensor");
    const char *op = n->op_type;
    if (!strcmp(op, "Relu"))
        return apply_activation(c, n, x, HQ_ACT_RELU, 0, 0, NULL, 1);
    if (!strcmp(op, "Sigmoid"))
        return apply_activation(c, n, x, HQ_ACT_SIGMOID, 0, 0, NULL, 1);
    if (!strcmp(op, "Tanh"))
        return apply_activation(c, n, x, HQ_ACT_TANH, 0, 0, NULL, 1);
    if (!strcmp(op, "Exp"))
        return apply_activation(c, n, x, HQ_ACT_EXP, 0, 0, NULL, 1);
    if (!strcmp(op, "HardSwish"))
        return apply_activation(c, n, x, HQ_ACT_HARDSWISH, 0, 0, NULL, 1);
    if (!strcmp(op, "LeakyRelu"))
        return apply_activation(c, n, x, HQ_ACT_LEAKY, attr_float(n, "alpha", 0.01f), 0, NULL, 1);
    if (!strcmp(op, "HardSigmoid"))
        return apply_activation(c, n, x, HQ_ACT_HARDSIGMOID, attr_float(n, "alpha", 0.2f),
                                attr_float(n, "beta", 0.5f), NULL, 1);
    if (!strcmp(op, "Clip")) {
        float lo = attr_float(n, "min", -FLT_MAX), hi = attr_float(n, "max", FLT_MAX);
        if ((st = scalar_input(c, n, 1, lo, &lo)) != HQ_OK ||
            (st = scalar_input(c, n, 2, hi, &hi)) != HQ_OK)
            return st;
        if (lo > hi)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "min %g is above max %g", lo, hi);
        return apply_activation(c, n, x, HQ_ACT_CLIP, lo, hi, NULL, 1);
    }
    /* PRelu */
    hq_tensor_t *s;
    if ((st = const_input(c, n, 1, true, &s)) != HQ_OK)
        return st;
    if ((st = materialize(c, x)) != HQ_OK)
        return st;
    int64_t channels;
    if ((st = channels_of(c, x, &channels)) != HQ_OK)
        return st;
    float *vec;
    if (!channel_vector(s, x->rank, channels, &vec))
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "slope must be a scalar or one value per channel");
    st = apply_activation(c, n, x, HQ_ACT_PRELU, 0, 0, vec, 1);
    free(vec);
    return st;
}

/* A node planned as an activation pattern (SiLU, HardSwish decompositions). */
static hq_status_t op_planned_activation(ctx_t *c, const Onnx__NodeProto *n, const node_plan_t *p)
{
    value_t *x = value_of(c, p->act_input);
    if (!x || x->kind != VALUE_LAYER)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "input must be a computed tensor");
    hq_status_t st = apply_activation(c, n, x, (hq_activation_t)p->act, 0, 0, NULL, p->x_uses);
    value_t *out = value_of(c, n->output[0]);
    for (int i = 0; st == HQ_OK && i < p->extra_count; i++)
        st = hq_layer_add_original_name(c->graph, out->layer, p->extra_names[i], c->err);
    return st;
}

/* ---- windows: conv, deconv, pools ------------------------------------------------------- */

static hq_status_t window_params(ctx_t *c, const Onnx__NodeProto *n, hq_layer_params_t *p,
                                 bool dilations_allowed)
{
    int k;
    const int64_t *v = attr_ints(n, "strides", &k);
    if (k >= 0) {
        if (k != 2 || v[0] < 1 || v[1] < 1 || v[0] > 4096 || v[1] > 4096)
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "strides must be 2 positive values (2-D only)");
        p->stride_h = (int)v[0];
        p->stride_w = (int)v[1];
    }
    v = attr_ints(n, "dilations", &k);
    if (k >= 0) {
        if (k != 2 || v[0] < 1 || v[1] < 1 || v[0] > 4096 || v[1] > 4096)
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "dilations must be 2 positive values");
        if (!dilations_allowed && (v[0] != 1 || v[1] != 1))
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "dilated pooling is not supported");
        p->dilation_h = (int)v[0];
        p->dilation_w = (int)v[1];
    }
    const char *ap = attr_string(n, "auto_pad", "NOTSET");
    if (!strcmp(ap, "SAME_UPPER"))
        p->padding = HQ_PADDING_SAME_TENSORFLOW;
    else if (!strcmp(ap, "SAME_LOWER"))
        p->padding = HQ_PADDING_SAME;
    else if (!strcmp(ap, "VALID"))
        p->padding = HQ_PADDING_VALID;
    else if (!strcmp(ap, "NOTSET")) {
        v = attr_ints(n, "pads", &k);
        p->padding = HQ_PADDING_VALID;
        if (k >= 0) {
            if (k != 4)
                NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "pads must have 4 values (2-D only)");
            for (int i = 0; i < 4; i++) {
                if (v[i] < 0 || v[i] > 65536)
                    NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "pad %lld out of range", (long long)v[i]);
                if (v[i])
                    p->padding = HQ_PADDING_EXPLICIT;
            }
            /* ONNX: [top, left, bottom, right] = [x1_begin, x2_begin, x1_end, x2_end]. */
            for (int i = 0; i < 4; i++)
                p->pads[i] = (int)v[i];
        }
    } else {
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "auto_pad '%s'", ap);
    }
    return HQ_OK;
}

static hq_status_t image_input(ctx_t *c, const Onnx__NodeProto *n, value_t **x, int64_t dims[4])
{
    hq_status_t st = layer_input(c, n, 0, x);
    int rank;
    if (st == HQ_OK)
        st = onnx_shape_of(c, *x, &rank, dims);
    if (st == HQ_OK && rank == 3 && c->lift_1d) { /* [N, C, L] as [N, C, 1, L] */
        dims[3] = dims[2];
        dims[2] = 1;
        rank = 4;
    }
    if (st == HQ_OK && rank != 4)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "input '%s' has rank %d; only 4-D (NCHW) tensors",
                  (*x)->name, rank);
    return st;
}

static hq_status_t op_conv(ctx_t *c, const Onnx__NodeProto *n)
{
    bool transposed = !strcmp(n->op_type, "ConvTranspose");
    value_t *x;
    int64_t dims[4];
    hq_tensor_t *w, *b;
    hq_status_t st;
    if ((st = image_input(c, n, &x, dims)) != HQ_OK ||
        (st = const_input(c, n, 1, true, &w)) != HQ_OK ||
        (st = const_input(c, n, 2, false, &b)) != HQ_OK)
        return st;
    hq_tensor_t w2d; /* 1-D weights [O, I, k] seen as [O, I, 1, k] (same data) */
    if (c->lift_1d && w->ndim == 3) {
        w2d = *w;
        w2d.ndim = 4;
        w2d.shape[3] = w->shape[2];
        w2d.shape[2] = 1;
        w = &w2d;
    }
    if (w->ndim != 4 || w->dtype != HQ_DTYPE_FLOAT32)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "weights '%s' must be a 4-D float tensor (rank %d)",
                  n->input[1], w->ndim);
    int64_t groups = attr_int(n, "group", 1), cin = dims[1];
    int64_t kh = w->shape[2], kw = w->shape[3];
    int64_t cout = transposed ? w->shape[1] * groups : w->shape[0];
    int64_t cpg = transposed ? (groups > 0 ? w->shape[0] / groups : 0) : w->shape[1];
    if (groups < 1 || cpg * groups != cin || (transposed && w->shape[0] != cin) || cout % groups ||
        kh < 1 || kw < 1 || cout < 1)
        NODE_FAIL(c, n, HQ_ERR_INVALID,
                  "weights [%lld, %lld, %lld, %lld] with group %lld do not fit %lld input "
                  "channels",
                  (long long)w->shape[0], (long long)w->shape[1], (long long)kh, (long long)kw,
                  (long long)groups, (long long)cin);
    if (b && hq_tensor_count(b) != cout)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "bias has %lld values for %lld output channels",
                  (long long)hq_tensor_count(b), (long long)cout);
    int k;
    const int64_t *ks = attr_ints(n, "kernel_shape", &k);
    if (k >= 0 && (k != 2 || ks[0] != kh || ks[1] != kw))
        NODE_FAIL(c, n, HQ_ERR_INVALID, "kernel_shape disagrees with the weights");
    if (kh > 65536 || kw > 65536)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "kernel too large");
    hq_layer_type_t type = transposed                                  ? HQ_LAYER_DECONV
                           : (groups > 1 && groups == cin && cpg == 1) ? HQ_LAYER_DW
                                                                       : HQ_LAYER_CONV;
    int index;
    if ((st = new_layer(c, type, n, &index)) != HQ_OK || (st = connect_value(c, x, index)) != HQ_OK)
        return st;
    hq_layer_params_t *p = lp(c, index);
    p->kernel_h = (int)kh;
    p->kernel_w = (int)kw;
    p->kernel_in = (int)cpg;
    p->kernel_out = (int)cout;
    p->groups = (int)groups;
    p->has_bias = true;
    if ((st = window_params(c, n, p, true)) != HQ_OK)
        return st;
    if (transposed) {
        const int64_t *op = attr_ints(n, "output_padding", &k);
        if (k >= 0) {
            if (k != 2 || op[0] < 0 || op[1] < 0 || op[0] >= p->stride_h || op[1] >= p->stride_w)
                NODE_FAIL(c, n, HQ_ERR_INVALID, "output_padding out of range");
            p->output_pads[0] = (int)op[0];
            p->output_pads[1] = (int)op[1];
        }
        const int64_t *os = attr_ints(n, "output_shape", &k);
        if (k >= 0) {
            /* ONNX: total = s*(in-1) + output_padding + (k-1)*d + 1 - out, split into pads
             * (SAME_UPPER puts the odd pixel at the start, everything else at the end). */
            if (k != 2 && k != 4)
                NODE_FAIL(c, n, HQ_ERR_INVALID, "output_shape needs 2 values");
            bool upper = !strcmp(attr_string(n, "auto_pad", "NOTSET"), "SAME_UPPER");
            for (int a = 0; a < 2; a++) {
                int64_t want = os[k - 2 + a], in = dims[2 + a];
                int s = a ? p->stride_w : p->stride_h, d = a ? p->dilation_w : p->dilation_h;
                int64_t kk = a ? kw : kh;
                int64_t total = (int64_t)s * (in - 1) + p->output_pads[a] + (kk - 1) * d + 1 - want;
                if (want < 1 || want > (1 << 20) || total < -(int64_t)(s - 1) || total > 65536)
                    NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "output_shape %lld unreachable",
                              (long long)want);
                if (total < 0) {
                    p->output_pads[a] -= (int)total;
                    total = 0;
                    if (p->output_pads[a] >= s)
                        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "output_shape %lld unreachable",
                                  (long long)want);
                }
                int begin = (int)(upper ? total - total / 2 : total / 2);
                p->pads[a] = begin;
                p->pads[a + 2] = (int)total - begin;
            }
            p->padding = HQ_PADDING_EXPLICIT;
        }
    }
    int64_t shape[4] = {kh, kw, cpg, cout};
    hq_tensor_t *kernel, *bias;
    if ((st = new_tensor(c, HQ_DTYPE_FLOAT32, 4, shape, &kernel)) != HQ_OK)
        return st;
    if ((st = put_param(c, index, "kernel:0", kernel)) != HQ_OK)
        return st;
    const float *src = w->data;
    float *dst = kernel->data;
    int64_t opg = cout / groups;
    for (int64_t a = 0; a < w->shape[0]; a++)
        for (int64_t o = 0; o < w->shape[1]; o++)
            for (int64_t y = 0; y < kh; y++)
                for (int64_t xx = 0; xx < kw; xx++) {
                    float val = src[((a * w->shape[1] + o) * kh + y) * kw + xx];
                    int64_t i, oc;
                    if (transposed) { /* W[ci][o_in_group][ky][kx] */
                        int64_t g = a / cpg;
                        i = a - g * cpg;
                        oc = g * opg + o;
                    } else { /* W[oc][i][ky][kx] */
                        oc = a;
                        i = o;
                    }
                    dst[((y * kw + xx) * cpg + i) * cout + oc] = val;
                }
    if ((st = new_tensor(c, HQ_DTYPE_FLOAT32, 1, &cout, &bias)) != HQ_OK)
        return st;
    if (b)
        for (int64_t i = 0; i < cout; i++)
            ((float *)bias->data)[i] = (float)tensor_at(b, i);
    if ((st = put_param(c, index, "bias:0", bias)) != HQ_OK)
        return st;
    return set_layer_output(c, n, 0, index, 0, 4);
}

static hq_status_t op_dense(ctx_t *c, const Onnx__NodeProto *n)
{
    bool gemm = !strcmp(n->op_type, "Gemm");
    value_t *x;
    hq_tensor_t *w, *b = NULL;
    hq_status_t st = node_input(c, n, 0, &x);
    if (st != HQ_OK)
        return st;
    if (!x || x->kind != VALUE_LAYER)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "input A must be a computed tensor");
    if ((st = const_input(c, n, 1, true, &w)) != HQ_OK ||
        (gemm && (st = const_input(c, n, 2, false, &b)) != HQ_OK))
        return st;
    if (gemm && attr_int(n, "transA", 0))
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "transA=1");
    int rank;
    int64_t dims[4];
    if ((st = onnx_shape_of(c, x, &rank, dims)) != HQ_OK)
        return st;
    if (rank != 2)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED,
                  "input '%s' has rank %d; a dense layer needs [N, C] (flatten first)", x->name,
                  rank);
    bool trans_b = gemm && attr_int(n, "transB", 0);
    if (w->ndim != 2 || w->dtype != HQ_DTYPE_FLOAT32)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "weights '%s' must be a 2-D float tensor", n->input[1]);
    int64_t cin = trans_b ? w->shape[1] : w->shape[0], cout = trans_b ? w->shape[0] : w->shape[1];
    if (cin != dims[1] || cout < 1)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "weights take %lld inputs, the tensor has %lld",
                  (long long)cin, (long long)dims[1]);
    float alpha = gemm ? attr_float(n, "alpha", 1.0f) : 1.0f;
    float beta = gemm ? attr_float(n, "beta", 1.0f) : 1.0f;
    float *bvec = NULL;
    if (b && !channel_vector(b, 2, cout, &bvec))
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "bias C must be a scalar or have one value per output");
    int index;
    st = new_layer(c, HQ_LAYER_DENSE, n, &index);
    if (st == HQ_OK)
        st = connect_value(c, x, index);
    int64_t kshape[2] = {cin, cout};
    hq_tensor_t *kernel = NULL, *bias = NULL;
    if (st == HQ_OK)
        st = new_tensor(c, HQ_DTYPE_FLOAT32, 2, kshape, &kernel);
    if (st == HQ_OK)
        st = put_param(c, index, "kernel:0", kernel);
    if (st == HQ_OK)
        st = new_tensor(c, HQ_DTYPE_FLOAT32, 1, &cout, &bias);
    if (st == HQ_OK)
        st = put_param(c, index, "bias:0", bias);
    if (st != HQ_OK) {
        free(bvec);
        return st;
    }
    const float *src = w->data;
    float *dst = kernel->data;
    for (int64_t r = 0; r < cin; r++) {
        /* A flattened NCHW tensor feeds row r = c*H*W + h*W + w; hq flattens NHWC. */
        int64_t row = r;
        if (x->flat) {
            int64_t hw = x->flat_h * x->flat_w, ch = r / hw, pos = r % hw;
            row = pos * x->flat_c + ch;
        }
        for (int64_t o = 0; o < cout; o++)
            dst[row * cout + o] = alpha * (trans_b ? src[o * cin + r] : src[r * cout + o]);
    }
    for (int64_t o = 0; o < cout; o++)
        ((float *)bias->data)[o] = bvec ? beta * bvec[o] : 0.0f;
    free(bvec);
    lp(c, index)->kernel_in = (int)cin;
    lp(c, index)->kernel_out = (int)cout;
    lp(c, index)->has_bias = true;
    return set_layer_output(c, n, 0, index, 0, 2);
}

/* True when producer of x takes scale/shift folding (weights, bias, linear activation). */
static bool foldable_producer(ctx_t *c, const value_t *x, bool scale)
{
    if (!sole_reader(c, x, 1))
        return false;
    const hq_layer_t *p = hq_graph_layer(c->graph, x->layer);
    if (!hqi_layer_traits(p->type)->has_weights)
        return false;
    if (p->params.activation != HQ_ACT_LINEAR)
        return false;
    if (scale && p->params.elementwise_add)
        return false;
    return get_param(c, x->layer, "kernel:0") && get_param(c, x->layer, "bias:0");
}

/* y = x * scale[o] + shift[o] folded into x's producer (output channel is the last kernel axis). */
static void fold_affine(ctx_t *c, const value_t *x, const float *scale, const float *shift)
{
    hq_tensor_t *k = get_param(c, x->layer, "kernel:0"), *b = get_param(c, x->layer, "bias:0");
    int64_t cout = b->shape[0], count = hq_tensor_count(k);
    float *kd = k->data, *bd = b->data;
    if (scale)
        for (int64_t i = 0; i < count; i++)
            kd[i] *= scale[i % cout];
    for (int64_t o = 0; o < cout; o++)
        bd[o] = bd[o] * (scale ? scale[o] : 1.0f) + (shift ? shift[o] : 0.0f);
}

static hq_status_t op_batch_norm(ctx_t *c, const Onnx__NodeProto *n)
{
    value_t *x;
    hq_tensor_t *t[4];
    hq_status_t st = layer_input(c, n, 0, &x);
    for (int i = 0; i < 4 && st == HQ_OK; i++)
        st = const_input(c, n, (size_t)i + 1, true, &t[i]);
    if (st != HQ_OK)
        return st;
    int64_t channels;
    if ((st = channels_of(c, x, &channels)) != HQ_OK)
        return st;
    for (int i = 0; i < 4; i++)
        if (hq_tensor_count(t[i]) != channels || t[i]->dtype != HQ_DTYPE_FLOAT32)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "input '%s' has %lld values for %lld channels",
                      n->input[i + 1], (long long)hq_tensor_count(t[i]), (long long)channels);
    float eps = attr_float(n, "epsilon", 1e-5f);
    if (!(eps >= 0 && eps <= CLIP_OPEN))
        NODE_FAIL(c, n, HQ_ERR_INVALID, "epsilon %g", eps);
    const float *gamma = t[0]->data, *beta = t[1]->data, *mean = t[2]->data, *var = t[3]->data;
    if (foldable_producer(c, x, true)) {
        float *scale = malloc((size_t)channels * sizeof *scale);
        float *shift = malloc((size_t)channels * sizeof *shift);
        if (!scale || !shift) {
            free(scale);
            free(shift);
            return hqi_nomem(c->err, c->name);
        }
        for (int64_t o = 0; o < channels; o++) {
            scale[o] = gamma[o] / sqrtf(var[o] + eps);
            shift[o] = beta[o] - mean[o] * scale[o];
        }
        fold_affine(c, x, scale, shift);
        free(scale);
        free(shift);
        lp(c, x->layer)->batch_norm = true;
        if ((st = hq_layer_add_original_name(c->graph, x->layer, node_label(n), c->err)) != HQ_OK)
            return st;
        return set_layer_output(c, n, 0, x->layer, 0, x->rank);
    }
    int index;
    if ((st = new_layer(c, HQ_LAYER_BATCH_NORM, n, &index)) != HQ_OK ||
        (st = connect_value(c, x, index)) != HQ_OK)
        return st;
    lp(c, index)->epsilon = eps;
    static const char *keys[4] = {"gamma:0", "beta:0", "moving_mean:0", "moving_variance:0"};
    for (int i = 0; i < 4; i++) {
        hq_tensor_t *copy;
        if ((st = vector_tensor(c, t[i]->data, channels, &copy)) != HQ_OK ||
            (st = put_param(c, index, keys[i], copy)) != HQ_OK)
            return st;
    }
    return set_layer_output(c, n, 0, index, 0, x->rank);
}

/* A const_input layer holding `t` broadcast against a rank-`rank` tensor (NCHW -> NHWC). */
static hq_status_t add_const_layer(ctx_t *c, const Onnx__NodeProto *n, const hq_tensor_t *t,
                                   int rank, int *index)
{
    if (t->ndim > rank)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "constant of rank %d against a rank-%d tensor", t->ndim,
                  rank);
    int64_t d[4] = {1, 1, 1, 1};
    for (int i = 0; i < t->ndim; i++)
        d[i + rank - t->ndim] = t->shape[i];
    if (d[0] != 1)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "constant with a batch dimension of %lld",
                  (long long)d[0]);
    hq_shape_t shape;
    int64_t dshape[4];
    hq_tensor_t *data;
    hq_status_t st;
    if (rank == 3) { /* [1, C, L] -> NCHW [1, C, 1, L] */
        d[3] = d[2];
        d[2] = 1;
        rank = 4;
    }
    if (rank == 4) {
        shape = (hq_shape_t){4, {-1, d[2], d[3], d[1]}};
        dshape[0] = 1, dshape[1] = d[2], dshape[2] = d[3], dshape[3] = d[1];
    } else {
        shape = (hq_shape_t){2, {-1, d[1]}};
        dshape[0] = 1, dshape[1] = d[1];
    }
    for (int i = 1; i < shape.ndim; i++)
        if (shape.dims[i] < 1)
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "empty constant");
    if ((st = new_tensor(c, HQ_DTYPE_FLOAT32, rank, dshape, &data)) != HQ_OK)
        return st;
    float *dst = data->data;
    if (rank == 4) {
        for (int64_t ch = 0; ch < d[1]; ch++)
            for (int64_t y = 0; y < d[2]; y++)
                for (int64_t xx = 0; xx < d[3]; xx++)
                    dst[(y * d[3] + xx) * d[1] + ch] =
                        (float)tensor_at(t, (ch * d[2] + y) * d[3] + xx);
    } else {
        for (int64_t i = 0; i < d[1]; i++)
            dst[i] = (float)tensor_at(t, i);
    }
    if ((st = new_layer(c, HQ_LAYER_CONST_INPUT, n, index)) != HQ_OK) {
        hq_tensor_destroy(data);
        return st;
    }
    if ((st = put_param(c, *index, "const:0", data)) != HQ_OK)
        return st;
    return hq_layer_set_output_shape(c->graph, *index, &shape, c->err);
}

static hq_status_t op_binary(ctx_t *c, const Onnx__NodeProto *n)
{
    const char *op = n->op_type;
    value_t *a, *b;
    hq_status_t st;
    if ((st = node_input(c, n, 0, &a)) != HQ_OK || (st = node_input(c, n, 1, &b)) != HQ_OK)
        return st;
    if (!a || !b || n->n_input != 2)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "needs exactly two inputs");
    hq_layer_type_t type = !strcmp(op, "Add")   ? HQ_LAYER_EW_ADD
                           : !strcmp(op, "Sub") ? HQ_LAYER_EW_SUB
                           : !strcmp(op, "Mul") ? HQ_LAYER_EW_MULT
                           : !strcmp(op, "Div") ? HQ_LAYER_EW_DIV
                           : !strcmp(op, "Max") ? HQ_LAYER_EW_MAX
                                                : HQ_LAYER_EW_MIN;
    value_t *x = a->kind == VALUE_LAYER ? a : b;
    value_t *k = a->kind == VALUE_CONST ? a : b->kind == VALUE_CONST ? b : NULL;
    if ((st = materialize(c, x)) != HQ_OK)
        return st;
    if (k) {
        const hq_tensor_t *t = k->constant;
        int64_t channels;
        if ((st = channels_of(c, x, &channels)) != HQ_OK)
            return st;
        float *vec = NULL;
        bool per_channel = channel_vector(t, x->rank, channels, &vec);
        if ((type == HQ_LAYER_EW_MAX || type == HQ_LAYER_EW_MIN) && per_channel &&
            hq_tensor_count(t) == 1) {
            float v = vec[0];
            free(vec);
            if (type == HQ_LAYER_EW_MAX)
                return apply_activation(c, n, x, HQ_ACT_CLIP, v, CLIP_OPEN, NULL, 1);
            return apply_activation(c, n, x, HQ_ACT_CLIP, -CLIP_OPEN, v, NULL, 1);
        }
        bool scale = type == HQ_LAYER_EW_MULT || type == HQ_LAYER_EW_DIV;
        bool const_first = k == a;
        if (per_channel && type != HQ_LAYER_EW_MAX && type != HQ_LAYER_EW_MIN &&
            !(const_first && (type == HQ_LAYER_EW_SUB || type == HQ_LAYER_EW_DIV)) &&
            foldable_producer(c, x, scale)) {
            for (int64_t i = 0; i < channels; i++) {
                if (type == HQ_LAYER_EW_SUB)
                    vec[i] = -vec[i];
                else if (type == HQ_LAYER_EW_DIV)
                    vec[i] = 1.0f / vec[i];
            }
            fold_affine(c, x, scale ? vec : NULL, scale ? NULL : vec);
            free(vec);
            if ((st = hq_layer_add_original_name(c->graph, x->layer, node_label(n), c->err)) !=
                HQ_OK)
                return st;
            return set_layer_output(c, n, 0, x->layer, 0, x->rank);
        }
        free(vec);
        int cindex, index;
        if ((st = add_const_layer(c, n, t, x->rank, &cindex)) != HQ_OK ||
            (st = new_layer(c, type, n, &index)) != HQ_OK)
            return st;
        if (const_first)
            st = hq_graph_connect(c->graph, cindex, 0, index, c->err);
        if (st == HQ_OK)
            st = connect_value(c, x, index);
        if (st == HQ_OK && !const_first)
            st = hq_graph_connect(c->graph, cindex, 0, index, c->err);
        if (st != HQ_OK)
            return st;
        return set_layer_output(c, n, 0, index, 0, x->rank);
    }
    if ((st = materialize(c, a)) != HQ_OK || (st = materialize(c, b)) != HQ_OK)
        return st;
    if (a->rank != b->rank)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "inputs of rank %d and %d", a->rank, b->rank);
    if (type == HQ_LAYER_EW_ADD) {
        /* conv + other tensor of the same shape: the conv's elementwise_add. */
        hq_shape_t sa, sb;
        if ((st = hq_shape_of(c, a, &sa)) != HQ_OK || (st = hq_shape_of(c, b, &sb)) != HQ_OK)
            return st;
        value_t *sides[2][2] = {{a, b}, {b, a}};
        for (int i = 0; i < 2; i++) {
            value_t *conv = sides[i][0], *other = sides[i][1];
            if (!sole_reader(c, conv, 1) || conv == other || conv->layer == other->layer)
                continue;
            const hq_layer_t *p = hq_graph_layer(c->graph, conv->layer);
            if ((p->type != HQ_LAYER_CONV && p->type != HQ_LAYER_DW) || p->params.elementwise_add ||
                p->params.activation != HQ_ACT_LINEAR)
                continue;
            if (memcmp(&sa, &sb, sizeof sa))
                break;
            lp(c, conv->layer)->elementwise_add = true;
            if ((st = connect_value(c, other, conv->layer)) != HQ_OK ||
                (st = hq_layer_add_original_name(c->graph, conv->layer, node_label(n), c->err)) !=
                    HQ_OK)
                return st;
            return set_layer_output(c, n, 0, conv->layer, 0, conv->rank);
        }
    }
    int index;
    if ((st = new_layer(c, type, n, &index)) != HQ_OK ||
        (st = connect_value(c, a, index)) != HQ_OK || (st = connect_value(c, b, index)) != HQ_OK)
        return st;
    return set_layer_output(c, n, 0, index, 0, a->rank);
}

static hq_status_t op_pool(ctx_t *c, const Onnx__NodeProto *n)
{
    value_t *x;
    int64_t dims[4];
    hq_status_t st = image_input(c, n, &x, dims);
    if (st != HQ_OK)
        return st;
    bool global = !strncmp(n->op_type, "Global", 6);
    bool max = strstr(n->op_type, "Max") != NULL;
    int index;
    if (global && max) {
        /* a maxpool whose one window is the whole image (hq has no global max layer) */
        if ((st = new_layer(c, HQ_LAYER_MAXPOOL, n, &index)) != HQ_OK ||
            (st = connect_value(c, x, index)) != HQ_OK)
            return st;
        hq_layer_params_t *p = lp(c, index);
        p->kernel_h = p->stride_h = (int)dims[2];
        p->kernel_w = p->stride_w = (int)dims[3];
        p->dilation_h = p->dilation_w = 1;
        p->padding = HQ_PADDING_VALID;
        return set_layer_output(c, n, 0, index, 0, 4);
    }
    if (global) {
        if ((st = new_layer(c, HQ_LAYER_GLOBAL_AVG_POOL, n, &index)) != HQ_OK ||
            (st = connect_value(c, x, index)) != HQ_OK)
            return st;
        return set_layer_output(c, n, 0, index, 0, 4);
    }
    if (n->n_output > 1 && n->output[1][0])
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "the Indices output");
    int k;
    const int64_t *ks = attr_ints(n, "kernel_shape", &k);
    if (k != 2 || ks[0] < 1 || ks[1] < 1 || ks[0] > 65536 || ks[1] > 65536)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "kernel_shape must be 2 positive values");
    if (attr_int(n, "storage_order", 0))
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "storage_order=1");
    hq_layer_params_t w;
    memset(&w, 0, sizeof w);
    w.stride_h = w.stride_w = w.dilation_h = w.dilation_w = 1;
    w.kernel_h = (int)ks[0];
    w.kernel_w = (int)ks[1];
    if ((st = window_params(c, n, &w, false)) != HQ_OK)
        return st;
    bool include_pad = !max && attr_int(n, "count_include_pad", 0);
    /* Ceil mode: extra rows/cols at the end so the floor rule gives the ceil size; a last
     * window that would start in the end padding is dropped, as ONNX does. */
    int extra[2] = {0, 0};
    bool explicit_pads = w.padding == HQ_PADDING_EXPLICIT;
    if (attr_int(n, "ceil_mode", 0) &&
        (w.padding == HQ_PADDING_EXPLICIT || w.padding == HQ_PADDING_VALID)) {
        if (w.padding == HQ_PADDING_VALID)
            memset(w.pads, 0, sizeof w.pads);
        int64_t ext[2] = {dims[2], dims[3]};
        for (int a = 0; a < 2; a++) {
            int s = a ? w.stride_w : w.stride_h, kk = a ? w.kernel_w : w.kernel_h;
            int64_t span = ext[a] + w.pads[a] + w.pads[a + 2] - kk;
            if (span < 0)
                continue;
            int64_t out = (span + s - 1) / s + 1;
            if ((out - 1) * s >= ext[a] + w.pads[a]) /* last window must start inside */
                out--;
            int64_t more = (out - 1) * s + kk - (ext[a] + w.pads[a] + w.pads[a + 2]);
            if (more > 0)
                extra[a] = (int)more;
        }
    }
    /* The ceil-mode cells are never counted by ONNX's average (its divisor stops at the
     * declared pads), but hq counts every padded cell when count_include_pad is set. Without
     * declared pads that is count_include_pad = 0; with them, the declared pads become a zero
     * `pad` layer (cells the average then counts as data) and the pool pads only the ceil
     * cells, uncounted: the same divisor as ONNX. */
    int pad_layer = -1;
    if (include_pad && (extra[0] || extra[1])) {
        include_pad = false;
        if (explicit_pads) {
            if ((st = new_layer(c, HQ_LAYER_PAD, NULL, &pad_layer)) != HQ_OK ||
                (st = connect_value(c, x, pad_layer)) != HQ_OK)
                return st;
            hq_layer_params_t *pp = lp(c, pad_layer);
            pp->pad_mode = HQ_PAD_CONSTANT;
            pp->pad_value = 0.0f;
            pp->padding = HQ_PADDING_EXPLICIT;
            memcpy(pp->pads, w.pads, sizeof pp->pads);
            memset(w.pads, 0, sizeof w.pads);
        }
    }
    if (extra[0] || extra[1]) {
        w.padding = HQ_PADDING_EXPLICIT;
        w.pads[2] += extra[0];
        w.pads[3] += extra[1];
    }
    if ((st = new_layer(c, max ? HQ_LAYER_MAXPOOL : HQ_LAYER_AVGPOOL, n, &index)) != HQ_OK)
        return st;
    st = pad_layer >= 0 ? hq_graph_connect(c->graph, pad_layer, 0, index, c->err)
                        : connect_value(c, x, index);
    if (st != HQ_OK)
        return st;
    hq_layer_params_t *p = lp(c, index);
    p->kernel_h = w.kernel_h;
    p->kernel_w = w.kernel_w;
    p->stride_h = w.stride_h;
    p->stride_w = w.stride_w;
    p->dilation_h = w.dilation_h;
    p->dilation_w = w.dilation_w;
    p->padding = w.padding;
    memcpy(p->pads, w.pads, sizeof p->pads);
    p->count_include_pad = include_pad;
    return set_layer_output(c, n, 0, index, 0, 4);
}

/* ---- layout ops ------------------------------------------------------------------------- */

static hq_status_t op_concat(ctx_t *c, const Onnx__NodeProto *n)
{
    if (n->n_input < 1)
        NODE_FAIL(c, n, HQ_ERR_FORMAT, "has no inputs");
    value_t *ref = NULL;
    hq_status_t st;
    for (size_t i = 0; i < n->n_input; i++) {
        value_t *v;
        if ((st = node_input(c, n, i, &v)) != HQ_OK)
            return st;
        if (!v)
            NODE_FAIL(c, n, HQ_ERR_FORMAT, "input %zu is missing", i + 1);
        if (v->kind == VALUE_LAYER && !ref)
            ref = v;
    }
    if (!ref)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "no computed input");
    if ((st = materialize(c, ref)) != HQ_OK)
        return st;
    int axis = map_axis(attr_int(n, "axis", 1), ref->rank);
    if (axis < 0)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "concatenation along axis %lld (the batch)",
                  (long long)attr_int(n, "axis", 1));
    if (n->n_input == 1)
        return alias_output(c, n, ref);
    /* Layer + uniform constant along C (ConstantOfShape channel padding) -> a pad layer. */
    if (n->n_input == 2 && axis == ref->rank - 1 + (ref->rank == 4 ? 0 : 0) &&
        axis == (ref->rank == 4 ? 3 : 1)) {
        value_t *v0 = value_of(c, n->input[0]), *v1 = value_of(c, n->input[1]);
        value_t *k = v0->kind == VALUE_CONST ? v0 : v1->kind == VALUE_CONST ? v1 : NULL;
        if (k && ref->rank == 4) {
            int rank;
            int64_t dims[4];
            const hq_tensor_t *t = k->constant;
            if ((st = onnx_shape_of(c, ref, &rank, dims)) != HQ_OK)
                return st;
            bool uniform = t->ndim == 4 && t->shape[2] == dims[2] && t->shape[3] == dims[3] &&
                           t->shape[1] > 0 && t->shape[1] <= 65536;
            for (int64_t i = 1; uniform && i < hq_tensor_count(t); i++)
                uniform = tensor_at(t, i) == tensor_at(t, 0);
            if (uniform) {
                int index;
                if ((st = new_layer(c, HQ_LAYER_PAD, n, &index)) != HQ_OK ||
                    (st = connect_value(c, ref, index)) != HQ_OK)
                    return st;
                hq_layer_params_t *p = lp(c, index);
                p->pad_value = (float)tensor_at(t, 0);
                if (!(fabsf(p->pad_value) <= CLIP_OPEN))
                    NODE_FAIL(c, n, HQ_ERR_INVALID, "padding value is not a finite number");
                p->pad_channels[k == v0 ? 0 : 1] = (int)t->shape[1];
                return set_layer_output(c, n, 0, index, 0, 4);
            }
        }
    }
    int inputs[64];
    if (n->n_input > 64)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "more than 64 inputs");
    for (size_t i = 0; i < n->n_input; i++) {
        value_t *v = value_of(c, n->input[i]);
        if (!v || v->kind == VALUE_UNKNOWN)
            NODE_FAIL(c, n, HQ_ERR_FORMAT, "input %zu is missing", i + 1);
        if (v->kind == VALUE_CONST) {
            if ((st = add_const_layer(c, n, v->constant, ref->rank, &inputs[i])) != HQ_OK)
                return st;
            continue;
        }
        if ((st = materialize(c, v)) != HQ_OK)
            return st;
        if (v->rank != ref->rank)
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "inputs of rank %d and %d", v->rank, ref->rank);
        inputs[i] = -1;
    }
    int index;
    if ((st = new_layer(c, HQ_LAYER_CONCAT, n, &index)) != HQ_OK)
        return st;
    lp(c, index)->axis = axis;
    for (size_t i = 0; i < n->n_input; i++) {
        value_t *v = value_of(c, n->input[i]);
        st = inputs[i] >= 0 ? hq_graph_connect(c->graph, inputs[i], 0, index, c->err)
                            : connect_value(c, v, index);
        if (st != HQ_OK)
            return st;
    }
    return set_layer_output(c, n, 0, index, 0, ref->rank);
}

static hq_status_t op_split(ctx_t *c, const Onnx__NodeProto *n)
{
    value_t *x;
    hq_status_t st = layer_input(c, n, 0, &x);
    if (st != HQ_OK)
        return st;
    int rank;
    int64_t dims[4];
    if ((st = onnx_shape_of(c, x, &rank, dims)) != HQ_OK)
        return st;
    int64_t oaxis = attr_int(n, "axis", 0);
    int axis = map_axis(oaxis, rank);
    if (axis < 0)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "split along axis %lld (the batch)", (long long)oaxis);
    int64_t extent = dims[oaxis < 0 ? oaxis + rank : oaxis];
    int count = (int)n->n_output;
    if (count < 1 || count > 1024)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "%d outputs", count);
    int sizes[1024];
    int k;
    const int64_t *split = attr_ints(n, "split", &k);
    hq_tensor_t *ts = NULL;
    if (k < 0 && (st = const_input(c, n, 1, false, &ts)) != HQ_OK)
        return st;
    int64_t total = 0;
    for (int i = 0; i < count; i++) {
        int64_t s;
        if (k >= 0 || ts) {
            if ((k >= 0 ? k : hq_tensor_count(ts)) != count)
                NODE_FAIL(c, n, HQ_ERR_INVALID, "split sizes do not match the %d outputs", count);
            s = k >= 0 ? split[i] : tensor_int_at(ts, i);
        } else {
            s = (extent + count - 1) / count;
            if (i == count - 1)
                s = extent - s * (count - 1);
        }
        if (s < 1 || s > extent)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "split size %lld", (long long)s);
        sizes[i] = (int)s;
        total += s;
    }
    if (total != extent)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "split sizes sum to %lld, the axis has %lld",
                  (long long)total, (long long)extent);
    int index;
    if ((st = new_layer(c, HQ_LAYER_FEATURE_SPLITTER, n, &index)) != HQ_OK ||
        (st = connect_value(c, x, index)) != HQ_OK ||
        (st = hq_layer_set_split_sizes(c->graph, index, sizes, count, c->err)) != HQ_OK)
        return st;
    lp(c, index)->axis = axis;
    for (int i = 0; i < count; i++)
        if ((st = set_layer_output(c, n, (size_t)i, index, i, rank)) != HQ_OK)
            return st;
    return HQ_OK;
}

static hq_status_t op_slice(ctx_t *c, const Onnx__NodeProto *n)
{
    value_t *x;
    int64_t dims[4];
    /* a [N, C, L] tensor is sliced as [N, C, 1, L] */
    value_t *in = NULL;
    hq_status_t st = node_input(c, n, 0, &in);
    int rank = in && in->kind == VALUE_LAYER && !in->flat && in->rank == 3 ? 3 : 4;
    c->lift_1d = rank == 3;
    if (st == HQ_OK)
        st = image_input(c, n, &x, dims);
    c->lift_1d = false;
    if (st != HQ_OK)
        return st;
    int64_t starts[HQ_TENSOR_MAX_DIMS], ends[HQ_TENSOR_MAX_DIMS], axes[HQ_TENSOR_MAX_DIMS],
        steps[HQ_TENSOR_MAX_DIMS];
    int k;
    if ((st = slice_params(c, n, rank, starts, ends, axes, steps, &k)) != HQ_OK)
        return st;
    for (int i = 0; i < k; i++) {
        if (axes[i] < 0)
            axes[i] += rank;
        if (rank == 3 && axes[i] == 2)
            axes[i] = 3; /* L is the 4-D W axis */
    }
    int index;
    if ((st = new_layer(c, HQ_LAYER_SLICE, n, &index)) != HQ_OK ||
        (st = connect_value(c, x, index)) != HQ_OK)
        return st;
    hq_layer_params_t *p = lp(c, index);
    /* slice_* index: 0 = H (ONNX 2), 1 = W (ONNX 3), 2 = C (ONNX 1). */
    static const int slot_of[4] = {-1, 2, 0, 1};
    static const int onnx_of[3] = {2, 3, 1};
    for (int s = 0; s < 3; s++) {
        p->slice_begin[s] = 0;
        p->slice_end[s] = (int)dims[onnx_of[s]];
        p->slice_step[s] = 1;
    }
    for (int i = 0; i < k; i++) {
        int64_t ax = axes[i] < 0 ? axes[i] + 4 : axes[i];
        int64_t dim = dims[ax], s = starts[i], e = ends[i];
        if (steps[i] < 1)
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "step %lld (only positive steps)",
                      (long long)steps[i]);
        if (s < 0)
            s += dim;
        if (e < 0)
            e += dim;
        s = s < 0 ? 0 : s > dim ? dim : s;
        e = e < 0 ? 0 : e > dim ? dim : e;
        if (ax == 0) {
            if (s != 0 || e != dim)
                NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "slicing the batch");
            continue;
        }
        if (e <= s)
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "empty slice");
        int slot = slot_of[ax];
        p->slice_begin[slot] = (int)s;
        p->slice_end[slot] = (int)e;
        p->slice_step[slot] = (int)steps[i];
    }
    return set_layer_output(c, n, 0, index, 0, rank);
}

static hq_status_t op_pad(ctx_t *c, const Onnx__NodeProto *n)
{
    value_t *x;
    int64_t dims[4];
    hq_status_t st = image_input(c, n, &x, dims);
    if (st != HQ_OK)
        return st;
    int64_t pads[8];
    int k;
    const int64_t *pa = attr_ints(n, "pads", &k);
    float value = attr_float(n, "value", 0.0f);
    if (k >= 0) {
        if (k != 8)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "pads has %d values, needs 8", k);
        memcpy(pads, pa, sizeof pads);
    } else {
        hq_tensor_t *tp;
        if ((st = const_input(c, n, 1, true, &tp)) != HQ_OK ||
            (st = ints_of(c, n, tp, pads, 8, &k)) != HQ_OK ||
            (st = scalar_input(c, n, 2, value, &value)) != HQ_OK)
            return st;
        if (k != 8)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "pads has %d values, needs 8", k);
        if (n->n_input > 3 && n->input[3][0])
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "the axes input");
    }
    if (!(fabsf(value) <= CLIP_OPEN))
        NODE_FAIL(c, n, HQ_ERR_INVALID, "pad value %g out of range", value);
    for (int i = 0; i < 8; i++)
        if (pads[i] < 0 || pads[i] > 65536)
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "pad %lld (negative or huge)", (long long)pads[i]);
    if (pads[0] || pads[4])
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "padding the batch");
    const char *mode = attr_string(n, "mode", "constant");
    hq_pad_mode_t pm;
    if (!strcmp(mode, "constant"))
        pm = HQ_PAD_CONSTANT;
    else if (!strcmp(mode, "reflect"))
        pm = HQ_PAD_REFLECT;
    else if (!strcmp(mode, "edge"))
        pm = HQ_PAD_EDGE;
    else
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "mode '%s'", mode);
    int index;
    if ((st = new_layer(c, HQ_LAYER_PAD, n, &index)) != HQ_OK ||
        (st = connect_value(c, x, index)) != HQ_OK)
        return st;
    hq_layer_params_t *p = lp(c, index);
    p->pad_mode = pm;
    p->pad_value = value;
    p->padding = HQ_PADDING_EXPLICIT;
    p->pads[0] = (int)pads[2];
    p->pads[1] = (int)pads[3];
    p->pads[2] = (int)pads[6];
    p->pads[3] = (int)pads[7];
    p->pad_channels[0] = (int)pads[1];
    p->pad_channels[1] = (int)pads[5];
    return set_layer_output(c, n, 0, index, 0, 4);
}

static hq_status_t op_resize(ctx_t *c, const Onnx__NodeProto *n)
{
    value_t *x;
    int64_t dims[4];
    hq_status_t st = image_input(c, n, &x, dims);
    if (st != HQ_OK)
        return st;
    bool upsample = !strcmp(n->op_type, "Upsample");
    hq_tensor_t *scales = NULL, *sizes = NULL;
    float attr_scales[4];
    int k;
    const Onnx__AttributeProto *sa = find_attr(n, "scales");
    if (upsample && sa) {
        if (sa->n_floats != 4)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "scales needs 4 values");
        for (int i = 0; i < 4; i++)
            attr_scales[i] = sa->floats[i];
    } else if (upsample || c->opset < 11) {
        if ((st = const_input(c, n, 1, true, &scales)) != HQ_OK)
            return st;
    } else {
        if ((st = const_input(c, n, 2, false, &scales)) != HQ_OK ||
            (st = const_input(c, n, 3, false, &sizes)) != HQ_OK)
            return st;
        if (scales && hq_tensor_count(scales) == 0)
            scales = NULL;
        if (!scales && !sizes)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "needs scales or sizes");
    }
    (void)k;
    if (find_attr(n, "axes"))
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "the axes attribute");
    int64_t out[4];
    if (sizes) {
        if (hq_tensor_count(sizes) != 4)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "sizes needs 4 values");
        for (int i = 0; i < 4; i++)
            out[i] = tensor_int_at(sizes, i);
    } else {
        if (scales && hq_tensor_count(scales) != 4)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "scales needs 4 values");
        for (int i = 0; i < 4; i++) {
            double s = scales ? tensor_at(scales, i) : attr_scales[i];
            if (!(s > 0 && s < 65536))
                NODE_FAIL(c, n, HQ_ERR_INVALID, "scale %g", s);
            out[i] = (int64_t)floor((double)dims[i] * s);
            /* hq resizes to an output size and maps coordinates with out/in; ONNX maps them
             * with the given scale, which differs when in * scale is not whole. */
            if (i >= 2 && fabs((double)out[i] - (double)dims[i] * s) > 1e-6 * (double)out[i])
                NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED,
                          "scale %g on an extent of %lld gives a fractional size; export with "
                          "sizes or a whole scale",
                          s, (long long)dims[i]);
        }
    }
    if (out[0] != dims[0] || out[1] != dims[1])
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED,
                  "resizing the batch or the channels (output [%lld, %lld, %lld, %lld] for "
                  "an input [1, %lld, %lld, %lld]; hq runs samples one by one, so the batch "
                  "in sizes must be 1)",
                  (long long)out[0], (long long)out[1], (long long)out[2], (long long)out[3],
                  (long long)dims[1], (long long)dims[2], (long long)dims[3]);
    if (out[2] < 1 || out[3] < 1 || out[2] > (1 << 20) || out[3] > (1 << 20))
        NODE_FAIL(c, n, HQ_ERR_INVALID, "output size %lldx%lld", (long long)out[2],
                  (long long)out[3]);
    const char *mode = attr_string(n, "mode", "nearest");
    hq_resize_method_t method;
    if (!strcmp(mode, "nearest"))
        method = HQ_RESIZE_NEAREST;
    else if (!strcmp(mode, "linear") || !strcmp(mode, "bilinear"))
        method = HQ_RESIZE_BILINEAR;
    else
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "mode '%s'", mode);
    char ctm[64];
    snprintf(ctm, sizeof ctm, "%s",
             attr_string(n, "coordinate_transformation_mode",
                         upsample || c->opset < 11 ? "asymmetric" : "half_pixel"));
    hq_resize_coords_t coords;
    if (!strcmp(ctm, "asymmetric"))
        coords = HQ_RESIZE_ASYMMETRIC;
    else if (!strcmp(ctm, "half_pixel"))
        coords = HQ_RESIZE_HALF_PIXEL;
    else if (!strcmp(ctm, "align_corners"))
        coords = HQ_RESIZE_ALIGN_CORNERS;
    else if (!strcmp(ctm, "pytorch_half_pixel"))
        coords = HQ_RESIZE_PYTORCH_HALF_PIXEL;
    else
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "coordinate_transformation_mode '%s'", ctm);
    bool round = false;
    if (method == HQ_RESIZE_NEAREST) {
        const char *nm = attr_string(n, "nearest_mode",
                                     upsample || c->opset < 11 ? "floor" : "round_prefer_floor");
        if (!strcmp(nm, "round_prefer_floor"))
            round = true;
        else if (strcmp(nm, "floor"))
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "nearest_mode '%s'", nm);
    }
    int index;
    if ((st = new_layer(c, HQ_LAYER_RESIZE, n, &index)) != HQ_OK ||
        (st = connect_value(c, x, index)) != HQ_OK)
        return st;
    hq_layer_params_t *p = lp(c, index);
    p->resize_method = method;
    p->resize_coords = coords;
    p->nearest_round = round;
    hq_shape_t shape = {4, {-1, out[2], out[3], out[1]}};
    if ((st = hq_layer_set_output_shape(c->graph, index, &shape, c->err)) != HQ_OK)
        return st;
    return set_layer_output(c, n, 0, index, 0, 4);
}

/* Gives node n's output the ONNX shape `to` (batch first, reported as 1) of value x. */
static hq_status_t reshape_value_4d(ctx_t *c, const Onnx__NodeProto *n, value_t *x, int to_rank,
                                    const int64_t *to)
{
    int rank;
    int64_t in[4];
    hq_status_t st = onnx_shape_of(c, x, &rank, in);
    if (st != HQ_OK)
        return st;
    if (rank == 3) { /* [N, C, L] is [N, C, 1, L] */
        in[3] = in[2];
        in[2] = 1;
        rank = 4;
    }
    value_t *out = value_of(c, n->output[0]);
    if (!out || out->kind != VALUE_UNKNOWN)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "output produced twice");
    if (to_rank == 2) {
        if (rank == 4) { /* NCHW flatten: pending until a consumer needs it */
            if ((st = alias_output(c, n, x)) != HQ_OK)
                return st;
            out->rank = 2;
            out->flat = true;
            out->flat_c = in[1];
            out->flat_h = in[2];
            out->flat_w = in[3];
            return HQ_OK;
        }
        return alias_output(c, n, x);
    }
    if (x->flat && to[1] == x->flat_c && to[2] == x->flat_h && to[3] == x->flat_w) {
        if ((st = alias_output(c, n, x)) != HQ_OK)
            return st;
        out->flat = false;
        out->rank = 4;
        return HQ_OK;
    }
    if ((st = materialize(c, x)) != HQ_OK)
        return st;
    if (rank == 4 && in[1] == to[1] && in[2] == to[2] && in[3] == to[3])
        return alias_output(c, n, x);
    int index;
    hq_shape_t shape = {4, {-1, to[2], to[3], to[1]}};
    /* One reshape when the NHWC order is the NCHW order's: no spatial extent on either side,
     * or the channels unchanged (H x W regrouped, e.g. [N, C, H, W] -> [N, C, H*W]: c stays
     * innermost in NHWC and (h, w) keep their row-major order). */
    bool simple = (rank == 2 && to[2] * to[3] == 1) ||
                  (rank == 4 && ((in[2] * in[3] == 1 && to[2] * to[3] == 1) || in[1] == to[1]));
    if (simple) {
        if ((st = add_reshape(c, x, &shape, &index)) != HQ_OK)
            return st;
    } else {
        /* Exact NCHW semantics: NHWC -> NCHW order, reshape there, back to NHWC. */
        value_t tmp = *x;
        if (rank == 4) {
            static const int to_nchw[4] = {0, 3, 1, 2};
            if ((st = add_transpose(c, x->layer, x->port, to_nchw, 4, &index)) != HQ_OK)
                return st;
            tmp.layer = index;
            tmp.port = 0;
        }
        hq_shape_t mid = {4, {-1, to[1], to[2], to[3]}};
        if ((st = add_reshape(c, &tmp, &mid, &index)) != HQ_OK)
            return st;
        static const int to_nhwc[4] = {0, 2, 3, 1};
        if ((st = add_transpose(c, index, 0, to_nhwc, 4, &index)) != HQ_OK)
            return st;
    }
    if ((st = hq_layer_add_original_name(c->graph, index, node_label(n), c->err)) != HQ_OK)
        return st;
    return set_layer_output(c, n, 0, index, 0, 4);
}

/* Reshape to an ONNX shape of rank 2, 3 or 4 with batch 1. A rank-3 shape [1, C, L] is built as
 * the rank-4 [1, C, 1, L] (the same hq tensor) and then labelled rank 3. */
static hq_status_t reshape_value(ctx_t *c, const Onnx__NodeProto *n, value_t *x, int to_rank,
                                 const int64_t *to)
{
    if (to_rank < 2 || to_rank > 4 || to[0] != 1)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED,
                  "reshape to rank %d with batch %lld; hq keeps [N, C], [N, C, L] and "
                  "[N, C, H, W] tensors",
                  to_rank, (long long)(to_rank ? to[0] : 0));
    int64_t to4[4] = {to[0], to[1], 1, to_rank == 3 ? to[2] : 1};
    hq_status_t st = reshape_value_4d(c, n, x, to_rank == 3 ? 4 : to_rank, to_rank == 3 ? to4 : to);
    value_t *out = value_of(c, n->output[0]);
    if (st == HQ_OK && out && out->kind == VALUE_LAYER)
        out->rank = to_rank;
    return st;
}

/* The only node reading tensor `name` after node index `after`, and its index; NULL when the
 * tensor has other readers or is a graph output. */
static const Onnx__NodeProto *sole_consumer(ctx_t *c, const char *name, size_t after, size_t *at)
{
    value_t *v = value_of(c, name);
    if (!v || v->uses != 1)
        return NULL;
    for (size_t j = after + 1; j < c->g->n_node; j++) {
        const Onnx__NodeProto *m = c->g->node[j];
        for (size_t k = 0; k < m->n_input; k++)
            if (!strcmp(m->input[k], name)) {
                *at = j;
                return k == 0 ? m : NULL;
            }
    }
    return NULL;
}

/* PyTorch's PixelShuffle as exported before DepthToSpace had a CRD mode: Reshape to
 * [N, C, r, r, H, W] -> Transpose [0, 1, 4, 2, 5, 3] -> Reshape to [N, C, H·r, W·r] is
 * DepthToSpace CRD; [N, r, r, C, H, W] with [0, 3, 4, 1, 5, 2] is DCR. `n` is the first
 * Reshape, `to` its 6-D target; on a match the three nodes become one depth_to_space layer. */
static hq_status_t pixel_shuffle(ctx_t *c, const Onnx__NodeProto *n, value_t *x, const int64_t *in,
                                 const int64_t *to, bool *done)
{
    *done = false;
    static const int64_t crd_perm[6] = {0, 1, 4, 2, 5, 3}, dcr_perm[6] = {0, 3, 4, 1, 5, 2};
    if (to[1] * to[2] * to[3] != in[1] || to[4] != in[2] || to[5] != in[3])
        return HQ_OK;
    size_t self = 0, ti, ri;
    while (self < c->g->n_node && c->g->node[self] != n)
        self++;
    const Onnx__NodeProto *t = sole_consumer(c, n->output[0], self, &ti);
    if (!t || strcmp(t->op_type, "Transpose") || t->n_output != 1)
        return HQ_OK;
    int k;
    const int64_t *perm = attr_ints(t, "perm", &k);
    if (k != 6)
        return HQ_OK;
    /* the permutation says the mode: [N, C, r, r, H, W] (CRD) or [N, r, r, C, H, W] (DCR) */
    bool crd = !memcmp(perm, crd_perm, sizeof crd_perm) && to[2] == to[3];
    bool dcr = !memcmp(perm, dcr_perm, sizeof dcr_perm) && to[1] == to[2];
    if (!crd && !dcr)
        return HQ_OK;
    int64_t r = crd ? to[2] : to[1], ch = crd ? to[1] : to[3];
    const Onnx__NodeProto *r2 = sole_consumer(c, t->output[0], ti, &ri);
    if (!r2 || strcmp(r2->op_type, "Reshape") || r2->n_input < 2)
        return HQ_OK;
    value_t *shape = value_of(c, r2->input[1]);
    if (!shape || shape->kind != VALUE_CONST || hq_tensor_count(shape->constant) != 4)
        return HQ_OK;
    const hq_tensor_t *sv = shape->constant;
    int64_t b = tensor_int_at(sv, 0);
    if ((b != 1 && b != 0 && b != -1) || tensor_at(sv, 1) != ch || tensor_at(sv, 2) != in[2] * r ||
        tensor_at(sv, 3) != in[3] * r || r < 1 || r > 4096)
        return HQ_OK;
    int index;
    hq_status_t st;
    if ((st = new_layer(c, HQ_LAYER_DEPTH_TO_SPACE, n, &index)) != HQ_OK ||
        (st = connect_value(c, x, index)) != HQ_OK ||
        (st = hq_layer_add_original_name(c->graph, index, node_label(t), c->err)) != HQ_OK ||
        (st = hq_layer_add_original_name(c->graph, index, node_label(r2), c->err)) != HQ_OK)
        return st;
    lp(c, index)->block_size = (int)r;
    lp(c, index)->depth_to_space_crd = crd;
    /* the Transpose and the second Reshape are done: skipped when their turn comes */
    c->plans[ti].skip = true;
    c->plans[ri].skip = true;
    *done = true;
    return set_layer_output(c, r2, 0, index, 0, 4);
}

static hq_status_t op_reshape(ctx_t *c, const Onnx__NodeProto *n)
{
    value_t *x;
    hq_status_t st = node_input(c, n, 0, &x);
    if (st != HQ_OK)
        return st;
    if (!x || x->kind != VALUE_LAYER)
        NODE_FAIL(c, n, HQ_ERR_FORMAT, "input 1 is missing");
    int rank;
    int64_t in[4], to[HQ_TENSOR_MAX_DIMS];
    int to_rank = 0;
    if ((st = onnx_shape_of(c, x, &rank, in)) != HQ_OK)
        return st;
    const char *op = n->op_type;
    if (!strcmp(op, "Reshape")) {
        hq_tensor_t *ts;
        if ((st = const_input(c, n, 1, true, &ts)) != HQ_OK ||
            (st = reshape_target(c, n, in, rank, ts, to, &to_rank)) != HQ_OK)
            return st;
        bool done = false;
        if (to_rank == 6 && rank == 4 && to[0] == 1 && !x->flat &&
            (st = pixel_shuffle(c, n, x, in, to, &done)) != HQ_OK)
            return st;
        if (done)
            return HQ_OK;
    } else if (!strcmp(op, "Flatten")) {
        int64_t axis = attr_int(n, "axis", 1);
        if (axis < 0)
            axis += rank;
        if (axis != 1)
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "axis %lld (only 1)", (long long)axis);
        to_rank = 2;
        to[0] = 1;
        to[1] = 1;
        for (int d = 1; d < rank; d++)
            to[1] *= in[d];
    } else {
        bool un = op[0] == 'U';
        int64_t axes[HQ_TENSOR_MAX_DIMS];
        int k;
        int kk;
        (void)attr_ints(n, "axes", &kk);
        hq_tensor_t *ta = NULL;
        if (kk < 0 && (st = const_input(c, n, 1, false, &ta)) != HQ_OK)
            return st;
        int count = kk >= 0 ? kk : ta ? (int)hq_tensor_count(ta) : 0;
        if (count > HQ_TENSOR_MAX_DIMS - rank)
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "too many axes");
        if ((st = axes_of(c, n, un ? rank + count : rank, axes, &k)) != HQ_OK)
            return st;
        if (un) {
            bool is_new[HQ_TENSOR_MAX_DIMS] = {0};
            for (int i = 0; i < k; i++)
                is_new[axes[i]] = true;
            if (is_new[0]) /* the batch would move to axis 1 */
                NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "a new axis before the batch");
            to_rank = rank + k;
            for (int d = 0, s = 0; d < to_rank; d++)
                to[d] = is_new[d] ? 1 : (s < rank ? in[s++] : 1);
        } else {
            for (int d = 0; d < rank; d++) {
                bool drop = k == 0 ? in[d] == 1 && d > 0 : false;
                for (int i = 0; i < k; i++)
                    drop |= axes[i] == d;
                if (drop && d == 0)
                    NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "squeezing the batch axis");
                if (drop && in[d] != 1)
                    NODE_FAIL(c, n, HQ_ERR_INVALID, "squeezing axis %d of extent %lld", d,
                              (long long)in[d]);
                if (!drop)
                    to[to_rank++] = in[d];
            }
        }
    }
    return reshape_value(c, n, x, to_rank, to);
}

static hq_status_t op_transpose(ctx_t *c, const Onnx__NodeProto *n)
{
    value_t *x;
    hq_status_t st = layer_input(c, n, 0, &x);
    if (st != HQ_OK)
        return st;
    int k;
    const int64_t *perm = attr_ints(n, "perm", &k);
    if (k != x->rank)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "perm must list the %d axes", x->rank);
    bool seen[4] = {0};
    for (int i = 0; i < k; i++) {
        if (perm[i] < 0 || perm[i] >= k || seen[perm[i]])
            NODE_FAIL(c, n, HQ_ERR_INVALID, "perm is not a permutation");
        seen[perm[i]] = true;
    }
    if (perm[0] != 0)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "moving the batch axis");
    if (x->rank == 2)
        return alias_output(c, n, x);
    int64_t perm4[4];
    if (x->rank == 3) { /* [N, C, L] = [N, C, 1, L]: ONNX axes 0, 1, 2 are 4-D axes 0, 1, 3 */
        static const int64_t to4[3] = {0, 1, 3};
        perm4[0] = 0, perm4[1] = to4[perm[1]], perm4[2] = 2, perm4[3] = to4[perm[2]];
        perm = perm4;
    }
    /* hq axis i holds ONNX axis inv[i]; out hq axis i = in hq axis map[perm[inv[i]]]. */
    static const int map[4] = {0, 3, 1, 2}, inv[4] = {0, 2, 3, 1};
    int q[4];
    bool identity = true;
    for (int i = 0; i < 4; i++) {
        q[i] = map[perm[inv[i]]];
        identity &= q[i] == i;
    }
    if (identity)
        return alias_output(c, n, x);
    int index;
    if ((st = add_transpose(c, x->layer, x->port, q, 4, &index)) != HQ_OK ||
        (st = hq_layer_add_original_name(c->graph, index, node_label(n), c->err)) != HQ_OK)
        return st;
    return set_layer_output(c, n, 0, index, 0, x->rank);
}

static hq_status_t op_simple(ctx_t *c, const Onnx__NodeProto *n)
{
    value_t *x;
    const char *op = n->op_type;
    hq_status_t st = layer_input(c, n, 0, &x);
    if (st != HQ_OK)
        return st;
    if (!strcmp(op, "Identity") || !strcmp(op, "Dropout")) {
        if (n->n_output > 1 && n->output[1][0] && value_of(c, n->output[1])->uses)
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "the mask output is used");
        /* opset 12+: training_mode (input 3) true makes it random; inference means false */
        value_t *training = NULL;
        if (op[0] == 'D' && (st = node_input(c, n, 2, &training)) != HQ_OK)
            return st;
        if (training &&
            (training->kind != VALUE_CONST || hq_tensor_count(training->constant) != 1 ||
             tensor_at(training->constant, 0) != 0))
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "training_mode is not a constant false");
        return alias_output(c, n, x);
    }
    int rank;
    int64_t dims[4];
    if ((st = onnx_shape_of(c, x, &rank, dims)) != HQ_OK)
        return st;
    hq_layer_type_t type;
    int index;
    if (!strcmp(op, "Softmax") || !strcmp(op, "LogSoftmax")) {
        if (op[0] == 'L')
            return unsupported_node(c, n);
        int64_t oaxis = attr_int(n, "axis", c->opset >= 13 ? -1 : 1);
        int axis = map_axis(oaxis, rank);
        if (axis < 0)
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "softmax over axis %lld", (long long)oaxis);
        /* before opset 13 the input is flattened from `axis` on: one axis only when the ones
         * after it are 1 */
        int64_t after = 1;
        for (int64_t d = (oaxis < 0 ? oaxis + rank : oaxis) + 1; d < rank; d++)
            after *= dims[d];
        if (c->opset < 13 && after != 1)
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "opset < 13 softmax over several axes");
        if ((st = new_layer(c, HQ_LAYER_SOFTMAX, n, &index)) != HQ_OK ||
            (st = connect_value(c, x, index)) != HQ_OK)
            return st;
        lp(c, index)->axis = axis;
        return set_layer_output(c, n, 0, index, 0, rank);
    }
    if (rank != 4)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "input of rank %d", rank);
    int64_t block = attr_int(n, "blocksize", 0);
    if (block < 1 || block > 4096)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "blocksize %lld", (long long)block);
    type = !strcmp(op, "DepthToSpace") ? HQ_LAYER_DEPTH_TO_SPACE : HQ_LAYER_SPACE_TO_DEPTH;
    if ((st = new_layer(c, type, n, &index)) != HQ_OK || (st = connect_value(c, x, index)) != HQ_OK)
        return st;
    lp(c, index)->block_size = (int)block;
    if (type == HQ_LAYER_DEPTH_TO_SPACE) {
        const char *mode = attr_string(n, "mode", "DCR");
        if (strcmp(mode, "DCR") && strcmp(mode, "CRD"))
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "mode '%s'", mode);
        lp(c, index)->depth_to_space_crd = !strcmp(mode, "CRD");
    }
    return set_layer_output(c, n, 0, index, 0, 4);
}

static hq_status_t op_shape(ctx_t *c, const Onnx__NodeProto *n)
{
    value_t *x;
    hq_status_t st = node_input(c, n, 0, &x);
    if (st != HQ_OK)
        return st;
    if (!x)
        NODE_FAIL(c, n, HQ_ERR_FORMAT, "input 1 is missing");
    int rank;
    int64_t dims[4];
    if ((st = onnx_shape_of(c, x, &rank, dims)) != HQ_OK)
        return st;
    int64_t start = attr_int(n, "start", 0), end = attr_int(n, "end", rank);
    if (start < 0)
        start += rank;
    if (end < 0)
        end += rank;
    start = start < 0 ? 0 : start > rank ? rank : start;
    end = end < start ? start : end > rank ? rank : end;
    int64_t len = end - start;
    hq_tensor_t *t;
    if ((st = new_tensor(c, HQ_DTYPE_INT64, 1, &len, &t)) != HQ_OK)
        return st;
    for (int64_t i = 0; i < len; i++)
        ((int64_t *)t->data)[i] = dims[start + i];
    return set_const_output(c, n, 0, t);
}

/* ---- dispatch --------------------------------------------------------------------------- */

typedef hq_status_t (*op_fn)(ctx_t *c, const Onnx__NodeProto *n);

static const struct {
    const char *op;
    op_fn fn;
} op_table[] = {
    {"Conv", op_conv},
    {"ConvTranspose", op_conv},
    {"Gemm", op_dense},
    {"MatMul", op_dense},
    {"BatchNormalization", op_batch_norm},
    {"Relu", op_activation},
    {"Clip", op_activation},
    {"LeakyRelu", op_activation},
    {"PRelu", op_activation},
    {"Sigmoid", op_activation},
    {"Tanh", op_activation},
    {"HardSigmoid", op_activation},
    {"HardSwish", op_activation},
    {"Exp", op_activation},
    {"Add", op_binary},
    {"Sub", op_binary},
    {"Mul", op_binary},
    {"Div", op_binary},
    {"Max", op_binary},
    {"Min", op_binary},
    {"MaxPool", op_pool},
    {"AveragePool", op_pool},
    {"GlobalAveragePool", op_pool},
    {"GlobalMaxPool", op_pool},
    {"Concat", op_concat},
    {"Split", op_split},
    {"Slice", op_slice},
    {"Pad", op_pad},
    {"Resize", op_resize},
    {"Upsample", op_resize},
    {"Reshape", op_reshape},
    {"Flatten", op_reshape},
    {"Squeeze", op_reshape},
    {"Unsqueeze", op_reshape},
    {"Transpose", op_transpose},
    {"DepthToSpace", op_simple},
    {"SpaceToDepth", op_simple},
    {"Softmax", op_simple},
    {"Identity", op_simple},
    {"Dropout", op_simple},
    {"Shape", op_shape},
};

static op_fn find_op(const char *op)
{
    for (size_t i = 0; i < sizeof op_table / sizeof op_table[0]; i++)
        if (!strcmp(op_table[i].op, op))
            return op_table[i].fn;
    return NULL;
}

/* ---- patterns: SiLU and HardSwish decompositions ------------------------------------------ */

static const Onnx__NodeProto *producer_of(ctx_t *c, const char *name)
{
    value_t *v = value_of(c, name);
    return v && v->producer >= 0 ? c->g->node[v->producer] : NULL;
}

static bool literal(ctx_t *c, const char *name, double want)
{
    value_t *v = value_of(c, name);
    return v && v->kind == VALUE_CONST && hq_tensor_count(v->constant) == 1 &&
           fabs(tensor_at(v->constant, 0) - want) < 1e-5;
}

static int uses_of(ctx_t *c, const char *name)
{
    value_t *v = value_of(c, name);
    return v ? v->uses : 0;
}

static bool is_op(const Onnx__NodeProto *n, const char *op, size_t inputs)
{
    return n && n->op_type && !strcmp(n->op_type, op) && n->n_input >= inputs && n->n_output >= 1;
}

/* s == x + 3 (Add with a literal 3). */
static bool is_x_plus_3(ctx_t *c, const char *s, const char *x, const Onnx__NodeProto **add)
{
    const Onnx__NodeProto *a = producer_of(c, s);
    if (!is_op(a, "Add", 2) || uses_of(c, s) != 1)
        return false;
    *add = a;
    return (!strcmp(a->input[0], x) && literal(c, a->input[1], 3)) ||
           (!strcmp(a->input[1], x) && literal(c, a->input[0], 3));
}

/* s == relu6(x + 3): Clip(x + 3, 0, 6). */
static bool is_relu6_x_plus_3(ctx_t *c, const char *s, const char *x, const Onnx__NodeProto **nodes)
{
    const Onnx__NodeProto *cl = producer_of(c, s);
    if (!is_op(cl, "Clip", 1) || uses_of(c, s) != 1)
        return false;
    bool range = false;
    if (cl->n_input >= 3)
        range = literal(c, cl->input[1], 0) && literal(c, cl->input[2], 6);
    else
        range = fabsf(attr_float(cl, "min", -1) - 0) < 1e-6f &&
                fabsf(attr_float(cl, "max", -1) - 6) < 1e-6f;
    nodes[0] = cl;
    return range && is_x_plus_3(c, cl->input[0], x, &nodes[1]);
}

/* s == x / 6 or x * (1/6); *inner = x. */
static bool is_div6(ctx_t *c, const Onnx__NodeProto *d, const char **inner)
{
    if (is_op(d, "Div", 2) && literal(c, d->input[1], 6)) {
        *inner = d->input[0];
        return true;
    }
    if (is_op(d, "Mul", 2)) {
        for (int i = 0; i < 2; i++)
            if (literal(c, d->input[i], 1.0 / 6)) {
                *inner = d->input[1 - i];
                return true;
            }
    }
    return false;
}

static void plan_activation(ctx_t *c, int node, const char *x, hq_activation_t act,
                            const Onnx__NodeProto **skipped, int count, int x_uses)
{
    node_plan_t *p = &c->plans[node];
    p->act = (int)act;
    p->act_input = x;
    p->x_uses = x_uses;
    p->extra_count = 0;
    for (int i = 0; i < count; i++) {
        for (size_t k = 0; k < c->g->n_node; k++)
            if (c->g->node[k] == skipped[i]) {
                c->plans[k].skip = true;
                break;
            }
        if (p->extra_count < 4)
            p->extra_names[p->extra_count++] = node_label(skipped[i]);
    }
}

static void plan_patterns(ctx_t *c)
{
    for (size_t i = 0; i < c->g->n_node; i++) {
        const Onnx__NodeProto *n = c->g->node[i];
        if (c->plans[i].skip || n->n_output < 1)
            continue;
        const char *inner;
        /* (x * relu6(x + 3)) / 6 */
        if (is_div6(c, n, &inner) && uses_of(c, inner) == 1) {
            const Onnx__NodeProto *m = producer_of(c, inner), *nodes[3];
            if (is_op(m, "Mul", 2)) {
                for (int k = 0; k < 2; k++) {
                    const char *x = m->input[k];
                    if (is_relu6_x_plus_3(c, m->input[1 - k], x, nodes)) {
                        nodes[2] = m;
                        plan_activation(c, (int)i, x, HQ_ACT_HARDSWISH, nodes, 3, 0);
                        break;
                    }
                }
            }
            if (c->plans[i].act >= 0)
                continue;
        }
        if (!is_op(n, "Mul", 2))
            continue;
        for (int k = 0; k < 2 && c->plans[i].act < 0; k++) {
            const char *x = n->input[k], *s = n->input[1 - k];
            const Onnx__NodeProto *g = producer_of(c, s), *nodes[3];
            if (!g || uses_of(c, s) != 1 || g->n_input < 1)
                continue;
            if (is_op(g, "Sigmoid", 1) && !strcmp(g->input[0], x)) {
                nodes[0] = g;
                plan_activation(c, (int)i, x, HQ_ACT_SILU, nodes, 1, 1);
            } else if (is_op(g, "HardSigmoid", 1) && !strcmp(g->input[0], x) &&
                       fabsf(attr_float(g, "alpha", 0.2f) - 1.0f / 6) < 1e-5f &&
                       fabsf(attr_float(g, "beta", 0.5f) - 0.5f) < 1e-6f) {
                nodes[0] = g;
                plan_activation(c, (int)i, x, HQ_ACT_HARDSWISH, nodes, 1, 1);
            } else if (is_div6(c, g, &inner) && uses_of(c, inner) == 1 &&
                       is_relu6_x_plus_3(c, inner, x, nodes)) {
                nodes[2] = g;
                plan_activation(c, (int)i, x, HQ_ACT_HARDSWISH, nodes, 3, 1);
            }
        }
    }
}

static hq_status_t unsupported_node(ctx_t *c, const Onnx__NodeProto *n)
{
    const char *producer = NULL;
    for (size_t k = 0; k < n->n_input && !producer; k++) {
        value_t *in = n->input[k][0] ? value_of(c, n->input[k]) : NULL;
        /* a computed input: cutting at a Constant node (Paddle's weights) would not help */
        if (in && in->producer >= 0 && in->kind == VALUE_LAYER)
            producer = node_label(c->g->node[in->producer]);
    }
    if (!producer) /* it reads network inputs: the way out is to start after it */
        return hqi_error(c->err, HQ_ERR_UNSUPPORTED,
                         "%s: node '%s' (%s) is not supported; it reads the network input "
                         "directly, so there is no node before it to cut the graph at",
                         c->name, node_label(n), n->op_type);
    return hqi_error(c->err, HQ_ERR_UNSUPPORTED,
                     "%s: node '%s' (%s) is not supported; cut the graph before it with "
                     "--end-node-names %s",
                     c->name, node_label(n), n->op_type, producer);
}

/* ---- driver ----------------------------------------------------------------------------- */

static hq_status_t load_constants(ctx_t *c)
{
    Onnx__GraphProto *g = c->g;
    hq_status_t st;
    for (size_t i = 0; i < g->n_initializer; i++) {
        Onnx__TensorProto *tp = g->initializer[i];
        const char *name = tp->name ? tp->name : "";
        value_t *v;
        hq_tensor_t *t;
        if ((st = intern_value(c, name, &v)) != HQ_OK)
            return st;
        if (v->kind == VALUE_CONST)
            continue;
        if ((st = decode_tensor(c, tp, name, &t)) != HQ_OK)
            return st;
        v->kind = VALUE_CONST;
        v->constant = t;
    }
    for (size_t i = 0; i < g->n_node; i++) {
        Onnx__NodeProto *n = g->node[i];
        if (!n->op_type || strcmp(n->op_type, "Constant") || n->n_output < 1)
            continue;
        value_t *v = value_of(c, n->output[0]);
        if (!v || v->kind != VALUE_UNKNOWN)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "output '%s' is produced twice", n->output[0]);
        hq_tensor_t *t = NULL;
        const Onnx__AttributeProto *a;
        if ((a = find_attr(n, "value")) && a->t) {
            if ((st = decode_tensor(c, a->t, n->output[0], &t)) != HQ_OK)
                return st;
        } else if ((a = find_attr(n, "value_float"))) {
            if ((st = new_tensor(c, HQ_DTYPE_FLOAT32, 0, NULL, &t)) != HQ_OK)
                return st;
            *(float *)t->data = a->f;
        } else if ((a = find_attr(n, "value_int"))) {
            if ((st = new_tensor(c, HQ_DTYPE_INT64, 0, NULL, &t)) != HQ_OK)
                return st;
            *(int64_t *)t->data = a->i;
        } else if ((a = find_attr(n, "value_floats")) || (a = find_attr(n, "value_ints"))) {
            bool fl = !strcmp(a->name, "value_floats");
            int64_t len = fl ? (int64_t)a->n_floats : (int64_t)a->n_ints;
            if ((st = new_tensor(c, fl ? HQ_DTYPE_FLOAT32 : HQ_DTYPE_INT64, 1, &len, &t)) != HQ_OK)
                return st;
            for (int64_t k = 0; k < len; k++)
                put_at(t, k, fl ? a->floats[k] : (double)a->ints[k]);
        } else {
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "constant without a tensor, float or int value");
        }
        v->kind = VALUE_CONST;
        v->constant = t;
    }
    return HQ_OK;
}

static hq_status_t add_input(ctx_t *c, const char *name, int rank, const int64_t *dims, int *count)
{
    value_t *v = value_of(c, name);
    if (!v || !v->needed || v->kind != VALUE_UNKNOWN)
        return HQ_OK;
    hq_shape_t shape;
    if (rank == 4)
        shape = (hq_shape_t){4, {-1, dims[2], dims[3], dims[1]}};
    else if (rank == 3)
        shape = (hq_shape_t){4, {-1, 1, dims[2], dims[1]}};
    else if (rank == 2)
        shape = (hq_shape_t){2, {-1, dims[1]}};
    else
        return hqi_error(c->err, HQ_ERR_UNSUPPORTED,
                         "%s: input '%s' has rank %d; hq takes [N, C, H, W], [N, C, L] or "
                         "[N, C] inputs",
                         c->name, name, rank);
    for (int d = 1; d < shape.ndim; d++)
        if (shape.dims[d] < 1 || shape.dims[d] > (1 << 30))
            return hqi_error(c->err, HQ_ERR_UNSUPPORTED, "%s: input '%s': dimension %lld", c->name,
                             name, (long long)shape.dims[d]);
    int index;
    hq_status_t st;
    if ((st = new_layer(c, HQ_LAYER_INPUT, NULL, &index)) != HQ_OK ||
        (st = hq_layer_add_original_name(c->graph, index, name, c->err)) != HQ_OK ||
        (st = hq_layer_set_output_shape(c->graph, index, &shape, c->err)) != HQ_OK)
        return st;
    v->kind = VALUE_LAYER;
    v->layer = index;
    v->port = 0;
    v->rank = rank;
    (*count)++;
    return HQ_OK;
}

static hq_status_t add_graph_inputs(ctx_t *c, const input_override_t *overrides, int override_count)
{
    int count = 0;
    hq_status_t st;
    for (int i = 0; i < override_count; i++)
        if ((st = add_input(c, overrides[i].name, overrides[i].rank, overrides[i].dims, &count)) !=
            HQ_OK)
            return st;
    /* With --start-node-names, graph inputs still read after the cut (a skip connection
     * from the image, a second input) stay inputs, after the cut tensors. */
    int position = -1; /* among the graph inputs that are not initializers */
    for (size_t i = 0; i < c->g->n_input; i++) {
        Onnx__ValueInfoProto *vi = c->g->input[i];
        const char *name = vi->name ? vi->name : "";
        value_t *v = value_of(c, name);
        bool overridden = false;
        for (int k = 0; k < override_count; k++)
            overridden |= !strcmp(overrides[k].name, name);
        if (v && (v->kind == VALUE_UNKNOWN || overridden))
            position++;
        if (!v || v->kind != VALUE_UNKNOWN || !v->needed)
            continue; /* an initializer listed as input, a cut tensor, or unused */
        const hq_shape_t *given =
            position < c->input_shape_count ? &c->input_shapes[position] : NULL;
        /* `type` is a oneof: a sequence or optional input shares the tensor_type slot */
        Onnx__TypeProto__Tensor *tt =
            vi->type && vi->type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
                ? vi->type->tensor_type
                : NULL;
        if (vi->type && vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE &&
            vi->type->value_case != ONNX__TYPE_PROTO__VALUE__NOT_SET)
            return hqi_error(c->err, HQ_ERR_UNSUPPORTED,
                             "%s: input '%s' is a sequence, map or optional; hq takes tensors",
                             c->name, name);
        if ((!tt || !tt->shape) && !given)
            return hqi_error(c->err, HQ_ERR_UNSUPPORTED,
                             "%s: input '%s' has no tensor shape; export with a static input shape "
                             "or give one with --tensor-shapes",
                             c->name, name);
        int rank = tt && tt->shape ? (int)tt->shape->n_dim : given->ndim;
        int64_t dims[4] = {1, 1, 1, 1};
        if (given && given->ndim != rank)
            return hqi_error(c->err, HQ_ERR_INVALID,
                             "%s: input '%s' has rank %d, the shape given for it has rank %d",
                             c->name, name, rank, given->ndim);
        if (rank < 2 || rank > 4)
            return hqi_error(c->err, HQ_ERR_UNSUPPORTED,
                             "%s: input '%s' has rank %d; hq takes [N, C, H, W], [N, C, L] or "
                             "[N, C] inputs",
                             c->name, name, rank);
        for (int d = 0; d < rank; d++) {
            Onnx__TensorShapeProto__Dimension *dim = tt && tt->shape ? tt->shape->dim[d] : NULL;
            bool known = dim &&
                         dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
                         dim->dim_value > 0;
            if (given && d > 0) {
                /* a given shape fills dynamic dimensions; it cannot contradict static ones */
                if (known && dim->dim_value != given->dims[d])
                    return hqi_error(c->err, HQ_ERR_INVALID,
                                     "%s: input '%s': dimension %d is %lld in the model, %lld in "
                                     "the shape given for it",
                                     c->name, name, d, (long long)dim->dim_value,
                                     (long long)given->dims[d]);
                dims[d] = given->dims[d];
                continue;
            }
            if (!known && d > 0)
                return hqi_error(c->err, HQ_ERR_UNSUPPORTED,
                                 "%s: input '%s': dimension %d ('%s') is dynamic; export the "
                                 "model with a static input shape or give one with "
                                 "--tensor-shapes",
                                 c->name, name, d,
                                 dim && dim->value_case ==
                                             ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                                     ? dim->dim_param
                                     : "?");
            dims[d] = d == 0 ? 1 : dim->dim_value;
        }
        if ((st = add_input(c, name, rank, dims, &count)) != HQ_OK)
            return st;
    }
    if (!count)
        return hqi_error(c->err, HQ_ERR_INVALID, "%s: the graph has no input feeding its outputs",
                         c->name);
    return HQ_OK;
}

static int find_node(const ctx_t *c, const char *name)
{
    for (size_t i = 0; i < c->g->n_node; i++)
        if (c->g->node[i]->name && !strcmp(c->g->node[i]->name, name))
            return (int)i;
    return -1;
}

/* The node has read its inputs: they no longer count as pending reads. */
static void release_inputs(ctx_t *c, const Onnx__NodeProto *n)
{
    for (size_t k = 0; k < n->n_input; k++) {
        value_t *v = n->input[k][0] ? value_of(c, n->input[k]) : NULL;
        if (v && v->uses > 0)
            v->uses--;
    }
}

/* ---- 1-D convolutions and pools ---------------------------------------------------------- */

/* A 1-D op on [N, C, L] is the 2-D op on [N, C, 1, L]: the node is copied with its spatial
 * attributes widened to 2-D (kernel_shape [k] -> [1, k], pads [b, e] -> [0, b, 0, e], ...). */
typedef struct lifted_node {
    Onnx__NodeProto node;
    Onnx__AttributeProto **attrs;
    Onnx__AttributeProto *copies;
    int64_t *ints;
} lifted_node_t;

static bool lift_candidate(ctx_t *c, const Onnx__NodeProto *n)
{
    static const char *const ops[] = {"Conv",        "ConvTranspose",     "MaxPool",
                                      "AveragePool", "GlobalAveragePool", "GlobalMaxPool"};
    bool op = false;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        op |= !strcmp(n->op_type, ops[i]);
    if (!op || n->n_input < 1 || !n->input[0][0])
        return false;
    value_t *x = value_of(c, n->input[0]);
    return x && x->kind == VALUE_LAYER && !x->flat && x->rank == 3;
}

static void lifted_free(lifted_node_t *l)
{
    free(l->attrs);
    free(l->copies);
    free(l->ints);
}

static hq_status_t lift_1d_node(ctx_t *c, const Onnx__NodeProto *n, lifted_node_t *l)
{
    memset(l, 0, sizeof *l);
    l->node = *n;
    size_t total = 0;
    for (size_t i = 0; i < n->n_attribute; i++)
        total += 2 * n->attribute[i]->n_ints;
    l->attrs = calloc(n->n_attribute + 1, sizeof *l->attrs);
    l->copies = calloc(n->n_attribute + 1, sizeof *l->copies);
    l->ints = calloc(total + 1, sizeof *l->ints);
    if (!l->attrs || !l->copies || !l->ints) {
        lifted_free(l);
        return hqi_nomem(c->err, c->name);
    }
    int64_t *next = l->ints;
    for (size_t i = 0; i < n->n_attribute; i++) {
        const Onnx__AttributeProto *a = n->attribute[i];
        l->copies[i] = *a;
        l->attrs[i] = &l->copies[i];
        const char *name = a->name ? a->name : "";
        bool pads = !strcmp(name, "pads");
        bool spatial = !strcmp(name, "kernel_shape") || !strcmp(name, "strides") ||
                       !strcmp(name, "dilations") || !strcmp(name, "output_padding") ||
                       !strcmp(name, "output_shape");
        if ((!pads && !spatial) || a->n_ints == 0)
            continue;
        if ((pads && a->n_ints != 2) || (spatial && a->n_ints != 1)) {
            lifted_free(l);
            NODE_FAIL(c, n, HQ_ERR_INVALID, "attribute '%s' has %zu values for a 1-D input", name,
                      a->n_ints);
        }
        /* the new H axis: extent 1, stride/dilation 1, no padding */
        int64_t fill = !strcmp(name, "kernel_shape") || !strcmp(name, "strides") ||
                               !strcmp(name, "dilations") || !strcmp(name, "output_shape")
                           ? 1
                           : 0;
        int64_t *v = next;
        if (pads) {
            v[0] = 0, v[1] = a->ints[0], v[2] = 0, v[3] = a->ints[1];
            next += 4;
        } else {
            v[0] = fill, v[1] = a->ints[0];
            next += 2;
        }
        l->copies[i].ints = v;
        l->copies[i].n_ints = (size_t)(next - v);
    }
    l->node.attribute = l->attrs;
    return HQ_OK;
}

/* Converts the graph so that `outputs` (tensor names) become the outputs, with `overrides` as the
 * inputs when given. */
static hq_status_t convert(ctx_t *c, const char *const *outputs, int output_count,
                           const input_override_t *overrides, int override_count)
{
    Onnx__GraphProto *g = c->g;
    hq_status_t st;
    value_t *v;
    /* Every name gets a value up front: pointers into the table stay valid from here on. */
    for (size_t i = 0; i < g->n_node; i++) {
        Onnx__NodeProto *n = g->node[i];
        if (!n->op_type)
            return hqi_error(c->err, HQ_ERR_FORMAT, "%s: node %zu has no op_type", c->name, i);
        for (size_t k = 0; k < n->n_input; k++)
            if (n->input[k][0] && (st = intern_value(c, n->input[k], &v)) != HQ_OK)
                return st;
        for (size_t k = 0; k < n->n_output; k++) {
            if (!n->output[k][0])
                continue;
            if ((st = intern_value(c, n->output[k], &v)) != HQ_OK)
                return st;
            if (v->producer < 0)
                v->producer = (int)i;
        }
    }
    for (int i = 0; i < output_count; i++)
        if ((st = intern_value(c, outputs[i], &v)) != HQ_OK)
            return st;
    for (size_t i = 0; i < g->n_input; i++)
        if (g->input[i]->name && (st = intern_value(c, g->input[i]->name, &v)) != HQ_OK)
            return st;
    if ((st = load_constants(c)) != HQ_OK)
        return st;
    /* Needed nodes: walk back from the outputs, stopping at overridden inputs. */
    for (int i = 0; i < output_count; i++) {
        v = value_of(c, outputs[i]);
        v->needed = true;
        v->uses++;
    }
    bool *node_needed = calloc(g->n_node + 1, sizeof *node_needed);
    c->plans = calloc(g->n_node + 1, sizeof *c->plans);
    const char **names = calloc((g->n_node + 1) * 4, sizeof *names);
    c->plan_names = names;
    if (!node_needed || !c->plans || !names) {
        free(node_needed);
        return hqi_nomem(c->err, c->name);
    }
    for (size_t i = 0; i < g->n_node; i++) {
        c->plans[i].act = -1;
        c->plans[i].extra_names = names + i * 4;
    }
    for (size_t i = g->n_node; i-- > 0;) {
        Onnx__NodeProto *n = g->node[i];
        bool need = false;
        for (size_t k = 0; k < n->n_output; k++) {
            value_t *o = n->output[k][0] ? value_of(c, n->output[k]) : NULL;
            bool overridden = false;
            for (int j = 0; o && j < override_count; j++)
                overridden |= !strcmp(overrides[j].name, o->name);
            if (o && o->needed && o->producer == (int)i && !overridden)
                need = true;
        }
        if (!need || !strcmp(n->op_type, "Constant"))
            continue;
        node_needed[i] = true;
        for (size_t k = 0; k < n->n_input; k++)
            if (n->input[k][0]) {
                v = value_of(c, n->input[k]);
                v->needed = true;
                v->uses++;
            }
    }
    plan_patterns(c);
    st = add_graph_inputs(c, overrides, override_count);
    for (size_t i = 0; i < g->n_node && st == HQ_OK; i++) {
        Onnx__NodeProto *n = g->node[i];
        if (!node_needed[i])
            continue;
        if (c->plans[i].skip) {
            release_inputs(c, n);
            continue;
        }
        if (c->plans[i].act >= 0) {
            st = op_planned_activation(c, n, &c->plans[i]);
        } else {
            bool folded;
            st = fold_node(c, n, &folded);
            if (st == HQ_OK && !folded && lift_candidate(c, n)) {
                lifted_node_t lifted;
                st = lift_1d_node(c, n, &lifted);
                if (st == HQ_OK) {
                    c->lift_1d = true;
                    st = find_op(n->op_type)(c, &lifted.node);
                    c->lift_1d = false;
                    lifted_free(&lifted);
                }
                for (size_t k = 0; st == HQ_OK && k < n->n_output; k++) {
                    value_t *o = n->output[k][0] ? value_of(c, n->output[k]) : NULL;
                    if (o && o->kind == VALUE_LAYER)
                        o->rank = 3;
                }
            } else if (st == HQ_OK && !folded) {
                op_fn fn = find_op(n->op_type);
                st = fn ? fn(c, n) : unsupported_node(c, n);
            }
        }
        release_inputs(c, n);
    }
    free(node_needed);
    if (st != HQ_OK)
        return st;
    int *outs = malloc(((size_t)output_count + 1) * sizeof *outs);
    if (!outs)
        return hqi_nomem(c->err, c->name);
    for (int i = 0; i < output_count && st == HQ_OK; i++) {
        v = value_of(c, outputs[i]);
        if (v->kind != VALUE_LAYER) {
            st = hqi_error(c->err, HQ_ERR_UNSUPPORTED,
                           v->kind == VALUE_CONST ? "%s: output '%s' is a constant"
                                                  : "%s: output '%s' is not produced by any node",
                           c->name, outputs[i]);
            break;
        }
        if ((st = materialize(c, v)) != HQ_OK)
            break;
        if ((st = new_layer(c, HQ_LAYER_OUTPUT, NULL, &outs[i])) == HQ_OK &&
            (st = hq_layer_add_original_name(c->graph, outs[i], outputs[i], c->err)) == HQ_OK)
            st = connect_value(c, v, outs[i]);
    }
    if (st == HQ_OK)
        st = hq_graph_set_outputs_order(c->graph, outs, output_count, c->err);
    free(outs);
    if (st == HQ_OK)
        st = hq_graph_finalize(c->graph, c->name, c->err);
    return st;
}

static void ctx_free(ctx_t *c)
{
    for (int i = 0; i < c->value_count; i++) {
        free(c->values[i].name);
        hq_tensor_destroy(c->values[i].constant);
    }
    free(c->values);
    free(c->table);
    free((void *)c->plan_names);
    free(c->plans);
    param_destroy_all(c);
    hq_graph_destroy(c->graph);
    memset(c, 0, sizeof *c);
}

static hq_status_t ctx_init(ctx_t *c, Onnx__ModelProto *model, const char *name,
                            const char *net_name, hq_error_t *err)
{
    memset(c, 0, sizeof *c);
    c->name = name;
    c->err = err;
    c->g = model->graph;
    c->opset = 1;
    c->limit = MAX_CONST_ELEMENTS;
    for (size_t i = 0; i < model->n_opset_import; i++) {
        Onnx__OperatorSetIdProto *o = model->opset_import[i];
        if (!o->domain || !o->domain[0] || !strcmp(o->domain, "ai.onnx"))
            c->opset = o->version;
    }
    return hq_graph_create(net_name, &c->graph, err);
}

/* The network name from a file name: no folder, no extension, [A-Za-z0-9_] only. */
static void default_net_name(const char *name, char *out, size_t size)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    /* only the last extension goes: "mobile_v2.0_cls.onnx" keeps its "2.0" (as "2_0") */
    const char *dot = strrchr(base, '.');
    size_t stem = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    size_t len = 0;
    for (; len < stem && len + 1 < size; len++) {
        char ch = base[len];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        out[len] = ok ? ch : '_';
    }
    out[len] = '\0';
    if (!len)
        snprintf(out, size, "net");
}

static hq_status_t build_params(ctx_t *c, hq_npz_t **out)
{
    hq_npz_t *npz;
    hq_status_t st = hq_npz_create(&npz, c->err);
    for (int i = 0; i < c->param_count && st == HQ_OK; i++) {
        char key[512];
        snprintf(key, sizeof key, "%s/%s", hq_graph_layer(c->graph, c->params[i].layer)->name,
                 c->params[i].suffix);
        st = hq_npz_put(npz, key, c->params[i].tensor, c->err);
        c->params[i].tensor = NULL;
    }
    if (st != HQ_OK) {
        hq_npz_destroy(npz);
        return st;
    }
    *out = npz;
    return HQ_OK;
}

/* Tensor names that the cut makes outputs or inputs. */
static hq_status_t cut_tensors(ctx_t *c, const char *const *nodes, int count, bool inputs,
                               const char ***names, int *name_count)
{
    const char **list = calloc((size_t)count * 16 + 1, sizeof *list);
    if (!list)
        return hqi_nomem(c->err, c->name);
    int k = 0;
    for (int i = 0; i < count; i++) {
        int idx = find_node(c, nodes[i]);
        if (idx < 0) {
            free(list);
            return hqi_error(c->err, HQ_ERR_NOT_FOUND, "%s: %s: no node named '%s'", c->name,
                             inputs ? "--start-node-names" : "--end-node-names", nodes[i]);
        }
        Onnx__NodeProto *n = c->g->node[idx];
        size_t m = inputs ? n->n_input : n->n_output;
        for (size_t j = 0; j < m && k < count * 16; j++) {
            const char *t = inputs ? n->input[j] : n->output[j];
            if (!t[0])
                continue;
            if (inputs) {
                bool is_const = false;
                for (size_t q = 0; q < c->g->n_initializer; q++)
                    is_const |=
                        c->g->initializer[q]->name && !strcmp(c->g->initializer[q]->name, t);
                const Onnx__NodeProto *p = NULL;
                for (size_t q = 0; q < c->g->n_node && !p; q++)
                    for (size_t o = 0; o < c->g->node[q]->n_output; o++)
                        if (!strcmp(c->g->node[q]->output[o], t))
                            p = c->g->node[q];
                if (is_const || (p && !strcmp(p->op_type ? p->op_type : "", "Constant")))
                    continue;
            }
            bool dup = false;
            for (int q = 0; q < k; q++)
                dup |= !strcmp(list[q], t);
            if (!dup)
                list[k++] = t;
        }
    }
    *names = list;
    *name_count = k;
    return HQ_OK;
}

static hq_status_t parse_model(Onnx__ModelProto *model, const char *name,
                               const hq_parse_options_t *opts, hq_archive_t **out, hq_error_t *err)
{
    char net[128];
    if (opts && opts->net_name && opts->net_name[0])
        snprintf(net, sizeof net, "%s", opts->net_name);
    else
        default_net_name(name, net, sizeof net);
    if (!model->graph)
        return hqi_error(err, HQ_ERR_FORMAT, "%s: the model has no graph", name);
    ctx_t c;
    hq_status_t st = ctx_init(&c, model, name, net, err);
    if (st != HQ_OK) {
        ctx_free(&c);
        return st;
    }
    if (opts && opts->input_shape_count > 0) {
        c.input_shapes = opts->input_shapes;
        c.input_shape_count = opts->input_shape_count;
    }
    const char **outputs = NULL;
    int output_count = 0;
    input_override_t *overrides = NULL;
    int override_count = 0;
    if (opts && opts->end_count > 0) {
        st = cut_tensors(&c, opts->end_nodes, opts->end_count, false, &outputs, &output_count);
    } else {
        outputs = calloc(c.g->n_output + 1, sizeof *outputs);
        if (!outputs)
            st = hqi_nomem(err, name);
        for (size_t i = 0; outputs && i < c.g->n_output; i++)
            outputs[output_count++] = c.g->output[i]->name ? c.g->output[i]->name : "";
    }
    if (st == HQ_OK && output_count == 0)
        st = hqi_error(err, HQ_ERR_INVALID, "%s: the graph has no outputs", name);
    if (st == HQ_OK && opts && opts->start_count > 0) {
        /* First pass: convert up to the cut to learn the shapes of the new inputs. */
        const char **cut = NULL;
        int cut_count = 0;
        st = cut_tensors(&c, opts->start_nodes, opts->start_count, true, &cut, &cut_count);
        if (st == HQ_OK && cut_count == 0)
            st = hqi_error(err, HQ_ERR_INVALID,
                           "%s: --start-node-names: the nodes have no "
                           "computed inputs",
                           name);
        if (st == HQ_OK)
            st = convert(&c, cut, cut_count, NULL, 0);
        if (st == HQ_OK) {
            overrides = calloc((size_t)cut_count, sizeof *overrides);
            if (!overrides)
                st = hqi_nomem(err, name);
            int count = 0;
            const int *outs = hq_graph_outputs(c.graph, &count);
            for (int i = 0; st == HQ_OK && i < cut_count && i < count; i++) {
                hq_shape_t s = hq_graph_layer(c.graph, outs[i])->output_shape;
                value_t *cv = value_of(&c, cut[i]);
                overrides[i].name = cut[i];
                overrides[i].rank = s.ndim;
                overrides[i].dims[0] = 1;
                if (s.ndim == 4 && cv && cv->rank == 3 && s.dims[1] == 1) { /* [N, C, L] */
                    overrides[i].rank = 3;
                    overrides[i].dims[1] = s.dims[3];
                    overrides[i].dims[2] = s.dims[2];
                } else if (s.ndim == 4) {
                    overrides[i].dims[1] = s.dims[3];
                    overrides[i].dims[2] = s.dims[1];
                    overrides[i].dims[3] = s.dims[2];
                } else if (s.ndim == 2) {
                    overrides[i].dims[1] = s.dims[1];
                }
                override_count++;
            }
        }
        ctx_free(&c);
        if (st == HQ_OK)
            st = ctx_init(&c, model, name, net, err);
        if (st == HQ_OK && opts->input_shape_count > 0) { /* graph inputs read after the cut */
            c.input_shapes = opts->input_shapes;
            c.input_shape_count = opts->input_shape_count;
        }
        /* `cut` strings point into the model; the array is freed once, here. */
        if (st == HQ_OK)
            st = convert(&c, outputs, output_count, overrides, override_count);
        free(cut);
    } else if (st == HQ_OK) {
        st = convert(&c, outputs, output_count, NULL, 0);
    }
    free(outputs);
    free(overrides);
    hq_archive_t *archive = NULL;
    hq_npz_t *params = NULL;
    if (st == HQ_OK)
        st = build_params(&c, &params);
    if (st == HQ_OK)
        st = hq_archive_create(net, &archive, err);
    if (st == HQ_OK && opts && opts->hw_arch) {
        const hq_cost_model_t *arch = NULL;
        hq_error_t why = {0};
        if (hqi_hw_arch_find(opts->hw_arch, &arch, &why) != HQ_OK)
            st = hqi_error(err, HQ_ERR_ARGUMENT, "%s: --hw-arch: %s", name, why.message);
        else
            st = hq_archive_set_hw_arch(archive, opts->hw_arch, err);
    }
    if (st == HQ_OK) {
        st = hq_archive_set_graph(archive, c.graph, err);
        c.graph = NULL;
    }
    if (st == HQ_OK) {
        st = hq_archive_set_params(archive, HQ_PARAMS_NATIVE, params, err);
        params = NULL;
    }
    hq_npz_destroy(params);
    ctx_free(&c);
    if (st != HQ_OK) {
        hq_archive_destroy(archive);
        return st;
    }
    *out = archive;
    return HQ_OK;
}

HQ_API hq_status_t hq_parse_onnx_memory(const void *bytes, size_t len, const char *name,
                                        const hq_parse_options_t *opts, hq_archive_t **out,
                                        hq_error_t *err)
{
    if (!out || (!bytes && len) || !name)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_parse_onnx_memory: NULL argument");
    *out = NULL;
    Onnx__ModelProto *model = onnx__model_proto__unpack(NULL, len, bytes);
    if (!model)
        return hqi_error(err, HQ_ERR_FORMAT,
                         "%s: not a valid ONNX model (protobuf decoding failed: truncated or "
                         "corrupt file)",
                         name);
    hq_status_t st = parse_model(model, name, opts, out, err);
    onnx__model_proto__free_unpacked(model, NULL);
    return st;
}

HQ_API hq_status_t hq_parse_onnx(const char *path, const hq_parse_options_t *opts,
                                 hq_archive_t **out, hq_error_t *err)
{
    if (!path || !out)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_parse_onnx: NULL argument");
    *out = NULL;
    void *bytes;
    size_t len;
    hq_status_t st = hqi_read_file(path, (size_t)4 << 30, &bytes, &len, err);
    if (st != HQ_OK)
        return st;
    st = hq_parse_onnx_memory(bytes, len, path, opts, out, err);
    free(bytes);
    return st;
}
