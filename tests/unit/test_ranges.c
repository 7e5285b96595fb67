/* test_ranges.c — the clipping searches of core/quant/ranges.c: activation clipping by least
 * expected MSE on a crafted calibration histogram (checked against a brute force over the same
 * grid of bin edges), and per-channel weight clipping by least quantization MSE (mmse,
 * mmse_if4b). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "quant/ranges.h"
#include "stats/stats.h"
#include "test_graphs.h"

/* A Gaussian bulk (std 1, Box-Muller over the test LCG) plus `outliers` values at `far`; with
 * `relu` the bulk's negative half becomes 0. One batch of shape {1, n, 1, 1} into *s. */
static void crafted_stats(hqi_stats_t *s, int64_t bulk, int outliers, double far, bool relu)
{
    int64_t n = bulk + outliers;
    float *v = malloc(sizeof(float) * (size_t)n);
    assert_non_null(v);
    uint32_t state = 12345;
    for (int64_t i = 0; i < bulk; i++) {
        double u1 = (test_uniform(&state) + 1.0) / 2.0 + 1e-6, u2 = test_uniform(&state);
        double g = sqrt(-2.0 * log(u1)) * cos(3.14159265358979 * u2);
        v[i] = (float)(relu && g < 0 ? 0.0 : g);
    }
    for (int i = 0; i < outliers; i++)
        v[bulk + i] = (float)(far + i * 0.01);
    assert_int_equal(hqi_stats_init(s, 1, false, "test", NULL), HQ_OK);
    hq_shape_t shape = {4, {1, n, 1, 1}};
    hqi_stats_add_output(s, &shape, v);
    free(v);
}

/* The least-error pair of edges over every lo edge <= 0 and every hi edge >= 0 (edges beyond the
 * data only add rounding error), from prefix sums; clamped like the search. */
static void brute_force(const hqi_stats_t *s, int bits, double *lo, double *hi)
{
    enum { NB = HQI_STATS_FINE_BINS };
    double w = (s->fine_hi - s->fine_lo) / NB, levels = ldexp(1.0, bits) - 1.0;
    static double p0[NB + 1], p1[NB + 1], p2[NB + 1];
    for (int j = 0; j < NB; j++) {
        double x = s->fine_lo + (j + 0.5) * w, c = (double)s->fine[j];
        p0[j + 1] = p0[j] + c;
        p1[j + 1] = p1[j] + c * x;
        p2[j + 1] = p2[j] + c * x * x;
    }
    double best = INFINITY;
    int best_a = -1, best_b = -1;
    for (int a = 0; a <= NB; a++) {
        double ea = s->fine_lo + (s->fine_hi - s->fine_lo) * a / NB;
        if (ea > 0)
            continue;
        double el = p2[a] - 2 * ea * p1[a] + ea * ea * p0[a];
        for (int b = a; b <= NB; b++) {
            double eb = s->fine_lo + (s->fine_hi - s->fine_lo) * b / NB;
            if (eb < 0)
                continue;
            double eh = (p2[NB] - p2[b]) - 2 * eb * (p1[NB] - p1[b]) + eb * eb * (p0[NB] - p0[b]);
            double step = (eb - ea) / levels;
            double e = el + eh + (p0[b] - p0[a]) * step * step / 12.0;
            if (e < best * (1 - 1e-12)) {
                best = e;
                best_a = a;
                best_b = b;
            }
        }
    }
    double ea = s->fine_lo + (s->fine_hi - s->fine_lo) * best_a / NB;
    double eb = s->fine_lo + (s->fine_hi - s->fine_lo) * best_b / NB;
    *lo = fmin(0.0, fmax(ea, s->min));
    *hi = fmax(0.0, fmin(eb, s->max));
}

static void check_activation_search(bool relu)
{
    hqi_stats_t s;
    crafted_stats(&s, 20000, 5, 40.0, relu);
    double lo = 0, hi = 0, want_lo = 0, want_hi = 0;
    hqi_clip_mmse_activation(&s, 8, &lo, &hi);
    brute_force(&s, 8, &want_lo, &want_hi);
    double w = (s.fine_hi - s.fine_lo) / HQI_STATS_FINE_BINS;
    assert_true(fabs(lo - want_lo) < w * 1e-6);
    assert_true(fabs(hi - want_hi) < w * 1e-6);
    assert_true(hi < s.max);
    assert_true(hi > 3.0); /* above the bulk */
    if (relu)
        assert_true(lo == 0.0);
    else
        assert_true(lo < -2.0 && lo >= s.min);
    /* and it beats no clipping on the same measure */
    assert_true(hqi_clip_activation_error(&s, 8, lo, hi) <
                hqi_clip_activation_error(&s, 8, fmin(s.min, 0), s.max));
    hqi_stats_free(&s);
}

static void activation_mmse_clips_far_outliers_at_the_brute_force_minimum(void **state)
{
    (void)state;
    check_activation_search(false);
}

static void activation_mmse_of_a_non_negative_output_keeps_zero_as_the_low_end(void **state)
{
    (void)state;
    check_activation_search(true);
}

