/* report_html.c — `hq-diag --report PATH.html`: one self-contained page (no network) laid out
 * for a person: the summary first (the verdict, the output SQNR per output and stage, the
 * verified fixes, the ranked triage with its fix lines), a table of contents, the per-layer SQNR
 * chart, then one section per inspector, collapsed (<details>), holding its findings with the
 * histograms and channel charts behind them, its recommended lines and its images (base64 data
 * URIs). The charts are inline SVG (report_html_charts.c); a short inline script expands and
 * collapses the sections and records on the root element that the page rendered without a
 * script error and where the summary sits (tests/e2e/report_browser.sh reads it). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag/report_html_internal.h"

/* Histograms drawn per inspector (each one is ~10 kB of SVG; the rest are in --json). */
#define HTML_HISTOGRAMS_PER_INSPECTOR 24
/* What sqnr_db reports for bit-identical outputs (stats.c). */
#define HTML_SQNR_IDENTICAL_DB 200.0

#define esc hqi_diag_html_escape

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

static const hq_layer_stats_t *float_stats(const hq_diag_t *d, int layer)
{
    const hqi_diag_stats_t *set = &d->stats[HQ_STATS_FLOAT];
    if (!set->ran || layer < 0 || layer >= hq_graph_layer_count(d->graph))
        return NULL;
    return &set->stats[set->first[layer]];
}

/* The id of a module's section ("inspector-3"; the host's is "inspector-host"). */
static void section_id(hqi_buf_t *b, int module)
{
    if (module < 0)
        hqi_buf_printf(b, "inspector-host");
    else
        hqi_buf_printf(b, "inspector-%d", module);
}

static const char *module_status(const hq_diag_t *d, int m)
{
    if (d->failed && d->failed[m])
        return "failed";
    if (d->skipped && d->skipped[m])
        return "skipped";
    return d->ran ? "ran" : "not run";
}

/* ---- the summary --------------------------------------------------------------------------- */

static const char *db_class(double db)
{
    return hqi_diag_level_word(hqi_diag_output_level(db, NAN));
}

static void db_cell(hqi_buf_t *b, bool measured, double db)
{
    if (!measured)
        hqi_buf_printf(b, "<td class=\"num\">&mdash;</td>");
    else if (db >= HTML_SQNR_IDENTICAL_DB)
        hqi_buf_printf(b, "<td class=\"num info\">identical</td>");
    else
        hqi_buf_printf(b, "<td class=\"num %s\">%.2f</td>", db_class(db), db);
}

/* An output's cell at a stage: its SQNR and, for an output judged by its decisions (a sigmoid or
 * softmax output), the agreement, which then sets the cell's level as it sets the verdict's. */
static void stage_cell(hqi_buf_t *b, bool measured, double db, double pct)
{
    if (!measured || !isfinite(pct) || db >= HTML_SQNR_IDENTICAL_DB) {
        db_cell(b, measured, db);
        return;
    }
    hqi_buf_printf(b, "<td class=\"num %s\">%.2f (%.2f%% agree)</td>",
                   hqi_diag_level_word(hqi_diag_output_level(db, pct)), db, pct);
}

/* The headline: the verdict and the output SQNR per output and stage (headline.c measures them;
 * the same figures as --json's output_sqnr_db and verdict). */
