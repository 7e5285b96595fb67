/* norm.c — NormInspector (HIGH): is every input normalized exactly once?
 *
 * Static: an input with no normalization layer on its path; a normalization whose constants are
 * all below 1 (the 0-1 scale of torchvision's Normalize, suspicious for 0-255 camera data).
 * Data (when a dataset is given): per-channel mean/std (per sample, then averaged; std = sqrt of
 * the mean per-sample variance) at each normalization output and at inputs without one; outside
 * mean (-2, 5) / std (0.1, 5) is an error ("not normalized" above, "normalized twice" below);
 * data that already looks normalized (every channel mean in [-0.5, 1], std in [0.1, 2]) in front
 * of a normalization layer that moves it out of that window is an error ("normalized twice?"):
 * 0-1 pixels in front of 0-1 constants also "look normalized" and come out standard, the original
 * tool's false alarm, and are an info here, as are 0-1 constants meeting 0-1 data. Beyond the
 * original tool: the recommendation is the exact normalization line that makes the observed data
 * standard (or the script's constants x255 when the data shows that was the mistake). */
#include "inspector_util.h"

/* Thresholds of the original tool. */
#define MEAN_LOW (-2.0)
#define MEAN_HIGH 5.0
#define STD_LOW 0.1
#define STD_HIGH 5.0
#define LOOKS_NORMALIZED_MEAN_LOW (-0.5)
#define LOOKS_NORMALIZED_MEAN_HIGH 1.0
#define LOOKS_NORMALIZED_STD_LOW 0.1
#define LOOKS_NORMALIZED_STD_HIGH 2.0
#define MAX_CHANNELS 4096

/* Layers a normalization may sit behind and still count as "on the input's path". */
static bool transparent(hq_layer_type_t t)
{
    return t == HQ_LAYER_PAD || t == HQ_LAYER_RESIZE || t == HQ_LAYER_SLICE ||
           t == HQ_LAYER_TRANSPOSE || t == HQ_LAYER_RESHAPE;
}

/* The first normalization layer reached from `input` through transparent layers, or -1. */
static int normalization_after(hq_inspector_context_t *ctx, int input)
{
    int queue[64], head = 0, tail = 0;
    queue[tail++] = input;
    while (head < tail) {
        hq_inspector_layer_t l;
        bool found = insp_layer(ctx, queue[head++], &l);
        for (int k = 0; found && k < l.output_count; k++) {
            hq_inspector_layer_t c;
            if (!insp_layer(ctx, l.outputs[k], &c))
                continue;
            if (c.type == HQ_LAYER_NORMALIZATION)
                return l.outputs[k];
            if (transparent(c.type) && tail < 64)
                queue[tail++] = l.outputs[k];
        }
    }
    return -1;
}

/* Index of the script command that created normalization layer `layer` (`name =
 * normalization(..)`), or -1. */
static int command_of(hq_inspector_context_t *ctx, const char *bare)
{
    for (int i = ctx->find_command(ctx, "normalization", 0); i >= 0;
         i = ctx->find_command(ctx, "normalization", i + 1)) {
        const hq_command_t *c = ctx->command(ctx, i);
        if (c && c->result_count > 0 && !strcmp(c->results[0], bare))
            return i;
    }
    return -1;
}

typedef struct moments {
    int channels;
    double mean[MAX_CHANNELS], std[MAX_CHANNELS];
    double min_mean, max_mean, min_std, max_std;
    double min_value, max_value; /* raw values (input data only; NAN otherwise) */
} moments_t;

static void summarize(moments_t *m)
{
    m->min_value = m->max_value = NAN;
    m->min_mean = m->min_std = INFINITY;
    m->max_mean = m->max_std = -INFINITY;
    for (int c = 0; c < m->channels; c++) {
        m->min_mean = fmin(m->min_mean, m->mean[c]);
        m->max_mean = fmax(m->max_mean, m->mean[c]);
        m->min_std = fmin(m->min_std, m->std[c]);
        m->max_std = fmax(m->max_std, m->std[c]);
    }
}

/* 1 above the window (not normalized), -1 below (normalized twice), 0 inside. */
static int outside(const moments_t *m)
{
    if (m->max_mean >= MEAN_HIGH || m->max_std >= STD_HIGH)
        return 1;
    if (m->min_mean <= MEAN_LOW || m->min_std <= STD_LOW)
        return -1;
    return 0;
}

static bool looks_normalized(const moments_t *m)
{
    return m->min_mean >= LOOKS_NORMALIZED_MEAN_LOW && m->max_mean <= LOOKS_NORMALIZED_MEAN_HIGH &&
           m->min_std >= LOOKS_NORMALIZED_STD_LOW && m->max_std <= LOOKS_NORMALIZED_STD_HIGH;
}

