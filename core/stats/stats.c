/* stats.c — the streaming accumulator of stats.h: range, working histogram, per-channel moments
 * of a layer output and of its pre-activation, and what is read from them at the end.
 *
 * One pass only: the histogram's range is not known before the data has been seen, so the
 * working histogram of HQI_STATS_FINE_BINS bins starts over the first batch's
 * [min(min,0), max(max,0)] and grows by doubling towards the side that overflowed (pairs of bins
 * merge exactly). The reported 100-bin histogram is re-binned from it over the final range: exact
 * when the range never grew (the first batch held the extremes), else a working bin that straddles
 * reported bins is shared between them in proportion to the overlap (the working range is at most
 * 4x the final one, so a working bin is at most 1/2000 of the final range: the shared counts are
 * the only approximation). The working grid depends on the batches (the first one sets it), so
 * two passes give the same histogram when they see the same samples in the same batches. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include "stats/stats.h"
#include "stats/stats_isa.h"
#include "util/util.h"

hq_status_t hqi_stats_init(hqi_stats_t *s, int channels, bool preact, const char *where,
                           hq_error_t *err)
{
    memset(s, 0, sizeof *s);
    s->channels = channels;
    s->has_preact = preact;
    size_t c = channels > 0 ? (size_t)channels : 1;
    s->fine = calloc(HQI_STATS_FINE_BINS, sizeof *s->fine);
    s->channel_mean_sum = calloc(c, sizeof(double));
    s->channel_var_sum = calloc(c, sizeof(double));
    s->scratch = calloc(2 * c, sizeof(double));
    if (preact) {
        s->preact_mean_sum = calloc(c, sizeof(double));
        s->preact_var_sum = calloc(c, sizeof(double));
        s->preact_sq_sum = calloc(c, sizeof(double));
    }
    if (!s->fine || !s->channel_mean_sum || !s->channel_var_sum || !s->scratch ||
        (preact && (!s->preact_mean_sum || !s->preact_var_sum || !s->preact_sq_sum)))
        return hqi_nomem(err, where);
    return HQ_OK;
}

void hqi_stats_free(hqi_stats_t *s)
{
    if (!s)
        return;
    free(s->fine);
    free(s->channel_mean_sum);
    free(s->channel_var_sum);
    free(s->scratch);
    free(s->preact_mean_sum);
    free(s->preact_var_sum);
    free(s->preact_sq_sum);
    memset(s, 0, sizeof *s);
}

static int64_t element_count(const hq_shape_t *shape)
{
    int64_t total = 1;
    for (int d = 0; d < shape->ndim; d++)
        total *= shape->dims[d];
    return total;
}

void hqi_stats_grow(hqi_stats_t *s, double lo, double hi)
{
    for (int guard = 0; guard < 2100 && (lo < s->fine_lo || hi > s->fine_hi); guard++) {
        double width = s->fine_hi - s->fine_lo;
        int64_t *f = s->fine;
        if (hi > s->fine_hi) {
            for (int i = 0; i < HQI_STATS_FINE_BINS / 2; i++)
                f[i] = f[2 * i] + f[2 * i + 1];
            memset(f + HQI_STATS_FINE_BINS / 2, 0, sizeof(int64_t) * (HQI_STATS_FINE_BINS / 2));
            s->fine_hi = s->fine_lo + 2 * width;
        } else {
            for (int i = 0; i < HQI_STATS_FINE_BINS / 2; i++)
                f[HQI_STATS_FINE_BINS - 1 - i] =
                    f[HQI_STATS_FINE_BINS - 1 - 2 * i] + f[HQI_STATS_FINE_BINS - 2 - 2 * i];
            memset(f, 0, sizeof(int64_t) * (HQI_STATS_FINE_BINS / 2));
            s->fine_lo = s->fine_hi - 2 * width;
        }
    }
}

/* One value into one lane of hqi_stats_add_output's range and sums; a non-finite value (v - v
 * is NaN) is counted and masked. */
static inline void lane_add(double v, double *min, double *max, double *sum, double *sq,
                            int64_t *bad)
{
    bool finite = v - v == 0.0;
    double f = finite ? v : 0.0;
    *min = finite && v < *min ? v : *min;
    *max = finite && v > *max ? v : *max;
    *sum += f;
    *sq += f * f;
    *bad += !finite;
}

/* ---- the portable inner loops (stats_isa.h): they define the result ------------------------- */

