/* test_script.c — the model script (.alls): parsing, errors with line:column, canonical printing,
 * the print -> parse -> print round trip, and the command list accessors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq/script.h"
#include "script/script_internal.h"

static hq_script_t *parse_ok(const char *text)
{
    hq_script_t *script = NULL;
    hq_error_t err = {0};
    hq_status_t st = hq_script_parse(text, strlen(text), "model.alls", &script, &err);
    if (st != HQ_OK)
        fail_msg("unexpected parse error: %s", err.message);
    assert_non_null(script);
    return script;
}

static void expect_error(const char *text, size_t len, hq_status_t status, const char *message)
{
    hq_script_t *script = (hq_script_t *)0x1;
    hq_error_t err = {0};
    assert_int_equal(hq_script_parse(text, len, "model.alls", &script, &err), status);
    assert_null(script);
    assert_int_equal(err.status, status);
    assert_string_equal(err.message, message);
    assert_null(strchr(err.message, '\n'));
}

static void expect_format_error(const char *text, const char *message)
{
    expect_error(text, strlen(text), HQ_ERR_FORMAT, message);
}

static char *print_script(const hq_script_t *script)
{
    char *text = NULL;
    hq_error_t err = {0};
    if (hq_script_print(script, &text, &err) != HQ_OK)
        fail_msg("print failed: %s", err.message);
    return text;
}

static void assert_prints_as(const char *source, const char *expected)
{
    hq_script_t *script = parse_ok(source);
    char *text = print_script(script);
    assert_string_equal(text, expected);
    free(text);
    hq_script_destroy(script);
}

static void parses_the_seed_script_lines_into_commands(void **state)
{
    (void)state;
    hq_script_t *script =
        parse_ok("normalization1 = normalization([0.0, 0.0, 0.0], [255.0, 255.0, 255.0])\n"
                 "change_output_activation(conv71, sigmoid)\n"
                 "quantization_param({conv*}, precision_mode=a16_w16)\n"
                 "pre_quantization_optimization(activation_clipping, layers=[conv1, conv2], "
                 "mode=percentile, clipping_values=[0.01, 99.99])\n");
    assert_int_equal(hq_script_command_count(script), 4);

    const hq_command_t *norm = hq_script_command(script, 0);
    assert_int_equal(norm->line, 1);
    assert_string_equal(norm->name, "normalization");
    assert_int_equal(norm->result_count, 1);
    assert_string_equal(norm->results[0], "normalization1");
    assert_int_equal(norm->arg_count, 2);
    const hq_value_t *std = hq_command_positional(norm, 1);
    assert_int_equal(std->kind, HQ_VALUE_LIST);
    assert_int_equal(std->item_count, 3);
    assert_int_equal(std->items[2].kind, HQ_VALUE_NUMBER);
    assert_string_equal(std->items[2].text, "255.0");
    assert_true(std->items[2].number == 255.0);

    const hq_command_t *act = hq_script_command(script, 1);
    assert_int_equal(act->result_count, 0);
    assert_int_equal(hq_command_positional(act, 1)->kind, HQ_VALUE_IDENT);
    assert_string_equal(hq_command_positional(act, 1)->text, "sigmoid");

    const hq_command_t *qp = hq_script_command(script, 2);
    assert_int_equal(hq_command_positional(qp, 0)->kind, HQ_VALUE_GLOB);
    assert_string_equal(hq_command_positional(qp, 0)->text, "conv*");
    assert_string_equal(hq_command_kwarg(qp, "precision_mode")->text, "a16_w16");

    const hq_command_t *clip = hq_script_command(script, 3);
    assert_int_equal(clip->line, 4);
    const hq_value_t *values = hq_command_kwarg(clip, "clipping_values");
    assert_int_equal(values->item_count, 2);
    assert_true(values->items[1].number == 99.99);
    assert_null(hq_script_command(script, 4));
    assert_null(hq_script_command(script, -1));
    hq_script_destroy(script);
}

static void keeps_number_literals_as_written_with_their_values(void **state)
{
    (void)state;
    hq_script_t *script = parse_ok("x(1e-3, +2, -.5, 0.00015, 7, 5., -2E+4)");
    const hq_command_t *c = hq_script_command(script, 0);
    static const char *texts[] = {"1e-3", "+2", "-.5", "0.00015", "7", "5.", "-2E+4"};
    static const double numbers[] = {1e-3, 2, -0.5, 0.00015, 7, 5, -2e4};
    for (int i = 0; i < 7; i++) {
        const hq_value_t *v = hq_command_positional(c, i);
        assert_int_equal(v->kind, HQ_VALUE_NUMBER);
        assert_string_equal(v->text, texts[i]);
        assert_true(v->number == numbers[i]);
    }
    hq_script_destroy(script);
    assert_prints_as("x(1e-3,+2,-.5)", "x(1e-3, +2, -.5)\n");
}

static void reads_identifiers_with_slashes_dots_and_dashes(void **state)
{
    (void)state;
    hq_script_t *script = parse_ok("x(net/conv1, a8_w8, block.1-conv, 1x1_conv, 1e)");
    const hq_command_t *c = hq_script_command(script, 0);
    static const char *texts[] = {"net/conv1", "a8_w8", "block.1-conv", "1x1_conv", "1e"};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(hq_command_positional(c, i)->kind, HQ_VALUE_IDENT);
        assert_string_equal(hq_command_positional(c, i)->text, texts[i]);
    }
    hq_script_destroy(script);
}

static void unescapes_strings_in_either_quote(void **state)
{
    (void)state;
    hq_script_t *script =
        parse_ok("x(\"a\\\"b\\\\c\\n\\t\\x41\", 'it\\'s', 'C:\\path', \"#not a comment\")");
    const hq_command_t *c = hq_script_command(script, 0);
    assert_int_equal(c->arg_count, 4);
    assert_int_equal(hq_command_positional(c, 0)->kind, HQ_VALUE_STRING);
    assert_string_equal(hq_command_positional(c, 0)->text, "a\"b\\c\n\tA");
    assert_int_equal(hq_command_positional(c, 0)->quote, '"');
    assert_string_equal(hq_command_positional(c, 1)->text, "it's");
    assert_int_equal(hq_command_positional(c, 1)->quote, '\'');
    /* an unknown escape keeps its backslash, like Python */
    assert_string_equal(hq_command_positional(c, 2)->text, "C:\\path");
    assert_string_equal(hq_command_positional(c, 3)->text, "#not a comment");
    assert_null(c->comment);
    char *text = print_script(script);
    assert_string_equal(text,
                        "x(\"a\\\"b\\\\c\\n\\tA\", 'it\\'s', 'C:\\\\path', \"#not a comment\")\n");
    free(text);
    hq_script_destroy(script);
}

