/* activation.c — ActivationInspector (plugins/, LOW): activations that quantize badly.
 *
 * SiLU layers (x * sigmoid(x), fused by `hq parse`) are a warning: their output's negative dip is
 * small next to the positive range, so an 8-bit per-tensor range resolves it poorly. The
 * swish-with-beta pattern — x scaled (a normalization, or an ew_mult/ew_div by a constant), a
 * sigmoid, then an ew_mult with the unscaled x — is a warning too: it is three quantized layers
 * instead of one, each adding noise. Both are warnings when an output of the quantized model is
 * below the healthy 20 dB or nothing measured it (a parsed archive: the cheap check before
 * quantizing), infos when every output is at 20 dB or more: the cost they warn of is then not
 * there (docs/inspectors.md). */
#include "../inspectors/inspector_util.h"

/* Whether layer `l` (NULL: none) with params `p` applies a sigmoid (a standalone activation or a
 * fused one). */
static bool is_sigmoid(const hq_inspector_layer_t *l, const hq_inspector_params_t *p)
{
    return l && insp_traits(l->type)->fused_activation && p->activation == HQ_ACT_SIGMOID;
}

/* Whether `l` (NULL: none) scales its first input `x` by a constant (normalization, or
 * ew_mult/ew_div whose other input is a const_input); *x receives that input. */
static bool scales(hq_inspector_context_t *ctx, const hq_inspector_layer_t *l, int *x)
{
    if (!l || l->input_count < 1)
        return false;
    if (l->type == HQ_LAYER_NORMALIZATION) {
        *x = l->inputs[0];
        return true;
    }
    if ((l->type == HQ_LAYER_EW_MULT || l->type == HQ_LAYER_EW_DIV) && l->input_count == 2) {
        for (int k = 0; k < 2; k++) {
            hq_inspector_layer_t other;
            if (insp_layer(ctx, l->inputs[1 - k], &other) && other.type == HQ_LAYER_CONST_INPUT) {
                *x = l->inputs[k];
                return true;
            }
        }
    }
    return false;
}

/* The x of the pattern ending at the sigmoid layer `s` (s applies sigmoid to a scaled x, either
 * fused into the scaling layer or as a separate activation after it), or -1. */
static int swish_source(hq_inspector_context_t *ctx, int s)
{
    hq_inspector_layer_t layer, input;
    const hq_inspector_layer_t *l = insp_layer(ctx, s, &layer) ? &layer : NULL;
    int x = -1;
    if (scales(ctx, l, &x)) /* sigmoid fused into the scaling layer */
        return x;
    if (l && l->type == HQ_LAYER_ACTIVATION && l->input_count == 1 &&
        scales(ctx, insp_layer(ctx, l->inputs[0], &input) ? &input : NULL, &x))
        return x;
    return -1;
}

static hq_status_t run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    (void)state;
    (void)err;
    int n = ctx->layer_count(ctx);
    double output_db;
    hq_diag_level_t level = insp_outputs_healthy(ctx, &output_db) ? HQ_DIAG_INFO : HQ_DIAG_WARNING;
    char healthy[96] = "";
    if (level == HQ_DIAG_INFO)
        snprintf(healthy, sizeof healthy, " (the quantized outputs are healthy here: %.1f dB)",
                 output_db);
    for (int i = 0; i < n; i++) {
        hq_inspector_layer_t layer, *l = &layer;
        hq_inspector_params_t params;
        insp_layer(ctx, i, l);
        insp_params(ctx, i, &params);
        if (params.activation == HQ_ACT_SILU && l->type != HQ_LAYER_INPUT)
            insp_emit(ctx, level, i, 0, NULL, 0,
                      "Layer %s uses a SiLU activation: its small negative part shares one "
                      "8-bit range with a large positive part; if accuracy drops here, consider "
                      "a 16-bit output for it or a ReLU-family activation when retraining%s",
                      l->bare_name, healthy);
        if (l->type != HQ_LAYER_EW_MULT || l->input_count != 2)
            continue;
        for (int k = 0; k < 2; k++) {
            hq_inspector_layer_t sig_layer, *sig = &sig_layer;
            hq_inspector_params_t sig_params;
            if (!insp_layer(ctx, l->inputs[k], sig) ||
                !insp_params(ctx, l->inputs[k], &sig_params) || !is_sigmoid(sig, &sig_params))
                continue;
            int x = swish_source(ctx, l->inputs[k]);
            if (x >= 0 && x == l->inputs[1 - k]) {
                insp_emit(ctx, level, i, 0, NULL, 0,
                          "Layers %s, %s form a swish with beta != 1 (x * sigmoid(beta * x)) "
                          "ending at %s: three quantized layers, each adding noise, where a SiLU "
                          "(beta = 1) is one%s",
                          insp_name(ctx, x), sig->bare_name, l->bare_name, healthy);
                break;
            }
        }
    }
    return HQ_OK;
}

HQ_INSPECTOR_DEFINE("ActivationInspector", "SiLU layers and the swish-with-beta pattern",
                    HQ_PRIORITY_LOW, 0, run)
