/* kernels_ref_layout.c — reference data-movement kernels: concat, split, slice, pad, resize,
 * depth_to_space, space_to_depth, transpose and channel_shuffle. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "emulate/kernels_ref.h"
#include "util/util.h"

/* outer = product of dims before axis, inner = product after it. */
static void around_axis(const hq_shape_t *shape, int axis, int64_t *outer, int64_t *inner)
{
    *outer = *inner = 1;
    for (int i = 0; i < axis; i++)
        *outer *= shape->dims[i];
    for (int i = axis + 1; i < shape->ndim; i++)
        *inner *= shape->dims[i];
}

hq_status_t hqi_ref_concat(int count, const hq_shape_t *in_shapes, const float *const *inputs,
                           int axis, const hq_shape_t *out_shape, float *output, hq_error_t *err)
{
    static const char kernel[] = "concat";
    int64_t total;
    hq_status_t st;
    if ((st = hqi_ref_shape_count(out_shape, kernel, "output", &total, err)) ||
        (st = hqi_ref_need(in_shapes, kernel, "input shapes", err)) ||
        (st = hqi_ref_need(inputs, kernel, "inputs", err)) ||
        (st = hqi_ref_need(output, kernel, "output", err)))
        return st;
    if (count < 1)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: count: %d inputs, needs at least 1", kernel,
                         count);
    if (axis < 0 || axis >= out_shape->ndim)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: axis: %d is out of range for rank %d",
                         kernel, axis, out_shape->ndim);
    int64_t sum = 0;
    for (int k = 0; k < count; k++) {
        int64_t n;
        const hq_shape_t *s = &in_shapes[k];
        if ((st = hqi_ref_shape_count(s, kernel, "input", &n, err)) ||
            (st = hqi_ref_need(inputs[k], kernel, "input", err)))
            return st;
        bool ok = s->ndim == out_shape->ndim;
        for (int d = 0; ok && d < s->ndim; d++)
            ok = d == axis || s->dims[d] == out_shape->dims[d];
        if (!ok)
            return hqi_error(err, HQ_ERR_ARGUMENT,
                             "%s: input %d: shape differs from the output outside axis %d",
                             kernel, k, axis);
        sum += s->dims[axis];
    }
    if (sum != out_shape->dims[axis])
        return hqi_error(err, HQ_ERR_ARGUMENT,
                         "%s: output: extent %lld along axis %d, inputs sum to %lld", kernel,
                         (long long)out_shape->dims[axis], axis, (long long)sum);
    int64_t outer, inner;
    around_axis(out_shape, axis, &outer, &inner);
    const int64_t out_row = out_shape->dims[axis] * inner;
    int64_t at = 0;
    for (int k = 0; k < count; k++) {
        const int64_t row = in_shapes[k].dims[axis] * inner;
        for (int64_t o = 0; o < outer; o++)
            memcpy(output + o * out_row + at, inputs[k] + o * row, (size_t)row * sizeof(float));
        at += row;
    }
    return HQ_OK;
}

hq_status_t hqi_ref_split(const hq_shape_t *in_shape, const float *input, int axis, int count,
                          const int *sizes, float *const *outputs, hq_error_t *err)
{
    static const char kernel[] = "split";
    int64_t total;
    hq_status_t st;
    if ((st = hqi_ref_shape_count(in_shape, kernel, "input", &total, err)) ||
        (st = hqi_ref_need(input, kernel, "input", err)) ||
        (st = hqi_ref_need(sizes, kernel, "sizes", err)) ||
        (st = hqi_ref_need(outputs, kernel, "outputs", err)))
        return st;
    if (count < 1)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: count: %d pieces, needs at least 1", kernel,
                         count);
    if (axis < 0 || axis >= in_shape->ndim)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: axis: %d is out of range for rank %d",
                         kernel, axis, in_shape->ndim);
    int64_t sum = 0;
    for (int k = 0; k < count; k++) {
        if (sizes[k] < 1)
            return hqi_error(err, HQ_ERR_ARGUMENT, "%s: sizes: sizes[%d] = %d must be >= 1",
                             kernel, k, sizes[k]);
        if ((st = hqi_ref_need(outputs[k], kernel, "output", err)))
            return st;
        sum += sizes[k];
    }
    if (sum != in_shape->dims[axis])
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: sizes: sum %lld differs from extent %lld",
                         kernel, (long long)sum, (long long)in_shape->dims[axis]);
    int64_t outer, inner;
    around_axis(in_shape, axis, &outer, &inner);
    const int64_t in_row = in_shape->dims[axis] * inner;
    int64_t at = 0;
    for (int k = 0; k < count; k++) {
        const int64_t row = (int64_t)sizes[k] * inner;
        for (int64_t o = 0; o < outer; o++)
            memcpy(outputs[k] + o * row, input + o * in_row + at, (size_t)row * sizeof(float));
        at += row;
    }
    return HQ_OK;
}

