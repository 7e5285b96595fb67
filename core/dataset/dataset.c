/* dataset.c — hq_dataset: a `.npy`, a `.npz` or a folder of images presented as float32 NHWC
 * samples. Arrays are memory-mapped and converted per requested sample (any dtype, either byte
 * order, C or Fortran order); deflated `.npz` members are streamed; images are decoded on demand.
 * Every file is hostile: shapes are overflow-checked and the data's extent is checked at open. */
#include "hq/dataset.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset/image.h"
#include "io/zip.h"
#include "util/util.h"

/* Largest `.npy` header read from a deflated member (numpy writes a few hundred bytes). */
#define NPY_HEADER_MAX ((size_t)1 << 20)
/* Bytes inflated per step when streaming a deflated member. */
#define STREAM_CHUNK ((size_t)1 << 20)

typedef enum source_kind { SOURCE_NPY, SOURCE_NPZ, SOURCE_IMAGES } source_kind_t;

/* One array (or the image folder) feeding one input layer. */
typedef struct dataset_input {
    char *label;             /* message prefix: "calib.npy" or "calib.npz: array 'x'" */
    int layer;               /* input layer index, -1 without a graph */
    hq_shape_t sample_shape; /* per-sample dims ([H, W, C] or [C]) */
    hq_dtype_t dtype;        /* dtype on disk */
    size_t element_size;
    size_t sample_elements; /* product of sample_shape */
    bool big_endian;
    bool fortran_order;
    /* In place (`.npy`, stored `.npz` member): first element, else NULL. */
    const uint8_t *data;
    /* Streamed (deflated `.npz` member). */
    const hqi_zip_member_t *member;
    hqi_zip_stream_t *stream; /* NULL until opened, or after an error */
    uint64_t stream_pos;      /* uncompressed offset of the stream inside the member */
    uint64_t data_offset;     /* uncompressed offset of the first element inside the member */
} dataset_input_t;

struct hq_dataset {
    source_kind_t kind;
    char *path;
    void *map; /* mmap()ed file (npy, npz), the caller's bytes (borrowed), or NULL */
    size_t map_len;
    bool borrowed; /* `map` is the caller's memory (hq_dataset_open_memory): never unmapped */
    hqi_zip_t zip;
    bool zip_open;
    int64_t count; /* samples */
    int input_count;
    dataset_input_t *inputs;
    char **files; /* image folder: full paths, sorted by file name */
    size_t file_count;
};

/* ---- helpers ------------------------------------------------------------------------------ */

static void format_dims(char *buf, size_t cap, const int64_t *dims, int ndim)
{
    size_t used = 0;
    int n = snprintf(buf, cap, "(");
    used = n > 0 ? (size_t)n : 0;
    for (int i = 0; i < ndim && used < cap; i++) {
        n = snprintf(buf + used, cap - used, "%s%lld", i ? ", " : "", (long long)dims[i]);
        if (n < 0)
            return;
        used += (size_t)n;
    }
    if (used < cap)
        snprintf(buf + used, cap - used, ndim == 1 ? ",)" : ")");
}

static void input_free(dataset_input_t *in)
{
    free(in->label);
    hqi_zip_stream_close(in->stream);
    in->stream = NULL;
}

HQ_API void hq_dataset_destroy(hq_dataset_t *ds)
{
    if (!ds)
        return;
    for (int i = 0; i < ds->input_count; i++)
        input_free(&ds->inputs[i]);
    free(ds->inputs);
    if (ds->zip_open)
        hqi_zip_close(&ds->zip);
    if (ds->map && !ds->borrowed)
        munmap(ds->map, ds->map_len);
    for (size_t i = 0; i < ds->file_count; i++)
        free(ds->files[i]);
    free(ds->files);
    free(ds->path);
    free(ds);
}

