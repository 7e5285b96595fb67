/* inspector_util.h — small helpers shared by the hq-diag inspectors (the .c files of
 * inspectors/ and plugins/). Header-only and `static inline`: every inspector is its own
 * dlopen()ed module, so nothing here may need a shared object of its own. Everything goes
 * through the context table of include/hq/inspector.h and the public libhq API; nothing prints,
 * nothing allocates beyond the call. */
#ifndef HQ_INSPECTOR_UTIL_H
#define HQ_INSPECTOR_UTIL_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hq/inspector.h>

/* The descriptor and the one exported entry of a module. */
#define HQ_INSPECTOR_DEFINE(NAME, DESCRIPTION, PRIORITY, NEEDS, RUN)                               \
    static const hq_inspector_t insp_descriptor = {                                               \
        .abi_version = HQ_INSPECTOR_ABI_VERSION,                                                  \
        .struct_size = sizeof(hq_inspector_t),                                                    \
        .name = NAME,                                                                             \
        .description = DESCRIPTION,                                                               \
        .priority = PRIORITY,                                                                     \
        .needs = NEEDS,                                                                           \
        .run = RUN,                                                                               \
    };                                                                                            \
    HQ_INSPECTOR_EXPORT const hq_inspector_t *hq_inspector_entry(void);                           \
    const hq_inspector_t *hq_inspector_entry(void) { return &insp_descriptor; }

/* Text buffers: messages and script lines are short; layer lists are cut with "..." when long. */
#define INSP_TEXT_MAX 2048

/* A growing string in a fixed buffer: appends printf-style, truncates (ending in "...") instead
 * of overflowing. */
typedef struct insp_text {
    char buf[INSP_TEXT_MAX];
    size_t len;
} insp_text_t;

__attribute__((format(printf, 2, 3))) static inline void insp_append(insp_text_t *t,
                                                                       const char *fmt, ...)
{
    if (t->len >= sizeof t->buf - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, sizeof t->buf - t->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof t->buf - t->len) {
        t->len = sizeof t->buf - 1;
        memcpy(t->buf + sizeof t->buf - 4, "...", 4);
    } else {
        t->len += (size_t)n;
    }
}

/* "[a, b, c]" of `n` values times `scale`, shortest round-tripping-ish form (%.6g). */
static inline void insp_append_list(insp_text_t *t, const float *v, int n, double scale)
{
    insp_append(t, "[");
    for (int i = 0; i < n; i++)
        insp_append(t, "%s%.6g", i ? ", " : "", (double)v[i] * scale);
    insp_append(t, "]");
}

/* A finding with numbers and flags; message printf-formatted. */
__attribute__((format(printf, 7, 8))) static inline void
insp_emit(hq_inspector_context_t *ctx, hq_diag_level_t level, int layer, uint32_t flags,
          const hq_diag_number_t *numbers, int number_count, const char *fmt, ...)
{
    insp_text_t msg = {.len = 0};
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg.buf, sizeof msg.buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        msg.buf[0] = '\0';
    hq_diagnostic_t d = {.struct_size = sizeof d, .level = level, .layer = layer,
                         .message = msg.buf, .numbers = numbers, .number_count = number_count,
                         .flags = flags};
    ctx->diagnostic(ctx, &d);
}

/* A recommendation; a line the host refuses is logged (it is a bug of the inspector, not of the
 * model) and the run goes on. */
static inline void insp_recommend(hq_inspector_context_t *ctx, hq_diag_level_t level, int layer,
                                  const char *line, const char *reason, const char *group,
                                  hq_group_kind_t kind, const char *question, int default_answer)
{
    hq_recommendation_t r = {.struct_size = sizeof r, .level = level, .layer = layer,
                             .line = line, .reason = reason, .group = group, .group_kind = kind,
                             .question = question, .default_answer = default_answer};
    hq_error_t err = {0};
    if (ctx->recommend(ctx, &r, &err) != HQ_OK)
        ctx->log(ctx, "recommendation refused: %s (%s)", line, err.message);
}

/* Layer `index` into *l (zeroed, false, when out of range). */
static inline bool insp_layer(hq_inspector_context_t *ctx, int index, hq_inspector_layer_t *l)
{
    *l = (hq_inspector_layer_t){.struct_size = sizeof *l};
    return ctx->layer_info(ctx, index, l);
}

