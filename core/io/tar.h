/* tar.h — internal: ustar archives held in memory. Reading never touches the disk; writing is
 * deterministic (mtime 0, uid/gid 0, owner "", mode 0644, members in the order given). Long names
 * (> 100 bytes) use the ustar prefix field when they split at a '/', else a GNU 'L' record;
 * pax 'x' records with a `path` are read. */
#ifndef HQ_CORE_IO_TAR_H
#define HQ_CORE_IO_TAR_H

#include <stddef.h>
#include <stdint.h>

#include "hq/common.h"

typedef struct hqi_tar_member {
    char *name;        /* full member name, owned */
    uint8_t *data;     /* owned copy of the contents (+1 NUL, not counted) */
    size_t size;
} hqi_tar_member_t;

typedef struct hqi_tar {
    size_t count;
    hqi_tar_member_t *members;  /* owned */
} hqi_tar_t;

/* Reads every regular-file member of a tar held in memory; directories are skipped, links and
 * devices refused; each member at most `member_limit` bytes (HQ_ERR_LIMIT naming it); headers
 * checked (checksum, octal fields, data inside the buffer). `name` is used in errors. */
hq_status_t hqi_tar_read(const void *bytes, size_t len, const char *name, size_t member_limit,
                         hqi_tar_t *tar, hq_error_t *err);
void hqi_tar_free(hqi_tar_t *tar);

/* Writes members in the given order as a ustar archive, ending in two zero blocks, padded to a
 * 10240-byte record like GNU tar. The caller owns *bytes (free()). */
hq_status_t hqi_tar_write(const hqi_tar_member_t *members, size_t count, void **bytes, size_t *len,
                          hq_error_t *err);

#endif
