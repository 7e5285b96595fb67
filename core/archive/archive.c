/* archive.c — the model archive (.har): members held in memory, metadata parsed on open, graph,
 * params and script decoded lazily, and a save that re-encodes only what was decoded or changed
 * (everything else, unknown members included, is written back byte for byte). */
#include "hq/archive.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/tar.h"
#include "util/util.h"

/* The members hq interprets, in the order save writes them (after the metadata). */
typedef enum slot { SLOT_HN = 0, SLOT_NPZ, SLOT_FPO, SLOT_Q, SLOT_ALLS, SLOT_COUNT } slot_t;

static const char *const SLOT_SUFFIX[SLOT_COUNT] = {".hn", ".npz", ".fpo.npz", ".q.npz", ".alls"};
static const char METADATA_SUFFIX[] = ".metadata.json";

static const char *const STATE_NAMES[] = {
    [HQ_STATE_PARSED] = "parsed_model",
    [HQ_STATE_FP_OPTIMIZED] = "fp_optimized_model",
    [HQ_STATE_QUANTIZED] = "quantized_model",
    [HQ_STATE_COMPILED] = "compiled_model",
};
#define STATE_COUNT ((int)(sizeof STATE_NAMES / sizeof STATE_NAMES[0]))

#define NET_NAME_MAX 255

struct hq_archive {
    char *path;     /* the path or name opened from; "" when created */
    char *net_name; /* network name, from the metadata member's name */
    hq_model_state_t state;
    char *hw_arch;                /* "" when the metadata has none */
    char *writer_version;         /* metadata "hq_version"; "" when absent */
    cJSON *metadata;              /* the metadata object as read (unknown keys kept); or NULL */
    char *metadata_name;          /* "<net>.metadata.json" */
    char *slot_names[SLOT_COUNT]; /* member names: metadata "hn" or "<net>.hn", "<net>.npz", ... */

    hqi_tar_member_t *entries; /* raw members in the order read (or added), owned */
    size_t entry_count, entry_cap;

    bool decoded[SLOT_COUNT]; /* the slot is held decoded; its raw bytes are not written */
    hq_graph_t *graph;        /* SLOT_HN when decoded (NULL: absent) */
    hq_npz_t *params[3];      /* SLOT_NPZ + kind when decoded (NULL: absent) */
    hq_script_t *script;      /* SLOT_ALLS when decoded */
    bool modified;            /* anything decoded or changed: save re-encodes the metadata */
};

/* ---- small helpers ------------------------------------------------------------------------ */

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static char *concat(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *out = malloc(na + nb + 1);
    if (out) {
        memcpy(out, a, na);
        memcpy(out + na, b, nb + 1);
    }
    return out;
}

/* "m.har:net.hn": the name handed to the graph, npz and script decoders for their errors. */
static char *member_label(const hq_archive_t *a, const char *member)
{
    size_t n = strlen(a->path) + 1 + strlen(member) + 1;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s:%s", a->path[0] ? a->path : a->net_name, member);
    return out;
}

static const char *archive_label(const hq_archive_t *a)
{
    return a->path[0] ? a->path : a->net_name;
}

static ptrdiff_t find_entry(const hq_archive_t *a, const char *name)
{
    for (size_t i = 0; i < a->entry_count; i++)
        if (strcmp(a->entries[i].name, name) == 0)
            return (ptrdiff_t)i;
    return -1;
}

static bool is_known_name(const hq_archive_t *a, const char *name)
{
    if (strcmp(name, a->metadata_name) == 0)
        return true;
    for (int s = 0; s < SLOT_COUNT; s++)
        if (strcmp(name, a->slot_names[s]) == 0)
            return true;
    return false;
}

static void remove_entry(hq_archive_t *a, const char *name)
{
    ptrdiff_t i = find_entry(a, name);
    if (i < 0)
        return;
    free(a->entries[i].name);
    free(a->entries[i].data);
    memmove(&a->entries[i], &a->entries[i + 1],
            (a->entry_count - (size_t)i - 1) * sizeof *a->entries);
    a->entry_count--;
}

