/* emulator.c — the float graph executor's life: create (params bound, layers prepared, fused
 * blocks and the buffer plan made, or the integer executor for the quantized target), destroy,
 * the target names and the accessors (sizes, threads, kernels, per-type times). Binding the
 * params is emulator_params.c's, the buffer plan and a run's layout emulator_plan.c's, running
 * emulator_run.c's; they share the state in emulator_internal.h. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emulate/emulator_internal.h"
#include "emulate/fuse.h"
#include "emulate/qemulator.h"
#include "hq/emulate.h"
#include "util/threadpool.h"
#include "util/util.h"

static const char *const target_names[HQ_TARGET_COUNT] = {
    [HQ_TARGET_NATIVE] = "native",
    [HQ_TARGET_FP_OPTIMIZED] = "fp_optimized",
    [HQ_TARGET_QUANTIZED] = "quantized",
};

HQ_API const char *hq_target_name(hq_target_t target)
{
    return (int)target >= 0 && target < HQ_TARGET_COUNT ? target_names[target] : NULL;
}

HQ_API hq_status_t hq_target_from_name(const char *name, hq_target_t *target)
{
    for (int t = 0; t < HQ_TARGET_COUNT; t++)
        if (name && !strcmp(name, target_names[t])) {
            *target = (hq_target_t)t;
            return HQ_OK;
        }
    return HQ_ERR_NOT_FOUND;
}

/* ---- create / destroy
 * -------------------------------------------------------------------- */

const hqi_emu_kernel_set_t *hqi_emu_ref_set(void)
{
    static const hqi_emu_kernel_set_t set = {"reference", hqi_emu_ref_kernels, NULL};
    return &set;
}

HQ_API hq_status_t hq_emulator_create(const hq_graph_t *graph, const hq_npz_t *params,
                                      hq_target_t target, const char *name, hq_emulator_t **out,
                                      hq_error_t *err)
{
    /* The reference set stays reachable for debugging a fast kernel from the command line. */
    const char *choice = getenv("HQ_EMULATE_KERNELS");
    const hqi_emu_kernel_set_t *set =
        choice && !strcmp(choice, "reference") ? hqi_emu_ref_set() : hqi_emu_fast_set();
    return hqi_emulator_create_with_set(graph, params, target, name, set, out, err);
}

hq_status_t hqi_emulator_create_with_kernels(const hq_graph_t *graph, const hq_npz_t *params,
                                             hq_target_t target, const char *name,
                                             const hqi_emu_kernel_fn *kernels, hq_emulator_t **out,
                                             hq_error_t *err)
{
    hqi_emu_kernel_set_t set = {"custom", kernels, NULL};
    hq_status_t st = hqi_emulator_create_with_set(graph, params, target, name, &set, out, err);
    if (st == HQ_OK) {
        (*out)->custom_set = set; /* the table is the caller's; the set struct is ours */
        (*out)->set = &(*out)->custom_set;
    }
    return st;
}

hq_status_t hqi_emulator_create_with_set(const hq_graph_t *graph, const hq_npz_t *params,
                                         hq_target_t target, const char *name,
                                         const hqi_emu_kernel_set_t *set, hq_emulator_t **out,
                                         hq_error_t *err)
{
    if (!out)
        return hqi_error(err, HQ_ERR_ARGUMENT, "emulator: out is NULL");
    *out = NULL;
    if (!name)
        name = "emulator";
    if (!set || !set->run)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: no kernel table", name);
    const hqi_emu_kernel_fn *kernels = set->run;
    if (!graph || !hq_graph_is_finalized(graph))
        return hqi_error(err, HQ_ERR_STATE, "%s: the graph is missing or not finalized", name);
    if (!hq_target_name(target))
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: unknown target %d", name, (int)target);
    hq_emulator_t *emu = calloc(1, sizeof *emu);
    if (!emu)
        return hqi_nomem(err, "emulator");
    emu->graph = graph;
    emu->target = target;
    emu->kernels = kernels;
    emu->set = set;
    emu->threads = hqi_default_threads();
    emu->layer_count = hq_graph_layer_count(graph);
    emu->name = hqi_strdup(name);
    emu->params = calloc((size_t)emu->layer_count + 1, sizeof *emu->params);
    emu->prepared = calloc((size_t)emu->layer_count + 1, sizeof *emu->prepared);
    hq_status_t st = emu->name && emu->params && emu->prepared ? HQ_OK : hqi_nomem(err, "emulator");
    if (st == HQ_OK && target == HQ_TARGET_QUANTIZED)
        st = hqi_qemu_create(graph, params, name, &emu->quant, err); /* integer params */
    else if (st == HQ_OK)
        st = hqi_emu_bind_params(emu, params, err);
    if (st == HQ_OK && emu->quant)
        hqi_qemu_time_layers(emu->quant, emu->type_seconds, emu->type_calls);
    if (st == HQ_OK && !emu->quant)
        st = hqi_emu_prepare_layers(emu, err);
    const char *no_fuse = getenv("HQ_EMULATE_NO_FUSE");
    if (st == HQ_OK && !emu->quant && set == hqi_emu_fast_set() && !(no_fuse && no_fuse[0] == '1'))
        st = hqi_fuse_plan_create(graph, emu->params, emu->prepared, &emu->fuse, err);
    if (st == HQ_OK)
        st = hqi_emu_plan(emu, err);
    if (st != HQ_OK) {
        hq_emulator_destroy(emu);
        return st;
    }
    *out = emu;
    return HQ_OK;
}

