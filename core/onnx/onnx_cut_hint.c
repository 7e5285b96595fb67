/* onnx_cut_hint.c — the one-line answer when a node cannot become a layer (NMS, TopK, anchor
 * decoding with Gather/NonZero, a Cast or Round of the image, ...). It names the cut that leaves
 * out every such node, computed from the graph, so that pasting it makes the parse succeed:
 *
 * - data nodes are those reading the network inputs (a Shape's output is a constant again);
 * - a node that cannot be converted after a Conv/ConvTranspose/Gemm/MatMul is post-processing:
 *   it and everything after it go, and --end-node-names lists the last convertible nodes feeding
 *   that region, and the producers of the outputs it does not reach;
 * - one before any of those is preprocessing: it and what feeds it go, and --start-node-names
 *   lists the convertible nodes reading what they produce. */
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_internal.h"

/* Per value of the value table. */
enum {
    DATA = 1,         /* computed from a network input */
    AFTER_BODY = 2,   /* a weighted node (conv, gemm) lies on a path from an input to it */
    POST = 4,         /* produced inside the post-processing region */
    READ_BY_PRE = 8,  /* read by the preprocessing region */
    MADE_BY_PRE = 16, /* produced inside the preprocessing region */
};

static bool is_weighted(const char *op)
{
    return !strcmp(op, "Conv") || !strcmp(op, "ConvTranspose") || !strcmp(op, "Gemm") ||
           !strcmp(op, "MatMul");
}

static bool convertible(const Onnx__NodeProto *n)
{
    const onnxi_op_t *row = onnxi_find_op(n->op_type);
    return row && row->convert && (strcmp(n->op_type, "Cast") || onnxi_cast_to_float(n));
}

static int *flag_of(onnxi_ctx_t *c, int *flags, const char *name)
{
    static int none;
    onnxi_value_t *v = name[0] ? onnxi_value_of(c, name) : NULL;
    none = 0;
    return v ? &flags[v - c->values] : &none;
}

/* Appends " <label>" of node i to `list` unless it is there already. */
static void add_name(const onnxi_ctx_t *c, bool *listed, size_t i, char *list, size_t size)
{
    if (listed[i])
        return;
    listed[i] = true;
    size_t len = strlen(list);
    snprintf(list + len, size - len, " %s", onnxi_node_label(c->g->node[i]));
}

