/* hqrt_run.c — the executor: runs a validated program op by op over a per-sample activation
 * arena. Every op has a scalar reference path (the integer formulas of docs/numerics.md); conv,
 * depthwise and dense on 8-bit activations also have a fast path (AVX2: hqrt_kernels_avx2.c,
 * AVX-512 VNNI: hqrt_kernels_vnni.c; interface hqrt_fast.h) tested bit-exact against it. Threads
 * run whole samples of a batch, or share one sample by claiming pieces of each op's output rows;
 * each output value is computed by exactly one thread with the same arithmetic, so every thread
 * count gives the same bytes. */
#define _GNU_SOURCE /* Linux: sched_getcpu, pthread_attr_setaffinity_np */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hqrt_internal.h"

/* What one thread runs: an op's output rows [row_begin, row_end) of one sample. Ops without a
 * fast path run whole (rows 0 .. all) through the reference kernels. */
typedef struct op_call {
    const hqrt_model_t *m;
    const hqx_op_t *op;
    const hqrt_i_prepared_t *prep;
    uint8_t *arena;
    uint8_t *scratch; /* model->scratch_size bytes owned by this thread */
    int64_t row_begin, row_end;
    int64_t samples; /* a grouped conv (prep->grouped): samples in arenas arena_stride apart */
} op_call_t;

static const hqx_tensor_t *in_tensor(const op_call_t *c, int i)
{
    return &c->m->tensors[c->m->ids[c->op->inputs_first + (uint32_t)i]];
}

static const hqx_tensor_t *out_tensor(const op_call_t *c, int i)
{
    return &c->m->tensors[c->m->ids[c->op->outputs_first + (uint32_t)i]];
}

static hqrt_dims_t dims_of(const hqx_tensor_t *t)
{
    return (hqrt_dims_t){1, (int32_t)t->h, (int32_t)t->w, (int32_t)t->c};
}

static hqrt_shape_t shape_of(const hqx_tensor_t *t)
{
    if (t->ndim == 2)
        return (hqrt_shape_t){2, {1, (int32_t)t->c}};
    if (t->ndim == 3)
        return (hqrt_shape_t){3, {1, (int32_t)t->w, (int32_t)t->c}};
    return (hqrt_shape_t){4, {1, (int32_t)t->h, (int32_t)t->w, (int32_t)t->c}};
}

static uint8_t *data_of(const op_call_t *c, const hqx_tensor_t *t)
{
    return c->arena + t->arena_offset;
}

void hqrt_i_conv_setup(const hqrt_model_t *m, const hqx_op_t *op, hqrt_conv_params_t *kp)
{
    const hqx_conv_params_t *p = hqrt_i_params(m, op);
    const hqx_tensor_t *ti = &m->tensors[m->ids[op->inputs_first]];
    const hqx_tensor_t *to = &m->tensors[m->ids[op->outputs_first]];
    *kp = (hqrt_conv_params_t){
        .kernel_h = p->kernel_h,
        .kernel_w = p->kernel_w,
        .stride_h = p->stride_h,
        .stride_w = p->stride_w,
        .dilation_h = p->dilation_h,
        .dilation_w = p->dilation_w,
        .pad_top = p->pad_top,
        .pad_left = p->pad_left,
        .pad_bottom = p->pad_bottom,
        .pad_right = p->pad_right,
        .output_pad_h = p->output_pad_h,
        .output_pad_w = p->output_pad_w,
        .groups = p->groups,
        .in_bits = (int32_t)ti->bits,
        .in_zp = ti->qp_zp,
        .weight_bits = p->weight_bits,
        .out = hqrt_i_stage(m->base, &p->stage, to),
    };
}

static int run_conv(const op_call_t *c)
{
    const hqx_conv_params_t *p = hqrt_i_params(c->m, c->op);
    const hqx_tensor_t *ti = in_tensor(c, 0), *to = out_tensor(c, 0);
    hqrt_conv_params_t kp;
    hqrt_i_conv_setup(c->m, c->op, &kp);
    hqrt_addend_t addend, *pa = NULL;
    if (c->op->input_count == 2) {
        const hqx_tensor_t *ta = in_tensor(c, 1);
        addend = (hqrt_addend_t){data_of(c, ta), (int32_t)ta->bits, ta->qp_zp, p->addend_multiplier,
                                 p->addend_shift};
        pa = &addend;
    }
    const void *w = hqrt_i_blob(c->m, p->weights);
    const int64_t *bias = hqrt_i_blob(c->m, p->bias);
    if (c->samples > 1)
        return hqrt_i_conv_fast_samples(c->prep, &kp, dims_of(ti), data_of(c, ti), bias, pa,
                                        dims_of(to), data_of(c, to), c->samples,
                                        c->m->arena_stride, 0, c->samples * c->prep->rows,
                                        c->scratch);
    if (c->prep->fast)
        return hqrt_i_conv_fast(c->prep, &kp, dims_of(ti), data_of(c, ti), bias, pa, dims_of(to),
                                data_of(c, to), c->row_begin, c->row_end, c->scratch);
    if (c->op->code == HQX_OP_DENSE)
        return hqrt_dense(&kp, 1, (int32_t)(ti->h * ti->w * ti->c), (int32_t)to->c, data_of(c, ti),
                          w, bias, data_of(c, to));
    return hqrt_conv2d(&kp, dims_of(ti), data_of(c, ti), w, bias, pa, dims_of(to), data_of(c, to),
                       c->scratch);
}

static int run_pool(const op_call_t *c)
{
    const hqx_pool_params_t *p = hqrt_i_params(c->m, c->op);
    const hqx_tensor_t *ti = in_tensor(c, 0), *to = out_tensor(c, 0);
    bool max = c->op->code == HQX_OP_MAXPOOL || c->op->code == HQX_OP_DILATED_MAXPOOL;
    int32_t dilation_h = 1, dilation_w = 1;
    if (c->op->code == HQX_OP_DILATED_MAXPOOL) { /* the pool params open the dilated ones */
        const hqx_dilated_pool_params_t *d = hqrt_i_params(c->m, c->op);
        dilation_h = d->dilation_h;
        dilation_w = d->dilation_w;
    }
    hqrt_output_stage_t stage = {0};
    if (!max)
        stage = hqrt_i_stage(c->m->base, &p->stage, to);
    if (c->op->code == HQX_OP_GLOBAL_AVG)
        return hqrt_i_global_avg_pool_fast(hqrt_i_vector_isa(), (int32_t)ti->bits, ti->qp_zp,
                                           &stage, dims_of(ti), data_of(c, ti), data_of(c, to));
    hqrt_pool_params_t kp = {
        .kernel_h = p->kernel_h,
        .kernel_w = p->kernel_w,
        .stride_h = p->stride_h,
        .stride_w = p->stride_w,
        .pad_top = p->pad_top,
        .pad_left = p->pad_left,
        .pad_bottom = p->pad_bottom,
        .pad_right = p->pad_right,
        .count_include_pad = p->count_include_pad,
        .in_bits = (int32_t)ti->bits,
        .in_zp = ti->qp_zp,
        .out = stage,
        .dilation_h = dilation_h,
        .dilation_w = dilation_w,
    };
    if (max && c->prep->fast)
        return hqrt_i_maxpool_fast(c->prep, &kp, dims_of(ti), data_of(c, ti), dims_of(to),
                                   data_of(c, to), c->row_begin, c->row_end);
    if (max)
        return hqrt_maxpool(&kp, dims_of(ti), data_of(c, ti), dims_of(to), data_of(c, to));
    return hqrt_avgpool(&kp, dims_of(ti), data_of(c, ti), dims_of(to), data_of(c, to));
}

/* The kernel arguments of an elementwise op: params, the operands' and the output's shapes;
 * and, when `tensors` is not NULL, the operands' and the output's tensors (a, b, out). */
