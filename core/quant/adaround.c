/* adaround.c — post_quantization_optimization(adaround): learned rounding of the integer weights
 * (Nagel et al., "Up or Down? Adaptive Rounding for Post-Training Quantization", 2020).
 *
 * Round-to-nearest minimises each weight's own error; what matters is the error of the layer's
 * output. For every trained layer each weight w (per output channel scale s, clipped as the
 * builder clips it) gets a rounding variable V and the soft weight s * (floor(w / s) + h(V)),
 * h(V) = clip(sigmoid(V) * (zeta - gamma) + gamma, 0, 1), zeta = 1.1, gamma = -0.1, V starting
 * where h equals the fractional part (so training starts from the float kernel). Adam minimises,
 * per output channel,
 *     mean over sampled positions of (soft output - float output)^2 / unit
 *       + lambda * sum over the channel's weights of (1 - |2h - 1|^beta),
 * unit being the same mean for round-to-nearest's kernel divided by the channel's weight count,
 * with the regulariser off for the warm-up share of the steps and beta annealed linearly from
 * b_range[0] to b_range[1] after it, which pushes every h to 0 or 1. The weight then becomes
 * floor(w / s) + (h >= 0.5): it moves at most one step from floor, and only kernel:0 (and, after
 * a bias correction, bias:0) of the integer params change, so the emulator, the compiler and the
 * runtime keep computing the same integers from them.
 *
 * The outputs compared are pre-activation (the accumulator before bias, addend and fused
 * activation; the bias is the same on both sides): that loss is the same quadratic for every
 * activation, including the lookup-table ones, and a conv's elementwise addend lies outside the
 * weights' reach. The soft output reads the layer's input as the quantized network computes it
 * (dequantized codes), with every earlier trained layer already hard rounded, so a layer learns
 * to fit the kernel to the inputs it will really see. The float output it is compared with is,
 * by default (float_target), the float network's own: its input as the float network computes it
 * through the float kernel, measured by one float run over the samples before the sweep, at the
 * same drawn positions; so each layer also makes up for part of what the layers before it lost,
 * instead of each fitting the float kernel on its own quantized input while the errors add up
 * along the network (the paper's "asymmetric" reconstruction). The error is centred by default
 * (centered): the patches and the float outputs lose their mean over the rows, so what is fitted
 * is the error about its mean per channel, the part a bias cannot remove; the bias correction
 * that follows removes the rest. With QDrop (qdrop > 0, Wei et al. 2022), each step's patches
 * read, element by element (or sample by sample) with probability qdrop, the float network's
 * input instead of the quantized one, drawn afresh every step: the rounding is then fitted for a
 * range of input errors around the ones seen, not to the exact ones of the calibration samples.
 *
 * The quantized network runs once, layer by layer in topological order over all the samples at
 * once (the codes of every tensor still to be read are kept): a trained layer draws its patches
 * from its input's codes, is trained and hard rounded, and only then runs, so every later layer
 * reads what the final network computes. Of each sample,
 * `positions` output positions are drawn (without repetition, a fixed seed per layer and sample)
 * and their input patches kept. Output channels are independent problems: each thread trains
 * blocks of up to 8 channels of one group with its own Adam state, so the result does not depend
 * on the thread count. A channel whose learned rounding does not lower its error on the sampled
 * patches (or, with a holdout share, on the rows of the last samples, which then do not train)
 * keeps round-to-nearest, and so does a whole layer with fewer rows than min_rows times a
 * channel's weights (a squeeze-and-excitation conv on a pooled input has one row per sample). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq/emulate.h"
#include "quant/adaround.h"
#include "quant/calibrate.h"
#include "quant/optimize_bias.h"
#include "quant/sweep.h"
#include "runtime/hqrt_numerics.h"
#include "util/threadpool.h"
#include "util/util.h"

#define ZETA 1.1
#define GAMMA (-0.1)
#define BLOCK 8                   /* output channels one task trains together */
#define EMULATE_BATCH 8           /* samples per dataset read and per dequantized chunk */
#define PATCH_BUDGET (256u << 20) /* bytes of input patches kept for one layer */

static const char where[] = "adaround";

void hqi_adaround_defaults(hqi_adaround_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->dataset_size = 0;
    cfg->epochs = 320;
    cfg->batch_size = 8;
    cfg->learning_rate = 0.01;
    cfg->warmup = 0.2;
    cfg->beta_start = 20.0;
    cfg->beta_end = 2.0;
    cfg->weight = 16.0;
    cfg->positions = 64;
    cfg->max_steps = 2560; /* 320 epochs of 64 samples in batches of 8 */
    cfg->float_target = true;
    cfg->centered = true;
    /* a measurement knob (docs/quantizer.md): the positions drawn per sample, 0 for all */
    const char *env = getenv("HQ_ADAROUND_POSITIONS");
    char *end = NULL;
    long long v = env ? strtoll(env, &end, 10) : -1;
    if (env && end && *end == '\0' && v >= 0)
        cfg->positions = v;
    /* measurement knobs too: the target (float: the float network's own outputs) and the
     * centred error */
    env = getenv("HQ_ADAROUND_TARGET");
    if (env)
        cfg->float_target = strcmp(env, "float") == 0;
    env = getenv("HQ_ADAROUND_HOLDOUT");
    if (env)
        cfg->holdout = atof(env);
    env = getenv("HQ_ADAROUND_CENTER");
    if (env)
        cfg->centered = strcmp(env, "1") == 0;
    env = getenv("HQ_ADAROUND_QDROP");
    if (env)
        cfg->qdrop = atof(env);
    env = getenv("HQ_ADAROUND_QDROP_MODE");
    if (env)
        cfg->qdrop_sample = strcmp(env, "sample") == 0;
    /* measurement knobs: shuffled batches, and another draw of the positions (the spread of the
     * results over draws is the noise a change of the training must beat) */
    env = getenv("HQ_ADAROUND_SHUFFLE");
    if (env)
        cfg->shuffle = strcmp(env, "1") == 0;
    env = getenv("HQ_ADAROUND_BIAS_STEP");
    if (env)
        cfg->bias_step = strcmp(env, "1") == 0;
    env = getenv("HQ_ADAROUND_MIN_ROWS");
    if (env)
        cfg->min_rows = atof(env);
    env = getenv("HQ_ADAROUND_SEED");
    if (env)
        cfg->seed = strtoull(env, NULL, 10);
}

/* ---- one layer ------------------------------------------------------------------------------- */

/* A layer being trained: its geometry, its sampled input patches and its params. */
typedef struct job {
    int layer;
    const hq_layer_t *l;
    int weight_bits;
    bool dense;
    int64_t groups, cin_pg, taps, kpg; /* kpg = taps * cin_pg: one patch of one group */
    int64_t cout, cout_pg;
    int64_t out_h, out_w;     /* conv-like: output extent; dense: positions = out_h */
    int64_t in_h, in_w, in_c; /* conv-like input extent; dense: in_c = kernel_in */
    int64_t positions;        /* output positions per sample (out_h * out_w, dense: rows) */
    int64_t per_sample;       /* positions drawn per sample */
    int64_t samples, rows;    /* rows = samples * per_sample */
    int64_t collected;        /* samples whose patches the emulator's tap delivered */
    float *patches;           /* [groups][rows][kpg] */
    float *target;            /* [rows][cout]: the float network's pre-activations at the
                                 drawn positions (float_target), else NULL */
    float *xmean;             /* [groups][kpg]: the patches' mean over the rows, taken out
                                 of them when the error is centred, else NULL */
    float *fpatches;          /* [groups][rows][kpg]: the float network's patches at the same
                                 positions (QDrop), else NULL */
    int64_t *pick;            /* [positions] scratch of the draw */
    uint64_t seed;            /* mixed into the draw (cfg->seed spread over 64 bits; 0: none) */
    const float *w_float;     /* fpo kernel [kpg * cout] in kernel order */
    void *w_int;              /* q kernel:0, int8 or int16, rewritten in place */
    const float *w_scale;     /* q kernel_scale:0 [cout] */
    int64_t *bias;            /* q bias:0 [cout] or NULL */
    double s_in;              /* the input's activation scale */
    const hqi_layer_quant_t *dec;
    /* results per output channel */
    double *err_nearest, *err_learned, *mean_change; /* [cout] */
    unsigned char *keep_nearest;                     /* [cout] */
} job_t;

