/* test_plugin.h — a one-line descriptor for the test plugins of tests/plugins/. */
#ifndef HQ_TEST_PLUGIN_H
#define HQ_TEST_PLUGIN_H

#include <hq/inspector.h>

#define TEST_PLUGIN(NAME, PRIORITY, NEEDS, RUN)                                                    \
    static const hq_inspector_t descriptor = {                                                     \
        .abi_version = HQ_INSPECTOR_ABI_VERSION,                                                   \
        .struct_size = sizeof(hq_inspector_t),                                                     \
        .name = NAME,                                                                              \
        .description = "test plugin " NAME,                                                        \
        .priority = PRIORITY,                                                                      \
        .needs = NEEDS,                                                                            \
        .run = RUN,                                                                                \
    };                                                                                             \
    HQ_INSPECTOR_EXPORT const hq_inspector_t *hq_inspector_entry(void);                            \
    const hq_inspector_t *hq_inspector_entry(void)                                                 \
    {                                                                                              \
        return &descriptor;                                                                        \
    }

#endif
