/* graph.c — the in-memory network graph: layers and edges, lookup, editing, and finalize
 * (edge agreement, arity, cycles, topological order, shape inference through shapes.c). */
#include <stdlib.h>
#include <string.h>

#include "graph/graph_internal.h"
#include "util/util.h"

/* ---- nodes ------------------------------------------------------------------------------- */

static void node_free(hqi_node_t *node)
{
    if (!node)
        return;
    hq_layer_t *l = &node->layer;
    free(l->name);
    free(l->inputs);
    free(l->input_ports);
    free(l->outputs);
    free(l->output_ports);
    free(l->input_shapes);
    for (int i = 0; i < l->original_name_count; i++)
        free(l->original_names[i]);
    free(l->original_names);
    hqi_layer_params_free(&l->params);
    free(node->stored_shapes);
    cJSON_Delete(node->extra_keys);
    cJSON_Delete(node->extra_params);
    cJSON_Delete(node->extra_quant);
    free(node);
}

/* Copies `count` elements of `size` bytes (NULL for none); false on allocation failure. */
static bool copy_array(void **dst, const void *src, int count, size_t size)
{
    *dst = NULL;
    if (!src || count <= 0)
        return true;
    *dst = malloc((size_t)count * size);
    if (!*dst)
        return false;
    memcpy(*dst, src, (size_t)count * size);
    return true;
}

static bool copy_json(cJSON **dst, const cJSON *src)
{
    *dst = NULL;
    if (!src)
        return true;
    *dst = cJSON_Duplicate(src, true);
    return *dst != NULL;
}

static hqi_node_t *node_clone(const hqi_node_t *src)
{
    hqi_node_t *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    const hq_layer_t *s = &src->layer;
    hq_layer_t *l = &n->layer;
    *l = *s;
    /* Clear every owned pointer first so node_free is safe after a partial copy. */
    l->name = NULL;
    l->inputs = l->input_ports = l->outputs = l->output_ports = NULL;
    l->input_shapes = NULL;
    l->original_names = NULL;
    l->original_name_count = 0;
    l->params.split_sizes = NULL;
    l->params.mean = l->params.std = NULL;
    bool ok = (l->name = hqi_strdup(s->name)) != NULL;
    if (ok)
        l->bare_name = l->name + (s->bare_name - s->name);
    ok = ok && copy_array((void **)&l->inputs, s->inputs, s->input_count, sizeof(int)) &&
         copy_array((void **)&l->input_ports, s->input_ports, s->input_count, sizeof(int)) &&
         copy_array((void **)&l->outputs, s->outputs, s->output_count, sizeof(int)) &&
         copy_array((void **)&l->output_ports, s->output_ports, s->output_count, sizeof(int)) &&
         copy_array((void **)&l->input_shapes, s->input_shapes, s->input_shape_count,
                    sizeof(hq_shape_t)) &&
         copy_array((void **)&l->params.split_sizes, s->params.split_sizes, s->params.split_count,
                    sizeof(int)) &&
         copy_array((void **)&l->params.mean, s->params.mean, s->params.channels, sizeof(float)) &&
         copy_array((void **)&l->params.std, s->params.std, s->params.channels, sizeof(float)) &&
         copy_array((void **)&n->stored_shapes, src->stored_shapes, src->stored_shape_count,
                    sizeof(hq_shape_t)) &&
         copy_json(&n->extra_keys, src->extra_keys) &&
         copy_json(&n->extra_params, src->extra_params) &&
         copy_json(&n->extra_quant, src->extra_quant);
    if (ok && s->original_name_count > 0) {
        l->original_names = calloc((size_t)s->original_name_count, sizeof(char *));
        ok = l->original_names != NULL;
        for (int i = 0; ok && i < s->original_name_count; i++) {
            ok = (l->original_names[i] = hqi_strdup(s->original_names[i])) != NULL;
            l->original_name_count = i + 1;
        }
    }
    if (!ok) {
        if (!l->name)
            l->bare_name = NULL;
        node_free(n);
        return NULL;
    }
    return n;
}

hq_status_t hqi_node_set_stored_shapes(hqi_node_t *node, const hq_shape_t *shapes, int count)
{
    hq_shape_t *copy = NULL;
    if (!copy_array((void **)&copy, shapes, count, sizeof(hq_shape_t)))
        return HQ_ERR_NOMEM;
    free(node->stored_shapes);
    node->stored_shapes = copy;
    node->stored_shape_count = copy ? count : 0;
    return HQ_OK;
}

/* ---- lifetime ---------------------------------------------------------------------------- */

HQ_API hq_status_t hq_graph_create(const char *net_name, hq_graph_t **out, hq_error_t *err)
{
    if (!out)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_graph_create: out is NULL");
    *out = NULL;
    if (!net_name || !net_name[0])
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_graph_create: the network name is empty");
    hq_graph_t *g = calloc(1, sizeof(*g));
    if (!g || !(g->net_name = hqi_strdup(net_name))) {
        free(g);
        return hqi_nomem(err, "hq_graph_create");
    }
    *out = g;
    return HQ_OK;
}

