/* test_tar.c — the in-memory tar reader and writer: round trips, long names in every flavour,
 * archives written by Python's tarfile and GNU tar (tests/fixtures/tar/make_fixtures.py), and
 * hostile headers. With HQ_TAR_OUT set, also writes a tar for tests/e2e/tar_interop.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "io/tar.h"
#include "util/util.h"

#define LONG_DIR                                                                                   \
    "models/a-directory-name-long-enough-that-paths-below-it-need-the-ustar-prefix-field-"         \
    "dddddddddd"
#define SPLIT_LONG LONG_DIR "/weights.bin"
#define FLAT_LONG                                                                                  \
    "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"  \
    "nnnnnnnnnnnnnnnnnnnnnnnnnnnnn.txt"
#define UTF8_NAME                                                                                  \
    "donn\xc3\xa9"                                                                                 \
    "es.txt"

/* ---- helpers ------------------------------------------------------------------------------- */

static void *load_fixture(const char *file, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tar/%s", HQ_FIXTURES, file);
    void *bytes = NULL;
    hq_error_t err = {0};
    hq_status_t st = hqi_read_file(path, (size_t)1 << 24, &bytes, len, &err);
    if (st != HQ_OK)
        fail_msg("%s", err.message);
    return bytes;
}

static const hqi_tar_member_t *find(const hqi_tar_t *tar, const char *name)
{
    for (size_t i = 0; i < tar->count; i++)
        if (strcmp(tar->members[i].name, name) == 0)
            return &tar->members[i];
    return NULL;
}

static void expect_member(const hqi_tar_t *tar, const char *name, const void *data, size_t size)
{
    const hqi_tar_member_t *m = find(tar, name);
    if (!m)
        fail_msg("member '%s' not found", name);
    assert_int_equal(m->size, size);
    if (size)
        assert_memory_equal(m->data, data, size);
    assert_int_equal(m->data[size], 0); /* the documented trailing NUL */
}

static uint8_t weights[768];

static void fill_weights(void)
{
    for (size_t i = 0; i < sizeof weights; i++)
        weights[i] = (uint8_t)(i % 256);
}

/* The members every fixture holds (see make_fixtures.py); `flat` and `utf8` where present. */
static void expect_fixture(const char *file, int flat, int utf8)
{
    size_t len = 0;
    void *bytes = load_fixture(file, &len);
    hqi_tar_t tar;
    hq_error_t err = {0};
    hq_status_t st = hqi_tar_read(bytes, len, file, SIZE_MAX, &tar, &err);
    if (st != HQ_OK)
        fail_msg("%s", err.message);
    fill_weights();
    assert_int_equal(tar.count, (size_t)(3 + flat + utf8)); /* the directory is skipped */
    expect_member(&tar, "hello.txt", "hello, tar\n", 11);
    expect_member(&tar, "empty.txt", "", 0);
    expect_member(&tar, SPLIT_LONG, weights, sizeof weights);
    if (flat)
        expect_member(&tar, FLAT_LONG, "flat long name\n", 15);
    if (utf8)
        expect_member(&tar, UTF8_NAME, "utf-8\n", 6);
    hqi_tar_free(&tar);
    free(bytes);
}

static void expect_refused(const void *bytes, size_t len, hq_status_t status, const char *message)
{
    hqi_tar_t tar;
    hq_error_t err = {0};
    hq_status_t st = hqi_tar_read(bytes, len, "m.har", SIZE_MAX, &tar, &err);
    assert_int_equal(st, status);
    assert_int_equal(err.status, status);
    assert_string_equal(err.message, message);
    assert_int_equal(tar.count, 0);
    assert_null(tar.members);
}

/* Writes one member with our writer; the caller frees *bytes. */
static uint8_t *write_one(const char *name, const void *data, size_t size, size_t *len)
{
    hqi_tar_member_t m = {(char *)name, (uint8_t *)data, size};
    void *bytes = NULL;
    hq_error_t err = {0};
    assert_int_equal(hqi_tar_write(&m, 1, &bytes, len, &err), HQ_OK);
    return bytes;
}

