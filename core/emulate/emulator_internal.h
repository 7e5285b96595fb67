/* emulator_internal.h — the interface between the graph executor (emulator.c)
 * and the per-layer kernels it dispatches to. A kernel set is a table indexed
 * by hq_layer_type_t; the reference set (emulator_ops.c) runs the scalar
 * kernels of kernels_ref.h, and a faster set can replace any slot without
 * touching the executor. */
#ifndef HQ_CORE_EMULATE_EMULATOR_INTERNAL_H
#define HQ_CORE_EMULATE_EMULATOR_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "hq/common.h"
#include "hq/emulate.h"
#include "hq/graph.h"
#include "emulate/kernels_ref.h"
#include "graph/layer_types.h"
#include "hq/tensor.h"
#include "util/threadpool.h"

/* A layer's tensors from the params set, float32, checked by the executor at
 * create time against the shapes the layer's params imply. NULL when the layer
 * has no such tensor. */
typedef struct hqi_emu_params {
    const float *kernel;   /* ".../kernel:0": [kh, kw, cin_per_group, cout], dense
                              [cin, cout] */
    const float *bias;     /* ".../bias:0": [cout] */
    const float *gamma;    /* batch_norm, layer_norm ".../gamma:0": [C] */
    const float *beta;     /* ".../beta:0": [C] */
    const float *mean;     /* ".../moving_mean:0": [C] */
    const float *variance; /* ".../moving_variance:0": [C] */
    const float *slope;    /* prelu ".../prelu_slope:0": 1 or C values */
    int64_t slope_count;
    const float *constant; /* const_input ".../const:0": one sample (broadcast
                              over the batch) */
    int64_t constant_count;
} hqi_emu_params_t;

/* Everything a layer kernel gets for one batch. Shapes carry the batch in
 * dims[0]. Outputs are dense buffers of exactly their shape and never overlap
 * the inputs. */
typedef struct hqi_emu_call {
    const hq_layer_t *layer;        /* type, params */
    const hqi_emu_params_t *params; /* the layer's tensors */
    int64_t batch;                  /* samples in this run, >= 1 */
    int input_count;                /* input_layer: 1, the caller's data */
    const hq_shape_t *input_shapes;
    const float *const *inputs;
    int output_count; /* hq_layer_port_count */
    const hq_shape_t *output_shapes;
    float *const *outputs;
    /* Appended for kernel sets that prepare layers and use threads (kernels_fast_ops.c);
     * the reference kernels ignore them. */
    const void *prepared;   /* the layer's hqi_emu_prepared_t.state, NULL when none */
    float *scratch;         /* planned scratch holding at least the floats the layer's
                               prepare asked for at this batch and thread count; NULL if 0 */
    hqi_threadpool_t *pool; /* the emulator's threads; NULL = run serially */
} hqi_emu_call_t;

/* The layer's fused activation (type, alpha/beta, PReLU slopes) and its kernel window (sizes,
 * strides, pads; dilation only when `dilated`), as both kernel sets take them. */
hqi_ref_act_t hqi_emu_layer_act(const hqi_emu_call_t *call);
hqi_ref_window_t hqi_emu_layer_window(const hq_layer_params_t *p, bool dilated);

/* Computes the layer's outputs. On failure fills a one-line message (the
 * executor prefixes the layer name). */
typedef hq_status_t (*hqi_emu_kernel_fn)(const hqi_emu_call_t *call, hq_error_t *err);

/* The reference kernel set: one entry per layer type; NULL = the type cannot be
 * emulated. */
extern const hqi_emu_kernel_fn hqi_emu_ref_kernels[HQ_LAYER_TYPE_COUNT];

/* What a kernel set precomputes for one layer at create time (packed weights, folded scales)
 * and the scratch its kernel needs per run. The executor plans one scratch buffer for the
 * largest need of any layer (layers run one at a time) and counts it in the peak bytes. */
typedef struct hqi_emu_prepared {
    void *state; /* owned by the emulator, freed with release; may be NULL */
    void (*release)(void *state);
    int64_t scratch_per_thread; /* floats of scratch per thread of the pool */
    int64_t scratch_per_sample; /* plus floats per sample of the batch */
} hqi_emu_prepared_t;

