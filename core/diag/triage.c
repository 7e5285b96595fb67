/* triage.c — what keeps hq-diag's console short and what it ends with: an inspector's per-layer
 * findings below error level fold into one summary line per level (worst layers named, every
 * finding still in the log, --json and --report), and the triage ranks the causes found, with
 * their fix lines, by the ordering documented in docs/diag.md ("Triage"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag/diag_internal.h"
#include "util/util.h"

/* Layers a summary line names. */
#define HQI_DIAG_WORST_NAMED 3
/* Fix lines the console shows per cause (--json has all). */
#define HQI_DIAG_TRIAGE_LINES 3

bool hqi_diag_finding_folds(const hq_diag_t *d, int module, hq_diag_level_t level, int layer)
{
    return module >= 0 && module < d->module_count && level < HQ_DIAG_ERROR && layer >= 0;
}

/* The layer's measured SQNR (partial when known, else cumulative); +inf when unmeasured, so
 * that unmeasured layers sort after measured ones. */
static double layer_sqnr(const hq_diag_t *d, int layer)
{
    if (!d->noise || layer < 0)
        return INFINITY;
    const hq_layer_noise_t *n = &d->noise[layer].noise;
    return n->has_partial ? n->partial_db : n->has_cumulative ? n->cumulative_db : INFINITY;
}

/* Whether finding a is worse than finding b: higher level, then lower layer SQNR, then reported
 * earlier. */
static bool worse(const hq_diag_t *d, int a, int b)
{
    const hqi_diag_finding_t *x = &d->findings[a], *y = &d->findings[b];
    if (x->level != y->level)
        return x->level > y->level;
    double sx = layer_sqnr(d, x->layer), sy = layer_sqnr(d, y->layer);
    if (sx != sy)
        return sx < sy;
    return a < b;
}

/* Indices of module m's findings at `level` with a layer, worst first; *count set. Caller frees. */
static int *layer_findings(const hq_diag_t *d, int module, hq_diag_level_t level, int *count)
{
    *count = 0;
    int *idx = malloc((size_t)(d->finding_count > 0 ? d->finding_count : 1) * sizeof *idx);
    if (!idx)
        return NULL;
    for (int i = 0; i < d->finding_count; i++) {
        const hqi_diag_finding_t *f = &d->findings[i];
        if (f->module == module && f->level == level && f->layer >= 0)
            idx[(*count)++] = i;
    }
    for (int i = 1; i < *count; i++) /* insertion sort: stable, and counts are small */
        for (int k = i; k > 0 && worse(d, idx[k], idx[k - 1]); k--) {
            int t = idx[k];
            idx[k] = idx[k - 1];
            idx[k - 1] = t;
        }
    return idx;
}

void hqi_diag_fold_findings(hq_diag_t *d, int module)
{
    const char *name = hqi_diag_module_name(d, module);
    for (int level = HQ_DIAG_WARNING; level >= HQ_DIAG_INFO; level--) {
        int count;
        int *idx = layer_findings(d, module, (hq_diag_level_t)level, &count);
        if (!idx)
            return;
        if (count == 1) { /* one finding is as short as its summary */
            hqi_diag_event(d, HQ_DIAG_EVENT_MESSAGE, (hq_diag_level_t)level, name, "%s",
                           d->findings[idx[0]].message);
        } else if (count > 1) {
            for (int i = 0; i < d->finding_count; i++) { /* the detail, in reported order */
                const hqi_diag_finding_t *f = &d->findings[i];
                if (f->module == module && (int)f->level == level && f->layer >= 0)
                    hqi_diag_event(d, HQ_DIAG_EVENT_DETAIL, f->level, name, "%s", f->message);
            }
            /* distinct layers, and the worst few of them by name */
            int layers = 0, named = 0;
            char worst[512] = "";
            for (int i = 0; i < count; i++) {
                int layer = d->findings[idx[i]].layer;
                bool seen = false;
                for (int k = 0; k < i && !seen; k++)
                    seen = d->findings[idx[k]].layer == layer;
                if (seen)
                    continue;
                layers++;
                if (named < HQI_DIAG_WORST_NAMED) {
                    size_t at = strlen(worst);
                    snprintf(worst + at, sizeof worst - at, "%s%s", named ? ", " : "",
                             hq_graph_layer(d->graph, layer)->bare_name);
                    named++;
                }
            }
            hqi_diag_event(d, HQ_DIAG_EVENT_MESSAGE, (hq_diag_level_t)level, name,
                           "%s: %d %s on %d layer(s); worst %s (details in the log and --json)",
                           name, count,
                           level == HQ_DIAG_WARNING ? "warning(s)" : "info finding(s)", layers,
                           worst);
        }
        free(idx);
    }
}

