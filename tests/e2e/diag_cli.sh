#!/usr/bin/env bash
# hq-diag's command line with the test plugins of tests/plugins: exit statuses (0 / 1 / 2),
# "Model is not quantized", --order refusals, non-interactive defaults with stdin closed, the
# merged model script and its numbered name when the file exists, --json validity, a
# self-contained --report, --list-inspectors, HQ_PLUGIN_PATH, and that the current folder is
# never searched for plugins.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
good="$HQ_BUILD_DIR/tests/plugins/good"
calib="$HQ_SOURCE_DIR/samples/tiny_calib.npy"
export calib good
/usr/bin/python3 "$HQ_SOURCE_DIR/tests/e2e/diag_fixtures.py" "$work"
cd "$work"
fail=0
check() { # description, then a command that must succeed
  local what=$1; shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=1; fi
}
run() { # expected status, then hq-diag arguments; output in out.txt / err.txt
  local want=$1; shift
  set +e; "$HQ_DIAG" "$@" >out.txt 2>err.txt <&-; rc=$?; set -e
  [ "$rc" -eq "$want" ] || { echo "     exit $rc, expected $want: hq-diag $*"; cat out.txt err.txt; return 1; }
}

check "a missing archive exits 2 with one line naming it" \
  bash -c 'set +e; "$HQ_DIAG" --no-interactive missing.har >out.txt 2>err.txt; [ $? -eq 2 ] &&
           [ "$(wc -l <err.txt)" -eq 1 ] && grep -q missing.har err.txt && [ ! -e hq-diag.log ]'
check "an unknown --order name exits 2 listing the known inspectors" \
  bash -c 'run() { "$HQ_DIAG" "$@" >out.txt 2>err.txt; }; set +e;
           run --plugin-path '"$good"' --order TestQuiet Nope parsed.har; [ $? -eq 2 ] &&
           grep -q "unknown inspector .Nope.; known inspectors: .*TestFindings" err.txt'
check "an unquantized model exits 2 when every selected inspector needs quantized data" \
  bash -c 'set +e; "$HQ_DIAG" --plugin-path '"$good"' --order TestQuantized parsed.har >out.txt 2>err.txt;
           [ $? -eq 2 ] && grep -q "^\[error\] Model parsed.har is not quantized .*: hq optimize parsed.har -d DATASET$" err.txt'
check "  ... and runs the others when some need nothing quantized, naming the skipped in one line" \
  bash -c 'set +e; "$HQ_DIAG" --plugin-path '"$good"' --order TestQuantized TestQuiet parsed.har >out.txt 2>err.txt;
           [ $? -eq 0 ] && grep -q "^\[info\] Pre-quantization run (parsed.har is parsed_model): skipped 1 inspector(s) that need a quantized model: TestQuantized " out.txt &&
           grep -qx "Module: TestQuiet" out.txt && ! grep -q "Skipping TestQuantized" out.txt'
check "an unquantized model runs inspectors that need no quantized data (exit 0)" \
  run 0 --plugin-path "$good" --order TestQuiet parsed.har
check "  ... and prints the module line and a separator" \
  bash -c 'grep -qx "Module: TestQuiet" out.txt && grep -qx -- "-\{20,\}" out.txt'
check "an inspector without its data is skipped with the reason" \
  bash -c 'set +e; "$HQ_DIAG" --plugin-path '"$good"' --order TestStats parsed.har >out.txt 2>&1;
           grep -q "Skipping TestStats, no dataset given" out.txt'
check "a misspelt line in the archive's script is named with a did-you-mean; the run goes on" \
  bash -c 'set +e; "$HQ_DIAG" --plugin-path '"$good"' --order TestQuiet typo.har >out.txt 2>&1;
           [ $? -eq 0 ] && grep -q "tiny.alls:2: unknown command .quantizaton_param. (did you mean .quantization_param.?)" out.txt'
check "an error-level finding exits 1" \
  run 1 --plugin-path "$good" --order TestFindings TestClipping -d "$calib" quantized.har
check "the log has a timestamp and the inspector name on every line" \
  bash -c 'grep -q "^20[0-9-]*T[0-9:]*Z \[error\] \[TestFindings\] Test error on layer conv1$" hq-diag.log &&
           ! grep -vq "^20[0-9-]*T[0-9:]*Z \[[a-z]*\] \[[A-Za-z0-9_.-]*\] " hq-diag.log'
check "non-interactive runs never read stdin and take the defaults" \
  bash -c 'grep -q "Accepted 1 of 1 recommended line(s) (non-interactive default: yes)" out.txt &&
           grep -q "Accepted 1 of 2 recommended line(s) (non-interactive default: warning)" out.txt &&
           grep -q "Accepted 0 of 1 recommended line(s) (non-interactive default: no)" out.txt'
