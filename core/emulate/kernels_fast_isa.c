/* kernels_fast_isa.c — the portable inner loops of the fast kernels and the run-time choice
 * between them, the AVX2+FMA ones (kernels_fast_avx2.c) and the AVX-512 ones
 * (kernels_fast_avx512.c). */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "emulate/kernels_fast.h"

static void act_row_portable(const hqi_ref_act_t *act, float *row, const float *addend,
                             int64_t channel0, int64_t count);

static void epilogue_portable(const hqi_fast_epi_t *epi, float *const *c, int64_t width)
{
    for (int r = 0; epi && r < HQI_FAST_MR; r++)
        act_row_portable(epi->act, c[r], epi->add[r], epi->channel0, width);
}

static void gemm_6x16_portable(int64_t kc, const float *const *a, const float *b, float *const *c,
                               const float *init, const hqi_fast_epi_t *epi)
{
    float acc[HQI_FAST_MR][HQI_FAST_NR];
    for (int r = 0; r < HQI_FAST_MR; r++)
        for (int j = 0; j < HQI_FAST_NR; j++)
            acc[r][j] = init ? init[j] : 0.0f; /* no init: the block's sum, then + C */
    for (int64_t k = 0; k < kc; k++) {
        const float *bk = b + k * HQI_FAST_NR;
        for (int r = 0; r < HQI_FAST_MR; r++) {
            const float av = a[r][k];
            for (int j = 0; j < HQI_FAST_NR; j++)
                acc[r][j] += av * bk[j];
        }
    }
    for (int r = 0; !init && r < HQI_FAST_MR; r++)
        for (int j = 0; j < HQI_FAST_NR; j++)
            acc[r][j] = c[r][j] + acc[r][j];
    for (int r = 0; r < HQI_FAST_MR; r++)
        memcpy(c[r], acc[r], sizeof acc[r]);
    epilogue_portable(epi, c, HQI_FAST_NR);
}

static void act_row_portable(const hqi_ref_act_t *act, float *row, const float *addend,
                             int64_t channel0, int64_t count)
{
    if (addend)
        for (int64_t j = 0; j < count; j++)
            row[j] += addend[j];
    if (act->type == HQ_ACT_LINEAR)
        return;
    for (int64_t j = 0; j < count; j++)
        row[j] = hqi_ref_activate(act, row[j], channel0 + j);
}

static void dw_pixel_portable(int64_t channels, int taps, const float *const *in,
                              const float *const *w, const float *bias, float *out)
{
    for (int64_t c = 0; c < channels; c++) {
        float acc = bias ? bias[c] : 0.0f;
        for (int t = 0; t < taps; t++)
            acc += in[t][c] * w[t][c];
        out[c] = acc;
    }
}

static void gemm_6x8_portable(int64_t kc, const float *const *a, const float *b, float *const *c,
                              const float *init, const hqi_fast_epi_t *epi)
{
    float acc[HQI_FAST_MR][8];
    for (int r = 0; r < HQI_FAST_MR; r++)
        for (int j = 0; j < 8; j++)
            acc[r][j] = init ? init[j] : 0.0f; /* no init: the block's sum, then + C */
    for (int64_t k = 0; k < kc; k++) {
        const float *bk = b + k * HQI_FAST_NR;
        for (int r = 0; r < HQI_FAST_MR; r++) {
            const float av = a[r][k];
            for (int j = 0; j < 8; j++)
                acc[r][j] += av * bk[j];
        }
    }
    for (int r = 0; !init && r < HQI_FAST_MR; r++)
        for (int j = 0; j < 8; j++)
            acc[r][j] = c[r][j] + acc[r][j];
    for (int r = 0; r < HQI_FAST_MR; r++)
        memcpy(c[r], acc[r], sizeof acc[r]);
    epilogue_portable(epi, c, 8);
}

