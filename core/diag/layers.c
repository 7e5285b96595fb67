/* layers.c — the layers of the inspector context, in the layouts of the plugin ABI rather than
 * the graph's: hq_inspector_layer_t and hq_inspector_params_t (ABI 1.1, filled up to the size the
 * module asks for), and the frozen 1.0 layout of hq_layer_t that modules built against ABI 1.0
 * read through the layer_v1 slot. The graph's hq_layer_t may change; only these copies are
 * read by modules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag/diag_internal.h"

/* ---- ABI 1.0: hq_layer_t as include/hq/graph.h laid it out at 1.0 -------------------------------
 * Frozen: modules built against 1.0 read these offsets. Never edit; convert into it instead
 * (tests/plugins/abi_v1 builds a module against the 1.0 headers and checks what it reads). */
#define DIMS_1_0 8 /* HQ_TENSOR_MAX_DIMS at 1.0 */
typedef struct params_1_0 {
    int kernel_h, kernel_w;
    int kernel_in, kernel_out;
    int stride_h, stride_w;
    int dilation_h, dilation_w;
    int groups;
    hq_padding_t padding;
    int pads[4];
    int output_pads[2];
    bool has_bias;
    bool batch_norm;
    bool elementwise_add;
    hq_activation_t activation;
    float activation_alpha;
    float activation_beta;
    bool count_include_pad;
    int axis;
    int split_count;
    int *split_sizes;
    int slice_begin[3];
    int slice_end[3];
    int slice_step[3];
    hq_pad_mode_t pad_mode;
    float pad_value;
    int pad_channels[2];
    hq_resize_method_t resize_method;
    hq_resize_coords_t resize_coords;
    bool nearest_round;
    int block_size;
    bool depth_to_space_crd;
    int channels;
    float *mean;
    float *std;
    float epsilon;
    int perm[DIMS_1_0];
} params_1_0_t;

typedef struct shape_1_0 {
    int ndim;
    int64_t dims[DIMS_1_0];
} shape_1_0_t;

typedef struct layer_1_0 {
    char *name;
    const char *bare_name;
    hq_layer_type_t type;
    int input_count;
    int *inputs;
    int *input_ports;
    int output_count;
    int *outputs;
    int *output_ports;
    int input_shape_count;
    shape_1_0_t *input_shapes;
    shape_1_0_t output_shape;
    int original_name_count;
    char **original_names;
    params_1_0_t params;
    char precision_mode[16];
} layer_1_0_t;

struct hqi_diag_layers_1_0 {
    int count;
    layer_1_0_t *layers;
    shape_1_0_t *shapes; /* every layer's input shapes, in the 1.0 shape layout */
};

static void shape_1_0(const hq_shape_t *in, shape_1_0_t *out)
{
    memset(out, 0, sizeof *out);
    out->ndim = in->ndim < DIMS_1_0 ? in->ndim : DIMS_1_0;
    for (int d = 0; d < out->ndim; d++)
        out->dims[d] = in->dims[d];
}

/* Copies the params field by field: the compiler checks each name, and a field whose type
 * changed converts (or fails to build) here instead of being misread by a module. */
#define COPY(field) out->field = in->field
#define COPY_ARRAY(field)                                                                          \
    for (size_t i_ = 0; i_ < sizeof out->field / sizeof out->field[0] &&                           \
                        i_ < sizeof in->field / sizeof in->field[0];                               \
         i_++)                                                                                     \
    out->field[i_] = in->field[i_]

/* Every field hq_layer_params_t had at 1.0: both copies have them, under the same names. */
#define COPY_PARAMS_1_0()                                                                          \
    do {                                                                                           \
        COPY(kernel_h), COPY(kernel_w), COPY(kernel_in), COPY(kernel_out);                         \
        COPY(stride_h), COPY(stride_w), COPY(dilation_h), COPY(dilation_w);                        \
        COPY(groups), COPY(padding);                                                               \
        COPY_ARRAY(pads);                                                                          \
        COPY_ARRAY(output_pads);                                                                   \
        COPY(has_bias), COPY(batch_norm), COPY(elementwise_add);                                   \
        COPY(activation), COPY(activation_alpha), COPY(activation_beta);                           \
        COPY(count_include_pad), COPY(axis), COPY(split_count), COPY(split_sizes);                 \
        COPY_ARRAY(slice_begin);                                                                   \
        COPY_ARRAY(slice_end);                                                                     \
        COPY_ARRAY(slice_step);                                                                    \
        COPY(pad_mode), COPY(pad_value);                                                           \
        COPY_ARRAY(pad_channels);                                                                  \
        COPY(resize_method), COPY(resize_coords), COPY(nearest_round);                             \
        COPY(block_size), COPY(depth_to_space_crd);                                                \
        COPY(channels), COPY(mean), COPY(std), COPY(epsilon);                                      \
        COPY_ARRAY(perm);                                                                          \
    } while (0)

