/* hqrt_run.c — the executor's ops: runs one op of a validated program over a per-sample
 * activation arena (hqrt_i_run_op; hqrt_schedule.c orders the calls of a batch over samples and
 * threads), and prepares the ops at open time. Every op has a scalar reference path (the integer
 * formulas of docs/numerics.md); conv, depthwise and dense on 8-bit activations also have a fast
 * path (AVX2: hqrt_kernels_avx2.c, AVX-512 VNNI: hqrt_kernels_vnni.c; interface hqrt_fast.h)
 * tested bit-exact against it. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "hqrt_internal.h"

typedef hqrt_i_op_call_t op_call_t;

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

/* One op call (hqrt_schedule.c runs them). */
int hqrt_i_run_op(const hqrt_i_op_call_t *c)
{
    return op_runs[c->op->code](c);
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
 * GROUP_MAX_PIXELS pixels and it has at least GROUP_MIN_WEIGHTS weights: a deep layer with many
 * weights and few pixels reads its weights once for the group instead of once per sample (with
 * fewer weights, which stay in cache anyway, PP-OCRv4 det 320 ran 3-9% slower grouped). */
enum { GROUP_SAMPLES = 8, GROUP_MAX_PIXELS = 196, GROUP_MIN_WEIGHTS = 64 * 1024 };

/* Marks op i grouped when it qualifies (above; 8-bit output codes, an 8-bit addend or none);
 * returns the scratch its grouped calls need (0: not grouped). */
static size_t group_prepare(hqrt_model_t *m, uint32_t i)
{
    const hqx_op_t *op = &m->ops[i];
    const hqx_tensor_t *to = op_tensor(m, op, true, 0);
    const size_t need = hqrt_i_conv_samples_scratch(&m->prepared[i]);
    if (!need || to->bits != 8 || (op->input_count == 2 && op_tensor(m, op, false, 1)->bits != 8) ||
        (int64_t)to->h * to->w > GROUP_MAX_PIXELS || m->prepared[i].depth * to->c < GROUP_MIN_WEIGHTS)
        return 0;
    m->prepared[i].grouped = true;
    return need;
}

/* The tensors that ops before group_from (or the program's inputs) write and ops from group_from
 * on (or the program's outputs) read, as m->carry: run_group runs every sample's early ops in one
 * arena, which stays in cache, and copies these bytes to the sample's own arena. -1: no memory. */
static int group_carry(hqrt_model_t *m)
{
    const hqx_header_t *h = m->header;
    uint8_t *early = calloc(h->tensor_count, 2); /* per tensor: written early, read late */
    m->carry = malloc((h->tensor_count ? h->tensor_count : 1) * sizeof *m->carry);
    if (!early || !m->carry) {
        free(early);
        return -1;
    }
    for (uint32_t i = 0; i < h->input_count; i++)
        early[2 * m->ids[h->io_first + i]] = 1;
    for (uint32_t j = 0; j < h->output_count; j++)
        early[2 * m->ids[h->io_first + h->input_count + j] + 1] = 1;
    for (uint32_t k = 0; k < h->op_count; k++) {
        const hqx_op_t *op = &m->ops[k];
        for (uint32_t j = 0; k < m->group_from && j < op->output_count; j++)
            early[2 * m->ids[op->outputs_first + j]] = 1;
        for (uint32_t j = 0; k >= m->group_from && j < op->input_count; j++)
            early[2 * m->ids[op->inputs_first + j] + 1] = 1;
    }
    m->carry_count = 0;
    for (uint32_t t = 0; t < h->tensor_count; t++)
        if (early[2 * t] && early[2 * t + 1])
            m->carry[m->carry_count++] =
                (hqrt_i_span_t){m->tensors[t].arena_offset, m->tensors[t].bytes};
    free(early);
    return 0;
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
    m->group_from = h->op_count, m->group_to = 0; /* the first grouped op, one past the last */
    for (uint32_t i = 0; i < h->op_count; i++)
        if (m->prepared[i].grouped) {
            m->group_from = i < m->group_from ? i : m->group_from;
            m->group_to = i + 1;
        }
    if (m->group_from == h->op_count)
        m->group_samples = 1; /* no op gains: one sample at a time, one arena per thread */
    if (m->group_samples > 1 && group_carry(m) != 0)
        return hqrt_i_fail(err, HQRT_ERR_NOMEM, "%s: out of memory", m->name);
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
    hqrt_i_team_destroy(m->team); /* first: the workers read the prepared ops */
    m->team = NULL;
    for (uint32_t i = 0; m->prepared && i < m->header->op_count; i++)
        free(m->prepared[i].packed);
    free(m->prepared);
    free(m->carry);
    m->carry = NULL;
    m->prepared = NULL;
}
