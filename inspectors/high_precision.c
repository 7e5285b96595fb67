/* high_precision.c — HighPrecisionInspector (MEDIUM): which layers are the noise bottlenecks, and
 * which 16-bit layers buy the most accuracy for the least throughput.
 *
 * Per-layer SQNR from noise analysis: the partial SQNR (`hq analyze-noise --advanced`: SQNR at
 * the outputs when only that layer is quantized) when present, else the cumulative SQNR (the log
 * says which). Input, output, const and argmax layers are skipped. A layer is flagged by the
 * output-SQNR gain a16_w16 is expected to buy — its share of the noise the layers add (the noise
 * budget of inspector_util.h) — when that is at least 1 dB: the original tool's rules (SQNR <= 10
 * dB, or below Q25 - 1.5 IQR) flagged a whole network whose cumulative SQNR is low everywhere
 * (56 layers of a correctly prepared PP-OCRv4 det; docs/inspectors.md). Flagged layers are
 * warnings when an output is below the healthy 20 dB or unmeasured, infos otherwise. Beyond the
 * original tool: for them, the lines
 *   quantization_param(L, precision_mode=a16_w16)
 * with the layers precision propagation drags along (pass-through layers such as
 * concat, feature_splitter, ew_add, pools, resize and slice output what they receive, so their
 * whole group of tensors turns 16-bit, and the layers reading those tensors read 16 bit), the
 * estimated throughput cost of that set (hq_profile of deploy.h when libhq has it, else a MAC
 * count weighted 4x for a16_w16 and 2x for a 16-bit input), ordered by expected gain per cost. */
#include <hq/deploy.h>

#include "inspector_util.h"

/* Weak, so that the module also loads into a host whose libhq lacks hq_profile; the MAC estimate
 * is used then. */
#pragma weak hq_profile
#pragma weak hq_profile_destroy

/* A layer is flagged when raising it to 16 bit is expected to raise the output SQNR by at least
 * this much: 1 dB is a fifth less noise power, the least a change of the model script is worth;
 * measured on real models in docs/inspectors.md. */
#define MIN_GAIN_DB 1.0
#define MAX_RECOMMENDED 5
/* MAC-count cost model (used only without hq_profile): relative cost of a MAC. */
#define MAC_COST_A16_W16 4.0
#define MAC_COST_A16_IN 2.0

/* Layers whose SQNR is not judged: sources (input, const_input: no inputs), an output layer (the
 * copy of the layer it names, judged there) and an index output (argmax). */
static bool skipped(hq_layer_type_t t)
{
    return !insp_adds_noise(t);
}

typedef struct candidate {
    int layer;
    double sqnr;     /* dB, partial or cumulative */
    double gain_db;  /* expected SQNR gain (dB) */
    double cost;     /* relative throughput cost (share of the network's time or MACs) */
    bool low; /* flagged: expected gain of at least MIN_GAIN_DB */
} candidate_t;

typedef struct state {
    int n;
    int *parent;       /* union-find over layer output tensors */
    bool *mark;        /* scratch: layers dragged by one request */
    candidate_t *cand;
    int cand_count;
    bool partial;
    double total_macs;
} state_t;

static int find(int *parent, int x)
{
    while (parent[x] != x)
        x = parent[x] = parent[parent[x]];
    return x;
}

/* Marks the layers a 16-bit request on `l` changes, and returns its MAC-weighted extra cost. */
static double drag(hq_inspector_context_t *ctx, state_t *s, int l)
{
    memset(s->mark, 0, (size_t)s->n * sizeof *s->mark);
    hq_inspector_layer_t layer;
    insp_layer(ctx, l, &layer);
    bool *group16 = s->mark + s->n; /* tensor groups turned 16-bit, by root */
    memset(group16, 0, (size_t)s->n * sizeof *group16);
    group16[find(s->parent, l)] = true;
    for (int i = 0; i < layer.input_count; i++)
        group16[find(s->parent, layer.inputs[i])] = true;
    double extra = (double)insp_macs(ctx, l) * (MAC_COST_A16_W16 - 1.0);
    for (int x = 0; x < s->n; x++) {
        if (x == l)
            continue;
        hq_inspector_layer_t xl;
        insp_layer(ctx, x, &xl);
        bool writes16 = group16[find(s->parent, x)];
        bool reads16 = false;
        for (int i = 0; i < xl.input_count; i++)
            reads16 = reads16 || group16[find(s->parent, xl.inputs[i])];
        if (writes16 || reads16)
            s->mark[x] = true;
        if (reads16 && insp_traits(xl.type)->has_weights)
            extra += (double)insp_macs(ctx, x) * (MAC_COST_A16_IN - 1.0);
    }
    return extra;
}

