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

#define HQI_HIST_BINS 100  /* bins of the stored histogram (q.npz) */
#define HQI_FINE_BINS 8000 /* bins of the working histogram (a multiple of HQI_HIST_BINS) */

/* Statistics of one layer's output (all pieces of a splitter together) over the calibration set. */
typedef struct hqi_layer_stats {
    bool seen;               /* the layer ran at least once */
    double min, max;         /* observed output range (finite values only) */
    int64_t count;           /* values counted */
    int64_t nonfinite;       /* NaN/inf values skipped */
    double fine_lo, fine_hi; /* range of the working histogram (grows by doubling) */
    int64_t *fine;           /* HQI_FINE_BINS counts */
    int channels;            /* last extent of the output */
    double *channel_mean;    /* [channels] per-channel output mean (sum of per-sample means
                                while running, the average after hqi_calibrate) */
    bool has_preact;         /* conv, dw, deconv, dense */
    int64_t preact_samples;
    int64_t preact_spatial;        /* H*W of the pre-activation (1: moments taken across samples) */
    double *preact_mean_sum;       /* [channels] sums of per-sample means */
    double *preact_var_sum;        /* [channels] sums of per-sample variances */
    double *preact_sq_sum;         /* [channels] sums of squared per-sample means */
    double preact_min, preact_max; /* observed pre-activation range (valid when preact_samples) */
} hqi_layer_stats_t;

typedef struct hqi_calibration {
    int layer_count;
    hqi_layer_stats_t *layers; /* indexed like the graph */
    int64_t samples;           /* samples run */
} hqi_calibration_t;

/* Runs the fp-optimized float network once over samples [0, count) of `data` in batches of
 * `batch_size`, collecting every layer's statistics. Dataset inputs are matched to the graph's
 * inputs by `input_names` (one per dataset input, the layer names they fed when the dataset was
 * opened; NULL: in order). The caller owns *out (hqi_calibration_destroy). */
hq_status_t hqi_calibrate(const hq_graph_t *graph, const hq_npz_t *params, hq_dataset_t *data,
                          char *const *input_names, int64_t count, int64_t batch_size, int threads,
                          const hqi_logger_t *logger, hqi_calibration_t **out, hq_error_t *err);
void hqi_calibration_destroy(hqi_calibration_t *calibration);
/* The final 100-bin histogram of a layer over [min(min,0), max(max,0)]. */
void hqi_stats_histogram(const hqi_layer_stats_t *stats, int64_t hist[HQI_HIST_BINS]);
/* The value below which `percent` % of the layer's output values lie (interpolated within a
 * working-histogram bin). */
double hqi_stats_percentile(const hqi_layer_stats_t *stats, double percent);
/* Per-channel pre-activation mean and std (per-sample moments averaged; see docs/quantizer.md).
 * `mean` and `std` have stats->channels entries. */
void hqi_stats_preact(const hqi_layer_stats_t *stats, float *mean, float *std);
/* Stores the statistics under "<layer>/stats/..." in `q` (keys in docs/quantizer.md). */
hq_status_t hqi_calibration_store(const hq_graph_t *graph, const hqi_calibration_t *calibration,
                                  hq_npz_t *q, hq_error_t *err);

#endif