/* Checks input/output image buffers and returns HQ_OK when both are valid. */
static hq_status_t check_images(const char *kernel, hqi_ref_dims_t in, const float *input,
                                hqi_ref_dims_t out, const float *output, hq_error_t *err)
{
    int64_t count;
    hq_status_t st;
    if ((st = hqi_ref_dims_count(in, kernel, "input", &count, err)) ||
        (st = hqi_ref_dims_count(out, kernel, "output", &count, err)) ||
        (st = hqi_ref_need(input, kernel, "input", err)) ||
        (st = hqi_ref_need(output, kernel, "output", err)))
        return st;
    if (out.n != in.n)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: output: batch %lld differs from input %lld",
                         kernel, (long long)out.n, (long long)in.n);
    return HQ_OK;
}

hq_status_t hqi_ref_slice(const hqi_ref_slice_params_t *params, hqi_ref_dims_t in,
                          const float *input, hqi_ref_dims_t out, float *output, hq_error_t *err)
{
    static const char kernel[] = "slice";
    static const char axis_names[3] = {'H', 'W', 'C'};
    hq_status_t st;
    if ((st = hqi_ref_need(params, kernel, "params", err)) ||
        (st = check_images(kernel, in, input, out, output, err)))
        return st;
    const int64_t in_ext[3] = {in.h, in.w, in.c}, out_ext[3] = {out.h, out.w, out.c};
    for (int a = 0; a < 3; a++) {
        const int64_t b = params->begin[a], e = params->end[a], s = params->step[a];
        if (s < 1 || b < 0 || e > in_ext[a] || b >= e)
            return hqi_error(err, HQ_ERR_ARGUMENT,
                             "%s: %c: [%lld:%lld:%lld] is not a forward range inside %lld",
                             kernel, axis_names[a], (long long)b, (long long)e, (long long)s,
                             (long long)in_ext[a]);
        if (out_ext[a] != (e - b + s - 1) / s)
            return hqi_error(err, HQ_ERR_ARGUMENT, "%s: output: %c extent %lld, expected %lld",
                             kernel, axis_names[a], (long long)out_ext[a],
                             (long long)((e - b + s - 1) / s));
    }
    const int64_t *b = params->begin, *s = params->step;
    float *y = output;
    for (int64_t n = 0; n < out.n; n++)
        for (int64_t oy = 0; oy < out.h; oy++)
            for (int64_t ox = 0; ox < out.w; ox++) {
                const float *x =
                    input + ((n * in.h + b[0] + oy * s[0]) * in.w + b[1] + ox * s[1]) * in.c;
                for (int64_t c = 0; c < out.c; c++)
                    *y++ = x[b[2] + c * s[2]];
            }
    return HQ_OK;
}

/* Source index along one axis for output index `i` of a pad, or -1 for a constant cell. */
static int64_t pad_source(hq_pad_mode_t mode, int64_t i, int64_t before, int64_t extent)
{
    int64_t x = i - before;
    if (x >= 0 && x < extent)
        return x;
    if (mode == HQ_PAD_CONSTANT)
        return -1;
    if (mode == HQ_PAD_EDGE)
        return x < 0 ? 0 : extent - 1;
    /* reflect: pads < extent, so one fold lands inside */
    return x < 0 ? -x : 2 * (extent - 1) - x;
}

