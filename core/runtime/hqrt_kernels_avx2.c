/* hqrt_kernels_avx2.c — the runtime's fast kernels, chosen at open time by CPU feature:
 * - AVX-512 VNNI (vpdpbusd): conv with groups == 1 and dense on 8-bit activations with 4- or
 *   8-bit weights (hqrt_kernels_vnni.c; HQRT_NO_VNNI=1 forces the AVX2 path), and the AMX
 *   kernel on the same packing for convs where it wins (hqrt_kernels_amx.c; HQRT_NO_AMX=1 keeps
 *   VNNI);
 * - AVX2 (this file): the same without VNNI, and 8-bit maxpool (vpmaxub);
 * - depthwise conv on either (hqrt_kernels_dw.c, which packs its weights too).
 * HQRT_NO_FAST=1 disables all of them (reference kernels only). This file also decides at
 * prepare which kernel an op gets (the CPU checks) and runs the prepared kernel (hqrt_fast.h).
 *
 * AVX2 conv/dense: vpmaddubsw (u8 x s8 pairs summed into int16) saturates: 255*127*2 > 32767.
 * So activations are centred first (q - zp, which lies in [-255, 255]) and widened to int16,
 * weights widened to int16, and vpmaddwd sums pairs into int32 exactly (|pair| <= 2*255*128).
 * An int32 lane then stays exact for depth <= 2^16, which prepare enforces. Register tiles of 6
 * output pixels x 16 channels (12 accumulators, 2 weight vectors, 1 broadcast pair of taps) run
 * over chunks of tiles whose input is converted once (padded rows whose kernel rows the tiles
 * read in place, see gemm_layout), each block of 16 channels over all the chunk's tiles
 * (gemm_rows). The int32 sum plus the int64 bias is the very accumulator of the reference
 * kernels (hqrt_kernels_ref.c: exact integer sums), and the output stage is the numerics' own
 * hqrt_output_code / hqrt_output_code_sum steps in vector lanes (hqrt_kernels_stage.c for a
 * pixel's channels, or the VNNI tile's own), so results are bit-exact by construction; tests
 * check it on random shapes (tests/unit/test_hqrt.c) and on whole models against the quantized
 * emulator (tests/e2e/deploy_bitexact*).
 *
 * Kernels never allocate: scratch comes from the caller (prepare states how much). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "hqrt_kernels_fast_internal.h"

enum { TILE = 6 };           /* output pixels per GEMM register tile */
#define MAX_FAST_DEPTH 65536 /* keeps every int32 lane exact */

#ifdef HQRT_HAVE_AVX2_BUILD

static bool cpu_has_avx2(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") ? 1 : 0;
    }
    return cached == 1;
}

/* n codes from src, centred (q - zp) and widened to int16, to dst, 16 at a time. wide: the last
 * partial 16 also as one vector, which reads up to 15 bytes past src + n (the arena's slack, or
 * the rest of the input) and writes up to 15 values past dst + n (what the caller writes next,
 * or the patch scratch's slack); otherwise one value at a time. */
__attribute__((target("avx2"))) static inline __attribute__((always_inline)) void
centre_codes(int16_t *dst, const uint8_t *src, int64_t n, int32_t zp, bool wide)
{
    const __m256i z = _mm256_set1_epi16((int16_t)zp);
    int64_t i = 0;
    for (; i + 16 <= n || (wide && i < n); i += 16) {
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(src + i));
        _mm256_storeu_si256((__m256i *)(void *)(dst + i),
                            _mm256_sub_epi16(_mm256_cvtepu8_epi16(b), z));
    }
    for (; i < n; i++)
        dst[i] = (int16_t)(src[i] - zp);
}

/* Centred int16 patch of one output pixel of a conv dilated along w (gemm_layout: the others
 * read their input in place): the taps in (ky, kx, i) order, 0 outside the input, zero tail up
 * to depth_padded. wide: see centre_codes (the caller's scratch holds PATCH_SLACK bytes after
 * the last patch). */
