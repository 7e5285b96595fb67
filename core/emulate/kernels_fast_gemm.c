/* kernels_fast_gemm.c — the GEMM driver of the fast convolution, transposed convolution and
 * dense layers (kernels_fast_conv.c prepares them and calls in here): the packed layout of B,
 * the A rows of a tile (read in place, gathered by im2col, per tap or per kernel row), the
 * row and panel tasks over the ISA's micro-kernels with the bias seed and the fused epilogue,
 * the scatter of a transposed convolution whose stride is its kernel, and Winograd F(2x2, 3x3)
 * and F(4x4, 3x3).
 *
 * B is packed once into panels of HQI_FAST_NR columns per block of at most HQI_FAST_KC rows;
 * A rows are either input pixels read in place (dense, 1x1 convolutions without padding, the
 * taps of a transposed convolution) or gathered (im2col) block by block into the caller's
 * per-thread scratch. The bias seeds the accumulators of the first K block; the addend and the
 * activation are applied to each tile right after its last K block, while it is in L1. */
#include <stdlib.h>
#include <string.h>

#include "emulate/kernels_fast.h"
#include "util/util.h"

static const float zeros16[HQI_FAST_NR];
static const float zeros32[2 * HQI_FAST_NR];
static const float zeros_wide[8 * HQI_FAST_NR];
static const float zeros_row[HQI_FAST_KC]; /* a tap in the padding reads this */

/* First K row and depth of K block `b`. Blocks tile K in order; tapwise, each tap's cin_group
 * rows are split alone. Both depend only on the shapes (determinism). */
static int64_t block_start(const hqi_fast_conv_t *conv, int64_t b)
{
    if (conv->tapwise)
        return (b / conv->tap_blocks) * conv->cin_group + (b % conv->tap_blocks) * conv->block;
    return b * conv->block;
}

static int64_t block_rows(const hqi_fast_conv_t *conv, int64_t b)
{
    int64_t end = conv->tapwise ? (b / conv->tap_blocks + 1) * conv->cin_group : conv->depth;
    int64_t k0 = block_start(conv, b);
    return end - k0 < conv->block ? end - k0 : conv->block;
}

/* K block `b`'s panel `p` within one packed GEMM. */
static const float *panel_of(const hqi_fast_conv_t *conv, const float *gemm, int64_t b, int64_t p)
{
    return gemm + block_start(conv, b) * conv->panels * HQI_FAST_NR +
           p * block_rows(conv, b) * HQI_FAST_NR;
}

/* Packs B[k][j] = src[k * ld + j] (k < depth, j < cout_group) into `dst`. */
void hqi_fast_conv_pack_b(const hqi_fast_conv_t *conv, const float *src, int64_t ld, float *dst)
{
    for (int64_t b = 0; b < conv->blocks; b++) {
        int64_t k0 = block_start(conv, b), rows = block_rows(conv, b);
        for (int64_t p = 0; p < conv->panels; p++) {
            float *panel = (float *)panel_of(conv, dst, b, p);
            int64_t j0 = p * HQI_FAST_NR;
            int64_t cols = conv->gemm_n - j0 < HQI_FAST_NR ? conv->gemm_n - j0 : HQI_FAST_NR;
            for (int64_t k = 0; k < rows; k++) {
                float *out = panel + k * HQI_FAST_NR;
                const float *in = src + (k0 + k) * ld + j0;
                for (int64_t j = 0; j < HQI_FAST_NR; j++)
                    out[j] = j < cols ? in[j] : 0.0f;
            }
        }
    }
}

/* The input row an A row reads in direct mode for a dense layer or a deconv tap (row m in
 * place), at the group's first channel; convolutions find theirs from the output pixel. */
static const float *direct_row(const hqi_fast_job_t *job, int g, int64_t m)
{
    return job->input + m * job->in.c + g * job->conv->cin_group;
}

/* The output row C row m writes, at the group's first channel; NULL when it falls outside the
 * output (deconv taps cropped by the pads). */
static float *output_row(const hqi_fast_job_t *job, int g, int64_t m)
{
    const hqi_fast_conv_t *conv = job->conv;
    int64_t index = m;
    if (conv->desc.kind == HQI_FAST_DECONV) {
        const hqi_ref_window_t *w = &conv->desc.window;
        int64_t ix = m % job->in.w, rest = m / job->in.w;
        int64_t iy = rest % job->in.h, n = rest / job->in.h;
        int64_t ky = job->tap / w->kernel_w, kx = job->tap % w->kernel_w;
        int64_t oy = iy * w->stride_h + ky * w->dilation_h - w->pad_top;
        int64_t ox = ix * w->stride_w + kx * w->dilation_w - w->pad_left;
        if (oy < 0 || oy >= job->out.h || ox < 0 || ox >= job->out.w)
            return NULL;
        index = (n * job->out.h + oy) * job->out.w + ox;
    }
    return job->output + index * job->out.c + g * conv->cout_group;
}

