/* optimize_bias.h — bias correction (optimize_bias.c). Internal to libhq; prefix hqi_. */
#ifndef HQI_OPTIMIZE_BIAS_H
#define HQI_OPTIMIZE_BIAS_H

#include "hq/graph.h"
#include "hq/tensor.h"
#include "quant/calibrate.h"
#include "numerics/qmodel.h"

/* Subtracts, per output channel, the expected output error the weight quantization causes
 * (sum of dW * E[input channel]), from the biases of a copy of `fpo`. The caller owns *out. */
hq_status_t hqi_bias_correct(const hq_graph_t *graph, const hq_npz_t *fpo,
                             const hqi_calibration_t *calibration,
                             const hqi_layer_quant_t *decisions, hq_npz_t **out, int *corrected,
                             hq_error_t *err);

/* The iterative form, on integer params `q` built for `graph`: in topological order, for every
 * conv, dw and dense layer with an integer bias, the quantized network (every earlier layer already
 * corrected) runs over samples [0, count) of `data` in batches of `batch_size`; the per-channel
 * mean of the layer's dequantized output minus the fp_optimized mean the calibration saw
 * (`calibration`, the same samples) is subtracted from bias:0 in accumulator units,
 * round(error / (s_in * kernel_scale)), saturated to +-2^62. Only bias:0 tensors of `q` change.
 * Dataset inputs are matched by `input_names` as in hqi_calibrate; `threads` as the emulator's.
 * When the codes of the layer outputs alive at once, for all `count` samples, fit in
 * `cache_limit` bytes (0: HQI_BIAS_CACHE_BYTES), every layer runs once on the codes its producers
 * left; otherwise (or with a negative limit) the network runs in full over the samples before
 * each corrected layer. Both give the same params, byte for byte. */
#define HQI_BIAS_CACHE_BYTES ((int64_t)1 << 30)
hq_status_t hqi_bias_correct_iterative(const hq_graph_t *graph, const hqi_calibration_t *calibration,
                                       hq_npz_t *q, hq_dataset_t *data, char *const *input_names,
                                       int64_t count, int64_t batch_size, int threads,
                                       int64_t cache_limit, int *corrected, hq_error_t *err);

#endif
