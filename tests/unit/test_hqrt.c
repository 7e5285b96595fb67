/* test_hqrt.c — the deploy runtime on its own: programs built in the test with the `.hqx` builder,
 * run through the public API; AVX2 kernels against the numerics' reference kernels (bit-exact on
 * random shapes), thread counts, and corrupted programs refused with one line. Links only
 * libhqrt in the runtime-only target (test_hqrt_standalone), so it uses no libhq function. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hq/hqrt.h"
#include "runtime/hqrt_builder.h"
#include "runtime/hqrt_fast.h"
#include "runtime/hqrt_kernels_ref.h"
#include "test_rng.h"

/* ---- a tiny deterministic generator ------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    return test_rng_next(&rng_state);
}
static int32_t rnd_range(int32_t lo, int32_t hi) /* inclusive */
{
    return test_rng_range(&rng_state, lo, hi);
}

/* ---- program construction helpers ---------------------------------------------------------- */

typedef struct stage_data {
    int32_t mult[512], shift[512];
} stage_data_t;

static hqx_stage_t make_stage(hqrt_builder_t *b, int count, int path, int out_bits)
{
    stage_data_t d;
    /* mostly right shifts; some left shifts (saturating), negative multipliers and narrowed
     * clamps, so that the fast kernels' output stages meet every branch of the numerics */
    for (int i = 0; i < count; i++) {
        d.mult[i] = rnd_range(1 << 30, INT32_MAX);
        if (rnd() % 8 == 0)
            d.mult[i] = -d.mult[i];
        d.shift[i] = path == HQRT_PATH_WIDE ? rnd_range(-20, -8) : rnd_range(-12, -4);
        if (rnd() % 8 == 0)
            d.shift[i] = rnd_range(0, 24);
    }
    int32_t top = out_bits == 16 ? 65535 : 255;
    hqx_stage_t s = {.path = path, .count = count, .act_min = 0, .act_max = top};
    if (rnd() % 4 == 0) {
        s.act_min = rnd_range(0, top / 8);
        s.act_max = rnd_range(top - top / 8, top);
    }
    s.multiplier = hqrt_b_blob(b, d.mult, (size_t)count * 4);
    s.shift = hqrt_b_blob(b, d.shift, (size_t)count * 4);
    return s;
}

typedef struct conv_case {
    int h, w, cin, cout, kh, kw, stride, dilation, pad, groups, weight_bits, in_bits, out_bits;
    int path, per_channel, dense, addend; /* addend: 0 none, 1 8-bit codes, 2 16-bit codes */
    int lut;                              /* 1: a random 8-bit lut ends the stage (hardswish) */
    int positive;   /* 1: no negative multipliers (every block's fast stage) */
    int dilation_w; /* when not 0, the dilation along w (`dilation` then along h only) */
} conv_case_t;

/* With HQRT_SEED_DIR set, every small program a test builds is also written there: the seed
 * corpus of tests/fuzz/fuzz_hqx.c is made this way. */
static void maybe_write_seed(const uint8_t *bytes, size_t len, bool always)
{
    static int seeds = 0, seen = 0;
    const char *dir = getenv("HQRT_SEED_DIR");
    if (!dir || len > 8192 || (!always && seen++ % 6))
        return;
    char path[1024];
    snprintf(path, sizeof path, "%s/seed_%02d.hqx", dir, seeds++);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(bytes, 1, len, f);
        fclose(f);
    }
}

/* The program b holds (the test fails when the builder refuses it); destroys b. */
static uint8_t *finish_program(hqrt_builder_t *b, size_t *len)
{
    uint8_t *bytes = NULL;
    if (hqrt_b_finish(b, &bytes, len))
        fail_msg("builder: %s", hqrt_b_error(b));
    hqrt_b_destroy(b);
    return bytes;
}

/* A 1x1 conv, stride 1, 8-bit weights: the params every hand-made case starts from. */
static hqx_conv_params_t pointwise_params(void)
{
    return (hqx_conv_params_t){.kernel_h = 1,
                               .kernel_w = 1,
                               .stride_h = 1,
                               .stride_w = 1,
                               .dilation_h = 1,
                               .dilation_w = 1,
                               .groups = 1,
                               .weight_bits = 8};
}

/* One-op program: input -> conv (or dense) -> output. */
static uint8_t *build_conv(const conv_case_t *k, size_t *len)
{
    hqrt_builder_t *b = hqrt_b_create("net", "hailo8");
    assert_non_null(b);
    int in_zp = rnd_range(0, k->in_bits == 16 ? 65535 : 255);
    int32_t x =
        hqrt_b_tensor(b, "net/input_layer1", k->dense ? 2 : 4, k->dense ? 1 : k->h,
                      k->dense ? 1 : k->w, k->dense ? k->cin : k->cin, k->in_bits, 0.02f, in_zp);
    int oh = k->dense ? 1 : (k->h + 2 * k->pad - k->dilation * (k->kh - 1) - 1) / k->stride + 1;
    const int dw = k->dilation_w ? k->dilation_w : k->dilation;
    int ow = k->dense ? 1 : (k->w + 2 * k->pad - dw * (k->kw - 1) - 1) / k->stride + 1;
    int32_t y = hqrt_b_tensor(b, "net/conv1", k->dense ? 2 : 4, oh, ow, k->cout, k->out_bits, 0.05f,
                              rnd_range(0, 100));
    int32_t ins[2] = {x, -1};
    int nin = 1;
    hqx_conv_params_t p = {0};
    if (!k->dense) {
        p.kernel_h = k->kh;
        p.kernel_w = k->kw;
        p.stride_h = p.stride_w = k->stride;
        p.dilation_h = k->dilation;
        p.dilation_w = dw;
        p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = k->pad;
    }
    p.groups = k->groups;
    p.weight_bits = k->weight_bits;
    size_t wcount =
        (size_t)(k->dense ? 1 : k->kh * k->kw) * (size_t)(k->cin / k->groups) * (size_t)k->cout;
    size_t wsize = wcount * (k->weight_bits == 16 ? 2 : 1);
    uint8_t *w = malloc(wsize);
    int wmax = (1 << (k->weight_bits - 1)) - 1;
    for (size_t i = 0; i < wcount; i++) {
        if (k->weight_bits == 16)
            ((int16_t *)(void *)w)[i] = (int16_t)rnd_range(-wmax, wmax);
        else
            ((int8_t *)w)[i] = (int8_t)rnd_range(-wmax, wmax);
    }
    p.weights = hqrt_b_blob(b, w, wsize);
    free(w);
    int64_t bias[512];
    for (int i = 0; i < k->cout; i++)
        bias[i] = rnd_range(-100000, 100000);
    if (rnd() % 3 == 0) { /* biases the int32 sums can and cannot start from */
        int64_t depth = (int64_t)wcount / k->cout, room = INT32_MAX - depth * 255 * 128;
        int32_t o = rnd_range(0, k->cout - 1), kind = rnd_range(0, 2);
        bias[o] = (rnd() % 2 ? 1 : -1) * (kind == 0   ? room
                                          : kind == 1 ? room + 1
                                                      : (int64_t)1 << rnd_range(31, 40));
    }
    p.bias = hqrt_b_blob(b, bias, (size_t)k->cout * 8);
    p.stage = make_stage(b, k->per_channel ? k->cout : 1, k->path, k->out_bits);
    if (k->positive) {
        stage_data_t d;
        for (int i = 0; i < (k->per_channel ? k->cout : 1); i++) {
            d.mult[i] = rnd_range(1 << 30, INT32_MAX);
            d.shift[i] = rnd_range(-12, -4);
        }
        p.stage.multiplier = hqrt_b_blob(b, d.mult, (size_t)(k->per_channel ? k->cout : 1) * 4);
        p.stage.shift = hqrt_b_blob(b, d.shift, (size_t)(k->per_channel ? k->cout : 1) * 4);
    }
    if (k->lut && k->out_bits == 8) {
        uint8_t lut[256];
        for (int i = 0; i < 256; i++)
            lut[i] = (uint8_t)rnd();
        p.stage.lut = hqrt_b_blob(b, lut, sizeof lut);
        p.stage.pre_zp = rnd_range(0, 255);
    }
    if (k->addend) { /* addend 2: 16-bit codes */
        ins[1] = hqrt_b_tensor(b, "net/input_layer2", 4, oh, ow, k->cout, k->addend == 2 ? 16 : 8,
                               0.1f, k->addend == 2 ? 30000 : 7);
        nin = 2;
        p.addend_multiplier = rnd_range(1 << 30, INT32_MAX);
        /* right shifts, the left shifts of real residual adds (addend to the output scale
         * times 2^8), and left shifts that saturate */
        int kind = rnd_range(0, 2);
        p.addend_shift = kind == 0 ? -2 : kind == 1 ? rnd_range(1, 10) : rnd_range(20, 30);
    }
    assert_int_equal(hqrt_b_op(b, k->dense ? HQX_OP_DENSE : HQX_OP_CONV, "net/conv1", &p, sizeof p,
                               ins, (uint32_t)nin, &y, 1),
                     0);
    assert_int_equal(hqrt_b_io(b, ins, (uint32_t)nin, &y, 1), 0);
    uint8_t *bytes = finish_program(b, len);
    maybe_write_seed(bytes, *len, false);
    return bytes;
}

/* Runs a program on random codes (input 0: `codes` when not NULL, the same for every sample)
 * with the reference kernels only, then with the fast kernels at 1 and 2 threads (AMX and
 * AVX-512 VNNI where the CPU has them, luts by vpermi2b where it has AVX512-VBMI), with the VNNI
 * kernels instead of AMX (HQRT_NO_AMX), with the AVX2 kernels alone (HQRT_NO_VNNI), and with
 * luts by gathers (HQRT_NO_VBMI); all must give the same bytes. */
static void run_three_ways_on(const uint8_t *bytes, size_t len, int64_t batch, const uint8_t *codes)
{
    /* each way: the environment switch its program is opened under, and its thread count */
    static const struct {
        const char *name, *env;
        int threads;
    } ways[] = {{"reference", "HQRT_NO_FAST", 1}, {"fast", NULL, 1},         {"fast x2", NULL, 2},
                {"avx2", "HQRT_NO_VNNI", 2},      {"vnni", "HQRT_NO_AMX", 1}, {"gathers", "HQRT_NO_VBMI", 1}};
    enum { WAYS = sizeof ways / sizeof ways[0] };
    hqrt_model_t *model[WAYS] = {0};
    hqrt_error_t err;
    for (int w = 0; w < WAYS; w++) {
        if (ways[w].env)
            setenv(ways[w].env, "1", 1);
        if (hqrt_open_memory(bytes, len, "case", &model[w], &err) != HQRT_OK)
            fail_msg("%s", err.message);
        if (ways[w].env)
            unsetenv(ways[w].env);
    }
    hqrt_model_t *ref = model[0];
    hqrt_io_t io;
    int nin = 0;
    void *ins[4] = {0};
    for (int i = 0; hqrt_describe(ref, HQRT_INPUT, i, &io, NULL) == HQRT_OK; i++, nin++) {
        ins[i] = malloc(io.bytes * (size_t)batch);
        for (size_t k = 0; k < io.bytes * (size_t)batch; k++)
            ((uint8_t *)ins[i])[k] = (uint8_t)rnd();
        if (io.bits == 16) /* keep 16-bit codes anywhere in range */
            for (size_t k = 0; k < io.bytes * (size_t)batch / 2; k++)
                ((uint16_t *)ins[i])[k] = (uint16_t)rnd();
        for (int64_t n = 0; i == 0 && codes && n < batch; n++)
            memcpy((uint8_t *)ins[i] + (size_t)n * io.bytes, codes, io.bytes);
    }
    assert_int_equal(hqrt_describe(ref, HQRT_OUTPUT, 0, &io, NULL), HQRT_OK);
    int nout = io.count;
    assert_true(nout <= 4);
    void *outs[WAYS][4] = {{0}};
    size_t out_bytes[4];
    for (int o = 0; o < nout; o++) {
        hqrt_describe(ref, HQRT_OUTPUT, o, &io, NULL);
        out_bytes[o] = io.bytes * (size_t)batch;
        for (int w = 0; w < WAYS; w++)
            outs[w][o] = malloc(out_bytes[o]);
    }
    for (int w = 0; w < WAYS; w++) {
        hqrt_run_options_t opt = {ways[w].threads};
        if (hqrt_run(model[w], batch, (const void *const *)ins, outs[w], &opt, &err) != HQRT_OK)
            fail_msg("%s: %s", ways[w].name, err.message);
    }
    for (int o = 0; o < nout; o++) {
        const uint8_t *a = outs[0][o];
        for (int w = 1; w < WAYS; w++) {
            const uint8_t *b = outs[w][o];
            for (size_t k = 0; k < out_bytes[o]; k++)
                if (a[k] != b[k])
                    fail_msg("output %d byte %zu of %zu: reference %u, %s %u", o, k, out_bytes[o],
                             a[k], ways[w].name, b[k]);
        }
        for (int w = 0; w < WAYS; w++)
            free(outs[w][o]);
    }
    for (int i = 0; i < nin; i++)
        free(ins[i]);
    for (int w = 0; w < WAYS; w++)
        hqrt_close(model[w]);
}

static void run_three_ways(const uint8_t *bytes, size_t len, int64_t batch)
{
    run_three_ways_on(bytes, len, batch, NULL);
}

/* Builds the conv case's program and runs it the three ways (run_three_ways). */
static void conv_three_ways(const conv_case_t *k, int64_t batch)
{
    size_t len;
    uint8_t *bytes = build_conv(k, &len);
    run_three_ways(bytes, len, batch);
    free(bytes);
}

static void fast_conv_equals_reference_on_random_shapes(void **state)
{
    (void)state;
    for (int iter = 0; iter < 40; iter++) {
        conv_case_t k = {
            .h = rnd_range(1, 12),
            .w = rnd_range(1, 12),
            .cin = rnd_range(1, 40),
            .cout = iter % 4 ? rnd_range(1, 37) : rnd_range(40, 130), /* 1..9 blocks of 16 */
            .kh = rnd_range(1, 3),
            .kw = rnd_range(1, 3),
            .stride = rnd_range(1, 2),
            .dilation = rnd_range(1, 2),
            .groups = 1,
            .weight_bits = rnd() % 2 ? 8 : 4,
            .in_bits = 8,
            .out_bits = rnd() % 4 ? 8 : 16,
            .path = rnd() % 2 ? HQRT_PATH_WIDE : HQRT_PATH_GEMMLOWP,
            .per_channel = (int)(rnd() % 2),
            .addend = rnd() % 4 ? 0 : 1 + (int)(rnd() % 2),
        };
        k.pad = rnd_range(0, k.kh - 1);
        if (k.h + 2 * k.pad < k.dilation * (k.kh - 1) + 1)
            k.h = k.dilation * (k.kh - 1) + 1;
        if (k.w + 2 * k.pad < k.dilation * (k.kw - 1) + 1)
            k.w = k.dilation * (k.kw - 1) + 1;
        conv_three_ways(&k, 1 + iter % 3);
    }
}

/* Channels a multiple of 4 (or kernel rows padded to 4 bytes with zero weights, c = 3, 5, 1)
 * and windows inside the input: the VNNI kernel then reads each kernel row of the input in place
 * (no patch), tiles at the border still through patches. */
static void fast_conv_reading_kernel_rows_in_place_equals_reference(void **state)
{
    (void)state;
    static const int shapes[][6] = {/* cin, kh, kw, stride, dilation, pad */
                                    {4, 3, 3, 1, 1, 1},
                                    {8, 3, 3, 2, 1, 1},
                                    {64, 3, 3, 1, 1, 0},
                                    {12, 5, 5, 1, 1, 2},
                                    {16, 3, 1, 1, 2, 0},
                                    {4, 1, 3, 2, 1, 1},
                                    {20, 3, 3, 1, 2, 2},
                                    {32, 2, 2, 2, 1, 0},
                                    /* rows of taps padded to 4 bytes: a first conv's 7 x 3 */
                                    {3, 7, 7, 2, 1, 3},
                                    {3, 3, 3, 1, 1, 1},
                                    {5, 1, 1, 1, 1, 0},
                                    {1, 3, 5, 1, 1, 2},
                                    {6, 3, 3, 2, 2, 1},
                                    /* deep: long kernel rows (300 bytes), a 1x1 of 129
                                     * tap groups, a deep patch (87 channels) */
                                    {100, 3, 3, 1, 1, 1},
                                    {516, 1, 1, 1, 1, 0},
                                    {87, 3, 3, 2, 1, 1}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        conv_case_t k = {.h = rnd_range(12, 20),
                         .w = rnd_range(12, 20),
                         .cin = shapes[i][0],
                         .cout = rnd_range(1, 80),
                         .kh = shapes[i][1],
                         .kw = shapes[i][2],
                         .stride = shapes[i][3],
                         .dilation = shapes[i][4],
                         .pad = shapes[i][5],
                         .groups = 1,
                         .weight_bits = i % 2 ? 4 : 8,
                         .in_bits = 8,
                         .out_bits = 8,
                         .path = HQRT_PATH_GEMMLOWP,
                         .per_channel = 1,
                         .addend = i % 3 == 0};
        conv_three_ways(&k, 2);
    }
}

/* The AVX2 GEMM's chunks of 6-pixel tiles: deep windows (few tiles per chunk, several chunks
 * of equal size, a last tile of 1 or 2 pixels rebalanced), 1x1 convs over many pixels (full
 * chunks; with channels a multiple of 16, patches converted as one flat run of pixels, else read
 * in padded rows), odd pixel counts, kernel rows of an odd number of values (first convs of 3
 * channels: 7x7 stride 2, 3x3 stride 2), rows dilated along h only (read in place) or along w
 * (patches), blocks of 8 channels at the end, dense ops, and residual addends; at 2 threads the
 * pieces end inside rows and inside tiles. */
static void fast_gemm_chunks_and_tiles_equal_reference(void **state)
{
    (void)state;
    static const int shapes[][11] = {
        /* h, w, cin, cout, kh, kw, stride, dilation (h), pad, dense, dilation along w */
        {7, 7, 700, 40, 3, 3, 1, 1, 1, 0, 0},   {9, 5, 520, 24, 3, 3, 1, 1, 1, 0, 0},
        {13, 13, 24, 144, 1, 1, 1, 1, 0, 0, 0}, {1, 7, 16, 24, 1, 1, 1, 1, 0, 0, 0},
        {1, 8, 9, 8, 1, 1, 1, 1, 0, 0, 0},      {1, 13, 33, 17, 1, 1, 1, 1, 0, 0, 0},
        {23, 23, 3, 64, 7, 7, 2, 1, 3, 0, 0},   {17, 15, 3, 32, 3, 3, 2, 1, 1, 0, 0},
        {11, 12, 3, 16, 3, 3, 1, 2, 2, 0, 0},   {10, 9, 5, 40, 5, 3, 1, 1, 2, 0, 0},
        {1, 1, 300, 56, 1, 1, 1, 1, 0, 1, 0},   {1, 1, 2049, 8, 1, 1, 1, 1, 0, 1, 0},
        {13, 11, 64, 40, 1, 1, 1, 1, 0, 0, 0},  {1, 1, 512, 24, 1, 1, 1, 1, 0, 1, 0},
        {14, 9, 7, 24, 3, 3, 1, 2, 2, 0, 1},    {12, 13, 6, 17, 3, 3, 2, 1, 1, 0, 2},
        {15, 15, 16, 32, 1, 1, 2, 1, 0, 0, 0},  {9, 40, 3, 16, 3, 3, 1, 3, 3, 0, 1}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int *sh = shapes[i];
        conv_case_t k = {.h = sh[0],
                         .w = sh[1],
                         .cin = sh[2],
                         .cout = sh[3],
                         .kh = sh[4],
                         .kw = sh[5],
                         .stride = sh[6],
                         .dilation = sh[7],
                         .pad = sh[8],
                         .dense = sh[9],
                         .groups = 1,
                         .weight_bits = i % 2 ? 4 : 8,
                         .in_bits = 8,
                         .out_bits = i % 5 == 4 ? 16 : 8,
                         .path = i % 3 == 2 ? HQRT_PATH_WIDE : HQRT_PATH_GEMMLOWP,
                         .per_channel = (int)(i % 2),
                         .addend = sh[9] ? 0 : (int)(i % 3),
                         .dilation_w = sh[10]};
        conv_three_ways(&k, 1 + (int64_t)(i % 2));
    }
}