hq_status_t hqi_ref_pad(const hqi_ref_pad_params_t *params, hqi_ref_dims_t in,
                        const float *input, hqi_ref_dims_t out, float *output, hq_error_t *err)
{
    static const char kernel[] = "pad";
    static const char axis_names[3] = {'H', 'W', 'C'};
    hq_status_t st;
    if ((st = hqi_ref_need(params, kernel, "params", err)) ||
        (st = check_images(kernel, in, input, out, output, err)))
        return st;
    if ((int)params->mode < 0 || params->mode > HQ_PAD_EDGE)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: mode: unknown mode %d", kernel,
                         (int)params->mode);
    const int64_t in_ext[3] = {in.h, in.w, in.c}, out_ext[3] = {out.h, out.w, out.c};
    for (int a = 0; a < 3; a++) {
        const int64_t b = params->before[a], e = params->after[a];
        if (b < 0 || e < 0 || b > HQI_REF_MAX_PARAM || e > HQI_REF_MAX_PARAM)
            return hqi_error(err, HQ_ERR_ARGUMENT,
                             "%s: pads: %c pads %lld/%lld are not between 0 and 2^30", kernel,
                             axis_names[a], (long long)b, (long long)e);
        if (params->mode == HQ_PAD_REFLECT && (b >= in_ext[a] || e >= in_ext[a]))
            return hqi_error(err, HQ_ERR_ARGUMENT,
                             "%s: pads: reflect pads %lld/%lld on %c must be below extent %lld",
                             kernel, (long long)b, (long long)e, axis_names[a],
                             (long long)in_ext[a]);
        if (out_ext[a] != in_ext[a] + b + e)
            return hqi_error(err, HQ_ERR_ARGUMENT, "%s: output: %c extent %lld, expected %lld",
                             kernel, axis_names[a], (long long)out_ext[a],
                             (long long)(in_ext[a] + b + e));
    }
    float *y = output;
    for (int64_t n = 0; n < out.n; n++)
        for (int64_t oy = 0; oy < out.h; oy++) {
            const int64_t iy = pad_source(params->mode, oy, params->before[0], in.h);
            for (int64_t ox = 0; ox < out.w; ox++) {
                const int64_t ix = pad_source(params->mode, ox, params->before[1], in.w);
                for (int64_t c = 0; c < out.c; c++) {
                    const int64_t ic = pad_source(params->mode, c, params->before[2], in.c);
                    *y++ = iy < 0 || ix < 0 || ic < 0
                               ? params->value
                               : input[((n * in.h + iy) * in.w + ix) * in.c + ic];
                }
            }
        }
    return HQ_OK;
}

/* Input coordinate of output coordinate `x` (ONNX coordinate_transformation_mode). */
/* With a given scale, in float32 as onnxruntime computes it: there 17 / 1.7f is 10 (nearest index
 * 10), in double 9.9999997 (index 9). */
static double resize_coord_given_scale(hq_resize_coords_t coords, float scale, int64_t x,
                                       int64_t in, int64_t out)
{
    const float xf = (float)x;
    switch (coords) {
    case HQ_RESIZE_ASYMMETRIC:
        return xf / scale;
    case HQ_RESIZE_HALF_PIXEL:
        return (xf + 0.5f) / scale - 0.5f;
    case HQ_RESIZE_PYTORCH_HALF_PIXEL:
        return out > 1 ? (xf + 0.5f) / scale - 0.5f : 0.0;
    case HQ_RESIZE_ALIGN_CORNERS:
        return out > 1 ? (double)x * (double)(in - 1) / (double)(out - 1) : 0.0;
    case HQ_RESIZE_TF_HALF_PIXEL_FOR_NN:
        return (xf + 0.5f) / scale;
    }
    return 0.0;
}

static double resize_coord(hq_resize_coords_t coords, double scale, int64_t x, int64_t in,
                           int64_t out)
{
    if (scale > 0)
        return resize_coord_given_scale(coords, (float)scale, x, in, out);
    scale = (double)out / (double)in;
    switch (coords) {
    case HQ_RESIZE_ASYMMETRIC:
        return (double)x / scale;
    case HQ_RESIZE_HALF_PIXEL:
        return ((double)x + 0.5) / scale - 0.5;
    case HQ_RESIZE_PYTORCH_HALF_PIXEL:
        return out > 1 ? ((double)x + 0.5) / scale - 0.5 : 0.0;
    case HQ_RESIZE_ALIGN_CORNERS:
        return out > 1 ? (double)x * (double)(in - 1) / (double)(out - 1) : 0.0;
    case HQ_RESIZE_TF_HALF_PIXEL_FOR_NN:
        return ((double)x + 0.5) / scale;
    }
    return 0.0;
}

static int64_t clamp_index(double v, int64_t extent)
{
    if (!(v >= 0.0)) /* also NaN */
        return 0;
    if (v >= (double)(extent - 1))
        return extent - 1;
    return (int64_t)v;
}

