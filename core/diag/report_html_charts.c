/* report_html_charts.c — the charts of `hq-diag --report` as inline SVG (no script, no network):
 * the per-layer SQNR chart, the histograms behind range findings and the per-channel moments.
 * Every chart has labelled axes; nothing is drawn outside its axes (values beyond an axis stop at
 * its end, marked, the true value in the tooltip). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "diag/report_html_internal.h"

void hqi_diag_html_escape(hqi_buf_t *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            hqi_buf_printf(b, "&lt;");
            break;
        case '>':
            hqi_buf_printf(b, "&gt;");
            break;
        case '&':
            hqi_buf_printf(b, "&amp;");
            break;
        case '"':
            hqi_buf_printf(b, "&quot;");
            break;
        default:
            hqi_buf_append(b, s, 1);
        }
    }
}

/* ---- per-layer SQNR ------------------------------------------------------------------------ */

/* The SQNR axis: at most this range, whatever the data (a bit-identical layer reports 200 dB). */
#define CHART_DB_TOP_MAX 80.0
#define CHART_DB_BOTTOM_MIN -20.0
/* The headline's floor and good level (headline.c, docs/diag.md "The headline"). */
#define CHART_DB_FLOOR 10.0
#define CHART_DB_GOOD 20.0

/* Layers whose SQNR says nothing about quantization: graph inputs and outputs (copies of what
 * feeds them) and constants. */
static bool trivial_layer(const hq_layer_t *l)
{
    return l->type == HQ_LAYER_INPUT || l->type == HQ_LAYER_OUTPUT ||
           l->type == HQ_LAYER_CONST_INPUT;
}

static bool charted(const hq_diag_t *d, int layer)
{
    const hq_layer_noise_t *n = &d->noise[layer].noise;
    return (n->has_cumulative || n->has_partial) && !trivial_layer(hq_graph_layer(d->graph, layer));
}

typedef struct chart_frame {
    double left, top, width, height; /* the plot area */
    double lo, hi;                   /* the dB axis */
} chart_frame_t;

static double frame_y(const chart_frame_t *f, double db)
{
    double v = db < f->lo ? f->lo : db > f->hi ? f->hi : db;
    return f->top + f->height * (f->hi - v) / (f->hi - f->lo);
}

/* A small triangle at (x, y) pointing up (beyond the top) or down (below the bottom). */
static void beyond_mark(hqi_buf_t *b, double x, double y, bool up, const char *colour)
{
    double tip = up ? y - 6 : y + 6;
    hqi_buf_printf(b, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fZ\" fill=\"%s\"/>", x - 3.5, y, x,
                   tip, x + 3.5, y, colour);
}

