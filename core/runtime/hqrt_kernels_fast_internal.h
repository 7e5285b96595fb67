/* hqrt_kernels_fast_internal.h — what the fast kernels' files share: hqrt_kernels_avx2.c
 * (the CPU checks, prepare and run of every fast kernel, the AVX2 conv/dense and maxpool
 * kernels), hqrt_kernels_vnni.c (the AVX-512 VNNI kernels and their weight packing),
 * hqrt_kernels_amx.c (the AMX conv kernel on the VNNI packing) and hqrt_kernels_dw.c (the
 * depthwise kernels and their packing). Private to them. */
#ifndef HQRT_KERNELS_FAST_INTERNAL_H
#define HQRT_KERNELS_FAST_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hqrt_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#define HQRT_HAVE_AVX2_BUILD 1
#include <immintrin.h>
#endif

/* hqrt_i_prepared_t.kind: which fast kernel an op was prepared for. */
enum {
    HQRT_KIND_GEMM = 1,
    HQRT_KIND_DW = 2, /* AVX2 depthwise; prep->direct set: its paired-tap kernel (stride >= 2) */
    HQRT_KIND_VNNI = 3,
    HQRT_KIND_MAXPOOL = 4,
    HQRT_KIND_DW512 = 5,
    HQRT_KIND_AMX = 6
};

/* Depthwise windows of at most this many taps run the paired-tap interior paths. */
#define HQRT_DW_PAIR_TAPS 64

/* The bias can start the int32 sums: with it every sum of `depth` products of |q - zp| <= 255
 * and |w| <= 128 stays inside int32, so the int64 sum of the reference is that int32 sum and
 * the stage's clamp of it to int32 never acts. */
static inline bool hqrt_i_bias_folds(const int64_t *bias, int32_t count, int64_t depth)
{
    const int64_t room = INT32_MAX - depth * 255 * 128;
    for (int32_t o = 0; bias && o < count; o++)
        if (bias[o] < -room || bias[o] > room)
            return false;
    return bias != NULL;
}

/* The end of one output value, written exactly as the reference conv does it. */
static inline int32_t hqrt_i_finish_value(const hqrt_conv_params_t *kp, const hqrt_addend_t *addend,
                                          int64_t acc, int32_t o, size_t oi)
{
    if (!addend)
        return hqrt_output_code(&kp->out, acc, o);
    int32_t i = kp->out.count == 1 ? 0 : o;
    int64_t t1 = hqrt_requantize(acc, kp->out.multiplier[i], kp->out.shift[i], kp->out.path);
    int64_t t2 = hqrt_requantize(hqrt_load(addend->data, addend->bits, oi) - addend->zp,
                                 addend->multiplier, addend->shift, kp->out.path);
    return hqrt_output_code_sum(&kp->out, t1 + t2, o);
}

/* Weight i of a [.., cout] weight tensor: int16 for 16-bit weights, else int8 (4/8-bit). */
static inline int32_t hqrt_i_weight_at(const void *w, int32_t bits, size_t i)
{
    return bits == 16 ? ((const int16_t *)w)[i] : ((const int8_t *)w)[i];
}

#ifdef HQRT_HAVE_AVX2_BUILD
/* The CPU has AVX512F/BW/DQ/VL and AVX512-VNNI (checked once, then cached). */
bool hqrt_i_cpu_has_vnni(void);

/* The VNNI part of hqrt_i_conv_prepare_kernel for a groups == 1 conv or a dense op that
 * qualifies (depth = taps * cin <= 65536): packs the weights, the int64 corrections and the
 * output-stage constants into prep->packed (aligned_alloc; the caller frees it) and fills prep. */
hqrt_status_t hqrt_i_vnni_prepare(const hqrt_conv_params_t *kp, bool dense, hqrt_dims_t out,
                                  const void *w, const int64_t *bias, int64_t depth, int64_t cin,
                                  bool exact_reads, const char *name, hqrt_i_prepared_t *prep,
                                  hqrt_error_t *err);