static void reads_star_and_list_globs_verbatim(void **state)
{
    (void)state;
    hq_script_t *script = parse_ok("x({conv*}, {conv1, conv2}, {net/{conv,dw}[0-9]})");
    const hq_command_t *c = hq_script_command(script, 0);
    assert_string_equal(hq_command_positional(c, 0)->text, "conv*");
    assert_string_equal(hq_command_positional(c, 1)->text, "conv1, conv2");
    assert_string_equal(hq_command_positional(c, 2)->text, "net/{conv,dw}[0-9]");
    assert_int_equal(hq_command_positional(c, 2)->kind, HQ_VALUE_GLOB);
    hq_script_destroy(script);
}

static void parses_nested_and_empty_lists(void **state)
{
    (void)state;
    hq_script_t *script = parse_ok("x([], [[1, [2, []]], a], k=[ ])");
    const hq_command_t *c = hq_script_command(script, 0);
    assert_int_equal(hq_command_positional(c, 0)->kind, HQ_VALUE_LIST);
    assert_int_equal(hq_command_positional(c, 0)->item_count, 0);
    const hq_value_t *outer = hq_command_positional(c, 1);
    assert_int_equal(outer->item_count, 2);
    assert_int_equal(outer->items[0].item_count, 2);
    assert_int_equal(outer->items[0].items[1].items[1].kind, HQ_VALUE_LIST);
    assert_int_equal(outer->items[0].items[1].items[1].item_count, 0);
    assert_int_equal(hq_command_kwarg(c, "k")->item_count, 0);
    hq_script_destroy(script);
}