void hqi_diag_html_sqnr_chart(hqi_buf_t *b, const hq_diag_t *d)
{
    int count = 0;
    const int *topo = d->graph ? hq_graph_topo_order(d->graph, &count) : NULL;
    int shown = 0, left_out = 0, worst_partial = -1, worst_cumulative = -1;
    bool any_partial = false, any_cumulative = false;
    double top = CHART_DB_GOOD + 10, bottom = 0;
    for (int i = 0; d->noise && i < count; i++) {
        const hq_layer_noise_t *n = &d->noise[topo[i]].noise;
        if (!n->has_cumulative && !n->has_partial)
            continue;
        if (!charted(d, topo[i])) {
            left_out++;
            continue;
        }
        shown++;
        if (n->has_cumulative) {
            any_cumulative = true;
            top = fmax(top, n->cumulative_db);
            bottom = fmin(bottom, n->cumulative_db);
            if (worst_cumulative < 0 ||
                n->cumulative_db < d->noise[worst_cumulative].noise.cumulative_db)
                worst_cumulative = topo[i];
        }
        if (n->has_partial) {
            any_partial = true;
            top = fmax(top, n->partial_db);
            bottom = fmin(bottom, n->partial_db);
            if (worst_partial < 0 || n->partial_db < d->noise[worst_partial].noise.partial_db)
                worst_partial = topo[i];
        }
    }
    if (!shown) {
        hqi_buf_printf(b, "<p>No per-layer noise analysis in the archive and none computed in "
                          "this run (run <code>hq analyze-noise</code>).</p>\n");
        return;
    }
    chart_frame_t f = {.left = 56, .top = 34, .width = 960, .height = 240};
    f.hi = fmin(CHART_DB_TOP_MAX, ceil(top / 10) * 10);
    f.lo = fmax(CHART_DB_BOTTOM_MIN, floor(bottom / 10) * 10);
    double step = f.width / shown;
    int svg_w = (int)(f.left + f.width + 16), svg_h = (int)(f.top + f.height + 46);
    hqi_buf_printf(b,
                   "<svg class=\"chart\" id=\"sqnr-chart\" xmlns=\"http://www.w3.org/2000/svg\" "
                   "viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\" "
                   "aria-label=\"cumulative and partial SQNR per layer, in dB\">\n",
                   svg_w, svg_h, svg_w, svg_h);
    /* dB grid, ticks and axis title */
    for (double t = f.lo; t <= f.hi + 1e-9; t += 10) {
        double y = frame_y(&f, t);
        hqi_buf_printf(
            b,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>"
            "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%.0f</text>\n",
            f.left, y, f.left + f.width, y, t == 0 ? "#888" : "#e4e4e4", f.left - 4, y + 3, t);
    }
    hqi_buf_printf(b,
                   "<text class=\"axis\" transform=\"translate(14 %.1f) rotate(-90)\" "
                   "text-anchor=\"middle\">SQNR (dB)</text>\n",
                   f.top + f.height / 2);
    /* partial SQNR bars, the headline's levels and the cumulative line on top; a transparent
     * column per layer carries the tooltip */
    hqi_buf_printf(b, "<g class=\"partial\">");
    int at = 0;
    for (int i = 0; i < count; i++) {
        if (!d->noise[topo[i]].noise.has_cumulative && !d->noise[topo[i]].noise.has_partial)
            continue;
        if (!charted(d, topo[i]))
            continue;
        const hq_layer_noise_t *n = &d->noise[topo[i]].noise;
        double x = f.left + step * at++;
        if (!n->has_partial)
            continue;
        double base = frame_y(&f, f.lo > 0 ? f.lo : 0), y = frame_y(&f, n->partial_db);
        double bw = step > 3 ? step * 0.7 : step;
        hqi_buf_printf(b, "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\"/>",
                       x + (step - bw) / 2, fmin(y, base), bw, fabs(base - y) + 0.5);
        if (n->partial_db > f.hi || n->partial_db < f.lo)
            beyond_mark(b, x + step / 2, y, n->partial_db > f.hi, "#5d8aa8");
    }
    hqi_buf_printf(b, "</g>\n");
    /* the headline's levels, over the bars */
    static const struct {
        double db;
        const char *colour, *label;
    } levels[] = {{CHART_DB_FLOOR, "#c0392b", "10 dB: error floor"},
                  {CHART_DB_GOOD, "#e67e22", "20 dB: good"}};
    for (size_t k = 0; k < sizeof levels / sizeof levels[0]; k++) {
        if (levels[k].db < f.lo || levels[k].db > f.hi)
            continue;
        double y = frame_y(&f, levels[k].db);
        hqi_buf_printf(b,
                       "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                       "stroke-dasharray=\"5 4\"/><text x=\"%.1f\" y=\"%.1f\" class=\"tick\" "
                       "text-anchor=\"end\" style=\"fill:%s;paint-order:stroke;stroke:#fff;"
                       "stroke-width:3px\">%s</text>\n",
                       f.left, y, f.left + f.width, y, levels[k].colour, f.left + f.width - 2,
                       y - 3, levels[k].colour, levels[k].label);
    }
    if (any_cumulative) {
        hqi_buf_printf(b, "<polyline class=\"cumulative\" points=\"");
        at = 0;
        for (int i = 0; i < count; i++) {
            const hq_layer_noise_t *n = &d->noise[topo[i]].noise;
            if (!(n->has_cumulative || n->has_partial) || !charted(d, topo[i]))
                continue;
            double x = f.left + step * at++ + step / 2;
            if (n->has_cumulative)
                hqi_buf_printf(b, "%.2f,%.1f ", x, frame_y(&f, n->cumulative_db));
        }
        hqi_buf_printf(b, "\"/>\n");
        at = 0;
        for (int i = 0; i < count; i++) {
            const hq_layer_noise_t *n = &d->noise[topo[i]].noise;
            if (!(n->has_cumulative || n->has_partial) || !charted(d, topo[i]))
                continue;
            double x = f.left + step * at++ + step / 2;
            if (n->has_cumulative && (n->cumulative_db > f.hi || n->cumulative_db < f.lo))
                beyond_mark(b, x, frame_y(&f, n->cumulative_db), n->cumulative_db > f.hi,
                            "#1f4e79");
        }
    }
    at = 0;
    for (int i = 0; i < count; i++) {
        const hq_layer_noise_t *n = &d->noise[topo[i]].noise;
        if (!(n->has_cumulative || n->has_partial) || !charted(d, topo[i]))
            continue;
        double x = f.left + step * at++;
        hqi_buf_printf(b,
                       "<rect class=\"hover\" x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" "
                       "height=\"%.1f\"><title>",
                       x, f.top, step, f.height);
        hqi_diag_html_escape(b, hq_graph_layer(d->graph, topo[i])->bare_name);
        if (n->has_cumulative)
            hqi_buf_printf(b, ": cumulative %.2f dB", n->cumulative_db);
        if (n->has_partial)
            hqi_buf_printf(b, "%s partial %.2f dB", n->has_cumulative ? "," : ":", n->partial_db);
        hqi_buf_printf(b, "</title></rect>");
    }
    hqi_buf_printf(b, "\n");
    /* the layer axis: positions every so often, and the axis title */
    int every = shown <= 20 ? 1 : shown <= 50 ? 5 : shown <= 120 ? 10 : shown <= 300 ? 25 : 50;
    double axis_y = f.top + f.height;
    hqi_buf_printf(b,
                   "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\"/>"
                   "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\"/>\n",
                   f.left, axis_y, f.left + f.width, axis_y, f.left, f.top, f.left, axis_y);
    for (int k = 0; k < shown; k += every) {
        double x = f.left + step * k + step / 2;
        hqi_buf_printf(
            b,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\"/>"
            "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"middle\">%d</text>",
            x, axis_y, x, axis_y + 4, x, axis_y + 15, k + 1);
    }
    hqi_buf_printf(b,
                   "\n<text class=\"axis\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">layer, in "
                   "topological order (%d shown; hover for names and values)</text>\n",
                   f.left + f.width / 2, axis_y + 34, shown);
    /* the legend, above the plot */
    double lx = f.left;
    if (any_cumulative) {
        hqi_buf_printf(b,
                       "<line class=\"cumulative\" x1=\"%.1f\" y1=\"14\" x2=\"%.1f\" y2=\"14\"/>"
                       "<text x=\"%.1f\" y=\"18\" class=\"legend\">cumulative SQNR (every layer "
                       "quantized, measured at this layer)</text>",
                       lx, lx + 22, lx + 28);
        lx += 360;
    }
    if (any_partial)
        hqi_buf_printf(b,
                       "<rect class=\"partial-key\" x=\"%.1f\" y=\"8\" width=\"14\" height=\"12\"/>"
                       "<text x=\"%.1f\" y=\"18\" class=\"legend\">partial SQNR (only this layer "
                       "quantized, measured at the outputs)</text>",
                       lx, lx + 20);
    hqi_buf_printf(b, "\n</svg>\n<p class=\"note\">");
    if (worst_cumulative >= 0) {
        hqi_buf_printf(b, "Lowest cumulative SQNR: <code>");
        hqi_diag_html_escape(b, hq_graph_layer(d->graph, worst_cumulative)->bare_name);
        hqi_buf_printf(b, "</code> (%.2f dB). ", d->noise[worst_cumulative].noise.cumulative_db);
    }
    if (worst_partial >= 0) {
        hqi_buf_printf(b, "Lowest partial SQNR: <code>");
        hqi_diag_html_escape(b, hq_graph_layer(d->graph, worst_partial)->bare_name);
        hqi_buf_printf(b, "</code> (%.2f dB). ", d->noise[worst_partial].noise.partial_db);
    } else {
        hqi_buf_printf(b, "No partial SQNR (<code>hq analyze-noise --advanced</code> measures "
                          "it). ");
    }
    hqi_buf_printf(b,
                   "Axis %.0f to %.0f dB; a value beyond it is drawn at its end with an arrow "
                   "(bit-identical layers report 200 dB).",
                   f.lo, f.hi);
    if (left_out)
        hqi_buf_printf(b, " %d input, output and constant layer(s) left out.", left_out);
    hqi_buf_printf(b, "</p>\n");
}