/* Estimated relative cost of raising `l` (and what it drags) to 16 bit. */
static double cost_of(hq_inspector_context_t *ctx, state_t *s, int l, const hq_profile_t *base,
                      insp_text_t *dragged)
{
    double macs_extra = drag(ctx, s, l);
    const char *names[256];
    int count = 0;
    hq_inspector_layer_t layer;
    insp_layer(ctx, l, &layer);
    names[count++] = layer.name;
    for (int x = 0; x < s->n; x++) {
        hq_inspector_layer_t xl;
        insp_layer(ctx, x, &xl);
        if (!s->mark[x] || xl.type == HQ_LAYER_OUTPUT)
            continue;
        insp_append(dragged, "%s%s", dragged->len ? ", " : "", xl.bare_name);
        if (count < 256)
            names[count++] = xl.name;
    }
    if (base && hq_profile) {
        hq_profile_t *p = NULL;
        if (hq_profile(ctx->archive(ctx), ctx->hw_arch(ctx), names, count, &p, NULL) == HQ_OK) {
            double c = (p->seconds_per_frame - base->seconds_per_frame) / base->seconds_per_frame;
            hq_profile_destroy(p);
            return c > 0 ? c : 0;
        }
    }
    return s->total_macs > 0 ? macs_extra / s->total_macs : 0;
}

static int by_value(const void *a, const void *b)
{
    const candidate_t *x = a, *y = b;
    double vx = x->gain_db / (x->cost + 1e-3), vy = y->gain_db / (y->cost + 1e-3);
    return vx > vy ? -1 : vx < vy;
}

static double db_to_noise(double db)
{
    return pow(10.0, -db / 10.0);
}

/* Noise power (relative to the signal) of `layer`'s output, everything quantized up to it; 0 when
 * unmeasured. */
static double cumulative_noise(hq_inspector_context_t *ctx, int layer)
{
    double noise;
    return insp_cumulative_noise(ctx, layer, &noise) ? noise : 0.0;
}

/* The noise layer `l` adds itself: partial SQNR, its noise at the outputs when only it is
 * quantized; cumulative SQNR, the drop across the layer (insp_added_noise), so that a layer deep
 * in a network whose cumulative SQNR is low everywhere adds little when its inputs were already
 * as noisy. */
static double added_noise(hq_inspector_context_t *ctx, const state_t *s, int l, double sqnr)
{
    return s->partial ? db_to_noise(sqnr) : insp_added_noise(ctx, l);
}

/* Expected output-SQNR gain (dB) of raising `l` to a16_w16, which makes its input and output
 * tensors 16-bit and cuts their rounding noise by 2^16 in power. What it removes: partial SQNR,
 * the layer's own noise at the outputs; cumulative SQNR, its output's noise down to what is left
 * one step further back (the noise at the inputs of the layers feeding it, whose outputs turn
 * 16-bit too). The gain is that removed noise as a share of all the noise the layers add
 * (`total`, the sum of added_noise): 10 log10(total / (total - removed)), at most 20 dB. Relative
 * noise is assumed to travel to the outputs unchanged; a ranking estimate, measured against
 * re-quantization in docs/inspectors.md. */
static double expected_gain(hq_inspector_context_t *ctx, const state_t *s, int l, double sqnr,
                            double total)
{
    double own = db_to_noise(sqnr), keep = 1.0 / 65536.0, removed;
    if (s->partial) {
        removed = own * (1 - keep);
    } else {
        hq_inspector_layer_t layer;
        insp_layer(ctx, l, &layer);
        double inherited = 0;
        for (int i = 0; i < layer.input_count; i++) {
            hq_inspector_layer_t p;
            bool found = insp_layer(ctx, layer.inputs[i], &p);
            for (int k = 0; found && k < p.input_count; k++)
                inherited = fmax(inherited, cumulative_noise(ctx, p.inputs[k]));
        }
        double after = fmax(inherited, own * keep);
        removed = own > after ? own - after : 0.0;
    }
    return insp_budget_gain(removed, total);
}

