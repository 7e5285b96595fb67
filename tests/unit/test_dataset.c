/* test_dataset.c — hq_dataset over .npy, .npz and image folders: every dtype, byte order and
 * memory order read per sample, name matching, shape checks and their messages, NaN detection,
 * image decoding and bilinear resizing. Inputs are crafted here at test time (npy bytes by hand,
 * zips through the zip writer, images through stb_image_write) in a temporary folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb_image_write.h>

#include "dataset/image.h"
#include "hq/dataset.h"
#include "io/zip.h"
#include "util/util.h"

/* ---- scratch folder ------------------------------------------------------------------------ */

static char scratch[256];

static int make_scratch(void **state)
{
    (void)state;
    snprintf(scratch, sizeof scratch, "/tmp/hq_test_dataset_XXXXXX");
    return mkdtemp(scratch) ? 0 : -1;
}

static void remove_tree(const char *path)
{
    DIR *dir = opendir(path);
    if (!dir)
        return;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char child[512];
        snprintf(child, sizeof child, "%s/%s", path, e->d_name);
        struct stat sb;
        if (lstat(child, &sb) == 0 && S_ISDIR(sb.st_mode))
            remove_tree(child);
        else
            unlink(child);
    }
    closedir(dir);
    rmdir(path);
}

static int drop_scratch(void **state)
{
    (void)state;
    remove_tree(scratch);
    return 0;
}

static const char *scratch_path(const char *name)
{
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", scratch, name);
    return p;
}

static void write_bytes(const char *path, const void *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len)
        assert_int_equal(fwrite(bytes, 1, len, f), len);
    fclose(f);
}

/* ---- hand-made .npy ------------------------------------------------------------------------ */

/* A version 1.0 .npy in memory (caller frees). */
static uint8_t *npy_bytes(const char *descr, bool fortran, const int64_t *shape, int ndim,
                          const void *data, size_t data_len, size_t *len)
{
    char dict[256];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': %s, 'shape': (", descr,
                     fortran ? "True" : "False");
    for (int i = 0; i < ndim; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld%s", (long long)shape[i],
                      ndim == 1      ? ","
                      : i + 1 < ndim ? ", "
                                     : "");
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    size_t header = 10 + (size_t)n + 1;
    size_t padded = (header + 63) / 64 * 64;
    *len = padded + data_len;
    uint8_t *b = malloc(*len);
    assert_non_null(b);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (uint8_t)((padded - 10) & 0xff);
    b[9] = (uint8_t)((padded - 10) >> 8);
    memcpy(b + 10, dict, (size_t)n);
    memset(b + 10 + n, ' ', padded - 10 - (size_t)n);
    b[padded - 1] = '\n';
    if (data_len)
        memcpy(b + padded, data, data_len);
    return b;
}

static void write_npy(const char *path, const char *descr, bool fortran, const int64_t *shape,
                      int ndim, const void *data, size_t data_len)
{
    size_t len;
    uint8_t *b = npy_bytes(descr, fortran, shape, ndim, data, data_len, &len);
    write_bytes(path, b, len);
    free(b);
}

/* Members: key, npy bytes, deflate flag. */
typedef struct npz_member {
    const char *key;
    uint8_t *npy;
    size_t len;
    bool deflate;
} npz_member_t;

static void write_npz(const char *path, npz_member_t *members, int count)
{
    hqi_zip_writer_t *w = NULL;
    assert_int_equal(hqi_zip_writer_create(&w, NULL), HQ_OK);
    for (int i = 0; i < count; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s.npy", members[i].key);
        assert_int_equal(
            hqi_zip_writer_add(w, name, members[i].npy, members[i].len, members[i].deflate, NULL),
            HQ_OK);
        free(members[i].npy);
    }
    void *bytes = NULL;
    size_t len = 0;
    assert_int_equal(hqi_zip_writer_finish(w, &bytes, &len, NULL), HQ_OK);
    write_bytes(path, bytes, len);
    free(bytes);
}

/* ---- graphs ------------------------------------------------------------------------------- */

/* A graph "net" with one input layer per entry (each feeding its own output layer). */
static hq_graph_t *make_graph(int count, const char *const *names, const hq_shape_t *shapes,
                              const char *const *original_names)
{
    hq_graph_t *g = NULL;
    hq_error_t err;
    assert_int_equal(hq_graph_create("net", &g, &err), HQ_OK);
    for (int i = 0; i < count; i++) {
        int in = -1, out = -1;
        char out_name[64];
        snprintf(out_name, sizeof out_name, "output_layer%d", i + 1);
        assert_int_equal(hq_graph_add_layer(g, names[i], HQ_LAYER_INPUT, &in, &err), HQ_OK);
        assert_int_equal(hq_layer_set_output_shape(g, in, &shapes[i], &err), HQ_OK);
        if (original_names && original_names[i])
            assert_int_equal(hq_layer_add_original_name(g, in, original_names[i], &err), HQ_OK);
        assert_int_equal(hq_graph_add_layer(g, out_name, HQ_LAYER_OUTPUT, &out, &err), HQ_OK);
        assert_int_equal(hq_graph_connect(g, in, 0, out, &err), HQ_OK);
    }
    if (hq_graph_finalize(g, "test.hn", &err) != HQ_OK)
        fail_msg("finalize: %s", err.message);
    return g;
}

static hq_shape_t shape4(int64_t h, int64_t w, int64_t c)
{
    hq_shape_t s = {4, {-1, h, w, c}};
    return s;
}

static hq_graph_t *one_input_graph(int64_t h, int64_t w, int64_t c)
{
    const char *names[] = {"input_layer1"};
    hq_shape_t shapes[] = {shape4(h, w, c)};
    return make_graph(1, names, shapes, NULL);
}

static hq_dataset_t *open_ok(const char *path, const hq_graph_t *graph)
{
    hq_dataset_t *ds = NULL;
    hq_error_t err;
    memset(&err, 0, sizeof err);
    if (hq_dataset_open(path, graph, &ds, &err) != HQ_OK)
        fail_msg("open %s: %s", path, err.message);
    return ds;
}

/* Opens `path` expecting `status`; the message is left in *err. */
static void open_fails(const char *path, const hq_graph_t *graph, hq_status_t status,
                       hq_error_t *err)
{
    hq_dataset_t *ds = (hq_dataset_t *)&ds;
    memset(err, 0, sizeof *err);
    assert_int_equal(hq_dataset_open(path, graph, &ds, err), status);
    assert_null(ds);
    assert_int_equal(err->status, status);
}

