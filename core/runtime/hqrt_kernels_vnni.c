/* hqrt_kernels_vnni.c — the runtime's AVX-512 VNNI (vpdpbusd) kernels: conv with groups == 1
 * and dense on 8-bit activations with 4- or 8-bit weights, and their weight packing.
 * hqrt_kernels_avx2.c prepares them instead of its gemm_rows when the CPU has AVX512F/BW/DQ/VL
 * and AVX512-VNNI (HQRT_NO_VNNI=1 forces the AVX2 path), and runs them.
 * vpdpbusd sums four u8 x s8 products into an int32 lane WITHOUT saturation, so the raw codes are
 * used as they are: raw = sum q*w, |raw| <= depth * 255 * 128 < 2^31 for depth <= 65536, and the
 * exact centred sum is raw - in_zp * sum(w) (padded taps hold in_zp, so they contribute 0).
 * Weights are packed per group of VNNI_BLOCKS blocks of 16 channels as [depth/4][block][16
 * channels][4 taps] int8 (one sequential stream per tile), followed by the int64 corrections
 * (bias - in_zp * column sum) and the per-block output-stage constants (hqrt_i_fin_t). A tile is
 * VNNI_PIXELS output pixels x up to VNNI_BLOCKS x 16 channels, 24 zmm accumulators. The output
 * stage is vectorized for the common case (32-bit path, no negative-side multipliers, 8-bit
 * output, a lut looked up by vpermi2b in its byte copy, or by one gather of its int32 copy on
 * CPUs without AVX512-VBMI) with the integer steps of
 * hqrt_numerics.h merged as shown at hqrt_i_fin_t, and falls back to int64 lanes or
 * hqrt_i_finish_value otherwise.
 *
 * Kernels never allocate: scratch comes from the caller (prepare states how much). */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hqrt_kernels_fast_internal.h"

#ifdef HQRT_HAVE_AVX2_BUILD

/* VNNI_CHUNK tiles share one pass over the weights (see hqrt_i_vnni_rows): 12 makes a 7x7 output
 * (49 pixels, 9 tiles) one chunk, so that a deep 3x3 conv's 2.3 MiB of weights (more than L2) is
 * read from L3 once per sample instead of twice (resnet18's last stage: about 10% faster). */
enum { VNNI_PIXELS = 6, VNNI_BLOCKS = HQRT_VNNI_BLOCKS, VNNI_CHUNK = 12 };
/* A call over several samples' pixels (hqrt_i_conv_fast_samples) takes chunks of up to
 * VNNI_CHUNK_SAMPLES tiles: a group of 8 samples of a 7x7 output (392 pixels) reads the weights
 * twice instead of 8 times, for VNNI_PIXELS * VNNI_CHUNK_SAMPLES * depth bytes of patches. */
enum { VNNI_CHUNK_SAMPLES = 36 };
/* vnni_finish_block takes up to this many pixels: a VNNI tile's 6, or an AMX tile's 16 */
enum { FINISH_PIXELS = 16 };
#define VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")))

bool hqrt_i_cpu_has_vnni(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                         __builtin_cpu_supports("avx512vnni")
                     ? 1
                     : 0;
    }
    return cached == 1;
}

/* The deconvolution asks at run time, from several threads: they store the same value, and the
 * atomic makes that race a defined one. */
bool hqrt_i_lut_vbmi(void)
{
    static _Atomic int cached = -1;
    int has = atomic_load_explicit(&cached, memory_order_relaxed);
    if (has < 0) {
        __builtin_cpu_init();
        has = hqrt_i_cpu_has_vnni() && __builtin_cpu_supports("avx512vbmi") ? 1 : 0;
        atomic_store_explicit(&cached, has, memory_order_relaxed);
    }
    return has == 1 && !getenv("HQRT_NO_VNNI") && !getenv("HQRT_NO_VBMI");
}

/* hqrt_requantize32 on 8 int64 lanes holding int32 values: shift left with int32 saturation,
 * SRDHM (nudge, truncating division by 2^31, the INT32_MIN^2 case saturating), then
 * RoundingDivideByPOT. */
VNNI_TARGET static inline __attribute__((always_inline)) __m512i rq32_x8(__m512i x, __m512i m,
                                                                         __m512i shift)
{
    const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi64(1);
    __m512i left = _mm512_max_epi64(shift, zero);
    __m512i right = _mm512_max_epi64(_mm512_sub_epi64(zero, shift), zero);
    __m512i xs = _mm512_sllv_epi64(x, left);
    xs = _mm512_min_epi64(_mm512_max_epi64(xs, _mm512_set1_epi64(INT32_MIN)),
                          _mm512_set1_epi64(INT32_MAX));
    __m512i ab = _mm512_mul_epi32(xs, m);
    __m512i nudge = _mm512_mask_blend_epi64(_mm512_cmplt_epi64_mask(ab, zero),
                                            _mm512_set1_epi64((int64_t)1 << 30),
                                            _mm512_set1_epi64(1 - ((int64_t)1 << 30)));
    __m512i v = _mm512_add_epi64(ab, nudge);
    v = _mm512_mask_add_epi64(v, _mm512_cmplt_epi64_mask(v, zero), v,
                              _mm512_set1_epi64(((int64_t)1 << 31) - 1));
    __m512i q = _mm512_min_epi64(_mm512_srai_epi64(v, 31), _mm512_set1_epi64(INT32_MAX));
    __m512i mask = _mm512_sub_epi64(_mm512_sllv_epi64(one, right), one);
    __m512i rem = _mm512_and_si512(q, mask);
    __m512i thr = _mm512_srli_epi64(mask, 1);
    thr = _mm512_mask_add_epi64(thr, _mm512_cmplt_epi64_mask(q, zero), thr, one);
    __m512i r = _mm512_srav_epi64(q, right);
    return _mm512_mask_add_epi64(r, _mm512_cmpgt_epi64_mask(rem, thr), r, one);
}

VNNI_TARGET static inline __attribute__((always_inline)) __m512i
stage_param_x8(const int32_t *a, int32_t count, int32_t o)
{
    if (count == 1)
        return _mm512_set1_epi64(a[0]);
    return _mm512_cvtepi32_epi64(_mm256_loadu_si256((const __m256i *)(const void *)(a + o)));
}

/* RoundingDivideByPOT(y + t2, 8) = floor((sum + 128 - [sum < 0]) / 256), both terms within
 * +-SUM_LIMIT so that nothing leaves int32. */
VNNI_TARGET static inline __attribute__((always_inline)) __m512i residual_sum(__m512i y, __m512i t2)
{
    __m512i sum = _mm512_add_epi32(y, t2);
    sum =
        _mm512_add_epi32(_mm512_add_epi32(sum, _mm512_set1_epi32(128)), _mm512_srai_epi32(sum, 31));
    return _mm512_srai_epi32(sum, HQRT_SUM_FRAC_BITS);
}

