/* kernels_ref_common.c — argument checks shared by the reference kernels, the activation
 * functions, and the per-channel affine kernels (activation, batch_norm, normalization). */
#include <math.h>
#include <stddef.h>

#include "emulate/kernels_ref.h"
#include "util/util.h"

hq_status_t hqi_ref_need(const void *pointer, const char *kernel, const char *what,
                         hq_error_t *err)
{
    if (!pointer)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: %s: pointer is NULL", kernel, what);
    return HQ_OK;
}

/* Multiplies extents one by one so that the running product never exceeds the limit. */
static hq_status_t count_extents(const int64_t *dims, int ndim, const char *kernel,
                                 const char *what, int64_t *count, hq_error_t *err)
{
    int64_t total = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 1)
            return hqi_error(err, HQ_ERR_ARGUMENT, "%s: %s: extent %lld of axis %d must be >= 1",
                             kernel, what, (long long)dims[i], i);
        if (dims[i] > HQI_REF_MAX_ELEMENTS / total)
            return hqi_error(err, HQ_ERR_LIMIT, "%s: %s: more than 2^40 elements", kernel, what);
        total *= dims[i];
    }
    *count = total;
    return HQ_OK;
}

hq_status_t hqi_ref_dims_count(hqi_ref_dims_t dims, const char *kernel, const char *what,
                               int64_t *count, hq_error_t *err)
{
    const int64_t extents[4] = {dims.n, dims.h, dims.w, dims.c};
    return count_extents(extents, 4, kernel, what, count, err);
}

hq_status_t hqi_ref_shape_count(const hq_shape_t *shape, const char *kernel, const char *what,
                                int64_t *count, hq_error_t *err)
{
    if (!shape)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: %s: shape is NULL", kernel, what);
    if (shape->ndim < 1 || shape->ndim > HQ_TENSOR_MAX_DIMS)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: %s: rank %d is not between 1 and %d", kernel,
                         what, shape->ndim, HQ_TENSOR_MAX_DIMS);
    return count_extents(shape->dims, shape->ndim, kernel, what, count, err);
}

hq_status_t hqi_ref_window_check(const hqi_ref_window_t *w, const char *kernel, hq_error_t *err)
{
    hq_status_t st = hqi_ref_need(w, kernel, "params", err);
    if (st)
        return st;
    const struct {
        const char *name;
        int value, min;
    } fields[] = {
        {"kernel_h", w->kernel_h, 1},     {"kernel_w", w->kernel_w, 1},
        {"stride_h", w->stride_h, 1},     {"stride_w", w->stride_w, 1},
        {"dilation_h", w->dilation_h, 1}, {"dilation_w", w->dilation_w, 1},
        {"pad_top", w->pad_top, 0},       {"pad_left", w->pad_left, 0},
        {"pad_bottom", w->pad_bottom, 0}, {"pad_right", w->pad_right, 0},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (fields[i].value < fields[i].min || fields[i].value > HQI_REF_MAX_PARAM)
            return hqi_error(err, HQ_ERR_ARGUMENT, "%s: %s: %d is not between %d and 2^30",
                             kernel, fields[i].name, fields[i].value, fields[i].min);
    return HQ_OK;
}

int64_t hqi_ref_window_extent(int64_t in, int kernel, int stride, int dilation, int pad_begin,
                              int pad_end, bool ceil_mode)
{
    if (in < 1 || kernel < 1 || stride < 1 || dilation < 1 || pad_begin < 0 || pad_end < 0 ||
        in > HQI_REF_MAX_ELEMENTS || kernel > HQI_REF_MAX_PARAM || stride > HQI_REF_MAX_PARAM ||
        dilation > HQI_REF_MAX_PARAM || pad_begin > HQI_REF_MAX_PARAM ||
        pad_end > HQI_REF_MAX_PARAM)
        return -1;
    int64_t effective = (int64_t)dilation * (kernel - 1) + 1;
    int64_t span = in + pad_begin + pad_end - effective;
    if (span < 0)
        return -1;
    int64_t out = span / stride + 1;
    if (ceil_mode) {
        out = (span + stride - 1) / stride + 1;
        /* ONNX and PyTorch drop a last window that would start in the end padding. */
        if ((out - 1) * stride >= in + pad_begin)
            out--;
    }
    return out;
}

int64_t hqi_ref_deconv_extent(int64_t in, int kernel, int stride, int dilation, int pad_begin,
                              int pad_end, int output_pad)
{
    if (in < 1 || kernel < 1 || stride < 1 || dilation < 1 || pad_begin < 0 || pad_end < 0 ||
        output_pad < 0 || in > HQI_REF_MAX_ELEMENTS || kernel > HQI_REF_MAX_PARAM ||
        stride > HQI_REF_MAX_PARAM || dilation > HQI_REF_MAX_PARAM ||
        pad_begin > HQI_REF_MAX_PARAM || pad_end > HQI_REF_MAX_PARAM ||
        output_pad > HQI_REF_MAX_PARAM || (in - 1) > HQI_REF_MAX_ELEMENTS / stride)
        return -1;
    int64_t out = (in - 1) * stride + (int64_t)dilation * (kernel - 1) + 1 + output_pad -
                  pad_begin - pad_end;
    return out >= 1 ? out : -1;
}

static hq_status_t check_extent(const char *kernel, const char *axis, int64_t got,
                                int64_t expected, hq_error_t *err)
{
    if (expected < 1)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: window: kernel does not fit the %s axis",
                         kernel, axis);
    if (got != expected)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: output: %s extent %lld, expected %lld",
                         kernel, axis, (long long)got, (long long)expected);
    return HQ_OK;
}

