/* onnx_layer_norm.c — layer normalization over the channels (LayerNormalization at opset 17 and
 * the ReduceMean / Sub / Pow / ReduceMean / Add / Sqrt / Div (/ Mul / Add) decomposition torch
 * writes at opsets 11 and 13) as one layer_norm layer, and the channels-last views it usually
 * runs on. ConvNeXt and most transformer-style blocks permute an NCHW tensor to [N, H, W, C]
 * (Transpose [0, 2, 3, 1]), normalize and project over the last axis, and permute back: in hq's
 * NHWC layout that tensor is the layer output itself, so the Transpose makes no layer and marks
 * the value as a view (onnxi_value_t.nhwc). Sequence models do the same in rank 3: a
 * Transpose [0, 2, 1] of [N, C, L] gives [N, T, C], the layer output [-1, 1, T, C] itself. The
 * nodes that read a view as it is laid out (the layer normalization, MatMul with a constant as a
 * 1x1 conv, elementwise ops with their constants moved to NCHW order, activations, Reshape, the
 * Transpose back) keep it; any other node gets it materialized as the transpose hq would have
 * made. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_internal.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static bool is_op(const Onnx__NodeProto *n, const char *op, size_t inputs)
{
    return n && n->op_type && !strcmp(n->op_type, op) && n->n_input >= inputs && n->n_output >= 1;
}

static onnxi_value_t *const_value(onnxi_ctx_t *c, const char *name)
{
    onnxi_value_t *v = onnxi_value_of(c, name);
    return v && v->kind == VALUE_CONST ? v : NULL;
}

/* A scalar constant's value in *out. */
static bool scalar_const(onnxi_ctx_t *c, const char *name, double *out)
{
    onnxi_value_t *v = const_value(c, name);
    if (!v || hq_tensor_count(v->constant) != 1)
        return false;
    *out = onnxi_tensor_at(v->constant, 0);
    return true;
}

static int uses_of(onnxi_ctx_t *c, const char *name)
{
    onnxi_value_t *v = onnxi_value_of(c, name);
    return v ? v->uses : 0;
}

/* The ONNX rank of a layer value and the ONNX axis hq's channel axis is (-1: none). */
static int onnx_rank(const onnxi_value_t *x)
{
    return x->nhwc ? (x->rank == 3 ? 3 : 4) : x->rank;
}

static int channel_axis(const onnxi_value_t *x)
{
    if (x->nhwc)
        return onnx_rank(x) - 1;
    return x->rank >= 2 && x->rank <= 4 ? 1 : -1;
}

/* The C values of a gamma / beta constant that broadcasts along the channel axis only (right
 * aligned to the tensor's rank), or a scalar repeated; false when it is neither. */
static bool channel_values(const hq_tensor_t *t, int rank, int axis, int64_t channels, float *out)
{
    int64_t count = hq_tensor_count(t);
    if (count == 1) {
        for (int64_t k = 0; k < channels; k++)
            out[k] = (float)onnxi_tensor_at(t, 0);
        return true;
    }
    if (count != channels || t->ndim > rank)
        return false;
    for (int i = 0; i < t->ndim; i++) {
        int a = rank - t->ndim + i;
        if (t->shape[i] != 1 && !(a == axis && t->shape[i] == channels))
            return false;
    }
    for (int64_t k = 0; k < channels; k++)
        out[k] = (float)onnxi_tensor_at(t, k);
    return true;
}

/* Input i of n as a layer value, a view kept as it is (onnxi_layer_input would materialize it). */
static hq_status_t view_input(onnxi_ctx_t *c, const Onnx__NodeProto *n, size_t i, onnxi_value_t **x)
{
    hq_status_t st = onnxi_node_input(c, n, i, x);
    if (st != HQ_OK)
        return st;
    if (!*x || (*x)->kind != VALUE_LAYER)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "input %zu must be a computed tensor", i + 1);
    return (*x)->nhwc ? HQ_OK : onnxi_materialize(c, *x);
}

