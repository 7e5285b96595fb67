/* newer_minor.c — broken on purpose: built for ABI 1.99, a minor this hq-diag does not have yet
 * (it would call slots the host's context lacks). */
#include "../test_plugin.h"

static hq_status_t run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    (void)ctx;
    (void)state;
    (void)err;
    return HQ_OK;
}

static const hq_inspector_t descriptor = {.abi_version = HQ_INSPECTOR_ABI(1, 99),
                                          .struct_size = sizeof(hq_inspector_t),
                                          .name = "TestNewerMinor",
                                          .description = "",
                                          .priority = HQ_PRIORITY_LOW,
                                          .run = run};
HQ_INSPECTOR_EXPORT const hq_inspector_t *hq_inspector_entry(void);
const hq_inspector_t *hq_inspector_entry(void)
{
    return &descriptor;
}
