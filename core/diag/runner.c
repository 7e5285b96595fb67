/* runner.c — the hq-diag run: opens the model and dataset, fills the inspector context (the API
 * table of inspector.h), checks each inspector's needs, runs it, copies what it emits, and offers
 * its recommendation groups through the caller's question callback. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image_write.h>

#include "diag/diag_internal.h"
#include "util/util.h"

/* What ctx->host points at during one inspector's init/run/fini. */
typedef struct host {
    hq_diag_t *diag;
    int module;        /* index into diag->modules */
    char *skip_reason; /* set by ctx->skip */
    int rec_serial;    /* numbering of groups the inspector left unnamed */
} host_t;

#define HOST(ctx) ((host_t *)(ctx)->host)
#define DIAG(ctx) (HOST(ctx)->diag)

/* ---- opening -------------------------------------------------------------------------------- */

/* Reads every sample the run will use once, so that unreadable or non-finite data is refused
 * before any diagnostic is printed. */
static hq_status_t check_samples(hq_diag_t *diag, hq_error_t *err)
{
    enum { BATCH = 8 };
    hq_status_t st = HQ_OK;
    for (int input = 0; input < hq_dataset_input_count(diag->dataset) && st == HQ_OK; input++) {
        hq_shape_t shape = hq_dataset_input_shape(diag->dataset, input);
        size_t per_sample = 1;
        for (int d = 0; d < shape.ndim; d++)
            per_sample *= (size_t)shape.dims[d];
        float *batch = malloc(per_sample * BATCH * sizeof *batch);
        if (!batch)
            return hqi_nomem(err, "reading the dataset");
        for (int64_t first = 0; first < diag->samples && st == HQ_OK; first += BATCH) {
            int64_t n = diag->samples - first < BATCH ? diag->samples - first : BATCH;
            st = hq_dataset_read(diag->dataset, input, first, n, batch, err);
        }
        free(batch);
    }
    return st;
}

hq_status_t hq_diag_open(hq_diag_t *diag, const char *model_path, const char *dataset_path,
                         hq_error_t *err)
{
    if (diag->archive)
        return hqi_error(err, HQ_ERR_STATE, "hq-diag: a model is already open");
    diag->model_path = hqi_strdup(model_path);
    diag->dataset_path = hqi_strdup(dataset_path ? dataset_path : "");
    if (!diag->model_path || !diag->dataset_path)
        return hqi_nomem(err, model_path);
    hq_status_t st = hq_archive_open(model_path, &diag->archive, err);
    if (st == HQ_OK)
        st = hq_archive_graph(diag->archive, &diag->graph, err);
    if (st == HQ_OK) {
        hq_script_t *script;
        st = hq_archive_script(diag->archive, &script, err); /* a bad script fails here, early */
    }
    if (st == HQ_OK && dataset_path)
        st = hq_dataset_open(dataset_path, diag->graph, &diag->dataset, err);
    if (st != HQ_OK)
        return st;
    if (diag->dataset) {
        int64_t n = hq_dataset_count(diag->dataset);
        diag->samples = n < diag->options.sample_count ? n : diag->options.sample_count;
        if (diag->samples <= 0)
            return hqi_error(err, HQ_ERR_INVALID, "%s: the dataset holds no sample", dataset_path);
        st = check_samples(diag, err);
    }
    if (st != HQ_OK)
        return st;
    if (!diag->hw_arch) {
        diag->hw_arch = hqi_strdup(hq_archive_hw_arch(diag->archive));
        diag->options.hw_arch = diag->hw_arch;
    }
    return HQ_OK;
}

hq_archive_t *hq_diag_archive(hq_diag_t *diag)
{
    return diag->archive;
}

/* ---- the context: the model ---------------------------------------------------------------- */

static const char *ctx_net_name(hq_inspector_context_t *ctx)
{
    return hq_archive_net_name(DIAG(ctx)->archive);
}
static hq_model_state_t ctx_model_state(hq_inspector_context_t *ctx)
{
    return hq_archive_state(DIAG(ctx)->archive);
}
static const char *ctx_hw_arch(hq_inspector_context_t *ctx)
{
    return DIAG(ctx)->hw_arch ? DIAG(ctx)->hw_arch : "hailo8";
}
static hq_archive_t *ctx_archive(hq_inspector_context_t *ctx)
{
    return DIAG(ctx)->archive;
}
static const hq_graph_t *ctx_graph(hq_inspector_context_t *ctx)
{
    return DIAG(ctx)->graph;
}
static int ctx_layer_count(hq_inspector_context_t *ctx)
{
    return hq_graph_layer_count(DIAG(ctx)->graph);
}
static const hq_layer_t *ctx_layer(hq_inspector_context_t *ctx, int index)
{
    return hq_graph_layer(DIAG(ctx)->graph, index);
}
static int ctx_find_layer(hq_inspector_context_t *ctx, const char *name)
{
    return name ? hq_graph_find(DIAG(ctx)->graph, name) : -1;
}
static const int *ctx_topo_order(hq_inspector_context_t *ctx, int *count)
{
    return hq_graph_topo_order(DIAG(ctx)->graph, count);
}
static const int *ctx_inputs(hq_inspector_context_t *ctx, int *count)
{
    return hq_graph_inputs(DIAG(ctx)->graph, count);
}
static const int *ctx_outputs(hq_inspector_context_t *ctx, int *count)
{
    return hq_graph_outputs(DIAG(ctx)->graph, count);
}

