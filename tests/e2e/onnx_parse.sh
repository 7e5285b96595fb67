#!/usr/bin/env bash
# hq parse: writes an archive on success, exits 2 with one line naming the node on an
# unsupported op, and leaves nothing behind when it fails; --end-node-names cuts the head off.
set -euo pipefail
fix="$HQ_SOURCE_DIR/tests/fixtures/onnx"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

"$HQ" parse "$fix/conv.onnx" -o conv.har --net-name tiny >out.txt
grep -q "wrote conv.har (tiny" out.txt
"$HQ" info conv.har | grep -q "tiny/conv1 *conv"
"$HQ" info conv.har | grep -q "state: *parsed_model"

# default output name: <net>.har
"$HQ" parse "$fix/conv.onnx" >/dev/null
test -f conv.har

set +e
"$HQ" parse "$fix/nms_head.onnx" -o head.har 2>err.txt
rc=$?
set -e
test $rc -eq 2
test "$(wc -l <err.txt)" -eq 1
grep -q "node '/head/NonMaxSuppression' (NonMaxSuppression) is post-processing hq cannot convert; cut before it with --end-node-names mp$" err.txt
test ! -e head.har
ls -A | grep -qv -e '^conv.har$' -e '^out.txt$' -e '^err.txt$' && { echo "stray files: $(ls -A)"; exit 1; }

"$HQ" parse "$fix/nms_head.onnx" -o head.har --end-node-names mp >/dev/null
"$HQ" info head.har | grep -q "maxpool1"

# both cuts, a network name and a target: only the maxpool is left, its input is the relu's output
"$HQ" parse "$fix/nms_head.onnx" -o mid.har --start-node-names mp --end-node-names mp \
    --net-name mid --hw-arch hailo8l >/dev/null
"$HQ" info mid.har >info.txt
grep -q "^hw_arch: *hailo8l" info.txt
grep -q "^inputs: *mid/input_layer1$" info.txt
grep -q "^3 layers" info.txt
grep -q "mid/maxpool1 *maxpool" info.txt
rm -f mid.har info.txt
set +e
"$HQ" parse "$fix/conv.onnx" -o arch.har --hw-arch hailo9 2>err.txt
rc=$?
set -e
test $rc -eq 2
test "$(wc -l <err.txt)" -eq 1
grep -q "conv.onnx: --hw-arch: unknown hw_arch 'hailo9' (known: hailo8," err.txt
test ! -e arch.har

# a model written after a list option is read as a node name: one line saying so, exit 2
set +e
"$HQ" parse --end-node-names mp "$fix/nms_head.onnx" 2>err.txt
rc=$?
set -e
test $rc -eq 2
test "$(wc -l <err.txt)" -eq 1
grep -q "no model.onnx given (a list option takes every word up to the next option" err.txt

# truncated file: one line, exit 2
head -c 40 "$fix/conv.onnx" >trunc.onnx
set +e
"$HQ" parse trunc.onnx -o t.har 2>err.txt
rc=$?
set -e
test $rc -eq 2
grep -q "trunc.onnx: not a valid ONNX model" err.txt
test ! -e t.har
echo "hq parse e2e ok"
