/* loader.c — the hq-diag runner's lifetime and its plugin loader: dlopen()s inspector modules,
 * refuses bad ones with a specific reason (collectd style: say why and what to check), and keeps
 * the run order (priority, then name; or exactly what --order says). */
#include <dirent.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "diag/diag_internal.h"
#include "util/util.h"

void hqi_diag_event(hq_diag_t *diag, hq_diag_event_kind_t kind, hq_diag_level_t level,
                    const char *inspector, const char *fmt, ...)
{
    if (!diag->options.on_event)
        return;
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    hq_diag_event_t event = {.kind = kind, .level = level, .inspector = inspector, .text = text};
    diag->options.on_event(diag->options.event_user, &event);
}

const char *hqi_diag_module_name(const hq_diag_t *diag, int module)
{
    return module >= 0 && module < diag->module_count ? diag->modules[module].slots.name
                                                      : "hq-diag";
}

hq_status_t hq_diag_create(const hq_diag_options_t *options, hq_diag_t **out, hq_error_t *err)
{
    *out = NULL;
    hq_diag_t *diag = calloc(1, sizeof *diag);
    if (!diag)
        return hqi_nomem(err, "hq-diag");
    if (options)
        diag->options = *options;
    if (diag->options.sample_count <= 0)
        diag->options.sample_count = 64;
    if (diag->options.batch_size <= 0)
        diag->options.batch_size = 8;
    diag->hw_arch = options && options->hw_arch ? hqi_strdup(options->hw_arch) : NULL;
    diag->output_dir = hqi_strdup(options && options->output_dir ? options->output_dir : ".");
    if (!diag->output_dir || (options && options->hw_arch && !diag->hw_arch)) {
        hq_diag_destroy(diag);
        return hqi_nomem(err, "hq-diag");
    }
    size_t n = strlen(diag->output_dir);
    while (n > 1 && diag->output_dir[n - 1] == '/')
        diag->output_dir[--n] = '\0';
    diag->options.hw_arch = diag->hw_arch;
    diag->options.output_dir = diag->output_dir;
    *out = diag;
    return HQ_OK;
}

static void free_findings(hq_diag_t *diag)
{
    for (int i = 0; i < diag->finding_count; i++) {
        free(diag->findings[i].message);
        for (int k = 0; k < diag->findings[i].number_count; k++)
            free(diag->findings[i].numbers[k].name);
        free(diag->findings[i].numbers);
    }
    free(diag->findings);
    free(diag->verdict_summary);
    for (int i = 0; i < diag->rec_count; i++) {
        free(diag->recs[i].line);
        free(diag->recs[i].reason);
        free(diag->recs[i].group);
        free(diag->recs[i].question);
    }
    free(diag->recs);
    for (int i = 0; i < diag->file_count; i++) {
        free(diag->files[i].name);
        free(diag->files[i].caption);
    }
    free(diag->files);
}

void hq_diag_destroy(hq_diag_t *diag)
{
    if (!diag)
        return;
    free_findings(diag);
    hqi_diag_free_stats(diag);
    hqi_diag_free_reference(diag->reference);
    hqi_diag_free_verify(diag->verify);
    for (size_t t = 0; t < sizeof diag->emulators / sizeof diag->emulators[0]; t++)
        hq_emulator_destroy(diag->emulators[t]);
    hq_dataset_destroy(diag->dataset);
    hqi_diag_free_layers_1_0(diag->layers_1_0);
    hq_archive_destroy(diag->archive);
    for (int i = 0; i < diag->module_count; i++) {
        free(diag->modules[i].path);
        /* Modules stay mapped under sanitizers so that leak reports can name their frames. */
        if (diag->modules[i].handle && !getenv("HQ_DIAG_NO_DLCLOSE"))
            dlclose(diag->modules[i].handle);
    }
    if (diag->skipped)
        for (int i = 0; i < diag->module_count; i++)
            free(diag->skipped[i]);
    free(diag->skipped);
    free(diag->failed);
    free(diag->modules);
    free(diag->order);
    free(diag->model_path);
    free(diag->dataset_path);
    free(diag->hw_arch);
    free(diag->output_dir);
    free(diag);
}

/* Default order: priority, then name (case-insensitive), then load order. */
static const hq_diag_t *sort_diag;
static int by_priority_then_name(const void *pa, const void *pb)
{
    const hq_inspector_t *a = &sort_diag->modules[*(const int *)pa].slots;
    const hq_inspector_t *b = &sort_diag->modules[*(const int *)pb].slots;
    if (a->priority != b->priority)
        return a->priority < b->priority ? -1 : 1;
    int c = strcasecmp(a->name, b->name);
    return c ? c : *(const int *)pa - *(const int *)pb;
}

static void default_order(hq_diag_t *diag)
{
    diag->order_count = diag->module_count;
    for (int i = 0; i < diag->module_count; i++)
        diag->order[i] = i;
    sort_diag = diag;
    qsort(diag->order, (size_t)diag->order_count, sizeof *diag->order, by_priority_then_name);
    sort_diag = NULL;
}

