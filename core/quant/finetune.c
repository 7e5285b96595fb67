/* finetune.c — post_quantization_optimization(finetune): block-wise reconstruction in the style
 * of BRECQ (Li et al., 2021) and QDrop (Wei et al., 2022), on the CPU.
 *
 * Layer-wise methods (AdaRound) fit each layer's output alone; the errors of consecutive layers
 * then add up. Finetune fits a block of layers at once: a chain of up to `block_layers` conv,
 * depthwise, deconv or dense layers where each output feeds only the next one (the network holds
 * a single tensor between two blocks). For each block, in network order, the float weights W and
 * biases b of its layers are trained with Adam to minimise the block's loss
 *     loss(block_q(x), block_f(x))
 * where x is the block's input as the quantized network computes it (dequantized codes, every
 * earlier block already trained: the sweep of sweep.c, shared with AdaRound), block_f the float
 * block (fp_optimized kernels and biases, float activations) and block_q the same block with
 *   - each weight rounded to the layer's own per-channel kernel_scale s (clipped as the builder
 *     clips it): s * clamp(round(W / s)); the rounding's gradient is a straight-through
 *     estimator (1 inside the clip and the code range, 0 outside);
 *   - the activations between its layers quantized with their encodings (scale, zero point,
 *     bits), again with a straight-through estimator that stops at the code range;
 *   - the block's own output left unquantized (its output encoding only adds the same rounding
 *     noise to both candidates).
 * Adam's step is `learning_rate` quantization steps for a weight and `learning_rate` output steps
 * for a bias, with a cosine decay to zero: one learning rate means the same on every layer,
 * whatever its weights' magnitude. At the end kernel:0 = clamp(round(clip(W) / s)) and bias:0 =
 * round(b / (s_in * s)), exactly the builder's formulas with the model's scales, so the
 * emulator, the compiler and the runtime keep computing the same integers from them. A block
 * whose loss over all its samples does not fall keeps its params (the safety net AdaRound has).
 *
 * Samples are visited in a shuffled order per epoch (fixed seed). Within a step, each sample's
 * forward and backward pass is one task of the thread pool with its own gradient slot, summed in
 * sample order afterwards: the result does not depend on the thread count. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numerics/activation.h"
#include "quant/finetune.h"
#include "quant/sweep.h"
#include "runtime/hqrt_numerics.h"
#include "util/threadpool.h"
#include "util/util.h"

static const char where[] = "finetune";

#define MAX_BLOCK 8     /* layers one block may chain at most */
#define EVAL_SAMPLES 64 /* samples the safety net compares a block's losses on */

void hqi_finetune_defaults(hqi_finetune_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->epochs = 4;
    cfg->max_steps = 32;
    cfg->batch_size = 8;
    cfg->learning_rate = 0.03;
    cfg->block_layers = 3;
}

static const char *const loss_names[] = {"l2rel", "l2", "cosine", "ce"};

bool hqi_finetune_loss_parse(const char *word, hqi_finetune_loss_t *out)
{
    for (int k = 0; k < 4; k++)
        if (word && strcmp(word, loss_names[k]) == 0) {
            *out = (hqi_finetune_loss_t)k;
            return true;
        }
    return false;
}

/* ---- one layer of a block -------------------------------------------------------------------- */

typedef struct ft_layer {
    const hq_layer_t *l;
    int index;
    bool pool;  /* a maxpool, avgpool or global_avg_pool inside a block: no params */
    bool dense;
    int64_t in_h, in_w, in_c, out_h, out_w; /* dense: out_h rows of in_c (= cin_pg) values */
    int64_t cout, groups, cin_pg, cout_pg, kh, kw, kpg;
    int64_t in_size, out_size; /* values per sample */
    hqi_ref_act_t act;
    int weight_bits;
    double wmax;
    const float *kscale; /* q kernel_scale:0 [cout] */
    void *w_int;         /* q kernel:0, rewritten in place */
    int64_t *b_int;      /* q bias:0 [cout], rewritten in place */
    double s_in;         /* the input's scale: bias:0 is in units of s_in * kscale */
    double out_scale;    /* the output's encoding: quantizes it inside a block */
    int32_t out_zp, out_max;
    double *clip;        /* [cout]: |W| is clipped to it before rounding (INFINITY: none) */
    /* [kpg * cout] weights then [cout] biases: */
    float *wf;           /* the float block's (fp_optimized) */
    float *wo;           /* the quantized block's as q has them now */
    float *wt;           /* the trained float params */
    float *wq;           /* the trained params as the quantized block uses them (rounded) */
    float *pass;         /* straight-through gradient mask of the rounding */
    float *adam_m, *adam_v;
} ft_layer_t;

static int64_t params_of(const ft_layer_t *L)
{
    return L->pool ? 0 : L->kpg * L->cout + L->cout;
}

/* Whether layer i is a pool a block may run through (one input, one output piece, an image). */
static bool pool_init(ft_layer_t *L, const hq_graph_t *graph, int i)
{
    const hq_layer_t *l = hq_graph_layer(graph, i);
    memset(L, 0, sizeof *L);
    if ((l->type != HQ_LAYER_MAXPOOL && l->type != HQ_LAYER_AVGPOOL &&
         l->type != HQ_LAYER_GLOBAL_AVG_POOL) ||
        l->input_count != 1 || hq_layer_port_count(l) != 1)
        return false;
    hq_shape_t in = l->input_shapes[0], out = l->output_shape;
    if (in.ndim != 4 || out.ndim != 4 || in.dims[3] != out.dims[3])
        return false;
    L->l = l;
    L->index = i;
    L->pool = true;
    L->act.type = HQ_ACT_LINEAR;
    L->in_h = in.dims[1];
    L->in_w = in.dims[2];
    L->in_c = L->cout = in.dims[3];
    L->out_h = out.dims[1];
    L->out_w = out.dims[2];
    bool global = l->type == HQ_LAYER_GLOBAL_AVG_POOL;
    L->kh = global ? L->in_h : l->params.kernel_h;
    L->kw = global ? L->in_w : l->params.kernel_w;
    if (L->kh < 1 || L->kw < 1 || (global && (L->out_h != 1 || L->out_w != 1)))
        return false;
    L->in_size = L->in_h * L->in_w * L->in_c;
    L->out_size = L->out_h * L->out_w * L->cout;
    return true;
}

