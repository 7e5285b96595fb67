/* cmd_run.c — `hq run model.hqx -d input.npy [-o out.npz] [-j N]`: runs a compiled program with
 * libhqrt. The data is read and checked by hq_dataset, like every other command's; float inputs
 * are quantized with each input's qp by the runtime's helper (the quantized emulator's exact
 * formula), the program runs integers only, outputs are dequantized. The bytes equal
 * `hq emulate --target quantized` on the same data. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "hq/hqrt.h"

static const hq_cli_option_t run_options[] = {
    {"-d, --dataset PATH", "input data: .npy, .npz (one array per input) or an image folder"},
    {"-o, --output PATH", "write the dequantized outputs to this .npz (else print a summary)"},
    {"--codes", "with -o: also write each output's raw integer codes as '<name>:codes'"},
    {"-j, --threads N", "worker threads (default 1; every count gives the same bytes)"},
    {"--stats", "print the kernel time per op kind and of the 10 slowest ops"},
    HQ_CLI_QUIET_OPTION,
    {"-h, --help", "show this help"},
    {NULL, NULL},
};

void hq_cmd_run_usage(FILE *out)
{
    fprintf(out, "usage: hq run [-h] model.hqx -d DATA [-o out.npz] [--codes] [-j N] [--stats]\n"
                 "              [-q]\n\n"
                 "Runs a compiled program (.hqx, or a compiled .har holding one) on every sample\n"
                 "of DATA with the deploy runtime (libhqrt): inputs quantized with their qp,\n"
                 "integer arithmetic only, outputs dequantized. With -o, writes an .npz with one\n"
                 "float32 array per output (keyed by its layer name), samples along axis 0;\n"
                 "without -o prints shape, min, max and mean of each output and the run time.\n\n"
                 "options:\n");
    hq_cli_print_options(out, run_options);
}

/* Opens a `.hqx`, or the `<net>.hqx` member of a compiled archive (copied to aligned memory,
 * kept in *owned until the model is closed). */
static hq_status_t open_program(const char *path, hqrt_model_t **model, void **owned,
                                hq_error_t *err)
{
    hqrt_error_t rerr = {0};
    *owned = NULL;
    if (!hq_cli_has_suffix(path, ".har")) {
        if (hqrt_open_file(path, model, &rerr) != HQRT_OK) {
            snprintf(err->message, sizeof err->message, "%s", rerr.message);
            return (hq_status_t)rerr.status;
        }
        return HQ_OK;
    }
    hq_archive_t *archive = NULL;
    hq_status_t st = hq_archive_open(path, &archive, err);
    const void *bytes = NULL;
    size_t len = 0;
    char member[512];
    if (st == HQ_OK) {
        snprintf(member, sizeof member, "%s.hqx", hq_archive_net_name(archive));
        st = hq_archive_member(archive, member, &bytes, &len, err);
        if (st == HQ_ERR_NOT_FOUND)
            snprintf(err->message, sizeof err->message,
                     "%.200s: no member %.200s (run hq compile first)", path, member);
    }
    if (st == HQ_OK) {
        *owned = aligned_alloc(64, (len + 63) / 64 * 64 + 64);
        if (!*owned) {
            st = HQ_ERR_NOMEM;
            snprintf(err->message, sizeof err->message, "out of memory");
        } else {
            memcpy(*owned, bytes, len);
            snprintf(member, sizeof member, "%s(%s.hqx)", path, hq_archive_net_name(archive));
            if (hqrt_open_memory(*owned, len, member, model, &rerr) != HQRT_OK) {
                snprintf(err->message, sizeof err->message, "%s", rerr.message);
                st = (hq_status_t)rerr.status;
            }
        }
    }
    hq_archive_destroy(archive);
    return st;
}

/* A graph of the program's input layers alone, each with its name and per-sample shape: what
 * hq_dataset_open needs to match `.npz` arrays to inputs by name and to check every array's shape
 * against its input, so that `hq run` accepts and refuses data exactly as `hq emulate` does. The
 * caller owns *out. */
static hq_status_t program_inputs_graph(const hqrt_model_t *model, hq_graph_t **out,
                                        hq_error_t *err)
{
    hqrt_io_t io;
    hqrt_describe(model, HQRT_INPUT, 0, &io, NULL);
    int count = io.count;
    const char *slash = strrchr(io.name, '/');
    char net[512];
    if (slash && slash > io.name)
        snprintf(net, sizeof net, "%.*s", (int)(slash - io.name), io.name);
    else
        snprintf(net, sizeof net, "program");
    hq_graph_t *graph = NULL;
    hq_status_t st = hq_graph_create(net, &graph, err);
    for (int i = 0; i < count && st == HQ_OK; i++) {
        hqrt_describe(model, HQRT_INPUT, i, &io, NULL);
        slash = strrchr(io.name, '/');
        int index = -1;
        st = hq_graph_add_layer(graph, slash ? slash + 1 : io.name, HQ_LAYER_INPUT, &index, err);
        hq_shape_t shape = {.ndim = io.ndim, .dims = {-1}};
        for (int d = 1; d < io.ndim; d++)
            shape.dims[d] = io.dims[d];
        if (st == HQ_OK)
            st = hq_layer_set_output_shape(graph, index, &shape, err);
    }
    if (st == HQ_OK)
        st = hq_graph_finalize(graph, net, err);
    if (st != HQ_OK) {
        hq_graph_destroy(graph);
        graph = NULL;
    }
    *out = graph;
    return st;
}

