/* failing.c — "TestFailing": emits a warning, then its run fails. */
#include <stdio.h>

#include "test_plugin.h"

static hq_status_t run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    (void)state;
    ctx->diagnosticf(ctx, HQ_DIAG_WARNING, -1, "Finding made before the failure");
    err->status = HQ_ERR_INVALID;
    snprintf(err->message, sizeof err->message, "deliberate test failure");
    return HQ_ERR_INVALID;
}

TEST_PLUGIN("TestFailing", HQ_PRIORITY_MEDIUM, 0, run)
