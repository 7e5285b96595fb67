/* npy.c — the numpy .npy format: header parsing (a Python dict literal), decoding into a C-order
 * little-endian tensor (transposing Fortran data, byteswapping big-endian data) and encoding
 * byte-for-byte as numpy.save does for C-order little-endian arrays. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq/tensor.h"
#include "util/util.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_ALIGN 64
/* numpy leaves room for the growth axis to reach this many digits (format.GROWTH_AXIS_MAX_DIGITS). */
#define NPY_GROWTH_AXIS_MAX_DIGITS 21
/* The largest .npy file hq_npy_read_file accepts. */
#define NPY_FILE_LIMIT ((size_t)1 << 40)

/* ---- header dict parser ---------------------------------------------------------------- */

typedef struct {
    const char *p;
    const char *end;
    const char *name; /* for messages */
    hq_error_t *err;
} cursor_t;

static void skip_space(cursor_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool accept(cursor_t *c, char ch)
{
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

/* A Python string literal in single or double quotes, without escapes (numpy never writes any in
 * the fields hq reads). Copies at most cap-1 bytes; longer strings are an error. */
static bool parse_string(cursor_t *c, char *out, size_t cap)
{
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return false;
    char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        if (*c->p == '\\' || n + 1 >= cap)
            return false;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return false;
    c->p++;
    out[n] = 0;
    return true;
}

static bool match_word(cursor_t *c, const char *word)
{
    skip_space(c);
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return false;
    /* the next character must not continue an identifier */
    const char *q = c->p + n;
    if (q < c->end && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
                       (*q >= '0' && *q <= '9') || *q == '_'))
        return false;
    c->p = q;
    return true;
}

static hq_status_t field_error(cursor_t *c, hq_status_t st, const char *field, const char *what)
{
    return hqi_error(c->err, st, "%s: header field '%s': %s", c->name, field, what);
}

static hq_status_t parse_descr(cursor_t *c, hq_npy_header_t *h)
{
    skip_space(c);
    if (c->p < c->end && (*c->p == '[' || *c->p == '{'))
        return field_error(c, HQ_ERR_UNSUPPORTED, "descr",
                           "structured dtypes are not supported");
    char d[32];
    if (!parse_string(c, d, sizeof d))
        return field_error(c, HQ_ERR_FORMAT, "descr", "expected a dtype string like '<f4'");
    const char *s = d;
    char order = '=';
    if (*s == '<' || *s == '>' || *s == '|' || *s == '=')
        order = *s++;
    static const struct {
        const char *code;
        hq_dtype_t dtype;
    } codes[] = {
        {"f4", HQ_DTYPE_FLOAT32}, {"f8", HQ_DTYPE_FLOAT64}, {"f2", HQ_DTYPE_FLOAT16},
        {"u1", HQ_DTYPE_UINT8},   {"i1", HQ_DTYPE_INT8},    {"u2", HQ_DTYPE_UINT16},
        {"i2", HQ_DTYPE_INT16},   {"i4", HQ_DTYPE_INT32},   {"i8", HQ_DTYPE_INT64},
        {"b1", HQ_DTYPE_BOOL},    {"?", HQ_DTYPE_BOOL},     {"B", HQ_DTYPE_UINT8},
        {"b", HQ_DTYPE_INT8},
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        if (strcmp(s, codes[i].code) == 0) {
            h->dtype = codes[i].dtype;
            /* '=' is native, and hq only runs on little-endian hosts; '|' means "not applicable"
             * for one-byte types and numpy reads it as native for wider ones. */
            h->big_endian = order == '>' && hq_dtype_size(h->dtype) > 1;
            return HQ_OK;
        }
    }
    char msg[160];
    const char *why = "hq reads f2 f4 f8 u1 i1 u2 i2 i4 i8 b1";
    if (*s == 'c')
        why = "complex numbers";
    else if (*s == 'O')
        why = "object arrays need pickle";
    else if (*s == 'U' || *s == 'S' || *s == 'a')
        why = "strings";
    else if (*s == 'V')
        why = "void/structured";
    snprintf(msg, sizeof msg, "unsupported dtype '%s' (%s)", d, why);
    return field_error(c, HQ_ERR_UNSUPPORTED, "descr", msg);
}

static hq_status_t parse_fortran(cursor_t *c, hq_npy_header_t *h)
{
    if (match_word(c, "True"))
        h->fortran_order = true;
    else if (match_word(c, "False"))
        h->fortran_order = false;
    else
        return field_error(c, HQ_ERR_FORMAT, "fortran_order", "expected True or False");
    return HQ_OK;
}

static hq_status_t parse_shape(cursor_t *c, hq_npy_header_t *h)
{
    if (!accept(c, '('))
        return field_error(c, HQ_ERR_FORMAT, "shape", "expected a tuple like (3, 4)");
    int ndim = 0;
    for (;;) {
        if (accept(c, ')'))
            break;
        skip_space(c);
        bool negative = false;
        if (c->p < c->end && *c->p == '-') {
            negative = true;
            c->p++;
        }
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return field_error(c, HQ_ERR_FORMAT, "shape", "expected an integer");
        uint64_t v = 0;
        bool overflow = false;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            unsigned digit = (unsigned)(*c->p++ - '0');
            if (v > ((uint64_t)INT64_MAX - digit) / 10)
                overflow = true;
            else
                v = v * 10 + digit;
        }
        if (c->p < c->end && (*c->p == 'L' || *c->p == 'l')) /* Python 2 long literals */
            c->p++;
        if (negative && v != 0)
            return field_error(c, HQ_ERR_FORMAT, "shape", "negative dimension");
        if (overflow)
            return field_error(c, HQ_ERR_LIMIT, "shape", "dimension does not fit in 64 bits");
        if (ndim == HQ_TENSOR_MAX_DIMS)
            return field_error(c, HQ_ERR_LIMIT, "shape", "more than 8 dimensions");
        h->shape[ndim++] = (int64_t)v;
        if (accept(c, ')'))
            break;
        if (!accept(c, ','))
            return field_error(c, HQ_ERR_FORMAT, "shape", "expected ',' or ')'");
    }
    /* "(3)" is the integer 3 in Python; it is accepted here as the shape (3,) all the same. */
    h->ndim = ndim;
    return HQ_OK;
}

