/* concat_outputs.c — ConcatenatedOutputsInspector (MEDIUM): outputs that are concats.
 *
 * An output layer fed by a concat gets a warning naming the concat, the layers before it (and
 * their original names), and saying they could be the outputs instead: the inputs of a concat
 * share one quantization range (docs/numerics.md), so a narrow head concatenated with a wide one loses
 * resolution. Beyond the original tool: the range each concat input has alone against the shared
 * range, and the bits that costs it (log2 of the ratio of the widths), from the float statistics
 * of this run or, without -d, the calibration ranges stored in q.npz. It is a warning when some
 * input loses at least one bit, an info below (or a warning when no range could be read). */
#include "inspector_util.h"

/* The shared range costs an input log2(shared width / own width) bits, 6.02 dB of its SQNR each.
 * Below one bit it is an info: the bundled sample's two heads lose 0.7 and 0.6 bits and its
 * output stays at 42.6 dB (docs/inspectors.md). */
#define MIN_BITS_LOST 1.0

/* Range [lo, hi] of a layer's output (union with 0, as the quantizer builds ranges). */
static bool layer_range(hq_inspector_context_t *ctx, int l, int port, double *lo, double *hi)
{
    const hq_layer_stats_t *s = ctx->layer_stats(ctx, HQ_STATS_FLOAT, l, port);
    if (s) {
        *lo = fmin(s->min, 0), *hi = fmax(s->max, 0);
        return true;
    }
    const hq_tensor_t *t =
        ctx->layer_tensor(ctx, HQ_PARAMS_QUANTIZED, l, "stats/output_0/stats_limvals:0");
    if (t && t->dtype == HQ_DTYPE_FLOAT32 && hq_tensor_count(t) == 2) {
        const float *v = t->data;
        *lo = fmin(v[0], 0), *hi = fmax(v[1], 0);
        return true;
    }
    return false;
}

/* The concat feeding output `out`, through layers that keep the values (reshape, transpose), or
 * -1. */
static int feeding_concat(hq_inspector_context_t *ctx, int out)
{
    hq_inspector_layer_t l;
    bool found = insp_layer(ctx, out, &l);
    for (int hops = 0; found && l.input_count == 1 && hops < 8; hops++) {
        int p = l.inputs[0];
        hq_inspector_layer_t pl;
        if (!insp_layer(ctx, p, &pl))
            return -1;
        if (pl.type == HQ_LAYER_CONCAT)
            return p;
        if (pl.type != HQ_LAYER_RESHAPE && pl.type != HQ_LAYER_TRANSPOSE)
            return -1;
        l = pl;
    }
    return -1;
}

static void inspect_output(hq_inspector_context_t *ctx, int out)
{
    int concat = feeding_concat(ctx, out);
    if (concat < 0)
        return;
    hq_inspector_layer_t concat_layer, *c = &concat_layer;
    insp_layer(ctx, concat, c);
    insp_text_t names = {.len = 0}, ranges = {.len = 0};
    double clo, chi;
    bool have_shared = layer_range(ctx, concat, 0, &clo, &chi);
    double worst = 0;
    for (int i = 0; i < c->input_count; i++) {
        hq_inspector_layer_t input_layer, *in = &input_layer;
        if (!insp_layer(ctx, c->inputs[i], in))
            continue;
        insp_append(&names, "%s%s", i ? ", " : "", in->bare_name);
        if (in->original_name_count > 0) {
            insp_append(&names, " (");
            for (int k = 0; k < in->original_name_count; k++)
                insp_append(&names, "%s%s", k ? ", " : "", in->original_names[k]);
            insp_append(&names, ")");
        }
        double lo, hi;
        if (have_shared && layer_range(ctx, c->inputs[i], c->input_ports[i], &lo, &hi) &&
            hi - lo > 0) {
            double lost = log2((chi - clo) / (hi - lo));
            worst = fmax(worst, lost);
            insp_append(&ranges, "%s%s [%.4g, %.4g] (%.1f bits lost)", ranges.len ? ", " : "",
                        in->bare_name, lo, hi, lost > 0 ? lost : 0.0);
        }
    }
    insp_text_t msg = {.len = 0};
    insp_append(&msg,
                "Output layer %s is fed by concat layer %s of %s; they share one quantization "
                "range, and these layers could be the model outputs instead",
                insp_name(ctx, out), c->bare_name, names.buf);
    hq_diag_number_t nums[3];
    int k = 0;
    if (have_shared && ranges.len) {
        insp_append(&msg, ". Shared range [%.4g, %.4g]; alone: %s", clo, chi, ranges.buf);
        nums[k++] = (hq_diag_number_t){"shared_min", clo};
        nums[k++] = (hq_diag_number_t){"shared_max", chi};
        nums[k++] = (hq_diag_number_t){"max_bits_lost", worst};
    }
    /* measured ranges: a warning when an input loses at least a bit (6 dB of its SQNR), an info
     * below; unmeasured: a warning, as the original tool */
    hq_diag_level_t level =
        have_shared && ranges.len && worst < MIN_BITS_LOST ? HQ_DIAG_INFO : HQ_DIAG_WARNING;
    insp_emit(ctx, level, concat, HQ_DIAG_SHOW_HISTOGRAM, nums, k, "%s", msg.buf);
}

static hq_status_t run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    (void)state;
    (void)err;
    int count = 0;
    const int *outputs = ctx->outputs(ctx, &count);
    for (int i = 0; i < count; i++)
        inspect_output(ctx, outputs[i]);
    return HQ_OK;
}

HQ_INSPECTOR_DEFINE("ConcatenatedOutputsInspector",
                    "outputs fed by a concat, whose inputs share one quantization range",
                    HQ_PRIORITY_MEDIUM, 0, run)
