#!/usr/bin/env bash
# onnx_import_sweep.sh — imports what real exporters write and checks it against onnxruntime:
# torchvision classifiers x ONNX opsets 11/13/17 x static / dynamic batch / dynamic batch, H and
# W, F.interpolate forms and modules that compute with their input's shape, ConvNeXt-Tiny,
# YOLOv5/v8-style detectors (heads, decoded, cut), channels-last models and PaddleOCR det/cls/rec
# (bench/onnx_import_sweep.py has the list), each `hq parse` + `hq emulate` (native float) vs
# onnxruntime-node within 1e-4 of the output range, or hq's one-line refusal where the sweep
# expects one (EXPECTED_REFUSALS in the .py: any other refusal fails). Prints the machine, one line
# per case, a closing count and the refusals and failures with their reason; exit 1 when a case
# failed. tests/e2e/onnx_import_sweep_subset.sh runs a fast subset in the test command.
#
# usage: bench/onnx_import_sweep.sh [--build DIR] [--cases REGEX] [--out FILE] [--work DIR]
#   --build   a built tree with the hq CLI (default <repo>/build/dev)
#   --cases   only the cases whose name (e.g. resnet18_op13_dynamic) matches REGEX
#   --out     also write the report to FILE (e.g. bench/results/<date>-onnx-import-sweep.txt)
#   --work    where hq's archives and onnxruntime's references go (default: the cache's run/)
# Needs /usr/bin/python3 with torch and torchvision (models are exported into
# ${HQ_MODEL_CACHE:-<repo>/.cache/models}/sweep, git-ignored, kept between runs) and node with
# onnxruntime-node
# (found in HQ_NODE_MODULES, ${HQ_MODEL_CACHE}/node_modules, <repo>/.cache/models/node_modules,
# or fetched there by tests/models/fetch_models.sh).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$repo/build/dev"
cases=""
out=""
work=()
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; shift 2 ;;
    --cases) cases=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --work) work=(--work "$2"); shift 2 ;;
    *) echo "onnx_import_sweep.sh: unknown option '$1' (see the header of $0)" >&2; exit 2 ;;
    esac
done
hq="$build/hq"
[ -x "$hq" ] || { echo "onnx_import_sweep.sh: $hq: no hq CLI; build the tree first" >&2; exit 2; }
modules=${HQ_NODE_MODULES:-${HQ_MODEL_CACHE:-$repo/.cache/models}/node_modules}
if [ ! -d "$modules/onnxruntime-node" ]; then
    "$repo/tests/models/fetch_models.sh" >/dev/null
fi
[ -d "$modules/onnxruntime-node" ] ||
    { echo "onnx_import_sweep.sh: no onnxruntime-node under $modules" >&2; exit 2; }

report() { if [ -n "$out" ]; then tee -a "$out"; else cat; fi; }
[ -z "$out" ] || : >"$out"
{
    echo "# ONNX import sweep, $(date -u '+%Y-%m-%d %H:%M UTC'), hq $(git -C "$repo" rev-parse --short HEAD)"
    echo "# machine: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores, $(uname -sr)"
    echo "# torch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)'), torchvision $(/usr/bin/python3 -c 'import torchvision; print(torchvision.__version__)'), onnxruntime-node $(node -p "require('$modules/onnxruntime-node/package.json').version")"
    echo "# pass: max|hq - onnxruntime| <= 1e-4 * (max - min of the onnxruntime output); classifiers and mobile segmenters at 96x96, fcn_resnet50 at 256x256"
} | report
set +e
/usr/bin/python3 "$repo/bench/onnx_import_sweep.py" --hq "$hq" --node-modules "$modules" \
    --cases "$cases" "${work[@]}" | report
status=${PIPESTATUS[0]}
exit "$status"
