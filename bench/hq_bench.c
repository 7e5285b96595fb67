/* hq_bench.c — times hq's float emulation of an archive, nothing else: the archive is opened,
 * the emulator built and the inputs filled (deterministic pseudo-random values, or a .npy with
 * -d) before the clock starts; then `warmup` runs, then `runs` timed runs of one batch, and the
 * median, min and max wall-clock milliseconds are printed with the network's FLOPs
 * (2 * multiply-adds of conv, dw, deconv and dense layers) and the achieved GFLOP/s.
 *
 * Built and run by bench/run_emulate.sh (public API only: cc -Iinclude hq_bench.c -lhq).
 * usage: hq_bench model.har [-j THREADS] [-b BATCH] [-n RUNS] [-t MIN_MS] [-w WARMUP]
 *        [-d input.npy]
 *        [--per-type] [--per-layer] [--info] [--cpu-time]
 * --cpu-time times with the process's CPU time instead of the wall clock: for comparing two
 * builds on a machine loaded by other work (meaningful with -j 1 only; never in results).
 * -t: keep running past RUNS until the timed runs add up to MIN_MS (at most 100 * RUNS runs), so
 * that the median of a model of a millisecond is not a handful of samples.
 * --info prints the kernels the emulator runs (hq_emulator_kernels) and exits.
 * --per-layer adds `runs` untimed runs whose tap callback times each layer (the time since the
 * previous tap) and prints each layer's least milliseconds, shape and GFLOP/s.
 * output: one line "ms_median=... ms_min=... ms_max=... gflop=... gflops=... threads=...
 *         batch=... peak_bytes=... ms_all=t1,t2,..." (ms_all: every timed run, in run order, for
 *         run_emulate.sh, which pools the runs of several interleaved invocations), and with
 *         --per-type, the seconds per layer type. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hq/hq.h"

static clockid_t timing_clock = CLOCK_MONOTONIC;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(timing_clock, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* A short sleep before each timed run (not timed). node returns to its event loop between two
 * session.run calls, so ort_bench's inference thread sleeps between runs; a process that never
 * sleeps is scheduled after those that do when the machine is shared, which made hq's
 * wall-clock medians up to twice its CPU time while onnxruntime's stayed near its own. Sleeping
 * here too makes the load hit both alike; on an idle machine it changes nothing. */
