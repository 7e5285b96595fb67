/* test_emulate_fuse.c — inverted-residual blocks run fused (core/emulate/fuse.c) give the same
 * bits as the same network run layer by layer (HQ_EMULATE_NO_FUSE=1): random shapes with odd
 * sizes, 3x3 and 5x5 depthwise windows, stride 1 and 2, with and without the expand, the
 * projection and the residual add, strips of one row up to the whole map (HQ_EMULATE_FUSE_KB),
 * 1 and 2 threads, batch 1 and 3, on every instruction set the CPU runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "emulate/emulator_internal.h"
#include "emulate/kernels_fast.h"
#include "hq/emulate.h"
#include "hq/graph.h"
#include "hq/tensor.h"
#include "test_graphs.h"

/* One block: in [h, w, cin] -> (expand 1x1 cin->mid, act) -> dw kxk stride s (act) ->
 * (squeeze-excitation: dw * sigmoid(conv(relu(conv(global_avg_pool(dw)))))) ->
 * (project 1x1 mid->cout [+ in]) -> (chain: dw2 3x3 -> project2 1x1 cout->cout, a depthwise
 * right after a projection) -> out. */
typedef struct shape {
    int h, w, cin, mid, cout, k, stride;
    bool expand, project, residual, se;
    bool se_first; /* the multiply's first input is the excitation ([1, 1, C]) */
    bool chain;
    hq_activation_t act;
} shape_t;

typedef struct net {
    hq_graph_t *graph;
    hq_npz_t *params;
    int64_t in_size, out_size;
} net_t;

static void set_conv(hq_graph_t *g, int index, int k, int stride, int cin, int cout, int groups,
                     hq_activation_t act)
{
    hq_layer_params_t *p = &hq_graph_layer_mut(g, index)->params;
    p->kernel_h = p->kernel_w = k;
    p->stride_h = p->stride_w = stride;
    p->kernel_in = cin;
    p->kernel_out = cout;
    p->groups = groups;
    p->padding = HQ_PADDING_EXPLICIT;
    p->pads[0] = p->pads[1] = p->pads[2] = p->pads[3] = k / 2;
    p->has_bias = true;
    p->activation = act;
}

