/* test_npy.c — tensors, dtype conversion and the .npy format. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hq/tensor.h"

/* ---- helpers ---------------------------------------------------------------------------- */

/* Builds a .npy in memory: magic, version, the header text padded like numpy, then `data`. */
static uint8_t *make_npy(int major, const char *dict, const void *data, size_t data_len,
                         size_t *len)
{
    size_t prefix = major == 1 ? 10 : 12;
    size_t text = strlen(dict) + 1;
    size_t pad = 64 - (prefix + text) % 64;
    size_t header_len = text + pad;
    *len = prefix + header_len + data_len;
    uint8_t *b = malloc(*len);
    assert_non_null(b);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)major;
    b[7] = 0;
    for (size_t i = 0; i < prefix - 8; i++)
        b[8 + i] = (uint8_t)(header_len >> (8 * i));
    memcpy(b + prefix, dict, text - 1);
    memset(b + prefix + text - 1, ' ', pad);
    b[prefix + header_len - 1] = '\n';
    if (data_len)
        memcpy(b + prefix + header_len, data, data_len);
    return b;
}

/* Decodes `dict` + `data` and expects failure with `status` and `needle` in the message. */
static void expect_refusal(const char *dict, const void *data, size_t data_len,
                           hq_status_t status, const char *needle)
{
    size_t len;
    uint8_t *b = make_npy(1, dict, data, data_len, &len);
    hq_tensor_t *t = (hq_tensor_t *)1;
    hq_error_t err = {0};
    hq_status_t st = hq_npy_read_memory(b, len, "bad.npy", &t, &err);
    if (st != status || !strstr(err.message, needle))
        fail_msg("expected status %d with '%s', got %d: %s", status, needle, st, err.message);
    assert_null(t);
    free(b);
}

static hq_tensor_t *read_npy(const void *bytes, size_t len)
{
    hq_tensor_t *t = NULL;
    hq_error_t err = {0};
    if (hq_npy_read_memory(bytes, len, "t.npy", &t, &err) != HQ_OK)
        fail_msg("read failed: %s", err.message);
    return t;
}

/* ---- tensors ---------------------------------------------------------------------------- */

static void creates_zero_filled_tensor_with_counted_bytes(void **state)
{
    (void)state;
    int64_t shape[] = {2, 3, 4};
    hq_tensor_t *t;
    assert_int_equal(hq_tensor_create(HQ_DTYPE_INT16, 3, shape, &t, NULL), HQ_OK);
    assert_int_equal(t->nbytes, 48);
    assert_int_equal(hq_tensor_count(t), 24);
    for (size_t i = 0; i < t->nbytes; i++)
        assert_int_equal(((uint8_t *)t->data)[i], 0);
    hq_tensor_destroy(t);

    assert_int_equal(hq_tensor_create(HQ_DTYPE_FLOAT32, 0, NULL, &t, NULL), HQ_OK);
    assert_int_equal(hq_tensor_count(t), 1);
    assert_int_equal(t->nbytes, 4);
    hq_tensor_destroy(t);

    int64_t empty[] = {0, 5};
    assert_int_equal(hq_tensor_create(HQ_DTYPE_FLOAT32, 2, empty, &t, NULL), HQ_OK);
    assert_int_equal(t->nbytes, 0);
    assert_null(t->data);
    hq_tensor_destroy(t);
    hq_tensor_destroy(NULL);
}

static void refuses_negative_dimensions_too_many_dimensions_and_overflow(void **state)
{
    (void)state;
    hq_tensor_t *t;
    hq_error_t err;
    int64_t neg[] = {2, -1};
    assert_int_equal(hq_tensor_create(HQ_DTYPE_UINT8, 2, neg, &t, &err), HQ_ERR_ARGUMENT);
    assert_null(t);
    int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    assert_int_equal(hq_tensor_create(HQ_DTYPE_UINT8, 9, nine, &t, &err), HQ_ERR_ARGUMENT);
    int64_t huge[] = {INT64_MAX / 2, 4};
    assert_int_equal(hq_tensor_create(HQ_DTYPE_FLOAT32, 2, huge, &t, &err), HQ_ERR_LIMIT);
    assert_int_equal(hq_tensor_create((hq_dtype_t)99, 0, NULL, &t, &err), HQ_ERR_ARGUMENT);
}

