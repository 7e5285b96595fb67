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
 * analytic form: no quantized emulation is run.
 *
 * hqi_bias_correct_iterative is the measured form (mode=iterative): it runs the quantized emulator
 * and corrects the integer biases, one layer at a time, so each correction sees the errors that
 * the layers before it leave after their own correction. It measures the layer's output (after
 * its fused activation), so a channel clipped by a ReLU is corrected only by what the clip lets
 * through. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emulate/qemulator.h"
#include "quant/optimize_bias.h"
#include "quant/quant_util.h"
#include "runtime/hqrt_numerics.h"
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

/* ---- the iterative form ------------------------------------------------------------------- */

/* Per-channel sums of per-sample means of one layer's output, as the calibration statistics sum
 * them (hqi_stats_t channel_mean_sum). */
typedef struct channel_means {
    int layer;
    int64_t channels;
    double *sum; /* [channels] */
} channel_means_t;

static hq_status_t add_channel_means(void *user, int layer, int port, const hq_shape_t *shape,
                                     const float *data, hq_error_t *err)
{
    (void)err;
    channel_means_t *m = user;
    if (layer != m->layer || port != 0)
        return HQ_OK;
    int64_t per_sample = 1;
    for (int d = 1; d < shape->ndim; d++)
        per_sample *= shape->dims[d];
    int64_t positions = per_sample / m->channels;
    for (int64_t n = 0; n < shape->dims[0]; n++) {
        const float *x = data + n * per_sample;
        for (int64_t p = 0; p < positions; p++)
            for (int64_t c = 0; c < m->channels; c++)
                if (isfinite(x[p * m->channels + c]))
                    m->sum[c] += (double)x[p * m->channels + c] / (double)positions;
    }
    return HQ_OK;
}

/* One pass of the quantized network (params as they are now) over the calibration samples,
 * summing the per-sample channel means of layer m->layer. *qemu is replaced by an emulator of the
 * current params (the caller destroys it). */
static hq_status_t measure_layer(const hq_graph_t *graph, const hq_npz_t *q, hq_dataset_t *data,
                                 const int *source, float *const *buffers, int64_t count,
                                 int64_t batch_size, int threads, channel_means_t *m,
                                 hqi_qemu_t **qemu, hq_error_t *err)
{
    hqi_qemu_destroy(*qemu);
    *qemu = NULL;
    hq_status_t st = hqi_qemu_create(graph, q, "bias correction (iterative)", qemu, err);
    if (st == HQ_OK && threads > 0)
        st = hqi_qemu_set_threads(*qemu, threads, err);
    int in_count = 0;
    hq_graph_inputs(graph, &in_count);
    memset(m->sum, 0, sizeof(double) * (size_t)m->channels);
    for (int64_t first = 0; first < count && st == HQ_OK; first += batch_size) {
        int64_t b = count - first < batch_size ? count - first : batch_size;
        for (int k = 0; k < in_count && st == HQ_OK; k++)
            st = hq_dataset_read(data, source[k], first, b, buffers[k], err);
        if (st == HQ_OK)
            st = hqi_qemu_run(*qemu, b, (const float *const *)buffers, NULL, add_channel_means, m,
                              err);
    }
    return st;
}

/* The correction of one layer from the per-channel sums of its measured output (m), in place
 * on bias:0 of q. Returns whether any bias changed. */
static bool correct_layer(const hqi_stats_t *f, const hq_tensor_t *bias, const hq_tensor_t *ks,
                          double s_in, const channel_means_t *m, int64_t count)
{
    int64_t *b = bias->data;
    const float *w_scale = ks->data;
    bool changed = false;
    for (int64_t c = 0; c < m->channels; c++) {
        double error = m->sum[c] / (double)count - f->channel_mean_sum[c] / (double)f->samples;
        double acc_scale = s_in * (double)w_scale[c];
        if (!(acc_scale > 0) || !isfinite(error))
            continue;
        int64_t delta = hqrt_round_double(error / acc_scale);
        int64_t corrected = hqrt_clamp64(b[c] - delta, -HQRT_ACC_LIMIT, HQRT_ACC_LIMIT);
        changed = changed || corrected != b[c];
        b[c] = corrected;
    }
    return changed;
}

