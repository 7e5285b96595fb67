/* test_calibrate.c — the calibration pass against numpy: a crafted model (input -> conv 3x3 relu
 * -> global_avg_pool -> conv 1x1) whose params, data and expected statistics come from
 * tests/fixtures/calibrate/make_calibrate.py. Ranges, per-channel means and pre-activation
 * moments must match; the histogram exactly when one batch holds the extremes, within the
 * documented re-binning error otherwise. */
#include <math.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "quant/calibrate.h"
#include "test_graphs.h"

#define DIR HQ_FIXTURES "/calibrate/"

typedef struct fixture {
    hq_graph_t *graph;
    hq_npz_t *params;
    hq_npz_t *expected;
    hq_dataset_t *data;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    hq_error_t err = {0};
    assert_int_equal(hq_graph_create("net", &f->graph, NULL), HQ_OK);
    int in = test_add_layer(f->graph, "input_layer1", HQ_LAYER_INPUT, -1);
    hq_shape_t shape = {4, {-1, 6, 5, 3}};
    assert_int_equal(hq_layer_set_output_shape(f->graph, in, &shape, NULL), HQ_OK);
    int c1 = test_add_layer(f->graph, "conv1", HQ_LAYER_CONV, in);
    test_set_conv(f->graph, c1, 3, 3, 4, 1, HQ_ACT_RELU);
    int gap = test_add_layer(f->graph, "gap", HQ_LAYER_GLOBAL_AVG_POOL, c1);
    int c2 = test_add_layer(f->graph, "conv2", HQ_LAYER_CONV, gap);
    test_set_conv(f->graph, c2, 1, 4, 2, 0, HQ_ACT_LINEAR);
    test_add_layer(f->graph, "output_layer1", HQ_LAYER_OUTPUT, c2);
    if (hq_graph_finalize(f->graph, "test.hn", &err))
        fail_msg("finalize: %s", err.message);
    if (hq_npz_read_file(DIR "params.npz", &f->params, &err) ||
        hq_npz_read_file(DIR "expected.npz", &f->expected, &err) ||
        hq_dataset_open(DIR "data.npy", f->graph, &f->data, &err))
        fail_msg("fixture: %s (run make_calibrate.py)", err.message);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    hq_dataset_destroy(f->data);
    hq_npz_destroy(f->expected);
    hq_npz_destroy(f->params);
    hq_graph_destroy(f->graph);
    free(f);
    return 0;
}

static const void *expect(const fixture_t *f, const char *layer, const char *what, int64_t n)
{
    char key[128];
    snprintf(key, sizeof key, "%s/%s", layer, what);
    const hq_tensor_t *t = hq_npz_get(f->expected, key);
    if (!t || hq_tensor_count(t) != n)
        fail_msg("expected.npz: no %s with %lld values", key, (long long)n);
    return t->data;
}

static void assert_near(double got, double want, double tol, const char *what)
{
    if (!(fabs(got - want) <= tol * (1.0 + fabs(want))))
        fail_msg("%s: got %.9g, want %.9g", what, got, want);
}

static hqi_calibration_t *calibrate(fixture_t *f, int64_t batch)
{
    hqi_calibration_t *cal = NULL;
    hq_error_t err = {0};
    if (hqi_calibrate(f->graph, f->params, f->data, NULL, 0, batch, 1, NULL, NULL, NULL, &cal,
                      &err))
        fail_msg("calibrate: %s", err.message);
    return cal;
}

static void check_ranges_and_moments(fixture_t *f, const hqi_calibration_t *cal)
{
    const char *layers[] = {"input_layer1", "conv1", "gap", "conv2"};
    for (int i = 0; i < 4; i++) {
        int index = hq_graph_find(f->graph, layers[i]);
        const hqi_stats_t *s = &cal->layers[index];
        const float *lim = expect(f, layers[i], "limvals", 2);
        assert_near(s->min, lim[0], 1e-5, layers[i]);
        assert_near(s->max, lim[1], 1e-5, layers[i]);
        const float *mean = expect(f, layers[i], "channel_mean", s->channels);
        for (int c = 0; c < s->channels; c++)
            assert_near(s->channel_mean_sum[c] / (double)cal->samples, mean[c], 1e-5, "channel mean");
    }
    const char *convs[] = {"conv1", "conv2"};
    for (int i = 0; i < 2; i++) {
        const hqi_stats_t *s = &cal->layers[hq_graph_find(f->graph, convs[i])];
        float m[8], sd[8];
        hqi_stats_preact_moments(s, HQI_STATS_SPREAD_STORED, m, sd);
        const float *want_m = expect(f, convs[i], "preact_mean", s->channels);
        const float *want_s = expect(f, convs[i], "preact_std", s->channels);
        for (int c = 0; c < s->channels; c++) {
            assert_near(m[c], want_m[c], 1e-4, "preact mean");
            assert_near(sd[c], want_s[c], 1e-4, "preact std");
        }
        assert_true(s->preact_samples == 12);
    }
    /* relu: conv1's pre-activation goes negative, its output does not */
    const hqi_stats_t *s1 = &cal->layers[hq_graph_find(f->graph, "conv1")];
    assert_true(s1->preact_min < 0.0);
    assert_true(s1->min >= 0.0);
}

static int64_t hist_l1(const int64_t *a, const int64_t *b)
{
    int64_t d = 0;
    for (int i = 0; i < HQI_STATS_BINS; i++)
        d += a[i] > b[i] ? a[i] - b[i] : b[i] - a[i];
    return d;
}