static void job_free(job_t *j)
{
    free(j->patches);
    free(j->target);
    free(j->xmean);
    free(j->fpatches);
    free(j->pick);
    free(j->err_nearest);
    free(j->err_learned);
    free(j->mean_change);
    free(j->keep_nearest);
    memset(j, 0, sizeof *j);
}

/* Whether layer i is trained, and its geometry; false (nothing allocated) for a layer that is
 * not, or whose params do not have the shapes the builder writes. */
static bool job_init(job_t *j, const hq_graph_t *graph, const hq_npz_t *fpo, const hq_npz_t *q,
                     const hqi_layer_quant_t *dec, int i, const hqi_adaround_config_t *cfg)
{
    const hq_layer_t *l = hq_graph_layer(graph, i);
    memset(j, 0, sizeof *j);
    int wb = dec[i].weight_bits;
    hqi_kernel_layer_t k;
    if ((!cfg->train_all && wb != 4) || !hqi_kernel_layer(l, fpo, q, wb, &k))
        return false;
    j->dense = k.dense;
    j->groups = k.groups;
    j->cin_pg = k.cin_pg;
    j->taps = k.kh * k.kw;
    j->kpg = k.kpg;
    j->cout = k.cout;
    j->cout_pg = k.cout_pg;
    j->out_h = k.out_h;
    j->out_w = k.out_w;
    j->in_h = k.in_h;
    j->in_w = k.in_w;
    j->in_c = k.in_c;
    j->layer = i;
    j->l = l;
    j->weight_bits = wb;
    j->dec = &dec[i];
    j->w_float = k.w_float;
    j->w_int = k.w_int;
    j->w_scale = k.w_scale;
    j->bias = k.bias;
    j->positions = j->out_h * j->out_w;
    j->seed = cfg->seed ? cfg->seed * 0x9e3779b97f4a7c15u : 0;
    return true;
}

/* Allocates the patches of `samples` samples with at most `positions` drawn per sample (fewer
 * when the layer's patches would pass PATCH_BUDGET). */
static void job_plan(job_t *j, int64_t samples, int64_t positions)
{
    int64_t per = positions > 0 && positions < j->positions ? positions : j->positions;
    double bytes_per = (double)samples * (double)j->groups * (double)j->kpg * sizeof(float);
    if (bytes_per * (double)per > (double)PATCH_BUDGET)
        per = (int64_t)((double)PATCH_BUDGET / bytes_per);
    if (per < 1)
        per = 1;
    j->per_sample = per;
    j->samples = samples;
    j->rows = samples * per;
}

static hq_status_t job_alloc(job_t *j, int64_t samples, int64_t positions, hq_error_t *err)
{
    job_plan(j, samples, positions);
    size_t bytes = 0;
    if (!hqi_mul_size((size_t)(j->rows * j->groups), (size_t)j->kpg * sizeof(float), &bytes) ||
        !(j->patches = malloc(bytes ? bytes : 1)) ||
        !(j->pick = malloc(sizeof *j->pick * (size_t)j->positions)) ||
        !(j->err_nearest = calloc((size_t)j->cout, sizeof(double))) ||
        !(j->err_learned = calloc((size_t)j->cout, sizeof(double))) ||
        !(j->mean_change = calloc((size_t)j->cout, sizeof(double))) ||
        !(j->keep_nearest = calloc((size_t)j->cout, 1)))
        return hqi_nomem(err, where);
    return HQ_OK;
}

/* Copies the drawn patches of one sample (`xs`, global index `sample`) of the layer's input to
 * rows [row, row + per_sample) of `patches` ([groups][rows][kpg]). The draw depends on the layer
 * and the sample only, so that the float network's patches (float_target) and the quantized
 * one's are taken at the same positions. */
static void collect_sample(job_t *j, int64_t sample, const float *xs, float *patches, int64_t rows,
                           int64_t row0)
{
    uint64_t seed = ((uint64_t)j->layer << 40) ^ (uint64_t)sample ^ j->seed;
    for (int64_t t = 0; t < j->positions; t++)
        j->pick[t] = t;
    /* the first per_sample entries of a partial Fisher-Yates shuffle, in ascending order so
     * that neighbouring rows read neighbouring memory */
    if (j->per_sample < j->positions) {
        for (int64_t t = 0; t < j->per_sample; t++) {
            int64_t u = t + (int64_t)(hqi_splitmix64(&seed) % (uint64_t)(j->positions - t));
            int64_t tmp = j->pick[t];
            j->pick[t] = j->pick[u];
            j->pick[u] = tmp;
        }
        for (int64_t a = 1; a < j->per_sample; a++)
            for (int64_t b = a; b > 0 && j->pick[b - 1] > j->pick[b]; b--) {
                int64_t tmp = j->pick[b];
                j->pick[b] = j->pick[b - 1];
                j->pick[b - 1] = tmp;
            }
    }
    for (int64_t t = 0; t < j->per_sample; t++) {
        int64_t row = row0 + t, pos = j->pick[t];
        if (j->dense) {
            memcpy(patches + row * j->kpg, xs + pos * j->cin_pg, sizeof(float) * (size_t)j->cin_pg);
            continue;
        }
        int64_t oy = pos / j->out_w, ox = pos % j->out_w;
        for (int64_t g = 0; g < j->groups; g++) {
            float *dst = patches + (g * rows + row) * j->kpg;
            for (int64_t ky = 0; ky < j->l->params.kernel_h; ky++) {
                int64_t iy = hqi_tap_source(j->l, true, oy, ky, j->in_h);
                for (int64_t kx = 0; kx < j->l->params.kernel_w; kx++) {
                    int64_t ix = hqi_tap_source(j->l, false, ox, kx, j->in_w);
                    float *d = dst + (ky * j->l->params.kernel_w + kx) * j->cin_pg;
                    if (iy < 0 || ix < 0)
                        memset(d, 0, sizeof(float) * (size_t)j->cin_pg);
                    else
                        memcpy(d, xs + (iy * j->in_w + ix) * j->in_c + g * j->cin_pg,
                               sizeof(float) * (size_t)j->cin_pg);
                }
            }
        }
    }
}

/* Copies the drawn patches of `count` samples (global index first ...) of the layer's input. */
static void job_collect(job_t *j, int64_t first, int64_t count, const float *x)
{
    int64_t per_in = j->dense ? j->out_h * j->cin_pg : j->in_h * j->in_w * j->in_c;
    for (int64_t n = 0; n < count && first + n < j->samples; n++) {
        collect_sample(j, first + n, x + n * per_in, j->patches, j->rows,
                       (first + n) * j->per_sample);
        j->collected++;
    }
}