#define SUM_LIMIT ((1 << 30) - 128)

/* Finishes channels o0 .. o0+15 of the np pixels of a tile from the raw vpdpbusd sums raw[j].
 * fin (prepared, see hqrt_i_fin_t) when the block's accumulators always fit int32 and its stage
 * is the plain 32-bit path into 8-bit codes; afin likewise for a fused addend (NULL: none, or
 * not on that path). Pixels the int32 lanes cannot finish exactly (an addend sum that could
 * leave int32) go through int64 lanes (rq32_x8), or one value at a time through
 * hqrt_i_finish_value. corr = bias - in_zp * sum(w) per channel (int64, precomputed at prepare). */
VNNI_TARGET static inline __attribute__((always_inline)) void
vnni_finish_block(const hqrt_conv_params_t *kp, const hqrt_addend_t *addend, const int64_t *corr,
                  const hqrt_i_fin_t *fin, const hqrt_i_fin_t *afin, bool sum_check,
                  const __m512i *raw, int np, const size_t *pix, int32_t o0, int32_t cout,
                  const hqrt_i_lut_regs_t *lut, uint8_t *output)
{
    const hqrt_output_stage_t *st = &kp->out;
    int32_t n = cout - o0 < 16 ? cout - o0 : 16;
    uint32_t slow = (1u << np) - 1;
    if (fin && (!addend || afin)) {
        const __mmask16 lanes = (__mmask16)(n == 16 ? 0xFFFF : (1u << n) - 1);
        const hqrt_i_rq_t k = hqrt_i_rq_load(fin);
        const hqrt_i_rq_t ak = afin ? hqrt_i_rq_load(afin) : k;
        const __m512i left = _mm512_load_si512((const void *)fin->left);
        const bool any_left = _mm512_test_epi32_mask(left, left) != 0;
        const bool floor_clamped = !addend && !lut->lut32 && st->act_min >= st->out_zp;
        int32_t zp, lo, hi;
        hqrt_i_code_consts(st, &zp, &lo, &hi);
        const __m512i c[3] = {_mm512_set1_epi32(zp), _mm512_set1_epi32(lo), _mm512_set1_epi32(hi)};
        for (int j = 0; j < np; j++) {
            size_t oi = pix[j] + (size_t)o0;
            __m512i x = raw[j]; /* the tile started from fin->corr */
            if (any_left)       /* x * 2^left saturated to int32, as hqrt_requantize32 */
                x = hqrt_i_sat_shl_x16(x, left);
            __m512i y = floor_clamped ? hqrt_i_rq_merged_x16(x, &k, false)
                                      : hqrt_i_rq_merged_x16(x, &k, true);
            if (addend) {
                __m512i a = addend->bits == 8 ? _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(
                                                    lanes, (const uint8_t *)addend->data + oi))
                                              : _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(
                                                    lanes, (const uint16_t *)addend->data + oi));
                a = _mm512_sub_epi32(a, _mm512_set1_epi32(addend->zp));
                if (afin->left[0] > 0)
                    a = hqrt_i_sat_shl_x16(a, _mm512_set1_epi32(afin->left[0]));
                __m512i t2 = hqrt_i_rq_merged_x16(a, &ak, true);
                /* both terms within +-SUM_LIMIT: the sum and its rounding stay in int32 (checked
                 * only when the prepared bounds do not prove it) */
                const __m512i limit = _mm512_set1_epi32(SUM_LIMIT);
                if (sum_check && (_mm512_mask_cmpgt_epu32_mask(lanes, _mm512_abs_epi32(y), limit) |
                                  _mm512_mask_cmpgt_epu32_mask(lanes, _mm512_abs_epi32(t2), limit)))
                    continue; /* int64 lanes below */
                y = residual_sum(y, t2);
            }
            __m128i bytes = hqrt_i_code_bytes(y, c, lut);
            if (n == 16) /* vpmovdb straight to memory (what a masked store becomes) is slow */
                _mm_storeu_si128((__m128i *)(void *)(output + oi), bytes);
            else
                _mm_mask_storeu_epi8(output + oi, lanes, bytes);
            slow &= ~(1u << j);
        }
        if (!slow)
            return;
    }
    __m512i raw_only[FINISH_PIXELS]; /* the fallbacks below add corr in int64 */
    for (int j = 0; j < np; j++)
        raw_only[j] =
            fin ? _mm512_sub_epi32(raw[j], _mm512_load_si512((const void *)fin->corr)) : raw[j];
    raw = raw_only;
    bool vec = n == 16 && st->path == HQRT_PATH_GEMMLOWP && !st->multiplier_neg && !st->lut &&
               st->out_bits == 8 && (!addend || addend->bits == 8 || addend->bits == 16);
    if (!vec) {
        const int isa = addend ? HQRT_ISA_REFERENCE : hqrt_i_vector_isa();
        for (int j = 0; j < np; j++) {
            if (!(slow & (1u << j)))
                continue;
            int32_t sums[16];
            _mm512_storeu_si512((void *)sums, raw[j]);
            size_t base = pix[j] + (size_t)o0;
            if (isa != HQRT_ISA_REFERENCE) {
                hqrt_i_stage_row(isa, st, sums, corr, o0, n,
                                 output + base * (st->out_bits == 16 ? 2u : 1u));
                continue;
            }
            for (int32_t l = 0; l < n; l++)
                hqrt_store(output, st->out_bits, base + (size_t)l,
                           hqrt_i_finish_value(kp, addend, corr[o0 + l] + (int64_t)sums[l], o0 + l,
                                               base + (size_t)l));
        }
        return;
    }
    const __m512i lo32 = _mm512_set1_epi64(INT32_MIN), hi32 = _mm512_set1_epi64(INT32_MAX);
    const __m512i zp_out = _mm512_set1_epi64(st->out_zp), amin = _mm512_set1_epi64(st->act_min),
                  amax = _mm512_set1_epi64(st->act_max), one = _mm512_set1_epi64(1),
                  zero = _mm512_setzero_si512();
    const __m512i fmask = _mm512_set1_epi64(((int64_t)1 << HQRT_SUM_FRAC_BITS) - 1),
                  fhalf = _mm512_srli_epi64(fmask, 1);
    __m512i am = zero, ash = zero, azp = zero;
    if (addend) {
        am = _mm512_set1_epi64(addend->multiplier);
        ash = _mm512_set1_epi64(addend->shift);
        azp = _mm512_set1_epi64(addend->zp);
    }
    for (int half = 0; half < 2; half++) {
        int32_t o = o0 + 8 * half;
        __m512i c = _mm512_loadu_si512((const void *)(corr + o));
        __m512i m = stage_param_x8(st->multiplier, st->count, o);
        __m512i sh = stage_param_x8(st->shift, st->count, o);
        for (int j = 0; j < np; j++) {
            if (!(slow & (1u << j)))
                continue;
            size_t oi = pix[j] + (size_t)o;
            __m512i r = _mm512_cvtepi32_epi64(half ? _mm512_extracti64x4_epi64(raw[j], 1)
                                                   : _mm512_castsi512_si256(raw[j]));
            __m512i acc = _mm512_min_epi64(_mm512_max_epi64(_mm512_add_epi64(r, c), lo32), hi32);
            __m512i y = rq32_x8(acc, m, sh);
            if (addend) {
                __m512i a;
                if (addend->bits == 8)
                    a = _mm512_cvtepu8_epi64(_mm_loadl_epi64(
                        (const __m128i *)(const void *)((const uint8_t *)addend->data + oi)));
                else
                    a = _mm512_cvtepu16_epi64(_mm_loadu_si128(
                        (const __m128i *)(const void *)((const uint16_t *)addend->data + oi)));
                __m512i z = _mm512_add_epi64(y, rq32_x8(_mm512_sub_epi64(a, azp), am, ash));
                /* RoundingDivideByPOT by HQRT_SUM_FRAC_BITS on int64 */
                __m512i rem = _mm512_and_si512(z, fmask);
                __m512i thr =
                    _mm512_mask_add_epi64(fhalf, _mm512_cmplt_epi64_mask(z, zero), fhalf, one);
                y = _mm512_srai_epi64(z, HQRT_SUM_FRAC_BITS);
                y = _mm512_mask_add_epi64(y, _mm512_cmpgt_epi64_mask(rem, thr), y, one);
            }
            __m512i code =
                _mm512_min_epi64(_mm512_max_epi64(_mm512_add_epi64(y, zp_out), amin), amax);
            _mm_storel_epi64((__m128i *)(void *)(output + oi), _mm512_cvtepi64_epi8(code));
        }
    }
}

