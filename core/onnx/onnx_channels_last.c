/* onnx_channels_last.c — models exported from channels-last frameworks (TensorFlow, Keras,
 * TFLite through tf2onnx, or a PyTorch module that permutes inside): an input [N, H, W, C] that
 * reaches the network only through a Transpose to NCHW (or, for C = 1, a Reshape to
 * [N, 1, H, W]), possibly after elementwise preprocessing by constants, is an NHWC input of the
 * archive, and an output made by a final Transpose from NCHW to NHWC is the NHWC tensor before
 * it. The transposes vanish. docs/onnx.md ("Channels-last inputs and outputs") states the rule. */
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_internal.h"

/* Longest chain of preprocessing nodes between an input and its transpose. */
#define MAX_PREPROCESS_DEPTH 16

static const int64_t to_nchw[4] = {0, 3, 1, 2}, to_nhwc[4] = {0, 2, 3, 1};

static bool is_perm(const Onnx__NodeProto *n, const int64_t *want)
{
    int k;
    const int64_t *perm = onnxi_attr_ints(n, "perm", &k);
    return k == 4 && !memcmp(perm, want, 4 * sizeof *perm);
}

/* True when the constant Reshape target of node n turns the 4-D `in` into exactly `want`. */
static bool reshapes_to(onnxi_ctx_t *c, const Onnx__NodeProto *n, const int64_t *in,
                        const int64_t *want)
{
    onnxi_value_t *t = n->n_input == 2 && n->input[1][0] ? onnxi_value_of(c, n->input[1]) : NULL;
    if (!t || t->kind != VALUE_CONST || hq_tensor_count(t->constant) != 4 ||
        onnxi_attr_int(n, "allowzero", 0))
        return false;
    int64_t out[4], known = 1, in_count = in[0] * in[1] * in[2] * in[3];
    int infer = -1;
    for (int i = 0; i < 4; i++) {
        out[i] = onnxi_tensor_int_at(t->constant, i);
        if (out[i] == 0)
            out[i] = in[i];
        if (out[i] == -1 && infer < 0)
            infer = i;
        else if (out[i] < 1)
            return false;
        else
            known *= out[i];
    }
    if (infer >= 0)
        out[infer] = known > 0 && in_count % known == 0 ? in_count / known : -1;
    return !memcmp(out, want, sizeof out);
}

/* Reads of value v by needed nodes (one per input slot, as `uses` counts them). */
static int reads_of(onnxi_ctx_t *c, const onnxi_value_t *v)
{
    int reads = 0;
    for (size_t i = 0; i < c->g->n_node; i++) {
        if (!c->node_needed[i])
            continue;
        const Onnx__NodeProto *n = c->g->node[i];
        for (size_t k = 0; k < n->n_input; k++)
            reads += n->input[k][0] && !strcmp(n->input[k], v->name);
    }
    return reads;
}

/* True when constant t broadcasts against [1, H, W, C] (`nhwc`) without growing it. */
static bool broadcasts_into(const hq_tensor_t *t, const int64_t *nhwc)
{
    if (t->ndim > 4)
        return false;
    for (int i = 0; i < t->ndim; i++) {
        int64_t d = t->shape[i], want = nhwc[i + 4 - t->ndim];
        if (d != 1 && d != want)
            return false;
    }
    return true;
}

/* Checks (mark = false) or plans (mark = true) the reads of value `name`, an NHWC tensor of
 * shape `nhwc`: every path must end in a transpose to NCHW. */
static bool walk(onnxi_ctx_t *c, const char *name, const int64_t *nhwc, int depth, bool mark)
{
    onnxi_value_t *v = onnxi_value_of(c, name);
    int reads = v ? reads_of(c, v) : 0;
    /* a graph output (or a cut tensor) is read as it is: it must stay NHWC in ONNX's sense */
    if (!reads || v->uses != reads || depth > MAX_PREPROCESS_DEPTH)
        return false;
    const int64_t nchw[4] = {nhwc[0], nhwc[3], nhwc[1], nhwc[2]};
    for (size_t i = 0; i < c->g->n_node; i++) {
        const Onnx__NodeProto *n = c->g->node[i];
        int here = 0;
        for (size_t k = 0; k < n->n_input; k++)
            here += n->input[k][0] && !strcmp(n->input[k], name);
        if (!c->node_needed[i] || !here)
            continue;
        onnxi_node_plan_t *p = &c->plans[i];
        if (p->skip || p->act >= 0 || here != 1 || n->n_output != 1 || !n->output[0][0])
            return false;
        const char *op = n->op_type;
        int role;
        if (!strcmp(op, "Transpose") && is_perm(n, to_nchw))
            role = ONNXI_CL_TO_NCHW;
        else if (!strcmp(op, "Reshape") && !strcmp(n->input[0], name) && nhwc[3] == 1 &&
                 reshapes_to(c, n, nhwc, nchw))
            role = ONNXI_CL_TO_NCHW;
        else if (!strcmp(op, "Cast") && onnxi_attr_int(n, "to", 0) == 1 /* FLOAT */)
            role = ONNXI_CL_PREPROCESS;
        else if (!strcmp(op, "Mul") || !strcmp(op, "Add") || !strcmp(op, "Sub") ||
                 !strcmp(op, "Div")) {
            if (n->n_input != 2 || !n->input[0][0] || !n->input[1][0])
                return false;
            onnxi_value_t *k = onnxi_value_of(c, n->input[!strcmp(n->input[0], name)]);
            if (!k || k->kind != VALUE_CONST || !broadcasts_into(k->constant, nhwc))
                return false;
            role = ONNXI_CL_PREPROCESS;
        } else {
            return false;
        }
        if (mark)
            p->channels_last = role;
        if (role == ONNXI_CL_PREPROCESS && !walk(c, n->output[0], nhwc, depth + 1, mark))
            return false;
    }
    return true;
}