/* Takes the mean over the rows out of patches [groups][rows][kpg], writing it to mean
 * [groups][kpg]. */
static void center_patches(const job_t *j, float *patches, float *mean, double *sum)
{
    for (int64_t g = 0; g < j->groups; g++) {
        float *x = patches + g * j->rows * j->kpg, *m = mean + g * j->kpg;
        memset(sum, 0, sizeof(double) * (size_t)j->kpg);
        for (int64_t r = 0; r < j->rows; r++)
            for (int64_t k = 0; k < j->kpg; k++)
                sum[k] += x[r * j->kpg + k];
        for (int64_t k = 0; k < j->kpg; k++)
            m[k] = (float)(sum[k] / (double)j->rows);
        for (int64_t r = 0; r < j->rows; r++)
            for (int64_t k = 0; k < j->kpg; k++)
                x[r * j->kpg + k] -= m[k];
    }
}

/* Takes the patches' mean over the rows out of them (centred error), keeping it in xmean; the
 * float network's patches (QDrop) lose their own mean, as the float outputs they produce do. */
static hq_status_t job_center(job_t *j, hq_error_t *err)
{
    size_t n = (size_t)(j->groups * j->kpg);
    if (!(j->xmean = calloc(n, sizeof(float))))
        return hqi_nomem(err, where);
    double *sum = calloc((size_t)j->kpg, sizeof(double));
    float *fmean = j->fpatches ? calloc(n, sizeof(float)) : NULL;
    if (!sum || (j->fpatches && !fmean)) {
        free(sum);
        free(fmean);
        return hqi_nomem(err, where);
    }
    center_patches(j, j->patches, j->xmean, sum);
    if (j->fpatches)
        center_patches(j, j->fpatches, fmean, sum);
    free(sum);
    free(fmean);
    return HQ_OK;
}

/* ---- training -------------------------------------------------------------------------------- */

/* What every task of one layer shares. */
typedef struct train {
    job_t *job;
    const hqi_adaround_config_t *cfg;
    int64_t blocks_per_group;
    int64_t steps, warmup_steps, rows_per_step;
    int64_t train_rows; /* rows [0, train_rows) train; the rest, when any, decide per channel
                           between the learned rounding and nearest */
    float **scratch;    /* per thread */
} train_t;

/* QDrop per element: a step's draws are a window of a per-task table of draws, at a random
 * offset in [0, QDROP_SPAN) */
#define QDROP_SPAN 65536

/* Floats of scratch one task needs: the step's h(V) and its slope (doubles, first: kpg x BLOCK
 * each, two floats' room per double), V, Adam m and v, base, fixed, soft weights, gradient
 * (kpg x BLOCK each), the float kernel's outputs of every row and room for the integer one's
 * (rows x BLOCK each), and with QDrop one step's mixed patches (rows_per_step x kpg) and, per
 * element, the table of draws (rows_per_step x kpg + QDROP_SPAN). */
static size_t scratch_floats(const job_t *j, const hqi_adaround_config_t *cfg,
                             int64_t rows_per_step)
{
    size_t floats = (size_t)j->kpg * BLOCK * 11 + (size_t)j->rows * BLOCK * 2;
    if (j->fpatches && cfg->qdrop > 0)
        floats += (size_t)(rows_per_step * j->kpg) *
                      (cfg->qdrop_sample ? 1 : 2) +
                  (cfg->qdrop_sample ? 0 : QDROP_SPAN);
    return floats;
}

/* QDrop (Wei et al., "QDrop: Randomly Dropping Quantization for Extremely Low-bit Post-Training
 * Quantization", 2022), per sample: rows [r0, r1) of the quantized patches xq with each run of
 * per_sample rows (one sample) replaced by the float network's, xf, with probability p, written
 * to out [r1 - r0][K]. The draw depends on the seed only (layer, block and step), not on the
 * thread that trains the block. */
static void qdrop_samples(const job_t *j, const float *xq, const float *xf, int64_t r0, int64_t r1,
                          double p, uint64_t seed, float *out)
{
    const int64_t K = j->kpg;
    for (int64_t r = r0; r < r1; r += j->per_sample) {
        int64_t n = r1 - r < j->per_sample ? r1 - r : j->per_sample;
        double u = (double)(hqi_splitmix64(&seed) >> 11) * 0x1.0p-53;
        memcpy(out + (r - r0) * K, (u < p ? xf : xq) + r * K, sizeof(float) * (size_t)(n * K));
    }
}

/* QDrop per element: table[0, n) of draws, 1 with probability p (in sixteenths: one 4-bit draw
 * per entry, sixteen per 64-bit number), else 0. */
static void qdrop_table(float *table, int64_t n, double p, uint64_t seed)
{
    const uint64_t threshold = (uint64_t)(p * 16.0 + 0.5);
    uint64_t bits = 0;
    for (int64_t e = 0; e < n; e++) {
        if ((e & 15) == 0)
            bits = hqi_splitmix64(&seed);
        table[e] = (bits & 15u) < threshold ? 1.0f : 0.0f;
        bits >>= 4;
    }
}

static double rectified_sigmoid(double v, double *slope)
{
    double s = 1.0 / (1.0 + exp(-v));
    double h = s * (ZETA - GAMMA) + GAMMA;
    *slope = h > 0.0 && h < 1.0 ? s * (1.0 - s) * (ZETA - GAMMA) : 0.0;
    return h < 0.0 ? 0.0 : h > 1.0 ? 1.0 : h;
}

static int32_t int_weight(const job_t *j, int64_t index)
{
    return j->weight_bits == 16 ? ((const int16_t *)j->w_int)[index]
                                : ((const int8_t *)j->w_int)[index];
}

/* The hot loops, compiled for AVX2 too (picked at load time where the CPU has it). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HOT __attribute__((target_clones("avx2", "default")))
#else
#define HOT
#endif

/* The dot products of the training loop. A block's BLOCK = 8 channel weights of one input form
 * one 8-float vector (GNU vector extension: one AVX2 register, two SSE ones in the default
 * clone), and rows go four at a time: one row's sums are a chain of dependent additions (input k
 * after input k - 1, the order that fixes the result), so four rows keep four chains in flight.
 * Each lane still multiplies and adds in the order of the scalar loop, one rounding each (C11
 * does not contract them), so the results are those of one row and one channel at a time. */
typedef float v8f __attribute__((vector_size(8 * sizeof(float)), aligned(sizeof(float))));
_Static_assert(BLOCK == 8, "the training loop's vectors hold one block of channels");
#define ROWS 4
#define LOAD8(p) (*(const v8f *)(p))

/* z[i] = x[i] . w over the K inputs, for the ROWS rows of x starting at xr. */
static inline __attribute__((always_inline)) void dot_rows(const float *xr, int64_t K,
                                                           const float *w, v8f z[ROWS])
{
    v8f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    const float *x0 = xr, *x1 = xr + K, *x2 = xr + 2 * K, *x3 = xr + 3 * K;
    for (int64_t k = 0; k < K; k++) {
        const v8f wk = LOAD8(w + k * BLOCK);
        a0 += x0[k] * wk;
        a1 += x1[k] * wk;
        a2 += x2[k] * wk;
        a3 += x3[k] * wk;
    }
    z[0] = a0;
    z[1] = a1;
    z[2] = a2;
    z[3] = a3;
}

static inline __attribute__((always_inline)) void dot_row(const float *xr, int64_t K,
                                                          const float *w, v8f *z)
{
    v8f a = {0};
    for (int64_t k = 0; k < K; k++)
        a += xr[k] * LOAD8(w + k * BLOCK);
    *z = a;
}

