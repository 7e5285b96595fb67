/* stats.h — the one streaming statistics engine of libhq, used by calibration (core/quant,
 * `hq optimize`) and by hq-diag's statistics pass (core/diag). Prefix hqi_stats_. Internal to
 * libhq.
 *
 * An accumulator (hqi_stats_t) takes one layer output batch after batch, as an emulator tap
 * hands it over, and keeps: the observed range, a working histogram from which the reported
 * 100-bin histogram and percentiles are read, per-channel moments (per sample over H*W, summed
 * over samples) and the same moments plus the range of the pre-activation. Nothing keeps the
 * values themselves. Both users bin alike, so the histogram hq-diag shows for a layer is the one
 * calibration stores in the archive when both see the same samples in the same batches.
 *
 * Pre-activation taps: an emulator reports each layer's output after its fused activation, so
 * hqi_stats_split_activations() clones the graph with the activation of every conv, dw, deconv
 * and dense layer split off into an appended `activation` layer; the layer's tap then sees the
 * pre-activation and the appended layer's tap is the layer's output. */
#ifndef HQI_STATS_H
#define HQI_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "hq/common.h"
#include "hq/graph.h"

#define HQI_STATS_BINS 100       /* bins of a reported histogram (q.npz, hq_layer_stats_t) */
#define HQI_STATS_FINE_BINS 8000 /* bins of the working histogram (a multiple of HQI_STATS_BINS) */

/* Statistics of one layer output over the samples seen so far. Fields are read directly; only
 * the functions below change them. */
typedef struct hqi_stats {
    /* values */
    bool seen;               /* at least one finite value arrived */
    double min, max;         /* observed range of the finite values (0, 0 until seen) */
    int64_t count;           /* finite values counted */
    int64_t nonfinite;       /* NaN/inf values left out */
    double sum, sumsq;       /* of the finite values (each batch summed, then added) */
    double fine_lo, fine_hi; /* range of the working histogram: the first batch's range with 0,
                                doubled towards the side that overflowed as values arrive */
    int64_t *fine;           /* [HQI_STATS_FINE_BINS] counts of the working histogram */
    /* per-channel moments of the output: per sample over the H*W positions, summed over samples;
       a non-finite value counts as 0 */
    int channels;            /* C: the last extent of the output */
    int64_t samples;         /* per-sample rows added to the sums below */
    double *channel_mean_sum; /* [channels] */
    double *channel_var_sum;  /* [channels] */
    /* pre-activation (only when created with `preact`): the same moments, two-pass variance; a
       (sample, channel) whose mean or variance is not finite is left out */
    bool has_preact;
    int64_t preact_samples;        /* per-sample rows added */
    int64_t preact_spatial;        /* H*W of the last batch (1: std is the spread across samples) */
    double *preact_mean_sum;       /* [channels] sums of per-sample means */
    double *preact_var_sum;        /* [channels] sums of per-sample variances */
    double *preact_sq_sum;         /* [channels] sums of squared per-sample means */
    double preact_min, preact_max; /* observed range (valid when preact_samples) */
    double *scratch;               /* [2 * channels] per-sample sums of one batch */
} hqi_stats_t;

/* Prepares an empty accumulator for an output of `channels` channels (the last extent; 1 for a
 * 1-D output), with pre-activation sums when `preact`. HQ_ERR_NOMEM naming `where`. Free with
 * hqi_stats_free (also after a failure). */
hq_status_t hqi_stats_init(hqi_stats_t *stats, int channels, bool preact, const char *where,
                           hq_error_t *err);
/* Frees the accumulator's arrays and zeroes it. Accepts NULL. */
void hqi_stats_free(hqi_stats_t *stats);

/* Adds one batch of the output: `shape` has dims[0] = batch, `values` are dense NHWC. Range,
 * working histogram, sum and per-channel moments. */
