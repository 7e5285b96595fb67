/* context.c — "TestContext": calls every slot of the context table that the other test plugins
 * leave alone and reports what it saw as the numbers of one finding ("Context"), which
 * tests/e2e/diag_context.sh compares with the fixture (tests/e2e/diag_fixtures.py): model state,
 * archive, graph, topological order, outputs, params and their tensors and scalars, the parsed
 * script, dataset facts, statistics availability, on-demand emulation (with taps, against the
 * cached statistics and against emulate_inputs on the same sample), questions, and write_file. */
#include <math.h> /* NAN, INFINITY (macros: no libm needed) */
#include <stdlib.h>
#include <string.h>

#include "test_plugin.h"

typedef struct seen {
    int conv1;
    float conv1_max;     /* tapped maximum of conv1's output over the run */
    int64_t samples;     /* samples the batches reported */
    int64_t taps;        /* tap calls for conv1 */
    float *first_output; /* model output 0 of sample 0, from the batch callback */
    int64_t output_size;
} seen_t;

static int64_t per_sample(const hq_shape_t *shape)
{
    int64_t n = 1;
    for (int d = 1; d < shape->ndim; d++)
        n *= shape->dims[d] > 0 ? shape->dims[d] : 1;
    return n;
}

static hq_status_t tap(void *user, int layer, int port, const hq_shape_t *shape, const float *data,
                       hq_error_t *err)
{
    (void)err;
    seen_t *s = user;
    if (layer != s->conv1 || port != 0)
        return HQ_OK;
    s->taps++;
    int64_t n = shape->dims[0] * per_sample(shape);
    for (int64_t i = 0; i < n; i++)
        if (data[i] > s->conv1_max)
            s->conv1_max = data[i];
    return HQ_OK;
}

static hq_status_t on_batch(void *user, int64_t first, int64_t count, const float *const *outputs,
                            hq_error_t *err)
{
    (void)err;
    seen_t *s = user;
    if (first == 0 && s->first_output)
        memcpy(s->first_output, outputs[0], (size_t)s->output_size * sizeof(float));
    s->samples += count;
    return HQ_OK;
}

static hq_status_t run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    (void)state;
    enum { MAX_NUMBERS = 40 };
    hq_diag_number_t n[MAX_NUMBERS];
    int k = 0;
