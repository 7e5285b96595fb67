/* test_stats.c — the statistics engine (core/stats): ranges, histogram counts, the doubling of the
 * working histogram, per-channel and pre-activation moments, and that calibration's view (what
 * q.npz stores) and hq-diag's view (hq_layer_stats_t) of one accumulator agree. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "diag/diag_internal.h"
#include "stats/stats.h"

static hq_shape_t shape4(int64_t n, int64_t h, int64_t w, int64_t c)
{
    hq_shape_t s = {.ndim = 4, .dims = {n, h, w, c}};
    return s;
}

static int64_t total(const int64_t *hist)
{
    int64_t t = 0;
    for (int i = 0; i < HQI_STATS_BINS; i++)
        t += hist[i];
    return t;
}

static void ranges_and_counts_leave_out_non_finite_values(void **state)
{
    (void)state;
    hqi_stats_t s;
    assert_int_equal(hqi_stats_init(&s, 1, false, "test", NULL), HQ_OK);
    float x[6] = {1.5f, -2.0f, NAN, 4.0f, INFINITY, 0.25f};
    hq_shape_t shape = shape4(1, 2, 3, 1);
    hqi_stats_add_output(&s, &shape, x);
    assert_true(s.seen);
    assert_float_equal(s.min, -2.0, 0);
    assert_float_equal(s.max, 4.0, 0);
    assert_int_equal(s.count, 4);
    assert_int_equal(s.nonfinite, 2);
    int64_t hist[HQI_STATS_BINS];
    double lo, hi;
    hqi_stats_histogram(&s, hist, &lo, &hi);
    assert_float_equal(lo, -2.0, 0);
    assert_float_equal(hi, 4.0, 0);
    assert_int_equal(total(hist), 4);
    hqi_stats_free(&s);
}

static void histogram_is_exact_when_the_first_batch_holds_the_extremes(void **state)
{
    (void)state;
    hqi_stats_t s;
    assert_int_equal(hqi_stats_init(&s, 1, false, "test", NULL), HQ_OK);
    enum { N = 1000 };
    float x[N];
    for (int i = 0; i < N; i++)
        x[i] = (float)(-3.0 + 10.0 * ((i * 37) % N) / (N - 1)); /* [-3, 7], shuffled */
    hq_shape_t shape = shape4(1, N, 1, 1);
    hqi_stats_add_output(&s, &shape, x);
    hqi_stats_add_output(&s, &shape, x); /* same extremes: the grid does not move */
    int64_t hist[HQI_STATS_BINS], exact[HQI_STATS_BINS] = {0};
    double lo, hi;
    hqi_stats_histogram(&s, hist, &lo, &hi);
    double scale = HQI_STATS_FINE_BINS / (hi - lo);
    for (int i = 0; i < N; i++) {
        int64_t fine = (int64_t)((x[i] - lo) * scale);
        fine = fine >= HQI_STATS_FINE_BINS ? HQI_STATS_FINE_BINS - 1 : fine;
        exact[fine / (HQI_STATS_FINE_BINS / HQI_STATS_BINS)] += 2;
    }
    for (int b = 0; b < HQI_STATS_BINS; b++)
        assert_int_equal(hist[b], exact[b]);
    hqi_stats_free(&s);
}

static void working_range_doubles_towards_the_side_that_overflowed(void **state)
{
    (void)state;
    hqi_stats_t s;
    assert_int_equal(hqi_stats_init(&s, 1, false, "test", NULL), HQ_OK);
    hq_shape_t shape = shape4(1, 4, 1, 1);
    float first[4] = {0.0f, 0.25f, 0.5f, 1.0f};
    hqi_stats_add_output(&s, &shape, first);
    assert_float_equal(s.fine_lo, 0.0, 0);
    assert_float_equal(s.fine_hi, 1.0, 0);
    float up[4] = {3.0f, 0.5f, 0.5f, 0.5f}; /* 3 > 1: [0, 2], then [0, 4] */
    hqi_stats_add_output(&s, &shape, up);
    assert_float_equal(s.fine_lo, 0.0, 0);
    assert_float_equal(s.fine_hi, 4.0, 0);
    float down[4] = {-5.0f, 1.0f, 2.0f, 0.0f}; /* -5 < 0: [-4, 4], then [-12, 4] */
    hqi_stats_add_output(&s, &shape, down);
    assert_float_equal(s.fine_lo, -12.0, 0);
    assert_float_equal(s.fine_hi, 4.0, 0);
    int64_t fine = 0;
    for (int i = 0; i < HQI_STATS_FINE_BINS; i++)
        fine += s.fine[i];
    assert_int_equal(fine, 12); /* merging bins keeps every count */
    int64_t hist[HQI_STATS_BINS];
    double lo, hi;
    hqi_stats_histogram(&s, hist, &lo, &hi);
    assert_float_equal(lo, -5.0, 0);
    assert_float_equal(hi, 3.0, 0);
    assert_int_equal(total(hist), 12);
    /* the extremes land in the end bins, the four 0.5s together in theirs */
    assert_int_equal(hist[0], 1);
    assert_int_equal(hist[HQI_STATS_BINS - 1], 1);
    assert_int_equal(hist[(int)((0.5 + 5.0) / 8.0 * HQI_STATS_BINS)], 4);
    assert_float_equal(hqi_stats_percentile(&s, 0), -5.0, 0);
    assert_float_equal(hqi_stats_percentile(&s, 100), 3.0, 0);
    hqi_stats_free(&s);
}

