/* hqrt_kernels_table.c — elementwise ops as per-channel lookup tables (hqrt_fast.h).
 *
 * An elementwise op whose one operand x is 8-bit codes of the output's shape and whose other
 * operand s is broadcast along every axis but the channels ([1,1,1,C]: a squeeze-and-excitation
 * scale), with a per-tensor stage and 8-bit output codes, gives each output a code that depends
 * on x's code and the channel alone: out = T[c][x]. The table of 256 codes per channel is
 * computed by the vector elementwise kernel itself (hqrt_i_elementwise_fast on x = 0..255 against
 * s), so every entry is the op's own code, and the op becomes one gather per output. Two such
 * ops in a row, m = f(x, s) then out = g(x, m) with m read by nothing else (PP-OCR's x + x·se),
 * compose the same way: T[c][q] = g(q, f(q, s[c])), one pass instead of two with three
 * requantizations per output. Tables cost 256·C evaluations, so they pay from a few hundred
 * pixels on (the callers check). AVX-512 (16 lanes of vpgatherdd) or AVX2 (8 lanes).
 *
 * A sum (or max, min) of two 8-bit tensors of the output's shape requantizes each operand's
 * code on its own, t = requantize(q - zp): two tables of 256 int32 terms (hqrt_requantize, the
 * reference's own function) replace the two requantizations per output with two gathers; where
 * every term is below 2^30 in magnitude the sum z stays in int32 and the reference's
 * RoundingDivideByPOT(z, 8), zero point and clamps finish it in int32 lanes (no negative-side
 * multiplier, no output table: those run the vector kernel). */
#include <string.h>

#include "hqrt_fast.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define HQRT_HAVE_TABLE_VECTORS 1
#include <immintrin.h>
#pragma GCC diagnostic ignored "-Wpsabi"
#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
#define AVX2_TARGET __attribute__((target("avx2")))
#endif

size_t hqrt_i_ew_table_bytes(int32_t channels)
{
    /* two tables (a pair's intermediate one), and 4 bytes read at the last entry by a gather */
    return channels > 0 ? 2 * (size_t)channels * 256 + 64 : 0;
}

/* C, when s has every extent 1 but its last, equal to the output's C > 1; else 0. */
static int32_t channel_operand(const hqrt_shape_t *s, const hqrt_shape_t *os)
{
    if (s->ndim != os->ndim || os->ndim < 2)
        return 0;
    for (int d = 0; d < s->ndim - 1; d++)
        if (s->dims[d] != 1)
            return 0;
    int32_t c = s->dims[s->ndim - 1];
    return c > 1 && c == os->dims[os->ndim - 1] ? c : 0;
}

static bool same_shape(const hqrt_shape_t *a, const hqrt_shape_t *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->dims[d] != b->dims[d])
            return false;
    return true;
}

static int64_t elements(const hqrt_shape_t *s)
{
    int64_t n = 1;
    for (int d = 0; d < s->ndim; d++)
        n *= s->dims[d];
    return n;
}

/* table[c * 256 + q] = the op's code for x = q in channel c, x the operand in slot x_is_a (a)
 * or b, s the other one (C codes). */
static bool build_table(int isa, const hqrt_ew_params_t *p, bool x_is_a, const void *s, int32_t c,
                        uint8_t *table)
{
    uint8_t codes[256];
    for (int q = 0; q < 256; q++)
        codes[q] = (uint8_t)q;
    const hqrt_shape_t xs = {.ndim = 2, .dims = {1, 256}}, ss = {.ndim = 2, .dims = {c, 1}},
                       ts = {.ndim = 2, .dims = {c, 256}};
    int rc = x_is_a ? hqrt_i_elementwise_fast(isa, p, &xs, codes, &ss, s, &ts, table)
                    : hqrt_i_elementwise_fast(isa, p, &ss, s, &xs, codes, &ts, table);
    return rc == HQRT_KERNEL_OK;
}

/* The second op of a pair over the first's table: table[c * 256 + q] = g(q, m[c * 256 + q]). */
static bool build_second(int isa, const hqrt_ew_params_t *g, bool x_is_a, const uint8_t *m,
                         int32_t c, uint8_t *table)
{
    uint8_t codes[256];
    for (int q = 0; q < 256; q++)
        codes[q] = (uint8_t)q;
    const hqrt_shape_t xs = {.ndim = 2, .dims = {1, 256}}, ts = {.ndim = 2, .dims = {c, 256}};
    int rc = x_is_a ? hqrt_i_elementwise_fast(isa, g, &xs, codes, &ts, m, &ts, table)
                    : hqrt_i_elementwise_fast(isa, g, &ts, m, &xs, codes, &ts, table);
    return rc == HQRT_KERNEL_OK;
}

