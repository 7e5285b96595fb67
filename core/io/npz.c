/* npz.c — numpy .npz: an ordered set of named tensors stored as "<key>.npy" members of a zip. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq/tensor.h"
#include "io/zip.h"
#include "util/util.h"

/* The largest .npz file hq_npz_read_file accepts. */
#define NPZ_FILE_LIMIT ((size_t)1 << 40)

struct hq_npz {
    size_t count, cap;
    char **keys;            /* owned */
    hq_tensor_t **tensors;  /* owned, parallel to keys */
    size_t *slots;          /* open-addressing index: key position + 1, 0 = empty */
    size_t slot_count;      /* a power of two, at least twice count (or 0 before any key) */
};

/* FNV-1a: archives with tens of thousands of keys must not make lookups quadratic. */
static size_t hash_key(const char *key)
{
    uint64_t h = 14695981039346656037ull;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (size_t)h;
}

static void index_insert(hq_npz_t *npz, size_t position)
{
    size_t mask = npz->slot_count - 1;
    size_t i = hash_key(npz->keys[position]) & mask;
    while (npz->slots[i])
        i = (i + 1) & mask;
    npz->slots[i] = position + 1;
}

/* Rebuilds the index with room for `count` keys; false when out of memory. */
static bool index_rebuild(hq_npz_t *npz, size_t count)
{
    size_t n = 16;
    while (n < count * 2)
        n *= 2;
    size_t *slots = calloc(n, sizeof *slots);
    if (!slots)
        return false;
    free(npz->slots);
    npz->slots = slots;
    npz->slot_count = n;
    for (size_t i = 0; i < npz->count; i++)
        index_insert(npz, i);
    return true;
}

HQ_API hq_status_t hq_npz_create(hq_npz_t **out, hq_error_t *err)
{
    *out = calloc(1, sizeof **out);
    return *out ? HQ_OK : hqi_nomem(err, "npz");
}

HQ_API void hq_npz_destroy(hq_npz_t *npz)
{
    if (!npz)
        return;
    for (size_t i = 0; i < npz->count; i++) {
        free(npz->keys[i]);
        hq_tensor_destroy(npz->tensors[i]);
    }
    free(npz->keys);
    free(npz->tensors);
    free(npz->slots);
    free(npz);
}

HQ_API size_t hq_npz_count(const hq_npz_t *npz) { return npz ? npz->count : 0; }

HQ_API const char *hq_npz_key(const hq_npz_t *npz, size_t index)
{
    return npz && index < npz->count ? npz->keys[index] : NULL;
}

static size_t find_key(const hq_npz_t *npz, const char *key)
{
    if (npz->slot_count == 0)
        return SIZE_MAX;
    size_t mask = npz->slot_count - 1;
    for (size_t i = hash_key(key) & mask; npz->slots[i]; i = (i + 1) & mask)
        if (strcmp(npz->keys[npz->slots[i] - 1], key) == 0)
            return npz->slots[i] - 1;
    return SIZE_MAX;
}

HQ_API const hq_tensor_t *hq_npz_get(const hq_npz_t *npz, const char *key)
{
    if (!npz || !key)
        return NULL;
    size_t i = find_key(npz, key);
    return i == SIZE_MAX ? NULL : npz->tensors[i];
}

HQ_API const hq_tensor_t *hq_npz_get_index(const hq_npz_t *npz, size_t index)
{
    return npz && index < npz->count ? npz->tensors[index] : NULL;
}

HQ_API hq_status_t hq_npz_put(hq_npz_t *npz, const char *key, hq_tensor_t *tensor,
                              hq_error_t *err)
{
    if (!npz || !key || !*key || !tensor) {
        hq_tensor_destroy(tensor);
        return hqi_error(err, HQ_ERR_ARGUMENT, "npz: put needs a set, a non-empty key and a tensor");
    }
    size_t i = find_key(npz, key);
    if (i != SIZE_MAX) {
        if (npz->tensors[i] != tensor)
            hq_tensor_destroy(npz->tensors[i]);
        npz->tensors[i] = tensor;
        return HQ_OK;
    }
    if (npz->count == npz->cap) {
        size_t cap = npz->cap ? npz->cap * 2 : 8;
        char **keys = realloc(npz->keys, cap * sizeof *keys);
        if (keys)
            npz->keys = keys;
        hq_tensor_t **tensors = keys ? realloc(npz->tensors, cap * sizeof *tensors) : NULL;
        if (!tensors) {
            hq_tensor_destroy(tensor);
            return hqi_nomem(err, "npz");
        }
        npz->tensors = tensors;
        npz->cap = cap;
    }
    char *copy = hqi_strdup(key);
    if (!copy || ((npz->count + 1) * 2 > npz->slot_count && !index_rebuild(npz, npz->count + 1))) {
        free(copy);
        hq_tensor_destroy(tensor);
        return hqi_nomem(err, "npz");
    }
    npz->keys[npz->count] = copy;
    npz->tensors[npz->count] = tensor;
    index_insert(npz, npz->count);
    npz->count++;
    return HQ_OK;
}

