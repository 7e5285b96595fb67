/* compression.h — which layers get 4-bit weights (compression.c). Internal to libhq; prefix hqi_. */
#ifndef HQI_COMPRESSION_H
#define HQI_COMPRESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "hq/graph.h"
#include "numerics/qmodel.h"
#include "quant/quant_util.h"

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

#endif
