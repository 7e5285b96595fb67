/* graph_internal.h — the private side of hq_graph_t, shared by graph.c (model and editing),
 * shapes.c (the layer type table, param checks and shape inference) and hn.c (`.hn` JSON). */
#ifndef HQ_CORE_GRAPH_INTERNAL_H
#define HQ_CORE_GRAPH_INTERNAL_H

#include <cjson/cJSON.h>

#include "hq/graph.h"
#include "graph/layer_types.h"

/* Largest extent hq accepts for any dimension or param; keeps all shape arithmetic in int64
 * far from overflow. */
#define HQI_GRAPH_MAX_DIM ((int64_t)1 << 30)

/* Param keys of the `.hn` "params" object, one bit each. The layer type table says which keys
 * a layer type reads and writes; any other key is kept raw. The order here is the order of
 * writing. */
enum {
    HQI_P_KERNEL_SHAPE = 1u << 0,
    HQI_P_STRIDES = 1u << 1,
    HQI_P_DILATIONS = 1u << 2,
    HQI_P_GROUPS = 1u << 3,
    HQI_P_PADDING = 1u << 4,
    HQI_P_PADS = 1u << 5,
    HQI_P_OUTPUT_PADDING = 1u << 6,
    HQI_P_BIAS = 1u << 7,
    HQI_P_BATCH_NORM = 1u << 8,
    HQI_P_ELEMENTWISE_ADD = 1u << 9,
    HQI_P_ACTIVATION = 1u << 10, /* "activation", "activation_alpha", "activation_beta" */
    HQI_P_COUNT_INCLUDE_PAD = 1u << 11,
    HQI_P_AXIS = 1u << 12,
    HQI_P_SPLIT_SIZES = 1u << 13,
    HQI_P_SLICE = 1u << 14, /* "slice_begin", "slice_end", "slice_step" */
    HQI_P_PAD_MODE = 1u << 15, /* "pad_mode", "pad_value", "pad_channels" */
    HQI_P_RESIZE = 1u << 16, /* "resize_method", "resize_coords", "nearest_round",
                                "nearest_ceil", "resize_scales" */
    HQI_P_BLOCK_SIZE = 1u << 17,
    HQI_P_D2S_MODE = 1u << 18, /* "mode" */
    HQI_P_MEAN_STD = 1u << 19,
    HQI_P_EPSILON = 1u << 20,
    HQI_P_PERM = 1u << 21,
};

/* HQI_P_* keys a layer type reads and writes (its row in core/graph/layer_types.c); 0 when out
 * of range. */
unsigned hqi_layer_param_keys(hq_layer_type_t type);

/* One layer plus what only the graph sees. `layer` is first so a node pointer is a layer
 * pointer; nodes are allocated one by one so layer pointers stay put while the graph grows. */
typedef struct hqi_node {
    hq_layer_t layer;
    int stored_shape_count;     /* output shapes to check at the next finalize (from `.hn` or */
    hq_shape_t *stored_shapes;  /* hq_layer_set_output_shape); dropped after a clean finalize */
    bool check_input_shapes;    /* layer.input_shapes came from `.hn`: check them once */
    cJSON *extra_keys;          /* unknown keys of the layer object, in order (or NULL) */
    cJSON *extra_params;        /* unknown keys of "params" (or NULL) */
    cJSON *extra_quant;         /* keys of "quantization_params" other than precision_mode */
} hqi_node_t;

struct hq_graph {
    char *net_name;
    int layer_count, layer_capacity;
    hqi_node_t **nodes;
    int outputs_order_count;    /* explicit order of output layers (may be partial) */
    int *outputs_order;
    int input_list_count, output_list_count;
    int *input_list;            /* input layers in index order */
    int *output_list;           /* output layers: explicit order, then the rest in index order */
    int *topo;                  /* layer_count entries once finalized */
    bool finalized;
    cJSON *extra_top;           /* unknown top-level keys (object or NULL) */
    cJSON *extra_net_params;    /* unknown keys of "net_params" (object or NULL) */
};

static inline hqi_node_t *hqi_node(const hq_graph_t *graph, int index)
{
    return graph->nodes[index];
}

/* Default params of a fresh layer of `type` (strides, dilations, groups, steps 1, axis 3, ...). */
void hqi_layer_params_default(hq_layer_type_t type, hq_layer_params_t *params);
/* Frees the arrays inside params and zeroes the pointers. */
void hqi_layer_params_free(hq_layer_params_t *params);

/* Checks the params of `layer` against its input shapes (already in layer->input_shapes), resolves
 * derived params (pads, dw groups) and sets layer->output_shape. `file` prefixes messages. */
hq_status_t hqi_layer_infer_shape(hq_layer_t *layer, const hqi_node_t *node, const char *file,
                                  hq_error_t *err);

/* "[-1, 56, 56, 64]" into buf. */
void hqi_shape_format(const hq_shape_t *shape, char *buf, size_t size);
/* Equal ndim and dims; a batch of -1 matches any batch. */
bool hqi_shape_equal(const hq_shape_t *a, const hq_shape_t *b);

/* Recomputes input_list / output_list after an edit. */
hq_status_t hqi_graph_refresh_io(hq_graph_t *graph, hq_error_t *err);
/* Appends a layer with the full scoped `name` (ownership taken, freed on failure); no check
 * for duplicates. */
hq_status_t hqi_graph_add_node(hq_graph_t *graph, char *name, hq_layer_type_t type, int *index,
                               hq_error_t *err);
/* Replaces the stored output shapes of a node by a copy of `shapes`. */
hq_status_t hqi_node_set_stored_shapes(hqi_node_t *node, const hq_shape_t *shapes, int count);

#endif
