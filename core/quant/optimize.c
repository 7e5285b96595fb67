/* optimize.c — hq_optimize: the quantizer's driver, one named step after the other.
 *
 * Steps (docs/quantizer.md): model-modification commands of the script in order (normalization,
 * input_conversion bgr_to_rgb, change_output_activation); batch-norm folding and cross-layer
 * equalization (fp-optimized params); one calibration pass; precision propagation; compression;
 * ranges and clipping; integer params (hqi_quant_build_params, core/numerics/qmodel_build.c);
 * the post-quantization algorithms (finetune, bias correction, AdaRound); statistics and decisions
 * into the archive;
 * simple noise analysis. What the script's commands mean is read in optimize_script.c.
 *
 * Which optimization algorithms run is one table (`algorithms`): per algorithm the lowest and
 * highest optimization level that run it, the samples each level wants and its run function (NULL
 * when hq does not have it). The script's policy= overrides the level. Each algorithm logs one line:
 * run or skipped and why, its time and, for those acting on the integer params, the output SQNR
 * it gained on held-back samples (holdout.c).
 *
 * The archive's graph becomes the modified graph. The native params are rewritten only where the
 * graph itself changed (a folded batch norm, a channel swap folded into a kernel), so that native
 * emulation of the quantized archive computes the exported network with the model-script
 * modifications, and fp_optimized computes the same function with the float optimizations. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emulate/qemulator.h"
#include "graph/hw_arch.h"
#include "graph/layer_types.h"
#include "numerics/lower.h"
#include "quant/adaround.h"
#include "quant/finetune.h"
#include "quant/calibrate.h"
#include "quant/compression.h"
#include "quant/equalize.h"
#include "quant/holdout.h"
#include "quant/optimize.h"
#include "quant/optimize_bias.h"
#include "quant/optimize_script.h"
#include "quant/precision.h"
#include "quant/quant_util.h"
#include "quant/ranges.h"
#include "script/script_query.h"
#include "util/util.h"

static hq_status_t clone_params_f32(const hq_npz_t *src, hq_npz_t **out, hq_error_t *err)
{
    hq_npz_t *dst = NULL;
    hq_status_t st = hq_npz_create(&dst, err);
    for (size_t i = 0; st == HQ_OK && i < hq_npz_count(src); i++) {
        const hq_tensor_t *t = hq_npz_get_index(src, i);
        if (t->dtype == HQ_DTYPE_FLOAT16 || t->dtype == HQ_DTYPE_FLOAT64) {
            hq_tensor_t *c = NULL;
            st = hq_tensor_convert(t, HQ_DTYPE_FLOAT32, &c, err);
            if (st == HQ_OK)
                st = hq_npz_put(dst, hq_npz_key(src, i), c, err);
        } else {
            st = hq_npz_put_copy(dst, hq_npz_key(src, i), t, err);
        }
    }
    if (st != HQ_OK) {
        hq_npz_destroy(dst);
        return st;
    }
    *out = dst;
    return HQ_OK;
}

/* Activations the integer model computes through a lookup table (quant.h: pre_min/pre_max). */
static const bool lut_activation[HQ_ACT_COUNT] = {
    [HQ_ACT_SIGMOID] = true,   [HQ_ACT_SILU] = true,        [HQ_ACT_TANH] = true,
    [HQ_ACT_HARDSWISH] = true, [HQ_ACT_HARDSIGMOID] = true, [HQ_ACT_EXP] = true,
    [HQ_ACT_GELU] = true,
};

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void hqi_optimize_result_free(hqi_optimize_result_t *result)
{
    if (!result)
        return;
    hqi_weight_clip_free(result->decisions, result->layer_count);
    free(result->decisions);
    hqi_calibration_destroy(result->calibration);
    memset(result, 0, sizeof *result);
}

/* ---- one run, step by step ---------------------------------------------------------------- */

/* Everything one run holds between its steps. The run owns every pointer here except `script`
 * (the caller's or the archive's) and `options`; run_close frees what is left. */
typedef struct run {
    hqi_optimize_work_t work; /* working graph and params, the script's configuration */
    const hq_optimize_options_t *options;
    const char *path;    /* the archive's path, for messages */
    const char *hw_arch; /* the target: the options' or the archive's */
    int64_t memory;      /* the target's weight memory in bytes */
    const hq_script_t *script;
    int ds_inputs;      /* inputs of the calibration dataset */
    char **input_names; /* [ds_inputs] the original graph's layer each dataset input feeds */
    bool names_ok;      /* input_names complete; else the dataset's inputs are taken in order */
    int n;              /* layers of the final graph */
    hqi_precision_request_t *prec; /* [n] the script's precision requests */
    hqi_range_request_t *ranges;   /* [n] the script's range and clipping requests */
    hqi_layer_quant_t *dec;        /* [n] the decisions */
    bool *locked;                  /* [n] precision fixed by the script: never compressed */
    hqi_calibration_t *cal;
    hq_dataset_t *calib;           /* the calibration set (borrowed) */
    int64_t calibset, batch;       /* samples calibrated, in batches of */
    hqi_compression_result_t comp;
    int level;                    /* the optimization level used */
    int bias_mode;                /* HQI_BIAS_ANALYTIC or HQI_BIAS_ITERATIVE */
    int folded, pairs, corrected; /* batch norms folded, pairs equalized, layers bias-corrected */
    bool finetuned;               /* finetune changed integer params (analytic bias correction,
                                     which rebuilds them from the float ones, would undo it) */
    hqi_holdout_t holdout;        /* the samples gains are measured on */
    hqi_sqnr_probe_t *probe;      /* measures them (NULL until an algorithm on integers runs) */
    int emulation;                /* the quantized network can be emulated: -1 not known yet,
                                     0 no (`no_emulation` says why), 1 yes */
    hq_error_t no_emulation;
    double sqnr;                  /* output SQNR of `q` on the probe's samples, dB */
    hq_npz_t *q;                  /* the quantized params */
    hq_script_t *script_copy;     /* the script used, for the archive */
} run_t;

