/* headline.c — what hq-diag says first: the output SQNR of every model output at each stage the
 * archive holds (the stage table: native against the framework's reference outputs when
 * --reference gave them, fp_optimized against native, quantized against fp_optimized),
 * measured on the diagnosis samples, and a verdict naming the outputs
 * and the stage that lose the accuracy. An output a sigmoid or a softmax produces is also judged
 * by its decision agreement (agreement.c) and gets the better of the two levels. The verdict is a
 * host finding, so an error verdict makes the exit status 1 like any error finding. Thresholds
 * and their reasons: docs/diag.md, "The headline" and "Decision outputs". */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag/diag_internal.h"
#include "util/util.h"

/* Below the floor an output is broken (error); from the floor to the good level it is degraded
 * (warning); at the good level or above, healthy (info). */
#define HQI_DIAG_SQNR_FLOOR_DB 10.0
#define HQI_DIAG_SQNR_GOOD_DB 20.0
/* The same two levels for the decision agreement (%) of a sigmoid or softmax output, which gets
 * the better of its two levels: broken only when its values (SQNR) and its decisions are both lost,
 * healthy when either is kept (docs/diag.md, "Decision outputs"). */
#define HQI_DIAG_AGREE_FLOOR_PCT 85.0
#define HQI_DIAG_AGREE_GOOD_PCT 95.0
/* What sqnr_db reports for bit-identical outputs (stats.c). */
#define HQI_DIAG_SQNR_IDENTICAL_DB 200.0

enum { STAGE_TRANSLATION, STAGE_FLOAT_OPT, STAGE_QUANT, STAGE_COUNT };

typedef struct stage {
    bool measured;
    const char *column; /* table header */
    const char *name;   /* what the verdict calls it */
} stage_t;

static hq_diag_level_t level_of(double db)
{
    return db < HQI_DIAG_SQNR_FLOOR_DB  ? HQ_DIAG_ERROR
           : db < HQI_DIAG_SQNR_GOOD_DB ? HQ_DIAG_WARNING
                                        : HQ_DIAG_INFO;
}

static hq_diag_level_t level_of_agreement(double pct)
{
    return pct < HQI_DIAG_AGREE_FLOOR_PCT  ? HQ_DIAG_ERROR
           : pct < HQI_DIAG_AGREE_GOOD_PCT ? HQ_DIAG_WARNING
                                           : HQ_DIAG_INFO;
}

static double stage_db(const hq_diag_t *d, int stage, int output)
{
    return stage == STAGE_QUANT         ? hqi_diag_output_sqnr(d, output)
           : stage == STAGE_TRANSLATION ? hqi_diag_reference_sqnr(d, output)
                                        : hqi_diag_native_sqnr(d, output);
}

/* The decision agreement (%) of an output at a stage, NaN where the output is judged by its SQNR
 * (and at the translation stage, whose reference outputs are compared by SQNR only). */
static double stage_agreement(const hq_diag_t *d, int stage, int output)
{
    return stage == STAGE_QUANT       ? hqi_diag_output_agreement(d, output)
           : stage == STAGE_FLOAT_OPT ? hqi_diag_native_agreement(d, output)
                                      : NAN;
}

hq_diag_level_t hqi_diag_output_level(double db, double pct)
{
    hq_diag_level_t by_sqnr = level_of(db);
    if (!isfinite(pct))
        return by_sqnr;
    hq_diag_level_t by_agreement = level_of_agreement(pct);
    return by_agreement < by_sqnr ? by_agreement : by_sqnr;
}

/* The level of an output at a stage (with its decision agreement where it has one). */
static hq_diag_level_t stage_level(const hq_diag_t *d, int stage, int output)
{
    return hqi_diag_output_level(stage_db(d, stage, output), stage_agreement(d, stage, output));
}

/* Appends printf-style text to buf (truncating at size). */
static void append(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t size, const char *fmt, ...)
{
    size_t at = strlen(buf);
    if (at + 1 >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + at, size - at, fmt, ap);
    va_end(ap);
}

/* "12.34" (with " dB" when `unit`), or "identical" for bit-identical outputs. */
static void format_db(char *buf, size_t size, double db, bool unit)
{
    if (db >= HQI_DIAG_SQNR_IDENTICAL_DB)
        snprintf(buf, size, "identical");
    else
        snprintf(buf, size, unit ? "%.2f dB" : "%.2f", db);
}

