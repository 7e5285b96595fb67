/* graph.h — the network graph (`.hn`): layers in NHWC with Hailo layer types and params.
 *
 * A graph is built (by the ONNX parser or from `.hn` JSON), then finalized: finalize validates
 * edges, detects cycles, infers and checks shapes, and computes a topological order. Layers are
 * addressed by index (0 .. hq_graph_layer_count-1); a layer's index never changes while the graph
 * lives, except through hq_graph_remove_layer, which renumbers. */
#ifndef HQ_GRAPH_H
#define HQ_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "hq/common.h"
#include "hq/layer_types.h"
#include "hq/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Activations (the "activation" param of conv/dw/dense/ew/activation layers). Append-only. */
typedef enum hq_activation {
    HQ_ACT_LINEAR = 0,    /* "linear" */
    HQ_ACT_RELU,          /* "relu" */
    HQ_ACT_RELU6,         /* "relu6" */
    HQ_ACT_LEAKY,         /* "leaky": x >= 0 ? x : alpha * x */
    HQ_ACT_PRELU,         /* "prelu": per-channel slope in params ".../prelu_slope:0" */
    HQ_ACT_SIGMOID,       /* "sigmoid" */
    HQ_ACT_SILU,          /* "silu": x * sigmoid(x) */
    HQ_ACT_HARDSWISH,     /* "hardswish": x * relu6(x + 3) / 6 */
    HQ_ACT_HARDSIGMOID,   /* "hardsigmoid": clamp(alpha * x + beta, 0, 1) */
    HQ_ACT_TANH,          /* "tanh" */
    HQ_ACT_CLIP,          /* "clip": clamp(x, alpha, beta) (alpha = min, beta = max) */
    HQ_ACT_EXP,           /* "exp" */
    HQ_ACT_GELU,          /* "gelu": x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2))) */
    HQ_ACT_COUNT
} hq_activation_t;

typedef enum hq_padding {
    HQ_PADDING_VALID = 0,        /* "VALID": no padding */
    HQ_PADDING_SAME,             /* "SAME": total pad split, extra at the start (ONNX SAME_LOWER) */
    HQ_PADDING_SAME_TENSORFLOW,  /* "SAME_TENSORFLOW": extra at the end (ONNX SAME_UPPER) */
    HQ_PADDING_EXPLICIT,         /* "EXPLICIT": `pads` as given (asymmetric allowed) */
} hq_padding_t;

typedef enum hq_resize_method {
    HQ_RESIZE_NEAREST = 0,       /* "nearest_neighbor" */
    HQ_RESIZE_BILINEAR,          /* "bilinear" */
} hq_resize_method_t;

/* How output pixel coordinates map back to input coordinates (ONNX coordinate_transformation_mode). */
typedef enum hq_resize_coords {
    HQ_RESIZE_ASYMMETRIC = 0,    /* "asymmetric": x_in = x_out / scale */
    HQ_RESIZE_HALF_PIXEL,        /* "half_pixel": x_in = (x_out + 0.5) / scale - 0.5 */
    HQ_RESIZE_ALIGN_CORNERS,     /* "align_corners": x_in = x_out * (in - 1) / (out - 1) */
    HQ_RESIZE_PYTORCH_HALF_PIXEL,/* "pytorch_half_pixel": half_pixel, but 0 when out == 1 */
    HQ_RESIZE_TF_HALF_PIXEL_FOR_NN,/* "tf_half_pixel_for_nn": x_in = (x_out + 0.5) / scale */
} hq_resize_coords_t;

typedef enum hq_pad_mode {
    HQ_PAD_CONSTANT = 0,         /* "constant" with `pad_value` */
    HQ_PAD_REFLECT,              /* "reflect" */
    HQ_PAD_EDGE,                 /* "edge" */
} hq_pad_mode_t;

/* A shape: dims[0] is the batch (-1 = any). Image tensors are [-1, H, W, C], vectors [-1, C]. */
typedef struct hq_shape {
    int ndim;
    int64_t dims[HQ_TENSOR_MAX_DIMS];
} hq_shape_t;

/* Typed params of a layer. Only the fields of the layer's type are meaningful; the others are
 * zero. Arrays are owned by the graph. The `.hn` key of each field is given in brackets. */
