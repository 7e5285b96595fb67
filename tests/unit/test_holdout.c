/* test_holdout.c — which samples measure the optimizer's gains (core/quant/holdout.c): the last
 * ones beyond the calibration set, at most HQI_HOLDOUT_MAX, kept out of what algorithms train on;
 * calibration samples when there is nothing beyond it. The probe itself is tested with the
 * optimizer in test_optimize.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "quant/holdout.h"

static void samples_beyond_the_calibration_set_are_held_back_from_the_end(void **state)
{
    (void)state;
    hqi_holdout_t h = hqi_holdout_split(76, 64, 16);
    assert_false(h.on_calibration);
    assert_int_equal(h.first, 64);
    assert_int_equal(h.count, 12);
    assert_int_equal(h.usable, 64);
    /* many beyond: the last 16, and algorithms may use everything before them */
    h = hqi_holdout_split(2000, 64, 16);
    assert_false(h.on_calibration);
    assert_int_equal(h.first, 1984);
    assert_int_equal(h.count, 16);
    assert_int_equal(h.usable, 1984);
    /* a single sample beyond */
    h = hqi_holdout_split(65, 64, 16);
    assert_false(h.on_calibration);
    assert_int_equal(h.first, 64);
    assert_int_equal(h.count, 1);
    assert_int_equal(h.usable, 64);
}

static void without_samples_beyond_calibration_the_first_calibration_samples_measure(void **state)
{
    (void)state;
    hqi_holdout_t h = hqi_holdout_split(64, 64, 16);
    assert_true(h.on_calibration);
    assert_int_equal(h.first, 0);
    assert_int_equal(h.count, 16);
    assert_int_equal(h.usable, 64);
    /* fewer samples than the most measured: all of them */
    h = hqi_holdout_split(5, 64, 16);
    assert_true(h.on_calibration);
    assert_int_equal(h.first, 0);
    assert_int_equal(h.count, 5);
    assert_int_equal(h.usable, 5);
}

static void the_held_back_samples_never_overlap_calibration_or_training(void **state)
{
    (void)state;
    for (int64_t available = 1; available <= 100; available++)
        for (int64_t calibset = 1; calibset <= 120; calibset += 7) {
            hqi_holdout_t h = hqi_holdout_split(available, calibset, HQI_HOLDOUT_MAX);
            int64_t calibrated = calibset < available ? calibset : available;
            assert_true(h.count >= 1 && h.count <= HQI_HOLDOUT_MAX);
            assert_true(h.first >= 0 && h.first + h.count <= available);
            if (h.on_calibration) {
                assert_true(h.first + h.count <= calibrated);
            } else {
                assert_true(h.first >= calibrated);
                assert_int_equal(h.usable, h.first);
                assert_int_equal(h.first + h.count, available);
            }
        }
}

static void an_algorithm_wanting_more_images_than_there_are_runs_on_what_there_is(void **state)
{
    (void)state;
    /* 76 samples, calibration on 64: 12 held back, 64 to train on */
    hqi_holdout_t h = hqi_holdout_split(76, 64, HQI_HOLDOUT_MAX);
    assert_int_equal(hqi_holdout_images(&h, 256), 64);
    assert_int_equal(hqi_holdout_images(&h, 32), 32);
    /* 2000 samples: AdaRound's 1024 fit before the 16 held back */
    h = hqi_holdout_split(2000, 64, HQI_HOLDOUT_MAX);
    assert_int_equal(hqi_holdout_images(&h, 1024), 1024);
    h = hqi_holdout_split(1030, 64, HQI_HOLDOUT_MAX);
    assert_int_equal(hqi_holdout_images(&h, 1024), 1014);
    assert_true(hqi_holdout_images(&h, 1024) <= h.first);
    /* nothing held back: every sample */
    h = hqi_holdout_split(64, 64, HQI_HOLDOUT_MAX);
    assert_int_equal(hqi_holdout_images(&h, 1024), 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(samples_beyond_the_calibration_set_are_held_back_from_the_end),
        cmocka_unit_test(without_samples_beyond_calibration_the_first_calibration_samples_measure),
        cmocka_unit_test(the_held_back_samples_never_overlap_calibration_or_training),
        cmocka_unit_test(an_algorithm_wanting_more_images_than_there_are_runs_on_what_there_is),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
