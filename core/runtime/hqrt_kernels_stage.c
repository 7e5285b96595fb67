/* hqrt_kernels_stage.c — vector lanes for the per-element kernels: the output stage applied to
 * a run of accumulators (hqrt_i_stage_row: depthwise conv, the conv fallbacks, activations; with
 * a residual addend hqrt_i_stage_row_addend; whole pixels of few channels hqrt_i_stage_pixels),
 * hqrt_elementwise (hqrt_i_elementwise_fast) and hqrt_activation (hqrt_i_activation_fast).
 * AVX-512BW or AVX2, chosen at run time by CPU flag (hqrt_i_vector_isa); the reference kernels
 * otherwise.
 *
 * Bit-exact by construction: each step is the reference's step (hqrt_numerics.h) on the
 * reference's own value. The 32-bit path's requantization is hqrt_requantize32 as written there
 * (saturating pre-shift, SRDHM with gemmlowp's nudge and truncation, RoundingDivideByPOT), or on
 * AVX2, where every lane shifts right, the two roundings merged into one exact floor (rq8_t);
 * the 64-bit path (16-bit layers, 96-bit intermediates) runs the reference. The output stage and
 * elementwise ops run in int32 lanes (16 per zmm on AVX-512, 8 per ymm on AVX2), forming the
 * reference's int64 values only where they can leave int32; luts are looked up by 4-byte
 * gathers kept inside the table, on AVX2 8-bit luts by vpshufb over the finished run
 * (lut8_apply_avx2). AVX-512 elementwise ops with a lut keep int64 lanes (8 x int64,
 * GCC vector extensions in always_inline functions), each lane the reference's int64 value,
 * except products of two 8-bit operands, which take the VNNI conv's int32 finish (ew_mult8_t). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hqrt_fast.h"
#include "hqrt_kernels_fast_internal.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define HQRT_HAVE_VECTOR_STAGE 1
#include <immintrin.h>
#endif

#define LANES 8

#ifdef HQRT_HAVE_VECTOR_STAGE
/* Vectors pass between static always_inline functions only, never across a call. */
#pragma GCC diagnostic ignored "-Wpsabi"

#define INLINE static inline __attribute__((always_inline))
#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
#define AVX2_TARGET __attribute__((target("avx2")))

typedef int64_t lanes_t __attribute__((vector_size(LANES * 8)));
typedef int32_t lanes32_t __attribute__((vector_size(LANES * 4)));
typedef uint16_t lanes16_t __attribute__((vector_size(LANES * 2)));
typedef uint8_t lanes8_t __attribute__((vector_size(LANES)));

/* The answer is the same for every thread: threads that race to the first call store the same
 * value, and the atomic makes that race a defined one. */
static int cpu_isa(void)
{
    static _Atomic int cached = -1;
    int isa = atomic_load_explicit(&cached, memory_order_relaxed);
    if (isa < 0) {
        __builtin_cpu_init();
        isa = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")
                  ? HQRT_ISA_AVX512
              : __builtin_cpu_supports("avx2") ? HQRT_ISA_AVX2
                                               : HQRT_ISA_REFERENCE;
        atomic_store_explicit(&cached, isa, memory_order_relaxed);
    }
    return isa;
}
#endif

int hqrt_i_vector_isa(void)
{
#ifdef HQRT_HAVE_VECTOR_STAGE
    if (getenv("HQRT_NO_FAST"))
        return HQRT_ISA_REFERENCE;
    int isa = cpu_isa();
    return isa == HQRT_ISA_AVX512 && getenv("HQRT_NO_VNNI") ? HQRT_ISA_AVX2 : isa;
#else
    return HQRT_ISA_REFERENCE;
#endif
}

#ifdef HQRT_HAVE_VECTOR_STAGE

INLINE lanes_t splat(int64_t v)
{
    return (lanes_t){0} + v;
}

/* a where mask (-1), else b */
INLINE lanes_t pick(lanes_t mask, lanes_t a, lanes_t b)
{
    return (mask & a) | (~mask & b);
}

INLINE lanes_t lanes_min(lanes_t a, lanes_t b)
{
    return pick(a < b, a, b);
}

INLINE lanes_t lanes_max(lanes_t a, lanes_t b)
{
    return pick(a > b, a, b);
}

INLINE lanes_t clamp32(lanes_t v)
{
    return lanes_min(lanes_max(v, splat(INT32_MIN)), splat(INT32_MAX));
}

/* hqrt_requantize32 on lanes holding int32 values (m, shift as the reference allows). */
INLINE lanes_t requantize32(lanes_t x, lanes_t m, lanes_t shift)
{
    const lanes_t zero = splat(0);
    lanes_t left = lanes_max(shift, zero), right = lanes_max(-shift, zero);
    lanes_t xs = clamp32(x << left); /* |x| < 2^31, left <= 30: exact in int64 */
    /* hqrt_srdhm: |ab| <= 2^62; nudge; truncation toward zero = floor after adding 2^31 - 1
     * to a negative value; the one overflow (INT32_MIN^2 -> 2^31) saturates */
    lanes_t ab = xs * m;
    lanes_t v = ab + pick(ab >= zero, splat((int64_t)1 << 30), splat(1 - ((int64_t)1 << 30)));
    v += (v < zero) & splat(((int64_t)1 << 31) - 1);
    lanes_t q = lanes_min(v >> 31, splat(INT32_MAX));
    /* hqrt_rounding_divide_by_pot; a mask is -1 where true, so subtracting it adds 1 */
    lanes_t mask = (splat(1) << right) - 1;
    lanes_t threshold = (mask >> 1) - (q < zero);
    return (q >> right) - ((q & mask) > threshold);
}

/* The 32-bit-path stage constants of LANES consecutive channels (or one, splatted). */
typedef struct stage_lanes {
    lanes_t m, shift;         /* multiplier, shift */
    lanes_t m_neg, shift_neg; /* for negative values, when has_neg */
} stage_lanes_t;

INLINE lanes_t load_params(const int32_t *a, int32_t count, int32_t ch, int n)
{
    if (count == 1)
        return splat(a[0]);
    lanes32_t v = {0};
    memcpy(&v, a + ch, (size_t)n * sizeof(int32_t));
    return __builtin_convertvector(v, lanes_t);
}

INLINE void stage_load(const hqrt_output_stage_t *s, int32_t ch, int n, stage_lanes_t *k)
{
    k->m = load_params(s->multiplier, s->count, ch, n);
    k->shift = load_params(s->shift, s->count, ch, n);
    if (s->multiplier_neg) {
        k->m_neg = load_params(s->multiplier_neg, s->count, ch, n);
        k->shift_neg = load_params(s->shift_neg, s->count, ch, n);
    }
}

/* y of hqrt_output_code (32-bit path). */
INLINE lanes_t stage_y(const hqrt_output_stage_t *s, const stage_lanes_t *k, lanes_t acc)
{
    lanes_t m = k->m, shift = k->shift;
    if (s->multiplier_neg) {
        lanes_t negative = acc < splat(0);
        m = pick(negative, k->m_neg, m);
        shift = pick(negative, k->shift_neg, shift);
    }
    return requantize32(clamp32(acc), m, shift);
}

/* y of hqrt_output_code_sum (32-bit path): z carries HQRT_SUM_FRAC_BITS fraction bits. */
INLINE lanes_t stage_y_sum(const hqrt_output_stage_t *s, const stage_lanes_t *k, lanes_t z)
{
    const lanes_t zero = splat(0);
    if (s->multiplier_neg)
        z = pick(z < zero, requantize32(clamp32(z), k->m_neg, k->shift_neg), z);
    const lanes_t mask = splat(((int64_t)1 << HQRT_SUM_FRAC_BITS) - 1);
    return (z >> HQRT_SUM_FRAC_BITS) - ((z & mask) > ((mask >> 1) - (z < zero)));
}

/* The reference's finish: lut or out_zp, then act_min/act_max; n codes stored at out[0..n). */
INLINE void stage_store(const hqrt_output_stage_t *s, lanes_t y, int n, void *out)
{
    lanes_t code;
    if (s->lut) {
        lanes_t pre =
            lanes_min(lanes_max(y + s->pre_zp, splat(0)), splat(hqrt_code_max(s->out_bits)));
        int64_t idx[LANES], looked[LANES];
        memcpy(idx, &pre, sizeof idx);
        for (int l = 0; l < LANES; l++)
            looked[l] = hqrt_load(s->lut, s->out_bits, (size_t)(l < n ? idx[l] : 0));
        memcpy(&code, looked, sizeof code);
    } else {
        code = y + s->out_zp;
    }
    code = lanes_min(lanes_max(code, splat(s->act_min)), splat(s->act_max));
    if (s->out_bits == 16) {
        lanes16_t c = __builtin_convertvector(code, lanes16_t);
        memcpy(out, &c, (size_t)n * 2);
    } else {
        lanes8_t c = __builtin_convertvector(code, lanes8_t);
        memcpy(out, &c, (size_t)n);
    }
}

/* The output stage without a lut on the 32-bit path in int32 lanes (16 per zmm): the same steps
 * as requantize32 / stage_store, with each int64 intermediate of the reference formed where it
 * can exceed int32 (the bias sum, the left shift and the SRDHM product, as vpmuldq's even and
 * odd lanes) and narrowed with saturation exactly where the reference clamps. */
AVX512_TARGET static inline __m512i sat_sum32(__m512i acc, const int64_t *bias, __mmask16 k)
{
    /* clamp32((int64)acc + bias) of 16 lanes, as two halves of 8 int64 */
    __m512i lo = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(acc));
    __m512i hi = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(acc, 1));
    lo = _mm512_add_epi64(lo, _mm512_maskz_loadu_epi64((__mmask8)k, bias));
    hi = _mm512_add_epi64(hi, _mm512_maskz_loadu_epi64((__mmask8)(k >> 8), bias + 8));
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtsepi64_epi32(lo)),
                              _mm512_cvtsepi64_epi32(hi), 1);
}