static void params_1_0(const hq_layer_params_t *in, params_1_0_t *out)
{
    memset(out, 0, sizeof *out);
    COPY_PARAMS_1_0();
}

/* Every layer in the 1.0 layout, built on the first layer_v1 call of a run. */
static hqi_diag_layers_1_0_t *build_1_0(const hq_graph_t *graph)
{
    int n = hq_graph_layer_count(graph), shapes = 0;
    for (int l = 0; l < n; l++)
        shapes += hq_graph_layer(graph, l)->input_shape_count;
    hqi_diag_layers_1_0_t *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->count = n;
    v->layers = calloc((size_t)(n > 0 ? n : 1), sizeof *v->layers);
    v->shapes = calloc((size_t)(shapes > 0 ? shapes : 1), sizeof *v->shapes);
    if (!v->layers || !v->shapes) {
        hqi_diag_free_layers_1_0(v);
        return NULL;
    }
    shape_1_0_t *next_shape = v->shapes;
    for (int l = 0; l < n; l++) {
        const hq_layer_t *in = hq_graph_layer(graph, l);
        layer_1_0_t *out = &v->layers[l];
        COPY(name), COPY(bare_name), COPY(type);
        COPY(input_count), COPY(inputs), COPY(input_ports);
        COPY(output_count), COPY(outputs), COPY(output_ports);
        COPY(input_shape_count);
        out->input_shapes = next_shape;
        for (int i = 0; i < in->input_shape_count; i++)
            shape_1_0(&in->input_shapes[i], next_shape++);
        shape_1_0(&in->output_shape, &out->output_shape);
        COPY(original_name_count), COPY(original_names);
        params_1_0(&in->params, &out->params);
        snprintf(out->precision_mode, sizeof out->precision_mode, "%s", in->precision_mode);
    }
    return v;
}

const void *hqi_diag_layer_1_0(hq_diag_t *diag, int index)
{
    if (index < 0 || index >= hq_graph_layer_count(diag->graph))
        return NULL;
    if (!diag->layers_1_0)
        diag->layers_1_0 = build_1_0(diag->graph);
    return diag->layers_1_0 ? &diag->layers_1_0->layers[index] : NULL;
}

void hqi_diag_free_layers_1_0(hqi_diag_layers_1_0_t *layers)
{
    if (!layers)
        return;
    free(layers->layers);
    free(layers->shapes);
    free(layers);
}

/* ---- ABI 1.1: sized copies ------------------------------------------------------------------- */

/* Hands the module min(its size, ours) bytes of `full`, zeroes the rest of its struct, and tells
 * it in the struct_size at the start how much it got. */
static bool fill_sized(void *module_struct, const void *full, uint32_t full_size)
{
    uint32_t asked;
    memcpy(&asked, module_struct, sizeof asked);
    if (asked < sizeof asked)
        return false;
    uint32_t given = asked < full_size ? asked : full_size;
    memcpy(module_struct, full, given);
    memset((char *)module_struct + given, 0, asked - given);
    memcpy(module_struct, &given, sizeof given);
    return true;
}

bool hqi_diag_layer_info(const hq_graph_t *graph, int index, hq_inspector_layer_t *layer)
{
    const hq_layer_t *in = hq_graph_layer(graph, index);
    if (!in || !layer)
        return false;
    hq_inspector_layer_t full = {.struct_size = sizeof full}, *out = &full;
    COPY(name), COPY(bare_name), COPY(type);
    COPY(input_count), COPY(inputs), COPY(input_ports);
    COPY(output_count), COPY(outputs), COPY(output_ports);
    COPY(input_shape_count), COPY(input_shapes), COPY(output_shape);
    COPY(original_name_count);
    out->original_names = (const char *const *)in->original_names;
    out->port_count = hq_layer_port_count(in);
    out->precision_mode = in->precision_mode;
    out->param_count = hq_layer_param_count(in);
    return fill_sized(layer, &full, sizeof full);
}

bool hqi_diag_layer_params(const hq_graph_t *graph, int index, hq_inspector_params_t *params)
{
    const hq_layer_t *layer = hq_graph_layer(graph, index);
    if (!layer || !params)
        return false;
    const hq_layer_params_t *in = &layer->params;
    hq_inspector_params_t full = {.struct_size = sizeof full}, *out = &full;
    COPY_PARAMS_1_0();
    /* fields appended to hq_inspector_params_t after 1.0 are copied here */
    return fill_sized(params, &full, sizeof full);
}
