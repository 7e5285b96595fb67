/* kernels_fast.h — fast float32 kernels of the emulator (NHWC, batched, threaded).
 *
 * The same operations as kernels_ref.h, computed in single precision with packed-GEMM
 * convolutions and AVX-512 or AVX2+FMA inner loops (chosen at run time from the CPU's features;
 * a portable C version when it has neither). They are tested against the reference kernels within
 * HQI_FAST_TOLERANCE.
 *
 * Conventions (docs/kernels.md, "Fast kernels"):
 * - Weights are packed once (hqi_fast_conv_prepare): the emulator does it at create time, so a
 *   run never re-packs. The packed form owns its memory; the original weights may then go.
 * - Kernels never allocate: the caller passes scratch of hqi_fast_conv_scratch floats per thread
 *   (NULL when that is 0) and an optional thread pool.
 * - Results do not depend on the thread count, bit for bit: every output element is computed by
 *   one task with an arithmetic (order of the sums, block boundaries) that depends only on the
 *   shapes, never on how the work is split.
 * - Arguments are checked as in the reference kernels: inconsistent shapes give HQ_ERR_ARGUMENT
 *   with one line "<kernel>: <field>: <problem>".
 */
#ifndef HQ_CORE_EMULATE_KERNELS_FAST_H
#define HQ_CORE_EMULATE_KERNELS_FAST_H

#include <stdbool.h>
#include <stdint.h>

#include "emulate/kernels_ref.h"
#include "hq/common.h"
#include "util/threadpool.h"

/* Fast vs reference: |fast - ref| <= HQI_FAST_TOLERANCE * (|ref| + sum of |terms|) + 1e-6 holds
 * for every kernel (float accumulation of up to 2^16 products against the reference's double);
 * tests check the plainer |fast - ref| <= 1e-4 * max(|ref|, 1e-1) on random data. */
#define HQI_FAST_TOLERANCE 1e-4

/* Micro-kernel tile: HQI_FAST_MR output rows (pixels) x HQI_FAST_NR output channels. */
#define HQI_FAST_MR 6
#define HQI_FAST_NR 16
/* Rows of one packed A block and largest depth of one K block (A block = MC x KC floats). */
#define HQI_FAST_MC 72
#define HQI_FAST_KC 256

/* The instruction set in use: "avx512", "avx2+fma" or "portable", the widest the CPU has.
 * HQ_EMULATE_ISA=avx2 or portable in the environment forces that narrower code (chosen once, at
 * the first call; a value naming code the CPU cannot run is ignored). */
const char *hqi_fast_isa_name(void);

/* What a prepared layer computes. */
typedef enum hqi_fast_kind {
    HQI_FAST_CONV = 0, /* conv2d, any groups; depthwise (groups == cin == cout) has its own loop */
    HQI_FAST_DECONV,   /* transposed conv2d */
    HQI_FAST_DENSE,    /* fully connected: cin x cout, window ignored */
} hqi_fast_kind_t;

/* Packed weights and geometry of one conv / deconv / dense layer. */
typedef struct hqi_fast_conv hqi_fast_conv_t;

/* Packs `weights` ([kh, kw, cin/groups, cout], dense [cin, cout]) and `bias` ([cout] or NULL).
 * deconv: output_pad_h/w as in hqi_ref_deconv_params_t (0 otherwise). The caller owns *out
 * (hqi_fast_conv_destroy). */
typedef struct hqi_fast_conv_desc {
    hqi_fast_kind_t kind;
    hqi_ref_window_t window; /* conv, deconv */
    int output_pad_h, output_pad_w;
    int groups; /* >= 1 (dense: 1) */
    int64_t cin, cout;
} hqi_fast_conv_desc_t;

hq_status_t hqi_fast_conv_prepare(const hqi_fast_conv_desc_t *desc, const float *weights,
                                  const float *bias, hqi_fast_conv_t **out, hq_error_t *err);