/* The input row (rows) or column of a pool's window tap k for output o, -1 outside. */
static int64_t pool_source(const ft_layer_t *L, bool rows, int64_t o, int64_t k)
{
    if (L->l->type == HQ_LAYER_GLOBAL_AVG_POOL)
        return k;
    const hq_layer_params_t *p = &L->l->params;
    int stride = rows ? p->stride_h : p->stride_w;
    int64_t s = o * (stride < 1 ? 1 : stride) - (rows ? p->pads[0] : p->pads[1]) + k;
    return s >= 0 && s < (rows ? L->in_h : L->in_w) ? s : -1;
}

/* A pool's output for one sample; with dz and dx, the gradient instead (dx += ...). */
static void pool_pass(const ft_layer_t *L, const float *x, float *z, const float *dz, float *dx)
{
    const bool max = L->l->type == HQ_LAYER_MAXPOOL;
    const bool all = L->l->type == HQ_LAYER_GLOBAL_AVG_POOL || L->l->params.count_include_pad;
    const int64_t C = L->cout;
    if (dx)
        memset(dx, 0, sizeof(float) * (size_t)L->in_size);
    for (int64_t oy = 0; oy < L->out_h; oy++)
        for (int64_t ox = 0; ox < L->out_w; ox++)
            for (int64_t c = 0; c < C; c++) {
                const int64_t at = (oy * L->out_w + ox) * C + c;
                float best = -INFINITY, sum = 0;
                int64_t arg = -1, count = 0;
                for (int64_t ky = 0; ky < L->kh; ky++) {
                    int64_t iy = pool_source(L, true, oy, ky);
                    for (int64_t kx = 0; kx < L->kw; kx++) {
                        int64_t ix = pool_source(L, false, ox, kx);
                        if (iy < 0 || ix < 0) {
                            count += all;
                            continue;
                        }
                        int64_t src = (iy * L->in_w + ix) * C + c;
                        count++;
                        sum += x[src];
                        if (x[src] > best)
                            best = x[src], arg = src;
                    }
                }
                if (dx && max && arg >= 0) {
                    dx[arg] += dz[at];
                } else if (dx && !max && count > 0) {
                    for (int64_t ky = 0; ky < L->kh; ky++) {
                        int64_t iy = pool_source(L, true, oy, ky);
                        for (int64_t kx = 0; kx < L->kw; kx++) {
                            int64_t ix = pool_source(L, false, ox, kx);
                            if (iy >= 0 && ix >= 0)
                                dx[(iy * L->in_w + ix) * C + c] += dz[at] / (float)count;
                        }
                    }
                } else if (!dx) {
                    z[at] = max ? (arg >= 0 ? best : 0.0f) : count > 0 ? sum / (float)count : 0.0f;
                }
            }
}

static void layer_free(ft_layer_t *L)
{
    free(L->clip);
    free(L->wf);
    free(L->wo);
    free(L->wt);
    free(L->wq);
    free(L->pass);
    free(L->adam_m);
    free(L->adam_v);
    memset(L, 0, sizeof *L);
}

/* Whether layer i can be trained in a block, and its geometry (nothing allocated). */
static bool layer_init(ft_layer_t *L, const hq_graph_t *graph, const hq_npz_t *fpo,
                       const hq_npz_t *q, const hqi_layer_quant_t *dec, int i)
{
    const hq_layer_t *l = hq_graph_layer(graph, i);
    memset(L, 0, sizeof *L);
    int wb = dec[i].weight_bits;
    hqi_kernel_layer_t k;
    /* one input and one output piece, a bias to train, and an image output of cout channels */
    if (l->input_count != 1 || l->params.elementwise_add || hq_layer_port_count(l) != 1 ||
        !hqi_kernel_layer(l, fpo, q, wb, &k) || !k.bias ||
        (!k.dense && l->output_shape.dims[3] != k.cout))
        return false;
    const hq_layer_params_t *p = &l->params;
    if (p->activation == HQ_ACT_PRELU) {
        const hq_tensor_t *slope = hqi_param(fpo, l, "prelu_slope:0");
        if (!slope || (hq_tensor_count(slope) != 1 && hq_tensor_count(slope) != k.cout))
            return false;
        L->act.slope = slope->data;
        L->act.slope_count = hq_tensor_count(slope);
    }
    L->act.type = p->activation;
    L->act.alpha = p->activation_alpha;
    L->act.beta = p->activation_beta;
    L->dense = k.dense;
    L->in_h = k.in_h;
    L->in_w = k.in_w;
    L->in_c = k.in_c;
    L->out_h = k.out_h;
    L->out_w = k.out_w;
    L->cout = k.cout;
    L->groups = k.groups;
    L->cin_pg = k.cin_pg;
    L->cout_pg = k.cout_pg;
    L->kh = k.kh;
    L->kw = k.kw;
    L->kpg = k.kpg;
    L->in_size = L->in_h * L->in_w * L->in_c;
    L->out_size = L->out_h * L->out_w * L->cout;
    L->l = l;
    L->index = i;
    L->weight_bits = wb;
    L->wmax = ldexp(1.0, wb - 1) - 1.0;
    L->kscale = k.w_scale;
    L->w_int = k.w_int;
    L->b_int = k.bias;
    return true;
}

static double int_weight(const ft_layer_t *L, int64_t index)
{
    return L->weight_bits == 16 ? ((const int16_t *)L->w_int)[index]
                                : ((const int8_t *)L->w_int)[index];
}