/* Dataset input j was matched to an input layer of the original graph: keep its name, which the
 * modified graph still has. Without all names the dataset's inputs are taken in order. */
static void keep_input_names(run_t *r, const hq_graph_t *original, hq_dataset_t *calib)
{
    r->ds_inputs = hq_dataset_input_count(calib);
    r->input_names = calloc((size_t)(r->ds_inputs > 0 ? r->ds_inputs : 1), sizeof(char *));
    r->names_ok = r->input_names != NULL;
    for (int j = 0; j < r->ds_inputs && r->names_ok; j++) {
        int layer = hq_dataset_input_layer(calib, j);
        if (layer < 0) {
            r->names_ok = false;
            break;
        }
        r->input_names[j] = hqi_strdup(hq_graph_layer(original, layer)->name);
        r->names_ok = r->input_names[j] != NULL;
    }
}

/* Checks the archive and the target, then makes the working copies of graph and params. */
static hq_status_t run_open(run_t *r, hq_archive_t *archive, const hq_script_t *script_in,
                            hq_dataset_t *calib, hq_error_t *err)
{
    if (!archive || !calib)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_optimize: NULL archive or dataset");
    r->path = hq_archive_path(archive)[0] ? hq_archive_path(archive) : "archive";
    if (hq_archive_state(archive) != HQ_STATE_PARSED)
        return hqi_error(err, HQ_ERR_STATE,
                         "%s: state is %s; hq optimize starts from a parsed_model archive "
                         "(the output of hq parse)",
                         r->path, hq_model_state_name(hq_archive_state(archive)));
    r->hw_arch = r->options->hw_arch ? r->options->hw_arch : hq_archive_hw_arch(archive);
    const hq_cost_model_t *arch = NULL;
    hq_status_t st = hqi_hw_arch_find(r->hw_arch, &arch, err);
    if (st != HQ_OK)
        return st;
    r->memory = (int64_t)arch->weight_memory_bytes;
    hq_graph_t *original = NULL;
    hq_npz_t *native_in = NULL;
    hq_script_t *own_script = NULL;
    st = hq_archive_graph(archive, &original, err);
    if (st == HQ_OK)
        st = hq_archive_params(archive, HQ_PARAMS_NATIVE, &native_in, err);
    if (st == HQ_OK && !script_in)
        st = hq_archive_script(archive, &own_script, err);
    if (st != HQ_OK)
        return st;
    r->script = script_in ? script_in : own_script;
    /* messages name the script's file; the archive's own script is named after the archive */
    const char *name = hqi_script_name(r->script);
    r->work.script_name = name && name[0]           ? name
                          : r->options->script_name ? r->options->script_name
                                                    : "model script";
    keep_input_names(r, original, calib);
    st = hq_graph_clone(original, &r->work.graph, err);
    if (st == HQ_OK)
        st = clone_params_f32(native_in, &r->work.native, err);
    if (st == HQ_OK)
        st = clone_params_f32(native_in, &r->work.fpo, err);
    return st;
}

/* A layer with no integer form (a type without a runtime op: matmul between computed tensors,
 * ew_div, reduce_sum; or params the integer kernel does not compute, such as some resizes) is
 * refused before any calibration, naming the layer and why: the quantized archive could be neither
 * emulated nor compiled. */
static hq_status_t check_integer_forms(const run_t *r, bool build_integer, hq_error_t *err)
{
    const hq_graph_t *g = r->work.graph;
    for (int i = 0; i < hq_graph_layer_count(g); i++) {
        const hq_layer_t *layer = hq_graph_layer(g, i);
        if (build_integer && layer->type != HQ_LAYER_INPUT && !hqi_lower_supported(layer->type))
            return hqi_error(err, HQ_ERR_UNSUPPORTED,
                             "%s: layer '%s': type %s has no integer form in hq (it runs in float "
                             "emulation only); cut the graph before it (hq parse "
                             "--end-node-names) or run it on the host",
                             r->path, layer->name, hq_layer_type_name(layer->type));
        const char *why = hqi_lower_params_unsupported(layer);
        if (why)
            return hqi_error(err, HQ_ERR_UNSUPPORTED, "%s: layer '%s': %s", r->path, layer->name,
                             why);
    }
    return HQ_OK;
}

/* ---- optimization levels ------------------------------------------------------------------ */

#define LEVELS 5 /* optimization_level 0 .. 4 */

/* Runs one algorithm on `images` samples (0: it needs none beyond calibration) and describes what
 * it did in `detail` ("12 pair(s)"). */
typedef hq_status_t (*algorithm_fn)(run_t *r, int64_t images, char *detail, size_t size,
                                    hq_error_t *err);

/* One row per algorithm of the optimization levels, in the order they run. */
typedef struct algorithm {
    hqi_algorithm_t id;    /* names the algorithm and indexes the script's policy */
    int min_level;         /* the lowest optimization_level that runs it */
    int max_level;         /* the highest */
    int64_t images[LEVELS]; /* per level, the samples it wants; 0: the calibration set */
    bool on_integers;      /* acts on the integer params: its output-SQNR gain is measured */
    algorithm_fn run;      /* NULL: not available in hq (a warning says so when asked for) */
} algorithm_t;

static hq_status_t run_equalization(run_t *r, int64_t images, char *detail, size_t size,
                                    hq_error_t *err);
static hq_status_t run_bias_correction(run_t *r, int64_t images, char *detail, size_t size,
                                       hq_error_t *err);
