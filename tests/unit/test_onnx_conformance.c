/* test_onnx_conformance.c — the ONNX conformance sweep: every single-op and PyTorch-converted
 * test model of Debian's libonnx-testdata (data/node, data/pytorch-converted,
 * data/pytorch-operator) is imported with hq_parse_onnx_memory and, when hq supports it, run in
 * the native float emulator against every output_*.pb of every test_data_set_*.
 *
 * Per case:
 *   - the graph inputs that are float and 2-D, 3-D or 4-D stay inputs, every other input becomes an
 *     initializer holding its test_data_set_0 value (ONNX tests pass weights, pads, scales, ...
 *     as inputs; hq needs them constant). When that fails to parse, a second attempt keeps only
 *     the first input as data (e.g. a Conv whose weights are 4-D float inputs);
 *   - "unsupported": neither attempt parses (the reason is hq's one-line error) or the test data
 *     cannot be mapped onto NHWC batches (inputs with different batch sizes, non-float outputs);
 *   - "failed": hq parses the model but the emulator refuses it, errs, or an output element
 *     misses the reference: |hq - ref| > 1e-4 * |ref| + 1e-5 (NaN must match NaN);
 *   - "passed": every output of every data set matched.
 * The table and the counts are printed. A failed case fails the test, and so does any case in
 * tests/fixtures/onnx/conformance_expected.txt that did not pass (no silent drop). Cases that
 * pass but are not listed are printed as "new" (add them with HQ_CONFORMANCE_WRITE=<file>,
 * which writes the list of passing cases). */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hq/emulate.h"
#include "hq/parse.h"
#include "onnx.pb-c.h"
#include "util/util.h"

#define DATA_ROOT "/usr/share/libonnx-testdata/data/"
#define MAX_IO 16
#define TOL_REL 1e-4
#define TOL_ABS 1e-5

typedef enum { CASE_PASSED, CASE_FAILED, CASE_UNSUPPORTED } outcome_t;

static const char *const outcome_names[] = {"passed", "FAILED", "unsupported"};

typedef struct case_result {
    char name[192]; /* "<suite>/<test>" */
    outcome_t outcome;
    char reason[384];
} case_result_t;

static void set_result(case_result_t *r, outcome_t o, const char *fmt, ...)
{
    r->outcome = o;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
}

/* snprintf for file paths (the test data paths are short; a longer one is cut, and then simply
 * not found) */
static void make_path(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, size, fmt, ap);
    va_end(ap);
}

static Onnx__TensorProto *read_tensor(const char *path)
{
    void *bytes;
    size_t len;
    if (hqi_read_file(path, (size_t)1 << 28, &bytes, &len, NULL) != HQ_OK)
        return NULL;
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, bytes);
    free(bytes);
    return tp;
}

static int64_t tensor_count(const Onnx__TensorProto *tp)
{
    int64_t n = 1;
    for (size_t d = 0; d < tp->n_dims; d++)
        n *= tp->dims[d];
    return n;
}

/* The tensor's values as float32 (float, double and float16 tensors); NULL for other types or
 * a size mismatch. Caller frees. */
static float *tensor_floats(const Onnx__TensorProto *tp)
{
    int64_t n = tensor_count(tp);
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    if (tp->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
        if (tp->raw_data.len == (size_t)n * 4)
            memcpy(v, tp->raw_data.data, (size_t)n * 4);
        else if (tp->n_float_data == (size_t)n)
            memcpy(v, tp->float_data, (size_t)n * 4);
        else
            goto bad;
    } else if (tp->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE) {
        for (int64_t i = 0; i < n; i++) {
            double d;
            if (tp->raw_data.len == (size_t)n * 8)
                memcpy(&d, tp->raw_data.data + 8 * i, 8);
            else if (tp->n_double_data == (size_t)n)
                d = tp->double_data[i];
            else
                goto bad;
            v[i] = (float)d;
        }
    } else {
        goto bad;
    }
    return v;
bad:
    free(v);
    return NULL;
}

/* ONNX [N, C, H, W] (or [N, C]) -> hq NHWC (or [N, C]) */
static void nchw_to_nhwc(const float *src, float *dst, int64_t n, int64_t c, int64_t h, int64_t w)
{
    for (int64_t b = 0; b < n; b++)
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t y = 0; y < h; y++)
                for (int64_t x = 0; x < w; x++)
                    dst[((b * h + y) * w + x) * c + ch] = src[((b * c + ch) * h + y) * w + x];
}

static bool is_float_type(int32_t t)
{
    return t == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || t == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
}