/* ---- params --------------------------------------------------------------------------------- */

static const hq_npz_t *ctx_params(hq_inspector_context_t *ctx, hq_params_kind_t kind)
{
    hq_npz_t *npz = NULL;
    hq_archive_t *a = DIAG(ctx)->archive;
    if (!hq_archive_has_params(a, kind) || hq_archive_params(a, kind, &npz, NULL) != HQ_OK)
        return NULL;
    return npz;
}

static const hq_tensor_t *ctx_layer_tensor(hq_inspector_context_t *ctx, hq_params_kind_t kind,
                                           int layer, const char *suffix)
{
    const hq_npz_t *npz = ctx_params(ctx, kind);
    if (!npz || !suffix)
        return NULL;
    char key[1024];
    if (layer < 0) {
        snprintf(key, sizeof key, "%s/%s", ctx_net_name(ctx), suffix);
    } else {
        const hq_layer_t *l = hq_graph_layer(DIAG(ctx)->graph, layer);
        if (!l)
            return NULL;
        snprintf(key, sizeof key, "%s/%s", l->name, suffix);
    }
    return hq_npz_get(npz, key);
}

static bool tensor_first(const hq_tensor_t *t, double *value)
{
    if (!t || hq_tensor_count(t) < 1 || !t->data)
        return false;
    switch (t->dtype) {
    case HQ_DTYPE_FLOAT32:
        *value = ((const float *)t->data)[0];
        return true;
    case HQ_DTYPE_FLOAT64:
        *value = ((const double *)t->data)[0];
        return true;
    case HQ_DTYPE_FLOAT16:
        *value = hqi_half_to_float(((const uint16_t *)t->data)[0]);
        return true;
    case HQ_DTYPE_UINT8:
        *value = ((const uint8_t *)t->data)[0];
        return true;
    case HQ_DTYPE_INT8:
        *value = ((const int8_t *)t->data)[0];
        return true;
    case HQ_DTYPE_UINT16:
        *value = ((const uint16_t *)t->data)[0];
        return true;
    case HQ_DTYPE_INT16:
        *value = ((const int16_t *)t->data)[0];
        return true;
    case HQ_DTYPE_INT32:
        *value = ((const int32_t *)t->data)[0];
        return true;
    case HQ_DTYPE_INT64:
        *value = (double)((const int64_t *)t->data)[0];
        return true;
    case HQ_DTYPE_BOOL:
        *value = ((const uint8_t *)t->data)[0] != 0;
        return true;
    default:
        return false;
    }
}

static bool ctx_layer_scalar(hq_inspector_context_t *ctx, hq_params_kind_t kind, int layer,
                             const char *suffix, double *value)
{
    return tensor_first(ctx_layer_tensor(ctx, kind, layer, suffix), value);
}

/* ---- script --------------------------------------------------------------------------------- */

static const hq_script_t *ctx_script(hq_inspector_context_t *ctx)
{
    hq_script_t *script = NULL;
    return hq_archive_script(DIAG(ctx)->archive, &script, NULL) == HQ_OK ? script : NULL;
}

static int ctx_find_command(hq_inspector_context_t *ctx, const char *name, int start)
{
    const hq_script_t *script = ctx_script(ctx);
    if (!script || !name)
        return -1;
    for (int i = start < 0 ? 0 : start; i < hq_script_command_count(script); i++) {
        const hq_command_t *c = hq_script_command(script, i);
        if (c->name && !strcmp(c->name, name))
            return i;
    }
    return -1;
}

static const hq_command_t *ctx_command(hq_inspector_context_t *ctx, int index)
{
    const hq_script_t *script = ctx_script(ctx);
    return script ? hq_script_command(script, index) : NULL;
}

/* ---- dataset -------------------------------------------------------------------------------- */

static bool ctx_has_dataset(hq_inspector_context_t *ctx)
{
    return DIAG(ctx)->dataset != NULL;
}
static int64_t ctx_sample_count(hq_inspector_context_t *ctx)
{
    return DIAG(ctx)->samples;
}
static const char *ctx_dataset_path(hq_inspector_context_t *ctx)
{
    return DIAG(ctx)->dataset_path ? DIAG(ctx)->dataset_path : "";
}
static int ctx_dataset_input_count(hq_inspector_context_t *ctx)
{
    return DIAG(ctx)->dataset ? hq_dataset_input_count(DIAG(ctx)->dataset) : 0;
}
static hq_shape_t ctx_dataset_input_shape(hq_inspector_context_t *ctx, int input)
{
    hq_shape_t none = {0};
    if (!DIAG(ctx)->dataset || input < 0 || input >= hq_dataset_input_count(DIAG(ctx)->dataset))
        return none;
    return hq_dataset_input_shape(DIAG(ctx)->dataset, input);
}
static int ctx_dataset_input_layer(hq_inspector_context_t *ctx, int input)
{
    if (!DIAG(ctx)->dataset || input < 0 || input >= hq_dataset_input_count(DIAG(ctx)->dataset))
        return -1;
    return hq_dataset_input_layer(DIAG(ctx)->dataset, input);
}
static hq_dtype_t ctx_dataset_input_dtype(hq_inspector_context_t *ctx, int input)
{
    if (!DIAG(ctx)->dataset || input < 0 || input >= hq_dataset_input_count(DIAG(ctx)->dataset))
        return HQ_DTYPE_COUNT;
    return hq_dataset_input_dtype(DIAG(ctx)->dataset, input);
}
static hq_status_t ctx_read_samples(hq_inspector_context_t *ctx, int input, int64_t first,
                                    int64_t count, float *out, hq_error_t *err)
{
    hq_diag_t *d = DIAG(ctx);
    if (!d->dataset)
        return hqi_error(err, HQ_ERR_STATE, "no dataset given (-d)");
    if (input < 0 || input >= hq_dataset_input_count(d->dataset) || first < 0 || count < 0 ||
        first + count > d->samples || !out)
        return hqi_error(err, HQ_ERR_ARGUMENT,
                         "read_samples: input %d, samples [%lld, %lld) outside the %lld of the run",
                         input, (long long)first, (long long)(first + count),
                         (long long)d->samples);
    return hq_dataset_read(d->dataset, input, first, count, out, err);
}

