/* quant.h — the contract between the quantizer's decisions (core/quant/optimize*.c) and the integer
 * parameter builder (core/quant/qparams.c): what the optimizer decides per layer, and what the
 * builder turns into `<net>.q.npz`. Internal to libhq. */
#ifndef HQI_QUANT_H
#define HQI_QUANT_H

#include <stdbool.h>
#include <stdint.h>

#include "hq/common.h"
#include "hq/graph.h"
#include "hq/tensor.h"

/* One layer's quantization decisions, indexed like the graph's layers. */
typedef struct hqi_layer_quant {
    int input_bits;          /* 8 or 16: bits of the activations the layer reads */
    int weight_bits;         /* 0 for layers without weights; else 4, 8 or 16 */
    int output_bits;         /* 8 or 16: bits of the activations the layer writes */
    float out_min, out_max;  /* float range of the output (always contains 0), after clipping and
                                forced ranges; concat inputs already share the concat's range */
    float weight_clip;       /* > 0: clip |w| to this before quantizing (weights_clipping); 0: none */
} hqi_layer_quant_t;

/* Builds the integer params of a quantized model from the graph, its fp-optimized float params and
 * one decision per layer, into a new npz the caller owns (keys documented in man/hq-har.5 and
 * docs/numerics.md). Fails naming the layer when a decision is inconsistent (e.g. a concat whose
 * inputs have different ranges). */
hq_status_t hqi_quant_build_params(const hq_graph_t *graph, const hq_npz_t *fpo_params,
                                   const hqi_layer_quant_t *decisions, hq_npz_t **out,
                                   hq_error_t *err);

#endif
