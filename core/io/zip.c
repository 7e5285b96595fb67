/* zip.c — the zip container under .npz: central directory reader (zip64 aware), whole-member
 * extraction and streaming (stored and raw deflate via zlib) with CRC checks, and a deterministic
 * writer. Every size and offset read from the archive is bounds-checked against the buffer. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "io/zip.h"
#include "util/util.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u
#define LOCAL_FIXED 30
#define CENTRAL_FIXED 46
#define EOCD_FIXED 22
#define EOCD64_FIXED 56
#define LOCATOR64_FIXED 20
#define ZIP64_EXTRA_ID 0x0001
#define U32_MAX_FIELD 0xffffffffu
#define U16_MAX_FIELD 0xffffu
/* Deflate cannot expand data more than about 1032:1; a member that claims more lies, and
 * believing it would let a tiny archive demand a huge allocation. */
#define DEFLATE_MAX_RATIO 1032u
#define DOS_DATE_1980_01_01 0x0021u

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* CRC-32 over any length (zlib's crc32 takes a 32-bit length). */
static uint32_t crc_update(uint32_t crc, const uint8_t *p, uint64_t len)
{
    while (len > 0) {
        uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
        crc = (uint32_t)crc32(crc, p, n);
        p += n;
        len -= n;
    }
    return crc;
}

/* ---- reader ---------------------------------------------------------------------------- */

/* Reads the zip64 extended-information extra field: each value is present only when its
 * 32-bit (or 16-bit) field in the fixed header holds the all-ones marker. */
static hq_status_t parse_zip64_extra(const uint8_t *extra, size_t extra_len, uint64_t *usize,
                                     uint64_t *csize, uint64_t *offset, const char *name,
                                     const char *member, hq_error_t *err)
{
    bool need_u = usize && *usize == U32_MAX_FIELD;
    bool need_c = csize && *csize == U32_MAX_FIELD;
    bool need_o = offset && *offset == U32_MAX_FIELD;
    size_t pos = 0;
    while (pos + 4 <= extra_len) {
        uint16_t id = rd16(extra + pos), size = rd16(extra + pos + 2);
        if (size > extra_len - pos - 4)
            return hqi_error(err, HQ_ERR_FORMAT, "%s: zip member '%s': extra field runs past its end",
                             name, member);
        if (id == ZIP64_EXTRA_ID) {
            const uint8_t *f = extra + pos + 4;
            size_t left = size;
            uint64_t *want[3] = {need_u ? usize : NULL, need_c ? csize : NULL,
                                 need_o ? offset : NULL};
            for (int i = 0; i < 3; i++) {
                if (!want[i])
                    continue;
                if (left < 8)
                    return hqi_error(err, HQ_ERR_FORMAT,
                                     "%s: zip member '%s': zip64 extra field too short", name,
                                     member);
                *want[i] = rd64(f);
                f += 8;
                left -= 8;
            }
            return HQ_OK;
        }
        pos += 4 + (size_t)size;
    }
    if (need_u || need_c || need_o)
        return hqi_error(err, HQ_ERR_FORMAT,
                         "%s: zip member '%s': size or offset is 0xffffffff but there is no zip64 "
                         "extra field", name, member);
    return HQ_OK;
}

/* Finds the end of central directory record (and the zip64 one when present) and returns where
 * the central directory lies and how many entries it has. */
static hq_status_t find_central_directory(const uint8_t *b, size_t len, const char *name,
                                          uint64_t *cd_offset, uint64_t *cd_size,
                                          uint64_t *count, size_t *cd_limit, hq_error_t *err)
{
    if (len < EOCD_FIXED)
        return hqi_error(err, HQ_ERR_FORMAT, "%s: not a zip archive (too short)", name);
    size_t eocd = SIZE_MAX;
    size_t lowest = len - EOCD_FIXED > 65535 ? len - EOCD_FIXED - 65535 : 0;
    for (size_t pos = len - EOCD_FIXED + 1; pos-- > lowest;) {
        if (rd32(b + pos) == SIG_EOCD && rd16(b + pos + 20) <= len - pos - EOCD_FIXED) {
            eocd = pos;
            break;
        }
    }
    if (eocd == SIZE_MAX)
        return hqi_error(err, HQ_ERR_FORMAT,
                         "%s: not a zip archive (no end of central directory record)", name);
    const uint8_t *e = b + eocd;
    uint16_t disk = rd16(e + 4), cd_disk = rd16(e + 6);
    uint64_t entries_disk = rd16(e + 8);
    *count = rd16(e + 10);
    *cd_size = rd32(e + 12);
    *cd_offset = rd32(e + 16);
    *cd_limit = eocd;
    if (eocd >= LOCATOR64_FIXED && rd32(e - LOCATOR64_FIXED) == SIG_LOCATOR64) {
        const uint8_t *loc = e - LOCATOR64_FIXED;
        uint64_t off = rd64(loc + 8);
        if (rd32(loc + 4) != 0 || rd32(loc + 16) > 1)
            return hqi_error(err, HQ_ERR_UNSUPPORTED, "%s: multi-disk zip archives are not supported",
                             name);
        size_t loc_pos = eocd - LOCATOR64_FIXED;
        if (off > loc_pos || loc_pos - off < EOCD64_FIXED)
            return hqi_error(err, HQ_ERR_FORMAT,
                             "%s: zip64 end of central directory: offset %llu is out of bounds",
                             name, (unsigned long long)off);
        const uint8_t *z = b + off;
        if (rd32(z) != SIG_EOCD64)
            return hqi_error(err, HQ_ERR_FORMAT,
                             "%s: zip64 end of central directory: bad signature", name);
        disk = rd32(z + 16) ? 1 : 0;
        cd_disk = rd32(z + 20) ? 1 : 0;
        entries_disk = rd64(z + 24);
        *count = rd64(z + 32);
        *cd_size = rd64(z + 40);
        *cd_offset = rd64(z + 48);
        *cd_limit = (size_t)off;
    } else if (*count == U16_MAX_FIELD || *cd_size == U32_MAX_FIELD ||
               *cd_offset == U32_MAX_FIELD) {
        return hqi_error(err, HQ_ERR_FORMAT,
                         "%s: end of central directory needs zip64 records, and there are none",
                         name);
    }
    if (disk != 0 || cd_disk != 0 || entries_disk != *count)
        return hqi_error(err, HQ_ERR_UNSUPPORTED, "%s: multi-disk zip archives are not supported",
                         name);
    if (*cd_offset > *cd_limit || *cd_size > *cd_limit - *cd_offset)
        return hqi_error(err, HQ_ERR_FORMAT,
                         "%s: central directory (offset %llu, %llu bytes) lies outside the file",
                         name, (unsigned long long)*cd_offset, (unsigned long long)*cd_size);
    if (*count > *cd_size / CENTRAL_FIXED)
        return hqi_error(err, HQ_ERR_FORMAT,
                         "%s: central directory claims %llu entries in %llu bytes", name,
                         (unsigned long long)*count, (unsigned long long)*cd_size);
    return HQ_OK;
}

/* Checks the local header of `m` (found through the central directory) and sets data_offset. */
static hq_status_t check_local_header(const uint8_t *b, size_t len, uint64_t offset,
                                      hqi_zip_member_t *m, const char *name, hq_error_t *err)
{
    if (offset > len || len - offset < LOCAL_FIXED || rd32(b + offset) != SIG_LOCAL)
        return hqi_error(err, HQ_ERR_FORMAT, "%s: zip member '%s': no local header at offset %llu",
                         name, m->name, (unsigned long long)offset);
    const uint8_t *l = b + offset;
    uint16_t method = rd16(l + 8), nlen = rd16(l + 26), elen = rd16(l + 28);
    uint64_t start = offset + LOCAL_FIXED;
    if ((uint64_t)nlen + elen > len - start)
        return hqi_error(err, HQ_ERR_FORMAT, "%s: zip member '%s': local header runs past the end",
                         name, m->name);
    if (nlen != strlen(m->name) || memcmp(b + start, m->name, nlen) != 0)
        return hqi_error(err, HQ_ERR_FORMAT,
                         "%s: zip member '%s': local header names another file", name, m->name);
    if (method != m->method)
        return hqi_error(err, HQ_ERR_FORMAT,
                         "%s: zip member '%s': local and central headers disagree on the method",
                         name, m->name);
    m->data_offset = start + nlen + elen;
    if (m->compressed_size > len - m->data_offset)
        return hqi_error(err, HQ_ERR_FORMAT,
                         "%s: zip member '%s': %llu bytes of data run past the end of the file",
                         name, m->name, (unsigned long long)m->compressed_size);
    return HQ_OK;
}

hq_status_t hqi_zip_open(const void *bytes, size_t len, const char *name, hqi_zip_t *zip,
                         hq_error_t *err)
{
    memset(zip, 0, sizeof *zip);
    if (!name)
        name = "<zip>";
    const uint8_t *b = bytes;
    if (!b)
        len = 0;
    uint64_t cd_offset = 0, cd_size = 0, count = 0;
    size_t cd_limit = 0;
    hq_status_t st = find_central_directory(b, len, name, &cd_offset, &cd_size, &count, &cd_limit,
                                            err);
    if (st != HQ_OK)
        return st;
    zip->bytes = b;
    zip->len = len;
    if (count == 0)
        return HQ_OK;
    zip->members = calloc((size_t)count, sizeof *zip->members);
    if (!zip->members)
        return hqi_nomem(err, name);
    const uint8_t *p = b + cd_offset;
    const uint8_t *end = p + cd_size;
    for (uint64_t i = 0; i < count; i++) {
        if ((size_t)(end - p) < CENTRAL_FIXED || rd32(p) != SIG_CENTRAL) {
            st = hqi_error(err, HQ_ERR_FORMAT, "%s: central directory entry %llu: bad signature",
                           name, (unsigned long long)i);
            goto fail;
        }
        uint16_t flags = rd16(p + 8), method = rd16(p + 10);
        uint16_t nlen = rd16(p + 28), elen = rd16(p + 30), clen = rd16(p + 32);
        uint16_t disk = rd16(p + 34);
        if ((size_t)(end - p) - CENTRAL_FIXED < (size_t)nlen + elen + clen) {
            st = hqi_error(err, HQ_ERR_FORMAT,
                           "%s: central directory entry %llu runs past the directory's end", name,
                           (unsigned long long)i);
            goto fail;
        }
        hqi_zip_member_t *m = &zip->members[i];
        m->name = hqi_strndup((const char *)p + CENTRAL_FIXED, nlen);
        zip->member_count = (size_t)i + 1;
        if (!m->name) {
            st = hqi_nomem(err, name);
            goto fail;
        }
        if (nlen == 0 || memchr(p + CENTRAL_FIXED, 0, nlen)) {
            st = hqi_error(err, HQ_ERR_FORMAT,
                           "%s: central directory entry %llu: empty name or NUL in name", name,
                           (unsigned long long)i);
            goto fail;
        }
        m->method = method;
        m->crc32 = rd32(p + 16);
        m->compressed_size = rd32(p + 20);
        m->size = rd32(p + 24);
        uint64_t local = rd32(p + 42);
        st = parse_zip64_extra(p + CENTRAL_FIXED + nlen, elen, &m->size, &m->compressed_size,
                               &local, name, m->name, err);
        if (st != HQ_OK)
            goto fail;
        if (flags & 0x41) {
            st = hqi_error(err, HQ_ERR_UNSUPPORTED, "%s: zip member '%s': encrypted", name,
                           m->name);
            goto fail;
        }
        if (disk != 0 && disk != U16_MAX_FIELD) {
            st = hqi_error(err, HQ_ERR_UNSUPPORTED, "%s: zip member '%s': on another disk", name,
                           m->name);
            goto fail;
        }
        if (method != 0 && method != 8) {
            st = hqi_error(err, HQ_ERR_UNSUPPORTED,
                           "%s: zip member '%s': compression method %u is not supported (only "
                           "stored and deflated)", name, m->name, method);
            goto fail;
        }
        if (method == 0 && m->size != m->compressed_size) {
            st = hqi_error(err, HQ_ERR_FORMAT,
                           "%s: zip member '%s': stored member with size %llu != compressed "
                           "size %llu", name, m->name, (unsigned long long)m->size,
                           (unsigned long long)m->compressed_size);
            goto fail;
        }
        if (method == 8 && m->size / DEFLATE_MAX_RATIO > m->compressed_size) {
            st = hqi_error(err, HQ_ERR_FORMAT,
                           "%s: zip member '%s': claims %llu bytes from %llu deflated bytes", name,
                           m->name, (unsigned long long)m->size,
                           (unsigned long long)m->compressed_size);
            goto fail;
        }
        st = check_local_header(b, cd_limit, local, m, name, err);
        if (st != HQ_OK)
            goto fail;
        p += CENTRAL_FIXED + (size_t)nlen + elen + clen;
    }
    return HQ_OK;
fail:
    hqi_zip_close(zip);
    return st;
}

void hqi_zip_close(hqi_zip_t *zip)
{
    if (!zip)
        return;
    for (size_t i = 0; i < zip->member_count; i++)
        free(zip->members[i].name);
    free(zip->members);
    memset(zip, 0, sizeof *zip);
}

/* ---- streaming ------------------------------------------------------------------------- */

struct hqi_zip_stream {
    const hqi_zip_member_t *member;
    char *name;          /* archive name for messages (copy) */
    const uint8_t *data; /* the member's (compressed) bytes inside the archive */
    uint64_t in_used;    /* compressed bytes handed to zlib so far */
    uint64_t pos;        /* uncompressed bytes delivered so far */
    uint32_t crc;        /* CRC-32 of the delivered bytes */
    bool deflated;
    bool stream_end;     /* zlib reported the end of the deflate stream */
    bool failed;         /* an error was reported; every later call fails */
    z_stream zs;
};

hq_status_t hqi_zip_stream_open(const hqi_zip_t *zip, const hqi_zip_member_t *member,
                                const char *name, hqi_zip_stream_t **out, hq_error_t *err)
{
    *out = NULL;
    if (!name)
        name = "<zip>";
    if (!zip || !member || member->data_offset > zip->len ||
        member->compressed_size > zip->len - member->data_offset)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: zip member out of bounds", name);
    hqi_zip_stream_t *s = calloc(1, sizeof *s);
    if (!s)
        return hqi_nomem(err, name);
    s->name = hqi_strdup(name);
    if (!s->name) {
        free(s);
        return hqi_nomem(err, name);
    }
    s->member = member;
    s->data = zip->bytes + member->data_offset;
    s->crc = (uint32_t)crc32(0, Z_NULL, 0);
    if (member->method == 8) {
        if (inflateInit2(&s->zs, -15) != Z_OK) {
            free(s->name);
            free(s);
            return hqi_nomem(err, name);
        }
        s->deflated = true;
    } else if (member->method != 0) {
        free(s->name);
        free(s);
        return hqi_error(err, HQ_ERR_UNSUPPORTED, "%s: zip member '%s': method %u", name,
                         member->name, member->method);
    }
    *out = s;
    return HQ_OK;
}

static hq_status_t stream_fail(hqi_zip_stream_t *s, hq_error_t *err, hq_status_t st,
                               const char *what)
{
    s->failed = true;
    return hqi_error(err, st, "%s: zip member '%s': %s", s->name, s->member->name, what);
}

/* Inflates exactly `len` bytes into `out`. */
static hq_status_t stream_inflate(hqi_zip_stream_t *s, uint8_t *out, size_t len, hq_error_t *err)
{
    while (len > 0) {
        if (s->stream_end)
            return stream_fail(s, err, HQ_ERR_FORMAT, "deflate data ends before the declared size");
        if (s->zs.avail_in == 0) {
            uint64_t left = s->member->compressed_size - s->in_used;
            uInt n = left > (1u << 30) ? (1u << 30) : (uInt)left;
            s->zs.next_in = (Bytef *)(uintptr_t)(s->data + s->in_used);
            s->zs.avail_in = n;
            s->in_used += n;
        }
        uInt chunk = len > (1u << 30) ? (1u << 30) : (uInt)len;
        s->zs.next_out = out;
        s->zs.avail_out = chunk;
        int rc = inflate(&s->zs, Z_NO_FLUSH);
        size_t produced = chunk - s->zs.avail_out;
        out += produced;
        len -= produced;
        if (rc == Z_STREAM_END) {
            s->stream_end = true;
        } else if (rc == Z_BUF_ERROR && s->zs.avail_in == 0 &&
                   s->in_used == s->member->compressed_size) {
            return stream_fail(s, err, HQ_ERR_FORMAT, "deflate data is truncated");
        } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
            return stream_fail(s, err, rc == Z_MEM_ERROR ? HQ_ERR_NOMEM : HQ_ERR_FORMAT,
                               "corrupt deflate data");
        }
    }
    return HQ_OK;
}