static void headline(hqi_buf_t *b, const hq_diag_t *d)
{
    int count = 0;
    const int *outputs = hq_graph_outputs(d->graph, &count);
    bool quant = d->output_sqnr_ran && d->output_count == count;
    bool native = d->native_sqnr_ran && d->output_count == count;
    bool reference = hqi_diag_reference_ran(d);
    if (d->verdict_made) {
        const char *level = hqi_diag_level_word(d->verdict_level);
        hqi_buf_printf(b, "<p id=\"verdict\" class=\"verdict %s\"><b>Verdict (%s):</b> ", level,
                       level);
        esc(b, d->verdict_summary);
        hqi_buf_printf(b, "</p>\n");
    }
    if (!quant && !native && !reference) {
        hqi_buf_printf(b, "<p id=\"headline\" class=\"verdict\">Output SQNR not measured: ");
        if (hq_archive_state(d->archive) < HQ_STATE_QUANTIZED)
            hqi_buf_printf(b, "the archive is not quantized (a pre-quantization run; "
                              "<code>hq optimize</code> quantizes it).");
        else if (!d->dataset)
            hqi_buf_printf(b, "no dataset given (<code>-d DATASET</code>).");
        else
            esc(b, d->stats[HQ_STATS_QUANTIZED].why ? d->stats[HQ_STATS_QUANTIZED].why
                                                    : "the statistics pass did not run.");
        hqi_buf_printf(b, "</p>\n");
        return;
    }
    bool fp_optimized = hq_archive_has_params(d->archive, HQ_PARAMS_FP_OPTIMIZED);
    hqi_buf_printf(b,
                   "<table id=\"headline\" class=\"headline\"><caption>Output SQNR (dB) on "
                   "%lld sample(s): below 10 error, 10 to 20 warning</caption>"
                   "<tr><th>output (layer feeding it)</th>",
                   (long long)d->samples);
    if (reference)
        hqi_buf_printf(b, "<th class=\"num\">native vs reference</th>");
    if (native)
        hqi_buf_printf(b, "<th class=\"num\">fp_optimized vs native</th>");
    if (quant)
        hqi_buf_printf(b, "<th class=\"num\">quantized vs %s</th>",
                       fp_optimized ? "fp_optimized" : "native");
    hqi_buf_printf(b, "</tr>\n");
    for (int k = 0; k < count; k++) {
        const hq_layer_t *out = hq_graph_layer(d->graph, outputs[k]);
        hqi_buf_printf(b, "<tr><td><code>");
        esc(b, out->bare_name);
        hqi_buf_printf(b, "</code>");
        if (out->input_count == 1) {
            hqi_buf_printf(b, " (");
            esc(b, layer_name(d, out->inputs[0]));
            hqi_buf_printf(b, ")");
        }
        hqi_buf_printf(b, "</td>");
        if (reference)
            db_cell(b, true, hqi_diag_reference_sqnr(d, k));
        if (native)
            stage_cell(b, true, hqi_diag_native_sqnr(d, k), hqi_diag_native_agreement(d, k));
        if (quant)
            stage_cell(b, true, hqi_diag_output_sqnr(d, k), hqi_diag_output_agreement(d, k));
        hqi_buf_printf(b, "</tr>\n");
    }
    hqi_buf_printf(b, "</table>\n");
}

/* Verified fixes: the output SQNR measured after re-quantizing with the accepted lines
 * (--verify's table, verify_report.c); without --verify, one line saying the gains are
 * estimates. */
static void verified_fixes(hqi_buf_t *b, const hq_diag_t *d)
{
    hqi_buf_t table = {0};
    hqi_diag_verify_html(d, &table);
    if (table.len > 0) {
        hqi_buf_printf(b, "<div id=\"verified-fixes\">\n");
        hqi_buf_append(b, table.data, table.len);
        hqi_buf_printf(b, "</div>\n");
    } else {
        hqi_buf_printf(b, "<p id=\"verified-fixes\" class=\"note\"><b>Verified fixes:</b> not "
                          "measured in this run (<code>--verify</code> measures them); the "
                          "triage's gains are the inspectors' estimates.</p>\n");
    }
    b->failed |= table.failed;
    hqi_buf_free(&table);
}