static void dw_row_portable(int64_t channels, int64_t pixels, const float *in, int64_t step,
                            const int64_t *offsets, int taps, const float *w, const float *bias,
                            float *out, const hqi_ref_act_t *act, const float *addend)
{
    for (int64_t q = 0; q < pixels; q++) {
        const float *base = in + q * step;
        float *y = out + q * channels;
        for (int64_t c = 0; c < channels; c++) {
            float acc = bias ? bias[c] : 0.0f;
            for (int t = 0; t < taps; t++)
                acc += base[offsets[t] + c] * w[t * channels + c];
            y[c] = acc;
        }
        if (act && (addend || act->type != HQ_ACT_LINEAR))
            act_row_portable(act, y, addend ? addend + q * channels : NULL, 0, channels);
    }
}

float hqi_fast_ew_one(hqi_ref_ew_op_t op, float x, float y)
{
    switch (op) {
    case HQI_REF_EW_ADD:
        return x + y;
    case HQI_REF_EW_SUB:
        return x - y;
    case HQI_REF_EW_MUL:
        return x * y;
    case HQI_REF_EW_DIV:
        return x / y;
    case HQI_REF_EW_MAX:
        return x != x || y != y ? NAN : (x > y ? x : y);
    case HQI_REF_EW_MIN:
        return x != x || y != y ? NAN : (x < y ? x : y);
    case HQI_REF_EW_COUNT:
        break;
    }
    return x;
}

static void ew_portable(hqi_ref_ew_op_t op, float *z, const float *x, int64_t xs, const float *y,
                        int64_t ys, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        z[i] = hqi_fast_ew_one(op, x[i * xs], y[i * ys]);
}

static void max_into_portable(float *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = (x[i] > y[i] || x[i] != x[i]) ? x[i] : y[i];
}

static void wino_in_portable(int64_t channels, const float *const *d, float *v, int64_t stride)
{
    for (int64_t c = 0; c < channels; c++) {
        float r[4][4], x[4][4];
        for (int j = 0; j < 4; j++) {
            r[0][j] = d[j][c] - d[8 + j][c];
            r[1][j] = d[4 + j][c] + d[8 + j][c];
            r[2][j] = d[8 + j][c] - d[4 + j][c];
            r[3][j] = d[4 + j][c] - d[12 + j][c];
        }
        for (int i = 0; i < 4; i++) {
            x[i][0] = r[i][0] - r[i][2];
            x[i][1] = r[i][1] + r[i][2];
            x[i][2] = r[i][2] - r[i][1];
            x[i][3] = r[i][1] - r[i][3];
        }
        for (int i = 0; i < 16; i++)
            v[i * stride + c] = x[i / 4][i % 4];
    }
}

static void wino_out_portable(int64_t channels, const float *m, int64_t stride, const float *bias,
                              float *const *y)
{
    for (int64_t c = 0; c < channels; c++) {
        float s[2][4];
        for (int j = 0; j < 4; j++) {
            const float m0 = m[j * stride + c], m1 = m[(4 + j) * stride + c];
            const float m2 = m[(8 + j) * stride + c], m3 = m[(12 + j) * stride + c];
            s[0][j] = m0 + m1 + m2;
            s[1][j] = m1 - m2 - m3;
        }
        const float b = bias ? bias[c] : 0.0f;
        for (int i = 0; i < 2; i++) {
            if (y[2 * i])
                y[2 * i][c] = (s[i][0] + s[i][1] + s[i][2]) + b;
            if (y[2 * i + 1])
                y[2 * i + 1][c] = (s[i][1] - s[i][2] - s[i][3]) + b;
        }
    }
}

/* F(4x4, 3x3) on the points 0, 1, -1, 1/2, -2 and infinity (not Lavin and Gray's 0, +-1, +-2):
 * every coefficient is a small dyadic number, and the sums over the input channels round to
 * errors about 3x smaller in the largest and 1.5x in the mean (kernels.md has the figures).
 * B^T rows on a column d0..d5 of the tile, then on the rows; the AVX2 code does the same
 * operations in the same order with FMAs. */
static void wino4_bt(const float d[6], float r[6])
{
    const float d3_d1 = d[3] - d[1], d4_d2 = d[4] - d[2], d1_d3 = d[1] - d[3];
    const float d2_d4 = d[2] - d[4];
    r[0] = 1.5f * d3_d1 + (d[0] + d[4] - 2.0f * d[2]);
    r[1] = 2.0f * (d[4] - d[1]) + (5.0f * d[3] + d[2]);
    r[2] = -2.0f * (d[1] + d[4]) + (5.0f * d[2] - d[3]);
    r[3] = 2.0f * d1_d3 + d2_d4;
    r[4] = -2.0f * d2_d4 + d1_d3;
    r[5] = 1.5f * d4_d2 + (d[5] + d[1] - 2.0f * d[3]);
}

