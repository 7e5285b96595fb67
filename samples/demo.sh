#!/usr/bin/env bash
# The main job on a fresh Debian machine (README's first command): installs the missing Debian
# packages (.ci/install-deps.sh), builds hq (Release, -j2), then runs the whole product on the
# bundled sample (samples/README.md) in a scratch folder, build/demo/:
#
#   hq parse sample.onnx                     -> sample.har            (float model)
#   hq optimize -m sample.alls -d calib.npy  -> sample_quantized.har  (quantized model)
#   hq-diag --no-interactive -d calib.npy    -> findings, diagnostic_sample.alls, report.html
#
# The sample ships with a seeded normalization mistake, so hq-diag reports error- and
# warning-level findings: its exit status 1 ("error-level findings") is the expected result, and
# this script then exits 0. It fails (non-zero) only when a step could not run.
#
# usage: samples/demo.sh [--no-build] [--out DIR]
#   --no-build  skip install and build; use $HQ and $HQ_DIAG (or build/release/) — the e2e test
#               tests/e2e/demo_pipeline.sh runs the demo this way
#   --out DIR   the scratch folder (default build/demo; emptied first when demo.sh made it)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir="$root/build/release"
out="$root/build/demo"
build=1
while [ $# -gt 0 ]; do
  case $1 in
    --no-build) build=0 ;;
    --out) [ $# -ge 2 ] || { echo "demo.sh: --out needs a folder" >&2; exit 2; }; out=$2; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ $build -eq 1 ]; then
  echo "== installing missing Debian packages (.ci/install-deps.sh)"
  "$root/.ci/install-deps.sh"
  echo "== building hq (Release, -j2) in $build_dir"
  mkdir -p "$build_dir"
  if ! { cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release &&
         cmake --build "$build_dir" -j2; } >"$build_dir/demo-build.log" 2>&1; then
    tail -n 30 "$build_dir/demo-build.log" >&2
    echo "demo.sh: the build failed; full log in $build_dir/demo-build.log" >&2
    exit 2
  fi
fi
hq=${HQ:-$build_dir/hq}
hq_diag=${HQ_DIAG:-$build_dir/hq-diag}
for tool in "$hq" "$hq_diag"; do
  [ -x "$tool" ] || { echo "demo.sh: $tool is not built (run without --no-build)" >&2; exit 2; }
done

samples="$root/samples"
case $out in /*) ;; *) out="$PWD/$out" ;; esac
# the scratch folder is emptied first: only one this script made (it holds .hq-demo), or an
# empty or missing one
if [ -d "$out" ] && [ -n "$(ls -A "$out")" ] && [ ! -e "$out/.hq-demo" ]; then
  echo "demo.sh: $out is not empty and was not made by demo.sh; choose another --out" >&2
  exit 2
fi
rm -rf "$out"
mkdir -p "$out"
touch "$out/.hq-demo"
cd "$out"
step() { # prints the command as a user would type it, then runs it
  local shown=("${@:2}")
  echo
  echo "\$ $(basename "$1") ${shown[*]}" | sed "s#$root/##g"
  "$@"
}

step "$hq" parse "$samples/sample.onnx" -o sample.har
step "$hq" optimize sample.har -m "$samples/sample.alls" -d "$samples/sample_calib.npy" \
  -o sample_quantized.har
set +e
step "$hq_diag" --no-interactive -d "$samples/sample_calib.npy" --json findings.json \
  --report report.html sample_quantized.har
rc=$?
set -e
if [ $rc -ne 0 ] && [ $rc -ne 1 ]; then
  echo "demo.sh: hq-diag could not run (exit $rc)" >&2
  exit $rc
fi

shown=${out#"$root/"}
echo
if [ -e diagnostic_sample.alls ]; then
  echo "demo: accepted script in $shown/diagnostic_sample.alls (for hq optimize -m), report in" \
       "$shown/report.html (findings.json and hq-diag.log there too)"
else
  echo "demo: no recommendation accepted, no script written; report in $shown/report.html" \
       "(findings.json and hq-diag.log there too)"
fi
exit 0