static void pause_between_runs(void)
{
    struct timespec pause = {0, 200000}; /* 0.2 ms */
    nanosleep(&pause, NULL);
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Flops (2 per multiply-add) per sample of one layer, for the layers that dominate a CNN. */
static double layer_flops(const hq_layer_t *l)
{
    double flops = 0.0;
    {
        const hq_layer_params_t *p = &l->params;
        const hq_shape_t *o = &l->output_shape;
        if (l->type == HQ_LAYER_CONV || l->type == HQ_LAYER_DW) {
            if (o->ndim == 4)
                flops += 2.0 * (double)o->dims[1] * (double)o->dims[2] * p->kernel_h * p->kernel_w *
                         (double)p->kernel_in * (double)p->kernel_out;
        } else if (l->type == HQ_LAYER_DECONV) {
            if (l->input_shape_count > 0 && l->input_shapes[0].ndim == 4)
                flops += 2.0 * (double)l->input_shapes[0].dims[1] *
                         (double)l->input_shapes[0].dims[2] * p->kernel_h * p->kernel_w *
                         (double)p->kernel_in * (double)p->kernel_out;
        } else if (l->type == HQ_LAYER_DENSE) {
            flops += 2.0 * (double)p->kernel_in * (double)p->kernel_out;
        }
    }
    return flops;
}

static double graph_flops(const hq_graph_t *graph)
{
    double flops = 0.0;
    for (int i = 0; i < hq_graph_layer_count(graph); i++)
        flops += layer_flops(hq_graph_layer(graph, i));
    return flops;
}

/* --per-layer: the least time each layer took over several tapped runs (the least is the
 * least disturbed by other processes). */
typedef struct layer_clock {
    const hq_graph_t *graph;
    double last;
    double best[4096];
    int64_t batch;
} layer_clock_t;

static hq_status_t time_layer(void *user, int layer, int port, const hq_shape_t *shape,
                              const float *data, hq_error_t *err)
{
    (void)data;
    (void)err;
    (void)shape;
    layer_clock_t *clock = user;
    double now = now_ms();
    if (port == 0 && layer < 4096 &&
        (clock->best[layer] == 0 || now - clock->last < clock->best[layer]))
        clock->best[layer] = now - clock->last;
    clock->last = now_ms();
    return HQ_OK;
}

static void print_layers(const layer_clock_t *clock)
{
    for (int i = 0; i < hq_graph_layer_count(clock->graph) && i < 4096; i++) {
        const hq_layer_t *l = hq_graph_layer(clock->graph, i);
        const hq_shape_t *shape = &l->output_shape;
        char dims[96];
        int used = 0;
        for (int d = 1; d < shape->ndim && used < (int)sizeof dims - 24; d++)
            used += snprintf(dims + used, sizeof dims - (size_t)used, d > 1 ? "x%lld" : "%lld",
                             (long long)shape->dims[d]);
        double gflop = layer_flops(l) * (double)clock->batch * 1e-9, ms = clock->best[i];
        printf("  %-40s %-16s %-16s k%dx%d s%d g%-4d %8.3f ms %7.2f GFLOP/s\n", l->name,
               hq_layer_type_name(l->type), dims, l->params.kernel_h, l->params.kernel_w,
               l->params.stride_h, l->params.groups, ms, ms > 0 ? gflop / ms * 1e3 : 0.0);
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: hq_bench model.har [-j THREADS] [-b BATCH] [-n RUNS] [-t MIN_MS] "
                    "[-w WARMUP] [-d input.npy] [--per-type] [--per-layer] [--info] "
                    "[--cpu-time]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *data = NULL;
    int threads = 0, runs = 10, warmup = 2, per_type = 0, per_layer = 0, info = 0;
    double min_ms = 0.0;
    long batch = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--per-type"))
            per_type = 1;
        else if (!strcmp(a, "--per-layer"))
            per_layer = 1;
        else if (!strcmp(a, "--info"))
            info = 1;
        else if (!strcmp(a, "--cpu-time"))
            timing_clock = CLOCK_PROCESS_CPUTIME_ID;
        else if (!strcmp(a, "-j") && next)
            threads = atoi(argv[++i]);
        else if (!strcmp(a, "-b") && next)
            batch = atol(argv[++i]);
        else if (!strcmp(a, "-n") && next)
            runs = atoi(argv[++i]);
        else if (!strcmp(a, "-t") && next)
            min_ms = atof(argv[++i]);
        else if (!strcmp(a, "-w") && next)
            warmup = atoi(argv[++i]);
        else if (!strcmp(a, "-d") && next)
            data = argv[++i];
        else if (a[0] != '-' && !model)
            model = a;
        else
            return usage();
    }
    if (!model || batch < 1 || runs < 1 || warmup < 0)
        return usage();

    hq_error_t err = {0};
    hq_archive_t *archive = NULL;
    hq_graph_t *graph = NULL;
    hq_emulator_t *emu = NULL;
    if (hq_archive_open(model, &archive, &err) || hq_archive_graph(archive, &graph, &err) ||
        hq_emulator_create_from_archive(archive, HQ_TARGET_NATIVE, &emu, &err) ||
        hq_emulator_set_threads(emu, threads, &err)) {
        fprintf(stderr, "hq_bench: %s\n", err.message);
        return 1;
    }
    if (info) {
        printf("%s\n", hq_emulator_kernels(emu));
        hq_emulator_destroy(emu);
        hq_archive_destroy(archive);
        return 0;
    }
    int in_count = 0, out_count = 0;
    hq_graph_inputs(graph, &in_count);
    hq_graph_outputs(graph, &out_count);
    float **inputs = calloc((size_t)in_count + 1, sizeof *inputs);
    float **outputs = calloc((size_t)out_count + 1, sizeof *outputs);
    for (int i = 0; i < in_count; i++) {
        int64_t n = hq_emulator_input_size(emu, i) * batch;
        inputs[i] = malloc((size_t)n * sizeof(float));
        uint32_t state = 12345u + (uint32_t)i;
        for (int64_t k = 0; k < n; k++) {
            state = state * 1664525u + 1013904223u;
            inputs[i][k] = (float)((state >> 8) & 0xffff) / 65536.0f * 2.0f - 1.0f;
        }
    }
    if (data) {
        hq_tensor_t *t = NULL;
        if (hq_npy_read_file(data, &t, &err) != HQ_OK) {
            fprintf(stderr, "hq_bench: %s\n", err.message);
            return 1;
        }
        hq_tensor_t *f = NULL;
        if (hq_tensor_convert(t, HQ_DTYPE_FLOAT32, &f, &err) != HQ_OK) {
            fprintf(stderr, "hq_bench: %s\n", err.message);
            return 1;
        }
        int64_t have = hq_tensor_count(f), want = hq_emulator_input_size(emu, 0) * batch;
        for (int64_t k = 0; k < want; k++) /* repeat the file's samples to fill the batch */
            inputs[0][k] = ((const float *)f->data)[k % have];
        hq_tensor_destroy(f);
        hq_tensor_destroy(t);
    }
    for (int o = 0; o < out_count; o++)
        outputs[o] = malloc((size_t)(hq_emulator_output_size(emu, o) * batch) * sizeof(float));

    for (int r = 0; r < warmup; r++)
        if (hq_emulator_run(emu, batch, (const float *const *)inputs, outputs, NULL, NULL, &err)) {
            fprintf(stderr, "hq_bench: %s\n", err.message);
            return 1;
        }
    hq_emulator_reset_stats(emu);
    const int most = min_ms > 0 ? 100 * runs : runs;
    double *ms = calloc((size_t)most, sizeof *ms), total = 0.0;
    int done = 0;
    while (done < most && (done < runs || total < min_ms)) {
        pause_between_runs();
        double start = now_ms();
        hq_emulator_run(emu, batch, (const float *const *)inputs, outputs, NULL, NULL, &err);
        ms[done] = now_ms() - start;
        total += ms[done++];
    }
    runs = done;
    char *all = calloc((size_t)runs, 16);
    for (int r = 0, used = 0; all && r < runs; r++)
        used += snprintf(all + used, (size_t)(runs * 16 - used), r ? ",%.3f" : "%.3f", ms[r]);
    qsort(ms, (size_t)runs, sizeof *ms, compare_double);
    double median = runs % 2 ? ms[runs / 2] : 0.5 * (ms[runs / 2 - 1] + ms[runs / 2]);
    double gflop = graph_flops(graph) * (double)batch * 1e-9;
    printf("ms_median=%.3f ms_min=%.3f ms_max=%.3f gflop=%.4f gflops=%.2f threads=%d batch=%ld "
           "peak_bytes=%lld ms_all=%s\n",
           median, ms[0], ms[runs - 1], gflop, gflop / (median * 1e-3), hq_emulator_threads(emu),
           batch, (long long)hq_emulator_peak_bytes(emu, batch), all ? all : "");
    for (int t = 0; per_type && t < HQ_LAYER_TYPE_COUNT; t++) {
        int64_t calls = 0;
        double seconds = hq_emulator_type_seconds(emu, (hq_layer_type_t)t, &calls);
        if (calls)
            printf("  %-18s %9.3f ms/run  %lld layers/run\n",
                   hq_layer_type_name((hq_layer_type_t)t), seconds * 1e3 / runs,
                   (long long)(calls / runs));
    }
    if (per_layer) {
        static layer_clock_t clock;
        clock.graph = graph;
        clock.batch = batch;
        for (int r = 0; r < runs; r++) {
            clock.last = now_ms();
            hq_emulator_run(emu, batch, (const float *const *)inputs, outputs, time_layer, &clock,
                            &err);
        }
        print_layers(&clock);
    }
    for (int i = 0; i < in_count; i++)
        free(inputs[i]);
    for (int o = 0; o < out_count; o++)
        free(outputs[o]);
    free(inputs);
    free(outputs);
    free(ms);
    free(all);
    hq_emulator_destroy(emu);
    hq_archive_destroy(archive);
    return 0;
}
