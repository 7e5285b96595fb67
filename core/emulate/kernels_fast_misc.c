/* kernels_fast_misc.c — the memory-bound fast kernels: standalone activation and batch norm
 * (folded to a per-channel affine), pools, elementwise with the common broadcasts, resize,
 * channel shuffle.
 * Single-precision loops over contiguous channel runs, split into row tasks for the thread
 * pool; each output element is computed by one task with a partition-independent arithmetic. */
#include <math.h>
#include <string.h>

#include "emulate/kernels_fast.h"
#include "util/util.h"

/* Rows per task: enough work per task that the pool's hand-out cost stays small. */
static int64_t rows_per_task(int64_t rows, int64_t channels)
{
    int64_t per = (1 << 14) / (channels > 0 ? channels : 1);
    if (per < 1)
        per = 1;
    return per > rows ? rows : per;
}

/* ---- activation / affine -------------------------------------------------------------------- */

typedef struct rows_job {
    const hqi_ref_act_t *act;
    int64_t rows, channels, chunk;
    const float *scale, *shift;
    const float *input;
    float *output;
} rows_job_t;

static void rows_task(void *context, int64_t task, int thread)
{
    (void)thread;
    const rows_job_t *job = context;
    const hqi_fast_isa_t *isa = hqi_fast_isa();
    int64_t r0 = task * job->chunk;
    int64_t r1 = r0 + job->chunk < job->rows ? r0 + job->chunk : job->rows;
    const int64_t c = job->channels;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = job->input + r * c;
        float *y = job->output + r * c;
        if (job->scale) {
            for (int64_t k = 0; k < c; k++)
                y[k] = x[k] * job->scale[k] + job->shift[k];
        } else if (y != x) {
            memcpy(y, x, (size_t)c * sizeof(float));
        }
        if (job->act->type != HQ_ACT_LINEAR)
            isa->act_row(job->act, y, NULL, 0, c);
    }
}

static hq_status_t run_rows(const char *kernel, const hqi_ref_act_t *act, int64_t rows,
                            int64_t channels, const float *scale, const float *shift,
                            const float *input, float *output, hqi_threadpool_t *pool,
                            hq_error_t *err)
{
    const hq_shape_t shape = {2, {rows, channels}};
    int64_t count;
    hq_status_t st;
    if ((st = hqi_ref_shape_count(&shape, kernel, "input", &count, err)) ||
        (st = hqi_ref_act_check(act, channels, kernel, err)) ||
        (st = hqi_ref_need(input, kernel, "input", err)) ||
        (st = hqi_ref_need(output, kernel, "output", err)))
        return st;
    rows_job_t job = {act,   rows,  channels, rows_per_task(rows, channels),
                      scale, shift, input,    output};
    hqi_threadpool_run(pool, (rows + job.chunk - 1) / job.chunk, rows_task, &job);
    return HQ_OK;
}

hq_status_t hqi_fast_activation(const hqi_ref_act_t *act, int64_t rows, int64_t channels,
                                const float *input, float *output, hqi_threadpool_t *pool,
                                hq_error_t *err)
{
    return run_rows("activation", act, rows, channels, NULL, NULL, input, output, pool, err);
}

hq_status_t hqi_fast_affine(const hqi_ref_act_t *act, int64_t rows, int64_t channels,
                            const float *scale, const float *shift, const float *input,
                            float *output, hqi_threadpool_t *pool, hq_error_t *err)
{
    hq_status_t st;
    if ((st = hqi_ref_need(scale, "batch_norm", "scale", err)) ||
        (st = hqi_ref_need(shift, "batch_norm", "shift", err)))
        return st;
    return run_rows("batch_norm", act, rows, channels, scale, shift, input, output, pool, err);
}

/* ---- pools ---------------------------------------------------------------------------------- */

typedef struct pool_job {
    const hqi_ref_pool_params_t *params;
    hqi_ref_dims_t in, out;
    const float *input;
    float *output;
    bool max;
} pool_job_t;