HQ_API hq_status_t hq_npz_put_copy(hq_npz_t *npz, const char *key, const hq_tensor_t *tensor,
                                   hq_error_t *err)
{
    hq_tensor_t *copy;
    hq_status_t st = hq_tensor_clone(tensor, &copy, err);
    if (st != HQ_OK)
        return st;
    return hq_npz_put(npz, key, copy, err);
}

HQ_API hq_status_t hq_npz_remove(hq_npz_t *npz, const char *key, hq_error_t *err)
{
    size_t i = npz && key ? find_key(npz, key) : SIZE_MAX;
    if (i == SIZE_MAX)
        return hqi_error(err, HQ_ERR_NOT_FOUND, "npz: no key '%s'", key ? key : "(null)");
    free(npz->keys[i]);
    hq_tensor_destroy(npz->tensors[i]);
    memmove(npz->keys + i, npz->keys + i + 1, (npz->count - i - 1) * sizeof *npz->keys);
    memmove(npz->tensors + i, npz->tensors + i + 1, (npz->count - i - 1) * sizeof *npz->tensors);
    npz->count--;
    /* positions after i moved: rebuild the index in place (same size, cannot fail) */
    memset(npz->slots, 0, npz->slot_count * sizeof *npz->slots);
    for (size_t k = 0; k < npz->count; k++)
        index_insert(npz, k);
    return HQ_OK;
}

/* ---- reading --------------------------------------------------------------------------- */

/* Decodes one member. Stored members are checksummed and decoded in place; deflated ones are
 * inflated first. */
static hq_status_t read_member(const hqi_zip_t *zip, const hqi_zip_member_t *m, const char *name,
                               const char *label, hq_tensor_t **out, hq_error_t *err)
{
    void *inflated = NULL;
    const uint8_t *bytes;
    if (m->method == 0) {
        hqi_zip_stream_t *s;
        hq_status_t st = hqi_zip_stream_open(zip, m, name, &s, err);
        if (st != HQ_OK)
            return st;
        st = m->size ? hqi_zip_stream_skip(s, m->size, err) : HQ_OK; /* checks the CRC */
        hqi_zip_stream_close(s);
        if (st == HQ_OK && m->size == 0 && m->crc32 != 0)
            st = hqi_error(err, HQ_ERR_FORMAT, "%s: CRC-32 mismatch", label);
        if (st != HQ_OK)
            return st;
        bytes = zip->bytes + m->data_offset;
    } else {
        hq_status_t st = hqi_zip_extract(zip, m, name, &inflated, err);
        if (st != HQ_OK)
            return st;
        bytes = inflated;
    }
    hq_status_t st = hq_npy_read_memory(bytes, (size_t)m->size, label, out, err);
    free(inflated);
    return st;
}

HQ_API hq_status_t hq_npz_read_memory(const void *bytes, size_t len, const char *name,
                                      hq_npz_t **out, hq_error_t *err)
{
    *out = NULL;
    if (!name)
        name = "<npz>";
    hqi_zip_t zip;
    hq_status_t st = hqi_zip_open(bytes, len, name, &zip, err);
    if (st != HQ_OK)
        return st;
    hq_npz_t *npz;
    st = hq_npz_create(&npz, err);
    for (size_t i = 0; st == HQ_OK && i < zip.member_count; i++) {
        const hqi_zip_member_t *m = &zip.members[i];
        size_t nlen = strlen(m->name);
        if (m->name[nlen - 1] == '/' && m->size == 0)
            continue; /* a directory entry */
        /* numpy names members "<key>.npy"; a member without the suffix keeps its whole name. */
        size_t klen = nlen > 4 && strcmp(m->name + nlen - 4, ".npy") == 0 ? nlen - 4 : nlen;
        char *key = hqi_strndup(m->name, klen);
        size_t label_len = strlen(name) + nlen + 16;
        char *label = malloc(label_len);
        if (!key || !label) {
            free(key);
            free(label);
            st = hqi_nomem(err, name);
            break;
        }
        snprintf(label, label_len, "%s member '%s'", name, m->name);
        if (find_key(npz, key) != SIZE_MAX) {
            st = hqi_error(err, HQ_ERR_FORMAT, "%s: key '%s' appears twice", label, key);
        } else {
            hq_tensor_t *t;
            st = read_member(&zip, m, name, label, &t, err);
            if (st == HQ_OK)
                st = hq_npz_put(npz, key, t, err);
        }
        free(key);
        free(label);
    }
    hqi_zip_close(&zip);
    if (st != HQ_OK) {
        hq_npz_destroy(npz);
        return st;
    }
    *out = npz;
    return HQ_OK;
}