typedef struct hq_layer_params {
    /* conv, dw, deconv, dense ["kernel_shape": [kh, kw, cin_per_group, cout], dense: [cin, cout]] */
    int kernel_h, kernel_w;          /* also pool window ["kernel_shape": [1, kh, kw, 1]] */
    int kernel_in, kernel_out;       /* input channels per group, output channels */
    int stride_h, stride_w;          /* ["strides": [1, sh, sw, 1]] also pools, space/depth */
    int dilation_h, dilation_w;      /* ["dilations": [1, dh, dw, 1]] */
    int groups;                      /* ["groups"], 1 = dense convolution */
    hq_padding_t padding;            /* ["padding"] */
    int pads[4];                     /* ["pads"] top, left, bottom, right: always resolved */
    int output_pads[2];              /* ["output_padding"] deconv extra rows/cols at the end */
    bool has_bias;                   /* ["bias"]: params hold ".../bias:0" */
    bool batch_norm;                 /* ["batch_norm"]: a BN was folded into kernel and bias */
    bool elementwise_add;            /* ["elementwise_add"]: second input added before activation */
    hq_activation_t activation;      /* ["activation"] */
    float activation_alpha;          /* ["activation_alpha"] leaky slope, hardsigmoid alpha, clip min */
    float activation_beta;           /* ["activation_beta"] hardsigmoid beta, clip max */
    bool count_include_pad;          /* avgpool ["count_include_pad"] */
    int axis;                        /* concat/feature_splitter/softmax/reduce ["axis"], NHWC index */
    int split_count;                 /* feature_splitter: number of pieces */
    int *split_sizes;                /* ["split_sizes"] extent of each piece along `axis` */
    int slice_begin[3];              /* slice ["slice_begin"] on H, W, C */
    int slice_end[3];                /* ["slice_end"] exclusive */
    int slice_step[3];               /* ["slice_step"] >= 1 */
    hq_pad_mode_t pad_mode;          /* pad ["pad_mode"] */
    float pad_value;                 /* ["pad_value"] */
    int pad_channels[2];             /* ["pad_channels"] before, after (with `pads` for H/W) */
    hq_resize_method_t resize_method;/* ["resize_method"] */
    hq_resize_coords_t resize_coords;/* ["resize_coords"] */
    bool nearest_round;              /* ["nearest_round"]: round_prefer_floor instead of floor */
    int block_size;                  /* depth_to_space/space_to_depth ["block_size"] */
    bool depth_to_space_crd;         /* ["mode"] "CRD" (true) or "DCR" (false) */
    int channels;                    /* normalization: length of mean/std */
    float *mean;                     /* ["mean"] per channel */
    float *std;                      /* ["std"] per channel */
    float epsilon;                   /* batch_norm ["epsilon"] */
    int perm[HQ_TENSOR_MAX_DIMS];    /* transpose ["perm"], over the shape's ndim */
    bool nearest_ceil;               /* resize ["nearest_ceil"]: nearest rounds up: ceil, or with
                                        nearest_round round_prefer_ceil */
    float resize_scales[2];          /* resize ["resize_scales"]: the scales (H, W) coordinates are
                                        mapped with; 0 = output / input extent. ONNX gives them
                                        when output = floor(input * scale) is not exact */
} hq_layer_params_t;

/* A layer as the graph stores it. Read-only for users; change it through the graph functions. */
typedef struct hq_layer {
    char *name;                      /* scoped name "net/conv3" (the key in the `.hn`) */
    const char *bare_name;           /* points into `name` after the last '/': "conv3" */
    hq_layer_type_t type;
    int input_count;
    int *inputs;                     /* producer layer indices, in the order the op uses them */
    int *input_ports;                /* which output piece of the producer (0 unless a splitter) */
    int output_count;
    int *outputs;                    /* consumer layer indices (one entry per consuming edge) */
    int *output_ports;               /* piece index sent along each output edge (["output_ports"]) */
    int input_shape_count;
    hq_shape_t *input_shapes;        /* one per input */
    hq_shape_t output_shape;         /* shape of the layer's result (of piece 0 for a splitter) */
    int original_name_count;
    char **original_names;           /* names in the source framework (ONNX node names) */
    hq_layer_params_t params;
    char precision_mode[16];         /* "a8_w8", ... once quantized; "" before */
} hq_layer_t;

typedef struct hq_graph hq_graph_t;

/* `.hn` name of an activation ("relu"), or NULL when out of range. Static string. (Layer type
 * names: hq_layer_type_name in hq/layer_types.h.) */
HQ_API const char *hq_activation_name(hq_activation_t activation);
/* Reverse lookup; HQ_ERR_NOT_FOUND for an unknown name. */
HQ_API hq_status_t hq_activation_from_name(const char *name, hq_activation_t *activation);

/* An empty, unfinalized graph for network `net_name`. The caller owns *out (hq_graph_destroy). */
HQ_API hq_status_t hq_graph_create(const char *net_name, hq_graph_t **out, hq_error_t *err);
HQ_API void hq_graph_destroy(hq_graph_t *graph);
/* Deep copy (finalized state included). The caller owns *out. */
HQ_API hq_status_t hq_graph_clone(const hq_graph_t *graph, hq_graph_t **out, hq_error_t *err);

/* Parses `.hn` JSON. `name` is used in error messages. The result is finalized (validated);
 * a dangling edge, a cycle, a shape mismatch or an unknown type fails with the layer named.
 * The caller owns *out. */
