/* kernels_ref.h — scalar float32 reference kernels of the emulator (NHWC, batched).
 *
 * These kernels define what "correct" means for float emulation: the graph executor runs them
 * for the `native` and `fp_optimized` targets, and every optimized kernel is tested against them
 * within a named tolerance. They are written for clarity, not speed: plain loops, accumulation
 * in double, one output element at a time (gather form, so no kernel needs scratch memory).
 *
 * Conventions (docs/kernels.md gives each kernel's exact formula):
 * - Image tensors are dense, C order, [N, H, W, C], described by hqi_ref_dims_t. Rank-generic
 *   kernels (elementwise, concat, split, softmax, transpose, reduce, argmax) take hq_shape_t
 *   (graph.h) with dims[0] the batch; every dim, the batch included, must be >= 1 (no -1).
 * - Every kernel validates its arguments before touching memory and returns HQ_ERR_ARGUMENT
 *   with a one-line message "<kernel>: <field>: <problem>" on inconsistent shapes or params
 *   (the executor prefixes the layer name). Element counts are overflow-checked; a count above
 *   HQI_REF_MAX_ELEMENTS is refused with HQ_ERR_LIMIT. Buffers must hold exactly the elements
 *   their shape implies; kernels never read or write outside them.
 * - Kernels never allocate, keep no state and touch no globals. Output buffers must not overlap
 *   inputs unless a kernel says otherwise ("may alias").
 * - Weights use Hailo's layouts: conv/deconv kernels [kh, kw, cin_per_group, cout], dense
 *   [cin, cout]. Group g owns input channels [g*cin_per_group, (g+1)*cin_per_group) and output
 *   channels [g*cout/groups, (g+1)*cout/groups) (depthwise = groups == C, cin_per_group == 1).
 */
#ifndef HQ_CORE_EMULATE_KERNELS_REF_H
#define HQ_CORE_EMULATE_KERNELS_REF_H

#include <stdbool.h>
#include <stdint.h>

#include "hq/common.h"
#include "hq/graph.h"
#include "numerics/activation.h"

/* Largest element count of any one tensor a kernel accepts (2^40, ~4 TB of floats). */
#define HQI_REF_MAX_ELEMENTS ((int64_t)1 << 40)
/* Largest kernel window, stride, dilation, pad or block size a kernel accepts (2^30). */
#define HQI_REF_MAX_PARAM (1 << 30)

/* Extents of an NHWC image tensor; all >= 1. */
typedef struct hqi_ref_dims {
    int64_t n; /* batch */
    int64_t h; /* rows */
    int64_t w; /* columns */
    int64_t c; /* channels (innermost, contiguous) */
} hqi_ref_dims_t;

/* ---- activation -------------------------------------------------------------------------- */

/* hqi_ref_act_t and its f(x), hqi_ref_activate, are numerics/activation.h's: the lookup tables of
 * quantized activations sample the very same function. */
/* Checks an activation for a tensor with `channels` innermost channels: known type, prelu slope
 * present with 1 or `channels` entries, clip min <= max. `kernel` names the caller in errors. */
hq_status_t hqi_ref_act_check(const hqi_ref_act_t *act, int64_t channels, const char *kernel,
                              hq_error_t *err);

/* y = act(x) elementwise on `rows` x `channels` values (any layout whose innermost axis is the
 * channel axis: rows = N*H*W). `output` may alias `input`. */
hq_status_t hqi_ref_activation(const hqi_ref_act_t *act, int64_t rows, int64_t channels,
                               const float *input, float *output, hq_error_t *err);

/* ---- convolution ------------------------------------------------------------------------- */

/* Windowed-op geometry shared by conv, deconv and the pools. Zero-initialized fields are
 * invalid (strides and dilations must be >= 1). */
