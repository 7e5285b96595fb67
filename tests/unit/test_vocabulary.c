/* test_vocabulary.c — the model-script vocabulary (core/script/vocabulary.c): which command
 * names it knows and who reads them, the edit distance behind the did-you-mean, and the check of
 * a command: near misses of known names are errors, names far from every known one are reported
 * and kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq/script.h"
#include "script/script_query.h"

/* ---- helpers --------------------------------------------------------------------------------- */

typedef struct reported {
    char text[1024]; /* every `what`, one per line */
    int count;
} reported_t;

static void collect(void *user, const hq_command_t *command, const char *what)
{
    reported_t *r = user;
    (void)command;
    size_t used = strlen(r->text);
    snprintf(r->text + used, sizeof r->text - used, "%s\n", what);
    r->count++;
}

/* Parses one line and checks it; *message gets the error text ("" when none). */
static hq_status_t check_line(const char *line, reported_t *reported, char *message, size_t size)
{
    hq_script_t *script = NULL;
    hq_error_t err = {0};
    if (hq_script_parse(line, strlen(line), "model.alls", &script, &err) != HQ_OK)
        fail_msg("does not parse: %s", err.message);
    hq_status_t st = HQ_OK;
    for (int i = 0; i < hq_script_command_count(script) && st == HQ_OK; i++)
        st = hqi_script_check_command(hq_script_command(script, i), "model.alls", NULL, collect,
                                      reported, &err);
    snprintf(message, size, "%s", st == HQ_OK ? "" : err.message);
    hq_script_destroy(script);
    return st;
}

static void expect_error(const char *line, const char *message)
{
    reported_t reported = {"", 0};
    char got[512];
    assert_int_equal(check_line(line, &reported, got, sizeof got), HQ_ERR_INVALID);
    assert_string_equal(got, message);
}

static void expect_reported(const char *line, const char *what)
{
    reported_t reported = {"", 0};
    char got[512];
    assert_int_equal(check_line(line, &reported, got, sizeof got), HQ_OK);
    assert_string_equal(reported.text, what);
}

/* ---- the table ------------------------------------------------------------------------------- */

static void every_command_of_real_model_zoo_scripts_is_known(void **state)
{
    (void)state;
    static const char *const seen[] = {"buffers",
                                       "compilation_param",
                                       "quantization_param",
                                       "defuse",
                                       "pre_quantization_optimization",
                                       "format_conversion",
                                       "context",
                                       "model_optimization_config",
                                       "shortcut",
                                       "normalization",
                                       "post_quantization_optimization",
                                       "change_output_activation",
                                       "remove_node",
                                       "model_optimization_flavor",
                                       "allocator_param",
                                       "nms_postprocess",
                                       "defuse_block",
                                       "performance_param",
                                       "input_conversion",
                                       "bucket",
                                       "resources_param",
                                       "join",
                                       "context_switch_param",
                                       "shape_splitter",
                                       "resize",
                                       "hef_param",
                                       "output_layer",
                                       "network_group",
                                       "logits_layer",
                                       "platform_param",
                                       "transpose_concat",
                                       "concat",
                                       "spatial_reshape_flow_params",
                                       "mux_demux",
                                       "set_seed",
                                       "output_mux",
                                       "place",
                                       "collapse_depthwise",
                                       NULL};
    for (int i = 0; seen[i]; i++)
        if (!hqi_script_spec(seen[i]))
            fail_msg("'%s' is not in the vocabulary", seen[i]);
}

static void commands_are_read_by_the_quantizer_or_the_compiler(void **state)
{
    (void)state;
    static const char *const quantizer[] = {"normalization",
                                            "input_conversion",
                                            "change_output_activation",
                                            "quantization_param",
                                            "model_optimization_flavor",
                                            "model_optimization_config",
                                            "pre_quantization_optimization",
                                            "post_quantization_optimization",
                                            "nms_postprocess",
                                            "logits_layer",
                                            "resize",
                                            NULL};
    static const char *const compiler[] = {"buffers",         "compilation_param",
                                           "allocator_param", "performance_param",
                                           "resources_param", "context",
                                           "place",           "shortcut",
                                           "defuse",          NULL};
    for (int i = 0; quantizer[i]; i++)
        assert_int_equal(hqi_script_spec(quantizer[i])->side, HQI_SCRIPT_QUANTIZER);
    for (int i = 0; compiler[i]; i++)
        assert_int_equal(hqi_script_spec(compiler[i])->side, HQI_SCRIPT_COMPILER);
}

static void each_name_has_one_row_and_rows_with_first_words_name_them(void **state)
{
    (void)state;
    int count = 0;
    const hqi_script_spec_t *specs = hqi_script_specs(&count);
    assert_true(count > 30);
    for (int i = 0; i < count; i++) {
        assert_ptr_equal(hqi_script_spec(specs[i].name), &specs[i]);
        assert_int_equal(specs[i].words != NULL, specs[i].word_noun != NULL);
        if (specs[i].side == HQI_SCRIPT_COMPILER)
            assert_true(!specs[i].keys && !specs[i].words);
    }
}