static void range_lanes_portable(const float *x, int64_t count, double *min, double *max,
                                 double *sum, double *sq, int64_t *bad)
{
    for (int64_t i = 0; i + HQI_STATS_LANES <= count; i += HQI_STATS_LANES)
        for (int j = 0; j < HQI_STATS_LANES; j++)
            lane_add(x[i + j], &min[j], &max[j], &sum[j], &sq[j], &bad[j]);
}

static void bin_portable(const float *x, int64_t count, double lo, double scale, int64_t bins,
                         int64_t delta, int64_t *fine)
{
    for (int64_t k = 0; k < count; k++) {
        double v = x[k];
        if (!isfinite(v))
            continue;
        int64_t b = (int64_t)((v - lo) * scale);
        b = b < 0 ? 0 : b >= bins ? bins - 1 : b;
        fine[b] += delta;
    }
}

/* Positions outside, channels inside: the values are read in memory order, and each channel's
 * sums still add its positions in order. */
static void channel_sums_portable(const float *x, int64_t spatial, int64_t c, double *sum,
                                  double *sq)
{
    double *restrict csum = sum, *restrict csq = sq;
    const float *restrict row = x;
    for (int64_t k = 0; k < spatial; k++, row += c)
        for (int64_t ch = 0; ch < c; ch++) {
            double v = row[ch];
            v = v - v == 0.0 ? v : 0.0; /* a non-finite value counts as 0 */
            csum[ch] += v;
            csq[ch] += v * v;
        }
}

static void channel_sum_portable(const float *x, int64_t spatial, int64_t c, double *sum)
{
    const float *row = x;
    for (int64_t k = 0; k < spatial; k++, row += c)
        for (int64_t ch = 0; ch < c; ch++)
            sum[ch] += row[ch];
}

static void channel_deviation_portable(const float *x, int64_t spatial, int64_t c,
                                       const double *mean, double *sq)
{
    const float *row = x;
    for (int64_t k = 0; k < spatial; k++, row += c)
        for (int64_t ch = 0; ch < c; ch++) {
            double dv = row[ch] - mean[ch];
            sq[ch] += dv * dv;
        }
}

static void finite_range_portable(const float *x, int64_t count, double *min, double *max)
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

const hqi_stats_isa_t hqi_stats_isa_portable = {
    .name = "portable",
    .range_lanes = range_lanes_portable,
    .bin = bin_portable,
    .channel_sums = channel_sums_portable,
    .channel_sum = channel_sum_portable,
    .channel_deviation = channel_deviation_portable,
    .finite_range = finite_range_portable,
};

static const hqi_stats_isa_t *chosen_isa;
static pthread_once_t chosen_isa_once = PTHREAD_ONCE_INIT;

static void choose_isa(void)
{
    const char *force = getenv("HQ_EMULATE_ISA");
    const hqi_stats_isa_t *avx2 = hqi_stats_isa_avx2();
    chosen_isa = avx2 && !(force && !strcmp(force, "portable")) ? avx2 : &hqi_stats_isa_portable;
}

const hqi_stats_isa_t *hqi_stats_isa(void)
{
    pthread_once(&chosen_isa_once, choose_isa);
    return chosen_isa;
}

void hqi_stats_isa_override(const hqi_stats_isa_t *isa)
{
    pthread_once(&chosen_isa_once, choose_isa);
    if (isa)
        chosen_isa = isa;
    else
        choose_isa();
}

/* ---- accumulating --------------------------------------------------------------------------- */

/* Floats of one piece of hqi_stats_add_output's single sweep: small enough that its three
 * loops (range and sums, per-channel sums, binning) read it from the L1 cache. */
#define PIECE_FLOATS 2048

/* The per-sample channel sums (`sum`, `sq` over `spatial` positions) into the accumulator's
 * per-channel moments. */
static void add_sample_moments(hqi_stats_t *s, int64_t spatial, const double *sum, const double *sq)
{
    for (int64_t ch = 0; ch < s->channels; ch++) {
        double mean = sum[ch] / (double)spatial, var = sq[ch] / (double)spatial - mean * mean;
        s->channel_mean_sum[ch] += mean;
        s->channel_var_sum[ch] += var > 0 ? var : 0;
    }
}

/* The lanes' extremes folded into one range: the finite extremes so far (+-INFINITY before
 * any). */
static void lanes_range(const double *lmin, const double *lmax, double *min, double *max)
{
    *min = lmin[0];
    *max = lmax[0];
    for (int j = 1; j < HQI_STATS_LANES; j++) {
        *min = lmin[j] < *min ? lmin[j] : *min;
        *max = lmax[j] > *max ? lmax[j] : *max;
    }
}

