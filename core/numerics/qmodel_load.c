/* qmodel_load.c — the decoder of `<net>.q.npz` (hqi_qmodel_load): every key checked against the
 * graph (dtype, size, codes, shifts and bit widths in range) and decoded into the per-layer
 * structs that the lowering (lower.c) turns into runtime ops. The keys are in hq-har(5). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numerics/qmodel.h"
#include "util/util.h"

typedef struct loader {
    const hq_npz_t *q;
    const char *name;
    const hq_layer_t *layer;
    hq_error_t *err;
} loader_t;

/* The tensor "<layer>/<suffix>" with `dtype` and `count` elements (count < 0: any); NULL and an
 * error when missing (if required) or malformed. */
static hq_status_t key_get(loader_t *l, const char *suffix, hq_dtype_t dtype, int64_t count,
                           bool required, const void **data, int64_t *got)
{
    char key[1024];
    snprintf(key, sizeof key, "%s/%s", l->layer->name, suffix);
    const hq_tensor_t *t = hq_npz_get(l->q, key);
    *data = NULL;
    if (!t) {
        if (!required)
            return HQ_OK;
        return hqi_error(l->err, HQ_ERR_NOT_FOUND, "%s: layer '%s': key '%s' missing", l->name,
                         l->layer->name, key);
    }
    int64_t n = hq_tensor_count(t);
    if (t->dtype != dtype || (count >= 0 && n != count) || n < 1)
        return hqi_error(l->err, HQ_ERR_INVALID,
                         "%s: layer '%s': key '%s' is %s with %lld values, expected %s with %lld",
                         l->name, l->layer->name, key, hq_dtype_name(t->dtype), (long long)n,
                         hq_dtype_name(dtype), (long long)count);
    *data = t->data;
    if (got)
        *got = n;
    return HQ_OK;
}

static hq_status_t load_stage(loader_t *l, hqi_qlayer_t *q, int64_t channels, bool required)
{
    const void *m, *s, *mn = NULL, *sn = NULL, *clamp, *path, *lut = NULL, *pzp = NULL,
                       *pscale = NULL;
    int64_t n = 0;
    hq_status_t st = key_get(l, "output_multiplier:0", HQ_DTYPE_INT32, -1, required, &m, &n);
    if (st != HQ_OK || !m)
        return st;
    if (n != 1 && n != channels)
        return hqi_error(l->err, HQ_ERR_INVALID,
                         "%s: layer '%s': output_multiplier has %lld values, expected 1 or %lld",
                         l->name, l->layer->name, (long long)n, (long long)channels);
    if ((st = key_get(l, "output_shift:0", HQ_DTYPE_INT32, n, true, &s, NULL)) ||
        (st = key_get(l, "output_multiplier_neg:0", HQ_DTYPE_INT32, n, false, &mn, NULL)) ||
        (st = key_get(l, "output_shift_neg:0", HQ_DTYPE_INT32, n, mn != NULL, &sn, NULL)) ||
        (st = key_get(l, "act_clamp:0", HQ_DTYPE_INT32, 2, true, &clamp, NULL)) ||
        (st = key_get(l, "requant_path:0", HQ_DTYPE_INT32, 1, true, &path, NULL)) ||
        (l->layer->type != HQ_LAYER_SOFTMAX &&
         (st = key_get(l, "lut:0", q->bits == 16 ? HQ_DTYPE_UINT16 : HQ_DTYPE_UINT8,
                       (int64_t)hqrt_code_max(q->bits) + 1, false, &lut, NULL))))
        return st;
    if (lut && ((st = key_get(l, "pre_zp:0", HQ_DTYPE_INT32, 1, true, &pzp, NULL)) ||
                (st = key_get(l, "pre_scale:0", HQ_DTYPE_FLOAT32, 1, true, &pscale, NULL))))
        return st;
    hqrt_output_stage_t *o = &q->stage;
    o->path = *(const int32_t *)path;
    o->count = (int32_t)n;
    o->multiplier = m;
    o->shift = s;
    o->multiplier_neg = mn;
    o->shift_neg = sn;
    o->lut = lut;
    o->pre_zp = pzp ? *(const int32_t *)pzp : 0;
    q->pre_scale = pscale ? *(const float *)pscale : 0;
    o->out_bits = q->bits;
    o->out_zp = q->zp;
    o->act_min = ((const int32_t *)clamp)[0];
    o->act_max = ((const int32_t *)clamp)[1];
    if (hqrt_output_stage_check(o, (int32_t)channels) != HQRT_KERNEL_OK)
        return hqi_error(l->err, HQ_ERR_INVALID,
                         "%s: layer '%s': requantization params out of range (shift outside "
                         "[-31, 30], clamp or zero point outside the code range, or bad path)",
                         l->name, l->layer->name);
    return HQ_OK;
}

static int64_t last_dim(const hq_shape_t *s)
{
    return s->ndim > 0 ? s->dims[s->ndim - 1] : 1;
}

