/* stats_isa.h — the inner loops of the statistics engine (stats.c), one table per instruction
 * set: the portable loops (stats.c) define the result, and every other table gives the same bits
 * (each sum adds the same values in the same order, without fused multiply-adds; a bin count is
 * an integer). Chosen once per process: the AVX2 table (stats_avx2.c) when the CPU has AVX2,
 * unless HQ_EMULATE_ISA=portable, the switch that also keeps the float emulator on its portable
 * loops. Prefix hqi_stats_. Internal to libhq. */
#ifndef HQI_STATS_ISA_H
#define HQI_STATS_ISA_H

#include <stdint.h>

/* Lanes of the range and sums of hqi_stats_add_output: element i goes to lane i % 4. */
#define HQI_STATS_LANES 4

typedef struct hqi_stats_isa {
    const char *name; /* "portable", "avx2" */
    /* Adds x[0..count) (count a multiple of HQI_STATS_LANES) to the lanes: for a finite value,
       min/max (strict comparisons: the first of equal values stays), sum and sum of squares in
       element order; a non-finite value counts in `bad` and adds 0.0 to the sums. */
    void (*range_lanes)(const float *x, int64_t count, double min[HQI_STATS_LANES],
                        double max[HQI_STATS_LANES], double sum[HQI_STATS_LANES],
                        double sq[HQI_STATS_LANES], int64_t bad[HQI_STATS_LANES]);
    /* Adds `delta` (1, or -1 to take values out again) to fine[b] for each finite value of
       x[0..count), b = (int64)((v - lo) * scale) clamped to [0, bins - 1]. The caller's range
       covers every finite value. */
    void (*bin)(const float *x, int64_t count, double lo, double scale, int64_t bins, int64_t delta,
                int64_t *fine);
    /* Per channel of `spatial` rows of `channels` values: sum[c] += v and sq[c] += v * v, each
       channel's positions in order, a non-finite value taken as 0. */
    void (*channel_sums)(const float *x, int64_t spatial, int64_t channels, double *sum,
                         double *sq);
    /* Per channel: sum[c] += v over the positions in order (non-finite values included). */
    void (*channel_sum)(const float *x, int64_t spatial, int64_t channels, double *sum);
    /* Per channel: sq[c] += (v - mean[c])^2 over the positions in order. */
    void (*channel_deviation)(const float *x, int64_t spatial, int64_t channels, const double *mean,
                              double *sq);
    /* The range of the finite values of x[0..count) folded into *min / *max in element order
       (strict comparisons, as a serial loop: the same zero sign too). */
    void (*finite_range)(const float *x, int64_t count, double *min, double *max);
} hqi_stats_isa_t;

/* The table in use (chosen on first call). */
const hqi_stats_isa_t *hqi_stats_isa(void);
/* Tests: use `isa` from now on; NULL: choose again as on first use. */
void hqi_stats_isa_override(const hqi_stats_isa_t *isa);

extern const hqi_stats_isa_t hqi_stats_isa_portable;
/* The AVX2 table, or NULL when this CPU (or this build) has no AVX2. */
const hqi_stats_isa_t *hqi_stats_isa_avx2(void);

#endif