HQ_API void hq_graph_destroy(hq_graph_t *graph)
{
    if (!graph)
        return;
    for (int i = 0; i < graph->layer_count; i++)
        node_free(graph->nodes[i]);
    free(graph->nodes);
    free(graph->net_name);
    free(graph->outputs_order);
    free(graph->input_list);
    free(graph->output_list);
    free(graph->topo);
    cJSON_Delete(graph->extra_top);
    cJSON_Delete(graph->extra_net_params);
    free(graph);
}

HQ_API hq_status_t hq_graph_clone(const hq_graph_t *graph, hq_graph_t **out, hq_error_t *err)
{
    if (!graph || !out)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_graph_clone: graph or out is NULL");
    *out = NULL;
    hq_graph_t *g = NULL;
    hq_status_t st = hq_graph_create(graph->net_name, &g, err);
    if (st)
        return st;
    bool ok = true;
    if (graph->layer_count > 0) {
        g->nodes = calloc((size_t)graph->layer_count, sizeof(*g->nodes));
        ok = g->nodes != NULL;
        g->layer_capacity = graph->layer_count;
    }
    for (int i = 0; ok && i < graph->layer_count; i++) {
        ok = (g->nodes[i] = node_clone(graph->nodes[i])) != NULL;
        g->layer_count = ok ? i + 1 : i;
    }
    g->outputs_order_count = graph->outputs_order_count;
    g->input_list_count = graph->input_list_count;
    g->output_list_count = graph->output_list_count;
    ok = ok &&
         copy_array((void **)&g->outputs_order, graph->outputs_order, graph->outputs_order_count,
                    sizeof(int)) &&
         copy_array((void **)&g->input_list, graph->input_list, graph->input_list_count,
                    sizeof(int)) &&
         copy_array((void **)&g->output_list, graph->output_list, graph->output_list_count,
                    sizeof(int)) &&
         copy_array((void **)&g->topo, graph->topo, graph->topo ? graph->layer_count : 0,
                    sizeof(int)) &&
         copy_json(&g->extra_top, graph->extra_top) &&
         copy_json(&g->extra_net_params, graph->extra_net_params);
    if (!ok) {
        hq_graph_destroy(g);
        return hqi_nomem(err, "hq_graph_clone");
    }
    g->finalized = graph->finalized;
    *out = g;
    return HQ_OK;
}

/* ---- reading ----------------------------------------------------------------------------- */

HQ_API const char *hq_graph_net_name(const hq_graph_t *graph)
{
    return graph ? graph->net_name : NULL;
}

HQ_API int hq_graph_layer_count(const hq_graph_t *graph)
{
    return graph ? graph->layer_count : 0;
}

HQ_API const hq_layer_t *hq_graph_layer(const hq_graph_t *graph, int index)
{
    if (!graph || index < 0 || index >= graph->layer_count)
        return NULL;
    return &graph->nodes[index]->layer;
}

HQ_API int hq_graph_find(const hq_graph_t *graph, const char *name)
{
    if (!graph || !name)
        return -1;
    for (int i = 0; i < graph->layer_count; i++)
        if (strcmp(graph->nodes[i]->layer.name, name) == 0)
            return i;
    for (int i = 0; i < graph->layer_count; i++)
        if (strcmp(graph->nodes[i]->layer.bare_name, name) == 0)
            return i;
    for (int i = 0; i < graph->layer_count; i++) {
        const hq_layer_t *l = &graph->nodes[i]->layer;
        for (int k = 0; k < l->original_name_count; k++)
            if (strcmp(l->original_names[k], name) == 0)
                return i;
    }
    return -1;
}

HQ_API const int *hq_graph_topo_order(const hq_graph_t *graph, int *count)
{
    bool ready = graph && graph->finalized && graph->topo;
    if (count)
        *count = ready ? graph->layer_count : 0;
    return ready ? graph->topo : NULL;
}

HQ_API const int *hq_graph_inputs(const hq_graph_t *graph, int *count)
{
    if (count)
        *count = graph ? graph->input_list_count : 0;
    return graph ? graph->input_list : NULL;
}

HQ_API const int *hq_graph_outputs(const hq_graph_t *graph, int *count)
{
    if (count)
        *count = graph ? graph->output_list_count : 0;
    return graph ? graph->output_list : NULL;
}

HQ_API int hq_layer_port_count(const hq_layer_t *layer)
{
    if (!layer)
        return 0;
    if (layer->type == HQ_LAYER_FEATURE_SPLITTER && layer->params.split_count > 0)
        return layer->params.split_count;
    return 1;
}

HQ_API hq_shape_t hq_layer_port_shape(const hq_layer_t *layer, int port)
{
    hq_shape_t shape;
    memset(&shape, 0, sizeof(shape));
    if (!layer || port < 0 || port >= hq_layer_port_count(layer))
        return shape;
    shape = layer->output_shape;
    const hq_layer_params_t *p = &layer->params;
    if (layer->type == HQ_LAYER_FEATURE_SPLITTER && p->split_sizes && p->axis >= 1 &&
        p->axis < shape.ndim)
        shape.dims[p->axis] = p->split_sizes[port];
    return shape;
}

HQ_API bool hq_graph_is_finalized(const hq_graph_t *graph)
{
    return graph && graph->finalized;
}