static bool valid_name(const char *name)
{
    if (!name || !name[0] || strlen(name) > 64)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return false;
    return true;
}

/* Same name ignoring case and an "Inspector" suffix on either side. */
static bool same_name(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), ls = strlen("Inspector");
    if (la > ls && !strcasecmp(a + la - ls, "Inspector"))
        la -= ls;
    if (lb > ls && !strcasecmp(b + lb - ls, "Inspector"))
        lb -= ls;
    return la == lb && !strncasecmp(a, b, la);
}

hq_status_t hq_diag_load_plugin(hq_diag_t *diag, const char *path, hq_error_t *err)
{
    dlerror();
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *why = dlerror();
        return hqi_error(err, HQ_ERR_IO,
                         "%s: cannot load inspector module: %s (check `ldd %s` for missing "
                         "libraries and that it was built for this machine)",
                         path, why ? why : "unknown dlopen error", path);
    }
    dlerror();
    void *symbol = dlsym(handle, HQ_INSPECTOR_ENTRY_SYMBOL);
    const char *why = dlerror();
    if (!symbol || why) {
        dlclose(handle);
        return hqi_error(err, HQ_ERR_NOT_FOUND,
                         "%s: not an inspector module: no exported symbol '%s' (declare it with "
                         "HQ_INSPECTOR_EXPORT, see hq-inspector(3))",
                         path, HQ_INSPECTOR_ENTRY_SYMBOL);
    }
    hq_inspector_entry_fn entry;
    memcpy(&entry, &symbol, sizeof entry); /* object-to-function pointer, as POSIX allows */
    const hq_inspector_t *desc = entry();
    hq_status_t st = HQ_OK;
    if (!desc) {
        st = hqi_error(err, HQ_ERR_INVALID, "%s: %s() returned a NULL descriptor", path,
                       HQ_INSPECTOR_ENTRY_SYMBOL);
    } else if (HQ_INSPECTOR_ABI_MAJOR_OF(desc->abi_version) != HQ_INSPECTOR_ABI_MAJOR) {
        st = hqi_error(err, HQ_ERR_UNSUPPORTED,
                       "%s: inspector ABI version %u, but this hq-diag speaks version %u "
                       "(rebuild the module against this hq's inspector.h)",
                       path, (unsigned)HQ_INSPECTOR_ABI_MAJOR_OF(desc->abi_version),
                       HQ_INSPECTOR_ABI_MAJOR);
    } else if (HQ_INSPECTOR_ABI_MINOR_OF(desc->abi_version) > HQ_INSPECTOR_ABI_MINOR) {
        st = hqi_error(err, HQ_ERR_UNSUPPORTED,
                       "%s: inspector ABI version %u.%u, newer than this hq-diag's %u.%u (update "
                       "hq, or rebuild the module against this hq's inspector.h)",
                       path, (unsigned)HQ_INSPECTOR_ABI_MAJOR_OF(desc->abi_version),
                       (unsigned)HQ_INSPECTOR_ABI_MINOR_OF(desc->abi_version),
                       HQ_INSPECTOR_ABI_MAJOR, HQ_INSPECTOR_ABI_MINOR);
    } else if (desc->struct_size < offsetof(hq_inspector_t, fini) + sizeof desc->fini) {
        st = hqi_error(err, HQ_ERR_UNSUPPORTED,
                       "%s: descriptor struct_size %u is smaller than the version-1.0 descriptor "
                       "(%zu bytes)",
                       path, (unsigned)desc->struct_size,
                       offsetof(hq_inspector_t, fini) + sizeof desc->fini);
    } else if (!valid_name(desc->name)) {
        st = hqi_error(err, HQ_ERR_INVALID,
                       "%s: descriptor name is missing or not made of letters, digits, '_', '-', "
                       "'.' (at most 64)",
                       path);
    } else if (!desc->run) {
        st = hqi_error(err, HQ_ERR_INVALID, "%s: inspector '%s' has no run function", path,
                       desc->name);
    } else if ((int)desc->priority < HQ_PRIORITY_HIGH || desc->priority > HQ_PRIORITY_LOW) {
        st = hqi_error(err, HQ_ERR_INVALID, "%s: inspector '%s' has priority %d (0..2 expected)",
                       path, desc->name, (int)desc->priority);
    } else {
        for (int i = 0; i < diag->module_count; i++)
            if (same_name(diag->modules[i].slots.name, desc->name)) {
                st = hqi_error(err, HQ_ERR_INVALID,
                               "%s: duplicate inspector name '%s' (already loaded from %s)", path,
                               desc->name, diag->modules[i].path);
                break;
            }
    }
    if (st != HQ_OK) {
        dlclose(handle);
        return st;
    }
    hqi_diag_module_t *modules =
        realloc(diag->modules, (size_t)(diag->module_count + 1) * sizeof *modules);
    if (!modules) {
        dlclose(handle);
        return hqi_nomem(err, path);
    }
    diag->modules = modules;
    int *order = realloc(diag->order, (size_t)(diag->module_count + 1) * sizeof *order);
    if (!order) {
        dlclose(handle);
        return hqi_nomem(err, path);
    }
    diag->order = order;
    hqi_diag_module_t *m = &diag->modules[diag->module_count];
    memset(m, 0, sizeof *m);
    m->path = hqi_strdup(path);
    if (!m->path) {
        dlclose(handle);
        return hqi_nomem(err, path);
    }
    m->handle = handle;
    m->desc = desc;
    size_t known = desc->struct_size < sizeof m->slots ? desc->struct_size : sizeof m->slots;
    memcpy(&m->slots, desc, known);
    diag->module_count++;
    if (!diag->order_explicit)
        default_order(diag);
    hqi_diag_event(diag, HQ_DIAG_EVENT_LOG, HQ_DIAG_INFO, NULL, "loaded inspector %s from %s",
                   desc->name, path);
    return HQ_OK;
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

