/* sweep.c — the quantized network run once, layer by layer, for the optimizer's trainers (see
 * sweep.h). A layer's codes for every sample are kept until its last reader has run; a hook that
 * rewrote a layer's integer params has the emulator rebuilt (it prepares kernels once), so the
 * layer and every later one read what the final network computes. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emulate/qemulator.h"
#include "quant/calibrate.h"
#include "quant/quant_util.h"
#include "quant/sweep.h"
#include "util/threadpool.h"
#include "util/util.h"

#define EMULATE_BATCH 8 /* samples per dataset read and per dequantized chunk */

struct hqi_sweep {
    const hq_graph_t *graph;
    const hq_npz_t *q;
    const char *where;
    hqi_qemu_t *qemu; /* of q as it is now */
    int threads;
    int64_t samples;
    void ***codes; /* [layer][port]: samples x per-sample codes, NULL once read for the last time */
    int *last;     /* [layer]: topological step of its last reader, -1 when none */
};

double hqi_seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t hqi_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

int64_t hqi_tap_source(const hq_layer_t *l, bool rows, int64_t o, int64_t k, int64_t extent)
{
    const hq_layer_params_t *p = &l->params;
    int stride = rows ? p->stride_h : p->stride_w;
    int dilation = rows ? p->dilation_h : p->dilation_w;
    int pad = rows ? p->pads[0] : p->pads[1];
    stride = stride < 1 ? 1 : stride;
    dilation = dilation < 1 ? 1 : dilation;
    if (l->type != HQ_LAYER_DECONV) {
        int64_t s = o * stride - pad + k * dilation;
        return s >= 0 && s < extent ? s : -1;
    }
    /* a transposed conv: input s reaches output o through tap k when o + pad = s*stride + k*dil */
    int64_t t = o + pad - k * dilation;
    if (t < 0 || t % stride)
        return -1;
    return t / stride < extent ? t / stride : -1;
}

bool hqi_kernel_layer(const hq_layer_t *l, const hq_npz_t *fpo, const hq_npz_t *q, int weight_bits,
                      hqi_kernel_layer_t *k)
{
    memset(k, 0, sizeof *k);
    if ((l->type != HQ_LAYER_CONV && l->type != HQ_LAYER_DW && l->type != HQ_LAYER_DECONV &&
         l->type != HQ_LAYER_DENSE) ||
        (weight_bits != 4 && weight_bits != 8 && weight_bits != 16) || l->input_count < 1)
        return false;
    const hq_layer_params_t *p = &l->params;
    const hq_tensor_t *wf = hqi_param(fpo, l, "kernel:0");
    const hq_tensor_t *wq = hqi_param(q, l, "kernel:0");
    const hq_tensor_t *ks = hqi_param(q, l, "kernel_scale:0");
    const hq_tensor_t *bq = hqi_param(q, l, "bias:0");
    k->cout = p->kernel_out;
    k->cin_pg = p->kernel_in;
    if (!wf || !wq || !ks || wf->dtype != HQ_DTYPE_FLOAT32 || ks->dtype != HQ_DTYPE_FLOAT32 ||
        wq->dtype != (weight_bits == 16 ? HQ_DTYPE_INT16 : HQ_DTYPE_INT8) || k->cout < 1 ||
        k->cin_pg < 1 || hq_tensor_count(ks) != k->cout ||
        hq_tensor_count(wq) != hq_tensor_count(wf) ||
        (bq && (bq->dtype != HQ_DTYPE_INT64 || hq_tensor_count(bq) != k->cout)))
        return false;
    hq_shape_t in = l->input_shapes[0];
    k->dense = l->type == HQ_LAYER_DENSE;
    if (k->dense) {
        int64_t per = 1;
        for (int d = 1; d < in.ndim; d++)
            per *= in.dims[d];
        if (per % k->cin_pg)
            return false;
        k->groups = 1;
        k->kh = k->kw = 1;
        k->in_c = k->cin_pg;
        k->in_h = k->out_h = per / k->cin_pg;
        k->in_w = k->out_w = 1;
    } else {
        if (in.ndim != 4 || l->output_shape.ndim != 4 || in.dims[3] % k->cin_pg)
            return false;
        k->in_h = in.dims[1];
        k->in_w = in.dims[2];
        k->in_c = in.dims[3];
        k->out_h = l->output_shape.dims[1];
        k->out_w = l->output_shape.dims[2];
        k->groups = k->in_c / k->cin_pg;
        k->kh = p->kernel_h;
        k->kw = p->kernel_w;
    }
    k->kpg = k->kh * k->kw * k->cin_pg;
    if (k->groups < 1 || k->cout % k->groups || hq_tensor_count(wf) != k->kpg * k->cout ||
        k->out_h < 1 || k->out_w < 1)
        return false;
    k->cout_pg = k->cout / k->groups;
    k->w_float = wf->data;
    k->w_int = wq->data;
    k->w_scale = ks->data;
    k->bias = bq ? bq->data : NULL;
    return true;
}

