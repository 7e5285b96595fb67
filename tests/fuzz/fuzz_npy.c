/* fuzz_npy.c — libFuzzer target for the .npy reader: decode the input; when it decodes, encode the
 * tensor again and check that reading it back gives the same tensor. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hq/tensor.h"

static void check_same(const hq_tensor_t *a, const hq_tensor_t *b)
{
    if (a->dtype != b->dtype || a->ndim != b->ndim || a->nbytes != b->nbytes ||
        memcmp(a->shape, b->shape, sizeof a->shape[0] * (size_t)a->ndim) != 0 ||
        (a->nbytes && memcmp(a->data, b->data, a->nbytes) != 0))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hq_npy_header_t header;
    hq_error_t err;
    hq_npy_parse_header(data, size, "fuzz.npy", &header, &err);

    hq_tensor_t *t = NULL;
    memset(&err, 0, sizeof err);
    if (hq_npy_read_memory(data, size, "fuzz.npy", &t, &err) != HQ_OK) {
        if (t || err.message[0] == 0)
            __builtin_trap();
        return 0;
    }
    void *bytes;
    size_t len;
    if (hq_npy_write_memory(t, &bytes, &len, &err) != HQ_OK)
        __builtin_trap();
    hq_tensor_t *back = NULL;
    if (hq_npy_read_memory(bytes, len, "again.npy", &back, &err) != HQ_OK)
        __builtin_trap();
    check_same(t, back);

    /* conversion of whatever was read must be safe for every target dtype */
    for (int d = 0; d < HQ_DTYPE_COUNT; d++) {
        hq_tensor_t *c = NULL;
        if (hq_tensor_convert(t, (hq_dtype_t)d, &c, &err) != HQ_OK)
            __builtin_trap();
        hq_tensor_destroy(c);
    }
    free(bytes);
    hq_tensor_destroy(back);
    hq_tensor_destroy(t);
    return 0;
}
