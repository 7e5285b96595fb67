/* fuse.c — inverted-residual blocks (1x1 expand -> depthwise -> 1x1 project, and a
 * squeeze-excitation's multiply -> 1x1 project) computed strip by strip of output rows (fuse.h).
 * Only the fast kernels run here: the GEMMs, the depthwise rows and the multiply are
 * hqi_fast_conv_run, hqi_fast_dw_rows and hqi_fast_elementwise on parts of the tensors, which
 * give each value the bits the whole-tensor call gives it. */
#include <stdlib.h>
#include <string.h>

#include "emulate/fuse.h"
#include "emulate/kernels_fast.h"
#include "util/util.h"

/* Bytes of expanded rows a strip holds by default: a few hundred KB stays in L2 with the
 * depthwise rows and the weights beside it. HQ_EMULATE_FUSE_KB overrides it (experiments). */
#define STRIP_BYTES (512 * 1024)

typedef struct block {
    int expand, dw, project; /* layer indices; expand or project -1 when absent */
    int scale;               /* or: this elementwise layer (a squeeze-excitation's multiply,
                                [H, W, C] by [1, 1, C]) before the projection; dw is then -1 */
    hqi_ref_ew_op_t op;      /* the scale's operation */
    int big;                 /* the scale's input (0 or 1) that is [H, W, C] */
    int first, last, layers;
    const hqi_fast_conv_t *e, *d, *p;
    hqi_ref_act_t act_e, act_d, act_p, act_s;
    hqi_ref_dims_t in, mid, out; /* per sample: dw input, dw output, block output */
    hqi_ref_window_t window;     /* the depthwise's */
    int64_t cin;                 /* the expand's input channels */
    int64_t strip;               /* output rows per strip */
    int64_t held;                /* expanded rows a strip holds at most */
} block_t;

struct hqi_fuse_plan {
    block_t *blocks;
    int count;
    int *block_at; /* per layer: the block it starts, -1 */
    int *last_of;  /* per layer: its block's last layer, itself when in none */
    int64_t per_thread;
    float *buf;         /* per thread: per_thread floats */
    hq_error_t *errors; /* per thread: the message of its first error */
    int buf_threads;
};

/* One run of a block: what a task needs. */
typedef struct job {
    const block_t *b;
    const float *input, *input2, *addend; /* the first layer's inputs, the addend */
    float *output;
    float *buf;
    int64_t per_thread, bands;
    hq_status_t *status; /* per thread: the first error */
    hq_error_t *errors;
} job_t;

static bool dims_of(const hq_layer_t *layer, hqi_ref_dims_t *dims)
{
    const hq_shape_t s = hq_layer_port_shape(layer, 0);
    if (s.ndim != 4)
        return false;
    *dims = (hqi_ref_dims_t){1, s.dims[1], s.dims[2], s.dims[3]};
    return true;
}

/* A 1x1, stride 1, unpadded, ungrouped convolution with a prepared GEMM and no scratch. */
static bool pointwise(const hq_layer_t *layer, const hqi_emu_prepared_t *prepared)
{
    const hq_layer_params_t *p = &layer->params;
    return layer->type == HQ_LAYER_CONV && prepared->state && prepared->scratch_per_thread == 0 &&
           prepared->scratch_per_sample == 0 && p->kernel_h == 1 && p->kernel_w == 1 &&
           p->stride_h == 1 && p->stride_w == 1 && p->groups == 1 && !p->pads[0] && !p->pads[1] &&
           !p->pads[2] && !p->pads[3] && hq_layer_port_count(layer) == 1 &&
           layer->output_shape.ndim == 4;
}

static bool is_output(const hq_graph_t *graph, int layer)
{
    int count = 0;
    const int *outputs = hq_graph_outputs(graph, &count);
    for (int i = 0; i < count; i++)
        if (outputs[i] == layer)
            return true;
    return false;
}