/* After the last byte: the deflate stream must end there, and the CRC must match. */
static hq_status_t stream_finish(hqi_zip_stream_t *s, hq_error_t *err)
{
    if (s->deflated && !s->stream_end) {
        uint8_t extra;
        for (;;) {
            if (s->zs.avail_in == 0 && s->in_used < s->member->compressed_size) {
                uint64_t left = s->member->compressed_size - s->in_used;
                uInt n = left > (1u << 30) ? (1u << 30) : (uInt)left;
                s->zs.next_in = (Bytef *)(uintptr_t)(s->data + s->in_used);
                s->zs.avail_in = n;
                s->in_used += n;
            }
            s->zs.next_out = &extra;
            s->zs.avail_out = 1;
            int rc = inflate(&s->zs, Z_NO_FLUSH);
            if (s->zs.avail_out == 0)
                return stream_fail(s, err, HQ_ERR_FORMAT,
                                   "deflate data inflates to more than the declared size");
            if (rc == Z_STREAM_END)
                break;
            if (rc == Z_OK)
                continue;
            return stream_fail(s, err, HQ_ERR_FORMAT,
                               rc == Z_BUF_ERROR ? "deflate data is truncated"
                                                 : "corrupt deflate data");
        }
        s->stream_end = true;
    }
    if (s->crc != s->member->crc32) {
        char what[96];
        snprintf(what, sizeof what, "CRC-32 mismatch (stored %08x, data %08x)", s->member->crc32,
                 s->crc);
        return stream_fail(s, err, HQ_ERR_FORMAT, what);
    }
    return HQ_OK;
}

