/* test_npz.c — the zip container and .npz sets. With HQ_ROUNDTRIP_DIR set (by
 * tests/e2e/numpy_roundtrip.sh) it also reads every numpy-written file listed in the folder's
 * manifest and writes them back for numpy to check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hq/tensor.h"
#include "io/zip.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static hq_tensor_t *ramp(hq_dtype_t dtype, int ndim, const int64_t *shape)
{
    hq_tensor_t *t;
    assert_int_equal(hq_tensor_create(dtype, ndim, shape, &t, NULL), HQ_OK);
    for (size_t i = 0; i < t->nbytes; i++)
        ((uint8_t *)t->data)[i] = dtype == HQ_DTYPE_BOOL ? (uint8_t)(i % 2) : (uint8_t)(i * 13 + 1);
    return t;
}

/* A set like a .har parameter file: keys with '/' and ':'. */
static hq_npz_t *sample_set(void)
{
    hq_npz_t *npz;
    assert_int_equal(hq_npz_create(&npz, NULL), HQ_OK);
    int64_t kshape[] = {3, 3, 2, 4}, bshape[] = {4}, big[] = {64, 64};
    assert_int_equal(hq_npz_put(npz, "net/conv1/kernel:0", ramp(HQ_DTYPE_FLOAT32, 4, kshape), NULL),
                     HQ_OK);
    assert_int_equal(hq_npz_put(npz, "net/conv1/bias:0", ramp(HQ_DTYPE_INT32, 1, bshape), NULL),
                     HQ_OK);
    assert_int_equal(hq_npz_put(npz, "step", ramp(HQ_DTYPE_INT64, 0, NULL), NULL), HQ_OK);
    hq_tensor_t *zeros;
    assert_int_equal(hq_tensor_create(HQ_DTYPE_UINT8, 2, big, &zeros, NULL), HQ_OK);
    assert_int_equal(hq_npz_put(npz, "zeros", zeros, NULL), HQ_OK);
    return npz;
}

static void assert_same_set(const hq_npz_t *a, const hq_npz_t *b)
{
    assert_int_equal(hq_npz_count(a), hq_npz_count(b));
    for (size_t i = 0; i < hq_npz_count(a); i++) {
        assert_string_equal(hq_npz_key(a, i), hq_npz_key(b, i));
        const hq_tensor_t *x = hq_npz_get_index(a, i), *y = hq_npz_get_index(b, i);
        assert_int_equal(x->dtype, y->dtype);
        assert_int_equal(x->ndim, y->ndim);
        assert_memory_equal(x->shape, y->shape, sizeof x->shape);
        assert_int_equal(x->nbytes, y->nbytes);
        if (x->nbytes)
            assert_memory_equal(x->data, y->data, x->nbytes);
    }
}

static uint8_t *encode(const hq_npz_t *npz, bool compress, size_t *len)
{
    void *bytes;
    hq_error_t err;
    if (hq_npz_write_memory(npz, compress, &bytes, len, &err) != HQ_OK)
        fail_msg("write failed: %s", err.message);
    return bytes;
}

/* An archive with one member `name` holding `data`, stored or deflated. */
static uint8_t *one_member_zip(const char *name, const void *data, size_t n, bool deflate,
                               size_t *len)
{
    hqi_zip_writer_t *w;
    assert_int_equal(hqi_zip_writer_create(&w, NULL), HQ_OK);
    assert_int_equal(hqi_zip_writer_add(w, name, data, n, deflate, NULL), HQ_OK);
    void *bytes;
    assert_int_equal(hqi_zip_writer_finish(w, &bytes, len, NULL), HQ_OK);
    return bytes;
}

static size_t find_sig(const uint8_t *b, size_t len, const char *sig)
{
    for (size_t i = 0; i + 4 <= len; i++)
        if (memcmp(b + i, sig, 4) == 0)
            return i;
    fail_msg("signature not found");
    return 0;
}

