/* emulator_run.c — running the float emulator: the slot buffers and scratch a run needs, each
 * layer's call (inputs gathered, kernel, taps, graph outputs), the fused blocks, the passes
 * over a batch on lanes or with rows split over the pool, subset runs, and whole datasets in
 * batches. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emulate/emulator_internal.h"
#include "emulate/fuse.h"
#include "emulate/qemulator.h"
#include "hq/emulate.h"
#include "util/threadpool.h"
#include "util/util.h"

void hqi_emu_release_slots(hq_emulator_t *emu)
{
    for (int s = 0; emu->slot_data && s < emu->slot_sets * emu->slot_count; s++) {
        free(emu->slot_data[s]);
        emu->slot_data[s] = NULL;
    }
    emu->slot_batch = 0;
}

/* ---- running
 * -----------------------------------------------------------------------------
 */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Starts the pool for the requested thread count and grows the scratch for this layout. */
static hq_status_t ensure_threads_and_scratch(hq_emulator_t *emu, const hqi_emu_layout_t *layout,
                                              int64_t batch, hq_error_t *err)
{
    if (emu->threads > 1 && !emu->pool) {
        hq_status_t st = hqi_threadpool_create(emu->threads, &emu->pool, err);
        if (st != HQ_OK)
            return st;
    }
    /* strip buffers of the fused blocks: one per thread, whether the pool splits a block's rows
     * or each thread runs whole samples on a lane of its own */
    hq_status_t st = hqi_fuse_reserve(emu->fuse, emu->threads, err);
    if (st != HQ_OK)
        return st;
    int64_t need = hqi_emu_run_scratch(emu, layout);
    size_t bytes;
    if (need < 0 || !hqi_mul_size((size_t)need, sizeof(float), &bytes))
        return hqi_error(err, HQ_ERR_LIMIT, "%s: batch of %lld samples is too large", emu->name,
                         (long long)batch);
    if (need <= emu->scratch_floats)
        return HQ_OK;
    free(emu->scratch);
    emu->scratch_floats = 0;
    emu->scratch = malloc(bytes);
    if (!emu->scratch)
        return hqi_nomem(err, "emulator scratch");
    emu->scratch_floats = need;
    return HQ_OK;
}

/* Grows the slot buffers to `sets` sets of `batch` samples each. */
static hq_status_t ensure_slots(hq_emulator_t *emu, int sets, int64_t batch, hq_error_t *err)
{
    if (batch <= emu->slot_batch && sets <= emu->slot_sets)
        return HQ_OK;
    if (batch < emu->slot_batch) /* never shrink: runs of other sizes come back */
        batch = emu->slot_batch;
    if (sets < emu->slot_sets)
        sets = emu->slot_sets;
    hqi_emu_release_slots(emu);
    if (sets > emu->slot_sets) {
        float **grown = calloc((size_t)sets * (size_t)emu->slot_count + 1, sizeof *grown);
        if (!grown)
            return hqi_nomem(err, "emulator activations");
        free(emu->slot_data);
        emu->slot_data = grown;
        emu->slot_sets = sets;
    }
    for (int s = 0; s < sets * emu->slot_count; s++) {
        size_t bytes;
        int64_t size = emu->slot_size[s % emu->slot_count];
        if (size > HQI_REF_MAX_ELEMENTS / batch ||
            !hqi_mul_size((size_t)(size * batch), sizeof(float), &bytes))
            return hqi_error(err, HQ_ERR_LIMIT, "%s: batch of %lld samples is too large", emu->name,
                             (long long)batch);
        emu->slot_data[s] = malloc(bytes);
        if (!emu->slot_data[s]) {
            hqi_emu_release_slots(emu);
            return hqi_nomem(err, "emulator activations");
        }
    }
    emu->slot_batch = batch;
    return HQ_OK;
}

static hq_shape_t batched_shape(const hq_layer_t *layer, int port, int64_t batch)
{
    hq_shape_t shape = hq_layer_port_shape(layer, port);
    shape.dims[0] = batch;
    return shape;
}