static void net_build(const shape_t *s, net_t *net)
{
    hq_graph_t *g = NULL;
    hq_error_t err = {0};
    assert_int_equal(hq_graph_create("net", &g, NULL), HQ_OK);
    int in = test_add_layer(g, "in", HQ_LAYER_INPUT, -1);
    hq_shape_t shape = test_shape4(s->h, s->w, s->cin);
    assert_int_equal(hq_layer_set_output_shape(g, in, &shape, NULL), HQ_OK);
    int last = in;
    const int mid = s->expand ? s->mid : s->cin;
    if (s->expand) {
        last = test_add_layer(g, "expand", HQ_LAYER_CONV, last);
        set_conv(g, last, 1, 1, s->cin, mid, 1, s->act);
    }
    last = test_add_layer(g, "dw", HQ_LAYER_DW, last);
    set_conv(g, last, s->k, s->stride, 1, mid, mid, s->act);
    if (s->se) {
        int dw = last;
        int gap = test_add_layer(g, "gap", HQ_LAYER_GLOBAL_AVG_POOL, dw);
        int squeeze = test_add_layer(g, "squeeze", HQ_LAYER_CONV, gap);
        set_conv(g, squeeze, 1, 1, mid, 4, 1, HQ_ACT_RELU);
        int excite = test_add_layer(g, "excite", HQ_LAYER_CONV, squeeze);
        set_conv(g, excite, 1, 1, 4, mid, 1, HQ_ACT_SIGMOID);
        last = test_add_layer(g, "scale", HQ_LAYER_EW_MULT, s->se_first ? excite : dw);
        if (hq_graph_connect(g, s->se_first ? dw : excite, 0, last, &err))
            fail_msg("connect: %s", err.message);
    }
    if (s->project) {
        last = test_add_layer(g, "project", HQ_LAYER_CONV, last);
        set_conv(g, last, 1, 1, mid, s->cout, 1, HQ_ACT_LINEAR);
        if (s->residual) {
            hq_graph_layer_mut(g, last)->params.elementwise_add = true;
            if (hq_graph_connect(g, in, 0, last, &err))
                fail_msg("connect: %s", err.message);
        }
    }
    if (s->chain) {
        last = test_add_layer(g, "dw2", HQ_LAYER_DW, last);
        set_conv(g, last, 3, 1, 1, s->cout, s->cout, s->act);
        last = test_add_layer(g, "project2", HQ_LAYER_CONV, last);
        set_conv(g, last, 1, 1, s->cout, s->cout, 1, HQ_ACT_LINEAR);
    }
    test_add_layer(g, "out", HQ_LAYER_OUTPUT, last);
    if (hq_graph_finalize(g, "test.hn", &err))
        fail_msg("finalize: %s", err.message);
    hq_npz_t *p = NULL;
    assert_int_equal(hq_npz_create(&p, NULL), HQ_OK);
    if (s->expand) {
        test_put_filled(p, "net/expand/kernel:0", 4, (int64_t[]){1, 1, s->cin, mid}, 1);
        test_put_filled(p, "net/expand/bias:0", 1, (int64_t[]){mid}, 2);
    }
    test_put_filled(p, "net/dw/kernel:0", 4, (int64_t[]){s->k, s->k, 1, mid}, 3);
    test_put_filled(p, "net/dw/bias:0", 1, (int64_t[]){mid}, 4);
    if (s->se) {
        test_put_filled(p, "net/squeeze/kernel:0", 4, (int64_t[]){1, 1, mid, 4}, 7);
        test_put_filled(p, "net/squeeze/bias:0", 1, (int64_t[]){4}, 8);
        test_put_filled(p, "net/excite/kernel:0", 4, (int64_t[]){1, 1, 4, mid}, 9);
        test_put_filled(p, "net/excite/bias:0", 1, (int64_t[]){mid}, 10);
    }
    if (s->project) {
        test_put_filled(p, "net/project/kernel:0", 4, (int64_t[]){1, 1, mid, s->cout}, 5);
        test_put_filled(p, "net/project/bias:0", 1, (int64_t[]){s->cout}, 6);
    }
    if (s->chain) {
        test_put_filled(p, "net/dw2/kernel:0", 4, (int64_t[]){3, 3, 1, s->cout}, 11);
        test_put_filled(p, "net/dw2/bias:0", 1, (int64_t[]){s->cout}, 12);
        test_put_filled(p, "net/project2/kernel:0", 4, (int64_t[]){1, 1, s->cout, s->cout}, 13);
        test_put_filled(p, "net/project2/bias:0", 1, (int64_t[]){s->cout}, 14);
    }
    net->graph = g;
    net->params = p;
    net->in_size = (int64_t)s->h * s->w * s->cin;
    int ho = (s->h - 1) / s->stride + 1, wo = (s->w - 1) / s->stride + 1;
    net->out_size = (int64_t)ho * wo * (s->project ? s->cout : mid);
}

static void net_free(net_t *net)
{
    hq_npz_destroy(net->params);
    hq_graph_destroy(net->graph);
}

/* Output of one untapped run, and the seconds counted under `type` (a fused block's time counts
 * as its last layer's: none under dw when the projection is fused with it, none under ew_mult
 * when the multiply is). */
static float *run(const net_t *net, bool fuse, int threads, int64_t batch, const float *x,
                  hq_layer_type_t type, double *seconds)
{
    if (fuse)
        unsetenv("HQ_EMULATE_NO_FUSE");
    else
        setenv("HQ_EMULATE_NO_FUSE", "1", 1);
    hq_emulator_t *emu = NULL;
    hq_error_t err = {0};
    if (hqi_emulator_create_with_set(net->graph, net->params, HQ_TARGET_NATIVE, "t",
                                     hqi_emu_fast_set(), &emu, &err))
        fail_msg("create: %s", err.message);
    unsetenv("HQ_EMULATE_NO_FUSE");
    assert_int_equal(hq_emulator_set_threads(emu, threads, NULL), HQ_OK);
    float *y = malloc((size_t)(net->out_size * batch) * sizeof(float));
    assert_non_null(y);
    memset(y, 0xff, (size_t)(net->out_size * batch) * sizeof(float));
    const float *inputs[1] = {x};
    float *outputs[1] = {y};
    if (hq_emulator_run(emu, batch, inputs, outputs, NULL, NULL, &err))
        fail_msg("run: %s", err.message);
    *seconds = hq_emulator_type_seconds(emu, type, NULL);
    hq_emulator_destroy(emu);
    return y;
}

