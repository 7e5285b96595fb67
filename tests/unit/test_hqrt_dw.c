/* test_hqrt_dw.c — the runtime's AVX-512 depthwise rows on quads of columns (vpdpbusd over
 * rows rewritten as four columns per int32 lane, hqrt_kernels_dw.c) against the reference
 * depthwise conv (hqrt_conv2d) and against the paired-tap rows they replace (HQRT_NO_DW_QUADS),
 * over random pieces of output rows, with input, output and scratch allocated to their exact
 * sizes (a read or write past any of them shows under the sanitizers). On a CPU without
 * AVX512-VNNI the quads never apply and the test checks only that the kernels agree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/hqrt_fast.h"
#include "runtime/hqrt_kernels_ref.h"
#include "test_rng.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint32_t rnd(void)
{
    return test_rng_next(&rng_state);
}
static int32_t rnd_range(int32_t lo, int32_t hi) /* inclusive */
{
    return test_rng_range(&rng_state, lo, hi);
}

/* Output rows [0, prep->rows) of a prepared depthwise op in one call (whole) or in random
 * pieces (the quads take a call of at least 2 * (kernel_h - 1) rows, the paired taps shorter
 * ones); false when the op has no fast kernel. */
static bool run_in_pieces(const hqrt_i_prepared_t *prep, const hqrt_conv_params_t *p,
                          hqrt_dims_t in, const uint8_t *x, const int64_t *bias, hqrt_dims_t out,
                          bool whole, uint8_t *got)
{
    if (!prep->fast)
        return false;
    uint8_t *scratch = aligned_alloc(64, (prep->scratch + 63) / 64 * 64);
    for (int64_t row = 0; row < prep->rows;) {
        const int64_t end =
            whole ? prep->rows : row + rnd_range(1, rnd() % 2 ? 3 : (int32_t)prep->rows);
        const int64_t stop = end < prep->rows ? end : prep->rows;
        assert_int_equal(hqrt_i_conv_fast(prep, p, in, x, bias, NULL, out, got, row, stop, scratch),
                         0);
        row = stop;
    }
    free(scratch);
    return true;
}

/* Depthwise layers the quads take: windows 1x2 .. 7x8 (one or two quads per kernel row, a last
 * quad part weighted 0), stride 1 across and 1 to 3 down, pads from none to past the window (rows
 * and columns of pads only), widths from 1, channel counts on and off multiples of 16 (the last
 * block masked) up to 200, 4- and 8-bit weights at their extremes, codes 0 and 255, in_zp 0 to
 * 255, biases that fold into the int32 sums (and none), per-tensor and per-channel non-negative
 * multipliers with left and right shifts, clamps that act and that do not (the exact negative
 * side), luts; every case also run on the paired taps, whose codes must be the same. */
