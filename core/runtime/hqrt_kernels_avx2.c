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
 * An int32 lane then stays exact for depth <= 2^16, which prepare enforces. The int32 sum plus
 * the int64 bias is the very accumulator of the reference kernels (hqrt_kernels_ref.c: exact
 * integer sums), and the output stage is the numerics' own hqrt_output_code /
 * hqrt_output_code_sum steps in vector lanes (hqrt_kernels_stage.c for a pixel's channels, or
 * the VNNI tile's own), so results are bit-exact by construction; tests check it on random shapes
 * (tests/unit/test_hqrt.c) and on whole models against the quantized emulator
 * (tests/e2e/deploy_bitexact*).
 *
 * Kernels never allocate: scratch comes from the caller (prepare states how much). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "hqrt_kernels_fast_internal.h"

enum { PIXELS = 4 };         /* output pixels per GEMM block */
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

/* Centred int16 patch of one output pixel: the taps in (ky, kx, i) order, 0 outside the input,
 * zero tail up to depth_padded. */
__attribute__((target("avx2"))) static void build_patch(const hqrt_conv_params_t *kp,
                                                        hqrt_dims_t in, const uint8_t *input,
                                                        int64_t oy, int64_t ox, int64_t padded,
                                                        int16_t *patch)
{
    const int32_t c = in.c;
    const __m256i zp = _mm256_set1_epi16((int16_t)kp->in_zp);
    int16_t *dst = patch;
    for (int32_t ky = 0; ky < kp->kernel_h; ky++) {
        int64_t y = oy * kp->stride_h - kp->pad_top + (int64_t)ky * kp->dilation_h;
        for (int32_t kx = 0; kx < kp->kernel_w; kx++, dst += c) {
            int64_t x = ox * kp->stride_w - kp->pad_left + (int64_t)kx * kp->dilation_w;
            if (y < 0 || y >= in.h || x < 0 || x >= in.w) {
                memset(dst, 0, (size_t)c * sizeof *dst);
                continue;
            }
            const uint8_t *src = input + ((size_t)y * (size_t)in.w + (size_t)x) * (size_t)c;
            int32_t i = 0;
            for (; i + 16 <= c; i += 16) {
                __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(src + i));
                __m256i v = _mm256_sub_epi16(_mm256_cvtepu8_epi16(b), zp);
                _mm256_storeu_si256((__m256i *)(void *)(dst + i), v);
            }
            for (; i < c; i++)
                dst[i] = (int16_t)(src[i] - kp->in_zp);
        }
    }
    int64_t used = dst - patch;
    if (padded > used)
        memset(dst, 0, (size_t)(padded - used) * sizeof *dst);
}

/* One block of np (<= PIXELS) pixels x 8 * nv (nv 1 or 2) output channels from channel o, both
 * constants where inlined: the int32 sums of each pixel's patch (pairs of int16 taps,
 * broadcast) with the block's weights, packed [pairs][8 * nv][2] (8 channels per ymm), plus the
 * folded bias b32; stored at sums[j * stride + o]. */