/* Delivers the next `len` bytes into `out`, or just checksums them when `out` is NULL. */
static hq_status_t stream_advance(hqi_zip_stream_t *s, uint8_t *out, uint64_t len,
                                  hq_error_t *err)
{
    if (s->failed)
        return hqi_error(err, HQ_ERR_STATE, "%s: zip member '%s': stream already failed", s->name,
                         s->member->name);
    if (len > s->member->size - s->pos)
        return stream_fail(s, err, HQ_ERR_FORMAT, "member ends before the bytes asked for");
    if (len == 0)
        return HQ_OK;
    if (!s->deflated) {
        const uint8_t *src = s->data + s->pos;
        if (out)
            memcpy(out, src, (size_t)len);
        s->crc = crc_update(s->crc, src, len);
    } else if (out) {
        hq_status_t st = stream_inflate(s, out, (size_t)len, err);
        if (st != HQ_OK)
            return st;
        s->crc = crc_update(s->crc, out, len);
    } else {
        uint8_t scratch[16384];
        for (uint64_t left = len; left > 0;) {
            size_t n = left > sizeof scratch ? sizeof scratch : (size_t)left;
            hq_status_t st = stream_inflate(s, scratch, n, err);
            if (st != HQ_OK)
                return st;
            s->crc = crc_update(s->crc, scratch, n);
            left -= n;
        }
    }
    s->pos += len;
    return s->pos == s->member->size ? stream_finish(s, err) : HQ_OK;
}

