/* layer_dump.h — one text line per layer holding every field a module can read, written with
 * ctx->write_file, for the ABI tests. layers_1_0.c includes it built against the frozen 1.0
 * headers (v1_0_include/: hq_layer_t read through the 1.0 `layer` slot), layers.c against the
 * current ones (layer_info and layer_params); tests/e2e/diag_abi.sh checks that both dumps are
 * equal and agree with the archive. The includer defines DUMP_LAYER_T and DUMP_PARAMS_T, the
 * layer and params types of its header, which share these field names. */
#ifndef HQ_TEST_LAYER_DUMP_H
#define HQ_TEST_LAYER_DUMP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test_plugin.h"

/* A growing text; `failed` after an allocation failure. */
typedef struct dump_text {
    char *buf;
    size_t len, cap;
    bool failed;
} dump_text_t;

__attribute__((format(printf, 2, 3))) static void dump_printf(dump_text_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || t->failed)
        return;
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t cap = (t->len + (size_t)n + 1) * 2;
        char *grown = realloc(t->buf, cap);
        if (!grown) {
            t->failed = true;
            return;
        }
        t->buf = grown;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

static void dump_ints(dump_text_t *t, const char *name, const int *v, int n)
{
    dump_printf(t, " %s=[", name);
    for (int i = 0; i < n; i++)
        dump_printf(t, "%s%d", i ? "," : "", v ? v[i] : -999);
    dump_printf(t, "]");
}

static void dump_floats(dump_text_t *t, const char *name, const float *v, int n)
{
    dump_printf(t, " %s=[", name);
    for (int i = 0; i < n; i++)
        dump_printf(t, "%s%.9g", i ? "," : "", v ? (double)v[i] : -999.0);
    dump_printf(t, "]");
}

#define DUMP_ARRAY(t, field)                                                                       \
    dump_ints(t, #field, p->field, (int)(sizeof p->field / sizeof p->field[0]))

/* Everything of layer `index`: "<index> name=... type=... ...". */
static void dump_layer(dump_text_t *t, int index, const DUMP_LAYER_T *l, const DUMP_PARAMS_T *p)
{
    dump_printf(t, "%d name=%s bare=%s type=%d", index, l->name, l->bare_name, (int)l->type);
    dump_ints(t, "inputs", l->inputs, l->input_count);
    dump_ints(t, "input_ports", l->input_ports, l->input_count);
    dump_ints(t, "outputs", l->outputs, l->output_count);
    dump_ints(t, "output_ports", l->output_ports, l->output_count);
    for (int i = 0; i < l->input_shape_count; i++) {
        dump_printf(t, " input_shape%d=[", i);
        for (int d = 0; d < l->input_shapes[i].ndim; d++)
            dump_printf(t, "%s%lld", d ? "," : "", (long long)l->input_shapes[i].dims[d]);
        dump_printf(t, "]");
    }
    dump_printf(t, " output_shape=[");
    for (int d = 0; d < l->output_shape.ndim; d++)
        dump_printf(t, "%s%lld", d ? "," : "", (long long)l->output_shape.dims[d]);
    dump_printf(t, "] original_names=[");
    for (int i = 0; i < l->original_name_count; i++)
        dump_printf(t, "%s%s", i ? "," : "", l->original_names[i]);
    dump_printf(t, "] precision_mode=%s", l->precision_mode);
    dump_printf(t, " kernel=%d,%d,%d,%d stride=%d,%d dilation=%d,%d groups=%d padding=%d",
                p->kernel_h, p->kernel_w, p->kernel_in, p->kernel_out, p->stride_h, p->stride_w,
                p->dilation_h, p->dilation_w, p->groups, (int)p->padding);
    DUMP_ARRAY(t, pads);
    DUMP_ARRAY(t, output_pads);
    dump_printf(t, " bias=%d batch_norm=%d elementwise_add=%d activation=%d alpha=%.9g beta=%.9g",
                p->has_bias, p->batch_norm, p->elementwise_add, (int)p->activation,
                (double)p->activation_alpha, (double)p->activation_beta);
    dump_printf(t, " count_include_pad=%d axis=%d", p->count_include_pad, p->axis);
    dump_ints(t, "split_sizes", p->split_sizes, p->split_count);
    DUMP_ARRAY(t, slice_begin);
    DUMP_ARRAY(t, slice_end);
    DUMP_ARRAY(t, slice_step);
    dump_printf(t, " pad_mode=%d pad_value=%.9g", (int)p->pad_mode, (double)p->pad_value);
    DUMP_ARRAY(t, pad_channels);
    dump_printf(t, " resize=%d,%d,%d block_size=%d crd=%d", (int)p->resize_method,
                (int)p->resize_coords, p->nearest_round, p->block_size, p->depth_to_space_crd);
    dump_floats(t, "mean", p->mean, p->channels);
    dump_floats(t, "std", p->std, p->channels);
    dump_printf(t, " epsilon=%.9g", (double)p->epsilon);
    DUMP_ARRAY(t, perm);
    dump_printf(t, "\n");
}

/* Writes the dump to <output_dir>/<file> and says so in one finding. */
static hq_status_t dump_write(hq_inspector_context_t *ctx, dump_text_t *t, const char *file,
                              hq_error_t *err)
{
    hq_status_t st = HQ_ERR_NOMEM;
    if (!t->failed)
        st = ctx->write_file(ctx, file, t->buf ? t->buf : "", t->len, err);
    free(t->buf);
    if (st == HQ_OK)
        ctx->diagnosticf(ctx, HQ_DIAG_INFO, -1, "%d layers written to %s", ctx->layer_count(ctx),
                         file);
    return st;
}

#endif