/* Allocates the training state of a layer whose encodings the sweep knows. */
static hq_status_t layer_alloc(ft_layer_t *L, const hq_npz_t *fpo,
                               const hqi_layer_quant_t *dec, const hqi_sweep_t *sweep,
                               hq_error_t *err)
{
    if (L->pool) {
        const hqi_qlayer_t *own = hqi_sweep_layer(sweep, L->index);
        L->out_scale = own->scale;
        L->out_zp = own->zp;
        L->out_max = own->bits == 16 ? 65535 : 255;
        return HQ_OK;
    }
    int64_t n = params_of(L);
    size_t bytes = 0;
    if (!hqi_mul_size((size_t)n, sizeof(float), &bytes) || !(L->wf = malloc(bytes)) ||
        !(L->wo = malloc(bytes)) || !(L->wt = malloc(bytes)) || !(L->wq = malloc(bytes)) ||
        !(L->pass = malloc(bytes)) || !(L->adam_m = calloc((size_t)n, sizeof(float))) ||
        !(L->adam_v = calloc((size_t)n, sizeof(float))) ||
        !(L->clip = malloc(sizeof *L->clip * (size_t)L->cout)))
        return hqi_nomem(err, where);
    const hqi_layer_quant_t *d = &dec[L->index];
    const hqi_qlayer_t *own = hqi_sweep_layer(sweep, L->index);
    L->s_in = hqi_sweep_input_scale(sweep, L->index, 0);
    L->out_scale = own->scale;
    L->out_zp = own->zp;
    L->out_max = own->bits == 16 ? 65535 : 255;
    const float *w = hqi_param(fpo, L->l, "kernel:0")->data;
    const hq_tensor_t *bias = hqi_param(fpo, L->l, "bias:0");
    const float *bf = bias && hq_tensor_count(bias) == L->cout ? bias->data : NULL;
    const int64_t nw = L->kpg * L->cout;
    for (int64_t o = 0; o < L->cout; o++)
        L->clip[o] = d->weight_clip_channels && d->weight_clip_channels[o] > 0
                         ? d->weight_clip_channels[o]
                     : d->weight_clip > 0 ? d->weight_clip
                                          : INFINITY;
    for (int64_t k = 0; k < nw; k++) {
        L->wf[k] = L->wt[k] = w[k];
        L->wo[k] = (float)(L->kscale[k % L->cout] * int_weight(L, k));
    }
    for (int64_t o = 0; o < L->cout; o++) {
        double acc = L->s_in * (double)L->kscale[o];
        L->wf[nw + o] = bf ? bf[o] : 0.0f;
        L->wo[nw + o] = L->wt[nw + o] = (float)((double)L->b_int[o] * acc);
    }
    return HQ_OK;
}

/* Weight k of the trained params on the integer grid: clamp(round(clip(W) / s)), as the builder
 * rounds; *inside = whether the rounding's straight-through gradient passes. */
static double weight_code(const ft_layer_t *L, int64_t k, bool *inside)
{
    int64_t o = k % L->cout;
    double s = L->kscale[o], c = L->clip[o], v = L->wt[k];
    double vc = v > c ? c : v < -c ? -c : v;
    double r = (double)hqrt_round_double(vc / s);
    *inside = fabs(v) <= c && fabs(r) <= L->wmax;
    return r > L->wmax ? L->wmax : r < -L->wmax ? -L->wmax : r;
}

/* Bias o of the trained params in accumulator units: round(b / (s_in * s)), as the builder. */
static int64_t bias_code(const ft_layer_t *L, int64_t o)
{
    double acc = L->s_in * (double)L->kscale[o];
    return hqrt_clamp64(hqrt_round_double(L->wt[L->kpg * L->cout + o] / acc), -HQRT_ACC_LIMIT,
                        HQRT_ACC_LIMIT);
}

/* The trained params as the quantized block uses them, with the straight-through mask. */
static void layer_round(ft_layer_t *L)
{
    const int64_t nw = L->kpg * L->cout;
    for (int64_t k = 0; k < nw; k++) {
        bool inside;
        L->wq[k] = (float)(L->kscale[k % L->cout] * weight_code(L, k, &inside));
        L->pass[k] = inside ? 1.0f : 0.0f;
    }
    for (int64_t o = 0; o < L->cout; o++) {
        L->wq[nw + o] = (float)((double)bias_code(L, o) * L->s_in * (double)L->kscale[o]);
        L->pass[nw + o] = 1.0f;
    }
}

/* Writes the trained params into q's kernel:0 and bias:0. */
static void layer_store(ft_layer_t *L)
{
    const int64_t nw = L->kpg * L->cout;
    for (int64_t k = 0; k < nw; k++) {
        bool inside;
        int32_t qv = (int32_t)weight_code(L, k, &inside);
        if (L->weight_bits == 16)
            ((int16_t *)L->w_int)[k] = (int16_t)qv;
        else
            ((int8_t *)L->w_int)[k] = (int8_t)qv;
    }
    for (int64_t o = 0; o < L->cout; o++)
        L->b_int[o] = bias_code(L, o);
}

/* ---- forward and backward of one layer on one sample ----------------------------------------- */

