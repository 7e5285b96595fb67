/* kernels_fast_conv.c — fast convolution, transposed convolution and dense layers: the
 * prepared layer (which method runs it, its packed weights and bias), the depthwise loop, and
 * the run's entry (checks, then the depthwise rows, the GEMMs of kernels_fast_gemm.c, or a
 * transposed convolution's taps with its bias and activation passes).
 *
 * Every layer but a depthwise one is a GEMM per group, C[M x N] = A[M x K] . B[K x N], with M
 * output pixels, N output channels of the group and K = kh*kw*cin_per_group (the Hailo weight
 * layout [kh, kw, cin/groups, cout] already is B, row-major). B is packed once into panels of
 * HQI_FAST_NR columns per block of at most HQI_FAST_KC rows (kernels_fast_gemm.c owns that
 * layout and the driver that reads it).
 *
 * Determinism: K block boundaries depend only on K, and each output element is summed by one
 * micro-kernel call per K block in a fixed order, so results are the same whatever the number
 * of threads and however tasks are split (tasks are ranges of rows and of column panels). */
#include <stdlib.h>
#include <string.h>

#include "emulate/kernels_fast.h"
#include "util/util.h"

/* HQI_FAST_MC_BIG GEMM rows per task when B is large: a task streams all of its panels' B once
 * (from L3 when B is larger than L2) for its rows, so a weight matrix of megabytes (resnet18's
 * last layers: 9.4 MB) run over a batch of 8 in tasks of 72 rows is read from L3 six times, in
 * tasks of 288 rows twice; A and C of 288 rows still stay in L2. Only where A is read in place
 * (direct, tapwise): the im2col scratch stays at HQI_FAST_MC rows. */
#define MC_BIG_BYTES (512 * 1024) /* B larger than this: HQI_FAST_MC_BIG */

void hqi_fast_conv_destroy(hqi_fast_conv_t *conv)
{
    if (!conv)
        return;
    free(conv->packed);
    free(conv->bias16);
    free(conv->dw);
    free(conv->bias);
    free(conv);
}

static float *alloc_floats(int64_t count)
{
    size_t bytes;
    if (count < 1 || !hqi_mul_size((size_t)count, sizeof(float), &bytes))
        return NULL;
    return malloc(bytes);
}

