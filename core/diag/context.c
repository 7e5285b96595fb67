/* context.c — the inspector context: the API table of inspector.h that hq-diag hands each
 * inspector. Every slot reads the run's model, dataset and statistics, or copies what the
 * inspector emits (findings, recommendations, files) into the run's state. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <stb_image_write.h>

#include "diag/diag_internal.h"
#include "script/script_query.h"
#include "util/util.h"

#define HOST(ctx) ((hqi_diag_host_t *)(ctx)->host)
#define DIAG(ctx) (HOST(ctx)->diag)

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
static const void *ctx_layer_v1(hq_inspector_context_t *ctx, int index)
{
    return hqi_diag_layer_1_0(DIAG(ctx), index);
}
static bool ctx_layer_info(hq_inspector_context_t *ctx, int index, hq_inspector_layer_t *layer)
{
    return hqi_diag_layer_info(DIAG(ctx)->graph, index, layer);
}
static bool ctx_layer_params(hq_inspector_context_t *ctx, int index, hq_inspector_params_t *params)
{
    return hqi_diag_layer_params(DIAG(ctx)->graph, index, params);
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
static const char *ctx_validation_path(hq_inspector_context_t *ctx)
{
    return hqi_diag_validation_path(DIAG(ctx));
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
const hqi_diag_stats_t *hqi_diag_stats_set(const hq_diag_t *d, hq_stats_target_t target)
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
    const hqi_diag_stats_t *set = hqi_diag_stats_set(DIAG(ctx), target);
    if (set && set->ran)
        return true;
    if (why)
        *why = set && set->why ? set->why : "not computed";
    return false;
}

static const hq_layer_stats_t *ctx_layer_stats(hq_inspector_context_t *ctx,
                                               hq_stats_target_t target, int layer, int port)
{
    const hqi_diag_stats_t *set = hqi_diag_stats_set(DIAG(ctx), target);
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

void hqi_diag_add_finding(hq_diag_t *d, int module, hq_diag_level_t level, int layer,
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
    if (!hqi_diag_finding_folds(d, module, level, layer)) /* folded ones: hqi_diag_fold_findings */
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
    hqi_diag_add_finding(DIAG(ctx), HOST(ctx)->module, v.level, v.layer, v.message, v.numbers,
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
    hqi_diag_add_finding(DIAG(ctx), HOST(ctx)->module, level, layer, message, NULL, 0, 0);
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
    /* a line hq optimize would refuse (a misspelt command or key) is no recommendation */
    if (st == HQ_OK)
        st = hqi_script_check_command(command, "recommended line", NULL, NULL, NULL, err);
    char *canonical = NULL;
    if (st == HQ_OK)
        st = hq_command_print(command, &canonical, err);
    bool held = st == HQ_OK && hqi_diag_script_holds(d, command);
    hq_script_destroy(one);
    if (st != HQ_OK)
        return st;
    /* the script already says it: offering it again would only repeat the line */
    if (held) {
        hqi_diag_event(d, HQ_DIAG_EVENT_LOG, HQ_DIAG_INFO,
                       hqi_diag_module_name(d, HOST(ctx)->module),
                       "not recommended again, the model script holds it: %s", canonical);
        free(canonical);
        return HQ_OK;
    }
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

int hqi_diag_ask(hq_diag_t *d, int module, const char *question, const char *const *choices,
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
    return hqi_diag_ask(DIAG(ctx), HOST(ctx)->module, question ? question : "Continue?", yes_no,
                        2, default_yes ? 0 : 1) == 0;
}

static int ctx_ask_choice(hq_inspector_context_t *ctx, const char *question,
                          const char *const *choices, int count, int default_index)
{
    if (!choices || count <= 0)
        return -1;
    return hqi_diag_ask(DIAG(ctx), HOST(ctx)->module, question ? question : "Choose", choices,
                        count, default_index);
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
    /* the folder is made on the first file: a run that writes none leaves no empty folder */
    if (mkdir(d->output_dir, 0777) != 0 && errno != EEXIST)
        return hqi_error(err, HQ_ERR_IO, "%s: cannot make the output folder: %s", d->output_dir,
                         strerror(errno));
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

/* ---- the table ------------------------------------------------------------------------------ */

void hqi_diag_fill_context(hq_inspector_context_t *ctx, hqi_diag_host_t *host)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->abi_version = HQ_INSPECTOR_ABI_MAJOR;
    ctx->struct_size = sizeof *ctx;
    ctx->host = host;
    ctx->net_name = ctx_net_name;
    ctx->model_state = ctx_model_state;
    ctx->hw_arch = ctx_hw_arch;
    ctx->archive = ctx_archive;
    ctx->graph = ctx_graph;
    ctx->layer_count = ctx_layer_count;
    ctx->layer_v1 = ctx_layer_v1;
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
    ctx->layer_info = ctx_layer_info;
    ctx->layer_params = ctx_layer_params;
    ctx->validation_path = ctx_validation_path;
}
