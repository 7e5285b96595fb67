/* compression.c — which layers get 4-bit weights.
 *
 * model_optimization_flavor(compression_level=L) asks for a share of the weights at 4 bit
 * (hqi_compression_level_ratio), model_optimization_config(compression_params,
 * auto_4bit_weights_ratio=r) for the share r. Without either, weights that do not fit the target's
 * weight memory (hq's per-architecture model in graph/hw_arch.c, NOT vendor data) are compressed
 * implicitly, just enough to fit. Layers are taken largest first; a layer whose precision the script fixed,
 * and layers with 16-bit weights, are never touched. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/layer_types.h"
#include "quant/compression.h"
#include "quant/precision.h"
#include "util/util.h"

/* Share of weights at 4 bit per compression_level. */
static const double level_ratio[6] = {0.0, 0.2, 0.4, 0.6, 0.8, 1.0};

double hqi_compression_level_ratio(int level)
{
    return level >= 0 && level <= 5 ? level_ratio[level] : 0.0;
}

static int64_t kernel_count(const hq_layer_t *l)
{
    const hq_layer_params_t *p = &l->params;
    if (l->type == HQ_LAYER_DENSE)
        return (int64_t)p->kernel_in * p->kernel_out;
    return (int64_t)p->kernel_h * p->kernel_w * p->kernel_in * p->kernel_out;
}

typedef struct candidate {
    int layer;
    int64_t count;
} candidate_t;

static int by_size_desc(const void *a, const void *b)
{
    const candidate_t *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return x->layer - y->layer; /* stable for equal sizes: graph order */
}

hq_status_t hqi_compression_choose(const hq_graph_t *graph, const bool *locked, int level,
                                   double ratio, int64_t memory_bytes, hqi_layer_quant_t *dec,
                                   hqi_compression_result_t *result, const hqi_logger_t *logger,
                                   hq_error_t *err)
{
    int n = hq_graph_layer_count(graph);
    memset(result, 0, sizeof *result);
    candidate_t *cand = malloc(sizeof *cand * (size_t)(n ? n : 1));
    if (!cand)
        return hqi_nomem(err, "compression");
    int count = 0;
    int64_t total = 0, bits_total = 0;
    for (int i = 0; i < n; i++) {
        const hq_layer_t *l = hq_graph_layer(graph, i);
        if (!hqi_layer_traits(l->type)->has_weights)
            continue;
        int64_t k = kernel_count(l);
        total += k;
        bits_total += k * dec[i].weight_bits;
        if (dec[i].weight_bits == 8 && !(locked && locked[i]))
            cand[count++] = (candidate_t){i, k};
    }
    qsort(cand, (size_t)count, sizeof *cand, by_size_desc);
    int64_t already4 = 0;
    for (int i = 0; i < n; i++)
        if (hqi_layer_traits(hq_graph_layer(graph, i)->type)->has_weights &&
            dec[i].weight_bits == 4)
            already4 += kernel_count(hq_graph_layer(graph, i));
    int64_t bytes = (bits_total + 7) / 8;
    bool implicit = level < 0 && ratio < 0;
    if (implicit) {
        result->level = 0;
        if (memory_bytes > 0 && bytes > memory_bytes) {
            result->level = -1;
            int64_t to_save = bytes - memory_bytes;
            hqi_logf(logger, HQ_LOG_WARNING,
                     "weights take %lld bytes, more than the %lld bytes of weight memory hq "
                     "models for this hw_arch: compressing the largest layers to 4 bit "
                     "(implicit compression; set compression_level=0 and accept the split, or "
                     "pick layers yourself)",
                     (long long)bytes, (long long)memory_bytes);
            for (int c = 0; c < count && to_save > 0; c++) {
                dec[cand[c].layer].weight_bits = 4;
                to_save -= cand[c].count / 2;
                bytes -= cand[c].count / 2;
                already4 += cand[c].count;
                result->layers_4bit++;
                hqi_logf(logger, HQ_LOG_INFO, "%s: weights at 4 bit (implicit compression)",
                         hq_graph_layer(graph, cand[c].layer)->bare_name);
            }
            if (to_save > 0)
                hqi_logf(logger, HQ_LOG_WARNING,
                         "weights still exceed the modelled weight memory by %lld bytes with "
                         "every eligible layer at 4 bit",
                         (long long)to_save);
        }
    } else {
        double share = ratio >= 0 ? ratio : hqi_compression_level_ratio(level);
        result->level = ratio >= 0 ? -2 : level;
        double target = share * (double)total;
        for (int c = 0; c < count; c++) {
            /* largest first; a layer that would overshoot is skipped for a smaller one */
            if ((double)(already4 + cand[c].count) > target * (1.0 + 1e-9))
                continue;
            dec[cand[c].layer].weight_bits = 4;
            already4 += cand[c].count;
            bytes -= cand[c].count / 2;
            result->layers_4bit++;
            hqi_logf(logger, HQ_LOG_INFO, "%s: weights at 4 bit (%s)",
                     hq_graph_layer(graph, cand[c].layer)->bare_name,
                     ratio >= 0 ? "auto_4bit_weights_ratio" : "compression_level");
        }
    }
    result->ratio_4bit = total ? (double)already4 / (double)total : 0.0;
    result->weight_bytes = bytes;
    free(cand);
    return HQ_OK;
}
