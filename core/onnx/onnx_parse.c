/* onnx_parse.c — ONNX import (`hq parse`): the driver. It decodes the protobuf, finds the nodes
 * on a path to the outputs, plans the multi-node patterns, makes the input layers and then, node
 * by node in file order, folds the node (onnx_fold.c) or converts it through the op table
 * (onnx_ops.c) into NHWC hq layers. docs/onnx.md describes each mapping and the file layout. */
#include <stdlib.h>
#include <string.h>

#include "graph/hw_arch.h"
#include "onnx/onnx_internal.h"

/* A planned input replacement (--start-node-names): tensor `name` becomes an input layer. */
typedef struct input_override {
    const char *name;
    int rank;
    int64_t dims[4];
} input_override_t;

static hq_status_t add_input(onnxi_ctx_t *c, const char *name, int rank, const int64_t *dims,
                             int *count)
{
    onnxi_value_t *v = onnxi_value_of(c, name);
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
    if ((st = onnxi_new_layer(c, HQ_LAYER_INPUT, NULL, &index)) != HQ_OK ||
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

static hq_status_t add_graph_inputs(onnxi_ctx_t *c, const input_override_t *overrides,
                                    int override_count)
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
        onnxi_value_t *v = onnxi_value_of(c, name);
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
        /* NHWC data read through a transpose to NCHW: the input layer is [N, H, W, C] */
        onnxi_plan_channels_last_input(c, name, rank, dims);
        if ((st = add_input(c, name, rank, dims, &count)) != HQ_OK)
            return st;
    }
    if (!count)
        return hqi_error(c->err, HQ_ERR_INVALID, "%s: the graph has no input feeding its outputs",
                         c->name);
    return HQ_OK;
}

/* The node named `name`; else a nameless node whose label (first output) it is, as the error
 * messages name such a node. */
static int find_node(const onnxi_ctx_t *c, const char *name)
{
    for (size_t i = 0; i < c->g->n_node; i++)
        if (c->g->node[i]->name && !strcmp(c->g->node[i]->name, name))
            return (int)i;
    for (size_t i = 0; i < c->g->n_node; i++)
        if ((!c->g->node[i]->name || !c->g->node[i]->name[0]) &&
            !strcmp(onnxi_node_label(c->g->node[i]), name))
            return (int)i;
    return -1;
}

/* The node has read its inputs: they no longer count as pending reads. */
static void release_inputs(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    for (size_t k = 0; k < n->n_input; k++) {
        onnxi_value_t *v = n->input[k][0] ? onnxi_value_of(c, n->input[k]) : NULL;
        if (v && v->uses > 0)
            v->uses--;
    }
}

/* True for an op whose one data input has the shape of its output (the shapes-only pass lets
 * such a node stand for its input). */
