#!/usr/bin/env bash
# deploy_bitexact.sh on the real models the suite quantizes, when the shared model cache has them
# (tests/models/make_torch_models.py, tests/models/fetch_models.sh): torchvision resnet18 and
# mobilenet_v2 (224x224, the cache's real astronaut image), PP-OCRv4 det (at 96x96, 2 samples)
# and PP-OCR mobile cls (48x192, 2 samples, ends in a softmax). For each, `hq run` of the
# compiled program at 1 and 2 threads and of the compiled archive writes the very bytes of
# `hq emulate --target quantized` on the same inputs (with HQ_EMULATE_KERNELS=reference; the
# default emulation, fast conv/dense kernels, is compared too as "emufast"). Models missing from the cache are skipped
# with a message (the test then checks what it has).
set -euo pipefail
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cache=${HQ_MODEL_CACHE:-$HQ_SOURCE_DIR/.cache/models}
: >"$tmp/names"
. "$HQ_SOURCE_DIR/tests/fixtures/deploy/compare.sh"

# check NAME ONNX NCHW-SHAPE|- INPUT.npy
check() {
    local name=$1 onnx=$2 shape=$3 input=$4
    local extra=()
    [ "$shape" != "-" ] && extra=(--tensor-shapes "$shape")
    "$HQ" parse "$onnx" -o "$tmp/$name.har" "${extra[@]}" >/dev/null
    "$HQ" optimize "$tmp/$name.har" -d "$input" -o "$tmp/${name}_q.har" >/dev/null
    compare "$name" "$input"
}

"$py" -c "
import numpy as np
r = np.random.RandomState(7)
np.save('$tmp/det.npy', r.rand(2, 96, 96, 3).astype(np.float32) * 2 - 1)
np.save('$tmp/cls.npy', r.rand(2, 48, 192, 3).astype(np.float32) * 2 - 1)"

if [ -f "$cache/torch/resnet18.onnx" ] && [ -f "$cache/torch/input_nhwc.npy" ]; then
    # the reference kernels of the emulator are slow under the sanitizers: resnet18 then skipped
    if ! ldd "$HQ" | grep -q libasan; then
        check resnet18 "$cache/torch/resnet18.onnx" - "$cache/torch/input_nhwc.npy"
    fi
    check mobilenet_v2 "$cache/torch/mobilenet_v2.onnx" - "$cache/torch/input_nhwc.npy"
else
    echo "deploy_bitexact_real: torch models not in $cache/torch (tests/models/make_torch_models.py): skipped"
fi
if [ -f "$cache/ocr/ch_PP-OCRv4_det_infer.onnx" ]; then
    check ppocr_det "$cache/ocr/ch_PP-OCRv4_det_infer.onnx" 1,3,96,96 "$tmp/det.npy"
    check ppocr_cls "$cache/ocr/ch_ppocr_mobile_v2.0_cls_infer.onnx" 1,3,48,192 "$tmp/cls.npy"
else
    echo "deploy_bitexact_real: OCR models not in $cache/ocr (tests/models/fetch_models.sh): skipped"
fi

"$py" - "$tmp" <<'PY'
import os
import sys
import numpy as np
sys.path.insert(0, os.environ["HQ_SOURCE_DIR"] + "/tests/fixtures/deploy")
import compare
tmp = sys.argv[1]
names = compare.names(tmp)
ok_all = True
for name in names:
    emu = np.load(tmp + "/" + name + "_emu.npz")
    differ = compare.differences(tmp, name)
    for lines in differ.values():
        print("\n".join(lines))
    ok = not differ
    print("%-14s %d output(s), %6d bytes: %s" % (name, len(emu.files),
          sum(emu[k].nbytes for k in emu.files),
          "bit-exact (1 thread, 2 threads, compiled .har, fast emulation)" if ok else "MISMATCH"))
    ok_all &= ok
print("deploy_bitexact_real: %d model(s) compared" % len(names))
sys.exit(0 if ok_all else 1)
PY
