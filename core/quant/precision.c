/* precision.c — per-layer bit widths for `hq optimize`: precision-mode names, and the propagation
 * rules of docs/numerics.md (pass-through layers output what they receive).
 *
 * Model: every tensor (a layer's output, all pieces of a splitter alike) has one width, 8 or 16
 * bit. A layer that "outputs what it receives" (pass-through: concat, feature_splitter, ew_add,
 * pools, resize, slice, ...) ties its inputs and its output into one group of tensors that must
 * share a width. Every other layer reads its inputs at one width and writes its own output width.
 * A request (quantization_param precision_mode) fixes the width of the group of the layer's inputs
 * (a{in}) and of its output (a{out}); unrequested groups are 8 bit unless a 16-bit request
 * touches them, and a group with both an 8- and a 16-bit request is a contradiction. Union-find
 * gives the groups; a breadth-first search inside a group names the chain of layers in messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/layer_types.h"
#include "quant/precision.h"
#include "util/util.h"

static bool read_bits(const char **s, char letter, int *bits)
{
    if (**s != letter)
        return false;
    (*s)++;
    char *end = NULL;
    long v = strtol(*s, &end, 10);
    if (end == *s || v < 1 || v > 64)
        return false;
    *bits = (int)v;
    *s = end;
    return true;
}

hq_status_t hqi_precision_parse(const char *mode, hqi_precision_request_t *out)
{
    memset(out, 0, sizeof *out);
    const char *s = mode;
    int in = 0, w = 0, o = 0;
    bool ok = mode && strlen(mode) < sizeof out->mode && read_bits(&s, 'a', &in) && *s++ == '_' &&
              read_bits(&s, 'w', &w);
    if (ok && *s == '_') {
        s++;
        ok = read_bits(&s, 'a', &o);
    } else {
        o = in;
    }
    ok = ok && *s == '\0' && (in == 8 || in == 16) && (o == 8 || o == 16) &&
         (w == 4 || w == 8 || w == 16);
    if (!ok)
        return HQ_ERR_INVALID;
    out->in_bits = in;
    out->weight_bits = w;
    out->out_bits = o;
    snprintf(out->mode, sizeof out->mode, "%s", mode);
    return HQ_OK;
}

void hqi_precision_name(int in_bits, int weight_bits, int out_bits, char name[16])
{
    int w = weight_bits > 0 ? weight_bits : in_bits;
    if (in_bits == out_bits)
        snprintf(name, 16, "a%d_w%d", in_bits, w);
    else
        snprintf(name, 16, "a%d_w%d_a%d", in_bits, w, out_bits);
}

/* ---- groups ------------------------------------------------------------------------------- */

static int find(int *parent, int x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

static void unite(int *parent, int a, int b)
{
    a = find(parent, a);
    b = find(parent, b);
    if (a != b)
        parent[a] = b;
}

/* Who fixed a group's width, for messages. */
typedef struct source {
    int bits;   /* 0: nobody */
    int layer;  /* the requesting layer */
    bool input; /* the request was on its inputs (a{in}) rather than its output */
    int tensor; /* the tensor (producing layer) of the group the request touched */
} source_t;

/* The chain of layers from tensor `from` to tensor `to` inside one group, through pass-through
 * layers, as "a -> b -> c" (the producing layers of the tensors on the path). */
static void chain_text(const hq_graph_t *graph, int from, int to, char *buf, size_t size)
{
    int n = hq_graph_layer_count(graph);
    int *prev = malloc(sizeof(int) * (size_t)n);
    int *queue = malloc(sizeof(int) * (size_t)n);
    buf[0] = '\0';
    if (!prev || !queue) {
        free(prev);
        free(queue);
        return;
    }
    for (int i = 0; i < n; i++)
        prev[i] = -2;
    int head = 0, tail = 0;
    queue[tail++] = from;
    prev[from] = -1;
    while (head < tail && prev[to] == -2) {
        int t = queue[head++];
        const hq_layer_t *l = hq_graph_layer(graph, t);
        /* neighbours: producers of a pass-through t, and pass-through consumers of t */
        if (hqi_layer_traits(l->type)->passes_precision)
            for (int i = 0; i < l->input_count; i++)
                if (prev[l->inputs[i]] == -2) {
                    prev[l->inputs[i]] = t;
                    queue[tail++] = l->inputs[i];
                }
        for (int i = 0; i < l->output_count; i++) {
            int c = l->outputs[i];
            if (hqi_layer_traits(hq_graph_layer(graph, c)->type)->passes_precision &&
                prev[c] == -2) {
                prev[c] = t;
                queue[tail++] = c;
            }
        }
    }
    /* walk back from `to`, then print forwards */
    int len = 0;
    for (int t = to; t >= 0 && prev[t] != -2; t = prev[t])
        queue[len++] = t;
    size_t used = 0;
    for (int i = len - 1; i >= 0 && used < size; i--)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i == len - 1 ? "" : " -> ",
                                 hq_graph_layer(graph, queue[i])->bare_name);
    free(prev);
    free(queue);
}