static void activation_mmse_of_uniform_values_keeps_nearly_the_observed_range(void **state)
{
    (void)state;
    hqi_stats_t s;
    assert_int_equal(hqi_stats_init(&s, 1, false, "test", NULL), HQ_OK);
    float v[64];
    for (int i = 0; i < 64; i++)
        v[i] = (float)(i - 32) / 8.0f; /* uniform: at most the end values are trimmed */
    hq_shape_t shape = {4, {1, 64, 1, 1}};
    hqi_stats_add_output(&s, &shape, v);
    double lo = 0, hi = 0;
    hqi_clip_mmse_activation(&s, 8, &lo, &hi);
    assert_true(lo <= 0.99 * s.min && lo >= s.min);
    assert_true(hi >= 0.99 * s.max && hi <= s.max);
    hqi_stats_free(&s);
}

/* 63 small weights and one outlier 10x larger. */
static void outlier_channel(float w[64])
{
    uint32_t state = 7;
    for (int i = 0; i < 63; i++)
        w[i] = 0.1f * test_uniform(&state);
    w[63] = 1.0f;
}

static void weight_mmse_clips_below_a_lone_outlier_and_lowers_the_error(void **state)
{
    (void)state;
    float w[64];
    outlier_channel(w);
    double clip = hqi_weight_clip_mmse(w, 64, 1, 4);
    assert_true(clip < 1.0);
    assert_true(hqi_weight_clip_error(w, 64, 1, 4, clip) <
                hqi_weight_clip_error(w, 64, 1, 4, 1.0));
    /* the least error over the grid */
    for (int k = 1; k <= HQI_WEIGHT_CLIP_STEPS; k++)
        assert_true(hqi_weight_clip_error(w, 64, 1, 4, clip) <=
                    hqi_weight_clip_error(w, 64, 1, 4, (double)k / HQI_WEIGHT_CLIP_STEPS));
}

/* in -> conv (1x1, 8 -> 2): channel 0 the outlier channel, channel 1 small values only. */
static void weight_clip_layer(int weight_bits, hqi_clip_mode_t mode, hqi_layer_quant_t dec[3])
{
    hq_graph_t *g = NULL;
    hq_npz_t *params = NULL;
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int in = test_add_input(g, "input_layer1", 4, 4, 64);
    int conv = test_add_layer(g, "conv1", HQ_LAYER_CONV, in);
    test_set_conv(g, conv, 1, 64, 2, 0, HQ_ACT_LINEAR);
    test_add_layer(g, "output_layer1", HQ_LAYER_OUTPUT, conv);
    test_finalize(g);
    assert_int_equal(hq_npz_create(&params, NULL), HQ_OK);
    float ch[64], k[128];
    outlier_channel(ch);
    for (int i = 0; i < 64; i++) {
        k[i * 2] = ch[i];
        k[i * 2 + 1] = ch[i] / 2;
    }
    k[63 * 2 + 1] = 0.01f;
    int64_t shape[4] = {1, 1, 64, 2};
    char key[256];
    snprintf(key, sizeof key, "%s/kernel:0", hq_graph_layer(g, conv)->name);
    test_put_floats(params, key, 4, shape, k);
    hqi_range_request_t req[3];
    memset(req, 0, sizeof req);
    memset(dec, 0, sizeof(hqi_layer_quant_t) * 3);
    req[conv].weight_clip = mode;
    dec[conv].weight_bits = weight_bits;
    assert_int_equal(hqi_weight_clip_compute(g, params, req, dec, 2, NULL), HQ_OK);
    hq_npz_destroy(params);
    hq_graph_destroy(g);
}

static void weight_mmse_clips_each_output_channel_on_its_own(void **state)
{
    (void)state;
    hqi_layer_quant_t dec[3];
    weight_clip_layer(4, HQI_CLIP_MMSE, dec);
    const float *clips = dec[1].weight_clip_channels;
    assert_non_null(clips);
    assert_true(clips[0] < 1.0f);
    assert_true(clips[1] <= 0.05f);
    hqi_weight_clip_free(dec, 3);
    assert_null(dec[1].weight_clip_channels);
}

static void weight_mmse_if4b_clips_a_4_bit_layer(void **state)
{
    (void)state;
    hqi_layer_quant_t dec[3];
    weight_clip_layer(4, HQI_CLIP_MMSE_IF4B, dec);
    assert_non_null(dec[1].weight_clip_channels);
    hqi_weight_clip_free(dec, 3);
}

static void weight_mmse_if4b_leaves_an_8_bit_layer_unclipped(void **state)
{
    (void)state;
    hqi_layer_quant_t dec[3];
    weight_clip_layer(8, HQI_CLIP_MMSE_IF4B, dec);
    assert_null(dec[1].weight_clip_channels);
    assert_true(dec[1].weight_clip == 0.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(activation_mmse_clips_far_outliers_at_the_brute_force_minimum),
        cmocka_unit_test(activation_mmse_of_a_non_negative_output_keeps_zero_as_the_low_end),
        cmocka_unit_test(activation_mmse_of_uniform_values_keeps_nearly_the_observed_range),
        cmocka_unit_test(weight_mmse_clips_below_a_lone_outlier_and_lowers_the_error),
        cmocka_unit_test(weight_mmse_clips_each_output_channel_on_its_own),
        cmocka_unit_test(weight_mmse_if4b_clips_a_4_bit_layer),
        cmocka_unit_test(weight_mmse_if4b_leaves_an_8_bit_layer_unclipped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