static hq_status_t run_adaround(run_t *r, int64_t images, char *detail, size_t size,
                                hq_error_t *err);
static hq_status_t run_finetune(run_t *r, int64_t images, char *detail, size_t size,
                                hq_error_t *err);

/* The levels as Hailo documents them: 0 equalization; 1 + iterative bias correction; 2 (the
 * default) + finetune on 1024 images; 3 AdaRound on 256 images; 4 AdaRound on 1024 images
 * (levels 3 and 4 train the rounding instead of finetune: AdaRound re-rounds a layer from its
 * float kernel, which would discard what finetune learned). Finetune runs before bias
 * correction, which corrects the mean error it leaves on the whole network. AdaRound runs after
 * it: the analytic form rebuilds the integer kernels from the float ones, and AdaRound keeps
 * either form's correction valid (adaround.h). */
static const algorithm_t algorithms[] = {
    {HQI_ALGORITHM_EQUALIZATION, 0, 4, {0, 0, 0, 0, 0}, false, run_equalization},
    {HQI_ALGORITHM_FINETUNE, 2, 2, {0, 0, 1024, 0, 0}, true, run_finetune},
    {HQI_ALGORITHM_BIAS_CORRECTION, 1, 4, {0, 0, 0, 0, 0}, true, run_bias_correction},
    {HQI_ALGORITHM_ADAROUND, 3, 4, {0, 0, 0, 256, 1024}, true, run_adaround},
};

/* Whether row `a` runs, and why, into `why`. */
static bool algorithm_decided(const run_t *r, const algorithm_t *a, char *why, size_t size)
{
    int policy = r->work.cfg.policy[a->id];
    if (policy >= 0) {
        snprintf(why, size, "policy=%s in the script", policy ? "enabled" : "disabled");
        return policy == 1;
    }
    if (r->level > a->max_level) {
        snprintf(why, size, "level %d > %d", r->level, a->max_level);
        return false;
    }
    snprintf(why, size, "level %d %s %d", r->level, r->level >= a->min_level ? ">=" : "<",
             a->min_level);
    return r->level >= a->min_level;
}

/* The samples row `a` runs on at the run's level; `note` says when the dataset has fewer than
 * the level wants (the algorithm then runs on what there is). */
static int64_t algorithm_images(const run_t *r, const algorithm_t *a, char *note, size_t size)
{
    note[0] = '\0';
    int64_t wanted = a->images[r->level];
    if (wanted == 0)
        return 0;
    int64_t images = hqi_holdout_images(&r->holdout, wanted);
    if (images == wanted)
        snprintf(note, size, " on %lld images", (long long)wanted);
    else
        snprintf(note, size,
                 " on %lld images: level %d wants %lld, the dataset has %lld%s, so it runs on "
                 "what there is",
                 (long long)images, r->level, (long long)wanted, (long long)images,
                 r->holdout.on_calibration ? "" : " besides the held-back samples");
    return images;
}

/* Whether the quantized emulator runs the integer params (a layer type without a quantized
 * kernel stops it): measurements and the iterative bias correction need it, the archive does
 * not. */
static bool quantized_emulation(run_t *r)
{
    if (r->emulation < 0) {
        hqi_qemu_t *qemu = NULL;
        r->emulation = hqi_qemu_create(r->work.graph, r->q, "quantized params", &qemu,
                                       &r->no_emulation) == HQ_OK;
        hqi_qemu_destroy(qemu);
    }
    return r->emulation == 1;
}

/* The held-back samples and the float outputs on them, made before the first measurement. */
static hq_status_t probe_open(run_t *r, hq_error_t *err)
{
    if (r->probe || !quantized_emulation(r))
        return HQ_OK;
    hqi_optimize_work_t *w = &r->work;
    hq_status_t st = hqi_sqnr_probe_create(w->graph, w->fpo, r->calib,
                                           r->names_ok ? r->input_names : NULL, &r->holdout,
                                           r->batch, r->options->threads, &r->probe, err);
    if (st == HQ_OK)
        st = hqi_sqnr_probe_measure(r->probe, r->q, &r->sqnr, err);
    if (st != HQ_OK)
        return st;
    if (r->holdout.on_calibration)
        hqi_logf(&w->log, HQ_LOG_INFO,
                 "output SQNR measured on %lld calibration sample(s): the dataset has no sample "
                 "beyond calibset_size %lld to hold back; %.2f dB before post-quantization "
                 "algorithms",
                 (long long)r->holdout.count, (long long)r->calibset, r->sqnr);
    else
        hqi_logf(&w->log, HQ_LOG_INFO,
                 "output SQNR measured on %lld held-back sample(s) [%lld, %lld) that calibration "
                 "did not see; %.2f dB before post-quantization algorithms",
                 (long long)r->holdout.count, (long long)r->holdout.first,
                 (long long)(r->holdout.first + r->holdout.count), r->sqnr);
    return HQ_OK;
}

/* Runs (or says why it skips) every row of one phase: the float rows before calibration, the
 * integer rows after the integer params are built. One line per row. */
