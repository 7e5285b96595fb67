/* adaround.h — post_quantization_optimization(adaround): learned rounding of the integer weights
 * (adaround.c, docs/quantizer.md "AdaRound"). Internal to libhq; prefix hqi_. */
#ifndef HQI_ADAROUND_H
#define HQI_ADAROUND_H

#include <stdbool.h>
#include <stdint.h>

#include "hq/dataset.h"
#include "hq/graph.h"
#include "hq/tensor.h"
#include "numerics/qmodel.h"
#include "quant/calibrate.h"
#include "quant/quant_util.h"

/* The script's keys (post_quantization_optimization(adaround, ...)); defaults in
 * hqi_adaround_defaults. */
typedef struct hqi_adaround_config {
    int64_t dataset_size; /* calibration samples the layers' inputs are taken from; 0: the
                             optimization level's, else the calibration set */
    int64_t epochs;       /* passes over the samples */
    int64_t batch_size;   /* samples per optimizer step */
    double learning_rate; /* Adam's step size on the rounding variables */
    double warmup;        /* share of the steps before the rounding regularizer starts, [0, 1) */
    double beta_start;    /* b_range[0]: the regularizer's exponent when it starts */
    double beta_end;      /* b_range[1]: ... when the last step runs */
    double weight;        /* lambda, the regularizer's weight against the reconstruction error
                             measured in round-to-nearest's error per weight */
    bool train_all;       /* mode=train_all: every weighted layer; train_4bit: 4-bit layers only */
    int64_t positions;    /* output positions sampled per sample and layer; 0: every position */
    int64_t max_steps;    /* the default budget: at most this many Adam steps per layer (0: no
                             budget; an explicit epochs= in the script sets 0) */
    bool float_target;    /* reconstruct the float network's pre-activations (its own input
                             through the float kernel) instead of the float kernel's on the
                             quantized input */
    double holdout;       /* share of the samples whose rows do not train but decide, per output
                             channel, between the learned rounding and nearest; 0: none */
    bool centered;        /* measure the error about its mean over the rows per channel: the
                             bias correction that follows removes the mean */
    double qdrop;         /* QDrop: the probability with which each input element of a step's
                             rows is the float network's instead of the quantized one (needs
                             float_target); 0: off */
    bool qdrop_sample;    /* QDrop draws per sample (all of a sample's rows at once) instead of
                             per element */
    bool shuffle;         /* each epoch visits the samples in a new order (a seed per layer and
                             epoch) instead of the same fixed batches in turn */
    bool bias_step;       /* after a bias correction, with the float target and the centred
                             error: each trained layer's integer bias is set right after its
                             training so that its mean pre-activation on the sampled rows equals
                             the float network's, so the layers after it train on inputs
                             corrected for every layer before (the final iterative correction
                             then measures again) */
    double min_rows;      /* a layer with fewer sampled rows than min_rows times the weights of
                             one output channel is not trained: it keeps round-to-nearest (its
                             rounding would fit those rows, not the layer); 0: every layer */
    uint64_t seed;        /* mixed into the draw of the sampled positions (and the shuffle):
                             0, the default, keeps the draws of the earlier runs */
} hqi_adaround_config_t;

void hqi_adaround_defaults(hqi_adaround_config_t *config);

/* What one run did, for the log and the tests. Errors are the mean over the sampled output
 * positions of the squared pre-activation error summed over output channels, against the float
 * network's pre-activations (float_target; else the float kernel on the same quantized inputs),
 * about their mean per channel when centered; the totals sum them over the layers trained. */
typedef struct hqi_adaround_report {
    int layers;            /* layers trained */
    int skipped;           /* layers left at round-to-nearest for too few rows (min_rows) */
    int64_t kept_nearest;  /* output channels whose learned rounding did not lower their error:
                              left at round-to-nearest */
    int64_t samples;       /* calibration samples used */
    int64_t steps;         /* Adam steps per layer */
    double error_nearest;  /* sum over layers, round-to-nearest */
    double error_adaround; /* sum over layers, after hard rounding */
    double seconds;
} hqi_adaround_report_t;

/* How the biases of `q` were corrected before AdaRound runs. */
typedef enum hqi_adaround_bias {
    HQI_ADAROUND_BIAS_NONE = 0,
    HQI_ADAROUND_BIAS_ANALYTIC,  /* a correction of round-to-nearest's mean error */
    HQI_ADAROUND_BIAS_ITERATIVE, /* measured on the quantized network (hqi_bias_correct_iterative)
                                  */
} hqi_adaround_bias_t;

/* Where the layers' inputs come from: samples [0, dataset_size) of `data`, its inputs matched by
 * `input_names` as in hqi_calibrate; and what an iterative bias correction measures against. */
typedef struct hqi_adaround_data {
    hq_dataset_t *data;
    char *const *input_names;
    const hqi_calibration_t *calibration; /* the calibration statistics */
    int64_t calibset, batch;              /* samples calibrated, in batches of */
} hqi_adaround_data_t;

/* Re-rounds the integer kernels of `q` (built by hqi_quant_build_params for `graph` from the float
 * kernels of `fpo` and `decisions`), layer by layer in topological order: each conv, depthwise,
 * deconv and dense layer the mode selects is trained on its inputs as the quantized network (every
 * earlier layer already re-rounded) computes them, against the float network's outputs at the
 * same positions (float_target: one float run of `fpo` over the samples first), then hard
 * rounded; every weight ends at
 * floor(w / scale) or one step above. kernel:0 changes; after an analytic or iterative bias
 * correction (`bias`) the layer's bias:0 also moves by the mean output change the new rounding
 * causes, and after an iterative one hqi_bias_correct_iterative runs again at the end, since the
 * errors it measured upstream have changed. `threads` as hq_optimize's (0: the default). Progress
 * goes to `log` (a debug line per layer); `report` may be NULL. */
hq_status_t hqi_adaround_run(const hq_graph_t *graph, const hq_npz_t *fpo,
                             const hqi_layer_quant_t *decisions, hq_npz_t *q,
                             const hqi_adaround_config_t *config, hqi_adaround_bias_t bias,
                             const hqi_adaround_data_t *data, int threads, const hqi_logger_t *log,
                             hqi_adaround_report_t *report, hq_error_t *err);

#endif