static void parses_multiple_results(void **state)
{
    (void)state;
    hq_script_t *script = parse_ok("a , b,c = split(x)");
    const hq_command_t *c = hq_script_command(script, 0);
    assert_int_equal(c->result_count, 3);
    assert_string_equal(c->results[0], "a");
    assert_string_equal(c->results[2], "c");
    assert_string_equal(c->name, "split");
    hq_script_destroy(script);
    assert_prints_as("a , b,c = split(x)", "a, b, c = split(x)\n");
}

static void keeps_comments_and_blank_lines_as_nameless_commands(void **state)
{
    (void)state;
    const char *source = "# header\n\n  \t\nx(1) # trailing\n  #indented\n";
    hq_script_t *script = parse_ok(source);
    assert_int_equal(hq_script_command_count(script), 5);
    assert_null(hq_script_command(script, 0)->name);
    assert_string_equal(hq_script_command(script, 0)->comment, " header");
    assert_null(hq_script_command(script, 1)->name);
    assert_null(hq_script_command(script, 1)->comment);
    assert_null(hq_script_command(script, 2)->comment);
    assert_string_equal(hq_script_command(script, 3)->name, "x");
    assert_string_equal(hq_script_command(script, 3)->comment, " trailing");
    assert_int_equal(hq_script_command(script, 4)->line, 5);
    char *text = print_script(script);
    assert_string_equal(text, "# header\n\n\nx(1)  # trailing\n#indented\n");
    free(text);
    hq_script_destroy(script);
}

static void accepts_windows_line_endings_and_a_missing_final_newline(void **state)
{
    (void)state;
    hq_script_t *script = parse_ok("a(1)\r\n# c\r\n\r\nb(k='v')");
    assert_int_equal(hq_script_command_count(script), 4);
    assert_string_equal(hq_script_command(script, 1)->comment, " c");
    assert_string_equal(hq_script_command(script, 3)->name, "b");
    char *text = print_script(script);
    assert_string_equal(text, "a(1)\n# c\n\nb(k='v')\n");
    free(text);
    hq_script_destroy(script);
}

static void empty_input_is_a_script_without_commands(void **state)
{
    (void)state;
    hq_script_t *script = NULL;
    hq_error_t err;
    assert_int_equal(hq_script_parse(NULL, 0, "empty.alls", &script, &err), HQ_OK);
    assert_int_equal(hq_script_command_count(script), 0);
    char *text = print_script(script);
    assert_string_equal(text, "");
    free(text);
    hq_script_destroy(script);
}

static void prints_canonical_spacing(void **state)
{
    (void)state;
    assert_prints_as("  a ,b=cmd( x ,[1,2] ,k = v,s=\"q\" )#c\n",
                     "a, b = cmd(x, [1, 2], k=v, s=\"q\")  #c\n");
    assert_prints_as("f()", "f()\n");
}

static void printing_then_parsing_gives_the_same_script(void **state)
{
    (void)state;
    const char *source =
        "# yolov8m\r\n"
        "normalization1 = normalization([0.0, 0.0, 0.0], [255.0, 255.0, 255.0])\n"
        "input_conversion = input_conversion(bgr_to_rgb)\n"
        "\n"
        "quantization_param({conv*}, precision_mode=a16_w16)   # 16 bit\n"
        "model_optimization_config(calibration, batch_size=8, calibset_size=64)\n"
        "post_quantization_optimization(finetune, policy=enabled, learning_rate=0.00015)\n"
        "x([[1,[]],'\\x01\\r',{ a , b }], y=-1.5e-3)";
    hq_script_t *first = parse_ok(source);
    char *printed = print_script(first);
    hq_script_t *second = parse_ok(printed);
    assert_int_equal(hq_script_command_count(second), hq_script_command_count(first));
    for (int i = 0; i < hq_script_command_count(first); i++)
        assert_true(hqi_command_equal(hq_script_command(first, i), hq_script_command(second, i)));
    char *reprinted = print_script(second);
    assert_string_equal(printed, reprinted);
    free(printed);
    free(reprinted);
    hq_script_destroy(first);
    hq_script_destroy(second);
}

