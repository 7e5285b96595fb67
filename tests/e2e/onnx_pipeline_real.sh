#!/usr/bin/env bash
# The whole pipeline on real torch exports (Debian's torch, random seeded weights, 64x64, cached in
# the model cache): a channels-last MobileNetV2 with its preprocessing ((x / 255 - mean) / std on
# NHWC pixels, permuted inside: one normalization layer; tests/models/make_pipeline_models.py), a
# YOLOv8n-style detector cut at its three heads before the DFL decode, torchvision's ShuffleNetV2
# x0.5 and ConvNeXt-Tiny (tests/models/make_convnext.py, opset 17). For each: hq parse, hq optimize
# on 8 calibration samples in the model's own layout (for ConvNeXt 4, and a script with
# compression_level=0 and analytic bias correction: implicit 4-bit compression's weight search and
# iterative bias correction would take a minute more; tests/e2e/onnx_convnext.sh runs them),
# hq-diag non-interactively on 4 held-out samples with torch's outputs as --reference (exit 0 or 1,
# never 2; the headline table, the JSON and the model script with its recommendation written),
# hq compile, and hq run of the program at 1 and 2 threads and of the compiled archive, each
# writing the very bytes of hq emulate --target quantized (reference kernels; the default kernels
# too). From hq-diag's JSON: one headline row per output, the translation (native emulation
# against torch) at least 40 dB on every output, and the quantized stage within 0.5 dB of the
# quantized emulation's SQNR against torch computed here. ConvNeXt's quantized output must reach
# 15 dB (measured 25 dB); the other three are printed only (measured 0.6 to 7 dB): their random
# weights amplify any noise, in torch itself 40 dB of noise on the input leaves 21 dB at the
# YOLOv8 heads and 10 dB at ShuffleNet's logits, so 8-bit rounding everywhere leaves little.
# The detector uncut (its decode in the graph) parses too, and its native emulation equals torch's
# boxes and scores within 1e-4 of their largest value. And the user's next step on MobileNetV2:
# hq optimize with hq-diag's model script (a layer at a16_w16 among 8-bit ones), every precision
# it sets applied, compiled and run bit-exact again.
# Skipped (exit 0 with a note) only when /usr/bin/python3 cannot import torch and torchvision.
set -euo pipefail
. "$HQ_SOURCE_DIR/tests/fixtures/onnx/e2e_prelude.sh"
need_python onnx_pipeline_real torch torchvision
make_scratch
src=$HQ_SOURCE_DIR
dir=$("$py" "$src/tests/models/make_pipeline_models.py" 2>"$tmp/models.err" | tail -n1) ||
    { echo "FAIL tests/models/make_pipeline_models.py: $(tail -n1 "$tmp/models.err")"; exit 1; }
cx=$(dirname "$dir")/convnext
: >"$tmp/names"
. "$src/tests/fixtures/deploy/compare.sh"
status=0
fail() { echo "FAIL $*"; status=1; }

# ConvNeXt-Tiny under the same file names: 4 calibration images, torch's logits as the reference
ln -s "$cx/convnext_tiny_op17.onnx" "$tmp/convnext_tiny.onnx"
ln -s "$cx/input_nhwc.npy" "$tmp/convnext_tiny.input.npy"
"$py" - "$cx" "$tmp/convnext_tiny" <<'PY'
import sys
import numpy as np
cx, stem = sys.argv[1:]
np.save(stem + ".calib.npy", np.load(cx + "/calib_nhwc.npy")[:4])
np.savez(stem + ".output.npz", logits=np.load(cx + "/torch_output.npy"))
PY
cat >"$tmp/convnext_tiny.alls" <<'ALLS'
model_optimization_flavor(compression_level=0)
post_quantization_optimization(bias_correction, policy=enabled, mode=analytic)
ALLS
for m in nhwc_mobilenet_v2 yolov8_heads shufflenet_v2; do
    for f in onnx input.npy calib.npy output.npz; do ln -s "$dir/$m.$f" "$tmp/$m.$f"; done
