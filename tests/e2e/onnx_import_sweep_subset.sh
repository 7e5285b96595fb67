#!/usr/bin/env bash
# A fast subset of the ONNX import sweep (bench/onnx_import_sweep.sh) in the test command: real
# torch exports and PaddleOCR's cls, each hq parse + hq emulate (native) against onnxruntime-node
# within 1e-4 of the output range, or refused where the sweep expects it with the reason it
# expects (YOLOv5's rank-5 decode with the cut at its heads, a bicubic resize). The cases, one per
# import path the sweep covers:
#   mobilenet_v2 at opsets 11 and 17 with a dynamic batch (torchvision classifier),
#   shufflenet_v2_x0_5 (channel shuffle) and mnasnet0_5,
#   nhwc_preprocess ((x / 255 - mean) / std before the permute) and nhwc_gray (C = 1 channels-last),
#   yolov8n_decode_cut (YOLOv8-style detector cut at its heads with --end-node-names),
#   resize_bilinear_x0_75 (a fractional F.interpolate scale, dynamic H and W),
#   ppocr_cls (a fixed PaddlePaddle export, --tensor-shapes),
#   yolov5n_decode and resize_bicubic_x2 (expected refusals).
# Exports are cached in ${HQ_MODEL_CACHE:-<repo>/.cache/models}/sweep (about 25 s on a warm
# cache, 55 s cold, on 2 busy cores). The sanitizer build runs hq about five times slower: there
# the subset keeps the cases on small inputs (the channels-last models, the resizes, the
# refusals, PaddleOCR's cls, mnasnet0_5), one of each import path but the detector cut and the
# larger classifiers.
# Fails when any case FAILs or when the sweep ran another number of cases than asked for.
# Skipped (exit 0 with a note) only when /usr/bin/python3 cannot import torch and torchvision or
# there is no node; onnxruntime-node and the PaddleOCR models come from tests/models/fetch_models.sh,
# whose failure fails the test.
set -euo pipefail
. "$HQ_SOURCE_DIR/tests/fixtures/onnx/e2e_prelude.sh"
need_python onnx_import_sweep_subset torch torchvision
need_node onnx_import_sweep_subset
fetch_node_modules
make_scratch

cases=(nhwc_preprocess_op13_static nhwc_gray_op17_dynamic resize_bilinear_x0_75_op17_dynamic_hw
    resize_bicubic_x2_op17_static yolov5n_decode_op13_static ppocr_cls mnasnet0_5_op11_static)
if grep -q 'HQ_SANITIZE:BOOL=ON' "$HQ_BUILD_DIR/CMakeCache.txt"; then
    echo "onnx_import_sweep_subset: sanitizer build: ${#cases[@]} cases on small inputs"
else
    cases+=(mobilenet_v2_op11_dynamic mobilenet_v2_op17_dynamic shufflenet_v2_x0_5_op13_static
        yolov8n_decode_cut_op13_dynamic)
fi
regex="^($(IFS='|'; echo "${cases[*]}"))\$"
set +e
HQ_NODE_MODULES=$modules "$HQ_SOURCE_DIR/bench/onnx_import_sweep.sh" --build "$(dirname "$HQ")" \
    --cases "$regex" --work "$tmp" >"$tmp/report.txt" 2>&1
rc=$?
set -e
cat "$tmp/report.txt"
[ $rc -eq 0 ] || { echo "FAIL the sweep exited $rc"; exit 1; }
ran=$(sed -n 's/^# \([0-9]*\) cases: .*/\1/p' "$tmp/report.txt")
[ "$ran" = "${#cases[@]}" ] || { echo "FAIL the sweep ran ${ran:-no} cases, not ${#cases[@]}"; exit 1; }
echo "onnx import sweep subset ok"
