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

#endif
