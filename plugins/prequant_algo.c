/* prequant_algo.c — PreQuantAlgoInspector (plugins/, LOW): the calibration and pre-quantization
 * settings of the model script.
 *
 * As the original tool: the calibration set size of the script (the last
 * `model_optimization_config(calibration, calibset_size=N)`, default 64) against the default 64:
 * above it a warning (a larger set only changes the statistics collection; a larger set for an
 * algorithm is that algorithm's own setting), below it an info. Beyond it: equalization disabled
 * by the script is an info. Any combination of commands, values of any kind or none at all, is
 * read without failing (the size is read from `calibration` lines only, where hq reads it). */
#include "../inspectors/inspector_util.h"

#define DEFAULT_CALIBSET 64

/* Whether `command(first, policy=disabled)` is the last word on `first`. */
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
    double calibset = DEFAULT_CALIBSET;
    insp_script_number(ctx, "model_optimization_config", "calibration", "calibset_size", &calibset);
    hq_diag_number_t n[] = {{"calibset_size", calibset}};
    if (calibset > DEFAULT_CALIBSET)
        insp_emit(ctx, HQ_DIAG_WARNING, -1, 0, n, 1,
                  "Calibset size is %g, greater than the default of %d: a larger calibration set "
                  "only changes the statistics collection, and may change accuracy; to give an "
                  "algorithm more data, remove the calibset_size line and set that algorithm's "
                  "own dataset size (hq-alls(5))",
                  calibset, DEFAULT_CALIBSET);
    else if (calibset < DEFAULT_CALIBSET)
        insp_emit(ctx, HQ_DIAG_INFO, -1, 0, n, 1,
                  "Calibset size is %g, lower than the default of %d", calibset, DEFAULT_CALIBSET);
    if (disabled(ctx, "pre_quantization_optimization", "equalization"))
        insp_emit(ctx, HQ_DIAG_INFO, -1, 0, NULL, 0,
                  "Equalization is disabled by the model script: layers whose channels differ "
                  "widely in range quantize worse without it");
    return HQ_OK;
}

HQ_INSPECTOR_DEFINE("PreQuantAlgoInspector",
                    "calibration set size and pre-quantization settings of the script",
                    HQ_PRIORITY_LOW, 0, run)
