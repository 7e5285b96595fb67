#!/usr/bin/env bash
# The deploy runtime is bit-exact with quantized emulation: for every model quantized here,
# `hq run` (libhqrt, AVX2 kernels where they apply) at 1 and 2 threads writes the very bytes of
# `hq emulate --target quantized` on the same inputs. Models: the fixture conv.onnx, and, when
# the shared model cache has them (tests/models/fetch_models.sh, make_torch_models.py), torchvision
# resnet18 and mobilenet_v2 and PP-OCRv4 det (at 96x96).
set -euo pipefail
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cache=${HQ_MODEL_CACHE:-$HQ_SOURCE_DIR/.cache/models}
status=0
checked=0

# check NAME ONNX NCHW-SHAPE|- SAMPLES H W C
check() {
    local name=$1 onnx=$2 shape=$3 n=$4 h=$5 w=$6 c=$7
    local extra=()
    [ "$shape" != "-" ] && extra=(--tensor-shapes "$shape")
    "$HQ" parse "$onnx" -o "$tmp/$name.har" "${extra[@]}" >/dev/null
    "$py" -c "import numpy as np; np.save('$tmp/$name.npy', np.random.RandomState(7).rand($n,$h,$w,$c).astype(np.float32) * 2 - 0.5)"
    "$HQ" optimize "$tmp/$name.har" -d "$tmp/$name.npy" -o "$tmp/${name}_q.har" >/dev/null
    "$HQ" compile "$tmp/${name}_q.har" -o "$tmp/$name.hqx" --har "$tmp/${name}_c.har" >/dev/null
    "$HQ" emulate "$tmp/${name}_q.har" --target quantized -d "$tmp/$name.npy" -o "$tmp/${name}_emu.npz" >/dev/null
    "$HQ" run "$tmp/$name.hqx" -d "$tmp/$name.npy" -o "$tmp/${name}_run1.npz" -j 1 >/dev/null
    "$HQ" run "$tmp/$name.hqx" -d "$tmp/$name.npy" -o "$tmp/${name}_run2.npz" -j 2 >/dev/null
    "$HQ" run "$tmp/${name}_c.har" -d "$tmp/$name.npy" -o "$tmp/${name}_har.npz" >/dev/null
    "$py" - "$tmp/$name" "$name" <<'PY' || status=1
import sys
import numpy as np
base, name = sys.argv[1], sys.argv[2]
emu = np.load(base + "_emu.npz")
runs = {k: np.load(base + "_" + k + ".npz") for k in ("run1", "run2", "har")}
ok = True
for key in emu.files:
    want = np.ascontiguousarray(emu[key]).tobytes()
    for label, r in runs.items():
        got = np.ascontiguousarray(r[key]).tobytes() if key in r.files else b""
        if got != want:
            diff = np.abs(r[key].astype(np.float64) - emu[key]).max() if key in r.files else "missing"
            print("%s: %s: hq run (%s) differs from hq emulate --target quantized (max diff %s)"
                  % (name, key, label, diff))
            ok = False
print("%s: %d output(s), %d bytes each run: %s" % (name, len(emu.files),
      sum(emu[k].nbytes for k in emu.files), "bit-exact at 1 and 2 threads" if ok else "MISMATCH"))
sys.exit(0 if ok else 1)
PY
    checked=$((checked + 1))
}

check conv "$HQ_SOURCE_DIR/tests/fixtures/onnx/conv.onnx" - 16 4 4 2
if [ -f "$cache/torch/resnet18.onnx" ]; then
    # the reference kernels of the emulator are slow under the sanitizers: resnet18 then skipped
    if ! ldd "$HQ" | grep -q libasan; then
        check resnet18 "$cache/torch/resnet18.onnx" - 1 224 224 3
    fi
    check mobilenet_v2 "$cache/torch/mobilenet_v2.onnx" - 1 224 224 3
else
    echo "deploy_bitexact: torch models not in $cache/torch (tests/models/make_torch_models.py): skipped"
fi
if [ -f "$cache/ocr/ch_PP-OCRv4_det_infer.onnx" ]; then
    check ppocr_det "$cache/ocr/ch_PP-OCRv4_det_infer.onnx" 1,3,96,96 2 96 96 3
else
    echo "deploy_bitexact: OCR models not in $cache/ocr (tests/models/fetch_models.sh): skipped"
fi
echo "deploy_bitexact: $checked model(s) checked"
exit $status
