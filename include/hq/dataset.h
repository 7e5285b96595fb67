/* dataset.h — calibration and evaluation data presented as batches of NHWC float32.
 *
 * Sources: a `.npy` (one input, [N, H, W, C]), a `.npz` (one array per input layer, keyed by the
 * input layer's scoped, bare or original name), or a folder of JPEG/PNG images (sorted by file
 * name, decoded with stb_image, resized to the input's H x W by bilinear interpolation, channels
 * in RGB order, values 0..255 as float). Large arrays are memory-mapped, not loaded whole. */
#ifndef HQ_DATASET_H
#define HQ_DATASET_H

#include <stdint.h>

#include "hq/common.h"
#include "hq/graph.h"
#include "hq/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hq_dataset hq_dataset_t;

/* Opens `path` (file or folder). When `graph` is given, arrays are matched to its input layers and
 * their H, W, C checked against the input shapes (a folder of images is resized to them); without
 * a graph a `.npy` is taken as is and a folder is refused. The caller owns *out. */
HQ_API hq_status_t hq_dataset_open(const char *path, const hq_graph_t *graph, hq_dataset_t **out,
                                   hq_error_t *err);
/* The same for a `.npy` or `.npz` held in memory (`len` bytes, e.g. numpy.save into a buffer):
 * the same checks and messages, with `name` (NULL: "dataset") in place of the file name. The
 * bytes are borrowed, not copied: they must stay valid and unchanged until the dataset is
 * destroyed. The caller owns *out. */
HQ_API hq_status_t hq_dataset_open_memory(const void *bytes, size_t len, const char *name,
                                          const hq_graph_t *graph, hq_dataset_t **out,
                                          hq_error_t *err);
HQ_API void hq_dataset_destroy(hq_dataset_t *dataset);

/* Number of samples (N). */
HQ_API int64_t hq_dataset_count(const hq_dataset_t *dataset);
/* Number of inputs (1 for `.npy` and image folders). */
HQ_API int hq_dataset_input_count(const hq_dataset_t *dataset);
/* Per-sample shape [H, W, C] (or [C]) of input i, and the input layer index it feeds (-1 when
 * opened without a graph). */
HQ_API hq_shape_t hq_dataset_input_shape(const hq_dataset_t *dataset, int input);
HQ_API int hq_dataset_input_layer(const hq_dataset_t *dataset, int input);
/* The dtype stored in the file (float32 for images). */
HQ_API hq_dtype_t hq_dataset_input_dtype(const hq_dataset_t *dataset, int input);

/* Copies samples [first, first + count) of input i into `out` as float32 NHWC (count * H*W*C
 * floats, caller-owned). Fails with HQ_ERR_INVALID, naming the file and the sample index, when a
 * value is NaN or infinite. */
HQ_API hq_status_t hq_dataset_read(hq_dataset_t *dataset, int input, int64_t first, int64_t count,
                                   float *out, hq_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