typedef struct hqi_ref_window {
    int kernel_h, kernel_w;     /* window extent, >= 1 */
    int stride_h, stride_w;     /* >= 1 */
    int dilation_h, dilation_w; /* >= 1 (pools: 1 unless ONNX dilations) */
    int pad_top, pad_left;      /* >= 0: zero rows/cols before the input (deconv: cropped) */
    int pad_bottom, pad_right;  /* >= 0: after the input (deconv: cropped from the end) */
} hqi_ref_window_t;

/* Output extent of a convolution/pool along one axis: floor((in + pb + pe - eff) / s) + 1 with
 * eff = d*(k-1)+1, or with `ceil_mode` the ONNX/PyTorch ceil rule (round up, then drop a last
 * window that would start inside the end padding). -1 when the window does not fit. */
int64_t hqi_ref_window_extent(int64_t in, int kernel, int stride, int dilation, int pad_begin,
                              int pad_end, bool ceil_mode);
/* Output extent of a transposed convolution: (in-1)*s + d*(k-1) + 1 + output_pad - pb - pe,
 * or -1 when not positive. */
int64_t hqi_ref_deconv_extent(int64_t in, int kernel, int stride, int dilation, int pad_begin,
                              int pad_end, int output_pad);
/* Checks out.h and out.w against the extents `window` gives over `in`: a convolution's (the
 * floor extents of hqi_ref_window_extent) or, when `deconv`, a transposed convolution's
 * (hqi_ref_deconv_extent with output_pad_h and output_pad_w). HQ_ERR_ARGUMENT, naming `kernel`,
 * when the kernel does not fit an axis or an extent differs. */
hq_status_t hqi_ref_conv_extents_check(const hqi_ref_window_t *window, bool deconv,
                                       int output_pad_h, int output_pad_w, hqi_ref_dims_t in,
                                       hqi_ref_dims_t out, const char *kernel, hq_error_t *err);

/* Convolution:
 *   out[n,oh,ow,o] = act( bias[o] + addend[n,oh,ow,o]
 *                         + sum_{ky,kx,i} in[n, oh*sh - pt + ky*dh, ow*sw - pl + kx*dw, g*cpg + i]
 *                                         * weights[ky, kx, i, o] )
 * with g = o / (cout/groups), cpg = in.c / groups, positions outside the input contributing 0.
 * weights: [kernel_h, kernel_w, in.c/groups, out.c]; bias: [out.c] or NULL; addend: a tensor of
 * `out` dims added before the activation, or NULL. `out` must equal the floor extents of
 * hqi_ref_window_extent and out.n == in.n. */
typedef struct hqi_ref_conv_params {
    hqi_ref_window_t window;
    int groups;        /* >= 1, divides in.c and out.c */
    hqi_ref_act_t act; /* fused activation (prelu slopes over out.c) */
} hqi_ref_conv_params_t;

hq_status_t hqi_ref_conv2d(const hqi_ref_conv_params_t *params, hqi_ref_dims_t in,
                           const float *input, const float *weights, const float *bias,
                           const float *addend, hqi_ref_dims_t out, float *output,
                           hq_error_t *err);

/* Transposed convolution (ONNX ConvTranspose), as the gather of the scatter
 *   full[n, ih*sh + ky*dh, iw*sw + kx*dw, o] += in[n,ih,iw,g*cpg+i] * weights[ky,kx,i,o]
 * over a full canvas of (in-1)*s + d*(k-1) + 1 + output_pad rows/cols, then
 *   out[n,oh,ow,o] = act(bias[o] + full[n, oh + pad_top, ow + pad_left, o]),
 * i.e. window pads crop the canvas (ONNX 'pads') and output_pad rows/cols at the end receive
 * only the bias. weights: [kernel_h, kernel_w, in.c/groups, out.c] (ONNX W[ci][o_in_group][ky][kx]
 * is weights[ky][kx][ci - g*cpg][g*cout/groups + o_in_group]). `out` must equal
 * hqi_ref_deconv_extent. No addend. */
typedef struct hqi_ref_deconv_params {
    hqi_ref_window_t window;
    int output_pad_h, output_pad_w; /* 0 .. stride-1 (ONNX output_padding) */
    int groups;
    hqi_ref_act_t act;
} hqi_ref_deconv_params_t;