static void expect_npz_refusal(const uint8_t *b, size_t len, hq_status_t status,
                               const char *needle)
{
    hq_npz_t *npz = (hq_npz_t *)1;
    hq_error_t err = {0};
    hq_status_t st = hq_npz_read_memory(b, len, "p.npz", &npz, &err);
    if (st != status || !strstr(err.message, needle))
        fail_msg("expected status %d with '%s', got %d: %s", status, needle, st, err.message);
    assert_null(npz);
}

/* ---- sets ------------------------------------------------------------------------------- */

static void round_trips_keys_with_slashes_and_colons_stored_and_deflated(void **state)
{
    (void)state;
    hq_npz_t *npz = sample_set();
    for (int compress = 0; compress <= 1; compress++) {
        size_t len;
        uint8_t *b = encode(npz, compress, &len);
        hqi_zip_t zip;
        assert_int_equal(hqi_zip_open(b, len, "s.npz", &zip, NULL), HQ_OK);
        assert_int_equal(zip.member_count, 4);
        assert_string_equal(zip.members[0].name, "net/conv1/kernel:0.npy");
        assert_int_equal(zip.members[3].method, compress ? 8 : 0);
        if (compress) /* 4 KiB of zeros deflate to almost nothing */
            assert_true(zip.members[3].compressed_size < 200);
        hqi_zip_close(&zip);
        hq_npz_t *back;
        assert_int_equal(hq_npz_read_memory(b, len, "s.npz", &back, NULL), HQ_OK);
        assert_same_set(npz, back);
        hq_npz_destroy(back);
        free(b);
    }
    hq_npz_destroy(npz);
}

static void writes_the_same_bytes_for_the_same_set(void **state)
{
    (void)state;
    hq_npz_t *a = sample_set(), *b = sample_set();
    for (int compress = 0; compress <= 1; compress++) {
        size_t la, lb;
        uint8_t *x = encode(a, compress, &la), *y = encode(b, compress, &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(x, y, la);
        /* DOS date 1980-01-01, time 00:00 in the first local header */
        assert_int_equal(x[10] | x[11] << 8, 0);
        assert_int_equal(x[12] | x[13] << 8, 0x21);
        free(x);
        free(y);
    }
    hq_npz_destroy(a);
    hq_npz_destroy(b);
}

static void puts_replaces_gets_and_removes_keys_in_order(void **state)
{
    (void)state;
    hq_npz_t *npz = sample_set();
    int64_t shape[] = {2};
    hq_tensor_t *t = ramp(HQ_DTYPE_INT8, 1, shape);
    assert_int_equal(hq_npz_put_copy(npz, "net/conv1/bias:0", t, NULL), HQ_OK);
    assert_int_equal(hq_npz_count(npz), 4);
    assert_string_equal(hq_npz_key(npz, 1), "net/conv1/bias:0");
    assert_int_equal(hq_npz_get(npz, "net/conv1/bias:0")->dtype, HQ_DTYPE_INT8);
    assert_ptr_not_equal(hq_npz_get(npz, "net/conv1/bias:0"), t);
    hq_tensor_destroy(t);
    hq_error_t err;
    assert_int_equal(hq_npz_remove(npz, "net/conv1/kernel:0", &err), HQ_OK);
    assert_string_equal(hq_npz_key(npz, 0), "net/conv1/bias:0");
    assert_null(hq_npz_get(npz, "net/conv1/kernel:0"));
    assert_int_equal(hq_npz_remove(npz, "net/conv1/kernel:0", &err), HQ_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "net/conv1/kernel:0"));
    assert_null(hq_npz_key(npz, 3));
    assert_null(hq_npz_get_index(npz, 3));
    /* put takes ownership even when it fails */
    assert_int_equal(hq_npz_put(npz, "", ramp(HQ_DTYPE_INT8, 1, shape), &err), HQ_ERR_ARGUMENT);
    hq_npz_destroy(npz);
    hq_npz_destroy(NULL);
}