/* The VNNI output stage runs the 32-bit path's two roundings as one shift on int32 lanes (and
 * skips the negative-side correction when every y <= 0 clamps to one code). This walks 256
 * consecutive accumulators of every channel through it: a 1x1 conv with weights 1 over input
 * codes 0..255 gives acc = bias[o] + code. Multipliers 2^30 (an exact tie every 2^(r+1)
 * accumulators), 2^30 + 1, INT32_MAX, 0 and random; right shifts 0..31 and left shifts; bias
 * centred where the output codes change; clamps below, at and above the zero point; and a
 * residual addend with a tie-making multiplier, or one whose term saturates so that the int32
 * sum would overflow. 40 channels (two blocks and a partial one), or 80 where the stage of the
 * first four blocks runs fused into the tile (exact, clamped and addend modes). */
static void vector_output_stage_equals_reference_on_every_accumulator_of_a_window(void **state)
{
    (void)state;
    static const int32_t variants[][4] = {/* out_zp, act_min, act_max, addend */
                                          {128, 0, 255, 0},   {3, 3, 255, 0},   {0, 0, 255, 0},
                                          {200, 210, 240, 0}, {128, 0, 255, 1}, {0, 0, 255, 1},
                                          {128, 0, 255, 2}};
    uint8_t codes[256];
    for (int i = 0; i < 256; i++)
        codes[i] = (uint8_t)i;
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        /* 80 channels, the first 64 without left shifts (the first group's output stage then
         * runs in the tile's registers: exact, clamped, addend modes), or 40 (a partial block) */
        enum { MAX_COUT = 80 };
        const bool fused = v == 0 || v == 1 || v == 4 || v == 5;
        const int cout = fused ? 80 : 40;
        hqrt_builder_t *b = hqrt_b_create("net", "hailo8");
        assert_non_null(b);
        int32_t x = hqrt_b_tensor(b, "net/input_layer1", 4, 1, 256, 1, 8, 0.02f, 0);
        int32_t y = hqrt_b_tensor(b, "net/conv1", 4, 1, 256, cout, 8, 0.05f, variants[v][0]);
        int32_t ins[2] = {x, -1};
        hqx_conv_params_t p = pointwise_params();
        int8_t w[MAX_COUT];
        int64_t bias[MAX_COUT];
        stage_data_t d;
        for (int o = 0; o < cout; o++) {
            static const int32_t mults[] = {1 << 30, (1 << 30) + 1, INT32_MAX, 0, 0};
            w[o] = 1;
            d.mult[o] = o % 5 == 4 ? rnd_range(1 << 30, INT32_MAX) : mults[o % 5];
            d.shift[o] =
                o % 7 == 6 && (!fused || o >= 64) ? rnd_range(1, 6) : -((o * 3 + (int)v) % 32);
            double scale = d.mult[o]; /* m * 2^(shift - 31), no libm: the test links libhqrt only */
            for (int e = d.shift[o] - 31; e < 0; e++)
                scale /= 2;
            for (int e = d.shift[o] - 31; e > 0; e--)
                scale *= 2;
            int64_t centre = scale > 1e-9 ? (int64_t)(rnd_range(-120, 120) / scale) : 0;
            if (centre > INT32_MAX / 2 || centre < -INT32_MAX / 2)
                centre = rnd_range(-100000, 100000);
            bias[o] = centre - 128;
            if (o % 7 == 6 && d.mult[o] == INT32_MAX)
                bias[o] = 1 << 30; /* saturating pre-shift: y near 2^31, y + zp leaves int32 */
        }
        p.weights = hqrt_b_blob(b, w, (size_t)cout);
        p.bias = hqrt_b_blob(b, bias, (size_t)cout * sizeof bias[0]);
        p.stage = (hqx_stage_t){.path = HQRT_PATH_GEMMLOWP,
                                .count = cout,
                                .act_min = variants[v][1],
                                .act_max = variants[v][2],
                                .multiplier = hqrt_b_blob(b, d.mult, (size_t)cout * 4),
                                .shift = hqrt_b_blob(b, d.shift, (size_t)cout * 4)};
        int nin = 1;
        if (variants[v][3]) {
            ins[1] = hqrt_b_tensor(b, "net/input_layer2", 4, 1, 256, cout, 8, 0.1f, 7);
            nin = 2;
            /* 1: ties; 2: a saturating pre-shift, so that the sum leaves int32 */
            p.addend_multiplier = variants[v][3] == 1 ? 1 << 30 : INT32_MAX;
            p.addend_shift = variants[v][3] == 2 ? 30 : v % 2 ? -3 : 2;
        }
        assert_int_equal(
            hqrt_b_op(b, HQX_OP_CONV, "net/conv1", &p, sizeof p, ins, (uint32_t)nin, &y, 1), 0);
        assert_int_equal(hqrt_b_io(b, ins, (uint32_t)nin, &y, 1), 0);
        size_t len = 0;
        uint8_t *bytes = finish_program(b, &len);
        run_three_ways_on(bytes, len, 2, codes);
        free(bytes);
    }
}

static void fast_depthwise_equals_reference_on_random_shapes(void **state)
{
    (void)state;
    for (int iter = 0; iter < 60; iter++) {
        int c = iter % 3 == 0 ? rnd_range(1, 7) : rnd_range(1, 45); /* few: a row's one stage */
        conv_case_t k = {
            .h = rnd_range(3, 14),
            .w = rnd_range(3, 14),
            .cin = c,
            .cout = c,
            .kh = rnd_range(1, 5),
            .kw = rnd_range(1, 5),
            .stride = rnd_range(1, 2),
            .dilation = rnd() % 3 ? 1 : 2,
            .groups = c,
            .weight_bits = rnd() % 2 ? 8 : 4,
            .in_bits = 8,
            .out_bits = rnd() % 4 ? 8 : 16,
            .path = rnd() % 2 ? HQRT_PATH_WIDE : HQRT_PATH_GEMMLOWP,
            .per_channel = 1,
            .addend = rnd() % 4 ? 0 : 1 + (int)(rnd() % 2),
        };
        k.pad = rnd_range(0, k.kh - 1);
        if (k.h < (k.kh - 1) * k.dilation + 1)
            k.h = (k.kh - 1) * k.dilation + 1;
        if (k.w < (k.kw - 1) * k.dilation + 1)
            k.w = (k.kw - 1) * k.dilation + 1;
        conv_three_ways(&k, 2);
    }
}

/* The depthwise layers of mobile networks: 3x3 and 5x5 windows at stride 1 and 2 with "same"
 * pads over rows wide enough that most windows lie inside the input (the AVX-512 kernel's
 * paired-tap path, 32 channels per step) and channel counts on and off multiples of 16 and 32
 * (the last group masked), some with a residual addend, some dilated; mostly non-negative
 * multipliers, so that the AVX-512 kernel's int32 output stage runs (with and without a lut,
 * per channel and per tensor), the rest through the shared vector stage. */
static void fast_depthwise_of_mobile_shapes_equals_reference(void **state)
{
    (void)state;
    static const int channels[] = {16, 24, 32, 40, 72, 96, 120, 184, 200, 33, 1, 63, 8, 16};
    const size_t shapes = sizeof channels / sizeof channels[0];
    for (size_t r = 0; r < 2 * shapes; r++) { /* every shape twice, other options */
        const size_t i = r % shapes;
        const int c = channels[i], kernel = i % 2 ? 5 : 3, dilation = i % 5 == 4 ? 2 : 1;
        conv_case_t k = {.h = rnd_range(5, 13) | 1,
                         .w = rnd_range(9, 31),
                         .cin = c,
                         .cout = c,
                         .kh = kernel,
                         .kw = kernel,
                         .stride = 1 + (int)(i / 2 % 2),
                         .dilation = dilation,
                         .pad = (kernel - 1) / 2 * dilation,
                         .groups = c,
                         .weight_bits = r % 3 == 2 ? 4 : 8,
                         .in_bits = 8,
                         .out_bits = 8,
                         .path = HQRT_PATH_GEMMLOWP,
                         .per_channel = r % 7 != 6,
                         .addend = r % 4 == 3 ? 1 : 0,
                         .lut = r % 3 == 1,
                         .positive = r % 6 != 5};
        if (k.h < (kernel - 1) * dilation + 1)
            k.h = (kernel - 1) * dilation + 1;
        conv_three_ways(&k, 2);
    }
}

/* 1x1 depthwise layers (a normalization: one multiplier per channel): the AVX-512 kernel runs
 * each row as one flat run with the channels' constants repeated over lcm(c, 16) values; few
 * channels (3: an RGB normalization), channel counts whose period is long (200: 400 values) or
 * beyond the flat run's limit (500: 2000 values, the ordinary path), rows whose
 * length is not a multiple of 16, LUTs, per-tensor stages. */
static void fast_pointwise_depthwise_equals_reference(void **state)
{
    (void)state;
    static const int channels[] = {3, 1, 5, 16, 24, 40, 200, 136, 500, 3, 7, 48};
    for (size_t i = 0; i < sizeof channels / sizeof channels[0]; i++) {
        conv_case_t k = {.h = rnd_range(1, 6),
                         .w = rnd_range(1, 23),
                         .cin = channels[i],
                         .cout = channels[i],
                         .kh = 1,
                         .kw = 1,
                         .stride = 1,
                         .dilation = 1,
                         .pad = 0,
                         .groups = channels[i],
                         .weight_bits = i % 3 == 2 ? 4 : 8,
                         .in_bits = 8,
                         .out_bits = 8,
                         .path = HQRT_PATH_GEMMLOWP,
                         .per_channel = i % 4 != 3,
                         .lut = i % 3 == 1,
                         .positive = i % 5 != 4};
        conv_three_ways(&k, 2);
    }
}

/* Shapes the AMX kernel takes where the CPU has it (depth >= 128 bytes and at most 1/8 of its
 * 64-byte steps padding, >= 32 channels, >= 32 pixels, 1x1 convs only stride 1 and read in
 * place): pixel counts that leave partial 16-pixel tiles and chunk tails, depths that are not
 * whole 64-byte steps, dilation, channel counts that leave a single block or half a group, 4- and
 * 8-bit weights, addends, lut stages and stages off the int32 path. */
static void fast_conv_amx_shapes_equal_reference(void **state)
{
    (void)state;
    static const int shapes[][6] = {
        /* cin, kh, kw, stride, dilation, pad */
        {128, 1, 1, 1, 1, 0}, {192, 1, 1, 1, 1, 0}, {256, 1, 1, 1, 1, 0}, {60, 3, 3, 1, 1, 1},
        {64, 3, 3, 2, 1, 1},  {16, 5, 5, 1, 1, 2},  {33, 3, 3, 1, 2, 2},  {320, 1, 1, 1, 1, 0},
        {100, 3, 1, 1, 1, 0}, {64, 3, 3, 1, 1, 1}};
    for (int iter = 0; iter < 30; iter++) {
        const int *sh = shapes[iter % (int)(sizeof shapes / sizeof shapes[0])];
        conv_case_t k = {.h = rnd_range(8, 19),
                         .w = rnd_range(9, 21),
                         .cin = sh[0],
                         .cout = iter % 3 == 0 ? rnd_range(32, 40) : rnd_range(41, 150),
                         .kh = sh[1],
                         .kw = sh[2],
                         .stride = sh[3],
                         .dilation = sh[4],
                         .pad = sh[5],
                         .groups = 1,
                         .weight_bits = iter % 2 ? 4 : 8,
                         .in_bits = 8,
                         .out_bits = iter % 7 == 6 ? 16 : 8,
                         .path = iter % 5 == 4 ? HQRT_PATH_WIDE : HQRT_PATH_GEMMLOWP,
                         .per_channel = iter % 4 != 1,
                         .addend = iter % 3 == 1   ? 1
                                   : iter % 9 == 8 ? 2
                                                   : 0,
                         .lut = iter % 6 == 5,
                         .positive = iter % 2};
        if (k.lut)
            k.out_bits = 8;
        int span = k.dilation * (k.kh - 1) + 1;
        if (k.h + 2 * k.pad < span)
            k.h = span;
        conv_three_ways(&k, 1 + iter % 3);
    }
}

/* Convs and dense ops whose stage ends in a lut (hardswish, sigmoid): the VNNI kernel looks
 * the codes up in its own clamped int32 copy of the table, in the tile's registers for full
 * tiles and per pixel otherwise; with narrowed clamps, addends, partial blocks. */
static void fast_conv_with_a_lut_stage_equals_reference(void **state)
{
    (void)state;
    for (int iter = 0; iter < 16; iter++) {
        const bool one = iter % 4 < 2;
        conv_case_t k = {.h = rnd_range(3, 13),
                         .w = rnd_range(3, 13),
                         .cin = rnd_range(1, 40),
                         .cout = iter % 6 == 0   ? 64
                                 : iter % 3 == 0 ? rnd_range(60, 80)
                                                 : rnd_range(1, 70),
                         .kh = one ? 1 : 3,
                         .kw = one ? 1 : 3,
                         .stride = 1 + iter % 2,
                         .dilation = 1,
                         .pad = one ? 0 : 1,
                         .groups = 1,
                         .weight_bits = iter % 3 == 1 ? 4 : 8,
                         .in_bits = 8,
                         .out_bits = 8,
                         .path = HQRT_PATH_GEMMLOWP,
                         .per_channel = iter % 5 != 4,
                         .dense = iter % 7 == 6,
                         .addend = iter % 4 == 3 ? 1 : 0,
                         .lut = 1,
                         .positive = iter % 6 != 5};
        if (k.dense)
            k.addend = 0;
        conv_three_ways(&k, 2);
    }
}

static void fast_dense_equals_reference_including_deep_inputs(void **state)
{
    (void)state;
    int cins[] = {1, 15, 16, 17, 300, 4096};
    for (size_t i = 0; i < sizeof cins / sizeof cins[0]; i++) {
        conv_case_t k = {.cin = cins[i],
                         .cout = rnd_range(1, 70),
                         .groups = 1,
                         .weight_bits = 8,
                         .in_bits = 8,
                         .out_bits = 8,
                         .path = HQRT_PATH_WIDE,
                         .per_channel = 1,
                         .dense = 1};
        conv_three_ways(&k, 3);
    }
}

static void sixteen_bit_layers_run_the_reference_path_identically_at_two_threads(void **state)
{
    (void)state;
    conv_case_t k = {.h = 6,
                     .w = 5,
                     .cin = 7,
                     .cout = 9,
                     .kh = 3,
                     .kw = 3,
                     .stride = 1,
                     .dilation = 1,
                     .pad = 1,
                     .groups = 1,
                     .weight_bits = 16,
                     .in_bits = 16,
                     .out_bits = 16,
                     .path = HQRT_PATH_WIDE,
                     .per_channel = 1};
    conv_three_ways(&k, 2);
}

/* A hand-checked value: 1x1 conv, one input channel, weight 3, bias 10, zp 5, input code 9:
 * acc = 10 + (9 - 5) * 3 = 22; multiplier 2^30 with shift 0 halves it: 11; + out zp 2 = 13. */
static void conv_output_matches_a_hand_computed_value(void **state)
{
    (void)state;
    hqrt_builder_t *b = hqrt_b_create("net", "hailo8");
    int32_t x = hqrt_b_tensor(b, "net/in", 4, 1, 1, 1, 8, 1.0f, 5);
    int32_t y = hqrt_b_tensor(b, "net/conv", 4, 1, 1, 1, 8, 1.0f, 2);
    hqx_conv_params_t p = pointwise_params();
    int8_t w = 3;
    int64_t bias = 10;
    int32_t m = 1 << 30, s = 0;
    p.weights = hqrt_b_blob(b, &w, 1);
    p.bias = hqrt_b_blob(b, &bias, 8);
    p.stage = (hqx_stage_t){.path = HQRT_PATH_GEMMLOWP, .count = 1, .act_max = 255};
    p.stage.multiplier = hqrt_b_blob(b, &m, 4);
    p.stage.shift = hqrt_b_blob(b, &s, 4);
    assert_int_equal(hqrt_b_op(b, HQX_OP_CONV, "net/conv", &p, sizeof p, &x, 1, &y, 1), 0);
    assert_int_equal(hqrt_b_io(b, &x, 1, &y, 1), 0);
    size_t len;
    uint8_t *bytes = finish_program(b, &len);
    hqrt_model_t *model;
    hqrt_error_t err;
    assert_int_equal(hqrt_open_memory(bytes, len, "hand", &model, &err), HQRT_OK);
    uint8_t in = 9, out = 0;
    const void *ins[1] = {&in};
    void *outs[1] = {&out};
    assert_int_equal(hqrt_run(model, 1, ins, outs, NULL, &err), HQRT_OK);
    assert_int_equal(out, 13);
    in = 5; /* the zero point contributes nothing: acc = 10 -> 5 -> 7 */
    assert_int_equal(hqrt_run(model, 1, ins, outs, NULL, &err), HQRT_OK);
    assert_int_equal(out, 7);
    hqrt_close(model);
    free(bytes);
}

/* ---- every op in one program ------------------------------------------------------------------
 */

static int32_t tensor4(hqrt_builder_t *b, const char *name, uint32_t h, uint32_t w, uint32_t c,
                       uint32_t bits)
{
    int32_t id = hqrt_b_tensor(b, name, 4, h, w, c, bits, 0.05f, bits == 16 ? 30000 : 100);
    assert_true(id >= 0);
    return id;
}

static hqx_blob_t random_blob(hqrt_builder_t *b, size_t size)
{
    uint8_t *d = malloc(size);
    for (size_t i = 0; i < size; i++)
        d[i] = (uint8_t)rnd();
    hqx_blob_t blob = hqrt_b_blob(b, d, size);
    free(d);
    return blob;
}

static void op1(hqrt_builder_t *b, uint32_t code, const char *name, const void *params,
                uint32_t size, int32_t in, int32_t out)
{
    if (hqrt_b_op(b, code, name, params, size, &in, 1, &out, 1))
        fail_msg("%s: %s", name, hqrt_b_error(b));
}

/* The Q30 exp table of an 8-bit softmax: 2^30 * exp(-d / 16) in integers (halving every 11
 * steps), with entry `bad` (when > 0) pushed above 2^30. */
static hqx_blob_t softmax_table(hqrt_builder_t *b, int bad)
{
    int32_t e[256];
    for (int d = 0; d < 256; d++)
        e[d] = (int32_t)((1 << 30) >> (d / 11));
    if (bad > 0)
        e[bad] = (1 << 30) + 1;
    return hqrt_b_blob(b, e, sizeof e);
}

