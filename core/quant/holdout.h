/* holdout.h — the samples the optimizer measures its gains on, and the probe that measures them
 * (holdout.c). Internal to libhq; prefix hqi_. */
#ifndef HQI_QUANT_HOLDOUT_H
#define HQI_QUANT_HOLDOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "hq/dataset.h"
#include "hq/graph.h"
#include "hq/tensor.h"

/* Most samples the gains are measured on. */
#define HQI_HOLDOUT_MAX 16

/* Which samples of a dataset measure an algorithm's gain. */
typedef struct hqi_holdout {
    int64_t first, count; /* samples [first, first + count) */
    bool on_calibration;  /* no sample beyond the calibration set: these are calibration samples */
    int64_t usable;       /* samples the algorithms may train on: [0, usable), the held-back ones
                             excluded */
} hqi_holdout_t;

/* The split of `available` samples when calibration takes [0, calibset): the last
 * min(`most`, available - calibset) samples of the dataset are held back when the dataset has
 * more than calibset samples; else the first min(`most`, available) calibration samples are used
 * (on_calibration). calibset is taken as at most `available`; most >= 1. */
hqi_holdout_t hqi_holdout_split(int64_t available, int64_t calibset, int64_t most);

/* The samples an algorithm that wants `wanted` images trains on: [0, min(wanted, usable)), so
 * never a held-back one; fewer than wanted when the dataset is short (the caller says so). */
int64_t hqi_holdout_images(const hqi_holdout_t *split, int64_t wanted);

/* The output SQNR of quantized params against the fp_optimized network on fixed samples. */
typedef struct hqi_sqnr_probe hqi_sqnr_probe_t;

/* Runs the fp_optimized network (`graph`, `fpo`) once over the samples of `split` in batches of
 * at most `batch_size` and keeps its outputs. Dataset inputs are matched by `input_names` as in
 * hqi_calibrate; `threads` as the emulator's (0: default). `graph` is borrowed and must outlive
 * the probe. The caller owns *out (hqi_sqnr_probe_destroy). */
hq_status_t hqi_sqnr_probe_create(const hq_graph_t *graph, const hq_npz_t *fpo, hq_dataset_t *data,
                                  char *const *input_names, const hqi_holdout_t *split,
                                  int64_t batch_size, int threads, hqi_sqnr_probe_t **out,
                                  hq_error_t *err);
/* Runs the quantized network of integer params `q` over the probe's samples and gives the output
 * SQNR in dB (hqi_noise_db of each model output over all its values and samples, the lowest over
 * the outputs): what `hq compare` of the two emulations reports for that output. */
hq_status_t hqi_sqnr_probe_measure(hqi_sqnr_probe_t *probe, const hq_npz_t *q, double *db,
                                   hq_error_t *err);
void hqi_sqnr_probe_destroy(hqi_sqnr_probe_t *probe);

#endif