/* The input row (rows) or column tap k of output o reads, -1 for padding. */
static int64_t source(const ft_layer_t *L, bool rows, int64_t o, int64_t k)
{
    if (L->dense)
        return rows ? o : 0;
    return hqi_tap_source(L->l, rows, o, k, rows ? L->in_h : L->in_w);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HOT __attribute__((target_clones("avx2", "default")))
#else
#define HOT
#endif

/* z = x (*) W + b for one sample; w = [kpg * cout] weights then [cout] biases. */
HOT static void layer_forward(const ft_layer_t *L, const float *w, const float *x, float *z)
{
    const int64_t cout = L->cout, cpg = L->cout_pg, nw = L->kpg * cout;
    for (int64_t oy = 0; oy < L->out_h; oy++)
        for (int64_t ox = 0; ox < L->out_w; ox++) {
            float *zr = z + (oy * L->out_w + ox) * cout;
            memcpy(zr, w + nw, sizeof(float) * (size_t)cout);
            for (int64_t ky = 0; ky < L->kh; ky++) {
                int64_t iy = source(L, true, oy, ky);
                if (iy < 0)
                    continue;
                for (int64_t kx = 0; kx < L->kw; kx++) {
                    int64_t ix = source(L, false, ox, kx);
                    if (ix < 0)
                        continue;
                    const float *xr = x + (iy * L->in_w + ix) * L->in_c;
                    const float *wr = w + (ky * L->kw + kx) * L->cin_pg * cout;
                    for (int64_t g = 0; g < L->groups; g++)
                        for (int64_t ci = 0; ci < L->cin_pg; ci++) {
                            const float a = xr[g * L->cin_pg + ci];
                            const float *wk = wr + ci * cout + g * cpg;
                            float *zg = zr + g * cpg;
                            for (int64_t o = 0; o < cpg; o++)
                                zg[o] += a * wk[o];
                        }
                }
            }
        }
}

/* Given dz for one sample: grad += dL/dW, dL/db; dx = dL/dx when dx is not NULL. */
HOT static void layer_backward(const ft_layer_t *L, const float *w, const float *x,
                               const float *dz, float *grad, float *dx)
{
    const int64_t cout = L->cout, cpg = L->cout_pg, nw = L->kpg * cout;
    if (dx)
        memset(dx, 0, sizeof(float) * (size_t)L->in_size);
    for (int64_t oy = 0; oy < L->out_h; oy++)
        for (int64_t ox = 0; ox < L->out_w; ox++) {
            const float *dzr = dz + (oy * L->out_w + ox) * cout;
            for (int64_t o = 0; o < cout; o++)
                grad[nw + o] += dzr[o];
            for (int64_t ky = 0; ky < L->kh; ky++) {
                int64_t iy = source(L, true, oy, ky);
                if (iy < 0)
                    continue;
                for (int64_t kx = 0; kx < L->kw; kx++) {
                    int64_t ix = source(L, false, ox, kx);
                    if (ix < 0)
                        continue;
                    const int64_t at = (iy * L->in_w + ix) * L->in_c;
                    const int64_t wk0 = (ky * L->kw + kx) * L->cin_pg * cout;
                    for (int64_t g = 0; g < L->groups; g++)
                        for (int64_t ci = 0; ci < L->cin_pg; ci++) {
                            const float a = x[at + g * L->cin_pg + ci];
                            const float *wk = w + wk0 + ci * cout + g * cpg;
                            float *gk = grad + wk0 + ci * cout + g * cpg;
                            const float *dzg = dzr + g * cpg;
                            /* eight partial sums, so that the reduction vectorizes */
                            float part[8] = {0};
                            int64_t o = 0;
                            for (; o + 8 <= cpg; o += 8)
                                for (int u = 0; u < 8; u++) {
                                    gk[o + u] += a * dzg[o + u];
                                    part[u] += wk[o + u] * dzg[o + u];
                                }
                            for (; o < cpg; o++) {
                                gk[o] += a * dzg[o];
                                part[0] += wk[o] * dzg[o];
                            }
                            if (dx)
                                dx[at + g * L->cin_pg + ci] +=
                                    ((part[0] + part[1]) + (part[2] + part[3])) +
                                    ((part[4] + part[5]) + (part[6] + part[7]));
                        }
                }
            }
        }
}

/* f(z) and, with slope, f'(z): exact for the piecewise-linear activations, a central difference
 * of the shared formulas (activation.h) for the others. */
static float activate(const ft_layer_t *L, float z, int64_t channel, float *slope)
{
    const hqi_ref_act_t *a = &L->act;
    switch (a->type) {
    case HQ_ACT_LINEAR:
        *slope = 1.0f;
        return z;
    case HQ_ACT_RELU:
        *slope = z > 0 ? 1.0f : 0.0f;
        return z > 0 ? z : 0.0f;
    default: {
        float h = 1e-3f * (fabsf(z) > 1.0f ? fabsf(z) : 1.0f);
        *slope = (hqi_ref_activate(a, z + h, channel) - hqi_ref_activate(a, z - h, channel)) /
                 (2.0f * h);
        return hqi_ref_activate(a, z, channel);
    }
    }
}

/* ---- a block --------------------------------------------------------------------------------- */

typedef struct block {
    ft_layer_t layers[MAX_BLOCK];
    int count;
    hqi_finetune_loss_t loss;
    int64_t max_size; /* the largest input or output of its layers, per sample */
} block_t;

/* Per-thread buffers of one sample's pass: each layer's input and pre-activation, the float
 * target, two gradient buffers. */
typedef struct workspace {
    float *xs[MAX_BLOCK + 1]; /* xs[L]: layer L's input; xs[count]: the block's output */
    float *zs[MAX_BLOCK];
    float *target, *g0, *g1;
} workspace_t;

static void workspace_free(workspace_t *ws)
{
    for (int k = 0; k <= MAX_BLOCK; k++)
        free(ws->xs[k]);
    for (int k = 0; k < MAX_BLOCK; k++)
        free(ws->zs[k]);
    free(ws->target);
    free(ws->g0);
    free(ws->g1);
    memset(ws, 0, sizeof *ws);
}

static bool workspace_alloc(workspace_t *ws, const block_t *b)
{
    memset(ws, 0, sizeof *ws);
    bool ok = true;
    for (int k = 0; k < b->count; k++) {
        ok = ok && (ws->xs[k] = malloc(sizeof(float) * (size_t)b->layers[k].in_size));
        ok = ok && (ws->zs[k] = malloc(sizeof(float) * (size_t)b->layers[k].out_size));
    }
    int64_t out = b->layers[b->count - 1].out_size;
    ok = ok && (ws->xs[b->count] = malloc(sizeof(float) * (size_t)out));
    ok = ok && (ws->target = malloc(sizeof(float) * (size_t)out));
    ok = ok && (ws->g0 = malloc(sizeof(float) * (size_t)b->max_size));
    ok = ok && (ws->g1 = malloc(sizeof(float) * (size_t)b->max_size));
    return ok;
}

typedef enum params_kind { FLOAT_PARAMS, ORIGINAL_PARAMS, TRAINED_PARAMS } params_kind_t;

static const float *params(const ft_layer_t *L, params_kind_t kind)
{
    return kind == FLOAT_PARAMS ? L->wf : kind == ORIGINAL_PARAMS ? L->wo : L->wq;
}

/* Quantizes y to layer L's output encoding in place; the straight-through mask goes to mask. */
static void fake_quantize(const ft_layer_t *L, float *y, int64_t n)
{
    const double inv = 1.0 / L->out_scale;
    for (int64_t k = 0; k < n; k++) {
        double c = (double)hqrt_round_double(y[k] * inv) + L->out_zp;
        c = c < 0 ? 0 : c > L->out_max ? L->out_max : c;
        y[k] = (float)((c - L->out_zp) * L->out_scale);
    }
}

/* The block on ws->xs[0]: every layer's input and pre-activation, the output in xs[count]. The
 * quantized kinds quantize the activations between layers. */
static void block_forward(const block_t *b, params_kind_t kind, workspace_t *ws)
{
    for (int k = 0; k < b->count; k++) {
        const ft_layer_t *L = &b->layers[k];
        if (L->pool)
            pool_pass(L, ws->xs[k], ws->zs[k], NULL, NULL);
        else
            layer_forward(L, params(L, kind), ws->xs[k], ws->zs[k]);
        float *y = ws->xs[k + 1], slope;
        for (int64_t e = 0; e < L->out_size; e++)
            y[e] = activate(L, ws->zs[k][e], e % L->cout, &slope);
        if (kind != FLOAT_PARAMS && k + 1 < b->count)
            fake_quantize(L, y, L->out_size);
    }
}

/* The loss of output y against target t (n values); with dy, its gradient (scaled by `weight`). */
static double block_loss(hqi_finetune_loss_t loss, const float *y, const float *t, int64_t n,
                         float *dy, double weight)
{
    double se = 0, tt = 0, yy = 0, yt = 0;
    for (int64_t k = 0; k < n; k++) {
        double e = (double)y[k] - t[k];
        se += e * e;
        tt += (double)t[k] * t[k];
        yy += (double)y[k] * y[k];
        yt += (double)y[k] * t[k];
    }
    double value;
    if (loss == HQI_FINETUNE_COSINE) {
        double ny = sqrt(yy), nt = sqrt(tt);
        bool defined = ny > 0 && nt > 0;
        value = defined ? 1.0 - yt / (ny * nt) : 0.0;
        for (int64_t k = 0; dy && k < n; k++)
            dy[k] = defined ? (float)(weight * -(t[k] / (ny * nt) - yt * y[k] / (ny * ny * ny * nt)))
                            : 0.0f;
        return value;
    }
    double denominator = loss == HQI_FINETUNE_L2 ? (double)n : tt > 0 ? tt : 1.0;
    value = se / denominator;
    for (int64_t k = 0; dy && k < n; k++)
        dy[k] = (float)(weight * 2.0 * ((double)y[k] - t[k]) / denominator);
    return value;
}

/* ---- training -------------------------------------------------------------------------------- */

typedef struct trainer {
    block_t *block;
    const hqi_sweep_t *sweep;
    int first_layer;
    const int64_t *batch; /* sample indices of the step */
    int64_t batch_count;
    workspace_t *ws;      /* per thread */
    float **grads;        /* per batch slot: every layer's params, in block order */
    int64_t total;        /* params over the block's layers */
    params_kind_t kind;   /* evaluate: which params */
    double *losses;       /* per batch slot */
} trainer_t;

/* One sample's forward and backward pass: its gradient into its slot. */
static void train_sample(void *context, int64_t task, int thread)
{
    trainer_t *t = context;
    block_t *b = t->block;
    workspace_t *ws = &t->ws[thread];
    hqi_sweep_input(t->sweep, t->first_layer, 0, t->batch[task], 1, ws->xs[0]);
    block_forward(b, FLOAT_PARAMS, ws);
    const ft_layer_t *last = &b->layers[b->count - 1];
    memcpy(ws->target, ws->xs[b->count], sizeof(float) * (size_t)last->out_size);
    block_forward(b, TRAINED_PARAMS, ws);
    float *g = t->grads[task];
    memset(g, 0, sizeof(float) * (size_t)t->total);
    t->losses[task] = block_loss(b->loss, ws->xs[b->count], ws->target, last->out_size, ws->g0,
                                 1.0 / (double)t->batch_count);
    /* ws->g0 holds dL/dy of layer k's output on entry to each iteration */
    int64_t offset = t->total;
    for (int k = b->count - 1; k >= 0; k--) {
        const ft_layer_t *L = &b->layers[k];
        offset -= params_of(L);
        float slope;
        for (int64_t e = 0; e < L->out_size; e++) {
            float y = activate(L, ws->zs[k][e], e % L->cout, &slope);
            float d = ws->g0[e] * slope;
            if (k + 1 < b->count) {
                /* the activation quantizer's straight-through estimator */
                double c = (double)hqrt_round_double(y / L->out_scale) + L->out_zp;
                if (c < 0 || c > L->out_max)
                    d = 0;
            }
            ws->g1[e] = d;
        }
        if (L->pool)
            pool_pass(L, ws->xs[k], NULL, ws->g1, ws->g0);
        else
            layer_backward(L, L->wq, ws->xs[k], ws->g1, g + offset, k > 0 ? ws->g0 : NULL);
    }
}

/* The loss of one sample with the given params. */
static void evaluate_sample(void *context, int64_t task, int thread)
{
    trainer_t *t = context;
    block_t *b = t->block;
    workspace_t *ws = &t->ws[thread];
    hqi_sweep_input(t->sweep, t->first_layer, 0, t->batch[task], 1, ws->xs[0]);
    block_forward(b, FLOAT_PARAMS, ws);
    const ft_layer_t *last = &b->layers[b->count - 1];
    memcpy(ws->target, ws->xs[b->count], sizeof(float) * (size_t)last->out_size);
    block_forward(b, t->kind, ws);
    t->losses[task] = block_loss(b->loss, ws->xs[b->count], ws->target, last->out_size, NULL, 1);
}

/* Mean loss over every sample with the given params, in chunks of the pool's width. */
static double evaluate(trainer_t *t, hqi_threadpool_t *pool, int64_t samples, int64_t *order,
                       int64_t slots, params_kind_t kind)
{
    double sum = 0;
    t->kind = kind;
    for (int64_t s = 0; s < samples; s += slots) {
        int64_t n = samples - s < slots ? samples - s : slots;
        for (int64_t k = 0; k < n; k++)
            order[k] = s + k;
        t->batch = order;
        t->batch_count = n;
        hqi_threadpool_run(pool, n, evaluate_sample, t);
        for (int64_t k = 0; k < n; k++)
            sum += t->losses[k];
    }
    return samples > 0 ? sum / (double)samples : 0.0;
}

typedef struct outcome {
    double before, after;
    bool kept;
} outcome_t;

/* Trains one block on the samples of the sweep; writes q when its loss fell on the first
 * EVAL_SAMPLES of them. */
static hq_status_t block_train(block_t *b, const hqi_sweep_t *sweep,
                               const hqi_finetune_config_t *cfg, hqi_threadpool_t *pool,
                               int64_t steps, outcome_t *out, hq_error_t *err)
{
    const int threads = hqi_threadpool_size(pool);
    const int64_t samples = hqi_sweep_samples(sweep);
    const int64_t batch = cfg->batch_size < samples ? cfg->batch_size : samples;
    const int64_t slots = batch > threads ? batch : threads;
    trainer_t t = {.block = b, .sweep = sweep, .first_layer = b->layers[0].index};
    for (int k = 0; k < b->count; k++)
        t.total += params_of(&b->layers[k]);
    int64_t *order = malloc(sizeof *order * (size_t)(samples > slots ? samples : slots));
    int64_t *chunk = malloc(sizeof *chunk * (size_t)slots);
    t.ws = calloc((size_t)threads, sizeof *t.ws);
    t.grads = calloc((size_t)slots, sizeof *t.grads);
    t.losses = calloc((size_t)slots, sizeof *t.losses);
    float *sum = malloc(sizeof *sum * (size_t)t.total);
    hq_status_t st = order && chunk && t.ws && t.grads && t.losses && sum
                         ? HQ_OK
                         : hqi_nomem(err, where);
    for (int k = 0; k < threads && st == HQ_OK; k++)
        if (!workspace_alloc(&t.ws[k], b))
            st = hqi_nomem(err, where);
    for (int64_t k = 0; k < slots && st == HQ_OK; k++)
        if (!(t.grads[k] = malloc(sizeof(float) * (size_t)t.total)))
            st = hqi_nomem(err, where);
    if (st != HQ_OK)
        goto done;
    const int64_t checked = samples < EVAL_SAMPLES ? samples : EVAL_SAMPLES;
    out->before = evaluate(&t, pool, checked, chunk, slots, ORIGINAL_PARAMS);
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    double b1t = 1.0, b2t = 1.0;
    uint64_t seed = (uint64_t)b->layers[0].index << 32;
    const int64_t per_epoch = (samples + batch - 1) / batch;
    for (int64_t step = 0; step < steps; step++) {
        int64_t at = step % per_epoch;
        if (at == 0) {
            /* a new epoch: a new shuffled order of the samples */
            for (int64_t k = 0; k < samples; k++)
                order[k] = k;
            for (int64_t k = samples - 1; k > 0; k--) {
                int64_t u = (int64_t)(hqi_splitmix64(&seed) % (uint64_t)(k + 1));
                int64_t tmp = order[k];
                order[k] = order[u];
                order[u] = tmp;
            }
        }
        for (int k = 0; k < b->count; k++)
            if (!b->layers[k].pool)
                layer_round(&b->layers[k]);
        t.batch = order + at * batch;
        t.batch_count = samples - at * batch < batch ? samples - at * batch : batch;
        hqi_threadpool_run(pool, t.batch_count, train_sample, &t);
        memset(sum, 0, sizeof(float) * (size_t)t.total);
        for (int64_t s = 0; s < t.batch_count; s++)
            for (int64_t k = 0; k < t.total; k++)
                sum[k] += t.grads[s][k];
        b1t *= b1;
        b2t *= b2;
        const double lr = cfg->learning_rate * 0.5 * (1.0 + cos(3.14159265358979323846 * (double)step / (double)steps));
        int64_t offset = 0;
        for (int k = 0; k < b->count; k++) {
            ft_layer_t *L = &b->layers[k];
            const int64_t nw = L->kpg * L->cout, n = params_of(L);
            for (int64_t e = 0; e < n; e++) {
                double d = (double)sum[offset + e] * L->pass[e];
                L->adam_m[e] = (float)(b1 * L->adam_m[e] + (1 - b1) * d);
                L->adam_v[e] = (float)(b2 * L->adam_v[e] + (1 - b2) * d * d);
                double mh = L->adam_m[e] / (1 - b1t), vh = L->adam_v[e] / (1 - b2t);
                double unit = e < nw ? L->kscale[e % L->cout] : L->out_scale;
                L->wt[e] -= (float)(lr * unit * mh / (sqrt(vh) + eps));
            }
            offset += n;
        }
    }
    for (int k = 0; k < b->count; k++)
        if (!b->layers[k].pool)
            layer_round(&b->layers[k]);
    out->after = evaluate(&t, pool, checked, chunk, slots, TRAINED_PARAMS);
    out->kept = !(out->after < out->before);
    for (int k = 0; !out->kept && k < b->count; k++)
        if (!b->layers[k].pool)
            layer_store(&b->layers[k]);
done:
    for (int k = 0; t.ws && k < threads; k++)
        workspace_free(&t.ws[k]);
    for (int64_t k = 0; t.grads && k < slots; k++)
        free(t.grads[k]);
    free(t.ws);
    free(t.grads);
    free(t.losses);
    free(sum);
    free(order);
    free(chunk);
    return st;
}

/* ---- the run --------------------------------------------------------------------------------- */

typedef struct run {
    const hq_graph_t *graph;
    const hq_npz_t *fpo;
    const hqi_layer_quant_t *dec;
    const hq_npz_t *q;
    const hqi_finetune_config_t *cfg;
    const hqi_logger_t *log;
    hqi_threadpool_t *pool;
    int *block_of;  /* [layer]: the first layer of its block, -1 when in none */
    int *next;      /* [layer]: the next layer of its block, -1 at its end */
    hqi_finetune_loss_t *loss_at; /* [layer]: the loss of the block ending there */
    int64_t steps;
    hqi_finetune_report_t rep;
} run_t;

/* Whether layer i is named by loss_layer_names (scoped or bare name); its index there to k. */
static bool named_loss(const hqi_finetune_config_t *cfg, const hq_layer_t *l, int *k)
{
    for (*k = 0; *k < cfg->loss_count; (*k)++)
        if (strcmp(cfg->loss_layers[*k], l->name) == 0 ||
            strcmp(cfg->loss_layers[*k], l->bare_name) == 0)
            return true;
    return false;
}

/* Chains the trainable layers into blocks, in topological order: up to block_layers weighted
 * layers, with the pools between them (maxpool, avgpool, global_avg_pool). */
static int plan_blocks(run_t *r)
{
    int n = hq_graph_layer_count(r->graph), order_count = 0, blocks = 0;
    const int *order = hq_graph_topo_order(r->graph, &order_count);
    hqi_finetune_loss_t fallback = r->cfg->loss_count == 0 && r->cfg->loss_type_count > 0
                                       ? r->cfg->loss_types[0]
                                       : HQI_FINETUNE_L2REL;
    for (int i = 0; i < n; i++)
        r->block_of[i] = r->next[i] = -1;
    for (int t = 0; t < order_count; t++) {
        int i = order[t], length = 1, k = 0;
        ft_layer_t L;
        if (r->block_of[i] >= 0 || !layer_init(&L, r->graph, r->fpo, r->q, r->dec, i))
            continue;
        r->block_of[i] = i;
        blocks++;
        int at = i, last = i;
        for (;;) {
            const hq_layer_t *l = hq_graph_layer(r->graph, at);
            if (named_loss(r->cfg, l, &k) || length >= r->cfg->block_layers ||
                l->output_count != 1)
                break;
            int c = l->outputs[0], steps = 0;
            for (int u = i; u >= 0; u = r->next[u])
                steps++;
            const hq_layer_t *cl = hq_graph_layer(r->graph, c);
            bool weighted = layer_init(&L, r->graph, r->fpo, r->q, r->dec, c);
            if (r->block_of[c] >= 0 || cl->inputs[0] != at || steps >= MAX_BLOCK ||
                (!weighted && !pool_init(&L, r->graph, c)))
                break;
            r->next[at] = c;
            r->block_of[c] = i;
            at = c;
            if (weighted)
                last = c, length++;
        }
        /* a block ends at a weighted layer: the pools after its last one are not its own */
        for (int u = r->next[last]; u >= 0;) {
            int w = r->next[u];
            r->block_of[u] = r->next[u] = -1;
            u = w;
        }
        r->next[last] = -1;
        /* train_4bit: a block without 4-bit weights is not trained (its members may still start
         * or join a later block that reaches a 4-bit layer) */
        bool has_4bit = false;
        for (int u = i; u >= 0; u = r->next[u])
            has_4bit = has_4bit || r->dec[u].weight_bits == 4;
        if (!r->cfg->train_all && !has_4bit) {
            for (int u = i; u >= 0;) {
                int w = r->next[u];
                r->block_of[u] = r->next[u] = -1;
                u = w;
            }
            blocks--;
            continue;
        }
        at = last;
        const hq_layer_t *end = hq_graph_layer(r->graph, at);
        r->loss_at[at] = named_loss(r->cfg, end, &k)
                             ? (k < r->cfg->loss_type_count ? r->cfg->loss_types[k]
                                : r->cfg->loss_type_count == 1 ? r->cfg->loss_types[0]
                                                               : HQI_FINETUNE_L2REL)
                             : fallback;
        if (r->loss_at[at] == HQI_FINETUNE_CE)
            r->loss_at[at] = HQI_FINETUNE_L2REL;
    }
    return blocks;
}

static hq_status_t train_block(void *context, const hqi_sweep_t *sweep, int i, bool *changed,
                               hq_error_t *err)
{
    run_t *r = context;
    if (r->block_of[i] != i)
        return HQ_OK;
    block_t b = {0};
    hq_status_t st = HQ_OK;
    int end = i;
    for (int at = i; at >= 0 && b.count < MAX_BLOCK && st == HQ_OK; at = r->next[at]) {
        ft_layer_t *L = &b.layers[b.count];
        if (!layer_init(L, r->graph, r->fpo, r->q, r->dec, at) && !pool_init(L, r->graph, at))
            break;
        b.count++;
        st = layer_alloc(L, r->fpo, r->dec, sweep, err);
        b.max_size = L->in_size > b.max_size ? L->in_size : b.max_size;
        b.max_size = L->out_size > b.max_size ? L->out_size : b.max_size;
        end = at;
    }
    b.loss = r->loss_at[end];
    outcome_t out = {0};
    double t0 = hqi_seconds_now();
    if (st == HQ_OK && hqi_sweep_input_size(sweep, i, 0) != b.layers[0].in_size)
        hqi_logf(r->log, HQ_LOG_WARNING,
                 "finetune: %s: its input does not have the shape the layer reads; block left "
                 "as it is",
                 b.layers[0].l->name);
    else if (st == HQ_OK)
        st = block_train(&b, sweep, r->cfg, r->pool, r->steps, &out, err);
    if (st == HQ_OK) {
        char names[512] = "";
        for (int k = 0; k < b.count; k++) {
            size_t used = strlen(names);
            snprintf(names + used, sizeof names - used, "%s%s", k ? " -> " : "",
                     b.layers[k].l->bare_name);
        }
        hqi_logf(r->log, HQ_LOG_DEBUG,
                 "finetune: block %s (%d layer(s), %s loss): %.6g -> %.6g%s, %.2f s", names,
                 b.count, loss_names[b.loss], out.before, out.after,
                 out.kept ? " (not lower: params kept)" : "", hqi_seconds_now() - t0);
        r->rep.blocks++;
        r->rep.layers += b.count;
        r->rep.kept += out.kept;
        r->rep.loss_before += out.before;
        r->rep.loss_after += out.kept ? out.before : out.after;
        *changed = !out.kept;
    }
    for (int k = 0; k < b.count; k++)
        layer_free(&b.layers[k]);
    return st;
}

hq_status_t hqi_finetune_run(const hq_graph_t *graph, const hq_npz_t *fpo,
                             const hqi_layer_quant_t *dec, hq_npz_t *q,
                             const hqi_finetune_config_t *cfg, hq_dataset_t *data,
                             char *const *input_names, int threads, const hqi_logger_t *log,
                             hqi_finetune_report_t *report, hq_error_t *err)
{
    double t0 = hqi_seconds_now();
    int n = hq_graph_layer_count(graph);
    run_t r = {graph, fpo, dec, q, cfg, log, NULL, NULL, NULL, NULL, 0, {0}};
    if (report)
        *report = r.rep;
    int64_t samples = hq_dataset_count(data);
    if (cfg->dataset_size > 0 && cfg->dataset_size < samples)
        samples = cfg->dataset_size;
    else if (cfg->dataset_size > samples)
        hqi_logf(log, HQ_LOG_WARNING,
                 "finetune: dataset_size %lld but the calibration set has %lld sample(s): "
                 "training on %lld",
                 (long long)cfg->dataset_size, (long long)samples, (long long)samples);
    if (threads <= 0)
        threads = hqi_default_threads();
    r.block_of = malloc(sizeof *r.block_of * ((size_t)n + 1));
    r.next = malloc(sizeof *r.next * ((size_t)n + 1));
    r.loss_at = calloc((size_t)n + 1, sizeof *r.loss_at);
    hq_status_t st = r.block_of && r.next && r.loss_at ? HQ_OK : hqi_nomem(err, where);
    for (int k = 0; k < cfg->loss_count && st == HQ_OK; k++) {
        int found = -1;
        for (int i = 0; i < n && found < 0; i++) {
            const hq_layer_t *l = hq_graph_layer(graph, i);
            if (strcmp(cfg->loss_layers[k], l->name) == 0 ||
                strcmp(cfg->loss_layers[k], l->bare_name) == 0)
                found = i;
        }
        ft_layer_t L;
        if (found < 0 || !layer_init(&L, graph, fpo, q, dec, found))
            hqi_logf(log, HQ_LOG_WARNING,
                     "finetune: loss_layer_names: '%s' is not a layer finetune trains (a conv, "
                     "depthwise, deconv or dense layer with one input): ignored",
                     cfg->loss_layers[k]);
    }
    for (int k = 0; k < cfg->loss_type_count; k++)
        if (cfg->loss_types[k] == HQI_FINETUNE_CE) {
            hqi_logf(log, HQ_LOG_WARNING,
                     "finetune: loss_types ce compares class scores with labels, which "
                     "block-wise reconstruction has not: l2rel instead");
            break;
        }
    int blocks = st == HQ_OK ? plan_blocks(&r) : 0;
    if (st == HQ_OK && (blocks == 0 || samples < 1)) {
        hqi_logf(log, HQ_LOG_INFO, "finetune: nothing to train (%s)",
                 samples < 1     ? "no calibration samples"
                 : cfg->train_all ? "no conv, depthwise, deconv or dense layer with one input"
                                  : "mode=train_4bit and no block has a layer at 4-bit weights");
        goto done;
    }
    int64_t batch = cfg->batch_size < samples ? cfg->batch_size : samples;
    r.steps = cfg->epochs * ((samples + batch - 1) / batch);
    if (st == HQ_OK && cfg->max_steps > 0 && r.steps > cfg->max_steps) {
        hqi_logf(log, HQ_LOG_INFO,
                 "finetune: %lld epoch(s) of %lld sample(s) would be %lld step(s) per block; the "
                 "default budget is %lld (epochs= in the script lifts it)",
                 (long long)cfg->epochs, (long long)samples, (long long)r.steps,
                 (long long)cfg->max_steps);
        r.steps = cfg->max_steps;
    }
    if (st == HQ_OK && threads > 1)
        st = hqi_threadpool_create(threads, &r.pool, err);
    if (st == HQ_OK)
        st = hqi_sweep_run(graph, q, data, input_names, samples, threads, where, train_block, &r,
                           err);
done:
    hqi_threadpool_destroy(r.pool);
    free(r.block_of);
    free(r.next);
    free(r.loss_at);
    r.rep.samples = samples;
    r.rep.steps = r.steps;
    r.rep.seconds = hqi_seconds_now() - t0;
    if (st == HQ_OK && report)
        *report = r.rep;
    if (st == HQ_OK && r.rep.blocks)
        hqi_logf(log, HQ_LOG_INFO,
                 "finetune: %d block(s) of %d layer(s) on %lld sample(s), %lld step(s) each, "
                 "block loss %.6g -> %.6g (sum over blocks), %d block(s) kept, %.2f s",
                 r.rep.blocks, r.rep.layers, (long long)samples, (long long)r.steps,
                 r.rep.loss_before, r.rep.loss_after, r.rep.kept, r.rep.seconds);
    return st;
}
