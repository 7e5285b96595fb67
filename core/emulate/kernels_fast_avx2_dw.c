/* kernels_fast_avx2_dw.c — the AVX2+FMA depthwise loops of the fast kernels: one pixel
 * (dw_pixel), rows of pixels whose windows lie inside the input (dw_row: 3x3 stride 1 four
 * pixels at a time, kernel rows of 3 or 5 columns at stride 1 or 2, any other window) and the
 * border pixels of a row (dw_span), 8 channels per register with the channels past the last
 * multiple of 8 one at a time; the addend and the activation in registers where act8 has it.
 * HQ_AVX2 on every function, as in kernels_fast_avx2.c. */
#include <stdbool.h>

#include "emulate/kernels_fast.h"
#include "emulate/kernels_fast_avx2.h"

#ifdef HQI_FAST_AVX2

HQ_AVX2 void hqi_fast_avx2_dw_pixel(int64_t channels, int taps, const float *const *in,
                                    const float *const *w, const float *bias, float *out)
{
    int64_t c = 0;
    for (; c + 32 <= channels; c += 32) {
        __m256 a0, a1, a2, a3;
        if (bias) {
            a0 = _mm256_loadu_ps(bias + c);
            a1 = _mm256_loadu_ps(bias + c + 8);
            a2 = _mm256_loadu_ps(bias + c + 16);
            a3 = _mm256_loadu_ps(bias + c + 24);
        } else {
            a0 = a1 = a2 = a3 = _mm256_setzero_ps();
        }
        for (int t = 0; t < taps; t++) {
            const float *x = in[t] + c, *k = w[t] + c;
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x), _mm256_loadu_ps(k), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + 8), _mm256_loadu_ps(k + 8), a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + 16), _mm256_loadu_ps(k + 16), a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + 24), _mm256_loadu_ps(k + 24), a3);
        }
        _mm256_storeu_ps(out + c, a0);
        _mm256_storeu_ps(out + c + 8, a1);
        _mm256_storeu_ps(out + c + 16, a2);
        _mm256_storeu_ps(out + c + 24, a3);
    }
    for (; c + 8 <= channels; c += 8) {
        __m256 acc = bias ? _mm256_loadu_ps(bias + c) : _mm256_setzero_ps();
        for (int t = 0; t < taps; t++)
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(in[t] + c), _mm256_loadu_ps(w[t] + c), acc);
        _mm256_storeu_ps(out + c, acc);
    }
    for (; c < channels; c++) {
        float acc = bias ? bias[c] : 0.0f;
        for (int t = 0; t < taps; t++)
            acc = __builtin_fmaf(in[t][c], w[t][c], acc);
        out[c] = acc;
    }
}

/* One depthwise output register: the addend (laid out as the output), then the activation
 * (NULL: none). */
HQ_AVX2 static inline __attribute__((always_inline)) __m256
dw_finish(__m256 v, const hqi_ref_act_t *act, const float *add, const float *slope)
{
    if (add)
        v = _mm256_add_ps(v, _mm256_loadu_ps(add));
    return act ? act8(act, v, slope) : v;
}

/* 3x3 stride 1 (the kernel rows' inputs at r0, r1, r2 for the first pixel), `groups` groups of
 * four pixels, all channels of a group before the next: the loop of hqi_fast_avx2_dw_row's dense
 * rows alone, with the activation's type a constant (`type`), so that the compiler keeps the
 * addresses and weights in registers instead of the stack (twice the speed of that loop inside
 * the general function). The same sums in the same order; channels past the last multiple of 8
 * are left to the caller. */