AVX512_TARGET static inline __m512i requantize32_i32(__m512i x, __m512i m, __m512i shift)
{
    const __m512i zero = _mm512_setzero_si512();
    __m512i left = _mm512_max_epi32(shift, zero),
            right = _mm512_max_epi32(_mm512_sub_epi32(zero, shift), zero);
    /* xs = clamp32(x << left), the shift in int64 */
    __m512i xlo = _mm512_sllv_epi64(_mm512_cvtepi32_epi64(_mm512_castsi512_si256(x)),
                                    _mm512_cvtepi32_epi64(_mm512_castsi512_si256(left)));
    __m512i xhi = _mm512_sllv_epi64(_mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(x, 1)),
                                    _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(left, 1)));
    __m512i xs = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtsepi64_epi32(xlo)),
                                    _mm512_cvtsepi64_epi32(xhi), 1);
    /* SRDHM: ab = xs * m in int64 (even lanes, then odd lanes moved down), nudge, truncation
     * toward zero (floor after adding 2^31 - 1 to a negative value), saturation at INT32_MAX */
    const __m512i pos = _mm512_set1_epi64((int64_t)1 << 30),
                  neg = _mm512_set1_epi64(1 - ((int64_t)1 << 30));
    const __m512i bias_neg = _mm512_set1_epi64(((int64_t)1 << 31) - 1),
                  top = _mm512_set1_epi64(INT32_MAX);
    __m512i q2[2];
    for (int half = 0; half < 2; half++) {
        __m512i a = half ? _mm512_srli_epi64(xs, 32) : xs, b = half ? _mm512_srli_epi64(m, 32) : m;
        __m512i ab = _mm512_mul_epi32(a, b);
        __m512i v = _mm512_add_epi64(
            ab, _mm512_mask_blend_epi64(_mm512_cmpge_epi64_mask(ab, zero), neg, pos));
        v = _mm512_mask_add_epi64(v, _mm512_cmplt_epi64_mask(v, zero), v, bias_neg);
        q2[half] = _mm512_min_epi64(_mm512_srai_epi64(v, 31), top);
    }
    __m512i q = _mm512_mask_blend_epi32((__mmask16)0xAAAA, q2[0], _mm512_slli_epi64(q2[1], 32));
    /* RoundingDivideByPOT by right (0..31) */
    __m512i mask =
        _mm512_sub_epi32(_mm512_sllv_epi32(_mm512_set1_epi32(1), right), _mm512_set1_epi32(1));
    __m512i threshold =
        _mm512_mask_add_epi32(_mm512_srai_epi32(mask, 1), _mm512_cmplt_epi32_mask(q, zero),
                              _mm512_srai_epi32(mask, 1), _mm512_set1_epi32(1));
    __m512i r = _mm512_srav_epi32(q, right);
    return _mm512_mask_add_epi32(r, _mm512_cmpgt_epi32_mask(_mm512_and_si512(q, mask), threshold),
                                 r, _mm512_set1_epi32(1));
}

/* lut[clamp(y + pre_zp, 0, max)] for 16 lanes (mask k), by 4-byte gathers that stay inside
 * the table: the 4 bytes that END at the entry (the entry is their top byte or half), or, for
 * the first entries, the 4 bytes that start there (the entry is their low byte or half). */
AVX512_TARGET static inline __m512i lut_lookup(const hqrt_output_stage_t *s, __m512i y, __mmask16 k)
{
    const int32_t max = hqrt_code_max(s->out_bits), esize = s->out_bits == 16 ? 2 : 1;
    __m512i idx = _mm512_min_epi32(
        _mm512_max_epi32(_mm512_add_epi32(y, _mm512_set1_epi32(s->pre_zp)), _mm512_setzero_si512()),
        _mm512_set1_epi32(max));
    __m512i byte = _mm512_mullo_epi32(idx, _mm512_set1_epi32(esize)); /* first byte of the entry */
    __mmask16 ends = _mm512_cmpge_epi32_mask(byte, _mm512_set1_epi32(4 - esize));
    __m512i start = _mm512_mask_sub_epi32(byte, ends, byte, _mm512_set1_epi32(4 - esize));
    __m512i word = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), k, start, s->lut, 1);
    __m512i shift = _mm512_maskz_mov_epi32(ends, _mm512_set1_epi32(32 - 8 * esize));
    return _mm512_and_si512(_mm512_srlv_epi32(word, shift), _mm512_set1_epi32(max));
}

AVX512_TARGET static void stage_row_i32_avx512(const hqrt_output_stage_t *s, const int32_t *acc,
                                               const int64_t *bias, int32_t ch0, int32_t n,
                                               void *out)
{
    const bool per_channel = s->count != 1, has_neg = s->multiplier_neg != NULL;
    __m512i m = _mm512_set1_epi32(s->multiplier[0]), sh = _mm512_set1_epi32(s->shift[0]);
    __m512i mn = has_neg ? _mm512_set1_epi32(s->multiplier_neg[0]) : m;
    __m512i shn = has_neg ? _mm512_set1_epi32(s->shift_neg[0]) : sh;
    /* y + out_zp can only wrap for |y| >= 2^31 - 2^16; beyond +-2^20 the clamp to the codes'
     * range gives act_min or act_max either way */
    const __m512i ylo = _mm512_set1_epi32(-(1 << 20)), yhi = _mm512_set1_epi32(1 << 20);
    const __m512i zp = _mm512_set1_epi32(s->out_zp), amin = _mm512_set1_epi32(s->act_min),
                  amax = _mm512_set1_epi32(s->act_max);
    for (int32_t j = 0; j < n; j += 16) {
        __mmask16 k = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        if (per_channel) {
            m = _mm512_maskz_loadu_epi32(k, s->multiplier + ch0 + j);
            sh = _mm512_maskz_loadu_epi32(k, s->shift + ch0 + j);
            if (has_neg) {
                mn = _mm512_maskz_loadu_epi32(k, s->multiplier_neg + ch0 + j);
                shn = _mm512_maskz_loadu_epi32(k, s->shift_neg + ch0 + j);
            }
        }
        __m512i a = _mm512_maskz_loadu_epi32(k, acc + j);
        if (bias)
            a = sat_sum32(a, bias + ch0 + j, k); /* |bias| < 2^62: the sign survives the clamp */
        __m512i mm = m, ss = sh;
        if (has_neg) {
            __mmask16 negative = _mm512_cmplt_epi32_mask(a, _mm512_setzero_si512());
            mm = _mm512_mask_blend_epi32(negative, m, mn);
            ss = _mm512_mask_blend_epi32(negative, sh, shn);
        }
        __m512i y = requantize32_i32(a, mm, ss);
        y = _mm512_min_epi32(_mm512_max_epi32(y, ylo), yhi);
        __m512i code = s->lut ? lut_lookup(s, y, k) : _mm512_add_epi32(y, zp);
        code = _mm512_min_epi32(_mm512_max_epi32(code, amin), amax);
        if (s->out_bits == 16)
            _mm512_mask_cvtepi32_storeu_epi16((uint16_t *)out + j, k, code);
        else
            _mm512_mask_cvtepi32_storeu_epi8((uint8_t *)out + j, k, code);
    }
}

/* ---- AVX2: the 32-bit path in 8 int32 lanes ---------------------------------------------------
 * The steps of requantize32 / stage_store with each int64 intermediate of the reference formed
 * where it can exceed int32: the bias sum (4 int64 lanes per half), the SRDHM product (vpmuldq
 * on even and odd lanes); the left shift is checked for overflow by shifting back. AVX2 has no
 * 64-bit arithmetic shift, so floor(v / 2^31) is taken from a logical shift's low 32 bits: the
 * quotient fits int32 except for INT32_MIN * INT32_MIN, which the reference saturates. */

/* clamp32(x << left) for left in 0..30 */
AVX2_TARGET static inline __m256i shl_sat_avx2(__m256i x, __m256i left)
{
    __m256i s = _mm256_sllv_epi32(x, left);
    __m256i kept = _mm256_cmpeq_epi32(_mm256_srav_epi32(s, left), x);
    /* INT32_MAX for x >= 0, INT32_MIN for x < 0 */
    __m256i sat = _mm256_xor_si256(_mm256_set1_epi32(INT32_MAX), _mm256_srai_epi32(x, 31));
    return _mm256_blendv_epi8(sat, s, kept);
}

/* hqrt_srdhm: with the nudge, truncation toward zero of (ab + 2^30) / 2^31 for ab >= 0 and of
 * (ab + 1 - 2^30) / 2^31 for ab < 0 are both floor((ab + 2^30) / 2^31) (for ab < 0 the sum is
 * negative and truncation is floor((ab + 1 - 2^30 + 2^31 - 1) / 2^31)); the floor's low 32 bits
 * are a logical shift's. The one quotient beyond int32, INT32_MIN * INT32_MIN, saturates. */
AVX2_TARGET static inline __m256i srdhm_avx2(__m256i a, __m256i b)
{
    const __m256i nudge = _mm256_set1_epi64x((int64_t)1 << 30);
    __m256i even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(a, b), nudge), 31);
    __m256i odd = _mm256_add_epi64(
        _mm256_mul_epi32(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(b, 32)), nudge);
    /* odd's quotient, bits 31.. of the sum, into the high halves */
    __m256i q = _mm256_blend_epi32(even, _mm256_slli_epi64(_mm256_srli_epi64(odd, 31), 32), 0xAA);
    const __m256i min = _mm256_set1_epi32(INT32_MIN);
    __m256i b_min = _mm256_cmpeq_epi32(b, min);
    if (_mm256_testz_si256(b_min, b_min))
        return q;
    __m256i both = _mm256_and_si256(_mm256_cmpeq_epi32(a, min), b_min);
    return _mm256_blendv_epi8(q, _mm256_set1_epi32(INT32_MAX), both);
}

/* hqrt_rounding_divide_by_pot by right (0..31) */
AVX2_TARGET static inline __m256i rdbp_avx2(__m256i q, __m256i right)
{
    const __m256i zero = _mm256_setzero_si256(), one = _mm256_set1_epi32(1);
    __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
    /* a mask is -1 where true, so subtracting it adds 1 */
    __m256i threshold = _mm256_sub_epi32(_mm256_srai_epi32(mask, 1), _mm256_cmpgt_epi32(zero, q));
    __m256i r = _mm256_srav_epi32(q, right);
    return _mm256_sub_epi32(r, _mm256_cmpgt_epi32(_mm256_and_si256(q, mask), threshold));
}

AVX2_TARGET static inline __m256i requantize32_avx2(__m256i x, __m256i m, __m256i shift)
{
    const __m256i zero = _mm256_setzero_si256();
    __m256i left = _mm256_max_epi32(shift, zero);
    __m256i right = _mm256_max_epi32(_mm256_sub_epi32(zero, shift), zero);
    if (!_mm256_testz_si256(left, left)) /* most stages shift right only */
        x = shl_sat_avx2(x, left);
    return rdbp_avx2(srdhm_avx2(x, m), right);
}

/* clamp32 of 4 int64 lanes, the results in the low 4 int32 lanes (in order) */
AVX2_TARGET static inline __m128i narrow_sat_half_avx2(__m256i v)
{
    const __m256i hi = _mm256_set1_epi64x(INT32_MAX), lo = _mm256_set1_epi64x(INT32_MIN);
    v = _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
    v = _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v));
    return _mm256_castsi256_si128(
        _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6)));
}

/* clamp32((int64)acc + bias) of 8 lanes (|bias| < 2^62: the sign survives the clamp) */
AVX2_TARGET static inline __m256i sat_sum32_avx2(__m256i acc, const int64_t *bias)
{
    __m256i lo = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(acc)),
                                  _mm256_loadu_si256((const __m256i *)(const void *)bias));
    __m256i hi = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(acc, 1)),
                                  _mm256_loadu_si256((const __m256i *)(const void *)(bias + 4)));
    return _mm256_inserti128_si256(_mm256_castsi128_si256(narrow_sat_half_avx2(lo)),
                                   narrow_sat_half_avx2(hi), 1);
}

/* lut[clamp(y + pre_zp, 0, max)] for 8 lanes, by 4-byte gathers that stay inside the table (as
 * lut_lookup: the 4 bytes that end at the entry, or for the first entries the 4 that start
 * there). Every lane's index is clamped into the table, so no lane needs a mask. */