/* Output pixels [row_begin, row_end) of an op prepared by hqrt_i_vnni_prepare (a dense op as a
 * 1x1 conv of one pixel); the bias is folded into the packed corrections. The pixels are those
 * of `samples` samples in order (sample s's pixel p is s * out.h * out.w + p), sample s's input,
 * addend and output at s * stride bytes past the first's (hqrt_i_conv_fast_samples). */
void hqrt_i_vnni_rows(const hqrt_i_prepared_t *prep, const hqrt_conv_params_t *kp, hqrt_dims_t in,
                      const uint8_t *input, const int64_t *bias, const hqrt_addend_t *addend,
                      hqrt_dims_t out, uint8_t *output, int64_t samples, size_t stride,
                      int64_t row_begin, int64_t row_end, uint8_t *scratch);

/* Scratch hqrt_i_vnni_rows needs for several samples (larger chunks of pixels than one). */
size_t hqrt_i_vnni_samples_scratch(const hqrt_i_prepared_t *prep);

/* The depthwise part of hqrt_i_conv_prepare_kernel (hqrt_kernels_dw.c), for a conv with groups ==
 * in.c == out.c on 8-bit activations and 4/8-bit weights: packs the weights for the AVX-512
 * kernel (HQRT_KIND_DW512) when hqrt_i_vector_isa() says AVX-512, else for the AVX2 one
 * (HQRT_KIND_DW), into prep->packed (aligned_alloc; the caller frees it), and fills prep; leaves
 * prep zeroed (the reference runs) for shapes neither takes. */
hqrt_status_t hqrt_i_dw_prepare(const hqrt_conv_params_t *kp, hqrt_dims_t in, hqrt_dims_t out,
                                const void *w, const int64_t *bias, const char *name,
                                hqrt_i_prepared_t *prep, hqrt_error_t *err);

/* Depthwise output rows [row_begin, row_end) on AVX2 (hqrt_kernels_dw.c): an op prepared with kind
 * HQRT_KIND_DW by hqrt_i_dw_prepare (scratch prep->scratch bytes). */
void hqrt_i_dw_rows_avx2(const hqrt_i_prepared_t *prep, const hqrt_conv_params_t *kp,
                         hqrt_dims_t in, const uint8_t *input, const int64_t *bias,
                         const hqrt_addend_t *addend, hqrt_dims_t out, uint8_t *output,
                         int64_t row_begin, int64_t row_end, uint8_t *scratch);

/* Depthwise output rows [row_begin, row_end) on AVX-512 (hqrt_kernels_dw.c): an op prepared with
 * kind HQRT_KIND_DW512 by hqrt_i_dw512_pack (cpad a multiple of 32; scratch
 * hqrt_i_dw512_scratch bytes). */
void hqrt_i_dw_rows_avx512(const hqrt_i_prepared_t *prep, const hqrt_conv_params_t *kp,
                           hqrt_dims_t in, const uint8_t *input, const int64_t *bias,
                           const hqrt_addend_t *addend, hqrt_dims_t out, uint8_t *output,
                           int64_t row_begin, int64_t row_end, uint8_t *scratch);

/* ---- the 32-bit output stage in int32 lanes (AVX-512), shared by the VNNI conv/dense kernel
 * and the AVX-512 depthwise kernel --------------------------------------------------------- */
#define HQRT_AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))

/* The 32-bit path's two roundings as one (m >= 0, right = max(-shift, 0) in 0..31): with
 * A = x*m + 2^30, SRDHM(x, m) = floor(A / 2^31) for either sign (gemmlowp's nudged truncation:
 * A >= 0 truncates to the floor; for A < 0 the nudge 1 - 2^30 plus the truncation's 2^31 - 1
 * give the same A), and RoundingDivideByPOT(q, r) = floor((q + 2^(r-1) - [q < 0]) / 2^r). Nested
 * floors of divisions by powers of two compose, so
 *   y = floor((x*m + round - [A < 0] * neg) / 2^(31 + r)),
 *   round = 2^30 + 2^(30 + r), neg = 2^31   (r >= 1);   round = 2^30, neg = 0   (r == 0).
 * m >= 0 never meets SRDHM's one overflow (INT32_MIN^2). Constants per channel are prepared in
 * the even/odd lane order of vpmuldq (hqrt_i_fin_t). */
