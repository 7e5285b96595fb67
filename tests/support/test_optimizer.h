/* test_optimizer.h — what the optimizer's unit tests (test_optimize.c, test_precision.c and the
 * trainers' test_adaround.c and test_finetune.c) share: the optimizer's log captured into a
 * buffer, a temporary folder for the group, scripts parsed from text, an in-memory graph and
 * params as a parsed archive; for the trainers, their training set (correlated channels and
 * neighbours), one optimizer run, the emulator tap that keeps a layer's output, and the script's
 * keys read into a config. Each stops the test (a cmocka failure) on a library error. */
#ifndef HQ_TEST_OPTIMIZER_H
#define HQ_TEST_OPTIMIZER_H

#include <stdint.h>

#include "hq/archive.h"
#include "hq/dataset.h"
#include "hq/graph.h"
#include "hq/script.h"
#include "hq/tensor.h"
#include "quant/optimize.h"
#include "quant/optimize_script.h"

/* The optimizer's log lines, each followed by a newline; start it empty ({""}). */
typedef struct test_log {
    char text[32768];
} test_log_t;

/* An hq_log_fn appending to the test_log_t `user`. */
void test_log_capture(void *user, hq_log_level_t level, const char *message);

/* Group setup and teardown for cmocka_run_group_tests: a new folder under /tmp, and its removal. */
int test_tmp_create(void **state);
int test_tmp_remove(void **state);

/* The model script `text`, named "test.alls"; the caller destroys it. */
hq_script_t *test_script_of(const char *text);

/* An archive (state parsed) holding copies of g and params as its native params; the caller
 * destroys it. */
hq_archive_t *test_archive_of(const hq_graph_t *g, const hq_npz_t *params);

/* Writes t (which it destroys) to `file` in the group's folder and opens it as a dataset for g;
 * *values gets a copy of t's floats when values is not NULL (the caller frees it). */
hq_dataset_t *test_dataset_of_tensor(const hq_graph_t *g, hq_tensor_t *t, const char *file,
                                     float **values);

/* n samples of {h, w, c} that look like activations (with independent inputs round-to-nearest
 * is already the best rounding): test_fill(93), then channel i > 0 leans on channel 0 and every
 * position on its left and upper neighbours. Written to the group's folder and opened for g;
 * *values gets a copy (the caller frees it). */
hq_dataset_t *test_trainer_dataset(const hq_graph_t *g, int64_t n, int64_t h, int64_t w, int64_t c,
                                   float **values);

/* hq optimize's quantized half (hqi_optimize_run) with the script `text` on `threads` threads,
 * the log into `log`. */
void test_optimize(hq_archive_t *a, const char *text, hq_dataset_t *ds, int threads,
                   test_log_t *log);

/* An emulator tap (hq_emulator_tap_fn) that copies the first `count` values layer `layer`
 * reports into x. */
typedef struct test_tap {
    int layer;
    float *x;
    int64_t count;
} test_tap_t;
hq_status_t test_keep_layer(void *user, int layer, int port, const hq_shape_t *shape,
                            const float *data, hq_error_t *err);

/* The optimizer config after the script `text` on the model `build` makes (the log into `log`);
 * returns what hqi_optimize_script_modify returns. */
hq_status_t test_read_config(hq_graph_t *(*build)(hq_npz_t **params), const char *text,
                             hqi_optimize_config_t *cfg, test_log_t *log, hq_error_t *err);

/* Keys of post_quantization_optimization(ALGORITHM, args) and what their refusal says. */
typedef struct test_bad_key {
    const char *args;
    const char *message;
} test_bad_key_t;

/* Each bad[i].args, on line 2 of a script on the model `build` makes, is refused with
 * HQ_ERR_INVALID and one line naming "test.alls:2: post_quantization_optimization: " and
 * bad[i].message. */
void test_bad_keys_refused(hq_graph_t *(*build)(hq_npz_t **params), const char *algorithm,
                           const test_bad_key_t *bad, size_t count);

#endif
