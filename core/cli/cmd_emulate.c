/* cmd_emulate.c — `hq emulate model.har -d data`: runs the float network on a dataset and writes
 * the outputs (and tapped layers) to an .npz, or prints a per-output summary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "hq/emulate.h"

static const hq_cli_option_t emulate_options[] = {
    {"-d, --dataset PATH", "input data: .npy, .npz (one array per input) or an image folder"},
    {"--target NAME", "params to run with: native (default), fp_optimized or quantized"},
    {"-o, --output PATH", "write outputs and taps to this .npz (else print a summary)"},
    {"--tap LAYER", "also save this layer's output (repeatable; scoped, bare or original name)"},
    {"-b, --batch-size N", "samples per batch (default 8)"},
    {"-j, --threads N", "threads, for either target (default $HQ_THREADS, else all usable cores)"},
    {"--stats", "print peak memory (activations + scratch) and time per layer type"},
    HQ_CLI_QUIET_OPTION,
    {"-h, --help", "show this help"},
    {NULL, NULL},
};

void hq_cmd_emulate_usage(FILE *out)
{
    fprintf(out, "usage: hq emulate [-h] model.har -d DATA\n"
                 "                  [--target native|fp_optimized|quantized]\n"
                 "                  [-o out.npz] [--tap LAYER ...] [-b N] [-j N] [--stats] [-q]\n\n"
                 "Runs the float network on every sample of DATA, in batches. With -o, writes an\n"
                 ".npz with one array per output layer (keyed by its scoped name) and one per\n"
                 "tapped layer, samples along axis 0; without -o prints shape, min, max and mean\n"
                 "of each output.\n\noptions:\n");
    hq_cli_print_options(out, emulate_options);
}

/* One array being filled: an output or a tapped layer piece. */
typedef struct collected {
    int layer;
    int port;
    int output;          /* index among graph outputs, -1 for a tap */
    int64_t size;        /* floats per sample */
    hq_tensor_t *tensor; /* [N, ...] */
    char *key;
} collected_t;

typedef struct run_state {
    collected_t *items;
    int count;
    int64_t cursor; /* first sample of the batch being run */
} run_state_t;

static hq_status_t on_tap(void *user, int layer, int port, const hq_shape_t *shape,
                          const float *data, hq_error_t *err)
{
    (void)err;
    run_state_t *state = user;
    for (int i = 0; i < state->count; i++) {
        collected_t *c = &state->items[i];
        if (c->output >= 0 || c->layer != layer || c->port != port)
            continue;
        float *dst = (float *)c->tensor->data + state->cursor * c->size;
        memcpy(dst, data, (size_t)(shape->dims[0] * c->size) * sizeof(float));
    }
    return HQ_OK;
}

static hq_status_t on_batch(void *user, int64_t first, int64_t count, const float *const *outputs,
                            hq_error_t *err)
{
    (void)err;
    run_state_t *state = user;
    for (int i = 0; i < state->count; i++) {
        collected_t *c = &state->items[i];
        if (c->output < 0)
            continue;
        memcpy((float *)c->tensor->data + first * c->size, outputs[c->output],
               (size_t)(count * c->size) * sizeof(float));
    }
    state->cursor = first + count;
    return HQ_OK;
}

static hq_status_t add_item(run_state_t *state, const hq_layer_t *layer, int index, int port,
                            int output, int64_t samples, hq_error_t *err)
{
    for (int i = 0; i < state->count; i++)
        if (state->items[i].layer == index && state->items[i].port == port)
            return HQ_OK; /* tapped twice, or an output tapped */
    hq_shape_t shape = hq_layer_port_shape(layer, port);
    int64_t dims[HQ_TENSOR_MAX_DIMS];
    int64_t size = 1;
    dims[0] = samples;
    for (int d = 1; d < shape.ndim; d++) {
        dims[d] = shape.dims[d];
        size *= shape.dims[d];
    }
    collected_t *c = &state->items[state->count];
    memset(c, 0, sizeof *c);
    c->layer = index;
    c->port = port;
    c->output = output;
    c->size = size;
    size_t len = strlen(layer->name) + 16;
    c->key = malloc(len);
    if (!c->key) {
        if (err)
            snprintf(err->message, sizeof err->message, "out of memory");
        return HQ_ERR_NOMEM;
    }
    if (port == 0)
        snprintf(c->key, len, "%s", layer->name);
    else
        snprintf(c->key, len, "%s:%d", layer->name, port);
    state->count++;
    return hq_tensor_create(HQ_DTYPE_FLOAT32, shape.ndim, dims, &c->tensor, err);
}

