/* kernels_fast_ops.c — the fast kernel set of the emulator: adapts layers to kernels_fast.h,
 * prepares them at create time (packed conv/dense weights, batch norm folded to scale and
 * shift) and falls back to the reference kernel for every type it does not speed up (and for
 * the rare shapes a fast kernel refuses as unsupported). */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "emulate/emulator_internal.h"
#include "emulate/kernels_fast.h"
#include "util/util.h"

static bool image_dims(const hq_shape_t *shape, hqi_ref_dims_t *dims)
{
    if (shape->ndim != 4)
        return false;
    dims->n = shape->dims[0];
    dims->h = shape->dims[1];
    dims->w = shape->dims[2];
    dims->c = shape->dims[3];
    return true;
}

static hq_status_t reference(const hqi_emu_call_t *call, hq_error_t *err)
{
    return hqi_emu_ref_kernels[call->layer->type](call, err);
}

/* ---- conv, dw, deconv, dense ---------------------------------------------------------------- */

static void release_conv(void *state)
{
    hqi_fast_conv_destroy(state);
}

static hq_status_t prepare_conv_kind(const hq_layer_t *layer, const hqi_emu_params_t *params,
                                     hqi_fast_kind_t kind, hqi_emu_prepared_t *out, hq_error_t *err)
{
    const hq_layer_params_t *p = &layer->params;
    hqi_fast_conv_desc_t desc = {
        .kind = kind,
        .window = hqi_emu_layer_window(p, true),
        .output_pad_h = kind == HQI_FAST_DECONV ? p->output_pads[0] : 0,
        .output_pad_w = kind == HQI_FAST_DECONV ? p->output_pads[1] : 0,
        .groups = kind == HQI_FAST_DENSE ? 1 : p->groups,
        .cin = (int64_t)p->kernel_in * (kind == HQI_FAST_DENSE ? 1 : p->groups),
        .cout = p->kernel_out,
    };
    hqi_fast_conv_t *conv = NULL;
    hq_status_t st = hqi_fast_conv_prepare(&desc, params->kernel, params->bias, &conv, err);
    if (st == HQ_ERR_ARGUMENT)
        return HQ_OK; /* inconsistent params: the reference kernel reports them at run time */
    if (st != HQ_OK)
        return st;
    out->state = conv;
    out->release = release_conv;
    out->scratch_per_thread = hqi_fast_conv_scratch(conv);
    return HQ_OK;
}

static hq_status_t prepare_conv(const hq_layer_t *layer, const hqi_emu_params_t *params,
                                hqi_emu_prepared_t *out, hq_error_t *err)
{
    return prepare_conv_kind(layer, params, HQI_FAST_CONV, out, err);
}

static hq_status_t prepare_deconv(const hq_layer_t *layer, const hqi_emu_params_t *params,
                                  hqi_emu_prepared_t *out, hq_error_t *err)
{
    return prepare_conv_kind(layer, params, HQI_FAST_DECONV, out, err);
}

static hq_status_t prepare_dense(const hq_layer_t *layer, const hqi_emu_params_t *params,
                                 hqi_emu_prepared_t *out, hq_error_t *err)
{
    return prepare_conv_kind(layer, params, HQI_FAST_DENSE, out, err);
}

static hq_status_t run_conv(const hqi_emu_call_t *call, hq_error_t *err)
{
    const hq_layer_params_t *p = &call->layer->params;
    hqi_ref_dims_t in, out;
    if (!call->prepared || !image_dims(&call->input_shapes[0], &in) ||
        !image_dims(&call->output_shapes[0], &out))
        return reference(call, err);
    const float *addend = NULL;
    if (p->elementwise_add) {
        if (call->input_count < 2 ||
            hqi_shape_count(&call->input_shapes[1]) != hqi_shape_count(&call->output_shapes[0]))
            return hqi_error(err, HQ_ERR_ARGUMENT,
                             "conv: elementwise_add needs a second input of the output's shape");
        addend = call->inputs[1];
    }
    hqi_ref_act_t act = hqi_emu_layer_act(call);
    return hqi_fast_conv_run(call->prepared, &act, in, call->inputs[0], addend, out,
                             call->outputs[0], call->scratch, call->pool, err);
}

static hq_status_t run_deconv(const hqi_emu_call_t *call, hq_error_t *err)
{
    hqi_ref_dims_t in, out;
    if (!call->prepared || !image_dims(&call->input_shapes[0], &in) ||
        !image_dims(&call->output_shapes[0], &out))
        return reference(call, err);
    hqi_ref_act_t act = hqi_emu_layer_act(call);
    return hqi_fast_conv_run(call->prepared, &act, in, call->inputs[0], NULL, out, call->outputs[0],
                             call->scratch, call->pool, err);
}

