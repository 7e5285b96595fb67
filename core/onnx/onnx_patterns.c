/* onnx_patterns.c — multi-node patterns recognised before or during conversion: the SiLU,
 * HardSwish and GELU decompositions (x * sigmoid(x), x * relu6(x + 3) / 6,
 * x * 0.5 * (1 + erf(x / sqrt(2))), ...) become one activation,
 * PyTorch's exported PixelShuffle (Reshape -> Transpose -> Reshape) one depth_to_space, and
 * ShuffleNet's channel shuffle (Reshape -> Transpose, then any Reshape) one channel_shuffle. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_internal.h"

/* ---- SiLU, HardSwish and GELU decompositions ------------------------------------------- */

static const Onnx__NodeProto *producer_of(onnxi_ctx_t *c, const char *name)
{
    onnxi_value_t *v = onnxi_value_of(c, name);
    return v && v->producer >= 0 ? c->g->node[v->producer] : NULL;
}

static bool literal(onnxi_ctx_t *c, const char *name, double want)
{
    onnxi_value_t *v = onnxi_value_of(c, name);
    return v && v->kind == VALUE_CONST && hq_tensor_count(v->constant) == 1 &&
           fabs(onnxi_tensor_at(v->constant, 0) - want) < 1e-5;
}

static int uses_of(onnxi_ctx_t *c, const char *name)
{
    onnxi_value_t *v = onnxi_value_of(c, name);
    return v ? v->uses : 0;
}

static bool is_op(const Onnx__NodeProto *n, const char *op, size_t inputs)
{
    return n && n->op_type && !strcmp(n->op_type, op) && n->n_input >= inputs && n->n_output >= 1;
}

/* s == x + 3 (Add with a literal 3). */
static bool is_x_plus_3(onnxi_ctx_t *c, const char *s, const char *x, const Onnx__NodeProto **add)
{
    const Onnx__NodeProto *a = producer_of(c, s);
    if (!is_op(a, "Add", 2) || uses_of(c, s) != 1)
        return false;
    *add = a;
    return (!strcmp(a->input[0], x) && literal(c, a->input[1], 3)) ||
           (!strcmp(a->input[1], x) && literal(c, a->input[0], 3));
}

/* s == relu6(x + 3): Clip(x + 3, 0, 6). */
static bool is_relu6_x_plus_3(onnxi_ctx_t *c, const char *s, const char *x,
                              const Onnx__NodeProto **nodes)
{
    const Onnx__NodeProto *cl = producer_of(c, s);
    if (!is_op(cl, "Clip", 1) || uses_of(c, s) != 1)
        return false;
    bool range = false;
    if (cl->n_input >= 3)
        range = literal(c, cl->input[1], 0) && literal(c, cl->input[2], 6);
    else
        range = fabsf(onnxi_attr_float(cl, "min", -1) - 0) < 1e-6f &&
                fabsf(onnxi_attr_float(cl, "max", -1) - 6) < 1e-6f;
    nodes[0] = cl;
    return range && is_x_plus_3(c, cl->input[0], x, &nodes[1]);
}

/* s == x / 6 or x * (1/6); *inner = x. */
static bool is_div6(onnxi_ctx_t *c, const Onnx__NodeProto *d, const char **inner)
{
    if (is_op(d, "Div", 2) && literal(c, d->input[1], 6)) {
        *inner = d->input[0];
        return true;
    }
    if (is_op(d, "Mul", 2)) {
        for (int i = 0; i < 2; i++)
            if (literal(c, d->input[i], 1.0 / 6)) {
                *inner = d->input[1 - i];
                return true;
            }
    }
    return false;
}

/* d == x / 2 or x * 0.5 (either operand order); *inner = x. */
static bool is_half(onnxi_ctx_t *c, const Onnx__NodeProto *d, const char **inner)
{
    if (is_op(d, "Div", 2) && literal(c, d->input[1], 2)) {
        *inner = d->input[0];
        return true;
    }
    if (is_op(d, "Mul", 2)) {
        for (int i = 0; i < 2; i++)
            if (literal(c, d->input[i], 0.5)) {
                *inner = d->input[1 - i];
                return true;
            }
    }
    return false;
}

/* A scalar constant within 1e-4 (relative) of `want`: exporters round 1/sqrt(2) and sqrt(2). */
static bool near_literal(onnxi_ctx_t *c, const char *name, double want)
{
    onnxi_value_t *v = onnxi_value_of(c, name);
    return v && v->kind == VALUE_CONST && hq_tensor_count(v->constant) == 1 &&
           fabs(onnxi_tensor_at(v->constant, 0) - want) < 1e-4 * want;
}

