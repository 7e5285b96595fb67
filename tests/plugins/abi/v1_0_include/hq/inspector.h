/* inspector.h — the hq-diag plugin ABI (DESIGN §7): what an inspector module exports and the API
 * table the host (hq-diag) hands it.
 *
 * An inspector is a shared object (a CMake MODULE) that exports ONE symbol,
 *
 *     HQ_INSPECTOR_EXPORT const hq_inspector_t *hq_inspector_entry(void);
 *
 * returning a pointer to a static, const descriptor. The host loads modules with
 * dlopen(RTLD_NOW | RTLD_LOCAL), calls the entry, checks `abi_version` and `struct_size`, then for
 * each run calls init (optional), run, fini (optional), handing over an hq_inspector_context_t: a
 * versioned table of function pointers through which the inspector reads the model, the dataset and
 * the cached statistics, and emits diagnostics and recommendations. Inspectors never print, never
 * exit, never read stdin and never link the CLI; they may call any public libhq function (hq_*),
 * e.g. hq_layer_type_name or hq_command_kwarg.
 *
 * Compatibility rules (SQLite vtables, ggml backends):
 * - every struct here starts with a size (and the descriptor and context with the ABI version);
 *   fields and slots are only ever APPENDED, never reordered, retyped or removed;
 * - the host accepts a descriptor whose abi_version equals HQ_INSPECTOR_ABI_VERSION and whose
 *   struct_size is at least the size of the version-1 descriptor; a larger descriptor (built
 *   against a newer header) is accepted and its unknown tail ignored;
 * - a plugin that uses a context slot added after version 1 checks HQ_CONTEXT_HAS(ctx, slot)
 *   first; every slot present in version 1 is always non-NULL;
 * - the host copies every string and array a plugin hands it; a plugin may pass stack buffers.
 *
 * Ownership, in one sentence per kind of object: everything the context returns (graph, layers,
 * params, tensors, script, statistics, strings) is owned by the host and stays valid until `run`
 * returns; everything the plugin passes in stays owned by the plugin; `state` from init is owned by
 * the plugin and freed in its fini. */
#ifndef HQ_INSPECTOR_H
#define HQ_INSPECTOR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hq/archive.h"
#include "hq/common.h"
#include "hq/emulate.h"
#include "hq/graph.h"
#include "hq/script.h"
#include "hq/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Version of this ABI. Bumped only for an incompatible change (which the append-only rule is
 * meant to make unnecessary); appending slots does not change it. */
#define HQ_INSPECTOR_ABI_VERSION 1u

/* The name of the one symbol every module exports. */
#define HQ_INSPECTOR_ENTRY_SYMBOL "hq_inspector_entry"

/* Marks the entry function exported even when the module is built with -fvisibility=hidden. */
#if defined(__GNUC__)
#define HQ_INSPECTOR_EXPORT __attribute__((visibility("default")))
#else
#define HQ_INSPECTOR_EXPORT
#endif

/* Default order of the run: all HIGH inspectors, then MEDIUM, then LOW; ties by name. */
typedef enum hq_inspector_priority {
    HQ_PRIORITY_HIGH = 0,   /* checks that invalidate everything else (normalization, BN) */
    HQ_PRIORITY_MEDIUM = 1, /* model-wide quantization choices (compression, precision) */
    HQ_PRIORITY_LOW = 2,    /* per-layer and data-specific checks (clipping, images) */
} hq_inspector_priority_t;

/* What an inspector needs. The host checks these before `run` and prints
 * "Skipping <name>, <reason>" instead of running it when one is missing. Values are append-only. */
