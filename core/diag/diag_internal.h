/* diag_internal.h — the hq-diag runner's state shared by its units: the loader (loader.c), the
 * statistics pass (stats.c), the inspector context (context.c) with its layer views (layers.c),
 * the runner (runner.c), the script merge (merge.c) and the reports (report_json.c,
 * report_html.c). Prefix hqi_diag_. Internal to libhq. */
#ifndef HQI_DIAG_INTERNAL_H
#define HQI_DIAG_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "hq/dataset.h"
#include "hq/diag.h"
#include "hq/emulate.h"
#include "hq/inspector.h"
#include "stats/stats.h"

/* Every layer in the frozen 1.0 layout of hq_layer_t (layers.c). */
typedef struct hqi_diag_layers_1_0 hqi_diag_layers_1_0_t;

/* The reference outputs and the native-vs-reference SQNR (reference.c). */
typedef struct hqi_diag_reference hqi_diag_reference_t;
/* The verification's settings and results (verify.c). */
typedef struct hqi_diag_verify hqi_diag_verify_t;

/* One loaded module. */
typedef struct hqi_diag_module {
    char *path;                 /* file it was loaded from */
    void *handle;               /* dlopen handle, dlclose'd on destroy */
    const hq_inspector_t *desc; /* the module's descriptor (owned by the module) */
    hq_inspector_t slots;       /* the descriptor's fields this host knows, zero beyond the
                                   module's struct_size (so optional slots read as NULL) */
} hqi_diag_module_t;

/* A named number, copied. */
typedef struct hqi_diag_number {
    char *name;
    double value;
} hqi_diag_number_t;

/* A finding, copied from the inspector. */
typedef struct hqi_diag_finding {
    int module; /* index into diag->modules */
    hq_diag_level_t level;
    int layer; /* -1: none */
    char *message;
    hqi_diag_number_t *numbers;
    int number_count;
    uint32_t flags; /* HQ_DIAG_SHOW_* */
} hqi_diag_finding_t;

/* A recommendation, copied, and what became of it. */
typedef struct hqi_diag_rec {
    int module;
    hq_diag_level_t level;
    int layer;
    char *line; /* canonical text of the one command */
    char *reason;
    char *group; /* never NULL: a generated id when the inspector gave none */
    hq_group_kind_t group_kind;
    char *question; /* NULL: the default question */
    int default_answer;
    bool offered; /* its group was offered already */
    bool accepted;
} hqi_diag_rec_t;

/* Statistics of one (layer, port) output, accumulated by the statistics engine (core/stats);
 * becomes an hq_layer_stats_t. */
typedef struct hqi_diag_acc {
    int layer, port;
    hqi_stats_t stats;
} hqi_diag_acc_t;

/* The statistics of one target. */
typedef struct hqi_diag_stats {
    bool ran;                /* the pass completed */
    char *why;               /* why not, when !ran */
    hq_target_t target;      /* the emulation target used */
    int count;               /* entries */
    int *first;              /* [layer count + 1]: entries of layer L are first[L]..first[L+1]-1 */
    hqi_diag_acc_t *acc;     /* [count] */
    hq_layer_stats_t *stats; /* [count] finalized views */
    float *arrays;           /* channel mean/std, preact mean/std of every entry */
} hqi_diag_stats_t;

/* Per-layer noise. */
typedef struct hqi_diag_noise {
    hq_layer_noise_t noise;
    double signal, error; /* computed: sums over the run (when no archive value) */
    bool computed;
} hqi_diag_noise_t;

/* How the headline judges a model output (agreement.c; docs/diag.md, "Decision outputs"): by its
 * SQNR, or, for an output a sigmoid or a softmax produces, by the decisions it leads to. */
typedef enum hqi_diag_decision_kind {
    HQI_DECISION_NONE = 0,
    HQI_DECISION_SIGMOID, /* a probability per element: the decision is the side of 0.5 */
    HQI_DECISION_SOFTMAX, /* a distribution over classes: the decision is the largest class */
} hqi_diag_decision_kind_t;

typedef struct hqi_diag_decision {
    hqi_diag_decision_kind_t kind;
    int64_t classes; /* softmax: extent of its axis in the per-sample tensor */
    int64_t inner;   /* softmax: elements after that axis (1 when it is the last) */
} hqi_diag_decision_t;

/* Decisions counted over the samples: sigmoid: [s] the elements where the reference is below
 * (s = 0) or at or above (s = 1) 0.5 and how many of them the test keeps on that side; softmax:
 * [0] the positions and how many have the reference's class. */
