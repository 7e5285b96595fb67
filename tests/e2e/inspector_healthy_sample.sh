#!/usr/bin/env bash
# Quiet on a healthy model: the bundled sample quantized with its correct script
# (samples/sample_correct.alls: output SQNR about 42 dB) gets hq-diag's healthy verdict, exit
# status 0, no finding at error level from any inspector and at most 2 console lines at warning
# level (there are none today: each inspector's threshold is tied to a measured cost,
# docs/inspectors.md). The same sample with its seeded normalization mistake (samples/sample.alls)
# is the contrast: exit 1 and NormInspector first in the triage.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
samples="$HQ_SOURCE_DIR/samples"
cd "$work"
"$HQ" parse "$samples/sample.onnx" -o sample.har >/dev/null
"$HQ" optimize sample.har -m "$samples/sample_correct.alls" -d "$samples/sample_calib.npy" \
  -o healthy.har >/dev/null
"$HQ" optimize sample.har -m "$samples/sample.alls" -d "$samples/sample_calib.npy" \
  -o seeded.har >/dev/null

fail=0
check() { # description, then a command that must succeed
  local what=$1; shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=1; fi
}
MAX_WARNING_LINES=2

mkdir healthy seeded
set +e
(cd healthy && NO_COLOR=1 "$HQ_DIAG" --no-interactive -d "$samples/sample_calib.npy" \
  --json ../healthy.json ../healthy.har >../healthy.txt 2>&1 <&-)
rc=$?
(cd seeded && NO_COLOR=1 "$HQ_DIAG" --no-interactive -d "$samples/sample_calib.npy" \
  --json ../seeded.json ../seeded.har >../seeded.txt 2>&1 <&-)
rc_seeded=$?
set -e
check "healthy sample: exit status 0 (got $rc)" [ $rc -eq 0 ]
check "healthy sample: the verdict is healthy" grep -q "Verdict: healthy" healthy.txt
check "healthy sample: no [error] line" bash -c '! grep -q "\[error\]" healthy.txt'
warnings=$(grep -c '\[warning\]' healthy.txt || true)
check "healthy sample: $warnings console line(s) at warning level (at most $MAX_WARNING_LINES)" \
  [ "$warnings" -le "$MAX_WARNING_LINES" ]
check "healthy sample: --json has no error finding and says exit status 0" \
  /usr/bin/python3 - <<'PY'
import json
d = json.load(open("healthy.json"))
errors = [f for f in d["diagnostics"] if f["level"] == "error"]
assert not errors, errors
assert d["exit_status"] == 0, d["exit_status"]
print("  %d finding(s), %d warning(s)" % (len(d["diagnostics"]),
      sum(f["level"] == "warning" for f in d["diagnostics"])))
PY
check "seeded sample: exit status 1 (got $rc_seeded)" [ $rc_seeded -eq 1 ]
check "seeded sample: NormInspector first in the triage" \
  /usr/bin/python3 -c 'import json, sys; t = json.load(open("seeded.json"))["triage"]; sys.exit(t[0]["inspector"] != "NormInspector")'
exit $fail
