/* fuzz_tar.c — the in-memory tar reader on hostile bytes; what it reads must write and read back
 * the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/tar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hqi_tar_t tar;
    hq_error_t err;
    if (hqi_tar_read(data, size, "fuzz.tar", (size_t)1 << 20, &tar, &err) != HQ_OK)
        return 0;
    void *bytes = NULL;
    size_t len = 0;
    if (hqi_tar_write(tar.members, tar.count, &bytes, &len, &err) == HQ_OK) {
        hqi_tar_t again;
        if (hqi_tar_read(bytes, len, "again.tar", (size_t)1 << 20, &again, &err) != HQ_OK)
            abort();
        if (again.count != tar.count)
            abort();
        for (size_t i = 0; i < tar.count; i++)
            if (strcmp(again.members[i].name, tar.members[i].name) != 0 ||
                again.members[i].size != tar.members[i].size ||
                (tar.members[i].size &&
                 memcmp(again.members[i].data, tar.members[i].data, tar.members[i].size) != 0))
                abort();
        hqi_tar_free(&again);
    }
    free(bytes);
    hqi_tar_free(&tar);
    return 0;
}