/* A layer_norm layer on x (normalizing hq's channel axis) giving output 0 of node `out`. */
static hq_status_t add_layer_norm(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                  const Onnx__NodeProto *out, onnxi_value_t *x,
                                  const hq_tensor_t *gamma, const hq_tensor_t *beta, float eps)
{
    hq_shape_t s;
    hq_status_t st = onnxi_hq_shape_of(c, x, &s);
    if (st != HQ_OK)
        return st;
    if (!(eps >= 0 && eps <= CLIP_OPEN))
        NODE_FAIL(c, n, HQ_ERR_INVALID, "epsilon %g must be >= 0 and finite", eps);
    const int64_t channels = s.dims[s.ndim - 1];
    float *v = malloc((size_t)channels * 2 * sizeof *v);
    if (!v)
        return hqi_nomem(c->err, c->name);
    float *g = v, *b = v + channels;
    for (int64_t k = 0; k < channels; k++) {
        g[k] = 1.0f;
        b[k] = 0.0f;
    }
    const int rank = onnx_rank(x), axis = channel_axis(x);
    const char *bad = gamma && !channel_values(gamma, rank, axis, channels, g) ? "scale"
                      : beta && !channel_values(beta, rank, axis, channels, b) ? "bias"
                                                                               : NULL;
    if (bad) {
        free(v);
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "the %s must hold one value per channel (%lld) or one",
                  bad, (long long)channels);
    }
    int index;
    hq_tensor_t *gt = NULL, *bt = NULL;
    if ((st = onnxi_new_layer(c, HQ_LAYER_LAYER_NORM, n, &index)) == HQ_OK &&
        (st = onnxi_connect_value(c, x, index)) == HQ_OK &&
        (st = onnxi_vector_tensor(c, g, channels, &gt)) == HQ_OK &&
        (st = onnxi_put_param(c, index, "gamma:0", gt)) == HQ_OK &&
        (st = onnxi_vector_tensor(c, b, channels, &bt)) == HQ_OK)
        st = onnxi_put_param(c, index, "beta:0", bt);
    free(v);
    if (st != HQ_OK)
        return st;
    onnxi_layer_params(c, index)->epsilon = eps;
    bool nhwc = x->nhwc;
    if ((st = onnxi_set_layer_output(c, out, 0, index, 0, x->rank)) != HQ_OK)
        return st;
    onnxi_value_of(c, out->output[0])->nhwc = nhwc;
    return HQ_OK;
}

/* The refusal of a normalization over other axes than the channels. */
static hq_status_t refuse_axes(onnxi_ctx_t *c, const Onnx__NodeProto *n, const onnxi_value_t *x,
                               const char *axes)
{
    NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED,
              "normalizes over axes %s of the rank-%d tensor '%s'; hq normalizes over the channel "
              "axis only (the last axis of a channels-last tensor, axis 1 of [N, C] or, for the "
              "decomposed form, of [N, C, H, W])",
              axes, onnx_rank(x), x->name);
}

/* ---- LayerNormalization -------------------------------------------------------------------- */

hq_status_t onnxi_convert_layer_norm(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    onnxi_value_t *x;
    hq_tensor_t *gamma, *beta;
    hq_status_t st = view_input(c, n, 0, &x);
    if (st == HQ_OK)
        st = onnxi_const_input(c, n, 1, true, &gamma);
    if (st == HQ_OK)
        st = onnxi_const_input(c, n, 2, false, &beta);
    if (st != HQ_OK)
        return st;
    for (size_t k = 1; k < n->n_output; k++)
        if (n->output[k][0] && uses_of(c, n->output[k]) > 0)
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED,
                      "output %zu ('%s', the mean or inverse deviation) is read; hq computes the "
                      "normalized tensor only",
                      k + 1, n->output[k]);
    const int rank = onnx_rank(x);
    int64_t axis = onnxi_attr_int(n, "axis", -1);
    if (axis < 0)
        axis += rank;
    if (axis != rank - 1 || channel_axis(x) != rank - 1) {
        char axes[48];
        snprintf(axes, sizeof axes, "%lld..%d", (long long)axis, rank - 1);
        return refuse_axes(c, n, x, axes);
    }
    return add_layer_norm(c, n, n, x, gamma, beta, onnxi_attr_float(n, "epsilon", 1e-5f));
}