void hqi_fast_conv_destroy(hqi_fast_conv_t *conv);
/* Scratch floats per thread a run of this layer needs (0 = pass NULL). */
int64_t hqi_fast_conv_scratch(const hqi_fast_conv_t *conv);

/* Runs the layer on `in` into `out` (extents as the reference kernel requires), then
 * `addend` (conv only, out's shape, or NULL) and the activation, fused into the output loop.
 * dense: in and out are [n, 1, 1, cin] / [n, 1, 1, cout] views of any flattened tensor. */
hq_status_t hqi_fast_conv_run(const hqi_fast_conv_t *conv, const hqi_ref_act_t *act,
                              hqi_ref_dims_t in, const float *input, const float *addend,
                              hqi_ref_dims_t out, float *output, float *scratch,
                              hqi_threadpool_t *pool, hq_error_t *err);

/* Depthwise (a conv prepared with groups == cin == cout) output rows [row0, row1) of one sample,
 * serially, with the same bits as hqi_fast_conv_run gives them: `input` holds that sample's
 * input rows from in_row0 = max(0, row0 * stride_h - pad_top) on, as many as those outputs read
 * (rows past the input's end are never read); `output` and `addend` (NULL or laid out as the
 * output) point at output row row0. `in` and `out` are the whole sample's extents. The fused
 * inverted-residual blocks (fuse.c) run the depthwise strip by strip with it. */
hq_status_t hqi_fast_dw_rows(const hqi_fast_conv_t *conv, const hqi_ref_act_t *act,
                             hqi_ref_dims_t in, const float *input, int64_t in_row0,
                             const float *addend, hqi_ref_dims_t out, float *output, int64_t row0,
                             int64_t row1, hq_error_t *err);

/* ---- memory-bound kernels (same contracts as the reference ones) -------------------------- */

hq_status_t hqi_fast_activation(const hqi_ref_act_t *act, int64_t rows, int64_t channels,
                                const float *input, float *output, hqi_threadpool_t *pool,
                                hq_error_t *err);
/* y = act(x * scale[c] + shift[c]): batch_norm folded at prepare time. May alias. */
hq_status_t hqi_fast_affine(const hqi_ref_act_t *act, int64_t rows, int64_t channels,
                            const float *scale, const float *shift, const float *input,
                            float *output, hqi_threadpool_t *pool, hq_error_t *err);
hq_status_t hqi_fast_maxpool(const hqi_ref_pool_params_t *params, hqi_ref_dims_t in,
                             const float *input, hqi_ref_dims_t out, float *output,
                             hqi_threadpool_t *pool, hq_error_t *err);
hq_status_t hqi_fast_avgpool(const hqi_ref_pool_params_t *params, hqi_ref_dims_t in,
                             const float *input, hqi_ref_dims_t out, float *output,
                             hqi_threadpool_t *pool, hq_error_t *err);
hq_status_t hqi_fast_global_avg_pool(hqi_ref_dims_t in, const float *input, float *output,
                                     hqi_threadpool_t *pool, hq_error_t *err);
/* Elementwise with the broadcasts real networks use: equal shapes, or one operand [N,1,1,C]
 * (or [1,1,1,C], [N,1,1,1], a scalar) against a full [N,H,W,C]. HQ_ERR_UNSUPPORTED for other
 * broadcasts: the caller then uses the reference kernel. */
hq_status_t hqi_fast_elementwise(hqi_ref_ew_op_t op, const hq_shape_t *a_shape, const float *a,
                                 const hq_shape_t *b_shape, const float *b,
                                 const hqi_ref_act_t *act, const hq_shape_t *out_shape,
                                 float *output, hqi_threadpool_t *pool, hq_error_t *err);
/* Nearest and bilinear resize with the reference's coordinate rules (bilinear weights in single
 * precision). */
