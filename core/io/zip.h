/* zip.h — internal: the zip container under .npz. Reads the central directory (zip64 aware) of an
 * archive held in memory (or memory-mapped) and gives each member's location, so that a caller can
 * read a stored member in place or inflate a deflated one, whole or as a stream. */
#ifndef HQ_CORE_IO_ZIP_H
#define HQ_CORE_IO_ZIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hq/common.h"

typedef struct hqi_zip_member {
    char *name;                /* member name as stored ("conv1/kernel:0.npy"), NUL-terminated */
    uint16_t method;           /* 0 stored, 8 deflated; others are refused at open */
    uint64_t compressed_size;
    uint64_t size;             /* uncompressed size */
    uint32_t crc32;
    uint64_t data_offset;      /* offset of the (compressed) data from the start of the zip */
} hqi_zip_member_t;

typedef struct hqi_zip {
    const uint8_t *bytes;      /* not owned */
    size_t len;
    size_t member_count;
    hqi_zip_member_t *members; /* owned */
} hqi_zip_t;

/* Parses the central directory of `bytes` (not copied: it must outlive the zip). Checks every
 * member's local header and that its data lies inside the buffer. `name` is used in errors. */
hq_status_t hqi_zip_open(const void *bytes, size_t len, const char *name, hqi_zip_t *zip,
                         hq_error_t *err);
void hqi_zip_close(hqi_zip_t *zip);

/* Inflates or copies a whole member into a new buffer of member->size bytes (+1 NUL, not counted)
 * and checks its CRC. The caller owns *out (free()). */
hq_status_t hqi_zip_extract(const hqi_zip_t *zip, const hqi_zip_member_t *member,
                            const char *name, void **out, hq_error_t *err);

/* A sequential reader over one member's uncompressed bytes (for members too large to inflate
 * whole). Stored members are read in place. */
typedef struct hqi_zip_stream hqi_zip_stream_t;
hq_status_t hqi_zip_stream_open(const hqi_zip_t *zip, const hqi_zip_member_t *member,
                                const char *name, hqi_zip_stream_t **out, hq_error_t *err);
/* Reads exactly `len` bytes from the current position; HQ_ERR_FORMAT when the member ends first. */
hq_status_t hqi_zip_stream_read(hqi_zip_stream_t *stream, void *out, size_t len, hq_error_t *err);
/* Skips `len` bytes. */
hq_status_t hqi_zip_stream_skip(hqi_zip_stream_t *stream, uint64_t len, hq_error_t *err);
void hqi_zip_stream_close(hqi_zip_stream_t *stream);

/* Writer: members appended in order, deterministic (DOS time 1980-01-01 00:00, no extra fields
 * other than zip64 where needed). */
typedef struct hqi_zip_writer hqi_zip_writer_t;
hq_status_t hqi_zip_writer_create(hqi_zip_writer_t **out, hq_error_t *err);
hq_status_t hqi_zip_writer_add(hqi_zip_writer_t *writer, const char *member_name,
                               const void *bytes, size_t len, bool deflate, hq_error_t *err);
/* Finishes the archive and hands over its bytes (free()); the writer is freed either way. */
hq_status_t hqi_zip_writer_finish(hqi_zip_writer_t *writer, void **bytes, size_t *len,
                                  hq_error_t *err);
void hqi_zip_writer_destroy(hqi_zip_writer_t *writer);

/* Test knob: while on, members added get zip64 extra fields (local and central) even when nothing
 * needs them; when on at finish, the zip64 end of central directory record and locator are written. */
void hqi_zip_writer_force_zip64(hqi_zip_writer_t *writer, bool force);

#endif
