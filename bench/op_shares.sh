#!/usr/bin/env bash
# op_shares.sh — per-op-kind shares of a compiled program's time in libhqrt, measured in each
# thread's CPU time: `hq run --stats` times ops on the monotonic clock, which on a loaded machine
# counts the time other processes hold the core. This builds bench/op_shares.c against the
# runtime's own sources (core/runtime/*.c of REPO) with the profiler's clock switched to
# CLOCK_THREAD_CPUTIME_ID (nothing else changes) and runs it.
#   usage: bench/op_shares.sh [--repo DIR] model.hqx... [-b BATCH] [-n RUNS] [-j THREADS] [--ops]
#   --repo: the tree whose runtime is measured (default: this one), to compare two trees.
# HQRT_NO_AMX=1 / HQRT_NO_VNNI=1 / HQRT_NO_FAST=1 choose the kernels as for hq run.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
repo=$here
if [ "${1:-}" = --repo ]; then repo=$(cd "$2" && pwd); shift 2; fi
[ $# -ge 1 ] || { sed -n '2,10p' "$0"; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$repo"/core/runtime/*.c "$repo"/core/runtime/*.h "$work/"
sed -i 's/clock_gettime(CLOCK_MONOTONIC, &ts)/clock_gettime(CLOCK_THREAD_CPUTIME_ID, \&ts)/' \
    "$work/hqrt_run.c"
grep -q CLOCK_THREAD_CPUTIME_ID "$work/hqrt_run.c" ||
    { echo "op_shares.sh: the profiler's clock call was not found in hqrt_run.c" >&2; exit 1; }
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -DHQRT_BUILDING_LIBRARY -I"$repo/include" -I"$work" \
    -Wno-psabi "$work"/*.c "$here/bench/op_shares.c" -lpthread -lm -o "$work/op_shares"
"$work/op_shares" "$@"
