/* hqrt_fast.h — the fast kernels' interface, shared by the executor (hqrt_run.c) and libhq's
 * quantized emulator (core/emulate/qemulator.c): the weights of one conv/dw/dense op packed once
 * for the fast kernels (hqrt_kernels_avx2.c, hqrt_kernels_vnni.c), then runs over output rows.
 * Model-independent: it takes the numerics' kernel parameters (hqrt_kernels_ref.h), never a
 * program. Plain C; no libhq headers (libhqrt is built from core/runtime/ alone). */
#ifndef HQRT_FAST_H
#define HQRT_FAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hqrt_kernels_ref.h"
#include "hq/hqrt.h"

/* Bytes after each arena that fast kernels may read (never use) with full-width vector loads. */
#define HQRT_ARENA_SLACK 64

/* Per-op data prepared at open time for the fast kernels. Owned by the model. */
typedef struct hqrt_i_prepared {
    bool fast;            /* the op runs a fast kernel (conv/dense, maxpool), split by rows */
    int kind;             /* fast kernel variant (hqrt_kernels_fast_internal.h) */
    bool dense;           /* a dense op: the input is one pixel of h*w*c channels */
    bool direct;          /* VNNI: 1x1 window, input pixels used in place when possible;
                           * AVX-512 depthwise: a 1x1 window run as flat rows */
    int64_t rows;         /* output rows (VNNI and AVX2 GEMM convs: output pixels) the threads
                           * share */
    int64_t min_rows;     /* fewest rows worth one piece of a shared op (>= 1) */
    void *packed;         /* weights repacked for the fast kernel (aligned_alloc), or NULL */
    int64_t depth;        /* accumulation depth per output (taps * channels per group) */
    int64_t depth_padded; /* depth rounded up to the kernel's vector width */
    int64_t row_bytes;    /* VNNI: bytes per kernel row when rows are padded to 4, else 0 */
    bool exact_reads;     /* never read past an input's last byte (buffers without slack) */
    size_t scratch;       /* bytes of scratch one thread needs */
    const void *finish;   /* VNNI: per-block output-stage constants inside packed, or NULL */
    bool lut_vbmi;        /* VNNI, AVX-512 depthwise: the stage's lut is looked up by vpermi2b
                           * (hqrt_i_lut_vbmi at prepare time), not by gathers */
    bool grouped;         /* conv/dense: runs a group of samples in one kernel call (hqrt_run.c) */
    int ew_pair;          /* elementwise: HQRT_EW_PAIR_FIRST (computed by the next op's pair),
                             HQRT_EW_PAIR_SECOND (computes the previous op too), else 0 */
    bool dw_quads;        /* AVX-512 depthwise: rows run on vpdpbusd over quads of input
                           * columns (hqrt_kernels_dw.c), not on pairs of taps */
} hqrt_i_prepared_t;

enum { HQRT_EW_PAIR_FIRST = 1, HQRT_EW_PAIR_SECOND = 2 };

/* Fast conv/dw/dense (hqrt_kernels_avx2.c, hqrt_kernels_vnni.c). prepare decides whether an op
 * qualifies (8-bit input, 4/8-bit weights, shapes the kernel handles) and packs its weights; run
 * computes output rows [row_begin, row_end) bit-exactly like hqrt_conv2d / hqrt_dense (same
 * int64 sums, same output stage functions).
 * prepare takes the kernel's own parameters (in/out dims of one sample); exact_reads for input
 * buffers without HQRT_ARENA_SLACK bytes after them (no padded rows, no wide patch copies). The
 * quantized emulator prepares its conv/dense layers this way. Free prep->packed when done. */
hqrt_status_t hqrt_i_conv_prepare_kernel(const hqrt_conv_params_t *kp, bool dense, hqrt_dims_t in,
                                         hqrt_dims_t out, const void *w, const int64_t *bias,
                                         bool exact_reads, const char *name,
                                         hqrt_i_prepared_t *prep, hqrt_error_t *err);
int hqrt_i_conv_fast(const hqrt_i_prepared_t *prep, const hqrt_conv_params_t *kp, hqrt_dims_t in,
                     const uint8_t *input, const int64_t *bias, const hqrt_addend_t *addend,
                     hqrt_dims_t out, uint8_t *output, int64_t row_begin, int64_t row_end,
                     uint8_t *scratch);