/* A program that uses every op code once (16-bit tensors where `wide`). */
static uint8_t *build_zoo(bool wide, size_t *len)
{
    uint32_t ab = wide ? 16 : 8;
    hqrt_builder_t *b = hqrt_b_create("zoo", "hailo8");
    int32_t x = tensor4(b, "zoo/in", 6, 6, 4, 8);
    hqx_conv_params_t cp = {.kernel_h = 3,
                            .kernel_w = 3,
                            .stride_h = 1,
                            .stride_w = 1,
                            .dilation_h = 1,
                            .dilation_w = 1,
                            .pad_top = 1,
                            .pad_left = 1,
                            .pad_bottom = 1,
                            .pad_right = 1,
                            .groups = 1,
                            .weight_bits = 8};
    cp.weights = random_blob(b, 3 * 3 * 4 * 8);
    cp.stage = make_stage(b, 8, HQRT_PATH_GEMMLOWP, (int)ab);
    int32_t a = tensor4(b, "zoo/conv", 6, 6, 8, ab);
    op1(b, HQX_OP_CONV, "zoo/conv", &cp, sizeof cp, x, a);
    hqx_conv_params_t dw = cp;
    dw.groups = 8;
    dw.weight_bits = 4;
    int8_t w4[72];
    for (int i = 0; i < 72; i++)
        w4[i] = (int8_t)rnd_range(-7, 7);
    dw.weights = hqrt_b_blob(b, w4, sizeof w4);
    dw.stage = make_stage(b, 8, HQRT_PATH_WIDE, 8);
    int32_t bb = tensor4(b, "zoo/dw", 6, 6, 8, 8);
    op1(b, HQX_OP_CONV, "zoo/dw", &dw, sizeof dw, a, bb);
    hqx_pool_params_t mp = {.kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2};
    int32_t c = hqrt_b_tensor(b, "zoo/maxpool", 4, 3, 3, 8, 8, 0.05f, 100);
    op1(b, HQX_OP_MAXPOOL, "zoo/maxpool", &mp, sizeof mp, bb, c);
    hqx_pool_params_t ap = {.kernel_h = 3,
                            .kernel_w = 3,
                            .stride_h = 1,
                            .stride_w = 1,
                            .pad_top = 1,
                            .pad_left = 1,
                            .pad_bottom = 1,
                            .pad_right = 1,
                            .count_include_pad = 0};
    ap.stage = make_stage(b, 9, HQRT_PATH_GEMMLOWP, 8);
    int32_t d = tensor4(b, "zoo/avgpool", 3, 3, 8, 8);
    op1(b, HQX_OP_AVGPOOL, "zoo/avgpool", &ap, sizeof ap, c, d);
    hqx_eltwise_params_t ep = {.op = HQRT_EW_ADD,
                               .a_multiplier = 1 << 30,
                               .a_shift = 1,
                               .b_multiplier = -(1 << 30),
                               .b_shift = 0};
    ep.stage = make_stage(b, 1, HQRT_PATH_GEMMLOWP, 8);
    ep.stage.multiplier = hqrt_b_blob(b, &(int32_t){1 << 30}, 4);
    ep.stage.shift = hqrt_b_blob(b, &(int32_t){0}, 4);
    int32_t e = tensor4(b, "zoo/ew_add", 3, 3, 8, 8);
    int32_t cd[2] = {c, d};
    assert_int_equal(hqrt_b_op(b, HQX_OP_ELTWISE, "zoo/ew_add", &ep, sizeof ep, cd, 2, &e, 1), 0);
    hqx_stage_params_t act = {make_stage(b, 8, HQRT_PATH_GEMMLOWP, 8)};
    act.stage.multiplier_neg = act.stage.multiplier;
    act.stage.shift_neg = act.stage.shift;
    int32_t f = tensor4(b, "zoo/leaky", 3, 3, 8, 8);
    op1(b, HQX_OP_ACTIVATION, "zoo/leaky", &act, sizeof act, e, f);
    hqx_stage_params_t lut = {{0}};
    lut.stage.lut = random_blob(b, 256);
    int32_t g = tensor4(b, "zoo/sigmoid", 3, 3, 8, 8);
    op1(b, HQX_OP_LUT, "zoo/sigmoid", &lut, sizeof lut, f, g);
    hqx_axis_params_t axis3 = {.axis = 3};
    int32_t g12[2] = {tensor4(b, "zoo/split", 3, 3, 3, 8), tensor4(b, "zoo/split:1", 3, 3, 5, 8)};
    assert_int_equal(hqrt_b_op(b, HQX_OP_SPLIT, "zoo/split", &axis3, sizeof axis3, &g, 1, g12, 2),
                     0);
    int32_t h = tensor4(b, "zoo/concat", 3, 3, 8, 8);
    int32_t g21[2] = {g12[1], g12[0]};
    assert_int_equal(hqrt_b_op(b, HQX_OP_CONCAT, "zoo/concat", &axis3, sizeof axis3, g21, 2, &h, 1),
                     0);
    hqx_resize_params_t rp = {.method = HQRT_RESIZE_BILINEAR, .coords = HQRT_COORDS_HALF_PIXEL};
    int32_t i = tensor4(b, "zoo/resize", 6, 6, 8, 8);
    op1(b, HQX_OP_RESIZE, "zoo/resize", &rp, sizeof rp, h, i);
    hqx_const_params_t kp = {random_blob(b, 6 * 6 * 8)};
    int32_t k = tensor4(b, "zoo/const", 6, 6, 8, 8);
    assert_int_equal(hqrt_b_op(b, HQX_OP_CONST, "zoo/const", &kp, sizeof kp, NULL, 0, &k, 1), 0);
    hqx_eltwise_params_t mul = {.op = HQRT_EW_MULT};
    mul.stage = make_stage(b, 1, HQRT_PATH_WIDE, 8);
    int32_t l = tensor4(b, "zoo/ew_mult", 6, 6, 8, 8);
    int32_t ik[2] = {i, k};
    assert_int_equal(hqrt_b_op(b, HQX_OP_ELTWISE, "zoo/ew_mult", &mul, sizeof mul, ik, 2, &l, 1),
                     0);
    hqx_slice_params_t sp = {.begin = {0, 1, 0}, .end = {6, 6, 8}, .step = {2, 1, 1}};
    int32_t m = tensor4(b, "zoo/slice", 3, 5, 8, 8);
    op1(b, HQX_OP_SLICE, "zoo/slice", &sp, sizeof sp, l, m);
    hqx_pad_params_t pp = {.mode = HQRT_PAD_REFLECT, .before = {1, 0, 0}, .after = {0, 1, 0}};
    int32_t n = tensor4(b, "zoo/pad", 4, 6, 8, 8);
    op1(b, HQX_OP_PAD, "zoo/pad", &pp, sizeof pp, m, n);
    hqx_block_params_t bp = {.block = 2, .crd = 1};
    int32_t o = tensor4(b, "zoo/d2s", 8, 12, 2, 8);
    op1(b, HQX_OP_DEPTH_TO_SPACE, "zoo/d2s", &bp, sizeof bp, n, o);
    int32_t p = tensor4(b, "zoo/s2d", 4, 6, 8, 8);
    op1(b, HQX_OP_SPACE_TO_DEPTH, "zoo/s2d", &bp, sizeof bp, o, p);
    hqx_transpose_params_t tp = {{0, 2, 1, 3}};
    int32_t q = tensor4(b, "zoo/transpose", 6, 4, 8, 8);
    op1(b, HQX_OP_TRANSPOSE, "zoo/transpose", &tp, sizeof tp, p, q);
    hqx_axis_params_t axis2 = {.axis = 2};
    int32_t r = tensor4(b, "zoo/reduce_max", 6, 1, 8, 8);
    op1(b, HQX_OP_REDUCE_MAX, "zoo/reduce_max", &axis2, sizeof axis2, q, r);
    hqx_pool_params_t gp = {0};
    gp.stage = make_stage(b, 1, HQRT_PATH_GEMMLOWP, 8);
    int32_t s = tensor4(b, "zoo/gap", 1, 1, 8, 8);
    op1(b, HQX_OP_GLOBAL_AVG, "zoo/gap", &gp, sizeof gp, q, s);
    hqx_conv_params_t dc = cp;
    dc.stride_h = dc.stride_w = 2;
    dc.output_pad_h = dc.output_pad_w = 1;
    dc.weights = random_blob(b, 3 * 3 * 8 * 4);
    dc.stage = make_stage(b, 4, HQRT_PATH_WIDE, 8);
    int32_t t = tensor4(b, "zoo/deconv", 8, 12, 4, 8);
    op1(b, HQX_OP_DECONV, "zoo/deconv", &dc, sizeof dc, p, t);
    hqx_conv_params_t fc = {.groups = 1, .weight_bits = 8};
    fc.weights = random_blob(b, 8 * 5);
    fc.stage = make_stage(b, 5, HQRT_PATH_GEMMLOWP, 8);
    int32_t u = hqrt_b_tensor(b, "zoo/dense", 2, 1, 1, 5, 8, 0.1f, 3);
    op1(b, HQX_OP_DENSE, "zoo/dense", &fc, sizeof fc, s, u);
    int32_t v = tensor4(b, "zoo/argmax", 6, 1, 1, 8);
    op1(b, HQX_OP_ARGMAX, "zoo/argmax", &axis3, sizeof axis3, r, v);
    int32_t w = hqrt_b_tensor(b, "zoo/output_layer1", 2, 1, 1, 5, 8, 0.1f, 3);
    op1(b, HQX_OP_COPY, "zoo/output_layer1", &axis3, sizeof axis3, u, w);
    hqx_softmax_params_t smp = {.axis = 3};
    smp.exp_lut = softmax_table(b, 0);
    smp.stage = make_stage(b, 1, HQRT_PATH_WIDE, 8);
    int32_t y = tensor4(b, "zoo/softmax", 6, 1, 8, 8);
    op1(b, HQX_OP_SOFTMAX, "zoo/softmax", &smp, sizeof smp, r, y);
    int32_t outs[4] = {t, w, v, y};
    assert_int_equal(hqrt_b_io(b, &x, 1, outs, 4), 0);
    uint8_t *bytes = finish_program(b, len);
    maybe_write_seed(bytes, *len, true);
    return bytes;
}

static void every_op_validates_and_runs_identically_at_one_and_two_threads(void **state)
{
    (void)state;
    for (int wide = 0; wide < 2; wide++) {
        size_t len;
        uint8_t *bytes = build_zoo(wide, &len);
        hqrt_model_t *m = NULL;
        hqrt_error_t err;
        if (hqrt_open_memory(bytes, len, "zoo", &m, &err) != HQRT_OK)
            fail_msg("%s", err.message);
        hqrt_close(m);
        run_three_ways(bytes, len, 2);
        free(bytes);
    }
}

/* A chain large enough that the threads of a shared sample split every op: conv 3x3 (rows of
 * output pixels), depthwise 3x3, 1x1 conv with the first conv's output as addend (a residual),
 * maxpool, elementwise add; two outputs. */
static uint8_t *build_split_chain(size_t *len)
{
    hqrt_builder_t *b = hqrt_b_create("split", "hailo8");
    const uint32_t h = 64, w = 60;
    int32_t x = tensor4(b, "split/in", h, w, 8, 8);
    hqx_conv_params_t cp = pointwise_params();
    cp.kernel_h = cp.kernel_w = 3;
    cp.pad_top = cp.pad_left = cp.pad_bottom = cp.pad_right = 1;
    cp.weights = random_blob(b, 3 * 3 * 8 * 32);
    cp.stage = make_stage(b, 32, HQRT_PATH_GEMMLOWP, 8);
    int32_t a = tensor4(b, "split/conv", h, w, 32, 8);
    op1(b, HQX_OP_CONV, "split/conv", &cp, sizeof cp, x, a);
    hqx_conv_params_t dw = cp;
    dw.groups = 32;
    dw.weights = random_blob(b, 3 * 3 * 32);
    dw.stage = make_stage(b, 32, HQRT_PATH_GEMMLOWP, 8);
    int32_t d = tensor4(b, "split/dw", h, w, 32, 8);
    op1(b, HQX_OP_CONV, "split/dw", &dw, sizeof dw, a, d);
    hqx_conv_params_t pw = pointwise_params();
    pw.weights = random_blob(b, 32 * 32);
    pw.stage = make_stage(b, 32, HQRT_PATH_GEMMLOWP, 8);
    pw.addend_multiplier = 1 << 30;
    pw.addend_shift = 1;
    int32_t p = tensor4(b, "split/pw", h, w, 32, 8);
    int32_t da[2] = {d, a};
    if (hqrt_b_op(b, HQX_OP_CONV, "split/pw", &pw, sizeof pw, da, 2, &p, 1))
        fail_msg("split/pw: %s", hqrt_b_error(b));
    hqx_pool_params_t mp = {.kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2};
    int32_t q = tensor4(b, "split/maxpool", h / 2, w / 2, 32, 8);
    op1(b, HQX_OP_MAXPOOL, "split/maxpool", &mp, sizeof mp, p, q);
    hqx_eltwise_params_t ep = {.op = HQRT_EW_ADD,
                               .a_multiplier = 1 << 30,
                               .a_shift = 1,
                               .b_multiplier = 1 << 30,
                               .b_shift = 1};
    ep.stage = make_stage(b, 1, HQRT_PATH_GEMMLOWP, 8);
    int32_t e = tensor4(b, "split/add", h, w, 32, 8);
    int32_t pa[2] = {p, a};
    assert_int_equal(hqrt_b_op(b, HQX_OP_ELTWISE, "split/add", &ep, sizeof ep, pa, 2, &e, 1), 0);
    int32_t outs[2] = {q, e};
    assert_int_equal(hqrt_b_io(b, &x, 1, outs, 2), 0);
    uint8_t *bytes = finish_program(b, len);
    return bytes;
}

/* One model run again and again with the thread count and the batch changing (its worker
 * threads are kept between runs and remade when the count changes; batches mix whole samples
 * and shared ones) gives the bytes of one thread every time; closing it right after a run with
 * threads stops them. */
static void runs_with_changing_threads_and_batches_give_the_bytes_of_one_thread(void **state)
{
    (void)state;
    for (int program = 0; program < 3; program++) {
        size_t len;
        uint8_t *bytes = program < 2 ? build_zoo(program == 1, &len) : build_split_chain(&len);
        hqrt_model_t *model = NULL;
        hqrt_error_t err;
        if (hqrt_open_memory(bytes, len, "threads", &model, &err) != HQRT_OK)
            fail_msg("%s", err.message);
        enum { MOST = 5 };
        hqrt_io_t io;
        void *ins[4] = {0}, *want[4] = {0}, *got[4] = {0};
        size_t out_bytes[4] = {0};
        int nin = 0, nout = 0;
        for (; hqrt_describe(model, HQRT_INPUT, nin, &io, NULL) == HQRT_OK; nin++) {
            assert_true(nin < 4);
            ins[nin] = malloc(io.bytes * MOST);
            for (size_t k = 0; k < io.bytes * MOST; k++)
                ((uint8_t *)ins[nin])[k] = (uint8_t)rnd();
        }
        for (; hqrt_describe(model, HQRT_OUTPUT, nout, &io, NULL) == HQRT_OK; nout++) {
            assert_true(nout < 4);
            out_bytes[nout] = io.bytes;
            want[nout] = malloc(io.bytes * MOST);
            got[nout] = malloc(io.bytes * MOST);
        }
        hqrt_run_options_t one = {.threads = 1};
        if (hqrt_run(model, MOST, (const void *const *)ins, want, &one, &err) != HQRT_OK)
            fail_msg("%s", err.message);
        static const int plan[][2] = {{2, 1}, {2, 1}, {3, 1}, {2, 5}, {3, 5}, {2, 3}, {4, 2},
                                      {1, 2}, {2, 1}, {5, 4}, {2, 2}, {2, 1}};
        for (int rep = 0; rep < 4; rep++)
            for (size_t r = 0; r < sizeof plan / sizeof plan[0]; r++) {
                hqrt_run_options_t opt = {.threads = plan[r][0]};
                int64_t batch = plan[r][1];
                for (int o = 0; o < nout; o++)
                    memset(got[o], 0xA5, out_bytes[o] * MOST);
                if (hqrt_run(model, batch, (const void *const *)ins, got, &opt, &err) != HQRT_OK)
                    fail_msg("%s", err.message);
                for (int o = 0; o < nout; o++)
                    if (memcmp(got[o], want[o], out_bytes[o] * (size_t)batch))
                        fail_msg("program %d, %d threads, batch %lld: output %d differs",
                                 program, plan[r][0], (long long)batch, o);
            }
        hqrt_close(model); /* after a run at 2 threads: the workers are stopped and joined */
        for (int i = 0; i < nin; i++)
            free(ins[i]);
        for (int o = 0; o < nout; o++)
            free(want[o]), free(got[o]);
        free(bytes);
    }
}

/* A chain whose deep layers run grouped (docs/deploy.md "Batches": at most 196 output pixels,
 * at least 64 KiB of weights) between ops that do not: a 3x3 conv of 256 output pixels, maxpool,
 * a 3x3 conv on the AMX kernel where the CPU has it (depth 576), depthwise, a 3x3 conv with that
 * conv's output as addend, a 3x3 stride-2 conv, a dense op, and a 1x1 conv into 16-bit codes
 * (never grouped); three outputs. */
static uint8_t *build_group_chain(size_t *len)
{
    hqrt_builder_t *b = hqrt_b_create("group", "hailo8");
    int32_t x = tensor4(b, "group/in", 16, 16, 8, 8);
    hqx_conv_params_t c3 = pointwise_params();
    c3.kernel_h = c3.kernel_w = 3;
    c3.pad_top = c3.pad_left = c3.pad_bottom = c3.pad_right = 1;
    hqx_conv_params_t cp = c3;
    cp.weights = random_blob(b, 3 * 3 * 8 * 64);
    cp.stage = make_stage(b, 64, HQRT_PATH_GEMMLOWP, 8);
    int32_t a = tensor4(b, "group/wide", 16, 16, 64, 8);
    op1(b, HQX_OP_CONV, "group/wide", &cp, sizeof cp, x, a);
    hqx_pool_params_t mp = {.kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2};
    int32_t q = tensor4(b, "group/maxpool", 8, 8, 64, 8);
    op1(b, HQX_OP_MAXPOOL, "group/maxpool", &mp, sizeof mp, a, q);
    cp = c3;
    cp.weights = random_blob(b, 3 * 3 * 64 * 128);
    cp.stage = make_stage(b, 128, HQRT_PATH_GEMMLOWP, 8);
    int32_t d = tensor4(b, "group/deep", 8, 8, 128, 8);
    op1(b, HQX_OP_CONV, "group/deep", &cp, sizeof cp, q, d);
    hqx_conv_params_t dw = c3;
    dw.groups = 128;
    dw.weights = random_blob(b, 3 * 3 * 128);
    dw.stage = make_stage(b, 128, HQRT_PATH_GEMMLOWP, 8);
    int32_t e = tensor4(b, "group/dw", 8, 8, 128, 8);
    op1(b, HQX_OP_CONV, "group/dw", &dw, sizeof dw, d, e);
    cp = c3;
    cp.weights = random_blob(b, 3 * 3 * 128 * 128);
    cp.stage = make_stage(b, 128, HQRT_PATH_GEMMLOWP, 8);
    cp.addend_multiplier = 1 << 30;
    cp.addend_shift = 1;
    int32_t r = tensor4(b, "group/residual", 8, 8, 128, 8);
    int32_t ed[2] = {e, d};
    if (hqrt_b_op(b, HQX_OP_CONV, "group/residual", &cp, sizeof cp, ed, 2, &r, 1))
        fail_msg("group/residual: %s", hqrt_b_error(b));
    cp = c3;
    cp.stride_h = cp.stride_w = 2;
    cp.weights = random_blob(b, 3 * 3 * 128 * 64);
    cp.stage = make_stage(b, 64, HQRT_PATH_GEMMLOWP, 8);
    int32_t s = tensor4(b, "group/stride2", 4, 4, 64, 8);
    op1(b, HQX_OP_CONV, "group/stride2", &cp, sizeof cp, r, s);
    hqx_conv_params_t dp = {.groups = 1, .weight_bits = 8};
    dp.weights = random_blob(b, 4 * 4 * 64 * 64);
    dp.stage = make_stage(b, 64, HQRT_PATH_GEMMLOWP, 8);
    int32_t y = hqrt_b_tensor(b, "group/dense", 2, 1, 1, 64, 8, 0.05f, 100);
    op1(b, HQX_OP_DENSE, "group/dense", &dp, sizeof dp, s, y);
    hqx_conv_params_t pw = pointwise_params();
    pw.weights = random_blob(b, 64 * 8);
    pw.stage = make_stage(b, 8, HQRT_PATH_WIDE, 16);
    int32_t w = tensor4(b, "group/wide_codes", 4, 4, 8, 16);
    op1(b, HQX_OP_CONV, "group/wide_codes", &pw, sizeof pw, s, w);
    int32_t outs[3] = {y, r, w};
    assert_int_equal(hqrt_b_io(b, &x, 1, outs, 3), 0);
    return finish_program(b, len);
}