/* The one layer reading `layer`'s output, or -1 when none or several do. */
static int only_reader(const hq_graph_t *graph, int layer)
{
    int reader = -1, reads = 0;
    for (int i = 0; i < hq_graph_layer_count(graph); i++) {
        const hq_layer_t *l = hq_graph_layer(graph, i);
        for (int k = 0; k < l->input_count; k++)
            if (l->inputs[k] == layer) {
                reader = i;
                reads++;
            }
    }
    return reads == 1 ? reader : -1;
}

static hqi_ref_act_t act_of(const hq_graph_t *graph, const hqi_emu_params_t *params, int layer)
{
    hqi_emu_call_t call = {.layer = hq_graph_layer(graph, layer), .params = &params[layer]};
    return hqi_emu_layer_act(&call);
}

static int64_t strip_bytes(void)
{
    const char *env = getenv("HQ_EMULATE_FUSE_KB");
    return env && atoll(env) > 0 ? atoll(env) * 1024 : STRIP_BYTES;
}

/* Strip height and held rows: as many output rows as keep the expanded rows within the strip
 * bytes, at least one. */
static void size_strips(block_t *b)
{
    const int64_t bytes = strip_bytes();
    const hqi_ref_window_t *w = &b->window;
    int64_t row = b->in.w * b->in.c * (int64_t)sizeof(float);
    int64_t strip =
        (bytes / row - (int64_t)(w->kernel_h - 1) * w->dilation_h - 1) / w->stride_h + 1;
    b->strip = strip < 1 ? 1 : strip > b->mid.h ? b->mid.h : strip;
    b->held = (b->strip - 1) * w->stride_h + (int64_t)(w->kernel_h - 1) * w->dilation_h + 1;
    if (b->held > b->in.h)
        b->held = b->in.h;
}

/* The block around depthwise layer `d`, if there is one worth fusing. */
static bool find_block(const hq_graph_t *graph, const hqi_emu_params_t *params,
                       const hqi_emu_prepared_t *prepared, const int *step_of, const int *order,
                       int order_count, int taken_until, int d, block_t *b)
{
    const hq_layer_t *dl = hq_graph_layer(graph, d);
    const hq_layer_params_t *dp = &dl->params;
    if (dl->type != HQ_LAYER_DW || !prepared[d].state || dl->input_count != 1 ||
        dl->input_ports[0] != 0 || hq_layer_port_count(dl) != 1 || dp->kernel_in != 1 ||
        dp->groups != dp->kernel_out || !dims_of(dl, &b->mid))
        return false;
    memset(b, 0, sizeof *b);
    dims_of(dl, &b->mid);
    b->expand = b->project = b->scale = -1;
    b->dw = d;
    int e = dl->inputs[0], t = step_of[d];
    if (t > 0 && t - 1 > taken_until && order[t - 1] == e &&
        pointwise(hq_graph_layer(graph, e), &prepared[e]) &&
        hq_graph_layer(graph, e)->input_count == 1 && only_reader(graph, e) == d &&
        !is_output(graph, e))
        b->expand = e;
    int p = only_reader(graph, d);
    if (p >= 0 && t + 1 < order_count && order[t + 1] == p && !is_output(graph, d) &&
        pointwise(hq_graph_layer(graph, p), &prepared[p])) {
        const hq_layer_t *pl = hq_graph_layer(graph, p);
        int first = b->expand >= 0 ? b->expand : d;
        bool ok = pl->inputs[0] == d && pl->input_ports[0] == 0;
        if (pl->params.elementwise_add) {
            /* the addend must be ready before the block starts and be the output's shape */
            ok = ok && pl->input_count == 2 && step_of[pl->inputs[1]] < step_of[first];
            hq_shape_t a =
                ok ? hq_layer_port_shape(hq_graph_layer(graph, pl->inputs[1]), pl->input_ports[1])
                   : (hq_shape_t){0};
            for (int k = 1; ok && k < 4; k++)
                ok = a.ndim == 4 && a.dims[k] == pl->output_shape.dims[k];
        } else {
            ok = ok && pl->input_count == 1;
        }
        if (ok)
            b->project = p;
    }
    if (b->expand < 0 && b->project < 0)
        return false;
    const hq_layer_t *in_layer = hq_graph_layer(graph, dl->inputs[0]);
    hq_shape_t in_shape = hq_layer_port_shape(in_layer, dl->input_ports[0]);
    if (in_shape.ndim != 4)
        return false;
    b->in = (hqi_ref_dims_t){1, in_shape.dims[1], in_shape.dims[2], in_shape.dims[3]};
    b->out = b->mid;
    if (b->project >= 0 && !dims_of(hq_graph_layer(graph, b->project), &b->out))
        return false;
    b->first = b->expand >= 0 ? b->expand : d;
    b->last = b->project >= 0 ? b->project : d;
    b->layers = 1 + (b->expand >= 0) + (b->project >= 0);
    b->d = prepared[d].state;
    b->window = hqi_emu_layer_window(dp, true);
    b->act_d = act_of(graph, params, d);
    if (b->expand >= 0) {
        b->e = prepared[b->expand].state;
        b->cin = hq_graph_layer(graph, b->expand)->params.kernel_in;
        b->act_e = act_of(graph, params, b->expand);
    }
    if (b->project >= 0) {
        b->p = prepared[b->project].state;
        b->act_p = act_of(graph, params, b->project);
    }
    size_strips(b);
    return true;
}