check "the merged script replaces the contradicted line and appends the others" \
  bash -c 'grep -q "^# hq-diag (TestFindings) replaced: quantization_param(conv1, precision_mode=a8_w8)" diagnostic_tiny.alls &&
           grep -qx "quantization_param(conv1, precision_mode=a16_w16)" diagnostic_tiny.alls &&
           grep -q "^pre_quantization_optimization(activation_clipping, layers=\[conv1\]" diagnostic_tiny.alls &&
           ! grep -q "layers=\[conv2\]" diagnostic_tiny.alls &&
           ! grep -q "^model_optimization_flavor(compression_level=0)" diagnostic_tiny.alls &&
           grep -qx "model_optimization_flavor(optimization_level=2)" diagnostic_tiny.alls'
cp diagnostic_tiny.alls first.alls
check "an existing script is not overwritten: a numbered name and a warning" \
  run 1 --plugin-path "$good" --order TestFindings -d "$calib" --no-interactive quantized.har
check "  ... the warning names both files" \
  bash -c 'grep -q "\[warning\] diagnostic_tiny.alls exists; writing the model script to diagnostic_tiny_1.alls instead" out.txt &&
           cmp -s first.alls diagnostic_tiny.alls && [ -s diagnostic_tiny_1.alls ]'
check "--output-model-script writes there, even with nothing accepted" \
  bash -c '"$HQ_DIAG" --plugin-path '"$good"' --order TestQuiet --output-model-script mine.alls quantized.har >out.txt 2>&1 <&- &&
           grep -qx "model_optimization_flavor(optimization_level=2)" mine.alls'
check "--json writes valid JSON with findings, numbers and recommendations" \
  bash -c 'set +e; "$HQ_DIAG" --plugin-path '"$good"' --order TestFindings TestClipping TestStats TestFailing \
             -d '"$calib"' --json out.json --report out.html quantized.har >out.txt 2>&1 <&-; [ $? -eq 1 ] &&
           /usr/bin/python3 - <<PY
import json
d = json.load(open("out.json"))
assert d["schema"] == 4 and d["network"] == "tiny" and d["exit_status"] == 1, d
assert d["summary"]["error"] == 2 and d["summary"]["failed_inspectors"] == 1, d["summary"]
w = [x for x in d["diagnostics"] if x["message"] == "Layer conv1 is a test warning"][0]
assert w["level"] == "warning" and w["layer"] == "conv1" and w["numbers"] == {"sqnr_db": 7.5, "threshold_db": 10}, w
r = d["recommendations"]
assert [x["accepted"] for x in r] == [True, True, False, False], r
assert r[1]["group_kind"] == "levels" and r[0]["line"] == "quantization_param(conv1, precision_mode=a16_w16)"
assert {x["name"]: x["status"] for x in d["inspectors"]}["TestFailing"] == "failed"
assert {x["layer"]: x["cumulative_db"] for x in d["layer_sqnr"]} == {"conv1": 8.5, "conv2": 21.0}
s = [x for x in d["diagnostics"] if x["message"] == "Input statistics"][0]["numbers"]
assert s["samples"] == 16 and 0 <= s["min"] < 1 and 254 < s["max"] <= 255, s
assert d["files"] == [{"inspector": "TestStats", "name": "test_stats.png"}]
PY'
check "  ... with exactly the fields the man page's JSON schema names" \
  /usr/bin/python3 - "$HQ_SOURCE_DIR/man/hq-diag.1" <<'PY'
import json, re, sys
page = open(sys.argv[1]).read()
block = page[page.index(".SH JSON"):]
block = block[block.index(".nf"):block.index(".fi")]
documented = set(re.findall(r'"([a-z_]+)":', block))
def keys(value, into):
    if isinstance(value, dict):
        for k, v in value.items():
            into.add(k)
            if k != "numbers":  # its keys are the inspectors' number names
                keys(v, into)
    elif isinstance(value, list):
        for v in value:
            keys(v, into)
    return into
real = keys(json.load(open("out.json")), set())
# the "verify" object is null without --verify: its own keys (checked by diag_verify.sh) are absent
start = block.index('"verify":')
end = block.index("}]} | null,", start)
assert json.load(open("out.json"))["verify"] is None
documented = set(re.findall(r'"([a-z_]+)":', block[:start] + block[end:])) | {"verify"}
documented.discard("name")  # also the man page's placeholder inside "numbers"
real.discard("name")
assert real == documented, ("undocumented: %s; documented but absent: %s"
                            % (sorted(real - documented), sorted(documented - real)))
for section in ("inspectors", "diagnostics", "recommendations", "layer_sqnr", "files", "triage"):
    assert json.load(open("out.json"))[section], section + " is empty: the check would be vacuous"
