/* onnx_values.c — the value table (what each ONNX tensor name stands for while the graph is
 * built: unknown, a constant or a layer output), constant tensors, layer params and new layers. */
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_internal.h"

const char *onnxi_node_label(const Onnx__NodeProto *n)
{
    if (n->name && n->name[0])
        return n->name;
    if (n->n_output > 0 && n->output[0][0])
        return n->output[0];
    return "?";
}

hq_status_t onnxi_node_error(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_status_t st,
                             const char *what)
{
    return hqi_error(c->err, st, "%s: node '%s' (%s): %s", c->name, onnxi_node_label(n),
                     n->op_type ? n->op_type : "?", what);
}

static uint64_t hash_string(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int find_value(const onnxi_ctx_t *c, const char *name)
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

static hq_status_t grow_table(onnxi_ctx_t *c)
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
hq_status_t onnxi_intern_value(onnxi_ctx_t *c, const char *name, onnxi_value_t **out)
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
        onnxi_value_t *values = realloc(c->values, (size_t)cap * sizeof *values);
        if (!values)
            return hqi_nomem(c->err, c->name);
        c->values = values;
        c->value_cap = cap;
    }
    onnxi_value_t *val = &c->values[c->value_count];
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

onnxi_value_t *onnxi_value_of(onnxi_ctx_t *c, const char *name)
{
    int v = find_value(c, name);
    return v < 0 ? NULL : &c->values[v];
}

/* Input `i` of a node: NULL when absent (optional input left empty). Fails on an undefined name. */
hq_status_t onnxi_node_input(onnxi_ctx_t *c, const Onnx__NodeProto *n, size_t i,
                             onnxi_value_t **out)
{
    *out = NULL;
    if (i >= n->n_input || !n->input[i][0])
        return HQ_OK;
    onnxi_value_t *v = onnxi_value_of(c, n->input[i]);
    if (!v || v->kind == VALUE_UNKNOWN)
        NODE_FAIL(c, n, HQ_ERR_INVALID,
                  "input '%s' is not an initializer, a graph input or the output of an earlier "
                  "node",
                  n->input[i]);
    *out = v;
    return HQ_OK;
}

hq_status_t onnxi_const_input(onnxi_ctx_t *c, const Onnx__NodeProto *n, size_t i, bool required,
                              hq_tensor_t **out)
{
    onnxi_value_t *v;
    *out = NULL;
    hq_status_t st = onnxi_node_input(c, n, i, &v);
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

hq_status_t onnxi_scalar_input(onnxi_ctx_t *c, const Onnx__NodeProto *n, size_t i, float fallback,
                               float *out)
{
    hq_tensor_t *t;
    *out = fallback;
    hq_status_t st = onnxi_const_input(c, n, i, false, &t);
    if (st != HQ_OK || !t)
        return st;
    if (hq_tensor_count(t) != 1)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "input %zu must be a scalar", i + 1);
    *out = (float)onnxi_tensor_at(t, 0);
    return HQ_OK;
}

hq_status_t onnxi_set_const_output(onnxi_ctx_t *c, const Onnx__NodeProto *n, size_t k,
                                   hq_tensor_t *t)
{
    if (k >= n->n_output || !n->output[k][0]) {
        hq_tensor_destroy(t);
        return HQ_OK;
    }
    onnxi_value_t *v = onnxi_value_of(c, n->output[k]);
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

hq_status_t onnxi_set_layer_output(onnxi_ctx_t *c, const Onnx__NodeProto *n, size_t k, int layer,
                                   int port, int rank)
{
    if (k >= n->n_output || !n->output[k][0])
        return HQ_OK;
    onnxi_value_t *v = onnxi_value_of(c, n->output[k]);
    if (!v)
        return hqi_error(c->err, HQ_ERR_INVALID, "%s: output '%s' unknown", c->name, n->output[k]);
    if (v->kind != VALUE_UNKNOWN)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "output '%s' is produced twice", v->name);
    v->kind = VALUE_LAYER;
    v->layer = layer;
    v->port = port;
    v->rank = rank;
    v->flat = false;
    v->nhwc = false;
    return HQ_OK;
}

hq_status_t onnxi_alias_output(onnxi_ctx_t *c, const Onnx__NodeProto *n, const onnxi_value_t *src)
{
    if (n->n_output < 1 || !n->output[0][0])
        return HQ_OK;
    onnxi_value_t *v = onnxi_value_of(c, n->output[0]);
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
    v->nhwc = src->nhwc;
    v->flat_c = src->flat_c;
    v->flat_h = src->flat_h;
    v->flat_w = src->flat_w;
    return HQ_OK;
}

