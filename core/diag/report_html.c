/* report_html.c — `hq-diag --report PATH.html`: one self-contained page (no network, no script):
 * the findings, the recommendations, a per-layer SQNR chart and the histograms behind range
 * findings as inline SVG, and the images the inspectors saved as base64 data URIs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag/diag_internal.h"
#include "util/util.h"

static void esc(hqi_buf_t *b, const char *s)
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

static void base64(hqi_buf_t *b, const uint8_t *p, size_t n)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        char out[4] = {t[v >> 18 & 63], t[v >> 12 & 63], i + 1 < n ? t[v >> 6 & 63] : '=',
                       i + 2 < n ? t[v & 63] : '='};
        hqi_buf_append(b, out, 4);
    }
}

static const char *layer_name(const hq_diag_t *d, int layer)
{
    const hq_layer_t *l = layer >= 0 ? hq_graph_layer(d->graph, layer) : NULL;
    return l ? l->bare_name : "";
}

/* Bars of per-layer SQNR (cumulative, and partial where known), in topological order. */
static void sqnr_chart(hqi_buf_t *b, const hq_diag_t *d)
{
    int count = 0;
    const int *topo = hq_graph_topo_order(d->graph, &count);
    int shown = 0;
    double top = 10;
    for (int i = 0; d->noise && i < count; i++) {
        const hq_layer_noise_t *n = &d->noise[topo[i]].noise;
        if (!n->has_cumulative && !n->has_partial)
            continue;
        shown++;
        if (n->has_cumulative && n->cumulative_db > top)
            top = n->cumulative_db;
        if (n->has_partial && n->partial_db > top)
            top = n->partial_db;
    }
    hqi_buf_printf(b, "<h2>Per-layer SQNR</h2>\n");
    if (!shown) {
        hqi_buf_printf(b, "<p>No noise analysis in the archive and none computed in this run "
                          "(run <code>hq analyze-noise</code>).</p>\n");
        return;
    }
    if (top > 80)
        top = 80;
    int bar = 14, w = 720, left = 160, height = shown * (bar + 4) + 30;
    hqi_buf_printf(b,
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                   "role=\"img\" aria-label=\"per-layer SQNR in dB\">\n",
                   w + left + 60, height);
    int y = 20;
    for (int t = 0; t <= (int)top; t += 10) {
        double x = left + w * t / top;
        hqi_buf_printf(
            b,
            "<line x1=\"%.1f\" y1=\"12\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>"
            "<text x=\"%.1f\" y=\"10\" font-size=\"9\" text-anchor=\"middle\">%d dB</text>\n",
            x, x, height, x, t);
    }
    for (int i = 0; i < count; i++) {
        const hq_layer_noise_t *n = &d->noise[topo[i]].noise;
        if (!n->has_cumulative && !n->has_partial)
            continue;
        hqi_buf_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">", left - 4,
                       y + bar - 3);
        esc(b, layer_name(d, topo[i]));
        hqi_buf_printf(b, "</text>");
        double v = n->has_partial ? n->partial_db : n->cumulative_db;
        double len = v <= 0 ? 1 : (v > top ? top : v) / top * w;
        const char *colour = v <= 10 ? "#c0392b" : v <= 20 ? "#e67e22" : "#2e86c1";
        hqi_buf_printf(b,
                       "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\">"
                       "<title>%.2f dB (%s)</title></rect>"
                       "<text x=\"%.1f\" y=\"%d\" font-size=\"10\">%.1f</text>\n",
                       left, y, len, bar, colour, v, n->has_partial ? "partial" : "cumulative",
                       left + len + 3, y + bar - 3, v);
        y += bar + 4;
    }
    hqi_buf_printf(b,
                   "</svg>\n<p class=\"note\">Bars: partial SQNR (only this layer quantized) "
                   "where known, else cumulative SQNR. Red &le; 10 dB, orange &le; 20 dB.</p>\n");
}

static void histogram_svg(hqi_buf_t *b, const hq_layer_stats_t *s)
{
    int64_t peak = 1;
    for (int i = 0; i < HQ_STATS_HISTOGRAM_BINS; i++)
        if (s->histogram[i] > peak)
            peak = s->histogram[i];
    int w = 4, h = 120;
    hqi_buf_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\">\n",
                   HQ_STATS_HISTOGRAM_BINS * w + 20, h + 30);
    double lp = log1p((double)peak);
    for (int i = 0; i < HQ_STATS_HISTOGRAM_BINS; i++) {
        if (!s->histogram[i])
            continue;
        double bh = log1p((double)s->histogram[i]) / lp * h;
        hqi_buf_printf(b,
                       "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"#2e86c1\">"
                       "<title>%lld</title></rect>\n",
                       10 + i * w, h - bh, w - 1, bh, (long long)s->histogram[i]);
    }
    hqi_buf_printf(b,
                   "<text x=\"10\" y=\"%d\" font-size=\"10\">%g</text>"
                   "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"end\">%g</text>"
                   "</svg>\n",
                   h + 14, s->histogram_lo, 10 + HQ_STATS_HISTOGRAM_BINS * w, h + 14,
                   s->histogram_hi);
}