hq_status_t hqi_fast_resize(const hqi_ref_resize_params_t *params, hqi_ref_dims_t in,
                            const float *input, hqi_ref_dims_t out, float *output,
                            hqi_threadpool_t *pool, hq_error_t *err);
hq_status_t hqi_fast_channel_shuffle(const hq_shape_t *shape, int groups, const float *input,
                                     float *output, hqi_threadpool_t *pool, hq_error_t *err);

/* ---- shared by the kernels_fast_*.c files ------------------------------------------------- */

/* What a GEMM micro-kernel applies to its tile after the sums, as act_row would (the same
 * operations, the same bits): c[r][j] = act(c[r][j] + (add[r] ? add[r][j] : 0)), channel of
 * column j = channel0 + j. add[r] has as many columns as the tile (full tiles only). */
typedef struct hqi_fast_epi {
    const hqi_ref_act_t *act;
    const float *add[HQI_FAST_MR];
    int64_t channel0;
} hqi_fast_epi_t;

/* The per-ISA inner loops. */
typedef struct hqi_fast_isa {
    const char *name;
    /* With init: c[r][j] = init[j] + sum_k a[r][k] * b[k*16 + j] (j < 16, r < 6), summed from
     * init; without: c[r][j] + (the same sum from zero), so that a long K cut into blocks is
     * summed block by block and the block sums added (two levels of rounding error instead of
     * one run over all of K). Then the epilogue `epi` when not NULL (in registers for the
     * activations that are a few compares and multiplies). Every sum goes in k order with one
     * rounding per step (FMA or not). */
    void (*gemm_6x16)(int64_t kc, const float *const *a, const float *b, float *const *c,
                      const float *init, const hqi_fast_epi_t *epi);
    /* row[j] = act(row[j] + (addend ? addend[j] : 0)), channel of j = channel0 + j. */
    void (*act_row)(const hqi_ref_act_t *act, float *row, const float *addend, int64_t channel0,
                    int64_t count);
    /* Depthwise, multiplier 1, one output pixel: out[c] = bias[c] + sum over the `taps` (input
     * pixel pointer, weight pointer) pairs of in[c] * w[c], c < channels, in tap order. */
    void (*dw_pixel)(int64_t channels, int taps, const float *const *in, const float *const *w,
                     const float *bias, float *out);
    /* gemm_6x16 for the first 8 columns only (b keeps its 16-float rows, c rows need 8). */
    void (*gemm_6x8)(int64_t kc, const float *const *a, const float *b, float *const *c,
                     const float *init, const hqi_fast_epi_t *epi);
    /* Depthwise, multiplier 1, `pixels` output pixels whose taps are all inside the input:
     * pixel q reads in + q*step + offsets[t] for tap t (weights w + t*channels), same sums in
     * the same order as dw_pixel; then, as act_row would (channel0 0), the addend (NULL or laid
     * out as out) and the activation (NULL: none). */
    void (*dw_row)(int64_t channels, int64_t pixels, const float *in, int64_t step,
                   const int64_t *offsets, int taps, const float *w, const float *bias, float *out,
                   const hqi_ref_act_t *act, const float *addend);
    /* z[i] = x[i*xs] op y[i*ys], i < n, strides 0 (broadcast one value) or 1; same float
     * operations as the reference (max/min give NaN when either operand is NaN). z may alias a
     * stride-1 operand. */
    void (*ew)(hqi_ref_ew_op_t op, float *z, const float *x, int64_t xs, const float *y, int64_t ys,
               int64_t n);
    /* y[i] = x[i] when x[i] > y[i] or x[i] is NaN (maxpool's running max), i < n. */
    void (*max_into)(float *y, const float *x, int64_t n);
    /* Winograd F(2x2, 3x3) input transform B^T d B of one 4x4 tile, per channel c < channels:
     * d[4*i + j] is the input pixel of tile row i, column j (a zero row when outside), and
     * v[x * stride + c] receives transformed value x (0 .. 15). */
    void (*wino_in)(int64_t channels, const float *const *d, float *v, int64_t stride);
    /* Output transform A^T m A + bias: m[x * stride + c] for x < 16; y[2*i + j] is output pixel
     * (i, j) of the tile or NULL when outside the output; bias may be NULL. */
    void (*wino_out)(int64_t channels, const float *m, int64_t stride, const float *bias,
                     float *const *y);
    /* Winograd F(4x4, 3x3): input transform B^T d B of one 6x6 tile (d[6*i + j], 36 values
     * per channel into v[x * stride + c]) and output transform A^T m A + bias into the 4x4
     * output pixels y[4*i + j] (NULL when outside the output). */
    void (*wino4_in)(int64_t channels, const float *const *d, float *v, int64_t stride);
    void (*wino4_out)(int64_t channels, const float *m, int64_t stride, const float *bias,
                      float *const *y);
    /* gemm_6x16 over two packed panels side by side (b: columns 0..15, b2: 16..31), c rows of
     * 32 columns, init of 32 floats, epi->add rows of 32 columns; the same sums per element.
     * NULL when the ISA has no wider tile (the caller then runs gemm_6x16 twice). */
    void (*gemm_6x32)(int64_t kc, const float *const *a, const float *b, const float *b2,
                      float *const *c, const float *init, const hqi_fast_epi_t *epi);
    /* One row over n (1..8) full panels: c[16*j + i] = init[16*j + i] + sum_k a[k] *
     * b[j * panel_stride + k*16 + i], or without init c[..] + that sum from zero, then the epilogue
     * (epi->add[0], a row of 16*n columns; channel of column x = epi->channel0 + x); the same sums
     * per element as gemm_6x16. NULL when the ISA has none (the caller then runs a 6-row tile of
     * copies). */
    void (*gemm_1xn)(int64_t kc, const float *a, const float *b, int64_t panel_stride, int n,
                     float *c, const float *init, const hqi_fast_epi_t *epi);
    /* Winograd's products: c[r][j] = the sum over k < kc of a[r][k] * b[k*16 + j] (j < 16; b2
     * for columns 16..31, or NULL for a 16-column tile), r < 6, summed in runs of kb: each run
     * from zero in k order, then added to the sum of the runs before it, as gemm_6x16 called
     * once per run (the first with init zero, the others without) would, but with the running
     * sum in registers instead of C. NULL when the ISA has none. */
    void (*gemm_runs)(int64_t kc, int64_t kb, const float *const *a, const float *b,
                      const float *b2, float *const *c);
    /* gemm_6x32 over nb K blocks of kc rows each in one call, as nb calls would compute it
     * (block i: A rows a[i * a_stride + r], B panels b + i * b_stride and b2 + i * b_stride;
     * init, when not NULL, seeds block 0, else block 0's sum is added to C; each later block
     * summed from zero and added; the epilogue after the last), with the sum of the blocks so
     * far in registers instead of C. NULL when the ISA has none. */
    void (*gemm_blocks)(int nb, int64_t kc, const float *const *a, int64_t a_stride, const float *b,
                        const float *b2, int64_t b_stride, float *const *c, const float *init,
                        const hqi_fast_epi_t *epi);
    /* row[k] = x[k] + x[stride + k] + ... + x[(pixels - 1) * stride + k], k < width, summed in
     * pixel order in float from 0 (the row sums of the global average pool). */
    void (*sum_pixels)(const float *x, int64_t pixels, int64_t stride, int64_t width, float *row);
    /* Depthwise, multiplier 1, output pixels x0 .. x1-1 of one output row whose windows may
     * reach past the input's left or right edge: pixel q's tap (r, kx), r < rows, kx < kw,
     * reads in + r*row_step + ix*channels with ix = q*stride - pad_left + kx*dilation where
     * 0 <= ix < in_w (weights w + (r*kw + kx)*channels), and sums the taps inside as dw_pixel
     * does (bias, then those taps in order, one FMA each); then, as act_row would (channel0
     * 0), the addend (NULL or laid out as out) and the activation (NULL: none): the same bits
     * as dw_pixel followed by act_row. in: column 0 of the first kernel
     * row; out and addend: pixel x0's. NULL when the ISA has none (the caller then runs
     * dw_pixel pixel by pixel). */
    void (*dw_span)(int64_t channels, int64_t x0, int64_t x1, const float *in, int64_t row_step,
                    int64_t in_w, int rows, int kw, int stride, int dilation, int pad_left,
                    const float *w, const float *bias, float *out, const hqi_ref_act_t *act,
                    const float *addend);
    /* gemm_6x32 over a full panel (b) and the group's last panel (b2) of cols2 columns
     * (1..15): c rows, init and epi->add of 16 + cols2 columns, nothing past them read or
     * written; the same sums per element, and the epilogue each panel got from gemm_6x16 and
     * gemm_6x8 or the stored-tile pass (act_row) before, the same bits. NULL when the ISA has
     * none. */
    void (*gemm_6x32_part)(int64_t kc, const float *const *a, const float *b, const float *b2,
                           int cols2, float *const *c, const float *init,
                           const hqi_fast_epi_t *epi);
} hqi_fast_isa_t;

