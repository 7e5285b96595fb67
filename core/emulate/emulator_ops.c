/* emulator_ops.c — the reference kernel set of the emulator: adapts each layer
 * type's graph params to the scalar kernels of kernels_ref.h (one small
 * function per type, dispatched through hqi_emu_ref_kernels). */
#include <string.h>

#include "emulate/emulator_internal.h"
#include "emulate/kernels_ref.h"
#include "util/util.h"

/* NHWC extents of a rank-4 shape. */
static hq_status_t image_dims(const hq_shape_t *shape, const char *what, hqi_ref_dims_t *dims,
                              hq_error_t *err)
{
    if (shape->ndim != 4)
        return hqi_error(err, HQ_ERR_UNSUPPORTED, "%s has rank %d, the kernel needs NHWC (rank 4)",
                         what, shape->ndim);
    dims->n = shape->dims[0];
    dims->h = shape->dims[1];
    dims->w = shape->dims[2];
    dims->c = shape->dims[3];
    return HQ_OK;
}

static int64_t last_extent(const hq_shape_t *shape)
{
    return shape->ndim > 0 ? shape->dims[shape->ndim - 1] : 1;
}

hqi_ref_act_t hqi_emu_layer_act(const hqi_emu_call_t *call)
{
    const hq_layer_params_t *p = &call->layer->params;
    hqi_ref_act_t act = {p->activation, p->activation_alpha, p->activation_beta,
                         call->params->slope, call->params->slope_count};
    return act;
}

hqi_ref_window_t hqi_emu_layer_window(const hq_layer_params_t *p, bool dilated)
{
    hqi_ref_window_t w = {p->kernel_h,
                          p->kernel_w,
                          p->stride_h,
                          p->stride_w,
                          dilated ? p->dilation_h : 1,
                          dilated ? p->dilation_w : 1,
                          p->pads[0],
                          p->pads[1],
                          p->pads[2],
                          p->pads[3]};
    return w;
}

/* The weights were checked against the layer's kernel params at create time;
 * the tensors the kernel sees must agree with those params too, or the kernel
 * would index past the weights. */
static hq_status_t check_weights(const hq_layer_params_t *p, int64_t in_c, int64_t out_c,
                                 int64_t groups, hq_error_t *err)
{
    if (groups < 1 || in_c != (int64_t)p->kernel_in * groups || out_c != p->kernel_out)
        return hqi_error(err, HQ_ERR_ARGUMENT,
                         "weights: kernel [%d, %d, %d, %d] does not fit %lld input and %lld "
                         "output channels in %lld groups",
                         p->kernel_h, p->kernel_w, p->kernel_in, p->kernel_out, (long long)in_c,
                         (long long)out_c, (long long)groups);
    return HQ_OK;
}

/* input_layer, output_layer, reshape: the same values (reshape keeps NHWC
 * memory order). */
static hq_status_t run_copy(const hqi_emu_call_t *call, hq_error_t *err)
{
    int64_t count = hqi_shape_count(&call->output_shapes[0]);
    if (count != hqi_shape_count(&call->input_shapes[0]))
        return hqi_error(err, HQ_ERR_ARGUMENT, "copy: input has %lld values, output %lld",
                         (long long)hqi_shape_count(&call->input_shapes[0]), (long long)count);
    memcpy(call->outputs[0], call->inputs[0], (size_t)count * sizeof(float));
    return HQ_OK;
}

/* const_input: the one-sample constant repeated over the batch. */
static hq_status_t run_const(const hqi_emu_call_t *call, hq_error_t *err)
{
    int64_t per_sample = hqi_shape_count(&call->output_shapes[0]) / call->batch;
    if (!call->params->constant || call->params->constant_count != per_sample)
        return hqi_error(err, HQ_ERR_ARGUMENT, "const_input: constant has %lld values, need %lld",
                         (long long)call->params->constant_count, (long long)per_sample);
    for (int64_t n = 0; n < call->batch; n++)
        memcpy(call->outputs[0] + n * per_sample, call->params->constant,
               (size_t)per_sample * sizeof(float));
    return HQ_OK;
}

static hq_status_t run_conv(const hqi_emu_call_t *call, hq_error_t *err)
{
    const hq_layer_params_t *p = &call->layer->params;
    hqi_ref_dims_t in, out;
    hq_status_t st = image_dims(&call->input_shapes[0], "input", &in, err);
    if (st == HQ_OK)
        st = image_dims(&call->output_shapes[0], "output", &out, err);
    if (st != HQ_OK)
        return st;
    st = check_weights(p, in.c, out.c, p->groups, err);
    if (st != HQ_OK)
        return st;
    const float *addend = NULL;
    if (p->elementwise_add) {
        if (call->input_count < 2 ||
            hqi_shape_count(&call->input_shapes[1]) != hqi_shape_count(&call->output_shapes[0]))
            return hqi_error(err, HQ_ERR_ARGUMENT,
                             "conv: elementwise_add needs a second input of the output's shape");
        addend = call->inputs[1];
    }
    hqi_ref_conv_params_t cp = {hqi_emu_layer_window(p, true), p->groups, hqi_emu_layer_act(call)};
    return hqi_ref_conv2d(&cp, in, call->inputs[0], call->params->kernel, call->params->bias,
                          addend, out, call->outputs[0], err);
}