/* Batches 1..9 at 1 and 2 threads, with groups of up to 8 samples (the default) and of up to 3
 * (HQRT_GROUP=3: groups of 3, 3 and 1 at batch 7), give the bytes of the samples run one at a
 * time (HQRT_GROUP=1). */
static void grouped_batches_give_the_bytes_of_samples_run_one_by_one(void **state)
{
    (void)state;
    size_t len;
    uint8_t *bytes = build_group_chain(&len);
    enum { MOST = 9, OUTS = 3 };
    static const char *const groups[] = {"1", NULL, "3"};
    hqrt_model_t *model[3];
    hqrt_error_t err;
    for (int g = 0; g < 3; g++) {
        if (groups[g])
            setenv("HQRT_GROUP", groups[g], 1);
        if (hqrt_open_memory(bytes, len, "group", &model[g], &err) != HQRT_OK)
            fail_msg("%s", err.message);
        unsetenv("HQRT_GROUP");
    }
    hqrt_io_t io;
    assert_int_equal(hqrt_describe(model[0], HQRT_INPUT, 0, &io, NULL), HQRT_OK);
    uint8_t *in = malloc(io.bytes * MOST);
    for (size_t k = 0; k < io.bytes * MOST; k++)
        in[k] = (uint8_t)rnd();
    void *want[OUTS], *got[OUTS];
    size_t out_bytes[OUTS];
    for (int o = 0; o < OUTS; o++) {
        assert_int_equal(hqrt_describe(model[0], HQRT_OUTPUT, o, &io, NULL), HQRT_OK);
        out_bytes[o] = io.bytes;
        want[o] = malloc(io.bytes * MOST);
        got[o] = malloc(io.bytes * MOST);
    }
    const void *ins[1] = {in};
    hqrt_run_options_t one = {.threads = 1};
    if (hqrt_run(model[0], MOST, ins, want, &one, &err) != HQRT_OK)
        fail_msg("%s", err.message);
    for (int g = 0; g < 3; g++)
        for (int threads = 1; threads <= 2; threads++)
            for (int64_t batch = 1; batch <= MOST; batch++) {
                hqrt_run_options_t opt = {.threads = threads};
                for (int o = 0; o < OUTS; o++)
                    memset(got[o], 0xA5, out_bytes[o] * MOST);
                if (hqrt_run(model[g], batch, ins, got, &opt, &err) != HQRT_OK)
                    fail_msg("%s", err.message);
                for (int o = 0; o < OUTS; o++)
                    if (memcmp(got[o], want[o], out_bytes[o] * (size_t)batch))
                        fail_msg("groups of %s, %d threads, batch %lld: output %d differs",
                                 groups[g] ? groups[g] : "8", threads, (long long)batch, o);
            }
    for (int g = 0; g < 3; g++)
        hqrt_close(model[g]);
    for (int o = 0; o < OUTS; o++)
        free(want[o]), free(got[o]);
    free(in);
    free(bytes);
}

/* ---- a chain program for corruption tests ---------------------------------------------------- */

static uint8_t *build_chain(size_t *len)
{
    conv_case_t k = {.h = 5,
                     .w = 5,
                     .cin = 3,
                     .cout = 4,
                     .kh = 3,
                     .kw = 3,
                     .stride = 1,
                     .dilation = 1,
                     .pad = 1,
                     .groups = 1,
                     .weight_bits = 8,
                     .in_bits = 8,
                     .out_bits = 8,
                     .path = HQRT_PATH_GEMMLOWP,
                     .per_channel = 1};
    return build_conv(&k, len);
}

static hqrt_status_t open_bytes(const uint8_t *bytes, size_t len, hqrt_error_t *err)
{
    hqrt_model_t *m = NULL;
    /* copy into an aligned buffer of exactly len bytes, as a file would be */
    uint8_t *copy = aligned_alloc(64, (len + 63) / 64 * 64);
    memcpy(copy, bytes, len);
    hqrt_status_t st = hqrt_open_memory(copy, len, "prog.hqx", &m, err);
    if (st == HQRT_OK)
        assert_null(strchr(err->message, '\n'));
    hqrt_close(m);
    free(copy);
    return st;
}

/* Profiling counts each op once per sample, whether a thread runs the sample whole or threads
 * share it (batch 3 at 2 threads: both), and never changes the bytes. */
static void profiling_counts_one_run_per_op_and_sample_and_keeps_the_bytes(void **state)
{
    (void)state;
    size_t len;
    uint8_t *bytes = build_chain(&len);
    hqrt_model_t *model;
    hqrt_error_t err;
    assert_int_equal(hqrt_open_memory(bytes, len, "profiled", &model, &err), HQRT_OK);
    hqrt_io_t in_io, out_io;
    assert_int_equal(hqrt_describe(model, HQRT_INPUT, 0, &in_io, &err), HQRT_OK);
    assert_int_equal(hqrt_describe(model, HQRT_OUTPUT, 0, &out_io, &err), HQRT_OK);
    enum { BATCH = 3 };
    uint8_t *in = malloc(BATCH * in_io.bytes), *plain = malloc(BATCH * out_io.bytes),
            *profiled = malloc(BATCH * out_io.bytes);
    for (size_t i = 0; i < BATCH * in_io.bytes; i++)
        in[i] = (uint8_t)rnd();
    const void *ins[1] = {in};
    void *outs[1] = {plain};
    hqrt_run_options_t two = {.threads = 2};
    assert_int_equal(hqrt_run(model, BATCH, ins, outs, &two, &err), HQRT_OK);
    hqrt_op_profile_t p;
    assert_int_equal(hqrt_op_profile(model, 0, &p, &err), HQRT_OK);
    assert_true(p.count >= 1);
    assert_int_equal(p.runs, 0); /* not profiling: nothing counted */
    assert_int_equal(hqrt_set_profiling(model, 1, &err), HQRT_OK);
    outs[0] = profiled;
    assert_int_equal(hqrt_run(model, BATCH, ins, outs, &two, &err), HQRT_OK);
    assert_memory_equal(plain, profiled, BATCH * out_io.bytes);
    const int count = p.count;
    for (int i = 0; i < count; i++) {
        assert_int_equal(hqrt_op_profile(model, i, &p, &err), HQRT_OK);
        assert_int_equal(p.runs, BATCH);
        assert_true(p.seconds >= 0.0);
        assert_non_null(p.name);
        assert_string_not_equal(p.kind, "?");
    }
    assert_int_equal(hqrt_set_profiling(model, 0, &err), HQRT_OK); /* off keeps the totals */
    assert_int_equal(hqrt_run(model, BATCH, ins, outs, NULL, &err), HQRT_OK);
    assert_int_equal(hqrt_op_profile(model, 0, &p, &err), HQRT_OK);
    assert_int_equal(p.runs, BATCH);
    assert_int_equal(hqrt_set_profiling(model, 1, &err), HQRT_OK); /* on again starts from zero */
    assert_int_equal(hqrt_op_profile(model, 0, &p, &err), HQRT_OK);
    assert_int_equal(p.runs, 0);
    assert_int_equal(hqrt_op_profile(model, count, &p, &err), HQRT_ERR_ARGUMENT);
    hqrt_close(model);
    free(in);
    free(plain);
    free(profiled);
    free(bytes);
}

static void a_valid_program_opens(void **state)
{
    (void)state;
    size_t len;
    uint8_t *bytes = build_chain(&len);
    hqrt_error_t err = {0};
    assert_int_equal(open_bytes(bytes, len, &err), HQRT_OK);
    free(bytes);
}

static void refused(const uint8_t *bytes, size_t len, const char *expect)
{
    hqrt_error_t err = {0};
    hqrt_status_t st = open_bytes(bytes, len, &err);
    if (st == HQRT_OK)
        fail_msg("a corrupt program was accepted (expected '%s')", expect);
    assert_non_null(strstr(err.message, "prog.hqx"));
    assert_null(strchr(err.message, '\n'));
    if (!strstr(err.message, expect))
        fail_msg("message '%s' does not say '%s'", err.message, expect);
}

static void a_softmax_exp_table_above_two_to_the_thirty_is_refused(void **state)
{
    (void)state;
    hqrt_builder_t *b = hqrt_b_create("net", "hailo8");
    int32_t x = tensor4(b, "net/input_layer1", 2, 3, 10, 8);
    int32_t y = tensor4(b, "net/softmax1", 2, 3, 10, 8);
    hqx_softmax_params_t p = {.axis = 3};
    p.exp_lut = softmax_table(b, 17);
    p.stage = make_stage(b, 1, HQRT_PATH_WIDE, 8);
    op1(b, HQX_OP_SOFTMAX, "net/softmax1", &p, sizeof p, x, y);
    assert_int_equal(hqrt_b_io(b, &x, 1, &y, 1), 0);
    size_t len = 0;
    uint8_t *bytes = finish_program(b, &len);
    refused(bytes, len, "softmax exp table");
    free(bytes);
}

static void every_flipped_byte_is_refused(void **state)
{
    (void)state;
    size_t len;
    uint8_t *bytes = build_chain(&len);
    for (size_t i = 0; i < len; i++) {
        if (i >= 24 && i < 32)
            continue; /* the checksum field itself: a flip there is a checksum mismatch too */
        bytes[i] ^= 0x10;
        hqrt_error_t err = {0};
        if (open_bytes(bytes, len, &err) == HQRT_OK)
            fail_msg("flipping byte %zu of %zu was not noticed", i, len);
        bytes[i] ^= 0x10;
    }
    bytes[25] ^= 1;
    refused(bytes, len, "checksum");
    free(bytes);
}

static void a_truncated_program_is_refused(void **state)
{
    (void)state;
    size_t len;
    uint8_t *bytes = build_chain(&len);
    refused(bytes, len - 1, "truncated");
    refused(bytes, 100, "shorter than");
    refused(bytes, 0, "shorter than");
    free(bytes);
}

static void a_wrong_version_is_refused(void **state)
{
    (void)state;
    size_t len;
    uint8_t *bytes = build_chain(&len);
    uint32_t v = HQX_VERSION + 1;
    memcpy(bytes + 8, &v, 4);
    hqrt_b_reseal(bytes, len);
    char want[32];
    snprintf(want, sizeof want, "version %u", HQX_VERSION + 1);
    refused(bytes, len, want);
    v = 0;
    memcpy(bytes + 8, &v, 4);
    hqrt_b_reseal(bytes, len);
    refused(bytes, len, "version 0");
    memcpy(bytes, "HQXPROG?", 8);
    hqrt_b_reseal(bytes, len);
    refused(bytes, len, "bad magic");
    free(bytes);
}

/* Corruptions that keep a valid checksum (resealed): the structural checks must catch them. */
/* in [1, 2, 2, 6] -> channel shuffle with 3 groups as a transpose of the view [1, 4, 3, 2]. */
static uint8_t *build_shuffle(const hqx_transpose_view_params_t *vp, size_t *len)
{
    hqrt_builder_t *b = hqrt_b_create("net", "hailo8");
    int32_t x = tensor4(b, "net/in", 2, 2, 6, 8), y = tensor4(b, "net/shuffle", 2, 2, 6, 8);
    op1(b, HQX_OP_TRANSPOSE_VIEW, "net/shuffle", vp, sizeof *vp, x, y);
    assert_int_equal(hqrt_b_io(b, &x, 1, &y, 1), 0);
    uint8_t *bytes = finish_program(b, len);
    return bytes;
}

static void a_program_carries_the_oldest_version_that_has_all_its_ops(void **state)
{
    (void)state;
    size_t len;
    uint32_t version;
    uint8_t *bytes = build_chain(&len); /* version-1 ops only: a version-1 file */
    memcpy(&version, bytes + 8, 4);
    assert_int_equal(version, 1);
    free(bytes);
    const hqx_transpose_view_params_t vp = {
        .ndim = 4, .dims = {1, 4, 3, 2, 1, 1}, .perm = {0, 1, 3, 2, 4, 5}};
    bytes = build_shuffle(&vp, &len);
    memcpy(&version, bytes + 8, 4);
    assert_int_equal(version, 2);
    hqrt_model_t *model;
    hqrt_error_t err;
    if (hqrt_open_memory(bytes, len, "shuffle", &model, &err) != HQRT_OK)
        fail_msg("%s", err.message);
    uint8_t in[24], out[24];
    for (int i = 0; i < 24; i++)
        in[i] = (uint8_t)i;
    const void *ins[1] = {in};
    void *outs[1] = {out};
    assert_int_equal(hqrt_run(model, 1, ins, outs, NULL, &err), HQRT_OK);
    for (int r = 0; r < 4; r++) /* output channel i*3 + j takes input channel j*2 + i */
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                assert_int_equal(out[r * 6 + i * 3 + j], in[r * 6 + j * 2 + i]);
    hqrt_close(model);
    run_three_ways(bytes, len, 2);
    version = 1; /* a version-1 reader never knew the op: the file may not claim version 1 */
    memcpy(bytes + 8, &version, 4);
    hqrt_b_reseal(bytes, len);
    refused(bytes, len, "transpose_view needs format version 2");
    free(bytes);
}

/* in [1, 1, 2, 4] (8 bits, zp 100) -> layer_norm with gamma codes 1, the Q16 normalized value
 * requantized by 2^-12 (16 codes per unit), bias 20480 (5 codes) on channel 3. */
static uint8_t *build_layer_norm(int64_t epsilon_term, int32_t weight_bits, size_t *len)
{
    hqrt_builder_t *b = hqrt_b_create("net", "hailo8");
    int32_t x = tensor4(b, "net/in", 1, 2, 4, 8), y = tensor4(b, "net/norm", 1, 2, 4, 8);
    const int8_t gamma[4] = {1, 1, 1, 1};
    const int64_t bias[4] = {0, 0, 0, 20480};
    const int32_t mult = 1 << 30, shift = -11;
    hqx_layer_norm_params_t p = {.weight_bits = weight_bits, .epsilon_term = epsilon_term};
    p.gamma = hqrt_b_blob(b, gamma, sizeof gamma);
    p.bias = hqrt_b_blob(b, bias, sizeof bias);
    p.stage = (hqx_stage_t){.path = HQRT_PATH_GEMMLOWP, .count = 1, .act_max = 255};
    p.stage.multiplier = hqrt_b_blob(b, &mult, 4);
    p.stage.shift = hqrt_b_blob(b, &shift, 4);
    op1(b, HQX_OP_LAYER_NORM, "net/norm", &p, sizeof p, x, y);
    assert_int_equal(hqrt_b_io(b, &x, 1, &y, 1), 0);
    uint8_t *bytes = finish_program(b, len);
    return bytes;
}

static void layer_norm_runs_the_integer_formula_in_a_version_3_program(void **state)
{
    (void)state;
    size_t len;
    uint8_t *bytes = build_layer_norm(1, 8, &len);
    uint32_t version;
    memcpy(&version, bytes + 8, 4);
    assert_int_equal(version, 3);
    hqrt_model_t *model;
    hqrt_error_t err;
    if (hqrt_open_memory(bytes, len, "norm", &model, &err) != HQRT_OK)
        fail_msg("%s", err.message);
    /* position 0: x = -3, -1, 1, 3: S1 = 0, S2 = 20, V = 4 * 20 + 1 = 81 = 9^2, so
     * t = round(4x * 2^16 / 9) = -87381, -29127, 29127, 87381 and the codes 100 + t / 4096
     * (+ 5 on channel 3); position 1 is constant: t = 0 */
    const uint8_t in[8] = {97, 99, 101, 103, 100, 100, 100, 100};
    const uint8_t want[8] = {79, 93, 107, 126, 100, 100, 100, 105};
    uint8_t out[8];
    const void *ins[1] = {in};
    void *outs[1] = {out};
    assert_int_equal(hqrt_run(model, 1, ins, outs, NULL, &err), HQRT_OK);
    assert_memory_equal(out, want, 8);
    hqrt_close(model);
    run_three_ways(bytes, len, 3);
    version = 2; /* a version-2 reader never knew the op */
    memcpy(bytes + 8, &version, 4);
    hqrt_b_reseal(bytes, len);
    refused(bytes, len, "layer_norm needs format version 3");
    free(bytes);
    bytes = build_layer_norm(0, 8, &len); /* the epsilon term keeps V >= 1 */
    refused(bytes, len, "epsilon term invalid");
    free(bytes);
    bytes = build_layer_norm(1, 16, &len); /* 16-bit gamma: the 4-byte blob is too short */
    refused(bytes, len, "gamma blob is not 4 codes");
    free(bytes);
}

/* in [1, 7, 8, 40] -> maxpool 3x2, stride 2x1, dilation 2x3, pads (1, 1, 2, 0): out [1, 3, 6, 40]
 * (40 channels: a 32-channel vector step and a tail on the fast path). */
static uint8_t *build_dilated_maxpool(int32_t dilation_h, int32_t dilation_w, size_t *len)
{
    hqrt_builder_t *b = hqrt_b_create("net", "hailo8");
    int32_t x = tensor4(b, "net/in", 7, 8, 40, 8), y = tensor4(b, "net/pool", 3, 6, 40, 8);
    hqx_dilated_pool_params_t p = {.pool = {.kernel_h = 3,
                                            .kernel_w = 2,
                                            .stride_h = 2,
                                            .stride_w = 1,
                                            .pad_top = 1,
                                            .pad_left = 1,
                                            .pad_bottom = 2},
                                   .dilation_h = dilation_h,
                                   .dilation_w = dilation_w};
    op1(b, HQX_OP_DILATED_MAXPOOL, "net/pool", &p, sizeof p, x, y);
    assert_int_equal(hqrt_b_io(b, &x, 1, &y, 1), 0);
    uint8_t *bytes = finish_program(b, len);
    return bytes;
}

