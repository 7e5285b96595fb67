/* layer_types.h — the layer types of a network graph and what each type is.
 *
 * Every property of a layer type (its `.hn` name, its arity, whether it has weights, how it is
 * quantized, ...) lives in one row of one table (core/graph/layer_types.c); code that needs such a
 * property asks hq_layer_type_traits() instead of listing types. */
#ifndef HQ_LAYER_TYPES_H
#define HQ_LAYER_TYPES_H

#include <stdbool.h>
#include <stddef.h>

#include "hq/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Layer types, named as in Hailo's `.hn` ("type" field). Values are append-only. */
typedef enum hq_layer_type {
    HQ_LAYER_INPUT = 0,        /* "input_layer": a network input, no params */
    HQ_LAYER_OUTPUT,           /* "output_layer": a network output, identity */
    HQ_LAYER_CONV,             /* "conv": 2-D convolution, optional groups, fused bias/BN/add/act */
    HQ_LAYER_DW,               /* "dw": depthwise convolution (groups == channels) */
    HQ_LAYER_DECONV,           /* "deconv": transposed convolution */
    HQ_LAYER_DENSE,            /* "dense": fully connected on [-1, C] */
    HQ_LAYER_BATCH_NORM,       /* "batch_norm": standalone batch normalization */
    HQ_LAYER_ACTIVATION,       /* "activation": standalone activation */
    HQ_LAYER_NORMALIZATION,    /* "normalization": (x - mean) / std per channel */
    HQ_LAYER_MAXPOOL,          /* "maxpool" */
    HQ_LAYER_AVGPOOL,          /* "avgpool" */
    HQ_LAYER_GLOBAL_AVG_POOL,  /* "global_avg_pool": mean over H and W, keeps [-1,1,1,C] */
    HQ_LAYER_EW_ADD,           /* "ew_add": a + b, NHWC broadcast */
    HQ_LAYER_EW_SUB,           /* "ew_sub": a - b */
    HQ_LAYER_EW_MULT,          /* "ew_mult": a * b */
    HQ_LAYER_EW_DIV,           /* "ew_div": a / b */
    HQ_LAYER_EW_MAX,           /* "ew_max": max(a, b) */
    HQ_LAYER_EW_MIN,           /* "ew_min": min(a, b) */
    HQ_LAYER_CONCAT,           /* "concat": along `axis` */
    HQ_LAYER_FEATURE_SPLITTER, /* "feature_splitter": split along `axis` into `split_sizes` */
    HQ_LAYER_SLICE,            /* "slice": begin/end/step on H, W, C */
    HQ_LAYER_PAD,              /* "pad": explicit padding on H, W, C */
    HQ_LAYER_RESIZE,           /* "resize": nearest or bilinear to an output size */
    HQ_LAYER_DEPTH_TO_SPACE,   /* "depth_to_space" */
    HQ_LAYER_SPACE_TO_DEPTH,   /* "space_to_depth" */
    HQ_LAYER_SOFTMAX,          /* "softmax": along `axis` */
    HQ_LAYER_CONST_INPUT, /* "const_input": a constant tensor from the params (".../const:0") */
    HQ_LAYER_RESHAPE,     /* "reshape": same elements in NHWC memory order, new shape */
    HQ_LAYER_TRANSPOSE,   /* "transpose": permutes the axes of the NHWC tensor by `perm` */
    HQ_LAYER_REDUCE_MAX,  /* "reduce_max": over `axis`, kept as size 1 */
    HQ_LAYER_REDUCE_SUM,  /* "reduce_sum": over `axis`, kept as size 1 */
    HQ_LAYER_ARGMAX,      /* "argmax": over channels */
    HQ_LAYER_CHANNEL_SHUFFLE, /* "channel_shuffle": output channel i*groups + j is input channel
                               * j*(C/groups) + i (ShuffleNet) */
    HQ_LAYER_LAYER_NORM,      /* "layer_norm": each position's channels normalized to mean 0 and
                               * variance 1 (epsilon added), then gamma[c] * x + beta[c] */
    HQ_LAYER_MATMUL,          /* "matmul": a product of two computed tensors, one matrix per
                               * channel: out[n,i,j,c] = sum_k a[n,i,k,c] * b[n,k,j,c] (ONNX
                               * MatMul of [N, C, I, K] and [N, C, K, J]: attention) */
    HQ_LAYER_TYPE_COUNT
} hq_layer_type_t;

