/* clipping.c — "TestClipping": a none/warning/all group (one warning line, one info line,
 * default warning) and a yes/no group whose default is no. */
#include "test_plugin.h"

static hq_status_t run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    (void)state;
    hq_recommendation_t rec = {
        .struct_size = sizeof rec,
        .level = HQ_DIAG_WARNING,
        .layer = ctx->find_layer(ctx, "conv1"),
        .line = "pre_quantization_optimization(activation_clipping, layers=[conv1], mode=manual, "
                "clipping_values=[0, 4.5])",
        .reason = "conv1 has a long sparse high tail (test)",
        .group = "clipping",
        .group_kind = HQ_GROUP_LEVELS,
        .question = "Clip the activation ranges?",
        .default_answer = HQ_ACCEPT_WARNING};
    hq_status_t st = ctx->recommend(ctx, &rec, err);
    rec.level = HQ_DIAG_INFO;
    rec.layer = ctx->find_layer(ctx, "conv2");
    rec.line = "pre_quantization_optimization(activation_clipping, layers=[conv2], mode=manual, "
               "clipping_values=[0, 2])";
    rec.reason = "conv2 has a short sparse tail (test)";
    if (st == HQ_OK)
        st = ctx->recommend(ctx, &rec, err);
    hq_recommendation_t flavor = {.struct_size = sizeof flavor,
                                  .level = HQ_DIAG_WARNING,
                                  .layer = -1,
                                  .line = "model_optimization_flavor(compression_level=0)",
                                  .reason = "implicit compression (test)",
                                  .group = "compression",
                                  .group_kind = HQ_GROUP_YES_NO,
                                  .default_answer = HQ_ANSWER_NO};
    if (st == HQ_OK)
        st = ctx->recommend(ctx, &flavor, err);
    /* a line that is not one command is refused */
    hq_error_t refused = {0};
    hq_recommendation_t bad = flavor;
    bad.line = "not a command(";
    if (st == HQ_OK && ctx->recommend(ctx, &bad, &refused) == HQ_OK)
        ctx->diagnosticf(ctx, HQ_DIAG_ERROR, -1, "a malformed line was accepted");
    /* and so is a line hq optimize would refuse: a misspelt key */
    bad.line = "model_optimization_flavor(compresion_level=0)";
    if (st == HQ_OK && ctx->recommend(ctx, &bad, &refused) == HQ_OK)
        ctx->diagnosticf(ctx, HQ_DIAG_ERROR, -1, "a misspelt line was accepted");
    return st;
}

TEST_PLUGIN("TestClipping", HQ_PRIORITY_LOW, 0, run)