static void read_ok(hq_dataset_t *ds, int input, int64_t first, int64_t count, float *out)
{
    hq_error_t err;
    if (hq_dataset_read(ds, input, first, count, out, &err) != HQ_OK)
        fail_msg("read: %s", err.message);
}

/* ---- .npy --------------------------------------------------------------------------------- */

static void reads_float32_npy_without_graph(void **state)
{
    (void)state;
    float data[2 * 2 * 2 * 3];
    for (int i = 0; i < 24; i++)
        data[i] = (float)i * 0.5f - 3.0f;
    int64_t shape[] = {2, 2, 2, 3};
    const char *path = scratch_path("plain.npy");
    write_npy(path, "<f4", false, shape, 4, data, sizeof data);
    hq_dataset_t *ds = open_ok(path, NULL);
    assert_int_equal(hq_dataset_count(ds), 2);
    assert_int_equal(hq_dataset_input_count(ds), 1);
    assert_int_equal(hq_dataset_input_layer(ds, 0), -1);
    assert_int_equal(hq_dataset_input_dtype(ds, 0), HQ_DTYPE_FLOAT32);
    hq_shape_t s = hq_dataset_input_shape(ds, 0);
    assert_int_equal(s.ndim, 3);
    assert_int_equal(s.dims[0], 2);
    assert_int_equal(s.dims[1], 2);
    assert_int_equal(s.dims[2], 3);
    float out[12];
    read_ok(ds, 0, 1, 1, out);
    assert_memory_equal(out, data + 12, sizeof out);
    float all[24];
    read_ok(ds, 0, 0, 2, all);
    assert_memory_equal(all, data, sizeof all);
    hq_dataset_destroy(ds);
}

static void reads_vector_samples_n_by_c(void **state)
{
    (void)state;
    float data[] = {1, 2, 3, 4, 5, 6};
    int64_t shape[] = {3, 2};
    const char *path = scratch_path("vec.npy");
    write_npy(path, "<f4", false, shape, 2, data, sizeof data);
    const char *names[] = {"in"};
    hq_shape_t shapes[] = {{2, {-1, 2}}};
    hq_graph_t *g = make_graph(1, names, shapes, NULL);
    hq_dataset_t *ds = open_ok(path, g);
    assert_int_equal(hq_dataset_input_shape(ds, 0).ndim, 1);
    float out[2];
    read_ok(ds, 0, 2, 1, out);
    assert_true(out[0] == 5.0f && out[1] == 6.0f);
    hq_dataset_destroy(ds);
    hq_graph_destroy(g);
}

/* Sample values 0..7 and -1..-4 in each dtype, three samples of shape (2, 2, 1). */
typedef struct dtype_case {
    const char *descr;
    hq_dtype_t dtype;
    size_t size;
    bool is_signed;
    bool is_float;
} dtype_case_t;

static const dtype_case_t dtype_cases[] = {
    {"<f4", HQ_DTYPE_FLOAT32, 4, true, true},  {">f4", HQ_DTYPE_FLOAT32, 4, true, true},
    {"<f8", HQ_DTYPE_FLOAT64, 8, true, true},  {">f8", HQ_DTYPE_FLOAT64, 8, true, true},
    {"<f2", HQ_DTYPE_FLOAT16, 2, true, true},  {">f2", HQ_DTYPE_FLOAT16, 2, true, true},
    {"|u1", HQ_DTYPE_UINT8, 1, false, false},  {"|i1", HQ_DTYPE_INT8, 1, true, false},
    {"<u2", HQ_DTYPE_UINT16, 2, false, false}, {">u2", HQ_DTYPE_UINT16, 2, false, false},
    {"<i2", HQ_DTYPE_INT16, 2, true, false},   {">i2", HQ_DTYPE_INT16, 2, true, false},
    {"<i4", HQ_DTYPE_INT32, 4, true, false},   {">i4", HQ_DTYPE_INT32, 4, true, false},
    {"<i8", HQ_DTYPE_INT64, 8, true, false},   {">i8", HQ_DTYPE_INT64, 8, true, false},
};

static float case_value(const dtype_case_t *c, int i)
{
    /* distinct per element; negative for signed types; 300+ for 16-bit and wider */
    float v = (float)(i % 7) + (c->size >= 2 ? 300.0f : 0.0f);
    if (c->is_signed && (i % 3) == 1)
        v = -v;
    if (c->is_float)
        v += 0.5f;
    return v;
}

/* Stores `v` in dtype `c` at `p` in the descr's byte order. */
static void store_value(const dtype_case_t *c, uint8_t *p, float v)
{
    uint64_t bits = 0;
    switch (c->dtype) {
    case HQ_DTYPE_FLOAT32: {
        uint32_t u;
        memcpy(&u, &v, 4);
        bits = u;
        break;
    }
    case HQ_DTYPE_FLOAT64: {
        double d = v;
        memcpy(&bits, &d, 8);
        break;
    }
    case HQ_DTYPE_FLOAT16:
        bits = hqi_float_to_half(v);
        break;
    case HQ_DTYPE_UINT8:
    case HQ_DTYPE_UINT16:
        bits = (uint64_t)v;
        break;
    default:
        bits = (uint64_t)(int64_t)v;
        break;
    }
    bool be = c->descr[0] == '>';
    for (size_t b = 0; b < c->size; b++) {
        size_t shift = 8 * (be ? c->size - 1 - b : b);
        p[b] = (uint8_t)(bits >> shift);
    }
}

static void reads_every_dtype_in_both_byte_orders(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof dtype_cases / sizeof dtype_cases[0]; k++) {
        const dtype_case_t *c = &dtype_cases[k];
        uint8_t data[12 * 8];
        for (int i = 0; i < 12; i++)
            store_value(c, data + (size_t)i * c->size, case_value(c, i));
        int64_t shape[] = {3, 2, 2, 1};
        const char *path = scratch_path("dtype.npy");
        write_npy(path, c->descr, false, shape, 4, data, 12 * c->size);
        hq_dataset_t *ds = open_ok(path, NULL);
        assert_int_equal(hq_dataset_input_dtype(ds, 0), c->dtype);
        float out[8];
        read_ok(ds, 0, 1, 2, out);
        for (int i = 0; i < 8; i++) {
            if (out[i] != case_value(c, i + 4))
                fail_msg("%s: element %d is %g, expected %g", c->descr, i + 4, out[i],
                         case_value(c, i + 4));
        }
        hq_dataset_destroy(ds);
    }
}