/* Frees the decoded object of a slot and forgets that it was decoded. */
static void drop_decoded(hq_archive_t *a, slot_t s)
{
    switch (s) {
    case SLOT_HN:
        hq_graph_destroy(a->graph);
        a->graph = NULL;
        break;
    case SLOT_NPZ:
    case SLOT_FPO:
    case SLOT_Q:
        hq_npz_destroy(a->params[s - SLOT_NPZ]);
        a->params[s - SLOT_NPZ] = NULL;
        break;
    case SLOT_ALLS:
        hq_script_destroy(a->script);
        a->script = NULL;
        break;
    case SLOT_COUNT:
        break;
    }
    a->decoded[s] = false;
}

/* Whether save writes the slot. */
static bool slot_present(const hq_archive_t *a, slot_t s)
{
    bool raw = find_entry(a, a->slot_names[s]) >= 0;
    if (!a->decoded[s])
        return raw;
    switch (s) {
    case SLOT_HN:
        return a->graph != NULL;
    case SLOT_ALLS:
        return a->script && (raw || hq_script_command_count(a->script) > 0);
    case SLOT_COUNT:
        return false;
    default:
        return a->params[s - SLOT_NPZ] != NULL;
    }
}

static hq_status_t set_names(hq_archive_t *a, const char *net, const char *hn, hq_error_t *err)
{
    a->net_name = hqi_strdup(net);
    a->metadata_name = concat(net, METADATA_SUFFIX);
    if (!a->net_name || !a->metadata_name)
        return hqi_nomem(err, net);
    for (int s = 0; s < SLOT_COUNT; s++) {
        a->slot_names[s] = (s == SLOT_HN && hn) ? hqi_strdup(hn) : concat(net, SLOT_SUFFIX[s]);
        if (!a->slot_names[s])
            return hqi_nomem(err, net);
    }
    return HQ_OK;
}

static hq_archive_t *archive_new(void)
{
    hq_archive_t *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->path = hqi_strdup("");
    a->hw_arch = hqi_strdup("");
    a->writer_version = hqi_strdup("");
    if (!a->path || !a->hw_arch || !a->writer_version) {
        hq_archive_destroy(a);
        return NULL;
    }
    return a;
}

HQ_API void hq_archive_destroy(hq_archive_t *archive)
{
    if (!archive)
        return;
    for (int s = 0; s < SLOT_COUNT; s++) {
        drop_decoded(archive, (slot_t)s);
        free(archive->slot_names[s]);
    }
    hqi_tar_t tar = {archive->entry_count, archive->entries};
    hqi_tar_free(&tar);
    cJSON_Delete(archive->metadata);
    free(archive->path);
    free(archive->net_name);
    free(archive->hw_arch);
    free(archive->writer_version);
    free(archive->metadata_name);
    free(archive);
}

HQ_API const char *hq_model_state_name(hq_model_state_t state)
{
    if ((int)state < 0 || (int)state >= STATE_COUNT)
        return "unknown";
    return STATE_NAMES[state];
}

static bool valid_net_name(const char *net)
{
    size_t n = strlen(net);
    if (n == 0 || n > NET_NAME_MAX)
        return false;
    for (const char *p = net; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '/')
            return false;
    return true;
}

/* ---- opening ------------------------------------------------------------------------------ */

/* Line and column (1-based) of byte `offset` in `text`. */
static void line_column(const char *text, size_t offset, size_t *line, size_t *column)
{
    *line = 1;
    *column = 1;
    for (size_t i = 0; i < offset; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *column = 1;
        } else {
            (*column)++;
        }
    }
}

/* An optional string key of the metadata: NULL when absent, an error when not a string. */
static hq_status_t metadata_string(const hq_archive_t *a, const cJSON *meta, const char *key,
                                   const char **out, hq_error_t *err)
{
    *out = NULL;
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(meta, key);
    if (!item)
        return HQ_OK;
    if (!cJSON_IsString(item) || !item->valuestring)
        return hqi_error(err, HQ_ERR_FORMAT, "%s: member '%s': key '%s' is not a string", a->path,
                         a->metadata_name, key);
    *out = item->valuestring;
    return HQ_OK;
}

