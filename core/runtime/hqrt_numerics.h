/* hqrt_numerics.h — the integer arithmetic every quantized kernel shares: rounding, the
 * gemmlowp/TFLite requantization (32-bit path), the exact 64-bit requantization used by 16-bit
 * layers, clamping and code load/store. docs/numerics.md states each formula; these functions are
 * the definition. Shared verbatim by libhq (quantized emulation) and libhqrt (deploy runtime), so
 * it depends on nothing but <stdint.h> and <stddef.h>: plain C11, no allocation, no float math
 * except in the I/O helpers hqrt_quantize_value / hqrt_dequantize_value (which run outside the
 * layers, on the model's inputs and outputs). */
#ifndef HQRT_NUMERICS_H
#define HQRT_NUMERICS_H

#include <stddef.h>
#include <stdint.h>

/* Fraction bits of the fixed-point sums of multi-term ops (ew_add, ew_sub, ew_max, ew_min, conv
 * with elementwise_add): each term is requantized to the output scale times 2^8, the terms are
 * added, and the sum is rounded once more (RoundingDivideByPOT by 8). */
#define HQRT_SUM_FRAC_BITS 8
/* Fraction bits of the bilinear resize weights (per axis; the 2-D weight has 2x this). */
#define HQRT_RESIZE_FRAC_BITS 15
/* Accumulators of the 64-bit path are saturated to +-2^62 before requantization (never reached
 * by a real layer: 16-bit x 16-bit products over 2^28 terms stay below 2^60). */
#define HQRT_ACC_LIMIT ((int64_t)1 << 62)

/* Requantization path of a layer (q.npz key requant_path:0). */
enum {
    HQRT_PATH_GEMMLOWP = 0, /* accumulator saturated to int32, SRDHM then RoundingDivideByPOT */
    HQRT_PATH_WIDE = 1,     /* int64 accumulator, one exact rounding (half away from zero) */
};

static inline int64_t hqrt_clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static inline int32_t hqrt_clamp32(int64_t v, int32_t lo, int32_t hi)
{
    return (int32_t)(v < lo ? lo : v > hi ? hi : v);
}

/* gemmlowp SaturatingRoundingDoublingHighMul: a * b / 2^31 rounded to nearest with ties toward
 * +inf (gemmlowp's nudge: 0.5 -> 1, -0.5 -> 0, -1.5 -> -1), the only overflow (a == b ==
 * INT32_MIN) saturating to INT32_MAX. */
