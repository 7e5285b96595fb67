/* vocabulary.c — the commands of Hailo's model scripts, one row per command name: who reads it
 * (the quantizer or the compiler) and, for the quantizer commands whose arguments are recorded,
 * the first words and keys they take; and the check of a command against the table, which turns
 * a near miss of a known name into an error with a did-you-mean and lets a name far from every
 * known one through (a newer compiler may know it). What hq itself applies is decided elsewhere
 * (core/quant/optimize_script.c); this table only knows what exists. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "script/script_query.h"
#include "util/util.h"

/* ---- keys and first words -------------------------------------------------------------------- */

static const char *const quantization_param_keys[] = {"precision_mode",
                                                      "bias_mode",
                                                      "quantization_groups",
                                                      "force_range_in",
                                                      "force_range_out",
                                                      "force_range_index",
                                                      "max_elementwise_feed_repeat",
                                                      "max_bias_feed_repeat",
                                                      "null_channels_cutoff_factor",
                                                      "weight_group_size",
                                                      "activation_fit",
                                                      NULL};

static const char *const flavor_keys[] = {"optimization_level", "compression_level", "batch_size",
                                          NULL};

static const char *const calibration_keys[] = {"batch_size", "calibset_size", NULL};
static const char *const checker_keys[] = {
    "policy", "batch_size", "dataset_size", "analyze_mode", "batch_norm_checker", "layers", NULL};
static const char *const compression_keys[] = {"auto_4bit_weights_ratio", NULL};
static const char *const globals_keys[] = {"multiproc_policy", "gpu_policy",
                                           "output_encoding_vector", NULL};
static const char *const negative_exponent_keys[] = {"layers", "rank", "split_threshold", NULL};

static const hqi_script_word_t config_words[] = {
    {"calibration", calibration_keys},
    {"checker_cfg", checker_keys},
    {"compression_params", compression_keys},
    {"globals", globals_keys},
    {"negative_exponent", negative_exponent_keys},
    {NULL, NULL},
};

static const char *const policy_keys[] = {"policy", NULL};
static const char *const policy_layers_keys[] = {"policy", "layers", NULL};
static const char *const activation_clipping_keys[] = {
    "layers", "mode", "clipping_values", "recollect_stats", "policy", NULL};
static const char *const weights_clipping_keys[] = {"layers", "mode", "clipping_values", "policy",
                                                    NULL};
static const char *const se_optimization_keys[] = {"policy",      "method", "mode", "count",
                                                   "tile_height", "layers", NULL};
static const char *const ew_add_fusing_keys[] = {"policy", "infusible_ew_add_type", NULL};
static const char *const layer_norm_keys[] = {
    "policy", "mode", "equalization", "bit_decomposition_mode", "eq_consumer", NULL};
static const char *const matmul_correction_keys[] = {"layers", "correction_type", "policy", NULL};
static const char *const matmul_equalization_keys[] = {"layers", "policy", "matmul_bias", NULL};
static const char *const avgpool_reduction_keys[] = {"layers", "division_factors", "policy", NULL};

static const hqi_script_word_t pre_quantization_words[] = {
    {"activation_clipping", activation_clipping_keys},
    {"weights_clipping", weights_clipping_keys},
    {"equalization", policy_layers_keys},
    {"dead_channels_removal", policy_keys},
    {"dead_layers_removal", policy_keys},
    {"zero_static_channels", policy_layers_keys},
    {"se_optimization", se_optimization_keys},
    {"ew_add_fusing", ew_add_fusing_keys},
    {"layer_norm_decomposition", layer_norm_keys},
    {"matmul_correction", matmul_correction_keys},
    {"matmul_equalization", matmul_equalization_keys},
    {"global_avgpool_reduction", avgpool_reduction_keys},
    {"decompose_conv_factor", policy_layers_keys},
    {"smart_softmax_stats", policy_keys},
    {"switch_concat_with_add", policy_layers_keys},
    {"split_ew_mult_by_bit_significance", policy_keys},
    {"split_fused_activation", policy_layers_keys},
    {NULL, NULL},
};

