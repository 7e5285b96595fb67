/* lower.h — the one lowering of a quantized layer: (layer, its decoded integer params) -> the
 * runtime op that computes it, as the op code of the program format (hqrt_format.h) and the
 * argument structs of the runtime's kernels (hqrt_kernels_ref.h). The compiler
 * (core/deploy/compile.c) serializes that op into the `.hqx` program; the quantized emulator
 * (core/emulate/qemulator.c) calls the kernels with it. Neither chooses a kernel or a parameter
 * itself, so the two run the same arithmetic by construction. Internal to libhq. */
#ifndef HQ_CORE_NUMERICS_LOWER_H
#define HQ_CORE_NUMERICS_LOWER_H

#include <stddef.h>
#include <stdint.h>

#include "numerics/qmodel.h"
#include "runtime/hqrt_format.h"
#include "runtime/hqrt_kernels_ref.h"

/* Constant data an op reads: borrowed from the q.npz behind the model (NULL/0 when absent). */
typedef struct hqi_op_data {
    const void *data;
    size_t size; /* bytes */
} hqi_op_data_t;

/* One layer as a runtime op. Encodings of inputs (in_bits/in_zp, a_bits, ...) are those of the
 * producing layers, the output stage's out_bits/out_zp the layer's own: exactly what the runtime
 * reads from the program's tensors. Only the member of `code` is set; the rest is zero. */
typedef struct hqi_op {
    uint32_t code;    /* hqx_op_code_t */
    int input_count;  /* the op reads the layer's first input_count inputs (a conv's addend: 2) */
    int output_count; /* the layer's output ports */
    union {
        struct { /* CONV (conv, dw, batch_norm and normalization as a 1x1 dw), DENSE, DECONV */
            hqrt_conv_params_t params; /* window fields 0 for DENSE; output pads DECONV only */
            hqi_op_data_t weights;     /* int8 (4/8-bit) or int16 [kh, kw, cin/groups, cout];
                                          dense [cin, cout] */
            hqi_op_data_t bias;        /* int64 [cout] in the accumulator scale, or absent */
            int32_t addend_multiplier; /* CONV with input_count 2: the addend's term */
            int32_t addend_shift;
        } conv;
        hqrt_pool_params_t pool; /* MAXPOOL (no stage), AVGPOOL, GLOBAL_AVG (window unused) */
        hqrt_ew_params_t eltwise; /* ELTWISE */
        struct {                  /* ACTIVATION: the stage; LUT: the table alone */
            int32_t in_bits, in_zp;
            hqrt_output_stage_t stage;
            int32_t out_bits;  /* LUT: width of the codes in the table */
            hqi_op_data_t lut; /* LUT: 2^in_bits codes of the output's width */
        } activation;
        struct { /* SOFTMAX */
            int32_t in_bits;
            int32_t axis;
            hqi_op_data_t exp_lut; /* int32 [2^in_bits], Q30 */
            hqrt_output_stage_t stage;
        } softmax;
        struct { /* CONCAT, SPLIT, REDUCE_MAX, ARGMAX, COPY: codes moved, not changed */
            int32_t bits;     /* width of the codes read (ARGMAX: the input's) */
            int32_t out_bits; /* ARGMAX: width of the index written */
            int32_t axis;     /* COPY: 0 */
            int32_t split_count;      /* SPLIT: pieces ... */
            const int *split_sizes;   /* ... and their extents along axis (the graph's) */
        } axis;
        struct { /* CONST */
            int32_t bits;
            hqi_op_data_t codes; /* the output's codes of one sample */
        } constant;
        struct { /* SLICE */
            int32_t bits;
            hqrt_slice_params_t params; /* ends clamped to the input's extents */
        } slice;
        struct { /* PAD */
            int32_t bits;
            hqrt_pad_params_t params;
        } pad;
        hqrt_resize_params_t resize; /* RESIZE */
        struct {                     /* DEPTH_TO_SPACE, SPACE_TO_DEPTH */
            int32_t bits;
            int32_t block;
            int32_t crd;
        } block;
        struct { /* TRANSPOSE, TRANSPOSE_VIEW */
            int32_t bits;
            int32_t perm[HQRT_MAX_DIMS]; /* over the rank, batch included; identity past it */
            /* TRANSPOSE_VIEW: the input read as this shape, one sample (view[0] == 1, 1 past
             * view_ndim); TRANSPOSE: view_ndim 0, the input's own shape */
            int32_t view_ndim;
            int32_t view[HQRT_MAX_DIMS];
        } transpose;
        struct { /* LAYER_NORM */
            hqrt_layer_norm_params_t params;
            hqi_op_data_t gamma; /* int8 (4/8-bit) or int16 [C] */
            hqi_op_data_t bias;  /* int64 [C] in the accumulator scale */
        } layer_norm;
    } u;
} hqi_op_t;

/* True when hqi_lower_layer knows the layer type (every type but input, ew_div and reduce_sum). */
bool hqi_lower_supported(hq_layer_type_t type);
/* NULL when the layer's params have an integer form, else why not (a static string: the integer
 * resize maps coordinates with output / input and rounds nearest down or to the nearest, ties
 * down; the float kernels take every ONNX form). */
const char *hqi_lower_params_unsupported(const hq_layer_t *layer);

/* The HQRT_EW_* op that runs an elementwise layer of `type` (its traits' ew_op): ew_sub is an add
 * whose b multiplier the builder negated. -1 for a type without an integer elementwise form. */
int32_t hqi_quant_ew_kernel_op(hq_layer_type_t type);

/* Lowers layer `index` of `graph` with the decoded params of `model` into *op. Pointers in *op
 * borrow from the model (and from the graph's layer params): they live as long as those do.
 * Fails with HQ_ERR_UNSUPPORTED and a message without any prefix (the caller names the layer)
 * when the type has no op or the params lack what the op needs. */
hq_status_t hqi_lower_layer(const hq_graph_t *graph, const hqi_qmodel_t *model, int index,
                            hqi_op_t *op, hq_error_t *err);

#endif