/* Reads every sample of the dataset's input `input` (which feeds program input `io`) and
 * quantizes it into `codes` (hq_dataset_count * io->bytes), a chunk of samples at a time. */
static hq_status_t quantize_input(hq_dataset_t *dataset, int input, const hqrt_io_t *io,
                                  void *codes, hq_error_t *err)
{
    enum { CHUNK = 64 };
    int64_t samples = hq_dataset_count(dataset);
    float *values = malloc((size_t)CHUNK * (size_t)io->elements * sizeof *values);
    if (!values) {
        snprintf(err->message, sizeof err->message, "out of memory");
        return HQ_ERR_NOMEM;
    }
    hq_status_t st = HQ_OK;
    for (int64_t first = 0; first < samples && st == HQ_OK; first += CHUNK) {
        int64_t n = samples - first < CHUNK ? samples - first : CHUNK;
        st = hq_dataset_read(dataset, input, first, n, values, err);
        if (st == HQ_OK)
            hqrt_quantize(io, values, n * io->elements,
                          (unsigned char *)codes + (size_t)first * io->bytes);
    }
    free(values);
    return st;
}

/* hqrt_run over [0, samples) a few samples at a time, drawing the progress bar after each:
 * samples are independent, so the codes are the same as one run over all of them. */
static hq_status_t run_in_chunks(hqrt_model_t *model, int64_t samples, void **in_codes,
                                 void **out_codes, const hqrt_run_options_t *options,
                                 hq_cli_progress_t *bar, hq_error_t *err)
{
    enum { CHUNK = 8, MAX_IO = 64 };
    hqrt_io_t io;
    hqrt_describe(model, HQRT_INPUT, 0, &io, NULL);
    int in_count = io.count;
    hqrt_describe(model, HQRT_OUTPUT, 0, &io, NULL);
    int out_count = io.count;
    if (in_count > MAX_IO || out_count > MAX_IO) { /* not worth a bar: one run */
        hqrt_error_t rerr = {0};
        if (hqrt_run(model, samples, (const void *const *)in_codes, out_codes, options, &rerr) ==
            HQRT_OK)
            return HQ_OK;
        snprintf(err->message, sizeof err->message, "%s", rerr.message);
        return err->status = (hq_status_t)rerr.status;
    }
    const void *in[MAX_IO];
    void *out[MAX_IO];
    for (int64_t first = 0; first < samples; first += CHUNK) {
        int64_t n = samples - first < CHUNK ? samples - first : CHUNK;
        for (int i = 0; i < in_count; i++) {
            hqrt_describe(model, HQRT_INPUT, i, &io, NULL);
            in[i] = (const char *)in_codes[i] + (size_t)first * io.bytes;
        }
        for (int o = 0; o < out_count; o++) {
            hqrt_describe(model, HQRT_OUTPUT, o, &io, NULL);
            out[o] = (char *)out_codes[o] + (size_t)first * io.bytes;
        }
        hqrt_error_t rerr = {0};
        if (hqrt_run(model, n, in, out, options, &rerr) != HQRT_OK) {
            hq_cli_progress_end(bar);
            snprintf(err->message, sizeof err->message, "%s", rerr.message);
            return err->status = (hq_status_t)rerr.status;
        }
        hq_cli_progress(bar, "run", first + n, samples);
    }
    return HQ_OK;
}

/* --stats: the profiled kernel time per op kind, largest first, with the number of op runs, the
 * total, then the slowest ops. Times are summed over threads, so with -j N the total may exceed
 * the run's wall time. */
enum { STATS_TOP_OPS = 10 };