static hq_status_t parse_metadata(hq_archive_t *a, const hqi_tar_member_t *m, hq_error_t *err)
{
    const char *text = (const char *)m->data;
    const char *end = NULL;
    cJSON *meta = cJSON_ParseWithLengthOpts(text, m->size, &end, false);
    size_t stop = (end && end >= text && end <= text + m->size) ? (size_t)(end - text) : 0;
    if (meta) {
        while (stop < m->size && (text[stop] == ' ' || text[stop] == '\n' || text[stop] == '\r' ||
                                  text[stop] == '\t'))
            stop++;
        if (stop < m->size) {
            cJSON_Delete(meta);
            meta = NULL; /* text after the JSON value */
        }
    }
    if (!meta) {
        size_t line, column;
        line_column(text, stop, &line, &column);
        return hqi_error(err, HQ_ERR_FORMAT,
                         "%s: member '%s': JSON syntax error at line %zu, "
                         "column %zu",
                         a->path, m->name, line, column);
    }
    a->metadata = meta;
    if (!cJSON_IsObject(meta))
        return hqi_error(err, HQ_ERR_FORMAT, "%s: member '%s': expected a JSON object", a->path,
                         m->name);

    const char *state = NULL, *hn = NULL, *hw_arch = NULL, *version = NULL;
    hq_status_t st;
    if ((st = metadata_string(a, meta, "state", &state, err)) != HQ_OK ||
        (st = metadata_string(a, meta, "hn", &hn, err)) != HQ_OK ||
        (st = metadata_string(a, meta, "hw_arch", &hw_arch, err)) != HQ_OK ||
        (st = metadata_string(a, meta, "hq_version", &version, err)) != HQ_OK)
        return st;
    if (!state)
        return hqi_error(err, HQ_ERR_FORMAT, "%s: member '%s': key 'state' is missing", a->path,
                         m->name);
    int found = -1;
    for (int i = 0; i < STATE_COUNT; i++)
        if (strcmp(state, STATE_NAMES[i]) == 0)
            found = i;
    if (found < 0)
        return hqi_error(err, HQ_ERR_UNSUPPORTED,
                         "%s: member '%s': key 'state': unknown state '%.64s' (expected "
                         "parsed_model, fp_optimized_model, quantized_model or compiled_model)",
                         a->path, m->name, state);
    a->state = (hq_model_state_t)found;
    if (hn && hn[0] == '\0')
        return hqi_error(err, HQ_ERR_FORMAT, "%s: member '%s': key 'hn' is empty", a->path,
                         m->name);
    if (hw_arch) {
        free(a->hw_arch);
        if (!(a->hw_arch = hqi_strdup(hw_arch)))
            return hqi_nomem(err, a->path);
    }
    if (version) {
        free(a->writer_version);
        if (!(a->writer_version = hqi_strdup(version)))
            return hqi_nomem(err, a->path);
    }
    if (hn) {
        char *copy = hqi_strdup(hn);
        if (!copy)
            return hqi_nomem(err, a->path);
        free(a->slot_names[SLOT_HN]);
        a->slot_names[SLOT_HN] = copy;
    }
    return HQ_OK;
}

