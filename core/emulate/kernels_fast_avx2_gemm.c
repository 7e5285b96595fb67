/* kernels_fast_avx2_gemm.c — the AVX2+FMA GEMM micro-kernels of the fast kernels: the 6 x 16
 * tile (12 ymm accumulators), two panels per call (6 x 32), the last 8 columns (6 x 8) and one
 * row over up to 8 panels (1 x n), each with the epilogue (addend, activation) in registers
 * where act8 has the activation, else act_row after the store. HQ_AVX2 on every function, as in
 * kernels_fast_avx2.c. */
#include <stdbool.h>

#include "emulate/kernels_fast.h"
#include "emulate/kernels_fast_avx2.h"

#ifdef HQI_FAST_AVX2

/* One row of a tile: the addend, then the activation, in registers. */
#define EPI_ADD(v, row, off)                                                                       \
    if (epi->add[row])                                                                             \
    v = _mm256_add_ps(v, _mm256_loadu_ps(epi->add[row] + (off)))
#define EPI_ACT(v, off) v = act8(epi->act, v, slope + (off))

/* 12 accumulators of 8 floats, 2 B vectors and 1 broadcast: 15 of the 16 ymm registers. */
HQ_AVX2 static inline __attribute__((always_inline)) void
gemm_6x16_body(int64_t kc, const float *const *a, const float *b, float *const *c,
               const float *init, const hqi_fast_epi_t *epi)
{
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    /* without init the block's sum starts from zero and is added to C at the end */
    c00 = c10 = c20 = c30 = c40 = c50 = init ? _mm256_loadu_ps(init) : _mm256_setzero_ps();
    c01 = c11 = c21 = c31 = c41 = c51 = init ? _mm256_loadu_ps(init + 8) : _mm256_setzero_ps();
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    for (int64_t k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_loadu_ps(b);
        const __m256 b1 = _mm256_loadu_ps(b + 8);
        b += 16;
        __m256 av = _mm256_broadcast_ss(a0 + k);
        c00 = _mm256_fmadd_ps(av, b0, c00);
        c01 = _mm256_fmadd_ps(av, b1, c01);
        av = _mm256_broadcast_ss(a1 + k);
        c10 = _mm256_fmadd_ps(av, b0, c10);
        c11 = _mm256_fmadd_ps(av, b1, c11);
        av = _mm256_broadcast_ss(a2 + k);
        c20 = _mm256_fmadd_ps(av, b0, c20);
        c21 = _mm256_fmadd_ps(av, b1, c21);
        av = _mm256_broadcast_ss(a3 + k);
        c30 = _mm256_fmadd_ps(av, b0, c30);
        c31 = _mm256_fmadd_ps(av, b1, c31);
        av = _mm256_broadcast_ss(a4 + k);
        c40 = _mm256_fmadd_ps(av, b0, c40);
        c41 = _mm256_fmadd_ps(av, b1, c41);
        av = _mm256_broadcast_ss(a5 + k);
        c50 = _mm256_fmadd_ps(av, b0, c50);
        c51 = _mm256_fmadd_ps(av, b1, c51);
    }
    if (!init) {
        c00 = _mm256_add_ps(_mm256_loadu_ps(c[0]), c00);
        c01 = _mm256_add_ps(_mm256_loadu_ps(c[0] + 8), c01);
        c10 = _mm256_add_ps(_mm256_loadu_ps(c[1]), c10);
        c11 = _mm256_add_ps(_mm256_loadu_ps(c[1] + 8), c11);
        c20 = _mm256_add_ps(_mm256_loadu_ps(c[2]), c20);
        c21 = _mm256_add_ps(_mm256_loadu_ps(c[2] + 8), c21);
        c30 = _mm256_add_ps(_mm256_loadu_ps(c[3]), c30);
        c31 = _mm256_add_ps(_mm256_loadu_ps(c[3] + 8), c31);
        c40 = _mm256_add_ps(_mm256_loadu_ps(c[4]), c40);
        c41 = _mm256_add_ps(_mm256_loadu_ps(c[4] + 8), c41);
        c50 = _mm256_add_ps(_mm256_loadu_ps(c[5]), c50);
        c51 = _mm256_add_ps(_mm256_loadu_ps(c[5] + 8), c51);
    }
    const bool fused = epi && hqi_fast_act_in_registers(epi->act);
    if (fused) {
        const float *slope =
            epi->act->type == HQ_ACT_PRELU ? epi->act->slope + epi->channel0 : NULL;
        EPI_ADD(c00, 0, 0);
        EPI_ADD(c01, 0, 8);
        EPI_ADD(c10, 1, 0);
        EPI_ADD(c11, 1, 8);
        EPI_ADD(c20, 2, 0);
        EPI_ADD(c21, 2, 8);
        EPI_ADD(c30, 3, 0);
        EPI_ADD(c31, 3, 8);
        EPI_ADD(c40, 4, 0);
        EPI_ADD(c41, 4, 8);
        EPI_ADD(c50, 5, 0);
        EPI_ADD(c51, 5, 8);
        if (epi->act->type != HQ_ACT_LINEAR) {
            EPI_ACT(c00, 0);
            EPI_ACT(c01, 8);
            EPI_ACT(c10, 0);
            EPI_ACT(c11, 8);
            EPI_ACT(c20, 0);
            EPI_ACT(c21, 8);
            EPI_ACT(c30, 0);
            EPI_ACT(c31, 8);
            EPI_ACT(c40, 0);
            EPI_ACT(c41, 8);
            EPI_ACT(c50, 0);
            EPI_ACT(c51, 8);
        }
    }
    _mm256_storeu_ps(c[0], c00);
    _mm256_storeu_ps(c[0] + 8, c01);
    _mm256_storeu_ps(c[1], c10);
    _mm256_storeu_ps(c[1] + 8, c11);
    _mm256_storeu_ps(c[2], c20);
    _mm256_storeu_ps(c[2] + 8, c21);
    _mm256_storeu_ps(c[3], c30);
    _mm256_storeu_ps(c[3] + 8, c31);
    _mm256_storeu_ps(c[4], c40);
    _mm256_storeu_ps(c[4] + 8, c41);
    _mm256_storeu_ps(c[5], c50);
    _mm256_storeu_ps(c[5] + 8, c51);
    for (int r = 0; epi && !fused && r < HQI_FAST_MR; r++)
        hqi_fast_avx2_act_row(epi->act, c[r], epi->add[r], epi->channel0, HQI_FAST_NR);
}

