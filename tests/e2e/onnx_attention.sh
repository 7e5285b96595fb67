#!/usr/bin/env bash
# Attention between computed tensors: a torch module computing softmax(y y^T / 3) y per head (y a
# conv's [N, 4 heads, 6, 6] output), exported by Debian's torch at opset 13 at test time. hq parse
# makes both products matmul layers and hq emulate (native) equals torch within
# 1e-4 * max|torch| + 1e-5. matmul has no integer form yet: hq optimize refuses it before any
# work with one line naming the layer, exit 2 and writes nothing (hq compile and quantized
# emulation, which lower each layer, refuse it the same way: tests/unit/test_lower.c). Skipped (exit 0 with a note) only when /usr/bin/python3 cannot import torch.
set -euo pipefail
. "$HQ_SOURCE_DIR/tests/fixtures/onnx/e2e_prelude.sh"
need_python onnx_attention torch
make_scratch
cd "$tmp"
"$py" - <<'PY' 2>/dev/null
import numpy as np
import torch


class Attention(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.out = torch.nn.Conv2d(4, 4, 1)

    def forward(self, x):
        y = self.qkv(x)
        a = torch.softmax(y @ y.transpose(-1, -2) / 3.0, dim=-1)
        return self.out(a @ y)


torch.manual_seed(20261207)
m = Attention().eval()
x = torch.randn(3, 3, 6, 6)
torch.onnx.export(m, x[:1], "att.onnx", opset_version=13, input_names=["x"],
                  dynamic_axes={"x": {0: "n"}})
np.save("att_in.npy", x.permute(0, 2, 3, 1).contiguous().numpy())
with torch.no_grad():
    np.save("att_ref.npy", m(x).permute(0, 2, 3, 1).contiguous().numpy())
PY
status=0
fail() { echo "FAIL $*"; status=1; }
"$HQ" parse att.onnx -o att.har >/dev/null
got=$("$HQ" info att.har | awk '$2 == "matmul"' | wc -l)
[ "$got" = 2 ] || fail "$got matmul layers, not 2"
"$HQ" emulate att.har -d att_in.npy -o att.npz >/dev/null
"$py" - <<'PY' || status=1
import numpy as np
out = np.load("att.npz")
got = out[out.files[0]].astype(np.float64)
ref = np.load("att_ref.npy").astype(np.float64)
err = np.abs(got - ref).max()
bound = 1e-4 * np.abs(ref).max() + 1e-5
print("attention: max|hq - torch| %.3g, bound %.3g" % (err, bound))
raise SystemExit(0 if got.shape == ref.shape and err <= bound else 1)
PY
rc=0
"$HQ" optimize att.har -d att_in.npy -o att_q.har --no-noise-analysis >/dev/null 2>err.txt || rc=$?
[ "$rc" = 2 ] || fail "hq optimize: exit $rc, not 2"
[ "$(wc -l <err.txt)" = 1 ] && grep -q "att/matmul1" err.txt && grep -q "no integer form" err.txt ||
    fail "hq optimize: not one line naming the matmul: $(cat err.txt)"
echo "hq optimize: $(cat err.txt)"
[ ! -e att_q.har ] || fail "the refused hq optimize wrote att_q.har"
exit $status
