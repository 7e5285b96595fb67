/* cmd_profile.c — `hq profile model_quantized.har [--hw-arch ARCH] [--all]`: the ESTIMATED
 * throughput from hq's cost model (docs/deploy.md), then per-layer MACs, weight bytes, precision
 * and share of the frame time, the costliest layers first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "hq/deploy.h"

static const hq_cli_option_t profile_options[] = {
    {"--hw-arch ARCH", "target architecture (default: the archive's hw_arch)"},
    {"--a16 LAYER", "estimate as if LAYER were a16_w16 (repeatable): what raising it costs"},
    {"--all", "list every layer, also those without MACs or weights"},
    HQ_CLI_QUIET_OPTION,
    {"-h, --help", "show this help"},
    {NULL, NULL},
};

void hq_cmd_profile_usage(FILE *out)
{
    fprintf(out,
            "usage: hq profile [-h] model_quantized.har [--hw-arch ARCH] [--a16 LAYER ...] [--all]\n"
            "                  [-q]\n\n"
            "Prints an ESTIMATED throughput (frames per second) from hq's per-architecture cost\n"
            "model (docs/deploy.md): a total line, then one row per layer with its precision,\n"
            "multiply-accumulates, weight bytes, compute and memory time and share of the frame,\n"
            "sorted by share (largest first), then the breakdown. Layers without MACs or weights\n"
            "(constants, outputs, data movement) are summed in one line unless --all lists them.\n"
            "16-bit MACs cost 2x or 4x, 4-bit weights halve weight bytes, weights beyond the\n"
            "weight memory stream. An estimate from a documented model, not a measurement or\n"
            "vendor data.\n\n"
            "options:\n");
    hq_cli_print_options(out, profile_options);
}

/* A layer that does no arithmetic and holds no weights: a constant, an output, data movement.
 * It costs only the per-layer overhead and its activation traffic. */
static bool moves_data_only(const hq_layer_cost_t *c)
{
    return c->macs == 0 && c->weight_bytes == 0;
}

/* Largest share of the frame first; equal shares keep the topological order. */
static int by_share(const void *a, const void *b)
{
    const hq_layer_cost_t *x = *(const hq_layer_cost_t *const *)a;
    const hq_layer_cost_t *y = *(const hq_layer_cost_t *const *)b;
    if (x->seconds != y->seconds)
        return x->seconds > y->seconds ? -1 : 1;
    return (x > y) - (x < y);
}

static double share_percent(const hq_profile_t *pr, double seconds)
{
    return pr->seconds_per_frame > 0 ? 100.0 * seconds / pr->seconds_per_frame : 0.0;
}

/* The layer table: rows sorted by share, data-movement layers summed in one line unless `all`. */
static void print_layers(const hq_profile_t *pr, bool all)
{
    const hq_layer_cost_t **rows = malloc(((size_t)pr->layer_count + 1) * sizeof *rows);
    if (!rows) {
        fprintf(stderr, "hq profile: out of memory\n");
        return;
    }
    for (int i = 0; i < pr->layer_count; i++)
        rows[i] = &pr->layers[i];
    qsort(rows, (size_t)pr->layer_count, sizeof *rows, by_share);
    printf("%-36s %-16s %-10s %14s %12s %10s %10s %7s\n", "layer", "type", "precision", "MACs",
           "weight B", "compute us", "memory us", "share");
    int hidden = 0;
    double hidden_seconds = 0.0;
    for (int i = 0; i < pr->layer_count; i++) {
        const hq_layer_cost_t *c = rows[i];
        if (!all && moves_data_only(c)) {
            hidden++;
            hidden_seconds += c->seconds;
            continue;
        }
        printf("%-36s %-16s %-10s %14lld %12lld %10.2f %10.2f %6.1f%%\n", c->name, c->type,
               c->precision, (long long)c->macs, (long long)c->weight_bytes,
               c->compute_seconds * 1e6, c->memory_seconds * 1e6,
               share_percent(pr, c->seconds));
    }
    if (hidden)
        printf("(%d layer(s) without MACs or weights not listed: %.1f%% of the frame; --all lists "
               "them)\n",
               hidden, share_percent(pr, hidden_seconds));
    free(rows);
}