static void continues_a_command_over_lines_while_a_parenthesis_is_open(void **state)
{
    (void)state;
    hq_script_t *script = parse_ok(
        "post_quantization_optimization(finetune, policy=enabled, loss_layer_names=[conv1,\n"
        "    conv2],   # the heads\r\n"
        "  loss_types=[l2rel,\n"
        "              l2rel],\n"
        "  epochs=4)  # four epochs\n"
        "next(1)\n");
    assert_int_equal(hq_script_command_count(script), 2);
    const hq_command_t *c = hq_script_command(script, 0);
    assert_int_equal(c->line, 1);
    assert_string_equal(c->name, "post_quantization_optimization");
    assert_int_equal(c->arg_count, 5);
    const hq_value_t *names = hq_command_kwarg(c, "loss_layer_names");
    assert_non_null(names);
    assert_int_equal(names->item_count, 2);
    assert_string_equal(names->items[1].text, "conv2");
    assert_int_equal(hq_command_kwarg(c, "loss_types")->item_count, 2);
    assert_string_equal(hq_command_kwarg(c, "epochs")->text, "4");
    assert_string_equal(c->comment, " four epochs");
    const hq_command_t *next = hq_script_command(script, 1);
    assert_int_equal(next->line, 6);
    assert_string_equal(next->name, "next");
    hq_script_destroy(script);
}

static void takes_brace_lists_as_result_targets(void **state)
{
    (void)state;
    hq_script_t *script = parse_ok("{} = defuse_block(matmul1, defuse_count=4)\n"
                                   "a, {b, c} = shortcut(conv1, conv2)\n");
    const hq_command_t *c = hq_script_command(script, 0);
    assert_int_equal(c->result_count, 1);
    assert_string_equal(c->results[0], "{}");
    assert_string_equal(c->name, "defuse_block");
    c = hq_script_command(script, 1);
    assert_int_equal(c->result_count, 2);
    assert_string_equal(c->results[0], "a");
    assert_string_equal(c->results[1], "{b, c}");
    hq_script_destroy(script);
    assert_prints_as("{ }= defuse(x)", "{ } = defuse(x)\n");
    expect_format_error("{a} defuse(x)",
                        "model.alls:1:5: expected ',' or '=' after the result list, found 'defuse'");
}

static void reports_errors_in_a_continued_command_at_their_own_line(void **state)
{
    (void)state;
    expect_format_error("cmd(a,\n  b c)\n",
                        "model.alls:2:5: expected ',' or ')' after argument, found 'c'");
    expect_format_error("x(1)\ncmd(a, b\nnext(c)\n",
                        "model.alls:2:9: expected ')' after argument list (opened at column 4), "
                        "found end of line");
    expect_format_error("cmd([a, b\n  c])\n",
                        "model.alls:1:10: expected ']' to close the list opened at column 5, "
                        "found end of line");
    expect_format_error("cmd(a, 'b\n  ')\n", "model.alls:1:8: unterminated string: no closing '");
}

/* Every command name of Hailo's model-script vocabulary, as its compiler and optimizer document
 * them: each must parse and print back unchanged. */