/* ---- histograms ---------------------------------------------------------------------------- */

/* "1", "10", ..., "1k", "10k", "1M", "1G". */
static void count_label(char *buf, size_t size, int decade)
{
    static const char *const suffix[] = {"", "k", "M", "G", "T"};
    int group = decade / 3;
    if (group > 4)
        group = 4;
    snprintf(buf, size, "%.0f%s", pow(10, decade - 3 * group), suffix[group]);
}

void hqi_diag_html_histogram(hqi_buf_t *b, const hq_layer_stats_t *s, bool clip, double clip_lo,
                             double clip_hi)
{
    int64_t peak = 1;
    for (int i = 0; i < HQ_STATS_HISTOGRAM_BINS; i++)
        if (s->histogram[i] > peak)
            peak = s->histogram[i];
    const double left = 44, top = 10, width = 400, height = 130;
    const double lo = s->histogram_lo, hi = s->histogram_hi > lo ? s->histogram_hi : lo + 1;
    /* the count axis: log10(count) + 0.3, so that a bin of one value still shows */
    int decades = (int)ceil(log10((double)peak));
    if (decades < 1)
        decades = 1;
    double span = decades + 0.3;
#define HIST_Y(c) (top + height - height * (log10((double)(c)) + 0.3) / span)
#define HIST_X(v) (left + width * ((v)-lo) / (hi - lo))
    hqi_buf_printf(b,
                   "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
                   "height=\"%.0f\" role=\"img\" aria-label=\"histogram of the layer output, "
                   "log count\">\n",
                   left + width + 20, top + height + 40);
    if (clip) { /* what the suggested clip cuts off, shaded */
        double a = HIST_X(fmax(lo, fmin(hi, clip_lo))), z = HIST_X(fmax(lo, fmin(hi, clip_hi)));
        if (a > left)
            hqi_buf_printf(b,
                           "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                           "fill=\"#fbe3e0\"/>",
                           left, top, a - left, height);
        if (z < left + width)
            hqi_buf_printf(b,
                           "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                           "fill=\"#fbe3e0\"/>",
                           z, top, left + width - z, height);
    }
    for (int k = 0; k <= decades; k++) {
        char label[16];
        count_label(label, sizeof label, k);
        double y = HIST_Y(pow(10, k));
        hqi_buf_printf(b,
                       "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                       "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%s</text>",
                       left, y, left + width, y, left - 4, y + 3, label);
    }
    double bw = width / HQ_STATS_HISTOGRAM_BINS;
    hqi_buf_printf(b, "\n<g fill=\"#2e86c1\">");
    for (int i = 0; i < HQ_STATS_HISTOGRAM_BINS; i++) {
        if (!s->histogram[i])
            continue;
        double y = HIST_Y(s->histogram[i]);
        double from = lo + (hi - lo) * i / HQ_STATS_HISTOGRAM_BINS;
        hqi_buf_printf(b,
                       "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\"><title>[%.4g, "
                       "%.4g): %lld</title></rect>",
                       left + i * bw, y, bw > 1.5 ? bw - 0.5 : bw, top + height - y, from,
                       from + (hi - lo) / HQ_STATS_HISTOGRAM_BINS, (long long)s->histogram[i]);
    }
    hqi_buf_printf(b, "</g>\n");
    double axis_y = top + height;
    hqi_buf_printf(b,
                   "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\"/>"
                   "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\"/>\n",
                   left, axis_y, left + width, axis_y, left, top, left, axis_y);
    for (int k = 0; k <= 4; k++) {
        double v = lo + (hi - lo) * k / 4;
        hqi_buf_printf(b,
                       "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"middle\">%.3g"
                       "</text>",
                       HIST_X(v), axis_y + 13, v);
    }
    if (clip) {
        const double points[2] = {clip_lo, clip_hi};
        for (int k = 0; k < 2; k++) {
            if (points[k] < lo || points[k] > hi)
                continue;
            double x = HIST_X(points[k]);
            hqi_buf_printf(b,
                           "<line class=\"clip\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                           "stroke=\"#c0392b\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\">"
                           "<title>suggested clip %.4g</title></line>"
                           "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" style=\"fill:#c0392b\" "
                           "text-anchor=\"%s\">clip %.3g</text>",
                           x, top, x, axis_y, points[k], k ? x - 3 : x + 3, top + 9,
                           k ? "end" : "start", points[k]);
        }
    }
    hqi_buf_printf(b,
                   "\n<text class=\"axis\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">value "
                   "(float model)%s</text><text class=\"axis\" transform=\"translate(10 %.1f) "
                   "rotate(-90)\" text-anchor=\"middle\">count (log)</text>\n</svg>\n",
                   left + width / 2, axis_y + 30,
                   clip ? "; shaded: what the suggested clip cuts off" : "", top + height / 2);
#undef HIST_X
#undef HIST_Y
}

