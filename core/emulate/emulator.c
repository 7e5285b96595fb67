/* emulator.c — the float graph executor: params lookup and validation, the
 * liveness-based buffer plan, and running batches (single batch or a whole
 * dataset) through a kernel table. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emulate/emulator_internal.h"
#include "emulate/fuse.h"
#include "emulate/kernels_ref.h"
#include "emulate/qemulator.h"
#include "hq/emulate.h"
#include "util/threadpool.h"
#include "util/util.h"

/* One activation: piece `port` of layer `layer`. */
typedef struct value {
    int layer;
    int port;
    int64_t size;  /* floats per sample */
    int last_step; /* topological position of the last layer that reads it */
    int slot;      /* buffer holding it; -1 for input layers (the caller's data) */
} value_t;

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
    value_t *values;
    int slot_count;
    int64_t *slot_size; /* floats per sample */
    /* slot_sets sets of slot_count buffers, each for slot_batch samples: set t is thread t's
     * when the threads run whole samples each (run_layout_t); otherwise only set 0 is used */
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
    hqi_fuse_plan_t *fuse; /* inverted-residual blocks run fused (fuse.h); NULL: none */
    hqi_qemu_t *quant; /* HQ_TARGET_QUANTIZED: the integer executor (qemulator.c) runs instead */
    hq_progress_fn progress; /* hq_emulator_run_dataset reports here; NULL: nowhere */
    void *progress_user;
};

static const char *const target_names[HQ_TARGET_COUNT] = {
    [HQ_TARGET_NATIVE] = "native",
    [HQ_TARGET_FP_OPTIMIZED] = "fp_optimized",
    [HQ_TARGET_QUANTIZED] = "quantized",
};

HQ_API const char *hq_target_name(hq_target_t target)
{
    return (int)target >= 0 && target < HQ_TARGET_COUNT ? target_names[target] : NULL;
}

HQ_API hq_status_t hq_target_from_name(const char *name, hq_target_t *target)
{
    for (int t = 0; t < HQ_TARGET_COUNT; t++)
        if (name && !strcmp(name, target_names[t])) {
            *target = (hq_target_t)t;
            return HQ_OK;
        }
    return HQ_ERR_NOT_FOUND;
}

/* Floats per sample of a shape (dims[0] is the batch); -1 on overflow or a bad
 * extent. */
static int64_t per_sample(const hq_shape_t *shape)
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

static void format_dims(const int64_t *dims, int ndim, char *out, size_t size)
{
    size_t used = (size_t)snprintf(out, size, "[");
    for (int d = 0; d < ndim && used < size; d++)
        used +=
            (size_t)snprintf(out + used, size - used, d ? ", %lld" : "%lld", (long long)dims[d]);
    if (used < size)
        snprintf(out + used, size - used, "]");
}

/* ---- params
 * ------------------------------------------------------------------------------
 */

/* A tensor a layer needs: key suffix, where it goes, and the shape its params
 * imply (ndim 0 = any shape with `count` elements). */
typedef struct param_need {
    const char *suffix;
    const float **slot;
    int64_t *count_slot;
    int ndim;
    int64_t dims[4];
    int64_t count;
} param_need_t;

typedef struct need_list {
    param_need_t items[8];
    int count;
} need_list_t;

static void need(need_list_t *list, const char *suffix, const float **slot, int ndim, int64_t d0,
                 int64_t d1, int64_t d2, int64_t d3)
{
    param_need_t *n = &list->items[list->count++];
    memset(n, 0, sizeof *n);
    n->suffix = suffix;
    n->slot = slot;
    n->ndim = ndim;
    n->dims[0] = d0;
    n->dims[1] = d1;
    n->dims[2] = d2;
    n->dims[3] = d3;
}

static int64_t layer_channels(const hq_layer_t *layer)
{
    const hq_shape_t *s = &layer->output_shape;
    return s->ndim > 0 ? s->dims[s->ndim - 1] : 1;
}

/* Which tensors each layer type reads (STYLE: a table of small functions, not a
 * switch). */