/* The fused addend's requantization and bounds for the finish of an op prepared by
 * hqrt_i_vnni_prepare (see hqrt_i_vnni_stage_t). */
void hqrt_i_vnni_stage_init(const hqrt_i_prepared_t *prep, const hqrt_conv_params_t *kp,
                            const hqrt_addend_t *addend, int32_t cout, hqrt_i_vnni_stage_t *s)
{
    const int32_t blocks = (cout + 15) / 16;
    s->fin = prep->finish;
    s->corr = (const int64_t *)(const void *)((const int8_t *)prep->packed +
                                              (size_t)blocks * (size_t)prep->depth_padded * 16);
    /* a lut stage's tables (HQRT_I_LUT_BYTES) follow the blocks' finish constants */
    s->lut32 = s->fin && kp->out.lut ? (const int32_t *)(const void *)(s->fin + blocks) : NULL;
    s->lut_vbmi = prep->lut_vbmi;
    s->afin = NULL;
    s->t2_bound = INT32_MAX;
    s->epi_addend = false;
    if (s->fin && addend && addend->multiplier >= 0 && addend->shift >= -31 &&
        addend->shift <= 30) {
        for (int l = 0; l < 16; l++)
            hqrt_i_fin_constants(addend->multiplier, addend->shift, l, &s->addend_fin);
        s->afin = &s->addend_fin;
        int64_t top = addend->bits == 16 ? 65535 : 255;
        int64_t a_max = addend->zp > top - addend->zp ? addend->zp : top - addend->zp;
        s->t2_bound = hqrt_i_requantized_bound(a_max, addend->multiplier, addend->shift);
        /* the fused epilogue: 8-bit, a pre-shift that never saturates, a sum inside int32 */
        int32_t a_left = addend->shift > 0 ? addend->shift : 0;
        s->epi_addend =
            addend->bits == 8 && a_max << a_left <= INT32_MAX && s->t2_bound <= SUM_LIMIT;
    }
}

VNNI_TARGET void hqrt_i_vnni_finish_sums(const hqrt_i_vnni_stage_t *s, const hqrt_conv_params_t *kp,
                                         const hqrt_addend_t *addend, const int32_t *sums, int np,
                                         const size_t *pix, int32_t block, int32_t cout,
                                         uint8_t *output)
{
    const hqrt_i_fin_t *bfin = s->fin && s->fin[block].usable ? s->fin + block : NULL;
    const bool sum_check = !bfin || bfin->y_bound > SUM_LIMIT || s->t2_bound > SUM_LIMIT;
    const hqrt_i_lut_regs_t lut = hqrt_i_lut_load(s->lut32, s->lut_vbmi);
    for (int j0 = 0; j0 < np; j0 += FINISH_PIXELS) {
        int n = np - j0 < FINISH_PIXELS ? np - j0 : FINISH_PIXELS;
        __m512i raw[FINISH_PIXELS]; /* with bfin the sums start from its corr, as a tile's do */
        for (int j = 0; j < n; j++) {
            raw[j] = _mm512_loadu_si512((const void *)(sums + (size_t)(j0 + j) * 16));
            if (bfin)
                raw[j] = _mm512_add_epi32(raw[j], _mm512_load_si512((const void *)bfin->corr));
        }
        vnni_finish_block(kp, addend, s->corr, bfin, s->afin, sum_check, raw, n, pix + j0,
                          block * 16, cout, &lut, output);
    }
}

/* The output stage of a full tile (6 pixels), specialized, when every block of the group has
 * int32 constants (fin) without a pre-shift (a last block of fewer than 16 channels, the 24 or
 * 40 of a narrow projection, stores and reads its addend under the mask `last`):
 * EPI_CLAMPED: no addend and every y <= 0 clamps to one code (act_min >= out_zp), so the
 *   negative-side correction is moot;
 * EPI_EXACT: no addend, the correction applied;
 * EPI_ADDEND: an 8-bit addend whose pre-shifted term cannot saturate and whose sum with y is
 *   proved to stay in int32 (hqrt_i_vnni_rows checks both). */
enum { EPI_CLAMPED = 1, EPI_EXACT = 2, EPI_ADDEND = 3 };

typedef struct vnni_epilogue {
    const hqrt_i_fin_t *fin[VNNI_BLOCKS];
    uint8_t *out[VNNI_PIXELS];       /* where the group's first block of pixel j goes */
    const uint8_t *add[VNNI_PIXELS]; /* EPI_ADDEND: the addend at the same place */
    const hqrt_i_fin_t *afin;        /* EPI_ADDEND: the addend's requantization */
    hqrt_i_lut_regs_t lut;           /* the stage's lut (lut.lut32 NULL: none) */
    int32_t a_zp, a_left;
    int32_t zp, lo, hi; /* code_bytes' offset and clamp bounds (code_consts) */
    __mmask16 last;     /* the channels of block nb - 1 that exist (0xFFFF: all 16) */
    int mode;
} vnni_epilogue_t;

