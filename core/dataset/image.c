/* image.c — decodes JPEG/PNG files with stb_image and resizes them for image-folder datasets.
 * Files are hostile: sizes are checked before stb_image allocates pixels. */
#include "dataset/image.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <stb_image.h>

#include "util/util.h"

bool hqi_image_has_extension(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return false;
    return strcasecmp(dot, ".png") == 0 || strcasecmp(dot, ".jpg") == 0 ||
           strcasecmp(dot, ".jpeg") == 0;
}

/* Source index pair and weight for one output coordinate (half-pixel centres, edge clamped). */
typedef struct resize_tap {
    int lo, hi;
    float frac;
} resize_tap_t;

static resize_tap_t resize_tap(int dst, int dst_len, int src_len)
{
    double s = ((double)dst + 0.5) * (double)src_len / (double)dst_len - 0.5;
    if (s < 0.0)
        s = 0.0;
    int lo = (int)s;
    if (lo > src_len - 1)
        lo = src_len - 1;
    resize_tap_t tap = {lo, lo + 1 < src_len ? lo + 1 : src_len - 1, (float)(s - (double)lo)};
    if (tap.hi == tap.lo)
        tap.frac = 0.0f;
    return tap;
}

void hqi_image_resize_bilinear(const uint8_t *src, int src_h, int src_w, int channels, float *dst,
                               int dst_h, int dst_w)
{
    size_t row = (size_t)src_w * (size_t)channels;
    for (int y = 0; y < dst_h; y++) {
        resize_tap_t ty = resize_tap(y, dst_h, src_h);
        const uint8_t *top = src + (size_t)ty.lo * row;
        const uint8_t *bottom = src + (size_t)ty.hi * row;
        for (int x = 0; x < dst_w; x++) {
            resize_tap_t tx = resize_tap(x, dst_w, src_w);
            size_t left = (size_t)tx.lo * (size_t)channels;
            size_t right = (size_t)tx.hi * (size_t)channels;
            float *out = dst + ((size_t)y * (size_t)dst_w + (size_t)x) * (size_t)channels;
            for (int c = 0; c < channels; c++) {
                /* a + f * (b - a) keeps a constant image exactly constant */
                float t =
                    (float)top[left + c] + tx.frac * ((float)top[right + c] - (float)top[left + c]);
                float b = (float)bottom[left + c] +
                          tx.frac * ((float)bottom[right + c] - (float)bottom[left + c]);
                out[c] = t + ty.frac * (b - t);
            }
        }
    }
}

hq_status_t hqi_image_load(const char *path, int height, int width, int channels, float *out,
                           hq_error_t *err)
{
    if (height <= 0 || width <= 0 || (channels != 1 && channels != 3))
        return hqi_error(err, HQ_ERR_ARGUMENT,
                         "%s: images resize to (H, W, 1 or 3), not (%d, %d, %d)", path, height,
                         width, channels);
    void *bytes = NULL;
    size_t len = 0;
    hq_status_t st = hqi_read_file(path, HQI_IMAGE_MAX_FILE_BYTES, &bytes, &len, err);
    if (st != HQ_OK)
        return st;
    if (len > INT_MAX) {
        free(bytes);
        return hqi_error(err, HQ_ERR_LIMIT, "%s: file too large to decode", path);
    }
    /* Only JPEG and PNG reach stb_image: its other decoders (PSD, HDR, PIC, ...) are not needed
     * and not exposed to hostile files. */
    const uint8_t *b = bytes;
    bool png = len >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0;
    bool jpeg = len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF;
    if (!png && !jpeg) {
        free(bytes);
        return hqi_error(err, HQ_ERR_FORMAT, "%s: not a JPEG or PNG file (bad signature)", path);
    }
    int w = 0, h = 0, comp = 0;
    if (!stbi_info_from_memory(bytes, (int)len, &w, &h, &comp)) {
        const char *why = stbi_failure_reason();
        free(bytes);
        return hqi_error(err, HQ_ERR_FORMAT, "%s: not a decodable JPEG or PNG image (%s)", path,
                         why ? why : "unknown reason");
    }
    if (w <= 0 || h <= 0 || (int64_t)w * (int64_t)h > HQI_IMAGE_MAX_PIXELS) {
        free(bytes);
        return hqi_error(err, HQ_ERR_LIMIT, "%s: image is %d x %d pixels, outside 1 .. %lld pixels",
                         path, w, h, (long long)HQI_IMAGE_MAX_PIXELS);
    }
    int dw = 0, dh = 0, dcomp = 0;
    uint8_t *pixels = stbi_load_from_memory(bytes, (int)len, &dw, &dh, &dcomp, channels);
    free(bytes);
    if (!pixels) {
        const char *why = stbi_failure_reason();
        return hqi_error(err, HQ_ERR_FORMAT, "%s: cannot decode image (%s)", path,
                         why ? why : "unknown reason");
    }
    if (dw != w || dh != h) {
        stbi_image_free(pixels);
        return hqi_error(err, HQ_ERR_FORMAT, "%s: image size changed while decoding", path);
    }
    hqi_image_resize_bilinear(pixels, h, w, channels, out, height, width);
    stbi_image_free(pixels);
    return HQ_OK;
}
