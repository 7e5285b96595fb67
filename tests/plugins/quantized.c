/* quantized.c — "TestQuantized": needs a quantized archive; reports the noise it finds. */
#include "test_plugin.h"

static hq_status_t run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    (void)state;
    (void)err;
    int with_noise = 0;
    for (int l = 0; l < ctx->layer_count(ctx); l++)
        with_noise += ctx->layer_noise(ctx, l) != NULL;
    ctx->diagnosticf(ctx, HQ_DIAG_INFO, -1, "Quantized model, %d layer(s) with SQNR", with_noise);
    return HQ_OK;
}

TEST_PLUGIN("TestQuantized", HQ_PRIORITY_LOW, HQ_NEEDS_QUANTIZED, run)