enum {
    HQ_NEEDS_DATASET = 1u << 0,         /* a dataset was given (-d) */
    HQ_NEEDS_QUANTIZED = 1u << 1,       /* state quantized_model and <net>.q.npz present; without
                                           this flag an unquantized archive is accepted */
    HQ_NEEDS_NOISE_ANALYSIS = 1u << 2,  /* per-layer SQNR available (layer_noise_analysis in q.npz
                                           or computed by the host) */
    HQ_NEEDS_RGB_IMAGES = 1u << 3,      /* a dataset whose (first) input is [H, W, 3] images with no
                                           negative value */
    HQ_NEEDS_FP_OPTIMIZED = 1u << 4,    /* <net>.fpo.npz present */
    HQ_NEEDS_FLOAT_STATS = 1u << 5,     /* the float statistics pass (implies a dataset) */
    HQ_NEEDS_QUANTIZED_STATS = 1u << 6, /* the quantized statistics pass (implies dataset and
                                           quantized); the host runs that pass only when some
                                           selected inspector asks for it */
    HQ_NEEDS_NATIVE_STATS = 1u << 7,    /* a float pass on the native params too, when the float
                                           pass runs on fp_optimized params */
};

/* Severity of a diagnostic or recommendation. Exit status 1 means at least one ERROR. */
typedef enum hq_diag_level {
    HQ_DIAG_INFO = 0,    /* a fact worth knowing; no action needed */
    HQ_DIAG_WARNING = 1, /* likely costs accuracy; worth acting on */
    HQ_DIAG_ERROR = 2,   /* almost certainly wrong (e.g. data normalized twice) */
} hq_diag_level_t;

/* How a group of recommendations is offered to the user. */
typedef enum hq_group_kind {
    HQ_GROUP_YES_NO = 0, /* one [Y/n] (or [y/N]) question accepts or refuses the whole group */
    HQ_GROUP_LEVELS = 1, /* "none/warning/all": accept no line, the lines of level >= WARNING, or
                            every line (per-layer groups such as clipping) */
} hq_group_kind_t;

/* Answers, used as the non-interactive default of a group and as what the user chose. */
enum {
    HQ_ANSWER_NO = 0,      /* HQ_GROUP_YES_NO: refuse */
    HQ_ANSWER_YES = 1,     /* HQ_GROUP_YES_NO: accept */
    HQ_ACCEPT_NONE = 0,    /* HQ_GROUP_LEVELS: accept nothing */
    HQ_ACCEPT_WARNING = 1, /* HQ_GROUP_LEVELS: accept lines of level WARNING and ERROR */
    HQ_ACCEPT_ALL = 2,     /* HQ_GROUP_LEVELS: accept every line */
};

/* Flags of a diagnostic (hq_diagnostic_t.flags). Append-only. */
enum {
    HQ_DIAG_SHOW_HISTOGRAM = 1u << 0, /* the HTML report draws the layer's float histogram next
                                         to this finding (clipping, range findings) */
    HQ_DIAG_SHOW_CHANNELS = 1u << 1,  /* the HTML report draws the layer's per-channel means */
};

/* A named number behind a finding; it goes into the JSON report ("numbers": {name: value}). */
typedef struct hq_diag_number {
    const char *name; /* JSON key, e.g. "sqnr_db", "min", "share_high" (copied by the host) */
    double value;     /* the value; NaN and infinities are written as JSON null */
} hq_diag_number_t;

/* One finding. Pass it to ctx->diagnostic; the host copies everything. */
typedef struct hq_diagnostic {
    uint32_t struct_size;            /* sizeof(hq_diagnostic_t) of the plugin's header */
    hq_diag_level_t level;           /* severity */
    int layer;                       /* graph layer index the finding is about, -1 for none */
    const char *message;             /* one sentence, no trailing newline, no level prefix */
    const hq_diag_number_t *numbers; /* numbers behind the finding, may be NULL */
    int number_count;                /* entries in `numbers` */
    uint32_t flags;                  /* HQ_DIAG_SHOW_* */
} hq_diagnostic_t;

/* One recommended model-script line. Lines with the same `group` (within one inspector) are
 * offered together after the inspector's run. Pass it to ctx->recommend; the host copies it. */