#ifdef HQRT_HAVE_TABLE_VECTORS
/* out[i] = table[(i % c) * 256 + x[i]] for `pixels` pixels of c channels, 16 lanes a gather. */
AVX512_TARGET static void lookup_avx512(const uint8_t *table, const uint8_t *x, int64_t pixels,
                                        int32_t c, uint8_t *out)
{
    const __m512i lane =
        _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                           _mm512_set1_epi32(256));
    const __m512i low = _mm512_set1_epi32(0xff);
    for (int64_t px = 0; px < pixels; px++) {
        const uint8_t *xp = x + px * c;
        uint8_t *op = out + px * c;
        for (int32_t c0 = 0; c0 < c; c0 += 16) {
            __mmask16 k = c - c0 >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (c - c0)) - 1);
            __m512i idx = _mm512_add_epi32(
                _mm512_add_epi32(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, xp + c0)), lane),
                _mm512_set1_epi32(c0 * 256));
            __m512i v = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), k, idx, table, 1);
            _mm512_mask_cvtepi32_storeu_epi8(op + c0, k, _mm512_and_si512(v, low));
        }
    }
}

/* The same, 8 lanes a gather. */
AVX2_TARGET static void lookup_avx2(const uint8_t *table, const uint8_t *x, int64_t pixels,
                                    int32_t c, uint8_t *out)
{
    const __m256i lane = _mm256_setr_epi32(0, 256, 512, 768, 1024, 1280, 1536, 1792);
    const __m256i low = _mm256_set1_epi32(0xff);
    for (int64_t px = 0; px < pixels; px++) {
        const uint8_t *xp = x + px * c;
        uint8_t *op = out + px * c;
        int32_t c0 = 0;
        for (; c0 + 8 <= c; c0 += 8) {
            __m256i idx = _mm256_add_epi32(
                _mm256_add_epi32(
                    _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(xp + c0))),
                    lane),
                _mm256_set1_epi32(c0 * 256));
            __m256i v = _mm256_and_si256(
                _mm256_i32gather_epi32((const int *)(const void *)table, idx, 1), low);
            __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
            _mm_storel_epi64((__m128i *)(void *)(op + c0), _mm_packus_epi16(w, w));
        }
        for (; c0 < c; c0++)
            op[c0] = table[c0 * 256 + xp[c0]];
    }
}
#endif

static void lookup(int isa, const uint8_t *table, const uint8_t *x, int64_t pixels, int32_t c,
                   uint8_t *out)
{
#ifdef HQRT_HAVE_TABLE_VECTORS
    if (isa == HQRT_ISA_AVX512) {
        lookup_avx512(table, x, pixels, c, out);
        return;
    }
    if (isa == HQRT_ISA_AVX2) {
        lookup_avx2(table, x, pixels, c, out);
        return;
    }
#endif
    for (int64_t px = 0; px < pixels; px++)
        for (int32_t ch = 0; ch < c; ch++)
            out[px * c + ch] = table[ch * 256 + x[px * c + ch]];
}

/* Fewest outputs of a two-tensor op worth its two term tables (512 scalar requantizations). */
#define EW_TERMS_MIN 4096

/* The 256 terms of one operand: t[q] = hqrt_requantize(q - zp, m, shift, path); false when one
 * is 2^30 or more in magnitude (then sums could leave int32). */
static bool term_table(int32_t zp, int32_t m, int32_t shift, int32_t path, int32_t t[256])
{
    for (int q = 0; q < 256; q++) {
        int64_t v = hqrt_requantize(q - zp, m, shift, path);
        if (v <= -((int64_t)1 << 30) || v >= (int64_t)1 << 30)
            return false;
        t[q] = (int32_t)v;
    }
    return true;
}