static hq_status_t run_algorithms(run_t *r, bool on_integers, bool build_integer, hq_error_t *err)
{
    hqi_optimize_work_t *w = &r->work;
    for (size_t k = 0; k < sizeof algorithms / sizeof algorithms[0]; k++) {
        const algorithm_t *a = &algorithms[k];
        const char *name = hqi_algorithm_names[a->id];
        char why[160], note[200], detail[160] = "";
        if (a->on_integers != on_integers)
            continue;
        if (!algorithm_decided(r, a, why, sizeof why)) {
            hqi_logf(&w->log, HQ_LOG_INFO, "%s: skipped (%s)", name, why);
            continue;
        }
        if (!a->run) {
            hqi_logf(&w->log, HQ_LOG_WARNING, "%s: not available in hq, skipped (%s asks for it)",
                     name, why);
            continue;
        }
        if (on_integers && !build_integer) {
            hqi_logf(&w->log, HQ_LOG_INFO, "%s: skipped (no integer params are built)", name);
            continue;
        }
        int64_t images = algorithm_images(r, a, note, sizeof note);
        hq_status_t st = on_integers ? probe_open(r, err) : HQ_OK;
        double before = r->sqnr;
        double t0 = seconds_now();
        if (st == HQ_OK)
            st = a->run(r, images, detail, sizeof detail, err);
        double seconds = seconds_now() - t0;
        if (st == HQ_OK && on_integers && r->probe)
            st = hqi_sqnr_probe_measure(r->probe, r->q, &r->sqnr, err);
        if (st != HQ_OK)
            return st;
        if (on_integers && !r->probe)
            hqi_logf(&w->log, HQ_LOG_INFO,
                     "%s: run (%s)%s: %s, %.2f s; gain not measured: the quantized network "
                     "cannot be emulated (%s)",
                     name, why, note, detail, seconds, r->no_emulation.message);
        else if (on_integers)
            hqi_logf(&w->log, HQ_LOG_INFO,
                     "%s: run (%s)%s: %s, %.2f s; output SQNR %.2f -> %.2f dB, gain %+.2f dB on "
                     "%s samples",
                     name, why, note, detail, seconds, before, r->sqnr, r->sqnr - before,
                     r->holdout.on_calibration ? "calibration" : "held-back");
        else
            hqi_logf(&w->log, HQ_LOG_INFO,
                     "%s: run (%s)%s: %s, %.2f s; gain not measured (it acts before calibration: "
                     "compare with policy=disabled)",
                     name, why, note, detail, seconds);
    }
    return HQ_OK;
}

static hq_status_t run_equalization(run_t *r, int64_t images, char *detail, size_t size,
                                    hq_error_t *err)
{
    (void)images;
    hq_status_t st = hqi_equalize(r->work.graph, r->work.fpo, &r->pairs, &r->work.log, err);
    snprintf(detail, size, "%d pair(s) equalized", r->pairs);
    return st;
}

/* Analytic: the corrected float biases go through the builder again. Iterative: the integer
 * biases are corrected layer by layer on the quantized network. */
static hq_status_t run_bias_correction(run_t *r, int64_t images, char *detail, size_t size,
                                       hq_error_t *err)
{
    (void)images;
    hqi_optimize_work_t *w = &r->work;
    hq_status_t st;
    if (r->bias_mode == HQI_BIAS_ITERATIVE && !quantized_emulation(r)) {
        hqi_logf(&w->log, HQ_LOG_WARNING,
                 "bias_correction: the iterative form measures on the quantized network, which "
                 "cannot be emulated (%s): the analytic form instead",
                 r->no_emulation.message);
        r->bias_mode = HQI_BIAS_ANALYTIC;
    }
    if (r->bias_mode == HQI_BIAS_ANALYTIC && r->finetuned) {
        hqi_logf(&w->log, HQ_LOG_WARNING,
                 "bias_correction: mode=analytic rebuilds the integer params from the float ones, "
                 "which would undo finetune: the iterative form instead");
        r->bias_mode = HQI_BIAS_ITERATIVE;
    }
    if (r->bias_mode == HQI_BIAS_ITERATIVE) {
        st = hqi_bias_correct_iterative(w->graph, r->cal, r->q, r->calib,
                                        r->names_ok ? r->input_names : NULL, r->calibset,
                                        r->batch, r->options->threads, 0, &r->corrected,
                                        err);
    } else {
        hq_npz_t *corrected = NULL, *q = NULL;
        st = hqi_bias_correct(w->graph, w->fpo, r->cal, r->dec, &corrected, &r->corrected, err);
        if (st == HQ_OK)
            st = hqi_quant_build_params(w->graph, corrected, r->dec, &q, err);
        hq_npz_destroy(corrected);
        if (st == HQ_OK) {
            hq_npz_destroy(r->q);
            r->q = q;
        }
    }
    snprintf(detail, size, "%s, %d layer(s) corrected",
             r->bias_mode == HQI_BIAS_ITERATIVE ? "iterative" : "analytic", r->corrected);
    return st;
}

/* The samples a trainer (AdaRound, finetune) runs on: the script's dataset_size, else the
 * level's `images`, else the calibration set, at most what the dataset has besides the held-back
 * samples; a script's dataset_size that cannot be met is said. */
static int64_t trainer_images(run_t *r, const char *name, int64_t script_size, int64_t images)
{
    int64_t wanted = script_size > 0 ? script_size : images > 0 ? images : r->calibset;
    int64_t got = hqi_holdout_images(&r->holdout, wanted);
    if (got < wanted && script_size > 0)
        hqi_logf(&r->work.log, HQ_LOG_WARNING,
                 "%s: dataset_size %lld, but the dataset has %lld sample(s) besides the "
                 "held-back ones: training on those",
                 name, (long long)wanted, (long long)got);
    return got;
}

/* Learned rounding of the integer weights on `images` samples (the script's dataset_size, else
 * the level's, else the calibration set), after bias correction when it ran. */