const hqi_fast_isa_t *hqi_fast_isa(void);

/* Whether an ISA's GEMM epilogues and depthwise loops apply `act` in registers: the
 * activations that are a few compares and multiplies (the same operations as act_row's vector
 * loops, so the same bits), prelu with a slope per channel, and sigmoid and silu (their own
 * e^x and reciprocal: within a few ulp of act_row's; the depthwise border pixels and AVX2's
 * last 8 columns keep act_row's form for them). The others go through act_row after the
 * store. The AVX2 and AVX-512 files share this test. */
static inline bool hqi_fast_act_in_registers(const hqi_ref_act_t *act)
{
    switch (act->type) {
    case HQ_ACT_SIGMOID:
    case HQ_ACT_SILU:
    case HQ_ACT_LINEAR:
    case HQ_ACT_RELU:
    case HQ_ACT_RELU6:
    case HQ_ACT_LEAKY:
    case HQ_ACT_HARDSWISH:
    case HQ_ACT_HARDSIGMOID:
    case HQ_ACT_CLIP:
        return true;
    case HQ_ACT_PRELU:
        return act->slope_count != 1;
    default:
        return false;
    }
}

/* How a depthwise loop finishes its outputs: the addend and the activation in registers
 * (vact: NULL when there is no activation or it is linear; vadd: the addend or NULL) or, when
 * `after`, act_row over the stored pixels, the addend with it (hqi_fast_dw_finish_after).
 * Sigmoid and silu go after unless `sigmoid_in_registers`: the border pixels keep act_row's
 * form for them (the registers' differs in the last bits). */