/* The integer bias and kernel scale of a layer the iterative form corrects, or false. */
static bool correction_params(const hq_graph_t *graph, const hqi_calibration_t *cal,
                              const hq_npz_t *q, int i, const hq_tensor_t **bias,
                              const hq_tensor_t **ks)
{
    const hq_layer_t *l = hq_graph_layer(graph, i);
    const hqi_stats_t *f = &cal->layers[i];
    if (!correctable(graph, l) || !f->seen || f->samples < 1)
        return false;
    *bias = hqi_param(q, l, "bias:0");
    *ks = hqi_param(q, l, "kernel_scale:0");
    int64_t cout = f->channels;
    return *bias && *ks && (*bias)->dtype == HQ_DTYPE_INT64 && (*ks)->dtype == HQ_DTYPE_FLOAT32 &&
           hq_tensor_count(*bias) == cout && hq_tensor_count(*ks) == cout;
}

/* One full pass of the quantized network per corrected layer. */
static hq_status_t correct_by_passes(const hq_graph_t *graph, const hqi_calibration_t *cal,
                                     hq_npz_t *q, hq_dataset_t *data, const int *source,
                                     float *const *buffers, int64_t count, int64_t batch_size,
                                     int threads, channel_means_t *m, int *corrected,
                                     hq_error_t *err)
{
    int order_count = 0;
    const int *order = hq_graph_topo_order(graph, &order_count);
    hqi_qemu_t *qemu = NULL;
    hq_status_t st = HQ_OK;
    for (int t = 0; t < order_count && st == HQ_OK; t++) {
        int i = order[t];
        const hq_tensor_t *bias = NULL, *ks = NULL;
        if (!correction_params(graph, cal, q, i, &bias, &ks))
            continue;
        m->layer = i;
        m->channels = cal->layers[i].channels;
        st = measure_layer(graph, q, data, source, buffers, count, batch_size, threads, m, &qemu,
                           err);
        if (st != HQ_OK)
            break;
        double s_in = hqi_qemu_layer(qemu, hq_graph_layer(graph, i)->inputs[0])->scale;
        correct_layer(&cal->layers[i], bias, ks, s_in, m, count);
        (*corrected)++;
    }
    hqi_qemu_destroy(qemu);
    return st;
}

static size_t code_bytes(int bits)
{
    return bits > 8 ? 2u : 1u;
}

/* Per layer, the topological step of its last reader (its own step when nothing reads it). */
static int *last_readers(const hq_graph_t *graph)
{
    int order_count = 0;
    const int *order = hq_graph_topo_order(graph, &order_count);
    int *last = calloc((size_t)hq_graph_layer_count(graph) + 1, sizeof *last);
    for (int t = 0; last && t < order_count; t++) {
        const hq_layer_t *l = hq_graph_layer(graph, order[t]);
        last[order[t]] = t > last[order[t]] ? t : last[order[t]];
        for (int k = 0; k < l->input_count; k++)
            last[l->inputs[k]] = t > last[l->inputs[k]] ? t : last[l->inputs[k]];
    }
    return last;
}

/* Bytes of output codes (all ports, `count` samples) of layer i. */
static int64_t layer_code_bytes(const hq_graph_t *graph, const hqi_qemu_t *qemu, int i,
                                int64_t count)
{
    const hq_layer_t *l = hq_graph_layer(graph, i);
    int64_t bytes = 0;
    for (int p = 0; p < hq_layer_port_count(l); p++) {
        hq_shape_t s = hq_layer_port_shape(l, p);
        int64_t n = (int64_t)code_bytes(hqi_qemu_layer(qemu, i)->bits) * count;
        for (int d = 1; d < s.ndim; d++)
            n *= s.dims[d];
        bytes += n;
    }
    return bytes;
}

/* The most bytes of codes the walk below holds at once. */
static int64_t walk_peak_bytes(const hq_graph_t *graph, const hqi_qemu_t *qemu, const int *last,
                               int64_t count)
{
    int order_count = 0;
    const int *order = hq_graph_topo_order(graph, &order_count);
    int64_t live = 0, peak = 0;
    for (int t = 0; t < order_count; t++) {
        live += layer_code_bytes(graph, qemu, order[t], count);
        peak = live > peak ? live : peak;
        for (int j = 0; j <= t; j++)
            if (last[order[j]] == t)
                live -= layer_code_bytes(graph, qemu, order[j], count);
    }
    return peak;
}

/* One walk through the layers in topological order, every layer run once on all `count` samples
 * from the codes its producers left (a corrected layer twice: measured, then run again with its
 * corrected bias); codes are freed after their last reader. The same codes, sums and corrections
 * as correct_by_passes, without re-running the layers before each corrected one. */