static const char *const finetune_keys[] = {"policy",           "dataset_size",
                                            "batch_size",       "epochs",
                                            "learning_rate",    "loss_layer_names",
                                            "loss_types",       "loss_factors",
                                            "def_loss_type",    "native_layers",
                                            "layers_to_freeze", "lr_schedule_type",
                                            "decay_rate",       "decay_epochs",
                                            "warmup_epochs",    "warmup_lr",
                                            "optimizer",        "force_pruning",
                                            "shuffle",          "val_images",
                                            "val_batch_size",   "stop_gradient_at_loss",
                                            "bias_only",        "meta_arch",
                                            "train_scales",     NULL};
static const char *const adaround_keys[] = {"policy",
                                            "dataset_size",
                                            "batch_size",
                                            "epochs",
                                            "learning_rate",
                                            "warmup",
                                            "weight",
                                            "b_range",
                                            "decay_start",
                                            "train_bias",
                                            "cache_compression",
                                            "shuffle",
                                            "mode",
                                            NULL};

static const char *const bias_correction_keys[] = {"policy", "layers", "mode", NULL};

static const hqi_script_word_t post_quantization_words[] = {
    {"bias_correction", bias_correction_keys},
    {"finetune", finetune_keys},
    {"adaround", adaround_keys},
    {NULL, NULL},
};

/* ---- the table ------------------------------------------------------------------------------- */

static const hqi_script_spec_t specs[] = {
    /* model modifications, applied when the model is optimized */
    {.name = "normalization", .side = HQI_SCRIPT_QUANTIZER},
    {.name = "input_conversion", .side = HQI_SCRIPT_QUANTIZER},
    {.name = "change_output_activation", .side = HQI_SCRIPT_QUANTIZER},
    {.name = "transpose", .side = HQI_SCRIPT_QUANTIZER},
    {.name = "resize", .side = HQI_SCRIPT_QUANTIZER},
    {.name = "nms_postprocess", .side = HQI_SCRIPT_QUANTIZER},
    {.name = "logits_layer", .side = HQI_SCRIPT_QUANTIZER},
    {.name = "set_seed", .side = HQI_SCRIPT_QUANTIZER},
    /* quantization */
    {"quantization_param", HQI_SCRIPT_QUANTIZER, quantization_param_keys, NULL, NULL},
    {"model_optimization_flavor", HQI_SCRIPT_QUANTIZER, flavor_keys, NULL, NULL},
    {"model_optimization_config", HQI_SCRIPT_QUANTIZER, NULL, config_words, "section"},
    {"pre_quantization_optimization", HQI_SCRIPT_QUANTIZER, NULL, pre_quantization_words,
     "algorithm"},
    {"post_quantization_optimization", HQI_SCRIPT_QUANTIZER, NULL, post_quantization_words,
     "algorithm"},
    /* the compiler's: resources, allocation, contexts, buffers and the layers it inserts */
    {.name = "allocator_param", .side = HQI_SCRIPT_COMPILER},
    {.name = "bucket", .side = HQI_SCRIPT_COMPILER},
    {.name = "buffers", .side = HQI_SCRIPT_COMPILER},
    {.name = "collapse_depthwise", .side = HQI_SCRIPT_COMPILER},
    {.name = "compilation_param", .side = HQI_SCRIPT_COMPILER},
    {.name = "concat", .side = HQI_SCRIPT_COMPILER},
    {.name = "context", .side = HQI_SCRIPT_COMPILER},
    {.name = "context_switch_param", .side = HQI_SCRIPT_COMPILER},
    {.name = "defuse", .side = HQI_SCRIPT_COMPILER},
    {.name = "defuse_block", .side = HQI_SCRIPT_COMPILER},
    {.name = "format_conversion", .side = HQI_SCRIPT_COMPILER},
    {.name = "hef_param", .side = HQI_SCRIPT_COMPILER},
    {.name = "join", .side = HQI_SCRIPT_COMPILER},
    {.name = "mux_demux", .side = HQI_SCRIPT_COMPILER},
    {.name = "network_group", .side = HQI_SCRIPT_COMPILER},
    {.name = "output_layer", .side = HQI_SCRIPT_COMPILER},
    {.name = "output_mux", .side = HQI_SCRIPT_COMPILER},
    {.name = "performance_param", .side = HQI_SCRIPT_COMPILER},
    {.name = "place", .side = HQI_SCRIPT_COMPILER},
    {.name = "platform_param", .side = HQI_SCRIPT_COMPILER},
    {.name = "remove_node", .side = HQI_SCRIPT_COMPILER},
    {.name = "resources_param", .side = HQI_SCRIPT_COMPILER},
    {.name = "shape_splitter", .side = HQI_SCRIPT_COMPILER},
    {.name = "shortcut", .side = HQI_SCRIPT_COMPILER},
    {.name = "spatial_reshape_flow_params", .side = HQI_SCRIPT_COMPILER},
    {.name = "transpose_concat", .side = HQI_SCRIPT_COMPILER},
};