static int64_t port_size(const hq_layer_t *l, int port)
{
    hq_shape_t s = hq_layer_port_shape(l, port);
    int64_t n = 1;
    for (int d = 1; d < s.ndim; d++)
        n *= s.dims[d];
    return n;
}

static size_t code_bytes(const hqi_qlayer_t *ql)
{
    return ql->bits == 16 ? 2u : 1u;
}

int64_t hqi_sweep_samples(const hqi_sweep_t *w)
{
    return w->samples;
}

const hqi_qlayer_t *hqi_sweep_layer(const hqi_sweep_t *w, int layer)
{
    return hqi_qemu_layer(w->qemu, layer);
}

int64_t hqi_sweep_input_size(const hqi_sweep_t *w, int layer, int k)
{
    const hq_layer_t *l = hq_graph_layer(w->graph, layer);
    return port_size(hq_graph_layer(w->graph, l->inputs[k]), l->input_ports[k]);
}

double hqi_sweep_input_scale(const hqi_sweep_t *w, int layer, int k)
{
    return hqi_qemu_layer(w->qemu, hq_graph_layer(w->graph, layer)->inputs[k])->scale;
}

void hqi_sweep_input(const hqi_sweep_t *w, int layer, int k, int64_t first, int64_t count,
                     float *x)
{
    const hq_layer_t *l = hq_graph_layer(w->graph, layer);
    int producer = l->inputs[k], port = l->input_ports[k];
    const hqi_qlayer_t *pq = hqi_qemu_layer(w->qemu, producer);
    int64_t per = hqi_sweep_input_size(w, layer, k);
    hqi_qemu_dequantize(pq,
                        (const char *)w->codes[producer][port] +
                            (size_t)(first * per) * code_bytes(pq),
                        count * per, x);
}

static hq_status_t rebuild_emulator(hqi_sweep_t *w, hq_error_t *err)
{
    hqi_qemu_destroy(w->qemu);
    w->qemu = NULL;
    hq_status_t st = hqi_qemu_create(w->graph, w->q, w->where, &w->qemu, err);
    if (st == HQ_OK)
        st = hqi_qemu_set_threads(w->qemu, w->threads, err);
    return st;
}

static void free_layer(hqi_sweep_t *w, int layer)
{
    if (!w->codes[layer])
        return;
    for (int p = 0; p < hq_layer_port_count(hq_graph_layer(w->graph, layer)); p++)
        free(w->codes[layer][p]);
    free(w->codes[layer]);
    w->codes[layer] = NULL;
}

/* Codes of every port of layer i for all samples: an input layer quantizes the dataset's
 * samples (input k of the graph reads dataset input source[k]), any other runs its kernel. */
