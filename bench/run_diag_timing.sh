#!/usr/bin/env bash
# run_diag_timing.sh — what a diagnosis costs against the passes it is made of, on PP-OCRv4 det
# 320x320 quantized a8_w8 with its 64 real calibration photos (the work folder of
# bench/ocr_quant_quality.py: det_a8.har and calib.npy; made here when missing).
# Prints the machine, then per command the median of RUNS runs of its process CPU time
# (user + sys: what the command costs, whatever else the machine runs) and of its wall clock:
#   float pass       hq emulate det_a8.har -d calib.npy --target native
#   quantized pass   hq emulate det_a8.har -d calib.npy --target quantized
#   hq-diag          hq-diag -d calib.npy -c 64 --no-interactive det_a8.har (every inspector)
#   analyze-noise    hq analyze-noise det_a8.har -d calib.npy --analyze-mode advanced (one run;
#                    --skip-advanced leaves it out: it takes minutes)
# and the ratio hq-diag / (float pass + quantized pass), which the diagnosis is meant to keep
# within 3.
#
# usage: bench/run_diag_timing.sh [--build DIR] [--work DIR] [--runs N] [--threads N]
#                                 [--skip-advanced] [--out FILE]
#   defaults: --build <repo>/build/rel, --work <repo>/.cache/models/ocr-quant-work, --runs 3,
#   --threads 2. Needs what bench/ocr_quant_quality.py needs to make the work folder (npm for the
#   model, python3-torch, skimage/opencv-doc/darknet photos); neither GNU time nor bc is
#   needed: times come from bash's `times` of a subshell, arithmetic from awk.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$repo/build/rel"
work="${HQ_MODEL_CACHE:-$repo/.cache/models}/ocr-quant-work"
runs=3
threads=2
advanced=1
out=""
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --skip-advanced) advanced=0; shift ;;
    --out) out=$2; shift 2 ;;
    *) echo "run_diag_timing.sh: unknown option '$1' (see the header of $0)" >&2; exit 2 ;;
    esac
done
hq="$build/hq"
diag="$build/hq-diag"
for b in "$hq" "$diag"; do
    [ -x "$b" ] || { echo "run_diag_timing.sh: $b not built (cmake --build $build)" >&2; exit 2; }
done
if [ ! -s "$work/det_a8.har" ] || [ ! -s "$work/calib.npy" ]; then
    echo "run_diag_timing.sh: making $work with bench/ocr_quant_quality.py (minutes)" >&2
    mkdir -p "$work"
    /usr/bin/python3 "$repo/bench/ocr_quant_quality.py" --hq "$hq" --skip-torch --repeat 1 \
        --a16-layers 0 --threads "$threads" --work "$work" >"$work/ocr_quant_quality.log"
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
[ -n "$out" ] && exec > >(tee "$out")

# cpu_wall CMD...: runs CMD (output discarded) and prints "cpu_seconds wall_seconds".
cpu_wall() {
    local t0 t1
    t0=$(date +%s.%N)
    local cpu
    cpu=$( ( "$@" >/dev/null 2>&1 || { echo "FAILED: $*" >&2; exit 1; }
             times ) | tail -n1 | awk '{
        # children user and sys, "XmY.YYYs" each
        n = split($0, f, " "); s = 0
        for (i = 1; i <= n; i++) { split(f[i], p, "m"); sub("s", "", p[2]); s += p[1] * 60 + p[2] }
        print s }')
    t1=$(date +%s.%N)
    echo "$cpu $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# measure NAME RUNS CMD...: prints one table row, leaves the CPU median in $last_cpu.
measure() {
    local name=$1 n=$2; shift 2
    local cpus=() walls=() i r
    for ((i = 0; i < n; i++)); do
        r=$(cpu_wall "$@")
        cpus+=("${r% *}"); walls+=("${r#* }")
    done
    last_cpu=$(printf '%s\n' "${cpus[@]}" | median)
    local wall
    wall=$(printf '%s\n' "${walls[@]}" | median)
    printf '%-16s %5d %10.2f %10.2f\n' "$name" "$n" "$last_cpu" "$wall"
}

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|fma|avx512f|avx512_vnni|avx_vnni' | tr '\n' ' ')
echo "# hq-diag against the passes it is made of, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "# machine: $cpu; flags: $flags; cores: $(nproc); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# hq: $("$hq" --version 2>&1 | head -n1) ($build), source tree $(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)"
echo "# model: PP-OCRv4 det 320x320 a8_w8 ($work/det_a8.har), data: $work/calib.npy (64 photos), -j $threads"
echo "# cpu_s = process CPU time (user + sys) and wall_s = wall clock, medians of the runs"
printf '%-16s %5s %10s %10s\n' command runs cpu_s wall_s
measure "float pass" "$runs" "$hq" emulate "$work/det_a8.har" -d "$work/calib.npy" --target native \
    -j "$threads" -q -o "$scratch/f.npz"
float_cpu=$last_cpu
measure "quantized pass" "$runs" "$hq" emulate "$work/det_a8.har" -d "$work/calib.npy" \
    --target quantized -j "$threads" -q -o "$scratch/q.npz"
quant_cpu=$last_cpu
measure "hq-diag" "$runs" "$diag" -d "$work/calib.npy" -c 64 --no-interactive -j "$threads" \
    --output-model-script "$scratch/diag.alls" --log-path "$scratch/diag.log" "$work/det_a8.har"
diag_cpu=$last_cpu
if [ "$advanced" -eq 1 ]; then
    measure "analyze-noise" 1 "$hq" analyze-noise "$work/det_a8.har" -d "$work/calib.npy" \
        --analyze-mode advanced -j "$threads" -q -o "$scratch/an.har"
fi
echo "# hq-diag / (float pass + quantized pass), CPU time: $(awk -v d="$diag_cpu" -v f="$float_cpu" \
    -v q="$quant_cpu" 'BEGIN { printf "%.2f", d / (f + q) }')"
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
