#!/usr/bin/env bash
# run_emulate.sh — hq's float emulation against onnxruntime (CPU) on the same models, inputs,
# threads and batch. Prints the machine, then one line per case:
#   model  input  threads  batch  hq_ms  ort_ms  ratio(ort/hq)  hq_GFLOP/s  peak%
# Each case runs ROUNDS rounds; a round starts hq_bench and ort_bench once each (alternating which
# goes first), and each does WARMUP untimed runs then RUNS/ROUNDS timed runs, or more until they add
# up to MIN_MS (so that a model of a millisecond gets hundreds of runs). hq_ms and ort_ms are the
# medians of all the timed runs of each, so that the load of other processes hits both
# runtimes alike (bench/hq_bench.c times hq_emulator_run only; bench/ort_bench.js times
# session.run only). ratio > 1 means hq is faster; hq_GFLOP/s = conv/dw/deconv/dense FLOPs
# (2 per multiply-add) / hq_ms; peak% = hq_GFLOP/s against the machine's sgemm peak per core
# (bench/sgemm_peak.py: torch's oneDNN, measured once per run) times the threads.
#
# usage: bench/run_emulate.sh [--build DIR] [--runs N] [--rounds N] [--warmup N] [--min-ms MS]
#                             [--quick] [--cpu-time] [--base-env VAR=VALUE]
#                             [--threads "1 2"] [--batches "1 8"]
#                             [--models "det cls resnet18 mobilenet_v2 mobilenet_v3_large
#                                        efficientnet_b0"] [--out FILE]
#   defaults: --runs 12 --rounds 4 --warmup 2 --min-ms 250; --quick = --runs 4 --rounds 2
#   --min-ms 50 (for development).
#   --cpu-time: both runtimes time with their process's CPU time (all threads) instead of the wall
#   clock, for a machine loaded by other work. --base-env VAR=VALUE: each round also runs hq_bench
#   with VAR=VALUE in its environment (e.g. HQ_EMULATE_NO_FUSE=1: the unfused executor), adding
#   the columns base_ms (its median) and speedup = base_ms / hq_ms: a before/after in the same rounds.
# Needs: a built tree (default <repo>/build, with libhq.so and hq), cc, node and npm (models and
# onnxruntime-node come from tests/models/fetch_models.sh; the torch models from
# tests/models/make_torch_models.py and bench/make_bench_models.py with python3-torch and
# python3-torchvision, skipped with a message when absent), /usr/bin/python3 with python3-onnx
# (the batch-1 torch exports are given a symbolic batch dimension for onnxruntime).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$repo/build"
runs=12
rounds=4
warmup=2
min_ms=250
threads_list="1 2"
batches="1 8"
models="det cls resnet18 mobilenet_v2 mobilenet_v3_large efficientnet_b0"
torch_models=" resnet18 mobilenet_v2 mobilenet_v3_large efficientnet_b0 "
out=""
cpu_time=""
base_env=""
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --min-ms) min_ms=$2; shift 2 ;;
    --quick) runs=4; rounds=2; min_ms=50; shift ;;
    --cpu-time) cpu_time=--cpu-time; shift ;;
    --base-env) base_env=$2; shift 2 ;;
    --threads) threads_list=$2; shift 2 ;;
    --batches) batches=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h | --help) sed -n '2,29p' "$0"; exit 0 ;;
    *) echo "run_emulate.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
numbers_ok() {
    [[ $runs =~ ^[0-9]+$ && $rounds =~ ^[0-9]+$ && $warmup =~ ^[0-9]+$ && $min_ms =~ ^[0-9]+$ ]] &&
        [ "$rounds" -ge 1 ] && [ "$runs" -ge "$rounds" ]
}
numbers_ok || {
    echo "run_emulate.sh: --runs, --rounds, --warmup, --min-ms: need integers," \
        "runs >= rounds >= 1" >&2
    exit 2
}
build=$(cd "$build" && pwd)
hq="$build/hq"
[ -x "$hq" ] && [ -f "$build/libhq.so" ] ||
    { echo "run_emulate.sh: no hq and libhq.so in $build (build the tree first)" >&2; exit 2; }
py=/usr/bin/python3
cache=${HQ_MODEL_CACHE:-$repo/.cache/models}
work="$cache/bench"
mkdir -p "$work"

# ---- peers and models ------------------------------------------------------------------------
paths=$("$repo/tests/models/fetch_models.sh")
path_of() { awk -v k="$1" '$1 == k { print $2 }' <<<"$paths"; }
node_modules=$(path_of node_modules)
torch_ok=1
if ! "$py" "$repo/bench/make_bench_models.py" >"$work/torch.log" 2>&1; then
    torch_ok=0