/* Index of `layer` in a list, -1 when absent. */
static int position(const int *list, int count, int layer)
{
    for (int i = 0; i < count; i++)
        if (list[i] == layer)
            return i;
    return -1;
}

/* A layer whose work is a few microseconds runs on the caller's thread alone: waking the pool
 * would cost about as much, and on a loaded machine a worker that is not scheduled in time
 * makes it cost far more (PP-OCR cls has dozens of layers on a 1x1 or 3x96 map). Below 256K
 * multiply-adds for conv, depthwise, deconv and dense layers, below 32K output values for the
 * others. The results do not change: the kernels give the same bits on any thread count.
 * HQ_EMULATE_PARALLEL_ALL=1 in the environment hands every layer to the pool (tests). */
static bool small_work(const hq_layer_t *layer, const hq_shape_t *out_shapes, int ports)
{
    const char *all = getenv("HQ_EMULATE_PARALLEL_ALL");
    if (all && all[0] == '1')
        return false;
    double outputs = 0.0;
    for (int p = 0; p < ports; p++) {
        double count = 1.0;
        for (int d = 0; d < out_shapes[p].ndim; d++)
            count *= (double)out_shapes[p].dims[d];
        outputs += count;
    }
    const hq_layer_params_t *lp = &layer->params;
    if (hqi_layer_traits(layer->type)->has_weights)
        return outputs * (double)(lp->kernel_h > 0 ? lp->kernel_h : 1) *
                   (double)(lp->kernel_w > 0 ? lp->kernel_w : 1) *
                   (double)(lp->kernel_in > 0 ? lp->kernel_in : 1) <
               262144.0;
    return outputs < 32768.0;
}

/* What a thread running layers holds of its own: the slot set its activations live in, its
 * scratch, the pool its layers' rows are split over (NULL inside a lane), the call arrays, and
 * its share of the per-type times, added to the emulator's when the run is over. */
typedef struct lane {
    float **slots;          /* slot_count buffers */
    float *scratch;         /* NULL when no layer needs any */
    hqi_threadpool_t *pool; /* NULL: the layers run on this thread alone */
    int set;                /* the lane's slot set and fused blocks' strip buffer */
    hq_shape_t *in_shapes;  /* max_inputs */
    const float **in_data;
    hq_shape_t *out_shapes; /* max_outputs */
    float **out_data;
    const float **pass_in; /* per pass: the caller's inputs and outputs from its first sample */
    float **pass_out;
    double type_seconds[HQ_LAYER_TYPE_COUNT];
    int64_t type_calls[HQ_LAYER_TYPE_COUNT];
    hq_status_t status; /* of the lane's passes; its message in err */
    hq_error_t err;
} lane_t;

static void lane_free(lane_t *lane)
{
    free(lane->in_shapes);
    free(lane->in_data);
    free(lane->out_shapes);
    free(lane->out_data);
    free(lane->pass_in);
    free(lane->pass_out);
}

static hq_status_t lane_init(const hq_emulator_t *emu, lane_t *lane, int set, float *scratch,
                             hqi_threadpool_t *pool, hq_error_t *err)
{
    int in_count = 0, out_count = 0;
    hq_graph_inputs(emu->graph, &in_count);
    hq_graph_outputs(emu->graph, &out_count);
    lane->slots = emu->slot_data + (size_t)set * (size_t)emu->slot_count;
    lane->set = set;
    lane->scratch = scratch;
    lane->pool = pool;
    lane->in_shapes = calloc((size_t)emu->max_inputs + 1, sizeof *lane->in_shapes);
    lane->in_data = calloc((size_t)emu->max_inputs + 1, sizeof *lane->in_data);
    lane->out_shapes = calloc((size_t)emu->max_outputs + 1, sizeof *lane->out_shapes);
    lane->out_data = calloc((size_t)emu->max_outputs + 1, sizeof *lane->out_data);
    lane->pass_in = calloc((size_t)in_count + 1, sizeof *lane->pass_in);
    lane->pass_out = calloc((size_t)out_count + 1, sizeof *lane->pass_out);
    if (!lane->in_shapes || !lane->in_data || !lane->out_shapes || !lane->out_data ||
        !lane->pass_in || !lane->pass_out)
        return hqi_nomem(err, "emulator run");
    return HQ_OK;
}

