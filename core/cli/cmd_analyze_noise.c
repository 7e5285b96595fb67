/* cmd_analyze_noise.c — `hq analyze-noise model_quantized.har -d DATA`: per-layer SQNR of the
 * quantized model against fp_optimized, stored in the archive's q.npz and printed as a table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "hq/quantize.h"

static const hq_cli_option_t noise_options[] = {
    {"-d, --dataset PATH", "data: .npy, .npz (one array per input) or an image folder"},
    {"--analyze-mode MODE", "simple (cumulative snr) or advanced (also partial_snr, default)"},
    {"-c, --count N", "use the first N samples (default: all)"},
    {"-o, --output PATH", "write the archive here (default: rewrite model.har in place)"},
    {"-j, --threads N", "threads, float and integer (default: HQ_THREADS or the cores)"},
    HQ_CLI_QUIET_OPTION,
    {"-h, --help", "show this help"},
    {NULL, NULL},
};

void hq_cmd_analyze_noise_usage(FILE *out)
{
    fprintf(
        out,
        "usage: hq analyze-noise [-h] model_quantized.har -d DATA\n"
        "                        [--analyze-mode simple|advanced] [-c N] [-o out.har] [-j N]\n"
        "                        [-q]\n\n"
        "Measures quantization noise layer by layer: snr is the SQNR (dB) of each layer's\n"
        "output with everything quantized, against fp_optimized; partial_snr (advanced)\n"
        "the SQNR of the model outputs when only that layer is quantized. SQNR = 10 log10\n"
        "(sum x^2 / sum (x - xq)^2) pooled over the data. Results are stored in the\n"
        "archive (layer_noise_analysis/snr:0, partial_snr:0) and printed.\n"
        "advanced runs the float network once more per layer for every batch (about\n"
        "layers + 1 times the cost of simple); simple is one float and one integer run.\n\n"
        "options:\n");
    hq_cli_print_options(out, noise_options);
}

static void print_table(hq_archive_t *archive, const hq_graph_t *graph, bool advanced)
{
    hq_npz_t *q = NULL;
    if (hq_archive_params(archive, HQ_PARAMS_QUANTIZED, &q, NULL) != HQ_OK)
        return;
    printf("%-40s %-10s %10s%s\n", "layer", "precision", "snr_db",
           advanced ? "  partial_snr_db" : "");
    int order_count = 0, exact_constants = 0;
    const int *order = hq_graph_topo_order(graph, &order_count);
    for (int t = 0; t < order_count; t++) {
        const hq_layer_t *layer = hq_graph_layer(graph, order[t]);
        char key[1024];
        snprintf(key, sizeof key, "%s/layer_noise_analysis/snr:0", layer->name);
        const hq_tensor_t *snr = hq_npz_get(q, key);
        snprintf(key, sizeof key, "%s/layer_noise_analysis/partial_snr:0", layer->name);
        const hq_tensor_t *partial = hq_npz_get(q, key);
        double snr_db = snr && snr->dtype == HQ_DTYPE_FLOAT32 ? *(const float *)snr->data : 0.0;
        double partial_db =
            partial && partial->dtype == HQ_DTYPE_FLOAT32 ? *(const float *)partial->data : 200.0;
        /* Constants the encoding holds exactly say nothing: one line counts them. */
        if (layer->type == HQ_LAYER_CONST_INPUT && snr_db >= 200.0 && partial_db >= 200.0) {
            exact_constants++;
            continue;
        }
        printf("%-40s %-10s %10.2f", layer->bare_name,
               layer->precision_mode[0] ? layer->precision_mode : "-", snr_db);
        if (advanced && partial && partial->dtype == HQ_DTYPE_FLOAT32)
            printf("  %14.2f", partial_db);
        printf("\n");
    }
    if (exact_constants == 1)
        printf("(1 constant input held exactly by its encoding, 200 dB: not listed)\n");
    else if (exact_constants > 1)
        printf("(%d constant inputs held exactly by their encodings, 200 dB: not listed)\n",
               exact_constants);
}