hq_status_t hqi_zip_stream_read(hqi_zip_stream_t *stream, void *out, size_t len, hq_error_t *err)
{
    if (len > 0 && !out)
        return hqi_error(err, HQ_ERR_ARGUMENT, "zip stream: NULL output buffer");
    return stream_advance(stream, out, len, err);
}

hq_status_t hqi_zip_stream_skip(hqi_zip_stream_t *stream, uint64_t len, hq_error_t *err)
{
    return stream_advance(stream, NULL, len, err);
}

void hqi_zip_stream_close(hqi_zip_stream_t *stream)
{
    if (!stream)
        return;
    if (stream->deflated)
        inflateEnd(&stream->zs);
    free(stream->name);
    free(stream);
}

hq_status_t hqi_zip_extract(const hqi_zip_t *zip, const hqi_zip_member_t *member,
                            const char *name, void **out, hq_error_t *err)
{
    *out = NULL;
    if (!name)
        name = "<zip>";
    if (!member || member->size >= SIZE_MAX)
        return hqi_error(err, HQ_ERR_LIMIT, "%s: zip member too large", name);
    uint8_t *buf = malloc((size_t)member->size + 1);
    if (!buf)
        return hqi_nomem(err, name);
    hqi_zip_stream_t *s;
    hq_status_t st = hqi_zip_stream_open(zip, member, name, &s, err);
    if (st == HQ_OK) {
        /* an empty member is never "advanced", so check its end here */
        st = member->size ? hqi_zip_stream_read(s, buf, (size_t)member->size, err)
                          : stream_finish(s, err);
        hqi_zip_stream_close(s);
    }
    if (st != HQ_OK) {
        free(buf);
        return st;
    }
    buf[member->size] = 0;
    *out = buf;
    return HQ_OK;
}

