#!/usr/bin/env bash
# ConvNeXt-Tiny (torchvision 0.14, random weights with visible layer scales and LayerNorm
# affines, 64x64 input; tests/models/make_convnext.py, cached in the model cache) exported at
# opset 13 (LayerNorm decomposed) and 17 (LayerNormalization): hq parse gives the same 85 layers
# for both (23 layer_norm, 18 dw, 40 conv, 1 dense: no transpose, reshape, const_input or ew_*
# layer is left of the permuted blocks), and hq emulate (native) matches onnxruntime-node within
# 1e-4 of max|ref| (torch's own output when tests/models/fetch_models.sh cannot provide
# onnxruntime-node). The opset-17
# archive quantized by hq optimize (the defaults, implicit 4-bit compression of the largest layers
# included, but no weights-clipping search and no finetune) runs bit for bit the same in quantized emulation
# (reference and default kernels) and as a compiled program (hq run, 2 threads); the output SQNR
# against the float reference is printed (measured 13.1 dB: random weights through 18 residual
# blocks, most weights at 4 bits; not asserted beyond 5 dB). Skipped (exit 0 with a note) only when
# /usr/bin/python3 cannot import torch and torchvision.
set -euo pipefail
. "$HQ_SOURCE_DIR/tests/fixtures/onnx/e2e_prelude.sh"
need_python onnx_convnext torch torchvision
make_scratch
dir=$("$py" "$HQ_SOURCE_DIR/tests/models/make_convnext.py" 2>/dev/null | tail -n1)
status=0
fail() { echo "FAIL $*"; status=1; }
ref="$dir/torch_output.npy"
reflabel=torch
# onnxruntime-node comes from the model cache through fetch_models.sh, which waits while another
# test is installing it; without npm or the registry torch's own output is the reference
modules=$("$HQ_SOURCE_DIR/tests/models/fetch_models.sh" 2>/dev/null | awk -F'\t' '$1 == "node_modules" { print $2 }') ||
    modules=
if [ -n "$modules" ] && command -v node >/dev/null; then
    node "$HQ_SOURCE_DIR/tests/models/make_reference.js" "$modules" \
        "$dir/convnext_tiny_op17.onnx" "$dir/input_nchw.npy" "$tmp/ort" >/dev/null
    ref="$tmp/ort.0.npy"
    reflabel=onnxruntime
else
    echo "onnx_convnext: onnxruntime-node not available (tests/models/fetch_models.sh failed): torch's output is the reference"
fi
for op in 13 17; do
    m=convnext_tiny_op$op
    "$HQ" parse "$dir/$m.onnx" -o "$tmp/$m.har" >/dev/null || { fail "$m: hq parse"; continue; }
    "$HQ" info "$tmp/$m.har" >"$tmp/$m.info"
    for w in layer_norm=23 dw=18 conv=40 dense=1 transpose=0 reshape=0 const_input=0 ew_add=0 \
        ew_mult=0; do
        got=$(awk -v t="${w%=*}" -v p="$m/" 'index($1, p) == 1 && $2 == t' "$tmp/$m.info" | wc -l)
        [ "$got" = "${w#*=}" ] || fail "$m: $got ${w%=*} layers, not ${w#*=}"
    done
    "$HQ" emulate "$tmp/$m.har" -d "$dir/input_nhwc.npy" -o "$tmp/$m.npz" >/dev/null
    "$py" - "$tmp/$m.npz" "$ref" "$m vs $reflabel" <<'PY' || status=1
import sys
import numpy as np
out = np.load(sys.argv[1])
got = out[out.files[0]].astype(np.float64)
ref = np.load(sys.argv[2]).astype(np.float64)
if got.shape != ref.shape:
    print("FAIL %s: hq output %s, reference %s" % (sys.argv[3], got.shape, ref.shape))
    sys.exit(1)
err = np.abs(got - ref).max()
print("%s: max|hq - ref| %.3g, max|ref| %.4g, relative %.3g" % (
    sys.argv[3], err, np.abs(ref).max(), err / np.abs(ref).max()))
sys.exit(0 if err <= 1e-4 * np.abs(ref).max() else 1)
PY
done

m=convnext_tiny_op17
# the defaults but the weights-clipping search and finetune: on the 21 layers that implicit
# compression puts at 4 bit (22 M weights) they are most of this test's time under ASan (finetune
# trains each of those layers: 15 of the 19 s of hq optimize in Release; tests/unit/test_ranges.c,
# test_finetune.c and optimize_finetune.sh cover them); the 4-bit kernels, implicit compression
# and iterative bias correction stay in
cat >"$tmp/noclip.alls" <<'ALLS'
pre_quantization_optimization(weights_clipping, layers={*}, mode=disabled)
post_quantization_optimization(finetune, policy=disabled)
ALLS
"$HQ" optimize "$tmp/$m.har" -d "$dir/calib_nhwc.npy" -m "$tmp/noclip.alls" -o "$tmp/q.har" \
    --no-noise-analysis \
    >/dev/null 2>&1 || fail "$m: hq optimize"
"$HQ" compile "$tmp/q.har" -o "$tmp/q.hqx" >/dev/null || fail "$m: hq compile"
HQ_EMULATE_KERNELS=reference "$HQ" emulate "$tmp/q.har" --target quantized \
    -d "$dir/input_nhwc.npy" -o "$tmp/emu.npz" >/dev/null
"$HQ" emulate "$tmp/q.har" --target quantized -d "$dir/input_nhwc.npy" -o "$tmp/emufast.npz" \
    >/dev/null
"$HQ" run "$tmp/q.hqx" -d "$dir/input_nhwc.npy" -o "$tmp/run.npz" -j 2 >/dev/null
"$py" - "$tmp" "$ref" <<'PY' || status=1
import sys
import numpy as np
tmp, ref = sys.argv[1], np.load(sys.argv[2]).astype(np.float64)
emu = np.load(tmp + "/emu.npz")
ok = True
for label in ("emufast", "run"):
    got = np.load(tmp + "/%s.npz" % label)
    same = all(got[k].dtype == emu[k].dtype and got[k].tobytes() == emu[k].tobytes()
               for k in emu.files)
    print("convnext a8_w8: %s %s quantized emulation" % (label, "equals" if same else "DIFFERS FROM"))
    ok &= same
q = emu[emu.files[0]].astype(np.float64)
sqnr = 10 * np.log10((ref ** 2).sum() / ((ref - q) ** 2).sum())
print("convnext a8_w8: output SQNR against float %.1f dB, top-1 agreement %d/%d" % (
    sqnr, (q.argmax(1) == ref.argmax(1)).sum(), len(q)))
sys.exit(0 if ok and sqnr > 5 else 1)
PY
exit $status