HQ_API hq_status_t hq_npy_parse_header(const void *bytes, size_t len, const char *name,
                                       hq_npy_header_t *header, hq_error_t *err)
{
    if (!name)
        name = "<npy>";
    memset(header, 0, sizeof *header);
    const uint8_t *b = bytes;
    if (!b || len < NPY_MAGIC_LEN + 2 || memcmp(b, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return hqi_error(err, HQ_ERR_FORMAT, "%s: not a .npy file (bad magic)", name);
    int major = b[6], minor = b[7];
    size_t prefix, header_len;
    if (major == 1 && minor == 0) {
        prefix = 10;
        if (len < prefix)
            return hqi_error(err, HQ_ERR_FORMAT, "%s: file ends inside the header length", name);
        header_len = (size_t)b[8] | (size_t)b[9] << 8;
    } else if ((major == 2 || major == 3) && minor == 0) {
        prefix = 12;
        if (len < prefix)
            return hqi_error(err, HQ_ERR_FORMAT, "%s: file ends inside the header length", name);
        header_len = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 |
                     (size_t)b[11] << 24;
    } else {
        return hqi_error(err, HQ_ERR_UNSUPPORTED, "%s: unsupported .npy format version %d.%d",
                         name, major, minor);
    }
    if (header_len > len - prefix)
        return hqi_error(err, HQ_ERR_FORMAT,
                         "%s: header length %zu runs past the end of the file (%zu bytes)", name,
                         header_len, len);
    header->version_major = major;
    header->data_offset = prefix + header_len;

    cursor_t c = {(const char *)b + prefix, (const char *)b + prefix + header_len, name, err};
    for (const char *q = c.p; q < c.end; q++)
        if (*q == 0)
            return hqi_error(err, HQ_ERR_FORMAT, "%s: header contains a NUL byte", name);
    if (!accept(&c, '{'))
        return hqi_error(err, HQ_ERR_FORMAT, "%s: header is not a dict", name);
    bool have_descr = false, have_fortran = false, have_shape = false;
    for (;;) {
        if (accept(&c, '}'))
            break;
        char key[32];
        if (!parse_string(&c, key, sizeof key))
            return hqi_error(err, HQ_ERR_FORMAT, "%s: header dict: expected a quoted key", name);
        if (!accept(&c, ':'))
            return hqi_error(err, HQ_ERR_FORMAT, "%s: header field '%s': expected ':'", name,
                             key);
        hq_status_t st;
        bool *seen;
        if (strcmp(key, "descr") == 0) {
            seen = &have_descr;
            st = parse_descr(&c, header);
        } else if (strcmp(key, "fortran_order") == 0) {
            seen = &have_fortran;
            st = parse_fortran(&c, header);
        } else if (strcmp(key, "shape") == 0) {
            seen = &have_shape;
            st = parse_shape(&c, header);
        } else {
            return hqi_error(err, HQ_ERR_FORMAT, "%s: header field '%s': unknown key", name, key);
        }
        if (st != HQ_OK)
            return st;
        if (*seen)
            return hqi_error(err, HQ_ERR_FORMAT, "%s: header field '%s': appears twice", name,
                             key);
        *seen = true;
        if (accept(&c, '}'))
            break;
        if (!accept(&c, ','))
            return hqi_error(err, HQ_ERR_FORMAT, "%s: header dict: expected ',' or '}' after '%s'",
                             name, key);
    }
    skip_space(&c);
    if (c.p != c.end)
        return hqi_error(err, HQ_ERR_FORMAT, "%s: header has text after the dict", name);
    const char *missing = !have_descr ? "descr" : !have_fortran ? "fortran_order"
                        : !have_shape ? "shape" : NULL;
    if (missing)
        return hqi_error(err, HQ_ERR_FORMAT, "%s: header field '%s': missing", name, missing);

    size_t nbytes = hq_dtype_size(header->dtype);
    for (int i = 0; i < header->ndim; i++) {
        if ((uint64_t)header->shape[i] > SIZE_MAX ||
            !hqi_mul_size(nbytes, (size_t)header->shape[i], &nbytes) || nbytes > (size_t)INT64_MAX)
            return hqi_error(err, HQ_ERR_LIMIT, "%s: header field 'shape': data size overflows",
                             name);
    }
    header->data_bytes = nbytes;
    return HQ_OK;
}

/* ---- decoding -------------------------------------------------------------------------- */

static void byteswap(uint8_t *p, size_t nbytes, size_t size)
{
    for (size_t off = 0; off + size <= nbytes; off += size)
        for (size_t i = 0; i < size / 2; i++) {
            uint8_t t = p[off + i];
            p[off + i] = p[off + size - 1 - i];
            p[off + size - 1 - i] = t;
        }
}

/* Copies column-major `src` into row-major `dst` (same shape, `size`-byte elements). Walks the
 * destination in order with an index counter, moving the source offset by the Fortran strides. */
static void fortran_to_c(uint8_t *dst, const uint8_t *src, int ndim, const int64_t *shape,
                         size_t size, size_t count)
{
    size_t stride[HQ_TENSOR_MAX_DIMS];
    size_t index[HQ_TENSOR_MAX_DIMS] = {0};
    size_t s = size;
    for (int i = 0; i < ndim; i++) {
        stride[i] = s;
        s *= (size_t)shape[i]; /* cannot overflow: the total was checked */
    }
    size_t src_off = 0;
    for (size_t n = 0; n < count; n++) {
        memcpy(dst + n * size, src + src_off, size);
        for (int d = ndim - 1; d >= 0; d--) {
            if (++index[d] < (size_t)shape[d]) {
                src_off += stride[d];
                break;
            }
            src_off -= stride[d] * (index[d] - 1);
            index[d] = 0;
        }
    }
}

HQ_API hq_status_t hq_npy_read_memory(const void *bytes, size_t len, const char *name,
                                      hq_tensor_t **out, hq_error_t *err)
{
    *out = NULL;
    if (!name)
        name = "<npy>";
    hq_npy_header_t h;
    hq_status_t st = hq_npy_parse_header(bytes, len, name, &h, err);
    if (st != HQ_OK)
        return st;
    if (h.data_bytes > len - h.data_offset)
        return hqi_error(err, HQ_ERR_FORMAT,
                         "%s: header field 'shape': needs %zu bytes of data, file has %zu", name,
                         h.data_bytes, len - h.data_offset);
    hq_tensor_t *t;
    st = hq_tensor_create(h.dtype, h.ndim, h.shape, &t, err);
    if (st != HQ_OK)
        return hqi_nomem(err, name); /* the shape was checked: only the allocation can fail */
    const uint8_t *data = (const uint8_t *)bytes + h.data_offset;
    size_t size = hq_dtype_size(h.dtype);
    if (t->nbytes) {
        if (h.fortran_order && h.ndim > 1)
            fortran_to_c(t->data, data, h.ndim, h.shape, size, t->nbytes / size);
        else
            memcpy(t->data, data, t->nbytes);
        if (h.big_endian)
            byteswap(t->data, t->nbytes, size);
    }
    *out = t;
    return HQ_OK;
}

HQ_API hq_status_t hq_npy_read_file(const char *path, hq_tensor_t **out, hq_error_t *err)
{
    *out = NULL;
    void *bytes;
    size_t len;
    hq_status_t st = hqi_read_file(path, NPY_FILE_LIMIT, &bytes, &len, err);
    if (st != HQ_OK)
        return st;
    st = hq_npy_read_memory(bytes, len, path, out, err);
    free(bytes);
    return st;
}

/* ---- encoding -------------------------------------------------------------------------- */

static const char *npy_descr(hq_dtype_t dtype)
{
    static const char *const descr[HQ_DTYPE_COUNT] = {
        [HQ_DTYPE_FLOAT32] = "<f4", [HQ_DTYPE_FLOAT64] = "<f8", [HQ_DTYPE_FLOAT16] = "<f2",
        [HQ_DTYPE_UINT8] = "|u1",   [HQ_DTYPE_INT8] = "|i1",    [HQ_DTYPE_UINT16] = "<u2",
        [HQ_DTYPE_INT16] = "<i2",   [HQ_DTYPE_INT32] = "<i4",   [HQ_DTYPE_INT64] = "<i8",
        [HQ_DTYPE_BOOL] = "|b1",
    };
    return (int)dtype >= 0 && dtype < HQ_DTYPE_COUNT ? descr[dtype] : NULL;
}

HQ_API hq_status_t hq_npy_write_memory(const hq_tensor_t *tensor, void **bytes, size_t *len,
                                       hq_error_t *err)
{
    *bytes = NULL;
    *len = 0;
    if (!tensor || !npy_descr(tensor->dtype) || tensor->ndim < 0 ||
        tensor->ndim > HQ_TENSOR_MAX_DIMS)
        return hqi_error(err, HQ_ERR_ARGUMENT, "npy: invalid tensor");
    size_t expect = hq_dtype_size(tensor->dtype);
    for (int i = 0; i < tensor->ndim; i++)
        if (tensor->shape[i] < 0 || (uint64_t)tensor->shape[i] > SIZE_MAX ||
            !hqi_mul_size(expect, (size_t)tensor->shape[i], &expect))
            return hqi_error(err, HQ_ERR_ARGUMENT, "npy: invalid tensor shape");
    if (expect != tensor->nbytes || (expect && !tensor->data))
        return hqi_error(err, HQ_ERR_ARGUMENT, "npy: tensor nbytes %zu does not match its shape",
                         tensor->nbytes);

    /* The dict exactly as numpy's _write_array_header builds it. */
    char dict[512];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     npy_descr(tensor->dtype));
    for (int i = 0; i < tensor->ndim; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, i ? ", %lld" : "%lld",
                      (long long)tensor->shape[i]);
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", tensor->ndim == 1 ? "," : "");
    if (tensor->ndim > 0) {
        char first[24];
        int digits = snprintf(first, sizeof first, "%lld", (long long)tensor->shape[0]);
        for (int i = digits; i < NPY_GROWTH_AXIS_MAX_DIGITS; i++)
            dict[n++] = ' ';
    }
    /* header + '\n' padded with spaces so that the data starts on a multiple of 64; like numpy
     * the padding is 1..64 spaces, never 0. */
    size_t text = (size_t)n + 1;
    int major = 1;
    size_t prefix = 10;
    size_t pad = NPY_ALIGN - (prefix + text) % NPY_ALIGN;
    if (text + pad > 65535) {
        major = 2;
        prefix = 12;
        pad = NPY_ALIGN - (prefix + text) % NPY_ALIGN;
    }
    size_t header_len = text + pad;
    size_t total;
    if (!hqi_add_size(prefix + header_len, tensor->nbytes, &total))
        return hqi_error(err, HQ_ERR_LIMIT, "npy: tensor too large");
    uint8_t *b = malloc(total ? total : 1);
    if (!b)
        return hqi_nomem(err, "npy");
    memcpy(b, NPY_MAGIC, NPY_MAGIC_LEN);
    b[6] = (uint8_t)major;
    b[7] = 0;
    for (size_t i = 0; i < prefix - 8; i++)
        b[8 + i] = (uint8_t)(header_len >> (8 * i));
    memcpy(b + prefix, dict, (size_t)n);
    memset(b + prefix + (size_t)n, ' ', pad);
    b[prefix + header_len - 1] = '\n';
    if (tensor->nbytes)
        memcpy(b + prefix + header_len, tensor->data, tensor->nbytes);
    *bytes = b;
    *len = total;
    return HQ_OK;
}

HQ_API hq_status_t hq_npy_write_file(const char *path, const hq_tensor_t *tensor, hq_error_t *err)
{
    void *bytes;
    size_t len;
    hq_status_t st = hq_npy_write_memory(tensor, &bytes, &len, err);
    if (st != HQ_OK) {
        char detail[HQ_ERROR_MESSAGE_MAX];
        snprintf(detail, sizeof detail, "%s", err ? err->message : "cannot encode");
        return hqi_error(err, st, "%s: %s", path, detail);
    }
    st = hqi_write_file_atomic(path, bytes, len, err);
    free(bytes);
    return st;
}