static void names_and_sizes_every_dtype(void **state)
{
    (void)state;
    static const size_t sizes[HQ_DTYPE_COUNT] = {4, 8, 2, 1, 1, 2, 2, 4, 8, 1};
    static const char *const names[HQ_DTYPE_COUNT] = {
        "float32", "float64", "float16", "uint8", "int8", "uint16", "int16", "int32", "int64",
        "bool"};
    for (int d = 0; d < HQ_DTYPE_COUNT; d++) {
        assert_int_equal(hq_dtype_size((hq_dtype_t)d), sizes[d]);
        assert_string_equal(hq_dtype_name((hq_dtype_t)d), names[d]);
    }
    assert_int_equal(hq_dtype_size(HQ_DTYPE_COUNT), 0);
    assert_string_equal(hq_dtype_name((hq_dtype_t)-1), "invalid");
}

static void clone_copies_data_deeply(void **state)
{
    (void)state;
    int64_t shape[] = {3};
    hq_tensor_t *a, *b;
    assert_int_equal(hq_tensor_create(HQ_DTYPE_INT32, 1, shape, &a, NULL), HQ_OK);
    ((int32_t *)a->data)[1] = 7;
    assert_int_equal(hq_tensor_clone(a, &b, NULL), HQ_OK);
    assert_ptr_not_equal(a->data, b->data);
    ((int32_t *)a->data)[1] = 8;
    assert_int_equal(((int32_t *)b->data)[1], 7);
    hq_tensor_destroy(a);
    hq_tensor_destroy(b);
}

/* Small integers survive every dtype pair, both ways. */
static void converts_small_integers_between_every_dtype_pair(void **state)
{
    (void)state;
    const double values[] = {0, 1, 5, 100};
    int64_t shape[] = {4};
    for (int from = 0; from < HQ_DTYPE_COUNT; from++) {
        for (int to = 0; to < HQ_DTYPE_COUNT; to++) {
            bool is_bool = from == HQ_DTYPE_BOOL || to == HQ_DTYPE_BOOL;
            hq_tensor_t *f64, *src, *dst, *back;
            assert_int_equal(hq_tensor_create(HQ_DTYPE_FLOAT64, 1, shape, &f64, NULL), HQ_OK);
            for (int i = 0; i < 4; i++)
                ((double *)f64->data)[i] = is_bool ? (values[i] != 0) : values[i];
            assert_int_equal(hq_tensor_convert(f64, (hq_dtype_t)from, &src, NULL), HQ_OK);
            assert_int_equal(hq_tensor_convert(src, (hq_dtype_t)to, &dst, NULL), HQ_OK);
            assert_int_equal(dst->dtype, to);
            assert_int_equal(dst->ndim, 1);
            assert_int_equal(dst->shape[0], 4);
            assert_int_equal(hq_tensor_convert(dst, HQ_DTYPE_FLOAT64, &back, NULL), HQ_OK);
            for (int i = 0; i < 4; i++)
                if (((double *)back->data)[i] != ((double *)f64->data)[i])
                    fail_msg("%s -> %s: element %d is %g, expected %g",
                             hq_dtype_name((hq_dtype_t)from), hq_dtype_name((hq_dtype_t)to), i,
                             ((double *)back->data)[i], ((double *)f64->data)[i]);
            hq_tensor_destroy(f64);
            hq_tensor_destroy(src);
            hq_tensor_destroy(dst);
            hq_tensor_destroy(back);
        }
    }
}

