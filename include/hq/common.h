/* common.h — status codes, error details and export macros shared by every libhq header. */
#ifndef HQ_COMMON_H
#define HQ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(HQ_BUILDING_LIBRARY)
#define HQ_API __attribute__((visibility("default")))
#else
#define HQ_API
#endif

#define HQ_VERSION_MAJOR 0
#define HQ_VERSION_MINOR 1
#define HQ_VERSION_PATCH 0
#define HQ_VERSION_STRING "0.1.0"

/* Every fallible libhq function returns one of these. Values are append-only. */
typedef enum hq_status {
    HQ_OK = 0,
    HQ_ERR_IO = -1,          /* the operating system refused a read, write, open or rename */
    HQ_ERR_FORMAT = -2,      /* input bytes are malformed: truncated, lying header, bad syntax */
    HQ_ERR_UNSUPPORTED = -3, /* well-formed input that hq does not handle (dtype, op, feature) */
    HQ_ERR_NOMEM = -4,       /* an allocation failed */
    HQ_ERR_ARGUMENT = -5,    /* the caller passed an invalid argument */
    HQ_ERR_NOT_FOUND = -6,   /* a named member, layer, key or file does not exist */
    HQ_ERR_LIMIT = -7,       /* input exceeds a size limit hq enforces */
    HQ_ERR_INVALID = -8,     /* well-formed input whose content is inconsistent (graph validation) */
    HQ_ERR_STATE = -9,       /* the object is not in the state the call needs (e.g. not quantized) */
} hq_status_t;

/* Human-readable name of a status code. The string is static. */
HQ_API const char *hq_status_string(hq_status_t status);

/* Detail of the last failure of a call: one line naming the file and what is wrong.
 * Callers own the struct (usually on the stack) and pass it to every fallible call; a NULL
 * pointer is accepted and means "I do not want the detail". */
#define HQ_ERROR_MESSAGE_MAX 512
typedef struct hq_error {
    hq_status_t status;                  /* same value the call returned */
    char message[HQ_ERROR_MESSAGE_MAX];  /* "file.npy: header field 'descr': unknown dtype '<c8'" */
} hq_error_t;

/* Called by a long pass (calibration, noise analysis, emulation over a dataset) as it advances:
 * `stage` names the pass ("calibration", "noise analysis (advanced)"), `done` of `total` units
 * (samples, or float runs where a pass runs the network more than once per sample) are finished.
 * Called at least once per batch, with done == total last; `stage` is valid only during the call.
 * It must not call back into the object that reports. */
typedef void (*hq_progress_fn)(void *user, const char *stage, int64_t done, int64_t total);

/* Version of the library actually loaded (may differ from HQ_VERSION_STRING at build time). */
HQ_API const char *hq_version(void);

#ifdef __cplusplus
}
#endif
#endif
