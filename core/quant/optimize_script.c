/* optimize_script.c — the model script as `hq optimize` reads it. Two passes over the commands:
 * the first applies the model modifications (normalization layers, an input channel swap folded
 * into the first convolutions, a changed output activation) and reads the configuration commands,
 * in script order; the second, on the final graph, turns quantization_param and the clipping
 * commands into per-layer precision and range requests. Before either, every command is checked
 * against the model-script vocabulary (core/script/vocabulary.c): a near miss of a known name is
 * an error, a name far from every known one a warning. Quantizer commands hq does not read are
 * reported "not applied" once each; compiler-side commands are counted in one line. All are kept
 * in the script. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/layer_types.h"
#include "quant/optimize_script.h"
#include "script/script_query.h"
#include "util/util.h"

void hqi_optimize_config_defaults(hqi_optimize_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->batch_size = 8;
    cfg->calibset_size = 64;
    cfg->optimization_level = 2;
    cfg->compression_level = -1;
    cfg->auto_4bit_ratio = -1.0;
    for (int a = 0; a < HQI_ALGORITHM_COUNT; a++)
        cfg->policy[a] = -1;
    cfg->bias_mode = -1;
    hqi_adaround_defaults(&cfg->adaround);
    hqi_finetune_defaults(&cfg->finetune);
}

const char *const hqi_algorithm_names[HQI_ALGORITHM_COUNT] = {
    [HQI_ALGORITHM_EQUALIZATION] = "equalization",
    [HQI_ALGORITHM_FINETUNE] = "finetune",
    [HQI_ALGORITHM_ADAROUND] = "adaround",
    [HQI_ALGORITHM_BIAS_CORRECTION] = "bias_correction",
};

void hqi_optimize_work_clear(hqi_optimize_work_t *work)
{
    for (int i = 0; i < work->noted_count; i++)
        free(work->noted[i]);
    free(work->noted);
    work->noted = NULL;
    work->noted_count = 0;
}

/* ---- reading commands --------------------------------------------------------------------- */