static void reads_bool_as_zero_and_one(void **state)
{
    (void)state;
    uint8_t data[] = {0, 1, 1, 0};
    int64_t shape[] = {2, 2};
    const char *path = scratch_path("bool.npy");
    write_npy(path, "|b1", false, shape, 2, data, sizeof data);
    hq_dataset_t *ds = open_ok(path, NULL);
    float out[4];
    read_ok(ds, 0, 0, 2, out);
    assert_true(out[0] == 0.0f && out[1] == 1.0f && out[2] == 1.0f && out[3] == 0.0f);
    hq_dataset_destroy(ds);
}

/* Value of element (n, h, w, c) of the Fortran-order fixtures: all distinct. */
static int fortran_value(int n, int h, int w, int c)
{
    return 1000 * n + 100 * h + 10 * w + c;
}

/* Fortran layout of a (N, H, W, C) array: (n, h, w, c) at n + N*(h + H*(w + W*c)). */
static void fill_fortran(const dtype_case_t *c, uint8_t *data, int N, int H, int W, int C)
{
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++)
            for (int w = 0; w < W; w++)
                for (int ch = 0; ch < C; ch++) {
                    size_t at = (size_t)(n + N * (h + H * (w + W * ch)));
                    store_value(c, data + at * c->size, (float)fortran_value(n, h, w, ch));
                }
}

static void check_c_order_sample(const float *out, int n, int H, int W, int C)
{
    for (int h = 0; h < H; h++)
        for (int w = 0; w < W; w++)
            for (int ch = 0; ch < C; ch++) {
                float got = out[(h * W + w) * C + ch];
                if (got != (float)fortran_value(n, h, w, ch))
                    fail_msg("sample %d (%d, %d, %d) is %g, expected %d", n, h, w, ch, got,
                             fortran_value(n, h, w, ch));
            }
}

static void reads_fortran_order_float32_per_sample(void **state)
{
    (void)state;
    enum { N = 3, H = 2, W = 4, C = 3 };
    const dtype_case_t c = {"<f4", HQ_DTYPE_FLOAT32, 4, true, true};
    uint8_t data[N * H * W * C * 4];
    fill_fortran(&c, data, N, H, W, C);
    int64_t shape[] = {N, H, W, C};
    const char *path = scratch_path("fortran.npy");
    write_npy(path, "<f4", true, shape, 4, data, sizeof data);
    hq_dataset_t *ds = open_ok(path, NULL);
    float out[2 * H * W * C];
    read_ok(ds, 0, 1, 2, out);
    check_c_order_sample(out, 1, H, W, C);
    check_c_order_sample(out + H * W * C, 2, H, W, C);
    read_ok(ds, 0, 0, 1, out);
    check_c_order_sample(out, 0, H, W, C);
    hq_dataset_destroy(ds);
}

static void reads_fortran_order_big_endian_int16(void **state)
{
    (void)state;
    enum { N = 4, H = 3, W = 2, C = 2 };
    const dtype_case_t c = {">i2", HQ_DTYPE_INT16, 2, true, false};
    uint8_t data[N * H * W * C * 2];
    fill_fortran(&c, data, N, H, W, C);
    int64_t shape[] = {N, H, W, C};
    const char *path = scratch_path("fortran_be.npy");
    write_npy(path, ">i2", true, shape, 4, data, sizeof data);
    hq_dataset_t *ds = open_ok(path, NULL);
    float out[H * W * C];
    for (int n = 0; n < N; n++) {
        read_ok(ds, 0, n, 1, out);
        check_c_order_sample(out, n, H, W, C);
    }
    hq_dataset_destroy(ds);
}

static void checks_per_sample_shape_against_the_input_layer(void **state)
{
    (void)state;
    float data[2 * 4 * 4 * 3] = {0};
    int64_t shape[] = {2, 4, 4, 3};
    const char *path = scratch_path("calib.npy");
    write_npy(path, "<f4", false, shape, 4, data, sizeof data);
    hq_graph_t *good = one_input_graph(4, 4, 3);
    hq_dataset_t *ds = open_ok(path, good);
    assert_int_equal(hq_dataset_input_layer(ds, 0), hq_graph_find(good, "input_layer1"));
    hq_dataset_destroy(ds);

    hq_graph_t *bad = one_input_graph(32, 32, 3);
    hq_error_t err;
    open_fails(path, bad, HQ_ERR_INVALID, &err);
    char want[512];
    snprintf(want, sizeof want,
             "%s: shape (2, 4, 4, 3) does not match input layer 'net/input_layer1' (-1, 32, 32, 3)",
             path);
    assert_string_equal(err.message, want);
    hq_graph_destroy(good);
    hq_graph_destroy(bad);
}

static void hints_nchw_when_channels_come_first(void **state)
{
    (void)state;
    float data[2 * 3 * 8 * 6] = {0};
    int64_t shape[] = {2, 3, 8, 6};
    const char *path = scratch_path("nchw.npy");
    write_npy(path, "<f4", false, shape, 4, data, sizeof data);
    hq_graph_t *g = one_input_graph(8, 6, 3);
    hq_error_t err;
    open_fails(path, g, HQ_ERR_INVALID, &err);
    assert_non_null(strstr(err.message, "shape (2, 3, 8, 6) does not match"));
    assert_non_null(strstr(err.message, "looks like NCHW: transpose to NHWC"));

    /* A plain size mismatch gets no layout hint. */
    hq_graph_t *other = one_input_graph(8, 5, 3);
    open_fails(path, other, HQ_ERR_INVALID, &err);
    assert_null(strstr(err.message, "NCHW"));
    hq_graph_destroy(g);
    hq_graph_destroy(other);
}

static void refuses_npy_for_a_graph_with_two_inputs(void **state)
{
    (void)state;
    float data[4] = {0};
    int64_t shape[] = {1, 1, 1, 4};
    const char *path = scratch_path("one.npy");
    write_npy(path, "<f4", false, shape, 4, data, sizeof data);
    const char *names[] = {"a", "b"};
    hq_shape_t shapes[] = {shape4(1, 1, 4), shape4(1, 1, 4)};
    hq_graph_t *g = make_graph(2, names, shapes, NULL);
    hq_error_t err;
    open_fails(path, g, HQ_ERR_INVALID, &err);
    assert_non_null(strstr(err.message, "2 inputs"));
    hq_graph_destroy(g);
}