/* hqi_stats_add_output's one sweep, once the working histogram exists: the batch in pieces of
 * whole rows, each folded into the range lanes, the per-channel sums and, while the range so far
 * stays inside the working histogram (so that the batch will not grow it), the bins. Returns how
 * many values from the start were binned (all of them unless the range left the histogram).
 * The per-sample moments go into the accumulator as each sample ends. A batch without a finite
 * value adds no moments in the two-sweep order; here each of its samples adds a mean and a
 * variance of +0.0 (its values count as +0.0), which leaves every sum's bits as they were (a sum
 * that starts at +0.0 and only adds never becomes -0.0). */
static int64_t sweep_once(hqi_stats_t *s, const hqi_stats_isa_t *isa, const float *x, int64_t batch,
                          int64_t per, int64_t spatial, double *lmin, double *lmax, double *lsum,
                          double *lsq, int64_t *lbad)
{
    int64_t c = s->channels;
    double *csum = s->scratch, *csq = s->scratch + c;
    /* whole rows, a multiple of the lanes: every piece starts on lane 0 (per % lanes == 0) */
    int64_t rows = PIECE_FLOATS / c / HQI_STATS_LANES * HQI_STATS_LANES;
    rows = rows > 0 ? rows : HQI_STATS_LANES;
    double scale = HQI_STATS_FINE_BINS / (s->fine_hi - s->fine_lo);
    bool inside = true;
    int64_t binned = 0;
    for (int64_t n = 0; n < batch; n++) {
        memset(csum, 0, sizeof(double) * 2 * (size_t)c);
        for (int64_t k = 0; k < spatial; k += rows) {
            int64_t r = spatial - k < rows ? spatial - k : rows;
            const float *piece = x + n * per + k * c;
            isa->range_lanes(piece, r * c, lmin, lmax, lsum, lsq, lbad);
            isa->channel_sums(piece, r, c, csum, csq);
            if (inside) {
                double lo, hi;
                lanes_range(lmin, lmax, &lo, &hi);
                inside = !(lo < s->fine_lo) && !(hi > s->fine_hi);
            }
            if (inside) {
                isa->bin(piece, r * c, s->fine_lo, scale, HQI_STATS_FINE_BINS, 1, s->fine);
                binned = piece - x + r * c;
            }
        }
        add_sample_moments(s, spatial, csum, csq);
    }
    return binned;
}

void hqi_stats_add_output(hqi_stats_t *s, const hq_shape_t *shape, const float *x)
{
    const hqi_stats_isa_t *isa = hqi_stats_isa();
    int64_t total = element_count(shape);
    int64_t batch = shape->dims[0], c = s->channels;
    int64_t per = batch > 0 ? total / batch : 0;
    int64_t spatial = c > 0 ? per / c : 0;
    bool moments = c > 0 && spatial > 0;
    /* Four independent lanes (element i goes to lane i % 4), added up at the end: the sums are
     * not one serial chain of additions, whose latency bounded this loop, and a non-finite
     * value (v - v is NaN) is masked, not branched around. */
    enum { LANES = HQI_STATS_LANES };
    double lmin[LANES], lmax[LANES], lsum[LANES], lsq[LANES];
    int64_t lbad[LANES];
    for (int j = 0; j < LANES; j++) {
        lmin[j] = INFINITY;
        lmax[j] = -INFINITY;
        lsum[j] = lsq[j] = 0.0;
        lbad[j] = 0;
    }
    /* One sweep over memory when the working histogram exists already (every batch but the
     * first): each piece is read by the three loops while it is in cache. The first batch sets
     * the histogram's range, so it is binned after its range is known. Both give the same bits:
     * every sum adds the same values in the same order, and values binned before the range
     * turned out to grow the histogram are taken out again before it grows. */
    bool once =
        s->seen && moments && per % LANES == 0 && batch * per == total && spatial * c == per;
    int64_t binned = 0;
    if (once) {
        binned = sweep_once(s, isa, x, batch, per, spatial, lmin, lmax, lsum, lsq, lbad);
    } else {
        int64_t i = total - total % LANES;
        isa->range_lanes(x, i, lmin, lmax, lsum, lsq, lbad);
        for (int j = 0; i < total; i++, j++)
            lane_add(x[i], &lmin[j], &lmax[j], &lsum[j], &lsq[j], &lbad[j]);
    }
    double bmin = lmin[0], bmax = lmax[0], sum = lsum[0], sumsq = lsq[0];
    int64_t nonfinite = lbad[0];
    for (int j = 1; j < LANES; j++) {
        bmin = lmin[j] < bmin ? lmin[j] : bmin;
        bmax = lmax[j] > bmax ? lmax[j] : bmax;
        sum += lsum[j];
        sumsq += lsq[j];
        nonfinite += lbad[j];
    }
    s->nonfinite += nonfinite;
    if (bmin > bmax)
        return; /* no finite value: nothing else to add (and no bin was counted) */
    s->sum += sum;
    s->sumsq += sumsq;
    double lo = bmin < 0 ? bmin : 0, hi = bmax > 0 ? bmax : 0; /* ranges always contain 0 */
    if (!s->seen) {
        s->seen = true;
        s->min = bmin;
        s->max = bmax;
        s->fine_lo = lo;
        s->fine_hi = hi > lo ? hi : lo + 1.0;
    } else {
        s->min = bmin < s->min ? bmin : s->min;
        s->max = bmax > s->max ? bmax : s->max;
    }
    if (binned > 0 && (lo < s->fine_lo || hi > s->fine_hi)) {
        /* the histogram grows: out with what was binned on the old grid, all in on the new */
        isa->bin(x, binned, s->fine_lo, HQI_STATS_FINE_BINS / (s->fine_hi - s->fine_lo),
                 HQI_STATS_FINE_BINS, -1, s->fine);
        binned = 0;
    }
    hqi_stats_grow(s, lo, hi);
    if (binned < total)
        isa->bin(x + binned, total - binned, s->fine_lo,
                 HQI_STATS_FINE_BINS / (s->fine_hi - s->fine_lo), HQI_STATS_FINE_BINS, 1, s->fine);
    s->count += total - nonfinite;
    if (!moments)
        return;
    if (!once) {
        /* per-channel moments: one sweep of sum and sum of squares per sample and channel */
        double *csum = s->scratch, *csq = s->scratch + c;
        for (int64_t n = 0; n < batch; n++) {
            memset(csum, 0, sizeof(double) * 2 * (size_t)c);
            isa->channel_sums(x + n * per, spatial, c, csum, csq);
            add_sample_moments(s, spatial, csum, csq);
        }
    }
    s->samples += batch;
}