static bool keeps_shape(const char *op)
{
    static const char *const ops[] = {"Abs",   "Ceil",     "Floor", "Round",    "Sign", "Neg",
                                      "Sqrt",  "Log",      "Erf",   "Cast",     "Not",  "Elu",
                                      "Selu",  "Softplus", "Gelu",  "Softsign", "Mish", "Sin",
                                      "Cos",   "IsNaN",    "IsInf", "Reciprocal"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (!strcmp(ops[i], op))
            return true;
    return false;
}

/* Node n, which no layer can take: an error naming the way out, or in the shapes-only pass
 * before a start cut, an elementwise op standing for its input. */
static hq_status_t unconvertible(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                 const char *const *outputs, int output_count)
{
    onnxi_value_t *x;
    if (c->shapes_only && keeps_shape(n->op_type) && n->n_output == 1 &&
        onnxi_layer_input(c, n, 0, &x) == HQ_OK && x)
        return onnxi_alias_output(c, n, x);
    return onnxi_unconvertible_node(c, n, outputs, output_count);
}

/* True when node n (op row `op`) is a 1-D conv or pool on a [N, C, L] tensor. */
static bool lift_candidate(onnxi_ctx_t *c, const Onnx__NodeProto *n, const onnxi_op_t *op)
{
    if (!op || !op->lifts_1d || n->n_input < 1 || !n->input[0][0])
        return false;
    onnxi_value_t *x = onnxi_value_of(c, n->input[0]);
    return x && x->kind == VALUE_LAYER && !x->flat && x->rank == 3;
}

/* Converts the graph so that `outputs` (tensor names) become the outputs, with `overrides` as the
 * inputs when given. */
static hq_status_t convert(onnxi_ctx_t *c, const char *const *outputs, int output_count,
                           const input_override_t *overrides, int override_count)
{
    Onnx__GraphProto *g = c->g;
    hq_status_t st;
    onnxi_value_t *v;
    /* Every name gets a value up front: pointers into the table stay valid from here on. */
    for (size_t i = 0; i < g->n_node; i++) {
        Onnx__NodeProto *n = g->node[i];
        if (!n->op_type)
            return hqi_error(c->err, HQ_ERR_FORMAT, "%s: node %zu has no op_type", c->name, i);
        for (size_t k = 0; k < n->n_input; k++)
            if (n->input[k][0] && (st = onnxi_intern_value(c, n->input[k], &v)) != HQ_OK)
                return st;
        for (size_t k = 0; k < n->n_output; k++) {
            if (!n->output[k][0])
                continue;
            if ((st = onnxi_intern_value(c, n->output[k], &v)) != HQ_OK)
                return st;
            if (v->producer < 0)
                v->producer = (int)i;
        }
    }
    for (int i = 0; i < output_count; i++)
        if ((st = onnxi_intern_value(c, outputs[i], &v)) != HQ_OK)
            return st;
    for (size_t i = 0; i < g->n_input; i++)
        if (g->input[i]->name && (st = onnxi_intern_value(c, g->input[i]->name, &v)) != HQ_OK)
            return st;
    if ((st = onnxi_load_constants(c)) != HQ_OK)
        return st;
    /* Needed nodes: walk back from the outputs, stopping at overridden inputs. */
    for (int i = 0; i < output_count; i++) {
        v = onnxi_value_of(c, outputs[i]);
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
            onnxi_value_t *o = n->output[k][0] ? onnxi_value_of(c, n->output[k]) : NULL;
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
                v = onnxi_value_of(c, n->input[k]);
                v->needed = true;
                v->uses++;
            }
    }
    c->node_needed = node_needed;
    c->outputs = outputs;
    c->output_count = output_count;
    onnxi_plan_patterns(c);
    onnxi_plan_layer_norm(c);
    onnxi_plan_channels_last_outputs(c, outputs, output_count);
    st = add_graph_inputs(c, overrides, override_count);
    for (size_t i = 0; i < g->n_node && st == HQ_OK; i++) {
        Onnx__NodeProto *n = g->node[i];
        if (!node_needed[i])
            continue;
        if (c->plans[i].skip) {
            release_inputs(c, n);
            continue;
        }
        bool done = false;
        if (c->plans[i].channels_last)
            st = onnxi_convert_channels_last(c, n, c->plans[i].channels_last, &done);
        if (st == HQ_OK && !done)
            st = onnxi_convert_nhwc_view(c, n, &c->plans[i], &done);
        if (st == HQ_OK && !done && c->plans[i].act >= 0) {
            st = onnxi_convert_planned_activation(c, n, &c->plans[i]);
        } else if (st == HQ_OK && !done) {
            const onnxi_op_t *op = onnxi_find_op(n->op_type);
            bool folded;
            st = onnxi_fold_node(c, n, op, &folded);
            if (st == HQ_OK && !folded && lift_candidate(c, n, op)) {
                onnxi_lifted_node_t lifted;
                st = onnxi_lift_1d_node(c, n, &lifted);
                if (st == HQ_OK) {
                    c->lift_1d = true;
                    st = op->convert(c, &lifted.node);
                    c->lift_1d = false;
                    onnxi_lifted_free(&lifted);
                }
                for (size_t k = 0; st == HQ_OK && k < n->n_output; k++) {
                    onnxi_value_t *o = n->output[k][0] ? onnxi_value_of(c, n->output[k]) : NULL;
                    if (o && o->kind == VALUE_LAYER)
                        o->rank = 3;
                }
            } else if (st == HQ_OK && !folded) {
                st = op && op->convert ? op->convert(c, n)
                                       : unconvertible(c, n, outputs, output_count);
            }
        }
        if (st != HQ_OK) /* a converter's refusal: the cut around it, when there is one */
            st = onnxi_refused_node_cut(c, n, outputs, output_count, st);
        release_inputs(c, n);
    }
    c->node_needed = NULL;
    free(node_needed);
    if (st != HQ_OK)
        return st;
    int *outs = malloc(((size_t)output_count + 1) * sizeof *outs);
    if (!outs)
        return hqi_nomem(c->err, c->name);
    for (int i = 0; i < output_count && st == HQ_OK; i++) {
        v = onnxi_value_of(c, outputs[i]);
        if (v->kind != VALUE_LAYER) {
            st = hqi_error(c->err, HQ_ERR_UNSUPPORTED,
                           v->kind == VALUE_CONST ? "%s: output '%s' is a constant"
                                                  : "%s: output '%s' is not produced by any node",
                           c->name, outputs[i]);
            break;
        }
        if ((st = onnxi_materialize(c, v)) != HQ_OK)
            break;
        if ((st = onnxi_new_layer(c, HQ_LAYER_OUTPUT, NULL, &outs[i])) == HQ_OK &&
            (st = hq_layer_add_original_name(c->graph, outs[i], outputs[i], c->err)) == HQ_OK)
            st = onnxi_connect_value(c, v, outs[i]);
    }
    if (st == HQ_OK)
        st = hq_graph_set_outputs_order(c->graph, outs, output_count, c->err);
    free(outs);
    if (st == HQ_OK)
        st = hq_graph_finalize(c->graph, c->name, c->err);
    return st;
}