static inline int32_t hqrt_srdhm(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN)
        return INT32_MAX;
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    /* C division truncates toward zero, as gemmlowp's; with the nudge: ties toward +inf */
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* gemmlowp RoundingDivideByPOT: round(x / 2^exponent), ties away from zero; exponent 0..31. */
static inline int32_t hqrt_rounding_divide_by_pot(int32_t x, int exponent)
{
    if (exponent <= 0)
        return x;
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* The same on int64: round(x / 2^exponent), ties away from zero; exponent 0..62. */
static inline int64_t hqrt_rounding_divide_by_pot64(int64_t x, int exponent)
{
    if (exponent <= 0)
        return x;
    const int64_t mask = (int64_t)(((uint64_t)1 << exponent) - 1);
    const int64_t remainder = x & mask;
    const int64_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLite MultiplyByQuantizedMultiplier (32-bit path): x * m * 2^(shift - 31), computed as
 * RoundingDivideByPOT(SRDHM(x * 2^max(shift, 0), m), max(-shift, 0)). `m` in [2^30, 2^31)
 * (or 0, or its negation), shift in [-31, 30]. The left shift saturates to int32. */
static inline int32_t hqrt_requantize32(int32_t x, int32_t m, int32_t shift)
{
    int left = shift > 0 ? shift : 0;
    int right = shift > 0 ? 0 : -shift;
    int64_t shifted = (int64_t)x * ((int64_t)1 << left);
    int32_t xs = hqrt_clamp32(shifted, INT32_MIN, INT32_MAX);
    return hqrt_rounding_divide_by_pot(hqrt_srdhm(xs, m), right);
}

/* The 64-bit path: round(x * m / 2^(31 - shift)), ONE rounding, ties away from zero, computed
 * exactly (96-bit intermediate from two 64-bit products). x is saturated to +-2^62 first; the
 * result saturates to +-2^62. shift in [-31, 30]. */
static inline int64_t hqrt_requantize64(int64_t x, int32_t m, int32_t shift)
{
    if (m == 0 || x == 0)
        return 0;
    x = hqrt_clamp64(x, -HQRT_ACC_LIMIT, HQRT_ACC_LIMIT);
    const int negative = (x < 0) != (m < 0);
    const uint64_t ax = (uint64_t)(x < 0 ? -x : x);
    const uint64_t am = (uint64_t)(m < 0 ? -(int64_t)m : (int64_t)m); /* <= 2^31 */
    /* ax * am = p_hi * 2^32 + p_lo exactly; ax <= 2^62, am <= 2^31 */
    const uint64_t p_lo = (ax & 0xFFFFFFFFu) * am; /* < 2^63 */
    const uint64_t p_hi = (ax >> 32) * am;         /* < 2^61 */
    /* the product as two 64-bit words (hi:lo) */
    uint64_t lo = p_lo + (p_hi << 32);
    uint64_t hi = (p_hi >> 32) + (lo < p_lo ? 1u : 0u);
    const int s = 31 - shift; /* 1 .. 62 for shift in [-31, 30] */
    if (s <= 0 || s > 62)
        return negative ? -HQRT_ACC_LIMIT : HQRT_ACC_LIMIT;
    /* add 2^(s-1): round half away from zero on the magnitude */
    const uint64_t lo2 = lo + ((uint64_t)1 << (s - 1));
    hi += lo2 < lo ? 1u : 0u;
    uint64_t q = (lo2 >> s) | (hi << (64 - s));
    if ((hi >> s) != 0 || q > (uint64_t)HQRT_ACC_LIMIT)
        q = (uint64_t)HQRT_ACC_LIMIT;
    return negative ? -(int64_t)q : (int64_t)q;
}

/* a + b saturated to +-2^62 (sums of requantized terms, each within +-2^62). */
static inline int64_t hqrt_add_sat(int64_t a, int64_t b)
{
    a = hqrt_clamp64(a, -HQRT_ACC_LIMIT, HQRT_ACC_LIMIT);
    b = hqrt_clamp64(b, -HQRT_ACC_LIMIT, HQRT_ACC_LIMIT);
    return hqrt_clamp64(a + b, -HQRT_ACC_LIMIT, HQRT_ACC_LIMIT);
}

/* Requantization on the layer's path (HQRT_PATH_GEMMLOWP or HQRT_PATH_WIDE). */
static inline int64_t hqrt_requantize(int64_t acc, int32_t m, int32_t shift, int32_t path)
{
    if (path == HQRT_PATH_WIDE)
        return hqrt_requantize64(acc, m, shift);
    return hqrt_requantize32(hqrt_clamp32(acc, INT32_MIN, INT32_MAX), m, shift);
}

/* ---- activation codes ------------------------------------------------------------------- */

/* Activation storage: 8-bit codes are uint8_t, 16-bit codes uint16_t. */
static inline int32_t hqrt_load(const void *data, int32_t bits, size_t index)
{
    return bits == 16 ? (int32_t)((const uint16_t *)data)[index]
                      : (int32_t)((const uint8_t *)data)[index];
}

static inline void hqrt_store(void *data, int32_t bits, size_t index, int32_t code)
{
    if (bits == 16)
        ((uint16_t *)data)[index] = (uint16_t)code;
    else
        ((uint8_t *)data)[index] = (uint8_t)code;
}

/* Largest code of a `bits`-bit activation: 255 or 65535. */
static inline int32_t hqrt_code_max(int32_t bits)
{
    return bits == 16 ? 65535 : 255;
}

/* Round half away from zero of a double to int64, saturating at +-2^62 (NaN gives 0). */
static inline int64_t hqrt_round_double(double v)
{
    if (!(v == v))
        return 0;
    if (v >= 4611686018427387904.0)
        return HQRT_ACC_LIMIT;
    if (v <= -4611686018427387904.0)
        return -HQRT_ACC_LIMIT;
    int64_t t = (int64_t)v; /* toward zero, exact below 2^62 */
    const double frac = v - (double)t;
    if (frac >= 0.5)
        t++;
    else if (frac <= -0.5)
        t--;
    return t;
}

/* Input quantization (outside the integer layers): q = clamp(round(x / scale) + zp, 0, max),
 * the division in double, rounding half away from zero. */
static inline int32_t hqrt_quantize_value(float x, float scale, int32_t zp, int32_t bits)
{
    const int64_t r = hqrt_round_double((double)x / (double)scale);
    return hqrt_clamp32(r + zp, 0, hqrt_code_max(bits));
}

/* Output dequantization: x = (float)((q - zp) * scale), the product in double. */
static inline float hqrt_dequantize_value(int32_t q, float scale, int32_t zp)
{
    return (float)((double)(q - zp) * (double)scale);
}

#endif