/* The binary operation of an elementwise layer type (two inputs, NHWC broadcast). Append-only. */
typedef enum hq_ew_op {
    HQ_EW_NONE = 0, /* not an elementwise layer type */
    HQ_EW_ADD,      /* a + b */
    HQ_EW_SUB,      /* a - b */
    HQ_EW_MULT,     /* a * b */
    HQ_EW_DIV,      /* a / b */
    HQ_EW_MAX,      /* max(a, b) */
    HQ_EW_MIN,      /* min(a, b) */
    HQ_EW_COUNT
} hq_ew_op_t;

/* How a layer type computes in the integer (quantized) model: which integer params `hq optimize`
 * stores for it (man/hq-har.5, docs/numerics.md) and which integer kernel runs it. Append-only. */
typedef enum hq_quant_form {
    HQ_QUANT_NONE = 0,    /* no integer form: quantized emulation and compilation refuse it */
    HQ_QUANT_INPUT,       /* a network input: float data quantized with the layer's encoding */
    HQ_QUANT_CONST,       /* a constant stored as codes in the layer's own encoding */
    HQ_QUANT_WEIGHTED,    /* integer kernel, int64 bias, requantization to the output encoding */
    HQ_QUANT_AFFINE,      /* per-channel integer scale and bias, requantization */
    HQ_QUANT_ELEMENTWISE, /* both inputs rescaled to one stage, combined, requantized */
    HQ_QUANT_POOL,        /* averaging: one requantization multiplier per window count */
    HQ_QUANT_ACTIVATION,  /* a table indexed by the input code, or a piecewise-linear stage */
    HQ_QUANT_SOFTMAX,     /* an exp table indexed by the code distance to the maximum */
    HQ_QUANT_CODES,       /* moves or selects input codes: the output keeps the input's encoding */
    HQ_QUANT_INDEX,       /* the output code is an index (scale 1, zero point 0), not a value */
    HQ_QUANT_NORM,        /* integer mean and variance per position, fixed-point reciprocal
                           * square root, per-channel scale and bias, requantization */
    HQ_QUANT_FORM_COUNT
} hq_quant_form_t;

/* What a layer type is. One row per type, owned by the library (static, never freed).
 * Fields are only appended: a caller built against an older header reads only the fields that
 * end within `struct_size`. */
typedef struct hq_layer_type_traits {
    size_t struct_size;         /* sizeof(hq_layer_type_traits_t) of the library that answered */
    const char *name;           /* `.hn` "type" string ("conv") */
    int min_inputs;             /* fewest inputs a layer of this type takes */
    int max_inputs;             /* most inputs it takes; -1 = no limit (concat) */
    bool has_weights;           /* multiplies by a learned kernel: conv, dw, deconv, dense; these
                                 * have a pre-activation value, a weight width (4/8/16 bit) and
                                 * MACs */
    bool passes_precision;      /* its output width is its input width: a 16-bit request on it
                                 * or on any of its inputs raises them all (hq optimize's precision
                                 * groups). Types that rescale without changing the width (ew_add,
                                 * avgpool) count; reduce_max does not */
    bool passes_codes;          /* its quantized output keeps its input's encoding (scale, zero
                                 * point, bits): it moves or selects codes; with several inputs they
                                 * must share one encoding. Same types as quant_form == CODES */
    bool range_preserving;      /* calibration gives its output and its inputs one shared float
                                 * range (a concat and the layers that only move values). resize
                                 * joins too when its method is nearest, a param, so it is false
                                 * here; reduce_max calibrates its own range */
    bool repeats_values;        /* every output value is a value of an input (data movement,
                                 * concat, maxpool, reduce_max): the output has no range of its own
                                 * worth judging apart from its producer's */
    bool fused_activation;      /* applies params.activation to its result (the `.hn`
                                 * "activation" key), and model scripts may change it */
    hq_ew_op_t ew_op;           /* the binary operation of an elementwise type, else HQ_EW_NONE */
    hq_quant_form_t quant_form; /* how it computes in the integer model */
} hq_layer_type_traits_t;

/* The traits of `type`, or NULL when `type` is out of range. Static, owned by the library. */
HQ_API const hq_layer_type_traits_t *hq_layer_type_traits(hq_layer_type_t type);

/* `.hn` name of a type ("conv"), or NULL when out of range. Static string. */
HQ_API const char *hq_layer_type_name(hq_layer_type_t type);
/* Reverse lookup; HQ_ERR_NOT_FOUND for an unknown (or NULL) name. */
HQ_API hq_status_t hq_layer_type_from_name(const char *name, hq_layer_type_t *type);

#ifdef __cplusplus
}
#endif
#endif
