/* compression.c — CompressionInspector (MEDIUM): did 4-bit weights sneak in?
 *
 * The share of weights at 4 bit (q.npz "<net>/compression/ratio_4bit:0"); when above zero an info
 * with the percentage. No explicit `compression_level` in the model script: a warning ("implicit
 * compression") and the recommendation group that turns it off; an explicit level equal to or
 * different from the effective one ("<net>/compression/level:0"): one info each. Beyond the
 * original tool: the measured cost of each 4-bit layer — the SQNR of its 4-bit weights against
 * the float weights next to what 8 bit would give (from the params, no data needed), and the SQNR
 * drop across the layer from noise analysis next to the median drop across the weighted layers
 * that kept 8-bit weights. */
#include "inspector_util.h"

/* The explicit compression_level of the script (last one wins), or -1. */
static int script_level(hq_inspector_context_t *ctx)
{
    int level = -1;
    for (int i = ctx->find_command(ctx, "model_optimization_flavor", 0); i >= 0;
         i = ctx->find_command(ctx, "model_optimization_flavor", i + 1)) {
        const hq_value_t *v = hq_command_kwarg(ctx->command(ctx, i), "compression_level");
        if (v && v->kind == HQ_VALUE_NUMBER)
            level = (int)v->number;
    }
    return level;
}

/* SQNR (dB) of float weights `w` against their symmetric per-output-channel quantization at
 * `bits` (the contract's weight numerics), channels on the last axis. */
static double weight_sqnr(const float *w, int64_t count, int64_t cout, int bits)
{
    double qmax = (double)((1 << (bits - 1)) - 1), signal = 0, noise = 0;
    for (int64_t c = 0; c < cout; c++) {
        double amax = 0;
        for (int64_t i = c; i < count; i += cout)
            amax = fmax(amax, fabs(w[i]));
        double scale = amax > 0 ? amax / qmax : 1.0;
        for (int64_t i = c; i < count; i += cout) {
            double q = fmax(-qmax, fmin(qmax, round(w[i] / scale))) * scale;
            signal += (double)w[i] * w[i];
            noise += (w[i] - q) * (w[i] - q);
        }
    }
    if (noise <= 0)
        return 200.0;
    return signal > 0 ? 10.0 * log10(signal / noise) : -200.0;
}

/* Float weights of a layer: fp-optimized when present, else native. */
static const hq_tensor_t *float_kernel(hq_inspector_context_t *ctx, int l)
{
    const hq_tensor_t *t = ctx->layer_tensor(ctx, HQ_PARAMS_FP_OPTIMIZED, l, "kernel:0");
    if (!t)
        t = ctx->layer_tensor(ctx, HQ_PARAMS_NATIVE, l, "kernel:0");
    return t && t->dtype == HQ_DTYPE_FLOAT32 && t->ndim >= 1 ? t : NULL;
}

/* SQNR (dB) of the layer feeding `l` (first input), from noise analysis; false when unknown. */
static bool input_sqnr(hq_inspector_context_t *ctx, int l, double *db)
{
    hq_inspector_layer_t layer;
    if (!insp_layer(ctx, l, &layer) || layer.input_count < 1)
        return false;
    const hq_layer_noise_t *n = ctx->layer_noise(ctx, layer.inputs[0]);
    if (!n || !n->has_cumulative)
        return false;
    *db = n->cumulative_db;
    return true;
}

/* SQNR lost across weighted layer `l` (its input's SQNR minus its output's, cumulative noise
 * analysis); false when unknown. */
static bool sqnr_drop(hq_inspector_context_t *ctx, int l, double *out_db, double *in_db)
{
    const hq_layer_noise_t *noise = ctx->layer_noise(ctx, l);
    if (!noise || !noise->has_cumulative || !input_sqnr(ctx, l, in_db))
        return false;
    *out_db = noise->cumulative_db;
    return true;
}

static bool is_4bit(hq_inspector_context_t *ctx, int l)
{
    double bits = 0;
    hq_inspector_layer_t layer;
    return insp_layer(ctx, l, &layer) && insp_traits(layer.type)->has_weights &&
           ctx->layer_scalar(ctx, HQ_PARAMS_QUANTIZED, l, "weight_bits:0", &bits) && bits == 4;
}

/* Median SQNR drop across the weighted layers that kept 8-bit weights: the reference a 4-bit
 * layer's drop is measured against. NAN when no such layer has noise analysis. */