static hq_status_t open_tar(hq_archive_t *a, const void *bytes, size_t len, size_t limit,
                            hq_error_t *err)
{
    hqi_tar_t tar;
    hq_status_t st = hqi_tar_read(bytes, len, a->path, limit, &tar, err);
    if (st != HQ_OK)
        return st;
    a->entries = tar.members;
    a->entry_count = a->entry_cap = tar.count;

    for (size_t i = 0; i < a->entry_count; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(a->entries[i].name, a->entries[j].name) == 0)
                return hqi_error(err, HQ_ERR_FORMAT, "%s: member '%.200s' appears twice", a->path,
                                 a->entries[i].name);

    const hqi_tar_member_t *meta = NULL;
    for (size_t i = 0; i < a->entry_count; i++) {
        const char *name = a->entries[i].name;
        if (!has_suffix(name, METADATA_SUFFIX) || strchr(name, '/'))
            continue;
        if (meta)
            return hqi_error(err, HQ_ERR_FORMAT,
                             "%s: several metadata members ('%.200s' and '%.200s'); an archive "
                             "holds one network",
                             a->path, meta->name, name);
        meta = &a->entries[i];
    }
    if (!meta)
        return hqi_error(err, HQ_ERR_FORMAT,
                         "%s: no '<net>.metadata.json' member; not a model archive", a->path);
    size_t net_len = strlen(meta->name) - strlen(METADATA_SUFFIX);
    char *net = hqi_strndup(meta->name, net_len);
    if (!net)
        return hqi_nomem(err, a->path);
    if (!valid_net_name(net)) {
        free(net);
        return hqi_error(err, HQ_ERR_FORMAT,
                         "%s: member '%.200s': the network name in front of "
                         "'.metadata.json' is empty, too long or unprintable",
                         a->path, meta->name);
    }
    st = set_names(a, net, NULL, err);
    free(net);
    if (st != HQ_OK)
        return st;
    st = parse_metadata(a, meta, err);
    if (st != HQ_OK)
        return st;

    const char *hn = a->slot_names[SLOT_HN];
    if (strcmp(hn, a->metadata_name) == 0)
        return hqi_error(err, HQ_ERR_FORMAT, "%s: member '%s': key 'hn' names the metadata itself",
                         a->path, a->metadata_name);
    for (int s = SLOT_NPZ; s < SLOT_COUNT; s++)
        if (strcmp(hn, a->slot_names[s]) == 0)
            return hqi_error(err, HQ_ERR_FORMAT,
                             "%s: member '%s': key 'hn' names '%.200s', the %s member", a->path,
                             a->metadata_name, hn, SLOT_SUFFIX[s]);
    if (cJSON_GetObjectItemCaseSensitive(a->metadata, "hn") && find_entry(a, hn) < 0)
        return hqi_error(err, HQ_ERR_NOT_FOUND,
                         "%s: member '%s' names hn member '%.200s', which the archive does not "
                         "contain",
                         a->path, a->metadata_name, hn);
    return HQ_OK;
}

static hq_status_t open_memory_limit(const void *bytes, size_t len, const char *name, size_t limit,
                                     hq_archive_t **out, hq_error_t *err)
{
    *out = NULL;
    if (!name)
        name = "archive";
    hq_archive_t *a = archive_new();
    if (!a)
        return hqi_nomem(err, name);
    free(a->path);
    if (!(a->path = hqi_strdup(name))) {
        hq_archive_destroy(a);
        return hqi_nomem(err, name);
    }
    hq_status_t st = open_tar(a, bytes, len, limit, err);
    if (st != HQ_OK) {
        hq_archive_destroy(a);
        return st;
    }
    *out = a;
    return HQ_OK;
}

HQ_API hq_status_t hq_archive_open_memory(const void *bytes, size_t len, const char *name,
                                          hq_archive_t **out, hq_error_t *err)
{
    return open_memory_limit(bytes, len, name, HQ_ARCHIVE_DEFAULT_MEMBER_LIMIT, out, err);
}

HQ_API hq_status_t hq_archive_open_limit(const char *path, size_t member_limit, hq_archive_t **out,
                                         hq_error_t *err)
{
    *out = NULL;
    if (!path)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_archive_open: no path");
    void *bytes = NULL;
    size_t len = 0;
    hq_status_t st = hqi_read_file(path, SIZE_MAX / 2, &bytes, &len, err);
    if (st != HQ_OK)
        return st;
    st = open_memory_limit(bytes, len, path, member_limit, out, err);
    free(bytes);
    return st;
}

HQ_API hq_status_t hq_archive_open(const char *path, hq_archive_t **out, hq_error_t *err)
{
    return hq_archive_open_limit(path, HQ_ARCHIVE_DEFAULT_MEMBER_LIMIT, out, err);
}

HQ_API hq_status_t hq_archive_create(const char *net_name, hq_archive_t **out, hq_error_t *err)
{
    *out = NULL;
    if (!net_name || !valid_net_name(net_name))
        return hqi_error(err, HQ_ERR_ARGUMENT,
                         "hq_archive_create: network name '%.200s' is empty, too long, or holds "
                         "'/' or control characters",
                         net_name ? net_name : "");
    hq_archive_t *a = archive_new();
    if (!a)
        return hqi_nomem(err, net_name);
    free(a->hw_arch);
    a->hw_arch = hqi_strdup("hailo8");
    hq_status_t st = a->hw_arch ? set_names(a, net_name, NULL, err) : hqi_nomem(err, net_name);
    if (st != HQ_OK) {
        hq_archive_destroy(a);
        return st;
    }
    a->state = HQ_STATE_PARSED;
    a->modified = true;
    *out = a;
    return HQ_OK;
}