static void parses_every_command_of_the_vocabulary_and_prints_it_back(void **state)
{
    (void)state;
    const char *source =
        "normalization1 = normalization([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])\n"
        "yuv_to_rgb1 = input_conversion(yuv_to_rgb)\n"
        "resize1 = resize(resize_shapes=[480, 640])\n"
        "model_optimization_flavor(optimization_level=2, compression_level=1)\n"
        "model_optimization_config(calibration, batch_size=8, calibset_size=64)\n"
        "model_optimization_config(checker_cfg, policy=disabled)\n"
        "quantization_param({conv*}, precision_mode=a8_w4)\n"
        "quantization_param(output_layer1, precision_mode=a16_w16)\n"
        "pre_quantization_optimization(equalization, policy=disabled)\n"
        "pre_quantization_optimization(activation_clipping, layers={conv*}, mode=percentile, "
        "clipping_values=[0.01, 99.99])\n"
        "pre_quantization_optimization(weights_clipping, layers=[conv1], mode=mmse)\n"
        "pre_quantization_optimization(dead_channels_removal, policy=enabled)\n"
        "pre_quantization_optimization(ew_add_fusing, policy=disabled)\n"
        "pre_quantization_optimization(global_avgpool_reduction, layers=avgpool1, division_factors=[4, 4])\n"
        "pre_quantization_optimization(matmul_correction, layers={matmul*}, correction_type=zp_comp_block)\n"
        "pre_quantization_optimization(se_optimization, policy=enabled)\n"
        "pre_quantization_optimization(layer_norm_decomposition, mode=nn_core)\n"
        "post_quantization_optimization(finetune, policy=enabled, dataset_size=4000, epochs=8,\n"
        "    loss_layer_names=[conv1, conv2], loss_types=[l2rel, l2rel])\n"
        "post_quantization_optimization(bias_correction, policy=enabled)\n"
        "post_quantization_optimization(adaround, policy=enabled, epochs=320, b_range=[20, 2])\n"
        "change_output_activation(conv63, sigmoid)\n"
        "nms_postprocess(\"nms_config.json\", meta_arch=yolov8, engine=cpu)\n"
        "set_seed(seed=42)\n"
        "allocator_param(timeout=1800, automatic_ddr=disabled, spatial_defuse_legacy=True)\n"
        "compilation_param({conv*}, balance_output_multisplit=enabled)\n"
        "buffers(conv1, conv2, 3, 3, FULL_ROW)\n"
        "net_context_0 = context([conv1, conv2_sd0-2, conv3])\n"
        "context_switch_param(mode=enabled, slotter_chances=200)\n"
        "b0 = bucket([input_layer1, conv1])\n"
        "join(concat4, [conv21_d0, conv21_d1], join_type=SHMIFO)\n"
        "ws1 = shape_splitter(SPLIT_WIDTH, conv42, [conv42_sd0, conv42_sd1])\n"
        "remove_node(format_conversion1)\n"
        "net = network_group([net])\n"
        "a, b, c = transpose_concat(concat1)\n"
        "spatial_reshape_flow_params(buffer_size_factor=4.0)\n"
        "out1 = output_layer(conv71, offdevice_layer=nms1)\n"
        "resources_param(max_control_utilization=0.9, max_compute_utilization=0.9)\n"
        "performance_param(compiler_optimization_level=max)\n"
        "platform_param(targets=[ethernet])\n"
        "hef_param(should_use_sequencer=true)\n"
        "{} = defuse_block(matmul1, defuse_count=4)\n"
        "m1, m2 = defuse(ew_mult1, 2, defuse_type=EW_MULT_ON_MAC)\n"
        "shortcut1 = shortcut(conv1, conv2)\n"
        "concat1 = concat(conv1, conv2)\n"
        "format_conversion1 = format_conversion(conv1, nv12_to_hailo_yuv)\n"
        "reshape_yuy2 = input_conversion(input_layer1, yuy2_to_hailo_yuv, emulator_support=True)\n"
        "output_mux(conv1, conv2)\n"
        "place(cluster_0, [conv1])\n"
        "collapse_depthwise(dw1)\n"
        "logits_layer(conv63, sigmoid)\n";
    hq_script_t *first = parse_ok(source);
    assert_int_equal(hq_script_command_count(first), 50);
    char *printed = print_script(first);
    hq_script_t *second = parse_ok(printed);
    assert_int_equal(hq_script_command_count(second), hq_script_command_count(first));
    for (int i = 0; i < hq_script_command_count(first); i++) {
        hq_command_t a = *hq_script_command(first, i), b = *hq_script_command(second, i);
        a.line = b.line = 0; /* the multi-line command prints on one line */
        assert_true(hqi_command_equal(&a, &b));
    }
    char *reprinted = print_script(second);
    assert_string_equal(printed, reprinted);
    free(printed);
    free(reprinted);
    hq_script_destroy(first);
    hq_script_destroy(second);
}

static void reports_a_missing_closing_parenthesis_with_line_and_column(void **state)
{
    (void)state;
    expect_format_error("# one\n\nnormalization(1, 2\n",
                        "model.alls:3:19: expected ')' after argument list (opened at column 14), "
                        "found end of line");
    expect_format_error("x(a b)", "model.alls:1:5: expected ',' or ')' after argument, found 'b'");
}

static void reports_an_unterminated_string_at_its_opening_quote(void **state)
{
    (void)state;
    expect_format_error("x(1)\nx(a, \"abc)\n",
                        "model.alls:2:6: unterminated string: no closing \"");
    expect_format_error("x('abc\\')", "model.alls:1:3: unterminated string: no closing '");
}

