#!/usr/bin/env bash
# hq-diag --report's content, without a browser (tests/e2e/report_browser.sh renders it):
# the per-layer SQNR chart leaves out input, output and const_input layers and never draws
# outside its axes (a model with two constants whose noise analysis is edited to hold a
# bit-identical 200 dB and a collapsed -35 dB value: the axis stops at 80 and -20 dB, both
# marked with an arrow, the true values in the tooltips); on the bundled sample, the summary
# comes first, the inspector sections are collapsed, and ClippingInspector's histograms have a
# log count axis with the clip point of each finding marked; with --verify, the summary
# holds the verification table and the triage the measured gain; with --reference, the headline
# table has the translation stage.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
samples="$HQ_SOURCE_DIR/samples"
fixture="$HQ_SOURCE_DIR/tests/fixtures/onnx/patterns/constant_operands_with_batch_one.onnx"
fail=0
check() { # description, then a command that must succeed
  local what=$1; shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=1; fi
}

# conv1 -> concat with a constant, x constant: 8 layers, 2 of them const_input
"$HQ" parse "$fixture" -o const.har >/dev/null
/usr/bin/python3 -c "import numpy as np; np.random.seed(0); np.save('calib.npy', np.random.randn(16, 4, 5, 3).astype(np.float32))"
"$HQ" optimize const.har -d calib.npy -o const_q.har >/dev/null
"$HQ" analyze-noise const_q.har -d calib.npy --analyze-mode advanced -o const_noise.har >/dev/null
/usr/bin/python3 - <<'PY'
import io, tarfile
import numpy as np
src, out = tarfile.open("const_noise.har"), tarfile.open("const_edited.har", "w")
for m in src.getmembers():
    data = src.extractfile(m).read()
    if m.name.endswith(".q.npz"):
        z = dict(np.load(io.BytesIO(data)))
        net = "constant_operands_with_batch_one/"
        z[net + "conv1/layer_noise_analysis/partial_snr:0"][:] = 200.0
        z[net + "concat1/layer_noise_analysis/snr:0"][:] = -35.0
        z[net + "const_input1/layer_noise_analysis/snr:0"][:] = 200.0
        buf = io.BytesIO()
        np.savez(buf, **z)
        data = buf.getvalue()
        m.size = len(data)
    out.addfile(m, io.BytesIO(data))
out.close()
PY
"$HQ_DIAG" --no-interactive -d calib.npy --report const.html const_edited.har >const.txt 2>&1 </dev/null || [ $? -eq 1 ]
check "the chart leaves out input, output and const_input layers" /usr/bin/python3 - const.html <<'PY'
import re, sys
page = open(sys.argv[1]).read()
chart = page[page.index('id="sqnr-chart"'):page.index("</svg>", page.index('id="sqnr-chart"'))]
names = re.findall(r'<rect class="hover"[^>]*><title>([a-z_0-9]+):', chart)
assert sorted(names) == ["concat1", "conv1", "ew_mult1"], names  # in topological order
assert "(3 shown;" in chart and "5 input, output and constant layer(s) left out." in page
PY
check "  ... its axis stops at -20 and 80 dB, and nothing is drawn outside the plot" /usr/bin/python3 - const.html <<'PY'
import re, sys
page = open(sys.argv[1]).read()
start = page.index('id="sqnr-chart"')
chart = page[start:page.index("</svg>", start)]
assert "Axis -20 to 80 dB" in page, re.findall(r"Axis [-0-9]+ to [-0-9]+ dB", page)
ticks = [int(t) for t in re.findall(r'class="tick" text-anchor="end">(-?\d+)</text>', chart)]
assert ticks == list(range(-20, 81, 10)), ticks
top, bottom = 34.0, 34.0 + 240.0      # the plot area (report_html_charts.c)
ys = [float(y) for y in re.findall(r'<rect x="[-0-9.]+" y="([-0-9.]+)"', chart)]
ys += [float(y) + float(h) for y, h in re.findall(r'<rect x="[-0-9.]+" y="([-0-9.]+)" width="[0-9.]+" height="([0-9.]+)"', chart)]
ys += [float(p.split(",")[1]) for p in re.search(r'<polyline class="cumulative" points="([^"]*)"', chart).group(1).split()]
assert ys and all(top - 0.01 <= y <= bottom + 0.51 for y in ys), (min(ys), max(ys))
arrows = re.findall(r'<path d="M[-0-9.]+ ([-0-9.]+)L', chart)
assert sorted(float(y) for y in arrows) == [top, bottom], arrows  # 200 dB up top, -35 dB at the bottom
assert "conv1: cumulative" in chart and "partial 200.00 dB" in chart and "concat1: cumulative -35.00 dB" in chart
PY

