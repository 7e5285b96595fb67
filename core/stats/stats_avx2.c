/* stats_avx2.c — the AVX2 inner loops of the statistics engine (stats_isa.h). Each function
 * carries __attribute__((target("avx2"))), so the file builds with the project's portable flags
 * and runs only after hqi_stats_isa_avx2 saw AVX2 on the CPU. They give the bits of the portable
 * loops: values widen to double exactly, four doubles to a register are the four lanes of
 * range_lanes (or four channels), each channel's sums add its positions in order, and FMA is not
 * enabled, so no multiply and add are fused. */
#include <math.h>
#include <stdbool.h>

#include "stats/stats_isa.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>

#define HQ_AVX2 __attribute__((target("avx2")))
#define HQ_AVX2_INLINE __attribute__((target("avx2"), always_inline)) static inline

/* The four floats at p as doubles. */
HQ_AVX2_INLINE __m256d load4(const float *p)
{
    return _mm256_cvtps_pd(_mm_loadu_ps(p));
}

/* All ones in the lanes holding a finite value (v - v is 0 there, NaN elsewhere). */
HQ_AVX2_INLINE __m256d finite_mask(__m256d v)
{
    return _mm256_cmp_pd(_mm256_sub_pd(v, v), _mm256_setzero_pd(), _CMP_EQ_OQ);
}

/* v with its non-finite lanes made NaN (all ones), given the inverse of finite_mask. */
HQ_AVX2_INLINE __m256d nan_unless_finite(__m256d v, __m256d finite)
{
    return _mm256_or_pd(v, _mm256_xor_pd(finite, _mm256_castsi256_pd(_mm256_set1_epi64x(-1))));
}

/* The serial `v < lo ? v : lo` and `v > hi ? v : hi` of each lane: vminpd / vmaxpd return their
 * second operand unless the first is smaller / larger (so also when either is NaN, and the
 * earlier of two equal values, +0 and -0 included, stays). One instruction on the chain through
 * lo and hi, where compare-and-blend took two. */
HQ_AVX2_INLINE void extremes(__m256d v, __m256d *lo, __m256d *hi)
{
    *lo = _mm256_min_pd(v, *lo);
    *hi = _mm256_max_pd(v, *hi);
}

HQ_AVX2 static void range_lanes_avx2(const float *x, int64_t count, double *min, double *max,
                                     double *sum, double *sq, int64_t *bad)
{
    __m256d lo = _mm256_loadu_pd(min), hi = _mm256_loadu_pd(max);
    __m256d s = _mm256_loadu_pd(sum), q = _mm256_loadu_pd(sq);
    int64_t nonfinite[HQI_STATS_LANES] = {0};
    for (int64_t i = 0; i + HQI_STATS_LANES <= count; i += HQI_STATS_LANES) {
        __m256d v = load4(x + i), finite = finite_mask(v);
        __m256d f = _mm256_and_pd(v, finite); /* a non-finite value adds +0.0, as lane_add */
        extremes(nan_unless_finite(v, finite), &lo, &hi);
        s = _mm256_add_pd(s, f);
        q = _mm256_add_pd(q, _mm256_mul_pd(f, f));
        int ok = _mm256_movemask_pd(finite);
        if (ok != 0xF)
            for (int j = 0; j < HQI_STATS_LANES; j++)
                nonfinite[j] += !((ok >> j) & 1);
    }
    _mm256_storeu_pd(min, lo);
    _mm256_storeu_pd(max, hi);
    _mm256_storeu_pd(sum, s);
    _mm256_storeu_pd(sq, q);
    for (int j = 0; j < HQI_STATS_LANES; j++)
        bad[j] += nonfinite[j];
}