typedef struct hq_recommendation {
    uint32_t struct_size;       /* sizeof(hq_recommendation_t) of the plugin's header */
    hq_diag_level_t level;      /* how strongly it is recommended (HQ_GROUP_LEVELS filters on it) */
    int layer;                  /* graph layer index it is about, -1 for none */
    const char *line;           /* ONE .alls command, e.g.
                                   "quantization_param(conv3, precision_mode=a16_w16)"; the host
                                   refuses a line that does not parse (hq-alls(5)) */
    const char *reason;         /* why, one sentence; written as a comment above the line */
    const char *group;          /* group id, e.g. "clipping"; NULL: a group of its own */
    hq_group_kind_t group_kind; /* how the group is offered (the group's first line decides) */
    const char *question;       /* the prompt for the group, NULL: "Apply the recommended
                                   changes?" (the group's first non-NULL question wins) */
    int default_answer;         /* non-interactive answer: HQ_ANSWER_* or HQ_ACCEPT_* (the
                                   group's first line decides) */
} hq_recommendation_t;

/* Which statistics: the float pass (fp_optimized params, or native when the archive has none),
 * the quantized pass (dequantized taps of the integer emulation), or native params. */
typedef enum hq_stats_target {
    HQ_STATS_FLOAT = 0, /* fp_optimized when present, else native; see hq_layer_stats_t.target */
    HQ_STATS_QUANTIZED = 1, /* quantized emulation, values dequantized */
    HQ_STATS_NATIVE = 2,    /* native params (only with HQ_NEEDS_NATIVE_STATS, or when FLOAT
                               itself ran on native params) */
} hq_stats_target_t;

/* Number of histogram bins of hq_layer_stats_t. */
#define HQ_STATS_HISTOGRAM_BINS 100

/* Statistics of one layer output (one port) over the dataset samples of the run, accumulated in
 * the one streaming pass of a target. Owned by the host; valid until `run` returns. */
typedef struct hq_layer_stats {
    uint32_t struct_size; /* sizeof(hq_layer_stats_t) of the host */
    int layer;            /* graph layer index */
    int port;             /* output piece (0 except feature_splitter) */
    hq_target_t target;   /* the emulation target that produced them (native/fp_optimized,
                             or the quantized target) */
    int64_t samples;      /* samples seen */
    int64_t count;        /* values seen (samples * elements per sample) */
    float min, max;       /* observed range */
    double mean, std;     /* over every value (population std) */
    float histogram_lo;   /* range of the histogram: [min(min, 0), max(max, 0)] */
    float histogram_hi;
    int64_t histogram[HQ_STATS_HISTOGRAM_BINS]; /* counts of values per bin; bin i covers
                                  [lo + i*w, lo + (i+1)*w), w = (hi - lo) / 100, last bin closed.
                                  Built in one pass by merging a finer adaptive histogram: a count
                                  may sit one fine bin (< 1/5 of a bin) away from its exact bin */
    int channels;                               /* C of the output (last dimension) */
    const float *channel_mean; /* [channels] per-channel mean of the output, computed per sample
                                  over H*W then averaged over samples */
    const float *channel_std;  /* [channels] sqrt of the mean over samples of the per-sample
                                  per-channel variance (the contract's definition) */
    const float *preact_mean;  /* [channels] the same moments before the activation function for
                                  conv/dw/dense/deconv (after bias, BN folding and the fused add);
                                  NULL for other layers */
    const float *preact_std;   /* [channels] see preact_mean */
} hq_layer_stats_t;

/* Noise of one layer from noise analysis. Owned by the host. */
typedef struct hq_layer_noise {
    uint32_t struct_size; /* sizeof(hq_layer_noise_t) of the host */
    int layer;            /* graph layer index */
    bool has_cumulative;  /* `cumulative_db` is valid */
    double cumulative_db; /* SQNR (dB) of this layer's output, everything quantized vs float */
    bool has_partial;     /* `partial_db` is valid (needs `hq analyze-noise --advanced`) */
    double partial_db;    /* SQNR (dB) at the model output(s) when only this layer is quantized */
    const char *source;   /* "archive" (q.npz layer_noise_analysis) or "computed" (this run) */
} hq_layer_noise_t;

