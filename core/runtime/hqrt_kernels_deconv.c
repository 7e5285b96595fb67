/* hqrt_kernels_deconv.c — the fast deconvolution (hqrt_i_deconv_fast): the reference's gather
 * (hqrt_deconv2d: output pixel by output pixel, the taps that reach it), with the output
 * channels in the vector lanes. Each tap's input code is multiplied into a row of weights
 * ([kh, kw, cin, cout] keeps a tap's cout weights of one input channel contiguous) and summed in
 * int32, then the row of sums goes through the vector output stage (hqrt_i_stage_row).
 *
 * Bit-exact with the reference: with 8-bit codes (|q - zp| <= 255) and 4/8-bit weights
 * (|w| <= 128) a sum over at most DECONV_MAX_DEPTH = 65536 products stays below 2^31, so the
 * int32 sum equals the reference's int64 one, and the stage adds the bias in int64 exactly as
 * hqrt_output_code does. Other layers (16-bit codes or weights, groups, deeper sums, a bias
 * beyond +-2^62 that the reference clamps) run the reference. The loop is compiled once for
 * AVX-512 and once for AVX2 (target attributes, chosen by hqrt_i_vector_isa like the other
 * per-element kernels); HQRT_ISA_REFERENCE runs hqrt_deconv2d itself. A kernel equal to its
 * stride runs as a matrix product instead (deconv_ks_avx2, below; with AVX-512 VNNI
 * deconv_ks_vnni). */
#include <string.h>

#include "hqrt_fast.h"
#include "hqrt_kernels_fast_internal.h"
#include "hqrt_numerics.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#endif

/* Index of the first element of pixel (n, y, x) in a dense [N, H, W, C] tensor of dims d. */
static inline size_t pixel_at(hqrt_dims_t d, int64_t n, int64_t y, int64_t x)
{
    return (((size_t)n * (size_t)d.h + (size_t)y) * (size_t)d.w + (size_t)x) * (size_t)d.c;
}

/* int32 sums per pass (a run of output pixels of one row, or part of one pixel's channels):
 * on the stack, as kernels never allocate. */
#define DECONV_CHUNK 4096
#define DECONV_MAX_DEPTH 65536

#define INLINE static inline __attribute__((always_inline))

/* acc[j] += sums of output pixel (n, oh, ow), channels [o0, o0 + width). */
INLINE void deconv_pixel(const hqrt_conv_params_t *p, hqrt_dims_t in, const uint8_t *input,
                         const int8_t *weights, hqrt_dims_t out, int32_t n, int32_t oh, int32_t ow,
                         int32_t o0, int32_t width, int32_t *acc)
{
    const int32_t cin = in.c, cout = out.c, zp = p->in_zp;
    const int64_t fy = (int64_t)oh + p->pad_top, fx = (int64_t)ow + p->pad_left;
    for (int32_t ky = 0; ky < p->kernel_h; ky++) {
        const int64_t ty = fy - (int64_t)ky * p->dilation_h;
        if (ty < 0 || ty % p->stride_h || ty / p->stride_h >= in.h)
            continue;
        const int64_t ih = ty / p->stride_h;
        for (int32_t kx = 0; kx < p->kernel_w; kx++) {
            const int64_t tx = fx - (int64_t)kx * p->dilation_w;
            if (tx < 0 || tx % p->stride_w || tx / p->stride_w >= in.w)
                continue;
            const int64_t iw = tx / p->stride_w;
            const uint8_t *src = input + pixel_at(in, n, ih, iw);
            const int8_t *wt =
                weights +
                ((size_t)ky * (size_t)p->kernel_w + (size_t)kx) * (size_t)cin * (size_t)cout +
                (size_t)o0;
            for (int32_t i = 0; i < cin; i++) {
                const int32_t q = (int32_t)src[i] - zp;
                const int8_t *row = wt + (size_t)i * (size_t)cout;
                for (int32_t j = 0; j < width; j++)
                    acc[j] += q * (int32_t)row[j];
            }
        }
    }
}

/* Every output pixel; the caller checked the shapes and numerics. A per-tensor stage runs once
 * per run of pixels (what keeps layers of one or a few output channels vector-wide); a
 * per-channel one once per pixel (and channel chunk). */
