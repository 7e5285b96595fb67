/* kernels_ref_pool.c — reference max, average and global average pooling. */
#include <math.h>
#include <stddef.h>

#include "emulate/kernels_ref.h"
#include "util/util.h"

hq_status_t hqi_ref_pool_check(const char *kernel, const hqi_ref_pool_params_t *params,
                               hqi_ref_dims_t in, const float *input, hqi_ref_dims_t out,
                               const float *output, hq_error_t *err)
{
    int64_t count;
    hq_status_t st;
    if ((st = hqi_ref_need(params, kernel, "params", err)) ||
        (st = hqi_ref_window_check(&params->window, kernel, err)) ||
        (st = hqi_ref_dims_count(in, kernel, "input", &count, err)) ||
        (st = hqi_ref_dims_count(out, kernel, "output", &count, err)) ||
        (st = hqi_ref_need(input, kernel, "input", err)) ||
        (st = hqi_ref_need(output, kernel, "output", err)))
        return st;
    if (out.n != in.n || out.c != in.c)
        return hqi_error(err, HQ_ERR_ARGUMENT,
                         "%s: output: batch/channels %lld/%lld differ from the input %lld/%lld",
                         kernel, (long long)out.n, (long long)out.c, (long long)in.n,
                         (long long)in.c);
    const hqi_ref_window_t *w = &params->window;
    const struct {
        const char *axis;
        int64_t got, in;
        int k, s, d, pb, pe;
    } axes[2] = {
        {"H", out.h, in.h, w->kernel_h, w->stride_h, w->dilation_h, w->pad_top, w->pad_bottom},
        {"W", out.w, in.w, w->kernel_w, w->stride_w, w->dilation_w, w->pad_left, w->pad_right},
    };
    for (int a = 0; a < 2; a++) {
        int64_t lo = hqi_ref_window_extent(axes[a].in, axes[a].k, axes[a].s, axes[a].d,
                                           axes[a].pb, axes[a].pe, false);
        int64_t hi = hqi_ref_window_extent(axes[a].in, axes[a].k, axes[a].s, axes[a].d,
                                           axes[a].pb, axes[a].pe, true);
        if (lo < 1)
            return hqi_error(err, HQ_ERR_ARGUMENT, "%s: window: kernel does not fit the %s axis",
                             kernel, axes[a].axis);
        if (axes[a].got < lo || axes[a].got > hi)
            return hqi_error(err, HQ_ERR_ARGUMENT,
                             "%s: output: %s extent %lld, expected %lld (floor) or %lld (ceil)",
                             kernel, axes[a].axis, (long long)axes[a].got, (long long)lo,
                             (long long)hi);
    }
    return HQ_OK;
}

hq_status_t hqi_ref_maxpool(const hqi_ref_pool_params_t *params, hqi_ref_dims_t in,
                            const float *input, hqi_ref_dims_t out, float *output,
                            hq_error_t *err)
{
    hq_status_t st = hqi_ref_pool_check("maxpool", params, in, input, out, output, err);
    if (st)
        return st;
    const hqi_ref_window_t *w = &params->window;
    for (int64_t n = 0; n < out.n; n++)
        for (int64_t oy = 0; oy < out.h; oy++)
            for (int64_t ox = 0; ox < out.w; ox++)
                for (int64_t c = 0; c < out.c; c++) {
                    float best = -INFINITY;
                    for (int64_t ky = 0; ky < w->kernel_h; ky++) {
                        const int64_t iy = oy * w->stride_h - w->pad_top + ky * w->dilation_h;
                        if (iy < 0 || iy >= in.h)
                            continue;
                        for (int64_t kx = 0; kx < w->kernel_w; kx++) {
                            const int64_t ix =
                                ox * w->stride_w - w->pad_left + kx * w->dilation_w;
                            if (ix < 0 || ix >= in.w)
                                continue;
                            const float v = input[((n * in.h + iy) * in.w + ix) * in.c + c];
                            if (v > best || isnan(v))
                                best = v;
                            if (isnan(best))
                                break;
                        }
                    }
                    output[((n * out.h + oy) * out.w + ox) * out.c + c] = best;
                }
    return HQ_OK;
}

hq_status_t hqi_ref_avgpool(const hqi_ref_pool_params_t *params, hqi_ref_dims_t in,
                            const float *input, hqi_ref_dims_t out, float *output,
                            hq_error_t *err)
{
    hq_status_t st = hqi_ref_pool_check("avgpool", params, in, input, out, output, err);
    if (st)
        return st;
    const hqi_ref_window_t *w = &params->window;
    for (int64_t n = 0; n < out.n; n++)
        for (int64_t oy = 0; oy < out.h; oy++)
            for (int64_t ox = 0; ox < out.w; ox++)
                for (int64_t c = 0; c < out.c; c++) {
                    double sum = 0.0;
                    int64_t inside = 0, padded = 0;
                    for (int64_t ky = 0; ky < w->kernel_h; ky++) {
                        const int64_t iy = oy * w->stride_h - w->pad_top + ky * w->dilation_h;
                        if (iy < -w->pad_top || iy >= in.h + w->pad_bottom)
                            continue; /* beyond the padded input: ceil-mode cells */
                        for (int64_t kx = 0; kx < w->kernel_w; kx++) {
                            const int64_t ix =
                                ox * w->stride_w - w->pad_left + kx * w->dilation_w;
                            if (ix < -w->pad_left || ix >= in.w + w->pad_right)
                                continue;
                            padded++;
                            if (iy < 0 || iy >= in.h || ix < 0 || ix >= in.w)
                                continue;
                            inside++;
                            sum += input[((n * in.h + iy) * in.w + ix) * in.c + c];
                        }
                    }
                    const int64_t divisor = params->count_include_pad ? padded : inside;
                    output[((n * out.h + oy) * out.w + ox) * out.c + c] =
                        divisor ? (float)(sum / (double)divisor) : 0.0f;
                }
    return HQ_OK;
}

hq_status_t hqi_ref_global_avg_pool(hqi_ref_dims_t in, const float *input, float *output,
                                    hq_error_t *err)
{
    static const char kernel[] = "global_avg_pool";
    int64_t count;
    hq_status_t st;
    if ((st = hqi_ref_dims_count(in, kernel, "input", &count, err)) ||
        (st = hqi_ref_need(input, kernel, "input", err)) ||
        (st = hqi_ref_need(output, kernel, "output", err)))
        return st;
    const int64_t area = in.h * in.w;
    for (int64_t n = 0; n < in.n; n++)
        for (int64_t c = 0; c < in.c; c++) {
            double sum = 0.0;
            for (int64_t p = 0; p < area; p++)
                sum += input[(n * area + p) * in.c + c];
            output[n * in.c + c] = (float)(sum / (double)area);
        }
    return HQ_OK;
}