PY
check "--report is one self-contained page with SVG charts and the saved image" \
  bash -c 'grep -q "<svg" out.html && grep -q "data:image/png;base64," out.html &&
           ! grep -q "<script[^>]* src=" out.html && [ -z "$(grep -o "https\?://[^\"]*" out.html | grep -v "^http://www.w3.org/2000/svg$")" ] &&
           grep -q "Per-layer SQNR" out.html && grep -q "Activation range of conv1 (test)" out.html'
check "--list-inspectors lists name, priority and file, in run order" \
  bash -c '"$HQ_DIAG" --plugin-path '"$good"' --list-inspectors >out.txt &&
           grep -q "^TestFindings  *HIGH " out.txt && grep -q "good/findings.so" out.txt &&
           [ "$(grep -o "^Test[A-Za-z]*" out.txt | head -2 | tr "\n" " ")" = "TestFindings TestFailing " ]'
check "HQ_PLUGIN_PATH adds folders (empty entries ignored)" \
  bash -c 'HQ_PLUGIN_PATH=":'"$good"':" "$HQ_DIAG" --list-inspectors | grep -q "^TestQuiet "'
mkdir -p cwd_plugins && cp "$good/quiet.so" cwd_plugins/ && cp "$good/quiet.so" ./quiet.so
check "the current folder is never searched for plugins" \
  bash -c '! "$HQ_DIAG" --list-inspectors | grep -q "^TestQuiet " &&
           ! (cd cwd_plugins && "$HQ_DIAG" --list-inspectors | grep -q "^TestQuiet ")'
check "a broken --plugin-path module is refused with its reason and the run goes on" \
  bash -c 'set +e; "$HQ_DIAG" --plugin-path '"$good"' --plugin-path '"$HQ_BUILD_DIR"'/tests/plugins/broken \
             --order TestQuiet parsed.har >out.txt 2>err.txt; rc=$?; [ $rc -eq 0 ] &&
           grep -q "Refused plugin .*wrongabi.so: inspector ABI version 99, but this hq-diag speaks version 1" out.txt &&
           grep -q "Refused plugin .*nosymbol.so: not an inspector module: no exported symbol .hq_inspector_entry." out.txt &&
           grep -q "Refused plugin .*nulldesc.so: hq_inspector_entry() returned a NULL descriptor" out.txt &&
           grep -q "Refused plugin .*duplicate.so: duplicate inspector name .TestFindings." out.txt &&
           grep -q "Refused plugin .*garbage.so: cannot load inspector module: .*check .ldd" out.txt &&
           grep -q "All quiet" out.txt'
check "-c limits the samples used" \
  bash -c '"$HQ_DIAG" --plugin-path '"$good"' --order TestStats -c 5 --json c.json -d '"$calib"' quantized.har >/dev/null 2>&1 <&- &&
           /usr/bin/python3 -c "import json; d=json.load(open(\"c.json\")); assert d[\"samples\"] == 5, d[\"samples\"]"'
/usr/bin/python3 -c "import numpy as np; np.save('many.npy', np.concatenate([np.load('$calib')] * 7))"
check "without -c, 64 samples are used (of 112)" \
  bash -c '"$HQ_DIAG" --plugin-path '"$good"' --order TestStats --json c64.json -d many.npy quantized.har >/dev/null 2>&1 <&- &&
           /usr/bin/python3 -c "import json; d=json.load(open(\"c64.json\")); assert d[\"samples\"] == 64, d[\"samples\"]"'
check "a failing inspector is reported as an error; the ones after it still run" \
  bash -c 'set +e; "$HQ_DIAG" --plugin-path '"$good"' --order TestFailing TestQuiet --output-model-script f.alls \
             quantized.har >out.txt 2>&1 <&-; [ $? -eq 1 ] &&
           grep -qx "\[warning\] Finding made before the failure" out.txt &&
           grep -qx "\[error\] Inspector TestFailing failed: deliberate test failure" out.txt &&
           grep -qx "Module: TestQuiet" out.txt && grep -q "All quiet" out.txt'
check "a model script that cannot be written: exit 2, one line naming it, nothing left behind" \
  bash -c 'set +e; "$HQ_DIAG" --plugin-path '"$good"' --order TestQuiet \
             --output-model-script nodir/x.alls quantized.har >out.txt 2>err.txt <&-; [ $? -eq 2 ] &&
           [ "$(wc -l <err.txt)" -eq 1 ] && grep -q "nodir/x.alls" err.txt && [ ! -e nodir ]'
check "a bad -c is refused" \
  bash -c 'set +e; "$HQ_DIAG" -c 0 parsed.har >/dev/null 2>err.txt; [ $? -eq 2 ] && grep -q "not a positive number" err.txt'
/usr/bin/python3 -c "import numpy as np; np.save('neg.npy', np.load('$calib') - 128)"
check "image inspectors run on 3-channel data without negative values, with native statistics" \
  bash -c '"$HQ_DIAG" --plugin-path '"$good"' --order TestImages --json i.json -d '"$calib"' quantized.har >out.txt 2>&1 &&
           /usr/bin/python3 - <<PY
import json, numpy as np
n = [x for x in json.load(open("i.json"))["diagnostics"] if x["message"] == "images"][0]["numbers"]
assert abs(n["first_pixel"] - float(np.load("$calib")[0, 0, 0, 0])) < 1e-3, n
assert n["native_target"] == 0 and n["native_max"] > 0 and n["float_max"] == n["native_max"], n
PY'
check "  ... and are skipped on data with negative values" \
  bash -c '"$HQ_DIAG" --plugin-path '"$good"' --order TestImages -d neg.npy quantized.har >out.txt 2>&1 &&
           grep -q "Skipping TestImages, the data has negative values" out.txt'
exit $fail
