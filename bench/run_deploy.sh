#!/usr/bin/env bash
# run_deploy.sh — hq's deploy runtime (libhqrt, `hq run`'s engine) against torch's int8 engine and
# against hq's own float emulation of the same network. Models (--models, default all):
#   resnet18 mobilenet_v2 mobilenet_v3_large efficientnet_b0: torchvision architectures, random
#     seeded weights, BatchNorm statistics from the calibration batch, 224x224; hq parses torch's
#     ONNX export, quantizes it (a8_w8, `hq optimize` on the 16 calibration samples) and compiles
#     it; torch quantizes the very same weights with FX post-training quantization on backend
#     onednn (Debian's torch 1.13 has no fbgemm), calibrated on the same samples
#     (bench/deploy_torch.py).
#   ppocr_det320 (and ppocr_det640): PP-OCRv4 det (tests/models/fetch_models.sh) at 320x320
#     (640x640), quantized on 8 real images (bench/seeded_ocr.py, PaddleOCR normalization); torch
#     has no such model, so its torch column is "-".
# Prints the machine, then one line per case:
#   model  threads  batch  hq_ms  torch_ms  float_ms  vs_torch  vs_float  hq_GMAC/s
# Each case runs ROUNDS rounds; a round starts deploy_bench (C, links only libhqrt: times hqrt_run
# on one batch of input codes), deploy_torch.py bench (times the frozen TorchScript int8 model)
# and hq_bench (times hq_emulator_run of the float archive), rotating which goes first, each doing
# WARMUP untimed runs then RUNS/ROUNDS timed runs. The ms columns are the medians of all RUNS
# timed runs of each (wall clock; CPU time with --cpu-time), so that the load of other processes
# hits all alike.
# vs_torch = torch_ms / hq_ms, vs_float = float_ms / hq_ms (> 1: hq run faster).
# hq_ms covers the integer network only (input codes in, output codes out); torch's time includes
# its float->uint8 quantize of the input and dequantize of the logits (a few microseconds here).
#
# usage: bench/run_deploy.sh [--build DIR] [--runs N] [--rounds N] [--warmup N] [--quick]
#                            [--threads "1 2"] [--batches "1 8"] [--models "..."] [--cpu-time]
#                            [--out FILE]
#   defaults: --runs 24 --rounds 8 --warmup 2; --quick = --runs 4 --rounds 2 (development).
#   --cpu-time: all three sides time with their process's CPU time instead of the wall clock
#     (deploy_bench -c, deploy_torch.py -c, hq_bench --cpu-time), for a machine shared with
#     other work, where wall clock measures the contention. At 1 thread it is what a quiet core
#     costs; at 2 threads it is the CPU of both threads (cost, not latency: threads that wait by
#     spinning count).
# Needs: a built tree (default <repo>/build with hq, libhq and libhqrt_static.a), cc,
# /usr/bin/python3 with python3-torch and python3-torchvision. Models go to
# ${HQ_MODEL_CACHE:-<repo>/.cache/models}/deploy (never committed).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$repo/build"
runs=24
rounds=8
warmup=2
threads_list="1 2"
batches="1 8"
models="resnet18 mobilenet_v2 mobilenet_v3_large efficientnet_b0 ppocr_det320"
out=""
cpu_time=0
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --quick) runs=4; rounds=2; shift ;;
    --threads) threads_list=$2; shift 2 ;;
    --batches) batches=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --cpu-time) cpu_time=1; shift ;;
    --out) out=$2; shift 2 ;;
    -h | --help) sed -n '2,37p' "$0"; exit 0 ;;
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
cc -O2 -std=c11 -I"$repo/include" "$repo/bench/deploy_bench.c" "$build/libhqrt_static.a" -lpthread \
    -o "$work/deploy_bench"
cc -O2 -std=c11 -I"$repo/include" "$repo/bench/hq_bench.c" -L"$build" -lhq \
    -Wl,-rpath,"$build" -o "$work/hq_bench"
