/* hqrt.h — libhqrt, the deploy runtime: loads a compiled integer program (`.hqx`, made by
 * `hq compile`, format in docs/deploy.md) and runs it. Self-contained: this header needs only the
 * C standard library, and libhqrt links nothing but libc and pthreads (no libhq, cJSON, zlib or
 * protobuf). Layers run integer arithmetic only; floats appear only in the quantize/dequantize
 * helpers at the program's edges.
 *
 * The five functions: hqrt_open_file / hqrt_open_memory, hqrt_describe, hqrt_run (with
 * hqrt_quantize / hqrt_dequantize), hqrt_close, hqrt_status_text; opt-in per-op timing with
 * hqrt_set_profiling / hqrt_op_profile.
 *
 *   hqrt_model_t *m; hqrt_error_t e;
 *   if (hqrt_open_file("net.hqx", &m, &e) != HQRT_OK) { fprintf(stderr, "%s\n", e.message); ... }
 *   hqrt_io_t in, out;
 *   hqrt_describe(m, HQRT_INPUT, 0, &in, &e); hqrt_describe(m, HQRT_OUTPUT, 0, &out, &e);
 *   hqrt_quantize(&in, pixels, in.elements, in_codes);           // float -> uint8/uint16 codes
 *   hqrt_run(m, 1, &in_codes, &out_codes, NULL, &e);
 *   hqrt_dequantize(&out, out_codes, out.elements, scores);      // codes -> float
 *   hqrt_close(m);
 */
#ifndef HQ_HQRT_H
#define HQ_HQRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(HQRT_BUILDING_LIBRARY)
#define HQRT_API __attribute__((visibility("default")))
#else
#define HQRT_API
#endif

/* Status codes: the same values as libhq's hq_status_t, so that libhq can pass them through. */
typedef enum hqrt_status {
    HQRT_OK = 0,
    HQRT_ERR_IO = -1,          /* the file could not be opened, read or mapped */
    HQRT_ERR_FORMAT = -2,      /* the program is corrupt: bad magic, checksum, offsets, ids, ... */
    HQRT_ERR_UNSUPPORTED = -3, /* a well-formed program this runtime cannot run (newer version) */
    HQRT_ERR_NOMEM = -4,       /* an allocation failed */
    HQRT_ERR_ARGUMENT = -5,    /* the caller passed an invalid argument */
} hqrt_status_t;

/* Detail of a failure: one line naming the file and what is wrong. Caller-owned (stack); every
 * fallible function accepts NULL when the detail is not wanted. */
#define HQRT_ERROR_MAX 256
typedef struct hqrt_error {
    hqrt_status_t status;
    char message[HQRT_ERROR_MAX];
} hqrt_error_t;

/* A loaded, validated program. Opaque. One hqrt_run at a time per model (it owns the activation
 * arenas); open the same file twice to run concurrently. */
typedef struct hqrt_model hqrt_model_t;

/* Opens a `.hqx` file: maps it read-only (weights are used in place, never copied) and validates
 * it completely (magic, version, checksum, every offset, size, alignment, op code, tensor id,
 * shape and the activation arena plan). A program that fails validation is refused and never
 * executed. The caller owns *out and frees it with hqrt_close. */
HQRT_API hqrt_status_t hqrt_open_file(const char *path, hqrt_model_t **out, hqrt_error_t *err);
/* The same for a program held in memory. The bytes are used in place: they must stay valid and
 * unchanged until hqrt_close. `name` (may be NULL) names the program in error messages. */
HQRT_API hqrt_status_t hqrt_open_memory(const void *bytes, size_t len, const char *name,
                                        hqrt_model_t **out, hqrt_error_t *err);

typedef enum hqrt_direction {
    HQRT_INPUT = 0,
    HQRT_OUTPUT = 1,
} hqrt_direction_t;