HQ_AVX2 static inline __attribute__((always_inline)) void
dw3x3_body(int64_t channels, int64_t groups, const float *r0, const float *r1, const float *r2,
           const float *w, const float *bias, float *out, const hqi_ref_act_t *act,
           hq_activation_t type, const float *addend)
{
    hqi_ref_act_t fixed = {0};
    if (act) {
        fixed = *act;
        fixed.type = type;
    }
    const hqi_ref_act_t *vact = act ? &fixed : NULL;
    const int64_t c4 = 4 * channels;
    for (int64_t g = 0; g < groups; g++, r0 += c4, r1 += c4, r2 += c4, out += c4) {
        const float *add = addend ? addend + g * c4 : NULL;
        for (int64_t c = 0; c + 8 <= channels; c += 8) {
            __m256 a0 = bias ? _mm256_loadu_ps(bias + c) : _mm256_setzero_ps();
            __m256 a1 = a0, a2 = a0, a3 = a0;
#define DW3_ROW(r, t)                                                                              \
    {                                                                                              \
        const float *x = (r) + c;                                                                  \
        const __m256 k0 = _mm256_loadu_ps(w + (t)*channels + c);                                   \
        const __m256 k1 = _mm256_loadu_ps(w + ((t) + 1) * channels + c);                           \
        const __m256 k2 = _mm256_loadu_ps(w + ((t) + 2) * channels + c);                           \
        __m256 v = _mm256_loadu_ps(x);                                                             \
        a0 = _mm256_fmadd_ps(v, k0, a0);                                                           \
        v = _mm256_loadu_ps(x + channels);                                                         \
        a0 = _mm256_fmadd_ps(v, k1, a0);                                                           \
        a1 = _mm256_fmadd_ps(v, k0, a1);                                                           \
        v = _mm256_loadu_ps(x + 2 * channels);                                                     \
        a0 = _mm256_fmadd_ps(v, k2, a0);                                                           \
        a1 = _mm256_fmadd_ps(v, k1, a1);                                                           \
        a2 = _mm256_fmadd_ps(v, k0, a2);                                                           \
        v = _mm256_loadu_ps(x + 3 * channels);                                                     \
        a1 = _mm256_fmadd_ps(v, k2, a1);                                                           \
        a2 = _mm256_fmadd_ps(v, k1, a2);                                                           \
        a3 = _mm256_fmadd_ps(v, k0, a3);                                                           \
        v = _mm256_loadu_ps(x + 4 * channels);                                                     \
        a2 = _mm256_fmadd_ps(v, k2, a2);                                                           \
        a3 = _mm256_fmadd_ps(v, k1, a3);                                                           \
        v = _mm256_loadu_ps(x + 5 * channels);                                                     \
        a3 = _mm256_fmadd_ps(v, k2, a3);                                                           \
    }
            DW3_ROW(r0, 0);
            DW3_ROW(r1, 3);
            DW3_ROW(r2, 6);
#undef DW3_ROW
            const float *slope = type == HQ_ACT_PRELU ? act->slope + c : NULL;
            float *y = out + c;
            const float *ad = add ? add + c : NULL;
            _mm256_storeu_ps(y, dw_finish(a0, vact, ad, slope));
            _mm256_storeu_ps(y + channels, dw_finish(a1, vact, ad ? ad + channels : NULL, slope));
            _mm256_storeu_ps(y + 2 * channels,
                             dw_finish(a2, vact, ad ? ad + 2 * channels : NULL, slope));
            _mm256_storeu_ps(y + 3 * channels,
                             dw_finish(a3, vact, ad ? ad + 3 * channels : NULL, slope));
        }
    }
}

/* dw3x3_body for the activation `act` (NULL: none; one applied in registers). */
HQ_AVX2 __attribute__((noinline)) static void
dw3x3_avx2(int64_t channels, int64_t groups, const float *r0, const float *r1, const float *r2,
           const float *w, const float *bias, float *out, const hqi_ref_act_t *act,
           const float *addend)
{
#define DW3X3_CALL(a, type) dw3x3_body(channels, groups, r0, r1, r2, w, bias, out, a, type, addend)
    HQI_FAST_BY_ACTIVATION(act, DW3X3_CALL)
#undef DW3X3_CALL
}

/* Output pixels per strip of a depthwise row (dw_row_body). */
#define DW_STRIP 32

/* The shapes of window dw_row_body has loops for: taps in kernel rows of 3 or 5 consecutive
 * columns (3x3 and 5x5 windows, and the border rows' windows of fewer kernel rows) at stride 1
 * or 2, and any other window. */
enum { DW_ANY, DW_R3S1, DW_R5S1, DW_R3S2, DW_R5S2 };

