/* quiet.c — "TestQuiet": one info finding, nothing else (a run with it alone exits 0). */
#include "test_plugin.h"

static hq_status_t run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    (void)state;
    (void)err;
    ctx->log(ctx, "quiet plugin ran (%s)", ctx->interactive(ctx) ? "interactive" : "batch");
    ctx->diagnosticf(ctx, HQ_DIAG_INFO, -1, "All quiet on %s", ctx->hw_arch(ctx));
    return HQ_OK;
}

TEST_PLUGIN("TestQuiet", HQ_PRIORITY_MEDIUM, 0, run)
