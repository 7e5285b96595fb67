/* onnx_ops_resize.c — Resize and Upsample: scales or sizes to an output size, the mode, the
 * coordinate transformation and the nearest rounding; hq resizes H and W only. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_internal.h"

/* Resize and Upsample (upsample = true: scales only, opset 7-9 defaults). */
static hq_status_t convert_resize(onnxi_ctx_t *c, const Onnx__NodeProto *n, bool upsample)
{
    onnxi_value_t *x;
    int64_t dims[4];
    hq_status_t st = onnxi_image_input(c, n, &x, dims);
    if (st != HQ_OK)
        return st;
    hq_tensor_t *scales = NULL, *sizes = NULL;
    float attr_scales[4];
    int k;
    const Onnx__AttributeProto *sa = onnxi_find_attr(n, "scales");
    if (upsample && sa) {
        if (sa->n_floats != 4)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "scales needs 4 values");
        for (int i = 0; i < 4; i++)
            attr_scales[i] = sa->floats[i];
    } else if (upsample || c->opset < 11) {
        if ((st = onnxi_const_input(c, n, 1, true, &scales)) != HQ_OK)
            return st;
    } else {
        if ((st = onnxi_const_input(c, n, 2, false, &scales)) != HQ_OK ||
            (st = onnxi_const_input(c, n, 3, false, &sizes)) != HQ_OK)
            return st;
        if (scales && hq_tensor_count(scales) == 0)
            scales = NULL;
        if (!scales && !sizes)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "needs scales or sizes");
    }
    (void)k;
    if (onnxi_find_attr(n, "axes"))
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "the axes attribute");
    int64_t out[4];
    if (sizes) {
        if (hq_tensor_count(sizes) != 4)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "sizes needs 4 values");
        for (int i = 0; i < 4; i++)
            out[i] = onnxi_tensor_int_at(sizes, i);
    } else {
        if (scales && hq_tensor_count(scales) != 4)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "scales needs 4 values");
        for (int i = 0; i < 4; i++) {
            double s = scales ? onnxi_tensor_at(scales, i) : attr_scales[i];
            if (!(s > 0 && s < 65536))
                NODE_FAIL(c, n, HQ_ERR_INVALID, "scale %g", s);
            out[i] = (int64_t)floor((double)dims[i] * s);
            /* hq resizes to an output size and maps coordinates with out/in; ONNX maps them
             * with the given scale, which differs when in * scale is not whole. */
            if (i >= 2 && fabs((double)out[i] - (double)dims[i] * s) > 1e-6 * (double)out[i])
                NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED,
                          "scale %g on an extent of %lld gives a fractional size; export with "
                          "sizes or a whole scale",
                          s, (long long)dims[i]);
        }
    }
    if (out[0] != dims[0] || out[1] != dims[1])
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED,
                  "resizing the batch or the channels (output [%lld, %lld, %lld, %lld] for "
                  "an input [1, %lld, %lld, %lld]; hq runs samples one by one, so the batch "
                  "in sizes must be 1)",
                  (long long)out[0], (long long)out[1], (long long)out[2], (long long)out[3],
                  (long long)dims[1], (long long)dims[2], (long long)dims[3]);
    if (out[2] < 1 || out[3] < 1 || out[2] > (1 << 20) || out[3] > (1 << 20))
        NODE_FAIL(c, n, HQ_ERR_INVALID, "output size %lldx%lld", (long long)out[2],
                  (long long)out[3]);
    const char *mode = onnxi_attr_string(n, "mode", "nearest");
    hq_resize_method_t method;
    if (!strcmp(mode, "nearest"))
        method = HQ_RESIZE_NEAREST;
    else if (!strcmp(mode, "linear") || !strcmp(mode, "bilinear"))
        method = HQ_RESIZE_BILINEAR;
    else
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "mode '%s'", mode);
    char ctm[64];
    snprintf(ctm, sizeof ctm, "%s",
             onnxi_attr_string(n, "coordinate_transformation_mode",
                               upsample || c->opset < 11 ? "asymmetric" : "half_pixel"));
    hq_resize_coords_t coords;
    if (!strcmp(ctm, "asymmetric"))
        coords = HQ_RESIZE_ASYMMETRIC;
    else if (!strcmp(ctm, "half_pixel"))
        coords = HQ_RESIZE_HALF_PIXEL;
    else if (!strcmp(ctm, "align_corners"))
        coords = HQ_RESIZE_ALIGN_CORNERS;
    else if (!strcmp(ctm, "pytorch_half_pixel"))
        coords = HQ_RESIZE_PYTORCH_HALF_PIXEL;
    else
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "coordinate_transformation_mode '%s'", ctm);
    bool round = false;
    if (method == HQ_RESIZE_NEAREST) {
        const char *nm = onnxi_attr_string(
            n, "nearest_mode", upsample || c->opset < 11 ? "floor" : "round_prefer_floor");
        if (!strcmp(nm, "round_prefer_floor"))
            round = true;
        else if (strcmp(nm, "floor"))
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "nearest_mode '%s'", nm);
    }
    int index;
    if ((st = onnxi_new_layer(c, HQ_LAYER_RESIZE, n, &index)) != HQ_OK ||
        (st = onnxi_connect_value(c, x, index)) != HQ_OK)
        return st;
    hq_layer_params_t *p = onnxi_layer_params(c, index);
    p->resize_method = method;
    p->resize_coords = coords;
    p->nearest_round = round;
    hq_shape_t shape = {4, {-1, out[2], out[3], out[1]}};
    if ((st = hq_layer_set_output_shape(c->graph, index, &shape, c->err)) != HQ_OK)
        return st;
    return onnxi_set_layer_output(c, n, 0, index, 0, 4);
}

hq_status_t onnxi_convert_resize(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_resize(c, n, false);
}

hq_status_t onnxi_convert_upsample(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_resize(c, n, true);
}