static hq_status_t run_layer(hqi_sweep_t *w, int i, hq_dataset_t *data, const int *source,
                             float *const *buffers, hq_error_t *err)
{
    const hq_layer_t *l = hq_graph_layer(w->graph, i);
    const hqi_qlayer_t *ql = hqi_qemu_layer(w->qemu, i);
    int ports = hq_layer_port_count(l);
    w->codes[i] = calloc((size_t)ports, sizeof *w->codes[i]);
    if (!w->codes[i])
        return hqi_nomem(err, w->where);
    for (int p = 0; p < ports; p++) {
        size_t bytes = 0;
        if (!hqi_mul_size((size_t)(w->samples * port_size(l, p)), code_bytes(ql), &bytes) ||
            !(w->codes[i][p] = malloc(bytes ? bytes : 1)))
            return hqi_nomem(err, w->where);
    }
    if (l->type != HQ_LAYER_INPUT) {
        const void *ins[64];
        if (l->input_count > 64)
            return hqi_error(err, HQ_ERR_LIMIT, "%s: layer '%s': too many inputs", w->where,
                             l->name);
        for (int k = 0; k < l->input_count; k++)
            ins[k] = w->codes[l->inputs[k]][l->input_ports[k]];
        return hqi_qemu_run_layer(w->qemu, i, w->samples, ins, w->codes[i], err);
    }
    int in_count = 0, k = 0;
    const int *ins = hq_graph_inputs(w->graph, &in_count);
    while (k < in_count && ins[k] != i)
        k++;
    if (k == in_count)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: no data for input layer '%s'", w->where,
                         l->name);
    int64_t per = port_size(l, 0);
    hq_status_t st = HQ_OK;
    for (int64_t first = 0; first < w->samples && st == HQ_OK; first += EMULATE_BATCH) {
        int64_t b = w->samples - first < EMULATE_BATCH ? w->samples - first : EMULATE_BATCH;
        st = hq_dataset_read(data, source[k], first, b, buffers[k], err);
        if (st == HQ_OK)
            hqi_qemu_quantize(ql, buffers[k], b * per,
                              (char *)w->codes[i][0] + (size_t)(first * per) * code_bytes(ql));
    }
    return st;
}

hq_status_t hqi_sweep_run(const hq_graph_t *graph, const hq_npz_t *q, hq_dataset_t *data,
                          char *const *input_names, int64_t samples, int threads,
                          const char *where, hqi_sweep_hook hook, void *context,
                          hq_error_t *err)
{
    int n = hq_graph_layer_count(graph), order_count = 0, in_count = 0;
    const int *order = hq_graph_topo_order(graph, &order_count);
    const int *ins = hq_graph_inputs(graph, &in_count);
    hqi_sweep_t w = {graph, q, where, NULL, threads > 0 ? threads : hqi_default_threads(),
                     samples, NULL, NULL};
    int *source = calloc((size_t)in_count + 1, sizeof *source);
    float **buffers = calloc((size_t)in_count + 1, sizeof *buffers);
    w.codes = calloc((size_t)n + 1, sizeof *w.codes);
    w.last = malloc(sizeof *w.last * ((size_t)n + 1));
    hq_status_t st = source && buffers && w.codes && w.last ? HQ_OK : hqi_nomem(err, where);
    if (st == HQ_OK)
        st = hqi_calibration_sources(graph, data, input_names, source, err);
    for (int k = 0; k < in_count && st == HQ_OK; k++) {
        size_t bytes;
        if (!hqi_mul_size((size_t)port_size(hq_graph_layer(graph, ins[k]), 0),
                          EMULATE_BATCH * sizeof(float), &bytes) ||
            !(buffers[k] = malloc(bytes)))
            st = hqi_nomem(err, where);
    }
    for (int i = 0; w.last && i < n; i++)
        w.last[i] = -1;
    for (int t = 0; w.last && t < order_count; t++) {
        const hq_layer_t *l = hq_graph_layer(graph, order[t]);
        for (int k = 0; k < l->input_count; k++)
            w.last[l->inputs[k]] = t;
    }
    if (st == HQ_OK)
        st = rebuild_emulator(&w, err);
    for (int t = 0; t < order_count && st == HQ_OK; t++) {
        const int i = order[t];
        const hq_layer_t *l = hq_graph_layer(graph, i);
        bool changed = false;
        if (l->type != HQ_LAYER_INPUT)
            st = hook(context, &w, i, &changed, err);
        if (st == HQ_OK && changed)
            st = rebuild_emulator(&w, err);
        if (st == HQ_OK)
            st = run_layer(&w, i, data, source, buffers, err);
        for (int k = 0; k < l->input_count; k++)
            if (w.last[l->inputs[k]] == t)
                free_layer(&w, l->inputs[k]);
    }
    hqi_qemu_destroy(w.qemu);
    for (int i = 0; w.codes && i < n; i++)
        free_layer(&w, i);
    for (int k = 0; buffers && k < in_count; k++)
        free(buffers[k]);
    free(buffers);
    free(source);
    free(w.codes);
    free(w.last);
    return st;
}