/* ---- statistics ----------------------------------------------------------------------------- */

/* The set behind a stats target: native asked while the float pass ran on native params is
 * that pass. */
static const hqi_diag_stats_t *stats_set(const hq_diag_t *d, hq_stats_target_t target)
{
    if (target == HQ_STATS_NATIVE && !d->stats[HQ_STATS_NATIVE].ran &&
        d->stats[HQ_STATS_FLOAT].ran && d->stats[HQ_STATS_FLOAT].target == HQ_TARGET_NATIVE)
        return &d->stats[HQ_STATS_FLOAT];
    if ((int)target < 0 || target > HQ_STATS_NATIVE)
        return NULL;
    return &d->stats[target];
}

static bool ctx_stats_available(hq_inspector_context_t *ctx, hq_stats_target_t target,
                                const char **why)
{
    const hqi_diag_stats_t *set = stats_set(DIAG(ctx), target);
    if (set && set->ran)
        return true;
    if (why)
        *why = set && set->why ? set->why : "not computed";
    return false;
}

static const hq_layer_stats_t *ctx_layer_stats(hq_inspector_context_t *ctx,
                                               hq_stats_target_t target, int layer, int port)
{
    const hqi_diag_stats_t *set = stats_set(DIAG(ctx), target);
    if (!set || !set->ran || layer < 0 || layer >= hq_graph_layer_count(DIAG(ctx)->graph) ||
        port < 0 || set->first[layer] + port >= set->first[layer + 1])
        return NULL;
    const hq_layer_stats_t *s = &set->stats[set->first[layer] + port];
    return s->samples > 0 || s->count > 0 ? s : NULL;
}

static const hq_layer_noise_t *ctx_layer_noise(hq_inspector_context_t *ctx, int layer)
{
    hq_diag_t *d = DIAG(ctx);
    if (!d->noise || layer < 0 || layer >= hq_graph_layer_count(d->graph))
        return NULL;
    const hq_layer_noise_t *n = &d->noise[layer].noise;
    return n->has_cumulative || n->has_partial ? n : NULL;
}

static bool ctx_output_sqnr(hq_inspector_context_t *ctx, int output, double *db)
{
    hq_diag_t *d = DIAG(ctx);
    if (!d->output_sqnr_ran || output < 0 || output >= d->output_count)
        return false;
    *db = hqi_diag_output_sqnr(d, output);
    return true;
}

/* ---- emulation ------------------------------------------------------------------------------ */

static hq_status_t ctx_emulate(hq_inspector_context_t *ctx, hq_target_t target, int64_t first,
                               int64_t count, hq_emulator_batch_fn on_batch, hq_emulator_tap_fn tap,
                               void *user, hq_error_t *err)
{
    hq_diag_t *d = DIAG(ctx);
    if (!d->dataset)
        return hqi_error(err, HQ_ERR_STATE, "no dataset given (-d)");
    if (first < 0 || count < 0 || first + count > d->samples)
        return hqi_error(err, HQ_ERR_ARGUMENT,
                         "emulate: samples [%lld, %lld) outside the %lld of the run",
                         (long long)first, (long long)(first + count), (long long)d->samples);
    hq_emulator_t *emu;
    hq_status_t st = hqi_diag_emulator(d, target, &emu, err);
    if (st != HQ_OK)
        return st;
    int in_count, out_count;
    hq_graph_inputs(d->graph, &in_count);
    hq_graph_outputs(d->graph, &out_count);
    int64_t batch = d->options.batch_size;
    float **inputs = calloc((size_t)in_count + 1, sizeof *inputs);
    float **outputs = calloc((size_t)out_count + 1, sizeof *outputs);
    if (!inputs || !outputs)
        st = hqi_nomem(err, "hq-diag emulate");
    for (int i = 0; i < in_count && st == HQ_OK; i++)
        if (!(inputs[i] = malloc((size_t)(batch * hqi_diag_input_size(d, i)) * sizeof(float))))
            st = hqi_nomem(err, "hq-diag emulate");
    for (int k = 0; k < out_count && st == HQ_OK; k++)
        if (!(outputs[k] =
                  malloc((size_t)(batch * hq_emulator_output_size(emu, k)) * sizeof(float))))
            st = hqi_nomem(err, "hq-diag emulate");
    for (int64_t at = first; at < first + count && st == HQ_OK; at += batch) {
        int64_t n = first + count - at < batch ? first + count - at : batch;
        st = hqi_diag_read_batch(d, at, n, inputs, err);
        if (st == HQ_OK)
            st = hq_emulator_run(emu, n, (const float *const *)inputs, outputs, tap, user, err);
        if (st == HQ_OK && on_batch)
            st = on_batch(user, at, n, (const float *const *)outputs, err);
        if (st == HQ_OK && d->options.on_event) { /* the progress bar of an inspector's pass */
            char what[160];
            snprintf(what, sizeof what, "%s: emulating (%s)",
                     hqi_diag_module_name(d, HOST(ctx)->module),
                     hq_target_name(target) ? hq_target_name(target) : "?");
            hq_diag_event_t ev = {.kind = HQ_DIAG_EVENT_PROGRESS,
                                  .text = what,
                                  .done = at + n - first,
                                  .total = count};
            d->options.on_event(d->options.event_user, &ev);
        }
    }
    for (int i = 0; inputs && i < in_count; i++)
        free(inputs[i]);
    for (int k = 0; outputs && k < out_count; k++)
        free(outputs[k]);
    free(inputs);
    free(outputs);
    return st;
}