static void reports_unbalanced_brackets(void **state)
{
    (void)state;
    expect_format_error("x([1, 2)",
                        "model.alls:1:8: expected ']' to close the list opened at column 3, "
                        "found ')'");
    expect_format_error("x([1 2])", "model.alls:1:6: expected ',' or ']' in list, found '2'");
    expect_format_error("x(1))",
                        "model.alls:1:5: unexpected ')' after ')', expected end of line or a '#' "
                        "comment");
    expect_format_error("x(1]", "model.alls:1:4: expected ',' or ')' after argument, found ']'");
    expect_format_error("x({conv*)", "model.alls:1:9: unexpected ')' in glob, expected '}'");
    expect_format_error("x({conv*", "model.alls:1:3: unterminated glob: no closing '}'");
    expect_format_error("x({ })", "model.alls:1:3: empty glob '{}'");
}

static void reports_a_missing_parenthesis_after_the_command_name(void **state)
{
    (void)state;
    expect_format_error("quantization_param conv1", "model.alls:1:20: expected '(' after command "
                                                    "name 'quantization_param', found 'conv1'");
    expect_format_error("a = b",
                        "model.alls:1:6: expected '(' after command name 'b', found end of "
                        "line");
    expect_format_error("a, b c()", "model.alls:1:6: expected '=' after result names, found 'c'");
    expect_format_error("(x)", "model.alls:1:1: expected a command name, found '('");
    expect_format_error("1x(x)", "model.alls:1:1: expected a command name, found '1x'");
}

static void reports_stray_characters_and_malformed_values(void **state)
{
    (void)state;
    expect_format_error("x(a, $b)", "model.alls:1:6: stray character '$'");
    expect_format_error("x(a)\n  y(\x01)", "model.alls:2:5: stray character '\\x01'");
    expect_format_error("x(-1x)", "model.alls:1:3: malformed number '-1x'");
    expect_format_error("x(a,)", "model.alls:1:5: expected a value, found ')'");
    expect_format_error("x(k=)", "model.alls:1:5: expected a value, found ')'");
    expect_format_error("x(\"\\x00\")", "model.alls:1:4: NUL character escape in string");
}

static void reports_a_duplicate_keyword_argument(void **state)
{
    (void)state;
    expect_format_error("quantization_param(conv1, precision_mode=a16_w16, precision_mode=a8_w8)",
                        "model.alls:1:51: duplicate keyword argument 'precision_mode'");
    /* the same word as a positional value and as a key is fine */
    hq_script_t *script = parse_ok("x(mode, mode=a, other=mode)");
    hq_script_destroy(script);
}

static void reports_a_nul_byte_instead_of_stopping_there(void **state)
{
    (void)state;
    static const char text[] = "x(1)\nx(a\0b)\n";
    expect_error(text, sizeof text - 1, HQ_ERR_FORMAT, "model.alls:2:4: NUL byte in input");
    static const char in_comment[] = "# a\0b\n";
    expect_error(in_comment, sizeof in_comment - 1, HQ_ERR_FORMAT,
                 "model.alls:1:4: NUL byte in input");
}

static void limits_list_nesting_depth(void **state)
{
    (void)state;
    char text[256];
    int depth = HQI_SCRIPT_MAX_DEPTH;
    int n = 0;
    n += sprintf(text + n, "x(");
    for (int i = 0; i < depth; i++)
        text[n++] = '[';
    for (int i = 0; i < depth; i++)
        text[n++] = ']';
    strcpy(text + n, ")");
    hq_script_t *script = parse_ok(text);
    hq_script_destroy(script);

    n = sprintf(text, "x(");
    for (int i = 0; i <= depth; i++)
        text[n++] = '[';
    for (int i = 0; i <= depth; i++)
        text[n++] = ']';
    strcpy(text + n, ")");
    expect_error(text, strlen(text), HQ_ERR_LIMIT,
                 "model.alls:1:35: lists nested deeper than 32 levels");
}