static double median_8bit_drop(hq_inspector_context_t *ctx)
{
    int n = ctx->layer_count(ctx), k = 0;
    double *drops = malloc((size_t)(n > 0 ? n : 1) * sizeof *drops);
    if (!drops)
        return NAN;
    for (int l = 0; l < n; l++) {
        double out_db, in_db;
        hq_inspector_layer_t layer;
        if (insp_layer(ctx, l, &layer) && insp_traits(layer.type)->has_weights && !is_4bit(ctx, l) &&
            sqnr_drop(ctx, l, &out_db, &in_db))
            drops[k++] = in_db - out_db;
    }
    qsort(drops, (size_t)k, sizeof *drops, insp_cmp_double);
    double median = k > 0 ? insp_quantile(drops, k, 0.5) : NAN;
    free(drops);
    return median;
}

/* Expected output-SQNR gain (dB) of 8-bit weights everywhere: each 4-bit layer's added noise
 * (inspector_util.h, "the noise budget") cut by its drop beyond the median drop of the 8-bit
 * weighted layers, as a share of the budget. NAN without noise analysis. */
static double expected_gain(hq_inspector_context_t *ctx)
{
    double reference = median_8bit_drop(ctx), budget = insp_noise_budget(ctx), cut = 0;
    if (isnan(reference) || !(budget > 0))
        return NAN;
    int n = ctx->layer_count(ctx);
    for (int l = 0; l < n; l++) {
        double out_db, in_db;
        if (!is_4bit(ctx, l) || !sqnr_drop(ctx, l, &out_db, &in_db))
            continue;
        double excess = fmax(0.0, (in_db - out_db) - reference);
        cut += insp_added_noise(ctx, l) * (1.0 - pow(10.0, -excess / 10.0));
    }
    return insp_budget_gain(cut, budget);
}

static void report_costs(hq_inspector_context_t *ctx)
{
    int n = ctx->layer_count(ctx);
    double reference = median_8bit_drop(ctx);
    for (int l = 0; l < n; l++) {
        hq_inspector_layer_t layer;
        hq_inspector_params_t params;
        if (!is_4bit(ctx, l) || !insp_layer(ctx, l, &layer) || !insp_params(ctx, l, &params))
            continue;
        hq_diag_number_t nums[6];
        int k = 0;
        insp_text_t msg = {.len = 0};
        insp_append(&msg, "Layer %s has 4-bit weights", layer.bare_name);
        const hq_tensor_t *w = float_kernel(ctx, l);
        int64_t cout = params.kernel_out;
        if (w && cout > 0 && hq_tensor_count(w) % cout == 0) {
            double s4 = weight_sqnr(w->data, hq_tensor_count(w), cout, 4);
            double s8 = weight_sqnr(w->data, hq_tensor_count(w), cout, 8);
            insp_append(&msg, ": weight SQNR %.1f dB at 4 bit against %.1f dB at 8 bit", s4, s8);
            nums[k++] = (hq_diag_number_t){"weight_sqnr_4bit_db", s4};
            nums[k++] = (hq_diag_number_t){"weight_sqnr_8bit_db", s8};
        }
        const hq_layer_noise_t *noise = ctx->layer_noise(ctx, l);
        double out_db, in_db;
        if (sqnr_drop(ctx, l, &out_db, &in_db)) {
            insp_append(&msg, "; measured output SQNR %.1f dB, %.1f dB %s its input's", out_db,
                        fabs(in_db - out_db), in_db >= out_db ? "below" : "above");
            nums[k++] = (hq_diag_number_t){"output_sqnr_db", out_db};
            nums[k++] = (hq_diag_number_t){"sqnr_drop_db", in_db - out_db};
            if (!isnan(reference)) {
                insp_append(&msg, " (the 8-bit weighted layers lose %.1f dB on median)", reference);
                nums[k++] = (hq_diag_number_t){"median_8bit_drop_db", reference};
            }
        }
        if (noise && noise->has_partial) {
            insp_append(&msg, "; %.1f dB at the outputs when only it is quantized",
                        noise->partial_db);
            nums[k++] = (hq_diag_number_t){"partial_sqnr_db", noise->partial_db};
        }
        insp_emit(ctx, HQ_DIAG_INFO, l, 0, nums, k, "%s", msg.buf);
    }
}

