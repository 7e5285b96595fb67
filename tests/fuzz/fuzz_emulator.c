/* fuzz_emulator.c — libFuzzer target for the float graph executor: the input is a `.hn` graph;
 * when it parses, params of the shapes each layer declares are made up (deterministic values),
 * and the emulator is built and run on a batch of 2 with a tap. Errors are fine; crashes, leaks,
 * out-of-bounds accesses and UB are not. Graphs too large to run quickly are skipped. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq/emulate.h"
#include "hq/graph.h"
#include "hq/tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PARAM_VALUES 65536
#define MAX_WORK 4000000 /* multiply-adds per sample, roughly */

static int64_t sample_count(const hq_shape_t *s)
{
    int64_t n = 1;
    for (int d = 1; d < s->ndim; d++) {
        if (s->dims[d] < 1 || n > (1 << 24) / s->dims[d])
            return -1;
        n *= s->dims[d];
    }
    return n;
}

/* Adds `key` with `count` values laid out as `shape`; false when too large. */
static int put(hq_npz_t *npz, const char *layer, const char *suffix, int ndim, const int64_t *shape,
               float offset)
{
    int64_t count = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0 || shape[d] > MAX_PARAM_VALUES || count * shape[d] > MAX_PARAM_VALUES)
            return 0;
        count *= shape[d];
    }
    hq_tensor_t *t = NULL;
    if (hq_tensor_create(HQ_DTYPE_FLOAT32, ndim, shape, &t, NULL) != HQ_OK)
        return 0;
    float *x = t->data;
    for (int64_t i = 0; i < count; i++)
        x[i] = offset + (float)((i * 7919) % 13) / 13.0f - 0.4f;
    char key[600];
    snprintf(key, sizeof key, "%s/%s", layer, suffix);
    return hq_npz_put(npz, key, t, NULL) == HQ_OK;
}

/* Params as each layer declares them; 0 when the graph is too large to fuzz quickly. */
static int make_params(const hq_graph_t *g, hq_npz_t *npz)
{
    int64_t work = 0;
    for (int i = 0; i < hq_graph_layer_count(g); i++) {
        const hq_layer_t *l = hq_graph_layer(g, i);
        const hq_layer_params_t *p = &l->params;
        int64_t out = sample_count(&l->output_shape);
        if (out < 0)
            return 0;
        int64_t c = l->output_shape.dims[l->output_shape.ndim - 1];
        int64_t kernel4[4] = {p->kernel_h, p->kernel_w, p->kernel_in, p->kernel_out};
        int64_t kernel2[2] = {p->kernel_in, p->kernel_out};
        int64_t bias[1] = {p->kernel_out}, channels[1] = {c};
        int64_t per_out = 1;
        switch (l->type) {
        case HQ_LAYER_CONV:
        case HQ_LAYER_DW:
        case HQ_LAYER_DECONV:
            if (!put(npz, l->name, "kernel:0", 4, kernel4, 0.0f))
                return 0;
            per_out = (int64_t)p->kernel_h * p->kernel_w * p->kernel_in;
            break;
        case HQ_LAYER_DENSE:
            if (!put(npz, l->name, "kernel:0", 2, kernel2, 0.0f))
                return 0;
            per_out = p->kernel_in;
            break;
        case HQ_LAYER_BATCH_NORM:
            if (!put(npz, l->name, "gamma:0", 1, channels, 1.0f) ||
                !put(npz, l->name, "beta:0", 1, channels, 0.0f) ||
                !put(npz, l->name, "moving_mean:0", 1, channels, 0.0f) ||
                !put(npz, l->name, "moving_variance:0", 1, channels, 1.0f))
                return 0;
            break;
        case HQ_LAYER_CONST_INPUT: {
            int64_t flat[1] = {out};
            if (!put(npz, l->name, "const:0", 1, flat, 0.5f))
                return 0;
            break;
        }
        case HQ_LAYER_MAXPOOL:
        case HQ_LAYER_AVGPOOL:
            per_out = (int64_t)p->kernel_h * p->kernel_w;
            break;
        case HQ_LAYER_RESIZE:
        case HQ_LAYER_GLOBAL_AVG_POOL:
        case HQ_LAYER_REDUCE_MAX:
        case HQ_LAYER_REDUCE_SUM:
        case HQ_LAYER_SOFTMAX:
            per_out = l->input_shape_count ? sample_count(&l->input_shapes[0]) : 1;
            break;
        default:
            break;
        }
        if ((l->type == HQ_LAYER_CONV || l->type == HQ_LAYER_DW || l->type == HQ_LAYER_DECONV ||
             l->type == HQ_LAYER_DENSE) &&
            p->has_bias && !put(npz, l->name, "bias:0", 1, bias, 0.1f))
            return 0;
        if (p->activation == HQ_ACT_PRELU && !put(npz, l->name, "prelu_slope:0", 1, channels, 0.3f))
            return 0;
        if (per_out < 0 || per_out > MAX_WORK || out > MAX_WORK / (per_out ? per_out : 1))
            return 0;
        work += out * (per_out ? per_out : 1);
        if (work > MAX_WORK)
            return 0;
    }
    return 1;
}

static hq_status_t tap(void *user, int layer, int port, const hq_shape_t *shape, const float *x,
                       hq_error_t *err)
{
    (void)layer, (void)port, (void)err;
    volatile float *sink = user;
    int64_t n = 1;
    for (int d = 0; d < shape->ndim; d++)
        n *= shape->dims[d];
    if (n > 0)
        *sink = x[0] + x[n - 1]; /* touches both ends: ASan checks the extent */
    return HQ_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hq_graph_t *g = NULL;
    hq_error_t err;
    if (hq_graph_from_json((const char *)data, size, "fuzz.hn", &g, &err) != HQ_OK)
        return 0;
    hq_npz_t *params = NULL;
    hq_emulator_t *emu = NULL;
    float **inputs = NULL;
    int in_count = 0;
    hq_graph_inputs(g, &in_count);
    if (hq_npz_create(&params, &err) != HQ_OK || !make_params(g, params))
        goto done;
    if (hq_emulator_create(g, params, HQ_TARGET_NATIVE, "fuzz", &emu, &err) != HQ_OK)
        goto done;
    if (hq_emulator_peak_bytes(emu, 2) > (64 << 20))
        goto done;
    inputs = calloc((size_t)in_count + 1, sizeof *inputs);
    if (!inputs)
        goto done;
    for (int i = 0; i < in_count; i++) {
        int64_t n = hq_emulator_input_size(emu, i) * 2;
        inputs[i] = malloc((size_t)n * sizeof(float));
        if (!inputs[i])
            goto done;
        for (int64_t k = 0; k < n; k++)
            inputs[i][k] = (float)(k % 17) - 8.0f;
    }
    volatile float sink = 0;
    (void)hq_emulator_run(emu, 2, (const float *const *)inputs, NULL, tap, (void *)&sink, &err);
done:
    for (int i = 0; inputs && i < in_count; i++)
        free(inputs[i]);
    free(inputs);
    hq_emulator_destroy(emu);
    hq_npz_destroy(params);
    hq_graph_destroy(g);
    return 0;
}
