/* onnx_ops_elementwise.c — Add, Sub, Mul, Div, Max, Min: with a constant operand folded into
 * the producer (per-channel scale/shift), made a normalization layer on a network input (the
 * preprocessing), turned into a clip (Max/Min with a scalar) or given a const_input layer; with
 * two computed operands an ew_* layer, or the conv's elementwise_add. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_internal.h"

/* A const_input layer holding `t` broadcast against a rank-`rank` tensor (NCHW -> NHWC). */
hq_status_t onnxi_add_const_layer(onnxi_ctx_t *c, const Onnx__NodeProto *n, const hq_tensor_t *t,
                                  int rank, int *index)
{
    if (t->ndim > rank)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "constant of rank %d against a rank-%d tensor", t->ndim,
                  rank);
    int64_t d[4] = {1, 1, 1, 1};
    for (int i = 0; i < t->ndim; i++)
        d[i + rank - t->ndim] = t->shape[i];
    if (d[0] != 1)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "constant with a batch dimension of %lld",
                  (long long)d[0]);
    hq_shape_t shape;
    int64_t dshape[4];
    hq_tensor_t *data;
    hq_status_t st;
    if (rank == 3) { /* [1, C, L] -> NCHW [1, C, 1, L] */
        d[3] = d[2];
        d[2] = 1;
        rank = 4;
    }
    if (rank == 4) {
        shape = (hq_shape_t){4, {-1, d[2], d[3], d[1]}};
        dshape[0] = 1, dshape[1] = d[2], dshape[2] = d[3], dshape[3] = d[1];
    } else {
        shape = (hq_shape_t){2, {-1, d[1]}};
        dshape[0] = 1, dshape[1] = d[1];
    }
    for (int i = 1; i < shape.ndim; i++)
        if (shape.dims[i] < 1)
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "empty constant");
    if ((st = onnxi_new_tensor(c, HQ_DTYPE_FLOAT32, rank, dshape, &data)) != HQ_OK)
        return st;
    float *dst = data->data;
    if (rank == 4) {
        for (int64_t ch = 0; ch < d[1]; ch++)
            for (int64_t y = 0; y < d[2]; y++)
                for (int64_t xx = 0; xx < d[3]; xx++)
                    dst[(y * d[3] + xx) * d[1] + ch] =
                        (float)onnxi_tensor_at(t, (ch * d[2] + y) * d[3] + xx);
    } else {
        for (int64_t i = 0; i < d[1]; i++)
            dst[i] = (float)onnxi_tensor_at(t, i);
    }
    if ((st = onnxi_new_layer(c, HQ_LAYER_CONST_INPUT, n, index)) != HQ_OK) {
        hq_tensor_destroy(data);
        return st;
    }
    if ((st = onnxi_put_param(c, *index, "const:0", data)) != HQ_OK)
        return st;
    return hq_layer_set_output_shape(c->graph, *index, &shape, c->err);
}

/* x * scale + shift per channel (x - k, x + k, x * k, x / k by a per-channel constant k) on a
 * network input, or on the normalization layer made of earlier such steps: the preprocessing an
 * exporter writes before the network ((x / 255 - mean) / std), held as one normalization layer
 * (x - mean) / std, which quantizes as an affine layer where ew_* layers with constants would not.
 * Sets *done when it took the node. */