static hq_status_t run(hq_inspector_context_t *ctx, void *state_unused, hq_error_t *err)
{
    (void)state_unused;
    state_t s = {.n = ctx->layer_count(ctx)};
    s.parent = malloc((size_t)s.n * sizeof *s.parent);
    s.mark = calloc((size_t)s.n * 2, sizeof *s.mark);
    s.cand = calloc((size_t)s.n, sizeof *s.cand);
    double *values = calloc((size_t)s.n, sizeof *values);
    if (!s.parent || !s.mark || !s.cand || !values) {
        free(s.parent), free(s.mark), free(s.cand), free(values);
        if (err) {
            err->status = HQ_ERR_NOMEM;
            snprintf(err->message, sizeof err->message, "HighPrecisionInspector: out of memory");
        }
        return HQ_ERR_NOMEM;
    }
    for (int x = 0; x < s.n; x++)
        s.parent[x] = x;
    for (int x = 0; x < s.n; x++) {
        hq_inspector_layer_t xl;
        insp_layer(ctx, x, &xl);
        s.total_macs += (double)insp_macs(ctx, x);
        if (insp_traits(xl.type)->passes_precision)
            for (int i = 0; i < xl.input_count; i++)
                s.parent[find(s.parent, xl.inputs[i])] = find(s.parent, x);
    }
    /* partial SQNR only when every considered layer has it */
    int with_partial = 0, with_any = 0;
    for (int x = 0; x < s.n; x++) {
        hq_inspector_layer_t xl;
        insp_layer(ctx, x, &xl);
        const hq_layer_noise_t *n = ctx->layer_noise(ctx, x);
        if (skipped(xl.type) || !n)
            continue;
        with_any++;
        with_partial += n->has_partial;
    }
    s.partial = with_any > 0 && with_partial == with_any;
    if (!s.partial)
        ctx->log(ctx, "using the cumulative SQNR of each layer (everything quantized up to it); "
                      "`hq analyze-noise --advanced` gives the partial SQNR of each layer alone");
    double total = 0;
    for (int x = 0; x < s.n; x++) {
        hq_inspector_layer_t xl;
        insp_layer(ctx, x, &xl);
        const hq_layer_noise_t *n = ctx->layer_noise(ctx, x);
        if (skipped(xl.type) || !n || (s.partial ? !n->has_partial : !n->has_cumulative))
            continue;
        double db = s.partial ? n->partial_db : n->cumulative_db;
        s.cand[s.cand_count++] = (candidate_t){.layer = x, .sqnr = db};
        values[s.cand_count - 1] = db;
        total += added_noise(ctx, &s, x, db);
    }
    /* the inputs' own rounding is noise no 16-bit layer removes */
    int input_count = 0;
    const int *inputs = ctx->inputs(ctx, &input_count);
    for (int k = 0; !s.partial && k < input_count; k++)
        total += insp_added_noise(ctx, inputs[k]);
    qsort(values, (size_t)s.cand_count, sizeof *values, insp_cmp_double);
    double q25 = insp_quantile(values, s.cand_count, 0.25);
    ctx->log(ctx, "%d layers with %s SQNR; Q25 %.2f dB; summed added noise %.4g (%.2f dB)",
             s.cand_count, s.partial ? "partial" : "cumulative", q25, total,
             total > 0 ? -10.0 * log10(total) : INFINITY);
    double output_db;
    bool healthy = insp_outputs_healthy(ctx, &output_db);
    hq_diag_level_t level = healthy ? HQ_DIAG_INFO : HQ_DIAG_WARNING;
    hq_profile_t *base = NULL;
    if (hq_profile &&
        hq_profile(ctx->archive(ctx), ctx->hw_arch(ctx), NULL, 0, &base, NULL) != HQ_OK)
        base = NULL;
    int flagged = 0;
    for (int i = 0; i < s.cand_count; i++) {
        candidate_t *c = &s.cand[i];
        hq_inspector_layer_t layer, *l = &layer;
        insp_layer(ctx, c->layer, l);
        const char *mode = l->precision_mode[0] ? l->precision_mode : "a8_w8";
        /* a layer already at 16 bit has nothing to gain */
        bool raised = strncmp(mode, "a16_w16", 7) == 0;
        c->gain_db = raised ? 0.0 : expected_gain(ctx, &s, c->layer, c->sqnr, total);
        c->low = c->gain_db >= MIN_GAIN_DB;
        ctx->log(ctx, "%s: SQNR %.2f dB, precision mode %s, expected output gain %.2f dB%s",
                 l->bare_name, c->sqnr, mode, c->gain_db, c->low ? " (flagged)" : "");
        if (!c->low)
            continue;
        /* expected_gain_db: what hq-diag's triage ranks by (docs/diag.md, "Triage") */
        hq_diag_number_t nums[] = {{"sqnr_db", c->sqnr},
                                   {"expected_gain_db", c->gain_db},
                                   {"output_sqnr_db", output_db}};
        insp_emit(ctx, level, c->layer, 0, nums, 3,
                  "%s, %s SQNR %.2f dB, precision mode %s: a16_w16 is expected to raise the output "
                  "SQNR by %.1f dB (its share of the noise the layers add)%s",
                  l->bare_name, s.partial ? "partial" : "cumulative", c->sqnr, mode, c->gain_db,
                  healthy ? "; the outputs are already healthy" : "");
        insp_text_t dragged = {.len = 0};
        c->cost = cost_of(ctx, &s, c->layer, base, &dragged);
        flagged++;
        ctx->log(ctx, "%s: cost %.4f, drags: %s", l->bare_name, c->cost,
                 dragged.len ? dragged.buf : "nothing");
    }
    /* recommendations, best gain per cost first */
    candidate_t *rec = calloc((size_t)(flagged > 0 ? flagged : 1), sizeof *rec);
    int rc = 0;
    for (int i = 0; rec && i < s.cand_count; i++) {
        hq_inspector_layer_t l;
        insp_layer(ctx, s.cand[i].layer, &l);
        if (s.cand[i].low)
            rec[rc++] = s.cand[i];
    }
    if (rec)
        qsort(rec, (size_t)rc, sizeof *rec, by_value);
    for (int i = 0; i < rc && i < MAX_RECOMMENDED; i++) {
        hq_inspector_layer_t layer, *l = &layer;
        insp_layer(ctx, rec[i].layer, l);
        insp_text_t dragged = {.len = 0};
        double cost = cost_of(ctx, &s, rec[i].layer, base, &dragged);
        char line[384];
        snprintf(line, sizeof line, "quantization_param(%s, precision_mode=a16_w16)", l->bare_name);
        insp_text_t reason = {.len = 0};
        insp_append(&reason,
                    "SQNR %.1f dB; expected gain %.1f dB for an estimated %.1f%% more %s "
                    "(rank %d by gain per cost)",
                    rec[i].sqnr, rec[i].gain_db, cost * 100.0,
                    base ? "time per frame (hq profile)" : "MAC-weighted compute", i + 1);
        if (dragged.len)
            insp_append(&reason, "; precision propagation also changes: %s", dragged.buf);
        insp_recommend(ctx, level, rec[i].layer, line, reason.buf, "high_precision",
                       HQ_GROUP_LEVELS,
                       "Raise the noisiest layers to 16 bit?",
                       HQ_ACCEPT_WARNING);
    }
    if (base && hq_profile_destroy)
        hq_profile_destroy(base);
    free(rec);
    free(values);
    free(s.parent);
    free(s.mark);
    free(s.cand);
    return HQ_OK;
}

HQ_INSPECTOR_DEFINE("HighPrecisionInspector",
                    "noise bottlenecks by SQNR, and the 16-bit layers worth their cost",
                    HQ_PRIORITY_MEDIUM, HQ_NEEDS_QUANTIZED | HQ_NEEDS_NOISE_ANALYSIS, run)
