/* onnx_internal.h — shared by the files of core/onnx only: the conversion context, the value
 * table (what each ONNX tensor name stands for), the op table and the functions the files call
 * across each other (prefix onnxi_). docs/onnx.md describes the file layout. */
#ifndef HQ_ONNX_INTERNAL_H
#define HQ_ONNX_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "hq/parse.h"
#include "onnx.pb-c.h"
#include "util/util.h"

/* Largest element count of one constant tensor hq accepts (2^31 floats = 8 GiB). */
#define MAX_CONST_ELEMENTS ((int64_t)1 << 31)

/* An open clip bound. The .hn format keeps floats within +-3e38, so "no bound" is 1e38. */
#define CLIP_OPEN 1e38f

enum { VALUE_UNKNOWN = 0, VALUE_CONST, VALUE_LAYER };

/* What an ONNX tensor name stands for while the graph is built. */
typedef struct onnxi_value {
    char *name;
    int kind;              /* VALUE_* */
    hq_tensor_t *constant; /* VALUE_CONST: float32 or int64, ONNX layout */
    int layer, port;       /* VALUE_LAYER: producer layer and output piece */
    int rank;              /* VALUE_LAYER: ONNX rank: 2 ([N, C]), 3 ([N, C, L], held as the
                              hq tensor [-1, 1, L, C], i.e. NCHW with H = 1) or 4 */
    bool flat;             /* VALUE_LAYER: ONNX [N, C*H*W] view of a rank-4 layer output that
                              is not materialized yet (a dense consuming it permutes its rows) */
    bool nhwc;             /* VALUE_LAYER, rank 4: the ONNX tensor is [N, H, W, C], the layer
                              output itself (a Transpose [0, 2, 3, 1] that made no layer); rank 3:
                              the ONNX tensor is the sequence [N, L, C], the layer output
                              [-1, 1, L, C] itself (a Transpose [0, 2, 1] of [N, C, L]); a node
                              that cannot read it so gets it materialized (onnx_layer_norm.c) */
    int64_t flat_c, flat_h, flat_w;
    int uses;     /* consuming node inputs + graph outputs (needed nodes only) */
    int producer; /* index of the node producing it, -1 for none */
    bool needed;  /* on a path to an output */
} onnxi_value_t;

/* A params tensor of a layer, written as "<net>/<layer>/<suffix>" at the end. */
typedef struct onnxi_param {
    int layer;
    const char *suffix;
    hq_tensor_t *tensor;
} onnxi_param_t;

/* Per-node plan made before conversion (pattern fusions). */
typedef struct onnxi_node_plan {
    bool skip; /* folded into a later node's pattern */
    int act;   /* >= 0: the node is this activation applied to `act_input` */
    const char *act_input;
    const char **extra_names; /* node names of the pattern, for original_names */
    int extra_count;
    int x_uses; /* reads of act_input by the node itself (the others are skipped) */
    int channels_last; /* ONNXI_CL_*: the node's part in a channels-last input or output */
    /* a layer normalization decomposition ending at this node (onnx_layer_norm.c): its first
     * ReduceMean (input and axes), epsilon, and the gamma / beta constants (NULL: none) */
    const Onnx__NodeProto *norm_mean;
    float norm_epsilon;
    const char *norm_gamma, *norm_beta;
} onnxi_node_plan_t;

/* Parts of a node next to a channels-last (NHWC) input or output (onnx_channels_last.c). */
enum {
    ONNXI_CL_NONE = 0,
    ONNXI_CL_PREPROCESS,     /* Mul/Add/Sub/Div by a constant or Cast to float on NHWC data */
    ONNXI_CL_TO_NCHW,        /* the Transpose (or C = 1 Reshape) to NCHW: vanishes */
    ONNXI_CL_TO_NHWC_OUTPUT, /* the final Transpose (or C = 1 Reshape) to NHWC: vanishes */
};