static void converts_floats_to_integers_by_truncating_toward_zero(void **state)
{
    (void)state;
    int64_t shape[] = {4};
    hq_tensor_t *f, *i;
    assert_int_equal(hq_tensor_create(HQ_DTYPE_FLOAT32, 1, shape, &f, NULL), HQ_OK);
    float v[] = {2.7f, -2.7f, 0.5f, -0.5f};
    memcpy(f->data, v, sizeof v);
    assert_int_equal(hq_tensor_convert(f, HQ_DTYPE_INT32, &i, NULL), HQ_OK);
    int32_t *o = i->data;
    assert_int_equal(o[0], 2);
    assert_int_equal(o[1], -2);
    assert_int_equal(o[2], 0);
    assert_int_equal(o[3], 0);
    hq_tensor_destroy(f);
    hq_tensor_destroy(i);
}

static void saturates_out_of_range_floats_instead_of_invoking_undefined_behaviour(void **state)
{
    (void)state;
    int64_t shape[] = {4};
    hq_tensor_t *f, *u8, *i64;
    assert_int_equal(hq_tensor_create(HQ_DTYPE_FLOAT64, 1, shape, &f, NULL), HQ_OK);
    double v[] = {300.0, -5.0, NAN, 1e300};
    memcpy(f->data, v, sizeof v);
    assert_int_equal(hq_tensor_convert(f, HQ_DTYPE_UINT8, &u8, NULL), HQ_OK);
    uint8_t *o = u8->data;
    assert_int_equal(o[0], 255);
    assert_int_equal(o[1], 0);
    assert_int_equal(o[2], 0);
    assert_int_equal(o[3], 255);
    assert_int_equal(hq_tensor_convert(f, HQ_DTYPE_INT64, &i64, NULL), HQ_OK);
    assert_true(((int64_t *)i64->data)[3] == INT64_MAX);
    hq_tensor_destroy(f);
    hq_tensor_destroy(u8);
    hq_tensor_destroy(i64);
}

static void wraps_integers_like_numpy_astype(void **state)
{
    (void)state;
    int64_t shape[] = {3};
    hq_tensor_t *a, *b;
    assert_int_equal(hq_tensor_create(HQ_DTYPE_INT32, 1, shape, &a, NULL), HQ_OK);
    int32_t v[] = {300, -1, 256};
    memcpy(a->data, v, sizeof v);
    assert_int_equal(hq_tensor_convert(a, HQ_DTYPE_UINT8, &b, NULL), HQ_OK);
    assert_memory_equal(b->data, ((uint8_t[]){44, 255, 0}), 3);
    hq_tensor_destroy(b);
    assert_int_equal(hq_tensor_convert(a, HQ_DTYPE_BOOL, &b, NULL), HQ_OK);
    assert_memory_equal(b->data, ((uint8_t[]){1, 1, 1}), 3);
    hq_tensor_destroy(a);
    hq_tensor_destroy(b);
}

static void converts_float16_through_ieee_half(void **state)
{
    (void)state;
    int64_t shape[] = {3};
    hq_tensor_t *h, *f, *h2;
    assert_int_equal(hq_tensor_create(HQ_DTYPE_FLOAT16, 1, shape, &h, NULL), HQ_OK);
    uint16_t bits[] = {0x3e00 /* 1.5 */, 0xc000 /* -2 */, 0x7bff /* 65504 */};
    memcpy(h->data, bits, sizeof bits);
    assert_int_equal(hq_tensor_convert(h, HQ_DTYPE_FLOAT32, &f, NULL), HQ_OK);
    float *o = f->data;
    assert_true(o[0] == 1.5f && o[1] == -2.0f && o[2] == 65504.0f);
    assert_int_equal(hq_tensor_convert(f, HQ_DTYPE_FLOAT16, &h2, NULL), HQ_OK);
    assert_memory_equal(h2->data, bits, sizeof bits);
    hq_tensor_destroy(h2);
    assert_int_equal(hq_tensor_convert(h, HQ_DTYPE_INT16, &h2, NULL), HQ_OK);
    assert_memory_equal(h2->data, ((int16_t[]){1, -2, 32767}), 6);
    hq_tensor_destroy(h);
    hq_tensor_destroy(f);
    hq_tensor_destroy(h2);
}