/* out[r] = x[r] . w for rows [0, rows), out [rows x BLOCK]. */
HOT static void output_rows(const float *x, int64_t rows, int64_t K, const float *w, float *out)
{
    int64_t r = 0;
    for (; r + ROWS <= rows; r += ROWS) {
        v8f z[ROWS];
        dot_rows(x + r * K, K, w, z);
        memcpy(out + r * BLOCK, z, sizeof z);
    }
    for (; r < rows; r++) {
        v8f z;
        dot_row(x + r * K, K, w, &z);
        memcpy(out + r * BLOCK, &z, sizeof z);
    }
}

/* out[e] = f[e] where draw[e] is 1, q[e] where it is 0, for e in [0, n): d * f + (1 - d) * q is
 * exactly one of the two for finite values, and the loop has no branch to mispredict. */
HOT static void qdrop_blend(const float *q, const float *f, const float *draw, int64_t n,
                            float *out)
{
    for (int64_t e = 0; e < n; e++)
        out[e] = draw[e] * f[e] + (1.0f - draw[e]) * q[e];
}

/* grad += sum over rows [r0, r1) of x[r]^T (x[r] . w - target[r]): half the squared error's
 * gradient (each grad element gathers its rows in row order). */
HOT static void gradient_rows(const float *x, const float *target, int64_t r0, int64_t r1,
                              int64_t K, const float *w, float *grad)
{
    int64_t r = r0;
    for (; r + ROWS <= r1; r += ROWS) {
        const float *x0 = x + r * K, *x1 = x0 + K, *x2 = x1 + K, *x3 = x2 + K;
        v8f z[ROWS];
        dot_rows(x0, K, w, z);
        for (int i = 0; i < ROWS; i++)
            z[i] -= LOAD8(target + (r + i) * BLOCK);
        for (int64_t k = 0; k < K; k++) {
            v8f g = LOAD8(grad + k * BLOCK);
            g += x0[k] * z[0];
            g += x1[k] * z[1];
            g += x2[k] * z[2];
            g += x3[k] * z[3];
            memcpy(grad + k * BLOCK, &g, sizeof g);
        }
    }
    for (; r < r1; r++) {
        const float *xr = x + r * K;
        v8f z;
        dot_row(xr, K, w, &z);
        z -= LOAD8(target + r * BLOCK);
        for (int64_t k = 0; k < K; k++) {
            v8f g = LOAD8(grad + k * BLOCK) + xr[k] * z;
            memcpy(grad + k * BLOCK, &g, sizeof g);
        }
    }
}

/* Sum over every row of the squared error of x . w against target, per channel (scratch: rows x
 * BLOCK floats). */
static void block_error(const job_t *j, const float *x, int64_t nb, const float *w,
                        const float *target, float *scratch, int64_t r0, int64_t r1, double *err)
{
    output_rows(x + r0 * j->kpg, r1 - r0, j->kpg, w, scratch + r0 * BLOCK);
    for (int64_t c = 0; c < nb; c++) {
        err[c] = 0;
        for (int64_t r = r0; r < r1; r++) {
            double e = (double)scratch[r * BLOCK + c] - (double)target[r * BLOCK + c];
            err[c] += e * e;
        }
    }
}

