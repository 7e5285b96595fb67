/* image.h — internal: JPEG/PNG decoding and bilinear resizing for image-folder datasets. */
#ifndef HQ_CORE_DATASET_IMAGE_H
#define HQ_CORE_DATASET_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hq/common.h"

/* Largest image hq decodes, in pixels (width * height); larger files are refused with
 * HQ_ERR_LIMIT before any pixel is decoded. */
#define HQI_IMAGE_MAX_PIXELS ((int64_t)1 << 26)
/* Largest image file read, in bytes. */
#define HQI_IMAGE_MAX_FILE_BYTES ((size_t)256 << 20)

/* True when `name` ends in .png, .jpg or .jpeg (any case). */
bool hqi_image_has_extension(const char *name);

/* Resizes an 8-bit HWC image to (dst_h, dst_w) by bilinear interpolation with half-pixel
 * centres (source coordinate = (dst + 0.5) * src / dst - 0.5, clamped to the edge pixels),
 * writing float32 HWC values in 0..255. No antialiasing filter when shrinking. */
void hqi_image_resize_bilinear(const uint8_t *src, int src_h, int src_w, int channels, float *dst,
                               int dst_h, int dst_w);

/* Decodes the JPEG or PNG file at `path` into `channels` (1 or 3) channels, resized to
 * (height, width), as float32 HWC in 0..255 written to `out` (height * width * channels floats,
 * caller-owned). Errors name `path`. */
hq_status_t hqi_image_load(const char *path, int height, int width, int channels, float *out,
                           hq_error_t *err);

#endif
