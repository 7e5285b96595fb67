#!/usr/bin/env bash
# NormInspector on archives made by hq parse + hq optimize from bn_net.onnx and real photos
# (tests/fixtures/inspectors): silent on 0-255 data with 0-255 constants; 0-1 constants with
# 0-255 data (warning, error "not normalized", the x255 line accepted) and without data (the line
# offered, not accepted); 0-1 data with 0-1 constants (an info, no alarm: the original tool's
# "normalized twice?" false alarm); already normalized data in front of a normalization (error
# "normalized twice?", the measured line) and 0-1 data in front of 0-255 constants (the same
# error, the constants /255); no normalization layer with raw data (warning, error, and the
# measured line, checked against numpy), with hand-normalized data (an info) and with data
# normalized twice (error); re-optimizing with the accepted lines silences it; the (-2, 5) x (0.1, 5) window at its edges (mean 4.9 / 5.1, std
# 0.11 / 0.09).
source "$HQ_SOURCE_DIR/tests/fixtures/inspectors/lib.sh"
N=NormInspector
quantize bn_ok bn_net.onnx norm_ok.alls calib_rgb.npy
quantize bn_01 bn_net.onnx norm_01.alls calib_rgb.npy
quantize bn_none bn_net.onnx none.alls calib_rgb.npy

# absent: 0-255 photos, ImageNet constants in the 0-255 scale
diag bn_ok ok -d "$work/calib_rgb.npy" --order $N
check ok $N --status ran --silent --exit-status 0
# absent: 0-1 data with torchvision's 0-1 constants is right: an info, no warning, no error
# (exit 1 is hq-diag's verdict: the archive was calibrated on calib_rgb, so on 0-1 data its
# quantized output is below 0 dB; the same holds for every run below on data other than
# calib_rgb)
diag bn_01 consistent -d "$work/calib_01.npy" --order $N
check consistent $N --quiet --finding 'info:normalization1:consistent' --exit-status 1

# present: 0-255 photos through the 0-1 constants
diag bn_01 scale -d "$work/calib_rgb.npy" --order $N
check scale $N --exit-status 1 \
  --finding 'warning:normalization1:looks like the 0-1 scale' \
  --finding 'error:normalization1:is not normalized' \
  --accepted 'error:normalization1:normalization1 = normalization([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])'
# the same archive without data: the x255 line is offered, not applied by default
diag bn_01 scale_nodata --order $N
check scale_nodata $N --exit-status 0 \
  --finding 'warning:normalization1:should be x255' \
  --refused 'warning:normalization1:normalization([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])'
# re-optimizing with the accepted line: silent
"$HQ" optimize "$work/bn_net.parsed.har" -d "$work/calib_rgb.npy" -m "$work/scale/diagnostic_bn_net.alls" \
  -o "$work/bn_scale_fixed.har" >"$work/fix.log" 2>&1
diag bn_scale_fixed scale_fixed -d "$work/calib_rgb.npy" --order $N
check scale_fixed $N --silent --exit-status 0

# present: data already normalized (ImageNet) or 0-1, in front of the 0-255 normalization. The
# 0-1 data gets the script's constants /255 (the training constants); the normalized data, which
# neither x255 nor /255 explains, the line measured on it
for set in std 01; do
  diag bn_ok twice_$set -d "$work/calib_$set.npy" --order $N
  check twice_$set $N --exit-status 1 \
    --finding 'error:input_layer1:already looks normalized' \
    --finding 'error:input_layer1:normalized twice?' \
    --accepted 'error:normalization1:normalization1 = normalization('
done
check twice_01 $N \
  --accepted 'error:normalization1:normalization1 = normalization([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])' \
  --reason 'error:normalization1:/255 they are the training constants again'
check twice_std $N --no-rec '*:*:normalization([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])' \
  --reason 'error:normalization1:neither the constants x255 nor /255 explain it'
# absent: the /255 line applied to the 0-1 data
"$HQ" optimize "$work/bn_net.parsed.har" -d "$work/calib_01.npy" -m "$work/twice_01/diagnostic_bn_net.alls" \
  -o "$work/bn_div_fixed.har" >"$work/div.log" 2>&1
