/* agreement.c — the decision agreement of a model output that ends in a sigmoid or a softmax:
 * how often the tested model takes the decision the reference takes on the same sample, which is
 * what the user's task reads from such an output (a mask thresholded at 0.5, a class). A sigmoid
 * map's SQNR misjudges it: its values sit near 0 and 1, so noise near the threshold costs SQNR
 * without changing a decision, and the SQNR floor of the headline would call a good quantization
 * broken. The headline judges these outputs by agreement as well and gives them the better of the
 * two levels (headline.c); thresholds, definitions and the measurements behind them: docs/diag.md,
 * "Decision outputs". */
#include <math.h>
#include <string.h>

#include "diag/diag_internal.h"

/* The layer that produces output layer `layer` (the output layer's single input), or -1. */
static int producer(const hq_graph_t *graph, int layer)
{
    const hq_layer_t *out = hq_graph_layer(graph, layer);
    return out->input_count == 1 ? out->inputs[0] : -1;
}

hqi_diag_decision_t hqi_diag_output_decision(const hq_graph_t *graph, int output_layer)
{
    hqi_diag_decision_t none = {HQI_DECISION_NONE, 0, 0};
    int p = producer(graph, output_layer);
    if (p < 0)
        return none;
    const hq_layer_t *layer = hq_graph_layer(graph, p);
    const hq_layer_type_traits_t *traits = hq_layer_type_traits(layer->type);
    if (traits && traits->fused_activation &&
        (layer->params.activation == HQ_ACT_SIGMOID ||
         layer->params.activation == HQ_ACT_HARDSIGMOID))
        return (hqi_diag_decision_t){HQI_DECISION_SIGMOID, 0, 0};
    if (layer->type != HQ_LAYER_SOFTMAX)
        return none;
    /* the classes: the softmax axis of the per-sample tensor, and the elements after it */
    hq_shape_t shape = layer->output_shape;
    int axis = layer->params.axis < 0 ? layer->params.axis + shape.ndim : layer->params.axis;
    if (axis < 1 || axis >= shape.ndim || shape.dims[axis] < 2)
        return none;
    int64_t inner = 1;
    for (int k = axis + 1; k < shape.ndim; k++)
        inner *= shape.dims[k] > 0 ? shape.dims[k] : 1;
    return (hqi_diag_decision_t){HQI_DECISION_SOFTMAX, shape.dims[axis], inner};
}

const char *hqi_diag_decision_name(hqi_diag_decision_kind_t kind)
{
    return kind == HQI_DECISION_SIGMOID   ? "sigmoid"
           : kind == HQI_DECISION_SOFTMAX ? "softmax"
                                          : NULL;
}

void hqi_diag_agreement_add(const hqi_diag_decision_t *decision, const float *reference,
                            const float *test, int64_t size, hqi_diag_agreement_t *a)
{
    if (decision->kind == HQI_DECISION_SIGMOID) {
        for (int64_t i = 0; i < size; i++) {
            int side = reference[i] >= 0.5f;
            a->total[side] += 1;
            a->kept[side] += (test[i] >= 0.5f) == side;
        }
        return;
    }
    if (decision->kind != HQI_DECISION_SOFTMAX || decision->classes < 2)
        return;
    /* one decision per position: the class of the largest value (the first on ties) */
    int64_t inner = decision->inner, block = decision->classes * inner;
    for (int64_t base = 0; base + block <= size; base += block)
        for (int64_t i = 0; i < inner; i++) {
            const float *r = reference + base + i, *t = test + base + i;
            int64_t rbest = 0, tbest = 0;
            for (int64_t c = 1; c < decision->classes; c++) {
                rbest = r[c * inner] > r[rbest * inner] ? c : rbest;
                tbest = t[c * inner] > t[tbest * inner] ? c : tbest;
            }
            a->total[0] += 1;
            a->kept[0] += rbest == tbest;
        }
}

double hqi_diag_agreement_pct(const hqi_diag_agreement_t *a)
{
    /* sigmoid: the mean over the reference's two decisions of the share the test keeps, so that
     * a map of mostly background does not score high by answering background everywhere; a side
     * the reference never takes does not count. softmax: total[1] stays 0. */
    double sum = 0;
    int sides = 0;
    for (int s = 0; s < 2; s++)
        if (a->total[s] > 0) {
            sum += a->kept[s] / a->total[s];
            sides++;
        }
    return sides ? 100.0 * sum / sides : NAN;
}