/* im2col of rows [m0, m0 + count) and K range [k0, k0 + depth) into dst (row-major). */
static void gather_rows(const hqi_fast_job_t *job, int g, int64_t m0, int count, int64_t k0,
                        int64_t depth, float *dst)
{
    const hqi_fast_conv_t *conv = job->conv;
    const hqi_ref_window_t *w = &conv->desc.window;
    const int64_t cpg = conv->cin_group, in_h = job->in.h, in_w = job->in.w, in_c = job->in.c;
    const float *input = job->input + g * cpg;
    /* the tap and channel where the block starts, and the row's pixel, advanced incrementally
     * (divisions per element would cost more than the copy) */
    const int64_t t0 = k0 / cpg, ci0 = k0 % cpg;
    int64_t ox = m0 % job->out.w, oy = m0 / job->out.w % job->out.h;
    int64_t n = m0 / job->out.w / job->out.h;
    for (int r = 0; r < count; r++) {
        float *to = dst + r * depth;
        const float *const end = to + depth;
        const int64_t y0 = oy * w->stride_h - w->pad_top, x0 = ox * w->stride_w - w->pad_left;
        const float *image = input + n * in_h * in_w * in_c;
        int64_t ky = t0 / w->kernel_w, kx = t0 % w->kernel_w, ci = ci0;
        while (to < end) {
            int64_t run = cpg - ci < end - to ? cpg - ci : end - to;
            const int64_t iy = y0 + ky * w->dilation_h, ix = x0 + kx * w->dilation_w;
            if (iy < 0 || iy >= in_h || ix < 0 || ix >= in_w) {
                for (int64_t i = 0; i < run; i++)
                    to[i] = 0.0f;
            } else {
                /* with every channel of a pixel in K (one group) and no horizontal dilation,
                 * the taps left in this kernel row that fall inside the input are one
                 * contiguous stretch of NHWC memory: copy them at once */
                int64_t taps = 1;
                if (cpg == in_c && ci == 0 && w->dilation_w == 1) {
                    taps = w->kernel_w - kx;
                    if (taps > in_w - ix)
                        taps = in_w - ix;
                    run = taps * cpg < end - to ? taps * cpg : end - to;
                }
                const float *from = image + (iy * in_w + ix) * in_c + ci;
                for (int64_t i = 0; i < run; i++) /* runs are short here: no memcpy call */
                    to[i] = from[i];
                to += run;
                /* `taps` whole taps done: a run cut short by the block's end ends the loop, so
                 * the position only has to be right when the run was whole (and no division
                 * per run, which cost more than the copy of a 3-channel stem's taps) */
                kx += taps;
                ci = 0;
                while (kx >= w->kernel_w) {
                    kx -= w->kernel_w;
                    ky++;
                }
                continue;
            }
            to += run;
            ci = 0;
            if (++kx == w->kernel_w) {
                kx = 0;
                ky++;
            }
        }
        if (++ox == job->out.w) {
            ox = 0;
            if (++oy == job->out.h) {
                oy = 0;
                n++;
            }
        }
    }
}

/* Rowwise: the A row of output row r for kernel row b, into a[b][r]: the window row in place
 * where it lies inside the input, gathered into scratch (block b's rows at
 * gathered + (b * MC + r) * block) where it crosses the left or right border, zeros_row where
 * it is in the top or bottom padding. */
static void rowwise_a_rows(const hqi_fast_job_t *job, int count, const int64_t *origin_n,
                           const int64_t *origin_y, const int64_t *origin_x, float *gathered,
                           const float *a[][HQI_FAST_MC])
{
    const hqi_fast_conv_t *conv = job->conv;
    const hqi_ref_window_t *w = &conv->desc.window;
    const int64_t in_c = job->in.c, depth = conv->block;
    for (int64_t b = 0; b < conv->blocks; b++) {
        const int64_t dy = b * w->dilation_h; /* block b: kernel row b */
        for (int r = 0; r < count; r++) {
            const int64_t iy = origin_y[r] + dy, ix = origin_x[r];
            const float *line = job->input + (origin_n[r] * job->in.h + iy) * job->in.w * in_c;
            if (iy < 0 || iy >= job->in.h) {
                a[b][r] = zeros_row;
            } else if (ix >= 0 && ix + w->kernel_w <= job->in.w) {
                a[b][r] = line + ix * in_c;
            } else { /* the window row crosses the left or right border */
                float *to = gathered + (b * HQI_FAST_MC + r) * depth;
                for (int kx = 0; kx < w->kernel_w; kx++)
                    for (int64_t ci = 0; ci < in_c; ci++)
                        to[kx * in_c + ci] = ix + kx >= 0 && ix + kx < job->in.w
                                                 ? line[(ix + kx) * in_c + ci]
                                                 : 0.0f;
                a[b][r] = to;
            }
        }
    }
}