static void print_summary(const run_state_t *state)
{
    for (int i = 0; i < state->count; i++) {
        const collected_t *c = &state->items[i];
        hq_cli_print_tensor_summary(c->key, c->output >= 0 ? "output" : "tap", c->tensor);
    }
}

/* --stats: what ran, the planned memory at the batch used, and the kernel time per layer type
 * (largest first). */
static void print_stats(const hq_emulator_t *emu, int64_t batch, int64_t samples)
{
    const double mb = 1.0 / (1024.0 * 1024.0);
    int64_t peak = hq_emulator_peak_bytes(emu, batch), scratch = hq_emulator_scratch_bytes(emu, batch);
    printf("stats: kernels %s, %d thread%s, batch %lld, %lld samples\n", hq_emulator_kernels(emu),
           hq_emulator_threads(emu), hq_emulator_threads(emu) == 1 ? "" : "s", (long long)batch,
           (long long)samples);
    printf("stats: peak memory %.2f MiB (activations %.2f MiB + scratch %.2f MiB)\n", peak * mb,
           (peak - scratch) * mb, scratch * mb);
    double seconds[HQ_LAYER_TYPE_COUNT], total = 0.0;
    int64_t calls[HQ_LAYER_TYPE_COUNT];
    bool shown[HQ_LAYER_TYPE_COUNT] = {false};
    for (int t = 0; t < HQ_LAYER_TYPE_COUNT; t++) {
        seconds[t] = hq_emulator_type_seconds(emu, (hq_layer_type_t)t, &calls[t]);
        total += seconds[t];
    }
    for (;;) {
        int best = -1;
        for (int t = 0; t < HQ_LAYER_TYPE_COUNT; t++)
            if (!shown[t] && calls[t] > 0 && (best < 0 || seconds[t] > seconds[best]))
                best = t;
        if (best < 0)
            break;
        shown[best] = true;
        printf("stats: time %-16s %10.3f ms %5.1f%% (%lld layer runs)\n",
               hq_layer_type_name((hq_layer_type_t)best), seconds[best] * 1e3,
               total > 0 ? 100.0 * seconds[best] / total : 0.0, (long long)calls[best]);
    }
    printf("stats: time %-16s %10.3f ms\n", "total", total * 1e3);
}

