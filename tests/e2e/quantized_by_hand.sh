#!/usr/bin/env bash
# docs/numerics.md is precise enough to recompute any output by hand: a tiny model (conv3x3+relu,
# conv1x1+sigmoid lookup table, ew_add, global average pool, dense) is quantized by `hq optimize`,
# run by `hq emulate --target quantized` with every layer tapped, and recomputed in int64 numpy
# from the archive's q.npz and the documented formulas only
# (tests/fixtures/optimize/numerics_by_hand.py); every tap must be equal bit for bit.
set -euo pipefail
py=/usr/bin/python3
by_hand="$HQ_SOURCE_DIR/tests/fixtures/optimize/numerics_by_hand.py"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$py" "$by_hand" make "$work"
"$HQ" parse "$work/tiny.onnx" -o "$work/t.har" >/dev/null
"$HQ" optimize "$work/t.har" -d "$work/data.npy" -o "$work/q.har" >/dev/null 2>&1
taps=()
for l in conv1 conv2 ew_add1 global_avg_pool1 dense1; do taps+=(--tap "$l"); done
"$HQ" emulate "$work/q.har" -d "$work/data.npy" --target quantized -o "$work/out.npz" "${taps[@]}"
"$py" "$by_hand" check "$work/q.har" "$work/data.npy" "$work/out.npz"
# the same on inputs that are exact rounding ties of the input quantization (both signs)
"$py" "$by_hand" ties "$work/q.har" "$work/data.npy" "$work/ties.npy"
"$HQ" emulate "$work/q.har" -d "$work/ties.npy" --target quantized -o "$work/ties.npz" "${taps[@]}"
"$py" "$by_hand" check "$work/q.har" "$work/ties.npy" "$work/ties.npz"