INLINE void deconv_all(int isa, const hqrt_conv_params_t *p, hqrt_dims_t in, const uint8_t *input,
                       const int8_t *weights, const int64_t *bias, hqrt_dims_t out, uint8_t *output)
{
    const size_t esize = p->out.out_bits == 16 ? 2 : 1;
    const int32_t cout = out.c;
    int32_t acc[DECONV_CHUNK];
    /* runs seed the int32 sums with the bias: exact when |bias| <= 2^30 and the sum of at most
     * 32768 products of |q| <= 255 and |w| <= 128 stays below 2^30 in magnitude */
    bool runs = p->out.count == 1 && cout <= DECONV_CHUNK &&
                (int64_t)p->kernel_h * p->kernel_w * in.c <= 32768;
    for (int32_t o = 0; runs && bias && o < cout; o++)
        runs = bias[o] >= -((int64_t)1 << 30) && bias[o] <= (int64_t)1 << 30;
    const int32_t run = runs ? DECONV_CHUNK / cout : 1;
    for (int32_t n = 0; n < out.n; n++)
        for (int32_t oh = 0; oh < out.h; oh++) {
            uint8_t *row_out = output + pixel_at(out, n, oh, 0) * esize;
            for (int32_t ow0 = 0; ow0 < out.w; ow0 += run) {
                const int32_t pixels = out.w - ow0 < run ? out.w - ow0 : run;
                if (runs) {
                    for (int32_t k = 0; k < pixels; k++)
                        for (int32_t j = 0; j < cout; j++)
                            acc[(size_t)k * (size_t)cout + (size_t)j] = bias ? (int32_t)bias[j] : 0;
                    for (int32_t k = 0; k < pixels; k++)
                        deconv_pixel(p, in, input, weights, out, n, oh, ow0 + k, 0, cout,
                                     acc + (size_t)k * (size_t)cout);
                    hqrt_i_stage_row(isa, &p->out, acc, NULL, 0, pixels * cout,
                                     row_out + (size_t)ow0 * (size_t)cout * esize);
                    continue;
                }
                for (int32_t o0 = 0; o0 < cout; o0 += DECONV_CHUNK) {
                    const int32_t width = cout - o0 < DECONV_CHUNK ? cout - o0 : DECONV_CHUNK;
                    memset(acc, 0, (size_t)width * sizeof(int32_t));
                    deconv_pixel(p, in, input, weights, out, n, oh, ow0, o0, width, acc);
                    hqrt_i_stage_row(isa, &p->out, acc, bias, o0, width,
                                     row_out + ((size_t)ow0 * (size_t)cout + (size_t)o0) * esize);
                }
            }
        }
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define HQRT_HAVE_VECTOR_DECONV 1
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) static void
deconv_avx512(const hqrt_conv_params_t *p, hqrt_dims_t in, const uint8_t *input,
              const int8_t *weights, const int64_t *bias, hqrt_dims_t out, uint8_t *output)
{
    deconv_all(HQRT_ISA_AVX512, p, in, input, weights, bias, out, output);
}

__attribute__((target("avx2"))) static void deconv_avx2(const hqrt_conv_params_t *p, hqrt_dims_t in,
                                                        const uint8_t *input, const int8_t *weights,
                                                        const int64_t *bias, hqrt_dims_t out,
                                                        uint8_t *output)
{
    deconv_all(HQRT_ISA_AVX2, p, in, input, weights, bias, out, output);
}
#endif

/* ---- kernel == stride: each input pixel a kh x kw block of its own outputs ---------------------
 * With kernel_h == stride_h, kernel_w == stride_w, dilation 1, no left/right pads and no output
 * padding, output row oh takes, at full-output row fy = oh + pad_top, exactly one kernel row
 * ky = fy % kh of one input row ih = fy / kh (pad_top/pad_bottom: the rows a thread's piece
 * leaves, or a real crop), and its pixels are, for each input pixel iw of that row in turn, the
 * kw * cout sums sum_i (q[i] - zp) * w[ky, kx, i, o] in (kx, o) order: a matrix product, run
 * with vpmaddwd on the centred codes of two input channels broadcast as an int16 pair and the
 * weights packed per kernel row and channel pair as [kh][pairs][columns][2] int16, 8 columns per
 * ymm. The sums are the reference's exact int64 ones (the same bound as above); then the vector
 * output stage, once per output row for a per-tensor stage seeded with a small bias (as
 * deconv_all), else as one block of the row's pixels (hqrt_i_stage_block). */