diag bn_div_fixed div_fixed -d "$work/calib_01.npy" --order $N
check div_fixed $N --quiet --exit-status 0

# present: no normalization layer, raw 0-255 photos
diag bn_none raw -d "$work/calib_rgb.npy" --order $N
check raw $N --exit-status 1 \
  --finding "warning:input_layer1:Input layer input_layer1 doesn't have normalization. Was the data normalized manually?" \
  --finding 'error:input_layer1:is not normalized' \
  --accepted 'error:input_layer1:normalization1 = normalization('
# the measured line is the per-channel mean and std of the data (per sample over H x W, averaged;
# std = sqrt of the mean per-sample variance)
expect "the measured normalization line holds the data's per-channel mean and std" \
  /usr/bin/python3 - "$work/raw.json" "$work/calib_rgb.npy" <<'PY'
import json, re, sys
import numpy as np
rec = [r for r in json.load(open(sys.argv[1]))["recommendations"] if r["inspector"] == "NormInspector"][0]
got = [float(v) for v in re.findall(r"[-0-9.e+]+", rec["line"].split("(", 1)[1])]
x = np.load(sys.argv[2]).astype(np.float64)
mean = x.mean(axis=(1, 2)).mean(0)
std = np.sqrt(x.var(axis=(1, 2)).mean(0))
want = list(mean) + list(std)
print("  line:", rec["line"], "\n  numpy:", np.round(want, 4).tolist())
sys.exit(0 if np.allclose(got, want, rtol=1e-4) else 1)
PY
# ... and re-optimizing with it makes the warning and the error go away
"$HQ" optimize "$work/bn_net.parsed.har" -d "$work/calib_rgb.npy" -m "$work/raw/diagnostic_bn_net.alls" \
  -o "$work/bn_raw_fixed.har" >"$work/fix2.log" 2>&1
diag bn_raw_fixed raw_fixed -d "$work/calib_rgb.npy" --order $N
check raw_fixed $N --silent --exit-status 0

# no normalization layer, data normalized by hand (standard by the window): an info
diag bn_none manual -d "$work/calib_std.npy" --order $N
check manual $N --exit-status 1 --quiet --finding "info:input_layer1:normalized before hq" \
  --no-finding 'error:*:'
# no normalization layer, data normalized twice by hand (std 3.6, mean down to -2.1)
diag bn_none manual_twice -d "$work/calib_twice.npy" --order $N
check manual_twice $N --exit-status 1 --finding 'error:input_layer1:is normalized twice' --no-rec '*:*:'

# the window's edges at an input without normalization: mean 4.9 / 5.1, std 0.11 / 0.09
for c in m49:- m51:"is not normalized" s011:- s009:"is normalized twice"; do
  set=${c%%:*} want=${c#*:}
  diag bn_none edge_$set -d "$work/norm_$set.npy" --order $N
  if [ "$want" = - ]; then
    check edge_$set $N --exit-status 1 --no-finding 'error:*:'
  else
    check edge_$set $N --exit-status 1 --finding "error:input_layer1:$want"
  fi
done
# once the x255 line is accepted, the groups offered after it were measured on the un-normalized
# input: they are offered with a warning and default to none (HighPrecision's 16-bit conv2 was
# ranked on data 200x too large)
diag bn_01 stale -d "$work/calib_rgb.npy" --order $N HighPrecisionInspector
check stale $N --exit-status 1 \
  --accepted 'error:normalization1:normalization1 = normalization([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])'
check stale HighPrecisionInspector --refused '*:conv2:quantization_param(conv2, precision_mode=a16_w16)'
if grep -q 'measured before the accepted `normalization1 = normalization' "$work/stale.out" &&
   grep -q 'Accepted 0 of 1 recommended line(s) (non-interactive default: none)' "$work/stale.out"; then
  echo "stale: 16-bit lines after the accepted normalization default to none"
else
  echo "FAIL stale: no stale-evidence warning or a non-none default"; cat "$work/stale.out"
  failures=$((failures + 1))
fi
finish