hq_status_t hqi_ref_conv_extents_check(const hqi_ref_window_t *w, bool deconv, int output_pad_h,
                                       int output_pad_w, hqi_ref_dims_t in, hqi_ref_dims_t out,
                                       const char *kernel, hq_error_t *err)
{
    const int64_t h = deconv ? hqi_ref_deconv_extent(in.h, w->kernel_h, w->stride_h,
                                                     w->dilation_h, w->pad_top, w->pad_bottom,
                                                     output_pad_h)
                             : hqi_ref_window_extent(in.h, w->kernel_h, w->stride_h,
                                                     w->dilation_h, w->pad_top, w->pad_bottom,
                                                     false);
    const int64_t wd = deconv ? hqi_ref_deconv_extent(in.w, w->kernel_w, w->stride_w,
                                                      w->dilation_w, w->pad_left, w->pad_right,
                                                      output_pad_w)
                              : hqi_ref_window_extent(in.w, w->kernel_w, w->stride_w,
                                                      w->dilation_w, w->pad_left, w->pad_right,
                                                      false);
    hq_status_t st = check_extent(kernel, "H", out.h, h, err);
    return st ? st : check_extent(kernel, "W", out.w, wd, err);
}

/* ---- activation -------------------------------------------------------------------------- */

hq_status_t hqi_ref_act_check(const hqi_ref_act_t *act, int64_t channels, const char *kernel,
                              hq_error_t *err)
{
    hq_status_t st = hqi_ref_need(act, kernel, "activation", err);
    if (st)
        return st;
    if ((int)act->type < 0 || act->type >= HQ_ACT_COUNT)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: activation: unknown type %d", kernel,
                         (int)act->type);
    if (act->type == HQ_ACT_PRELU) {
        if (!act->slope)
            return hqi_error(err, HQ_ERR_ARGUMENT, "%s: activation: prelu slope is NULL",
                             kernel);
        if (act->slope_count != 1 && act->slope_count != channels)
            return hqi_error(err, HQ_ERR_ARGUMENT,
                             "%s: activation: prelu has %lld slopes for %lld channels", kernel,
                             (long long)act->slope_count, (long long)channels);
    }
    if (act->type == HQ_ACT_CLIP && !(act->alpha <= act->beta))
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: activation: clip min %g exceeds max %g",
                         kernel, (double)act->alpha, (double)act->beta);
    return HQ_OK;
}