#define KS_ROW_MAX 8192     /* int32 sums of one output row (out.w * cout) on the stack */
#define KS_PACKED_MAX 16384 /* packed int16 weights on the stack */
#define KS_BLOCK 8          /* ymm accumulators per pass (64 columns) */

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
static bool deconv_ks_fits(const hqrt_conv_params_t *p, hqrt_dims_t in, hqrt_dims_t out)
{
    const int64_t pairs = ((int64_t)in.c + 1) / 2, cols = (int64_t)p->kernel_w * out.c;
    return p->kernel_h == p->stride_h && p->kernel_w == p->stride_w && p->dilation_h == 1 &&
           p->dilation_w == 1 && p->pad_left == 0 && p->pad_right == 0 && p->output_pad_h == 0 &&
           p->output_pad_w == 0 && (int64_t)out.w * out.c + 8 <= KS_ROW_MAX &&
           p->kernel_h * pairs * ((cols + 7) / 8 * 8) * 2 <= KS_PACKED_MAX;
}

/* A per-tensor stage whose bias cannot take the sums near 2^31: the bias then seeds the sums and
 * the row runs as one flat stage; otherwise the stage adds the bias per channel. */
static bool ks_seeded(const hqrt_conv_params_t *p, const int64_t *bias, int32_t cout)
{
    bool seeded = p->out.count == 1;
    for (int32_t o = 0; seeded && bias && o < cout; o++)
        seeded = bias[o] >= -((int64_t)1 << 30) && bias[o] <= (int64_t)1 << 30;
    return seeded;
}

/* The weight [ky, kx, i, o] ([kh][kw][cin][cout] int8) that packed column col = kx * cout + o of
 * kernel row ky takes from input channel i; 0 past the row's cols columns and past the channels
 * (the packings' padding). */
static int32_t ks_weight(const int8_t *weights, int32_t kw, int32_t cin, int32_t cout, int32_t cols,
                         int32_t ky, int32_t col, int32_t i)
{
    if (col >= cols || i >= cin)
        return 0;
    const int32_t kx = col / cout, o = col % cout;
    return weights[(((size_t)ky * (size_t)kw + (size_t)kx) * (size_t)cin + (size_t)i) *
                       (size_t)cout +
                   (size_t)o];
}

/* The output stage of one output row's int32 sums (out_w pixels of cout channels). */
static void ks_stage_row(int isa, const hqrt_conv_params_t *p, bool seeded, const int64_t *bias,
                         int32_t cout, int32_t out_w, int32_t *row, uint8_t *out_row)
{
    if (seeded) {
        if (bias)
            for (int32_t j = 0; j < out_w * cout; j++)
                row[j] += (int32_t)bias[j % cout];
        hqrt_i_stage_row(isa, &p->out, row, NULL, 0, out_w * cout, out_row);
    } else {
        hqrt_i_stage_block(isa, &p->out, row, (size_t)cout, bias, cout, out_w, out_row);
    }
}

/* The sums of output row (n, ih * kh + ky) into row[0 .. in.w * cols), plus up to 7 spilled. */
__attribute__((target("avx2"))) static void ks_row(const hqrt_conv_params_t *p, hqrt_dims_t in,
                                                   const uint8_t *input, const int16_t *packed,
                                                   int32_t cols, int32_t n, int32_t ih, int16_t *q,
                                                   int32_t *row)
{
    const int32_t cin = in.c, pairs = (cin + 1) / 2, vecs = (cols + 7) / 8;
    const __m256i zp = _mm256_set1_epi16((int16_t)p->in_zp);
    for (int32_t iw = 0; iw < in.w; iw++) {
        const uint8_t *src = input + pixel_at(in, n, ih, iw);
        int32_t i = 0;
        for (; i + 16 <= cin; i += 16)
            _mm256_storeu_si256((__m256i *)(void *)(q + i),
                                _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128(
                                                     (const __m128i *)(const void *)(src + i))),
                                                 zp));
        for (; i < cin; i++)
            q[i] = (int16_t)(src[i] - p->in_zp);
        q[cin] = 0;
        int32_t *dst = row + (size_t)iw * (size_t)cols;
        for (int32_t v0 = 0; v0 < vecs; v0 += KS_BLOCK) {
            const int32_t nv = vecs - v0 < KS_BLOCK ? vecs - v0 : KS_BLOCK;
            __m256i acc[KS_BLOCK];
            for (int32_t v = 0; v < KS_BLOCK; v++)
                acc[v] = _mm256_setzero_si256();
            for (int32_t pr = 0; pr < pairs; pr++) {
                int32_t pair;
                memcpy(&pair, q + 2 * pr, sizeof pair);
                const __m256i x = _mm256_set1_epi32(pair);
                const int16_t *wp = packed + ((size_t)pr * (size_t)vecs + (size_t)v0) * 16;
                for (int32_t v = 0; v < nv; v++)
                    acc[v] = _mm256_add_epi32(
                        acc[v], _mm256_madd_epi16(
                                    x, _mm256_load_si256(
                                           (const __m256i *)(const void *)(wp + (size_t)v * 16))));
            }
            /* columns past cols spill into the next pixel's (written after) or the slack */
            for (int32_t v = 0; v < nv; v++)
                _mm256_storeu_si256((__m256i *)(void *)(dst + (size_t)(v0 + v) * 8), acc[v]);
        }
    }
}

