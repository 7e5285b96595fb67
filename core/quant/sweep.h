/* sweep.h — what the optimizer's trainers (AdaRound, adaround.c; finetune, finetune.c) share: the
 * quantized network run once, layer by layer in topological order over all the training samples
 * at once, with a hook before each layer that may train it (and change its integer params) from
 * the inputs the quantized network really computes; the input index a conv or deconv tap reads;
 * the checked kernel and geometry of a layer they train; a seeded generator. Internal to libhq;
 * prefix hqi_. */
#ifndef HQI_SWEEP_H
#define HQI_SWEEP_H

#include <stdbool.h>
#include <stdint.h>

#include "hq/dataset.h"
#include "hq/graph.h"
#include "hq/tensor.h"
#include "numerics/qmodel.h"

typedef struct hqi_sweep hqi_sweep_t;

/* Called before layer `layer` runs. It may read the codes of the layer's inputs
 * (hqi_sweep_input) and rewrite the integer params of q; *changed = true then rebuilds the
 * emulator so that this layer and every later one run the new params. */
typedef hq_status_t (*hqi_sweep_hook)(void *context, const hqi_sweep_t *sweep, int layer,
                                      bool *changed, hq_error_t *err);

/* Runs the quantized network of `q` over samples [0, samples) of `data` (its inputs matched by
 * `input_names` as in hqi_calibrate), calling `hook` before every non-input layer. Memory: the
 * codes of the tensors still to be read, for every sample. `threads` splits each layer's samples
 * (0: the default); `where` prefixes errors. */
hq_status_t hqi_sweep_run(const hq_graph_t *graph, const hq_npz_t *q, hq_dataset_t *data,
                          char *const *input_names, int64_t samples, int threads,
                          const char *where, hqi_sweep_hook hook, void *context,
                          hq_error_t *err);

/* The samples of the sweep. */
int64_t hqi_sweep_samples(const hqi_sweep_t *sweep);
/* A layer's integer params as the emulator decoded them (its output encoding: scale, zp, bits). */
const hqi_qlayer_t *hqi_sweep_layer(const hqi_sweep_t *sweep, int layer);
/* The values per sample of input k of `layer` (its producer's piece). */
int64_t hqi_sweep_input_size(const hqi_sweep_t *sweep, int layer, int k);
/* Dequantizes input k of `layer` for samples [first, first + count) into x
 * (count * hqi_sweep_input_size values). Only valid inside the hook of `layer`. */
void hqi_sweep_input(const hqi_sweep_t *sweep, int layer, int k, int64_t first, int64_t count,
                     float *x);
/* The input scale of input k of `layer` (its producer's output scale). */
double hqi_sweep_input_scale(const hqi_sweep_t *sweep, int layer, int k);

/* The input row (rows) or column a conv, depthwise or deconv tap `k` reads for output row or
 * column `o`, -1 when it reads padding; `extent` is the input's height or width. */
int64_t hqi_tap_source(const hq_layer_t *l, bool rows, int64_t o, int64_t k, int64_t extent);

/* The kernel of a conv, depthwise, deconv or dense layer as the trainers read it, and its
 * geometry. A dense layer is a 1x1 conv over rows: out_h rows (= in_h) of cin_pg values, in_w =
 * out_w = 1. The pointers are into the params sets, which the trainers rewrite in place. */
typedef struct hqi_kernel_layer {
    const float *w_float; /* fpo kernel:0 [kpg * cout] in kernel order */
    void *w_int;          /* q kernel:0, int8 (4- and 8-bit weights) or int16, [kpg * cout] */
    const float *w_scale; /* q kernel_scale:0 [cout] */
    int64_t *bias;        /* q bias:0 [cout], or NULL when q has none */
    bool dense;
    int64_t cout, cin_pg; /* kernel_out; kernel_in: input channels per group */
    int64_t groups, cout_pg;
    int64_t kh, kw, kpg; /* kpg = kh * kw * cin_pg: the values one output of a group reads */
    int64_t in_h, in_w, in_c, out_h, out_w;
} hqi_kernel_layer_t;

/* Fills *k for layer `l` with `weight_bits`-bit weights: false when l is not a conv, depthwise,
 * deconv or dense layer, the bits are not 4, 8 or 16, or the params or shapes are not those the
 * builder writes (fpo's float32 kernel, q's integer kernel of the same count, float32 scales and
 * an int64 bias per output channel, an NHWC input whose channels are whole groups). */
bool hqi_kernel_layer(const hq_layer_t *l, const hq_npz_t *fpo, const hq_npz_t *q, int weight_bits,
                      hqi_kernel_layer_t *k);

/* splitmix64: the optimizer's seeded draws. */
uint64_t hqi_splitmix64(uint64_t *state);

/* Monotonic seconds, for the log's timings. */
double hqi_seconds_now(void);

#endif