#define SPEC_COUNT ((int)(sizeof specs / sizeof specs[0]))

const hqi_script_spec_t *hqi_script_specs(int *count)
{
    *count = SPEC_COUNT;
    return specs;
}

/* The method of `object.method`, or the name itself. */
static const char *method_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot ? dot + 1 : name;
}

const hqi_script_spec_t *hqi_script_spec(const char *name)
{
    if (!name)
        return NULL;
    const char *method = method_of(name);
    for (int i = 0; i < SPEC_COUNT; i++)
        if (strcmp(specs[i].name, method) == 0)
            return &specs[i];
    return NULL;
}

/* ---- near misses ----------------------------------------------------------------------------- */

int hqi_script_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    /* three rows of the distance matrix: two back (for swaps), one back, this one */
    int *rows = malloc(sizeof(int) * 3 * (lb + 1));
    if (!rows)
        return INT_MAX;
    int *before = rows, *previous = rows + lb + 1, *current = rows + 2 * (lb + 1);
    for (size_t j = 0; j <= lb; j++)
        previous[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        current[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] != b[j - 1];
            int best = previous[j] + 1;
            if (current[j - 1] + 1 < best)
                best = current[j - 1] + 1;
            if (previous[j - 1] + cost < best)
                best = previous[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                before[j - 2] + 1 < best)
                best = before[j - 2] + 1;
            current[j] = best;
        }
        int *spare = before;
        before = previous;
        previous = current;
        current = spare;
    }
    int distance = previous[lb];
    free(rows);
    return distance;
}

/* The nearest candidate seen so far that `name` is a near miss of. */
typedef struct near_miss {
    const char *name;
    const char *best;
    int distance;
    bool exact; /* `name` is a candidate itself */
} near_miss_t;

static void consider(near_miss_t *n, const char *candidate)
{
    if (strcmp(n->name, candidate) == 0) {
        n->exact = true;
        return;
    }
    size_t la = strlen(n->name), lb = strlen(candidate);
    if ((la > lb ? la - lb : lb - la) > 2) /* cheap: the distance is at least this */
        return;
    int d = hqi_script_edit_distance(n->name, candidate);
    if (d <= 2 && (size_t)d * 2 < la && d < n->distance) {
        n->best = candidate;
        n->distance = d;
    }
}

static const char *near_result(const near_miss_t *n)
{
    return n->exact ? NULL : n->best;
}

const char *hqi_script_near_miss(const char *name, const char *const *known)
{
    near_miss_t n = {name, NULL, INT_MAX, false};
    for (int i = 0; known && known[i]; i++)
        consider(&n, known[i]);
    return near_result(&n);
}

/* ---- checking a command ---------------------------------------------------------------------- */

/* The first positional argument when it is a word (identifier or string), else NULL. */
static const char *first_word(const hq_command_t *c)
{
    const hq_value_t *v = c->arg_count > 0 && !c->args[0].key ? &c->args[0].value : NULL;
    return v && (v->kind == HQ_VALUE_IDENT || v->kind == HQ_VALUE_STRING) ? v->text : NULL;
}

/* The row of the command's first word, or NULL. */
static const hqi_script_word_t *word_of(const hqi_script_spec_t *spec, const hq_command_t *c)
{
    const char *word = first_word(c);
    for (int i = 0; word && spec->words && spec->words[i].word; i++)
        if (strcmp(spec->words[i].word, word) == 0)
            return &spec->words[i];
    return NULL;
}

/* Whether the command's keys are recorded: a row with keys, or a known first word. */
static bool keys_recorded(const hqi_script_spec_t *spec, const hq_command_t *c)
{
    return spec && (spec->keys || (spec->words && word_of(spec, c)));
}

static bool in_list(const char *const *list, const char *name)
{
    for (int i = 0; list && list[i]; i++)
        if (strcmp(list[i], name) == 0)
            return true;
    return false;
}

