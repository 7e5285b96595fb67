#!/usr/bin/env bash
# CompressionInspector on archives made by hq parse + hq optimize from bn_net.onnx and real photos
# (tests/fixtures/inspectors): silent without 4-bit weights (no compression asked, or an explicit
# compression_level=0); 4-bit weights asked through auto_4bit_weights_ratio only ("implicit": no
# compression_level): the share, the warning, the two-line group accepted, and per 4-bit layer the
# measured cost (weight SQNR at 4 against 8 bit, the SQNR lost across it against the 8-bit layers'
# median); re-optimizing with the accepted lines silences it and raises the output SQNR; an explicit
# level equal to the effective one and one overridden by a ratio: the two infos.
source "$HQ_SOURCE_DIR/tests/fixtures/inspectors/lib.sh"
C=CompressionInspector
norm="normalization1 = normalization([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])"
printf '%s\nmodel_optimization_flavor(compression_level=0)\n' "$norm" >"$work/level0.alls"
printf '%s\nmodel_optimization_flavor(compression_level=1)\nmodel_optimization_config(compression_params, auto_4bit_weights_ratio=0.6)\n' \
  "$norm" >"$work/overridden.alls"
quantize plain bn_net.onnx norm_ok.alls calib_rgb.npy
quantize level0 bn_net.onnx level0.alls calib_rgb.npy
quantize implicit bn_net.onnx compress_implicit.alls calib_rgb.npy
quantize explicit bn_net.onnx compress_explicit.alls calib_rgb.npy
quantize overridden bn_net.onnx overridden.alls calib_rgb.npy

# absent
diag plain plain --order $C
check plain $C --status ran --silent
diag level0 level0 --order $C
check level0 $C --silent

# present: implicit
diag implicit implicit -d "$work/calib_rgb.npy" --order $C
check implicit $C --exit-status 0 \
  --finding 'info:-:30.1% of the weights are compressed to 4 bit' \
  --finding 'warning:-:Implicit compression: 30.1% of the weights are at 4 bit' \
  --finding 'warning:-:auto_4bit_weights_ratio' \
  --finding 'info:conv1:weight SQNR' --finding 'info:conv1:measured output SQNR' \
  --finding 'info:conv1:the 8-bit weighted layers lose' --finding 'info:dense1:4-bit weights' \
  --no-finding 'info:conv2:4-bit' \
  --accepted 'warning:-:model_optimization_flavor(compression_level=0)' \
  --accepted 'warning:-:model_optimization_config(compression_params, auto_4bit_weights_ratio=0)'
"$HQ" optimize "$work/bn_net.parsed.har" -d "$work/calib_rgb.npy" \
  -m "$work/implicit/diagnostic_bn_net.alls" -o "$work/fixed.har" >"$work/fixed.log" 2>&1
diag fixed fixed -d "$work/calib_rgb.npy" --order $C
check fixed $C --silent
expect "the accepted lines raise the output SQNR" /usr/bin/python3 - "$work/implicit.json" "$work/fixed.json" <<'PY'
import json, sys
def out_db(path):
    return [l["cumulative_db"] for l in json.load(open(path))["layer_sqnr"] if l["layer"] == "output_layer1"][0]
before, after = out_db(sys.argv[1]), out_db(sys.argv[2])
print(f"  output SQNR: {before:.2f} dB with implicit compression, {after:.2f} dB after the fix")
sys.exit(0 if after > before + 1 else 1)
PY

# explicit level, applied as written
diag explicit explicit --order $C
check explicit $C --finding 'info:-:compression_level=3 is set explicitly in the model script and was applied' \
  --no-finding 'warning:*:' --no-rec '*:*:'
# explicit level overridden by the ratio
diag overridden overridden --order $C
check overridden $C \
  --finding 'info:-:compression_level=1 is set in the model script, but the effective compression is an explicit auto_4bit_weights_ratio' \
  --no-finding 'warning:*:' --no-rec '*:*:'
finish