static void triage(hqi_buf_t *b, const hq_diag_t *d)
{
    hqi_buf_printf(b, "<h3 id=\"triage\">Triage: the causes, most likely first</h3>\n");
    hqi_diag_cause_t causes[HQI_DIAG_TRIAGE_MAX];
    int n = d->ran ? hqi_diag_triage(d, causes, HQI_DIAG_TRIAGE_MAX) : 0;
    if (n == 0) {
        hqi_buf_printf(b, "<p>No cause found (no warning, error or recommended line).</p>\n");
        return;
    }
    hqi_buf_printf(b, "<ol class=\"triage\">\n");
    for (int i = 0; i < n; i++) {
        const hqi_diag_cause_t *c = &causes[i];
        const char *level = hqi_diag_level_word(c->level);
        hqi_buf_printf(b, "<li><span class=\"%s\">%s</span> <a href=\"#", level, level);
        section_id(b, c->module);
        hqi_buf_printf(b, "\">");
        esc(b, hqi_diag_module_name(d, c->module));
        hqi_buf_printf(b, "</a>: ");
        esc(b, c->summary);
        if (!isnan(c->expected_gain_db))
            hqi_buf_printf(b, " <span class=\"gain\">(expected gain %.1f dB)</span>",
                           c->expected_gain_db);
        double measured = hqi_diag_measured_gain(d, c->module);
        if (!isnan(measured))
            hqi_buf_printf(b, " <span class=\"gain\"><b>(measured gain %+.2f dB)</b></span>",
                           measured);
        bool lines = false;
        for (int k = 0; k < d->rec_count; k++) {
            const hqi_diag_rec_t *r = &d->recs[k];
            if (r->module != c->module)
                continue;
            hqi_buf_printf(b, "%s<li><code>", lines ? "" : "<ul class=\"lines\">");
            esc(b, r->line);
            hqi_buf_printf(b, "</code>%s</li>", r->accepted ? " <i>accepted</i>" : "");
            lines = true;
        }
        hqi_buf_printf(b, "%s</li>\n", lines ? "</ul>" : "");
    }
    hqi_buf_printf(b, "</ol>\n");
}

static void summary(hqi_buf_t *b, const hq_diag_t *d)
{
    hqi_buf_printf(b, "<section id=\"summary\">\n<h2>Summary</h2>\n");
    headline(b, d);
    hqi_buf_printf(b,
                   "<p id=\"counts\"><span class=\"error\">%d error(s)</span>, <span "
                   "class=\"warning\">%d warning(s)</span>, <span class=\"info\">%d info</span>; "
                   "%d of %d recommended line(s) accepted.</p>\n",
                   hq_diag_finding_count(d, HQ_DIAG_ERROR),
                   hq_diag_finding_count(d, HQ_DIAG_WARNING),
                   hq_diag_finding_count(d, HQ_DIAG_INFO), hq_diag_accepted_count(d), d->rec_count);
    triage(b, d);
    verified_fixes(b, d);
    hqi_buf_printf(b, "</section>\n");
}

/* ---- per-inspector sections ---------------------------------------------------------------- */

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
    hqi_buf_printf(b, "\"><figcaption><code>");
    esc(b, f->name);
    hqi_buf_printf(b, "</code>: ");
    esc(b, f->caption ? f->caption : f->name);
    hqi_buf_printf(b, "</figcaption></figure>\n");
    free(bytes);
}

/* The suggested clip points a finding names (numbers clip_low and clip_high, ClippingInspector's
 * recommendation), if any. */
static bool clip_points(const hqi_diag_finding_t *f, double *lo, double *hi)
{
    bool has_lo = false, has_hi = false;
    for (int k = 0; k < f->number_count; k++) {
        if (!strcmp(f->numbers[k].name, "clip_low")) {
            *lo = f->numbers[k].value;
            has_lo = true;
        } else if (!strcmp(f->numbers[k].name, "clip_high")) {
            *hi = f->numbers[k].value;
            has_hi = true;
        }
    }
    return has_lo && has_hi && isfinite(*lo) && isfinite(*hi);
}

/* Whether finding i is the one of its module whose histogram is drawn for its layer: the
 * first that names clip points, else the first of that layer (a layer can have a range finding
 * and a clipping finding; one histogram shows both). */
static bool draws_histogram(const hq_diag_t *d, int i)
{
    const hqi_diag_finding_t *f = &d->findings[i];
    if (!(f->flags & HQ_DIAG_SHOW_HISTOGRAM))
        return false;
    double lo, hi;
    bool clip = clip_points(f, &lo, &hi);
    for (int k = 0; k < d->finding_count; k++) {
        const hqi_diag_finding_t *g = &d->findings[k];
        if (k == i || g->module != f->module || g->layer != f->layer ||
            !(g->flags & HQ_DIAG_SHOW_HISTOGRAM))
            continue;
        bool g_clip = clip_points(g, &lo, &hi);
        if ((g_clip && !clip) || (g_clip == clip && k < i))
            return false;
    }
    return true;
}