HQ_AVX2 void hqi_fast_avx2_gemm_6x16(int64_t kc, const float *const *a, const float *b,
                                     float *const *c, const float *init, const hqi_fast_epi_t *epi)
{
    gemm_6x16_body(kc, a, b, c, init, epi);
}

/* Two panels side by side (b: columns 0..15, b2: 16..31) as two 6x16 tiles in one call, the
 * first's then the second's (AVX2 has registers for one): the same sums and epilogue per
 * element as gemm_6x16 on each panel, the same bits. A tile of 16 columns over K = 16..64 is a
 * few hundred cycles, so the tile loop's bookkeeping per call was a tenth of a narrow 1x1
 * convolution's time; one call per two panels halves it. */
HQ_AVX2 void hqi_fast_avx2_gemm_6x32(int64_t kc, const float *const *a, const float *b,
                                     const float *b2, float *const *c, const float *init,
                                     const hqi_fast_epi_t *epi)
{
    gemm_6x16_body(kc, a, b, c, init, epi);
    float *c2[HQI_FAST_MR];
    hqi_fast_epi_t epi2;
    for (int r = 0; r < HQI_FAST_MR; r++)
        c2[r] = c[r] + HQI_FAST_NR;
    if (epi) {
        epi2 = *epi;
        epi2.channel0 += HQI_FAST_NR;
        for (int r = 0; r < HQI_FAST_MR; r++)
            epi2.add[r] = epi->add[r] ? epi->add[r] + HQI_FAST_NR : NULL;
    }
    gemm_6x16_body(kc, a, b2, c2, init ? init + HQI_FAST_NR : NULL, epi ? &epi2 : NULL);
}