hq_status_t hqi_ref_deconv2d(const hqi_ref_deconv_params_t *params, hqi_ref_dims_t in,
                             const float *input, const float *weights, const float *bias,
                             hqi_ref_dims_t out, float *output, hq_error_t *err);

/* Fully connected: out[n,o] = act(bias[o] + sum_i in[n,i] * weights[i,o]).
 * input [batch, cin] (an NHWC tensor flattened in memory order), weights [cin, cout],
 * bias [cout] or NULL, output [batch, cout]. */
hq_status_t hqi_ref_dense(int64_t batch, int64_t cin, int64_t cout, const float *input,
                          const float *weights, const float *bias, const hqi_ref_act_t *act,
                          float *output, hq_error_t *err);

/* ---- per-channel affine ------------------------------------------------------------------ */

/* out = act(gamma[c] * (x - mean[c]) / sqrt(var[c] + epsilon) + beta[c]) on rows x channels
 * values, the scale computed in double. gamma/beta may be NULL (1 and 0). var[c] + epsilon must
 * be > 0. `output` may alias `input`. */
hq_status_t hqi_ref_batch_norm(int64_t rows, int64_t channels, const float *input,
                               const float *gamma, const float *beta, const float *mean,
                               const float *var, float epsilon, const hqi_ref_act_t *act,
                               float *output, hq_error_t *err);

/* out = act((x - mean[c]) / std[c]) on rows x channels values; mean/std hold `count` entries,
 * 1 (shared by all channels) or `channels`; std must be non-zero and finite. The division is
 * a true division (not a multiplication by 1/std). `output` may alias `input`. */
hq_status_t hqi_ref_normalization(int64_t rows, int64_t channels, const float *input,
                                  const float *mean, const float *std, int64_t count,
                                  const hqi_ref_act_t *act, float *output, hq_error_t *err);

/* Layer normalization over the channels of each row (kernels_ref_layer_norm.c):
 * out = gamma[c] * (x - mean) / sqrt(var + epsilon) + beta[c], mean and the population variance
 * of the row's `channels` values computed in double (two passes), as ONNX LayerNormalization
 * over the last axis. gamma/beta may be NULL (1 and 0); epsilon must be >= 0 and finite.
 * `output` may alias `input`. */
hq_status_t hqi_ref_layer_norm(int64_t rows, int64_t channels, const float *input,
                               const float *gamma, const float *beta, float epsilon,
                               float *output, hq_error_t *err);

/* Matrix product per channel (kernels_ref_layer_norm.c): a [N, I, K, C], b [N, K, J, C],
 * out [N, I, J, C] = sum_k a[n,i,k,c] * b[n,k,j,c], summed in double in k order. The shapes are
 * the hq (NHWC) shapes, batch included; out must not alias the inputs. */
hq_status_t hqi_ref_matmul(const hq_shape_t *a_shape, const float *a, const hq_shape_t *b_shape,
                           const float *b, float *output, hq_error_t *err);

/* ---- pooling ----------------------------------------------------------------------------- */

/* Pool geometry. The window covers rows oh*sh - pt + ky*dh (ky < kernel_h), same for columns.
 * `out` extents are the caller's choice between the floor and ceil rules of
 * hqi_ref_window_extent (that is how ONNX ceil_mode is expressed: pass the ceil extents and the
 * real pads). Window cells are of three kinds: inside the input; inside the declared pads
 * (the padded input [-pt, h+pb) x [-pl, w+pr)); beyond the padded input (only reachable in
 * ceil mode). Maxpool takes the max over input cells (pads act as -inf); a window without
 * input cells yields -INFINITY. Avgpool sums input cells and divides by the number of input cells
 * (count_include_pad false) or of cells inside the padded input (true); cells beyond the padded
 * input are never counted, as in ONNX. A window without counted cells yields 0. */
