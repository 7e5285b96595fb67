#!/usr/bin/env bash
# The context table an inspector gets (hq-inspector(3)), slot by slot, through the TestContext
# plugin (tests/plugins/context.c), which reports what each slot returned as numbers of one
# finding: model, params, script, dataset, statistics, on-demand emulation (taps agree with the
# cached statistics, emulate_inputs with emulate), questions (defaults when non-interactive, the
# answers typed on a real terminal otherwise) and write_file into the log's files folder.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
good="$HQ_BUILD_DIR/tests/plugins/good"
calib="$HQ_SOURCE_DIR/samples/tiny_calib.npy"
/usr/bin/python3 "$HQ_SOURCE_DIR/tests/e2e/diag_fixtures.py" "$work"
cd "$work"
/usr/bin/python3 -c "import numpy as np; np.save('u8.npy', np.load('$calib').clip(0, 255).astype(np.uint8))"
mkdir out
fail=0
check() {
  local what=$1; shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=1; fi
}
numbers() { # JSON file -> the numbers of the "Context" finding, as a Python dict literal
  /usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print([x["numbers"] for x in d["diagnostics"] if x["message"] == "Context"][0])' "$1"
}

set +e
"$HQ_DIAG" --plugin-path "$good" --order TestContext -d u8.npy --json c.json \
  --log-path out/hq-diag.log quantized.har >out.txt 2>&1 <&-
rc=$?
set -e
check "TestContext runs (exit 0)" bash -c "[ $rc -eq 0 ] && grep -qx 'Module: TestContext' out.txt"
check "model, params, script, dataset and statistics slots return the fixture's facts" \
  /usr/bin/python3 - "$(numbers c.json)" <<'PY'
import ast, sys
n = ast.literal_eval(sys.argv[1])
want = {
    "state": 2,                      # HQ_STATE_QUANTIZED
    "has_archive": 1, "has_graph": 1, "topo_count": 7, "output_count": 1,
    "has_native": 1, "has_quantized": 1, "kernel_ndim": 4,
    "ratio_4bit": 0, "absent_scalar": 0,
    "has_script": 1, "qp_command_line": 3, "qp_second": -1,   # line 3 of the fixture's script
    "has_dataset": 1, "dataset_path_is_npy": 1,
    "dataset_dtype": 3,              # HQ_DTYPE_UINT8: the file's dtype, not float32
    "dataset_dtype_out_of_range": 10,  # HQ_DTYPE_COUNT
    "float_stats": 1, "quantized_stats": 0, "quantized_why_given": 1,
}
bad = {k: (n.get(k), v) for k, v in want.items() if n.get(k) != v}
assert not bad, "got/want: %s" % bad
assert abs(n["qp_scale"] - 0.05) < 1e-6, n["qp_scale"]
PY
check "emulate taps every batch, sees all 16 samples and the cached statistics' conv1 maximum" \
  /usr/bin/python3 - "$(numbers c.json)" <<'PY'
import ast, sys
n = ast.literal_eval(sys.argv[1])
assert n["emulate_status"] == 0 and n["emulate_samples"] == 16 and n["emulate_taps"] == 2, n
assert n["stats_conv1_max"] > 0 and n["emulate_conv1_max"] == n["stats_conv1_max"], n
assert n["emulate_outside_refused"] == 1, n
assert n["emulate_inputs_max_diff"] == 0, n   # read_samples + emulate_inputs == emulate
PY
check "non-interactive questions take their defaults; write_file writes into the log's files folder only" \
  bash -c '/usr/bin/python3 - "$1" <<PY
import ast, sys
n = ast.literal_eval(sys.argv[1])
assert (n["interactive"], n["answer_yes_no"], n["answer_choice"]) == (0, 1, 2), n
assert n["write_file_status"] == 0 and n["write_file_escape_refused"] == 1 and n["output_dir_set"] == 1, n
PY
[ "$(cat out/hq-diag_files/context.txt)" = "written by TestContext" ] && [ ! -e escape.txt ] &&
[ ! -e context.txt ] && [ ! -e out/context.txt ]' _ "$(numbers c.json)"

cat >steps <<'S'
expect TestContext: emulating (fp_optimized) [##############################] 16/16
expect Context question? [Y/n]
send n
expect Pick a colour (red/green/blue) [blue]
send purple
expect Please answer red, green or blue.
send gr
expect Done:
S
set +e
/usr/bin/python3 "$HQ_SOURCE_DIR/tests/e2e/diag_pty.py" steps -- "$HQ_DIAG" --plugin-path "$good" \
  --order TestContext -d u8.npy --json t.json --log-path out/t.log quantized.har >t.txt 2>&1
rc=$?
set -e
check "on a terminal: a progress bar for the plugin's emulation; its questions reach the user (n, an invalid word, a prefix)" \
  bash -c '[ '"$rc"' -eq 0 ] && /usr/bin/python3 - "$1" <<PY
import ast, sys
n = ast.literal_eval(sys.argv[1])
assert (n["interactive"], n["answer_yes_no"], n["answer_choice"]) == (1, 0, 1), n
PY' _ "$(numbers t.json 2>/dev/null || echo '{}')"
[ $fail -eq 0 ] || { echo "--- output"; cat out.txt; tr -d '\r' <t.txt; }
exit $fail
