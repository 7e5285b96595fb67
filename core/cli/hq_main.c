/* hq_main.c — the `hq` command: dispatches to one subcommand per pipeline stage. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

typedef struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    void (*usage)(FILE *out);
    const char *summary;
} subcommand_t;

static const subcommand_t subcommands[] = {
    {"info", hq_cmd_info, hq_cmd_info_usage,
     "show an archive's state, hardware, layers and model script"},
    {"parse", hq_cmd_parse, hq_cmd_parse_usage, "import an ONNX model into a new archive"},
    {"emulate", hq_cmd_emulate, hq_cmd_emulate_usage,
     "run the float network on a dataset, write outputs and tapped layers"},
    {"optimize", hq_cmd_optimize, hq_cmd_optimize_usage,
     "quantize a parsed archive with a model script and calibration data"},
    {"compile", hq_cmd_compile, hq_cmd_compile_usage,
     "compile a quantized archive into an integer program (.hqx)"},
    {"run", hq_cmd_run, hq_cmd_run_usage, "run a compiled program with the deploy runtime"},
    {"profile", hq_cmd_profile, hq_cmd_profile_usage,
     "per-layer MACs, weight bytes and an estimated throughput on a target"},
    {"analyze-noise", hq_cmd_analyze_noise, hq_cmd_analyze_noise_usage,
     "per-layer SQNR of a quantized archive (snr, partial_snr), stored in it"},
    {"compare", hq_cmd_compare, hq_cmd_compare_usage,
     "per-output SQNR, cosine and largest difference between two sets of outputs"},
};
enum { SUBCOMMAND_COUNT = sizeof subcommands / sizeof subcommands[0] };

static void usage(FILE *out)
{
    fprintf(out, "usage: hq [-h] [--version] COMMAND [ARGS...]\n\n"
                 "hq — post-training quantization toolchain for integer CNN accelerators.\n\n"
                 "commands:\n");
    for (int i = 0; i < SUBCOMMAND_COUNT; i++)
        fprintf(out, "  %-12s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(out, "\noptions:\n"
                 "  -h, --help                   show this help (hq COMMAND -h for a command)\n"
                 "  --version                    print the version\n"
                 "\nExit status: 0 success, 2 bad arguments or unreadable input.\n"
                 "See hq(1), hq-har(5), hq-alls(5).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return HQ_EXIT_FAILURE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(stdout);
        return HQ_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("hq %s\n", hq_version());
        return HQ_EXIT_OK;
    }
    for (int i = 0; i < SUBCOMMAND_COUNT; i++)
        if (!strcmp(argv[1], subcommands[i].name))
            return subcommands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "hq: unknown command '%s' (known:", argv[1]);
    for (int i = 0; i < SUBCOMMAND_COUNT; i++)
        fprintf(stderr, " %s", subcommands[i].name);
    fprintf(stderr, ")\n");
    return HQ_EXIT_FAILURE;
}