HQ_AVX2 static void bin_avx2(const float *x, int64_t count, double lo, double scale, int64_t bins,
                             int64_t delta, int64_t *fine)
{
    const __m256d vlo = _mm256_set1_pd(lo), vscale = _mm256_set1_pd(scale);
    const __m256d zero = _mm256_setzero_pd(), last = _mm256_set1_pd((double)(bins - 1));
    /* The bin of 0 (most values after a ReLU) is counted in a register when a group of four
     * falls in it: incrementing one bin in memory again and again waits on its last store. */
    int64_t b0 = (int64_t)((0.0 - lo) * scale);
    b0 = b0 < 0 ? 0 : b0 >= bins ? bins - 1 : b0;
    const __m128i zero_bin = _mm_set1_epi32((int32_t)b0);
    int64_t zeros = 0;
    int64_t k = 0;
    for (; k + 4 <= count; k += 4) {
        __m256d v = load4(x + k);
        int ok = _mm256_movemask_pd(finite_mask(v));
        /* (v - lo) * scale clamped to [0, bins - 1] before truncation: the bin the portable
           loop gets by truncating, then clamping (the range covers every finite value, so the
           product is far inside what truncation to 32 bits holds) */
        __m256d b = _mm256_mul_pd(_mm256_sub_pd(v, vlo), vscale);
        b = _mm256_min_pd(_mm256_max_pd(b, zero), last);
        __m128i bin4 = _mm256_cvttpd_epi32(b);
        if (ok == 0xF && _mm_movemask_epi8(_mm_cmpeq_epi32(bin4, zero_bin)) == 0xFFFF) {
            zeros += 4;
            continue;
        }
        int32_t idx[4];
        _mm_storeu_si128((__m128i *)idx, bin4);
        if (ok == 0xF) {
            fine[idx[0]] += delta;
            fine[idx[1]] += delta;
            fine[idx[2]] += delta;
            fine[idx[3]] += delta;
        } else {
            for (int j = 0; j < 4; j++)
                fine[idx[j]] += (ok >> j) & 1 ? delta : 0;
        }
    }
    fine[b0] += zeros * delta;
    for (; k < count; k++) {
        double v = x[k];
        if (!isfinite(v))
            continue;
        int64_t b = (int64_t)((v - lo) * scale);
        b = b < 0 ? 0 : b >= bins ? bins - 1 : b;
        fine[b] += delta;
    }
}

/* What one channel sweep adds per value (a compile-time constant of the sweeps below). */
enum sweep { SWEEP_SUMS, SWEEP_SUM, SWEEP_DEVIATION };

/* The sweep over `spatial` rows (`stride` floats apart) of the 4 * W channels at x, the sums in
 * registers: W = 4 (16 channels, one cache line of a row) or W = 1. */
HQ_AVX2_INLINE void sweep_block(const float *x, int64_t spatial, int64_t stride, enum sweep kind,
                                int width, const double *mean, double *sum, double *sq)
{
    __m256d s[4], q[4], m[4];
    for (int w = 0; w < width; w++) {
        s[w] = kind == SWEEP_DEVIATION ? _mm256_setzero_pd() : _mm256_loadu_pd(sum + 4 * w);
        q[w] = kind == SWEEP_SUM ? _mm256_setzero_pd() : _mm256_loadu_pd(sq + 4 * w);
        m[w] = kind == SWEEP_DEVIATION ? _mm256_loadu_pd(mean + 4 * w) : _mm256_setzero_pd();
    }
    const float *row = x;
    for (int64_t k = 0; k < spatial; k++, row += stride)
        for (int w = 0; w < width; w++) {
            __m256d v = load4(row + 4 * w);
            if (kind == SWEEP_SUMS) {
                v = _mm256_and_pd(v, finite_mask(v)); /* a non-finite value counts as 0 */
                s[w] = _mm256_add_pd(s[w], v);
                q[w] = _mm256_add_pd(q[w], _mm256_mul_pd(v, v));
            } else if (kind == SWEEP_SUM) {
                s[w] = _mm256_add_pd(s[w], v);
            } else {
                __m256d d = _mm256_sub_pd(v, m[w]);
                q[w] = _mm256_add_pd(q[w], _mm256_mul_pd(d, d));
            }
        }
    for (int w = 0; w < width; w++) {
        if (kind != SWEEP_DEVIATION)
            _mm256_storeu_pd(sum + 4 * w, s[w]);
        if (kind != SWEEP_SUM)
            _mm256_storeu_pd(sq + 4 * w, q[w]);
    }
}

