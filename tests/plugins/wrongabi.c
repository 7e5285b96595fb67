/* wrongabi.c — broken on purpose: claims ABI version 99. */
#include "test_plugin.h"

static hq_status_t run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    (void)ctx;
    (void)state;
    (void)err;
    return HQ_OK;
}

static const hq_inspector_t descriptor = {
    99, sizeof(hq_inspector_t), "TestWrongAbi", "", HQ_PRIORITY_LOW, 0, NULL, run, NULL};
HQ_INSPECTOR_EXPORT const hq_inspector_t *hq_inspector_entry(void);
const hq_inspector_t *hq_inspector_entry(void)
{
    return &descriptor;
}