static void ew_setup(const hqrt_model_t *m, const hqx_op_t *op, hqrt_ew_params_t *kp,
                     hqrt_shape_t *as, hqrt_shape_t *bs, hqrt_shape_t *os,
                     const hqx_tensor_t *tensors[3])
{
    const hqx_eltwise_params_t *p = hqrt_i_params(m, op);
    const hqx_tensor_t *ta = &m->tensors[m->ids[op->inputs_first]];
    const hqx_tensor_t *tb = &m->tensors[m->ids[op->inputs_first + 1]];
    const hqx_tensor_t *to = &m->tensors[m->ids[op->outputs_first]];
    if (tensors)
        tensors[0] = ta, tensors[1] = tb, tensors[2] = to;
    *kp = (hqrt_ew_params_t){
        .op = p->op,
        .a_bits = (int32_t)ta->bits,
        .a_zp = ta->qp_zp,
        .b_bits = (int32_t)tb->bits,
        .b_zp = tb->qp_zp,
        .a_multiplier = p->a_multiplier,
        .a_shift = p->a_shift,
        .b_multiplier = p->b_multiplier,
        .b_shift = p->b_shift,
        .out = hqrt_i_stage(m->base, &p->stage, to),
    };
    *as = shape_of(ta), *bs = shape_of(tb), *os = shape_of(to);
}

/* An elementwise op on output rows [row_begin, row_end) of the call (all of them when the op
 * is not shared): a per-channel table where it applies, else the vector kernels. */
static int eltwise_rows(const op_call_t *c, const hqx_op_t *op)
{
    hqrt_ew_params_t kp;
    hqrt_shape_t as, bs, os;
    const hqx_tensor_t *t[3];
    ew_setup(c->m, op, &kp, &as, &bs, &os, t);
    const hqx_tensor_t *ta = t[0], *tb = t[1], *to = t[2];
    const uint8_t *a = data_of(c, ta), *b = data_of(c, tb);
    uint8_t *out = data_of(c, to);
    if (c->prep->fast) { /* output rows [row_begin, row_end): each element is computed alone */
        const int64_t first = c->row_begin, count = c->row_end - c->row_begin;
        a += first * (as.dims[1] == 1 ? 0 : as.dims[2] * as.dims[3]) * (ta->bits == 16 ? 2 : 1);
        b += first * (bs.dims[1] == 1 ? 0 : bs.dims[2] * bs.dims[3]) * (tb->bits == 16 ? 2 : 1);
        out += first * os.dims[2] * os.dims[3] * (to->bits == 16 ? 2 : 1);
        as.dims[1] = as.dims[1] == 1 ? 1 : (int32_t)count;
        bs.dims[1] = bs.dims[1] == 1 ? 1 : (int32_t)count;
        os.dims[1] = (int32_t)count;
    }
    const int isa = hqrt_i_vector_isa();
    if (hqrt_i_elementwise_table(isa, &kp, &as, a, &bs, b, &os, out, c->scratch,
                                 c->m->scratch_size) == HQRT_KERNEL_OK)
        return HQRT_KERNEL_OK;
    return hqrt_i_elementwise_fast(isa, &kp, &as, a, &bs, b, &os, out);
}

/* The pair's operands (ew_pair_applies): x, and whether it is a or b of f = op - 1 and of g. */
static uint32_t pair_x(const hqrt_model_t *m, const hqx_op_t *f, const hqx_op_t *g, bool *f_x_is_a,
                       bool *g_x_is_a)
{
    const uint32_t m_id = m->ids[f->outputs_first];
    *g_x_is_a = m->ids[g->inputs_first + 1] == m_id;
    const uint32_t x_id = m->ids[g->inputs_first + (*g_x_is_a ? 0 : 1)];
    *f_x_is_a = m->ids[f->inputs_first] == x_id;
    return x_id;
}

/* f of a pair: instead of m = f(x, s), the pair's table T[c][q] = g(q, f(q, s[c])) written into
 * m's bytes, which only g reads (2·256·C of its H·W·C, H·W >= 512); s is read here, before g
 * writes anything, so g's output may take s's bytes and g's rows may be shared by threads. */
static int eltwise_pair_table(const op_call_t *c)
{
    const hqx_op_t *fop = c->op, *gop = c->op + 1;
    hqrt_ew_params_t f, g;
    hqrt_shape_t fa, fb, fo, ga, gb, go;
    ew_setup(c->m, fop, &f, &fa, &fb, &fo, NULL);
    ew_setup(c->m, gop, &g, &ga, &gb, &go, NULL);
    bool f_x_is_a, g_x_is_a;
    pair_x(c->m, fop, gop, &f_x_is_a, &g_x_is_a);
    const hqx_tensor_t *ts = in_tensor(c, f_x_is_a ? 1 : 0), *tm = out_tensor(c, 0);
    return hqrt_i_elementwise_pair_table(hqrt_i_vector_isa(), &f, f_x_is_a, &g, g_x_is_a,
                                         (int32_t)tm->c, data_of(c, ts), data_of(c, tm));
}

/* g of a pair: its output rows [row_begin, row_end) looked up in the table f left in m. */
static int eltwise_pair_lookup(const op_call_t *c)
{
    const hqx_op_t *fop = c->op - 1, *gop = c->op;
    bool f_x_is_a, g_x_is_a;
    const hqx_tensor_t *tx = &c->m->tensors[pair_x(c->m, fop, gop, &f_x_is_a, &g_x_is_a)];
    const hqx_tensor_t *tm = &c->m->tensors[c->m->ids[fop->outputs_first]];
    const hqx_tensor_t *to = out_tensor(c, 0);
    int64_t first = 0, rows = to->h;
    if (c->prep->fast)
        first = c->row_begin, rows = c->row_end - c->row_begin;
    const int64_t row = (int64_t)to->w * to->c;
    hqrt_i_elementwise_lookup(hqrt_i_vector_isa(), data_of(c, tm), data_of(c, tx) + first * row,
                              rows * to->w, (int32_t)to->c, data_of(c, to) + first * row);
    return HQRT_KERNEL_OK;
}

static int run_eltwise(const op_call_t *c)
{
    if (c->prep->ew_pair == HQRT_EW_PAIR_FIRST)
        return eltwise_pair_table(c);
    if (c->prep->ew_pair == HQRT_EW_PAIR_SECOND)
        return eltwise_pair_lookup(c);
    return eltwise_rows(c, c->op);
}

static int run_activation(const op_call_t *c)
{
    const hqx_stage_params_t *p = hqrt_i_params(c->m, c->op);
    const hqx_tensor_t *ti = in_tensor(c, 0), *to = out_tensor(c, 0);
    int64_t count = (int64_t)to->h * to->w * to->c;
    if (c->op->code == HQX_OP_LUT)
        return hqrt_lut((int32_t)ti->bits, hqrt_i_blob(c->m, p->stage.lut), (int32_t)to->bits,
                        count, data_of(c, ti), data_of(c, to));
    hqrt_output_stage_t stage = hqrt_i_stage(c->m->base, &p->stage, to);
    return hqrt_i_activation_fast(hqrt_i_vector_isa(), (int32_t)ti->bits, ti->qp_zp, &stage,
                                  count / to->c, (int32_t)to->c, data_of(c, ti), data_of(c, to));
}

static int run_concat(const op_call_t *c)
{
    const hqx_axis_params_t *p = hqrt_i_params(c->m, c->op);
    hqrt_shape_t shapes[HQX_MAX_OP_INPUTS];
    const void *ins[HQX_MAX_OP_INPUTS];
    void *outs[HQX_MAX_OP_OUTPUTS];
    int32_t sizes[HQX_MAX_OP_OUTPUTS];
    if (c->op->code == HQX_OP_CONCAT) {
        const hqx_tensor_t *to = out_tensor(c, 0);
        for (int i = 0; i < c->op->input_count; i++) {
            shapes[i] = shape_of(in_tensor(c, i));
            ins[i] = data_of(c, in_tensor(c, i));
        }
        hqrt_shape_t os = shape_of(to);
        return hqrt_concat((int32_t)to->bits, c->op->input_count, shapes, ins, p->axis, &os,
                           data_of(c, to));
    }
    const hqx_tensor_t *ti = in_tensor(c, 0);
    for (int i = 0; i < c->op->output_count; i++) {
        hqrt_shape_t s = shape_of(out_tensor(c, i));
        sizes[i] = s.dims[p->axis];
        outs[i] = data_of(c, out_tensor(c, i));
    }
    hqrt_shape_t is = shape_of(ti);
    return hqrt_split((int32_t)ti->bits, &is, data_of(c, ti), p->axis, c->op->output_count, sizes,
                      outs);
}

