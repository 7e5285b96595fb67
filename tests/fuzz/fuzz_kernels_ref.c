/* fuzz_kernels_ref.c — libFuzzer target for the reference kernels: the input picks a kernel,
 * its params and shapes (mostly small and consistent, sometimes wild: zero, negative, huge,
 * mismatched). Every buffer is allocated with exactly the elements its claimed shape implies,
 * so ASan reports any read or write the argument checks let through; a failing call must leave
 * a message. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "emulate/kernels_ref.h"

typedef struct cursor {
    const uint8_t *data;
    size_t size, at;
} cursor_t;

static uint8_t byte(cursor_t *c)
{
    return c->at < c->size ? c->data[c->at++] : 0;
}

/* A small extent 1..6 most of the time; sometimes 0, negative or huge. */
static int64_t extent(cursor_t *c)
{
    static const int64_t wild[] = {0, -1, 7, 1 << 20, INT64_MAX, (int64_t)1 << 40, 64, 3};
    uint8_t b = byte(c);
    return b < 240 ? 1 + b % 6 : wild[b % 8];
}

static int small(cursor_t *c, int lo, int span)
{
    uint8_t b = byte(c);
    return b == 255 ? -1 : lo + b % span; /* -1 now and then to hit the checks */
}

#define MAX_BUFFER 65536

/* Element count of a claimed shape: -1 when some extent is < 1, -2 when too big to allocate. */
static int64_t count_of(const int64_t *dims, int n)
{
    int64_t total = 1;
    for (int i = 0; i < n; i++)
        if (dims[i] < 1)
            return -1;
    for (int i = 0; i < n; i++) {
        if (dims[i] > MAX_BUFFER || total * dims[i] > MAX_BUFFER)
            return -2;
        total *= dims[i];
    }
    return total;
}

static int64_t image_count(hqi_ref_dims_t d)
{
    const int64_t dims[4] = {d.n, d.h, d.w, d.c};
    return count_of(dims, 4);
}

static float *buffer(cursor_t *c, int64_t count)
{
    if (count < 1)
        count = 1; /* invalid shapes get a one-element buffer: the kernel must refuse */
    float *x = malloc((size_t)count * sizeof(float));
    static const float special[4] = {NAN, INFINITY, -INFINITY, 1e30f};
    for (int64_t i = 0; i < count; i++) {
        uint8_t b = byte(c);
        x[i] = b >= 252 ? special[b % 4] : (float)((int)b - 128) / 16.0f;
    }
    return x;
}

static hqi_ref_act_t activation(cursor_t *c, float *slopes, int64_t channels)
{
    hqi_ref_act_t act = {(hq_activation_t)(byte(c) % (HQ_ACT_COUNT + 1)), 0.1f, 0.9f, NULL, 0};
    if (act.type == HQ_ACT_PRELU) {
        act.slope = slopes;
        act.slope_count = byte(c) % 2 ? 1 : channels;
    }
    if (byte(c) == 7)
        act.alpha = 2.0f; /* clip min > max */
    return act;
}

static hqi_ref_window_t window(cursor_t *c)
{
    hqi_ref_window_t w;
    w.kernel_h = small(c, 1, 4);
    w.kernel_w = small(c, 1, 4);
    w.stride_h = small(c, 1, 3);
    w.stride_w = small(c, 1, 3);
    w.dilation_h = small(c, 1, 2);
    w.dilation_w = small(c, 1, 2);
    w.pad_top = small(c, 0, 3);
    w.pad_left = small(c, 0, 3);
    w.pad_bottom = small(c, 0, 3);
    w.pad_right = small(c, 0, 3);
    return w;
}

static hqi_ref_dims_t image(cursor_t *c)
{
    hqi_ref_dims_t d = {extent(c), extent(c), extent(c), extent(c)};
    return d;
}

static hq_shape_t shape(cursor_t *c)
{
    hq_shape_t s = {1 + byte(c) % 5, {0}};
    for (int i = 0; i < s.ndim; i++)
        s.dims[i] = extent(c);
    return s;
}