/* A run's caller-side arguments, shared by its passes. */
typedef struct run_args {
    const float *const *inputs;
    float *const *outputs;
    hq_emulator_tap_fn tap;
    void *user;
    const hqi_subset_t *subset;
} run_args_t;

/* Runs one layer on a lane: gathers its inputs, calls its kernel, taps and copies graph
 * outputs. */
static hq_status_t run_layer(const hq_emulator_t *emu, lane_t *lane, int index, int64_t batch,
                             const float *const *inputs, float *const *outputs,
                             const run_args_t *args, hq_error_t *err)
{
    const hq_graph_t *graph = emu->graph;
    const hq_layer_t *layer = hq_graph_layer(graph, index);
    const hqi_subset_t *subset = args->subset;
    hq_shape_t *in_shapes = lane->in_shapes, *out_shapes = lane->out_shapes;
    const float **in_data = lane->in_data;
    float **out_data = lane->out_data;
    int in_count = 0, out_count = 0;
    const int *graph_inputs = hq_graph_inputs(graph, &in_count);
    const int *graph_outputs = hq_graph_outputs(graph, &out_count);
    hqi_emu_call_t call = {.layer = layer, .params = &emu->params[index], .batch = batch};
    int ports = hq_layer_port_count(layer);

    if (layer->type == HQ_LAYER_INPUT) {
        int i = position(graph_inputs, in_count, index);
        if (i < 0 || !inputs || !inputs[i])
            return hqi_error(err, HQ_ERR_ARGUMENT, "%s: no data for input layer '%s'", emu->name,
                             layer->name);
        out_shapes[0] = batched_shape(layer, 0, batch);
        if (args->tap)
            return args->tap(args->user, index, 0, &out_shapes[0], inputs[i], err);
        return HQ_OK;
    }
    for (int k = 0; k < layer->input_count; k++) {
        const hq_layer_t *producer = hq_graph_layer(graph, layer->inputs[k]);
        const hqi_emu_value_t *v =
            &emu->values[emu->first_value[layer->inputs[k]] + layer->input_ports[k]];
        in_shapes[k] = batched_shape(producer, layer->input_ports[k], batch);
        if (v->slot >= 0) {
            in_data[k] = lane->slots[v->slot];
        } else {
            int i = position(graph_inputs, in_count, v->layer);
            in_data[k] = i >= 0 && inputs ? inputs[i] : NULL;
        }
    }
    for (int p = 0; p < ports; p++) {
        out_shapes[p] = batched_shape(layer, p, batch);
        out_data[p] = lane->slots[emu->values[emu->first_value[index] + p].slot];
    }
    if (subset && subset->mode[index] == HQI_SUBSET_PRESET) {
        for (int p = 0; p < ports; p++) {
            const float *given = subset->preset(subset->user, index, p);
            if (!given)
                return hqi_error(err, HQ_ERR_ARGUMENT, "%s: no preset values for layer '%s'",
                                 emu->name, layer->name);
            memcpy(out_data[p], given,
                   (size_t)(emu->values[emu->first_value[index] + p].size * batch) * sizeof(float));
        }
    } else {
        call.input_count = layer->input_count;
        call.input_shapes = in_shapes;
        call.inputs = in_data;
        call.output_count = ports;
        call.output_shapes = out_shapes;
        call.outputs = out_data;
        call.prepared = emu->prepared[index].state;
        call.scratch = lane->scratch;
        call.pool = lane->pool && !small_work(layer, out_shapes, ports) ? lane->pool : NULL;
        hq_error_t detail = {0};
        double start = now_seconds();
        hq_status_t st = emu->kernels[layer->type](&call, &detail);
        lane->type_seconds[layer->type] += now_seconds() - start;
        lane->type_calls[layer->type]++;
        if (st != HQ_OK)
            return hqi_error(err, st, "%s: layer '%s': %s", emu->name, layer->name, detail.message);
        for (int p = 0; p < ports && args->tap; p++) {
            st = args->tap(args->user, index, p, &out_shapes[p], out_data[p], err);
            if (st != HQ_OK)
                return st;
        }
    }
    int o = position(graph_outputs, out_count, index);
    if (o >= 0 && outputs && outputs[o])
        memcpy(outputs[o], out_data[0],
               (size_t)(emu->values[emu->first_value[index]].size * batch) * sizeof(float));
    return HQ_OK;
}