static hq_status_t ctx_emulate_inputs(hq_inspector_context_t *ctx, hq_target_t target,
                                      int64_t batch, const float *const *inputs,
                                      float *const *outputs, hq_emulator_tap_fn tap, void *user,
                                      hq_error_t *err)
{
    hq_emulator_t *emu;
    hq_status_t st = hqi_diag_emulator(DIAG(ctx), target, &emu, err);
    return st == HQ_OK ? hq_emulator_run(emu, batch, inputs, outputs, tap, user, err) : st;
}

/* ---- findings ------------------------------------------------------------------------------- */

static const char *level_word(hq_diag_level_t level)
{
    static const char *const words[] = {"info", "warning", "error"};
    return (int)level >= 0 && level <= HQ_DIAG_ERROR ? words[level] : "info";
}

static void add_finding(hq_diag_t *d, int module, hq_diag_level_t level, int layer,
                        const char *message, const hq_diag_number_t *numbers, int number_count,
                        uint32_t flags)
{
    if ((int)level < HQ_DIAG_INFO || level > HQ_DIAG_ERROR)
        level = HQ_DIAG_ERROR;
    if (layer < -1 || layer >= hq_graph_layer_count(d->graph))
        layer = -1;
    hqi_diag_finding_t *grown =
        realloc(d->findings, (size_t)(d->finding_count + 1) * sizeof *grown);
    if (!grown)
        return;
    d->findings = grown;
    hqi_diag_finding_t *f = &d->findings[d->finding_count];
    memset(f, 0, sizeof *f);
    f->module = module;
    f->level = level;
    f->layer = layer;
    f->flags = flags;
    f->message = hqi_strdup(message ? message : "");
    if (!f->message)
        return;
    if (numbers && number_count > 0) {
        f->numbers = calloc((size_t)number_count, sizeof *f->numbers);
        for (int i = 0; f->numbers && i < number_count; i++) {
            f->numbers[i].name = hqi_strdup(numbers[i].name ? numbers[i].name : "value");
            f->numbers[i].value = numbers[i].value;
            if (f->numbers[i].name)
                f->number_count = i + 1;
            else
                break;
        }
    }
    d->finding_count++;
    hqi_diag_event(d, HQ_DIAG_EVENT_MESSAGE, level, hqi_diag_module_name(d, module), "%s",
                   f->message);
}

static void ctx_diagnostic(hq_inspector_context_t *ctx, const hq_diagnostic_t *diagnostic)
{
    if (!diagnostic)
        return;
    hq_diagnostic_t v = {0};
    size_t known = diagnostic->struct_size < sizeof v ? diagnostic->struct_size : sizeof v;
    memcpy(&v, diagnostic, known);
    add_finding(DIAG(ctx), HOST(ctx)->module, v.level, v.layer, v.message, v.numbers,
                v.number_count, v.flags);
}

static void ctx_diagnosticf(hq_inspector_context_t *ctx, hq_diag_level_t level, int layer,
                            const char *fmt, ...)
{
    char message[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt ? fmt : "", ap);
    va_end(ap);
    add_finding(DIAG(ctx), HOST(ctx)->module, level, layer, message, NULL, 0, 0);
}