/* The state of one conversion (one pass of onnx_parse.c's convert). */
typedef struct onnxi_ctx {
    const char *name; /* file name for messages */
    hq_error_t *err;
    Onnx__GraphProto *g;
    int64_t opset;
    hq_graph_t *graph;
    onnxi_value_t *values;
    int value_count, value_cap;
    int *table; /* open-addressing hash of value indices, -1 empty */
    int table_cap;
    onnxi_param_t *params;
    int param_count, param_cap;
    onnxi_node_plan_t *plans;
    const bool *node_needed; /* per node: on a path to an output (set before planning) */
    const char **plan_names; /* storage of every plan's extra_names */
    int counters[HQ_LAYER_TYPE_COUNT];
    int64_t limit;                  /* largest tensor onnxi_new_tensor makes (smaller while
                                       folding) */
    const hq_shape_t *input_shapes; /* opts->input_shapes: NCHW shapes for the graph inputs */
    bool lift_1d; /* the node being converted is a 1-D conv/pool on a [N, C, L] tensor, rewritten
                     as 2-D with H = 1 (onnxi_lift_1d_node): onnxi_image_input and the conv
                     convert take rank 3 */
    int input_shape_count;
    bool shapes_only; /* the pass before a --start-node-names cut, which only learns the shapes of
                         the cut tensors: elementwise ops hq cannot convert pass their input on */
    const char *const *outputs; /* the tensors the conversion makes outputs (for the cut hint) */
    int output_count;
} onnxi_ctx_t;

/* ---- the op table (onnx_ops.c) ------------------------------------------------------------ */

/* Converts node n into layers (the node's inputs are not all constants). */
typedef hq_status_t (*onnxi_convert_fn)(onnxi_ctx_t *c, const Onnx__NodeProto *n);
/* Computes node n's outputs as constants. in[i] is constant input i (NULL when absent; in[0] is
 * never NULL); inputs past the fourth are read from the value table. *folded is true on entry;
 * a fold that finds it cannot fold after all sets it to false and returns HQ_OK. */
typedef hq_status_t (*onnxi_fold_fn)(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                     hq_tensor_t *const in[4], bool *folded);

/* One ONNX op type. */
typedef struct onnxi_op {
    const char *name;         /* ONNX op_type */
    onnxi_convert_fn convert; /* NULL: the op only folds; otherwise it is "not supported" */
    onnxi_fold_fn fold;       /* NULL: never folded, converted even on constant inputs */
    bool lifts_1d;            /* on a [N, C, L] input it is the 2-D op on [N, C, 1, L] */
} onnxi_op_t;

/* The table row of op type `op_type`; NULL for an op hq does not know. */
const onnxi_op_t *onnxi_find_op(const char *op_type);

/* ---- messages (onnx_values.c) ------------------------------------------------------------- */

/* The node's name, else its first output's name, else "?" (for messages and original_names). */
const char *onnxi_node_label(const Onnx__NodeProto *n);
/* "<file>: node '<label>' (<op>): <what>" in c->err; returns st. */
hq_status_t onnxi_node_error(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_status_t st,
                             const char *what);

/* Returns from the calling function with a node error formatted like printf. */
#define NODE_FAIL(c, n, st, ...)                                                                   \
    do {                                                                                           \
        char msg_[320];                                                                            \
        snprintf(msg_, sizeof msg_, __VA_ARGS__);                                                  \
        return onnxi_node_error((c), (n), (st), msg_);                                             \
    } while (0)

/* ---- node attributes (onnx_decode.c) ------------------------------------------------------ */

const Onnx__AttributeProto *onnxi_find_attr(const Onnx__NodeProto *n, const char *name);
int64_t onnxi_attr_int(const Onnx__NodeProto *n, const char *name, int64_t fallback);
float onnxi_attr_float(const Onnx__NodeProto *n, const char *name, float fallback);
/* String attribute copied into `buf` (64 bytes, truncated); `fallback` when absent. */
const char *onnxi_attr_string_buf(const Onnx__NodeProto *n, const char *name, const char *fallback,
                                  char *buf);
/* onnxi_attr_string_buf with a buffer living as long as the enclosing block. */
#define onnxi_attr_string(n, name, fallback)                                                       \
    onnxi_attr_string_buf((n), (name), (fallback), (char[64]){0})
/* Integer list attribute (points into the node, at most 64 read); *count = -1 when absent. */
const int64_t *onnxi_attr_ints(const Onnx__NodeProto *n, const char *name, int *count);

/* ---- decoding (onnx_decode.c) ------------------------------------------------------------- */