/* Per-channel means (bars) and stds (ticks) of a layer output, around a zero line. */
static void channels_svg(hqi_buf_t *b, const hq_layer_stats_t *s)
{
    if (!s->channel_mean || !s->channel_std || s->channels <= 0)
        return;
    double top = 1e-12;
    for (int c = 0; c < s->channels; c++) {
        top = fmax(top, fabs(s->channel_mean[c]) + s->channel_std[c]);
    }
    int n = s->channels > 512 ? 512 : s->channels;
    int w = n > 128 ? 2 : 6, h = 60;
    hqi_buf_printf(b,
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\">"
                   "<line x1=\"0\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#999\"/>\n",
                   n * w + 20, 2 * h + 20, h + 5, n * w + 20, h + 5);
    for (int c = 0; c < n; c++) {
        double m = s->channel_mean[c] / top * h, sd = s->channel_std[c] / top * h;
        hqi_buf_printf(b,
                       "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"#2e86c1\">"
                       "<title>channel %d: mean %g, std %g</title></rect>"
                       "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e67e22\"/>\n",
                       10 + c * w, m >= 0 ? h + 5 - m : h + 5, w > 2 ? w - 1 : w, fabs(m), c,
                       s->channel_mean[c], s->channel_std[c], 10 + c * w + w / 2, h + 5 - m - sd,
                       10 + c * w + w / 2, h + 5 - m + sd);
    }
    hqi_buf_printf(b, "</svg>\n");
}

static const hq_layer_stats_t *float_stats(const hq_diag_t *d, int layer)
{
    const hqi_diag_stats_t *set = &d->stats[HQ_STATS_FLOAT];
    if (!set->ran || layer < 0 || layer >= hq_graph_layer_count(d->graph))
        return NULL;
    return &set->stats[set->first[layer]];
}

static void embed_image(hqi_buf_t *b, const hq_diag_t *d, const hqi_diag_file_t *f)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", d->output_dir, f->name);
    void *bytes = NULL;
    size_t len = 0;
    if (hqi_read_file(path, (size_t)64 << 20, &bytes, &len, NULL) != HQ_OK)
        return;
    const char *dot = strrchr(f->name, '.');
    const char *mime = dot && !strcmp(dot, ".png") ? "image/png" : "image/jpeg";
    hqi_buf_printf(b, "<figure><img alt=\"");
    esc(b, f->name);
    hqi_buf_printf(b, "\" src=\"data:%s;base64,", mime);
    base64(b, bytes, len);
    hqi_buf_printf(b, "\"><figcaption>");
    esc(b, hqi_diag_module_name(d, f->module));
    hqi_buf_printf(b, ": ");
    esc(b, f->caption ? f->caption : f->name);
    hqi_buf_printf(b, "</figcaption></figure>\n");
    free(bytes);
}