static hq_status_t run_adaround(run_t *r, int64_t images, char *detail, size_t size,
                                hq_error_t *err)
{
    hqi_optimize_work_t *w = &r->work;
    if (!quantized_emulation(r)) {
        hqi_logf(&w->log, HQ_LOG_WARNING,
                 "adaround: the layers' inputs come from the quantized network, which cannot be "
                 "emulated (%s): the weights keep round-to-nearest",
                 r->no_emulation.message);
        snprintf(detail, size, "nothing trained");
        return HQ_OK;
    }
    hqi_adaround_config_t cfg = w->cfg.adaround;
    cfg.dataset_size = trainer_images(r, "adaround", cfg.dataset_size, images);
    char why[160];
    const algorithm_t *bc = &algorithms[2];
    hqi_adaround_bias_t bias = !algorithm_decided(r, bc, why, sizeof why) ? HQI_ADAROUND_BIAS_NONE
                               : r->bias_mode == HQI_BIAS_ITERATIVE ? HQI_ADAROUND_BIAS_ITERATIVE
                                                                    : HQI_ADAROUND_BIAS_ANALYTIC;
    hqi_adaround_data_t data = {r->calib, r->names_ok ? r->input_names : NULL, r->cal,
                                r->calibset, r->batch};
    hqi_adaround_report_t rep = {0};
    hq_status_t st = hqi_adaround_run(w->graph, w->fpo, r->dec, r->q, &cfg, bias, &data,
                                      r->options->threads, &w->log, &rep, err);
    snprintf(detail, size,
             "%d layer(s) on %lld sample(s), reconstruction error %.4g -> %.4g, %lld channel(s) "
             "kept nearest",
             rep.layers, (long long)rep.samples, rep.error_nearest, rep.error_adaround,
             (long long)rep.kept_nearest);
    return st;
}

/* Block-wise reconstruction of the integer weights and biases on `images` samples (the script's
 * dataset_size, else the level's, else the calibration set), before bias correction. */
static hq_status_t run_finetune(run_t *r, int64_t images, char *detail, size_t size,
                                hq_error_t *err)
{
    hqi_optimize_work_t *w = &r->work;
    if (!quantized_emulation(r)) {
        hqi_logf(&w->log, HQ_LOG_WARNING,
                 "finetune: the blocks' inputs come from the quantized network, which cannot be "
                 "emulated (%s): nothing trained",
                 r->no_emulation.message);
        snprintf(detail, size, "nothing trained");
        return HQ_OK;
    }
    hqi_finetune_config_t cfg = w->cfg.finetune;
    cfg.dataset_size = trainer_images(r, "finetune", cfg.dataset_size, images);
    hqi_finetune_report_t rep = {0};
    hq_status_t st = hqi_finetune_run(w->graph, w->fpo, r->dec, r->q, &cfg, r->calib,
                                      r->names_ok ? r->input_names : NULL, r->options->threads,
                                      &w->log, &rep, err);
    r->finetuned = st == HQ_OK && rep.blocks > rep.kept;
    snprintf(detail, size,
             "%d block(s) of %d layer(s) on %lld sample(s), %lld step(s) each, block loss %.4g -> "
             "%.4g, %d block(s) kept",
             rep.blocks, rep.layers, (long long)rep.samples, (long long)rep.steps,
             rep.loss_before, rep.loss_after, rep.kept);
    return st;
}

/* Model modifications and configuration, batch-norm folding and the float algorithms. */
static hq_status_t run_float_optimizations(run_t *r, hq_error_t *err)
{
    hqi_optimize_work_t *w = &r->work;
    hq_status_t st = hqi_optimize_script_modify(w, r->script, err);
    if (st == HQ_OK)
        st = hqi_fold_batch_norms(w->graph, w->native, w->fpo, &r->folded, &w->log, err);
    if (st == HQ_OK && !hq_graph_is_finalized(w->graph))
        st = hq_graph_finalize(w->graph, r->path, err);
    if (st != HQ_OK)
        return st;
    r->level = w->cfg.optimization_level;
    r->bias_mode = w->cfg.bias_mode >= 0 ? w->cfg.bias_mode : HQI_BIAS_ITERATIVE;
    if (w->cfg.optimization_level_line > 0)
        hqi_logf(&w->log, HQ_LOG_INFO, "optimization level %d (%s:%d)", r->level,
                 w->script_name, w->cfg.optimization_level_line);
    else
        hqi_logf(&w->log, HQ_LOG_INFO, "optimization level %d (the default)", r->level);
    hqi_logf(&w->log, HQ_LOG_INFO, "batch norms: %d folded", r->folded);
    return run_algorithms(r, false, false, err);
}

/* The layer-addressed commands, which see the final graph. */
static hq_status_t run_layer_requests(run_t *r, hq_error_t *err)
{
    hqi_optimize_work_t *w = &r->work;
    int n = r->n = hq_graph_layer_count(w->graph);
    r->prec = calloc((size_t)(n ? n : 1), sizeof *r->prec);
    r->ranges = calloc((size_t)(n ? n : 1), sizeof *r->ranges);
    r->dec = calloc((size_t)(n ? n : 1), sizeof *r->dec);
    r->locked = calloc((size_t)(n ? n : 1), sizeof *r->locked);
    if (!r->prec || !r->ranges || !r->dec || !r->locked)
        return hqi_nomem(err, "hq_optimize");
    /* Hailo's default, and what measurements favour (docs/quantizer.md section 6): the
       least-MSE clip per output channel on layers with 4-bit weights; the script overrides it */
    for (int i = 0; i < n; i++) {
        r->ranges[i].weight_clip = HQI_CLIP_MMSE_IF4B;
        r->ranges[i].weight_clip_default = true;
    }
    hq_status_t st = hqi_optimize_script_requests(w, r->script, r->prec, r->ranges, err);
    if (st == HQ_OK)
        hqi_logf(&w->log, HQ_LOG_INFO, "model script: %d command(s) applied, %d not applied",
                 w->applied, w->not_applied);
    return st;
}

