/* equalize.h — the float optimizations (equalize.c): batch-norm folding and cross-layer
 * equalization. Internal to libhq; prefix hqi_. */
#ifndef HQI_EQUALIZE_H
#define HQI_EQUALIZE_H

#include "hq/graph.h"
#include "hq/tensor.h"
#include "quant/quant_util.h"

/* Folds standalone batch_norm layers into the conv/dw/dense before them (single consumer,
 * linear activation) in both param sets and removes them from the graph. *folded counts them. */
hq_status_t hqi_fold_batch_norms(hq_graph_t *graph, hq_npz_t *native, hq_npz_t *fpo, int *folded,
                                 const hqi_logger_t *logger, hq_error_t *err);
/* Cross-layer equalization of conv -> (relu) -> conv pairs in `fpo` (exact in float). *pairs
 * counts the equalized pairs. */
hq_status_t hqi_equalize(const hq_graph_t *graph, hq_npz_t *fpo, int *pairs,
                         const hqi_logger_t *logger, hq_error_t *err);

#endif