static void dilated_maxpool_takes_every_dilation_th_code_in_a_version_4_program(void **state)
{
    (void)state;
    size_t len;
    uint8_t *bytes = build_dilated_maxpool(2, 3, &len);
    uint32_t version;
    memcpy(&version, bytes + 8, 4);
    assert_int_equal(version, 4);
    hqrt_model_t *model;
    hqrt_error_t err;
    if (hqrt_open_memory(bytes, len, "pool", &model, &err) != HQRT_OK)
        fail_msg("%s", err.message);
    enum { H = 7, W = 8, C = 40, OH = 3, OW = 6 };
    static uint8_t in[H * W * C], out[OH * OW * C];
    for (int i = 0; i < H * W * C; i++)
        in[i] = (uint8_t)rnd();
    const void *ins[1] = {in};
    void *outs[1] = {out};
    assert_int_equal(hqrt_run(model, 1, ins, outs, NULL, &err), HQRT_OK);
    for (int oy = 0; oy < OH; oy++) /* rows 2*oy - 1 + 2*ky, columns ox - 1 + 3*kx */
        for (int ox = 0; ox < OW; ox++)
            for (int c = 0; c < C; c++) {
                int best = 0;
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 2; kx++) {
                        int y = 2 * oy - 1 + 2 * ky, xx = ox - 1 + 3 * kx;
                        if (y >= 0 && y < H && xx >= 0 && xx < W && in[(y * W + xx) * C + c] > best)
                            best = in[(y * W + xx) * C + c];
                    }
                assert_int_equal(out[(oy * OW + ox) * C + c], best);
            }
    hqrt_close(model);
    run_three_ways(bytes, len, 3);
    version = 3; /* a version-3 reader never knew the op */
    memcpy(bytes + 8, &version, 4);
    hqrt_b_reseal(bytes, len);
    refused(bytes, len, "dilated_maxpool needs format version 4");
    free(bytes);
    bytes = build_dilated_maxpool(1, 1, &len); /* an undilated pool is HQX_OP_MAXPOOL's */
    refused(bytes, len, "dilated maxpool without dilation");
    free(bytes);
}

static void a_transpose_view_that_does_not_fit_its_tensors_is_refused(void **state)
{
    (void)state;
    const hqx_transpose_view_params_t bad[] = {
        {.ndim = 4, .dims = {1, 4, 3, 3, 1, 1}, .perm = {0, 1, 3, 2, 4, 5}}, /* 36 elements */
        {.ndim = 4, .dims = {1, 4, 3, 2, 1, 1}, .perm = {0, 1, 3, 3, 4, 5}}, /* not a perm */
        {.ndim = 4, .dims = {1, 4, 3, 2, 1, 1}, .perm = {1, 0, 3, 2, 4, 5}}, /* moves the batch */
        {.ndim = 7, .dims = {1, 4, 3, 2, 1, 1}, .perm = {0, 1, 3, 2, 4, 5}}, /* rank */
        {.ndim = 3, .dims = {1, 4, 6, 2, 1, 1}, .perm = {0, 2, 1, 3, 4, 5}}, /* past ndim */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len;
        uint8_t *bytes = build_shuffle(&bad[i], &len);
        refused(bytes, len, "does not fit the input and output");
        free(bytes);
    }
}

static void out_of_range_offsets_are_refused_even_with_a_valid_checksum(void **state)
{
    (void)state;
    size_t len;
    uint8_t *bytes = build_chain(&len);
    hqx_header_t h;
    memcpy(&h, bytes, sizeof h);
    hqx_op_t op;
    memcpy(&op, bytes + h.ops_offset, sizeof op);
    hqx_conv_params_t p;
    memcpy(&p, bytes + op.params_offset, sizeof p);

    uint8_t *work = malloc(len);
#define MUTATE(field_ptr, value, expect)                                                           \
    do {                                                                                           \
        memcpy(work, bytes, len);                                                                  \
        __typeof__(value) v_ = (value);                                                            \
        memcpy(work + (field_ptr), &v_, sizeof v_);                                                \
        hqrt_b_reseal(work, len);                                                                  \
        refused(work, len, expect);                                                                \
    } while (0)
    size_t po = (size_t)op.params_offset;
    MUTATE(po + offsetof(hqx_conv_params_t, weights.offset), (uint64_t)len, "weights blob");
    MUTATE(po + offsetof(hqx_conv_params_t, weights.offset), p.weights.offset + 1, "weights blob");
    MUTATE(po + offsetof(hqx_conv_params_t, weights.size), p.weights.size - 1, "weights blob");
    MUTATE(po + offsetof(hqx_conv_params_t, bias.offset), (uint64_t)64, "bias blob");
    assert_true(p.bias.size >= 16); /* a value past 2^62 in the blob itself */
    MUTATE((size_t)p.bias.offset + 8, ((int64_t)1 << 62) + 1, "bias 1 out of range");
    MUTATE(offsetof(hqx_header_t, tensors_offset), (uint64_t)len - 8, "tensor table");
    MUTATE(offsetof(hqx_header_t, ops_offset), (uint64_t)UINT64_MAX - 7, "op table");
    MUTATE(offsetof(hqx_header_t, arena_size), (uint64_t)64, "arena");
    MUTATE(h.ops_offset + offsetof(hqx_op_t, code), (uint32_t)99, "unknown op code");
    MUTATE(h.ops_offset + offsetof(hqx_op_t, inputs_first), (uint32_t)h.id_count, "id list");
    MUTATE(h.ids_offset, (uint32_t)h.tensor_count, "tensor id");
    MUTATE(po + offsetof(hqx_conv_params_t, kernel_h), (int32_t)2, "window gives");
    MUTATE(po + offsetof(hqx_conv_params_t, stage.count), (int32_t)3, "multipliers");
    MUTATE(h.tensors_offset + sizeof(hqx_tensor_t) + offsetof(hqx_tensor_t, c), (uint32_t)5,
           "size");
    MUTATE(h.tensors_offset + offsetof(hqx_tensor_t, bits), (uint32_t)12, "bits");
    /* two live tensors on the same arena bytes */
    hqx_tensor_t t1;
    memcpy(&t1, bytes + h.tensors_offset + sizeof(hqx_tensor_t), sizeof t1);
    MUTATE(h.tensors_offset + offsetof(hqx_tensor_t, arena_offset), t1.arena_offset, "overlap");
#undef MUTATE
    free(work);
    free(bytes);
}

static void a_missing_file_is_an_io_error(void **state)
{
    (void)state;
    hqrt_model_t *m = (hqrt_model_t *)(uintptr_t)1;
    hqrt_error_t err;
    assert_int_equal(hqrt_open_file("/nonexistent/x.hqx", &m, &err), HQRT_ERR_IO);
    assert_null(m);
    assert_non_null(strstr(err.message, "/nonexistent/x.hqx"));
}

static void quantize_helpers_round_half_away_from_zero_and_clamp(void **state)
{
    (void)state;
    hqrt_io_t io = {.bits = 8, .qp_scale = 0.5f, .qp_zp = 10};
    float x[] = {0.25f, -0.25f, 1000.f, -1000.f, 0.0f};
    uint8_t q[5];
    hqrt_quantize(&io, x, 5, q);
    assert_int_equal(q[0], 11); /* 0.5 -> 1 */
    assert_int_equal(q[1], 9);  /* -0.5 -> -1 */
    assert_int_equal(q[2], 255);
    assert_int_equal(q[3], 0);
    assert_int_equal(q[4], 10);
    float back[5];
    hqrt_dequantize(&io, q, 5, back);
    assert_true(back[0] == 0.5f && back[4] == 0.0f);
}

/* hqrt_quantize (vector path where the CPU has one) against hqrt_quantize_value element by
 * element: halves of either sign, values beyond the codes' range, NaN and infinities, a count
 * that leaves a tail, both widths and several scales. */
static void quantize_matches_the_scalar_formula(void **state)
{
    (void)state;
    enum { N = 1003 };
    static float x[N];
    static uint16_t q[N];
    const float scales[] = {0.5f, 1.0f / 255.0f, 0.0173f, 3.75f, 1e-6f};
    for (int bits = 8; bits <= 16; bits += 8)
        for (size_t si = 0; si < sizeof scales / sizeof scales[0]; si++) {
            hqrt_io_t io = {.bits = bits, .qp_scale = scales[si],
                            .qp_zp = bits == 8 ? rnd_range(0, 255) : rnd_range(0, 65535)};
            for (int i = 0; i < N; i++) {
                int kind = rnd_range(0, 5);
                float half_steps = (float)rnd_range(-600, 600) * 0.5f; /* exact halves */
                x[i] = kind == 0   ? half_steps * io.qp_scale
                       : kind == 1 ? (float)rnd_range(-1000000, 1000000) * 1e-3f
                       : kind == 2 ? (float)rnd_range(-70000, 70000) * io.qp_scale
                       : kind == 3 ? (rnd_range(0, 1) ? 1e30f : -1e30f)
                                   : (float)rnd_range(-300, 300) * 0.37f * io.qp_scale;
            }
            x[5] = NAN, x[6] = INFINITY, x[7] = -INFINITY, x[N - 1] = NAN, x[N - 2] = -0.0f;
            memset(q, 0xAB, sizeof q);
            hqrt_quantize(&io, x, N, q);
            for (int i = 0; i < N; i++) {
                int32_t want = hqrt_quantize_value(x[i], io.qp_scale, io.qp_zp, bits);
                int32_t got = bits == 8 ? ((uint8_t *)q)[i] : q[i];
                if (got != want)
                    fail_msg("bits %d scale %g zp %d: x[%d] = %.9g gives %d, want %d", bits,
                             (double)io.qp_scale, io.qp_zp, i, (double)x[i], got, want);
            }
        }
}

/* ---- vector per-element kernels (hqrt_kernels_stage.c) against the reference --------------- */

/* A multiplier: 0, or |m| in [2^30, 2^31), either sign (ew_sub's b is negative). */
static int32_t random_multiplier(void)
{
    int32_t kind = rnd_range(0, 9);
    if (kind == 0)
        return 0;
    int32_t m = kind == 1   ? INT32_MAX
                : kind == 2 ? (int32_t)1 << 30
                            : (int32_t)((1u << 30) + (rnd() % (1u << 30)));
    return rnd() % 4 == 0 ? -m : m;
}

/* A shift: the extremes of [-31, 30] sometimes, else a realistic one. */
static int32_t random_shift(void)
{
    int32_t kind = rnd_range(0, 5);
    return kind == 0 ? -31 : kind == 1 ? 30 : kind == 2 ? rnd_range(-31, 30) : rnd_range(-14, 2);
}

typedef struct random_stage {
    int32_t mult[64], shift[64], mult_neg[64], shift_neg[64];
    uint16_t lut[65536];
    hqrt_output_stage_t stage;
} random_stage_t;

/* A random valid output stage for `channels` channels (<= 64): per tensor or per channel,
 * with or without negative-side multipliers and a lut; path 32-bit mostly. */
static void random_stage(random_stage_t *r, int32_t channels, int32_t out_bits)
{
    int32_t count = rnd() % 2 ? 1 : channels, max = out_bits == 16 ? 65535 : 255;
    for (int32_t i = 0; i < count; i++) {
        r->mult[i] = random_multiplier(), r->shift[i] = random_shift();
        r->mult_neg[i] = random_multiplier(), r->shift_neg[i] = random_shift();
    }
    for (int32_t i = 0; i <= max; i++) {
        uint16_t v = (uint16_t)rnd_range(0, max);
        if (out_bits == 16)
            r->lut[i] = v;
        else
            ((uint8_t *)r->lut)[i] = (uint8_t)v;
    }
    int32_t lo = rnd() % 3 ? 0 : rnd_range(0, max), hi = rnd() % 3 ? max : rnd_range(lo, max);
    r->stage = (hqrt_output_stage_t){.path = rnd() % 8 ? HQRT_PATH_GEMMLOWP : HQRT_PATH_WIDE,
                                     .count = count,
                                     .multiplier = r->mult,
                                     .shift = r->shift,
                                     .multiplier_neg = rnd() % 4 ? NULL : r->mult_neg,
                                     .shift_neg = NULL,
                                     .lut = rnd() % 4 ? NULL : r->lut,
                                     .pre_zp = rnd_range(0, max),
                                     .out_bits = out_bits,
                                     .out_zp = rnd_range(0, max),
                                     .act_min = lo,
                                     .act_max = hi};
    if (r->stage.multiplier_neg)
        r->stage.shift_neg = r->shift_neg;
}

static int32_t random_accumulator(void)
{
    int32_t kind = rnd_range(0, 3);
    return kind == 0   ? (int32_t)rnd() * (rnd() % 2 ? 1 : -1)
           : kind == 1 ? (rnd() % 2 ? INT32_MAX : INT32_MIN)
                       : rnd_range(-70000, 70000);
}

/* The depthwise kernel itself (hqrt_i_conv_prepare_kernel, hqrt_i_conv_fast) against hqrt_conv2d
 * on random shapes, over random pieces of output rows (what threads sharing a sample run), with
 * the input, output and scratch allocated to their exact sizes so that a read or write past any
 * of them is seen under the sanitizers: channel counts on and off multiples of 8 and 16 (down to
 * 1), odd widths (the last step of 8 pixels runs past the row), 1x1, 3x3, 5x5, 7x7 and other
 * windows, strides 1 to 3 and dilations 1 to 3 per axis, asymmetric pads (some wider than the
 * window, so that whole output rows see only pads), windows of more than 512 taps (float sums
 * added to int32 every 512 taps) and dilated windows taller than the kernel's 64 row slots,
 * 4- and 8-bit weights at their extremes, input codes 0 and 255, biases that fold into the
 * int32 sums and biases that do not, 8- and 16-bit outputs, luts, residual addends; a third of
 * the cases end in a stage that passes each sum through (16-bit codes acc + 32768), so that a sum
 * off by one shows, some of them on the largest sums (every product 255 * 127). */
static void fast_depthwise_kernel_equals_reference_on_row_pieces(void **state)
{
    (void)state;
    static random_stage_t r;
    static const int channels[] = {1,  3,  5,  7,  8,  9,  15, 16,  17,
                                   24, 31, 32, 33, 40, 45, 72, 100, 136};
    int fast_cases = 0;
    for (int iter = 0; iter < 400; iter++) {
        const int32_t c = channels[rnd() % (sizeof channels / sizeof channels[0])];
        hqrt_conv_params_t p = {.groups = c, .in_bits = 8, .in_zp = rnd_range(0, 255)};
        const int shape = rnd_range(0, 9);
        if (shape < 6) { /* the common windows, square */
            static const int k[] = {1, 3, 3, 5, 5, 7};
            p.kernel_h = p.kernel_w = k[shape];
        } else if (shape < 9) {
            p.kernel_h = rnd_range(1, 6), p.kernel_w = rnd_range(1, 6);
        } else if (rnd() % 2) { /* more than 512 taps */
            p.kernel_h = rnd_range(35, 45), p.kernel_w = rnd_range(13, 16);
        } else { /* a dilated window taller than 64 input rows */
            p.kernel_h = rnd_range(8, 9), p.kernel_w = rnd_range(1, 3);
        }
        const bool huge = shape == 9, pass = iter % 3 == 0;
        /* the largest sums (see below): windows of more than 512 taps inside the input */
        const bool extreme = huge && pass && p.kernel_h > 9 && rnd() % 2;
        p.stride_h = rnd() % 3 ? rnd_range(1, 2) : 3;
        p.stride_w = rnd() % 3 ? rnd_range(1, 2) : 3;
        p.dilation_h = huge && p.kernel_h < 10 ? 9 : rnd() % 4 || extreme ? 1 : rnd_range(2, 3);
        p.dilation_w = rnd() % 4 || extreme ? 1 : rnd_range(2, 3);
        const int32_t ext_h = (p.kernel_h - 1) * p.dilation_h + 1;
        const int32_t ext_w = (p.kernel_w - 1) * p.dilation_w + 1;
        p.pad_top = rnd_range(0, ext_h - 1), p.pad_bottom = rnd_range(0, ext_h - 1);
        p.pad_left = rnd_range(0, ext_w - 1), p.pad_right = rnd_range(0, ext_w - 1);
        if (rnd() % 8 == 0) /* pads past the window */
            p.pad_top = ext_h + rnd_range(0, 2), p.pad_left = ext_w + rnd_range(0, 2);
        if (extreme)
            p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 0;
        p.weight_bits = rnd() % 3 ? 8 : 4;
        hqrt_dims_t in = {1, rnd_range(1, 20), rnd_range(1, 27), c};
        if (huge && p.kernel_h > 9) /* more kernel rows inside the input than one float sum's */
            in.h = rnd_range(p.kernel_h - 4, p.kernel_h + 3),
            in.w = rnd_range(p.kernel_w - 3, p.kernel_w + 5);
        if (extreme)
            in.h = p.kernel_h + rnd_range(0, 2), in.w = p.kernel_w + rnd_range(0, 9);
        if (in.h + p.pad_top + p.pad_bottom < ext_h)
            p.pad_bottom = ext_h - in.h - p.pad_top;
        if (in.w + p.pad_left + p.pad_right < ext_w)
            p.pad_right = ext_w - in.w - p.pad_left;
        hqrt_dims_t out = {1, (in.h + p.pad_top + p.pad_bottom - ext_h) / p.stride_h + 1,
                           (in.w + p.pad_left + p.pad_right - ext_w) / p.stride_w + 1, c};
        const int32_t out_bits = pass || rnd() % 4 == 0 ? 16 : 8;
        random_stage(&r, c <= 64 ? c : 1, out_bits);
        p.out = r.stage;
        if (c > 64)
            p.out.count = 1;
        if (pass) { /* y = requantize(acc, 2^30, 1) = acc */
            r.mult[0] = 1 << 30, r.shift[0] = 1;
            p.out = (hqrt_output_stage_t){.path = HQRT_PATH_GEMMLOWP,
                                          .count = 1,
                                          .multiplier = r.mult,
                                          .shift = r.shift,
                                          .out_bits = 16,
                                          .out_zp = 32768,
                                          .act_max = 65535};
        }
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
            bias[o] = rnd() % 16 ? rnd_range(-100000, 100000)
                                 : (rnd() % 2 ? 1 : -1) * (rnd() % 2 ? room : room + 1);
        const int64_t *b = rnd() % 5 ? bias : NULL;
        if (extreme) {
            /* the largest sums: every product 255 * 127, the bias taking the full window's sum
             * away again, so that the passed-through codes of windows inside the input show any
             * rounding of sums past 2^24 */
            p.in_zp = 0, p.weight_bits = 8;
            memset(x, 255, in_bytes);
            memset(w, 127, taps * (size_t)c);
            for (int32_t o = 0; o < c; o++)
                bias[o] = -(int64_t)taps * 255 * 127 + rnd_range(-1000, 1000);
            b = bias;
        }
        const size_t out_count = (size_t)out.h * (size_t)out.w * (size_t)c;
        const size_t out_size = out_count * (out_bits == 16 ? 2 : 1);
        hqrt_addend_t addend = {0}, *ad = NULL;
        void *ad_codes = NULL;
        if (rnd() % 5 == 0) {
            addend.bits = rnd() % 3 ? 8 : 16;
            addend.zp = addend.bits == 16 ? 30000 : 7;
            addend.multiplier = rnd_range(1 << 30, INT32_MAX);
            addend.shift = rnd_range(-4, 8);
            ad_codes = malloc(out_count * (addend.bits == 16 ? 2 : 1));
            for (size_t i = 0; i < out_count * (addend.bits == 16 ? 2 : 1); i++)
                ((uint8_t *)ad_codes)[i] = (uint8_t)rnd();
            addend.data = ad_codes;
            ad = &addend;
        }
        void *want = malloc(out_size), *got = malloc(out_size);
        void *ref_scratch = malloc(hqrt_conv2d_get_buffer_size(&p, in) + 1);
        assert_int_equal(hqrt_conv2d(&p, in, x, w, b, ad, out, want, ref_scratch), HQRT_KERNEL_OK);
        hqrt_i_prepared_t prep;
        hqrt_error_t err;
        assert_int_equal(
            hqrt_i_conv_prepare_kernel(&p, false, in, out, w, b, true, "dw", &prep, &err), HQRT_OK);
        if (prep.fast) {
            fast_cases++;
            /* aligned as the executor's (a 1-channel case is a groups == 1 conv) */
            uint8_t *scratch = aligned_alloc(64, (prep.scratch + 63) / 64 * 64);
            memset(got, 0xAB, out_size);
            /* random pieces of what the threads share (prep.rows: output rows, or output
             * pixels for kernels that split by pixel, such as a 1-channel case's conv) */
            for (int64_t row = 0; row < prep.rows;) {
                const int64_t end = row + rnd_range(1, rnd() % 2 ? 3 : (int32_t)prep.rows);
                const int64_t stop = end < prep.rows ? end : prep.rows;
                assert_int_equal(
                    hqrt_i_conv_fast(&prep, &p, in, x, b, ad, out, got, row, stop, scratch), 0);
                row = stop;
            }
            if (memcmp(got, want, out_size))
                fail_msg("case %d: c %d, %dx%d window, strides %d/%d, dilations %d/%d, pads "
                         "%d %d %d %d, input %dx%d: the fast kernel's codes differ",
                         iter, c, p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.dilation_h,
                         p.dilation_w, p.pad_top, p.pad_left, p.pad_bottom, p.pad_right, in.h,
                         in.w);
            free(scratch);
            free(prep.packed);
        }
        free(w), free(x), free(bias), free(want), free(got), free(ref_scratch), free(ad_codes);
    }
    /* every case qualifies where the CPU has AVX2 (and HQRT_NO_FAST is unset) */
    if (hqrt_i_vector_isa() != HQRT_ISA_REFERENCE)
        assert_int_equal(fast_cases, 400);
}