static void pool_task(void *context, int64_t task, int thread)
{
    (void)thread;
    const pool_job_t *job = context;
    const hqi_ref_window_t *w = &job->params->window;
    const hqi_ref_dims_t in = job->in, out = job->out;
    const int64_t oy = task % out.h, n = task / out.h;
    const int64_t c = in.c;
    const hqi_fast_isa_t *isa = hqi_fast_isa();
    for (int64_t ox = 0; ox < out.w; ox++) {
        float *y = job->output + ((n * out.h + oy) * out.w + ox) * c;
        int64_t cells = 0, padded = 0;
        for (int64_t k = 0; k < c; k++)
            y[k] = job->max ? -INFINITY : 0.0f;
        for (int ky = 0; ky < w->kernel_h; ky++) {
            int64_t iy = oy * w->stride_h - w->pad_top + (int64_t)ky * w->dilation_h;
            bool row_in_pad = iy >= -w->pad_top && iy < in.h + w->pad_bottom;
            for (int kx = 0; kx < w->kernel_w; kx++) {
                int64_t ix = ox * w->stride_w - w->pad_left + (int64_t)kx * w->dilation_w;
                if (row_in_pad && ix >= -w->pad_left && ix < in.w + w->pad_right)
                    padded++;
                if (iy < 0 || iy >= in.h || ix < 0 || ix >= in.w)
                    continue;
                cells++;
                const float *x = job->input + ((n * in.h + iy) * in.w + ix) * c;
                if (job->max)
                    isa->max_into(y, x, c); /* NaN propagates */
                else
                    isa->ew(HQI_REF_EW_ADD, y, y, 1, x, 1, c);
            }
        }
        if (!job->max) {
            int64_t divisor = job->params->count_include_pad ? padded : cells;
            if (divisor > 0) {
                const float d = (float)divisor;
                for (int64_t k = 0; k < c; k++)
                    y[k] /= d;
            }
        }
    }
}

static hq_status_t run_pool(const char *kernel, bool max, const hqi_ref_pool_params_t *params,
                            hqi_ref_dims_t in, const float *input, hqi_ref_dims_t out,
                            float *output, hqi_threadpool_t *pool, hq_error_t *err)
{
    hq_status_t st = hqi_ref_pool_check(kernel, params, in, input, out, output, err);
    if (st != HQ_OK)
        return st;
    pool_job_t job = {params, in, out, input, output, max};
    hqi_threadpool_run(pool, out.n * out.h, pool_task, &job);
    return HQ_OK;
}

hq_status_t hqi_fast_maxpool(const hqi_ref_pool_params_t *params, hqi_ref_dims_t in,
                             const float *input, hqi_ref_dims_t out, float *output,
                             hqi_threadpool_t *pool, hq_error_t *err)
{
    return run_pool("maxpool", true, params, in, input, out, output, pool, err);
}

hq_status_t hqi_fast_avgpool(const hqi_ref_pool_params_t *params, hqi_ref_dims_t in,
                             const float *input, hqi_ref_dims_t out, float *output,
                             hqi_threadpool_t *pool, hq_error_t *err)
{
    return run_pool("avgpool", false, params, in, input, out, output, pool, err);
}

typedef struct gap_job {
    hqi_ref_dims_t in;
    const float *input;
    float *output;
} gap_job_t;

/* One image: row sums in float (short), added up in double, as the mean of a 160x160 map
 * summed in float alone would drift past the tolerance. */
static void gap_task(void *context, int64_t task, int thread)
{
    (void)thread;
    const gap_job_t *job = context;
    const hqi_fast_isa_t *isa = hqi_fast_isa();
    const hqi_ref_dims_t in = job->in;
    const int64_t c = in.c;
    float *y = job->output + task * c;
    /* channels in chunks of up to 512: one pass over the map for most layers (each element's
     * sums are the same whatever the chunk) */
    for (int64_t k0 = 0; k0 < c; k0 += 512) {
        const int64_t width = c - k0 < 512 ? c - k0 : 512;
        double total[512] = {0};
        for (int64_t iy = 0; iy < in.h; iy++) {
            float row[512];
            const float *x = job->input + ((task * in.h + iy) * in.w) * c + k0;
            isa->sum_pixels(x, in.w, c, width, row);
            for (int64_t k = 0; k < width; k++)
                total[k] += row[k];
        }
        for (int64_t k = 0; k < width; k++)
            y[k0 + k] = (float)(total[k] / (double)(in.h * in.w));
    }
}

