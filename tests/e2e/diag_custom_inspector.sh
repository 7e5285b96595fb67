#!/usr/bin/env bash
# samples/custom_inspector builds out of tree against an installed hq (pkg-config --cflags --libs
# hq), with its Makefile and with its CMakeLists.txt, and the installed hq-diag runs it through
# --plugin-path; the installed hq-diag also finds the installed built-in inspectors relative to
# itself.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
cmake --install "$HQ_BUILD_DIR" --prefix "$prefix" >/dev/null
[ -e "$prefix/include/hq/inspector.h" ] || { echo "inspector.h not installed"; exit 1; }
[ -e "$prefix/share/man/man3/hq-inspector.3" ] || { echo "hq-inspector(3) not installed"; exit 1; }
libdir=$(dirname "$(find "$prefix" -name hq.pc | head -n1)")/..
export PKG_CONFIG_PATH="$libdir/pkgconfig" LD_LIBRARY_PATH="$libdir"
extra=""
grep -q 'HQ_SANITIZE:BOOL=ON' "$HQ_BUILD_DIR/CMakeCache.txt" && extra="-fsanitize=address,undefined"

cp -r "$HQ_SOURCE_DIR/samples/custom_inspector" "$work/mine"
make -C "$work/mine" CFLAGS="-O1 -g -Werror $extra" LDFLAGS="$extra" >/dev/null
[ -s "$work/mine/dead_channels.so" ] || { echo "make did not build dead_channels.so"; exit 1; }
cmake -S "$work/mine" -B "$work/mine/build" >/dev/null
cmake --build "$work/mine/build" >/dev/null
[ -s "$work/mine/build/dead_channels.so" ] || { echo "cmake did not build dead_channels.so"; exit 1; }
exported=$(nm -D --defined-only "$work/mine/dead_channels.so" | awk '$2 ~ /[TDBR]/ {print $3}' | grep -v '^_' || true)
[ "$exported" = "hq_inspector_entry" ] || { echo "the module exports: $exported"; exit 1; }

cd "$work"
diag="$prefix/bin/hq-diag"
"$diag" --plugin-path "$work/mine/dead_channels.so" --list-inspectors >list.txt
grep -q "^DeadChannels  *LOW  *output channels that never fire" list.txt || { cat list.txt; exit 1; }
# the built-in inspectors installed with hq are found relative to the installed hq-diag
for so in "$HQ_BUILD_DIR"/hq-inspectors/*.so; do
  [ -e "$so" ] || continue
  name=$(basename "$so")
  grep -q "/lib[^ ]*/hq/inspectors/$name)" list.txt || { echo "installed $name not listed"; cat list.txt; exit 1; }
done
set +e
"$diag" --plugin-path "$work/mine/build" --order DeadChannels --no-interactive --json out.json \
  -c 8 -d "$HQ_SOURCE_DIR/samples/tiny_calib.npy" "$HQ_SOURCE_DIR/samples/tiny.har" >out.txt 2>&1
rc=$?
set -e
cat out.txt
[ $rc -eq 0 ] || { echo "exit $rc"; exit 1; }
grep -qx "Module: DeadChannels" out.txt
/usr/bin/python3 - <<'PY'
import json
d = json.load(open("out.json"))
assert [x["status"] for x in d["inspectors"]] == ["ran"], d["inspectors"]
assert d["samples"] == 8
PY
grep -q "\[DeadChannels\] checked 3 layers with weights" hq-diag.log
echo "custom inspector built out of tree and ran"