HQ_API hq_status_t hq_graph_from_json(const char *json, size_t len, const char *name,
                                      hq_graph_t **out, hq_error_t *err);
/* Serializes to `.hn` JSON (pretty-printed, deterministic key order). Param keys the reader did not
 * know are written back unchanged. The caller owns *json (free()). */
HQ_API hq_status_t hq_graph_to_json(const hq_graph_t *graph, char **json, size_t *len,
                                    hq_error_t *err);

/* ---- reading ---------------------------------------------------------------------------- */

HQ_API const char *hq_graph_net_name(const hq_graph_t *graph);
HQ_API int hq_graph_layer_count(const hq_graph_t *graph);
/* Layer by index, or NULL when out of range. Owned by the graph. */
HQ_API const hq_layer_t *hq_graph_layer(const hq_graph_t *graph, int index);
/* Index of a layer given its scoped name ("net/conv3"), bare name ("conv3") or one of its original
 * names, tried in that order; -1 when none matches. */
HQ_API int hq_graph_find(const hq_graph_t *graph, const char *name);
/* Topological order (producers before consumers): `count` indices, owned by the graph.
 * Valid after finalize. */
HQ_API const int *hq_graph_topo_order(const hq_graph_t *graph, int *count);
/* Input layers and output layers, in `.hn` order ("output_layers_order" for outputs). */
HQ_API const int *hq_graph_inputs(const hq_graph_t *graph, int *count);
HQ_API const int *hq_graph_outputs(const hq_graph_t *graph, int *count);
/* Number of output pieces a layer produces (split_count for a splitter, else 1), and the shape of
 * piece `port`. */
HQ_API int hq_layer_port_count(const hq_layer_t *layer);
HQ_API hq_shape_t hq_layer_port_shape(const hq_layer_t *layer, int port);

/* ---- building and editing ----------------------------------------------------------------- */

/* Appends a layer named `bare_name` (scoped as "<net>/<bare_name>"); params zeroed with defaults
 * (strides/dilations/groups/steps 1, axis 3). *index receives its index. Unfinalizes the graph. */
HQ_API hq_status_t hq_graph_add_layer(hq_graph_t *graph, const char *bare_name,
                                      hq_layer_type_t type, int *index, hq_error_t *err);
/* Mutable access for the builder (parser, optimizer). Unfinalizes the graph. */
HQ_API hq_layer_t *hq_graph_layer_mut(hq_graph_t *graph, int index);
/* Adds an edge from piece `port` of `producer` to the next input slot of `consumer`. */
HQ_API hq_status_t hq_graph_connect(hq_graph_t *graph, int producer, int port, int consumer,
                                    hq_error_t *err);
/* Inserts `layer` (a new layer with no edges) on every edge leaving `after`: after -> layer -> the
 * old consumers, keeping each consumer's input slot. */
HQ_API hq_status_t hq_graph_insert_after(hq_graph_t *graph, int after, int layer,
                                         hq_error_t *err);
/* Removes a layer with exactly one input, reconnecting its consumers to its producer. Renumbers. */
HQ_API hq_status_t hq_graph_bypass_layer(hq_graph_t *graph, int index, hq_error_t *err);
/* Sets the output order (indices of output layers). */
HQ_API hq_status_t hq_graph_set_outputs_order(hq_graph_t *graph, const int *outputs, int count,
                                              hq_error_t *err);
/* Copies and stores a string/array param. */
HQ_API hq_status_t hq_layer_set_split_sizes(hq_graph_t *graph, int index, const int *sizes,
                                            int count, hq_error_t *err);
HQ_API hq_status_t hq_layer_set_normalization(hq_graph_t *graph, int index, const float *mean,
                                              const float *std, int channels, hq_error_t *err);
HQ_API hq_status_t hq_layer_add_original_name(hq_graph_t *graph, int index, const char *name,
                                              hq_error_t *err);
/* Input layers get their shape from here; other shapes are inferred by finalize. */
HQ_API hq_status_t hq_layer_set_output_shape(hq_graph_t *graph, int index, const hq_shape_t *shape,
                                             hq_error_t *err);

/* Validates and orders the graph: every edge points at a layer, no cycles, arity of every layer
 * type respected, shapes inferred from the inputs forward and checked against any shape stored
 * (a mismatch names the layer and both shapes). `name` (file name) prefixes error messages. */
HQ_API hq_status_t hq_graph_finalize(hq_graph_t *graph, const char *name, hq_error_t *err);
HQ_API bool hq_graph_is_finalized(const hq_graph_t *graph);

/* Number of weights of a layer as the params define it (kernel + bias), from its shape params. */
HQ_API int64_t hq_layer_param_count(const hq_layer_t *layer);

#ifdef __cplusplus
}
#endif
#endif
