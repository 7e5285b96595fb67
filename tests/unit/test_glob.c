/* test_glob.c — layer-name globs used by model-script commands (`{conv*}`, `{conv1, conv2}`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "hq/script.h"

static void star_matches_any_run_of_characters(void **state)
{
    (void)state;
    assert_true(hq_glob_match("conv*", "conv"));
    assert_true(hq_glob_match("conv*", "conv12"));
    assert_true(hq_glob_match("*1", "conv1"));
    assert_true(hq_glob_match("c*v*2", "conv_block_2"));
    assert_true(hq_glob_match("*", "anything"));
    assert_false(hq_glob_match("conv*", "dw1"));
    assert_false(hq_glob_match("*1", "conv12"));
    assert_false(hq_glob_match("conv", "conv1"));
}

static void question_mark_matches_exactly_one_character(void **state)
{
    (void)state;
    assert_true(hq_glob_match("conv?", "conv7"));
    assert_false(hq_glob_match("conv?", "conv"));
    assert_false(hq_glob_match("conv?", "conv12"));
    assert_true(hq_glob_match("conv??", "conv12"));
}

static void class_matches_members_ranges_and_negation(void **state)
{
    (void)state;
    assert_true(hq_glob_match("conv[135]", "conv3"));
    assert_false(hq_glob_match("conv[135]", "conv2"));
    assert_true(hq_glob_match("conv[0-9]", "conv7"));
    assert_false(hq_glob_match("conv[0-9]", "convx"));
    assert_true(hq_glob_match("conv[!0-9]", "convx"));
    assert_false(hq_glob_match("conv[^0-9]", "conv4"));
    assert_true(hq_glob_match("a[]]b", "a]b"));
    /* an unclosed '[' is a literal character */
    assert_true(hq_glob_match("conv[1", "conv[1"));
    assert_false(hq_glob_match("conv[1", "conv1"));
}

static void brace_alternatives_match_either_and_nothing_else(void **state)
{
    (void)state;
    assert_true(hq_glob_match("{conv,dw}1", "conv1"));
    assert_true(hq_glob_match("{conv,dw}1", "dw1"));
    assert_false(hq_glob_match("{conv,dw}1", "dense1"));
    assert_true(hq_glob_match("{conv{1,2},dw*}", "conv2"));
    assert_true(hq_glob_match("{conv{1,2},dw*}", "dw_9"));
    assert_false(hq_glob_match("{conv{1,2},dw*}", "conv3"));
    assert_true(hq_glob_match("{conv1}", "conv1"));
}

static void comma_list_glob_text_matches_each_listed_layer(void **state)
{
    (void)state;
    /* the text of `{conv1, conv2}` as the parser stores it */
    assert_true(hq_glob_match("conv1, conv2", "conv1"));
    assert_true(hq_glob_match("conv1, conv2", "net/conv2"));
    assert_false(hq_glob_match("conv1, conv2", "conv3"));
    assert_false(hq_glob_match("conv1, conv2", "conv1, conv2"));
}

static void pattern_without_slash_matches_the_bare_layer_name(void **state)
{
    (void)state;
    assert_true(hq_glob_match("conv3", "net/conv3"));
    assert_true(hq_glob_match("conv*", "yolov8m/conv71"));
    assert_true(hq_glob_match("conv3", "a/b/conv3"));
    assert_false(hq_glob_match("net", "net/conv3"));
    assert_false(hq_glob_match("*net*", "net/conv3"));
}

static void pattern_with_slash_matches_the_full_scoped_name(void **state)
{
    (void)state;
    assert_true(hq_glob_match("net/conv3", "net/conv3"));
    assert_true(hq_glob_match("net/*", "net/conv3"));
    assert_false(hq_glob_match("other/*", "net/conv3"));
    assert_false(hq_glob_match("net/conv3", "conv3"));
    assert_true(hq_glob_match("*/conv3", "a/b/conv3"));
    /* each alternative decides on its own whether it is scoped */
    assert_true(hq_glob_match("{other/conv1,conv3}", "net/conv3"));
    assert_false(hq_glob_match("{other/conv3,conv1}", "net/conv3"));
}

static void too_many_brace_expansions_match_nothing(void **state)
{
    (void)state;
    /* 2^11 alternatives exceed the expansion limit */
    const char *pattern = "{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}";
    assert_false(hq_glob_match(pattern, "aaaaaaaaaaa"));
    /* 2^9 is within it */
    assert_true(hq_glob_match("{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}", "abababbba"));
}

static void null_or_empty_arguments_do_not_match(void **state)
{
    (void)state;
    assert_false(hq_glob_match(NULL, "conv1"));
    assert_false(hq_glob_match("conv1", NULL));
    assert_false(hq_glob_match("", "conv1"));
    assert_false(hq_glob_match(" , ", "conv1"));
    /* unbalanced braces are literals */
    assert_true(hq_glob_match("conv{", "conv{"));
    assert_false(hq_glob_match("conv{", "conv"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(star_matches_any_run_of_characters),
        cmocka_unit_test(question_mark_matches_exactly_one_character),
        cmocka_unit_test(class_matches_members_ranges_and_negation),
        cmocka_unit_test(brace_alternatives_match_either_and_nothing_else),
        cmocka_unit_test(comma_list_glob_text_matches_each_listed_layer),
        cmocka_unit_test(pattern_without_slash_matches_the_bare_layer_name),
        cmocka_unit_test(pattern_with_slash_matches_the_full_scoped_name),
        cmocka_unit_test(too_many_brace_expansions_match_nothing),
        cmocka_unit_test(null_or_empty_arguments_do_not_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