static void reads_and_writes_an_empty_set(void **state)
{
    (void)state;
    hq_npz_t *npz, *back;
    assert_int_equal(hq_npz_create(&npz, NULL), HQ_OK);
    size_t len;
    uint8_t *b = encode(npz, false, &len);
    assert_int_equal(len, 22); /* just the end of central directory record, as numpy writes */
    assert_int_equal(hq_npz_read_memory(b, len, "e.npz", &back, NULL), HQ_OK);
    assert_int_equal(hq_npz_count(back), 0);
    hq_npz_destroy(back);
    hq_npz_destroy(npz);
    free(b);
}

static void writes_and_reads_files(void **state)
{
    (void)state;
    char path[] = "/tmp/hq_test_npz_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    hq_npz_t *npz = sample_set(), *back;
    hq_error_t err;
    assert_int_equal(hq_npz_write_file(path, npz, true, &err), HQ_OK);
    assert_int_equal(hq_npz_read_file(path, &back, &err), HQ_OK);
    assert_same_set(npz, back);
    hq_npz_destroy(back);
    remove(path);
    assert_int_equal(hq_npz_read_file(path, &back, &err), HQ_ERR_NOT_FOUND);
    hq_npz_destroy(npz);
}

/* hq_npz_read_set_file: an .npz as it is, an .npy as a set of one array named "array", a
 * missing or broken file refused with its path. */
static void reads_an_npy_or_an_npz_as_a_set(void **state)
{
    (void)state;
    char dir[] = "/tmp/hq_test_npz_set_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char npy[64], npz_path[64], bad[64];
    snprintf(npy, sizeof npy, "%s/one.npy", dir);
    snprintf(npz_path, sizeof npz_path, "%s/set.npz", dir);
    snprintf(bad, sizeof bad, "%s/bad.npy", dir);
    hq_error_t err;
    int64_t shape[] = {2, 3};
    hq_tensor_t *t = ramp(HQ_DTYPE_FLOAT32, 2, shape);
    assert_int_equal(hq_npy_write_file(npy, t, &err), HQ_OK);
    hq_npz_t *npz = sample_set(), *back;
    assert_int_equal(hq_npz_write_file(npz_path, npz, false, &err), HQ_OK);

    assert_int_equal(hq_npz_read_set_file(npy, &back, &err), HQ_OK);
    assert_int_equal(hq_npz_count(back), 1);
    const hq_tensor_t *got = hq_npz_get(back, "array");
    assert_non_null(got);
    assert_int_equal(got->nbytes, t->nbytes);
    assert_memory_equal(got->data, t->data, t->nbytes);
    hq_npz_destroy(back);

    assert_int_equal(hq_npz_read_set_file(npz_path, &back, &err), HQ_OK);
    assert_same_set(npz, back);
    hq_npz_destroy(back);

    FILE *f = fopen(bad, "wb");
    assert_non_null(f);
    fputs("\x93NUMPY", f);
    fclose(f);
    back = (hq_npz_t *)(uintptr_t)1;
    assert_int_not_equal(hq_npz_read_set_file(bad, &back, &err), HQ_OK);
    assert_null(back);
    assert_non_null(strstr(err.message, "bad.npy"));
    remove(bad);
    remove(npy);
    assert_int_equal(hq_npz_read_set_file(npy, &back, &err), HQ_ERR_NOT_FOUND);
    assert_null(back);
    remove(npz_path);
    rmdir(dir);
    hq_tensor_destroy(t);
    hq_npz_destroy(npz);
}

/* ---- zip64 ------------------------------------------------------------------------------ */