VNNI_TARGET static inline __attribute__((always_inline)) void
epilogue_store(__m512i x, const hqrt_i_rq_t *k, const vnni_epilogue_t *ep, const hqrt_i_rq_t *ak,
               const __m512i *a_shift, const __m512i *c, const hqrt_i_lut_regs_t *lut, int b,
               int j, __mmask16 lanes,
               const int mode)
{
    /* c: zp, act_min - zp, act_max - zp; a_shift: the addend's zero point and left shift */
    __m512i y = hqrt_i_rq_merged_x16(x, k, mode != EPI_CLAMPED);
    if (mode == EPI_ADDEND) {
        const uint8_t *at = ep->add[j] + 16 * b;
        __m512i a = _mm512_cvtepu8_epi32(
            lanes == 0xFFFF ? _mm_loadu_si128((const __m128i *)(const void *)at)
                            : _mm_maskz_loadu_epi8(lanes, at));
        a = _mm512_sllv_epi32(_mm512_sub_epi32(a, a_shift[0]), a_shift[1]);
        y = residual_sum(y, hqrt_i_rq_merged_x16(a, ak, true));
    }
    const __m128i codes = hqrt_i_code_bytes(y, c, lut);
    if (lanes == 0xFFFF)
        _mm_storeu_si128((__m128i *)(void *)(ep->out[j] + 16 * b), codes);
    else
        _mm_mask_storeu_epi8(ep->out[j] + 16 * b, lanes, codes);
}

/* A full tile's nb blocks through epilogue_store, one loop per mode (kept out of vnni_tile: its
 * 24 inlined variants times the modes made the file take minutes to compile with sanitizers). */
VNNI_TARGET static __attribute__((noinline)) void
vnni_epilogue_run(const vnni_epilogue_t *ep, __m512i acc[][VNNI_BLOCKS], int nb)
{
    const __m512i c[3] = {_mm512_set1_epi32(ep->zp), _mm512_set1_epi32(ep->lo),
                          _mm512_set1_epi32(ep->hi)};
    const bool addend = ep->mode == EPI_ADDEND;
    const __m512i a_shift[2] = {_mm512_set1_epi32(addend ? ep->a_zp : 0),
                                _mm512_set1_epi32(addend ? ep->a_left : 0)};
    /* a copy of the lut's registers, which the stores to output cannot alias: they stay in
     * registers instead of being reloaded from ep for every 16 codes */
    const hqrt_i_lut_regs_t lut = ep->lut;
    for (int b = 0; b < nb; b++) {
        const hqrt_i_rq_t k = hqrt_i_rq_load(ep->fin[b]);
        const hqrt_i_rq_t ak = addend ? hqrt_i_rq_load(ep->afin) : k;
        const __mmask16 lanes = b == nb - 1 ? ep->last : (__mmask16)0xFFFF;
        if (ep->mode == EPI_CLAMPED)
            for (int j = 0; j < VNNI_PIXELS; j++)
                epilogue_store(acc[j][b], &k, ep, &ak, a_shift, c, &lut, b, j, lanes, EPI_CLAMPED);
        else if (ep->mode == EPI_EXACT)
            for (int j = 0; j < VNNI_PIXELS; j++)
                epilogue_store(acc[j][b], &k, ep, &ak, a_shift, c, &lut, b, j, lanes, EPI_EXACT);
        else
            for (int j = 0; j < VNNI_PIXELS; j++)
                epilogue_store(acc[j][b], &k, ep, &ak, a_shift, c, &lut, b, j, lanes, EPI_ADDEND);
    }
}

/* One tile: mp <= VNNI_PIXELS pixels (rows[j], each k4n*4 bytes, read as nseg segments
 * seg_stride apart) x nb blocks of 16 channels (both compile-time constants after inlining).
 * Accumulators start from init (the blocks' int32 corrections, or 0). The 24 accumulators are
 * named variables (an array made gcc move them around every step). */