typedef struct hqrt_i_fin {
    int32_t corr[16];    /* bias - in_zp * sum(w): raw + corr is the exact int32 accumulator */
    int32_t mul[16];     /* m of channel l in lane l */
    int32_t mul_odd[16]; /* m of channel 2i+1 in lane 2i (vpmuldq reads the even lanes) */
    int32_t left[16];    /* max(shift, 0): hqrt_requantize32's saturating pre-shift */
    int64_t round[2][8]; /* [even/odd channels] the constant above */
    int64_t neg[2][8];   /* 2^31 or 0 */
    int64_t shift[2][8]; /* 31 + r */
    int32_t usable;      /* the block's stage and accumulator bounds allow this path */
    int32_t y_bound;     /* no channel's requantized y exceeds this in magnitude */
    int32_t unused[14];
} hqrt_i_fin_t;

HQRT_AVX512_TARGET static inline __attribute__((always_inline)) __m512i
hqrt_i_rq_merged_x8(__m512i x, __m512i m, __m512i round, __m512i neg, __m512i shift,
                    const bool exact_neg)
{
    __m512i ab = _mm512_mul_epi32(x, m);
    __m512i a = _mm512_add_epi64(ab, round);
    if (exact_neg)
        a = _mm512_mask_sub_epi64(
            a, _mm512_cmplt_epi64_mask(ab, _mm512_set1_epi64(-((int64_t)1 << 30))), a, neg);
    return _mm512_srav_epi64(a, shift);
}

/* A block's requantization constants in registers (hqrt_i_fin_t loaded once per block). */
typedef struct hqrt_i_rq {
    __m512i m, m_odd, round[2], neg[2], shift[2];
} hqrt_i_rq_t;

HQRT_AVX512_TARGET static inline __attribute__((always_inline)) hqrt_i_rq_t
hqrt_i_rq_load(const hqrt_i_fin_t *f)
{
    hqrt_i_rq_t k;
    k.m = _mm512_load_si512((const void *)f->mul);
    k.m_odd = _mm512_load_si512((const void *)f->mul_odd);
    for (int h = 0; h < 2; h++) {
        k.round[h] = _mm512_load_si512((const void *)f->round[h]);
        k.neg[h] = _mm512_load_si512((const void *)f->neg[h]);
        k.shift[h] = _mm512_load_si512((const void *)f->shift[h]);
    }
    return k;
}

/* hqrt_requantize32 on 16 int32 lanes already pre-shifted, the result in int32 lanes.
 * exact_neg false skips the correction for A < 0: then every such lane gives y_correct or
 * y_correct + 1, both <= 0 (A + round < 2^(31 + r)), which is only right when the caller clamps
 * every y <= 0 to one code (act_min >= out_zp, no addend). */
HQRT_AVX512_TARGET static inline __attribute__((always_inline)) __m512i
hqrt_i_rq_merged_x16(__m512i x, const hqrt_i_rq_t *k, const bool exact_neg)
{
    /* the odd lanes moved down and the results back up by vpshufd (port 5), not by 64-bit
     * shifts: 512-bit shifts, products and vpdpbusd all take port 0, which bounds the kernels */
    __m512i ye = hqrt_i_rq_merged_x8(x, k->m, k->round[0], k->neg[0], k->shift[0], exact_neg);
    __m512i yo = hqrt_i_rq_merged_x8(_mm512_shuffle_epi32(x, _MM_PERM_DDBB), k->m_odd, k->round[1],
                                     k->neg[1], k->shift[1], exact_neg);
    return _mm512_mask_shuffle_epi32(ye, 0xAAAA, yo, _MM_PERM_CCAA);
}