/* Checks rows x channels and returns the element count. */
static hq_status_t rows_channels(int64_t rows, int64_t channels, const char *kernel,
                                 int64_t *count, hq_error_t *err)
{
    const int64_t dims[2] = {rows, channels};
    return count_extents(dims, 2, kernel, "input", count, err);
}

hq_status_t hqi_ref_activation(const hqi_ref_act_t *act, int64_t rows, int64_t channels,
                               const float *input, float *output, hq_error_t *err)
{
    static const char kernel[] = "activation";
    int64_t count;
    hq_status_t st;
    if ((st = rows_channels(rows, channels, kernel, &count, err)) ||
        (st = hqi_ref_act_check(act, channels, kernel, err)) ||
        (st = hqi_ref_need(input, kernel, "input", err)) ||
        (st = hqi_ref_need(output, kernel, "output", err)))
        return st;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < channels; c++)
            output[r * channels + c] = hqi_ref_activate(act, input[r * channels + c], c);
    return HQ_OK;
}

hq_status_t hqi_ref_batch_norm(int64_t rows, int64_t channels, const float *input,
                               const float *gamma, const float *beta, const float *mean,
                               const float *var, float epsilon, const hqi_ref_act_t *act,
                               float *output, hq_error_t *err)
{
    static const char kernel[] = "batch_norm";
    int64_t count;
    hq_status_t st;
    if ((st = rows_channels(rows, channels, kernel, &count, err)) ||
        (st = hqi_ref_act_check(act, channels, kernel, err)) ||
        (st = hqi_ref_need(input, kernel, "input", err)) ||
        (st = hqi_ref_need(mean, kernel, "mean", err)) ||
        (st = hqi_ref_need(var, kernel, "var", err)) ||
        (st = hqi_ref_need(output, kernel, "output", err)))
        return st;
    for (int64_t c = 0; c < channels; c++)
        if (!((double)var[c] + (double)epsilon > 0.0))
            return hqi_error(err, HQ_ERR_ARGUMENT,
                             "%s: var: var[%lld] + epsilon = %g must be positive", kernel,
                             (long long)c, (double)var[c] + (double)epsilon);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < channels; c++) {
            double scale = (gamma ? (double)gamma[c] : 1.0) / sqrt((double)var[c] + epsilon);
            double shift = beta ? (double)beta[c] : 0.0;
            double x = input[r * channels + c];
            float y = (float)((x - (double)mean[c]) * scale + shift);
            output[r * channels + c] = hqi_ref_activate(act, y, c);
        }
    }
    return HQ_OK;
}

hq_status_t hqi_ref_normalization(int64_t rows, int64_t channels, const float *input,
                                  const float *mean, const float *std, int64_t count_values,
                                  const hqi_ref_act_t *act, float *output, hq_error_t *err)
{
    static const char kernel[] = "normalization";
    int64_t count;
    hq_status_t st;
    if ((st = rows_channels(rows, channels, kernel, &count, err)) ||
        (st = hqi_ref_act_check(act, channels, kernel, err)) ||
        (st = hqi_ref_need(input, kernel, "input", err)) ||
        (st = hqi_ref_need(mean, kernel, "mean", err)) ||
        (st = hqi_ref_need(std, kernel, "std", err)) ||
        (st = hqi_ref_need(output, kernel, "output", err)))
        return st;
    if (count_values != 1 && count_values != channels)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: mean/std: %lld values for %lld channels",
                         kernel, (long long)count_values, (long long)channels);
    for (int64_t i = 0; i < count_values; i++)
        if (!(std[i] != 0.0f) || !isfinite(std[i]))
            return hqi_error(err, HQ_ERR_ARGUMENT, "%s: std: std[%lld] = %g must be finite and "
                             "non-zero", kernel, (long long)i, (double)std[i]);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < channels; c++) {
            int64_t k = count_values == 1 ? 0 : c;
            float y = (input[r * channels + c] - mean[k]) / std[k];
            output[r * channels + c] = hqi_ref_activate(act, y, c);
        }
    }
    return HQ_OK;
}
