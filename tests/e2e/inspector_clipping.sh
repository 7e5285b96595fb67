#!/usr/bin/env bash
# ClippingInspector on archives made by hq parse + hq optimize (tests/fixtures/inspectors):
# tail_net on real photos — an edge filter and its negative (a sparse high / low tail of 5-20%:
# info), their square and product (a high / low tail over 20%: warning), the cube (both tails), and
# "Activation range ... is high" above 40 — with the manual-range recommendations, of which the
# non-interactive default ("warning") accepts the warning ones only; the thresholds at their edges
# on ident_net with crafted histograms (4% silent, 5% info, 20% info, 21% warning, at either end);
# a layer with 48 values (no bin holds more than 3) does not crash and is not judged; nor is a
# global pool with 64 values per channel (its sparse top is real per-sample spread); a saturating
# relu6 conv is silent.
source "$HQ_SOURCE_DIR/tests/fixtures/inspectors/lib.sh"
K=ClippingInspector
quantize tail tail_net.onnx norm_ok.alls calib_rgb.npy
quantize bounded bounded_net.onnx norm_ok.alls calib_rgb.npy
quantize tiny tiny_net.onnx none.alls tiny_calib.npy
quantize ident ident_net.onnx none.alls clip_hi20.npy
m="mode=manual, clipping_values"

diag tail tail -d "$work/calib_rgb.npy" --order $K
check tail $K --exit-status 0 \
  --finding 'warning:conv1:Activation range of layer conv1 is high (-116.9, 143.2)' \
  --finding 'info:conv1:the top 8% of its range [122.4, 143.2] holds at most 3 values per bin' \
  --no-finding '*:conv1:bottom' \
  --finding 'info:conv2:the bottom 8% of its range [-143.2, -122.4]' --no-finding '*:conv2:top' \
  --finding 'warning:ew_mult1:the top 43%' --no-finding '*:ew_mult1:bottom' \
  --finding 'warning:ew_mult2:the bottom 43%' --no-finding '*:ew_mult2:top' \
  --finding 'warning:ew_mult3:the top 37%' --finding 'warning:ew_mult3:the bottom 17%' \
  --refused "info:conv1:pre_quantization_optimization(activation_clipping, layers=[conv1], $m=[-116.911, 122.398])" \
  --refused "info:conv2:pre_quantization_optimization(activation_clipping, layers=[conv2], $m=[-122.398, 116.911])" \
  --accepted "warning:ew_mult1:pre_quantization_optimization(activation_clipping, layers=[ew_mult1], $m=[0, 11689.7])" \
  --accepted "warning:ew_mult2:layers=[ew_mult2], $m=[-11689.7, 0])" \
  --accepted "warning:ew_mult3:layers=[ew_mult3], $m=[-827017, 1.25903e+06])"

# the edges: NN bins at one end hold at most 3 values (data: make_fixtures.py --derive)
for c in hi04:silent lo04:silent hi05:info:top:5 lo05:info:bottom:5 hi20:info:top:20 \
         lo20:info:bottom:20 hi21:warning:top:21 lo21:warning:bottom:21; do
  IFS=: read -r set level end pct <<<"$c"
  diag ident edge_$set -d "$work/clip_$set.npy" --order $K
  if [ "$level" = silent ]; then
    check edge_$set $K --silent
  else
    check edge_$set $K --finding "$level:conv1:the $end $pct% of its range" \
      --rec "$level:conv1:layers=[conv1], $m=" --no-finding "*:conv1:Activation range"
  fi
done

# 48 values in all: every bin holds at most 3; not judged, no crash
diag tiny tiny -d "$work/tiny_calib.npy" --order $K
check tiny $K --status ran --exit-status 0 --no-finding '*:*:holds at most' --no-rec '*:*:'
expect "the too-small histogram is logged" grep -q "conv1: 48 values, too few to judge" "$work/tiny/hq-diag.log"

# a global pool (one value per channel and sample: 64 per channel) is not judged, although one
# photo x3 leaves most of its range sparse (recomputed from hq emulate's output below)
quantize gap gap_net.onnx norm_ok.alls calib_bright.npy
diag gap gap -d "$work/calib_bright.npy" --order $K
check gap $K --no-finding '*:global_avg_pool1:' --no-rec '*:global_avg_pool1:'
expect "the global pool is logged as too few values per channel" \
  grep -q "global_avg_pool1: 64 values per channel, too few to judge" "$work/gap/hq-diag.log"
"$HQ" emulate "$work/gap.har" -d "$work/calib_bright.npy" --target fp_optimized -o "$work/gap.npz" \
  >"$work/gap_emulate.log" 2>&1
expect "... while its histogram's top 20% holds at most 3 values per bin" \
  /usr/bin/python3 - "$work/gap.npz" <<'PY'
import sys
import numpy as np
v = np.load(sys.argv[1])["gap_net/output_layer1"].ravel()
h, _ = np.histogram(v, 100, (min(v.min(), 0), max(v.max(), 0)))
top = next(i for i, c in enumerate(h[::-1]) if c > 3)
print(f"  {v.size} values, {v.size // 32} per channel; the top {top} bins hold at most 3 values")
sys.exit(0 if top > 20 else 1)
PY

diag bounded bounded -d "$work/calib_rgb.npy" --order $K
check bounded $K --status ran --silent
finish