/* s == 1 + Erf(x / sqrt(2)) (Div by sqrt(2) or Mul by 1/sqrt(2), either operand order), each
 * tensor in between read once; *x = x and nodes[0..2] = Add, Erf, Div/Mul. */
static bool is_one_plus_erf(onnxi_ctx_t *c, const char *s, const char **x,
                            const Onnx__NodeProto **nodes)
{
    const Onnx__NodeProto *a = producer_of(c, s);
    if (!is_op(a, "Add", 2) || uses_of(c, s) != 1)
        return false;
    const char *e = literal(c, a->input[1], 1) ? a->input[0]
                    : literal(c, a->input[0], 1) ? a->input[1]
                                                 : NULL;
    const Onnx__NodeProto *erf = e ? producer_of(c, e) : NULL;
    if (!is_op(erf, "Erf", 1) || uses_of(c, e) != 1 || uses_of(c, erf->input[0]) != 1)
        return false;
    const Onnx__NodeProto *d = producer_of(c, erf->input[0]);
    *x = NULL;
    if (is_op(d, "Div", 2) && near_literal(c, d->input[1], 1.41421356237309505))
        *x = d->input[0];
    else if (is_op(d, "Mul", 2))
        for (int i = 0; i < 2 && !*x; i++)
            if (near_literal(c, d->input[i], 0.70710678118654752))
                *x = d->input[1 - i];
    nodes[0] = a;
    nodes[1] = erf;
    nodes[2] = d;
    return *x != NULL;
}

static void plan_activation(onnxi_ctx_t *c, int node, const char *x, hq_activation_t act,
                            const Onnx__NodeProto **skipped, int count, int x_uses)
{
    onnxi_node_plan_t *p = &c->plans[node];
    p->act = (int)act;
    p->act_input = x;
    p->x_uses = x_uses;
    p->extra_count = 0;
    for (int i = 0; i < count; i++) {
        for (size_t k = 0; k < c->g->n_node; k++)
            if (c->g->node[k] == skipped[i]) {
                c->plans[k].skip = true;
                break;
            }
        if (p->extra_count < 4)
            p->extra_names[p->extra_count++] = onnxi_node_label(skipped[i]);
    }
}

/* GELU, x * 0.5 * (1 + Erf(x / sqrt(2))) in the groupings exporters write: ((x * e) * 0.5 (torch's
 * nn.GELU), (x * 0.5) * e, x * (e * 0.5), with e = 1 + Erf(...) and 0.5 or / 2. Plans node i. */
static bool plan_gelu(onnxi_ctx_t *c, int i, const Onnx__NodeProto *n)
{
    const Onnx__NodeProto *nodes[4];
    const char *inner, *x;
    /* (x * e) * 0.5 */
    if (is_half(c, n, &inner) && uses_of(c, inner) == 1) {
        const Onnx__NodeProto *m = producer_of(c, inner);
        for (int k = 0; k < 2 && is_op(m, "Mul", 2); k++)
            if (is_one_plus_erf(c, m->input[k], &x, nodes) && !strcmp(m->input[1 - k], x)) {
                nodes[3] = m;
                plan_activation(c, i, x, HQ_ACT_GELU, nodes, 4, 0);
                return true;
            }
    }
    if (!is_op(n, "Mul", 2))
        return false;
    for (int k = 0; k < 2; k++) {
        const char *a = n->input[k], *b = n->input[1 - k];
        const Onnx__NodeProto *h = producer_of(c, b);
        /* (x * 0.5) * e */
        if (is_one_plus_erf(c, a, &x, nodes) && uses_of(c, b) == 1 && is_half(c, h, &inner) &&
            !strcmp(inner, x)) {
            nodes[3] = h;
            plan_activation(c, i, x, HQ_ACT_GELU, nodes, 4, 0);
            return true;
        }
        /* x * (e * 0.5) */
        if (uses_of(c, b) == 1 && is_half(c, h, &inner) && is_one_plus_erf(c, inner, &x, nodes) &&
            !strcmp(a, x)) {
            nodes[3] = h;
            plan_activation(c, i, x, HQ_ACT_GELU, nodes, 4, 1);
            return true;
        }
    }
    return false;
}

/* Marks the nodes of each SiLU / HardSwish / GELU decomposition: the last node becomes the
 * activation, the others are skipped. */
