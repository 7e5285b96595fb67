/* hqrt_kernels_ref.h — scalar integer reference kernels of quantized models.
 *
 * These kernels DEFINE the integer arithmetic of a quantized model: `hq emulate --target quantized`
 * runs them, and the deploy runtime (libhqrt) compiles this very file, so emulation and deployment
 * are bit-exact by construction; fast kernels are tested bit-exact against them. The formulas are
 * in docs/numerics.md; the parameters come from `<net>.q.npz` (keys in hq-har(5)).
 *
 * Conventions (CMSIS-NN style):
 * - Plain C11, depends only on <stdint.h>/<stddef.h>/<string.h>; no allocation, no globals, no
 *   float math. Every kernel that could need scratch has a _get_buffer_size function; the
 *   reference kernels are written in gather form and need none (they return 0), but callers must
 *   still ask, so that a faster implementation can change that without changing callers.
 * - Activations are unsigned per-tensor codes: 8-bit tensors are stored as uint8_t, 16-bit
 *   tensors as uint16_t (the `bits` field says which), real value x = (q - zp) * scale.
 *   Image tensors are dense [N, H, W, C], channels innermost (hqrt_dims_t); rank-generic kernels
 *   take hqrt_shape_t (ndim 1..6, dims[0] the batch).
 * - Weights are signed, symmetric per output channel: 4- and 8-bit weights are stored as int8_t,
 *   16-bit as int16_t, in Hailo's layouts: conv/deconv [kh, kw, cin_per_group, cout], dense
 *   [cin, cout]. Group g owns input channels [g*cpg, (g+1)*cpg) and output channels
 *   [g*cout/groups, (g+1)*cout/groups). Biases are int64 in the accumulator scale.
 * - Accumulators are int64; requantization follows the layer's path (hqrt_numerics.h).
 * - Every kernel checks its arguments (bits 8/16, extents >= 1, pointers non-NULL, shapes that
 *   agree) and returns HQRT_KERNEL_OK or HQRT_KERNEL_ERR_ARGUMENT before touching memory. Output
 * buffers must not overlap inputs. */
#ifndef HQRT_KERNELS_REF_H
#define HQRT_KERNELS_REF_H

#include <stddef.h>
#include <stdint.h>

#include "hqrt_numerics.h"

#define HQRT_KERNEL_OK 0
#define HQRT_KERNEL_ERR_ARGUMENT (-5) /* the value of hqrt.h's HQRT_ERR_ARGUMENT */
#define HQRT_MAX_DIMS 6

/* Extents of an NHWC image tensor; all >= 1. */
typedef struct hqrt_dims {
    int32_t n, h, w, c;
} hqrt_dims_t;

/* A rank-generic shape: ndim 1..HQRT_MAX_DIMS, every extent >= 1, dims[0] the batch. */
typedef struct hqrt_shape {
    int32_t ndim;
    int32_t dims[HQRT_MAX_DIMS];
} hqrt_shape_t;

/* The end of every arithmetic kernel: from an int64 value in the accumulator scale to an output
 * code (docs/numerics.md "output stage"):
 *   y    = requantize(acc, multiplier[i], shift[i])             (i = channel, or 0 if count == 1)
 *          using multiplier_neg/shift_neg instead when acc < 0 and they are given (leaky, prelu)
 *   code = lut ? lut[clamp(y + pre_zp, 0, 2^out_bits - 1)] : y + out_zp
 *   out  = clamp(code, act_min, act_max)
 * Multi-term kernels (ew_add/sub/max/min, conv with an addend) build z, the sum of their terms
 * in the output (or pre-activation) scale times 2^HQRT_SUM_FRAC_BITS, then apply
 * multiplier_neg (= alpha only) when z < 0, y = RoundingDivideByPOT(z, HQRT_SUM_FRAC_BITS), and
 * the same lut/offset/clamp. */
