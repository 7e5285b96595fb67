/* hqrt_kernels_amx.c — the runtime's AMX (tdpbusd) kernel: conv with groups == 1 on 8-bit
 * activations with 4- or 8-bit weights, on the weights hqrt_i_vnni_prepare packed.
 * hqrt_kernels_avx2.c adopts a VNNI-prepared conv for it (hqrt_i_amx_adopt) when the CPU has
 * AMX-INT8, Linux grants the process the tile data state, HQRT_NO_AMX is not set and the shape is
 * one where it wins (deep enough, wide enough, enough pixels), and runs it.
 * tdpbusd sums u8 x s8 products into int32 exactly like vpdpbusd, so the raw sums are the VNNI
 * kernel's and go through its output stage (hqrt_i_vnni_finish_sums) with its corrections.
 * Tiles: A = 16 output pixels x 64 bytes of their im2col rows (u8), B = 16 rows of depth/4 x 16
 * channels x 4 taps (s8): the VNNI packing's [depth/4][block][16][4] rows of one block, read with
 * the group's row stride, C = 16 pixels x 16 channels int32. Two A and two B tiles feed four C
 * accumulators (32 pixels x 32 channels). The depth is run in steps of 64 bytes: im2col rows are
 * zero past the depth, so the last step's B rows past it (the next group's weights, or the zeros
 * hqrt_i_vnni_prepare leaves after everything it packs) are multiplied by 0.
 *
 * Kernels never allocate: scratch comes from the caller (hqrt_i_amx_adopt states how much). */
#define _GNU_SOURCE /* syscall() */
#include <stdlib.h>
#include <string.h>

#include "hqrt_kernels_fast_internal.h"

#ifdef HQRT_HAVE_AVX2_BUILD
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* Output pixels whose im2col rows one pass builds: every block of channels then runs over them,
 * so that its weights are read once per chunk (AMX_CHUNK * depth bytes of scratch). */
enum { AMX_ROWS = 16, AMX_CHUNK = 64 };
/* A call over several samples' pixels (hqrt_i_conv_fast_samples) builds chunks of up to
 * AMX_CHUNK_SAMPLES pixels: resnet18's last 3x3 convs (2.3 MiB of weights, 49 pixels a sample)
 * then read their weights from L3 once per 4 samples, not once per sample. */
enum { AMX_CHUNK_SAMPLES = 256 };

/* Where the kernel is used (per-op CPU times against the VNNI kernel, docs/deploy.md): a depth
 * of at least AMX_MIN_DEPTH bytes, at least AMX_MIN_COUT output channels and at least
 * AMX_MIN_PIXELS output pixels per sample; pieces of a shared op keep at least AMX_PIECE_PIXELS
 * pixels. */
enum { AMX_MIN_DEPTH = 128, AMX_MIN_COUT = 32, AMX_MIN_PIXELS = 32, AMX_PIECE_PIXELS = 32 };

#define AMX_TARGET                                                                                 \
    __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")))

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

bool hqrt_i_cpu_has_amx(void)
{
    static int cached = -1;
    if (cached < 0) {
        unsigned a, b, c, d;
        int ok = hqrt_i_cpu_has_vnni() && __get_cpuid_count(7, 0, &a, &b, &c, &d) &&
                 (d & (1u << 24)) && (d & (1u << 25)); /* AMX-TILE, AMX-INT8 */
#if defined(__linux__) && defined(SYS_arch_prctl)
        /* the tile data state is off until the process asks for it (else tile use is SIGILL) */
        ok = ok && syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
        ok = 0;
#endif
        cached = ok ? 1 : 0;
    }
    return cached == 1;
}

void hqrt_i_amx_adopt(const hqrt_conv_params_t *kp, hqrt_dims_t out, hqrt_i_prepared_t *prep)
{
    if (prep->kind != HQRT_KIND_VNNI || prep->dense || !hqrt_i_cpu_has_amx() ||
        getenv("HQRT_NO_AMX"))
        return;
    const size_t kb64 = (size_t)(prep->depth_padded + 63) / 64 * 64;
    if (prep->depth < AMX_MIN_DEPTH || out.c < AMX_MIN_COUT ||
        (int64_t)out.h * out.w < AMX_MIN_PIXELS)
        return;
    /* rows of taps padded to 4 bytes (a first conv's 7 x 3 channels) are read in place by the
     * VNNI kernel, and more than 1/8 of the depth steps would be padding */
    if (prep->row_bytes || (kb64 - (size_t)prep->depth_padded) * 8 > (size_t)prep->depth_padded)
        return;
    /* a 1x1 conv that does not read its input in place (stride 2) spends more on patches and
     * the output stage than tdpbusd saves */
    if (kp->kernel_h == 1 && kp->kernel_w == 1 &&
        !(prep->direct && kp->stride_h == 1 && kp->stride_w == 1 && prep->depth % 64 == 0))
        return;
    const size_t need = AMX_CHUNK * kb64 + 64; /* hqrt_i_vnni_patch's wide stores */
    prep->kind = HQRT_KIND_AMX;
    prep->min_rows = AMX_PIECE_PIXELS;
    if (prep->scratch < need) /* pieces below AMX_ROWS pixels run hqrt_i_vnni_rows */
        prep->scratch = need;
}

