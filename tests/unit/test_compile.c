/* test_compile.c — hq_compile on a real quantized model (the conv.onnx fixture, quantized here
 * with hq_optimize on random calibration data): state and member handling, determinism, and the
 * compiled program run by libhqrt giving the bytes of the quantized emulator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hq/deploy.h"
#include "hq/emulate.h"
#include "hq/hq.h"
#include "hq/hqrt.h"
#include "hq/quantize.h"

static char calib_path[256];

static hq_archive_t *parsed(void)
{
    hq_archive_t *a = NULL;
    hq_error_t err = {0};
    if (hq_parse_onnx(HQ_FIXTURES "/onnx/conv.onnx", NULL, &a, &err) != HQ_OK)
        fail_msg("%s", err.message);
    return a;
}

static hq_archive_t *quantized(void)
{
    hq_archive_t *a = parsed();
    hq_graph_t *g = NULL;
    hq_dataset_t *ds = NULL;
    hq_error_t err = {0};
    assert_int_equal(hq_archive_graph(a, &g, &err), HQ_OK);
    if (hq_dataset_open(calib_path, g, &ds, &err) != HQ_OK)
        fail_msg("%s", err.message);
    if (hq_optimize(a, NULL, ds, NULL, &err) != HQ_OK)
        fail_msg("%s", err.message);
    hq_dataset_destroy(ds);
    return a;
}

static int setup(void **state)
{
    (void)state;
    snprintf(calib_path, sizeof calib_path, "/tmp/hq_test_compile_%d.npy", (int)getpid());
    int64_t shape[4] = {8, 4, 4, 2};
    hq_tensor_t *t = NULL;
    if (hq_tensor_create(HQ_DTYPE_FLOAT32, 4, shape, &t, NULL) != HQ_OK)
        return -1;
    float *x = t->data;
    for (int64_t i = 0; i < hq_tensor_count(t); i++)
        x[i] = (float)((i * 37) % 101) / 25.0f - 2.0f;
    hq_status_t st = hq_npy_write_file(calib_path, t, NULL);
    hq_tensor_destroy(t);
    return st == HQ_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    unlink(calib_path);
    return 0;
}

static void compile_refuses_an_archive_that_is_not_quantized(void **state)
{
    (void)state;
    hq_archive_t *a = parsed();
    hq_error_t err = {0};
    void *prog = (void *)1;
    size_t len = 7;
    assert_int_equal(hq_compile(a, &prog, &len, &err), HQ_ERR_STATE);
    assert_null(prog);
    assert_int_equal(len, 0);
    assert_non_null(strstr(err.message, "parsed_model"));
    assert_int_equal(hq_archive_state(a), HQ_STATE_PARSED);
    const void *bytes;
    size_t n;
    assert_int_equal(hq_archive_member(a, "conv.hqx", &bytes, &n, NULL), HQ_ERR_NOT_FOUND);
    hq_archive_destroy(a);
}

static void compile_embeds_the_program_and_sets_state_compiled(void **state)
{
    (void)state;
    hq_archive_t *a = quantized();
    hq_error_t err = {0};
    void *prog = NULL;
    size_t len = 0;
    if (hq_compile(a, &prog, &len, &err) != HQ_OK)
        fail_msg("%s", err.message);
    assert_int_equal(hq_archive_state(a), HQ_STATE_COMPILED);
    const void *member;
    size_t n;
    assert_int_equal(hq_archive_member(a, "conv.hqx", &member, &n, &err), HQ_OK);
    assert_int_equal(n, len);
    assert_memory_equal(member, prog, len);
    /* a compiled archive compiles again, to the same bytes (deterministic) */
    void *again = NULL;
    size_t len2 = 0;
    assert_int_equal(hq_compile(a, &again, &len2, &err), HQ_OK);
    assert_int_equal(len2, len);
    assert_memory_equal(again, prog, len);
    free(again);
    free(prog);
    hq_archive_destroy(a);
}

static void compiled_program_gives_the_bytes_of_the_quantized_emulator(void **state)
{
    (void)state;
    hq_archive_t *a = quantized();
    hq_error_t err = {0};
    hq_emulator_t *emu = NULL;
    if (hq_emulator_create_from_archive(a, HQ_TARGET_QUANTIZED, &emu, &err) != HQ_OK)
        fail_msg("%s", err.message);
    void *prog = NULL;
    size_t len = 0;
    assert_int_equal(hq_compile(a, &prog, &len, &err), HQ_OK);
    hqrt_model_t *m = NULL;
    hqrt_error_t rerr;
    if (hqrt_open_memory(prog, len, "conv.hqx", &m, &rerr) != HQRT_OK)
        fail_msg("%s", rerr.message);
    hqrt_io_t in, out;
    assert_int_equal(hqrt_describe(m, HQRT_INPUT, 0, &in, NULL), HQRT_OK);
    assert_int_equal(hqrt_describe(m, HQRT_OUTPUT, 0, &out, NULL), HQRT_OK);
    assert_int_equal(in.elements, 4 * 4 * 2);
    assert_int_equal(out.elements, hq_emulator_output_size(emu, 0));
    enum { N = 5 };
    float x[N * 32], want[N * 64], got[N * 64];
    for (int i = 0; i < N * 32; i++)
        x[i] = (float)((i * 53) % 97) / 20.0f - 2.4f;
    const float *ins[1] = {x};
    float *outs[1] = {want};
    if (hq_emulator_run(emu, N, ins, outs, NULL, NULL, &err) != HQ_OK)
        fail_msg("%s", err.message);
    uint8_t qin[N * 32 * 2], qout[N * 64 * 2];
    hqrt_quantize(&in, x, N * in.elements, qin);
    const void *rins[1] = {qin};
    void *routs[1] = {qout};
    for (int threads = 1; threads <= 2; threads++) {
        hqrt_run_options_t o = {threads};
        memset(got, 0, sizeof got);
        assert_int_equal(hqrt_run(m, N, rins, routs, &o, &rerr), HQRT_OK);
        hqrt_dequantize(&out, qout, N * out.elements, got);
        assert_memory_equal(got, want, (size_t)(N * out.elements) * sizeof(float));
    }
    hqrt_close(m);
    free(prog);
    hq_emulator_destroy(emu);
    hq_archive_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(compile_refuses_an_archive_that_is_not_quantized),
        cmocka_unit_test(compile_embeds_the_program_and_sets_state_compiled),
        cmocka_unit_test(compiled_program_gives_the_bytes_of_the_quantized_emulator),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
