#!/usr/bin/env bash
# Regenerates the reference fixtures of the real-model test (tests/e2e/onnx_real_models.sh):
# onnxruntime-node 1.30.0 (CPU, one thread) runs PP-OCRv4 det, PP-OCR cls and PP-OCRv4 rec on the
# inputs that real_cases.py makes from skimage's images, and real_cases.py keeps a small summary of
# each output in tests/fixtures/onnx/real/<case>.npz. Needs npm access the first time
# (fetch_models.sh).
#   tests/models/make_reference.sh            (run from anywhere)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
py=/usr/bin/python3
paths=$("$here/fetch_models.sh")
model_path() { awk -v k="$1" '$1 == k { print $2 }' <<<"$paths"; }
modules=$(model_path node_modules)
out="$repo/tests/fixtures/onnx/real"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
"$py" "$here/real_cases.py" inputs "$tmp"
"$py" "$here/real_cases.py" list | while read -r case model shape; do
    node "$here/make_reference.js" "$modules" "$(model_path "$model")" "$tmp/$case.nchw.npy" \
        "$tmp/$case.ref" >/dev/null
    "$py" "$here/real_cases.py" summarize "$case" "$tmp/$case.ref.0.npy" "$out/$case.npz"
done