/* P output pixels x 8 channels of a depthwise row, pixel p's window at x0 + p*step + offsets[t]:
 * a[p] (seeded by the caller) += the taps in order, one FMA each (as dw_pixel). wc: the weights
 * of this channel block (tap t at wc + t*ch). P and `form` are constants in every copy, so that
 * the arrays below are registers (P accumulators, a kernel row's R weights and one input: at
 * most 14 of the 16):
 * - runs of R columns at stride S: each kernel row's weights loaded once, then its input
 *   columns one after the other, column j feeding pixel (j - i) / S at tap i for every i it
 *   is a tap of; the taps of one pixel come in order as j grows. Each input column is loaded
 *   once for up to R FMAs (3x3 stride 1, eight pixels: 10 loads and 3 weights for 24 FMAs);
 * - any other window: each tap loads its weight and its P inputs. */
HQ_AVX2 static inline __attribute__((always_inline)) void
dw_group(__m256 *a, const int P, const float *x0, int64_t step, int64_t ch, const int64_t *offsets,
         int taps, const float *wc, const int form)
{
    if (form == DW_ANY) {
        for (int t = 0; t < taps; t++) {
            const int64_t o = offsets[t];
            const __m256 k = _mm256_loadu_ps(wc + t * ch);
#pragma GCC unroll 8
            for (int p = 0; p < P; p++)
                a[p] = _mm256_fmadd_ps(_mm256_loadu_ps(x0 + p * step + o), k, a[p]);
        }
        return;
    }
    const int R = form == DW_R3S1 || form == DW_R3S2 ? 3 : 5;
    const int S = form == DW_R3S2 || form == DW_R5S2 ? 2 : 1;
    for (int t = 0; t < taps; t += R) {
        const float *r = x0 + offsets[t];
        __m256 k[5];
#pragma GCC unroll 5
        for (int i = 0; i < R; i++)
            k[i] = _mm256_loadu_ps(wc + (t + i) * ch);
#pragma GCC unroll 24
        for (int j = 0; j < S * (P - 1) + R; j++) {
            const __m256 v = _mm256_loadu_ps(r + j * ch);
#pragma GCC unroll 5
            for (int i = 0; i < R; i++)
                if (j >= i && (j - i) % S == 0 && (j - i) / S < P)
                    a[(j - i) / S] = _mm256_fmadd_ps(v, k[i], a[(j - i) / S]);
        }
    }
}

/* P pixels of one channel block: the seed, dw_group, then the addend and activation on the
 * stores (pixel p's output at y + p*ch). */
HQ_AVX2 static inline __attribute__((always_inline)) void
dw_pixels(const int P, const float *x0, int64_t step, int64_t ch, const int64_t *offsets, int taps,
          const float *wc, const int form, __m256 seed, float *y, const float *add,
          const hqi_ref_act_t *vact, const float *slope)
{
    __m256 a[8];
#pragma GCC unroll 8
    for (int p = 0; p < P; p++)
        a[p] = seed;
    dw_group(a, P, x0, step, ch, offsets, taps, wc, form);
#pragma GCC unroll 8
    for (int p = 0; p < P; p++)
        _mm256_storeu_ps(y + p * ch, dw_finish(a[p], vact, add ? add + p * ch : NULL, slope));
}

/* One output pixel of a depthwise row, the V (1 or 4) registers of channels from x0's: V
 * independent sums over the taps in order (bias_c: the bias of those channels or NULL), then
 * the addend and the activation on the stores. */
HQ_AVX2 static inline __attribute__((always_inline)) void
dw_one(const int V, const float *x0, int64_t ch, const int64_t *offsets, int taps, const float *wc,
       const float *bias_c, float *y, const float *add, const hqi_ref_act_t *vact,
       const float *slope)
{
    __m256 a[4];
#pragma GCC unroll 4
    for (int v = 0; v < V; v++)
        a[v] = bias_c ? _mm256_loadu_ps(bias_c + 8 * v) : _mm256_setzero_ps();
    for (int t = 0; t < taps; t++) {
        const float *x = x0 + offsets[t], *k = wc + t * ch;
#pragma GCC unroll 4
        for (int v = 0; v < V; v++)
            a[v] = _mm256_fmadd_ps(_mm256_loadu_ps(x + 8 * v), _mm256_loadu_ps(k + 8 * v), a[v]);
    }
#pragma GCC unroll 4
    for (int v = 0; v < V; v++)
        _mm256_storeu_ps(y + 8 * v, dw_finish(a[v], vact, add ? add + 8 * v : NULL,
                                              slope ? slope + 8 * v : NULL));
}