#ifdef HQRT_HAVE_TABLE_VECTORS
AVX512_TARGET static void terms_avx512(const hqrt_ew_params_t *p, const int32_t *ta,
                                       const int32_t *tb, const uint8_t *a, const uint8_t *b,
                                       int64_t n, uint8_t *out)
{
    const __m512i zero = _mm512_setzero_si512(), low = _mm512_set1_epi32(255),
                  half = _mm512_set1_epi32(127), one = _mm512_set1_epi32(1);
    const __m512i zp = _mm512_set1_epi32(p->out.out_zp), amin = _mm512_set1_epi32(p->out.act_min),
                  amax = _mm512_set1_epi32(p->out.act_max);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512i qa = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, a + i));
        __m512i qb = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, b + i));
        __m512i x = _mm512_i32gather_epi32(qa, ta, 4), y = _mm512_i32gather_epi32(qb, tb, 4);
        __m512i z = p->op == HQRT_EW_ADD   ? _mm512_add_epi32(x, y)
                    : p->op == HQRT_EW_MAX ? _mm512_max_epi32(x, y)
                                           : _mm512_min_epi32(x, y);
        /* RoundingDivideByPOT(z, 8): up one where the remainder exceeds 127 (128 below 0) */
        __m512i threshold =
            _mm512_mask_add_epi32(half, _mm512_cmplt_epi32_mask(z, zero), half, one);
        __m512i r = _mm512_srai_epi32(z, 8);
        r = _mm512_mask_add_epi32(r, _mm512_cmpgt_epi32_mask(_mm512_and_si512(z, low), threshold),
                                  r, one);
        __m512i code = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(r, zp), amin), amax);
        _mm512_mask_cvtepi32_storeu_epi8(out + i, k, code);
    }
}

AVX2_TARGET static void terms_avx2(const hqrt_ew_params_t *p, const int32_t *ta, const int32_t *tb,
                                   const uint8_t *a, const uint8_t *b, int64_t n, uint8_t *out)
{
    const __m256i zero = _mm256_setzero_si256(), low = _mm256_set1_epi32(255),
                  half = _mm256_set1_epi32(127);
    const __m256i zp = _mm256_set1_epi32(p->out.out_zp), amin = _mm256_set1_epi32(p->out.act_min),
                  amax = _mm256_set1_epi32(p->out.act_max);
    for (int64_t i = 0; i < n; i += 8) {
        const int w = n - i >= 8 ? 8 : (int)(n - i);
        uint8_t ca[8] = {0}, cb[8] = {0};
        memcpy(ca, a + i, (size_t)w);
        memcpy(cb, b + i, (size_t)w);
        __m256i qa = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(void *)ca));
        __m256i qb = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(void *)cb));
        __m256i x = _mm256_i32gather_epi32(ta, qa, 4), y = _mm256_i32gather_epi32(tb, qb, 4);
        __m256i z = p->op == HQRT_EW_ADD   ? _mm256_add_epi32(x, y)
                    : p->op == HQRT_EW_MAX ? _mm256_max_epi32(x, y)
                                           : _mm256_min_epi32(x, y);
        /* a mask is -1 where true, so subtracting it adds 1 */
        __m256i threshold = _mm256_sub_epi32(half, _mm256_cmpgt_epi32(zero, z));
        __m256i r = _mm256_sub_epi32(_mm256_srai_epi32(z, 8),
                                     _mm256_cmpgt_epi32(_mm256_and_si256(z, low), threshold));
        __m256i code = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(r, zp), amin), amax);
        __m128i h =
            _mm_packus_epi32(_mm256_castsi256_si128(code), _mm256_extracti128_si256(code, 1));
        uint8_t t[16];
        _mm_storeu_si128((__m128i *)(void *)t, _mm_packus_epi16(h, h));
        memcpy(out + i, t, (size_t)w);
    }
}
#endif

/* Two 8-bit tensors of the output's shape, summed (or max, min): by term tables; false when not
 * of that form. */
static bool ew_by_terms(int isa, const hqrt_ew_params_t *p, const hqrt_shape_t *as, const void *a,
                        const hqrt_shape_t *bs, const void *b, const hqrt_shape_t *os, void *out)
{
#ifdef HQRT_HAVE_TABLE_VECTORS
    if (p->op == HQRT_EW_MULT || p->a_bits != 8 || p->b_bits != 8 || p->out.out_bits != 8 ||
        p->out.lut || p->out.multiplier_neg || !same_shape(as, os) || !same_shape(bs, os) ||
        elements(os) < EW_TERMS_MIN)
        return false;
    int32_t ta[256], tb[256];
    if (!term_table(p->a_zp, p->a_multiplier, p->a_shift, p->out.path, ta) ||
        !term_table(p->b_zp, p->b_multiplier, p->b_shift, p->out.path, tb))
        return false;
    if (isa == HQRT_ISA_AVX512)
        terms_avx512(p, ta, tb, a, b, elements(os), out);
    else
        terms_avx2(p, ta, tb, a, b, elements(os), out);
    return true;
#else
    (void)isa, (void)p, (void)as, (void)a, (void)bs, (void)b, (void)os, (void)out;
    return false;
#endif
}