/* The conv/dense kernels over several samples in one call (hqrt_i_conv_fast_samples, the
 * runtime's grouped batches) against hqrt_conv2d / hqrt_dense sample by sample, on random shapes:
 * 2 to 5 samples laid out like the executor's arenas (each sample's input, output and addend at
 * the same offsets of a block, the blocks `stride` bytes apart), the samples' pixels cut into
 * random pieces (so that chunks and tiles start and end inside samples and straddle them), the
 * AMX kernel and (HQRT_NO_AMX) the VNNI one, 1x1 and 3x3 windows with strides, pads and
 * dilations, channel counts on and off multiples of 16 and 64, 4- and 8-bit weights, 8-bit
 * residual addends, luts, dense ops. Kernels that take one sample only (hqrt_i_conv_samples_scratch
 * 0: AVX2, depthwise) are skipped. */
static void fast_conv_over_several_samples_equals_reference_per_sample(void **state)
{
    (void)state;
    static random_stage_t r;
    for (int iter = 0; iter < 120; iter++) {
        const bool dense = iter % 8 == 7, deep = iter % 3 == 0;
        const int32_t k = dense ? 1 : rnd() % 3 ? 3 : 1;
        hqrt_conv_params_t p = {.kernel_h = k,
                                .kernel_w = k,
                                .stride_h = rnd() % 3 ? 1 : 2,
                                .dilation_h = rnd() % 5 ? 1 : 2,
                                .groups = 1,
                                .in_bits = 8,
                                .in_zp = rnd_range(0, 255),
                                .weight_bits = rnd() % 3 ? 8 : 4};
        p.stride_w = p.stride_h, p.dilation_w = p.dilation_h;
        const int32_t ext = (k - 1) * p.dilation_h + 1;
        p.pad_top = p.pad_left = rnd_range(0, ext - 1);
        p.pad_bottom = p.pad_right = rnd_range(0, ext - 1);
        hqrt_dims_t in = {1, rnd_range(1, 14), rnd_range(1, 14),
                          deep ? 64 * rnd_range(1, 3) : rnd_range(1, 80)};
        if (in.h + p.pad_top + p.pad_bottom < ext)
            p.pad_bottom = ext - in.h - p.pad_top;
        if (in.w + p.pad_left + p.pad_right < ext)
            p.pad_right = ext - in.w - p.pad_left;
        const int32_t cout = rnd() % 2 ? rnd_range(32, 150) : rnd_range(1, 40);
        hqrt_dims_t out = {1, (in.h + p.pad_top + p.pad_bottom - ext) / p.stride_h + 1,
                           (in.w + p.pad_left + p.pad_right - ext) / p.stride_w + 1, cout};
        if (dense)
            out = (hqrt_dims_t){1, 1, 1, cout};
        random_stage(&r, cout <= 64 ? cout : 1, 8);
        p.out = r.stage;
        if (cout > 64)
            p.out.count = 1;
        const size_t depth = (size_t)k * (size_t)k * (size_t)in.c * (dense ? (size_t)in.h * in.w : 1);
        int8_t *w = malloc(depth * (size_t)cout);
        const int32_t wmax = p.weight_bits == 8 ? 127 : 7;
        for (size_t i = 0; i < depth * (size_t)cout; i++)
            w[i] = (int8_t)rnd_range(-wmax - 1, wmax);
        int64_t *bias = malloc((size_t)cout * sizeof *bias);
        for (int32_t o = 0; o < cout; o++)
            bias[o] = rnd_range(-100000, 100000);
        const bool add = !dense && rnd() % 3 == 0;
        const size_t in_bytes = (size_t)in.h * in.w * in.c, out_bytes = (size_t)out.h * out.w * cout;
        /* a sample's block: input, output, addend, each followed by 64 bytes of slack */
        const size_t o_off = (in_bytes + 64 + 63) / 64 * 64;
        const size_t a_off = o_off + (out_bytes + 64 + 63) / 64 * 64;
        const size_t stride = a_off + (add ? (out_bytes + 64 + 63) / 64 * 64 : 64);
        const int64_t samples = rnd_range(2, 5);
        uint8_t *block = aligned_alloc(64, stride * (size_t)samples);
        for (size_t i = 0; i < stride * (size_t)samples; i++)
            block[i] = (uint8_t)rnd();
        hqrt_addend_t addend = {.data = block + a_off,
                                .bits = 8,
                                .zp = rnd_range(0, 255),
                                .multiplier = rnd_range(1 << 30, INT32_MAX),
                                .shift = rnd_range(-4, 8)};
        uint8_t *want = malloc(out_bytes * (size_t)samples);
        void *ref_scratch = malloc(hqrt_conv2d_get_buffer_size(&p, in) + 1);
        for (int64_t n = 0; n < samples; n++) {
            const uint8_t *x = block + (size_t)n * stride;
            hqrt_addend_t an = addend;
            an.data = block + (size_t)n * stride + a_off;
            uint8_t *y = want + (size_t)n * out_bytes;
            if (dense)
                assert_int_equal(hqrt_dense(&p, 1, (int32_t)depth, cout, x, w, bias, y),
                                 HQRT_KERNEL_OK);
            else
                assert_int_equal(hqrt_conv2d(&p, in, x, w, bias, add ? &an : NULL, out, y,
                                             ref_scratch),
                                 HQRT_KERNEL_OK);
        }
        if (iter % 2)
            setenv("HQRT_NO_AMX", "1", 1);
        hqrt_i_prepared_t prep;
        hqrt_error_t err;
        assert_int_equal(
            hqrt_i_conv_prepare_kernel(&p, dense, in, out, w, bias, false, "s", &prep, &err),
            HQRT_OK);
        unsetenv("HQRT_NO_AMX");
        const size_t need = hqrt_i_conv_samples_scratch(&prep);
        if (need) {
            uint8_t *scratch = aligned_alloc(64, (need + 63) / 64 * 64);
            for (int64_t n = 0; n < samples; n++)
                memset(block + (size_t)n * stride + o_off, 0xAB, out_bytes);
            const int64_t all = samples * prep.rows;
            for (int64_t row = 0; row < all;) {
                const int64_t end = row + (rnd() % 3 ? all : rnd_range(1, (int32_t)all));
                const int64_t stop = end < all ? end : all;
                assert_int_equal(hqrt_i_conv_fast_samples(&prep, &p, in, block, bias,
                                                          add ? &addend : NULL, out, block + o_off,
                                                          samples, stride, row, stop, scratch),
                                 0);
                row = stop;
            }
            for (int64_t n = 0; n < samples; n++)
                if (memcmp(block + (size_t)n * stride + o_off, want + (size_t)n * out_bytes,
                           out_bytes))
                    fail_msg("case %d: %s %dx%dx%d -> %dx%dx%d, window %d, stride %d, dilation "
                             "%d, %lld samples: sample %lld differs",
                             iter, dense ? "dense" : "conv", in.h, in.w, in.c, out.h, out.w, cout,
                             k, p.stride_h, p.dilation_h, (long long)samples, (long long)n);
            free(scratch);
        }
        free(prep.packed);
        free(ref_scratch);
        free(want);
        free(block);
        free(bias);
        free(w);
    }
}

static void vector_stage_row_equals_reference_for_every_stage_form(void **state)
{
    (void)state;
    static random_stage_t r;
    int32_t acc[64];
    int64_t bias[64];
    uint16_t want[64], got[64];
    for (int iter = 0; iter < 3000; iter++) {
        int32_t n = rnd_range(1, 64), bits = rnd() % 3 ? 8 : 16;
        random_stage(&r, n, bits);
        for (int32_t j = 0; j < n; j++) {
            acc[j] = random_accumulator();
            int32_t kind = rnd_range(0, 3);
            bias[j] = kind == 0   ? 0
                      : kind == 1 ? (int64_t)random_accumulator() * 1000
                                  : (int64_t)rnd_range(-100000, 100000);
        }
        const int64_t *b = rnd() % 2 ? bias : NULL;
        hqrt_i_stage_row(HQRT_ISA_REFERENCE, &r.stage, acc, b, 0, n, want);
        for (int isa = HQRT_ISA_AVX2; isa <= hqrt_i_vector_isa(); isa++) {
            memset(got, 0xAB, sizeof got);
            hqrt_i_stage_row(isa, &r.stage, acc, b, 0, n, got);
            assert_memory_equal(got, want, (size_t)n * (bits == 16 ? 2 : 1));
        }
    }
}

/* The stage of whole pixels (few channels: the constants repeated to whole vectors), and of
 * blocks of pixels with spaced accumulators, against the reference's hqrt_output_code of every
 * value in its channel. */
static void vector_stage_of_pixels_equals_reference_for_every_channel_count(void **state)
{
    (void)state;
    static random_stage_t r;
    static int32_t acc[40 * 70];
    static int64_t bias[64];
    static uint16_t want[40 * 70], got[40 * 70];
    for (int iter = 0; iter < 2000; iter++) {
        int32_t c = iter % 2 ? rnd_range(1, 9) : rnd_range(1, 64), bits = rnd() % 3 ? 8 : 16;
        int64_t pixels = rnd_range(1, 40);
        random_stage(&r, c, bits);
        for (int64_t j = 0; j < pixels * c; j++)
            acc[j] = random_accumulator();
        for (int32_t o = 0; o < c; o++)
            bias[o] = rnd() % 2 ? (int64_t)rnd_range(-100000, 100000)
                                : (int64_t)random_accumulator() * 1000;
        const int64_t *b = rnd() % 2 ? bias : NULL;
        for (int64_t j = 0; j < pixels * c; j++)
            hqrt_store(want, bits, (size_t)j,
                       hqrt_output_code(&r.stage, (b ? b[j % c] : 0) + acc[j], (int32_t)(j % c)));
        for (int isa = HQRT_ISA_REFERENCE; isa <= hqrt_i_vector_isa(); isa++) {
            memset(got, 0xAB, sizeof got);
            hqrt_i_stage_pixels(isa, &r.stage, acc, b, c, pixels, got);
            assert_memory_equal(got, want, (size_t)(pixels * c) * (bits == 16 ? 2 : 1));
        }
        /* the same runs as a block whose accumulators are `stride` apart */
        static int32_t spaced[40 * 80];
        const int32_t stride = c + rnd_range(0, 9);
        for (int64_t px = 0; px < pixels; px++)
            for (int32_t o = 0; o < stride; o++)
                spaced[px * stride + o] = o < c ? acc[px * c + o] : random_accumulator();
        for (int isa = HQRT_ISA_REFERENCE; isa <= hqrt_i_vector_isa(); isa++) {
            memset(got, 0xAB, sizeof got);
            hqrt_i_stage_block(isa, &r.stage, spaced, (size_t)stride, b, c, (int32_t)pixels, got);
            assert_memory_equal(got, want, (size_t)(pixels * c) * (bits == 16 ? 2 : 1));
        }
    }
}

/* The stage forms of compiled networks (a right shift in every channel, no negative-side
 * multiplier: the vector kernels' merged requantization) with the values at its bounds: any
 * multiplier including 0, INT32_MAX and INT32_MIN (which leaves the merged form), shifts -1 and
 * -31, INT32 extremes with and without a bias, a lower clamp at the zero point (every y <= 0
 * one code) or below it, luts of both widths (pre_zp 0 too), odd channel counts, runs of
 * pixels. Each value against the reference's hqrt_output_code in its channel. */
static void vector_stage_merged_requantization_equals_reference(void **state)
{
    (void)state;
    static random_stage_t r;
    static int32_t acc[9 * 80];
    static int64_t bias[80];
    static uint16_t want[9 * 80], got[9 * 80];
    for (int iter = 0; iter < 4000; iter++) {
        const int32_t c = rnd_range(1, 80), bits = rnd() % 3 ? 8 : 16, pixels = rnd_range(1, 9);
        const int32_t max = bits == 16 ? 65535 : 255;
        random_stage(&r, c > 64 ? 64 : c, bits);
        r.stage.path = HQRT_PATH_GEMMLOWP;
        r.stage.count = c > 64 || rnd() % 4 == 0 ? 1 : c;
        r.stage.multiplier_neg = r.stage.shift_neg = NULL;
        for (int32_t i = 0; i < r.stage.count; i++) {
            int32_t kind = rnd_range(0, 19);
            r.mult[i] = kind == 0   ? INT32_MIN
                        : kind == 1 ? -INT32_MAX
                        : kind == 2 ? INT32_MAX
                                    : random_multiplier();
            kind = rnd_range(0, 5);
            r.shift[i] = kind == 0 ? -1 : kind == 1 ? -31 : rnd_range(-20, -1);
        }
        if (iter % 8 == 0) /* a vector of channels with a lane outside the merged form */
            r.shift[rnd_range(0, r.stage.count - 1)] = rnd_range(0, 30);
        if (rnd() % 2) { /* a lower clamp at or above the zero point */
            r.stage.out_zp = rnd_range(0, max);
            r.stage.act_min = rnd_range(r.stage.out_zp, max);
            r.stage.act_max = rnd_range(r.stage.act_min, max);
            if (r.stage.lut && rnd() % 2)
                r.stage.pre_zp = 0;
        }
        for (int32_t j = 0; j < pixels * c; j++) {
            const int32_t kind = rnd_range(0, 5);
            acc[j] = kind == 0   ? INT32_MIN
                     : kind == 1 ? INT32_MAX
                     : kind == 2 ? rnd_range(-3, 3)
                                 : random_accumulator();
        }
        for (int32_t o = 0; o < c; o++) {
            const int32_t kind = rnd_range(0, 3);
            bias[o] = kind == 0   ? (int64_t)rnd_range(-100000, 100000)
                      : kind == 1 ? (int64_t)random_accumulator() * (rnd() % 2 ? 1 : 1000)
                      : kind == 2 ? (rnd() % 2 ? HQRT_ACC_LIMIT : -HQRT_ACC_LIMIT)
                                  : 0;
        }
        const int64_t *b = rnd() % 3 ? NULL : bias;
        for (int32_t j = 0; j < pixels * c; j++)
            hqrt_store(want, bits, (size_t)j,
                       hqrt_output_code(&r.stage, (b ? b[j % c] : 0) + acc[j], j % c));
        for (int isa = HQRT_ISA_AVX2; isa <= hqrt_i_vector_isa(); isa++) {
            memset(got, 0xAB, sizeof got);
            hqrt_i_stage_block(isa, &r.stage, acc, (size_t)c, b, c, pixels, got);
            assert_memory_equal(got, want, (size_t)(pixels * c) * (bits == 16 ? 2 : 1));
            memset(got, 0xAB, sizeof got);
            hqrt_i_stage_pixels(isa, &r.stage, acc, b, c, pixels, got);
            assert_memory_equal(got, want, (size_t)(pixels * c) * (bits == 16 ? 2 : 1));
            if (pixels == 1 || (r.stage.count == 1 && !b)) { /* the values as one row */
                memset(got, 0xAB, sizeof got);
                hqrt_i_stage_row(isa, &r.stage, acc, b, 0, pixels * c, got);
                assert_memory_equal(got, want, (size_t)(pixels * c) * (bits == 16 ? 2 : 1));
            }
        }
    }
}

static void vector_elementwise_equals_reference_for_every_broadcast_form(void **state)
{
    (void)state;
    static random_stage_t r;
    static uint16_t a[8192], b[8192], want[8192], got[8192]; /* 5^3 * 64 codes at most */
    for (int iter = 0; iter < 3000; iter++) {
        hqrt_shape_t os = {.ndim = rnd_range(1, 4)}, as, bs;
        int64_t total = 1;
        for (int d = 0; d < os.ndim; d++) {
            os.dims[d] = rnd_range(1, d == os.ndim - 1 ? 64 : 5);
            total *= os.dims[d];
        }
        as = bs = os;
        int32_t form = rnd_range(0, 4); /* same shape; a vector [.., 1, 1, C]; each dim random */
        for (int d = 0; d < os.ndim && form > 0; d++) {
            bool inner = d == os.ndim - 1;
            if (form == 1 && !inner && d > 0)
                bs.dims[d] = 1; /* [N, 1, 1, C] */
            else if (form == 2 && !inner)
                bs.dims[d] = 1; /* [1, 1, C] */
            else if (form >= 3 && rnd() % 2)
                (rnd() % 2 ? as : bs).dims[d] = 1;
        }
        if (rnd() % 2) { /* the broadcast operand first */
            hqrt_shape_t t = as;
            as = bs, bs = t;
        }
        hqrt_ew_params_t p = {.op = rnd_range(HQRT_EW_ADD, HQRT_EW_MIN),
                              .a_bits = rnd() % 3 ? 8 : 16,
                              .b_bits = rnd() % 3 ? 8 : 16,
                              .a_multiplier = random_multiplier(),
                              .a_shift = random_shift(),
                              .b_multiplier = random_multiplier(),
                              .b_shift = random_shift()};
        p.a_zp = rnd_range(0, p.a_bits == 16 ? 65535 : 255);
        p.b_zp = rnd_range(0, p.b_bits == 16 ? 65535 : 255);
        int32_t out_bits = rnd() % 3 ? 8 : 16;
        random_stage(&r, os.dims[os.ndim - 1], out_bits);
        p.out = r.stage;
        for (size_t i = 0; i < 8192; i++) {
            a[i] = (uint16_t)rnd(), b[i] = (uint16_t)rnd();
            if (p.a_bits == 8)
                ((uint8_t *)a)[i] = (uint8_t)rnd();
            if (p.b_bits == 8)
                ((uint8_t *)b)[i] = (uint8_t)rnd();
        }
        assert_int_equal(hqrt_elementwise(&p, &as, a, &bs, b, &os, want), HQRT_KERNEL_OK);
        for (int isa = HQRT_ISA_REFERENCE; isa <= hqrt_i_vector_isa(); isa++) {
            memset(got, 0xAB, sizeof got);
            assert_int_equal(hqrt_i_elementwise_fast(isa, &p, &as, a, &bs, b, &os, got),
                             HQRT_KERNEL_OK);
            assert_memory_equal(got, want, (size_t)total * (out_bits == 16 ? 2 : 1));
        }
    }
    /* the same status as the reference for arguments it refuses */
    hqrt_shape_t s4 = {.ndim = 1, .dims = {4}}, s3 = {.ndim = 1, .dims = {3}};
    hqrt_ew_params_t p = {.op = HQRT_EW_ADD, .a_bits = 8, .b_bits = 8, .out = r.stage};
    assert_int_equal(hqrt_i_elementwise_fast(hqrt_i_vector_isa(), &p, &s4, a, &s3, b, &s4, got),
                     HQRT_KERNEL_ERR_ARGUMENT);
}