typedef struct hq_inspector_context hq_inspector_context_t;

/* The context: a versioned API table. The host fills it; the plugin only reads it. Each slot is
 * called as ctx->slot(ctx, ...). Strings returned are owned by the host (valid until `run`
 * returns). Layer arguments are graph layer indices (hq_graph_find maps names to indices). */
struct hq_inspector_context {
    uint32_t abi_version; /* HQ_INSPECTOR_ABI_VERSION of the host */
    uint32_t struct_size; /* sizeof(hq_inspector_context_t) of the host: see HQ_CONTEXT_HAS */
    void *host;           /* opaque host data; plugins never touch it */

    /* ---- the model ------------------------------------------------------------------------- */
    /* Network name ("resnet_v1_18"). */
    const char *(*net_name)(hq_inspector_context_t *ctx);
    /* State of the archive (parsed, fp_optimized, quantized, compiled). */
    hq_model_state_t (*model_state)(hq_inspector_context_t *ctx);
    /* Target hardware: -a when given, else the archive's hw_arch ("hailo8"). */
    const char *(*hw_arch)(hq_inspector_context_t *ctx);
    /* The archive itself (read-only use: hq_archive_* getters). */
    hq_archive_t *(*archive)(hq_inspector_context_t *ctx);
    /* The finalized graph (use with graph.h: hq_graph_layer, hq_graph_find, ...). */
    const hq_graph_t *(*graph)(hq_inspector_context_t *ctx);
    /* Number of layers, and layer `index` (NULL when out of range): hq_graph_layer_count/layer. */
    int (*layer_count)(hq_inspector_context_t *ctx);
    const hq_layer_t *(*layer)(hq_inspector_context_t *ctx, int index);
    /* Index of a layer by scoped, bare or original name; -1 when none matches. */
    int (*find_layer)(hq_inspector_context_t *ctx, const char *name);
    /* Topological order / input layers / output layers: `count` indices (hq_graph_*). */
    const int *(*topo_order)(hq_inspector_context_t *ctx, int *count);
    const int *(*inputs)(hq_inspector_context_t *ctx, int *count);
    const int *(*outputs)(hq_inspector_context_t *ctx, int *count);

    /* ---- params ---------------------------------------------------------------------------- */
    /* A whole params set (native .npz, fp-optimized .fpo.npz, quantized .q.npz), NULL when the
     * archive has none of that kind. */
    const hq_npz_t *(*params)(hq_inspector_context_t *ctx, hq_params_kind_t kind);
    /* One tensor of a layer: key "<net>/<layer bare name>/<suffix>", e.g. suffix "kernel:0",
     * "qp_scale:0", "stats/output_0/histogram:0". layer -1 gives a global key "<net>/<suffix>"
     * ("compression/ratio_4bit:0"). NULL when absent. */
    const hq_tensor_t *(*layer_tensor)(hq_inspector_context_t *ctx, hq_params_kind_t kind,
                                       int layer, const char *suffix);
    /* First element of such a tensor converted to double (any numeric dtype); false when absent
     * or empty. A convenience for scalars like qp_scale:0 or layer_noise_analysis/snr:0. */
    bool (*layer_scalar)(hq_inspector_context_t *ctx, hq_params_kind_t kind, int layer,
                         const char *suffix, double *value);

    /* ---- the model script ------------------------------------------------------------------ */
    /* The archive's model script, parsed (empty when the archive has none). */
    const hq_script_t *(*script)(hq_inspector_context_t *ctx);
    /* Index of the first command named `name` at or after `start` (0 to begin), -1 when none:
     * for (i = ctx->find_command(ctx, "normalization", 0); i >= 0;
     *      i = ctx->find_command(ctx, "normalization", i + 1)) ... */
    int (*find_command)(hq_inspector_context_t *ctx, const char *name, int start);
    /* Command `index` of the script, NULL when out of range (see script.h for its fields and
     * hq_command_kwarg / hq_command_positional). */
    const hq_command_t *(*command)(hq_inspector_context_t *ctx, int index);