hq_status_t hqi_fast_conv_prepare(const hqi_fast_conv_desc_t *desc, const float *weights,
                                  const float *bias, hqi_fast_conv_t **out, hq_error_t *err)
{
    static const char kernel[] = "fast conv";
    if (!out)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: out: pointer is NULL", kernel);
    *out = NULL;
    hq_status_t st;
    if ((st = hqi_ref_need(desc, kernel, "desc", err)) ||
        (st = hqi_ref_need(weights, kernel, "weights", err)))
        return st;
    if (desc->kind != HQI_FAST_DENSE && (st = hqi_ref_window_check(&desc->window, kernel, err)))
        return st;
    int groups = desc->kind == HQI_FAST_DENSE ? 1 : desc->groups;
    if (groups < 1 || desc->cin < 1 || desc->cout < 1 || desc->cin % groups ||
        desc->cout % groups || desc->cin > HQI_REF_MAX_PARAM || desc->cout > HQI_REF_MAX_PARAM)
        return hqi_error(err, HQ_ERR_ARGUMENT,
                         "%s: groups: %d groups do not divide %lld input and %lld output channels",
                         kernel, groups, (long long)desc->cin, (long long)desc->cout);
    hqi_fast_conv_t *conv = calloc(1, sizeof *conv);
    if (!conv)
        return hqi_nomem(err, kernel);
    conv->desc = *desc;
    conv->desc.groups = groups;
    conv->cin_group = desc->cin / groups;
    conv->cout_group = desc->cout / groups;
    const hqi_ref_window_t *w = &desc->window;
    conv->taps = desc->kind == HQI_FAST_DENSE ? 1 : w->kernel_h * w->kernel_w;
    if (desc->kind != HQI_FAST_DENSE && (int64_t)w->kernel_h * w->kernel_w > (1 << 16)) {
        hqi_fast_conv_destroy(conv);
        return hqi_error(err, HQ_ERR_LIMIT, "%s: window: more than 2^16 taps", kernel);
    }
    conv->depth = desc->kind == HQI_FAST_CONV ? conv->taps * conv->cin_group : conv->cin_group;
    conv->scatter = desc->kind == HQI_FAST_DECONV && groups == 1 && conv->depth <= HQI_FAST_KC &&
                    w->stride_h == w->kernel_h && w->stride_w == w->kernel_w &&
                    w->dilation_h == 1 && w->dilation_w == 1 && !w->pad_top && !w->pad_left &&
                    !w->pad_bottom && !w->pad_right && !desc->output_pad_h && !desc->output_pad_w;
    conv->gemm_n = conv->scatter ? conv->taps * desc->cout : conv->cout_group;
    conv->panels = hqi_fast_ceil_div(conv->gemm_n, HQI_FAST_NR);
    /* Winograd F(2x2, 3x3) does 2.25x fewer multiplies, F(4x4, 3x3) 4x; with more than 256
     * channels the transformed weight matrices no longer stay in cache, and with few input
     * channels the transforms cost more than they save. */
    conv->winograd = desc->kind == HQI_FAST_CONV && groups == 1 && w->kernel_h == 3 &&
                     w->kernel_w == 3 && w->stride_h == 1 && w->stride_w == 1 &&
                     w->dilation_h == 1 && w->dilation_w == 1 && w->pad_top <= 2 &&
                     w->pad_left <= 2 && w->pad_bottom <= 2 && w->pad_right <= 2 &&
                     desc->cin >= 16 && desc->cin <= HQI_FAST_KC && desc->cout <= 256 &&
                     !getenv("HQ_EMULATE_NO_WINOGRAD");
    conv->depthwise = desc->kind == HQI_FAST_CONV && groups == desc->cin && groups == desc->cout;
    conv->direct =
        desc->kind != HQI_FAST_CONV || (w->kernel_h == 1 && w->kernel_w == 1 && !w->pad_top &&
                                        !w->pad_left && !w->pad_bottom && !w->pad_right);
    /* With 16 or more channels per tap, reading A rows in place beats gathering them. */
    conv->tapwise = !conv->direct && !conv->winograd && conv->cin_group >= 16;
    /* With fewer (a first convolution on RGB), a kernel row's kw x cin values are contiguous in
     * NHWC memory wherever the window row lies inside the input: one K block per kernel row
     * reads them in place (gathered only at the left and right borders) instead of an im2col
     * copy of every row (one block sum per kernel row, added up: where K is cut depends only
     * on the shapes). */
    conv->rowwise = desc->kind == HQI_FAST_CONV && !conv->direct && !conv->winograd &&
                    !conv->tapwise && !conv->depthwise && groups == 1 && w->dilation_w == 1 &&
                    (int64_t)w->kernel_w * desc->cin <= HQI_FAST_KC &&
                    w->kernel_h <= HQI_FAST_ROW_BLOCKS;
    if (conv->winograd) {
        /* F(4x4, 3x3) does 4x fewer multiplies than the direct form (F(2x2): 2.25x) for more
         * transform work and 36 weight matrices: taken while those stay small (at most
         * 128 x 128 channels: 2.4 MB). Its errors stay within the tolerance: transform points
         * 0, 1, -1, 1/2, -2 (dyadic coefficients), the weights' 1/6, 1/15 and 1/30 made in
         * double, and the channel sums in runs (WINO_KB). */
        conv->wino_n =
            desc->cin <= 128 && desc->cout <= 128 && !getenv("HQ_EMULATE_WINOGRAD2") ? 4 : 2;
        const int64_t xs = (int64_t)(conv->wino_n + 2) * (conv->wino_n + 2);
        conv->depth = desc->cin; /* each of the 16 (36) GEMMs: K = cin in one block */
        conv->blocks = 1;
        conv->block = desc->cin;
        int64_t row_floats = desc->cin + conv->panels * HQI_FAST_NR;
        conv->wino_tiles = (16384 * 16 / xs / row_floats) / HQI_FAST_MR * HQI_FAST_MR;
        if (conv->wino_tiles < HQI_FAST_MR)
            conv->wino_tiles = HQI_FAST_MR;
        if (conv->wino_tiles > HQI_FAST_MC)
            conv->wino_tiles = HQI_FAST_MC;
    } else if (conv->rowwise) {
        conv->blocks = w->kernel_h;
        conv->block = (int64_t)w->kernel_w * desc->cin;
    } else if (conv->tapwise) {
        conv->tap_blocks = hqi_fast_ceil_div(conv->cin_group, HQI_FAST_KC);
        conv->block = hqi_fast_ceil_div(conv->cin_group, conv->tap_blocks);
        conv->blocks = conv->tap_blocks * conv->taps;
    } else {
        conv->blocks = hqi_fast_ceil_div(conv->depth, HQI_FAST_KC);
        conv->block = hqi_fast_ceil_div(conv->depth, conv->blocks);
    }
    conv->mc = HQI_FAST_MC;
    if ((conv->direct || conv->tapwise) && desc->kind != HQI_FAST_DECONV && !conv->depthwise &&
        conv->depth * conv->panels * HQI_FAST_NR * (int64_t)sizeof(float) > MC_BIG_BYTES)
        conv->mc = HQI_FAST_MC_BIG;
    if (bias) {
        conv->bias = alloc_floats(desc->cout);
        if (!conv->bias) {
            hqi_fast_conv_destroy(conv);
            return hqi_nomem(err, kernel);
        }
        memcpy(conv->bias, bias, (size_t)desc->cout * sizeof(float));
    }
    if (conv->depthwise) {
        conv->dw = alloc_floats((int64_t)conv->taps * desc->cout);
        if (!conv->dw) {
            hqi_fast_conv_destroy(conv);
            return hqi_nomem(err, kernel);
        }
        memcpy(conv->dw, weights, (size_t)conv->taps * (size_t)desc->cout * sizeof(float));
        *out = conv;
        return HQ_OK;
    }
    int64_t gemms =
        desc->kind == HQI_FAST_DECONV && !conv->scatter ? (int64_t)conv->taps * groups : groups;
    if (conv->winograd)
        gemms = (int64_t)(conv->wino_n + 2) * (conv->wino_n + 2);
    int64_t per_gemm = conv->depth * conv->panels * HQI_FAST_NR;
    if (per_gemm > HQI_REF_MAX_ELEMENTS / gemms) {
        hqi_fast_conv_destroy(conv);
        return hqi_error(err, HQ_ERR_LIMIT, "%s: weights: more than 2^40 elements", kernel);
    }
    conv->packed = alloc_floats(per_gemm * gemms);
    if (!conv->packed) {
        hqi_fast_conv_destroy(conv);
        return hqi_nomem(err, kernel);
    }
    if (conv->winograd) {
        /* U = G g G^T per (ci, o), in double, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1];
         * matrix x of the 16 is U[x / 4][x % 4] as a [cin x cout] B */
        const int t_size = conv->wino_n + 2; /* input tile side: 4 or 6 */
        float *u = alloc_floats(gemms * desc->cin * desc->cout);
        if (!u) {
            hqi_fast_conv_destroy(conv);
            return hqi_nomem(err, kernel);
        }
        /* F(2x2): G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]; F(4x4): the points 0, 1, -1,
         * 1/2, -2 and infinity, row j = (1, p, p^2) / prod_{l != j}(p_j - p_l) scaled as B^T's
         * rows are (kernels_fast_isa.c) */
        static const double G2[6][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
        static const double G4[6][3] = {{1, 0, 0},
                                        {1.0 / 6, 1.0 / 6, 1.0 / 6},
                                        {1.0 / 6, -1.0 / 6, 1.0 / 6},
                                        {16.0 / 15, 8.0 / 15, 4.0 / 15},
                                        {1.0 / 30, -1.0 / 15, 2.0 / 15},
                                        {0, 0, 1}};
        const double(*G)[3] = conv->wino_n == 4 ? G4 : G2;
        for (int64_t ci = 0; ci < desc->cin; ci++)
            for (int64_t o = 0; o < desc->cout; o++) {
                double g[3][3], t[6][3];
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++)
                        g[ky][kx] = weights[((ky * 3 + kx) * desc->cin + ci) * desc->cout + o];
                for (int i = 0; i < t_size; i++)
                    for (int kx = 0; kx < 3; kx++)
                        t[i][kx] = G[i][0] * g[0][kx] + G[i][1] * g[1][kx] + G[i][2] * g[2][kx];
                for (int i = 0; i < t_size; i++)
                    for (int j = 0; j < t_size; j++)
                        u[((i * t_size + j) * desc->cin + ci) * desc->cout + o] =
                            (float)(t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
            }
        for (int64_t x = 0; x < gemms; x++)
            hqi_fast_conv_pack_b(conv, u + x * desc->cin * desc->cout, desc->cout,
                                 conv->packed + x * per_gemm);
        free(u);
    }
    if (conv->scatter) {
        /* B[ci][t*cout + o] = weights[t][ci][o]: every tap's columns side by side */
        float *wide = alloc_floats(conv->depth * conv->gemm_n);
        if (!wide) {
            hqi_fast_conv_destroy(conv);
            return hqi_nomem(err, kernel);
        }
        for (int64_t t = 0; t < conv->taps; t++)
            for (int64_t ci = 0; ci < conv->depth; ci++)
                memcpy(wide + ci * conv->gemm_n + t * desc->cout,
                       weights + (t * conv->depth + ci) * desc->cout,
                       (size_t)desc->cout * sizeof(float));
        hqi_fast_conv_pack_b(conv, wide, conv->gemm_n, conv->packed);
        free(wide);
    }
    for (int64_t t = 0;
         !conv->scatter && !conv->winograd && t < (desc->kind == HQI_FAST_DECONV ? conv->taps : 1);
         t++)
        for (int g = 0; g < groups; g++) {
            /* conv/dense: row k of [K x cout] is weights + k*cout; deconv tap t: rows of
             * weights[ky][kx] ([cin_group x cout]). */
            const float *src = weights + t * conv->cin_group * desc->cout + g * conv->cout_group;
            hqi_fast_conv_pack_b(conv, src, desc->cout, conv->packed + (t * groups + g) * per_gemm);
        }
    if (bias) {
        conv->bias16 = calloc((size_t)(groups * conv->panels * HQI_FAST_NR), sizeof(float));
        if (!conv->bias16) {
            hqi_fast_conv_destroy(conv);
            return hqi_nomem(err, kernel);
        }
        for (int g = 0; g < groups; g++)
            for (int64_t j = 0; j < conv->gemm_n; j++) /* scatter: column j is channel j % cout */
                conv->bias16[g * conv->panels * HQI_FAST_NR + j] =
                    bias[g * conv->cout_group + j % conv->cout_group];
    }
    *out = conv;
    return HQ_OK;
}

int64_t hqi_fast_conv_scratch(const hqi_fast_conv_t *conv)
{
    if (conv && conv->winograd) /* transformed inputs and products of one task's tiles */
        return (int64_t)(conv->wino_n + 2) * (conv->wino_n + 2) * conv->wino_tiles *
               (conv->desc.cin + conv->panels * HQI_FAST_NR);
    if (!conv || conv->depthwise || conv->direct || conv->tapwise)
        return 0;
    if (conv->rowwise) /* the border rows of every kernel row, gathered up front */
        return HQI_FAST_MC * conv->block * conv->blocks;
    return HQI_FAST_MC * conv->block;
}

/* ---- depthwise ------------------------------------------------------------------------------ */

static void depthwise_task(void *context, int64_t task, int thread)
{
    (void)thread;
    const hqi_fast_job_t *job = context;
    const hqi_fast_conv_t *conv = job->conv;
    const hqi_ref_window_t *w = &conv->desc.window;
    const int64_t oy = task % job->out.h, n = task / job->out.h;
    const int64_t c = job->out.c;
    const float *ins[64];
    const float *ws[64];
    /* the kernel rows inside the input (all but the first and last output rows: all of them),
     * and the columns whose window lies inside the input: those run as rows of pixels over the
     * taps of the kernel rows inside, which are the taps a pixel sums, in the same order */
    int64_t inner_lo = job->out.w, inner_hi = job->out.w;
    int ky_lo, ky_hi;
    hqi_fast_taps_inside(oy * w->stride_h - w->pad_top, w->kernel_h, w->dilation_h, job->in.h,
                         &ky_lo, &ky_hi);
    const int64_t iy0 = oy * w->stride_h - w->pad_top + (int64_t)ky_lo * w->dilation_h;
    const int taps = (ky_hi - ky_lo + 1) * w->kernel_w;
    if (ky_lo <= ky_hi && w->kernel_h * w->kernel_w <= 64) {
        inner_lo = (w->pad_left + w->stride_w - 1) / w->stride_w;
        int64_t span = job->in.w - 1 - (int64_t)(w->kernel_w - 1) * w->dilation_w + w->pad_left;
        inner_hi = span < 0 ? inner_lo : span / w->stride_w + 1;
        if (inner_hi > job->out.w)
            inner_hi = job->out.w;
        if (inner_hi < inner_lo)
            inner_hi = inner_lo;
    }
    int64_t offsets[64];
    for (int t = 0; t < taps && t < 64; t++)
        offsets[t] = ((int64_t)(t / w->kernel_w) * w->dilation_h * job->in.w +
                      (int64_t)(t % w->kernel_w) * w->dilation_w) *
                     c;
    /* the border pixels left and right of the inner ones, channel block by channel block,
     * when the ISA has a loop for them */
    const bool span = job->isa->dw_span && ky_lo <= ky_hi && w->kernel_h * w->kernel_w <= 64;
    const bool finish = job->addend || job->act->type != HQ_ACT_LINEAR;
    for (int64_t ox = 0; ox < job->out.w; ox++) {
        float *pixel = job->output + ((n * job->out.h + oy) * job->out.w + ox) * c;
        if (span && (ox < inner_lo || ox >= inner_hi)) {
            const int64_t end = ox >= inner_hi          ? job->out.w
                                : inner_lo < job->out.w ? inner_lo
                                                        : job->out.w;
            job->isa->dw_span(c, ox, end, job->input + (n * job->in.h + iy0) * job->in.w * c,
                              (int64_t)w->dilation_h * job->in.w * c, job->in.w, ky_hi - ky_lo + 1,
                              w->kernel_w, w->stride_w, w->dilation_w, w->pad_left,
                              conv->dw + (int64_t)ky_lo * w->kernel_w * c, conv->bias, pixel,
                              finish ? job->act : NULL,
                              job->addend ? job->addend + (pixel - job->output) : NULL);
            ox = end - 1;
            continue;
        }
        if (ox == inner_lo && inner_hi > inner_lo) {
            const float *first =
                job->input +
                ((n * job->in.h + iy0) * job->in.w + ox * w->stride_w - w->pad_left) * c;
            job->isa->dw_row(c, inner_hi - inner_lo, first, (int64_t)w->stride_w * c, offsets, taps,
                             conv->dw + (int64_t)ky_lo * w->kernel_w * c, conv->bias, pixel,
                             finish ? job->act : NULL,
                             job->addend ? job->addend + (pixel - job->output) : NULL);
            ox = inner_hi - 1;
            continue;
        }
        int used = 0;
        bool seeded = false;
        for (int ky = 0; ky < w->kernel_h; ky++) {
            int64_t iy = oy * w->stride_h - w->pad_top + (int64_t)ky * w->dilation_h;
            if (iy < 0 || iy >= job->in.h)
                continue;
            for (int kx = 0; kx < w->kernel_w; kx++) {
                int64_t ix = ox * w->stride_w - w->pad_left + (int64_t)kx * w->dilation_w;
                if (ix < 0 || ix >= job->in.w)
                    continue;
                ins[used] = job->input + ((n * job->in.h + iy) * job->in.w + ix) * c;
                ws[used] = conv->dw + ((int64_t)ky * w->kernel_w + kx) * c;
                if (++used == 64) {
                    /* windows beyond 64 taps: continue the sum from the output itself */
                    job->isa->dw_pixel(c, used, ins, ws, seeded ? pixel : conv->bias, pixel);
                    seeded = true;
                    used = 0;
                }
            }
        }
        if (used || !seeded)
            job->isa->dw_pixel(c, used, ins, ws, seeded ? pixel : conv->bias, pixel);
        if (finish)
            job->isa->act_row(job->act, pixel,
                              job->addend ? job->addend + (pixel - job->output) : NULL, 0, c);
    }
}

/* Output rows [row0, row1) of one sample as depthwise_task computes them: the rows held from
 * in_row0 on are a whole input of their own whose top padding is what makes the same input
 * rows fall under the same taps, so each output value has the same sums in the same order. */
hq_status_t hqi_fast_dw_rows(const hqi_fast_conv_t *conv, const hqi_ref_act_t *act,
                             hqi_ref_dims_t in, const float *input, int64_t in_row0,
                             const float *addend, hqi_ref_dims_t out, float *output, int64_t row0,
                             int64_t row1, hq_error_t *err)
{
    const hqi_ref_window_t *w = &conv->desc.window;
    const int64_t pad = w->pad_top + in_row0 - row0 * w->stride_h;
    int64_t end =
        (row1 - 1) * w->stride_h - w->pad_top + (int64_t)(w->kernel_h - 1) * w->dilation_h + 1;
    if (!conv->depthwise || row0 < 0 || row1 > out.h || row0 >= row1 || pad < 0 || pad > INT32_MAX)
        return hqi_error(err, HQ_ERR_ARGUMENT, "depthwise rows: not a depthwise layer or rows");
    hqi_fast_conv_t local = *conv;
    local.desc.window.pad_top = (int)pad;
    in.n = out.n = 1;
    in.h = (end < in.h ? end : in.h) - in_row0;
    out.h = row1 - row0;
    hqi_fast_job_t job = {.conv = &local,
                          .isa = hqi_fast_isa(),
                          .act = act,
                          .in = in,
                          .out = out,
                          .input = input,
                          .addend = addend,
                          .output = output};
    for (int64_t t = 0; t < out.h; t++)
        depthwise_task(&job, t, 0);
    return HQ_OK;
}

/* ---- deconv bias and activation passes ------------------------------------------------------ */

static void fill_bias_task(void *context, int64_t task, int thread)
{
    (void)thread;
    const hqi_fast_job_t *job = context;
    const int64_t c = job->out.c, pixels = job->out.w;
    float *row = job->output + task * pixels * c;
    for (int64_t x = 0; x < pixels; x++) {
        if (job->conv->bias)
            memcpy(row + x * c, job->conv->bias, (size_t)c * sizeof(float));
        else
            memset(row + x * c, 0, (size_t)c * sizeof(float));
    }
}

static void activate_task(void *context, int64_t task, int thread)
{
    (void)thread;
    const hqi_fast_job_t *job = context;
    const int64_t c = job->out.c;
    float *row = job->output + task * job->out.w * c;
    for (int64_t x = 0; x < job->out.w; x++)
        job->isa->act_row(job->act, row + x * c, NULL, 0, c);
}

/* ---- entry ---------------------------------------------------------------------------------- */

static hq_status_t check_run(const hqi_fast_conv_t *conv, const hqi_ref_act_t *act,
                             hqi_ref_dims_t in, const float *input, hqi_ref_dims_t out,
                             float *output, float *scratch, hq_error_t *err)
{
    static const char *const names[] = {"conv2d", "deconv2d", "dense"};
    const hqi_fast_conv_desc_t *d = &conv->desc;
    const char *kernel = names[d->kind];
    const hqi_ref_window_t *w = &d->window;
    int64_t count;
    hq_status_t st;
    if ((st = hqi_ref_dims_count(in, kernel, "input", &count, err)) ||
        (st = hqi_ref_dims_count(out, kernel, "output", &count, err)) ||
        (st = hqi_ref_need(input, kernel, "input", err)) ||
        (st = hqi_ref_need(output, kernel, "output", err)) ||
        (st = hqi_ref_act_check(act, out.c, kernel, err)))
        return st;
    if (hqi_fast_conv_scratch(conv) > 0 && !scratch)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: scratch: pointer is NULL", kernel);
    if (out.n != in.n)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: output: batch %lld differs from input %lld",
                         kernel, (long long)out.n, (long long)in.n);
    if (in.c != d->cin || out.c != d->cout)
        return hqi_error(err, HQ_ERR_ARGUMENT,
                         "%s: weights: prepared for %lld -> %lld channels, got %lld -> %lld",
                         kernel, (long long)d->cin, (long long)d->cout, (long long)in.c,
                         (long long)out.c);
    if (d->kind != HQI_FAST_DENSE)
        return hqi_ref_conv_extents_check(w, d->kind == HQI_FAST_DECONV, d->output_pad_h,
                                          d->output_pad_w, in, out, kernel, err);
    if (in.h != 1 || in.w != 1 || out.h != 1 || out.w != 1)
        return hqi_error(err, HQ_ERR_ARGUMENT, "dense: input: expected [n, 1, 1, c] views");
    return HQ_OK;
}

