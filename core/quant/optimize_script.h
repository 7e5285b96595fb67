/* optimize_script.h — the model script as `hq optimize` reads it (optimize_script.c): the
 * model-modification commands, the configuration commands and the per-layer precision and range
 * requests. Internal to libhq; prefix hqi_. */
#ifndef HQI_OPTIMIZE_SCRIPT_H
#define HQI_OPTIMIZE_SCRIPT_H

#include <stdbool.h>
#include <stdint.h>

#include "hq/graph.h"
#include "hq/script.h"
#include "hq/tensor.h"
#include "quant/adaround.h"
#include "quant/finetune.h"
#include "quant/precision.h"
#include "quant/quant_util.h"
#include "quant/ranges.h"

/* The optimization algorithms of optimization levels, in the order they run (optimize.c's level
 * table has one row each); their names are the first word of pre_quantization_optimization or
 * post_quantization_optimization. */
typedef enum hqi_algorithm {
    HQI_ALGORITHM_EQUALIZATION,
    HQI_ALGORITHM_FINETUNE,
    HQI_ALGORITHM_ADAROUND,
    HQI_ALGORITHM_BIAS_CORRECTION,
    HQI_ALGORITHM_COUNT
} hqi_algorithm_t;

/* "equalization", "finetune", ... (static strings), indexed by hqi_algorithm_t. */
extern const char *const hqi_algorithm_names[HQI_ALGORITHM_COUNT];

enum { HQI_BIAS_ANALYTIC = 0, HQI_BIAS_ITERATIVE = 1 };

/* Settings the script's configuration commands give (defaults in hqi_optimize_config_defaults). */
typedef struct hqi_optimize_config {
    int64_t batch_size;     /* model_optimization_config(calibration, batch_size=8) */
    int64_t calibset_size;  /* ... calibset_size=64 */
    int optimization_level; /* model_optimization_flavor(optimization_level=2) */
    int optimization_level_line; /* the script line that set it; 0: the default */
    int compression_level;  /* -1: not given */
    double auto_4bit_ratio; /* -1: not given */
    int policy[HQI_ALGORITHM_COUNT]; /* per algorithm, the script's policy=: -1 not given (the
                                        level decides), 0 disabled, 1 enabled */
    int bias_mode;          /* bias_correction mode=: -1 not given (the level decides),
                               HQI_BIAS_ANALYTIC or HQI_BIAS_ITERATIVE */
    hqi_adaround_config_t adaround; /* post_quantization_optimization(adaround, ...) keys */
    hqi_finetune_config_t finetune; /* post_quantization_optimization(finetune, ...) keys */
} hqi_optimize_config_t;

void hqi_optimize_config_defaults(hqi_optimize_config_t *cfg);

/* What one run works on: the copies the script's commands edit, what they configured and what
 * they reported. graph, native and fpo belong to the run (hqi_optimize_work_clear leaves them);
 * `noted` belongs to the work. */
typedef struct hqi_optimize_work {
    const char *script_name; /* names the script in messages */
    hqi_logger_t log;
    hq_graph_t *graph; /* working copy, handed to the archive at the end */
    hq_npz_t *native;  /* working copy */
    hq_npz_t *fpo;
    hqi_optimize_config_t cfg;
    char **noted; /* command names already reported "not applied" */
    int noted_count;
    int applied, not_applied; /* commands, for the summary line */
} hqi_optimize_work_t;

/* The commands that change the graph (normalization, input_conversion bgr_to_rgb,
 * change_output_activation) or configure the run, in script order. The graph is finalized after
 * each so that later commands see shapes. */
hq_status_t hqi_optimize_script_modify(hqi_optimize_work_t *work, const hq_script_t *script,
                                       hq_error_t *err);
/* The layer-addressed commands, read once the graph is final: fills `prec` and `ranges` (one
 * zeroed entry per layer, indexed like the graph) and reports every command hq does not apply. */
hq_status_t hqi_optimize_script_requests(hqi_optimize_work_t *work, const hq_script_t *script,
                                         hqi_precision_request_t *prec,
                                         hqi_range_request_t *ranges, hq_error_t *err);
/* Frees what the work owns (not the graph or params). */
void hqi_optimize_work_clear(hqi_optimize_work_t *work);

#endif