static void print_stats(const hqrt_model_t *model)
{
    hqrt_op_profile_t p;
    if (hqrt_op_profile(model, 0, &p, NULL) != HQRT_OK)
        return;
    const int count = p.count;
    /* kinds in first-seen order, then ranked */
    const char *kinds[64];
    double kind_seconds[64] = {0};
    int64_t kind_runs[64] = {0};
    int kind_count = 0;
    double total = 0.0;
    for (int i = 0; i < count; i++) {
        hqrt_op_profile(model, i, &p, NULL);
        int k = 0;
        while (k < kind_count && strcmp(kinds[k], p.kind) != 0)
            k++;
        if (k == kind_count) {
            if (kind_count == 64)
                continue;
            kinds[kind_count++] = p.kind;
        }
        kind_seconds[k] += p.seconds;
        kind_runs[k] += p.runs;
        total += p.seconds;
    }
    bool shown[64] = {false};
    for (int n = 0; n < kind_count; n++) {
        int best = -1;
        for (int k = 0; k < kind_count; k++)
            if (!shown[k] && (best < 0 || kind_seconds[k] > kind_seconds[best]))
                best = k;
        shown[best] = true;
        printf("stats: time %-16s %10.3f ms %5.1f%% (%lld op runs)\n", kinds[best],
               kind_seconds[best] * 1e3, total > 0 ? 100.0 * kind_seconds[best] / total : 0.0,
               (long long)kind_runs[best]);
    }
    printf("stats: time %-16s %10.3f ms\n", "total", total * 1e3);
    /* the slowest ops: a top-N by repeated insertion, ties in program order */
    int top[STATS_TOP_OPS];
    double top_seconds[STATS_TOP_OPS];
    int top_count = 0;
    for (int i = 0; i < count; i++) {
        hqrt_op_profile(model, i, &p, NULL);
        int at = top_count;
        while (at > 0 && p.seconds > top_seconds[at - 1])
            at--;
        if (at >= STATS_TOP_OPS)
            continue;
        int last = top_count < STATS_TOP_OPS ? top_count : STATS_TOP_OPS - 1;
        for (int j = last; j > at; j--) {
            top[j] = top[j - 1];
            top_seconds[j] = top_seconds[j - 1];
        }
        top[at] = i;
        top_seconds[at] = p.seconds;
        if (top_count < STATS_TOP_OPS)
            top_count++;
    }
    for (int j = 0; j < top_count; j++) {
        hqrt_op_profile(model, top[j], &p, NULL);
        printf("stats: op %s (%s) %.3f ms %.1f%% (%lld op runs)\n", p.name, p.kind,
               p.seconds * 1e3, total > 0 ? 100.0 * p.seconds / total : 0.0, (long long)p.runs);
    }
}

