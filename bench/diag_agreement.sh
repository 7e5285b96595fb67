#!/usr/bin/env bash
# diag_agreement.sh — the measurements behind hq-diag's decision-agreement levels (docs/diag.md,
# "Decision outputs"): the headline's output SQNR and decision agreement (quantized against
# fp_optimized, on the diagnosis samples) of outputs a softmax or a sigmoid produces, quantized
# well and badly:
#   cls      PP-OCR's text-direction classifier (ch_ppocr_mobile_v2.0_cls, 48x192, softmax over
#            2 classes) on 64 strips (80 x 320 px, resized) of bench/seeded_ocr.py's images
#   mnv2     torchvision MobileNetV2 (the cached ONNX export) with a softmax appended to its
#            logits in the parsed archive, on the same images centre-cropped to 224 x 224
# each at a8_w8 (the default script: normalization in the script) and with 4-bit weights on every
# layer (quantization_param({*}, precision_mode=a8_w4), a bad quantization on purpose).
# The sigmoid cases (PP-OCR det 320, seeded cases a-d) are bench/seeded_ocr_verify.sh's; the
# crafted destroyed map is tests/e2e/diag_headline.sh's.
#
# usage: bench/diag_agreement.sh [WORK_DIR]   (default: a new folder under /tmp, kept)
# env:   HQ_BUILD_DIR (default <repo>/build), HQ_THREADS (default 2), HQ_MODEL_CACHE
# Prints one row per case: model, script, hq-diag exit status, verdict, SQNR dB, agreement %.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(realpath -m "${HQ_BUILD_DIR:-$repo/build}")
threads=${HQ_THREADS:-2}
work=${1:-$(mktemp -d /tmp/diag_agreement.XXXXXX)}
py=/usr/bin/python3
mkdir -p "$work"
work=$(cd "$work" && pwd)
if ! [ -x "$build/hq" ] || ! [ -x "$build/hq-diag" ]; then
    cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build" -j2 >/dev/null
fi
hq=$build/hq
diag=$build/hq-diag
paths=$("$repo/tests/models/fetch_models.sh")
cls=$(awk '$1 == "cls" { print $2 }' <<<"$paths")
cache=${HQ_MODEL_CACHE:-$repo/.cache/models}
mnv2=$cache/torch/mobilenet_v2.onnx
[ -n "$cls" ] && [ -f "$cls" ] || { echo "diag_agreement.sh: PP-OCR cls model not found" >&2; exit 2; }
[ -f "$mnv2" ] || { echo "diag_agreement.sh: $mnv2 not found" >&2; exit 2; }

"$py" "$repo/bench/seeded_ocr.py" images "$work/data" 320 >/dev/null
"$hq" parse "$cls" -o "$work/cls.har" --tensor-shapes 1,3,48,192 >/dev/null
"$hq" parse "$mnv2" -o "$work/mnv2_logits.har" >/dev/null
"$py" - "$work" "$repo" <<'EOF'
import io, json, os, sys, tarfile
import numpy as np
work, repo = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(repo, "tests", "models"))
from real_cases import resize_bilinear
images = np.load(os.path.join(work, "data", "calib_rgb.npy")).astype(np.float64)
# cls: a horizontal strip of each image, 80 rows from the middle, as a 48 x 192 text line
strips = [resize_bilinear(im[120:200], 48, 192) for im in images]
np.save(os.path.join(work, "cls_calib.npy"), np.stack(strips).astype(np.float32))
# MobileNetV2: 224 x 224 centre crops
np.save(os.path.join(work, "mnv2_calib.npy"), images[:, 48:272, 48:272].astype(np.float32))
# a softmax over the logits, between dense1 and the output layer of the parsed archive
src = os.path.join(work, "mnv2_logits.har")
with tarfile.open(src) as tar:
    members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
hn_name = [n for n in members if n.endswith(".hn")][0]
hn = json.loads(members[hn_name])
layers = hn["layers"]
out = [n for n, l in layers.items() if l["type"] == "output_layer"][0]
dense = layers[out]["input"][0]
net = out.split("/")[0]
sm = net + "/softmax1"
shape = layers[dense]["output_shapes"]
layers[sm] = {"type": "softmax", "input": [dense], "output": [out], "input_shapes": shape,
              "output_shapes": shape, "original_names": [], "params": {"axis": 1}}
layers[dense]["output"] = [sm]
layers[out]["input"] = [sm]
order = hn.get("net_params", {}).get("output_layers_order")
if order:
    hn["net_params"]["output_layers_order"] = [sm if n == dense else n for n in order]
members[hn_name] = json.dumps(hn).encode()
with tarfile.open(os.path.join(work, "mnv2.har"), "w", format=tarfile.USTAR_FORMAT) as tar:
    for name, payload in members.items():
        info = tarfile.TarInfo(name)
        info.size = len(payload)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(payload))
EOF
# preprocessing in the scripts: PaddleOCR cls (BGR, x / 127.5 - 1), torchvision (ImageNet x 255)
cat >"$work/cls_w8.alls" <<'EOF'
input_conversion(rgb_to_bgr)
normalization1 = normalization([127.5, 127.5, 127.5], [127.5, 127.5, 127.5])
EOF
cat >"$work/mnv2_w8.alls" <<'EOF'
normalization1 = normalization([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])
EOF
for m in cls mnv2; do
    { cat "$work/${m}_w8.alls"; echo "quantization_param({*}, precision_mode=a8_w4)"; } \
        >"$work/${m}_w4.alls"
done

for m in cls mnv2; do
    for s in w8 w4; do
        "$hq" optimize "$work/$m.har" -d "$work/${m}_calib.npy" -m "$work/${m}_$s.alls" \
            -o "$work/${m}_$s.har" -j "$threads" >"$work/${m}_$s.optimize.log" 2>&1
        rc=0
        (cd "$work" && NO_COLOR=1 "$diag" --no-interactive -d "${m}_calib.npy" \
            --order NormInspector --json "${m}_$s.json" --log-path "${m}_$s.log" "${m}_$s.har" \
            >"${m}_$s.txt" 2>&1 </dev/null) || rc=$?
        "$py" - "$work/${m}_$s.json" "$m" "$s" "$rc" <<'EOF'
import json, sys
path, model, script, rc = sys.argv[1:5]
d = json.load(open(path))
o = d["output_sqnr_db"][0]
print("%s\t%s\t%s\t%s\t%s\t%.2f\t%.2f" % (model, script, rc, o["decision"], d["verdict"]["level"],
      o["quantized_vs_fp_optimized_db"], o["quantized_vs_fp_optimized_agreement_pct"]))
EOF
    done
done | tee "$work/results.tsv"
echo "diag_agreement.sh: work folder $work"