first_model() { set -- $models; echo "$1"; }
stale() { [ ! -f "$1" ] || [ "$1" -ot "$hq" ] || [ "$1" -ot "$2" ]; }
declare -A gmac
for model in $models; do
    case $model in
    ppocr_det*)
        size=${model#ppocr_det}
        [[ $size =~ ^[0-9]+$ ]] || { echo "run_deploy.sh: unknown model '$model'" >&2; exit 2; }
        det=$(awk '$1 == "det" { print $2 }' <<<"$("$repo/tests/models/fetch_models.sh")")
        if [ ! -f "$work/ocr$size/calib_rgb.npy" ]; then
            "$py" "$repo/bench/seeded_ocr.py" images "$work/ocr$size" "$size" >/dev/null
            "$py" -c 'import sys, numpy as np
np.save(sys.argv[2], np.load(sys.argv[1])[:8])' "$work/ocr$size/calib_rgb.npy" "$work/ocr$size/calib8.npy"
        fi
        printf '%s\n' 'input_conversion(rgb_to_bgr)' \
            'normalization1 = normalization([103.53, 116.28, 123.675], [57.375, 57.12, 58.395])' \
            >"$work/ppocr.alls"
        if stale "$work/$model.hqx" "$det"; then
            "$hq" parse "$det" -o "$work/$model.har" --net-name "$model" \
                --tensor-shapes "1,3,$size,$size" >/dev/null
            "$hq" optimize "$work/$model.har" -d "$work/ocr$size/calib8.npy" -m "$work/ppocr.alls" \
                -o "$work/${model}_q.har" >/dev/null
            "$hq" compile "$work/${model}_q.har" -o "$work/$model.hqx" >/dev/null
        fi
        ;;
    resnet18 | mobilenet_v2 | mobilenet_v3_large | efficientnet_b0)
        "$py" "$repo/bench/deploy_torch.py" make "$work" -m "$model" >/dev/null
        if stale "$work/$model.hqx" "$work/$model.onnx"; then
            "$hq" parse "$work/$model.onnx" -o "$work/$model.har" >/dev/null
            "$hq" optimize "$work/$model.har" -d "$work/calib_nhwc.npy" -o "$work/${model}_q.har" \
                >/dev/null
            "$hq" compile "$work/${model}_q.har" -o "$work/$model.hqx" >/dev/null
        fi
        rm -f "$work/${model}_int8_onednn.pt" # torch's int8 model is rebuilt from the current weights
        "$py" "$repo/bench/deploy_torch.py" bench "$work" -m "$model" -n 1 -w 0 >/dev/null
        ;;
    *) echo "run_deploy.sh: unknown model '$model'" >&2; exit 2 ;;
    esac
    gmac[$model]=$("$hq" profile "$work/${model}_q.har" |
        sed -n 's/^total: .*, \([0-9.]*\) GMAC per frame.*/\1/p' | head -n1)
done

clock_name="wall clock"
[ $cpu_time = 1 ] && clock_name="process CPU time: deploy_bench -c, deploy_torch.py -c, hq_bench --cpu-time"
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
# the ISA oneDNN dispatches to, from one run of the first torch model asked for (none: "?")
torch_model=$(for m in $models; do [[ $m == ppocr_det* ]] || { echo "$m"; break; }; done)
onednn_isa=$([ -z "$torch_model" ] || { ONEDNN_VERBOSE=1 DNNL_VERBOSE=1 "$py" \
    "$repo/bench/deploy_torch.py" bench "$work" -m "$torch_model" -n 1 -w 0 2>&1 || true; } |
    sed -n '/,isa:/{s/.*,isa:\(.*\)$/\1/p;q}')
hq_kernels="AVX2 (vpmaddwd) conv/dense, AVX2 depthwise/maxpool/output stage/eltwise/deconv"
grep -qw avx512bw /proc/cpuinfo && grep -qw avx512dq /proc/cpuinfo &&
    hq_kernels="AVX2 (vpmaddwd) conv/dense and maxpool, AVX-512 depthwise/output stage/eltwise/deconv"
grep -qw avx512_vnni /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo &&
    hq_kernels="AVX-512 VNNI (vpdpbusd) conv/dense, AVX-512 depthwise/output stage/eltwise/deconv, AVX2 maxpool"
grep -qw avx512_vnni /proc/cpuinfo && grep -qw amx_int8 /proc/cpuinfo && [ -z "${HQRT_NO_AMX:-}" ] &&
    hq_kernels="AMX (tdpbusd) deep convs, $hq_kernels"