static uint32_t rng = 12345;
static int pick(int lo, int hi)
{
    rng = rng * 1664525u + 1013904223u;
    return lo + (int)((rng >> 8) % (uint32_t)(hi - lo + 1));
}

static void check_shape(const shape_t *s)
{
    net_t net;
    net_build(s, &net);
    const int64_t batch_max = 3;
    float *x = malloc((size_t)(net.in_size * batch_max) * sizeof(float));
    assert_non_null(x);
    test_fill(x, net.in_size * batch_max, (uint32_t)(s->h * 31 + s->w));
    static const char *const strips[] = {"1", "3", "64"};
    for (int st = 0; st < 3; st++) {
        setenv("HQ_EMULATE_FUSE_KB", strips[st], 1);
        for (int threads = 1; threads <= 2; threads++)
            for (int64_t batch = 1; batch <= batch_max; batch += 2) {
                double fused_s = 0.0, plain_s = 0.0;
                hq_layer_type_t type = s->se ? HQ_LAYER_EW_MULT : HQ_LAYER_DW;
                float *plain = run(&net, false, threads, batch, x, type, &plain_s);
                float *fused = run(&net, true, threads, batch, x, type, &fused_s);
                if (memcmp(plain, fused, (size_t)(net.out_size * batch) * sizeof(float)))
                    fail_msg("%dx%dx%d -> %d -> %d, k %d stride %d, expand %d project %d "
                             "residual %d se %d, strip %s KB, %d threads, batch %lld: bits differ",
                             s->h, s->w, s->cin, s->mid, s->cout, s->k, s->stride, s->expand,
                             s->project, s->residual, s->se, strips[st], threads, (long long)batch);
                if (s->project)
                    assert_true(fused_s == 0.0 && plain_s > 0.0); /* the block was fused */
                free(plain);
                free(fused);
            }
    }
    unsetenv("HQ_EMULATE_FUSE_KB");
    free(x);
    net_free(&net);
}

static void fused_blocks_give_the_bits_of_the_layer_by_layer_run(void **state)
{
    (void)state;
    const hqi_fast_isa_t *isas[] = {&hqi_fast_isa_portable, hqi_fast_isa_avx2(),
                                    hqi_fast_isa_avx512()};
    static const hq_activation_t acts[] = {HQ_ACT_RELU6, HQ_ACT_HARDSWISH, HQ_ACT_SILU};
    for (int i = 0; i < 3; i++) {
        if (!isas[i])
            continue;
        hqi_fast_isa_override(isas[i]);
        for (int c = 0; c < 14; c++) {
            shape_t s = {
                .h = pick(1, 23),
                .w = pick(1, 19),
                .cin = pick(1, 24),
                .mid = pick(1, 70),
                .cout = pick(1, 40),
                .k = c % 2 ? 5 : 3,
                .stride = c / 2 % 2 ? 2 : 1,
                .expand = c != 6,
                .project = c != 7,
                .se = c >= 8 && c < 12,
                .chain = c >= 12,
                .se_first = c == 9 || c == 11,
                .act = acts[c % 3],
            };
            s.residual = s.project && s.stride == 1 && c % 3 != 0;
            if (s.residual)
                s.cout = s.cin;
            check_shape(&s);
        }
    }
    hqi_fast_isa_override(NULL);
}

/* The shapes of mobilenet_v2's second block (112x112x16 -> 96, 3x3 stride 2 -> 24) at a quarter
 * of the size, where the default strips hold several rows. */
static void a_mobile_sized_block_gives_the_same_bits(void **state)
{
    (void)state;
    shape_t s = {.h = 57,
                 .w = 55,
                 .cin = 16,
                 .mid = 96,
                 .cout = 24,
                 .k = 3,
                 .stride = 2,
                 .expand = true,
                 .project = true,
                 .act = HQ_ACT_RELU6};
    check_shape(&s);
    s.stride = 1;
    s.cout = 16;
    s.residual = true;
    check_shape(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fused_blocks_give_the_bits_of_the_layer_by_layer_run),
        cmocka_unit_test(a_mobile_sized_block_gives_the_same_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