size_t hqrt_i_amx_samples_scratch(const hqrt_i_prepared_t *prep)
{
    const size_t kb64 = (size_t)(prep->depth_padded + 63) / 64 * 64;
    const size_t vnni = hqrt_i_vnni_samples_scratch(prep); /* fewer than AMX_ROWS pixels */
    const size_t need = AMX_CHUNK_SAMPLES * kb64 + 64;
    return need > vnni ? need : vnni;
}

/* The palette-1 configuration: tiles 0, 1 = A, 2, 3 = B, 4..7 = C, all 16 rows x 64 bytes. */
typedef struct amx_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_config_t;

/* mt A tiles (pixel rows a0, a1, astride bytes apart) x nt B tiles (b0, b1: block rows bstride
 * bytes apart, 16 rows per step) over `steps` steps of 64 bytes; C tiles stored to c[mt][nt]
 * (16 x 16 int32 each). */
AMX_TARGET static inline __attribute__((always_inline)) void
amx_block(const uint8_t *a0, const uint8_t *a1, size_t astride, const int8_t *b0, const int8_t *b1,
          size_t bstride, int64_t steps, const int mt, const int nt, int32_t c[2][2][AMX_ROWS * 16])
{
    _tile_zero(4);
    if (nt > 1)
        _tile_zero(5);
    if (mt > 1) {
        _tile_zero(6);
        if (nt > 1)
            _tile_zero(7);
    }
    const size_t bstep = 16 * bstride;
    for (int64_t s = 0; s < steps; s++) {
        _tile_loadd(0, a0 + 64 * s, astride);
        _tile_loadd(2, b0 + bstep * (size_t)s, bstride);
        if (nt > 1)
            _tile_loadd(3, b1 + bstep * (size_t)s, bstride);
        _tile_dpbusd(4, 0, 2);
        if (nt > 1)
            _tile_dpbusd(5, 0, 3);
        if (mt > 1) {
            _tile_loadd(1, a1 + 64 * s, astride);
            _tile_dpbusd(6, 1, 2);
            if (nt > 1)
                _tile_dpbusd(7, 1, 3);
        }
    }
    _tile_stored(4, c[0][0], 64);
    if (nt > 1)
        _tile_stored(5, c[0][1], 64);
    if (mt > 1) {
        _tile_stored(6, c[1][0], 64);
        if (nt > 1)
            _tile_stored(7, c[1][1], 64);
    }
}