/* ---- the decomposition --------------------------------------------------------------------- */

/* The index of the k-th needed node after `after` that reads `name`; -1 when there is none. */
static int reader(onnxi_ctx_t *c, const char *name, size_t after, int k)
{
    for (size_t j = after + 1; j < c->g->n_node; j++) {
        const Onnx__NodeProto *m = c->g->node[j];
        if (!c->node_needed[j] || c->plans[j].skip)
            continue;
        for (size_t i = 0; i < m->n_input; i++)
            if (!strcmp(m->input[i], name)) {
                if (k-- == 0)
                    return (int)j;
                break;
            }
    }
    return -1;
}

/* True for a constant, or a tensor that Identity nodes copy from one (exporters share weights
 * that way; the copies fold only when their turn comes, after planning). */
static bool will_be_const(onnxi_ctx_t *c, const char *name)
{
    for (int depth = 0; depth < 8; depth++) {
        onnxi_value_t *v = onnxi_value_of(c, name);
        if (!v)
            return false;
        if (v->kind == VALUE_CONST)
            return true;
        const Onnx__NodeProto *p = v->producer >= 0 ? c->g->node[v->producer] : NULL;
        if (!is_op(p, "Identity", 1))
            return false;
        name = p->input[0];
    }
    return false;
}

/* The constant operand of a two-input node whose other operand is `x`; NULL when it is not so. */
static const char *const_operand(onnxi_ctx_t *c, const Onnx__NodeProto *m, const char *x)
{
    if (!m || m->n_input != 2)
        return NULL;
    for (int k = 0; k < 2; k++)
        if (!strcmp(m->input[k], x) && will_be_const(c, m->input[1 - k]))
            return m->input[1 - k];
    return NULL;
}

static bool same_axes(const Onnx__NodeProto *a, const Onnx__NodeProto *b)
{
    int ka, kb;
    const int64_t *x = onnxi_attr_ints(a, "axes", &ka), *y = onnxi_attr_ints(b, "axes", &kb);
    if (ka != kb)
        return false;
    if (ka < 0) /* opset 18: axes as input 1 */
        return a->n_input >= 2 && b->n_input >= 2 && !strcmp(a->input[1], b->input[1]);
    return !memcmp(x, y, (size_t)ka * sizeof *x);
}