static int run_resize(const op_call_t *c)
{
    const hqx_resize_params_t *p = hqrt_i_params(c->m, c->op);
    const hqx_tensor_t *ti = in_tensor(c, 0), *to = out_tensor(c, 0);
    hqrt_resize_params_t kp = {p->method, p->coords, p->round_prefer_floor, (int32_t)ti->bits,
                               ti->qp_zp};
    const int64_t begin = c->prep->fast ? c->row_begin : 0;
    const int64_t end = c->prep->fast ? c->row_end : (int64_t)to->h;
    return hqrt_i_resize_fast(hqrt_i_vector_isa(), &kp, dims_of(ti), data_of(c, ti), dims_of(to),
                              data_of(c, to), begin, end);
}

static int run_copy(const op_call_t *c)
{
    const hqx_tensor_t *ti = in_tensor(c, 0), *to = out_tensor(c, 0);
    memcpy(data_of(c, to), data_of(c, ti), (size_t)to->bytes);
    return 0;
}

static int run_deconv(const op_call_t *c)
{
    const hqx_conv_params_t *p = hqrt_i_params(c->m, c->op);
    const hqx_tensor_t *ti = in_tensor(c, 0), *to = out_tensor(c, 0);
    hqrt_conv_params_t kp;
    hqrt_i_conv_setup(c->m, c->op, &kp);
    hqrt_dims_t out = dims_of(to);
    uint8_t *output = data_of(c, to);
    if (c->prep->fast) { /* output rows [row_begin, row_end): the same gather with those rows
                          * as the only ones left between the pads */
        kp.pad_top += (int32_t)c->row_begin;
        kp.pad_bottom += out.h - (int32_t)c->row_end;
        output += c->row_begin * out.w * out.c * (to->bits == 16 ? 2 : 1);
        out.h = (int32_t)(c->row_end - c->row_begin);
    }
    return hqrt_i_deconv_fast(hqrt_i_vector_isa(), &kp, dims_of(ti), data_of(c, ti),
                              hqrt_i_blob(c->m, p->weights), hqrt_i_blob(c->m, p->bias), out,
                              output, c->scratch);
}

static int run_const(const op_call_t *c)
{
    const hqx_const_params_t *p = hqrt_i_params(c->m, c->op);
    const hqx_tensor_t *to = out_tensor(c, 0);
    memcpy(data_of(c, to), hqrt_i_blob(c->m, p->data), (size_t)to->bytes);
    return 0;
}

static int run_layout(const op_call_t *c)
{
    const void *params = hqrt_i_params(c->m, c->op);
    const hqx_tensor_t *ti = in_tensor(c, 0), *to = out_tensor(c, 0);
    const void *in = data_of(c, ti);
    void *out = data_of(c, to);
    int32_t bits = (int32_t)ti->bits;
    hqrt_shape_t is = shape_of(ti);
    switch (c->op->code) {
    case HQX_OP_SLICE: {
        const hqx_slice_params_t *p = params;
        hqrt_slice_params_t kp;
        memcpy(kp.begin, p->begin, sizeof kp.begin);
        memcpy(kp.end, p->end, sizeof kp.end);
        memcpy(kp.step, p->step, sizeof kp.step);
        return hqrt_slice(bits, &kp, dims_of(ti), in, dims_of(to), out);
    }
    case HQX_OP_PAD: {
        const hqx_pad_params_t *p = params;
        hqrt_pad_params_t kp = {.mode = p->mode, .value_code = p->value_code};
        memcpy(kp.before, p->before, sizeof kp.before);
        memcpy(kp.after, p->after, sizeof kp.after);
        return hqrt_pad(bits, &kp, dims_of(ti), in, dims_of(to), out);
    }
    case HQX_OP_DEPTH_TO_SPACE: {
        const hqx_block_params_t *p = params;
        return hqrt_depth_to_space(bits, p->block, p->crd, dims_of(ti), in, out);
    }
    case HQX_OP_SPACE_TO_DEPTH: {
        const hqx_block_params_t *p = params;
        return hqrt_space_to_depth(bits, p->block, dims_of(ti), in, out);
    }
    case HQX_OP_TRANSPOSE: {
        const hqx_transpose_params_t *p = params;
        return hqrt_transpose(bits, &is, in, p->perm, out);
    }
    case HQX_OP_TRANSPOSE_VIEW: {
        const hqx_transpose_view_params_t *p = params;
        hqrt_shape_t view = {.ndim = p->ndim};
        memcpy(view.dims, p->dims, sizeof p->dims);
        return hqrt_transpose(bits, &view, in, p->perm, out);
    }
    case HQX_OP_REDUCE_MAX: {
        const hqx_axis_params_t *p = params;
        return hqrt_reduce_max(bits, &is, in, p->axis, out);
    }
    case HQX_OP_ARGMAX:
        return hqrt_argmax(bits, &is, in, (int32_t)to->bits, out);
    case HQX_OP_SOFTMAX: {
        const hqx_softmax_params_t *p = params;
        hqrt_output_stage_t stage = hqrt_i_stage(c->m->base, &p->stage, to);
        return hqrt_softmax(bits, (const int32_t *)hqrt_i_blob(c->m, p->exp_lut), &stage, &is,
                            p->axis, in, out);
    }
    }
    return -1;
}

static int run_layer_norm(const op_call_t *c)
{
    const hqx_layer_norm_params_t *p = hqrt_i_params(c->m, c->op);
    const hqx_tensor_t *ti = in_tensor(c, 0), *to = out_tensor(c, 0);
    hqrt_layer_norm_params_t kp = {.in_bits = (int32_t)ti->bits,
                                   .in_zp = ti->qp_zp,
                                   .weight_bits = p->weight_bits,
                                   .epsilon_term = p->epsilon_term,
                                   .out = hqrt_i_stage(c->m->base, &p->stage, to)};
    return hqrt_layer_norm(&kp, (int64_t)ti->h * ti->w, (int32_t)ti->c, data_of(c, ti),
                           hqrt_i_blob(c->m, p->gamma), hqrt_i_blob(c->m, p->bias),
                           data_of(c, to));
}

_Static_assert(HQX_MAX_VIEW_DIMS <= HQRT_MAX_DIMS, "a transpose_view's view is a kernel shape");

typedef int (*op_run_fn)(const op_call_t *c);
static const op_run_fn op_runs[HQX_OP_COUNT_] = {
    [HQX_OP_CONV] = run_conv,
    [HQX_OP_DENSE] = run_conv,
    [HQX_OP_MAXPOOL] = run_pool,
    [HQX_OP_DILATED_MAXPOOL] = run_pool,
    [HQX_OP_AVGPOOL] = run_pool,
    [HQX_OP_GLOBAL_AVG] = run_pool,
    [HQX_OP_ELTWISE] = run_eltwise,
    [HQX_OP_ACTIVATION] = run_activation,
    [HQX_OP_LUT] = run_activation,
    [HQX_OP_CONCAT] = run_concat,
    [HQX_OP_SPLIT] = run_concat,
    [HQX_OP_RESIZE] = run_resize,
    [HQX_OP_COPY] = run_copy,
    [HQX_OP_DECONV] = run_deconv,
    [HQX_OP_CONST] = run_const,
    [HQX_OP_SLICE] = run_layout,
    [HQX_OP_PAD] = run_layout,
    [HQX_OP_DEPTH_TO_SPACE] = run_layout,
    [HQX_OP_SPACE_TO_DEPTH] = run_layout,
    [HQX_OP_TRANSPOSE] = run_layout,
    [HQX_OP_REDUCE_MAX] = run_layout,
    [HQX_OP_ARGMAX] = run_layout,
    [HQX_OP_SOFTMAX] = run_layout,
    [HQX_OP_TRANSPOSE_VIEW] = run_layout,
    [HQX_OP_LAYER_NORM] = run_layer_norm,
};

/* ---- threads --------------------------------------------------------------------------------- */

/* A run with several threads is one sequence of work items that the threads claim in order:
 * first the batch's whole samples (each run by its claimer in the claimer's own arena, no
 * synchronization), then the steps of the shared samples (the rest: batch 1 at 2 threads, the
 * last of a batch of 3) in arena 0: copy the sample's inputs in, every op, copy its outputs
 * out. A step is cut into pieces (op output rows); a piece waits until every piece of the
 * earlier steps is done (one shared counter of finished items), so consecutive ops need no
 * barrier and a thread that holds no piece is never waited for: when the other thread is not
 * scheduled (a loaded machine), the caller's thread claims every piece itself and the run costs
 * what it costs on one thread. The workers stay alive between runs (the model owns them): they
 * poll for the next run for a while (IDLE_POLLS), then sleep; the caller wakes a sleeping worker
 * once per run, never per op. */

