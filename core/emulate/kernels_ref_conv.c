/* kernels_ref_conv.c — reference convolution, transposed convolution and dense kernels. */
#include <stddef.h>

#include "emulate/kernels_ref.h"
#include "util/util.h"

/* Checks groups, the weight/bias pointers and the image buffers common to conv and deconv. */
static hq_status_t check_conv_common(const char *kernel, int groups, hqi_ref_dims_t in,
                                     const float *input, const float *weights,
                                     hqi_ref_dims_t out, float *output, hq_error_t *err)
{
    int64_t count;
    hq_status_t st;
    if ((st = hqi_ref_dims_count(in, kernel, "input", &count, err)) ||
        (st = hqi_ref_dims_count(out, kernel, "output", &count, err)) ||
        (st = hqi_ref_need(input, kernel, "input", err)) ||
        (st = hqi_ref_need(weights, kernel, "weights", err)) ||
        (st = hqi_ref_need(output, kernel, "output", err)))
        return st;
    if (groups < 1 || in.c % groups != 0 || out.c % groups != 0)
        return hqi_error(err, HQ_ERR_ARGUMENT,
                         "%s: groups: %d groups do not divide %lld input and %lld output channels",
                         kernel, groups, (long long)in.c, (long long)out.c);
    if (out.n != in.n)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: output: batch %lld differs from input %lld",
                         kernel, (long long)out.n, (long long)in.n);
    return HQ_OK;
}

hq_status_t hqi_ref_conv2d(const hqi_ref_conv_params_t *params, hqi_ref_dims_t in,
                           const float *input, const float *weights, const float *bias,
                           const float *addend, hqi_ref_dims_t out, float *output,
                           hq_error_t *err)
{
    static const char kernel[] = "conv2d";
    hq_status_t st;
    if ((st = hqi_ref_need(params, kernel, "params", err)) ||
        (st = hqi_ref_window_check(&params->window, kernel, err)) ||
        (st = check_conv_common(kernel, params->groups, in, input, weights, out, output, err)) ||
        (st = hqi_ref_act_check(&params->act, out.c, kernel, err)))
        return st;
    const hqi_ref_window_t *w = &params->window;
    if ((st = hqi_ref_conv_extents_check(w, false, 0, 0, in, out, kernel, err)))
        return st;
    int64_t weight_count;
    const int64_t cin_group = in.c / params->groups, cout_group = out.c / params->groups;
    hqi_ref_dims_t weight_dims = {w->kernel_h, w->kernel_w, cin_group, out.c};
    if ((st = hqi_ref_dims_count(weight_dims, kernel, "weights", &weight_count, err)))
        return st;

    for (int64_t n = 0; n < out.n; n++)
        for (int64_t oy = 0; oy < out.h; oy++)
            for (int64_t ox = 0; ox < out.w; ox++)
                for (int64_t o = 0; o < out.c; o++) {
                    const int64_t g = o / cout_group;
                    double acc = bias ? (double)bias[o] : 0.0;
                    for (int64_t ky = 0; ky < w->kernel_h; ky++) {
                        const int64_t iy = oy * w->stride_h - w->pad_top + ky * w->dilation_h;
                        if (iy < 0 || iy >= in.h)
                            continue;
                        for (int64_t kx = 0; kx < w->kernel_w; kx++) {
                            const int64_t ix =
                                ox * w->stride_w - w->pad_left + kx * w->dilation_w;
                            if (ix < 0 || ix >= in.w)
                                continue;
                            const float *x = input + ((n * in.h + iy) * in.w + ix) * in.c +
                                             g * cin_group;
                            const float *k = weights + (ky * w->kernel_w + kx) * cin_group * out.c;
                            for (int64_t i = 0; i < cin_group; i++)
                                acc += (double)x[i] * (double)k[i * out.c + o];
                        }
                    }
                    const int64_t index = ((n * out.h + oy) * out.w + ox) * out.c + o;
                    if (addend)
                        acc += addend[index];
                    output[index] = hqi_ref_activate(&params->act, (float)acc, o);
                }
    return HQ_OK;
}