done

# pipeline NAME [hq parse options]: parse, optimize, hq-diag, then compare.sh's compile and runs
pipeline() {
    local name=$1 stem=$tmp/$1 rc=0
    shift
    "$HQ" parse "$stem.onnx" -o "$stem.har" "$@" >/dev/null || { fail "$name: hq parse"; return; }
    local script=()
    [ -e "$stem.alls" ] && script=(-m "$stem.alls")
    "$HQ" optimize "$stem.har" -d "$stem.calib.npy" "${script[@]}" -o "${stem}_q.har" \
        --no-noise-analysis >"$stem.opt.txt" 2>&1 ||
        { fail "$name: hq optimize: $(tail -n1 "$stem.opt.txt")"; return; }
    "$HQ_DIAG" --no-interactive -d "$stem.input.npy" --reference "$stem.output.npz" \
        --json "$stem.diag.json" --output-model-script "$stem.diag.alls" \
        --log-path "$stem.diag.log" "${stem}_q.har" </dev/null >"$stem.diag.txt" 2>&1 || rc=$?
    [ $rc -le 1 ] || fail "$name: hq-diag exit $rc: $(grep -m1 error "$stem.diag.txt")"
    grep -q "Output SQNR (dB) .*native vs reference" "$stem.diag.txt" ||
        fail "$name: no headline table: $(head -n3 "$stem.diag.txt")"
    [ -s "$stem.diag.json" ] || fail "$name: hq-diag wrote no JSON"
    grep -q "^model_optimization_config(calibration, calibset_size=" "$stem.diag.alls" ||
        fail "$name: hq-diag wrote no model script with its recommendation"
    compare "$name" "$stem.input.npy"
}

# the detector uncut: the decode (softmax over the DFL bins, the arange conv, anchors, strides)
# converts too, and computes torch's boxes and scores
"$HQ" parse "$tmp/yolov8_heads.onnx" -o "$tmp/yolov8_full.har" >/dev/null
"$HQ" emulate "$tmp/yolov8_full.har" -d "$tmp/yolov8_heads.input.npy" -o "$tmp/yolov8_full.npz" \
    >/dev/null
"$py" - "$tmp/yolov8_full.npz" "$dir/yolov8_heads.decoded.npy" <<'PY' || status=1
import sys
import numpy as np
out = np.load(sys.argv[1])
got = out[out.files[0]].astype(np.float64)
ref = np.load(sys.argv[2]).astype(np.float64)  # [N, C, L]: hq holds it as [N, 1, L, C]
ref = ref.transpose(0, 2, 1).reshape(got.shape) if got.size == ref.size else None
err = np.abs(got - ref).max() if ref is not None else np.inf
scale = np.abs(ref).max() if ref is not None else 0
print("%s yolov8 uncut (decode in the graph): %s, max|hq - torch| %.3g of max %.4g" % (
    "ok  " if err <= 1e-4 * scale else "FAIL", got.shape, err, scale))
sys.exit(0 if err <= 1e-4 * scale else 1)
PY

pipeline nhwc_mobilenet_v2
# the user's next step: hq optimize with hq-diag's script (for this model a 16-bit layer among
# 8-bit ones), every precision it sets applied, and the program still bit-exact
m=nhwc_mobilenet_v2
if "$HQ" optimize "$tmp/$m.har" -d "$tmp/$m.calib.npy" -m "$tmp/$m.diag.alls" \
    -o "$tmp/${m}_diag_q.har" --no-noise-analysis >"$tmp/opt2.txt" 2>&1; then
    "$HQ" info "$tmp/${m}_diag_q.har" >"$tmp/${m}_diag.info"
    sed -n 's/^quantization_param(\([^,]*\), precision_mode=\([a-z0-9_]*\)).*/\1 \2/p' \
        "$tmp/$m.diag.alls" | while read -r layer mode; do
        awk -v l="$m/$layer" -v p="$mode" '$1 == l && $NF == p { found = 1 } END { exit !found }' \
            "$tmp/${m}_diag.info" || echo "$layer is not $mode"
    done >"$tmp/modes.txt"
    [ ! -s "$tmp/modes.txt" ] || fail "$m with hq-diag's script: $(cat "$tmp/modes.txt")"
    echo "$m with hq-diag's script: $(grep -c '^quantization_param' "$tmp/$m.diag.alls" || true) precision line(s) applied"
    compare "${m}_diag" "$tmp/$m.input.npy"