__attribute__((target("avx2"))) static inline __attribute__((always_inline)) void
gemm_block(int np, int nv, const int16_t *patches, int64_t kpad, int64_t pairs,
           const int16_t *weights, int64_t cout_pad, const int32_t *b32, int32_t o, int32_t *sums,
           int64_t stride)
{
    __m256i lo[PIXELS], hi[PIXELS];
    for (int j = 0; j < np; j++)
        lo[j] = hi[j] = _mm256_setzero_si256();
    /* the block's weights: contiguous, pair after pair (see the packing in prepare) */
    const int16_t *w = weights + (size_t)o * 2 * (size_t)pairs;
    for (int64_t k = 0; k < pairs; k++, w += nv * 16) {
        const __m256i w0 = _mm256_load_si256((const __m256i *)(const void *)w);
        const __m256i w1 =
            nv == 2 ? _mm256_load_si256((const __m256i *)(const void *)(w + 16)) : w0;
        for (int j = 0; j < np; j++) {
            int32_t pair;
            memcpy(&pair, patches + (size_t)j * (size_t)kpad + (size_t)k * 2, sizeof pair);
            const __m256i x = _mm256_set1_epi32(pair);
            lo[j] = _mm256_add_epi32(lo[j], _mm256_madd_epi16(x, w0));
            if (nv == 2)
                hi[j] = _mm256_add_epi32(hi[j], _mm256_madd_epi16(x, w1));
        }
    }
    const __m256i b0 = _mm256_load_si256((const __m256i *)(const void *)(b32 + o));
    const __m256i b1 =
        nv == 2 ? _mm256_load_si256((const __m256i *)(const void *)(b32 + o + 8)) : b0;
    for (int j = 0; j < np; j++) {
        int32_t *dst = sums + (size_t)j * (size_t)stride + (size_t)o;
        _mm256_store_si256((__m256i *)(void *)dst, _mm256_add_epi32(lo[j], b0));
        if (nv == 2)
            _mm256_store_si256((__m256i *)(void *)(dst + 8), _mm256_add_epi32(hi[j], b1));
    }
}

/* groups == 1 conv and dense: rows of the output, blocks of PIXELS pixels x 16 output channels
 * (the channels in the lanes), then each pixel's output stage. */