static hq_status_t correct_by_walk(const hq_graph_t *graph, const hqi_calibration_t *cal,
                                   hq_npz_t *q, hq_dataset_t *data, const int *source,
                                   float *const *buffers, int64_t count, int64_t batch_size,
                                   int threads, const int *last, channel_means_t *m,
                                   hqi_qemu_t **qemu, int *corrected, hq_error_t *err)
{
    int layers = hq_graph_layer_count(graph), order_count = 0, in_count = 0;
    const int *order = hq_graph_topo_order(graph, &order_count);
    const int *ins = hq_graph_inputs(graph, &in_count);
    void ***codes = calloc((size_t)layers + 1, sizeof *codes);
    hq_status_t st = codes ? HQ_OK : hqi_nomem(err, "bias correction (iterative)");
    for (int t = 0; t < order_count && st == HQ_OK; t++) {
        int i = order[t];
        const hq_layer_t *l = hq_graph_layer(graph, i);
        const hqi_qlayer_t *ql = hqi_qemu_layer(*qemu, i);
        int ports = hq_layer_port_count(l);
        int64_t per_sample[256] = {0};
        if (ports > 256 || l->input_count > 64) {
            st = hqi_error(err, HQ_ERR_LIMIT, "bias correction (iterative): layer '%s': too many "
                           "inputs or outputs", l->name);
            break;
        }
        codes[i] = calloc((size_t)ports, sizeof *codes[i]);
        if (!codes[i])
            st = hqi_nomem(err, "bias correction (iterative)");
        for (int p = 0; p < ports && st == HQ_OK; p++) {
            hq_shape_t s = hq_layer_port_shape(l, p);
            per_sample[p] = 1;
            for (int d = 1; d < s.ndim; d++)
                per_sample[p] *= s.dims[d];
            if (!(codes[i][p] = malloc((size_t)(per_sample[p] * count) * code_bytes(ql->bits) + 1)))
                st = hqi_nomem(err, "bias correction (iterative)");
        }
        if (st != HQ_OK)
            break;
        if (l->type == HQ_LAYER_INPUT) {
            int k = 0;
            while (k < in_count && ins[k] != i)
                k++;
            if (k == in_count)
                st = hqi_error(err, HQ_ERR_INVALID, "bias correction (iterative): input layer "
                               "'%s' is not an input of the graph", l->name);
            for (int64_t first = 0; first < count && st == HQ_OK; first += batch_size) {
                int64_t b = count - first < batch_size ? count - first : batch_size;
                st = hq_dataset_read(data, source[k], first, b, buffers[k], err);
                if (st == HQ_OK)
                    hqi_qemu_quantize(ql, buffers[k], b * per_sample[0],
                                      (char *)codes[i][0] +
                                          (size_t)(first * per_sample[0]) * code_bytes(ql->bits));
            }
        } else {
            const void *in_codes[64];
            for (int k = 0; k < l->input_count; k++)
                in_codes[k] = codes[l->inputs[k]][l->input_ports[k]];
            st = hqi_qemu_run_layer(*qemu, i, count, in_codes, codes[i], err);
            const hq_tensor_t *bias = NULL, *ks = NULL;
            if (st == HQ_OK && correction_params(graph, cal, q, i, &bias, &ks)) {
                /* the sums of add_channel_means, batch after batch as the full passes take them */
                m->layer = i;
                m->channels = cal->layers[i].channels;
                memset(m->sum, 0, sizeof(double) * (size_t)m->channels);
                hq_shape_t s = hq_layer_port_shape(l, 0);
                for (int64_t first = 0; first < count; first += batch_size) {
                    int64_t b = count - first < batch_size ? count - first : batch_size;
                    float *x = buffers[in_count];
                    hqi_qemu_dequantize(ql,
                                        (const char *)codes[i][0] +
                                            (size_t)(first * per_sample[0]) * code_bytes(ql->bits),
                                        b * per_sample[0], x);
                    s.dims[0] = b;
                    add_channel_means(m, i, 0, &s, x, NULL);
                }
                double s_in = hqi_qemu_layer(*qemu, l->inputs[0])->scale;
                if (correct_layer(&cal->layers[i], bias, ks, s_in, m, count)) {
                    hqi_qemu_destroy(*qemu);
                    *qemu = NULL;
                    st = hqi_qemu_create(graph, q, "bias correction (iterative)", qemu, err);
                    if (st == HQ_OK && threads > 0)
                        st = hqi_qemu_set_threads(*qemu, threads, err);
                    if (st == HQ_OK)
                        st = hqi_qemu_run_layer(*qemu, i, count, in_codes, codes[i], err);
                }
                (*corrected)++;
            }
        }
        /* free what no later layer reads */
        for (int j = 0; j <= t; j++) {
            int k = order[j];
            if (last[k] != t || !codes[k])
                continue;
            for (int p = 0; p < hq_layer_port_count(hq_graph_layer(graph, k)); p++)
                free(codes[k][p]);
            free(codes[k]);
            codes[k] = NULL;
        }
    }
    for (int i = 0; codes && i < layers; i++) {
        if (!codes[i])
            continue;
        for (int p = 0; p < hq_layer_port_count(hq_graph_layer(graph, i)); p++)
            free(codes[i][p]);
        free(codes[i]);
    }
    free(codes);
    return st;
}