/* Recomputes the checksum of the header at `h` after a test edited it. */
static void fix_checksum(uint8_t *h)
{
    unsigned sum = 0;
    memset(h + 148, ' ', 8);
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

/* ---- writer ------------------------------------------------------------------------------- */

static void writes_then_reads_members_in_order_with_contents(void **state)
{
    (void)state;
    fill_weights();
    hqi_tar_member_t in[] = {
        {"net.metadata.json", (uint8_t *)"{}", 2},
        {"empty", (uint8_t *)"", 0},
        {"exactly-512", weights, 512},
        {"net.npz", weights, sizeof weights},
    };
    void *bytes = NULL;
    size_t len = 0;
    hq_error_t err = {0};
    assert_int_equal(hqi_tar_write(in, 4, &bytes, &len, &err), HQ_OK);
    hqi_tar_t tar;
    assert_int_equal(hqi_tar_read(bytes, len, "t.tar", SIZE_MAX, &tar, &err), HQ_OK);
    assert_int_equal(tar.count, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(tar.members[i].name, in[i].name);
        assert_int_equal(tar.members[i].size, in[i].size);
        if (in[i].size)
            assert_memory_equal(tar.members[i].data, in[i].data, in[i].size);
    }
    hqi_tar_free(&tar);
    free(bytes);
}

static void writer_is_deterministic_and_pads_to_a_10240_byte_record(void **state)
{
    (void)state;
    size_t len1 = 0, len2 = 0;
    uint8_t *a = write_one("a.txt", "abc", 3, &len1);
    uint8_t *b = write_one("a.txt", "abc", 3, &len2);
    assert_int_equal(len1, 10240);
    assert_int_equal(len2, len1);
    assert_memory_equal(a, b, len1);
    /* header fields: mode 0644, uid/gid 0, mtime 0, empty owner, ustar magic */
    assert_string_equal((char *)a + 100, "0000644");
    assert_string_equal((char *)a + 108, "0000000");
    assert_string_equal((char *)a + 116, "0000000");
    assert_string_equal((char *)a + 124, "00000000003");
    assert_string_equal((char *)a + 136, "00000000000");
    assert_int_equal(a[156], '0');
    assert_memory_equal(a + 257,
                        "ustar\0"
                        "00",
                        8);
    assert_int_equal(a[265], 0);
    assert_int_equal(a[297], 0);
    free(a);
    free(b);

    void *empty = NULL;
    size_t len = 0;
    hq_error_t err = {0};
    assert_int_equal(hqi_tar_write(NULL, 0, &empty, &len, &err), HQ_OK);
    assert_int_equal(len, 10240);
    hqi_tar_t tar;
    assert_int_equal(hqi_tar_read(empty, len, "e.tar", SIZE_MAX, &tar, &err), HQ_OK);
    assert_int_equal(tar.count, 0);
    hqi_tar_free(&tar);
    free(empty);
}

static void writer_uses_the_ustar_prefix_for_long_names_that_split_at_a_slash(void **state)
{
    (void)state;
    size_t len = 0;
    uint8_t *t = write_one(SPLIT_LONG, "w", 1, &len);
    assert_int_equal(t[156], '0'); /* no GNU 'L' record in front */
    assert_string_equal((char *)t, "weights.bin");
    assert_string_equal((char *)t + 345, LONG_DIR);
    hqi_tar_t tar;
    hq_error_t err = {0};
    assert_int_equal(hqi_tar_read(t, len, "t.tar", SIZE_MAX, &tar, &err), HQ_OK);
    assert_int_equal(tar.count, 1);
    assert_string_equal(tar.members[0].name, SPLIT_LONG);
    hqi_tar_free(&tar);
    free(t);
}

static void writer_uses_a_gnu_longname_record_for_long_names_without_a_slash(void **state)
{
    (void)state;
    size_t len = 0;
    uint8_t *t = write_one(FLAT_LONG, "f", 1, &len);
    assert_int_equal(t[156], 'L');
    assert_string_equal((char *)t, "././@LongLink");
    assert_string_equal((char *)t + 512, FLAT_LONG);
    assert_int_equal(t[1024 + 156], '0');
    hqi_tar_t tar;
    hq_error_t err = {0};
    assert_int_equal(hqi_tar_read(t, len, "t.tar", SIZE_MAX, &tar, &err), HQ_OK);
    assert_int_equal(tar.count, 1);
    assert_string_equal(tar.members[0].name, FLAT_LONG);
    assert_int_equal(tar.members[0].size, 1);
    hqi_tar_free(&tar);
    free(t);
}

static void writer_refuses_an_empty_member_name(void **state)
{
    (void)state;
    hqi_tar_member_t m = {"", (uint8_t *)"x", 1};
    void *bytes = (void *)1;
    size_t len = 1;
    hq_error_t err = {0};
    assert_int_equal(hqi_tar_write(&m, 1, &bytes, &len, &err), HQ_ERR_ARGUMENT);
    assert_null(bytes);
    assert_int_equal(len, 0);
}

/* ---- archives written by other tools ----------------------------------------------------- */

static void reads_python_ustar_archive(void **state)
{
    (void)state;
    expect_fixture("py_ustar.tar", 0, 0);
}
static void reads_python_gnu_archive_with_longname_records(void **state)
{
    (void)state;
    expect_fixture("py_gnu.tar", 1, 0);
}
static void reads_python_pax_archive_with_path_records(void **state)
{
    (void)state;
    expect_fixture("py_pax.tar", 1, 1);
}
static void reads_gnu_tar_ustar_archive(void **state)
{
    (void)state;
    expect_fixture("gnutar_ustar.tar", 0, 0);
}
static void reads_gnu_tar_gnu_archive(void **state)
{
    (void)state;
    expect_fixture("gnutar_gnu.tar", 1, 0);
}
static void reads_gnu_tar_pax_archive(void **state)
{
    (void)state;
    expect_fixture("gnutar_pax.tar", 1, 1);
}

static void refuses_links_devices_and_fifos_naming_the_member(void **state)
{
    (void)state;
    static const struct {
        const char *file, *message;
    } cases[] = {
        {"py_symlink.tar", "m.har: member 'refused-symlink' is a symbolic link; only regular "
                           "files are accepted"},
        {"py_hardlink.tar", "m.har: member 'refused-hardlink' is a hard link; only regular "
                            "files are accepted"},
        {"py_fifo.tar", "m.har: member 'refused-fifo' is a FIFO; only regular files are "
                        "accepted"},
        {"py_chardev.tar", "m.har: member 'refused-chardev' is a character device; only "
                           "regular files are accepted"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = 0;
        void *bytes = load_fixture(cases[i].file, &len);
        expect_refused(bytes, len, HQ_ERR_UNSUPPORTED, cases[i].message);
        free(bytes);
    }
}

/* ---- hostile input ------------------------------------------------------------------------ */

static void reports_a_truncated_member_with_both_sizes(void **state)
{
    (void)state;
    uint8_t *data = calloc(5000, 1);
    size_t len = 0;
    uint8_t *t = write_one("net.hn", data, 5000, &len);
    /* the whole member is readable ... */
    hqi_tar_t tar;
    hq_error_t err = {0};
    assert_int_equal(hqi_tar_read(t, len, "m.har", SIZE_MAX, &tar, &err), HQ_OK);
    hqi_tar_free(&tar);
    /* ... until the buffer ends 1200 bytes into its data */
    expect_refused(t, 512 + 1200, HQ_ERR_FORMAT,
                   "m.har: member 'net.hn': truncated, header says 5000 bytes, 1200 remain");
    free(t);
    free(data);
}

static void reports_a_missing_end_of_archive_marker_as_truncated(void **state)
{
    (void)state;
    size_t len = 0;
    uint8_t *t = write_one("net.hn", "{}", 2, &len);
    expect_refused(t, 1024, HQ_ERR_FORMAT,
                   "m.har: truncated: no end-of-archive marker after member 'net.hn'");
    expect_refused(t, 1024 + 100, HQ_ERR_FORMAT,
                   "m.har: truncated: header at offset 1024 has 100 of 512 bytes");
    hqi_tar_t tar;
    hq_error_t err = {0};
    assert_int_equal(hqi_tar_read(t, 1536, "m.har", SIZE_MAX, &tar, &err), HQ_OK);
    hqi_tar_free(&tar);
    free(t);
}

static void rejects_a_bad_checksum(void **state)
{
    (void)state;
    size_t len = 0;
    uint8_t *t = write_one("net.hn", "{}", 2, &len);
    t[0] = 'N'; /* name changed, checksum not */
    expect_refused(t, len, HQ_ERR_FORMAT,
                   "m.har: header at offset 0: bad checksum (header says 4298, computed 4266)");
    fix_checksum(t);
    hqi_tar_t tar;
    hq_error_t err = {0};
    assert_int_equal(hqi_tar_read(t, len, "m.har", SIZE_MAX, &tar, &err), HQ_OK);
    assert_string_equal(tar.members[0].name, "Net.hn");
    hqi_tar_free(&tar);
    free(t);
}

static void refuses_empty_input_and_text_that_is_not_a_tar(void **state)
{
    (void)state;
    expect_refused("", 0, HQ_ERR_FORMAT, "m.har: empty file, not a tar archive");
    char text[1024];
    memset(text, 'x', sizeof text);
    expect_refused(text, sizeof text, HQ_ERR_FORMAT,
                   "m.har: header at offset 0: checksum field is not an octal number (not a tar "
                   "archive?)");
}

static void reads_a_base256_size_field(void **state)
{
    (void)state;
    fill_weights();
    size_t len = 0;
    uint8_t *t = write_one("big.bin", weights, 600, &len);
    memset(t + 124, 0, 12);
    t[124] = 0x80;
    t[134] = 600 >> 8;
    t[135] = 600 & 0xff;
    fix_checksum(t);
    hqi_tar_t tar;
    hq_error_t err = {0};
    assert_int_equal(hqi_tar_read(t, len, "m.har", SIZE_MAX, &tar, &err), HQ_OK);
    assert_int_equal(tar.count, 1);
    assert_int_equal(tar.members[0].size, 600);
    assert_memory_equal(tar.members[0].data, weights, 600);
    hqi_tar_free(&tar);

    t[124] = 0xff; /* negative base-256 */
    fix_checksum(t);
    expect_refused(t, len, HQ_ERR_FORMAT, "m.har: member 'big.bin': size field is not a number");
    free(t);
}

static void enforces_the_member_size_limit_naming_the_member(void **state)
{
    (void)state;
    fill_weights();
    size_t len = 0;
    uint8_t *t = write_one("net.npz", weights, 700, &len);
    hqi_tar_t tar;
    hq_error_t err = {0};
    assert_int_equal(hqi_tar_read(t, len, "m.har", 700, &tar, &err), HQ_OK);
    hqi_tar_free(&tar);
    assert_int_equal(hqi_tar_read(t, len, "m.har", 699, &tar, &err), HQ_ERR_LIMIT);
    assert_string_equal(err.message,
                        "m.har: member 'net.npz': 700 bytes, more than the limit of 699 bytes");
    free(t);
}

static void reads_a_pax_size_that_overrides_the_header(void **state)
{
    (void)state;
    /* a pax header "size=3" before a member whose own size field says 0 */
    static const char record[] = "10 size=3\n";
    hqi_tar_member_t in[] = {{"PaxHeaders/a", (uint8_t *)record, 10}, {"a", (uint8_t *)"", 0}};
    void *bytes = NULL;
    size_t len = 0;
    hq_error_t err = {0};
    assert_int_equal(hqi_tar_write(in, 2, &bytes, &len, &err), HQ_OK);
    uint8_t *t = bytes;
    t[156] = 'x';
    fix_checksum(t);
    memcpy(t + 1536, "abc", 3); /* the member's data, where its header's size 0 puts nothing */
    hqi_tar_t tar;
    assert_int_equal(hqi_tar_read(t, len, "m.har", SIZE_MAX, &tar, &err), HQ_OK);
    assert_int_equal(tar.count, 1);
    assert_string_equal(tar.members[0].name, "a");
    assert_int_equal(tar.members[0].size, 3);
    assert_memory_equal(tar.members[0].data, "abc", 3);
    hqi_tar_free(&tar);

    t[512 + 9] = 'z'; /* "10 size=3z": the record no longer ends in a newline */
    expect_refused(t, len, HQ_ERR_FORMAT,
                   "m.har: pax header at offset 0: malformed record at byte 0");
    free(t);
}

static void skips_directories_and_keeps_member_names_printable_in_errors(void **state)
{
    (void)state;
    size_t len = 0;
    uint8_t *t = write_one("dir/", "", 0, &len);
    t[156] = '5';
    fix_checksum(t);
    hqi_tar_t tar;
    hq_error_t err = {0};
    assert_int_equal(hqi_tar_read(t, len, "m.har", SIZE_MAX, &tar, &err), HQ_OK);
    assert_int_equal(tar.count, 0);
    hqi_tar_free(&tar);

    memcpy(t, "a\nb", 4);
    t[156] = '2';
    fix_checksum(t);
    expect_refused(t, len, HQ_ERR_UNSUPPORTED,
                   "m.har: member 'a?b' is a symbolic link; only regular files are accepted");
    free(t);
}

/* With HQ_TAR_OUT set, writes a tar that tests/e2e/tar_interop.sh checks with GNU tar and Python.
 */
static void writes_an_interop_archive_when_asked(void **state)
{
    (void)state;
    const char *out = getenv("HQ_TAR_OUT");
    if (!out)
        skip();
    fill_weights();
    hqi_tar_member_t in[] = {
        {"hello.txt", (uint8_t *)"hello, tar\n", 11},
        {"empty.txt", (uint8_t *)"", 0},
        {SPLIT_LONG, weights, sizeof weights},
        {FLAT_LONG, (uint8_t *)"flat long name\n", 15},
    };
    void *bytes = NULL;
    size_t len = 0;
    hq_error_t err = {0};
    assert_int_equal(hqi_tar_write(in, 4, &bytes, &len, &err), HQ_OK);
    assert_int_equal(hqi_write_file_atomic(out, bytes, len, &err), HQ_OK);
    free(bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(writes_then_reads_members_in_order_with_contents),
        cmocka_unit_test(writer_is_deterministic_and_pads_to_a_10240_byte_record),
        cmocka_unit_test(writer_uses_the_ustar_prefix_for_long_names_that_split_at_a_slash),
        cmocka_unit_test(writer_uses_a_gnu_longname_record_for_long_names_without_a_slash),
        cmocka_unit_test(writer_refuses_an_empty_member_name),
        cmocka_unit_test(reads_python_ustar_archive),
        cmocka_unit_test(reads_python_gnu_archive_with_longname_records),
        cmocka_unit_test(reads_python_pax_archive_with_path_records),
        cmocka_unit_test(reads_gnu_tar_ustar_archive),
        cmocka_unit_test(reads_gnu_tar_gnu_archive),
        cmocka_unit_test(reads_gnu_tar_pax_archive),
        cmocka_unit_test(refuses_links_devices_and_fifos_naming_the_member),
        cmocka_unit_test(reports_a_truncated_member_with_both_sizes),
        cmocka_unit_test(reports_a_missing_end_of_archive_marker_as_truncated),
        cmocka_unit_test(rejects_a_bad_checksum),
        cmocka_unit_test(refuses_empty_input_and_text_that_is_not_a_tar),
        cmocka_unit_test(reads_a_base256_size_field),
        cmocka_unit_test(enforces_the_member_size_limit_naming_the_member),
        cmocka_unit_test(reads_a_pax_size_that_overrides_the_header),
        cmocka_unit_test(skips_directories_and_keeps_member_names_printable_in_errors),
        cmocka_unit_test(writes_an_interop_archive_when_asked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
