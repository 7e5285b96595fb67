/* parse.h — ONNX import: turns an ONNX model (NCHW) into an hq archive (NHWC `.hn` graph and
 * `.npz` params, state parsed_model). The supported operators, how each maps onto hq layers, the
 * fusions and the params keys are described in docs/onnx.md. */
#ifndef HQ_PARSE_H
#define HQ_PARSE_H

#include <stddef.h>

#include "hq/archive.h"
#include "hq/common.h"
#include "hq/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What to import. Every field may be zero/NULL: the network name then comes from the file name
 * (without folder and extension), the whole graph is imported and hw_arch is "hailo8". */
typedef struct hq_parse_options {
    const char *net_name;              /* network name (layer scope, archive member names) */
    /* cut: the computed inputs of these ONNX nodes become inputs (graph inputs still read
     * after the cut stay inputs, after them) */
    const char *const *start_nodes;
    int start_count;
    const char *const *end_nodes;      /* cut: the outputs of these ONNX nodes become outputs */
    int end_count;
    /* target hardware recorded in the archive: hailo8, hailo8r, hailo8l, hailo15h, hailo15m,
     * hailo15l or hailo10h (another name is refused, HQ_ERR_ARGUMENT) */
    const char *hw_arch;
    /* Shapes for the graph inputs that are not initializers, in ONNX order and layout
     * ([N, C, H, W] or [N, C]; the batch is ignored): they fill dynamic dimensions (a model
     * exported with dynamic height and width) and must agree with static ones. Fewer shapes than
     * inputs leave the rest as the file says. */
    const hq_shape_t *input_shapes;
    int input_shape_count;
} hq_parse_options_t;

/* Parses the ONNX file at `path`. On success the caller owns *out (hq_archive_destroy), an
 * archive in state parsed_model with the graph and the native params set; on failure *out is
 * NULL and err holds one line naming the file, the node and the problem (an unsupported node
 * gives HQ_ERR_UNSUPPORTED). `opts` may be NULL. */
HQ_API hq_status_t hq_parse_onnx(const char *path, const hq_parse_options_t *opts,
                                 hq_archive_t **out, hq_error_t *err);
/* The same from `len` bytes in memory; `name` is used in error messages and, without
 * opts->net_name, for the network name. */
HQ_API hq_status_t hq_parse_onnx_memory(const void *bytes, size_t len, const char *name,
                                        const hq_parse_options_t *opts, hq_archive_t **out,
                                        hq_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