/* A 32-column tile at panel pg of group g, rows r0 .. r0 + 5: their output rows (c6), and when
 * the tile finishes the epilogue's first channel and addend rows; returns the seed of its sums
 * (the bias, or zeros, on the first depth block of a seeded run; else NULL). */
static const float *tile32_rows(const hqi_fast_job_t *job, int g, int64_t pg, int r0, bool first,
                                bool finish, float *const *c_rows, const float *const *add_rows,
                                float *c6[HQI_FAST_MR], hqi_fast_epi_t *epi)
{
    const hqi_fast_conv_t *conv = job->conv;
    const int64_t j0 = pg * HQI_FAST_NR;
    for (int r = 0; r < HQI_FAST_MR; r++)
        c6[r] = c_rows[r0 + r] + j0;
    if (finish) {
        epi->channel0 = g * conv->cout_group + j0;
        for (int r = 0; r < HQI_FAST_MR; r++)
            epi->add[r] = job->addend ? add_rows[r0 + r] + j0 : NULL;
    }
    if (!first || !job->seed_bias)
        return NULL;
    return conv->bias16 ? conv->bias16 + (g * conv->panels + pg) * HQI_FAST_NR : zeros32;
}

static void gemm_task(void *context, int64_t task, int thread)
{
    const hqi_fast_job_t *job = context;
    const hqi_fast_conv_t *conv = job->conv;
    const hqi_fast_isa_t *isa = job->isa;
    const int64_t split = task % job->n_splits;
    const int64_t tile = (task / job->n_splits) % job->m_tiles;
    const int g = (int)(task / job->n_splits / job->m_tiles);
    const int64_t m0 = tile * conv->mc;
    const int count = (int)(job->rows - m0 < conv->mc ? job->rows - m0 : conv->mc);
    const int64_t p0 = conv->panels * split / job->n_splits;
    const int64_t p1 = conv->panels * (split + 1) / job->n_splits;
    const int64_t gemm_index =
        conv->desc.kind == HQI_FAST_DECONV ? (int64_t)job->tap * conv->desc.groups + g : g;
    const float *packed = conv->packed + gemm_index * conv->depth * conv->panels * HQI_FAST_NR;

    const float *a_rows[HQI_FAST_MC_BIG];
    float *c_rows[HQI_FAST_MC_BIG];
    const float *add_rows[HQI_FAST_MC_BIG];
    float dummy[HQI_FAST_MR][HQI_FAST_NR];
    float edge[HQI_FAST_MR][HQI_FAST_NR];
    memset(dummy, 0, sizeof dummy);
    memset(edge, 0, sizeof edge);
    int64_t origin_n[HQI_FAST_MC_BIG], origin_y[HQI_FAST_MC_BIG], origin_x[HQI_FAST_MC_BIG];
    const hqi_ref_window_t *w = &conv->desc.window;
    /* the output pixel of row m0, then advanced row by row (no divisions per row) */
    int64_t ox = m0 % job->out.w, oy = m0 / job->out.w % job->out.h;
    int64_t on = m0 / job->out.w / job->out.h;
    const bool conv_rows = conv->desc.kind == HQI_FAST_CONV;
    for (int r = 0; r < count; r++) {
        c_rows[r] = output_row(job, g, m0 + r);
        add_rows[r] = job->addend && c_rows[r] ? job->addend + (c_rows[r] - job->output) : NULL;
        a_rows[r] = NULL;
        if (conv->direct)
            a_rows[r] =
                conv_rows
                    ? job->input +
                          ((on * job->in.h + oy * w->stride_h) * job->in.w + ox * w->stride_w) *
                              job->in.c +
                          g * conv->cin_group
                    : direct_row(job, g, m0 + r);
        if (conv->tapwise || conv->rowwise) {
            origin_x[r] = ox * w->stride_w - w->pad_left;
            origin_y[r] = oy * w->stride_h - w->pad_top;
            origin_n[r] = on;
        }
        if (++ox == job->out.w) {
            ox = 0;
            if (++oy == job->out.h) {
                oy = 0;
                on++;
            }
        }
    }
    float *gathered =
        job->scratch ? job->scratch + (int64_t)thread * hqi_fast_conv_scratch(conv) : NULL;
    /* rowwise: the A rows of every kernel row, so that a tile can sum all of them in one call
     * (gemm_blocks, when the ISA has it) */
    const float *row_a[HQI_FAST_ROW_BLOCKS][HQI_FAST_MC];
    const bool all_rows = conv->rowwise && isa->gemm_blocks;
    if (conv->rowwise)
        rowwise_a_rows(job, count, origin_n, origin_y, origin_x, gathered, row_a);
    for (int64_t b = 0; b < conv->blocks; b++) {
        const int64_t k0 = block_start(conv, b), depth = block_rows(conv, b);
        const bool first = b == 0, last = b == conv->blocks - 1;
        const float *a_block[HQI_FAST_MC_BIG];
        if (conv->direct) {
            for (int r = 0; r < count; r++)
                a_block[r] = a_rows[r] + k0;
        } else if (conv->tapwise) {
            const int64_t t = k0 / conv->cin_group, ci = k0 % conv->cin_group;
            const int64_t dy = (t / w->kernel_w) * w->dilation_h,
                          dx = (t % w->kernel_w) * w->dilation_w;
            for (int r = 0; r < count; r++) {
                int64_t iy = origin_y[r] + dy, ix = origin_x[r] + dx;
                a_block[r] =
                    iy < 0 || iy >= job->in.h || ix < 0 || ix >= job->in.w
                        ? zeros_row
                        : job->input +
                              ((origin_n[r] * job->in.h + iy) * job->in.w + ix) * job->in.c +
                              g * conv->cin_group + ci;
            }
        } else if (conv->rowwise) {
            for (int r = 0; r < count; r++)
                a_block[r] = row_a[b][r];
        } else {
            gather_rows(job, g, m0, count, k0, depth, gathered);
            for (int r = 0; r < count; r++)
                a_block[r] = gathered + r * depth;
        }
        /* Tiles in panel-major order keep one B panel in L1 over all rows (deep K); when the
         * whole K block of B fits in 16 KiB, row-major order writes each output row's cache
         * lines one after the other instead, which the prefetchers follow (shallow K, where
         * storing C is the cost). The sums are the same either way. */
        const int64_t np = p1 - p0, nr = (count + HQI_FAST_MR - 1) / HQI_FAST_MR;
        const bool rows_outer = depth * (p1 - p0) * HQI_FAST_NR <= 4096;
        /* an ISA with a 32-column tile takes the panels two at a time (the same sums) */
        const int64_t pw = isa->gemm_6x32 ? 2 : 1, npg = (np + pw - 1) / pw;
        /* an odd number of panels whose last is partial: the first goes alone, so that the
         * partial one pairs with a full one in gemm_6x32_part (which panels share a tile does
         * not change the sums) */
        const int64_t shift = pw == 2 && isa->gemm_6x32_part && np % 2 && np > 1 &&
                              p1 == conv->panels && conv->cout_group % HQI_FAST_NR && !all_rows &&
                              conv->desc.kind != HQI_FAST_DECONV;
        /* this K block's panels (panel_of, without its divisions in the tile loop) */
        const float *block_b = panel_of(conv, packed, b, 0);
        /* a last tile of one row (a batch-1 dense or squeeze-excitation layer is only that)
         * goes through the one-row kernel over up to 8 full panels at once, not a 6-row tile
         * of copies; its partial panel, if any, stays with the tiles */
        const bool single_tail =
            isa->gemm_1xn && conv->desc.kind != HQI_FAST_DECONV && count % HQI_FAST_MR == 1;
        /* after the last K block: the addend and the activation */
        const bool finish =
            last && job->epilogue && (job->addend || job->act->type != HQ_ACT_LINEAR);
        hqi_fast_epi_t epi = {.act = job->act};
        const bool deconv = conv->desc.kind == HQI_FAST_DECONV; /* rows may fall outside */
        for (int64_t step = 0; step < npg * nr; step++) {
            const int64_t gi = rows_outer ? step % npg : step / nr;
            /* the group's first panel and its panels (1 or pw) */
            const int64_t pg = p0 + (shift && gi ? gi * pw - 1 : gi * pw);
            const int64_t gw = shift && !gi ? 1 : pw;
            const int r0 = (int)(rows_outer ? step / npg : step % nr) * HQI_FAST_MR;
            if (gw == 2 && pg + 1 < p1 && (pg + 2) * HQI_FAST_NR <= conv->cout_group &&
                r0 + HQI_FAST_MR <= count && !deconv) {
                /* two full panels of 6 existing rows: the 32-column tile; rowwise with
                 * gemm_blocks, every kernel row's block in one call at the first */
                if (all_rows && !first)
                    continue;
                const int64_t j0 = pg * HQI_FAST_NR;
                float *c6[HQI_FAST_MR];
                const float *init =
                    tile32_rows(job, g, pg, r0, first, finish, c_rows, add_rows, c6, &epi);
                if (all_rows) {
                    if (job->epilogue && (job->addend || job->act->type != HQ_ACT_LINEAR)) {
                        epi.channel0 = g * conv->cout_group + j0;
                        for (int r = 0; job->addend && r < HQI_FAST_MR; r++)
                            epi.add[r] = add_rows[r0 + r] + j0;
                    }
                    isa->gemm_blocks(
                        (int)conv->blocks, depth, &row_a[0][r0], HQI_FAST_MC,
                        block_b + pg * depth * HQI_FAST_NR,
                        block_b + (pg + 1) * depth * HQI_FAST_NR,
                        depth * conv->panels * HQI_FAST_NR, c6, init,
                        job->epilogue && (job->addend || job->act->type != HQ_ACT_LINEAR) ? &epi
                                                                                          : NULL);
                    continue;
                }
                isa->gemm_6x32(depth, a_block + r0, block_b + pg * depth * HQI_FAST_NR,
                               block_b + (pg + 1) * depth * HQI_FAST_NR, c6, init,
                               finish ? &epi : NULL);
                continue;
            }
            const int64_t cols2 = conv->cout_group - (pg + 1) * HQI_FAST_NR;
            if (gw == 2 && isa->gemm_6x32_part && pg + 2 == p1 && p1 == conv->panels && cols2 > 0 &&
                cols2 < HQI_FAST_NR && r0 + HQI_FAST_MR <= count && !deconv && !all_rows) {
                /* a full panel and the last, partial one of 6 existing rows: one 32-column tile
                 * with that panel's columns under a mask, not a 16-column tile and an
                 * 8-column one (or one through `edge`) */
                float *c6[HQI_FAST_MR];
                const float *init =
                    tile32_rows(job, g, pg, r0, first, finish, c_rows, add_rows, c6, &epi);
                isa->gemm_6x32_part(depth, a_block + r0, block_b + pg * depth * HQI_FAST_NR,
                                    block_b + (pg + 1) * depth * HQI_FAST_NR, (int)cols2, c6, init,
                                    finish ? &epi : NULL);
                continue;
            }
            for (int64_t p = pg; p < pg + gw && p < p1; p++) {
                const float *panel = block_b + p * depth * HQI_FAST_NR;
                if (single_tail && r0 == count - 1 && (p + 1) * HQI_FAST_NR <= conv->cout_group)
                    continue;
                const int64_t j0 = p * HQI_FAST_NR;
                const int cols = (int)(conv->cout_group - j0 < HQI_FAST_NR ? conv->cout_group - j0
                                                                           : HQI_FAST_NR);
                const float *init = NULL;
                if (first && job->seed_bias)
                    init = conv->bias16 ? conv->bias16 + (g * conv->panels + p) * HQI_FAST_NR
                                        : zeros16;
                /* a last panel of at most 8 columns runs the 8-wide kernel */
                const int width = cols <= 8 ? 8 : HQI_FAST_NR;
                if (cols == HQI_FAST_NR && r0 + HQI_FAST_MR <= count && !deconv) {
                    /* the common tile: 6 rows that all exist, 16 columns (no copies, no dummies) */
                    float *c6[HQI_FAST_MR];
                    for (int r = 0; r < HQI_FAST_MR; r++)
                        c6[r] = c_rows[r0 + r] + j0;
                    if (finish) {
                        epi.channel0 = g * conv->cout_group + j0;
                        for (int r = 0; job->addend && r < HQI_FAST_MR; r++)
                            epi.add[r] = add_rows[r0 + r] + j0;
                    }
                    isa->gemm_6x16(depth, a_block + r0, panel, c6, init, finish ? &epi : NULL);
                    continue;
                }
                {
                    const int valid = count - r0 < HQI_FAST_MR ? count - r0 : HQI_FAST_MR;
                    const float *a6[HQI_FAST_MR];
                    float *c6[HQI_FAST_MR];
                    for (int r = 0; r < HQI_FAST_MR; r++) {
                        /* rows past the end repeat the last row's A and write a dummy tile */
                        a6[r] = a_block[r0 + (r < valid ? r : valid - 1)];
                        float *row = r < valid ? c_rows[r0 + r] : NULL;
                        if (cols < width) {
                            c6[r] = edge[r];
                            if (row && !init)
                                memcpy(edge[r], row + j0, (size_t)cols * sizeof(float));
                        } else {
                            c6[r] = row ? row + j0 : dummy[r];
                        }
                    }
                    /* full tiles get the addend and activation inside the micro-kernel, while
                     * the sums are still in registers; edge tiles after the copy-out */
                    const hqi_fast_epi_t *fused = NULL;
                    if (finish && cols == width) {
                        epi.channel0 = g * conv->cout_group + j0;
                        if (job->addend)
                            for (int r = 0; r < HQI_FAST_MR; r++)
                                epi.add[r] =
                                    r < valid && add_rows[r0 + r] ? add_rows[r0 + r] + j0 : NULL;
                        fused = &epi;
                    }
                    if (width == 8)
                        isa->gemm_6x8(depth, a6, panel, c6, init, fused);
                    else
                        isa->gemm_6x16(depth, a6, panel, c6, init, fused);
                    for (int r = 0; r < valid; r++) {
                        float *row = c_rows[r0 + r];
                        if (!row)
                            continue;
                        if (cols < width)
                            memcpy(row + j0, edge[r], (size_t)cols * sizeof(float));
                        if (finish && !fused &&
                            (add_rows[r0 + r] || job->act->type != HQ_ACT_LINEAR))
                            isa->act_row(job->act, row + j0,
                                         add_rows[r0 + r] ? add_rows[r0 + r] + j0 : NULL,
                                         g * conv->cout_group + j0, cols);
                    }
                }
            }
        }
        if (single_tail) {
            const int r = count - 1;
            int64_t full =
                conv->cout_group / HQI_FAST_NR < p1 ? conv->cout_group / HQI_FAST_NR : p1;
            for (int64_t p = p0; p < full; p += 8) {
                const int n = (int)(full - p < 8 ? full - p : 8);
                const float *init = NULL;
                if (first && job->seed_bias)
                    init = conv->bias16 ? conv->bias16 + (g * conv->panels + p) * HQI_FAST_NR
                                        : zeros_wide;
                epi.channel0 = g * conv->cout_group + p * HQI_FAST_NR;
                epi.add[0] = add_rows[r] ? add_rows[r] + p * HQI_FAST_NR : NULL;
                isa->gemm_1xn(depth, a_block[r], block_b + p * depth * HQI_FAST_NR,
                              depth * HQI_FAST_NR, n, c_rows[r] + p * HQI_FAST_NR, init,
                              finish ? &epi : NULL);
            }
        }
    }
}