typedef struct hqi_fast_dw_finish {
    const hqi_ref_act_t *vact;
    const float *vadd;
    bool after;
} hqi_fast_dw_finish_t;

static inline hqi_fast_dw_finish_t
hqi_fast_dw_finish_of(const hqi_ref_act_t *act, const float *addend, bool sigmoid_in_registers)
{
    const bool fused =
        !act ||
        (hqi_fast_act_in_registers(act) &&
         (sigmoid_in_registers || (act->type != HQ_ACT_SIGMOID && act->type != HQ_ACT_SILU)));
    return (hqi_fast_dw_finish_t){.vact = act && act->type != HQ_ACT_LINEAR && fused ? act : NULL,
                                  .vadd = fused ? addend : NULL,
                                  .after = act && !fused};
}

/* The finish after the sums (finish.after): act_row over `pixels` stored pixels of `channels`
 * values from `out`, each with its addend pixel (addend NULL: none). */
static inline void hqi_fast_dw_finish_after(void (*act_row)(const hqi_ref_act_t *, float *,
                                                            const float *, int64_t, int64_t),
                                            const hqi_ref_act_t *act, float *out,
                                            const float *addend, int64_t pixels, int64_t channels)
{
    for (int64_t q = 0; q < pixels; q++)
        act_row(act, out + q * channels, addend ? addend + q * channels : NULL, 0, channels);
}