/* The fast 8-bit stages' copy of a lut (HQRT_I_LUT_BYTES, 64-aligned): the 256 codes clamped to
 * [act_min, act_max] as they are looked up, first as int32 (one vpgatherdd per 16 codes), then as
 * bytes (four 64-byte quarters for vpermi2b, on CPUs with AVX512-VBMI). */
#define HQRT_I_LUT_BYTES (256 * sizeof(int32_t) + 256)

/* Fills lut (HQRT_I_LUT_BYTES) from the stage's 8-bit lut. */
static inline void hqrt_i_lut_prepare(const hqrt_output_stage_t *st, int32_t *lut)
{
    uint8_t *bytes = (uint8_t *)(void *)(lut + 256);
    for (int i = 0; i < 256; i++) {
        const int32_t code = ((const uint8_t *)st->lut)[i];
        lut[i] = code < st->act_min ? st->act_min : code > st->act_max ? st->act_max : code;
        bytes[i] = (uint8_t)lut[i];
    }
}

/* The CPU has AVX512-VBMI besides what hqrt_i_cpu_has_vnni checks, and neither HQRT_NO_VNNI nor
 * HQRT_NO_VBMI is set: the lut stages then look codes up by vpermi2b (hqrt_i_lut_bytes). */
bool hqrt_i_lut_vbmi(void);

/* A lut stage's tables in registers: the byte quarters when the op uses vpermi2b (vbmi), else
 * unused (the int32 codes are gathered from memory). */
typedef struct hqrt_i_lut_regs {
    const int32_t *lut32; /* the stage's HQRT_I_LUT_BYTES copy, or NULL: no lut */
    bool vbmi;            /* look up by vpermi2b in q, not by gathers from lut32 */
    __m512i q[4];         /* codes 0-63, 64-127, 128-191, 192-255 */
} hqrt_i_lut_regs_t;

HQRT_AVX512_TARGET static inline __attribute__((always_inline)) hqrt_i_lut_regs_t
hqrt_i_lut_load(const int32_t *lut32, bool vbmi)
{
    hqrt_i_lut_regs_t r = {.lut32 = lut32, .vbmi = lut32 && vbmi};
    for (int i = 0; i < 4; i++)
        r.q[i] = r.vbmi ? _mm512_load_si512((const void *)(lut32 + 256 + 16 * i))
                        : _mm512_setzero_si512();
    return r;
}

/* The table's codes for the byte indices of idx (any 0..255): vpermi2b looks the low 7 bits up
 * in two quarters (bit 6 picks the quarter), once in the low half and once in the high half of
 * the table; the top bit of each index picks between the two. vpermi2b is AVX512-VBMI, which the
 * target of these files leaves out so that the compiler never emits it where the CPU may lack
 * it: it is written as asm, and reached only after the run-time check (hqrt_i_lut_vbmi). */
HQRT_AVX512_TARGET static inline __attribute__((always_inline)) __m512i
hqrt_i_lut_bytes(__m512i idx, const hqrt_i_lut_regs_t *t)
{
    __m512i low = idx, high = idx;
    __asm__("vpermi2b %2, %1, %0" : "+v"(low) : "v"(t->q[0]), "v"(t->q[1]));
    __asm__("vpermi2b %2, %1, %0" : "+v"(high) : "v"(t->q[2]), "v"(t->q[3]));
    return _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), low, high);
}

/* 8-bit output codes from y: clamped in y's units (y + zp could leave int32), then the zero
 * point added; c: zp, act_min - zp, act_max - zp. With a lut (t->lut32, each code already
 * clamped to [act_min, act_max]) the same steps give the table index clamp(y + pre_zp, 0, 255),
 * c: pre_zp, -pre_zp, 255 - pre_zp (code_consts), then one lookup: vpermi2b on the index bytes,
 * or one gather of the int32 codes. */