hq_status_t hq_diag_load_plugins(hq_diag_t *diag, const char *dir, bool required, hq_error_t *err)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (!required)
            return HQ_OK;
        return hqi_error(err, HQ_ERR_NOT_FOUND, "%s: cannot open plugin folder", dir);
    }
    char **names = NULL;
    size_t count = 0, cap = 0;
    hq_status_t st = HQ_OK;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 3, ".so"))
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown) {
                st = hqi_nomem(err, dir);
                break;
            }
            names = grown;
        }
        if (!(names[count] = hqi_strdup(e->d_name))) {
            st = hqi_nomem(err, dir);
            break;
        }
        count++;
    }
    closedir(d);
    if (st == HQ_OK && count > 1)
        qsort(names, count, sizeof *names, by_string);
    for (size_t i = 0; i < count && st == HQ_OK; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        hq_error_t why = {0};
        if (hq_diag_load_plugin(diag, path, &why) != HQ_OK) {
            if (why.status == HQ_ERR_NOMEM) {
                st = hqi_error(err, HQ_ERR_NOMEM, "%s", why.message);
                break;
            }
            hqi_diag_event(diag, HQ_DIAG_EVENT_MESSAGE, HQ_DIAG_WARNING, NULL, "Refused plugin %s",
                           why.message);
        }
    }
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    return st;
}

int hq_diag_inspector_count(const hq_diag_t *diag)
{
    return diag->order_count;
}

const hq_inspector_t *hq_diag_inspector(const hq_diag_t *diag, int index)
{
    return index >= 0 && index < diag->order_count ? &diag->modules[diag->order[index]].slots
                                                   : NULL;
}

const char *hq_diag_inspector_path(const hq_diag_t *diag, int index)
{
    return index >= 0 && index < diag->order_count ? diag->modules[diag->order[index]].path : NULL;
}

hq_status_t hq_diag_set_order(hq_diag_t *diag, const char *const *names, int count, hq_error_t *err)
{
    int *order = malloc((size_t)(count > 0 ? count : 1) * sizeof *order);
    if (!order)
        return hqi_nomem(err, "--order");
    for (int i = 0; i < count; i++) {
        int found = -1;
        for (int m = 0; m < diag->module_count && found < 0; m++)
            if (same_name(diag->modules[m].slots.name, names[i]))
                found = m;
        for (int k = 0; k < i && found >= 0; k++)
            if (order[k] == found) {
                free(order);
                return hqi_error(err, HQ_ERR_ARGUMENT, "--order: inspector '%s' given twice",
                                 names[i]);
            }
        if (found < 0) {
            hqi_buf_t known = {0};
            int *sorted = malloc((size_t)(diag->module_count + 1) * sizeof *sorted);
            if (sorted) {
                for (int m = 0; m < diag->module_count; m++)
                    sorted[m] = m;
                sort_diag = diag;
                qsort(sorted, (size_t)diag->module_count, sizeof *sorted, by_priority_then_name);
                sort_diag = NULL;
                for (int m = 0; m < diag->module_count; m++)
                    hqi_buf_printf(&known, "%s%s", m ? ", " : "",
                                   diag->modules[sorted[m]].slots.name);
                free(sorted);
            }
            hqi_buf_zeros(&known, 1);
            hq_status_t st = hqi_error(
                err, HQ_ERR_NOT_FOUND, "--order: unknown inspector '%s'; known inspectors: %s",
                names[i], known.data && known.data[0] ? (char *)known.data : "(none loaded)");
            hqi_buf_free(&known);
            free(order);
            return st;
        }
        order[i] = found;
    }
    free(diag->order);
    diag->order = order;
    diag->order_count = count;
    diag->order_explicit = true;
    return HQ_OK;
}

bool hq_diag_order_needs(const hq_diag_t *diag, uint32_t needs)
{
    for (int i = 0; i < diag->order_count; i++)
        if (diag->modules[diag->order[i]].slots.needs & needs)
            return true;
    return false;
}