/* The projection `p` of a scaled block, when it may be fused: a 1x1 reading `from` (and an addend
 * ready before step `first_step`), right after it in the topological order. */
static bool projection(const hq_graph_t *graph, const hqi_emu_prepared_t *prepared,
                       const int *step_of, int from, int p, int first_step)
{
    const hq_layer_t *pl = hq_graph_layer(graph, p);
    if (!pointwise(pl, &prepared[p]) || pl->inputs[0] != from || pl->input_ports[0] != 0 ||
        step_of[p] != step_of[from] + 1)
        return false;
    if (!pl->params.elementwise_add)
        return pl->input_count == 1;
    if (pl->input_count != 2 || step_of[pl->inputs[1]] >= first_step)
        return false;
    hq_shape_t a = hq_layer_port_shape(hq_graph_layer(graph, pl->inputs[1]), pl->input_ports[1]);
    bool same = a.ndim == 4;
    for (int k = 1; same && k < 4; k++)
        same = a.dims[k] == pl->output_shape.dims[k];
    return same;
}

/* The block of elementwise layer `m` ([H, W, C] op [1, 1, C], a squeeze-excitation's multiply)
 * and the projection that alone reads it. */
static bool find_scaled(const hq_graph_t *graph, const hqi_emu_params_t *params,
                        const hqi_emu_prepared_t *prepared, const int *step_of, int m, block_t *b)
{
    const hq_layer_t *ml = hq_graph_layer(graph, m);
    const hq_layer_type_traits_t *traits = hqi_layer_traits(ml->type);
    if (!traits || traits->ew_op == HQ_EW_NONE || ml->input_count != 2 ||
        hq_layer_port_count(ml) != 1 || is_output(graph, m) || !dims_of(ml, &b->mid))
        return false;
    memset(b, 0, sizeof *b);
    dims_of(ml, &b->mid);
    hq_shape_t in[2];
    for (int k = 0; k < 2; k++)
        in[k] = hq_layer_port_shape(hq_graph_layer(graph, ml->inputs[k]), ml->input_ports[k]);
    b->big = in[0].ndim == 4 && in[0].dims[1] == b->mid.h && in[0].dims[2] == b->mid.w ? 0 : 1;
    const hq_shape_t *big = &in[b->big], *small = &in[1 - b->big];
    if (big->ndim != 4 || big->dims[1] != b->mid.h || big->dims[2] != b->mid.w ||
        big->dims[3] != b->mid.c || small->ndim != 4 || small->dims[1] != 1 ||
        small->dims[2] != 1 || small->dims[3] != b->mid.c)
        return false;
    int p = only_reader(graph, m);
    if (p < 0 || !projection(graph, prepared, step_of, m, p, step_of[m]) ||
        !dims_of(hq_graph_layer(graph, p), &b->out))
        return false;
    b->expand = b->dw = -1;
    b->scale = b->first = m;
    b->project = b->last = p;
    b->layers = 2;
    b->op = hqi_ref_ew_op_of(traits->ew_op);
    b->act_s = act_of(graph, params, m);
    b->p = prepared[p].state;
    b->act_p = act_of(graph, params, p);
    b->strip = strip_bytes() / (b->mid.w * b->mid.c * (int64_t)sizeof(float));
    b->strip = b->strip < 1 ? 1 : b->strip > b->mid.h ? b->mid.h : b->strip;
    return true;
}

