/* fast_layers.c — times the emulator's fast convolution kernel (hqi_fast_conv_run) alone on the
 * depthwise and 1x1 layer shapes of mobilenet_v2, mobilenet_v3_large and efficientnet_b0, one
 * thread, in process CPU time: for comparing two builds of core/emulate/ layer by layer on a
 * loaded machine, where whole-network wall-clock times move by more than one kernel's change.
 *
 * Internal API, so it links the static library of a built tree:
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude -Icore bench/fast_layers.c \
 *      build/libhq_static.a -lm -lpthread -o /tmp/fast_layers
 * usage: fast_layers [BATCH [NAME_PART]]   (NAME_PART: only the layers whose name contains it)
 * output: one line per layer: name, least ms of the runs of about 300 ms (at least 20 runs),
 * GFLOP/s (2 per multiply-add), and the sum of the outputs (the same in two builds whose
 * results are the same bits, up to the order of that sum). Inputs and weights are fixed
 * pseudo-random values; the layer's data stays in cache from one run to the next. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emulate/kernels_fast.h"

/* One layer: NHWC input h x w x cin, square kernel k, stride s, `groups` (cin: depthwise). */
typedef struct layer {
    const char *name;
    int h, w, cin, cout, k, s, groups;
    hq_activation_t act;
} layer_t;

static const layer_t layers[] = {
    {"dw 112x112x32 3x3 s1", 112, 112, 32, 32, 3, 1, 32, HQ_ACT_RELU6},
    {"dw 112x112x96 3x3 s2", 112, 112, 96, 96, 3, 2, 96, HQ_ACT_RELU6},
    {"dw 56x56x144 3x3 s1", 56, 56, 144, 144, 3, 1, 144, HQ_ACT_RELU6},
    {"dw 56x56x144 5x5 s2", 56, 56, 144, 144, 5, 2, 144, HQ_ACT_SILU},
    {"dw 28x28x192 3x3 s1", 28, 28, 192, 192, 3, 1, 192, HQ_ACT_RELU6},
    {"dw 28x28x240 5x5 s1", 28, 28, 240, 240, 5, 1, 240, HQ_ACT_SILU},
    {"dw 14x14x384 3x3 s1", 14, 14, 384, 384, 3, 1, 384, HQ_ACT_RELU6},
    {"dw 14x14x672 5x5 s1", 14, 14, 672, 672, 5, 1, 672, HQ_ACT_SILU},
    {"dw 7x7x960 3x3 s1", 7, 7, 960, 960, 3, 1, 960, HQ_ACT_RELU6},
    {"dw 7x7x1152 5x5 s1", 7, 7, 1152, 1152, 5, 1, 1152, HQ_ACT_SILU},
    {"1x1 112x112 32->16", 112, 112, 32, 16, 1, 1, 1, HQ_ACT_LINEAR},
    {"1x1 112x112 16->96", 112, 112, 16, 96, 1, 1, 1, HQ_ACT_RELU6},
    {"1x1 56x56 24->144", 56, 56, 24, 144, 1, 1, 1, HQ_ACT_RELU6},
    {"1x1 56x56 144->24", 56, 56, 144, 24, 1, 1, 1, HQ_ACT_LINEAR},
    {"1x1 28x28 32->192", 28, 28, 32, 192, 1, 1, 1, HQ_ACT_RELU6},
    {"1x1 28x28 40->240", 28, 28, 40, 240, 1, 1, 1, HQ_ACT_SILU},
    {"1x1 28x28 240->40", 28, 28, 240, 40, 1, 1, 1, HQ_ACT_LINEAR},
    {"1x1 14x14 480->80", 14, 14, 480, 80, 1, 1, 1, HQ_ACT_LINEAR},
    {"1x1 14x14 96->576", 14, 14, 96, 576, 1, 1, 1, HQ_ACT_RELU6},
    {"1x1 14x14 576->96", 14, 14, 576, 96, 1, 1, 1, HQ_ACT_LINEAR},
    {"1x1 7x7 960->160", 7, 7, 960, 160, 1, 1, 1, HQ_ACT_LINEAR},
    {"1x1 7x7 160->960", 7, 7, 160, 960, 1, 1, 1, HQ_ACT_RELU6},
};

