/* duplicate.c — broken on purpose: takes the name of findings.c ("TestFindings"). */
#include "test_plugin.h"

static hq_status_t run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    (void)state;
    (void)err;
    ctx->diagnosticf(ctx, HQ_DIAG_ERROR, -1, "the duplicate ran");
    return HQ_OK;
}

TEST_PLUGIN("TestFindings", HQ_PRIORITY_LOW, 0, run)