HQ_API int64_t hq_layer_param_count(const hq_layer_t *layer)
{
    if (!layer)
        return 0;
    const hq_layer_params_t *p = &layer->params;
    int64_t out_channels = layer->output_shape.ndim > 0
                               ? layer->output_shape.dims[layer->output_shape.ndim - 1]
                               : 0;
    switch (layer->type) {
    case HQ_LAYER_CONV:
    case HQ_LAYER_DW:
    case HQ_LAYER_DECONV:
        return (int64_t)p->kernel_h * p->kernel_w * p->kernel_in * p->kernel_out +
               (p->has_bias ? p->kernel_out : 0);
    case HQ_LAYER_DENSE:
        return (int64_t)p->kernel_in * p->kernel_out + (p->has_bias ? p->kernel_out : 0);
    case HQ_LAYER_NORMALIZATION:
        return 2 * (int64_t)p->channels; /* mean and std */
    case HQ_LAYER_BATCH_NORM:
        return 4 * out_channels;         /* gamma, beta, moving mean, moving variance */
    default:
        return 0;
    }
}

/* ---- building and editing ---------------------------------------------------------------- */

static bool valid_index(const hq_graph_t *graph, int index)
{
    return graph && index >= 0 && index < graph->layer_count;
}

static void unfinalize(hq_graph_t *graph)
{
    graph->finalized = false;
}

hq_status_t hqi_graph_refresh_io(hq_graph_t *graph, hq_error_t *err)
{
    int n = graph->layer_count;
    int *inputs = malloc(sizeof(int) * (size_t)(n ? n : 1));
    int *outputs = malloc(sizeof(int) * (size_t)(n ? n : 1));
    bool *taken = calloc((size_t)(n ? n : 1), sizeof(bool));
    if (!inputs || !outputs || !taken) {
        free(inputs);
        free(outputs);
        free(taken);
        return hqi_nomem(err, "graph inputs and outputs");
    }
    int ni = 0, no = 0;
    for (int i = 0; i < n; i++)
        if (graph->nodes[i]->layer.type == HQ_LAYER_INPUT)
            inputs[ni++] = i;
    for (int k = 0; k < graph->outputs_order_count; k++) {
        int i = graph->outputs_order[k];
        if (i >= 0 && i < n && !taken[i] && graph->nodes[i]->layer.type == HQ_LAYER_OUTPUT) {
            taken[i] = true;
            outputs[no++] = i;
        }
    }
    for (int i = 0; i < n; i++)
        if (!taken[i] && graph->nodes[i]->layer.type == HQ_LAYER_OUTPUT)
            outputs[no++] = i;
    free(taken);
    free(graph->input_list);
    free(graph->output_list);
    graph->input_list = inputs;
    graph->output_list = outputs;
    graph->input_list_count = ni;
    graph->output_list_count = no;
    return HQ_OK;
}

hq_status_t hqi_graph_add_node(hq_graph_t *graph, char *name, hq_layer_type_t type, int *index,
                               hq_error_t *err)
{
    if (graph->layer_count == graph->layer_capacity) {
        int cap = graph->layer_capacity ? graph->layer_capacity * 2 : 16;
        hqi_node_t **nodes = realloc(graph->nodes, sizeof(*nodes) * (size_t)cap);
        if (!nodes) {
            free(name);
            return hqi_nomem(err, "adding a layer");
        }
        graph->nodes = nodes;
        graph->layer_capacity = cap;
    }
    hqi_node_t *node = calloc(1, sizeof(*node));
    if (!node) {
        free(name);
        return hqi_nomem(err, "adding a layer");
    }
    node->layer.name = name;
    const char *slash = strrchr(name, '/');
    node->layer.bare_name = slash ? slash + 1 : name;
    node->layer.type = type;
    hqi_layer_params_default(type, &node->layer.params);
    graph->nodes[graph->layer_count++] = node;
    if (index)
        *index = graph->layer_count - 1;
    unfinalize(graph);
    return HQ_OK;
}

HQ_API hq_status_t hq_graph_add_layer(hq_graph_t *graph, const char *bare_name,
                                      hq_layer_type_t type, int *index, hq_error_t *err)
{
    if (!graph || !bare_name || !bare_name[0])
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_graph_add_layer: graph or name is missing");
    if (!hq_layer_type_traits(type))
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_graph_add_layer: layer '%s': unknown type %d",
                         bare_name, (int)type);
    size_t net_len = strlen(graph->net_name), bare_len = strlen(bare_name);
    char *name = malloc(net_len + bare_len + 2);
    if (!name)
        return hqi_nomem(err, "hq_graph_add_layer");
    memcpy(name, graph->net_name, net_len);
    name[net_len] = '/';
    memcpy(name + net_len + 1, bare_name, bare_len + 1);
    for (int i = 0; i < graph->layer_count; i++) {
        if (strcmp(graph->nodes[i]->layer.name, name) == 0) {
            hq_status_t st = hqi_error(err, HQ_ERR_ARGUMENT, "layer '%s' already exists", name);
            free(name);
            return st;
        }
    }
    hq_status_t st = hqi_graph_add_node(graph, name, type, index, err);
    if (st)
        return st;
    return hqi_graph_refresh_io(graph, err);
}