__attribute__((target("avx2"))) static void
deconv_ks_avx2(int isa, const hqrt_conv_params_t *p, hqrt_dims_t in, const uint8_t *input,
               const int8_t *weights, const int64_t *bias, hqrt_dims_t out, uint8_t *output)
{
    const int32_t cin = in.c, cout = out.c, kh = p->kernel_h, kw = p->kernel_w;
    const int32_t pairs = (cin + 1) / 2, cols = kw * cout, vecs = (cols + 7) / 8;
    const size_t esize = p->out.out_bits == 16 ? 2 : 1, per_ky = (size_t)pairs * (size_t)vecs * 16;
    _Alignas(32) int16_t packed[KS_PACKED_MAX];
    _Alignas(32) int32_t row[KS_ROW_MAX];
    int16_t q[KS_PACKED_MAX / 16 * 2 + 2]; /* cin <= 2 * pairs <= KS_PACKED_MAX / 8 */
    const bool seeded = ks_seeded(p, bias, cout);
    /* packed[ky][pair][col][2]: col = kx * cout + o; zero past cols and past the last channel */
    for (int32_t ky = 0; ky < kh; ky++)
        for (int32_t pr = 0; pr < pairs; pr++)
            for (int32_t col = 0; col < vecs * 8; col++)
                for (int32_t e = 0; e < 2; e++)
                    packed[(size_t)ky * per_ky + ((size_t)pr * (size_t)vecs * 8 + (size_t)col) * 2 +
                           (size_t)e] =
                        (int16_t)ks_weight(weights, kw, cin, cout, cols, ky, col, 2 * pr + e);
    for (int32_t n = 0; n < out.n; n++)
        for (int32_t oh = 0; oh < out.h; oh++) {
            const int32_t fy = oh + p->pad_top;
            ks_row(p, in, input, packed + (size_t)(fy % kh) * per_ky, cols, n, fy / kh, q, row);
            uint8_t *out_row = output + pixel_at(out, n, oh, 0) * esize;
            ks_stage_row(isa, p, seeded, bias, cout, out.w, row, out_row);
        }
}
#endif

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
/* ---- kernel == stride with AVX-512 VNNI
 * ---------------------------------------------------------- The same matrix product as
 * deconv_ks_avx2 with vpdpbusd: the RAW codes of four input channels broadcast as one dword against
 * the weights packed as [kh][cin/4][vecs][16 columns][4] int8, 16 columns per zmm, 4 input pixels
 * per pass; a column's sum starts from -in_zp * sum_i w (so it is the centred sum, exact in int32
 * for depths <= 65536) plus, when the stage runs in the int32 lanes, the bias. That stage
 * (hqrt_i_rq_merged_x16, constants per 16 columns, a LUT by gather) finishes each pixel's columns
 * in registers when it is exact for the layer (32-bit path, 8-bit output, no negative-side
 * multipliers, multipliers >= 0, every sum plus bias inside int32 for any codes); otherwise the
 * sums of a row go to memory and through the stages deconv_ks_avx2 uses. Weights and constants are
 * packed per call (on the stack: small layers only). */
