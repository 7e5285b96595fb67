/* onnx_ops_activation.c — activations: fused into the producing layer when it is the only
 * reader (clip ranges intersect), else an activation layer; also the SiLU / HardSwish / GELU
 * patterns that onnx_patterns.c plans. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_internal.h"

static bool has_activation_field(hq_layer_type_t t)
{
    switch (t) {
    case HQ_LAYER_CONV:
    case HQ_LAYER_DW:
    case HQ_LAYER_DECONV:
    case HQ_LAYER_DENSE:
    case HQ_LAYER_BATCH_NORM:
    case HQ_LAYER_EW_ADD:
    case HQ_LAYER_EW_SUB:
    case HQ_LAYER_EW_MULT:
    case HQ_LAYER_EW_DIV:
    case HQ_LAYER_EW_MAX:
    case HQ_LAYER_EW_MIN:
    case HQ_LAYER_ACTIVATION:
        return true;
    default:
        return false;
    }
}

/* Applies activation `act` to value x on behalf of node n: fused into x's producer when n is its
 * only consumer, else a standalone activation layer. `slope` (prelu, per channel) is copied. */
hq_status_t onnxi_apply_activation(onnxi_ctx_t *c, const Onnx__NodeProto *n, onnxi_value_t *x,
                                   hq_activation_t act, float alpha, float beta, const float *slope,
                                   int uses_here)
{
    if (!isfinite(alpha) && !(act == HQ_ACT_CLIP && isinf(alpha) && alpha < 0))
        NODE_FAIL(c, n, HQ_ERR_INVALID, "activation parameter %g is not a finite number", alpha);
    if (!isfinite(beta) && !(act == HQ_ACT_CLIP && isinf(beta) && beta > 0))
        NODE_FAIL(c, n, HQ_ERR_INVALID, "activation parameter %g is not a finite number", beta);
    /* hq stores clip bounds as finite floats: an open side is +-CLIP_OPEN. */
    if (alpha < -CLIP_OPEN)
        alpha = -CLIP_OPEN;
    if (beta > CLIP_OPEN)
        beta = CLIP_OPEN;
    if (act != HQ_ACT_CLIP && (fabsf(alpha) > CLIP_OPEN || fabsf(beta) > CLIP_OPEN))
        NODE_FAIL(c, n, HQ_ERR_INVALID, "activation parameter out of range");
    hq_status_t st = onnxi_materialize(c, x);
    if (st != HQ_OK)
        return st;
    int64_t channels = 0;
    if (slope && (st = onnxi_channels_of(c, x, &channels)) != HQ_OK)
        return st;
    int target = -1;
    if (onnxi_sole_reader(c, x, uses_here)) {
        hq_layer_t *p = hq_graph_layer_mut(c->graph, x->layer);
        hq_layer_params_t *pp = &p->params;
        if (has_activation_field(p->type) && pp->activation == HQ_ACT_LINEAR) {
            target = x->layer;
        } else if (act == HQ_ACT_CLIP && has_activation_field(p->type) &&
                   (pp->activation == HQ_ACT_RELU || pp->activation == HQ_ACT_CLIP ||
                    pp->activation == HQ_ACT_RELU6)) {
            /* Max(x, lo) then Min(x, hi) and the like: intersect the ranges. */
            float lo = pp->activation == HQ_ACT_CLIP ? pp->activation_alpha : 0.0f;
            float hi = pp->activation == HQ_ACT_CLIP    ? pp->activation_beta
                       : pp->activation == HQ_ACT_RELU6 ? 6.0f
                                                        : CLIP_OPEN;
            alpha = alpha > lo ? alpha : lo;
            beta = beta < hi ? beta : hi;
            target = x->layer;
        }
    }
    if (act == HQ_ACT_CLIP && alpha == 0.0f && beta == 6.0f)
        act = HQ_ACT_RELU6;
    else if (act == HQ_ACT_CLIP && alpha == 0.0f && beta == CLIP_OPEN)
        act = HQ_ACT_RELU;
    if (target >= 0) {
        st = hq_layer_add_original_name(c->graph, target, onnxi_node_label(n), c->err);
    } else {
        if ((st = onnxi_new_layer(c, HQ_LAYER_ACTIVATION, n, &target)) != HQ_OK ||
            (st = onnxi_connect_value(c, x, target)) != HQ_OK)
            return st;
    }
    if (st != HQ_OK)
        return st;
    hq_layer_params_t *pp = onnxi_layer_params(c, target);
    pp->activation = act;
    pp->activation_alpha =
        act == HQ_ACT_LEAKY || act == HQ_ACT_HARDSIGMOID || act == HQ_ACT_CLIP ? alpha : 0.0f;
    pp->activation_beta = act == HQ_ACT_HARDSIGMOID || act == HQ_ACT_CLIP ? beta : 0.0f;
    if (slope) {
        hq_tensor_t *t;
        if ((st = onnxi_vector_tensor(c, slope, channels, &t)) != HQ_OK ||
            (st = onnxi_put_param(c, target, "prelu_slope:0", t)) != HQ_OK)
            return st;
    }
    return onnxi_set_layer_output(c, n, 0, target, 0, x->rank);
}

