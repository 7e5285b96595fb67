/* deploy.h — the deploy stage on libhq's side: compiling a quantized archive into an integer-only
 * program (`.hqx`, run by libhqrt, include/hq/hqrt.h; format in docs/deploy.md) and estimating
 * its throughput on a target architecture with hq's documented cost model (`hq profile`).
 *
 * The throughput figures are ESTIMATES from hq's own model (docs/deploy.md "Cost model"), not
 * vendor data and not measurements; they exist so that a user sees what a 16-bit layer or 4-bit
 * weights cost relative to the rest of the network before choosing them. */
#ifndef HQ_DEPLOY_H
#define HQ_DEPLOY_H

#include <stdbool.h>
#include <stdint.h>

#include "hq/archive.h"
#include "hq/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- compile ------------------------------------------------------------------------------ */

/* Compiles a quantized archive (state quantized_model or compiled_model) into a `.hqx` program:
 * one op per layer, integer weights, biases, multipliers, shifts and LUTs copied from
 * `<net>.q.npz`, the activation arena planned. On success the archive holds the program as member
 * `<net>.hqx` and state compiled_model, and *program / *len receive a copy the caller owns
 * (free()); pass NULL for `program` when the copy is not wanted. A layer type the runtime cannot
 * run fails naming the layer; the archive is then unchanged. */
HQ_API hq_status_t hq_compile(hq_archive_t *archive, void **program, size_t *len, hq_error_t *err);

/* ---- profile / cost model ------------------------------------------------------------------- */

/* hq's per-architecture cost model (docs/deploy.md). Plain data. */
typedef struct hq_cost_model {
    const char *hw_arch;    /* "hailo8", ... (static string) */
    double macs_per_second; /* effective 8-bit x 8-bit MAC rate (peak x utilisation) */
    double cost_a16_w8;     /* MAC cost of 16-bit activations x 8/4-bit weights, in a8_w8 MACs */
    double cost_a8_w16;     /* 8-bit activations x 16-bit weights */
    double cost_a16_w16;    /* 16-bit x 16-bit */
    double cost_w4;         /* 4-bit weights x 8-bit activations (weights are unpacked: 1.0) */
    double weight_memory_bytes;     /* on-chip weight memory; weights beyond it stream per frame */
    double stream_bytes_per_second; /* off-chip bandwidth for streamed weights */
    double activation_bytes_per_second; /* activation traffic (read + write) per layer */
    double layer_overhead_seconds;      /* fixed cost per layer (scheduling, context) */
} hq_cost_model_t;

/* The model of an architecture; HQ_ERR_NOT_FOUND lists the known ones in err. */
HQ_API hq_status_t hq_cost_model_get(const char *hw_arch, hq_cost_model_t *model, hq_error_t *err);

/* One layer's estimate. */
typedef struct hq_layer_cost {
    int layer;          /* graph index */
    const char *name;   /* scoped name, owned by the graph */
    const char *type;   /* `.hn` type name (static) */
    char precision[16]; /* "a8_w8", "a16_w16", "a8_w4", "a8" (no weights) */
    int input_bits, weight_bits, output_bits;
    int64_t macs;             /* multiply-accumulates per frame (0 for data movement) */
    int64_t weight_bytes;     /* stored weight bytes (4-bit weights count half a byte) */
    int64_t activation_bytes; /* bytes read + written per frame */
    double compute_seconds;   /* macs * cost(precision) / macs_per_second */
    double memory_seconds;    /* activation traffic (+ streamed weights) */
    double seconds;           /* max(compute, memory) + overhead: the layer's estimate */
} hq_layer_cost_t;

/* A whole network's estimate. Owned by the caller (hq_profile_destroy). */
typedef struct hq_profile {
    hq_cost_model_t model;
    int layer_count;
    hq_layer_cost_t *layers; /* every non-input layer, topological order */
    int64_t total_macs;
    int64_t total_weight_bytes;
    bool weights_stream; /* the weights exceed weight_memory_bytes */
    double compute_seconds, memory_seconds, overhead_seconds;
    double seconds_per_frame; /* sum of the layers' estimates */
    double fps;               /* 1 / seconds_per_frame: an ESTIMATE */
} hq_profile_t;

/* Estimates a quantized (or compiled) archive on `hw_arch` (NULL: the archive's). Precision per
 * layer comes from the quantized params (activation_bits, weight_bits); an archive not yet
 * quantized is profiled as all a8_w8. `raise_to_16` (may be NULL) lists `raise_count` layer
 * names to profile as if they were a16_w16 — the HighPrecision inspector's "what does raising
 * these layers cost". The caller owns *out. */
HQ_API hq_status_t hq_profile(hq_archive_t *archive, const char *hw_arch,
                              const char *const *raise_to_16, int raise_count, hq_profile_t **out,
                              hq_error_t *err);
HQ_API void hq_profile_destroy(hq_profile_t *profile);

#ifdef __cplusplus
}
#endif
#endif