static hq_status_t run_dense(const hqi_emu_call_t *call, hq_error_t *err)
{
    if (!call->prepared)
        return reference(call, err);
    hqi_ref_act_t act = hqi_emu_layer_act(call);
    int64_t cin = hqi_shape_count(&call->input_shapes[0]) / call->batch;
    int64_t cout = hqi_shape_count(&call->output_shapes[0]) / call->batch;
    hqi_ref_dims_t in = {call->batch, 1, 1, cin}, out = {call->batch, 1, 1, cout};
    return hqi_fast_conv_run(call->prepared, &act, in, call->inputs[0], NULL, out, call->outputs[0],
                             call->scratch, call->pool, err);
}

/* ---- batch norm: folded to y = x * scale + shift -------------------------------------------- */

static hq_status_t prepare_batch_norm(const hq_layer_t *layer, const hqi_emu_params_t *params,
                                      hqi_emu_prepared_t *out, hq_error_t *err)
{
    const hq_shape_t *s = &layer->output_shape;
    int64_t c = s->ndim > 0 ? s->dims[s->ndim - 1] : 1;
    if (c < 1 || !params->mean || !params->variance)
        return HQ_OK; /* the reference kernel reports it */
    float *folded = malloc((size_t)c * 2 * sizeof(float));
    if (!folded)
        return hqi_nomem(err, "batch_norm");
    for (int64_t k = 0; k < c; k++) {
        double scale = (params->gamma ? (double)params->gamma[k] : 1.0) /
                       sqrt((double)params->variance[k] + layer->params.epsilon);
        folded[k] = (float)scale;
        folded[c + k] =
            (float)((params->beta ? (double)params->beta[k] : 0.0) - params->mean[k] * scale);
    }
    out->state = folded;
    out->release = free;
    return HQ_OK;
}

static hq_status_t run_batch_norm(const hqi_emu_call_t *call, hq_error_t *err)
{
    const hq_shape_t *s = &call->input_shapes[0];
    int64_t channels = s->ndim > 0 ? s->dims[s->ndim - 1] : 1;
    const hqi_emu_params_t *t = call->params;
    if (!call->prepared)
        return reference(call, err);
    for (int64_t c = 0; c < channels; c++)
        if (!((double)t->variance[c] + (double)call->layer->params.epsilon > 0.0))
            return reference(call, err); /* the reference names the bad variance */
    const float *folded = call->prepared;
    hqi_ref_act_t act = hqi_emu_layer_act(call);
    return hqi_fast_affine(&act, hqi_shape_count(s) / channels, channels, folded, folded + channels,
                           call->inputs[0], call->outputs[0], call->pool, err);
}

/* ---- memory-bound layers -------------------------------------------------------------------- */

static hq_status_t run_activation(const hqi_emu_call_t *call, hq_error_t *err)
{
    const hq_shape_t *s = &call->input_shapes[0];
    int64_t channels = s->ndim > 0 ? s->dims[s->ndim - 1] : 1;
    hqi_ref_act_t act = hqi_emu_layer_act(call);
    return hqi_fast_activation(&act, hqi_shape_count(s) / channels, channels, call->inputs[0],
                               call->outputs[0], call->pool, err);
}

static hq_status_t run_pool(const hqi_emu_call_t *call, bool max, hq_error_t *err)
{
    const hq_layer_params_t *p = &call->layer->params;
    hqi_ref_dims_t in, out;
    if (!image_dims(&call->input_shapes[0], &in) || !image_dims(&call->output_shapes[0], &out))
        return reference(call, err);
    hqi_ref_pool_params_t pp = {hqi_emu_layer_window(p, max), p->count_include_pad};
    return max ? hqi_fast_maxpool(&pp, in, call->inputs[0], out, call->outputs[0], call->pool, err)
               : hqi_fast_avgpool(&pp, in, call->inputs[0], out, call->outputs[0], call->pool, err);
}

static hq_status_t run_maxpool(const hqi_emu_call_t *call, hq_error_t *err)
{
    return run_pool(call, true, err);
}

static hq_status_t run_avgpool(const hqi_emu_call_t *call, hq_error_t *err)
{
    return run_pool(call, false, err);
}

static hq_status_t run_global_avg_pool(const hqi_emu_call_t *call, hq_error_t *err)
{
    hqi_ref_dims_t in;
    if (!image_dims(&call->input_shapes[0], &in))
        return reference(call, err);
    return hqi_fast_global_avg_pool(in, call->inputs[0], call->outputs[0], call->pool, err);
}