typedef struct hqi_diag_agreement {
    double kept[2], total[2];
} hqi_diag_agreement_t;

/* A file an inspector wrote (images go into the HTML report). */
typedef struct hqi_diag_file {
    int module;
    char *name;    /* file name inside output_dir */
    char *caption; /* NULL unless written by write_image */
    bool image;
} hqi_diag_file_t;

struct hq_diag {
    hq_diag_options_t options; /* strings below are copies */
    char *hw_arch;
    char *output_dir;

    hqi_diag_module_t *modules; /* loaded, in load order */
    int module_count;
    int *order; /* run order: indices into modules */
    int order_count;
    bool order_explicit; /* --order was given */

    char *model_path;
    char *dataset_path;
    hq_archive_t *archive;
    hq_graph_t *graph; /* owned by the archive */
    hq_dataset_t *dataset;
    int64_t samples; /* samples the run uses */

    hqi_diag_stats_t stats[3]; /* by hq_stats_target_t */
    hqi_diag_noise_t *noise;   /* [layer count] */
    bool noise_loaded;
    int output_count;
    double *output_signal, *output_error; /* [outputs]: quantized against the float target */
    bool output_sqnr_ran;
    double *native_signal, *native_error; /* [outputs]: fp_optimized against native */
    bool native_sqnr_ran;
    hqi_diag_decision_t *decisions;   /* [outputs] how each output is judged (agreement.c) */
    hqi_diag_agreement_t *output_agree; /* [outputs]: quantized against the float target */
    hqi_diag_agreement_t *native_agree; /* [outputs]: fp_optimized against native */
    bool verdict_made;            /* the headline measured at least one stage */
    hq_diag_level_t verdict_level; /* the headline's verdict (headline.c) */
    char *verdict_summary;         /* its one-line summary, NULL before the run */

    hq_emulator_t *emulators[8]; /* on-demand, by hq_target_t */
    hqi_diag_layers_1_0_t *layers_1_0; /* built on the first layer_v1 call (modules of ABI 1.0) */

    hqi_diag_finding_t *findings;
    int finding_count;
    hqi_diag_rec_t *recs;
    int rec_count;
    hqi_diag_file_t *files;
    int file_count;
    bool *failed;   /* [module_count] the module's init/run failed */
    char **skipped; /* [module_count] skip reason, NULL when it ran */
    const char *input_changed_by; /* an accepted line that changes the model's input, or NULL */
    bool ran;

    hqi_diag_reference_t *reference; /* --reference: the outputs and their SQNR (reference.c) */
    hqi_diag_verify_t *verify;       /* --verify: its settings and figures (verify.c) */
};

