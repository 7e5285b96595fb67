/* diag.h — the hq-diag runner as a library: loads inspector modules (inspector.h), opens a model
 * archive and a dataset, computes the shared statistics in one streaming pass per emulation
 * target, runs the inspectors, collects their findings and recommendations, offers the
 * recommendations through a caller-supplied question callback, and writes the merged model
 * script and the JSON and HTML reports.
 *
 * The library never prints and never reads stdin: everything a user should see goes through the
 * event callback, every question through the ask callback (hq-diag's main does the console, the
 * log file and the terminal prompts). Typical use:
 *
 *   hq_diag_create(&options, &diag, &err);
 *   hq_diag_load_plugins(diag, dir, false, &err);         (once per plugin folder)
 *   hq_diag_open(diag, "model.har", "calib.npy", &err);
 *   hq_diag_set_reference(diag, "ref.npz", &err);           (optional)
 *   hq_diag_set_verify(diag, &verify_options, &err);        (optional)
 *   hq_diag_run(diag, &err);
 *   hq_diag_verify(diag, &err);                              (after hq_diag_set_verify)
 *   hq_diag_write_script(diag, "diagnostic_net.alls", &err);
 *   hq_diag_destroy(diag);
 */
#ifndef HQ_DIAG_H
#define HQ_DIAG_H

#include <stdbool.h>
#include <stdint.h>

#include "hq/common.h"
#include "hq/inspector.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hq_diag hq_diag_t;

/* What the runner reports while it works. Values are append-only. */
typedef enum hq_diag_event_kind {
    HQ_DIAG_EVENT_MESSAGE =
        0,                  /* a console line: `level` and `text`; `inspector` NULL for the host */
    HQ_DIAG_EVENT_MODULE,   /* inspector `inspector` starts ("Module: <name>" + separator) */
    HQ_DIAG_EVENT_SKIP,     /* inspector `inspector` is skipped; `text` is the reason */
    HQ_DIAG_EVENT_PROGRESS, /* a data pass advanced: `text` names it, `done` of `total` samples */
    HQ_DIAG_EVENT_LOG,      /* a line for the log file only */
    HQ_DIAG_EVENT_RECOMMENDATION, /* a recommended line is offered: `text` is the script line,
                                     `detail` the reason, `level` its level */
    HQ_DIAG_EVENT_DETAIL, /* a finding folded into its inspector's summary line: `level`, `text`
                             (the log shows it, a console need not) */
    HQ_DIAG_EVENT_TRIAGE, /* one line of the ranked triage that ends a run: `text` as it is
                             shown, `level` that of its cause */
    HQ_DIAG_EVENT_VERIFY, /* one line of the verification table (hq_diag_verify): `text` as it
                             is shown, `level` info (a gain) or warning (a loss, a failed run) */
} hq_diag_event_kind_t;

/* One event. Strings are valid only during the callback. */
typedef struct hq_diag_event {
    hq_diag_event_kind_t kind;
    hq_diag_level_t level; /* MESSAGE, RECOMMENDATION */
    const char *inspector; /* name of the inspector the event belongs to, NULL for the host */
    const char *text;      /* message, reason, pass name or script line */
    const char *detail;    /* RECOMMENDATION: the reason; else NULL */
    int64_t done, total;   /* PROGRESS */
    int number;            /* RECOMMENDATION: 1-based position of the line within its group */
} hq_diag_event_t;

typedef void (*hq_diag_event_fn)(void *user, const hq_diag_event_t *event);

/* Asks the user to pick one of `count` words (yes/no questions come as {"y", "n"}); returns the
 * chosen index. `default_index` is what Enter means. Called only when the options gave one. */
typedef int (*hq_diag_ask_fn)(void *user, const char *inspector, const char *question,
                              const char *const *choices, int count, int default_index);

/* Asks which of the `count` lines just offered as one group (numbered 1..count by their events)
 * to accept, after the user answered "pick" to the group question; sets accepted[i] for line
 * i + 1 (all false on entry). */
typedef void (*hq_diag_pick_fn)(void *user, const char *inspector, int count, bool *accepted);

