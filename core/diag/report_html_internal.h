/* report_html_internal.h — what the two halves of `hq-diag --report` share: the page
 * (report_html.c: summary, table of contents, per-inspector sections) and its charts
 * (report_html_charts.c: inline SVG, no script). Private to core/diag/. Prefix hqi_diag_html_. */
#ifndef HQI_DIAG_REPORT_HTML_INTERNAL_H
#define HQI_DIAG_REPORT_HTML_INTERNAL_H

#include <stdbool.h>

#include "diag/diag_internal.h"
#include "util/util.h"

/* Appends `s` with <, >, & and " escaped (NULL appends nothing). */
void hqi_diag_html_escape(hqi_buf_t *b, const char *s);

/* The one per-layer SQNR chart: cumulative SQNR as a line and partial SQNR as bars, per layer in
 * topological order, with axes, a legend and the 10 and 20 dB levels of the headline. Input,
 * output and const_input layers are left out (their SQNR says nothing about quantization);
 * values beyond the axis are drawn at its end with an arrow, the true value in the tooltip.
 * Without noise data, one paragraph saying how to get it. */
void hqi_diag_html_sqnr_chart(hqi_buf_t *b, const hq_diag_t *d);

/* The histogram of one layer output: value axis, a count axis on a log scale (a clipping
 * decision is about the few values in the tails), and, when `clip` is true, the suggested clip
 * points clip_lo and clip_hi marked. */
void hqi_diag_html_histogram(hqi_buf_t *b, const hq_layer_stats_t *s, bool clip, double clip_lo,
                             double clip_hi);

/* Per-channel means (bars) and stds (ticks) of a layer output, around a zero line. */
void hqi_diag_html_channels(hqi_buf_t *b, const hq_layer_stats_t *s);

#endif