#define NUMBER(NAME, VALUE) (n[k].name = (NAME), n[k].value = (double)(VALUE), k++)

    /* the model */
    NUMBER("state", ctx->model_state(ctx));
    NUMBER("has_archive", ctx->archive(ctx) != NULL);
    NUMBER("has_graph", ctx->graph(ctx) != NULL);
    int topo_count = 0, out_count = 0;
    const int *topo = ctx->topo_order(ctx, &topo_count);
    const int *outs = ctx->outputs(ctx, &out_count);
    NUMBER("topo_count", topo && topo_count == ctx->layer_count(ctx) ? topo_count : -1);
    NUMBER("output_count", out_count);

    /* params */
    NUMBER("has_native", ctx->params(ctx, HQ_PARAMS_NATIVE) != NULL);
    NUMBER("has_quantized", ctx->params(ctx, HQ_PARAMS_QUANTIZED) != NULL);
    int conv1 = ctx->find_layer(ctx, "conv1");
    const hq_tensor_t *kernel = ctx->layer_tensor(ctx, HQ_PARAMS_NATIVE, conv1, "kernel:0");
    NUMBER("kernel_ndim", kernel ? kernel->ndim : -1);
    double v = -1;
    NUMBER("qp_scale",
           ctx->layer_scalar(ctx, HQ_PARAMS_QUANTIZED, conv1, "qp_scale:0", &v) ? v : -1);
    v = -1;
    NUMBER("ratio_4bit",
           ctx->layer_scalar(ctx, HQ_PARAMS_QUANTIZED, -1, "compression/ratio_4bit:0", &v) ? v
                                                                                           : -1);
    NUMBER("absent_scalar", ctx->layer_scalar(ctx, HQ_PARAMS_QUANTIZED, conv1, "nope:0", &v));

    /* the script */
    NUMBER("has_script", ctx->script(ctx) != NULL);
    int qp = ctx->find_command(ctx, "quantization_param", 0);
    const hq_command_t *command = ctx->command(ctx, qp);
    NUMBER("qp_command_line",
           command && command->name && !strcmp(command->name, "quantization_param") ? command->line
                                                                                    : -1);
    NUMBER("qp_second", ctx->find_command(ctx, "quantization_param", qp + 1));

    /* the dataset */
    NUMBER("has_dataset", ctx->has_dataset(ctx));
    const char *path = ctx->dataset_path(ctx);
    size_t len = strlen(path);
    NUMBER("dataset_path_is_npy", len > 4 && !strcmp(path + len - 4, ".npy"));
    NUMBER("dataset_dtype", ctx->dataset_input_dtype(ctx, 0));
    NUMBER("dataset_dtype_out_of_range", ctx->dataset_input_dtype(ctx, 7));

    /* statistics */
    const char *why = NULL;
    NUMBER("float_stats", ctx->stats_available(ctx, HQ_STATS_FLOAT, NULL));
    NUMBER("quantized_stats", ctx->stats_available(ctx, HQ_STATS_QUANTIZED, &why));
    NUMBER("quantized_why_given", why != NULL && why[0] != '\0');
    const hq_layer_stats_t *stats = ctx->layer_stats(ctx, HQ_STATS_FLOAT, conv1, 0);
    NUMBER("stats_conv1_max", stats ? stats->max : NAN);

    /* on-demand emulation on the float target the statistics used */
    seen_t seen = {.conv1 = conv1, .conv1_max = -INFINITY};
    hq_inspector_layer_t out_layer = {.struct_size = sizeof out_layer};
    ctx->layer_info(ctx, outs[0], &out_layer);
    seen.output_size = per_sample(&out_layer.output_shape);
    seen.first_output = calloc((size_t)seen.output_size, sizeof(float));
    int64_t samples = ctx->sample_count(ctx);
    hq_target_t target = stats ? stats->target : HQ_TARGET_NATIVE;
    hq_status_t st = seen.first_output
                         ? ctx->emulate(ctx, target, 0, samples, on_batch, tap, &seen, err)
                         : HQ_ERR_NOMEM;
    NUMBER("emulate_status", st);
    NUMBER("emulate_samples", seen.samples);
    NUMBER("emulate_taps", seen.taps);
    NUMBER("emulate_conv1_max", seen.conv1_max);
    hq_error_t e2 = {0};
    NUMBER("emulate_outside_refused",
           ctx->emulate(ctx, target, samples - 1, 2, NULL, NULL, NULL, &e2) != HQ_OK);

    /* emulate_inputs on sample 0, read with read_samples: the same output as emulate gave */
    hq_shape_t in_shape = ctx->dataset_input_shape(ctx, 0);
    int64_t in_size = 1;
    for (int d = 0; d < in_shape.ndim; d++)
        in_size *= in_shape.dims[d];
    float *input = calloc((size_t)in_size, sizeof(float));
    float *output = calloc((size_t)seen.output_size, sizeof(float));
    double diff = -1;
    if (st == HQ_OK && input && output && ctx->read_samples(ctx, 0, 0, 1, input, err) == HQ_OK) {
        const float *inputs[1] = {input};
        float *outputs[1] = {output};
        if (ctx->emulate_inputs(ctx, target, 1, inputs, outputs, NULL, NULL, err) == HQ_OK) {
            diff = 0;
            for (int64_t i = 0; i < seen.output_size; i++) {
                double delta = (double)output[i] - seen.first_output[i];
                delta = delta < 0 ? -delta : delta;
                diff = delta > diff ? delta : diff;
            }
        }
    }
    NUMBER("emulate_inputs_max_diff", diff);
    free(input);
    free(output);
    free(seen.first_output);

    /* questions (answered by the host: defaults when not interactive) */
    static const char *const colours[] = {"red", "green", "blue"};
    NUMBER("interactive", ctx->interactive(ctx));
    NUMBER("answer_yes_no", ctx->ask_yes_no(ctx, "Context question?", true));
    NUMBER("answer_choice", ctx->ask_choice(ctx, "Pick a colour", colours, 3, 2));

    /* files */
    static const char text[] = "written by TestContext\n";
    hq_error_t e3 = {0};
    NUMBER("write_file_status", ctx->write_file(ctx, "context.txt", text, sizeof text - 1, &e3));
    hq_error_t e4 = {0};
    NUMBER("write_file_escape_refused",
           ctx->write_file(ctx, "../escape.txt", text, sizeof text - 1, &e4) != HQ_OK);
    NUMBER("output_dir_set", ctx->output_dir(ctx)[0] != '\0');
#undef NUMBER

    hq_diagnostic_t d = {.struct_size = sizeof d,
                         .level = HQ_DIAG_INFO,
                         .layer = -1,
                         .message = "Context",
                         .numbers = n,
                         .number_count = k};
    ctx->diagnostic(ctx, &d);
    return HQ_OK;
}

TEST_PLUGIN("TestContext", HQ_PRIORITY_LOW, HQ_NEEDS_FLOAT_STATS, run)