/* One pass of the fp-optimized network over the calibration set. */
static hq_status_t run_calibration(run_t *r, hq_dataset_t *calib, hq_error_t *err)
{
    hqi_optimize_work_t *w = &r->work;
    const hq_optimize_options_t *opt = r->options;
    int64_t calibset = opt->calibset_size > 0 ? opt->calibset_size : w->cfg.calibset_size;
    int64_t batch = opt->batch_size > 0 ? opt->batch_size : w->cfg.batch_size;
    int64_t available = hq_dataset_count(calib);
    if (calibset > available) {
        hqi_logf(&w->log, HQ_LOG_WARNING,
                 "calibset_size %lld but the dataset has %lld samples: using %lld",
                 (long long)calibset, (long long)available, (long long)available);
        calibset = available;
    }
    r->holdout = hqi_holdout_split(available, calibset, HQI_HOLDOUT_MAX);
    double t1 = seconds_now();
    r->calib = calib;
    r->calibset = calibset;
    r->batch = batch;
    hq_status_t st =
        hqi_calibrate(w->graph, w->fpo, calib, r->names_ok ? r->input_names : NULL, calibset, batch,
                      opt->threads, &w->log, opt->progress, opt->progress_user, &r->cal, err);
    if (st == HQ_OK)
        hqi_logf(&w->log, HQ_LOG_INFO, "calibration: %lld sample(s) in batches of %lld, %.2f s",
                 (long long)calibset, (long long)batch, seconds_now() - t1);
    return st;
}

/* Precision, compression, ranges and weight clipping of every layer. */
static hq_status_t run_decisions(run_t *r, hq_error_t *err)
{
    hqi_optimize_work_t *w = &r->work;
    hq_status_t st = hqi_precision_propagate(w->graph, r->prec, r->dec, &w->log, err);
    if (st != HQ_OK)
        return st;
    for (int i = 0; i < r->n; i++)
        r->locked[i] = r->prec[i].in_bits != 0;
    st = hqi_compression_choose(w->graph, r->locked, w->cfg.compression_level,
                                w->cfg.auto_4bit_ratio, r->memory, r->dec, &r->comp, &w->log, err);
    if (st != HQ_OK)
        return st;
    const hqi_compression_result_t *comp = &r->comp;
    hqi_logf(&w->log, HQ_LOG_INFO,
             "compression: %.1f%% of weights at 4 bit (%d layer(s), level %d), weights %lld "
             "bytes of %lld modelled for %s",
             comp->ratio_4bit * 100.0, comp->layers_4bit, comp->level,
             (long long)comp->weight_bytes, (long long)r->memory, r->hw_arch);
    st = hqi_ranges_compute(w->graph, r->cal, r->ranges, r->dec, &w->log, err);
    if (st == HQ_OK)
        st = hqi_weight_clip_compute(w->graph, w->fpo, r->ranges, r->dec, r->options->threads,
                                     err);
    int searched = 0;
    for (int i = 0; st == HQ_OK && i < r->n; i++)
        searched += r->dec[i].weight_clip_channels != NULL;
    if (searched)
        hqi_logf(&w->log, HQ_LOG_INFO,
                 "weights clipping: least-MSE clip per output channel on %d layer(s)", searched);
    return st;
}

/* Fused activations computed through a lookup table need the pre-activation range. */
static void run_lut_ranges(run_t *r)
{
    hqi_optimize_work_t *w = &r->work;
    for (int i = 0; i < r->n; i++) {
        const hq_layer_t *l = hq_graph_layer(w->graph, i);
        const hqi_stats_t *s = &r->cal->layers[i];
        hqi_layer_quant_t *d = &r->dec[i];
        if (!hqi_layer_traits(l->type)->has_weights || !s->preact_samples ||
            !lut_activation[l->params.activation])
            continue;
        double lo = 0, hi = 0;
        hqi_lut_pre_range(l->params.activation, l->params.activation_alpha,
                          l->params.activation_beta, s->preact_min, s->preact_max, d->out_min,
                          d->out_max, d->output_bits, &lo, &hi);
        d->pre_min = (float)(lo < 0 ? lo : 0.0);
        d->pre_max = (float)(hi > 0 ? hi : 0.0);
        if (lo > s->preact_min || hi < s->preact_max)
            hqi_logf(&w->log, HQ_LOG_DEBUG,
                     "%s: %s pre-activation range [%g, %g] narrowed to [%g, %g] (the output "
                     "saturates outside)",
                     l->bare_name, hq_activation_name(l->params.activation), s->preact_min,
                     s->preact_max, lo, hi);
        if (d->pre_max - d->pre_min < 1e-6f)
            d->pre_max = d->pre_min + 1e-6f;
    }
}

/* The output SQNR of integer params `q` on the probe's samples after an iterative bias correction
 * of a copy of them (what bias correction will make of them; `q` stays as it is). */
static hq_status_t probe_corrected(run_t *r, const hq_npz_t *q, double *db, hq_error_t *err)
{
    hq_npz_t *copy = NULL;
    hq_status_t st = hq_npz_create(&copy, err);
    for (size_t i = 0; st == HQ_OK && i < hq_npz_count(q); i++)
        st = hq_npz_put_copy(copy, hq_npz_key(q, i), hq_npz_get_index(q, i), err);
    int corrected = 0;
    if (st == HQ_OK)
        st = hqi_bias_correct_iterative(r->work.graph, r->cal, copy, r->calib,
                                        r->names_ok ? r->input_names : NULL, r->calibset, r->batch,
                                        r->options->threads, 0, &corrected, err);
    if (st == HQ_OK)
        st = hqi_sqnr_probe_measure(r->probe, copy, db, err);
    hq_npz_destroy(copy);
    return st;
}

/* hq's default weights clip (mmse_if4b where no script line names the layer) is a least-MSE
 * choice per channel, which is not always the one that keeps the network's output (PP-OCRv4 det
 * loses 1.2 dB to it at 4 bit, mobilenet_v2 gains 0.65 dB): the integer params are built again
 * without it, both are measured on the held-back samples and the better is kept (ties keep the
 * clip). When an iterative bias correction will run, both are compared after one (on copies): it
 * changes the picture, and round to nearest alone measures too close to call on a network whose
 * uncorrected output is mostly noise (PP-OCRv4 det at a8_w4: 0.00 against 0.04 dB before, 1.58
 * against 2.84 dB after). */
