/* prequant_algo.c — PreQuantAlgoInspector (plugins/, LOW): the calibration and pre-quantization
 * settings of the model script.
 *
 * The calibration set: fewer than 64 samples (the dataset given to hq-diag, or the script's
 * `model_optimization_config(calibration, calibset_size=N)`) is a warning with the line that asks
 * for 64. The optimization level: `model_optimization_flavor(optimization_level=0)` turns off
 * equalization and bias correction (a warning and the line for level 2); equalization disabled
 * by `pre_quantization_optimization(equalization, policy=disabled)` is an info. Any combination of
 * commands, values of any kind or none at all, is read without failing.
 * Owner: inspectors helper. */
#include "../inspectors/inspector_util.h"

#define MIN_CALIBSET 64

/* Last numeric value of `key` among commands named `command` whose first positional is `first`
 * (NULL: any); false when absent. */
static bool number_of(hq_inspector_context_t *ctx, const char *command, const char *first,
                      const char *key, double *value)
{
    bool found = false;
    for (int i = ctx->find_command(ctx, command, 0); i >= 0;
         i = ctx->find_command(ctx, command, i + 1)) {
        const hq_command_t *c = ctx->command(ctx, i);
        const hq_value_t *p = hq_command_positional(c, 0);
        if (first && (!p || !p->text || strcmp(p->text, first)))
            continue;
        const hq_value_t *v = hq_command_kwarg(c, key);
        if (v && v->kind == HQ_VALUE_NUMBER) {
            *value = v->number;
            found = true;
        }
    }
    return found;
}

/* Whether a command `command(first, policy=disabled)` is present (last one wins). */
static bool disabled(hq_inspector_context_t *ctx, const char *command, const char *first)
{
    bool off = false;
    for (int i = ctx->find_command(ctx, command, 0); i >= 0;
         i = ctx->find_command(ctx, command, i + 1)) {
        const hq_command_t *c = ctx->command(ctx, i);
        const hq_value_t *p = hq_command_positional(c, 0);
        const hq_value_t *v = hq_command_kwarg(c, "policy");
        if (p && p->text && !strcmp(p->text, first) && v && v->text)
            off = !strcmp(v->text, "disabled");
    }
    return off;
}

static hq_status_t run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    (void)state;
    (void)err;
    double calibset = MIN_CALIBSET;
    bool explicit_size = number_of(ctx, "model_optimization_config", "calibration", "calibset_size",
                                   &calibset);
    if (explicit_size && calibset < MIN_CALIBSET) {
        hq_diag_number_t n[] = {{"calibset_size", calibset}};
        insp_emit(ctx, HQ_DIAG_WARNING, -1, 0, n, 1,
                  "The model script calibrates on %g samples (calibset_size); at least %d are "
                  "recommended for stable ranges",
                  calibset, MIN_CALIBSET);
        char line[128];
        snprintf(line, sizeof line, "model_optimization_config(calibration, calibset_size=%d)",
                 MIN_CALIBSET);
        insp_recommend(ctx, HQ_DIAG_WARNING, -1, line, "a larger calibration set", "calibration",
                       HQ_GROUP_YES_NO, "Calibrate on 64 samples?", HQ_ANSWER_YES);
    }
    if (ctx->has_dataset(ctx) && ctx->sample_count(ctx) < MIN_CALIBSET) {
        hq_diag_number_t n[] = {{"samples", (double)ctx->sample_count(ctx)}};
        insp_emit(ctx, HQ_DIAG_WARNING, -1, 0, n, 1,
                  "The dataset given has %lld samples; a calibration set of at least %d is "
                  "recommended",
                  (long long)ctx->sample_count(ctx), MIN_CALIBSET);
    }
    double level = 2;
    if (number_of(ctx, "model_optimization_flavor", NULL, "optimization_level", &level) &&
        level < 1) {
        hq_diag_number_t n[] = {{"optimization_level", level}};
        insp_emit(ctx, HQ_DIAG_WARNING, -1, 0, n, 1,
                  "optimization_level=%g turns off equalization and bias correction", level);
        insp_recommend(ctx, HQ_DIAG_WARNING, -1, "model_optimization_flavor(optimization_level=2)",
                       "equalization and bias correction reduce quantization noise",
                       "optimization_level", HQ_GROUP_YES_NO, "Use optimization level 2?",
                       HQ_ANSWER_YES);
    }
    if (disabled(ctx, "pre_quantization_optimization", "equalization"))
        insp_emit(ctx, HQ_DIAG_INFO, -1, 0, NULL, 0,
                  "Equalization is disabled by the model script: layers whose channels differ "
                  "widely in range quantize worse without it");
    return HQ_OK;
}

HQ_INSPECTOR_DEFINE("PreQuantAlgoInspector",
                    "calibration set size and pre-quantization settings of the script",
                    HQ_PRIORITY_LOW, 0, run)