int hq_cmd_profile(int argc, char **argv)
{
    const char *model = NULL, *hw_arch = NULL;
    bool all = false;
    const char **raise = calloc((size_t)argc + 1, sizeof *raise);
    int raise_count = 0;
    if (!raise)
        return hq_cli_fail("hq profile", "out of memory", NULL);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            hq_cmd_profile_usage(stdout);
            free(raise);
            return HQ_EXIT_OK;
        }
        if ((!strcmp(a, "--hw-arch") || !strcmp(a, "--a16")) && i + 1 >= argc) {
            free(raise);
            return hq_cli_fail("hq profile", "option needs a value:", a);
        }
        if (!strcmp(a, "--hw-arch")) {
            hw_arch = argv[++i];
        } else if (!strcmp(a, "--a16")) {
            raise[raise_count++] = argv[++i];
        } else if (!strcmp(a, "--all")) {
            all = true;
        } else if (hq_cli_is_quiet(a)) {
            continue; /* no progress bar to silence: accepted like every command */
        } else if (hq_cli_positional("hq profile", "archive", a, &model) != HQ_EXIT_OK) {
            free(raise);
            return HQ_EXIT_FAILURE;
        }
    }
    if (!model) {
        hq_cmd_profile_usage(stderr);
        free(raise);
        return HQ_EXIT_FAILURE;
    }
    hq_error_t err = {0};
    hq_archive_t *archive = NULL;
    hq_profile_t *pr = NULL;
    hq_status_t st = hq_archive_open(model, &archive, &err);
    if (st == HQ_OK)
        st = hq_profile(archive, hw_arch, raise, raise_count, &pr, &err);
    if (st != HQ_OK) {
        hq_cli_report("hq profile", st, &err);
        hq_archive_destroy(archive);
        free(raise);
        return HQ_EXIT_FAILURE;
    }
    const hq_cost_model_t *m = &pr->model;
    printf("ESTIMATE for %s from hq's cost model (docs/deploy.md): not a measurement, not vendor "
           "data\n",
           m->hw_arch);
    printf("model: %.3g MAC/s effective at a8_w8; a16_w8 x%.0f, a8_w16 x%.0f, a16_w16 x%.0f; "
           "weight memory %.0f MiB\n",
           m->macs_per_second, m->cost_a16_w8, m->cost_a8_w16, m->cost_a16_w16,
           m->weight_memory_bytes / (1 << 20));
    printf("total: %d layer(s), %.3f GMAC per frame, %.2f MiB of weights (%s the %.0f MiB weight "
           "memory%s), %.3f ms per frame, %.1f FPS%s\n\n",
           pr->layer_count, (double)pr->total_macs / 1e9,
           (double)pr->total_weight_bytes / (1 << 20), pr->weights_stream ? "exceed" : "fit",
           m->weight_memory_bytes / (1 << 20), pr->weights_stream ? ": they stream every frame" : "",
           pr->seconds_per_frame * 1e3, pr->fps,
           raise_count ? " with the --a16 layers at a16_w16" : "");
    print_layers(pr, all);
    printf("\n");
    printf("per frame: compute %.3f ms, memory %.3f ms, overhead %.3f ms (a layer costs the "
           "larger of its compute and memory time, plus overhead)\n",
           pr->compute_seconds * 1e3, pr->memory_seconds * 1e3, pr->overhead_seconds * 1e3);
    printf("estimated throughput: %.1f FPS (%.3f ms per frame)%s\n", pr->fps,
           pr->seconds_per_frame * 1e3, raise_count ? " with the --a16 layers at a16_w16" : "");
    hq_profile_destroy(pr);
    hq_archive_destroy(archive);
    free(raise);
    return HQ_EXIT_OK;
}