typedef void (*needs_fn)(const hq_layer_t *layer, hqi_emu_params_t *p, need_list_t *list);

static void needs_conv(const hq_layer_t *layer, hqi_emu_params_t *p, need_list_t *list)
{
    const hq_layer_params_t *lp = &layer->params;
    need(list, "kernel:0", &p->kernel, 4, lp->kernel_h, lp->kernel_w, lp->kernel_in,
         lp->kernel_out);
    if (lp->has_bias)
        need(list, "bias:0", &p->bias, 1, lp->kernel_out, 0, 0, 0);
}

static void needs_dense(const hq_layer_t *layer, hqi_emu_params_t *p, need_list_t *list)
{
    const hq_layer_params_t *lp = &layer->params;
    need(list, "kernel:0", &p->kernel, 2, lp->kernel_in, lp->kernel_out, 0, 0);
    if (lp->has_bias)
        need(list, "bias:0", &p->bias, 1, lp->kernel_out, 0, 0, 0);
}

static void needs_batch_norm(const hq_layer_t *layer, hqi_emu_params_t *p, need_list_t *list)
{
    int64_t c = layer_channels(layer);
    need(list, "gamma:0", &p->gamma, 1, c, 0, 0, 0);
    need(list, "beta:0", &p->beta, 1, c, 0, 0, 0);
    need(list, "moving_mean:0", &p->mean, 1, c, 0, 0, 0);
    need(list, "moving_variance:0", &p->variance, 1, c, 0, 0, 0);
}

static void needs_layer_norm(const hq_layer_t *layer, hqi_emu_params_t *p, need_list_t *list)
{
    int64_t c = layer_channels(layer);
    need(list, "gamma:0", &p->gamma, 1, c, 0, 0, 0);
    need(list, "beta:0", &p->beta, 1, c, 0, 0, 0);
}

static void needs_const(const hq_layer_t *layer, hqi_emu_params_t *p, need_list_t *list)
{
    need(list, "const:0", &p->constant, 0, 0, 0, 0, 0);
    list->items[list->count - 1].count = per_sample(&layer->output_shape);
    list->items[list->count - 1].count_slot = &p->constant_count;
}

static const needs_fn needs_table[HQ_LAYER_TYPE_COUNT] = {
    [HQ_LAYER_CONV] = needs_conv,
    [HQ_LAYER_DW] = needs_conv,
    [HQ_LAYER_DECONV] = needs_conv,
    [HQ_LAYER_DENSE] = needs_dense,
    [HQ_LAYER_BATCH_NORM] = needs_batch_norm,
    [HQ_LAYER_CONST_INPUT] = needs_const,
    [HQ_LAYER_LAYER_NORM] = needs_layer_norm,
};

/* A float32 view of `tensor`, converting (and keeping the copy) when stored
 * otherwise. */
static hq_status_t float_data(hq_emulator_t *emu, const hq_tensor_t *tensor, const char *key,
                              const float **data, hq_error_t *err)
{
    if (tensor->dtype == HQ_DTYPE_FLOAT32) {
        *data = tensor->data;
        return HQ_OK;
    }
    if (tensor->dtype != HQ_DTYPE_FLOAT16 && tensor->dtype != HQ_DTYPE_FLOAT64)
        return hqi_error(err, HQ_ERR_UNSUPPORTED, "%s: params key '%s': dtype %s, need a float",
                         emu->name, key, hq_dtype_name(tensor->dtype));
    hq_tensor_t *copy = NULL;
    hq_status_t st = hq_tensor_convert(tensor, HQ_DTYPE_FLOAT32, &copy, err);
    if (st != HQ_OK)
        return st;
    hq_tensor_t **grown =
        realloc(emu->converted, (size_t)(emu->converted_count + 1) * sizeof *grown);
    if (!grown) {
        hq_tensor_destroy(copy);
        return hqi_nomem(err, "emulator params");
    }
    emu->converted = grown;
    emu->converted[emu->converted_count++] = copy;
    *data = copy->data;
    return HQ_OK;
}