    /* ---- the dataset ----------------------------------------------------------------------- */
    /* Whether a dataset was given, and how many samples this run uses (min(-c, file count)). */
    bool (*has_dataset)(hq_inspector_context_t *ctx);
    int64_t (*sample_count)(hq_inspector_context_t *ctx);
    /* Path of the dataset as given on the command line ("" without one). */
    const char *(*dataset_path)(hq_inspector_context_t *ctx);
    /* Inputs of the dataset (one per model input), the per-sample shape [H, W, C] of input i, the
     * input layer index it feeds, and the dtype stored in the file. */
    int (*dataset_input_count)(hq_inspector_context_t *ctx);
    hq_shape_t (*dataset_input_shape)(hq_inspector_context_t *ctx, int input);
    int (*dataset_input_layer)(hq_inspector_context_t *ctx, int input);
    hq_dtype_t (*dataset_input_dtype)(hq_inspector_context_t *ctx, int input);
    /* Raw samples [first, first + count) of input i as float32 NHWC (values as stored in the
     * file, before any normalization layer) into caller-owned `out` (count * H*W*C floats). */
    hq_status_t (*read_samples)(hq_inspector_context_t *ctx, int input, int64_t first,
                                int64_t count, float *out, hq_error_t *err);

    /* ---- cached statistics (one streaming pass per target, shared by all inspectors) ------- */
    /* Whether the pass for `target` ran and succeeded (false without dataset, or when the target
     * cannot be emulated yet: then `why` — if not NULL — receives a host-owned reason). */
    bool (*stats_available)(hq_inspector_context_t *ctx, hq_stats_target_t target,
                            const char **why);
    /* Statistics of output piece `port` of `layer` for `target`, NULL when unavailable. */
    const hq_layer_stats_t *(*layer_stats)(hq_inspector_context_t *ctx, hq_stats_target_t target,
                                           int layer, int port);
    /* Noise of `layer`: from q.npz layer_noise_analysis when present, else computed by the host
     * when it could. NULL when neither. */
    const hq_layer_noise_t *(*layer_noise)(hq_inspector_context_t *ctx, int layer);
    /* SQNR (dB) of model output k (hq_graph_outputs order), quantized vs float, measured in this
     * run; false when the quantized pass did not run. */
    bool (*output_sqnr)(hq_inspector_context_t *ctx, int output, double *db);

    /* ---- on-demand emulation --------------------------------------------------------------- */
    /* Runs dataset samples [first, first + count) through `target` (HQ_TARGET_* of emulate.h) in
     * batches, calling `tap` (may be NULL) for every layer output and `on_batch` (may be NULL)
     * with the model outputs; the emulator is built once per target and reused. */
    hq_status_t (*emulate)(hq_inspector_context_t *ctx, hq_target_t target, int64_t first,
                           int64_t count, hq_emulator_batch_fn on_batch, hq_emulator_tap_fn tap,
                           void *user, hq_error_t *err);
    /* Runs one batch of caller-made inputs (as hq_emulator_run: inputs[i] holds batch samples of
     * input i in hq_graph_inputs order; outputs may be NULL). */
    hq_status_t (*emulate_inputs)(hq_inspector_context_t *ctx, hq_target_t target, int64_t batch,
                                  const float *const *inputs, float *const *outputs,
                                  hq_emulator_tap_fn tap, void *user, hq_error_t *err);

