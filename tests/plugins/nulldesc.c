/* nulldesc.c — broken on purpose: the entry returns NULL. */
#include "test_plugin.h"

HQ_INSPECTOR_EXPORT const hq_inspector_t *hq_inspector_entry(void);
const hq_inspector_t *hq_inspector_entry(void)
{
    return NULL;
}