AVX2_TARGET static inline __m256i lut_lookup_avx2(const hqrt_output_stage_t *s, __m256i y)
{
    const int32_t max = hqrt_code_max(s->out_bits), esize = s->out_bits == 16 ? 2 : 1;
    __m256i idx = _mm256_min_epi32(
        _mm256_max_epi32(_mm256_add_epi32(y, _mm256_set1_epi32(s->pre_zp)), _mm256_setzero_si256()),
        _mm256_set1_epi32(max));
    __m256i byte = _mm256_slli_epi32(idx, esize - 1); /* first byte of the entry */
    __m256i ends = _mm256_cmpgt_epi32(byte, _mm256_set1_epi32(3 - esize));
    __m256i start = _mm256_sub_epi32(byte, _mm256_and_si256(ends, _mm256_set1_epi32(4 - esize)));
    __m256i word = _mm256_i32gather_epi32((const int *)(const void *)s->lut, start, 1);
    __m256i shift = _mm256_and_si256(ends, _mm256_set1_epi32(32 - 8 * esize));
    return _mm256_and_si256(_mm256_srlv_epi32(word, shift), _mm256_set1_epi32(max));
}

/* n (<= 8) codes of 8 lanes (each in [0, 65535]) stored at out as `bits`-bit codes. */
AVX2_TARGET static inline void store_codes_avx2(__m256i code, int32_t bits, int n, void *out)
{
    /* codes lie in [0, 65535]: unsigned saturation keeps them */
    __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(code), _mm256_extracti128_si256(code, 1));
    if (bits == 16) {
        if (n == 8)
            _mm_storeu_si128((__m128i *)out, w);
        else {
            uint16_t t[8];
            _mm_storeu_si128((__m128i *)(void *)t, w);
            memcpy(out, t, (size_t)n * 2);
        }
    } else {
        __m128i b = _mm_packus_epi16(w, w);
        if (n == 8)
            _mm_storel_epi64((__m128i *)out, b);
        else {
            uint8_t t[16];
            _mm_storeu_si128((__m128i *)(void *)t, b);
            memcpy(out, t, (size_t)n);
        }
    }
}

/* The finish of 8 lanes: y clamped to +-2^20 (beyond it the clamp to the codes' range gives
 * act_min or act_max either way), lut or out_zp, act_min/act_max; n (<= 8) codes stored. */
AVX2_TARGET static inline void finish_store_avx2(const hqrt_output_stage_t *s, __m256i y, int n,
                                                 void *out)
{
    y = _mm256_min_epi32(_mm256_max_epi32(y, _mm256_set1_epi32(-(1 << 20))),
                         _mm256_set1_epi32(1 << 20));
    __m256i code =
        s->lut ? lut_lookup_avx2(s, y) : _mm256_add_epi32(y, _mm256_set1_epi32(s->out_zp));
    code = _mm256_min_epi32(_mm256_max_epi32(code, _mm256_set1_epi32(s->act_min)),
                            _mm256_set1_epi32(s->act_max));
    store_codes_avx2(code, s->out_bits, n, out);
}

/* ---- AVX2: the merged requantization (hqrt_i_rq_merged_x8's form) in 8 int32 lanes ------------
 * For shift <= -1 (r = -shift in 1..31: no pre-shift), hqrt_requantize32(x, m, shift) is one
 * floor of one int64 sum (the derivation at hqrt_i_fin_t, which holds for m of either sign:
 * SRDHM = floor(A / 2^31) with A = x*m + 2^30, then RoundingDivideByPOT):
 *   y = floor(v / 2^(31 + r)),   v = x*m + 2^30 + 2^(30 + r) - [A < 0] * 2^31.
 * SRDHM's one overflow needs no case: for x = m = INT32_MIN the reference rounds INT32_MAX / 2^r
 * and the formula floors (2^62 + 2^30 + 2^(30 + r)) / 2^(31 + r), both 2^(31 - r) for r >= 1.
 * AVX2 has no 64-bit arithmetic shift (vpsravq), so v is offset by 2^63 and shifted logically.
 * Bounds: |x|, |m| <= 2^31 give -2^62 < x*m <= 2^62, so
 *   -2^62 < v <= 2^62 + 2^61 + 2^30,   0 < v + 2^63 < 2^64,
 * and as 2^63 is a multiple of 2^(31 + r), the unsigned quotient (v + 2^63) >> (31 + r) is
 * exactly y + 2^(32 - r). y is an int32 (the reference's own result), so y is that quotient's
 * low 32 bits minus 2^(32 - r) modulo 2^32. The offset rides in the rounding constant (adding it
 * modulo 2^64 gives the unsigned sum). vpmuldq multiplies the even lanes; the odd lanes' sums are
 * shifted by r - 1 = (31 + r) - 32 only, which leaves the same 32 bits in the lane's high half,
 * where the result wants them. The constants are made once per vector of channels (rq8_make)
 * and serve every pixel of a call. */
typedef struct rq8 {
    __m256i m, m_odd; /* multipliers: channel l in lane l; channel 2i+1 in lane 2i */
    __m256i round[2]; /* [even/odd channels] 2^63 + 2^30 + 2^(30 + r), int64 */
    __m256i shift[2]; /* 31 + r (even channels), r - 1 (odd channels), int64 */
    __m256i offset;   /* 2^(32 - r) modulo 2^32, int32 */
} rq8_t;

/* k from 8 channels' multipliers and shifts; false when a lane is outside the merged form (a
 * shift >= 0), which requantize32_avx2 then takes. */
AVX2_TARGET static inline bool rq8_make(__m256i m, __m256i shift, rq8_t *k)
{
    const __m256i bad = _mm256_cmpgt_epi32(shift, _mm256_set1_epi32(-1));
    if (!_mm256_testz_si256(bad, bad))
        return false;
    const __m256i r = _mm256_sub_epi32(_mm256_setzero_si256(), shift);
    const __m256i r_even = _mm256_and_si256(r, _mm256_set1_epi64x(0xFFFFFFFF)),
                  r_odd = _mm256_srli_epi64(r, 32);
    const __m256i base = _mm256_set1_epi64x(INT64_MIN + ((int64_t)1 << 30)), /* 2^63 + 2^30 */
        half = _mm256_set1_epi64x((int64_t)1 << 30);
    k->m = m;
    k->m_odd = _mm256_srli_epi64(m, 32);
    k->round[0] = _mm256_add_epi64(base, _mm256_sllv_epi64(half, r_even));
    k->round[1] = _mm256_add_epi64(base, _mm256_sllv_epi64(half, r_odd));
    k->shift[0] = _mm256_add_epi64(r_even, _mm256_set1_epi64x(31));
    k->shift[1] = _mm256_sub_epi64(r_odd, _mm256_set1_epi64x(1));
    k->offset = _mm256_sllv_epi32(_mm256_set1_epi32(1), _mm256_sub_epi32(_mm256_set1_epi32(32), r));
    return true;
}

/* hqrt_requantize32 of 8 lanes by k. exact_neg false leaves out the correction where A < 0: such
 * a lane then gives y or y + 1 (the numerators differ by 2^31 <= 2^(31 + r)), both <= 0 (A + 2^(30
 * + r) < 2^(31 + r)), which is only right when the finish maps every y <= 0 to one code. */
AVX2_TARGET static inline __m256i rq8_apply(__m256i x, const rq8_t *k, const bool exact_neg)
{
    const __m256i ab_even = _mm256_mul_epi32(x, k->m);
    const __m256i ab_odd = _mm256_mul_epi32(_mm256_srli_epi64(x, 32), k->m_odd);
    __m256i v_even = _mm256_add_epi64(ab_even, k->round[0]);
    __m256i v_odd = _mm256_add_epi64(ab_odd, k->round[1]);
    if (exact_neg) { /* - 2^31 where A < 0, that is x*m < -2^30: the mask (-1) shifted by 31 */
        const __m256i limit = _mm256_set1_epi64x(-((int64_t)1 << 30));
        v_even =
            _mm256_add_epi64(v_even, _mm256_slli_epi64(_mm256_cmpgt_epi64(limit, ab_even), 31));
        v_odd = _mm256_add_epi64(v_odd, _mm256_slli_epi64(_mm256_cmpgt_epi64(limit, ab_odd), 31));
    }
    const __m256i q = _mm256_blend_epi32(_mm256_srlv_epi64(v_even, k->shift[0]),
                                         _mm256_srlv_epi64(v_odd, k->shift[1]), 0xAA);
    return _mm256_sub_epi32(q, k->offset);
}

/* hqrt_requantize32 of 8 lanes: by k when made (merged), else by the separate steps. */
AVX2_TARGET static inline __m256i rq8_or_steps(__m256i x, bool merged, const rq8_t *k, __m256i m,
                                               __m256i shift)
{
    return merged ? rq8_apply(x, k, true) : requantize32_avx2(x, m, shift);
}

/* The code step without a 16-bit lut: clamp(y, lo, hi) + off, which is the reference's
 * clamp(y + out_zp, act_min, act_max) with off = out_zp, lo/hi = act_min/act_max - out_zp (y is
 * an int32, the bounds within +-65535: nothing wraps); with an 8-bit lut the table index
 * clamp(y + pre_zp, 0, 255) with off = pre_zp, lo/hi = -pre_zp, 255 - pre_zp, looked up
 * afterwards (lut8_apply_avx2). */
typedef struct fin8 {
    __m256i off, lo, hi;
} fin8_t;

AVX2_TARGET static inline fin8_t fin8_make(const hqrt_output_stage_t *s)
{
    const int32_t off = s->lut ? s->pre_zp : s->out_zp;
    const int32_t lo = (s->lut ? 0 : s->act_min) - off;
    const int32_t hi = (s->lut ? hqrt_code_max(s->out_bits) : s->act_max) - off;
    return (fin8_t){_mm256_set1_epi32(off), _mm256_set1_epi32(lo), _mm256_set1_epi32(hi)};
}

/* The 256-entry byte table looked up for 32 codes: each 16-entry part of it by vpshufb with the
 * codes' low nibble, then the part the high nibble names chosen by a tree of byte blends (bit 4
 * between neighbouring parts, then bit 5, 6, 7; vpblendvb reads each byte's top bit, where a
 * shift of 16-bit lanes by 3, 2, 1 puts bit 4, 5, 6 of that byte). */
AVX2_TARGET static inline __m256i lut8_lookup_avx2(const uint8_t *table, __m256i x)
{
    const __m256i low = _mm256_and_si256(x, _mm256_set1_epi8(0x0f));
    const __m256i bit4 = _mm256_slli_epi16(x, 3), bit5 = _mm256_slli_epi16(x, 2),
                  bit6 = _mm256_slli_epi16(x, 1);
    __m256i t[8];
    for (int p = 0; p < 8; p++) {
        const __m256i even =
            _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128(
                                    (const __m128i *)(const void *)(table + 32 * p))),
                                low);
        const __m256i odd =
            _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128(
                                    (const __m128i *)(const void *)(table + 32 * p + 16))),
                                low);
        t[p] = _mm256_blendv_epi8(even, odd, bit4);
    }
    for (int p = 0; p < 4; p++)
        t[p] = _mm256_blendv_epi8(t[2 * p], t[2 * p + 1], bit5);
    for (int p = 0; p < 2; p++)
        t[p] = _mm256_blendv_epi8(t[2 * p], t[2 * p + 1], bit6);
    return _mm256_blendv_epi8(t[0], t[1], x);
}