static hq_status_t bind_param(hq_emulator_t *emu, const hq_npz_t *params, const hq_layer_t *layer,
                              const param_need_t *n, hq_error_t *err)
{
    char key[1024];
    int len = snprintf(key, sizeof key, "%s/%s", layer->name, n->suffix);
    if (len < 0 || (size_t)len >= sizeof key)
        return hqi_error(err, HQ_ERR_LIMIT, "%s: layer '%s': name too long", emu->name,
                         layer->name);
    const hq_tensor_t *t = params ? hq_npz_get(params, key) : NULL;
    if (!t)
        return hqi_error(err, HQ_ERR_NOT_FOUND, "%s: layer '%s': params key '%s' missing",
                         emu->name, layer->name, key);
    int64_t count = hq_tensor_count(t);
    if (n->ndim > 0) {
        bool same = t->ndim == n->ndim;
        for (int d = 0; same && d < n->ndim; d++)
            same = t->shape[d] == n->dims[d];
        if (!same) {
            char got[128], want[128];
            format_dims(t->shape, t->ndim, got, sizeof got);
            format_dims(n->dims, n->ndim, want, sizeof want);
            return hqi_error(err, HQ_ERR_INVALID,
                             "%s: layer '%s': params key '%s' has shape %s, expected %s", emu->name,
                             layer->name, key, got, want);
        }
    } else if (count != n->count) {
        return hqi_error(err, HQ_ERR_INVALID,
                         "%s: layer '%s': params key '%s' has %lld values, expected %lld",
                         emu->name, layer->name, key, (long long)count, (long long)n->count);
    }
    if (n->count_slot)
        *n->count_slot = count;
    return float_data(emu, t, key, n->slot, err);
}

/* The prelu slope: 1 value or one per channel. */
static hq_status_t bind_slope(hq_emulator_t *emu, const hq_npz_t *params, const hq_layer_t *layer,
                              hqi_emu_params_t *p, hq_error_t *err)
{
    char key[1024];
    int len = snprintf(key, sizeof key, "%s/prelu_slope:0", layer->name);
    if (len < 0 || (size_t)len >= sizeof key)
        return hqi_error(err, HQ_ERR_LIMIT, "%s: layer '%s': name too long", emu->name,
                         layer->name);
    const hq_tensor_t *t = params ? hq_npz_get(params, key) : NULL;
    if (!t)
        return hqi_error(err, HQ_ERR_NOT_FOUND, "%s: layer '%s': params key '%s' missing",
                         emu->name, layer->name, key);
    int64_t count = hq_tensor_count(t), channels = layer_channels(layer);
    if (count != 1 && count != channels)
        return hqi_error(err, HQ_ERR_INVALID,
                         "%s: layer '%s': params key '%s' has %lld values, expected 1 or %lld",
                         emu->name, layer->name, key, (long long)count, (long long)channels);
    p->slope_count = count;
    return float_data(emu, t, key, &p->slope, err);
}

static hq_status_t bind_params(hq_emulator_t *emu, const hq_npz_t *params, hq_error_t *err)
{
    for (int i = 0; i < emu->layer_count; i++) {
        const hq_layer_t *layer = hq_graph_layer(emu->graph, i);
        if ((int)layer->type < 0 || layer->type >= HQ_LAYER_TYPE_COUNT ||
            !emu->kernels[layer->type])
            return hqi_error(err, HQ_ERR_UNSUPPORTED,
                             "%s: layer '%s': type '%s' cannot be emulated", emu->name, layer->name,
                             hq_layer_type_name(layer->type) ? hq_layer_type_name(layer->type)
                                                             : "?");
        need_list_t list = {.count = 0};
        if (needs_table[layer->type])
            needs_table[layer->type](layer, &emu->params[i], &list);
        for (int k = 0; k < list.count; k++) {
            hq_status_t st = bind_param(emu, params, layer, &list.items[k], err);
            if (st != HQ_OK)
                return st;
        }
        if (layer->params.activation == HQ_ACT_PRELU) {
            hq_status_t st = bind_slope(emu, params, layer, &emu->params[i], err);
            if (st != HQ_OK)
                return st;
        }
    }
    return HQ_OK;
}