static void reads_zip64_records_written_with_the_forced_zip64_knob(void **state)
{
    (void)state;
    const char payload[] = "not an npy, just bytes";
    for (int deflate = 0; deflate <= 1; deflate++) {
        for (int force = 0; force <= 1; force++) {
            hqi_zip_writer_t *w;
            assert_int_equal(hqi_zip_writer_create(&w, NULL), HQ_OK);
            hqi_zip_writer_force_zip64(w, force);
            assert_int_equal(hqi_zip_writer_add(w, "a", payload, sizeof payload, deflate, NULL),
                             HQ_OK);
            assert_int_equal(hqi_zip_writer_add(w, "b/c:0", payload, 5, deflate, NULL), HQ_OK);
            void *bytes;
            size_t len;
            assert_int_equal(hqi_zip_writer_finish(w, &bytes, &len, NULL), HQ_OK);
            const uint8_t *b = bytes;
            bool has64 = false;
            for (size_t i = 0; i + 4 <= len; i++)
                has64 |= memcmp(b + i, "PK\6\6", 4) == 0;
            assert_int_equal(has64, force);
            /* local header sizes hold the zip64 marker only when forced */
            assert_int_equal(b[18] == 0xff && b[22] == 0xff, force);
            hqi_zip_t zip;
            assert_int_equal(hqi_zip_open(b, len, "z.zip", &zip, NULL), HQ_OK);
            assert_int_equal(zip.member_count, 2);
            assert_int_equal(zip.members[0].size, sizeof payload);
            assert_string_equal(zip.members[1].name, "b/c:0");
            void *out;
            assert_int_equal(hqi_zip_extract(&zip, &zip.members[1], "z.zip", &out, NULL), HQ_OK);
            assert_memory_equal(out, payload, 5);
            assert_int_equal(((char *)out)[5], 0);
            free(out);
            hqi_zip_close(&zip);
            free(bytes);
        }
    }
}

static void refuses_zip64_markers_without_zip64_records(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = one_member_zip("x.npy", "abc", 3, false, &len);
    size_t cd = find_sig(b, len, "PK\1\2");
    memset(b + cd + 24, 0xff, 4); /* uncompressed size := 0xffffffff, no extra field */
    expect_npz_refusal(b, len, HQ_ERR_FORMAT, "no zip64 extra field");
    free(b);
    b = one_member_zip("x.npy", "abc", 3, false, &len);
    memset(b + len - 6, 0xff, 4); /* central directory offset := 0xffffffff, no locator */
    expect_npz_refusal(b, len, HQ_ERR_FORMAT, "needs zip64 records");
    free(b);
}

static void writes_zip64_end_records_for_more_than_65535_members(void **state)
{
    (void)state;
    hq_npz_t *npz;
    assert_int_equal(hq_npz_create(&npz, NULL), HQ_OK);
    int64_t shape[] = {1};
    char key[32];
    for (int i = 0; i < 70000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(hq_npz_put(npz, key, ramp(HQ_DTYPE_UINT8, 1, shape), NULL), HQ_OK);
    }
    assert_int_equal(hq_npz_remove(npz, "k5", NULL), HQ_OK);
    assert_non_null(hq_npz_get(npz, "k69999"));
    assert_null(hq_npz_get(npz, "k5"));
    size_t len;
    uint8_t *b = encode(npz, false, &len);
    find_sig(b, len, "PK\6\6");
    /* the classic end record says "see zip64" for the entry count */
    assert_int_equal(b[len - 12] | b[len - 11] << 8, 0xffff);
    hq_npz_t *back;
    assert_int_equal(hq_npz_read_memory(b, len, "many.npz", &back, NULL), HQ_OK);
    assert_int_equal(hq_npz_count(back), 69999);
    assert_string_equal(hq_npz_key(back, 69998), "k69999");
    hq_npz_destroy(back);
    hq_npz_destroy(npz);
    free(b);
}

/* ---- refusals --------------------------------------------------------------------------- */

static void refuses_a_member_whose_crc_does_not_match(void **state)
{
    (void)state;
    hq_npz_t *npz = sample_set();
    for (int compress = 0; compress <= 1; compress++) {
        size_t len;
        uint8_t *b = encode(npz, compress, &len);
        size_t cd = find_sig(b, len, "PK\1\2");
        b[cd + 16] ^= 1; /* first member's CRC in the central directory */
        expect_npz_refusal(b, len, HQ_ERR_FORMAT,
                           "p.npz: zip member 'net/conv1/kernel:0.npy': CRC-32 mismatch");
        b[cd + 16] ^= 1;
        hq_npz_t *ok;
        assert_int_equal(hq_npz_read_memory(b, len, "p.npz", &ok, NULL), HQ_OK);
        hq_npz_destroy(ok);
        free(b);
    }
    hq_npz_destroy(npz);
}

