/* hn.c — reading and writing the `.hn` JSON form of a graph (Hailo layout, see docs/hn.md).
 * Keys hq does not know are kept as raw cJSON and written back unchanged after the known ones. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph_internal.h"
#include "util/util.h"

#define MAX_LAYERS (1 << 20)
#define MAX_LIST (1 << 16)

typedef struct name_entry name_entry_t;

typedef struct reader {
    const char *file;
    hq_error_t *err;
    hq_graph_t *graph;
    const char *layer;   /* name of the layer being read, for messages */
    name_entry_t *sorted;  /* layer names sorted for lookup */
} reader_t;

static const char *const padding_names[] = {"VALID", "SAME", "SAME_TENSORFLOW", "EXPLICIT"};
static const char *const resize_method_names[] = {"nearest_neighbor", "bilinear"};
static const char *const resize_coords_names[] = {"asymmetric", "half_pixel", "align_corners",
                                                  "pytorch_half_pixel", "tf_half_pixel_for_nn"};
static const char *const pad_mode_names[] = {"constant", "reflect", "edge"};
#define COUNT_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

__attribute__((format(printf, 3, 4))) static hq_status_t bad(reader_t *r, hq_status_t status,
                                                             const char *fmt, ...)
{
    char detail[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    if (r->layer)
        return hqi_error(r->err, status, "%s: layer '%s': %s", r->file, r->layer, detail);
    return hqi_error(r->err, status, "%s: %s", r->file, detail);
}

/* ---- scalar readers ---------------------------------------------------------------------- */

static hq_status_t read_int(reader_t *r, const cJSON *item, const char *key, int64_t min,
                            int64_t max, int64_t *out)
{
    if (!cJSON_IsNumber(item))
        return bad(r, HQ_ERR_FORMAT, "'%s' must be a number", key);
    double v = item->valuedouble;
    if (!(v >= (double)min && v <= (double)max) || v != floor(v))
        return bad(r, HQ_ERR_FORMAT, "'%s' = %g must be an integer in [%lld, %lld]", key, v,
                   (long long)min, (long long)max);
    *out = (int64_t)v;
    return HQ_OK;
}

static hq_status_t read_int32(reader_t *r, const cJSON *item, const char *key, int *out)
{
    int64_t v = 0;
    hq_status_t st = read_int(r, item, key, -HQI_GRAPH_MAX_DIM, HQI_GRAPH_MAX_DIM, &v);
    if (!st)
        *out = (int)v;
    return st;
}

static hq_status_t read_bool(reader_t *r, const cJSON *item, const char *key, bool *out)
{
    if (cJSON_IsBool(item)) {
        *out = cJSON_IsTrue(item);
        return HQ_OK;
    }
    if (cJSON_IsNumber(item) && (item->valuedouble == 0.0 || item->valuedouble == 1.0)) {
        *out = item->valuedouble != 0.0;
        return HQ_OK;
    }
    return bad(r, HQ_ERR_FORMAT, "'%s' must be true or false", key);
}

static hq_status_t read_float(reader_t *r, const cJSON *item, const char *key, float *out)
{
    if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble) ||
        fabs(item->valuedouble) > 3.0e38)
        return bad(r, HQ_ERR_FORMAT, "'%s' must be a finite number", key);
    *out = (float)item->valuedouble;
    return HQ_OK;
}

static hq_status_t read_enum(reader_t *r, const cJSON *item, const char *key,
                             const char *const *names, int count, int *out)
{
    if (!cJSON_IsString(item))
        return bad(r, HQ_ERR_FORMAT, "'%s' must be a string", key);
    for (int i = 0; i < count; i++) {
        if (strcmp(item->valuestring, names[i]) == 0) {
            *out = i;
            return HQ_OK;
        }
    }
    return bad(r, HQ_ERR_FORMAT, "'%s': unknown value '%.64s'", key, item->valuestring);
}

/* An array of exactly `count` ints (or, when count < 0, 1 .. MAX_LIST ints, count in *got). */
static hq_status_t read_ints(reader_t *r, const cJSON *item, const char *key, int count,
                             int *out, int *got)
{
    if (!cJSON_IsArray(item))
        return bad(r, HQ_ERR_FORMAT, "'%s' must be an array", key);
    int n = cJSON_GetArraySize(item);
    if ((count >= 0 && n != count) || (count < 0 && (n < 1 || n > MAX_LIST)))
        return bad(r, HQ_ERR_FORMAT, "'%s' has %d entries, expected %d", key, n,
                   count >= 0 ? count : 1);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, item)
    {
        hq_status_t st = read_int32(r, e, key, &out[i++]);
        if (st)
            return st;
    }
    if (got)
        *got = n;
    return HQ_OK;
}

/* [1, a, b, 1] as used by strides, dilations and pool kernels. */
static hq_status_t read_nhwc_pair(reader_t *r, const cJSON *item, const char *key, int *a, int *b)
{
    int v[4];
    hq_status_t st = read_ints(r, item, key, 4, v, NULL);
    if (st)
        return st;
    if (v[0] != 1 || v[3] != 1)
        return bad(r, HQ_ERR_FORMAT, "'%s' must have the form [1, h, w, 1]", key);
    *a = v[1];
    *b = v[2];
    return HQ_OK;
}

static hq_status_t read_shape(reader_t *r, const cJSON *item, const char *key, hq_shape_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!cJSON_IsArray(item))
        return bad(r, HQ_ERR_FORMAT, "'%s' entries must be arrays", key);
    int n = cJSON_GetArraySize(item);
    if (n < 1 || n > HQ_TENSOR_MAX_DIMS)
        return bad(r, HQ_ERR_FORMAT, "'%s' has a shape of rank %d (1 .. %d)", key, n,
                   HQ_TENSOR_MAX_DIMS);
    const cJSON *e;
    int i = 0;
    cJSON_ArrayForEach(e, item)
    {
        int64_t v = 0;
        hq_status_t st = read_int(r, e, key, i == 0 ? -1 : 1, HQI_GRAPH_MAX_DIM, &v);
        if (st)
            return st;
        if (i == 0 && v == 0)
            return bad(r, HQ_ERR_FORMAT, "'%s' has a batch of 0", key);
        out->dims[i++] = v;
    }
    out->ndim = n;
    return HQ_OK;
}