void hqi_stats_add_preact(hqi_stats_t *s, const hq_shape_t *shape, const float *x)
{
    if (!s->has_preact)
        return;
    const hqi_stats_isa_t *isa = hqi_stats_isa();
    int64_t batch = shape->dims[0], c = s->channels, total = element_count(shape);
    int64_t per = batch > 0 ? total / batch : 0;
    int64_t spatial = c > 0 ? per / c : 0;
    if (c <= 0 || spatial <= 0)
        return;
    s->preact_spatial = spatial;
    /* the first value of the first batch starts the range (when it is finite) */
    if (!s->preact_samples && isfinite((double)x[0]))
        s->preact_min = s->preact_max = x[0];
    isa->finite_range(x, total, &s->preact_min, &s->preact_max);
    /* two passes per sample and channel: the variance is stored (q.npz), so no cancellation;
     * each pass reads the positions in memory order, every channel's sum in position order */
    double *sum = s->scratch, *var = s->scratch + c;
    for (int64_t n = 0; n < batch; n++) {
        memset(sum, 0, sizeof(double) * 2 * (size_t)c);
        const float *sample = x + n * per;
        isa->channel_sum(sample, spatial, c, sum);
        for (int64_t ch = 0; ch < c; ch++)
            sum[ch] /= (double)spatial; /* the mean */
        isa->channel_deviation(sample, spatial, c, sum, var);
        for (int64_t ch = 0; ch < c; ch++) {
            double mean = sum[ch], v = var[ch] / (double)spatial;
            if (isfinite(mean) && isfinite(v)) {
                s->preact_mean_sum[ch] += mean;
                s->preact_var_sum[ch] += v;
                s->preact_sq_sum[ch] += mean * mean;
            }
        }
        s->preact_samples++;
    }
}

