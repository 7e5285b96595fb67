/* cmd_parse.c — `hq parse model.onnx`: imports an ONNX model into a new archive. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "hq/parse.h"

static const hq_cli_option_t parse_options[] = {
    {"-o, --output PATH", "archive to write (default: model name + .har)"},
    {"--net-name NAME", "network name (default: the model file name)"},
    {"--start-node-names NODE...", "the inputs of these ONNX nodes become the network inputs"},
    {"--end-node-names NODE...", "the outputs of these ONNX nodes become the network outputs"},
    {"--hw-arch ARCH", "target hardware recorded in the archive (default: hailo8)"},
    {"--tensor-shapes SHAPE...",
     "NCHW shapes of the inputs, in ONNX order, e.g. 1,3,640,640: fill dynamic dimensions"},
    HQ_CLI_QUIET_OPTION,
    {"-h, --help", "show this help"},
    {NULL, NULL},
};

void hq_cmd_parse_usage(FILE *out)
{
    fprintf(out, "usage: hq parse [-h] [-o PATH] [--net-name NAME] [--start-node-names NODE...]\n"
                 "                [--end-node-names NODE...] [--hw-arch ARCH]\n"
                 "                [--tensor-shapes SHAPE...] [-q] model.onnx\n\n"
                 "Imports an ONNX model (NCHW) into a new archive in state parsed_model: the\n"
                 "NHWC graph (.hn) and its weights (.npz). Convolutions absorb batch norms,\n"
                 "activations and residual adds. The archive is written only on success.\n\n"
                 "options:\n");
    hq_cli_print_options(out, parse_options);
}

/* Collects the words after a list option up to the next option. */
static int take_list(int argc, char **argv, int i, const char ***list, int *count)
{
    int k = i + 1;
    while (k < argc && argv[k][0] != '-')
        k++;
    *list = (const char **)&argv[i + 1];
    *count = k - i - 1;
    return k - 1;
}

/* "1,3,640,640" or "[1, 3, 640, 640]" -> NCHW shape; false when malformed. */
static bool parse_shape(const char *text, hq_shape_t *shape)
{
    memset(shape, 0, sizeof *shape);
    const char *p = text;
    while (*p == ' ' || *p == '[')
        p++;
    while (*p && *p != ']') {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 1 || v > (1LL << 30) || shape->ndim == HQ_TENSOR_MAX_DIMS)
            return false;
        shape->dims[shape->ndim++] = v;
        p = end;
        while (*p == ' ')
            p++;
        if (*p == ',' || *p == 'x')
            p++;
        while (*p == ' ')
            p++;
    }
    return shape->ndim > 0 && (*p == 0 || (p[0] == ']' && p[1] == 0));
}

int hq_cmd_parse(int argc, char **argv)
{
    const char *model = NULL, *output = NULL;
    hq_parse_options_t opts = {0};
    const char **start = NULL, **end = NULL, **shape_words = NULL;
    int shape_count = 0;
    hq_shape_t shapes[8];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            hq_cmd_parse_usage(stdout);
            return HQ_EXIT_OK;
        }
        bool has_value = i + 1 < argc;
        if (!strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--net-name") ||
            !strcmp(a, "--hw-arch")) {
            if (!has_value) {
                fprintf(stderr, "hq parse: option '%s' needs a value\n", a);
                return HQ_EXIT_FAILURE;
            }
            const char *v = argv[++i];
            if (a[1] == 'o' || !strcmp(a, "--output"))
                output = v;
            else if (!strcmp(a, "--net-name"))
                opts.net_name = v;
            else
                opts.hw_arch = v;
        } else if (!strcmp(a, "--start-node-names") || !strcmp(a, "--end-node-names")) {
            bool is_start = a[2] == 's';
            i = take_list(argc, argv, i, is_start ? &start : &end,
                          is_start ? &opts.start_count : &opts.end_count);
            if ((is_start ? opts.start_count : opts.end_count) == 0) {
                fprintf(stderr, "hq parse: option '%s' needs at least one node name\n", a);
                return HQ_EXIT_FAILURE;
            }
        } else if (!strcmp(a, "--tensor-shapes")) {
            i = take_list(argc, argv, i, &shape_words, &shape_count);
            if (shape_count == 0 || shape_count > (int)(sizeof shapes / sizeof shapes[0])) {
                fprintf(stderr, "hq parse: option '%s' needs 1 to 8 shapes\n", a);
                return HQ_EXIT_FAILURE;
            }
            for (int k = 0; k < shape_count; k++)
                if (!parse_shape(shape_words[k], &shapes[k])) {
                    fprintf(stderr,
                            "hq parse: --tensor-shapes: '%s' is not a shape like 1,3,640,640\n",
                            shape_words[k]);
                    return HQ_EXIT_FAILURE;
                }
            opts.input_shapes = shapes;
            opts.input_shape_count = shape_count;
        } else if (hq_cli_is_quiet(a)) {
            continue; /* no progress bar to silence: accepted like every command */
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "hq parse: unknown option '%s'\n", a);
            return HQ_EXIT_FAILURE;
        } else if (model) {
            fprintf(stderr, "hq parse: one model at a time ('%s' and '%s')\n", model, a);
            return HQ_EXIT_FAILURE;
        } else {
            model = a;
        }
    }
    if (!model && (start || end || shape_words)) {
        /* the lists run to the next option, so a model written after one was taken as a name */
        fprintf(stderr, "hq parse: no model.onnx given (a list option takes every word up to "
                        "the next option: put the model before --start-node-names, "
                        "--end-node-names and --tensor-shapes)\n");
        return HQ_EXIT_FAILURE;
    }
    if (!model) {
        hq_cmd_parse_usage(stderr);
        return HQ_EXIT_FAILURE;
    }
    /* Without -o the archive is named after the network, in the current folder. */
    if (output ? hq_cli_check_output_file("hq parse", "-o", output) != HQ_EXIT_OK
               : hq_cli_check_output_folder("hq parse", "output folder", ".") != HQ_EXIT_OK)
        return HQ_EXIT_FAILURE;
    opts.start_nodes = start;
    opts.end_nodes = end;
    hq_error_t err = {0};
    hq_archive_t *archive = NULL;
    hq_status_t st = hq_parse_onnx(model, &opts, &archive, &err);
    char *path = NULL;
    if (st == HQ_OK && !output) {
        const char *net = hq_archive_net_name(archive);
        path = malloc(strlen(net) + 5);
        if (path)
            sprintf(path, "%s.har", net);
        output = path;
    }
    if (st == HQ_OK && output)
        st = hq_archive_save(archive, output, &err);
    if (st != HQ_OK) {
        hq_cli_report("hq parse", st, &err);
        hq_archive_destroy(archive);
        free(path);
        return HQ_EXIT_FAILURE;
    }
    hq_graph_t *graph = NULL;
    int layers = 0;
    if (hq_archive_graph(archive, &graph, &err) == HQ_OK)
        layers = hq_graph_layer_count(graph);
    printf("hq parse: wrote %s (%s, %d layers)\n", output, hq_archive_net_name(archive), layers);
    hq_archive_destroy(archive);
    free(path);
    return HQ_EXIT_OK;
}