static hq_status_t ctx_recommend(hq_inspector_context_t *ctx, const hq_recommendation_t *rec,
                                 hq_error_t *err)
{
    hq_diag_t *d = DIAG(ctx);
    if (!rec || rec->struct_size < offsetof(hq_recommendation_t, default_answer) + sizeof(int))
        return hqi_error(err, HQ_ERR_ARGUMENT, "recommend: struct_size too small");
    hq_recommendation_t v = {0};
    memcpy(&v, rec, rec->struct_size < sizeof v ? rec->struct_size : sizeof v);
    if (!v.line)
        return hqi_error(err, HQ_ERR_ARGUMENT, "recommend: no line");
    hq_script_t *one = NULL;
    hq_status_t st = hq_script_parse(v.line, strlen(v.line), "recommended line", &one, err);
    int commands = 0;
    const hq_command_t *command = NULL;
    for (int i = 0; st == HQ_OK && i < hq_script_command_count(one); i++)
        if (hq_script_command(one, i)->name) {
            commands++;
            command = hq_script_command(one, i);
        }
    if (st == HQ_OK && commands != 1)
        st = hqi_error(err, HQ_ERR_FORMAT, "recommended line '%s' holds %d commands, 1 expected",
                       v.line, commands);
    char *canonical = NULL;
    if (st == HQ_OK)
        st = hq_command_print(command, &canonical, err);
    hq_script_destroy(one);
    if (st != HQ_OK)
        return st;
    hqi_diag_rec_t *grown = realloc(d->recs, (size_t)(d->rec_count + 1) * sizeof *grown);
    if (!grown) {
        free(canonical);
        return hqi_nomem(err, "recommend");
    }
    d->recs = grown;
    hqi_diag_rec_t *r = &d->recs[d->rec_count];
    memset(r, 0, sizeof *r);
    r->module = HOST(ctx)->module;
    r->level = (int)v.level >= HQ_DIAG_INFO && v.level <= HQ_DIAG_ERROR ? v.level : HQ_DIAG_WARNING;
    r->layer = v.layer >= 0 && v.layer < hq_graph_layer_count(d->graph) ? v.layer : -1;
    r->line = canonical;
    r->reason = hqi_strdup(v.reason ? v.reason : "");
    char generated[64];
    snprintf(generated, sizeof generated, "#%d", ++HOST(ctx)->rec_serial);
    r->group = hqi_strdup(v.group ? v.group : generated);
    r->group_kind = v.group_kind == HQ_GROUP_LEVELS ? HQ_GROUP_LEVELS : HQ_GROUP_YES_NO;
    r->question = v.question ? hqi_strdup(v.question) : NULL;
    r->default_answer = v.default_answer;
    if (!r->reason || !r->group) {
        free(r->line);
        free(r->reason);
        free(r->group);
        free(r->question);
        return hqi_nomem(err, "recommend");
    }
    d->rec_count++;
    return HQ_OK;
}

static void ctx_skip(hq_inspector_context_t *ctx, const char *reason)
{
    free(HOST(ctx)->skip_reason);
    HOST(ctx)->skip_reason = hqi_strdup(reason && reason[0] ? reason : "it decided not to run");
}

static void ctx_log(hq_inspector_context_t *ctx, const char *fmt, ...)
{
    char message[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt ? fmt : "", ap);
    va_end(ap);
    hq_diag_t *d = DIAG(ctx);
    hqi_diag_event(d, HQ_DIAG_EVENT_LOG, HQ_DIAG_INFO, hqi_diag_module_name(d, HOST(ctx)->module),
                   "%s", message);
}

/* ---- questions ------------------------------------------------------------------------------ */

static int ask(hq_diag_t *d, int module, const char *question, const char *const *choices,
               int count, int default_index)
{
    if (default_index < 0 || default_index >= count)
        default_index = 0;
    if (!d->options.ask)
        return default_index;
    int answer = d->options.ask(d->options.ask_user, hqi_diag_module_name(d, module), question,
                                choices, count, default_index);
    return answer >= 0 && answer < count ? answer : default_index;
}

static bool ctx_interactive(hq_inspector_context_t *ctx)
{
    return DIAG(ctx)->options.ask != NULL;
}

static bool ctx_ask_yes_no(hq_inspector_context_t *ctx, const char *question, bool default_yes)
{
    static const char *const yes_no[] = {"y", "n"};
    return ask(DIAG(ctx), HOST(ctx)->module, question ? question : "Continue?", yes_no, 2,
               default_yes ? 0 : 1) == 0;
}

static int ctx_ask_choice(hq_inspector_context_t *ctx, const char *question,
                          const char *const *choices, int count, int default_index)
{
    if (!choices || count <= 0)
        return -1;
    return ask(DIAG(ctx), HOST(ctx)->module, question ? question : "Choose", choices, count,
               default_index);
}

/* ---- files ---------------------------------------------------------------------------------- */

static const char *ctx_output_dir(hq_inspector_context_t *ctx)
{
    return DIAG(ctx)->output_dir;
}

static hq_status_t file_path(hq_diag_t *d, const char *name, char *path, size_t size,
                             hq_error_t *err)
{
    if (!name || !name[0] || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
        return hqi_error(err, HQ_ERR_ARGUMENT, "write_file: '%s' is not a plain file name",
                         name ? name : "(null)");
    if ((size_t)snprintf(path, size, "%s/%s", d->output_dir, name) >= size)
        return hqi_error(err, HQ_ERR_LIMIT, "write_file: path too long");
    return HQ_OK;
}

static void record_file(hq_diag_t *d, int module, const char *name, const char *caption, bool image)
{
    for (int i = 0; i < d->file_count; i++)
        if (!strcmp(d->files[i].name, name)) {
            free(d->files[i].caption);
            d->files[i].caption = caption ? hqi_strdup(caption) : NULL;
            d->files[i].image = image;
            return;
        }
    hqi_diag_file_t *grown = realloc(d->files, (size_t)(d->file_count + 1) * sizeof *grown);
    if (!grown)
        return;
    d->files = grown;
    hqi_diag_file_t *f = &d->files[d->file_count];
    f->module = module;
    f->name = hqi_strdup(name);
    f->caption = caption ? hqi_strdup(caption) : NULL;
    f->image = image;
    if (f->name)
        d->file_count++;
}

static bool is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcmp(dot, ".png") || !strcmp(dot, ".jpg") || !strcmp(dot, ".jpeg"));
}

static hq_status_t ctx_write_file(hq_inspector_context_t *ctx, const char *name, const void *bytes,
                                  size_t len, hq_error_t *err)
{
    hq_diag_t *d = DIAG(ctx);
    char path[4096];
    hq_status_t st = file_path(d, name, path, sizeof path, err);
    if (st == HQ_OK)
        st = hqi_write_file_atomic(path, bytes, len, err);
    if (st == HQ_OK) {
        record_file(d, HOST(ctx)->module, name, NULL, is_image_name(name));
        hqi_diag_event(d, HQ_DIAG_EVENT_LOG, HQ_DIAG_INFO,
                       hqi_diag_module_name(d, HOST(ctx)->module), "wrote %s", path);
    }
    return st;
}

