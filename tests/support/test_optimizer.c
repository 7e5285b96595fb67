/* test_optimizer.c — the helpers shared by the optimizer's unit tests (test_optimizer.h). */
#include "test_optimizer.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_graphs.h"

static char tmp_dir[64];

void test_log_capture(void *user, hq_log_level_t level, const char *message)
{
    (void)level;
    test_log_t *log = user;
    size_t used = strlen(log->text);
    snprintf(log->text + used, sizeof log->text - used, "%s\n", message);
}

int test_tmp_create(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/hq_test_optimizer_XXXXXX");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

int test_tmp_remove(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    return system(cmd) == 0 ? 0 : -1;
}

hq_script_t *test_script_of(const char *text)
{
    hq_script_t *s = NULL;
    hq_error_t err = {0};
    if (hq_script_parse(text, strlen(text), "test.alls", &s, &err))
        fail_msg("script: %s", err.message);
    return s;
}

hq_archive_t *test_archive_of(const hq_graph_t *g, const hq_npz_t *params)
{
    hq_archive_t *a = NULL;
    hq_graph_t *gc = NULL;
    hq_npz_t *pc = NULL;
    assert_int_equal(hq_archive_create(hq_graph_net_name(g), &a, NULL), HQ_OK);
    assert_int_equal(hq_graph_clone(g, &gc, NULL), HQ_OK);
    assert_int_equal(hq_npz_create(&pc, NULL), HQ_OK);
    for (size_t i = 0; i < hq_npz_count(params); i++)
        assert_int_equal(
            hq_npz_put_copy(pc, hq_npz_key(params, i), hq_npz_get_index(params, i), NULL), HQ_OK);
    assert_int_equal(hq_archive_set_graph(a, gc, NULL), HQ_OK);
    assert_int_equal(hq_archive_set_params(a, HQ_PARAMS_NATIVE, pc, NULL), HQ_OK);
    return a;
}

hq_dataset_t *test_dataset_of_tensor(const hq_graph_t *g, hq_tensor_t *t, const char *file,
                                     float **values)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, file);
    assert_int_equal(hq_npy_write_file(path, t, NULL), HQ_OK);
    if (values) {
        *values = malloc(t->nbytes);
        memcpy(*values, t->data, t->nbytes);
    }
    hq_tensor_destroy(t);
    hq_dataset_t *ds = NULL;
    hq_error_t err = {0};
    if (hq_dataset_open(path, g, &ds, &err))
        fail_msg("dataset: %s", err.message);
    return ds;
}

hq_dataset_t *test_trainer_dataset(const hq_graph_t *g, int64_t n, int64_t h, int64_t w, int64_t c,
                                   float **values)
{
    int64_t shape[4] = {n, h, w, c};
    hq_tensor_t *t = NULL;
    assert_int_equal(hq_tensor_create(HQ_DTYPE_FLOAT32, 4, shape, &t, NULL), HQ_OK);
    float *x = t->data;
    test_fill(x, hq_tensor_count(t), 93);
    for (int64_t p = 0; p < n * h * w; p++)
        for (int64_t i = 1; i < c; i++)
            x[p * c + i] = 0.6f * x[p * c] + 0.4f * x[p * c + i];
    for (int64_t s = 0; s < n; s++)
        for (int64_t y = h - 1; y >= 0; y--)
            for (int64_t xx = w - 1; xx >= 0; xx--)
                for (int64_t i = 0; i < c; i++) {
                    float *v = &x[((s * h + y) * w + xx) * c + i];
                    float left = xx > 0 ? v[-c] : 0.0f, up = y > 0 ? v[-w * c] : 0.0f;
                    *v = 0.5f * *v + 0.3f * left + 0.3f * up;
                }
    return test_dataset_of_tensor(g, t, "data.npy", values);
}

void test_optimize(hq_archive_t *a, const char *text, hq_dataset_t *ds, int threads,
                   test_log_t *log)
{
    hq_script_t *s = test_script_of(text);
    hq_optimize_options_t options = {0};
    options.log = test_log_capture;
    options.log_user = log;
    options.threads = threads;
    hq_error_t err = {0};
    if (hqi_optimize_run(a, s, ds, &options, true, NULL, &err))
        fail_msg("optimize: %s", err.message);
    hq_script_destroy(s);
}

hq_status_t test_keep_layer(void *user, int layer, int port, const hq_shape_t *shape,
                            const float *data, hq_error_t *err)
{
    (void)port;
    (void)shape;
    (void)err;
    test_tap_t *t = user;
    if (layer == t->layer)
        memcpy(t->x, data, sizeof(float) * (size_t)t->count);
    return HQ_OK;
}

hq_status_t test_read_config(hq_graph_t *(*build)(hq_npz_t **params), const char *text,
                             hqi_optimize_config_t *cfg, test_log_t *log, hq_error_t *err)
{
    hq_npz_t *params = NULL;
    hqi_optimize_work_t w = {0};
    w.graph = build(&params);
    w.native = params;
    w.fpo = params;
    w.script_name = "test.alls";
    w.log.fn = test_log_capture;
    w.log.user = log;
    hqi_optimize_config_defaults(&w.cfg);
    hq_script_t *s = test_script_of(text);
    hq_status_t st = hqi_optimize_script_modify(&w, s, err);
    *cfg = w.cfg;
    hqi_optimize_work_clear(&w);
    hq_script_destroy(s);
    hq_graph_destroy(w.graph);
    hq_npz_destroy(params);
    return st;
}

void test_bad_keys_refused(hq_graph_t *(*build)(hq_npz_t **params), const char *algorithm,
                           const test_bad_key_t *bad, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        char text[256];
        snprintf(text, sizeof text, "\npost_quantization_optimization(%s, %s)\n", algorithm,
                 bad[i].args);
        hqi_optimize_config_t cfg;
        test_log_t log = {""};
        hq_error_t err = {0};
        assert_int_equal(test_read_config(build, text, &cfg, &log, &err), HQ_ERR_INVALID);
        if (!strstr(err.message, "test.alls:2: post_quantization_optimization: ") ||
            !strstr(err.message, bad[i].message) || strchr(err.message, '\n'))
            fail_msg("'%s': %s", bad[i].args, err.message);
    }
}