int hq_cmd_analyze_noise(int argc, char **argv)
{
    const char *model = NULL, *data = NULL, *output = NULL, *mode_name = "advanced";
    long long count = 0, threads = 0;
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            hq_cmd_analyze_noise_usage(stdout);
            return HQ_EXIT_OK;
        }
        bool takes_value = !strcmp(a, "-d") || !strcmp(a, "--dataset") || !strcmp(a, "-o") ||
                           !strcmp(a, "--output") || !strcmp(a, "--analyze-mode") ||
                           !strcmp(a, "-c") || !strcmp(a, "--count") || !strcmp(a, "-j") ||
                           !strcmp(a, "--threads");
        if (takes_value && !next)
            return hq_cli_fail("hq analyze-noise", "option needs a value:", a);
        if (!strcmp(a, "-d") || !strcmp(a, "--dataset")) {
            data = argv[++i];
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            output = argv[++i];
        } else if (!strcmp(a, "--analyze-mode")) {
            mode_name = argv[++i];
        } else if (!strcmp(a, "-c") || !strcmp(a, "--count")) {
            if (!hq_cli_parse_int(argv[++i], 1, 1LL << 40, &count))
                return hq_cli_fail("hq analyze-noise", "count must be a positive integer, got",
                                   argv[i]);
        } else if (!strcmp(a, "-j") || !strcmp(a, "--threads")) {
            if (!hq_cli_parse_int(argv[++i], 1, 256, &threads))
                return hq_cli_fail("hq analyze-noise",
                                   "threads must be an integer from 1 to 256, got", argv[i]);
        } else if (hq_cli_is_quiet(a)) {
            quiet = true;
        } else if (hq_cli_positional("hq analyze-noise", "archive", a, &model) != HQ_EXIT_OK) {
            return HQ_EXIT_FAILURE;
        }
    }
    if (!model || !data) {
        hq_cmd_analyze_noise_usage(stderr);
        return HQ_EXIT_FAILURE;
    }
    hq_noise_mode_t mode;
    if (!strcmp(mode_name, "simple"))
        mode = HQ_NOISE_SIMPLE;
    else if (!strcmp(mode_name, "advanced"))
        mode = HQ_NOISE_ADVANCED;
    else
        return hq_cli_fail("hq analyze-noise", "--analyze-mode must be simple or advanced, got",
                           mode_name);

    /* Without -o the archive is rewritten in place. */
    if (hq_cli_check_output_file("hq analyze-noise", output ? "-o" : "archive",
                                 output ? output : model) != HQ_EXIT_OK)
        return HQ_EXIT_FAILURE;
    hq_error_t err = {0};
    hq_archive_t *archive = NULL;
    hq_graph_t *graph = NULL;
    hq_dataset_t *dataset = NULL;
    hq_status_t st = hq_archive_open(model, &archive, &err);
    if (st == HQ_OK)
        st = hq_archive_graph(archive, &graph, &err);
    if (st == HQ_OK)
        st = hq_dataset_open(data, graph, &dataset, &err);
    hq_cli_progress_t bar;
    hq_cli_progress_init(&bar, quiet);
    hq_optimize_options_t options = {0};
    options.threads = (int)threads;
    options.progress = hq_cli_progress;
    options.progress_user = &bar;
    if (st == HQ_OK)
        st = hq_analyze_noise(archive, dataset, count, mode, &options, &err);
    hq_cli_progress_end(&bar);
    if (st == HQ_OK)
        st = hq_archive_save(archive, output ? output : model, &err);
    if (st == HQ_OK) {
        print_table(archive, graph, mode == HQ_NOISE_ADVANCED);
        printf("noise analysis written to %s\n", output ? output : model);
    } else {
        hq_cli_report("hq analyze-noise", st, &err);
    }
    hq_dataset_destroy(dataset);
    hq_archive_destroy(archive);
    return st == HQ_OK ? HQ_EXIT_OK : HQ_EXIT_FAILURE;
}
