/* test_stats_isa.c — the statistics engine's inner loops (core/stats/stats_isa.h) give the same
 * bits on every instruction set: an accumulator fed through the portable table and one fed
 * through the AVX2 table (when this CPU has AVX2) hold the same range, sums, working histogram
 * and per-channel moments, and both hold what the plain serial definition below computes, on
 * random shapes (odd channel counts, one position, one channel, sizes not a multiple of 4),
 * values with zeros of both signs, NaN and infinities, and ranges that grow.
 *
 * The definition grows the working histogram with the library's own hqi_stats_grow: growing is
 * not one of the per-instruction-set loops (every table shares it), and test_stats.c checks it
 * on crafted ranges. What the tables compute is written out again below, whole batches at a
 * time and serially, so that the portable table is checked against it too, not against itself. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stats/stats.h"
#include "stats/stats_isa.h"

/* ---- the definition: the serial loops the engine computed before it had an ISA table ------- */

static void ref_add_output(hqi_stats_t *s, const hq_shape_t *shape, const float *x)
{
    int64_t total = 1;
    for (int d = 0; d < shape->ndim; d++)
        total *= shape->dims[d];
    double lmin[4] = {INFINITY, INFINITY, INFINITY, INFINITY};
    double lmax[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    double lsum[4] = {0}, lsq[4] = {0};
    int64_t lbad[4] = {0};
    for (int64_t i = 0; i < total; i++) {
        int j = (int)(i % 4);
        double v = x[i];
        bool finite = v - v == 0.0;
        double f = finite ? v : 0.0;
        lmin[j] = finite && v < lmin[j] ? v : lmin[j];
        lmax[j] = finite && v > lmax[j] ? v : lmax[j];
        lsum[j] += f;
        lsq[j] += f * f;
        lbad[j] += !finite;
    }
    double bmin = lmin[0], bmax = lmax[0], sum = lsum[0], sumsq = lsq[0];
    int64_t nonfinite = lbad[0];
    for (int j = 1; j < 4; j++) {
        bmin = lmin[j] < bmin ? lmin[j] : bmin;
        bmax = lmax[j] > bmax ? lmax[j] : bmax;
        sum += lsum[j];
        sumsq += lsq[j];
        nonfinite += lbad[j];
    }
    s->nonfinite += nonfinite;
    if (bmin > bmax)
        return;
    s->sum += sum;
    s->sumsq += sumsq;
    double lo = bmin < 0 ? bmin : 0, hi = bmax > 0 ? bmax : 0;
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
    hqi_stats_grow(s, lo, hi);
    double scale = HQI_STATS_FINE_BINS / (s->fine_hi - s->fine_lo);
    for (int64_t k = 0; k < total; k++) {
        double v = x[k];
        if (!isfinite(v))
            continue;
        int64_t b = (int64_t)((v - s->fine_lo) * scale);
        b = b < 0 ? 0 : b >= HQI_STATS_FINE_BINS ? HQI_STATS_FINE_BINS - 1 : b;
        s->fine[b]++;
    }
    s->count += total - nonfinite;
    int64_t batch = shape->dims[0], c = s->channels;
    int64_t per = batch > 0 ? total / batch : 0, spatial = c > 0 ? per / c : 0;
    if (c <= 0 || spatial <= 0)
        return;
    for (int64_t n = 0; n < batch; n++)
        for (int64_t ch = 0; ch < c; ch++) {
            double csum = 0, csq = 0;
            for (int64_t k = 0; k < spatial; k++) {
                double v = x[n * per + k * c + ch];
                v = v - v == 0.0 ? v : 0.0;
                csum += v;
                csq += v * v;
            }
            double mean = csum / (double)spatial, var = csq / (double)spatial - mean * mean;
            s->channel_mean_sum[ch] += mean;
            s->channel_var_sum[ch] += var > 0 ? var : 0;
        }
    s->samples += batch;
}

static void ref_add_preact(hqi_stats_t *s, const hq_shape_t *shape, const float *x)
{
    if (!s->has_preact)
        return;
    int64_t total = 1;
    for (int d = 0; d < shape->ndim; d++)
        total *= shape->dims[d];
    int64_t batch = shape->dims[0], c = s->channels;
    int64_t per = batch > 0 ? total / batch : 0, spatial = c > 0 ? per / c : 0;
    if (c <= 0 || spatial <= 0)
        return;
    s->preact_spatial = spatial;
    for (int64_t i = 0; i < total; i++) {
        double v = x[i];
        if (!isfinite(v))
            continue;
        if (!s->preact_samples && i == 0)
            s->preact_min = s->preact_max = v;
        s->preact_min = v < s->preact_min ? v : s->preact_min;
        s->preact_max = v > s->preact_max ? v : s->preact_max;
    }
    for (int64_t n = 0; n < batch; n++) {
        for (int64_t ch = 0; ch < c; ch++) {
            double sum = 0, var = 0;
            for (int64_t k = 0; k < spatial; k++)
                sum += x[n * per + k * c + ch];
            sum /= (double)spatial;
            for (int64_t k = 0; k < spatial; k++) {
                double dv = x[n * per + k * c + ch] - sum;
                var += dv * dv;
            }
            double v = var / (double)spatial;
            if (isfinite(sum) && isfinite(v)) {
                s->preact_mean_sum[ch] += sum;
                s->preact_var_sum[ch] += v;
                s->preact_sq_sum[ch] += sum * sum;
            }
        }
        s->preact_samples++;
    }
}

/* ---- helpers -------------------------------------------------------------------------------- */

static uint64_t rng = 0x9E3779B97F4A7C15u;

static uint32_t next_u32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static double uniform(void)
{
    return next_u32() / 4294967296.0;
}

/* Random values of one batch: `style` 0 smooth around `offset` with spread `spread`; 1 a ReLU
 * output (most values +0, some -0); 2 sprinkled NaN and infinities; 3 all zeros. */
static void fill(float *x, int64_t n, int style, double offset, double spread)
{
    for (int64_t i = 0; i < n; i++) {
        double u = uniform() * 2 - 1;
        float v = (float)(offset + spread * u * u * u);
        if (style == 1)
            v = uniform() < 0.7 ? (uniform() < 0.1 ? -0.0f : 0.0f) : fabsf(v);
        if (style == 2 && uniform() < 0.05) {
            uint32_t r = next_u32() % 3;
            v = r == 0 ? NAN : r == 1 ? INFINITY : -INFINITY;
        }
        if (style == 3)
            v = uniform() < 0.5 ? 0.0f : -0.0f;
        x[i] = v;
    }
}

/* Bitwise equality of doubles (so -0 differs from +0 and NaN equals itself). */
static void assert_same_doubles(const double *a, const double *b, int64_t n, const char *what)
{
    if (n > 0 && memcmp(a, b, (size_t)n * sizeof *a) != 0) {
        for (int64_t i = 0; i < n; i++)
            if (memcmp(&a[i], &b[i], sizeof *a))
                print_error("%s[%lld]: %.17g != %.17g\n", what, (long long)i, a[i], b[i]);
        fail_msg("%s differs", what);
    }
}

static void assert_same_stats(const hqi_stats_t *a, const hqi_stats_t *b)
{
    assert_int_equal(a->seen, b->seen);
    assert_same_doubles(&a->min, &b->min, 1, "min");
    assert_same_doubles(&a->max, &b->max, 1, "max");
    assert_int_equal(a->count, b->count);
    assert_int_equal(a->nonfinite, b->nonfinite);
    assert_same_doubles(&a->sum, &b->sum, 1, "sum");
    assert_same_doubles(&a->sumsq, &b->sumsq, 1, "sumsq");
    assert_same_doubles(&a->fine_lo, &b->fine_lo, 1, "fine_lo");
    assert_same_doubles(&a->fine_hi, &b->fine_hi, 1, "fine_hi");
    assert_memory_equal(a->fine, b->fine, HQI_STATS_FINE_BINS * sizeof *a->fine);
    assert_int_equal(a->samples, b->samples);
    assert_same_doubles(a->channel_mean_sum, b->channel_mean_sum, a->channels, "channel_mean");
    assert_same_doubles(a->channel_var_sum, b->channel_var_sum, a->channels, "channel_var");
    assert_int_equal(a->preact_samples, b->preact_samples);
    if (a->has_preact) {
        assert_same_doubles(&a->preact_min, &b->preact_min, 1, "preact_min");
        assert_same_doubles(&a->preact_max, &b->preact_max, 1, "preact_max");
        assert_same_doubles(a->preact_mean_sum, b->preact_mean_sum, a->channels, "preact_mean");
        assert_same_doubles(a->preact_var_sum, b->preact_var_sum, a->channels, "preact_var");
        assert_same_doubles(a->preact_sq_sum, b->preact_sq_sum, a->channels, "preact_sq");
    }
}

/* The tables under test: portable always, AVX2 when the CPU has it. */
static int tables(const hqi_stats_isa_t **out)
{
    int n = 0;
    out[n++] = &hqi_stats_isa_portable;
    if (hqi_stats_isa_avx2())
        out[n++] = hqi_stats_isa_avx2();
    return n;
}

/* Feeds `batches` random batches of one shape to the definition and to an accumulator per
 * table, then compares them. */
static void check_case(int64_t batch, int64_t h, int64_t w, int64_t c, int batches, int style,
                       bool preact, bool late_outlier)
{
    const hqi_stats_isa_t *isa[2];
    int count = tables(isa);
    hqi_stats_t ref, got[2];
    assert_int_equal(hqi_stats_init(&ref, (int)c, preact, "test", NULL), HQ_OK);
    for (int t = 0; t < count; t++)
        assert_int_equal(hqi_stats_init(&got[t], (int)c, preact, "test", NULL), HQ_OK);
    hq_shape_t shape = {.ndim = 4, .dims = {batch, h, w, c}};
    int64_t n = batch * h * w * c;
    float *x = malloc((size_t)n * sizeof *x + 1);
    assert_non_null(x);
    for (int b = 0; b < batches; b++) {
        /* the range moves, widens and narrows from batch to batch: the working histogram grows
           in some batches and holds others whole */
        fill(x, n, b == 0 && style == 2 ? 0 : style, (b % 3 - 1) * 0.5 * b,
             1.0 + (b * 5 + style) % 4);
        if (late_outlier && b > 0)
            x[n - 1] = (float)(40.0 * b); /* the last value grows the histogram */
        ref_add_preact(&ref, &shape, x);
        ref_add_output(&ref, &shape, x);
        for (int t = 0; t < count; t++) {
            hqi_stats_isa_override(isa[t]);
            hqi_stats_add_preact(&got[t], &shape, x);
            hqi_stats_add_output(&got[t], &shape, x);
        }
    }
    hqi_stats_isa_override(NULL);
    for (int t = 0; t < count; t++) {
        assert_same_stats(&got[t], &ref);
        hqi_stats_free(&got[t]);
    }
    hqi_stats_free(&ref);
    free(x);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void every_table_gives_the_bits_of_the_serial_definition_on_random_shapes(void **state)
{
    (void)state;
    static const int64_t channels[] = {1, 2, 3, 4, 5, 7, 8, 12, 15, 16, 17, 20, 31, 33, 48, 64};
    for (int round = 0; round < 120; round++) {
        int64_t c = channels[next_u32() % (sizeof channels / sizeof channels[0])];
        int64_t batch = 1 + next_u32() % 3, h = 1 + next_u32() % 9, w = 1 + next_u32() % 11;
        int style = (int)(next_u32() % 3);
        check_case(batch, h, w, c, 1 + (int)(next_u32() % 4), style, round % 2 == 0,
                   round % 5 == 0);
    }
}

static void every_table_agrees_on_large_relu_outputs_and_zeros_of_both_signs(void **state)
{
    (void)state;
    check_case(2, 40, 33, 16, 3, 1, true, false);  /* long runs of +0 in the bin of 0 */
    check_case(3, 17, 19, 24, 2, 1, false, false); /* 16 + 4 + ... channel blocks */
    check_case(1, 64, 64, 1, 2, 1, true, false);   /* one channel */
    check_case(2, 5, 7, 9, 2, 3, true, false);     /* only zeros: the extremes are signed zeros */
    check_case(1, 300, 7, 3, 2, 2, true, false);   /* non-finite values across many groups */
}

static void a_range_that_grows_late_in_a_batch_is_binned_on_the_grown_histogram(void **state)
{
    (void)state;
    /* many pieces per sample; the last value of every later batch grows the histogram after
       most of the batch was binned on the old one */
    check_case(2, 48, 40, 8, 4, 0, false, true);
    check_case(3, 33, 31, 5, 3, 1, true, true); /* per sample not a multiple of 4 */
    check_case(1, 90, 90, 36, 3, 2, false, true);
}

static void a_tap_whose_last_extent_is_not_the_channel_count_keeps_the_old_sums(void **state)
{
    (void)state;
    const hqi_stats_isa_t *isa[2];
    int count = tables(isa);
    enum { N = 2, SIZE = N * 3 * 4 * 4 };
    float x[SIZE];
    hq_shape_t shape = {.ndim = 4, .dims = {N, 3, 4, 4}}; /* 48 values a sample, 5 channels */
    for (int t = 0; t < count; t++) {
        hqi_stats_t s, ref;
        assert_int_equal(hqi_stats_init(&s, 5, false, "test", NULL), HQ_OK);
        assert_int_equal(hqi_stats_init(&ref, 5, false, "test", NULL), HQ_OK);
        hqi_stats_isa_override(isa[t]);
        for (int b = 0; b < 3; b++) {
            fill(x, SIZE, 0, 0.1 * b, 1.0 + b);
            hqi_stats_add_output(&s, &shape, x);
            ref_add_output(&ref, &shape, x);
        }
        assert_same_stats(&s, &ref);
        hqi_stats_free(&s);
        hqi_stats_free(&ref);
    }
    hqi_stats_isa_override(NULL);
}

static void binning_with_minus_one_takes_out_what_plus_one_put_in(void **state)
{
    (void)state;
    const hqi_stats_isa_t *isa[2];
    int count = tables(isa);
    enum { N = 4099 };
    float x[N];
    fill(x, N, 2, 0.25, 3.0);
    x[0] = 3.25f; /* the top of the range: the last bin */
    static int64_t want[HQI_STATS_FINE_BINS], got[HQI_STATS_FINE_BINS];
    double lo = -2.75, scale = HQI_STATS_FINE_BINS / 6.0;
    memset(want, 0, sizeof want);
    hqi_stats_isa_portable.bin(x, N, lo, scale, HQI_STATS_FINE_BINS, 1, want);
    for (int t = 0; t < count; t++) {
        memset(got, 0, sizeof got);
        isa[t]->bin(x, N, lo, scale, HQI_STATS_FINE_BINS, 1, got);
        assert_memory_equal(got, want, sizeof want);
        assert_true(got[HQI_STATS_FINE_BINS - 1] > 0);
        isa[t]->bin(x, 1000, lo, scale, HQI_STATS_FINE_BINS, -1, got);
        isa[t]->bin(x + 1000, N - 1000, lo, scale, HQI_STATS_FINE_BINS, -1, got);
        for (int b = 0; b < HQI_STATS_FINE_BINS; b++)
            assert_int_equal(got[b], 0);
    }
}

static void a_batch_without_finite_values_changes_only_the_non_finite_count(void **state)
{
    (void)state;
    const hqi_stats_isa_t *isa[2];
    int count = tables(isa);
    enum { N = 2, H = 3, W = 1, C = 8, SIZE = N * H * W * C };
    float finite[SIZE], bad[SIZE];
    fill(finite, SIZE, 0, 0.5, 2.0);
    for (int i = 0; i < SIZE; i++)
        bad[i] = i % 2 ? NAN : -INFINITY;
    hq_shape_t shape = {.ndim = 4, .dims = {N, H, W, C}};
    for (int t = 0; t < count; t++) {
        hqi_stats_t s, ref;
        assert_int_equal(hqi_stats_init(&s, C, false, "test", NULL), HQ_OK);
        assert_int_equal(hqi_stats_init(&ref, C, false, "test", NULL), HQ_OK);
        hqi_stats_isa_override(isa[t]);
        /* first alone (no working histogram yet), then after a finite batch (one sweep) */
        hqi_stats_add_output(&s, &shape, bad);
        assert_false(s.seen);
        assert_int_equal(s.nonfinite, SIZE);
        assert_int_equal(s.samples, 0);
        hqi_stats_add_output(&s, &shape, finite);
        ref_add_output(&ref, &shape, bad);
        ref_add_output(&ref, &shape, finite);
        double mean_before[C];
        memcpy(mean_before, s.channel_mean_sum, sizeof mean_before);
        hqi_stats_add_output(&s, &shape, bad);
        ref_add_output(&ref, &shape, bad);
        assert_int_equal(s.nonfinite, 2 * SIZE);
        assert_int_equal(s.count, SIZE);
        assert_int_equal(s.samples, N);
        assert_memory_equal(s.channel_mean_sum, mean_before, sizeof mean_before);
        assert_same_stats(&s, &ref);
        hqi_stats_free(&s);
        hqi_stats_free(&ref);
    }
    hqi_stats_isa_override(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_table_gives_the_bits_of_the_serial_definition_on_random_shapes),
        cmocka_unit_test(every_table_agrees_on_large_relu_outputs_and_zeros_of_both_signs),
        cmocka_unit_test(a_range_that_grows_late_in_a_batch_is_binned_on_the_grown_histogram),
        cmocka_unit_test(a_tap_whose_last_extent_is_not_the_channel_count_keeps_the_old_sums),
        cmocka_unit_test(binning_with_minus_one_takes_out_what_plus_one_put_in),
        cmocka_unit_test(a_batch_without_finite_values_changes_only_the_non_finite_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
