/* cmd_info.c — `hq info model.har`: what an archive holds, readable at a glance. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

static const hq_cli_option_t info_options[] = {
    HQ_CLI_QUIET_OPTION,
    {"-h, --help", "show this help"},
    {NULL, NULL},
};

void hq_cmd_info_usage(FILE *out)
{
    fprintf(out, "usage: hq info [-h] [-q] model.har\n\n"
                 "Shows the archive's network name, state, hardware architecture, a table of\n"
                 "layers (name, type, input and output shapes, parameter count, precision once\n"
                 "quantized), the parameter sets present, and the model script.\n\noptions:\n");
    hq_cli_print_options(out, info_options);
}

static void format_shape(const hq_shape_t *shape, char *out, size_t size)
{
    size_t used = 0;
    used += (size_t)snprintf(out + used, size - used, "(");
    for (int d = 0; d < shape->ndim && used < size; d++)
        used += (size_t)snprintf(out + used, size - used, d ? ",%lld" : "%lld",
                                 (long long)shape->dims[d]);
    if (used < size)
        snprintf(out + used, size - used, ")");
}

static void print_layers(const hq_graph_t *graph)
{
    int order_count = 0;
    const int *order = hq_graph_topo_order(graph, &order_count);
    printf("\n%-32s %-18s %-22s %-18s %10s  %s\n", "layer", "type", "input", "output", "params",
           "precision");
    int64_t total = 0;
    for (int i = 0; i < order_count; i++) {
        const hq_layer_t *layer = hq_graph_layer(graph, order[i]);
        char in[64] = "-", out[64];
        if (layer->input_shape_count > 0)
            format_shape(&layer->input_shapes[0], in, sizeof in);
        if (layer->input_shape_count > 1)
            strncat(in, " +", sizeof in - strlen(in) - 1);
        format_shape(&layer->output_shape, out, sizeof out);
        int64_t params = hq_layer_param_count(layer);
        total += params;
        printf("%-32s %-18s %-22s %-18s %10lld  %s\n", layer->name, hq_layer_type_name(layer->type),
               in, out, (long long)params, layer->precision_mode[0] ? layer->precision_mode : "-");
    }
    printf("%d layers, %lld parameters\n", order_count, (long long)total);
}

static int print_script(const hq_script_t *script)
{
    hq_error_t err = {0};
    char *text = NULL;
    hq_status_t st = hq_script_print(script, &text, &err);
    if (st != HQ_OK) {
        hq_cli_report("hq info", st, &err);
        return HQ_EXIT_FAILURE;
    }
    printf("\nmodel script (%d lines):\n", hq_script_command_count(script));
    if (text[0])
        fputs(text, stdout);
    free(text);
    return HQ_EXIT_OK;
}

int hq_cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            hq_cmd_info_usage(stdout);
            return HQ_EXIT_OK;
        }
        if (hq_cli_is_quiet(argv[i]))
            continue; /* no progress bar to silence: accepted like every command */
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "hq info: unknown option '%s'\n", argv[i]);
            return HQ_EXIT_FAILURE;
        }
        if (path) {
            fprintf(stderr, "hq info: one archive at a time ('%s' and '%s')\n", path, argv[i]);
            return HQ_EXIT_FAILURE;
        }
        path = argv[i];
    }
    if (!path) {
        hq_cmd_info_usage(stderr);
        return HQ_EXIT_FAILURE;
    }

    hq_error_t err = {0};
    hq_archive_t *archive = NULL;
    hq_graph_t *graph = NULL;
    hq_status_t st = hq_archive_open(path, &archive, &err);
    if (st == HQ_OK)
        st = hq_archive_graph(archive, &graph, &err);
    /* Decode every params set now so that a corrupt member is reported before anything prints. */
    static const hq_params_kind_t kinds[] = {HQ_PARAMS_NATIVE, HQ_PARAMS_FP_OPTIMIZED,
                                             HQ_PARAMS_QUANTIZED};
    static const char *kind_names[] = {"native", "fp_optimized", "quantized"};
    size_t key_counts[3] = {0};
    for (int k = 0; k < 3 && st == HQ_OK; k++) {
        if (!hq_archive_has_params(archive, kinds[k]))
            continue;
        hq_npz_t *params = NULL;
        st = hq_archive_params(archive, kinds[k], &params, &err);
        if (st == HQ_OK)
            key_counts[k] = hq_npz_count(params);
    }
    hq_script_t *script = NULL;
    if (st == HQ_OK)
        st = hq_archive_script(archive, &script, &err);
    if (st != HQ_OK) {
        hq_cli_report("hq info", st, &err);
        hq_archive_destroy(archive);
        return HQ_EXIT_FAILURE;
    }

    printf("archive:   %s\n", path);
    printf("network:   %s\n", hq_archive_net_name(archive));
    printf("state:     %s\n", hq_model_state_name(hq_archive_state(archive)));
    printf("hw_arch:   %s\n", hq_archive_hw_arch(archive));
    const char *writer = hq_archive_writer_version(archive);
    printf("written by: hq %s\n", writer[0] ? writer : "(unknown)");
    printf("params:   ");
    int any = 0;
    for (int k = 0; k < 3; k++)
        if (hq_archive_has_params(archive, kinds[k])) {
            printf(" %s (%zu arrays)", kind_names[k], key_counts[k]);
            any = 1;
        }
    printf("%s\n", any ? "" : " none");
    int in_count = 0, out_count = 0;
    const int *ins = hq_graph_inputs(graph, &in_count);
    const int *outs = hq_graph_outputs(graph, &out_count);
    printf("inputs:   ");
    for (int i = 0; i < in_count; i++)
        printf(" %s", hq_graph_layer(graph, ins[i])->name);
    printf("\noutputs:  ");
    for (int i = 0; i < out_count; i++)
        printf(" %s", hq_graph_layer(graph, outs[i])->name);
    printf("\n");
    print_layers(graph);
    int rc = print_script(script);
    hq_archive_destroy(archive);
    return rc;
}