static hq_status_t read_shapes(reader_t *r, const cJSON *item, const char *key, hq_shape_t **out,
                               int *count)
{
    *out = NULL;
    *count = 0;
    if (!cJSON_IsArray(item))
        return bad(r, HQ_ERR_FORMAT, "'%s' must be an array of shapes", key);
    int n = cJSON_GetArraySize(item);
    if (n > MAX_LIST)
        return bad(r, HQ_ERR_LIMIT, "'%s' has %d shapes", key, n);
    if (n == 0)
        return HQ_OK;
    hq_shape_t *shapes = calloc((size_t)n, sizeof(*shapes));
    if (!shapes)
        return hqi_nomem(r->err, r->file);
    const cJSON *e;
    int i = 0;
    cJSON_ArrayForEach(e, item)
    {
        hq_status_t st = read_shape(r, e, key, &shapes[i++]);
        if (st) {
            free(shapes);
            return st;
        }
    }
    *out = shapes;
    *count = n;
    return HQ_OK;
}

static bool add_extra(cJSON **extra, const cJSON *item)
{
    if (!*extra && !(*extra = cJSON_CreateObject()))
        return false;
    cJSON *copy = cJSON_Duplicate(item, true);
    if (!copy)
        return false;
    if (!cJSON_AddItemToObject(*extra, item->string, copy)) {
        cJSON_Delete(copy);
        return false;
    }
    return true;
}

/* ---- params ------------------------------------------------------------------------------ */

/* Params whose key belongs to a type's key set (HQI_P_*); keys of one group share the bit. */
typedef struct param_key {
    const char *key;
    unsigned bit;
} param_key_t;

static const param_key_t param_keys[] = {
    {"kernel_shape", HQI_P_KERNEL_SHAPE},
    {"strides", HQI_P_STRIDES},
    {"dilations", HQI_P_DILATIONS},
    {"groups", HQI_P_GROUPS},
    {"padding", HQI_P_PADDING},
    {"pads", HQI_P_PADS},
    {"output_padding", HQI_P_OUTPUT_PADDING},
    {"bias", HQI_P_BIAS},
    {"batch_norm", HQI_P_BATCH_NORM},
    {"elementwise_add", HQI_P_ELEMENTWISE_ADD},
    {"activation", HQI_P_ACTIVATION},
    {"activation_alpha", HQI_P_ACTIVATION},
    {"activation_beta", HQI_P_ACTIVATION},
    {"count_include_pad", HQI_P_COUNT_INCLUDE_PAD},
    {"axis", HQI_P_AXIS},
    {"split_sizes", HQI_P_SPLIT_SIZES},
    {"slice_begin", HQI_P_SLICE},
    {"slice_end", HQI_P_SLICE},
    {"slice_step", HQI_P_SLICE},
    {"pad_mode", HQI_P_PAD_MODE},
    {"pad_value", HQI_P_PAD_MODE},
    {"pad_channels", HQI_P_PAD_MODE},
    {"resize_method", HQI_P_RESIZE},
    {"resize_coords", HQI_P_RESIZE},
    {"nearest_round", HQI_P_RESIZE},
    {"nearest_ceil", HQI_P_RESIZE},
    {"resize_scales", HQI_P_RESIZE},
    {"block_size", HQI_P_BLOCK_SIZE},
    {"mode", HQI_P_D2S_MODE},
    {"mean", HQI_P_MEAN_STD},
    {"std", HQI_P_MEAN_STD},
    {"epsilon", HQI_P_EPSILON},
    {"perm", HQI_P_PERM},
};

static unsigned param_bit(const char *key)
{
    for (int i = 0; i < COUNT_OF(param_keys); i++)
        if (strcmp(param_keys[i].key, key) == 0)
            return param_keys[i].bit;
    return 0;
}

static hq_status_t read_floats(reader_t *r, const cJSON *item, const char *key, float **out,
                               int *count)
{
    if (!cJSON_IsArray(item))
        return bad(r, HQ_ERR_FORMAT, "'%s' must be an array", key);
    int n = cJSON_GetArraySize(item);
    if (n < 1 || n > MAX_LIST)
        return bad(r, HQ_ERR_FORMAT, "'%s' has %d entries (1 .. %d)", key, n, MAX_LIST);
    float *v = malloc(sizeof(float) * (size_t)n);
    if (!v)
        return hqi_nomem(r->err, r->file);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, item)
    {
        hq_status_t st = read_float(r, e, key, &v[i++]);
        if (st) {
            free(v);
            return st;
        }
    }
    free(*out);
    *out = v;
    *count = n;
    return HQ_OK;
}