HQRT_AVX512_TARGET static inline __attribute__((always_inline)) __m128i
hqrt_i_code_bytes(__m512i y, const __m512i *c, const hqrt_i_lut_regs_t *t)
{
    __m512i v = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(y, c[1]), c[2]), c[0]);
    if (t->lut32 && t->vbmi)
        return _mm512_castsi512_si128(
            hqrt_i_lut_bytes(_mm512_zextsi128_si512(_mm512_cvtepi32_epi8(v)), t));
    if (t->lut32)
        v = _mm512_i32gather_epi32(v, (const void *)t->lut32, 4);
    return _mm512_cvtepi32_epi8(v);
}

/* The 8-bit codes of four blocks' int32 results y[0..3] (64 channels) in channel order, as
 * hqrt_i_code_bytes gives them block by block: clamp(y, lo, hi) + zp is clamp(y + zp, act_min,
 * act_max), and y + zp saturated to int16 (vpackssdw, vpaddsw) then to 0..255 (vpackuswb) keeps
 * every value that clamp keeps; the activation's clamp (or the lut, by vpermi2b, of the codes
 * clamped to 0..255 with zp the lut's pre_zp) then runs on 64 bytes at once, and one vpermd puts
 * the blocks' lanes (packs interleave them per 128 bits) back in channel order (`order`:
 * hqrt_i_codes64_order). */
HQRT_AVX512_TARGET static inline __attribute__((always_inline)) __m512i
hqrt_i_codes64(const __m512i *y, __m512i zp16, __m512i act_min, __m512i act_max,
               const hqrt_i_lut_regs_t *lut, __m512i order)
{
    const __m512i lo = _mm512_adds_epi16(_mm512_packs_epi32(y[0], y[1]), zp16);
    const __m512i hi = _mm512_adds_epi16(_mm512_packs_epi32(y[2], y[3]), zp16);
    __m512i bytes = _mm512_packus_epi16(lo, hi);
    if (lut->lut32)
        bytes = hqrt_i_lut_bytes(bytes, lut);
    else
        bytes = _mm512_min_epu8(_mm512_max_epu8(bytes, act_min), act_max);
    return _mm512_permutexvar_epi32(order, bytes);
}

/* hqrt_i_codes64's order: dword 4 * (i % 4) + i / 4 in dword i. */
HQRT_AVX512_TARGET static inline __attribute__((always_inline)) __m512i hqrt_i_codes64_order(void)
{
    return _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
}

/* code_bytes' offset and clamp bounds: out_zp, act_min/act_max - out_zp, or with a lut pre_zp
 * and the table's bounds - pre_zp. */
static inline void hqrt_i_code_consts(const hqrt_output_stage_t *st, int32_t *zp, int32_t *lo,
                                      int32_t *hi)
{
    *zp = st->lut ? st->pre_zp : st->out_zp;
    *lo = (st->lut ? 0 : st->act_min) - *zp;
    *hi = (st->lut ? 255 : st->act_max) - *zp;
}

/* A bound on |hqrt_requantize32(x, m, shift)| for |x| <= x_max, m >= 0 (saturated to
 * INT32_MAX): the pre-shift saturates at 2^31, then |y| <= x*m / 2^(31 + r) + 1. */
static inline int32_t hqrt_i_requantized_bound(int64_t x_max, int32_t m, int32_t shift)
{
    int32_t left = shift > 0 ? shift : 0, r = shift < 0 ? -shift : 0;
    int64_t x = x_max > ((int64_t)1 << 31) >> left ? (int64_t)1 << 31 : x_max << left;
    int64_t y = ((x * m) >> (31 + r)) + 1;
    return y > INT32_MAX ? INT32_MAX : (int32_t)y;
}

/* The per-lane constants of one requantization (m, shift) into fin's even/odd slots. */
static inline void hqrt_i_fin_constants(int32_t m, int32_t shift, int lane, hqrt_i_fin_t *f)
{
    int32_t r = shift < 0 ? -shift : 0;
    int half = lane % 2, at = lane / 2;
    f->mul[lane] = m;
    if (half)
        f->mul_odd[2 * at] = m;
    f->left[lane] = shift > 0 ? shift : 0;
    f->round[half][at] = ((int64_t)1 << 30) + (r ? (int64_t)1 << (30 + r) : 0);
    f->neg[half][at] = r ? (int64_t)1 << 31 : 0;
    f->shift[half][at] = 31 + r;
}