static int64_t scratch_of(const block_t *b)
{
    return (b->expand >= 0 ? b->held * b->in.w * b->in.c : 0) +
           (b->project >= 0 ? b->strip * b->mid.w * b->mid.c : 0);
}

hq_status_t hqi_fuse_plan_create(const hq_graph_t *graph, const hqi_emu_params_t *params,
                                 const hqi_emu_prepared_t *prepared, hqi_fuse_plan_t **out,
                                 hq_error_t *err)
{
    *out = NULL;
    int n = hq_graph_layer_count(graph), order_count = 0;
    const int *order = hq_graph_topo_order(graph, &order_count);
    hqi_fuse_plan_t *plan = calloc(1, sizeof *plan);
    int *step_of = calloc((size_t)n + 1, sizeof *step_of);
    if (plan) {
        plan->blocks = calloc((size_t)n + 1, sizeof *plan->blocks);
        plan->block_at = malloc(((size_t)n + 1) * sizeof *plan->block_at);
        plan->last_of = malloc(((size_t)n + 1) * sizeof *plan->last_of);
    }
    if (!plan || !step_of || !plan->blocks || !plan->block_at || !plan->last_of) {
        free(step_of);
        hqi_fuse_plan_destroy(plan);
        return hqi_nomem(err, "emulator fusion plan");
    }
    for (int t = 0; t < order_count; t++)
        step_of[order[t]] = t;
    for (int i = 0; i < n; i++) {
        plan->block_at[i] = -1;
        plan->last_of[i] = i;
    }
    /* blocks are found in topological order; a layer at a step up to taken_until is in one */
    int taken_until = -1;
    for (int t = 0; t < order_count; t++) {
        block_t *b = &plan->blocks[plan->count];
        if (!find_block(graph, params, prepared, step_of, order, order_count, taken_until, order[t],
                        b) &&
            !find_scaled(graph, params, prepared, step_of, order[t], b))
            continue;
        if (step_of[b->first] <= taken_until) /* a layer of it ends an earlier block */
            continue;
        taken_until = step_of[b->last];
        plan->block_at[b->first] = plan->count;
        for (int s = step_of[b->first]; s <= step_of[b->last]; s++)
            plan->last_of[order[s]] = b->last;
        int64_t need = scratch_of(b);
        if (need > plan->per_thread)
            plan->per_thread = need;
        plan->count++;
    }
    free(step_of);
    if (!plan->count) {
        hqi_fuse_plan_destroy(plan);
        return HQ_OK;
    }
    *out = plan;
    return HQ_OK;
}

void hqi_fuse_plan_destroy(hqi_fuse_plan_t *plan)
{
    if (!plan)
        return;
    free(plan->blocks);
    free(plan->block_at);
    free(plan->last_of);
    free(plan->buf);
    free(plan->errors);
    free(plan);
}

int hqi_fuse_block_at(const hqi_fuse_plan_t *plan, int layer)
{
    return plan ? plan->block_at[layer] : -1;
}

int hqi_fuse_last_layer(const hqi_fuse_plan_t *plan, int layer)
{
    return plan ? plan->last_of[layer] : layer;
}