/* Tries the decomposition starting at ReduceMean node i (mean = ReduceMean(x)). */
static void plan_from(onnxi_ctx_t *c, size_t i)
{
    const Onnx__NodeProto *r1 = c->g->node[i];
    if (!is_op(r1, "ReduceMean", 1) || onnxi_attr_int(r1, "keepdims", 1) != 1)
        return;
    const char *x = r1->input[0], *mean = r1->output[0];
    int is = reader(c, mean, i, 0);
    const Onnx__NodeProto *sub = is >= 0 ? c->g->node[is] : NULL;
    if (uses_of(c, mean) != 1 || !is_op(sub, "Sub", 2) || strcmp(sub->input[0], x) ||
        strcmp(sub->input[1], mean))
        return;
    const char *d = sub->output[0];
    int i1 = reader(c, d, (size_t)is, 0), i2 = reader(c, d, (size_t)is, 1);
    if (uses_of(c, d) != 2 || i1 < 0 || i2 < 0)
        return;
    const Onnx__NodeProto *pow = c->g->node[i1], *div = c->g->node[i2];
    if (!is_op(pow, "Pow", 2)) {
        const Onnx__NodeProto *t = pow;
        pow = div;
        div = t;
    }
    double two, eps;
    if (!is_op(pow, "Pow", 2) || strcmp(pow->input[0], d) ||
        !scalar_const(c, pow->input[1], &two) || two != 2.0 || uses_of(c, pow->output[0]) != 1)
        return;
    int ir2 = reader(c, pow->output[0], 0, 0);
    const Onnx__NodeProto *r2 = ir2 >= 0 ? c->g->node[ir2] : NULL;
    if (!is_op(r2, "ReduceMean", 1) || onnxi_attr_int(r2, "keepdims", 1) != 1 ||
        !same_axes(r1, r2) || uses_of(c, r2->output[0]) != 1)
        return;
    int ia = reader(c, r2->output[0], (size_t)ir2, 0);
    const Onnx__NodeProto *add = ia >= 0 ? c->g->node[ia] : NULL;
    const char *e = is_op(add, "Add", 2) ? const_operand(c, add, r2->output[0]) : NULL;
    if (!e || !scalar_const(c, e, &eps) || uses_of(c, add->output[0]) != 1)
        return;
    int iq = reader(c, add->output[0], (size_t)ia, 0);
    const Onnx__NodeProto *sqrt_node = iq >= 0 ? c->g->node[iq] : NULL;
    if (!is_op(sqrt_node, "Sqrt", 1) || uses_of(c, sqrt_node->output[0]) != 1 ||
        !is_op(div, "Div", 2) || strcmp(div->input[0], d) ||
        strcmp(div->input[1], sqrt_node->output[0]))
        return;
    const Onnx__NodeProto *nodes[9] = {r1, sub, pow, r2, add, sqrt_node, div};
    int count = 7;
    const char *gamma = NULL, *beta = NULL, *last = div->output[0];
    size_t at = (size_t)(i1 > i2 ? i1 : i2);
    int im = uses_of(c, last) == 1 ? reader(c, last, at, 0) : -1;
    const Onnx__NodeProto *mul = im >= 0 ? c->g->node[im] : NULL;
    if (is_op(mul, "Mul", 2) && (gamma = const_operand(c, mul, last)) != NULL) {
        nodes[count++] = mul;
        last = mul->output[0];
        at = (size_t)im;
    }
    int ib = uses_of(c, last) == 1 ? reader(c, last, at, 0) : -1;
    const Onnx__NodeProto *badd = ib >= 0 ? c->g->node[ib] : NULL;
    if (is_op(badd, "Add", 2) && (beta = const_operand(c, badd, last)) != NULL)
        nodes[count++] = badd;
    /* the last node carries the plan, the others are skipped */
    onnxi_node_plan_t *p = NULL;
    for (int k = 0; k < count; k++)
        for (size_t j = 0; j < c->g->n_node; j++)
            if (c->g->node[j] == nodes[k]) {
                p = &c->plans[j];
                p->skip = k < count - 1;
                break;
            }
    p->norm_mean = r1;
    p->norm_epsilon = (float)eps;
    p->norm_gamma = gamma;
    p->norm_beta = beta;
    p->extra_count = 0;
    for (int k = 0; k < count - 1 && p->extra_count < 4; k++)
        p->extra_names[p->extra_count++] = onnxi_node_label(nodes[k]);
}

void onnxi_plan_layer_norm(onnxi_ctx_t *c)
{
    for (size_t i = 0; i < c->g->n_node; i++)
        if (c->node_needed[i] && !c->plans[i].skip && c->plans[i].act < 0)
            plan_from(c, i);
}