HQ_API hq_layer_t *hq_graph_layer_mut(hq_graph_t *graph, int index)
{
    if (!valid_index(graph, index))
        return NULL;
    unfinalize(graph);
    return &graph->nodes[index]->layer;
}

/* Grows a pair of parallel int arrays by one element. */
static bool push_edge(int **a, int **b, int *count, int x, int y)
{
    if (*count >= HQI_GRAPH_MAX_DIM)
        return false;
    int *na = realloc(*a, sizeof(int) * (size_t)(*count + 1));
    if (!na)
        return false;
    *a = na;
    int *nb = realloc(*b, sizeof(int) * (size_t)(*count + 1));
    if (!nb)
        return false;
    *b = nb;
    na[*count] = x;
    nb[*count] = y;
    (*count)++;
    return true;
}

HQ_API hq_status_t hq_graph_connect(hq_graph_t *graph, int producer, int port, int consumer,
                                    hq_error_t *err)
{
    if (!valid_index(graph, producer) || !valid_index(graph, consumer) || port < 0)
        return hqi_error(err, HQ_ERR_ARGUMENT,
                         "hq_graph_connect: edge %d:%d -> %d names no layer or port", producer,
                         port, consumer);
    hq_layer_t *p = &graph->nodes[producer]->layer, *c = &graph->nodes[consumer]->layer;
    int in_count = c->input_count;
    if (!push_edge(&c->inputs, &c->input_ports, &in_count, producer, port))
        return hqi_nomem(err, "hq_graph_connect");
    int out_count = p->output_count;
    if (!push_edge(&p->outputs, &p->output_ports, &out_count, consumer, port))
        return hqi_nomem(err, "hq_graph_connect"); /* consumer arrays grew, count unchanged */
    c->input_count = in_count;
    p->output_count = out_count;
    unfinalize(graph);
    return HQ_OK;
}

/* Index in `layer`'s inputs of the k-th (0-based) slot fed by `producer`, or -1. */
static int nth_input_from(const hq_layer_t *layer, int producer, int k)
{
    for (int j = 0; j < layer->input_count; j++)
        if (layer->inputs[j] == producer && k-- == 0)
            return j;
    return -1;
}

static int nth_output_to(const hq_layer_t *layer, int consumer, int k)
{
    for (int j = 0; j < layer->output_count; j++)
        if (layer->outputs[j] == consumer && k-- == 0)
            return j;
    return -1;
}

static int occurrence_before(const int *list, int upto, int value)
{
    int k = 0;
    for (int j = 0; j < upto; j++)
        k += list[j] == value;
    return k;
}

HQ_API hq_status_t hq_graph_insert_after(hq_graph_t *graph, int after, int layer,
                                         hq_error_t *err)
{
    if (!valid_index(graph, after) || !valid_index(graph, layer) || after == layer)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_graph_insert_after: bad layer indices %d, %d",
                         after, layer);
    hq_layer_t *a = &graph->nodes[after]->layer, *n = &graph->nodes[layer]->layer;
    if (n->input_count || n->output_count)
        return hqi_error(err, HQ_ERR_ARGUMENT,
                         "hq_graph_insert_after: layer '%s' already has edges", n->name);
    int port = a->output_count ? a->output_ports[0] : 0;
    for (int i = 1; i < a->output_count; i++)
        if (a->output_ports[i] != port)
            return hqi_error(err, HQ_ERR_ARGUMENT,
                             "hq_graph_insert_after: layer '%s' sends different pieces to its "
                             "consumers",
                             a->name);
    /* The new layer takes over after's consumer list; each consumer's slot now names it. */
    int *new_inputs = malloc(sizeof(int)), *new_ports = malloc(sizeof(int));
    int *after_out = malloc(sizeof(int)), *after_ports = malloc(sizeof(int));
    if (!new_inputs || !new_ports || !after_out || !after_ports) {
        free(new_inputs);
        free(new_ports);
        free(after_out);
        free(after_ports);
        return hqi_nomem(err, "hq_graph_insert_after");
    }
    for (int i = 0; i < a->output_count; i++) {
        hq_layer_t *c = &graph->nodes[a->outputs[i]]->layer;
        int j = nth_input_from(c, after, 0);
        if (j >= 0) {
            c->inputs[j] = layer;
            c->input_ports[j] = 0;
        }
    }
    n->outputs = a->outputs;
    n->output_ports = a->output_ports;
    n->output_count = a->output_count;
    for (int i = 0; i < n->output_count; i++)
        n->output_ports[i] = 0;
    new_inputs[0] = after;
    new_ports[0] = port;
    n->inputs = new_inputs;
    n->input_ports = new_ports;
    n->input_count = 1;
    after_out[0] = layer;
    after_ports[0] = port;
    a->outputs = after_out;
    a->output_ports = after_ports;
    a->output_count = 1;
    unfinalize(graph);
    return HQ_OK;
}

/* Replaces index `at` of a parallel int pair by `count` entries from (x, y). */
static bool splice_edges(int **a, int **b, int *len, int at, const int *x, const int *y,
                         int count)
{
    int n = *len - 1 + count;
    int *na = malloc(sizeof(int) * (size_t)(n ? n : 1));
    int *nb = malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (!na || !nb) {
        free(na);
        free(nb);
        return false;
    }
    int k = 0;
    for (int i = 0; i < *len; i++) {
        if (i == at) {
            for (int j = 0; j < count; j++, k++) {
                na[k] = x[j];
                nb[k] = y[j];
            }
        } else {
            na[k] = (*a)[i];
            nb[k] = (*b)[i];
            k++;
        }
    }
    free(*a);
    free(*b);
    *a = na;
    *b = nb;
    *len = n;
    return true;
}

