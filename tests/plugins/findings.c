/* findings.c — "TestFindings": one finding of each level and a yes/no recommendation group
 * (default yes) whose line contradicts a line of the test archives' scripts. */
#include "test_plugin.h"

static hq_status_t run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    (void)state;
    int conv1 = ctx->find_layer(ctx, "conv1");
    ctx->diagnosticf(ctx, HQ_DIAG_INFO, -1, "Network %s has %d layers", ctx->net_name(ctx),
                     ctx->layer_count(ctx));
    hq_diag_number_t numbers[] = {{"sqnr_db", 7.5}, {"threshold_db", 10}};
    hq_diagnostic_t warning = {.struct_size = sizeof warning,
                               .level = HQ_DIAG_WARNING,
                               .layer = conv1,
                               .message = "Layer conv1 is a test warning",
                               .numbers = numbers,
                               .number_count = 2};
    ctx->diagnostic(ctx, &warning);
    hq_inspector_layer_t layer = {.struct_size = sizeof layer};
    ctx->diagnosticf(ctx, HQ_DIAG_ERROR, conv1, "Test error on layer %s",
                     ctx->layer_info(ctx, conv1, &layer) ? layer.bare_name : "?");
    hq_recommendation_t rec = {.struct_size = sizeof rec,
                               .level = HQ_DIAG_WARNING,
                               .layer = conv1,
                               .line = "quantization_param(conv1, precision_mode=a16_w16)",
                               .reason = "conv1 is the noisiest layer (test)",
                               .group = "precision",
                               .group_kind = HQ_GROUP_YES_NO,
                               .question = "Use 16-bit precision for conv1?",
                               .default_answer = HQ_ANSWER_YES};
    return ctx->recommend(ctx, &rec, err);
}

TEST_PLUGIN("TestFindings", HQ_PRIORITY_HIGH, 0, run)
