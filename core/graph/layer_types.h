/* layer_types.h — libhq's internal view of the layer type table (core/graph/layer_types.c):
 * an inline accessor for property checks, and the graph's own per-type facts (`.hn` param keys,
 * stored shapes) kept in the same row as the public traits. */
#ifndef HQI_LAYER_TYPES_H
#define HQI_LAYER_TYPES_H

#include <stdbool.h>

#include "hq/layer_types.h"

/* One row per layer type: the public traits first, then what only the graph reads. */
typedef struct hqi_layer_type_row {
    hq_layer_type_traits_t traits;
    unsigned param_keys;  /* HQI_P_* `.hn` params keys the type reads and writes (graph_internal.h),
                           * without HQI_P_ACTIVATION, which traits.fused_activation decides */
    bool shape_is_stored; /* the output shape is given, not inferred (input, resize, ...) */
} hqi_layer_type_row_t;

/* Indexed by type; row HQ_LAYER_TYPE_COUNT is an all-false row (name NULL, no inputs, no ew op, no
 * integer form) that stands for any out-of-range type. */
extern const hqi_layer_type_row_t hqi_layer_type_rows[HQ_LAYER_TYPE_COUNT + 1];

/* The row of `type`; the all-false row when out of range. Never NULL. */
static inline const hqi_layer_type_row_t *hqi_layer_type_row(hq_layer_type_t type)
{
    return &hqi_layer_type_rows[(unsigned)type < HQ_LAYER_TYPE_COUNT ? (unsigned)type
                                                                     : HQ_LAYER_TYPE_COUNT];
}

/* The traits of `type` for property checks (`hqi_layer_traits(l->type)->has_weights`); the
 * all-false row when out of range. Never NULL. */
static inline const hq_layer_type_traits_t *hqi_layer_traits(hq_layer_type_t type)
{
    return &hqi_layer_type_row(type)->traits;
}

#endif
