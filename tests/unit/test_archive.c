/* test_archive.c — the model archive: create/save/open round trips, byte-for-byte preservation
 * of untouched and unknown members, lazy decoding, and one clear message per bad archive.
 * With HQ_TAR_OUT set, also writes a .har there for tests/e2e/tar_interop.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hq/archive.h"
#include "io/tar.h"
#include "util/util.h"

/* input [-1,4,4,3] -> relu -> output */
static const char GRAPH_JSON[] =
    "{\"name\":\"net\",\"layers\":{"
    "\"net/in\":{\"type\":\"input_layer\",\"input\":[],\"output\":[\"net/act\"],"
    "\"input_shapes\":[[-1,4,4,3]],\"output_shapes\":[[-1,4,4,3]]},"
    "\"net/act\":{\"type\":\"activation\",\"input\":[\"net/in\"],\"output\":[\"net/out\"],"
    "\"params\":{\"activation\":\"relu\"}},"
    "\"net/out\":{\"type\":\"output_layer\",\"input\":[\"net/act\"],\"output\":[]}}}";
static const char SCRIPT_TEXT[] =
    "normalization1 = normalization([0.0, 0.0, 0.0], [255.0, 255.0, 255.0])\n";
static const char METADATA_OK[] = "{\"state\": \"parsed_model\", \"hn\": \"net.hn\"}";
#define LONG_NOTE                                                                                  \
    "notes/a-folder-name-long-enough-that-the-member-path-is-over-one-hundred-bytes-"              \
    "long/readme.txt"

/* ---- helpers ------------------------------------------------------------------------------- */

static void check(hq_status_t st, const hq_error_t *err)
{
    if (st != HQ_OK)
        fail_msg("%s", err->message);
}

static hq_graph_t *make_graph(void)
{
    hq_graph_t *g = NULL;
    hq_error_t err = {0};
    check(hq_graph_from_json(GRAPH_JSON, strlen(GRAPH_JSON), "test.hn", &g, &err), &err);
    return g;
}

/* A params set with one float kernel "net/act/kernel:0" = {v, v+1, v+2, v+3} (2x2). */
static hq_npz_t *make_params(float v)
{
    hq_error_t err = {0};
    hq_npz_t *npz = NULL;
    check(hq_npz_create(&npz, &err), &err);
    int64_t shape[2] = {2, 2};
    hq_tensor_t *t = NULL;
    check(hq_tensor_create(HQ_DTYPE_FLOAT32, 2, shape, &t, &err), &err);
    float *f = t->data;
    for (int i = 0; i < 4; i++)
        f[i] = v + (float)i;
    check(hq_npz_put(npz, "net/act/kernel:0", t, &err), &err);
    return npz;
}

static hq_archive_t *make_archive(void)
{
    hq_error_t err = {0};
    hq_archive_t *a = NULL;
    check(hq_archive_create("net", &a, &err), &err);
    check(hq_archive_set_graph(a, make_graph(), &err), &err);
    check(hq_archive_set_params(a, HQ_PARAMS_NATIVE, make_params(1.0f), &err), &err);
    check(hq_archive_set_params(a, HQ_PARAMS_QUANTIZED, make_params(10.0f), &err), &err);
    hq_script_t *script = NULL;
    check(hq_script_parse(SCRIPT_TEXT, strlen(SCRIPT_TEXT), "t.alls", &script, &err), &err);
    check(hq_archive_set_script(a, script, &err), &err);
    check(hq_archive_set_state(a, HQ_STATE_QUANTIZED, &err), &err);
    check(hq_archive_set_hw_arch(a, "hailo8l", &err), &err);
    return a;
}

static uint8_t *save(hq_archive_t *a, size_t *len)
{
    void *bytes = NULL;
    hq_error_t err = {0};
    check(hq_archive_save_memory(a, &bytes, len, &err), &err);
    return bytes;
}

static hq_archive_t *reopen(const void *bytes, size_t len)
{
    hq_archive_t *a = NULL;
    hq_error_t err = {0};
    check(hq_archive_open_memory(bytes, len, "m.har", &a, &err), &err);
    return a;
}