void hqi_stats_histogram(const hqi_stats_t *s, int64_t hist[HQI_STATS_BINS], double *lo_out,
                         double *hi_out)
{
    memset(hist, 0, sizeof(int64_t) * HQI_STATS_BINS);
    double lo = s->min < 0 ? s->min : 0, hi = s->max > 0 ? s->max : 0;
    if (lo_out)
        *lo_out = s->seen ? lo : 0;
    if (hi_out)
        *hi_out = s->seen ? hi : 0;
    if (!s->seen)
        return;
    if (!(hi > lo) || (s->fine_lo == lo && s->fine_hi == hi)) {
        /* the working grid is the final range: exact (see the file comment) */
        for (int i = 0; i < HQI_STATS_FINE_BINS; i++)
            hist[hi > lo ? i / (HQI_STATS_FINE_BINS / HQI_STATS_BINS) : 0] += s->fine[i];
        return;
    }
    /* a working bin straddling reported bins is shared in proportion to the overlap; the shares
       are rounded by largest remainder so that the total count is kept */
    double share[HQI_STATS_BINS] = {0};
    double fw = (s->fine_hi - s->fine_lo) / HQI_STATS_FINE_BINS, cw = (hi - lo) / HQI_STATS_BINS;
    for (int i = 0; i < HQI_STATS_FINE_BINS; i++) {
        if (!s->fine[i])
            continue;
        double a = s->fine_lo + i * fw, b = a + fw;
        a = a < lo ? lo : a;
        b = b > hi ? hi : b;
        if (b <= a) { /* outside [lo, hi]: only rounding puts counts there */
            int j = s->fine_lo + (i + 0.5) * fw < lo ? 0 : HQI_STATS_BINS - 1;
            share[j] += (double)s->fine[i];
            continue;
        }
        int ja = (int)floor((a - lo) / cw), jb = (int)floor((b - lo) / cw);
        ja = ja < 0 ? 0 : ja >= HQI_STATS_BINS ? HQI_STATS_BINS - 1 : ja;
        jb = jb < 0 ? 0 : jb >= HQI_STATS_BINS ? HQI_STATS_BINS - 1 : jb;
        for (int j = ja; j <= jb; j++) {
            double x0 = lo + j * cw, x1 = x0 + cw;
            double o0 = a > x0 ? a : x0, o1 = b < x1 ? b : x1;
            if (o1 > o0)
                share[j] += (double)s->fine[i] * (o1 - o0) / (b - a);
        }
    }
    int64_t assigned = 0;
    for (int j = 0; j < HQI_STATS_BINS; j++) {
        hist[j] = (int64_t)floor(share[j]);
        share[j] -= (double)hist[j];
        assigned += hist[j];
    }
    for (int64_t left = s->count - assigned; left > 0; left--) {
        int best = 0;
        for (int j = 1; j < HQI_STATS_BINS; j++)
            best = share[j] > share[best] ? j : best;
        hist[best]++;
        share[best] = -1.0;
    }
}

/* The value of rank r (0-based) in sorted order, the counts of a working bin taken as spread
 * evenly over it: within one working bin of the true value. */
static double value_at_rank(const hqi_stats_t *s, double r)
{
    double fw = (s->fine_hi - s->fine_lo) / HQI_STATS_FINE_BINS, below = 0.0;
    for (int i = 0; i < HQI_STATS_FINE_BINS; i++) {
        if (s->fine[i] && below + (double)s->fine[i] > r)
            return s->fine_lo + (i + (r - below + 0.5) / (double)s->fine[i]) * fw;
        below += (double)s->fine[i];
    }
    return s->max;
}

double hqi_stats_percentile(const hqi_stats_t *s, double percent)
{
    if (!s->seen || s->count == 0)
        return 0.0;
    if (percent <= 0)
        return s->min;
    if (percent >= 100)
        return s->max;
    /* numpy's default ("linear"): between the order statistics around p * (count - 1) */
    double k = percent / 100.0 * (double)(s->count - 1);
    double r = floor(k), frac = k - r;
    double v = value_at_rank(s, r) * (1.0 - frac) + value_at_rank(s, r + 1) * frac;
    return v < s->min ? s->min : v > s->max ? s->max : v;
}

void hqi_stats_channel_moments(const hqi_stats_t *s, int64_t samples, float *mean, float *std)
{
    for (int c = 0; c < s->channels; c++) {
        if (mean)
            mean[c] = (float)(s->channel_mean_sum[c] / (double)samples);
        if (std)
            std[c] = (float)sqrt(s->channel_var_sum[c] / (double)samples);
    }
}

void hqi_stats_preact_moments(const hqi_stats_t *s, hqi_stats_spread_t spread, float *mean,
                              float *std)
{
    for (int c = 0; c < s->channels; c++) {
        double n = (double)(s->preact_samples ? s->preact_samples : 1);
        double m = s->preact_mean_sum ? s->preact_mean_sum[c] / n : 0.0;
        double v;
        if (spread == HQI_STATS_SPREAD_PER_SAMPLE || s->preact_spatial > 1)
            v = s->preact_var_sum ? s->preact_var_sum[c] / n : 0.0;
        else /* one value per sample: the spread across samples */
            v = s->preact_sq_sum ? s->preact_sq_sum[c] / n - m * m : 0.0;
        mean[c] = (float)m;
        std[c] = (float)sqrt(v > 0 ? v : 0.0);
    }
}
