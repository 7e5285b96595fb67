#!/usr/bin/env bash
# hq-diag's headline: the output SQNR per output and stage right after the model line, and a
# verdict that calls a broken model broken. A two-head model whose second head collapses under
# 4-bit weights (below 0 dB: error verdict naming that head, exit 1) and degrades under 8-bit
# (warning verdict, exit by the findings); the bundled sample quantized with sample_correct.alls
# (no error verdict); a parsed archive (pre-quantization run: the skipped inspectors in one line,
# exit by the findings; nothing runnable: exit 2 naming the file and `hq optimize`). Outputs a
# sigmoid produces are judged by their decision agreement too (docs/diag.md, "Decision outputs"):
# the same head with a sigmoid, destroyed under 4-bit weights (about 61% agreement): error, exit 1;
# at 8 bits (25 dB, some decisions at the threshold flip): healthy; a sigmoid map whose values
# move far under 4 bits (below 10 dB) while every decision is kept: healthy.
# Fixtures: tests/e2e/diag_headline_fixtures.py, from the committed twoout_net.onnx.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fixtures="$HQ_SOURCE_DIR/tests/fixtures/inspectors"
samples="$HQ_SOURCE_DIR/samples"
cp "$fixtures/data/twoout_net.onnx" "$fixtures/data/calib_rgb.npy" "$work"/
/usr/bin/python3 "$fixtures/make_fixtures.py" --derive "$work" >/dev/null
cd "$work"
"$HQ" parse twoout_net.onnx -o twoout.parsed.har >/dev/null
/usr/bin/python3 "$HQ_SOURCE_DIR/tests/e2e/diag_headline_fixtures.py" . twoout.parsed.har
for s in w4_head w8; do
  "$HQ" optimize fragile.parsed.har -d calib_std.npy -m $s.alls -o $s.har >/dev/null
  "$HQ" optimize sigmoid.parsed.har -d calib_std.npy -m $s.alls -o sigmoid_$s.har >/dev/null
done
"$HQ" optimize sigmoid_kept.parsed.har -d calib_std.npy -m w4_head.alls -o sigmoid_kept.har >/dev/null
"$HQ" parse "$samples/sample.onnx" -o sample.har >/dev/null
"$HQ" optimize sample.har -m "$samples/sample_correct.alls" -d "$samples/sample_calib.npy" \
  -o sample_q.har >/dev/null

fail=0
check() { # description, then a command that must succeed
  local what=$1; shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=1; fi
}
diag() { # report name, then hq-diag arguments; console in NAME.txt, JSON in NAME.json, rc NAME.rc
  local name=$1; shift
  set +e
  "$HQ_DIAG" --no-interactive --log-path "$name.log" --json "$name.json" "$@" >"$name.txt" 2>&1 </dev/null
  echo $? >"$name.rc"
  set -e
}
json() { # report name, then a python expression over d (the JSON report) that must hold
  /usr/bin/python3 -c 'import json, sys; d = json.load(open(sys.argv[1] + ".json")); assert eval("(" + sys.argv[2] + ")"), (sys.argv[2], d.get("output_sqnr_db"), d.get("verdict"))' "$@"
}

diag w4 -d calib_std.npy --order NormInspector w4_head.har
check "a head below 0 dB: an error verdict and exit 1" \
  bash -c '[ "$(cat w4.rc)" -eq 1 ] && grep -q "^\[error\] Verdict: quantization breaks the model: output output_layer2 (dense2) at -[0-9.]* dB (below the 10 dB floor); other outputs: output_layer1 (dense1) [0-9.]* dB$" w4.txt'
check "  ... the stage table and the verdict come right after the model line" \
  bash -c 'sed -n 1p w4.txt | grep -q "^\[info\] Model w4_head.har" &&
           sed -n 2p w4.txt | grep -q "^\[info\] Output SQNR (dB) *fp_optimized vs native *quantized vs fp_optimized  (64 samples)$" &&
           sed -n 3p w4.txt | grep -q "^\[info\]   output_layer1 (dense1) " &&
           sed -n 4p w4.txt | grep -q "^\[info\]   output_layer2 (dense2) .* -[0-9.]*$" &&
           sed -n 5p w4.txt | grep -q "^\[error\] Verdict: "'