static void findings_table(hqi_buf_t *b, const hq_diag_t *d, int module)
{
    int shown = 0, histograms = 0, skipped_charts = 0;
    for (int i = 0; i < d->finding_count; i++) {
        const hqi_diag_finding_t *f = &d->findings[i];
        bool mine =
            module < 0 ? f->module < 0 || f->module >= d->module_count : f->module == module;
        if (!mine)
            continue;
        if (!shown++)
            hqi_buf_printf(b, "<table><tr><th>level</th><th>layer</th><th>finding</th></tr>\n");
        const char *lv = hqi_diag_level_word(f->level);
        hqi_buf_printf(b, "<tr><td class=\"%s\">%s</td><td><code>", lv, lv);
        esc(b, layer_name(d, f->layer));
        hqi_buf_printf(b, "</code></td><td>");
        esc(b, f->message);
        const hq_layer_stats_t *s = draws_histogram(d, i) ? float_stats(d, f->layer) : NULL;
        if (s && histograms < HTML_HISTOGRAMS_PER_INSPECTOR) {
            double lo = 0, hi = 0;
            bool clip = clip_points(f, &lo, &hi);
            hqi_buf_printf(b, "<br>");
            hqi_diag_html_histogram(b, s, clip, lo, hi);
            histograms++;
        } else if (s) {
            skipped_charts++;
        }
        s = f->flags & HQ_DIAG_SHOW_CHANNELS ? float_stats(d, f->layer) : NULL;
        if (s) {
            hqi_buf_printf(b, "<br>");
            hqi_diag_html_channels(b, s);
        }
        hqi_buf_printf(b, "</td></tr>\n");
    }
    if (shown)
        hqi_buf_printf(b, "</table>\n");
    else
        hqi_buf_printf(b, "<p>No finding.</p>\n");
    if (skipped_charts)
        hqi_buf_printf(b,
                       "<p class=\"note\">Histograms of the first %d findings drawn; %d more "
                       "findings' statistics are in <code>--json</code>.</p>\n",
                       HTML_HISTOGRAMS_PER_INSPECTOR, skipped_charts);
}

static void recommendations_table(hqi_buf_t *b, const hq_diag_t *d, int module)
{
    bool any = false;
    for (int i = 0; i < d->rec_count; i++) {
        const hqi_diag_rec_t *r = &d->recs[i];
        if (r->module != module)
            continue;
        if (!any)
            hqi_buf_printf(b, "<h4>Recommended lines</h4>\n<table><tr><th>level</th><th>line"
                              "</th><th>reason</th><th>accepted</th></tr>\n");
        any = true;
        const char *lv = hqi_diag_level_word(r->level);
        hqi_buf_printf(b, "<tr><td class=\"%s\">%s</td><td><code>", lv, lv);
        esc(b, r->line);
        hqi_buf_printf(b, "</code></td><td>");
        esc(b, r->reason);
        hqi_buf_printf(b, "</td><td>%s</td></tr>\n", r->accepted ? "yes" : "no");
    }
    if (any)
        hqi_buf_printf(b, "</table>\n");
}

/* Findings of the module at each level, for its section's one-line summary. */
static void level_counts(const hq_diag_t *d, int module, int counts[3])
{
    counts[0] = counts[1] = counts[2] = 0;
    for (int i = 0; i < d->finding_count; i++) {
        const hqi_diag_finding_t *f = &d->findings[i];
        bool mine =
            module < 0 ? f->module < 0 || f->module >= d->module_count : f->module == module;
        if (mine && f->level >= HQ_DIAG_INFO && f->level <= HQ_DIAG_ERROR)
            counts[f->level]++;
    }
}