static void refuses_files_that_are_not_zip_archives(void **state)
{
    (void)state;
    expect_npz_refusal((const uint8_t *)"hello", 5, HQ_ERR_FORMAT, "p.npz: not a zip archive");
    uint8_t zeros[100] = {0};
    expect_npz_refusal(zeros, sizeof zeros, HQ_ERR_FORMAT, "no end of central directory");
    hq_npz_t *npz = sample_set();
    size_t len;
    uint8_t *b = encode(npz, true, &len);
    /* cut inside the central directory: the end record is gone */
    expect_npz_refusal(b, len - 30, HQ_ERR_FORMAT, "p.npz: not a zip archive");
    /* the end record points the central directory past the file */
    b[len - 6] = 0xf0;
    expect_npz_refusal(b, len, HQ_ERR_FORMAT, "lies outside the file");
    free(b);
    hq_npz_destroy(npz);
}

static void refuses_unsupported_compression_methods_and_encryption(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = one_member_zip("x.npy", "abc", 3, false, &len);
    size_t cd = find_sig(b, len, "PK\1\2");
    b[8] = 12; /* bzip2, local and central */
    b[cd + 10] = 12;
    expect_npz_refusal(b, len, HQ_ERR_UNSUPPORTED, "compression method 12 is not supported");
    b[8] = 0;
    b[cd + 10] = 0;
    b[cd + 8] = 1; /* encrypted */
    expect_npz_refusal(b, len, HQ_ERR_UNSUPPORTED, "'x.npy': encrypted");
    free(b);
}

static void refuses_local_headers_that_disagree_with_the_directory(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = one_member_zip("x.npy", "abc", 3, false, &len);
    b[30] = 'y'; /* name in the local header */
    expect_npz_refusal(b, len, HQ_ERR_FORMAT, "local header names another file");
    b[30] = 'x';
    b[0] = 'Q';
    expect_npz_refusal(b, len, HQ_ERR_FORMAT, "no local header at offset 0");
    free(b);
}

static void refuses_deflated_members_claiming_an_impossible_size(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = one_member_zip("x.npy", "abc", 3, true, &len);
    size_t cd = find_sig(b, len, "PK\1\2");
    b[cd + 27] = 0x7f; /* uncompressed size ~2 GB from 5 deflated bytes */
    expect_npz_refusal(b, len, HQ_ERR_FORMAT, "claims 2130706435 bytes from 5 deflated bytes");
    b[cd + 27] = 0;
    b[cd + 24] = 4; /* 4 bytes declared, the stream holds 3 */
    expect_npz_refusal(b, len, HQ_ERR_FORMAT, "deflate data ends before the declared size");
    b[cd + 24] = 2; /* 2 declared, the stream holds 3 */
    expect_npz_refusal(b, len, HQ_ERR_FORMAT, "inflates to more than the declared size");
    free(b);
}

static void refuses_members_that_are_not_npy_naming_the_member(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = one_member_zip("net/x:0.npy", "abc", 3, true, &len);
    expect_npz_refusal(b, len, HQ_ERR_FORMAT,
                       "p.npz member 'net/x:0.npy': not a .npy file (bad magic)");
    free(b);
}