/* codes[i] = clamp(table[codes[i]], act_min, act_max) for n 8-bit codes, in place. */
AVX2_TARGET static void lut8_apply_avx2(const uint8_t *table, int32_t act_min, int32_t act_max,
                                        uint8_t *codes, size_t n)
{
    const __m256i lo = _mm256_set1_epi8((char)act_min), hi = _mm256_set1_epi8((char)act_max);
    for (size_t i = 0; i < n; i += 32) {
        if (n - i >= 32) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(codes + i));
            x = _mm256_min_epu8(_mm256_max_epu8(lut8_lookup_avx2(table, x), lo), hi);
            _mm256_storeu_si256((__m256i *)(void *)(codes + i), x);
        } else {
            uint8_t t[32] = {0};
            memcpy(t, codes + i, n - i);
            __m256i x = _mm256_loadu_si256((const __m256i *)(void *)t);
            x = _mm256_min_epu8(_mm256_max_epu8(lut8_lookup_avx2(table, x), lo), hi);
            _mm256_storeu_si256((__m256i *)(void *)t, x);
            memcpy(codes + i, t, n - i);
        }
    }
}

/* The code step of 8 lanes (n <= 8 stored): by f, or with a 16-bit lut by finish_store_avx2; an
 * 8-bit lut's index is stored, for lut8_apply_avx2 over the run afterwards. */
AVX2_TARGET static inline void finish_codes_avx2(const hqrt_output_stage_t *s, const fin8_t *f,
                                                 __m256i y, int n, void *out)
{
    if (s->lut && s->out_bits == 16)
        finish_store_avx2(s, y, n, out);
    else
        store_codes_avx2(
            _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(y, f->lo), f->hi), f->off),
            s->out_bits, n, out);
}

/* 8 lanes of the stage's constants from channel ch on (count == channels) */
AVX2_TARGET static inline __m256i load_consts_avx2(const int32_t *a, int32_t ch, int n)
{
    if (n == 8)
        return _mm256_loadu_si256((const __m256i *)(const void *)(a + ch));
    int32_t t[8] = {0};
    memcpy(t, a + ch, (size_t)n * sizeof(int32_t));
    return _mm256_loadu_si256((const __m256i *)(void *)t);
}

/* One vector of w (<= 8) channels ch.. over `pixels` runs (accumulators at acc + px * astride,
 * codes at out + px * ostride bytes), any stage form: y by the merged requantization where
 * rq8_make allows it, else by requantize32_avx2 with the negative side's constants where the value
 * is negative; the code step by fin8_t, or with a 16-bit lut by finish_store_avx2. */
AVX2_TARGET __attribute__((noinline)) static void
stage_vector_any_avx2(const hqrt_output_stage_t *s, const int32_t *acc, size_t astride,
                      const int64_t *bias, int32_t ch, int w, int32_t pixels, uint8_t *out,
                      size_t ostride)
{
    const bool per_channel = s->count != 1, has_neg = s->multiplier_neg != NULL;
    const bool lut16 = s->lut && s->out_bits == 16;
    __m256i m = _mm256_set1_epi32(s->multiplier[0]), sh = _mm256_set1_epi32(s->shift[0]);
    __m256i mn = has_neg ? _mm256_set1_epi32(s->multiplier_neg[0]) : m;
    __m256i shn = has_neg ? _mm256_set1_epi32(s->shift_neg[0]) : sh;
    if (per_channel) {
        m = load_consts_avx2(s->multiplier, ch, w);
        /* lanes past w (no channel) get shift -1, which keeps the merged form open */
        sh = _mm256_blendv_epi8(load_consts_avx2(s->shift, ch, w), _mm256_set1_epi32(-1),
                                _mm256_cmpgt_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                                   _mm256_set1_epi32(w - 1)));
        if (has_neg) {
            mn = load_consts_avx2(s->multiplier_neg, ch, w);
            shn = load_consts_avx2(s->shift_neg, ch, w);
        }
    }
    rq8_t k;
    const bool merged = !has_neg && rq8_make(m, sh, &k);
    const fin8_t f = fin8_make(s);
    int64_t tb[8] = {0};
    const int64_t *b = bias ? bias + ch : NULL;
    if (bias && w < 8) {
        memcpy(tb, b, (size_t)w * sizeof(int64_t));
        b = tb;
    }
    for (int32_t px = 0; px < pixels; px++) {
        int32_t t[8] = {0};
        memcpy(t, acc + (size_t)px * astride, (size_t)w * sizeof(int32_t));
        __m256i a = _mm256_loadu_si256((const __m256i *)(void *)t);
        if (b)
            a = sat_sum32_avx2(a, b);
        __m256i y;
        if (merged) {
            y = rq8_apply(a, &k, true);
        } else {
            __m256i mm = m, ss = sh;
            if (has_neg) {
                const __m256i negative = _mm256_cmpgt_epi32(_mm256_setzero_si256(), a);
                mm = _mm256_blendv_epi8(m, mn, negative);
                ss = _mm256_blendv_epi8(sh, shn, negative);
            }
            y = requantize32_avx2(a, mm, ss);
        }
        uint8_t *dst = out + (size_t)px * ostride;
        if (lut16)
            finish_store_avx2(s, y, w, dst);
        else
            store_codes_avx2(
                _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(y, f.lo), f.hi), f.off),
                s->out_bits, w, dst);
    }
}

/* The runs of one vector of 8 whole channels of the common form: merged (k), bias folded, 8-bit
 * codes. */
AVX2_TARGET static inline __attribute__((always_inline)) void
stage_vector_merged8_avx2(const int32_t *acc, size_t astride, uint8_t *out, size_t ostride,
                          int32_t pixels, const rq8_t *k, const fin8_t *f, const bool exact_neg)
{
    for (int32_t px = 0; px < pixels; px++) {
        const __m256i a =
            _mm256_loadu_si256((const __m256i *)(const void *)(acc + (size_t)px * astride));
        const __m256i code = _mm256_add_epi32(
            _mm256_min_epi32(_mm256_max_epi32(rq8_apply(a, k, exact_neg), f->lo), f->hi), f->off);
        const __m128i w =
            _mm_packus_epi32(_mm256_castsi256_si128(code), _mm256_extracti128_si256(code, 1));
        _mm_storel_epi64((__m128i *)(void *)(out + (size_t)px * ostride), _mm_packus_epi16(w, w));
    }
}

/* Two vectors of channels (16 whole ones) of the common form; both vectors' codes packed into
 * one 16-byte store per run. */
AVX2_TARGET static inline __attribute__((always_inline)) void
stage_pair_merged8_avx2(const int32_t *acc, size_t astride, uint8_t *out, size_t ostride,
                        int32_t pixels, const rq8_t *k0, const rq8_t *k1, const fin8_t *f,
                        const bool exact_neg)
{
    /* after the two packs, dwords 0 and 4 hold the first vector's codes, 1 and 5 the second's */
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int32_t px = 0; px < pixels; px++) {
        const int32_t *src = acc + (size_t)px * astride;
        __m256i y0 =
            rq8_apply(_mm256_loadu_si256((const __m256i *)(const void *)src), k0, exact_neg);
        __m256i y1 =
            rq8_apply(_mm256_loadu_si256((const __m256i *)(const void *)(src + 8)), k1, exact_neg);
        y0 = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(y0, f->lo), f->hi), f->off);
        y1 = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(y1, f->lo), f->hi), f->off);
        const __m256i b = _mm256_packus_epi16(_mm256_packus_epi32(y0, y1), _mm256_setzero_si256());
        _mm_storeu_si128((__m128i *)(void *)(out + (size_t)px * ostride),
                         _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(b, order)));
    }
}

/* `pixels` runs of n values in channels ch0..: run px's accumulators at acc + px * astride, its
 * codes at out + px * n codes. The stage's constants of a vector of channels are made once for
 * all the runs. The common form (every lane merged: a right shift, no negative-side multiplier;
 * bias folded; 8-bit codes; every stage of the benchmark networks) runs its own loop, with and
 * without the correction for A < 0, two vectors at a time while 16 channels remain
 * (stage_pair_merged8_avx2); other vectors and a last partial one take
 * stage_vector_any_avx2. An 8-bit lut is looked up afterwards over the whole output, 32 codes at
 * a time (lut8_apply_avx2). */
AVX2_TARGET static void stage_block_i32_avx2(const hqrt_output_stage_t *s, const int32_t *acc,
                                             size_t astride, const int64_t *bias, int32_t ch0,
                                             int32_t n, int32_t pixels, void *out)
{
    const bool per_channel = s->count != 1;
    const size_t esize = s->out_bits == 16 ? 2 : 1, ostride = (size_t)n * esize;
    const fin8_t f = fin8_make(s);
    /* every y <= 0 gives one code when the clamp's lower bound is >= 0 (act_min >= out_zp, or
     * a lut indexed from pre_zp 0) */
    const bool exact_neg = (s->lut ? 0 : s->act_min) - (s->lut ? s->pre_zp : s->out_zp) < 0;
    int32_t j = 0;
    if (!s->multiplier_neg && !bias && s->out_bits == 8) {
        const __m256i m1 = _mm256_set1_epi32(s->multiplier[0]),
                      sh1 = _mm256_set1_epi32(s->shift[0]);
        for (; j + 8 <= n; j += 8) {
            const __m256i m =
                per_channel
                    ? _mm256_loadu_si256((const __m256i *)(const void *)(s->multiplier + ch0 + j))
                    : m1;
            const __m256i sh =
                per_channel
                    ? _mm256_loadu_si256((const __m256i *)(const void *)(s->shift + ch0 + j))
                    : sh1;
            rq8_t k, k1;
            uint8_t *o = (uint8_t *)out + j;
            if (j + 16 <= n && rq8_make(m, sh, &k) &&
                rq8_make(per_channel
                             ? _mm256_loadu_si256(
                                   (const __m256i *)(const void *)(s->multiplier + ch0 + j + 8))
                             : m1,
                         per_channel ? _mm256_loadu_si256(
                                           (const __m256i *)(const void *)(s->shift + ch0 + j + 8))
                                     : sh1,
                         &k1)) {
                if (exact_neg)
                    stage_pair_merged8_avx2(acc + j, astride, o, ostride, pixels, &k, &k1, &f,
                                            true);
                else
                    stage_pair_merged8_avx2(acc + j, astride, o, ostride, pixels, &k, &k1, &f,
                                            false);
                j += 8;
                continue;
            }
            if (!rq8_make(m, sh, &k))
                stage_vector_any_avx2(s, acc + j, astride, NULL, ch0 + j, 8, pixels, o, ostride);
            else if (exact_neg)
                stage_vector_merged8_avx2(acc + j, astride, o, ostride, pixels, &k, &f, true);
            else
                stage_vector_merged8_avx2(acc + j, astride, o, ostride, pixels, &k, &f, false);
        }
    }
    for (; j < n; j += 8)
        stage_vector_any_avx2(s, acc + j, astride, bias, ch0 + j, n - j >= 8 ? 8 : (int)(n - j),
                              pixels, (uint8_t *)out + (size_t)j * esize, ostride);
    if (s->lut && s->out_bits == 8)
        lut8_apply_avx2(s->lut, s->act_min, s->act_max, out, (size_t)pixels * (size_t)n);
}

