#!/usr/bin/env bash
# `hq emulate --target quantized` and `hq analyze-noise` on the bundled sample model: the quantized
# outputs are close to fp_optimized (SQNR), identical at 1 and 2 threads; analyze-noise stores
# snr and partial_snr for every layer (in place, or into -o leaving the input untouched); bad
# invocations fail with one line, exit 2, and write nothing.
set -euo pipefail
py=/usr/bin/python3
onnx="$HQ_SOURCE_DIR/samples/sample.onnx"
calib="$HQ_SOURCE_DIR/samples/sample_calib.npy"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$HQ" parse "$onnx" -o "$work/s.har" >/dev/null
"$HQ" optimize "$work/s.har" -d "$calib" -o "$work/q.har" >/dev/null
HQ_THREADS=1 "$HQ" emulate "$work/q.har" -d "$calib" --target quantized -o "$work/q.npz" --tap conv1
HQ_THREADS=2 "$HQ" emulate "$work/q.har" -d "$calib" --target quantized -o "$work/q2.npz" --tap conv1
"$HQ" emulate "$work/q.har" -d "$calib" --target quantized -o "$work/q3.npz" --tap conv1 -j 3 -b 5
"$HQ" emulate "$work/q.har" -d "$calib" --target fp_optimized -o "$work/f.npz"
cp "$work/q.har" "$work/q_before.har"
"$HQ" analyze-noise "$work/q.har" -d "$calib" -c 8 -o "$work/n.har" >"$work/table.txt"
grep -q '^conv1 ' "$work/table.txt"
cmp -s "$work/q.har" "$work/q_before.har" # -o leaves the input alone
"$HQ" analyze-noise "$work/q.har" -d "$calib" -c 4 --analyze-mode simple >/dev/null

"$py" - "$work" <<'EOF'
import io, sys, tarfile
import numpy as np

work = sys.argv[1]
q, q2, q3, f = (np.load(f"{work}/{n}.npz") for n in ("q", "q2", "q3", "f"))
key = [k for k in f.files if k.endswith("output_layer1")][0]
x, y = f[key].astype(np.float64), q[key].astype(np.float64)
sqnr = 10 * np.log10((x * x).sum() / ((x - y) ** 2).sum())
assert sqnr > 25, f"quantized output SQNR {sqnr:.1f} dB"
for other in (q2, q3):  # 1, 2 and 3 threads (and another batch size): the same bytes
    assert sorted(other.files) == sorted(q.files)
    for k in q.files:
        assert q[k].tobytes() == other[k].tobytes(), f"thread count changed the quantized {k}"
assert any(k.endswith("conv1") for k in q.files)

def qnpz(har):
    with tarfile.open(har) as tar:
        name = [m for m in tar.getnames() if m.endswith(".q.npz")][0]
        return dict(np.load(io.BytesIO(tar.extractfile(name).read())))

n = qnpz(f"{work}/n.har")
layers = {k.split("/")[1] for k in n if "/qp_scale:0" in k}
for l in layers:
    for what in ("snr", "partial_snr"):
        v = n[f"sample/{l}/layer_noise_analysis/{what}:0"]
        assert v.dtype == np.float32 and v.shape == (1,) and -200 <= v[0] <= 200, (l, what, v)
inplace = qnpz(f"{work}/q.har")
assert "sample/conv1/layer_noise_analysis/snr:0" in inplace
EOF

expect_fail() { # args...: exit 2, one line on stderr, no output file
  local rc=0
  "$HQ" analyze-noise "$@" -o "$work/bad.har" 2>"$work/err.txt" || rc=$?
  [ "$rc" -eq 2 ] || { echo "exit $rc for: $*"; exit 1; }
  [ "$(wc -l <"$work/err.txt")" -eq 1 ] || { cat "$work/err.txt"; exit 1; }
  [ ! -e "$work/bad.har" ] || { echo "wrote output for: $*"; exit 1; }
}
expect_fail "$work/q.har" -d "$calib" --analyze-mode bogus
expect_fail "$work/s.har" -d "$calib"          # not quantized
expect_fail "$work/q.har" -d "$work/missing.npy"
expect_fail "$work/q.har" -d "$calib" -c 0
grep -q "hq optimize" <("$HQ" analyze-noise "$work/s.har" -d "$calib" 2>&1 || true)
echo "quantized emulation and noise analysis OK"