fi

# model -> onnx path, NCHW input shape (batch filled in per case), hq parse shapes
declare -A onnx shape
onnx[det]=$(path_of det); shape[det]=3,640,640
onnx[cls]=$(path_of cls); shape[cls]=3,48,192
onnx[resnet18]=$cache/torch/resnet18.onnx; shape[resnet18]=3,224,224
onnx[mobilenet_v2]=$cache/torch/mobilenet_v2.onnx; shape[mobilenet_v2]=3,224,224
onnx[mobilenet_v3_large]=$cache/torch/mobilenet_v3_large.onnx; shape[mobilenet_v3_large]=3,224,224
onnx[efficientnet_b0]=$cache/torch/efficientnet_b0.onnx; shape[efficientnet_b0]=3,224,224

# onnxruntime needs a batch dimension it can vary: the torch exports fix it to 1
dynamic_batch() {
    "$py" - "$1" "$2" <<'PY'
import sys
import onnx
model = onnx.load(sys.argv[1])
for value in list(model.graph.input) + list(model.graph.output):
    dims = value.type.tensor_type.shape.dim
    if dims:
        dims[0].ClearField("dim_value")
        dims[0].dim_param = "N"
onnx.save(model, sys.argv[2])
PY
}

# ---- hq's timing harness ---------------------------------------------------------------------
cc -O2 -std=c11 -I"$repo/include" "$repo/bench/hq_bench.c" -L"$build" -lhq \
    -Wl,-rpath,"$build" -o "$work/hq_bench"

# ---- archives and peer models (before any timing) ---------------------------------------------
ready=()
skipped=()
declare -A peer
for model in $models; do
    src=${onnx[$model]:-}
    [ -n "$src" ] || { echo "run_emulate.sh: unknown model '$model'" >&2; exit 2; }
    if [ ! -f "$src" ]; then
        if [[ $torch_models == *" $model "* ]] && [ $torch_ok -eq 0 ]; then
            skipped+=("# $model: skipped, bench/make_bench_models.py could not build it (python3-torch/python3-torchvision missing? see $work/torch.log)")
            continue
        fi
        echo "run_emulate.sh: $src is missing" >&2
        exit 1
    fi
    har="$work/$model.har"
    if [ ! -f "$har" ] || [ "$har" -ot "$src" ] || [ "$har" -ot "$hq" ]; then
        "$hq" parse "$src" -o "$har" --net-name "$model" --tensor-shapes "1,${shape[$model]}" >/dev/null
    fi
    peer[$model]="$src"
    if [[ $torch_models == *" $model "* ]]; then
        peer[$model]="$work/$model.dynamic.onnx"
        [ -f "${peer[$model]}" ] && [ "${peer[$model]}" -nt "$src" ] || dynamic_batch "$src" "${peer[$model]}"
    fi
    ready+=("$model")
done

# ---- the machine -----------------------------------------------------------------------------
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
family=$(awk -F': ' '/^cpu family/ { print $2; exit }' /proc/cpuinfo)
cpu_model=$(awk -F': ' '/^model\t/ { print $2; exit }' /proc/cpuinfo)
mhz=$(awk -F': ' '/^cpu MHz/ { printf "%.0f", $2; exit }' /proc/cpuinfo)
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|fma|avx512f|avx512_vnni' |
    tr '\n' ' ' | sed 's/ $//')
caches=$(for index in /sys/devices/system/cpu/cpu0/cache/index*; do
    [ -f "$index/size" ] && [ "$(cat "$index/type")" != Instruction ] &&
        printf 'L%s %s, ' "$(cat "$index/level")" "$(cat "$index/size")"
done 2>/dev/null | sed 's/, $//')
ort_version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' \
    "$node_modules/onnxruntime-node/package.json" | head -n1)