/* ---- .npy writing ----------------------------------------------------------------------- */

static void writes_float32_matrix_byte_for_byte_as_numpy_save(void **state)
{
    (void)state;
    /* np.save(f, np.arange(6, dtype='<f4').reshape(2, 3)) */
    const char *expected_header =
        "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
        "                                                          \n";
    int64_t shape[] = {2, 3};
    hq_tensor_t *t;
    assert_int_equal(hq_tensor_create(HQ_DTYPE_FLOAT32, 2, shape, &t, NULL), HQ_OK);
    for (int i = 0; i < 6; i++)
        ((float *)t->data)[i] = (float)i;
    void *bytes;
    size_t len;
    assert_int_equal(hq_npy_write_memory(t, &bytes, &len, NULL), HQ_OK);
    assert_int_equal(len, 152);
    assert_memory_equal(bytes, expected_header, 128);
    assert_memory_equal((uint8_t *)bytes + 128, t->data, 24);
    free(bytes);
    hq_tensor_destroy(t);
}

static void writes_scalars_and_one_dimensional_shapes_as_python_tuples(void **state)
{
    (void)state;
    hq_tensor_t *t;
    void *bytes;
    size_t len;
    assert_int_equal(hq_tensor_create(HQ_DTYPE_INT64, 0, NULL, &t, NULL), HQ_OK);
    assert_int_equal(hq_npy_write_memory(t, &bytes, &len, NULL), HQ_OK);
    assert_int_equal(len, 136); /* np.save of np.array(3, dtype=np.int64) */
    assert_non_null(strstr((char *)bytes + 10, "'shape': (), }"));
    free(bytes);
    hq_tensor_destroy(t);
    int64_t shape[] = {5};
    assert_int_equal(hq_tensor_create(HQ_DTYPE_BOOL, 1, shape, &t, NULL), HQ_OK);
    assert_int_equal(hq_npy_write_memory(t, &bytes, &len, NULL), HQ_OK);
    assert_non_null(strstr((char *)bytes + 10, "{'descr': '|b1', 'fortran_order': False, "
                                                "'shape': (5,), }"));
    assert_int_equal((len - 5) % 64, 0);
    free(bytes);
    hq_tensor_destroy(t);
}

static void pads_every_header_so_data_starts_on_a_multiple_of_64(void **state)
{
    (void)state;
    for (int ndim = 0; ndim <= HQ_TENSOR_MAX_DIMS; ndim++) {
        int64_t shape[HQ_TENSOR_MAX_DIMS];
        for (int i = 0; i < ndim; i++)
            shape[i] = i > 0 ? 1 : ndim == 1 ? 12345 : 123456789;
        /* a long first dimension widens the header; a zero last dimension keeps the data empty */
        if (ndim > 1)
            shape[ndim - 1] = 0;
        hq_tensor_t *t;
        assert_int_equal(hq_tensor_create(HQ_DTYPE_UINT8, ndim, shape, &t, NULL), HQ_OK);
        void *bytes;
        size_t len;
        assert_int_equal(hq_npy_write_memory(t, &bytes, &len, NULL), HQ_OK);
        size_t offset = len - t->nbytes;
        assert_int_equal(offset % 64, 0);
        assert_int_equal(((uint8_t *)bytes)[offset - 1], '\n');
        hq_npy_header_t h;
        assert_int_equal(hq_npy_parse_header(bytes, len, "x.npy", &h, NULL), HQ_OK);
        assert_int_equal(h.version_major, 1);
        assert_int_equal(h.ndim, ndim);
        assert_int_equal(h.data_offset, offset);
        free(bytes);
        hq_tensor_destroy(t);
    }
}

