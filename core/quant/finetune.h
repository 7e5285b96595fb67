/* finetune.h — post_quantization_optimization(finetune): block-wise reconstruction of the
 * integer weights and biases (finetune.c, docs/quantizer.md "Finetune"). Internal to libhq;
 * prefix hqi_. */
#ifndef HQI_FINETUNE_H
#define HQI_FINETUNE_H

#include <stdbool.h>
#include <stdint.h>

#include "hq/dataset.h"
#include "hq/graph.h"
#include "hq/tensor.h"
#include "numerics/qmodel.h"
#include "quant/quant_util.h"

/* The loss a block's output is compared with (loss_types). */
typedef enum hqi_finetune_loss {
    HQI_FINETUNE_L2REL = 0, /* sum of squared errors over the sum of squared targets, per sample */
    HQI_FINETUNE_L2,        /* mean squared error */
    HQI_FINETUNE_COSINE,    /* 1 - cosine similarity, per sample */
    HQI_FINETUNE_CE,        /* cross-entropy: needs class scores against labels; read, then
                               replaced by l2rel with a warning */
} hqi_finetune_loss_t;

#define HQI_FINETUNE_MAX_LOSSES 16
#define HQI_FINETUNE_NAME_MAX 128

/* The script's keys (post_quantization_optimization(finetune, ...)); defaults in
 * hqi_finetune_defaults. */
typedef struct hqi_finetune_config {
    int64_t dataset_size;  /* samples the blocks are trained on; 0: the level's, else the
                              calibration set */
    int64_t epochs;        /* passes over the samples */
    int64_t max_steps;     /* the default budget: at most this many Adam steps per block (0: no
                              limit; an explicit epochs= in the script sets 0) */
    int64_t batch_size;    /* samples per Adam step */
    double learning_rate;  /* Adam's step, in quantization steps of each weight's channel */
    int block_layers;      /* the most layers one block chains (not a script key) */
    bool train_all;        /* mode=train_all: every block; train_4bit (the default): only blocks
                              with a layer at 4-bit weights */
    int loss_count;        /* entries of loss_layers (0: none given) */
    char loss_layers[HQI_FINETUNE_MAX_LOSSES][HQI_FINETUNE_NAME_MAX]; /* loss_layer_names */
    int loss_type_count;   /* entries of loss_types (0: none given: l2rel) */
    hqi_finetune_loss_t loss_types[HQI_FINETUNE_MAX_LOSSES];
} hqi_finetune_config_t;

void hqi_finetune_defaults(hqi_finetune_config_t *config);
/* "l2rel", "l2", "cosine", "ce"; false for any other word. */
bool hqi_finetune_loss_parse(const char *word, hqi_finetune_loss_t *out);

/* What one run did, for the log and the tests. A block's loss is its configured loss over all
 * training samples, the quantized block against the float one on the same (quantized) input. */
typedef struct hqi_finetune_report {
    int blocks;           /* blocks trained */
    int layers;           /* layers in them */
    int kept;             /* blocks whose training did not lower their loss: params unchanged */
    int64_t samples;      /* samples trained on */
    int64_t steps;        /* Adam steps per block */
    double loss_before;   /* sum over blocks, the params as they were */
    double loss_after;    /* sum over blocks, after training (kept blocks: as before) */
    double seconds;
} hqi_finetune_report_t;

/* Trains the integer kernels and biases of `q` (built by hqi_quant_build_params for `graph` from
 * the float params `fpo` and `decisions`) block by block in topological order. A block is a chain
 * of up to block_layers conv, depthwise, deconv or dense layers (one input each, no elementwise
 * addend) where each layer's output feeds only the next; its input is what the quantized network
 * (every earlier block already trained) computes on samples [0, dataset_size) of `data` (inputs
 * matched by `input_names`). Float weights and biases start from fpo's kernels and q's biases and
 * are trained with Adam so that the block's output, with weights rounded by a straight-through
 * estimator to the layer's own kernel_scale and the activations inside the block quantized with
 * their encodings, matches the float block on the same input; then kernel:0 and bias:0 are
 * rewritten from them (the scales stay). A block whose loss does not fall keeps its params.
 * Progress goes to `log` (a debug line per block, an info line at the end); `report` may be
 * NULL. */
hq_status_t hqi_finetune_run(const hq_graph_t *graph, const hq_npz_t *fpo,
                             const hqi_layer_quant_t *decisions, hq_npz_t *q,
                             const hqi_finetune_config_t *config, hq_dataset_t *data,
                             char *const *input_names, int threads, const hqi_logger_t *log,
                             hqi_finetune_report_t *report, hq_error_t *err);

#endif
