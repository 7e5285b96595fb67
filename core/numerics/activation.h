/* activation.h — the float activation functions, defined once: the float reference kernels
 * (core/emulate/kernels_ref*.c) and their fast paths apply them, and the quantized model's builder
 * (qmodel_build.c) samples them into the lookup tables of sigmoid, silu, tanh, hardswish,
 * hardsigmoid, exp and gelu, so a table entry is exactly f of its input value. */
#ifndef HQ_CORE_NUMERICS_ACTIVATION_H
#define HQ_CORE_NUMERICS_ACTIVATION_H

#include <stdint.h>

#include "hq/graph.h"

/* A fused or standalone activation. */
typedef struct hqi_ref_act {
    hq_activation_t type; /* HQ_ACT_LINEAR when none */
    float alpha;          /* leaky slope; hardsigmoid alpha; clip minimum */
    float beta;           /* hardsigmoid beta; clip maximum */
    const float *slope;   /* prelu: one slope per channel (innermost axis), else ignored/NULL */
    int64_t slope_count;  /* prelu: number of slopes, 1 (shared) or the channel count */
} hqi_ref_act_t;

/* f(x) for an activation whose params were checked (emulate/kernels_ref.h hqi_ref_act_check);
 * `channel` selects the prelu slope (ignored otherwise). Shared so that every kernel and every
 * table uses the exact same formulas. */
float hqi_ref_activate(const hqi_ref_act_t *act, float x, int64_t channel);

#endif