/* Emits an event through the options' callback (no-op without one). printf-style text. */
void hqi_diag_event(hq_diag_t *diag, hq_diag_event_kind_t kind, hq_diag_level_t level,
                    const char *inspector, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The quantized emulation target when this libhq has one ("quantized"), else -1. */
int hqi_diag_quantized_target(void);

/* Runs the statistics passes the selected inspectors need (stats.c). Never fails the run: a pass
 * that cannot run records why. */
void hqi_diag_compute_stats(hq_diag_t *diag);
/* Fills the hq_layer_stats_t view of one accumulator (all but layer, port, target): the range,
 * moments and histogram, the per-channel and pre-activation moments (per-sample std) written to
 * `arrays` (room for 4 * channels floats), which `s` then points into. Returns the floats used. */
size_t hqi_diag_stats_view(const hqi_stats_t *stats, float *arrays, hq_layer_stats_t *s);
/* Loads per-layer noise from q.npz (stats.c). */
void hqi_diag_load_noise(hq_diag_t *diag);
/* SQNR (dB) of model output k measured in the pass (valid when output_sqnr_ran). */
double hqi_diag_output_sqnr(const hq_diag_t *diag, int output);
/* SQNR (dB) of model output k of fp_optimized against native (valid when native_sqnr_ran). */
double hqi_diag_native_sqnr(const hq_diag_t *diag, int output);
/* Decision agreement (%) of model output k, quantized against the float target / fp_optimized
 * against native (valid with output_sqnr_ran / native_sqnr_ran); NaN for an output judged by its
 * SQNR alone. */
double hqi_diag_output_agreement(const hq_diag_t *diag, int output);
double hqi_diag_native_agreement(const hq_diag_t *diag, int output);

/* The level the headline gives an output measured at `db` SQNR and `pct` decision agreement (NaN:
 * an output judged by its SQNR): error below the floor, warning below the good level (headline.c). */
hq_diag_level_t hqi_diag_output_level(double db, double pct);
/* agreement.c: how output layer `output_layer` is judged: a sigmoid (or hard sigmoid) fused into
 * the layer feeding it, a softmax feeding it, or neither. */
hqi_diag_decision_t hqi_diag_output_decision(const hq_graph_t *graph, int output_layer);
/* "sigmoid", "softmax", or NULL for HQI_DECISION_NONE. */
const char *hqi_diag_decision_name(hqi_diag_decision_kind_t kind);
/* Counts the decisions of `size` output values (whole samples) of `test` against `reference`. */
void hqi_diag_agreement_add(const hqi_diag_decision_t *decision, const float *reference,
                            const float *test, int64_t size, hqi_diag_agreement_t *a);
/* The agreement in %: softmax, the share of positions with the reference's class; sigmoid, the
 * mean over the reference's two sides of the share kept on that side. NaN when nothing counted. */
double hqi_diag_agreement_pct(const hqi_diag_agreement_t *a);
/* The headline: prints the stage table (output SQNR per output and stage) and records the verdict
 * as a host finding, or says why nothing was measured (headline.c). Runs after the pass. */
void hqi_diag_headline(hq_diag_t *diag);
/* Frees every statistics pass. */
void hqi_diag_free_stats(hq_diag_t *diag);
/* An emulator for `target`, built on first use and cached. */
hq_status_t hqi_diag_emulator(hq_diag_t *diag, hq_target_t target, hq_emulator_t **out,
                              hq_error_t *err);
/* Reads samples [first, first+count) of every dataset input into per-graph-input buffers
 * (caller-owned, graph input order). */
hq_status_t hqi_diag_read_batch(hq_diag_t *diag, int64_t first, int64_t count, float **inputs,
                                hq_error_t *err);
/* Floats per sample of graph input i. */
int64_t hqi_diag_input_size(const hq_diag_t *diag, int input);

/* What ctx->host points at during one inspector's init/run/fini. */
typedef struct hqi_diag_host {
    hq_diag_t *diag;
    int module;        /* index into diag->modules */
    char *skip_reason; /* set by ctx->skip; owned by the runner once the inspector returns */
    int rec_serial;    /* numbering of groups the inspector left unnamed */
} hqi_diag_host_t;

/* Fills every slot of the inspector context for one inspector's run on `host` (context.c). */
void hqi_diag_fill_context(hq_inspector_context_t *ctx, hqi_diag_host_t *host);
/* Copies a finding of module `module` into diag->findings and emits it as a message event; a bad
 * level becomes an error and a bad layer -1 (context.c). */
void hqi_diag_add_finding(hq_diag_t *diag, int module, hq_diag_level_t level, int layer,
                          const char *message, const hq_diag_number_t *numbers, int number_count,
                          uint32_t flags);
/* Asks the options' question callback; without one, or on an answer out of range, the default
 * (context.c). */
int hqi_diag_ask(hq_diag_t *diag, int module, const char *question, const char *const *choices,
                 int count, int default_index);
/* The statistics set behind a stats target: native asked while the float pass ran on native
 * params is that pass; NULL for a target out of range (context.c). */
const hqi_diag_stats_t *hqi_diag_stats_set(const hq_diag_t *diag, hq_stats_target_t target);
/* The context's layers (layers.c). Layer `index` in the frozen 1.0 layout of hq_layer_t, built
 * for every layer on first use and kept in diag until hq_diag_destroy; NULL when out of range or
 * out of memory. */
const void *hqi_diag_layer_1_0(hq_diag_t *diag, int index);
void hqi_diag_free_layers_1_0(hqi_diag_layers_1_0_t *layers);
/* Layer `index` / its params into a module's sized struct (the layer_info and layer_params
 * slots of inspector.h). */
bool hqi_diag_layer_info(const hq_graph_t *graph, int index, hq_inspector_layer_t *layer);
bool hqi_diag_layer_params(const hq_graph_t *graph, int index, hq_inspector_params_t *params);

/* Warns (a host message) about each line of the archive's script that the model-script
 * vocabulary refuses (a near miss of a known command, first word or key), which `hq optimize -m`
 * would refuse in the script hq-diag writes (merge.c). */
void hqi_diag_check_script(hq_diag_t *diag);
/* Does command `b` (a new line) contradict `a` (an existing line)? (merge.c) */
bool hqi_diag_commands_contradict(const hq_command_t *a, const hq_command_t *b);
/* Whether the archive's script already applies `line`: its last line about the same setting
 * (hqi_diag_commands_contradict) holds every argument of `line`, numbers to 3 significant
 * digits. Such a recommendation is not offered again. */
bool hqi_diag_script_holds(const hq_diag_t *diag, const hq_command_t *line);

/* ---- console folding and triage (triage.c) ---- */

/* Whether a finding is folded into its inspector's summary lines instead of printed on its own:
 * an inspector's (not the host's) finding about a layer, below error level. */
bool hqi_diag_finding_folds(const hq_diag_t *diag, int module, hq_diag_level_t level, int layer);
/* After module `module` ran: its folded findings of each level become one console line, the
 * finding itself when it is alone, else "<name>: <n> warning(s) on <k> layer(s); worst a, b, c"
 * (worst: lowest measured layer SQNR first, then reported order), and each becomes a
 * HQ_DIAG_EVENT_DETAIL (the log). */
void hqi_diag_fold_findings(hq_diag_t *diag, int module);

/* Causes the triage lists at most. */
#define HQI_DIAG_TRIAGE_MAX 5

/* One cause of the triage: an inspector (or the host's verdict, module -1) with a finding at
 * warning or error level, or with a recommended line. */
typedef struct hqi_diag_cause {
    int module;              /* index into diag->modules; -1: the host (the headline verdict) */
    hq_diag_level_t level;   /* its worst finding's or recommendation's level */
    double expected_gain_db; /* largest `expected_gain_db` number of its findings; NAN: none */
    int line_count;          /* its recommended lines */
    bool fixes_input;        /* one of them changes the network's input (normalization, ...) */
    bool fixes_network;      /* one of them changes a network-wide setting (compression, level) */
    char summary[1024];      /* one line: its worst finding (or the verdict) */
} hqi_diag_cause_t;

/* True when a model-script line changes what the network sees at its input (a normalization
 * layer or an input conversion): every statistic of a run was measured before it. */
bool hqi_diag_changes_input(const char *line);
/* True when a model-script line changes a quantization setting of the whole network (the
 * compression level, the 4-bit weight ratio, the optimization level): the per-layer noise figures
 * of a run were measured under it. */
bool hqi_diag_changes_network(const char *line);
/* The causes, ranked (docs/diag.md, "Triage"): a cause whose fix line changes the input first,
 * then an inspector's cause with a fix line before the host's verdict, then level (error >
 * warning > info), then an expected gain (present before absent, larger first), then inspector
 * priority (the host after every inspector), then a cause with a recommended line before one
 * without, then run order. Fills at most `max`; returns how many. */
int hqi_diag_triage(const hq_diag_t *diag, hqi_diag_cause_t *causes, int max);
/* Reports the triage as HQ_DIAG_EVENT_TRIAGE lines (the end of hq_diag_run). */
void hqi_diag_report_triage(hq_diag_t *diag);

/* ---- the reference stage (reference.c) and the verification (verify.c) ---- */

/* Output SQNR in dB from the sums of squared reference values and squared differences, with the
 * conventions of the headline: 200 for identical outputs (stats.c). */
double hqi_diag_sqnr_db(double signal, double error);
/* Runs the native emulation over the diagnosis samples against the reference outputs (when
 * hq_diag_set_reference gave some); never fails the run: a failure is reported and the stage
 * left out. */
void hqi_diag_reference_pass(hq_diag_t *diag);
/* Whether the native-vs-reference SQNR was measured for every output, and its value. */
bool hqi_diag_reference_ran(const hq_diag_t *diag);
double hqi_diag_reference_sqnr(const hq_diag_t *diag, int output);
void hqi_diag_free_reference(hqi_diag_reference_t *reference);
/* The measured gain of the triage cause of module `module` (the change of the lowest output
 * SQNR when its accepted lines alone are applied), NAN when not measured. */
double hqi_diag_measured_gain(const hq_diag_t *diag, int module);
/* The `verify` object of the JSON report (a cJSON *), or NULL when --verify did not run. */
void *hqi_diag_verify_json(const hq_diag_t *diag);
/* Appends the verification table to an HTML report ("Verified fixes"); nothing when --verify did
 * not run. */
struct hqi_buf;
void hqi_diag_verify_html(const hq_diag_t *diag, struct hqi_buf *out);
void hqi_diag_free_verify(hqi_diag_verify_t *verify);
/* The --verify-data path (the context's validation_path), or NULL. */
const char *hqi_diag_validation_path(const hq_diag_t *diag);

/* "info", "warning", "error". */
const char *hqi_diag_level_word(hq_diag_level_t level);

/* "Module name" of the module index (for messages). */
const char *hqi_diag_module_name(const hq_diag_t *diag, int module);

#endif