hq_status_t hqi_bias_correct_iterative(const hq_graph_t *graph, const hqi_calibration_t *cal,
                                       hq_npz_t *q, hq_dataset_t *data, char *const *input_names,
                                       int64_t count, int64_t batch_size, int threads,
                                       int64_t cache_limit, int *corrected, hq_error_t *err)
{
    *corrected = 0;
    int64_t available = hq_dataset_count(data);
    if (count <= 0 || count > available)
        count = available;
    if (batch_size < 1)
        batch_size = 8;
    if (cache_limit == 0)
        cache_limit = HQI_BIAS_CACHE_BYTES;
    int in_count = 0, max_channels = 1;
    const int *ins = hq_graph_inputs(graph, &in_count);
    for (int i = 0; i < hq_graph_layer_count(graph); i++)
        if (cal->layers[i].channels > max_channels)
            max_channels = cal->layers[i].channels;
    int *source = calloc((size_t)in_count + 1, sizeof *source);
    /* one batch of each input, and one of the largest layer output for the walk's sums */
    float **buffers = calloc((size_t)in_count + 2, sizeof *buffers);
    channel_means_t m = {0};
    m.sum = calloc((size_t)max_channels, sizeof *m.sum);
    hq_status_t st =
        source && buffers && m.sum ? HQ_OK : hqi_nomem(err, "bias correction (iterative)");
    if (st == HQ_OK)
        st = hqi_calibration_sources(graph, data, input_names, source, err);
    for (int k = 0; k < in_count && st == HQ_OK; k++) {
        hq_shape_t s = hq_layer_port_shape(hq_graph_layer(graph, ins[k]), 0);
        int64_t size = 1;
        for (int d = 1; d < s.ndim; d++)
            size *= s.dims[d];
        size_t bytes;
        if (!hqi_mul_size((size_t)size, (size_t)batch_size * sizeof(float), &bytes) ||
            !(buffers[k] = malloc(bytes)))
            st = hqi_nomem(err, "bias correction (iterative)");
    }
    int64_t largest = 1;
    for (int i = 0; i < hq_graph_layer_count(graph); i++) {
        hq_shape_t s = hq_layer_port_shape(hq_graph_layer(graph, i), 0);
        int64_t size = 1;
        for (int d = 1; d < s.ndim; d++)
            size *= s.dims[d];
        largest = size > largest ? size : largest;
    }
    size_t bytes;
    bool room = hqi_mul_size((size_t)largest, (size_t)batch_size * sizeof(float), &bytes);
    if (st == HQ_OK && (!room || !(buffers[in_count] = malloc(bytes))))
        st = hqi_nomem(err, "bias correction (iterative)");
    hqi_qemu_t *qemu = NULL;
    int *last = st == HQ_OK ? last_readers(graph) : NULL;
    if (st == HQ_OK && !last)
        st = hqi_nomem(err, "bias correction (iterative)");
    if (st == HQ_OK)
        st = hqi_qemu_create(graph, q, "bias correction (iterative)", &qemu, err);
    if (st == HQ_OK && threads > 0)
        st = hqi_qemu_set_threads(qemu, threads, err);
    if (st == HQ_OK && cache_limit > 0 && walk_peak_bytes(graph, qemu, last, count) <= cache_limit)
        st = correct_by_walk(graph, cal, q, data, source, buffers, count, batch_size, threads,
                             last, &m, &qemu, corrected, err);
    else if (st == HQ_OK)
        st = correct_by_passes(graph, cal, q, data, source, buffers, count, batch_size, threads,
                               &m, corrected, err);
    hqi_qemu_destroy(qemu);
    free(last);
    for (int k = 0; buffers && k <= in_count; k++)
        free(buffers[k]);
    free(buffers);
    free(source);
    free(m.sum);
    return st;
}
