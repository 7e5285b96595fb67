/* optimize_bias.c — post_quantization_optimization(bias_correction): per-channel bias correction
 * from calibration data.
 *
 * Quantizing a kernel W to W + dW shifts the expected output of channel o by
 * sum over taps and input channels of dW[t, i, o] * E[x_i], where E[x_i] is the calibration mean
 * of input channel i (the producer's per-channel output mean). That shift is subtracted from the
 * bias handed to the integer builder (the fp-optimized params keep the float bias). dW is computed
 * with the weight quantizer of the contract (symmetric per output channel, q in
 * [-(2^(b-1)-1), 2^(b-1)-1], |w| clipped to weight_clip when set, rounding half away from zero);
 * border taps that read padding are treated like interior ones (an approximation). This is the
 * analytic form: no quantized emulation is run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/optimize_bias.h"
#include "quant/quant_util.h"
#include "util/util.h"

static hq_status_t clone_npz(const hq_npz_t *src, hq_npz_t **out, hq_error_t *err)
{
    hq_npz_t *dst = NULL;
    hq_status_t st = hq_npz_create(&dst, err);
    for (size_t i = 0; st == HQ_OK && i < hq_npz_count(src); i++)
        st = hq_npz_put_copy(dst, hq_npz_key(src, i), hq_npz_get_index(src, i), err);
    if (st != HQ_OK) {
        hq_npz_destroy(dst);
        return st;
    }
    *out = dst;
    return HQ_OK;
}

static bool correctable(const hq_graph_t *graph, const hq_layer_t *l)
{
    if (l->type != HQ_LAYER_CONV && l->type != HQ_LAYER_DW && l->type != HQ_LAYER_DENSE)
        return false;
    if (l->input_count < 1)
        return false;
    const hq_layer_t *p = hq_graph_layer(graph, l->inputs[0]);
    /* the producer's channel means must be those of the tensor this layer reads */
    return hq_layer_port_count(p) == 1;
}

hq_status_t hqi_bias_correct(const hq_graph_t *graph, const hq_npz_t *fpo,
                             const hqi_calibration_t *cal, const hqi_layer_quant_t *dec,
                             hq_npz_t **out, int *corrected, hq_error_t *err)
{
    *out = NULL;
    *corrected = 0;
    hq_npz_t *npz = NULL;
    hq_status_t st = clone_npz(fpo, &npz, err);
    int n = hq_graph_layer_count(graph);
    for (int i = 0; i < n && st == HQ_OK; i++) {
        const hq_layer_t *l = hq_graph_layer(graph, i);
        if (!correctable(graph, l) || dec[i].weight_bits < 2)
            continue;
        const hqi_stats_t *in = &cal->layers[l->inputs[0]];
        if (!in->seen)
            continue;
        const hq_tensor_t *k = hqi_param(npz, l, "kernel:0");
        hq_tensor_t *bias = NULL;
        if (!k || !hqi_param(npz, l, "bias:0"))
            continue;
        st = hqi_param_f32(npz, l, "bias:0", &bias, err);
        if (st != HQ_OK)
            break;
        int64_t cout = l->params.kernel_out, cin_pg = l->params.kernel_in;
        int64_t groups = l->type == HQ_LAYER_DENSE || l->params.groups < 1 ? 1 : l->params.groups;
        int64_t taps =
            l->type == HQ_LAYER_DENSE ? 1 : (int64_t)l->params.kernel_h * l->params.kernel_w;
        if (hq_tensor_count(k) != taps * cin_pg * cout || hq_tensor_count(bias) != cout ||
            in->channels != cin_pg * groups)
            continue;
        const float *w = k->data;
        float *b = bias->data;
        double qmax = ldexp(1.0, dec[i].weight_bits - 1) - 1.0;
        int64_t cout_pg = cout / groups;
        for (int64_t o = 0; o < cout; o++) {
            double maxabs = 0.0;
            for (int64_t r = 0; r < taps * cin_pg; r++)
                maxabs = fmax(maxabs, fabs(w[r * cout + o]));
            double clip = dec[i].weight_clip_channels ? dec[i].weight_clip_channels[o]
                                                       : dec[i].weight_clip;
            if (clip > 0 && maxabs > clip)
                maxabs = clip;
            if (maxabs <= 0.0)
                continue;
            /* the contract's weight scale: float32(m / W) (docs/numerics.md section 2) */
            double scale = (double)(float)(maxabs / qmax), shift = 0.0;
            int64_t g = o / cout_pg;
            for (int64_t t = 0; t < taps; t++)
                for (int64_t j = 0; j < cin_pg; j++) {
                    double v = w[(t * cin_pg + j) * cout + o];
                    double c = v > maxabs ? maxabs : v < -maxabs ? -maxabs : v;
                    double q = round(c / scale);
                    q = q > qmax ? qmax : q < -qmax ? -qmax : q;
                    shift += (q * scale - v) *
                             (in->channel_mean_sum[g * cin_pg + j] / (double)cal->samples);
                }
            b[o] = (float)(b[o] - shift);
        }
        (*corrected)++;
    }
    if (st != HQ_OK) {
        hq_npz_destroy(npz);
        return st;
    }
    *out = npz;
    return HQ_OK;
}