/* Maps a whole regular file read-only. An empty file is refused (mmap cannot map 0 bytes). */
static hq_status_t map_file(hq_dataset_t *ds, hq_error_t *err)
{
    int fd = open(ds->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hqi_error(err, errno == ENOENT ? HQ_ERR_NOT_FOUND : HQ_ERR_IO, "%s: cannot open: %s",
                         ds->path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return hqi_error(err, HQ_ERR_IO, "%s: cannot stat: %s", ds->path, strerror(e));
    }
    if (st.st_size == 0) {
        close(fd);
        return hqi_error(err, HQ_ERR_FORMAT, "%s: file is empty", ds->path);
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return hqi_error(err, HQ_ERR_LIMIT, "%s: file too large to map", ds->path);
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return hqi_error(err, HQ_ERR_IO, "%s: cannot map: %s", ds->path, strerror(e));
    ds->map = map;
    ds->map_len = (size_t)st.st_size;
    return HQ_OK;
}

/* Checks a parsed header's shape against the `total_len` bytes of its file or member (the data
 * must lie inside) and fills the per-sample fields of `in`; *samples receives N. */
static hq_status_t input_from_header(dataset_input_t *in, const hq_npy_header_t *h,
                                     uint64_t total_len, int64_t *samples, hq_error_t *err)
{
    if (h->ndim < 2 || h->ndim > HQ_TENSOR_MAX_DIMS) {
        char dims[160];
        format_dims(dims, sizeof dims, h->shape,
                    h->ndim > 0 && h->ndim <= HQ_TENSOR_MAX_DIMS ? h->ndim : 0);
        return hqi_error(err, HQ_ERR_INVALID,
                         "%s: shape %s: expected (N, H, W, C) or (N, C) with a leading sample axis",
                         in->label, dims);
    }
    size_t esize = hq_dtype_size(h->dtype);
    if (esize == 0)
        return hqi_error(err, HQ_ERR_UNSUPPORTED, "%s: header field 'descr': unsupported dtype",
                         in->label);
    if (h->shape[0] <= 0)
        return hqi_error(err, HQ_ERR_INVALID, "%s: dataset is empty (N = %lld samples)", in->label,
                         (long long)h->shape[0]);
    size_t elements = 1;
    for (int d = 1; d < h->ndim; d++) {
        if (h->shape[d] <= 0)
            return hqi_error(err, HQ_ERR_INVALID, "%s: dimension %d of the shape is %lld",
                             in->label, d, (long long)h->shape[d]);
        if ((uint64_t)h->shape[d] > SIZE_MAX ||
            !hqi_mul_size(elements, (size_t)h->shape[d], &elements))
            return hqi_error(err, HQ_ERR_LIMIT, "%s: shape overflows", in->label);
    }
    size_t sample_bytes = 0, total_bytes = 0, end = 0;
    if ((uint64_t)h->shape[0] > SIZE_MAX || !hqi_mul_size(elements, esize, &sample_bytes) ||
        !hqi_mul_size(sample_bytes, (size_t)h->shape[0], &total_bytes) ||
        !hqi_add_size(total_bytes, h->data_offset, &end))
        return hqi_error(err, HQ_ERR_LIMIT, "%s: shape overflows", in->label);
    /* Per-sample floats must be addressable by the caller too. */
    size_t floats = 0;
    if (!hqi_mul_size(elements, sizeof(float), &floats))
        return hqi_error(err, HQ_ERR_LIMIT, "%s: sample too large", in->label);
    if ((uint64_t)end > total_len)
        return hqi_error(
            err, HQ_ERR_FORMAT,
            "%s: data truncated: header promises %zu bytes of data at offset %zu, "
            "%llu bytes present",
            in->label, total_bytes, h->data_offset,
            (unsigned long long)(total_len > h->data_offset ? total_len - h->data_offset : 0));
    in->dtype = h->dtype;
    in->element_size = esize;
    in->sample_elements = elements;
    in->big_endian = h->big_endian && esize > 1;
    in->fortran_order = h->fortran_order;
    in->sample_shape.ndim = h->ndim - 1;
    for (int d = 1; d < h->ndim; d++)
        in->sample_shape.dims[d - 1] = h->shape[d];
    *samples = h->shape[0];
    return HQ_OK;
}

/* Checks the per-sample shape against the input layer's shape. */
static hq_status_t check_against_layer(const dataset_input_t *in, int64_t samples,
                                       const hq_layer_t *layer, hq_error_t *err)
{
    const hq_shape_t *want = &layer->output_shape;
    bool same = want->ndim == in->sample_shape.ndim + 1;
    for (int d = 1; same && d < want->ndim; d++)
        same = want->dims[d] == in->sample_shape.dims[d - 1];
    if (same)
        return HQ_OK;
    int64_t have[HQ_TENSOR_MAX_DIMS];
    have[0] = samples;
    for (int d = 0; d < in->sample_shape.ndim; d++)
        have[d + 1] = in->sample_shape.dims[d];
    char have_text[200], want_text[200];
    format_dims(have_text, sizeof have_text, have, in->sample_shape.ndim + 1);
    format_dims(want_text, sizeof want_text, want->dims,
                want->ndim >= 0 && want->ndim <= HQ_TENSOR_MAX_DIMS ? want->ndim : 0);
    /* (N, C, H, W) against [-1, H, W, C]: the usual PyTorch layout. */
    bool nchw = want->ndim == 4 && in->sample_shape.ndim == 3 &&
                in->sample_shape.dims[0] == want->dims[3] &&
                in->sample_shape.dims[1] == want->dims[1] &&
                in->sample_shape.dims[2] == want->dims[2];
    return hqi_error(err, HQ_ERR_INVALID, "%s: shape %s does not match input layer '%s' %s%s",
                     in->label, have_text, layer->name, want_text,
                     nchw ? " (looks like NCHW: transpose to NHWC)" : "");
}

/* ---- .npy --------------------------------------------------------------------------------- */

static hq_status_t open_npy(hq_dataset_t *ds, const hq_graph_t *graph, hq_error_t *err)
{
    hq_status_t st = ds->borrowed ? HQ_OK : map_file(ds, err);
    if (st != HQ_OK)
        return st;
    ds->inputs = calloc(1, sizeof *ds->inputs);
    if (!ds->inputs)
        return hqi_nomem(err, ds->path);
    ds->input_count = 1;
    dataset_input_t *in = &ds->inputs[0];
    in->layer = -1;
    in->label = hqi_strdup(ds->path);
    if (!in->label)
        return hqi_nomem(err, ds->path);
    hq_npy_header_t h;
    memset(&h, 0, sizeof h);
    st = hq_npy_parse_header(ds->map, ds->map_len, ds->path, &h, err);
    if (st != HQ_OK)
        return st;
    st = input_from_header(in, &h, ds->map_len, &ds->count, err);
    if (st != HQ_OK)
        return st;
    in->data = (const uint8_t *)ds->map + h.data_offset;
    if (!graph)
        return HQ_OK;
    int input_count = 0;
    const int *inputs = hq_graph_inputs(graph, &input_count);
    if (input_count != 1 || !inputs)
        return hqi_error(err, HQ_ERR_INVALID,
                         "%s: a .npy feeds one input but the graph has %d inputs: use a .npz keyed "
                         "by input layer name",
                         ds->path, input_count);
    const hq_layer_t *layer = hq_graph_layer(graph, inputs[0]);
    if (!layer)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: graph input %d is not a layer", ds->path,
                         inputs[0]);
    in->layer = inputs[0];
    return check_against_layer(in, ds->count, layer, err);
}

/* ---- .npz --------------------------------------------------------------------------------- */

static uint32_t load_le(const uint8_t *p, int bytes)
{
    uint32_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static hq_status_t reopen_stream(hq_dataset_t *ds, dataset_input_t *in, hq_error_t *err)
{
    hqi_zip_stream_close(in->stream);
    in->stream = NULL;
    in->stream_pos = 0;
    return hqi_zip_stream_open(&ds->zip, in->member, in->label, &in->stream, err);
}

/* Reads the .npy header at the start of a deflated member through a stream. */
static hq_status_t stream_header(hq_dataset_t *ds, dataset_input_t *in, hq_npy_header_t *h,
                                 hq_error_t *err)
{
    hq_status_t st = reopen_stream(ds, in, err);
    if (st != HQ_OK)
        return st;
    uint8_t prefix[12];
    size_t have = in->member->size < 10 ? (size_t)in->member->size : 10;
    st = hqi_zip_stream_read(in->stream, prefix, have, err);
    if (st != HQ_OK)
        return st;
    size_t total = have;
    if (have == 10 && prefix[6] == 1) {
        total = 10 + load_le(prefix + 8, 2);
    } else if (have == 10 && (prefix[6] == 2 || prefix[6] == 3) && in->member->size >= 12) {
        st = hqi_zip_stream_read(in->stream, prefix + 10, 2, err);
        if (st != HQ_OK)
            return st;
        have = 12;
        total = 12 + (size_t)load_le(prefix + 8, 4);
    }
    /* Anything else: let the header parser say what is wrong with the prefix. */
    if (total > NPY_HEADER_MAX)
        return hqi_error(err, HQ_ERR_LIMIT, "%s: .npy header of %zu bytes exceeds %zu", in->label,
                         total, NPY_HEADER_MAX);
    if (total > in->member->size)
        total = (size_t)in->member->size;
    if (total < have)
        total = have;
    uint8_t *buf = malloc(total + 1);
    if (!buf)
        return hqi_nomem(err, in->label);
    memcpy(buf, prefix, have);
    st = hqi_zip_stream_read(in->stream, buf + have, total - have, err);
    if (st == HQ_OK) {
        in->stream_pos = total;
        st = hq_npy_parse_header(buf, total, in->label, h, err);
    }
    free(buf);
    return st;
}

static hq_status_t npz_input(hq_dataset_t *ds, dataset_input_t *in, const hqi_zip_member_t *m,
                             int64_t *samples, hq_error_t *err)
{
    hq_npy_header_t h;
    memset(&h, 0, sizeof h);
    in->member = m;
    hq_status_t st;
    if (m->method == 0) {
        if (m->compressed_size != m->size || m->data_offset > ds->map_len ||
            m->size > ds->map_len - m->data_offset)
            return hqi_error(err, HQ_ERR_FORMAT, "%s: stored member sizes disagree", in->label);
        const uint8_t *base = (const uint8_t *)ds->map + m->data_offset;
        st = hq_npy_parse_header(base, (size_t)m->size, in->label, &h, err);
        if (st != HQ_OK)
            return st;
        st = input_from_header(in, &h, m->size, samples, err);
        if (st != HQ_OK)
            return st;
        in->data = base + h.data_offset;
        return HQ_OK;
    }
    st = stream_header(ds, in, &h, err);
    if (st != HQ_OK)
        return st;
    in->data_offset = h.data_offset;
    return input_from_header(in, &h, m->size, samples, err);
}

/* The member name without a trailing ".npy" (numpy.savez appends it to each key). */
static char *member_key(const char *name)
{
    size_t len = strlen(name);
    if (len >= 4 && strcmp(name + len - 4, ".npy") == 0)
        len -= 4;
    return hqi_strndup(name, len);
}

static hq_status_t open_npz(hq_dataset_t *ds, const hq_graph_t *graph, hq_error_t *err)
{
    if (!graph)
        return hqi_error(err, HQ_ERR_ARGUMENT,
                         "%s: a .npz dataset needs the graph to match its arrays to input layers",
                         ds->path);
    hq_status_t st = ds->borrowed ? HQ_OK : map_file(ds, err);
    if (st != HQ_OK)
        return st;
    st = hqi_zip_open(ds->map, ds->map_len, ds->path, &ds->zip, err);
    if (st != HQ_OK)
        return st;
    ds->zip_open = true;

    int input_count = 0;
    const int *inputs = hq_graph_inputs(graph, &input_count);
    if (input_count <= 0 || !inputs)
        return hqi_error(err, HQ_ERR_INVALID, "%s: the graph has no input layer", ds->path);
    ds->inputs = calloc((size_t)input_count, sizeof *ds->inputs);
    size_t *matched = malloc((size_t)input_count * sizeof *matched);
    if (!ds->inputs || !matched) {
        free(matched);
        return hqi_nomem(err, ds->path);
    }
    ds->input_count = input_count;
    for (int i = 0; i < input_count; i++) {
        ds->inputs[i].layer = inputs[i];
        matched[i] = SIZE_MAX;
    }

    /* Match every key to an input layer; keys naming no input layer are ignored. */
    for (size_t m = 0; m < ds->zip.member_count; m++) {
        char *key = member_key(ds->zip.members[m].name);
        if (!key) {
            free(matched);
            return hqi_nomem(err, ds->path);
        }
        int layer = hq_graph_find(graph, key);
        int slot = -1;
        for (int i = 0; layer >= 0 && i < input_count; i++)
            if (inputs[i] == layer)
                slot = i;
        if (slot >= 0 && matched[slot] != SIZE_MAX) {
            char *first = member_key(ds->zip.members[matched[slot]].name);
            const hq_layer_t *l = hq_graph_layer(graph, layer);
            st =
                hqi_error(err, HQ_ERR_INVALID, "%s: keys '%s' and '%s' both match input layer '%s'",
                          ds->path, first ? first : "?", key, l ? l->name : "?");
            free(first);
            free(key);
            free(matched);
            return st;
        }
        if (slot >= 0) {
            matched[slot] = m;
            hqi_buf_t label = {0};
            hqi_buf_printf(&label, "%s: array '%s'", ds->path, key);
            hqi_buf_append(&label, "", 1);
            if (label.failed) {
                hqi_buf_free(&label);
                free(key);
                free(matched);
                return hqi_nomem(err, ds->path);
            }
            ds->inputs[slot].label = (char *)label.data;
        }
        free(key);
    }

    for (int i = 0; i < input_count; i++) {
        if (matched[i] != SIZE_MAX)
            continue;
        const hq_layer_t *l = hq_graph_layer(graph, inputs[i]);
        hqi_buf_t keys = {0};
        for (size_t m = 0; m < ds->zip.member_count; m++) {
            if (keys.len > 240) {
                hqi_buf_printf(&keys, ", ...");
                break;
            }
            char *key = member_key(ds->zip.members[m].name);
            hqi_buf_printf(&keys, "%s'%s'", m ? ", " : "", key ? key : "?");
            free(key);
        }
        hqi_buf_append(&keys, "", 1);
        st =
            hqi_error(err, HQ_ERR_NOT_FOUND, "%s: no array for input layer '%s' (keys present: %s)",
                      ds->path, l ? l->name : "?",
                      keys.failed || ds->zip.member_count == 0 ? "none" : (char *)keys.data);
        hqi_buf_free(&keys);
        free(matched);
        return st;
    }

    for (int i = 0; i < input_count; i++) {
        dataset_input_t *in = &ds->inputs[i];
        int64_t samples = 0;
        st = npz_input(ds, in, &ds->zip.members[matched[i]], &samples, err);
        if (st != HQ_OK)
            break;
        const hq_layer_t *l = hq_graph_layer(graph, in->layer);
        if (!l) {
            st = hqi_error(err, HQ_ERR_ARGUMENT, "%s: graph input %d is not a layer", ds->path,
                           in->layer);
            break;
        }
        st = check_against_layer(in, samples, l, err);
        if (st != HQ_OK)
            break;
        if (i == 0) {
            ds->count = samples;
        } else if (samples != ds->count) {
            st = hqi_error(err, HQ_ERR_INVALID, "%s has %lld samples but %s has %lld", in->label,
                           (long long)samples, ds->inputs[0].label, (long long)ds->count);
            break;
        }
    }
    free(matched);
    return st;
}

/* ---- image folder ------------------------------------------------------------------------- */

static int compare_paths(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static hq_status_t open_images(hq_dataset_t *ds, const hq_graph_t *graph, hq_error_t *err)
{
    if (!graph)
        return hqi_error(err, HQ_ERR_ARGUMENT,
                         "%s: an image folder needs the graph to know the input size", ds->path);
    int input_count = 0;
    const int *inputs = hq_graph_inputs(graph, &input_count);
    if (input_count != 1 || !inputs)
        return hqi_error(err, HQ_ERR_INVALID,
                         "%s: an image folder feeds one input but the graph has %d inputs",
                         ds->path, input_count);
    const hq_layer_t *layer = hq_graph_layer(graph, inputs[0]);
    if (!layer)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: graph input %d is not a layer", ds->path,
                         inputs[0]);
    const hq_shape_t *shape = &layer->output_shape;
    if (shape->ndim != 4 || shape->dims[1] <= 0 || shape->dims[2] <= 0 || shape->dims[1] > 65536 ||
        shape->dims[2] > 65536 || (shape->dims[3] != 1 && shape->dims[3] != 3)) {
        char text[200];
        format_dims(text, sizeof text, shape->dims,
                    shape->ndim >= 0 && shape->ndim <= HQ_TENSOR_MAX_DIMS ? shape->ndim : 0);
        return hqi_error(err, HQ_ERR_INVALID,
                         "%s: images need an input of shape (-1, H, W, 1 or 3); input layer '%s' "
                         "is %s",
                         ds->path, layer->name, text);
    }

    DIR *dir = opendir(ds->path);
    if (!dir)
        return hqi_error(err, errno == ENOENT ? HQ_ERR_NOT_FOUND : HQ_ERR_IO,
                         "%s: cannot open folder: %s", ds->path, strerror(errno));
    size_t cap = 0;
    size_t plen = strlen(ds->path);
    bool slash = plen > 0 && ds->path[plen - 1] == '/';
    hq_status_t st = HQ_OK;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.' || !hqi_image_has_extension(entry->d_name))
            continue;
        hqi_buf_t full = {0};
        hqi_buf_printf(&full, "%s%s%s", ds->path, slash ? "" : "/", entry->d_name);
        hqi_buf_append(&full, "", 1);
        if (full.failed) {
            hqi_buf_free(&full);
            st = hqi_nomem(err, ds->path);
            break;
        }
        struct stat sb;
        if (stat((char *)full.data, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            hqi_buf_free(&full);
            continue;
        }
        if (ds->file_count == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **grown = realloc(ds->files, ncap * sizeof *grown);
            if (!grown) {
                hqi_buf_free(&full);
                st = hqi_nomem(err, ds->path);
                break;
            }
            ds->files = grown;
            cap = ncap;
        }
        ds->files[ds->file_count++] = (char *)full.data;
    }
    closedir(dir);
    if (st != HQ_OK)
        return st;
    if (ds->file_count == 0)
        return hqi_error(err, HQ_ERR_INVALID, "%s: dataset is empty: no .png, .jpg or .jpeg file",
                         ds->path);
    qsort(ds->files, ds->file_count, sizeof *ds->files, compare_paths);

    ds->inputs = calloc(1, sizeof *ds->inputs);
    if (!ds->inputs)
        return hqi_nomem(err, ds->path);
    ds->input_count = 1;
    dataset_input_t *in = &ds->inputs[0];
    in->label = hqi_strdup(ds->path);
    if (!in->label)
        return hqi_nomem(err, ds->path);
    in->layer = inputs[0];
    in->dtype = HQ_DTYPE_FLOAT32;
    in->element_size = sizeof(float);
    in->sample_shape.ndim = 3;
    for (int d = 0; d < 3; d++)
        in->sample_shape.dims[d] = shape->dims[d + 1];
    in->sample_elements = (size_t)shape->dims[1] * (size_t)shape->dims[2] * (size_t)shape->dims[3];
    ds->count = (int64_t)ds->file_count;
    return HQ_OK;
}

/* ---- open ------------------------------------------------------------------------------- */

/* Opens a `.npy` or `.npz` source by its first bytes (content decides, not the name). */
static hq_status_t open_by_magic(hq_dataset_t *ds, const unsigned char *magic, size_t got,
                                 const hq_graph_t *graph, hq_error_t *err)
{
    if (got >= 6 && memcmp(magic, "\x93NUMPY", 6) == 0) {
        ds->kind = SOURCE_NPY;
        return open_npy(ds, graph, err);
    }
    if (got >= 4 && magic[0] == 'P' && magic[1] == 'K' &&
        ((magic[2] == 3 && magic[3] == 4) || (magic[2] == 5 && magic[3] == 6))) {
        ds->kind = SOURCE_NPZ;
        return open_npz(ds, graph, err);
    }
    return hqi_error(err, HQ_ERR_FORMAT,
                     "%s: not a .npy or .npz file (expected the \\x93NUMPY or zip magic)",
                     ds->path);
}

HQ_API hq_status_t hq_dataset_open(const char *path, const hq_graph_t *graph, hq_dataset_t **out,
                                   hq_error_t *err)
{
    if (!out)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_dataset_open: out is NULL");
    *out = NULL;
    if (!path)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_dataset_open: path is NULL");
    struct stat sb;
    if (stat(path, &sb) != 0)
        return hqi_error(err, errno == ENOENT ? HQ_ERR_NOT_FOUND : HQ_ERR_IO, "%s: %s", path,
                         strerror(errno));
    hq_dataset_t *ds = calloc(1, sizeof *ds);
    if (!ds)
        return hqi_nomem(err, path);
    ds->path = hqi_strdup(path);
    if (!ds->path) {
        free(ds);
        return hqi_nomem(err, path);
    }
    hq_status_t st;
    if (S_ISDIR(sb.st_mode)) {
        ds->kind = SOURCE_IMAGES;
        st = open_images(ds, graph, err);
    } else if (!S_ISREG(sb.st_mode)) {
        st = hqi_error(err, HQ_ERR_ARGUMENT, "%s: not a file or folder", path);
    } else {
        /* Decide by content, not by name. */
        unsigned char magic[6] = {0};
        FILE *f = fopen(path, "rb");
        size_t got = f ? fread(magic, 1, sizeof magic, f) : 0;
        if (f)
            fclose(f);
        if (!f) {
            st = hqi_error(err, HQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        } else {
            st = open_by_magic(ds, magic, got, graph, err);
        }
    }
    if (st != HQ_OK) {
        hq_dataset_destroy(ds);
        return st;
    }
    *out = ds;
    return HQ_OK;
}

HQ_API hq_status_t hq_dataset_open_memory(const void *bytes, size_t len, const char *name,
                                          const hq_graph_t *graph, hq_dataset_t **out,
                                          hq_error_t *err)
{
    if (!out)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_dataset_open_memory: out is NULL");
    *out = NULL;
    if (!bytes && len > 0)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_dataset_open_memory: bytes is NULL");
    if (!name)
        name = "dataset";
    hq_dataset_t *ds = calloc(1, sizeof *ds);
    if (!ds)
        return hqi_nomem(err, name);
    ds->path = hqi_strdup(name);
    if (!ds->path) {
        free(ds);
        return hqi_nomem(err, name);
    }
    ds->map = (void *)(uintptr_t)bytes;
    ds->map_len = len;
    ds->borrowed = true;
    hq_status_t st = open_by_magic(ds, bytes, len, graph, err);
    if (st != HQ_OK) {
        hq_dataset_destroy(ds);
        return st;
    }
    *out = ds;
    return HQ_OK;
}

/* ---- queries ---------------------------------------------------------------------------- */

HQ_API int64_t hq_dataset_count(const hq_dataset_t *ds)
{
    return ds ? ds->count : 0;
}

HQ_API int hq_dataset_input_count(const hq_dataset_t *ds)
{
    return ds ? ds->input_count : 0;
}

static const dataset_input_t *input_at(const hq_dataset_t *ds, int input)
{
    if (!ds || input < 0 || input >= ds->input_count)
        return NULL;
    return &ds->inputs[input];
}

HQ_API hq_shape_t hq_dataset_input_shape(const hq_dataset_t *ds, int input)
{
    hq_shape_t none;
    memset(&none, 0, sizeof none);
    const dataset_input_t *in = input_at(ds, input);
    return in ? in->sample_shape : none;
}

HQ_API int hq_dataset_input_layer(const hq_dataset_t *ds, int input)
{
    const dataset_input_t *in = input_at(ds, input);
    return in ? in->layer : -1;
}

HQ_API hq_dtype_t hq_dataset_input_dtype(const hq_dataset_t *ds, int input)
{
    const dataset_input_t *in = input_at(ds, input);
    return in ? in->dtype : HQ_DTYPE_COUNT;
}

/* ---- conversion ------------------------------------------------------------------------- */

static uint64_t load_uint(const uint8_t *p, size_t bytes, bool big_endian)
{
    uint64_t v = 0;
    if (big_endian) {
        for (size_t i = 0; i < bytes; i++)
            v = (v << 8) | p[i];
    } else {
        for (size_t i = bytes; i-- > 0;)
            v = (v << 8) | p[i];
    }
    return v;
}

/* Converts `n` consecutive elements at `src` to float32. */
static void convert_run(const dataset_input_t *in, const uint8_t *src, size_t n, float *dst)
{
    bool be = in->big_endian;
    switch (in->dtype) {
    case HQ_DTYPE_FLOAT32:
        if (!be) {
            memcpy(dst, src, n * sizeof(float));
            return;
        }
        for (size_t i = 0; i < n; i++) {
            uint32_t u = (uint32_t)load_uint(src + 4 * i, 4, true);
            memcpy(&dst[i], &u, sizeof u);
        }
        return;
    case HQ_DTYPE_FLOAT64:
        for (size_t i = 0; i < n; i++) {
            uint64_t u = load_uint(src + 8 * i, 8, be);
            double d;
            memcpy(&d, &u, sizeof d);
            dst[i] = (float)d;
        }
        return;
    case HQ_DTYPE_FLOAT16:
        for (size_t i = 0; i < n; i++)
            dst[i] = hqi_half_to_float((uint16_t)load_uint(src + 2 * i, 2, be));
        return;
    case HQ_DTYPE_UINT8:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)src[i];
        return;
    case HQ_DTYPE_INT8:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)(int8_t)src[i];
        return;
    case HQ_DTYPE_UINT16:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)(uint16_t)load_uint(src + 2 * i, 2, be);
        return;
    case HQ_DTYPE_INT16:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)(int16_t)(uint16_t)load_uint(src + 2 * i, 2, be);
        return;
    case HQ_DTYPE_INT32:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)(int32_t)(uint32_t)load_uint(src + 4 * i, 4, be);
        return;
    case HQ_DTYPE_INT64:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)(int64_t)load_uint(src + 8 * i, 8, be);
        return;
    case HQ_DTYPE_BOOL:
        for (size_t i = 0; i < n; i++)
            dst[i] = src[i] ? 1.0f : 0.0f;
        return;
    case HQ_DTYPE_COUNT:
        break;
    }
    for (size_t i = 0; i < n; i++)
        dst[i] = 0.0f;
}

