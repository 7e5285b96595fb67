/* stats.c — "TestStats": reads the cached float statistics of the first input and of conv1,
 * reports them with their numbers, flags conv1's histogram for the HTML report, and saves a
 * small image. */
#include <stdint.h>

#include "test_plugin.h"

static hq_status_t run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    (void)state;
    int count;
    const int *inputs = ctx->inputs(ctx, &count);
    const hq_layer_stats_t *in = ctx->layer_stats(ctx, HQ_STATS_FLOAT, inputs[0], 0);
    if (!in) {
        ctx->skip(ctx, "no statistics");
        return HQ_OK;
    }
    hq_diag_number_t numbers[] = {{"min", in->min},
                                  {"max", in->max},
                                  {"mean", in->mean},
                                  {"samples", (double)in->samples},
                                  {"channel0_mean", in->channel_mean ? in->channel_mean[0] : -1}};
    hq_diagnostic_t d = {.struct_size = sizeof d,
                         .level = HQ_DIAG_INFO,
                         .layer = inputs[0],
                         .message = "Input statistics",
                         .numbers = numbers,
                         .number_count = 5};
    ctx->diagnostic(ctx, &d);
    int conv1 = ctx->find_layer(ctx, "conv1");
    const hq_layer_stats_t *c = ctx->layer_stats(ctx, HQ_STATS_FLOAT, conv1, 0);
    if (c) {
        hq_diag_number_t n2[] = {{"min", c->min},
                                 {"max", c->max},
                                 {"preact_mean0", c->preact_mean ? c->preact_mean[0] : 1e9}};
        hq_diagnostic_t w = {.struct_size = sizeof w,
                             .level = HQ_DIAG_WARNING,
                             .layer = conv1,
                             .message = "Activation range of conv1 (test)",
                             .numbers = n2,
                             .number_count = 3,
                             .flags = HQ_DIAG_SHOW_HISTOGRAM};
        ctx->diagnostic(ctx, &w);
    }
    uint8_t pixels[8 * 8 * 3];
    for (int i = 0; i < 8 * 8 * 3; i++)
        pixels[i] = (uint8_t)(i * 5);
    return ctx->write_image(ctx, "test_stats.png", 8, 8, 3, pixels, "a test image", err);
}

TEST_PLUGIN("TestStats", HQ_PRIORITY_LOW, HQ_NEEDS_FLOAT_STATS, run)
