#!/usr/bin/env bash
# ClippingInspector on archives made by hq parse + hq optimize (tests/fixtures/inspectors):
# spike_net, whose sum is stretched to ~105 by one value in 1.6M (the output at ~18 dB): a warning
# with the expected output gain, the manual range accepted, and re-optimized with it the output
# gains what was expected (within 0.5 dB) and turns healthy; tail_net on real photos — an edge
# filter and its negative (a sparse high / low tail of 8%: info and no line, the clip buys less than
# 1 dB) and
# their square, product and cube, whose sparse tails (17-43% of the range) would cost more to
# clip than they save: not offered (logged); no "range above 40" finding; crafted histograms on
# ident_net: 4% silent, 5% info (no line), a 20% or 21% tail held by one value that clipping would lose:
# not offered; a layer with 48 values (no bin holds more than 3) does not crash and is not judged;
# nor is a global pool with 64 values per channel (its sparse top is real per-sample spread); a
# saturating relu6 conv is silent. Without a noise analysis (--no-noise-analysis), spike_net's
# clip is judged by conv2's own gain against one bit: an info without a line on 512 samples, a
# warning with the line on 2048.
source "$HQ_SOURCE_DIR/tests/fixtures/inspectors/lib.sh"
K=ClippingInspector
quantize tail tail_net.onnx norm_ok.alls calib_rgb.npy
quantize bounded bounded_net.onnx norm_ok.alls calib_rgb.npy
quantize tiny tiny_net.onnx none.alls tiny_calib.npy
quantize ident ident_net.onnx none.alls clip_hi20.npy
quantize spike spike_net.onnx spike.alls spike_calib.npy
m="mode=manual, clipping_values"

# present: one spike stretches conv2's range (the sum; hq parse fuses the add into the conv)
diag spike spike -c 512 -d "$work/spike_calib.npy" --order $K
check spike $K --exit-status 0 \
  --finding 'warning:conv2:the top 92% of its range [4.436, 104.9]' \
  --finding 'warning:conv2:and the output SQNR by an expected' \
  --accepted "warning:conv2:pre_quantization_optimization(activation_clipping, layers=[conv2], $m=[-4.3, 4.436])"
"$HQ" optimize "$work/spike_net.parsed.har" -d "$work/spike_calib.npy" \
  -m "$work/spike/diagnostic_spike_net.alls" -o "$work/spike_fixed.har" >"$work/spike_fixed.log" 2>&1
diag spike_fixed spike_fixed -c 512 -d "$work/spike_calib.npy" --order $K
check spike_fixed $K --no-finding 'warning:*:' --no-rec 'warning:*:'
expect "re-optimized with the accepted range, the output gains the expected SQNR and is healthy" \
  /usr/bin/python3 - "$work/spike.json" "$work/spike_fixed.json" <<'PY'
import json, sys
before, after = (json.load(open(p)) for p in sys.argv[1:3])
def output_db(d):
    return min(s["quantized_vs_fp_optimized_db"] for s in d["output_sqnr_db"])
expected = next(n for f in before["diagnostics"] if f["layer"] == "conv2"
                for n in [f["numbers"]["expected_gain_db"]])
got = output_db(after) - output_db(before)
print(f"  {output_db(before):.2f} -> {output_db(after):.2f} dB: +{got:.2f}, expected +{expected:.2f}")
sys.exit(0 if abs(got - expected) <= 0.5 and output_db(after) >= 20 else 1)
PY

# tails on real photos, healthy outputs
diag tail tail -d "$work/calib_rgb.npy" --order $K
check tail $K --exit-status 0 \
  --finding 'info:conv1:the top 8% of its range [122.4, 143.2] holds at most 3 values per bin' \
  --no-finding '*:conv1:bottom' \
  --finding 'info:conv2:the bottom 8% of its range [-143.2, -122.4]' --no-finding '*:conv2:top' \
  --finding 'info:conv1:suggested manual range [-116.9, 122.4], which raises the layer' --no-rec '*:*:' \
  --no-finding '*:ew_mult1:' --no-finding '*:ew_mult2:' --no-finding '*:ew_mult3:' \
  --no-finding '*:*:Activation range'
for l in ew_mult1 ew_mult2 ew_mult3; do
  expect "$l: its sparse tail would cost more to clip than it saves (logged, not offered)" \
    grep -q "$l: clipping to .* would change its SQNR by -.*: not offered" "$work/tail/hq-diag.log"
