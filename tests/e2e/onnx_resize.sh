#!/usr/bin/env bash
# Torch exports of F.interpolate at ONNX opsets 11, 13 and 17 (Debian's torch, built in a temporary
# folder): nearest by a fractional factor (x1.7: output floor(in * 1.7), coordinates mapped with
# 1.7), bilinear by 0.75, nearest to a size, bilinear align_corners x2, and bilinear x2 exported
# with a dynamic height and width (the size arithmetic is folded with --tensor-shapes). Each
# `hq parse` + `hq emulate` (native) equals torch: |hq - torch| <= 1e-4 * range + 1e-6. Then the
# integer path: `hq optimize` of the x1.7 model is refused with one line naming the resize layer
# (the integer resize maps with output / input), exit 2, nothing written. Skipped (exit 0 with a
# note) only when /usr/bin/python3 cannot import torch.
set -euo pipefail
. "$HQ_SOURCE_DIR/tests/fixtures/onnx/e2e_prelude.sh"
need_python onnx_resize torch
make_scratch
cd "$tmp"
"$py" - <<'PY' 2>/dev/null
import warnings
import numpy as np
import torch

warnings.filterwarnings("ignore")
torch.manual_seed(20261207)
forms = {
    "nearest_x1_7": dict(mode="nearest", scale_factor=1.7),
    "bilinear_x0_75": dict(mode="bilinear", scale_factor=0.75, align_corners=False),
    "nearest_size": dict(mode="nearest", size=(13, 7)),
    "bilinear_align_x2": dict(mode="bilinear", scale_factor=2.0, align_corners=True),
    "bilinear_x2_dynamic": dict(mode="bilinear", scale_factor=2.0, align_corners=False),
}


class Resize(torch.nn.Module):
    def __init__(self, spec):
        super().__init__()
        self.spec = spec
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return torch.nn.functional.interpolate(self.conv(x), **self.spec)


x = torch.randn(2, 3, 10, 12)
for name, spec in forms.items():
    module = Resize(spec).eval()
    with torch.no_grad():
        y = module(x)
    for opset in (11, 13, 17):
        axes = {"x": {0: "n", 2: "h", 3: "w"}} if name.endswith("_dynamic") else {"x": {0: "n"}}
        torch.onnx.export(module, x, "%s_op%d.onnx" % (name, opset), opset_version=opset,
                          input_names=["x"], output_names=["y"], dynamic_axes=axes)
    np.save(name + ".input.npy", x.numpy().transpose(0, 2, 3, 1).copy())
    np.save(name + ".output.npy", y.numpy().transpose(0, 2, 3, 1).copy())
PY
status=0
fail() { echo "FAIL $*"; status=1; }
for form in nearest_x1_7 bilinear_x0_75 nearest_size bilinear_align_x2 bilinear_x2_dynamic; do
    for opset in 11 13 17; do
        m=${form}_op$opset
        shapes=()
        [[ $form == *_dynamic ]] && shapes=(--tensor-shapes 1,3,10,12)
        "$HQ" parse "$m.onnx" -o "$m.har" "${shapes[@]}" >/dev/null || { fail "$m: hq parse"; continue; }
        "$HQ" emulate "$m.har" -d "$form.input.npy" -o "$m.npz" >/dev/null
        "$py" - "$m.npz" "$form.output.npy" "$m" <<'PY' || status=1
import sys
import numpy as np
out = np.load(sys.argv[1])
got = out[out.files[0]].astype(np.float64)
ref = np.load(sys.argv[2]).astype(np.float64)
if got.shape != ref.shape:
    print("FAIL %s: hq output %s, torch %s" % (sys.argv[3], got.shape, ref.shape))
    sys.exit(1)
err = np.abs(got - ref).max()
bound = 1e-4 * (ref.max() - ref.min()) + 1e-6
print("%s: %s, max|hq - torch| %.3g, bound %.3g" % (sys.argv[3], got.shape, err, bound))
sys.exit(0 if err <= bound else 1)
PY
    done
done

# the integer resize maps with output / input: the x1.7 scale is refused, naming the layer
set +e
"$HQ" optimize nearest_x1_7_op13.har -d nearest_x1_7.input.npy -o q.har >/dev/null 2>opt.err
rc=$?
set -e
want="nearest_x1_7_op13.har: layer 'nearest_x1_7_op13/resize1': resize by a scale that is not output / input (a fractional output size from ONNX scales) has no integer form; export the model with sizes instead of scales"
if [ "$rc" != 2 ] || [ "$(grep -c . opt.err)" != 1 ] || ! grep -qF "$want" opt.err || [ -e q.har ]; then
    fail "hq optimize of a fractional-scale resize: exit $rc, '$(cat opt.err)'"
fi
exit $status
