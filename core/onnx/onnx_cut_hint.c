/* onnx_cut_hint.c — the one-line answer when a node cannot become a layer (NMS, TopK, anchor
 * decoding with Gather/NonZero, a Cast or Round of the image, ...). It names the cut that leaves
 * out every such node, computed from the graph, so that pasting it makes the parse succeed:
 *
 * - data nodes are those reading the network inputs (a Shape's output is a constant again);
 * - a node that cannot be converted after a Conv/ConvTranspose/Gemm/MatMul is post-processing:
 *   it and everything after it go, and --end-node-names lists the last convertible nodes feeding
 *   that region, and the producers of the outputs it does not reach;
 * - one before any of those is preprocessing: it and what feeds it go, and --start-node-names
 *   lists the convertible nodes reading what they produce.
 *
 * A node whose converter refuses the form it has (a rank-5 reshape in a detector's box decode, a
 * cubic resize of the image) gets the same cut, added to its converter's reason when it lies in
 * the post-processing (no weighted node after it) or the preprocessing (a weighted node after
 * it, none before). Only that one node is known to fail there, and the decode of the other
 * heads repeats its form, so the post-processing region also takes, backwards, every node after
 * the body whose tensors only that region reads: the cut lands where the network ends on every
 * path to the outputs. */
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
    FROM_SELF = 32,   /* the node the message is about lies on a path from an input to it */
    NON_POST = 64,    /* read by a data node outside the post-processing region */
};

/* What the graph analysis finds around one node. */
typedef struct cut {
    char start[HQ_ERROR_MESSAGE_MAX]; /* " a b" for --start-node-names, or "" */
    char end[HQ_ERROR_MESSAGE_MAX];   /* " a b" for --end-node-names, or "" */
    bool post;                        /* the node lies in the post-processing region */
    bool pre;                         /* the node lies in the preprocessing region */
    bool body_after;                  /* a weighted node lies in the post-processing region */
    bool weighted_after;              /* a weighted node lies on a path from the node */
    bool start_shapes;                /* the model records the shape of every start tensor */
} cut_t;

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

static bool is_output(const char *const *outputs, int output_count, const char *name)
{
    for (int i = 0; i < output_count; i++)
        if (!strcmp(outputs[i], name))
            return true;
    return false;
}

/* True when the model's value_info gives tensor `name` a static shape of rank 2 to 4: what a
 * --start-node-names cut needs when the nodes before it cannot be converted to learn it. */
static bool shape_recorded(const Onnx__GraphProto *g, const char *name)
{
    for (size_t k = 0; k < g->n_value_info; k++) {
        const Onnx__ValueInfoProto *vi = g->value_info[k];
        if (!vi->name || strcmp(vi->name, name) || !vi->type ||
            vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
            !vi->type->tensor_type->shape)
            continue;
        const Onnx__TensorShapeProto *shape = vi->type->tensor_type->shape;
        bool known = shape->n_dim >= 2 && shape->n_dim <= 4;
        for (size_t d = 1; d < shape->n_dim && known; d++)
            known =
                shape->dim[d]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
                shape->dim[d]->dim_value >= 1;
        return known;
    }
    return false;
}

/* Post-processing grown backwards: a data node after the body, not weighted, whose tensors are
 * read only inside the region (and are not outputs) joins it. One pass from the last node back
 * suffices: every reader of a node comes after it. */
static void grow_post_backwards(onnxi_ctx_t *c, int *flags, unsigned char *role,
                                const char *const *outputs, int output_count)
{
    Onnx__GraphProto *g = c->g;
    for (size_t i = g->n_node; i-- > 0;) {
        const Onnx__NodeProto *m = g->node[i];
        int in = 0;
        for (size_t k = 0; k < m->n_input; k++)
            in |= *flag_of(c, flags, m->input[k]);
        if (!c->node_needed[i] || !(in & DATA) || !strcmp(m->op_type, "Shape"))
            continue;
        if (!role[i] && (in & AFTER_BODY) && !is_weighted(m->op_type)) {
            bool only_post = m->n_output > 0;
            for (size_t k = 0; k < m->n_output && only_post; k++)
                only_post = !(*flag_of(c, flags, m->output[k]) & NON_POST) &&
                            !is_output(outputs, output_count, m->output[k]);
            if (only_post) {
                role[i] |= 2;
                for (size_t k = 0; k < m->n_output; k++)
                    *flag_of(c, flags, m->output[k]) |= POST;
            }
        }
        if (!(role[i] & 2))
            for (size_t k = 0; k < m->n_input; k++)
                *flag_of(c, flags, m->input[k]) |= NON_POST;
    }
}

/* The cut that leaves out node n and every node no layer can take, on the way to `outputs`;
 * `grow` also takes the post-processing that joins n's region (a refusing converter's node). */