static void reads_back_every_dtype_it_writes(void **state)
{
    (void)state;
    int64_t shape[] = {2, 3, 2};
    for (int d = 0; d < HQ_DTYPE_COUNT; d++) {
        hq_tensor_t *t;
        assert_int_equal(hq_tensor_create((hq_dtype_t)d, 3, shape, &t, NULL), HQ_OK);
        for (size_t i = 0; i < t->nbytes; i++)
            ((uint8_t *)t->data)[i] = d == HQ_DTYPE_BOOL ? (uint8_t)(i & 1) : (uint8_t)(i * 7);
        void *bytes;
        size_t len;
        assert_int_equal(hq_npy_write_memory(t, &bytes, &len, NULL), HQ_OK);
        hq_tensor_t *r = read_npy(bytes, len);
        assert_int_equal(r->dtype, d);
        assert_int_equal(r->ndim, 3);
        assert_memory_equal(r->shape, shape, sizeof shape);
        assert_int_equal(r->nbytes, t->nbytes);
        assert_memory_equal(r->data, t->data, t->nbytes);
        free(bytes);
        hq_tensor_destroy(t);
        hq_tensor_destroy(r);
    }
}

static void writes_and_reads_files_atomically(void **state)
{
    (void)state;
    char dir[] = "/tmp/hq_test_npy_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/a.npy", dir);
    int64_t shape[] = {4};
    hq_tensor_t *t, *r;
    assert_int_equal(hq_tensor_create(HQ_DTYPE_INT16, 1, shape, &t, NULL), HQ_OK);
    ((int16_t *)t->data)[3] = -9;
    hq_error_t err;
    assert_int_equal(hq_npy_write_file(path, t, &err), HQ_OK);
    assert_int_equal(hq_npy_read_file(path, &r, &err), HQ_OK);
    assert_memory_equal(r->data, t->data, 8);
    hq_tensor_destroy(r);
    unlink(path);
    assert_int_equal(hq_npy_read_file(path, &r, &err), HQ_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "a.npy"));
    snprintf(path, sizeof path, "%s/missing/a.npy", dir);
    assert_int_equal(hq_npy_write_file(path, t, &err), HQ_ERR_IO);
    hq_tensor_destroy(t);
    rmdir(dir);
}

/* ---- .npy reading ----------------------------------------------------------------------- */

static void reads_fortran_order_big_endian_int16(void **state)
{
    (void)state;
    /* a = [[1, 2, 3], [4, 5, 6]] stored column-major, big endian: 1 4 2 5 3 6 */
    const uint8_t data[] = {0, 1, 0, 4, 0, 2, 0, 5, 0, 3, 0xff, 0xfa};
    size_t len;
    uint8_t *b = make_npy(1, "{'descr': '>i2', 'fortran_order': True, 'shape': (2, 3), }", data,
                          sizeof data, &len);
    hq_tensor_t *t = read_npy(b, len);
    assert_int_equal(t->dtype, HQ_DTYPE_INT16);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    assert_memory_equal(t->data, ((int16_t[]){1, 2, 3, 4, 5, -6}), 12);
    hq_tensor_destroy(t);
    free(b);

    /* the same bytes declared C order and little endian are read as they are */
    b = make_npy(1, "{'descr': '<i2', 'fortran_order': False, 'shape': (2, 3), }", data,
                 sizeof data, &len);
    t = read_npy(b, len);
    assert_memory_equal(t->data, data, 12);
    hq_tensor_destroy(t);
    free(b);
}

static void reads_fortran_order_three_dimensional_float32(void **state)
{
    (void)state;
    /* shape (2, 3, 4): element (i, j, k) = 100i + 10j + k, written in Fortran order */
    float data[24];
    for (int k = 0, n = 0; k < 4; k++)
        for (int j = 0; j < 3; j++)
            for (int i = 0; i < 2; i++)
                data[n++] = (float)(100 * i + 10 * j + k);
    size_t len;
    uint8_t *b = make_npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3, 4), }",
                          data, sizeof data, &len);
    hq_tensor_t *t = read_npy(b, len);
    float *o = t->data;
    for (int i = 0, n = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++, n++)
                assert_true(o[n] == (float)(100 * i + 10 * j + k));
    hq_tensor_destroy(t);
    free(b);
}