static void refuses_an_archive_with_the_same_key_twice(void **state)
{
    (void)state;
    int64_t shape[] = {1};
    hq_tensor_t *t = ramp(HQ_DTYPE_UINT8, 1, shape);
    void *npy;
    size_t npy_len;
    assert_int_equal(hq_npy_write_memory(t, &npy, &npy_len, NULL), HQ_OK);
    hqi_zip_writer_t *w;
    assert_int_equal(hqi_zip_writer_create(&w, NULL), HQ_OK);
    assert_int_equal(hqi_zip_writer_add(w, "a.npy", npy, npy_len, false, NULL), HQ_OK);
    assert_int_equal(hqi_zip_writer_add(w, "a", npy, npy_len, true, NULL), HQ_OK);
    void *bytes;
    size_t len;
    assert_int_equal(hqi_zip_writer_finish(w, &bytes, &len, NULL), HQ_OK);
    expect_npz_refusal(bytes, len, HQ_ERR_FORMAT, "key 'a' appears twice");
    free(bytes);
    free(npy);
    hq_tensor_destroy(t);
}

/* ---- streaming -------------------------------------------------------------------------- */

static void streams_a_deflated_member_in_pieces_and_checks_its_crc_at_the_end(void **state)
{
    (void)state;
    enum { N = 200000 };
    uint8_t *data = malloc(N);
    assert_non_null(data);
    for (size_t i = 0; i < N; i++)
        data[i] = (uint8_t)((i * 7) ^ (i >> 8));
    for (int deflate = 0; deflate <= 1; deflate++) {
        for (int corrupt = 0; corrupt <= 1; corrupt++) {
            size_t len;
            uint8_t *b = one_member_zip("big.npy", data, N, deflate, &len);
            size_t cd = find_sig(b, len, "PK\1\2");
            b[cd + 16] ^= (uint8_t)corrupt;
            hqi_zip_t zip;
            assert_int_equal(hqi_zip_open(b, len, "d.npz", &zip, NULL), HQ_OK);
            hqi_zip_stream_t *s;
            hq_error_t err;
            assert_int_equal(hqi_zip_stream_open(&zip, &zip.members[0], "d.npz", &s, &err),
                             HQ_OK);
            uint8_t buf[1000];
            assert_int_equal(hqi_zip_stream_read(s, buf, 10, &err), HQ_OK);
            assert_memory_equal(buf, data, 10);
            assert_int_equal(hqi_zip_stream_skip(s, 100000, &err), HQ_OK);
            assert_int_equal(hqi_zip_stream_read(s, buf, 1000, &err), HQ_OK);
            assert_memory_equal(buf, data + 100010, 1000);
            assert_int_equal(hqi_zip_stream_skip(s, N - 101010 - 1, &err), HQ_OK);
            /* the CRC is checked when the last byte is delivered */
            assert_int_equal(hqi_zip_stream_read(s, buf, 1, &err),
                             corrupt ? HQ_ERR_FORMAT : HQ_OK);
            if (corrupt)
                assert_non_null(strstr(err.message, "d.npz: zip member 'big.npy': CRC-32 mismatch"));
            else
                assert_int_equal(buf[0], data[N - 1]);
            /* nothing is left */
            assert_int_not_equal(hqi_zip_stream_read(s, buf, 1, &err), HQ_OK);
            hqi_zip_stream_close(s);
            hqi_zip_close(&zip);
            free(b);
        }
    }
    free(data);
}

static void stream_refuses_reads_past_the_member_end(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = one_member_zip("s.npy", "0123456789", 10, true, &len);
    hqi_zip_t zip;
    assert_int_equal(hqi_zip_open(b, len, "s.npz", &zip, NULL), HQ_OK);
    hqi_zip_stream_t *s;
    hq_error_t err;
    assert_int_equal(hqi_zip_stream_open(&zip, &zip.members[0], "s.npz", &s, &err), HQ_OK);
    char buf[11];
    assert_int_equal(hqi_zip_stream_read(s, buf, 11, &err), HQ_ERR_FORMAT);
    assert_non_null(strstr(err.message, "s.npz: zip member 's.npy': member ends before"));
    hqi_zip_stream_close(s);
    assert_int_equal(hqi_zip_stream_open(&zip, &zip.members[0], "s.npz", &s, &err), HQ_OK);
    assert_int_equal(hqi_zip_stream_read(s, buf, 10, &err), HQ_OK);
    assert_memory_equal(buf, "0123456789", 10);
    hqi_zip_stream_close(s);
    hqi_zip_close(&zip);
    free(b);
}