/* ---- saving ------------------------------------------------------------------------------- */

static char *encode_metadata(const hq_archive_t *a, bool with_hn, size_t *len)
{
    cJSON *meta = cJSON_CreateObject();
    if (!meta)
        return NULL;
    bool ok = cJSON_AddStringToObject(meta, "state", hq_model_state_name(a->state)) != NULL;
    if (with_hn)
        ok = ok && cJSON_AddStringToObject(meta, "hn", a->slot_names[SLOT_HN]) != NULL;
    if (a->hw_arch[0])
        ok = ok && cJSON_AddStringToObject(meta, "hw_arch", a->hw_arch) != NULL;
    ok = ok && cJSON_AddStringToObject(meta, "hq_version", hq_version()) != NULL;
    /* keys hq does not know are kept, in their original order */
    const cJSON *item = NULL;
    cJSON_ArrayForEach(item, a->metadata)
    {
        if (!ok || !item->string)
            break;
        const char *key = item->string;
        if (!strcmp(key, "state") || !strcmp(key, "hn") || !strcmp(key, "hw_arch") ||
            !strcmp(key, "hq_version"))
            continue;
        cJSON *copy = cJSON_Duplicate(item, true);
        ok = copy && cJSON_AddItemToObject(meta, key, copy);
        if (!ok)
            cJSON_Delete(copy);
    }
    char *text = ok ? cJSON_Print(meta) : NULL;
    cJSON_Delete(meta);
    if (!text)
        return NULL;
    size_t n = strlen(text);
    char *out = realloc(text, n + 2);
    if (!out) {
        cJSON_free(text);
        return NULL;
    }
    out[n] = '\n';
    out[n + 1] = '\0';
    *len = n + 1;
    return out;
}

/* Encodes a decoded slot. The caller owns *bytes (free()). */
static hq_status_t encode_slot(hq_archive_t *a, slot_t s, void **bytes, size_t *len,
                               hq_error_t *err)
{
    switch (s) {
    case SLOT_HN: {
        char *json = NULL;
        hq_status_t st = hq_graph_to_json(a->graph, &json, len, err);
        *bytes = json;
        return st;
    }
    case SLOT_ALLS: {
        char *text = NULL;
        hq_status_t st = hq_script_print(a->script, &text, err);
        *bytes = text;
        if (st == HQ_OK)
            *len = strlen(text);
        return st;
    }
    case SLOT_COUNT:
        return hqi_error(err, HQ_ERR_ARGUMENT, "archive: bad slot");
    default:
        return hq_npz_write_memory(a->params[s - SLOT_NPZ], true, bytes, len, err);
    }
}

HQ_API hq_status_t hq_archive_save_memory(hq_archive_t *archive, void **bytes, size_t *len,
                                          hq_error_t *err)
{
    *bytes = NULL;
    *len = 0;
    if (!archive)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_archive_save: no archive");
    hq_archive_t *a = archive;
    size_t max = 1 + SLOT_COUNT + a->entry_count;
    hqi_tar_member_t *out = calloc(max, sizeof *out);
    void **owned = calloc(max, sizeof *owned); /* encoded buffers to free */
    if (!out || !owned) {
        free(out);
        free(owned);
        return hqi_nomem(err, archive_label(a));
    }
    size_t n = 0;
    hq_status_t st = HQ_OK;

    /* the metadata is rewritten (with this hq's version) whenever any member is encoded anew */
    bool rewrite = a->modified;
    for (int s = 0; s < SLOT_COUNT; s++)
        rewrite = rewrite || (a->decoded[s] && slot_present(a, (slot_t)s));
    ptrdiff_t meta = find_entry(a, a->metadata_name);
    if (!rewrite && meta >= 0) {
        out[n++] = a->entries[meta];
    } else {
        size_t mlen = 0;
        char *text = encode_metadata(a, slot_present(a, SLOT_HN), &mlen);
        if (!text) {
            st = hqi_nomem(err, archive_label(a));
            goto done;
        }
        owned[n] = text;
        out[n++] = (hqi_tar_member_t){a->metadata_name, (uint8_t *)text, mlen};
    }
    for (int s = 0; s < SLOT_COUNT; s++) {
        if (!slot_present(a, (slot_t)s))
            continue;
        if (a->decoded[s]) {
            void *data = NULL;
            size_t dlen = 0;
            st = encode_slot(a, (slot_t)s, &data, &dlen, err);
            if (st != HQ_OK) {
                free(data);
                goto done;
            }
            owned[n] = data;
            out[n++] = (hqi_tar_member_t){a->slot_names[s], data, dlen};
        } else {
            out[n++] = a->entries[find_entry(a, a->slot_names[s])];
        }
    }
    for (size_t i = 0; i < a->entry_count; i++)
        if (!is_known_name(a, a->entries[i].name))
            out[n++] = a->entries[i];
    st = hqi_tar_write(out, n, bytes, len, err);

done:
    for (size_t i = 0; i < max; i++)
        free(owned[i]);
    free(owned);
    free(out);
    return st;
}