static hq_status_t normalize_input(onnxi_ctx_t *c, const Onnx__NodeProto *n, const onnxi_value_t *x,
                                   hq_layer_type_t type, const float *k, int64_t channels,
                                   bool *done)
{
    *done = false;
    const hq_layer_t *p = hq_graph_layer(c->graph, x->layer);
    bool extend = p->type == HQ_LAYER_NORMALIZATION && p->params.activation == HQ_ACT_LINEAR &&
                  (p->params.channels == 1 || p->params.channels == channels) &&
                  onnxi_sole_reader(c, x, 1);
    if ((!extend && p->type != HQ_LAYER_INPUT) || channels < 1 || channels > (1 << 24))
        return HQ_OK;
    bool scale = type == HQ_LAYER_EW_MULT || type == HQ_LAYER_EW_DIV;
    for (int64_t i = 0; i < channels; i++)
        if (!isfinite(k[i]) || (scale && k[i] == 0.0f))
            return HQ_OK;
    float *mean = malloc(2 * (size_t)channels * sizeof *mean);
    if (!mean)
        return hqi_nomem(c->err, c->name);
    float *std = mean + channels;
    for (int64_t i = 0; i < channels; i++) {
        int64_t from = extend && p->params.channels > 1 ? i : 0;
        mean[i] = extend ? p->params.mean[from] : 0.0f;
        std[i] = extend ? p->params.std[from] : 1.0f;
        /* (x - m) / s * k = (x - m) / (s / k); (x - m) / s + k = (x - (m - k s)) / s */
        if (type == HQ_LAYER_EW_MULT)
            std[i] /= k[i];
        else if (type == HQ_LAYER_EW_DIV)
            std[i] *= k[i];
        else
            mean[i] -= (type == HQ_LAYER_EW_ADD ? k[i] : -k[i]) * std[i];
        if (!isfinite(mean[i]) || !isfinite(std[i]) || std[i] == 0.0f) {
            free(mean);
            return HQ_OK;
        }
    }
    int index = x->layer;
    hq_status_t st = HQ_OK;
    if (!extend) {
        st = onnxi_new_layer(c, HQ_LAYER_NORMALIZATION, n, &index);
        if (st == HQ_OK)
            st = onnxi_connect_value(c, x, index);
    } else {
        st = hq_layer_add_original_name(c->graph, index, onnxi_node_label(n), c->err);
    }
    if (st == HQ_OK)
        st = hq_layer_set_normalization(c->graph, index, mean, std, (int)channels, c->err);
    free(mean);
    if (st != HQ_OK)
        return st;
    *done = true;
    return onnxi_set_layer_output(c, n, 0, index, 0, x->rank);
}