static hq_status_t convert_planned(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                   const onnxi_node_plan_t *p)
{
    const Onnx__NodeProto *r1 = p->norm_mean;
    onnxi_value_t *x;
    hq_status_t st = view_input(c, r1, 0, &x);
    if (st != HQ_OK)
        return st;
    int64_t axes[HQ_TENSOR_MAX_DIMS];
    int count;
    if ((st = onnxi_axes_of(c, r1, onnx_rank(x), axes, &count)) != HQ_OK)
        return st;
    if (count != 1 || axes[0] != channel_axis(x)) {
        char list[64] = "[";
        for (int k = 0; k < count && strlen(list) < 40; k++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%lld", k ? ", " : "",
                     (long long)axes[k]);
        strcat(list, "]");
        return refuse_axes(c, r1, x, list);
    }
    const onnxi_value_t *g = p->norm_gamma ? const_value(c, p->norm_gamma) : NULL;
    const onnxi_value_t *b = p->norm_beta ? const_value(c, p->norm_beta) : NULL;
    if ((p->norm_gamma && !g) || (p->norm_beta && !b))
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "the scale or bias '%s' is not a constant here",
                  p->norm_gamma && !g ? p->norm_gamma : p->norm_beta);
    if ((st = add_layer_norm(c, r1, n, x, g ? g->constant : NULL, b ? b->constant : NULL,
                             p->norm_epsilon)) != HQ_OK)
        return st;
    int layer = onnxi_value_of(c, n->output[0])->layer;
    for (int k = 1; k < p->extra_count && st == HQ_OK; k++)
        st = hq_layer_add_original_name(c->graph, layer, p->extra_names[k], c->err);
    if (st == HQ_OK && n != r1)
        st = hq_layer_add_original_name(c->graph, layer, onnxi_node_label(n), c->err);
    return st;
}

/* ---- channels-last views ------------------------------------------------------------------- */

static bool perm_is(const Onnx__NodeProto *n, const int64_t *want, int rank)
{
    int k;
    const int64_t *perm = onnxi_attr_ints(n, "perm", &k);
    return k == rank && !memcmp(perm, want, (size_t)rank * sizeof *perm);
}

/* Output k of n stands for output `port` of `layer` as a view (or not). */
static void mark_outputs(onnxi_ctx_t *c, const Onnx__NodeProto *n, bool nhwc)
{
    for (size_t k = 0; k < n->n_output; k++) {
        onnxi_value_t *o = n->output[k][0] ? onnxi_value_of(c, n->output[k]) : NULL;
        if (o && o->kind == VALUE_LAYER && (o->rank == 4 || o->rank == 3) && !o->flat)
            o->nhwc = nhwc;
    }
}

/* MatMul(view, B) with a constant B [C, C'] is a 1x1 conv on the view: the result is again a
 * view [N, H, W, C'] (or [N, L, C']). */
static hq_status_t matmul_on_view(onnxi_ctx_t *c, const Onnx__NodeProto *n, onnxi_value_t *x,
                                  bool *done)
{
    onnxi_value_t *bv = n->n_input == 2 ? const_value(c, n->input[1]) : NULL;
    hq_tensor_t *w = bv ? bv->constant : NULL;
    hq_shape_t s;
    hq_status_t st = onnxi_hq_shape_of(c, x, &s);
    if (st != HQ_OK || !w || w->ndim != 2 || w->dtype != HQ_DTYPE_FLOAT32 ||
        w->shape[0] != s.dims[3] || w->shape[1] < 1 || w->shape[1] > INT32_MAX)
        return st;
    int64_t cin = w->shape[0], cout = w->shape[1];
    int index;
    hq_tensor_t *kernel = NULL, *bias = NULL;
    int64_t kshape[4] = {1, 1, cin, cout};
    if ((st = onnxi_new_layer(c, HQ_LAYER_CONV, n, &index)) != HQ_OK ||
        (st = onnxi_connect_value(c, x, index)) != HQ_OK ||
        (st = onnxi_new_tensor(c, HQ_DTYPE_FLOAT32, 4, kshape, &kernel)) != HQ_OK)
        return st;
    /* B's row-major [C, C'] is the [1, 1, C, C'] kernel as it is */
    memcpy(kernel->data, w->data, (size_t)(cin * cout) * sizeof(float));
    if ((st = onnxi_put_param(c, index, "kernel:0", kernel)) != HQ_OK ||
        (st = onnxi_new_tensor(c, HQ_DTYPE_FLOAT32, 1, &cout, &bias)) != HQ_OK)
        return st;
    memset(bias->data, 0, (size_t)cout * sizeof(float));
    if ((st = onnxi_put_param(c, index, "bias:0", bias)) != HQ_OK)
        return st;
    hq_layer_params_t *p = onnxi_layer_params(c, index);
    p->kernel_h = p->kernel_w = 1;
    p->kernel_in = (int)cin;
    p->kernel_out = (int)cout;
    p->groups = 1;
    p->padding = HQ_PADDING_VALID;
    p->has_bias = true;
    if ((st = onnxi_set_layer_output(c, n, 0, index, 0, onnx_rank(x))) != HQ_OK)
        return st;
    mark_outputs(c, n, true);
    *done = true;
    return HQ_OK;
}