static void depthwise_quads_equal_reference_and_paired_taps(void **state)
{
    (void)state;
    static const int channels[] = {2, 3, 7, 8, 15, 16, 17, 24, 31, 32, 33, 40, 72, 96, 120, 200};
    static int32_t mult[256], shift[256];
    static uint8_t lut[256];
    int quad_cases = 0;
    for (int iter = 0; iter < 300; iter++) {
        const int32_t c = channels[rnd() % (sizeof channels / sizeof channels[0])];
        hqrt_conv_params_t p = {.groups = c, .in_bits = 8, .in_zp = rnd_range(0, 255)};
        if (rnd() % 4 == 0)
            p.in_zp = rnd() % 2 ? 0 : 255;
        const int shape = rnd_range(0, 5);
        p.kernel_h = shape == 0 ? 3 : shape == 1 ? 5 : rnd_range(1, 7);
        p.kernel_w = shape == 0 ? 3 : shape == 1 ? 5 : rnd_range(p.kernel_h == 1 ? 2 : 1, 8);
        p.stride_h = rnd() % 3 ? 1 : rnd_range(2, 3);
        p.stride_w = 1;
        p.dilation_h = p.dilation_w = 1;
        p.pad_top = rnd_range(0, p.kernel_h - 1), p.pad_bottom = rnd_range(0, p.kernel_h - 1);
        p.pad_left = rnd_range(0, p.kernel_w - 1), p.pad_right = rnd_range(0, p.kernel_w - 1);
        if (rnd() % 8 == 0) /* rows and columns that see only pads */
            p.pad_top = p.kernel_h + rnd_range(0, 2), p.pad_left = p.kernel_w + rnd_range(0, 2);
        p.weight_bits = rnd() % 3 ? 8 : 4;
        hqrt_dims_t in = {1, rnd_range(1, 14), rnd() % 4 ? rnd_range(1, 40) : rnd_range(1, 3), c};
        if (in.h + p.pad_top + p.pad_bottom < p.kernel_h)
            p.pad_bottom = p.kernel_h - in.h - p.pad_top;
        if (in.w + p.pad_left + p.pad_right < p.kernel_w)
            p.pad_right = p.kernel_w - in.w - p.pad_left;
        hqrt_dims_t out = {1, (in.h + p.pad_top + p.pad_bottom - p.kernel_h) / p.stride_h + 1,
                           in.w + p.pad_left + p.pad_right - p.kernel_w + 1, c};
        /* a stage the int32 finish takes: 32-bit path, 8-bit codes, multipliers >= 0 */
        const int32_t count = rnd() % 2 ? 1 : c;
        for (int32_t i = 0; i < count; i++) {
            mult[i] = rnd() % 8 ? rnd_range(1 << 30, INT32_MAX) : rnd_range(0, INT32_MAX);
            shift[i] = rnd() % 6 ? rnd_range(-14, -4) : rnd_range(-31, 3);
        }
        for (int i = 0; i < 256; i++)
            lut[i] = (uint8_t)rnd();
        const int32_t lo = rnd() % 2 ? 0 : rnd_range(0, 255);
        p.out = (hqrt_output_stage_t){.path = HQRT_PATH_GEMMLOWP,
                                      .count = count,
                                      .multiplier = mult,
                                      .shift = shift,
                                      .lut = rnd() % 4 ? NULL : lut,
                                      .pre_zp = rnd_range(0, 255),
                                      .out_bits = 8,
                                      .out_zp = rnd_range(0, 255),
                                      .act_min = lo,
                                      .act_max = rnd() % 2 ? 255 : rnd_range(lo, 255)};
        const size_t taps = (size_t)p.kernel_h * (size_t)p.kernel_w;
        int8_t *w = malloc(taps * (size_t)c);
        const int32_t wmax = p.weight_bits == 8 ? 127 : 7;
        test_rng_weights(&rng_state, w, taps * (size_t)c, wmax);
        const size_t in_bytes = (size_t)in.h * (size_t)in.w * (size_t)c;
        uint8_t *x = malloc(in_bytes);
        test_rng_codes(&rng_state, x, in_bytes);
        int64_t *bias = malloc((size_t)c * sizeof *bias);
        const int64_t room = INT32_MAX - (int64_t)taps * 255 * 128;
        for (int32_t o = 0; o < c; o++)
            bias[o] = rnd() % 16 ? rnd_range(-100000, 100000) : (rnd() % 2 ? room : -room);
        const int64_t *b = rnd() % 5 ? bias : NULL;
        const size_t out_bytes = (size_t)out.h * (size_t)out.w * (size_t)c;
        uint8_t *want = malloc(out_bytes), *got = malloc(out_bytes), *paired = malloc(out_bytes);
        void *ref_scratch = malloc(hqrt_conv2d_get_buffer_size(&p, in) + 1);
        assert_int_equal(hqrt_conv2d(&p, in, x, w, b, NULL, out, want, ref_scratch),
                         HQRT_KERNEL_OK);
        hqrt_i_prepared_t prep, prep_pairs;
        hqrt_error_t err;
        assert_int_equal(
            hqrt_i_conv_prepare_kernel(&p, false, in, out, w, b, true, "dw", &prep, &err), HQRT_OK);
        setenv("HQRT_NO_DW_QUADS", "1", 1);
        assert_int_equal(
            hqrt_i_conv_prepare_kernel(&p, false, in, out, w, b, true, "dw", &prep_pairs, &err),
            HQRT_OK);
        unsetenv("HQRT_NO_DW_QUADS");
        assert_false(prep_pairs.dw_quads);
        quad_cases += prep.dw_quads;
        memset(paired, 0xCD, out_bytes);
        for (int whole = 0; whole < 2; whole++) {
            memset(got, 0xAB, out_bytes);
            if (run_in_pieces(&prep, &p, in, x, b, out, whole, got) && memcmp(got, want, out_bytes))
                fail_msg("case %d: c %d, %dx%d window, stride %d down, pads %d %d %d %d, input "
                         "%dx%d, %s, %s: codes differ from the reference",
                         iter, c, p.kernel_h, p.kernel_w, p.stride_h, p.pad_top, p.pad_left,
                         p.pad_bottom, p.pad_right, in.h, in.w, prep.dw_quads ? "quads" : "pairs",
                         whole ? "whole" : "pieces");
        }
        if (run_in_pieces(&prep_pairs, &p, in, x, b, out, false, paired) &&
            memcmp(paired, want, out_bytes))
            fail_msg("case %d: the paired taps' codes differ from the reference", iter);
        free(prep.packed), free(prep_pairs.packed);
        free(w), free(x), free(bias), free(want), free(got), free(paired), free(ref_scratch);
    }
    /* on AVX-512 VNNI every case (all have an int32 stage, none is a flat 1x1) takes the quads */
    if (hqrt_i_vector_isa() == HQRT_ISA_AVX512 && quad_cases > 0)
        assert_int_equal(quad_cases, 300);
    printf("quads: %d of 300 cases\n", quad_cases);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(depthwise_quads_equal_reference_and_paired_taps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