/* A tar with the given members, in this order, written without the archive layer. */
static uint8_t *raw_tar(const hqi_tar_member_t *members, size_t count, size_t *len)
{
    void *bytes = NULL;
    hq_error_t err = {0};
    check(hqi_tar_write(members, count, &bytes, len, &err), &err);
    return bytes;
}

#define MEMBER(name, text)                                                                         \
    {                                                                                              \
        (char *)(name), (uint8_t *)(text), sizeof(text) - 1                                        \
    }

static void expect_open_error(const void *bytes, size_t len, hq_status_t status,
                              const char *message)
{
    hq_archive_t *a = (hq_archive_t *)1;
    hq_error_t err = {0};
    hq_status_t st = hq_archive_open_memory(bytes, len, "m.har", &a, &err);
    assert_null(a);
    assert_int_equal(st, status);
    assert_null(strchr(err.message, '\n'));
    if (strncmp(err.message, "m.har: ", 7) != 0)
        fail_msg("message does not name the archive: '%s'", err.message);
    if (!strstr(err.message, message))
        fail_msg("message '%s' lacks '%s'", err.message, message);
}

static void expect_member_bytes(const hq_archive_t *a, const char *name, const void *data,
                                size_t size)
{
    const void *bytes = NULL;
    size_t len = 0;
    hq_error_t err = {0};
    check(hq_archive_member(a, name, &bytes, &len, &err), &err);
    assert_int_equal(len, size);
    assert_memory_equal(bytes, data, size);
}

/* ---- round trips --------------------------------------------------------------------------- */

static void creates_saves_and_reopens_an_archive_with_everything_in_it(void **state)
{
    (void)state;
    hq_archive_t *a = make_archive();
    size_t len = 0;
    uint8_t *bytes = save(a, &len);
    hq_archive_destroy(a);

    hq_archive_t *b = reopen(bytes, len);
    hq_error_t err = {0};
    assert_string_equal(hq_archive_path(b), "m.har");
    assert_string_equal(hq_archive_net_name(b), "net");
    assert_int_equal(hq_archive_state(b), HQ_STATE_QUANTIZED);
    assert_string_equal(hq_model_state_name(hq_archive_state(b)), "quantized_model");
    assert_string_equal(hq_archive_hw_arch(b), "hailo8l");
    assert_string_equal(hq_archive_writer_version(b), hq_version());

    static const char *const order[] = {"net.metadata.json", "net.hn", "net.npz", "net.q.npz",
                                        "net.alls"};
    assert_int_equal(hq_archive_member_count(b), 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(hq_archive_member_name(b, i), order[i]);
    assert_null(hq_archive_member_name(b, 5));

    hq_graph_t *g = NULL;
    check(hq_archive_graph(b, &g, &err), &err);
    assert_int_equal(hq_graph_layer_count(g), 3);
    assert_true(hq_graph_find(g, "act") >= 0);

    assert_true(hq_archive_has_params(b, HQ_PARAMS_NATIVE));
    assert_false(hq_archive_has_params(b, HQ_PARAMS_FP_OPTIMIZED));
    assert_true(hq_archive_has_params(b, HQ_PARAMS_QUANTIZED));
    hq_npz_t *q = NULL;
    check(hq_archive_params(b, HQ_PARAMS_QUANTIZED, &q, &err), &err);
    const hq_tensor_t *k = hq_npz_get(q, "net/act/kernel:0");
    assert_non_null(k);
    assert_int_equal(k->ndim, 2);
    assert_true(((const float *)k->data)[3] == 13.0f);
    hq_npz_t *fpo = (hq_npz_t *)1;
    assert_int_equal(hq_archive_params(b, HQ_PARAMS_FP_OPTIMIZED, &fpo, &err), HQ_ERR_NOT_FOUND);
    assert_null(fpo);
    assert_string_equal(err.message, "m.har: no member 'net.fpo.npz'");

    hq_script_t *script = NULL;
    check(hq_archive_script(b, &script, &err), &err);
    assert_int_equal(hq_script_command_count(script), 1);
    assert_string_equal(hq_script_command(script, 0)->name, "normalization");

    /* the params member is deflated */
    const void *npz = NULL;
    size_t npz_len = 0;
    check(hq_archive_member(b, "net.npz", &npz, &npz_len, &err), &err);
    assert_true(npz_len > 30);
    assert_int_equal(((const uint8_t *)npz)[8], 8); /* zip local header: method 8 = deflate */
    hq_archive_destroy(b);
    free(bytes);
}

static void saves_to_a_file_atomically_and_opens_it_again(void **state)
{
    (void)state;
    char dir[] = "/tmp/hq_test_archive_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/model.har", dir);
    hq_archive_t *a = make_archive();
    hq_error_t err = {0};
    check(hq_archive_save(a, path, &err), &err);
    hq_archive_destroy(a);

    hq_archive_t *b = NULL;
    check(hq_archive_open(path, &b, &err), &err);
    assert_string_equal(hq_archive_path(b), path);
    assert_string_equal(hq_archive_net_name(b), "net");
    hq_archive_destroy(b);

    /* a member above the limit is refused with its name */
    assert_int_equal(hq_archive_open_limit(path, 100, &b, &err), HQ_ERR_LIMIT);
    assert_null(b);
    if (!strstr(err.message, "member 'net.") ||
        !strstr(err.message, "more than the limit of 100 bytes"))
        fail_msg("%s", err.message);

    char missing[300];
    snprintf(missing, sizeof missing, "%s/absent.har", dir);
    assert_int_equal(hq_archive_open(missing, &b, &err), HQ_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, missing));
    unlink(path);
    rmdir(dir);
}

