/* hq_diag_main.c — `hq-diag`: the diagnostic front door. This release loads and validates the
 * archive and the dataset; the inspector runner arrives with the diagnostic core. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common_cli.h"

static const hq_cli_option_t diag_options[] = {
    {"-d, --dataset PATH", "calibration data: .npy, .npz or a folder of images"},
    {"-h, --help", "show this help"},
    {"--version", "print the version"},
    {NULL, NULL},
};

/* Reads every sample of every input once, in batches, so that unreadable or non-finite data is
 * refused before any diagnostic is printed. */
static hq_status_t check_dataset(hq_dataset_t *dataset, hq_error_t *err)
{
    enum { BATCH = 8 };
    hq_status_t st = HQ_OK;
    for (int input = 0; input < hq_dataset_input_count(dataset) && st == HQ_OK; input++) {
        hq_shape_t shape = hq_dataset_input_shape(dataset, input);
        size_t per_sample = 1;
        for (int d = 0; d < shape.ndim; d++)
            per_sample *= (size_t)shape.dims[d];
        float *batch = malloc(per_sample * BATCH * sizeof *batch);
        if (!batch) {
            err->status = HQ_ERR_NOMEM;
            snprintf(err->message, sizeof err->message, "out of memory reading the dataset");
            return HQ_ERR_NOMEM;
        }
        int64_t count = hq_dataset_count(dataset);
        for (int64_t first = 0; first < count && st == HQ_OK; first += BATCH) {
            int64_t n = count - first < BATCH ? count - first : BATCH;
            st = hq_dataset_read(dataset, input, first, n, batch, err);
        }
        free(batch);
    }
    return st;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: hq-diag [-h] [--version] [-d DATASET] model.har\n\n"
                 "Loads a quantized model archive and its calibration data and checks that both\n"
                 "are readable and consistent. (The inspectors are not part of this release.)\n\n"
                 "options:\n");
    hq_cli_print_options(out, diag_options);
    fprintf(out, "\nExit status: 0 success, 2 bad arguments or unreadable input. See hq-diag(1).\n");
}

int main(int argc, char **argv)
{
    const char *model = NULL, *dataset_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return HQ_EXIT_OK;
        } else if (!strcmp(argv[i], "--version")) {
            printf("hq-diag %s\n", hq_version());
            return HQ_EXIT_OK;
        } else if (!strcmp(argv[i], "-d") || !strcmp(argv[i], "--dataset")) {
            if (++i >= argc) {
                fprintf(stderr, "hq-diag: %s needs a path\n", argv[i - 1]);
                return HQ_EXIT_FAILURE;
            }
            dataset_path = argv[i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "hq-diag: unknown option '%s'\n", argv[i]);
            return HQ_EXIT_FAILURE;
        } else if (model) {
            fprintf(stderr, "hq-diag: one archive at a time ('%s' and '%s')\n", model, argv[i]);
            return HQ_EXIT_FAILURE;
        } else {
            model = argv[i];
        }
    }
    if (!model) {
        usage(stderr);
        return HQ_EXIT_FAILURE;
    }
    hq_error_t err = {0};
    hq_archive_t *archive = NULL;
    hq_graph_t *graph = NULL;
    hq_dataset_t *dataset = NULL;
    hq_status_t st = hq_archive_open(model, &archive, &err);
    if (st == HQ_OK)
        st = hq_archive_graph(archive, &graph, &err);
    if (st == HQ_OK && dataset_path)
        st = hq_dataset_open(dataset_path, graph, &dataset, &err);
    if (st == HQ_OK && dataset)
        st = check_dataset(dataset, &err);
    if (st != HQ_OK) {
        hq_cli_report("hq-diag", st, &err);
        hq_dataset_destroy(dataset);
        hq_archive_destroy(archive);
        return HQ_EXIT_FAILURE;
    }
    printf("[info] Loaded %s: network %s, state %s, %d layers\n", model,
           hq_archive_net_name(archive), hq_model_state_name(hq_archive_state(archive)),
           hq_graph_layer_count(graph));
    if (dataset)
        printf("[info] Dataset %s: %lld samples\n", dataset_path,
               (long long)hq_dataset_count(dataset));
    hq_dataset_destroy(dataset);
    hq_archive_destroy(archive);
    return HQ_EXIT_OK;
}