typedef struct hqrt_output_stage {
    int32_t path;                  /* HQRT_PATH_GEMMLOWP or HQRT_PATH_WIDE */
    int32_t count;                 /* entries of the arrays below: 1 or the channel count */
    const int32_t *multiplier;     /* [count], |m| in [2^30, 2^31) or 0 */
    const int32_t *shift;          /* [count], in [-31, 30] */
    const int32_t *multiplier_neg; /* NULL, or [count]: for negative values (leaky, prelu) */
    const int32_t *shift_neg;      /* NULL, or [count] */
    const void *lut;               /* NULL, or 2^out_bits output codes (uint8_t / uint16_t) */
    int32_t pre_zp;                /* with lut: zero point of the pre-activation code */
    int32_t out_bits;              /* 8 or 16 */
    int32_t out_zp;                /* [0, 2^out_bits - 1] */
    int32_t act_min, act_max;      /* 0 <= act_min <= act_max <= 2^out_bits - 1 */
} hqrt_output_stage_t;

/* The output stage of one value (used by every kernel; exposed for fast kernels). */
int32_t hqrt_output_code(const hqrt_output_stage_t *stage, int64_t acc, int32_t channel);
/* The multi-term form: z carries HQRT_SUM_FRAC_BITS fraction bits. */
int32_t hqrt_output_code_sum(const hqrt_output_stage_t *stage, int64_t z, int32_t channel);
/* HQRT_KERNEL_OK when the stage is usable for `channels` output channels. */
int hqrt_output_stage_check(const hqrt_output_stage_t *stage, int32_t channels);

/* ---- convolution family ---------------------------------------------------------------- */

typedef struct hqrt_conv_params {
    int32_t kernel_h, kernel_w;         /* >= 1 */
    int32_t stride_h, stride_w;         /* >= 1 */
    int32_t dilation_h, dilation_w;     /* >= 1 */
    int32_t pad_top, pad_left;          /* >= 0; padded cells hold the input zero point (value 0) */
    int32_t pad_bottom, pad_right;      /* >= 0 (deconv: rows/cols cropped from the end) */
    int32_t output_pad_h, output_pad_w; /* deconv only: 0 .. stride-1 */
    int32_t groups;          /* >= 1, divides in.c and out.c; depthwise: groups == in.c */
    int32_t in_bits, in_zp;  /* input activation encoding */
    int32_t weight_bits;     /* 4 or 8 (int8_t storage), 16 (int16_t storage) */
    hqrt_output_stage_t out; /* count == 1 or out.c */
} hqrt_conv_params_t;

/* An optional second input added before the activation (conv "elementwise_add"): a tensor of
 * the output's dims whose term is requantize(q - zp, multiplier, shift) in the output scale
 * times 2^HQRT_SUM_FRAC_BITS; with an addend the conv's own multipliers carry that 2^8 too. */
typedef struct hqrt_addend {
    const void *data;
    int32_t bits, zp;
    int32_t multiplier, shift;
} hqrt_addend_t;

/* acc[n,oh,ow,o] = bias[o] + sum_{ky,kx,i} (in[n, oh*sh - pt + ky*dh, ow*sw - pl + kx*dw,
 * g*cpg + i] - in_zp) * w[ky,kx,i,o], cells outside the input contributing 0; then the output
 * stage per channel o. bias may be NULL (0); addend may be NULL. `out` must equal the floor
 * extents floor((in + pt + pb - dh*(kh-1) - 1) / sh) + 1. */
size_t hqrt_conv2d_get_buffer_size(const hqrt_conv_params_t *params, hqrt_dims_t in);
int hqrt_conv2d(const hqrt_conv_params_t *params, hqrt_dims_t in, const void *input,
                const void *weights, const int64_t *bias, const hqrt_addend_t *addend,
                hqrt_dims_t out, void *output, void *scratch);

/* Transposed convolution (gather form of the scatter full[ih*sh + ky*dh, iw*sw + kx*dw] +=
 * (x - zp) * w, cropped by the pads; see docs/numerics.md). */