/* Per-channel moments of the raw data at input `input_layer` (false without data). */
static bool input_moments(hq_inspector_context_t *ctx, int input_layer, moments_t *m)
{
    hq_inspector_layer_t l;
    int channels = insp_layer(ctx, input_layer, &l) && l.output_shape.ndim > 0
                       ? (int)l.output_shape.dims[l.output_shape.ndim - 1]
                       : 0;
    if (!ctx->has_dataset(ctx) || channels <= 0 || channels > MAX_CHANNELS)
        return false;
    for (int i = 0; i < ctx->dataset_input_count(ctx); i++) {
        if (ctx->dataset_input_layer(ctx, i) != input_layer)
            continue;
        double lo, hi;
        m->channels = channels;
        if (!insp_input_channel_stats(ctx, i, channels, m->mean, m->std, &lo, &hi))
            return false;
        summarize(m);
        m->min_value = lo;
        m->max_value = hi;
        return true;
    }
    return false;
}

/* Moments at the output of a normalization layer: from the float statistics when the host
 * computed them, else analytically from the raw input data when the layer directly follows the
 * input ((x - m) / s moves the mean and scales the std exactly). */
static bool normalization_moments(hq_inspector_context_t *ctx, int norm, const moments_t *in,
                                  bool in_valid, moments_t *out)
{
    hq_inspector_params_t params, *p = &params;
    bool found = insp_params(ctx, norm, p);
    const hq_layer_stats_t *s = ctx->layer_stats(ctx, HQ_STATS_FLOAT, norm, 0);
    if (s && s->channel_mean && s->channel_std && s->channels <= MAX_CHANNELS) {
        out->channels = s->channels;
        for (int c = 0; c < s->channels; c++) {
            out->mean[c] = s->channel_mean[c];
            out->std[c] = s->channel_std[c];
        }
        summarize(out);
        return true;
    }
    if (!in_valid || !found || p->channels != in->channels)
        return false;
    out->channels = in->channels;
    for (int c = 0; c < in->channels; c++) {
        double sd = p->std[c];
        out->mean[c] = (in->mean[c] - p->mean[c]) / sd;
        out->std[c] = in->std[c] / fabs(sd);
    }
    summarize(out);
    return true;
}

static void append_dlist(insp_text_t *t, const double *v, int n, double scale)
{
    insp_append(t, "[");
    for (int i = 0; i < n; i++)
        insp_append(t, "%s%.6g", i ? ", " : "", v[i] * scale);
    insp_append(t, "]");
}

/* The normalization line that makes data with moments `in` standard: mean = observed mean,
 * std = observed std (a channel with no spread keeps std 1). */
static void observed_line(insp_text_t *line, const char *name, const char *input,
                          const moments_t *in)
{
    double std[MAX_CHANNELS];
    for (int c = 0; c < in->channels; c++)
        std[c] = in->std[c] > 1e-6 ? in->std[c] : 1.0;
    insp_append(line, "%s = normalization(", name);
    append_dlist(line, in->mean, in->channels, 1.0);
    insp_append(line, ", ");
    append_dlist(line, std, in->channels, 1.0);
    if (input)
        insp_append(line, ", %s", input);
    insp_append(line, ")");
}

/* Whether the normalization's constants times `factor` make data with moments `in` standard;
 * `line` gets `N = normalization([...], [...])` with the scaled constants. */
static bool scaled_fits(const hq_inspector_params_t *np, const moments_t *in, double factor,
                        const char *nname, const char *input, insp_text_t *line)
{
    static moments_t fixed; /* large; the host runs one inspector at a time */
    insp_append(line, "%s = normalization(", nname);
    insp_append_list(line, np->mean, np->channels, factor);
    insp_append(line, ", ");
    insp_append_list(line, np->std, np->channels, factor);
    if (input)
        insp_append(line, ", %s", input);
    insp_append(line, ")");
    if (in->channels != np->channels)
        return false;
    fixed.channels = in->channels;
    for (int c = 0; c < in->channels; c++) {
        fixed.mean[c] = (in->mean[c] - factor * np->mean[c]) / (factor * np->std[c]);
        fixed.std[c] = in->std[c] / fabs(factor * np->std[c]);
    }
    summarize(&fixed);
    return outside(&fixed) == 0;
}

static void range_numbers(hq_diag_number_t *n, const moments_t *m)
{
    n[0] = (hq_diag_number_t){"mean_min", m->min_mean};
    n[1] = (hq_diag_number_t){"mean_max", m->max_mean};
    n[2] = (hq_diag_number_t){"std_min", m->min_std};
    n[3] = (hq_diag_number_t){"std_max", m->max_std};
}