static void channel_moments_are_per_sample_over_positions_then_averaged(void **state)
{
    (void)state;
    hqi_stats_t s;
    assert_int_equal(hqi_stats_init(&s, 2, true, "test", NULL), HQ_OK);
    /* 2 samples, 2 positions, 2 channels: sample 0 channel 0 = {1, 3}, channel 1 = {0, 0};
       sample 1 channel 0 = {5, 5}, channel 1 = {-2, 2} */
    float x[8] = {1, 0, 3, 0, 5, -2, 5, 2};
    hq_shape_t shape = shape4(2, 2, 1, 2);
    hqi_stats_add_output(&s, &shape, x);
    hqi_stats_add_preact(&s, &shape, x);
    assert_int_equal(s.samples, 2);
    float mean[2], std[2];
    hqi_stats_channel_moments(&s, s.samples, mean, std);
    assert_float_equal(mean[0], (2.0 + 5.0) / 2, 1e-7);
    assert_float_equal(mean[1], 0.0, 1e-7);
    assert_float_equal(std[0], sqrt((1.0 + 0.0) / 2), 1e-7); /* per-sample variances 1 and 0 */
    assert_float_equal(std[1], sqrt((0.0 + 4.0) / 2), 1e-7);
    hqi_stats_preact_moments(&s, HQI_STATS_SPREAD_PER_SAMPLE, mean, std);
    assert_float_equal(mean[0], 3.5, 1e-7);
    assert_float_equal(std[1], sqrt(2.0), 1e-7);
    assert_float_equal(s.preact_min, -2.0, 0);
    assert_float_equal(s.preact_max, 5.0, 0);
    hqi_stats_free(&s);
}

static void one_position_per_sample_stores_the_spread_across_samples(void **state)
{
    (void)state;
    hqi_stats_t s;
    assert_int_equal(hqi_stats_init(&s, 1, true, "test", NULL), HQ_OK);
    float x[4] = {1, 3, 5, 7}; /* dense: 4 samples, one value each */
    hq_shape_t shape = {.ndim = 2, .dims = {4, 1}};
    hqi_stats_add_preact(&s, &shape, x);
    float mean, per_sample, stored;
    hqi_stats_preact_moments(&s, HQI_STATS_SPREAD_PER_SAMPLE, &mean, &per_sample);
    hqi_stats_preact_moments(&s, HQI_STATS_SPREAD_STORED, &mean, &stored);
    assert_float_equal(mean, 4.0, 0);
    assert_float_equal(per_sample, 0.0, 0);
    assert_float_equal(stored, sqrt(5.0), 1e-6);
    hqi_stats_free(&s);
}

static void calibration_and_hq_diag_views_agree_on_a_crafted_tensor(void **state)
{
    (void)state;
    hqi_stats_t s;
    assert_int_equal(hqi_stats_init(&s, 3, true, "test", NULL), HQ_OK);
    /* a conv output in three batches whose range grows both ways */
    enum { N = 2, H = 5, W = 4, C = 3, SIZE = N * H * W * C };
    float x[3][SIZE];
    for (int b = 0; b < 3; b++)
        for (int i = 0; i < SIZE; i++)
            x[b][i] = (float)(sin(i * 0.7 + b) * (1 + b * b) + (i % C) * 0.5);
    hq_shape_t shape = shape4(N, H, W, C);
    for (int b = 0; b < 3; b++) {
        hqi_stats_add_preact(&s, &shape, x[b]);
        hqi_stats_add_output(&s, &shape, x[b]);
    }
    /* calibration's view: what hqi_calibration_store writes */
    int64_t stored_hist[HQI_STATS_BINS];
    hqi_stats_histogram(&s, stored_hist, NULL, NULL);
    float limvals[2] = {(float)s.min, (float)s.max}, channel_mean[C], pre_mean[C], pre_std[C];
    hqi_stats_channel_moments(&s, 3 * N, channel_mean, NULL);
    hqi_stats_preact_moments(&s, HQI_STATS_SPREAD_STORED, pre_mean, pre_std);
    /* hq-diag's view */
    float arrays[4 * C];
    hq_layer_stats_t view = {0};
    assert_int_equal(hqi_diag_stats_view(&s, arrays, &view), 4 * C);
    assert_int_equal(view.count, SIZE * 3);
    assert_int_equal(view.samples, 3 * N);
    assert_float_equal(view.min, limvals[0], 0);
    assert_float_equal(view.max, limvals[1], 0);
    assert_float_equal(view.histogram_lo, fminf(limvals[0], 0), 0);
    assert_float_equal(view.histogram_hi, fmaxf(limvals[1], 0), 0);
    assert_memory_equal(view.histogram, stored_hist, sizeof stored_hist);
    assert_int_equal(total(stored_hist), SIZE * 3);
    for (int c = 0; c < C; c++) {
        assert_float_equal(view.channel_mean[c], channel_mean[c], 0);
        assert_float_equal(view.preact_mean[c], pre_mean[c], 0);
        assert_float_equal(view.preact_std[c], pre_std[c], 0); /* H*W > 1: one definition */
    }
    hqi_stats_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ranges_and_counts_leave_out_non_finite_values),
        cmocka_unit_test(histogram_is_exact_when_the_first_batch_holds_the_extremes),
        cmocka_unit_test(working_range_doubles_towards_the_side_that_overflowed),
        cmocka_unit_test(channel_moments_are_per_sample_over_positions_then_averaged),
        cmocka_unit_test(one_position_per_sample_stores_the_spread_across_samples),
        cmocka_unit_test(calibration_and_hq_diag_views_agree_on_a_crafted_tensor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