__attribute__((target("avx2"))) static void
gemm_rows(const hqrt_i_prepared_t *prep, const hqrt_conv_params_t *kp, hqrt_dims_t in,
          const uint8_t *input, const int64_t *bias, const hqrt_addend_t *addend, hqrt_dims_t out,
          uint8_t *output, int64_t row_begin, int64_t row_end, uint8_t *scratch)
{
    const int64_t kpad = prep->depth_padded, pairs = (prep->depth + 1) / 2;
    const int32_t cout = out.c;
    const int64_t cout_pad = ((int64_t)cout + 7) / 8 * 8;
    const int16_t *weights = prep->packed;
    /* scratch: the patches [PIXELS][kpad] int16, the sums [PIXELS][cout_pad] int32, the folded
     * bias [cout_pad] int32 */
    int16_t *patches = (int16_t *)(void *)scratch;
    int32_t *sums = (int32_t *)(void *)(scratch + (size_t)(PIXELS * kpad) * sizeof(int16_t));
    int32_t *b32 = sums + (size_t)PIXELS * (size_t)cout_pad;
    const size_t esize = kp->out.out_bits == 16 ? 2 : 1;
    const int isa = hqrt_i_vector_isa();
    const bool fold = hqrt_i_bias_folds(bias, cout, prep->depth);
    const int64_t *stage_bias = fold ? NULL : bias;
    for (int64_t o = 0; o < cout_pad; o++)
        b32[o] = fold && o < cout ? (int32_t)bias[o] : 0;
    int64_t total = (row_end - row_begin) * out.w;
    for (int64_t first = 0; first < total; first += PIXELS) {
        int np = total - first < PIXELS ? (int)(total - first) : PIXELS;
        size_t pix[PIXELS];
        for (int j = 0; j < np; j++) {
            int64_t k = first + j;
            int64_t oy = row_begin + k / out.w, ox = k % out.w;
            pix[j] = (size_t)(oy * out.w + ox);
            build_patch(kp, in, input, oy, ox, kpad, patches + j * kpad);
        }
        for (int32_t o = 0; o < cout; o += 16) {
            const bool two = o + 8 < cout; /* else the last 8 channels */
            if (np == PIXELS && two)
                gemm_block(PIXELS, 2, patches, kpad, pairs, weights, cout_pad, b32, o, sums,
                           cout_pad);
            else if (np == PIXELS)
                gemm_block(PIXELS, 1, patches, kpad, pairs, weights, cout_pad, b32, o, sums,
                           cout_pad);
            else
                for (int j = 0; j < np; j++) /* the last pixels: one at a time */
                    gemm_block(1, two ? 2 : 1, patches + (size_t)j * (size_t)kpad, kpad, pairs,
                               weights, cout_pad, b32, o, sums + (size_t)j * (size_t)cout_pad,
                               cout_pad);
        }
        /* the output stage of each pixel's channels in vector lanes (the int64 sum of the
         * reference is bias + the exact int32 sum, formed there) */
        if (!addend) { /* the block's pixels are consecutive output pixels */
            hqrt_i_stage_block(isa, &kp->out, sums, (size_t)cout_pad, stage_bias, cout, np,
                               output + pix[0] * (size_t)cout * esize);
            continue;
        }
        for (int j = 0; j < np; j++) {
            const size_t base = pix[j] * (size_t)cout;
            hqrt_i_stage_row_addend(isa, &kp->out, sums + (size_t)j * (size_t)cout_pad, stage_bias,
                                    0, cout, addend, base, output + base * esize);
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
        int64_t kpad = (depth + 15) / 16 * 16;
        const int64_t pairs = (depth + 1) / 2, cout_pad = ((int64_t)cout + 7) / 8 * 8;
        size_t bytes = (size_t)(pairs * cout_pad * 2) * sizeof(int16_t);
        int16_t *packed = aligned_alloc(32, (bytes + 31) / 32 * 32);
        if (!packed)
            return hqrt_i_fail(err, HQRT_ERR_NOMEM, "%s: out of memory", name);
        /* blocks of 16 channels (the last of 8 when cout_pad says so), each [pairs][16 or
         * 8][2] and contiguous, block b from channel 16 * b: tap k = 2 * pair + e in patch
         * order (ky, kx, i), exactly the [kh, kw, cin, cout] row order; zero past the depth and
         * past cout */
        for (int64_t k2 = 0; k2 < pairs; k2++)
            for (int64_t o = 0; o < cout_pad; o++)
                for (int64_t e = 0; e < 2; e++) {
                    const int64_t k = 2 * k2 + e, o0 = o / 16 * 16;
                    const int64_t width = cout_pad - o0 < 16 ? cout_pad - o0 : 16;
                    packed[(size_t)(o0 * 2 * pairs + (k2 * width + (o - o0)) * 2 + e)] =
                        k < depth && o < cout
                            ? (int16_t)hqrt_i_weight_at(w, kp->weight_bits, (size_t)(k * cout + o))
                            : 0;
                }
        *prep = (hqrt_i_prepared_t){.fast = true,
                                    .kind = HQRT_KIND_GEMM,
                                    .dense = dense,
                                    .rows = dense ? 1 : out.h,
                                    .packed = packed,
                                    .depth = depth,
                                    .depth_padded = kpad,
                                    .scratch =
                                        (size_t)(PIXELS * kpad) * sizeof(int16_t) +
                                        (size_t)(PIXELS + 1) * (size_t)cout_pad * sizeof(int32_t)};
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
    if (prep->kind == HQRT_KIND_GEMM || prep->kind == HQRT_KIND_VNNI) {
        hqrt_conv_params_t k = *kp;
        hqrt_dims_t i = in, o = out;
        if (prep->dense) { /* one pixel of h*w*c channels through a 1x1 window */
            k.kernel_h = k.kernel_w = k.stride_h = k.stride_w = k.dilation_h = k.dilation_w = 1;
            k.pad_top = k.pad_left = k.pad_bottom = k.pad_right = 0;
            i = (hqrt_dims_t){1, 1, 1, in.h * in.w * in.c};
            o = (hqrt_dims_t){1, 1, 1, out.c};
        }
        if (prep->kind == HQRT_KIND_GEMM)
            gemm_rows(prep, &k, i, input, bias, addend, o, output, row_begin, row_end, scratch);
        else
            hqrt_i_vnni_rows(prep, &k, i, input, bias, addend, o, output, row_begin, row_end,
                             scratch);
        return 0;
    }
    if (prep->kind == HQRT_KIND_AMX) {
        hqrt_i_amx_rows(prep, kp, in, input, addend, out, output, row_begin, row_end, scratch);
        return 0;
    }
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