static void saving_an_untouched_archive_reproduces_its_bytes(void **state)
{
    (void)state;
    hq_archive_t *a = make_archive();
    size_t len1 = 0, len2 = 0;
    uint8_t *first = save(a, &len1);
    hq_archive_destroy(a);
    hq_archive_t *b = reopen(first, len1);
    uint8_t *second = save(b, &len2);
    assert_int_equal(len2, len1);
    assert_memory_equal(second, first, len1);
    hq_archive_destroy(b);
    free(second);
    free(first);
}

static void untouched_members_keep_their_bytes_even_when_not_in_canonical_form(void **state)
{
    (void)state;
    /* hand-written members whose bytes hq would never produce: kept as long as nobody decodes */
    static const char meta[] = "{ \"state\":\"parsed_model\",  \"hn\":\"net.hn\" }";
    static const char hn[] = "this is not JSON, and nobody asked";
    hqi_tar_member_t in[] = {MEMBER("net.metadata.json", meta), MEMBER("net.hn", hn)};
    size_t len = 0;
    uint8_t *tar = raw_tar(in, 2, &len);
    hq_archive_t *a = reopen(tar, len);
    size_t out_len = 0;
    uint8_t *out = save(a, &out_len);
    assert_int_equal(out_len, len);
    assert_memory_equal(out, tar, len);

    /* decoding is lazy: the broken graph is only noticed when asked for */
    hq_graph_t *g = (hq_graph_t *)1;
    hq_error_t err = {0};
    assert_int_equal(hq_archive_graph(a, &g, &err), HQ_ERR_FORMAT);
    assert_null(g);
    assert_non_null(strstr(err.message, "m.har:net.hn: "));
    hq_archive_destroy(a);
    free(out);
    free(tar);
}