/* Depthwise rows: eight output pixels x 8 channels per step (eight independent sums: the FMA's
 * latency times its two ports; four sums ran at half the FMA rate), then a step of four and
 * single pixels for the last ones; one block of 8 channels along a strip of DW_STRIP pixels
 * before the next, so that the kernel rows' inputs of that block stay in L1 while the windows
 * slide over them and the next block finds the rest of their cache lines there. Loops by window
 * (`form`, see dw_group) and activation (`type`), both constants in each copy, so that the
 * compiler keeps addresses and weights in registers. Each output element: bias, then the taps
 * in order, one FMA each (as dw_pixel); then the addend and the activation (NULL: none) in
 * registers. Channels past the last multiple of 8 are left to the caller. */
HQ_AVX2 static inline __attribute__((always_inline)) void
dw_row_body(int64_t channels, int64_t pixels, const float *in, int64_t step, const int64_t *offsets,
            int taps, const float *w, const float *bias, float *out, const hqi_ref_act_t *act,
            const float *addend, const int form, const hq_activation_t type)
{
    hqi_ref_act_t fixed = {0};
    if (act) {
        fixed = *act;
        fixed.type = type;
    }
    const hqi_ref_act_t *vact = act ? &fixed : NULL;
    const int64_t ch = channels;
    for (int64_t q = 0; q < pixels;) {
        const int P = pixels - q >= 8 ? 8 : pixels - q >= 4 ? 4 : 1;
        const float *x0 = in + q * step;
        float *y = out + q * ch;
        const float *add = addend ? addend + q * ch : NULL;
        int64_t c = 0;
        /* one pixel: four channel blocks at a time (four independent sums) */
        for (; P == 1 && c + 32 <= channels; c += 32)
            dw_one(4, x0 + c, ch, offsets, taps, w + c, bias ? bias + c : NULL, y + c,
                   add ? add + c : NULL, vact, type == HQ_ACT_PRELU && act ? act->slope + c : NULL);
        for (; c + 8 <= channels; c += 8) {
            const __m256 seed = bias ? _mm256_loadu_ps(bias + c) : _mm256_setzero_ps();
            const float *slope = type == HQ_ACT_PRELU && act ? act->slope + c : NULL;
            if (P == 8)
                dw_pixels(8, x0 + c, step, ch, offsets, taps, w + c, form, seed, y + c,
                          add ? add + c : NULL, vact, slope);
            else if (P == 4)
                dw_pixels(4, x0 + c, step, ch, offsets, taps, w + c, form, seed, y + c,
                          add ? add + c : NULL, vact, slope);
            else
                dw_pixels(1, x0 + c, step, ch, offsets, taps, w + c, DW_ANY, seed, y + c,
                          add ? add + c : NULL, vact, slope);
        }
        q += P;
    }
}

/* dw_row_body of one window form for the activation `act` (NULL: none; one applied in
 * registers): a copy per common activation, the type a constant in each. */
#define DW_ROW_CALL(a, type)                                                                       \
    dw_row_body(channels, pixels, in, step, offsets, taps, w, bias, out, a, addend, form, type)
#define DW_ROW_FORM(name, window)                                                                  \
    HQ_AVX2 __attribute__((noinline)) static void name(                                            \
        int64_t channels, int64_t pixels, const float *in, int64_t step, const int64_t *offsets,   \
        int taps, const float *w, const float *bias, float *out, const hqi_ref_act_t *act,         \
        const float *addend)                                                                       \
    {                                                                                              \
        const int form = window;                                                                   \
        HQI_FAST_BY_ACTIVATION(act, DW_ROW_CALL)                                                   \
    }
DW_ROW_FORM(dw_r3s1_avx2, DW_R3S1)
DW_ROW_FORM(dw_r5s1_avx2, DW_R5S1)
DW_ROW_FORM(dw_r3s2_avx2, DW_R3S2)
DW_ROW_FORM(dw_r5s2_avx2, DW_R5S2)
DW_ROW_FORM(dw_any_avx2, DW_ANY)
#undef DW_ROW_FORM
#undef DW_ROW_CALL

