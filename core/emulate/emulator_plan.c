/* emulator_plan.c — the float emulator's memory plan: the liveness-based buffer plan (which
 * slot holds each activation), how a run of a batch is laid out (samples per pass, lanes of
 * whole samples per thread, the row-split passes) and the scratch and peak bytes that follow. */
#include <stdbool.h>
#include <stdlib.h>

#include "emulate/emulator_internal.h"
#include "emulate/fuse.h"
#include "hq/emulate.h"
#include "util/util.h"

/* Floats per sample of a shape (dims[0] is the batch); -1 on overflow or a bad
 * extent. */
int64_t hqi_emu_per_sample(const hq_shape_t *shape)
{
    if (shape->ndim < 1 || shape->ndim > HQ_TENSOR_MAX_DIMS)
        return -1;
    int64_t count = 1;
    for (int d = 1; d < shape->ndim; d++) {
        if (shape->dims[d] < 1 || count > HQI_REF_MAX_ELEMENTS / shape->dims[d])
            return -1;
        count *= shape->dims[d];
    }
    return count;
}

/* Scratch floats a run of `batch` samples needs on `threads` threads: the largest need of any
 * layer, since layers run one at a time. -1 on overflow. */
static int64_t scratch_need(const hq_emulator_t *emu, int64_t batch, int threads)
{
    int64_t most = 0;
    for (int i = 0; emu->prepared && i < emu->layer_count; i++) {
        const hqi_emu_prepared_t *p = &emu->prepared[i];
        if (p->scratch_per_thread > HQI_REF_MAX_ELEMENTS / threads ||
            p->scratch_per_sample > HQI_REF_MAX_ELEMENTS / batch)
            return -1;
        int64_t need = p->scratch_per_thread * threads + p->scratch_per_sample * batch;
        if (need > most)
            most = need;
    }
    return most;
}

/* Walks the topological order, giving each activation a slot when its layer
 * runs and returning the slot when its last reader has run. A freed slot is
 * reused by the smallest fitting need (else the largest free slot grows), so a
 * chain needs only two or three slots. */