static void train_block(void *context, int64_t task, int thread)
{
    train_t *t = context;
    job_t *j = t->job;
    const hqi_adaround_config_t *cfg = t->cfg;
    const int64_t g = task / t->blocks_per_group;
    const int64_t o0 = g * j->cout_pg + (task % t->blocks_per_group) * BLOCK;
    const int64_t nb =
        j->cout_pg - (o0 - g * j->cout_pg) < BLOCK ? j->cout_pg - (o0 - g * j->cout_pg) : BLOCK;
    const int64_t K = j->kpg, cout = j->cout;
    const float *x = j->patches + g * j->rows * K;
    double *h_step = (double *)(void *)t->scratch[thread], *slope_step = h_step + K * BLOCK;
    float *v = (float *)(void *)(slope_step + K * BLOCK), *m = v + K * BLOCK, *s2 = m + K * BLOCK,
          *base = s2 + K * BLOCK, *fixed = base + K * BLOCK, *w = fixed + K * BLOCK,
          *grad = w + K * BLOCK, *zf = grad + K * BLOCK, *zq = zf + j->rows * BLOCK,
          *mixed = zq + j->rows * BLOCK, *draws = mixed + t->rows_per_step * K;
    const float *xf = j->fpatches ? j->fpatches + g * j->rows * K : NULL;
    const double wmax = ldexp(1.0, j->weight_bits - 1) - 1.0;
    float scale[BLOCK] = {0};
    /* V from the fractional parts; a weight whose floor or floor + 1 leaves the code range keeps
     * its nearest code (fixed != 0), as do the padding lanes of a block narrower than BLOCK */
    for (int64_t c = 0; c < BLOCK; c++) {
        int64_t o = o0 + c;
        scale[c] = c < nb ? j->w_scale[o] : 0.0f;
        const double clip = c >= nb ? 0
                            : j->dec->weight_clip_channels && j->dec->weight_clip_channels[o] > 0
                                ? j->dec->weight_clip_channels[o]
                            : j->dec->weight_clip > 0 ? j->dec->weight_clip
                                                      : INFINITY;
        for (int64_t k = 0; k < K; k++) {
            float *vk = &v[k * BLOCK + c];
            m[k * BLOCK + c] = s2[k * BLOCK + c] = 0;
            if (c >= nb) {
                *vk = 0;
                base[k * BLOCK + c] = 0;
                fixed[k * BLOCK + c] = 1; /* padding lanes: weight 0, never trained */
                continue;
            }
            double wv = j->w_float[k * cout + o];
            wv = wv > clip ? clip : wv < -clip ? -clip : wv;
            double ratio = wv / (double)scale[c], lo = floor(ratio);
            int32_t nearest = int_weight(j, k * cout + o);
            if (lo < -wmax || lo + 1 > wmax || fabs((double)nearest - ratio) > 1.0) {
                base[k * BLOCK + c] = (float)nearest;
                fixed[k * BLOCK + c] = 1;
                *vk = 0;
                continue;
            }
            double frac = ratio - lo;
            base[k * BLOCK + c] = (float)lo;
            fixed[k * BLOCK + c] = 0;
            *vk = (float)-log((ZETA - GAMMA) / (frac - GAMMA) - 1.0);
        }
    }
    /* float outputs of the sampled rows */
    for (int64_t k = 0; k < K; k++)
        for (int c = 0; c < BLOCK; c++)
            w[k * BLOCK + c] = c < nb ? j->w_float[k * cout + o0 + c] : 0.0f;
    if (j->target) {
        for (int64_t r = 0; r < j->rows; r++)
            for (int c = 0; c < BLOCK; c++)
                zf[r * BLOCK + c] = c < nb ? j->target[r * cout + o0 + c] : 0.0f;
    } else {
        output_rows(x, j->rows, K, w, zf);
    }
    if (cfg->centered) {
        /* with the patches centred too, the error is measured about its mean */
        for (int c = 0; c < BLOCK; c++) {
            double mean = 0;
            for (int64_t r = 0; r < j->rows; r++)
                mean += zf[r * BLOCK + c];
            mean /= (double)j->rows;
            for (int64_t r = 0; r < j->rows; r++)
                zf[r * BLOCK + c] -= (float)mean;
        }
    }
    /* The reconstruction term of a channel is measured in units of round-to-nearest's error per
     * weight (its mean squared error over the rows divided by the weights it has), so that
     * lambda weighs the regulariser against it the same way whatever the magnitudes of the
     * layer's inputs and weights: at nearest rounding the term equals the channel's weights. */
    double unit[BLOCK], nearest_error[BLOCK];
    for (int64_t k = 0; k < K; k++)
        for (int c = 0; c < BLOCK; c++)
            w[k * BLOCK + c] = c < nb ? scale[c] * (float)int_weight(j, k * cout + o0 + c) : 0.0f;
    const int64_t train_rows = t->train_rows;
    block_error(j, x, nb, w, zf, zq, 0, train_rows, nearest_error);
    for (int c = 0; c < BLOCK; c++) {
        double per_weight = c < nb ? nearest_error[c] / (double)train_rows / (double)K : 0.0;
        unit[c] = per_weight > 0 ? 1.0 / per_weight : 0.0;
    }
    if (xf && cfg->qdrop > 0 && !cfg->qdrop_sample)
        qdrop_table(draws, t->rows_per_step * K + QDROP_SPAN, cfg->qdrop,
                    ((uint64_t)j->layer << 40) ^ (uint64_t)o0 ^ 0x9e3779b97f4a7c15u);
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    double b1t = 1.0, b2t = 1.0;
    int64_t steps_per_epoch = (train_rows + t->rows_per_step - 1) / t->rows_per_step;
    /* shuffled batches: the samples' order of the epoch (the same for every block of the layer) */
    const int64_t train_samples = train_rows / j->per_sample,
                  batch_samples = t->rows_per_step / j->per_sample;
    int64_t *order = cfg->shuffle && !(xf && cfg->qdrop > 0)
                         ? malloc(sizeof *order * (size_t)train_samples) /* NULL: fixed order */
                         : NULL;
    for (int64_t step = 0; step < t->steps; step++) {
        int64_t r0 = (step % steps_per_epoch) * t->rows_per_step;
        int64_t r1 = r0 + t->rows_per_step < train_rows ? r0 + t->rows_per_step : train_rows;
        if (order && step % steps_per_epoch == 0) {
            uint64_t seed = ((uint64_t)j->layer << 40) ^ (uint64_t)(step / steps_per_epoch) ^
                            j->seed ^ 0x5851f42d4c957f2du;
            for (int64_t n = 0; n < train_samples; n++)
                order[n] = n;
            for (int64_t n = train_samples - 1; n > 0; n--) {
                int64_t u = (int64_t)(hqi_splitmix64(&seed) % (uint64_t)(n + 1)), tmp = order[n];
                order[n] = order[u];
                order[u] = tmp;
            }
        }
        for (int64_t k = 0; k < K * BLOCK; k++) {
            if (fixed[k] != 0) {
                w[k] = scale[k % BLOCK] * base[k];
            } else {
                h_step[k] = rectified_sigmoid(v[k], &slope_step[k]);
                w[k] = scale[k % BLOCK] * (float)(base[k] + h_step[k]);
            }
            grad[k] = 0;
        }
        if (xf && cfg->qdrop > 0) {
            uint64_t seed = ((uint64_t)j->layer << 48) ^ ((uint64_t)o0 << 24) ^ (uint64_t)step;
            if (cfg->qdrop_sample) {
                qdrop_samples(j, x, xf, r0, r1, cfg->qdrop, seed, mixed);
            } else {
                int64_t offset = (int64_t)(hqi_splitmix64(&seed) % QDROP_SPAN);
                qdrop_blend(x + r0 * K, xf + r0 * K, draws + offset, (r1 - r0) * K, mixed);
            }
            gradient_rows(mixed, zf + r0 * BLOCK, 0, r1 - r0, K, w, grad);
        } else if (order) {
            /* the batch's samples, each a run of per_sample rows, in the epoch's order */
            int64_t first = (step % steps_per_epoch) * batch_samples;
            for (int64_t n = first; n < first + batch_samples && n < train_samples; n++)
                gradient_rows(x, zf, order[n] * j->per_sample, (order[n] + 1) * j->per_sample, K,
                              w, grad);
        } else {
            gradient_rows(x, zf, r0, r1, K, w, grad);
        }
        const double norm = 2.0 / (double)(r1 - r0);
        const bool regularize = step >= t->warmup_steps;
        const double progress =
            t->steps > t->warmup_steps
                ? (double)(step - t->warmup_steps) / (double)(t->steps - t->warmup_steps)
                : 1.0;
        const double beta = cfg->beta_start + (cfg->beta_end - cfg->beta_start) * progress;
        b1t *= b1;
        b2t *= b2;
        for (int64_t k = 0; k < K * BLOCK; k++) {
            if (fixed[k] != 0)
                continue;
            const double slope = slope_step[k], h = h_step[k];
            double d = grad[k] * norm * unit[k % BLOCK] * scale[k % BLOCK] * slope;
            if (regularize) {
                double u = 2.0 * h - 1.0, a = fabs(u);
                if (a > 0)
                    d += cfg->weight * -beta * pow(a, beta - 1.0) * (u > 0 ? 2.0 : -2.0) * slope;
            }
            m[k] = (float)(b1 * m[k] + (1 - b1) * d);
            s2[k] = (float)(b2 * s2[k] + (1 - b2) * d * d);
            double mh = m[k] / (1 - b1t), vh = s2[k] / (1 - b2t);
            v[k] -= (float)(cfg->learning_rate * mh / (sqrt(vh) + eps));
        }
    }
    free(order);
    /* hard rounding, and the choice per channel between it and nearest */
    double err_learned[BLOCK], err_nearest[BLOCK];
    for (int64_t k = 0; k < K * BLOCK; k++) {
        double slope;
        if (fixed[k] == 0)
            base[k] += rectified_sigmoid(v[k], &slope) >= 0.5 ? 1.0f : 0.0f;
        w[k] = scale[k % BLOCK] * base[k];
    }
    const int64_t d0 = train_rows < j->rows ? train_rows : 0, decide = j->rows - d0;
    block_error(j, x, nb, w, zf, zq, d0, j->rows, err_learned);
    for (int64_t k = 0; k < K; k++)
        for (int c = 0; c < BLOCK; c++)
            grad[k * BLOCK + c] = c < nb ? scale[c] * (float)int_weight(j, k * cout + o0 + c) : 0;
    block_error(j, x, nb, grad, zf, zq, d0, j->rows, err_nearest);
    for (int64_t c = 0; c < nb; c++) {
        int64_t o = o0 + c;
        j->err_nearest[o] = err_nearest[c] / (double)decide;
        j->err_learned[o] = err_learned[c] / (double)decide;
        j->keep_nearest[o] = !(err_learned[c] < err_nearest[c]);
        double change = 0;
        if (!j->keep_nearest[o] && j->xmean) {
            for (int64_t k = 0; k < K; k++)
                change +=
                    (double)j->xmean[g * K + k] * ((double)w[k * BLOCK + c] - grad[k * BLOCK + c]);
        } else if (!j->keep_nearest[o]) {
            for (int64_t r = 0; r < j->rows; r++) {
                const float *xr = x + r * K;
                double acc = 0;
                for (int64_t k = 0; k < K; k++)
                    acc += (double)xr[k] * ((double)w[k * BLOCK + c] - grad[k * BLOCK + c]);
                change += acc;
            }
            change /= (double)j->rows;
        }
        j->mean_change[o] = change;
        if (j->keep_nearest[o])
            continue;
        for (int64_t k = 0; k < K; k++) {
            int32_t qv = (int32_t)base[k * BLOCK + c];
            if (j->weight_bits == 16)
                ((int16_t *)j->w_int)[k * cout + o] = (int16_t)qv;
            else
                ((int8_t *)j->w_int)[k * cout + o] = (int8_t)qv;
        }
    }
}

