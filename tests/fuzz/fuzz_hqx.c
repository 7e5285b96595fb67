/* fuzz_hqx.c — the `.hqx` validator (hqrt_open_memory) on hostile programs. The checksum is
 * recomputed first, so that mutations reach the structural checks instead of stopping at the
 * checksum. Property: a program the validator accepts runs without touching memory outside its
 * buffers (ASan/UBSan watch), and gives the same bytes at 1 and 2 threads. Seeds: small valid
 * programs (tests/fuzz/corpus/hqx/, written by test_hqrt_standalone with HQRT_SEED_DIR). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hq/hqrt.h"
#include "runtime/hqrt_builder.h"
#include "runtime/hqrt_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Work of a validated program, to skip runs that would only time out (huge windows). */
static uint64_t work_of(const hqrt_model_t *m)
{
    uint64_t work = 0;
    for (uint32_t i = 0; i < m->header->op_count; i++) {
        const hqx_op_t *op = &m->ops[i];
        const hqx_tensor_t *out = &m->tensors[m->ids[op->outputs_first]];
        uint64_t n = out->bytes + 1;
        if (op->code == HQX_OP_CONV || op->code == HQX_OP_DECONV || op->code == HQX_OP_DENSE) {
            const hqx_conv_params_t *p = hqrt_i_params(m, op);
            const hqx_tensor_t *in = &m->tensors[m->ids[op->inputs_first]];
            n *= (uint64_t)p->kernel_h * (uint64_t)p->kernel_w + 1;
            n *= in->bytes + 1;
        } else if (op->code == HQX_OP_AVGPOOL || op->code == HQX_OP_MAXPOOL) {
            const hqx_pool_params_t *p = hqrt_i_params(m, op);
            n *= (uint64_t)p->kernel_h * (uint64_t)p->kernel_w;
        } else {
            const hqx_tensor_t *in = op->input_count ? &m->tensors[m->ids[op->inputs_first]] : out;
            n += in->bytes;
        }
        work += n;
        if (work > ((uint64_t)1 << 26))
            return work;
    }
    return work;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = aligned_alloc(64, (size + 63) / 64 * 64 + 64);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    hqrt_b_reseal(copy, size);
    hqrt_model_t *m = NULL;
    hqrt_error_t err;
    if (hqrt_open_memory(copy, size, "fuzz.hqx", &m, &err) != HQRT_OK) {
        if (!memchr(err.message, 0, sizeof err.message) || strchr(err.message, '\n'))
            abort(); /* one line, always terminated */
        free(copy);
        return 0;
    }
    if (m->header->arena_size <= (1u << 20) && work_of(m) <= ((uint64_t)1 << 26)) {
        void *ins[HQX_MAX_OP_INPUTS] = {0}, *o1[64] = {0}, *o2[64] = {0};
        hqrt_io_t io;
        bool ok = m->header->input_count <= 64 && m->header->output_count <= 64;
        for (uint32_t i = 0; ok && i < m->header->input_count; i++) {
            hqrt_describe(m, HQRT_INPUT, (int)i, &io, NULL);
            ins[i] = malloc(io.bytes + 1);
            for (size_t k = 0; ins[i] && k < io.bytes; k++)
                ((uint8_t *)ins[i])[k] = (uint8_t)(k * 131 + i);
            ok = ins[i] != NULL;
        }
        for (uint32_t o = 0; ok && o < m->header->output_count; o++) {
            hqrt_describe(m, HQRT_OUTPUT, (int)o, &io, NULL);
            o1[o] = malloc(io.bytes + 1);
            o2[o] = malloc(io.bytes + 1);
            ok = o1[o] && o2[o];
        }
        hqrt_run_options_t one = {1}, two = {2};
        if (ok && hqrt_run(m, 1, (const void *const *)ins, o1, &one, &err) == HQRT_OK &&
            hqrt_run(m, 1, (const void *const *)ins, o2, &two, &err) == HQRT_OK) {
            for (uint32_t o = 0; o < m->header->output_count; o++) {
                hqrt_describe(m, HQRT_OUTPUT, (int)o, &io, NULL);
                if (memcmp(o1[o], o2[o], io.bytes) != 0)
                    abort(); /* thread count changed the bytes */
            }
        }
        for (int i = 0; i < 64; i++) {
            free(ins[i]);
            free(o1[i]);
            free(o2[i]);
        }
    }
    hqrt_close(m);
    free(copy);
    return 0;
}
