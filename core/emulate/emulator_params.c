/* emulator_params.c — the float emulator's params: which tensors each layer type reads and
 * the shapes its params imply, their lookup in the params set and check, float32 views of them
 * (converting float16 and float64 copies), and the kernel set's prepare of each layer. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emulate/emulator_internal.h"
#include "util/util.h"

static void format_dims(const int64_t *dims, int ndim, char *out, size_t size)
{
    size_t used = (size_t)snprintf(out, size, "[");
    for (int d = 0; d < ndim && used < size; d++)
        used +=
            (size_t)snprintf(out + used, size - used, d ? ", %lld" : "%lld", (long long)dims[d]);
    if (used < size)
        snprintf(out + used, size - used, "]");
}

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
    list->items[list->count - 1].count = hqi_emu_per_sample(&layer->output_shape);
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

/* The tensor "<layer>/<suffix>" of the params set into *out, its key into key[1024] (for the
 * messages that follow). */
static hq_status_t find_param(const hq_emulator_t *emu, const hq_npz_t *params,
                              const hq_layer_t *layer, const char *suffix, char key[1024],
                              const hq_tensor_t **out, hq_error_t *err)
{
    int len = snprintf(key, 1024, "%s/%s", layer->name, suffix);
    if (len < 0 || len >= 1024)
        return hqi_error(err, HQ_ERR_LIMIT, "%s: layer '%s': name too long", emu->name,
                         layer->name);
    *out = params ? hq_npz_get(params, key) : NULL;
    if (!*out)
        return hqi_error(err, HQ_ERR_NOT_FOUND, "%s: layer '%s': params key '%s' missing",
                         emu->name, layer->name, key);
    return HQ_OK;
}

static hq_status_t bind_param(hq_emulator_t *emu, const hq_npz_t *params, const hq_layer_t *layer,
                              const param_need_t *n, hq_error_t *err)
{
    char key[1024];
    const hq_tensor_t *t = NULL;
    hq_status_t st = find_param(emu, params, layer, n->suffix, key, &t, err);
    if (st != HQ_OK)
        return st;
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
    const hq_tensor_t *t = NULL;
    hq_status_t st = find_param(emu, params, layer, "prelu_slope:0", key, &t, err);
    if (st != HQ_OK)
        return st;
    int64_t count = hq_tensor_count(t), channels = layer_channels(layer);
    if (count != 1 && count != channels)
        return hqi_error(err, HQ_ERR_INVALID,
                         "%s: layer '%s': params key '%s' has %lld values, expected 1 or %lld",
                         emu->name, layer->name, key, (long long)count, (long long)channels);
    p->slope_count = count;
    return float_data(emu, t, key, &p->slope, err);
}

hq_status_t hqi_emu_bind_params(hq_emulator_t *emu, const hq_npz_t *params, hq_error_t *err)
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
hq_status_t hqi_emu_prepare_layers(hq_emulator_t *emu, hq_error_t *err)
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
