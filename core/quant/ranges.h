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
    HQI_CLIP_MMSE,       /* the clip with the least expected quantization MSE */
    HQI_CLIP_MMSE_IF4B,  /* weights only: HQI_CLIP_MMSE on layers with 4-bit weights */
} hqi_clip_mode_t;

/* Range requests of one layer from the script. */
typedef struct hqi_range_request {
    bool force_out; /* quantization_param(L, force_range_out=[lo, hi]) */
    float force_lo, force_hi;
    hqi_clip_mode_t clip; /* pre_quantization_optimization(activation_clipping, ...) */
    double clip_a, clip_b;
    hqi_clip_mode_t weight_clip; /* weights_clipping: manual (|w| <= max(|a|,|b|)), percentile
                                    (of |w| in the layer, clip_b or clip_a when one value), mmse
                                    (per output channel), mmse_if4b */
    double weight_a, weight_b;
    bool weight_clip_default; /* weight_clip is hq's default (no weights_clipping line names the
                                 layer): the optimizer may drop it after measuring */
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
/* weight_clip (or weight_clip_channels) of every decision from the weights_clipping requests
 * and the fp params; weight_bits must be decided. The per-channel searches (mmse, mmse_if4b)
 * share the output channels out over `threads` threads (0: the default count); the result does
 * not depend on it. The per-channel arrays are the decisions' own: free them with
 * hqi_weight_clip_free. */
hq_status_t hqi_weight_clip_compute(const hq_graph_t *graph, const hq_npz_t *params,
                                    const hqi_range_request_t *requests,
                                    hqi_layer_quant_t *decisions, int threads, hq_error_t *err);
/* Frees the weight_clip_channels of `count` decisions and sets them to NULL. Accepts NULL. */
void hqi_weight_clip_free(hqi_layer_quant_t *decisions, int count);

/* Activation clipping by least expected MSE, from the working histogram of `stats` (fine bins of
 * width w over [fine_lo, fine_hi], each bin's values taken at its centre): over the bin edges
 * lo <= 0 <= hi between the edge at or below the observed min and the edge at or above the
 * observed max, the pair minimising
 *     sum over bins below lo of count * (centre - lo)^2 + the same above hi
 *     + (values inside) * step^2 / 12,   step = (hi - lo) / (2^bits - 1).
 * The chosen edges are then brought inside the observed [min, max] (so no clipping gives exactly
 * the observed range) and made to contain 0. [0, 0] before any value. */
void hqi_clip_mmse_activation(const hqi_stats_t *stats, int bits, double *lo, double *hi);
/* The expected MSE (the sum above, not divided by the count) of quantizing the histogram of
 * `stats` over [lo, hi] at `bits`, lo and hi being bin edges. */
double hqi_clip_activation_error(const hqi_stats_t *stats, int bits, double lo, double hi);

/* Fractions of a channel's max |w| the weight mmse search tries: k / HQI_WEIGHT_CLIP_STEPS for
 * k = 1 .. HQI_WEIGHT_CLIP_STEPS (the last is no clipping). */
#define HQI_WEIGHT_CLIP_STEPS 200
/* The sum of (w - q(w))^2 over `count` weights w[k * stride] with the builder's symmetric
 * quantizer at `bits` (scale = float32(clip / (2^(bits-1) - 1)), |w| clipped to `clip`, rounding
 * half away from zero). 0 when clip <= 0. */
double hqi_weight_clip_error(const float *w, int64_t count, int64_t stride, int bits, double clip);
/* The clip of one channel (w[k * stride], k < count) with the least hqi_weight_clip_error over
 * the fractions of max |w| above; max |w| itself when nothing clips better (ties keep the larger
 * clip). */
double hqi_weight_clip_mmse(const float *w, int64_t count, int64_t stride, int bits);

/* The pre-activation range a lookup-table activation needs: the observed [pre_min, pre_max]
 * narrowed to where the activation's output is more than a quarter output step inside the output
 * range (sigmoid, tanh, hardsigmoid, exp saturate; hardswish is 0 below -3; silu and gelu are
 * within a quarter step of 0 far left), so the pre-activation codes are not spent on inputs that give the
 * same output. Exact for the integer output: inputs cut off all round to the same output code. */
void hqi_lut_pre_range(hq_activation_t act, float alpha, float beta, double pre_min, double pre_max,
                       double out_min, double out_max, int out_bits, double *lo, double *hi);

#endif