/* hqrt_i_conv_fast over `samples` samples in one call (the runtime's grouped batches,
 * docs/deploy.md "Batches"), so that the kernel reads a block of weights once for the pixels of
 * every sample: output pixels [row_begin, row_end) of the samples' pixels in order (sample s's
 * pixel p is s * prep->rows + p), sample s's input, addend and output at s * stride bytes past
 * the first's. Ops whose kernel takes it have hqrt_i_conv_samples_scratch > 0 (the scratch it
 * needs; 0: run the samples one by one); with several samples the output must be 8-bit codes
 * and the addend, if any, 8-bit (else -1, nothing written). Same bytes as one call per sample. */
size_t hqrt_i_conv_samples_scratch(const hqrt_i_prepared_t *prep);
int hqrt_i_conv_fast_samples(const hqrt_i_prepared_t *prep, const hqrt_conv_params_t *kp,
                             hqrt_dims_t in, const uint8_t *input, const int64_t *bias,
                             const hqrt_addend_t *addend, hqrt_dims_t out, uint8_t *output,
                             int64_t samples, size_t stride, int64_t row_begin, int64_t row_end,
                             uint8_t *scratch);

/* Vector lanes for the per-element kernels (hqrt_kernels_stage.c), bit-exact with the
 * reference. hqrt_i_vector_isa: the variant this CPU runs now, HQRT_ISA_AVX512 (AVX512F/BW/DQ/
 * VL), HQRT_ISA_AVX2 (also with HQRT_NO_VNNI=1), or HQRT_ISA_REFERENCE (no AVX2, or
 * HQRT_NO_FAST=1); every function below takes it, so tests can run each variant. */
enum { HQRT_ISA_REFERENCE = 0, HQRT_ISA_AVX2 = 1, HQRT_ISA_AVX512 = 2 };
int hqrt_i_vector_isa(void);

/* out[j] = hqrt_output_code(stage, (bias ? bias[ch0 + j] : 0) + acc[j], ch0 + j) for j < n,
 * codes of stage->out_bits bits. The 64-bit path runs the reference. */
void hqrt_i_stage_row(int isa, const hqrt_output_stage_t *stage, const int32_t *acc,
                      const int64_t *bias, int32_t ch0, int32_t n, void *out);

/* hqrt_i_stage_row of `pixels` runs of n channels (0..n-1) each, run px's accumulators at
 * acc + px * astride and its codes after the previous run's (consecutive output pixels). */
void hqrt_i_stage_block(int isa, const hqrt_output_stage_t *stage, const int32_t *acc,
                        size_t astride, const int64_t *bias, int32_t n, int32_t pixels, void *out);

/* The output stage of `pixels` pixels of `channels` channels each (acc and out pixel after
 * pixel, channel innermost): hqrt_i_stage_block, or, for fewer than 8 channels (and not a
 * multiple of 8), runs of whole pixels with the stage's constants repeated to whole vectors. */
void hqrt_i_stage_pixels(int isa, const hqrt_output_stage_t *stage, const int32_t *acc,
                         const int64_t *bias, int32_t channels, int64_t pixels, void *out);

/* The same with a residual addend, as a conv ends (hqrt_conv2d): out[j] = the code of
 * requantize(acc[j] + bias[ch0 + j]) + requantize(addend code first + j - its zp) through
 * hqrt_output_code_sum, in channel ch0 + j. The 64-bit path runs the reference's steps. */
void hqrt_i_stage_row_addend(int isa, const hqrt_output_stage_t *stage, const int32_t *acc,
                             const int64_t *bias, int32_t ch0, int32_t n,
                             const hqrt_addend_t *addend, size_t first, void *out);

/* hqrt_elementwise (same arguments, same status, same codes): vector runs along the innermost
 * axis for every broadcast form on the 32-bit path; the reference otherwise. */
int hqrt_i_elementwise_fast(int isa, const hqrt_ew_params_t *params, const hqrt_shape_t *a_shape,
                            const void *a, const hqrt_shape_t *b_shape, const void *b,
                            const hqrt_shape_t *out_shape, void *output);

/* Fewest output pixels for which an elementwise op becomes a per-channel table
 * (hqrt_kernels_table.c): the table costs 256 evaluations per channel. */
#define HQRT_EW_TABLE_MIN_PIXELS 512

/* Scratch bytes hqrt_i_elementwise_table / hqrt_i_elementwise_pair need for C channels. */
size_t hqrt_i_ew_table_bytes(int32_t channels);