/* "conv3 (a16_w16, line 4)" */
static void describe(const hq_graph_t *graph, const hqi_precision_request_t *requests,
                     const source_t *s, char *buf, size_t size)
{
    const hqi_precision_request_t *r = &requests[s->layer];
    snprintf(buf, size, "%s (%s, line %d)", hq_graph_layer(graph, s->layer)->bare_name, r->mode,
             r->line);
}

/* A whole chain from the requesting layer a to the requesting layer b. */
static int topo_position(const hq_graph_t *graph, int layer)
{
    int count = 0;
    const int *order = hq_graph_topo_order(graph, &count);
    for (int i = 0; order && i < count; i++)
        if (order[i] == layer)
            return i;
    return layer;
}

static void full_chain(const hq_graph_t *graph, const source_t *a, const source_t *b, char *buf,
                       size_t size)
{
    if (topo_position(graph, a->layer) > topo_position(graph, b->layer)) {
        /* print in the direction data flows */
        const source_t *t = a;
        a = b;
        b = t;
    }
    char mid[768];
    chain_text(graph, a->tensor, b->tensor, mid, sizeof mid);
    const char *an = hq_graph_layer(graph, a->layer)->bare_name;
    const char *bn = hq_graph_layer(graph, b->layer)->bare_name;
    /* the path names producing layers; the requesting readers are added at the ends */
    snprintf(buf, size, "%s%s%s%s%s", a->input ? an : "", a->input ? " -> " : "", mid,
             b->input ? " -> " : "", b->input ? bn : "");
}

static hq_status_t constrain(const hq_graph_t *graph, const hqi_precision_request_t *requests,
                             int *parent, source_t *sources, int tensor, int bits, int layer,
                             bool input, hq_error_t *err)
{
    int g = find(parent, tensor);
    source_t here = {bits, layer, input, tensor};
    if (!sources[g].bits) {
        sources[g] = here;
        return HQ_OK;
    }
    if (sources[g].bits == bits)
        return HQ_OK;
    const source_t *low = sources[g].bits < bits ? &sources[g] : &here;
    const source_t *high = sources[g].bits < bits ? &here : &sources[g];
    char a[160], b[160], chain[1024];
    describe(graph, requests, low, a, sizeof a);
    describe(graph, requests, high, b, sizeof b);
    full_chain(graph, low, high, chain, sizeof chain);
    return hqi_error(err, HQ_ERR_INVALID,
                     "precision_mode: contradiction: %s needs 8-bit %s but %s needs 16-bit %s on "
                     "the same tensor through %s; change one of the requests (e.g. a8_w8_a16 or "
                     "a16_w16_a8 at a boundary)",
                     a, low->input ? "input" : "output", b, high->input ? "input" : "output",
                     chain);
}