/* ---- writer ---------------------------------------------------------------------------- */

typedef struct {
    char *name;
    uint16_t method;
    uint16_t flags;
    uint32_t crc;
    uint64_t csize, usize, offset;
    bool zip64_local; /* the local header carries a zip64 extra field */
    bool forced;      /* added while hqi_zip_writer_force_zip64 was on */
} writer_entry_t;

struct hqi_zip_writer {
    hqi_buf_t out;          /* local headers and data so far */
    writer_entry_t *entries;
    size_t count, cap;
    bool force_zip64;
};

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t clamp32(uint64_t v, bool force)
{
    return force || v >= U32_MAX_FIELD ? U32_MAX_FIELD : (uint32_t)v;
}

hq_status_t hqi_zip_writer_create(hqi_zip_writer_t **out, hq_error_t *err)
{
    *out = calloc(1, sizeof **out);
    return *out ? HQ_OK : hqi_nomem(err, "zip writer");
}

void hqi_zip_writer_force_zip64(hqi_zip_writer_t *writer, bool force)
{
    if (writer)
        writer->force_zip64 = force;
}

void hqi_zip_writer_destroy(hqi_zip_writer_t *writer)
{
    if (!writer)
        return;
    for (size_t i = 0; i < writer->count; i++)
        free(writer->entries[i].name);
    free(writer->entries);
    hqi_buf_free(&writer->out);
    free(writer);
}