static void a_method_of_a_result_is_looked_up_by_its_method(void **state)
{
    (void)state;
    assert_ptr_equal(hqi_script_spec("context_0.place"), hqi_script_spec("place"));
    assert_ptr_equal(hqi_script_spec("net_context_12.place"), hqi_script_spec("place"));
    assert_null(hqi_script_spec("context_0.plase"));
    assert_null(hqi_script_spec("no_such_command"));
    assert_null(hqi_script_spec(NULL));
}

/* ---- edit distance and near misses ----------------------------------------------------------- */

static void edit_distance_counts_each_insertion_deletion_substitution_and_swap_as_one(void **state)
{
    (void)state;
    assert_int_equal(hqi_script_edit_distance("", ""), 0);
    assert_int_equal(hqi_script_edit_distance("abc", "abc"), 0);
    assert_int_equal(hqi_script_edit_distance("", "abc"), 3);
    assert_int_equal(hqi_script_edit_distance("quantizaton_param", "quantization_param"), 1);
    assert_int_equal(hqi_script_edit_distance("precison_mode", "precision_mode"), 1);
    assert_int_equal(hqi_script_edit_distance("finetnue", "finetune"), 1); /* one swap */
    assert_int_equal(hqi_script_edit_distance("polciy", "policy"), 1);
    assert_int_equal(hqi_script_edit_distance("kitten", "sitting"), 3);
    assert_int_equal(hqi_script_edit_distance("context", "concat"), 3);
    assert_int_equal(hqi_script_edit_distance("ab", "ba"), 1);
}

static void a_near_miss_is_within_two_edits_and_under_half_the_length(void **state)
{
    (void)state;
    static const char *const known[] = {"policy", "layers", "join", "precision_mode", NULL};
    assert_string_equal(hqi_script_near_miss("polcy", known), "policy");
    assert_string_equal(hqi_script_near_miss("precison_mod", known), "precision_mode");
    assert_string_equal(hqi_script_near_miss("joins", known), "join");
    assert_null(hqi_script_near_miss("prcson_mode", known)); /* three edits */
    assert_null(hqi_script_near_miss("jo", known));          /* two edits: not under half of 2 */
    assert_null(hqi_script_near_miss("policy", known));      /* exact: no miss */
    assert_null(hqi_script_near_miss("anything", NULL));
}

static void the_nearest_candidate_wins(void **state)
{
    (void)state;
    static const char *const known[] = {"batch_sizes", "batch_size", NULL};
    assert_string_equal(hqi_script_near_miss("batch_siz", known), "batch_size");
}

/* ---- checking commands ----------------------------------------------------------------------- */

static void a_misspelt_command_is_an_error_with_a_did_you_mean(void **state)
{
    (void)state;
    expect_error("quantizaton_param(conv1, precision_mode=a16_w16)\n",
                 "model.alls:1: unknown command 'quantizaton_param' "
                 "(did you mean 'quantization_param'?)");
    expect_error("\n\ncompilation_parm(conv1, resources_allocation_strategy=manual)\n",
                 "model.alls:3: unknown command 'compilation_parm' "
                 "(did you mean 'compilation_param'?)");
    expect_error(
        "context_0.plac(conv1)\n",
        "model.alls:1: unknown command 'context_0.plac' (did you mean 'context_0.place'?)");
}

static void a_misspelt_key_is_an_error_with_a_did_you_mean(void **state)
{
    (void)state;
    expect_error("quantization_param(conv1, precison_mode=a16_w16)\n",
                 "model.alls:1: quantization_param: unknown key 'precison_mode' "
                 "(did you mean 'precision_mode'?)");
    expect_error("model_optimization_flavor(compresion_level=1)\n",
                 "model.alls:1: model_optimization_flavor: unknown key 'compresion_level' "
                 "(did you mean 'compression_level'?)");
    expect_error("model_optimization_config(calibration, calibset_sise=64)\n",
                 "model.alls:1: model_optimization_config: unknown key 'calibset_sise' "
                 "(did you mean 'calibset_size'?)");
}

static void a_misspelt_first_word_is_an_error_with_a_did_you_mean(void **state)
{
    (void)state;
    expect_error("post_quantization_optimization(finetun, policy=enabled)\n",
                 "model.alls:1: post_quantization_optimization: unknown algorithm 'finetun' "
                 "(did you mean 'finetune'?)");
    expect_error("post_quantization_optimization(bias_corection, policy=enabled)\n",
                 "model.alls:1: post_quantization_optimization: unknown algorithm "
                 "'bias_corection' (did you mean 'bias_correction'?)");
    expect_error("model_optimization_config(calibraton, batch_size=4)\n",
                 "model.alls:1: model_optimization_config: unknown section 'calibraton' "
                 "(did you mean 'calibration'?)");
}

