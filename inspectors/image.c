/* image.c — ImageInspector (LOW): RGB or BGR?
 *
 * Needs a dataset whose first input is [H, W, 3] images with no negative value. Saves
 * `standard.jpg` (the first 16 samples as stored, a 4x4 grid) and `inverse.jpg` (the same with the
 * channel order reversed) in the output folder, with an info saying to compare them: the one with
 * natural colours shows the order of the data. Beyond the original tool: a numeric hint saying
 * which of the two the data more likely is, from the channel statistics measured on real
 * photographs by tests/fixtures/inspectors/measure_rgb_bgr.py (constants in inspector_util.h;
 * tests/e2e/inspector_image.sh reports its hit rate on held-out photos). The message calls it a
 * heuristic, and its recommendation (input_conversion) is not applied by default. */
#include "inspector_util.h"

#define GRID 4
#define CELL_MAX 128 /* larger images are subsampled (nearest) to at most this many pixels */

/* Writes one grid; `reverse` swaps channel 0 and 2. `scale` maps the data to 0-255. */
static hq_status_t write_grid(hq_inspector_context_t *ctx, const float *data, int64_t samples,
                              int h, int w, double scale, bool reverse, const char *name,
                              const char *caption, hq_error_t *err)
{
    int ch = h > CELL_MAX ? CELL_MAX : h, cw = w > CELL_MAX ? CELL_MAX : w;
    int width = cw * GRID, height = ch * GRID;
    uint8_t *pixels = calloc((size_t)width * height * 3, 1);
    if (!pixels) {
        if (err) {
            err->status = HQ_ERR_NOMEM;
            snprintf(err->message, sizeof err->message, "ImageInspector: out of memory");
        }
        return HQ_ERR_NOMEM;
    }
    for (int64_t s = 0; s < samples && s < GRID * GRID; s++) {
        int gy = (int)(s / GRID), gx = (int)(s % GRID);
        const float *img = data + s * (int64_t)h * w * 3;
        for (int y = 0; y < ch; y++)
            for (int x = 0; x < cw; x++) {
                int sy = (int)((int64_t)y * h / ch), sx = (int)((int64_t)x * w / cw);
                const float *px = img + ((int64_t)sy * w + sx) * 3;
                uint8_t *out = pixels + ((size_t)(gy * ch + y) * width + (size_t)(gx * cw + x)) * 3;
                for (int c = 0; c < 3; c++) {
                    double v = px[reverse ? 2 - c : c] * scale;
                    out[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5);
                }
            }
    }
    hq_status_t st = ctx->write_image(ctx, name, width, height, 3, pixels, caption, err);
    free(pixels);
    return st;
}

/* The dataset input holding [H, W, 3] images, or -1. */
static int image_input(hq_inspector_context_t *ctx)
{
    for (int i = 0; i < ctx->dataset_input_count(ctx); i++) {
        hq_shape_t s = ctx->dataset_input_shape(ctx, i);
        if (s.ndim == 3 && s.dims[2] == 3)
            return i;
    }
    return -1;
}

