/* precision.h — per-layer bit widths (precision.c): precision-mode names and their propagation
 * through the graph. Internal to libhq; prefix hqi_. */
#ifndef HQI_PRECISION_H
#define HQI_PRECISION_H

#include <stdbool.h>

#include "hq/graph.h"
#include "numerics/qmodel.h"
#include "quant/quant_util.h"

/* What the script asked for one layer; 0 = not asked. `line` is the script line (0: none). */
typedef struct hqi_precision_request {
    int in_bits;     /* 8 or 16 */
    int weight_bits; /* 4, 8 or 16 */
    int out_bits;    /* 8 or 16 (the mode's third part, else in_bits) */
    int line;
    char mode[16]; /* the mode as written */
} hqi_precision_request_t;

/* Parses "a{in}_w{w}[_a{out}]" (in, out: 8 or 16; w: 4, 8 or 16). HQ_ERR_INVALID otherwise. */
hq_status_t hqi_precision_parse(const char *mode, hqi_precision_request_t *out);
/* The canonical name of a mode: "a8_w8" when in == out, else "a8_w8_a16". For layers without
 * weights pass weight_bits 0: the name then uses the input width for w. */
void hqi_precision_name(int in_bits, int weight_bits, int out_bits, char name[16]);

/* Chooses input/weight/output bits of every layer of a finalized graph from the requests (one per
 * layer, indexed like the graph): defaults a8_w8, 16 bit spreads through pass-through layers and
 * across edges (a tensor has one width), each raised layer logged with the reason, and a script
 * whose requests contradict each other refused (HQ_ERR_INVALID) with the chain of layers named. */
hq_status_t hqi_precision_propagate(const hq_graph_t *graph,
                                    const hqi_precision_request_t *requests,
                                    hqi_layer_quant_t *decisions, const hqi_logger_t *logger,
                                    hq_error_t *err);

#endif
