/* onnx_decode.c — reading the decoded protobuf: node attributes, TensorProto data (every
 * supported data type to float32 or int64) and the constants (initializers, Constant nodes). */
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_internal.h"

const Onnx__AttributeProto *onnxi_find_attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name))
            return n->attribute[i];
    return NULL;
}

int64_t onnxi_attr_int(const Onnx__NodeProto *n, const char *name, int64_t fallback)
{
    const Onnx__AttributeProto *a = onnxi_find_attr(n, name);
    return a ? a->i : fallback;
}

float onnxi_attr_float(const Onnx__NodeProto *n, const char *name, float fallback)
{
    const Onnx__AttributeProto *a = onnxi_find_attr(n, name);
    return a ? a->f : fallback;
}

/* String attribute copied into `buf` (64 bytes, truncated); `fallback` when absent. */
const char *onnxi_attr_string_buf(const Onnx__NodeProto *n, const char *name, const char *fallback,
                                  char *buf)
{
    const Onnx__AttributeProto *a = onnxi_find_attr(n, name);
    if (!a || !a->s.data)
        return fallback;
    size_t len = a->s.len < 63 ? a->s.len : 63;
    memcpy(buf, a->s.data, len);
    buf[len] = '\0';
    return buf;
}

/* Integer list attribute; *count = -1 when absent. */
const int64_t *onnxi_attr_ints(const Onnx__NodeProto *n, const char *name, int *count)
{
    const Onnx__AttributeProto *a = onnxi_find_attr(n, name);
    if (!a) {
        *count = -1;
        return NULL;
    }
    *count = a->n_ints > 64 ? 64 : (int)a->n_ints;
    return a->ints;
}