AMX_TARGET void hqrt_i_amx_rows(const hqrt_i_prepared_t *prep, const hqrt_conv_params_t *kp,
                                hqrt_dims_t in, const uint8_t *input, const hqrt_addend_t *addend,
                                hqrt_dims_t out, uint8_t *output, int64_t samples,
                                size_t stride, int64_t row_begin, int64_t row_end,
                                uint8_t *scratch)
{
    const int64_t total = row_end - row_begin; /* split by output pixels, as the VNNI kernel */
    if (total < AMX_ROWS) { /* not one tile's rows: the VNNI kernel, on the same packing */
        hqrt_i_vnni_rows(prep, kp, in, input, NULL, addend, out, output, samples, stride,
                         row_begin, row_end, scratch);
        return;
    }
    const int64_t plane = (int64_t)out.h * out.w, max_chunk = samples > 1 ? AMX_CHUNK_SAMPLES
                                                                           : AMX_CHUNK;
    const int64_t kbytes = prep->depth_padded;
    const int8_t *weights = prep->packed;
    const int32_t cout = out.c, blocks = (cout + 15) / 16;
    hqrt_i_vnni_stage_t stage;
    hqrt_i_vnni_stage_init(prep, kp, addend, cout, &stage);
    /* 1x1, stride 1, no pads, whole steps of channels: pixel p's row is input pixel p itself
     * (one sample's pixels: several samples' inputs lie apart) */
    const bool direct = samples == 1 && prep->direct && kp->kernel_h == 1 && kp->kernel_w == 1 &&
                        kp->stride_h == 1 && kp->stride_w == 1 && kp->pad_top == 0 &&
                        kp->pad_left == 0 && kp->pad_bottom == 0 && kp->pad_right == 0 &&
                        in.c % 64 == 0 && kbytes == in.c;
    const size_t kb64 = (size_t)(kbytes + 63) / 64 * 64;
    const int64_t steps = (int64_t)kb64 / 64;
    const size_t row_stride =
        prep->row_bytes ? (size_t)prep->row_bytes : (size_t)kp->kernel_w * (size_t)in.c;
    const size_t astride = direct ? (size_t)in.c : kb64;
    amx_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++)
        cfg.colsb[t] = 64, cfg.rows[t] = AMX_ROWS;
    _tile_loadconfig(&cfg);
    _Alignas(64) int32_t c[2][2][AMX_ROWS * 16];
    size_t pix[AMX_ROWS];
    /* several samples: chunks of equal sizes (a group's 392 pixels: 2 x 196, not 256 + 136) */
    const int64_t chunks = (total + max_chunk - 1) / max_chunk;
    const int64_t chunk = samples > 1 ? (total + chunks - 1) / chunks : AMX_CHUNK;
    for (int64_t first = 0; first < total; first += chunk) {
        /* the chunk computes pixels [base, end) and finishes [first, end): a last chunk of
         * fewer than AMX_ROWS pixels recomputes some of the previous one's */
        const int64_t end = total - first < chunk ? total : first + chunk;
        const int64_t base = end - first < AMX_ROWS ? end - AMX_ROWS : first;
        const int64_t count = end - base;
        const uint8_t *rows = direct ? input + (size_t)(row_begin + base) * (size_t)in.c : scratch;
        for (int64_t p = 0; !direct && p < count; p++) {
            const int64_t at = row_begin + base + p, sample = at / plane, px = at % plane;
            hqrt_i_vnni_patch(kp, in, input + (size_t)sample * stride, px / out.w, px % out.w,
                              (int64_t)kb64, row_stride, !prep->exact_reads,
                              scratch + (size_t)p * kb64);
        }
        const int64_t tiles = (count + AMX_ROWS - 1) / AMX_ROWS;
        for (int32_t g0 = 0; g0 < blocks; g0 += HQRT_VNNI_BLOCKS) {
            const int32_t nb = blocks - g0 < HQRT_VNNI_BLOCKS ? blocks - g0 : HQRT_VNNI_BLOCKS;
            const int8_t *group = weights + (size_t)g0 * (size_t)kbytes * 16;
            const size_t bstride = (size_t)nb * 64;
            for (int32_t b = 0; b < nb; b += 2) {
                const int nt = nb - b >= 2 ? 2 : 1;
                const int8_t *b0 = group + (size_t)b * 64, *b1 = b0 + 64;
                for (int64_t t = 0; t < tiles; t += 2) {
                    const int mt = tiles - t >= 2 ? 2 : 1;
                    /* a last tile of the chunk that is not whole starts AMX_ROWS before its end */
                    int64_t start[2];
                    for (int i = 0; i < mt; i++) {
                        int64_t s = (t + i) * AMX_ROWS;
                        start[i] = s + AMX_ROWS > count ? count - AMX_ROWS : s;
                    }
                    const uint8_t *a0 = rows + (size_t)start[0] * astride;
                    const uint8_t *a1 = rows + (size_t)start[mt - 1] * astride;
                    if (mt == 2 && nt == 2)
                        amx_block(a0, a1, astride, b0, b1, bstride, steps, 2, 2, c);
                    else if (mt == 2)
                        amx_block(a0, a1, astride, b0, b1, bstride, steps, 2, 1, c);
                    else if (nt == 2)
                        amx_block(a0, a1, astride, b0, b1, bstride, steps, 1, 2, c);
                    else
                        amx_block(a0, a1, astride, b0, b1, bstride, steps, 1, 1, c);
                    for (int i = 0; i < mt; i++) {
                        /* rows of the tile not finished yet: from its nominal start, and in
                         * the chunk's own pixels */
                        int64_t from = (t + i) * AMX_ROWS;
                        if (from < first - base)
                            from = first - base;
                        int np = (int)(start[i] + AMX_ROWS - from);
                        if (np <= 0)
                            continue;
                        for (int j = 0; j < np; j++) {
                            const int64_t at = row_begin + base + from + j;
                            pix[j] = (size_t)(at / plane) * stride +
                                     (size_t)(at % plane) * (size_t)cout;
                        }
                        for (int n = 0; n < nt; n++)
                            hqrt_i_vnni_finish_sums(&stage, kp, addend,
                                                    c[i][n] + (from - start[i]) * 16, np, pix,
                                                    g0 + b + n, cout, output);
                    }
                }
            }
        }
    }
    _tile_release();
}

#endif /* HQRT_HAVE_AVX2_BUILD */