size_t hqrt_deconv2d_get_buffer_size(const hqrt_conv_params_t *params, hqrt_dims_t in);
int hqrt_deconv2d(const hqrt_conv_params_t *params, hqrt_dims_t in, const void *input,
                  const void *weights, const int64_t *bias, hqrt_dims_t out, void *output,
                  void *scratch);
/* HQRT_KERNEL_OK when hqrt_deconv2d accepts these arguments (its own check). */
int hqrt_deconv2d_check(const hqrt_conv_params_t *params, hqrt_dims_t in, const void *input,
                        const void *weights, hqrt_dims_t out, const void *output);

/* Fully connected: acc[n,o] = bias[o] + sum_i (in[n,i] - in_zp) * w[i,o]; `params` uses
 * in_bits/in_zp/weight_bits/out only. */
int hqrt_dense(const hqrt_conv_params_t *params, int32_t batch, int32_t cin, int32_t cout,
               const void *input, const void *weights, const int64_t *bias, void *output);

/* ---- pooling ----------------------------------------------------------------------------- */

typedef struct hqrt_pool_params {
    int32_t kernel_h, kernel_w, stride_h, stride_w;
    int32_t pad_top, pad_left, pad_bottom, pad_right;
    int32_t count_include_pad; /* avgpool: 1 counts cells of the declared pads */
    int32_t in_bits, in_zp;
    hqrt_output_stage_t out; /* avgpool: count == kernel_h*kernel_w, entry k-1 divides by k */
    int32_t dilation_h, dilation_w; /* >= 1; maxpool only (avgpool: 1) */
} hqrt_pool_params_t;

/* Max of the input codes of each window (pads ignored), the window's taps dilation_h rows and
 * dilation_w columns apart; output encoding = input encoding; a window without input cells
 * gives in_zp. `out` is unused. */
int hqrt_maxpool(const hqrt_pool_params_t *params, hqrt_dims_t in, const void *input,
                 hqrt_dims_t out, void *output);
/* acc = sum of (q - in_zp) over the counted cells, k = their number, output stage entry k-1
 * (its multiplier folds in 1/k); a window with k == 0 gives out_zp. */
int hqrt_avgpool(const hqrt_pool_params_t *params, hqrt_dims_t in, const void *input,
                 hqrt_dims_t out, void *output);
/* acc = sum over h, w of (q - in_zp); output stage entry 0 (its multiplier folds in 1/(H*W));
 * output [in.n, 1, 1, in.c]. */
int hqrt_global_avg_pool(int32_t in_bits, int32_t in_zp, const hqrt_output_stage_t *out,
                         hqrt_dims_t in, const void *input, void *output);

/* ---- elementwise ----------------------------------------------------------------------- */

enum {
    HQRT_EW_ADD = 0, /* sum of the two terms (ew_sub: b's multiplier is negative) */
    HQRT_EW_MULT,    /* acc = (a - za) * (b - zb), output stage */
    HQRT_EW_MAX,     /* max of the two terms */
    HQRT_EW_MIN,     /* min of the two terms */
};

typedef struct hqrt_ew_params {
    int32_t op; /* HQRT_EW_* */
    int32_t a_bits, a_zp, b_bits, b_zp;
    int32_t a_multiplier, a_shift; /* add/max/min: term = requantize(q - zp, m, s), in the */
    int32_t b_multiplier, b_shift; /* output scale times 2^HQRT_SUM_FRAC_BITS */
    hqrt_output_stage_t out;       /* count 1 or the innermost extent of `out` */
} hqrt_ew_params_t;

/* out = op(a, b) with NHWC broadcasting: a, b and out have the same rank; each operand's extent
 * equals out's or is 1. */
int hqrt_elementwise(const hqrt_ew_params_t *params, const hqrt_shape_t *a_shape, const void *a,
                     const hqrt_shape_t *b_shape, const void *b, const hqrt_shape_t *out_shape,
                     void *output);