/* An op the table takes: per-tensor stage, 8-bit output codes of out's shape. */
static bool table_op(const hqrt_ew_params_t *p)
{
    return p->out.count == 1 && p->out.out_bits == 8;
}

int hqrt_i_elementwise_table(int isa, const hqrt_ew_params_t *p, const hqrt_shape_t *as,
                             const void *a, const hqrt_shape_t *bs, const void *b,
                             const hqrt_shape_t *os, void *out, void *scratch, size_t scratch_size)
{
    if (isa == HQRT_ISA_REFERENCE ||
        hqrt_elementwise_check(p, as, a, bs, b, os, out) != HQRT_KERNEL_OK)
        return -1;
    if (ew_by_terms(isa, p, as, a, bs, b, os, out))
        return HQRT_KERNEL_OK;
    if (!scratch || !table_op(p))
        return -1;
    const bool x_is_a = p->a_bits == 8 && same_shape(as, os) && channel_operand(bs, os) > 0;
    const bool x_is_b =
        !x_is_a && p->b_bits == 8 && same_shape(bs, os) && channel_operand(as, os) > 0;
    if (!x_is_a && !x_is_b)
        return -1;
    const int32_t c = channel_operand(x_is_a ? bs : as, os);
    const int64_t pixels = elements(os) / c;
    if (pixels < HQRT_EW_TABLE_MIN_PIXELS || scratch_size < hqrt_i_ew_table_bytes(c))
        return -1;
    uint8_t *table = scratch;
    if (!build_table(isa, p, x_is_a, x_is_a ? b : a, c, table))
        return -1;
    lookup(isa, table, x_is_a ? a : b, pixels, c, out);
    return HQRT_KERNEL_OK;
}

size_t hqrt_i_ew_pair_table_bytes(int32_t channels)
{
    return channels > 0 ? 2 * (size_t)channels * 256 : 0;
}

int hqrt_i_elementwise_pair_table(int isa, const hqrt_ew_params_t *f, bool f_x_is_a,
                                  const hqrt_ew_params_t *g, bool g_x_is_a, int32_t channels,
                                  const void *s, void *table)
{
    const int32_t s_bits = f_x_is_a ? f->b_bits : f->a_bits;
    if (!s || !table || channels < 2 || !table_op(f) || !table_op(g) ||
        (f_x_is_a ? f->a_bits : f->b_bits) != 8 || (s_bits != 8 && s_bits != 16) ||
        (g_x_is_a ? g->a_bits : g->b_bits) != 8 || (g_x_is_a ? g->b_bits : g->a_bits) != 8)
        return -1;
    /* the final table first: a gather at its last entry reads into the intermediate one */
    uint8_t *final = table, *m = (uint8_t *)table + (size_t)channels * 256;
    if (!build_table(isa, f, f_x_is_a, s, channels, m) ||
        !build_second(isa, g, g_x_is_a, m, channels, final))
        return -1;
    return HQRT_KERNEL_OK;
}

void hqrt_i_elementwise_lookup(int isa, const void *table, const void *x, int64_t pixels,
                               int32_t channels, void *out)
{
    lookup(isa, table, x, pixels, channels, out);
}

int hqrt_i_elementwise_pair(int isa, const hqrt_ew_params_t *f, bool f_x_is_a,
                            const hqrt_ew_params_t *g, bool g_x_is_a, const hqrt_shape_t *xs,
                            const void *x, const hqrt_shape_t *ss, const void *s, void *out,
                            void *scratch, size_t scratch_size)
{
    const int32_t c = channel_operand(ss, xs);
    if (isa == HQRT_ISA_REFERENCE || !x || !out || c == 0 ||
        scratch_size < hqrt_i_ew_pair_table_bytes(c) + 64 ||
        hqrt_i_elementwise_pair_table(isa, f, f_x_is_a, g, g_x_is_a, c, s, scratch) !=
            HQRT_KERNEL_OK)
        return -1;
    lookup(isa, scratch, x, elements(xs) / c, c, out);
    return HQRT_KERNEL_OK;
}