bool hqi_script_key_unknown(const hqi_script_spec_t *spec, const hq_command_t *command,
                            const char *key)
{
    if (!keys_recorded(spec, command))
        return false;
    const hqi_script_word_t *word = spec->words ? word_of(spec, command) : NULL;
    return !in_list(spec->keys, key) && !(word && in_list(word->keys, key));
}

bool hqi_script_word_unknown(const hqi_script_spec_t *spec, const hq_command_t *command)
{
    return spec && spec->words && first_word(command) && !word_of(spec, command);
}

static hq_status_t check_name(const hq_command_t *c, const char *script_name,
                              const hqi_script_spec_t **spec, hqi_script_unknown_fn unknown,
                              void *user, hq_error_t *err)
{
    *spec = hqi_script_spec(c->name);
    if (*spec)
        return HQ_OK;
    const char *method = method_of(c->name);
    near_miss_t n = {method, NULL, INT_MAX, false};
    for (int i = 0; i < SPEC_COUNT; i++)
        consider(&n, specs[i].name);
    const char *suggestion = near_result(&n);
    if (suggestion)
        return hqi_error(err, HQ_ERR_INVALID,
                         "%s:%d: unknown command '%s' (did you mean '%.*s%s'?)", script_name,
                         c->line, c->name, (int)(method - c->name), c->name, suggestion);
    if (unknown) {
        char what[300];
        snprintf(what, sizeof what, "unknown command '%s'", c->name);
        unknown(user, c, what);
    }
    return HQ_OK;
}

static hq_status_t check_word(const hq_command_t *c, const hqi_script_spec_t *spec,
                              const char *script_name, hqi_script_unknown_fn unknown, void *user,
                              hq_error_t *err)
{
    if (!hqi_script_word_unknown(spec, c))
        return HQ_OK;
    const char *word = first_word(c);
    near_miss_t n = {word, NULL, INT_MAX, false};
    for (int i = 0; spec->words[i].word; i++)
        consider(&n, spec->words[i].word);
    const char *suggestion = near_result(&n);
    if (suggestion)
        return hqi_error(err, HQ_ERR_INVALID, "%s:%d: %s: unknown %s '%s' (did you mean '%s'?)",
                         script_name, c->line, c->name, spec->word_noun, word, suggestion);
    if (unknown) {
        char what[300];
        snprintf(what, sizeof what, "%s: unknown %s '%s'", c->name, spec->word_noun, word);
        unknown(user, c, what);
    }
    return HQ_OK;
}

static hq_status_t check_keys(const hq_command_t *c, const hqi_script_spec_t *spec,
                              const char *script_name, hqi_script_unknown_fn unknown, void *user,
                              hq_error_t *err)
{
    if (!keys_recorded(spec, c))
        return HQ_OK;
    const hqi_script_word_t *word = spec->words ? word_of(spec, c) : NULL;
    for (int i = 0; i < c->arg_count; i++) {
        const char *key = c->args[i].key;
        if (!key || !hqi_script_key_unknown(spec, c, key))
            continue;
        near_miss_t n = {key, NULL, INT_MAX, false};
        for (int k = 0; spec->keys && spec->keys[k]; k++)
            consider(&n, spec->keys[k]);
        for (int k = 0; word && word->keys[k]; k++)
            consider(&n, word->keys[k]);
        const char *suggestion = near_result(&n);
        if (suggestion)
            return hqi_error(err, HQ_ERR_INVALID,
                             "%s:%d: %s: unknown key '%s' (did you mean '%s'?)", script_name,
                             c->line, c->name, key, suggestion);
        if (unknown) {
            char what[300];
            snprintf(what, sizeof what, "%s: unknown key '%s'", c->name, key);
            unknown(user, c, what);
        }
    }
    return HQ_OK;
}

hq_status_t hqi_script_check_command(const hq_command_t *command, const char *script_name,
                                     const hqi_script_spec_t **spec, hqi_script_unknown_fn unknown,
                                     void *user, hq_error_t *err)
{
    const hqi_script_spec_t *row = NULL;
    if (spec)
        *spec = NULL;
    if (!command || !command->name)
        return HQ_OK;
    const char *name = script_name ? script_name : "model script";
    hq_status_t st = check_name(command, name, &row, unknown, user, err);
    if (st == HQ_OK && row)
        st = check_word(command, row, name, unknown, user, err);
    if (st == HQ_OK && row)
        st = check_keys(command, row, name, unknown, user, err);
    if (spec)
        *spec = row;
    return st;
}