hqi_ref_resize_tap_t hqi_ref_resize_tap(const hqi_ref_resize_params_t *p, double scale, int64_t x,
                                        int64_t in, int64_t out)
{
    const double v = resize_coord(p->coords, scale, x, in, out);
    hqi_ref_resize_tap_t t;
    if (p->method == HQ_RESIZE_NEAREST) {
        const double index = p->round_prefer_floor ? (p->nearest_ceil ? floor(v + 0.5)
                                                                      : ceil(v - 0.5))
                                                   : (p->nearest_ceil ? ceil(v) : floor(v));
        t.lo = t.hi = clamp_index(index, in);
        t.weight_hi = 0.0;
        return t;
    }
    const double base = floor(v);
    t.lo = clamp_index(base, in);
    t.hi = clamp_index(base + 1.0, in);
    t.weight_hi = v - base;
    return t;
}

hq_status_t hqi_ref_resize(const hqi_ref_resize_params_t *params, hqi_ref_dims_t in,
                           const float *input, hqi_ref_dims_t out, float *output,
                           hq_error_t *err)
{
    static const char kernel[] = "resize";
    hq_status_t st;
    if ((st = hqi_ref_need(params, kernel, "params", err)) ||
        (st = check_images(kernel, in, input, out, output, err)))
        return st;
    if ((int)params->method < 0 || params->method > HQ_RESIZE_BILINEAR)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: method: unknown method %d", kernel,
                         (int)params->method);
    if ((int)params->coords < 0 || params->coords > HQ_RESIZE_TF_HALF_PIXEL_FOR_NN)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: coords: unknown mode %d", kernel,
                         (int)params->coords);
    if (out.c != in.c)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: output: %lld channels, input has %lld",
                         kernel, (long long)out.c, (long long)in.c);
    float *y = output;
    for (int64_t n = 0; n < out.n; n++)
        for (int64_t oy = 0; oy < out.h; oy++) {
            const hqi_ref_resize_tap_t ty = hqi_ref_resize_tap(params, params->scale_h, oy, in.h, out.h);
            for (int64_t ox = 0; ox < out.w; ox++) {
                const hqi_ref_resize_tap_t tx = hqi_ref_resize_tap(params, params->scale_w, ox, in.w, out.w);
                const float *r0 = input + (n * in.h + ty.lo) * in.w * in.c;
                const float *r1 = input + (n * in.h + ty.hi) * in.w * in.c;
                if (params->method == HQ_RESIZE_NEAREST) {
                    /* A plain copy, so that inf and NaN pass through unchanged. */
                    for (int64_t c = 0; c < out.c; c++)
                        *y++ = r0[tx.lo * in.c + c];
                    continue;
                }
                for (int64_t c = 0; c < out.c; c++) {
                    const double top = (1.0 - tx.weight_hi) * r0[tx.lo * in.c + c] +
                                       tx.weight_hi * r0[tx.hi * in.c + c];
                    const double bottom = (1.0 - tx.weight_hi) * r1[tx.lo * in.c + c] +
                                          tx.weight_hi * r1[tx.hi * in.c + c];
                    *y++ = (float)((1.0 - ty.weight_hi) * top + ty.weight_hi * bottom);
                }
            }
        }
    return HQ_OK;
}

static hq_status_t check_block(const char *kernel, int block, hq_error_t *err)
{
    if (block < 1 || block > 4096)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: block_size: %d is not between 1 and 4096",
                         kernel, block);
    return HQ_OK;
}

hq_status_t hqi_ref_depth_to_space(int block, bool crd, hqi_ref_dims_t in, const float *input,
                                   float *output, hq_error_t *err)
{
    static const char kernel[] = "depth_to_space";
    int64_t count;
    hq_status_t st;
    if ((st = check_block(kernel, block, err)) ||
        (st = hqi_ref_dims_count(in, kernel, "input", &count, err)) ||
        (st = hqi_ref_need(input, kernel, "input", err)) ||
        (st = hqi_ref_need(output, kernel, "output", err)))
        return st;
    const int64_t b = block, bb = (int64_t)block * block;
    if (in.c % bb != 0)
        return hqi_error(err, HQ_ERR_ARGUMENT,
                         "%s: input: %lld channels are not divisible by block_size^2 = %lld",
                         kernel, (long long)in.c, (long long)bb);
    const int64_t oc = in.c / bb, oh = in.h * b, ow = in.w * b;
    float *y = output;
    for (int64_t n = 0; n < in.n; n++)
        for (int64_t r = 0; r < oh; r++)
            for (int64_t q = 0; q < ow; q++) {
                const int64_t i = r % b, j = q % b;
                const float *x = input + ((n * in.h + r / b) * in.w + q / b) * in.c;
                for (int64_t k = 0; k < oc; k++)
                    *y++ = crd ? x[k * bb + i * b + j] : x[(i * b + j) * oc + k];
            }
    return HQ_OK;
}

