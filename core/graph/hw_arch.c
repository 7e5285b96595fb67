/* hw_arch.c — the one table of target architectures: hq's model of each, round figures derived
 * from public peak TOPS and a fixed utilisation, not vendor data (docs/deploy.md "Cost model",
 * docs/quantizer.md for the weight memory). They rank layers and decide compression; they do not
 * predict a device's frame rate.
 *
 * Peak int8 TOPS / 2 = MAC/s, times 30 % utilisation; 16-bit MACs cost 2x (one 16-bit operand)
 * or 4x (both); 4-bit weights cost the same MACs but half the weight bytes. Weight memory: round
 * numbers chosen so that small and medium CNNs fit and large detectors do not. */
#include <stdio.h>
#include <string.h>

#include "graph/hw_arch.h"
#include "util/util.h"

#define MIB(n) ((double)((int64_t)(n) << 20))

static const hq_cost_model_t arch_table[] = {
    {"hailo8", 26e12 / 2 * 0.3, 2, 2, 4, 1, MIB(16), 4e9, 200e9, 2e-6},
    {"hailo8r", 26e12 / 2 * 0.3, 2, 2, 4, 1, MIB(16), 4e9, 200e9, 2e-6},
    {"hailo8l", 13e12 / 2 * 0.3, 2, 2, 4, 1, MIB(8), 4e9, 100e9, 2e-6},
    {"hailo15h", 20e12 / 2 * 0.3, 2, 2, 4, 1, MIB(16), 8e9, 150e9, 2e-6},
    {"hailo15m", 7e12 / 2 * 0.3, 2, 2, 4, 1, MIB(12), 8e9, 100e9, 2e-6},
    {"hailo15l", 3e12 / 2 * 0.3, 2, 2, 4, 1, MIB(8), 8e9, 60e9, 2e-6},
    {"hailo10h", 40e12 / 2 * 0.3, 2, 2, 4, 1, MIB(32), 16e9, 200e9, 2e-6},
};
enum { ARCH_COUNT = sizeof arch_table / sizeof arch_table[0] };

hq_status_t hqi_hw_arch_find(const char *name, const hq_cost_model_t **arch, hq_error_t *err)
{
    for (int i = 0; i < ARCH_COUNT; i++)
        if (name && strcmp(name, arch_table[i].hw_arch) == 0) {
            *arch = &arch_table[i];
            return HQ_OK;
        }
    char known[256];
    size_t used = 0;
    for (int i = 0; i < ARCH_COUNT && used < sizeof known; i++)
        used += (size_t)snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "",
                                 arch_table[i].hw_arch);
    return hqi_error(err, HQ_ERR_NOT_FOUND, "unknown hw_arch '%s' (known: %s)",
                     name ? name : "(none)", known);
}