done

# the edges: NN bins at one end hold at most 3 values (data: make_fixtures.py --derive)
for c in hi04:silent lo04:silent hi05:info:top:5 lo05:info:bottom:5 hi20:lost hi21:lost lo21:lost; do
  IFS=: read -r set level end pct <<<"$c"
  diag ident edge_$set -d "$work/clip_$set.npy" --order $K
  case $level in
  silent) check edge_$set $K --silent ;;
  lost)
    check edge_$set $K --silent
    expect "$set: the one value clipping would lose costs more than the finer step saves" \
      grep -q "conv1: clipping to .* would change its SQNR by -.*: not offered" \
      "$work/edge_$set/hq-diag.log"
    ;;
  *)
    check edge_$set $K --finding "$level:conv1:the $end $pct% of its range" --no-rec '*:*:' 
    ;;
  esac
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

# without a noise analysis (hq optimize --no-noise-analysis, and ClippingInspector alone, which
# needs no per-layer SQNR, so hq-diag computes none): no output gain can be expected, and the
# layer's own SQNR gain stands in, against one bit (6.02 dB). spike_net's one spike among 1.6M
# values of conv2 (512 samples): the clip raises conv2's SQNR by ~3.7 dB, under the bit: an info
# without a line, where the archive with a noise analysis got a warning (above). Among 4x as many
# values (2048 samples, the same single spike) the finer step outweighs the one clipped value by
# more than a bit: a warning with the line, still without an expected output gain.
"$HQ" optimize "$work/spike_net.parsed.har" -d "$work/spike_calib.npy" -m "$work/spike.alls"   -o "$work/spike_nn.har" --no-noise-analysis >"$work/spike_nn.log" 2>&1
/usr/bin/python3 - "$work" <<'PY'
import sys
import numpy as np
work = sys.argv[1]
spike = np.load(work + "/spike_calib.npy")
rng = np.random.default_rng(7)
more = np.clip(rng.normal(0.0, 1.0, (1536,) + spike.shape[1:]), -4.3, 4.3).astype(np.float32)
np.save(work + "/spike_calib_2k.npy", np.concatenate([spike, more]))
PY
diag spike_nn spike_nn -c 512 -d "$work/spike_calib.npy" --order $K
check spike_nn $K --exit-status 0 \
  --finding 'info:conv2:the top 92% of its range [4.436, 104.9]' \
  --no-finding '*:*:the output SQNR by an expected' --no-finding 'warning:*:' --no-rec '*:*:'
expect "no noise analysis, 512 samples: conv2's layer gain is under one bit, no expected output gain" \
  /usr/bin/python3 - "$work/spike_nn.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
f = next(f for f in d["diagnostics"] if f["inspector"] == "ClippingInspector" and f["layer"] == "conv2")
n = f["numbers"]
print(f"  conv2: layer gain {n['layer_gain_db']:.2f} dB")
sys.exit(0 if 0 < n["layer_gain_db"] < 6.02 and "expected_gain_db" not in n else 1)
PY
diag spike_nn spike_nn_2k -c 2048 -d "$work/spike_calib_2k.npy" --order $K
check spike_nn_2k $K --exit-status 0 \
  --finding 'warning:conv2:the top 92% of its range [4.436, 104.9]' \
  --no-finding '*:*:the output SQNR by an expected' \
  --accepted "warning:conv2:pre_quantization_optimization(activation_clipping, layers=[conv2], $m=[-4.3, 4.436])"
expect "no noise analysis, 2048 samples: conv2's layer gain is over one bit" \
  /usr/bin/python3 - "$work/spike_nn_2k.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
f = next(f for f in d["diagnostics"] if f["inspector"] == "ClippingInspector" and f["layer"] == "conv2")
n = f["numbers"]
print(f"  conv2: layer gain {n['layer_gain_db']:.2f} dB")
sys.exit(0 if n["layer_gain_db"] >= 6.02 and "expected_gain_db" not in n else 1)
PY
expect "... and no per-layer SQNR was computed (the branch without a noise analysis ran)" \
  /usr/bin/python3 - "$work/spike_nn.json" "$work/spike_nn_2k.json" <<'PY'
import json, sys
for path in sys.argv[1:]:
    d = json.load(open(path))
    assert all(s["cumulative_db"] is None for s in d["layer_sqnr"]), (path, d["layer_sqnr"][:3])
PY
finish
