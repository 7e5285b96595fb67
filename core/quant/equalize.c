/* equalize.c — float optimizations of `hq optimize` that do not change what the network computes:
 * batch-norm folding and cross-layer equalization.
 *
 * Cross-layer equalization (Nagel et al., "Data-Free Quantization", 2019): for a pair
 * A -> (relu|leaky|prelu|linear) -> B where A's output feeds only B, output channel c of A is
 * divided by s_c and input channel c of B multiplied by s_c, with s_c = sqrt(r1_c / r2_c)
 * (r1_c = max |W_A[..., c]|, r2_c = max |W_B[.., c, ..]|), so both ranges become sqrt(r1_c r2_c).
 * The activations in between are positively homogeneous (f(x / s) = f(x) / s for s > 0), so the
 * float network is unchanged up to rounding. Three sweeps in topological order let chains
 * A -> B -> C settle; s_c is clamped to [1e-3, 1e3]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/equalize.h"
#include "util/util.h"

#define SWEEPS 3
#define SCALE_MIN 1e-3
#define SCALE_MAX 1e3

static bool homogeneous(hq_activation_t act)
{
    return act == HQ_ACT_LINEAR || act == HQ_ACT_RELU || act == HQ_ACT_LEAKY || act == HQ_ACT_PRELU;
}

/* ---- batch-norm folding ------------------------------------------------------------------ */

static bool foldable(const hq_graph_t *graph, const hq_layer_t *bn)
{
    if (bn->type != HQ_LAYER_BATCH_NORM || bn->input_count != 1)
        return false;
    const hq_layer_t *p = hq_graph_layer(graph, bn->inputs[0]);
    return p && (p->type == HQ_LAYER_CONV || p->type == HQ_LAYER_DW || p->type == HQ_LAYER_DENSE) &&
           p->output_count == 1 && p->params.activation == HQ_ACT_LINEAR &&
           !p->params.elementwise_add && bn->params.activation != HQ_ACT_PRELU;
}

static hq_status_t fold_into(hq_npz_t *params, const hq_layer_t *conv, const hq_layer_t *bn,
                             hq_error_t *err)
{
    hq_tensor_t *k = NULL, *gamma = NULL, *beta = NULL, *mean = NULL, *var = NULL, *bias = NULL;
    hq_status_t st = hqi_param_f32(params, conv, "kernel:0", &k, err);
    if (st == HQ_OK)
        st = hqi_param_f32(params, bn, "gamma:0", &gamma, err);
    if (st == HQ_OK)
        st = hqi_param_f32(params, bn, "beta:0", &beta, err);
    if (st == HQ_OK)
        st = hqi_param_f32(params, bn, "moving_mean:0", &mean, err);
    if (st == HQ_OK)
        st = hqi_param_f32(params, bn, "moving_variance:0", &var, err);
    if (st != HQ_OK)
        return st;
    int64_t cout = conv->params.kernel_out;
    if (hq_tensor_count(gamma) != cout || hq_tensor_count(beta) != cout ||
        hq_tensor_count(mean) != cout || hq_tensor_count(var) != cout)
        return hqi_error(err, HQ_ERR_INVALID, "%s: batch norm has not %lld channels like %s",
                         bn->name, (long long)cout, conv->name);
    if (hqi_param(params, conv, "bias:0")) {
        st = hqi_param_f32(params, conv, "bias:0", &bias, err);
    } else {
        int64_t shape[1] = {cout};
        hq_tensor_t *t = NULL;
        st = hq_tensor_create(HQ_DTYPE_FLOAT32, 1, shape, &t, err);
        char key[600];
        snprintf(key, sizeof key, "%s/bias:0", conv->name);
        if (st == HQ_OK)
            st = hq_npz_put(params, key, t, err);
        if (st == HQ_OK)
            st = hqi_param_f32(params, conv, "bias:0", &bias, err);
    }
    if (st != HQ_OK)
        return st;
    float *w = k->data, *b = bias->data;
    const float *g = gamma->data, *be = beta->data, *m = mean->data, *v = var->data;
    int64_t rows = hq_tensor_count(k) / cout;
    for (int64_t c = 0; c < cout; c++) {
        double s = g[c] / sqrt((double)v[c] + bn->params.epsilon);
        for (int64_t r = 0; r < rows; r++)
            w[r * cout + c] = (float)(w[r * cout + c] * s);
        b[c] = (float)((b[c] - m[c]) * s + be[c]);
    }
    static const char *const bn_keys[] = {"gamma:0", "beta:0", "moving_mean:0",
                                          "moving_variance:0"};
    for (int i = 0; i < 4; i++) {
        char key[600];
        snprintf(key, sizeof key, "%s/%s", bn->name, bn_keys[i]);
        hq_npz_remove(params, key, NULL);
    }
    return HQ_OK;
}