static void refuses_nan_and_infinity_naming_file_and_sample(void **state)
{
    (void)state;
    float data[4 * 3] = {0};
    data[2 * 3 + 1] = NAN;      /* sample 2, channel 1 */
    data[3 * 3 + 0] = INFINITY; /* sample 3, channel 0 */
    int64_t shape[] = {4, 3};
    const char *path = scratch_path("nan.npy");
    write_npy(path, "<f4", false, shape, 2, data, sizeof data);
    hq_dataset_t *ds = open_ok(path, NULL);
    float out[4 * 3];
    read_ok(ds, 0, 0, 2, out); /* samples 0 and 1 are clean */
    hq_error_t err;
    assert_int_equal(hq_dataset_read(ds, 0, 1, 2, out, &err), HQ_ERR_INVALID);
    char want[512];
    snprintf(want, sizeof want, "%s: sample 2: value at (1,) is NaN", path);
    assert_string_equal(err.message, want);
    assert_int_equal(hq_dataset_read(ds, 0, 3, 1, out, &err), HQ_ERR_INVALID);
    assert_non_null(strstr(err.message, "sample 3"));
    assert_non_null(strstr(err.message, "infinite"));
    hq_dataset_destroy(ds);
}

static void refuses_float64_beyond_float32_range(void **state)
{
    (void)state;
    double data[2] = {1.0, 1e300};
    int64_t shape[] = {2, 1};
    const char *path = scratch_path("big.npy");
    write_npy(path, "<f8", false, shape, 2, data, sizeof data);
    hq_dataset_t *ds = open_ok(path, NULL);
    float out[2];
    read_ok(ds, 0, 0, 1, out);
    hq_error_t err;
    assert_int_equal(hq_dataset_read(ds, 0, 1, 1, out, &err), HQ_ERR_INVALID);
    assert_non_null(strstr(err.message, "sample 1"));
    hq_dataset_destroy(ds);
}

static void checks_the_requested_range(void **state)
{
    (void)state;
    float data[3 * 2] = {0};
    int64_t shape[] = {3, 2};
    const char *path = scratch_path("range.npy");
    write_npy(path, "<f4", false, shape, 2, data, sizeof data);
    hq_dataset_t *ds = open_ok(path, NULL);
    float out[8];
    hq_error_t err;
    assert_int_equal(hq_dataset_read(ds, 0, 2, 2, out, &err), HQ_ERR_ARGUMENT);
    assert_int_equal(hq_dataset_read(ds, 0, -1, 1, out, &err), HQ_ERR_ARGUMENT);
    assert_int_equal(hq_dataset_read(ds, 0, 0, -1, out, &err), HQ_ERR_ARGUMENT);
    assert_int_equal(hq_dataset_read(ds, 0, 1, INT64_MAX, out, &err), HQ_ERR_ARGUMENT);
    assert_int_equal(hq_dataset_read(ds, 1, 0, 1, out, &err), HQ_ERR_ARGUMENT);
    assert_int_equal(hq_dataset_read(ds, 0, 3, 0, out, &err), HQ_OK);
    assert_int_equal(hq_dataset_read(ds, 0, 1, 2, out, &err), HQ_OK);
    hq_dataset_destroy(ds);
}

static void refuses_an_empty_dataset(void **state)
{
    (void)state;
    int64_t shape[] = {0, 4, 4, 3};
    const char *path = scratch_path("empty.npy");
    write_npy(path, "<f4", false, shape, 4, NULL, 0);
    hq_error_t err;
    open_fails(path, NULL, HQ_ERR_INVALID, &err);
    assert_non_null(strstr(err.message, "empty"));
    assert_non_null(strstr(err.message, path));
}

static void refuses_truncated_data_at_open(void **state)
{
    (void)state;
    float data[2 * 3] = {0};
    int64_t shape[] = {3, 3}; /* promises 9 floats, holds 6 */
    const char *path = scratch_path("short.npy");
    write_npy(path, "<f4", false, shape, 2, data, sizeof data);
    hq_error_t err;
    open_fails(path, NULL, HQ_ERR_FORMAT, &err);
    assert_non_null(strstr(err.message, "truncated"));
    /* the same header with all its data opens */
    int64_t fits[] = {2, 3};
    write_npy(path, "<f4", false, fits, 2, data, sizeof data);
    hq_dataset_destroy(open_ok(path, NULL));
}

static void refuses_complex_and_object_dtypes_from_the_header(void **state)
{
    (void)state;
    uint8_t data[64] = {0};
    int64_t shape[] = {2, 2};
    const char *path = scratch_path("complex.npy");
    write_npy(path, "<c8", false, shape, 2, data, 32);
    hq_error_t err;
    open_fails(path, NULL, HQ_ERR_UNSUPPORTED, &err);
    assert_non_null(strstr(err.message, "descr"));
    write_npy(path, "|O", false, shape, 2, data, 32);
    open_fails(path, NULL, HQ_ERR_UNSUPPORTED, &err);
    assert_non_null(strstr(err.message, "descr"));
}

static void refuses_files_that_are_neither_npy_nor_npz(void **state)
{
    (void)state;
    const char *path = scratch_path("text.npy");
    write_bytes(path, "hello world", 11);
    hq_error_t err;
    open_fails(path, NULL, HQ_ERR_FORMAT, &err);
    write_bytes(path, "", 0);
    open_fails(path, NULL, HQ_ERR_FORMAT, &err);
    open_fails(scratch_path("missing.npy"), NULL, HQ_ERR_NOT_FOUND, &err);
    int64_t shape[] = {4};
    float data[4] = {0};
    write_npy(path, "<f4", false, shape, 1, data, sizeof data);
    open_fails(path, NULL, HQ_ERR_INVALID, &err); /* no per-sample axis */
}

/* ---- .npz --------------------------------------------------------------------------------- */

static uint8_t *float_npy(int64_t n, int64_t c, float base, size_t *len)
{
    float data[64];
    assert_true(n * c <= 64);
    for (int64_t i = 0; i < n * c; i++)
        data[i] = base + (float)i;
    int64_t shape[] = {n, 1, 1, c};
    return npy_bytes("<f4", false, shape, 4, data, (size_t)(n * c) * sizeof(float), len);
}