/* Input 0 of an activation node, which must be a computed tensor. */
static hq_status_t activation_input(onnxi_ctx_t *c, const Onnx__NodeProto *n, onnxi_value_t **x)
{
    hq_status_t st = onnxi_node_input(c, n, 0, x);
    if (st != HQ_OK)
        return st;
    if (!*x || (*x)->kind != VALUE_LAYER)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "input must be a computed tensor");
    return HQ_OK;
}

/* An activation with no parameters. */
static hq_status_t convert_plain(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_activation_t act)
{
    onnxi_value_t *x;
    hq_status_t st = activation_input(c, n, &x);
    if (st != HQ_OK)
        return st;
    return onnxi_apply_activation(c, n, x, act, 0, 0, NULL, 1);
}

hq_status_t onnxi_convert_relu(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_plain(c, n, HQ_ACT_RELU);
}

hq_status_t onnxi_convert_sigmoid(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_plain(c, n, HQ_ACT_SIGMOID);
}

hq_status_t onnxi_convert_tanh(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_plain(c, n, HQ_ACT_TANH);
}

hq_status_t onnxi_convert_exp(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_plain(c, n, HQ_ACT_EXP);
}

hq_status_t onnxi_convert_hard_swish(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_plain(c, n, HQ_ACT_HARDSWISH);
}

/* Gelu (opset 20): the exact erf form only. */
hq_status_t onnxi_convert_gelu(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    const char *approximate = onnxi_attr_string(n, "approximate", "none");
    if (strcmp(approximate, "none") != 0)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "approximate '%s' is not supported (only 'none')",
                  approximate);
    return convert_plain(c, n, HQ_ACT_GELU);
}

hq_status_t onnxi_convert_leaky_relu(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    onnxi_value_t *x;
    hq_status_t st = activation_input(c, n, &x);
    if (st != HQ_OK)
        return st;
    return onnxi_apply_activation(c, n, x, HQ_ACT_LEAKY, onnxi_attr_float(n, "alpha", 0.01f), 0,
                                  NULL, 1);
}

hq_status_t onnxi_convert_hard_sigmoid(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    onnxi_value_t *x;
    hq_status_t st = activation_input(c, n, &x);
    if (st != HQ_OK)
        return st;
    return onnxi_apply_activation(c, n, x, HQ_ACT_HARDSIGMOID, onnxi_attr_float(n, "alpha", 0.2f),
                                  onnxi_attr_float(n, "beta", 0.5f), NULL, 1);
}

hq_status_t onnxi_convert_clip(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    onnxi_value_t *x;
    hq_status_t st = activation_input(c, n, &x);
    if (st != HQ_OK)
        return st;
    float lo = onnxi_attr_float(n, "min", -FLT_MAX), hi = onnxi_attr_float(n, "max", FLT_MAX);
    if ((st = onnxi_scalar_input(c, n, 1, lo, &lo)) != HQ_OK ||
        (st = onnxi_scalar_input(c, n, 2, hi, &hi)) != HQ_OK)
        return st;
    if (lo > hi)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "min %g is above max %g", lo, hi);
    return onnxi_apply_activation(c, n, x, HQ_ACT_CLIP, lo, hi, NULL, 1);
}

/* PRelu whose slope varies along H, W or L (Keras' PReLU with shared_axes=None has one slope per
 * element): relu(x) + slope * min(x, 0), with the slope a const_input broadcast by ew_mult. One
 * of the two terms is exactly 0, so the float result is onnxruntime's x or slope * x to the bit.
 * The ew_add is made first so that the node's name finds the PRelu's output before the
 * const_input, which carries it too, as every constant operand does. */