/* ---- triage --------------------------------------------------------------------------------- */

/* The finding number an inspector names its expected output-SQNR gain with. */
#define HQI_DIAG_GAIN_NUMBER "expected_gain_db"

/* Inspector priority of a cause (high 0 .. low 2); the host's verdict ranks after every
 * inspector of its level and gain: it says how much is lost, the inspectors say why. */
static int cause_priority(const hq_diag_t *d, int module)
{
    return module >= 0 && module < d->module_count ? (int)d->modules[module].slots.priority : 3;
}

/* Position of the module in the run order (the last tie-break); the host comes first. */
static int run_position(const hq_diag_t *d, int module)
{
    for (int i = 0; i < d->order_count; i++)
        if (d->order[i] == module)
            return i;
    return -1;
}

static bool ranks_before(const hq_diag_t *d, const hqi_diag_cause_t *a, const hqi_diag_cause_t *b)
{
    /* a wrong input first: every other cause was measured on it */
    if (a->fixes_input != b->fixes_input)
        return a->fixes_input;
    /* then a network-wide setting (4-bit compression, the optimization level): the per-layer
     * causes' expected gains were estimated from noise measured under it */
    if (a->fixes_network != b->fixes_network)
        return a->fixes_network;
    /* the verdict says how much is lost, not why: a cause with a fix line comes before it */
    bool fa = a->module >= 0 && a->line_count > 0, fb = b->module >= 0 && b->line_count > 0;
    if ((a->module < 0 && fb) || (b->module < 0 && fa))
        return fa;
    if (a->level != b->level)
        return a->level > b->level;
    bool ga = !isnan(a->expected_gain_db), gb = !isnan(b->expected_gain_db);
    if (ga != gb)
        return ga;
    if (ga && a->expected_gain_db != b->expected_gain_db)
        return a->expected_gain_db > b->expected_gain_db;
    int pa = cause_priority(d, a->module), pb = cause_priority(d, b->module);
    if (pa != pb)
        return pa < pb;
    if ((a->line_count > 0) != (b->line_count > 0)) /* a fix to apply now beats advice */
        return a->line_count > 0;
    return run_position(d, a->module) < run_position(d, b->module);
}

/* The cause of one module (the host is -1): false when it has no finding at warning or above
 * and no recommended line. */