hq_status_t hqi_ref_space_to_depth(int block, hqi_ref_dims_t in, const float *input,
                                   float *output, hq_error_t *err)
{
    static const char kernel[] = "space_to_depth";
    int64_t count;
    hq_status_t st;
    if ((st = check_block(kernel, block, err)) ||
        (st = hqi_ref_dims_count(in, kernel, "input", &count, err)) ||
        (st = hqi_ref_need(input, kernel, "input", err)) ||
        (st = hqi_ref_need(output, kernel, "output", err)))
        return st;
    const int64_t b = block;
    if (in.h % b != 0 || in.w % b != 0)
        return hqi_error(err, HQ_ERR_ARGUMENT,
                         "%s: input: %lldx%lld is not divisible by block_size %lld", kernel,
                         (long long)in.h, (long long)in.w, (long long)b);
    const int64_t oh = in.h / b, ow = in.w / b;
    float *y = output;
    for (int64_t n = 0; n < in.n; n++)
        for (int64_t r = 0; r < oh; r++)
            for (int64_t q = 0; q < ow; q++)
                for (int64_t i = 0; i < b; i++)
                    for (int64_t j = 0; j < b; j++) {
                        const float *x =
                            input + ((n * in.h + r * b + i) * in.w + q * b + j) * in.c;
                        for (int64_t k = 0; k < in.c; k++)
                            *y++ = x[k];
                    }
    return HQ_OK;
}

hq_status_t hqi_ref_transpose(const hq_shape_t *in_shape, const float *input, const int *perm,
                              float *output, hq_error_t *err)
{
    static const char kernel[] = "transpose";
    int64_t count;
    hq_status_t st;
    if ((st = hqi_ref_shape_count(in_shape, kernel, "input", &count, err)) ||
        (st = hqi_ref_need(input, kernel, "input", err)) ||
        (st = hqi_ref_need(perm, kernel, "perm", err)) ||
        (st = hqi_ref_need(output, kernel, "output", err)))
        return st;
    const int rank = in_shape->ndim;
    bool seen[HQ_TENSOR_MAX_DIMS] = {false};
    for (int i = 0; i < rank; i++) {
        if (perm[i] < 0 || perm[i] >= rank || seen[perm[i]])
            return hqi_error(err, HQ_ERR_ARGUMENT,
                             "%s: perm: not a permutation of the %d axes", kernel, rank);
        seen[perm[i]] = true;
    }
    int64_t in_strides[HQ_TENSOR_MAX_DIMS], step = 1;
    for (int i = rank - 1; i >= 0; i--) {
        in_strides[i] = step;
        step *= in_shape->dims[i];
    }
    /* Walk the output in order; out axis i moves the input by the stride of axis perm[i]. */
    int64_t out_dims[HQ_TENSOR_MAX_DIMS], stride[HQ_TENSOR_MAX_DIMS];
    int64_t index[HQ_TENSOR_MAX_DIMS] = {0};
    for (int i = 0; i < rank; i++) {
        out_dims[i] = in_shape->dims[perm[i]];
        stride[i] = in_strides[perm[i]];
    }
    int64_t offset = 0;
    for (int64_t flat = 0; flat < count; flat++) {
        output[flat] = input[offset];
        for (int i = rank - 1; i >= 0; i--) {
            index[i]++;
            offset += stride[i];
            if (index[i] < out_dims[i])
                break;
            offset -= stride[i] * index[i];
            index[i] = 0;
        }
    }
    return HQ_OK;
}

hq_status_t hqi_ref_channel_shuffle(const hq_shape_t *shape, int groups, const float *input,
                                    float *output, hq_error_t *err)
{
    static const char kernel[] = "channel_shuffle";
    int64_t count;
    hq_status_t st;
    if ((st = hqi_ref_shape_count(shape, kernel, "input", &count, err)) ||
        (st = hqi_ref_need(input, kernel, "input", err)) ||
        (st = hqi_ref_need(output, kernel, "output", err)))
        return st;
    const int64_t c = shape->dims[shape->ndim - 1], g = groups;
    if (c < 1 || g < 1 || c % g != 0)
        return hqi_error(err, HQ_ERR_ARGUMENT,
                         "%s: groups %lld must be at least 1 and divide the %lld channels", kernel,
                         (long long)g, (long long)c);
    const int64_t per_group = c / g, rows = count / c;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < per_group; i++)
            for (int64_t j = 0; j < g; j++)
                output[r * c + i * g + j] = input[r * c + j * per_group + i];
    return HQ_OK;
}
