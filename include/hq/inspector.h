/* inspector.h — the hq-diag plugin ABI: what an inspector module exports and the API table the
 * host (hq-diag) hands it.
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
 * Compatibility rules (SQLite vtables, ggml backends; hq-inspector(3) has the full list):
 * - the version is MAJOR.MINOR. The host refuses a module of another major, and a module of a
 *   newer minor than its own; it runs every module of its major and an equal or older minor;
 * - every struct here starts with a size (and the descriptor with the ABI version); fields and
 *   slots are only ever APPENDED (a minor bump), never reordered, retyped or removed (that would
 *   be a major bump);
 * - layers reach a module only as hq_inspector_layer_t and hq_inspector_params_t, structs of this
 *   header that the host fills up to the size the module asks for; the graph's own hq_layer_t
 *   may change freely without moving a field a built module reads;
 * - a plugin that uses a context slot added after the minor it declares checks
 *   HQ_CONTEXT_HAS(ctx, slot) first; every slot up to the declared minor is always non-NULL;
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

/* The ABI version, MAJOR.MINOR. The major changes only for an incompatible change (one the
 * append-only rule cannot express); the minor counts what was appended since: 1.0 the first ABI,
 * 1.1 the layer_info and layer_params slots (1.0's `layer` stays, as layer_v1), 1.2 the
 * validation_path slot.
 * hq_inspector_t.abi_version packs both, major in the low 16 bits and minor in the high 16: a 1.0
 * module carries the value 1, and a host that predates a minor refuses modules built for it (their
 * version differs from its own) instead of calling a slot it does not have. */
#define HQ_INSPECTOR_ABI_MAJOR 1u
#define HQ_INSPECTOR_ABI_MINOR 2u
#define HQ_INSPECTOR_ABI(major, minor) (((uint32_t)(minor) << 16) | (uint32_t)(major))
#define HQ_INSPECTOR_ABI_MAJOR_OF(version) (0xffffu & (uint32_t)(version))
#define HQ_INSPECTOR_ABI_MINOR_OF(version) ((uint32_t)(version) >> 16)
/* What a module built against this header declares (a module that runs on older hosts declares
 * the older minor, HQ_INSPECTOR_ABI(1, 0), and tests the newer slots with HQ_CONTEXT_HAS). */
#define HQ_INSPECTOR_ABI_VERSION HQ_INSPECTOR_ABI(HQ_INSPECTOR_ABI_MAJOR, HQ_INSPECTOR_ABI_MINOR)

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
                                  Built in one pass as calibration builds the archive's histogram
                                  (docs/diag.md): exact unless the range grew, then a count may be
                                  shared with the next bin (< 1/2000 of the range away) */
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

/* A layer as a module reads it (ctx->layer_info): this header's own copy of the fields of the
 * graph's hq_layer_t, append-only, so that a change of hq_layer_t never moves a field a built
 * module reads. The module sets `struct_size`; the host fills that many bytes at most. Pointers
 * are owned by the host and valid until `run` returns. */
typedef struct hq_inspector_layer {
    uint32_t struct_size;              /* in: sizeof(hq_inspector_layer_t) of the module;
                                          out: the bytes the host filled (the rest is zero) */
    const char *name;                  /* scoped name "net/conv3" (the key in the `.hn`) */
    const char *bare_name;             /* the part after the last '/': "conv3" */
    hq_layer_type_t type;              /* HQ_LAYER_* */
    int input_count;                   /* producers, in the order the op uses them */
    const int *inputs;                 /* [input_count] producer layer indices */
    const int *input_ports;            /* [input_count] output piece of each producer (0 unless a
                                          feature_splitter) */
    int output_count;                  /* consuming edges */
    const int *outputs;                /* [output_count] consumer layer indices */
    const int *output_ports;           /* [output_count] piece sent along each edge */
    int input_shape_count;             /* entries of input_shapes */
    const hq_shape_t *input_shapes;    /* one per input */
    hq_shape_t output_shape;           /* shape of the result (of piece 0 for a splitter) */
    int port_count;                    /* output pieces: split_count of a splitter, else 1 */
    int original_name_count;           /* entries of original_names */
    const char *const *original_names; /* names in the source framework (ONNX node names) */
    const char *precision_mode;        /* "a8_w8", ... once quantized; "" before */
    int64_t param_count;               /* weights the params define (kernel + bias), as
                                          hq_layer_param_count */
    /* New fields go here, at the end, only. */
} hq_inspector_layer_t;

/* The typed params of a layer (ctx->layer_params), the fields of graph.h's hq_layer_params_t
 * with the same names and meanings, in this header's own append-only layout. Only the fields of
 * the layer's type are meaningful; the others are zero. The module sets `struct_size`; arrays are
 * owned by the host and valid until `run` returns. */
