#!/usr/bin/env bash
# run_emulate.sh — hq's float emulation against onnxruntime (CPU) on the same models, inputs,
# threads and batch. Prints the machine, then one line per case:
#   model  input  threads  batch  hq_ms  ort_ms  ratio(ort/hq)  hq_GFLOP/s
# hq_ms and ort_ms are medians of RUNS timed runs after WARMUP untimed ones, measured back to
# back in this script (bench/hq_bench.c times hq_emulator_run only; bench/ort_bench.js times
# session.run only). ratio > 1 means hq is faster.
#
# usage: bench/run_emulate.sh [--build DIR] [--runs N] [--warmup N] [--threads "1 2"]
#                             [--batches "1 8"] [--models "det cls resnet18 mobilenet_v2"]
#                             [--out FILE]
# Needs: a built tree (default <repo>/build, with libhq.so and hq), cc, node and npm (models and
# onnxruntime-node come from tests/models/fetch_models.sh; the torch models from
# tests/models/make_torch_models.py with python3-torch and python3-torchvision, skipped with a
# message when absent), /usr/bin/python3 with python3-onnx (the batch-1 torch exports are given a
# symbolic batch dimension for onnxruntime).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$repo/build"
runs=10
warmup=2
threads_list="1 2"
batches="1 8"
models="det cls resnet18 mobilenet_v2"
out=""
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --threads) threads_list=$2; shift 2 ;;
    --batches) batches=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "run_emulate.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
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
if ! "$py" "$repo/tests/models/make_torch_models.py" >"$work/torch.log" 2>&1; then
    torch_ok=0
fi

# model -> onnx path, NCHW input shape (batch filled in per case), hq parse shapes
declare -A onnx shape
onnx[det]=$(path_of det); shape[det]=3,640,640
onnx[cls]=$(path_of cls); shape[cls]=3,48,192
onnx[resnet18]=$cache/torch/resnet18.onnx; shape[resnet18]=3,224,224
onnx[mobilenet_v2]=$cache/torch/mobilenet_v2.onnx; shape[mobilenet_v2]=3,224,224

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
        if [[ $model == resnet18 || $model == mobilenet_v2 ]] && [ $torch_ok -eq 0 ]; then
            skipped+=("# $model: skipped, tests/models/make_torch_models.py could not build it (python3-torch/python3-torchvision missing? see $work/torch.log)")
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
    if [[ $model == resnet18 || $model == mobilenet_v2 ]]; then
        peer[$model]="$work/$model.dynamic.onnx"
        [ -f "${peer[$model]}" ] && [ "${peer[$model]}" -nt "$src" ] || dynamic_batch "$src" "${peer[$model]}"
    fi
    ready+=("$model")
done

# ---- the machine -----------------------------------------------------------------------------
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|fma|avx512f|avx512_vnni' |
    tr '\n' ' ')
kernels='?'
[ ${#ready[@]} -gt 0 ] && kernels=$("$work/hq_bench" "$work/${ready[0]}.har" --info)
report() { if [ -n "$out" ]; then tee -a "$out"; else cat; fi; }
[ -n "$out" ] && : >"$out"
{
    echo "# hq float emulation vs onnxruntime-node 1.30.0 (CPU), $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "# machine: $cpu; flags: ${flags:-none}; cores available: $(nproc); hq kernels: $kernels"
    echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# medians of $runs runs after $warmup warm-up runs; ratio = ort_ms / hq_ms (> 1: hq faster)"
    for line in "${skipped[@]}"; do echo "$line"; done
    printf '%-14s %-12s %7s %5s %10s %10s %7s %10s\n' model input threads batch hq_ms ort_ms ratio \
        hq_GFLOP/s
} | report

median_of() { sed -n 's/.*ms_median=\([0-9.]*\).*/\1/p'; }
for model in "${ready[@]}"; do
    input=$(tr ',' 'x' <<<"${shape[$model]#*,}")
    for threads in $threads_list; do
        for batch in $batches; do
            hq_line=$("$work/hq_bench" "$work/$model.har" -j "$threads" -b "$batch" -n "$runs" \
                -w "$warmup")
            ort_line=$(node "$repo/bench/ort_bench.js" "$node_modules" "${peer[$model]}" \
                "$batch,${shape[$model]}" "$threads" "$runs" "$warmup")
            hq_ms=$(median_of <<<"$hq_line")
            ort_ms=$(median_of <<<"$ort_line")
            gflops=$(sed -n 's/.*gflops=\([0-9.]*\).*/\1/p' <<<"$hq_line")
            ratio=$(awk -v a="$ort_ms" -v b="$hq_ms" 'BEGIN { printf "%.2f", a / b }')
            printf '%-14s %-12s %7s %5s %10.1f %10.1f %7s %10s\n' "$model" "$input" "$threads" \
                "$batch" "$hq_ms" "$ort_ms" "$ratio" "$gflops" | report
        done
    done
done
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | report