static hq_status_t probe_default_clip(run_t *r, hq_error_t *err)
{
    hqi_optimize_work_t *w = &r->work;
    int layers = 0;
    for (int i = 0; i < r->n; i++)
        layers += r->ranges[i].weight_clip_default && r->dec[i].weight_clip_channels != NULL;
    if (layers == 0)
        return HQ_OK;
    if (!quantized_emulation(r)) {
        hqi_logf(&w->log, HQ_LOG_INFO,
                 "weights clipping: the default clip kept on %d layer(s) unmeasured: the "
                 "quantized network cannot be emulated (%s)",
                 layers, r->no_emulation.message);
        return HQ_OK;
    }
    hq_status_t st = probe_open(r, err);
    if (st != HQ_OK || !r->probe)
        return st;
    hqi_layer_quant_t *plain = malloc(sizeof *plain * (size_t)r->n);
    if (!plain)
        return hqi_nomem(err, "hq_optimize");
    memcpy(plain, r->dec, sizeof *plain * (size_t)r->n);
    for (int i = 0; i < r->n; i++)
        if (r->ranges[i].weight_clip_default)
            plain[i].weight_clip_channels = NULL;
    hq_npz_t *q = NULL;
    double db = 0, corrected[2] = {0, 0};
    double t0 = seconds_now();
    st = hqi_quant_build_params(w->graph, w->fpo, plain, &q, err);
    free(plain);
    if (st == HQ_OK)
        st = hqi_sqnr_probe_measure(r->probe, q, &db, err);
    char why[160];
    bool after_bc = algorithm_decided(r, &algorithms[2], why, sizeof why) &&
                    r->bias_mode == HQI_BIAS_ITERATIVE;
    if (st == HQ_OK && after_bc)
        st = probe_corrected(r, r->q, &corrected[0], err);
    if (st == HQ_OK && after_bc)
        st = probe_corrected(r, q, &corrected[1], err);
    if (st != HQ_OK) {
        hq_npz_destroy(q);
        return st;
    }
    bool drop = after_bc ? corrected[1] > corrected[0] : db > r->sqnr;
    char more[160] = "";
    if (after_bc)
        snprintf(more, sizeof more, "; after an iterative bias correction %.2f and %.2f dB",
                 corrected[0], corrected[1]);
    hqi_logf(&w->log, HQ_LOG_INFO,
             "weights clipping: the default least-MSE clip on %d layer(s): output SQNR %.2f dB "
             "with it, %.2f dB without on %s samples (round to nearest)%s: %s, %.2f s",
             layers, r->sqnr, db, r->holdout.on_calibration ? "calibration" : "held-back", more,
             drop ? "dropped" : "kept", seconds_now() - t0);
    if (!drop) {
        hq_npz_destroy(q);
        return HQ_OK;
    }
    hq_npz_destroy(r->q);
    r->q = q;
    r->sqnr = db;
    for (int i = 0; i < r->n; i++)
        if (r->ranges[i].weight_clip_default) {
            free(r->dec[i].weight_clip_channels);
            r->dec[i].weight_clip_channels = NULL;
        }
    return HQ_OK;
}

/* The integer params, then the algorithms that act on them; without build_integer an empty set
 * that the statistics go into. */
static hq_status_t run_integer_params(run_t *r, bool build_integer, hq_error_t *err)
{
    hqi_optimize_work_t *w = &r->work;
    hq_status_t st = build_integer
                         ? hqi_quant_build_params(w->graph, w->fpo, r->dec, &r->q, err)
                         : hq_npz_create(&r->q, err);
    if (st == HQ_OK && build_integer)
        hqi_logf(&w->log, HQ_LOG_INFO, "integer params: %zu arrays", hq_npz_count(r->q));
    if (st == HQ_OK && build_integer)
        st = probe_default_clip(r, err);
    if (st == HQ_OK)
        st = run_algorithms(r, true, build_integer, err);
    hqi_sqnr_probe_destroy(r->probe);
    r->probe = NULL;
    return st;
}

/* Statistics, compression keys and precision modes: what the archive records of the decisions. */
static hq_status_t run_record_decisions(run_t *r, hq_error_t *err)
{
    hqi_optimize_work_t *w = &r->work;
    hq_status_t st = hqi_calibration_store(w->graph, r->cal, r->q, err);
    if (st != HQ_OK)
        return st;
    char prefix[600];
    snprintf(prefix, sizeof prefix, "%s", hq_graph_net_name(w->graph));
    float ratio = (float)r->comp.ratio_4bit;
    int32_t lvl = r->comp.level;
    st = hqi_put_f32(r->q, prefix, "compression/ratio_4bit:0", &ratio, 1, err);
    if (st == HQ_OK)
        st = hqi_put_i32(r->q, prefix, "compression/level:0", &lvl, 1, err);
    if (st != HQ_OK)
        return st;
    for (int i = 0; i < r->n; i++) {
        hq_layer_t *l = hq_graph_layer_mut(w->graph, i);
        hqi_precision_name(r->dec[i].input_bits, r->dec[i].weight_bits, r->dec[i].output_bits,
                           l->precision_mode);
    }
    if (!hq_graph_is_finalized(w->graph))
        st = hq_graph_finalize(w->graph, r->path, err);
    return st;
}

