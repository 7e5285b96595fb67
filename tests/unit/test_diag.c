/* test_diag.c — the hq-diag runner as a library: the plugin loader with deliberately broken
 * modules (tests/plugins), the run order, needs and failures, recommendation groups answered
 * through the question callback, the script merge, and the shared statistics pass checked
 * against statistics computed here directly from the dataset. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "diag/diag_internal.h"
#include "hq/diag.h"
#include "hq/hq.h"

#ifndef HQ_TEST_PLUGINS
#error "HQ_TEST_PLUGINS must name the built tests/plugins folder"
#endif
#define GOOD HQ_TEST_PLUGINS "/good"
#define BROKEN HQ_TEST_PLUGINS "/broken"
#define TINY HQ_SAMPLES "/tiny.har"
#define TINY_CALIB HQ_SAMPLES "/tiny_calib.npy"

/* Events collected from the runner. */
typedef struct events {
    int warnings, modules, skips, recommendations;
    char last_warning[2048];
    char skipped[256];
} events_t;

static void on_event(void *user, const hq_diag_event_t *e)
{
    events_t *ev = user;
    if (e->kind == HQ_DIAG_EVENT_MESSAGE && e->level == HQ_DIAG_WARNING && !e->inspector) {
        ev->warnings++;
        snprintf(ev->last_warning, sizeof ev->last_warning, "%s", e->text);
    }
    ev->modules += e->kind == HQ_DIAG_EVENT_MODULE;
    ev->recommendations += e->kind == HQ_DIAG_EVENT_RECOMMENDATION;
    if (e->kind == HQ_DIAG_EVENT_SKIP) {
        ev->skips++;
        snprintf(ev->skipped, sizeof ev->skipped, "%s: %s", e->inspector, e->text);
    }
}

static hq_diag_t *make(events_t *ev, hq_diag_ask_fn ask, void *ask_user)
{
    memset(ev, 0, sizeof *ev);
    hq_diag_options_t o = {.on_event = on_event,
                           .event_user = ev,
                           .ask = ask,
                           .ask_user = ask_user,
                           .output_dir = "/tmp"};
    hq_diag_t *diag = NULL;
    hq_error_t err = {0};
    assert_int_equal(hq_diag_create(&o, &diag, &err), HQ_OK);
    return diag;
}

static void refused(const char *file, hq_status_t expected, const char *words1, const char *words2)
{
    events_t ev;
    hq_diag_t *diag = make(&ev, NULL, NULL);
    hq_error_t err = {0};
    if (!strstr(file, "duplicate"))
        assert_int_equal(hq_diag_load_plugin(diag, GOOD "/quiet.so", &err), HQ_OK);
    else
        assert_int_equal(hq_diag_load_plugin(diag, GOOD "/findings.so", &err), HQ_OK);
    int before = hq_diag_inspector_count(diag);
    assert_int_equal(hq_diag_load_plugin(diag, file, &err), expected);
    assert_non_null(strstr(err.message, file));
    assert_non_null(strstr(err.message, words1));
    if (words2)
        assert_non_null(strstr(err.message, words2));
    assert_int_equal(hq_diag_inspector_count(diag), before);
    hq_diag_destroy(diag);
}

static void loader_refuses_module_without_entry_symbol(void **state)
{
    (void)state;
    refused(BROKEN "/nosymbol.so", HQ_ERR_NOT_FOUND, "no exported symbol 'hq_inspector_entry'",
            NULL);
}

static void loader_refuses_abi_mismatch_naming_both_versions(void **state)
{
    (void)state;
    refused(BROKEN "/wrongabi.so", HQ_ERR_UNSUPPORTED, "ABI version 99", "speaks version 1");
}

static void loader_refuses_newer_minor_naming_both_versions(void **state)
{
    (void)state;
    refused(HQ_TEST_PLUGINS "/abi/newer_minor.so", HQ_ERR_UNSUPPORTED, "ABI version 1.99",
            "newer than this hq-diag's 1.2");
}

static void loader_accepts_a_module_built_against_the_1_0_headers(void **state)
{
    (void)state;
    events_t ev;
    hq_diag_t *diag = make(&ev, NULL, NULL);
    hq_error_t err = {0};
    assert_int_equal(hq_diag_load_plugin(diag, HQ_TEST_PLUGINS "/abi/layers_1_0.so", &err), HQ_OK);
    assert_int_equal(hq_diag_inspector(diag, 0)->abi_version, 1);
    hq_diag_destroy(diag);
}