__attribute__((target("avx2"))) static void build_patch(const hqrt_conv_params_t *kp,
                                                        hqrt_dims_t in, const uint8_t *input,
                                                        int64_t oy, int64_t ox, int64_t padded,
                                                        bool wide, int16_t *patch)
{
    const int64_t c = in.c, kw = kp->kernel_w;
    const int64_t x0 = ox * kp->stride_w - kp->pad_left;
    int16_t *dst = patch;
    for (int32_t ky = 0; ky < kp->kernel_h; ky++, dst += kw * c) {
        int64_t y = oy * kp->stride_h - kp->pad_top + (int64_t)ky * kp->dilation_h;
        if (y < 0 || y >= in.h) {
            memset(dst, 0, (size_t)(kw * c) * sizeof *dst);
            continue;
        }
        const uint8_t *row = input + (size_t)y * (size_t)in.w * (size_t)c;
        for (int64_t kx = 0; kx < kw; kx++) {
            int64_t x = x0 + kx * kp->dilation_w;
            if (x < 0 || x >= in.w)
                memset(dst + kx * c, 0, (size_t)c * sizeof *dst);
            else
                centre_codes(dst + kx * c, row + x * c, c, kp->in_zp, wide);
        }
    }
    int64_t used = dst - patch;
    if (padded > used)
        memset(dst, 0, (size_t)(padded - used) * sizeof *dst);
}

/* Chunks of at most this many tiles share one pass over the weights (see gemm_rows), fewer when
 * their patches, input rows and sums would exceed CHUNK_BYTES (they stay in L2 beside a block's
 * weights). */
enum { CHUNK_TILES = 12 };
#define CHUNK_BYTES (256 * 1024)
#define PATCH_SLACK 32 /* centre_codes' wide stores past the last patch or row of a chunk */

/* How a groups == 1 conv (a dense op: a 1x1 conv of one pixel) runs, a function of its shapes
 * alone, so that prepare and run agree on the packing and the scratch:
 * - flat: a 1x1 window, stride 1, no pads, channels a multiple of 16: output pixel p reads input
 *   pixel p alone, and the chunk's patches are its input pixels converted as one run;
 * - seg (segments), otherwise when dilation_w == 1: the input rows a chunk needs are converted
 *   once into rows with their zero pads (padded rows), and each kernel row of a pixel's window
 *   is read there in place: kernel_w * c contiguous values, rounded up to an even count with a
 *   zero weight (the extra value is the next one in the buffer);
 * - else each pixel's patch is built (build_patch).
 * Weights are packed over nseg kernel rows of span_pad values each (nseg 1: the whole depth). */
typedef struct gemm_layout {
    bool flat, seg;
    int64_t nseg, span, span_pad; /* kernel rows, their values, rounded up to even */
    int64_t kpad;                 /* flat / patches: values per patch (a multiple of 16) */
    int64_t padded_w, row_values; /* seg: pixels per padded row, its values (+ the extra one) */
    int64_t chunk_tiles, px;      /* tiles per chunk, the most pixels one holds */
    int64_t max_rows, values;     /* seg: padded rows a chunk reads; the int16 values they (or
                                   * the patches) take */
} gemm_layout_t;

static gemm_layout_t gemm_layout(const hqrt_conv_params_t *kp, hqrt_dims_t in, hqrt_dims_t out,
                                 int64_t depth)
{
    gemm_layout_t g = {0};
    const int64_t c = in.c, cout_pad = ((int64_t)out.c + 7) / 8 * 8;
    g.kpad = (depth + 15) / 16 * 16;
    g.flat = kp->kernel_h == 1 && kp->kernel_w == 1 && kp->stride_h == 1 && kp->stride_w == 1 &&
             kp->pad_top == 0 && kp->pad_left == 0 && in.h == out.h && in.w == out.w && g.kpad == c;
    g.seg = !g.flat && kp->dilation_w == 1;
    g.nseg = g.seg ? kp->kernel_h : 1;
    g.span = g.seg ? (int64_t)kp->kernel_w * c : depth;
    g.span_pad = (g.span + 1) / 2 * 2;
    if (g.seg) {
        g.padded_w = (int64_t)(out.w - 1) * kp->stride_w + kp->kernel_w;
        g.row_values = g.padded_w * c + 1;
    }
    /* the most tiles whose sums and patches (or padded rows) fit CHUNK_BYTES, at least one */
    const int64_t pixels = (int64_t)out.h * out.w;
    for (int64_t t = CHUNK_TILES; t >= 1; t--) {
        g.chunk_tiles = t;
        g.px = t * TILE < pixels ? t * TILE : pixels;
        /* seg: px consecutive pixels span at most `spans` output rows */
        const int64_t spans = (g.px + out.w - 2) / out.w + 1;
        g.max_rows =
            g.seg ? (spans - 1) * kp->stride_h + (int64_t)(kp->kernel_h - 1) * kp->dilation_h + 1
                  : 0;
        g.values = g.seg ? g.max_rows * g.row_values : g.px * g.kpad;
        if (g.values * (int64_t)sizeof(int16_t) + g.px * cout_pad * 4 <= CHUNK_BYTES)
            break;
    }
    return g;
}

/* Bytes of scratch gemm_rows takes: the patches (or padded rows) and their slack, the sums
 * [px][cout_pad] int32, the folded bias [cout_pad] int32. */
