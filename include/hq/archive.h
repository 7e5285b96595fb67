/* archive.h — the model archive (`.har`): a flat ustar tar in Hailo's layout (hq-har(5)).
 *
 *   <net>.metadata.json  state, hn member name, hw_arch, hq_version
 *   <net>.hn             the graph (graph.h)
 *   <net>.npz            native float params
 *   <net>.fpo.npz        fp-optimized params
 *   <net>.q.npz          quantized params and statistics
 *   <net>.alls           the model script that produced this state
 * Members are held in memory (never extracted to disk), read with a size limit. Members hq does not
 * know are kept byte for byte when the archive is saved again. */
#ifndef HQ_ARCHIVE_H
#define HQ_ARCHIVE_H

#include "hq/common.h"
#include "hq/graph.h"
#include "hq/script.h"
#include "hq/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hq_model_state {
    HQ_STATE_PARSED = 0,       /* "parsed_model" */
    HQ_STATE_FP_OPTIMIZED,     /* "fp_optimized_model" */
    HQ_STATE_QUANTIZED,        /* "quantized_model" */
    HQ_STATE_COMPILED,         /* "compiled_model" */
} hq_model_state_t;

typedef enum hq_params_kind {
    HQ_PARAMS_NATIVE = 0,      /* <net>.npz */
    HQ_PARAMS_FP_OPTIMIZED,    /* <net>.fpo.npz */
    HQ_PARAMS_QUANTIZED,       /* <net>.q.npz */
} hq_params_kind_t;

typedef struct hq_archive hq_archive_t;

/* Largest archive member hq reads, unless raised with hq_archive_open_limit. */
#define HQ_ARCHIVE_DEFAULT_MEMBER_LIMIT ((size_t)2 << 30)

HQ_API const char *hq_model_state_name(hq_model_state_t state);

/* Opens an archive file: reads every member into memory (each at most
 * HQ_ARCHIVE_DEFAULT_MEMBER_LIMIT bytes), parses the metadata, and checks the members it names.
 * The graph, params and script are decoded on first use. The caller owns *out. */
HQ_API hq_status_t hq_archive_open(const char *path, hq_archive_t **out, hq_error_t *err);
HQ_API hq_status_t hq_archive_open_limit(const char *path, size_t member_limit,
                                         hq_archive_t **out, hq_error_t *err);
/* Opens an archive held in memory; `name` is used in error messages. */
HQ_API hq_status_t hq_archive_open_memory(const void *bytes, size_t len, const char *name,
                                          hq_archive_t **out, hq_error_t *err);
/* A new, empty archive for network `net_name`, state parsed_model, hw_arch "hailo8". */
HQ_API hq_status_t hq_archive_create(const char *net_name, hq_archive_t **out, hq_error_t *err);
/* Frees the archive and everything it owns. Accepts NULL. */
HQ_API void hq_archive_destroy(hq_archive_t *archive);

/* Writes the archive atomically (temporary file in the same folder, then rename). Member order
 * and tar headers are deterministic (mtime 0, uid/gid 0, mode 0644, sorted known members first,
 * then unknown members in the order they were read). */
HQ_API hq_status_t hq_archive_save(hq_archive_t *archive, const char *path, hq_error_t *err);
/* The same bytes, in memory. The caller owns *bytes (free()). */
HQ_API hq_status_t hq_archive_save_memory(hq_archive_t *archive, void **bytes, size_t *len,
                                          hq_error_t *err);

/* The path or name the archive was opened from ("" for a created one). Owned by the archive. */
HQ_API const char *hq_archive_path(const hq_archive_t *archive);
HQ_API const char *hq_archive_net_name(const hq_archive_t *archive);
HQ_API hq_model_state_t hq_archive_state(const hq_archive_t *archive);
HQ_API hq_status_t hq_archive_set_state(hq_archive_t *archive, hq_model_state_t state,
                                        hq_error_t *err);
HQ_API const char *hq_archive_hw_arch(const hq_archive_t *archive);
HQ_API hq_status_t hq_archive_set_hw_arch(hq_archive_t *archive, const char *hw_arch,
                                          hq_error_t *err);
/* The hq version that wrote the archive ("" when absent). */
HQ_API const char *hq_archive_writer_version(const hq_archive_t *archive);

/* The graph, decoded and finalized on first call. Owned by the archive. */
HQ_API hq_status_t hq_archive_graph(hq_archive_t *archive, hq_graph_t **graph, hq_error_t *err);
/* Replaces the graph; the archive takes ownership (also on failure). */
HQ_API hq_status_t hq_archive_set_graph(hq_archive_t *archive, hq_graph_t *graph, hq_error_t *err);

/* Params of a kind, decoded on first call. HQ_ERR_NOT_FOUND when the member is absent.
 * Owned by the archive; callers may modify the set in place (it is re-encoded on save). */
HQ_API hq_status_t hq_archive_params(hq_archive_t *archive, hq_params_kind_t kind,
                                     hq_npz_t **params, hq_error_t *err);
HQ_API bool hq_archive_has_params(const hq_archive_t *archive, hq_params_kind_t kind);
/* Replaces params of a kind; the archive takes ownership (also on failure). NULL removes them. */
HQ_API hq_status_t hq_archive_set_params(hq_archive_t *archive, hq_params_kind_t kind,
                                         hq_npz_t *params, hq_error_t *err);

/* The model script, parsed on first call; an archive without an `.alls` member yields an empty
 * script. Owned by the archive. */
HQ_API hq_status_t hq_archive_script(hq_archive_t *archive, hq_script_t **script, hq_error_t *err);
/* Replaces the script; the archive takes ownership (also on failure). */
HQ_API hq_status_t hq_archive_set_script(hq_archive_t *archive, hq_script_t *script,
                                         hq_error_t *err);

/* Generic member access, for members hq does not interpret. Names are full member names
 * ("<net>.hef"). Bytes owned by the archive. */
HQ_API size_t hq_archive_member_count(const hq_archive_t *archive);
HQ_API const char *hq_archive_member_name(const hq_archive_t *archive, size_t index);
HQ_API hq_status_t hq_archive_member(const hq_archive_t *archive, const char *name,
                                     const void **bytes, size_t *len, hq_error_t *err);
/* Adds or replaces a member with a copy of `bytes`. The metadata member is refused. Replacing a
 * known member (graph, params, script) drops its decoded object: pointers handed out earlier for
 * it become invalid. */
HQ_API hq_status_t hq_archive_set_member(hq_archive_t *archive, const char *name,
                                         const void *bytes, size_t len, hq_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