void hqi_stats_add_output(hqi_stats_t *stats, const hq_shape_t *shape, const float *values);
/* Adds one batch of the pre-activation (no-op without pre-activation sums). */
void hqi_stats_add_preact(hqi_stats_t *stats, const hq_shape_t *shape, const float *values);
/* Grows the working histogram until it covers [lo, hi]: the range doubles towards the side that
 * overflowed and pairs of bins merge, so every count is kept. hqi_stats_add_output calls it
 * whatever the instruction set (it is not one of stats_isa.h's loops). The range must already
 * be set (by the first finite value): an empty one cannot double. */
void hqi_stats_grow(hqi_stats_t *stats, double lo, double hi);

/* The reported histogram: HQI_STATS_BINS bins over [*lo, *hi] = [min(min, 0), max(max, 0)],
 * bin i covering [lo + i*w, lo + (i+1)*w), the last closed. Re-binned from the working
 * histogram: exact when its range never grew, else a working bin that straddles reported bins
 * is shared in proportion to the overlap, the shares rounded by largest remainder so that the
 * total is `count`. `lo` and `hi` may be NULL. All zero before any value. */
void hqi_stats_histogram(const hqi_stats_t *stats, int64_t hist[HQI_STATS_BINS], double *lo,
                         double *hi);
/* The value below which `percent` % of the values lie (numpy's "linear" rule, read from the
 * working histogram with each bin's counts spread evenly over it). 0 before any value. */
double hqi_stats_percentile(const hqi_stats_t *stats, double percent);

/* Per-channel output moments averaged over `samples`: mean, and std = sqrt of the mean
 * per-sample variance. `mean` and `std` (either may be NULL) have `channels` entries. */
void hqi_stats_channel_moments(const hqi_stats_t *stats, int64_t samples, float *mean,
                               float *std);

/* How a pre-activation std is read from the sums. */
typedef enum hqi_stats_spread {
    HQI_STATS_SPREAD_PER_SAMPLE = 0, /* sqrt of the mean per-sample variance, always (hq-diag's
                                        hq_layer_stats_t: 0 where H*W = 1) */
    HQI_STATS_SPREAD_STORED,         /* the same, except where H*W = 1 (dense, after a global
                                        pool): the spread of the values across samples (q.npz) */
} hqi_stats_spread_t;
/* Per-channel pre-activation mean and std averaged over the pre-activation samples. `mean` and
 * `std` have `channels` entries. */
void hqi_stats_preact_moments(const hqi_stats_t *stats, hqi_stats_spread_t spread, float *mean,
                              float *std);

/* ---- pre-activation taps (split.c) -------------------------------------------------------- */

/* Does a layer of this type have a pre-activation (a fused activation after its own arithmetic):
 * conv, dw, deconv, dense. */
bool hqi_stats_has_preact(hq_layer_type_t type);

/* A clone of a graph for a statistics pass: every conv/dw/deconv/dense with a non-linear
 * activation other than prelu, that has a consumer, has its activation moved into an appended
 * `activation` layer (original indices unchanged). A prelu stays fused: the emulator binds its
 * slopes by the layer's own name (`<layer>/prelu_slope:0`) and taps after the fused activation,
 * so that layer's pre-activation moments are taken from its output, as for a linear one. */
typedef struct hqi_stats_split {
    hq_graph_t *graph;  /* the clone, finalized; owned */
    int original_count; /* layers of the original graph */
    int *origin;        /* [layers of graph] the original layer whose output a tap reports */
    bool *split;        /* [original_count] the layer's activation was split off */
} hqi_stats_split_t;

/* Builds the clone. On failure *split is empty (hqi_stats_split_free is still safe). */
hq_status_t hqi_stats_split_activations(const hq_graph_t *graph, hqi_stats_split_t *split,
                                        hq_error_t *err);
void hqi_stats_split_free(hqi_stats_split_t *split);

#define HQI_STATS_TAP_OUTPUT 1u /* the tap is the original layer's output */
#define HQI_STATS_TAP_PREACT 2u /* the tap is the original layer's pre-activation */
/* What the tap of layer `layer` of split->graph reports (HQI_STATS_TAP_* bits; 0: nothing), and
 * in *original the layer of the original graph it belongs to. */
unsigned hqi_stats_tap_kind(const hqi_stats_split_t *split, int layer, int *original);

#endif
