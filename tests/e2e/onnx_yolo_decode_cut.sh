#!/usr/bin/env bash
# A converter's refusal in post-processing names the cut, and the cut works: the YOLOv5-style
# detector of tests/models/yolo_cases.py exported with its box decode (torch, opset 17, dynamic
# batch, 128x128, made here by bench/onnx_import_sweep.py's export) has a rank-5 view in every
# head's decode, which hq refuses. hq parse must fail with one line (exit 2, nothing written)
# that gives the converter's reason and the complete --end-node-names; that option pasted into a
# second hq parse must work, cut at the three head convolutions (yolo_cases.HEAD_NODES), and
# hq emulate (native) of the cut archive must equal onnxruntime-node running the export with those
# nodes' tensors as its outputs, within 1e-4 of each output's range.
# Skipped (exit 0 with a note) only when /usr/bin/python3 cannot import torch or there is no node;
# onnxruntime-node comes from tests/models/fetch_models.sh, whose failure fails the test.
set -euo pipefail
. "$HQ_SOURCE_DIR/tests/fixtures/onnx/e2e_prelude.sh"
need_python onnx_yolo_decode_cut torch
need_node onnx_yolo_decode_cut
fetch_node_modules
make_scratch
cd "$tmp"
"$py" - "$HQ_SOURCE_DIR" <<'PY'
import os, sys, warnings
sys.path.insert(0, os.path.join(sys.argv[1], "bench"))
warnings.filterwarnings("ignore")
import onnx_import_sweep as sweep
sweep.export_family("yolov5n_decode", 17, "dynamic", ".", 96, None)
PY
m=yolov5n_decode_op17_dynamic

set +e
"$HQ" parse "$m.onnx" -o cut.har 2>err.txt
rc=$?
set -e
echo "refusal: $(cat err.txt)"
[ $rc -eq 2 ] || { echo "FAIL hq parse exit $rc, not 2"; exit 1; }
[ "$(wc -l <err.txt)" -eq 1 ] || { echo "FAIL the refusal is not one line"; exit 1; }
[ ! -e cut.har ] || { echo "FAIL a refused parse wrote cut.har"; exit 1; }
grep -q "^hq parse: $m.onnx: node '/detect/Reshape' (Reshape): reshape to rank 5 with batch 1; .*; it is post-processing: cut before it with --end-node-names " err.txt ||
    { echo "FAIL the refusal lacks the reason or the cut"; exit 1; }
option=$(sed -n 's/.* with \(--end-node-names .*\)$/\1/p' err.txt)
# shellcheck disable=SC2086 # the option is a list of words, as the user pastes it
"$HQ" parse "$m.onnx" -o cut.har $option >out.txt 2>&1 || { echo "FAIL $option: $(cat out.txt)"; exit 1; }
# shellcheck disable=SC2086 # the node names, one argument each
"$py" - "$HQ_SOURCE_DIR" "$m" $option <<'PY'
import os, sys
import numpy as np
sys.path.insert(0, os.path.join(sys.argv[1], "bench"))
sys.path.insert(0, os.path.join(sys.argv[1], "tests", "models"))
import onnx_import_sweep as sweep
import yolo_cases
m, names = sys.argv[2], sys.argv[4:]
heads = yolo_cases.HEAD_NODES["yolov5n"]
if names != heads:
    print("FAIL the cut names %s, the heads are %s" % (" ".join(names), " ".join(heads)))
    sys.exit(1)
with open(m + ".onnx", "rb") as f:
    model = f.read()
sweep.save_bytes(m + ".cut.onnx", sweep.onnx_with_outputs(model, names))
np.save(m + ".nhwc.npy", np.load(m + ".input.npy").transpose(0, 2, 3, 1).copy())
PY
node "$HQ_SOURCE_DIR/tests/models/make_reference.js" "$modules" "$m.cut.onnx" "$m.input.npy" ort >/dev/null
"$HQ" emulate cut.har -d "$m.nhwc.npy" -o hq.npz >/dev/null
"$py" - <<'PY'
import sys
import numpy as np
out = np.load("hq.npz")
status = 0
for k, key in enumerate(out.files):
    got = out[key].astype(np.float64)
    ref = np.load("ort.%d.npy" % k).astype(np.float64).transpose(0, 2, 3, 1)
    if got.shape != ref.shape:
        print("FAIL output %d: hq %s, onnxruntime %s" % (k, got.shape, ref.shape))
        status = 1
        continue
    err, span = np.abs(got - ref).max(), ref.max() - ref.min()
    ok = err <= 1e-4 * span
    status |= not ok
    print("%s output %d %s: max|hq - onnxruntime| %.3g of range %.4g" % (
        "ok  " if ok else "FAIL", k, got.shape, err, span))
if len(out.files) != 3:
    print("FAIL %d outputs, not the 3 heads" % len(out.files))
    status = 1
sys.exit(status)
PY
echo "yolov5 decode refusal, its cut and the cut model ok"