void onnxi_plan_patterns(onnxi_ctx_t *c)
{
    for (size_t i = 0; i < c->g->n_node; i++) {
        const Onnx__NodeProto *n = c->g->node[i];
        if (c->plans[i].skip || n->n_output < 1)
            continue;
        const char *inner;
        /* (x * relu6(x + 3)) / 6 */
        if (is_div6(c, n, &inner) && uses_of(c, inner) == 1) {
            const Onnx__NodeProto *m = producer_of(c, inner), *nodes[3];
            if (is_op(m, "Mul", 2)) {
                for (int k = 0; k < 2; k++) {
                    const char *x = m->input[k];
                    if (is_relu6_x_plus_3(c, m->input[1 - k], x, nodes)) {
                        nodes[2] = m;
                        plan_activation(c, (int)i, x, HQ_ACT_HARDSWISH, nodes, 3, 0);
                        break;
                    }
                }
            }
            if (c->plans[i].act >= 0)
                continue;
        }
        if (plan_gelu(c, (int)i, n))
            continue;
        if (!is_op(n, "Mul", 2))
            continue;
        for (int k = 0; k < 2 && c->plans[i].act < 0; k++) {
            const char *x = n->input[k], *s = n->input[1 - k];
            const Onnx__NodeProto *g = producer_of(c, s), *nodes[3];
            if (!g || uses_of(c, s) != 1 || g->n_input < 1)
                continue;
            if (is_op(g, "Sigmoid", 1) && !strcmp(g->input[0], x)) {
                nodes[0] = g;
                plan_activation(c, (int)i, x, HQ_ACT_SILU, nodes, 1, 1);
            } else if (is_op(g, "HardSigmoid", 1) && !strcmp(g->input[0], x) &&
                       fabsf(onnxi_attr_float(g, "alpha", 0.2f) - 1.0f / 6) < 1e-5f &&
                       fabsf(onnxi_attr_float(g, "beta", 0.5f) - 0.5f) < 1e-6f) {
                nodes[0] = g;
                plan_activation(c, (int)i, x, HQ_ACT_HARDSWISH, nodes, 1, 1);
            } else if (is_div6(c, g, &inner) && uses_of(c, inner) == 1 &&
                       is_relu6_x_plus_3(c, inner, x, nodes)) {
                nodes[2] = g;
                plan_activation(c, (int)i, x, HQ_ACT_HARDSWISH, nodes, 3, 1);
            }
        }
    }
}

/* ---- PixelShuffle --------------------------------------------------------------------------- */

/* The only node reading tensor `name` after node index `after`, and its index; NULL when the
 * tensor has other readers or is a graph output. */
static const Onnx__NodeProto *sole_consumer(onnxi_ctx_t *c, const char *name, size_t after,
                                            size_t *at)
{
    onnxi_value_t *v = onnxi_value_of(c, name);
    if (!v || v->uses != 1)
        return NULL;
    for (size_t j = after + 1; j < c->g->n_node; j++) {
        const Onnx__NodeProto *m = c->g->node[j];
        for (size_t k = 0; k < m->n_input; k++)
            if (!strcmp(m->input[k], name)) {
                *at = j;
                return k == 0 ? m : NULL;
            }
    }
    return NULL;
}

/* PyTorch's PixelShuffle as exported before DepthToSpace had a CRD mode: Reshape to
 * [N, C, r, r, H, W] -> Transpose [0, 1, 4, 2, 5, 3] -> Reshape to [N, C, H·r, W·r] is
 * DepthToSpace CRD; [N, r, r, C, H, W] with [0, 3, 4, 1, 5, 2] is DCR. `n` is the first
 * Reshape, `to` its 6-D target; on a match the three nodes become one depth_to_space layer. */
