/* tar.c — ustar archives held in memory: a hostile-input reader (ustar, GNU and pax long names,
 * octal and base-256 numbers) and a deterministic writer. Nothing here touches the disk. */
#include "io/tar.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

enum {
    TAR_BLOCK = 512,
    TAR_RECORD = 10240,     /* GNU tar's default record: 20 blocks */
    TAR_NAME_MAX = 65536,   /* longest member name accepted from a GNU 'L' or pax record */
    MESSAGE_NAME_MAX = 120, /* member names are shortened to this in error messages */
};

/* Byte offsets of the header fields (POSIX.1-1988 ustar). */
/* clang-format off */
enum {
    OFF_NAME = 0, LEN_NAME = 100,
    OFF_MODE = 100, LEN_MODE = 8,
    OFF_UID = 108, LEN_UID = 8,
    OFF_GID = 116, LEN_GID = 8,
    OFF_SIZE = 124, LEN_SIZE = 12,
    OFF_MTIME = 136, LEN_MTIME = 12,
    OFF_CHKSUM = 148, LEN_CHKSUM = 8,
    OFF_TYPE = 156,
    OFF_LINKNAME = 157, LEN_LINKNAME = 100,
    OFF_MAGIC = 257, LEN_MAGIC = 6,
    OFF_VERSION = 263, LEN_VERSION = 2,
    OFF_UNAME = 265, LEN_UNAME = 32,
    OFF_GNAME = 297, LEN_GNAME = 32,
    OFF_DEVMAJOR = 329, LEN_DEVMAJOR = 8,
    OFF_DEVMINOR = 337, LEN_DEVMINOR = 8,
    OFF_PREFIX = 345, LEN_PREFIX = 155,
};
/* clang-format on */

/* ---- reading ------------------------------------------------------------------------------ */