/* "output_layer2 (dense2)": the output layer and the layer that feeds it, which is the name the
 * user knows the head by. */
static void output_label(const hq_diag_t *d, int layer, char *buf, size_t size)
{
    const hq_layer_t *out = hq_graph_layer(d->graph, layer);
    if (out->input_count == 1)
        snprintf(buf, size, "%s (%s)", out->bare_name,
                 hq_graph_layer(d->graph, out->inputs[0])->bare_name);
    else
        snprintf(buf, size, "%s", out->bare_name);
}

/* The log's detail of a decision output's agreement at each stage: both sides of a sigmoid map
 * (how many elements the reference puts there and the share kept), and the plain share of
 * elements that agree, which docs/diag.md's measurements quote. */
static void log_agreement(hq_diag_t *d, int output, const char *label, const stage_t *stages)
{
    if (!d->decisions || d->decisions[output].kind == HQI_DECISION_NONE)
        return;
    for (int s = STAGE_FLOAT_OPT; s <= STAGE_QUANT; s++) {
        const hqi_diag_agreement_t *a = s == STAGE_QUANT ? d->output_agree : d->native_agree;
        if (!stages[s].measured || !a)
            continue;
        a += output;
        double total = a->total[0] + a->total[1], kept = a->kept[0] + a->kept[1];
        if (d->decisions[output].kind == HQI_DECISION_SOFTMAX)
            hqi_diag_event(d, HQ_DIAG_EVENT_LOG, HQ_DIAG_INFO, NULL,
                           "decision agreement of %s (softmax over %lld classes), %s: %.0f of "
                           "%.0f positions keep the class (%.2f%%)",
                           label, (long long)d->decisions[output].classes, stages[s].column,
                           kept, total, total > 0 ? 100.0 * kept / total : 0.0);
        else
            hqi_diag_event(d, HQ_DIAG_EVENT_LOG, HQ_DIAG_INFO, NULL,
                           "decision agreement of %s (sigmoid, threshold 0.5), %s: %.2f%%; below "
                           "0.5 in the reference: %.0f elements, %.2f%% kept; at or above: %.0f, "
                           "%.2f%% kept; all elements: %.2f%% agree",
                           label, stages[s].column, hqi_diag_agreement_pct(a), a->total[0],
                           a->total[0] > 0 ? 100.0 * a->kept[0] / a->total[0] : 0.0, a->total[1],
                           a->total[1] > 0 ? 100.0 * a->kept[1] / a->total[1] : 0.0,
                           total > 0 ? 100.0 * kept / total : 0.0);
    }
}

