#!/usr/bin/env bash
# Real exports (tests/models/channels_last_cases.py, Debian's torch, built in a temporary folder):
# - channels-last models: hq parse gives the input layer [-1, H, W, C] with no transpose left,
#   hq emulate (native) on the user's NHWC data equals torch's output element by element
#   (|hq - torch| <= 1e-4 * |torch| + 1e-5), and neither hq emulate, hq optimize nor hq-diag's
#   NormInspector/ImageInspector speak of NCHW on that data;
# - a detector with a TopK/NonZero/Gather decoding tail, and nms_head.onnx: hq parse fails with
#   one line naming the cut, and the printed option pasted into a second command parses.
# Skipped (exit 0 with a note) only when /usr/bin/python3 cannot import torch.
set -euo pipefail
. "$HQ_SOURCE_DIR/tests/fixtures/onnx/e2e_prelude.sh"
need_python onnx_channels_last torch onnx
make_scratch
cd "$tmp"
"$py" "$HQ_SOURCE_DIR/tests/models/channels_last_cases.py" . 2>/dev/null
status=0
fail() { echo "FAIL $*"; status=1; }

declare -A shape=([nhwc_permute]="(-1,16,12,3)" [nhwc_preprocess]="(-1,16,12,3)"
                  [nhwc_gray]="(-1,16,12,1)" [nhwc_output]="(-1,16,12,3)")
for m in nhwc_permute nhwc_preprocess nhwc_gray nhwc_output; do
    "$HQ" parse "$m.onnx" -o "$m.har" >/dev/null
    "$HQ" info "$m.har" >"$m.info"
    got=$(awk -v l="$m/input_layer1" '$1 == l && $2 == "input_layer" { print $4 }' "$m.info")
    [ "$got" = "${shape[$m]}" ] || fail "$m: input layer $got, not ${shape[$m]}"
    grep -q " transpose " "$m.info" && fail "$m: a transpose layer is left"
    "$HQ" emulate "$m.har" -d "$m.input.npy" -o "$m.npz" >/dev/null 2>"$m.err"
    grep -qi nchw "$m.err" && fail "$m: hq emulate speaks of NCHW: $(cat "$m.err")"
    "$py" - "$m.npz" "$m.output.npy" "$m" <<'PY' || status=1
import sys
import numpy as np
out = np.load(sys.argv[1])
got = out[list(out.keys())[0]].astype(np.float64)
ref = np.load(sys.argv[2]).astype(np.float64)
if got.shape != ref.shape:
    print("FAIL %s: hq output %s, torch %s" % (sys.argv[3], got.shape, ref.shape))
    sys.exit(1)
worst = (np.abs(got - ref) / (1e-4 * np.abs(ref) + 1e-5)).max()
print("%s: %s, max |hq - torch| %.3g, worst element at %.2f of the bound" % (
    sys.argv[3], got.shape, np.abs(got - ref).max(), worst))
sys.exit(0 if worst <= 1 else 1)
PY
done

# the NHWC dataset is what the archive wants: no NCHW hint from the optimizer or the inspectors
"$HQ" optimize nhwc_preprocess.har -d nhwc_preprocess.input.npy -o q.har >opt.txt 2>&1 ||
    { cat opt.txt; fail "hq optimize on the NHWC data"; }
"$HQ_DIAG" --no-interactive --json diag.json -d nhwc_preprocess.input.npy \
    --order NormInspector ImageInspector q.har </dev/null >diag.txt 2>&1 || true
[ -s diag.json ] || { cat diag.txt; fail "hq-diag wrote no report"; }
grep -qi "nchw" opt.txt diag.txt diag.json && fail "a NCHW hint on NHWC data: $(grep -hi nchw opt.txt diag.txt diag.json)"
# and the same data in NCHW order is refused with the hint
"$py" -c "import numpy as np; np.save('nchw.npy', np.load('nhwc_permute.input.npy').transpose(0, 3, 1, 2).copy())"
set +e
"$HQ" emulate nhwc_permute.har -d nchw.npy -o x.npz >/dev/null 2>err.txt
set -e
grep -q "looks like NCHW" err.txt || fail "NCHW data on the NHWC input: $(cat err.txt)"

# cutting off post-processing: the printed option, pasted, parses
cut_then_parse() {
    local model=$1 pattern=$2
    set +e
    "$HQ" parse "$model" -o cut.har 2>err.txt
    local rc=$?
    set -e
    if [ $rc -ne 2 ] || [ "$(wc -l <err.txt)" -ne 1 ] || ! grep -q -- "$pattern" err.txt ||
        [ -e cut.har ]; then
        fail "$model: exit $rc, stderr: $(cat err.txt)"
        return
    fi
    echo "$(basename "$model"): $(cat err.txt)"
    local option
    option=$(sed -n 's/.* with \(--end-node-names .*\)$/\1/p' err.txt)
    # shellcheck disable=SC2086 # the option is a list of words, as the user pastes it
    "$HQ" parse "$model" -o cut.har $option >out.txt 2>&1 || fail "$model $option: $(cat out.txt)"
    rm -f cut.har
}
cut_then_parse detector.onnx "is post-processing hq cannot convert; cut before it with --end-node-names /"
cut_then_parse "$HQ_SOURCE_DIR/tests/fixtures/onnx/nms_head.onnx" \
    "node '/head/NonMaxSuppression' (NonMaxSuppression) is post-processing hq cannot convert; cut before it with --end-node-names mp$"
[ $status -eq 0 ] && echo "onnx channels-last and cuts ok"
exit $status