kernels='?'
[ ${#ready[@]} -gt 0 ] && kernels=$("$work/hq_bench" "$work/${ready[0]}.har" --info)
# the machine's sgemm peak per core (torch's BLAS, one thread), the yardstick of hq_GFLOP/s
peak=$("$py" "$repo/bench/sgemm_peak.py" 2>/dev/null | sed -n 's/.*sgemm_gflops=\([0-9.]*\).*/\1/p' || true)
report() { if [ -n "$out" ]; then tee -a "$out"; else cat; fi; }
[ -n "$out" ] && : >"$out"
{
    echo "# hq float emulation vs onnxruntime-node ${ort_version:-?} (CPU)," \
        "$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "# machine: $cpu (family $family model $cpu_model, ${mhz} MHz); flags: ${flags:-none}"
    echo "# cores available: $(nproc); caches: ${caches:-?}; hq kernels: $kernels"
    echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# per case: $rounds rounds of (hq_bench, ort_bench) alternating which starts, each" \
        "$warmup warm-up + $((runs / rounds)) timed runs or more up to ${min_ms} ms;" \
        "ms = median of all timed runs"
    echo "# ratio = ort_ms / hq_ms (> 1: hq faster); hq_GFLOP/s = conv/dense FLOPs / hq_ms;" \
        "peak% = hq_GFLOP/s / (sgemm peak x threads)"
    [ -n "$cpu_time" ] && echo "# timed in process CPU time (--cpu-time), both runtimes"
    [ -n "$base_env" ] && echo "# base: hq_bench with $base_env, in the same rounds; speedup = base_ms / hq_ms"
    echo "# sgemm peak: ${peak:-?} GFLOP/s per core (bench/sgemm_peak.py: torch's oneDNN," \
        "1 thread, 1024^3, process CPU time, median of 20)"
    for line in "${skipped[@]}"; do echo "$line"; done
    printf '%-18s %-12s %7s %5s %10s %10s %7s %10s %6s' model input threads batch hq_ms ort_ms \
        ratio hq_GFLOP/s peak%
    [ -n "$base_env" ] && printf ' %10s %7s %7s' base_ms speedup b_ratio
    printf '\n'
} | report

# the ms_all lists of several invocations -> their median
all_of() { sed -n 's/.*ms_all=\([0-9.,]*\).*/\1/p' | tr ',' '\n'; }
median() {
    sort -g | awk '{ v[NR] = $1 }
        END { if (NR % 2) printf "%.3f", v[(NR + 1) / 2]
              else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
per_round=$((runs / rounds))
for model in "${ready[@]}"; do
    input=$(tr ',' 'x' <<<"${shape[$model]#*,}")
    for threads in $threads_list; do
        for batch in $batches; do
            hq_times=""
            ort_times=""
            base_times=""
            gflop=""
            for ((round = 0; round < rounds; round++)); do
                for side in hq ort ${base_env:+base}; do
                    # odd rounds start with onnxruntime
                    [ $((round % 2)) -eq 1 ] && side=$([ $side = hq ] && echo ort || echo hq)
                    if [ $side = hq ]; then
                        line=$("$work/hq_bench" "$work/$model.har" -j "$threads" -b "$batch" \
                            -n "$per_round" -t "$min_ms" -w "$warmup" $cpu_time)
                        hq_times+="$(all_of <<<"$line")"$'\n'
                        gflop=$(sed -n 's/.*gflop=\([0-9.]*\).*/\1/p' <<<"$line")
                    elif [ $side = base ]; then
                        line=$(env "$base_env" "$work/hq_bench" "$work/$model.har" -j "$threads" \
                            -b "$batch" -n "$per_round" -t "$min_ms" -w "$warmup" $cpu_time)
                        base_times+="$(all_of <<<"$line")"$'\n'
                    else
                        line=$(node "$repo/bench/ort_bench.js" "$node_modules" "${peer[$model]}" \
                            "$batch,${shape[$model]}" "$threads" "$per_round" "$warmup" "$min_ms" $cpu_time)
                        ort_times+="$(all_of <<<"$line")"$'\n'
                    fi
                done
            done
            hq_ms=$(grep . <<<"$hq_times" | median)
            ort_ms=$(grep . <<<"$ort_times" | median)
            base_ms=$([ -n "$base_env" ] && grep . <<<"$base_times" | median || echo 0)
            awk -v m="$model" -v i="$input" -v t="$threads" -v b="$batch" -v h="$hq_ms" \
                -v o="$ort_ms" -v g="$gflop" -v p="${peak:-0}" -v z="$base_ms" 'BEGIN {
                    r = g / (h * 1e-3)
                    share = p > 0 ? sprintf("%.0f", 100 * r / (p * t)) : "?"
                    printf "%-18s %-12s %7s %5s %10.1f %10.1f %7.2f %10.1f %6s", m, i, t, b, h, o,
                        o / h, r, share
                    if (z > 0) printf " %10.1f %7.2f %7.2f", z, z / h, o / z
                    printf "\n" }' | report
        done
    done
done
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | report