static double cpu_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static float *filled(int64_t count, int64_t mul, int64_t mod, double scale, double shift)
{
    float *x = malloc((size_t)count * sizeof *x);
    for (int64_t i = 0; x && i < count; i++)
        x[i] = (float)((double)(i * mul % mod) * scale + shift);
    return x;
}

/* Times one layer; returns 0, or 1 after printing why it could not run. */
static int time_layer(const layer_t *l, int batch)
{
    hq_error_t err;
    memset(&err, 0, sizeof err);
    /* stride 1: "same" padding; stride 2: (k - 1) / 2 on every side, as the torch exports */
    const int pad = l->s == 1 ? l->k / 2 : (l->k - 1) / 2;
    hqi_fast_conv_desc_t desc = {.kind = HQI_FAST_CONV,
                                 .window = {l->k, l->k, l->s, l->s, 1, 1, pad, pad, pad, pad},
                                 .groups = l->groups,
                                 .cin = l->cin,
                                 .cout = l->cout};
    const int64_t weights = (int64_t)l->k * l->k * (l->cin / l->groups) * l->cout;
    float *w = filled(weights, 7919, 1000, 1e-3, -0.5), *bias = filled(l->cout, 1, 1000, 1e-2, 0);
    hqi_fast_conv_t *conv = NULL;
    if (!w || !bias || hqi_fast_conv_prepare(&desc, w, bias, &conv, &err)) {
        printf("%s: prepare failed: %s\n", l->name, err.message);
        return 1;
    }
    const int oh = (l->h + 2 * pad - l->k) / l->s + 1, ow = (l->w + 2 * pad - l->k) / l->s + 1;
    hqi_ref_dims_t in = {batch, l->h, l->w, l->cin}, out = {batch, oh, ow, l->cout};
    const int64_t in_count = (int64_t)batch * l->h * l->w * l->cin;
    const int64_t out_count = (int64_t)batch * oh * ow * l->cout;
    float *x = filled(in_count, 104729, 2000, 1e-3, -1.0);
    float *y = malloc((size_t)out_count * sizeof *y);
    const int64_t scratch_count = hqi_fast_conv_scratch(conv);
    float *scratch = scratch_count ? malloc((size_t)scratch_count * sizeof *scratch) : NULL;
    hqi_ref_act_t act = {.type = l->act};
    double best = 1e30;
    int status = x && y ? 0 : 1;
    const double begin = cpu_ms();
    for (int runs = 0; !status && (runs < 20 || cpu_ms() - begin < 300); runs++) {
        const double t0 = cpu_ms();
        if (hqi_fast_conv_run(conv, &act, in, x, NULL, out, y, scratch, NULL, &err)) {
            printf("%s: run failed: %s\n", l->name, err.message);
            status = 1;
            break;
        }
        const double t = cpu_ms() - t0;
        best = t < best ? t : best;
    }
    if (!x || !y)
        printf("%s: out of memory\n", l->name);
    else if (!status) {
        double sum = 0;
        for (int64_t i = 0; i < out_count; i++)
            sum += y[i];
        const double flops = 2.0 * (double)out_count * l->k * l->k * (l->cin / l->groups);
        printf("%-24s %8.4f ms %7.1f GFLOP/s  sum=%.6g\n", l->name, best, flops / best / 1e6, sum);
    }
    free(w);
    free(bias);
    free(x);
    free(y);
    free(scratch);
    hqi_fast_conv_destroy(conv);
    return status;
}

int main(int argc, char **argv)
{
    const int batch = argc > 1 ? atoi(argv[1]) : 1;
    const char *only = argc > 2 ? argv[2] : NULL;
    if (batch < 1) {
        fprintf(stderr, "usage: fast_layers [BATCH [NAME_PART]]\n");
        return 2;
    }
    int status = 0;
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++)
        if (!only || strstr(layers[i].name, only))
            status |= time_layer(&layers[i], batch);
    return status;
}