static void loader_refuses_null_descriptor(void **state)
{
    (void)state;
    refused(BROKEN "/nulldesc.so", HQ_ERR_INVALID, "NULL descriptor", NULL);
}

static void loader_refuses_duplicate_name(void **state)
{
    (void)state;
    refused(BROKEN "/duplicate.so", HQ_ERR_INVALID, "duplicate inspector name 'TestFindings'",
            "findings.so");
}

static void loader_refuses_file_that_does_not_load_with_the_reason_and_ldd_hint(void **state)
{
    (void)state;
    refused(BROKEN "/garbage.so", HQ_ERR_IO, "cannot load inspector module", "check `ldd");
}

static void loading_a_folder_reports_each_broken_module_and_keeps_the_others(void **state)
{
    (void)state;
    events_t ev;
    hq_diag_t *diag = make(&ev, NULL, NULL);
    hq_error_t err = {0};
    assert_int_equal(hq_diag_load_plugins(diag, GOOD, true, &err), HQ_OK);
    assert_int_equal(hq_diag_inspector_count(diag), 9);
    assert_int_equal(hq_diag_load_plugins(diag, BROKEN, true, &err), HQ_OK);
    assert_int_equal(ev.warnings, 5); /* duplicate, garbage, nosymbol, nulldesc, wrongabi */
    assert_int_equal(hq_diag_inspector_count(diag), 9);
    /* a folder the user named must exist; an implicit one may not */
    assert_int_equal(hq_diag_load_plugins(diag, "/nonexistent/hq", true, &err), HQ_ERR_NOT_FOUND);
    assert_int_equal(hq_diag_load_plugins(diag, "/nonexistent/hq", false, &err), HQ_OK);
    hq_diag_destroy(diag);
}

static void default_order_is_priority_then_name(void **state)
{
    (void)state;
    events_t ev;
    hq_diag_t *diag = make(&ev, NULL, NULL);
    hq_error_t err = {0};
    assert_int_equal(hq_diag_load_plugins(diag, GOOD, true, &err), HQ_OK);
    const char *expected[] = {"TestFindings", "TestFailing",   "TestQuiet",
                              "TestClipping", "TestContext",   "TestImages",
                              "TestNoise",    "TestQuantized", "TestStats"};
    assert_int_equal(hq_diag_inspector_count(diag), 9);
    for (int i = 0; i < 9; i++)
        assert_string_equal(hq_diag_inspector(diag, i)->name, expected[i]);
    hq_diag_destroy(diag);
}

static void order_refuses_unknown_name_listing_known_ones(void **state)
{
    (void)state;
    events_t ev;
    hq_diag_t *diag = make(&ev, NULL, NULL);
    hq_error_t err = {0};
    assert_int_equal(hq_diag_load_plugins(diag, GOOD, true, &err), HQ_OK);
    const char *names[] = {"TestQuiet", "Nope"};
    assert_int_equal(hq_diag_set_order(diag, names, 2, &err), HQ_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "'Nope'"));
    assert_non_null(strstr(err.message, "TestFindings, TestFailing, TestQuiet, TestClipping"));
    assert_int_equal(hq_diag_inspector_count(diag), 9); /* unchanged */
    /* case and an "Inspector" suffix do not matter; the list replaces the order */
    const char *ok[] = {"teststatsinspector", "TESTQUIET"};
    assert_int_equal(hq_diag_set_order(diag, ok, 2, &err), HQ_OK);
    assert_int_equal(hq_diag_inspector_count(diag), 2);
    assert_string_equal(hq_diag_inspector(diag, 0)->name, "TestStats");
    assert_string_equal(hq_diag_inspector(diag, 1)->name, "TestQuiet");
    hq_diag_destroy(diag);
}

static hq_diag_t *run_with(events_t *ev, const char *const *names, int count, const char *model,
                           const char *data, hq_diag_ask_fn ask, void *ask_user,
                           hq_status_t expected)
{
    hq_diag_t *diag = make(ev, ask, ask_user);
    hq_error_t err = {0};
    assert_int_equal(hq_diag_load_plugins(diag, GOOD, true, &err), HQ_OK);
    assert_int_equal(hq_diag_set_order(diag, names, count, &err), HQ_OK);
    assert_int_equal(hq_diag_open(diag, model, data, &err), HQ_OK);
    assert_int_equal(hq_diag_run(diag, &err), expected);
    return diag;
}