/* Adam steps per layer: `epochs` passes over the samples in batches, at most the budget. */
static int64_t adaround_steps(const hqi_adaround_config_t *cfg, int64_t samples)
{
    int64_t batch = cfg->batch_size < samples ? cfg->batch_size : samples;
    int64_t steps = cfg->epochs * ((samples + batch - 1) / batch);
    return cfg->max_steps > 0 && steps > cfg->max_steps ? cfg->max_steps : steps;
}

/* Trains every output channel of a collected layer and writes its new integer kernel. */
static hq_status_t job_train(job_t *j, const hqi_adaround_config_t *cfg, hqi_threadpool_t *pool,
                             bool bias_corrected, hq_error_t *err)
{
    int threads = hqi_threadpool_size(pool);
    train_t t = {.job = j, .cfg = cfg};
    t.blocks_per_group = (j->cout_pg + BLOCK - 1) / BLOCK;
    int64_t batch = cfg->batch_size < j->samples ? cfg->batch_size : j->samples;
    t.rows_per_step = batch * j->per_sample;
    int64_t held = (int64_t)(cfg->holdout * (double)j->samples + 0.5);
    t.train_rows = j->samples > 1 && held > 0
                       ? (j->samples - (held < j->samples ? held : j->samples - 1)) * j->per_sample
                       : j->rows;
    t.steps = adaround_steps(cfg, j->samples);
    t.warmup_steps = (int64_t)(cfg->warmup * (double)t.steps);
    t.scratch = calloc((size_t)threads, sizeof *t.scratch);
    hq_status_t st = t.scratch ? HQ_OK : hqi_nomem(err, where);
    size_t bytes = 0;
    for (int k = 0; k < threads && st == HQ_OK; k++)
        if (!hqi_mul_size(scratch_floats(j, cfg, t.rows_per_step), sizeof(float), &bytes) ||
            !(t.scratch[k] = malloc(bytes)))
            st = hqi_nomem(err, where);
    if (st == HQ_OK)
        hqi_threadpool_run(pool, j->groups * t.blocks_per_group, train_block, &t);
    for (int k = 0; t.scratch && k < threads; k++)
        free(t.scratch[k]);
    free(t.scratch);
    if (st != HQ_OK || !bias_corrected || !j->bias)
        return st;
    /* keep the earlier bias correction valid: it corrected the mean error of nearest rounding */
    for (int64_t o = 0; o < j->cout; o++) {
        double acc_scale = j->s_in * (double)j->w_scale[o];
        if (j->keep_nearest[o] || !(acc_scale > 0) || !isfinite(j->mean_change[o]))
            continue;
        int64_t delta = hqrt_round_double(j->mean_change[o] / acc_scale);
        j->bias[o] = hqrt_clamp64(j->bias[o] - delta, -HQRT_ACC_LIMIT, HQRT_ACC_LIMIT);
    }
    return HQ_OK;
}

/* The bias step (cfg->bias_step): each channel's integer bias such that its mean pre-activation
 * over the sampled rows, the patches' mean through the new integer kernel plus the bias, equals
 * the float network's there (the float kernel's outputs' mean plus the float bias). Needs the
 * float target and the patches' mean (centred error). */
static void job_bias_step(job_t *j, const hq_npz_t *fpo)
{
    const hq_tensor_t *bt = hqi_param(fpo, j->l, "bias:0");
    const float *bf = bt && hq_tensor_count(bt) == j->cout ? bt->data : NULL;
    for (int64_t o = 0; o < j->cout; o++) {
        double acc_scale = j->s_in * (double)j->w_scale[o];
        if (!(acc_scale > 0))
            continue;
        const float *xm = j->xmean + (o / j->cout_pg) * j->kpg;
        double zq = 0, zf = 0;
        for (int64_t k = 0; k < j->kpg; k++)
            zq += (double)xm[k] * (double)j->w_scale[o] * (double)int_weight(j, k * j->cout + o);
        for (int64_t r = 0; r < j->rows; r++)
            zf += j->target[r * j->cout + o];
        zf = zf / (double)j->rows + (bf ? bf[o] : 0.0);
        double code = (zf - zq) / acc_scale;
        if (isfinite(code))
            j->bias[o] =
                hqrt_clamp64(hqrt_round_double(code), -HQRT_ACC_LIMIT, HQRT_ACC_LIMIT);
    }
}

/* ---- the float network's outputs (float_target) --------------------------------------------- */

/* One float run over the samples: every trained layer's pre-activations (no bias) as the float
 * network computes them, at the positions the quantized sweep will draw. */
typedef struct float_pass {
    job_t *jobs; /* [layer count]; .l NULL for a layer not trained */
    int count;
    int64_t first;  /* the batch's first sample */
    float *patches; /* one sample's patches of the largest job */
} float_pass_t;

/* The float kernel's outputs of one sample's rows [row0, row0 + per_sample) of patches
 * ([groups][rows][kpg]). */
static void float_outputs(job_t *j, int64_t sample, const float *patches, int64_t rows,
                          int64_t row0)
{
    for (int64_t t = 0; t < j->per_sample; t++) {
        float *z = j->target + (sample * j->per_sample + t) * j->cout;
        for (int64_t o = 0; o < j->cout; o++) {
            const float *x = patches + ((o / j->cout_pg) * rows + row0 + t) * j->kpg;
            double acc = 0;
            for (int64_t k = 0; k < j->kpg; k++)
                acc += (double)x[k] * j->w_float[k * j->cout + o];
            z[o] = (float)acc;
        }
    }
}

static hq_status_t on_float_tap(void *user, int layer, int port, const hq_shape_t *shape,
                                const float *data, hq_error_t *err)
{
    (void)err;
    float_pass_t *f = user;
    int64_t per = 1;
    for (int d = 1; d < shape->ndim; d++)
        per *= shape->dims[d];
    for (int i = 0; i < f->count; i++) {
        job_t *j = &f->jobs[i];
        if (!j->l || j->l->inputs[0] != layer || j->l->input_ports[0] != port ||
            per != (j->dense ? j->out_h * j->cin_pg : j->in_h * j->in_w * j->in_c))
            continue;
        for (int64_t n = 0; n < shape->dims[0] && f->first + n < j->samples; n++) {
            int64_t s = f->first + n;
            if (j->fpatches) {
                /* QDrop: the float patches stay for the training */
                collect_sample(j, s, data + n * per, j->fpatches, j->rows, s * j->per_sample);
                float_outputs(j, s, j->fpatches, j->rows, s * j->per_sample);
            } else {
                collect_sample(j, s, data + n * per, f->patches, j->per_sample, 0);
                float_outputs(j, s, f->patches, j->per_sample, 0);
            }
            j->collected++;
        }
    }
    return HQ_OK;
}

/* Fills targets[i] ([rows][cout]) for every layer i the run trains, NULL for the others and for
 * a layer whose input the float run did not deliver (it then trains against the float kernel on
 * its quantized input); with QDrop (cfg->qdrop > 0) also fpatches[i], the float patches
 * ([groups][rows][kpg]). */