/* The channels past the last multiple of 8 of one depthwise output pixel, one at a time, each
 * summed as dw_pixel sums it; then the addend and the activation (NULL: none) as act_row's
 * scalar tail applies them. Tap t reads base + offsets[t], its weights at w + t*channels. */
HQ_AVX2 static void dw_tail(int64_t channels, int taps, const float *base, const int64_t *offsets,
                            const float *w, const float *bias, float *y, const hqi_ref_act_t *vact,
                            const float *add)
{
    for (int64_t d = channels - channels % 8; d < channels; d++) {
        float acc = bias ? bias[d] : 0.0f;
        for (int t = 0; t < taps; t++)
            acc = __builtin_fmaf(base[offsets[t] + d], w[t * channels + d], acc);
        if (add)
            acc += add[d];
        y[d] = vact ? hqi_ref_activate(vact, acc, d) : acc;
    }
}

/* Depthwise rows: every pixel's channels up to the last multiple of 8 by the loop of its
 * window's form (dw_row_body), the rest one at a time; an activation not applied in registers
 * after the sums. */
HQ_AVX2 void hqi_fast_avx2_dw_row(int64_t channels, int64_t pixels, const float *in, int64_t step,
                                  const int64_t *offsets, int taps, const float *w,
                                  const float *bias, float *out, const hqi_ref_act_t *act,
                                  const float *addend)
{
    const hqi_fast_dw_finish_t finish = hqi_fast_dw_finish_of(act, addend, true);
    const hqi_ref_act_t *vact = finish.vact;
    const float *vadd = finish.vadd;
    if (channels >= 8) {
        const bool s1 = step == channels, s2 = step == 2 * channels;
        const bool rows3 = hqi_fast_taps_in_runs(offsets, taps, 3, channels);
        int64_t done = 0;
        if (s1 && rows3 && taps == 9 && pixels >= 4) {
            /* 3x3 stride 1: four pixels at a time as before (eight, by dw_group, were slower) */
            dw3x3_avx2(channels, pixels / 4, in + offsets[0], in + offsets[3], in + offsets[6], w,
                       bias, out, vact, vadd);
            done = pixels / 4 * 4;
        }
        if (done == pixels)
            ;
        else if (done)
            dw_r3s1_avx2(channels, pixels - done, in + done * step, step, offsets, taps, w, bias,
                         out + done * channels, vact, vadd ? vadd + done * channels : NULL);
        else if ((s1 || s2) && hqi_fast_taps_in_runs(offsets, taps, 5, channels))
            (s1 ? dw_r5s1_avx2 : dw_r5s2_avx2)(channels, pixels, in, step, offsets, taps, w, bias,
                                               out, vact, vadd);
        else if ((s1 || s2) && rows3)
            (s1 ? dw_r3s1_avx2 : dw_r3s2_avx2)(channels, pixels, in, step, offsets, taps, w, bias,
                                               out, vact, vadd);
        else
            dw_any_avx2(channels, pixels, in, step, offsets, taps, w, bias, out, vact, vadd);
    }
    for (int64_t q = 0; channels % 8 && q < pixels; q++)
        dw_tail(channels, taps, in + q * step, offsets, w, bias, out + q * channels, vact,
                vadd ? vadd + q * channels : NULL);
    if (finish.after)
        hqi_fast_dw_finish_after(hqi_fast_avx2_act_row, act, out, addend, pixels, channels);
}

/* dw_span's pixels x0 .. x1-1 for the W (1 or 4) registers of channels c .. c + 8W - 1: W
 * independent sums per pixel (one alone waits on the FMA's latency at every tap). */