static hq_status_t run_deconv(const hqi_emu_call_t *call, hq_error_t *err)
{
    const hq_layer_params_t *p = &call->layer->params;
    hqi_ref_dims_t in, out;
    hq_status_t st = image_dims(&call->input_shapes[0], "input", &in, err);
    if (st == HQ_OK)
        st = image_dims(&call->output_shapes[0], "output", &out, err);
    if (st != HQ_OK)
        return st;
    st = check_weights(p, in.c, out.c, p->groups, err);
    if (st != HQ_OK)
        return st;
    hqi_ref_deconv_params_t dp = {hqi_emu_layer_window(p, true), p->output_pads[0],
                                  p->output_pads[1], p->groups, hqi_emu_layer_act(call)};
    return hqi_ref_deconv2d(&dp, in, call->inputs[0], call->params->kernel, call->params->bias, out,
                            call->outputs[0], err);
}

static hq_status_t run_dense(const hqi_emu_call_t *call, hq_error_t *err)
{
    hqi_ref_act_t act = hqi_emu_layer_act(call);
    int64_t cin = hqi_shape_count(&call->input_shapes[0]) / call->batch;
    int64_t cout = hqi_shape_count(&call->output_shapes[0]) / call->batch;
    hq_status_t st = check_weights(&call->layer->params, cin, cout, 1, err);
    if (st != HQ_OK)
        return st;
    return hqi_ref_dense(call->batch, cin, cout, call->inputs[0], call->params->kernel,
                         call->params->bias, &act, call->outputs[0], err);
}

static hq_status_t run_batch_norm(const hqi_emu_call_t *call, hq_error_t *err)
{
    hqi_ref_act_t act = hqi_emu_layer_act(call);
    int64_t channels = last_extent(&call->input_shapes[0]);
    int64_t rows = hqi_shape_count(&call->input_shapes[0]) / channels;
    const hqi_emu_params_t *t = call->params;
    return hqi_ref_batch_norm(rows, channels, call->inputs[0], t->gamma, t->beta, t->mean,
                              t->variance, call->layer->params.epsilon, &act, call->outputs[0],
                              err);
}

static hq_status_t run_layer_norm(const hqi_emu_call_t *call, hq_error_t *err)
{
    int64_t channels = last_extent(&call->input_shapes[0]);
    int64_t rows = hqi_shape_count(&call->input_shapes[0]) / channels;
    return hqi_ref_layer_norm(rows, channels, call->inputs[0], call->params->gamma,
                              call->params->beta, call->layer->params.epsilon, call->outputs[0],
                              err);
}

static hq_status_t run_matmul(const hqi_emu_call_t *call, hq_error_t *err)
{
    return hqi_ref_matmul(&call->input_shapes[0], call->inputs[0], &call->input_shapes[1],
                          call->inputs[1], call->outputs[0], err);
}

static hq_status_t run_activation(const hqi_emu_call_t *call, hq_error_t *err)
{
    hqi_ref_act_t act = hqi_emu_layer_act(call);
    int64_t channels = last_extent(&call->input_shapes[0]);
    int64_t rows = hqi_shape_count(&call->input_shapes[0]) / channels;
    return hqi_ref_activation(&act, rows, channels, call->inputs[0], call->outputs[0], err);
}

static hq_status_t run_normalization(const hqi_emu_call_t *call, hq_error_t *err)
{
    const hq_layer_params_t *p = &call->layer->params;
    hqi_ref_act_t act = hqi_emu_layer_act(call);
    int64_t channels = last_extent(&call->input_shapes[0]);
    int64_t rows = hqi_shape_count(&call->input_shapes[0]) / channels;
    return hqi_ref_normalization(rows, channels, call->inputs[0], p->mean, p->std, p->channels,
                                 &act, call->outputs[0], err);
}