hq_status_t hqi_fold_batch_norms(hq_graph_t *graph, hq_npz_t *native, hq_npz_t *fpo, int *folded,
                                 const hqi_logger_t *logger, hq_error_t *err)
{
    *folded = 0;
    for (bool again = true; again;) {
        again = false;
        for (int i = 0; i < hq_graph_layer_count(graph); i++) {
            const hq_layer_t *bn = hq_graph_layer(graph, i);
            if (!foldable(graph, bn))
                continue;
            int ci = bn->inputs[0];
            const hq_layer_t *conv = hq_graph_layer(graph, ci);
            hq_status_t st = fold_into(fpo, conv, bn, err);
            if (st == HQ_OK && native)
                st = fold_into(native, conv, bn, err);
            if (st != HQ_OK)
                return st;
            hq_layer_t *c = hq_graph_layer_mut(graph, ci);
            c->params.activation = bn->params.activation;
            c->params.activation_alpha = bn->params.activation_alpha;
            c->params.activation_beta = bn->params.activation_beta;
            c->params.has_bias = true;
            c->params.batch_norm = true;
            hqi_logf(logger, HQ_LOG_INFO, "batch norm %s folded into %s", bn->bare_name,
                     c->bare_name);
            st = hq_graph_bypass_layer(graph, i, err);
            if (st != HQ_OK)
                return st;
            (*folded)++;
            again = true;
            break; /* indices changed */
        }
    }
    return HQ_OK;
}

/* ---- cross-layer equalization ------------------------------------------------------------ */

/* Geometry of a kernel seen from its input channels. */
typedef struct kernel_view {
    int64_t taps;   /* kh * kw (1 for dense) */
    int64_t cin_pg; /* input channels per group */
    int64_t cout;   /* output channels */
    int64_t groups;
} kernel_view_t;

static bool view_of(const hq_layer_t *l, kernel_view_t *v)
{
    const hq_layer_params_t *p = &l->params;
    if (l->type == HQ_LAYER_DENSE) {
        *v = (kernel_view_t){1, p->kernel_in, p->kernel_out, 1};
        return true;
    }
    if (l->type != HQ_LAYER_CONV && l->type != HQ_LAYER_DW)
        return false;
    int64_t groups = p->groups < 1 ? 1 : p->groups;
    *v = (kernel_view_t){(int64_t)p->kernel_h * p->kernel_w, p->kernel_in, p->kernel_out, groups};
    return p->kernel_out % groups == 0;
}

/* The B of a pair starting at A (-1 when A starts none). */
static int pair_partner(const hq_graph_t *graph, int a)
{
    const hq_layer_t *la = hq_graph_layer(graph, a);
    kernel_view_t va = {0}, vb = {0};
    if (!view_of(la, &va) || la->output_count != 1 || la->params.elementwise_add ||
        !homogeneous(la->params.activation))
        return -1;
    int chain_end = a, next = la->outputs[0];
    const hq_layer_t *lb = hq_graph_layer(graph, next);
    if (lb->type == HQ_LAYER_ACTIVATION) {
        /* a standalone relu/leaky between the two */
        if (lb->output_count != 1 || !homogeneous(lb->params.activation) ||
            lb->params.activation == HQ_ACT_PRELU)
            return -1;
        chain_end = next;
        next = lb->outputs[0];
        lb = hq_graph_layer(graph, next);
    }
    /* B reads the chain as its first input, one input channel per output channel of A */
    if (!view_of(lb, &vb) || lb->input_count < 1 || lb->inputs[0] != chain_end ||
        vb.cin_pg * vb.groups != va.cout)
        return -1;
    if (lb->type == HQ_LAYER_DENSE && lb->input_shapes[0].ndim != 2)
        return -1;
    return next;
}