static void failing_inspector_is_reported_and_the_others_still_run(void **state)
{
    (void)state;
    events_t ev;
    const char *names[] = {"TestFailing", "TestQuiet"};
    hq_diag_t *diag = run_with(&ev, names, 2, TINY, NULL, NULL, NULL, HQ_OK);
    assert_int_equal(hq_diag_failure_count(diag), 1);
    assert_int_equal(ev.modules, 2);
    /* the failure is an error finding; the warning it made before failing and the next
     * inspector's info are kept */
    assert_int_equal(hq_diag_finding_count(diag, HQ_DIAG_ERROR), 1);
    assert_int_equal(hq_diag_finding_count(diag, HQ_DIAG_WARNING), 1);
    assert_int_equal(hq_diag_finding_count(diag, HQ_DIAG_INFO), 1);
    assert_non_null(strstr(diag->findings[1].message, "deliberate test failure"));
    hq_diag_destroy(diag);
}

static void unquantized_model_is_refused_only_when_an_inspector_needs_quantized_data(void **state)
{
    (void)state;
    events_t ev;
    const char *needs[] = {"TestQuantized"};
    hq_diag_t *diag = make(&ev, NULL, NULL);
    hq_error_t err = {0};
    assert_int_equal(hq_diag_load_plugins(diag, GOOD, true, &err), HQ_OK);
    assert_int_equal(hq_diag_set_order(diag, needs, 1, &err), HQ_OK);
    assert_int_equal(hq_diag_open(diag, TINY, NULL, &err), HQ_OK);
    assert_int_equal(hq_diag_run(diag, &err), HQ_ERR_STATE);
    assert_non_null(strstr(err.message, "is not quantized"));
    assert_non_null(strstr(err.message, "hq optimize"));
    hq_diag_destroy(diag);

    const char *plain[] = {"TestQuiet"};
    diag = run_with(&ev, plain, 1, TINY, NULL, NULL, NULL, HQ_OK);
    assert_int_equal(hq_diag_finding_count(diag, HQ_DIAG_INFO), 1);
    hq_diag_destroy(diag);
}

static void inspector_without_its_data_is_skipped_with_the_reason(void **state)
{
    (void)state;
    events_t ev;
    const char *names[] = {"TestStats"};
    hq_diag_t *diag = run_with(&ev, names, 1, TINY, NULL, NULL, NULL, HQ_OK);
    assert_int_equal(ev.skips, 1);
    assert_int_equal(ev.modules, 0);
    assert_non_null(strstr(ev.skipped, "TestStats: no dataset given"));
    hq_diag_destroy(diag);
}

/* Answers from a list, in order; records the questions. */
typedef struct script_answers {
    const char *answers[8];
    int next;
    char questions[8][256];
} script_answers_t;

static int scripted(void *user, const char *inspector, const char *question,
                    const char *const *choices, int count, int default_index)
{
    (void)inspector;
    (void)default_index;
    script_answers_t *s = user;
    snprintf(s->questions[s->next], sizeof s->questions[0], "%s", question);
    const char *answer = s->answers[s->next++];
    for (int i = 0; i < count; i++)
        if (!strcmp(choices[i], answer))
            return i;
    fail_msg("no choice '%s' in question '%s'", answer, question);
    return -1;
}

static void non_interactive_groups_take_their_defaults(void **state)
{
    (void)state;
    events_t ev;
    const char *names[] = {"TestFindings", "TestClipping"};
    hq_diag_t *diag = run_with(&ev, names, 2, TINY, NULL, NULL, NULL, HQ_OK);
    /* precision (yes: 1 line), clipping (warning: 1 of 2), compression (no: 0) */
    assert_int_equal(hq_diag_recommendation_count(diag), 4);
    assert_int_equal(hq_diag_accepted_count(diag), 2);
    assert_int_equal(ev.recommendations, 4);
    assert_true(diag->recs[0].accepted);
    assert_true(diag->recs[1].accepted);  /* clipping conv1: warning level */
    assert_false(diag->recs[2].accepted); /* clipping conv2: info level */
    assert_false(diag->recs[3].accepted); /* compression: default no */
    hq_diag_destroy(diag);
}

