/* cmd_optimize.c — `hq optimize model.har -d CALIB`: quantizes a parsed archive with a model
 * script and a calibration set, and writes the quantized archive. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "hq/quantize.h"

static const hq_cli_option_t optimize_options[] = {
    {"-d, --dataset PATH", "calibration data: .npy, .npz (one array per input) or an image folder"},
    {"-m, --model-script PATH", "model script (.alls) to apply (default: the archive's own)"},
    {"-o, --output PATH", "quantized archive to write (default: <model>_quantized.har)"},
    {"--hw-arch ARCH", "target architecture (default: the archive's hw_arch)"},
    {"-j, --threads N", "threads of every optimizer pass (default: HQ_THREADS or the cores)"},
    {"-v, --verbose", "also print debug lines (per-batch progress, equalized pairs)"},
    {"--no-noise-analysis", "skip the closing noise analysis (no snr keys in the archive)"},
    HQ_CLI_QUIET_OPTION,
    {"-h, --help", "show this help"},
    {NULL, NULL},
};

void hq_cmd_optimize_usage(FILE *out)
{
    fprintf(out,
            "usage: hq optimize [-h] model.har -d CALIB [-m script.alls] [-o out.har]\n"
            "                   [--hw-arch ARCH] [-j N] [-v] [--no-noise-analysis] [-q]\n\n"
            "Quantizes a parsed archive: applies the model script, folds and equalizes in\n"
            "float, calibrates on the first calibset_size samples of CALIB, chooses per-layer\n"
            "precision, ranges and compression, builds the integer params, runs the\n"
            "post-quantization algorithms (bias correction) and writes the archive in state\n"
            "quantized_model. Decisions are printed as they are made: the optimization level\n"
            "first, then per algorithm run or skipped and why, its time and the output SQNR\n"
            "it gained, measured on the last samples of CALIB beyond calibset_size (at most\n"
            "16), else on calibration samples.\n"
            "Last, a simple noise analysis over the calibration samples stores each layer's\n"
            "snr (what hq-diag's HighPrecision inspector reads) unless --no-noise-analysis.\n\n"
            "options:\n");
    hq_cli_print_options(out, optimize_options);
}

static const char *const level_names[] = {"debug", "info", "warning", "error"};

typedef struct log_state {
    bool verbose;
    hq_cli_progress_t *bar; /* ended before a line is printed */
} log_state_t;

static void print_log(void *user, hq_log_level_t level, const char *message)
{
    const log_state_t *state = user;
    if (level == HQ_LOG_DEBUG && !state->verbose)
        return;
    hq_cli_progress_end(state->bar);
    printf("[%s] %s\n", level_names[level >= 0 && level <= HQ_LOG_ERROR ? level : 1], message);
    fflush(stdout);
}

static hq_status_t read_script(const char *path, hq_script_t **out, hq_error_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err->message, sizeof err->message, "%s: cannot open the model script", path);
        return err->status = HQ_ERR_IO;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *grown = cap > ((size_t)64 << 20) + 8192 ? NULL : realloc(text, cap);
            if (!grown) {
                free(text);
                fclose(f);
                snprintf(err->message, sizeof err->message, "%s: model script too large", path);
                return err->status = HQ_ERR_LIMIT;
            }
            text = grown;
        }
        size_t got = fread(text + len, 1, 4096, f);
        len += got;
        if (got < 4096)
            break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(text);
        snprintf(err->message, sizeof err->message, "%s: read error", path);
        return err->status = HQ_ERR_IO;
    }
    text[len] = '\0';
    hq_status_t st = hq_script_parse(text, len, path, out, err);
    free(text);
    return st;
}

