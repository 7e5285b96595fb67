/* calibration_set.c — CalibrationSetInspector (plugins/, LOW): whether the dataset hq-diag was
 * given makes a sound calibration set for the archive's model script.
 *
 * It opens the dataset file itself (hq_dataset_open against the model's graph, as hq optimize
 * does) to count every sample, not only the -c samples of the run, and reads the samples
 * calibration uses: the first min(count, calibset_size), at most MAX_ANALYZED. Checks:
 * - the count against the script's calibset_size (default 64) and against what the optimization
 *   level needs (NEEDED_BY_LEVEL);
 * - exact duplicates (the same bytes) and near duplicates (mean absolute difference of an 8x8
 *   area-averaged copy below NEAR_SHARE of the input's value range), against the first copy;
 * - too little diversity: one image repeated, a channel constant across the set, every sample
 *   within NEAR_SHARE of the set's mean image;
 * - the value range, stated once per input (0..1, 0..255, normalized or none of these);
 * - with held-out data (hq-diag --verify-data, the context's validation_path), a mismatch of
 *   calibration and validation: a channel whose validation mean lies more than SHIFT_LIMIT
 *   calibration stds from the calibration mean, or whose std differs by more than a factor
 *   SCALE_LIMIT (docs/inspectors.md has the measurement behind both).
 * The layout (NHWC/NCHW) is not checked: samples reach inspectors as NHWC, and opening a file
 * whose arrays look channels-first already fails with a hint to transpose. */
#include "../inspectors/inspector_util.h"

#include <hq/dataset.h>

#define DEFAULT_CALIBSET 64
#define DEFAULT_LEVEL 2
#define MAX_ANALYZED 1024  /* pairwise near-duplicate search: n^2/2 short vectors */
#define POOL 8             /* the downscaled copy: at most POOL x POOL per channel */
#define NEAR_SHARE 0.01    /* near duplicate: mean |a - b| below 1% of the value range */
#define DUPLICATE_SHARE 0.10 /* duplicates above 10% of the set: a warning */
#define LISTED 8           /* duplicate indices named in the message */
#define SHIFT_LIMIT 0.5    /* mismatch: validation channel mean this many calibration stds away */
#define SCALE_LIMIT 1.5    /* mismatch: validation channel std this factor above or below */

/* Calibration samples each optimization level needs for stable ranges (docs/inspectors.md):
 * every level calibrates ranges (min/max, percentiles) from one pass; level 1 adds bias
 * correction, which measures per-channel means on the same samples, and means settle before the
 * range tails do; level 2 adds finetune and 3-4 AdaRound, which train on what there is. */
static const int NEEDED_BY_LEVEL[5] = {64, 64, 64, 64, 64};

/* One input of the dataset: its shape and what the pass gathered. */
typedef struct input_stats {
    int layer;            /* input layer index (-1: unknown) */
    int64_t height, width, channels, elements; /* per sample; height x width = spatial positions */
    int pool_h, pool_w;   /* the downscaled copy's size */
    int64_t offset;       /* where this input's pooled values start in a sample's vector */
    double min, max, sum, sum_sq; /* over every value of every analyzed sample */
    double *channel_min, *channel_max; /* [channels] */
    double *channel_sum, *channel_sum_sq; /* [channels] over every analyzed value */
} input_stats_t;

/* Everything the run reads and computes; freed by state_free. */
typedef struct state {
    hq_dataset_t *dataset;
    int inputs;
    input_stats_t *in;
    int64_t analyzed, vector_len;
    float *buf;           /* one sample of the largest input */
    float *pooled;        /* [analyzed][vector_len] */
    uint64_t *hash;       /* [analyzed] FNV-1a of every input's raw values */
    int *copy_of;         /* [analyzed] index of the earlier sample it duplicates, or -1 */
    bool *exact;          /* [analyzed] whether that duplicate is exact */
} state_t;