AVX2_TARGET static void stage_row_i32_avx2(const hqrt_output_stage_t *s, const int32_t *acc,
                                           const int64_t *bias, int32_t ch0, int32_t n, void *out)
{
    stage_block_i32_avx2(s, acc, 0, bias, ch0, n, 1, out);
}

/* 8 centred codes q - zp from `bits`-bit codes at p (stride 1; n of them, the others 0 - zp), or
 * p[0] in every lane (stride 0). */
AVX2_TARGET static inline __m256i codes_avx2(const void *p, int32_t bits, int stride, int n,
                                             int32_t zp)
{
    __m256i v;
    if (stride == 0) {
        v = _mm256_set1_epi32(hqrt_load(p, bits, 0));
    } else if (bits == 16) {
        uint16_t t[8] = {0};
        if (n == 8)
            v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
        else {
            memcpy(t, p, (size_t)n * 2);
            v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(void *)t));
        }
    } else {
        uint8_t t[8] = {0};
        if (n == 8)
            v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
        else {
            memcpy(t, p, (size_t)n);
            v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(void *)t));
        }
    }
    return _mm256_sub_epi32(v, _mm256_set1_epi32(zp));
}

/* hqrt_output_code_sum's y of z = ta + tb (exact: the int64 sum is never formed, floor(z / 2^8)
 * and z mod 2^8 come from the terms' own quotients and remainders), on the 32-bit path.
 * has_neg: where z < 0, z = requantize32(clamp32(z), mn, shn) first. */
AVX2_TARGET static inline __m256i sum_y_avx2(__m256i ta, __m256i tb, bool has_neg, __m256i mn,
                                             __m256i shn)
{
    const __m256i zero = _mm256_setzero_si256(), low = _mm256_set1_epi32(255);
    __m256i carry = _mm256_add_epi32(_mm256_and_si256(ta, low), _mm256_and_si256(tb, low));
    __m256i r =
        _mm256_add_epi32(_mm256_add_epi32(_mm256_srai_epi32(ta, 8), _mm256_srai_epi32(tb, 8)),
                         _mm256_srli_epi32(carry, 8));
    __m256i rem = _mm256_and_si256(carry, low);
    __m256i negative = _mm256_cmpgt_epi32(zero, r); /* z < 0 exactly when floor(z / 2^8) < 0 */
    __m256i threshold = _mm256_sub_epi32(_mm256_set1_epi32(127), negative);
    __m256i y = _mm256_sub_epi32(r, _mm256_cmpgt_epi32(rem, threshold));
    if (has_neg) {
        __m256i z32 = _mm256_add_epi32(ta, tb);
        /* the sum wrapped where both terms' signs differ from its own: all ones there */
        __m256i wrapped = _mm256_srai_epi32(
            _mm256_and_si256(_mm256_xor_si256(ta, z32), _mm256_xor_si256(tb, z32)), 31);
        __m256i sat = _mm256_xor_si256(_mm256_set1_epi32(INT32_MAX), _mm256_srai_epi32(ta, 31));
        z32 = _mm256_blendv_epi8(z32, sat, wrapped);
        __m256i yn = rdbp_avx2(requantize32_avx2(z32, mn, shn), _mm256_set1_epi32(8));
        y = _mm256_blendv_epi8(y, yn, negative);
    }
    return y;
}

/* ew_run for the 32-bit path on AVX2, 8 int32 lanes (luts by the gathers of lut_lookup_avx2). */
AVX2_TARGET __attribute__((noinline)) static void ew_run_i32_avx2(const hqrt_ew_params_t *p,
                                                                  const void *a, int a_stride,
                                                                  const void *b, int b_stride,
                                                                  int32_t ch0, int64_t n, void *out)
{
    const hqrt_output_stage_t *s = &p->out;
    const size_t asize = p->a_bits == 16 ? 2 : 1, bsize = p->b_bits == 16 ? 2 : 1,
                 osize = s->out_bits == 16 ? 2 : 1;
    const bool per_channel = s->count != 1, has_neg = s->multiplier_neg != NULL;
    const bool narrow = p->a_bits == 8 && p->b_bits == 8; /* |qa * qb| < 2^16 */
    const __m256i am = _mm256_set1_epi32(p->a_multiplier), ash = _mm256_set1_epi32(p->a_shift),
                  bm = _mm256_set1_epi32(p->b_multiplier), bsh = _mm256_set1_epi32(p->b_shift);
    __m256i m = _mm256_set1_epi32(s->multiplier[0]), sh = _mm256_set1_epi32(s->shift[0]);
    __m256i mn = has_neg ? _mm256_set1_epi32(s->multiplier_neg[0]) : m;
    __m256i shn = has_neg ? _mm256_set1_epi32(s->shift_neg[0]) : sh;
    /* the merged requantization's constants where they apply: the terms' once per call, the
     * stage's once per vector of channels (products only) */
    rq8_t ka, kb, km;
    const bool merged_a = rq8_make(am, ash, &ka), merged_b = rq8_make(bm, bsh, &kb);
    bool merged_m = !has_neg && rq8_make(m, sh, &km);
    const fin8_t f = fin8_make(s);
    for (int64_t j = 0; j < n; j += 8) {
        const int w = n - j >= 8 ? 8 : (int)(n - j);
        if (per_channel) {
            const int32_t ch = ch0 + (int32_t)j;
            m = load_consts_avx2(s->multiplier, ch, w);
            sh = load_consts_avx2(s->shift, ch, w);
            if (has_neg) {
                mn = load_consts_avx2(s->multiplier_neg, ch, w);
                shn = load_consts_avx2(s->shift_neg, ch, w);
            }
            merged_m = p->op == HQRT_EW_MULT && !has_neg && rq8_make(m, sh, &km);
        }
        __m256i qa = codes_avx2((const uint8_t *)a + (size_t)(j * a_stride) * asize, p->a_bits,
                                a_stride, w, p->a_zp);
        __m256i qb = codes_avx2((const uint8_t *)b + (size_t)(j * b_stride) * bsize, p->b_bits,
                                b_stride, w, p->b_zp);
        __m256i y;
        if (p->op == HQRT_EW_MULT) {
            __m256i acc;
            if (narrow) {
                acc = _mm256_mullo_epi32(qa, qb);
            } else { /* clamp32 of the int64 product (16-bit codes: up to 2^32) */
                __m256i lo = _mm256_mul_epi32(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(qa)),
                                              _mm256_cvtepi32_epi64(_mm256_castsi256_si128(qb)));
                __m256i hi =
                    _mm256_mul_epi32(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(qa, 1)),
                                     _mm256_cvtepi32_epi64(_mm256_extracti128_si256(qb, 1)));
                acc = _mm256_inserti128_si256(_mm256_castsi128_si256(narrow_sat_half_avx2(lo)),
                                              narrow_sat_half_avx2(hi), 1);
            }
            __m256i mm = m, ss = sh;
            if (has_neg) {
                __m256i negative = _mm256_cmpgt_epi32(_mm256_setzero_si256(), acc);
                mm = _mm256_blendv_epi8(m, mn, negative);
                ss = _mm256_blendv_epi8(sh, shn, negative);
            }
            y = rq8_or_steps(acc, merged_m, &km, mm, ss);
        } else {
            __m256i ta = rq8_or_steps(qa, merged_a, &ka, am, ash),
                    tb = rq8_or_steps(qb, merged_b, &kb, bm, bsh);
            if (p->op == HQRT_EW_ADD) {
                y = sum_y_avx2(ta, tb, has_neg, mn, shn);
            } else {
                __m256i z =
                    p->op == HQRT_EW_MAX ? _mm256_max_epi32(ta, tb) : _mm256_min_epi32(ta, tb);
                if (has_neg)
                    z = _mm256_blendv_epi8(z, requantize32_avx2(z, mn, shn),
                                           _mm256_cmpgt_epi32(_mm256_setzero_si256(), z));
                y = rdbp_avx2(z, _mm256_set1_epi32(8));
            }
        }
        finish_codes_avx2(s, &f, y, w, (uint8_t *)out + (size_t)j * osize);
    }
    if (s->lut && s->out_bits == 8)
        lut8_apply_avx2(s->lut, s->act_min, s->act_max, out, (size_t)n);
}

/* LANES centred codes q - zp from `bits`-bit codes at p (stride 1), or p[0] in every lane
 * (stride 0); n of them (the others 0). */
INLINE lanes_t load_codes(const void *p, int32_t bits, int stride, int n, int32_t zp)
{
    lanes_t v;
    if (stride == 0) {
        v = splat(hqrt_load(p, bits, 0));
    } else if (bits == 16) {
        lanes16_t c = {0};
        memcpy(&c, p, (size_t)n * 2);
        v = __builtin_convertvector(c, lanes_t);
    } else {
        lanes8_t c = {0};
        memcpy(&c, p, (size_t)n);
        v = __builtin_convertvector(c, lanes_t);
    }
    return v - zp;
}

/* w (<= LANES) outputs of ew_run from a, b (already advanced) in channel ch0 onwards. */
INLINE void ew_lanes(const hqrt_ew_params_t *p, stage_lanes_t *k, lanes_t am, lanes_t ash,
                     lanes_t bm, lanes_t bsh, const void *a, int a_stride, const void *b,
                     int b_stride, int32_t ch0, int w, void *out)
{
    const hqrt_output_stage_t *s = &p->out;
    if (s->count != 1)
        stage_load(s, ch0, w, k);
    lanes_t qa = load_codes(a, p->a_bits, a_stride, w, p->a_zp);
    lanes_t qb = load_codes(b, p->b_bits, b_stride, w, p->b_zp);
    lanes_t y;
    if (p->op == HQRT_EW_MULT) {
        y = stage_y(s, k, qa * qb);
    } else {
        /* both terms are int32 values: hqrt_add_sat's +-2^62 clamps never act */
        lanes_t ta = requantize32(qa, am, ash), tb = requantize32(qb, bm, bsh);
        lanes_t z = p->op == HQRT_EW_ADD   ? ta + tb
                    : p->op == HQRT_EW_MAX ? lanes_max(ta, tb)
                                           : lanes_min(ta, tb);
        y = stage_y_sum(s, k, z);
    }
    stage_store(s, y, w, out);
}

/* One run of n outputs of hqrt_elementwise (32-bit path): a and b advance by their strides
 * (1, or 0 for an operand broadcast along the run); output channel ch0 + j (per-channel stages:
 * the run lies within one innermost row). */
INLINE void ew_run(const hqrt_ew_params_t *p, const void *a, int a_stride, const void *b,
                   int b_stride, int32_t ch0, int64_t n, void *out)
{
    const hqrt_output_stage_t *s = &p->out;
    const size_t asize = p->a_bits == 16 ? 2 : 1, bsize = p->b_bits == 16 ? 2 : 1,
                 osize = s->out_bits == 16 ? 2 : 1;
    const lanes_t am = splat(p->a_multiplier), ash = splat(p->a_shift), bm = splat(p->b_multiplier),
                  bsh = splat(p->b_shift);
    stage_lanes_t k = {0};
    if (s->count == 1)
        stage_load(s, 0, LANES, &k);
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES) /* whole vectors: a constant width (see stage_lanes) */
        ew_lanes(p, &k, am, ash, bm, bsh, (const uint8_t *)a + (size_t)(j * a_stride) * asize,
                 a_stride, (const uint8_t *)b + (size_t)(j * b_stride) * bsize, b_stride,
                 ch0 + (int32_t)j, LANES, (uint8_t *)out + (size_t)j * osize);
    if (j < n)
        ew_lanes(p, &k, am, ash, bm, bsh, (const uint8_t *)a + (size_t)(j * a_stride) * asize,
                 a_stride, (const uint8_t *)b + (size_t)(j * b_stride) * bsize, b_stride,
                 ch0 + (int32_t)j, (int)(n - j), (uint8_t *)out + (size_t)j * osize);
}

