/* split.c — pre-activation taps for a statistics pass: the graph clone in which conv-like layers
 * have their activation split off (stats.h), and which statistic each tap of it feeds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/layer_types.h"
#include "stats/stats.h"
#include "util/util.h"

#define SPLIT_SUFFIX "__hq_preact_act"

bool hqi_stats_has_preact(hq_layer_type_t type)
{
    return hqi_layer_traits(type)->has_weights;
}

/* The activation can move into a layer of its own: a prelu cannot, its slope tensor is keyed by
 * this layer's name; a layer nobody consumes has no edge to insert the new layer into. */
static bool splittable(const hq_layer_t *layer)
{
    return hqi_stats_has_preact(layer->type) && layer->params.activation != HQ_ACT_LINEAR &&
           layer->params.activation != HQ_ACT_PRELU && layer->output_count > 0;
}

void hqi_stats_split_free(hqi_stats_split_t *s)
{
    if (!s)
        return;
    hq_graph_destroy(s->graph);
    free(s->origin);
    free(s->split);
    memset(s, 0, sizeof *s);
}

hq_status_t hqi_stats_split_activations(const hq_graph_t *graph, hqi_stats_split_t *s,
                                        hq_error_t *err)
{
    memset(s, 0, sizeof *s);
    int n = hq_graph_layer_count(graph);
    s->original_count = n;
    hq_status_t st = hq_graph_clone(graph, &s->graph, err);
    if (st != HQ_OK)
        return st;
    s->split = calloc((size_t)n + 1, sizeof *s->split);
    if (!s->split)
        st = hqi_nomem(err, "pre-activation graph");
    for (int i = 0; i < n && st == HQ_OK; i++) {
        const hq_layer_t *l = hq_graph_layer(graph, i);
        if (!splittable(l))
            continue;
        char name[512];
        snprintf(name, sizeof name, "%s" SPLIT_SUFFIX, l->bare_name);
        int a = -1;
        st = hq_graph_add_layer(s->graph, name, HQ_LAYER_ACTIVATION, &a, err);
        if (st != HQ_OK)
            break;
        hq_layer_t *act = hq_graph_layer_mut(s->graph, a);
        hq_layer_t *conv = hq_graph_layer_mut(s->graph, i);
        act->params.activation = conv->params.activation;
        act->params.activation_alpha = conv->params.activation_alpha;
        act->params.activation_beta = conv->params.activation_beta;
        conv->params.activation = HQ_ACT_LINEAR;
        st = hq_graph_insert_after(s->graph, i, a, err);
        s->split[i] = true;
    }
    if (st == HQ_OK)
        st = hq_graph_finalize(s->graph, "pre-activation graph", err);
    int total = st == HQ_OK ? hq_graph_layer_count(s->graph) : 0;
    if (st == HQ_OK && !(s->origin = malloc(sizeof(int) * (size_t)(total ? total : 1))))
        st = hqi_nomem(err, "pre-activation graph");
    for (int i = 0; i < total && st == HQ_OK; i++) {
        /* an appended activation layer reports the output of the layer it follows */
        const hq_layer_t *l = hq_graph_layer(s->graph, i);
        s->origin[i] = i < n ? i : l->input_count ? l->inputs[0] : -1;
    }
    if (st != HQ_OK)
        hqi_stats_split_free(s);
    return st;
}

unsigned hqi_stats_tap_kind(const hqi_stats_split_t *s, int layer, int *original)
{
    *original = -1;
    if (layer < 0 || layer >= hq_graph_layer_count(s->graph))
        return 0;
    *original = s->origin[layer];
    if (*original < 0)
        return 0;
    if (layer >= s->original_count)
        return HQI_STATS_TAP_OUTPUT;
    if (s->split[layer])
        return HQI_STATS_TAP_PREACT;
    /* linear (or prelu, kept fused): the output stands for the pre-activation */
    return HQI_STATS_TAP_OUTPUT |
           (hqi_stats_has_preact(hq_graph_layer(s->graph, layer)->type) ? HQI_STATS_TAP_PREACT
                                                                          : 0);
}