/* Non-interactive answers to the recommendation groups (used when `ask` is NULL). */
typedef enum hq_diag_accept {
    HQ_DIAG_ACCEPT_DEFAULTS = 0, /* each group's documented default */
    HQ_DIAG_ACCEPT_NONE,         /* refuse every line */
    HQ_DIAG_ACCEPT_ALL,          /* accept every line */
} hq_diag_accept_t;

typedef struct hq_diag_options {
    const char *hw_arch;       /* NULL: the archive's hw_arch */
    int64_t sample_count;      /* samples of the dataset to use; 0: 64 */
    int64_t batch_size;        /* emulation batch; 0: 8 */
    const char *output_dir;    /* where inspectors write files, made on the first file (its
                                  parent must exist); NULL: "." */
    hq_diag_event_fn on_event; /* may be NULL */
    void *event_user;
    hq_diag_ask_fn ask; /* NULL: non-interactive (every question takes its default) */
    void *ask_user;
    hq_diag_pick_fn pick;    /* NULL: level groups offer none/warning/all only; with it, also pick
                                (answered through ask, then pick asks for the line numbers) */
    hq_diag_accept_t accept; /* without ask: how the recommendation groups are answered */
} hq_diag_options_t;

/* A runner with no inspector loaded. `options` may be NULL (defaults) and is copied (strings
 * too). The caller owns *out (hq_diag_destroy). */
HQ_API hq_status_t hq_diag_create(const hq_diag_options_t *options, hq_diag_t **out,
                                  hq_error_t *err);
/* Unloads the modules and frees everything. Accepts NULL. */
HQ_API void hq_diag_destroy(hq_diag_t *diag);

/* Loads every "*.so" file of folder `dir` (in name order). A module that is refused (does not
 * load, no entry symbol, NULL descriptor, ABI mismatch, duplicate name) is reported as a warning
 * event with the reason and skipped; the others load. A missing folder is an error only when
 * `required` (a folder the user named); else it is silently ignored. */
HQ_API hq_status_t hq_diag_load_plugins(hq_diag_t *diag, const char *dir, bool required,
                                        hq_error_t *err);
/* Loads one module file; a refusal returns HQ_ERR_UNSUPPORTED (ABI) / HQ_ERR_INVALID (duplicate,
 * NULL descriptor) / HQ_ERR_NOT_FOUND (no symbol) / HQ_ERR_IO (dlopen failed), with the reason
 * in err. */
HQ_API hq_status_t hq_diag_load_plugin(hq_diag_t *diag, const char *path, hq_error_t *err);

/* Inspectors loaded, in the run order (default: priority, then name). */
HQ_API int hq_diag_inspector_count(const hq_diag_t *diag);
/* Descriptor of the i-th inspector of the run order (owned by its module), NULL when out of
 * range; and the file it came from (owned by the runner). */
HQ_API const hq_inspector_t *hq_diag_inspector(const hq_diag_t *diag, int index);
HQ_API const char *hq_diag_inspector_path(const hq_diag_t *diag, int index);
/* Replaces the run order with exactly these inspectors (names matched case-insensitively, with
 * or without an "Inspector" suffix). An unknown name fails with HQ_ERR_NOT_FOUND and a message
 * listing the known names. */
HQ_API hq_status_t hq_diag_set_order(hq_diag_t *diag, const char *const *names, int count,
                                     hq_error_t *err);
/* Whether any inspector of the run order has `needs` flags. */
HQ_API bool hq_diag_order_needs(const hq_diag_t *diag, uint32_t needs);

/* Opens the archive and (when `dataset_path` is not NULL) the dataset, matched to the graph's
 * inputs. Fails, naming the file, when either is unreadable. */
HQ_API hq_status_t hq_diag_open(hq_diag_t *diag, const char *model_path, const char *dataset_path,
                                hq_error_t *err);
/* The archive opened (owned by the runner), NULL before hq_diag_open. */
HQ_API hq_archive_t *hq_diag_archive(hq_diag_t *diag);
/* Samples of the dataset the run uses: the options' sample_count, or every sample of a smaller
 * dataset; 0 before hq_diag_open or without a dataset. */
HQ_API int64_t hq_diag_sample_count(const hq_diag_t *diag);