# the bundled sample, quantized with its seeded mistake
"$HQ" parse "$samples/sample.onnx" -o sample.har >/dev/null
"$HQ" optimize sample.har -m "$samples/sample.alls" -d "$samples/sample_calib.npy" -o sample_q.har >/dev/null
"$HQ_DIAG" --no-interactive -d "$samples/sample_calib.npy" --report sample.html sample_q.har \
  >sample.txt 2>&1 </dev/null || [ $? -eq 1 ]
check "the sample's report: summary, contents and triage before the chart and the sections, all collapsed" \
  /usr/bin/python3 - sample.html <<'PY'
import sys
page = open(sys.argv[1]).read()
order = ['id="contents"', 'id="summary"', 'id="verdict"', 'id="headline"', 'id="triage"',
         'id="verified-fixes"', 'id="sqnr-chart"', '<details class="inspector"']
at = [page.find(k) for k in order]
assert all(a >= 0 for a in at) and at == sorted(at), dict(zip(order, at))
assert page.count('<details class="inspector"') == 12 and "<details open" not in page  # 11 + hq-diag's
for section in ("ClippingInspector", "NormInspector", "ImageInspector"):
    assert 'href="#inspector-' in page and section in page[page.index('id="contents"'):page.index('id="summary"')]
PY
check "  ... ClippingInspector's histograms: a log count axis and the suggested clip points marked" \
  /usr/bin/python3 - sample.html <<'PY'
import re, sys
page = open(sys.argv[1]).read()
clip = page[page.index("<b>ClippingInspector</b>"):]
clip = clip[:clip.index("</details>")]
ranges = re.findall(r"suggested manual range \[([-0-9.e+]+), ([-0-9.e+]+)\]", clip)
assert len(ranges) >= 2, ranges
marked = [float(v) for v in re.findall(r"<title>suggested clip ([-0-9.e+]+)</title>", clip)]
for lo, hi in ranges:  # each finding's upper clip point is marked on a histogram
    assert any(abs(m - float(hi)) <= 1e-3 * abs(float(hi)) for m in marked), (hi, marked)
assert clip.count("count (log)</text>") == clip.count('aria-label="histogram') >= 2
assert re.search(r'text-anchor="end">1k</text>', clip) and re.search(r'text-anchor="end">10k</text>', clip)
PY

# with --verify, its table is the summary's verified fixes and the triage shows the measured gain
/usr/bin/python3 -c "import numpy as np; np.save('held.npy', np.load('$samples/sample_calib.npy')[::-1][:32].copy())"
"$HQ_DIAG" --no-interactive -d "$samples/sample_calib.npy" --verify --verify-from sample.har \
  --verify-data held.npy --report verified.html sample_q.har >verified.txt 2>&1 </dev/null || [ $? -eq 1 ]
check "with --verify: the verification table in the summary, the measured gain in the triage" \
  /usr/bin/python3 - verified.html sample.html <<'PY'
import re, sys
page, plain = open(sys.argv[1]).read(), open(sys.argv[2]).read()
summary = page[page.index('id="summary"'):page.index("</section>", page.index('id="summary"'))]
assert '<div id="verified-fixes">' in summary and "Verified fixes</h3>" in summary
triage = summary[summary.index('id="triage"'):summary.index('id="verified-fixes"')]
gain = re.search(r"NormInspector</a>:.*?\(measured gain ([-+0-9.]+) dB\)", triage, re.S)
table = re.search(r"<td>all accepted</td>.*?>([-+0-9.]+)</td></tr>", summary, re.S)
assert gain and table and float(gain.group(1)) == float(table.group(1)), (gain, table)
assert "measured gain" not in plain and "not measured in this run" in plain
PY

# with --reference, the headline table has the translation stage too
"$HQ" emulate sample.har -d "$samples/sample_calib.npy" -o ref.npz -q
"$HQ_DIAG" --no-interactive -d "$samples/sample_calib.npy" --reference ref.npz --json ref.json \
  --report ref.html sample_q.har >ref.txt 2>&1 </dev/null || [ $? -eq 1 ]
check "with --reference: the headline table's stages are the console's, with the same figures" \
  /usr/bin/python3 - ref.html ref.json <<'PY'
import json, re, sys
page, d = open(sys.argv[1]).read(), json.load(open(sys.argv[2]))
table = page[page.index('<table id="headline"'):page.index("</table>", page.index('<table id="headline"'))]
heads = re.findall(r'<th class="num">([^<]+)</th>', table)
assert heads == ["native vs reference", "fp_optimized vs native", "quantized vs fp_optimized"], heads
cells = re.findall(r'<td class="num [a-z]+">([^<]+)</td>', table)
o = d["output_sqnr_db"][0]
want = [o["native_vs_reference_db"], o["fp_optimized_vs_native_db"], o["quantized_vs_fp_optimized_db"]]
assert cells == ["identical" if v >= 200 else "%.2f" % v for v in want], (cells, want)
PY

[ $fail -eq 0 ] && echo "the report's chart, summary and histograms are as documented"
exit $fail
