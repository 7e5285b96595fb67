#!/usr/bin/env bash
# numpy <-> hq round trip for .npy and .npz: numpy writes every dtype, both orders and byte orders,
# header versions 1-3, savez, savez_compressed and zip64 archives; hq (test_npz, in its round-trip
# mode) reads them, compares with the raw bytes numpy expects, refuses what it must, and writes
# everything back; numpy then checks what hq wrote (np.array_equal, and byte-identical .npy).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source_dir=${HQ_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
build_dir=${HQ_BUILD_DIR:?HQ_BUILD_DIR must point at the build folder}
python=/usr/bin/python3
helper="$source_dir/tests/e2e/numpy_roundtrip.py"
test_bin="$build_dir/tests/test_npz"
[ -x "$test_bin" ] || { echo "missing $test_bin (build the test_npz target)"; exit 1; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

"$python" "$helper" gen "$dir"
HQ_ROUNDTRIP_DIR="$dir" CMOCKA_TEST_ABORT=0 "$test_bin"
"$python" "$helper" check "$dir"