/* MatMul(x, B) of a sequence [N, C, L] (not a view) with a constant B [L, C'] multiplies along
 * L: x becomes the view [N, C, L] of the layer output [-1, 1, C, L] by one transpose (x itself
 * stays as it is for its other readers), then the 1x1 conv of matmul_on_view. */
static hq_status_t matmul_on_sequence(onnxi_ctx_t *c, const Onnx__NodeProto *n, onnxi_value_t *x,
                                      bool *done)
{
    onnxi_value_t *bv = n->n_input == 2 ? const_value(c, n->input[1]) : NULL;
    const hq_tensor_t *w = bv ? bv->constant : NULL;
    hq_shape_t s;
    hq_status_t st = onnxi_hq_shape_of(c, x, &s);
    /* the checks matmul_on_view makes, before a transpose it would leave unread */
    if (st != HQ_OK || !w || w->ndim != 2 || w->dtype != HQ_DTYPE_FLOAT32 || s.ndim != 4 ||
        w->shape[0] != s.dims[2] || w->shape[1] < 1 || w->shape[1] > INT32_MAX)
        return st;
    static const int swap_last[4] = {0, 1, 3, 2};
    int index;
    if ((st = onnxi_add_transpose(c, x->layer, x->port, swap_last, 4, &index)) != HQ_OK ||
        (st = hq_layer_add_original_name(c->graph, index, onnxi_node_label(n), c->err)) != HQ_OK)
        return st;
    onnxi_value_t view = *x;
    view.layer = index;
    view.port = 0;
    view.nhwc = true;
    return matmul_on_view(c, n, &view, done);
}

/* Ops that compute each element from the elements at the same index (constants broadcast):
 * they run on a view as it is laid out once their constants are in NCHW order. */
static bool elementwise_op(const char *op)
{
    static const char *const ops[] = {
        "Add",       "Sub",  "Mul",       "Div",      "Max",    "Min",
        "Relu",      "Clip", "LeakyRelu", "Sigmoid",  "Tanh",   "HardSigmoid",
        "HardSwish", "Exp",  "Gelu",      "Identity", "Dropout"};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        if (!strcmp(op, ops[i]))
            return true;
    return false;
}

/* A constant broadcasting against [N, H, W, C] (rank 4) or [N, L, C] (rank 3), rearranged to
 * broadcast the same way against [N, C, H, W] or [N, C, L] (caller owns *out); NULL when its
 * rank is higher. A scalar is left as it is. */