else
    fail "$m: hq optimize -m (hq-diag's script): $(tail -n1 "$tmp/opt2.txt")"
fi
pipeline yolov8_heads --end-node-names /detect/Concat /detect/Concat_1 /detect/Concat_2
pipeline shufflenet_v2
pipeline convnext_tiny

"$py" - "$tmp" <<'PY' || status=1
import json
import os
import sys
import numpy as np
sys.path.insert(0, os.environ["HQ_SOURCE_DIR"] + "/tests/fixtures/deploy")
import compare
tmp = sys.argv[1]
ok = True
for name in compare.names(tmp):
    model = name[:-len("_diag")] if name.endswith("_diag") else name
    emu = np.load("%s/%s_emu.npz" % (tmp, name))
    differ = list(compare.differences(tmp, name))
    # the quantized outputs against torch's, output by output (hq's NHWC, torch's in order)
    ref = np.load("%s/%s.output.npz" % (tmp, model))
    against_torch = []
    for k, r in zip(sorted(emu.files), ref.files):
        q, t = emu[k].astype(np.float64), ref[r].astype(np.float64).reshape(emu[k].shape)
        against_torch.append(10 * np.log10((t ** 2).sum() / ((q - t) ** 2).sum()))
    if name != model:  # the second round, with hq-diag's script: no hq-diag run of its own
        print("%s %s: run (1 and 2 threads, compiled archive) and the default kernels %s "
              "quantized emulation; quantized emulation vs torch %s dB" % (
                  "FAIL" if differ else "ok  ", name,
                  "DIFFER (%s) from" % ", ".join(differ) if differ else "equal",
                  "/".join("%.1f" % s for s in against_torch)))
        ok &= not differ
        continue
    diag = json.load(open("%s/%s.diag.json" % (tmp, name)))
    rows = diag["output_sqnr_db"]
    translation = [r["native_vs_reference_db"] for r in rows]
    quantized = [r["quantized_vs_fp_optimized_db"] for r in rows]
    floor = 15 if name == "convnext_tiny" else -np.inf
    good = (not differ and len(rows) == len(emu.files) and
            all(t is not None and t >= 40 for t in translation) and
            all(q is not None and abs(q - s) <= 0.5 for q, s in zip(quantized, against_torch))
            and min(against_torch) >= floor)
    print("%s %s: %d output(s); run (1 and 2 threads, compiled archive) and the default kernels "
          "%s quantized emulation; hq-diag exit %d, SQNR native vs torch %s dB, quantized vs "
          "fp_optimized %s dB; quantized emulation vs torch %s dB" % (
              "ok  " if good else "FAIL", name, len(emu.files),
              "equal" if not differ else "DIFFER (%s) from" % ", ".join(differ),
              diag["exit_status"], "/".join("%.1f" % t for t in translation if t is not None),
              "/".join("%.1f" % q for q in quantized if q is not None),
              "/".join("%.1f" % s for s in against_torch)))
    ok &= good
sys.exit(0 if ok else 1)
PY
[ "$(wc -w <"$tmp/names")" = 5 ] ||
    fail "$(($(wc -w <"$tmp/names") - 1)) of 4 models went the whole way (and the second round)"
exit $status
