/* emulate.h — the float graph executor: runs a finalized graph on NHWC float32 batches.
 *
 * An emulator is built once from a graph and a params set (checked at create time: every layer's
 * tensors present with the shapes its params imply), then runs batches. Activations live in a
 * small set of reused buffers (a liveness-based plan made at create time): a buffer is reused as
 * soon as the last consumer of the activation it holds has run, so memory does not grow with the
 * depth of the network, and nothing keeps the activations of a whole dataset. A tap callback sees
 * every layer's output right after it is computed. */
#ifndef HQ_EMULATE_H
#define HQ_EMULATE_H

#include <stdint.h>

#include "hq/archive.h"
#include "hq/common.h"
#include "hq/dataset.h"
#include "hq/graph.h"
#include "hq/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Which params an emulator runs with. Values are append-only. */
typedef enum hq_target {
    HQ_TARGET_NATIVE = 0,   /* "native": the archive's <net>.npz, the network as exported */
    HQ_TARGET_FP_OPTIMIZED, /* "fp_optimized": <net>.fpo.npz (after the model script) */
    HQ_TARGET_QUANTIZED,    /* "quantized": <net>.q.npz, integer kernels only (docs/numerics.md) */
    HQ_TARGET_COUNT
} hq_target_t;

/* "native", "fp_optimized"; NULL when out of range. Static strings. */
HQ_API const char *hq_target_name(hq_target_t target);
/* Reverse lookup; HQ_ERR_NOT_FOUND for an unknown name. */
HQ_API hq_status_t hq_target_from_name(const char *name, hq_target_t *target);

typedef struct hq_emulator hq_emulator_t;

/* Called with each layer's output right after the layer ran: `layer` is the layer index in the
 * graph, `port` the output piece (0 except for a feature_splitter, which reports each piece),
 * `shape` the shape with dims[0] = the batch, `data` the dense NHWC values, valid only during
 * the call. A status other than HQ_OK stops the run, which returns that status (the callback
 * fills `err` itself). */
typedef hq_status_t (*hq_emulator_tap_fn)(void *user, int layer, int port, const hq_shape_t *shape,
                                          const float *data, hq_error_t *err);

/* Called once per batch by hq_emulator_run_dataset: samples [first, first + count) have been
 * run; outputs[k] holds count samples of output k (hq_graph_outputs order), valid only during
 * the call. A status other than HQ_OK stops the run. */
typedef hq_status_t (*hq_emulator_batch_fn)(void *user, int64_t first, int64_t count,
                                            const float *const *outputs, hq_error_t *err);

/* Builds an emulator for a finalized graph with `params` (keys "<net>/<layer>/kernel:0",
 * "bias:0", "gamma:0", "beta:0", "moving_mean:0", "moving_variance:0", "prelu_slope:0",
 * "const:0"; float32, float16 or float64). `name` (a file name) prefixes error messages.
 * Fails, naming the layer and the key, when a tensor is missing or has the wrong shape, and
 * naming the layer when its type cannot be emulated. The graph and params are borrowed: they
 * must outlive the emulator and not change while it lives. The caller owns *out. */
HQ_API hq_status_t hq_emulator_create(const hq_graph_t *graph, const hq_npz_t *params,
                                      hq_target_t target, const char *name, hq_emulator_t **out,
                                      hq_error_t *err);
/* The same with the graph and the params of `target` taken from an archive (HQ_ERR_NOT_FOUND,
 * naming the missing member, when the archive has no params of that kind: fp_optimized needs
 * `hq optimize` first). The archive must outlive the emulator. The caller owns *out. */
HQ_API hq_status_t hq_emulator_create_from_archive(hq_archive_t *archive, hq_target_t target,
                                                   hq_emulator_t **out, hq_error_t *err);
/* Frees the emulator and its buffers. Accepts NULL. */
HQ_API void hq_emulator_destroy(hq_emulator_t *emulator);

HQ_API const hq_graph_t *hq_emulator_graph(const hq_emulator_t *emulator);
HQ_API hq_target_t hq_emulator_target(const hq_emulator_t *emulator);
/* Floats per sample of input i (hq_graph_inputs order) / output k (hq_graph_outputs order);
 * 0 when out of range. */
HQ_API int64_t hq_emulator_input_size(const hq_emulator_t *emulator, int input);
HQ_API int64_t hq_emulator_output_size(const hq_emulator_t *emulator, int output);

/* Bytes of activation buffers a run of `batch` samples holds at its peak (the planned buffers
 * plus the kernels' planned scratch at the current thread count; inputs and outputs passed by
 * the caller are not counted). 0 when batch < 1 or on overflow. */
HQ_API int64_t hq_emulator_peak_bytes(const hq_emulator_t *emulator, int64_t batch);
/* The scratch part of hq_emulator_peak_bytes. */
HQ_API int64_t hq_emulator_scratch_bytes(const hq_emulator_t *emulator, int64_t batch);

/* Threads the kernels use (the caller's thread included): 1 .. 256, or 0 for the default
 * (HQ_THREADS when set, else the CPUs the process may run on). Results do not depend on it
 * (bit for bit). Takes effect at the next run; not while a run is in progress. */
HQ_API hq_status_t hq_emulator_set_threads(hq_emulator_t *emulator, int threads, hq_error_t *err);
HQ_API int hq_emulator_threads(const hq_emulator_t *emulator);

/* Wall-clock seconds spent in the kernels of layers of `type` over all runs since create or the
 * last reset, and in *calls (may be NULL) how many layer runs that was. 0 when out of range. */
/* Which kernels run: "reference", or "fast (avx512)" / "fast (avx2+fma)" / "fast (portable)".
 * Static string. */
HQ_API const char *hq_emulator_kernels(const hq_emulator_t *emulator);

HQ_API double hq_emulator_type_seconds(const hq_emulator_t *emulator, hq_layer_type_t type,
                                       int64_t *calls);
HQ_API void hq_emulator_reset_stats(hq_emulator_t *emulator);

/* Runs one batch of `batch` >= 1 samples. inputs[i] holds batch * hq_emulator_input_size(i)
 * floats of input i (NHWC, hq_graph_inputs order). `outputs` is NULL or an array of one pointer
 * per output, each NULL or caller-owned room for batch * hq_emulator_output_size(k) floats.
 * `tap` may be NULL. A failing kernel is reported naming the layer. */
HQ_API hq_status_t hq_emulator_run(hq_emulator_t *emulator, int64_t batch,
                                   const float *const *inputs, float *const *outputs,
                                   hq_emulator_tap_fn tap, void *user, hq_error_t *err);

/* Where hq_emulator_run_dataset reports its progress (stage "emulation", samples done of the
 * dataset's count, after every batch); NULL (the default) for none. Takes effect at the next
 * run. */
HQ_API void hq_emulator_set_progress(hq_emulator_t *emulator, hq_progress_fn progress, void *user);

/* Runs every sample of `dataset` in batches of at most `batch_size`, calling `tap` (may be NULL)
 * for every layer of every batch and `on_batch` (may be NULL) with each batch's outputs.
 * Dataset inputs are matched to the graph's input layers (a dataset opened without a graph
 * feeds a single-input graph); a per-sample size mismatch names the input layer. */
HQ_API hq_status_t hq_emulator_run_dataset(hq_emulator_t *emulator, hq_dataset_t *dataset,
                                           int64_t batch_size, hq_emulator_batch_fn on_batch,
                                           hq_emulator_tap_fn tap, void *user, hq_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
