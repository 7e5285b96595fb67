/* hw_arch.h — the target architectures hq knows (`--hw-arch`), in one table: each name with hq's
 * model of it, on-chip weight memory (which decides implicit 4-bit compression in `hq optimize`)
 * and the cost figures of `hq profile`. Internal to libhq; the table is in hw_arch.c. */
#ifndef HQI_GRAPH_HW_ARCH_H
#define HQI_GRAPH_HW_ARCH_H

#include "hq/common.h"
#include "hq/deploy.h"

/* The model of architecture `name`: *arch points into the static table (never freed).
 * HQ_ERR_NOT_FOUND for an unknown or NULL name, naming the known ones in err. */
hq_status_t hqi_hw_arch_find(const char *name, const hq_cost_model_t **arch, hq_error_t *err);

#endif