typedef struct test_case {
    const char *dir; /* folder holding model.onnx */
    Onnx__ModelProto *model;
    size_t input_count; /* graph inputs that are not initializers */
    const char *input_names[MAX_IO];
    Onnx__TensorProto *set0[MAX_IO]; /* test_data_set_0/input_<k>.pb */
} test_case_t;

/* Packs the model with the inputs whose `constant[k]` is set turned into initializers. */
static uint8_t *pack_with_constants(test_case_t *tc, const bool *constant, size_t *len)
{
    Onnx__GraphProto *g = tc->model->graph;
    Onnx__TensorProto **inits = calloc(g->n_initializer + tc->input_count + 1, sizeof *inits);
    char *own_names[MAX_IO] = {0};
    size_t n = g->n_initializer;
    for (size_t i = 0; i < g->n_initializer; i++)
        inits[i] = g->initializer[i];
    for (size_t k = 0; k < tc->input_count; k++) {
        if (!constant[k])
            continue;
        own_names[k] = tc->set0[k]->name;
        tc->set0[k]->name = (char *)tc->input_names[k];
        inits[n++] = tc->set0[k];
    }
    Onnx__TensorProto **old = g->initializer;
    size_t old_n = g->n_initializer;
    g->initializer = inits;
    g->n_initializer = n;
    *len = onnx__model_proto__get_packed_size(tc->model);
    uint8_t *bytes = malloc(*len ? *len : 1);
    onnx__model_proto__pack(tc->model, bytes);
    g->initializer = old;
    g->n_initializer = old_n;
    for (size_t k = 0; k < tc->input_count; k++)
        if (constant[k])
            tc->set0[k]->name = own_names[k];
    free(inits);
    return bytes;
}

static bool is_initializer(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (g->initializer[i]->name && strcmp(g->initializer[i]->name, name) == 0)
            return true;
    return false;
}