/* Fills *out (zeroed by the caller) for a layer whose params were bound and checked. On
 * failure fills a one-line message (the executor prefixes the layer name). */
typedef hq_status_t (*hqi_emu_prepare_fn)(const hq_layer_t *layer, const hqi_emu_params_t *params,
                                          hqi_emu_prepared_t *out, hq_error_t *err);

/* A kernel set: what the executor dispatches to. */
typedef struct hqi_emu_kernel_set {
    const char *name;                  /* "reference", "fast" */
    const hqi_emu_kernel_fn *run;      /* HQ_LAYER_TYPE_COUNT entries; NULL = not supported */
    const hqi_emu_prepare_fn *prepare; /* NULL or HQ_LAYER_TYPE_COUNT entries (NULL = nothing) */
} hqi_emu_kernel_set_t;

/* The reference set (hqi_emu_ref_kernels, nothing prepared) and the fast set (kernels_fast*.c:
 * packed-GEMM convolutions, AVX-512 or AVX2+FMA when the CPU has them, threads; the reference
 * kernel for every type it does not speed up). Static, never NULL. */
const hqi_emu_kernel_set_t *hqi_emu_ref_set(void);
const hqi_emu_kernel_set_t *hqi_emu_fast_set(void);
/* "fast (avx512)", "fast (avx2+fma)" or "fast (portable)": the fast set with the ISA it runs. */
const char *hqi_emu_fast_description(void);

/* hq_emulator_create with another kernel set (HQ_LAYER_TYPE_COUNT entries, NULL
 * = type not supported, refused at create time naming the layer). The table
 * must outlive the emulator. */
hq_status_t hqi_emulator_create_with_kernels(const hq_graph_t *graph, const hq_npz_t *params,
                                             hq_target_t target, const char *name,
                                             const hqi_emu_kernel_fn *kernels, hq_emulator_t **out,
                                             hq_error_t *err);
/* The same with a whole kernel set (which must outlive the emulator). hq_emulator_create uses
 * the fast set, or the reference set when the environment has HQ_EMULATE_KERNELS=reference. */
hq_status_t hqi_emulator_create_with_set(const hq_graph_t *graph, const hq_npz_t *params,
                                         hq_target_t target, const char *name,
                                         const hqi_emu_kernel_set_t *set, hq_emulator_t **out,
                                         hq_error_t *err);

/* A run of part of the network (hq_analyze_noise's "only this layer quantized" runs, where
 * everything upstream of the layer is known from a float run of the same batch). Per layer
 * (mode[layer index]): COMPUTE runs its kernel as hq_emulator_run does; PRESET copies
 * preset(user, layer, port) (batch x the port's values per sample) into its output instead, no
 * tap; SKIP leaves it out (nothing computed later may read it, and it is no graph output).
 * Input layers must be COMPUTE (their values are the caller's inputs). Float targets only. */
typedef enum { HQI_SUBSET_COMPUTE = 0, HQI_SUBSET_PRESET, HQI_SUBSET_SKIP } hqi_subset_mode_t;
typedef struct hqi_subset {
    const unsigned char *mode; /* hqi_subset_mode_t per layer index */
    const float *(*preset)(void *user, int layer, int port);
    void *user;
} hqi_subset_t;
hq_status_t hqi_emulator_run_subset(hq_emulator_t *emulator, int64_t batch,
                                    const float *const *inputs, float *const *outputs,
                                    hq_emulator_tap_fn tap, void *user, const hqi_subset_t *subset,
                                    hq_error_t *err);

/* ---- the executor's own state, shared by its files: emulator.c (create, destroy, the
 * accessors), emulator_params.c (binding and checking each layer's tensors, the kernel set's
 * prepare), emulator_plan.c (the buffer plan and how a run is laid out over passes, lanes and
 * scratch) and emulator_run.c (running batches and datasets). Nothing outside them reads it. */

/* One activation: piece `port` of layer `layer`. */
typedef struct hqi_emu_value {
    int layer;
    int port;
    int64_t size;  /* floats per sample */
    int last_step; /* topological position of the last layer that reads it */
    int slot;      /* buffer holding it; -1 for input layers (the caller's data) */
} hqi_emu_value_t;