/* x * 2^left on 16 int32 lanes, saturated to int32 lane by lane (hqrt_requantize32's
 * pre-shift; `left` in 0..30). */
HQRT_AVX512_TARGET static inline __attribute__((always_inline)) __m512i
hqrt_i_sat_shl_x16(__m512i x, __m512i left)
{
    const __m512i zero16 = _mm512_setzero_si512();
    __m512i xs = _mm512_sllv_epi32(x, left);
    __mmask16 over = _mm512_cmpneq_epi32_mask(_mm512_srav_epi32(xs, left), x);
    __m512i sat =
        _mm512_mask_blend_epi32(_mm512_cmplt_epi32_mask(x, zero16), _mm512_set1_epi32(INT32_MAX),
                                _mm512_set1_epi32(INT32_MIN));
    return _mm512_mask_blend_epi32(over, xs, sat);
}

/* The VNNI packing's groups of blocks of 16 channels: [depth/4][block][16 channels][4 taps] int8
 * per group (the last group may have fewer blocks). */
#define HQRT_VNNI_BLOCKS 4

/* Bytes of zeros after everything hqrt_i_vnni_prepare packs: an AMX tile of the last 16 rows of
 * depth/4 reads up to 15 rows of HQRT_VNNI_BLOCKS * 64 bytes past a group's weights. */
#define HQRT_VNNI_PACK_SLACK (15 * HQRT_VNNI_BLOCKS * 64)

/* What the finish of an op prepared by hqrt_i_vnni_prepare needs (hqrt_i_vnni_stage_init): the
 * packed corrections and per-block constants, and a fused addend's requantization. */
typedef struct hqrt_i_vnni_stage {
    _Alignas(64) hqrt_i_fin_t addend_fin; /* afin's storage: the same constants in every lane */
    const int64_t *corr;                  /* bias - in_zp * sum(w) per channel */
    const hqrt_i_fin_t *fin;              /* prep->finish: per block, or NULL */
    const hqrt_i_fin_t *afin;             /* the addend's requantization, or NULL */
    const int32_t *lut32;                 /* the stage's HQRT_I_LUT_BYTES copy, or NULL */
    bool lut_vbmi;                        /* look the lut up by vpermi2b (prep->lut_vbmi) */
    int32_t t2_bound;                     /* bounds |the addend's requantized term| */
    bool epi_addend;                      /* the addend can take the fused tile epilogue */
} hqrt_i_vnni_stage_t;

void hqrt_i_vnni_stage_init(const hqrt_i_prepared_t *prep, const hqrt_conv_params_t *kp,
                            const hqrt_addend_t *addend, int32_t cout, hqrt_i_vnni_stage_t *s);

/* Output codes of channels 16 * block .. + 15 of np pixels from their raw int32 sums sum q*w
 * (sums[16 * j + l], without the correction), through the VNNI kernel's output stage (bit-exact
 * with the reference). Pixel j's channel 0 is code pix[j] of output (and of the addend). */
void hqrt_i_vnni_finish_sums(const hqrt_i_vnni_stage_t *s, const hqrt_conv_params_t *kp,
                             const hqrt_addend_t *addend, const int32_t *sums, int np,
                             const size_t *pix, int32_t block, int32_t cout, uint8_t *output);

/* The VNNI kernel's u8 patch of output pixel (oy, ox): taps in (ky, kx, i) order, kernel rows
 * row_stride bytes apart, in_zp outside the input, zeros up to `padded` bytes; wide: copies may
 * read up to 64 bytes past a kernel row (arena slack) and write up to 64 bytes past the patch. */
void hqrt_i_vnni_patch(const hqrt_conv_params_t *kp, hqrt_dims_t in, const uint8_t *input,
                       int64_t oy, int64_t ox, int64_t padded, size_t row_stride, bool wide,
                       uint8_t *patch);