/* hqrt_elementwise (same codes) as a per-channel lookup when one operand is 8-bit codes of the
 * output's shape, the other is broadcast along every axis but the channels (C > 1), the stage
 * is per tensor, the output 8-bit and it has at least HQRT_EW_TABLE_MIN_PIXELS pixels: the table
 * T[c][q] is made by hqrt_i_elementwise_fast itself; and a sum, max or min of two 8-bit tensors
 * of the output's shape (at least 4096 outputs, 8-bit output, no lut or negative-side
 * multiplier) by tables of each operand's 256 requantized terms (no scratch needed).
 * HQRT_KERNEL_OK, or -1 (nothing written) when the op is not of such a form or the scratch is
 * short (the caller runs it another way). */
int hqrt_i_elementwise_table(int isa, const hqrt_ew_params_t *p, const hqrt_shape_t *as,
                             const void *a, const hqrt_shape_t *bs, const void *b,
                             const hqrt_shape_t *os, void *out, void *scratch, size_t scratch_size);

/* Two elementwise ops as one table: m = f(x, s) with s one code per channel (C > 1), then
 * out = g(x, m); x is in slot a of f when f_x_is_a (else b), likewise for g. Per-tensor stages,
 * 8-bit x, m and out. hqrt_i_elementwise_pair_table writes hqrt_i_ew_pair_table_bytes(C) bytes
 * at `table`: T[c][q] = g(q, f(q, s[c])) first, made by hqrt_i_elementwise_fast (any isa); -1
 * when the ops are not of that form. hqrt_i_elementwise_lookup then gives out[i] =
 * T[i % C][x[i]] for pixels of C channels, the codes g would write from the m f would write.
 * hqrt_i_elementwise_pair does both for xs-shaped x with a table in scratch (at least the
 * table's bytes + 64), -1 (nothing written) when not of that form. */
size_t hqrt_i_ew_pair_table_bytes(int32_t channels);
int hqrt_i_elementwise_pair_table(int isa, const hqrt_ew_params_t *f, bool f_x_is_a,
                                  const hqrt_ew_params_t *g, bool g_x_is_a, int32_t channels,
                                  const void *s, void *table);
void hqrt_i_elementwise_lookup(int isa, const void *table, const void *x, int64_t pixels,
                               int32_t channels, void *out);
int hqrt_i_elementwise_pair(int isa, const hqrt_ew_params_t *f, bool f_x_is_a,
                            const hqrt_ew_params_t *g, bool g_x_is_a, const hqrt_shape_t *xs,
                            const void *x, const hqrt_shape_t *ss, const void *s, void *out,
                            void *scratch, size_t scratch_size);

/* hqrt_activation (same arguments, same status, same codes): the centred codes q - in_zp run
 * through hqrt_i_stage_row in chunks (per tensor: across rows; per channel: within a row). */
int hqrt_i_activation_fast(int isa, int32_t in_bits, int32_t in_zp,
                           const hqrt_output_stage_t *stage, int64_t rows, int32_t channels,
                           const void *input, void *output);

/* hqrt_global_avg_pool (same arguments, same status, same codes): 8-bit codes summed pixel
 * after pixel in int32 lanes, then the vector output stage; the reference otherwise. */
int hqrt_i_global_avg_pool_fast(int isa, int32_t in_bits, int32_t in_zp,
                                const hqrt_output_stage_t *stage, hqrt_dims_t in, const void *input,
                                void *output);

/* hqrt_resize (same codes) over output rows [row_begin, row_end) of every sample: nearest copies
 * each pixel's channels (any width of codes), bilinear computes in exact double lanes (8-bit
 * codes; AVX-512 or AVX2). Arguments the fast path does not take run the reference, which
 * needs the whole output (row_begin 0, row_end out.h; else HQRT_KERNEL_ERR_ARGUMENT);
 * hqrt_i_resize_rows_fast says which resizes take row pieces. */
int hqrt_i_resize_fast(int isa, const hqrt_resize_params_t *p, hqrt_dims_t in, const void *input,
                       hqrt_dims_t out, void *output, int64_t row_begin, int64_t row_end);
bool hqrt_i_resize_rows_fast(int isa, const hqrt_resize_params_t *p, hqrt_dims_t out);

/* hqrt_deconv2d (same arguments, same status, same codes): output channels in vector lanes with
 * int32 sums for 8-bit inputs and 4/8-bit weights, groups 1 (hqrt_kernels_deconv.c); the
 * reference otherwise. */
int hqrt_i_deconv_fast(int isa, const hqrt_conv_params_t *params, hqrt_dims_t in, const void *input,
                       const void *weights, const int64_t *bias, hqrt_dims_t out, void *output,
                       void *scratch);

#endif