static void names_far_from_every_known_one_are_reported_and_kept(void **state)
{
    (void)state;
    expect_reported("frobnicate_layers(conv1)\n", "unknown command 'frobnicate_layers'\n");
    expect_reported("quantization_param(conv1, brand_new_option=1)\n",
                    "quantization_param: unknown key 'brand_new_option'\n");
    expect_reported("pre_quantization_optimization(brand_new_algorithm, policy=enabled)\n",
                    "pre_quantization_optimization: unknown algorithm 'brand_new_algorithm'\n");
    /* a short name two edits away is not a near miss of a four-letter command */
    expect_reported("jo(a, b)\n", "unknown command 'jo'\n");
}

static void known_commands_and_keys_pass_silently(void **state)
{
    (void)state;
    expect_reported("quantization_param({conv*}, precision_mode=a16_w16, bias_mode=double_scale_"
                    "initialization)\n"
                    "pre_quantization_optimization(activation_clipping, layers=[conv1], "
                    "mode=percentile, clipping_values=[0.01, 99.99], recollect_stats=True)\n"
                    "post_quantization_optimization(finetune, policy=enabled, epochs=4, "
                    "loss_layer_names=[conv1], loss_types=[l2rel])\n"
                    "model_optimization_config(globals, multiproc_policy=disabled)\n"
                    "allocator_param(anything_the_compiler_takes=True)\n"
                    "context_3.place(1, [conv1, conv2])\n"
                    "# a comment\n",
                    "");
}

static void keys_are_not_checked_where_the_vocabulary_does_not_record_them(void **state)
{
    (void)state;
    /* an unknown first word: its keys are unknown too */
    expect_reported("pre_quantization_optimization(brand_new_algorithm, polcy=enabled)\n",
                    "pre_quantization_optimization: unknown algorithm 'brand_new_algorithm'\n");
    /* a command whose key set is not recorded, and compiler-side commands */
    expect_reported("nms_postprocess(meta.json, meta_arc=yolov5)\n", "");
    expect_reported("performance_param(compiler_optimization_levl=max)\n", "");
    /* an unknown command's arguments */
    expect_reported("brand_new_command(polcy=enabled)\n", "unknown command 'brand_new_command'\n");
}

static void key_unknown_agrees_with_the_check(void **state)
{
    (void)state;
    const char *text = "pre_quantization_optimization(equalization, policy=enabled, extra=1)\n"
                       "nms_postprocess(meta.json, extra=1)\n";
    hq_script_t *script = NULL;
    assert_int_equal(hq_script_parse(text, strlen(text), "m.alls", &script, NULL), HQ_OK);
    const hq_command_t *eq = hq_script_command(script, 0);
    const hq_command_t *nms = hq_script_command(script, 1);
    const hqi_script_spec_t *pre = hqi_script_spec(eq->name);
    assert_false(hqi_script_key_unknown(pre, eq, "policy"));
    assert_true(hqi_script_key_unknown(pre, eq, "extra"));
    assert_false(hqi_script_word_unknown(pre, eq));
    assert_false(hqi_script_key_unknown(hqi_script_spec(nms->name), nms, "extra"));
    assert_false(hqi_script_key_unknown(NULL, nms, "extra"));
    hq_script_destroy(script);
}

static void the_check_returns_the_row_of_the_command(void **state)
{
    (void)state;
    const char *text = "buffers(conv1, conv2, 2)\nbrand_new_command()\n";
    hq_script_t *script = NULL;
    assert_int_equal(hq_script_parse(text, strlen(text), "m.alls", &script, NULL), HQ_OK);
    const hqi_script_spec_t *spec = NULL;
    assert_int_equal(
        hqi_script_check_command(hq_script_command(script, 0), "m.alls", &spec, NULL, NULL, NULL),
        HQ_OK);
    assert_ptr_equal(spec, hqi_script_spec("buffers"));
    assert_int_equal(
        hqi_script_check_command(hq_script_command(script, 1), "m.alls", &spec, NULL, NULL, NULL),
        HQ_OK);
    assert_null(spec);
    hq_script_destroy(script);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_command_of_real_model_zoo_scripts_is_known),
        cmocka_unit_test(commands_are_read_by_the_quantizer_or_the_compiler),
        cmocka_unit_test(each_name_has_one_row_and_rows_with_first_words_name_them),
        cmocka_unit_test(a_method_of_a_result_is_looked_up_by_its_method),
        cmocka_unit_test(edit_distance_counts_each_insertion_deletion_substitution_and_swap_as_one),
        cmocka_unit_test(a_near_miss_is_within_two_edits_and_under_half_the_length),
        cmocka_unit_test(the_nearest_candidate_wins),
        cmocka_unit_test(a_misspelt_command_is_an_error_with_a_did_you_mean),
        cmocka_unit_test(a_misspelt_key_is_an_error_with_a_did_you_mean),
        cmocka_unit_test(a_misspelt_first_word_is_an_error_with_a_did_you_mean),
        cmocka_unit_test(names_far_from_every_known_one_are_reported_and_kept),
        cmocka_unit_test(known_commands_and_keys_pass_silently),
        cmocka_unit_test(keys_are_not_checked_where_the_vocabulary_does_not_record_them),
        cmocka_unit_test(key_unknown_agrees_with_the_check),
        cmocka_unit_test(the_check_returns_the_row_of_the_command),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