/* The CPU has AMX-INT8 and Linux granted this process the tile data state (checked once). */
bool hqrt_i_cpu_has_amx(void);

/* Turns an op prepared by hqrt_i_vnni_prepare into an AMX one (kind HQRT_KIND_AMX, same packing,
 * more scratch) when its shape is one where the AMX kernel wins; otherwise leaves it. */
void hqrt_i_amx_adopt(const hqrt_conv_params_t *kp, hqrt_dims_t out, hqrt_i_prepared_t *prep);

/* hqrt_i_vnni_rows for an op adopted by hqrt_i_amx_adopt (tdpbusd: u8 x s8 -> int32 like
 * vpdpbusd, so the same sums), with the same samples and stride. */
void hqrt_i_amx_rows(const hqrt_i_prepared_t *prep, const hqrt_conv_params_t *kp, hqrt_dims_t in,
                     const uint8_t *input, const hqrt_addend_t *addend, hqrt_dims_t out,
                     uint8_t *output, int64_t samples, size_t stride, int64_t row_begin,
                     int64_t row_end, uint8_t *scratch);

/* Scratch hqrt_i_amx_rows needs for several samples. */
size_t hqrt_i_amx_samples_scratch(const hqrt_i_prepared_t *prep);

/* Bytes of packed weights for hqrt_i_dw512_pack, and of scratch for hqrt_i_dw_rows_avx512. */
size_t hqrt_i_dw512_packed_bytes(int64_t taps, int32_t c, int64_t cpad);
size_t hqrt_i_dw512_scratch(int64_t out_w, int32_t c, int64_t cpad);

/* Packs a depthwise layer's [kh, kw, 1, c] weights (weight_bits 4/8: int8) for
 * hqrt_i_dw_rows_avx512 into packed (hqrt_i_dw512_packed_bytes, 64-aligned), with the output
 * stage's int32 constants. Returns bit 0 when those apply (then prep->finish points at them:
 * hqrt_i_dw512_finish), bit 1 when a 1x1 window's flat-row constants were made too (then a
 * stride-1 unpadded layer may set prep->direct). */
int hqrt_i_dw512_pack(const hqrt_conv_params_t *kp, const void *w, const int64_t *bias,
                      int64_t taps, int32_t c, int64_t cpad, int32_t *packed);

/* Where hqrt_i_dw512_pack put the stage's constants in packed. */
const void *hqrt_i_dw512_finish(const int32_t *packed, int64_t taps, int64_t cpad);

/* The depthwise quads (hqrt_kernels_dwq.c): whether a layer takes them on this CPU (AVX512-VNNI,
 * no dilation, stride 1 across, 4/8-bit weights, 2 to 64 taps, at most 8 columns, and
 * HQRT_NO_DW_QUADS unset); the bytes of their weights ([kernel_h][quads][cpad] int32, four int8
 * taps per lane), packed from hqrt_i_dw512_pack's [taps][cpad] int32 copy; their scratch; and
 * output rows [row_begin, row_end) of an op prepared with prep->dw_quads (its int32 stage in
 * prep->finish, the quads' weights 64-aligned after hqrt_i_dw512_packed_bytes). */
bool hqrt_i_dwq_apply(const hqrt_conv_params_t *kp, int64_t taps);
size_t hqrt_i_dwq_weight_bytes(const hqrt_conv_params_t *kp, int64_t cpad);
void hqrt_i_dwq_pack(const hqrt_conv_params_t *kp, const int32_t *weights, int64_t cpad,
                     int32_t *quads);
size_t hqrt_i_dwq_scratch(const hqrt_conv_params_t *kp, int64_t out_w, int32_t c);
void hqrt_i_dwq_rows(const hqrt_i_prepared_t *prep, const hqrt_conv_params_t *kp, hqrt_dims_t in,
                     const uint8_t *input, const int64_t *bias, hqrt_dims_t out, uint8_t *output,
                     int64_t row_begin, int64_t row_end, uint8_t *scratch);
#endif

#endif
