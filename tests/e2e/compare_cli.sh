#!/usr/bin/env bash
# `hq compare`: identical sets give inf dB and exit 0; a known-noise pair gives the SQNR, cosine,
# largest difference and argmax agreement numpy computes; --min-sqnr sets exit 1; --against
# emulates an archive in-process and equals `hq emulate -o` + compare; bad inputs (NaN, shapes,
# no common key, missing file) fail with one line and exit 2.
set -euo pipefail
py=/usr/bin/python3
har="$HQ_SOURCE_DIR/samples/tiny.har"
calib="$HQ_SOURCE_DIR/samples/tiny_calib.npy"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$py" - "$work" <<'EOF2'
import sys
import numpy as np
w = sys.argv[1]
rng = np.random.default_rng(7)
ref = rng.normal(size=(6, 10)).astype(np.float32)          # class vectors
seg = rng.uniform(size=(2, 8, 8, 1)).astype(np.float32)    # a probability map
noisy = ref + rng.normal(scale=0.3, size=ref.shape).astype(np.float32)
seg_noisy = np.clip(seg + rng.normal(scale=0.1, size=seg.shape), 0, 1).astype(np.float32)
np.savez(f"{w}/ref.npz", logits=ref, mask=seg)
np.savez(f"{w}/noisy.npz", logits=noisy, mask=seg_noisy, extra=ref)
np.save(f"{w}/ref.npy", ref)
np.save(f"{w}/noisy.npy", noisy)
bad = ref.copy(); bad[2, 3] = np.nan
np.savez(f"{w}/nan.npz", logits=bad, mask=seg)
np.savez(f"{w}/shape.npz", logits=ref[:3], mask=seg)
np.savez(f"{w}/other.npz", nothing=ref)
def stats(a, b):
    a = a.astype(np.float64); b = b.astype(np.float64)
    sqnr = 10 * np.log10((a * a).sum() / ((a - b) ** 2).sum())
    cos = (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum())
    return sqnr, cos, np.abs(a - b).max()
with open(f"{w}/expected.txt", "w") as f:
    s, c, m = stats(ref, noisy)
    agree = (ref.argmax(1) == noisy.argmax(1)).mean() * 100
    f.write(f"logits {s:.2f} {c:.6f} {m:.6g} {agree:.2f}%\n")
    s, c, m = stats(seg, seg_noisy)
    mask = ((seg > 0.5) == (seg_noisy > 0.5)).mean() * 100
    f.write(f"mask {s:.2f} {c:.6f} {m:.6g} {mask:.2f}%\n")
EOF2

# identical files: inf dB, cosine 1, exit 0 even with a demanding --min-sqnr
"$HQ" compare "$work/ref.npz" "$work/ref.npz" --min-sqnr 200 >"$work/same.txt"
grep -Eq '^logits +\(6, 10\) +inf +1\.000000 +0 +100\.00%' "$work/same.txt"
grep -q '^0 of 2 outputs below --min-sqnr 200.00 dB' "$work/same.txt"

# the known-noise pair: every figure equals numpy's (keys only in one file are skipped)
"$HQ" compare "$work/ref.npz" "$work/noisy.npz" --threshold 0.5 >"$work/noisy.txt"
read -r _ s c m a <<<"$(grep '^logits' "$work/expected.txt")"
grep -Eq "^logits +\(6, 10\) +$s +$c +$m +$a" "$work/noisy.txt" ||
  { echo "logits row differs from numpy ($s $c $m $a)"; cat "$work/noisy.txt"; exit 1; }
read -r _ s c m k <<<"$(grep '^mask' "$work/expected.txt")"
grep -Eq "^mask +\(2, 8, 8, 1\) +$s +$c +$m +- +$k" "$work/noisy.txt" ||
  { echo "mask row differs from numpy ($s $c $m $k)"; cat "$work/noisy.txt"; exit 1; }
if grep -q '^extra' "$work/noisy.txt"; then echo "the array only one side has was compared"; exit 1; fi

# lone .npy arrays pair with each other
"$HQ" compare "$work/ref.npy" "$work/noisy.npy" | grep -Eq "^array +\(6, 10\) +$(grep '^logits' "$work/expected.txt" | cut -d' ' -f2) "

# --min-sqnr: exit 1 below, 0 at or above
read -r _ s _ <<<"$(grep '^logits' "$work/expected.txt")"
rc=0; "$HQ" compare "$work/ref.npz" "$work/noisy.npz" --min-sqnr 60 >/dev/null || rc=$?
[ "$rc" -eq 1 ] || { echo "expected exit 1 below --min-sqnr, got $rc"; exit 1; }
"$HQ" compare "$work/ref.npz" "$work/noisy.npz" --min-sqnr -50 >/dev/null

# --against: the same numbers as hq emulate -o followed by a file comparison
"$HQ" emulate "$har" -d "$calib" --target native -o "$work/native.npz"
"$HQ" compare "$work/native.npz" --against "$har" -d "$calib" >"$work/against.txt"
grep -Eq '^tiny/output_layer1 +\(16, 10\) +inf ' "$work/against.txt"

expect_fail() {
  local rc=0
  "$HQ" compare "$@" 2>"$work/err.txt" >"$work/out.txt" || rc=$?
  [ "$rc" -eq 2 ] || { echo "expected exit 2, got $rc for: $*"; exit 1; }
  [ "$(wc -l <"$work/err.txt")" -eq 1 ] || { echo "expected one error line for: $*"; cat "$work/err.txt"; exit 1; }
}
expect_fail "$work/ref.npz" "$work/nan.npz"
grep -q "nan.npz: array 'logits' holds NaN at element 23" "$work/err.txt"
expect_fail "$work/ref.npz" "$work/shape.npz"
grep -q "shape.npz: array 'logits' has shape (3, 10)" "$work/err.txt"
expect_fail "$work/ref.npz" "$work/other.npz"
grep -q "no array name in common" "$work/err.txt"
expect_fail "$work/ref.npz" "$work/missing.npz"
expect_fail "$work/ref.npz" "$work/noisy.npz" --min-sqnr abc
expect_fail "$work/ref.npz" --against "$har" -d "$calib" --target bogus
expect_fail "$work/ref.npz" --against "$har" -d "$work/missing.npy"
echo "hq compare ok"