typedef struct hq_inspector_params {
    uint32_t struct_size;             /* in: sizeof(hq_inspector_params_t) of the module;
                                         out: the bytes the host filled (the rest is zero) */
    int kernel_h, kernel_w;           /* conv, dw, deconv window; also the pool window */
    int kernel_in, kernel_out;        /* input channels per group, output channels */
    int stride_h, stride_w;           /* also pools, space/depth */
    int dilation_h, dilation_w;       /* conv, dw */
    int groups;                       /* 1 = dense convolution */
    hq_padding_t padding;             /* VALID, SAME, SAME_TENSORFLOW or EXPLICIT */
    int pads[4];                      /* top, left, bottom, right: always resolved */
    int output_pads[2];               /* deconv extra rows/cols at the end */
    bool has_bias;                    /* the params hold ".../bias:0" */
    bool batch_norm;                  /* a batch norm was folded into kernel and bias */
    bool elementwise_add;             /* a second input is added before the activation */
    hq_activation_t activation;       /* fused activation */
    float activation_alpha;           /* leaky slope, hardsigmoid alpha, clip min */
    float activation_beta;            /* hardsigmoid beta, clip max */
    bool count_include_pad;           /* avgpool */
    int axis;                         /* concat/feature_splitter/softmax/reduce, NHWC index */
    int split_count;                  /* feature_splitter: number of pieces */
    const int *split_sizes;           /* [split_count] extent of each piece along `axis` */
    int slice_begin[3];               /* slice, on H, W, C */
    int slice_end[3];                 /* slice, exclusive */
    int slice_step[3];                /* slice, >= 1 */
    hq_pad_mode_t pad_mode;           /* pad */
    float pad_value;                  /* pad, constant mode */
    int pad_channels[2];              /* pad: before, after (with `pads` for H/W) */
    hq_resize_method_t resize_method; /* resize */
    hq_resize_coords_t resize_coords; /* resize: coordinate transformation */
    bool nearest_round;               /* resize: round_prefer_floor instead of floor */
    int block_size;                   /* depth_to_space/space_to_depth */
    bool depth_to_space_crd;          /* "CRD" (true) or "DCR" (false) */
    int channels;                     /* normalization: entries of mean/std */
    const float *mean;                /* [channels] normalization mean per channel */
    const float *std;                 /* [channels] normalization std per channel */
    float epsilon;                    /* batch_norm */
    int perm[HQ_TENSOR_MAX_DIMS];     /* transpose, over the shape's ndim */
    /* New fields go here, at the end, only. */
} hq_inspector_params_t;

typedef struct hq_inspector_context hq_inspector_context_t;

/* The context: a versioned API table. The host fills it; the plugin only reads it. Each slot is
 * called as ctx->slot(ctx, ...). Strings returned are owned by the host (valid until `run`
 * returns). Layer arguments are graph layer indices (hq_graph_find maps names to indices). */
struct hq_inspector_context {
    uint32_t abi_version; /* the host's major version, HQ_INSPECTOR_ABI_MAJOR (what 1.0 modules
                             saw: its minor shows in struct_size) */
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
    /* The finalized graph, for libhq's graph functions (hq_graph_*). A module that reads
     * hq_layer_t through them depends on libhq's own ABI, not on this one: read layers through
     * layer_info and layer_params instead. */
    const hq_graph_t *(*graph)(hq_inspector_context_t *ctx);
    /* Number of layers (indices 0 .. count-1). */
    int (*layer_count)(hq_inspector_context_t *ctx);
    /* ABI 1.0's `layer`, kept at its place for modules built against 1.0: layer `index` in the
     * 1.0 layout of hq_layer_t, frozen (a copy the host keeps, whatever hq_layer_t has become),
     * NULL when out of range. New modules call layer_info and layer_params. */
    const void *(*layer_v1)(hq_inspector_context_t *ctx, int index);
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
    /* Whether the pass for `target` ran and succeeded (false without dataset, when no selected
     * inspector needs that target's statistics (HQ_NEEDS_QUANTIZED_STATS, HQ_NEEDS_NATIVE_STATS:
     * a run the headline makes alone keeps no per-layer statistics), or when the target cannot
     * be emulated yet: then `why` — if not NULL — receives a host-owned reason). */
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
    /* The output folder of this run (where write_file and write_image write; hq-diag gives each
     * log its own), without trailing '/'. */
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

    /* ---- layers, in this header's own layout (ABI 1.1) ----------------------------------- */
    /* Layer `index` into the module's *layer: the host fills min(layer->struct_size, its own
     * sizeof(hq_inspector_layer_t)) bytes, zeroes the rest of the module's struct and sets
     * struct_size to the bytes it filled. false, and *layer left alone, when `index` is out of
     * range or struct_size is smaller than a uint32_t. */
    bool (*layer_info)(hq_inspector_context_t *ctx, int index, hq_inspector_layer_t *layer);
    /* The typed params of layer `index` into the module's *params, filled the same way. */
    bool (*layer_params)(hq_inspector_context_t *ctx, int index, hq_inspector_params_t *params);

    /* ---- held-out data (ABI 1.2) ----------------------------------------------------------- */
    /* Path of the held-out validation data given with hq-diag --verify-data (a dataset like
     * dataset_path, to open with hq_dataset_open against the graph), or NULL when none was
     * given. */
    const char *(*validation_path)(hq_inspector_context_t *ctx);

    /* New slots go here, at the end, only. */
};

/* True when the host's context has slot `field`: needed only for slots appended after the minor
 * version the module declares (the host refuses a module of a newer minor than its own). */
#define HQ_CONTEXT_HAS(ctx, field)                                                                 \
    ((ctx)->struct_size >= offsetof(hq_inspector_context_t, field) + sizeof((ctx)->field) &&       \
     (ctx)->field != NULL)

/* The descriptor a module returns. Static and const in the module; the host never writes it. */
typedef struct hq_inspector {
    uint32_t abi_version;             /* HQ_INSPECTOR_ABI_VERSION the module was built with
                                         (major and minor, see HQ_INSPECTOR_ABI) */
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