/* Strides of the per-sample dims in Fortran order, in elements, with the sample axis (extent
 * `samples`) fastest: element (n, i1, .., ik) lives at n + N * (i1 + d1 * (i2 + ...)). */
static void fortran_strides(const dataset_input_t *in, int64_t samples, size_t *strides)
{
    size_t s = (size_t)samples;
    for (int d = 0; d < in->sample_shape.ndim; d++) {
        strides[d] = s;
        s *= (size_t)in->sample_shape.dims[d];
    }
}

/* Sample `n` of an in-place Fortran-order array, gathered into C order. */
static void gather_fortran(const dataset_input_t *in, int64_t samples, int64_t n, float *dst)
{
    int k = in->sample_shape.ndim;
    size_t strides[HQ_TENSOR_MAX_DIMS], idx[HQ_TENSOR_MAX_DIMS] = {0};
    fortran_strides(in, samples, strides);
    size_t offset = (size_t)n;
    for (size_t e = 0; e < in->sample_elements; e++) {
        convert_run(in, in->data + offset * in->element_size, 1, dst + e);
        for (int d = k - 1; d >= 0; d--) {
            offset += strides[d];
            if (++idx[d] < (size_t)in->sample_shape.dims[d])
                break;
            offset -= strides[d] * (size_t)in->sample_shape.dims[d];
            idx[d] = 0;
        }
    }
}