int hqi_fuse_block_layers(const hqi_fuse_plan_t *plan, int block)
{
    return plan->blocks[block].layers;
}

int64_t hqi_fuse_scratch_floats(const hqi_fuse_plan_t *plan)
{
    return plan ? plan->per_thread : 0;
}

/* ---- running a block ------------------------------------------------------------------------ */

/* Output rows [r0, r1) of sample n: expand the input rows their windows read that the strip
 * before did not leave in `held` (rows [*lo, *hi) of the expanded tensor), depthwise them,
 * project the result. */
/* Rows [r0, r1) of sample n of a scaled block: the elementwise rows, then their projection. */
static hq_status_t run_scaled_strip(const job_t *job, int64_t n, int64_t r0, int64_t r1, float *mid,
                                    hq_error_t *err)
{
    const block_t *b = job->b;
    const int64_t row = b->mid.w * b->mid.c;
    const hq_shape_t rows = {4, {1, r1 - r0, b->mid.w, b->mid.c}}, one = {4, {1, 1, 1, b->mid.c}};
    const float *big = (b->big ? job->input2 : job->input) + (n * b->mid.h + r0) * row;
    const float *small = (b->big ? job->input : job->input2) + n * b->mid.c;
    hq_status_t st = b->big ? hqi_fast_elementwise(b->op, &one, small, &rows, big, &b->act_s, &rows,
                                                   mid, NULL, err)
                            : hqi_fast_elementwise(b->op, &rows, big, &one, small, &b->act_s, &rows,
                                                   mid, NULL, err);
    if (st != HQ_OK)
        return st;
    hqi_ref_dims_t pin = {1, r1 - r0, b->mid.w, b->mid.c};
    hqi_ref_dims_t pout = {1, r1 - r0, b->out.w, b->out.c};
    int64_t at = (n * b->out.h + r0) * b->out.w * b->out.c;
    return hqi_fast_conv_run(b->p, &b->act_p, pin, mid, job->addend ? job->addend + at : NULL, pout,
                             job->output + at, NULL, NULL, err);
}

static hq_status_t run_strip(const job_t *job, int64_t n, int64_t r0, int64_t r1, float *held,
                             int64_t *lo, int64_t *hi, float *mid, hq_error_t *err)
{
    const block_t *b = job->b;
    if (b->scale >= 0)
        return run_scaled_strip(job, n, r0, r1, mid, err);
    const hqi_ref_window_t *w = &b->window;
    int64_t a = r0 * w->stride_h - w->pad_top;
    int64_t e =
        (r1 - 1) * w->stride_h - w->pad_top + (int64_t)(w->kernel_h - 1) * w->dilation_h + 1;
    a = a < 0 ? 0 : a;
    e = e > b->in.h ? b->in.h : e;
    const int64_t row = b->in.w * b->in.c;
    const float *dw_in = job->input + (n * b->in.h + a) * row;
    hq_status_t st = HQ_OK;
    if (b->expand >= 0) {
        int64_t from = a;
        if (*lo <= a && a < *hi) { /* the halo rows the last strip expanded */
            memmove(held, held + (a - *lo) * row, (size_t)((*hi - a) * row) * sizeof(float));
            from = *hi;
        }
        if (from < e) {
            hqi_ref_dims_t ein = {1, e - from, b->in.w, b->cin};
            hqi_ref_dims_t eout = {1, e - from, b->in.w, b->in.c};
            st = hqi_fast_conv_run(b->e, &b->act_e, ein,
                                   job->input + (n * b->in.h + from) * b->in.w * ein.c, NULL, eout,
                                   held + (from - a) * row, NULL, NULL, err);
        }
        *lo = a;
        *hi = e;
        dw_in = held;
    }
    const int64_t mid_row = b->mid.w * b->mid.c, out_row = b->out.w * b->out.c;
    float *dw_out = b->project >= 0 ? mid : job->output + (n * b->mid.h + r0) * mid_row;
    if (st == HQ_OK)
        st = hqi_fast_dw_rows(b->d, &b->act_d, b->in, dw_in, a, NULL, b->mid, dw_out, r0, r1, err);
    if (st == HQ_OK && b->project >= 0) {
        hqi_ref_dims_t pin = {1, r1 - r0, b->mid.w, b->mid.c};
        hqi_ref_dims_t pout = {1, r1 - r0, b->out.w, b->out.c};
        int64_t at = (n * b->out.h + r0) * out_row;
        st = hqi_fast_conv_run(b->p, &b->act_p, pin, mid, job->addend ? job->addend + at : NULL,
                               pout, job->output + at, NULL, NULL, err);
    }
    return st;
}