/* ---- numpy round trip (driven by tests/e2e/numpy_roundtrip.sh) -------------------------- */

static char *path_join(const char *dir, const char *a, const char *b)
{
    size_t n = strlen(dir) + strlen(a) + strlen(b) + 3;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s%s", dir, a, b);
    return p;
}

static void check_against_raw(const hq_tensor_t *t, const char *dir, char **f, const char *what)
{
    if (strcmp(hq_dtype_name(t->dtype), f[3]) != 0)
        fail_msg("%s: dtype %s, numpy says %s", what, hq_dtype_name(t->dtype), f[3]);
    char shape[256] = "";
    for (int i = 0; i < t->ndim; i++)
        snprintf(shape + strlen(shape), sizeof shape - strlen(shape), i ? ",%lld" : "%lld",
                 (long long)t->shape[i]);
    if (strcmp(shape, f[4]) != 0)
        fail_msg("%s: shape %s, numpy says %s", what, shape, f[4]);
    char *raw_path = path_join(dir, f[5], "");
    FILE *fp = fopen(raw_path, "rb");
    assert_non_null(fp);
    uint8_t *raw = malloc(t->nbytes + 1);
    assert_non_null(raw);
    size_t got = fread(raw, 1, t->nbytes + 1, fp);
    fclose(fp);
    if (got != t->nbytes || (t->nbytes && memcmp(raw, t->data, t->nbytes) != 0))
        fail_msg("%s: data differs from numpy's", what);
    free(raw);
    free(raw_path);
}

