#!/usr/bin/env bash
# Quantization quality of hq against torch FX PTQ on a digits CNN trained here (bench/quant_quality.py).
# Builds hq in release mode if needed and writes the table to bench/results/<date>-quant-quality.txt.
# Usage: bench/run_quant_quality.sh [BUILD_DIR]   (default: build/release; needs python3-torch,
# python3-sklearn, python3-skimage: .ci/install-deps.sh installs them)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
if [ ! -x "$build/hq" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" --target hq_cli >/dev/null
fi
mkdir -p "$root/bench/results"
out="$root/bench/results/$(date -u +%Y-%m-%d)-quant-quality.txt"
/usr/bin/python3 "$root/bench/quant_quality.py" --hq "$build/hq" | tee "$out.tmp"
status=${PIPESTATUS[0]}
mv "$out.tmp" "$out"
echo "bench: wrote $out" >&2
exit "$status"
