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
grep -q "node '/head/NonMaxSuppression' (NonMaxSuppression) is not supported; cut the graph before it with --end-node-names mp" err.txt
test ! -e head.har
ls -A | grep -qv -e '^conv.har$' -e '^out.txt$' -e '^err.txt$' && { echo "stray files: $(ls -A)"; exit 1; }

"$HQ" parse "$fix/nms_head.onnx" -o head.har --end-node-names mp >/dev/null
"$HQ" info head.har | grep -q "maxpool1"

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