static void reads_big_endian_float64_and_float16(void **state)
{
    (void)state;
    const uint8_t f8[] = {0x3f, 0xf8, 0, 0, 0, 0, 0, 0}; /* 1.5 */
    size_t len;
    uint8_t *b = make_npy(1, "{'descr': '>f8', 'fortran_order': False, 'shape': (1,), }", f8,
                          sizeof f8, &len);
    hq_tensor_t *t = read_npy(b, len);
    assert_true(((double *)t->data)[0] == 1.5);
    hq_tensor_destroy(t);
    free(b);
    const uint8_t f2[] = {0x3e, 0x00};
    b = make_npy(1, "{'descr': '>f2', 'fortran_order': False, 'shape': (), }", f2, 2, &len);
    t = read_npy(b, len);
    assert_int_equal(t->ndim, 0);
    assert_int_equal(((uint16_t *)t->data)[0], 0x3e00);
    hq_tensor_destroy(t);
    free(b);
}

static void reads_native_and_not_applicable_byte_orders_as_little_endian(void **state)
{
    (void)state;
    const uint8_t data[] = {1, 0, 0, 0};
    const char *dicts[] = {
        "{'descr': '=i4', 'fortran_order': False, 'shape': (1,), }",
        "{'descr': '|i4', 'fortran_order': False, 'shape': (1,), }",
        "{\"descr\": \"<i4\", \"fortran_order\": False, \"shape\": (1,)}",
        "{'shape':(1,),'fortran_order':False,'descr':'<i4'}",
    };
    for (size_t i = 0; i < sizeof dicts / sizeof dicts[0]; i++) {
        size_t len;
        uint8_t *b = make_npy(1, dicts[i], data, 4, &len);
        hq_tensor_t *t = read_npy(b, len);
        assert_int_equal(((int32_t *)t->data)[0], 1);
        hq_tensor_destroy(t);
        free(b);
    }
}

static void reads_header_versions_2_and_3(void **state)
{
    (void)state;
    const uint8_t data[] = {9, 8};
    for (int major = 2; major <= 3; major++) {
        size_t len;
        uint8_t *b = make_npy(major, "{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }",
                              data, 2, &len);
        hq_npy_header_t h;
        assert_int_equal(hq_npy_parse_header(b, len, "v.npy", &h, NULL), HQ_OK);
        assert_int_equal(h.version_major, major);
        assert_int_equal(h.data_offset % 64, 0);
        hq_tensor_t *t = read_npy(b, len);
        assert_memory_equal(t->data, data, 2);
        hq_tensor_destroy(t);
        free(b);
    }
}

static void parses_header_without_reading_data(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = make_npy(1, "{'descr': '>u2', 'fortran_order': True, 'shape': (10, 20, 3), }",
                          NULL, 0, &len);
    hq_npy_header_t h;
    assert_int_equal(hq_npy_parse_header(b, len, "h.npy", &h, NULL), HQ_OK);
    assert_int_equal(h.dtype, HQ_DTYPE_UINT16);
    assert_true(h.fortran_order);
    assert_true(h.big_endian);
    assert_int_equal(h.ndim, 3);
    assert_int_equal(h.shape[2], 3);
    assert_int_equal(h.data_bytes, 1200);
    assert_int_equal(h.data_offset, len);
    free(b);
}

static void reads_empty_arrays_and_eight_dimensions(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = make_npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (0, 3), }", NULL,
                          0, &len);
    hq_tensor_t *t = read_npy(b, len);
    assert_int_equal(t->nbytes, 0);
    assert_int_equal(t->shape[1], 3);
    hq_tensor_destroy(t);
    free(b);
    const uint8_t one = 1;
    b = make_npy(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1), }",
                 &one, 1, &len);
    t = read_npy(b, len);
    assert_int_equal(t->ndim, 8);
    hq_tensor_destroy(t);
    free(b);
}