hq_status_t onnxi_new_tensor(onnxi_ctx_t *c, hq_dtype_t dtype, int ndim, const int64_t *shape,
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

double onnxi_tensor_at(const hq_tensor_t *t, int64_t i)
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
int64_t onnxi_tensor_int_at(const hq_tensor_t *t, int64_t i)
{
    if (t->dtype == HQ_DTYPE_INT64)
        return ((const int64_t *)t->data)[i];
    return to_int64(((const float *)t->data)[i]);
}

void onnxi_put_at(hq_tensor_t *t, int64_t i, double v)
{
    if (t->dtype == HQ_DTYPE_INT64)
        ((int64_t *)t->data)[i] = to_int64(v);
    else
        ((float *)t->data)[i] = (float)v;
}

void onnxi_strides_of(const hq_tensor_t *t, int64_t *strides)
{
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        strides[d] = s;
        s *= t->shape[d];
    }
}

/* A constant that broadcasts against a rank-`rank` tensor with `channels` channels as a scalar or
 * a per-channel vector: *vec (caller frees) gets `channels` values. false when it is neither. */
bool onnxi_channel_vector(const hq_tensor_t *t, int rank, int64_t channels, float **vec)
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
        v[i] = (float)onnxi_tensor_at(t, per == 1 ? 0 : i);
    *vec = v;
    return true;
}

hq_status_t onnxi_vector_tensor(onnxi_ctx_t *c, const float *v, int64_t count, hq_tensor_t **out)
{
    hq_status_t st = onnxi_new_tensor(c, HQ_DTYPE_FLOAT32, 1, &count, out);
    if (st == HQ_OK && count)
        memcpy((*out)->data, v, (size_t)count * sizeof *v);
    return st;
}

void onnxi_params_destroy(onnxi_ctx_t *c)
{
    for (int i = 0; i < c->param_count; i++)
        hq_tensor_destroy(c->params[i].tensor);
    free(c->params);
    c->params = NULL;
    c->param_count = c->param_cap = 0;
}

/* Stores `tensor` (taken over, also on failure) as a param of `layer`. */
hq_status_t onnxi_put_param(onnxi_ctx_t *c, int layer, const char *suffix, hq_tensor_t *tensor)
{
    for (int i = 0; i < c->param_count; i++)
        if (c->params[i].layer == layer && !strcmp(c->params[i].suffix, suffix)) {
            hq_tensor_destroy(c->params[i].tensor);
            c->params[i].tensor = tensor;
            return HQ_OK;
        }
    if (c->param_count == c->param_cap) {
        int cap = c->param_cap ? c->param_cap * 2 : 64;
        onnxi_param_t *params = realloc(c->params, (size_t)cap * sizeof *params);
        if (!params) {
            hq_tensor_destroy(tensor);
            return hqi_nomem(c->err, c->name);
        }
        c->params = params;
        c->param_cap = cap;
    }
    c->params[c->param_count++] = (onnxi_param_t){layer, suffix, tensor};
    return HQ_OK;
}

hq_tensor_t *onnxi_get_param(onnxi_ctx_t *c, int layer, const char *suffix)
{
    for (int i = c->param_count - 1; i >= 0; i--)
        if (c->params[i].layer == layer && !strcmp(c->params[i].suffix, suffix))
            return c->params[i].tensor;
    return NULL;
}

hq_status_t onnxi_new_layer(onnxi_ctx_t *c, hq_layer_type_t type, const Onnx__NodeProto *n,
                            int *index)
{
    char bare[64];
    snprintf(bare, sizeof bare, "%s%d", hq_layer_type_name(type), ++c->counters[type]);
    hq_status_t st = hq_graph_add_layer(c->graph, bare, type, index, c->err);
    if (st == HQ_OK && n)
        st = hq_layer_add_original_name(c->graph, *index, onnxi_node_label(n), c->err);
    return st;
}

hq_layer_params_t *onnxi_layer_params(onnxi_ctx_t *c, int index)
{
    return &hq_graph_layer_mut(c->graph, index)->params;
}

hq_status_t onnxi_connect_value(onnxi_ctx_t *c, const onnxi_value_t *v, int consumer)
{
    return hq_graph_connect(c->graph, v->layer, v->port, consumer, c->err);
}

/* Reads of a layer output still to come: the uses left on every value naming it (aliases made
 * by Identity, Flatten, fusions... share the layer). A node's reads are subtracted once the node
 * is converted, so the current node's own reads are still counted. */
static int pending_reads(const onnxi_ctx_t *c, int layer, int port)
{
    int reads = 0;
    for (int i = 0; i < c->value_count; i++) {
        const onnxi_value_t *v = &c->values[i];
        if (v->kind == VALUE_LAYER && v->layer == layer && v->port == port)
            reads += v->uses;
    }
    return reads;
}

/* True when the current node, reading `v` `reads` times, is the only reader of v's layer output
 * (no layer consumes it yet, no later node reads it), so that the layer can absorb what the node
 * does (weights, activation). */
bool onnxi_sole_reader(const onnxi_ctx_t *c, const onnxi_value_t *v, int reads)
{
    return v->kind == VALUE_LAYER && !v->flat && v->port == 0 &&
           hq_graph_layer(c->graph, v->layer)->output_count == 0 &&
           pending_reads(c, v->layer, v->port) == reads;
}
