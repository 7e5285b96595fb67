#!/usr/bin/env bash
# The README's demo (samples/demo.sh) without its install and build steps: parse -> optimize ->
# hq-diag --no-interactive on the bundled sample, in a scratch folder, with stdin closed. The
# demo must exit 0 although hq-diag finds error-level problems (exit 1), show at least one
# [warning] finding, write the accepted script, the JSON and the HTML report where its last line
# says, and leave the repository untouched. The accepted script must be runnable: re-quantizing
# with it removes the seeded normalization error.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
check() {
  local what=$1; shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=1; fi
}
cd "$work"
before=$(cd "$HQ_SOURCE_DIR" && ls -a samples . | md5sum)
set +e
HQ="$HQ" HQ_DIAG="$HQ_DIAG" bash "$HQ_SOURCE_DIR/samples/demo.sh" --no-build --out "$work/demo" \
  >out.txt 2>err.txt <&-
rc=$?
set -e
check "the demo exits 0 although hq-diag reports error-level findings" \
  bash -c "[ $rc -eq 0 ] && grep -q '^\[error\] ' out.txt"
check "it runs parse, optimize and hq-diag --no-interactive in that order" \
  bash -c '[ "$(grep -o "^\$ hq[a-z-]* [a-z-]*" out.txt | tr "\n" ,)" = "\$ hq parse,\$ hq optimize,\$ hq-diag --no-interactive," ]'
check "hq-diag shows at least one [warning] finding, under a Module line" \
  bash -c 'grep -q "^\[warning\] " out.txt && grep -q "^Module: NormInspector$" out.txt &&
           [ "$(grep -c "^Module: " out.txt)" -ge 5 ]'
check "the seeded normalization mistake is found (an error naming normalization1)" \
  bash -c 'sed -n "/^Module: NormInspector$/,/^----/p" out.txt | grep -q "^\[error\] .*normalization1"'
check "the last line says where the accepted script and the report went" \
  bash -c 'tail -n1 out.txt | grep -q "accepted script in '"$work"'/demo/diagnostic_sample.alls.*report in '"$work"'/demo/report.html" &&
           [ -s demo/diagnostic_sample.alls ] && [ -s demo/report.html ] && [ -s demo/findings.json ] &&
           [ -s demo/hq-diag.log ]'
check "the JSON agrees with the console (>= 1 warning, exit status 1)" \
  /usr/bin/python3 -c '
import json
d = json.load(open("demo/findings.json"))
assert d["exit_status"] == 1 and d["summary"]["warning"] >= 1 and d["summary"]["accepted"] >= 1, d["summary"]
assert d["network"] == "sample" and d["samples"] == 64, d'
check "nothing is written into the repository" \
  bash -c '[ "$(cd "$HQ_SOURCE_DIR" && ls -a samples . | md5sum)" = "'"$before"'" ]'
check "the accepted script re-quantizes, and the Norm inspector's error is gone (exit 1 -> 0)" \
  bash -c 'cd demo && calib="$HQ_SOURCE_DIR/samples/sample_calib.npy" &&
           "$HQ" optimize sample.har -m diagnostic_sample.alls -d "$calib" -o fixed.har >/dev/null 2>&1 &&
           norm() { "$HQ_DIAG" --no-interactive --order Norm -d "$calib" --log-path norm.log \
                      --output-model-script norm.alls "$1" >"$2" 2>&1 <&-; echo $?; } &&
           [ "$(norm sample_quantized.har before.txt)" -eq 1 ] && [ "$(norm fixed.har fixed.txt)" -eq 0 ] &&
           grep -q "^Module: NormInspector$" fixed.txt && ! grep -q "^\[error\]" fixed.txt'
check "the demo's statistics come from one pass over the 64 samples (8 batches, each run once)" \
  bash -c '[ "$(grep -c "\] statistics pass: " demo/hq-diag.log)" -eq 1 ] &&
           line=$(grep "\] statistics pass: " demo/hq-diag.log) &&
           grep -q "statistics pass: 64 samples in 8 batches of 8, each read once; batches emulated per target: float fp_optimized (8)" <<<"$line" &&
           [ -z "$(grep -o "([0-9]*)" <<<"$line" | grep -vx "(8)")" ]'
check "four inspectors needing float, quantized and native statistics share ONE pass" \
  bash -c 'cd demo && "$HQ_DIAG" --no-interactive --plugin-path "$HQ_BUILD_DIR/tests/plugins/good" \
             --order TestStats TestNoise TestImages Clipping -c 20 -d "$HQ_SOURCE_DIR/samples/sample_calib.npy" \
             --log-path pass.log --output-model-script pass.alls sample_quantized.har >pass.txt 2>&1 <&- &&
           [ "$(grep -c "^Module: " pass.txt)" -eq 4 ] && ! grep -q Skipping pass.txt &&
           [ "$(grep -c "\] statistics pass: " pass.log)" -eq 1 ] &&
           grep -q "statistics pass: 20 samples in 3 batches of 8, each read once; batches emulated per target: float fp_optimized (3), quantized quantized (3), native native (3)$" pass.log'
mkdir mine && echo precious >mine/keep.txt
check "a non-empty --out folder it did not make is refused (exit 2) and kept" \
  bash -c 'set +e; HQ="$HQ" HQ_DIAG="$HQ_DIAG" bash "$HQ_SOURCE_DIR/samples/demo.sh" --no-build --out mine \
             >/dev/null 2>err2.txt; [ $? -eq 2 ] && grep -q "not made by demo.sh" err2.txt && [ -e mine/keep.txt ]'
check "a bad argument makes the demo fail with exit 2" \
  bash -c 'set +e; bash "$HQ_SOURCE_DIR/samples/demo.sh" --bogus >/dev/null 2>&1; [ $? -eq 2 ]'
[ $fail -ne 0 ] && { echo "--- demo output"; cat out.txt err.txt; }
exit $fail