static size_t gemm_scratch(const gemm_layout_t *g, int32_t cout)
{
    const int64_t cout_pad = ((int64_t)cout + 7) / 8 * 8;
    return ((size_t)g->values * sizeof(int16_t) + PATCH_SLACK + 31) / 32 * 32 +
           (size_t)((g->px + 1) * cout_pad) * sizeof(int32_t);
}

/* Padded row r of the input (row r - pad_top; zeros outside the input) into dst: padded_w pixels
 * from column -pad_left, centred int16, then the extra value (0; only ever multiplied by 0). */
__attribute__((target("avx2"))) static void padded_row(const hqrt_conv_params_t *kp, hqrt_dims_t in,
                                                       const uint8_t *input, int64_t r,
                                                       const gemm_layout_t *g, bool wide,
                                                       int16_t *dst)
{
    const int64_t c = in.c, y = r - kp->pad_top, pl = kp->pad_left;
    if (y < 0 || y >= in.h) {
        memset(dst, 0, (size_t)g->row_values * sizeof *dst);
        return;
    }
    const int64_t left = pl < g->padded_w ? pl : g->padded_w;
    const int64_t inside = in.w < g->padded_w - left ? in.w : g->padded_w - left;
    memset(dst, 0, (size_t)(left * c) * sizeof *dst);
    centre_codes(dst + left * c, input + (size_t)y * (size_t)in.w * (size_t)c, inside * c,
                 kp->in_zp, wide);
    if (g->padded_w > left + inside)
        memset(dst + (left + inside) * c, 0,
               (size_t)((g->padded_w - left - inside) * c) * sizeof *dst);
    dst[g->padded_w * c] = 0;
}

/* One tile: mp <= TILE pixels x 8 * nv (nv 1 or 2) output channels, both constants after
 * inlining: the int32 sums of each pixel's values (rows[j]: nseg segments of seg_pairs pairs of
 * int16, seg_stride values apart; pairs broadcast) with the block's weights w, packed
 * [pairs][8 * nv][2], started from the folded bias (b0, b1); stored at sums[j * stride]. The 12
 * accumulators are named variables (an array makes gcc move them through memory). */
