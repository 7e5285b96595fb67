/* test_public_headers.c — <hq/hq.h> alone declares the whole public API. This file includes
 * nothing of hq but the umbrella header, is built with -Werror against the shared libhq and
 * libhqrt, and calls one function of every public header: a header that hq.h leaves out turns
 * into an implicit declaration, and so into a build failure. */
#include <hq/hq.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#ifndef HQ_SOURCE_DIR
#error "HQ_SOURCE_DIR must name the source tree (for samples/tiny.har)"
#endif

static const hq_inspector_t *test_entry(void)
{
    static const hq_inspector_t desc = {.abi_version = HQ_INSPECTOR_ABI_VERSION,
                                        .struct_size = sizeof desc,
                                        .name = "PublicHeaders"};
    return &desc;
}

static void common_h_names_the_version_and_statuses(void **state)
{
    assert_non_null(hq_version());
    assert_non_null(hq_status_string(HQ_ERR_ARGUMENT));
}

static void tensor_h_sizes_dtypes(void **state)
{
    assert_int_equal(hq_dtype_size(HQ_DTYPE_FLOAT32), 4);
}

static void archive_and_graph_h_open_the_sample(void **state)
{
    hq_error_t err = {0};
    hq_archive_t *archive = NULL;
    assert_int_equal(hq_archive_open(HQ_SOURCE_DIR "/samples/tiny.har", &archive, &err), HQ_OK);
    hq_graph_t *graph = NULL;
    assert_int_equal(hq_archive_graph(archive, &graph, &err), HQ_OK);
    assert_true(hq_graph_layer_count(graph) > 0);
    hq_archive_destroy(archive);
}

static void script_h_parses_a_line(void **state)
{
    static const char line[] = "model_optimization_flavor(optimization_level=2)\n";
    hq_error_t err = {0};
    hq_script_t *script = NULL;
    assert_int_equal(hq_script_parse(line, strlen(line), "line", &script, &err), HQ_OK);
    assert_int_equal(hq_script_command_count(script), 1);
    hq_script_destroy(script);
}

static void dataset_h_refuses_a_missing_file(void **state)
{
    hq_error_t err = {0};
    hq_dataset_t *dataset = NULL;
    assert_int_not_equal(hq_dataset_open("/nonexistent/data.npy", NULL, &dataset, &err), HQ_OK);
    hq_dataset_destroy(dataset);
}

static void parse_h_refuses_a_missing_file(void **state)
{
    hq_error_t err = {0};
    hq_archive_t *archive = NULL;
    assert_int_not_equal(hq_parse_onnx("/nonexistent/model.onnx", NULL, &archive, &err), HQ_OK);
    hq_archive_destroy(archive);
}

static void emulate_h_knows_the_native_target(void **state)
{
    hq_target_t target;
    assert_int_equal(hq_target_from_name("native", &target), HQ_OK);
    assert_string_equal(hq_target_name(target), "native");
}

static void quantize_h_refuses_a_missing_archive(void **state)
{
    hq_error_t err = {0};
    assert_int_equal(hq_analyze_noise(NULL, NULL, 0, HQ_NOISE_SIMPLE, NULL, &err),
                     HQ_ERR_ARGUMENT);
}

static void deploy_h_has_a_cost_model_for_hailo8(void **state)
{
    hq_error_t err = {0};
    hq_cost_model_t model;
    assert_int_equal(hq_cost_model_get("hailo8", &model, &err), HQ_OK);
}

static void hqrt_h_names_its_statuses(void **state)
{
    assert_non_null(hqrt_status_text(HQRT_OK));
}

static void inspector_and_diag_h_build_a_runner(void **state)
{
    hq_inspector_entry_fn entry = test_entry;
    assert_int_equal(entry()->abi_version, HQ_INSPECTOR_ABI_VERSION);
    hq_error_t err = {0};
    hq_diag_t *diag = NULL;
    assert_int_equal(hq_diag_create(NULL, &diag, &err), HQ_OK);
    assert_int_equal(hq_diag_inspector_count(diag), 0);
    hq_diag_destroy(diag);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(common_h_names_the_version_and_statuses),
        cmocka_unit_test(tensor_h_sizes_dtypes),
        cmocka_unit_test(archive_and_graph_h_open_the_sample),
        cmocka_unit_test(script_h_parses_a_line),
        cmocka_unit_test(dataset_h_refuses_a_missing_file),
        cmocka_unit_test(parse_h_refuses_a_missing_file),
        cmocka_unit_test(emulate_h_knows_the_native_target),
        cmocka_unit_test(quantize_h_refuses_a_missing_archive),
        cmocka_unit_test(deploy_h_has_a_cost_model_for_hailo8),
        cmocka_unit_test(hqrt_h_names_its_statuses),
        cmocka_unit_test(inspector_and_diag_h_build_a_runner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