static void limits_the_number_of_arguments(void **state)
{
    (void)state;
    size_t count = HQI_SCRIPT_MAX_ARGS + 1;
    char *text = malloc(2 + count * 2 + 2);
    assert_non_null(text);
    size_t n = 0;
    text[n++] = 'x';
    text[n++] = '(';
    for (size_t i = 0; i < count; i++) {
        text[n++] = i + 1 < count ? '1' : '2';
        text[n++] = ',';
    }
    text[n - 1] = ')';
    text[n] = '\0';
    char expected[128];
    snprintf(expected, sizeof expected, "model.alls:1:%zu: more than %d arguments",
             2 + (count - 1) * 2 + 1, HQI_SCRIPT_MAX_ARGS);
    expect_error(text, n, HQ_ERR_LIMIT, expected);
    text[n - 3] = ')'; /* one argument fewer is fine */
    hq_script_t *script = NULL;
    assert_int_equal(hq_script_parse(text, n - 2, "model.alls", &script, NULL), HQ_OK);
    assert_int_equal(hq_script_command(script, 0)->arg_count, HQI_SCRIPT_MAX_ARGS);
    hq_script_destroy(script);
    free(text);
}

static void kwarg_and_positional_accessors_find_arguments_by_kind(void **state)
{
    (void)state;
    hq_script_t *script = parse_ok("x(a, k=1, b, mode=c)");
    const hq_command_t *c = hq_script_command(script, 0);
    assert_string_equal(hq_command_positional(c, 0)->text, "a");
    assert_string_equal(hq_command_positional(c, 1)->text, "b");
    assert_null(hq_command_positional(c, 2));
    assert_null(hq_command_positional(c, -1));
    assert_string_equal(hq_command_kwarg(c, "k")->text, "1");
    assert_string_equal(hq_command_kwarg(c, "mode")->text, "c");
    assert_null(hq_command_kwarg(c, "a"));
    assert_null(hq_command_kwarg(c, "missing"));
    assert_null(hq_command_kwarg(NULL, "k"));
    assert_null(hq_command_positional(NULL, 0));
    hq_script_destroy(script);
}

static void append_line_parses_and_numbers_the_new_command(void **state)
{
    (void)state;
    hq_script_t *script = NULL;
    hq_error_t err;
    assert_int_equal(hq_script_create(&script, &err), HQ_OK);
    assert_int_equal(hq_script_append_line(script, "# fixes\n", &err), HQ_OK);
    assert_int_equal(
        hq_script_append_line(script, "quantization_param(conv3, precision_mode=a16_w16)", &err),
        HQ_OK);
    assert_int_equal(hq_script_command_count(script), 2);
    const hq_command_t *c = hq_script_command(script, 1);
    assert_int_equal(c->line, 2);
    assert_string_equal(hq_command_kwarg(c, "precision_mode")->text, "a16_w16");
    char *text = print_script(script);
    assert_string_equal(text, "# fixes\nquantization_param(conv3, precision_mode=a16_w16)\n");
    free(text);
    hq_script_destroy(script);
}

static void append_line_rejects_a_bad_line_and_leaves_the_script_unchanged(void **state)
{
    (void)state;
    hq_script_t *script = parse_ok("a(1)\n");
    hq_error_t err;
    assert_int_equal(hq_script_append_line(script, "b(1", &err), HQ_ERR_FORMAT);
    assert_string_equal(err.message, "model.alls:2:4: expected ')' after argument list (opened at "
                                     "column 2), found end of line");
    assert_int_equal(hq_script_append_line(script, "b(1)\nc(2)", &err), HQ_ERR_ARGUMENT);
    assert_string_equal(err.message, "model.alls:2:5: expected one line, found a line break");
    assert_int_equal(hq_script_command_count(script), 1);
    assert_int_equal(hq_script_append_line(script, "b(1)\r\n", &err), HQ_OK);
    assert_int_equal(hq_script_command_count(script), 2);
    hq_script_destroy(script);
}

static void remove_deletes_the_command_and_refuses_a_bad_index(void **state)
{
    (void)state;
    hq_script_t *script = parse_ok("a()\nb()\nc()\n");
    hq_error_t err;
    assert_int_equal(hq_script_remove(script, 1, &err), HQ_OK);
    assert_int_equal(hq_script_command_count(script), 2);
    assert_string_equal(hq_script_command(script, 1)->name, "c");
    assert_int_equal(hq_script_command(script, 1)->line, 3);
    assert_int_equal(hq_script_remove(script, 2, &err), HQ_ERR_ARGUMENT);
    assert_string_equal(err.message, "model.alls: no command at index 2 (the script has 2)");
    assert_int_equal(hq_script_remove(script, -1, &err), HQ_ERR_ARGUMENT);
    char *text = print_script(script);
    assert_string_equal(text, "a()\nc()\n");
    free(text);
    hq_script_destroy(script);
    hq_script_destroy(NULL);
}

