/* batchnorm.c — BatchNormInspector (HIGH): was the model trained without batch normalization?
 *
 * A model with a batch norm folded into any conv/dw/deconv/dense (or a standalone batch_norm
 * layer) is fine: nothing is said. Otherwise, with data, per weighted layer, the per-channel
 * pre-activation mean and std: a layer is an outlier when more than 5% of its channels have
 * |mean| > 5 or more than 5% have std > 3 (the original tool's thresholds). Outliers are one
 * finding whose level is set by what they cost, measured: a warning (with the advice to retrain
 * with batch normalization) when an output of the quantized model is below the healthy floor of
 * 20 dB or nothing measured it, an info when every output is at 20 dB or more. The original tool
 * called this an error; the bundled sample (no batch norm, 5 of 5 layers outliers) quantizes to
 * 42.6 dB, and torch's ONNX export folds batch norms into the convs, so a healthy torchvision
 * resnet18 looks "without batch normalization" too (docs/inspectors.md). Without data: one info
 * (no batch normalization layer in the graph says little on its own, for the same reason).
 *
 * "Data" is the float statistics pass of this run (-d), else the calibration statistics the
 * quantizer stored in q.npz (stats/preact_mean:0, stats/preact_std:0, same definition), so that a
 * quantized archive is checked even without -d. */
#include "inspector_util.h"

#define MEAN_LIMIT 5.0
#define STD_LIMIT 3.0
#define CHANNEL_SHARE 0.05

/* Pre-activation moments of layer `l`: float statistics, else q.npz calibration statistics.
 * `*source` names where they came from. */
static bool preact(hq_inspector_context_t *ctx, int l, const float **mean, const float **std,
                   int *channels, const char **source)
{
    const hq_layer_stats_t *s = ctx->layer_stats(ctx, HQ_STATS_FLOAT, l, 0);
    hq_inspector_params_t params;
    insp_params(ctx, l, &params);
    if (s && s->preact_mean && s->preact_std) {
        *mean = s->preact_mean, *std = s->preact_std, *channels = s->channels;
        *source = "dataset";
        return true;
    }
    /* a linear layer's output is its pre-activation */
    if (s && s->channel_mean && s->channel_std && params.activation == HQ_ACT_LINEAR) {
        *mean = s->channel_mean, *std = s->channel_std, *channels = s->channels;
        *source = "dataset";
        return true;
    }
    const hq_tensor_t *m = ctx->layer_tensor(ctx, HQ_PARAMS_QUANTIZED, l, "stats/preact_mean:0");
    const hq_tensor_t *d = ctx->layer_tensor(ctx, HQ_PARAMS_QUANTIZED, l, "stats/preact_std:0");
    if (m && d && m->dtype == HQ_DTYPE_FLOAT32 && d->dtype == HQ_DTYPE_FLOAT32 &&
        hq_tensor_count(m) == hq_tensor_count(d) && hq_tensor_count(m) > 0) {
        *mean = m->data, *std = d->data, *channels = (int)hq_tensor_count(m);
        *source = "calibration statistics";
        return true;
    }
    return false;
}

static hq_status_t run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    (void)state;
    (void)err;
    int n = ctx->layer_count(ctx), weighted = 0;
    for (int l = 0; l < n; l++) {
        hq_inspector_layer_t layer;
        hq_inspector_params_t params;
        insp_layer(ctx, l, &layer);
        insp_params(ctx, l, &params);
        if (layer.type == HQ_LAYER_BATCH_NORM || (insp_traits(layer.type)->has_weights &&
                                                  params.batch_norm)) {
            ctx->log(ctx, "batch normalization found at %s: nothing to check", layer.bare_name);
            return HQ_OK;
        }
        weighted += insp_traits(layer.type)->has_weights;
    }
    if (weighted == 0) {
        ctx->skip(ctx, "the model has no conv, dw, deconv or dense layer");
        return HQ_OK;
    }
    insp_text_t list = {.len = 0};
    int outliers = 0, checked = 0;
    const char *source = NULL;
    for (int l = 0; l < n; l++) {
        hq_inspector_layer_t layer;
        insp_layer(ctx, l, &layer);
        const float *mean, *std;
        int channels;
        if (!insp_traits(layer.type)->has_weights || !preact(ctx, l, &mean, &std, &channels, &source))
            continue;
        checked++;
        int big_mean = 0, big_std = 0;
        for (int c = 0; c < channels; c++) {
            big_mean += fabsf(mean[c]) > MEAN_LIMIT;
            big_std += std[c] > STD_LIMIT;
        }
        double share_mean = (double)big_mean / channels, share_std = (double)big_std / channels;
        ctx->log(ctx, "%s: %.1f%% channels |mean| > 5, %.1f%% std > 3", layer.bare_name,
                 share_mean * 100, share_std * 100);
        if (share_mean > CHANNEL_SHARE || share_std > CHANNEL_SHARE) {
            insp_append(&list, "%s%s (%.0f%% of channels |mean| > 5, %.0f%% std > 3)",
                        outliers ? ", " : "", layer.bare_name, share_mean * 100,
                        share_std * 100);
            outliers++;
        }
    }
    if (checked == 0) {
        insp_emit(ctx, HQ_DIAG_INFO, -1, 0, NULL, 0,
                  "No batch normalization layer in the graph (exporters such as torch.onnx fold "
                  "it into the convs, so this alone says little); the pre-activation check needs "
                  "a dataset (-d) or the calibration statistics of a quantized archive");
        return HQ_OK;
    }
    if (outliers == 0)
        return HQ_OK;
    double output_db;
    bool healthy = insp_outputs_healthy(ctx, &output_db);
    insp_text_t cost = {.len = 0};
    if (healthy)
        insp_append(&cost, "; the quantized outputs reach %.1f dB (healthy: 20 dB or more), so "
                    "quantization copes with them", output_db);
    else if (!isnan(output_db))
        insp_append(&cost, "; the quantized outputs reach only %.1f dB: consider retraining with "
                    "batch normalization, whose standard pre-activations quantize better",
                    output_db);
    else
        insp_append(&cost, "; they are hard to quantize: if the quantized model loses accuracy, "
                    "consider retraining with batch normalization");
    hq_diag_number_t nums[] = {{"outlier_layers", outliers},
                               {"checked_layers", checked},
                               {"output_sqnr_db", output_db}};
    insp_emit(ctx, healthy ? HQ_DIAG_INFO : HQ_DIAG_WARNING, -1, 0, nums, 3,
              "No batch normalization, and %d of %d layers have pre-activation distributions far "
              "from standard (from the %s): %s%s",
              outliers, checked, source, list.buf, cost.buf);
    return HQ_OK;
}

HQ_INSPECTOR_DEFINE("BatchNormInspector",
                    "was the model trained without batch normalization (pre-activation moments)",
                    HQ_PRIORITY_HIGH, 0, run)
