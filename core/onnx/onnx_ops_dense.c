/* onnx_ops_dense.c — Gemm and MatMul (dense layers, rows permuted when the input is a pending
 * NCHW flatten; MatMul of two computed tensors a matmul layer) and BatchNormalization (folded into the producing conv/dense when it is the only
 * reader, else a batch_norm layer); the scale/shift folding Add, Sub, Mul and Div share. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/layer_types.h"
#include "onnx/onnx_internal.h"

/* Gemm (gemm = true: transB, alpha, beta, bias C) and MatMul. */
static hq_status_t convert_dense(onnxi_ctx_t *c, const Onnx__NodeProto *n, bool gemm)
{
    onnxi_value_t *x;
    hq_tensor_t *w, *b = NULL;
    hq_status_t st = onnxi_node_input(c, n, 0, &x);
    if (st != HQ_OK)
        return st;
    if (!x || x->kind != VALUE_LAYER)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "input A must be a computed tensor");
    if ((st = onnxi_const_input(c, n, 1, true, &w)) != HQ_OK ||
        (gemm && (st = onnxi_const_input(c, n, 2, false, &b)) != HQ_OK))
        return st;
    if (gemm && onnxi_attr_int(n, "transA", 0))
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "transA=1");
    int rank;
    int64_t dims[4];
    if ((st = onnxi_onnx_shape_of(c, x, &rank, dims)) != HQ_OK)
        return st;
    if (rank != 2)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED,
                  "input '%s' has rank %d; a dense layer needs [N, C] (flatten first)", x->name,
                  rank);
    bool trans_b = gemm && onnxi_attr_int(n, "transB", 0);
    if (w->ndim != 2 || w->dtype != HQ_DTYPE_FLOAT32)
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "weights '%s' must be a 2-D float tensor", n->input[1]);
    int64_t cin = trans_b ? w->shape[1] : w->shape[0], cout = trans_b ? w->shape[0] : w->shape[1];
    if (cin != dims[1] || cout < 1)
        NODE_FAIL(c, n, HQ_ERR_INVALID, "weights take %lld inputs, the tensor has %lld",
                  (long long)cin, (long long)dims[1]);
    float alpha = gemm ? onnxi_attr_float(n, "alpha", 1.0f) : 1.0f;
    float beta = gemm ? onnxi_attr_float(n, "beta", 1.0f) : 1.0f;
    float *bvec = NULL;
    if (b && !onnxi_channel_vector(b, 2, cout, &bvec))
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "bias C must be a scalar or have one value per output");
    int index;
    st = onnxi_new_layer(c, HQ_LAYER_DENSE, n, &index);
    if (st == HQ_OK)
        st = onnxi_connect_value(c, x, index);
    int64_t kshape[2] = {cin, cout};
    hq_tensor_t *kernel = NULL, *bias = NULL;
    if (st == HQ_OK)
        st = onnxi_new_tensor(c, HQ_DTYPE_FLOAT32, 2, kshape, &kernel);
    if (st == HQ_OK)
        st = onnxi_put_param(c, index, "kernel:0", kernel);
    if (st == HQ_OK)
        st = onnxi_new_tensor(c, HQ_DTYPE_FLOAT32, 1, &cout, &bias);
    if (st == HQ_OK)
        st = onnxi_put_param(c, index, "bias:0", bias);
    if (st != HQ_OK) {
        free(bvec);
        return st;
    }
    const float *src = w->data;
    float *dst = kernel->data;
    for (int64_t r = 0; r < cin; r++) {
        /* A flattened NCHW tensor feeds row r = c*H*W + h*W + w; hq flattens NHWC. */
        int64_t row = r;
        if (x->flat) {
            int64_t hw = x->flat_h * x->flat_w, ch = r / hw, pos = r % hw;
            row = pos * x->flat_c + ch;
        }
        for (int64_t o = 0; o < cout; o++)
            dst[row * cout + o] = alpha * (trans_b ? src[o * cin + r] : src[r * cout + o]);
    }
    for (int64_t o = 0; o < cout; o++)
        ((float *)bias->data)[o] = bvec ? beta * bvec[o] : 0.0f;
    free(bvec);
    onnxi_layer_params(c, index)->kernel_in = (int)cin;
    onnxi_layer_params(c, index)->kernel_out = (int)cout;
    onnxi_layer_params(c, index)->has_bias = true;
    return onnxi_set_layer_output(c, n, 0, index, 0, 2);
}

hq_status_t onnxi_convert_gemm(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    return convert_dense(c, n, true);
}

/* MatMul of two computed tensors [N, C, I, K] x [N, C, K, J] (attention's Q K^T and A V, with
 * the heads as C): a matmul layer, one product per channel of the hq tensors [-1, I, K, C] and
 * [-1, K, J, C]. */
static hq_status_t convert_matmul_computed(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    onnxi_value_t *a, *b;
    hq_status_t st;
    if ((st = onnxi_layer_input(c, n, 0, &a)) != HQ_OK ||
        (st = onnxi_layer_input(c, n, 1, &b)) != HQ_OK)
        return st;
    int ra, rb;
    int64_t da[4], db[4];
    if ((st = onnxi_onnx_shape_of(c, a, &ra, da)) != HQ_OK ||
        (st = onnxi_onnx_shape_of(c, b, &rb, db)) != HQ_OK)
        return st;
    if (ra != 4 || rb != 4 || da[1] != db[1] || da[3] != db[2])
        NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED,
                  "MatMul of two computed tensors of ranks %d and %d; hq multiplies [N, C, I, K] "
                  "by [N, C, K, J] (rank 4, the same C, the first's last extent the second's third)",
                  ra, rb);
    int index;
    if ((st = onnxi_new_layer(c, HQ_LAYER_MATMUL, n, &index)) != HQ_OK ||
        (st = onnxi_connect_value(c, a, index)) != HQ_OK ||
        (st = onnxi_connect_value(c, b, index)) != HQ_OK)
        return st;
    return onnxi_set_layer_output(c, n, 0, index, 0, 4);
}