bool onnxi_plan_channels_last_input(onnxi_ctx_t *c, const char *name, int rank, int64_t dims[4])
{
    if (rank != 4 || !walk(c, name, dims, 0, false))
        return false;
    walk(c, name, dims, 0, true);
    const int64_t nhwc[4] = {dims[0], dims[1], dims[2], dims[3]};
    for (int i = 0; i < 4; i++) /* the ONNX tensor the network sees: [N, C, H, W] */
        dims[i] = nhwc[to_nchw[i]];
    return true;
}

void onnxi_plan_channels_last_outputs(onnxi_ctx_t *c, const char *const *outputs, int count)
{
    for (int i = 0; i < count; i++) {
        onnxi_value_t *v = onnxi_value_of(c, outputs[i]);
        if (!v || v->producer < 0 || !c->node_needed[v->producer] || v->uses != 1 ||
            reads_of(c, v))
            continue;
        const Onnx__NodeProto *n = c->g->node[v->producer];
        onnxi_node_plan_t *p = &c->plans[v->producer];
        if (p->skip || p->act >= 0 || p->channels_last || n->n_output != 1)
            continue;
        if ((!strcmp(n->op_type, "Transpose") && is_perm(n, to_nhwc)) ||
            !strcmp(n->op_type, "Reshape"))
            p->channels_last = ONNXI_CL_TO_NHWC_OUTPUT;
    }
}

/* A copy of the constant operand k (broadcasting against [N, H, W, C]) that broadcasts the same
 * way against [N, C, H, W]. */
static hq_status_t constant_to_nchw(onnxi_ctx_t *c, const hq_tensor_t *k, hq_tensor_t **out)
{
    int64_t d[4] = {1, 1, 1, 1};
    for (int i = 0; i < k->ndim; i++)
        d[i + 4 - k->ndim] = k->shape[i];
    const int64_t shape[4] = {d[0], d[3], d[1], d[2]};
    hq_status_t st = onnxi_new_tensor(c, k->dtype, 4, shape, out);
    if (st != HQ_OK)
        return st;
    for (int64_t b = 0; b < d[0]; b++)
        for (int64_t y = 0; y < d[1]; y++)
            for (int64_t x = 0; x < d[2]; x++)
                for (int64_t ch = 0; ch < d[3]; ch++)
                    onnxi_put_at(*out, ((b * d[3] + ch) * d[1] + y) * d[2] + x,
                                 onnxi_tensor_at(k, ((b * d[1] + y) * d[2] + x) * d[3] + ch));
    return HQ_OK;
}

hq_status_t onnxi_convert_channels_last(onnxi_ctx_t *c, const Onnx__NodeProto *n, int role,
                                        bool *done)
{
    *done = true;
    onnxi_value_t *x;
    hq_status_t st = onnxi_node_input(c, n, 0, &x);
    if (st != HQ_OK)
        return st;
    if (role == ONNXI_CL_TO_NHWC_OUTPUT) {
        /* the output is the NHWC tensor before the transpose: [N, C, H, W] held as hq's
         * [N, H, W, C] is already that; a Reshape qualifies only for C = 1 */
        int rank;
        int64_t dims[4];
        bool vanishes = x && x->kind == VALUE_LAYER && !x->flat && x->rank == 4;
        if (vanishes && !strcmp(n->op_type, "Reshape")) {
            if ((st = onnxi_onnx_shape_of(c, x, &rank, dims)) != HQ_OK)
                return st;
            const int64_t nhwc[4] = {dims[0], dims[2], dims[3], dims[1]};
            vanishes = dims[1] == 1 && reshapes_to(c, n, dims, nhwc);
        }
        if (!vanishes) {
            *done = false;
            return HQ_OK;
        }
        return onnxi_alias_output(c, n, x);
    }
    if (!x || x->kind != VALUE_LAYER || x->rank != 4)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "channels-last input lost its layer");
    if (role == ONNXI_CL_TO_NCHW || !strcmp(n->op_type, "Cast"))
        return onnxi_alias_output(c, n, x);
    /* Mul/Add/Sub/Div by a constant: the same op on the NCHW tensor, with the constant moved
     * to NCHW for the duration of the conversion */
    onnxi_value_t *k = NULL;
    for (size_t i = 0; i < 2 && !k; i++) {
        onnxi_value_t *v = onnxi_value_of(c, n->input[i]);
        if (v && v->kind == VALUE_CONST)
            k = v;
    }
    if (!k)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "channels-last preprocessing lost its constant");
    hq_tensor_t *nchw, *nhwc = k->constant;
    if ((st = constant_to_nchw(c, nhwc, &nchw)) != HQ_OK)
        return st;
    k->constant = nchw;
    st = onnxi_find_op(n->op_type)->convert(c, n);
    k->constant = nhwc;
    hq_tensor_destroy(nchw);
    return st;
}
