/* op_shares.c — per-op-kind time of a compiled program (.hqx) in libhqrt, from hqrt's own
 * profiler (hqrt_set_profiling / hqrt_op_profile), on random input codes; see bench/op_shares.sh,
 * which builds it against the runtime's sources with the profiler reading each thread's CPU
 * clock instead of the monotonic one, so that other processes on a loaded machine do not count.
 * usage: op_shares model.hqx... [-b BATCH] [-n RUNS] [-j THREADS] [--ops]
 * Per model: the process CPU ms per sample, then per op kind its ms per sample and share of
 * the profiled total, largest first; --ops adds one line per op. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hq/hqrt.h"

#define MAX_KINDS 64

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int shares(const char *path, int batch, int runs, int threads, int per_op)
{
    hqrt_model_t *m;
    hqrt_error_t e;
    if (hqrt_open_file(path, &m, &e) != HQRT_OK) {
        fprintf(stderr, "%s\n", e.message);
        return 1;
    }
    hqrt_io_t in, out;
    hqrt_describe(m, HQRT_INPUT, 0, &in, &e);
    hqrt_describe(m, HQRT_OUTPUT, 0, &out, &e);
    unsigned char *ic = malloc(in.bytes * (size_t)batch), *oc = malloc(out.bytes * (size_t)batch);
    srand(1);
    for (size_t i = 0; i < in.bytes * (size_t)batch; i++)
        ic[i] = (unsigned char)rand();
    const void *ins[1] = {ic};
    void *outs[1] = {oc};
    hqrt_run_options_t o = {threads};
    hqrt_run(m, batch, ins, outs, &o, &e); /* warm-up */
    hqrt_set_profiling(m, 1, &e);
    double t0 = cpu_seconds();
    for (int r = 0; r < runs; r++)
        hqrt_run(m, batch, ins, outs, &o, &e);
    double cpu = cpu_seconds() - t0, total = 0, per = 1e3 / runs / batch;
    hqrt_op_profile_t p;
    hqrt_op_profile(m, 0, &p, &e);
    const char *kind[MAX_KINDS];
    double secs[MAX_KINDS];
    int nk = 0;
    for (int i = 0; i < p.count; i++) {
        hqrt_op_profile(m, i, &p, &e);
        total += p.seconds;
        int k = 0;
        while (k < nk && strcmp(kind[k], p.kind))
            k++;
        if (k == nk && nk < MAX_KINDS)
            kind[nk] = p.kind, secs[nk++] = 0;
        if (k < nk)
            secs[k] += p.seconds;
        if (per_op)
            printf("op %4d %-44s %-16s %8.3f ms\n", i, p.name, p.kind, p.seconds * per);
    }
    printf("%s: cpu %.3f ms per sample (profiled ops %.3f), batch %d, %d thread(s), %d runs\n",
           path, cpu * per, total * per, batch, threads, runs);
    for (int a = 0; a < nk; a++) /* largest first */
        for (int b = a + 1; b < nk; b++)
            if (secs[b] > secs[a]) {
                double s = secs[a];
                const char *n = kind[a];
                secs[a] = secs[b], kind[a] = kind[b], secs[b] = s, kind[b] = n;
            }
    for (int k = 0; k < nk; k++)
        printf("  %-16s %8.3f ms %5.1f%%\n", kind[k], secs[k] * per,
               total > 0 ? 100 * secs[k] / total : 0.0);
    hqrt_close(m);
    free(ic);
    free(oc);
    return 0;
}

int main(int argc, char **argv)
{
    int batch = 1, runs = 10, threads = 1, per_op = 0, models = 0;
    const char *paths[64];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-b") && i + 1 < argc)
            batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-j") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ops"))
            per_op = 1;
        else if (argv[i][0] != '-' && models < 64)
            paths[models++] = argv[i];
    }
    if (!models || batch < 1 || runs < 1 || threads < 1) {
        fprintf(stderr,
                "usage: op_shares model.hqx... [-b BATCH] [-n RUNS] [-j THREADS] [--ops]\n");
        return 2;
    }
    int rc = 0;
    for (int k = 0; k < models; k++)
        rc |= shares(paths[k], batch, runs, threads, per_op);
    return rc;
}