static hq_status_t run_pool(const hqi_emu_call_t *call, bool max, hq_error_t *err)
{
    const hq_layer_params_t *p = &call->layer->params;
    hqi_ref_dims_t in, out;
    hq_status_t st = image_dims(&call->input_shapes[0], "input", &in, err);
    if (st == HQ_OK)
        st = image_dims(&call->output_shapes[0], "output", &out, err);
    if (st != HQ_OK)
        return st;
    hqi_ref_pool_params_t pp = {hqi_emu_layer_window(p, max), p->count_include_pad};
    return max ? hqi_ref_maxpool(&pp, in, call->inputs[0], out, call->outputs[0], err)
               : hqi_ref_avgpool(&pp, in, call->inputs[0], out, call->outputs[0], err);
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
    hq_status_t st = image_dims(&call->input_shapes[0], "input", &in, err);
    if (st != HQ_OK)
        return st;
    return hqi_ref_global_avg_pool(in, call->inputs[0], call->outputs[0], err);
}

static hq_status_t run_elementwise(const hqi_emu_call_t *call, hq_error_t *err)
{
    hq_ew_op_t op = hqi_layer_traits(call->layer->type)->ew_op;
    if (op == HQ_EW_NONE)
        return hqi_error(err, HQ_ERR_UNSUPPORTED, "elementwise: not an elementwise layer");
    if (call->input_count != 2)
        return hqi_error(err, HQ_ERR_ARGUMENT, "elementwise: needs 2 inputs, has %d",
                         call->input_count);
    hqi_ref_act_t act = hqi_emu_layer_act(call);
    return hqi_ref_elementwise(hqi_ref_ew_op_of(op), &call->input_shapes[0], call->inputs[0],
                               &call->input_shapes[1], call->inputs[1], &act,
                               &call->output_shapes[0], call->outputs[0], err);
}

static hq_status_t run_concat(const hqi_emu_call_t *call, hq_error_t *err)
{
    return hqi_ref_concat(call->input_count, call->input_shapes, call->inputs,
                          call->layer->params.axis, &call->output_shapes[0], call->outputs[0], err);
}

static hq_status_t run_split(const hqi_emu_call_t *call, hq_error_t *err)
{
    const hq_layer_params_t *p = &call->layer->params;
    if (call->output_count != p->split_count)
        return hqi_error(err, HQ_ERR_ARGUMENT, "split: %d outputs for %d pieces",
                         call->output_count, p->split_count);
    return hqi_ref_split(&call->input_shapes[0], call->inputs[0], p->axis, p->split_count,
                         p->split_sizes, call->outputs, err);
}

static hq_status_t run_slice(const hqi_emu_call_t *call, hq_error_t *err)
{
    const hq_layer_params_t *p = &call->layer->params;
    hqi_ref_dims_t in, out;
    hq_status_t st = image_dims(&call->input_shapes[0], "input", &in, err);
    if (st == HQ_OK)
        st = image_dims(&call->output_shapes[0], "output", &out, err);
    if (st != HQ_OK)
        return st;
    hqi_ref_slice_params_t sp;
    for (int a = 0; a < 3; a++) {
        sp.begin[a] = p->slice_begin[a];
        sp.end[a] = p->slice_end[a];
        sp.step[a] = p->slice_step[a];
    }
    return hqi_ref_slice(&sp, in, call->inputs[0], out, call->outputs[0], err);
}

static hq_status_t run_pad(const hqi_emu_call_t *call, hq_error_t *err)
{
    const hq_layer_params_t *p = &call->layer->params;
    hqi_ref_dims_t in, out;
    hq_status_t st = image_dims(&call->input_shapes[0], "input", &in, err);
    if (st == HQ_OK)
        st = image_dims(&call->output_shapes[0], "output", &out, err);
    if (st != HQ_OK)
        return st;
    hqi_ref_pad_params_t pp = {p->pad_mode,
                               p->pad_value,
                               {p->pads[0], p->pads[1], p->pad_channels[0]},
                               {p->pads[2], p->pads[3], p->pad_channels[1]}};
    return hqi_ref_pad(&pp, in, call->inputs[0], out, call->outputs[0], err);
}

static hq_status_t run_resize(const hqi_emu_call_t *call, hq_error_t *err)
{
    const hq_layer_params_t *p = &call->layer->params;
    hqi_ref_dims_t in, out;
    hq_status_t st = image_dims(&call->input_shapes[0], "input", &in, err);
    if (st == HQ_OK)
        st = image_dims(&call->output_shapes[0], "output", &out, err);
    if (st != HQ_OK)
        return st;
    hqi_ref_resize_params_t rp = {.method = p->resize_method,
                                  .coords = p->resize_coords,
                                  .round_prefer_floor = p->nearest_round,
                                  .nearest_ceil = p->nearest_ceil,
                                  .scale_h = p->resize_scales[0],
                                  .scale_w = p->resize_scales[1]};
    return hqi_ref_resize(&rp, in, call->inputs[0], out, call->outputs[0], err);
}