    /* ---- findings -------------------------------------------------------------------------- */
    /* Emits a finding (console, log, JSON, HTML). */
    void (*diagnostic)(hq_inspector_context_t *ctx, const hq_diagnostic_t *diagnostic);
    /* Shorthand: a finding without numbers or flags, printf-formatted. */
    void (*diagnosticf)(hq_inspector_context_t *ctx, hq_diag_level_t level, int layer,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));
    /* Queues a recommended script line (offered after `run` returns, grouped). HQ_ERR_FORMAT,
     * with the parse error in err, when the line is not one valid .alls command. */
    hq_status_t (*recommend)(hq_inspector_context_t *ctx, const hq_recommendation_t *rec,
                             hq_error_t *err);
    /* Declares that this inspector cannot run here; the host prints "Skipping <name>, <reason>"
     * after `run` returns HQ_OK (findings already emitted are kept). */
    void (*skip)(hq_inspector_context_t *ctx, const char *reason);
    /* A line for the log file only (timestamped and tagged with the inspector name). */
    void (*log)(hq_inspector_context_t *ctx, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

    /* ---- asking the user (through the host; never read stdin yourself) -------------------- */
    /* Whether questions reach a person (TTY and no --no-interactive). */
    bool (*interactive)(hq_inspector_context_t *ctx);
    /* A yes/no question; returns the answer, or `default_yes` when not interactive. */
    bool (*ask_yes_no)(hq_inspector_context_t *ctx, const char *question, bool default_yes);
    /* A choice among `count` words (e.g. {"none", "warning", "all"}); returns the chosen index,
     * or `default_index` when not interactive. Re-asks until the answer is one of the words. */
    int (*ask_choice)(hq_inspector_context_t *ctx, const char *question, const char *const *choices,
                      int count, int default_index);

    /* ---- files ----------------------------------------------------------------------------- */
    /* The output folder (where the log, images and reports go), without trailing '/'. */
    const char *(*output_dir)(hq_inspector_context_t *ctx);
    /* Writes `len` bytes to <output_dir>/<name> atomically (name: no '/' and no ".."). */
    hq_status_t (*write_file)(hq_inspector_context_t *ctx, const char *name, const void *bytes,
                              size_t len, hq_error_t *err);
    /* Writes an 8-bit image (rows top to bottom, `channels` 1 or 3 interleaved) to
     * <output_dir>/<name> as PNG or JPEG (by the name's extension), and attaches it with
     * `caption` to the HTML report. */
    hq_status_t (*write_image)(hq_inspector_context_t *ctx, const char *name, int width, int height,
                               int channels, const uint8_t *pixels, const char *caption,
                               hq_error_t *err);

    /* New slots go here, at the end, only. */
};

/* True when the host's context has slot `field` (for slots appended after version 1). */
#define HQ_CONTEXT_HAS(ctx, field)                                                                 \
    ((ctx)->struct_size >= offsetof(hq_inspector_context_t, field) + sizeof((ctx)->field) &&       \
     (ctx)->field != NULL)

/* The descriptor a module returns. Static and const in the module; the host never writes it. */
typedef struct hq_inspector {
    uint32_t abi_version;             /* HQ_INSPECTOR_ABI_VERSION the module was built with */
    uint32_t struct_size;             /* sizeof(hq_inspector_t) the module was built with */
    const char *name;                 /* unique, e.g. "Clipping" (shown as "Module: Clipping";
                                         --order matches it case-insensitively) */
    const char *description;          /* one line for --list-inspectors */
    hq_inspector_priority_t priority; /* default order */
    uint32_t needs;                   /* HQ_NEEDS_* */
    /* Optional (NULL): called once before run; *state is handed to run and fini. A failure is
     * reported and the inspector is not run (fini is not called). */
    hq_status_t (*init)(hq_inspector_context_t *ctx, void **state, hq_error_t *err);
    /* Required: inspects and emits findings through ctx. A status other than HQ_OK (with a
     * message in err) is reported as the inspector's failure; the other inspectors still run
     * and its findings emitted so far are kept. */
    hq_status_t (*run)(hq_inspector_context_t *ctx, void *state, hq_error_t *err);
    /* Optional (NULL): frees `state` after run (also when run failed). */
    void (*fini)(void *state);
    /* New fields go here, at the end, only. */
} hq_inspector_t;

/* The type of the exported entry: returns the module's descriptor, or NULL when the module
 * cannot work in this process (the host then refuses it, saying so). */
typedef const hq_inspector_t *(*hq_inspector_entry_fn)(void);

#ifdef __cplusplus
}
#endif
#endif