/* Median rates of the fast kernels on one thread over the ops of resnet18, mobilenet_v2/v3 and
 * PP-OCR det (AVX-512 VNNI machine, hqrt profiling), and the least work worth a piece of its own:
 * handing a step from one thread to the other costs about 2.5 us (the next op reads what the
 * other core wrote), measured as the time two threads add over one when every op runs whole. */
#define NS_PER_CONV_MAC 0.01
#define NS_PER_DW_MAC 0.2
#define NS_PER_ELEMENT 0.25
#define PIECE_MIN_NS 2500.0

enum {
    SPIN_POLLS = 4000,     /* pause-loop polls (about 40 us) before a waiter inside a run sleeps */
    IDLE_POLLS = 40000,    /* ... before a worker that finished its part of a run sleeps (about
                              400 us): a worker woken for every run of a loop of runs was often
                              placed on the caller's core and got none of the next run's pieces
                              (resnet18 at 2 threads, loaded machine: 6.7 ms, like 1 thread,
                              against 3.7 ms when it polls this long) */
    PIECES_PER_THREAD = 6  /* a stalled thread holds the others up for one piece, not half an op */
};

/* The claim word: the run's tag, the split step being handed out, and the pieces of that step
 * taken from its front and from its back. Thread 1 of two claims from the back, the others from
 * the front, so that each keeps the same rows from op to op (the next op reads what this core
 * wrote) and they meet wherever the work divides. A tag checked by every claim (CAS) keeps a
 * worker that wakes late from taking work of a later run. */
#define TAG_BITS 16
#define STEP_BITS 24
#define END_BITS 12
#define STEP_SHIFT (2 * END_BITS)
#define TAG_SHIFT (STEP_SHIFT + STEP_BITS)
#define END_MASK ((UINT64_C(1) << END_BITS) - 1)
#define STEP_MASK ((UINT64_C(1) << STEP_BITS) - 1)
#define TAG_MASK ((UINT64_C(1) << TAG_BITS) - 1)
_Static_assert(TAG_SHIFT + TAG_BITS == 64, "the claim word is 64 bits");
_Static_assert((int64_t)HQRT_MAX_THREADS * PIECES_PER_THREAD < (1 << END_BITS),
               "a step's pieces fit the claim word");

typedef struct run_shared {
    const hqrt_model_t *m;
    int64_t batch;
    const void *const *inputs;
    void *const *outputs;
    int64_t whole;           /* samples run whole: 0 .. whole - 1 */
    int64_t group;           /* ... in groups of this many samples (the last may have fewer) */
    int64_t groups;          /* the groups: whole / group rounded up */
    int64_t shared_steps;    /* steps of the shared samples: (batch - whole) * (ops + 2) */
    pthread_mutex_t lock;    /* guards failed_op */
    int failed_op;           /* -1, or the first op whose kernel refused its arguments */
    hqrt_i_op_time_t *times; /* profiling: op_count per thread, thread t's from t * op_count;
                                NULL: not profiling */
} run_shared_t;

/* The model's worker threads, started by the first run with several threads. */
struct hqrt_i_team {
    int threads; /* asked for, the caller's thread included */
    int started; /* workers running (threads - 1 unless pthread_create failed) */
    int running; /* started + 1: the threads that take part in a run */
    pthread_t workers[HQRT_MAX_THREADS];
    struct team_arg {
        struct hqrt_i_team *team;
        int thread;
    } args[HQRT_MAX_THREADS];
    const hqrt_model_t *m;
#ifdef __linux__
    cpu_set_t allowed; /* the CPUs the caller may run on when the team was made */
    bool have_allowed;
#endif
    int64_t *pieces; /* per op: pieces of a shared sample's op at `running` threads */
    int64_t *first;  /* op_count + 3: items before each step of a shared sample */
    pthread_mutex_t lock;
    pthread_cond_t wake;             /* a new run or stop */
    pthread_cond_t progress;         /* items finished while a thread sleeps in wait_done */
    uint64_t generation;             /* guarded by lock */
    bool stop;                       /* guarded by lock */
    run_shared_t *run;               /* guarded by lock: the current run (valid while it lasts) */
    int64_t run_whole, run_steps;    /* guarded by lock: its groups of whole samples and shared
                                        steps */
    atomic_uint_fast64_t published;  /* generation, for workers polling before they sleep */
    atomic_uint_fast64_t whole_next; /* (tag << 40) | next whole sample to hand out */
    atomic_uint_fast64_t claim;      /* the claim word above */
    atomic_int_fast64_t done;        /* items of the current run finished */
    atomic_int sleepers;             /* threads asleep (or about to be) in wait_done */
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Waits until the team's finished items reach `target`, or run `generation` is over (a worker
 * that was not scheduled may find the next run published): polls, then sleeps until a thread
 * that finishes an item wakes it (on a loaded machine the items' threads were not scheduled;
 * sleeping, not yielding, lets them run). Returns whether the target was reached. */
static bool wait_done(hqrt_i_team_t *team, int64_t target, uint64_t generation)
{
    for (int i = 0; i < SPIN_POLLS; i++) {
        if (atomic_load_explicit(&team->done, memory_order_acquire) >= target)
            return true;
        cpu_relax();
    }
    pthread_mutex_lock(&team->lock);
    atomic_fetch_add(&team->sleepers, 1); /* before the check: finish_item sees it or we see done */
    while (atomic_load(&team->done) < target && atomic_load(&team->published) == generation)
        pthread_cond_wait(&team->progress, &team->lock);
    atomic_fetch_sub(&team->sleepers, 1);
    pthread_mutex_unlock(&team->lock);
    return atomic_load(&team->done) >= target && atomic_load(&team->published) == generation;
}

/* Counts a finished item; wakes the threads asleep in wait_done, if any (rare: only when one
 * waited longer than its polls). */
static void finish_item(hqrt_i_team_t *team)
{
    atomic_fetch_add(&team->done, 1);
    if (atomic_load(&team->sleepers) > 0) {
        pthread_mutex_lock(&team->lock);
        pthread_cond_broadcast(&team->progress);
        pthread_mutex_unlock(&team->lock);
    }
}

static void copy_io(const run_shared_t *s, uint8_t *arena, int64_t sample, bool in)
{
    const hqrt_model_t *m = s->m;
    const hqx_header_t *h = m->header;
    uint32_t n = in ? h->input_count : h->output_count;
    for (uint32_t i = 0; i < n; i++) {
        const hqx_tensor_t *t = &m->tensors[m->ids[h->io_first + (in ? 0 : h->input_count) + i]];
        if (in)
            memcpy(arena + t->arena_offset,
                   (const uint8_t *)s->inputs[i] + (size_t)sample * t->bytes, t->bytes);
        else
            memcpy((uint8_t *)s->outputs[i] + (size_t)sample * t->bytes, arena + t->arena_offset,
                   t->bytes);
    }
}