static hq_status_t find_cut(onnxi_ctx_t *c, const Onnx__NodeProto *n, const char *const *outputs,
                            int output_count, bool grow, cut_t *cut)
{
    Onnx__GraphProto *g = c->g;
    memset(cut, 0, sizeof *cut);
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
    bool any_pre = false, any_post = false;
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
        int out = DATA | (in & (AFTER_BODY | POST | FROM_SELF));
        if (is_weighted(m->op_type))
            out |= AFTER_BODY;
        if (m == n)
            out |= FROM_SELF;
        if (bad && (in & AFTER_BODY))
            out |= POST;
        if (is_weighted(m->op_type) && (in & FROM_SELF))
            cut->weighted_after = true;
        if (out & POST) {
            role[i] |= 2;
            any_post = true;
            cut->body_after |= is_weighted(m->op_type);
        } else if (bad) {
            role[i] |= 1;
            any_pre = true;
        }
        for (size_t k = 0; k < m->n_output; k++)
            *flag_of(c, flags, m->output[k]) |= out;
    }
    if (grow && any_post && !cut->body_after)
        grow_post_backwards(c, flags, role, outputs, output_count);
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
    cut->start_shapes = true;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *m = g->node[i];
        if (!c->node_needed[i] || role[i])
            continue;
        for (size_t k = 0; k < m->n_input && any_pre; k++)
            if (*flag_of(c, flags, m->input[k]) & MADE_BY_PRE) {
                add_name(c, listed_start, i, cut->start, sizeof cut->start);
                cut->start_shapes &= shape_recorded(g, m->input[k]);
            }
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
                add_name(c, listed_end, (size_t)v->producer, cut->end, sizeof cut->end);
        }
    }
    for (int i = 0; i < output_count && any_post; i++) {
        onnxi_value_t *v = onnxi_value_of(c, outputs[i]);
        if (v && !(flags[v - c->values] & POST) && v->producer >= 0 && !role[v->producer])
            add_name(c, listed_end, (size_t)v->producer, cut->end, sizeof cut->end);
    }
    cut->post = self >= 0 && (role[self] & 2);
    cut->pre = self >= 0 && (role[self] & 1);
    free(flags), free(role), free(listed_end), free(listed_start);
    return HQ_OK;
}

/* "--start-node-names a --end-node-names b" from the cut's lists, in `out`. */
static void cut_options(const cut_t *cut, char *out, size_t size)
{
    snprintf(out, size, "%s%s%s%s", cut->start[0] ? "--start-node-names" : "", cut->start,
             cut->start[0] && cut->end[0] ? " " : "", cut->end[0] ? "--end-node-names" : "");
    size_t len = strlen(out);
    snprintf(out + len, size - len, "%s", cut->end);
}

hq_status_t onnxi_unconvertible_node(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                     const char *const *outputs, int output_count)
{
    cut_t found;
    hq_status_t st = find_cut(c, n, outputs, output_count, false, &found);
    if (st != HQ_OK)
        return st;
    const char *label = onnxi_node_label(n);
    char cut[2 * HQ_ERROR_MESSAGE_MAX];
    cut_options(&found, cut, sizeof cut);
    if (!cut[0]) /* nothing convertible on either side of it */
        return hqi_error(c->err, HQ_ERR_UNSUPPORTED,
                         "%s: node '%s' (%s) is not supported; it reads the network input "
                         "directly and feeds the output, so there is no node to cut the graph at",
                         c->name, label, n->op_type);
    if (found.post && found.body_after) /* convertible layers after it would be cut off too */
        return hqi_error(c->err, HQ_ERR_UNSUPPORTED,
                         "%s: node '%s' (%s) is not supported; cut the graph before it with %s",
                         c->name, label, n->op_type, cut);
    return hqi_error(c->err, HQ_ERR_UNSUPPORTED,
                     "%s: node '%s' (%s) is %s hq cannot convert; %s %s", c->name, label,
                     n->op_type, found.post ? "post-processing" : "preprocessing",
                     found.post ? "cut before it with" : "start after it with", cut);
}

hq_status_t onnxi_refused_node_cut(onnxi_ctx_t *c, const Onnx__NodeProto *n,
                                   const char *const *outputs, int output_count, hq_status_t st)
{
    if (st != HQ_ERR_UNSUPPORTED || !c->err || c->shapes_only || !convertible(n))
        return st;
    hq_error_t reason = *c->err;
    cut_t found;
    if (find_cut(c, n, outputs, output_count, true, &found) != HQ_OK) {
        *c->err = reason; /* no memory for the hint: the converter's reason stands */
        return st;
    }
    bool post = found.post && !found.body_after && found.end[0];
    /* the start cut learns its tensors' shapes by converting what lies before it, which this
     * node stops, so only a model that records them can take it */
    bool pre = found.pre && found.weighted_after && found.start[0] && found.start_shapes;
    if (!post && !pre)
        return st;
    char cut[2 * HQ_ERROR_MESSAGE_MAX], prefix[HQ_ERROR_MESSAGE_MAX];
    cut_options(&found, cut, sizeof cut);
    const char *label = onnxi_node_label(n);
    /* the reason names the node already, or the hint names it */
    int len = snprintf(prefix, sizeof prefix, "%s: node '%s' (%s)", c->name, label, n->op_type);
    bool named =
        len > 0 && (size_t)len < sizeof prefix && !strncmp(reason.message, prefix, (size_t)len);
    char line[HQ_ERROR_MESSAGE_MAX];
    len = snprintf(line, sizeof line, "%s; %s%s%s is %s: %s %s", reason.message,
                   named ? "it" : "node '", named ? "" : label, named ? "" : "'",
                   post ? "post-processing" : "preprocessing",
                   post ? "cut before it with" : "start after it with", cut);
    if (len < 0 || (size_t)len >= sizeof line) /* a truncated list would not parse: no hint */
        return st;
    return hqi_error(c->err, st, "%s", line);
}