typedef struct hqi_ref_pool_params {
    hqi_ref_window_t window;
    bool count_include_pad; /* avgpool only */
} hqi_ref_pool_params_t;

hq_status_t hqi_ref_maxpool(const hqi_ref_pool_params_t *params, hqi_ref_dims_t in,
                            const float *input, hqi_ref_dims_t out, float *output,
                            hq_error_t *err);
hq_status_t hqi_ref_avgpool(const hqi_ref_pool_params_t *params, hqi_ref_dims_t in,
                            const float *input, hqi_ref_dims_t out, float *output,
                            hq_error_t *err);
/* Checks the arguments of a max or average pool: pointers, window, dims, the same batch and
 * channels, and out extents between the floor and ceil rules (messages name `kernel`). The fast
 * pools check with it too. */
hq_status_t hqi_ref_pool_check(const char *kernel, const hqi_ref_pool_params_t *params,
                               hqi_ref_dims_t in, const float *input, hqi_ref_dims_t out,
                               const float *output, hq_error_t *err);
/* out[n,0,0,c] = mean over h, w of in[n,h,w,c]; output [in.n, 1, 1, in.c]. */
hq_status_t hqi_ref_global_avg_pool(hqi_ref_dims_t in, const float *input, float *output,
                                    hq_error_t *err);

/* ---- elementwise binary ------------------------------------------------------------------ */

typedef enum hqi_ref_ew_op {
    HQI_REF_EW_ADD = 0, /* a + b */
    HQI_REF_EW_SUB,     /* a - b */
    HQI_REF_EW_MUL,     /* a * b */
    HQI_REF_EW_DIV,     /* a / b (IEEE: x/0 = +-inf, 0/0 = nan) */
    HQI_REF_EW_MAX,     /* max(a, b), NaN if either is NaN (as ONNX Max) */
    HQI_REF_EW_MIN,     /* min(a, b), NaN if either is NaN */
    HQI_REF_EW_COUNT
} hqi_ref_ew_op_t;

/* The kernel op of a layer type's elementwise operation (hq_layer_type_traits_t.ew_op);
 * HQI_REF_EW_COUNT, which the kernels refuse, for HQ_EW_NONE. */
static inline hqi_ref_ew_op_t hqi_ref_ew_op_of(hq_ew_op_t op)
{
    static const hqi_ref_ew_op_t ops[HQ_EW_COUNT] = {
        [HQ_EW_NONE] = HQI_REF_EW_COUNT, [HQ_EW_ADD] = HQI_REF_EW_ADD, [HQ_EW_SUB] = HQI_REF_EW_SUB,
        [HQ_EW_MULT] = HQI_REF_EW_MUL,   [HQ_EW_DIV] = HQI_REF_EW_DIV, [HQ_EW_MAX] = HQI_REF_EW_MAX,
        [HQ_EW_MIN] = HQI_REF_EW_MIN,
    };
    return (unsigned)op < HQ_EW_COUNT ? ops[op] : HQI_REF_EW_COUNT;
}

/* out = act(a op b) with broadcasting: a and b have the rank of `out`; along every axis
 * (the batch included) each operand's extent equals out's or is 1 (then it is repeated), and
 * out's extent is the larger of the two. Float math in single precision, as ONNX. `output` may
 * alias an operand whose shape equals `out`. */
hq_status_t hqi_ref_elementwise(hqi_ref_ew_op_t op, const hq_shape_t *a_shape, const float *a,
                                const hq_shape_t *b_shape, const float *b,
                                const hqi_ref_act_t *act, const hq_shape_t *out_shape,
                                float *output, hq_error_t *err);

/* ---- layout ------------------------------------------------------------------------------ */

/* Concatenates `count` >= 1 tensors along `axis` (0 .. ndim-1); all inputs have the rank of
 * out and equal extents except along `axis`, where out's extent is their sum. */
hq_status_t hqi_ref_concat(int count, const hq_shape_t *in_shapes, const float *const *inputs,
                           int axis, const hq_shape_t *out_shape, float *output, hq_error_t *err);