static void answers_decide_which_lines_are_accepted(void **state)
{
    (void)state;
    events_t ev;
    const char *names[] = {"TestFindings", "TestClipping"};
    script_answers_t s = {.answers = {"n", "all", "y"}};
    hq_diag_t *diag = run_with(&ev, names, 2, TINY, NULL, scripted, &s, HQ_OK);
    assert_int_equal(s.next, 3);
    assert_string_equal(s.questions[0], "Use 16-bit precision for conv1?");
    assert_false(diag->recs[0].accepted);
    assert_true(diag->recs[1].accepted);
    assert_true(diag->recs[2].accepted);
    assert_true(diag->recs[3].accepted);
    char *text = NULL;
    hq_error_t err = {0};
    assert_int_equal(hq_diag_script_text(diag, &text, &err), HQ_OK);
    assert_null(strstr(text, "precision_mode=a16_w16"));
    assert_non_null(strstr(text, "layers=[conv2]"));
    assert_non_null(strstr(text, "\nmodel_optimization_flavor(compression_level=0)\n"));
    free(text);
    hq_diag_destroy(diag);
}

static const hq_command_t *command_of(hq_script_t **keep, const char *line)
{
    hq_error_t err = {0};
    assert_int_equal(hq_script_parse(line, strlen(line), "test", keep, &err), HQ_OK);
    return hq_script_command(*keep, 0);
}

static bool contradict(const char *old_line, const char *new_line)
{
    hq_script_t *a = NULL, *b = NULL;
    bool r = hqi_diag_commands_contradict(command_of(&a, old_line), command_of(&b, new_line));
    hq_script_destroy(a);
    hq_script_destroy(b);
    return r;
}

static void a_line_contradicts_only_the_same_setting_of_the_same_subject(void **state)
{
    (void)state;
    assert_true(contradict("quantization_param(conv1, precision_mode=a8_w8)",
                           "quantization_param(conv1, precision_mode=a16_w16)"));
    assert_false(contradict("quantization_param(conv2, precision_mode=a8_w8)",
                            "quantization_param(conv1, precision_mode=a16_w16)"));
    assert_false(contradict("quantization_param(conv1, force_range_out=[0, 1])",
                            "quantization_param(conv1, precision_mode=a16_w16)"));
    assert_true(contradict("model_optimization_flavor(optimization_level=2, compression_level=1)",
                           "model_optimization_flavor(compression_level=0)"));
    assert_false(contradict("model_optimization_flavor(optimization_level=2)",
                            "model_optimization_flavor(compression_level=0)"));
    assert_true(contradict("pre_quantization_optimization(activation_clipping, layers=[a, b], "
                           "mode=percentile)",
                           "pre_quantization_optimization(activation_clipping, layers=[b], "
                           "mode=manual, clipping_values=[0, 1])"));
    assert_false(contradict("pre_quantization_optimization(activation_clipping, layers=[a], "
                            "mode=percentile)",
                            "pre_quantization_optimization(activation_clipping, layers=[b], "
                            "mode=manual)"));
    assert_false(
        contradict("pre_quantization_optimization(weights_clipping, layers=[a], mode=mmse)",
                   "pre_quantization_optimization(activation_clipping, layers=[a], "
                   "mode=manual)"));
    assert_true(contradict("normalization1 = normalization([0, 0, 0], [1, 1, 1])",
                           "normalization1 = normalization([0, 0, 0], [255, 255, 255])"));
    assert_false(contradict("normalization1 = normalization([0, 0, 0], [1, 1, 1])",
                            "normalization2 = normalization([0, 0, 0], [255, 255, 255])"));
}