/* Raw deflate (no zlib header) at the default level, as Python's zipfile writes it. */
static hq_status_t deflate_all(const uint8_t *in, size_t len, hqi_buf_t *out, hq_error_t *err)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return hqi_nomem(err, "zip writer");
    uint8_t chunk[65536];
    size_t left = len;
    int rc;
    do {
        if (zs.avail_in == 0 && left > 0) {
            uInt n = left > (1u << 30) ? (1u << 30) : (uInt)left;
            zs.next_in = (Bytef *)(uintptr_t)(in + (len - left));
            zs.avail_in = n;
            left -= n;
        }
        zs.next_out = chunk;
        zs.avail_out = sizeof chunk;
        rc = deflate(&zs, left == 0 ? Z_FINISH : Z_NO_FLUSH);
        hqi_buf_append(out, chunk, sizeof chunk - zs.avail_out);
    } while (rc == Z_OK || (rc == Z_BUF_ERROR && !out->failed));
    deflateEnd(&zs);
    if (rc != Z_STREAM_END || out->failed)
        return hqi_nomem(err, "zip writer");
    return HQ_OK;
}

hq_status_t hqi_zip_writer_add(hqi_zip_writer_t *writer, const char *member_name,
                               const void *bytes, size_t len, bool deflate, hq_error_t *err)
{
    size_t nlen = member_name ? strlen(member_name) : 0;
    if (!writer || nlen == 0 || nlen > U16_MAX_FIELD || (len && !bytes))
        return hqi_error(err, HQ_ERR_ARGUMENT, "zip writer: invalid member '%s'",
                         member_name ? member_name : "(null)");
    if (writer->count == writer->cap) {
        size_t cap = writer->cap ? writer->cap * 2 : 16;
        writer_entry_t *e = realloc(writer->entries, cap * sizeof *e);
        if (!e)
            return hqi_nomem(err, "zip writer");
        writer->entries = e;
        writer->cap = cap;
    }
    writer_entry_t *e = &writer->entries[writer->count];
    memset(e, 0, sizeof *e);
    e->name = hqi_strdup(member_name);
    if (!e->name)
        return hqi_nomem(err, "zip writer");
    e->crc = crc_update((uint32_t)crc32(0, Z_NULL, 0), bytes, len);
    e->usize = len;
    e->offset = writer->out.len;
    for (size_t i = 0; i < nlen; i++)
        if ((unsigned char)member_name[i] >= 0x80)
            e->flags = 0x800; /* name is UTF-8 */
    hqi_buf_t packed = {0};
    const uint8_t *data = bytes;
    if (deflate) {
        hq_status_t st = deflate_all(bytes, len, &packed, err);
        if (st != HQ_OK) {
            hqi_buf_free(&packed);
            free(e->name);
            return st;
        }
        e->method = 8;
        e->csize = packed.len;
        data = packed.data;
    } else {
        e->csize = len;
    }
    e->forced = writer->force_zip64;
    e->zip64_local = e->forced || e->usize >= U32_MAX_FIELD ||
                     e->csize >= U32_MAX_FIELD;
    uint8_t h[LOCAL_FIXED + 20];
    put32(h, SIG_LOCAL);
    put16(h + 4, e->zip64_local ? 45 : 20);
    put16(h + 6, e->flags);
    put16(h + 8, e->method);
    put16(h + 10, 0);                   /* time 00:00:00 */
    put16(h + 12, DOS_DATE_1980_01_01); /* date */
    put32(h + 14, e->crc);
    put32(h + 18, clamp32(e->csize, e->zip64_local));
    put32(h + 22, clamp32(e->usize, e->zip64_local));
    put16(h + 26, (uint16_t)nlen);
    put16(h + 28, e->zip64_local ? 20 : 0);
    hqi_buf_append(&writer->out, h, LOCAL_FIXED);
    hqi_buf_append(&writer->out, member_name, nlen);
    if (e->zip64_local) {
        uint8_t x[20];
        put16(x, ZIP64_EXTRA_ID);
        put16(x + 2, 16);
        put64(x + 4, e->usize);
        put64(x + 12, e->csize);
        hqi_buf_append(&writer->out, x, sizeof x);
    }
    if (e->csize)
        hqi_buf_append(&writer->out, data, (size_t)e->csize);
    hqi_buf_free(&packed);
    if (writer->out.failed) {
        free(e->name);
        return hqi_nomem(err, "zip writer");
    }
    writer->count++;
    return HQ_OK;
}