static void npz_matches_scoped_bare_and_original_names(void **state)
{
    (void)state;
    const char *names[] = {"input_layer1"};
    hq_shape_t shapes[] = {shape4(1, 1, 2)};
    const char *originals[] = {"images"};
    hq_graph_t *g = make_graph(1, names, shapes, originals);
    const char *keys[] = {"net/input_layer1", "input_layer1", "images"};
    for (int k = 0; k < 3; k++) {
        const char *path = scratch_path("named.npz");
        npz_member_t m = {keys[k], NULL, 0, false};
        m.npy = float_npy(3, 2, 10.0f * (float)k, &m.len);
        write_npz(path, &m, 1);
        hq_dataset_t *ds = open_ok(path, g);
        assert_int_equal(hq_dataset_count(ds), 3);
        assert_int_equal(hq_dataset_input_layer(ds, 0), hq_graph_find(g, "input_layer1"));
        float out[2];
        read_ok(ds, 0, 2, 1, out);
        assert_true(out[0] == 10.0f * (float)k + 4.0f && out[1] == 10.0f * (float)k + 5.0f);
        hq_dataset_destroy(ds);
    }
    hq_graph_destroy(g);
}

static void npz_feeds_several_inputs_stored_and_deflated(void **state)
{
    (void)state;
    const char *names[] = {"left", "right"};
    hq_shape_t shapes[] = {shape4(1, 1, 2), shape4(1, 1, 3)};
    hq_graph_t *g = make_graph(2, names, shapes, NULL);
    const char *path = scratch_path("multi.npz");
    /* archive order differs from input order; an extra key ("labels") is ignored */
    npz_member_t m[3] = {
        {"right", NULL, 0, true}, {"labels", NULL, 0, false}, {"net/left", NULL, 0, false}};
    m[0].npy = float_npy(4, 3, 100.0f, &m[0].len);
    m[1].npy = float_npy(4, 1, 0.0f, &m[1].len);
    m[2].npy = float_npy(4, 2, 0.0f, &m[2].len);
    write_npz(path, m, 3);
    hq_dataset_t *ds = open_ok(path, g);
    assert_int_equal(hq_dataset_input_count(ds), 2);
    assert_int_equal(hq_dataset_count(ds), 4);
    assert_int_equal(hq_dataset_input_layer(ds, 0), hq_graph_find(g, "left"));
    assert_int_equal(hq_dataset_input_layer(ds, 1), hq_graph_find(g, "right"));
    assert_int_equal(hq_dataset_input_shape(ds, 1).dims[2], 3);
    float left[2], right[6];
    read_ok(ds, 0, 3, 1, left);
    assert_true(left[0] == 6.0f && left[1] == 7.0f);
    /* deflated: forward, then backwards (the stream is reopened) */
    read_ok(ds, 1, 2, 2, right);
    for (int i = 0; i < 6; i++)
        assert_true(right[i] == 106.0f + (float)i);
    read_ok(ds, 1, 0, 1, right);
    assert_true(right[0] == 100.0f && right[1] == 101.0f && right[2] == 102.0f);
    read_ok(ds, 1, 1, 1, right);
    assert_true(right[0] == 103.0f && right[2] == 105.0f);
    hq_dataset_destroy(ds);
    hq_graph_destroy(g);
}

static void npz_reads_deflated_fortran_big_endian_members(void **state)
{
    (void)state;
    enum { N = 3, H = 2, W = 3, C = 2 };
    const dtype_case_t c = {">f8", HQ_DTYPE_FLOAT64, 8, true, true};
    uint8_t data[N * H * W * C * 8];
    fill_fortran(&c, data, N, H, W, C);
    int64_t shape[] = {N, H, W, C};
    const char *names[] = {"input_layer1"};
    hq_shape_t shapes[] = {shape4(H, W, C)};
    hq_graph_t *g = make_graph(1, names, shapes, NULL);
    for (int deflate = 0; deflate < 2; deflate++) {
        const char *path = scratch_path("fortran.npz");
        npz_member_t m = {"input_layer1", NULL, 0, deflate != 0};
        m.npy = npy_bytes(">f8", true, shape, 4, data, sizeof data, &m.len);
        write_npz(path, &m, 1);
        hq_dataset_t *ds = open_ok(path, g);
        float out[2 * H * W * C];
        read_ok(ds, 0, 1, 2, out);
        check_c_order_sample(out, 1, H, W, C);
        check_c_order_sample(out + H * W * C, 2, H, W, C);
        /* one sample in the middle: neighbours must not spill past it */
        for (int i = 0; i < 2 * H * W * C; i++)
            out[i] = -7.0f;
        read_ok(ds, 0, 1, 1, out);
        check_c_order_sample(out, 1, H, W, C);
        for (int i = H * W * C; i < 2 * H * W * C; i++)
            assert_true(out[i] == -7.0f);
        read_ok(ds, 0, 0, 1, out);
        check_c_order_sample(out, 0, H, W, C);
        hq_dataset_destroy(ds);
    }
    hq_graph_destroy(g);
}

static void npz_names_the_missing_input_and_the_keys_present(void **state)
{
    (void)state;
    const char *names[] = {"left", "right"};
    hq_shape_t shapes[] = {shape4(1, 1, 2), shape4(1, 1, 2)};
    hq_graph_t *g = make_graph(2, names, shapes, NULL);
    const char *path = scratch_path("missing.npz");
    npz_member_t m[2] = {{"left", NULL, 0, false}, {"rigth", NULL, 0, false}};
    m[0].npy = float_npy(2, 2, 0.0f, &m[0].len);
    m[1].npy = float_npy(2, 2, 0.0f, &m[1].len);
    write_npz(path, m, 2);
    hq_error_t err;
    open_fails(path, g, HQ_ERR_NOT_FOUND, &err);
    char want[512];
    snprintf(want, sizeof want,
             "%s: no array for input layer 'net/right' (keys present: 'left', 'rigth')", path);
    assert_string_equal(err.message, want);
    hq_graph_destroy(g);
}