void hqi_diag_headline(hq_diag_t *d)
{
    char label[512];
    int count;
    const int *outputs = hq_graph_outputs(d->graph, &count);
    bool quantized = hq_archive_state(d->archive) >= HQ_STATE_QUANTIZED &&
                     hq_archive_has_params(d->archive, HQ_PARAMS_QUANTIZED);
    if (!quantized && !hqi_diag_reference_ran(d))
        return; /* the runner's pre-quantization line says what this run is */
    if (!d->dataset) {
        hqi_diag_event(d, HQ_DIAG_EVENT_MESSAGE, HQ_DIAG_INFO, NULL,
                       "Output SQNR not measured: no dataset given (use -d DATASET)");
        return;
    }
    bool fp_optimized = hq_archive_has_params(d->archive, HQ_PARAMS_FP_OPTIMIZED);
    stage_t stages[STAGE_COUNT] = {
        [STAGE_TRANSLATION] = {hqi_diag_reference_ran(d), "native vs reference",
                               "the translation"},
        [STAGE_FLOAT_OPT] = {d->native_sqnr_ran && d->output_count == count,
                             "fp_optimized vs native", "the float optimizations"},
        [STAGE_QUANT] = {d->output_sqnr_ran && d->output_count == count,
                         fp_optimized ? "quantized vs fp_optimized" : "quantized vs native",
                         "quantization"},
    };
    if (quantized && !stages[STAGE_QUANT].measured) {
        const char *why = d->stats[HQ_STATS_QUANTIZED].why;
        hqi_diag_event(d, HQ_DIAG_EVENT_MESSAGE, HQ_DIAG_WARNING, NULL,
                       "Output SQNR of the quantized model not measured: %s",
                       why ? why : "the statistics pass did not run");
    }
    if (!stages[STAGE_QUANT].measured && !stages[STAGE_FLOAT_OPT].measured &&
        !stages[STAGE_TRANSLATION].measured)
        return;

    /* the stage table: one row per output, one column per measured stage */
    int width = 14; /* room for the header's "Output SQNR (dB)" */
    for (int k = 0; k < count; k++) {
        output_label(d, outputs[k], label, sizeof label);
        int n = (int)strlen(label);
        width = n > width ? n : width;
    }
    char line[1024];
    snprintf(line, sizeof line, "%-*s", width + 2, "Output SQNR (dB)");
    for (int s = 0; s < STAGE_COUNT; s++)
        if (stages[s].measured)
            append(line, sizeof line, "  %26s", stages[s].column);
    append(line, sizeof line, "  (%lld samples)", (long long)d->samples);
    hqi_diag_event(d, HQ_DIAG_EVENT_MESSAGE, HQ_DIAG_INFO, NULL, "%s", line);

    hq_diag_level_t verdict = HQ_DIAG_INFO;
    hq_diag_level_t *levels = calloc((size_t)count + 1, sizeof *levels);
    int *worst_stage = calloc((size_t)count + 1, sizeof *worst_stage);
    if (!levels || !worst_stage) {
        free(levels);
        free(worst_stage);
        return;
    }
    int worst_output = 0;
    double worst_db = 1e300;
    for (int k = 0; k < count; k++) {
        output_label(d, outputs[k], label, sizeof label);
        snprintf(line, sizeof line, "  %-*s", width, label);
        double low = 1e300;
        for (int s = 0; s < STAGE_COUNT; s++) {
            if (!stages[s].measured)
                continue;
            double db = stage_db(d, s, k), pct = stage_agreement(d, s, k);
            hq_diag_level_t level = stage_level(d, s, k);
            char text[64];
            format_db(text, sizeof text, db, false);
            if (isfinite(pct))
                append(text, sizeof text, " (%.2f%% agree)", pct);
            append(line, sizeof line, "  %26s", text);
            /* the stage that judges the output worst: the higher level, then the lower SQNR */
            if (low > 1e299 || level > levels[k] || (level == levels[k] && db < low)) {
                low = db;
                levels[k] = level;
                worst_stage[k] = s;
            }
        }
        verdict = levels[k] > verdict ? levels[k] : verdict;
        /* the output the verdict's finding is on: the worst level, then the lowest SQNR */
        if (k == 0 || levels[k] > levels[worst_output] ||
            (levels[k] == levels[worst_output] && low < worst_db)) {
            worst_db = low;
            worst_output = k;
        }
        hqi_diag_event(d, HQ_DIAG_EVENT_MESSAGE, HQ_DIAG_INFO, NULL, "%s", line);
        log_agreement(d, k, label, stages);
    }

    /* the verdict: which outputs, at which stage */
    char summary[2048] = "";
    bool any_decision = false;
    for (int k = 0; k < count; k++)
        any_decision |= isfinite(stage_agreement(d, worst_stage[k], k));
    double worst_pct = stage_agreement(d, worst_stage[worst_output], worst_output);
    if (verdict == HQ_DIAG_INFO) {
        char text[64];
        format_db(text, sizeof text, worst_db, true);
        if (isfinite(worst_pct))
            append(text, sizeof text, ", %.2f%% decision agreement", worst_pct);
        output_label(d, outputs[worst_output], label, sizeof label);
        snprintf(summary, sizeof summary, "healthy: every output at %.0f dB or more",
                 HQI_DIAG_SQNR_GOOD_DB);
        if (any_decision)
            append(summary, sizeof summary, " or %.0f%% decision agreement or more",
                   HQI_DIAG_AGREE_GOOD_PCT);
        append(summary, sizeof summary, " (lowest: %s, %s in %s)", label, text,
               stages[worst_stage[worst_output]].name);
    } else {
        bool blamed[STAGE_COUNT] = {false};
        int stage_count = 0;
        for (int k = 0; k < count; k++)
            if (levels[k] == verdict && !blamed[worst_stage[k]]) {
                blamed[worst_stage[k]] = true;
                stage_count++;
            }
        /* "the translation", "a and b", "a, b and c", in pipeline order */
        int named = 0;
        for (int s = 0; s < STAGE_COUNT; s++) {
            if (!blamed[s])
                continue;
            const char *joint = named == 0 ? "" : named == stage_count - 1 ? " and " : ", ";
            append(summary, sizeof summary, "%s%s", joint, stages[s].name);
            named++;
        }
        append(summary, sizeof summary, " %s the model: ",
               verdict == HQ_DIAG_ERROR ? (stage_count > 1 ? "break" : "breaks")
                                        : (stage_count > 1 ? "degrade" : "degrades"));
        bool first = true, by_sqnr = false, by_agreement = false;
        for (int k = 0; k < count; k++) {
            if (levels[k] != verdict)
                continue;
            output_label(d, outputs[k], label, sizeof label);
            double pct = stage_agreement(d, worst_stage[k], k);
            if (isfinite(pct))
                append(summary, sizeof summary, "%soutput %s at %.2f dB, %.2f%% decision agreement",
                       first ? "" : ", ", label, stage_db(d, worst_stage[k], k), pct);
            else
                append(summary, sizeof summary, "%soutput %s at %.2f dB", first ? "" : ", ",
                       label, stage_db(d, worst_stage[k], k));
            by_agreement |= isfinite(pct);
            by_sqnr |= !isfinite(pct);
            if (stage_count > 1)
                append(summary, sizeof summary, " in %s", stages[worst_stage[k]].name);
            first = false;
        }
        /* a sigmoid or softmax output is below both floors (or, degraded, in one of the bands) */
        if (verdict == HQ_DIAG_ERROR)
            append(summary, sizeof summary, " (below the %.0f dB floor%s", HQI_DIAG_SQNR_FLOOR_DB,
                   !by_agreement ? ")"
                   : by_sqnr     ? "; the sigmoid or softmax outputs also below the "
                                   : " and the ");
        else
            append(summary, sizeof summary, " (%.0f-%.0f dB%s", HQI_DIAG_SQNR_FLOOR_DB,
                   HQI_DIAG_SQNR_GOOD_DB, by_agreement ? " or " : "");
        if (by_agreement && verdict == HQ_DIAG_ERROR)
            append(summary, sizeof summary, "%.0f%% decision-agreement floor)",
                   HQI_DIAG_AGREE_FLOOR_PCT);
        else if (by_agreement)
            append(summary, sizeof summary, "%.0f-%.0f%% decision agreement",
                   HQI_DIAG_AGREE_FLOOR_PCT, HQI_DIAG_AGREE_GOOD_PCT);
        if (verdict != HQ_DIAG_ERROR)
            append(summary, sizeof summary, ": expect a visible accuracy loss)");
        first = true;
        for (int k = 0; k < count; k++) {
            if (levels[k] == verdict)
                continue;
            char text[64];
            format_db(text, sizeof text, stage_db(d, worst_stage[k], k), true);
            double pct = stage_agreement(d, worst_stage[k], k);
            if (isfinite(pct))
                append(text, sizeof text, ", %.2f%% agreement", pct);
            output_label(d, outputs[k], label, sizeof label);
            append(summary, sizeof summary, "%s%s %s", first ? "; other outputs: " : ", ", label,
                   text);
            first = false;
        }
    }
    free(levels);
    free(worst_stage);
    /* a quantized model whose quantized outputs could not be measured is not called healthy */
    if (verdict == HQ_DIAG_INFO && quantized && !stages[STAGE_QUANT].measured)
        return;

    free(d->verdict_summary);
    d->verdict_summary = hqi_strdup(summary);
    d->verdict_level = verdict;
    d->verdict_made = d->verdict_summary != NULL;
    char message[sizeof summary + 16];
    snprintf(message, sizeof message, "Verdict: %s", summary);
    hq_diag_number_t numbers[2] = {{"output_sqnr_db", worst_db},
                                   {"decision_agreement_pct", worst_pct}};
    hqi_diag_add_finding(d, -1, verdict, outputs[worst_output], message, numbers,
                         isfinite(worst_pct) ? 2 : 1, 0);
}