hq_status_t hqi_emu_plan(hq_emulator_t *emu, hq_error_t *err)
{
    int order_count = 0;
    const int *order = hq_graph_topo_order(emu->graph, &order_count);
    emu->first_value = calloc((size_t)emu->layer_count + 1, sizeof *emu->first_value);
    if (!emu->first_value)
        return hqi_nomem(err, "emulator plan");
    int total = 0;
    for (int i = 0; i < emu->layer_count; i++) {
        const hq_layer_t *layer = hq_graph_layer(emu->graph, i);
        emu->first_value[i] = total;
        total += hq_layer_port_count(layer);
        if (layer->input_count > emu->max_inputs)
            emu->max_inputs = layer->input_count;
        if (hq_layer_port_count(layer) > emu->max_outputs)
            emu->max_outputs = hq_layer_port_count(layer);
    }
    emu->first_value[emu->layer_count] = total;
    if (emu->max_inputs < 1)
        emu->max_inputs = 1;
    emu->value_count = total;
    emu->values = calloc((size_t)total + 1, sizeof *emu->values);
    int *step_of = calloc((size_t)emu->layer_count + 1, sizeof *step_of);
    /* at most one slot per value */
    emu->slot_size = calloc((size_t)total + 1, sizeof *emu->slot_size);
    bool *busy = calloc((size_t)total + 1, sizeof *busy);
    hq_status_t st = HQ_OK;
    if (!emu->values || !step_of || !emu->slot_size || !busy) {
        st = hqi_nomem(err, "emulator plan");
        goto done;
    }
    for (int t = 0; t < order_count; t++)
        step_of[order[t]] = t;
    for (int i = 0; i < emu->layer_count; i++) {
        const hq_layer_t *layer = hq_graph_layer(emu->graph, i);
        for (int p = 0; p < hq_layer_port_count(layer); p++) {
            hqi_emu_value_t *v = &emu->values[emu->first_value[i] + p];
            hq_shape_t shape = hq_layer_port_shape(layer, p);
            v->layer = i;
            v->port = p;
            v->size = hqi_emu_per_sample(&shape);
            v->last_step = step_of[i];
            v->slot = -1;
            if (v->size < 1) {
                st = hqi_error(err, HQ_ERR_LIMIT, "%s: layer '%s': output too large or empty",
                               emu->name, layer->name);
                goto done;
            }
        }
    }
    for (int i = 0; i < emu->layer_count; i++) {
        const hq_layer_t *layer = hq_graph_layer(emu->graph, i);
        for (int k = 0; k < layer->input_count; k++) {
            hqi_emu_value_t *v =
                &emu->values[emu->first_value[layer->inputs[k]] + layer->input_ports[k]];
            /* a fused block reads its inputs until its last layer has run */
            int step = step_of[hqi_fuse_last_layer(emu->fuse, i)];
            if (step > v->last_step)
                v->last_step = step;
        }
    }
    for (int t = 0; t < order_count; t++) {
        const hq_layer_t *layer = hq_graph_layer(emu->graph, order[t]);
        int first = emu->first_value[order[t]];
        int ports = hq_layer_port_count(layer);
        for (int p = 0; p < ports && layer->type != HQ_LAYER_INPUT; p++) {
            hqi_emu_value_t *v = &emu->values[first + p];
            int best = -1, largest = -1;
            for (int s = 0; s < emu->slot_count; s++) {
                if (busy[s])
                    continue;
                if (emu->slot_size[s] >= v->size &&
                    (best < 0 || emu->slot_size[s] < emu->slot_size[best]))
                    best = s;
                if (largest < 0 || emu->slot_size[s] > emu->slot_size[largest])
                    largest = s;
            }
            if (best < 0)
                best = largest;
            if (best < 0)
                best = emu->slot_count++;
            if (emu->slot_size[best] < v->size)
                emu->slot_size[best] = v->size;
            busy[best] = true;
            v->slot = best;
        }
        /* free what this step (or, at the end of a fused block, the block) read for the last
         * time, and outputs nobody reads */
        for (int s = t; s >= 0 && hqi_fuse_last_layer(emu->fuse, order[s]) == order[t]; s--) {
            const hq_layer_t *reader = hq_graph_layer(emu->graph, order[s]);
            for (int k = 0; k < reader->input_count; k++) {
                hqi_emu_value_t *v =
                    &emu->values[emu->first_value[reader->inputs[k]] + reader->input_ports[k]];
                if (v->last_step == t && v->slot >= 0)
                    busy[v->slot] = false;
            }
        }
        for (int p = 0; p < ports; p++) {
            hqi_emu_value_t *v = &emu->values[first + p];
            if (v->last_step == t && v->slot >= 0)
                busy[v->slot] = false;
        }
    }
    emu->slot_data = calloc((size_t)emu->slot_count + 1, sizeof *emu->slot_data);
    emu->slot_sets = 1;
    if (!emu->slot_data)
        st = hqi_nomem(err, "emulator plan");
done:
    free(step_of);
    free(busy);
    return st;
}

/* Samples per pass of a run without a tap: the network runs on `chunk` samples at a time. A
 * pass reads every weight once and writes its activations: one sample per pass keeps a large
 * network's activations in the caches (a batch of 8 at 640x640 holds hundreds of MB), while a
 * network whose weights outweigh its activations (resnet18: 47 MB of weights, 6 MB of
 * activations per sample) is better run in few passes. So: as many samples as there are
 * weight bytes per activation byte of a sample, within 1 .. batch (measured, batch 8, 1 thread:
 * det 683 ms at 1 sample per pass against 764 at 8, mobilenet_v2 82 ms at 2 against 101 at 1
 * and 105 at 8, resnet18 250 ms at 8 against 320 at 2). Every layer computes each sample
 * with the same arithmetic whatever the batch (docs/kernels.md), so the results are the same
 * bits as one pass. HQ_EMULATE_CHUNK=N in the environment fixes it. */
static int64_t chunk_of(const hq_emulator_t *emu, int64_t batch, bool tapped)
{
    if (tapped || batch <= 1 || emu->quant)
        return batch;
    const char *env = getenv("HQ_EMULATE_CHUNK");
    int64_t chunk = env && atoll(env) > 0 ? atoll(env) : 0;
    if (!chunk) {
        double weights = 0.0, activations = 0.0;
        for (int s = 0; s < emu->slot_count; s++)
            activations += (double)emu->slot_size[s];
        for (int i = 0; i < emu->layer_count; i++) {
            const hq_layer_t *l = hq_graph_layer(emu->graph, i);
            if (hqi_layer_traits(l->type)->has_weights)
                weights += (double)l->params.kernel_h * l->params.kernel_w * l->params.kernel_in *
                           l->params.kernel_out;
        }
        double ratio = activations > 0 ? weights / activations + 0.5 : (double)batch;
        chunk = ratio < (double)batch ? (int64_t)ratio : batch;
    }
    return chunk < 1 ? 1 : chunk > batch ? batch : chunk;
}