/* Runs CALL(a, type), the activation's type a constant for the common ones (linear, with a
 * NULL; relu, relu6, hardswish, silu) and act's own for the rest: the depthwise loops of the AVX2
 * and AVX-512 files keep one copy per common activation, so that the compiler keeps their
 * addresses and weights in registers instead of the stack. */
#define HQI_FAST_BY_ACTIVATION(act, CALL)                                                          \
    switch ((act) ? (act)->type : HQ_ACT_LINEAR) {                                                 \
    case HQ_ACT_LINEAR:                                                                            \
        CALL(NULL, HQ_ACT_LINEAR);                                                                 \
        break;                                                                                     \
    case HQ_ACT_RELU:                                                                              \
        CALL((act), HQ_ACT_RELU);                                                                  \
        break;                                                                                     \
    case HQ_ACT_RELU6:                                                                             \
        CALL((act), HQ_ACT_RELU6);                                                                 \
        break;                                                                                     \
    case HQ_ACT_HARDSWISH:                                                                         \
        CALL((act), HQ_ACT_HARDSWISH);                                                             \
        break;                                                                                     \
    case HQ_ACT_SILU:                                                                              \
        CALL((act), HQ_ACT_SILU);                                                                  \
        break;                                                                                     \
    default:                                                                                       \
        CALL((act), (act)->type);                                                                  \
        break;                                                                                     \
    }

/* The taps *lo .. *hi of a window row (or column) of `taps` taps, tap k reading input position
 * first + k * dilation, that fall inside the input's `extent`; *lo > *hi when none does. The
 * depthwise loops sum only those (a tap outside is skipped, not added as zero: -0 stays). */
static inline void hqi_fast_taps_inside(int64_t first, int taps, int dilation, int64_t extent,
                                        int *lo, int *hi)
{
    int l = 0, h = taps - 1;
    while (l < taps && first + (int64_t)l * dilation < 0)
        l++;
    while (h >= 0 && first + (int64_t)h * dilation >= extent)
        h--;
    *lo = l;
    *hi = h;
}

/* Whether a depthwise row's taps are kernel rows of `len` consecutive columns (offsets one
 * pixel apart within a row): the windows the ISAs' row loops have a form for. */
static inline bool hqi_fast_taps_in_runs(const int64_t *offsets, int taps, int len,
                                         int64_t channels)
{
    if (taps % len)
        return false;
    for (int t = 0; t < taps; t++)
        if (t % len && offsets[t] - offsets[t - 1] != channels)
            return false;
    return true;
}
/* Replaces the chosen ISA (NULL: back to the automatic choice). For tests, which run both the
 * portable and the AVX2 code in one process; never while a kernel runs. */
void hqi_fast_isa_override(const hqi_fast_isa_t *isa);
/* One elementwise op on two floats, as the reference computes it (the tails of the ISA loops). */
float hqi_fast_ew_one(hqi_ref_ew_op_t op, float x, float y);
/* The portable, AVX2 and AVX-512 tables (the last two NULL when not compiled in or when the CPU
 * lacks the features: AVX2+FMA; AVX-512F/BW/DQ/VL besides). */
extern const hqi_fast_isa_t hqi_fast_isa_portable;
const hqi_fast_isa_t *hqi_fast_isa_avx2(void);
const hqi_fast_isa_t *hqi_fast_isa_avx512(void);

/* ---- the prepared layer, shared by kernels_fast_conv.c (prepare, depthwise, entry) and
 * kernels_fast_gemm.c (packed layout, GEMM driver); nothing else reads it ------------------ */