/* The binary op that becomes an ew_* layer of type `type`. */
static hq_status_t convert_binary(onnxi_ctx_t *c, const Onnx__NodeProto *n, hq_layer_type_t type)
{
    onnxi_value_t *a, *b;
    hq_status_t st;
    if ((st = onnxi_node_input(c, n, 0, &a)) != HQ_OK ||
        (st = onnxi_node_input(c, n, 1, &b)) != HQ_OK)
        return st;
    if (!a || !b || n->n_input != 2)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "needs exactly two inputs");
    onnxi_value_t *x = a->kind == VALUE_LAYER ? a : b;
    onnxi_value_t *k = a->kind == VALUE_CONST ? a : b->kind == VALUE_CONST ? b : NULL;
    if ((st = onnxi_materialize(c, x)) != HQ_OK)
        return st;
    if (k) {
        const hq_tensor_t *t = k->constant;
        int64_t channels;
        if ((st = onnxi_channels_of(c, x, &channels)) != HQ_OK)
            return st;
        float *vec = NULL;
        bool per_channel = onnxi_channel_vector(t, x->rank, channels, &vec);
        if ((type == HQ_LAYER_EW_MAX || type == HQ_LAYER_EW_MIN) && per_channel &&
            hq_tensor_count(t) == 1) {
            float v = vec[0];
            free(vec);
            if (type == HQ_LAYER_EW_MAX)
                return onnxi_apply_activation(c, n, x, HQ_ACT_CLIP, v, CLIP_OPEN, NULL, 1);
            return onnxi_apply_activation(c, n, x, HQ_ACT_CLIP, -CLIP_OPEN, v, NULL, 1);
        }
        bool scale = type == HQ_LAYER_EW_MULT || type == HQ_LAYER_EW_DIV;
        bool const_first = k == a;
        if (per_channel && type != HQ_LAYER_EW_MAX && type != HQ_LAYER_EW_MIN &&
            !(const_first && (type == HQ_LAYER_EW_SUB || type == HQ_LAYER_EW_DIV)) &&
            onnxi_can_absorb_affine(c, x, scale)) {
            for (int64_t i = 0; i < channels; i++) {
                if (type == HQ_LAYER_EW_SUB)
                    vec[i] = -vec[i];
                else if (type == HQ_LAYER_EW_DIV)
                    vec[i] = 1.0f / vec[i];
            }
            onnxi_absorb_affine(c, x, scale ? vec : NULL, scale ? NULL : vec);
            free(vec);
            if ((st = hq_layer_add_original_name(c->graph, x->layer, onnxi_node_label(n),
                                                 c->err)) != HQ_OK)
                return st;
            return onnxi_set_layer_output(c, n, 0, x->layer, 0, x->rank);
        }
        if (per_channel && type != HQ_LAYER_EW_MAX && type != HQ_LAYER_EW_MIN &&
            !(const_first && (type == HQ_LAYER_EW_SUB || type == HQ_LAYER_EW_DIV))) {
            bool done;
            st = normalize_input(c, n, x, type, vec, channels, &done);
            if (st != HQ_OK || done) {
                free(vec);
                return st;
            }
        }
        free(vec);
        int cindex, index;
        if ((st = onnxi_add_const_layer(c, n, t, x->rank, &cindex)) != HQ_OK ||
            (st = onnxi_new_layer(c, type, n, &index)) != HQ_OK)
            return st;
        if (const_first)
            st = hq_graph_connect(c->graph, cindex, 0, index, c->err);
        if (st == HQ_OK)
            st = onnxi_connect_value(c, x, index);
        if (st == HQ_OK && !const_first)
            st = hq_graph_connect(c->graph, cindex, 0, index, c->err);
        if (st != HQ_OK)
            return st;
        return onnxi_set_layer_output(c, n, 0, index, 0, x->rank);
    }
    if ((st = onnxi_materialize(c, a)) != HQ_OK || (st = onnxi_materialize(c, b)) != HQ_OK)
        return st;
    if (a->rank != b->rank)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "inputs of rank %d and %d", a->rank, b->rank);
    if (type == HQ_LAYER_EW_ADD) {
        /* conv + other tensor of the same shape: the conv's elementwise_add. */
        hq_shape_t sa, sb;
        if ((st = onnxi_hq_shape_of(c, a, &sa)) != HQ_OK ||
            (st = onnxi_hq_shape_of(c, b, &sb)) != HQ_OK)
            return st;
        onnxi_value_t *sides[2][2] = {{a, b}, {b, a}};
        for (int i = 0; i < 2; i++) {
            onnxi_value_t *conv = sides[i][0], *other = sides[i][1];
            if (!onnxi_sole_reader(c, conv, 1) || conv == other || conv->layer == other->layer)
                continue;
            const hq_layer_t *p = hq_graph_layer(c->graph, conv->layer);
            if ((p->type != HQ_LAYER_CONV && p->type != HQ_LAYER_DW) || p->params.elementwise_add ||
                p->params.activation != HQ_ACT_LINEAR)
                continue;
            if (memcmp(&sa, &sb, sizeof sa))
                break;
            onnxi_layer_params(c, conv->layer)->elementwise_add = true;
            if ((st = onnxi_connect_value(c, other, conv->layer)) != HQ_OK ||
                (st = hq_layer_add_original_name(c->graph, conv->layer, onnxi_node_label(n),
                                                 c->err)) != HQ_OK)
                return st;
            return onnxi_set_layer_output(c, n, 0, conv->layer, 0, conv->rank);
        }
    }
    int index;
    if ((st = onnxi_new_layer(c, type, n, &index)) != HQ_OK ||
        (st = onnxi_connect_value(c, a, index)) != HQ_OK ||
        (st = onnxi_connect_value(c, b, index)) != HQ_OK)
        return st;
    return onnxi_set_layer_output(c, n, 0, index, 0, a->rank);
}

hq_status_t onnxi_convert_add(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_binary(c, n, HQ_LAYER_EW_ADD);
}

hq_status_t onnxi_convert_sub(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_binary(c, n, HQ_LAYER_EW_SUB);
}

hq_status_t onnxi_convert_mul(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_binary(c, n, HQ_LAYER_EW_MULT);
}

hq_status_t onnxi_convert_div(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_binary(c, n, HQ_LAYER_EW_DIV);
}

hq_status_t onnxi_convert_max(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_binary(c, n, HQ_LAYER_EW_MAX);
}

hq_status_t onnxi_convert_min(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_binary(c, n, HQ_LAYER_EW_MIN);
}