static void inspector_section(hqi_buf_t *b, const hq_diag_t *d, int module)
{
    int counts[3];
    level_counts(d, module, counts);
    int lines = 0;
    for (int i = 0; i < d->rec_count; i++)
        lines += d->recs[i].module == module;
    hqi_buf_printf(b, "<details class=\"inspector\" id=\"");
    section_id(b, module);
    hqi_buf_printf(b, "\"><summary><b>");
    esc(b, hqi_diag_module_name(d, module));
    hqi_buf_printf(b, "</b> &mdash; ");
    if (module >= 0) {
        hqi_buf_printf(b, "%s", module_status(d, module));
        if (d->skipped && d->skipped[module]) {
            hqi_buf_printf(b, " (");
            esc(b, d->skipped[module]);
            hqi_buf_printf(b, ")");
        }
        hqi_buf_printf(b, "; ");
    }
    hqi_buf_printf(b,
                   "<span class=\"%s\">%d error(s)</span>, <span class=\"%s\">%d "
                   "warning(s)</span>, %d info, %d recommended line(s)</summary>\n",
                   counts[HQ_DIAG_ERROR] ? "error" : "quiet", counts[HQ_DIAG_ERROR],
                   counts[HQ_DIAG_WARNING] ? "warning" : "quiet", counts[HQ_DIAG_WARNING],
                   counts[HQ_DIAG_INFO], lines);
    if (module >= 0 && d->modules[module].slots.description) {
        hqi_buf_printf(b, "<p class=\"note\">");
        esc(b, d->modules[module].slots.description);
        hqi_buf_printf(b, "</p>\n");
    }
    findings_table(b, d, module);
    recommendations_table(b, d, module);
    for (int i = 0; i < d->file_count; i++)
        if (d->files[i].image && d->files[i].module == module)
            embed_image(b, d, &d->files[i]);
    hqi_buf_printf(b, "</details>\n");
}

/* ---- the page ------------------------------------------------------------------------------ */

static const char page_style[] =
    "body{font-family:sans-serif;max-width:1100px;margin:1em auto;padding:0 1em;color:#222;"
    "line-height:1.35}h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.25em;margin:1em 0 .4em;"
    "border-bottom:1px solid #ddd}h3{font-size:1.05em;margin:.8em 0 .3em}"
    "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:3px 6px;"
    "text-align:left;vertical-align:top}table.headline{width:auto;margin:.3em 0}"
    "caption{text-align:left;color:#666;font-size:90%}.num{text-align:right}"
    ".error{color:#c0392b;font-weight:bold}.warning{color:#b9770e;font-weight:bold}"
    ".info{color:#2e86c1}.quiet{color:#666}code{background:#f4f4f4;padding:1px 3px}"
    ".note,.meta{color:#666;font-size:90%}.verdict{font-size:1.1em;margin:.3em 0}"
    "nav{font-size:90%;margin:.3em 0}nav a{margin-right:.6em;white-space:nowrap}"
    "nav a.group{margin-right:0}ol.triage li{margin:.3em 0}"
    "ul.lines{margin:.2em 0;padding-left:1.2em;list-style:none}.gain{color:#444}"
    "details.inspector{border:1px solid #ddd;margin:.4em 0;padding:.3em .6em}"
    "details.inspector>summary{cursor:pointer}figure{display:inline-block;margin:1em}"
    "svg.chart{max-width:100%;height:auto;font-family:sans-serif}"
    "svg .tick{font-size:10px;fill:#555}svg .axis{font-size:11px;fill:#333}"
    "svg .legend{font-size:11px;fill:#333}svg .partial rect,svg .partial-key{fill:#9ecae1}"
    "svg .cumulative{fill:none;stroke:#1f4e79;stroke-width:1.6}"
    "svg rect.hover{fill:transparent}svg rect.hover:hover{fill:rgba(0,0,0,.06)}";

/* First thing in <head>: counts script errors, so the page can say it rendered without one. */
static const char page_error_catcher[] =
    "<script>window.hqReportErrors=[];window.addEventListener('error',function(e){"
    "window.hqReportErrors.push(String(e.message));});</script>\n";

/* Last thing in <body>: the expand/collapse buttons; a link to a closed section opens it; the
 * root element records that the page rendered (data-rendered), the script errors seen
 * (data-script-errors) and where the summary's headline ends on the page, in CSS pixels
 * (data-headline-bottom), which the browser test compares with the first screen. */