/* 16 centred codes q - zp (mask k) from `bits`-bit codes at p (stride 1), or p[0] in every
 * lane (stride 0). */
AVX512_TARGET static inline __m512i codes_i32(const void *p, int32_t bits, int stride, __mmask16 k,
                                              int32_t zp)
{
    __m512i v;
    if (stride == 0)
        v = _mm512_set1_epi32(hqrt_load(p, bits, 0));
    else if (bits == 16)
        v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, p));
    else
        v = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, p));
    return _mm512_sub_epi32(v, _mm512_set1_epi32(zp));
}

/* clamp32 of an int64 held as two halves of 8 lanes, back in 16 int32 lanes */
AVX512_TARGET static inline __m512i narrow_sat(__m512i lo, __m512i hi)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtsepi64_epi32(lo)),
                              _mm512_cvtsepi64_epi32(hi), 1);
}

AVX512_TARGET static inline __m512i widen_lo(__m512i v)
{
    return _mm512_cvtepi32_epi64(_mm512_castsi512_si256(v));
}

AVX512_TARGET static inline __m512i widen_hi(__m512i v)
{
    return _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(v, 1));
}

/* RoundingDivideByPOT64(z, HQRT_SUM_FRAC_BITS) on 8 int64 lanes */
AVX512_TARGET static inline __m512i sum_round(__m512i z)
{
    const __m512i mask = _mm512_set1_epi64(((int64_t)1 << HQRT_SUM_FRAC_BITS) - 1);
    const __m512i half = _mm512_srai_epi64(mask, 1), one = _mm512_set1_epi64(1);
    __m512i threshold =
        _mm512_mask_add_epi64(half, _mm512_cmplt_epi64_mask(z, _mm512_setzero_si512()), half, one);
    __m512i r = _mm512_srai_epi64(z, HQRT_SUM_FRAC_BITS);
    return _mm512_mask_add_epi64(r, _mm512_cmpgt_epi64_mask(_mm512_and_si512(z, mask), threshold),
                                 r, one);
}

/* ew_run for a stage without a lut on AVX-512, 16 int32 lanes: hqrt_elementwise's steps, with
 * the int64 values of the reference formed where they can exceed int32 (a 16-bit product, the
 * sum of two requantized terms and its rounding) and saturated where the reference clamps. */
AVX512_TARGET __attribute__((noinline)) static void ew_run_i32(const hqrt_ew_params_t *p,
                                                               const void *a, int a_stride,
                                                               const void *b, int b_stride,
                                                               int32_t ch0, int64_t n, void *out)
{
    const hqrt_output_stage_t *s = &p->out;
    const size_t asize = p->a_bits == 16 ? 2 : 1, bsize = p->b_bits == 16 ? 2 : 1;
    const bool per_channel = s->count != 1, has_neg = s->multiplier_neg != NULL;
    const __m512i am = _mm512_set1_epi32(p->a_multiplier), ash = _mm512_set1_epi32(p->a_shift),
                  bm = _mm512_set1_epi32(p->b_multiplier), bsh = _mm512_set1_epi32(p->b_shift);
    __m512i m = _mm512_set1_epi32(s->multiplier[0]), sh = _mm512_set1_epi32(s->shift[0]);
    __m512i mn = has_neg ? _mm512_set1_epi32(s->multiplier_neg[0]) : m;
    __m512i shn = has_neg ? _mm512_set1_epi32(s->shift_neg[0]) : sh;
    const __m512i ylo = _mm512_set1_epi32(-(1 << 20)), yhi = _mm512_set1_epi32(1 << 20);
    const __m512i zp = _mm512_set1_epi32(s->out_zp), amin = _mm512_set1_epi32(s->act_min),
                  amax = _mm512_set1_epi32(s->act_max), zero = _mm512_setzero_si512();
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 k = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        if (per_channel) {
            const int32_t ch = ch0 + (int32_t)j;
            m = _mm512_maskz_loadu_epi32(k, s->multiplier + ch);
            sh = _mm512_maskz_loadu_epi32(k, s->shift + ch);
            if (has_neg) {
                mn = _mm512_maskz_loadu_epi32(k, s->multiplier_neg + ch);
                shn = _mm512_maskz_loadu_epi32(k, s->shift_neg + ch);
            }
        }
        __m512i qa = codes_i32((const uint8_t *)a + (size_t)(j * a_stride) * asize, p->a_bits,
                               a_stride, k, p->a_zp);
        __m512i qb = codes_i32((const uint8_t *)b + (size_t)(j * b_stride) * bsize, p->b_bits,
                               b_stride, k, p->b_zp);
        __m512i y;
        if (p->op == HQRT_EW_MULT) {
            /* clamp32 of the int64 product (16-bit codes: up to 2^32), then hqrt_output_code */
            __m512i p_lo = _mm512_mul_epi32(widen_lo(qa), widen_lo(qb));
            __m512i p_hi = _mm512_mul_epi32(widen_hi(qa), widen_hi(qb));
            __m512i acc = narrow_sat(p_lo, p_hi);
            __m512i mm = m, ss = sh;
            if (has_neg) {
                __mmask16 negative = _mm512_cmplt_epi32_mask(acc, zero);
                mm = _mm512_mask_blend_epi32(negative, m, mn);
                ss = _mm512_mask_blend_epi32(negative, sh, shn);
            }
            y = requantize32_i32(acc, mm, ss);
        } else {
            __m512i ta = requantize32_i32(qa, am, ash), tb = requantize32_i32(qb, bm, bsh);
            __m512i zlo, zhi;
            if (p->op == HQRT_EW_ADD) {
                zlo = _mm512_add_epi64(widen_lo(ta), widen_lo(tb));
                zhi = _mm512_add_epi64(widen_hi(ta), widen_hi(tb));
            } else {
                __m512i z =
                    p->op == HQRT_EW_MAX ? _mm512_max_epi32(ta, tb) : _mm512_min_epi32(ta, tb);
                zlo = widen_lo(z), zhi = widen_hi(z);
            }
            if (has_neg) { /* z < 0: requantize32(clamp32(z)) with the negative side's constants */
                __m512i r = requantize32_i32(narrow_sat(zlo, zhi), mn, shn);
                zlo = _mm512_mask_blend_epi64(_mm512_cmplt_epi64_mask(zlo, zero), zlo, widen_lo(r));
                zhi = _mm512_mask_blend_epi64(_mm512_cmplt_epi64_mask(zhi, zero), zhi, widen_hi(r));
            }
            y = narrow_sat(sum_round(zlo), sum_round(zhi)); /* |y| < 2^25: exact */
        }
        y = _mm512_min_epi32(_mm512_max_epi32(y, ylo), yhi);
        __m512i code = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(y, zp), amin), amax);
        if (s->out_bits == 16)
            _mm512_mask_cvtepi32_storeu_epi16((uint16_t *)out + j, k, code);
        else
            _mm512_mask_cvtepi32_storeu_epi8((uint8_t *)out + j, k, code);
    }
}

/* Offset into an operand broadcast to `out` of the element at out coordinate `coord`. */
static size_t broadcast_offset(const hqrt_shape_t *s, const hqrt_shape_t *out, const int32_t *coord)
{
    size_t off = 0;
    for (int d = 0; d < out->ndim; d++)
        off = off * (size_t)s->dims[d] + (size_t)(s->dims[d] == 1 ? 0 : coord[d]);
    return off;
}

static bool same_shape(const hqrt_shape_t *a, const hqrt_shape_t *b)
{
    for (int d = 0; d < a->ndim; d++)
        if (a->dims[d] != b->dims[d])
            return false;
    return true;
}

/* hqrt_i_stage_row_addend on AVX2 (also run on AVX-512 CPUs): the residual sum of
 * hqrt_i_finish_value, requantize32 of the accumulator (no negative-side constants: those act
 * on the sum) plus requantize32 of the centred addend code, then hqrt_output_code_sum's y. */
AVX2_TARGET __attribute__((noinline)) static void
stage_row_addend_avx2(const hqrt_output_stage_t *s, const int32_t *acc, const int64_t *bias,
                      int32_t ch0, int32_t n, const hqrt_addend_t *addend, const void *codes,
                      void *out)
{
    const bool per_channel = s->count != 1, has_neg = s->multiplier_neg != NULL;
    const size_t esize = s->out_bits == 16 ? 2 : 1, asize = addend->bits == 16 ? 2 : 1;
    const __m256i am = _mm256_set1_epi32(addend->multiplier),
                  ash = _mm256_set1_epi32(addend->shift);
    __m256i m = _mm256_set1_epi32(s->multiplier[0]), sh = _mm256_set1_epi32(s->shift[0]);
    __m256i mn = has_neg ? _mm256_set1_epi32(s->multiplier_neg[0]) : m;
    __m256i shn = has_neg ? _mm256_set1_epi32(s->shift_neg[0]) : sh;
    /* the addend's merged requantization's constants, once per call, where they apply (the
     * accumulator's would be made per vector for one pixel: no faster than the steps) */
    rq8_t ka;
    const bool merged_a = rq8_make(am, ash, &ka);
    const fin8_t f = fin8_make(s);
    for (int32_t j = 0; j < n; j += 8) {
        const int w = n - j >= 8 ? 8 : (int)(n - j);
        if (per_channel) {
            m = load_consts_avx2(s->multiplier, ch0 + j, w);
            sh = load_consts_avx2(s->shift, ch0 + j, w);
            if (has_neg) {
                mn = load_consts_avx2(s->multiplier_neg, ch0 + j, w);
                shn = load_consts_avx2(s->shift_neg, ch0 + j, w);
            }
        }
        __m256i a;
        if (w == 8) {
            a = _mm256_loadu_si256((const __m256i *)(const void *)(acc + j));
            if (bias)
                a = sat_sum32_avx2(a, bias + ch0 + j);
        } else {
            int32_t t[8] = {0};
            int64_t tb[8] = {0};
            memcpy(t, acc + j, (size_t)w * sizeof(int32_t));
            a = _mm256_loadu_si256((const __m256i *)(void *)t);
            if (bias) {
                memcpy(tb, bias + ch0 + j, (size_t)w * sizeof(int64_t));
                a = sat_sum32_avx2(a, tb);
            }
        }
        __m256i q =
            codes_avx2((const uint8_t *)codes + (size_t)j * asize, addend->bits, 1, w, addend->zp);
        __m256i y = sum_y_avx2(requantize32_avx2(a, m, sh), rq8_or_steps(q, merged_a, &ka, am, ash),
                               has_neg, mn, shn);
        finish_codes_avx2(s, &f, y, w, (uint8_t *)out + (size_t)j * esize);
    }
    if (s->lut && s->out_bits == 8)
        lut8_apply_avx2(s->lut, s->act_min, s->act_max, out, (size_t)n);
}