int hq_cmd_optimize(int argc, char **argv)
{
    const char *model = NULL, *data = NULL, *output = NULL, *script_path = NULL, *hw_arch = NULL;
    long long threads = 0;
    bool quiet = false, no_noise_analysis = false;
    hq_cli_progress_t bar;
    log_state_t log_state = {false, &bar};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            hq_cmd_optimize_usage(stdout);
            return HQ_EXIT_OK;
        }
        bool takes_value = !strcmp(a, "-d") || !strcmp(a, "--dataset") || !strcmp(a, "-o") ||
                           !strcmp(a, "--output") || !strcmp(a, "-m") ||
                           !strcmp(a, "--model-script") || !strcmp(a, "--hw-arch") ||
                           !strcmp(a, "-j") || !strcmp(a, "--threads");
        if (takes_value && !next)
            return hq_cli_fail("hq optimize", "option needs a value:", a);
        if (!strcmp(a, "-d") || !strcmp(a, "--dataset")) {
            data = argv[++i];
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            output = argv[++i];
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model-script")) {
            script_path = argv[++i];
        } else if (!strcmp(a, "--hw-arch")) {
            hw_arch = argv[++i];
        } else if (!strcmp(a, "-j") || !strcmp(a, "--threads")) {
            if (!hq_cli_parse_int(argv[++i], 1, 1024, &threads))
                return hq_cli_fail("hq optimize", "threads must be an integer from 1 to 1024, got",
                                   argv[i]);
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            log_state.verbose = true;
        } else if (!strcmp(a, "--no-noise-analysis")) {
            no_noise_analysis = true;
        } else if (hq_cli_is_quiet(a)) {
            quiet = true;
        } else if (hq_cli_positional("hq optimize", "archive", a, &model) != HQ_EXIT_OK) {
            return HQ_EXIT_FAILURE;
        }
    }
    if (!model || !data) {
        hq_cmd_optimize_usage(stderr);
        return HQ_EXIT_FAILURE;
    }
    char *out_path = output ? NULL : hq_cli_derived_name(model, "_quantized.har");
    if (!output && !out_path)
        return hq_cli_fail("hq optimize", "out of memory", NULL);
    if (!output)
        output = out_path;
    if (hq_cli_check_output_file("hq optimize", out_path ? "output" : "-o", output) != HQ_EXIT_OK) {
        free(out_path);
        return HQ_EXIT_FAILURE;
    }

    hq_cli_progress_init(&bar, quiet);
    hq_error_t err = {0};
    hq_archive_t *archive = NULL;
    hq_graph_t *graph = NULL;
    hq_dataset_t *dataset = NULL;
    hq_script_t *script = NULL;
    hq_status_t st = hq_archive_open(model, &archive, &err);
    if (st == HQ_OK)
        st = hq_archive_graph(archive, &graph, &err);
    if (st == HQ_OK && script_path)
        st = read_script(script_path, &script, &err);
    if (st == HQ_OK)
        st = hq_dataset_open(data, graph, &dataset, &err);
    if (st == HQ_OK) {
        printf("hq optimize: %s -> %s (calibration data %s%s%s)\n", model, output, data,
               script_path ? ", script " : "", script_path ? script_path : "");
        hq_optimize_options_t options = {0};
        options.hw_arch = hw_arch;
        options.threads = (int)threads;
        options.log = print_log;
        options.log_user = &log_state;
        options.script_name = script_path ? script_path : model;
        options.progress = hq_cli_progress;
        options.progress_user = &bar;
        options.no_noise_analysis = no_noise_analysis;
        st = hq_optimize(archive, script, dataset, &options, &err);
        hq_cli_progress_end(&bar);
    }
    if (st == HQ_OK)
        st = hq_archive_save(archive, output, &err);
    if (st == HQ_OK)
        printf("hq optimize: wrote %s (state %s)\n", output,
               hq_model_state_name(hq_archive_state(archive)));
    else
        hq_cli_report("hq optimize", st, &err);
    hq_script_destroy(script);
    hq_dataset_destroy(dataset);
    hq_archive_destroy(archive);
    free(out_path);
    return st == HQ_OK ? HQ_EXIT_OK : HQ_EXIT_FAILURE;
}