/* A TensorProto as a float32 or int64 tensor (caller owns *out); `what` names it in errors. */
hq_status_t onnxi_decode_tensor(onnxi_ctx_t *c, const Onnx__TensorProto *tp, const char *what,
                                hq_tensor_t **out);
/* Every initializer and Constant node output becomes a VALUE_CONST value. */
hq_status_t onnxi_load_constants(onnxi_ctx_t *c);

/* ---- values, constants, params, layers (onnx_values.c) ------------------------------------ */

/* The value named `name`, created (unknown) when absent. */
hq_status_t onnxi_intern_value(onnxi_ctx_t *c, const char *name, onnxi_value_t **out);
/* The value named `name`; NULL when it was never interned. */
onnxi_value_t *onnxi_value_of(onnxi_ctx_t *c, const char *name);
/* Input `i` of a node: NULL when absent (optional input left empty). Fails on an undefined name. */
hq_status_t onnxi_node_input(onnxi_ctx_t *c, const Onnx__NodeProto *n, size_t i,
                             onnxi_value_t **out);
/* Input `i` as a constant (owned by the value table); NULL when absent and not `required`. */
hq_status_t onnxi_const_input(onnxi_ctx_t *c, const Onnx__NodeProto *n, size_t i, bool required,
                              hq_tensor_t **out);
/* Input `i` as a single float; `fallback` when absent. */
hq_status_t onnxi_scalar_input(onnxi_ctx_t *c, const Onnx__NodeProto *n, size_t i, float fallback,
                               float *out);
/* Output k of node n becomes constant `t` (taken over, also on failure). */
hq_status_t onnxi_set_const_output(onnxi_ctx_t *c, const Onnx__NodeProto *n, size_t k,
                                   hq_tensor_t *t);
/* Output k of node n becomes output `port` of `layer`, an ONNX tensor of rank `rank`. */
hq_status_t onnxi_set_layer_output(onnxi_ctx_t *c, const Onnx__NodeProto *n, size_t k, int layer,
                                   int port, int rank);
/* Output 0 of node n stands for what `src` stands for (a constant is copied). */
hq_status_t onnxi_alias_output(onnxi_ctx_t *c, const Onnx__NodeProto *n, const onnxi_value_t *src);

/* A new tensor of at most c->limit elements (caller owns *out). */
hq_status_t onnxi_new_tensor(onnxi_ctx_t *c, hq_dtype_t dtype, int ndim, const int64_t *shape,
                             hq_tensor_t **out);
/* Element i of a float32 or int64 tensor, as a double / as an integer / stored from a double. */
double onnxi_tensor_at(const hq_tensor_t *t, int64_t i);
int64_t onnxi_tensor_int_at(const hq_tensor_t *t, int64_t i);
void onnxi_put_at(hq_tensor_t *t, int64_t i, double v);
/* Row-major element strides of t. */
void onnxi_strides_of(const hq_tensor_t *t, int64_t *strides);
/* A constant that broadcasts against a rank-`rank` tensor with `channels` channels as a scalar or
 * a per-channel vector: *vec (caller frees) gets `channels` values. false when it is neither. */
bool onnxi_channel_vector(const hq_tensor_t *t, int rank, int64_t channels, float **vec);
/* A 1-D float tensor holding v[0..count) (caller owns *out). */
hq_status_t onnxi_vector_tensor(onnxi_ctx_t *c, const float *v, int64_t count, hq_tensor_t **out);

/* Stores `tensor` (taken over, also on failure) as a param of `layer`. */
hq_status_t onnxi_put_param(onnxi_ctx_t *c, int layer, const char *suffix, hq_tensor_t *tensor);
/* The param `suffix` of `layer` (owned by c); NULL when absent. */
hq_tensor_t *onnxi_get_param(onnxi_ctx_t *c, int layer, const char *suffix);
void onnxi_params_destroy(onnxi_ctx_t *c);

/* A new layer named <type><k>; with a node, the node's label is its first original name. */
hq_status_t onnxi_new_layer(onnxi_ctx_t *c, hq_layer_type_t type, const Onnx__NodeProto *n,
                            int *index);
hq_layer_params_t *onnxi_layer_params(onnxi_ctx_t *c, int index);
/* Connects the layer output that value v stands for to `consumer`. */
hq_status_t onnxi_connect_value(onnxi_ctx_t *c, const onnxi_value_t *v, int consumer);
/* True when the current node, reading `v` `reads` times, is the only reader of v's layer output
 * (no layer consumes it yet, no later node reads it), so that the layer can absorb what the node
 * does (weights, activation). */