/* A printable, one-line, bounded copy of a member name for error messages. */
static const char *shown(const char *name, char out[MESSAGE_NAME_MAX + 4])
{
    size_t n = 0;
    for (const char *p = name; *p && n < MESSAGE_NAME_MAX; p++)
        out[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
    if (name[n] != '\0' && n == MESSAGE_NAME_MAX) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Parses a numeric header field: octal digits, optionally surrounded by spaces and ended by NUL
 * or space (an all-NUL field is 0), or GNU base-256 (first byte 0x80, big-endian after it).
 * Negative base-256 numbers (first byte 0xff) are refused. */
static bool parse_number(const uint8_t *field, size_t len, uint64_t *out)
{
    if (field[0] == 0x80) {
        uint64_t v = 0;
        for (size_t i = 1; i < len; i++) {
            if (v >> 56)
                return false;
            v = (v << 8) | field[i];
        }
        *out = v;
        return true;
    }
    if (field[0] & 0x80)
        return false;
    size_t i = 0;
    while (i < len && field[i] == ' ')
        i++;
    uint64_t v = 0;
    while (i < len && field[i] >= '0' && field[i] <= '7') {
        if (v >> 61)
            return false;
        v = v * 8 + (uint64_t)(field[i] - '0');
        i++;
    }
    for (; i < len; i++)
        if (field[i] != ' ' && field[i] != '\0')
            return false;
    *out = v;
    return true;
}

/* Checksum of a header with the checksum field counted as spaces: unsigned (POSIX) and signed
 * (what some historic tars wrote) sums. */
static void header_sums(const uint8_t *h, uint64_t *unsigned_sum, int64_t *signed_sum)
{
    uint64_t u = 0;
    int64_t s = 0;
    for (size_t i = 0; i < TAR_BLOCK; i++) {
        uint8_t b = (i >= OFF_CHKSUM && i < OFF_CHKSUM + LEN_CHKSUM) ? ' ' : h[i];
        u += b;
        s += (int8_t)b;
    }
    *unsigned_sum = u;
    *signed_sum = s;
}

/* Copies a fixed-size, NUL-padded header field into a C string. */
static char *field_string(const uint8_t *field, size_t len)
{
    size_t n = 0;
    while (n < len && field[n])
        n++;
    return hqi_strndup((const char *)field, n);
}

/* The state carried from extended headers ('L', 'x') to the header they describe. */
typedef struct pending {
    char *path;    /* from a GNU 'L' record or a pax `path`, owned; NULL when none */
    bool has_size; /* a pax `size` overrides the header's size field */
    uint64_t size;
} pending_t;

static void pending_clear(pending_t *p)
{
    free(p->path);
    p->path = NULL;
    p->has_size = false;
    p->size = 0;
}

/* Parses pax extended header records "<len> <key>=<value>\n" and keeps `path` and `size`. */
static hq_status_t parse_pax(const uint8_t *data, size_t len, const char *name, size_t offset,
                             pending_t *pending, hq_error_t *err)
{
    size_t pos = 0;
    while (pos < len) {
        size_t rec_len = 0, i = pos;
        while (i < len && data[i] >= '0' && data[i] <= '9') {
            if (rec_len > len)
                break;
            rec_len = rec_len * 10 + (size_t)(data[i] - '0');
            i++;
        }
        if (i == pos && data[pos] == '\0' && all_zero(data + pos, len - pos))
            break; /* trailing NUL padding written by some tars */
        if (i == pos || i >= len || data[i] != ' ' || rec_len > len - pos || rec_len < 5 ||
            data[pos + rec_len - 1] != '\n')
            return hqi_error(err, HQ_ERR_FORMAT,
                             "%s: pax header at offset %zu: malformed record at byte %zu", name,
                             offset, pos);
        const uint8_t *key = data + i + 1;
        const uint8_t *end = data + pos + rec_len - 1; /* the '\n' */
        const uint8_t *eq = memchr(key, '=', (size_t)(end - key));
        if (!eq || eq == key)
            return hqi_error(err, HQ_ERR_FORMAT,
                             "%s: pax header at offset %zu: record at byte %zu has no key=value",
                             name, offset, pos);
        size_t key_len = (size_t)(eq - key);
        const uint8_t *value = eq + 1;
        size_t value_len = (size_t)(end - value);
        if (key_len == 4 && memcmp(key, "path", 4) == 0) {
            if (memchr(value, '\0', value_len) || value_len == 0)
                return hqi_error(err, HQ_ERR_FORMAT,
                                 "%s: pax header at offset %zu: empty or NUL in 'path'", name,
                                 offset);
            if (value_len > TAR_NAME_MAX)
                return hqi_error(err, HQ_ERR_LIMIT,
                                 "%s: pax header at offset %zu: 'path' is %zu bytes, more than "
                                 "%d",
                                 name, offset, value_len, TAR_NAME_MAX);
            char *path = hqi_strndup((const char *)value, value_len);
            if (!path)
                return hqi_nomem(err, name);
            free(pending->path);
            pending->path = path;
        } else if (key_len == 4 && memcmp(key, "size", 4) == 0) {
            uint64_t v = 0;
            if (value_len == 0 || value_len > 19)
                return hqi_error(err, HQ_ERR_FORMAT,
                                 "%s: pax header at offset %zu: bad 'size' value", name, offset);
            for (size_t k = 0; k < value_len; k++) {
                if (value[k] < '0' || value[k] > '9')
                    return hqi_error(err, HQ_ERR_FORMAT,
                                     "%s: pax header at offset %zu: bad 'size' value", name,
                                     offset);
                v = v * 10 + (uint64_t)(value[k] - '0');
            }
            pending->has_size = true;
            pending->size = v;
        } else if (key_len > 11 && memcmp(key, "GNU.sparse.", 11) == 0) {
            return hqi_error(err, HQ_ERR_UNSUPPORTED,
                             "%s: pax header at offset %zu: sparse files are not supported", name,
                             offset);
        }
        pos += rec_len;
    }
    return HQ_OK;
}

static hq_status_t append_member(hqi_tar_t *tar, size_t *cap, char *name, const uint8_t *data,
                                 size_t size, const char *archive, hq_error_t *err)
{
    if (tar->count == *cap) {
        size_t new_cap = *cap ? *cap * 2 : 8;
        size_t bytes;
        if (!hqi_mul_size(new_cap, sizeof *tar->members, &bytes)) {
            free(name);
            return hqi_nomem(err, archive);
        }
        hqi_tar_member_t *grown = realloc(tar->members, bytes);
        if (!grown) {
            free(name);
            return hqi_nomem(err, archive);
        }
        tar->members = grown;
        *cap = new_cap;
    }
    uint8_t *copy = malloc(size + 1);
    if (!copy) {
        free(name);
        return hqi_nomem(err, archive);
    }
    if (size)
        memcpy(copy, data, size);
    copy[size] = 0;
    tar->members[tar->count].name = name;
    tar->members[tar->count].data = copy;
    tar->members[tar->count].size = size;
    tar->count++;
    return HQ_OK;
}

/* Full name of the member a header describes: a pending long name, else ustar prefix + name. */
static char *header_name(const uint8_t *h, const pending_t *pending)
{
    if (pending->path)
        return hqi_strdup(pending->path);
    char *base = field_string(h + OFF_NAME, LEN_NAME);
    bool posix = memcmp(h + OFF_MAGIC, "ustar\0", 6) == 0;
    if (!base || !posix || h[OFF_PREFIX] == '\0')
        return base;
    char *prefix = field_string(h + OFF_PREFIX, LEN_PREFIX);
    if (!prefix) {
        free(base);
        return NULL;
    }
    size_t plen = strlen(prefix), blen = strlen(base);
    char *full = malloc(plen + 1 + blen + 1);
    if (full) {
        memcpy(full, prefix, plen);
        full[plen] = '/';
        memcpy(full + plen + 1, base, blen + 1);
    }
    free(prefix);
    free(base);
    return full;
}

static const char *type_description(uint8_t type)
{
    switch (type) {
    case '1':
        return "a hard link";
    case '2':
        return "a symbolic link";
    case '3':
        return "a character device";
    case '4':
        return "a block device";
    case '6':
        return "a FIFO";
    case 'S':
        return "a GNU sparse file";
    case 'M':
        return "a GNU multi-volume continuation";
    case 'K':
        return "a GNU long link name";
    default:
        return NULL;
    }
}

hq_status_t hqi_tar_read(const void *bytes, size_t len, const char *name, size_t member_limit,
                         hqi_tar_t *tar, hq_error_t *err)
{
    tar->count = 0;
    tar->members = NULL;
    if (!bytes && len)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: no bytes", name);
    if (len == 0)
        return hqi_error(err, HQ_ERR_FORMAT, "%s: empty file, not a tar archive", name);

    const uint8_t *buf = bytes;
    size_t cap = 0, pos = 0;
    pending_t pending = {0};
    hq_status_t st = HQ_OK;
    char shown_buf[MESSAGE_NAME_MAX + 4];
    bool ended = false;

    while (pos < len) {
        size_t remain = len - pos;
        if (remain < TAR_BLOCK) {
            st = hqi_error(err, HQ_ERR_FORMAT,
                           "%s: truncated: header at offset %zu has %zu of 512 bytes", name, pos,
                           remain);
            goto fail;
        }
        const uint8_t *h = buf + pos;
        if (all_zero(h, TAR_BLOCK)) {
            ended = true; /* end-of-archive marker; anything after it is ignored, like tar does */
            break;
        }

        uint64_t stored_sum;
        uint64_t unsigned_sum;
        int64_t signed_sum;
        header_sums(h, &unsigned_sum, &signed_sum);
        if (!parse_number(h + OFF_CHKSUM, LEN_CHKSUM, &stored_sum)) {
            st = hqi_error(err, HQ_ERR_FORMAT,
                           "%s: header at offset %zu: checksum field is not an octal number "
                           "(not a tar archive?)",
                           name, pos);
            goto fail;
        }
        if (stored_sum != unsigned_sum && (int64_t)stored_sum != signed_sum) {
            st = hqi_error(err, HQ_ERR_FORMAT,
                           "%s: header at offset %zu: bad checksum (header says %llu, computed "
                           "%llu)",
                           name, pos, (unsigned long long)stored_sum,
                           (unsigned long long)unsigned_sum);
            goto fail;
        }

        uint8_t type = h[OFF_TYPE];
        char *member = header_name(h, &pending);
        if (!member) {
            st = hqi_nomem(err, name);
            goto fail;
        }
        const char *refused = type_description(type);
        if (refused && type != 'K') {
            st = hqi_error(err, HQ_ERR_UNSUPPORTED,
                           "%s: member '%s' is %s; only regular files are accepted", name,
                           shown(member, shown_buf), refused);
            free(member);
            goto fail;
        }
        uint64_t size64;
        if (!parse_number(h + OFF_SIZE, LEN_SIZE, &size64)) {
            st = hqi_error(err, HQ_ERR_FORMAT, "%s: member '%s': size field is not a number", name,
                           shown(member, shown_buf));
            free(member);
            goto fail;
        }
        /* a pax size applies to the file entry it precedes, not to further extended headers */
        bool extended = type == 'x' || type == 'g' || type == 'L' || type == 'K';
        if (pending.has_size && !extended)
            size64 = pending.size;

        size_t data_pos = pos + TAR_BLOCK;
        size_t available = len - data_pos;
        if (size64 > available) {
            st = hqi_error(err, HQ_ERR_FORMAT,
                           "%s: member '%s': truncated, header says %llu bytes, %zu remain", name,
                           shown(member, shown_buf), (unsigned long long)size64, available);
            free(member);
            goto fail;
        }
        size_t size = (size_t)size64;
        const uint8_t *data = buf + data_pos;
        /* the data is followed by padding to a whole block; a short final pad is tolerated */
        size_t padded = size + (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK;
        size_t next = padded > available ? len : data_pos + padded;

        switch (type) {
        case '0':
        case '\0':
        case '7': /* contiguous file: a regular file everywhere that matters */
            if (member[0] == '\0') {
                st = hqi_error(err, HQ_ERR_FORMAT, "%s: header at offset %zu: empty member name",
                               name, pos);
                free(member);
                goto fail;
            }
            if (size > member_limit) {
                st = hqi_error(err, HQ_ERR_LIMIT,
                               "%s: member '%s': %zu bytes, more than the limit of %zu bytes", name,
                               shown(member, shown_buf), size, member_limit);
                free(member);
                goto fail;
            }
            st = append_member(tar, &cap, member, data, size, name, err);
            if (st != HQ_OK)
                goto fail;
            pending_clear(&pending);
            break;
        case '5': /* directory */
        case 'V': /* GNU volume label */
            free(member);
            pending_clear(&pending);
            break;
        case 'g': /* pax global header: nothing in it changes how hq reads members */
        case 'K': /* GNU long link target: the link it belongs to is refused next */
            free(member);
            break;
        case 'x': {
            free(member);
            pending_t next_pending = {0};
            next_pending.path = pending.path;
            pending.path = NULL;
            st = parse_pax(data, size, name, pos, &next_pending, err);
            pending_clear(&pending);
            pending = next_pending;
            if (st != HQ_OK)
                goto fail;
            break;
        }
        case 'L': {
            free(member);
            if (size > TAR_NAME_MAX) {
                st = hqi_error(err, HQ_ERR_LIMIT,
                               "%s: GNU long name at offset %zu is %zu bytes, more than %d", name,
                               pos, size, TAR_NAME_MAX);
                goto fail;
            }
            size_t n = 0;
            while (n < size && data[n])
                n++;
            if (n == 0) {
                st = hqi_error(err, HQ_ERR_FORMAT, "%s: GNU long name at offset %zu is empty", name,
                               pos);
                goto fail;
            }
            char *path = hqi_strndup((const char *)data, n);
            if (!path) {
                st = hqi_nomem(err, name);
                goto fail;
            }
            free(pending.path);
            pending.path = path;
            break;
        }
        default:
            st = hqi_error(err, HQ_ERR_UNSUPPORTED,
                           "%s: member '%s' has unknown type '%c' (0x%02x); only regular files "
                           "are accepted",
                           name, shown(member, shown_buf),
                           (type >= 0x20 && type < 0x7f) ? type : '?', type);
            free(member);
            goto fail;
        }
        pos = next;
    }

    if (pending.path || pending.has_size) {
        st = hqi_error(err, HQ_ERR_FORMAT,
                       "%s: truncated: an extended header at the end describes no member", name);
        goto fail;
    }
    if (!ended) {
        st = hqi_error(err, HQ_ERR_FORMAT, "%s: truncated: no end-of-archive marker%s%s%s", name,
                       tar->count ? " after member '" : "",
                       tar->count ? shown(tar->members[tar->count - 1].name, shown_buf) : "",
                       tar->count ? "'" : "");
        goto fail;
    }
    return HQ_OK;

fail:
    pending_clear(&pending);
    hqi_tar_free(tar);
    return st;
}

void hqi_tar_free(hqi_tar_t *tar)
{
    if (!tar)
        return;
    for (size_t i = 0; i < tar->count; i++) {
        free(tar->members[i].name);
        free(tar->members[i].data);
    }
    free(tar->members);
    tar->members = NULL;
    tar->count = 0;
}

/* ---- writing ------------------------------------------------------------------------------ */

/* Writes `value` as zero-padded octal filling len-1 digits and a NUL; base-256 when it does not
 * fit (GNU extension, read by GNU tar, bsdtar and Python). */
static void put_number(uint8_t *field, size_t len, uint64_t value)
{
    uint64_t max_octal = (uint64_t)1 << (3 * (len - 1));
    if (value < max_octal) {
        for (size_t i = len - 1; i-- > 0;) {
            field[i] = (uint8_t)('0' + (value & 7));
            value >>= 3;
        }
        field[len - 1] = '\0';
        return;
    }
    memset(field, 0, len);
    field[0] = 0x80;
    for (size_t i = len; i-- > 1 && value;) {
        field[i] = (uint8_t)(value & 0xff);
        value >>= 8;
    }
}

static void fill_header(uint8_t *h, const char *name, size_t name_len, const char *prefix,
                        size_t prefix_len, uint8_t type, uint64_t size)
{
    memset(h, 0, TAR_BLOCK);
    memcpy(h + OFF_NAME, name, name_len);
    put_number(h + OFF_MODE, LEN_MODE, 0644);
    put_number(h + OFF_UID, LEN_UID, 0);
    put_number(h + OFF_GID, LEN_GID, 0);
    put_number(h + OFF_SIZE, LEN_SIZE, size);
    put_number(h + OFF_MTIME, LEN_MTIME, 0);
    h[OFF_TYPE] = type;
    memcpy(h + OFF_MAGIC, "ustar\0", LEN_MAGIC);
    memcpy(h + OFF_VERSION, "00", LEN_VERSION);
    put_number(h + OFF_DEVMAJOR, LEN_DEVMAJOR, 0);
    put_number(h + OFF_DEVMINOR, LEN_DEVMINOR, 0);
    if (prefix_len)
        memcpy(h + OFF_PREFIX, prefix, prefix_len);
    uint64_t sum;
    int64_t signed_sum;
    header_sums(h, &sum, &signed_sum);
    snprintf((char *)h + OFF_CHKSUM, LEN_CHKSUM, "%06o", (unsigned)sum);
    h[OFF_CHKSUM + 7] = ' ';
}

/* Appends data and zero padding up to a whole block. */
static void append_padded(hqi_buf_t *out, const void *data, size_t len)
{
    hqi_buf_append(out, data, len);
    hqi_buf_zeros(out, (TAR_BLOCK - len % TAR_BLOCK) % TAR_BLOCK);
}

/* Where a name longer than 100 bytes can be split into prefix '/' name; 0 when it cannot. */
static size_t prefix_split(const char *name, size_t len)
{
    for (size_t i = len; i-- > 0;) {
        if (name[i] != '/')
            continue;
        size_t rest = len - i - 1;
        if (rest > LEN_NAME)
            return 0; /* splitting further left only makes the rest longer */
        if (i <= LEN_PREFIX && i > 0 && rest > 0)
            return i;
    }
    return 0;
}

hq_status_t hqi_tar_write(const hqi_tar_member_t *members, size_t count, void **bytes, size_t *len,
                          hq_error_t *err)
{
    *bytes = NULL;
    *len = 0;
    hqi_buf_t out = {0};
    uint8_t h[TAR_BLOCK];
    for (size_t i = 0; i < count; i++) {
        const hqi_tar_member_t *m = &members[i];
        if (!m->name || !m->name[0]) {
            hqi_buf_free(&out);
            return hqi_error(err, HQ_ERR_ARGUMENT, "tar: member %zu has an empty name", i);
        }
        if (!m->data && m->size) {
            hqi_buf_free(&out);
            return hqi_error(err, HQ_ERR_ARGUMENT, "tar: member '%s' has no data", m->name);
        }
        size_t name_len = strlen(m->name);
        if (name_len <= LEN_NAME) {
            fill_header(h, m->name, name_len, NULL, 0, '0', m->size);
        } else {
            size_t split = prefix_split(m->name, name_len);
            if (split) {
                fill_header(h, m->name + split + 1, name_len - split - 1, m->name, split, '0',
                            m->size);
            } else {
                fill_header(h, "././@LongLink", 13, NULL, 0, 'L', name_len + 1);
                hqi_buf_append(&out, h, TAR_BLOCK);
                append_padded(&out, m->name, name_len + 1);
                fill_header(h, m->name, LEN_NAME, NULL, 0, '0', m->size);
            }
        }
        hqi_buf_append(&out, h, TAR_BLOCK);
        append_padded(&out, m->data, m->size);
    }
    hqi_buf_zeros(&out, 2 * TAR_BLOCK);
    hqi_buf_zeros(&out, (TAR_RECORD - out.len % TAR_RECORD) % TAR_RECORD);
    if (out.failed) {
        hqi_buf_free(&out);
        return hqi_nomem(err, "tar");
    }
    *bytes = out.data;
    *len = out.len;
    return HQ_OK;
}