/* How a run of `batch` samples is spread over the threads. With a batch of at least as many
 * samples as threads, each thread (a lane) runs whole samples through the network on its own
 * buffers, with no hand-off between threads inside the network: batch / threads samples each, in
 * passes of lane_chunk. The samples left over (batch % threads, or the whole batch when lanes
 * is 1) run in passes of `chunk` with every layer's rows split over the pool. Lanes are not used
 * when a tap sees the run (one pass), for the quantized target, or when a pass of the lanes'
 * size would hold fewer samples than chunk_of wants (a network whose weights outweigh its
 * activations, such as resnet18 at batch 8, is better read once by all threads than once per
 * thread). HQ_EMULATE_LANES=0 in the environment turns lanes off (experiments, tests). The
 * results are the same bits either way: every kernel computes each sample alike whatever the
 * batch and the thread count. */
hqi_emu_layout_t hqi_emu_layout_of(const hq_emulator_t *emu, int64_t batch, bool one_pass)
{
    hqi_emu_layout_t layout = {.lanes = 1, .rest = batch, .chunk = chunk_of(emu, batch, one_pass)};
    const int threads = emu->threads;
    const char *env = getenv("HQ_EMULATE_LANES");
    if (one_pass || emu->quant || threads < 2 || batch < threads || (env && env[0] == '0'))
        return layout;
    if (layout.chunk > batch / threads)
        return layout;
    layout.lanes = threads;
    layout.lane_samples = batch / threads;
    layout.lane_chunk = layout.chunk;
    layout.rest = batch - layout.lane_samples * threads;
    layout.chunk = layout.rest > 0 ? chunk_of(emu, layout.rest, false) : 1;
    return layout;
}

/* Samples each slot buffer holds for a layout. */
int64_t hqi_emu_slot_samples(const hqi_emu_layout_t *layout)
{
    int64_t rows = layout->rest > 0 ? layout->chunk : 1;
    return layout->lanes > 1 && layout->lane_chunk > rows ? layout->lane_chunk : rows;
}

/* Scratch floats of one lane (layout->lanes > 1), and of the whole run: the lanes' scratch side
 * by side, or the row-split passes' on all threads, whichever is larger. -1 on overflow. */
int64_t hqi_emu_lane_scratch(const hq_emulator_t *emu, const hqi_emu_layout_t *layout)
{
    return layout->lanes > 1 ? scratch_need(emu, layout->lane_chunk, 1) : 0;
}

int64_t hqi_emu_run_scratch(const hq_emulator_t *emu, const hqi_emu_layout_t *layout)
{
    int64_t rows = layout->rest > 0 ? scratch_need(emu, layout->chunk, emu->threads) : 0;
    int64_t lane = hqi_emu_lane_scratch(emu, layout);
    if (rows < 0 || lane < 0 || lane > INT64_MAX / layout->lanes)
        return -1;
    return lane * layout->lanes > rows ? lane * layout->lanes : rows;
}

HQ_API int64_t hq_emulator_scratch_bytes(const hq_emulator_t *emulator, int64_t batch)
{
    if (!emulator || batch < 1)
        return 0;
    hqi_emu_layout_t layout = hqi_emu_layout_of(emulator, batch, false);
    int64_t floats = hqi_emu_run_scratch(emulator, &layout);
    return floats < 0 || floats > INT64_MAX / 4 ? 0 : floats * (int64_t)sizeof(float);
}

HQ_API int64_t hq_emulator_peak_bytes(const hq_emulator_t *emulator, int64_t batch)
{
    if (!emulator || batch < 1)
        return 0;
    hqi_emu_layout_t layout = hqi_emu_layout_of(emulator, batch, false);
    const int64_t samples = hqi_emu_slot_samples(&layout) * layout.lanes;
    int64_t floats = hqi_emu_run_scratch(emulator, &layout);
    if (floats < 0)
        return 0;
    floats += hqi_fuse_scratch_floats(emulator->fuse) * emulator->threads;
    for (int s = 0; s < emulator->slot_count; s++) {
        if (emulator->slot_size[s] > INT64_MAX / 4 / samples - floats)
            return 0;
        floats += emulator->slot_size[s] * samples;
    }
    return floats * (int64_t)sizeof(float);
}