static hq_status_t load_layer(loader_t *l, int index, hqi_qmodel_t *model)
{
    const hq_layer_t *layer = l->layer;
    hqi_qlayer_t *q = &model->layers[index];
    const void *scale, *zp, *bits;
    hq_status_t st;
    if ((st = key_get(l, "qp_scale:0", HQ_DTYPE_FLOAT32, 1, true, &scale, NULL)) ||
        (st = key_get(l, "qp_zp:0", HQ_DTYPE_INT32, 1, true, &zp, NULL)) ||
        (st = key_get(l, "activation_bits:0", HQ_DTYPE_INT32, 1, true, &bits, NULL)))
        return st;
    q->scale = *(const float *)scale;
    q->zp = *(const int32_t *)zp;
    q->bits = *(const int32_t *)bits;
    if ((q->bits != 8 && q->bits != 16) || q->zp < 0 || q->zp > hqrt_code_max(q->bits) ||
        !(q->scale > 0) || !isfinite(q->scale))
        return hqi_error(l->err, HQ_ERR_INVALID,
                         "%s: layer '%s': encoding out of range (bits %d, zp %d, scale %g)",
                         l->name, layer->name, q->bits, q->zp, (double)q->scale);
    /* pass-through kernels read their inputs with their own encoding: it must be the same */
    for (int k = 0; hqi_qmodel_keeps_encoding(layer->type) && k < layer->input_count; k++) {
        const hqi_qlayer_t *in = &model->layers[layer->inputs[k]];
        if (in->bits != q->bits || in->zp != q->zp || in->scale != q->scale)
            return hqi_error(l->err, HQ_ERR_INVALID,
                             "%s: layer '%s': a %s layer must keep its input's encoding "
                             "(input %d: %d bits, zp %d, scale %g; layer: %d bits, zp %d, "
                             "scale %g)",
                             l->name, layer->name, hq_layer_type_name(layer->type), k, in->bits,
                             in->zp, (double)in->scale, q->bits, q->zp, (double)q->scale);
    }
    const int64_t channels = last_dim(&layer->output_shape);
    switch (layer->type) {
    case HQ_LAYER_CONV:
    case HQ_LAYER_DW:
    case HQ_LAYER_DECONV:
    case HQ_LAYER_DENSE:
    case HQ_LAYER_BATCH_NORM:
    case HQ_LAYER_NORMALIZATION:
    case HQ_LAYER_LAYER_NORM: {
        const hq_layer_params_t *p = &layer->params;
        bool affine = layer->type == HQ_LAYER_BATCH_NORM || layer->type == HQ_LAYER_NORMALIZATION ||
                      layer->type == HQ_LAYER_LAYER_NORM;
        int64_t cout = affine ? channels : p->kernel_out;
        int64_t wcount = affine ? cout
                         : layer->type == HQ_LAYER_DENSE
                             ? (int64_t)p->kernel_in * p->kernel_out
                             : (int64_t)p->kernel_h * p->kernel_w * p->kernel_in * p->kernel_out;
        const void *wb, *bias;
        if ((st = key_get(l, "weight_bits:0", HQ_DTYPE_INT32, 1, true, &wb, NULL)))
            return st;
        q->weight_bits = *(const int32_t *)wb;
        if (q->weight_bits != 4 && q->weight_bits != 8 && q->weight_bits != 16)
            return hqi_error(l->err, HQ_ERR_INVALID, "%s: layer '%s': weight_bits %d", l->name,
                             layer->name, q->weight_bits);
        if ((st = key_get(l, "kernel:0", q->weight_bits == 16 ? HQ_DTYPE_INT16 : HQ_DTYPE_INT8,
                          wcount, true, &q->kernel, NULL)) ||
            (st = key_get(l, "bias:0", HQ_DTYPE_INT64, cout, true, &bias, NULL)))
            return st;
        q->bias = bias;
        for (int64_t c = 0; c < cout; c++)
            if (q->bias[c] > HQRT_ACC_LIMIT || q->bias[c] < -HQRT_ACC_LIMIT)
                return hqi_error(l->err, HQ_ERR_INVALID,
                                 "%s: layer '%s': bias:0[%lld] outside +-2^62", l->name,
                                 layer->name, (long long)c);
        const void *am = NULL, *as = NULL;
        if ((st = key_get(l, "addend_multiplier:0", HQ_DTYPE_INT32, 1, false, &am, NULL)) ||
            (st = key_get(l, "addend_shift:0", HQ_DTYPE_INT32, 1, am != NULL, &as, NULL)))
            return st;
        if (am) {
            q->has_addend = true;
            q->input_multiplier[0] = *(const int32_t *)am;
            q->input_shift[0] = *(const int32_t *)as;
        }
        if (layer->type == HQ_LAYER_LAYER_NORM) {
            const void *eps;
            if ((st = key_get(l, "epsilon_term:0", HQ_DTYPE_INT64, 1, true, &eps, NULL)))
                return st;
            q->epsilon_term = *(const int64_t *)eps;
            if (q->epsilon_term < 1 || q->epsilon_term > HQRT_NORM_EPSILON_MAX)
                return hqi_error(l->err, HQ_ERR_INVALID,
                                 "%s: layer '%s': epsilon_term:0 %lld outside [1, 2^61]", l->name,
                                 layer->name, (long long)q->epsilon_term);
        }
        return load_stage(l, q, cout, true);
    }
    case HQ_LAYER_EW_ADD:
    case HQ_LAYER_EW_SUB:
    case HQ_LAYER_EW_MAX:
    case HQ_LAYER_EW_MIN: {
        const void *m, *s;
        if ((st = key_get(l, "input_multiplier:0", HQ_DTYPE_INT32, 2, true, &m, NULL)) ||
            (st = key_get(l, "input_shift:0", HQ_DTYPE_INT32, 2, true, &s, NULL)))
            return st;
        memcpy(q->input_multiplier, m, sizeof q->input_multiplier);
        memcpy(q->input_shift, s, sizeof q->input_shift);
        return load_stage(l, q, channels, true);
    }
    case HQ_LAYER_EW_MULT:
    case HQ_LAYER_GLOBAL_AVG_POOL:
        return load_stage(l, q, channels, true);
    case HQ_LAYER_SOFTMAX: {
        int in_bits = model->layers[layer->inputs[0]].bits;
        if ((st = key_get(l, "lut:0", HQ_DTYPE_INT32, (int64_t)hqrt_code_max(in_bits) + 1, true,
                          &q->lut, NULL)))
            return st;
        const int32_t *e = q->lut;
        bool ok = e[0] == (1 << 30);
        for (int64_t d = 1; ok && d <= hqrt_code_max(in_bits); d++)
            ok = e[d] >= 0 && e[d] <= (1 << 30);
        if (!ok)
            return hqi_error(l->err, HQ_ERR_INVALID,
                             "%s: layer '%s': softmax lut:0 must start with 2^30 and stay in "
                             "[0, 2^30]",
                             l->name, layer->name);
        return load_stage(l, q, 1, true);
    }
    case HQ_LAYER_AVGPOOL:
        return load_stage(l, q, (int64_t)layer->params.kernel_h * layer->params.kernel_w, true);
    case HQ_LAYER_ACTIVATION: {
        int in_bits = model->layers[layer->inputs[0]].bits;
        if ((st = key_get(l, "lut:0", q->bits == 16 ? HQ_DTYPE_UINT16 : HQ_DTYPE_UINT8,
                          (int64_t)hqrt_code_max(in_bits) + 1, false, &q->lut, NULL)))
            return st;
        return q->lut ? HQ_OK : load_stage(l, q, channels, true);
    }
    case HQ_LAYER_CONST_INPUT: {
        int64_t n = 1;
        for (int d = 1; d < layer->output_shape.ndim; d++)
            n *= layer->output_shape.dims[d];
        return key_get(l, "const:0", q->bits == 16 ? HQ_DTYPE_UINT16 : HQ_DTYPE_UINT8, n, true,
                       &q->constant, NULL);
    }
    case HQ_LAYER_PAD: {
        const void *code;
        if ((st = key_get(l, "pad_code:0", HQ_DTYPE_INT32, 1, true, &code, NULL)))
            return st;
        q->pad_code = *(const int32_t *)code;
        if (q->pad_code < 0 || q->pad_code > hqrt_code_max(q->bits))
            return hqi_error(l->err, HQ_ERR_INVALID, "%s: layer '%s': pad_code %d out of range",
                             l->name, layer->name, q->pad_code);
        return HQ_OK;
    }
    default:
        return HQ_OK;
    }
}