HQ_API hq_status_t hq_graph_bypass_layer(hq_graph_t *graph, int index, hq_error_t *err)
{
    if (!valid_index(graph, index))
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_graph_bypass_layer: no layer %d", index);
    hq_layer_t *l = &graph->nodes[index]->layer;
    if (l->input_count != 1)
        return hqi_error(err, HQ_ERR_ARGUMENT,
                         "layer '%s' has %d inputs; only a layer with one input can be bypassed",
                         l->name, l->input_count);
    int producer = l->inputs[0], port = l->input_ports[0];
    if (!valid_index(graph, producer) || producer == index)
        return hqi_error(err, HQ_ERR_INVALID, "layer '%s' has an invalid input", l->name);
    for (int i = 0; i < l->output_count; i++)
        if (l->output_ports[i] != 0 || !valid_index(graph, l->outputs[i]) ||
            l->outputs[i] == index)
            return hqi_error(err, HQ_ERR_ARGUMENT,
                             "layer '%s' sends several pieces; it cannot be bypassed", l->name);
    hq_layer_t *p = &graph->nodes[producer]->layer;
    int at = nth_output_to(p, index, 0);
    if (at < 0)
        return hqi_error(err, HQ_ERR_INVALID, "layer '%s' does not list '%s' as an output",
                         p->name, l->name);
    int *ports = malloc(sizeof(int) * (size_t)(l->output_count ? l->output_count : 1));
    if (!ports)
        return hqi_nomem(err, "hq_graph_bypass_layer");
    for (int i = 0; i < l->output_count; i++)
        ports[i] = port;
    if (!splice_edges(&p->outputs, &p->output_ports, &p->output_count, at, l->outputs, ports,
                      l->output_count)) {
        free(ports);
        return hqi_nomem(err, "hq_graph_bypass_layer");
    }
    free(ports);
    for (int i = 0; i < l->output_count; i++) {
        hq_layer_t *c = &graph->nodes[l->outputs[i]]->layer;
        int j = nth_input_from(c, index, occurrence_before(l->outputs, i, l->outputs[i]));
        if (j >= 0) {
            c->inputs[j] = producer;
            c->input_ports[j] = port;
        }
    }
    /* Remove the node and renumber every reference above it. */
    node_free(graph->nodes[index]);
    memmove(&graph->nodes[index], &graph->nodes[index + 1],
            sizeof(*graph->nodes) * (size_t)(graph->layer_count - index - 1));
    graph->layer_count--;
    for (int i = 0; i < graph->layer_count; i++) {
        hq_layer_t *x = &graph->nodes[i]->layer;
        for (int j = 0; j < x->input_count; j++)
            x->inputs[j] -= x->inputs[j] > index;
        for (int j = 0; j < x->output_count; j++)
            x->outputs[j] -= x->outputs[j] > index;
    }
    int k = 0;
    for (int i = 0; i < graph->outputs_order_count; i++)
        if (graph->outputs_order[i] != index)
            graph->outputs_order[k++] = graph->outputs_order[i] - (graph->outputs_order[i] > index);
    graph->outputs_order_count = k;
    free(graph->topo);
    graph->topo = NULL;
    unfinalize(graph);
    return hqi_graph_refresh_io(graph, err);
}

HQ_API hq_status_t hq_graph_set_outputs_order(hq_graph_t *graph, const int *outputs, int count,
                                              hq_error_t *err)
{
    if (!graph || count < 0 || (count > 0 && !outputs))
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_graph_set_outputs_order: bad arguments");
    for (int i = 0; i < count; i++) {
        if (!valid_index(graph, outputs[i]) ||
            graph->nodes[outputs[i]]->layer.type != HQ_LAYER_OUTPUT)
            return hqi_error(err, HQ_ERR_ARGUMENT,
                             "hq_graph_set_outputs_order: entry %d (layer %d) is not an output "
                             "layer",
                             i, outputs[i]);
        for (int j = 0; j < i; j++)
            if (outputs[j] == outputs[i])
                return hqi_error(err, HQ_ERR_ARGUMENT,
                                 "hq_graph_set_outputs_order: layer '%s' is listed twice",
                                 graph->nodes[outputs[i]]->layer.name);
    }
    int *copy = NULL;
    if (!copy_array((void **)&copy, outputs, count, sizeof(int)))
        return hqi_nomem(err, "hq_graph_set_outputs_order");
    free(graph->outputs_order);
    graph->outputs_order = copy;
    graph->outputs_order_count = count;
    return hqi_graph_refresh_io(graph, err);
}