/* Task: one band of output rows of one sample, strip after strip. */
static void band_task(void *context, int64_t task, int thread)
{
    const job_t *job = context;
    const block_t *b = job->b;
    if (job->status[thread] != HQ_OK)
        return;
    const int64_t n = task / job->bands, band = task % job->bands;
    const int64_t r_begin = b->mid.h * band / job->bands,
                  r_end = b->mid.h * (band + 1) / job->bands;
    float *held = job->buf + thread * job->per_thread;
    float *mid = held + (b->expand >= 0 ? b->held * b->in.w * b->in.c : 0);
    int64_t lo = 0, hi = 0;
    for (int64_t r0 = r_begin; r0 < r_end; r0 += b->strip) {
        int64_t r1 = r0 + b->strip < r_end ? r0 + b->strip : r_end;
        hq_status_t st = run_strip(job, n, r0, r1, held, &lo, &hi, mid, &job->errors[thread]);
        if (st != HQ_OK) {
            job->status[thread] = st;
            return;
        }
    }
}

static int64_t gcd(int64_t a, int64_t b)
{
    while (b) {
        int64_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

hq_status_t hqi_fuse_reserve(hqi_fuse_plan_t *plan, int sets, hq_error_t *err)
{
    if (!plan || sets <= plan->buf_threads)
        return HQ_OK;
    free(plan->buf);
    free(plan->errors);
    plan->buf = malloc((size_t)(plan->per_thread * sets) * sizeof(float));
    plan->errors = calloc((size_t)sets, sizeof *plan->errors);
    plan->buf_threads = plan->buf && plan->errors ? sets : 0;
    if (!plan->buf_threads)
        return hqi_nomem(err, "emulator fused block");
    return HQ_OK;
}

hq_status_t hqi_fuse_run(const hqi_fuse_plan_t *plan, int block, int64_t batch,
                         const float *input, const float *input2, const float *addend,
                         float *output, hqi_threadpool_t *pool, int set, hq_error_t *err)
{
    const block_t *b = &plan->blocks[block];
    const int threads = hqi_threadpool_size(pool);
    if (set < 0 || set + threads > plan->buf_threads)
        return hqi_error(err, HQ_ERR_STATE, "fused block: strip buffers %d..%d of %d reserved",
                         set, set + threads - 1, plan->buf_threads);
    hq_status_t status[HQI_THREADS_MAX];
    for (int t = 0; t < threads; t++)
        status[t] = HQ_OK;
    /* bands per sample: enough that the tasks split evenly over the threads; each band boundary
     * expands the halo rows twice, so no more than that */
    int64_t bands = threads / gcd(batch, threads);
    if (bands > b->mid.h)
        bands = b->mid.h;
    job_t job = {.b = b,
                 .input = input,
                 .input2 = input2,
                 .addend = b->project >= 0 ? addend : NULL,
                 .output = output,
                 .buf = plan->buf + (int64_t)set * plan->per_thread,
                 .per_thread = plan->per_thread,
                 .bands = bands,
                 .status = status,
                 .errors = plan->errors + set};
    hqi_threadpool_run(pool, batch * bands, band_task, &job);
    for (int t = 0; t < threads; t++)
        if (status[t] != HQ_OK) {
            if (err)
                *err = plan->errors[set + t];
            return status[t];
        }
    return HQ_OK;
}