/* Splits `in` along `axis` into `count` pieces of sizes[i] (sum == extent), piece i written to
 * outputs[i] (dense, shape of `in` with sizes[i] along axis). */
hq_status_t hqi_ref_split(const hq_shape_t *in_shape, const float *input, int axis, int count,
                          const int *sizes, float *const *outputs, hq_error_t *err);

/* Strided slice of H, W and C (index 0, 1, 2 of the arrays): axis a keeps indices
 * begin[a], begin[a]+step[a], ... < end[a], with 0 <= begin < end <= extent, step >= 1;
 * out extents must be ceil((end - begin) / step), out.n == in.n. */
typedef struct hqi_ref_slice_params {
    int64_t begin[3];
    int64_t end[3];
    int64_t step[3];
} hqi_ref_slice_params_t;

hq_status_t hqi_ref_slice(const hqi_ref_slice_params_t *params, hqi_ref_dims_t in,
                          const float *input, hqi_ref_dims_t out, float *output, hq_error_t *err);

/* Pads H, W and C. Constant fills `value`; reflect mirrors without repeating the border
 * (ONNX/numpy 'reflect', pads < extent); edge repeats the border (ONNX 'edge'). out extents are
 * the input's plus before + after on each axis, out.n == in.n. */
typedef struct hqi_ref_pad_params {
    hq_pad_mode_t mode;
    float value;      /* constant mode */
    int64_t before[3]; /* H, W, C, >= 0 */
    int64_t after[3];
} hqi_ref_pad_params_t;

hq_status_t hqi_ref_pad(const hqi_ref_pad_params_t *params, hqi_ref_dims_t in,
                        const float *input, hqi_ref_dims_t out, float *output, hq_error_t *err);

/* Resize of H and W to out.h x out.w (out.n == in.n, out.c == in.c), following the ONNX
 * Resize reference (scale per axis: the given scale_h / scale_w, coordinates then computed in
 * float32 as onnxruntime does, or out/in in double when 0):
 * x_in = asymmetric: x/scale; half_pixel: (x+0.5)/scale-0.5; pytorch_half_pixel: same, 0 when
 * out == 1; align_corners: x*(in-1)/(out-1), 0 when out == 1; tf_half_pixel_for_nn:
 * (x+0.5)/scale.
 * Nearest: index floor(x_in), ceil(x_in), round_prefer_floor ceil(x_in - 0.5) or
 * round_prefer_ceil floor(x_in + 0.5); clamped to the input.
 * Bilinear: x0 = floor(x_in), weight x_in - x0 on x0+1, indices clamped to the input (no
 * extrapolation), rows first then columns, weights in double. */
typedef struct hqi_ref_resize_params {
    hq_resize_method_t method;
    hq_resize_coords_t coords;
    bool round_prefer_floor; /* nearest: rounds to the nearest index (ties by nearest_ceil)
                                instead of rounding down or up */
    bool nearest_ceil;       /* nearest: ceil / round_prefer_ceil instead of floor /
                                round_prefer_floor */
    double scale_h, scale_w; /* > 0: the scale of each axis; 0: out / in */
} hqi_ref_resize_params_t;

/* Per-axis sampling of output coordinate `x` (ONNX coordinate_transformation_mode, nearest
 * rounding or linear): two source indices, clamped to the input, and the weight of the second
 * (0 for nearest). The fast kernels sample with it too, so both sets agree exactly. */
typedef struct hqi_ref_resize_tap {
    int64_t lo, hi;
    double weight_hi;
} hqi_ref_resize_tap_t;

hqi_ref_resize_tap_t hqi_ref_resize_tap(const hqi_ref_resize_params_t *p, double scale, int64_t x,
                                        int64_t in, int64_t out);

hq_status_t hqi_ref_resize(const hqi_ref_resize_params_t *params, hqi_ref_dims_t in,
                           const float *input, hqi_ref_dims_t out, float *output,
                           hq_error_t *err);