/* The typed params of layer `index` into *p (zeroed, false, when out of range). */
static inline bool insp_params(hq_inspector_context_t *ctx, int index, hq_inspector_params_t *p)
{
    *p = (hq_inspector_params_t){.struct_size = sizeof *p};
    return ctx->layer_params(ctx, index, p);
}

/* Bare name of a layer ("conv3"), "?" when out of range. */
static inline const char *insp_name(hq_inspector_context_t *ctx, int layer)
{
    hq_inspector_layer_t l;
    return insp_layer(ctx, layer, &l) ? l.bare_name : "?";
}

/* The traits of a layer type (hq/layer_types.h: has_weights, passes_precision, ...); an all-false
 * row for an out-of-range type, so a property check needs no NULL test. */
static inline const hq_layer_type_traits_t *insp_traits(hq_layer_type_t type)
{
    static const hq_layer_type_traits_t none = {.struct_size = sizeof none};
    const hq_layer_type_traits_t *traits = hq_layer_type_traits(type);
    return traits ? traits : &none;
}

/* Multiply-accumulates per frame of weighted layer `index` (0 for others). */
static inline int64_t insp_macs(hq_inspector_context_t *ctx, int index)
{
    hq_inspector_layer_t layer;
    hq_inspector_params_t params;
    if (!insp_layer(ctx, index, &layer) || !insp_traits(layer.type)->has_weights ||
        !insp_params(ctx, index, &params))
        return 0;
    const hq_inspector_layer_t *l = &layer;
    const hq_inspector_params_t *p = &params;
    int64_t out = 1;
    for (int d = 1; d < l->output_shape.ndim; d++)
        out *= l->output_shape.dims[d] > 0 ? l->output_shape.dims[d] : 1;
    if (l->type == HQ_LAYER_DENSE)
        return out * p->kernel_in;
    if (l->type == HQ_LAYER_DECONV) { /* every input pixel scatters a kernel */
        int64_t in = 1;
        for (int d = 1; l->input_shape_count > 0 && d < l->input_shapes[0].ndim; d++)
            in *= l->input_shapes[0].dims[d] > 0 ? l->input_shapes[0].dims[d] : 1;
        return in * p->kernel_h * p->kernel_w * p->kernel_out;
    }
    return out * p->kernel_h * p->kernel_w * (p->kernel_in > 0 ? p->kernel_in : 1);
}