static void append_to_buf(void *user, void *data, int size)
{
    hqi_buf_append(user, data, (size_t)size);
}

static hq_status_t ctx_write_image(hq_inspector_context_t *ctx, const char *name, int width,
                                   int height, int channels, const uint8_t *pixels,
                                   const char *caption, hq_error_t *err)
{
    hq_diag_t *d = DIAG(ctx);
    char path[4096];
    hq_status_t st = file_path(d, name, path, sizeof path, err);
    if (st != HQ_OK)
        return st;
    if (width <= 0 || height <= 0 || width > 16384 || height > 16384 ||
        (channels != 1 && channels != 3) || !pixels)
        return hqi_error(err, HQ_ERR_ARGUMENT, "write_image %s: %dx%dx%d is not an image", name,
                         width, height, channels);
    const char *dot = strrchr(name, '.');
    hqi_buf_t buf = {0};
    int ok;
    if (dot && !strcmp(dot, ".png"))
        ok = stbi_write_png_to_func(append_to_buf, &buf, width, height, channels, pixels,
                                    width * channels);
    else if (dot && (!strcmp(dot, ".jpg") || !strcmp(dot, ".jpeg")))
        ok = stbi_write_jpg_to_func(append_to_buf, &buf, width, height, channels, pixels, 92);
    else
        return hqi_error(err, HQ_ERR_ARGUMENT, "write_image %s: name must end in .png or .jpg",
                         name);
    if (!ok || buf.failed) {
        hqi_buf_free(&buf);
        return hqi_error(err, HQ_ERR_NOMEM, "write_image %s: encoding failed", name);
    }
    st = hqi_write_file_atomic(path, buf.data, buf.len, err);
    hqi_buf_free(&buf);
    if (st == HQ_OK) {
        record_file(d, HOST(ctx)->module, name, caption ? caption : name, true);
        hqi_diag_event(d, HQ_DIAG_EVENT_LOG, HQ_DIAG_INFO,
                       hqi_diag_module_name(d, HOST(ctx)->module), "wrote %s", path);
    }
    return st;
}

/* ---- the run -------------------------------------------------------------------------------- */

static void fill_context(hq_inspector_context_t *ctx, host_t *host)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->abi_version = HQ_INSPECTOR_ABI_VERSION;
    ctx->struct_size = sizeof *ctx;
    ctx->host = host;
    ctx->net_name = ctx_net_name;
    ctx->model_state = ctx_model_state;
    ctx->hw_arch = ctx_hw_arch;
    ctx->archive = ctx_archive;
    ctx->graph = ctx_graph;
    ctx->layer_count = ctx_layer_count;
    ctx->layer = ctx_layer;
    ctx->find_layer = ctx_find_layer;
    ctx->topo_order = ctx_topo_order;
    ctx->inputs = ctx_inputs;
    ctx->outputs = ctx_outputs;
    ctx->params = ctx_params;
    ctx->layer_tensor = ctx_layer_tensor;
    ctx->layer_scalar = ctx_layer_scalar;
    ctx->script = ctx_script;
    ctx->find_command = ctx_find_command;
    ctx->command = ctx_command;
    ctx->has_dataset = ctx_has_dataset;
    ctx->sample_count = ctx_sample_count;
    ctx->dataset_path = ctx_dataset_path;
    ctx->dataset_input_count = ctx_dataset_input_count;
    ctx->dataset_input_shape = ctx_dataset_input_shape;
    ctx->dataset_input_layer = ctx_dataset_input_layer;
    ctx->dataset_input_dtype = ctx_dataset_input_dtype;
    ctx->read_samples = ctx_read_samples;
    ctx->stats_available = ctx_stats_available;
    ctx->layer_stats = ctx_layer_stats;
    ctx->layer_noise = ctx_layer_noise;
    ctx->output_sqnr = ctx_output_sqnr;
    ctx->emulate = ctx_emulate;
    ctx->emulate_inputs = ctx_emulate_inputs;
    ctx->diagnostic = ctx_diagnostic;
    ctx->diagnosticf = ctx_diagnosticf;
    ctx->recommend = ctx_recommend;
    ctx->skip = ctx_skip;
    ctx->log = ctx_log;
    ctx->interactive = ctx_interactive;
    ctx->ask_yes_no = ctx_ask_yes_no;
    ctx->ask_choice = ctx_ask_choice;
    ctx->output_dir = ctx_output_dir;
    ctx->write_file = ctx_write_file;
    ctx->write_image = ctx_write_image;
}

static bool is_quantized(const hq_diag_t *d)
{
    return hq_archive_state(d->archive) >= HQ_STATE_QUANTIZED &&
           hq_archive_has_params(d->archive, HQ_PARAMS_QUANTIZED);
}