/* HQRT_KERNEL_OK when hqrt_elementwise accepts these arguments (its own check). */
int hqrt_elementwise_check(const hqrt_ew_params_t *params, const hqrt_shape_t *a_shape,
                           const void *a, const hqrt_shape_t *b_shape, const void *b,
                           const hqrt_shape_t *out_shape, const void *output);

/* Standalone activation on rows x channels codes: acc = q - in_zp, then the output stage
 * (relu/relu6/clip/linear: clamp; leaky/prelu: multiplier_neg). */
int hqrt_activation(int32_t in_bits, int32_t in_zp, const hqrt_output_stage_t *out, int64_t rows,
                    int32_t channels, const void *input, void *output);
/* HQRT_KERNEL_OK when hqrt_activation accepts these arguments (its own check). */
int hqrt_activation_check(int32_t in_bits, int32_t in_zp, const hqrt_output_stage_t *out,
                          int64_t rows, int32_t channels, const void *input, const void *output);
/* out[i] = lut[in[i]]: a table of 2^in_bits codes of out_bits bits (sigmoid, tanh, silu, ...). */
int hqrt_lut(int32_t in_bits, const void *lut, int32_t out_bits, int64_t count, const void *input,
             void *output);

/* ---- data movement (codes copied unchanged; `bits` gives the element size) ------------------ */

int hqrt_concat(int32_t bits, int32_t count, const hqrt_shape_t *in_shapes,
                const void *const *inputs, int32_t axis, const hqrt_shape_t *out_shape,
                void *output);
int hqrt_split(int32_t bits, const hqrt_shape_t *in_shape, const void *input, int32_t axis,
               int32_t count, const int32_t *sizes, void *const *outputs);

typedef struct hqrt_slice_params {
    int32_t begin[3], end[3], step[3]; /* on H, W, C: out extent = ceil((end - begin) / step) */
} hqrt_slice_params_t;
int hqrt_slice(int32_t bits, const hqrt_slice_params_t *params, hqrt_dims_t in, const void *input,
               hqrt_dims_t out, void *output);

enum { HQRT_PAD_CONSTANT = 0, HQRT_PAD_REFLECT, HQRT_PAD_EDGE };
typedef struct hqrt_pad_params {
    int32_t mode;       /* HQRT_PAD_* */
    int32_t value_code; /* constant mode: the code written (the quantized pad value) */
    int32_t before[3];  /* H, W, C */
    int32_t after[3];
} hqrt_pad_params_t;
int hqrt_pad(int32_t bits, const hqrt_pad_params_t *params, hqrt_dims_t in, const void *input,
             hqrt_dims_t out, void *output);

enum { HQRT_RESIZE_NEAREST = 0, HQRT_RESIZE_BILINEAR };
enum {
    HQRT_COORDS_ASYMMETRIC = 0,
    HQRT_COORDS_HALF_PIXEL,
    HQRT_COORDS_ALIGN_CORNERS,
    HQRT_COORDS_PYTORCH_HALF_PIXEL
};
typedef struct hqrt_resize_params {
    int32_t method;             /* HQRT_RESIZE_* */
    int32_t coords;             /* HQRT_COORDS_* */
    int32_t round_prefer_floor; /* nearest: ceil(v - 1/2) instead of floor(v) */
    int32_t bits, zp;           /* encoding of input and output (the same) */
} hqrt_resize_params_t;
/* Source coordinates are exact rationals turned into Q15 fixed point (floor); bilinear:
 * out = zp + RoundingDivideByPOT(sum of w_y * w_x * (q - zp), 30), w in Q15 summing to 2^15. */
int hqrt_resize(const hqrt_resize_params_t *params, hqrt_dims_t in, const void *input,
                hqrt_dims_t out, void *output);