static hq_status_t run_depth_to_space(const hqi_emu_call_t *call, hq_error_t *err)
{
    hqi_ref_dims_t in;
    hq_status_t st = image_dims(&call->input_shapes[0], "input", &in, err);
    if (st != HQ_OK)
        return st;
    return hqi_ref_depth_to_space(call->layer->params.block_size,
                                  call->layer->params.depth_to_space_crd, in, call->inputs[0],
                                  call->outputs[0], err);
}

static hq_status_t run_space_to_depth(const hqi_emu_call_t *call, hq_error_t *err)
{
    hqi_ref_dims_t in;
    hq_status_t st = image_dims(&call->input_shapes[0], "input", &in, err);
    if (st != HQ_OK)
        return st;
    return hqi_ref_space_to_depth(call->layer->params.block_size, in, call->inputs[0],
                                  call->outputs[0], err);
}

static hq_status_t run_softmax(const hqi_emu_call_t *call, hq_error_t *err)
{
    return hqi_ref_softmax(&call->input_shapes[0], call->inputs[0], call->layer->params.axis,
                           call->outputs[0], err);
}

static hq_status_t run_transpose(const hqi_emu_call_t *call, hq_error_t *err)
{
    return hqi_ref_transpose(&call->input_shapes[0], call->inputs[0], call->layer->params.perm,
                             call->outputs[0], err);
}

static hq_status_t run_reduce_max(const hqi_emu_call_t *call, hq_error_t *err)
{
    return hqi_ref_reduce_max(&call->input_shapes[0], call->inputs[0], call->layer->params.axis,
                              call->outputs[0], err);
}

static hq_status_t run_reduce_sum(const hqi_emu_call_t *call, hq_error_t *err)
{
    return hqi_ref_reduce_sum(&call->input_shapes[0], call->inputs[0], call->layer->params.axis,
                              call->outputs[0], err);
}

static hq_status_t run_argmax(const hqi_emu_call_t *call, hq_error_t *err)
{
    return hqi_ref_argmax(&call->input_shapes[0], call->inputs[0], call->outputs[0], err);
}

static hq_status_t run_channel_shuffle(const hqi_emu_call_t *call, hq_error_t *err)
{
    return hqi_ref_channel_shuffle(&call->input_shapes[0], call->layer->params.groups,
                                   call->inputs[0], call->outputs[0], err);
}

const hqi_emu_kernel_fn hqi_emu_ref_kernels[HQ_LAYER_TYPE_COUNT] = {
    [HQ_LAYER_INPUT] = run_copy,
    [HQ_LAYER_OUTPUT] = run_copy,
    [HQ_LAYER_CONV] = run_conv,
    [HQ_LAYER_DW] = run_conv,
    [HQ_LAYER_DECONV] = run_deconv,
    [HQ_LAYER_DENSE] = run_dense,
    [HQ_LAYER_BATCH_NORM] = run_batch_norm,
    [HQ_LAYER_ACTIVATION] = run_activation,
    [HQ_LAYER_NORMALIZATION] = run_normalization,
    [HQ_LAYER_MAXPOOL] = run_maxpool,
    [HQ_LAYER_AVGPOOL] = run_avgpool,
    [HQ_LAYER_GLOBAL_AVG_POOL] = run_global_avg_pool,
    [HQ_LAYER_EW_ADD] = run_elementwise,
    [HQ_LAYER_EW_SUB] = run_elementwise,
    [HQ_LAYER_EW_MULT] = run_elementwise,
    [HQ_LAYER_EW_DIV] = run_elementwise,
    [HQ_LAYER_EW_MAX] = run_elementwise,
    [HQ_LAYER_EW_MIN] = run_elementwise,
    [HQ_LAYER_CONCAT] = run_concat,
    [HQ_LAYER_FEATURE_SPLITTER] = run_split,
    [HQ_LAYER_SLICE] = run_slice,
    [HQ_LAYER_PAD] = run_pad,
    [HQ_LAYER_RESIZE] = run_resize,
    [HQ_LAYER_DEPTH_TO_SPACE] = run_depth_to_space,
    [HQ_LAYER_SPACE_TO_DEPTH] = run_space_to_depth,
    [HQ_LAYER_SOFTMAX] = run_softmax,
    [HQ_LAYER_CONST_INPUT] = run_const,
    [HQ_LAYER_RESHAPE] = run_copy,
    [HQ_LAYER_TRANSPOSE] = run_transpose,
    [HQ_LAYER_REDUCE_MAX] = run_reduce_max,
    [HQ_LAYER_REDUCE_SUM] = run_reduce_sum,
    [HQ_LAYER_ARGMAX] = run_argmax,
    [HQ_LAYER_CHANNEL_SHUFFLE] = run_channel_shuffle,
    [HQ_LAYER_LAYER_NORM] = run_layer_norm,
    [HQ_LAYER_MATMUL] = run_matmul,
};