int hq_cmd_run(int argc, char **argv)
{
    const char *model_path = NULL, *data = NULL, *output = NULL;
    bool codes = false, quiet = false, stats = false;
    long long threads = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            hq_cmd_run_usage(stdout);
            return HQ_EXIT_OK;
        }
        bool takes_value = !strcmp(a, "-d") || !strcmp(a, "--dataset") || !strcmp(a, "-o") ||
                           !strcmp(a, "--output") || !strcmp(a, "-j") || !strcmp(a, "--threads");
        if (takes_value && i + 1 >= argc)
            return hq_cli_fail("hq run", "option needs a value:", a);
        if (!strcmp(a, "-d") || !strcmp(a, "--dataset")) {
            data = argv[++i];
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            output = argv[++i];
        } else if (!strcmp(a, "--codes")) {
            codes = true;
        } else if (!strcmp(a, "--stats")) {
            stats = true;
        } else if (!strcmp(a, "-j") || !strcmp(a, "--threads")) {
            if (!hq_cli_parse_int(argv[++i], 1, 64, &threads))
                return hq_cli_fail("hq run", "threads must be an integer from 1 to 64, got",
                                   argv[i]);
        } else if (hq_cli_is_quiet(a)) {
            quiet = true;
        } else if (hq_cli_positional("hq run", "program", a, &model_path) != HQ_EXIT_OK) {
            return HQ_EXIT_FAILURE;
        }
    }
    if (!model_path || !data) {
        hq_cmd_run_usage(stderr);
        return HQ_EXIT_FAILURE;
    }
    if (output && hq_cli_check_output_file("hq run", "-o", output) != HQ_EXIT_OK)
        return HQ_EXIT_FAILURE;

    hq_error_t err = {0};
    hqrt_model_t *model = NULL;
    void *owned = NULL;
    hq_npz_t *result = NULL;
    hq_graph_t *inputs = NULL;
    hq_dataset_t *dataset = NULL;
    hq_status_t st = open_program(model_path, &model, &owned, &err);
    if (st == HQ_OK && stats) {
        hqrt_error_t rerr = {0};
        if (hqrt_set_profiling(model, 1, &rerr) != HQRT_OK) {
            st = (hq_status_t)rerr.status;
            snprintf(err.message, sizeof err.message, "%s", rerr.message);
        }
    }
    if (st == HQ_OK)
        st = program_inputs_graph(model, &inputs, &err);
    if (st == HQ_OK)
        st = hq_dataset_open(data, inputs, &dataset, &err);
    hqrt_io_t io;
    int in_count = 0, out_count = 0;
    if (st == HQ_OK) {
        hqrt_describe(model, HQRT_INPUT, 0, &io, NULL);
        in_count = io.count;
        hqrt_describe(model, HQRT_OUTPUT, 0, &io, NULL);
        out_count = io.count;
    }
    void **in_codes = calloc((size_t)in_count + 1, sizeof *in_codes);
    void **out_codes = calloc((size_t)out_count + 1, sizeof *out_codes);
    int64_t samples = st == HQ_OK ? hq_dataset_count(dataset) : 0;
    if (st == HQ_OK && (!in_codes || !out_codes)) {
        st = HQ_ERR_NOMEM;
        snprintf(err.message, sizeof err.message, "out of memory");
    }
    /* The dataset's inputs follow the graph's input layers, made in the program's input order. */
    for (int i = 0; i < in_count && st == HQ_OK; i++) {
        int program_input = hq_dataset_input_layer(dataset, i);
        hqrt_describe(model, HQRT_INPUT, program_input, &io, NULL);
        in_codes[program_input] = malloc((size_t)samples * io.bytes + 1);
        if (!in_codes[program_input]) {
            st = HQ_ERR_NOMEM;
            snprintf(err.message, sizeof err.message, "out of memory");
        } else {
            st = quantize_input(dataset, i, &io, in_codes[program_input], &err);
        }
    }
    for (int o = 0; o < out_count && st == HQ_OK; o++) {
        hqrt_describe(model, HQRT_OUTPUT, o, &io, NULL);
        out_codes[o] = malloc((size_t)samples * io.bytes + 1);
        if (!out_codes[o]) {
            st = HQ_ERR_NOMEM;
            snprintf(err.message, sizeof err.message, "out of memory");
        }
    }
    double seconds = 0;
    if (st == HQ_OK) {
        hqrt_run_options_t options = {.threads = (int)threads};
        hqrt_error_t rerr = {0};
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        hq_cli_progress_t bar;
        hq_cli_progress_init(&bar, quiet);
        if (!bar.enabled) {
            if (hqrt_run(model, samples, (const void *const *)in_codes, out_codes, &options,
                         &rerr) != HQRT_OK) {
                st = (hq_status_t)rerr.status;
                snprintf(err.message, sizeof err.message, "%s", rerr.message);
            }
        } else {
            st = run_in_chunks(model, samples, in_codes, out_codes, &options, &bar, &err);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    }
    if (st == HQ_OK)
        st = hq_npz_create(&result, &err);
    for (int o = 0; o < out_count && st == HQ_OK; o++) {
        hqrt_describe(model, HQRT_OUTPUT, o, &io, NULL);
        int64_t shape[4] = {samples, io.dims[1], io.dims[2], io.dims[3]};
        hq_tensor_t *y = NULL;
        st = hq_tensor_create(HQ_DTYPE_FLOAT32, io.ndim, shape, &y, &err);
        if (st != HQ_OK)
            break;
        hqrt_dequantize(&io, out_codes[o], samples * io.elements, y->data);
        if (!output)
            hq_cli_print_tensor_summary(io.name, "output", y);
        st = hq_npz_put(result, io.name, y, &err);
        if (st == HQ_OK && codes) {
            hq_tensor_t *c = NULL;
            st = hq_tensor_create(io.bits == 8 ? HQ_DTYPE_UINT8 : HQ_DTYPE_UINT16, io.ndim, shape,
                                  &c, &err);
            if (st == HQ_OK) {
                memcpy(c->data, out_codes[o], c->nbytes);
                char key[600];
                snprintf(key, sizeof key, "%s:codes", io.name);
                st = hq_npz_put(result, key, c, &err);
            }
        }
    }
    if (st == HQ_OK && output)
        st = hq_npz_write_file(output, result, true, &err);
    if (st == HQ_OK && !output)
        printf("ran %lld sample(s) in %.3f ms with %lld thread(s): %.1f samples/s (timing is "
               "indicative only)\n",
               (long long)samples, seconds * 1e3, threads,
               seconds > 0 ? (double)samples / seconds : 0.0);
    if (st == HQ_OK && stats)
        print_stats(model);
    if (st != HQ_OK)
        hq_cli_report("hq run", st, &err);
    for (int i = 0; in_codes && i < in_count; i++)
        free(in_codes[i]);
    for (int o = 0; out_codes && o < out_count; o++)
        free(out_codes[o]);
    free(in_codes);
    free(out_codes);
    hq_npz_destroy(result);
    hq_dataset_destroy(dataset);
    hq_graph_destroy(inputs);
    hqrt_close(model);
    free(owned);
    return st == HQ_OK ? HQ_EXIT_OK : HQ_EXIT_FAILURE;
}