/* The data of input k of `layer` on a lane: its slot, or the caller's input. */
static const float *input_data(const hq_emulator_t *emu, const lane_t *lane,
                               const hq_layer_t *layer, int k, const float *const *inputs)
{
    int in_count = 0;
    const int *graph_inputs = hq_graph_inputs(emu->graph, &in_count);
    const hqi_emu_value_t *v =
        &emu->values[emu->first_value[layer->inputs[k]] + layer->input_ports[k]];
    if (v->slot >= 0)
        return lane->slots[v->slot];
    int i = position(graph_inputs, in_count, v->layer);
    return i >= 0 && inputs ? inputs[i] : NULL;
}

/* Runs the fused block that starts at `first` (fuse.h) on a lane and moves *step to its last
 * layer: its input and the projection's addend from their slots, into the last layer's slot,
 * with the lane's strip buffers. Its time counts as the last layer's type's (--stats), one call
 * per layer. */
static hq_status_t run_block(const hq_emulator_t *emu, lane_t *lane, int first, int64_t batch,
                             const float *const *inputs, float *const *outputs, int *step,
                             hq_error_t *err)
{
    int block = hqi_fuse_block_at(emu->fuse, first);
    int last = hqi_fuse_last_layer(emu->fuse, first);
    const hq_layer_t *head = hq_graph_layer(emu->graph, first);
    const hq_layer_t *tail = hq_graph_layer(emu->graph, last);
    const float *input = input_data(emu, lane, head, 0, inputs);
    const float *input2 = head->input_count > 1 ? input_data(emu, lane, head, 1, inputs) : NULL;
    const float *addend = tail->input_count > 1 ? input_data(emu, lane, tail, 1, inputs) : NULL;
    if (!input || (head->input_count > 1 && !input2) || (tail->input_count > 1 && !addend))
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: no data for layer '%s'", emu->name, head->name);
    const hqi_emu_value_t *v = &emu->values[emu->first_value[last]];
    float *output = lane->slots[v->slot];
    hq_error_t detail = {0};
    double start = now_seconds();
    hq_status_t st = hqi_fuse_run(emu->fuse, block, batch, input, input2, addend, output,
                                  lane->pool, lane->set, &detail);
    lane->type_seconds[tail->type] += now_seconds() - start;
    *step += hqi_fuse_block_layers(emu->fuse, block) - 1;
    int order_count = 0;
    const int *order = hq_graph_topo_order(emu->graph, &order_count);
    for (int s = *step - hqi_fuse_block_layers(emu->fuse, block) + 1; s <= *step; s++)
        lane->type_calls[hq_graph_layer(emu->graph, order[s])->type]++;
    if (st != HQ_OK)
        return hqi_error(err, st, "%s: layer '%s': %s", emu->name, tail->name, detail.message);
    int out_count = 0;
    const int *graph_outputs = hq_graph_outputs(emu->graph, &out_count);
    int o = position(graph_outputs, out_count, last);
    if (o >= 0 && outputs && outputs[o])
        memcpy(outputs[o], output, (size_t)(v->size * batch) * sizeof(float));
    return HQ_OK;
}

