#!/usr/bin/env bash
# torchvision resnet18 and mobilenet_v2 (random weights, real BatchNorm statistics), exported by
# Debian's torch with tests/models/make_torch_models.py: hq parse + hq emulate (native) must match
# torch's logits within |hq - ref| <= 1e-4 * max|ref| + 1e-5. Skipped (exit 0 with a note) only
# when /usr/bin/python3 cannot import torch.
set -euo pipefail
. "$HQ_SOURCE_DIR/tests/fixtures/onnx/e2e_prelude.sh"
need_python onnx_torch_models torch torchvision
make_scratch
paths=$("$py" "$HQ_SOURCE_DIR/tests/models/make_torch_models.py")
dir=$(dirname "$(head -n1 <<<"$paths")")
status=0
for m in resnet18 mobilenet_v2; do
    "$HQ" parse "$dir/$m.onnx" -o "$tmp/$m.har" >/dev/null
    "$HQ" emulate "$tmp/$m.har" -d "$dir/input_nhwc.npy" -o "$tmp/$m.npz" >/dev/null
    "$py" - "$tmp/$m.npz" "$dir/${m}_output.npy" "$m" <<'PY' || status=1
import sys
import numpy as np
out = np.load(sys.argv[1])
got = out[list(out.keys())[0]].astype(np.float64)
ref = np.load(sys.argv[2]).astype(np.float64)
assert got.shape == ref.shape, (got.shape, ref.shape)
err = np.abs(got - ref).max()
bound = 1e-4 * np.abs(ref).max() + 1e-5
print("%s: max|hq - torch| %.3g, max|ref| %.4g, bound %.3g, top-1 %s" % (
    sys.argv[3], err, np.abs(ref).max(), bound,
    "same" if got.argmax() == ref.argmax() else "DIFFERENT"))
sys.exit(0 if err <= bound else 1)
PY
done
exit $status