static hq_status_t to_nchw_order(onnxi_ctx_t *c, const hq_tensor_t *t, int rank, hq_tensor_t **out)
{
    *out = NULL;
    if (t->ndim > rank || hq_tensor_count(t) == 1)
        return HQ_OK;
    /* a sequence's [b, l, c] is read as [1, b, l, c]: with b = 1 (one for every sample) the
     * moves of rank 4 give [1, c, 1, l], the elements of [1, c, l] */
    int64_t d[4] = {1, 1, 1, 1};
    for (int i = 0; i < t->ndim; i++)
        d[4 - t->ndim + i] = t->shape[i];
    if (rank == 3 && d[1] != 1)
        return HQ_OK;
    int64_t shape4[4] = {d[0], d[3], d[1], d[2]}, shape3[3] = {1, d[3], d[2]};
    hq_status_t st = rank == 3 ? onnxi_new_tensor(c, t->dtype, 3, shape3, out)
                               : onnxi_new_tensor(c, t->dtype, 4, shape4, out);
    if (st != HQ_OK)
        return st;
    for (int64_t n = 0; n < d[0]; n++)
        for (int64_t h = 0; h < d[1]; h++)
            for (int64_t w = 0; w < d[2]; w++)
                for (int64_t ch = 0; ch < d[3]; ch++) {
                    int64_t from = ((n * d[1] + h) * d[2] + w) * d[3] + ch;
                    int64_t to = ((n * d[3] + ch) * d[1] + h) * d[2] + w;
                    onnxi_put_at(*out, to, onnxi_tensor_at(t, from));
                }
    return HQ_OK;
}

/* Runs the ordinary conversion of an elementwise node on views: the views read as plain layer
 * outputs and the constants rearranged (both only while the node converts), the outputs views.
 * *done = false (nothing done) when a constant cannot be rearranged. */
static hq_status_t elementwise_on_views(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                        const onnxi_node_plan_t *plan, bool *done)
{
    enum { MAX_IN = 8 };
    onnxi_value_t *views[MAX_IN], *consts[MAX_IN];
    hq_tensor_t *saved[MAX_IN];
    int nv = 0, nc = 0;
    hq_status_t st = HQ_OK;
    if (plan->act >= 0) /* a planned activation reads its act_input only */
        views[nv++] = onnxi_value_of(c, plan->act_input);
    /* the views' rank (3: sequences, 4): the constants broadcast against it */
    int rank = 0;
    for (size_t k = 0; k < n->n_input && k < MAX_IN && plan->act < 0; k++) {
        onnxi_value_t *v = n->input[k][0] ? onnxi_value_of(c, n->input[k]) : NULL;
        if (v && v->kind == VALUE_LAYER && v->nhwc) {
            if (rank && rank != onnx_rank(v))
                return HQ_OK; /* a sequence and an image: left to the materialized path */
            rank = onnx_rank(v);
        }
    }
    for (size_t k = 0; k < n->n_input && k < MAX_IN && plan->act < 0; k++) {
        onnxi_value_t *v = n->input[k][0] ? onnxi_value_of(c, n->input[k]) : NULL;
        if (v && v->kind == VALUE_LAYER && v->nhwc)
            views[nv++] = v;
        else if (v && v->kind == VALUE_CONST) {
            hq_tensor_t *moved;
            if ((st = to_nchw_order(c, v->constant, rank, &moved)) != HQ_OK)
                break;
            if (!moved && hq_tensor_count(v->constant) != 1) {
                st = HQ_ERR_UNSUPPORTED; /* left to the materialized path */
                break;
            }
            if (moved) {
                saved[nc] = v->constant;
                consts[nc++] = v;
                v->constant = moved;
            }
        }
    }
    if (st == HQ_OK) {
        for (int k = 0; k < nv; k++)
            views[k]->nhwc = false;
        if (plan->act >= 0) {
            st = onnxi_convert_planned_activation(c, n, plan);
        } else {
            const onnxi_op_t *op = onnxi_find_op(n->op_type);
            st = op && op->convert ? op->convert(c, n) : HQ_ERR_UNSUPPORTED;
        }
        for (int k = 0; k < nv; k++)
            views[k]->nhwc = true;
        if (st == HQ_OK)
            mark_outputs(c, n, true);
        *done = true;
    } else if (st == HQ_ERR_UNSUPPORTED) {
        st = HQ_OK;
    }
    for (int k = 0; k < nc; k++) {
        hq_tensor_destroy(consts[k]->constant);
        consts[k]->constant = saved[k];
    }
    return st;
}

