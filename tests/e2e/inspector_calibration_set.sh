#!/usr/bin/env bash
# CalibrationSetInspector (plugins/) on bn_net (tests/fixtures/inspectors) quantized by hq's own
# hq parse + hq optimize, with calibration sets derived from the 64 committed photo crops by numpy
# in the test's temporary folder: the crops as they are (varied: no warning, the 0..255
# statement), 30% duplicates (19 samples: 10 exact copies, 9 with a small noise; the warning names
# indices), channel 2 zeroed (constant channel), one image 64 times, and the crops against a
# script asking calibset_size=100 (the warning with the calibset_size=64 line, accepted; the
# re-optimized archive is quiet). With held-out data (--verify --verify-data): the second half
# of the crops (the same photos) is no mismatch; the crops in BGR order and in the 0..1 scale
# are, naming the channel and both means.
source "$HQ_SOURCE_DIR/tests/fixtures/inspectors/lib.sh"
A=CalibrationSetInspector
/usr/bin/python3 - "$work" <<'PY'
import os, sys
import numpy as np
out = sys.argv[1]
crops = np.load(os.path.join(out, "calib_rgb.npy")).astype(np.float32)
rng = np.random.default_rng(7)
dup = crops.copy()
for k in range(19):  # samples 45..63 repeat samples 0..18
    dup[45 + k] = crops[k]
    if k % 2:
        dup[45 + k] = np.clip(crops[k] + rng.normal(0, 0.5, crops[k].shape), 0, 255)
np.save(os.path.join(out, "cs_dup30.npy"), dup)
const = crops.copy()
const[..., 2] = 0
np.save(os.path.join(out, "cs_constant.npy"), const)
np.save(os.path.join(out, "cs_one.npy"), np.repeat(crops[:1], 64, axis=0))
np.save(os.path.join(out, "cs_01.npy"), crops / 255.0)
np.save(os.path.join(out, "cs_second_half.npy"), crops[32:])
PY
cat >"$work/cs_big.alls" <<'ALLS'
normalization1 = normalization([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])
model_optimization_config(calibration, calibset_size=100)
ALLS

quantize cs bn_net.onnx norm_ok.alls calib_rgb.npy
diag cs healthy -d "$work/calib_rgb.npy" --order $A
check healthy $A --status ran --quiet \
  --finding 'info:*:span [0, 254]' --finding 'info:*:0..255 data' --no-finding '*:*:repeat'

diag cs dup30 -d "$work/cs_dup30.npy" --order $A
check dup30 $A --finding 'warning:-:19 of 64 calibration samples (30%) repeat an earlier one (10 exact, 9 within 1% of the value range): 45 (copy of 0), 46 (near 1), 47 (copy of 2)' \
  --no-finding 'warning:*:constant'

diag cs constant -d "$work/cs_constant.npy" --order $A
check constant $A --finding 'warning:*:Channel 2 (0) of the input is constant across all 64 calibration samples' \
  --no-finding '*:*:repeat'

diag cs one -d "$work/cs_one.npy" --order $A
check one $A --finding 'warning:-:All 64 calibration samples are one image repeated (63 exact copies'

diag cs unit -d "$work/cs_01.npy" --order $A
check unit $A --quiet --finding 'info:*:0..1 data'

# calibration against held-out data: the archive's script changed the graph (normalization), so
# --verify re-quantizes from the parsed archive
for held in second_half bgr 01; do
  file=$([ $held = bgr ] && echo calib_bgr.npy || echo cs_$held.npy)
  diag cs held_$held -d "$work/calib_rgb.npy" --order $A --verify \
    --verify-from "$work/bn_net.parsed.har" --verify-data "$work/$file"
done
check held_second_half $A --quiet --no-finding '*:*:Calibration and validation data'
check held_bgr $A --finding 'warning:*:Calibration and validation data of the input differ: channel'
check held_01 $A --finding 'warning:*:Calibration and validation data of the input differ: channel' \
  --finding 'warning:*:limits 0.5 and x1.5'

quantize cs_big bn_net.onnx cs_big.alls calib_rgb.npy
diag cs_big big -d "$work/calib_rgb.npy" --order $A --output-model-script "$work/big.alls"
check big $A --finding 'warning:-:The dataset holds 64 sample(s), fewer than the script'"'"'s calibset_size of 100' \
  --accepted 'warning:-:model_optimization_config(calibration, calibset_size=64)'
# the accepted line replaces the script's, and the re-optimized archive is quiet
expect "the written script sets calibset_size once, to 64" \
  test "$(grep -v '^#' "$work/big.alls" | grep calibset_size)" = \
  "model_optimization_config(calibration, calibset_size=64)"
cp "$work/big.alls" "$work/cs_fixed.alls"
quantize cs_fixed bn_net.onnx cs_fixed.alls calib_rgb.npy
diag cs_fixed fixed -d "$work/calib_rgb.npy" --order $A
check fixed $A --quiet
python3 -c "import json,sys;[print(d[\"level\"],d[\"message\"]) for r in sys.argv[1:] for d in json.load(open(r))[\"diagnostics\"] if d[\"inspector\"]==\"CalibrationSetInspector\"]" $work/*.json
finish
