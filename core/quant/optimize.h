/* optimize.h — the driver of `hq optimize` (optimize.c): one run from a parsed archive to a
 * quantized one, and what it decided. Internal to libhq; the tests reach these hqi_ functions
 * through hq_static. */
#ifndef HQI_OPTIMIZE_H
#define HQI_OPTIMIZE_H

#include <stdbool.h>

#include "hq/archive.h"
#include "hq/dataset.h"
#include "hq/quantize.h"
#include "hq/script.h"
#include "quant/calibrate.h"
#include "quant/compression.h"
#include "numerics/qmodel.h"

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