hq_status_t onnxi_convert_nhwc_view(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                    const onnxi_node_plan_t *plan, bool *done)
{
    static const int64_t to_nhwc[4] = {0, 2, 3, 1}, to_nchw[4] = {0, 3, 1, 2}, swap[3] = {0, 2, 1};
    *done = false;
    if (plan->norm_mean) {
        *done = true;
        return convert_planned(c, n, plan);
    }
    /* which inputs are views: all computed ones, some, or none */
    int views = 0, computed = 0;
    for (size_t k = 0; k < n->n_input; k++) {
        onnxi_value_t *v = n->input[k][0] ? onnxi_value_of(c, n->input[k]) : NULL;
        if (v && v->kind == VALUE_LAYER) {
            computed++;
            views += v->nhwc;
        }
    }
    if (plan->act >= 0) { /* a planned activation reads its act_input */
        onnxi_value_t *v = onnxi_value_of(c, plan->act_input);
        computed = v && v->kind == VALUE_LAYER;
        views = computed && v->nhwc;
    }
    onnxi_value_t *x = n->n_input >= 1 && n->input[0][0] ? onnxi_value_of(c, n->input[0]) : NULL;
    const bool transpose = is_op(n, "Transpose", 1) && n->n_output == 1;
    const bool computed_x = x && x->kind == VALUE_LAYER && !x->flat;
    /* [N, C, H, W] -> [N, H, W, C] and [N, C, L] -> [N, L, C] are the layer output as it is */
    if (transpose && views == 0 && computed_x &&
        ((x->rank == 4 && perm_is(n, to_nhwc, 4)) || (x->rank == 3 && perm_is(n, swap, 3)))) {
        hq_status_t st = onnxi_alias_output(c, n, x);
        if (st == HQ_OK)
            onnxi_value_of(c, n->output[0])->nhwc = true;
        *done = true;
        return st;
    }
    if (views == 0 && computed_x && x->rank == 3 && is_op(n, "MatMul", 2)) {
        hq_status_t st = matmul_on_sequence(c, n, x, done);
        if (st != HQ_OK || *done)
            return st;
    }
    if (views == 0)
        return HQ_OK;
    if (transpose && x->nhwc && (x->rank == 3 ? perm_is(n, swap, 3) : perm_is(n, to_nchw, 4))) {
        hq_status_t st = onnxi_alias_output(c, n, x);
        if (st == HQ_OK)
            onnxi_value_of(c, n->output[0])->nhwc = false;
        *done = true;
        return st;
    }
    if (is_op(n, "MatMul", 2) && views == 1 && x->nhwc) {
        hq_status_t st = matmul_on_view(c, n, x, done);
        if (st != HQ_OK || *done)
            return st;
    }
    if (is_op(n, "Reshape", 2) && views == 1 && x->nhwc) {
        hq_status_t st = onnxi_reshape_view(c, n, x, done);
        if (st != HQ_OK || *done)
            return st;
    }
    if (views == computed && (plan->act >= 0 || elementwise_op(n->op_type))) {
        hq_status_t st = elementwise_on_views(c, n, plan, done);
        if (st != HQ_OK || *done)
            return st;
    }
    /* LayerNormalization reads the view itself; Shape reports its ONNX shape */
    if (!strcmp(n->op_type, "LayerNormalization") || !strcmp(n->op_type, "Shape"))
        return HQ_OK;
    for (size_t k = 0; k < n->n_input; k++) {
        onnxi_value_t *v = n->input[k][0] ? onnxi_value_of(c, n->input[k]) : NULL;
        hq_status_t st = v ? onnxi_materialize(c, v) : HQ_OK;
        if (st != HQ_OK)
            return st;
    }
    if (plan->act >= 0)
        return onnxi_materialize(c, onnxi_value_of(c, plan->act_input));
    return HQ_OK;
}