static const char page_script[] =
    "<script>(function(){\n"
    "var sections=document.querySelectorAll('details.inspector');\n"
    "function all(open){for(var i=0;i<sections.length;i++)sections[i].open=open;}\n"
    "document.getElementById('expand-all').addEventListener('click',function(){all(true);});\n"
    "document.getElementById('collapse-all').addEventListener('click',function(){all(false);});\n"
    "function reveal(){var t=location.hash&&document.getElementById(location.hash.slice(1));\n"
    "if(t&&t.tagName==='DETAILS'){t.open=true;t.scrollIntoView();}}\n"
    "window.addEventListener('hashchange',reveal);reveal();\n"
    "var root=document.documentElement,h=document.getElementById('headline');\n"
    "root.setAttribute('data-headline-bottom',"
    "String(Math.round(h.getBoundingClientRect().bottom+window.scrollY)));\n"
    "root.setAttribute('data-script-errors',String(window.hqReportErrors.length));\n"
    "root.setAttribute('data-rendered','yes');\n"
    "})();</script>\n";

hq_status_t hq_diag_write_html(const hq_diag_t *d, const char *path, hq_error_t *err)
{
    if (!d->archive)
        return hqi_error(err, HQ_ERR_STATE, "hq-diag: no model opened");
    hqi_buf_t b = {0};
    const char *net = hq_archive_net_name(d->archive);
    hqi_buf_printf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                       "<meta name=\"viewport\" content=\"width=device-width\">\n");
    hqi_buf_printf(&b, "%s<title>hq-diag: ", page_error_catcher);
    esc(&b, net);
    hqi_buf_printf(&b, "</title>\n<style>%s</style></head><body>\n", page_style);
    hqi_buf_printf(&b, "<header><h1>hq-diag report: ");
    esc(&b, net);
    hqi_buf_printf(&b, "</h1>\n<p class=\"meta\">Model <code>");
    esc(&b, d->model_path);
    hqi_buf_printf(&b, "</code> (%s, %s), dataset <code>",
                   hq_model_state_name(hq_archive_state(d->archive)), d->hw_arch ? d->hw_arch : "");
    esc(&b, d->dataset ? d->dataset_path : "none");
    hqi_buf_printf(&b, "</code>, %lld sample(s). hq %s.</p>\n", (long long)d->samples,
                   hq_version());
    hqi_buf_printf(&b, "<nav id=\"contents\"><b>Contents:</b> <a href=\"#summary\">Summary</a> "
                       "<a href=\"#triage\">Triage</a> <a href=\"#sqnr-per-layer\">Per-layer "
                       "SQNR</a> <a class=\"group\" href=\"#inspectors\">Inspectors</a>:");
    for (int i = 0; i < d->order_count; i++) {
        hqi_buf_printf(&b, " <a href=\"#");
        section_id(&b, d->order[i]);
        hqi_buf_printf(&b, "\">");
        esc(&b, d->modules[d->order[i]].slots.name);
        hqi_buf_printf(&b, "</a>");
    }
    hqi_buf_printf(&b, "</nav></header>\n");

    summary(&b, d);

    hqi_buf_printf(&b, "<section id=\"sqnr-per-layer\">\n<h2>Per-layer SQNR</h2>\n");
    hqi_diag_html_sqnr_chart(&b, d);
    hqi_buf_printf(&b, "</section>\n");

    hqi_buf_printf(&b, "<section id=\"inspectors\">\n<h2>Inspectors</h2>\n<p><button "
                       "type=\"button\" id=\"expand-all\">Expand all</button> <button "
                       "type=\"button\" id=\"collapse-all\">Collapse all</button></p>\n");
    int host[3];
    level_counts(d, -1, host);
    if (host[0] + host[1] + host[2] > 0)
        inspector_section(&b, d, -1);
    for (int i = 0; i < d->order_count; i++)
        inspector_section(&b, d, d->order[i]);
    hqi_buf_printf(&b, "</section>\n%s</body></html>\n", page_script);
    if (b.failed) {
        hqi_buf_free(&b);
        return hqi_nomem(err, path);
    }
    hq_status_t st = hqi_write_file_atomic(path, b.data, b.len, err);
    hqi_buf_free(&b);
    return st;
}
