/* ranges.h — output ranges, activation and weight clipping, and lookup-table pre-activation
 * ranges (ranges.c). Internal to libhq; prefix hqi_. */
#ifndef HQI_RANGES_H
#define HQI_RANGES_H

#include <stdbool.h>

#include "hq/graph.h"
#include "hq/tensor.h"
#include "quant/calibrate.h"
#include "numerics/qmodel.h"
#include "quant/quant_util.h"

typedef enum hqi_clip_mode {
    HQI_CLIP_NONE = 0,
    HQI_CLIP_MANUAL,     /* clip to [a, b] */
    HQI_CLIP_PERCENTILE, /* clip to the [a, b] percentiles */
} hqi_clip_mode_t;

/* Range requests of one layer from the script. */
typedef struct hqi_range_request {
    bool force_out; /* quantization_param(L, force_range_out=[lo, hi]) */
    float force_lo, force_hi;
    hqi_clip_mode_t clip; /* pre_quantization_optimization(activation_clipping, ...) */
    double clip_a, clip_b;
    hqi_clip_mode_t weight_clip; /* weights_clipping: manual (|w| <= max(|a|,|b|)) or percentile
                                    (of |w|, clip_b or clip_a when one value) */
    double weight_a, weight_b;
} hqi_range_request_t;

/* True for layers whose output shares one calibrated range with their inputs: the layer type's
 * range_preserving trait, and a resize whose method is nearest. */
bool hqi_range_preserving(const hq_layer_t *layer);

/* Fills out_min/out_max of every decision: observed min/max (or clipped / forced), always
 * containing 0; the inputs and output of every concat (and the layers that preserve ranges
 * between them) share one range, the union. */
hq_status_t hqi_ranges_compute(const hq_graph_t *graph, const hqi_calibration_t *calibration,
                               const hqi_range_request_t *requests, hqi_layer_quant_t *decisions,
                               const hqi_logger_t *logger, hq_error_t *err);
/* weight_clip of every decision from the weights_clipping requests and the fp params. */
hq_status_t hqi_weight_clip_compute(const hq_graph_t *graph, const hq_npz_t *params,
                                    const hqi_range_request_t *requests,
                                    hqi_layer_quant_t *decisions, hq_error_t *err);

/* The pre-activation range a lookup-table activation needs: the observed [pre_min, pre_max]
 * narrowed to where the activation's output is more than a quarter output step inside the output
 * range (sigmoid, tanh, hardsigmoid, exp saturate; hardswish is 0 below -3; silu is within a
 * quarter step of 0 far left), so the pre-activation codes are not spent on inputs that give the
 * same output. Exact for the integer output: inputs cut off all round to the same output code. */
void hqi_lut_pre_range(hq_activation_t act, float alpha, float beta, double pre_min, double pre_max,
                       double out_min, double out_max, int out_bits, double *lo, double *hi);

#endif
