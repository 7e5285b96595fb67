#!/usr/bin/env bash
# The whole test suite: installs missing dependencies, then builds and runs every test twice —
# a warnings-as-errors build and an ASan+UBSan build — and replays every fuzz corpus through
# its libFuzzer target. Prints "N passed, N failed" last.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)

"$root/.ci/install-deps.sh"

passed=0
failed=0
run_suite() {  # $1 = build folder, rest = cmake options
  local build=$1; shift
  cmake -S "$root" -B "$build" -DHQ_WERROR=ON "$@" >/dev/null
  cmake --build "$build" -j"$jobs" >/dev/null
  local log="$build/ctest.log" rc=0
  (cd "$build" && ctest --output-on-failure -j"$jobs") | tee "$log" || rc=$?
  local line total nfail
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n1 || true)
  total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
  nfail=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
  if [ -z "$line" ]; then total=1; nfail=1; fi
  passed=$((passed + total - nfail))
  failed=$((failed + nfail))
  [ $rc -eq 0 ] || [ "$nfail" -gt 0 ] || failed=$((failed + 1))
}

echo "== default build (-O2 -Werror)"
run_suite "$root/build/test"
echo "== sanitizer build (ASan + UBSan)"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  run_suite "$root/build/test-sanitize" -DHQ_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug

echo "== fuzz corpus replay (clang libFuzzer)"
fuzz_build="$root/build/test-fuzz"
CC=clang cmake -S "$root" -B "$fuzz_build" -DHQ_FUZZ=ON -DHQ_WERROR=ON >/dev/null
# the fuzz targets and the static library they link, not the tools nor the inspector modules
cmake --build "$fuzz_build" --target hq_fuzzers -j"$jobs" >/dev/null
for corpus in "$root"/tests/fuzz/corpus/*/; do
  name=$(basename "$corpus")
  target="$fuzz_build/tests/fuzz/fuzz_$name"
  if [ ! -x "$target" ]; then
    echo "fuzz_$name: no target for corpus $corpus"; failed=$((failed + 1)); continue
  fi
  if "$target" -runs=0 "$corpus" >"$fuzz_build/replay_$name.log" 2>&1; then
    echo "fuzz_$name: corpus of $(find "$corpus" -type f | wc -l) inputs replayed clean"
    passed=$((passed + 1))
  else
    echo "fuzz_$name: FAILED on its corpus (see $fuzz_build/replay_$name.log)"
    tail -n 20 "$fuzz_build/replay_$name.log"
    failed=$((failed + 1))
  fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
