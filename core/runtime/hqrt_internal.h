/* hqrt_internal.h — the runtime's internal structures, shared by the validator
 * (hqrt_program.c), the executor (hqrt_run.c) and the fast kernels (hqrt_kernels_avx2.c,
 * hqrt_kernels_vnni.c; their model-independent interface is hqrt_fast.h, which libhq's quantized
 * emulator includes too). Plain C; no libhq headers (libhqrt is built from core/runtime/ alone).
 * Prefix hqrt_i_. */
#ifndef HQRT_INTERNAL_H
#define HQRT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hqrt_kernels_ref.h"
#include "hq/hqrt.h"
#include "hqrt_fast.h"
#include "hqrt_format.h"

/* Live range of a tensor over the program, computed by the validator. */
typedef struct hqrt_i_live {
    int64_t def;  /* index of the producing op, -1 for a program input */
    int64_t last; /* index of the last consuming op, op_count for a program output */
} hqrt_i_live_t;

/* What one op cost over profiled runs (hqrt_set_profiling). */
typedef struct hqrt_i_op_time {
    double seconds; /* in its kernel calls, summed over threads */
    int64_t runs;   /* samples it ran on */
} hqrt_i_op_time_t;

#define HQRT_MAX_THREADS 64
/* Bytes [offset, offset + bytes) of an arena. */
typedef struct hqrt_i_span {
    uint64_t offset, bytes;
} hqrt_i_span_t;

/* The worker threads a model keeps between runs (hqrt_run.c). */
typedef struct hqrt_i_team hqrt_i_team_t;
struct hqrt_model {
    char name[128];      /* file or memory name, for error messages */
    const uint8_t *base; /* the whole program */
    size_t size;
    void *mapping; /* non-NULL when the program was mmap()ed by hqrt_open_file */
    const hqx_header_t *header;
    const hqx_tensor_t *tensors;
    const hqx_op_t *ops;
    const uint32_t *ids;
    const char *strings;
    hqrt_io_t *io;               /* input_count inputs, then output_count outputs */
    hqrt_i_prepared_t *prepared; /* one per op */
    size_t scratch_size;         /* kernel scratch bytes one thread needs for any op */
    uint8_t *arena;              /* arena_count arenas of arena_stride bytes, made by hqrt_run */
    size_t arena_stride;         /* arena_size rounded up, plus HQRT_ARENA_SLACK */
    int arena_count;             /* group_samples per thread that runs whole samples */
    int group_samples;           /* most samples a thread runs together (1: one at a time) */
    uint32_t group_from;         /* a group runs ops before this one sample by sample, */
    uint32_t group_to;           /* ... then up to this one op by op, the rest sample by sample */
    hqrt_i_span_t *carry;        /* the arena bytes the ops before group_from leave to the later
                                    ones (hqrt_schedule.c's run_group copies them) */
    uint32_t carry_count;
    uint8_t *scratch;            /* scratch_size bytes per thread */
    int scratch_threads;
    bool profiling;              /* hqrt_run times every op (hqrt_set_profiling) */
    hqrt_i_op_time_t *op_time;   /* one per op: profiled totals; NULL until profiling is first on */
    hqrt_i_team_t *team;         /* workers of the last run with several threads, or NULL */
};

/* What one op call runs (hqrt_i_run_op): an op's output rows [row_begin, row_end) of one sample,
 * or of `samples` samples at once for a grouped op. Ops without a fast path run whole (rows 0 ..
 * all) through the reference kernels. */
typedef struct hqrt_i_op_call {
    const hqrt_model_t *m;
    const hqx_op_t *op;
    const hqrt_i_prepared_t *prep;
    uint8_t *arena;
    uint8_t *scratch; /* model->scratch_size bytes owned by this thread */
    int64_t row_begin, row_end;
    int64_t samples; /* > 1: a grouped op (prep->grouped) over the samples in arena, arena +
                        arena_stride, ... (all their rows) */
} hqrt_i_op_call_t;