static void command_print_refuses_hand_built_values_that_would_not_parse_back(void **state)
{
    (void)state;
    hq_value_t value = {.kind = HQ_VALUE_IDENT, .text = "two words"};
    hq_arg_t arg = {.key = NULL, .value = value};
    hq_command_t command = {.line = 7, .name = "x", .arg_count = 1, .args = &arg};
    char *text = (char *)0x1;
    hq_error_t err;
    assert_int_equal(hq_command_print(&command, &text, &err), HQ_ERR_ARGUMENT);
    assert_null(text);
    assert_string_equal(err.message, "model script command on line 7: identifier value is not a "
                                     "valid identifier");

    arg.value.text = "conv1";
    assert_int_equal(hq_command_print(&command, &text, &err), HQ_OK);
    assert_string_equal(text, "x(conv1)");
    free(text);

    arg.value = (hq_value_t){.kind = HQ_VALUE_NUMBER, .text = "12abc"};
    assert_int_equal(hq_command_print(&command, &text, &err), HQ_ERR_ARGUMENT);
    arg.value = (hq_value_t){.kind = HQ_VALUE_NUMBER, .text = NULL, .number = 0.25};
    assert_int_equal(hq_command_print(&command, &text, &err), HQ_OK);
    assert_string_equal(text, "x(0.25)");
    free(text);
    arg.value = (hq_value_t){.kind = HQ_VALUE_GLOB, .text = "conv}*"};
    assert_int_equal(hq_command_print(&command, &text, &err), HQ_ERR_ARGUMENT);
    command.comment = "two\nlines";
    arg.value = (hq_value_t){.kind = HQ_VALUE_GLOB, .text = "conv*"};
    assert_int_equal(hq_command_print(&command, &text, &err), HQ_ERR_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_the_seed_script_lines_into_commands),
        cmocka_unit_test(keeps_number_literals_as_written_with_their_values),
        cmocka_unit_test(reads_identifiers_with_slashes_dots_and_dashes),
        cmocka_unit_test(unescapes_strings_in_either_quote),
        cmocka_unit_test(reads_star_and_list_globs_verbatim),
        cmocka_unit_test(parses_nested_and_empty_lists),
        cmocka_unit_test(parses_multiple_results),
        cmocka_unit_test(keeps_comments_and_blank_lines_as_nameless_commands),
        cmocka_unit_test(accepts_windows_line_endings_and_a_missing_final_newline),
        cmocka_unit_test(empty_input_is_a_script_without_commands),
        cmocka_unit_test(prints_canonical_spacing),
        cmocka_unit_test(printing_then_parsing_gives_the_same_script),
        cmocka_unit_test(continues_a_command_over_lines_while_a_parenthesis_is_open),
        cmocka_unit_test(takes_brace_lists_as_result_targets),
        cmocka_unit_test(reports_errors_in_a_continued_command_at_their_own_line),
        cmocka_unit_test(parses_every_command_of_the_vocabulary_and_prints_it_back),
        cmocka_unit_test(reports_a_missing_closing_parenthesis_with_line_and_column),
        cmocka_unit_test(reports_an_unterminated_string_at_its_opening_quote),
        cmocka_unit_test(reports_unbalanced_brackets),
        cmocka_unit_test(reports_a_missing_parenthesis_after_the_command_name),
        cmocka_unit_test(reports_stray_characters_and_malformed_values),
        cmocka_unit_test(reports_a_duplicate_keyword_argument),
        cmocka_unit_test(reports_a_nul_byte_instead_of_stopping_there),
        cmocka_unit_test(limits_list_nesting_depth),
        cmocka_unit_test(limits_the_number_of_arguments),
        cmocka_unit_test(kwarg_and_positional_accessors_find_arguments_by_kind),
        cmocka_unit_test(append_line_parses_and_numbers_the_new_command),
        cmocka_unit_test(append_line_rejects_a_bad_line_and_leaves_the_script_unchanged),
        cmocka_unit_test(remove_deletes_the_command_and_refuses_a_bad_index),
        cmocka_unit_test(command_print_refuses_hand_built_values_that_would_not_parse_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