/* A product of two 8-bit operands into 8-bit codes with a per-tensor stage on the 32-bit path
 * and a multiplier >= 0 (the squeeze-excitation scaling of mobile networks): its accumulator
 * (a - a_zp)(b - b_zp), at most 255^2 in magnitude, is in int32 as it is, so the conv kernels'
 * int32 finish applies as they run it: the saturating pre-shift, the merged requantization
 * (hqrt_i_rq_merged_x16, constants as hqrt_i_fin_t in every lane) and the code step
 * (hqrt_i_code_bytes, a lut included) on 16 values per zmm. */
typedef struct ew_mult8 {
    _Alignas(64) hqrt_i_fin_t fin;                             /* the stage in every lane */
    _Alignas(64) int32_t lut[HQRT_I_LUT_BYTES / sizeof(int32_t)]; /* when the stage has one */
    bool vbmi;                                                 /* lut by vpermi2b (lut_vbmi) */
} ew_mult8_t;

/* Fills m8 and returns true when the op qualifies for ew_mult8_run. */
static bool ew_mult8_prepare(const hqrt_ew_params_t *p, ew_mult8_t *m8)
{
    const hqrt_output_stage_t *s = &p->out;
    if (p->op != HQRT_EW_MULT || p->a_bits != 8 || p->b_bits != 8 || s->count != 1 ||
        s->path != HQRT_PATH_GEMMLOWP || s->multiplier_neg || s->out_bits != 8 ||
        s->multiplier[0] < 0)
        return false;
    for (int l = 0; l < 16; l++)
        hqrt_i_fin_constants(s->multiplier[0], s->shift[0], l, &m8->fin);
    if (s->lut)
        hqrt_i_lut_prepare(s, m8->lut);
    m8->vbmi = s->lut && hqrt_i_lut_vbmi();
    return true;
}

AVX512_TARGET __attribute__((noinline)) static void
ew_mult8_run(const hqrt_ew_params_t *p, const ew_mult8_t *m8, const void *a, int a_stride,
             const void *b, int b_stride, int64_t n, void *out)
{
    const hqrt_i_rq_t rq = hqrt_i_rq_load(&m8->fin);
    const __m512i left = _mm512_load_si512((const void *)m8->fin.left);
    const bool any_left = m8->fin.left[0] > 0;
    const hqrt_i_lut_regs_t lut = hqrt_i_lut_load(p->out.lut ? m8->lut : NULL, m8->vbmi);
    int32_t zp, lo, hi;
    hqrt_i_code_consts(&p->out, &zp, &lo, &hi);
    const __m512i cc[3] = {_mm512_set1_epi32(zp), _mm512_set1_epi32(lo), _mm512_set1_epi32(hi)};
    uint8_t *o = out;
    for (int64_t j = 0; j < n; j += 16) {
        const __mmask16 k = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        const __m512i qa = codes_i32((const uint8_t *)a + j * a_stride, 8, a_stride, k, p->a_zp);
        const __m512i qb = codes_i32((const uint8_t *)b + j * b_stride, 8, b_stride, k, p->b_zp);
        __m512i x = _mm512_mullo_epi32(qa, qb);
        if (any_left) /* x * 2^left saturated to int32, as hqrt_requantize32 */
            x = hqrt_i_sat_shl_x16(x, left);
        const __m128i codes = hqrt_i_code_bytes(hqrt_i_rq_merged_x16(x, &rq, true), cc, &lut);
        if (k == 0xFFFF) /* vpmovdb straight to memory (what a masked store becomes) is slow */
            _mm_storeu_si128((__m128i *)(void *)(o + j), codes);
        else
            _mm_mask_storeu_epi8(o + j, k, codes);
    }
}

/* Which run ew_all takes: int64 lanes (ew_run), int32 lanes on AVX-512 or AVX2, or an 8-bit
 * product (ew_mult8_run). */
enum { EW_INT64 = 0, EW_I32_AVX512 = 1, EW_I32_AVX2 = 2, EW_MULT8_AVX512 = 3 };

/* One run of n values of the op in the lanes chosen (m8: EW_MULT8_AVX512's constants). */
INLINE void ew_run_lanes(const hqrt_ew_params_t *p, const ew_mult8_t *m8, const void *a,
                         int a_stride, const void *b, int b_stride, int64_t n, void *out,
                         int lanes)
{
    if (lanes == EW_MULT8_AVX512)
        ew_mult8_run(p, m8, a, a_stride, b, b_stride, n, out);
    else if (lanes == EW_I32_AVX512)
        ew_run_i32(p, a, a_stride, b, b_stride, 0, n, out);
    else if (lanes == EW_I32_AVX2)
        ew_run_i32_avx2(p, a, a_stride, b, b_stride, 0, n, out);
    else
        ew_run(p, a, a_stride, b, b_stride, 0, n, out);
}

/* The whole op as runs along the innermost axis (one run when nothing broadcasts and the stage
 * is per tensor). */
INLINE void ew_all(const hqrt_ew_params_t *p, const ew_mult8_t *m8, const hqrt_shape_t *as,
                   const void *a, const hqrt_shape_t *bs, const void *b, const hqrt_shape_t *os,
                   void *out, int lanes)
{
    const int nd = os->ndim;
    const int32_t c = os->dims[nd - 1];
    int64_t total = 1;
    for (int d = 0; d < nd; d++)
        total *= os->dims[d];
    if (p->out.count == 1 && same_shape(as, os) && same_shape(bs, os)) {
        ew_run_lanes(p, m8, a, 1, b, 1, total, out, lanes);
        return;
    }
    const size_t asize = p->a_bits == 16 ? 2 : 1, bsize = p->b_bits == 16 ? 2 : 1,
                 osize = p->out.out_bits == 16 ? 2 : 1;
    const int a_stride = as->dims[nd - 1] == c ? 1 : 0, b_stride = bs->dims[nd - 1] == c ? 1 : 0;
    int32_t coord[HQRT_MAX_DIMS] = {0};
    for (int64_t row = 0; row < total / c; row++) {
        const uint8_t *ra = (const uint8_t *)a + broadcast_offset(as, os, coord) * asize;
        const uint8_t *rb = (const uint8_t *)b + broadcast_offset(bs, os, coord) * bsize;
        uint8_t *ro = (uint8_t *)out + (size_t)(row * c) * osize;
        ew_run_lanes(p, m8, ra, a_stride, rb, b_stride, c, ro, lanes);
        for (int d = nd - 2; d >= 0; d--) {
            if (++coord[d] < os->dims[d])
                break;
            coord[d] = 0;
        }
    }
}

AVX512_TARGET static void ew_avx512(const hqrt_ew_params_t *p, const hqrt_shape_t *as,
                                    const void *a, const hqrt_shape_t *bs, const void *b,
                                    const hqrt_shape_t *os, void *out)
{
    ew_mult8_t m8;
    if (ew_mult8_prepare(p, &m8))
        ew_all(p, &m8, as, a, bs, b, os, out, EW_MULT8_AVX512);
    else
        ew_all(p, NULL, as, a, bs, b, os, out, p->out.lut ? EW_INT64 : EW_I32_AVX512);
}

AVX2_TARGET static void ew_avx2(const hqrt_ew_params_t *p, const hqrt_shape_t *as, const void *a,
                                const hqrt_shape_t *bs, const void *b, const hqrt_shape_t *os,
                                void *out)
{
    ew_all(p, NULL, as, a, bs, b, os, out, EW_I32_AVX2);
}
#endif /* HQRT_HAVE_VECTOR_STAGE */

void hqrt_i_stage_row(int isa, const hqrt_output_stage_t *s, const int32_t *acc,
                      const int64_t *bias, int32_t ch0, int32_t n, void *out)
{
#ifdef HQRT_HAVE_VECTOR_STAGE
    if (s->path == HQRT_PATH_GEMMLOWP && isa == HQRT_ISA_AVX512) {
        stage_row_i32_avx512(s, acc, bias, ch0, n, out);
        return;
    }
    if (s->path == HQRT_PATH_GEMMLOWP && isa == HQRT_ISA_AVX2) {
        stage_row_i32_avx2(s, acc, bias, ch0, n, out);
        return;
    }
#else
    (void)isa;
#endif
    for (int32_t j = 0; j < n; j++)
        hqrt_store(out, s->out_bits, (size_t)j,
                   hqrt_output_code(s, (bias ? bias[ch0 + j] : 0) + acc[j], ch0 + j));
}

void hqrt_i_stage_block(int isa, const hqrt_output_stage_t *s, const int32_t *acc, size_t astride,
                        const int64_t *bias, int32_t n, int32_t pixels, void *out)
{
#ifdef HQRT_HAVE_VECTOR_STAGE
    if (s->path == HQRT_PATH_GEMMLOWP && isa == HQRT_ISA_AVX2) {
        stage_block_i32_avx2(s, acc, astride, bias, 0, n, pixels, out);
        return;
    }
#endif
    const size_t esize = s->out_bits == 16 ? 2 : 1;
    for (int32_t px = 0; px < pixels; px++)
        hqrt_i_stage_row(isa, s, acc + (size_t)px * astride, bias, 0, n,
                         (uint8_t *)out + (size_t)px * (size_t)n * esize);
}

void hqrt_i_stage_pixels(int isa, const hqrt_output_stage_t *s, const int32_t *acc,
                         const int64_t *bias, int32_t channels, int64_t pixels, void *out)
{
    const size_t esize = s->out_bits == 16 ? 2 : 1;
    const int64_t total = pixels * channels;
    if (s->count == 1 && !bias) {
        for (int64_t off = 0; off < total; off += 1 << 20)
            hqrt_i_stage_row(isa, s, acc + off, NULL, 0,
                             (int32_t)(total - off < 1 << 20 ? total - off : 1 << 20),
                             (uint8_t *)out + (size_t)off * esize);
        return;
    }
    int32_t g = channels, e = 8;
    while (e) { /* gcd(channels, 8) */
        int32_t t = g % e;
        g = e, e = t;
    }
    const int32_t period = channels / g * 8; /* lcm(channels, 8): whole vectors and pixels */
    if (channels % 8 == 0 || channels > 64 || isa == HQRT_ISA_REFERENCE) {
        for (int64_t px = 0; px < pixels; px += 1 << 20)
            hqrt_i_stage_block(isa, s, acc + px * channels, (size_t)channels, bias, channels,
                               (int32_t)(pixels - px < 1 << 20 ? pixels - px : 1 << 20),
                               (uint8_t *)out + (size_t)(px * channels) * esize);
        return;
    }
    /* the stage's constants (and the bias) repeated over `period` values, so that one call
     * covers period / channels pixels */
    int32_t m[512], sh[512], mn[512], shn[512];
    int64_t b[512];
    hqrt_output_stage_t t = *s;
    for (int32_t j = 0; j < period; j++) {
        const int32_t ch = j % channels, i = s->count == 1 ? 0 : ch;
        m[j] = s->multiplier[i], sh[j] = s->shift[i];
        if (s->multiplier_neg)
            mn[j] = s->multiplier_neg[i], shn[j] = s->shift_neg[i];
        b[j] = bias ? bias[ch] : 0;
    }
    t.count = period, t.multiplier = m, t.shift = sh;
    if (s->multiplier_neg)
        t.multiplier_neg = mn, t.shift_neg = shn;
    for (int64_t off = 0; off < total; off += period)
        hqrt_i_stage_row(isa, &t, acc + off, b, 0,
                         (int32_t)(total - off < period ? total - off : period),
                         (uint8_t *)out + (size_t)off * esize);
}