/* Deconv with stride == kernel: input pixel m's row of (tap, channel) columns lands on the
 * output pixels of its stride x stride block; tiles go through `edge` and are copied out in
 * runs of channels of one tap, then get their activation. */
static void scatter_task(void *context, int64_t task, int thread)
{
    (void)thread;
    const hqi_fast_job_t *job = context;
    const hqi_fast_conv_t *conv = job->conv;
    const hqi_fast_isa_t *isa = job->isa;
    const hqi_ref_window_t *w = &conv->desc.window;
    const int64_t split = task % job->n_splits, tile = task / job->n_splits;
    const int64_t m0 = tile * HQI_FAST_MC;
    const int count = (int)(job->rows - m0 < HQI_FAST_MC ? job->rows - m0 : HQI_FAST_MC);
    const int64_t p0 = conv->panels * split / job->n_splits;
    const int64_t p1 = conv->panels * (split + 1) / job->n_splits;
    const int64_t cout = conv->cout_group;
    float edge[HQI_FAST_MR][HQI_FAST_NR];
    for (int64_t p = p0; p < p1; p++) {
        const float *panel = panel_of(conv, conv->packed, 0, p);
        const int64_t j0 = p * HQI_FAST_NR;
        const int cols = (int)(conv->gemm_n - j0 < HQI_FAST_NR ? conv->gemm_n - j0 : HQI_FAST_NR);
        const float *init = conv->bias16 ? conv->bias16 + p * HQI_FAST_NR : zeros16;
        /* the panel's columns as runs of channels of one tap: where each run lands relative to
         * the output pixel of the input pixel's block */
        int runs = 0, run_start[HQI_FAST_NR], run_length[HQI_FAST_NR];
        int64_t run_offset[HQI_FAST_NR], run_channel[HQI_FAST_NR];
        for (int j = 0; j < cols; runs++) {
            const int64_t column = j0 + j, t = column / cout, o = column % cout;
            run_start[runs] = j;
            run_length[runs] = (int)(cout - o < cols - j ? cout - o : cols - j);
            run_channel[runs] = o;
            run_offset[runs] = ((t / w->kernel_w) * job->out.w + t % w->kernel_w) * job->out.c + o;
            j += run_length[runs];
        }
        for (int r0 = 0; r0 < count; r0 += HQI_FAST_MR) {
            const int valid = count - r0 < HQI_FAST_MR ? count - r0 : HQI_FAST_MR;
            const float *a6[HQI_FAST_MR];
            float *c6[HQI_FAST_MR];
            for (int r = 0; r < HQI_FAST_MR; r++) {
                a6[r] = job->input + (m0 + r0 + (r < valid ? r : valid - 1)) * job->in.c;
                c6[r] = edge[r];
            }
            if (cols <= 8)
                isa->gemm_6x8(conv->depth, a6, panel, c6, init, NULL);
            else
                isa->gemm_6x16(conv->depth, a6, panel, c6, init, NULL);
            for (int r = 0; r < valid; r++) {
                const int64_t m = m0 + r0 + r;
                const int64_t ix = m % job->in.w, iy = m / job->in.w % job->in.h;
                const int64_t n = m / job->in.w / job->in.h;
                float *base = job->output + ((n * job->out.h + iy * w->stride_h) * job->out.w +
                                             ix * w->stride_w) *
                                                job->out.c;
                /* channel-independent activations act on the tile row at once */
                if (job->act->type != HQ_ACT_LINEAR && job->act->type != HQ_ACT_PRELU)
                    isa->act_row(job->act, edge[r], NULL, 0, cols);
                for (int q = 0; q < runs; q++) {
                    float *to = base + run_offset[q];
                    const float *from = edge[r] + run_start[q];
                    for (int i = 0; i < run_length[q]; i++) /* often 1 to 4 floats */
                        to[i] = from[i];
                    if (job->act->type == HQ_ACT_PRELU)
                        isa->act_row(job->act, to, NULL, run_channel[q], run_length[q]);
                }
            }
        }
    }
}