/* One input or output of the program, per sample. Plain data; strings owned by the model. */
typedef struct hqrt_io {
    int count;        /* number of inputs (or outputs) of the program */
    const char *name; /* scoped layer name "net/input_layer1" */
    int ndim;         /* 4 (NHWC image) or 2 ([N, C] vector) */
    int64_t dims[4];  /* dims[0] = 1 (one sample), then H, W, C or C */
    int64_t elements; /* values per sample (product of dims) */
    int bits;         /* 8: codes are uint8_t; 16: codes are uint16_t */
    size_t bytes;     /* bytes per sample: elements * bits / 8 */
    float qp_scale;   /* x = (q - qp_zp) * qp_scale */
    int32_t qp_zp;
} hqrt_io_t;

/* Describes input or output `index` (0 .. count-1; index 0 always exists). */
HQRT_API hqrt_status_t hqrt_describe(const hqrt_model_t *model, hqrt_direction_t direction,
                                     int index, hqrt_io_t *io, hqrt_error_t *err);

/* Options of a run; NULL means all defaults. */
typedef struct hqrt_run_options {
    int threads; /* worker threads, 0 or 1: the calling thread only. Results do not depend
                    on it: every thread count gives the same bytes. */
} hqrt_run_options_t;

/* Runs `batch` samples. inputs[i] holds batch * io.bytes codes of input i (samples back to back,
 * NHWC each); outputs[o] receives batch * io.bytes codes of output o. Integer arithmetic only. */
HQRT_API hqrt_status_t hqrt_run(hqrt_model_t *model, int64_t batch, const void *const *inputs,
                                void *const *outputs, const hqrt_run_options_t *options,
                                hqrt_error_t *err);

/* Helpers at the edges (the only float arithmetic of the runtime):
 * quantize: q = clamp(round_half_away_from_zero(x / qp_scale) + qp_zp, 0, 2^bits - 1), NaN -> qp_zp
 * (the exact formula of the quantized emulator, docs/numerics.md); dequantize: x = (q - zp) *
 * scale. `codes` are uint8_t or uint16_t per io->bits; `count` values. */
HQRT_API void hqrt_quantize(const hqrt_io_t *io, const float *values, int64_t count, void *codes);
HQRT_API void hqrt_dequantize(const hqrt_io_t *io, const void *codes, int64_t count, float *values);

/* Unmaps/frees everything the model owns. Accepts NULL. */
HQRT_API void hqrt_close(hqrt_model_t *model);

/* Name of a status code ("corrupt program", ...). Static string. */
HQRT_API const char *hqrt_status_text(hqrt_status_t status);

/* Profiling (opt-in; appended after the five functions above). While on, every hqrt_run times
 * each op's kernel calls with a monotonic clock; off (the default), a run pays one test per op.
 * Results never depend on it.
 *
 * hqrt_set_profiling(model, 1) turns it on and zeroes the totals; (model, 0) turns it off and
 * keeps them. Not while a run is in progress. */
HQRT_API hqrt_status_t hqrt_set_profiling(hqrt_model_t *model, int on, hqrt_error_t *err);

/* What one op of the program cost over the profiled runs. Plain data; strings owned by the model
 * (name) or static (kind). */
typedef struct hqrt_op_profile {
    int count;        /* number of ops in the program (op indices 0 .. count-1, run order) */
    const char *name; /* the op's scoped layer name "net/conv1" */
    const char *kind; /* the op's kind: "conv", "dense", "maxpool", ... (docs/deploy.md, "Ops") */
    double seconds;   /* time in its kernel calls, summed over the threads that ran them */
    int64_t runs;     /* samples it ran on (a sample shared by threads counts once) */
} hqrt_op_profile_t;

/* Describes op `index` (0 .. count-1; index 0 always exists) with its profiled totals. */
HQRT_API hqrt_status_t hqrt_op_profile(const hqrt_model_t *model, int index,
                                       hqrt_op_profile_t *profile, hqrt_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