struct hqi_fast_conv {
    hqi_fast_conv_desc_t desc;
    int64_t cin_group, cout_group; /* channels per group */
    int taps;                      /* kh * kw (dense: 1) */
    int64_t depth;      /* K of one GEMM: conv taps * cin_group, deconv and dense cin_group */
    int64_t panels;     /* column panels per group: ceil(cout_group / NR) */
    int64_t block;      /* rows of a full K block */
    int64_t blocks;     /* K blocks */
    int64_t tap_blocks; /* tapwise: K blocks per tap */
    bool depthwise;     /* conv with groups == cin == cout: the dedicated loop */
    bool direct;        /* A rows read in place (no im2col) */
    bool tapwise;       /* conv whose K blocks never straddle a tap: A rows are read
                           in place per tap (a zero row where the tap is in the pad) */
    bool rowwise;       /* conv with few input channels, one group: one K block per kernel
                           row, read in place where the window row lies inside the input */
    bool scatter;       /* deconv with stride == kernel, no pads: one GEMM whose
                           columns are (tap, channel), scattered to the output */
    int64_t gemm_n;     /* columns of one GEMM: cout_group, or taps * cout (scatter) */
    bool winograd;      /* 3x3 stride 1: Winograd, (n+2)^2 GEMMs of [tiles x cin] . [cin x
                           cout] (packed: [(n+2)^2][cin x panels x NR]), n = wino_n */
    int wino_n;         /* output tile: 2 (F(2x2, 3x3), 16 GEMMs) or 4 (F(4x4, 3x3), 36) */
    int64_t wino_tiles; /* tiles per task (a multiple of MR) */
    int mc;             /* GEMM rows per task: HQI_FAST_MC, or MC_BIG (see there) */
    float *packed;      /* [gemms][K x panels x NR] (deconv: gemms = taps * groups) */
    float *bias16;      /* [groups][panels x NR], zero padded; NULL without bias */
    float *dw;          /* depthwise: [taps][C] */
    float *bias;        /* [cout] or NULL */
};

/* GEMM rows per task when B is large (kernels_fast_conv.c says when and why). */
#define HQI_FAST_MC_BIG 288
/* Kernel rows of a rowwise convolution at most (their A rows are found up front). */
#define HQI_FAST_ROW_BLOCKS 16

static inline int64_t hqi_fast_ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

/* One run of a prepared layer: everything a task needs to find its rows. */
typedef struct hqi_fast_job {
    const hqi_fast_conv_t *conv;
    const hqi_fast_isa_t *isa;
    const hqi_ref_act_t *act;
    hqi_ref_dims_t in, out;
    const float *input, *addend;
    float *output;
    float *scratch; /* per thread: MC x block */
    int64_t rows;   /* M of one GEMM */
    int64_t m_tiles, n_splits;
    int tap;        /* deconv: the tap being accumulated */
    bool seed_bias; /* first K block starts from the bias (else from C) */
    bool epilogue;  /* apply addend + activation after the last K block */
} hqi_fast_job_t;

/* Packs B[k][j] = src[k * ld + j] (k < depth, j < gemm_n) into `dst`, K block by K block, the
 * panels of a block side by side. */
void hqi_fast_conv_pack_b(const hqi_fast_conv_t *conv, const float *src, int64_t ld, float *dst);
/* The tasks of one run on the pool: the layer's GEMMs (conv, dense, one tap of a deconv; its
 * job->rows set), a deconv whose stride is its kernel as one GEMM scattered to the output
 * (job->rows: the input pixels), a Winograd convolution. */
void hqi_fast_conv_gemms(hqi_fast_job_t *job, hqi_threadpool_t *pool);
void hqi_fast_conv_scatter(hqi_fast_job_t *job, hqi_threadpool_t *pool);
void hqi_fast_conv_winograd(hqi_fast_job_t *job, hqi_threadpool_t *pool);

#endif
