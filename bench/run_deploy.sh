#!/usr/bin/env bash
# run_deploy.sh — hq's deploy runtime (libhqrt, `hq run`'s engine) against torch's int8 engine on
# the same torch-built resnet18 (torchvision architecture, random seeded weights, BatchNorm
# statistics from the calibration batch, 224x224): hq parses torch's ONNX export, quantizes it
# with `hq optimize` and compiles it with `hq compile`; torch quantizes the very same weights with
# FX post-training quantization on backend onednn (Debian's torch 1.13 has no fbgemm), both
# calibrated on the same 16 samples (bench/deploy_torch.py). Prints the machine, then one line per
# case:  model  threads  batch  hq_ms  torch_ms  ratio(torch/hq)  hq_GMAC/s
# Each case runs ROUNDS rounds; a round starts deploy_bench (C, links only libhqrt: times hqrt_run
# on one batch of input codes) and deploy_torch.py bench (times the frozen TorchScript int8
# model) once each, alternating which goes first, each doing WARMUP untimed runs then
# RUNS/ROUNDS timed runs. hq_ms and torch_ms are the medians of all RUNS timed runs of each
# (wall clock), so that the load of other processes hits both alike. ratio > 1: hq faster.
# hq_ms covers the integer network only (input codes in, output codes out); torch's time includes
# its float->uint8 quantize of the input and dequantize of the logits (a few microseconds here).
#
# usage: bench/run_deploy.sh [--build DIR] [--runs N] [--rounds N] [--warmup N] [--quick]
#                            [--threads "1 2"] [--batches "1 8"] [--out FILE]
#   defaults: --runs 24 --rounds 8 --warmup 2; --quick = --runs 4 --rounds 2 (development).
# Needs: a built tree (default <repo>/build with hq and libhqrt_static.a), cc, /usr/bin/python3
# with python3-torch and python3-torchvision. Models go to ${HQ_MODEL_CACHE:-<repo>/.cache/models}
# /deploy (never committed).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$repo/build"
runs=24
rounds=8
warmup=2
threads_list="1 2"
batches="1 8"
out=""
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --quick) runs=4; rounds=2; shift ;;
    --threads) threads_list=$2; shift 2 ;;
    --batches) batches=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "run_deploy.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[[ $runs =~ ^[0-9]+$ && $rounds =~ ^[0-9]+$ && $warmup =~ ^[0-9]+$ ]] && [ "$rounds" -ge 1 ] &&
    [ "$runs" -ge "$rounds" ] ||
    { echo "run_deploy.sh: --runs, --rounds, --warmup: need integers, runs >= rounds >= 1" >&2; exit 2; }
build=$(cd "$build" && pwd)
hq="$build/hq"
[ -x "$hq" ] && [ -f "$build/libhqrt_static.a" ] ||
    { echo "run_deploy.sh: no hq and libhqrt_static.a in $build (build the tree first)" >&2; exit 2; }
py=/usr/bin/python3
"$py" -c 'import torch, torchvision' 2>/dev/null ||
    { echo "run_deploy.sh: /usr/bin/python3 needs python3-torch and python3-torchvision" >&2; exit 2; }
cache=${HQ_MODEL_CACHE:-$repo/.cache/models}
work="$cache/deploy"
mkdir -p "$work"

# ---- models (before any timing) ----------------------------------------------------------------
"$py" "$repo/bench/deploy_torch.py" make "$work" >/dev/null
cc -O2 -std=c11 -I"$repo/include" "$repo/bench/deploy_bench.c" "$build/libhqrt_static.a" -lpthread \
    -o "$work/deploy_bench"
if [ ! -f "$work/resnet18.hqx" ] || [ "$work/resnet18.hqx" -ot "$hq" ] ||
    [ "$work/resnet18.hqx" -ot "$work/resnet18.onnx" ]; then
    "$hq" parse "$work/resnet18.onnx" -o "$work/resnet18.har" >/dev/null
    "$hq" optimize "$work/resnet18.har" -d "$work/calib_nhwc.npy" -o "$work/resnet18_q.har" >/dev/null
    "$hq" compile "$work/resnet18_q.har" -o "$work/resnet18.hqx" --har "$work/resnet18_c.har" >/dev/null
