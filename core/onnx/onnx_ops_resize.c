/* onnx_ops_resize.c — Resize and Upsample: scales or sizes to an output size, the mode, the
 * coordinate transformation and the nearest rounding; hq resizes H and W only. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_internal.h"

/* The 4 values of a scales or sizes input given for `axes` (opset 18), the others `fill`. */
static hq_status_t per_axis(onnxi_ctx_t *c, const Onnx__NodeProto *n, const hq_tensor_t *t,
                            const char *what, const int64_t *axes, int axis_count, double fill,
                            double out[4])
{
    int64_t want = axis_count ? axis_count : 4;
    if (hq_tensor_count(t) != want)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "%s needs %lld values", what, (long long)want);
    for (int i = 0; i < 4; i++)
        out[i] = axis_count ? fill : onnxi_tensor_at(t, i);
    for (int i = 0; i < axis_count; i++)
        out[axes[i]] = onnxi_tensor_at(t, i);
    return HQ_OK;
}

/* Maps ONNX's coordinate_transformation_mode to hq's; fails naming what hq cannot do. */
static hq_status_t coords_of(onnxi_ctx_t *c, const Onnx__NodeProto *n, bool old_defaults,
                             hq_resize_coords_t *coords)
{
    static const struct {
        const char *name;
        hq_resize_coords_t coords;
    } modes[] = {{"asymmetric", HQ_RESIZE_ASYMMETRIC},
                 {"half_pixel", HQ_RESIZE_HALF_PIXEL},
                 {"align_corners", HQ_RESIZE_ALIGN_CORNERS},
                 {"pytorch_half_pixel", HQ_RESIZE_PYTORCH_HALF_PIXEL},
                 {"tf_half_pixel_for_nn", HQ_RESIZE_TF_HALF_PIXEL_FOR_NN}};
    const char *ctm = onnxi_attr_string(n, "coordinate_transformation_mode",
                                        old_defaults ? "asymmetric" : "half_pixel");
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (!strcmp(ctm, modes[i].name)) {
            *coords = modes[i].coords;
            return HQ_OK;
        }
    if (!strcmp(ctm, "tf_crop_and_resize"))
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED,
                  "coordinate_transformation_mode 'tf_crop_and_resize' (a crop box from the roi "
                  "input, then a resize) is not supported; hq resizes the whole image");
    NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED,
              "coordinate_transformation_mode '%s' is not supported (hq takes asymmetric, "
              "half_pixel, pytorch_half_pixel, align_corners and tf_half_pixel_for_nn)",
              ctm);
}

/* Resize and Upsample (upsample = true: scales only, opset 7-9 defaults). */
static hq_status_t convert_resize(onnxi_ctx_t *c, const Onnx__NodeProto *n, bool upsample)
{
    onnxi_value_t *x;
    int64_t dims[4];
    hq_status_t st = onnxi_image_input(c, n, &x, dims);
    if (st != HQ_OK)
        return st;
    bool old_defaults = upsample || c->opset < 11;
    hq_tensor_t *scales = NULL, *sizes = NULL;
    const Onnx__AttributeProto *sa = onnxi_find_attr(n, "scales");
    if (upsample && sa) {
        if (sa->n_floats != 4)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "scales needs 4 values");
    } else if (old_defaults) {
        if ((st = onnxi_const_input(c, n, 1, true, &scales)) != HQ_OK)
            return st;
    } else {
        if ((st = onnxi_const_input(c, n, 2, false, &scales)) != HQ_OK ||
            (st = onnxi_const_input(c, n, 3, false, &sizes)) != HQ_OK)
            return st;
        if (scales && hq_tensor_count(scales) == 0)
            scales = NULL;
        if (sizes && hq_tensor_count(sizes) == 0)
            sizes = NULL;
        if (!scales && !sizes)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "needs scales or sizes");
    }
    /* opset 18: scales / sizes for the listed axes only; hq resizes H and W */
    int64_t axes[4];
    int axis_count = 0;
    if (onnxi_find_attr(n, "axes") && (st = onnxi_axes_of(c, n, 4, axes, &axis_count)) != HQ_OK)
        return st;
    if (onnxi_attr_int(n, "antialias", 0))
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED,
                  "antialias 1 (a filter widened by the downscale) is not supported");
    const char *policy = onnxi_attr_string(n, "keep_aspect_ratio_policy", "stretch");
    if (sizes && strcmp(policy, "stretch"))
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED,
                  "keep_aspect_ratio_policy '%s' is not supported; export with the output size",
                  policy);
    int64_t out[4];
    double scale[4] = {1, 1, 1, 1};
    if (sizes) {
        double v[4];
        if ((st = per_axis(c, n, sizes, "sizes", axes, axis_count, 0, v)) != HQ_OK)
            return st;
        for (int i = 0; i < 4; i++)
            out[i] = axis_count && v[i] == 0 ? dims[i] : (int64_t)v[i];
    } else {
        if (scales && (st = per_axis(c, n, scales, "scales", axes, axis_count, 1, scale)) != HQ_OK)
            return st;
        for (int i = 0; i < 4; i++) {
            if (!scales)
                scale[i] = sa->floats[i];
            if (!(scale[i] > 0 && scale[i] < 65536))
                NODE_FAIL(c, n, HQ_ERR_INVALID, "scale %g", scale[i]);
            /* ONNX: output = floor(input * scale), coordinates mapped with the scale itself */
            out[i] = (int64_t)floor((double)dims[i] * scale[i]);
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
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED,
                  "mode '%s' is not supported (hq resizes nearest or "
                  "linear)",
                  mode);
    hq_resize_coords_t coords = HQ_RESIZE_ASYMMETRIC;
    if ((st = coords_of(c, n, old_defaults, &coords)) != HQ_OK)
        return st;
    bool round = false, up = false;
    if (method == HQ_RESIZE_NEAREST) {
        const char *nm =
            onnxi_attr_string(n, "nearest_mode", old_defaults ? "floor" : "round_prefer_floor");
        if (!strcmp(nm, "round_prefer_floor"))
            round = true;
        else if (!strcmp(nm, "round_prefer_ceil"))
            round = up = true;
        else if (!strcmp(nm, "ceil"))
            up = true;
        else if (strcmp(nm, "floor"))
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "nearest_mode '%s'", nm);
    }
    /* a scale the output size does not give exactly (10 x 0.75 -> 7, not 7.5) is kept */
    float kept[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        if (sizes || (float)scale[2 + i] == (float)((double)out[2 + i] / (double)dims[2 + i]))
            continue;
        if (coords == HQ_RESIZE_ALIGN_CORNERS)
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED,
                      "align_corners with scale %g on an extent of %lld (a fractional output "
                      "size): the ONNX reference maps with %g - 1, onnxruntime with %lld - 1; "
                      "export with sizes",
                      scale[2 + i], (long long)dims[2 + i], (double)dims[2 + i] * scale[2 + i],
                      (long long)out[2 + i]);
        kept[i] = (float)scale[2 + i];
    }
    int index;
    if ((st = onnxi_new_layer(c, HQ_LAYER_RESIZE, n, &index)) != HQ_OK ||
        (st = onnxi_connect_value(c, x, index)) != HQ_OK)
        return st;
    hq_layer_params_t *p = onnxi_layer_params(c, index);
    p->resize_method = method;
    p->resize_coords = coords;
    p->nearest_round = round;
    p->nearest_ceil = up;
    p->resize_scales[0] = kept[0];
    p->resize_scales[1] = kept[1];
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