static void npz_refuses_two_keys_for_one_input(void **state)
{
    (void)state;
    hq_graph_t *g = one_input_graph(1, 1, 2);
    const char *path = scratch_path("twice.npz");
    npz_member_t m[2] = {{"input_layer1", NULL, 0, false}, {"net/input_layer1", NULL, 0, true}};
    m[0].npy = float_npy(2, 2, 0.0f, &m[0].len);
    m[1].npy = float_npy(2, 2, 0.0f, &m[1].len);
    write_npz(path, m, 2);
    hq_error_t err;
    open_fails(path, g, HQ_ERR_INVALID, &err);
    assert_non_null(strstr(err.message, "both match input layer 'net/input_layer1'"));
    hq_graph_destroy(g);
}

static void npz_refuses_inputs_with_different_sample_counts(void **state)
{
    (void)state;
    const char *names[] = {"left", "right"};
    hq_shape_t shapes[] = {shape4(1, 1, 2), shape4(1, 1, 2)};
    hq_graph_t *g = make_graph(2, names, shapes, NULL);
    const char *path = scratch_path("counts.npz");
    npz_member_t m[2] = {{"left", NULL, 0, false}, {"right", NULL, 0, false}};
    m[0].npy = float_npy(2, 2, 0.0f, &m[0].len);
    m[1].npy = float_npy(3, 2, 0.0f, &m[1].len);
    write_npz(path, m, 2);
    hq_error_t err;
    open_fails(path, g, HQ_ERR_INVALID, &err);
    assert_non_null(strstr(err.message, "3 samples"));
    hq_graph_destroy(g);
}

static void npz_checks_member_shapes_and_truncation(void **state)
{
    (void)state;
    hq_graph_t *g = one_input_graph(1, 1, 3);
    const char *path = scratch_path("shape.npz");
    npz_member_t m = {"input_layer1", NULL, 0, true};
    m.npy = float_npy(2, 2, 0.0f, &m.len);
    write_npz(path, &m, 1);
    hq_error_t err;
    open_fails(path, g, HQ_ERR_INVALID, &err);
    assert_non_null(strstr(err.message, "array 'input_layer1': shape (2, 1, 1, 2) does not match"));

    for (int deflate = 0; deflate < 2; deflate++) {
        float data[3] = {0};
        int64_t shape[] = {2, 1, 1, 3}; /* promises 6 floats */
        npz_member_t t = {"input_layer1", NULL, 0, deflate != 0};
        t.npy = npy_bytes("<f4", false, shape, 4, data, sizeof data, &t.len);
        write_npz(path, &t, 1);
        open_fails(path, g, HQ_ERR_FORMAT, &err);
        assert_non_null(strstr(err.message, "truncated"));
    }
    hq_graph_destroy(g);
}

static void npz_and_folders_need_a_graph(void **state)
{
    (void)state;
    const char *path = scratch_path("nograph.npz");
    npz_member_t m = {"x", NULL, 0, false};
    m.npy = float_npy(2, 2, 0.0f, &m.len);
    write_npz(path, &m, 1);
    hq_error_t err;
    open_fails(path, NULL, HQ_ERR_ARGUMENT, &err);
    assert_non_null(strstr(err.message, "graph"));
    open_fails(scratch, NULL, HQ_ERR_ARGUMENT, &err);
    assert_non_null(strstr(err.message, "graph"));
}

/* ---- files numpy wrote (tests/fixtures/dataset/make_fixtures.py) ------------------------ */

static float ramp(int n, int h, int w, int c)
{
    return (float)(16 * n + 8 * h + 4 * w + c);
}

static void check_ramp_sample(const float *out, int n, float sign)
{
    for (int h = 0; h < 2; h++)
        for (int w = 0; w < 2; w++)
            for (int c = 0; c < 4; c++)
                if (out[(h * 2 + w) * 4 + c] != sign * ramp(n, h, w, c))
                    fail_msg("sample %d (%d, %d, %d): %g", n, h, w, c, out[(h * 2 + w) * 4 + c]);
}

static void reads_files_written_by_numpy(void **state)
{
    (void)state;
    float out[16];
    hq_dataset_t *ds = open_ok(HQ_FIXTURES "/dataset/ramp_f2_be_fortran.npy", NULL);
    assert_int_equal(hq_dataset_input_dtype(ds, 0), HQ_DTYPE_FLOAT16);
    read_ok(ds, 0, 2, 1, out);
    check_ramp_sample(out, 2, 1.0f);
    read_ok(ds, 0, 0, 1, out);
    check_ramp_sample(out, 0, 1.0f);
    hq_dataset_destroy(ds);

    const char *names[] = {"input_a", "input_b"};
    hq_shape_t shapes[] = {shape4(2, 2, 4), shape4(2, 2, 4)};
    hq_graph_t *two = make_graph(2, names, shapes, NULL);
    ds = open_ok(HQ_FIXTURES "/dataset/two_inputs_compressed.npz", two);
    assert_int_equal(hq_dataset_count(ds), 3);
    assert_int_equal(hq_dataset_input_dtype(ds, 0), HQ_DTYPE_UINT8);
    assert_int_equal(hq_dataset_input_dtype(ds, 1), HQ_DTYPE_INT32);
    for (int n = 2; n >= 0; n--) {
        read_ok(ds, 0, n, 1, out);
        check_ramp_sample(out, n, 1.0f);
        read_ok(ds, 1, n, 1, out);
        check_ramp_sample(out, n, -1.0f);
    }
    hq_dataset_destroy(ds);
    hq_graph_destroy(two);

    hq_graph_t *one = make_graph(1, names, shapes, NULL);
    ds = open_ok(HQ_FIXTURES "/dataset/one_input_stored.npz", one);
    read_ok(ds, 0, 1, 1, out);
    check_ramp_sample(out, 1, 1.0f);
    hq_dataset_destroy(ds);
    hq_graph_destroy(one);
}

/* ---- images ------------------------------------------------------------------------------- */

static const char *image_dir(const char *name)
{
    const char *dir = scratch_path(name);
    mkdir(dir, 0755);
    return dir;
}

static void write_png(const char *dir, const char *name, int w, int h, int comp,
                      const uint8_t *pixels)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_true(stbi_write_png(path, w, h, comp, pixels, w * comp) != 0);
}