static hq_status_t float_targets(const hq_graph_t *graph, const hq_npz_t *fpo, const hq_npz_t *q,
                                 const hqi_layer_quant_t *dec, const hqi_adaround_config_t *cfg,
                                 const hqi_adaround_data_t *in, int64_t samples, int threads,
                                 float **targets, float **fpatches, hq_error_t *err)
{
    int n = hq_graph_layer_count(graph);
    float_pass_t f = {.count = n};
    f.jobs = calloc((size_t)n, sizeof *f.jobs);
    hq_status_t st = f.jobs ? HQ_OK : hqi_nomem(err, where);
    size_t largest = 1;
    for (int i = 0; i < n && st == HQ_OK; i++) {
        job_t *j = &f.jobs[i];
        if (!job_init(j, graph, fpo, q, dec, i, cfg))
            continue;
        job_plan(j, samples, cfg->positions);
        size_t patch = (size_t)(j->per_sample * j->groups * j->kpg);
        largest = patch > largest ? patch : largest;
        size_t bytes = 0;
        if (!hqi_mul_size((size_t)j->rows, (size_t)j->cout * sizeof(float), &bytes) ||
            !(j->target = malloc(bytes)) ||
            !(j->pick = malloc(sizeof *j->pick * (size_t)j->positions)))
            st = hqi_nomem(err, where);
        if (st == HQ_OK && cfg->qdrop > 0 &&
            (!hqi_mul_size((size_t)(j->rows * j->groups), (size_t)j->kpg * sizeof(float),
                           &bytes) ||
             !(j->fpatches = malloc(bytes ? bytes : 1))))
            st = hqi_nomem(err, where);
    }
    if (st == HQ_OK && !(f.patches = malloc(largest * sizeof(float))))
        st = hqi_nomem(err, where);
    hq_emulator_t *emu = NULL;
    if (st == HQ_OK)
        st = hq_emulator_create(graph, fpo, HQ_TARGET_FP_OPTIMIZED, "fp_optimized params", &emu,
                                err);
    if (st == HQ_OK && threads > 0)
        st = hq_emulator_set_threads(emu, threads, err);
    int in_count = 0;
    if (st == HQ_OK)
        hq_graph_inputs(graph, &in_count);
    int *source = calloc((size_t)(in_count ? in_count : 1), sizeof(int));
    float **buffers = calloc((size_t)(in_count ? in_count : 1), sizeof(float *));
    if (st == HQ_OK && (!source || !buffers))
        st = hqi_nomem(err, where);
    if (st == HQ_OK)
        st = hqi_calibration_sources(graph, in->data, in->input_names, source, err);
    for (int k = 0; k < in_count && st == HQ_OK; k++) {
        size_t bytes = 0;
        if (!hqi_mul_size((size_t)hq_emulator_input_size(emu, k), EMULATE_BATCH * sizeof(float),
                          &bytes) ||
            !(buffers[k] = malloc(bytes)))
            st = hqi_nomem(err, where);
    }
    for (f.first = 0; f.first < samples && st == HQ_OK; f.first += EMULATE_BATCH) {
        int64_t b = samples - f.first < EMULATE_BATCH ? samples - f.first : EMULATE_BATCH;
        for (int k = 0; k < in_count && st == HQ_OK; k++)
            st = hq_dataset_read(in->data, source[k], f.first, b, buffers[k], err);
        if (st == HQ_OK)
            st =
                hq_emulator_run(emu, b, (const float *const *)buffers, NULL, on_float_tap, &f, err);
    }
    for (int i = 0; f.jobs && i < n; i++) {
        job_t *j = &f.jobs[i];
        if (st == HQ_OK && j->l && j->collected == samples) {
            targets[i] = j->target;
            j->target = NULL;
            fpatches[i] = j->fpatches;
            j->fpatches = NULL;
        }
        job_free(j);
    }
    for (int k = 0; buffers && k < in_count; k++)
        free(buffers[k]);
    free(buffers);
    free(source);
    free(f.patches);
    free(f.jobs);
    hq_emulator_destroy(emu);
    return st;
}

/* ---- the run --------------------------------------------------------------------------------- */

static void log_layer(const hqi_logger_t *log, const job_t *j)
{
    double before = 0, after = 0;
    int kept = 0;
    for (int64_t o = 0; o < j->cout; o++) {
        before += j->err_nearest[o];
        after += j->keep_nearest[o] ? j->err_nearest[o] : j->err_learned[o];
        kept += j->keep_nearest[o];
    }
    hqi_logf(log, HQ_LOG_DEBUG,
             "adaround: %s (%d-bit, %lld weights, %lld patches): error %.6g -> %.6g "
             "(%d of %lld channel(s) kept nearest)",
             j->l->bare_name, j->weight_bits, (long long)(j->kpg * j->cout), (long long)j->rows,
             before, after, kept, (long long)j->cout);
}

/* What the sweep's hook trains: the layers still pending and what the run reports. */
typedef struct run {
    const hq_graph_t *graph;
    const hq_npz_t *fpo;
    const hqi_layer_quant_t *dec;
    hq_npz_t *q;
    const hqi_adaround_config_t *cfg;
    bool bias_corrected;
    const hqi_logger_t *log;
    hqi_threadpool_t *pool;
    float *scratch;  /* dequantized inputs of EMULATE_BATCH samples of the largest tensor */
    float **targets; /* [layer count] (float_target): what float_targets measured, else NULL */
    float **fpatches; /* [layer count] (QDrop): the float patches float_targets kept, else NULL */
    hqi_adaround_report_t rep;
} run_t;

/* Trains layer i when the mode selects it: its patches from its input's codes, then hard
 * rounding; the sweep then runs it with its new kernel. */
static hq_status_t train_layer(void *context, const hqi_sweep_t *sweep, int i, bool *changed,
                               hq_error_t *err)
{
    run_t *r = context;
    job_t j;
    if (!job_init(&j, r->graph, r->fpo, r->q, r->dec, i, r->cfg))
        return HQ_OK;
    int64_t samples = hqi_sweep_samples(sweep);
    hq_status_t st = job_alloc(&j, samples, r->cfg->positions, err);
    if (st == HQ_OK && (double)j.rows < r->cfg->min_rows * (double)j.kpg) {
        /* fewer rows than min_rows per weight of a channel (a squeeze-and-excitation conv on a
         * pooled input has one row per sample): the rounding would fit those samples rather
         * than the layer */
        hqi_logf(r->log, HQ_LOG_DEBUG,
                 "adaround: %s: %lld row(s) for %lld weight(s) per channel, below min_rows %g "
                 "per weight: left at round-to-nearest",
                 j.l->bare_name, (long long)j.rows, (long long)j.kpg, r->cfg->min_rows);
        r->rep.skipped++;
        job_free(&j);
        return HQ_OK;
    }
    int64_t per = hqi_sweep_input_size(sweep, i, 0);
    int64_t want = j.dense ? j.out_h * j.cin_pg : j.in_h * j.in_w * j.in_c;
    j.s_in = hqi_sweep_input_scale(sweep, i, 0);
    for (int64_t first = 0; st == HQ_OK && per == want && first < samples; first += EMULATE_BATCH) {
        int64_t b = samples - first < EMULATE_BATCH ? samples - first : EMULATE_BATCH;
        hqi_sweep_input(sweep, i, 0, first, b, r->scratch);
        job_collect(&j, first, b, r->scratch);
    }
    if (st == HQ_OK && j.collected != samples)
        /* the input's shape is not the one the layer's geometry reads */
        hqi_logf(r->log, HQ_LOG_WARNING,
                 "adaround: %s: its input was not collected; left at round-to-nearest", j.l->name);
    else if (st == HQ_OK) {
        if (r->targets) {
            j.target = r->targets[i];
            r->targets[i] = NULL;
            j.fpatches = r->fpatches[i];
            r->fpatches[i] = NULL;
        }
        if (r->cfg->centered)
            st = job_center(&j, err);
        if (st == HQ_OK)
            st = job_train(&j, r->cfg, r->pool, r->bias_corrected, err);
        if (st == HQ_OK && r->cfg->bias_step && r->bias_corrected && j.target && j.xmean &&
            j.bias)
            job_bias_step(&j, r->fpo);
    }
    if (st == HQ_OK && j.collected == samples) {
        log_layer(r->log, &j);
        for (int64_t o = 0; o < j.cout; o++) {
            r->rep.error_nearest += j.err_nearest[o];
            r->rep.error_adaround += j.keep_nearest[o] ? j.err_nearest[o] : j.err_learned[o];
            r->rep.kept_nearest += j.keep_nearest[o];
        }
        r->rep.layers++;
        *changed = true;
    }
    job_free(&j);
    return st;
}