HQ_AVX2 void hqi_fast_avx2_gemm_6x8(int64_t kc, const float *const *a, const float *b,
                                    float *const *c, const float *init, const hqi_fast_epi_t *epi)
{
    __m256 c0, c1, c2, c3, c4, c5;
    c0 = c1 = c2 = c3 = c4 = c5 = init ? _mm256_loadu_ps(init) : _mm256_setzero_ps();
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    for (int64_t k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_loadu_ps(b);
        b += 16;
        c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(a0 + k), b0, c0);
        c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(a1 + k), b0, c1);
        c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(a2 + k), b0, c2);
        c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(a3 + k), b0, c3);
        c4 = _mm256_fmadd_ps(_mm256_broadcast_ss(a4 + k), b0, c4);
        c5 = _mm256_fmadd_ps(_mm256_broadcast_ss(a5 + k), b0, c5);
    }
    if (!init) {
        c0 = _mm256_add_ps(_mm256_loadu_ps(c[0]), c0);
        c1 = _mm256_add_ps(_mm256_loadu_ps(c[1]), c1);
        c2 = _mm256_add_ps(_mm256_loadu_ps(c[2]), c2);
        c3 = _mm256_add_ps(_mm256_loadu_ps(c[3]), c3);
        c4 = _mm256_add_ps(_mm256_loadu_ps(c[4]), c4);
        c5 = _mm256_add_ps(_mm256_loadu_ps(c[5]), c5);
    }
    /* the AVX-512 table runs this kernel for its last panels of 8 columns: sigmoid and silu
     * stay in hqi_fast_avx2_act_row's form there, as its results were */
    const bool fused = epi && hqi_fast_act_in_registers(epi->act) &&
                       epi->act->type != HQ_ACT_SIGMOID && epi->act->type != HQ_ACT_SILU;
    if (fused) {
        const float *slope =
            epi->act->type == HQ_ACT_PRELU ? epi->act->slope + epi->channel0 : NULL;
        EPI_ADD(c0, 0, 0);
        EPI_ADD(c1, 1, 0);
        EPI_ADD(c2, 2, 0);
        EPI_ADD(c3, 3, 0);
        EPI_ADD(c4, 4, 0);
        EPI_ADD(c5, 5, 0);
        if (epi->act->type != HQ_ACT_LINEAR) {
            EPI_ACT(c0, 0);
            EPI_ACT(c1, 0);
            EPI_ACT(c2, 0);
            EPI_ACT(c3, 0);
            EPI_ACT(c4, 0);
            EPI_ACT(c5, 0);
        }
    }
    _mm256_storeu_ps(c[0], c0);
    _mm256_storeu_ps(c[1], c1);
    _mm256_storeu_ps(c[2], c2);
    _mm256_storeu_ps(c[3], c3);
    _mm256_storeu_ps(c[4], c4);
    _mm256_storeu_ps(c[5], c5);
    for (int r = 0; epi && !fused && r < HQI_FAST_MR; r++)
        hqi_fast_avx2_act_row(epi->act, c[r], epi->add[r], epi->channel0, 8);
}

/* One row over N (1..4) full panels: 2N accumulators (independent chains, so the FMAs overlap),
 * one B load per FMA, one broadcast of a[k] for all; each element summed as gemm_6x16 sums it. */
HQ_AVX2 static inline __attribute__((always_inline)) void
gemm_1xn_body(int64_t kc, const float *a, const float *b, int64_t stride, const int N, float *c,
              const float *init, const hqi_fast_epi_t *epi, int64_t off)
{
    __m256 acc[8];
    for (int j = 0; j < 2 * N; j++)
        acc[j] = init ? _mm256_loadu_ps(init + 8 * j) : _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        const __m256 av = _mm256_broadcast_ss(a + k);
        for (int j = 0; j < N; j++) {
            acc[2 * j] = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + j * stride + k * 16), acc[2 * j]);
            acc[2 * j + 1] =
                _mm256_fmadd_ps(av, _mm256_loadu_ps(b + j * stride + k * 16 + 8), acc[2 * j + 1]);
        }
    }
    for (int j = 0; !init && j < 2 * N; j++)
        acc[j] = _mm256_add_ps(_mm256_loadu_ps(c + 8 * j), acc[j]);
    const bool fused = epi && hqi_fast_act_in_registers(epi->act);
    const float *slope =
        fused && epi->act->type == HQ_ACT_PRELU ? epi->act->slope + epi->channel0 + off : NULL;
    for (int j = 0; j < 2 * N; j++) {
        __m256 v = acc[j];
        if (fused) {
            if (epi->add[0])
                v = _mm256_add_ps(v, _mm256_loadu_ps(epi->add[0] + off + 8 * j));
            if (epi->act->type != HQ_ACT_LINEAR)
                v = act8(epi->act, v, slope ? slope + 8 * j : NULL);
        }
        _mm256_storeu_ps(c + 8 * j, v);
    }
    if (epi && !fused)
        hqi_fast_avx2_act_row(epi->act, c, epi->add[0] ? epi->add[0] + off : NULL,
                              epi->channel0 + off, 16 * (int64_t)N);
}

/* One row over n (1..8) full panels, four panels (eight accumulators) at a time. */
HQ_AVX2 void hqi_fast_avx2_gemm_1xn(int64_t kc, const float *a, const float *b, int64_t stride,
                                    int n, float *c, const float *init, const hqi_fast_epi_t *epi)
{
    for (int j = 0; j < n; j += 4) {
        const int64_t off = 16 * (int64_t)j;
        const float *bj = b + j * stride, *ij = init ? init + off : NULL;
        switch (n - j < 4 ? n - j : 4) {
        case 4:
            gemm_1xn_body(kc, a, bj, stride, 4, c + off, ij, epi, off);
            break;
        case 3:
            gemm_1xn_body(kc, a, bj, stride, 3, c + off, ij, epi, off);
            break;
        case 2:
            gemm_1xn_body(kc, a, bj, stride, 2, c + off, ij, epi, off);
            break;
        default:
            gemm_1xn_body(kc, a, bj, stride, 1, c + off, ij, epi, off);
            break;
        }
    }
}

#endif