static void resize_keeps_a_constant_colour_constant(void **state)
{
    (void)state;
    const char *dir = image_dir("constant");
    uint8_t pixels[7 * 5 * 3];
    for (int i = 0; i < 7 * 5; i++) {
        pixels[3 * i] = 200;
        pixels[3 * i + 1] = 17;
        pixels[3 * i + 2] = 99;
    }
    write_png(dir, "a.png", 7, 5, 3, pixels);
    char jpg[512];
    snprintf(jpg, sizeof jpg, "%s/b.jpg", dir);
    assert_true(stbi_write_jpg(jpg, 7, 5, 3, pixels, 100) != 0);
    hq_graph_t *g = one_input_graph(3, 4, 3);
    hq_dataset_t *ds = open_ok(dir, g);
    assert_int_equal(hq_dataset_count(ds), 2);
    assert_int_equal(hq_dataset_input_dtype(ds, 0), HQ_DTYPE_FLOAT32);
    float out[2 * 3 * 4 * 3];
    read_ok(ds, 0, 0, 2, out);
    for (int i = 0; i < 3 * 4; i++) {
        assert_true(out[3 * i] == 200.0f && out[3 * i + 1] == 17.0f && out[3 * i + 2] == 99.0f);
        const float *j = out + 36 + 3 * i; /* JPEG: lossy, close */
        assert_true(fabsf(j[0] - 200.0f) <= 3.0f && fabsf(j[1] - 17.0f) <= 3.0f &&
                    fabsf(j[2] - 99.0f) <= 3.0f);
    }
    hq_dataset_destroy(ds);
    hq_graph_destroy(g);
}

static void resize_of_a_gradient_matches_hand_computed_values(void **state)
{
    (void)state;
    /* 4x4 grey ramp p(y, x) = 10x + 50y shrunk to 2x2: half-pixel centres sample the source at
     * 0.5 and 2.5 on both axes, where bilinear interpolation of a linear ramp is exact. */
    const char *dir = image_dir("gradient");
    uint8_t ramp[16];
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            ramp[y * 4 + x] = (uint8_t)(10 * x + 50 * y);
    write_png(dir, "ramp.png", 4, 4, 1, ramp);
    hq_graph_t *g = one_input_graph(2, 2, 1);
    hq_dataset_t *ds = open_ok(dir, g);
    float out[4];
    read_ok(ds, 0, 0, 1, out);
    assert_true(out[0] == 30.0f && out[1] == 50.0f && out[2] == 130.0f && out[3] == 150.0f);
    hq_dataset_destroy(ds);
    hq_graph_destroy(g);

    /* Enlarging 1x2 -> 1x4: source x = (x + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25; the ends
     * clamp to the edge pixels. */
    uint8_t two[2] = {0, 100};
    float wide[4];
    hqi_image_resize_bilinear(two, 1, 2, 1, wide, 1, 4);
    assert_true(wide[0] == 0.0f && wide[1] == 25.0f && wide[2] == 75.0f && wide[3] == 100.0f);
}

static void converts_grey_and_alpha_to_the_input_channels(void **state)
{
    (void)state;
    const char *dir = image_dir("channels");
    uint8_t grey[4] = {10, 20, 30, 40};
    write_png(dir, "1grey.png", 2, 2, 1, grey);
    uint8_t rgba[2 * 2 * 4];
    for (int i = 0; i < 4; i++) {
        rgba[4 * i] = 255;
        rgba[4 * i + 1] = 0;
        rgba[4 * i + 2] = 0;
        rgba[4 * i + 3] = (uint8_t)(i * 60); /* alpha dropped, not composited */
    }
    write_png(dir, "2rgba.png", 2, 2, 4, rgba);
    hq_graph_t *rgb = one_input_graph(2, 2, 3);
    hq_dataset_t *ds = open_ok(dir, rgb);
    float out[2 * 12];
    read_ok(ds, 0, 0, 2, out);
    for (int i = 0; i < 4; i++) {
        assert_true(out[3 * i] == grey[i] && out[3 * i + 1] == grey[i] &&
                    out[3 * i + 2] == grey[i]);
        assert_true(out[12 + 3 * i] == 255.0f && out[12 + 3 * i + 1] == 0.0f &&
                    out[12 + 3 * i + 2] == 0.0f);
    }
    hq_dataset_destroy(ds);
    hq_graph_destroy(rgb);

    hq_graph_t *mono = one_input_graph(2, 2, 1);
    ds = open_ok(dir, mono);
    read_ok(ds, 0, 0, 2, out);
    for (int i = 0; i < 4; i++)
        assert_true(out[i] == grey[i]);
    /* pure red to luma: stb_image weighs (77 R + 150 G + 29 B) / 256 -> 76 */
    assert_true(out[4] == 76.0f);
    hq_dataset_destroy(ds);
    hq_graph_destroy(mono);
}

static void image_folder_is_sorted_by_name_and_skips_other_files(void **state)
{
    (void)state;
    const char *dir = image_dir("sorted");
    const char *names[] = {"c.PNG", "a.png", "b.jpeg"};
    const uint8_t values[] = {30, 10, 20};
    for (int i = 0; i < 3; i++) {
        uint8_t px[4];
        memset(px, values[i], sizeof px);
        if (i == 2) {
            char path[512];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            assert_true(stbi_write_jpg(path, 2, 2, 1, px, 100) != 0);
        } else {
            write_png(dir, names[i], 2, 2, 1, px);
        }
    }
    char other[512];
    snprintf(other, sizeof other, "%s/notes.txt", dir);
    write_bytes(other, "not an image", 12);
    snprintf(other, sizeof other, "%s/.hidden.png", dir);
    write_bytes(other, "junk", 4);
    hq_graph_t *g = one_input_graph(1, 1, 1);
    hq_dataset_t *ds = open_ok(dir, g);
    assert_int_equal(hq_dataset_count(ds), 3);
    float out[3];
    read_ok(ds, 0, 0, 3, out);
    assert_true(out[0] == 10.0f && fabsf(out[1] - 20.0f) <= 1.0f && out[2] == 30.0f);
    hq_dataset_destroy(ds);
    hq_graph_destroy(g);
}

