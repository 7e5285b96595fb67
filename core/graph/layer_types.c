/* layer_types.c — the layer type table: one row per type saying everything hq knows about the
 * type (see include/hq/layer_types.h for what each field means), and the lookups served from it.
 * A type's kernels and integer form are elsewhere (docs/architecture.md, "Adding a layer type");
 * every other file asks this table rather than listing types. */
#include <string.h>

#include "graph/graph_internal.h"
#include "graph/layer_types.h"

#define CONV_KEYS                                                                                  \
    (HQI_P_KERNEL_SHAPE | HQI_P_STRIDES | HQI_P_DILATIONS | HQI_P_GROUPS | HQI_P_PADDING |         \
     HQI_P_PADS | HQI_P_BIAS | HQI_P_BATCH_NORM | HQI_P_ELEMENTWISE_ADD)
#define POOL_KEYS (HQI_P_KERNEL_SHAPE | HQI_P_STRIDES | HQI_P_PADDING | HQI_P_PADS)

/* Opens every row's traits. */
#define TRAITS .struct_size = sizeof(hq_layer_type_traits_t)

/* The layers that only move values of one input (or several, concat): one encoding, one width,
 * one calibrated range with their inputs. */
#define MOVES_VALUES                                                                               \
    .passes_precision = true, .passes_codes = true, .range_preserving = true,                      \
    .repeats_values = true, .quant_form = HQ_QUANT_CODES

