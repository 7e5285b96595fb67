/* quantize.h — the quantizer (`hq optimize`) and noise analysis (`hq analyze-noise`).
 *
 * hq_optimize turns a parsed archive into a quantized one, in place: it applies the model script's
 * model-modification commands, runs the float optimizations (fp_optimized params), calibrates over a
 * dataset in one streaming pass, chooses per-layer precision and ranges, and writes the integer
 * params (`<net>.q.npz`, keys in hq-har(5)) and state `quantized_model`. The numerics of the integer
 * model are in docs/numerics.md. */
#ifndef HQ_QUANTIZE_H
#define HQ_QUANTIZE_H

#include <stdint.h>

#include "hq/archive.h"
#include "hq/common.h"
#include "hq/dataset.h"
#include "hq/script.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Severity of a quantizer log line. */
typedef enum hq_log_level {
    HQ_LOG_DEBUG = 0,
    HQ_LOG_INFO,
    HQ_LOG_WARNING,
    HQ_LOG_ERROR,
} hq_log_level_t;

/* Receives the quantizer's progress and decisions ("conv3 raised to a16_w16: feeds concat1 ...",
 * "command X not applied"). `message` is valid only during the call. */
typedef void (*hq_log_fn)(void *user, hq_log_level_t level, const char *message);

typedef struct hq_optimize_options {
    const char *hw_arch;      /* NULL: the archive's hw_arch */
    int64_t calibset_size;    /* 0: the script's calibset_size (default 64); clipped to the dataset */
    int64_t batch_size;       /* 0: the script's batch_size (default 8) */
    int threads;              /* 0: default (HQ_THREADS or available cores) */
    hq_log_fn log;            /* may be NULL */
    void *log_user;
    const char *script_name;  /* file name of the script, for messages (NULL: "model script") */
    hq_progress_fn progress;  /* calibration and noise analysis report here; may be NULL */
    void *progress_user;
    int no_noise_analysis;    /* hq_optimize only: non-zero skips the closing simple noise
                                 analysis (the archive then has no layer_noise_analysis keys) */
} hq_optimize_options_t;

/* Quantizes `archive` in place. `script` is the model script to apply (NULL: the archive's own);
 * the archive keeps a copy of the full script used. `calib` is the calibration dataset (matched to
 * the graph's inputs). `options` may be NULL (all defaults). On failure the archive may hold partial
 * results and must not be saved. */
HQ_API hq_status_t hq_optimize(hq_archive_t *archive, const hq_script_t *script,
                               hq_dataset_t *calib, const hq_optimize_options_t *options,
                               hq_error_t *err);

typedef enum hq_noise_mode {
    HQ_NOISE_SIMPLE = 0,   /* cumulative per-layer SQNR: everything quantized ("snr") */
    HQ_NOISE_ADVANCED,     /* plus, per layer, SQNR at the outputs when only it is quantized
                              ("partial_snr") */
} hq_noise_mode_t;

/* Runs the noise analysis of a quantized archive over the first `count` samples of `data`
 * (count <= 0: all) and stores the results in the archive's quantized params
 * (`<net>/<layer>/layer_noise_analysis/snr:0`, `.../partial_snr:0`). */
HQ_API hq_status_t hq_analyze_noise(hq_archive_t *archive, hq_dataset_t *data, int64_t count,
                                    hq_noise_mode_t mode, const hq_optimize_options_t *options,
                                    hq_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