/* Positions the stream at uncompressed offset `target`, reopening it to go backwards. */
static hq_status_t stream_seek(hq_dataset_t *ds, dataset_input_t *in, uint64_t target,
                               hq_error_t *err)
{
    hq_status_t st;
    if (!in->stream || in->stream_pos > target) {
        st = reopen_stream(ds, in, err);
        if (st != HQ_OK)
            return st;
    }
    st = hqi_zip_stream_skip(in->stream, target - in->stream_pos, err);
    if (st != HQ_OK)
        return st;
    in->stream_pos = target;
    return HQ_OK;
}

static hq_status_t stream_read(dataset_input_t *in, void *buf, size_t len, hq_error_t *err)
{
    hq_status_t st = hqi_zip_stream_read(in->stream, buf, len, err);
    if (st == HQ_OK)
        in->stream_pos += len;
    return st;
}

/* Samples [first, first+count) of a deflated member. C order reads just those bytes; Fortran
 * order interleaves samples through the whole array, so it is streamed end to end. */
static hq_status_t read_streamed(hq_dataset_t *ds, dataset_input_t *in, int64_t first,
                                 int64_t count, float *out, hq_error_t *err)
{
    size_t esize = in->element_size;
    size_t per_chunk = STREAM_CHUNK / esize;
    uint8_t *chunk = malloc(per_chunk * esize);
    if (!chunk)
        return hqi_nomem(err, in->label);
    size_t sample_bytes = in->sample_elements * esize;
    hq_status_t st;
    if (!in->fortran_order) {
        st = stream_seek(ds, in, in->data_offset + (uint64_t)first * sample_bytes, err);
        size_t left = (size_t)count * in->sample_elements;
        while (st == HQ_OK && left > 0) {
            size_t n = left < per_chunk ? left : per_chunk;
            st = stream_read(in, chunk, n * esize, err);
            if (st == HQ_OK) {
                convert_run(in, chunk, n, out);
                out += n;
                left -= n;
            }
        }
    } else {
        st = stream_seek(ds, in, in->data_offset, err);
        int k = in->sample_shape.ndim;
        size_t idx[HQ_TENSOR_MAX_DIMS] = {0}, cstride[HQ_TENSOR_MAX_DIMS];
        size_t s = 1;
        for (int d = k - 1; d >= 0; d--) {
            cstride[d] = s;
            s *= (size_t)in->sample_shape.dims[d];
        }
        size_t c_offset = 0;
        int64_t n = 0;
        size_t left = (size_t)ds->count * in->sample_elements;
        while (st == HQ_OK && left > 0) {
            size_t len = left < per_chunk ? left : per_chunk;
            st = stream_read(in, chunk, len * esize, err);
            for (size_t i = 0; st == HQ_OK && i < len; i++) {
                if (n >= first && n < first + count)
                    convert_run(in, chunk + i * esize, 1,
                                out + (size_t)(n - first) * in->sample_elements + c_offset);
                if (++n < ds->count)
                    continue;
                n = 0;
                for (int d = 0; d < k; d++) {
                    c_offset += cstride[d];
                    if (++idx[d] < (size_t)in->sample_shape.dims[d])
                        break;
                    c_offset -= cstride[d] * (size_t)in->sample_shape.dims[d];
                    idx[d] = 0;
                }
            }
            left -= len;
        }
    }
    free(chunk);
    if (st != HQ_OK) {
        /* Position unknown after a failure: start over next time. */
        hqi_zip_stream_close(in->stream);
        in->stream = NULL;
    }
    return st;
}