/* Runs: refuses (HQ_ERR_STATE, "Model <file> is not quantized ...", naming the hq optimize
 * command) an unquantized archive when every selected inspector needs a quantized model (with
 * some that do not, those run and the others are skipped, named in one message); computes the
 * statistics pass (every stage the archive has, when a dataset is open); reports the headline
 * (output SQNR per output and stage, and the verdict as a finding of hq-diag); runs each
 * inspector (skipping those whose needs are not met), folding its per-layer findings below
 * error level into summary messages (each one a DETAIL event) and offering its recommendation
 * groups after its run; ends with the ranked triage (TRIAGE events). Returns HQ_OK when it ran (even with error findings or failed
 * inspectors). */
HQ_API hq_status_t hq_diag_run(hq_diag_t *diag, hq_error_t *err);

/* The original framework's outputs on the diagnosis samples (an .npz with one array per model
 * output, keyed by the output layer's scoped, bare or original name, or else taken in output
 * order; or an .npy for a one-output model), for the stage "native vs reference (translation)"
 * of the headline. Call after hq_diag_open, before hq_diag_run. Fails (HQ_ERR_INVALID, naming
 * the file and the array) when an array is missing, holds fewer samples than the run uses, or
 * has another per-sample shape than its output (hq's outputs are NHWC; size-1 dimensions are
 * ignored in the comparison). */
HQ_API hq_status_t hq_diag_set_reference(hq_diag_t *diag, const char *path, hq_error_t *err);

/* What hq_diag_verify re-quantizes from and measures on. */
typedef struct hq_diag_verify_options {
    const char *data_path; /* held-out samples (.npy, .npz or image folder); NULL: the samples
                              of the run's dataset after the script's calibset_size */
    const char *from_path; /* parsed archive to re-quantize from; NULL: the archive opened,
                              taken back to its float model (refused when its script changed
                              the graph) */
    int threads;           /* for the re-quantizations and emulations; 0: the default */
} hq_diag_verify_options_t;

/* Checks, before the run, everything hq_diag_verify needs, so that a run that cannot verify
 * stops before any work: a dataset (the calibration data), held-out samples, an archive that
 * can be re-quantized. Call after hq_diag_open. `options` is copied (strings too). Fails with
 * HQ_ERR_INVALID / HQ_ERR_STATE and one message naming the file and the flag to give. */
HQ_API hq_status_t hq_diag_set_verify(hq_diag_t *diag, const hq_diag_verify_options_t *options,
                                      hq_error_t *err);
/* After hq_diag_run: re-quantizes in memory (hq_optimize, the user's files untouched) with the
 * archive's script merged with the accepted lines (as hq_diag_script_text merges them): the
 * whole accepted set, and each cause of the triage that has accepted lines alone; measures the
 * output SQNR (quantized against fp_optimized) of the archive as given and of each
 * re-quantization on the held-out samples; reports the table as HQ_DIAG_EVENT_VERIFY events and
 * keeps the figures for the JSON report (`verify`, and `measured_gain_db` of the triage). A
 * re-quantization that fails is reported in the table and does not fail the call. */
HQ_API hq_status_t hq_diag_verify(hq_diag_t *diag, hq_error_t *err);

/* Findings of the run at `level` (exactly), and inspectors that failed. */
HQ_API int hq_diag_finding_count(const hq_diag_t *diag, hq_diag_level_t level);
HQ_API int hq_diag_failure_count(const hq_diag_t *diag);
/* Recommendations made, and accepted. */
HQ_API int hq_diag_recommendation_count(const hq_diag_t *diag);
HQ_API int hq_diag_accepted_count(const hq_diag_t *diag);

/* The archive's model script merged with the accepted lines: a line that contradicts an existing
 * line for the same layer/feature replaces it (the old line is kept as a comment saying so);
 * other lines are appended. The text parses as a model script. The caller owns *text (free()). */
HQ_API hq_status_t hq_diag_script_text(const hq_diag_t *diag, char **text, hq_error_t *err);
/* Writes that text to `path` atomically (overwriting: the caller decides whether it may). */
HQ_API hq_status_t hq_diag_write_script(const hq_diag_t *diag, const char *path, hq_error_t *err);
/* The JSON report (schema in hq-diag(1)) and the self-contained HTML report, written atomically. */
HQ_API hq_status_t hq_diag_write_json(const hq_diag_t *diag, const char *path, hq_error_t *err);
HQ_API hq_status_t hq_diag_write_html(const hq_diag_t *diag, const char *path, hq_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
