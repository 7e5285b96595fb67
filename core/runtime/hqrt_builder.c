/* hqrt_builder.c — serializes `.hqx` programs (layout in hqrt_format.h and docs/deploy.md) and
 * plans the activation arena at compile time, so that the runtime only follows offsets. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hqrt_builder.h"
#include "hqrt_internal.h"

typedef struct bop {
    hqx_op_t op; /* params_offset relative to the params area until finish */
} bop_t;

struct hqrt_builder {
    char error[256];
    char hw_arch[16];
    uint32_t net_name;
    hqx_tensor_t *tensors;
    uint32_t tensor_count, tensor_cap;
    bop_t *ops;
    uint32_t op_count, op_cap;
    uint32_t *ids;
    uint32_t id_count, id_cap;
    uint8_t *params;
    size_t params_len, params_cap;
    char *strings;
    size_t strings_len, strings_cap;
    uint8_t *data;
    size_t data_len, data_cap;
    uint32_t io_first, input_count, output_count;
    int io_set;
};

static int fail(hqrt_builder_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(hqrt_builder_t *b, const char *fmt, ...)
{
    if (!b->error[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->error, sizeof b->error, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int grow(hqrt_builder_t *b, void **buf, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *p = realloc(*buf, n * elem);
    if (!p)
        return fail(b, "out of memory");
    *buf = p;
    *cap = n;
    return 0;
}

static int grow32(hqrt_builder_t *b, void **buf, uint32_t *cap, uint32_t need, size_t elem)
{
    size_t c = *cap;
    int r = grow(b, buf, &c, need, elem);
    *cap = (uint32_t)c;
    return r;
}

static uint32_t add_string(hqrt_builder_t *b, const char *s)
{
    size_t n = strlen(s ? s : "") + 1;
    if (grow(b, (void **)&b->strings, &b->strings_cap, b->strings_len + n, 1))
        return 0;
    memcpy(b->strings + b->strings_len, s ? s : "", n);
    uint32_t at = (uint32_t)b->strings_len;
    b->strings_len += n;
    return at;
}

hqrt_builder_t *hqrt_b_create(const char *net_name, const char *hw_arch)
{
    hqrt_builder_t *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    snprintf(b->hw_arch, sizeof b->hw_arch, "%s", hw_arch ? hw_arch : "");
    add_string(b, ""); /* offset 0: the empty string */
    b->net_name = add_string(b, net_name);
    if (b->error[0]) {
        hqrt_b_destroy(b);
        return NULL;
    }
    return b;
}

void hqrt_b_destroy(hqrt_builder_t *b)
{
    if (!b)
        return;
    free(b->tensors);
    free(b->ops);
    free(b->ids);
    free(b->params);
    free(b->strings);
    free(b->data);
    free(b);
}

const char *hqrt_b_error(const hqrt_builder_t *b)
{
    return b->error;
}

int32_t hqrt_b_tensor(hqrt_builder_t *b, const char *name, uint32_t ndim, uint32_t h, uint32_t w,
                      uint32_t c, uint32_t bits, float qp_scale, int32_t qp_zp)
{
    if (b->tensor_count >= HQX_MAX_TENSORS)
        return fail(b, "more than %u tensors", HQX_MAX_TENSORS);
    if (grow32(b, (void **)&b->tensors, &b->tensor_cap, b->tensor_count + 1, sizeof *b->tensors))
        return -1;
    uint32_t name_at = add_string(b, name);
    hqx_tensor_t *t = &b->tensors[b->tensor_count];
    *t = (hqx_tensor_t){.name = name_at,
                        .bits = bits,
                        .ndim = ndim,
                        .qp_zp = qp_zp,
                        .qp_scale = qp_scale,
                        .h = h,
                        .w = w,
                        .c = c};
    t->bytes = (uint64_t)h * w * c * (bits / 8);
    return b->error[0] ? -1 : (int32_t)b->tensor_count++;
}

hqx_blob_t hqrt_b_blob(hqrt_builder_t *b, const void *data, size_t size)
{
    hqx_blob_t blob = {0, 0};
    if (!size)
        return blob;
    size_t at = (b->data_len + HQX_ALIGN - 1) / HQX_ALIGN * HQX_ALIGN;
    if (grow(b, (void **)&b->data, &b->data_cap, at + size, 1))
        return blob;
    memset(b->data + b->data_len, 0, at - b->data_len);
    memcpy(b->data + at, data, size);
    b->data_len = at + size;
    blob.offset = at;
    blob.size = size;
    return blob;
}

static uint32_t add_ids(hqrt_builder_t *b, const int32_t *ids, uint32_t n)
{
    if (grow32(b, (void **)&b->ids, &b->id_cap, b->id_count + n + 1, sizeof *b->ids))
        return 0;
    uint32_t first = b->id_count;
    for (uint32_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (uint32_t)ids[i] >= b->tensor_count)
            fail(b, "tensor id %d out of range", ids[i]);
        b->ids[b->id_count++] = (uint32_t)ids[i];
    }
    return first;
}

int hqrt_b_op(hqrt_builder_t *b, uint32_t code, const char *name, const void *params,
              uint32_t params_size, const int32_t *inputs, uint32_t input_count,
              const int32_t *outputs, uint32_t output_count)
{
    if (b->op_count >= HQX_MAX_OPS)
        return fail(b, "more than %u ops", HQX_MAX_OPS);
    if (grow32(b, (void **)&b->ops, &b->op_cap, b->op_count + 1, sizeof *b->ops))
        return -1;
    size_t at = (b->params_len + 7) / 8 * 8;
    if (grow(b, (void **)&b->params, &b->params_cap, at + params_size, 1))
        return -1;
    memset(b->params + b->params_len, 0, at - b->params_len);
    memcpy(b->params + at, params, params_size);
    b->params_len = at + params_size;
    hqx_op_t op = {.code = code,
                   .name = add_string(b, name),
                   .input_count = (uint16_t)input_count,
                   .output_count = (uint16_t)output_count,
                   .params_size = params_size,
                   .params_offset = at};
    op.inputs_first = add_ids(b, inputs, input_count);
    op.outputs_first = add_ids(b, outputs, output_count);
    b->ops[b->op_count++].op = op;
    return b->error[0] ? -1 : 0;
}

int hqrt_b_io(hqrt_builder_t *b, const int32_t *inputs, uint32_t input_count,
              const int32_t *outputs, uint32_t output_count)
{
    b->io_first = add_ids(b, inputs, input_count);
    add_ids(b, outputs, output_count);
    b->input_count = input_count;
    b->output_count = output_count;
    b->io_set = 1;
    return b->error[0] ? -1 : 0;
}

/* Blob fields of each op's params, rebased at serialization (table over switch). */
typedef struct blob_fields {
    size_t offsets[8];
    int count;
} blob_fields_t;

#define STAGE_BLOBS(type)                                                                          \
    offsetof(type, stage.multiplier), offsetof(type, stage.shift),                                 \
        offsetof(type, stage.multiplier_neg), offsetof(type, stage.shift_neg),                     \
        offsetof(type, stage.lut)

static const blob_fields_t op_blobs[HQX_OP_COUNT_] = {
    [HQX_OP_CONV] = {{offsetof(hqx_conv_params_t, weights), offsetof(hqx_conv_params_t, bias),
                      STAGE_BLOBS(hqx_conv_params_t)},
                     7},
    [HQX_OP_DENSE] = {{offsetof(hqx_conv_params_t, weights), offsetof(hqx_conv_params_t, bias),
                       STAGE_BLOBS(hqx_conv_params_t)},
                      7},
    [HQX_OP_MAXPOOL] = {{STAGE_BLOBS(hqx_pool_params_t)}, 5},
    [HQX_OP_AVGPOOL] = {{STAGE_BLOBS(hqx_pool_params_t)}, 5},
    [HQX_OP_GLOBAL_AVG] = {{STAGE_BLOBS(hqx_pool_params_t)}, 5},
    [HQX_OP_ELTWISE] = {{STAGE_BLOBS(hqx_eltwise_params_t)}, 5},
    [HQX_OP_ACTIVATION] = {{STAGE_BLOBS(hqx_stage_params_t)}, 5},
    [HQX_OP_LUT] = {{STAGE_BLOBS(hqx_stage_params_t)}, 5},
    [HQX_OP_DECONV] = {{offsetof(hqx_conv_params_t, weights), offsetof(hqx_conv_params_t, bias),
                        STAGE_BLOBS(hqx_conv_params_t)},
                       7},
    [HQX_OP_CONST] = {{offsetof(hqx_const_params_t, data)}, 1},
    [HQX_OP_SOFTMAX] = {{offsetof(hqx_softmax_params_t, exp_lut),
                         STAGE_BLOBS(hqx_softmax_params_t)},
                        6},
    [HQX_OP_LAYER_NORM] = {{offsetof(hqx_layer_norm_params_t, gamma),
                            offsetof(hqx_layer_norm_params_t, bias),
                            STAGE_BLOBS(hqx_layer_norm_params_t)},
                           7},
};

/* Greedy-by-size arena plan: biggest tensors first, each at the lowest 64-aligned offset that
 * does not overlap a placed tensor whose lifetime intersects its own. */
static int plan_arena(hqrt_builder_t *b, uint64_t *arena_size)
{
    uint32_t n = b->tensor_count;
    hqrt_i_live_t *live = calloc(n ? n : 1, sizeof *live);
    uint32_t *order = calloc(n ? n : 1, sizeof *order);
    uint32_t *placed = calloc(n ? n : 1, sizeof *placed);
    if (!live || !order || !placed) {
        free(live), free(order), free(placed);
        return fail(b, "out of memory");
    }
    for (uint32_t t = 0; t < n; t++)
        live[t] = (hqrt_i_live_t){INT64_MAX, INT64_MIN};
    for (uint32_t i = 0; i < b->input_count; i++) {
        uint32_t t = b->ids[b->io_first + i];
        live[t].def = -1;
        live[t].last = live[t].last < -1 ? -1 : live[t].last;
    }
    for (uint32_t k = 0; k < b->op_count; k++) {
        const hqx_op_t *op = &b->ops[k].op;
        for (uint32_t i = 0; i < op->input_count; i++) {
            uint32_t t = b->ids[op->inputs_first + i];
            live[t].last = live[t].last < k ? (int64_t)k : live[t].last;
        }
        for (uint32_t i = 0; i < op->output_count; i++) {
            uint32_t t = b->ids[op->outputs_first + i];
            if (live[t].def > (int64_t)k)
                live[t].def = k;
            live[t].last = live[t].last < k ? (int64_t)k : live[t].last;
        }
    }
    for (uint32_t i = 0; i < b->output_count; i++)
        live[b->ids[b->io_first + b->input_count + i]].last = b->op_count;
    for (uint32_t t = 0; t < n; t++)
        order[t] = t;
    /* insertion sort by size, descending (stable: ties keep id order) */
    for (uint32_t i = 1; i < n; i++) {
        uint32_t v = order[i];
        uint32_t j = i;
        while (j > 0 && b->tensors[order[j - 1]].bytes < b->tensors[v].bytes) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
    uint64_t top = 0;
    uint32_t placed_count = 0;
    for (uint32_t i = 0; i < n; i++) {
        hqx_tensor_t *t = &b->tensors[order[i]];
        const hqrt_i_live_t *lt = &live[order[i]];
        uint64_t offset = 0;
        bool moved = true;
        while (moved) { /* bump past every conflicting placed tensor until none conflicts */
            moved = false;
            for (uint32_t k = 0; k < placed_count; k++) {
                const hqx_tensor_t *o = &b->tensors[placed[k]];
                const hqrt_i_live_t *lo = &live[placed[k]];
                bool together = lt->def <= lo->last && lo->def <= lt->last;
                if (together && offset < o->arena_offset + o->bytes &&
                    o->arena_offset < offset + t->bytes) {
                    offset = (o->arena_offset + o->bytes + HQX_ALIGN - 1) / HQX_ALIGN * HQX_ALIGN;
                    moved = true;
                }
            }
        }
        t->arena_offset = offset;
        placed[placed_count++] = order[i];
        if (offset + t->bytes > top)
            top = offset + t->bytes;
    }
    *arena_size = (top + HQX_ALIGN - 1) / HQX_ALIGN * HQX_ALIGN;
    free(live), free(order), free(placed);
    return 0;
}

static size_t align_up(size_t v, size_t a)
{
    return (v + a - 1) / a * a;
}

int hqrt_b_finish(hqrt_builder_t *b, uint8_t **bytes, size_t *len)
{
    *bytes = NULL;
    *len = 0;
    if (b->error[0])
        return -1;
    if (!b->io_set)
        return fail(b, "program inputs and outputs not declared");
    uint64_t arena = 0;
    if (plan_arena(b, &arena))
        return -1;
    size_t tensors_at = align_up(HQX_HEADER_SIZE, 8);
    size_t ops_at = align_up(tensors_at + b->tensor_count * sizeof(hqx_tensor_t), 8);
    size_t ids_at = align_up(ops_at + b->op_count * sizeof(hqx_op_t), 8);
    size_t params_at = align_up(ids_at + b->id_count * sizeof(uint32_t), 8);
    size_t strings_at = params_at + b->params_len;
    size_t data_at = align_up(strings_at + b->strings_len, HQX_ALIGN);
    size_t total = data_at + b->data_len;
    uint8_t *out = calloc(1, total);
    if (!out)
        return fail(b, "out of memory for a %zu-byte program", total);
    uint32_t version = 1;
    for (uint32_t i = 0; i < b->op_count; i++)
        if (hqx_op_version(b->ops[i].op.code) > version)
            version = hqx_op_version(b->ops[i].op.code);
    hqx_header_t h = {
        .version = version,
        .header_size = HQX_HEADER_SIZE,
        .total_size = total,
        .net_name = b->net_name,
        .tensor_count = b->tensor_count,
        .op_count = b->op_count,
        .input_count = b->input_count,
        .output_count = b->output_count,
        .id_count = b->id_count,
        .io_first = b->io_first,
        .tensors_offset = tensors_at,
        .ops_offset = ops_at,
        .ids_offset = ids_at,
        .params_offset = params_at,
        .params_size = b->params_len,
        .strings_offset = strings_at,
        .strings_size = b->strings_len,
        .data_offset = data_at,
        .data_size = b->data_len,
        .arena_size = arena,
    };
    memcpy(h.magic, HQX_MAGIC, 8);
    memcpy(h.hw_arch, b->hw_arch, sizeof h.hw_arch);
    h.hw_arch[sizeof h.hw_arch - 1] = 0;
    memcpy(out, &h, sizeof h);
    memcpy(out + tensors_at, b->tensors, b->tensor_count * sizeof(hqx_tensor_t));
    hqx_op_t *ops = (hqx_op_t *)(void *)(out + ops_at);
    memcpy(out + params_at, b->params, b->params_len);
    for (uint32_t i = 0; i < b->op_count; i++) {
        ops[i] = b->ops[i].op;
        ops[i].params_offset += params_at;
        if (ops[i].code < HQX_OP_COUNT_) {
            const blob_fields_t *f = &op_blobs[ops[i].code];
            for (int k = 0; k < f->count; k++) {
                if (f->offsets[k] + sizeof(hqx_blob_t) > ops[i].params_size)
                    continue;
                hqx_blob_t *blob =
                    (hqx_blob_t *)(void *)(out + ops[i].params_offset + f->offsets[k]);
                if (blob->size)
                    blob->offset += data_at;
            }
        }
    }
    if (b->id_count) /* memcpy from NULL is undefined even for 0 bytes */
        memcpy(out + ids_at, b->ids, b->id_count * sizeof(uint32_t));
    if (b->strings_len)
        memcpy(out + strings_at, b->strings, b->strings_len);
    if (b->data_len) /* a program without weights or tables has no data */
        memcpy(out + data_at, b->data, b->data_len);
    hqrt_b_reseal(out, total);
    *bytes = out;
    *len = total;
    return 0;
}

void hqrt_b_reseal(uint8_t *bytes, size_t len)
{
    if (len < HQX_HEADER_SIZE)
        return;
    uint64_t sum = hqrt_i_checksum(bytes, len);
    memcpy(bytes + offsetof(hqx_header_t, checksum), &sum, sizeof sum);
}
