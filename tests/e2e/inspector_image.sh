#!/usr/bin/env bash
# ImageInspector on archives made by hq parse + hq optimize from bn_net.onnx and real photos
# (tests/fixtures/inspectors): RGB photos (0-255 and 0-1) give standard.jpg and inverse.jpg (4x4
# grids, valid JPEGs, the second the first with channels reversed), the info saying to compare them
# and the RGB hint (an info); the same photos BGR give the BGR hint (a warning) and the
# input_conversion line, offered but not accepted by default, which hq optimize applies; data with
# negative values (normalized) is skipped. Then the hint as hq-diag computes it on the held-out
# half of measure_rgb_bgr.py's real photographs (skimage, opencv-doc, darknet: whichever are
# installed), each in both channel orders: the hit rate is printed and must match the one the
# script measures on the same photos (and inspector_util.h's INSP_RGB_BGR_HIT_RATE when every
# photo is there).
source "$HQ_SOURCE_DIR/tests/fixtures/inspectors/lib.sh"
I=ImageInspector
quantize bn bn_net.onnx norm_ok.alls calib_rgb.npy

diag bn rgb -d "$work/calib_rgb.npy" --order $I
check rgb $I --status ran --exit-status 0 \
  --finding 'info:input_layer1:Saved standard.jpg (the first 16 images as stored) and inverse.jpg (channels reversed)' \
  --finding 'info:input_layer1:compare them' \
  --finding 'info:-:Heuristic hint: the data looks RGB' --finding 'info:-:held-out real photographs' \
  --no-finding 'warning:*:looks BGR' --no-rec '*:*:'
expect "standard.jpg and inverse.jpg are 4x4 grids of the photos, channels swapped" \
  /usr/bin/python3 - "$work/rgb" "$work/calib_rgb.npy" <<'PY'
import sys
import numpy as np
from PIL import Image
std = np.asarray(Image.open(sys.argv[1] + "/hq-diag_files/standard.jpg").convert("RGB"), np.float64)
inv = np.asarray(Image.open(sys.argv[1] + "/hq-diag_files/inverse.jpg").convert("RGB"), np.float64)
data = np.load(sys.argv[2])[:16].astype(np.float64)
grid = data.reshape(4, 4, 32, 32, 3).transpose(0, 2, 1, 3, 4).reshape(128, 128, 3)
err_std = np.abs(std - grid).mean()
err_inv = np.abs(inv - grid[..., ::-1]).mean()
print(f"  {std.shape}: mean abs difference to the data {err_std:.2f} (standard), {err_inv:.2f} (inverse, reversed)")
sys.exit(0 if std.shape == (128, 128, 3) and err_std < 6 and err_inv < 6 else 1)
PY
diag bn rgb01 -d "$work/calib_01.npy" --order $I
check rgb01 $I --finding 'info:input_layer1:Saved standard.jpg' --finding 'info:-:looks RGB'

diag bn bgr -d "$work/calib_bgr.npy" --order $I
check bgr $I --exit-status 0 --finding 'info:input_layer1:Saved standard.jpg' \
  --finding 'warning:input_layer1:Heuristic hint: the data looks BGR' \
  --refused 'warning:input_layer1:input_conversion(input_layer1, bgr_to_rgb)'
expect "hq optimize applies the offered input_conversion line" bash -c "
  printf 'input_conversion(input_layer1, bgr_to_rgb)\n' >'$work/conv.alls' &&
  cat '$work/norm_ok.alls' >>'$work/conv.alls' &&
  '$HQ' optimize '$work/bn_net.parsed.har' -d '$work/calib_bgr.npy' -m '$work/conv.alls' -o '$work/conv.har' 2>&1 |
    grep -q 'input_conversion(bgr_to_rgb): channel order of input_layer1 reversed'"

# absent: normalized data (negative values) is not images
diag bn std -d "$work/calib_std.npy" --order $I
check std $I --status skipped --silent
expect "no image is written for normalized data" test ! -e "$work/std/hq-diag_files"

# the hint on held-out real photographs, as hq-diag computes it
held="$work/heldout"
/usr/bin/python3 "$fixtures/measure_rgb_bgr.py" --write-heldout "$held" >"$work/measure.txt"
while IFS=$'\t' read -r file truth; do
  (cd "$held" && "$HQ_DIAG" --no-interactive --order $I -d "$file" --json "$file.json" "$work/bn.har" \
    </dev/null >/dev/null 2>&1) || true
done <"$held/heldout.tsv"
grep "^held out, with" "$work/measure.txt"
expect "the product's hit rate on held-out photos matches the measurement (within one image)" \
  /usr/bin/python3 - "$held" "$work/measure.txt" "$HQ_SOURCE_DIR/inspectors/inspector_util.h" <<'PY'
import json, re, sys
held, measure, util = sys.argv[1:]
right = wrong = none = 0
for line in open(held + "/heldout.tsv"):
    name, truth = line.split()
    d = [d for d in json.load(open(f"{held}/{name}.json"))["diagnostics"] if "rgb_score" in d["numbers"]]
    m = d[0]["message"] if d else ""
    verdict = "rgb" if "looks RGB" in m else "bgr" if "looks BGR" in m else "none"
    right += verdict == truth
    wrong += verdict not in (truth, "none")
    none += verdict == "none"
total = right + wrong + none
text = open(measure).read()
m = re.search(r": (\d+) right, (\d+) wrong, (\d+) undecided of (\d+)", text)
script_right, script_total = int(m.group(1)), int(m.group(4))
compiled = float(re.search(r"INSP_RGB_BGR_HIT_RATE ([0-9.]+)", open(util).read()).group(1))
print(f"  hq-diag on the held-out photos (both orders, 32x32): {right} right, {wrong} wrong, "
      f"{none} undecided of {total}: hit rate {right / max(total, 1):.1%} "
      f"(script: {script_right / script_total:.1%}, inspector_util.h: {compiled:.0%})")
ok = total == script_total and abs(right - script_right) <= 1 and total >= 6
if "photographs: 37 found" in text:   # every photo installed: the documented figure
    ok = ok and abs(right / total - compiled) <= 1.0 / total + 1e-9
sys.exit(0 if ok else 1)
PY
finish