hq_status_t hqi_ref_deconv2d(const hqi_ref_deconv_params_t *params, hqi_ref_dims_t in,
                             const float *input, const float *weights, const float *bias,
                             hqi_ref_dims_t out, float *output, hq_error_t *err)
{
    static const char kernel[] = "deconv2d";
    hq_status_t st;
    if ((st = hqi_ref_need(params, kernel, "params", err)) ||
        (st = hqi_ref_window_check(&params->window, kernel, err)) ||
        (st = check_conv_common(kernel, params->groups, in, input, weights, out, output, err)) ||
        (st = hqi_ref_act_check(&params->act, out.c, kernel, err)))
        return st;
    const hqi_ref_window_t *w = &params->window;
    if (params->output_pad_h < 0 || params->output_pad_h >= w->stride_h ||
        params->output_pad_w < 0 || params->output_pad_w >= w->stride_w)
        return hqi_error(err, HQ_ERR_ARGUMENT,
                         "%s: output_padding: [%d, %d] must be between 0 and stride - 1", kernel,
                         params->output_pad_h, params->output_pad_w);
    if ((st = hqi_ref_conv_extents_check(w, true, params->output_pad_h, params->output_pad_w, in,
                                         out, kernel, err)))
        return st;
    int64_t weight_count;
    const int64_t cin_group = in.c / params->groups, cout_group = out.c / params->groups;
    hqi_ref_dims_t weight_dims = {w->kernel_h, w->kernel_w, cin_group, out.c};
    if ((st = hqi_ref_dims_count(weight_dims, kernel, "weights", &weight_count, err)))
        return st;

    for (int64_t n = 0; n < out.n; n++)
        for (int64_t oy = 0; oy < out.h; oy++)
            for (int64_t ox = 0; ox < out.w; ox++)
                for (int64_t o = 0; o < out.c; o++) {
                    const int64_t g = o / cout_group;
                    double acc = bias ? (double)bias[o] : 0.0;
                    /* Canvas row fy received in row iy through tap ky when fy = iy*s + ky*d. */
                    const int64_t fy = oy + w->pad_top, fx = ox + w->pad_left;
                    for (int64_t ky = 0; ky < w->kernel_h; ky++) {
                        const int64_t ty = fy - ky * w->dilation_h;
                        if (ty < 0 || ty % w->stride_h != 0 || ty / w->stride_h >= in.h)
                            continue;
                        const int64_t iy = ty / w->stride_h;
                        for (int64_t kx = 0; kx < w->kernel_w; kx++) {
                            const int64_t tx = fx - kx * w->dilation_w;
                            if (tx < 0 || tx % w->stride_w != 0 || tx / w->stride_w >= in.w)
                                continue;
                            const int64_t ix = tx / w->stride_w;
                            const float *x = input + ((n * in.h + iy) * in.w + ix) * in.c +
                                             g * cin_group;
                            const float *k = weights + (ky * w->kernel_w + kx) * cin_group * out.c;
                            for (int64_t i = 0; i < cin_group; i++)
                                acc += (double)x[i] * (double)k[i * out.c + o];
                        }
                    }
                    const int64_t index = ((n * out.h + oy) * out.w + ox) * out.c + o;
                    output[index] = hqi_ref_activate(&params->act, (float)acc, o);
                }
    return HQ_OK;
}

hq_status_t hqi_ref_dense(int64_t batch, int64_t cin, int64_t cout, const float *input,
                          const float *weights, const float *bias, const hqi_ref_act_t *act,
                          float *output, hq_error_t *err)
{
    static const char kernel[] = "dense";
    int64_t count;
    hq_status_t st;
    const hq_shape_t in_shape = {2, {batch, cin}}, weight_shape = {2, {cin, cout}};
    const hq_shape_t out_shape = {2, {batch, cout}};
    if ((st = hqi_ref_shape_count(&in_shape, kernel, "input", &count, err)) ||
        (st = hqi_ref_shape_count(&weight_shape, kernel, "weights", &count, err)) ||
        (st = hqi_ref_shape_count(&out_shape, kernel, "output", &count, err)) ||
        (st = hqi_ref_act_check(act, cout, kernel, err)) ||
        (st = hqi_ref_need(input, kernel, "input", err)) ||
        (st = hqi_ref_need(weights, kernel, "weights", err)) ||
        (st = hqi_ref_need(output, kernel, "output", err)))
        return st;
    for (int64_t n = 0; n < batch; n++)
        for (int64_t o = 0; o < cout; o++) {
            double acc = bias ? (double)bias[o] : 0.0;
            for (int64_t i = 0; i < cin; i++)
                acc += (double)input[n * cin + i] * (double)weights[i * cout + o];
            output[n * cout + o] = hqi_ref_activate(act, (float)acc, o);
        }
    return HQ_OK;
}