static hq_status_t script_error(hqi_optimize_work_t *o, const hq_command_t *c, hq_error_t *err,
                                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static hq_status_t script_error(hqi_optimize_work_t *o, const hq_command_t *c, hq_error_t *err,
                                const char *fmt, ...)
{
    char detail[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return hqi_error(err, HQ_ERR_INVALID, "%s:%d: %s: %s", o->script_name, c->line, c->name,
                     detail);
}

/* Whether `text` is noted for the first time (then it is noted). */
static bool first_note(hqi_optimize_work_t *o, const char *text)
{
    for (int i = 0; i < o->noted_count; i++)
        if (strcmp(o->noted[i], text) == 0)
            return false;
    char **grown = realloc(o->noted, sizeof(char *) * (size_t)(o->noted_count + 1));
    if (grown) {
        o->noted = grown;
        o->noted[o->noted_count] = hqi_strdup(text);
        if (o->noted[o->noted_count])
            o->noted_count++;
    }
    return true;
}

/* Reports a command (or command + key) as not applied, once per distinct text. */
static void not_applied(hqi_optimize_work_t *o, const hq_command_t *c, const char *what)
{
    char text[256];
    snprintf(text, sizeof text, "%s%s%s", c->name, what ? " " : "", what ? what : "");
    if (!first_note(o, text))
        return;
    o->not_applied++;
    hqi_logf(&o->log, HQ_LOG_WARNING, "%s:%d: %s: not applied (kept in the script)", o->script_name,
             c->line, text);
}

/* A name the vocabulary does not know and that is no near miss of a known one: reported once
 * per distinct text, kept in the script. */
static void unknown_name(void *user, const hq_command_t *c, const char *what)
{
    hqi_optimize_work_t *o = user;
    if (!first_note(o, what))
        return;
    o->not_applied++;
    hqi_logf(&o->log, HQ_LOG_WARNING, "%s:%d: %s (kept in the script)", o->script_name, c->line,
             what);
}

/* Checks every command against the vocabulary before any is applied, and counts the
 * compiler-side ones in one line. */
static hq_status_t check_vocabulary(hqi_optimize_work_t *o, const hq_script_t *script,
                                    hq_error_t *err)
{
    int compiler = 0;
    for (int i = 0; i < hq_script_command_count(script); i++) {
        const hqi_script_spec_t *spec = NULL;
        hq_status_t st = hqi_script_check_command(hq_script_command(script, i), o->script_name,
                                                  &spec, unknown_name, o, err);
        if (st != HQ_OK)
            return st;
        compiler += spec && spec->side == HQI_SCRIPT_COMPILER;
    }
    if (compiler)
        hqi_logf(&o->log, HQ_LOG_INFO, "%s: %d compiler-side command%s kept for the compiler",
                 o->script_name, compiler, compiler == 1 ? "" : "s");
    return HQ_OK;
}

static bool value_number(const hq_value_t *v, double *out)
{
    if (!v || v->kind != HQ_VALUE_NUMBER)
        return false;
    *out = v->number;
    return true;
}

static bool value_word(const hq_value_t *v, const char *word)
{
    return v && (v->kind == HQ_VALUE_IDENT || v->kind == HQ_VALUE_STRING) && v->text &&
           strcmp(v->text, word) == 0;
}

static bool value_pair(const hq_value_t *v, double *a, double *b)
{
    return v && v->kind == HQ_VALUE_LIST && v->item_count == 2 && value_number(&v->items[0], a) &&
           value_number(&v->items[1], b);
}

/* Marks the layers a value names: a name (scoped, bare or original), a glob, or a list of those.
 * A name that matches nothing is an error; a glob that matches nothing a warning. */
static hq_status_t select_layers(hqi_optimize_work_t *o, const hq_command_t *c, const hq_value_t *v,
                                 bool *mask, hq_error_t *err)
{
    int n = hq_graph_layer_count(o->graph);
    if (!v)
        return script_error(o, c, err, "no layers given");
    if (v->kind == HQ_VALUE_LIST) {
        for (int i = 0; i < v->item_count; i++) {
            hq_status_t st = select_layers(o, c, &v->items[i], mask, err);
            if (st != HQ_OK)
                return st;
        }
        return HQ_OK;
    }
    if (v->kind == HQ_VALUE_GLOB) {
        int hits = 0;
        for (int i = 0; i < n; i++)
            if (hq_glob_match(v->text, hq_graph_layer(o->graph, i)->name)) {
                mask[i] = true;
                hits++;
            }
        if (!hits)
            hqi_logf(&o->log, HQ_LOG_WARNING, "%s:%d: %s: {%s} matches no layer", o->script_name,
                     c->line, c->name, v->text);
        return HQ_OK;
    }
    if (v->kind != HQ_VALUE_IDENT && v->kind != HQ_VALUE_STRING)
        return script_error(o, c, err, "expected a layer name, a glob or a list of them");
    int index = hq_graph_find(o->graph, v->text);
    if (index < 0)
        return script_error(o, c, err, "no layer named '%s'", v->text);
    mask[index] = true;
    return HQ_OK;
}

/* ---- model modifications ------------------------------------------------------------------ */

static hq_status_t read_float_list(hqi_optimize_work_t *o, const hq_command_t *c,
                                   const hq_value_t *v, const char *what, float **out, int *count,
                                   hq_error_t *err)
{
    if (!v || v->kind != HQ_VALUE_LIST || v->item_count < 1)
        return script_error(o, c, err, "%s must be a list of numbers", what);
    float *f = malloc(sizeof(float) * (size_t)v->item_count);
    if (!f)
        return hqi_nomem(err, "normalization");
    for (int i = 0; i < v->item_count; i++) {
        double d;
        if (!value_number(&v->items[i], &d)) {
            free(f);
            return script_error(o, c, err, "%s must be a list of numbers", what);
        }
        f[i] = (float)d;
    }
    *out = f;
    *count = v->item_count;
    return HQ_OK;
}

/* Input layers a command addresses: the one named by `v` (when given) or all of them. */
static int target_inputs(hqi_optimize_work_t *o, const hq_value_t *v, int *targets)
{
    int count = 0;
    const int *ins = hq_graph_inputs(o->graph, &count);
    if (!v)
        for (int i = 0; i < count; i++)
            targets[i] = ins[i];
    if (!v)
        return count;
    int index = v->text ? hq_graph_find(o->graph, v->text) : -1;
    if (index < 0 || hq_graph_layer(o->graph, index)->type != HQ_LAYER_INPUT)
        return -1;
    targets[0] = index;
    return 1;
}

static int64_t channels_of(const hq_layer_t *l)
{
    return l->output_shape.ndim > 1 ? l->output_shape.dims[l->output_shape.ndim - 1] : 1;
}

static hq_status_t apply_normalization(hqi_optimize_work_t *o, const hq_command_t *c,
                                       hq_error_t *err)
{
    float *mean = NULL, *std = NULL;
    int nm = 0, ns = 0;
    hq_status_t st = read_float_list(o, c, hq_command_positional(c, 0), "mean", &mean, &nm, err);
    if (st == HQ_OK)
        st = read_float_list(o, c, hq_command_positional(c, 1), "std", &std, &ns, err);
    int targets[64];
    int count = st == HQ_OK ? target_inputs(o, hq_command_positional(c, 2), targets) : 0;
    if (st == HQ_OK && (count < 0 || count > 64))
        st = script_error(o, c, err, "the third argument must name an input layer");
    for (int k = 0; k < count && st == HQ_OK; k++) {
        const hq_layer_t *in = hq_graph_layer(o->graph, targets[k]);
        int64_t ch = channels_of(in);
        if ((nm != ch && nm != 1) || (ns != ch && ns != 1)) {
            st = script_error(o, c, err, "%s has %lld channels but mean has %d and std %d values",
                              in->bare_name, (long long)ch, nm, ns);
            break;
        }
        float *m = malloc(sizeof(float) * (size_t)ch * 2);
        if (!m) {
            st = hqi_nomem(err, "normalization");
            break;
        }
        float *s = m + ch;
        for (int64_t i = 0; i < ch; i++) {
            m[i] = mean[nm == 1 ? 0 : i];
            s[i] = std[ns == 1 ? 0 : i];
            if (!(s[i] != 0.0f) || !isfinite(s[i]) || !isfinite(m[i])) {
                free(m);
                m = NULL;
                st = script_error(o, c, err, "std must be finite and non-zero, mean finite");
                break;
            }
        }
        if (!m)
            break;
        char name[256];
        if (c->result_count > 0 && count == 1)
            snprintf(name, sizeof name, "%s", c->results[0]);
        else if (c->result_count > 0)
            snprintf(name, sizeof name, "%s_%d", c->results[0], k + 1);
        else
            for (int i = 1; i < 100000; i++) {
                snprintf(name, sizeof name, "normalization%d", i);
                if (hq_graph_find(o->graph, name) < 0)
                    break;
            }
        if (hq_graph_find(o->graph, name) >= 0) {
            free(m);
            st = script_error(o, c, err, "a layer named '%s' already exists", name);
            break;
        }
        int index = -1;
        char in_name[256];
        snprintf(in_name, sizeof in_name, "%s", in->bare_name);
        st = hq_graph_add_layer(o->graph, name, HQ_LAYER_NORMALIZATION, &index, err);
        if (st == HQ_OK)
            st = hq_layer_set_normalization(o->graph, index, m, s, (int)ch, err);
        if (st == HQ_OK)
            st = hq_graph_insert_after(o->graph, targets[k], index, err);
        const hq_layer_t *nl = st == HQ_OK ? hq_graph_layer(o->graph, index) : NULL;
        if (st == HQ_OK)
            st = hqi_put_f32(o->fpo, nl->name, "mean:0", m, ch, err);
        if (st == HQ_OK)
            st = hqi_put_f32(o->fpo, nl->name, "std:0", s, ch, err);
        if (st == HQ_OK)
            hqi_logf(&o->log, HQ_LOG_INFO, "%s inserted after %s: (x - mean) / std per channel",
                     name, in_name);
        free(m);
    }
    free(mean);
    free(std);
    return st;
}

/* Reverses the input-channel axis of a conv kernel [kh, kw, cin, cout] in a params set. */
static hq_status_t reverse_kernel_inputs(hq_npz_t *params, const hq_layer_t *conv, hq_error_t *err)
{
    hq_tensor_t *k = NULL;
    hq_status_t st = hqi_param_f32(params, conv, "kernel:0", &k, err);
    if (st != HQ_OK)
        return st;
    int64_t taps = (int64_t)conv->params.kernel_h * conv->params.kernel_w;
    int64_t cin = conv->params.kernel_in, cout = conv->params.kernel_out;
    if (conv->type == HQ_LAYER_DENSE)
        taps = 1;
    if (hq_tensor_count(k) != taps * cin * cout)
        return hqi_error(err, HQ_ERR_INVALID, "%s: kernel size does not match its shape",
                         conv->name);
    float *w = k->data;
    for (int64_t t = 0; t < taps; t++)
        for (int64_t i = 0; i < cin / 2; i++)
            for (int64_t oc = 0; oc < cout; oc++) {
                float *a = &w[(t * cin + i) * cout + oc],
                      *b = &w[(t * cin + cin - 1 - i) * cout + oc];
                float tmp = *a;
                *a = *b;
                *b = tmp;
            }
    return HQ_OK;
}

/* Collects the layers a channel swap after `from` must be folded into: through normalization
 * layers (their mean/std get swapped) to conv layers with groups == 1. False when some path
 * reaches anything else. */
static bool swap_plan(const hq_graph_t *g, int from, int *convs, int *nconv, int *norms, int *nnorm,
                      int cap)
{
    const hq_layer_t *l = hq_graph_layer(g, from);
    for (int i = 0; i < l->output_count; i++) {
        int c = l->outputs[i];
        const hq_layer_t *cl = hq_graph_layer(g, c);
        if (cl->type == HQ_LAYER_NORMALIZATION && cl->input_count == 1) {
            if (*nnorm >= cap)
                return false;
            norms[(*nnorm)++] = c;
            if (!swap_plan(g, c, convs, nconv, norms, nnorm, cap))
                return false;
        } else if (cl->type == HQ_LAYER_CONV && cl->params.groups == 1 && cl->inputs[0] == from) {
            if (*nconv >= cap)
                return false;
            convs[(*nconv)++] = c;
        } else {
            return false;
        }
    }
    return true;
}

static hq_status_t apply_input_conversion(hqi_optimize_work_t *o, const hq_command_t *c,
                                          hq_error_t *err)
{
    const hq_value_t *conv = NULL, *layer = NULL;
    for (int i = 0; i < c->arg_count; i++) {
        const hq_value_t *v = &c->args[i].value;
        if (c->args[i].key)
            continue;
        if (v->kind == HQ_VALUE_IDENT && v->text && strstr(v->text, "_to_"))
            conv = v;
        else
            layer = v;
    }
    if (!conv) {
        not_applied(o, c, "(no conversion named)");
        return HQ_OK;
    }
    if (!value_word(conv, "bgr_to_rgb") && !value_word(conv, "rgb_to_bgr")) {
        char what[128];
        snprintf(what, sizeof what, "%s", conv->text);
        not_applied(o, c, what);
        return HQ_OK;
    }
    int targets[64];
    int count = target_inputs(o, layer, targets);
    if (count < 0 || count > 64)
        return script_error(o, c, err, "'%s' is not an input layer",
                            layer && layer->text ? layer->text : "?");
    for (int k = 0; k < count; k++) {
        const hq_layer_t *in = hq_graph_layer(o->graph, targets[k]);
        int convs[64], norms[64], nconv = 0, nnorm = 0;
        if (channels_of(in) != 3 ||
            !swap_plan(o->graph, targets[k], convs, &nconv, norms, &nnorm, 64) || nconv == 0) {
            hqi_logf(&o->log, HQ_LOG_WARNING,
                     "%s:%d: input_conversion(%s) not applied to %s: hq folds the channel swap "
                     "into 3-channel convolutions that read the input (through normalization "
                     "layers), and this input feeds something else",
                     o->script_name, c->line, conv->text, in->bare_name);
            o->not_applied++;
            continue;
        }
        for (int i = 0; i < nnorm; i++) {
            hq_layer_t *nl = hq_graph_layer_mut(o->graph, norms[i]);
            int ch = nl->params.channels;
            for (int j = 0; j < ch / 2; j++) {
                float t = nl->params.mean[j];
                nl->params.mean[j] = nl->params.mean[ch - 1 - j];
                nl->params.mean[ch - 1 - j] = t;
                t = nl->params.std[j];
                nl->params.std[j] = nl->params.std[ch - 1 - j];
                nl->params.std[ch - 1 - j] = t;
            }
            hq_status_t st = hqi_put_f32(o->fpo, nl->name, "mean:0", nl->params.mean, ch, err);
            if (st == HQ_OK)
                st = hqi_put_f32(o->fpo, nl->name, "std:0", nl->params.std, ch, err);
            if (st != HQ_OK)
                return st;
        }
        for (int i = 0; i < nconv; i++) {
            const hq_layer_t *cl = hq_graph_layer(o->graph, convs[i]);
            hq_status_t st = reverse_kernel_inputs(o->fpo, cl, err);
            if (st == HQ_OK)
                st = reverse_kernel_inputs(o->native, cl, err);
            if (st != HQ_OK)
                return st;
            hqi_logf(&o->log, HQ_LOG_INFO,
                     "input_conversion(%s): channel order of %s reversed, folded into %s",
                     conv->text, in->bare_name, cl->bare_name);
        }
    }
    return HQ_OK;
}

static hq_status_t apply_change_activation(hqi_optimize_work_t *o, const hq_command_t *c,
                                           hq_error_t *err)
{
    const hq_value_t *act_value = hq_command_positional(c, 1);
    hq_activation_t act;
    if (!act_value || !act_value->text || hq_activation_from_name(act_value->text, &act) != HQ_OK)
        return script_error(o, c, err, "second argument must be an activation name");
    int n = hq_graph_layer_count(o->graph);
    bool *mask = calloc((size_t)(n ? n : 1), sizeof(bool));
    if (!mask)
        return hqi_nomem(err, "change_output_activation");
    hq_status_t st = select_layers(o, c, hq_command_positional(c, 0), mask, err);
    for (int i = 0; i < n && st == HQ_OK; i++) {
        if (!mask[i])
            continue;
        hq_layer_t *l = hq_graph_layer_mut(o->graph, i);
        if (!hqi_layer_traits(l->type)->fused_activation) {
            st = script_error(o, c, err, "%s is a %s, which has no activation", l->bare_name,
                              hq_layer_type_name(l->type));
            break;
        }
        if (act == HQ_ACT_PRELU) {
            st = script_error(o, c, err, "prelu needs slopes; it cannot be set by the script");
            break;
        }
        hqi_logf(&o->log, HQ_LOG_INFO, "%s: activation %s -> %s", l->bare_name,
                 hq_activation_name(l->params.activation), hq_activation_name(act));
        l->params.activation = act;
        if (act == HQ_ACT_LEAKY && l->params.activation_alpha == 0.0f)
            l->params.activation_alpha = 0.01f;
    }
    free(mask);
    return st;
}

/* ---- configuration commands --------------------------------------------------------------- */

/* Reports keys of a command that hq does not read. `known` is NULL-terminated. Keys the
 * vocabulary does not know were reported by check_vocabulary. */
static void unknown_keys(hqi_optimize_work_t *o, const hq_command_t *c, const char *const *known)
{
    const hqi_script_spec_t *spec = hqi_script_spec(c->name);
    for (int i = 0; i < c->arg_count; i++) {
        const char *k = c->args[i].key;
        if (!k || hqi_script_key_unknown(spec, c, k))
            continue;
        bool ok = false;
        for (int j = 0; known[j]; j++)
            ok = ok || strcmp(known[j], k) == 0;
        if (!ok) {
            char what[160];
            snprintf(what, sizeof what, "key '%s'", k);
            not_applied(o, c, what);
        }
    }
}

static hq_status_t read_policy(hqi_optimize_work_t *o, const hq_command_t *c, int *policy,
                               hq_error_t *err)
{
    const hq_value_t *v = hq_command_kwarg(c, "policy");
    if (!v || value_word(v, "enabled"))
        *policy = 1;
    else if (value_word(v, "disabled"))
        *policy = 0;
    else
        return script_error(o, c, err, "policy must be enabled or disabled");
    return HQ_OK;
}

static hq_status_t read_int_key(hqi_optimize_work_t *o, const hq_command_t *c, const char *key,
                                int64_t lo, int64_t hi, int64_t *out, hq_error_t *err)
{
    const hq_value_t *v = hq_command_kwarg(c, key);
    double d;
    if (!v)
        return HQ_OK;
    if (!value_number(v, &d) || d != floor(d) || d < (double)lo || d > (double)hi)
        return script_error(o, c, err, "%s must be an integer from %lld to %lld", key,
                            (long long)lo, (long long)hi);
    *out = (int64_t)d;
    return HQ_OK;
}

/* A number key in [lo, hi] (lo excluded when lo_open). */
static hq_status_t read_real_key(hqi_optimize_work_t *o, const hq_command_t *c, const char *key,
                                 double lo, double hi, bool lo_open, double *out, hq_error_t *err)
{
    const hq_value_t *v = hq_command_kwarg(c, key);
    double d;
    if (!v)
        return HQ_OK;
    if (!value_number(v, &d) || !(lo_open ? d > lo : d >= lo) || !(d <= hi))
        return script_error(o, c, err, "%s must be a number %s %g and at most %g", key,
                            lo_open ? "above" : "from", lo, hi);
    *out = d;
    return HQ_OK;
}

/* post_quantization_optimization(adaround, policy=, dataset_size=, epochs=, batch_size=,
 * learning_rate=, warmup=, b_range=[start, end], mode=train_4bit|train_all, weight=). */
static hq_status_t read_adaround(hqi_optimize_work_t *o, const hq_command_t *c, hq_error_t *err)
{
    hqi_adaround_config_t *a = &o->cfg.adaround;
    hq_status_t st = read_policy(o, c, &o->cfg.policy[HQI_ALGORITHM_ADAROUND], err);
    if (st == HQ_OK)
        st = read_int_key(o, c, "dataset_size", 1, INT64_C(1) << 40, &a->dataset_size, err);
    if (st == HQ_OK)
        st = read_int_key(o, c, "epochs", 1, 100000, &a->epochs, err);
    if (st == HQ_OK && hq_command_kwarg(c, "epochs"))
        a->max_steps = 0; /* the epochs asked for, whatever they cost */
    if (st == HQ_OK)
        st = read_int_key(o, c, "batch_size", 1, 1 << 20, &a->batch_size, err);
    if (st == HQ_OK)
        st = read_real_key(o, c, "learning_rate", 0, 10, true, &a->learning_rate, err);
    if (st == HQ_OK)
        st = read_real_key(o, c, "warmup", 0, 0.99, false, &a->warmup, err);
    if (st == HQ_OK)
        st = read_real_key(o, c, "weight", 0, 1e6, false, &a->weight, err);
    const hq_value_t *range = hq_command_kwarg(c, "b_range");
    double b0, b1;
    if (st == HQ_OK && range) {
        if (!value_pair(range, &b0, &b1) || !(b1 >= 1) || !(b0 >= b1) || !(b0 <= 1000))
            st = script_error(o, c, err,
                              "b_range must be [start, end] with 1000 >= start >= end >= 1");
        else
            a->beta_start = b0, a->beta_end = b1;
    }
    const hq_value_t *mode = hq_command_kwarg(c, "mode");
    if (st == HQ_OK && mode && !value_word(mode, "train_4bit") && !value_word(mode, "train_all"))
        st = script_error(o, c, err, "mode must be train_4bit or train_all");
    if (st == HQ_OK && mode)
        a->train_all = value_word(mode, "train_all");
    static const char *const known[] = {"policy",        "dataset_size", "epochs",
                                        "batch_size",    "learning_rate", "warmup",
                                        "weight",        "b_range",       "mode",
                                        NULL};
    if (st == HQ_OK)
        unknown_keys(o, c, known);
    return st;
}

/* The words of a value that is one word or a list of words, into out (at most max); -1 when
 * it is neither or has more. */
static int value_words(const hq_value_t *v, const char **out, int max)
{
    if (v->kind == HQ_VALUE_IDENT || v->kind == HQ_VALUE_STRING)
        return max >= 1 && v->text ? (out[0] = v->text, 1) : -1;
    if (v->kind != HQ_VALUE_LIST || v->item_count > max)
        return -1;
    for (int k = 0; k < v->item_count; k++) {
        const hq_value_t *item = &v->items[k];
        if ((item->kind != HQ_VALUE_IDENT && item->kind != HQ_VALUE_STRING) || !item->text)
            return -1;
        out[k] = item->text;
    }
    return v->item_count;
}

/* post_quantization_optimization(finetune, policy=, dataset_size=, epochs=, batch_size=,
 * learning_rate=, loss_layer_names=[...], loss_types=[...], mode=train_4bit|train_all). */
static hq_status_t read_finetune(hqi_optimize_work_t *o, const hq_command_t *c, hq_error_t *err)
{
    hqi_finetune_config_t *f = &o->cfg.finetune;
    hq_status_t st = read_policy(o, c, &o->cfg.policy[HQI_ALGORITHM_FINETUNE], err);
    if (st == HQ_OK)
        st = read_int_key(o, c, "dataset_size", 1, INT64_C(1) << 40, &f->dataset_size, err);
    if (st == HQ_OK)
        st = read_int_key(o, c, "epochs", 1, 100000, &f->epochs, err);
    if (st == HQ_OK && hq_command_kwarg(c, "epochs"))
        f->max_steps = 0; /* the epochs asked for, whatever they cost */
    if (st == HQ_OK)
        st = read_int_key(o, c, "batch_size", 1, 1 << 20, &f->batch_size, err);
    if (st == HQ_OK)
        st = read_real_key(o, c, "learning_rate", 0, 10, true, &f->learning_rate, err);
    const char *words[HQI_FINETUNE_MAX_LOSSES];
    const hq_value_t *names = hq_command_kwarg(c, "loss_layer_names");
    int count = names && st == HQ_OK ? value_words(names, words, HQI_FINETUNE_MAX_LOSSES) : 0;
    if (count < 0)
        st = script_error(o, c, err, "loss_layer_names must be a layer name or a list of at most %d",
                          HQI_FINETUNE_MAX_LOSSES);
    for (int k = 0; k < count && st == HQ_OK; k++) {
        if (strlen(words[k]) >= HQI_FINETUNE_NAME_MAX)
            st = script_error(o, c, err, "loss_layer_names: '%s' is longer than %d characters",
                              words[k], HQI_FINETUNE_NAME_MAX - 1);
        else
            snprintf(f->loss_layers[k], HQI_FINETUNE_NAME_MAX, "%s", words[k]);
    }
    if (st == HQ_OK && names)
        f->loss_count = count;
    const hq_value_t *types = hq_command_kwarg(c, "loss_types");
    count = types && st == HQ_OK ? value_words(types, words, HQI_FINETUNE_MAX_LOSSES) : 0;
    if (count < 0)
        st = script_error(o, c, err, "loss_types must be a loss or a list of at most %d",
                          HQI_FINETUNE_MAX_LOSSES);
    for (int k = 0; k < count && st == HQ_OK; k++)
        if (!hqi_finetune_loss_parse(words[k], &f->loss_types[k]))
            st = script_error(o, c, err, "loss_types: '%s' is not l2rel, l2, cosine or ce",
                              words[k]);
    if (st == HQ_OK && types)
        f->loss_type_count = count;
    if (st == HQ_OK && f->loss_type_count > 1 && f->loss_type_count != f->loss_count)
        st = script_error(o, c, err,
                          "loss_types must have one entry or one per loss_layer_names entry "
                          "(%d given for %d)",
                          f->loss_type_count, f->loss_count);
    const hq_value_t *mode = hq_command_kwarg(c, "mode");
    if (st == HQ_OK && mode && !value_word(mode, "train_4bit") && !value_word(mode, "train_all"))
        st = script_error(o, c, err, "mode must be train_4bit or train_all");
    if (st == HQ_OK && mode)
        f->train_all = value_word(mode, "train_all");
    static const char *const known[] = {"policy",        "dataset_size",     "epochs",
                                        "batch_size",    "learning_rate",    "loss_layer_names",
                                        "loss_types",    "mode",             NULL};
    if (st == HQ_OK)
        unknown_keys(o, c, known);
    return st;
}

static hq_status_t config_command(hqi_optimize_work_t *o, const hq_command_t *c, bool *handled,
                                  hq_error_t *err)
{
    hqi_optimize_config_t *cfg = &o->cfg;
    const hq_value_t *first = hq_command_positional(c, 0);
    hq_status_t st = HQ_OK;
    *handled = true;
    if (strcmp(c->name, "model_optimization_flavor") == 0) {
        int64_t level = cfg->optimization_level, comp = cfg->compression_level;
        st = read_int_key(o, c, "optimization_level", 0, 4, &level, err);
        if (st == HQ_OK)
            st = read_int_key(o, c, "compression_level", 0, 5, &comp, err);
        if (st == HQ_OK && hq_command_kwarg(c, "optimization_level"))
            cfg->optimization_level_line = c->line;
        cfg->optimization_level = (int)level;
        cfg->compression_level = (int)comp;
        static const char *const known[] = {"optimization_level", "compression_level", NULL};
        unknown_keys(o, c, known);
    } else if (strcmp(c->name, "model_optimization_config") == 0 &&
               value_word(first, "calibration")) {
        st = read_int_key(o, c, "batch_size", 1, 1 << 20, &cfg->batch_size, err);
        if (st == HQ_OK)
            st = read_int_key(o, c, "calibset_size", 1, INT64_C(1) << 40, &cfg->calibset_size, err);
        static const char *const known[] = {"batch_size", "calibset_size", NULL};
        unknown_keys(o, c, known);
    } else if (strcmp(c->name, "model_optimization_config") == 0 &&
               value_word(first, "compression_params")) {
        const hq_value_t *v = hq_command_kwarg(c, "auto_4bit_weights_ratio");
        double r;
        if (v && (!value_number(v, &r) || r < 0 || r > 1))
            return script_error(o, c, err, "auto_4bit_weights_ratio must be a number from 0 to 1");
        if (v)
            cfg->auto_4bit_ratio = r;
        static const char *const known[] = {"auto_4bit_weights_ratio", NULL};
        unknown_keys(o, c, known);
    } else if (strcmp(c->name, "pre_quantization_optimization") == 0 &&
               value_word(first, "equalization")) {
        st = read_policy(o, c, &cfg->policy[HQI_ALGORITHM_EQUALIZATION], err);
        static const char *const known[] = {"policy", NULL};
        unknown_keys(o, c, known);
    } else if (strcmp(c->name, "post_quantization_optimization") == 0 &&
               value_word(first, "bias_correction")) {
        st = read_policy(o, c, &cfg->policy[HQI_ALGORITHM_BIAS_CORRECTION], err);
        const hq_value_t *mode = hq_command_kwarg(c, "mode");
        if (st == HQ_OK && mode && !value_word(mode, "analytic") && !value_word(mode, "iterative"))
            st = script_error(o, c, err, "mode must be analytic or iterative");
        if (st == HQ_OK && mode)
            cfg->bias_mode = value_word(mode, "iterative") ? HQI_BIAS_ITERATIVE : HQI_BIAS_ANALYTIC;
        static const char *const known[] = {"policy", "mode", NULL};
        unknown_keys(o, c, known);
    } else if (strcmp(c->name, "post_quantization_optimization") == 0 &&
               value_word(first, "adaround")) {
        st = read_adaround(o, c, err);
    } else if (strcmp(c->name, "post_quantization_optimization") == 0 &&
               value_word(first, "finetune")) {
        st = read_finetune(o, c, err);
    } else {
        *handled = false;
    }
    return st;
}

/* quantization_param(layers, precision_mode=..., force_range_out=[lo, hi],
 * force_range_in=[lo, hi]): precision and range requests of the layers named. */
static hq_status_t read_quantization_param(hqi_optimize_work_t *o, const hq_command_t *c,
                                           bool *mask, hqi_precision_request_t *prec,
                                           hqi_range_request_t *ranges, hq_error_t *err)
{
    int n = hq_graph_layer_count(o->graph);
    const hq_value_t *first = hq_command_positional(c, 0);
    hq_status_t st = select_layers(o, c, first, mask, err);
    const hq_value_t *mode = hq_command_kwarg(c, "precision_mode");
    const hq_value_t *fout = hq_command_kwarg(c, "force_range_out");
    const hq_value_t *fin = hq_command_kwarg(c, "force_range_in");
    hqi_precision_request_t req;
    double a = 0, b = 0, ia = 0, ib = 0;
    if (st == HQ_OK && mode && (!mode->text || hqi_precision_parse(mode->text, &req) != HQ_OK))
        st = script_error(o, c, err, "precision_mode '%s' is not a{8|16}_w{4|8|16}[_a{8|16}]",
                          mode->text ? mode->text : "(list)");
    if (st == HQ_OK && fout && (!value_pair(fout, &a, &b) || a > b))
        st = script_error(o, c, err, "force_range_out must be [min, max] with min <= max");
    if (st == HQ_OK && fin && (!value_pair(fin, &ia, &ib) || ia > ib))
        st = script_error(o, c, err, "force_range_in must be [min, max] with min <= max");
    for (int i = 0; i < n && st == HQ_OK; i++) {
        if (!mask[i])
            continue;
        const hq_layer_t *l = hq_graph_layer(o->graph, i);
        if (mode) {
            prec[i] = req;
            prec[i].line = c->line;
        }
        if (fout) {
            ranges[i].force_out = true;
            ranges[i].force_lo = (float)a;
            ranges[i].force_hi = (float)b;
        }
        /* an input range is the range of what the layer reads: its producers' outputs */
        for (int k = 0; fin && k < l->input_count; k++) {
            ranges[l->inputs[k]].force_out = true;
            ranges[l->inputs[k]].force_lo = (float)ia;
            ranges[l->inputs[k]].force_hi = (float)ib;
        }
    }
    static const char *const known[] = {"precision_mode", "force_range_out", "force_range_in",
                                        NULL};
    if (st == HQ_OK)
        unknown_keys(o, c, known);
    return st;
}

/* pre_quantization_optimization(activation_clipping | weights_clipping, layers=..., mode=...,
 * clipping_values=...): clipping requests of the layers named (all when no layers=). The search
 * modes (mmse, and mmse_if4b for weights) take no clipping_values. */
static hq_status_t read_clipping(hqi_optimize_work_t *o, const hq_command_t *c, bool *mask,
                                 hqi_range_request_t *ranges, hq_error_t *err)
{
    int n = hq_graph_layer_count(o->graph);
    const hq_value_t *first = hq_command_positional(c, 0);
    hq_status_t st = HQ_OK;
    bool weights = value_word(first, "weights_clipping");
    const hq_value_t *layers = hq_command_kwarg(c, "layers");
    if (layers)
        st = select_layers(o, c, layers, mask, err);
    else
        for (int i = 0; i < n; i++)
            mask[i] = true;
    const hq_value_t *mode = hq_command_kwarg(c, "mode");
    const hq_value_t *values = hq_command_kwarg(c, "clipping_values");
    hqi_clip_mode_t m = HQI_CLIP_NONE;
    double a = 0, b = 0;
    if (st == HQ_OK) {
        if (!mode || value_word(mode, "disabled"))
            m = HQI_CLIP_NONE;
        else if (value_word(mode, "manual"))
            m = HQI_CLIP_MANUAL;
        else if (value_word(mode, "percentile"))
            m = HQI_CLIP_PERCENTILE;
        else if (value_word(mode, "mmse"))
            m = HQI_CLIP_MMSE;
        else if (weights && value_word(mode, "mmse_if4b"))
            m = HQI_CLIP_MMSE_IF4B;
        else {
            char what[160];
            snprintf(what, sizeof what, "mode=%s", mode->text ? mode->text : "?");
            not_applied(o, c, what);
            return HQ_OK;
        }
    }
    bool searched = m == HQI_CLIP_MMSE || m == HQI_CLIP_MMSE_IF4B;
    if (st == HQ_OK && searched && values)
        st = script_error(o, c, err, "mode=%s searches the clip itself: it takes no clipping_values",
                          mode->text);
    else if (st == HQ_OK && m != HQI_CLIP_NONE && !searched) {
        if (!value_pair(values, &a, &b) && !(weights && values && value_number(values, &b)))
            st = script_error(o, c, err, "clipping_values must be [low, high]");
        else if (m == HQI_CLIP_PERCENTILE && (a < 0 || b > 100 || a > b))
            st = script_error(o, c, err, "percentiles must satisfy 0 <= low <= high <= 100");
        else if (m == HQI_CLIP_MANUAL && a > b)
            st = script_error(o, c, err, "clipping_values must be [low, high] with low <= high");
    }
    for (int i = 0; i < n && st == HQ_OK; i++) {
        if (!mask[i])
            continue;
        if (weights) {
            ranges[i].weight_clip = m;
            ranges[i].weight_clip_default = false;
            ranges[i].weight_a = a;
            ranges[i].weight_b = b;
        } else {
            ranges[i].clip = m;
            ranges[i].clip_a = a;
            ranges[i].clip_b = b;
        }
    }
    static const char *const known[] = {"layers", "mode", "clipping_values", "policy", NULL};
    if (st == HQ_OK)
        unknown_keys(o, c, known);
    return st;
}

/* Layer-addressed commands, read once the graph is final. */
static hq_status_t layer_command(hqi_optimize_work_t *o, const hq_command_t *c,
                                 hqi_precision_request_t *prec, hqi_range_request_t *ranges,
                                 bool *handled, hq_error_t *err)
{
    int n = hq_graph_layer_count(o->graph);
    const hq_value_t *first = hq_command_positional(c, 0);
    bool *mask = calloc((size_t)(n ? n : 1), sizeof(bool));
    if (!mask)
        return hqi_nomem(err, "model script");
    hq_status_t st = HQ_OK;
    *handled = true;
    if (strcmp(c->name, "quantization_param") == 0) {
        st = read_quantization_param(o, c, mask, prec, ranges, err);
    } else if (strcmp(c->name, "pre_quantization_optimization") == 0 &&
               (value_word(first, "activation_clipping") ||
                value_word(first, "weights_clipping"))) {
        st = read_clipping(o, c, mask, ranges, err);
    } else {
        *handled = false;
    }
    free(mask);
    return st;
}

hq_status_t hqi_optimize_script_modify(hqi_optimize_work_t *o, const hq_script_t *script,
                                       hq_error_t *err)
{
    hq_status_t checked = check_vocabulary(o, script, err);
    if (checked != HQ_OK)
        return checked;
    for (int i = 0; i < hq_script_command_count(script); i++) {
        const hq_command_t *c = hq_script_command(script, i);
        if (!c->name)
            continue;
        hq_status_t st = HQ_OK;
        bool handled = false;
        if (strcmp(c->name, "normalization") == 0) {
            st = apply_normalization(o, c, err);
            handled = true;
            o->applied++;
        } else if (strcmp(c->name, "input_conversion") == 0) {
            int before = o->not_applied;
            st = apply_input_conversion(o, c, err);
            handled = true;
            if (o->not_applied == before)
                o->applied++;
        } else if (strcmp(c->name, "change_output_activation") == 0) {
            st = apply_change_activation(o, c, err);
            handled = true;
            o->applied++;
        } else {
            st = config_command(o, c, &handled, err);
            if (handled)
                o->applied++;
        }
        if (st != HQ_OK)
            return st;
        /* finalize after each modification so that later commands see shapes */
        if (handled && !hq_graph_is_finalized(o->graph)) {
            st = hq_graph_finalize(o->graph, o->script_name, err);
            if (st != HQ_OK)
                return st;
        }
    }
    return HQ_OK;
}

hq_status_t hqi_optimize_script_requests(hqi_optimize_work_t *o, const hq_script_t *script,
                                         hqi_precision_request_t *prec, hqi_range_request_t *ranges,
                                         hq_error_t *err)
{
    static const char *const first_pass_names[] = {"normalization", "input_conversion",
                                                   "change_output_activation", NULL};
    for (int i = 0; i < hq_script_command_count(script); i++) {
        const hq_command_t *c = hq_script_command(script, i);
        if (!c->name)
            continue;
        bool done = false;
        for (int j = 0; first_pass_names[j]; j++)
            done = done || strcmp(c->name, first_pass_names[j]) == 0;
        if (done)
            continue;
        bool handled = false;
        hq_status_t st = config_command(o, c, &handled, NULL);
        (void)st; /* already read and checked by the first pass */
        if (handled)
            continue;
        st = layer_command(o, c, prec, ranges, &handled, err);
        if (st != HQ_OK)
            return st;
        if (handled) {
            o->applied++;
            continue;
        }
        /* compiler-side commands were counted and unknown ones reported by check_vocabulary */
        const hqi_script_spec_t *spec = hqi_script_spec(c->name);
        if (!spec || spec->side == HQI_SCRIPT_COMPILER || hqi_script_word_unknown(spec, c))
            continue;
        const hq_value_t *first = hq_command_positional(c, 0);
        char what[160] = "";
        if (first && first->text && (strstr(c->name, "optimization") || strstr(c->name, "config")))
            snprintf(what, sizeof what, "%s", first->text);
        not_applied(o, c, what[0] ? what : NULL);
    }
    return HQ_OK;
}