static void a_line_the_script_already_holds_is_not_recommended_again(void **state)
{
    (void)state;
    hq_error_t err = {0};
    hq_archive_t *archive = NULL;
    assert_int_equal(hq_archive_open(TINY, &archive, &err), HQ_OK);
    /* conv1's precision as TestFindings says; conv1's clipping equal to 3 significant digits;
     * conv2's clipping different */
    const char *alls = "quantization_param(conv1, precision_mode=a16_w16)\n"
                       "pre_quantization_optimization(activation_clipping, layers=[conv1], "
                       "mode=manual, clipping_values=[0, 4.5003])\n"
                       "pre_quantization_optimization(activation_clipping, layers=[conv2], "
                       "mode=manual, clipping_values=[0, 2.1])\n";
    assert_int_equal(hq_archive_set_member(archive, "tiny.alls", alls, strlen(alls), &err), HQ_OK);
    char dir[] = "/tmp/hq_test_diag_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/model.har", dir);
    assert_int_equal(hq_archive_save(archive, path, &err), HQ_OK);
    hq_archive_destroy(archive);

    events_t ev;
    const char *names[] = {"TestFindings", "TestClipping"};
    hq_diag_t *diag = run_with(&ev, names, 2, path, NULL, NULL, NULL, HQ_OK);
    assert_int_equal(diag->rec_count, 2);
    assert_non_null(strstr(diag->recs[0].line, "layers=[conv2]"));
    assert_string_equal(diag->recs[1].line, "model_optimization_flavor(compression_level=0)");
    hq_diag_destroy(diag);
    unlink(path);
    rmdir(dir);
}

static void merged_script_replaces_the_contradicted_line_and_says_so(void **state)
{
    (void)state;
    /* an archive whose script has a conv1 precision line that TestFindings contradicts */
    hq_error_t err = {0};
    hq_archive_t *archive = NULL;
    assert_int_equal(hq_archive_open(TINY, &archive, &err), HQ_OK);
    const char *alls = "# mine\nquantization_param(conv1, precision_mode=a8_w8)  # by hand\n"
                       "model_optimization_flavor(optimization_level=2)\n";
    assert_int_equal(hq_archive_set_member(archive, "tiny.alls", alls, strlen(alls), &err), HQ_OK);
    char dir[] = "/tmp/hq_test_diag_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/model.har", dir);
    assert_int_equal(hq_archive_save(archive, path, &err), HQ_OK);
    hq_archive_destroy(archive);

    events_t ev;
    const char *names[] = {"TestFindings"};
    hq_diag_t *diag = run_with(&ev, names, 1, path, NULL, NULL, NULL, HQ_OK);
    char *text = NULL;
    assert_int_equal(hq_diag_script_text(diag, &text, &err), HQ_OK);
    assert_non_null(strstr(text, "# hq-diag (TestFindings) replaced: quantization_param(conv1, "
                                 "precision_mode=a8_w8)  # by hand\n"
                                 "# reason: conv1 is the noisiest layer (test)\n"
                                 "quantization_param(conv1, precision_mode=a16_w16)\n"
                                 "model_optimization_flavor(optimization_level=2)\n"));
    assert_null(strstr(text, "\nquantization_param(conv1, precision_mode=a8_w8)"));
    assert_null(strstr(text, "added by hq-diag")); /* nothing appended: it replaced */
    /* the text is a valid script with exactly the two commands */
    hq_script_t *parsed = NULL;
    assert_int_equal(hq_script_parse(text, strlen(text), "merged", &parsed, &err), HQ_OK);
    int commands = 0;
    for (int i = 0; i < hq_script_command_count(parsed); i++)
        commands += hq_script_command(parsed, i)->name != NULL;
    assert_int_equal(commands, 2);
    hq_script_destroy(parsed);
    free(text);
    hq_diag_destroy(diag);
    unlink(path);
    rmdir(dir);
}