HQ_API hq_status_t hq_npz_read_file(const char *path, hq_npz_t **out, hq_error_t *err)
{
    *out = NULL;
    void *bytes;
    size_t len;
    hq_status_t st = hqi_read_file(path, NPZ_FILE_LIMIT, &bytes, &len, err);
    if (st != HQ_OK)
        return st;
    st = hq_npz_read_memory(bytes, len, path, out, err);
    free(bytes);
    return st;
}

HQ_API hq_status_t hq_npz_read_set_file(const char *path, hq_npz_t **out, hq_error_t *err)
{
    size_t n = strlen(path);
    if (n < 4 || strcmp(path + n - 4, ".npy"))
        return hq_npz_read_file(path, out, err);
    *out = NULL;
    hq_tensor_t *tensor = NULL;
    hq_status_t st = hq_npy_read_file(path, &tensor, err);
    if (st != HQ_OK)
        return st;
    st = hq_npz_create(out, err);
    if (st != HQ_OK) {
        hq_tensor_destroy(tensor);
        return st;
    }
    st = hq_npz_put(*out, "array", tensor, err); /* owns the tensor, also on failure */
    if (st != HQ_OK) {
        hq_npz_destroy(*out);
        *out = NULL;
    }
    return st;
}

/* ---- writing --------------------------------------------------------------------------- */

HQ_API hq_status_t hq_npz_write_memory(const hq_npz_t *npz, bool compress, void **bytes,
                                       size_t *len, hq_error_t *err)
{
    *bytes = NULL;
    *len = 0;
    if (!npz)
        return hqi_error(err, HQ_ERR_ARGUMENT, "npz: NULL set");
    hqi_zip_writer_t *w;
    hq_status_t st = hqi_zip_writer_create(&w, err);
    if (st != HQ_OK)
        return st;
    for (size_t i = 0; i < npz->count && st == HQ_OK; i++) {
        void *npy;
        size_t npy_len;
        st = hq_npy_write_memory(npz->tensors[i], &npy, &npy_len, err);
        if (st != HQ_OK) {
            char detail[HQ_ERROR_MESSAGE_MAX];
            snprintf(detail, sizeof detail, "%s", err ? err->message : "");
            st = hqi_error(err, st, "npz: key '%s': %s", npz->keys[i], detail);
            break;
        }
        size_t klen = strlen(npz->keys[i]);
        char *member = malloc(klen + 5);
        if (!member) {
            free(npy);
            st = hqi_nomem(err, "npz");
            break;
        }
        memcpy(member, npz->keys[i], klen);
        memcpy(member + klen, ".npy", 5);
        st = hqi_zip_writer_add(w, member, npy, npy_len, compress, err);
        free(member);
        free(npy);
    }
    if (st != HQ_OK) {
        hqi_zip_writer_destroy(w);
        return st;
    }
    return hqi_zip_writer_finish(w, bytes, len, err);
}

HQ_API hq_status_t hq_npz_write_file(const char *path, const hq_npz_t *npz, bool compress,
                                     hq_error_t *err)
{
    void *bytes;
    size_t len;
    hq_status_t st = hq_npz_write_memory(npz, compress, &bytes, &len, err);
    if (st != HQ_OK) {
        char detail[HQ_ERROR_MESSAGE_MAX];
        snprintf(detail, sizeof detail, "%s", err ? err->message : "cannot encode");
        return hqi_error(err, st, "%s: %s", path, detail);
    }
    st = hqi_write_file_atomic(path, bytes, len, err);
    free(bytes);
    return st;
}