/* Why an inspector with these needs cannot run here, or NULL. `buf` holds built reasons. */
static const char *unmet_need(hq_diag_t *d, uint32_t needs, char *buf, size_t size)
{
    const char *why;
    if ((needs & (HQ_NEEDS_DATASET | HQ_NEEDS_FLOAT_STATS | HQ_NEEDS_QUANTIZED_STATS |
                  HQ_NEEDS_RGB_IMAGES | HQ_NEEDS_NATIVE_STATS)) &&
        !d->dataset)
        return "no dataset given (use -d DATASET)";
    if ((needs & (HQ_NEEDS_QUANTIZED | HQ_NEEDS_QUANTIZED_STATS)) && !is_quantized(d))
        return "the model is not quantized";
    if ((needs & HQ_NEEDS_FP_OPTIMIZED) &&
        !hq_archive_has_params(d->archive, HQ_PARAMS_FP_OPTIMIZED))
        return "the archive has no fp-optimized params (run hq optimize)";
    if (needs & HQ_NEEDS_NOISE_ANALYSIS) {
        bool any = false;
        for (int l = 0; d->noise && l < hq_graph_layer_count(d->graph) && !any; l++)
            any = d->noise[l].noise.has_cumulative || d->noise[l].noise.has_partial;
        if (!any)
            return d->dataset ? "no noise analysis in the archive and none could be computed "
                                "(run hq analyze-noise)"
                              : "no noise analysis in the archive (run hq analyze-noise, or give "
                                "-d DATASET)";
    }
    if ((needs & HQ_NEEDS_FLOAT_STATS) && !d->stats[HQ_STATS_FLOAT].ran) {
        snprintf(buf, size, "float statistics unavailable: %s",
                 d->stats[HQ_STATS_FLOAT].why ? d->stats[HQ_STATS_FLOAT].why : "not computed");
        return buf;
    }
    if ((needs & HQ_NEEDS_QUANTIZED_STATS) && !d->stats[HQ_STATS_QUANTIZED].ran) {
        snprintf(buf, size, "quantized statistics unavailable: %s",
                 d->stats[HQ_STATS_QUANTIZED].why ? d->stats[HQ_STATS_QUANTIZED].why
                                                  : "not computed");
        return buf;
    }
    if ((needs & HQ_NEEDS_NATIVE_STATS) && !stats_set(d, HQ_STATS_NATIVE)->ran) {
        why = d->stats[HQ_STATS_NATIVE].why;
        snprintf(buf, size, "native statistics unavailable: %s", why ? why : "not computed");
        return buf;
    }
    if (needs & HQ_NEEDS_RGB_IMAGES) {
        hq_shape_t shape = hq_dataset_input_shape(d->dataset, 0);
        if (shape.ndim != 3 || shape.dims[2] != 3)
            return "the data is not 3-channel images";
        int layer = hq_dataset_input_layer(d->dataset, 0);
        const hqi_diag_stats_t *set = &d->stats[HQ_STATS_FLOAT];
        if (set->ran && layer >= 0 && set->stats[set->first[layer]].min < 0)
            return "the data has negative values, so it is not raw images";
    }
    return NULL;
}

/* True when a model-script line changes what the network sees at its input (a normalization
 * layer or an input conversion): every statistic of this run was measured before it. */
static bool changes_input(const char *line)
{
    if (strstr(line, "input_conversion("))
        return true;
    const char *p = strstr(line, "normalization(");
    return p && (p == line || p[-1] == ' ' || p[-1] == '=');
}

/* Offers the recommendation groups module `module` made, in the order of their first line. Once a
 * line that changes the input is accepted, the groups offered after it default to none/no: their
 * evidence (ranges, histograms, SQNR) was measured on the input as it was, and accepting them
 * together with the fix can undo it (a clipping range measured on un-normalized data). */
static void offer_groups(hq_diag_t *d, int module)
{
    static const char *const yes_no[] = {"y", "n"};
    static const char *const levels[] = {"none", "warning", "all"};
    const char *name = hqi_diag_module_name(d, module);
    for (int i = 0; i < d->rec_count; i++) {
        hqi_diag_rec_t *first = &d->recs[i];
        if (first->module != module || first->offered)
            continue;
        const char *question = NULL;
        for (int k = i; k < d->rec_count; k++) {
            hqi_diag_rec_t *r = &d->recs[k];
            if (r->module != module || strcmp(r->group, first->group))
                continue;
            r->offered = true;
            if (!question && r->question)
                question = r->question;
            hq_diag_event_t ev = {.kind = HQ_DIAG_EVENT_RECOMMENDATION,
                                  .level = r->level,
                                  .inspector = name,
                                  .text = r->line,
                                  .detail = r->reason};
            if (d->options.on_event)
                d->options.on_event(d->options.event_user, &ev);
        }
        bool stale = d->input_changed_by && !changes_input(first->line);
        if (stale)
            hqi_diag_event(d, HQ_DIAG_EVENT_MESSAGE, HQ_DIAG_WARNING, name,
                           "These lines were measured before the accepted `%s` changed the "
                           "input; they default to no: re-run hq optimize with the new script, "
                           "then hq-diag, to get them measured again",
                           d->input_changed_by);
        int answer;
        if (first->group_kind == HQ_GROUP_LEVELS) {
            int def =
                first->default_answer >= HQ_ACCEPT_NONE && first->default_answer <= HQ_ACCEPT_ALL
                    ? first->default_answer
                    : HQ_ACCEPT_WARNING;
            if (stale)
                def = HQ_ACCEPT_NONE;
            answer = ask(d, module,
                         question ? question : "Apply the recommended changes?",
                         levels, 3, def);
        } else {
            int def = first->default_answer == HQ_ANSWER_YES && !stale ? 0 : 1;
            answer = ask(d, module, question ? question : "Apply the recommended changes?", yes_no,
                         2, def) == 0
                         ? HQ_ACCEPT_ALL
                         : HQ_ACCEPT_NONE;
        }
        int accepted = 0, total = 0;
        for (int k = i; k < d->rec_count; k++) {
            hqi_diag_rec_t *r = &d->recs[k];
            if (r->module != module || strcmp(r->group, first->group))
                continue;
            total++;
            r->accepted = answer == HQ_ACCEPT_ALL ||
                          (answer == HQ_ACCEPT_WARNING && r->level >= HQ_DIAG_WARNING);
            accepted += r->accepted;
            if (r->accepted && !d->input_changed_by && changes_input(r->line))
                d->input_changed_by = r->line;
        }
        static const char *const answers[] = {"none", "warning", "all"};
        if (d->options.ask)
            hqi_diag_event(d, HQ_DIAG_EVENT_MESSAGE, HQ_DIAG_INFO, name,
                           "Accepted %d of %d recommended line(s)", accepted, total);
        else
            hqi_diag_event(d, HQ_DIAG_EVENT_MESSAGE, HQ_DIAG_INFO, name,
                           "Accepted %d of %d recommended line(s) (non-interactive default: %s)",
                           accepted, total,
                           first->group_kind == HQ_GROUP_LEVELS ? answers[answer]
                           : answer == HQ_ACCEPT_ALL            ? "yes"
                                                                : "no");
    }
}

