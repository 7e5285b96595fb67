/* layer_gain.c — "TestLayerGain": a per-layer precision fix with a large expected output-SQNR
 * gain (50 dB) at warning level, as HighPrecisionInspector reports one; the triage test ranks it
 * against a network-wide fix (CompressionInspector's) whose expected gain is smaller. */
#include "test_plugin.h"

static hq_status_t run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    (void)state;
    int conv1 = ctx->find_layer(ctx, "conv1");
    hq_diag_number_t numbers[] = {{"expected_gain_db", 50.0}};
    hq_diagnostic_t warning = {.struct_size = sizeof warning,
                               .level = HQ_DIAG_WARNING,
                               .layer = conv1,
                               .message = "conv1 at a16_w16 is expected to gain 50 dB (test)",
                               .numbers = numbers,
                               .number_count = 1};
    ctx->diagnostic(ctx, &warning);
    hq_recommendation_t rec = {.struct_size = sizeof rec,
                               .level = HQ_DIAG_WARNING,
                               .layer = conv1,
                               .line = "quantization_param(conv1, precision_mode=a16_w16)",
                               .reason = "test",
                               .group = "precision",
                               .group_kind = HQ_GROUP_YES_NO,
                               .question = "Use 16-bit precision for conv1?",
                               .default_answer = HQ_ANSWER_NO};
    return ctx->recommend(ctx, &rec, err);
}

TEST_PLUGIN("TestLayerGain", HQ_PRIORITY_HIGH, 0, run)