/* Sorts doubles ascending (for quantiles). */
static inline int insp_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Linear-interpolated quantile q in [0, 1] of sorted values (numpy's default method). */
static inline double insp_quantile(const double *sorted, int n, double q)
{
    if (n <= 0)
        return NAN;
    double pos = q * (n - 1);
    int lo = (int)floor(pos);
    int hi = lo + 1 < n ? lo + 1 : lo;
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/* Per-channel statistics of an input's raw data over the samples of the run, with the
 * contract's definition (mean per sample over H*W then averaged; std = sqrt of the mean per-sample
 * variance). `mean`/`std` hold `channels` values; false (nothing written) when the data cannot be
 * read or has another channel count. Reads in batches: nothing holds the whole dataset. */
static inline bool insp_input_channel_stats(hq_inspector_context_t *ctx, int input, int channels,
                                            double *mean, double *std, double *min, double *max)
{
    hq_shape_t s = ctx->dataset_input_shape(ctx, input);
    if (s.ndim < 1 || s.dims[s.ndim - 1] != channels || channels <= 0)
        return false;
    int64_t per = 1;
    for (int d = 0; d < s.ndim; d++)
        per *= s.dims[d];
    int64_t spatial = per / channels, samples = ctx->sample_count(ctx);
    enum { BATCH = 4 };
    float *buf = malloc((size_t)(per * BATCH) * sizeof *buf);
    double *m = calloc((size_t)channels * 4, sizeof *m);
    if (!buf || !m || spatial <= 0 || samples <= 0) {
        free(buf);
        free(m);
        return false;
    }
    double *v = m + channels, *sm = v + channels, *sq = sm + channels;
    bool ok = true;
    *min = INFINITY;
    *max = -INFINITY;
    for (int64_t first = 0; first < samples && ok; first += BATCH) {
        int64_t n = samples - first < BATCH ? samples - first : BATCH;
        hq_error_t err = {0};
        if (ctx->read_samples(ctx, input, first, n, buf, &err) != HQ_OK) {
            ctx->log(ctx, "reading samples: %s", err.message);
            ok = false;
            break;
        }
        for (int64_t k = 0; k < n; k++) {
            memset(sm, 0, (size_t)channels * 2 * sizeof *sm);
            const float *x = buf + k * per;
            for (int64_t p = 0; p < spatial; p++)
                for (int c = 0; c < channels; c++) {
                    double val = x[p * channels + c];
                    sm[c] += val;
                    sq[c] += val * val;
                    if (val < *min)
                        *min = val;
                    if (val > *max)
                        *max = val;
                }
            for (int c = 0; c < channels; c++) {
                double mu = sm[c] / (double)spatial;
                double var = sq[c] / (double)spatial - mu * mu;
                m[c] += mu;
                v[c] += var > 0 ? var : 0;
            }
        }
    }
    if (ok)
        for (int c = 0; c < channels; c++) {
            mean[c] = m[c] / (double)samples;
            std[c] = sqrt(v[c] / (double)samples);
        }
    free(buf);
    free(m);
    return ok;
}

/* ---- what quantization costs this model ------------------------------------------------------
 * The floor of hq-diag's "healthy" verdict (docs/diag.md, "The headline"): at 20 dB the RMS error
 * of an output is 10% of its RMS value. Inspectors whose finding is a quantization cost (ranges,
 * 16-bit layers, pre-activation spread) report it at warning level only when some output is below
 * this floor, or when nothing measured the outputs: on a model whose every output is at 20 dB or
 * more their fix cannot buy accuracy that matters, so the finding is an info (docs/inspectors.md
 * has the measurements). */
#define INSP_HEALTHY_OUTPUT_DB 20.0

/* The lowest output SQNR (dB, quantized vs float) this run measured, else the lowest cumulative
 * SQNR of an output layer in the noise analysis; false when neither exists. */
static inline bool insp_worst_output_sqnr(hq_inspector_context_t *ctx, double *db)
{
    int count = 0;
    const int *outputs = ctx->outputs(ctx, &count);
    bool found = false;
    *db = INFINITY;
    for (int k = 0; k < count; k++) {
        double v;
        if (ctx->output_sqnr(ctx, k, &v) && isfinite(v)) {
            *db = fmin(*db, v);
            found = true;
        }
    }
    for (int k = 0; !found && k < count; k++) {
        const hq_layer_noise_t *n = ctx->layer_noise(ctx, outputs[k]);
        if (n && n->has_cumulative) {
            *db = fmin(*db, n->cumulative_db);
            found = *db < INFINITY;
        }
    }
    return found;
}

/* Whether the quantized model is measured healthy: every output at INSP_HEALTHY_OUTPUT_DB or more.
 * `*db` gets the lowest output SQNR (NAN when unmeasured). */
static inline bool insp_outputs_healthy(hq_inspector_context_t *ctx, double *db)
{
    double v;
    if (!insp_worst_output_sqnr(ctx, &v)) {
        *db = NAN;
        return false;
    }
    *db = v;
    return v >= INSP_HEALTHY_OUTPUT_DB;
}

/* ---- the noise budget: which layer's quantization noise reaches the outputs ----------------------
 * From the cumulative SQNR of noise analysis (everything quantized up to a layer). A layer adds
 * the noise of its output minus the largest noise its inputs bring, in powers relative to the
 * signal; the layers' added noises sum to the budget. Relative noise is assumed to travel to the
 * outputs unchanged, so cutting a layer's added noise by a factor buys the output SQNR its share of
 * the budget: 10 log10(total / (total - cut)). A ranking estimate; docs/inspectors.md compares it
 * with re-quantization. */

/* Whether a layer's noise counts in the budget: not sources (input, const_input), output layers
 * (copies of the layer they name) or index outputs (argmax). */
static inline bool insp_adds_noise(hq_layer_type_t t)
{
    const hq_layer_type_traits_t *traits = insp_traits(t);
    return traits->max_inputs != 0 && traits->quant_form != HQ_QUANT_INDEX &&
           t != HQ_LAYER_OUTPUT;
}

/* Relative noise power of layer `l`'s output (cumulative); false when unmeasured. */
static inline bool insp_cumulative_noise(hq_inspector_context_t *ctx, int l, double *noise)
{
    const hq_layer_noise_t *n = ctx->layer_noise(ctx, l);
    if (!n || !n->has_cumulative)
        return false;
    *noise = pow(10.0, -n->cumulative_db / 10.0);
    return true;
}

/* The noise layer `l` adds (cumulative SQNR), 0 when unmeasured. */
static inline double insp_added_noise(hq_inspector_context_t *ctx, int l)
{
    hq_inspector_layer_t layer;
    double own, in, inherited = 0;
    if (!insp_layer(ctx, l, &layer) || !insp_cumulative_noise(ctx, l, &own))
        return 0.0;
    for (int i = 0; i < layer.input_count; i++)
        if (insp_cumulative_noise(ctx, layer.inputs[i], &in))
            inherited = fmax(inherited, in);
    return own > inherited ? own - inherited : 0.0;
}

/* The budget: the summed added noise of every counted layer and of the inputs (their own
 * rounding, which no layer's fix removes); 0 without noise analysis. */
static inline double insp_noise_budget(hq_inspector_context_t *ctx)
{
    double total = 0;
    int n = ctx->layer_count(ctx);
    for (int l = 0; l < n; l++) {
        hq_inspector_layer_t layer;
        if (insp_layer(ctx, l, &layer) &&
            (insp_adds_noise(layer.type) || layer.type == HQ_LAYER_INPUT))
            total += insp_added_noise(ctx, l);
    }
    return total;
}

/* Output-SQNR gain (dB) of removing `cut` of a budget `total`, at most 20 dB. */
static inline double insp_budget_gain(double cut, double total)
{
    if (!(total > 0) || !(cut > 0))
        return 0.0;
    return -10.0 * log10(1.0 - fmin(cut / total, 0.99));
}

/* ---- the RGB/BGR hint of the Image inspector --------------------------------------------------
 * Measured by tests/fixtures/inspectors/measure_rgb_bgr.py on real photographs (skimage data,
 * opencv-doc and darknet sample images): the constants below are what that script fitted on one
 * half of the photos (`--check` fails when they differ), and tests/e2e/inspector_image.sh runs
 * hq-diag on the other, held-out half and reports how often the hint is right
 * (docs/inspectors.md has the figures).
 *
 * Feature: the difference between the mean of channel 0 and the mean of channel 2, relative to
 * the mean intensity. In daylight photographs red outweighs blue (ImageNet's channel means are
 * 0.485, 0.456, 0.406); reading a BGR image as RGB flips the sign. */
#define INSP_RGB_BGR_THRESHOLD 0.0 /* score above: RGB; below: BGR (by symmetry) */
#define INSP_RGB_BGR_MARGIN 0.0    /* |score| at most this: no hint (the fit chose 0: only a
                                      grey image, score 0, gets none) */
#define INSP_RGB_BGR_HIT_RATE 0.83 /* share of right hints on the held-out photos, both orders */

/* The score of per-channel means (channel order as stored): > 0 looks RGB, < 0 looks BGR. */
static inline double insp_rgb_score(const double *channel_mean)
{
    double intensity = (channel_mean[0] + channel_mean[1] + channel_mean[2]) / 3.0;
    if (!(intensity > 0))
        return 0.0;
    return (channel_mean[0] - channel_mean[2]) / intensity;
}

/* The last numeric value of `key` among the script's commands named `command` whose first
 * positional is the word `first` (any, when NULL); false when there is none. */
static inline bool insp_script_number(hq_inspector_context_t *ctx, const char *command,
                                      const char *first, const char *key, double *value)
{
    bool found = false;
    for (int i = ctx->find_command(ctx, command, 0); i >= 0;
         i = ctx->find_command(ctx, command, i + 1)) {
        const hq_command_t *c = ctx->command(ctx, i);
        const hq_value_t *p = hq_command_positional(c, 0);
        if (first && (!p || !p->text || strcmp(p->text, first)))
            continue;
        const hq_value_t *v = hq_command_kwarg(c, key);
        if (v && v->kind == HQ_VALUE_NUMBER) {
            *value = v->number;
            found = true;
        }
    }
    return found;
}

#endif