hq_status_t hq_diag_run(hq_diag_t *diag, hq_error_t *err)
{
    hq_diag_t *d = diag;
    if (!d->archive)
        return hqi_error(err, HQ_ERR_STATE, "hq-diag: no model opened");
    if (d->ran)
        return hqi_error(err, HQ_ERR_STATE, "hq-diag: already ran");
    if (!is_quantized(d) && hq_diag_order_needs(d, HQ_NEEDS_QUANTIZED | HQ_NEEDS_QUANTIZED_STATS |
                                                       HQ_NEEDS_NOISE_ANALYSIS))
        return hqi_error(err, HQ_ERR_STATE, "Model is not quantized");
    d->ran = true;
    d->failed = calloc((size_t)d->module_count + 1, sizeof *d->failed);
    d->skipped = calloc((size_t)d->module_count + 1, sizeof *d->skipped);
    if (!d->failed || !d->skipped)
        return hqi_nomem(err, "hq-diag");
    hqi_diag_event(d, HQ_DIAG_EVENT_LOG, HQ_DIAG_INFO, NULL,
                   "model %s (network %s, state %s), dataset %s (%lld samples used)", d->model_path,
                   hq_archive_net_name(d->archive),
                   hq_model_state_name(hq_archive_state(d->archive)),
                   d->dataset ? d->dataset_path : "none", (long long)d->samples);
    hqi_diag_compute_stats(d);

    for (int i = 0; i < d->order_count; i++) {
        int m = d->order[i];
        const hq_inspector_t *desc = &d->modules[m].slots;
        char buf[1024];
        const char *why = unmet_need(d, desc->needs, buf, sizeof buf);
        if (why) {
            d->skipped[m] = hqi_strdup(why);
            hqi_diag_event(d, HQ_DIAG_EVENT_SKIP, HQ_DIAG_INFO, desc->name, "%s", why);
            continue;
        }
        hqi_diag_event(d, HQ_DIAG_EVENT_MODULE, HQ_DIAG_INFO, desc->name, "%s", desc->name);
        host_t host = {.diag = d, .module = m};
        hq_inspector_context_t ctx;
        fill_context(&ctx, &host);
        void *state = NULL;
        hq_error_t e = {0};
        hq_status_t st = HQ_OK;
        if (desc->init)
            st = desc->init(&ctx, &state, &e);
        if (st == HQ_OK) {
            st = desc->run(&ctx, state, &e);
            if (desc->fini)
                desc->fini(state);
        }
        if (st != HQ_OK) {
            d->failed[m] = true;
            char message[HQ_ERROR_MESSAGE_MAX + 128];
            snprintf(message, sizeof message, "Inspector %s failed: %s", desc->name,
                     e.message[0] ? e.message : hq_status_string(st));
            add_finding(d, m, HQ_DIAG_ERROR, -1, message, NULL, 0, 0);
        } else if (host.skip_reason) {
            d->skipped[m] = host.skip_reason;
            host.skip_reason = NULL;
            hqi_diag_event(d, HQ_DIAG_EVENT_SKIP, HQ_DIAG_INFO, desc->name, "%s", d->skipped[m]);
        }
        free(host.skip_reason);
        offer_groups(d, m);
    }
    return HQ_OK;
}

int hq_diag_finding_count(const hq_diag_t *diag, hq_diag_level_t level)
{
    int n = 0;
    for (int i = 0; i < diag->finding_count; i++)
        n += diag->findings[i].level == level;
    return n;
}

int hq_diag_failure_count(const hq_diag_t *diag)
{
    int n = 0;
    for (int i = 0; diag->failed && i < diag->module_count; i++)
        n += diag->failed[i];
    return n;
}

int hq_diag_recommendation_count(const hq_diag_t *diag)
{
    return diag->rec_count;
}

int hq_diag_accepted_count(const hq_diag_t *diag)
{
    int n = 0;
    for (int i = 0; i < diag->rec_count; i++)
        n += diag->recs[i].accepted;
    return n;
}

const char *hqi_diag_level_word(hq_diag_level_t level)
{
    return level_word(level);
}