hq_status_t hqi_fast_global_avg_pool(hqi_ref_dims_t in, const float *input, float *output,
                                     hqi_threadpool_t *pool, hq_error_t *err)
{
    static const char kernel[] = "global_avg_pool";
    int64_t count;
    hq_status_t st;
    if ((st = hqi_ref_dims_count(in, kernel, "input", &count, err)) ||
        (st = hqi_ref_need(input, kernel, "input", err)) ||
        (st = hqi_ref_need(output, kernel, "output", err)))
        return st;
    gap_job_t job = {in, input, output};
    hqi_threadpool_run(pool, in.n, gap_task, &job);
    return HQ_OK;
}

/* ---- elementwise ---------------------------------------------------------------------------- */

typedef struct ew_job {
    hqi_ref_ew_op_t op;
    const hqi_ref_act_t *act;
    const float *a, *b;
    bool a_small, b_small; /* operand is [N or 1, 1, 1, C or 1]: indexed per image/channel */
    int64_t a_n_stride, b_n_stride; /* small operand: floats per image (0 when shared) */
    bool a_c_all, b_c_all;          /* small operand: one value per channel (else one value) */
    int64_t rows_per_image;         /* H * W of the output */
    int64_t channels;
    int64_t rows, chunk;
    float *output;
} ew_job_t;

static void ew_task(void *context, int64_t task, int thread)
{
    (void)thread;
    const ew_job_t *job = context;
    const hqi_fast_isa_t *isa = hqi_fast_isa();
    const int64_t c = job->channels;
    int64_t r0 = task * job->chunk;
    int64_t r1 = r0 + job->chunk < job->rows ? r0 + job->chunk : job->rows;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t n = r / job->rows_per_image;
        const float *x = job->a_small ? job->a + n * job->a_n_stride : job->a + r * c;
        const float *y = job->b_small ? job->b + n * job->b_n_stride : job->b + r * c;
        const int64_t xs = job->a_small && !job->a_c_all ? 0 : 1;
        const int64_t ys = job->b_small && !job->b_c_all ? 0 : 1;
        float *z = job->output + r * c;
        /* a scalar operand: the rest of this image's rows in one call */
        int64_t run = 1;
        if (!job->a_small && !job->b_small) {
            run = r1 - r;
        } else if (!xs || !ys) {
            int64_t image_end = (n + 1) * job->rows_per_image;
            run = (image_end < r1 ? image_end : r1) - r;
        }
        isa->ew(job->op, z, x, xs, y, ys, run * c);
        if (job->act->type != HQ_ACT_LINEAR && job->act->type != HQ_ACT_PRELU)
            isa->act_row(job->act, z, NULL, 0, run * c);
        else if (job->act->type == HQ_ACT_PRELU)
            for (int64_t q = 0; q < run; q++)
                isa->act_row(job->act, z + q * c, NULL, 0, c);
        r += run - 1;
    }
}

/* Classifies an operand against the output: full (same shape) or small ([N|1, 1, 1, C|1]). */
static bool classify(const hq_shape_t *s, const hq_shape_t *out, bool *small, int64_t *n_stride,
                     bool *c_all)
{
    if (s->ndim != out->ndim)
        return false;
    bool same = true;
    for (int d = 0; d < s->ndim; d++)
        same = same && s->dims[d] == out->dims[d];
    if (same) {
        *small = false;
        return true;
    }
    int last = s->ndim - 1;
    for (int d = 1; d < last; d++)
        if (s->dims[d] != 1)
            return false;
    if (s->dims[0] != 1 && s->dims[0] != out->dims[0])
        return false;
    if (s->dims[last] != 1 && s->dims[last] != out->dims[last])
        return false;
    *small = true;
    *c_all = s->dims[last] != 1;
    *n_stride = s->dims[0] == 1 ? 0 : s->dims[last];
    return true;
}