HQ_API hq_status_t hq_layer_set_split_sizes(hq_graph_t *graph, int index, const int *sizes,
                                            int count, hq_error_t *err)
{
    if (!valid_index(graph, index) || count < 1 || !sizes || count > 65536)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_layer_set_split_sizes: bad arguments");
    int *copy = NULL;
    if (!copy_array((void **)&copy, sizes, count, sizeof(int)))
        return hqi_nomem(err, "hq_layer_set_split_sizes");
    hq_layer_params_t *p = &graph->nodes[index]->layer.params;
    free(p->split_sizes);
    p->split_sizes = copy;
    p->split_count = count;
    unfinalize(graph);
    return HQ_OK;
}

HQ_API hq_status_t hq_layer_set_normalization(hq_graph_t *graph, int index, const float *mean,
                                              const float *std, int channels, hq_error_t *err)
{
    if (!valid_index(graph, index) || channels < 1 || !mean || !std || channels > (1 << 24))
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_layer_set_normalization: bad arguments");
    float *m = NULL, *s = NULL;
    if (!copy_array((void **)&m, mean, channels, sizeof(float)) ||
        !copy_array((void **)&s, std, channels, sizeof(float))) {
        free(m);
        return hqi_nomem(err, "hq_layer_set_normalization");
    }
    hq_layer_params_t *p = &graph->nodes[index]->layer.params;
    free(p->mean);
    free(p->std);
    p->mean = m;
    p->std = s;
    p->channels = channels;
    unfinalize(graph);
    return HQ_OK;
}

HQ_API hq_status_t hq_layer_add_original_name(hq_graph_t *graph, int index, const char *name,
                                              hq_error_t *err)
{
    if (!valid_index(graph, index) || !name)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_layer_add_original_name: bad arguments");
    hq_layer_t *l = &graph->nodes[index]->layer;
    char **names = realloc(l->original_names, sizeof(char *) * (size_t)(l->original_name_count + 1));
    if (!names)
        return hqi_nomem(err, "hq_layer_add_original_name");
    l->original_names = names;
    if (!(names[l->original_name_count] = hqi_strdup(name)))
        return hqi_nomem(err, "hq_layer_add_original_name");
    l->original_name_count++;
    return HQ_OK;
}

HQ_API hq_status_t hq_layer_set_output_shape(hq_graph_t *graph, int index, const hq_shape_t *shape,
                                             hq_error_t *err)
{
    if (!valid_index(graph, index) || !shape || shape->ndim < 1 ||
        shape->ndim > HQ_TENSOR_MAX_DIMS)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_layer_set_output_shape: bad arguments");
    hqi_node_t *node = graph->nodes[index];
    if (hqi_node_set_stored_shapes(node, shape, 1))
        return hqi_nomem(err, "hq_layer_set_output_shape");
    node->layer.output_shape = *shape;
    unfinalize(graph);
    return HQ_OK;
}

/* ---- finalize ---------------------------------------------------------------------------- */

/* Both directions of every edge agree (same counts per producer/consumer pair and the same
 * pieces); then output_ports is reordered so that the k-th edge from P to C on each side match,
 * which the `.hn` writer relies on. */
static hq_status_t check_edges(hq_graph_t *graph, const char *file, hq_error_t *err)
{
    int n = graph->layer_count;
    for (int c = 0; c < n; c++) {
        hq_layer_t *l = &graph->nodes[c]->layer;
        if (!hq_layer_type_traits(l->type))
            return hqi_error(err, HQ_ERR_INVALID, "%s: layer '%s': unknown type %d", file,
                             l->name, (int)l->type);
        for (int j = 0; j < l->input_count; j++)
            if (l->inputs[j] < 0 || l->inputs[j] >= n)
                return hqi_error(err, HQ_ERR_INVALID,
                                 "%s: layer '%s' input %d refers to layer %d, which does not "
                                 "exist",
                                 file, l->name, j, l->inputs[j]);
        for (int j = 0; j < l->output_count; j++)
            if (l->outputs[j] < 0 || l->outputs[j] >= n)
                return hqi_error(err, HQ_ERR_INVALID,
                                 "%s: layer '%s' output %d refers to layer %d, which does not "
                                 "exist",
                                 file, l->name, j, l->outputs[j]);
    }
    for (int c = 0; c < n; c++) {
        hq_layer_t *l = &graph->nodes[c]->layer;
        for (int j = 0; j < l->input_count; j++) {
            hq_layer_t *p = &graph->nodes[l->inputs[j]]->layer;
            int k = occurrence_before(l->inputs, j, l->inputs[j]);
            int i = nth_output_to(p, c, k);
            if (i < 0)
                return hqi_error(err, HQ_ERR_INVALID,
                                 "%s: layer '%s' lists input '%s', but '%s' does not list '%s' "
                                 "in its output",
                                 file, l->name, p->name, p->name, l->name);
            if (l->input_ports[j] < 0 || l->input_ports[j] >= hq_layer_port_count(p))
                return hqi_error(err, HQ_ERR_INVALID,
                                 "%s: layer '%s' takes piece %d of '%s', which has %d", file,
                                 l->name, l->input_ports[j], p->name, hq_layer_port_count(p));
        }
        for (int i = 0; i < l->output_count; i++) {
            hq_layer_t *q = &graph->nodes[l->outputs[i]]->layer;
            int k = occurrence_before(l->outputs, i, l->outputs[i]);
            if (nth_input_from(q, c, k) < 0)
                return hqi_error(err, HQ_ERR_INVALID,
                                 "%s: layer '%s' lists output '%s', but '%s' does not list '%s' "
                                 "in its input",
                                 file, l->name, q->name, q->name, l->name);
        }
    }
    /* Counts agree; now match the pieces (as multisets) and canonicalize their order. */
    for (int c = 0; c < n; c++) {
        hq_layer_t *l = &graph->nodes[c]->layer;
        for (int j = 0; j < l->input_count; j++) {
            hq_layer_t *p = &graph->nodes[l->inputs[j]]->layer;
            int k = occurrence_before(l->inputs, j, l->inputs[j]);
            if (k > 0)
                continue; /* handle each (producer, consumer) pair once */
            int edges = 0, balance[64] = {0};
            bool small = hq_layer_port_count(p) <= 64;
            for (int s = 0; s < l->input_count; s++)
                if (l->inputs[s] == l->inputs[j]) {
                    if (small)
                        balance[l->input_ports[s]]++;
                    edges++;
                }
            for (int s = 0; s < p->output_count; s++)
                if (p->outputs[s] == c) {
                    if (small && p->output_ports[s] >= 0 && p->output_ports[s] < 64)
                        balance[p->output_ports[s]]--;
                    else if (small)
                        balance[0] = 1 << 20;
                }
            for (int q = 0; small && q < 64; q++)
                if (balance[q] != 0)
                    return hqi_error(err, HQ_ERR_INVALID,
                                     "%s: layer '%s' and its producer '%s' disagree on which "
                                     "pieces flow between them",
                                     file, l->name, p->name);
            for (int e = 0; e < edges; e++)
                p->output_ports[nth_output_to(p, c, e)] = l->input_ports[nth_input_from(l, l->inputs[j], e)];
        }
    }
    return HQ_OK;
}