HQ_API hq_status_t hq_archive_save(hq_archive_t *archive, const char *path, hq_error_t *err)
{
    if (!path)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_archive_save: no path");
    void *bytes = NULL;
    size_t len = 0;
    hq_status_t st = hq_archive_save_memory(archive, &bytes, &len, err);
    if (st == HQ_OK)
        st = hqi_write_file_atomic(path, bytes, len, err);
    free(bytes);
    return st;
}

/* ---- metadata accessors ------------------------------------------------------------------- */

HQ_API const char *hq_archive_path(const hq_archive_t *archive)
{
    return archive->path;
}
HQ_API const char *hq_archive_net_name(const hq_archive_t *archive)
{
    return archive->net_name;
}
HQ_API hq_model_state_t hq_archive_state(const hq_archive_t *archive)
{
    return archive->state;
}
HQ_API const char *hq_archive_hw_arch(const hq_archive_t *archive)
{
    return archive->hw_arch;
}

HQ_API const char *hq_archive_writer_version(const hq_archive_t *archive)
{
    return archive->writer_version;
}

HQ_API hq_status_t hq_archive_set_state(hq_archive_t *archive, hq_model_state_t state,
                                        hq_error_t *err)
{
    if ((int)state < 0 || (int)state >= STATE_COUNT)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: unknown model state %d", archive_label(archive),
                         (int)state);
    archive->state = state;
    archive->modified = true;
    return HQ_OK;
}

HQ_API hq_status_t hq_archive_set_hw_arch(hq_archive_t *archive, const char *hw_arch,
                                          hq_error_t *err)
{
    if (!hw_arch || !hw_arch[0])
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: empty hw_arch", archive_label(archive));
    char *copy = hqi_strdup(hw_arch);
    if (!copy)
        return hqi_nomem(err, archive_label(archive));
    free(archive->hw_arch);
    archive->hw_arch = copy;
    archive->modified = true;
    return HQ_OK;
}

/* ---- decoded members ---------------------------------------------------------------------- */

HQ_API hq_status_t hq_archive_graph(hq_archive_t *archive, hq_graph_t **graph, hq_error_t *err)
{
    hq_archive_t *a = archive;
    *graph = NULL;
    if (a->decoded[SLOT_HN]) {
        *graph = a->graph;
        return HQ_OK;
    }
    ptrdiff_t i = find_entry(a, a->slot_names[SLOT_HN]);
    if (i < 0)
        return hqi_error(err, HQ_ERR_NOT_FOUND, "%s: no graph: member '%.200s' is absent",
                         archive_label(a), a->slot_names[SLOT_HN]);
    char *label = member_label(a, a->slot_names[SLOT_HN]);
    if (!label)
        return hqi_nomem(err, archive_label(a));
    hq_graph_t *g = NULL;
    hq_status_t st =
        hq_graph_from_json((const char *)a->entries[i].data, a->entries[i].size, label, &g, err);
    free(label);
    if (st != HQ_OK)
        return st;
    a->graph = g;
    a->decoded[SLOT_HN] = true;
    a->modified = true;
    *graph = g;
    return HQ_OK;
}

HQ_API hq_status_t hq_archive_set_graph(hq_archive_t *archive, hq_graph_t *graph, hq_error_t *err)
{
    if (!graph)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: hq_archive_set_graph: no graph",
                         archive_label(archive));
    drop_decoded(archive, SLOT_HN);
    archive->graph = graph;
    archive->decoded[SLOT_HN] = true;
    archive->modified = true;
    return HQ_OK;
}