/* Runs samples first .. first + count - 1 through the network on a lane. */
static hq_status_t run_pass(const hq_emulator_t *emu, lane_t *lane, int64_t first, int64_t count,
                            const run_args_t *args, hq_error_t *err)
{
    int in_count = 0, out_count = 0, order_count = 0;
    hq_graph_inputs(emu->graph, &in_count);
    hq_graph_outputs(emu->graph, &out_count);
    const int *order = hq_graph_topo_order(emu->graph, &order_count);
    for (int i = 0; i < in_count; i++)
        lane->pass_in[i] =
            args->inputs[i] ? args->inputs[i] + first * hq_emulator_input_size(emu, i) : NULL;
    for (int o = 0; o < out_count; o++)
        lane->pass_out[o] = args->outputs && args->outputs[o]
                                ? args->outputs[o] + first * hq_emulator_output_size(emu, o)
                                : NULL;
    const float *const *inputs = in_count > 0 ? lane->pass_in : args->inputs;
    hq_status_t st = HQ_OK;
    for (int t = 0; t < order_count && st == HQ_OK; t++)
        if (!args->tap && !args->subset && hqi_fuse_block_at(emu->fuse, order[t]) >= 0)
            st = run_block(emu, lane, order[t], count, inputs, lane->pass_out, &t, err);
        else if (!args->subset || args->subset->mode[order[t]] != HQI_SUBSET_SKIP)
            st = run_layer(emu, lane, order[t], count, inputs, lane->pass_out, args, err);
    return st;
}

/* The lanes' part of a run: task k runs lane k's samples on the thread that claims it, with that
 * thread's lane (a thread that claims two tasks, when another was late to start, runs them one
 * after the other on its own buffers). */
typedef struct lanes_job {
    const hq_emulator_t *emu;
    lane_t *lanes; /* per thread */
    const hqi_emu_layout_t *layout;
    const run_args_t *args;
} lanes_job_t;

static void lane_task(void *context, int64_t task, int thread)
{
    const lanes_job_t *job = context;
    lane_t *lane = &job->lanes[thread];
    const int64_t first = task * job->layout->lane_samples;
    const int64_t end = first + job->layout->lane_samples;
    for (int64_t at = first; at < end && lane->status == HQ_OK; at += job->layout->lane_chunk) {
        int64_t count = end - at < job->layout->lane_chunk ? end - at : job->layout->lane_chunk;
        lane->status = run_pass(job->emu, lane, at, count, job->args, &lane->err);
    }
}