hq_status_t onnxi_decode_tensor(onnxi_ctx_t *c, const Onnx__TensorProto *tp, const char *what,
                                hq_tensor_t **out)
{
    *out = NULL;
    if (tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL || tp->n_external_data)
        return hqi_error(c->err, HQ_ERR_UNSUPPORTED,
                         "%s: tensor '%s' uses external data; save the model with the weights "
                         "inside the .onnx file",
                         c->name, what);
    if (tp->n_dims > HQ_TENSOR_MAX_DIMS)
        return hqi_error(c->err, HQ_ERR_UNSUPPORTED, "%s: tensor '%s' has rank %zu (at most %d)",
                         c->name, what, tp->n_dims, HQ_TENSOR_MAX_DIMS);
    int64_t shape[HQ_TENSOR_MAX_DIMS];
    for (size_t d = 0; d < tp->n_dims; d++) {
        if (tp->dims[d] < 0 || tp->dims[d] > MAX_CONST_ELEMENTS)
            return hqi_error(c->err, HQ_ERR_FORMAT, "%s: tensor '%s': dimension %lld is invalid",
                             c->name, what, (long long)tp->dims[d]);
        shape[d] = tp->dims[d];
    }
    int dt = tp->data_type;
    bool is_float = dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
                    dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ||
                    dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16;
    size_t esize;
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
        esize = 4;
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
        esize = 8;
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
        esize = 2;
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
        esize = 1;
        break;
    default:
        return hqi_error(c->err, HQ_ERR_UNSUPPORTED, "%s: tensor '%s': data type %d unsupported",
                         c->name, what, dt);
    }
    /* Check the data against the shape before allocating: a tiny file may claim a huge shape. */
    int64_t count = 1;
    for (size_t d = 0; d < tp->n_dims; d++) {
        count *= shape[d];
        if (count > MAX_CONST_ELEMENTS)
            return hqi_error(c->err, HQ_ERR_LIMIT, "%s: tensor '%s' has more than 2^31 elements",
                             c->name, what);
    }
    size_t have;
    if (tp->raw_data.len || (tp->has_raw_data && count == 0))
        have = tp->raw_data.len / esize;
    else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        have = tp->n_float_data;
    else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE)
        have = tp->n_double_data;
    else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
        have = tp->n_int64_data;
    else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__UINT64 ||
             dt == ONNX__TENSOR_PROTO__DATA_TYPE__UINT32)
        have = tp->n_uint64_data;
    else
        have = tp->n_int32_data;
    bool raw = tp->raw_data.len > 0;
    if ((raw && tp->raw_data.len != (size_t)count * esize) || (!raw && have != (size_t)count))
        return hqi_error(c->err, HQ_ERR_FORMAT,
                         "%s: tensor '%s': shape holds %lld elements, data has %zu", c->name, what,
                         (long long)count, raw ? tp->raw_data.len / esize : have);
    hq_tensor_t *t = NULL;
    hq_status_t st = onnxi_new_tensor(c, is_float ? HQ_DTYPE_FLOAT32 : HQ_DTYPE_INT64,
                                      (int)tp->n_dims, shape, &t);
    if (st != HQ_OK)
        return st;
    float *f = is_float ? t->data : NULL;
    int64_t *q = is_float ? NULL : t->data;
    const uint8_t *r = tp->raw_data.data;
    for (int64_t i = 0; i < count; i++) {
        const uint8_t *p = raw ? r + (size_t)i * esize : NULL;
        switch (dt) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
            if (raw)
                memcpy(&f[i], p, 4);
            else
                f[i] = tp->float_data[i];
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: {
            double d;
            if (raw)
                memcpy(&d, p, 8);
            else
                d = tp->double_data[i];
            f[i] = (float)d;
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: {
            uint16_t h;
            if (raw)
                memcpy(&h, p, 2);
            else
                h = (uint16_t)tp->int32_data[i];
            f[i] = hqi_half_to_float(h);
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
        case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
            if (raw)
                memcpy(&q[i], p, 8);
            else
                q[i] = dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? tp->int64_data[i]
                                                                  : (int64_t)tp->uint64_data[i];
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: {
            int32_t v;
            if (raw)
                memcpy(&v, p, 4);
            else
                v = tp->int32_data[i];
            q[i] = v;
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: {
            uint32_t v;
            if (raw)
                memcpy(&v, p, 4);
            else
                v = (uint32_t)tp->uint64_data[i];
            q[i] = v;
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: {
            int16_t v;
            if (raw)
                memcpy(&v, p, 2);
            else
                v = (int16_t)tp->int32_data[i];
            q[i] = v;
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: {
            uint16_t v;
            if (raw)
                memcpy(&v, p, 2);
            else
                v = (uint16_t)tp->int32_data[i];
            q[i] = v;
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
            q[i] = raw ? (int8_t)p[0] : (int8_t)tp->int32_data[i];
            break;
        default: /* uint8, bool */
            q[i] = raw ? p[0] : (uint8_t)tp->int32_data[i];
            break;
        }
    }
    *out = t;
    return HQ_OK;
}

hq_status_t onnxi_load_constants(onnxi_ctx_t *c)
{
    Onnx__GraphProto *g = c->g;
    hq_status_t st;
    for (size_t i = 0; i < g->n_initializer; i++) {
        Onnx__TensorProto *tp = g->initializer[i];
        const char *name = tp->name ? tp->name : "";
        onnxi_value_t *v;
        hq_tensor_t *t;
        if ((st = onnxi_intern_value(c, name, &v)) != HQ_OK)
            return st;
        if (v->kind == VALUE_CONST)
            continue;
        if ((st = onnxi_decode_tensor(c, tp, name, &t)) != HQ_OK)
            return st;
        v->kind = VALUE_CONST;
        v->constant = t;
    }
    for (size_t i = 0; i < g->n_node; i++) {
        Onnx__NodeProto *n = g->node[i];
        if (!n->op_type || strcmp(n->op_type, "Constant") || n->n_output < 1)
            continue;
        onnxi_value_t *v = onnxi_value_of(c, n->output[0]);
        if (!v || v->kind != VALUE_UNKNOWN)
            NODE_FAIL(c, n, HQ_ERR_INVALID, "output '%s' is produced twice", n->output[0]);
        hq_tensor_t *t = NULL;
        const Onnx__AttributeProto *a;
        if ((a = onnxi_find_attr(n, "value")) && a->t) {
            if ((st = onnxi_decode_tensor(c, a->t, n->output[0], &t)) != HQ_OK)
                return st;
        } else if ((a = onnxi_find_attr(n, "value_float"))) {
            if ((st = onnxi_new_tensor(c, HQ_DTYPE_FLOAT32, 0, NULL, &t)) != HQ_OK)
                return st;
            *(float *)t->data = a->f;
        } else if ((a = onnxi_find_attr(n, "value_int"))) {
            if ((st = onnxi_new_tensor(c, HQ_DTYPE_INT64, 0, NULL, &t)) != HQ_OK)
                return st;
            *(int64_t *)t->data = a->i;
        } else if ((a = onnxi_find_attr(n, "value_floats")) ||
                   (a = onnxi_find_attr(n, "value_ints"))) {
            bool fl = !strcmp(a->name, "value_floats");
            int64_t len = fl ? (int64_t)a->n_floats : (int64_t)a->n_ints;
            if ((st = onnxi_new_tensor(c, fl ? HQ_DTYPE_FLOAT32 : HQ_DTYPE_INT64, 1, &len, &t)) !=
                HQ_OK)
                return st;
            for (int64_t k = 0; k < len; k++)
                onnxi_put_at(t, k, fl ? a->floats[k] : (double)a->ints[k]);
        } else {
            NODE_FAIL(c, n, HQ_ERR_UNSUPPORTED, "constant without a tensor, float or int value");
        }
        v->kind = VALUE_CONST;
        v->constant = t;
    }
    return HQ_OK;
}