static hq_status_t check_finite(const dataset_input_t *in, int64_t sample, const float *values,
                                hq_error_t *err)
{
    for (size_t e = 0; e < in->sample_elements; e++) {
        if (isfinite(values[e]))
            continue;
        int64_t pos[HQ_TENSOR_MAX_DIMS];
        size_t rest = e;
        for (int d = in->sample_shape.ndim - 1; d >= 0; d--) {
            pos[d] = (int64_t)(rest % (size_t)in->sample_shape.dims[d]);
            rest /= (size_t)in->sample_shape.dims[d];
        }
        char where[200];
        format_dims(where, sizeof where, pos, in->sample_shape.ndim);
        return hqi_error(err, HQ_ERR_INVALID, "%s: sample %lld: value at %s is %s", in->label,
                         (long long)sample, where,
                         isnan(values[e]) ? "NaN" : "infinite (or beyond float32 range)");
    }
    return HQ_OK;
}

HQ_API hq_status_t hq_dataset_read(hq_dataset_t *ds, int input, int64_t first, int64_t count,
                                   float *out, hq_error_t *err)
{
    if (!ds)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_dataset_read: dataset is NULL");
    if (input < 0 || input >= ds->input_count)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: input %d out of range (dataset has %d)",
                         ds->path, input, ds->input_count);
    dataset_input_t *in = &ds->inputs[input];
    if (first < 0 || count < 0 || first > ds->count || count > ds->count - first)
        return hqi_error(err, HQ_ERR_ARGUMENT,
                         "%s: %lld samples from sample %lld: out of range (dataset has %lld)",
                         in->label, (long long)count, (long long)first, (long long)ds->count);
    if (count == 0)
        return HQ_OK;
    if (!out)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: output buffer is NULL", in->label);

    hq_status_t st = HQ_OK;
    size_t per = in->sample_elements;
    if (ds->kind == SOURCE_IMAGES) {
        for (int64_t s = 0; s < count && st == HQ_OK; s++) {
            st = hqi_image_load(ds->files[first + s], (int)in->sample_shape.dims[0],
                                (int)in->sample_shape.dims[1], (int)in->sample_shape.dims[2],
                                out + (size_t)s * per, err);
            if (st != HQ_OK && err) {
                /* "dir/x.png: what" -> "dir/x.png: sample 7: what" */
                const char *file = ds->files[first + s];
                size_t flen = strlen(file);
                char detail[HQ_ERROR_MESSAGE_MAX];
                memcpy(detail, err->message, sizeof detail);
                detail[sizeof detail - 1] = 0;
                const char *what = detail;
                if (strncmp(detail, file, flen) == 0 && strncmp(detail + flen, ": ", 2) == 0)
                    what = detail + flen + 2;
                hqi_error(err, st, "%s: sample %lld: %s", file, (long long)(first + s), what);
            }
        }
        return st;
    }
    if (in->data) {
        size_t sample_bytes = per * in->element_size;
        for (int64_t s = 0; s < count; s++) {
            float *dst = out + (size_t)s * per;
            if (in->fortran_order)
                gather_fortran(in, ds->count, first + s, dst);
            else
                convert_run(in, in->data + (size_t)(first + s) * sample_bytes, per, dst);
        }
    } else {
        st = read_streamed(ds, in, first, count, out, err);
        if (st != HQ_OK)
            return st;
    }
    if (in->dtype == HQ_DTYPE_FLOAT32 || in->dtype == HQ_DTYPE_FLOAT64 ||
        in->dtype == HQ_DTYPE_FLOAT16) {
        for (int64_t s = 0; s < count && st == HQ_OK; s++)
            st = check_finite(in, first + s, out + (size_t)s * per, err);
    }
    return st;
}