static hq_status_t check_arity(const hq_graph_t *graph, const char *file, hq_error_t *err)
{
    for (int i = 0; i < graph->layer_count; i++) {
        const hq_layer_t *l = &graph->nodes[i]->layer;
        const hq_layer_type_traits_t *info = hqi_layer_traits(l->type);
        if (l->input_count < info->min_inputs ||
            (info->max_inputs >= 0 && l->input_count > info->max_inputs)) {
            if (info->min_inputs == info->max_inputs)
                return hqi_error(err, HQ_ERR_INVALID,
                                 "%s: layer '%s': %s takes %d input%s, has %d", file, l->name,
                                 info->name, info->min_inputs, info->min_inputs == 1 ? "" : "s",
                                 l->input_count);
            if (info->max_inputs < 0)
                return hqi_error(err, HQ_ERR_INVALID,
                                 "%s: layer '%s': %s takes at least %d inputs, has %d", file,
                                 l->name, info->name, info->min_inputs, l->input_count);
            return hqi_error(err, HQ_ERR_INVALID, "%s: layer '%s': %s takes %d to %d inputs, has %d",
                             file, l->name, info->name, info->min_inputs, info->max_inputs,
                             l->input_count);
        }
        if (l->type == HQ_LAYER_OUTPUT && l->output_count > 0)
            return hqi_error(err, HQ_ERR_INVALID,
                             "%s: layer '%s': an output_layer cannot feed other layers", file,
                             l->name);
    }
    return HQ_OK;
}

/* Kahn's algorithm, ties broken by index so the order is deterministic. */
static hq_status_t topo_sort(hq_graph_t *graph, const char *file, hq_error_t *err)
{
    int n = graph->layer_count;
    size_t count = (size_t)(n ? n : 1);
    int *order = malloc(sizeof(int) * count), *pending = calloc(count, sizeof(int));
    if (!order || !pending) {
        free(order);
        free(pending);
        return hqi_nomem(err, "topological order");
    }
    for (int i = 0; i < n; i++)
        pending[i] = graph->nodes[i]->layer.input_count;
    int head = 0, tail = 0;
    for (int i = 0; i < n; i++)
        if (pending[i] == 0)
            order[tail++] = i;
    while (head < tail) {
        const hq_layer_t *l = &graph->nodes[order[head++]]->layer;
        for (int j = 0; j < l->output_count; j++)
            if (--pending[l->outputs[j]] == 0)
                order[tail++] = l->outputs[j];
    }
    if (tail < n) {
        /* Walk backwards through unfinished producers: the walk must revisit a layer, and the
         * revisited layer lies on a cycle. */
        int at = -1;
        for (int i = 0; i < n && at < 0; i++)
            if (pending[i] > 0)
                at = i;
        for (int i = 0; i < n; i++)
            pending[i] = pending[i] > 0 ? 1 : 0;
        for (int steps = 0; steps <= n && pending[at] != 2; steps++) {
            pending[at] = 2;
            const hq_layer_t *l = &graph->nodes[at]->layer;
            int next = -1;
            for (int j = 0; j < l->input_count && next < 0; j++)
                if (pending[l->inputs[j]] > 0)
                    next = l->inputs[j];
            if (next < 0)
                break;
            at = next;
        }
        hq_status_t st = hqi_error(err, HQ_ERR_INVALID, "%s: layer '%s' is on a cycle", file,
                                   graph->nodes[at]->layer.name);
        free(order);
        free(pending);
        return st;
    }
    free(pending);
    free(graph->topo);
    graph->topo = order;
    return HQ_OK;
}