/* Output dims are usually the right ones; a perturbation tests the check. */
static int64_t maybe_wrong(cursor_t *c, int64_t v)
{
    uint8_t b = byte(c);
    if (v < 0 || v > MAX_BUFFER) /* wild values stay as they are: no overflow in the harness */
        return v;
    return b < 230 ? v : v + (b % 3) - 1;
}

static void run(cursor_t *c, hq_error_t *err, float *slopes)
{
    hq_status_t st = HQ_OK;
    float *bufs[8] = {NULL};
    int nb = 0;
#define BUF(count) (bufs[nb] = buffer(c, (count)), bufs[nb++])
    const uint8_t op = byte(c) % 20;
    hqi_ref_dims_t in = image(c);
    int64_t nin = image_count(in);
    if (nin == -2)
        return;
    switch (op) {
    case 0:
    case 1: {
        hqi_ref_conv_params_t p = {window(c), small(c, 1, 3), {HQ_ACT_LINEAR, 0, 0, NULL, 0}};
        hqi_ref_deconv_params_t dp = {p.window, small(c, 0, 2), small(c, 0, 2), p.groups,
                                      p.act};
        int64_t cout = extent(c);
        if (cout < 1 || cout > 16)
            cout = 4;
        hqi_ref_dims_t out = {in.n, 1, 1, cout};
        const hqi_ref_window_t *w = &p.window;
        if (op == 0) {
            out.h = maybe_wrong(c, hqi_ref_window_extent(in.h, w->kernel_h, w->stride_h,
                                                         w->dilation_h, w->pad_top,
                                                         w->pad_bottom, false));
            out.w = hqi_ref_window_extent(in.w, w->kernel_w, w->stride_w, w->dilation_w,
                                          w->pad_left, w->pad_right, false);
        } else {
            out.h = maybe_wrong(c, hqi_ref_deconv_extent(in.h, w->kernel_h, w->stride_h,
                                                         w->dilation_h, w->pad_top,
                                                         w->pad_bottom, dp.output_pad_h));
            out.w = hqi_ref_deconv_extent(in.w, w->kernel_w, w->stride_w, w->dilation_w,
                                          w->pad_left, w->pad_right, dp.output_pad_w);
        }
        int64_t nout = image_count(out);
        int groups = p.groups > 0 ? p.groups : 1;
        int64_t wdims[4] = {w->kernel_h, w->kernel_w, in.c > 0 ? in.c / groups : 1, cout};
        int64_t nw = count_of(wdims, 4);
        if (nout == -2 || nw == -2)
            break;
        p.act = dp.act = activation(c, slopes, cout);
        float *x = BUF(nin), *k = BUF(nw), *b = BUF(cout), *y = BUF(nout);
        float *add = byte(c) % 2 ? BUF(nout) : NULL;
        st = op == 0 ? hqi_ref_conv2d(&p, in, x, k, b, add, out, y, err)
                     : hqi_ref_deconv2d(&dp, in, x, k, b, out, y, err);
        break;
    }
    case 2: {
        hqi_ref_pool_params_t p = {window(c), byte(c) % 2};
        const hqi_ref_window_t *w = &p.window;
        bool ceil_mode = byte(c) % 2;
        hqi_ref_dims_t out = {in.n,
                              maybe_wrong(c, hqi_ref_window_extent(in.h, w->kernel_h,
                                                                   w->stride_h, w->dilation_h,
                                                                   w->pad_top, w->pad_bottom,
                                                                   ceil_mode)),
                              hqi_ref_window_extent(in.w, w->kernel_w, w->stride_w,
                                                    w->dilation_w, w->pad_left, w->pad_right,
                                                    ceil_mode),
                              in.c};
        int64_t nout = image_count(out);
        if (nout == -2)
            break;
        float *x = BUF(nin), *y = BUF(nout);
        st = byte(c) % 2 ? hqi_ref_maxpool(&p, in, x, out, y, err)
                         : hqi_ref_avgpool(&p, in, x, out, y, err);
        break;
    }
    case 3: {
        float *x = BUF(nin), *y = BUF(nin > 0 ? in.n * in.c : 1);
        st = hqi_ref_global_avg_pool(in, x, y, err);
        break;
    }
    case 4:
    case 5:
    case 6: {
        int64_t rows = nin > 0 ? in.n * in.h * in.w : (in.h < 1 ? in.h : -1), ch = in.c;
        const int64_t nv = nin > 0 ? ch : 1; /* per-channel vectors */
        hqi_ref_act_t act = activation(c, slopes, ch);
        float *x = BUF(nin), *y = byte(c) % 2 ? x : BUF(nin);
        float *v1 = BUF(nv), *v2 = BUF(nv), *v3 = BUF(nv), *v4 = BUF(nv);
        if (op == 4)
            st = hqi_ref_activation(&act, rows, ch, x, y, err);
        else if (op == 5)
            st = hqi_ref_batch_norm(rows, ch, x, v1, v2, v3, v4, 1e-3f, &act, y, err);
        else
            st = hqi_ref_normalization(rows, ch, x, v1, v2, byte(c) % 2 ? 1 : ch, &act, y, err);
        break;
    }
    case 7: {
        hq_shape_t a = shape(c), b = a, o = a;
        for (int i = 0; i < a.ndim; i++) {
            uint8_t m = byte(c) % 4;
            if (m == 1)
                a.dims[i] = 1;
            else if (m == 2)
                b.dims[i] = 1;
            else if (m == 3)
                b.dims[i] = extent(c);
            o.dims[i] = a.dims[i] > b.dims[i] ? a.dims[i] : b.dims[i];
        }
        int64_t na = count_of(a.dims, a.ndim), nbb = count_of(b.dims, b.ndim),
                no = count_of(o.dims, o.ndim);
        if (na == -2 || nbb == -2 || no == -2)
            break;
        hqi_ref_act_t act = activation(c, slopes, o.dims[o.ndim - 1]);
        float *x = BUF(na), *z = BUF(nbb), *y = BUF(no);
        st = hqi_ref_elementwise((hqi_ref_ew_op_t)(byte(c) % 7), &a, x, &b, z, &act, &o, y, err);
        break;
    }
    case 8:
    case 9: {
        hq_shape_t s = shape(c);
        int axis = small(c, 0, s.ndim);
        int64_t ns = count_of(s.dims, s.ndim);
        if (ns == -2 || axis < 0 || axis >= s.ndim || s.dims[axis] < 2)
            break;
        int sizes[2] = {1, (int)s.dims[axis] - 1};
        hq_shape_t p0 = s, p1 = s;
        p0.dims[axis] = sizes[0];
        p1.dims[axis] = maybe_wrong(c, sizes[1]);
        float *x = BUF(ns), *a = BUF(count_of(p0.dims, p0.ndim)), *b = BUF(count_of(p1.dims, p1.ndim));
        if (op == 8) {
            float *outs[2] = {a, b};
            sizes[1] = (int)p1.dims[axis];
            st = hqi_ref_split(&s, x, axis, 2, sizes, outs, err);
        } else {
            const hq_shape_t shapes[2] = {p0, p1};
            const float *ins[2] = {a, b};
            st = hqi_ref_concat(2, shapes, ins, axis, &s, x, err);
        }
        break;
    }
    case 10: {
        hqi_ref_slice_params_t p;
        const int64_t ext[3] = {in.h, in.w, in.c};
        int64_t out_ext[3];
        for (int a = 0; a < 3; a++) {
            p.begin[a] = small(c, 0, 3);
            p.end[a] = maybe_wrong(c, ext[a]);
            p.step[a] = small(c, 1, 3);
            out_ext[a] = p.step[a] > 0 && nin > 0
                             ? (p.end[a] - p.begin[a] + p.step[a] - 1) / p.step[a] : 1;
        }
        hqi_ref_dims_t out = {in.n, out_ext[0], out_ext[1], out_ext[2]};
        int64_t nout = image_count(out);
        if (nout == -2)
            break;
        float *x = BUF(nin), *y = BUF(nout);
        st = hqi_ref_slice(&p, in, x, out, y, err);
        break;
    }
    case 11: {
        hqi_ref_pad_params_t p = {(hq_pad_mode_t)(byte(c) % 4), 1.5f, {0}, {0}};
        const int64_t ext[3] = {in.h, in.w, in.c};
        int64_t out_ext[3];
        for (int a = 0; a < 3; a++) {
            p.before[a] = small(c, 0, 4);
            p.after[a] = small(c, 0, 4);
            out_ext[a] = maybe_wrong(c, nin > 0 ? ext[a] + p.before[a] + p.after[a] : ext[a]);
        }
        hqi_ref_dims_t out = {in.n, out_ext[0], out_ext[1], out_ext[2]};
        int64_t nout = image_count(out);
        if (nout == -2)
            break;
        float *x = BUF(nin), *y = BUF(nout);
        st = hqi_ref_pad(&p, in, x, out, y, err);
        break;
    }
    case 12: {
        hqi_ref_resize_params_t p = {(hq_resize_method_t)(byte(c) % 3),
                                     (hq_resize_coords_t)(byte(c) % 6),
                                     byte(c) % 2,
                                     byte(c) % 2,
                                     byte(c) % 2 ? byte(c) / 16.0 : 0,
                                     byte(c) % 2 ? byte(c) / 16.0 : 0};
        hqi_ref_dims_t out = {in.n, extent(c), extent(c), maybe_wrong(c, in.c)};
        int64_t nout = image_count(out);
        if (nout == -2)
            break;
        float *x = BUF(nin), *y = BUF(nout);
        st = hqi_ref_resize(&p, in, x, out, y, err);
        break;
    }
    case 13:
    case 14: {
        int block = small(c, 1, 3);
        float *x = BUF(nin), *y = BUF(nin);
        st = op == 13 ? hqi_ref_depth_to_space(block, byte(c) % 2, in, x, y, err)
                      : hqi_ref_space_to_depth(block, in, x, y, err);
        break;
    }
    case 15: {
        hq_shape_t s = shape(c);
        int perm[HQ_TENSOR_MAX_DIMS];
        for (int i = 0; i < s.ndim; i++)
            perm[i] = i;
        for (int i = s.ndim - 1; i > 0; i--) {
            int j = byte(c) % (i + 1), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        if (byte(c) == 9)
            perm[0] = s.ndim; /* not a permutation */
        int64_t ns = count_of(s.dims, s.ndim);
        if (ns == -2)
            break;
        float *x = BUF(ns), *y = BUF(ns);
        st = hqi_ref_transpose(&s, x, perm, y, err);
        break;
    }
    default: {
        hq_shape_t s = shape(c);
        int axis = small(c, 0, s.ndim + 1);
        int64_t ns = count_of(s.dims, s.ndim);
        if (ns == -2)
            break;
        hq_shape_t r = s;
        int reduced = op == 19 ? s.ndim - 1 : axis;
        if (reduced >= 0 && reduced < r.ndim)
            r.dims[reduced] = 1;
        float *x = BUF(ns), *y = BUF(count_of(r.dims, r.ndim));
        if (op == 16)
            st = hqi_ref_softmax(&s, x, axis, byte(c) % 2 ? x : BUF(ns), err);
        else if (op == 17)
            st = hqi_ref_reduce_max(&s, x, axis, y, err);
        else if (op == 18)
            st = hqi_ref_reduce_sum(&s, x, axis, y, err);
        else
            st = hqi_ref_argmax(&s, x, y, err);
        break;
    }
    }
    if (st != HQ_OK && (err->status != st || err->message[0] == '\0'))
        __builtin_trap();
    for (int i = 0; i < nb; i++)
        free(bufs[i]);
#undef BUF
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cursor_t c = {data, size, 0};
    static float slopes[MAX_BUFFER];
    for (int i = 0; i < MAX_BUFFER; i++)
        slopes[i] = 0.01f * (float)i;
    hq_error_t err;
    memset(&err, 0, sizeof err);
    run(&c, &err, slopes);
    return 0;
}