/* One channel, scalar, as the portable loops. */
HQ_AVX2_INLINE void sweep_one(const float *x, int64_t spatial, int64_t stride, enum sweep kind,
                              const double *mean, double *sum, double *sq)
{
    double s = kind == SWEEP_DEVIATION ? 0.0 : *sum, q = kind == SWEEP_SUM ? 0.0 : *sq;
    for (int64_t k = 0; k < spatial; k++) {
        double v = x[k * stride];
        if (kind == SWEEP_SUMS) {
            v = v - v == 0.0 ? v : 0.0;
            s += v;
            q += v * v;
        } else if (kind == SWEEP_SUM) {
            s += v;
        } else {
            double d = v - *mean;
            q += d * d;
        }
    }
    if (kind != SWEEP_DEVIATION)
        *sum = s;
    if (kind != SWEEP_SUM)
        *sq = q;
}

/* Channel blocks: 16 channels at a time, then 4, then one; each block reads every row once. */
HQ_AVX2_INLINE void sweep(const float *x, int64_t spatial, int64_t c, enum sweep kind,
                          const double *mean, double *sum, double *sq)
{
    int64_t ch = 0;
    for (; ch + 16 <= c; ch += 16)
        sweep_block(x + ch, spatial, c, kind, 4, mean ? mean + ch : NULL, sum ? sum + ch : NULL,
                    sq ? sq + ch : NULL);
    for (; ch + 4 <= c; ch += 4)
        sweep_block(x + ch, spatial, c, kind, 1, mean ? mean + ch : NULL, sum ? sum + ch : NULL,
                    sq ? sq + ch : NULL);
    for (; ch < c; ch++)
        sweep_one(x + ch, spatial, c, kind, mean ? mean + ch : NULL, sum ? sum + ch : NULL,
                  sq ? sq + ch : NULL);
}

HQ_AVX2 static void channel_sums_avx2(const float *x, int64_t spatial, int64_t c, double *sum,
                                      double *sq)
{
    sweep(x, spatial, c, SWEEP_SUMS, NULL, sum, sq);
}

HQ_AVX2 static void channel_sum_avx2(const float *x, int64_t spatial, int64_t c, double *sum)
{
    sweep(x, spatial, c, SWEEP_SUM, NULL, sum, NULL);
}

HQ_AVX2 static void channel_deviation_avx2(const float *x, int64_t spatial, int64_t c,
                                           const double *mean, double *sq)
{
    sweep(x, spatial, c, SWEEP_DEVIATION, mean, NULL, sq);
}

/* The serial loop of the portable table (for the sign of a zero extreme, below). */
static void finite_range_serial(const float *x, int64_t count, double *min, double *max)
{
    double lo = *min, hi = *max;
    for (int64_t i = 0; i < count; i++) {
        double v = x[i];
        if (!isfinite(v))
            continue;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    *min = lo;
    *max = hi;
}

HQ_AVX2 static void finite_range_avx2(const float *x, int64_t count, double *min, double *max)
{
    __m256d lo = _mm256_set1_pd(*min), hi = _mm256_set1_pd(*max);
    int64_t i = 0;
    for (; i + 4 <= count; i += 4) {
        __m256d v = load4(x + i);
        extremes(nan_unless_finite(v, finite_mask(v)), &lo, &hi);
    }
    double l[4], h[4];
    _mm256_storeu_pd(l, lo);
    _mm256_storeu_pd(h, hi);
    double rlo = *min, rhi = *max;
    for (int j = 0; j < 4; j++) {
        rlo = l[j] < rlo ? l[j] : rlo;
        rhi = h[j] > rhi ? h[j] : rhi;
    }
    for (; i < count; i++) {
        double v = x[i];
        if (!isfinite(v))
            continue;
        rlo = v < rlo ? v : rlo;
        rhi = v > rhi ? v : rhi;
    }
    /* Equal values are interchangeable except +0 and -0: the lanes may keep another zero than
       the serial loop's first one, so a zero extreme is taken again by the serial loop. */
    if (rlo == 0.0 || rhi == 0.0) {
        finite_range_serial(x, count, min, max);
        return;
    }
    *min = rlo;
    *max = rhi;
}

static const hqi_stats_isa_t isa_avx2 = {
    .name = "avx2",
    .range_lanes = range_lanes_avx2,
    .bin = bin_avx2,
    .channel_sums = channel_sums_avx2,
    .channel_sum = channel_sum_avx2,
    .channel_deviation = channel_deviation_avx2,
    .finite_range = finite_range_avx2,
};

const hqi_stats_isa_t *hqi_stats_isa_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? &isa_avx2 : NULL;
}

#else

const hqi_stats_isa_t *hqi_stats_isa_avx2(void)
{
    return NULL;
}

#endif
