/* nosymbol.c — broken on purpose: exports a descriptor under the wrong symbol name. */
#include "test_plugin.h"

static hq_status_t run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    (void)ctx;
    (void)state;
    (void)err;
    return HQ_OK;
}

static const hq_inspector_t descriptor = {HQ_INSPECTOR_ABI_VERSION,
                                          sizeof(hq_inspector_t),
                                          "TestNoSymbol",
                                          "",
                                          HQ_PRIORITY_LOW,
                                          0,
                                          NULL,
                                          run,
                                          NULL};
HQ_INSPECTOR_EXPORT const hq_inspector_t *inspector_entry(void);
const hq_inspector_t *inspector_entry(void)
{
    return &descriptor;
}