static void statistics_pass_matches_statistics_computed_from_the_dataset(void **state)
{
    (void)state;
    events_t ev;
    const char *names[] = {"TestStats"};
    hq_diag_t *diag = run_with(&ev, names, 1, TINY, TINY_CALIB, NULL, NULL, HQ_OK);
    const hqi_diag_stats_t *set = &diag->stats[HQ_STATS_FLOAT];
    assert_true(set->ran);
    assert_int_equal(set->target, HQ_TARGET_NATIVE); /* tiny.har has no fp-optimized params */

    hq_tensor_t *t = NULL;
    hq_error_t err = {0};
    assert_int_equal(hq_npy_read_file(TINY_CALIB, &t, &err), HQ_OK);
    const float *x = t->data;
    int64_t n = t->shape[0], hw = t->shape[1] * t->shape[2], c = t->shape[3];
    int input = hq_graph_find(diag->graph, "input_layer1");
    const hq_layer_stats_t *s = &set->stats[set->first[input]];
    assert_int_equal(s->samples, n);
    assert_int_equal(s->count, n * hw * c);
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n * hw * c; i++) {
        lo = fmin(lo, x[i]);
        hi = fmax(hi, x[i]);
    }
    assert_float_equal(s->min, lo, 0);
    assert_float_equal(s->max, hi, 0);
    assert_float_equal(s->histogram_lo, 0, 0);
    assert_float_equal(s->histogram_hi, hi, 1e-4);
    /* per-sample per-channel moments, averaged over samples (the contract's definition) */
    for (int ch = 0; ch < c; ch++) {
        double mean_sum = 0, var_sum = 0;
        for (int64_t k = 0; k < n; k++) {
            double sum = 0, sq = 0;
            for (int64_t p = 0; p < hw; p++) {
                double v = x[(k * hw + p) * c + ch];
                sum += v;
                sq += v * v;
            }
            double m = sum / hw;
            mean_sum += m;
            var_sum += sq / hw - m * m;
        }
        assert_float_equal(s->channel_mean[ch], mean_sum / n, 1e-3);
        assert_float_equal(s->channel_std[ch], sqrt(var_sum / n), 1e-3);
    }
    /* the one-pass histogram against the exact one: same total, each bin within 1% */
    int64_t exact[HQ_STATS_HISTOGRAM_BINS] = {0}, total = 0;
    double w = (s->histogram_hi - s->histogram_lo) / HQ_STATS_HISTOGRAM_BINS;
    for (int64_t i = 0; i < n * hw * c; i++) {
        int b = (int)((x[i] - s->histogram_lo) / w);
        exact[b >= HQ_STATS_HISTOGRAM_BINS ? HQ_STATS_HISTOGRAM_BINS - 1 : b]++;
    }
    for (int b = 0; b < HQ_STATS_HISTOGRAM_BINS; b++) {
        total += s->histogram[b];
        assert_true(llabs(s->histogram[b] - exact[b]) <= s->count / 100);
    }
    assert_int_equal(total, s->count);

    /* conv1 has a fused relu: its output is >= 0 while its pre-activation goes negative */
    int conv1 = hq_graph_find(diag->graph, "conv1");
    const hq_layer_stats_t *cs = &set->stats[set->first[conv1]];
    assert_true(cs->min >= 0);
    assert_non_null(cs->preact_mean);
    assert_non_null(cs->preact_std);
    bool negative = false;
    for (int ch = 0; ch < cs->channels; ch++) {
        assert_true(cs->channel_mean[ch] >= 0);
        negative |= cs->preact_mean[ch] < 0;
    }
    assert_true(negative);
    /* layers without weights have no pre-activation moments */
    assert_null(set->stats[set->first[hq_graph_find(diag->graph, "maxpool1")]].preact_mean);
    hq_tensor_destroy(t);
    hq_diag_destroy(diag);
    unlink("/tmp/test_stats.png");
}

int main(void)
{
    /* keep test modules mapped so sanitizer reports can name their frames */
    setenv("HQ_DIAG_NO_DLCLOSE", "1", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loader_refuses_module_without_entry_symbol),
        cmocka_unit_test(loader_refuses_abi_mismatch_naming_both_versions),
        cmocka_unit_test(loader_refuses_newer_minor_naming_both_versions),
        cmocka_unit_test(loader_accepts_a_module_built_against_the_1_0_headers),
        cmocka_unit_test(loader_refuses_null_descriptor),
        cmocka_unit_test(loader_refuses_duplicate_name),
        cmocka_unit_test(loader_refuses_file_that_does_not_load_with_the_reason_and_ldd_hint),
        cmocka_unit_test(loading_a_folder_reports_each_broken_module_and_keeps_the_others),
        cmocka_unit_test(default_order_is_priority_then_name),
        cmocka_unit_test(order_refuses_unknown_name_listing_known_ones),
        cmocka_unit_test(failing_inspector_is_reported_and_the_others_still_run),
        cmocka_unit_test(unquantized_model_is_refused_only_when_an_inspector_needs_quantized_data),
        cmocka_unit_test(inspector_without_its_data_is_skipped_with_the_reason),
        cmocka_unit_test(non_interactive_groups_take_their_defaults),
        cmocka_unit_test(answers_decide_which_lines_are_accepted),
        cmocka_unit_test(a_line_contradicts_only_the_same_setting_of_the_same_subject),
        cmocka_unit_test(a_line_the_script_already_holds_is_not_recommended_again),
        cmocka_unit_test(merged_script_replaces_the_contradicted_line_and_says_so),
        cmocka_unit_test(statistics_pass_matches_statistics_computed_from_the_dataset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
