/* optimize_internal.h — the pieces of `hq optimize` (owned by the optimizer:
 * core/quant/optimize*.c, calibrate.c, precision.c, ranges.c, equalize.c, compression.c) and how
 * they talk to each other. Internal to libhq; the tests reach these hqi_ functions through
 * hq_static. */
#ifndef HQI_OPTIMIZE_INTERNAL_H
#define HQI_OPTIMIZE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "hq/archive.h"
#include "hq/dataset.h"
#include "hq/graph.h"
#include "hq/quantize.h"
#include "hq/script.h"
#include "hq/tensor.h"
#include "quant/quant.h"
#include "stats/stats.h"

/* ---- logging ------------------------------------------------------------------------------ */

/* Where the optimizer's progress and decisions go; fn may be NULL (silent). */
typedef struct hqi_logger {
    hq_log_fn fn;
    void *user;
} hqi_logger_t;

void hqi_logf(const hqi_logger_t *logger, hq_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- precision (precision.c) -------------------------------------------------------------- */

/* What the script asked for one layer; 0 = not asked. `line` is the script line (0: none). */
typedef struct hqi_precision_request {
    int in_bits;     /* 8 or 16 */
    int weight_bits; /* 4, 8 or 16 */
    int out_bits;    /* 8 or 16 (the mode's third part, else in_bits) */
    int line;
    char mode[16]; /* the mode as written */
} hqi_precision_request_t;

/* Parses "a{in}_w{w}[_a{out}]" (in, out: 8 or 16; w: 4, 8 or 16). HQ_ERR_INVALID otherwise. */
hq_status_t hqi_precision_parse(const char *mode, hqi_precision_request_t *out);
/* The canonical name of a mode: "a8_w8" when in == out, else "a8_w8_a16". For layers without
 * weights pass weight_bits 0: the name then uses the input width for w. */
void hqi_precision_name(int in_bits, int weight_bits, int out_bits, char name[16]);
/* True for layer types that output what they receive (DESIGN §5): their output width is their
 * input width and all their inputs share it. */
bool hqi_precision_passthrough(hq_layer_type_t type);
/* True for layers with a kernel (conv, dw, deconv, dense). */
bool hqi_layer_has_weights(hq_layer_type_t type);

/* Chooses input/weight/output bits of every layer of a finalized graph from the requests (one per
 * layer, indexed like the graph): defaults a8_w8, 16 bit spreads through pass-through layers and
 * across edges (a tensor has one width), each raised layer logged with the reason, and a script
 * whose requests contradict each other refused (HQ_ERR_INVALID) with the chain of layers named. */
hq_status_t hqi_precision_propagate(const hq_graph_t *graph,
                                    const hqi_precision_request_t *requests,
                                    hqi_layer_quant_t *decisions, const hqi_logger_t *logger,
                                    hq_error_t *err);

/* ---- calibration (calibrate.c) ------------------------------------------------------------ */

typedef struct hqi_calibration {
    int layer_count;
    hqi_stats_t *layers; /* indexed like the graph: a layer's output (all pieces of a splitter
                            together) and, for conv/dw/deconv/dense, its pre-activation */
    int64_t samples;     /* samples run */
} hqi_calibration_t;

/* Runs the fp-optimized float network once over samples [0, count) of `data` in batches of
 * `batch_size`, collecting every layer's statistics. Dataset inputs are matched to the graph's
 * inputs by `input_names` (one per dataset input, the layer names they fed when the dataset was
 * opened; NULL: in order). The caller owns *out (hqi_calibration_destroy). */
hq_status_t hqi_calibrate(const hq_graph_t *graph, const hq_npz_t *params, hq_dataset_t *data,
                          char *const *input_names, int64_t count, int64_t batch_size, int threads,
                          const hqi_logger_t *logger, hqi_calibration_t **out, hq_error_t *err);
void hqi_calibration_destroy(hqi_calibration_t *calibration);
/* Stores the statistics under "<layer>/stats/..." in `q` (keys in docs/quantizer.md). */
hq_status_t hqi_calibration_store(const hq_graph_t *graph, const hqi_calibration_t *calibration,
                                  hq_npz_t *q, hq_error_t *err);

/* ---- ranges (ranges.c) -------------------------------------------------------------------- */

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

/* True for layers whose output range is their input range (no rescaling in integer: they move
 * values without computing new ones). */
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

/* ---- compression (compression.c) ---------------------------------------------------------- */

/* Bytes of weight memory of an architecture in hq's model (docs/quantizer.md); HQ_ERR_NOT_FOUND
 * naming the known ones for an unknown name. */
hq_status_t hqi_arch_weight_memory(const char *hw_arch, int64_t *bytes, hq_error_t *err);
/* Share of weights at 4 bit for compression_level 0..5. */
double hqi_compression_level_ratio(int level);

typedef struct hqi_compression_result {
    double ratio_4bit; /* share of all weights now at 4 bit */
    int level;         /* effective level: 0..5, -1 implicit, -2 explicit ratio */
    int layers_4bit;
    int64_t weight_bytes; /* bytes of the weights at their final widths */
} hqi_compression_result_t;

/* Turns the largest 8-bit layers (without an explicit precision request: `locked`) to 4 bit:
 * `level` 0..5 or `ratio` in [0, 1] when given (ratio >= 0 wins), else, with neither, implicitly
 * just enough to fit `memory_bytes`. */
hq_status_t hqi_compression_choose(const hq_graph_t *graph, const bool *locked, int level,
                                   double ratio, int64_t memory_bytes, hqi_layer_quant_t *decisions,
                                   hqi_compression_result_t *result, const hqi_logger_t *logger,
                                   hq_error_t *err);

/* ---- float optimizations (equalize.c) ----------------------------------------------------- */

/* Folds standalone batch_norm layers into the conv/dw/dense before them (single consumer,
 * linear activation) in both param sets and removes them from the graph. *folded counts them. */
hq_status_t hqi_fold_batch_norms(hq_graph_t *graph, hq_npz_t *native, hq_npz_t *fpo, int *folded,
                                 const hqi_logger_t *logger, hq_error_t *err);
/* Cross-layer equalization of conv -> (relu) -> conv pairs in `fpo` (exact in float). *pairs
 * counts the equalized pairs. */
hq_status_t hqi_equalize(const hq_graph_t *graph, hq_npz_t *fpo, int *pairs,
                         const hqi_logger_t *logger, hq_error_t *err);

/* ---- bias correction (optimize_bias.c) ---------------------------------------------------- */

/* Subtracts, per output channel, the expected output error the weight quantization causes
 * (sum of dW * E[input channel]), from the biases of a copy of `fpo`. The caller owns *out. */
hq_status_t hqi_bias_correct(const hq_graph_t *graph, const hq_npz_t *fpo,
                             const hqi_calibration_t *calibration,
                             const hqi_layer_quant_t *decisions, hq_npz_t **out, int *corrected,
                             hq_error_t *err);

/* ---- small shared helpers ----------------------------------------------------------------- */

/* "<layer name>/<suffix>" key lookup in a params set; NULL when absent or not float32. */
const hq_tensor_t *hqi_param(const hq_npz_t *params, const hq_layer_t *layer, const char *suffix);
/* Writable float32 tensor of a layer (a float16/64 tensor is converted in place first). */
hq_status_t hqi_param_f32(hq_npz_t *params, const hq_layer_t *layer, const char *suffix,
                          hq_tensor_t **out, hq_error_t *err);
/* Stores a float32 / int32 / int64 vector under "<layer>/<suffix>" (or "<net>/<suffix>" when
 * layer is NULL, with net given). */
hq_status_t hqi_put_f32(hq_npz_t *npz, const char *prefix, const char *suffix, const float *v,
                        int64_t n, hq_error_t *err);
hq_status_t hqi_put_i32(hq_npz_t *npz, const char *prefix, const char *suffix, const int32_t *v,
                        int64_t n, hq_error_t *err);
hq_status_t hqi_put_i64(hq_npz_t *npz, const char *prefix, const char *suffix, const int64_t *v,
                        int64_t n, hq_error_t *err);

/* ---- the driver (optimize.c) -------------------------------------------------------------- */

/* Settings the script's configuration commands give (defaults in hqi_optimize_config_defaults). */
typedef struct hqi_optimize_config {
    int64_t batch_size;     /* model_optimization_config(calibration, batch_size=8) */
    int64_t calibset_size;  /* ... calibset_size=64 */
    int optimization_level; /* model_optimization_flavor(optimization_level=2) */
    int compression_level;  /* -1: not given */
    double auto_4bit_ratio; /* -1: not given */
    int equalization;       /* -1: from the level, 0 disabled, 1 enabled */
    int bias_correction;    /* -1: from the level, 0 disabled, 1 enabled */
} hqi_optimize_config_t;

void hqi_optimize_config_defaults(hqi_optimize_config_t *cfg);

/* What a run decided, for tests and callers that want more than the archive. */
typedef struct hqi_optimize_result {
    int layer_count;
    hqi_layer_quant_t *decisions; /* indexed like the archive's new graph */
    hqi_calibration_t *calibration;
    hqi_compression_result_t compression;
    int equalized_pairs;
    int folded_batch_norms;
    int bias_corrected;
} hqi_optimize_result_t;

void hqi_optimize_result_free(hqi_optimize_result_t *result);

/* hq_optimize without the noise analysis. With build_integer false the integer builder is not
 * called: q.npz holds only statistics and the archive ends in state fp_optimized_model (used by
 * tests of the float half). `result` may be NULL; the caller frees it. */
hq_status_t hqi_optimize_run(hq_archive_t *archive, const hq_script_t *script, hq_dataset_t *calib,
                             const hq_optimize_options_t *options, bool build_integer,
                             hqi_optimize_result_t *result, hq_error_t *err);

#endif