struct hq_emulator {
    const hq_graph_t *graph;
    hq_target_t target;
    char *name;                       /* prefixes error messages */
    const hqi_emu_kernel_fn *kernels; /* per layer type */
    const hqi_emu_kernel_set_t *set;  /* kernels, prepare */
    hqi_emu_kernel_set_t custom_set;  /* when created from a bare kernel table */
    int layer_count;
    hqi_emu_params_t *params; /* per layer */
    hq_tensor_t **converted;  /* float32 copies of params stored in other dtypes */
    int converted_count;
    int *first_value; /* per layer: index of its port-0 value */
    int value_count;
    hqi_emu_value_t *values;
    int slot_count;
    int64_t *slot_size; /* floats per sample */
    /* slot_sets sets of slot_count buffers, each for slot_batch samples: set t is thread t's
     * when the threads run whole samples each (hqi_emu_layout_t); otherwise only set 0 is used */
    float **slot_data;
    int slot_sets;
    int64_t slot_batch;
    int max_inputs, max_outputs; /* largest arity, for the call arrays */
    /* fast kernel sets: per-layer prepared state, threads, one scratch buffer for all layers */
    hqi_emu_prepared_t *prepared; /* per layer */
    int threads;                  /* requested thread count, >= 1 */
    hqi_threadpool_t *pool;       /* started lazily at the first run with threads > 1 */
    float *scratch;
    int64_t scratch_floats; /* allocated */
    /* --stats: time and calls per layer type */
    double type_seconds[HQ_LAYER_TYPE_COUNT];
    int64_t type_calls[HQ_LAYER_TYPE_COUNT];
    struct hqi_fuse_plan *fuse; /* inverted-residual blocks run fused (fuse.h); NULL: none */
    struct hqi_qemu
        *quant; /* HQ_TARGET_QUANTIZED: the integer executor (qemulator.c) runs instead */
    hq_progress_fn progress; /* hq_emulator_run_dataset reports here; NULL: nowhere */
    void *progress_user;
};

/* emulator_params.c: finds, checks and binds every layer's tensors (float32 views, converted
 * copies kept in emu->converted), refusing a layer type the kernel table lacks; then lets the
 * kernel set prepare each layer and checks the scratch it states. */
hq_status_t hqi_emu_bind_params(hq_emulator_t *emu, const hq_npz_t *params, hq_error_t *err);
hq_status_t hqi_emu_prepare_layers(hq_emulator_t *emu, hq_error_t *err);

/* emulator_plan.c. Floats per sample of a shape (dims[0] is the batch); -1 on overflow or a
 * bad extent. */
int64_t hqi_emu_per_sample(const hq_shape_t *shape);
/* Gives every activation its slot (emu->values, slot_size) from the topological order, the
 * fused blocks taken into account. */
hq_status_t hqi_emu_plan(hq_emulator_t *emu, hq_error_t *err);

/* How a run of `batch` samples is spread over the threads (hqi_emu_layout_of, emulator_plan.c,
 * says when each form is taken). */
typedef struct hqi_emu_layout {
    int lanes;            /* threads that run whole samples each; 1 = none do */
    int64_t lane_samples; /* samples each lane runs (0 when lanes is 1) */
    int64_t lane_chunk;   /* samples per pass of a lane */
    int64_t rest;         /* samples left for the row-split passes: batch - lanes * lane_samples */
    int64_t chunk;        /* samples per row-split pass */
} hqi_emu_layout_t;

hqi_emu_layout_t hqi_emu_layout_of(const hq_emulator_t *emu, int64_t batch, bool one_pass);
/* Samples each slot buffer holds for a layout. */
int64_t hqi_emu_slot_samples(const hqi_emu_layout_t *layout);
/* Scratch floats of one lane (layout->lanes > 1), and of the whole run: the lanes' scratch side
 * by side, or the row-split passes' on all threads, whichever is larger. -1 on overflow. */
int64_t hqi_emu_lane_scratch(const hq_emulator_t *emu, const hqi_emu_layout_t *layout);
int64_t hqi_emu_run_scratch(const hq_emulator_t *emu, const hqi_emu_layout_t *layout);

/* emulator_run.c: frees the slot buffers (kept: their pointer array). */
void hqi_emu_release_slots(hq_emulator_t *emu);

#endif