void hqrt_i_stage_row_addend(int isa, const hqrt_output_stage_t *s, const int32_t *acc,
                             const int64_t *bias, int32_t ch0, int32_t n,
                             const hqrt_addend_t *addend, size_t first, void *out)
{
    const size_t asize = addend->bits == 16 ? 2 : 1;
#ifdef HQRT_HAVE_VECTOR_STAGE
    if (s->path == HQRT_PATH_GEMMLOWP && isa != HQRT_ISA_REFERENCE) {
        stage_row_addend_avx2(s, acc, bias, ch0, n, addend,
                              (const uint8_t *)addend->data + first * asize, out);
        return;
    }
#else
    (void)isa;
#endif
    (void)asize;
    for (int32_t j = 0; j < n; j++) {
        const int32_t o = ch0 + j, i = s->count == 1 ? 0 : o;
        const int64_t a = (bias ? bias[o] : 0) + acc[j];
        int64_t t1 = hqrt_requantize(a, s->multiplier[i], s->shift[i], s->path);
        int64_t t2 =
            hqrt_requantize(hqrt_load(addend->data, addend->bits, first + (size_t)j) - addend->zp,
                            addend->multiplier, addend->shift, s->path);
        hqrt_store(out, s->out_bits, (size_t)j, hqrt_output_code_sum(s, t1 + t2, o));
    }
}

#ifdef HQRT_HAVE_VECTOR_STAGE
static int64_t shape_elements(const hqrt_shape_t *s)
{
    int64_t n = 1;
    for (int d = 0; d < s->ndim; d++)
        n *= s->dims[d];
    return n;
}

/* out[i] = table[v[i]] for a table of 256 bytes: each 16-byte part of it looked up by vpshufb
 * with the code's low nibble, kept where the high nibble names that part. */
AVX2_TARGET static void lookup_u8_avx2(const uint8_t *table, const uint8_t *v, int64_t n,
                                       uint8_t *out)
{
    __m256i part[16];
    for (int k = 0; k < 16; k++)
        part[k] = _mm256_broadcastsi128_si256(
            _mm_loadu_si128((const __m128i *)(const void *)(table + 16 * k)));
    const __m256i nibble = _mm256_set1_epi8(0x0f);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(v + i));
        const __m256i lo = _mm256_and_si256(x, nibble);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), nibble);
        __m256i r = _mm256_setzero_si256();
        for (int k = 0; k < 16; k++)
            r = _mm256_or_si256(r,
                                _mm256_and_si256(_mm256_shuffle_epi8(part[k], lo),
                                                 _mm256_cmpeq_epi8(hi, _mm256_set1_epi8((char)k))));
        _mm256_storeu_si256((__m256i *)(void *)(out + i), r);
    }
    for (; i < n; i++)
        out[i] = table[v[i]];
}

/* Fewest output elements worth a table (it costs 256). */
#define EW_TABLE_MIN 2048

/* An operand of one element (a constant: x + 3, x * (1/6)) with an 8-bit other operand of the
 * output's shape and a per-tensor stage: each output code is a function of the other operand's
 * code alone, so the op is a lookup in the table of its 256 values, computed by the vector
 * kernel itself. false: not such an op. */
static bool ew_by_table(int isa, const hqrt_ew_params_t *p, const hqrt_shape_t *as, const void *a,
                        const hqrt_shape_t *bs, const void *b, const hqrt_shape_t *os, void *out)
{
    const bool a_one = shape_elements(as) == 1, b_one = shape_elements(bs) == 1;
    const hqrt_shape_t *vs = a_one ? bs : as;
    const uint8_t *v = a_one ? b : a;
    const int64_t total = shape_elements(os);
    if (p->out.count != 1 || a_one == b_one || (a_one ? p->b_bits : p->a_bits) != 8 ||
        vs->ndim != os->ndim || !same_shape(vs, os) || total < EW_TABLE_MIN)
        return false;
    uint8_t codes[256];
    uint16_t table[256];
    for (int q = 0; q < 256; q++)
        codes[q] = (uint8_t)q;
    const hqrt_shape_t all = {.ndim = 1, .dims = {256}}, one = {.ndim = 1, .dims = {1}};
    const hqrt_shape_t *ts_a = a_one ? &one : &all, *ts_b = a_one ? &all : &one;
    const void *ta = a_one ? a : codes, *tb = a_one ? codes : b;
    if (isa == HQRT_ISA_AVX512)
        ew_avx512(p, ts_a, ta, ts_b, tb, &all, table);
    else
        ew_avx2(p, ts_a, ta, ts_b, tb, &all, table);
    if (p->out.out_bits == 16)
        for (int64_t i = 0; i < total; i++)
            ((uint16_t *)out)[i] = table[v[i]];
    else
        lookup_u8_avx2((const uint8_t *)table, v, total, out);
    return true;
}
#endif

int hqrt_i_elementwise_fast(int isa, const hqrt_ew_params_t *p, const hqrt_shape_t *as,
                            const void *a, const hqrt_shape_t *bs, const void *b,
                            const hqrt_shape_t *os, void *out)
{
    int rc = hqrt_elementwise_check(p, as, a, bs, b, os, out);
    if (rc != HQRT_KERNEL_OK || p->out.path != HQRT_PATH_GEMMLOWP)
        return hqrt_elementwise(p, as, a, bs, b, os, out);
#ifdef HQRT_HAVE_VECTOR_STAGE
    if ((isa == HQRT_ISA_AVX512 || isa == HQRT_ISA_AVX2) &&
        ew_by_table(isa, p, as, a, bs, b, os, out))
        return HQRT_KERNEL_OK;
    if (isa == HQRT_ISA_AVX512) {
        ew_avx512(p, as, a, bs, b, os, out);
        return HQRT_KERNEL_OK;
    }
    if (isa == HQRT_ISA_AVX2) {
        ew_avx2(p, as, a, bs, b, os, out);
        return HQRT_KERNEL_OK;
    }
#else
    (void)isa;
#endif
    return hqrt_elementwise(p, as, a, bs, b, os, out);
}

/* Channels of a global average pool summed on the stack (more: the reference). */
#define GAP_MAX_CHANNELS 4096

#ifdef HQRT_HAVE_VECTOR_STAGE
/* sums[ch] += codes of channel ch over `pixels` pixels of 8-bit codes (channels innermost), 8
 * channels per ymm, pixel after pixel (the reference walks channel after channel). */
AVX2_TARGET static void gap_sums_avx2(const uint8_t *input, int64_t pixels, int32_t c,
                                      int32_t *sums)
{
    int32_t ch = 0;
    for (; ch + 8 <= c; ch += 8) {
        __m256i a = _mm256_setzero_si256();
        for (int64_t i = 0; i < pixels; i++)
            a = _mm256_add_epi32(a, _mm256_cvtepu8_epi32(_mm_loadl_epi64(
                                        (const __m128i *)(const void *)(input + i * c + ch))));
        _mm256_storeu_si256((__m256i *)(void *)(sums + ch), a);
    }
    for (; ch < c; ch++) {
        int32_t a = 0;
        for (int64_t i = 0; i < pixels; i++)
            a += input[i * c + ch];
        sums[ch] = a;
    }
}
#endif

int hqrt_i_global_avg_pool_fast(int isa, int32_t in_bits, int32_t in_zp,
                                const hqrt_output_stage_t *s, hqrt_dims_t in, const void *input,
                                void *output)
{
#ifdef HQRT_HAVE_VECTOR_STAGE
    const int64_t pixels = (int64_t)in.h * in.w;
    /* the codes' sum and the centred sum (|.| <= 255 * pixels) stay in int32 */
    if ((isa == HQRT_ISA_AVX2 || isa == HQRT_ISA_AVX512) && in_bits == 8 && input && output &&
        in.n >= 1 && in.h >= 1 && in.w >= 1 && in.c >= 1 && in.c <= GAP_MAX_CHANNELS &&
        pixels <= ((int64_t)1 << 23) && in_zp >= 0 && in_zp <= 255 &&
        hqrt_output_stage_check(s, 1) == HQRT_KERNEL_OK) {
        int32_t sums[GAP_MAX_CHANNELS];
        const size_t esize = s->out_bits == 16 ? 2 : 1;
        for (int32_t n = 0; n < in.n; n++) { /* the stage is per tensor (count 1, checked) */
            gap_sums_avx2((const uint8_t *)input + (size_t)(n * pixels * in.c), pixels, in.c, sums);
            for (int32_t ch = 0; ch < in.c; ch++)
                sums[ch] -= (int32_t)(in_zp * pixels);
            hqrt_i_stage_row(isa, s, sums, NULL, 0, in.c,
                             (uint8_t *)output + (size_t)n * (size_t)in.c * esize);
        }
        return HQRT_KERNEL_OK;
    }
#else
    (void)isa;
#endif
    return hqrt_global_avg_pool(in_bits, in_zp, s, in, input, output);
}

/* Centred codes per hqrt_i_stage_row call: a stack buffer, as kernels never allocate. */
#define ACTIVATION_CHUNK 256

int hqrt_i_activation_fast(int isa, int32_t in_bits, int32_t in_zp, const hqrt_output_stage_t *s,
                           int64_t rows, int32_t channels, const void *input, void *output)
{
    int rc = hqrt_activation_check(in_bits, in_zp, s, rows, channels, input, output);
    if (rc != HQRT_KERNEL_OK || s->path != HQRT_PATH_GEMMLOWP || isa == HQRT_ISA_REFERENCE)
        return hqrt_activation(in_bits, in_zp, s, rows, channels, input, output);
    /* hqrt_activation's acc = q - in_zp fits int32 (|acc| < 2^16) and its channel is the
     * index within the row; a per-tensor stage ignores the channel, so its rows run as one. */
    const int64_t run = s->count == 1 ? rows * channels : channels;
    const int64_t runs = s->count == 1 ? 1 : rows;
    const size_t esize = s->out_bits == 16 ? 2 : 1;
    int32_t acc[ACTIVATION_CHUNK];
    for (int64_t r = 0; r < runs; r++)
        for (int64_t c0 = 0; c0 < run; c0 += ACTIVATION_CHUNK) {
            int32_t n = run - c0 < ACTIVATION_CHUNK ? (int32_t)(run - c0) : ACTIVATION_CHUNK;
            size_t first = (size_t)(r * run + c0);
            for (int32_t j = 0; j < n; j++)
                acc[j] = hqrt_load(input, in_bits, first + (size_t)j) - in_zp;
            hqrt_i_stage_row(isa, s, acc, NULL, s->count == 1 ? 0 : (int32_t)c0, n,
                             (uint8_t *)output + first * esize);
        }
    return HQRT_KERNEL_OK;
}
