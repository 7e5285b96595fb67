/* noise.c — "TestNoise": needs the quantized statistics pass and noise analysis; reports each
 * layer's SQNR, the output SQNR and the quantized range of the first conv. */
#include "test_plugin.h"

static hq_status_t run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    (void)state;
    (void)err;
    for (int l = 0; l < ctx->layer_count(ctx); l++) {
        const hq_layer_noise_t *n = ctx->layer_noise(ctx, l);
        if (n && n->has_cumulative) {
            hq_diag_number_t numbers[] = {{"sqnr_db", n->cumulative_db}};
            hq_diagnostic_t d = {.struct_size = sizeof d,
                                 .level = HQ_DIAG_INFO,
                                 .layer = l,
                                 .message = n->source,
                                 .numbers = numbers,
                                 .number_count = 1};
            ctx->diagnostic(ctx, &d);
        }
    }
    double db;
    if (ctx->output_sqnr(ctx, 0, &db)) {
        hq_diag_number_t numbers[] = {{"sqnr_db", db}};
        hq_diagnostic_t d = {.struct_size = sizeof d,
                             .level = HQ_DIAG_INFO,
                             .layer = -1,
                             .message = "output SQNR",
                             .numbers = numbers,
                             .number_count = 1};
        ctx->diagnostic(ctx, &d);
    }
    int conv1 = ctx->find_layer(ctx, "conv1");
    const hq_layer_stats_t *q = ctx->layer_stats(ctx, HQ_STATS_QUANTIZED, conv1, 0);
    const hq_layer_stats_t *f = ctx->layer_stats(ctx, HQ_STATS_FLOAT, conv1, 0);
    if (q && f) {
        hq_diag_number_t numbers[] = {{"float_max", f->max}, {"quantized_max", q->max}};
        hq_diagnostic_t d = {.struct_size = sizeof d,
                             .level = HQ_DIAG_INFO,
                             .layer = conv1,
                             .message = "conv1 range, float and quantized",
                             .numbers = numbers,
                             .number_count = 2};
        ctx->diagnostic(ctx, &d);
    }
    return HQ_OK;
}

TEST_PLUGIN("TestNoise", HQ_PRIORITY_LOW, HQ_NEEDS_QUANTIZED_STATS | HQ_NEEDS_NOISE_ANALYSIS, run)