bool onnxi_sole_reader(const onnxi_ctx_t *c, const onnxi_value_t *v, int reads);

/* ---- ONNX (NCHW) values on hq (NHWC) layers (onnx_nhwc.c) --------------------------------- */

/* The hq (NHWC) shape of a layer value, materialized or not. */
hq_status_t onnxi_hq_shape_of(onnxi_ctx_t *c, const onnxi_value_t *v, hq_shape_t *shape);
/* The ONNX (NCHW) shape of a layer value, batch reported as 1. */
hq_status_t onnxi_onnx_shape_of(onnxi_ctx_t *c, const onnxi_value_t *v, int *rank, int64_t dims[4]);
/* Channel count of a layer value (ONNX dim 1). */
hq_status_t onnxi_channels_of(onnxi_ctx_t *c, const onnxi_value_t *v, int64_t *channels);
/* A reshape layer (no node name) from `from` to the hq shape `to`. */
hq_status_t onnxi_add_reshape(onnxi_ctx_t *c, const onnxi_value_t *from, const hq_shape_t *to,
                              int *index);
/* A transpose layer (no node name) of output `port` of `layer`. */
hq_status_t onnxi_add_transpose(onnxi_ctx_t *c, int layer, int port, const int *perm, int ndim,
                                int *index);
/* Turns a pending NCHW flatten into layers: NHWC -> NCHW order (transpose) -> [-1, C*H*W]. */
hq_status_t onnxi_materialize(onnxi_ctx_t *c, onnxi_value_t *v);
/* Input `i` as a layer tensor (materialized). */
hq_status_t onnxi_layer_input(onnxi_ctx_t *c, const Onnx__NodeProto *n, size_t i,
                              onnxi_value_t **out);
/* ONNX axis (may be negative) of a rank-`rank` tensor -> NHWC axis; -1 when not mappable. */
int onnxi_map_axis(int64_t axis, int rank);

/* ---- constant folding (onnx_fold.c, onnx_fold_shape.c) ------------------------------------ */

/* Folds node n (op row `op`, NULL when unknown) when its data inputs are all constants;
 * *folded = false when it is left to convert. */
hq_status_t onnxi_fold_node(onnxi_ctx_t *c, const Onnx__NodeProto *n, const onnxi_op_t *op,
                            bool *folded);
/* A constant list of at most `max` integers. */
hq_status_t onnxi_ints_of(onnxi_ctx_t *c, const Onnx__NodeProto *n, const hq_tensor_t *t,
                          int64_t *out, int max, int *count);
/* Normalized axes list from the `axes` attribute or input 1 (opset 13). */
hq_status_t onnxi_axes_of(onnxi_ctx_t *c, const Onnx__NodeProto *n, int rank, int64_t *axes,
                          int *count);
/* Resolves a Reshape target (0 = copy, -1 = infer) against `in` dims. */
hq_status_t onnxi_reshape_target(onnxi_ctx_t *c, const Onnx__NodeProto *n, const int64_t *in,
                                 int in_nd, const hq_tensor_t *shape_t, int64_t *out, int *out_nd);
/* Slice parameters from attributes (opset < 10) or inputs. */
hq_status_t onnxi_slice_params(onnxi_ctx_t *c, const Onnx__NodeProto *n, int rank, int64_t *starts,
                               int64_t *ends, int64_t *axes, int64_t *steps, int *k);

/* Most inputs an elementwise fold takes (Where has 3; variadic Min/Max/Sum/Mean up to this). */
#define ONNXI_MAX_ELEMENTWISE 16
/* One output element from the input elements x[0..count-1] (integer: every input is int64). */
typedef double (*onnxi_elementwise_fn)(const double *x, int count, bool integer);
/* Output `output` of n = fn over t[0..count-1] with ONNX multidirectional (numpy) broadcasting,
 * as a `dtype` tensor. A t[k] without data stands for its shape only (Expand's target). */
hq_status_t onnxi_fold_elementwise(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                   const hq_tensor_t *const *t, int count, hq_dtype_t dtype,
                                   onnxi_elementwise_fn fn, size_t output);