#define KSV_PACKED_MAX 16384 /* packed int8 weights */
#define KSV_FIN_MAX 16       /* blocks of 16 columns over all kernel rows */
#define KSV_PIXELS 4         /* input pixels per pass */
#define KSV_VECS 4           /* zmm columns per pass */
#define VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")))

static bool deconv_ks_vnni_fits(const hqrt_conv_params_t *p, hqrt_dims_t in, hqrt_dims_t out)
{
    const int64_t quads = ((int64_t)in.c + 3) / 4, vecs = ((int64_t)p->kernel_w * out.c + 15) / 16;
    return hqrt_i_cpu_has_vnni() && (int64_t)p->kernel_h * quads * vecs * 64 <= KSV_PACKED_MAX &&
           p->kernel_h * vecs <= KSV_FIN_MAX;
}

/* The stage's int32 constants per block of 16 columns (column kx * cout + o: channel o) and the
 * sums' starting values; returns whether the int32 stage is exact for the layer. */
static bool ksv_prepare(const hqrt_conv_params_t *p, hqrt_dims_t in, const int8_t *weights,
                        const int64_t *bias, int32_t cout, int8_t *packed, hqrt_i_fin_t *fin,
                        int32_t *init, int32_t *lut32)
{
    const hqrt_output_stage_t *st = &p->out;
    const int32_t cin = in.c, kh = p->kernel_h, kw = p->kernel_w, cols = kw * cout;
    const int32_t quads = (cin + 3) / 4, vecs = (cols + 15) / 16;
    bool exact = st->path == HQRT_PATH_GEMMLOWP && !st->multiplier_neg && st->out_bits == 8;
    for (int32_t ky = 0; ky < kh; ky++)
        for (int32_t col = 0; col < vecs * 16; col++) {
            const int32_t o = col % cout; /* the column's channel */
            int64_t sum = 0, pos = 0, neg = 0;
            for (int32_t i = 0; i < quads * 4; i++) {
                const int32_t v = ks_weight(weights, kw, cin, cout, cols, ky, col, i);
                packed[(((size_t)ky * (size_t)quads + (size_t)(i / 4)) * (size_t)vecs +
                        (size_t)(col / 16)) *
                           64 +
                       (size_t)(col % 16) * 4 + (size_t)(i % 4)] = (int8_t)v;
                sum += v;
                pos += v > 0 ? v : 0;
                neg += v < 0 ? v : 0;
            }
            hqrt_i_fin_t *f = &fin[ky * vecs + col / 16];
            const int64_t b = col < cols && bias ? bias[o] : 0, corr = -(int64_t)p->in_zp * sum;
            const int32_t i = st->count == 1 ? 0 : o;
            /* every sum raw + corr + b, raw of codes 0..255, inside int32 */
            if (col < cols && (b + corr + 255 * neg < INT32_MIN ||
                               b + corr + 255 * pos > INT32_MAX || st->multiplier[i] < 0))
                exact = false;
            hqrt_i_fin_constants(col < cols ? st->multiplier[i] : 0, col < cols ? st->shift[i] : 0,
                                 col % 16, f);
            init[(ky * vecs + col / 16) * 16 + col % 16] = (int32_t)corr;
            f->corr[col % 16] = (int32_t)(b + corr); /* read only when exact */
        }
    if (exact && st->lut)
        hqrt_i_lut_prepare(st, lut32);
    return exact;
}

/* The sums of np (<= KSV_PIXELS) consecutive input pixels x nv (<= KSV_VECS) blocks of 16
 * columns from block v0, started from start[v], into acc[j][v]. */
VNNI_TARGET static inline __attribute__((always_inline)) void
ksv_block(const uint8_t *src, int32_t cin, int32_t quads, const int8_t *w, int32_t vecs, int32_t v0,
          const int np, const int nv, const __m512i *start, __m512i acc[][KSV_VECS])
{
    for (int j = 0; j < np; j++)
        for (int v = 0; v < nv; v++)
            acc[j][v] = start[v];
    for (int32_t q = 0; q < quads; q++) {
        const int8_t *wq = w + ((size_t)q * (size_t)vecs + (size_t)v0) * 64;
        __m512i wv[KSV_VECS];
        for (int v = 0; v < nv; v++)
            wv[v] = _mm512_load_si512((const void *)(wq + (size_t)v * 64));
        for (int j = 0; j < np; j++) {
            int32_t four;
            const uint8_t *at = src + (size_t)j * (size_t)cin + (size_t)q * 4;
            if (q * 4 + 4 <= cin)
                memcpy(&four, at, 4);
            else { /* the last channels: zero past cin (their weights are 0 too) */
                uint8_t b[4] = {0, 0, 0, 0};
                memcpy(b, at, (size_t)(cin - q * 4));
                memcpy(&four, b, 4);
            }
            const __m512i x = _mm512_set1_epi32(four);
            for (int v = 0; v < nv; v++)
                acc[j][v] = _mm512_dpbusd_epi32(acc[j][v], x, wv[v]);
        }
    }
}