/* DepthToSpace with block b: out [n, h*b, w*b, c/(b*b)].
 * DCR: out[n, y*b+i, x*b+j, k] = in[n, y, x, (i*b + j)*C' + k]   (C' = c/(b*b))
 * CRD: out[n, y*b+i, x*b+j, k] = in[n, y, x, k*b*b + i*b + j]. */
hq_status_t hqi_ref_depth_to_space(int block, bool crd, hqi_ref_dims_t in, const float *input,
                                   float *output, hq_error_t *err);
/* SpaceToDepth (ONNX): out[n, y, x, (i*b + j)*c + k] = in[n, y*b+i, x*b+j, k];
 * out [n, h/b, w/b, c*b*b], h and w divisible by b. */
hq_status_t hqi_ref_space_to_depth(int block, hqi_ref_dims_t in, const float *input,
                                   float *output, hq_error_t *err);

/* out[i0..] = in[i_perm...]: out dims[k] = in dims[perm[k]], perm a permutation of
 * 0 .. ndim-1 (the batch may move). */
hq_status_t hqi_ref_transpose(const hq_shape_t *in_shape, const float *input, const int *perm,
                              float *output, hq_error_t *err);

/* Channel shuffle (ShuffleNet) with g = `groups` over the last axis, C channels, g dividing C:
 * out[..., i*g + j] = in[..., j*(C/g) + i] for i < C/g, j < g, which is ONNX's NCHW
 * Reshape [N, g, C/g, H, W], Transpose [0, 2, 1, 3, 4], Reshape [N, C, H, W]. Output shape =
 * input shape; must not alias. */
hq_status_t hqi_ref_channel_shuffle(const hq_shape_t *shape, int groups, const float *input,
                                    float *output, hq_error_t *err);

/* ---- reductions -------------------------------------------------------------------------- */

/* Softmax along `axis`: out = exp(x - max) / sum(exp(x - max)), max and sum per slice (sum in
 * double), so large inputs do not overflow. Output shape = input shape; may alias. */
hq_status_t hqi_ref_softmax(const hq_shape_t *shape, const float *input, int axis, float *output,
                            hq_error_t *err);

/* Max / sum over `axis`, kept with extent 1 (output shape = input shape with dims[axis] = 1).
 * A NaN in the slice makes the max NaN (as ONNX); sum accumulates in double. */
hq_status_t hqi_ref_reduce_max(const hq_shape_t *shape, const float *input, int axis,
                               float *output, hq_error_t *err);
hq_status_t hqi_ref_reduce_sum(const hq_shape_t *shape, const float *input, int axis,
                               float *output, hq_error_t *err);

/* Index of the largest value along the last (channel) axis, first one on ties, NaN ignored
 * (0 when all are NaN), written as a float (exact below 2^24). Output shape = input shape with
 * the last extent 1. */
hq_status_t hqi_ref_argmax(const hq_shape_t *shape, const float *input, float *output,
                           hq_error_t *err);

/* ---- helpers shared by the kernels_ref_*.c files ----------------------------------------- */

/* Element count of an image / shape into *count; HQ_ERR_ARGUMENT when an extent is below 1 or
 * the rank is out of range, HQ_ERR_LIMIT when the count exceeds HQI_REF_MAX_ELEMENTS (messages
 * name `kernel` and `what`). */
hq_status_t hqi_ref_dims_count(hqi_ref_dims_t dims, const char *kernel, const char *what,
                               int64_t *count, hq_error_t *err);
hq_status_t hqi_ref_shape_count(const hq_shape_t *shape, const char *kernel, const char *what,
                                int64_t *count, hq_error_t *err);
/* Checks a window (kernel, strides, dilations, pads in range). */
hq_status_t hqi_ref_window_check(const hqi_ref_window_t *window, const char *kernel,
                                 hq_error_t *err);
/* Fails with HQ_ERR_ARGUMENT when a required pointer is NULL. */
hq_status_t hqi_ref_need(const void *pointer, const char *kernel, const char *what,
                         hq_error_t *err);

#endif