VNNI_TARGET static inline __attribute__((always_inline)) void
vnni_tile(const uint8_t *const *rows, const int8_t *w, int64_t k4n, int64_t nseg, size_t seg_stride,
          const int nb, const int mp, const __m512i *init, __m512i acc[][VNNI_BLOCKS])
{
    const __m512i z = _mm512_setzero_si512();
    const __m512i i0 = init[0], i1 = init[1], i2 = init[2], i3 = init[3];
    __m512i a00 = i0, a01 = i1, a02 = i2, a03 = i3;
    __m512i a10 = i0, a11 = i1, a12 = i2, a13 = i3;
    __m512i a20 = i0, a21 = i1, a22 = i2, a23 = i3;
    __m512i a30 = i0, a31 = i1, a32 = i2, a33 = i3;
    __m512i a40 = i0, a41 = i1, a42 = i2, a43 = i3;
    __m512i a50 = i0, a51 = i1, a52 = i2, a53 = i3;
    const size_t step = (size_t)nb * 64; /* the group's weights: [k/4][nb blocks][64 bytes] */
    const int64_t seg_k4 = k4n / nseg;
    for (int64_t sg = 0; sg < nseg; sg++) {
        const size_t at = (size_t)sg * seg_stride;
        const int8_t *w0 = w + (size_t)sg * (size_t)seg_k4 * step, *w1 = w0 + 64, *w2 = w0 + 128,
                     *w3 = w0 + 192;
        const uint8_t *r0 = rows[0] + at, *r1 = rows[1] + at, *r2 = rows[2] + at,
                      *r3 = rows[3] + at, *r4 = rows[4] + at, *r5 = rows[5] + at;
        for (int64_t k = 0; k < seg_k4; k++) {
            const size_t off = (size_t)k * step;
            __m512i v0 = _mm512_load_si512((const void *)(w0 + off)), v1 = z, v2 = z, v3 = z;
            if (nb > 1)
                v1 = _mm512_load_si512((const void *)(w1 + off));
            if (nb > 2)
                v2 = _mm512_load_si512((const void *)(w2 + off));
            if (nb > 3)
                v3 = _mm512_load_si512((const void *)(w3 + off));
#define ROW(j, c0, c1, c2, c3)                                                                     \
    do {                                                                                           \
        if (mp <= j)                                                                               \
            break;                                                                                 \
        int32_t q4;                                                                                \
        memcpy(&q4, r##j + 4 * k, 4);                                                              \
        __m512i x = _mm512_set1_epi32(q4);                                                         \
        c0 = _mm512_dpbusd_epi32(c0, x, v0);                                                       \
        if (nb > 1)                                                                                \
            c1 = _mm512_dpbusd_epi32(c1, x, v1);                                                   \
        if (nb > 2)                                                                                \
            c2 = _mm512_dpbusd_epi32(c2, x, v2);                                                   \
        if (nb > 3)                                                                                \
            c3 = _mm512_dpbusd_epi32(c3, x, v3);                                                   \
    } while (0)
            ROW(0, a00, a01, a02, a03);
            ROW(1, a10, a11, a12, a13);
            ROW(2, a20, a21, a22, a23);
            ROW(3, a30, a31, a32, a33);
            ROW(4, a40, a41, a42, a43);
            ROW(5, a50, a51, a52, a53);
#undef ROW
        }
    }
    acc[0][0] = a00, acc[0][1] = a01, acc[0][2] = a02, acc[0][3] = a03;
    acc[1][0] = a10, acc[1][1] = a11, acc[1][2] = a12, acc[1][3] = a13;
    acc[2][0] = a20, acc[2][1] = a21, acc[2][2] = a22, acc[2][3] = a23;
    acc[3][0] = a30, acc[3][1] = a31, acc[3][2] = a32, acc[3][3] = a33;
    acc[4][0] = a40, acc[4][1] = a41, acc[4][2] = a42, acc[4][3] = a43;
    acc[5][0] = a50, acc[5][1] = a51, acc[5][2] = a52, acc[5][3] = a53;
}

/* n bytes from src (or the byte `fill` when src is NULL) to dst: 64 at a time, a masked tail. */
VNNI_TARGET static inline __attribute__((always_inline)) void
put_bytes(uint8_t *dst, const uint8_t *src, int fill, size_t n)
{
    const __m512i v = _mm512_set1_epi8((char)fill);
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        _mm512_storeu_si512((void *)(dst + i),
                            src ? _mm512_loadu_si512((const void *)(src + i)) : v);
    if (i < n) {
        __mmask64 mask = ((__mmask64)1 << (n - i)) - 1;
        _mm512_mask_storeu_epi8(dst + i, mask, src ? _mm512_maskz_loadu_epi8(mask, src + i) : v);
    }
}

/* u8 patch of one output pixel: taps in (ky, kx, i) order, in_zp outside the input, zero tail.
 * With dilation_w == 1 the taps of one kernel row inside the input are one contiguous span; a
 * span of at most 64 bytes (a first conv's 7 taps x 3 channels) is copied with one full-width
 * load and store: the load may read past the tensor into the arena's slack, the store writes
 * past the span into bytes the next row, the zero tail or the next patch then overwrite (the
 * scratch has 64 bytes of slack after the last patch). Kernel rows start every row_stride
 * bytes: kw*c, or that rounded up to 4 (row-padded weights, see hqrt_i_vnni_rows), the gap
 * zero. */
VNNI_TARGET static void build_patch_u8(const hqrt_conv_params_t *kp, hqrt_dims_t in,
                                       const uint8_t *input, int64_t oy, int64_t ox, int64_t padded,
                                       size_t row_stride, bool wide, uint8_t *patch)
{
    const size_t c = (size_t)in.c;
    const int32_t kw = kp->kernel_w;
    const size_t gap = row_stride - (size_t)kw * c;
    uint8_t *dst = patch;
    const int64_t x0 = ox * kp->stride_w - kp->pad_left;
    for (int32_t ky = 0; ky < kp->kernel_h; ky++, dst += row_stride) {
        int64_t y = oy * kp->stride_h - kp->pad_top + (int64_t)ky * kp->dilation_h;
        if (gap)
            put_bytes(dst + (size_t)kw * c, NULL, 0, gap);
        if (y < 0 || y >= in.h) {
            put_bytes(dst, NULL, kp->in_zp, (size_t)kw * c);
            continue;
        }
        const uint8_t *row = input + (size_t)y * (size_t)in.w * c;
        if (wide && kp->dilation_w == 1 && x0 >= 0 && x0 + kw <= in.w && (size_t)kw * c <= 64) {
            const uint8_t *src = row + (size_t)x0 * c;
            if ((size_t)kw * c <= 32)
                _mm256_storeu_si256((__m256i *)(void *)dst,
                                    _mm256_loadu_si256((const __m256i *)(const void *)src));
            else
                _mm512_storeu_si512((void *)dst, _mm512_loadu_si512((const void *)src));
            continue;
        }
        if (kp->dilation_w == 1) {
            int64_t a = x0 < 0 ? -x0 : 0; /* taps [a, b) lie inside the input */
            if (a > kw)
                a = kw;
            int64_t b = in.w - x0 < kw ? in.w - x0 : kw;
            if (b < a)
                b = a;
            if (a > 0)
                put_bytes(dst, NULL, kp->in_zp, (size_t)a * c);
            if (b > a)
                put_bytes(dst + (size_t)a * c, row + (size_t)(x0 + a) * c, 0, (size_t)(b - a) * c);
            if (kw > b)
                put_bytes(dst + (size_t)b * c, NULL, kp->in_zp, (size_t)(kw - b) * c);
            continue;
        }
        for (int32_t kx = 0; kx < kw; kx++) {
            int64_t x = x0 + (int64_t)kx * kp->dilation_w;
            if (x < 0 || x >= in.w)
                put_bytes(dst + (size_t)kx * c, NULL, kp->in_zp, c);
            else
                put_bytes(dst + (size_t)kx * c, row + (size_t)x * c, 0, c);
        }
    }
    int64_t used = dst - patch;
    if (padded > used)
        put_bytes(dst, NULL, 0, (size_t)(padded - used));
}

VNNI_TARGET void hqrt_i_vnni_patch(const hqrt_conv_params_t *kp, hqrt_dims_t in,
                                   const uint8_t *input, int64_t oy, int64_t ox, int64_t padded,
                                   size_t row_stride, bool wide, uint8_t *patch)
{
    build_patch_u8(kp, in, input, oy, ox, padded, row_stride, wide, patch);
}

VNNI_TARGET void hqrt_i_vnni_rows(const hqrt_i_prepared_t *prep, const hqrt_conv_params_t *kp,
                                  hqrt_dims_t in, const uint8_t *input, const int64_t *bias,
                                  const hqrt_addend_t *addend, hqrt_dims_t out, uint8_t *output,
                                  int64_t samples, size_t stride, int64_t row_begin,
                                  int64_t row_end, uint8_t *scratch)
{
    const int64_t kbytes = prep->depth_padded, k4n = kbytes / 4;
    const int64_t max_chunk = samples > 1 ? VNNI_CHUNK_SAMPLES : VNNI_CHUNK;
    const int8_t *weights = prep->packed;
    const int32_t cout = out.c, blocks = (cout + 15) / 16;
    (void)bias; /* folded into corr */
    hqrt_i_vnni_stage_t stage;
    hqrt_i_vnni_stage_init(prep, kp, addend, cout, &stage);
    const int64_t *corr = stage.corr;
    const hqrt_i_fin_t *fin = stage.fin, *afin = stage.afin;
    const int32_t *lut32 = stage.lut32;
    const int32_t t2_bound = stage.t2_bound;
    const bool epi_addend = stage.epi_addend;
    const hqrt_i_lut_regs_t lut = hqrt_i_lut_load(lut32, prep->lut_vbmi);
    const bool direct = prep->direct && kp->kernel_h == 1 && kp->kernel_w == 1 &&
                        kp->pad_top == 0 && kp->pad_left == 0 && kp->pad_bottom == 0 &&
                        kp->pad_right == 0 && in.c % 4 == 0;
    int64_t total = row_end - row_begin; /* VNNI ops are split by output pixels, not rows */
    /* Chunks of VNNI_CHUNK tiles: the patches of a chunk are built once, then every block of
     * VNNI_BLOCKS x 16 channels runs over all its tiles, so that a block's weights are read from
     * memory once per chunk, not once per tile (the deep layers' weights exceed L2). */
    const size_t row_stride =
        prep->row_bytes ? (size_t)prep->row_bytes : (size_t)kp->kernel_w * (size_t)in.c;
    const bool segmented =
        !direct && kp->dilation_w == 1 &&
        (prep->row_bytes ||
         (in.c % 4 == 0 && kbytes == (int64_t)kp->kernel_h * kp->kernel_w * in.c));
    const size_t seg_stride = (size_t)kp->dilation_h * (size_t)in.w * (size_t)in.c;
    /* Chunks of equal tile counts (49 pixels: 5 + 4 tiles, not 8 + 1): the weights are streamed
     * once per chunk, so a nearly empty last chunk would cost as much as a full one. */
    const int64_t all_tiles = (total + VNNI_PIXELS - 1) / VNNI_PIXELS;
    const int64_t chunks = (all_tiles + max_chunk - 1) / max_chunk;
    const int64_t per_chunk = chunks ? (all_tiles + chunks - 1) / chunks : 0;
    for (int64_t first = 0; first < total; first += VNNI_PIXELS * per_chunk) {
        int64_t count =
            total - first < VNNI_PIXELS * per_chunk ? total - first : VNNI_PIXELS * per_chunk;
        int tiles = (int)((count + VNNI_PIXELS - 1) / VNNI_PIXELS);
        const uint8_t *rows[VNNI_CHUNK_SAMPLES][VNNI_PIXELS];
        size_t pix[VNNI_CHUNK_SAMPLES][VNNI_PIXELS]; /* where each pixel's codes start */
        int np[VNNI_CHUNK_SAMPLES];
        bool seg[VNNI_CHUNK_SAMPLES];
        /* the chunk's pixels in order: one division for its first, then a running (s, oy, ox) */
        const int64_t plane = (int64_t)out.h * out.w;
        int64_t s = (row_begin + first) / plane;
        int64_t oy = (row_begin + first) % plane / out.w, ox = (row_begin + first) % out.w;
        for (int t = 0; t < tiles; t++)
            np[t] = count - (int64_t)t * VNNI_PIXELS < VNNI_PIXELS
                        ? (int)(count - (int64_t)t * VNNI_PIXELS)
                        : VNNI_PIXELS;
        if (tiles >= 2 && np[tiles - 1] <= 2) { /* 6 + 1 -> 4 + 3, 6 + 2 -> 4 + 4 */
            int two = VNNI_PIXELS + np[tiles - 1];
            np[tiles - 2] = (two + 1) / 2, np[tiles - 1] = two / 2;
        }
        for (int t = 0; t < tiles; t++) {
            int64_t ys[VNNI_PIXELS], xs[VNNI_PIXELS], ss[VNNI_PIXELS];
            for (int j = 0; j < np[t]; j++) {
                ys[j] = oy, xs[j] = ox, ss[j] = s;
                if (++ox == out.w)
                    ox = 0, oy++;
                if (oy == out.h)
                    oy = 0, s++;
            }
            /* segments: a tile whose windows all lie inside the input reads each kernel row's
             * kw*c contiguous bytes in place (no patch) */
            seg[t] = segmented;
            for (int j = 0; seg[t] && j < np[t]; j++) {
                int64_t y0 = ys[j] * kp->stride_h - kp->pad_top;
                int64_t x0 = xs[j] * kp->stride_w - kp->pad_left;
                seg[t] = y0 >= 0 && y0 + (int64_t)(kp->kernel_h - 1) * kp->dilation_h < in.h &&
                         x0 >= 0 && x0 + kp->kernel_w - 1 < in.w;
            }
            for (int j = 0; j < VNNI_PIXELS; j++) {
                if (j >= np[t]) { /* never read or stored: the tile kernel has np rows */
                    pix[t][j] = pix[t][0];
                    rows[t][j] = rows[t][0];
                    continue;
                }
                pix[t][j] = (size_t)ss[j] * stride + (size_t)(ys[j] * out.w + xs[j]) * (size_t)cout;
                const uint8_t *sample_in = input + (size_t)ss[j] * stride;
                if (seg[t])
                    rows[t][j] =
                        sample_in + ((size_t)(ys[j] * kp->stride_h - kp->pad_top) * (size_t)in.w +
                                 (size_t)(xs[j] * kp->stride_w - kp->pad_left)) *
                                    (size_t)in.c;
                else if (direct)
                    rows[t][j] = sample_in + ((size_t)(ys[j] * kp->stride_h) * (size_t)in.w +
                                          (size_t)(xs[j] * kp->stride_w)) *
                                             (size_t)in.c;
                else {
                    uint8_t *patch =
                        scratch + ((size_t)t * VNNI_PIXELS + (size_t)j) * (size_t)kbytes;
                    build_patch_u8(kp, in, sample_in, ys[j], xs[j], kbytes, row_stride,
                                   !prep->exact_reads, patch);
                    rows[t][j] = patch;
                }
            }
        }
        for (int32_t b0 = 0; b0 < blocks; b0 += VNNI_BLOCKS) {
            int nb = blocks - b0 < VNNI_BLOCKS ? blocks - b0 : VNNI_BLOCKS;
            const int8_t *w = weights + (size_t)b0 * (size_t)k4n * 64;
            __m512i init[VNNI_BLOCKS]; /* fin: accumulators start from the int32 corr */
            const hqrt_i_fin_t *bfin[VNNI_BLOCKS] = {0};
            for (int b = 0; b < VNNI_BLOCKS; b++) {
                bfin[b] = fin && b < nb && fin[b0 + b].usable ? fin + b0 + b : NULL;
                init[b] = bfin[b] ? _mm512_load_si512((const void *)bfin[b]->corr)
                                  : _mm512_setzero_si512();
            }
            /* full tiles of the group finish in the tile's registers (vnni_epilogue_t) */
            int mode = !addend
                           ? (kp->out.act_min >= kp->out.out_zp && !lut32 ? EPI_CLAMPED : EPI_EXACT)
                       : epi_addend ? EPI_ADDEND
                                    : 0;
            for (int b = 0; b < nb; b++)
                if (!bfin[b] || (addend && bfin[b]->y_bound > SUM_LIMIT) ||
                    _mm512_test_epi32_mask(_mm512_load_si512((const void *)bfin[b]->left),
                                           _mm512_load_si512((const void *)bfin[b]->left)))
                    mode = 0;
            const int32_t tail = cout - (b0 + nb - 1) * 16; /* channels in block nb - 1 */
            for (int t = 0; t < tiles; t++) {
                __m512i acc[VNNI_PIXELS][VNNI_BLOCKS];
                vnni_epilogue_t ep;
                const bool fused = mode && np[t] == VNNI_PIXELS;
                if (fused) {
                    for (int b = 0; b < nb; b++)
                        ep.fin[b] = bfin[b];
                    for (int j = 0; j < VNNI_PIXELS; j++) {
                        size_t at = pix[t][j] + (size_t)b0 * 16;
                        ep.out[j] = output + at;
                        ep.add[j] = mode == EPI_ADDEND ? (const uint8_t *)addend->data + at : NULL;
                    }
                    ep.afin = afin;
                    ep.a_zp = addend ? addend->zp : 0;
                    ep.a_left = addend && addend->shift > 0 ? addend->shift : 0;
                    ep.lut = lut;
                    hqrt_i_code_consts(&kp->out, &ep.zp, &ep.lo, &ep.hi);
                    ep.last = (__mmask16)(tail >= 16 ? 0xFFFF : (1u << tail) - 1);
                    ep.mode = mode;
                }
                const int64_t ns = seg[t] ? kp->kernel_h : 1;
                const size_t ss = seg[t] ? seg_stride : 0;
                switch (np[t] * 8 + nb) { /* a partial tile computes only its pixels */
                case 52:
                    vnni_tile(rows[t], w, k4n, ns, ss, 4, 6, init, acc);
                    break;
                case 51:
                    vnni_tile(rows[t], w, k4n, ns, ss, 3, 6, init, acc);
                    break;
                case 50:
                    vnni_tile(rows[t], w, k4n, ns, ss, 2, 6, init, acc);
                    break;
                case 49:
                    vnni_tile(rows[t], w, k4n, ns, ss, 1, 6, init, acc);
                    break;
                case 44:
                    vnni_tile(rows[t], w, k4n, ns, ss, 4, 5, init, acc);
                    break;
                case 43:
                    vnni_tile(rows[t], w, k4n, ns, ss, 3, 5, init, acc);
                    break;
                case 42:
                    vnni_tile(rows[t], w, k4n, ns, ss, 2, 5, init, acc);
                    break;
                case 41:
                    vnni_tile(rows[t], w, k4n, ns, ss, 1, 5, init, acc);
                    break;
                case 36:
                    vnni_tile(rows[t], w, k4n, ns, ss, 4, 4, init, acc);
                    break;
                case 35:
                    vnni_tile(rows[t], w, k4n, ns, ss, 3, 4, init, acc);
                    break;
                case 34:
                    vnni_tile(rows[t], w, k4n, ns, ss, 2, 4, init, acc);
                    break;
                case 33:
                    vnni_tile(rows[t], w, k4n, ns, ss, 1, 4, init, acc);
                    break;
                case 28:
                    vnni_tile(rows[t], w, k4n, ns, ss, 4, 3, init, acc);
                    break;
                case 27:
                    vnni_tile(rows[t], w, k4n, ns, ss, 3, 3, init, acc);
                    break;
                case 26:
                    vnni_tile(rows[t], w, k4n, ns, ss, 2, 3, init, acc);
                    break;
                case 25:
                    vnni_tile(rows[t], w, k4n, ns, ss, 1, 3, init, acc);
                    break;
                case 20:
                    vnni_tile(rows[t], w, k4n, ns, ss, 4, 2, init, acc);
                    break;
                case 19:
                    vnni_tile(rows[t], w, k4n, ns, ss, 3, 2, init, acc);
                    break;
                case 18:
                    vnni_tile(rows[t], w, k4n, ns, ss, 2, 2, init, acc);
                    break;
                case 17:
                    vnni_tile(rows[t], w, k4n, ns, ss, 1, 2, init, acc);
                    break;
                case 12:
                    vnni_tile(rows[t], w, k4n, ns, ss, 4, 1, init, acc);
                    break;
                case 11:
                    vnni_tile(rows[t], w, k4n, ns, ss, 3, 1, init, acc);
                    break;
                case 10:
                    vnni_tile(rows[t], w, k4n, ns, ss, 2, 1, init, acc);
                    break;
                case 9:
                    vnni_tile(rows[t], w, k4n, ns, ss, 1, 1, init, acc);
                    break;
                default:
                    break;
                }
                if (fused)
                    vnni_epilogue_run(&ep, acc, nb);
                for (int b = 0; !fused && b < nb; b++) {
                    __m512i raw[VNNI_PIXELS];
                    for (int j = 0; j < VNNI_PIXELS; j++)
                        raw[j] = acc[j][b];
                    vnni_finish_block(kp, addend, corr, bfin[b], afin,
                                      !bfin[b] || bfin[b]->y_bound > SUM_LIMIT ||
                                          t2_bound > SUM_LIMIT,
                                      raw, np[t], pix[t], (b0 + b) * 16, cout, &lut, output);
                }
            }
        }
    }
}

size_t hqrt_i_vnni_samples_scratch(const hqrt_i_prepared_t *prep)
{
    return (size_t)(VNNI_PIXELS * VNNI_CHUNK_SAMPLES * prep->depth_padded) + 64;
}

/* Fills the int32 finish constants of every block of 16 channels; false when no block can use
 * them. A block can when the stage is the 32-bit path into 8-bit codes (through a lut or not)
 * without negative-side multipliers, its multipliers are >= 0, and every channel's accumulator, raw
 * + corr for any u8 codes, fits int32 (so hqrt_requantize's saturation to int32 never acts). */
static bool vnni_prepare_finish(const hqrt_output_stage_t *st, const void *w, int32_t wbits,
                                int64_t depth, int32_t cout, const int64_t *corr, hqrt_i_fin_t *fin)
{
    if (st->path != HQRT_PATH_GEMMLOWP || st->multiplier_neg || st->out_bits != 8)
        return false;
    bool any = false;
    for (int32_t b = 0; b < (cout + 15) / 16; b++)
        fin[b].usable = 1, fin[b].y_bound = 0;
    for (int32_t o = 0; o < (cout + 15) / 16 * 16; o++) {
        hqrt_i_fin_t *f = &fin[o / 16];
        if (o >= cout) { /* lanes past cout: computed, never stored */
            f->corr[o % 16] = 0;
            hqrt_i_fin_constants(0, 0, o % 16, f);
            continue;
        }
        int32_t i = st->count == 1 ? 0 : o;
        if (st->multiplier[i] < 0)
            f->usable = 0;
        int64_t pos = 0, neg = 0;
        for (int64_t k = 0; k < depth; k++) {
            int32_t v = hqrt_i_weight_at(w, wbits, (size_t)k * (size_t)cout + (size_t)o);
            if (v > 0)
                pos += v;
            else
                neg += v;
        }
        int64_t lo = corr[o] + 255 * neg, hi = corr[o] + 255 * pos;
        if (lo < INT32_MIN || hi > INT32_MAX)
            f->usable = 0;
        int32_t yb =
            hqrt_i_requantized_bound(lo < 0 && -lo > hi ? -lo
                                     : hi < 0           ? -hi
                                                        : hi,
                                     st->multiplier[i] < 0 ? 0 : st->multiplier[i], st->shift[i]);
        f->y_bound = yb > f->y_bound ? yb : f->y_bound;
        f->corr[o % 16] = (int32_t)corr[o];
        hqrt_i_fin_constants(st->multiplier[i], st->shift[i], o % 16, f);
    }
    for (int32_t b = 0; b < (cout + 15) / 16; b++)
        any = any || fin[b].usable;
    return any;
}

hqrt_status_t hqrt_i_vnni_prepare(const hqrt_conv_params_t *kp, bool dense, hqrt_dims_t out,
                                  const void *w, const int64_t *bias, int64_t depth, int64_t cin,
                                  bool exact_reads, const char *name, hqrt_i_prepared_t *prep,
                                  hqrt_error_t *err)
{
    const int32_t cout = out.c;
    /* A kernel row of taps that is not a whole number of 4-byte groups (a first conv's 7 taps x
     * 3 channels) is padded to one with zero weights: hqrt_i_vnni_rows then reads such rows in
     * place from the input, the pad bytes (the next pixel's, or the arena's slack) multiplied
     * by 0. */
    int64_t span = dense ? depth : (int64_t)kp->kernel_w * cin;
    int64_t row_bytes =
        !dense && !exact_reads && kp->dilation_w == 1 && span % 4 ? (span + 3) / 4 * 4 : 0;
    int64_t kbytes = row_bytes ? (int64_t)kp->kernel_h * row_bytes : (depth + 3) / 4 * 4;
    int32_t blocks = (cout + 15) / 16;
    size_t wbytes = (size_t)blocks * (size_t)kbytes * 16;
    size_t fin_at = wbytes + (size_t)blocks * 16 * sizeof(int64_t);
    size_t lut_at = fin_at + (size_t)blocks * sizeof(hqrt_i_fin_t);
    size_t all = lut_at + (kp->out.lut ? HQRT_I_LUT_BYTES : 0);
    all += HQRT_VNNI_PACK_SLACK; /* the AMX kernel's reads past the last weights */
    int8_t *packed = aligned_alloc(64, (all + 63) / 64 * 64);
    if (!packed)
        return hqrt_i_fail(err, HQRT_ERR_NOMEM, "%s: out of memory", name);
    memset(packed, 0, all);
    /* then corr[o] = bias[o] - in_zp * sum_k w[k][o]: raw + corr is the exact accumulator of
     * the reference kernel */
    int64_t *corr = (int64_t *)(void *)(packed + wbytes);
    /* groups of VNNI_BLOCKS blocks of 16 channels (the last may have fewer), each [k/4][block][16
     * channels][4 taps], so that a tile reads one sequential stream; the patch order (ky, kx, i)
     * is the row order of the [kh, kw, cin, cout] weights */
    for (int32_t o = 0; o < cout; o++)
        for (int64_t k = 0; k < depth; k++) {
            int32_t v = hqrt_i_weight_at(w, kp->weight_bits, (size_t)k * (size_t)cout + (size_t)o);
            int32_t b0 = o / 16 / VNNI_BLOCKS * VNNI_BLOCKS;
            int32_t nb = blocks - b0 < VNNI_BLOCKS ? blocks - b0 : VNNI_BLOCKS;
            int64_t kk = row_bytes ? k / span * row_bytes + k % span : k;
            size_t at = (size_t)b0 * (size_t)kbytes * 16 +
                        ((size_t)(kk / 4) * (size_t)nb + (size_t)(o / 16 - b0)) * 64 +
                        (size_t)(o % 16) * 4 + (size_t)(kk % 4);
            packed[at] = (int8_t)v;
            corr[o] -= (int64_t)kp->in_zp * v;
        }
    for (int32_t o = 0; bias && o < cout; o++)
        corr[o] += bias[o];
    hqrt_i_fin_t *fin = (hqrt_i_fin_t *)(void *)(packed + fin_at);
    bool exact32 = vnni_prepare_finish(&kp->out, w, kp->weight_bits, depth, cout, corr, fin);
    if (kp->out.lut) /* the 8-bit lut's codes, clamped as the stage clamps them */
        hqrt_i_lut_prepare(&kp->out, (int32_t *)(void *)(packed + lut_at));
    bool direct = dense || (kp->kernel_h == 1 && kp->kernel_w == 1);
    *prep = (hqrt_i_prepared_t){.fast = true,
                                .kind = HQRT_KIND_VNNI,
                                .dense = dense,
                                .direct = direct,
                                .rows = dense ? 1 : (int64_t)out.h * out.w,
                                .min_rows = 4 * VNNI_PIXELS, /* weights per piece */
                                .packed = packed,
                                .depth = depth,
                                .depth_padded = kbytes,
                                .row_bytes = row_bytes,
                                .exact_reads = exact_reads,
                                .scratch = (size_t)(VNNI_PIXELS * VNNI_CHUNK * kbytes) +
                                           64, /* build_patch_u8's wide stores */
                                .finish = exact32 ? fin : NULL,
                                .lut_vbmi = kp->out.lut && hqrt_i_lut_vbmi()};
    return HQRT_OK;
}

#endif /* HQRT_HAVE_AVX2_BUILD */
