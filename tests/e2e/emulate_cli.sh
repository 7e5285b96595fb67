#!/usr/bin/env bash
# `hq emulate` on the bundled tiny network equals a numpy re-implementation of it (read straight
# from the archive with tarfile + np.load) within 1e-5; the batch size does not change the result;
# taps are saved under their scoped names; bad invocations fail with one line, exit 2, no file.
set -euo pipefail
py=/usr/bin/python3
har="$HQ_SOURCE_DIR/samples/tiny.har"
calib="$HQ_SOURCE_DIR/samples/tiny_calib.npy"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$HQ" emulate "$har" -d "$calib" -o "$work/b8.npz" --tap conv1 --tap tiny/fc1
"$HQ" emulate "$har" -d "$calib" -o "$work/b3.npz" -b 3
"$HQ" emulate "$har" -d "$calib" -b 5 >"$work/summary.txt"
grep -q '^tiny/output_layer1 .*shape (16,10)' "$work/summary.txt"

"$py" - "$har" "$calib" "$work" <<'EOF'
import io, sys, tarfile
import numpy as np

har, calib, work = sys.argv[1:4]
with tarfile.open(har) as tar:
    p = dict(np.load(io.BytesIO(tar.extractfile("tiny.npz").read())))
x = np.load(calib).astype(np.float64)

def conv_same3(x, k, b):  # 3x3, stride 1, pads 1, NHWC, weights [kh, kw, cin, cout]
    n, h, w, _ = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((n, h, w, k.shape[3]))
    for ky in range(3):
        for kx in range(3):
            out += np.einsum("nhwc,co->nhwo", xp[:, ky:ky + h, kx:kx + w, :], k[ky, kx])
    return out + b

conv1 = np.maximum(conv_same3(x, p["tiny/conv1/kernel:0"], p["tiny/conv1/bias:0"]), 0)
n, h, w, c = conv1.shape
pool = conv1.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
conv2 = np.maximum(conv_same3(pool, p["tiny/conv2/kernel:0"], p["tiny/conv2/bias:0"]), 0)
gap = conv2.mean(axis=(1, 2))
logits = gap @ p["tiny/fc1/kernel:0"] + p["tiny/fc1/bias:0"]

b8 = np.load(f"{work}/b8.npz")
b3 = np.load(f"{work}/b3.npz")
assert sorted(b8.files) == ["tiny/conv1", "tiny/fc1", "tiny/output_layer1"], b8.files
assert sorted(b3.files) == ["tiny/output_layer1"], b3.files
got = b8["tiny/output_layer1"]
assert got.shape == (16, 10) and got.dtype == np.float32, (got.shape, got.dtype)
scale = 1.0 + np.abs(logits)
err = np.max(np.abs(got - logits) / scale)
assert err <= 1e-5, f"output differs from numpy by {err} (relative)"
# conv1 sums 27 products of pixels up to 255 in float (the fast kernels, docs/kernels.md): an
# error of a few 1e-5 on outputs near 0.5 is float rounding, inside the 1e-4 import tolerance
assert np.max(np.abs(b8["tiny/conv1"] - conv1) / (1 + np.abs(conv1))) <= 1e-4
assert b8["tiny/conv1"].shape == (16, 16, 16, 8)
assert np.array_equal(b8["tiny/fc1"], got)
assert np.array_equal(b3["tiny/output_layer1"], got), "batch size changed the result"
print(f"hq emulate matches numpy (max relative error {err:.2e})")
EOF

# failures: one line on stderr, exit 2, nothing written
expect_fail() {
  local out="$work/fail.npz" rc=0
  "$HQ" emulate "$@" -o "$out" 2>"$work/err.txt" >/dev/null || rc=$?
  [ "$rc" -eq 2 ] || { echo "expected exit 2, got $rc for: $*"; exit 1; }
  [ "$(wc -l <"$work/err.txt")" -eq 1 ] || { echo "expected one error line for: $*"; cat "$work/err.txt"; exit 1; }
  [ ! -e "$out" ] || { echo "output written despite failure: $*"; exit 1; }
}
expect_fail "$har" -d "$calib" --target fp_optimized
grep -q 'fpo.npz' "$work/err.txt"
expect_fail "$har" -d "$calib" --tap no_such_layer
grep -q "no_such_layer" "$work/err.txt"
expect_fail "$har" -d "$calib" --target bogus
expect_fail "$har" -d "$calib" -b 0
expect_fail "$har" -d "$work/missing.npy"
expect_fail "$work/missing.har" -d "$calib"
"$py" -c "import numpy as np; np.save('$work/wrong.npy', np.zeros((2, 8, 8, 3), np.float32))"
expect_fail "$har" -d "$work/wrong.npy"
echo "hq emulate e2e passed"