float_kernels=$("$work/hq_bench" "$work/$(first_model).har" --info 2>/dev/null || echo "?")
report() { if [ -n "$out" ]; then tee -a "$out"; else cat; fi; }
[ -n "$out" ] && : >"$out"
{
    echo "# hq run (libhqrt int8) vs torch $torch_version onednn int8 (FX PTQ) and vs hq's float emulation (hq_bench), $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "# models: $models (torchvision: random weights, 224x224; PP-OCRv4 det: quantized on 8 real images)"
    echo "# machine: $cpu (family $family model $cpu_model, ${mhz} MHz); flags: ${flags:-none}"
    echo "# cores available: $(nproc); caches: ${caches:-?}"
    echo "# hq kernels: $hq_kernels; hq float emulation: $float_kernels; oneDNN ISA: ${onednn_isa:-?}"
    echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# per case: $rounds rounds of (deploy_bench, deploy_torch.py, hq_bench) rotating which starts, each" \
        "$warmup warm-up + $((runs / rounds)) timed runs; ms = median of all $runs timed runs ($clock_name)"
    echo "# vs_torch = torch_ms / hq_ms, vs_float = float_ms / hq_ms (> 1: hq run faster); hq_GMAC/s = GMAC per sample (hq profile) x batch / hq_ms"
    printf '%-18s %7s %5s %9s %9s %9s %8s %8s %9s\n' model threads batch hq_ms torch_ms float_ms \
        vs_torch vs_float hq_GMAC/s
} | report

all_of() { sed -n 's/.*ms_all=\([0-9.,]*\).*/\1/p' | tr ',' '\n'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) printf "%.3f", v[(NR + 1) / 2];
                                              else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
per_round=$((runs / rounds))
hq_clock=() torch_clock=() float_clock=()
[ $cpu_time = 1 ] && hq_clock=(-c) torch_clock=(-c) float_clock=(--cpu-time)
for model in $models; do
    has_torch=1
    [[ $model == ppocr_det* ]] && has_torch=0
    for threads in $threads_list; do
        for batch in $batches; do
            hq_times="" torch_times="" float_times=""
            for ((round = 0; round < rounds; round++)); do
                sides=(hq torch float)
                for ((k = 0; k < 3; k++)); do
                    side=${sides[$(((k + round) % 3))]}
                    case $side in
                    hq)
                        line=$("$work/deploy_bench" "$work/$model.hqx" -j "$threads" -b "$batch" \
                            -n "$per_round" -w "$warmup" "${hq_clock[@]}")
                        hq_times+="$(all_of <<<"$line")"$'\n' ;;
                    torch)
                        [ $has_torch = 1 ] || continue
                        line=$("$py" "$repo/bench/deploy_torch.py" bench "$work" -m "$model" \
                            -j "$threads" -b "$batch" -n "$per_round" -w "$warmup" "${torch_clock[@]}")
                        torch_times+="$(all_of <<<"$line")"$'\n' ;;
                    float)
                        line=$("$work/hq_bench" "$work/$model.har" -j "$threads" -b "$batch" \
                            -n "$per_round" -w "$warmup" "${float_clock[@]}")
                        float_times+="$(all_of <<<"$line")"$'\n' ;;
                    esac
                done
            done
            hq_ms=$(grep . <<<"$hq_times" | median)
            torch_ms=$( [ $has_torch = 1 ] && grep . <<<"$torch_times" | median || echo 0)
            float_ms=$(grep . <<<"$float_times" | median)
            awk -v n="$model" -v t="$threads" -v b="$batch" -v h="$hq_ms" -v o="$torch_ms" \
                -v f="$float_ms" -v m="${gmac[$model]:-0}" 'BEGIN {
                    ts = o > 0 ? sprintf("%9.2f", o) : sprintf("%9s", "-")
                    rs = o > 0 ? sprintf("%8.2f", o / h) : sprintf("%8s", "-")
                    printf "%-18s %7s %5s %9.2f %s %9.2f %s %8.2f %9.1f\n", n, t, b, h, ts, f, rs,
                        f / h, m * b / (h * 1e-3) }' | report
        done
    done
done
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | report