/* What decided the 4-bit share (the effective level of the archive). */
static const char *effective_text(double effective, char *buf, size_t size)
{
    if (effective == -1)
        snprintf(buf, size,
                 "implicit compression (the weights exceed the weight memory hq "
                 "models for the target)");
    else if (effective == -2)
        snprintf(buf, size, "an explicit auto_4bit_weights_ratio, which wins over the level");
    else if (effective >= 0)
        snprintf(buf, size, "level %d", (int)effective);
    else
        snprintf(buf, size, "not recorded in the archive");
    return buf;
}

static hq_status_t run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    (void)state;
    (void)err;
    double ratio = 0, effective = -1;
    if (!ctx->layer_scalar(ctx, HQ_PARAMS_QUANTIZED, -1, "compression/ratio_4bit:0", &ratio)) {
        /* older archives: count the 4-bit layers' weights ourselves */
        double all = 0, four = 0, bits;
        for (int l = 0; l < ctx->layer_count(ctx); l++) {
            hq_inspector_layer_t layer;
            if (!insp_layer(ctx, l, &layer) || !insp_traits(layer.type)->has_weights)
                continue;
            double count = (double)layer.param_count;
            all += count;
            if (ctx->layer_scalar(ctx, HQ_PARAMS_QUANTIZED, l, "weight_bits:0", &bits) && bits == 4)
                four += count;
        }
        ratio = all > 0 ? four / all : 0;
    }
    ctx->layer_scalar(ctx, HQ_PARAMS_QUANTIZED, -1, "compression/level:0", &effective);
    int explicit_level = script_level(ctx);
    ctx->log(ctx, "4-bit share %.4f, effective level %g, script level %d", ratio, effective,
             explicit_level);
    if (!(ratio > 0)) {
        if (explicit_level > 0)
            insp_emit(ctx, HQ_DIAG_INFO, -1, 0, NULL, 0,
                      "compression_level=%d is set in the model script, but no weight ended up "
                      "at 4 bit",
                      explicit_level);
        return HQ_OK;
    }
    hq_diag_number_t share[] = {{"ratio_4bit", ratio}, {"effective_level", effective}};
    insp_emit(ctx, HQ_DIAG_INFO, -1, 0, share, 2, "%.1f%% of the weights are compressed to 4 bit",
              ratio * 100.0);
    char why[160];
    if (explicit_level < 0) {
        /* expected_gain_db: what hq-diag's triage ranks by (docs/diag.md, "Triage") */
        double gain = expected_gain(ctx);
        hq_diag_number_t implicit[] = {{"ratio_4bit", ratio},
                                       {"effective_level", effective},
                                       {"expected_gain_db", gain}};
        insp_text_t cost = {.len = 0};
        if (!isnan(gain))
            insp_append(&cost, "; 8-bit weights are expected to raise the output SQNR by %.1f dB",
                        gain);
        insp_emit(ctx, HQ_DIAG_WARNING, -1, 0, implicit, 3,
                  "Implicit compression: %.1f%% of the weights are at 4 bit although the model "
                  "script sets no compression_level (decided by %s); 4-bit weights usually cost "
                  "accuracy%s",
                  ratio * 100.0, effective_text(effective, why, sizeof why), cost.buf);
        static const char reason[] =
            "turns off the implicit 4-bit compression (check that the model still fits the "
            "target's weight memory)";
        insp_recommend(ctx, HQ_DIAG_WARNING, -1, "model_optimization_flavor(compression_level=0)",
                       reason, "compression", HQ_GROUP_YES_NO, "Disable the implicit compression?",
                       HQ_ANSWER_YES);
        insp_recommend(ctx, HQ_DIAG_WARNING, -1,
                       "model_optimization_config(compression_params, auto_4bit_weights_ratio=0)",
                       reason, "compression", HQ_GROUP_YES_NO, NULL, HQ_ANSWER_YES);
    } else if (effective >= 0 && (int)effective == explicit_level) {
        insp_emit(ctx, HQ_DIAG_INFO, -1, 0, share, 2,
                  "compression_level=%d is set explicitly in the model script and was applied",
                  explicit_level);
    } else {
        insp_emit(ctx, HQ_DIAG_INFO, -1, 0, share, 2,
                  "compression_level=%d is set in the model script, but the effective compression "
                  "is %s",
                  explicit_level, effective_text(effective, why, sizeof why));
    }
    report_costs(ctx);
    return HQ_OK;
}

HQ_INSPECTOR_DEFINE("CompressionInspector",
                    "share of 4-bit weights, implicit compression and its measured cost",
                    HQ_PRIORITY_MEDIUM, HQ_NEEDS_QUANTIZED, run)