check "  ... --json: output_sqnr_db per output with both stages, and the verdict" \
  json w4 '[(o["output"], o["layer"]) for o in d["output_sqnr_db"]] == [("output_layer1", "dense1"), ("output_layer2", "dense2")]
           and d["output_sqnr_db"][1]["quantized_vs_fp_optimized_db"] < 0 < 20 < d["output_sqnr_db"][0]["quantized_vs_fp_optimized_db"]
           and all(o["fp_optimized_vs_native_db"] > 100 for o in d["output_sqnr_db"])
           and d["verdict"]["level"] == "error" and "output_layer2 (dense2)" in d["verdict"]["summary"]
           and "output_layer1" not in d["verdict"]["summary"].split(";")[0]
           and d["exit_status"] == 1 and d["summary"]["error"] == 1'
check "  ... the verdict is a finding of hq-diag on the worst output" \
  json w4 '[(x["inspector"], x["layer"]) for x in d["diagnostics"] if x["message"].startswith("Verdict: ")] == [("hq-diag", "output_layer2")]'
check "  ... outputs without a sigmoid or softmax are judged by SQNR alone: no decision, no agreement" \
  json w4 'all(o["decision"] is None and o["quantized_vs_fp_optimized_agreement_pct"] is None
               and o["fp_optimized_vs_native_agreement_pct"] is None for o in d["output_sqnr_db"])'
check "  ... and no agreement on the console" bash -c '! grep -q agree w4.txt'

diag sigmoid_w4 -d calib_std.npy --order NormInspector --report sigmoid_w4.html sigmoid_w4_head.har
check "a sigmoid head destroyed under 4-bit weights: an error verdict on its decision agreement, exit 1" \
  bash -c '[ "$(cat sigmoid_w4.rc)" -eq 1 ] && grep -q "^\[error\] Verdict: quantization breaks the model: output output_layer2 (dense2) at [0-9.]* dB, [0-9.]*% decision agreement (below the 10 dB floor and the 85% decision-agreement floor); other outputs: output_layer1 (dense1) [0-9.]* dB$" sigmoid_w4.txt'
check "  ... the stage table shows the agreement of the sigmoid output only" \
  bash -c 'grep -Eq "^\[info\]   output_layer2 \(dense2\) +identical \(100.00% agree\) +[0-9.]+ \([0-9.]+% agree\)$" sigmoid_w4.txt &&
           grep -Eq "^\[info\]   output_layer1 \(dense1\) +identical +[0-9.]+$" sigmoid_w4.txt'
check "  ... --json: the decision and the agreement of each stage, and the verdict's figure" \
  json sigmoid_w4 '[o["decision"] for o in d["output_sqnr_db"]] == [None, "sigmoid"]
           and 50 < d["output_sqnr_db"][1]["quantized_vs_fp_optimized_agreement_pct"] < 85
           and d["output_sqnr_db"][1]["fp_optimized_vs_native_agreement_pct"] == 100
           and d["output_sqnr_db"][1]["quantized_vs_fp_optimized_db"] < 10
           and d["output_sqnr_db"][0]["quantized_vs_fp_optimized_agreement_pct"] is None
           and d["verdict"]["level"] == "error" and d["exit_status"] == 1
           and [x["numbers"]["decision_agreement_pct"] for x in d["diagnostics"] if x["message"].startswith("Verdict: ")]
               == [d["output_sqnr_db"][1]["quantized_vs_fp_optimized_agreement_pct"]]'
check "  ... --report: the sigmoid output's cell holds both figures, at the verdict's level" \
  bash -c 'grep -Eq "^<tr><td><code>output_layer2</code> \(dense2\)</td><td class=\"num info\">identical</td><td class=\"num error\">[0-9.]+ \([0-9.]+% agree\)</td></tr>$" sigmoid_w4.html &&
           grep -Eq "^<tr><td><code>output_layer1</code> \(dense1\)</td><td class=\"num info\">identical</td><td class=\"num info\">[0-9.]+</td></tr>$" sigmoid_w4.html'