/* Fewer than 16 columns that divide 16 (a 2x2 deconvolution to one channel: 2 columns), with
 * the int32 stage and whole dwords of channels (cin % 4 == 0): one zmm holds 16 / cols input
 * pixels' columns (lane l: pixel l / cols, column l % cols), so its 16 sums are 16 consecutive
 * outputs of the row; each pixel's four channels come by one masked gather per dword (lanes of
 * pixels past the row are neither read nor stored). fin and packed as ksv_prepare made them for
 * one block of 16 columns per kernel row. */
VNNI_TARGET static void ksv_narrow(const hqrt_conv_params_t *p, hqrt_dims_t in,
                                   const uint8_t *input, const int8_t *packed,
                                   const hqrt_i_fin_t *fin, const hqrt_i_lut_regs_t *lut,
                                   const __m512i *cc, bool clamped, hqrt_dims_t out,
                                   uint8_t *output)
{
    const int32_t cin = in.c, cout = out.c, kh = p->kernel_h, cols = p->kernel_w * cout;
    const int32_t quads = cin / 4, per = 16 / cols;
    _Alignas(64) int8_t wn[KSV_PACKED_MAX];
    _Alignas(64) hqrt_i_fin_t fn[KSV_FIN_MAX];
    _Alignas(64) int32_t offs[16];
    /* the columns repeated over the lanes: weights, stage constants, starts */
    for (int32_t ky = 0; ky < kh; ky++) {
        for (int32_t q = 0; q < quads; q++)
            for (int l = 0; l < 16; l++)
                memcpy(wn + ((size_t)ky * (size_t)quads + (size_t)q) * 64 + (size_t)l * 4,
                       packed + ((size_t)ky * (size_t)quads + (size_t)q) * 64 +
                           (size_t)(l % cols) * 4,
                       4);
        for (int l = 0; l < 16; l++) {
            const int32_t o = (l % cols) % cout, i = p->out.count == 1 ? 0 : o;
            hqrt_i_fin_constants(p->out.multiplier[i], p->out.shift[i], l, &fn[ky]);
            fn[ky].corr[l] = fin[ky].corr[l % cols];
        }
    }
    for (int l = 0; l < 16; l++)
        offs[l] = l / cols * cin;
    const __m512i base = _mm512_load_si512((const void *)offs);
    for (int32_t n = 0; n < out.n; n++)
        for (int32_t oh = 0; oh < out.h; oh++) {
            const int32_t fy = oh + p->pad_top, ky = fy % kh;
            const uint8_t *src = input + pixel_at(in, n, fy / kh, 0);
            uint8_t *out_row = output + pixel_at(out, n, oh, 0);
            const int8_t *w = wn + (size_t)ky * (size_t)quads * 64;
            const hqrt_i_rq_t rq = hqrt_i_rq_load(&fn[ky]);
            const __m512i corr = _mm512_load_si512((const void *)fn[ky].corr);
            const __m512i left = _mm512_load_si512((const void *)fn[ky].left);
            const bool any_left = _mm512_test_epi32_mask(left, left) != 0;
            for (int32_t iw = 0; iw < in.w; iw += per) {
                const int32_t np = in.w - iw < per ? in.w - iw : per;
                const __mmask16 k = (__mmask16)(np == per ? 0xFFFF : (1u << (np * cols)) - 1);
                const uint8_t *s0 = src + (size_t)iw * (size_t)cin;
                __m512i acc = corr;
                for (int32_t q = 0; q < quads; q++) {
                    const __m512i x = _mm512_mask_i32gather_epi32(
                        _mm512_setzero_si512(), k, _mm512_add_epi32(base, _mm512_set1_epi32(4 * q)),
                        (const void *)s0, 1);
                    acc = _mm512_dpbusd_epi32(
                        acc, x, _mm512_load_si512((const void *)(w + (size_t)q * 64)));
                }
                if (any_left)
                    acc = hqrt_i_sat_shl_x16(acc, left);
                const __m128i codes =
                    hqrt_i_code_bytes(clamped ? hqrt_i_rq_merged_x16(acc, &rq, false)
                                              : hqrt_i_rq_merged_x16(acc, &rq, true),
                                      cc, lut);
                uint8_t *dst = out_row + (size_t)iw * (size_t)cols;
                if (k == 0xFFFF)
                    _mm_storeu_si128((__m128i *)(void *)dst, codes);
                else
                    _mm_mask_storeu_epi8(dst, k, codes);
            }
        }
}