HQ_API hq_status_t hq_emulator_create_from_archive(hq_archive_t *archive, hq_target_t target,
                                                   hq_emulator_t **out, hq_error_t *err)
{
    if (out)
        *out = NULL;
    if (!archive)
        return hqi_error(err, HQ_ERR_ARGUMENT, "emulator: archive is NULL");
    static const struct {
        hq_params_kind_t kind;
        const char *suffix;
    } kinds[HQ_TARGET_COUNT] = {
        [HQ_TARGET_NATIVE] = {HQ_PARAMS_NATIVE, "npz"},
        [HQ_TARGET_FP_OPTIMIZED] = {HQ_PARAMS_FP_OPTIMIZED, "fpo.npz"},
        [HQ_TARGET_QUANTIZED] = {HQ_PARAMS_QUANTIZED, "q.npz"},
    };
    const char *path = hq_archive_path(archive);
    if (!path || !path[0])
        path = hq_archive_net_name(archive);
    if (!hq_target_name(target))
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: unknown target %d", path, (int)target);
    if (!hq_archive_has_params(archive, kinds[target].kind))
        return hqi_error(err, HQ_ERR_NOT_FOUND,
                         "%s: target %s needs member '%s.%s', which the archive lacks%s", path,
                         hq_target_name(target), hq_archive_net_name(archive), kinds[target].suffix,
                         target != HQ_TARGET_NATIVE ? " (run hq optimize first)" : "");
    hq_graph_t *graph = NULL;
    hq_npz_t *params = NULL;
    hq_status_t st = hq_archive_graph(archive, &graph, err);
    if (st == HQ_OK)
        st = hq_archive_params(archive, kinds[target].kind, &params, err);
    if (st != HQ_OK)
        return st;
    char name[1024];
    snprintf(name, sizeof name, "%s: %s.%s", path, hq_archive_net_name(archive),
             kinds[target].suffix);
    return hq_emulator_create(graph, params, target, name, out, err);
}

HQ_API void hq_emulator_destroy(hq_emulator_t *emulator)
{
    if (!emulator)
        return;
    hqi_emu_release_slots(emulator);
    hqi_qemu_destroy(emulator->quant);
    hqi_fuse_plan_destroy(emulator->fuse);
    hqi_threadpool_destroy(emulator->pool);
    free(emulator->scratch);
    for (int i = 0; emulator->prepared && i < emulator->layer_count; i++)
        if (emulator->prepared[i].release)
            emulator->prepared[i].release(emulator->prepared[i].state);
    free(emulator->prepared);
    for (int i = 0; i < emulator->converted_count; i++)
        hq_tensor_destroy(emulator->converted[i]);
    free(emulator->converted);
    free(emulator->slot_data);
    free(emulator->slot_size);
    free(emulator->values);
    free(emulator->first_value);
    free(emulator->params);
    free(emulator->name);
    free(emulator);
}

HQ_API const hq_graph_t *hq_emulator_graph(const hq_emulator_t *emulator)
{
    return emulator ? emulator->graph : NULL;
}

HQ_API hq_target_t hq_emulator_target(const hq_emulator_t *emulator)
{
    return emulator ? emulator->target : HQ_TARGET_NATIVE;
}

static int64_t layer_size(const hq_emulator_t *emulator, const int *layers, int count, int index)
{
    if (!emulator || !layers || index < 0 || index >= count)
        return 0;
    return emulator->values[emulator->first_value[layers[index]]].size;
}

HQ_API int64_t hq_emulator_input_size(const hq_emulator_t *emulator, int input)
{
    int count = 0;
    const int *layers = emulator ? hq_graph_inputs(emulator->graph, &count) : NULL;
    return layer_size(emulator, layers, count, input);
}

HQ_API int64_t hq_emulator_output_size(const hq_emulator_t *emulator, int output)
{
    int count = 0;
    const int *layers = emulator ? hq_graph_outputs(emulator->graph, &count) : NULL;
    return layer_size(emulator, layers, count, output);
}

HQ_API hq_status_t hq_emulator_set_threads(hq_emulator_t *emulator, int threads, hq_error_t *err)
{
    if (!emulator)
        return hqi_error(err, HQ_ERR_ARGUMENT, "emulator: NULL emulator");
    if (threads < 0 || threads > HQI_THREADS_MAX)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: %d threads, need 1 to %d (0 = default)",
                         emulator->name, threads, HQI_THREADS_MAX);
    if (threads == 0)
        threads = hqi_default_threads();
    if (threads != emulator->threads) {
        hqi_threadpool_destroy(emulator->pool);
        emulator->pool = NULL;
        emulator->threads = threads;
    }
    if (emulator->quant) /* the integer kernels split batches by sample: same bytes at any count */
        return hqi_qemu_set_threads(emulator->quant, threads, err);
    return HQ_OK;
}

HQ_API int hq_emulator_threads(const hq_emulator_t *emulator)
{
    return emulator ? emulator->threads : 0;
}

HQ_API const char *hq_emulator_kernels(const hq_emulator_t *emulator)
{
    if (!emulator)
        return "none";
    if (emulator->set == hqi_emu_fast_set())
        return hqi_emu_fast_description();
    return emulator->set->name;
}

HQ_API double hq_emulator_type_seconds(const hq_emulator_t *emulator, hq_layer_type_t type,
                                       int64_t *calls)
{
    bool known = emulator && (int)type >= 0 && type < HQ_LAYER_TYPE_COUNT;
    if (calls)
        *calls = known ? emulator->type_calls[type] : 0;
    return known ? emulator->type_seconds[type] : 0.0;
}

HQ_API void hq_emulator_reset_stats(hq_emulator_t *emulator)
{
    if (!emulator)
        return;
    memset(emulator->type_seconds, 0, sizeof emulator->type_seconds);
    memset(emulator->type_calls, 0, sizeof emulator->type_calls);
}