static void one_batch_matches_numpy_exactly(void **state)
{
    fixture_t *f = *state;
    hqi_calibration_t *cal = calibrate(f, 12);
    assert_int_equal(cal->samples, 12);
    check_ranges_and_moments(f, cal);
    const char *layers[] = {"input_layer1", "conv1", "gap", "conv2"};
    for (int i = 0; i < 4; i++) {
        const hqi_stats_t *s = &cal->layers[hq_graph_find(f->graph, layers[i])];
        int64_t hist[HQI_STATS_BINS];
        hqi_stats_histogram(s, hist, NULL, NULL);
        const int64_t *want = expect(f, layers[i], "hist", HQI_STATS_BINS);
        /* float32 vs float64 edges may move a value sitting on a bin edge */
        if (hist_l1(hist, want) > 2)
            fail_msg("%s: histogram differs from numpy by %lld counts", layers[i],
                     (long long)hist_l1(hist, want));
    }
    const hqi_stats_t *in = &cal->layers[hq_graph_find(f->graph, "input_layer1")];
    double width = (in->max - in->min) / HQI_STATS_FINE_BINS;
    assert_near(hqi_stats_percentile(in, 50), *(const float *)expect(f, "input_layer1", "p50", 1),
                2 * width, "p50");
    assert_near(hqi_stats_percentile(in, 99), *(const float *)expect(f, "input_layer1", "p99", 1),
                2 * width, "p99");
    hqi_calibration_destroy(cal);
}

static void small_batches_give_the_same_ranges_and_a_close_histogram(void **state)
{
    fixture_t *f = *state;
    hqi_calibration_t *cal = calibrate(f, 2);
    check_ranges_and_moments(f, cal);
    int grown = 0;
    const char *layers[] = {"input_layer1", "conv1", "gap", "conv2"};
    for (int i = 0; i < 4; i++) {
        const hqi_stats_t *s = &cal->layers[hq_graph_find(f->graph, layers[i])];
        int64_t hist[HQI_STATS_BINS], total = 0;
        hqi_stats_histogram(s, hist, NULL, NULL);
        for (int b = 0; b < HQI_STATS_BINS; b++)
            total += hist[b];
        assert_int_equal(total, s->count);
        const int64_t *want = expect(f, layers[i], "hist", HQI_STATS_BINS);
        grown += s->fine_lo != fmin(s->min, 0) || s->fine_hi != fmax(s->max, 0);
        /* a re-binned working bin moves at most to the neighbouring stored bin */
        if (hist_l1(hist, want) > total / 20 + 2)
            fail_msg("%s: histogram differs from numpy by %lld of %lld counts", layers[i],
                     (long long)hist_l1(hist, want), (long long)total);
    }
    assert_true(grown > 0); /* the batches really made the working range grow */
    hqi_calibration_destroy(cal);
}

static void statistics_are_stored_under_the_documented_keys(void **state)
{
    fixture_t *f = *state;
    hqi_calibration_t *cal = calibrate(f, 4);
    hq_npz_t *q = NULL;
    assert_int_equal(hq_npz_create(&q, NULL), HQ_OK);
    assert_int_equal(hqi_calibration_store(f->graph, cal, q, NULL), HQ_OK);
    const hq_tensor_t *lim = hq_npz_get(q, "net/conv1/stats/output_0/stats_limvals:0");
    const hq_tensor_t *hist = hq_npz_get(q, "net/conv1/stats/output_0/histogram:0");
    const hq_tensor_t *pm = hq_npz_get(q, "net/conv1/stats/preact_mean:0");
    const hq_tensor_t *ps = hq_npz_get(q, "net/conv1/stats/preact_std:0");
    assert_non_null(lim);
    assert_non_null(hist);
    assert_non_null(pm);
    assert_non_null(ps);
    assert_int_equal(lim->dtype, HQ_DTYPE_FLOAT32);
    assert_int_equal(hist->dtype, HQ_DTYPE_INT64);
    assert_int_equal(hq_tensor_count(hist), 100);
    assert_int_equal(hq_tensor_count(pm), 4);
    assert_non_null(hq_npz_get(q, "net/input_layer1/stats/output_0/stats_limvals:0"));
    assert_null(hq_npz_get(q, "net/gap/stats/preact_mean:0")); /* no weights: no pre-activation */
    hq_npz_destroy(q);
    hqi_calibration_destroy(cal);
}

typedef struct progress_log {
    int calls;
    int64_t last_done, last_total;
    bool increasing;
} progress_log_t;

static void record_progress(void *user, const char *stage, int64_t done, int64_t total)
{
    progress_log_t *log = user;
    assert_string_equal(stage, "calibration");
    log->increasing &= done > log->last_done;
    log->calls++;
    log->last_done = done;
    log->last_total = total;
}

static void progress_is_reported_after_every_batch_and_ends_at_the_total(void **state)
{
    fixture_t *f = *state;
    int64_t samples = hq_dataset_count(f->data);
    progress_log_t log = {.increasing = true};
    hqi_calibration_t *cal = NULL;
    hq_error_t err = {0};
    if (hqi_calibrate(f->graph, f->params, f->data, NULL, 0, 2, 1, NULL, record_progress, &log,
                      &cal, &err))
        fail_msg("calibrate: %s", err.message);
    assert_int_equal(log.calls, (samples + 1) / 2);
    assert_true(log.increasing);
    assert_int_equal(log.last_done, samples);
    assert_int_equal(log.last_total, samples);
    hqi_calibration_destroy(cal);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(one_batch_matches_numpy_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(small_batches_give_the_same_ranges_and_a_close_histogram,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            progress_is_reported_after_every_batch_and_ends_at_the_total, setup, teardown),
        cmocka_unit_test_setup_teardown(statistics_are_stored_under_the_documented_keys, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