static hq_status_t run_network(hq_emulator_t *emulator, int64_t batch, const float *const *inputs,
                               float *const *outputs, hq_emulator_tap_fn tap, void *user,
                               const hqi_subset_t *subset, hq_error_t *err)
{
    if (!emulator)
        return hqi_error(err, HQ_ERR_ARGUMENT, "emulator: NULL emulator");
    if (batch < 1)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: batch %lld, need at least 1", emulator->name,
                         (long long)batch);
    int in_count = 0;
    hq_graph_inputs(emulator->graph, &in_count);
    if (in_count > 0 && !inputs)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: no input data", emulator->name);
    if (emulator->quant) /* integer kernels, batch split by sample: the same bytes at any count */
        return hqi_qemu_run(emulator->quant, batch, inputs, outputs, tap, user, err);
    /* a subset run's preset values cover the whole batch: one pass */
    const hqi_emu_layout_t layout =
        hqi_emu_layout_of(emulator, batch, tap != NULL || subset != NULL);
    hq_status_t st = ensure_slots(emulator, layout.lanes, hqi_emu_slot_samples(&layout), err);
    if (st == HQ_OK)
        st = ensure_threads_and_scratch(emulator, &layout, batch, err);
    if (st != HQ_OK)
        return st;
    /* workers asleep since the last run start polling now, while the first layers run */
    hqi_threadpool_wake(emulator->pool);
    const run_args_t args = {inputs, outputs, tap, user, subset};
    lane_t *lanes = calloc((size_t)layout.lanes, sizeof *lanes);
    if (!lanes)
        return hqi_nomem(err, "emulator run");
    /* the lanes' scratch side by side; the row-split passes use all of it on lane 0 */
    const int64_t lane_floats = hqi_emu_lane_scratch(emulator, &layout);
    for (int t = 0; t < layout.lanes && st == HQ_OK; t++)
        st = lane_init(emulator, &lanes[t], t,
                       emulator->scratch_floats > 0 ? emulator->scratch + t * lane_floats : NULL,
                       NULL, err);
    if (st == HQ_OK && layout.lanes > 1) {
        lanes_job_t job = {emulator, lanes, &layout, &args};
        hqi_threadpool_run(emulator->pool, layout.lanes, lane_task, &job);
        for (int t = 0; t < layout.lanes && st == HQ_OK; t++)
            if (lanes[t].status != HQ_OK)
                st = hqi_error(err, lanes[t].status, "%s", lanes[t].err.message);
    }
    const int64_t rows_first = batch - layout.rest;
    lanes[0].pool = emulator->pool;
    lanes[0].scratch = emulator->scratch_floats > 0 ? emulator->scratch : NULL;
    for (int64_t first = rows_first; first < batch && st == HQ_OK; first += layout.chunk) {
        int64_t count = batch - first < layout.chunk ? batch - first : layout.chunk;
        st = run_pass(emulator, &lanes[0], first, count, &args, err);
    }
    for (int t = 0; t < layout.lanes; t++) {
        for (int type = 0; type < HQ_LAYER_TYPE_COUNT; type++) {
            emulator->type_seconds[type] += lanes[t].type_seconds[type];
            emulator->type_calls[type] += lanes[t].type_calls[type];
        }
        lane_free(&lanes[t]);
    }
    free(lanes);
    return st;
}

HQ_API hq_status_t hq_emulator_run(hq_emulator_t *emulator, int64_t batch,
                                   const float *const *inputs, float *const *outputs,
                                   hq_emulator_tap_fn tap, void *user, hq_error_t *err)
{
    return run_network(emulator, batch, inputs, outputs, tap, user, NULL, err);
}

hq_status_t hqi_emulator_run_subset(hq_emulator_t *emulator, int64_t batch,
                                    const float *const *inputs, float *const *outputs,
                                    hq_emulator_tap_fn tap, void *user, const hqi_subset_t *subset,
                                    hq_error_t *err)
{
    if (emulator && emulator->quant)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: a subset run needs a float target",
                         emulator->name);
    if (!subset || !subset->mode || !subset->preset)
        return hqi_error(err, HQ_ERR_ARGUMENT, "emulator: subset run without its layer modes");
    return run_network(emulator, batch, inputs, outputs, tap, user, subset, err);
}

/* ---- datasets
 * ----------------------------------------------------------------------------
 */

HQ_API void hq_emulator_set_progress(hq_emulator_t *emulator, hq_progress_fn progress, void *user)
{
    if (!emulator)
        return;
    emulator->progress = progress;
    emulator->progress_user = user;
}