VNNI_TARGET static void deconv_ks_vnni(int isa, const hqrt_conv_params_t *p, hqrt_dims_t in,
                                       const uint8_t *input, const int8_t *weights,
                                       const int64_t *bias, hqrt_dims_t out, uint8_t *output)
{
    const int32_t cin = in.c, cout = out.c, kh = p->kernel_h, kw = p->kernel_w;
    const int32_t cols = kw * cout, quads = (cin + 3) / 4, vecs = (cols + 15) / 16;
    const size_t esize = p->out.out_bits == 16 ? 2 : 1;
    _Alignas(64) int8_t packed[KSV_PACKED_MAX];
    _Alignas(64) hqrt_i_fin_t fin[KSV_FIN_MAX];
    _Alignas(64) int32_t init[KSV_FIN_MAX * 16];
    _Alignas(64) int32_t lut32[HQRT_I_LUT_BYTES / sizeof(int32_t)];
    _Alignas(64) int32_t row[KS_ROW_MAX];
    const bool exact = ksv_prepare(p, in, weights, bias, cout, packed, fin, init, lut32);
    const hqrt_i_lut_regs_t lut =
        hqrt_i_lut_load(exact && p->out.lut ? lut32 : NULL, p->out.lut && hqrt_i_lut_vbmi());
    int32_t zp, lo, hi;
    hqrt_i_code_consts(&p->out, &zp, &lo, &hi);
    const __m512i cc[3] = {_mm512_set1_epi32(zp), _mm512_set1_epi32(lo), _mm512_set1_epi32(hi)};
    const bool clamped = !lut.lut32 && p->out.act_min >= p->out.out_zp;
    const bool seeded = ks_seeded(p, bias, cout); /* the fallback's stage */
    if (exact && cols < 16 && 16 % cols == 0 && cin % 4 == 0) {
        ksv_narrow(p, in, input, packed, fin, &lut, cc, clamped, out, output);
        return;
    }
    for (int32_t n = 0; n < out.n; n++)
        for (int32_t oh = 0; oh < out.h; oh++) {
            const int32_t fy = oh + p->pad_top, ky = fy % kh;
            const uint8_t *src = input + pixel_at(in, n, fy / kh, 0);
            const int8_t *w = packed + (size_t)ky * (size_t)quads * (size_t)vecs * 64;
            uint8_t *out_row = output + pixel_at(out, n, oh, 0) * esize;
            for (int32_t iw = 0; iw < in.w; iw += KSV_PIXELS) {
                const int np = in.w - iw < KSV_PIXELS ? in.w - iw : KSV_PIXELS;
                for (int32_t v0 = 0; v0 < vecs; v0 += KSV_VECS) {
                    const int nv = vecs - v0 < KSV_VECS ? vecs - v0 : KSV_VECS;
                    __m512i start[KSV_VECS], acc[KSV_PIXELS][KSV_VECS];
                    const hqrt_i_fin_t *f = fin + ky * vecs + v0;
                    for (int v = 0; v < nv; v++)
                        start[v] = exact ? _mm512_load_si512((const void *)f[v].corr)
                                         : _mm512_load_si512(
                                               (const void *)(init + (ky * vecs + v0 + v) * 16));
                    const uint8_t *s0 = src + (size_t)iw * (size_t)cin;
                    if (np == KSV_PIXELS && nv == KSV_VECS)
                        ksv_block(s0, cin, quads, w, vecs, v0, KSV_PIXELS, KSV_VECS, start, acc);
                    else if (np == KSV_PIXELS && nv == 1)
                        ksv_block(s0, cin, quads, w, vecs, v0, KSV_PIXELS, 1, start, acc);
                    else if (np == KSV_PIXELS && nv == 2)
                        ksv_block(s0, cin, quads, w, vecs, v0, KSV_PIXELS, 2, start, acc);
                    else if (np == KSV_PIXELS)
                        ksv_block(s0, cin, quads, w, vecs, v0, KSV_PIXELS, 3, start, acc);
                    else
                        for (int j = 0; j < np; j++) /* the row's last pixels: one at a time */
                            ksv_block(s0 + (size_t)j * (size_t)cin, cin, quads, w, vecs, v0, 1, nv,
                                      start, acc + j);
                    for (int j = 0; j < np; j++)
                        for (int v = 0; v < nv; v++) {
                            const int32_t col = (v0 + v) * 16;
                            const int32_t left = cols - col < 16 ? cols - col : 16;
                            const __mmask16 k = (__mmask16)(left == 16 ? 0xFFFF : (1u << left) - 1);
                            const size_t at = (size_t)(iw + j) * (size_t)cols + (size_t)col;
                            if (!exact) {
                                _mm512_mask_storeu_epi32(row + at, k, acc[j][v]);
                                continue;
                            }
                            const hqrt_i_rq_t rq = hqrt_i_rq_load(f + v);
                            __m512i x = acc[j][v];
                            const __m512i lsh = _mm512_load_si512((const void *)f[v].left);
                            if (_mm512_test_epi32_mask(lsh, lsh))
                                x = hqrt_i_sat_shl_x16(x, lsh);
                            const __m128i codes =
                                hqrt_i_code_bytes(clamped ? hqrt_i_rq_merged_x16(x, &rq, false)
                                                          : hqrt_i_rq_merged_x16(x, &rq, true),
                                                  cc, &lut);
                            if (left == 16)
                                _mm_storeu_si128((__m128i *)(void *)(out_row + at), codes);
                            else
                                _mm_mask_storeu_epi8(out_row + at, k, codes);
                        }
                }
            }
            if (exact)
                continue;
            ks_stage_row(isa, p, seeded, bias, cout, out.w, row, out_row);
        }
}
#endif

