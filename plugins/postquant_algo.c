/* postquant_algo.c — PostQuantAlgoInspector (plugins/, LOW): post-quantization features of the
 * model script.
 *
 * Bias correction disabled (`post_quantization_optimization(bias_correction, policy=disabled)`,
 * or optimization_level < 2 without it enabled) is a warning with the line that enables it.
 * `finetune` / `adaround` requested: hq applies neither (docs/quantizer.md); an info says so, and a
 * warning when the calibration set is below the 1024 samples such training needs. Any
 * combination of commands is read without failing. Owner: inspectors helper. */
#include "../inspectors/inspector_util.h"

#define TRAINING_SAMPLES 1024

/* Policy of `post_quantization_optimization(feature, policy=...)`: 1 enabled, 0 disabled, -1
 * absent (last one wins). */
static int policy(hq_inspector_context_t *ctx, const char *feature)
{
    int p = -1;
    for (int i = ctx->find_command(ctx, "post_quantization_optimization", 0); i >= 0;
         i = ctx->find_command(ctx, "post_quantization_optimization", i + 1)) {
        const hq_command_t *c = ctx->command(ctx, i);
        const hq_value_t *f = hq_command_positional(c, 0);
        if (!f || !f->text || strcmp(f->text, feature))
            continue;
        const hq_value_t *v = hq_command_kwarg(c, "policy");
        p = v && v->text && !strcmp(v->text, "disabled") ? 0 : 1;
    }
    return p;
}

static double optimization_level(hq_inspector_context_t *ctx)
{
    double level = 2;
    for (int i = ctx->find_command(ctx, "model_optimization_flavor", 0); i >= 0;
         i = ctx->find_command(ctx, "model_optimization_flavor", i + 1)) {
        const hq_value_t *v = hq_command_kwarg(ctx->command(ctx, i), "optimization_level");
        if (v && v->kind == HQ_VALUE_NUMBER)
            level = v->number;
    }
    return level;
}

static hq_status_t run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    (void)state;
    (void)err;
    double level = optimization_level(ctx);
    int bias = policy(ctx, "bias_correction");
    if (bias == 0 || (bias < 0 && level < 2)) {
        hq_diag_number_t n[] = {{"optimization_level", level}};
        insp_emit(ctx, HQ_DIAG_WARNING, -1, 0, n, 1,
                  "Bias correction is off (%s): the mean shift quantization adds to each layer "
                  "is left uncorrected",
                  bias == 0 ? "disabled in the model script" : "optimization_level below 2");
        insp_recommend(ctx, HQ_DIAG_WARNING, -1,
                       "post_quantization_optimization(bias_correction, policy=enabled)",
                       "bias correction removes the mean error of quantized layers",
                       "bias_correction", HQ_GROUP_YES_NO, "Enable bias correction?",
                       HQ_ANSWER_YES);
    }
    static const char *const trained[] = {"finetune", "adaround"};
    for (int k = 0; k < 2; k++) {
        if (policy(ctx, trained[k]) != 1)
            continue;
        insp_emit(ctx, HQ_DIAG_INFO, -1, 0, NULL, 0,
                  "%s is requested, but hq does not train during quantization: the line is "
                  "kept in the script and not applied (docs/quantizer.md)",
                  trained[k]);
        if (ctx->has_dataset(ctx) && ctx->sample_count(ctx) < TRAINING_SAMPLES)
            insp_emit(ctx, HQ_DIAG_WARNING, -1, 0, NULL, 0,
                      "%s needs a training set of at least %d samples; the dataset has %lld",
                      trained[k], TRAINING_SAMPLES, (long long)ctx->sample_count(ctx));
    }
    return HQ_OK;
}

HQ_INSPECTOR_DEFINE("PostQuantAlgoInspector",
                    "bias correction, finetune and adaround settings of the script",
                    HQ_PRIORITY_LOW, 0, run)