static void reports_an_undecodable_image_by_file_and_sample(void **state)
{
    (void)state;
    const char *dir = image_dir("broken");
    uint8_t px[4] = {1, 2, 3, 4};
    write_png(dir, "a.png", 2, 2, 1, px);
    char bad[512];
    snprintf(bad, sizeof bad, "%s/b.png", dir);
    write_bytes(bad, "\x89PNG\r\n\x1a\n garbage", 17);
    hq_graph_t *g = one_input_graph(2, 2, 1);
    hq_dataset_t *ds = open_ok(dir, g);
    float out[8];
    read_ok(ds, 0, 0, 1, out);
    hq_error_t err;
    assert_int_equal(hq_dataset_read(ds, 0, 0, 2, out, &err), HQ_ERR_FORMAT);
    char want[600];
    snprintf(want, sizeof want, "%s: sample 1: ", bad);
    assert_memory_equal(err.message, want, strlen(want));

    /* a BMP named .png is refused by signature, before stb_image sees it */
    assert_true(stbi_write_bmp(bad, 2, 2, 1, px) != 0);
    assert_int_equal(hq_dataset_read(ds, 0, 1, 1, out, &err), HQ_ERR_FORMAT);
    assert_non_null(strstr(err.message, "not a JPEG or PNG"));
    hq_dataset_destroy(ds);
    hq_graph_destroy(g);
}

static void refuses_image_folders_without_images_or_with_a_non_image_input(void **state)
{
    (void)state;
    const char *dir = image_dir("noimages");
    hq_graph_t *g = one_input_graph(2, 2, 3);
    hq_error_t err;
    open_fails(dir, g, HQ_ERR_INVALID, &err);
    assert_non_null(strstr(err.message, "empty"));
    uint8_t px[4] = {0};
    write_png(dir, "a.png", 2, 2, 1, px);
    hq_graph_t *four = one_input_graph(2, 2, 4);
    open_fails(dir, four, HQ_ERR_INVALID, &err);
    assert_non_null(strstr(err.message, "1 or 3"));
    hq_dataset_destroy(open_ok(dir, g));
    hq_graph_destroy(g);
    hq_graph_destroy(four);
}

/* A .npy held in memory: the same samples, checks and messages as the file, named by `name`;
 * the bytes are borrowed (read in place until destroy). */
static void opens_npy_from_memory(void **state)
{
    (void)state;
    float data[2 * 4 * 4 * 3];
    for (size_t i = 0; i < sizeof data / sizeof data[0]; i++)
        data[i] = (float)i;
    int64_t shape[] = {2, 4, 4, 3};
    size_t len;
    uint8_t *bytes = npy_bytes("<f4", false, shape, 4, data, sizeof data, &len);
    hq_graph_t *g = one_input_graph(4, 4, 3);
    hq_dataset_t *ds = NULL;
    hq_error_t err;
    assert_int_equal(hq_dataset_open_memory(bytes, len, "array", g, &ds, &err), HQ_OK);
    assert_int_equal(hq_dataset_count(ds), 2);
    float out[2 * 4 * 4 * 3];
    read_ok(ds, 0, 0, 2, out);
    assert_memory_equal(out, data, sizeof data);
    hq_dataset_destroy(ds);

    data[1 * 48 + 5] = NAN;
    free(bytes);
    bytes = npy_bytes("<f4", false, shape, 4, data, sizeof data, &len);
    assert_int_equal(hq_dataset_open_memory(bytes, len, "array", g, &ds, &err), HQ_OK);
    assert_int_equal(hq_dataset_read(ds, 0, 0, 2, out, &err), HQ_ERR_INVALID);
    assert_string_equal(err.message, "array: sample 1: value at (0, 1, 2) is NaN");
    hq_dataset_destroy(ds);

    hq_graph_t *bad = one_input_graph(8, 8, 3);
    assert_int_equal(hq_dataset_open_memory(bytes, len, "array", bad, &ds, &err), HQ_ERR_INVALID);
    assert_null(ds);
    assert_non_null(strstr(err.message, "array: shape (2, 4, 4, 3) does not match input layer"));
    assert_int_equal(hq_dataset_open_memory("junk", 4, NULL, g, &ds, &err), HQ_ERR_FORMAT);
    assert_non_null(strstr(err.message, "dataset: not a .npy or .npz file"));
    assert_int_equal(hq_dataset_open_memory(NULL, 0, "empty", g, &ds, &err), HQ_ERR_FORMAT);
    hq_graph_destroy(bad);
    hq_graph_destroy(g);
    free(bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_float32_npy_without_graph),
        cmocka_unit_test(reads_vector_samples_n_by_c),
        cmocka_unit_test(reads_every_dtype_in_both_byte_orders),
        cmocka_unit_test(reads_bool_as_zero_and_one),
        cmocka_unit_test(reads_fortran_order_float32_per_sample),
        cmocka_unit_test(reads_fortran_order_big_endian_int16),
        cmocka_unit_test(checks_per_sample_shape_against_the_input_layer),
        cmocka_unit_test(hints_nchw_when_channels_come_first),
        cmocka_unit_test(refuses_npy_for_a_graph_with_two_inputs),
        cmocka_unit_test(refuses_nan_and_infinity_naming_file_and_sample),
        cmocka_unit_test(opens_npy_from_memory),
        cmocka_unit_test(refuses_float64_beyond_float32_range),
        cmocka_unit_test(checks_the_requested_range),
        cmocka_unit_test(refuses_an_empty_dataset),
        cmocka_unit_test(refuses_truncated_data_at_open),
        cmocka_unit_test(refuses_complex_and_object_dtypes_from_the_header),
        cmocka_unit_test(refuses_files_that_are_neither_npy_nor_npz),
        cmocka_unit_test(npz_matches_scoped_bare_and_original_names),
        cmocka_unit_test(npz_feeds_several_inputs_stored_and_deflated),
        cmocka_unit_test(npz_reads_deflated_fortran_big_endian_members),
        cmocka_unit_test(npz_names_the_missing_input_and_the_keys_present),
        cmocka_unit_test(npz_refuses_two_keys_for_one_input),
        cmocka_unit_test(npz_refuses_inputs_with_different_sample_counts),
        cmocka_unit_test(npz_checks_member_shapes_and_truncation),
        cmocka_unit_test(npz_and_folders_need_a_graph),
        cmocka_unit_test(reads_files_written_by_numpy),
        cmocka_unit_test(resize_keeps_a_constant_colour_constant),
        cmocka_unit_test(resize_of_a_gradient_matches_hand_computed_values),
        cmocka_unit_test(converts_grey_and_alpha_to_the_input_channels),
        cmocka_unit_test(image_folder_is_sorted_by_name_and_skips_other_files),
        cmocka_unit_test(reports_an_undecodable_image_by_file_and_sample),
        cmocka_unit_test(refuses_image_folders_without_images_or_with_a_non_image_input),
    };
    return cmocka_run_group_tests(tests, make_scratch, drop_scratch);
}