static hq_status_t infer_layer(hq_graph_t *graph, int index, const char *file, hq_error_t *err)
{
    hqi_node_t *node = graph->nodes[index];
    hq_layer_t *l = &node->layer;
    char a[160], b[160];
    hq_status_t st;
    if (l->type == HQ_LAYER_INPUT || l->type == HQ_LAYER_CONST_INPUT) {
        if ((st = hqi_layer_infer_shape(l, node, file, err)))
            return st;
        if (node->check_input_shapes && l->input_shape_count > 0 &&
            !hqi_shape_equal(&l->input_shapes[0], &l->output_shape)) {
            hqi_shape_format(&l->input_shapes[0], a, sizeof(a));
            hqi_shape_format(&l->output_shape, b, sizeof(b));
            return hqi_error(err, HQ_ERR_INVALID,
                             "%s: layer '%s': input shape %s does not match output shape %s",
                             file, l->name, a, b);
        }
        hq_shape_t *shapes = realloc(l->input_shapes, sizeof(hq_shape_t));
        if (!shapes)
            return hqi_nomem(err, "shape inference");
        l->input_shapes = shapes;
        l->input_shapes[0] = l->output_shape;
        l->input_shape_count = l->type == HQ_LAYER_INPUT ? 1 : 0;
    } else {
        hq_shape_t *shapes = malloc(sizeof(hq_shape_t) * (size_t)l->input_count);
        if (!shapes)
            return hqi_nomem(err, "shape inference");
        for (int j = 0; j < l->input_count; j++) {
            shapes[j] = hq_layer_port_shape(&graph->nodes[l->inputs[j]]->layer, l->input_ports[j]);
            if (node->check_input_shapes && j < l->input_shape_count &&
                !hqi_shape_equal(&shapes[j], &l->input_shapes[j])) {
                hqi_shape_format(&shapes[j], a, sizeof(a));
                hqi_shape_format(&l->input_shapes[j], b, sizeof(b));
                free(shapes);
                return hqi_error(err, HQ_ERR_INVALID,
                                 "%s: layer '%s': input %d shape mismatch: inferred %s, stored %s",
                                 file, l->name, j, a, b);
            }
        }
        if (node->check_input_shapes && l->input_shape_count != l->input_count) {
            free(shapes);
            return hqi_error(err, HQ_ERR_INVALID,
                             "%s: layer '%s': %d input_shapes stored for %d inputs", file, l->name,
                             l->input_shape_count, l->input_count);
        }
        free(l->input_shapes);
        l->input_shapes = shapes;
        l->input_shape_count = l->input_count;
        if ((st = hqi_layer_infer_shape(l, node, file, err)))
            return st;
    }
    /* Stored output shapes: one per output edge (the piece sent along it), or one per piece. */
    int ports = hq_layer_port_count(l);
    for (int i = 0; i < node->stored_shape_count; i++) {
        int port = i;
        if (node->stored_shape_count == l->output_count && l->output_count > 0)
            port = l->output_ports[i];
        else if (i >= ports)
            return hqi_error(err, HQ_ERR_INVALID,
                             "%s: layer '%s': %d output_shapes stored for %d output%s", file,
                             l->name, node->stored_shape_count,
                             l->output_count > ports ? l->output_count : ports,
                             (l->output_count > ports ? l->output_count : ports) == 1 ? "" : "s");
        hq_shape_t inferred = hq_layer_port_shape(l, port);
        if (!hqi_shape_equal(&inferred, &node->stored_shapes[i])) {
            hqi_shape_format(&inferred, a, sizeof(a));
            hqi_shape_format(&node->stored_shapes[i], b, sizeof(b));
            return hqi_error(err, HQ_ERR_INVALID,
                             "%s: layer '%s': output shape mismatch: inferred %s, stored %s", file,
                             l->name, a, b);
        }
    }
    return HQ_OK;
}

HQ_API hq_status_t hq_graph_finalize(hq_graph_t *graph, const char *name, hq_error_t *err)
{
    if (!graph)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_graph_finalize: graph is NULL");
    const char *file = name ? name : graph->net_name;
    graph->finalized = false;
    hq_status_t st;
    if ((st = check_edges(graph, file, err)) || (st = check_arity(graph, file, err)) ||
        (st = topo_sort(graph, file, err)))
        return st;
    for (int k = 0; k < graph->layer_count; k++)
        if ((st = infer_layer(graph, graph->topo[k], file, err)))
            return st;
    if ((st = hqi_graph_refresh_io(graph, err)))
        return st;
    /* Stored shapes have been checked; from now on the inferred ones are the truth, except for
     * the types whose shape is given. */
    for (int i = 0; i < graph->layer_count; i++) {
        hqi_node_t *node = graph->nodes[i];
        node->check_input_shapes = false;
        if (!hqi_layer_type_row(node->layer.type)->shape_is_stored) {
            free(node->stored_shapes);
            node->stored_shapes = NULL;
            node->stored_shape_count = 0;
        } else if (node->stored_shape_count > 0) {
            node->stored_shapes[0] = node->layer.output_shape;
            node->stored_shape_count = 1;
        }
    }
    graph->finalized = true;
    return HQ_OK;
}
