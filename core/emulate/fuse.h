/* fuse.h — inverted-residual blocks of the float emulator run as one fused step.
 *
 * A block is a depthwise convolution with the 1x1 convolution that expands its input (its
 * producer) and/or the 1x1 convolution that projects its output (its consumer), optionally with
 * the residual add the projection carries; or a squeeze-excitation's multiply ([H, W, C] by
 * [1, 1, C]) with the projection that reads it. Run unfused, the expanded tensor (megabytes per
 * sample on 224x224 mobile networks) goes through L3 or memory twice; fused, the block is computed
 * in strips of output rows: the expand rows a strip's depthwise windows need (with the halo rows,
 * kept from the previous strip), the depthwise rows, then their projection, so that the strip
 * stays in L2. Every value is computed by the same kernels with the same sums in the same order
 * as the unfused run (docs/emulation.md, "Fused blocks"), so the results are the same bits.
 *
 * The block's intermediate tensors are never written; the executor fuses only runs that tap no
 * layer (a tapped run, hq-diag's statistics and subset runs go layer by layer). */
#ifndef HQ_CORE_EMULATE_FUSE_H
#define HQ_CORE_EMULATE_FUSE_H

#include <stdint.h>

#include "emulate/emulator_internal.h"
#include "hq/graph.h"
#include "util/threadpool.h"

typedef struct hqi_fuse_plan hqi_fuse_plan_t;

/* Finds the blocks of a graph whose layers were prepared by the fast kernel set (`prepared` per
 * layer index; params per layer index). A block's layers are consecutive in the topological
 * order, its intermediates are read by nothing else and are no graph outputs. *out is NULL when
 * there is no block. The caller owns *out. */
hq_status_t hqi_fuse_plan_create(const hq_graph_t *graph, const hqi_emu_params_t *params,
                                 const hqi_emu_prepared_t *prepared, hqi_fuse_plan_t **out,
                                 hq_error_t *err);
void hqi_fuse_plan_destroy(hqi_fuse_plan_t *plan);

/* The block whose first layer is `layer` (-1: none), and that block's last layer and number of
 * layers (2 or 3). */
int hqi_fuse_block_at(const hqi_fuse_plan_t *plan, int layer);
/* Last layer of the block that `layer` belongs to (`layer` itself when in no block). */
int hqi_fuse_last_layer(const hqi_fuse_plan_t *plan, int layer);
int hqi_fuse_block_layers(const hqi_fuse_plan_t *plan, int block);
/* Scratch floats per thread the blocks need (the run allocates them itself). */
int64_t hqi_fuse_scratch_floats(const hqi_fuse_plan_t *plan);

/* Reserves the strip buffers of `sets` threads or lanes (at least the emulator's thread count);
 * not thread-safe: call before a run, never during one. */
hq_status_t hqi_fuse_reserve(hqi_fuse_plan_t *plan, int sets, hq_error_t *err);

/* Runs block `block` on `batch` samples: `input` and `input2` are the first layer's inputs
 * (input2 NULL when it has one), `addend` the projection's second input (NULL when it has none),
 * `output` the last layer's output. The pool's threads take strip buffers set .. set + threads - 1
 * (hqi_fuse_reserve): a lane running whole samples on its own (pool NULL) passes its own set, a
 * run split over the pool passes 0; so concurrent lanes never share a buffer. */
hq_status_t hqi_fuse_run(const hqi_fuse_plan_t *plan, int block, int64_t batch,
                         const float *input, const float *input2, const float *addend,
                         float *output, hqi_threadpool_t *pool, int set, hq_error_t *err);

#endif