static hq_status_t run_elementwise(const hqi_emu_call_t *call, hq_error_t *err)
{
    if (call->input_count != 2)
        return reference(call, err);
    hqi_ref_act_t act = hqi_emu_layer_act(call);
    hq_error_t detail = {0};
    hq_status_t st = hqi_fast_elementwise(
        hqi_ref_ew_op_of(hqi_layer_traits(call->layer->type)->ew_op), &call->input_shapes[0],
        call->inputs[0], &call->input_shapes[1], call->inputs[1], &act, &call->output_shapes[0],
        call->outputs[0], call->pool, &detail);
    if (st == HQ_ERR_UNSUPPORTED)
        return reference(call, err);
    if (st != HQ_OK && err)
        *err = detail;
    return st;
}

static hq_status_t run_resize(const hqi_emu_call_t *call, hq_error_t *err)
{
    const hq_layer_params_t *p = &call->layer->params;
    hqi_ref_dims_t in, out;
    if (!image_dims(&call->input_shapes[0], &in) || !image_dims(&call->output_shapes[0], &out))
        return reference(call, err);
    hqi_ref_resize_params_t rp = {.method = p->resize_method,
                                  .coords = p->resize_coords,
                                  .round_prefer_floor = p->nearest_round,
                                  .nearest_ceil = p->nearest_ceil,
                                  .scale_h = p->resize_scales[0],
                                  .scale_w = p->resize_scales[1]};
    return hqi_fast_resize(&rp, in, call->inputs[0], out, call->outputs[0], call->pool, err);
}

static hq_status_t run_channel_shuffle(const hqi_emu_call_t *call, hq_error_t *err)
{
    return hqi_fast_channel_shuffle(&call->input_shapes[0], call->layer->params.groups,
                                    call->inputs[0], call->outputs[0], call->pool, err);
}

/* ---- the set -------------------------------------------------------------------------------- */

static const hqi_emu_kernel_fn fast_overrides[HQ_LAYER_TYPE_COUNT] = {
    [HQ_LAYER_CONV] = run_conv,
    [HQ_LAYER_DW] = run_conv,
    [HQ_LAYER_DECONV] = run_deconv,
    [HQ_LAYER_DENSE] = run_dense,
    [HQ_LAYER_BATCH_NORM] = run_batch_norm,
    [HQ_LAYER_ACTIVATION] = run_activation,
    [HQ_LAYER_MAXPOOL] = run_maxpool,
    [HQ_LAYER_AVGPOOL] = run_avgpool,
    [HQ_LAYER_GLOBAL_AVG_POOL] = run_global_avg_pool,
    [HQ_LAYER_EW_ADD] = run_elementwise,
    [HQ_LAYER_EW_SUB] = run_elementwise,
    [HQ_LAYER_EW_MULT] = run_elementwise,
    [HQ_LAYER_EW_DIV] = run_elementwise,
    [HQ_LAYER_EW_MAX] = run_elementwise,
    [HQ_LAYER_EW_MIN] = run_elementwise,
    [HQ_LAYER_RESIZE] = run_resize,
    [HQ_LAYER_CHANNEL_SHUFFLE] = run_channel_shuffle,
};

static const hqi_emu_prepare_fn fast_prepare[HQ_LAYER_TYPE_COUNT] = {
    [HQ_LAYER_CONV] = prepare_conv,
    [HQ_LAYER_DW] = prepare_conv,
    [HQ_LAYER_DECONV] = prepare_deconv,
    [HQ_LAYER_DENSE] = prepare_dense,
    [HQ_LAYER_BATCH_NORM] = prepare_batch_norm,
};

/* The run table: the overrides over a copy of the reference table, filled once (the reference
 * table is another file's data, not a constant expression here). */
static hqi_emu_kernel_fn fast_run[HQ_LAYER_TYPE_COUNT];
static pthread_once_t fast_once = PTHREAD_ONCE_INIT;

static void fill_fast_run(void)
{
    for (int t = 0; t < HQ_LAYER_TYPE_COUNT; t++)
        fast_run[t] = fast_overrides[t] && hqi_emu_ref_kernels[t] ? fast_overrides[t]
                                                                  : hqi_emu_ref_kernels[t];
}

const hqi_emu_kernel_set_t *hqi_emu_fast_set(void)
{
    static const hqi_emu_kernel_set_t set = {"fast", fast_run, fast_prepare};
    pthread_once(&fast_once, fill_fast_run);
    return &set;
}

const char *hqi_emu_fast_description(void)
{
    const char *isa = hqi_fast_isa_name();
    return !strcmp(isa, "avx512")     ? "fast (avx512)"
           : !strcmp(isa, "portable") ? "fast (portable)"
                                      : "fast (avx2+fma)";
}