hq_status_t hqi_fast_elementwise(hqi_ref_ew_op_t op, const hq_shape_t *a_shape, const float *a,
                                 const hq_shape_t *b_shape, const float *b,
                                 const hqi_ref_act_t *act, const hq_shape_t *out_shape,
                                 float *output, hqi_threadpool_t *pool, hq_error_t *err)
{
    static const char kernel[] = "elementwise";
    int64_t count, operand;
    hq_status_t st;
    if ((st = hqi_ref_shape_count(out_shape, kernel, "output", &count, err)) ||
        (st = hqi_ref_shape_count(a_shape, kernel, "a", &operand, err)) ||
        (st = hqi_ref_shape_count(b_shape, kernel, "b", &operand, err)) ||
        (st = hqi_ref_need(a, kernel, "a", err)) || (st = hqi_ref_need(b, kernel, "b", err)) ||
        (st = hqi_ref_need(output, kernel, "output", err)))
        return st;
    if ((int)op < 0 || op >= HQI_REF_EW_COUNT)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: op: unknown op %d", kernel, (int)op);
    ew_job_t job = {.op = op, .act = act, .a = a, .b = b, .output = output};
    if (out_shape->ndim < 2 ||
        !classify(a_shape, out_shape, &job.a_small, &job.a_n_stride, &job.a_c_all) ||
        !classify(b_shape, out_shape, &job.b_small, &job.b_n_stride, &job.b_c_all) ||
        (job.a_small && job.b_small))
        return hqi_error(err, HQ_ERR_UNSUPPORTED, "%s: broadcast: not a fast pattern", kernel);
    job.channels = out_shape->dims[out_shape->ndim - 1];
    if ((st = hqi_ref_act_check(act, job.channels, kernel, err)))
        return st;
    job.rows = count / job.channels;
    job.rows_per_image = job.rows / out_shape->dims[0];
    job.chunk = rows_per_task(job.rows, job.channels);
    hqi_threadpool_run(pool, (job.rows + job.chunk - 1) / job.chunk, ew_task, &job);
    return HQ_OK;
}

/* ---- resize --------------------------------------------------------------------------------- */

typedef struct tap {
    int64_t lo, hi;
    float weight_hi;
} tap_t;

/* The reference's sampling (hqi_ref_resize_tap), with the weight as the float the loops use. */
static tap_t resize_tap(const hqi_ref_resize_params_t *p, double scale, int64_t x, int64_t in,
                        int64_t out)
{
    hqi_ref_resize_tap_t r = hqi_ref_resize_tap(p, scale, x, in, out);
    tap_t t = {r.lo, r.hi, (float)r.weight_hi};
    return t;
}

typedef struct resize_job {
    const hqi_ref_resize_params_t *params;
    hqi_ref_dims_t in, out;
    const float *input;
    float *output;
} resize_job_t;

static void resize_task(void *context, int64_t task, int thread)
{
    (void)thread;
    const resize_job_t *job = context;
    const hqi_ref_dims_t in = job->in, out = job->out;
    const int64_t oy = task % out.h, n = task / out.h;
    const int64_t c = in.c;
    const tap_t ty = resize_tap(job->params, job->params->scale_h, oy, in.h, out.h);
    const float *r0 = job->input + (n * in.h + ty.lo) * in.w * c;
    const float *r1 = job->input + (n * in.h + ty.hi) * in.w * c;
    float *y = job->output + (n * out.h + oy) * out.w * c;
    for (int64_t ox = 0; ox < out.w; ox++, y += c) {
        const tap_t tx = resize_tap(job->params, job->params->scale_w, ox, in.w, out.w);
        if (job->params->method == HQ_RESIZE_NEAREST) {
            memcpy(y, r0 + tx.lo * c, (size_t)c * sizeof(float));
            continue;
        }
        const float wx = tx.weight_hi, wy = ty.weight_hi;
        const float *p00 = r0 + tx.lo * c, *p01 = r0 + tx.hi * c;
        const float *p10 = r1 + tx.lo * c, *p11 = r1 + tx.hi * c;
        for (int64_t k = 0; k < c; k++) {
            const float top = (1.0f - wx) * p00[k] + wx * p01[k];
            const float bottom = (1.0f - wx) * p10[k] + wx * p11[k];
            y[k] = (1.0f - wy) * top + wy * bottom;
        }
    }
}