/* hqrt_resize's source taps of output index x along an axis of extent in -> out: indices lo and
 * hi (clamped into the input) and hi's Q15 weight (nearest: lo == hi, weight 0). */
void hqrt_resize_source(const hqrt_resize_params_t *params, int64_t x, int64_t in, int64_t out,
                        int64_t *lo, int64_t *hi, int32_t *w_hi);

/* depth_to_space (crd: CRD mode, else DCR) and space_to_depth, as ONNX. */
int hqrt_depth_to_space(int32_t bits, int32_t block, int32_t crd, hqrt_dims_t in, const void *input,
                        void *output);
int hqrt_space_to_depth(int32_t bits, int32_t block, hqrt_dims_t in, const void *input,
                        void *output);
/* out dims[k] = in dims[perm[k]]. */
int hqrt_transpose(int32_t bits, const hqrt_shape_t *in_shape, const void *input,
                   const int32_t *perm, void *output);
/* Max of the codes along `axis` (kept with extent 1). */
int hqrt_reduce_max(int32_t bits, const hqrt_shape_t *shape, const void *input, int32_t axis,
                    void *output);
/* Softmax along `axis`: for each slice, with d_i = max_j(q_j) - q_i (0 .. 2^in_bits - 1),
 *   e_i = exp_lut[d_i]                   (Q30: round(exp(-d * in_scale) * 2^30), built offline)
 *   p_i = floor((e_i * 2^31 + sum/2) / sum)   (Q31 probability, sum = sum of e_j, int64)
 *   out = output stage of p_i (one multiplier: ratio 2^-31 / out_scale, wide path)
 * The output shape is the input shape. */
int hqrt_softmax(int32_t in_bits, const int32_t *exp_lut, const hqrt_output_stage_t *out,
                 const hqrt_shape_t *shape, int32_t axis, const void *input, void *output);
/* Index of the largest code along the last axis (first on ties), written as a code of
 * out_bits bits (clamped to its maximum). */
int hqrt_argmax(int32_t in_bits, const hqrt_shape_t *shape, const void *input, int32_t out_bits,
                void *output);

/* ---- layer normalization (hqrt_layer_norm.c) ------------------------------------------- */

#define HQRT_NORM_FRAC_BITS 16         /* fraction bits of the normalized value t */
#define HQRT_NORM_MAX_CHANNELS 32767   /* keeps C * sum(x^2) and every product below 2^62 */
#define HQRT_NORM_EPSILON_MAX ((int64_t)1 << 61)

typedef struct hqrt_layer_norm_params {
    int32_t in_bits, in_zp;  /* input activation encoding */
    int32_t weight_bits;     /* 4 or 8 (int8_t gamma codes), 16 (int16_t) */
    int64_t epsilon_term;    /* round(epsilon * C^2 / in_scale^2), 1 .. HQRT_NORM_EPSILON_MAX */
    hqrt_output_stage_t out; /* count 1 or C */
} hqrt_layer_norm_params_t;

/* Layer normalization over the C channels of each of `rows` positions, in integers only
 * (docs/numerics.md "layer_norm"): with x = q - in_zp,
 *   S1 = sum x, S2 = sum x^2                 (int64)
 *   V  = C * S2 - S1^2 + epsilon_term        (C^2 (variance + epsilon) in input codes^2)
 *   m  = the largest m >= 0 with V * 4^m < 2^62;  R = floor(sqrt(V * 4^m))   (exact, bitwise)
 *   t  = round((C x - S1) * 2^(m + 16) / R)  (the normalized value in Q16, ties away from 0)
 *   acc = t * gamma[c] + bias[c], then the output stage of channel c.
 * gamma holds C codes, bias C int64 values in the accumulator scale (may be NULL: 0). */
int hqrt_layer_norm(const hqrt_layer_norm_params_t *params, int64_t rows, int32_t channels,
                    const void *input, const void *gamma, const int64_t *bias, void *output);

#endif