fi
rm -f "$work/resnet18_int8_onednn.pt" # torch's int8 model is rebuilt from the current weights
"$py" "$repo/bench/deploy_torch.py" bench "$work" -n 1 -w 0 >/dev/null
gmac=$("$hq" profile "$work/resnet18_q.har" | sed -n 's/^total: .*, \([0-9.]*\) GMAC per frame.*/\1/p' | head -n1)

# ---- the machine -------------------------------------------------------------------------------
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
family=$(awk -F': ' '/^cpu family/ { print $2; exit }' /proc/cpuinfo)
cpu_model=$(awk -F': ' '/^model\t/ { print $2; exit }' /proc/cpuinfo)
mhz=$(awk -F': ' '/^cpu MHz/ { printf "%.0f", $2; exit }' /proc/cpuinfo)
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' |
    grep -xE 'avx2|fma|avx512f|avx512bw|avx512_vnni|avx_vnni|amx_int8' | tr '\n' ' ' | sed 's/ $//')
caches=$(for index in /sys/devices/system/cpu/cpu0/cache/index*; do
    [ -f "$index/size" ] && [ "$(cat "$index/type")" != Instruction ] &&
        printf 'L%s %s, ' "$(cat "$index/level")" "$(cat "$index/size")"
done 2>/dev/null | sed 's/, $//')
torch_version=$("$py" -c 'import torch; print(torch.__version__)')
onednn_isa=$(ONEDNN_VERBOSE=1 DNNL_VERBOSE=1 "$py" "$repo/bench/deploy_torch.py" bench "$work" -n 1 -w 0 2>&1 |
    sed -n 's/.*,isa:\(.*\)$/\1/p' | head -n1)
hq_kernels="AVX2 (vpmaddwd)"
grep -qw avx512_vnni /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo &&
    hq_kernels="AVX-512 VNNI (vpdpbusd) conv/dense, AVX2 depthwise/maxpool"
report() { if [ -n "$out" ]; then tee -a "$out"; else cat; fi; }
[ -n "$out" ] && : >"$out"
{
    echo "# hq run (libhqrt int8) vs torch $torch_version onednn int8 (FX PTQ), resnet18 224x224, random weights, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "# machine: $cpu (family $family model $cpu_model, ${mhz} MHz); flags: ${flags:-none}"
    echo "# cores available: $(nproc); caches: ${caches:-?}"
    echo "# hq kernels: $hq_kernels; oneDNN ISA: ${onednn_isa:-?}"
    echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# per case: $rounds rounds of (deploy_bench, deploy_torch.py) alternating which starts, each" \
        "$warmup warm-up + $((runs / rounds)) timed runs; ms = median of all $runs timed runs (wall clock)"
    echo "# ratio = torch_ms / hq_ms (> 1: hq faster); hq_GMAC/s = ${gmac:-?} GMAC per sample (hq profile) x batch / hq_ms"
    printf '%-10s %7s %5s %10s %10s %7s %10s\n' model threads batch hq_ms torch_ms ratio hq_GMAC/s
} | report

all_of() { sed -n 's/.*ms_all=\([0-9.,]*\).*/\1/p' | tr ',' '\n'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) printf "%.3f", v[(NR + 1) / 2];
                                              else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
per_round=$((runs / rounds))
for threads in $threads_list; do
    for batch in $batches; do
        hq_times=""
        torch_times=""
        for ((round = 0; round < rounds; round++)); do
            for side in hq torch; do
                [ $((round % 2)) -eq 1 ] && side=$([ $side = hq ] && echo torch || echo hq)
                if [ $side = hq ]; then
                    line=$("$work/deploy_bench" "$work/resnet18.hqx" -j "$threads" -b "$batch" \
                        -n "$per_round" -w "$warmup")
                    hq_times+="$(all_of <<<"$line")"$'\n'
                else
                    line=$("$py" "$repo/bench/deploy_torch.py" bench "$work" -j "$threads" \
                        -b "$batch" -n "$per_round" -w "$warmup")
                    torch_times+="$(all_of <<<"$line")"$'\n'
                fi
            done
        done
        hq_ms=$(grep . <<<"$hq_times" | median)
        torch_ms=$(grep . <<<"$torch_times" | median)
        awk -v t="$threads" -v b="$batch" -v h="$hq_ms" -v o="$torch_ms" -v m="${gmac:-0}" 'BEGIN {
                printf "%-10s %7s %5s %10.2f %10.2f %7.2f %10.1f\n", "resnet18", t, b, h, o, o / h,
                    m * b / (h * 1e-3) }' | report
    done
done
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | report
