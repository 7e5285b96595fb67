/* qemulator.h — the quantized target of the emulator: float inputs are quantized with the input
 * layers' encodings, every layer runs the integer reference kernels of core/runtime/ on uint8 /
 * uint16 codes, and outputs and taps are dequantized. Threads split a batch by samples only
 * (hqi_qemu_set_threads): results are the same bytes at any thread count. emulator.c dispatches
 * here for HQ_TARGET_QUANTIZED. */
#ifndef HQ_CORE_EMULATE_QEMULATOR_H
#define HQ_CORE_EMULATE_QEMULATOR_H

#include <stdint.h>

#include "hq/emulate.h"
#include "numerics/qmodel.h"

typedef struct hqi_qemu hqi_qemu_t;

/* Decodes `qparams` (a q.npz) for `graph` and checks that every layer can run quantized (fails
 * naming the layer otherwise). Graph and params are borrowed and must outlive the emulator.
 * The caller owns *out (hqi_qemu_destroy). */
hq_status_t hqi_qemu_create(const hq_graph_t *graph, const hq_npz_t *qparams, const char *name,
                            hqi_qemu_t **out, hq_error_t *err);
void hqi_qemu_destroy(hqi_qemu_t *qemu);

/* hq_emulator_run for the quantized target (same contract: NHWC floats in and out; taps get the
 * dequantized values of every layer's output codes). */
hq_status_t hqi_qemu_run(hqi_qemu_t *qemu, int64_t batch, const float *const *inputs,
                         float *const *outputs, hq_emulator_tap_fn tap, void *user,
                         hq_error_t *err);

/* Threads the samples of a batch are split over (0: HQ_THREADS or the available cores, the
 * default). Each layer's kernel runs on disjoint slices of samples, each slice computing exactly
 * the codes of a whole-batch call, so results are the same bytes for any thread count. */
hq_status_t hqi_qemu_set_threads(hqi_qemu_t *qemu, int threads, hq_error_t *err);

/* Per layer type accumulators (HQ_LAYER_TYPE_COUNT entries each, borrowed: they must outlive the
 * emulator) that every hqi_qemu_run adds each layer's wall-clock time (the whole layer call, its
 * threads included; input layers not) and one run to. NULL (the default): nothing is timed.
 * hqi_qemu_run_layer alone is never timed. */
void hqi_qemu_time_layers(hqi_qemu_t *qemu, double *type_seconds, int64_t *type_calls);

/* The decoded integer params of a layer (NULL when out of range). Owned by the emulator. */
const hqi_qlayer_t *hqi_qemu_layer(const hqi_qemu_t *qemu, int layer);

/* Runs ONE layer on codes: inputs[k] holds batch samples of input k (its producer's encoding),
 * outputs[p] room for batch samples of piece p (uint8_t or uint16_t by the layer's bits).
 * Input layers quantize nothing here (their codes are their output). Used by noise analysis. */
hq_status_t hqi_qemu_run_layer(const hqi_qemu_t *qemu, int layer, int64_t batch,
                               const void *const *inputs, void *const *outputs, hq_error_t *err);

/* Quantizes / dequantizes `count` values with a layer's output encoding. */
void hqi_qemu_quantize(const hqi_qlayer_t *q, const float *x, int64_t count, void *codes);
void hqi_qemu_dequantize(const hqi_qlayer_t *q, const void *codes, int64_t count, float *x);

#endif
