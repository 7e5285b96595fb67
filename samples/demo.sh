#!/usr/bin/env bash
# The main job on a fresh machine: installs what is missing, builds hq, and runs it on the
# bundled sample archive and calibration set.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/.ci/install-deps.sh"
cmake -S "$root" -B "$root/build/release" >/dev/null
cmake --build "$root/build/release" -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
bin="$root/build/release"
set -x
"$bin/hq" info "$root/samples/tiny.har"
"$bin/hq-diag" -d "$root/samples/tiny_calib.npy" "$root/samples/tiny.har"
