/* calibrate.h — the calibration pass (calibrate.c): per-layer output and pre-activation statistics
 * of the float network over the calibration set, and their keys in q.npz. Internal to libhq;
 * prefix hqi_. */
#ifndef HQI_CALIBRATE_H
#define HQI_CALIBRATE_H

#include <stdbool.h>
#include <stdint.h>

#include "hq/dataset.h"
#include "hq/graph.h"
#include "hq/tensor.h"
#include "quant/quant_util.h"
#include "stats/stats.h"

typedef struct hqi_calibration {
    int layer_count;
    hqi_stats_t *layers; /* indexed like the graph: a layer's output (all pieces of a splitter
                            together) and, for conv/dw/deconv/dense, its pre-activation */
    int64_t samples;     /* samples run */
} hqi_calibration_t;

/* Runs the fp-optimized float network once over samples [0, count) of `data` in batches of
 * `batch_size`, collecting every layer's statistics. Dataset inputs are matched to the graph's
 * inputs by `input_names` (one per dataset input, the layer names they fed when the dataset was
 * opened; NULL: in order). `progress` (may be NULL) hears "calibration" after every batch. The
 * caller owns *out (hqi_calibration_destroy). */
hq_status_t hqi_calibrate(const hq_graph_t *graph, const hq_npz_t *params, hq_dataset_t *data,
                          char *const *input_names, int64_t count, int64_t batch_size, int threads,
                          const hqi_logger_t *logger, hq_progress_fn progress, void *progress_user,
                          hqi_calibration_t **out, hq_error_t *err);
/* Which dataset input feeds each input of `graph` (hq_graph_inputs order) into source[], matched
 * by `input_names` as hqi_calibrate matches them. HQ_ERR_NOT_FOUND names an input without data. */
hq_status_t hqi_calibration_sources(const hq_graph_t *graph, hq_dataset_t *data,
                                    char *const *input_names, int *source, hq_error_t *err);
void hqi_calibration_destroy(hqi_calibration_t *calibration);
/* Stores the statistics under "<layer>/stats/..." in `q` (keys in docs/quantizer.md). */
hq_status_t hqi_calibration_store(const hq_graph_t *graph, const hqi_calibration_t *calibration,
                                  hq_npz_t *q, hq_error_t *err);

#endif