/* Strips the "<file>: " prefix from a parse error. */
static const char *short_reason(const char *msg, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(msg, name, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
        return msg + n + 2;
    return msg;
}

/* Compares hq's output (NHWC) with the reference tensor (NCHW); fills `why` on a mismatch. */
static bool compare_output(const float *got, const hq_shape_t *hq_shape,
                           const Onnx__TensorProto *ref, const float *want, char *why, size_t wn)
{
    int64_t n = tensor_count(ref);
    int64_t per = 1;
    for (int d = 1; d < hq_shape->ndim; d++)
        per *= hq_shape->dims[d];
    int64_t batch = ref->n_dims ? ref->dims[0] : 1;
    if (per * batch != n) {
        snprintf(why, wn, "output '%s': hq has %lld values per sample, reference %lld in all",
                 ref->name ? ref->name : "?", (long long)per, (long long)n);
        return false;
    }
    float *ref_nhwc = malloc((size_t)(n > 0 ? n : 1) * sizeof *ref_nhwc);
    if (ref->n_dims == 4 && hq_shape->ndim == 4)
        nchw_to_nhwc(want, ref_nhwc, ref->dims[0], ref->dims[1], ref->dims[2], ref->dims[3]);
    else if (ref->n_dims == 3 && hq_shape->ndim == 4)
        nchw_to_nhwc(want, ref_nhwc, ref->dims[0], ref->dims[1], 1, ref->dims[2]);
    else
        memcpy(ref_nhwc, want, (size_t)n * sizeof *want);
    bool ok = true;
    for (int64_t i = 0; i < n && ok; i++) {
        double e = ref_nhwc[i], a = got[i];
        bool match;
        if (isnan(e))
            match = isnan(a);
        else if (isinf(e))
            match = a == e;
        else
            match = fabs(a - e) <= TOL_REL * fabs(e) + TOL_ABS;
        if (!match) {
            snprintf(why, wn, "output '%s' element %lld (NHWC order) = %.9g, reference %.9g",
                     ref->name ? ref->name : "?", (long long)i, a, e);
            ok = false;
        }
    }
    free(ref_nhwc);
    return ok;
}

/* Runs data set `set_dir` through the emulator; returns the outcome. */
static outcome_t run_data_set(test_case_t *tc, const bool *constant, hq_emulator_t *emu,
                              const hq_graph_t *graph, const char *set_dir, case_result_t *r)
{
    int in_count, out_count;
    const int *ins = hq_graph_inputs(graph, &in_count);
    const int *outs = hq_graph_outputs(graph, &out_count);
    Onnx__GraphProto *g = tc->model->graph;
    float *in_data[MAX_IO] = {0};
    float *out_data[MAX_IO] = {0};
    Onnx__TensorProto *ref[MAX_IO] = {0};
    float *ref_data[MAX_IO] = {0};
    outcome_t result = CASE_PASSED;
    int64_t batch = -1;
    char path[1024];
    if (in_count > MAX_IO || out_count > MAX_IO) {
        set_result(r, CASE_UNSUPPORTED, "more than %d inputs or outputs", MAX_IO);
        return CASE_UNSUPPORTED;
    }
    for (int i = 0; i < in_count && result == CASE_PASSED; i++) {
        const hq_layer_t *l = hq_graph_layer(graph, ins[i]);
        size_t k = 0;
        while (k < tc->input_count && (constant[k] || l->original_name_count < 1 ||
                                       strcmp(l->original_names[0], tc->input_names[k]) != 0))
            k++;
        if (k == tc->input_count) {
            set_result(r, CASE_FAILED, "input layer %s matches no ONNX input", l->name);
            result = CASE_FAILED;
            break;
        }
        make_path(path, sizeof path, "%s/input_%zu.pb", set_dir, k);
        Onnx__TensorProto *tp = read_tensor(path);
        float *v = tp ? tensor_floats(tp) : NULL;
        if (!v) {
            set_result(r, CASE_UNSUPPORTED, "input '%s' is not a float tensor", tc->input_names[k]);
            result = CASE_UNSUPPORTED;
        } else if (tp->n_dims < 2 || tp->n_dims > 4) {
            set_result(r, CASE_UNSUPPORTED, "input '%s' has rank %zu", tc->input_names[k],
                       tp->n_dims);
            result = CASE_UNSUPPORTED;
        } else if (batch >= 0 && tp->dims[0] != batch) {
            set_result(r, CASE_UNSUPPORTED, "inputs differ in batch size (%lld, %lld)",
                       (long long)batch, (long long)tp->dims[0]);
            result = CASE_UNSUPPORTED;
        } else {
            batch = tp->dims[0];
            int64_t n = tensor_count(tp);
            if (n != batch * hq_emulator_input_size(emu, i)) {
                set_result(r, CASE_FAILED, "input '%s': %lld values, hq expects %lld per sample",
                           tc->input_names[k], (long long)n,
                           (long long)hq_emulator_input_size(emu, i));
                result = CASE_FAILED;
            } else {
                in_data[i] = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
                if (tp->n_dims == 4)
                    nchw_to_nhwc(v, in_data[i], tp->dims[0], tp->dims[1], tp->dims[2], tp->dims[3]);
                else if (tp->n_dims == 3) /* [N, C, L] is hq's [N, 1, L, C] */
                    nchw_to_nhwc(v, in_data[i], tp->dims[0], tp->dims[1], 1, tp->dims[2]);
                else
                    memcpy(in_data[i], v, (size_t)n * sizeof(float));
            }
        }
        free(v);
        if (tp)
            onnx__tensor_proto__free_unpacked(tp, NULL);
    }
    /* references: output_<j>.pb is graph output j */
    for (int o = 0; o < out_count && result == CASE_PASSED; o++) {
        const hq_layer_t *l = hq_graph_layer(graph, outs[o]);
        size_t j = 0;
        while (j < g->n_output && (l->original_name_count < 1 ||
                                   strcmp(g->output[j]->name, l->original_names[0]) != 0))
            j++;
        if (j == g->n_output) {
            set_result(r, CASE_FAILED, "output layer %s matches no ONNX output", l->name);
            result = CASE_FAILED;
            break;
        }
        make_path(path, sizeof path, "%s/output_%zu.pb", set_dir, j);
        ref[o] = read_tensor(path);
        ref_data[o] = ref[o] ? tensor_floats(ref[o]) : NULL;
        if (!ref_data[o]) {
            set_result(r, CASE_UNSUPPORTED, "output '%s' is not a float tensor",
                       g->output[j]->name);
            result = CASE_UNSUPPORTED;
        }
    }
    if (result == CASE_PASSED && batch < 0) {
        set_result(r, CASE_UNSUPPORTED, "no computed input");
        result = CASE_UNSUPPORTED;
    }
    if (result == CASE_PASSED) {
        for (int o = 0; o < out_count; o++)
            out_data[o] =
                malloc((size_t)(batch * hq_emulator_output_size(emu, o) + 1) * sizeof(float));
        hq_error_t err = {0};
        if (hq_emulator_run(emu, batch, (const float *const *)in_data, out_data, NULL, NULL,
                            &err) != HQ_OK) {
            set_result(r, CASE_FAILED, "emulator: %s", err.message);
            result = CASE_FAILED;
        }
    }
    for (int o = 0; o < out_count && result == CASE_PASSED; o++) {
        const hq_layer_t *l = hq_graph_layer(graph, outs[o]);
        char why[256];
        if (!compare_output(out_data[o], &l->output_shape, ref[o], ref_data[o], why, sizeof why)) {
            const char *set = strrchr(set_dir, '/');
            set_result(r, CASE_FAILED, "%s: %s", set ? set + 1 : set_dir, why);
            result = CASE_FAILED;
        }
    }
    for (int i = 0; i < MAX_IO; i++) {
        free(in_data[i]);
        free(out_data[i]);
        free(ref_data[i]);
        if (ref[i])
            onnx__tensor_proto__free_unpacked(ref[i], NULL);
    }
    return result;
}

static void run_case(const char *dir, case_result_t *r)
{
    char path[1024];
    test_case_t tc = {.dir = dir};
    make_path(path, sizeof path, "%s/model.onnx", dir);
    void *bytes;
    size_t len;
    if (hqi_read_file(path, (size_t)1 << 28, &bytes, &len, NULL) != HQ_OK) {
        set_result(r, CASE_UNSUPPORTED, "no model.onnx");
        return;
    }
    tc.model = onnx__model_proto__unpack(NULL, len, bytes);
    free(bytes);
    if (!tc.model || !tc.model->graph) {
        set_result(r, CASE_FAILED, "model.onnx does not decode");
        goto done;
    }
    Onnx__GraphProto *g = tc.model->graph;
    for (size_t i = 0; i < g->n_input; i++) {
        if (is_initializer(g, g->input[i]->name))
            continue;
        if (tc.input_count == MAX_IO) {
            set_result(r, CASE_UNSUPPORTED, "more than %d inputs", MAX_IO);
            goto done;
        }
        tc.input_names[tc.input_count] = g->input[i]->name;
        make_path(path, sizeof path, "%s/test_data_set_0/input_%zu.pb", dir, tc.input_count);
        tc.set0[tc.input_count] = read_tensor(path);
        if (!tc.set0[tc.input_count]) {
            set_result(r, CASE_UNSUPPORTED, "no readable %s", path);
            goto done;
        }
        tc.input_count++;
    }

    /* attempt 0: float 2-D/4-D inputs stay data; attempt 1: only the first input is data */
    bool constant[2][MAX_IO];
    for (size_t k = 0; k < tc.input_count; k++) {
        const Onnx__TensorProto *t = tc.set0[k];
        constant[0][k] = !is_float_type(t->data_type) || t->n_dims < 2 || t->n_dims > 4;
        constant[1][k] = k > 0;
    }
    const char *name = strrchr(dir, '/') + 1;
    hq_archive_t *a = NULL;
    hq_error_t err = {0};
    char first_error[sizeof err.message] = "";
    int used = -1;
    for (int attempt = 0; attempt < 2 && used < 0; attempt++) {
        if (attempt == 1 && memcmp(constant[0], constant[1], tc.input_count * sizeof(bool)) == 0)
            break;
        size_t packed_len;
        uint8_t *packed = pack_with_constants(&tc, constant[attempt], &packed_len);
        hq_status_t st = hq_parse_onnx_memory(packed, packed_len, name, NULL, &a, &err);
        free(packed);
        if (st == HQ_OK)
            used = attempt;
        else if (attempt == 0)
            snprintf(first_error, sizeof first_error, "%s", err.message);
    }
    if (used < 0) {
        /* the error of the first attempt says what the op needs as data; when the second one
         * got further (a different error) it is the more precise one */
        set_result(r, CASE_UNSUPPORTED, "%s", short_reason(err.message, name));
        goto done;
    }
    hq_graph_t *graph = NULL;
    hq_emulator_t *emu = NULL;
    if (hq_archive_graph(a, &graph, &err) != HQ_OK ||
        hq_emulator_create_from_archive(a, HQ_TARGET_NATIVE, &emu, &err) != HQ_OK) {
        set_result(r, CASE_FAILED, "emulator refuses the parsed model: %s", err.message);
        hq_archive_destroy(a);
        goto done;
    }
    set_result(r, CASE_PASSED, "");
    /* every test_data_set_<k> */
    for (int s = 0; r->outcome == CASE_PASSED; s++) {
        make_path(path, sizeof path, "%s/test_data_set_%d", dir, s);
        DIR *d = opendir(path);
        if (!d) {
            if (s == 0)
                set_result(r, CASE_UNSUPPORTED, "no test_data_set_0");
            break;
        }
        closedir(d);
        run_data_set(&tc, constant[used], emu, graph, path, r);
    }
    hq_emulator_destroy(emu);
    hq_archive_destroy(a);
done:
    for (size_t k = 0; k < tc.input_count; k++)
        onnx__tensor_proto__free_unpacked(tc.set0[k], NULL);
    if (tc.model)
        onnx__model_proto__free_unpacked(tc.model, NULL);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted sub-folder names of `dir`; NULL when it does not exist. Caller frees all. */
static char **list_dir(const char *dir, int *count)
{
    DIR *d = opendir(dir);
    *count = 0;
    if (!d)
        return NULL;
    int cap = 64;
    char **names = malloc((size_t)cap * sizeof *names);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (*count == cap)
            names = realloc(names, (size_t)(cap *= 2) * sizeof *names);
        names[(*count)++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)*count, sizeof *names, compare_names);
    return names;
}

static void every_libonnx_test_case_passes_or_is_listed_as_unsupported(void **state)
{
    (void)state;
    static const char *const suites[] = {"node", "pytorch-converted", "pytorch-operator"};
    case_result_t *results = NULL;
    int n = 0, cap = 0;
    for (size_t s = 0; s < sizeof suites / sizeof suites[0]; s++) {
        char dir[512];
        make_path(dir, sizeof dir, DATA_ROOT "%s", suites[s]);
        int count;
        char **names = list_dir(dir, &count);
        for (int i = 0; i < count; i++) {
            if (n == cap)
                results = realloc(results, (size_t)(cap = cap ? 2 * cap : 1024) * sizeof *results);
            case_result_t *r = &results[n++];
            memset(r, 0, sizeof *r);
            snprintf(r->name, sizeof r->name, "%s/%s", suites[s], names[i]);
            char case_dir[1024];
            make_path(case_dir, sizeof case_dir, "%s/%s", dir, names[i]);
            run_case(case_dir, r);
            free(names[i]);
        }
        free(names);
    }
    if (n == 0) {
        printf("libonnx-testdata is not installed (" DATA_ROOT "): conformance sweep skipped\n");
        skip();
    }

    int counts[3] = {0};
    for (int i = 0; i < n; i++) {
        counts[results[i].outcome]++;
        printf("%-11s %-70s %s\n", outcome_names[results[i].outcome], results[i].name,
               results[i].reason);
    }

    /* the expected list: every case listed there must still pass */
    int regressions = 0, listed = 0;
    FILE *f = fopen(HQ_FIXTURES "/onnx/conformance_expected.txt", "r");
    assert_non_null(f);
    char line[512];
    bool *is_listed = calloc((size_t)n + 1, sizeof *is_listed);
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#')
            continue;
        listed++;
        int i = 0;
        while (i < n && strcmp(results[i].name, line) != 0)
            i++;
        if (i == n) {
            printf("REGRESSION  %s: listed in conformance_expected.txt but not found\n", line);
            regressions++;
        } else {
            is_listed[i] = true;
            if (results[i].outcome != CASE_PASSED) {
                printf("REGRESSION  %s: listed in conformance_expected.txt but %s: %s\n", line,
                       outcome_names[results[i].outcome], results[i].reason);
                regressions++;
            }
        }
    }
    fclose(f);
    int fresh = 0;
    for (int i = 0; i < n; i++)
        if (results[i].outcome == CASE_PASSED && !is_listed[i]) {
            printf(
                "new         %s passes; add it to tests/fixtures/onnx/conformance_expected.txt\n",
                results[i].name);
            fresh++;
        }
    const char *write_path = getenv("HQ_CONFORMANCE_WRITE");
    if (write_path) {
        FILE *w = fopen(write_path, "w");
        assert_non_null(w);
        fprintf(w, "# libonnx-testdata cases that pass hq parse + native emulation "
                   "(tests/unit/test_onnx_conformance.c).\n"
                   "# Written with HQ_CONFORMANCE_WRITE=<this file>; a listed case that stops "
                   "passing fails the test.\n");
        for (int i = 0; i < n; i++)
            if (results[i].outcome == CASE_PASSED)
                fprintf(w, "%s\n", results[i].name);
        fclose(w);
    }
    printf("conformance: %d cases: %d passed, %d failed, %d unsupported; %d listed as expected, "
           "%d regressions, %d new passes\n",
           n, counts[CASE_PASSED], counts[CASE_FAILED], counts[CASE_UNSUPPORTED], listed,
           regressions, fresh);
    free(is_listed);
    free(results);
    assert_int_equal(counts[CASE_FAILED], 0);
    assert_int_equal(regressions, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_libonnx_test_case_passes_or_is_listed_as_unsupported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
