/* layers_1_0.c — "TestLayers10": a module as it was written and built against ABI 1.0. It is
 * compiled with the frozen 1.0 headers of v1_0_include/ (never the current include/) and reads
 * every layer through the 1.0 `layer` slot as a 1.0 hq_layer_t; the dump it writes
 * (layers_1_0.txt) must equal what layers.c reads through the current ABI. */
#define DUMP_LAYER_T hq_layer_t
#define DUMP_PARAMS_T hq_layer_params_t
#include "layer_dump.h"

#if HQ_INSPECTOR_ABI_VERSION != 1
#error "layers_1_0.c must be built against the 1.0 headers of tests/plugins/abi/v1_0_include"
#endif

static hq_status_t run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    (void)state;
    dump_text_t text = {0};
    for (int i = 0; i < ctx->layer_count(ctx); i++) {
        const hq_layer_t *l = ctx->layer(ctx, i);
        if (l)
            dump_layer(&text, i, l, &l->params);
    }
    dump_printf(&text, "out_of_range=%d\n", ctx->layer(ctx, ctx->layer_count(ctx)) == NULL);
    return dump_write(ctx, &text, "layers_1_0.txt", err);
}

TEST_PLUGIN("TestLayers10", HQ_PRIORITY_LOW, 0, run)