hq_status_t onnxi_convert_matmul(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    onnxi_value_t *b = NULL;
    hq_status_t st = n->n_input >= 2 ? onnxi_node_input(c, n, 1, &b) : HQ_OK;
    if (st != HQ_OK)
        return st;
    return b && b->kind == VALUE_LAYER ? convert_matmul_computed(c, n) : convert_dense(c, n, false);
}

/* True when producer of x takes scale/shift folding (weights, bias, linear activation). */
bool onnxi_can_absorb_affine(onnxi_ctx_t *c, const onnxi_value_t *x, bool scale)
{
    if (!onnxi_sole_reader(c, x, 1))
        return false;
    const hq_layer_t *p = hq_graph_layer(c->graph, x->layer);
    if (!hqi_layer_traits(p->type)->has_weights)
        return false;
    if (p->params.activation != HQ_ACT_LINEAR)
        return false;
    if (scale && p->params.elementwise_add)
        return false;
    return onnxi_get_param(c, x->layer, "kernel:0") && onnxi_get_param(c, x->layer, "bias:0");
}

/* y = x * scale[o] + shift[o] folded into x's producer (output channel is the last kernel axis). */
void onnxi_absorb_affine(onnxi_ctx_t *c, const onnxi_value_t *x, const float *scale,
                         const float *shift)
{
    hq_tensor_t *k = onnxi_get_param(c, x->layer, "kernel:0"),
                *b = onnxi_get_param(c, x->layer, "bias:0");
    int64_t cout = b->shape[0], count = hq_tensor_count(k);
    float *kd = k->data, *bd = b->data;
    if (scale)
        for (int64_t i = 0; i < count; i++)
            kd[i] *= scale[i % cout];
    for (int64_t o = 0; o < cout; o++)
        bd[o] = bd[o] * (scale ? scale[o] : 1.0f) + (shift ? shift[o] : 0.0f);
}

hq_status_t onnxi_convert_batch_norm(onnxi_ctx_t *c, const Onnx__NodeProto *n)
{
    onnxi_value_t *x;
    hq_tensor_t *t[4];
    hq_status_t st = onnxi_layer_input(c, n, 0, &x);
    for (int i = 0; i < 4 && st == HQ_OK; i++)
        st = onnxi_const_input(c, n, (size_t)i + 1, true, &t[i]);
    if (st != HQ_OK)
        return st;
    int64_t channels;
    if ((st = onnxi_channels_of(c, x, &channels)) != HQ_OK)
        return st;
    for (int i = 0; i < 4; i++)
        if (hq_tensor_count(t[i]) != channels || t[i]->dtype != HQ_DTYPE_FLOAT32)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "input '%s' has %lld values for %lld channels",
                      n->input[i + 1], (long long)hq_tensor_count(t[i]), (long long)channels);
    float eps = onnxi_attr_float(n, "epsilon", 1e-5f);
    if (!(eps >= 0 && eps <= CLIP_OPEN))
        NODE_FAIL(c, n, HQ_ERR_INVALID, "epsilon %g", eps);
    const float *gamma = t[0]->data, *beta = t[1]->data, *mean = t[2]->data, *var = t[3]->data;
    if (onnxi_can_absorb_affine(c, x, true)) {
        float *scale = malloc((size_t)channels * sizeof *scale);
        float *shift = malloc((size_t)channels * sizeof *shift);
        if (!scale || !shift) {
            free(scale);
            free(shift);
            return hqi_nomem(c->err, c->name);
        }
        for (int64_t o = 0; o < channels; o++) {
            scale[o] = gamma[o] / sqrtf(var[o] + eps);
            shift[o] = beta[o] - mean[o] * scale[o];
        }
        onnxi_absorb_affine(c, x, scale, shift);
        free(scale);
        free(shift);
        onnxi_layer_params(c, x->layer)->batch_norm = true;
        if ((st = hq_layer_add_original_name(c->graph, x->layer, onnxi_node_label(n), c->err)) !=
            HQ_OK)
            return st;
        return onnxi_set_layer_output(c, n, 0, x->layer, 0, x->rank);
    }
    int index;
    if ((st = onnxi_new_layer(c, HQ_LAYER_BATCH_NORM, n, &index)) != HQ_OK ||
        (st = onnxi_connect_value(c, x, index)) != HQ_OK)
        return st;
    onnxi_layer_params(c, index)->epsilon = eps;
    static const char *keys[4] = {"gamma:0", "beta:0", "moving_mean:0", "moving_variance:0"};
    for (int i = 0; i < 4; i++) {
        hq_tensor_t *copy;
        if ((st = onnxi_vector_tensor(c, t[i]->data, channels, &copy)) != HQ_OK ||
            (st = onnxi_put_param(c, index, keys[i], copy)) != HQ_OK)
            return st;
    }
    return onnxi_set_layer_output(c, n, 0, index, 0, x->rank);
}