static void equalize_pair(float *wa, float *ba, const kernel_view_t *va, float *wb,
                          const kernel_view_t *vb)
{
    int64_t c_count = va->cout, rows_a = va->taps * (va->cin_pg);
    int64_t cout_pg = vb->cout / vb->groups;
    for (int64_t c = 0; c < c_count; c++) {
        double r1 = 0.0, r2 = 0.0;
        for (int64_t r = 0; r < rows_a; r++)
            r1 = fmax(r1, fabs(wa[r * c_count + c]));
        int64_t g = c / vb->cin_pg, j = c % vb->cin_pg;
        for (int64_t t = 0; t < vb->taps; t++)
            for (int64_t o = g * cout_pg; o < (g + 1) * cout_pg; o++)
                r2 = fmax(r2, fabs(wb[(t * vb->cin_pg + j) * vb->cout + o]));
        if (r1 <= 0.0 || r2 <= 0.0)
            continue;
        double s = sqrt(r1 / r2);
        s = s < SCALE_MIN ? SCALE_MIN : s > SCALE_MAX ? SCALE_MAX : s;
        for (int64_t r = 0; r < rows_a; r++)
            wa[r * c_count + c] = (float)(wa[r * c_count + c] / s);
        if (ba)
            ba[c] = (float)(ba[c] / s);
        for (int64_t t = 0; t < vb->taps; t++)
            for (int64_t o = g * cout_pg; o < (g + 1) * cout_pg; o++)
                wb[(t * vb->cin_pg + j) * vb->cout + o] =
                    (float)(wb[(t * vb->cin_pg + j) * vb->cout + o] * s);
    }
}

hq_status_t hqi_equalize(const hq_graph_t *graph, hq_npz_t *fpo, int *pairs,
                         const hqi_logger_t *logger, hq_error_t *err)
{
    *pairs = 0;
    int count = 0;
    const int *order = hq_graph_topo_order(graph, &count);
    for (int sweep = 0; sweep < SWEEPS; sweep++) {
        for (int k = 0; k < count; k++) {
            int a = order[k];
            int b = pair_partner(graph, a);
            if (b < 0)
                continue;
            const hq_layer_t *la = hq_graph_layer(graph, a), *lb = hq_graph_layer(graph, b);
            kernel_view_t va = {0}, vb = {0};
            if (!view_of(la, &va) || !view_of(lb, &vb))
                continue;
            hq_tensor_t *wa = NULL, *wb = NULL, *ba = NULL;
            hq_status_t st = hqi_param_f32(fpo, la, "kernel:0", &wa, err);
            if (st == HQ_OK)
                st = hqi_param_f32(fpo, lb, "kernel:0", &wb, err);
            if (st == HQ_OK && hqi_param(fpo, la, "bias:0"))
                st = hqi_param_f32(fpo, la, "bias:0", &ba, err);
            if (st != HQ_OK)
                return st;
            if (hq_tensor_count(wa) != va.taps * va.cin_pg * va.cout ||
                hq_tensor_count(wb) != vb.taps * vb.cin_pg * vb.cout ||
                (ba && hq_tensor_count(ba) != va.cout))
                return hqi_error(err, HQ_ERR_INVALID,
                                 "equalization: %s or %s has weights of an unexpected size",
                                 la->name, lb->name);
            equalize_pair(wa->data, ba ? ba->data : NULL, &va, wb->data, &vb);
            if (sweep == 0) {
                (*pairs)++;
                hqi_logf(logger, HQ_LOG_DEBUG, "equalization: %s -> %s", la->bare_name,
                         lb->bare_name);
            }
        }
    }
    return HQ_OK;
}