/* Winograd's products are sums over the input channels of transformed values several times
 * larger than the output (the output transform then cancels most of them), so their rounding
 * errors weigh more than in the direct form: each is summed in runs of WINO_KB channels, every
 * run from zero and then added to the product, which cuts the error of F(4x4)'s 128-channel
 * sums by about 2 for a few percent more work. */
#define WINO_KB 16

/* Winograd F(n x n, 3x3), n = 2 or 4: task = wino_tiles tiles of n x n outputs (tiles numbered
 * over (n, tile row, tile column)). Input transform of (n+2) x (n+2) input tiles into
 * v[X][tiles][cin], X = (n+2)^2 GEMMs into m[X][tiles][panels*16], output transform + bias, then
 * addend and activation per pixel. */
static void winograd_task(void *context, int64_t task, int thread)
{
    const hqi_fast_job_t *job = context;
    const hqi_fast_conv_t *conv = job->conv;
    const hqi_fast_isa_t *isa = job->isa;
    const hqi_ref_window_t *w = &conv->desc.window;
    const int n_out = conv->wino_n, t_in = n_out + 2, xs = t_in * t_in;
    const int64_t cin = conv->desc.cin, cout = conv->desc.cout;
    const int64_t ldm = conv->panels * HQI_FAST_NR, tiles = conv->wino_tiles;
    const int64_t tiles_w = (job->out.w + n_out - 1) / n_out;
    const int64_t tiles_h = (job->out.h + n_out - 1) / n_out;
    const int64_t total = job->out.n * tiles_h * tiles_w;
    const int64_t t0 = task * tiles;
    const int count = (int)(total - t0 < tiles ? total - t0 : tiles);
    float *v = job->scratch + (int64_t)thread * hqi_fast_conv_scratch(conv);
    float *m = v + xs * tiles * cin;
    for (int r = 0; r < count; r++) {
        const int64_t t = t0 + r, tx = t % tiles_w, ty = t / tiles_w % tiles_h;
        const int64_t n = t / tiles_w / tiles_h;
        const float *d[36];
        for (int i = 0; i < t_in; i++)
            for (int j = 0; j < t_in; j++) {
                int64_t iy = n_out * ty - w->pad_top + i, ix = n_out * tx - w->pad_left + j;
                d[t_in * i + j] = iy < 0 || iy >= job->in.h || ix < 0 || ix >= job->in.w
                                      ? zeros_row
                                      : job->input + ((n * job->in.h + iy) * job->in.w + ix) * cin;
            }
        if (n_out == 4)
            isa->wino4_in(cin, d, v + r * cin, tiles * cin);
        else
            isa->wino_in(cin, d, v + r * cin, tiles * cin);
    }
    float dummy[HQI_FAST_MR][2 * HQI_FAST_NR];
    /* an ISA with gemm_runs takes the panels two at a time (the same sums) */
    const int64_t pw = isa->gemm_runs ? 2 : 1;
    for (int x = 0; x < xs; x++) {
        const float *packed = conv->packed + x * cin * conv->panels * HQI_FAST_NR;
        for (int64_t p = 0; p < conv->panels; p += pw) {
            const float *panel = panel_of(conv, packed, 0, p);
            for (int r0 = 0; r0 < count; r0 += HQI_FAST_MR) {
                const int valid = count - r0 < HQI_FAST_MR ? count - r0 : HQI_FAST_MR;
                const float *a6[HQI_FAST_MR];
                float *c6[HQI_FAST_MR];
                for (int r = 0; r < HQI_FAST_MR; r++) {
                    a6[r] = v + (x * tiles + r0 + (r < valid ? r : valid - 1)) * cin;
                    c6[r] = r < valid ? m + (x * tiles + r0 + r) * ldm + p * HQI_FAST_NR : dummy[r];
                }
                /* the sum over the input channels in runs of WINO_KB, each run summed alone
                 * and then added to the product (see WINO_KB) */
                if (isa->gemm_runs) {
                    const float *panel2 =
                        p + 1 < conv->panels ? panel_of(conv, packed, 0, p + 1) : NULL;
                    isa->gemm_runs(cin, WINO_KB, a6, panel, panel2, c6);
                    continue;
                }
                for (int64_t k0 = 0; k0 < cin; k0 += WINO_KB) {
                    const float *ak[HQI_FAST_MR];
                    for (int r = 0; r < HQI_FAST_MR; r++)
                        ak[r] = a6[r] + k0;
                    isa->gemm_6x16(cin - k0 < WINO_KB ? cin - k0 : WINO_KB, ak,
                                   panel + k0 * HQI_FAST_NR, c6, k0 ? NULL : zeros16, NULL);
                }
            }
        }
    }
    for (int r = 0; r < count; r++) {
        const int64_t t = t0 + r, tx = t % tiles_w, ty = t / tiles_w % tiles_h;
        const int64_t n = t / tiles_w / tiles_h;
        float *y[16];
        for (int i = 0; i < n_out; i++)
            for (int j = 0; j < n_out; j++) {
                int64_t oy = n_out * ty + i, ox = n_out * tx + j;
                y[n_out * i + j] =
                    oy < job->out.h && ox < job->out.w
                        ? job->output + ((n * job->out.h + oy) * job->out.w + ox) * cout
                        : NULL;
            }
        if (n_out == 4)
            isa->wino4_out(cout, m + r * ldm, tiles * ldm, conv->bias, y);
        else
            isa->wino_out(cout, m + r * ldm, tiles * ldm, conv->bias, y);
        for (int q = 0; q < n_out * n_out; q++)
            if (y[q] && (job->addend || job->act->type != HQ_ACT_LINEAR))
                isa->act_row(job->act, y[q],
                             job->addend ? job->addend + (y[q] - job->output) : NULL, 0, cout);
    }
}