static void refuses_data_shorter_than_the_shape_says(void **state)
{
    (void)state;
    uint8_t data[1000] = {0};
    size_t len;
    uint8_t *b = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 224, 224, 3), }",
                          data, sizeof data, &len);
    hq_tensor_t *t;
    hq_error_t err;
    assert_int_equal(hq_npy_read_memory(b, len, "calib.npy", &t, &err), HQ_ERR_FORMAT);
    assert_string_equal(err.message,
                        "calib.npy: header field 'shape': needs 602112 bytes of data, file has 1000");
    /* and exactly enough data is accepted */
    free(b);
    b = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (250,), }", data,
                 sizeof data, &len);
    assert_int_equal(hq_npy_read_memory(b, len, "calib.npy", &t, &err), HQ_OK);
    hq_tensor_destroy(t);
    free(b);
}

static void refuses_unsupported_dtypes_naming_the_descr_field(void **state)
{
    (void)state;
    expect_refusal("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", NULL, 0,
                   HQ_ERR_UNSUPPORTED, "bad.npy: header field 'descr': unsupported dtype '<c8' (complex numbers)");
    expect_refusal("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", NULL, 0,
                   HQ_ERR_UNSUPPORTED, "'descr': unsupported dtype '|O' (object arrays need pickle)");
    expect_refusal("{'descr': '<U5', 'fortran_order': False, 'shape': (1,), }", NULL, 0,
                   HQ_ERR_UNSUPPORTED, "'descr': unsupported dtype '<U5' (strings)");
    expect_refusal("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", NULL, 0,
                   HQ_ERR_UNSUPPORTED, "'descr': structured dtypes");
    expect_refusal("{'descr': '<f16', 'fortran_order': False, 'shape': (1,), }", NULL, 0,
                   HQ_ERR_UNSUPPORTED, "'descr': unsupported dtype '<f16' (hq reads f2 f4");
    expect_refusal("{'descr': '<M8[s]', 'fortran_order': False, 'shape': (1,), }", NULL, 0,
                   HQ_ERR_UNSUPPORTED, "'descr'");
    expect_refusal("{'descr': 5, 'fortran_order': False, 'shape': (1,), }", NULL, 0,
                   HQ_ERR_FORMAT, "'descr'");
}

static void refuses_bad_shapes(void **state)
{
    (void)state;
    expect_refusal("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }",
                   NULL, 0, HQ_ERR_LIMIT, "'shape': more than 8 dimensions");
    expect_refusal("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", NULL, 0,
                   HQ_ERR_FORMAT, "'shape': negative dimension");
    expect_refusal("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }",
                   NULL, 0, HQ_ERR_LIMIT, "'shape': data size overflows");
    expect_refusal("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
                   NULL, 0, HQ_ERR_LIMIT, "'shape'");
    expect_refusal("{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3], }", NULL, 0,
                   HQ_ERR_FORMAT, "'shape': expected a tuple");
    expect_refusal("{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }", NULL, 0,
                   HQ_ERR_FORMAT, "'shape'");
}

static void refuses_malformed_headers_naming_the_problem(void **state)
{
    (void)state;
    expect_refusal("['descr', '<f4']", NULL, 0, HQ_ERR_FORMAT, "bad.npy: header is not a dict");
    expect_refusal("{'fortran_order': False, 'shape': (1,), }", NULL, 0, HQ_ERR_FORMAT,
                   "header field 'descr': missing");
    expect_refusal("{'descr': '<f4', 'shape': (1,), }", NULL, 0, HQ_ERR_FORMAT,
                   "header field 'fortran_order': missing");
    expect_refusal("{'descr': '<f4', 'fortran_order': False}", NULL, 0, HQ_ERR_FORMAT,
                   "header field 'shape': missing");
    expect_refusal("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", NULL, 0,
                   HQ_ERR_FORMAT, "header field 'extra': unknown key");
    expect_refusal("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}",
                   NULL, 0, HQ_ERR_FORMAT, "header field 'descr': appears twice");
    expect_refusal("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}", NULL, 0, HQ_ERR_FORMAT,
                   "header field 'fortran_order': expected True or False");
    expect_refusal("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x", NULL, 0,
                   HQ_ERR_FORMAT, "text after the dict");
    expect_refusal("{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}", NULL, 0,
                   HQ_ERR_FORMAT, "expected ',' or '}'");
    expect_refusal("{'descr': '<f4', 'fortran_order': Falsey, 'shape': (1,)}", NULL, 0,
                   HQ_ERR_FORMAT, "'fortran_order'");
}

