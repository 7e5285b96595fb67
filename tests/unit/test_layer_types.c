/* test_layer_types.c — the layer type table: complete, one consistent row per type, and the
 * properties the quantizer, emulators and inspectors read from it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "emulate/kernels_ref.h"
#include "graph/layer_types.h"
#include "hq/hq.h"
#include "numerics/lower.h"

static const hq_layer_type_traits_t *traits(hq_layer_type_t type)
{
    const hq_layer_type_traits_t *t = hq_layer_type_traits(type);
    assert_non_null(t);
    return t;
}

static void every_type_has_a_full_row_and_a_name_that_round_trips(void **state)
{
    (void)state;
    for (int i = 0; i < HQ_LAYER_TYPE_COUNT; i++) {
        const hq_layer_type_traits_t *t = traits((hq_layer_type_t)i);
        assert_int_equal(t->struct_size, sizeof(hq_layer_type_traits_t));
        assert_non_null(t->name);
        assert_string_equal(hq_layer_type_name((hq_layer_type_t)i), t->name);
        hq_layer_type_t back;
        assert_int_equal(hq_layer_type_from_name(t->name, &back), HQ_OK);
        assert_int_equal(back, i);
        assert_true(t->min_inputs >= 0);
        assert_true(t->max_inputs == -1 || t->max_inputs >= t->min_inputs);
        assert_true((unsigned)t->ew_op < HQ_EW_COUNT);
        assert_true((unsigned)t->quant_form < HQ_QUANT_FORM_COUNT);
        /* the internal accessor reads the same row */
        assert_ptr_equal(hqi_layer_traits((hq_layer_type_t)i), t);
    }
    assert_string_equal(traits(HQ_LAYER_INPUT)->name, "input_layer");
    assert_string_equal(traits(HQ_LAYER_ARGMAX)->name, "argmax");
}

static void out_of_range_types_have_no_traits_and_no_name(void **state)
{
    (void)state;
    assert_null(hq_layer_type_traits(HQ_LAYER_TYPE_COUNT));
    assert_null(hq_layer_type_traits((hq_layer_type_t)-1));
    assert_null(hq_layer_type_name(HQ_LAYER_TYPE_COUNT));
    assert_int_equal(hq_layer_type_from_name(NULL, NULL), HQ_ERR_NOT_FOUND);
    assert_int_equal(hq_layer_type_from_name("Conv", NULL), HQ_ERR_NOT_FOUND);
    /* inside libhq an unknown type reads as a row where every property is false */
    const hq_layer_type_traits_t *none = hqi_layer_traits((hq_layer_type_t)1000);
    assert_non_null(none);
    assert_null(none->name);
    assert_false(none->has_weights || none->passes_precision || none->passes_codes ||
                 none->range_preserving || none->repeats_values || none->fused_activation);
    assert_int_equal(none->ew_op, HQ_EW_NONE);
    assert_int_equal(none->quant_form, HQ_QUANT_NONE);
}

static void conv_dw_deconv_and_dense_have_weights_and_nothing_else_does(void **state)
{
    (void)state;
    for (int i = 0; i < HQ_LAYER_TYPE_COUNT; i++) {
        bool expected =
            i == HQ_LAYER_CONV || i == HQ_LAYER_DW || i == HQ_LAYER_DECONV || i == HQ_LAYER_DENSE;
        assert_int_equal(traits((hq_layer_type_t)i)->has_weights, expected);
        assert_int_equal(traits((hq_layer_type_t)i)->quant_form == HQ_QUANT_WEIGHTED, expected);
    }
}

static void elementwise_types_name_their_op_and_take_two_inputs(void **state)
{
    (void)state;
    assert_int_equal(traits(HQ_LAYER_EW_ADD)->ew_op, HQ_EW_ADD);
    assert_int_equal(traits(HQ_LAYER_EW_SUB)->ew_op, HQ_EW_SUB);
    assert_int_equal(traits(HQ_LAYER_EW_MULT)->ew_op, HQ_EW_MULT);
    assert_int_equal(traits(HQ_LAYER_EW_DIV)->ew_op, HQ_EW_DIV);
    assert_int_equal(traits(HQ_LAYER_EW_MAX)->ew_op, HQ_EW_MAX);
    assert_int_equal(traits(HQ_LAYER_EW_MIN)->ew_op, HQ_EW_MIN);
    int elementwise = 0;
    for (int i = 0; i < HQ_LAYER_TYPE_COUNT; i++) {
        const hq_layer_type_traits_t *t = traits((hq_layer_type_t)i);
        if (t->ew_op == HQ_EW_NONE) {
            assert_int_not_equal(t->quant_form, HQ_QUANT_ELEMENTWISE);
            continue;
        }
        elementwise++;
        assert_int_equal(t->min_inputs, 2);
        assert_int_equal(t->max_inputs, 2);
        assert_true(t->fused_activation);
    }
    assert_int_equal(elementwise, HQ_EW_COUNT - 1);
}