int hq_cmd_emulate(int argc, char **argv)
{
    const char *model = NULL, *data = NULL, *output = NULL, *target_name = "native";
    long long batch_size = 8, threads = 0;
    bool stats = false, quiet = false;
    const char **taps = calloc((size_t)argc + 1, sizeof *taps);
    int tap_count = 0;
    if (!taps)
        return hq_cli_fail("hq emulate", "out of memory", NULL);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            hq_cmd_emulate_usage(stdout);
            free(taps);
            return HQ_EXIT_OK;
        }
        bool takes_value = !strcmp(a, "-d") || !strcmp(a, "--dataset") || !strcmp(a, "-o") ||
                           !strcmp(a, "--output") || !strcmp(a, "--target") ||
                           !strcmp(a, "--tap") || !strcmp(a, "-b") || !strcmp(a, "--batch-size") ||
                           !strcmp(a, "-j") || !strcmp(a, "--threads");
        if (takes_value && !next) {
            free(taps);
            return hq_cli_fail("hq emulate", "option needs a value:", a);
        }
        if (!strcmp(a, "-d") || !strcmp(a, "--dataset")) {
            data = argv[++i];
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            output = argv[++i];
        } else if (!strcmp(a, "--target")) {
            target_name = argv[++i];
        } else if (!strcmp(a, "--tap")) {
            taps[tap_count++] = argv[++i];
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) {
            if (!hq_cli_parse_int(argv[++i], 1, 1LL << 30, &batch_size)) {
                free(taps);
                return hq_cli_fail("hq emulate",
                                   "batch size must be an integer from 1 to 2^30, got", argv[i]);
            }
        } else if (!strcmp(a, "-j") || !strcmp(a, "--threads")) {
            if (!hq_cli_parse_int(argv[++i], 1, 256, &threads)) {
                free(taps);
                return hq_cli_fail("hq emulate", "threads must be an integer from 1 to 256, got",
                                   argv[i]);
            }
        } else if (!strcmp(a, "--stats")) {
            stats = true;
        } else if (hq_cli_is_quiet(a)) {
            quiet = true;
        } else if (hq_cli_positional("hq emulate", "archive", a, &model) != HQ_EXIT_OK) {
            free(taps);
            return HQ_EXIT_FAILURE;
        }
    }
    if (!model || !data) {
        hq_cmd_emulate_usage(stderr);
        free(taps);
        return HQ_EXIT_FAILURE;
    }
    hq_target_t target;
    if (hq_target_from_name(target_name, &target) != HQ_OK) {
        free(taps);
        return hq_cli_fail("hq emulate", "unknown target (native, fp_optimized or quantized)",
                           target_name);
    }
    if (output && hq_cli_check_output_file("hq emulate", "-o", output) != HQ_EXIT_OK) {
        free(taps);
        return HQ_EXIT_FAILURE;
    }

    hq_error_t err = {0};
    hq_archive_t *archive = NULL;
    hq_graph_t *graph = NULL;
    hq_emulator_t *emu = NULL;
    hq_dataset_t *dataset = NULL;
    run_state_t state = {0};
    hq_status_t st = hq_archive_open(model, &archive, &err);
    if (st == HQ_OK)
        st = hq_archive_graph(archive, &graph, &err);
    if (st == HQ_OK)
        st = hq_emulator_create_from_archive(archive, target, &emu, &err);
    if (st == HQ_OK && threads > 0)
        st = hq_emulator_set_threads(emu, (int)threads, &err);
    if (st == HQ_OK)
        st = hq_dataset_open(data, graph, &dataset, &err);
    int out_count = 0;
    const int *outs = st == HQ_OK ? hq_graph_outputs(graph, &out_count) : NULL;
    if (st == HQ_OK) {
        int capacity = out_count + 1; /* outputs, then at most every piece of every layer */
        for (int i = 0; i < hq_graph_layer_count(graph); i++)
            capacity += hq_layer_port_count(hq_graph_layer(graph, i));
        state.items = calloc((size_t)capacity, sizeof *state.items);
        if (!state.items) {
            st = HQ_ERR_NOMEM;
            snprintf(err.message, sizeof err.message, "out of memory");
        }
    }
    int64_t samples = st == HQ_OK ? hq_dataset_count(dataset) : 0;
    for (int o = 0; o < out_count && st == HQ_OK; o++)
        st = add_item(&state, hq_graph_layer(graph, outs[o]), outs[o], 0, o, samples, &err);
    for (int t = 0; t < tap_count && st == HQ_OK; t++) {
        int index = hq_graph_find(graph, taps[t]);
        if (index < 0) {
            st = HQ_ERR_NOT_FOUND;
            snprintf(err.message, sizeof err.message, "%s: --tap: no layer named '%s'", model,
                     taps[t]);
            break;
        }
        const hq_layer_t *layer = hq_graph_layer(graph, index);
        for (int p = 0; p < hq_layer_port_count(layer) && st == HQ_OK; p++)
            st = add_item(&state, layer, index, p, -1, samples, &err);
    }
    if (st == HQ_OK && samples < 1) {
        st = HQ_ERR_INVALID;
        snprintf(err.message, sizeof err.message, "%s: the dataset has no samples", data);
    }
    hq_cli_progress_t bar;
    hq_cli_progress_init(&bar, quiet);
    hq_emulator_set_progress(emu, hq_cli_progress, &bar);
    if (st == HQ_OK)
        st = hq_emulator_run_dataset(emu, dataset, batch_size, on_batch, tap_count ? on_tap : NULL,
                                     &state, &err);
    hq_cli_progress_end(&bar);
    hq_npz_t *npz = NULL;
    if (st == HQ_OK && output) {
        st = hq_npz_create(&npz, &err);
        for (int i = 0; i < state.count && st == HQ_OK; i++) {
            st = hq_npz_put(npz, state.items[i].key, state.items[i].tensor, &err);
            state.items[i].tensor = NULL; /* owned by the set now, also on failure */
        }
        if (st == HQ_OK)
            st = hq_npz_write_file(output, npz, true, &err);
    }
    if (st == HQ_OK && !output)
        print_summary(&state);
    if (st == HQ_OK && stats)
        print_stats(emu, samples < batch_size ? samples : batch_size, samples);
    if (st != HQ_OK)
        hq_cli_report("hq emulate", st, &err);
    hq_npz_destroy(npz);
    for (int i = 0; i < state.count; i++) {
        hq_tensor_destroy(state.items[i].tensor);
        free(state.items[i].key);
    }
    free(state.items);
    hq_dataset_destroy(dataset);
    hq_emulator_destroy(emu);
    hq_archive_destroy(archive);
    free(taps);
    return st == HQ_OK ? HQ_EXIT_OK : HQ_EXIT_FAILURE;
}