static void refuses_bad_magic_versions_and_lengths(void **state)
{
    (void)state;
    hq_tensor_t *t;
    hq_error_t err;
    assert_int_equal(hq_npy_read_memory("PK\3\4 not npy", 13, "z.npy", &t, &err), HQ_ERR_FORMAT);
    assert_string_equal(err.message, "z.npy: not a .npy file (bad magic)");
    assert_int_equal(hq_npy_read_memory("\x93NUMP", 5, "z.npy", &t, &err), HQ_ERR_FORMAT);

    size_t len;
    uint8_t *b = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
                          "\0\0\0\0", 4, &len);
    b[6] = 4;
    assert_int_equal(hq_npy_read_memory(b, len, "z.npy", &t, &err), HQ_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "version 4.0"));
    b[6] = 1;
    b[8] = 0xff; /* header length 0xff80: past the end */
    b[9] = 0xff;
    assert_int_equal(hq_npy_read_memory(b, len, "z.npy", &t, &err), HQ_ERR_FORMAT);
    assert_non_null(strstr(err.message, "z.npy: header length 65535 runs past the end"));
    assert_int_equal(hq_npy_read_memory(b, 9, "z.npy", &t, &err), HQ_ERR_FORMAT);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(creates_zero_filled_tensor_with_counted_bytes),
        cmocka_unit_test(refuses_negative_dimensions_too_many_dimensions_and_overflow),
        cmocka_unit_test(names_and_sizes_every_dtype),
        cmocka_unit_test(clone_copies_data_deeply),
        cmocka_unit_test(converts_small_integers_between_every_dtype_pair),
        cmocka_unit_test(converts_floats_to_integers_by_truncating_toward_zero),
        cmocka_unit_test(saturates_out_of_range_floats_instead_of_invoking_undefined_behaviour),
        cmocka_unit_test(wraps_integers_like_numpy_astype),
        cmocka_unit_test(converts_float16_through_ieee_half),
        cmocka_unit_test(writes_float32_matrix_byte_for_byte_as_numpy_save),
        cmocka_unit_test(writes_scalars_and_one_dimensional_shapes_as_python_tuples),
        cmocka_unit_test(pads_every_header_so_data_starts_on_a_multiple_of_64),
        cmocka_unit_test(reads_back_every_dtype_it_writes),
        cmocka_unit_test(writes_and_reads_files_atomically),
        cmocka_unit_test(reads_fortran_order_big_endian_int16),
        cmocka_unit_test(reads_fortran_order_three_dimensional_float32),
        cmocka_unit_test(reads_big_endian_float64_and_float16),
        cmocka_unit_test(reads_native_and_not_applicable_byte_orders_as_little_endian),
        cmocka_unit_test(reads_header_versions_2_and_3),
        cmocka_unit_test(parses_header_without_reading_data),
        cmocka_unit_test(reads_empty_arrays_and_eight_dimensions),
        cmocka_unit_test(refuses_data_shorter_than_the_shape_says),
        cmocka_unit_test(refuses_unsupported_dtypes_naming_the_descr_field),
        cmocka_unit_test(refuses_bad_shapes),
        cmocka_unit_test(refuses_malformed_headers_naming_the_problem),
        cmocka_unit_test(refuses_bad_magic_versions_and_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