const hqi_layer_type_row_t hqi_layer_type_rows[HQ_LAYER_TYPE_COUNT + 1] = {
    [HQ_LAYER_INPUT] = {.traits = {TRAITS, .name = "input_layer", .min_inputs = 0, .max_inputs = 0,
                                   .quant_form = HQ_QUANT_INPUT},
                        .shape_is_stored = true},
    [HQ_LAYER_OUTPUT] = {.traits = {TRAITS, .name = "output_layer", .min_inputs = 1,
                                    .max_inputs = 1, MOVES_VALUES}},
    [HQ_LAYER_CONV] = {.traits = {TRAITS, .name = "conv", .min_inputs = 1, .max_inputs = 2,
                                  .has_weights = true, .fused_activation = true,
                                  .quant_form = HQ_QUANT_WEIGHTED},
                       .param_keys = CONV_KEYS},
    [HQ_LAYER_DW] = {.traits = {TRAITS, .name = "dw", .min_inputs = 1, .max_inputs = 2,
                                .has_weights = true, .fused_activation = true,
                                .quant_form = HQ_QUANT_WEIGHTED},
                     .param_keys = CONV_KEYS},
    [HQ_LAYER_DECONV] = {.traits = {TRAITS, .name = "deconv", .min_inputs = 1, .max_inputs = 1,
                                    .has_weights = true, .fused_activation = true,
                                    .quant_form = HQ_QUANT_WEIGHTED},
                         .param_keys = (CONV_KEYS & ~HQI_P_ELEMENTWISE_ADD) | HQI_P_OUTPUT_PADDING},
    [HQ_LAYER_DENSE] = {.traits = {TRAITS, .name = "dense", .min_inputs = 1, .max_inputs = 1,
                                   .has_weights = true, .fused_activation = true,
                                   .quant_form = HQ_QUANT_WEIGHTED},
                        .param_keys = HQI_P_KERNEL_SHAPE | HQI_P_BIAS | HQI_P_BATCH_NORM},
    [HQ_LAYER_BATCH_NORM] = {.traits = {TRAITS, .name = "batch_norm", .min_inputs = 1,
                                        .max_inputs = 1, .fused_activation = true,
                                        .quant_form = HQ_QUANT_AFFINE},
                             .param_keys = HQI_P_EPSILON},
    [HQ_LAYER_ACTIVATION] = {.traits = {TRAITS, .name = "activation", .min_inputs = 1,
                                        .max_inputs = 1, .fused_activation = true,
                                        .quant_form = HQ_QUANT_ACTIVATION}},
    [HQ_LAYER_NORMALIZATION] = {.traits = {TRAITS, .name = "normalization", .min_inputs = 1,
                                           .max_inputs = 1, .fused_activation = true,
                                           .quant_form = HQ_QUANT_AFFINE},
                                .param_keys = HQI_P_MEAN_STD},
    [HQ_LAYER_MAXPOOL] = {.traits = {TRAITS, .name = "maxpool", .min_inputs = 1, .max_inputs = 1,
                                     MOVES_VALUES},
                          .param_keys = POOL_KEYS | HQI_P_DILATIONS},
    [HQ_LAYER_AVGPOOL] = {.traits = {TRAITS, .name = "avgpool", .min_inputs = 1, .max_inputs = 1,
                                     .passes_precision = true, .quant_form = HQ_QUANT_POOL},
                          .param_keys = POOL_KEYS | HQI_P_COUNT_INCLUDE_PAD},
    [HQ_LAYER_GLOBAL_AVG_POOL] = {.traits = {TRAITS, .name = "global_avg_pool", .min_inputs = 1,
                                             .max_inputs = 1, .passes_precision = true,
                                             .quant_form = HQ_QUANT_POOL}},
    [HQ_LAYER_EW_ADD] = {.traits = {TRAITS, .name = "ew_add", .min_inputs = 2, .max_inputs = 2,
                                    .passes_precision = true, .fused_activation = true,
                                    .ew_op = HQ_EW_ADD, .quant_form = HQ_QUANT_ELEMENTWISE}},
    [HQ_LAYER_EW_SUB] = {.traits = {TRAITS, .name = "ew_sub", .min_inputs = 2, .max_inputs = 2,
                                    .passes_precision = true, .fused_activation = true,
                                    .ew_op = HQ_EW_SUB, .quant_form = HQ_QUANT_ELEMENTWISE}},
    /* a product's range is not its inputs': its width is its own */
    [HQ_LAYER_EW_MULT] = {.traits = {TRAITS, .name = "ew_mult", .min_inputs = 2, .max_inputs = 2,
                                     .fused_activation = true, .ew_op = HQ_EW_MULT,
                                     .quant_form = HQ_QUANT_ELEMENTWISE}},
    /* float only: no integer division */
    [HQ_LAYER_EW_DIV] = {.traits = {TRAITS, .name = "ew_div", .min_inputs = 2, .max_inputs = 2,
                                    .fused_activation = true, .ew_op = HQ_EW_DIV,
                                    .quant_form = HQ_QUANT_NONE}},
    [HQ_LAYER_EW_MAX] = {.traits = {TRAITS, .name = "ew_max", .min_inputs = 2, .max_inputs = 2,
                                    .passes_precision = true, .fused_activation = true,
                                    .ew_op = HQ_EW_MAX, .quant_form = HQ_QUANT_ELEMENTWISE}},
    [HQ_LAYER_EW_MIN] = {.traits = {TRAITS, .name = "ew_min", .min_inputs = 2, .max_inputs = 2,
                                    .passes_precision = true, .fused_activation = true,
                                    .ew_op = HQ_EW_MIN, .quant_form = HQ_QUANT_ELEMENTWISE}},
    [HQ_LAYER_CONCAT] = {.traits = {TRAITS, .name = "concat", .min_inputs = 2, .max_inputs = -1,
                                    MOVES_VALUES},
                         .param_keys = HQI_P_AXIS},
    [HQ_LAYER_FEATURE_SPLITTER] = {.traits = {TRAITS, .name = "feature_splitter", .min_inputs = 1,
                                              .max_inputs = 1, MOVES_VALUES},
                                   .param_keys = HQI_P_AXIS | HQI_P_SPLIT_SIZES},
    [HQ_LAYER_SLICE] = {.traits = {TRAITS, .name = "slice", .min_inputs = 1, .max_inputs = 1,
                                   MOVES_VALUES},
                        .param_keys = HQI_P_SLICE},
    [HQ_LAYER_PAD] = {.traits = {TRAITS, .name = "pad", .min_inputs = 1, .max_inputs = 1,
                                 MOVES_VALUES},
                      .param_keys = HQI_P_PADS | HQI_P_PAD_MODE},
    /* bilinear computes new values, so only a nearest resize shares its input's range (a param:
     * core/quant/ranges.c decides); the integer kernel interpolates codes in the input's
     * encoding */
    [HQ_LAYER_RESIZE] = {.traits = {TRAITS, .name = "resize", .min_inputs = 1, .max_inputs = 1,
                                    .passes_precision = true, .passes_codes = true,
                                    .quant_form = HQ_QUANT_CODES},
                         .param_keys = HQI_P_RESIZE,
                         .shape_is_stored = true},
    [HQ_LAYER_DEPTH_TO_SPACE] = {.traits = {TRAITS, .name = "depth_to_space", .min_inputs = 1,
                                            .max_inputs = 1, MOVES_VALUES},
                                 .param_keys = HQI_P_BLOCK_SIZE | HQI_P_D2S_MODE},
    [HQ_LAYER_SPACE_TO_DEPTH] = {.traits = {TRAITS, .name = "space_to_depth", .min_inputs = 1,
                                            .max_inputs = 1, MOVES_VALUES},
                                 .param_keys = HQI_P_BLOCK_SIZE},
    [HQ_LAYER_SOFTMAX] = {.traits = {TRAITS, .name = "softmax", .min_inputs = 1, .max_inputs = 1,
                                     .quant_form = HQ_QUANT_SOFTMAX},
                          .param_keys = HQI_P_AXIS},
    [HQ_LAYER_CONST_INPUT] = {.traits = {TRAITS, .name = "const_input", .min_inputs = 0,
                                         .max_inputs = 0, .quant_form = HQ_QUANT_CONST},
                              .shape_is_stored = true},
    [HQ_LAYER_RESHAPE] = {.traits = {TRAITS, .name = "reshape", .min_inputs = 1, .max_inputs = 1,
                                     MOVES_VALUES},
                          .shape_is_stored = true},
    [HQ_LAYER_TRANSPOSE] = {.traits = {TRAITS, .name = "transpose", .min_inputs = 1,
                                       .max_inputs = 1, MOVES_VALUES},
                            .param_keys = HQI_P_PERM},
    /* selects input codes (so keeps their encoding), but hq optimize gives its output its own
     * calibrated range and width */
    [HQ_LAYER_REDUCE_MAX] = {.traits = {TRAITS, .name = "reduce_max", .min_inputs = 1,
                                        .max_inputs = 1, .passes_codes = true,
                                        .repeats_values = true, .quant_form = HQ_QUANT_CODES},
                             .param_keys = HQI_P_AXIS},
    [HQ_LAYER_REDUCE_SUM] = {.traits = {TRAITS, .name = "reduce_sum", .min_inputs = 1,
                                        .max_inputs = 1, .quant_form = HQ_QUANT_NONE},
                             .param_keys = HQI_P_AXIS},
    [HQ_LAYER_ARGMAX] = {.traits = {TRAITS, .name = "argmax", .min_inputs = 1, .max_inputs = 1,
                                    .quant_form = HQ_QUANT_INDEX}},
    [HQ_LAYER_CHANNEL_SHUFFLE] = {.traits = {TRAITS, .name = "channel_shuffle", .min_inputs = 1,
                                             .max_inputs = 1, MOVES_VALUES},
                                  .param_keys = HQI_P_GROUPS},
    /* its output range is its own (gamma, beta); 16-bit inputs or outputs are chosen per layer */
    [HQ_LAYER_LAYER_NORM] = {.traits = {TRAITS, .name = "layer_norm", .min_inputs = 1,
                                        .max_inputs = 1, .quant_form = HQ_QUANT_NORM},
                             .param_keys = HQI_P_EPSILON},
    /* float only: no integer form yet (hq optimize and compile refuse it naming the layer) */
    [HQ_LAYER_MATMUL] = {.traits = {TRAITS, .name = "matmul", .min_inputs = 2, .max_inputs = 2,
                                    .quant_form = HQ_QUANT_NONE}},
    /* stands for every out-of-range type in hqi_layer_traits() */
    [HQ_LAYER_TYPE_COUNT] = {.traits = {TRAITS, .name = NULL}},
};

HQ_API const hq_layer_type_traits_t *hq_layer_type_traits(hq_layer_type_t type)
{
    if ((unsigned)type >= HQ_LAYER_TYPE_COUNT)
        return NULL;
    return &hqi_layer_type_rows[type].traits;
}

HQ_API const char *hq_layer_type_name(hq_layer_type_t type)
{
    return hqi_layer_traits(type)->name;
}

HQ_API hq_status_t hq_layer_type_from_name(const char *name, hq_layer_type_t *type)
{
    for (int i = 0; name && i < HQ_LAYER_TYPE_COUNT; i++) {
        if (strcmp(hqi_layer_type_rows[i].traits.name, name) == 0) {
            if (type)
                *type = (hq_layer_type_t)i;
            return HQ_OK;
        }
    }
    return HQ_ERR_NOT_FOUND;
}

unsigned hqi_layer_param_keys(hq_layer_type_t type)
{
    const hqi_layer_type_row_t *row = hqi_layer_type_row(type);
    return row->param_keys | (row->traits.fused_activation ? HQI_P_ACTIVATION : 0u);
}