/* The layer qualifies for the int32 sums (see the header comment) and its arguments are those
 * the reference accepted (hqrt_deconv2d_check). */
static bool deconv_qualifies(const hqrt_conv_params_t *p, hqrt_dims_t in, const int64_t *bias,
                             hqrt_dims_t out)
{
    if (p->in_bits != 8 || (p->weight_bits != 4 && p->weight_bits != 8) || p->groups != 1 ||
        (int64_t)p->kernel_h * p->kernel_w * in.c > DECONV_MAX_DEPTH)
        return false;
    if (bias)
        for (int32_t o = 0; o < out.c; o++)
            if (bias[o] > HQRT_ACC_LIMIT || bias[o] < -HQRT_ACC_LIMIT)
                return false;
    return true;
}

int hqrt_i_deconv_fast(int isa, const hqrt_conv_params_t *p, hqrt_dims_t in, const void *input,
                       const void *weights, const int64_t *bias, hqrt_dims_t out, void *output,
                       void *scratch)
{
#ifdef HQRT_HAVE_VECTOR_DECONV
    if (isa != HQRT_ISA_REFERENCE &&
        hqrt_deconv2d_check(p, in, input, weights, out, output) == HQRT_KERNEL_OK &&
        deconv_qualifies(p, in, bias, out)) {
        if (deconv_ks_fits(p, in, out) && isa == HQRT_ISA_AVX512 && deconv_ks_vnni_fits(p, in, out))
            deconv_ks_vnni(isa, p, in, input, weights, bias, out, output);
        else if (deconv_ks_fits(p, in, out))
            deconv_ks_avx2(isa, p, in, input, weights, bias, out, output);
        else if (isa == HQRT_ISA_AVX512)
            deconv_avx512(p, in, input, weights, bias, out, output);
        else
            deconv_avx2(p, in, input, weights, bias, out, output);
        return HQRT_KERNEL_OK;
    }
#else
    (void)isa;
#endif
    return hqrt_deconv2d(p, in, input, weights, bias, out, output, scratch);
}