/* The fix when 0-1 data meets constants for 0-255 pixels: `line`, the constants /255. */
static void recommend_div255(hq_inspector_context_t *ctx, int norm, const insp_text_t *line)
{
    insp_recommend(ctx, HQ_DIAG_ERROR, norm, line->buf,
                   "the data is 0-1 while the constants are for 0-255 pixels: /255 they are the "
                   "training constants again and make the observed data standard",
                   "normalization", HQ_GROUP_YES_NO,
                   "Scale the normalization constants to 0-1 (/255)?", HQ_ANSWER_YES);
}

/* Checks one input and the normalization behind it (or its absence). */
static void inspect_input(hq_inspector_context_t *ctx, int input, int input_count)
{
    const char *iname = insp_name(ctx, input);
    int norm = normalization_after(ctx, input);
    static moments_t in, out; /* large; the host runs one inspector at a time */
    bool have_in = input_moments(ctx, input, &in);
    hq_diag_number_t nums[4];

    if (norm < 0) {
        int where = have_in ? outside(&in) : 0;
        if (have_in && where == 0) { /* normalized before hq: what the data shows is standard */
            insp_emit(ctx, HQ_DIAG_INFO, input, 0, NULL, 0,
                      "Input layer %s has no normalization layer, and the data comes in standard "
                      "(per-channel mean in [%.4g, %.4g], std in [%.4g, %.4g]): normalized "
                      "before hq",
                      iname, in.min_mean, in.max_mean, in.min_std, in.max_std);
            return;
        }
        insp_emit(ctx, HQ_DIAG_WARNING, input, 0, NULL, 0,
                  "Input layer %s doesn't have normalization. Was the data normalized manually?",
                  iname);
        if (!have_in)
            return;
        range_numbers(nums, &in);
        insp_emit(ctx, HQ_DIAG_ERROR, input, HQ_DIAG_SHOW_CHANNELS, nums, 4,
                  "Data at input layer %s is %s: per-channel mean in [%.4g, %.4g], std in "
                  "[%.4g, %.4g] (expected mean in (-2, 5), std in (0.1, 5))",
                  iname, where > 0 ? "not normalized" : "normalized twice", in.min_mean,
                  in.max_mean, in.min_std, in.max_std);
        if (where > 0) {
            char name[64];
            for (int k = 1; k < 100000; k++) {
                snprintf(name, sizeof name, "normalization%d", k);
                if (ctx->find_layer(ctx, name) < 0 && command_of(ctx, name) < 0)
                    break;
            }
            insp_text_t line = {.len = 0};
            observed_line(&line, name, input_count > 1 ? iname : NULL, &in);
            insp_recommend(ctx, HQ_DIAG_ERROR, input, line.buf,
                           "the observed per-channel mean and std of the data: with this line "
                           "the model's first layer sees standard data",
                           "normalization", HQ_GROUP_YES_NO,
                           "Add the normalization measured on the data?", HQ_ANSWER_YES);
        }
        return;
    }

    /* static: constants in the 0-1 scale */
    hq_inspector_params_t norm_params, *np = &norm_params;
    insp_params(ctx, norm, np);
    const char *nname = insp_name(ctx, norm);
    bool small = np->channels > 0;
    for (int c = 0; c < np->channels; c++)
        small = small && fabsf(np->mean[c]) < 1.0f && fabsf(np->std[c]) < 1.0f;
    bool have_out = normalization_moments(ctx, norm, &in, have_in, &out);
    int where = have_out ? outside(&out) : 0;
    /* The script's constants x255 (0-1 constants, 0-255 data) or /255 (0-255 constants, 0-1
     * data) are the fix when they make the observed data standard: they keep what the model was
     * trained with. Only when neither does is the measured line the fix. */
    const char *multi = input_count > 1 ? iname : NULL;
    insp_text_t x255 = {.len = 0}, div255 = {.len = 0};
    bool x255_fits = small && have_in && scaled_fits(np, &in, 255.0, nname, multi, &x255);
    if (small && !have_in)
        scaled_fits(np, &in, 255.0, nname, multi, &x255); /* the line, offered without data */
    bool data01 = have_in && in.min_value >= 0 && in.max_value <= 1.0;
    bool div255_fits = !small && data01 && scaled_fits(np, &in, 1.0 / 255.0, nname, multi, &div255);
    /* 0-1 data that the 0-1 constants make standard: the scale is right (torchvision's setup) */
    bool consistent =
        small && have_in && have_out && where == 0 && in.min_value >= 0 && in.max_value <= 1.0;
    if (consistent)
        insp_emit(ctx, HQ_DIAG_INFO, norm, 0, NULL, 0,
                  "Normalization layer %s has mean and std all below 1 (the 0-1 scale), and so "
                  "has the data (values in [%.4g, %.4g]), which comes out standard: consistent",
                  nname, in.min_value, in.max_value);
    if (small && !consistent) {
        bool confirmed = where > 0 && x255_fits;
        insp_emit(ctx, HQ_DIAG_WARNING, norm, 0, NULL, 0,
                  "Normalization layer %s has mean and std all below 1, which looks like the 0-1 "
                  "scale; if the data is 0-255 pixels the constants should be x255: %s",
                  nname, x255.buf);
        if (!have_out || confirmed) {
            /* without data this cannot be confirmed: offered, not applied by default */
            insp_recommend(ctx, confirmed ? HQ_DIAG_ERROR : HQ_DIAG_WARNING, norm, x255.buf,
                           confirmed ? "the data is 0-255 while the constants are for 0-1 data; "
                                       "x255 they make the observed data standard"
                                     : "constants in the 0-1 scale (not confirmed: no dataset)",
                           "normalization", HQ_GROUP_YES_NO,
                           "Scale the normalization constants to 0-255?",
                           confirmed ? HQ_ANSWER_YES : HQ_ANSWER_NO);
        }
    }
    /* Data that looks normalized is only normalized twice when the layer moves it out of the
     * standard window: 0-1 pixels in front of 0-1 constants look "normalized" by the original
     * tool's rule too, and come out standard (its false alarm, fixed here). */
    bool standard_out = have_out && where == 0;
    if (have_in && looks_normalized(&in) && standard_out)
        ctx->log(ctx, "data at %s looks normalized, but %s keeps it standard", iname, nname);
    if (have_in && looks_normalized(&in) && !standard_out) {
        range_numbers(nums, &in);
        insp_emit(ctx, HQ_DIAG_ERROR, input, HQ_DIAG_SHOW_CHANNELS, nums, 4,
                  "Data at input layer %s already looks normalized (per-channel mean in "
                  "[%.4g, %.4g], std in [%.4g, %.4g]) and normalization layer %s normalizes it "
                  "again: normalized twice?",
                  iname, in.min_mean, in.max_mean, in.min_std, in.max_std, nname);
        if (div255_fits) {
            recommend_div255(ctx, norm, &div255);
            return;
        }
        insp_text_t line = {.len = 0};
        observed_line(&line, nname, input_count > 1 ? iname : NULL, &in);
        insp_recommend(ctx, HQ_DIAG_ERROR, norm, line.buf,
                       "the data is already normalized, and neither the constants x255 nor /255 "
                       "explain it: this line, measured on it, makes it standard instead of "
                       "normalizing it again",
                       "normalization", HQ_GROUP_YES_NO,
                       "Replace the normalization with the one measured on the data?",
                       HQ_ANSWER_YES);
        return;
    }
    if (!have_out || where == 0)
        return;
    range_numbers(nums, &out);
    insp_emit(ctx, HQ_DIAG_ERROR, norm, HQ_DIAG_SHOW_CHANNELS, nums, 4,
              "Data after normalization layer %s is %s: per-channel mean in [%.4g, %.4g], std in "
              "[%.4g, %.4g] (expected mean in (-2, 5), std in (0.1, 5))",
              nname, where > 0 ? "not normalized" : "normalized twice", out.min_mean, out.max_mean,
              out.min_std, out.max_std);
    if (!have_in || in.channels != np->channels)
        return;
    if (x255_fits)
        return; /* the x255 line above, now at error level, is the fix */
    if (div255_fits) {
        recommend_div255(ctx, norm, &div255);
        return;
    }
    insp_text_t line = {.len = 0};
    observed_line(&line, nname, input_count > 1 ? iname : NULL, &in);
    char reason[256];
    snprintf(reason, sizeof reason,
             "the observed per-channel mean and std at %s: with this line %s outputs standard data",
             iname, nname);
    insp_recommend(ctx, HQ_DIAG_ERROR, norm, line.buf, reason, "normalization", HQ_GROUP_YES_NO,
                   "Replace the normalization with the one measured on the data?", HQ_ANSWER_YES);
}

static hq_status_t run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    (void)state;
    (void)err;
    int count = 0;
    const int *inputs = ctx->inputs(ctx, &count);
    for (int i = 0; i < count; i++)
        inspect_input(ctx, inputs[i], count);
    return HQ_OK;
}

HQ_INSPECTOR_DEFINE("NormInspector",
                    "is every input normalized exactly once (script constants and data)",
                    HQ_PRIORITY_HIGH, 0, run)