/* Splits the column panels when there are too few row tiles to keep every thread busy. */
static void plan_tasks(hqi_fast_job_t *job, int threads)
{
    const hqi_fast_conv_t *conv = job->conv;
    job->m_tiles = hqi_fast_ceil_div(job->rows, job->conv->mc);
    job->n_splits = 1;
    while (threads > 1 && conv->desc.groups * job->m_tiles * job->n_splits < 4 * threads &&
           job->n_splits * 2 <= conv->panels)
        job->n_splits *= 2;
}

void hqi_fast_conv_gemms(hqi_fast_job_t *job, hqi_threadpool_t *pool)
{
    plan_tasks(job, hqi_threadpool_size(pool));
    hqi_threadpool_run(pool, job->conv->desc.groups * job->m_tiles * job->n_splits, gemm_task, job);
}

void hqi_fast_conv_scatter(hqi_fast_job_t *job, hqi_threadpool_t *pool)
{
    plan_tasks(job, hqi_threadpool_size(pool));
    hqi_threadpool_run(pool, job->m_tiles * job->n_splits, scatter_task, job);
}

void hqi_fast_conv_winograd(hqi_fast_job_t *job, hqi_threadpool_t *pool)
{
    const int n = job->conv->wino_n;
    int64_t total = job->out.n * ((job->out.h + n - 1) / n) * ((job->out.w + n - 1) / n);
    hqi_threadpool_run(pool, hqi_fast_ceil_div(total, job->conv->wino_tiles), winograd_task, job);
}