hq_status_t onnxi_pixel_shuffle(onnxi_ctx_t *c, const Onnx__NodeProto *n, onnxi_value_t *x,
                                const int64_t *in, const int64_t *to, bool *done)
{
    *done = false;
    static const int64_t crd_perm[6] = {0, 1, 4, 2, 5, 3}, dcr_perm[6] = {0, 3, 4, 1, 5, 2};
    if (to[1] * to[2] * to[3] != in[1] || to[4] != in[2] || to[5] != in[3])
        return HQ_OK;
    size_t self = 0, ti, ri;
    while (self < c->g->n_node && c->g->node[self] != n)
        self++;
    const Onnx__NodeProto *t = sole_consumer(c, n->output[0], self, &ti);
    if (!t || strcmp(t->op_type, "Transpose") || t->n_output != 1)
        return HQ_OK;
    int k;
    const int64_t *perm = onnxi_attr_ints(t, "perm", &k);
    if (k != 6)
        return HQ_OK;
    /* the permutation says the mode: [N, C, r, r, H, W] (CRD) or [N, r, r, C, H, W] (DCR) */
    bool crd = !memcmp(perm, crd_perm, sizeof crd_perm) && to[2] == to[3];
    bool dcr = !memcmp(perm, dcr_perm, sizeof dcr_perm) && to[1] == to[2];
    if (!crd && !dcr)
        return HQ_OK;
    int64_t r = crd ? to[2] : to[1], ch = crd ? to[1] : to[3];
    const Onnx__NodeProto *r2 = sole_consumer(c, t->output[0], ti, &ri);
    if (!r2 || strcmp(r2->op_type, "Reshape") || r2->n_input < 2)
        return HQ_OK;
    onnxi_value_t *shape = onnxi_value_of(c, r2->input[1]);
    if (!shape || shape->kind != VALUE_CONST || hq_tensor_count(shape->constant) != 4)
        return HQ_OK;
    const hq_tensor_t *sv = shape->constant;
    int64_t b = onnxi_tensor_int_at(sv, 0);
    if ((b != 1 && b != 0 && b != -1) || onnxi_tensor_at(sv, 1) != ch ||
        onnxi_tensor_at(sv, 2) != in[2] * r || onnxi_tensor_at(sv, 3) != in[3] * r || r < 1 ||
        r > 4096)
        return HQ_OK;
    int index;
    hq_status_t st;
    if ((st = onnxi_new_layer(c, HQ_LAYER_DEPTH_TO_SPACE, n, &index)) != HQ_OK ||
        (st = onnxi_connect_value(c, x, index)) != HQ_OK ||
        (st = hq_layer_add_original_name(c->graph, index, onnxi_node_label(t), c->err)) != HQ_OK ||
        (st = hq_layer_add_original_name(c->graph, index, onnxi_node_label(r2), c->err)) != HQ_OK)
        return st;
    onnxi_layer_params(c, index)->block_size = (int)r;
    onnxi_layer_params(c, index)->depth_to_space_crd = crd;
    /* the Transpose and the second Reshape are done: skipped when their turn comes */
    c->plans[ti].skip = true;
    c->plans[ri].skip = true;
    *done = true;
    return onnxi_set_layer_output(c, r2, 0, index, 0, 4);
}

/* ShuffleNet's channel shuffle as PyTorch exports x.view(N, g, C/g, H, W).transpose(1, 2)
 * .contiguous().view(N, C, H, W): Reshape to [N, g, C/g, H, W] -> Transpose [0, 2, 1, 3, 4] is
 * channel_shuffle with groups g, whose NCHW output holds the transposed 5-D tensor's elements in
 * the same order. So the Transpose's output becomes that layer's [N, C, H, W] and the Reshape
 * that alone reads it converts as usual (to [N, C, H, W] it vanishes). Its target is often not
 * known yet here (torch computes it from Shape after the Transpose); a 0 entry in it would copy
 * a 5-D extent, which torch never writes. `n` is the first Reshape, `to` its 5-D target. */
hq_status_t onnxi_channel_shuffle(onnxi_ctx_t *c, const Onnx__NodeProto *n, onnxi_value_t *x,
                                  const int64_t *in, const int64_t *to, bool *done)
{
    *done = false;
    static const int64_t swap_groups[5] = {0, 2, 1, 3, 4};
    if (to[1] * to[2] != in[1] || to[3] != in[2] || to[4] != in[3] || to[1] < 1 ||
        to[1] > INT32_MAX)
        return HQ_OK;
    size_t self = 0, ti, ri;
    while (self < c->g->n_node && c->g->node[self] != n)
        self++;
    const Onnx__NodeProto *t = sole_consumer(c, n->output[0], self, &ti);
    if (!t || strcmp(t->op_type, "Transpose") || t->n_output != 1)
        return HQ_OK;
    int k;
    const int64_t *perm = onnxi_attr_ints(t, "perm", &k);
    if (k != 5 || memcmp(perm, swap_groups, sizeof swap_groups))
        return HQ_OK;
    const Onnx__NodeProto *r2 = sole_consumer(c, t->output[0], ti, &ri);
    if (!r2 || strcmp(r2->op_type, "Reshape"))
        return HQ_OK;
    int index;
    hq_status_t st;
    if ((st = onnxi_new_layer(c, HQ_LAYER_CHANNEL_SHUFFLE, n, &index)) != HQ_OK ||
        (st = onnxi_connect_value(c, x, index)) != HQ_OK ||
        (st = hq_layer_add_original_name(c->graph, index, onnxi_node_label(t), c->err)) != HQ_OK)
        return st;
    onnxi_layer_params(c, index)->groups = (int)to[1];
    c->plans[ti].skip = true;
    *done = true;
    return onnxi_set_layer_output(c, t, 0, index, 0, 4);
}