hq_status_t hqi_qmodel_load(const hq_graph_t *graph, const hq_npz_t *qparams, const char *name,
                            hqi_qmodel_t **out, hq_error_t *err)
{
    if (!out)
        return hqi_error(err, HQ_ERR_ARGUMENT, "quantized params: out is NULL");
    *out = NULL;
    if (!name)
        name = "q.npz";
    if (!graph || !qparams || !hq_graph_is_finalized(graph))
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: graph or params missing", name);
    hqi_qmodel_t *m = calloc(1, sizeof *m);
    if (!m)
        return hqi_nomem(err, "quantized params");
    m->layer_count = hq_graph_layer_count(graph);
    m->layers = calloc((size_t)m->layer_count + 1, sizeof *m->layers);
    hq_status_t st = m->layers ? HQ_OK : hqi_nomem(err, "quantized params");
    int order_count = 0;
    const int *order = hq_graph_topo_order(graph, &order_count);
    for (int t = 0; t < order_count && st == HQ_OK; t++) {
        loader_t l = {qparams, name, hq_graph_layer(graph, order[t]), err};
        st = load_layer(&l, order[t], m);
    }
    if (st != HQ_OK) {
        hqi_qmodel_destroy(m);
        return st;
    }
    *out = m;
    return HQ_OK;
}

void hqi_qmodel_destroy(hqi_qmodel_t *model)
{
    if (!model)
        return;
    free(model->layers);
    free(model);
}