static hq_status_t read_param(reader_t *r, hq_layer_t *l, const cJSON *item)
{
    const char *key = item->string;
    hq_layer_params_t *p = &l->params;
    int v[4], tmp;
    hq_status_t st = HQ_OK;
    bool pool = l->type == HQ_LAYER_MAXPOOL || l->type == HQ_LAYER_AVGPOOL;
    if (strcmp(key, "kernel_shape") == 0) {
        if (pool)
            return read_nhwc_pair(r, item, key, &p->kernel_h, &p->kernel_w);
        if (l->type == HQ_LAYER_DENSE) {
            if (!(st = read_ints(r, item, key, 2, v, NULL))) {
                p->kernel_in = v[0];
                p->kernel_out = v[1];
            }
            return st;
        }
        if (!(st = read_ints(r, item, key, 4, v, NULL))) {
            p->kernel_h = v[0];
            p->kernel_w = v[1];
            p->kernel_in = v[2];
            p->kernel_out = v[3];
        }
    } else if (strcmp(key, "strides") == 0) {
        st = read_nhwc_pair(r, item, key, &p->stride_h, &p->stride_w);
    } else if (strcmp(key, "dilations") == 0) {
        st = read_nhwc_pair(r, item, key, &p->dilation_h, &p->dilation_w);
    } else if (strcmp(key, "groups") == 0) {
        st = read_int32(r, item, key, &p->groups);
    } else if (strcmp(key, "padding") == 0) {
        if (!(st = read_enum(r, item, key, padding_names, COUNT_OF(padding_names), &tmp)))
            p->padding = (hq_padding_t)tmp;
    } else if (strcmp(key, "pads") == 0) {
        st = read_ints(r, item, key, 4, p->pads, NULL);
    } else if (strcmp(key, "output_padding") == 0) {
        st = read_ints(r, item, key, 2, p->output_pads, NULL);
    } else if (strcmp(key, "bias") == 0) {
        st = read_bool(r, item, key, &p->has_bias);
    } else if (strcmp(key, "batch_norm") == 0) {
        st = read_bool(r, item, key, &p->batch_norm);
    } else if (strcmp(key, "elementwise_add") == 0) {
        st = read_bool(r, item, key, &p->elementwise_add);
    } else if (strcmp(key, "activation") == 0) {
        if (!cJSON_IsString(item))
            return bad(r, HQ_ERR_FORMAT, "'activation' must be a string");
        if (hq_activation_from_name(item->valuestring, &p->activation))
            return bad(r, HQ_ERR_INVALID, "unknown activation '%.64s'", item->valuestring);
    } else if (strcmp(key, "activation_alpha") == 0) {
        st = read_float(r, item, key, &p->activation_alpha);
    } else if (strcmp(key, "activation_beta") == 0) {
        st = read_float(r, item, key, &p->activation_beta);
    } else if (strcmp(key, "count_include_pad") == 0) {
        st = read_bool(r, item, key, &p->count_include_pad);
    } else if (strcmp(key, "axis") == 0) {
        st = read_int32(r, item, key, &p->axis);
    } else if (strcmp(key, "split_sizes") == 0) {
        if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) < 1 ||
            cJSON_GetArraySize(item) > MAX_LIST)
            return bad(r, HQ_ERR_FORMAT, "'split_sizes' must be an array of 1 .. %d sizes",
                       MAX_LIST);
        int n = cJSON_GetArraySize(item);
        int *sizes = malloc(sizeof(int) * (size_t)n);
        if (!sizes)
            return hqi_nomem(r->err, r->file);
        if ((st = read_ints(r, item, key, n, sizes, NULL))) {
            free(sizes);
            return st;
        }
        free(p->split_sizes);
        p->split_sizes = sizes;
        p->split_count = n;
    } else if (strcmp(key, "slice_begin") == 0) {
        st = read_ints(r, item, key, 3, p->slice_begin, NULL);
    } else if (strcmp(key, "slice_end") == 0) {
        st = read_ints(r, item, key, 3, p->slice_end, NULL);
    } else if (strcmp(key, "slice_step") == 0) {
        st = read_ints(r, item, key, 3, p->slice_step, NULL);
    } else if (strcmp(key, "pad_mode") == 0) {
        if (!(st = read_enum(r, item, key, pad_mode_names, COUNT_OF(pad_mode_names), &tmp)))
            p->pad_mode = (hq_pad_mode_t)tmp;
    } else if (strcmp(key, "pad_value") == 0) {
        st = read_float(r, item, key, &p->pad_value);
    } else if (strcmp(key, "pad_channels") == 0) {
        st = read_ints(r, item, key, 2, p->pad_channels, NULL);
    } else if (strcmp(key, "resize_method") == 0) {
        if (!(st = read_enum(r, item, key, resize_method_names, COUNT_OF(resize_method_names),
                             &tmp)))
            p->resize_method = (hq_resize_method_t)tmp;
    } else if (strcmp(key, "resize_coords") == 0) {
        if (!(st = read_enum(r, item, key, resize_coords_names, COUNT_OF(resize_coords_names),
                             &tmp)))
            p->resize_coords = (hq_resize_coords_t)tmp;
    } else if (strcmp(key, "nearest_round") == 0) {
        st = read_bool(r, item, key, &p->nearest_round);
    } else if (strcmp(key, "nearest_ceil") == 0) {
        st = read_bool(r, item, key, &p->nearest_ceil);
    } else if (strcmp(key, "resize_scales") == 0) {
        if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) != 2)
            return bad(r, HQ_ERR_FORMAT, "'%s' must be an array of 2 numbers", key);
        for (int i = 0; i < 2 && !st; i++) {
            st = read_float(r, cJSON_GetArrayItem(item, i), key, &p->resize_scales[i]);
            if (!st && p->resize_scales[i] < 0)
                return bad(r, HQ_ERR_FORMAT, "'%s' must not be negative", key);
        }
    } else if (strcmp(key, "block_size") == 0) {
        st = read_int32(r, item, key, &p->block_size);
    } else if (strcmp(key, "mode") == 0) {
        static const char *const modes[] = {"DCR", "CRD"};
        if (!(st = read_enum(r, item, key, modes, 2, &tmp)))
            p->depth_to_space_crd = tmp == 1;
    } else if (strcmp(key, "mean") == 0) {
        st = read_floats(r, item, key, &p->mean, &tmp);
        if (!st && p->std && tmp != p->channels)
            return bad(r, HQ_ERR_INVALID, "'mean' has %d values, 'std' has %d", tmp, p->channels);
        if (!st)
            p->channels = tmp;
    } else if (strcmp(key, "std") == 0) {
        st = read_floats(r, item, key, &p->std, &tmp);
        if (!st && p->mean && tmp != p->channels)
            return bad(r, HQ_ERR_INVALID, "'mean' has %d values, 'std' has %d", p->channels, tmp);
        if (!st)
            p->channels = tmp;
    } else if (strcmp(key, "epsilon") == 0) {
        st = read_float(r, item, key, &p->epsilon);
    } else if (strcmp(key, "perm") == 0) {
        int n = 0;
        int perm[HQ_TENSOR_MAX_DIMS];
        if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) > HQ_TENSOR_MAX_DIMS)
            return bad(r, HQ_ERR_FORMAT, "'perm' must be an array of at most %d axes",
                       HQ_TENSOR_MAX_DIMS);
        if (!(st = read_ints(r, item, key, -1, perm, &n))) {
            for (int i = 0; i < HQ_TENSOR_MAX_DIMS; i++)
                p->perm[i] = i < n ? perm[i] : i;
        }
    }
    return st;
}