/* Hands graph, params and a copy of the script to the archive and sets its state. */
static hq_status_t run_hand_over(run_t *r, hq_archive_t *archive, bool build_integer,
                                 hq_error_t *err)
{
    hqi_optimize_work_t *w = &r->work;
    /* the script used, as text, so the archive owns its copy */
    char *text = NULL;
    hq_status_t st = hq_script_print(r->script, &text, err);
    if (st == HQ_OK)
        st = hq_script_parse(text, strlen(text), w->script_name, &r->script_copy, err);
    free(text);
    if (st == HQ_OK && r->options->hw_arch)
        st = hq_archive_set_hw_arch(archive, r->options->hw_arch, err);
    if (st == HQ_OK) {
        hq_graph_t *g = w->graph;
        w->graph = NULL;
        st = hq_archive_set_graph(archive, g, err);
    }
    if (st == HQ_OK) {
        hq_npz_t *p = w->native;
        w->native = NULL;
        st = hq_archive_set_params(archive, HQ_PARAMS_NATIVE, p, err);
    }
    if (st == HQ_OK) {
        hq_npz_t *p = w->fpo;
        w->fpo = NULL;
        st = hq_archive_set_params(archive, HQ_PARAMS_FP_OPTIMIZED, p, err);
    }
    if (st == HQ_OK) {
        hq_npz_t *p = r->q;
        r->q = NULL;
        st = hq_archive_set_params(archive, HQ_PARAMS_QUANTIZED, p, err);
    }
    if (st == HQ_OK) {
        hq_script_t *s = r->script_copy;
        r->script_copy = NULL;
        st = hq_archive_set_script(archive, s, err);
    }
    if (st == HQ_OK)
        st = hq_archive_set_state(archive,
                                  build_integer ? HQ_STATE_QUANTIZED : HQ_STATE_FP_OPTIMIZED, err);
    return st;
}

/* Moves the decisions and statistics into `result`. */
static void run_take_result(run_t *r, hqi_optimize_result_t *result)
{
    result->decisions = r->dec;
    result->layer_count = r->n;
    result->calibration = r->cal;
    result->compression = r->comp;
    result->equalized_pairs = r->pairs;
    result->folded_batch_norms = r->folded;
    result->bias_corrected = r->corrected;
    r->dec = NULL;
    r->cal = NULL;
}

static void run_close(run_t *r)
{
    for (int j = 0; r->input_names && j < r->ds_inputs; j++)
        free(r->input_names[j]);
    free(r->input_names);
    hqi_optimize_work_clear(&r->work);
    hq_graph_destroy(r->work.graph);
    hq_npz_destroy(r->work.native);
    hq_npz_destroy(r->work.fpo);
    hqi_sqnr_probe_destroy(r->probe);
    hq_npz_destroy(r->q);
    hq_script_destroy(r->script_copy);
    hqi_calibration_destroy(r->cal);
    free(r->prec);
    free(r->ranges);
    hqi_weight_clip_free(r->dec, r->n);
    free(r->dec);
    free(r->locked);
}

hq_status_t hqi_optimize_run(hq_archive_t *archive, const hq_script_t *script_in,
                             hq_dataset_t *calib, const hq_optimize_options_t *options,
                             bool build_integer, hqi_optimize_result_t *result, hq_error_t *err)
{
    static const hq_optimize_options_t none = {0};
    run_t r = {0};
    r.emulation = -1;
    r.options = options ? options : &none;
    r.work.log.fn = r.options->log;
    r.work.log.user = r.options->log_user;
    hqi_optimize_config_defaults(&r.work.cfg);
    if (result)
        memset(result, 0, sizeof *result);
    hq_status_t st = run_open(&r, archive, script_in, calib, err);
    double t0 = seconds_now();
    if (st == HQ_OK)
        st = check_integer_forms(&r, build_integer, err);
    if (st == HQ_OK)
        st = run_float_optimizations(&r, err);
    if (st == HQ_OK)
        st = run_layer_requests(&r, err);
    if (st == HQ_OK)
        st = run_calibration(&r, calib, err);
    if (st == HQ_OK)
        st = run_decisions(&r, err);
    if (st == HQ_OK)
        run_lut_ranges(&r);
    if (st == HQ_OK)
        st = run_integer_params(&r, build_integer, err);
    if (st == HQ_OK)
        st = run_record_decisions(&r, err);
    if (st == HQ_OK)
        st = run_hand_over(&r, archive, build_integer, err);
    if (st == HQ_OK)
        hqi_logf(&r.work.log, HQ_LOG_INFO, "optimize: done in %.2f s", seconds_now() - t0);
    if (st == HQ_OK && result)
        run_take_result(&r, result);
    run_close(&r);
    return st;
}

HQ_API hq_status_t hq_optimize(hq_archive_t *archive, const hq_script_t *script,
                               hq_dataset_t *calib, const hq_optimize_options_t *options,
                               hq_error_t *err)
{
    hqi_optimize_result_t result;
    hq_status_t st = hqi_optimize_run(archive, script, calib, options, true, &result, err);
    int64_t calibset = 0;
    if (st == HQ_OK)
        calibset = result.calibration ? result.calibration->samples : 0;
    hqi_optimize_result_free(&result);
    if (st != HQ_OK)
        return st;
    hqi_logger_t log = {options ? options->log : NULL, options ? options->log_user : NULL};
    if (options && options->no_noise_analysis) {
        hqi_logf(&log, HQ_LOG_INFO, "noise analysis: skipped (no per-layer SNR stored)");
        return HQ_OK;
    }
    hq_error_t noise_err = {0};
    hq_status_t nst =
        hq_analyze_noise(archive, calib, calibset, HQ_NOISE_SIMPLE, options, &noise_err);
    if (nst != HQ_OK)
        hqi_logf(&log, HQ_LOG_WARNING, "noise analysis failed: %s", noise_err.message);
    else
        hqi_logf(&log, HQ_LOG_INFO, "noise analysis (simple): per-layer SNR stored");
    return HQ_OK;
}
