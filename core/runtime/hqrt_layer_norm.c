/* hqrt_layer_norm.c — the integer layer normalization (hqrt_kernels_ref.h): per position, the
 * mean and variance of the channel codes in int64, an exact integer square root, one rounded
 * division per value and the output stage. No float arithmetic, so the quantized emulator and
 * the runtime, which both run this function, agree bit for bit on every machine. */
#include "hqrt_kernels_ref.h"

/* floor(sqrt(v)), exact for every 64-bit v (the bit-by-bit method: no rounding anywhere). */
static uint64_t isqrt64(uint64_t v)
{
    uint64_t root = 0, bit = (uint64_t)1 << 62;
    while (bit > v)
        bit >>= 2;
    while (bit) {
        if (v >= root + bit) {
            v -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    return root;
}

/* num / den rounded half away from zero; den > 0. */
static int64_t divide_rounded(int64_t num, int64_t den)
{
    return num >= 0 ? (num + den / 2) / den : -((-num + den / 2) / den);
}

int hqrt_layer_norm(const hqrt_layer_norm_params_t *p, int64_t rows, int32_t channels,
                    const void *input, const void *gamma, const int64_t *bias, void *output)
{
    if (!p || !input || !gamma || !output || rows < 0 || channels < 1 ||
        channels > HQRT_NORM_MAX_CHANNELS || (p->in_bits != 8 && p->in_bits != 16) ||
        p->in_zp < 0 || p->in_zp > hqrt_code_max(p->in_bits) ||
        (p->weight_bits != 4 && p->weight_bits != 8 && p->weight_bits != 16) ||
        p->epsilon_term < 1 || p->epsilon_term > HQRT_NORM_EPSILON_MAX ||
        hqrt_output_stage_check(&p->out, channels) != HQRT_KERNEL_OK)
        return HQRT_KERNEL_ERR_ARGUMENT;
    const int64_t c_count = channels;
    for (int64_t r = 0; r < rows; r++) {
        const size_t base = (size_t)(r * c_count);
        int64_t s1 = 0, s2 = 0;
        for (int64_t c = 0; c < c_count; c++) {
            int64_t x = hqrt_load(input, p->in_bits, base + (size_t)c) - p->in_zp;
            s1 += x;
            s2 += x * x;
        }
        /* C * S2 - S1^2 = C^2 * variance >= 0; below 2^62 for C <= 32767 and 16-bit codes */
        uint64_t v = (uint64_t)(c_count * s2 - s1 * s1) + (uint64_t)p->epsilon_term;
        int m = 0;
        while (v < ((uint64_t)1 << 60)) {
            v <<= 2;
            m++;
        }
        const int64_t root = (int64_t)isqrt64(v); /* sqrt(V) * 2^m, in [2^30, 2^31.5) */
        for (int64_t c = 0; c < c_count; c++) {
            int64_t x = hqrt_load(input, p->in_bits, base + (size_t)c) - p->in_zp;
            /* |C x - S1| * 2^m <= sqrt(C - 1) * root < 2^39, so the Q16 numerator stays < 2^55 */
            int64_t d = c_count * x - s1;
            int64_t t = divide_rounded(d * ((int64_t)1 << (m + HQRT_NORM_FRAC_BITS)), root);
            int64_t g =
                p->weight_bits == 16 ? ((const int16_t *)gamma)[c] : ((const int8_t *)gamma)[c];
            int64_t acc = hqrt_add_sat(t * g, bias ? bias[c] : 0);
            hqrt_store(output, p->out.out_bits, base + (size_t)c,
                       hqrt_output_code(&p->out, acc, (int32_t)c));
        }
    }
    return HQRT_KERNEL_OK;
}
