/* images.c — "TestImages": needs 3-channel image data and native statistics; reads raw samples
 * and reports the float (fp-optimized) and native statistics of the first conv. */
#include <stdlib.h>

#include "test_plugin.h"

static hq_status_t run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    (void)state;
    hq_shape_t shape = ctx->dataset_input_shape(ctx, 0);
    int64_t per_sample = shape.dims[0] * shape.dims[1] * shape.dims[2];
    float *pixels = malloc((size_t)per_sample * 2 * sizeof *pixels);
    if (!pixels)
        return HQ_ERR_NOMEM;
    hq_status_t st = ctx->read_samples(ctx, 0, 0, 2, pixels, err);
    if (st == HQ_OK) {
        int conv1 = ctx->find_layer(ctx, "conv1");
        const hq_layer_stats_t *f = ctx->layer_stats(ctx, HQ_STATS_FLOAT, conv1, 0);
        const hq_layer_stats_t *n = ctx->layer_stats(ctx, HQ_STATS_NATIVE, conv1, 0);
        hq_diag_number_t numbers[] = {{"first_pixel", pixels[0]},
                                      {"float_max", f ? f->max : -1},
                                      {"native_max", n ? n->max : -1},
                                      {"native_target", n ? (double)n->target : -1}};
        hq_diagnostic_t d = {.struct_size = sizeof d,
                             .level = HQ_DIAG_INFO,
                             .layer = -1,
                             .message = "images",
                             .numbers = numbers,
                             .number_count = 4};
        ctx->diagnostic(ctx, &d);
    }
    free(pixels);
    return st;
}

TEST_PLUGIN("TestImages", HQ_PRIORITY_LOW, HQ_NEEDS_RGB_IMAGES | HQ_NEEDS_NATIVE_STATS, run)