static hq_status_t read_params(reader_t *r, hqi_node_t *node, const cJSON *params)
{
    if (!cJSON_IsObject(params))
        return bad(r, HQ_ERR_FORMAT, "'params' must be an object");
    unsigned keys = hqi_layer_param_keys(node->layer.type);
    const cJSON *item;
    cJSON_ArrayForEach(item, params)
    {
        hq_status_t st;
        if (!item->string)
            continue;
        if (param_bit(item->string) & keys) {
            if ((st = read_param(r, &node->layer, item)))
                return st;
        } else if (!add_extra(&node->extra_params, item)) {
            return hqi_nomem(r->err, r->file);
        }
    }
    if ((node->layer.params.mean == NULL) != (node->layer.params.std == NULL))
        return bad(r, HQ_ERR_INVALID, "'mean' and 'std' must be given together");
    return HQ_OK;
}

/* ---- layers ------------------------------------------------------------------------------ */

static const char *const layer_keys[] = {"type",          "input",         "output",
                                         "output_ports",  "input_shapes",  "output_shapes",
                                         "original_names", "params",       "quantization_params"};

static bool is_layer_key(const char *key)
{
    for (int i = 0; i < COUNT_OF(layer_keys); i++)
        if (strcmp(layer_keys[i], key) == 0)
            return true;
    return false;
}

struct name_entry {
    const char *name;
    int index;
};

static int compare_entries(const void *a, const void *b)
{
    const name_entry_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

static int lookup(const reader_t *r, const char *name)
{
    int lo = 0, hi = r->graph->layer_count - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(r->sorted[mid].name, name);
        if (c == 0)
            return r->sorted[mid].index;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* Reads a list of layer names into index arrays (ports zero). */
static hq_status_t read_edges(reader_t *r, const cJSON *item, const char *key, int **indices,
                              int **ports, int *count)
{
    if (!cJSON_IsArray(item))
        return bad(r, HQ_ERR_FORMAT, "'%s' must be an array of layer names", key);
    int n = cJSON_GetArraySize(item);
    if (n > MAX_LIST)
        return bad(r, HQ_ERR_LIMIT, "'%s' lists %d layers", key, n);
    if (n == 0)
        return HQ_OK;
    *indices = calloc((size_t)n, sizeof(int));
    *ports = calloc((size_t)n, sizeof(int));
    if (!*indices || !*ports)
        return hqi_nomem(r->err, r->file);
    const cJSON *e;
    int i = 0;
    cJSON_ArrayForEach(e, item)
    {
        if (!cJSON_IsString(e))
            return bad(r, HQ_ERR_FORMAT, "'%s' entries must be layer names", key);
        int index = lookup(r, e->valuestring);
        if (index < 0)
            return hqi_error(r->err, HQ_ERR_NOT_FOUND, "%s: layer '%s' %s '%.200s' does not exist",
                             r->file, r->layer, key, e->valuestring);
        (*indices)[i++] = index;
    }
    *count = n;
    return HQ_OK;
}

static hq_status_t read_layer_body(reader_t *r, int index, const cJSON *obj)
{
    hqi_node_t *node = r->graph->nodes[index];
    hq_layer_t *l = &node->layer;
    hq_status_t st;
    const cJSON *item;
    if ((item = cJSON_GetObjectItemCaseSensitive(obj, "input")) &&
        (st = read_edges(r, item, "input", &l->inputs, &l->input_ports, &l->input_count)))
        return st;
    if ((item = cJSON_GetObjectItemCaseSensitive(obj, "output")) &&
        (st = read_edges(r, item, "output", &l->outputs, &l->output_ports, &l->output_count)))
        return st;
    if ((item = cJSON_GetObjectItemCaseSensitive(obj, "output_ports"))) {
        int n = cJSON_GetArraySize(item);
        if (!cJSON_IsArray(item) || n != l->output_count)
            return bad(r, HQ_ERR_FORMAT, "'output_ports' must have one entry per output (%d)",
                       l->output_count);
        if (n > 0 && (st = read_ints(r, item, "output_ports", n, l->output_ports, NULL)))
            return st;
    } else if (l->type == HQ_LAYER_FEATURE_SPLITTER) {
        for (int i = 0; i < l->output_count; i++)
            l->output_ports[i] = i; /* the k-th consumer gets the k-th piece */
    }
    if ((item = cJSON_GetObjectItemCaseSensitive(obj, "input_shapes"))) {
        if ((st = read_shapes(r, item, "input_shapes", &l->input_shapes, &l->input_shape_count)))
            return st;
        node->check_input_shapes = l->input_shape_count > 0;
    }
    if ((item = cJSON_GetObjectItemCaseSensitive(obj, "output_shapes"))) {
        if ((st = read_shapes(r, item, "output_shapes", &node->stored_shapes,
                              &node->stored_shape_count)))
            return st;
    }
    if (node->stored_shape_count == 0 && l->type == HQ_LAYER_INPUT && l->input_shape_count > 0 &&
        hqi_node_set_stored_shapes(node, l->input_shapes, 1))
        return hqi_nomem(r->err, r->file);
    if (node->stored_shape_count > 0)
        l->output_shape = node->stored_shapes[0];
    if ((item = cJSON_GetObjectItemCaseSensitive(obj, "original_names"))) {
        if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) > MAX_LIST)
            return bad(r, HQ_ERR_FORMAT, "'original_names' must be an array of strings");
        const cJSON *e;
        cJSON_ArrayForEach(e, item)
        {
            if (!cJSON_IsString(e))
                return bad(r, HQ_ERR_FORMAT, "'original_names' entries must be strings");
            if (hq_layer_add_original_name(r->graph, index, e->valuestring, r->err))
                return hqi_nomem(r->err, r->file);
        }
    }
    if ((item = cJSON_GetObjectItemCaseSensitive(obj, "params")) &&
        (st = read_params(r, node, item)))
        return st;
    if ((item = cJSON_GetObjectItemCaseSensitive(obj, "quantization_params"))) {
        if (!cJSON_IsObject(item))
            return bad(r, HQ_ERR_FORMAT, "'quantization_params' must be an object");
        const cJSON *e;
        cJSON_ArrayForEach(e, item)
        {
            if (e->string && strcmp(e->string, "precision_mode") == 0) {
                if (!cJSON_IsString(e) || strlen(e->valuestring) >= sizeof(l->precision_mode))
                    return bad(r, HQ_ERR_FORMAT,
                               "'precision_mode' must be a string of at most %d characters",
                               (int)sizeof(l->precision_mode) - 1);
                memcpy(l->precision_mode, e->valuestring, strlen(e->valuestring) + 1);
            } else if (e->string && !add_extra(&node->extra_quant, e)) {
                return hqi_nomem(r->err, r->file);
            }
        }
    }
    cJSON_ArrayForEach(item, obj)
    {
        if (item->string && !is_layer_key(item->string) && !add_extra(&node->extra_keys, item))
            return hqi_nomem(r->err, r->file);
    }
    return HQ_OK;
}