static void record_failure(run_shared_t *s, int op)
{
    pthread_mutex_lock(&s->lock);
    if (s->failed_op < 0 || op < s->failed_op)
        s->failed_op = op;
    pthread_mutex_unlock(&s->lock);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Output rows [piece * rows / pieces, (piece + 1) * rows / pieces) of op i of the sample in
 * `arena`. `times` (NULL: not profiling) is this thread's per-op accumulators: the time of the
 * pieces it ran, and the sample counted by whoever ran piece 0. */
static void run_piece(run_shared_t *s, uint32_t i, int64_t piece, int64_t pieces, uint8_t *arena,
                      uint8_t *scratch, hqrt_i_op_time_t *times)
{
    const hqrt_model_t *m = s->m;
    const hqrt_i_prepared_t *prep = &m->prepared[i];
    int64_t rows = prep->fast ? prep->rows : 1;
    op_call_t call = {.m = m,
                      .op = &m->ops[i],
                      .prep = prep,
                      .arena = arena,
                      .scratch = scratch,
                      .row_begin = rows * piece / pieces,
                      .row_end = rows * (piece + 1) / pieces};
    double start = times ? now_seconds() : 0.0;
    if (call.row_begin < call.row_end && op_runs[m->ops[i].code](&call) != 0)
        record_failure(s, (int)i);
    if (times) {
        times[i].seconds += now_seconds() - start;
        times[i].runs += piece == 0;
    }
}

/* A grouped op (prep->grouped) on `count` samples, sample k in arena + k * arena_stride, in one
 * kernel call (profiling counts it as `count` runs). */
static void run_samples(run_shared_t *s, uint32_t i, int64_t count, uint8_t *arena,
                        uint8_t *scratch, hqrt_i_op_time_t *times)
{
    const hqrt_model_t *m = s->m;
    op_call_t call = {.m = m,
                      .op = &m->ops[i],
                      .prep = &m->prepared[i],
                      .arena = arena,
                      .scratch = scratch,
                      .samples = count};
    double start = times ? now_seconds() : 0.0;
    if (op_runs[m->ops[i].code](&call) != 0)
        record_failure(s, (int)i);
    if (times) {
        times[i].seconds += now_seconds() - start;
        times[i].runs += count;
    }
}

/* Whole samples [first, first + count) on this thread, sample k in arena + k * arena_stride:
 * each sample's ops before group_from one sample after the other (the early, wide layers keep
 * their activations in cache), then the other ops op by op over the samples, a grouped op in
 * one kernel call that reads its weights once for all of them. Every op computes the bytes it
 * computes alone. */
static void run_group(run_shared_t *s, int64_t first, int64_t count, uint8_t *arena,
                      uint8_t *scratch, hqrt_i_op_time_t *times)
{
    const hqrt_model_t *m = s->m;
    const size_t stride = m->arena_stride;
    const uint32_t ops = m->header->op_count, split = count > 1 ? m->group_from : ops;
    for (int64_t k = 0; k < count; k++) {
        copy_io(s, arena + (size_t)k * stride, first + k, true);
        for (uint32_t i = 0; i < split; i++)
            run_piece(s, i, 0, 1, arena + (size_t)k * stride, scratch, times);
    }
    for (uint32_t i = split; i < ops; i++) {
        if (m->prepared[i].grouped) {
            run_samples(s, i, count, arena, scratch, times);
            continue;
        }
        for (int64_t k = 0; k < count; k++)
            run_piece(s, i, 0, 1, arena + (size_t)k * stride, scratch, times);
    }
    for (int64_t k = 0; k < count; k++)
        copy_io(s, arena + (size_t)k * stride, first + k, false);
}

/* Takes the next group of whole samples of run `tag`: its index, or -1 when none is left. */
static int64_t claim_whole(hqrt_i_team_t *team, uint64_t tag, int64_t whole)
{
    uint64_t word = atomic_load_explicit(&team->whole_next, memory_order_acquire);
    for (;;) {
        if (word >> 40 != tag || (int64_t)(word & ((UINT64_C(1) << 40) - 1)) >= whole)
            return -1;
        if (atomic_compare_exchange_weak_explicit(&team->whole_next, &word, word + 1,
                                                  memory_order_acq_rel, memory_order_acquire))
            return (int64_t)(word & ((UINT64_C(1) << 40) - 1));
    }
}

/* Pieces of split step `step` (per shared sample: 0 copies in, 1 .. ops run op step - 1, ops +
 * 1 copies out). */
static int64_t step_pieces(const hqrt_i_team_t *team, int64_t step)
{
    uint32_t ops = team->m->header->op_count;
    int64_t k = step % (ops + 2);
    return k == 0 || k == ops + 1 ? 1 : team->pieces[k - 1];
}

/* Items a run finishes before split step `step` may start: its groups of whole samples and every
 * piece of the steps before it. */
static int64_t items_before(const hqrt_i_team_t *team, int64_t whole, int64_t step)
{
    const int64_t per_sample = team->m->header->op_count + 2;
    return whole + step / per_sample * team->first[per_sample] + team->first[step % per_sample];
}

/* Takes a piece of the shared steps of run `generation` for thread `thread`, once every item
 * before its step is done: sets *step and *piece and returns true, or false when every step is
 * handed out. A thread waits before it claims, never while it holds a piece, so a thread that
 * sleeps (or is not scheduled) while waiting holds nobody up. */
static bool claim_piece(hqrt_i_team_t *team, uint64_t generation, int64_t whole, int64_t steps,
                        int thread, int64_t *step, int64_t *piece)
{
    const bool back = thread == 1 && team->running == 2;
    const uint64_t tag = generation & TAG_MASK;
    uint64_t word = atomic_load_explicit(&team->claim, memory_order_acquire);
    for (;;) {
        if (word >> TAG_SHIFT != tag)
            return false;
        int64_t at = (int64_t)(word >> STEP_SHIFT & STEP_MASK);
        if (at >= steps)
            return false;
        int64_t front = (int64_t)(word >> END_BITS & END_MASK);
        int64_t taken_back = (int64_t)(word & END_MASK);
        int64_t pieces = step_pieces(team, at), before = items_before(team, whole, at);
        if (front + taken_back < pieces &&
            atomic_load_explicit(&team->done, memory_order_acquire) < before) {
            if (!wait_done(team, before, generation))
                return false;
            word = atomic_load_explicit(&team->claim, memory_order_acquire);
            continue;
        }
        uint64_t next;
        if (front + taken_back >= pieces) /* this step is all handed out: open the next one */
            next = (tag << TAG_SHIFT) | (uint64_t)(at + 1) << STEP_SHIFT;
        else
            next = back ? word + 1 : word + (UINT64_C(1) << END_BITS);
        if (!atomic_compare_exchange_weak_explicit(&team->claim, &word, next,
                                                   memory_order_acq_rel, memory_order_acquire))
            continue;
        if (front + taken_back >= pieces) {
            word = next;
            continue;
        }
        *step = at;
        *piece = back ? pieces - 1 - taken_back : front;
        return true;
    }
}

/* Thread `thread`'s part of run `tag`: groups of whole samples (`groups` of them) while any is
 * left, each in the thread's own arenas, then pieces of the shared steps. `s` is touched only
 * after a successful claim (the caller is still inside the run then: it waits for every claimed
 * item), so a worker that wakes after the run is over reads nothing of it. */
static void take_part(hqrt_i_team_t *team, run_shared_t *s, uint64_t generation, int64_t groups,
                      int64_t steps, int thread)
{
    const uint64_t tag = generation & TAG_MASK;
    const hqrt_model_t *m = team->m;
    const uint32_t ops = m->header->op_count;
    uint8_t *scratch = m->scratch + (size_t)thread * m->scratch_size;
    for (int64_t g; (g = claim_whole(team, tag, groups)) >= 0;) {
        hqrt_i_op_time_t *times = s->times ? s->times + (size_t)thread * ops : NULL;
        const int64_t first = g * s->group;
        const int64_t count = s->whole - first < s->group ? s->whole - first : s->group;
        run_group(s, first, count, m->arena + (size_t)thread * (size_t)s->group * m->arena_stride,
                  scratch, times);
        finish_item(team);
    }
    int64_t step, piece;
    while (claim_piece(team, generation, groups, steps, thread, &step, &piece)) {
        hqrt_i_op_time_t *times = s->times ? s->times + (size_t)thread * ops : NULL;
        int64_t sample = step / (ops + 2), k = step % (ops + 2);
        if (k == 0)
            copy_io(s, m->arena, s->whole + sample, true);
        else if (k == ops + 1)
            copy_io(s, m->arena, s->whole + sample, false);
        else
            run_piece(s, (uint32_t)(k - 1), piece, team->pieces[k - 1], m->arena, scratch, times);
        finish_item(team);
    }
}

static void *team_main(void *arg)
{
    hqrt_i_team_t *team = ((struct team_arg *)arg)->team;
    const int thread = ((struct team_arg *)arg)->thread;
#ifdef __linux__
    if (team->have_allowed) /* started away from the caller's CPU (start_worker): now free again */
        pthread_setaffinity_np(pthread_self(), sizeof team->allowed, &team->allowed);
#endif
    uint64_t seen = 0;
    for (;;) {
        for (int i = 0; i < IDLE_POLLS &&
                        atomic_load_explicit(&team->published, memory_order_acquire) == seen;
             i++)
            cpu_relax();
        pthread_mutex_lock(&team->lock);
        while (!team->stop && team->generation == seen)
            pthread_cond_wait(&team->wake, &team->lock);
        if (team->stop) {
            pthread_mutex_unlock(&team->lock);
            return NULL;
        }
        seen = team->generation;
        run_shared_t *s = team->run;
        int64_t whole = team->run_whole, steps = team->run_steps;
        pthread_mutex_unlock(&team->lock);
        take_part(team, s, seen, whole, steps, thread);
    }
}

/* Estimated single-thread nanoseconds of op i's fast kernel, from its multiply-adds (conv,
 * dense, depthwise) or output elements (maxpool, elementwise, deconv) at the rates measured for
 * each kind (docs/deploy.md "Threads"); only compared with PIECE_MIN_NS. */
static double op_cost_ns(const hqrt_model_t *m, uint32_t i)
{
    const hqrt_i_prepared_t *prep = &m->prepared[i];
    const hqx_op_t *op = &m->ops[i];
    const hqx_tensor_t *to = &m->tensors[m->ids[op->outputs_first]];
    double elements = (double)to->h * to->w * to->c;
    if (op->code == HQX_OP_CONV || op->code == HQX_OP_DENSE) {
        double macs = elements * (double)(prep->depth > 0 ? prep->depth : 1);
        const hqx_conv_params_t *p = hqrt_i_params(m, op);
        return macs * (op->code == HQX_OP_CONV && p->groups > 1 ? NS_PER_DW_MAC : NS_PER_CONV_MAC);
    }
    return elements * NS_PER_ELEMENT;
}

/* Pieces op i of a shared sample is cut into at `threads` threads: several per thread (see
 * PIECES_PER_THREAD), at least min_rows rows each (a VNNI conv streams its weights once per
 * piece), at least PIECE_MIN_NS of work each, so that an op too small to share runs whole on one
 * thread. Reference kernels run whole. */
static int64_t piece_count(const hqrt_model_t *m, uint32_t i, int threads)
{
    const hqrt_i_prepared_t *prep = &m->prepared[i];
    if (!prep->fast || threads <= 1)
        return 1;
    int64_t most = prep->rows / (prep->min_rows > 1 ? prep->min_rows : 1);
    int64_t want = (int64_t)threads * PIECES_PER_THREAD;
    double worth = op_cost_ns(m, i) / PIECE_MIN_NS;
    if (worth < (double)want)
        want = (int64_t)worth;
    return most < want ? (most < 1 ? 1 : most) : (want < 1 ? 1 : want);
}

/* Starts worker `thread` on a CPU other than the caller's, when it may run elsewhere: started
 * anywhere, it was often put on the caller's CPU and kept there for the whole process (half the
 * processes of a loaded machine ran resnet18 at 2 threads in 7 ms, as on 1 thread, the others in
 * 3.5 ms; started elsewhere, all ran in 3.5 ms). The worker then lets itself run anywhere the
 * caller may (team_main), so nothing stays pinned. */
static int start_worker(hqrt_i_team_t *team, int thread)
{
    pthread_attr_t attr, *pa = NULL;
#ifdef __linux__
    cpu_set_t others;
    int here = sched_getcpu();
    if (team->have_allowed && here >= 0 && here < CPU_SETSIZE && CPU_COUNT(&team->allowed) > 1 &&
        pthread_attr_init(&attr) == 0) {
        pa = &attr;
        others = team->allowed;
        CPU_CLR(here, &others);
        pthread_attr_setaffinity_np(&attr, sizeof others, &others);
    }
#endif
    int rc = pthread_create(&team->workers[team->started], pa, team_main, &team->args[thread]);
    if (pa)
        pthread_attr_destroy(pa);
    return rc;
}

static void team_destroy(hqrt_i_team_t *team)
{
    if (!team)
        return;
    pthread_mutex_lock(&team->lock);
    team->stop = true;
    atomic_store_explicit(&team->published, team->generation + 1, memory_order_release);
    pthread_cond_broadcast(&team->wake);
    pthread_mutex_unlock(&team->lock);
    for (int t = 0; t < team->started; t++)
        pthread_join(team->workers[t], NULL);
    pthread_cond_destroy(&team->wake);
    pthread_cond_destroy(&team->progress);
    pthread_mutex_destroy(&team->lock);
    free(team->pieces);
    free(team->first);
    free(team);
}

/* The model's team of `threads` threads (the caller's included), made or remade when the
 * count changes; NULL when out of memory. A worker that cannot start only shrinks the team. */
static hqrt_i_team_t *team_for(hqrt_model_t *m, int threads)
{
    if (m->team && m->team->threads == threads)
        return m->team;
    team_destroy(m->team);
    m->team = NULL;
    const uint32_t ops = m->header->op_count;
    hqrt_i_team_t *team = calloc(1, sizeof *team);
    if (!team)
        return NULL;
    team->m = m;
    team->pieces = malloc((ops ? ops : 1) * sizeof *team->pieces);
    team->first = malloc((ops + 3) * sizeof *team->first);
    if (!team->pieces || !team->first) {
        free(team->pieces);
        free(team->first);
        free(team);
        return NULL;
    }
    pthread_mutex_init(&team->lock, NULL);
    pthread_cond_init(&team->wake, NULL);
    pthread_cond_init(&team->progress, NULL);
    atomic_init(&team->sleepers, 0);
    atomic_init(&team->published, 0);
    atomic_init(&team->whole_next, 0);
    atomic_init(&team->claim, 0);
    atomic_init(&team->done, 0);
#ifdef __linux__
    team->have_allowed = sched_getaffinity(0, sizeof team->allowed, &team->allowed) == 0;
#endif
    /* the kernels cache the CPU's vector ISA at their first call, in a plain static: ask once
     * here, before any worker starts, so that two threads never fill it at the same time */
    (void)hqrt_i_vector_isa();
    for (int t = 1; t < threads; t++) {
        team->args[t] = (struct team_arg){team, t};
        if (start_worker(team, t) != 0)
            break;
        team->started++;
    }
    team->threads = threads; /* a shrunk team is not remade at every run */
    team->running = team->started + 1;
    team->first[0] = 0;
    for (uint32_t i = 0; i < ops + 2; i++) {
        int64_t pieces = 1;
        if (i >= 1 && i <= ops)
            pieces = team->pieces[i - 1] = piece_count(m, i - 1, team->running);
        team->first[i + 1] = team->first[i] + pieces;
    }
    m->team = team;
    return team;
}

static hqrt_status_t ensure_buffers(hqrt_model_t *model, int threads, int arenas, hqrt_error_t *err)
{
    const hqx_header_t *h = model->header;
    if (model->arena_count < arenas) {
        free(model->arena);
        model->arena_count = 0;
        size_t stride = (size_t)(h->arena_size + HQX_ALIGN - 1) / HQX_ALIGN * HQX_ALIGN +
                        (HQRT_ARENA_SLACK + HQX_ALIGN - 1) / HQX_ALIGN * HQX_ALIGN;
        model->arena = aligned_alloc(HQX_ALIGN, stride * (size_t)arenas);
        if (!model->arena)
            return hqrt_i_fail(err, HQRT_ERR_NOMEM,
                               "%s: out of memory for %d arena(s) of %llu bytes", model->name,
                               arenas, (unsigned long long)h->arena_size);
        memset(model->arena, 0, stride * (size_t)arenas); /* the slack is read, so defined */
        model->arena_stride = stride;
        model->arena_count = arenas;
    }
    if (model->scratch_threads < threads) {
        free(model->scratch);
        model->scratch_threads = 0;
        size_t size = model->scratch_size * (size_t)threads;
        size = (size + HQX_ALIGN - 1) / HQX_ALIGN * HQX_ALIGN;
        model->scratch = aligned_alloc(HQX_ALIGN, size ? size : HQX_ALIGN);
        if (!model->scratch)
            return hqrt_i_fail(err, HQRT_ERR_NOMEM, "%s: out of memory for kernel scratch",
                               model->name);
        model->scratch_threads = threads;
    }
    return HQRT_OK;
}

/* The run on the team: publish it, take part as thread 0, wait for every item: the groups of
 * whole samples (hqrt_run), then the shared samples' steps. */
static void run_on_team(hqrt_i_team_t *team, run_shared_t *s)
{
    const uint32_t ops = s->m->header->op_count;
    s->shared_steps = (s->batch - s->whole) * (ops + 2);
    const int64_t items = s->groups + (s->batch - s->whole) * team->first[ops + 2];
    pthread_mutex_lock(&team->lock);
    uint64_t generation = ++team->generation, tag = generation & TAG_MASK;
    team->run = s;
    team->run_whole = s->groups;
    team->run_steps = s->shared_steps;
    atomic_store_explicit(&team->done, 0, memory_order_relaxed);
    atomic_store_explicit(&team->whole_next, tag << 40, memory_order_relaxed);
    atomic_store_explicit(&team->claim, tag << TAG_SHIFT, memory_order_release);
    atomic_store_explicit(&team->published, generation, memory_order_release);
    pthread_cond_broadcast(&team->wake);
    pthread_cond_broadcast(&team->progress); /* a late worker still asleep in the last run */
    pthread_mutex_unlock(&team->lock);
    take_part(team, s, generation, s->groups, s->shared_steps, 0);
    /* items other threads still run; a worker that never woke holds none and is not waited for */
    wait_done(team, items, generation);
}

hqrt_status_t hqrt_run(hqrt_model_t *model, int64_t batch, const void *const *inputs,
                       void *const *outputs, const hqrt_run_options_t *options, hqrt_error_t *err)
{
    if (!model || batch < 0 || (batch && (!inputs || !outputs)))
        return hqrt_i_fail(err, HQRT_ERR_ARGUMENT, "hqrt_run: invalid argument");
    const hqx_header_t *h = model->header;
    for (uint32_t i = 0; batch && i < h->input_count; i++)
        if (!inputs[i])
            return hqrt_i_fail(err, HQRT_ERR_ARGUMENT, "%s: input %u is NULL", model->name, i);
    for (uint32_t i = 0; batch && i < h->output_count; i++)
        if (!outputs[i])
            return hqrt_i_fail(err, HQRT_ERR_ARGUMENT, "%s: output %u is NULL", model->name, i);
    int threads = options && options->threads > 1 ? options->threads : 1;
    if (threads > HQRT_MAX_THREADS)
        threads = HQRT_MAX_THREADS;
    hqrt_i_team_t *team = threads > 1 && batch > 0 ? team_for(model, threads) : NULL;
    if (threads > 1 && batch > 0 && !team)
        return hqrt_i_fail(err, HQRT_ERR_NOMEM, "%s: out of memory for threads", model->name);
    int running = team ? team->running : 1;
    /* whole samples while at least `running` are left (so every thread has one), the rest
     * shared; each thread's whole samples in groups of up to group_samples */
    const int64_t whole = batch / running * running;
    int64_t group = whole / running < model->group_samples ? whole / running : model->group_samples;
    group = group > 1 ? group : 1;
    hqrt_status_t st =
        ensure_buffers(model, running, batch >= running ? running * (int)group : 1, err);
    if (st != HQRT_OK)
        return st;
    run_shared_t s = {.m = model,
                      .batch = batch,
                      .inputs = inputs,
                      .outputs = outputs,
                      .whole = whole,
                      .group = group,
                      .groups = (whole + group - 1) / group,
                      .failed_op = -1};
    if (model->profiling) {
        s.times = calloc((size_t)running * h->op_count, sizeof *s.times);
        if (!s.times)
            return hqrt_i_fail(err, HQRT_ERR_NOMEM, "%s: out of memory", model->name);
    }
    pthread_mutex_init(&s.lock, NULL);
    if (running > 1) {
        run_on_team(team, &s);
    } else {
        for (int64_t first = 0; first < batch; first += group)
            run_group(&s, first, batch - first < group ? batch - first : group, model->arena,
                      model->scratch, s.times);
    }
    pthread_mutex_destroy(&s.lock);
    for (int t = 0; s.times && t < running; t++)
        for (uint32_t i = 0; i < h->op_count; i++) {
            model->op_time[i].seconds += s.times[(size_t)t * h->op_count + i].seconds;
            model->op_time[i].runs += s.times[(size_t)t * h->op_count + i].runs;
        }
    free(s.times);
    if (s.failed_op >= 0)
        return hqrt_i_fail(err, HQRT_ERR_FORMAT, "%s: layer %s: kernel refused its arguments",
                           model->name, model->strings + model->ops[s.failed_op].name);
    return HQRT_OK;
}

/* ---- profiling ------------------------------------------------------------------------------ */

hqrt_status_t hqrt_set_profiling(hqrt_model_t *model, int on, hqrt_error_t *err)
{
    if (!model)
        return hqrt_i_fail(err, HQRT_ERR_ARGUMENT, "hqrt_set_profiling: NULL model");
    if (on && !model->op_time) {
        model->op_time = calloc(model->header->op_count, sizeof *model->op_time);
        if (!model->op_time)
            return hqrt_i_fail(err, HQRT_ERR_NOMEM, "%s: out of memory", model->name);
    } else if (on) {
        memset(model->op_time, 0, model->header->op_count * sizeof *model->op_time);
    }
    model->profiling = on != 0;
    return HQRT_OK;
}

hqrt_status_t hqrt_op_profile(const hqrt_model_t *model, int index, hqrt_op_profile_t *profile,
                              hqrt_error_t *err)
{
    if (!model || !profile)
        return hqrt_i_fail(err, HQRT_ERR_ARGUMENT, "hqrt_op_profile: NULL argument");
    uint32_t count = model->header->op_count;
    if (index < 0 || (uint32_t)index >= count)
        return hqrt_i_fail(err, HQRT_ERR_ARGUMENT, "%s: no op %d (the program has %u)",
                           model->name, index, count);
    const hqx_op_t *op = &model->ops[index];
    *profile = (hqrt_op_profile_t){
        .count = (int)count,
        .name = model->strings + op->name,
        .kind = hqrt_i_op_kind(op->code),
        .seconds = model->op_time ? model->op_time[index].seconds : 0.0,
        .runs = model->op_time ? model->op_time[index].runs : 0,
    };
    return HQRT_OK;
}

/* ---- open-time preparation ------------------------------------------------------------------ */

/* Fewest output elements of an elementwise op worth one piece of a shared sample. */
#define ELTWISE_PIECE 8192

static const hqx_tensor_t *op_tensor(const hqrt_model_t *m, const hqx_op_t *op, bool out, int i)
{
    return &m->tensors[m->ids[(out ? op->outputs_first : op->inputs_first) + (uint32_t)i]];
}

/* Grouped batches (run_group, docs/deploy.md "Batches"): a thread runs up to GROUP_SAMPLES of its
 * whole samples together (HQRT_GROUP=n sets that number, 1: one sample at a time), and a conv or
 * dense op whose kernel takes several samples runs them in one call when its output has at most
 * GROUP_MAX_PIXELS pixels: a deep layer with many weights and few pixels reads its weights once
 * for the group instead of once per sample. */
enum { GROUP_SAMPLES = 8, GROUP_MAX_PIXELS = 196 };

/* Marks op i grouped when it qualifies (above; 8-bit output codes, an 8-bit addend or none);
 * returns the scratch its grouped calls need (0: not grouped). */
static size_t group_prepare(hqrt_model_t *m, uint32_t i)
{
    const hqx_op_t *op = &m->ops[i];
    const hqx_tensor_t *to = op_tensor(m, op, true, 0);
    const size_t need = hqrt_i_conv_samples_scratch(&m->prepared[i]);
    if (!need || to->bits != 8 || (op->input_count == 2 && op_tensor(m, op, false, 1)->bits != 8) ||
        (int64_t)to->h * to->w > GROUP_MAX_PIXELS)
        return 0;
    m->prepared[i].grouped = true;
    return need;
}

/* A tensor of [1,1,C] (or [1,C]) codes broadcast over an output of C channels, C > 1. */
static bool per_channel_operand(const hqx_tensor_t *s, const hqx_tensor_t *out)
{
    return s->h == 1 && s->w == 1 && s->c == out->c && s->c > 1 && s->ndim == out->ndim;
}

/* Scratch an elementwise op's per-channel table needs (hqrt_i_elementwise_table), 0 if none. */
static size_t ew_table_scratch(const hqrt_model_t *m, const hqx_op_t *op)
{
    const hqx_tensor_t *to = op_tensor(m, op, true, 0);
    if ((int64_t)to->h * to->w < HQRT_EW_TABLE_MIN_PIXELS)
        return 0;
    for (int i = 0; i < 2; i++)
        if (per_channel_operand(op_tensor(m, op, false, i), to))
            return hqrt_i_ew_table_bytes((int32_t)to->c);
    return 0;
}

/* Ops i and i + 1 as one elementwise pair (hqrt_i_elementwise_pair_table, then lookups): f = op
 * i (x, s) -> m with x 8-bit codes of m's shape and s per channel, g = op i + 1 reading x and m,
 * m read by nothing else and large enough to hold the table, 8-bit codes and per-tensor stages
 * throughout, and enough pixels for the table to pay. */
static bool ew_pair_applies(const hqrt_model_t *m, uint32_t i)
{
    const hqx_header_t *h = m->header;
    if (i + 1 >= h->op_count || m->ops[i].code != HQX_OP_ELTWISE ||
        m->ops[i + 1].code != HQX_OP_ELTWISE)
        return false;
    const hqx_op_t *f = &m->ops[i], *g = &m->ops[i + 1];
    const uint32_t m_id = m->ids[f->outputs_first];
    const uint32_t g0 = m->ids[g->inputs_first], g1 = m->ids[g->inputs_first + 1];
    const uint32_t f0 = m->ids[f->inputs_first], f1 = m->ids[f->inputs_first + 1];
    if ((g0 == m_id) == (g1 == m_id))
        return false;
    const uint32_t x_id = g0 == m_id ? g1 : g0;
    if ((f0 == x_id) == (f1 == x_id))
        return false;
    const hqx_tensor_t *tx = &m->tensors[x_id], *tm = &m->tensors[m_id];
    const hqx_tensor_t *ts = &m->tensors[f0 == x_id ? f1 : f0], *to = op_tensor(m, g, true, 0);
    const hqx_eltwise_params_t *fp = hqrt_i_params(m, f), *gp = hqrt_i_params(m, g);
    if (tx->bits != 8 || tm->bits != 8 || to->bits != 8 || fp->stage.count != 1 ||
        gp->stage.count != 1 || !per_channel_operand(ts, tx) || tx->h != tm->h || tx->w != tm->w ||
        tx->c != tm->c || tx->ndim != tm->ndim || tx->h != to->h || tx->w != to->w ||
        tx->c != to->c || (int64_t)tx->h * tx->w < HQRT_EW_TABLE_MIN_PIXELS ||
        tm->bytes < hqrt_i_ew_pair_table_bytes((int32_t)tm->c) || (ts->bits != 8 && ts->bits != 16))
        return false;
    for (uint32_t k = 0; k < h->op_count; k++) /* m: read by g alone, not a program output */
        for (uint32_t j = 0; k != i + 1 && j < m->ops[k].input_count; j++)
            if (m->ids[m->ops[k].inputs_first + j] == m_id)
                return false;
    for (uint32_t j = 0; j < h->output_count; j++)
        if (m->ids[h->io_first + h->input_count + j] == m_id)
            return false;
    return true;
}

hqrt_status_t hqrt_i_prepare(hqrt_model_t *m, hqrt_error_t *err)
{
    const hqx_header_t *h = m->header;
    m->prepared = calloc(h->op_count, sizeof *m->prepared);
    if (!m->prepared)
        return hqrt_i_fail(err, HQRT_ERR_NOMEM, "%s: out of memory", m->name);
    size_t scratch = 0;
    const char *group = getenv("HQRT_GROUP");
    m->group_samples = group ? atoi(group) : GROUP_SAMPLES;
    if (m->group_samples < 1 || m->group_samples > GROUP_SAMPLES)
        m->group_samples = group ? 1 : GROUP_SAMPLES;
    for (uint32_t i = 0; i < h->op_count; i++) {
        const hqx_op_t *op = &m->ops[i];
        if (op->code == HQX_OP_DECONV) {
            hqrt_conv_params_t kp;
            hqrt_i_conv_setup(m, op, &kp);
            const hqx_tensor_t *ti = &m->tensors[m->ids[op->inputs_first]];
            hqrt_dims_t in = {1, (int32_t)ti->h, (int32_t)ti->w, (int32_t)ti->c};
            size_t need = hqrt_deconv2d_get_buffer_size(&kp, in);
            scratch = need > scratch ? need : scratch;
        }
        if (op->code == HQX_OP_MAXPOOL || op->code == HQX_OP_DILATED_MAXPOOL)
            hqrt_i_pool_prepare(m, op, &m->prepared[i]);
        if (op->code == HQX_OP_ELTWISE && hqrt_i_vector_isa() != HQRT_ISA_REFERENCE) {
            size_t need = ew_table_scratch(m, op);
            scratch = need > scratch ? need : scratch;
        }
        if (op->code == HQX_OP_RESIZE) { /* rows of a vector resize: pieces of a shared op */
            const hqx_resize_params_t *rp = hqrt_i_params(m, op);
            const hqx_tensor_t *to = &m->tensors[m->ids[op->outputs_first]];
            const hqx_tensor_t *ti = &m->tensors[m->ids[op->inputs_first]];
            hqrt_resize_params_t kp = {rp->method, rp->coords, rp->round_prefer_floor,
                                       (int32_t)ti->bits, ti->qp_zp};
            hqrt_dims_t od = {1, (int32_t)to->h, (int32_t)to->w, (int32_t)to->c};
            int64_t row = (int64_t)to->w * to->c;
            if (to->h > 1 && hqrt_i_resize_rows_fast(hqrt_i_vector_isa(), &kp, od))
                m->prepared[i] = (hqrt_i_prepared_t){
                    .fast = true, .rows = to->h, .min_rows = (ELTWISE_PIECE + row - 1) / row};
        }
        if ((op->code == HQX_OP_DECONV || op->code == HQX_OP_ELTWISE) &&
            hqrt_i_vector_isa() != HQRT_ISA_REFERENCE) {
            /* vector kernels whose output rows the threads of one sample can share */
            const hqx_tensor_t *to = &m->tensors[m->ids[op->outputs_first]];
            int64_t row = (int64_t)to->w * to->c, min_rows = (ELTWISE_PIECE + row - 1) / row;
            if (to->ndim == 4 && to->h > 1)
                m->prepared[i] = (hqrt_i_prepared_t){
                    .fast = true,
                    .rows = to->h,
                    .min_rows = op->code == HQX_OP_ELTWISE && min_rows > 1 ? min_rows : 1};
        }
        if (op->code != HQX_OP_CONV && op->code != HQX_OP_DENSE)
            continue;
        hqrt_conv_params_t kp;
        hqrt_i_conv_setup(m, op, &kp);
        const hqx_tensor_t *ti = &m->tensors[m->ids[op->inputs_first]];
        hqrt_dims_t in = {1, (int32_t)ti->h, (int32_t)ti->w, (int32_t)ti->c};
        if (op->code == HQX_OP_CONV) {
            size_t need = hqrt_conv2d_get_buffer_size(&kp, in);
            scratch = need > scratch ? need : scratch;
        }
        hqrt_status_t st = hqrt_i_conv_prepare(m, op, &m->prepared[i], err);
        if (st != HQRT_OK)
            return st;
        scratch = m->prepared[i].scratch > scratch ? m->prepared[i].scratch : scratch;
        size_t grouped = m->group_samples > 1 ? group_prepare(m, i) : 0;
        scratch = grouped > scratch ? grouped : scratch;
    }
    m->group_from = h->op_count;
    for (uint32_t i = h->op_count; i-- > 0;)
        if (m->prepared[i].grouped)
            m->group_from = i;
    if (m->group_from == h->op_count)
        m->group_samples = 1; /* no op gains: one sample at a time, one arena per thread */
    for (uint32_t i = 0; hqrt_i_vector_isa() != HQRT_ISA_REFERENCE && i < h->op_count; i++)
        if (m->prepared[i].ew_pair != HQRT_EW_PAIR_SECOND && ew_pair_applies(m, i)) {
            m->prepared[i] = (hqrt_i_prepared_t){.ew_pair = HQRT_EW_PAIR_FIRST}; /* runs once */
            m->prepared[i + 1].ew_pair = HQRT_EW_PAIR_SECOND;
        }
    m->scratch_size = (scratch + HQX_ALIGN - 1) / HQX_ALIGN * HQX_ALIGN;
    return HQRT_OK;
}

void hqrt_i_release(hqrt_model_t *m)
{
    team_destroy(m->team); /* first: the workers read the prepared ops */
    m->team = NULL;
    for (uint32_t i = 0; m->prepared && i < m->header->op_count; i++)
        free(m->prepared[i].packed);
    free(m->prepared);
    m->prepared = NULL;
}