HQ_AVX2 static inline __attribute__((always_inline)) void
dw_span_block(const int W, int64_t c, int64_t ch, int64_t x0, int64_t x1, const float *in,
              int64_t row_step, int64_t in_w, int rows, int kw, int stride, int dilation,
              int pad_left, const float *w, const float *bias, float *out,
              const hqi_ref_act_t *vact, const float *vadd)
{
    const bool prelu = vact && vact->type == HQ_ACT_PRELU;
    for (int64_t q = x0; q < x1; q++) {
        const int64_t left = q * stride - pad_left; /* input column of tap kx = 0 */
        int lo, hi;
        hqi_fast_taps_inside(left, kw, dilation, in_w, &lo, &hi);
        __m256 acc[4];
#pragma GCC unroll 4
        for (int v = 0; v < W; v++)
            acc[v] = bias ? _mm256_loadu_ps(bias + c + 8 * v) : _mm256_setzero_ps();
        for (int r = 0; r < rows; r++) {
            const float *x = in + r * row_step + c;
            const float *k = w + (int64_t)r * kw * ch + c;
            for (int kx = lo; kx <= hi; kx++) {
                const float *xk = x + (left + (int64_t)kx * dilation) * ch;
#pragma GCC unroll 4
                for (int v = 0; v < W; v++)
                    acc[v] = _mm256_fmadd_ps(_mm256_loadu_ps(xk + 8 * v),
                                             _mm256_loadu_ps(k + kx * ch + 8 * v), acc[v]);
            }
        }
        float *y = out + (q - x0) * ch + c;
        const float *add = vadd ? vadd + (q - x0) * ch + c : NULL;
#pragma GCC unroll 4
        for (int v = 0; v < W; v++)
            _mm256_storeu_ps(y + 8 * v, dw_finish(acc[v], vact, add ? add + 8 * v : NULL,
                                                  prelu ? vact->slope + c + 8 * v : NULL));
    }
}

/* Depthwise border pixels (dw_span): one block of 32 channels (then 8) over all of the span's
 * pixels before the next, so that the block's weights (rows x kw x 128 bytes) stay in L1
 * instead of the whole layer's being read again for every pixel (7 x 7 x 1152 at 5 x 5:
 * 115 KB); each pixel sums the taps inside, in order (a tap outside is skipped, not added as
 * zero: the same bits as dw_pixel, -0 included), then the addend and the activation in
 * registers, except sigmoid and silu: act_row's (the registers' form differs in the last bits).
 * The channels past the last multiple of 8 one at a time, as dw_pixel and act_row's scalar
 * tails do them. */
HQ_AVX2 void hqi_fast_avx2_dw_span(int64_t channels, int64_t x0, int64_t x1, const float *in,
                                   int64_t row_step, int64_t in_w, int rows, int kw, int stride,
                                   int dilation, int pad_left, const float *w, const float *bias,
                                   float *out, const hqi_ref_act_t *act, const float *addend)
{
    const hqi_fast_dw_finish_t finish = hqi_fast_dw_finish_of(act, addend, false);
    const hqi_ref_act_t *vact = finish.vact;
    const float *vadd = finish.vadd;
    const int64_t ch = channels, full = channels - channels % 8;
    int64_t c = 0;
    for (; c + 32 <= full; c += 32)
        dw_span_block(4, c, ch, x0, x1, in, row_step, in_w, rows, kw, stride, dilation, pad_left, w,
                      bias, out, vact, vadd);
    for (; c < full; c += 8)
        dw_span_block(1, c, ch, x0, x1, in, row_step, in_w, rows, kw, stride, dilation, pad_left, w,
                      bias, out, vact, vadd);
    for (int64_t q = x0; full < channels && q < x1; q++) {
        const int64_t left = q * stride - pad_left;
        int lo, hi;
        hqi_fast_taps_inside(left, kw, dilation, in_w, &lo, &hi);
        float *y = out + (q - x0) * ch;
        const float *add = vadd ? vadd + (q - x0) * ch : NULL;
        for (int64_t d = full; d < channels; d++) {
            float acc = bias ? bias[d] : 0.0f;
            for (int r = 0; r < rows; r++)
                for (int kx = lo; kx <= hi; kx++)
                    acc =
                        __builtin_fmaf(in[r * row_step + (left + (int64_t)kx * dilation) * ch + d],
                                       w[((int64_t)r * kw + kx) * ch + d], acc);
            if (add)
                acc += add[d];
            y[d] = vact ? hqi_ref_activate(vact, acc, d) : acc;
        }
    }
    if (finish.after)
        hqi_fast_dw_finish_after(hqi_fast_avx2_act_row, act, out, addend, x1 - x0, ch);
}

#endif