static void state_free(state_t *s)
{
    for (int i = 0; s->in && i < s->inputs; i++) {
        free(s->in[i].channel_min);
        free(s->in[i].channel_max);
        free(s->in[i].channel_sum);
        free(s->in[i].channel_sum_sq);
    }
    free(s->in);
    free(s->buf);
    free(s->pooled);
    free(s->hash);
    free(s->copy_of);
    free(s->exact);
    hq_dataset_destroy(s->dataset);
}

static uint64_t fnv1a(uint64_t h, const void *bytes, size_t len)
{
    const unsigned char *p = bytes;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* Sets up input i from the dataset's shape; false when it is empty. */
static bool input_setup(state_t *s, int i, int64_t *offset)
{
    input_stats_t *in = &s->in[i];
    hq_shape_t shape = hq_dataset_input_shape(s->dataset, i);
    in->layer = hq_dataset_input_layer(s->dataset, i);
    if (shape.ndim < 1)
        return false;
    in->channels = shape.dims[shape.ndim - 1];
    in->height = shape.ndim >= 3 ? shape.dims[shape.ndim - 3] : 1;
    in->width = 1;
    for (int d = shape.ndim >= 3 ? shape.ndim - 2 : 0; d < shape.ndim - 1; d++)
        in->width *= shape.dims[d];
    in->elements = in->height * in->width * in->channels;
    if (in->elements <= 0)
        return false;
    in->pool_h = in->height < POOL ? (int)in->height : POOL;
    in->pool_w = in->width < POOL ? (int)in->width : POOL;
    in->offset = *offset;
    *offset += (int64_t)in->pool_h * in->pool_w * in->channels;
    in->min = INFINITY;
    in->max = -INFINITY;
    in->channel_min = malloc((size_t)in->channels * sizeof *in->channel_min);
    in->channel_max = malloc((size_t)in->channels * sizeof *in->channel_max);
    in->channel_sum = calloc((size_t)in->channels, sizeof *in->channel_sum);
    in->channel_sum_sq = calloc((size_t)in->channels, sizeof *in->channel_sum_sq);
    if (!in->channel_min || !in->channel_max || !in->channel_sum || !in->channel_sum_sq)
        return false;
    for (int64_t c = 0; c < in->channels; c++) {
        in->channel_min[c] = INFINITY;
        in->channel_max[c] = -INFINITY;
    }
    return true;
}

/* Folds one sample of input `in` (in s->buf) into its statistics and pooled copy `out`. */
static void input_fold(input_stats_t *in, const float *x, float *out)
{
    int64_t pooled = (int64_t)in->pool_h * in->pool_w * in->channels;
    double *sum = calloc((size_t)pooled, sizeof *sum);
    int64_t *count = calloc((size_t)in->pool_h * in->pool_w, sizeof *count);
    for (int64_t y = 0; y < in->height; y++)
        for (int64_t xw = 0; xw < in->width; xw++) {
            int64_t cell = (y * in->pool_h / in->height) * in->pool_w + xw * in->pool_w / in->width;
            const float *px = x + (y * in->width + xw) * in->channels;
            if (count)
                count[cell]++;
            for (int64_t c = 0; c < in->channels; c++) {
                double v = px[c];
                if (sum)
                    sum[cell * in->channels + c] += v;
                in->sum += v;
                in->sum_sq += v * v;
                in->channel_sum[c] += v;
                in->channel_sum_sq[c] += v * v;
                if (v < in->channel_min[c])
                    in->channel_min[c] = v;
                if (v > in->channel_max[c])
                    in->channel_max[c] = v;
            }
        }
    for (int64_t k = 0; k < pooled; k++)
        out[k] = sum && count ? (float)(sum[k] / (double)count[k / in->channels]) : 0.0f;
    for (int64_t c = 0; c < in->channels; c++) {
        if (in->channel_min[c] < in->min)
            in->min = in->channel_min[c];
        if (in->channel_max[c] > in->max)
            in->max = in->channel_max[c];
    }
    free(sum);
    free(count);
}

/* Reads the analyzed samples: hashes, pooled copies, ranges. */
static hq_status_t gather(hq_inspector_context_t *ctx, state_t *s, hq_error_t *err)
{
    int64_t offset = 0, largest = 0;
    s->in = calloc((size_t)s->inputs, sizeof *s->in);
    if (!s->in)
        return HQ_ERR_NOMEM;
    for (int i = 0; i < s->inputs; i++) {
        if (!input_setup(s, i, &offset))
            return HQ_ERR_NOMEM;
        if (s->in[i].elements > largest)
            largest = s->in[i].elements;
    }
    s->vector_len = offset;
    s->buf = malloc((size_t)largest * sizeof *s->buf);
    s->pooled = malloc((size_t)(s->analyzed * s->vector_len) * sizeof *s->pooled);
    s->hash = malloc((size_t)s->analyzed * sizeof *s->hash);
    s->copy_of = malloc((size_t)s->analyzed * sizeof *s->copy_of);
    s->exact = calloc((size_t)s->analyzed, sizeof *s->exact);
    if (!s->buf || !s->pooled || !s->hash || !s->copy_of || !s->exact)
        return HQ_ERR_NOMEM;
    for (int64_t k = 0; k < s->analyzed; k++) {
        uint64_t h = 1469598103934665603ull;
        for (int i = 0; i < s->inputs; i++) {
            hq_status_t st = hq_dataset_read(s->dataset, i, k, 1, s->buf, err);
            if (st != HQ_OK)
                return st;
            h = fnv1a(h, s->buf, (size_t)s->in[i].elements * sizeof *s->buf);
            input_fold(&s->in[i], s->buf, s->pooled + k * s->vector_len + s->in[i].offset);
        }
        s->hash[k] = h;
    }
    /* pooled values as shares of their input's range, so one threshold fits every input */
    for (int i = 0; i < s->inputs; i++) {
        const input_stats_t *in = &s->in[i];
        double range = in->max - in->min;
        int64_t len = (int64_t)in->pool_h * in->pool_w * in->channels;
        for (int64_t k = 0; k < s->analyzed; k++)
            for (int64_t j = 0; j < len; j++) {
                float *v = &s->pooled[k * s->vector_len + in->offset + j];
                *v = range > 0 ? (float)((*v - in->min) / range) : 0.0f;
            }
    }
    (void)ctx;
    return HQ_OK;
}

static double mean_abs_difference(const float *a, const float *b, int64_t n)
{
    double d = 0;
    for (int64_t i = 0; i < n; i++)
        d += fabs((double)a[i] - (double)b[i]);
    return n > 0 ? d / (double)n : 0.0;
}

/* Marks every sample that repeats an earlier distinct one; returns how many do. */
static int64_t find_duplicates(state_t *s, int64_t *exact_count)
{
    int64_t duplicates = 0;
    *exact_count = 0;
    for (int64_t k = 0; k < s->analyzed; k++) {
        s->copy_of[k] = -1;
        const float *pk = s->pooled + k * s->vector_len;
        for (int64_t j = 0; j < k && s->copy_of[k] < 0; j++) {
            if (s->copy_of[j] >= 0)
                continue; /* compare against distinct samples only */
            const float *pj = s->pooled + j * s->vector_len;
            if (s->hash[j] == s->hash[k] && !memcmp(pj, pk, (size_t)s->vector_len * sizeof *pk)) {
                s->copy_of[k] = (int)j;
                s->exact[k] = true;
            } else if (mean_abs_difference(pj, pk, s->vector_len) < NEAR_SHARE) {
                s->copy_of[k] = (int)j;
            }
        }
        if (s->copy_of[k] >= 0) {
            duplicates++;
            *exact_count += s->exact[k];
        }
    }
    return duplicates;
}

/* Mean over samples of the mean |sample - mean image| (pooled, in shares of the range). */
static double spread(const state_t *s)
{
    double *mean = calloc((size_t)s->vector_len, sizeof *mean);
    if (!mean || s->analyzed == 0) {
        free(mean);
        return 1.0;
    }
    for (int64_t k = 0; k < s->analyzed; k++)
        for (int64_t j = 0; j < s->vector_len; j++)
            mean[j] += s->pooled[k * s->vector_len + j];
    for (int64_t j = 0; j < s->vector_len; j++)
        mean[j] /= (double)s->analyzed;
    double total = 0;
    for (int64_t k = 0; k < s->analyzed; k++)
        for (int64_t j = 0; j < s->vector_len; j++)
            total += fabs(s->pooled[k * s->vector_len + j] - mean[j]);
    free(mean);
    return s->vector_len > 0 ? total / (double)(s->analyzed * s->vector_len) : 1.0;
}

/* "input layer L" or "the input" (a single input). */
static const char *input_label(hq_inspector_context_t *ctx, const state_t *s, int i, char *buf,
                               size_t len)
{
    if (s->inputs == 1)
        return "the input";
    snprintf(buf, len, "input %s", s->in[i].layer >= 0 ? insp_name(ctx, s->in[i].layer) : "?");
    return buf;
}

static void check_count(hq_inspector_context_t *ctx, int64_t count)
{
    double calibset = DEFAULT_CALIBSET, level = DEFAULT_LEVEL;
    bool explicit_size = insp_script_number(ctx, "model_optimization_config", "calibration",
                                            "calibset_size", &calibset);
    insp_script_number(ctx, "model_optimization_flavor", NULL, "optimization_level", &level);
    int lvl = level < 0 ? 0 : level > 4 ? 4 : (int)level;
    int needed = NEEDED_BY_LEVEL[lvl];
    int64_t used = count < (int64_t)calibset ? count : (int64_t)calibset;
    hq_diag_number_t n[] = {{"samples", (double)count},
                            {"calibset_size", calibset},
                            {"optimization_level", level},
                            {"needed", needed}};
    char line[128];
    if ((double)count < calibset) {
        insp_emit(ctx, HQ_DIAG_WARNING, -1, 0, n, 4,
                  "The dataset holds %lld sample(s), fewer than %s calibset_size of %g: "
                  "hq optimize calibrates on %lld",
                  (long long)count, explicit_size ? "the script's" : "the default", calibset,
                  (long long)count);
        snprintf(line, sizeof line, "model_optimization_config(calibration, calibset_size=%lld)",
                 (long long)count);
        insp_recommend(ctx, HQ_DIAG_WARNING, -1, line,
                       "calibset_size as large as the dataset: the script says what calibration "
                       "uses",
                       "calibset_size", HQ_GROUP_YES_NO, "Set calibset_size to the dataset's size?",
                       HQ_ANSWER_YES);
    }
    if (used >= needed)
        return;
    if (count < needed) {
        insp_emit(ctx, HQ_DIAG_WARNING, -1, 0, n, 4,
                  "Calibration uses %lld sample(s), fewer than the %d that optimization level %d "
                  "needs for stable ranges: add calibration images",
                  (long long)used, needed, lvl);
        return;
    }
    insp_emit(ctx, HQ_DIAG_WARNING, -1, 0, n, 4,
              "Calibration uses %lld sample(s) (calibset_size %g), fewer than the %d that "
              "optimization level %d needs for stable ranges; the dataset holds %lld",
              (long long)used, calibset, needed, lvl, (long long)count);
    snprintf(line, sizeof line, "model_optimization_config(calibration, calibset_size=%d)",
             needed);
    insp_recommend(ctx, HQ_DIAG_WARNING, -1, line,
                   "enough calibration samples for stable ranges at this optimization level",
                   "calibset_size", HQ_GROUP_YES_NO, "Raise calibset_size?",
                   HQ_ANSWER_YES);
}

static void check_duplicates(hq_inspector_context_t *ctx, state_t *s)
{
    int64_t exact = 0, duplicates = find_duplicates(s, &exact);
    int64_t n = s->analyzed;
    if (n > 1 && duplicates == n - 1) {
        hq_diag_number_t num[] = {{"samples", (double)n}, {"exact_duplicates", (double)exact}};
        insp_emit(ctx, HQ_DIAG_WARNING, -1, 0, num, 2,
                  "All %lld calibration samples are one image repeated (%lld exact cop%s, the "
                  "rest within %g%% of the value range): ranges calibrated on it fit that image "
                  "only",
                  (long long)n, (long long)exact, exact == 1 ? "y" : "ies", NEAR_SHARE * 100);
        return;
    }
    if (duplicates > 0) {
        insp_text_t which = {.len = 0};
        int listed = 0;
        for (int64_t k = 0; k < n && listed < LISTED; k++)
            if (s->copy_of[k] >= 0)
                insp_append(&which, "%s%lld (%s %d)", listed++ ? ", " : "", (long long)k,
                            s->exact[k] ? "copy of" : "near", s->copy_of[k]);
        if (duplicates > LISTED)
            insp_append(&which, ", ...");
        double share = (double)duplicates / (double)n;
        hq_diag_number_t num[] = {{"duplicates", (double)duplicates},
                                  {"exact_duplicates", (double)exact},
                                  {"share", share}};
        insp_emit(ctx, share > DUPLICATE_SHARE ? HQ_DIAG_WARNING : HQ_DIAG_INFO, -1, 0, num, 3,
                  "%lld of %lld calibration samples (%.0f%%) repeat an earlier one (%lld exact, "
                  "%lld within %g%% of the value range): %s%s",
                  (long long)duplicates, (long long)n, share * 100, (long long)exact,
                  (long long)(duplicates - exact), NEAR_SHARE * 100, which.buf,
                  share > DUPLICATE_SHARE ? "; replace them with other images" : "");
    }
    double sp = spread(s);
    if (n > 1 && duplicates < n - 1 && sp < NEAR_SHARE) {
        hq_diag_number_t num[] = {{"spread", sp}};
        insp_emit(ctx, HQ_DIAG_WARNING, -1, 0, num, 1,
                  "The calibration samples are nearly identical: on average within %.2g%% of the "
                  "value range of their mean image; ranges calibrated on them miss what other "
                  "inputs produce",
                  sp * 100);
    }
}

static void check_channels(hq_inspector_context_t *ctx, const state_t *s)
{
    for (int i = 0; i < s->inputs; i++) {
        const input_stats_t *in = &s->in[i];
        insp_text_t which = {.len = 0};
        int constant = 0;
        for (int64_t c = 0; c < in->channels; c++)
            if (in->channel_min[c] == in->channel_max[c])
                insp_append(&which, "%s%lld (%g)", constant++ ? ", " : "", (long long)c,
                            in->channel_min[c]);
        if (!constant || in->channels < 2)
            continue;
        char label[128];
        hq_diag_number_t num[] = {{"constant_channels", constant}};
        insp_emit(ctx, HQ_DIAG_WARNING, in->layer, 0, num, 1,
                  "Channel%s %s of %s %s constant across all %lld calibration samples (std 0): "
                  "likely a data preparation error (an alpha or padding channel, a channel left "
                  "empty); calibration never sees it vary",
                  constant > 1 ? "s" : "", which.buf, input_label(ctx, s, i, label, sizeof label),
                  constant > 1 ? "are" : "is", (long long)s->analyzed);
    }
}

static void state_range(hq_inspector_context_t *ctx, const state_t *s)
{
    for (int i = 0; i < s->inputs; i++) {
        const input_stats_t *in = &s->in[i];
        double count = (double)s->analyzed * (double)in->elements;
        double mean = in->sum / count;
        double var = in->sum_sq / count - mean * mean;
        double std = var > 0 ? sqrt(var) : 0;
        const char *kind;
        if (in->min >= 0 && in->max <= 1.0)
            kind = "0..1 data";
        else if (in->min >= 0 && in->max <= 255.0 && in->max > 1.5)
            kind = "0..255 data";
        else if (fabs(mean) < 0.5 && std > 0.5 && std < 2.0)
            kind = "normalized data (mean ~0, std ~1)";
        else
            kind = "none of 0..1, 0..255 or normalized (mean ~0, std ~1)";
        char label[128];
        const char *name = input_label(ctx, s, i, label, sizeof label);
        hq_diag_number_t num[] = {{"min", in->min}, {"max", in->max}, {"mean", mean}, {"std", std}};
        insp_emit(ctx, HQ_DIAG_INFO, in->layer, 0, num, 4,
                  "Calibration values of %s span [%g, %g], mean %.3g, std %.3g: %s (layout not "
                  "checked: samples reach inspectors as NHWC)",
                  name, in->min, in->max, mean, std, kind);
    }
}

/* Per-channel mean and std of `count` values per channel from their sums. */
static void channel_moments(double sum, double sum_sq, double count, double *mean, double *std)
{
    *mean = count > 0 ? sum / count : 0;
    double var = count > 0 ? sum_sq / count - *mean * *mean : 0;
    *std = var > 0 ? sqrt(var) : 0;
}

/* Compares the held-out data's per-channel mean and std with the calibration samples': a
 * validation set prepared differently (another scale, channel order or normalization) or drawn
 * from another domain shows as a shifted or rescaled channel. */
static hq_status_t check_validation(hq_inspector_context_t *ctx, const state_t *s,
                                    hq_error_t *err)
{
    const char *path = HQ_CONTEXT_HAS(ctx, validation_path) ? ctx->validation_path(ctx) : NULL;
    if (!path)
        return HQ_OK;
    hq_dataset_t *held = NULL;
    hq_status_t st = hq_dataset_open(path, ctx->graph(ctx), &held, err);
    if (st != HQ_OK)
        return st;
    int64_t count = hq_dataset_count(held);
    if (count > MAX_ANALYZED)
        count = MAX_ANALYZED;
    for (int i = 0; i < s->inputs && i < hq_dataset_input_count(held) && st == HQ_OK; i++) {
        const input_stats_t *in = &s->in[i];
        double *sum = calloc((size_t)in->channels, sizeof *sum);
        double *sum_sq = calloc((size_t)in->channels, sizeof *sum_sq);
        float *x = malloc((size_t)in->elements * sizeof *x);
        if (!sum || !sum_sq || !x)
            st = HQ_ERR_NOMEM;
        for (int64_t k = 0; k < count && st == HQ_OK; k++) {
            st = hq_dataset_read(held, i, k, 1, x, err);
            for (int64_t j = 0; st == HQ_OK && j < in->elements; j++) {
                sum[j % in->channels] += x[j];
                sum_sq[j % in->channels] += (double)x[j] * x[j];
            }
        }
        /* the channel furthest off, by mean shift and by std ratio */
        double per_channel = (double)(in->elements / in->channels);
        double worst_shift = 0, worst_scale = 1;
        int64_t shift_at = 0, scale_at = 0;
        double cm[2] = {0}, cs[2] = {0}, vm[2] = {0}, vs[2] = {0}; /* [0] shift, [1] scale */
        for (int64_t c = 0; st == HQ_OK && c < in->channels; c++) {
            double m0, s0, m1, s1;
            channel_moments(in->channel_sum[c], in->channel_sum_sq[c],
                            per_channel * (double)s->analyzed, &m0, &s0);
            channel_moments(sum[c], sum_sq[c], per_channel * (double)count, &m1, &s1);
            double shift = s0 > 0 ? fabs(m1 - m0) / s0 : (m1 != m0 ? INFINITY : 0);
            double scale = s0 > 0 && s1 > 0 ? (s1 > s0 ? s1 / s0 : s0 / s1)
                           : s0 != s1       ? INFINITY
                                            : 1;
            if (shift > worst_shift) {
                worst_shift = shift;
                shift_at = c;
                cm[0] = m0, cs[0] = s0, vm[0] = m1, vs[0] = s1;
            }
            if (scale > worst_scale) {
                worst_scale = scale;
                scale_at = c;
                cm[1] = m0, cs[1] = s0, vm[1] = m1, vs[1] = s1;
            }
        }
        free(sum);
        free(sum_sq);
        free(x);
        if (st != HQ_OK)
            break;
        char label[128];
        const char *name = input_label(ctx, s, i, label, sizeof label);
        hq_diag_number_t num[] = {{"mean_shift_std", worst_shift},
                                  {"std_ratio", worst_scale},
                                  {"validation_samples", (double)count}};
        ctx->log(ctx, "validation %s: largest mean shift %.3g calibration std (channel %lld), "
                      "largest std ratio %.3g (channel %lld)",
                 name, worst_shift, (long long)shift_at, worst_scale, (long long)scale_at);
        int at = worst_shift > SHIFT_LIMIT ? 0 : 1;
        if (worst_shift <= SHIFT_LIMIT && worst_scale <= SCALE_LIMIT)
            continue;
        insp_emit(ctx, HQ_DIAG_WARNING, in->layer, 0, num, 3,
                  "Calibration and validation data of %s differ: channel %lld has mean %.4g, "
                  "std %.4g in the %lld calibration sample(s) and mean %.4g, std %.4g in %s (%.3g "
                  "calibration stds apart, std x%.3g; limits %g and x%g): prepare both the same "
                  "way (scale, channel order, normalization), from the same domain",
                  name, (long long)(at ? scale_at : shift_at), cm[at], cs[at],
                  (long long)s->analyzed, vm[at], vs[at], path, worst_shift, worst_scale,
                  SHIFT_LIMIT, SCALE_LIMIT);
    }
    hq_dataset_destroy(held);
    return st;
}

static hq_status_t run(hq_inspector_context_t *ctx, void *unused, hq_error_t *err)
{
    (void)unused;
    state_t s = {0};
    hq_status_t st = hq_dataset_open(ctx->dataset_path(ctx), ctx->graph(ctx), &s.dataset, err);
    if (st != HQ_OK)
        return st;
    int64_t count = hq_dataset_count(s.dataset);
    double calibset = DEFAULT_CALIBSET;
    insp_script_number(ctx, "model_optimization_config", "calibration", "calibset_size", &calibset);
    s.analyzed = count < (int64_t)calibset ? count : (int64_t)calibset;
    if (s.analyzed > MAX_ANALYZED)
        s.analyzed = MAX_ANALYZED;
    s.inputs = hq_dataset_input_count(s.dataset);
    ctx->log(ctx, "dataset: %lld sample(s), analyzing the first %lld (what calibration reads)",
             (long long)count, (long long)s.analyzed);
    check_count(ctx, count);
    if (s.analyzed > 0 && s.inputs > 0) {
        st = gather(ctx, &s, err);
        if (st == HQ_ERR_NOMEM && !err->message[0]) {
            err->status = st;
            snprintf(err->message, sizeof err->message, "out of memory");
        }
        if (st == HQ_OK) {
            check_duplicates(ctx, &s);
            check_channels(ctx, &s);
            state_range(ctx, &s);
            st = check_validation(ctx, &s, err);
        }
    }
    state_free(&s);
    return st;
}

HQ_INSPECTOR_DEFINE("CalibrationSetInspector",
                    "calibration set size, duplicates, diversity and value range",
                    HQ_PRIORITY_LOW, HQ_NEEDS_DATASET, run)