hq_status_t hqi_precision_propagate(const hq_graph_t *graph,
                                    const hqi_precision_request_t *requests,
                                    hqi_layer_quant_t *decisions, const hqi_logger_t *logger,
                                    hq_error_t *err)
{
    int n = hq_graph_layer_count(graph);
    int *parent = malloc(sizeof(int) * (size_t)(n ? n : 1));
    source_t *sources = calloc((size_t)(n ? n : 1), sizeof *sources);
    if (!parent || !sources) {
        free(parent);
        free(sources);
        return hqi_nomem(err, "precision");
    }
    for (int i = 0; i < n; i++)
        parent[i] = i;
    for (int i = 0; i < n; i++) {
        const hq_layer_t *l = hq_graph_layer(graph, i);
        if (hqi_layer_traits(l->type)->passes_precision)
            for (int k = 0; k < l->input_count; k++)
                unite(parent, i, l->inputs[k]);
    }
    hq_status_t st = HQ_OK;
    for (int i = 0; i < n && st == HQ_OK; i++) {
        const hqi_precision_request_t *r = &requests[i];
        if (!r->in_bits)
            continue;
        const hq_layer_t *l = hq_graph_layer(graph, i);
        if (hqi_layer_traits(l->type)->passes_precision && r->in_bits != r->out_bits) {
            st = hqi_error(err, HQ_ERR_INVALID,
                           "precision_mode: line %d: %s is a %s, which outputs what it receives: "
                           "it cannot turn %d-bit input into %d-bit output (%s)",
                           r->line, l->bare_name, hq_layer_type_name(l->type), r->in_bits,
                           r->out_bits, r->mode);
            break;
        }
        if (r->weight_bits != 8 && !hqi_layer_traits(l->type)->has_weights &&
            l->type != HQ_LAYER_INPUT && r->weight_bits != r->in_bits)
            hqi_logf(logger, HQ_LOG_WARNING,
                     "%s has no weights: the w%d of %s (line %d) is ignored", l->bare_name,
                     r->weight_bits, r->mode, r->line);
        for (int k = 0; k < l->input_count && st == HQ_OK; k++)
            st =
                constrain(graph, requests, parent, sources, l->inputs[k], r->in_bits, i, true, err);
        if (st == HQ_OK)
            st = constrain(graph, requests, parent, sources, i, r->out_bits, i, false, err);
    }
    for (int i = 0; i < n && st == HQ_OK; i++) {
        const hq_layer_t *l = hq_graph_layer(graph, i);
        hqi_layer_quant_t *d = &decisions[i];
        int out = sources[find(parent, i)].bits;
        d->output_bits = out ? out : 8;
        if (l->type == HQ_LAYER_INPUT || l->input_count == 0) {
            d->input_bits = d->output_bits;
        } else {
            d->input_bits = 8;
            for (int k = 0; k < l->input_count; k++) {
                int b = sources[find(parent, l->inputs[k])].bits;
                if (b > d->input_bits)
                    d->input_bits = b;
            }
        }
        const hqi_precision_request_t *r = &requests[i];
        if (!hqi_layer_traits(l->type)->has_weights)
            d->weight_bits = 0;
        else if (r->in_bits)
            d->weight_bits = r->weight_bits;
        else
            d->weight_bits = d->input_bits == 16 ? 16 : 8;
        if (r->in_bits || (d->input_bits == 8 && d->output_bits == 8))
            continue;
        /* raised: say which request reached it and through which layers */
        const source_t *s = &sources[find(parent, d->output_bits == 16 ? i : l->inputs[0])];
        if (d->output_bits != 16)
            for (int k = 0; k < l->input_count; k++)
                if (sources[find(parent, l->inputs[k])].bits == 16)
                    s = &sources[find(parent, l->inputs[k])];
        char mode[16], who[160], chain[1024];
        hqi_precision_name(d->input_bits, d->weight_bits, d->output_bits, mode);
        describe(graph, requests, s, who, sizeof who);
        source_t self = {16, i, d->output_bits != 16, d->output_bits == 16 ? i : l->inputs[0]};
        if (self.input)
            for (int k = 0; k < l->input_count; k++)
                if (sources[find(parent, l->inputs[k])].bits == 16)
                    self.tensor = l->inputs[k];
        full_chain(graph, s, &self, chain, sizeof chain);
        const char *why = hqi_layer_traits(l->type)->passes_precision
                              ? "it outputs what it receives, and 16 bit comes from"
                          : self.input ? "it reads a 16-bit tensor because of"
                                       : "its output is read at 16 bit because of";
        hqi_logf(logger, HQ_LOG_INFO, "%s raised to %s: %s %s (chain: %s)", l->bare_name, mode, why,
                 who, chain);
    }
    free(parent);
    free(sources);
    return st;
}
