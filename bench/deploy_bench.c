/* deploy_bench.c — times libhqrt's hqrt_run on a compiled program (.hqx), nothing else: the
 * program is opened (validated, fast-kernel weights packed) and the input codes filled with
 * deterministic pseudo-random values before the clock starts; then `warmup` untimed runs, then
 * `runs` timed runs of one batch. Prints one line:
 *   ms_median=... ms_min=... ms_max=... threads=... batch=... ms_all=t1,t2,...
 * (ms_all: every timed run in order, so that bench/run_deploy.sh can pool interleaved rounds).
 * Links only libhqrt (public API include/hq/hqrt.h). Built and run by bench/run_deploy.sh.
 * usage: deploy_bench model.hqx [-j THREADS] [-b BATCH] [-n RUNS] [-w WARMUP] [-c]
 * -c times process CPU time instead of wall-clock time (a development aid on a loaded machine:
 *    with one thread it approximates the time on a quiet one; the bench reports wall clock). */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hq/hqrt.h"

static int use_cpu_time; /* -c: process CPU time instead of wall-clock time */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(use_cpu_time ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int parse_int(const char *s, int lo, int hi, const char *what)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) {
        fprintf(stderr, "deploy_bench: %s must be an integer in %d..%d, got '%s'\n", what, lo, hi,
                s);
        exit(2);
    }
    return (int)v;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int threads = 1, batch = 1, runs = 10, warmup = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-j") && i + 1 < argc)
            threads = parse_int(argv[++i], 1, 64, "-j");
        else if (!strcmp(argv[i], "-b") && i + 1 < argc)
            batch = parse_int(argv[++i], 1, 4096, "-b");
        else if (!strcmp(argv[i], "-n") && i + 1 < argc)
            runs = parse_int(argv[++i], 1, 100000, "-n");
        else if (!strcmp(argv[i], "-w") && i + 1 < argc)
            warmup = parse_int(argv[++i], 0, 100000, "-w");
        else if (!strcmp(argv[i], "-c"))
            use_cpu_time = 1;
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else {
            fprintf(stderr, "usage: deploy_bench model.hqx [-j THREADS] [-b BATCH] [-n RUNS] "
                            "[-w WARMUP] [-c]\n");
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: deploy_bench model.hqx [-j THREADS] [-b BATCH] [-n RUNS] "
                        "[-w WARMUP] [-c]\n");
        return 2;
    }
    hqrt_error_t err;
    hqrt_model_t *model = NULL;
    if (hqrt_open_file(path, &model, &err) != HQRT_OK) {
        fprintf(stderr, "deploy_bench: %s\n", err.message);
        return 2;
    }
    hqrt_io_t io;
    hqrt_describe(model, HQRT_INPUT, 0, &io, &err);
    int n_in = io.count;
    hqrt_describe(model, HQRT_OUTPUT, 0, &io, &err);
    int n_out = io.count;
    void **ins = calloc((size_t)n_in, sizeof *ins), **outs = calloc((size_t)n_out, sizeof *outs);
    uint32_t seed = 12345u;
    for (int i = 0; i < n_in; i++) {
        hqrt_describe(model, HQRT_INPUT, i, &io, &err);
        uint8_t *p = malloc(io.bytes * (size_t)batch);
        for (size_t k = 0; p && k < io.bytes * (size_t)batch; k++) {
            seed = seed * 1664525u + 1013904223u;
            p[k] = (uint8_t)(seed >> 24);
        }
        ins[i] = p;
    }
    for (int i = 0; i < n_out; i++) {
        hqrt_describe(model, HQRT_OUTPUT, i, &io, &err);
        outs[i] = malloc(io.bytes * (size_t)batch);
    }
    hqrt_run_options_t opt = {.threads = threads};
    for (int i = 0; i < warmup; i++)
        if (hqrt_run(model, batch, (const void *const *)ins, outs, &opt, &err) != HQRT_OK) {
            fprintf(stderr, "deploy_bench: %s\n", err.message);
            return 1;
        }
    double *ms = malloc((size_t)runs * sizeof *ms), *sorted = malloc((size_t)runs * sizeof *ms);
    for (int i = 0; i < runs; i++) {
        double t0 = now_ms();
        if (hqrt_run(model, batch, (const void *const *)ins, outs, &opt, &err) != HQRT_OK) {
            fprintf(stderr, "deploy_bench: %s\n", err.message);
            return 1;
        }
        ms[i] = now_ms() - t0;
    }
    memcpy(sorted, ms, (size_t)runs * sizeof *ms);
    qsort(sorted, (size_t)runs, sizeof *sorted, compare_double);
    double median = runs % 2 ? sorted[runs / 2] : 0.5 * (sorted[runs / 2 - 1] + sorted[runs / 2]);
    printf("ms_median=%.3f ms_min=%.3f ms_max=%.3f threads=%d batch=%d ms_all=", median, sorted[0],
           sorted[runs - 1], threads, batch);
    for (int i = 0; i < runs; i++)
        printf("%s%.3f", i ? "," : "", ms[i]);
    printf("\n");
    for (int i = 0; i < n_in; i++)
        free(ins[i]);
    for (int i = 0; i < n_out; i++)
        free(outs[i]);
    free(ins);
    free(outs);
    free(ms);
    free(sorted);
    hqrt_close(model);
    return 0;
}