/* One operand a single element (x + 3, x * (1/6)), the other 8-bit codes of the output's shape,
 * enough of them for the table of 256 codes: every op, both orders, 8/16-bit outputs and
 * constants, stages with and without luts and negative-side multipliers. */
static void vector_elementwise_with_a_constant_operand_equals_reference(void **state)
{
    (void)state;
    static random_stage_t r;
    static uint8_t v[3 * 40 * 40];
    static uint16_t k[1], want[3 * 40 * 40], got[3 * 40 * 40];
    for (int iter = 0; iter < 600; iter++) {
        hqrt_shape_t os = {.ndim = 3,
                           .dims = {rnd_range(1, 3), rnd_range(20, 40), rnd_range(1, 40)}};
        hqrt_shape_t ks = {.ndim = 3, .dims = {1, 1, 1}};
        const int64_t total = (int64_t)os.dims[0] * os.dims[1] * os.dims[2];
        const bool k_first = rnd() % 2;
        const int32_t k_bits = rnd() % 3 ? 8 : 16;
        hqrt_ew_params_t p = {.op = rnd_range(HQRT_EW_ADD, HQRT_EW_MIN),
                              .a_bits = k_first ? k_bits : 8,
                              .b_bits = k_first ? 8 : k_bits,
                              .a_multiplier = random_multiplier(),
                              .a_shift = random_shift(),
                              .b_multiplier = random_multiplier(),
                              .b_shift = random_shift()};
        p.a_zp = rnd_range(0, p.a_bits == 16 ? 65535 : 255);
        p.b_zp = rnd_range(0, p.b_bits == 16 ? 65535 : 255);
        int32_t out_bits = rnd() % 3 ? 8 : 16;
        random_stage(&r, 1, out_bits);
        r.stage.path = HQRT_PATH_GEMMLOWP;
        p.out = r.stage;
        for (int64_t i = 0; i < total; i++)
            v[i] = rnd() % 8 ? (uint8_t)rnd() : (rnd() % 2 ? 0 : 255);
        k[0] = (uint16_t)rnd();
        if (k_bits == 8)
            ((uint8_t *)k)[0] = (uint8_t)rnd();
        const hqrt_shape_t *as = k_first ? &ks : &os, *bs = k_first ? &os : &ks;
        const void *a = k_first ? (const void *)k : v, *b = k_first ? (const void *)v : k;
        assert_int_equal(hqrt_elementwise(&p, as, a, bs, b, &os, want), HQRT_KERNEL_OK);
        for (int isa = HQRT_ISA_AVX2; isa <= hqrt_i_vector_isa(); isa++) {
            memset(got, 0xAB, sizeof got);
            assert_int_equal(hqrt_i_elementwise_fast(isa, &p, as, a, bs, b, &os, got),
                             HQRT_KERNEL_OK);
            assert_memory_equal(got, want, (size_t)total * (out_bits == 16 ? 2 : 1));
        }
    }
}

/* Random 8-bit-output elementwise params for a per-channel table: x (8-bit) in slot a or b,
 * the other operand 8 or 16-bit, a per-tensor stage (luts, negative sides, both paths). */
static hqrt_ew_params_t random_table_op(random_stage_t *r, bool x_is_a, int32_t other_bits)
{
    hqrt_ew_params_t p = {.op = rnd_range(HQRT_EW_ADD, HQRT_EW_MIN),
                          .a_bits = x_is_a ? 8 : other_bits,
                          .b_bits = x_is_a ? other_bits : 8,
                          .a_multiplier = random_multiplier(),
                          .a_shift = random_shift(),
                          .b_multiplier = random_multiplier(),
                          .b_shift = random_shift()};
    p.a_zp = rnd_range(0, p.a_bits == 16 ? 65535 : 255);
    p.b_zp = rnd_range(0, p.b_bits == 16 ? 65535 : 255);
    random_stage(r, 1, 8);
    p.out = r->stage;
    return p;
}

/* One operand 8-bit codes of the output's shape, the other one code per channel ([1,1,1,C], a
 * squeeze-and-excitation scale), at least HQRT_EW_TABLE_MIN_PIXELS pixels: the per-channel
 * table gives the reference's codes on every ISA, both orders, 8/16-bit scales; other forms
 * (per-channel stages, 16-bit outputs, too few pixels, short scratch) are left to the caller. */
static void vector_elementwise_per_channel_table_equals_reference(void **state)
{
    (void)state;
    static random_stage_t r;
    static uint8_t x[40 * 40 * 70], want[40 * 40 * 70], got[40 * 40 * 70];
    static uint16_t sc[70];
    static uint8_t scratch[2 * 70 * 256 + 64];
    for (int iter = 0; iter < 300; iter++) {
        const int32_t c = rnd_range(2, 70);
        hqrt_shape_t os = {.ndim = 4, .dims = {1, rnd_range(16, 40), rnd_range(32, 40), c}};
        hqrt_shape_t ss = {.ndim = 4, .dims = {1, 1, 1, c}};
        const int64_t total = (int64_t)os.dims[1] * os.dims[2] * c;
        const bool x_is_a = rnd() % 2;
        const int32_t s_bits = rnd() % 3 ? 8 : 16;
        hqrt_ew_params_t p = random_table_op(&r, x_is_a, s_bits);
        for (int64_t i = 0; i < total; i++)
            x[i] = rnd() % 8 ? (uint8_t)rnd() : (rnd() % 2 ? 0 : 255);
        for (int32_t i = 0; i < c; i++)
            sc[i] = (uint16_t)rnd();
        if (s_bits == 8)
            for (int32_t i = 0; i < c; i++)
                ((uint8_t *)sc)[i] = (uint8_t)rnd();
        const hqrt_shape_t *as = x_is_a ? &os : &ss, *bs = x_is_a ? &ss : &os;
        const void *a = x_is_a ? (const void *)x : sc, *b = x_is_a ? (const void *)sc : x;
        assert_int_equal(hqrt_elementwise(&p, as, a, bs, b, &os, want), HQRT_KERNEL_OK);
        for (int isa = HQRT_ISA_AVX2; isa <= hqrt_i_vector_isa(); isa++) {
            memset(got, 0xAB, sizeof got);
            assert_int_equal(
                hqrt_i_elementwise_table(isa, &p, as, a, bs, b, &os, got, scratch, sizeof scratch),
                HQRT_KERNEL_OK);
            assert_memory_equal(got, want, (size_t)total);
        }
        /* what the table does not take: the caller runs the op another way */
        const int isa = hqrt_i_vector_isa();
        assert_int_equal(hqrt_i_elementwise_table(isa, &p, as, a, bs, b, &os, got, scratch,
                                                  hqrt_i_ew_table_bytes(c) - 1),
                         -1);
        hqrt_shape_t small = os;
        small.dims[1] = 1, small.dims[2] = HQRT_EW_TABLE_MIN_PIXELS - 1;
        assert_int_equal(hqrt_i_elementwise_table(isa, &p, x_is_a ? &small : &ss, a,
                                                  x_is_a ? &ss : &small, b, &small, got, scratch,
                                                  sizeof scratch),
                         -1);
        p.out.out_bits = 16;
        assert_int_equal(
            hqrt_i_elementwise_table(isa, &p, as, a, bs, b, &os, got, scratch, sizeof scratch), -1);
    }
}

/* Two 8-bit tensors of the output's shape added (max, min) through tables of each operand's 256
 * requantized terms: the reference's codes on every ISA, for realistic and extreme multipliers
 * and shifts; terms of 2^30 or more, negative-side multipliers and luts are left to the vector
 * kernel (-1). */
static void vector_elementwise_by_term_tables_equals_reference(void **state)
{
    (void)state;
    static random_stage_t r;
    static uint8_t a[64 * 64 * 8], b[64 * 64 * 8], want[64 * 64 * 8], got[64 * 64 * 8];
    static uint8_t scratch[64];
    int taken = 0;
    for (int iter = 0; iter < 300; iter++) {
        hqrt_shape_t os = {.ndim = 4,
                           .dims = {1, rnd_range(8, 64), rnd_range(32, 64), rnd_range(2, 8)}};
        const int64_t total = (int64_t)os.dims[1] * os.dims[2] * os.dims[3];
        const bool realistic = rnd() % 4 != 0;
        hqrt_ew_params_t p = {
            .op = rnd() % 3 ? HQRT_EW_ADD : rnd_range(HQRT_EW_MAX, HQRT_EW_MIN),
            .a_bits = 8,
            .b_bits = 8,
            .a_zp = rnd_range(0, 255),
            .b_zp = rnd_range(0, 255),
            .a_multiplier = realistic ? rnd_range(1 << 30, INT32_MAX) : random_multiplier(),
            .a_shift = realistic ? rnd_range(8, 21) : random_shift(),
            .b_multiplier = realistic ? -rnd_range(1 << 30, INT32_MAX) : random_multiplier(),
            .b_shift = realistic ? rnd_range(8, 21) : random_shift()};
        if (rnd() % 2)
            p.b_multiplier = -p.b_multiplier; /* ew_sub: b's multiplier negated */
        random_stage(&r, os.dims[3], 8);
        p.out = r.stage;
        if (rnd() % 3) /* mostly the form the tables take */
            p.out.lut = NULL, p.out.multiplier_neg = NULL, p.out.shift_neg = NULL;
        for (int64_t i = 0; i < total; i++)
            a[i] = (uint8_t)rnd(), b[i] = (uint8_t)rnd();
        assert_int_equal(hqrt_elementwise(&p, &os, a, &os, b, &os, want), HQRT_KERNEL_OK);
        for (int isa = HQRT_ISA_AVX2; isa <= hqrt_i_vector_isa(); isa++) {
            memset(got, 0xAB, sizeof got);
            int rc = hqrt_i_elementwise_table(isa, &p, &os, a, &os, b, &os, got, scratch,
                                              sizeof scratch);
            if (p.out.lut || p.out.multiplier_neg) {
                assert_int_equal(rc, -1);
                continue;
            }
            if (rc != HQRT_KERNEL_OK)
                continue; /* a term of 2^30 or more */
            taken++;
            assert_memory_equal(got, want, (size_t)total);
        }
    }
    assert_true(taken > 100);
}

/* m = f(x, s) then out = g(x, m) as one table: the codes of the two reference ops in a row, x
 * in either slot of either op, 8/16-bit scales, every op pair and stage form. */
static void vector_elementwise_pair_equals_two_reference_ops(void **state)
{
    (void)state;
    static random_stage_t rf, rg;
    static uint8_t x[40 * 40 * 70], mid[40 * 40 * 70], want[40 * 40 * 70], got[40 * 40 * 70];
    static uint16_t sc[70];
    static uint8_t scratch[2 * 70 * 256 + 64];
    for (int iter = 0; iter < 300; iter++) {
        const int32_t c = rnd_range(2, 70);
        hqrt_shape_t xs = {.ndim = 4, .dims = {1, rnd_range(1, 40), rnd_range(1, 40), c}};
        hqrt_shape_t ss = {.ndim = 4, .dims = {1, 1, 1, c}};
        const int64_t total = (int64_t)xs.dims[1] * xs.dims[2] * c;
        const bool f_x_is_a = rnd() % 2, g_x_is_a = rnd() % 2;
        const int32_t s_bits = rnd() % 3 ? 8 : 16;
        hqrt_ew_params_t f = random_table_op(&rf, f_x_is_a, s_bits);
        hqrt_ew_params_t g = random_table_op(&rg, g_x_is_a, 8);
        /* x's encoding is one tensor's: the same zero point in both ops */
        if (g_x_is_a)
            g.a_zp = f_x_is_a ? f.a_zp : f.b_zp;
        else
            g.b_zp = f_x_is_a ? f.a_zp : f.b_zp;
        for (int64_t i = 0; i < total; i++)
            x[i] = (uint8_t)rnd();
        for (int32_t i = 0; i < c; i++)
            sc[i] = (uint16_t)rnd();
        if (s_bits == 8)
            for (int32_t i = 0; i < c; i++)
                ((uint8_t *)sc)[i] = (uint8_t)rnd();
        assert_int_equal(f_x_is_a ? hqrt_elementwise(&f, &xs, x, &ss, sc, &xs, mid)
                                  : hqrt_elementwise(&f, &ss, sc, &xs, x, &xs, mid),
                         HQRT_KERNEL_OK);
        assert_int_equal(g_x_is_a ? hqrt_elementwise(&g, &xs, x, &xs, mid, &xs, want)
                                  : hqrt_elementwise(&g, &xs, mid, &xs, x, &xs, want),
                         HQRT_KERNEL_OK);
        for (int isa = HQRT_ISA_AVX2; isa <= hqrt_i_vector_isa(); isa++) {
            memset(got, 0xAB, sizeof got);
            assert_int_equal(hqrt_i_elementwise_pair(isa, &f, f_x_is_a, &g, g_x_is_a, &xs, x, &ss,
                                                     sc, got, scratch, sizeof scratch),
                             HQRT_KERNEL_OK);
            assert_memory_equal(got, want, (size_t)total);
        }
        assert_int_equal(hqrt_i_elementwise_pair(HQRT_ISA_REFERENCE, &f, f_x_is_a, &g, g_x_is_a,
                                                 &xs, x, &ss, sc, got, scratch, sizeof scratch),
                         -1);
    }
}

/* A program whose elementwise ops the runtime pairs (x * se, then x + that, PP-OCR's attention)
 * and tables (x * se alone), with the scale a program input whose bytes the pair's output may
 * reuse: the reference's bytes at 1 and 2 threads, VNNI and AVX2, batch 1 and 3. */
static void paired_and_tabled_elementwise_ops_run_identically(void **state)
{
    (void)state;
    for (int iter = 0; iter < 12; iter++) {
        const int32_t h = rnd_range(20, 40), w = rnd_range(26, 40), c = rnd_range(2, 40);
        hqrt_builder_t *b = hqrt_b_create("net", "hailo8");
        int32_t ins[2] = {tensor4(b, "net/input_layer1", h, w, c, 8),
                          hqrt_b_tensor(b, "net/input_layer2", 4, 1, 1, (uint32_t)c, 8, 0.1f, 3)};
        hqx_eltwise_params_t f = {.op = HQRT_EW_MULT}, g = {.op = HQRT_EW_ADD};
        f.stage = make_stage(b, 1, HQRT_PATH_GEMMLOWP, 8);
        g.stage = make_stage(b, 1, rnd() % 4 ? HQRT_PATH_GEMMLOWP : HQRT_PATH_WIDE, 8);
        g.a_multiplier = rnd_range(1 << 30, INT32_MAX), g.a_shift = rnd_range(8, 20);
        g.b_multiplier = rnd_range(1 << 30, INT32_MAX), g.b_shift = rnd_range(8, 20);
        int32_t m = tensor4(b, "net/ew_mult1", h, w, c, 8);
        int32_t y = tensor4(b, "net/ew_add1", h, w, c, 8);
        int32_t z = tensor4(b, "net/ew_mult2", h, w, c, 8);
        int32_t xs[2] = {ins[rnd() % 2 ? 0 : 1], 0}, xm[2];
        xs[1] = xs[0] == ins[0] ? ins[1] : ins[0];
        assert_int_equal(hqrt_b_op(b, HQX_OP_ELTWISE, "net/ew_mult1", &f, sizeof f, xs, 2, &m, 1),
                         0);
        bool x_first = rnd() % 2;
        xm[0] = x_first ? ins[0] : m, xm[1] = x_first ? m : ins[0];
        assert_int_equal(hqrt_b_op(b, HQX_OP_ELTWISE, "net/ew_add1", &g, sizeof g, xm, 2, &y, 1),
                         0);
        int32_t ys[2] = {y, iter % 4 < 2 ? ins[1] : ins[0]}; /* else s dies at the pair */
        assert_int_equal(hqrt_b_op(b, HQX_OP_ELTWISE, "net/ew_mult2", &f, sizeof f, ys, 2, &z, 1),
                         0);
        assert_int_equal(hqrt_b_io(b, ins, 2, &z, 1), 0);
        size_t len = 0;
        uint8_t *bytes = finish_program(b, &len);
        run_three_ways(bytes, len, iter % 2 ? 1 : 3);
        free(bytes);
    }
}

/* Resizes (nearest with both roundings, bilinear; every coordinate mode; up, down and odd
 * factors; 8 and 16-bit codes) against the reference, whole and cut into pieces of rows. */
static void vector_resize_equals_reference_whole_and_in_row_pieces(void **state)
{
    (void)state;
    static uint16_t in[2 * 24 * 24 * 40], want[2 * 50 * 50 * 40], got[2 * 50 * 50 * 40];
    for (int iter = 0; iter < 400; iter++) {
        hqrt_resize_params_t p = {
            .method = rnd_range(HQRT_RESIZE_NEAREST, HQRT_RESIZE_BILINEAR),
            .coords = rnd_range(HQRT_COORDS_ASYMMETRIC, HQRT_COORDS_PYTORCH_HALF_PIXEL),
            .round_prefer_floor = rnd() % 2,
            .bits = rnd() % 4 ? 8 : 16};
        p.zp = rnd_range(0, p.bits == 16 ? 65535 : 255);
        hqrt_dims_t id = {rnd_range(1, 2), rnd_range(1, 24), rnd_range(1, 24), rnd_range(1, 40)};
        hqrt_dims_t od = {id.n, rnd() % 2 ? id.h * 2 : rnd_range(1, 50),
                          rnd() % 2 ? id.w * 2 : rnd_range(1, 50), id.c};
        const size_t es = p.bits == 16 ? 2 : 1;
        const size_t in_n = (size_t)id.n * id.h * id.w * id.c,
                     out_n = (size_t)od.n * od.h * od.w * od.c;
        for (size_t i = 0; i < in_n; i++)
            in[i] = (uint16_t)rnd();
        if (p.bits == 8)
            for (size_t i = 0; i < in_n; i++)
                ((uint8_t *)in)[i] = (uint8_t)rnd();
        assert_int_equal(hqrt_resize(&p, id, in, od, want), HQRT_KERNEL_OK);
        for (int isa = HQRT_ISA_REFERENCE; isa <= hqrt_i_vector_isa(); isa++) {
            memset(got, 0xAB, sizeof got);
            assert_int_equal(hqrt_i_resize_fast(isa, &p, id, in, od, got, 0, od.h), HQRT_KERNEL_OK);
            assert_memory_equal(got, want, out_n * es);
            if (!hqrt_i_resize_rows_fast(isa, &p, od))
                continue;
            memset(got, 0xAB, sizeof got);
            for (int64_t r0 = 0, r1; r0 < od.h; r0 = r1) {
                r1 = r0 + rnd_range(1, 7);
                r1 = r1 > od.h ? od.h : r1;
                assert_int_equal(hqrt_i_resize_fast(isa, &p, id, in, od, got, r0, r1),
                                 HQRT_KERNEL_OK);
            }
            assert_memory_equal(got, want, out_n * es);
        }
    }
    /* the reference's status for what it refuses */
    hqrt_resize_params_t bad = {.method = 7, .bits = 8};
    hqrt_dims_t d = {1, 2, 2, 3};
    assert_int_equal(hqrt_i_resize_fast(hqrt_i_vector_isa(), &bad, d, in, d, got, 0, 2),
                     hqrt_resize(&bad, d, in, d, got));
}

