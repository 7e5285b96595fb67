/* fuzz_npz.c — libFuzzer target for the .npz (zip) reader: decode the input; when it decodes,
 * write it stored and deflated and check that both read back to the same set. Also drives the
 * streaming member reader over every member of any archive that opens. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hq/tensor.h"
#include "io/zip.h"

static void check_same(const hq_npz_t *a, const hq_npz_t *b)
{
    if (hq_npz_count(a) != hq_npz_count(b))
        __builtin_trap();
    for (size_t i = 0; i < hq_npz_count(a); i++) {
        const hq_tensor_t *x = hq_npz_get_index(a, i), *y = hq_npz_get_index(b, i);
        if (strcmp(hq_npz_key(a, i), hq_npz_key(b, i)) != 0 || x->dtype != y->dtype ||
            x->ndim != y->ndim || x->nbytes != y->nbytes ||
            memcmp(x->shape, y->shape, sizeof x->shape[0] * (size_t)x->ndim) != 0 ||
            (x->nbytes && memcmp(x->data, y->data, x->nbytes) != 0))
            __builtin_trap();
    }
}

static void stream_members(const uint8_t *data, size_t size)
{
    hqi_zip_t zip;
    hq_error_t err;
    if (hqi_zip_open(data, size, "fuzz.npz", &zip, &err) != HQ_OK)
        return;
    for (size_t i = 0; i < zip.member_count; i++) {
        hqi_zip_stream_t *s;
        if (hqi_zip_stream_open(&zip, &zip.members[i], "fuzz.npz", &s, &err) != HQ_OK)
            continue;
        uint8_t buf[7];
        uint64_t left = zip.members[i].size;
        /* alternate small reads and skips until the member ends or fails */
        for (int step = 0; left > 0; step++) {
            uint64_t n = left < sizeof buf ? left : sizeof buf;
            hq_status_t st = step % 2 ? hqi_zip_stream_skip(s, n + 3 > left ? left : n + 3, &err)
                                      : hqi_zip_stream_read(s, buf, (size_t)n, &err);
            if (st != HQ_OK)
                break;
            left -= step % 2 ? (n + 3 > left ? left : n + 3) : n;
        }
        hqi_zip_stream_close(s);
    }
    hqi_zip_close(&zip);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    stream_members(data, size);
    hq_npz_t *npz = NULL;
    hq_error_t err = {0};
    if (hq_npz_read_memory(data, size, "fuzz.npz", &npz, &err) != HQ_OK) {
        if (npz || err.message[0] == 0)
            __builtin_trap();
        return 0;
    }
    for (int compress = 0; compress <= 1; compress++) {
        void *bytes;
        size_t len;
        if (hq_npz_write_memory(npz, compress, &bytes, &len, &err) != HQ_OK)
            __builtin_trap();
        hq_npz_t *back = NULL;
        if (hq_npz_read_memory(bytes, len, "again.npz", &back, &err) != HQ_OK)
            __builtin_trap();
        check_same(npz, back);
        hq_npz_destroy(back);
        free(bytes);
    }
    hq_npz_destroy(npz);
    return 0;
}
