/* layers.c — "TestLayers": the same dump as layers_1_0.c, read through the current ABI's
 * layer_info and layer_params (layers.txt), plus what only they give: port and param counts,
 * the sizes the host reports filling, and a module struct larger than the host's. */
#include <hq/inspector.h>
#define DUMP_LAYER_T hq_inspector_layer_t
#define DUMP_PARAMS_T hq_inspector_params_t
#include "layer_dump.h"

/* A module built against a future header with one more field than the host knows. */
typedef struct layer_plus_one {
    hq_inspector_layer_t known;
    int64_t future_field;
} layer_plus_one_t;

static hq_status_t run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    (void)state;
    dump_text_t text = {0};
    int n = ctx->layer_count(ctx);
    for (int i = 0; i < n; i++) {
        hq_inspector_layer_t l = {.struct_size = sizeof l};
        hq_inspector_params_t p = {.struct_size = sizeof p};
        if (ctx->layer_info(ctx, i, &l) && ctx->layer_params(ctx, i, &p))
            dump_layer(&text, i, &l, &p);
    }
    hq_inspector_layer_t none = {.struct_size = sizeof none};
    dump_printf(&text, "out_of_range=%d\n",
                !ctx->layer_info(ctx, n, &none) && !ctx->layer_info(ctx, -1, &none));
    if (n > 0) {
        hq_inspector_layer_t l = {.struct_size = sizeof l};
        hq_inspector_params_t p = {.struct_size = sizeof p};
        layer_plus_one_t bigger = {.known.struct_size = sizeof bigger, .future_field = -1};
        /* an older module: its struct ends before `type` */
        hq_inspector_layer_t older = {.struct_size = offsetof(hq_inspector_layer_t, type),
                                      .type = (hq_layer_type_t)77};
        ctx->layer_info(ctx, 0, &l);
        ctx->layer_params(ctx, 0, &p);
        ctx->layer_info(ctx, 0, &bigger.known);
        ctx->layer_info(ctx, 0, &older);
        dump_printf(&text,
                    "layer_size=%d params_size=%d bigger_filled=%d future_zeroed=%d "
                    "older_filled=%d older_type_untouched=%d older_name=%s\n",
                    l.struct_size == sizeof l, p.struct_size == sizeof p,
                    bigger.known.struct_size == sizeof l, bigger.future_field == 0,
                    older.struct_size == offsetof(hq_inspector_layer_t, type),
                    (int)older.type == 77, older.bare_name);
    }
    for (int i = 0; i < n; i++) {
        hq_inspector_layer_t l = {.struct_size = sizeof l};
        ctx->layer_info(ctx, i, &l);
        dump_printf(&text, "%d ports=%d params=%lld\n", i, l.port_count, (long long)l.param_count);
    }
    return dump_write(ctx, &text, "layers.txt", err);
}

TEST_PLUGIN("TestLayers", HQ_PRIORITY_LOW, 0, run)