/* Global average pools of 8-bit codes (summed pixel after pixel) against the reference, and
 * the reference's status for what it refuses. */
static void vector_global_avg_pool_equals_reference(void **state)
{
    (void)state;
    static random_stage_t r;
    static uint16_t in[2 * 30 * 30 * 70], want[2 * 70], got[2 * 70];
    for (int iter = 0; iter < 600; iter++) {
        hqrt_dims_t d = {rnd_range(1, 2), rnd_range(1, 30), rnd_range(1, 30), rnd_range(1, 70)};
        int32_t in_bits = rnd() % 4 ? 8 : 16, out_bits = rnd() % 3 ? 8 : 16;
        int32_t in_zp = rnd_range(0, in_bits == 16 ? 65535 : 255);
        random_stage(&r, 1, out_bits);
        for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
            in[i] = (uint16_t)rnd();
        assert_int_equal(hqrt_global_avg_pool(in_bits, in_zp, &r.stage, d, in, want),
                         HQRT_KERNEL_OK);
        for (int isa = HQRT_ISA_REFERENCE; isa <= hqrt_i_vector_isa(); isa++) {
            memset(got, 0xAB, sizeof got);
            assert_int_equal(hqrt_i_global_avg_pool_fast(isa, in_bits, in_zp, &r.stage, d, in, got),
                             HQRT_KERNEL_OK);
            assert_memory_equal(got, want, (size_t)(d.n * d.c) * (out_bits == 16 ? 2 : 1));
        }
    }
    hqrt_dims_t bad = {1, 0, 4, 4};
    assert_int_equal(hqrt_i_global_avg_pool_fast(hqrt_i_vector_isa(), 8, 0, &r.stage, bad, in, got),
                     HQRT_KERNEL_ERR_ARGUMENT);
}

static void vector_deconv_equals_reference_on_random_shapes(void **state)
{
    (void)state;
    static random_stage_t r;
    static int16_t w[4 * 4 * 48 * 64];
    static uint16_t in[2 * 9 * 9 * 48], want[2 * 40 * 40 * 64], got[2 * 40 * 40 * 64];
    static int64_t bias[64];
    for (int iter = 0; iter < 600; iter++) {
        hqrt_conv_params_t p = {.kernel_h = rnd_range(1, 4),
                                .kernel_w = rnd_range(1, 4),
                                .stride_h = rnd_range(1, 3),
                                .stride_w = rnd_range(1, 3),
                                .dilation_h = rnd() % 4 ? 1 : 2,
                                .dilation_w = rnd() % 4 ? 1 : 2,
                                .groups = rnd() % 6 ? 1 : 2,
                                .in_bits = rnd() % 5 ? 8 : 16,
                                .weight_bits = rnd() % 5 == 0 ? 16
                                               : rnd() % 4    ? 8
                                                              : 4};
        p.output_pad_h = rnd_range(0, p.stride_h - 1),
        p.output_pad_w = rnd_range(0, p.stride_w - 1);
        p.in_zp = rnd_range(0, p.in_bits == 16 ? 65535 : 255);
        hqrt_dims_t id = {rnd_range(1, 2), rnd_range(1, 9), rnd_range(1, 9),
                          p.groups * rnd_range(1, 24)};
        hqrt_dims_t od = {id.n, 0, 0, p.groups * rnd_range(1, 32)};
        int64_t full_h = (int64_t)(id.h - 1) * p.stride_h +
                         (int64_t)p.dilation_h * (p.kernel_h - 1) + 1 + p.output_pad_h;
        int64_t full_w = (int64_t)(id.w - 1) * p.stride_w +
                         (int64_t)p.dilation_w * (p.kernel_w - 1) + 1 + p.output_pad_w;
        p.pad_top = rnd_range(0, (int32_t)(full_h - 1) / 2),
        p.pad_bottom = rnd_range(0, (int32_t)(full_h - 1) / 2);
        p.pad_left = rnd_range(0, (int32_t)(full_w - 1) / 2),
        p.pad_right = rnd_range(0, (int32_t)(full_w - 1) / 2);
        od.h = (int32_t)(full_h - p.pad_top - p.pad_bottom),
        od.w = (int32_t)(full_w - p.pad_left - p.pad_right);
        int32_t out_bits = rnd() % 3 ? 8 : 16;
        random_stage(&r, od.c, out_bits);
        p.out = r.stage;
        size_t wcount =
            (size_t)p.kernel_h * (size_t)p.kernel_w * (size_t)(id.c / p.groups) * (size_t)od.c;
        int32_t wmax = p.weight_bits == 16 ? 32767 : p.weight_bits == 8 ? 127 : 7;
        for (size_t i = 0; i < wcount; i++) {
            int32_t v = rnd() % 8 ? rnd_range(-wmax - 1, wmax) : (rnd() % 2 ? -wmax - 1 : wmax);
            if (p.weight_bits == 16)
                w[i] = (int16_t)v;
            else
                ((int8_t *)w)[i] = (int8_t)v;
        }
        for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
            in[i] = (uint16_t)rnd();
            ((uint8_t *)in)[i] = rnd() % 8 ? (uint8_t)rnd() : (rnd() % 2 ? 0 : 255);
        }
        for (int32_t o = 0; o < od.c; o++) {
            int32_t kind = rnd_range(0, 3);
            bias[o] = kind == 0   ? (int64_t)rnd_range(-100000, 100000)
                      : kind == 1 ? (int64_t)random_accumulator() * (rnd() % 2 ? 1 : 4)
                      : kind == 2 ? 0
                                  : (rnd() % 2 ? 1 : -1) * ((int64_t)1 << rnd_range(29, 62));
        }
        const int64_t *b = rnd() % 4 ? bias : NULL;
        size_t bytes =
            (size_t)od.n * (size_t)od.h * (size_t)od.w * (size_t)od.c * (out_bits == 16 ? 2 : 1);
        assert_true(bytes <= sizeof want);
        assert_int_equal(hqrt_deconv2d(&p, id, in, w, b, od, want, NULL), HQRT_KERNEL_OK);
        for (int isa = HQRT_ISA_REFERENCE; isa <= hqrt_i_vector_isa(); isa++) {
            memset(got, 0xAB, sizeof got);
            assert_int_equal(hqrt_i_deconv_fast(isa, &p, id, in, w, b, od, got, NULL),
                             HQRT_KERNEL_OK);
            assert_memory_equal(got, want, bytes);
        }
    }
    /* the same status as the reference for arguments it refuses (an output extent off by one) */
    hqrt_conv_params_t p = {.kernel_h = 2,
                            .kernel_w = 2,
                            .stride_h = 2,
                            .stride_w = 2,
                            .dilation_h = 1,
                            .dilation_w = 1,
                            .groups = 1,
                            .in_bits = 8,
                            .weight_bits = 8,
                            .out = r.stage};
    p.out.count = 1;
    hqrt_dims_t id = {1, 3, 3, 4}, od = {1, 7, 6, 4};
    assert_int_equal(hqrt_i_deconv_fast(hqrt_i_vector_isa(), &p, id, in, w, NULL, od, got, NULL),
                     HQRT_KERNEL_ERR_ARGUMENT);
}

/* Deconvolutions whose kernel equals their stride (PP-OCR's 2x2/s2 upsampling) take a matrix
 * product of their own; with the pad_top/pad_bottom of a thread's piece of rows too. Odd channel
 * counts, one output channel, per-tensor and per-channel stages, biases the int32 sums may and
 * may not be seeded with; with VNNI the vpdpbusd product, whose int32 output stage runs for
 * non-negative multipliers (every third case, a lut looked up by vpermi2b where the CPU has
 * AVX512-VBMI and by gathers under HQRT_NO_VBMI), and PP-OCR det's 24 input channels. */
static void vector_deconv_with_kernel_equal_to_stride_equals_reference(void **state)
{
    (void)state;
    static random_stage_t r;
    static int8_t w[3 * 3 * 70 * 40];
    static uint16_t in[2 * 9 * 9 * 70], want[2 * 27 * 27 * 40], got[2 * 27 * 27 * 40];
    static int64_t bias[64];
    for (int iter = 0; iter < 400; iter++) {
        const int32_t k = rnd_range(1, 3), kw = rnd() % 4 ? k : rnd_range(1, 3);
        hqrt_conv_params_t p = {.kernel_h = k,
                                .kernel_w = kw,
                                .stride_h = k,
                                .stride_w = kw,
                                .dilation_h = 1,
                                .dilation_w = 1,
                                .groups = 1,
                                .in_bits = 8,
                                .weight_bits = rnd() % 3 ? 8 : 4};
        p.in_zp = rnd_range(0, 255);
        const int32_t cin = iter % 5 == 0                    ? rnd_range(33, 70)
                            : iter % 7 == 0 || iter % 9 == 1 ? 24
                                                             : rnd_range(1, 32);
        hqrt_dims_t id = {rnd_range(1, 2), rnd_range(1, 9), rnd_range(1, 9), cin};
        hqrt_dims_t od = {id.n, 0, id.w * kw,
                          iter % 3 == 0 || iter % 9 == 1 ? 1 : rnd_range(1, 40)};
        /* a piece of rows [first, last) of the full output, as a thread runs it */
        const int32_t full_h = id.h * k, first = rnd() % 2 ? 0 : rnd_range(0, full_h - 1);
        const int32_t last = rnd() % 2 ? full_h : rnd_range(first + 1, full_h);
        p.pad_top = first, p.pad_bottom = full_h - last;
        od.h = last - first;
        int32_t out_bits = rnd() % 4 ? 8 : 16;
        random_stage(&r, od.c, out_bits);
        if (iter % 3 == 1) { /* multipliers >= 0: the VNNI kernel's int32 stage */
            for (int32_t o = 0; o < od.c; o++)
                r.mult[o] = r.mult[o] < 0 ? -r.mult[o] : r.mult[o];
            r.stage.multiplier_neg = r.stage.shift_neg = NULL;
            r.stage.path = HQRT_PATH_GEMMLOWP;
        }
        p.out = r.stage;
        size_t wcount = (size_t)k * (size_t)kw * (size_t)cin * (size_t)od.c;
        int32_t wmax = p.weight_bits == 8 ? 127 : 7;
        for (size_t i = 0; i < wcount; i++)
            w[i] =
                (int8_t)(rnd() % 8 ? rnd_range(-wmax - 1, wmax) : (rnd() % 2 ? -wmax - 1 : wmax));
        for (size_t i = 0; i < sizeof in; i++)
            ((uint8_t *)in)[i] = rnd() % 8 ? (uint8_t)rnd() : (rnd() % 2 ? 0 : 255);
        for (int32_t o = 0; o < od.c; o++) {
            int32_t kind = rnd_range(0, 3);
            bias[o] = kind == 0   ? (int64_t)rnd_range(-100000, 100000)
                      : kind == 1 ? (int64_t)random_accumulator() * (rnd() % 2 ? 1 : 4)
                      : kind == 2 ? 0
                                  : (rnd() % 2 ? 1 : -1) * ((int64_t)1 << rnd_range(29, 62));
        }
        const int64_t *b = rnd() % 4 ? bias : NULL;
        size_t bytes =
            (size_t)od.n * (size_t)od.h * (size_t)od.w * (size_t)od.c * (out_bits == 16 ? 2 : 1);
        assert_true(bytes <= sizeof want);
        assert_int_equal(hqrt_deconv2d(&p, id, in, w, b, od, want, NULL), HQRT_KERNEL_OK);
        for (int isa = HQRT_ISA_AVX2; isa <= hqrt_i_vector_isa(); isa++) {
            memset(got, 0xAB, sizeof got);
            assert_int_equal(hqrt_i_deconv_fast(isa, &p, id, in, w, b, od, got, NULL),
                             HQRT_KERNEL_OK);
            assert_memory_equal(got, want, bytes);
        }
        if (p.out.lut && hqrt_i_vector_isa() == HQRT_ISA_AVX512) { /* luts by gathers too */
            setenv("HQRT_NO_VBMI", "1", 1);
            memset(got, 0xAB, sizeof got);
            assert_int_equal(hqrt_i_deconv_fast(HQRT_ISA_AVX512, &p, id, in, w, b, od, got, NULL),
                             HQRT_KERNEL_OK);
            unsetenv("HQRT_NO_VBMI");
            assert_memory_equal(got, want, bytes);
        }
    }
}

static void vector_activation_equals_reference_for_every_stage_form(void **state)
{
    (void)state;
    static random_stage_t r;
    static uint16_t in[2048], want[2048], got[2048]; /* 32 rows of 64 channels at most */
    for (int iter = 0; iter < 3000; iter++) {
        int32_t channels = rnd_range(1, 64), in_bits = rnd() % 3 ? 8 : 16;
        int64_t rows = rnd_range(1, 32);
        int32_t in_max = in_bits == 16 ? 65535 : 255, kind = rnd_range(0, 3);
        int32_t in_zp = kind == 0 ? 0 : kind == 1 ? in_max : rnd_range(0, in_max);
        int32_t out_bits = rnd() % 3 ? 8 : 16;
        random_stage(&r, channels, out_bits);
        for (size_t i = 0; i < 2048; i++) {
            int32_t code = rnd() % 8 == 0 ? (rnd() % 2 ? in_max : 0) : rnd_range(0, in_max);
            if (in_bits == 16)
                in[i] = (uint16_t)code;
            else
                ((uint8_t *)in)[i] = (uint8_t)code;
        }
        assert_int_equal(hqrt_activation(in_bits, in_zp, &r.stage, rows, channels, in, want),
                         HQRT_KERNEL_OK);
        for (int isa = HQRT_ISA_REFERENCE; isa <= hqrt_i_vector_isa(); isa++) {
            memset(got, 0xAB, sizeof got);
            assert_int_equal(
                hqrt_i_activation_fast(isa, in_bits, in_zp, &r.stage, rows, channels, in, got),
                HQRT_KERNEL_OK);
            assert_memory_equal(got, want, (size_t)(rows * channels) * (out_bits == 16 ? 2 : 1));
        }
    }
    /* the same status as the reference for arguments it refuses */
    assert_int_equal(hqrt_i_activation_fast(hqrt_i_vector_isa(), 8, 256, &r.stage, 1, 1, in, got),
                     HQRT_KERNEL_ERR_ARGUMENT);
    assert_int_equal(hqrt_i_activation_fast(hqrt_i_vector_isa(), 8, 0, &r.stage, 0, 1, in, got),
                     HQRT_KERNEL_ERR_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv_output_matches_a_hand_computed_value),
        cmocka_unit_test(profiling_counts_one_run_per_op_and_sample_and_keeps_the_bytes),
        cmocka_unit_test(fast_conv_equals_reference_on_random_shapes),
        cmocka_unit_test(fast_conv_reading_kernel_rows_in_place_equals_reference),
        cmocka_unit_test(fast_gemm_chunks_and_tiles_equal_reference),
        cmocka_unit_test(fast_conv_amx_shapes_equal_reference),
        cmocka_unit_test(vector_output_stage_equals_reference_on_every_accumulator_of_a_window),
        cmocka_unit_test(fast_depthwise_equals_reference_on_random_shapes),
        cmocka_unit_test(fast_depthwise_of_mobile_shapes_equals_reference),
        cmocka_unit_test(fast_conv_with_a_lut_stage_equals_reference),
        cmocka_unit_test(fast_pointwise_depthwise_equals_reference),
        cmocka_unit_test(fast_depthwise_kernel_equals_reference_on_row_pieces),
        cmocka_unit_test(vector_stage_row_equals_reference_for_every_stage_form),
        cmocka_unit_test(vector_stage_of_pixels_equals_reference_for_every_channel_count),
        cmocka_unit_test(vector_stage_merged_requantization_equals_reference),
        cmocka_unit_test(vector_elementwise_equals_reference_for_every_broadcast_form),
        cmocka_unit_test(vector_activation_equals_reference_for_every_stage_form),
        cmocka_unit_test(vector_elementwise_with_a_constant_operand_equals_reference),
        cmocka_unit_test(vector_elementwise_per_channel_table_equals_reference),
        cmocka_unit_test(vector_elementwise_pair_equals_two_reference_ops),
        cmocka_unit_test(vector_elementwise_by_term_tables_equals_reference),
        cmocka_unit_test(paired_and_tabled_elementwise_ops_run_identically),
        cmocka_unit_test(vector_resize_equals_reference_whole_and_in_row_pieces),
        cmocka_unit_test(vector_global_avg_pool_equals_reference),
        cmocka_unit_test(vector_deconv_equals_reference_on_random_shapes),
        cmocka_unit_test(vector_deconv_with_kernel_equal_to_stride_equals_reference),
        cmocka_unit_test(fast_dense_equals_reference_including_deep_inputs),
        cmocka_unit_test(sixteen_bit_layers_run_the_reference_path_identically_at_two_threads),
        cmocka_unit_test(every_op_validates_and_runs_identically_at_one_and_two_threads),
        cmocka_unit_test(runs_with_changing_threads_and_batches_give_the_bytes_of_one_thread),
        cmocka_unit_test(grouped_batches_give_the_bytes_of_samples_run_one_by_one),
        cmocka_unit_test(fast_conv_over_several_samples_equals_reference_per_sample),
        cmocka_unit_test(a_softmax_exp_table_above_two_to_the_thirty_is_refused),
        cmocka_unit_test(a_valid_program_opens),
        cmocka_unit_test(every_flipped_byte_is_refused),
        cmocka_unit_test(a_truncated_program_is_refused),
        cmocka_unit_test(a_wrong_version_is_refused),
        cmocka_unit_test(a_program_carries_the_oldest_version_that_has_all_its_ops),
        cmocka_unit_test(a_transpose_view_that_does_not_fit_its_tensors_is_refused),
        cmocka_unit_test(layer_norm_runs_the_integer_formula_in_a_version_3_program),
        cmocka_unit_test(dilated_maxpool_takes_every_dilation_th_code_in_a_version_4_program),
        cmocka_unit_test(out_of_range_offsets_are_refused_even_with_a_valid_checksum),
        cmocka_unit_test(a_missing_file_is_an_io_error),
        cmocka_unit_test(quantize_helpers_round_half_away_from_zero_and_clamp),
        cmocka_unit_test(quantize_matches_the_scalar_formula),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