static hq_status_t run(hq_inspector_context_t *ctx, void *state, hq_error_t *err)
{
    (void)state;
    int input = image_input(ctx);
    if (input < 0) {
        ctx->skip(ctx, "the dataset has no [H, W, 3] input");
        return HQ_OK;
    }
    hq_shape_t s = ctx->dataset_input_shape(ctx, input);
    int h = (int)s.dims[0], w = (int)s.dims[1];
    int64_t samples = ctx->sample_count(ctx);
    if (samples > GRID * GRID)
        samples = GRID * GRID;
    float *data = malloc((size_t)samples * h * w * 3 * sizeof *data);
    if (!data) {
        if (err) {
            err->status = HQ_ERR_NOMEM;
            snprintf(err->message, sizeof err->message, "ImageInspector: out of memory");
        }
        return HQ_ERR_NOMEM;
    }
    hq_status_t st = ctx->read_samples(ctx, input, 0, samples, data, err);
    double mean[3], std[3], lo = 0, hi = 0;
    if (st == HQ_OK && !insp_input_channel_stats(ctx, input, 3, mean, std, &lo, &hi))
        st = HQ_ERR_IO;
    if (st != HQ_OK) {
        free(data);
        if (err && err->message[0] == '\0')
            snprintf(err->message, sizeof err->message, "ImageInspector: cannot read the data");
        return st;
    }
    if (lo < 0) {
        free(data);
        ctx->skip(ctx, "the data has negative values (not images)");
        return HQ_OK;
    }
    double scale = hi <= 1.0 ? 255.0 : 1.0; /* 0-1 data is shown as 0-255 */
    st = write_grid(ctx, data, samples, h, w, scale, false, "standard.jpg",
                    "The first calibration images, channels as stored", err);
    if (st == HQ_OK)
        st = write_grid(ctx, data, samples, h, w, scale, true, "inverse.jpg",
                        "The same images with the channel order reversed", err);
    free(data);
    if (st != HQ_OK)
        return st;
    const char *dir = ctx->output_dir(ctx);
    /* an info: the files are a fact of every run, not a finding (the hint below is the finding) */
    insp_emit(ctx, HQ_DIAG_INFO, ctx->dataset_input_layer(ctx, input), 0, NULL, 0,
              "Saved standard.jpg (the first %lld images as stored) and inverse.jpg (channels "
              "reversed) in %s: compare them; the one with natural colours has the channel order "
              "of your data, which must match what the model was trained with",
              (long long)samples, dir && dir[0] ? dir : ".");
    double score = insp_rgb_score(mean);
    hq_diag_number_t nums[] = {{"rgb_score", score},
                               {"threshold", INSP_RGB_BGR_THRESHOLD},
                               {"margin", INSP_RGB_BGR_MARGIN},
                               {"mean_channel_0", mean[0]},
                               {"mean_channel_1", mean[1]},
                               {"mean_channel_2", mean[2]}};
    double d = score - INSP_RGB_BGR_THRESHOLD;
    if (fabs(d) <= INSP_RGB_BGR_MARGIN) {
        insp_emit(ctx, HQ_DIAG_INFO, -1, 0, nums, 6,
                  "Heuristic hint: the channel statistics do not tell RGB from BGR here (score "
                  "%.3f, within %.3g of the threshold)",
                  score, INSP_RGB_BGR_MARGIN);
        return HQ_OK;
    }
    if (d > 0) {
        insp_emit(ctx, HQ_DIAG_INFO, -1, 0, nums, 6,
                  "Heuristic hint: the data looks RGB (channel 0 brighter than channel 2 by %.0f%% "
                  "of the mean intensity, as in most daylight photographs; the hint was right on "
                  "%.0f%% of held-out real photographs, docs/inspectors.md)",
                  score * 100, INSP_RGB_BGR_HIT_RATE * 100);
        return HQ_OK;
    }
    int layer = ctx->dataset_input_layer(ctx, input);
    insp_emit(ctx, HQ_DIAG_WARNING, layer, 0, nums, 6,
              "Heuristic hint: the data looks BGR (channel 2 brighter than channel 0 by %.0f%% of "
              "the mean intensity, the reverse of most daylight photographs; the hint was right "
              "on %.0f%% of held-out real photographs); if the model was trained on RGB, convert "
              "the input (check inverse.jpg first)",
              -score * 100, INSP_RGB_BGR_HIT_RATE * 100);
    char line[256];
    snprintf(line, sizeof line, "input_conversion(%s, bgr_to_rgb)", insp_name(ctx, layer));
    insp_recommend(ctx, HQ_DIAG_WARNING, layer, line,
                   "the channel statistics look BGR (a heuristic: compare standard.jpg and "
                   "inverse.jpg before accepting)",
                   "image", HQ_GROUP_YES_NO, "Swap the input channels (BGR to RGB)?", HQ_ANSWER_NO);
    return HQ_OK;
}

HQ_INSPECTOR_DEFINE("ImageInspector",
                    "saves the images as stored and channel-reversed; RGB/BGR hint",
                    HQ_PRIORITY_LOW, HQ_NEEDS_DATASET | HQ_NEEDS_RGB_IMAGES, run)