hq_status_t hqi_fast_resize(const hqi_ref_resize_params_t *params, hqi_ref_dims_t in,
                            const float *input, hqi_ref_dims_t out, float *output,
                            hqi_threadpool_t *pool, hq_error_t *err)
{
    static const char kernel[] = "resize";
    int64_t count;
    hq_status_t st;
    if ((st = hqi_ref_need(params, kernel, "params", err)) ||
        (st = hqi_ref_dims_count(in, kernel, "input", &count, err)) ||
        (st = hqi_ref_dims_count(out, kernel, "output", &count, err)) ||
        (st = hqi_ref_need(input, kernel, "input", err)) ||
        (st = hqi_ref_need(output, kernel, "output", err)))
        return st;
    if ((int)params->method < 0 || params->method > HQ_RESIZE_BILINEAR || (int)params->coords < 0 ||
        params->coords > HQ_RESIZE_TF_HALF_PIXEL_FOR_NN)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: method: unknown method or coords", kernel);
    if (out.c != in.c || out.n != in.n)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: output: batch or channels differ", kernel);
    resize_job_t job = {params, in, out, input, output};
    hqi_threadpool_run(pool, out.n * out.h, resize_task, &job);
    return HQ_OK;
}

/* ---- channel shuffle ------------------------------------------------------------------------ */

typedef struct shuffle_job {
    int64_t rows, channels, groups, chunk;
    const float *input;
    float *output;
} shuffle_job_t;

/* Walks each row by input group: every group is read as one contiguous run and scattered with a
 * fixed stride, g interleaved streams instead of C/g strided gathers. */
static void shuffle_task(void *context, int64_t task, int thread)
{
    (void)thread;
    const shuffle_job_t *job = context;
    const int64_t c = job->channels, g = job->groups, per_group = c / g;
    int64_t r0 = task * job->chunk;
    int64_t r1 = r0 + job->chunk < job->rows ? r0 + job->chunk : job->rows;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = job->input + r * c;
        float *y = job->output + r * c;
        if (g == 2) { /* ShuffleNetV2's case: interleave the two halves */
            const float *a = x, *b = x + per_group;
            for (int64_t i = 0; i < per_group; i++) {
                y[2 * i] = a[i];
                y[2 * i + 1] = b[i];
            }
            continue;
        }
        for (int64_t j = 0; j < g; j++) {
            const float *src = x + j * per_group;
            for (int64_t i = 0; i < per_group; i++)
                y[i * g + j] = src[i];
        }
    }
}

hq_status_t hqi_fast_channel_shuffle(const hq_shape_t *shape, int groups, const float *input,
                                     float *output, hqi_threadpool_t *pool, hq_error_t *err)
{
    static const char kernel[] = "channel_shuffle";
    int64_t count;
    hq_status_t st;
    if ((st = hqi_ref_shape_count(shape, kernel, "input", &count, err)) ||
        (st = hqi_ref_need(input, kernel, "input", err)) ||
        (st = hqi_ref_need(output, kernel, "output", err)))
        return st;
    const int64_t c = shape->dims[shape->ndim - 1];
    if (c < 1 || groups < 1 || c % groups != 0)
        return hqi_error(err, HQ_ERR_ARGUMENT,
                         "%s: groups %d must be at least 1 and divide the %lld channels", kernel,
                         groups, (long long)c);
    const int64_t rows = count / c;
    shuffle_job_t job = {rows, c, groups, rows_per_task(rows, c), input, output};
    hqi_threadpool_run(pool, (rows + job.chunk - 1) / job.chunk, shuffle_task, &job);
    return HQ_OK;
}