static void ctx_free(onnxi_ctx_t *c)
{
    for (int i = 0; i < c->value_count; i++) {
        free(c->values[i].name);
        hq_tensor_destroy(c->values[i].constant);
    }
    free(c->values);
    free(c->table);
    free((void *)c->plan_names);
    free(c->plans);
    onnxi_params_destroy(c);
    hq_graph_destroy(c->graph);
    memset(c, 0, sizeof *c);
}

static hq_status_t ctx_init(onnxi_ctx_t *c, Onnx__ModelProto *model, const char *name,
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

static hq_status_t build_params(onnxi_ctx_t *c, hq_npz_t **out)
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
static hq_status_t cut_tensors(onnxi_ctx_t *c, const char *const *nodes, int count, bool inputs,
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

/* The static shapes the model's value_info records for tensors `names` (batch free); false
 * unless every one is there with rank 2, 3 or 4. */
static bool recorded_shapes(const Onnx__GraphProto *g, const char *const *names, int count,
                            input_override_t *overrides)
{
    for (int i = 0; i < count; i++) {
        const Onnx__TensorShapeProto *shape = NULL;
        for (size_t k = 0; k < g->n_value_info && !shape; k++) {
            const Onnx__ValueInfoProto *vi = g->value_info[k];
            if (vi->name && !strcmp(vi->name, names[i]) && vi->type &&
                vi->type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE &&
                vi->type->tensor_type->shape)
                shape = vi->type->tensor_type->shape;
        }
        if (!shape || shape->n_dim < 2 || shape->n_dim > 4)
            return false;
        overrides[i].name = names[i];
        overrides[i].rank = (int)shape->n_dim;
        overrides[i].dims[0] = 1;
        for (size_t d = 1; d < shape->n_dim; d++) {
            const Onnx__TensorShapeProto__Dimension *dim = shape->dim[d];
            if (dim->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ||
                dim->dim_value < 1)
                return false;
            overrides[i].dims[d] = dim->dim_value;
        }
    }
    return true;
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
    onnxi_ctx_t c;
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
        if (st == HQ_OK) {
            overrides = calloc((size_t)cut_count + 1, sizeof *overrides);
            if (!overrides)
                st = hqi_nomem(err, name);
        }
        c.shapes_only = true;
        if (st == HQ_OK)
            st = convert(&c, cut, cut_count, NULL, 0);
        /* nodes before the cut that hq cannot convert (preprocessing): the shapes the model
         * records for the cut tensors do as well */
        if (st == HQ_ERR_UNSUPPORTED && recorded_shapes(c.g, cut, cut_count, overrides)) {
            st = HQ_OK;
            override_count = cut_count;
        } else if (st == HQ_OK) {
            int count = 0;
            const int *outs = hq_graph_outputs(c.graph, &count);
            for (int i = 0; st == HQ_OK && i < cut_count && i < count; i++) {
                hq_shape_t s = hq_graph_layer(c.graph, outs[i])->output_shape;
                onnxi_value_t *cv = onnxi_value_of(&c, cut[i]);
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