static bool cause_of(const hq_diag_t *d, int module, hqi_diag_cause_t *c)
{
    memset(c, 0, sizeof *c);
    c->module = module;
    c->expected_gain_db = NAN;
    int worst = -1, findings = 0;
    for (int i = 0; i < d->finding_count; i++) {
        const hqi_diag_finding_t *f = &d->findings[i];
        bool mine = module < 0 ? f->module < 0 || f->module >= d->module_count : f->module == module;
        if (!mine)
            continue;
        findings++;
        if (worst < 0 || worse(d, i, worst))
            worst = i;
        for (int k = 0; k < f->number_count; k++)
            if (!strcmp(f->numbers[k].name, HQI_DIAG_GAIN_NUMBER) &&
                isfinite(f->numbers[k].value) &&
                (isnan(c->expected_gain_db) || f->numbers[k].value > c->expected_gain_db))
                c->expected_gain_db = f->numbers[k].value;
    }
    int recs = 0;
    for (int i = 0; i < d->rec_count; i++)
        if (d->recs[i].module == module) {
            recs++;
            bool acts = d->recs[i].level >= HQ_DIAG_WARNING;
            c->fixes_input = c->fixes_input || (acts && hqi_diag_changes_input(d->recs[i].line));
            c->fixes_network =
                c->fixes_network || (acts && hqi_diag_changes_network(d->recs[i].line));
        }
    if (worst < 0 && recs == 0)
        return false;
    c->line_count = recs;
    c->level = worst >= 0 ? d->findings[worst].level : HQ_DIAG_INFO;
    for (int i = 0; i < d->rec_count; i++) /* a recommendation's level counts as a finding's */
        if (d->recs[i].module == module && d->recs[i].level > c->level)
            c->level = d->recs[i].level;
    if (c->level < HQ_DIAG_WARNING && recs == 0)
        return false;
    if (module < 0 && d->verdict_summary)
        snprintf(c->summary, sizeof c->summary, "%s", d->verdict_summary);
    else if (worst >= 0 && findings > 1)
        snprintf(c->summary, sizeof c->summary, "%s (and %d more finding(s))",
                 d->findings[worst].message, findings - 1);
    else if (worst >= 0)
        snprintf(c->summary, sizeof c->summary, "%s", d->findings[worst].message);
    else
        snprintf(c->summary, sizeof c->summary, "%d recommended line(s)", recs);
    return true;
}

int hqi_diag_triage(const hq_diag_t *d, hqi_diag_cause_t *causes, int max)
{
    int n = 0;
    for (int m = -1; m < d->module_count; m++) {
        hqi_diag_cause_t c;
        if (!cause_of(d, m, &c))
            continue;
        /* insert in rank order, dropping what falls beyond max */
        int at = n;
        while (at > 0 && ranks_before(d, &c, &causes[at - 1]))
            at--;
        if (at >= max)
            continue;
        int last = n < max ? n : max - 1;
        for (int k = last; k > at; k--)
            causes[k] = causes[k - 1];
        causes[at] = c;
        if (n < max)
            n++;
    }
    return n;
}

void hqi_diag_report_triage(hq_diag_t *d)
{
    hqi_diag_cause_t causes[HQI_DIAG_TRIAGE_MAX];
    int n = hqi_diag_triage(d, causes, HQI_DIAG_TRIAGE_MAX);
    if (n == 0) {
        hqi_diag_event(d, HQ_DIAG_EVENT_TRIAGE, HQ_DIAG_INFO, NULL,
                       "Triage: no cause found (no warning, error or recommended line)");
        return;
    }
    hqi_diag_event(d, HQ_DIAG_EVENT_TRIAGE, HQ_DIAG_INFO, NULL,
                   "Triage: %d cause(s), most likely first (expected output-SQNR gain where an "
                   "inspector estimates it)",
                   n);
    for (int i = 0; i < n; i++) {
        const hqi_diag_cause_t *c = &causes[i];
        const char *name = hqi_diag_module_name(d, c->module);
        char gain[64] = "";
        if (!isnan(c->expected_gain_db))
            snprintf(gain, sizeof gain, " (expected gain %.1f dB)", c->expected_gain_db);
        hqi_diag_event(d, HQ_DIAG_EVENT_TRIAGE, c->level, name, "  %d. %s %s: %s%s", i + 1,
                       hqi_diag_level_word(c->level), name, c->summary, gain);
        int lines = 0;
        for (int k = 0; k < d->rec_count; k++) {
            if (d->recs[k].module != c->module || ++lines > HQI_DIAG_TRIAGE_LINES)
                continue;
            hqi_diag_event(d, HQ_DIAG_EVENT_TRIAGE, d->recs[k].level, name, "       fix: %s%s",
                           d->recs[k].line, d->recs[k].accepted ? "  (accepted)" : "");
        }
        if (lines > HQI_DIAG_TRIAGE_LINES)
            hqi_diag_event(d, HQ_DIAG_EVENT_TRIAGE, HQ_DIAG_INFO, name,
                           "       ... and %d more line(s) (--json has them all)",
                           lines - HQI_DIAG_TRIAGE_LINES);
    }
}