/* Runs one op call (hqrt_run.c): 0, or nonzero when its kernel refused the arguments. */
int hqrt_i_run_op(const hqrt_i_op_call_t *c);

/* Stops and frees a model's worker threads (hqrt_schedule.c; NULL: nothing). */
void hqrt_i_team_destroy(hqrt_i_team_t *team);

/* Writes "name: message" into *err (when not NULL) and returns status. */
hqrt_status_t hqrt_i_fail(hqrt_error_t *err, hqrt_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* FNV-1a-64 of the program with the header's checksum field read as zero. */
uint64_t hqrt_i_checksum(const uint8_t *bytes, size_t len);

/* Validates a whole program (see docs/deploy.md "Validation"). `name` prefixes the error line. */
hqrt_status_t hqrt_i_validate(const uint8_t *bytes, size_t len, const char *name,
                              hqrt_error_t *err);

/* Address of a blob inside a validated program (NULL for an absent blob). */
static inline const void *hqrt_i_blob(const hqrt_model_t *m, hqx_blob_t blob)
{
    return blob.size ? (const void *)(m->base + blob.offset) : NULL;
}

static inline const void *hqrt_i_params(const hqrt_model_t *m, const hqx_op_t *op)
{
    return m->base + op->params_offset;
}

/* The numerics' output stage for an on-disk stage of an op writing `out` (blobs validated). */
static inline hqrt_output_stage_t hqrt_i_stage(const uint8_t *base, const hqx_stage_t *s,
                                               const hqx_tensor_t *out)
{
    hqrt_output_stage_t st = {
        .path = s->path,
        .count = s->count,
        .multiplier = s->multiplier.size
                          ? (const int32_t *)(const void *)(base + s->multiplier.offset)
                          : NULL,
        .shift = s->shift.size ? (const int32_t *)(const void *)(base + s->shift.offset) : NULL,
        .multiplier_neg = s->multiplier_neg.size
                              ? (const int32_t *)(const void *)(base + s->multiplier_neg.offset)
                              : NULL,
        .shift_neg =
            s->shift_neg.size ? (const int32_t *)(const void *)(base + s->shift_neg.offset) : NULL,
        .lut = s->lut.size ? (const void *)(base + s->lut.offset) : NULL,
        .pre_zp = s->pre_zp,
        .out_bits = (int32_t)out->bits,
        .out_zp = out->qp_zp,
        .act_min = s->act_min,
        .act_max = s->act_max,
    };
    return st;
}

/* The name of an op code ("conv", "maxpool", ...; docs/deploy.md), "?" for an unknown code. */
const char *hqrt_i_op_kind(uint32_t code);

/* Executor hooks used by hqrt_program.c at open/close. */
hqrt_status_t hqrt_i_prepare(hqrt_model_t *model, hqrt_error_t *err);
void hqrt_i_release(hqrt_model_t *model);

/* The numerics' conv params for a validated conv/dense op. */
void hqrt_i_conv_setup(const hqrt_model_t *m, const hqx_op_t *op, hqrt_conv_params_t *kp);

/* hqrt_i_conv_prepare_kernel (hqrt_fast.h) for a validated conv/dense op of the program, whose
 * arenas have HQRT_ARENA_SLACK bytes of slack. */
hqrt_status_t hqrt_i_conv_prepare(const hqrt_model_t *m, const hqx_op_t *op,
                                  hqrt_i_prepared_t *prep, hqrt_error_t *err);
/* 8-bit maxpool split by output rows (AVX2), prepared at open time; 0, or -1 when not applicable.
 */
void hqrt_i_pool_prepare(const hqrt_model_t *m, const hqx_op_t *op, hqrt_i_prepared_t *prep);
int hqrt_i_maxpool_fast(const hqrt_i_prepared_t *prep, const hqrt_pool_params_t *kp, hqrt_dims_t in,
                        const uint8_t *input, hqrt_dims_t out, uint8_t *output, int64_t row_begin,
                        int64_t row_end);

#endif