hq_status_t hqi_adaround_run(const hq_graph_t *graph, const hq_npz_t *fpo,
                             const hqi_layer_quant_t *dec, hq_npz_t *q,
                             const hqi_adaround_config_t *cfg, hqi_adaround_bias_t bias,
                             const hqi_adaround_data_t *in, int threads, const hqi_logger_t *log,
                             hqi_adaround_report_t *report, hq_error_t *err)
{
    hq_dataset_t *data = in->data;
    double t0 = hqi_seconds_now();
    run_t r = {graph, fpo, dec, q,    cfg, bias != HQI_ADAROUND_BIAS_NONE, log, NULL, NULL, NULL,
               NULL,  {0}};
    if (report)
        *report = r.rep;
    int n = hq_graph_layer_count(graph);
    int64_t samples = hq_dataset_count(data);
    if (cfg->dataset_size > 0 && cfg->dataset_size < samples)
        samples = cfg->dataset_size;
    else if (cfg->dataset_size > samples)
        hqi_logf(log, HQ_LOG_WARNING,
                 "adaround: dataset_size %lld but the calibration set has %lld sample(s): "
                 "training on %lld",
                 (long long)cfg->dataset_size, (long long)samples, (long long)samples);
    if (threads <= 0)
        threads = hqi_default_threads();
    if (samples > 0) {
        int64_t batch = cfg->batch_size < samples ? cfg->batch_size : samples;
        int64_t wanted = cfg->epochs * ((samples + batch - 1) / batch);
        if (cfg->max_steps > 0 && wanted > cfg->max_steps)
            hqi_logf(log, HQ_LOG_INFO,
                     "adaround: %lld epoch(s) of %lld sample(s) would be %lld step(s) per layer; "
                     "the default budget is %lld (epochs= in the script lifts it)",
                     (long long)cfg->epochs, (long long)samples, (long long)wanted,
                     (long long)cfg->max_steps);
    }
    r.rep.steps = samples > 0 ? adaround_steps(cfg, samples) : 0;
    hq_status_t st = HQ_OK;
    int targets = 0;
    for (int i = 0; i < n; i++) {
        job_t j;
        if (job_init(&j, graph, fpo, q, dec, i, cfg))
            targets++;
    }
    if (targets == 0 || samples < 1) {
        hqi_logf(log, HQ_LOG_INFO, "adaround: no layer to train (%s)",
                 samples < 1      ? "no calibration samples"
                 : cfg->train_all ? "no conv, depthwise, deconv or dense layer"
                                  : "mode=train_4bit and no layer has 4-bit weights");
        goto done;
    }
    int64_t largest = 1;
    for (int i = 0; i < n; i++)
        for (int p = 0; p < hq_layer_port_count(hq_graph_layer(graph, i)); p++) {
            hq_shape_t s = hq_layer_port_shape(hq_graph_layer(graph, i), p);
            int64_t size = 1;
            for (int d = 1; d < s.ndim; d++)
                size *= s.dims[d];
            largest = size > largest ? size : largest;
        }
    size_t scratch_bytes = 0;
    if (!hqi_mul_size((size_t)largest, EMULATE_BATCH * sizeof(float), &scratch_bytes) ||
        !(r.scratch = malloc(scratch_bytes)))
        st = hqi_nomem(err, where);
    if (st == HQ_OK && threads > 1)
        st = hqi_threadpool_create(threads, &r.pool, err);
    if (st == HQ_OK && cfg->float_target) {
        double t1 = hqi_seconds_now();
        if (!(r.targets = calloc((size_t)n, sizeof *r.targets)) ||
            !(r.fpatches = calloc((size_t)n, sizeof *r.fpatches)))
            st = hqi_nomem(err, where);
        if (st == HQ_OK)
            st = float_targets(graph, fpo, q, dec, cfg, in, samples, threads, r.targets,
                               r.fpatches, err);
        int got = 0;
        for (int i = 0; r.targets && i < n; i++)
            got += r.targets[i] != NULL;
        if (st == HQ_OK)
            hqi_logf(log, HQ_LOG_DEBUG,
                     "adaround: the float network's outputs of %d of %d layer(s), %.2f s", got,
                     targets, hqi_seconds_now() - t1);
    }
    if (st == HQ_OK)
        st = hqi_sweep_run(graph, q, data, in->input_names, samples, threads, where, train_layer,
                           &r, err);
    if (st == HQ_OK && r.rep.layers && bias == HQI_ADAROUND_BIAS_ITERATIVE) {
        /* each layer's measured correction also compensated what the layers before it passed on,
         * which the new rounding changed: measure again */
        double t1 = hqi_seconds_now();
        int corrected = 0;
        st = hqi_bias_correct_iterative(graph, in->calibration, q, data, in->input_names,
                                        in->calibset, in->batch, threads, 0, &corrected, err);
        if (st == HQ_OK)
            hqi_logf(log, HQ_LOG_DEBUG,
                     "adaround: bias correction (iterative) again: %d layer(s), %.2f s", corrected,
                     hqi_seconds_now() - t1);
    }
done:
    for (int i = 0; r.targets && i < n; i++)
        free(r.targets[i]);
    for (int i = 0; r.fpatches && i < n; i++)
        free(r.fpatches[i]);
    free(r.targets);
    free(r.fpatches);
    hqi_threadpool_destroy(r.pool);
    free(r.scratch);
    r.rep.samples = samples;
    r.rep.seconds = hqi_seconds_now() - t0;
    if (st == HQ_OK && report)
        *report = r.rep;
    if (st == HQ_OK && r.rep.layers)
        hqi_logf(log, HQ_LOG_INFO,
                 "adaround: %d layer(s) on %lld sample(s), %lld step(s) each, reconstruction "
                 "error %.6g -> %.6g (sum over layers), %lld channel(s) kept nearest, %.2f s",
                 r.rep.layers, (long long)samples, (long long)r.rep.steps, r.rep.error_nearest,
                 r.rep.error_adaround, (long long)r.rep.kept_nearest, r.rep.seconds);
    if (st == HQ_OK && r.rep.skipped)
        hqi_logf(log, HQ_LOG_INFO,
                 "adaround: %d layer(s) left at round-to-nearest: fewer rows than min_rows %g "
                 "per weight of a channel",
                 r.rep.skipped, cfg->min_rows);
    return st;
}