/* Each consumer slot takes the piece of the matching (k-th) edge in the producer's list. */
static void derive_input_ports(hq_graph_t *graph)
{
    for (int c = 0; c < graph->layer_count; c++) {
        hq_layer_t *l = &graph->nodes[c]->layer;
        for (int j = 0; j < l->input_count; j++) {
            const hq_layer_t *p = &graph->nodes[l->inputs[j]]->layer;
            int k = 0;
            for (int s = 0; s < j; s++)
                k += l->inputs[s] == l->inputs[j];
            for (int i = 0; i < p->output_count; i++)
                if (p->outputs[i] == c && k-- == 0) {
                    l->input_ports[j] = p->output_ports[i];
                    break;
                }
        }
    }
}

static hq_status_t read_outputs_order(reader_t *r, const cJSON *order)
{
    if (!cJSON_IsArray(order))
        return bad(r, HQ_ERR_FORMAT, "'net_params.output_layers_order' must be an array");
    int n = cJSON_GetArraySize(order);
    hq_graph_t *g = r->graph;
    if (n > g->layer_count)
        return bad(r, HQ_ERR_INVALID, "'output_layers_order' lists %d layers, the graph has %d",
                   n, g->layer_count);
    if (n == 0)
        return HQ_OK;
    int *list = malloc(sizeof(int) * (size_t)n);
    bool *used = calloc((size_t)g->layer_count, sizeof(bool));
    hq_status_t st = HQ_OK;
    if (!list || !used) {
        st = hqi_nomem(r->err, r->file);
        goto done;
    }
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, order)
    {
        if (!cJSON_IsString(e)) {
            st = bad(r, HQ_ERR_FORMAT, "'output_layers_order' entries must be layer names");
            goto done;
        }
        int index = lookup(r, e->valuestring), found = -1;
        if (index < 0) {
            st = bad(r, HQ_ERR_NOT_FOUND, "'output_layers_order' names '%.200s', which does not exist",
                     e->valuestring);
            goto done;
        }
        if (g->nodes[index]->layer.type == HQ_LAYER_OUTPUT) {
            found = used[index] ? -1 : index;
        } else {
            /* Hailo lists the layer feeding each output layer. */
            const hq_layer_t *l = &g->nodes[index]->layer;
            for (int i = 0; i < l->output_count && found < 0; i++) {
                int o = l->outputs[i];
                if (g->nodes[o]->layer.type == HQ_LAYER_OUTPUT && !used[o])
                    found = o;
            }
        }
        if (found < 0) {
            st = bad(r, HQ_ERR_INVALID,
                     "'output_layers_order' names '%.200s', which is not an unlisted output "
                     "layer and feeds none",
                     e->valuestring);
            goto done;
        }
        used[found] = true;
        list[k++] = found;
    }
    free(g->outputs_order);
    g->outputs_order = list;
    g->outputs_order_count = k;
    list = NULL;
done:
    free(list);
    free(used);
    return st;
}

