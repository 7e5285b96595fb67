/* onnx_ops.c — the op table: one row per ONNX op type hq knows, saying how a node of that type
 * becomes layers (convert) and how it is computed when its inputs are all constants (fold).
 * Adding an op is a row here plus its convert and/or fold function (docs/onnx.md). */
#include <string.h>

#include "onnx/onnx_internal.h"

static const onnxi_op_t op_table[] = {
    /* windows (onnx_ops_window.c); on [N, C, L] they run as the 2-D op with H = 1 */
    {"Conv", onnxi_convert_conv, NULL, true},
    {"ConvTranspose", onnxi_convert_conv_transpose, NULL, true},
    {"MaxPool", onnxi_convert_max_pool, NULL, true},
    {"AveragePool", onnxi_convert_average_pool, NULL, true},
    {"GlobalAveragePool", onnxi_convert_global_average_pool, NULL, true},
    {"GlobalMaxPool", onnxi_convert_global_max_pool, NULL, true},
    {"ReduceMean", onnxi_convert_reduce_mean, onnxi_fold_reduce_mean, false},
    /* dense layers and batch norm (onnx_ops_dense.c) */
    {"Gemm", onnxi_convert_gemm, NULL, false},
    {"MatMul", onnxi_convert_matmul, NULL, false},
    {"BatchNormalization", onnxi_convert_batch_norm, NULL, false},
    /* layer normalization over the channels (onnx_layer_norm.c) */
    {"LayerNormalization", onnxi_convert_layer_norm, NULL, false},
    /* activations (onnx_ops_activation.c) */
    {"Relu", onnxi_convert_relu, NULL, false},
    {"Clip", onnxi_convert_clip, NULL, false},
    {"LeakyRelu", onnxi_convert_leaky_relu, NULL, false},
    {"PRelu", onnxi_convert_prelu, NULL, false},
    {"Sigmoid", onnxi_convert_sigmoid, NULL, false},
    {"Tanh", onnxi_convert_tanh, NULL, false},
    {"HardSigmoid", onnxi_convert_hard_sigmoid, NULL, false},
    {"HardSwish", onnxi_convert_hard_swish, NULL, false},
    {"Exp", onnxi_convert_exp, NULL, false},
    {"Gelu", onnxi_convert_gelu, NULL, false},
    /* elementwise (onnx_ops_elementwise.c; folds in onnx_fold.c) */
    {"Add", onnxi_convert_add, onnxi_fold_add, false},
    {"Sub", onnxi_convert_sub, onnxi_fold_sub, false},
    {"Mul", onnxi_convert_mul, onnxi_fold_mul, false},
    {"Div", onnxi_convert_div, onnxi_fold_div, false},
    {"Max", onnxi_convert_max, onnxi_fold_max, false},
    {"Min", onnxi_convert_min, onnxi_fold_min, false},
    /* layout (onnx_ops_layout.c, onnx_ops_reshape.c; folds in onnx_fold_shape.c) */
    {"Concat", onnxi_convert_concat, onnxi_fold_concat, false},
    {"Split", onnxi_convert_split, onnxi_fold_split, false},
    {"Slice", onnxi_convert_slice, onnxi_fold_slice, false},
    {"Pad", onnxi_convert_pad, NULL, false},
    {"Reshape", onnxi_convert_reshape, onnxi_fold_reshape, false},
    {"Flatten", onnxi_convert_flatten, onnxi_fold_flatten, false},
    {"Squeeze", onnxi_convert_squeeze, onnxi_fold_squeeze, false},
    {"Unsqueeze", onnxi_convert_unsqueeze, onnxi_fold_unsqueeze, false},
    {"Transpose", onnxi_convert_transpose, onnxi_fold_transpose, false},
    {"DepthToSpace", onnxi_convert_depth_to_space, NULL, false},
    {"SpaceToDepth", onnxi_convert_space_to_depth, NULL, false},
    {"Softmax", onnxi_convert_softmax, NULL, false},
    {"Identity", onnxi_convert_identity, onnxi_fold_identity, false},
    {"Dropout", onnxi_convert_dropout, onnxi_fold_identity, false},
    {"Shape", onnxi_convert_shape, onnxi_fold_shape, false},
    {"Cast", onnxi_convert_cast, onnxi_fold_cast, false},
    /* resize (onnx_ops_resize.c) */
    {"Resize", onnxi_convert_resize, NULL, false},
    {"Upsample", onnxi_convert_upsample, NULL, false},
    /* constant-only ops: folded, never layers (onnx_fold.c) */
    {"Neg", NULL, onnxi_fold_neg, false},
    {"Sqrt", NULL, onnxi_fold_sqrt, false},
    {"Floor", NULL, onnxi_fold_floor, false},
    {"Ceil", NULL, onnxi_fold_ceil, false},
    {"Reciprocal", NULL, onnxi_fold_reciprocal, false},
    {"ConstantOfShape", NULL, onnxi_fold_constant_of_shape, false},
    {"Gather", NULL, onnxi_fold_gather, false},
    {"Size", NULL, onnxi_fold_size, false},
    /* constant-only ops of onnx_fold_logic.c: comparisons and logic give bool (int64 0 / 1) */
    {"Equal", NULL, onnxi_fold_equal, false},
    {"Less", NULL, onnxi_fold_less, false},
    {"LessOrEqual", NULL, onnxi_fold_less_or_equal, false},
    {"Greater", NULL, onnxi_fold_greater, false},
    {"GreaterOrEqual", NULL, onnxi_fold_greater_or_equal, false},
    {"And", NULL, onnxi_fold_and, false},
    {"Or", NULL, onnxi_fold_or, false},
    {"Xor", NULL, onnxi_fold_xor, false},
    {"Not", NULL, onnxi_fold_not, false},
    {"Where", NULL, onnxi_fold_where, false},
    {"Sum", NULL, onnxi_fold_sum, false},
    {"Mean", NULL, onnxi_fold_mean, false},
    {"Mod", NULL, onnxi_fold_mod, false},
    {"Pow", NULL, onnxi_fold_pow, false},
    {"Range", NULL, onnxi_fold_range, false},
    {"Expand", NULL, onnxi_fold_expand, false},
    {"Tile", NULL, onnxi_fold_tile, false},
    {"ReduceSum", NULL, onnxi_fold_reduce_sum, false},
    {"ReduceProd", NULL, onnxi_fold_reduce_prod, false},
    {"ReduceMax", NULL, onnxi_fold_reduce_max, false},
    {"ReduceMin", NULL, onnxi_fold_reduce_min, false},
};

const onnxi_op_t *onnxi_find_op(const char *op_type)
{
    for (size_t i = 0; i < sizeof op_table / sizeof op_table[0]; i++)
        if (!strcmp(op_table[i].name, op_type))
            return &op_table[i];
    return NULL;
}
