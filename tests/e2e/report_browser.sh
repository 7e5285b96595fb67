#!/usr/bin/env bash
# hq-diag's HTML report in a real browser (headless Chromium): the bundled sample, quantized with
# its seeded mistake, gives a report that renders without a script error, whose summary (the
# verdict and the output SQNR table) ends within the first screen of a 1280x800 window and comes
# before every inspector section, whose sections are collapsed, and whose screenshot is a
# 1280x800 PNG with content. The same checks catch a page with a script error and a page whose
# summary is pushed below the first screen (so they can fail). The page's own script records
# what the test reads on its root element (core/diag/report_html.c). Skips (exit 77) when
# chromium is not installed (.ci/install-deps.sh installs it). ctest label: browser.
set -euo pipefail
chromium=${HQ_CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$chromium" ]; then
  echo "SKIP: chromium is not installed (Debian package chromium; .ci/install-deps.sh installs it)"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
samples="$HQ_SOURCE_DIR/samples"
"$HQ" parse "$samples/sample.onnx" -o sample.har >/dev/null
"$HQ" optimize sample.har -m "$samples/sample.alls" -d "$samples/sample_calib.npy" \
  -o sample_q.har >/dev/null
"$HQ_DIAG" --no-interactive -d "$samples/sample_calib.npy" --report report.html sample_q.har \
  >diag.txt 2>&1 </dev/null || [ $? -eq 1 ]

fail=0
check() { # description, then a command that must succeed
  local what=$1; shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=1; fi
}
negate() { ! "$@"; }
browse() { # page, then chromium's action: the DOM after load to stdout, its log to <page>.log
  local page=$1; shift
  timeout 60 "$chromium" --headless --disable-gpu --no-sandbox --no-first-run \
    --user-data-dir="$work/profile" --window-size=1280,800 --enable-logging=stderr --v=0 \
    "$@" "file://$work/$page" 2>"$page.log"
}
# attribute NAME of the dumped DOM's root element (empty when absent)
root_attr() { grep -o "<html[^>]*>" "$1" | head -1 | grep -o "$2=\"[^\"]*\"" | cut -d'"' -f2 || true; }
# rendered cleanly: the page's script ran to the end, counted no error, Chromium logged none
rendered_cleanly() {
  [ "$(root_attr "$1.dom" data-rendered)" = yes ] && [ "$(root_attr "$1.dom" data-script-errors)" = 0 ] &&
    ! grep -E "Uncaught|CONSOLE.*[Ee]rror" "$1.log"
}
# the summary's headline ends within the first screen (800 px)
summary_on_first_screen() {
  local bottom
  bottom=$(root_attr "$1.dom" data-headline-bottom)
  echo "     $1: the headline ends at ${bottom:-?} px"
  [ -n "$bottom" ] && [ "$bottom" -gt 0 ] && [ "$bottom" -le 800 ]
}

browse report.html --dump-dom >report.html.dom
check "the report renders without a script error" rendered_cleanly report.html
check "  ... its headline (output SQNR per output) ends within the first 1280x800 screen" \
  summary_on_first_screen report.html
check "  ... the summary holds the verdict, the stage table, the verified fixes and the triage, before any inspector section" \
  /usr/bin/python3 - report.html.dom <<'PY'
import sys
dom = open(sys.argv[1]).read()
at = {k: dom.find(k) for k in ('id="summary"', 'id="verdict"', 'id="headline"', 'quantized vs fp_optimized',
                               'id="triage"', 'id="verified-fixes"', '<details', 'id="sqnr-chart"')}
assert all(v >= 0 for v in at.values()), at
order = ['id="summary"', 'id="verdict"', 'id="headline"', 'id="triage"', 'id="verified-fixes"',
         'id="sqnr-chart"', '<details']
assert [at[k] for k in order] == sorted(at[k] for k in order), at
# the triage ranks the seeded normalization mistake first, with its fix line
triage = dom[at['id="triage"']:at['id="sqnr-chart"']]
first = triage[triage.find("<li>"):]
assert ">NormInspector</a>" in first[:first.find("</li>")], triage[:400]
assert "normalization1 = normalization(" in triage
PY
check "  ... every inspector section is collapsed" \
  bash -c '[ "$(grep -c "<details class=\"inspector\"" report.html.dom)" -ge 10 ] && ! grep -q "<details[^>]* open" report.html.dom'
browse report.html --screenshot="$work/shot.png" >/dev/null
check "  ... the screenshot is a 1280x800 PNG with content" /usr/bin/python3 - shot.png <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
width, height = struct.unpack(">II", data[16:24])
print(f"     {width}x{height}, {len(data)} bytes")
assert (width, height) == (1280, 800)
assert len(data) > 20000, "too small for a page with text and a table (a blank page is ~5 kB)"
PY

# the same checks fail on a page with a script error and on a summary below the first screen
/usr/bin/python3 - <<'PY'
page = open("report.html").read()
open("broken.html", "w").write(page.replace("<script>(function(){",
                                            "<script>not_a_function();</script><script>(function(){"))
open("pushed.html", "w").write(page.replace('<section id="summary">',
                                            '<div style="height:1200px"></div><section id="summary">'))
PY
browse broken.html --dump-dom >broken.html.dom
check "a page with a script error is caught" negate rendered_cleanly broken.html
browse pushed.html --dump-dom >pushed.html.dom
check "a summary pushed below the first screen is caught" negate summary_on_first_screen pushed.html

[ $fail -eq 0 ] && echo "the report renders in Chromium with its summary on the first screen"
exit $fail