static hq_status_t read_graph(reader_t *r, const cJSON *root)
{
    if (!cJSON_IsObject(root))
        return bad(r, HQ_ERR_FORMAT, "the top level must be a JSON object");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(root, "layers");
    const cJSON *net_params = cJSON_GetObjectItemCaseSensitive(root, "net_params");
    if (!cJSON_IsString(name) || !name->valuestring[0])
        return bad(r, HQ_ERR_FORMAT, "field 'name' must be a non-empty string");
    if (!cJSON_IsObject(layers))
        return bad(r, HQ_ERR_FORMAT, "field 'layers' must be an object");
    if (net_params && !cJSON_IsObject(net_params))
        return bad(r, HQ_ERR_FORMAT, "field 'net_params' must be an object");
    hq_status_t st = hq_graph_create(name->valuestring, &r->graph, r->err);
    if (st)
        return st;
    hq_graph_t *g = r->graph;
    const cJSON *item;
    cJSON_ArrayForEach(item, root)
    {
        if (item->string && strcmp(item->string, "name") && strcmp(item->string, "layers") &&
            strcmp(item->string, "net_params") && !add_extra(&g->extra_top, item))
            return hqi_nomem(r->err, r->file);
    }
    if (net_params) {
        cJSON_ArrayForEach(item, net_params)
        {
            if (item->string && strcmp(item->string, "output_layers_order") &&
                !add_extra(&g->extra_net_params, item))
                return hqi_nomem(r->err, r->file);
        }
    }
    /* Pass 1: every layer with its type, so that edges can refer forward. */
    int n = cJSON_GetArraySize(layers);
    if (n > MAX_LAYERS)
        return bad(r, HQ_ERR_LIMIT, "%d layers exceed the limit of %d", n, MAX_LAYERS);
    cJSON_ArrayForEach(item, layers)
    {
        r->layer = item->string;
        if (!item->string || !item->string[0])
            return bad(r, HQ_ERR_FORMAT, "a layer has an empty name");
        if (!cJSON_IsObject(item))
            return bad(r, HQ_ERR_FORMAT, "must be an object");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(item, "type");
        hq_layer_type_t t;
        if (!cJSON_IsString(type))
            return bad(r, HQ_ERR_FORMAT, "field 'type' is missing");
        if (hq_layer_type_from_name(type->valuestring, &t))
            return bad(r, HQ_ERR_UNSUPPORTED, "unknown type '%.64s'", type->valuestring);
        char *copy = hqi_strdup(item->string);
        if (!copy || (st = hqi_graph_add_node(g, copy, t, NULL, r->err)))
            return copy ? st : hqi_nomem(r->err, r->file);
    }
    r->layer = NULL;
    n = g->layer_count;
    r->sorted = malloc(sizeof(*r->sorted) * (size_t)(n ? n : 1));
    if (!r->sorted)
        return hqi_nomem(r->err, r->file);
    for (int i = 0; i < n; i++)
        r->sorted[i] = (name_entry_t){g->nodes[i]->layer.name, i};
    qsort(r->sorted, (size_t)n, sizeof(*r->sorted), compare_entries);
    for (int i = 1; i < n; i++)
        if (strcmp(r->sorted[i].name, r->sorted[i - 1].name) == 0)
            return bad(r, HQ_ERR_INVALID, "layer '%s' is defined twice", r->sorted[i].name);
    /* Pass 2: the body of every layer. */
    int index = 0;
    cJSON_ArrayForEach(item, layers)
    {
        r->layer = item->string;
        if ((st = read_layer_body(r, index++, item)))
            return st;
    }
    r->layer = NULL;
    derive_input_ports(g);
    if (net_params && (item = cJSON_GetObjectItemCaseSensitive(net_params, "output_layers_order")) &&
        (st = read_outputs_order(r, item)))
        return st;
    return hq_graph_finalize(g, r->file, r->err);
}

HQ_API hq_status_t hq_graph_from_json(const char *json, size_t len, const char *name,
                                      hq_graph_t **out, hq_error_t *err)
{
    const char *file = name ? name : "<hn>";
    if (!out)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: out is NULL", file);
    *out = NULL;
    if (!json)
        return hqi_error(err, HQ_ERR_ARGUMENT, "%s: no JSON text", file);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, false);
    if (!root) {
        size_t at = end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
        const char *where = cJSON_GetErrorPtr();
        if (where && where >= json && where <= json + len)
            at = (size_t)(where - json);
        return hqi_error(err, HQ_ERR_FORMAT, "%s: invalid JSON near byte %zu", file, at);
    }
    reader_t r = {.file = file, .err = err};
    hq_status_t st = read_graph(&r, root);
    free(r.sorted);
    cJSON_Delete(root);
    if (st) {
        hq_graph_destroy(r.graph);
        return st;
    }
    *out = r.graph;
    return HQ_OK;
}

/* ---- writing ----------------------------------------------------------------------------- */

/* A double that prints as the shortest decimal that reads back as the same float. */
static double short_float(float f)
{
    char buf[32];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, sizeof(buf), "%.*g", digits, (double)f);
        double d = strtod(buf, NULL);
        if ((float)d == f)
            return d;
    }
    return (double)f;
}

static bool add_float(cJSON *obj, const char *key, float v)
{
    return cJSON_AddNumberToObject(obj, key, short_float(v)) != NULL;
}

static bool add_ints(cJSON *obj, const char *key, const int *v, int n)
{
    cJSON *a = cJSON_CreateIntArray(v, n);
    if (!a)
        return false;
    if (!cJSON_AddItemToObject(obj, key, a)) {
        cJSON_Delete(a);
        return false;
    }
    return true;
}

static bool add_floats(cJSON *obj, const char *key, const float *v, int n)
{
    cJSON *a = cJSON_AddArrayToObject(obj, key);
    for (int i = 0; a && i < n; i++) {
        cJSON *e = cJSON_CreateNumber(short_float(v[i]));
        if (!e || !cJSON_AddItemToArray(a, e)) {
            cJSON_Delete(e);
            return false;
        }
    }
    return a != NULL;
}

static cJSON *shape_json(const hq_shape_t *s)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < s->ndim; i++) {
        cJSON *e = cJSON_CreateNumber((double)s->dims[i]);
        if (!e || !cJSON_AddItemToArray(a, e)) {
            cJSON_Delete(e);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

static bool add_shape(cJSON *array, const hq_shape_t *s)
{
    cJSON *e = shape_json(s);
    if (!e || !cJSON_AddItemToArray(array, e)) {
        cJSON_Delete(e);
        return false;
    }
    return true;
}

static bool append_extras(cJSON *obj, const cJSON *extra)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, extra)
    {
        cJSON *copy = cJSON_Duplicate(item, true);
        if (!copy || !cJSON_AddItemToObject(obj, item->string, copy)) {
            cJSON_Delete(copy);
            return false;
        }
    }
    return true;
}