static void elementwise_ops_map_onto_the_float_and_integer_kernels(void **state)
{
    (void)state;
    assert_int_equal(hqi_ref_ew_op_of(traits(HQ_LAYER_EW_MULT)->ew_op), HQI_REF_EW_MUL);
    assert_int_equal(hqi_ref_ew_op_of(traits(HQ_LAYER_EW_DIV)->ew_op), HQI_REF_EW_DIV);
    assert_int_equal(hqi_ref_ew_op_of(traits(HQ_LAYER_EW_MIN)->ew_op), HQI_REF_EW_MIN);
    assert_int_equal(hqi_ref_ew_op_of(HQ_EW_NONE), HQI_REF_EW_COUNT);
    /* integer ew_sub is an add with b's multiplier negated; ew_div has no integer form */
    assert_int_equal(hqi_quant_ew_kernel_op(HQ_LAYER_EW_ADD), HQRT_EW_ADD);
    assert_int_equal(hqi_quant_ew_kernel_op(HQ_LAYER_EW_SUB), HQRT_EW_ADD);
    assert_int_equal(hqi_quant_ew_kernel_op(HQ_LAYER_EW_MULT), HQRT_EW_MULT);
    assert_int_equal(hqi_quant_ew_kernel_op(HQ_LAYER_EW_MAX), HQRT_EW_MAX);
    assert_int_equal(hqi_quant_ew_kernel_op(HQ_LAYER_EW_MIN), HQRT_EW_MIN);
    assert_int_equal(hqi_quant_ew_kernel_op(HQ_LAYER_EW_DIV), -1);
    assert_int_equal(hqi_quant_ew_kernel_op(HQ_LAYER_CONV), -1);
}

static void every_type_with_an_activation_param_carries_a_fused_activation(void **state)
{
    (void)state;
    static const hq_layer_type_t with[] = {
        HQ_LAYER_CONV,       HQ_LAYER_DW,         HQ_LAYER_DECONV,        HQ_LAYER_DENSE,
        HQ_LAYER_BATCH_NORM, HQ_LAYER_ACTIVATION, HQ_LAYER_NORMALIZATION, HQ_LAYER_EW_ADD,
        HQ_LAYER_EW_SUB,     HQ_LAYER_EW_MULT,    HQ_LAYER_EW_DIV,        HQ_LAYER_EW_MAX,
        HQ_LAYER_EW_MIN,
    };
    int count = 0;
    for (int i = 0; i < HQ_LAYER_TYPE_COUNT; i++)
        count += traits((hq_layer_type_t)i)->fused_activation;
    assert_int_equal(count, (int)(sizeof with / sizeof with[0]));
    for (size_t i = 0; i < sizeof with / sizeof with[0]; i++)
        assert_true(traits(with[i])->fused_activation);
    assert_false(traits(HQ_LAYER_MAXPOOL)->fused_activation);
    assert_false(traits(HQ_LAYER_CONCAT)->fused_activation);
}

static void types_that_pass_codes_are_the_codes_form_and_keep_the_width(void **state)
{
    (void)state;
    for (int i = 0; i < HQ_LAYER_TYPE_COUNT; i++) {
        const hq_layer_type_traits_t *t = traits((hq_layer_type_t)i);
        assert_int_equal(t->passes_codes, t->quant_form == HQ_QUANT_CODES);
        /* sharing a range means sharing the encoding, which means sharing the width */
        if (t->range_preserving) {
            assert_true(t->repeats_values);
            assert_true(t->passes_codes);
            assert_true(t->passes_precision);
        }
        if (t->repeats_values)
            assert_true(t->passes_codes);
    }
    /* the documented exceptions */
    assert_true(traits(HQ_LAYER_REDUCE_MAX)->passes_codes);
    assert_false(traits(HQ_LAYER_REDUCE_MAX)->passes_precision);
    assert_false(traits(HQ_LAYER_REDUCE_MAX)->range_preserving);
    assert_true(traits(HQ_LAYER_RESIZE)->passes_codes);
    assert_false(traits(HQ_LAYER_RESIZE)->repeats_values);
    assert_true(traits(HQ_LAYER_CONCAT)->range_preserving);
    assert_int_equal(traits(HQ_LAYER_CONCAT)->max_inputs, -1);
    /* rescaling types keep the width but not the encoding */
    assert_true(traits(HQ_LAYER_EW_ADD)->passes_precision);
    assert_false(traits(HQ_LAYER_EW_ADD)->passes_codes);
    assert_true(traits(HQ_LAYER_AVGPOOL)->passes_precision);
    assert_false(traits(HQ_LAYER_EW_MULT)->passes_precision);
}

static void only_ew_div_reduce_sum_and_matmul_lack_an_integer_form(void **state)
{
    (void)state;
    for (int i = 0; i < HQ_LAYER_TYPE_COUNT; i++)
        assert_int_equal(traits((hq_layer_type_t)i)->quant_form == HQ_QUANT_NONE,
                         i == HQ_LAYER_EW_DIV || i == HQ_LAYER_REDUCE_SUM || i == HQ_LAYER_MATMUL);
    assert_int_equal(traits(HQ_LAYER_ARGMAX)->quant_form, HQ_QUANT_INDEX);
    assert_int_equal(traits(HQ_LAYER_INPUT)->quant_form, HQ_QUANT_INPUT);
    assert_int_equal(traits(HQ_LAYER_CONST_INPUT)->quant_form, HQ_QUANT_CONST);
    assert_int_equal(traits(HQ_LAYER_LAYER_NORM)->quant_form, HQ_QUANT_NORM);
    assert_int_equal(traits(HQ_LAYER_INPUT)->max_inputs, 0);
    assert_int_equal(traits(HQ_LAYER_CONST_INPUT)->max_inputs, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_type_has_a_full_row_and_a_name_that_round_trips),
        cmocka_unit_test(out_of_range_types_have_no_traits_and_no_name),
        cmocka_unit_test(conv_dw_deconv_and_dense_have_weights_and_nothing_else_does),
        cmocka_unit_test(elementwise_types_name_their_op_and_take_two_inputs),
        cmocka_unit_test(elementwise_ops_map_onto_the_float_and_integer_kernels),
        cmocka_unit_test(every_type_with_an_activation_param_carries_a_fused_activation),
        cmocka_unit_test(types_that_pass_codes_are_the_codes_form_and_keep_the_width),
        cmocka_unit_test(only_ew_div_reduce_sum_and_matmul_lack_an_integer_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