__attribute__((target("avx2"))) static inline __attribute__((always_inline)) void
gemm_tile(const int16_t *const *rows, int64_t nseg, int64_t seg_pairs, size_t seg_stride,
          const int16_t *w, const int mp, const int nv, __m256i b0, __m256i b1, int32_t *sums,
          size_t stride)
{
    __m256i a00 = b0, a01 = b1, a10 = b0, a11 = b1, a20 = b0, a21 = b1;
    __m256i a30 = b0, a31 = b1, a40 = b0, a41 = b1, a50 = b0, a51 = b1;
    for (int64_t sg = 0; sg < nseg; sg++) {
        const size_t at = (size_t)sg * seg_stride;
        const int16_t *p0 = rows[0] + at, *p1 = rows[mp > 1 ? 1 : 0] + at,
                      *p2 = rows[mp > 2 ? 2 : 0] + at, *p3 = rows[mp > 3 ? 3 : 0] + at,
                      *p4 = rows[mp > 4 ? 4 : 0] + at, *p5 = rows[mp > 5 ? 5 : 0] + at;
        for (int64_t k = 0; k < seg_pairs; k++, w += nv * 16) {
            const __m256i w0 = _mm256_load_si256((const __m256i *)(const void *)w);
            const __m256i w1 =
                nv == 2 ? _mm256_load_si256((const __m256i *)(const void *)(w + 16)) : w0;
#define ROW(j, lo, hi)                                                                             \
    do {                                                                                           \
        if (mp <= j)                                                                               \
            break;                                                                                 \
        int32_t pair;                                                                              \
        memcpy(&pair, p##j + 2 * k, sizeof pair);                                                  \
        const __m256i x = _mm256_set1_epi32(pair);                                                 \
        lo = _mm256_add_epi32(lo, _mm256_madd_epi16(x, w0));                                       \
        if (nv == 2)                                                                               \
            hi = _mm256_add_epi32(hi, _mm256_madd_epi16(x, w1));                                   \
    } while (0)
            ROW(0, a00, a01);
            ROW(1, a10, a11);
            ROW(2, a20, a21);
            ROW(3, a30, a31);
            ROW(4, a40, a41);
            ROW(5, a50, a51);
#undef ROW
        }
    }
#define PUT(j, lo, hi)                                                                             \
    do {                                                                                           \
        if (mp <= j)                                                                               \
            break;                                                                                 \
        _mm256_storeu_si256((__m256i *)(void *)(sums + (size_t)j * stride), lo);                   \
        if (nv == 2)                                                                               \
            _mm256_storeu_si256((__m256i *)(void *)(sums + (size_t)j * stride + 8), hi);           \
    } while (0)
    PUT(0, a00, a01);
    PUT(1, a10, a11);
    PUT(2, a20, a21);
    PUT(3, a30, a31);
    PUT(4, a40, a41);
    PUT(5, a50, a51);
#undef PUT
}

/* groups == 1 conv and dense over output pixels [row_begin, row_end) (a dense op: its one
 * pixel). Chunks of tiles of TILE consecutive pixels: the chunk's patches (or padded rows, see
 * gemm_layout) are made once, then each block of 16 output channels (the last of 8 when
 * cout_pad says so) runs over every tile of the chunk, so that a block's weights are read from
 * memory once per chunk and from L2 for the chunk's other tiles, not once per tile from L3 (a
 * deep layer's weights exceed L2: resnet18's last 3x3 convs hold 4.7 MB as int16). Chunks have
 * equal tile counts (a nearly empty last chunk would stream the weights as often as a full
 * one). Then the output stage of the chunk's pixels. */
__attribute__((target("avx2"))) static void
gemm_rows(const hqrt_i_prepared_t *prep, const hqrt_conv_params_t *kp, hqrt_dims_t in,
          const uint8_t *input, const int64_t *bias, const hqrt_addend_t *addend, hqrt_dims_t out,
          uint8_t *output, int64_t row_begin, int64_t row_end, uint8_t *scratch)
{
    const gemm_layout_t g = gemm_layout(kp, in, out, prep->depth);
    const int64_t kpad = g.kpad, seg_pairs = g.span_pad / 2;
    const int32_t cout = out.c;
    const int64_t cout_pad = ((int64_t)cout + 7) / 8 * 8;
    const int16_t *weights = prep->packed;
    /* scratch: see gemm_scratch */
    int16_t *values = (int16_t *)(void *)scratch;
    int32_t *sums =
        (int32_t *)(void *)(scratch +
                            ((size_t)g.values * sizeof(int16_t) + PATCH_SLACK + 31) / 32 * 32);
    int32_t *b32 = sums + (size_t)(g.px * cout_pad);
    const size_t esize = kp->out.out_bits == 16 ? 2 : 1;
    const int isa = hqrt_i_vector_isa();
    const bool fold = hqrt_i_bias_folds(bias, cout, prep->depth);
    const bool wide = !prep->exact_reads;
    const int64_t *stage_bias = fold ? NULL : bias;
    for (int64_t o = 0; o < cout_pad; o++)
        b32[o] = fold && o < cout ? (int32_t)bias[o] : 0;
    const size_t seg_stride = g.seg ? (size_t)(kp->dilation_h * g.row_values) : 0;
    const int64_t total = row_end - row_begin; /* GEMM ops are split by output pixels */
    const int64_t all_tiles = (total + TILE - 1) / TILE;
    const int64_t chunks = (all_tiles + g.chunk_tiles - 1) / g.chunk_tiles;
    const int64_t per_chunk = chunks ? (all_tiles + chunks - 1) / chunks : 0;
    for (int64_t first = 0; first < total; first += TILE * per_chunk) {
        const int64_t count = total - first < TILE * per_chunk ? total - first : TILE * per_chunk;
        const int tiles = (int)((count + TILE - 1) / TILE);
        int np[CHUNK_TILES];
        const int16_t *rows[CHUNK_TILES][TILE];
        for (int t = 0; t < tiles; t++)
            np[t] = count - (int64_t)t * TILE < TILE ? (int)(count - (int64_t)t * TILE) : TILE;
        if (tiles >= 2 && np[tiles - 1] <= 2) { /* 6 + 1 -> 4 + 3, 6 + 2 -> 4 + 4 */
            int two = TILE + np[tiles - 1];
            np[tiles - 2] = (two + 1) / 2, np[tiles - 1] = two / 2;
        }
        /* the chunk's pixels in order: one division for its first, then a running (oy, ox) */
        const int64_t pix0 = row_begin + first;
        int64_t oy = pix0 / out.w, ox = pix0 % out.w;
        const int64_t r0 = oy * kp->stride_h; /* the chunk's first padded row */
        if (g.flat) /* the patches are the chunk's input pixels, back to back */
            centre_codes(values, input + (size_t)pix0 * (size_t)in.c, count * kpad, kp->in_zp,
                         wide);
        if (g.seg) {
            const int64_t last = (pix0 + count - 1) / out.w;
            const int64_t nrows =
                (last - oy) * kp->stride_h + (int64_t)(kp->kernel_h - 1) * kp->dilation_h + 1;
            for (int64_t r = 0; r < nrows; r++)
                padded_row(kp, in, input, r0 + r, &g, wide, values + r * g.row_values);
        }
        for (int t = 0, j = 0; t < tiles; t++)
            for (int i = 0; i < TILE; i++) {
                if (i >= np[t]) { /* never read: the tile kernel has np rows */
                    rows[t][i] = rows[t][0];
                    continue;
                }
                if (g.seg)
                    rows[t][i] = values + (oy * kp->stride_h - r0) * g.row_values +
                                 ox * kp->stride_w * (int64_t)in.c;
                else {
                    rows[t][i] = values + (size_t)(j * kpad);
                    if (!g.flat)
                        build_patch(kp, in, input, oy, ox, kpad, wide, values + (size_t)(j * kpad));
                }
                j++;
                if (++ox == out.w)
                    ox = 0, oy++;
            }
        for (int32_t o = 0; o < cout; o += 16) {
            const bool two = o + 8 < cout; /* else the last 8 channels */
            const int16_t *w = weights + (size_t)o * (size_t)(g.nseg * g.span_pad);
            const __m256i b0 = _mm256_load_si256((const __m256i *)(const void *)(b32 + o));
            const __m256i b1 =
                two ? _mm256_load_si256((const __m256i *)(const void *)(b32 + o + 8)) : b0;
            int32_t *s = sums + o;
            for (int t = 0; t < tiles; s += (size_t)np[t] * (size_t)cout_pad, t++) {
                const int16_t *const *r = rows[t];
                const int64_t ns = g.nseg;
                const size_t cs = (size_t)cout_pad;
                switch (np[t] * 2 + (two ? 1 : 0)) { /* a partial tile computes its pixels */
                case 13:
                    gemm_tile(r, ns, seg_pairs, seg_stride, w, 6, 2, b0, b1, s, cs);
                    break;
                case 12:
                    gemm_tile(r, ns, seg_pairs, seg_stride, w, 6, 1, b0, b1, s, cs);
                    break;
                case 11:
                    gemm_tile(r, ns, seg_pairs, seg_stride, w, 5, 2, b0, b1, s, cs);
                    break;
                case 10:
                    gemm_tile(r, ns, seg_pairs, seg_stride, w, 5, 1, b0, b1, s, cs);
                    break;
                case 9:
                    gemm_tile(r, ns, seg_pairs, seg_stride, w, 4, 2, b0, b1, s, cs);
                    break;
                case 8:
                    gemm_tile(r, ns, seg_pairs, seg_stride, w, 4, 1, b0, b1, s, cs);
                    break;
                case 7:
                    gemm_tile(r, ns, seg_pairs, seg_stride, w, 3, 2, b0, b1, s, cs);
                    break;
                case 6:
                    gemm_tile(r, ns, seg_pairs, seg_stride, w, 3, 1, b0, b1, s, cs);
                    break;
                case 5:
                    gemm_tile(r, ns, seg_pairs, seg_stride, w, 2, 2, b0, b1, s, cs);
                    break;
                case 4:
                    gemm_tile(r, ns, seg_pairs, seg_stride, w, 2, 1, b0, b1, s, cs);
                    break;
                case 3:
                    gemm_tile(r, ns, seg_pairs, seg_stride, w, 1, 2, b0, b1, s, cs);
                    break;
                case 2:
                    gemm_tile(r, ns, seg_pairs, seg_stride, w, 1, 1, b0, b1, s, cs);
                    break;
                default:
                    break;
                }
            }
        }
        /* the output stage of each pixel's channels in vector lanes (the int64 sum of the
         * reference is bias + the exact int32 sum, formed there); the chunk's pixels are
         * consecutive output pixels */
        if (!addend) {
            hqrt_i_stage_block(isa, &kp->out, sums, (size_t)cout_pad, stage_bias, cout,
                               (int32_t)count, output + (size_t)pix0 * (size_t)cout * esize);
            continue;
        }
        for (int64_t j = 0; j < count; j++) {
            const size_t base = (size_t)(pix0 + j) * (size_t)cout;
            hqrt_i_stage_row_addend(isa, &kp->out, sums + (size_t)(j * cout_pad), stage_bias, 0,
                                    cout, addend, base, output + base * esize);
        }
    }
}

/* First tap k of a window starting at `start` with taps `dilation` apart that lands at or after 0,
 * and one past the last that lands before `extent`. */
static void taps_inside(int64_t start, int32_t kernel, int32_t dilation, int64_t extent,
                        int64_t *first, int64_t *end)
{
    int64_t a = start < 0 ? (-start + dilation - 1) / dilation : 0;
    int64_t b = start < extent ? (extent - start + dilation - 1) / dilation : 0;
    *first = a;
    *end = b < kernel ? b : kernel;
}

/* 8-bit maxpool over output rows [row_begin, row_end): the max of the window's input codes,
 * 32 channels at a time (vpmaxub), in_zp for a window without input cells, as hqrt_maxpool. */
__attribute__((target("avx2"))) static void maxpool_rows(const hqrt_pool_params_t *kp,
                                                         hqrt_dims_t in, const uint8_t *input,
                                                         hqrt_dims_t out, uint8_t *output,
                                                         int64_t row_begin, int64_t row_end)
{
    const size_t c = (size_t)in.c;
    for (int64_t oy = row_begin; oy < row_end; oy++)
        for (int64_t ox = 0; ox < out.w; ox++) {
            uint8_t *dst = output + ((size_t)oy * (size_t)out.w + (size_t)ox) * c;
            const int64_t y0 = oy * kp->stride_h - kp->pad_top;
            const int64_t x0 = ox * kp->stride_w - kp->pad_left;
            const int64_t dy = kp->dilation_h, dx = kp->dilation_w;
            int64_t ka, kb, ja, jb;
            taps_inside(y0, kp->kernel_h, kp->dilation_h, in.h, &ka, &kb);
            taps_inside(x0, kp->kernel_w, kp->dilation_w, in.w, &ja, &jb);
            if (ka >= kb || ja >= jb) {
                memset(dst, kp->in_zp, c);
                continue;
            }
            size_t ch = 0;
            for (; ch + 32 <= c; ch += 32) {
                __m256i best = _mm256_setzero_si256();
                for (int64_t y = y0 + ka * dy; y < y0 + kb * dy; y += dy)
                    for (int64_t x = x0 + ja * dx; x < x0 + jb * dx; x += dx)
                        best = _mm256_max_epu8(
                            best, _mm256_loadu_si256(
                                      (const __m256i *)(const void *)(input +
                                                                      ((size_t)y * (size_t)in.w +
                                                                       (size_t)x) *
                                                                          c +
                                                                      ch)));
                _mm256_storeu_si256((__m256i *)(void *)(dst + ch), best);
            }
            for (; ch < c; ch++) {
                uint8_t best = 0;
                for (int64_t y = y0 + ka * dy; y < y0 + kb * dy; y += dy)
                    for (int64_t x = x0 + ja * dx; x < x0 + jb * dx; x += dx) {
                        uint8_t q = input[((size_t)y * (size_t)in.w + (size_t)x) * c + ch];
                        best = q > best ? q : best;
                    }
                dst[ch] = best;
            }
        }
}

#endif /* HQRT_HAVE_AVX2_BUILD */

#ifdef HQRT_HAVE_AVX2_BUILD
/* A dense op as the conv the kernels run: one pixel of h*w*c channels through a 1x1 window. */
static void dense_as_conv(hqrt_conv_params_t *k, hqrt_dims_t *in, hqrt_dims_t *out)
{
    k->kernel_h = k->kernel_w = k->stride_h = k->stride_w = k->dilation_h = k->dilation_w = 1;
    k->pad_top = k->pad_left = k->pad_bottom = k->pad_right = 0;
    *in = (hqrt_dims_t){1, 1, 1, in->h * in->w * in->c};
    *out = (hqrt_dims_t){1, 1, 1, out->c};
}
#endif

hqrt_status_t hqrt_i_conv_prepare(const hqrt_model_t *m, const hqx_op_t *op,
                                  hqrt_i_prepared_t *prep, hqrt_error_t *err)
{
    const hqx_conv_params_t *p = hqrt_i_params(m, op);
    const hqx_tensor_t *ti = &m->tensors[m->ids[op->inputs_first]];
    const hqx_tensor_t *to = &m->tensors[m->ids[op->outputs_first]];
    hqrt_conv_params_t kp;
    hqrt_i_conv_setup(m, op, &kp);
    hqrt_dims_t in = {1, (int32_t)ti->h, (int32_t)ti->w, (int32_t)ti->c};
    hqrt_dims_t out = {1, (int32_t)to->h, (int32_t)to->w, (int32_t)to->c};
    return hqrt_i_conv_prepare_kernel(&kp, op->code == HQX_OP_DENSE, in, out,
                                      hqrt_i_blob(m, p->weights), hqrt_i_blob(m, p->bias), false,
                                      m->name, prep, err);
}

hqrt_status_t hqrt_i_conv_prepare_kernel(const hqrt_conv_params_t *kp, bool dense, hqrt_dims_t in,
                                         hqrt_dims_t out, const void *w, const int64_t *bias,
                                         bool exact_reads, const char *name,
                                         hqrt_i_prepared_t *prep, hqrt_error_t *err)
{
    memset(prep, 0, sizeof *prep);
#ifdef HQRT_HAVE_AVX2_BUILD
    if (!cpu_has_avx2() || getenv("HQRT_NO_FAST"))
        return HQRT_OK;
    if (kp->in_bits != 8 || (kp->weight_bits != 4 && kp->weight_bits != 8) || !w)
        return HQRT_OK;
    const int32_t cout = out.c;
    if (dense || kp->groups == 1) {
        int64_t taps = dense ? 1 : (int64_t)kp->kernel_h * kp->kernel_w;
        int64_t cin = dense ? (int64_t)in.h * in.w * in.c : in.c;
        int64_t depth = taps * cin;
        if (depth > MAX_FAST_DEPTH)
            return HQRT_OK;
        if (hqrt_i_cpu_has_vnni() && !getenv("HQRT_NO_VNNI")) {
            hqrt_status_t st = hqrt_i_vnni_prepare(kp, dense, out, w, bias, depth, cin, exact_reads,
                                                   name, prep, err);
            if (st == HQRT_OK) /* the AMX kernel runs the same packing where it wins */
                hqrt_i_amx_adopt(kp, out, prep);
            return st;
        }
        hqrt_conv_params_t k = *kp;
        hqrt_dims_t i = in, o = out;
        if (dense)
            dense_as_conv(&k, &i, &o);
        const gemm_layout_t g = gemm_layout(&k, i, o, depth);
        const int64_t cout_pad = ((int64_t)cout + 7) / 8 * 8, values = g.nseg * g.span_pad;
        size_t bytes = (size_t)(values * cout_pad) * sizeof(int16_t);
        int16_t *packed = aligned_alloc(32, (bytes + 31) / 32 * 32);
        if (!packed)
            return hqrt_i_fail(err, HQRT_ERR_NOMEM, "%s: out of memory", name);
        /* blocks of 16 channels (the last of 8 when cout_pad says so), each [values / 2][16 or
         * 8][2] and contiguous, block b from channel 16 * b: value v = 2 * pair + e of kernel
         * row v / span_pad, tap v % span_pad of the row in patch order (kx, i), so that the
         * taps in (ky, kx, i) order are exactly the [kh, kw, cin, cout] row order; zero past a
         * row's span, past the depth and past cout */
        for (int64_t v = 0; v < values; v++)
            for (int64_t oc = 0; oc < cout_pad; oc++) {
                const int64_t kk = v % g.span_pad, t = v / g.span_pad * g.span + kk;
                const int64_t o0 = oc / 16 * 16, width = cout_pad - o0 < 16 ? cout_pad - o0 : 16;
                packed[(size_t)(o0 * values + (v / 2 * width + (oc - o0)) * 2 + v % 2)] =
                    kk < g.span && t < depth && oc < cout
                        ? (int16_t)hqrt_i_weight_at(w, kp->weight_bits, (size_t)(t * cout + oc))
                        : 0;
            }
        /* split by output pixels, several tiles per piece (each piece streams the weights) */
        *prep = (hqrt_i_prepared_t){.fast = true,
                                    .kind = HQRT_KIND_GEMM,
                                    .dense = dense,
                                    .rows = dense ? 1 : (int64_t)out.h * out.w,
                                    .min_rows = 4 * TILE,
                                    .packed = packed,
                                    .depth = depth,
                                    .depth_padded = g.kpad,
                                    .exact_reads = exact_reads,
                                    .scratch = gemm_scratch(&g, cout)};
        return HQRT_OK;
    }
    if (kp->groups == in.c && in.c == out.c)
        return hqrt_i_dw_prepare(kp, in, out, w, bias, name, prep, err);
#else
    (void)kp, (void)dense, (void)in, (void)out, (void)w, (void)bias, (void)exact_reads;
    (void)name, (void)err;
#endif
    return HQRT_OK;
}

int hqrt_i_conv_fast(const hqrt_i_prepared_t *prep, const hqrt_conv_params_t *kp, hqrt_dims_t in,
                     const uint8_t *input, const int64_t *bias, const hqrt_addend_t *addend,
                     hqrt_dims_t out, uint8_t *output, int64_t row_begin, int64_t row_end,
                     uint8_t *scratch)
{
#ifdef HQRT_HAVE_AVX2_BUILD
    if (prep->kind == HQRT_KIND_GEMM) {
        hqrt_conv_params_t k = *kp;
        hqrt_dims_t i = in, o = out;
        if (prep->dense)
            dense_as_conv(&k, &i, &o);
        gemm_rows(prep, &k, i, input, bias, addend, o, output, row_begin, row_end, scratch);
        return 0;
    }
    if (prep->kind == HQRT_KIND_VNNI || prep->kind == HQRT_KIND_AMX)
        return hqrt_i_conv_fast_samples(prep, kp, in, input, bias, addend, out, output, 1, 0,
                                        row_begin, row_end, scratch);
    if (prep->kind == HQRT_KIND_DW512) {
        hqrt_i_dw_rows_avx512(prep, kp, in, input, bias, addend, out, output, row_begin, row_end,
                              scratch);
        return 0;
    }
    if (prep->kind == HQRT_KIND_DW) {
        hqrt_i_dw_rows_avx2(prep, kp, in, input, bias, addend, out, output, row_begin, row_end,
                            scratch);
        return 0;
    }
#else
    (void)prep, (void)kp, (void)in, (void)input, (void)bias, (void)addend, (void)out;
    (void)output, (void)row_begin, (void)row_end, (void)scratch;
#endif
    return -1;
}

size_t hqrt_i_conv_samples_scratch(const hqrt_i_prepared_t *prep)
{
#ifdef HQRT_HAVE_AVX2_BUILD
    if (prep->kind == HQRT_KIND_VNNI)
        return hqrt_i_vnni_samples_scratch(prep);
    if (prep->kind == HQRT_KIND_AMX)
        return hqrt_i_amx_samples_scratch(prep);
#else
    (void)prep;
#endif
    return 0;
}

int hqrt_i_conv_fast_samples(const hqrt_i_prepared_t *prep, const hqrt_conv_params_t *kp,
                             hqrt_dims_t in, const uint8_t *input, const int64_t *bias,
                             const hqrt_addend_t *addend, hqrt_dims_t out, uint8_t *output,
                             int64_t samples, size_t stride, int64_t row_begin, int64_t row_end,
                             uint8_t *scratch)
{
#ifdef HQRT_HAVE_AVX2_BUILD
    if (samples > 1 && (kp->out.out_bits != 8 || (addend && addend->bits != 8)))
        return -1; /* pixels are found by their byte offsets: one code per byte */
    if (prep->kind == HQRT_KIND_VNNI) {
        hqrt_conv_params_t k = *kp;
        hqrt_dims_t i = in, o = out;
        if (prep->dense)
            dense_as_conv(&k, &i, &o);
        hqrt_i_vnni_rows(prep, &k, i, input, bias, addend, o, output, samples, stride, row_begin,
                         row_end, scratch);
        return 0;
    }
    if (prep->kind == HQRT_KIND_AMX) {
        hqrt_i_amx_rows(prep, kp, in, input, addend, out, output, samples, stride, row_begin,
                        row_end, scratch);
        return 0;
    }
#else
    (void)prep, (void)kp, (void)in, (void)input, (void)bias, (void)addend, (void)out;
    (void)output, (void)samples, (void)stride, (void)row_begin, (void)row_end, (void)scratch;
#endif
    return -1;
}

void hqrt_i_pool_prepare(const hqrt_model_t *m, const hqx_op_t *op, hqrt_i_prepared_t *prep)
{
    memset(prep, 0, sizeof *prep);
#ifdef HQRT_HAVE_AVX2_BUILD
    const hqx_tensor_t *ti = &m->tensors[m->ids[op->inputs_first]];
    const hqx_tensor_t *to = &m->tensors[m->ids[op->outputs_first]];
    if ((op->code != HQX_OP_MAXPOOL && op->code != HQX_OP_DILATED_MAXPOOL) || ti->bits != 8 ||
        !cpu_has_avx2() || getenv("HQRT_NO_FAST"))
        return;
    *prep = (hqrt_i_prepared_t){.fast = true, .kind = HQRT_KIND_MAXPOOL, .rows = to->h};
#else
    (void)m;
    (void)op;
#endif
}

int hqrt_i_maxpool_fast(const hqrt_i_prepared_t *prep, const hqrt_pool_params_t *kp, hqrt_dims_t in,
                        const uint8_t *input, hqrt_dims_t out, uint8_t *output, int64_t row_begin,
                        int64_t row_end)
{
#ifdef HQRT_HAVE_AVX2_BUILD
    if (prep->kind == HQRT_KIND_MAXPOOL && kp->in_bits == 8 && in.c == out.c) {
        maxpool_rows(kp, in, input, out, output, row_begin, row_end);
        return 0;
    }
#else
    (void)prep, (void)kp, (void)in, (void)input, (void)out, (void)output, (void)row_begin;
    (void)row_end;
#endif
    return -1;
}