void hqi_diag_html_channels(hqi_buf_t *b, const hq_layer_stats_t *s)
{
    if (!s->channel_mean || !s->channel_std || s->channels <= 0)
        return;
    double top = 1e-12;
    for (int c = 0; c < s->channels; c++)
        top = fmax(top, fabs(s->channel_mean[c]) + s->channel_std[c]);
    int n = s->channels > 512 ? 512 : s->channels;
    int w = n > 128 ? 2 : 6, h = 60, left = 44;
    hqi_buf_printf(b,
                   "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
                   "height=\"%d\" role=\"img\" aria-label=\"per-channel mean and std\">"
                   "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#999\"/>"
                   "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"end\">0</text>"
                   "<text x=\"%d\" y=\"9\" class=\"tick\" text-anchor=\"end\">%.3g</text>"
                   "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"end\">%.3g</text>\n",
                   left + n * w + 10, 2 * h + 30, left, h + 5, left + n * w + 10, h + 5, left - 4,
                   h + 8, left - 4, top, left - 4, 2 * h + 8, -top);
    for (int c = 0; c < n; c++) {
        double m = s->channel_mean[c] / top * h, sd = s->channel_std[c] / top * h;
        hqi_buf_printf(b,
                       "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"#2e86c1\">"
                       "<title>channel %d: mean %g, std %g</title></rect>"
                       "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e67e22\"/>\n",
                       left + c * w, m >= 0 ? h + 5 - m : h + 5, w > 2 ? w - 1 : w, fabs(m), c,
                       s->channel_mean[c], s->channel_std[c], left + c * w + w / 2, h + 5 - m - sd,
                       left + c * w + w / 2, h + 5 - m + sd);
    }
    hqi_buf_printf(b,
                   "<text class=\"axis\" x=\"%d\" y=\"%d\">channel (%d%s): mean (bars) and mean "
                   "&#177; std (ticks)</text></svg>\n",
                   left, 2 * h + 26, s->channels, s->channels > n ? ", first 512 shown" : "");
}
