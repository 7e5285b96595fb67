/* util.c — internal helpers: errors, whole-file I/O, atomic writes, buffers, float16, shape
 * element counts. */
#define _POSIX_C_SOURCE 200809L
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hq/graph.h"

hq_status_t hqi_error(hq_error_t *err, hq_status_t status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        err->status = status;
    }
    return status;
}

hq_status_t hqi_nomem(hq_error_t *err, const char *where)
{
    return hqi_error(err, HQ_ERR_NOMEM, "%s: out of memory", where);
}

HQ_API const char *hq_status_string(hq_status_t status)
{
    switch (status) {
    case HQ_OK: return "ok";
    case HQ_ERR_IO: return "I/O error";
    case HQ_ERR_FORMAT: return "malformed input";
    case HQ_ERR_UNSUPPORTED: return "unsupported";
    case HQ_ERR_NOMEM: return "out of memory";
    case HQ_ERR_ARGUMENT: return "invalid argument";
    case HQ_ERR_NOT_FOUND: return "not found";
    case HQ_ERR_LIMIT: return "size limit exceeded";
    case HQ_ERR_INVALID: return "invalid content";
    case HQ_ERR_STATE: return "wrong state";
    }
    return "unknown status";
}

HQ_API const char *hq_version(void) { return HQ_VERSION_STRING; }

hq_status_t hqi_read_file(const char *path, size_t limit, void **bytes, size_t *len,
                          hq_error_t *err)
{
    *bytes = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hqi_error(err, errno == ENOENT ? HQ_ERR_NOT_FOUND : HQ_ERR_IO, "%s: cannot open: %s",
                         path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return hqi_error(err, HQ_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > limit) {
        close(fd);
        return hqi_error(err, HQ_ERR_LIMIT, "%s: file is %lld bytes, more than the limit of %zu",
                         path, (long long)st.st_size, limit);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *data = malloc(size + 1);
    if (!data) {
        close(fd);
        return hqi_nomem(err, path);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, data + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = errno;
            free(data);
            close(fd);
            return hqi_error(err, HQ_ERR_IO, "%s: read failed: %s", path,
                             n == 0 ? "file shrank while reading" : strerror(e));
        }
        got += (size_t)n;
    }
    close(fd);
    data[size] = 0;
    *bytes = data;
    *len = size;
    return HQ_OK;
}

/* Writes all of bytes to fd (retrying short writes and EINTR); true when all were written. */
static bool write_all(int fd, const void *bytes, size_t len)
{
    const uint8_t *p = bytes;
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, p + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        done += (size_t)n;
    }
    return true;
}

/* A path that exists and is no regular file (/dev/null, /dev/stdout, a FIFO) is written in
 * place: a temporary file renamed over it would replace the device with a regular file, and
 * with root's rights that breaks /dev/null for every program on the machine. */
static hq_status_t write_in_place(const char *path, const void *bytes, size_t len, hq_error_t *err)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return hqi_error(err, HQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    bool ok = write_all(fd, bytes, len);
    int saved = errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        saved = errno;
    }
    if (!ok)
        return hqi_error(err, HQ_ERR_IO, "%s: write failed: %s", path, strerror(saved));
    return HQ_OK;
}

hq_status_t hqi_write_file_atomic(const char *path, const void *bytes, size_t len,
                                  hq_error_t *err)
{
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return S_ISDIR(sb.st_mode) ? hqi_error(err, HQ_ERR_IO, "%s: is a directory", path)
                                   : write_in_place(path, bytes, len, err);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp)
        return hqi_nomem(err, path);
    snprintf(tmp, plen + 16, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        hq_status_t st = hqi_error(err, HQ_ERR_IO, "%s: cannot create temporary file: %s", path,
                                   strerror(errno));
        free(tmp);
        return st;
    }
    fchmod(fd, 0644);
    const bool written = write_all(fd, bytes, len);
    int saved = errno;
    bool ok = written && fsync(fd) == 0;
    if (!ok && written)
        saved = errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        saved = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        saved = errno;
    }
    if (!ok) {
        unlink(tmp);
        free(tmp);
        return hqi_error(err, HQ_ERR_IO, "%s: write failed: %s", path, strerror(saved));
    }
    free(tmp);
    return HQ_OK;
}

static bool buf_reserve(hqi_buf_t *buf, size_t extra)
{
    if (buf->failed)
        return false;
    size_t need;
    if (!hqi_add_size(buf->len, extra, &need)) {
        buf->failed = true;
        return false;
    }
    if (need <= buf->cap)
        return true;
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    uint8_t *data = realloc(buf->data, cap);
    if (!data) {
        buf->failed = true;
        return false;
    }
    buf->data = data;
    buf->cap = cap;
    return true;
}

void hqi_buf_append(hqi_buf_t *buf, const void *bytes, size_t len)
{
    if (len == 0 || !buf_reserve(buf, len))
        return;
    memcpy(buf->data + buf->len, bytes, len);
    buf->len += len;
}

void hqi_buf_zeros(hqi_buf_t *buf, size_t len)
{
    if (len == 0 || !buf_reserve(buf, len))
        return;
    memset(buf->data + buf->len, 0, len);
    buf->len += len;
}

void hqi_buf_printf(hqi_buf_t *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_reserve(buf, (size_t)n + 1)) {
        buf->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf((char *)buf->data + buf->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf->len += (size_t)n;
}

void hqi_buf_free(hqi_buf_t *buf)
{
    free(buf->data);
    memset(buf, 0, sizeof *buf);
}

bool hqi_mul_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

bool hqi_add_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

char *hqi_strdup(const char *s)
{
    return s ? hqi_strndup(s, strlen(s)) : NULL;
}

char *hqi_strndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

float hqi_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: normalize */
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) {
                mant <<= 1;
                exp--;
            }
            mant &= 0x3ff;
            bits = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t hqi_float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t exp = (x >> 23) & 0xff;
    uint32_t mant = x & 0x7fffff;
    if (exp == 0xff)
        return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
    int e = (int)exp - 127 + 15;
    if (e >= 0x1f)
        return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        if (e < -10)
            return sign;
        mant |= 0x800000;
        int shift = 14 - e;
        uint32_t half = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = ((uint32_t)e << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1)))
        half++; /* may carry into the exponent, which is the correct rounding */
    return (uint16_t)(sign | half);
}

int64_t hqi_shape_count(const hq_shape_t *shape)
{
    int64_t count = 1;
    for (int i = 0; i < shape->ndim; i++)
        count *= shape->dims[i];
    return count;
}