static hq_status_t check_kind(const hq_archive_t *a, hq_params_kind_t kind, hq_error_t *err)
{
    if ((int)kind < HQ_PARAMS_NATIVE || (int)kind > HQ_PARAMS_QUANTIZED)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: unknown params kind %d", archive_label(a),
                         (int)kind);
    return HQ_OK;
}

HQ_API hq_status_t hq_archive_params(hq_archive_t *archive, hq_params_kind_t kind,
                                     hq_npz_t **params, hq_error_t *err)
{
    hq_archive_t *a = archive;
    *params = NULL;
    hq_status_t st = check_kind(a, kind, err);
    if (st != HQ_OK)
        return st;
    slot_t s = (slot_t)(SLOT_NPZ + (int)kind);
    if (a->decoded[s]) {
        if (!a->params[kind])
            return hqi_error(err, HQ_ERR_NOT_FOUND, "%s: no member '%.200s'", archive_label(a),
                             a->slot_names[s]);
        *params = a->params[kind];
        return HQ_OK;
    }
    ptrdiff_t i = find_entry(a, a->slot_names[s]);
    if (i < 0)
        return hqi_error(err, HQ_ERR_NOT_FOUND, "%s: no member '%.200s'", archive_label(a),
                         a->slot_names[s]);
    char *label = member_label(a, a->slot_names[s]);
    if (!label)
        return hqi_nomem(err, archive_label(a));
    hq_npz_t *npz = NULL;
    st = hq_npz_read_memory(a->entries[i].data, a->entries[i].size, label, &npz, err);
    free(label);
    if (st != HQ_OK)
        return st;
    a->params[kind] = npz;
    a->decoded[s] = true;
    a->modified = true;
    *params = npz;
    return HQ_OK;
}

HQ_API bool hq_archive_has_params(const hq_archive_t *archive, hq_params_kind_t kind)
{
    if ((int)kind < HQ_PARAMS_NATIVE || (int)kind > HQ_PARAMS_QUANTIZED)
        return false;
    return slot_present(archive, (slot_t)(SLOT_NPZ + (int)kind));
}

HQ_API hq_status_t hq_archive_set_params(hq_archive_t *archive, hq_params_kind_t kind,
                                         hq_npz_t *params, hq_error_t *err)
{
    hq_status_t st = check_kind(archive, kind, err);
    if (st != HQ_OK) {
        hq_npz_destroy(params);
        return st;
    }
    slot_t s = (slot_t)(SLOT_NPZ + (int)kind);
    drop_decoded(archive, s);
    if (!params)
        remove_entry(archive, archive->slot_names[s]);
    archive->params[kind] = params;
    archive->decoded[s] = true;
    archive->modified = true;
    return HQ_OK;
}

HQ_API hq_status_t hq_archive_script(hq_archive_t *archive, hq_script_t **script, hq_error_t *err)
{
    hq_archive_t *a = archive;
    *script = NULL;
    if (a->decoded[SLOT_ALLS]) {
        *script = a->script;
        return HQ_OK;
    }
    ptrdiff_t i = find_entry(a, a->slot_names[SLOT_ALLS]);
    hq_script_t *sc = NULL;
    hq_status_t st;
    if (i < 0) {
        st = hq_script_create(&sc, err);
    } else {
        char *label = member_label(a, a->slot_names[SLOT_ALLS]);
        if (!label)
            return hqi_nomem(err, archive_label(a));
        st = hq_script_parse((const char *)a->entries[i].data, a->entries[i].size, label, &sc, err);
        free(label);
    }
    if (st != HQ_OK)
        return st;
    a->script = sc;
    a->decoded[SLOT_ALLS] = true;
    if (i >= 0)
        a->modified = true;
    *script = sc;
    return HQ_OK;
}

HQ_API hq_status_t hq_archive_set_script(hq_archive_t *archive, hq_script_t *script,
                                         hq_error_t *err)
{
    if (!script)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: hq_archive_set_script: no script",
                         archive_label(archive));
    drop_decoded(archive, SLOT_ALLS);
    archive->script = script;
    archive->decoded[SLOT_ALLS] = true;
    archive->modified = true;
    return HQ_OK;
}