static hq_status_t prelu_decomposed(onnxi_ctx_t *c, const Onnx__NodeProto *n, onnxi_value_t *x,
                                    const hq_tensor_t *slope)
{
    int rank;
    int64_t dims[4];
    hq_status_t st = onnxi_onnx_shape_of(c, x, &rank, dims);
    if (st != HQ_OK)
        return st;
    bool fits = slope->ndim <= rank, batch = false;
    for (int d = 0; fits && d < slope->ndim; d++) {
        int axis = d + rank - slope->ndim;
        int64_t e = slope->shape[d];
        batch |= axis == 0 && e != 1;
        fits = e == 1 || (axis > 0 && e == dims[axis]);
    }
    if (!fits) {
        char got[96], want[96];
        int used = 0;
        got[0] = '\0';
        for (int d = 0; d < slope->ndim && used < (int)sizeof got - 24; d++)
            used += snprintf(got + used, sizeof got - (size_t)used, "%s%lld", d ? ", " : "",
                             (long long)slope->shape[d]);
        used = snprintf(want, sizeof want, "N");
        for (int d = 1; d < rank; d++)
            used += snprintf(want + used, sizeof want - (size_t)used, ", %lld", (long long)dims[d]);
        if (batch)
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED,
                      "slope [%s] varies along the batch axis of the input [%s] (hq runs every "
                      "sample on its own)",
                      got, want);
        NODE_FAIL(c, n, HQ_ERR_INVALID, "slope [%s] does not broadcast to the input [%s]", got,
                  want);
    }
    int sum, pos, neg, konst, mult;
    if ((st = onnxi_new_layer(c, HQ_LAYER_EW_ADD, n, &sum)) != HQ_OK ||
        (st = onnxi_new_layer(c, HQ_LAYER_ACTIVATION, NULL, &pos)) != HQ_OK ||
        (st = onnxi_connect_value(c, x, pos)) != HQ_OK ||
        (st = onnxi_new_layer(c, HQ_LAYER_ACTIVATION, NULL, &neg)) != HQ_OK ||
        (st = onnxi_connect_value(c, x, neg)) != HQ_OK ||
        (st = onnxi_add_const_layer(c, n, slope, rank, &konst)) != HQ_OK ||
        (st = onnxi_new_layer(c, HQ_LAYER_EW_MULT, NULL, &mult)) != HQ_OK ||
        (st = hq_graph_connect(c->graph, neg, 0, mult, c->err)) != HQ_OK ||
        (st = hq_graph_connect(c->graph, konst, 0, mult, c->err)) != HQ_OK ||
        (st = hq_graph_connect(c->graph, pos, 0, sum, c->err)) != HQ_OK ||
        (st = hq_graph_connect(c->graph, mult, 0, sum, c->err)) != HQ_OK)
        return st;
    onnxi_layer_params(c, pos)->activation = HQ_ACT_RELU;
    hq_layer_params_t *np = onnxi_layer_params(c, neg);
    np->activation = HQ_ACT_CLIP;
    np->activation_alpha = -CLIP_OPEN;
    np->activation_beta = 0.0f;
    return onnxi_set_layer_output(c, n, 0, sum, 0, x->rank);
}

hq_status_t onnxi_convert_prelu(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    onnxi_value_t *x;
    hq_status_t st = activation_input(c, n, &x);
    if (st != HQ_OK)
        return st;
    hq_tensor_t *s;
    if ((st = onnxi_const_input(c, n, 1, true, &s)) != HQ_OK)
        return st;
    if ((st = onnxi_materialize(c, x)) != HQ_OK)
        return st;
    int64_t channels;
    if ((st = onnxi_channels_of(c, x, &channels)) != HQ_OK)
        return st;
    float *vec;
    if (!onnxi_channel_vector(s, x->rank, channels, &vec))
        return prelu_decomposed(c, n, x, s);
    st = onnxi_apply_activation(c, n, x, HQ_ACT_PRELU, 0, 0, vec, 1);
    free(vec);
    return st;
}

/* A node planned as an activation pattern (SiLU, HardSwish, GELU decompositions). */
hq_status_t onnxi_convert_planned_activation(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                             const onnxi_node_plan_t *p)
{
    onnxi_value_t *x = onnxi_value_of(c, p->act_input);
    if (!x || x->kind != VALUE_LAYER)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "input must be a computed tensor");
    hq_status_t st =
        onnxi_apply_activation(c, n, x, (hq_activation_t)p->act, 0, 0, NULL, p->x_uses);
    onnxi_value_t *out = onnxi_value_of(c, n->output[0]);
    for (int i = 0; st == HQ_OK && i < p->extra_count; i++)
        st = hq_layer_add_original_name(c->graph, out->layer, p->extra_names[i], c->err);
    return st;
}