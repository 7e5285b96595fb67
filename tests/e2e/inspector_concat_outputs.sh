#!/usr/bin/env bash
# ConcatenatedOutputsInspector on archives made by hq parse + hq optimize (tests/fixtures/
# inspectors): a model whose one output concatenates a logits head and a regression head x100
# (the warning naming the concat, its inputs with their ONNX names, that they could be the outputs,
# and the range each input has alone against the shared range with the bits lost: from the dataset
# and, without -d, from the calibration ranges of the archive); the same two heads as two outputs:
# silent.
source "$HQ_SOURCE_DIR/tests/fixtures/inspectors/lib.sh"
O=ConcatenatedOutputsInspector
quantize joined concat_net.onnx norm_ok.alls calib_rgb.npy
quantize split twoout_net.onnx norm_ok.alls calib_rgb.npy

for with in data calib; do
  args=()
  [ $with = data ] && args=(-d "$work/calib_rgb.npy" --order $O,Clipping) || args=(--order $O)
  diag joined joined_$with "${args[@]}"
  check joined_$with $O --exit-status 0 \
    --finding 'warning:concat1:Output layer output_layer1 is fed by concat layer concat1 of dense1 (digits), dense2 (coverage)' \
    --finding 'warning:concat1:these layers could be the model outputs instead' \
    --finding 'warning:concat1:Shared range [-1.639, 99.39]' \
    --finding 'warning:concat1:dense1 [-1.639, 1.835] (4.9 bits lost)' \
    --finding 'warning:concat1:dense2 [0, 99.39] (0.0 bits lost)' --no-rec '*:*:'
done
expect "bits lost = log2(shared width / own width)" /usr/bin/python3 - "$work/joined_data.json" <<'PY'
import json, math, sys
d = [d for d in json.load(open(sys.argv[1]))["diagnostics"] if d["inspector"] == "ConcatenatedOutputsInspector"][0]
n = d["numbers"]
want = math.log2((n["shared_max"] - n["shared_min"]) / (1.835 + 1.639))
print(f"  max_bits_lost {n['max_bits_lost']:.3f}, expected about {want:.3f}")
sys.exit(0 if abs(n["max_bits_lost"] - want) < 0.01 else 1)
PY

diag split split -d "$work/calib_rgb.npy" --order $O
check split $O --status ran --silent
finish
