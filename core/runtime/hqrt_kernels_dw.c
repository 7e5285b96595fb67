/* hqrt_kernels_dw.c — the AVX-512 depthwise kernel (prepared as HQRT_KIND_DW512 when
 * hqrt_i_vector_isa() is AVX-512 at open time; the AVX2 one in hqrt_kernels_avx2.c otherwise).
 * Channels in 16 int32 lanes (the last group masked, so no read past a pixel's channels), the
 * window's rows and columns inside the input found once per output pixel instead of tested per
 * tap and channel group, products of the centred code (|q - zp| <= 255) and the weight summed in
 * int32: exact for the <= 65536 taps prepare allows, the same sums as the AVX2 kernel and the
 * reference's int64 ones. The output stage is hqrt_i_stage_row, or, with a residual addend,
 * hqrt_i_finish_value per value (the AVX2 kernel: hqrt_i_stage_row_addend). */
#include "hqrt_kernels_fast_internal.h"

#ifdef HQRT_HAVE_AVX2_BUILD
#include "hqrt_fast.h"

/* [first, last) of the kernel taps k with 0 <= origin + k * dilation < extent. */
static void taps_inside(int64_t origin, int32_t taps, int32_t dilation, int64_t extent,
                        int32_t *first, int32_t *last)
{
    int32_t k = 0;
    while (k < taps && origin + (int64_t)k * dilation < 0)
        k++;
    *first = k;
    while (k < taps && origin + (int64_t)k * dilation < extent)
        k++;
    *last = k;
}

__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) void
hqrt_i_dw_rows_avx512(const hqrt_i_prepared_t *prep, const hqrt_conv_params_t *kp, hqrt_dims_t in,
                      const uint8_t *input, const int64_t *bias, const hqrt_addend_t *addend,
                      hqrt_dims_t out, uint8_t *output, int64_t row_begin, int64_t row_end,
                      uint8_t *scratch)
{
    const int32_t c = in.c;
    const size_t cpad = (size_t)prep->depth_padded; /* channels rounded up to 16 */
    const int32_t *weights = prep->packed;          /* [kh*kw][cpad] int32 */
    int32_t *acc = (int32_t *)(void *)scratch;      /* cpad int32 */
    const __m512i zp = _mm512_set1_epi32(kp->in_zp);
    const int32_t bits = kp->out.out_bits;
    const size_t row_bytes = (size_t)in.w * (size_t)c;
    for (int64_t oy = row_begin; oy < row_end; oy++) {
        const int64_t y0 = oy * kp->stride_h - kp->pad_top;
        int32_t ky0, ky1;
        taps_inside(y0, kp->kernel_h, kp->dilation_h, in.h, &ky0, &ky1);
        for (int64_t ox = 0; ox < out.w; ox++) {
            const int64_t x0 = ox * kp->stride_w - kp->pad_left;
            int32_t kx0, kx1;
            taps_inside(x0, kp->kernel_w, kp->dilation_w, in.w, &kx0, &kx1);
            for (int32_t ch = 0; ch < c; ch += 16) {
                const __mmask16 k =
                    c - ch >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (c - ch)) - 1);
                __m512i a = _mm512_setzero_si512();
                for (int32_t ky = ky0; ky < ky1; ky++) {
                    const uint8_t *row =
                        input + (size_t)(y0 + (int64_t)ky * kp->dilation_h) * row_bytes + ch;
                    const int32_t *wrow = weights + (size_t)ky * (size_t)kp->kernel_w * cpad + ch;
                    for (int32_t kx = kx0; kx < kx1; kx++) {
                        const uint8_t *src =
                            row + (size_t)(x0 + (int64_t)kx * kp->dilation_w) * (size_t)c;
                        __m512i v = _mm512_sub_epi32(
                            _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, src)), zp);
                        __m512i w = _mm512_load_si512(wrow + (size_t)kx * cpad);
                        a = _mm512_add_epi32(a, _mm512_mullo_epi32(v, w));
                    }
                }
                _mm512_storeu_si512(acc + ch, a);
            }
            const size_t base = ((size_t)oy * (size_t)out.w + (size_t)ox) * (size_t)c;
            if (!addend) {
                hqrt_i_stage_row(HQRT_ISA_AVX512, &kp->out, acc, bias, 0, c,
                                 output + base * (bits == 16 ? 2u : 1u));
                continue;
            }
            for (int32_t o = 0; o < c; o++)
                hqrt_store(output, bits, base + (size_t)o,
                           hqrt_i_finish_value(kp, addend, (bias ? bias[o] : 0) + acc[o], o,
                                               base + (size_t)o));
        }
    }
}
#endif