hq_status_t onnxi_unconvertible_node(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                     const char *const *outputs, int output_count)
{
    Onnx__GraphProto *g = c->g;
    int *flags = calloc((size_t)c->value_count + 1, sizeof *flags);
    unsigned char *role = calloc(g->n_node + 1, 1); /* 1 pre-bad, 2 post, 4 pre zone */
    bool *listed_end = calloc(g->n_node + 1, sizeof *listed_end);
    bool *listed_start = calloc(g->n_node + 1, sizeof *listed_start);
    if (!flags || !role || !listed_end || !listed_start) {
        free(flags), free(role), free(listed_end), free(listed_start);
        return hqi_nomem(c->err, c->name);
    }
    for (int i = 0; i < c->value_count; i++) {
        const onnxi_value_t *v = &c->values[i];
        if (v->kind == VALUE_LAYER || (v->kind == VALUE_UNKNOWN && v->producer < 0))
            flags[i] = DATA; /* an input layer, a converted tensor, a graph input */
    }
    bool any_pre = false, any_post = false, body_after = false;
    int self = -1;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *m = g->node[i];
        if (m == n)
            self = (int)i;
        if (!c->node_needed[i])
            continue;
        int in = 0;
        for (size_t k = 0; k < m->n_input; k++)
            in |= *flag_of(c, flags, m->input[k]);
        if (!(in & DATA) || !strcmp(m->op_type, "Shape"))
            continue;
        bool bad = m == n || (!convertible(m) && !c->plans[i].channels_last);
        int out = DATA | (in & (AFTER_BODY | POST));
        if (is_weighted(m->op_type))
            out |= AFTER_BODY;
        if (bad && (in & AFTER_BODY))
            out |= POST;
        if (out & POST) {
            role[i] |= 2;
            any_post = true;
            body_after |= is_weighted(m->op_type);
        } else if (bad) {
            role[i] |= 1;
            any_pre = true;
        }
        for (size_t k = 0; k < m->n_output; k++)
            *flag_of(c, flags, m->output[k]) |= out;
    }
    /* the preprocessing zone: the bad nodes before the body and every data node feeding them */
    for (size_t i = g->n_node; any_pre && i-- > 0;) {
        const Onnx__NodeProto *m = g->node[i];
        bool zone = role[i] & 1;
        for (size_t k = 0; k < m->n_output; k++)
            zone |= (*flag_of(c, flags, m->output[k]) & READ_BY_PRE) != 0;
        if (!zone || !c->node_needed[i])
            continue;
        role[i] |= 4;
        for (size_t k = 0; k < m->n_input; k++)
            *flag_of(c, flags, m->input[k]) |= READ_BY_PRE;
        for (size_t k = 0; k < m->n_output; k++)
            *flag_of(c, flags, m->output[k]) |= MADE_BY_PRE;
    }
    char start[HQ_ERROR_MESSAGE_MAX] = "", end[HQ_ERROR_MESSAGE_MAX] = "";
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *m = g->node[i];
        if (!c->node_needed[i] || role[i])
            continue;
        for (size_t k = 0; k < m->n_input && any_pre; k++)
            if (*flag_of(c, flags, m->input[k]) & MADE_BY_PRE)
                add_name(c, listed_start, i, start, sizeof start);
    }
    /* the end cut: convertible producers of what the post region reads, and of the outputs
     * it does not reach (an --end-node-names cut keeps only the outputs it names) */
    for (size_t i = 0; i < g->n_node && any_post; i++) {
        const Onnx__NodeProto *m = g->node[i];
        if (!c->node_needed[i] || !(role[i] & 2))
            continue;
        for (size_t k = 0; k < m->n_input; k++) {
            onnxi_value_t *v = m->input[k][0] ? onnxi_value_of(c, m->input[k]) : NULL;
            int f = v ? flags[v - c->values] : 0;
            if (v && (f & DATA) && !(f & POST) && v->producer >= 0 && !role[v->producer])
                add_name(c, listed_end, (size_t)v->producer, end, sizeof end);
        }
    }
    for (int i = 0; i < output_count && any_post; i++) {
        onnxi_value_t *v = onnxi_value_of(c, outputs[i]);
        if (v && !(flags[v - c->values] & POST) && v->producer >= 0 && !role[v->producer])
            add_name(c, listed_end, (size_t)v->producer, end, sizeof end);
    }
    bool post = self >= 0 && (role[self] & 2);
    free(flags), free(role), free(listed_end), free(listed_start);
    const char *label = onnxi_node_label(n);
    char cut[2 * HQ_ERROR_MESSAGE_MAX];
    snprintf(cut, sizeof cut, "%s%s%s%s", start[0] ? "--start-node-names" : "", start,
             start[0] && end[0] ? " " : "", end[0] ? "--end-node-names" : "");
    size_t len = strlen(cut);
    snprintf(cut + len, sizeof cut - len, "%s", end);
    if (!cut[0]) /* nothing convertible on either side of it */
        return hqi_error(c->err, HQ_ERR_UNSUPPORTED,
                         "%s: node '%s' (%s) is not supported; it reads the network input "
                         "directly and feeds the output, so there is no node to cut the graph at",
                         c->name, label, n->op_type);
    if (post && body_after) /* convertible layers after it would be cut off too */
        return hqi_error(c->err, HQ_ERR_UNSUPPORTED,
                         "%s: node '%s' (%s) is not supported; cut the graph before it with %s",
                         c->name, label, n->op_type, cut);
    return hqi_error(c->err, HQ_ERR_UNSUPPORTED, "%s: node '%s' (%s) is %s hq cannot convert; %s %s",
                     c->name, label, n->op_type, post ? "post-processing" : "preprocessing",
                     post ? "cut before it with" : "start after it with", cut);
}