/* Lets the kernel set precompute each layer (packed weights, ...) and state its scratch. */
static hq_status_t prepare_layers(hq_emulator_t *emu, hq_error_t *err)
{
    if (!emu->set->prepare)
        return HQ_OK;
    for (int i = 0; i < emu->layer_count; i++) {
        const hq_layer_t *layer = hq_graph_layer(emu->graph, i);
        hqi_emu_prepare_fn prepare = emu->set->prepare[layer->type];
        if (!prepare)
            continue;
        hq_error_t detail = {0};
        hq_status_t st = prepare(layer, &emu->params[i], &emu->prepared[i], &detail);
        if (st == HQ_OK &&
            (emu->prepared[i].scratch_per_thread < 0 || emu->prepared[i].scratch_per_sample < 0))
            st = hqi_error(&detail, HQ_ERR_LIMIT, "negative scratch size");
        if (st != HQ_OK)
            return hqi_error(err, st, "%s: layer '%s': %s", emu->name, layer->name, detail.message);
    }
    return HQ_OK;
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

/* ---- the buffer plan
 * --------------------------------------------------------------------- */

/* Walks the topological order, giving each activation a slot when its layer
 * runs and returning the slot when its last reader has run. A freed slot is
 * reused by the smallest fitting need (else the largest free slot grows), so a
 * chain needs only two or three slots. */
static hq_status_t plan(hq_emulator_t *emu, hq_error_t *err)
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
            value_t *v = &emu->values[emu->first_value[i] + p];
            hq_shape_t shape = hq_layer_port_shape(layer, p);
            v->layer = i;
            v->port = p;
            v->size = per_sample(&shape);
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
            value_t *v = &emu->values[emu->first_value[layer->inputs[k]] + layer->input_ports[k]];
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
            value_t *v = &emu->values[first + p];
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
                value_t *v =
                    &emu->values[emu->first_value[reader->inputs[k]] + reader->input_ports[k]];
                if (v->last_step == t && v->slot >= 0)
                    busy[v->slot] = false;
            }
        }
        for (int p = 0; p < ports; p++) {
            value_t *v = &emu->values[first + p];
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

/* ---- create / destroy
 * -------------------------------------------------------------------- */

const hqi_emu_kernel_set_t *hqi_emu_ref_set(void)
{
    static const hqi_emu_kernel_set_t set = {"reference", hqi_emu_ref_kernels, NULL};
    return &set;
}

HQ_API hq_status_t hq_emulator_create(const hq_graph_t *graph, const hq_npz_t *params,
                                      hq_target_t target, const char *name, hq_emulator_t **out,
                                      hq_error_t *err)
{
    /* The reference set stays reachable for debugging a fast kernel from the command line. */
    const char *choice = getenv("HQ_EMULATE_KERNELS");
    const hqi_emu_kernel_set_t *set =
        choice && !strcmp(choice, "reference") ? hqi_emu_ref_set() : hqi_emu_fast_set();
    return hqi_emulator_create_with_set(graph, params, target, name, set, out, err);
}

hq_status_t hqi_emulator_create_with_kernels(const hq_graph_t *graph, const hq_npz_t *params,
                                             hq_target_t target, const char *name,
                                             const hqi_emu_kernel_fn *kernels, hq_emulator_t **out,
                                             hq_error_t *err)
{
    hqi_emu_kernel_set_t set = {"custom", kernels, NULL};
    hq_status_t st = hqi_emulator_create_with_set(graph, params, target, name, &set, out, err);
    if (st == HQ_OK) {
        (*out)->custom_set = set; /* the table is the caller's; the set struct is ours */
        (*out)->set = &(*out)->custom_set;
    }
    return st;
}

hq_status_t hqi_emulator_create_with_set(const hq_graph_t *graph, const hq_npz_t *params,
                                         hq_target_t target, const char *name,
                                         const hqi_emu_kernel_set_t *set, hq_emulator_t **out,
                                         hq_error_t *err)
{
    if (!out)
        return hqi_error(err, HQ_ERR_ARGUMENT, "emulator: out is NULL");
    *out = NULL;
    if (!name)
        name = "emulator";
    if (!set || !set->run)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: no kernel table", name);
    const hqi_emu_kernel_fn *kernels = set->run;
    if (!graph || !hq_graph_is_finalized(graph))
        return hqi_error(err, HQ_ERR_STATE, "%s: the graph is missing or not finalized", name);
    if (!hq_target_name(target))
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: unknown target %d", name, (int)target);
    hq_emulator_t *emu = calloc(1, sizeof *emu);
    if (!emu)
        return hqi_nomem(err, "emulator");
    emu->graph = graph;
    emu->target = target;
    emu->kernels = kernels;
    emu->set = set;
    emu->threads = hqi_default_threads();
    emu->layer_count = hq_graph_layer_count(graph);
    emu->name = hqi_strdup(name);
    emu->params = calloc((size_t)emu->layer_count + 1, sizeof *emu->params);
    emu->prepared = calloc((size_t)emu->layer_count + 1, sizeof *emu->prepared);
    hq_status_t st = emu->name && emu->params && emu->prepared ? HQ_OK : hqi_nomem(err, "emulator");
    if (st == HQ_OK && target == HQ_TARGET_QUANTIZED)
        st = hqi_qemu_create(graph, params, name, &emu->quant, err); /* integer params */
    else if (st == HQ_OK)
        st = bind_params(emu, params, err);
    if (st == HQ_OK && emu->quant)
        hqi_qemu_time_layers(emu->quant, emu->type_seconds, emu->type_calls);
    if (st == HQ_OK && !emu->quant)
        st = prepare_layers(emu, err);
    const char *no_fuse = getenv("HQ_EMULATE_NO_FUSE");
    if (st == HQ_OK && !emu->quant && set == hqi_emu_fast_set() && !(no_fuse && no_fuse[0] == '1'))
        st = hqi_fuse_plan_create(graph, emu->params, emu->prepared, &emu->fuse, err);
    if (st == HQ_OK)
        st = plan(emu, err);
    if (st != HQ_OK) {
        hq_emulator_destroy(emu);
        return st;
    }
    *out = emu;
    return HQ_OK;
}

HQ_API hq_status_t hq_emulator_create_from_archive(hq_archive_t *archive, hq_target_t target,
                                                   hq_emulator_t **out, hq_error_t *err)
{
    if (out)
        *out = NULL;
    if (!archive)
        return hqi_error(err, HQ_ERR_ARGUMENT, "emulator: archive is NULL");
    static const struct {
        hq_params_kind_t kind;
        const char *suffix;
    } kinds[HQ_TARGET_COUNT] = {
        [HQ_TARGET_NATIVE] = {HQ_PARAMS_NATIVE, "npz"},
        [HQ_TARGET_FP_OPTIMIZED] = {HQ_PARAMS_FP_OPTIMIZED, "fpo.npz"},
        [HQ_TARGET_QUANTIZED] = {HQ_PARAMS_QUANTIZED, "q.npz"},
    };
    const char *path = hq_archive_path(archive);
    if (!path || !path[0])
        path = hq_archive_net_name(archive);
    if (!hq_target_name(target))
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: unknown target %d", path, (int)target);
    if (!hq_archive_has_params(archive, kinds[target].kind))
        return hqi_error(err, HQ_ERR_NOT_FOUND,
                         "%s: target %s needs member '%s.%s', which the archive lacks%s", path,
                         hq_target_name(target), hq_archive_net_name(archive), kinds[target].suffix,
                         target != HQ_TARGET_NATIVE ? " (run hq optimize first)" : "");
    hq_graph_t *graph = NULL;
    hq_npz_t *params = NULL;
    hq_status_t st = hq_archive_graph(archive, &graph, err);
    if (st == HQ_OK)
        st = hq_archive_params(archive, kinds[target].kind, &params, err);
    if (st != HQ_OK)
        return st;
    char name[1024];
    snprintf(name, sizeof name, "%s: %s.%s", path, hq_archive_net_name(archive),
             kinds[target].suffix);
    return hq_emulator_create(graph, params, target, name, out, err);
}

static void release_slots(hq_emulator_t *emu)
{
    for (int s = 0; emu->slot_data && s < emu->slot_sets * emu->slot_count; s++) {
        free(emu->slot_data[s]);
        emu->slot_data[s] = NULL;
    }
    emu->slot_batch = 0;
}

HQ_API void hq_emulator_destroy(hq_emulator_t *emulator)
{
    if (!emulator)
        return;
    release_slots(emulator);
    hqi_qemu_destroy(emulator->quant);
    hqi_fuse_plan_destroy(emulator->fuse);
    hqi_threadpool_destroy(emulator->pool);
    free(emulator->scratch);
    for (int i = 0; emulator->prepared && i < emulator->layer_count; i++)
        if (emulator->prepared[i].release)
            emulator->prepared[i].release(emulator->prepared[i].state);
    free(emulator->prepared);
    for (int i = 0; i < emulator->converted_count; i++)
        hq_tensor_destroy(emulator->converted[i]);
    free(emulator->converted);
    free(emulator->slot_data);
    free(emulator->slot_size);
    free(emulator->values);
    free(emulator->first_value);
    free(emulator->params);
    free(emulator->name);
    free(emulator);
}

HQ_API const hq_graph_t *hq_emulator_graph(const hq_emulator_t *emulator)
{
    return emulator ? emulator->graph : NULL;
}

HQ_API hq_target_t hq_emulator_target(const hq_emulator_t *emulator)
{
    return emulator ? emulator->target : HQ_TARGET_NATIVE;
}

static int64_t layer_size(const hq_emulator_t *emulator, const int *layers, int count, int index)
{
    if (!emulator || !layers || index < 0 || index >= count)
        return 0;
    return emulator->values[emulator->first_value[layers[index]]].size;
}

HQ_API int64_t hq_emulator_input_size(const hq_emulator_t *emulator, int input)
{
    int count = 0;
    const int *layers = emulator ? hq_graph_inputs(emulator->graph, &count) : NULL;
    return layer_size(emulator, layers, count, input);
}

HQ_API int64_t hq_emulator_output_size(const hq_emulator_t *emulator, int output)
{
    int count = 0;
    const int *layers = emulator ? hq_graph_outputs(emulator->graph, &count) : NULL;
    return layer_size(emulator, layers, count, output);
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
typedef struct run_layout {
    int lanes;            /* threads that run whole samples each; 1 = none do */
    int64_t lane_samples; /* samples each lane runs (0 when lanes is 1) */
    int64_t lane_chunk;   /* samples per pass of a lane */
    int64_t rest;         /* samples left for the row-split passes: batch - lanes * lane_samples */
    int64_t chunk;        /* samples per row-split pass */
} run_layout_t;

static run_layout_t layout_of(const hq_emulator_t *emu, int64_t batch, bool one_pass)
{
    run_layout_t layout = {.lanes = 1, .rest = batch, .chunk = chunk_of(emu, batch, one_pass)};
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
static int64_t slot_samples(const run_layout_t *layout)
{
    int64_t rows = layout->rest > 0 ? layout->chunk : 1;
    return layout->lanes > 1 && layout->lane_chunk > rows ? layout->lane_chunk : rows;
}

/* Scratch floats of one lane (layout->lanes > 1), and of the whole run: the lanes' scratch side
 * by side, or the row-split passes' on all threads, whichever is larger. -1 on overflow. */
static int64_t lane_scratch(const hq_emulator_t *emu, const run_layout_t *layout)
{
    return layout->lanes > 1 ? scratch_need(emu, layout->lane_chunk, 1) : 0;
}

static int64_t run_scratch(const hq_emulator_t *emu, const run_layout_t *layout)
{
    int64_t rows = layout->rest > 0 ? scratch_need(emu, layout->chunk, emu->threads) : 0;
    int64_t lane = lane_scratch(emu, layout);
    if (rows < 0 || lane < 0 || lane > INT64_MAX / layout->lanes)
        return -1;
    return lane * layout->lanes > rows ? lane * layout->lanes : rows;
}

HQ_API int64_t hq_emulator_scratch_bytes(const hq_emulator_t *emulator, int64_t batch)
{
    if (!emulator || batch < 1)
        return 0;
    run_layout_t layout = layout_of(emulator, batch, false);
    int64_t floats = run_scratch(emulator, &layout);
    return floats < 0 || floats > INT64_MAX / 4 ? 0 : floats * (int64_t)sizeof(float);
}

HQ_API int64_t hq_emulator_peak_bytes(const hq_emulator_t *emulator, int64_t batch)
{
    if (!emulator || batch < 1)
        return 0;
    run_layout_t layout = layout_of(emulator, batch, false);
    const int64_t samples = slot_samples(&layout) * layout.lanes;
    int64_t floats = run_scratch(emulator, &layout);
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

HQ_API hq_status_t hq_emulator_set_threads(hq_emulator_t *emulator, int threads, hq_error_t *err)
{
    if (!emulator)
        return hqi_error(err, HQ_ERR_ARGUMENT, "emulator: NULL emulator");
    if (threads < 0 || threads > HQI_THREADS_MAX)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: %d threads, need 1 to %d (0 = default)",
                         emulator->name, threads, HQI_THREADS_MAX);
    if (threads == 0)
        threads = hqi_default_threads();
    if (threads != emulator->threads) {
        hqi_threadpool_destroy(emulator->pool);
        emulator->pool = NULL;
        emulator->threads = threads;
    }
    if (emulator->quant) /* the integer kernels split batches by sample: same bytes at any count */
        return hqi_qemu_set_threads(emulator->quant, threads, err);
    return HQ_OK;
}

HQ_API int hq_emulator_threads(const hq_emulator_t *emulator)
{
    return emulator ? emulator->threads : 0;
}

HQ_API const char *hq_emulator_kernels(const hq_emulator_t *emulator)
{
    if (!emulator)
        return "none";
    if (emulator->set == hqi_emu_fast_set())
        return hqi_emu_fast_description();
    return emulator->set->name;
}

HQ_API double hq_emulator_type_seconds(const hq_emulator_t *emulator, hq_layer_type_t type,
                                       int64_t *calls)
{
    bool known = emulator && (int)type >= 0 && type < HQ_LAYER_TYPE_COUNT;
    if (calls)
        *calls = known ? emulator->type_calls[type] : 0;
    return known ? emulator->type_seconds[type] : 0.0;
}

HQ_API void hq_emulator_reset_stats(hq_emulator_t *emulator)
{
    if (!emulator)
        return;
    memset(emulator->type_seconds, 0, sizeof emulator->type_seconds);
    memset(emulator->type_calls, 0, sizeof emulator->type_calls);
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
static hq_status_t ensure_threads_and_scratch(hq_emulator_t *emu, const run_layout_t *layout,
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
    int64_t need = run_scratch(emu, layout);
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
    release_slots(emu);
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
            release_slots(emu);
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
        const value_t *v = &emu->values[emu->first_value[layer->inputs[k]] + layer->input_ports[k]];
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
    const value_t *v = &emu->values[emu->first_value[layer->inputs[k]] + layer->input_ports[k]];
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
    const value_t *v = &emu->values[emu->first_value[last]];
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
        lane->pass_in[i] = args->inputs[i]
                               ? args->inputs[i] + first * hq_emulator_input_size(emu, i)
                               : NULL;
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
    const run_layout_t *layout;
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
    const run_layout_t layout = layout_of(emulator, batch, tap != NULL || subset != NULL);
    hq_status_t st = ensure_slots(emulator, layout.lanes, slot_samples(&layout), err);
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
    const int64_t lane_floats = lane_scratch(emulator, &layout);
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
