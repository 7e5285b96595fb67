#!/usr/bin/env bash
# Regenerates the crafted-pattern fixtures of tests/e2e/onnx_patterns.sh: pattern_cases.py builds
# each small ONNX model with the onnx helper and a seeded input, onnxruntime-node 1.30.0 (CPU, one
# thread, via make_reference.js) computes its outputs, and tests/fixtures/onnx/patterns/ gets
# <case>.onnx and <case>.npz (input + outputs, NCHW). Needs npm access the first time
# (fetch_models.sh installs onnxruntime-node into the model cache).
#   tests/models/make_pattern_reference.sh            (run from anywhere)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
py=/usr/bin/python3
modules=$("$here/fetch_models.sh" | awk '$1 == "node_modules" { print $2 }')
out="$repo/tests/fixtures/onnx/patterns"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
rm -f "$out"/*.onnx "$out"/*.npz
"$py" "$here/pattern_cases.py" build "$tmp"
"$py" "$here/pattern_cases.py" list | while read -r case; do
    node "$here/make_reference.js" "$modules" "$tmp/$case.onnx" "$tmp/$case.input.npy" \
        "$tmp/$case.ref" >/dev/null
    "$py" "$here/pattern_cases.py" pack "$case" "$tmp/$case.input.npy" "$tmp/$case.ref" \
        "$out/$case.npz"
    cp "$tmp/$case.onnx" "$out/$case.onnx"
done
echo "wrote $(ls "$out"/*.onnx | wc -l) cases to $out"