/* Split's part sizes along an axis of `extent`: the `split` input or attribute, else equal parts
 * (num_outputs of opset 18: the last may be smaller); at most `max`. */
hq_status_t onnxi_split_sizes(onnxi_ctx_t *c, const Onnx__NodeProto *n, int64_t extent,
                              int64_t *sizes, int max, int *count);

hq_status_t onnxi_fold_identity(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                                bool *folded);
hq_status_t onnxi_fold_add(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded);
hq_status_t onnxi_fold_sub(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded);
hq_status_t onnxi_fold_mul(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded);
hq_status_t onnxi_fold_div(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded);
hq_status_t onnxi_fold_neg(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded);
hq_status_t onnxi_fold_sqrt(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                            bool *folded);
hq_status_t onnxi_fold_floor(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                             bool *folded);
hq_status_t onnxi_fold_ceil(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                            bool *folded);
hq_status_t onnxi_fold_reciprocal(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                  hq_tensor_t *const in[4], bool *folded);
hq_status_t onnxi_fold_shape(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                             bool *folded);
hq_status_t onnxi_fold_cast(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                            bool *folded);
hq_status_t onnxi_fold_constant_of_shape(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                         hq_tensor_t *const in[4], bool *folded);
hq_status_t onnxi_fold_gather(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                              bool *folded);
hq_status_t onnxi_fold_unsqueeze(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                                 bool *folded);
hq_status_t onnxi_fold_squeeze(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                               bool *folded);
hq_status_t onnxi_fold_reshape(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                               bool *folded);
hq_status_t onnxi_fold_flatten(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                               bool *folded);
hq_status_t onnxi_fold_concat(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                              bool *folded);
hq_status_t onnxi_fold_slice(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                             bool *folded);
hq_status_t onnxi_fold_transpose(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                                 bool *folded);
hq_status_t onnxi_fold_size(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                            bool *folded);
/* onnx_fold_logic.c */
hq_status_t onnxi_fold_equal(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                             bool *folded);
hq_status_t onnxi_fold_less(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                            bool *folded);
hq_status_t onnxi_fold_less_or_equal(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                     hq_tensor_t *const in[4], bool *folded);
hq_status_t onnxi_fold_greater(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                               bool *folded);
hq_status_t onnxi_fold_greater_or_equal(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                        hq_tensor_t *const in[4], bool *folded);
hq_status_t onnxi_fold_and(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded);
hq_status_t onnxi_fold_or(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                          bool *folded);
hq_status_t onnxi_fold_xor(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded);
hq_status_t onnxi_fold_not(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded);
hq_status_t onnxi_fold_where(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                             bool *folded);
hq_status_t onnxi_fold_min(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded);
hq_status_t onnxi_fold_max(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded);
hq_status_t onnxi_fold_sum(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded);
hq_status_t onnxi_fold_mean(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                            bool *folded);
hq_status_t onnxi_fold_mod(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded);
hq_status_t onnxi_fold_pow(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                           bool *folded);
hq_status_t onnxi_fold_range(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                             bool *folded);
hq_status_t onnxi_fold_expand(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                              bool *folded);
hq_status_t onnxi_fold_tile(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                            bool *folded);
hq_status_t onnxi_fold_split(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_tensor_t *const in[4],
                             bool *folded);
hq_status_t onnxi_fold_reduce_sum(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                  hq_tensor_t *const in[4], bool *folded);
hq_status_t onnxi_fold_reduce_prod(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                   hq_tensor_t *const in[4], bool *folded);
hq_status_t onnxi_fold_reduce_mean(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                   hq_tensor_t *const in[4], bool *folded);
hq_status_t onnxi_fold_reduce_max(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                  hq_tensor_t *const in[4], bool *folded);
hq_status_t onnxi_fold_reduce_min(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                  hq_tensor_t *const in[4], bool *folded);

/* ---- activations (onnx_ops_activation.c) -------------------------------------------------- */

/* Applies activation `act` to value x on behalf of node n: fused into x's producer when n is its
 * only consumer, else a standalone activation layer. `slope` (prelu, per channel) is copied. */
hq_status_t onnxi_apply_activation(onnxi_ctx_t *c, const Onnx__NodeProto *n, onnxi_value_t *x,
                                   hq_activation_t act, float alpha, float beta, const float *slope,
                                   int uses_here);