/* The same set as a deflated archive with every zip64 record, for numpy to read. */
static void write_forced_zip64(const hq_npz_t *npz, const char *out_dir, const char *name)
{
    hqi_zip_writer_t *w;
    assert_int_equal(hqi_zip_writer_create(&w, NULL), HQ_OK);
    hqi_zip_writer_force_zip64(w, true);
    for (size_t i = 0; i < hq_npz_count(npz); i++) {
        void *npy;
        size_t len;
        assert_int_equal(hq_npy_write_memory(hq_npz_get_index(npz, i), &npy, &len, NULL), HQ_OK);
        char member[512];
        snprintf(member, sizeof member, "%s.npy", hq_npz_key(npz, i));
        assert_int_equal(hqi_zip_writer_add(w, member, npy, len, true, NULL), HQ_OK);
        free(npy);
    }
    void *bytes;
    size_t len;
    assert_int_equal(hqi_zip_writer_finish(w, &bytes, &len, NULL), HQ_OK);
    char *path = path_join(out_dir, name, ".zip64.npz");
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(bytes, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
    free(path);
    free(bytes);
}

static void reads_and_writes_every_numpy_file_in_the_roundtrip_folder(void **state)
{
    (void)state;
    const char *dir = getenv("HQ_ROUNDTRIP_DIR");
    if (!dir || !*dir)
        skip(); /* only the e2e test numpy_roundtrip.sh provides the files */
    char *manifest = path_join(dir, "manifest.tsv", "");
    char *out_dir = path_join(dir, "out", "");
    mkdir(out_dir, 0755);
    FILE *fp = fopen(manifest, "r");
    assert_non_null(fp);
    char *line = NULL;
    size_t cap = 0;
    int checked = 0;
    char last_npz[256] = "";
    hq_npz_t *npz = NULL;
    while (getline(&line, &cap, fp) > 0) {
        line[strcspn(line, "\n")] = 0;
        char *f[6] = {0};
        int n = 0;
        for (char *tok = line, *tab; n < 6 && tok; tok = tab ? tab + 1 : NULL) {
            tab = strchr(tok, '\t');
            if (tab)
                *tab = 0;
            f[n++] = tok;
        }
        hq_error_t err = {0};
        char *path = path_join(dir, f[1], "");
        if (strcmp(f[0], "refuse") == 0) {
            hq_tensor_t *t = NULL;
            char field[64];
            snprintf(field, sizeof field, "header field '%s'", f[2]);
            if (hq_npy_read_file(path, &t, &err) == HQ_OK || !strstr(err.message, field) ||
                !strstr(err.message, f[1]))
                fail_msg("%s: expected a refusal naming %s, got: %s", f[1], field, err.message);
            printf("refused as expected: %s\n", err.message);
        } else if (strcmp(f[0], "npy") == 0) {
            hq_tensor_t *t;
            if (hq_npy_read_file(path, &t, &err) != HQ_OK)
                fail_msg("%s", err.message);
            check_against_raw(t, dir, f, f[1]);
            char *out = path_join(out_dir, f[1], "");
            if (hq_npy_write_file(out, t, &err) != HQ_OK)
                fail_msg("%s", err.message);
            free(out);
            hq_tensor_destroy(t);
        } else if (strcmp(f[0], "npz") == 0) {
            if (strcmp(last_npz, f[1]) != 0) {
                hq_npz_destroy(npz);
                if (hq_npz_read_file(path, &npz, &err) != HQ_OK)
                    fail_msg("%s", err.message);
                snprintf(last_npz, sizeof last_npz, "%s", f[1]);
                char *stored = path_join(out_dir, f[1], ".stored.npz");
                char *deflated = path_join(out_dir, f[1], ".deflated.npz");
                if (hq_npz_write_file(stored, npz, false, &err) != HQ_OK ||
                    hq_npz_write_file(deflated, npz, true, &err) != HQ_OK)
                    fail_msg("%s", err.message);
                free(stored);
                free(deflated);
                write_forced_zip64(npz, out_dir, f[1]);
            }
            const hq_tensor_t *t = hq_npz_get(npz, f[2]);
            if (!t)
                fail_msg("%s: no key '%s'", f[1], f[2]);
            check_against_raw(t, dir, f, f[2]);
        } else {
            fail_msg("manifest: unknown line kind '%s'", f[0]);
        }
        free(path);
        checked++;
    }
    hq_npz_destroy(npz);
    free(line);
    fclose(fp);
    printf("hq checked %d manifest entries\n", checked);
    assert_true(checked > 0);
    char *done = path_join(out_dir, "DONE", "");
    FILE *d = fopen(done, "w");
    assert_non_null(d);
    fclose(d);
    free(done);
    free(out_dir);
    free(manifest);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trips_keys_with_slashes_and_colons_stored_and_deflated),
        cmocka_unit_test(writes_the_same_bytes_for_the_same_set),
        cmocka_unit_test(puts_replaces_gets_and_removes_keys_in_order),
        cmocka_unit_test(reads_and_writes_an_empty_set),
        cmocka_unit_test(writes_and_reads_files),
        cmocka_unit_test(reads_an_npy_or_an_npz_as_a_set),
        cmocka_unit_test(reads_zip64_records_written_with_the_forced_zip64_knob),
        cmocka_unit_test(refuses_zip64_markers_without_zip64_records),
        cmocka_unit_test(writes_zip64_end_records_for_more_than_65535_members),
        cmocka_unit_test(refuses_a_member_whose_crc_does_not_match),
        cmocka_unit_test(refuses_files_that_are_not_zip_archives),
        cmocka_unit_test(refuses_unsupported_compression_methods_and_encryption),
        cmocka_unit_test(refuses_local_headers_that_disagree_with_the_directory),
        cmocka_unit_test(refuses_deflated_members_claiming_an_impossible_size),
        cmocka_unit_test(refuses_members_that_are_not_npy_naming_the_member),
        cmocka_unit_test(refuses_an_archive_with_the_same_key_twice),
        cmocka_unit_test(streams_a_deflated_member_in_pieces_and_checks_its_crc_at_the_end),
        cmocka_unit_test(stream_refuses_reads_past_the_member_end),
        cmocka_unit_test(reads_and_writes_every_numpy_file_in_the_roundtrip_folder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