static void wino4_at(const float m[6], float r[4])
{
    const float a = m[1] + m[2], b = m[1] - m[2];
    r[0] = m[0] + a + m[3] + m[4];
    r[1] = -2.0f * m[4] + (0.5f * m[3] + b);
    r[2] = 4.0f * m[4] + (0.25f * m[3] + a);
    r[3] = -8.0f * m[4] + (0.125f * m[3] + b) + m[5];
}

static void wino4_in_portable(int64_t channels, const float *const *d, float *v, int64_t stride)
{
    for (int64_t c = 0; c < channels; c++) {
        float t[6][6], col[6], r[6];
        for (int j = 0; j < 6; j++) {
            for (int i = 0; i < 6; i++)
                col[i] = d[6 * i + j][c];
            wino4_bt(col, r);
            for (int i = 0; i < 6; i++)
                t[i][j] = r[i];
        }
        for (int i = 0; i < 6; i++) {
            wino4_bt(t[i], r);
            for (int j = 0; j < 6; j++)
                v[(6 * i + j) * stride + c] = r[j];
        }
    }
}

static void wino4_out_portable(int64_t channels, const float *m, int64_t stride, const float *bias,
                               float *const *y)
{
    for (int64_t c = 0; c < channels; c++) {
        float t[4][6], col[6], r[4];
        for (int j = 0; j < 6; j++) {
            for (int i = 0; i < 6; i++)
                col[i] = m[(6 * i + j) * stride + c];
            wino4_at(col, r);
            for (int i = 0; i < 4; i++)
                t[i][j] = r[i];
        }
        const float b = bias ? bias[c] : 0.0f;
        for (int i = 0; i < 4; i++) {
            wino4_at(t[i], r);
            for (int j = 0; j < 4; j++)
                if (y[4 * i + j])
                    y[4 * i + j][c] = r[j] + b;
        }
    }
}

static void sum_pixels_portable(const float *x, int64_t pixels, int64_t stride, int64_t width,
                                float *row)
{
    for (int64_t k = 0; k < width; k++)
        row[k] = 0.0f;
    for (int64_t p = 0; p < pixels; p++)
        for (int64_t k = 0; k < width; k++)
            row[k] += x[p * stride + k];
}

const hqi_fast_isa_t hqi_fast_isa_portable = {
    .name = "portable",
    .gemm_6x16 = gemm_6x16_portable,
    .act_row = act_row_portable,
    .dw_pixel = dw_pixel_portable,
    .gemm_6x8 = gemm_6x8_portable,
    .dw_row = dw_row_portable,
    .ew = ew_portable,
    .max_into = max_into_portable,
    .wino_in = wino_in_portable,
    .wino_out = wino_out_portable,
    .wino4_in = wino4_in_portable,
    .wino4_out = wino4_out_portable,
    .sum_pixels = sum_pixels_portable,
};

static const hqi_fast_isa_t *chosen;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void choose(void)
{
    const char *force = getenv("HQ_EMULATE_ISA");
    const hqi_fast_isa_t *avx512 = hqi_fast_isa_avx512(), *avx2 = hqi_fast_isa_avx2();
    if (force && !strcmp(force, "portable"))
        avx512 = avx2 = NULL;
    else if (force && !strcmp(force, "avx2"))
        avx512 = NULL;
    chosen = avx512 ? avx512 : avx2 ? avx2 : &hqi_fast_isa_portable;
}

const hqi_fast_isa_t *hqi_fast_isa(void)
{
    pthread_once(&chosen_once, choose);
    return chosen;
}

void hqi_fast_isa_override(const hqi_fast_isa_t *isa)
{
    pthread_once(&chosen_once, choose);
    if (isa) {
        chosen = isa;
    } else {
        choose();
    }
}

const char *hqi_fast_isa_name(void)
{
    return hqi_fast_isa()->name;
}