check "  ... the log counts both sides of the map" \
  grep -q "decision agreement of output_layer2 (dense2) (sigmoid, threshold 0.5), quantized vs fp_optimized: [0-9.]*%; below 0.5 in the reference: 32 elements" sigmoid_w4.log

diag sigmoid_w8 -d calib_std.npy --order NormInspector sigmoid_w8.har
check "the sigmoid head at 8 bits (above 20 dB, a few decisions at the threshold flip): healthy" \
  json sigmoid_w8 'd["verdict"]["level"] == "info" and d["output_sqnr_db"][1]["quantized_vs_fp_optimized_db"] >= 20
           and d["output_sqnr_db"][1]["quantized_vs_fp_optimized_agreement_pct"] < 95'

diag sigmoid_kept -d calib_std.npy --order NormInspector sigmoid_kept.har
check "a sigmoid map below 10 dB whose every decision is kept: healthy, exit 0" \
  bash -c '[ "$(cat sigmoid_kept.rc)" -eq 0 ] && grep -q "^\[info\] Verdict: healthy: every output at 20 dB or more or 95% decision agreement or more (lowest: output_layer2 (dense2), [0-9.]* dB, 100.00% decision agreement in quantization)$" sigmoid_kept.txt'
check "  ... --json: below the SQNR floor, 100% agreement" \
  json sigmoid_kept 'd["output_sqnr_db"][1]["quantized_vs_fp_optimized_db"] < 10
           and d["output_sqnr_db"][1]["quantized_vs_fp_optimized_agreement_pct"] == 100'

diag w8 -d calib_std.npy --order NormInspector w8.har
check "a head at 10-20 dB: a warning verdict naming it, exit 0" \
  bash -c '[ "$(cat w8.rc)" -eq 0 ] && grep -q "^\[warning\] Verdict: quantization degrades the model: output output_layer2 (dense2) at 1[0-9].[0-9]* dB (10-20 dB" w8.txt'

diag good -d "$samples/sample_calib.npy" sample_q.har
check "the sample quantized with sample_correct.alls: no error verdict" \
  bash -c 'grep -q "^\[info\] Verdict: healthy: every output at 20 dB or more" good.txt && ! grep -q "^\[error\] Verdict" good.txt'
check "  ... its JSON verdict is info and its output SQNR above 20 dB" \
  json good 'd["verdict"]["level"] == "info" and d["output_sqnr_db"][0]["quantized_vs_fp_optimized_db"] > 20'

diag parsed -d "$samples/sample_calib.npy" sample.har
check "a parsed archive: a pre-quantization run naming the skipped inspectors in one line" \
  bash -c 'grep -q "^\[info\] Pre-quantization run (sample.har is parsed_model): skipped [1-9][0-9]* inspector(s) that need a quantized model: .*HighPrecisionInspector.* (hq optimize sample.har -d DATASET quantizes it)$" parsed.txt &&
           ! grep -q "^\[info\] Skipping HighPrecisionInspector" parsed.txt && grep -q "^Module: NormInspector" parsed.txt'
check "  ... exits by its findings" \
  bash -c 'errors=$(sed -n "s/^\[info\] Done: \([0-9]*\) error(s).*/\1/p" parsed.txt);
           [ "$(cat parsed.rc)" -eq $([ "$errors" -gt 0 ] && echo 1 || echo 0) ]'
check "  ... and the JSON says why each was skipped, with no verdict" \
  json parsed '{x["name"]: x["reason"] for x in d["inspectors"]}["HighPrecisionInspector"] == "the model is not quantized" and d["verdict"] is None and d["output_sqnr_db"] == []'

diag only_quantized -d "$samples/sample_calib.npy" --order HighPrecisionInspector sample.har
check "a parsed archive with only inspectors that need quantization: exit 2 naming the file and hq optimize" \
  bash -c '[ "$(cat only_quantized.rc)" -eq 2 ] && grep -q "Model sample.har is not quantized (state parsed_model) .*hq optimize sample.har -d DATASET" only_quantized.txt'
exit $fail