hq_status_t hqi_zip_writer_finish(hqi_zip_writer_t *writer, void **bytes, size_t *len,
                                  hq_error_t *err)
{
    *bytes = NULL;
    *len = 0;
    if (!writer)
        return hqi_error(err, HQ_ERR_ARGUMENT, "zip writer: NULL");
    hqi_buf_t *out = &writer->out;
    bool force = writer->force_zip64;
    uint64_t cd_offset = out->len;
    for (size_t i = 0; i < writer->count; i++) {
        const writer_entry_t *e = &writer->entries[i];
        bool big_u = e->forced || e->usize >= U32_MAX_FIELD;
        bool big_c = e->forced || e->csize >= U32_MAX_FIELD;
        bool big_o = e->forced || e->offset >= U32_MAX_FIELD;
        uint16_t xlen = (uint16_t)(8 * (big_u + big_c + big_o));
        size_t nlen = strlen(e->name);
        uint8_t h[CENTRAL_FIXED];
        memset(h, 0, sizeof h);
        put32(h, SIG_CENTRAL);
        put16(h + 4, xlen || e->zip64_local ? 45 : 20); /* made by: MS-DOS, spec 4.5 / 2.0 */
        put16(h + 6, xlen || e->zip64_local ? 45 : 20);
        put16(h + 8, e->flags);
        put16(h + 10, e->method);
        put16(h + 14, DOS_DATE_1980_01_01);
        put32(h + 16, e->crc);
        put32(h + 20, clamp32(e->csize, big_c));
        put32(h + 24, clamp32(e->usize, big_u));
        put16(h + 28, (uint16_t)nlen);
        put16(h + 30, xlen ? (uint16_t)(xlen + 4) : 0);
        put32(h + 42, clamp32(e->offset, big_o));
        hqi_buf_append(out, h, sizeof h);
        hqi_buf_append(out, e->name, nlen);
        if (xlen) {
            uint8_t x[28];
            size_t n = 4;
            put16(x, ZIP64_EXTRA_ID);
            put16(x + 2, xlen);
            if (big_u) { put64(x + n, e->usize); n += 8; }
            if (big_c) { put64(x + n, e->csize); n += 8; }
            if (big_o) { put64(x + n, e->offset); n += 8; }
            hqi_buf_append(out, x, n);
        }
    }
    uint64_t cd_size = out->len - cd_offset;
    uint64_t count = writer->count;
    if (force || count >= U16_MAX_FIELD || cd_offset >= U32_MAX_FIELD ||
        cd_size >= U32_MAX_FIELD) {
        uint64_t eocd64 = out->len;
        uint8_t z[EOCD64_FIXED + LOCATOR64_FIXED];
        memset(z, 0, sizeof z);
        put32(z, SIG_EOCD64);
        put64(z + 4, EOCD64_FIXED - 12); /* size of the rest of the record */
        put16(z + 12, 45);
        put16(z + 14, 45);
        put64(z + 24, count);
        put64(z + 32, count);
        put64(z + 40, cd_size);
        put64(z + 48, cd_offset);
        uint8_t *loc = z + EOCD64_FIXED;
        put32(loc, SIG_LOCATOR64);
        put64(loc + 8, eocd64);
        put32(loc + 16, 1);
        hqi_buf_append(out, z, sizeof z);
        force = true;
    }
    uint8_t e[EOCD_FIXED];
    memset(e, 0, sizeof e);
    put32(e, SIG_EOCD);
    uint16_t count16 = force && count >= U16_MAX_FIELD ? U16_MAX_FIELD : (uint16_t)count;
    put16(e + 8, count16);
    put16(e + 10, count16);
    put32(e + 12, clamp32(cd_size, false));
    put32(e + 16, clamp32(cd_offset, false));
    hqi_buf_append(out, e, sizeof e);
    hq_status_t st = HQ_OK;
    if (out->failed) {
        st = hqi_nomem(err, "zip writer");
    } else {
        *bytes = out->data;
        *len = out->len;
        out->data = NULL;
    }
    hqi_zip_writer_destroy(writer);
    return st;
}