hq_status_t hq_diag_write_html(const hq_diag_t *d, const char *path, hq_error_t *err)
{
    if (!d->archive)
        return hqi_error(err, HQ_ERR_STATE, "hq-diag: no model opened");
    hqi_buf_t b = {0};
    const char *net = hq_archive_net_name(d->archive);
    hqi_buf_printf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                       "<title>hq-diag: ");
    esc(&b, net);
    hqi_buf_printf(&b,
                   "</title>\n<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;"
                   "color:#222}table{border-collapse:collapse;width:100%%}td,th{border:1px solid "
                   "#ccc;padding:4px 6px;text-align:left;vertical-align:top}.error{color:#c0392b;"
                   "font-weight:bold}.warning{color:#b9770e;font-weight:bold}.info{color:#2e86c1}"
                   "code{background:#f4f4f4;padding:1px 3px}.note{color:#666;font-size:90%%}"
                   "figure{display:inline-block;margin:1em}</style></head><body>\n");
    hqi_buf_printf(&b, "<h1>hq-diag report: ");
    esc(&b, net);
    hqi_buf_printf(&b, "</h1>\n<p>Model <code>");
    esc(&b, d->model_path);
    hqi_buf_printf(&b, "</code> (%s, %s), dataset <code>",
                   hq_model_state_name(hq_archive_state(d->archive)), d->hw_arch ? d->hw_arch : "");
    esc(&b, d->dataset ? d->dataset_path : "none");
    hqi_buf_printf(&b, "</code>, %lld samples. hq %s.</p>\n", (long long)d->samples, hq_version());
    hqi_buf_printf(&b,
                   "<p><span class=\"error\">%d error(s)</span>, <span class=\"warning\">%d "
                   "warning(s)</span>, <span class=\"info\">%d info</span>; %d of %d "
                   "recommendation(s) accepted.</p>\n",
                   hq_diag_finding_count(d, HQ_DIAG_ERROR),
                   hq_diag_finding_count(d, HQ_DIAG_WARNING),
                   hq_diag_finding_count(d, HQ_DIAG_INFO), hq_diag_accepted_count(d), d->rec_count);

    hqi_buf_printf(&b, "<h2>Inspectors</h2>\n<table><tr><th>inspector</th><th>status</th></tr>\n");
    for (int i = 0; i < d->order_count; i++) {
        int m = d->order[i];
        hqi_buf_printf(&b, "<tr><td>");
        esc(&b, d->modules[m].slots.name);
        hqi_buf_printf(&b, "</td><td>");
        if (d->failed && d->failed[m])
            hqi_buf_printf(&b, "failed");
        else if (d->skipped && d->skipped[m]) {
            hqi_buf_printf(&b, "skipped: ");
            esc(&b, d->skipped[m]);
        } else
            hqi_buf_printf(&b, d->ran ? "ran" : "not run");
        hqi_buf_printf(&b, "</td></tr>\n");
    }
    hqi_buf_printf(&b, "</table>\n<h2>Findings</h2>\n");
    if (!d->finding_count)
        hqi_buf_printf(&b, "<p>No finding.</p>\n");
    else
        hqi_buf_printf(&b, "<table><tr><th>level</th><th>inspector</th><th>layer</th>"
                           "<th>message</th></tr>\n");
    for (int i = 0; i < d->finding_count; i++) {
        const hqi_diag_finding_t *f = &d->findings[i];
        const char *lv = hqi_diag_level_word(f->level);
        hqi_buf_printf(&b, "<tr><td class=\"%s\">%s</td><td>", lv, lv);
        esc(&b, hqi_diag_module_name(d, f->module));
        hqi_buf_printf(&b, "</td><td>");
        esc(&b, layer_name(d, f->layer));
        hqi_buf_printf(&b, "</td><td>");
        esc(&b, f->message);
        const hq_layer_stats_t *s =
            f->flags & HQ_DIAG_SHOW_HISTOGRAM ? float_stats(d, f->layer) : NULL;
        if (s) {
            hqi_buf_printf(&b, "<br>");
            histogram_svg(&b, s);
        }
        s = f->flags & HQ_DIAG_SHOW_CHANNELS ? float_stats(d, f->layer) : NULL;
        if (s) {
            hqi_buf_printf(&b, "<br>");
            channels_svg(&b, s);
        }
        hqi_buf_printf(&b, "</td></tr>\n");
    }
    if (d->finding_count)
        hqi_buf_printf(&b, "</table>\n");

    hqi_buf_printf(&b, "<h2>Recommendations</h2>\n");
    if (!d->rec_count)
        hqi_buf_printf(&b, "<p>None.</p>\n");
    else
        hqi_buf_printf(&b, "<table><tr><th>accepted</th><th>inspector</th><th>line</th>"
                           "<th>reason</th></tr>\n");
    for (int i = 0; i < d->rec_count; i++) {
        const hqi_diag_rec_t *r = &d->recs[i];
        hqi_buf_printf(&b, "<tr><td>%s</td><td>", r->accepted ? "yes" : "no");
        esc(&b, hqi_diag_module_name(d, r->module));
        hqi_buf_printf(&b, "</td><td><code>");
        esc(&b, r->line);
        hqi_buf_printf(&b, "</code></td><td>");
        esc(&b, r->reason);
        hqi_buf_printf(&b, "</td></tr>\n");
    }
    if (d->rec_count)
        hqi_buf_printf(&b, "</table>\n");

    hqi_diag_verify_html(d, &b);
    sqnr_chart(&b, d);
    bool images = false;
    for (int i = 0; i < d->file_count; i++)
        if (d->files[i].image) {
            if (!images)
                hqi_buf_printf(&b, "<h2>Images</h2>\n");
            images = true;
            embed_image(&b, d, &d->files[i]);
        }
    hqi_buf_printf(&b, "</body></html>\n");
    if (b.failed) {
        hqi_buf_free(&b);
        return hqi_nomem(err, path);
    }
    hq_status_t st = hqi_write_file_atomic(path, b.data, b.len, err);
    hqi_buf_free(&b);
    return st;
}