static void unknown_members_survive_a_rewrite_byte_for_byte_after_the_known_ones(void **state)
{
    (void)state;
    uint8_t hef[1000];
    for (size_t i = 0; i < sizeof hef; i++)
        hef[i] = (uint8_t)(i * 7 + 3);
    static const char note[] = "read me\n";
    hqi_tar_member_t in[] = {
        {"net.hef", hef, sizeof hef},
        MEMBER("net.metadata.json", METADATA_OK),
        MEMBER(LONG_NOTE, note),
        {"net.hn", (uint8_t *)GRAPH_JSON, sizeof GRAPH_JSON - 1},
    };
    size_t len = 0;
    uint8_t *tar = raw_tar(in, 4, &len);
    hq_archive_t *a = reopen(tar, len);

    /* change what hq knows so that save re-encodes the metadata and the graph */
    hq_error_t err = {0};
    hq_graph_t *g = NULL;
    check(hq_archive_graph(a, &g, &err), &err);
    check(hq_archive_set_state(a, HQ_STATE_FP_OPTIMIZED, &err), &err);
    size_t out_len = 0;
    uint8_t *out = save(a, &out_len);
    hq_archive_destroy(a);

    hq_archive_t *b = reopen(out, out_len);
    assert_int_equal(hq_archive_state(b), HQ_STATE_FP_OPTIMIZED);
    static const char *const order[] = {"net.metadata.json", "net.hn", "net.hef", LONG_NOTE};
    assert_int_equal(hq_archive_member_count(b), 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(hq_archive_member_name(b, i), order[i]);
    expect_member_bytes(b, "net.hef", hef, sizeof hef);
    expect_member_bytes(b, LONG_NOTE, note, sizeof note - 1);
    hq_archive_destroy(b);

    /* and in the tar itself, the unknown members follow the known ones in their original order */
    hqi_tar_t t;
    check(hqi_tar_read(out, out_len, "m.har", SIZE_MAX, &t, &err), &err);
    assert_int_equal(t.count, 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(t.members[i].name, order[i]);
    hqi_tar_free(&t);
    free(out);
    free(tar);
}

static void metadata_keys_hq_does_not_know_are_kept_on_rewrite(void **state)
{
    (void)state;
    static const char meta[] =
        "{\"state\": \"parsed_model\", \"hn\": \"net.hn\", \"hw_arch\": \"hailo15h\", "
        "\"vendor_field\": {\"x\": [1, 2]}}";
    hqi_tar_member_t in[] = {MEMBER("net.metadata.json", meta),
                             {"net.hn", (uint8_t *)GRAPH_JSON, sizeof GRAPH_JSON - 1}};
    size_t len = 0;
    uint8_t *tar = raw_tar(in, 2, &len);
    hq_archive_t *a = reopen(tar, len);
    assert_string_equal(hq_archive_hw_arch(a), "hailo15h");
    assert_string_equal(hq_archive_writer_version(a), "");
    hq_error_t err = {0};
    check(hq_archive_set_state(a, HQ_STATE_COMPILED, &err), &err);
    size_t out_len = 0;
    uint8_t *out = save(a, &out_len);
    hq_archive_destroy(a);

    hq_archive_t *b = reopen(out, out_len);
    const void *bytes = NULL;
    size_t mlen = 0;
    check(hq_archive_member(b, "net.metadata.json", &bytes, &mlen, &err), &err);
    assert_non_null(strstr(bytes, "\"vendor_field\""));
    assert_non_null(strstr(bytes, "\"compiled_model\""));
    assert_non_null(strstr(bytes, "\"hailo15h\""));
    assert_null(strstr(bytes, "\"parsed_model\""));
    assert_string_equal(hq_archive_writer_version(b), hq_version());
    hq_archive_destroy(b);
    free(out);
    free(tar);
}

static void removing_params_drops_their_member_and_an_absent_script_reads_as_empty(void **state)
{
    (void)state;
    hq_archive_t *a = make_archive();
    hq_error_t err = {0};
    check(hq_archive_set_params(a, HQ_PARAMS_QUANTIZED, NULL, &err), &err);
    assert_false(hq_archive_has_params(a, HQ_PARAMS_QUANTIZED));
    size_t len = 0;
    uint8_t *bytes = save(a, &len);
    hq_archive_destroy(a);

    hq_archive_t *b = reopen(bytes, len);
    assert_false(hq_archive_has_params(b, HQ_PARAMS_QUANTIZED));
    assert_true(hq_archive_has_params(b, HQ_PARAMS_NATIVE));
    assert_int_equal(hq_archive_member_count(b), 4); /* metadata, hn, npz, alls */
    free(bytes);
    hq_archive_destroy(b);

    hqi_tar_member_t in[] = {MEMBER("net.metadata.json", METADATA_OK),
                             {"net.hn", (uint8_t *)GRAPH_JSON, sizeof GRAPH_JSON - 1}};
    uint8_t *tar = raw_tar(in, 2, &len);
    hq_archive_t *c = reopen(tar, len);
    hq_script_t *script = NULL;
    check(hq_archive_script(c, &script, &err), &err);
    assert_non_null(script);
    assert_int_equal(hq_script_command_count(script), 0);
    size_t out_len = 0;
    uint8_t *out = save(c, &out_len);
    assert_int_equal(out_len, len); /* asking for the empty script adds no member */
    assert_memory_equal(out, tar, len);
    hq_archive_destroy(c);
    free(out);
    free(tar);
}

static void a_script_started_in_an_archive_without_one_is_saved(void **state)
{
    (void)state;
    hqi_tar_member_t in[] = {MEMBER("net.metadata.json", METADATA_OK),
                             {"net.hn", (uint8_t *)GRAPH_JSON, sizeof GRAPH_JSON - 1},
                             MEMBER("net.npz", "PK not really a zip")};
    size_t len = 0;
    uint8_t *tar = raw_tar(in, 3, &len);
    hq_archive_t *a = reopen(tar, len);
    hq_error_t err = {0};
    hq_script_t *script = NULL;
    check(hq_archive_script(a, &script, &err), &err);
    check(hq_script_append_line(script, "model_optimization_flavor(optimization_level=2)", &err),
          &err);
    /* the damaged params are reported naming archive and member, and only when asked for */
    hq_npz_t *npz = NULL;
    assert_int_not_equal(hq_archive_params(a, HQ_PARAMS_NATIVE, &npz, &err), HQ_OK);
    assert_null(npz);
    if (strncmp(err.message, "m.har:net.npz: ", 15) != 0)
        fail_msg("%s", err.message);
    size_t out_len = 0;
    uint8_t *out = save(a, &out_len);
    hq_archive_destroy(a);

    hq_archive_t *b = reopen(out, out_len);
    assert_string_equal(hq_archive_writer_version(b), hq_version());
    assert_string_equal(hq_archive_member_name(b, 3), "net.alls");
    expect_member_bytes(b, "net.npz", "PK not really a zip", 19);
    check(hq_archive_script(b, &script, &err), &err);
    assert_int_equal(hq_script_command_count(script), 1);
    hq_archive_destroy(b);
    free(out);
    free(tar);
}

static void set_member_replaces_a_known_member_and_refuses_the_metadata(void **state)
{
    (void)state;
    hq_archive_t *a = make_archive();
    hq_error_t err = {0};
    check(hq_archive_set_member(a, "net.hef", "HEF", 3, &err), &err);
    check(hq_archive_set_member(a, "net.hef", "HEF2", 4, &err), &err);
    expect_member_bytes(a, "net.hef", "HEF2", 4);
    assert_int_equal(hq_archive_set_member(a, "net.metadata.json", "{}", 2, &err), HQ_ERR_ARGUMENT);
    assert_int_equal(hq_archive_set_member(a, "", "x", 1, &err), HQ_ERR_ARGUMENT);

    /* a held-decoded member has no bytes until saved; replacing it drops the decoded script */
    const void *bytes = NULL;
    size_t len = 0;
    assert_int_equal(hq_archive_member(a, "net.alls", &bytes, &len, &err), HQ_ERR_STATE);
    static const char other[] = "model_optimization_flavor(optimization_level=2)\n";
    check(hq_archive_set_member(a, "net.alls", other, sizeof other - 1, &err), &err);
    hq_script_t *script = NULL;
    check(hq_archive_script(a, &script, &err), &err);
    assert_string_equal(hq_script_command(script, 0)->name, "model_optimization_flavor");
    assert_int_equal(hq_archive_member(a, "nothing", &bytes, &len, &err), HQ_ERR_NOT_FOUND);
    assert_string_equal(err.message, "net: no member 'nothing'");
    hq_archive_destroy(a);
}

static void create_refuses_bad_network_names(void **state)
{
    (void)state;
    hq_archive_t *a = (hq_archive_t *)1;
    hq_error_t err = {0};
    assert_int_equal(hq_archive_create("", &a, &err), HQ_ERR_ARGUMENT);
    assert_null(a);
    assert_int_equal(hq_archive_create("a/b", &a, &err), HQ_ERR_ARGUMENT);
    assert_int_equal(hq_archive_create("a\nb", &a, &err), HQ_ERR_ARGUMENT);
    check(hq_archive_create("resnet_v1_18", &a, &err), &err);
    assert_string_equal(hq_archive_hw_arch(a), "hailo8");
    assert_int_equal(hq_archive_state(a), HQ_STATE_PARSED);
    assert_string_equal(hq_archive_path(a), "");
    hq_archive_destroy(a);
    hq_archive_destroy(NULL);
}

/* ---- bad archives --------------------------------------------------------------------------- */

static void a_truncated_archive_is_reported_naming_the_archive_and_member(void **state)
{
    (void)state;
    hq_archive_t *a = make_archive();
    size_t len = 0;
    uint8_t *bytes = save(a, &len);
    hq_archive_destroy(a);
    expect_open_error(bytes, 512 + 10, HQ_ERR_FORMAT,
                      "m.har: member 'net.metadata.json': truncated, header says ");
    free(bytes);
}

static void a_bad_checksum_is_reported_naming_the_archive(void **state)
{
    (void)state;
    hq_archive_t *a = make_archive();
    size_t len = 0;
    uint8_t *bytes = save(a, &len);
    hq_archive_destroy(a);
    bytes[0] ^= 1;
    expect_open_error(bytes, len, HQ_ERR_FORMAT, "m.har: header at offset 0: bad checksum");
    free(bytes);
}

static void missing_metadata_is_reported_naming_the_archive(void **state)
{
    (void)state;
    hqi_tar_member_t in[] = {{"net.hn", (uint8_t *)GRAPH_JSON, sizeof GRAPH_JSON - 1}};
    size_t len = 0;
    uint8_t *tar = raw_tar(in, 1, &len);
    expect_open_error(tar, len, HQ_ERR_FORMAT,
                      "m.har: no '<net>.metadata.json' member; not a model archive");
    free(tar);
}

static void a_metadata_syntax_error_is_reported_with_its_position(void **state)
{
    (void)state;
    hqi_tar_member_t in[] = {MEMBER("net.metadata.json", "{\"state\": \"parsed_model\",\n ,}"),
                             {"net.hn", (uint8_t *)GRAPH_JSON, sizeof GRAPH_JSON - 1}};
    size_t len = 0;
    uint8_t *tar = raw_tar(in, 2, &len);
    expect_open_error(tar, len, HQ_ERR_FORMAT,
                      "m.har: member 'net.metadata.json': JSON syntax error at line 2");
    free(tar);

    hqi_tar_member_t trailing[] = {MEMBER("net.metadata.json", "{\"state\": \"parsed_model\"} x")};
    tar = raw_tar(trailing, 1, &len);
    expect_open_error(tar, len, HQ_ERR_FORMAT,
                      "m.har: member 'net.metadata.json': JSON syntax error at line 1, column 27");
    free(tar);
}

static void metadata_naming_an_absent_hn_member_is_reported(void **state)
{
    (void)state;
    hqi_tar_member_t in[] = {MEMBER("net.metadata.json", METADATA_OK)};
    size_t len = 0;
    uint8_t *tar = raw_tar(in, 1, &len);
    expect_open_error(tar, len, HQ_ERR_NOT_FOUND,
                      "m.har: member 'net.metadata.json' names hn member 'net.hn', which the "
                      "archive does not contain");
    free(tar);

    /* its presence is the absence of the error */
    hqi_tar_member_t ok[] = {MEMBER("net.metadata.json", METADATA_OK), MEMBER("net.hn", "{}")};
    tar = raw_tar(ok, 2, &len);
    hq_archive_t *a = reopen(tar, len);
    hq_archive_destroy(a);
    free(tar);
}

static void metadata_with_bad_fields_or_several_metadata_members_is_refused(void **state)
{
    (void)state;
    size_t len = 0;
    hqi_tar_member_t two[] = {MEMBER("a.metadata.json", METADATA_OK),
                              MEMBER("b.metadata.json", METADATA_OK)};
    uint8_t *tar = raw_tar(two, 2, &len);
    expect_open_error(tar, len, HQ_ERR_FORMAT,
                      "m.har: several metadata members ('a.metadata.json' and 'b.metadata.json')");
    free(tar);

    hqi_tar_member_t state_bad[] = {MEMBER("net.metadata.json", "{\"state\": \"half_baked\"}")};
    tar = raw_tar(state_bad, 1, &len);
    expect_open_error(tar, len, HQ_ERR_UNSUPPORTED,
                      "m.har: member 'net.metadata.json': key 'state': unknown state "
                      "'half_baked'");
    free(tar);

    hqi_tar_member_t state_type[] = {MEMBER("net.metadata.json", "{\"state\": 3}")};
    tar = raw_tar(state_type, 1, &len);
    expect_open_error(tar, len, HQ_ERR_FORMAT,
                      "m.har: member 'net.metadata.json': key 'state' is not a string");
    free(tar);

    hqi_tar_member_t array[] = {MEMBER("net.metadata.json", "[]")};
    tar = raw_tar(array, 1, &len);
    expect_open_error(tar, len, HQ_ERR_FORMAT,
                      "m.har: member 'net.metadata.json': expected a JSON object");
    free(tar);

    hqi_tar_member_t twice[] = {MEMBER("net.metadata.json", METADATA_OK), MEMBER("net.hn", "{}"),
                                MEMBER("net.hn", "{}")};
    tar = raw_tar(twice, 3, &len);
    expect_open_error(tar, len, HQ_ERR_FORMAT, "m.har: member 'net.hn' appears twice");
    free(tar);
}

/* With HQ_TAR_OUT set, writes a .har with a long unknown member for tests/e2e/tar_interop.sh. */
static void writes_an_interop_archive_when_asked(void **state)
{
    (void)state;
    const char *out = getenv("HQ_TAR_OUT");
    if (!out)
        skip();
    hq_archive_t *a = make_archive();
    hq_error_t err = {0};
    static const char note[] = "read me\n";
    check(hq_archive_set_member(a, LONG_NOTE, note, sizeof note - 1, &err), &err);
    check(hq_archive_set_member(a, "net.hef", "HEF", 3, &err), &err);
    check(hq_archive_save(a, out, &err), &err);
    hq_archive_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(creates_saves_and_reopens_an_archive_with_everything_in_it),
        cmocka_unit_test(saves_to_a_file_atomically_and_opens_it_again),
        cmocka_unit_test(saving_an_untouched_archive_reproduces_its_bytes),
        cmocka_unit_test(untouched_members_keep_their_bytes_even_when_not_in_canonical_form),
        cmocka_unit_test(unknown_members_survive_a_rewrite_byte_for_byte_after_the_known_ones),
        cmocka_unit_test(metadata_keys_hq_does_not_know_are_kept_on_rewrite),
        cmocka_unit_test(removing_params_drops_their_member_and_an_absent_script_reads_as_empty),
        cmocka_unit_test(a_script_started_in_an_archive_without_one_is_saved),
        cmocka_unit_test(set_member_replaces_a_known_member_and_refuses_the_metadata),
        cmocka_unit_test(create_refuses_bad_network_names),
        cmocka_unit_test(a_truncated_archive_is_reported_naming_the_archive_and_member),
        cmocka_unit_test(a_bad_checksum_is_reported_naming_the_archive),
        cmocka_unit_test(missing_metadata_is_reported_naming_the_archive),
        cmocka_unit_test(a_metadata_syntax_error_is_reported_with_its_position),
        cmocka_unit_test(metadata_naming_an_absent_hn_member_is_reported),
        cmocka_unit_test(metadata_with_bad_fields_or_several_metadata_members_is_refused),
        cmocka_unit_test(writes_an_interop_archive_when_asked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