/* ---- generic members ---------------------------------------------------------------------- */

/* Names in the order save writes them. */
static const char *nth_member(const hq_archive_t *a, size_t index)
{
    size_t k = 0;
    if (index == k++)
        return a->metadata_name;
    for (int s = 0; s < SLOT_COUNT; s++)
        if (slot_present(a, (slot_t)s) && index == k++)
            return a->slot_names[s];
    for (size_t i = 0; i < a->entry_count; i++)
        if (!is_known_name(a, a->entries[i].name) && index == k++)
            return a->entries[i].name;
    return NULL;
}

HQ_API size_t hq_archive_member_count(const hq_archive_t *archive)
{
    size_t n = 1;
    for (int s = 0; s < SLOT_COUNT; s++)
        n += slot_present(archive, (slot_t)s);
    for (size_t i = 0; i < archive->entry_count; i++)
        n += !is_known_name(archive, archive->entries[i].name);
    return n;
}

HQ_API const char *hq_archive_member_name(const hq_archive_t *archive, size_t index)
{
    return nth_member(archive, index);
}

HQ_API hq_status_t hq_archive_member(const hq_archive_t *archive, const char *name,
                                     const void **bytes, size_t *len, hq_error_t *err)
{
    *bytes = NULL;
    *len = 0;
    ptrdiff_t i = name ? find_entry(archive, name) : -1;
    if (i < 0) {
        for (int s = 0; name && s < SLOT_COUNT; s++)
            if (strcmp(name, archive->slot_names[s]) == 0 && slot_present(archive, (slot_t)s))
                return hqi_error(err, HQ_ERR_STATE,
                                 "%s: member '%.200s' is held decoded; its bytes exist once the "
                                 "archive is saved",
                                 archive_label(archive), name);
        return hqi_error(err, HQ_ERR_NOT_FOUND, "%s: no member '%.200s'", archive_label(archive),
                         name ? name : "");
    }
    *bytes = archive->entries[i].data;
    *len = archive->entries[i].size;
    return HQ_OK;
}

HQ_API hq_status_t hq_archive_set_member(hq_archive_t *archive, const char *name, const void *bytes,
                                         size_t len, hq_error_t *err)
{
    hq_archive_t *a = archive;
    if (!name || !name[0])
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: member name is empty", archive_label(a));
    if (!bytes && len)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: member '%.200s': no bytes", archive_label(a),
                         name);
    if (strcmp(name, a->metadata_name) == 0)
        return hqi_error(err, HQ_ERR_ARGUMENT,
                         "%s: member '%s' is written by the archive; use hq_archive_set_state "
                         "and hq_archive_set_hw_arch",
                         archive_label(a), name);
    uint8_t *copy = malloc(len + 1);
    if (!copy)
        return hqi_nomem(err, archive_label(a));
    if (len)
        memcpy(copy, bytes, len);
    copy[len] = 0;
    ptrdiff_t i = find_entry(a, name);
    if (i >= 0) {
        free(a->entries[i].data);
        a->entries[i].data = copy;
        a->entries[i].size = len;
    } else {
        if (a->entry_count == a->entry_cap) {
            size_t cap = a->entry_cap ? a->entry_cap * 2 : 8, bytes_needed;
            hqi_tar_member_t *grown = NULL;
            if (hqi_mul_size(cap, sizeof *grown, &bytes_needed))
                grown = realloc(a->entries, bytes_needed);
            if (!grown) {
                free(copy);
                return hqi_nomem(err, archive_label(a));
            }
            a->entries = grown;
            a->entry_cap = cap;
        }
        char *name_copy = hqi_strdup(name);
        if (!name_copy) {
            free(copy);
            return hqi_nomem(err, archive_label(a));
        }
        a->entries[a->entry_count++] = (hqi_tar_member_t){name_copy, copy, len};
    }
    /* a known member given as bytes replaces whatever was decoded from the old bytes */
    for (int s = 0; s < SLOT_COUNT; s++)
        if (strcmp(name, a->slot_names[s]) == 0)
            drop_decoded(a, (slot_t)s);
    a->modified = true;
    return HQ_OK;
}