static bool write_params(cJSON *obj, const hqi_node_t *node)
{
    const hq_layer_t *l = &node->layer;
    const hq_layer_params_t *p = &l->params;
    unsigned keys = hqi_layer_param_keys(l->type);
    bool ok = true;
    if (keys & HQI_P_KERNEL_SHAPE) {
        int k4[4] = {p->kernel_h, p->kernel_w, p->kernel_in, p->kernel_out};
        int pool[4] = {1, p->kernel_h, p->kernel_w, 1};
        int dense[2] = {p->kernel_in, p->kernel_out};
        if (l->type == HQ_LAYER_DENSE)
            ok = ok && add_ints(obj, "kernel_shape", dense, 2);
        else if (l->type == HQ_LAYER_MAXPOOL || l->type == HQ_LAYER_AVGPOOL)
            ok = ok && add_ints(obj, "kernel_shape", pool, 4);
        else
            ok = ok && add_ints(obj, "kernel_shape", k4, 4);
    }
    if (keys & HQI_P_STRIDES) {
        int v[4] = {1, p->stride_h, p->stride_w, 1};
        ok = ok && add_ints(obj, "strides", v, 4);
    }
    /* an undilated maxpool writes no dilations, so its .hn reads as before they existed */
    bool undilated = p->dilation_h == 1 && p->dilation_w == 1;
    if ((keys & HQI_P_DILATIONS) && !(l->type == HQ_LAYER_MAXPOOL && undilated)) {
        int v[4] = {1, p->dilation_h, p->dilation_w, 1};
        ok = ok && add_ints(obj, "dilations", v, 4);
    }
    if (keys & HQI_P_GROUPS)
        ok = ok && cJSON_AddNumberToObject(obj, "groups", p->groups);
    if (keys & HQI_P_PADDING) {
        int pad = (int)p->padding;
        ok = ok && cJSON_AddStringToObject(
                       obj, "padding",
                       pad >= 0 && pad < COUNT_OF(padding_names) ? padding_names[pad] : "VALID");
    }
    if (keys & HQI_P_PADS)
        ok = ok && add_ints(obj, "pads", p->pads, 4);
    if (keys & HQI_P_OUTPUT_PADDING)
        ok = ok && add_ints(obj, "output_padding", p->output_pads, 2);
    if (keys & HQI_P_BIAS)
        ok = ok && cJSON_AddBoolToObject(obj, "bias", p->has_bias);
    if (keys & HQI_P_BATCH_NORM)
        ok = ok && cJSON_AddBoolToObject(obj, "batch_norm", p->batch_norm);
    if (keys & HQI_P_ELEMENTWISE_ADD)
        ok = ok && cJSON_AddBoolToObject(obj, "elementwise_add", p->elementwise_add);
    if (keys & HQI_P_ACTIVATION) {
        const char *act = hq_activation_name(p->activation);
        ok = ok && cJSON_AddStringToObject(obj, "activation", act ? act : "linear");
        bool uses_alpha = p->activation == HQ_ACT_LEAKY || p->activation == HQ_ACT_HARDSIGMOID ||
                          p->activation == HQ_ACT_CLIP;
        bool uses_beta = p->activation == HQ_ACT_HARDSIGMOID || p->activation == HQ_ACT_CLIP;
        if (uses_alpha || p->activation_alpha != 0.0f)
            ok = ok && add_float(obj, "activation_alpha", p->activation_alpha);
        if (uses_beta || p->activation_beta != 0.0f)
            ok = ok && add_float(obj, "activation_beta", p->activation_beta);
    }
    if (keys & HQI_P_COUNT_INCLUDE_PAD)
        ok = ok && cJSON_AddBoolToObject(obj, "count_include_pad", p->count_include_pad);
    if (keys & HQI_P_AXIS)
        ok = ok && cJSON_AddNumberToObject(obj, "axis", p->axis);
    if ((keys & HQI_P_SPLIT_SIZES) && p->split_count > 0)
        ok = ok && add_ints(obj, "split_sizes", p->split_sizes, p->split_count);
    if (keys & HQI_P_SLICE) {
        ok = ok && add_ints(obj, "slice_begin", p->slice_begin, 3) &&
             add_ints(obj, "slice_end", p->slice_end, 3) &&
             add_ints(obj, "slice_step", p->slice_step, 3);
    }
    if (keys & HQI_P_PAD_MODE) {
        int m = (int)p->pad_mode;
        ok = ok &&
             cJSON_AddStringToObject(obj, "pad_mode",
                                     m >= 0 && m < COUNT_OF(pad_mode_names) ? pad_mode_names[m]
                                                                            : "constant") &&
             add_float(obj, "pad_value", p->pad_value) &&
             add_ints(obj, "pad_channels", p->pad_channels, 2);
    }
    if (keys & HQI_P_RESIZE) {
        int m = (int)p->resize_method, c = (int)p->resize_coords;
        ok = ok &&
             cJSON_AddStringToObject(obj, "resize_method",
                                     m >= 0 && m < COUNT_OF(resize_method_names)
                                         ? resize_method_names[m]
                                         : "nearest_neighbor") &&
             cJSON_AddStringToObject(obj, "resize_coords",
                                     c >= 0 && c < COUNT_OF(resize_coords_names)
                                         ? resize_coords_names[c]
                                         : "asymmetric") &&
             cJSON_AddBoolToObject(obj, "nearest_round", p->nearest_round);
        /* written only when set, so the .hn of a plain resize reads as it always has */
        if (p->nearest_ceil)
            ok = ok && cJSON_AddBoolToObject(obj, "nearest_ceil", true);
        if (p->resize_scales[0] != 0 || p->resize_scales[1] != 0)
            ok = ok && add_floats(obj, "resize_scales", p->resize_scales, 2);
    }
    if (keys & HQI_P_BLOCK_SIZE)
        ok = ok && cJSON_AddNumberToObject(obj, "block_size", p->block_size);
    if (keys & HQI_P_D2S_MODE)
        ok = ok && cJSON_AddStringToObject(obj, "mode", p->depth_to_space_crd ? "CRD" : "DCR");
    if ((keys & HQI_P_MEAN_STD) && p->channels > 0 && p->mean && p->std)
        ok = ok && add_floats(obj, "mean", p->mean, p->channels) &&
             add_floats(obj, "std", p->std, p->channels);
    if (keys & HQI_P_EPSILON)
        ok = ok && add_float(obj, "epsilon", p->epsilon);
    if (keys & HQI_P_PERM) {
        int ndim = l->input_shape_count > 0 ? l->input_shapes[0].ndim : l->output_shape.ndim;
        if (ndim < 1 || ndim > HQ_TENSOR_MAX_DIMS)
            ndim = 4;
        ok = ok && add_ints(obj, "perm", p->perm, ndim);
    }
    return ok && append_extras(obj, node->extra_params);
}