hq_status_t hqi_fast_conv_run(const hqi_fast_conv_t *conv, const hqi_ref_act_t *act,
                              hqi_ref_dims_t in, const float *input, const float *addend,
                              hqi_ref_dims_t out, float *output, float *scratch,
                              hqi_threadpool_t *pool, hq_error_t *err)
{
    hq_status_t st = hqi_ref_need(conv, "fast conv", "conv", err);
    if (st == HQ_OK)
        st = hqi_ref_need(act, "fast conv", "activation", err);
    if (st == HQ_OK)
        st = check_run(conv, act, in, input, out, output, scratch, err);
    if (st != HQ_OK)
        return st;
    hqi_fast_job_t job = {
        .conv = conv,
        .isa = hqi_fast_isa(),
        .act = act,
        .in = in,
        .out = out,
        .input = input,
        .addend = conv->desc.kind == HQI_FAST_CONV ? addend : NULL,
        .output = output,
        .scratch = scratch,
        .seed_bias = true,
        .epilogue = true,
    };
    if (conv->depthwise) {
        hqi_threadpool_run(pool, out.n * out.h, depthwise_task, &job);
        return HQ_OK;
    }
    if (conv->winograd) {
        hqi_fast_conv_winograd(&job, pool);
        return HQ_OK;
    }
    if (conv->desc.kind == HQI_FAST_CONV || conv->desc.kind == HQI_FAST_DENSE) {
        job.rows = out.n * out.h * out.w;
        hqi_fast_conv_gemms(&job, pool);
        return HQ_OK;
    }
    if (conv->scatter) {
        job.rows = in.n * in.h * in.w;
        hqi_fast_conv_scatter(&job, pool);
        return HQ_OK;
    }
    /* deconv: bias, then each tap's GEMM scattered onto the output in tap order, then the
     * activation */
    hqi_threadpool_run(pool, out.n * out.h, fill_bias_task, &job);
    job.rows = in.n * in.h * in.w;
    job.seed_bias = false;
    job.epilogue = false;
    for (job.tap = 0; job.tap < conv->taps; job.tap++)
        hqi_fast_conv_gemms(&job, pool);
    if (act->type != HQ_ACT_LINEAR)
        hqi_threadpool_run(pool, out.n * out.h, activate_task, &job);
    return HQ_OK;
}
