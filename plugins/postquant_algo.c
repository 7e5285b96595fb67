/* postquant_algo.c — PostQuantAlgoInspector (plugins/, LOW): the optimization level and the
 * post-quantization features of the model script.
 *
 * As the original tool: an info with the optimization level and whether it is implicit (no
 * `model_optimization_flavor(optimization_level=N)`, hq's default 2) or explicit, and one info per
 * post-quantization feature (bias_correction, finetune, adaround) saying whether it is enabled, by
 * the script's policy or else by the level (docs/quantizer.md: 0 = equalization only, 1 +
 * iterative bias correction, seconds; 2 + finetune, seconds to minutes; 3-4 bias correction and
 * AdaRound on 256 / 1024 images, minutes). Explicit level 0: the original offers one level more;
 * hq offers its default `optimization_level=2`, a yes/no group, default yes. Explicit 1-2: an
 * info that levels 3-4 learn the rounding with AdaRound and what it costs; 3-4: an info with what
 * the level runs. Implicit level with features configured by hand: the original's "non-default
 * config" info. Beyond it: bias correction switched off by the script is a warning with the line
 * that enables it. The original indexed its feature table by name and crashed when the one
 * feature enabled was not bias_correction; here any combination of commands, values of any kind
 * or none at all, is read without failing. */
#include "../inspectors/inspector_util.h"

#define DEFAULT_LEVEL 2

/* Policy of `post_quantization_optimization(feature, policy=...)`: 1 enabled, 0 disabled, -1
 * absent (last one wins; a line without policy= means disabled, as in the original). */
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
        p = v && v->text && !strcmp(v->text, "enabled") ? 1 : 0;
    }
    return p;
}

/* The script's optimization_level (last one wins); false when it sets none. */
static bool explicit_level(hq_inspector_context_t *ctx, double *level)
{
    bool found = false;
    for (int i = ctx->find_command(ctx, "model_optimization_flavor", 0); i >= 0;
         i = ctx->find_command(ctx, "model_optimization_flavor", i + 1)) {
        const hq_value_t *v = hq_command_kwarg(ctx->command(ctx, i), "optimization_level");
        if (v && v->kind == HQ_VALUE_NUMBER) {
            *level = v->number;
            found = true;
        }
    }
    return found;
}

static hq_status_t run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    (void)state;
    (void)err;
    double level = DEFAULT_LEVEL;
    bool explicit = explicit_level(ctx, &level);
    hq_diag_number_t n[] = {{"optimization_level", level}};
    insp_emit(ctx, HQ_DIAG_INFO, -1, 0, n, 1, "%s optimization level: %g",
              explicit ? "Explicit" : "Implicit", level);
    static const char *const features[] = {"bias_correction", "finetune", "adaround"};
    /* the levels that run each feature in hq (docs/quantizer.md) */
    static const double lowest[] = {1, 2, 3}, highest[] = {4, 2, 4};
    int configured = 0;
    for (int k = 0; k < 3; k++) {
        int p = policy(ctx, features[k]);
        configured += p >= 0;
        bool by_level = level >= lowest[k] && level <= highest[k];
        bool on = p == 1 || (p < 0 && by_level);
        insp_emit(ctx, HQ_DIAG_INFO, -1, 0, NULL, 0, "%s is %s%s", features[k],
                  on ? "enabled" : "disabled",
                  p >= 0 ? " (model script)" : by_level ? " (optimization level)" : "");
    }
    if (policy(ctx, "bias_correction") == 0) {
        insp_emit(ctx, HQ_DIAG_WARNING, -1, 0, n, 1,
                  "Bias correction is disabled in the model script: the mean shift quantization "
                  "adds to each layer is left uncorrected");
        insp_recommend(ctx, HQ_DIAG_WARNING, -1,
                       "post_quantization_optimization(bias_correction, policy=enabled)",
                       "bias correction removes the mean error of quantized layers (it costs "
                       "no training: one pass over the calibration set)",
                       "bias_correction", HQ_GROUP_YES_NO, "Enable bias correction?",
                       HQ_ANSWER_YES);
    }
    if (!explicit) {
        if (configured > 0)
            insp_emit(ctx, HQ_DIAG_INFO, -1, 0, NULL, 0,
                      "Non-default configuration with the implicit optimization level");
        return HQ_OK;
    }
    if (level < 1) {
        insp_emit(ctx, HQ_DIAG_WARNING, -1, 0, n, 1,
                  "optimization_level=%g turns off bias correction: raising it costs seconds in "
                  "hq",
                  level);
        insp_recommend(ctx, HQ_DIAG_WARNING, -1, "model_optimization_flavor(optimization_level=2)",
                       "level 1 adds iterative bias correction and level 2, hq's default, finetune "
                       "(the original tool offers one level more at a time)",
                       "optimization_level", HQ_GROUP_YES_NO,
                       "Would you like to increase the optimization level?", HQ_ANSWER_YES);
    } else if (level < 3) {
        insp_emit(ctx, HQ_DIAG_INFO, -1, 0, n, 1,
                  "optimization_level=%g: levels 3 and 4 learn the rounding with AdaRound instead "
                  "of finetune (minutes on a CPU; worth most with 4-bit weights, "
                  "docs/quantizer.md)",
                  level);
    } else {
        insp_emit(ctx, HQ_DIAG_INFO, -1, 0, n, 1,
                  "optimization_level=%g: hq runs iterative bias correction and AdaRound on up to "
                  "%d images",
                  level, level < 4 ? 256 : 1024);
    }
    return HQ_OK;
}

HQ_INSPECTOR_DEFINE("PostQuantAlgoInspector",
                    "optimization level, bias correction, finetune and adaround settings",
                    HQ_PRIORITY_LOW, 0, run)