static cJSON *names_json(const hq_graph_t *g, const int *indices, int count)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < count; i++) {
        cJSON *e = cJSON_CreateString(g->nodes[indices[i]]->layer.name);
        if (!e || !cJSON_AddItemToArray(a, e)) {
            cJSON_Delete(e);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

static bool add_item(cJSON *obj, const char *key, cJSON *item)
{
    if (!item)
        return false;
    if (!cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

static bool write_layer(cJSON *layers, const hq_graph_t *g, const hqi_node_t *node)
{
    const hq_layer_t *l = &node->layer;
    cJSON *obj = cJSON_CreateObject();
    if (!add_item(layers, l->name, obj))
        return false;
    bool ok = cJSON_AddStringToObject(obj, "type", hq_layer_type_name(l->type)) &&
              add_item(obj, "input", names_json(g, l->inputs, l->input_count)) &&
              add_item(obj, "output", names_json(g, l->outputs, l->output_count));
    if (ok && l->type == HQ_LAYER_FEATURE_SPLITTER)
        ok = add_ints(obj, "output_ports", l->output_ports, l->output_count);
    cJSON *in_shapes = cJSON_CreateArray();
    for (int i = 0; ok && in_shapes && i < l->input_shape_count; i++)
        ok = add_shape(in_shapes, &l->input_shapes[i]);
    ok = ok && add_item(obj, "input_shapes", in_shapes);
    cJSON *out_shapes = cJSON_CreateArray();
    if (ok && out_shapes && l->output_count > 0) {
        for (int i = 0; ok && i < l->output_count; i++) {
            hq_shape_t s = hq_layer_port_shape(l, l->output_ports[i]);
            ok = add_shape(out_shapes, &s);
        }
    } else if (ok && out_shapes) {
        for (int i = 0; ok && i < hq_layer_port_count(l); i++) {
            hq_shape_t s = hq_layer_port_shape(l, i);
            ok = add_shape(out_shapes, &s);
        }
    }
    ok = ok && add_item(obj, "output_shapes", out_shapes);
    cJSON *names = cJSON_CreateArray();
    for (int i = 0; ok && names && i < l->original_name_count; i++) {
        cJSON *e = cJSON_CreateString(l->original_names[i]);
        ok = e && cJSON_AddItemToArray(names, e);
        if (!ok)
            cJSON_Delete(e);
    }
    ok = ok && add_item(obj, "original_names", names);
    cJSON *params = cJSON_CreateObject();
    ok = ok && add_item(obj, "params", params) && write_params(params, node);
    if (ok && (l->precision_mode[0] || node->extra_quant)) {
        cJSON *q = cJSON_CreateObject();
        ok = add_item(obj, "quantization_params", q);
        char mode[sizeof(l->precision_mode) + 1];
        memcpy(mode, l->precision_mode, sizeof(l->precision_mode));
        mode[sizeof(l->precision_mode)] = '\0';
        if (ok && mode[0])
            ok = cJSON_AddStringToObject(q, "precision_mode", mode) != NULL;
        ok = ok && append_extras(q, node->extra_quant);
    }
    return ok && append_extras(obj, node->extra_keys);
}

HQ_API hq_status_t hq_graph_to_json(const hq_graph_t *graph, char **json, size_t *len,
                                    hq_error_t *err)
{
    if (!graph || !json)
        return hqi_error(err, HQ_ERR_ARGUMENT, "hq_graph_to_json: graph or json is NULL");
    *json = NULL;
    if (len)
        *len = 0;
    if (!graph->finalized)
        return hqi_error(err, HQ_ERR_STATE, "%s: the graph must be finalized before writing",
                         graph->net_name);
    cJSON *root = cJSON_CreateObject();
    bool ok = root && cJSON_AddStringToObject(root, "name", graph->net_name);
    cJSON *net_params = cJSON_CreateObject();
    ok = ok && add_item(root, "net_params", net_params);
    cJSON *order = cJSON_CreateArray();
    for (int i = 0; ok && order && i < graph->output_list_count; i++) {
        const hq_layer_t *o = &graph->nodes[graph->output_list[i]]->layer;
        const char *name = o->input_count > 0 ? graph->nodes[o->inputs[0]]->layer.name : o->name;
        cJSON *e = cJSON_CreateString(name);
        ok = e && cJSON_AddItemToArray(order, e);
        if (!ok)
            cJSON_Delete(e);
    }
    ok = ok && add_item(net_params, "output_layers_order", order) &&
         append_extras(net_params, graph->extra_net_params);
    cJSON *layers = cJSON_CreateObject();
    ok = ok && add_item(root, "layers", layers);
    for (int i = 0; ok && i < graph->layer_count; i++)
        ok = write_layer(layers, graph, graph->nodes[i]);
    ok = ok && append_extras(root, graph->extra_top);
    char *text = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return hqi_nomem(err, "hq_graph_to_json");
    size_t n = strlen(text);
    char *out = malloc(n + 2);
    if (!out) {
        cJSON_free(text);
        return hqi_nomem(err, "hq_graph_to_json");
    }
    memcpy(out, text, n);
    out[n] = '\n';
    out[n + 1] = '\0';
    cJSON_free(text);
    *json = out;
    if (len)
        *len = n + 1;
    return HQ_OK;
}
