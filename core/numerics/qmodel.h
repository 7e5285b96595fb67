/* qmodel.h — the quantized model: what the optimizer decides per layer (hqi_layer_quant_t), the
 * builder that turns those decisions into the integer params of `<net>.q.npz`
 * (core/numerics/qmodel_build.c), and the decoded per-layer params every integer consumer reads
 * (hqi_qmodel_t, core/numerics/qmodel_load.c). Internal to libhq; the formulas are in
 * docs/numerics.md, the keys in hq-har(5). */
#ifndef HQ_CORE_NUMERICS_QMODEL_H
#define HQ_CORE_NUMERICS_QMODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "hq/common.h"
#include "hq/graph.h"
#include "hq/tensor.h"
#include "runtime/hqrt_kernels_ref.h"

/* One layer's quantization decisions, indexed like the graph's layers. */
typedef struct hqi_layer_quant {
    int input_bits;          /* 8 or 16: bits of the activations the layer reads */
    int weight_bits;         /* 0 for layers without weights; else 4, 8 or 16 */
    int output_bits;         /* 8 or 16: bits of the activations the layer writes */
    float out_min, out_max;  /* float range of the output (always contains 0), after clipping and
                                forced ranges; concat inputs already share the concat's range */
    float weight_clip;       /* > 0: clip |w| to this before quantizing (weights_clipping); 0: none */
    float pre_min, pre_max;  /* float range of the PRE-activation value of a layer whose fused
                                activation goes through a lookup table (sigmoid, silu, tanh,
                                hardswish, hardsigmoid, exp); both 0: derived from the output range
                                as docs/numerics.md says. Ignored for other layers. */
    float *weight_clip_channels; /* [output channels] or NULL: per output channel clip of |w|
                                    (weights_clipping mmse), replacing weight_clip; > 0 clips,
                                    0 leaves the channel unclipped. Owned by the optimizer
                                    (hqi_weight_clip_free). */
} hqi_layer_quant_t;

/* Builds the integer params of a quantized model from the graph, its fp-optimized float params and
 * one decision per layer, into a new npz the caller owns (keys documented in man/hq-har.5 and
 * docs/numerics.md). Fails naming the layer when a decision is inconsistent (e.g. a concat whose
 * inputs have different ranges). */
hq_status_t hqi_quant_build_params(const hq_graph_t *graph, const hq_npz_t *fpo_params,
                                   const hqi_layer_quant_t *decisions, hq_npz_t **out,
                                   hq_error_t *err);

/* ---- scalar formulas ------------------------------------------------------------------------ */

/* TFLite QuantizeMultiplier: ratio = m * 2^(shift - 31) with |m| in [2^30, 2^31) from frexp,
 * rounded half away from zero; ratio 0 or below 2^-32 gives (0, 0); above 2^30 saturates to
 * (2^31 - 1, 30). Negative ratios give negative m. */
void hqi_quant_multiplier(double ratio, int32_t *multiplier, int32_t *shift);

/* Scale and zero point of an unsigned `bits`-bit activation for the float range [lo, hi]
 * (widened to contain 0): scale = (hi - lo) / (2^bits - 1) as float32, zp = round(-lo / scale)
 * clamped to the code range; a zero-width range gives scale 1, zp 0. */
void hqi_quant_activation_qp(double lo, double hi, int bits, float *scale, int32_t *zp);

/* ---- the decoded model ---------------------------------------------------------------------- */

/* One layer's integer params decoded from q.npz, which hqi_lower_layer (lower.h) turns into the
 * runtime op that the quantized emulator runs and the compiler writes.
 * Pointers point into the npz tensors (borrowed: the npz must outlive the model). Fields a layer
 * type does not use are zero/NULL. */
typedef struct hqi_qlayer {
    int32_t bits;               /* output activation bits (8 or 16), every port */
    float scale;                /* output qp_scale */
    int32_t zp;                 /* output qp_zp */
    int32_t weight_bits;        /* 0, 4, 8 or 16 */
    const void *kernel;         /* int8_t (4/8-bit) or int16_t, the native layout */
    const int64_t *bias;        /* [cout] accumulator scale, or NULL */
    hqrt_output_stage_t stage;  /* requantization, lut, clamp (multipliers NULL when unused) */
    int32_t input_multiplier[2], input_shift[2]; /* ew add/sub/max/min terms; conv addend [0] */
    float pre_scale;            /* with stage.lut on a fused activation: pre-activation scale */
    const void *lut;            /* standalone activation layer: lut:0 indexed by the input code */
    const void *constant;       /* const_input: const:0 codes */
    int32_t pad_code;           /* pad (constant mode): pad_code:0 */
    bool has_addend;            /* conv with elementwise_add */
    int64_t epsilon_term;       /* layer_norm: epsilon_term:0, epsilon in C^2 input codes^2 */
} hqi_qlayer_t;

typedef struct hqi_qmodel {
    int layer_count;
    hqi_qlayer_t *layers;       /* indexed like the graph's layers */
} hqi_qmodel_t;

/* Decodes and checks q.npz against the graph (every key's dtype and size; codes, shifts and bit
 * widths in range) into *out, owned by the caller (hqi_qmodel_destroy). `name` prefixes error
 * messages, which name the layer and key. */
hq_status_t hqi_qmodel_load(const hq_graph_t *graph, const hq_npz_t *qparams, const char *name,
                            hqi_qmodel_t **out, hq_error_t *err);
void hqi_qmodel_destroy(hqi_qmodel_t *model);

/* Layer types whose output is a copy (or a selection) of their input codes: they keep their
 * input's encoding whatever the decision says (the builder gives them the input's, the loader
 * insists on it). */
bool hqi_qmodel_keeps_encoding(hq_layer_type_t type);

#endif