/* A node planned as an activation pattern (SiLU, HardSwish, GELU decompositions). */
hq_status_t onnxi_convert_planned_activation(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                             const onnxi_node_plan_t *p);
hq_status_t onnxi_convert_relu(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_clip(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_leaky_relu(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_prelu(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_sigmoid(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_tanh(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_hard_sigmoid(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_hard_swish(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_exp(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_gelu(onnxi_ctx_t *c, const Onnx__NodeProto *n);

/* ---- windows: conv, deconv, pools, 1-D forms (onnx_ops_window.c) -------------------------- */

/* Input 0 as a 4-D layer tensor and its ONNX dims (a [N, C, L] one while c->lift_1d). */
hq_status_t onnxi_image_input(onnxi_ctx_t *c, const Onnx__NodeProto *n, onnxi_value_t **x,
                              int64_t dims[4]);
hq_status_t onnxi_convert_conv(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_conv_transpose(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_max_pool(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_average_pool(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_global_average_pool(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_reduce_mean(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_global_max_pool(onnxi_ctx_t *c, const Onnx__NodeProto *n);

/* A 1-D op on [N, C, L] is the 2-D op on [N, C, 1, L]: the node is copied with its spatial
 * attributes widened to 2-D (kernel_shape [k] -> [1, k], pads [b, e] -> [0, b, 0, e], ...). */
typedef struct onnxi_lifted_node {
    Onnx__NodeProto node;         /* the copy; `attribute` points at `attrs` */
    Onnx__AttributeProto **attrs; /* the copy's attribute list */
    Onnx__AttributeProto *copies; /* the copied attributes */
    int64_t *ints;                /* storage of the widened integer lists */
} onnxi_lifted_node_t;

/* Fills *l with the 2-D form of node n; release it with onnxi_lifted_free. */
hq_status_t onnxi_lift_1d_node(onnxi_ctx_t *c, const Onnx__NodeProto *n, onnxi_lifted_node_t *l);
void onnxi_lifted_free(onnxi_lifted_node_t *l);

/* ---- dense layers and batch norm (onnx_ops_dense.c) --------------------------------------- */

/* True when producer of x takes scale/shift folding (weights, bias, linear activation). */
bool onnxi_can_absorb_affine(onnxi_ctx_t *c, const onnxi_value_t *x, bool scale);
/* y = x * scale[o] + shift[o] folded into x's producer (output channel is the last kernel axis). */
void onnxi_absorb_affine(onnxi_ctx_t *c, const onnxi_value_t *x, const float *scale,
                         const float *shift);
hq_status_t onnxi_convert_gemm(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_matmul(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_batch_norm(onnxi_ctx_t *c, const Onnx__NodeProto *n);

/* ---- elementwise (onnx_ops_elementwise.c) ------------------------------------------------- */

/* A const_input layer holding `t` broadcast against a rank-`rank` tensor (NCHW -> NHWC). */
hq_status_t onnxi_add_const_layer(onnxi_ctx_t *c, const Onnx__NodeProto *n, const hq_tensor_t *t,
                                  int rank, int *index);
hq_status_t onnxi_convert_add(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_sub(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_mul(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_div(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_max(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_min(onnxi_ctx_t *c, const Onnx__NodeProto *n);

/* ---- layout ops (onnx_ops_layout.c, onnx_ops_reshape.c) ----------------------------------- */

hq_status_t onnxi_convert_concat(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_split(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_slice(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_pad(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_transpose(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_depth_to_space(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_space_to_depth(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_softmax(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_identity(onnxi_ctx_t *c, const Onnx__NodeProto *n);
/* True when Cast node n casts to a floating-point type (float32 in hq). */
bool onnxi_cast_to_float(const Onnx__NodeProto *n);
hq_status_t onnxi_convert_cast(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_dropout(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_shape(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_reshape(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_flatten(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_squeeze(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_unsqueeze(onnxi_ctx_t *c, const Onnx__NodeProto *n);
/* Reshape node n of the channels-last view x (laid out in ONNX order, so a reshape keeping the
 * batch first is one reshape layer giving a view again), or the unstacking of attention's
 * q, k, v from one projection (a 5-D reshape and a Transpose whose readers each take one index
 * of its first axis): then *done = true; *done = false when it is neither. */
hq_status_t onnxi_reshape_view(onnxi_ctx_t *c, const Onnx__NodeProto *n, onnxi_value_t *x,
                               bool *done);

/* ---- resize (onnx_ops_resize.c) ----------------------------------------------------------- */

hq_status_t onnxi_convert_resize(onnxi_ctx_t *c, const Onnx__NodeProto *n);
hq_status_t onnxi_convert_upsample(onnxi_ctx_t *c, const Onnx__NodeProto *n);

/* ---- multi-node patterns (onnx_patterns.c) ------------------------------------------------ */

/* Marks SiLU, HardSwish and GELU decompositions in c->plans before conversion. */
void onnxi_plan_patterns(onnxi_ctx_t *c);
/* Reshape `n` to the 6-D `to`, a Transpose and a Reshape back as one depth_to_space layer (then
 * *done = true, the two later nodes planned as skipped); *done = false when they are not that. */
hq_status_t onnxi_pixel_shuffle(onnxi_ctx_t *c, const Onnx__NodeProto *n, onnxi_value_t *x,
                                const int64_t *in, const int64_t *to, bool *done);
/* Reshape `n` to the 5-D [N, g, C/g, H, W] and a Transpose swapping axes 1 and 2, read only by a
 * Reshape, as one channel_shuffle layer (groups g) giving the Transpose's output as [N, C, H, W]
 * (then *done = true, the Transpose planned as skipped); *done = false when they are not that. */
hq_status_t onnxi_channel_shuffle(onnxi_ctx_t *c, const Onnx__NodeProto *n, onnxi_value_t *x,
                                  const int64_t *in, const int64_t *to, bool *done);

/* ---- layer normalization and channels-last views (onnx_layer_norm.c) ---------------------- */

/* Marks each ReduceMean -> Sub -> Pow 2 -> ReduceMean -> Add eps -> Sqrt -> Div (-> Mul gamma)
 * (-> Add beta) decomposition: the last node becomes the layer_norm, the others are skipped. */
void onnxi_plan_layer_norm(onnxi_ctx_t *c);
/* LayerNormalization (opset 17) over the channel axis. */
hq_status_t onnxi_convert_layer_norm(onnxi_ctx_t *c, const Onnx__NodeProto *n);
/* Converts node n when it is a planned layer normalization, a Transpose between NCHW and a
 * channels-last view, or a node reading a channels-last view that can run on it as it is laid
 * out (MatMul with a constant, elementwise ops and activations): then *done = true. Any other
 * node reading such a view gets it materialized first (*done = false). */
hq_status_t onnxi_convert_nhwc_view(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                    const onnxi_node_plan_t *plan, bool *done);

/* ---- channels-last inputs and outputs (onnx_channels_last.c) ------------------------------ */

/* True when graph input `name` of ONNX shape `dims` is an NHWC input (read only through a
 * transpose to NCHW, maybe after preprocessing by constants): its nodes are planned and `dims`
 * becomes the [N, C, H, W] the network sees. */
bool onnxi_plan_channels_last_input(onnxi_ctx_t *c, const char *name, int rank, int64_t dims[4]);
/* Plans the final transposes to NHWC of the outputs that no node reads. */
void onnxi_plan_channels_last_outputs(onnxi_ctx_t *c, const char *const *outputs, int count);
/* Converts a node planned with channels-last role `role`; *done = false when an output transpose
 * turns out not to vanish (then it is converted as usual). */
hq_status_t onnxi_convert_channels_last(onnxi_ctx_t *c, const Onnx__NodeProto *n, int role,
                                        bool *done);

/* ---- cuts around what cannot be converted (onnx_cut_hint.c) ------------------------------- */

/* The one-line error for node n, which no layer can take: it names the complete
 * --end-node-names (and --start-node-names) that leaves out every such node on the way to
 * `outputs`. */
hq_status_t onnxi_unconvertible_node(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                     const char *const *outputs, int output_count);
/* Node n has a converter, which returned `st`: a refusal (HQ_ERR_UNSUPPORTED) of a node in the
 * post-processing or the preprocessing gets the same cut added to its reason in c->err, when it
 * fits the line. Returns st. */
hq_status_t onnxi_refused_node_cut(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                   const char *const *outputs, int output_count, hq_status_t st);

#endif