HQ_API hq_status_t hq_emulator_run_dataset(hq_emulator_t *emulator, hq_dataset_t *dataset,
                                           int64_t batch_size, hq_emulator_batch_fn on_batch,
                                           hq_emulator_tap_fn tap, void *user, hq_error_t *err)
{
    if (!emulator || !dataset)
        return hqi_error(err, HQ_ERR_ARGUMENT, "emulator: NULL emulator or dataset");
    if (batch_size < 1)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: batch size %lld, need at least 1",
                         emulator->name, (long long)batch_size);
    const hq_graph_t *graph = emulator->graph;
    int in_count = 0, out_count = 0;
    const int *graph_inputs = hq_graph_inputs(graph, &in_count);
    hq_graph_outputs(graph, &out_count);
    int64_t total = hq_dataset_count(dataset);
    if (total < batch_size)
        batch_size = total > 0 ? total : 1;

    int *source = calloc((size_t)in_count + 1, sizeof *source);
    float **in_data = calloc((size_t)in_count + 1, sizeof *in_data);
    float **out_data = calloc((size_t)out_count + 1, sizeof *out_data);
    hq_status_t st = source && in_data && out_data ? HQ_OK : hqi_nomem(err, "emulator dataset");
    int ds_count = hq_dataset_input_count(dataset);
    for (int i = 0; i < in_count && st == HQ_OK; i++) {
        const hq_layer_t *layer = hq_graph_layer(graph, graph_inputs[i]);
        source[i] = -1;
        for (int j = 0; j < ds_count; j++)
            if (hq_dataset_input_layer(dataset, j) == graph_inputs[i])
                source[i] = j;
        if (source[i] < 0 && in_count == 1 && ds_count == 1 &&
            hq_dataset_input_layer(dataset, 0) < 0)
            source[i] = 0;
        if (source[i] < 0) {
            st = hqi_error(err, HQ_ERR_NOT_FOUND, "%s: the dataset has no data for input '%s'",
                           emulator->name, layer->name);
            break;
        }
        hq_shape_t ds_shape = hq_dataset_input_shape(dataset, source[i]);
        int64_t ds_size = 1;
        for (int d = 0; d < ds_shape.ndim; d++)
            ds_size = ds_shape.dims[d] > 0 && ds_size <= HQI_REF_MAX_ELEMENTS / ds_shape.dims[d]
                          ? ds_size * ds_shape.dims[d]
                          : -1;
        int64_t want = hq_emulator_input_size(emulator, i);
        if (ds_size != want) {
            st = hqi_error(err, HQ_ERR_INVALID,
                           "%s: input '%s' takes %lld values per sample, the dataset has %lld",
                           emulator->name, layer->name, (long long)want, (long long)ds_size);
            break;
        }
        size_t bytes;
        if (!hqi_mul_size((size_t)want, (size_t)batch_size, &bytes) ||
            !hqi_mul_size(bytes, sizeof(float), &bytes)) {
            st = hqi_error(err, HQ_ERR_LIMIT, "%s: batch too large", emulator->name);
            break;
        }
        in_data[i] = malloc(bytes);
        if (!in_data[i])
            st = hqi_nomem(err, "emulator dataset");
    }
    for (int o = 0; o < out_count && st == HQ_OK; o++) {
        size_t bytes;
        if (!hqi_mul_size((size_t)hq_emulator_output_size(emulator, o), (size_t)batch_size,
                          &bytes) ||
            !hqi_mul_size(bytes, sizeof(float), &bytes)) {
            st = hqi_error(err, HQ_ERR_LIMIT, "%s: batch too large", emulator->name);
            break;
        }
        out_data[o] = malloc(bytes);
        if (!out_data[o])
            st = hqi_nomem(err, "emulator dataset");
    }
    for (int64_t first = 0; first < total && st == HQ_OK; first += batch_size) {
        int64_t count = total - first < batch_size ? total - first : batch_size;
        for (int i = 0; i < in_count && st == HQ_OK; i++)
            st = hq_dataset_read(dataset, source[i], first, count, in_data[i], err);
        if (st == HQ_OK)
            st = hq_emulator_run(emulator, count, (const float *const *)in_data, out_data, tap,
                                 user, err);
        if (st == HQ_OK && on_batch)
            st = on_batch(user, first, count, (const float *const *)out_data, err);
        if (st == HQ_OK && emulator->progress)
            emulator->progress(emulator->progress_user, "emulation", first + count, total);
    }
    for (int i = 0; in_data && i < in_count; i++)
        free(in_data[i]);
    for (int o = 0; out_data && o < out_count; o++)
        free(out_data[o]);
    free(source);
    free(in_data);
    free(out_data);
    return st;
}
