#!/usr/bin/env bash
# Optimization levels on the sample (samples/sample.onnx, sample_calib.npy): each level 0..4 logs
# one line per algorithm, run or skipped with the reason (finetune at level 2 only, AdaRound from
# level 3, each on what the dataset has); an algorithm on the integer params logs its
# output-SQNR gain as numbers; an explicit policy beats the level; the gain is measured on the
# samples beyond calibset_size when the dataset has them, else on calibration samples, and on
# calibration samples it is the SQNR the noise analysis stores for the output layer.
set -euo pipefail
py=/usr/bin/python3
s="$HQ_SOURCE_DIR/samples"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
"$HQ" parse "$s/sample.onnx" -o sample.har >/dev/null

# optimize LOG-NAME SCRIPT-LINES...: the sample's script plus the lines; the log in LOG-NAME.txt
optimize() {
  local name=$1
  shift
  { cat "$s/sample_correct.alls"; printf '%s\n' "$@"; } >"$name.alls"
  "$HQ" optimize sample.har -d "$s/sample_calib.npy" -m "$name.alls" -o "$name.har" \
    --no-noise-analysis >"$name.txt" 2>&1 || { cat "$name.txt"; exit 1; }
}
has() { grep -qF -- "$2" "$1.txt" || { echo "$1: no line '$2'"; cat "$1.txt"; exit 1; }; }
hasnt() { if grep -qF -- "$2" "$1.txt"; then echo "$1: unexpected '$2'"; cat "$1.txt"; exit 1; fi; }
gain='bias_correction: run \([^)]*\): iterative, [0-9]+ layer\(s\) corrected, [0-9.]+ s; output SQNR -?[0-9]+\.[0-9]+ -> -?[0-9]+\.[0-9]+ dB, gain [-+][0-9]+\.[0-9]+ dB on (calibration|held-back) samples$'

for level in 0 1 2 3 4; do
  optimize L$level "model_optimization_flavor(optimization_level=$level)"
  has L$level "[info] optimization level $level (L$level.alls:5)"
  has L$level "[info] equalization: run (level $level >= 0)"
done
optimize default
has default "[info] optimization level 2 (the default)"

has L0 "[info] bias_correction: skipped (level 0 < 1)"
has L0 "[info] finetune: skipped (level 0 < 2)"
has L0 "[info] adaround: skipped (level 0 < 3)"
hasnt L0 "output SQNR"
has L1 "[info] finetune: skipped (level 1 < 2)"
has L1 "[info] adaround: skipped (level 1 < 3)"
has L2 "[info] finetune: run (level 2 >= 2) on 64 images: level 2 wants 1024, the dataset has 64"
has L3 "[info] finetune: skipped (level 3 > 2)"
has L4 "[info] finetune: skipped (level 4 > 2)"
has L2 "[info] adaround: skipped (level 2 < 3)"
has L3 "[info] adaround: run (level 3 >= 3) on 64 images: level 3 wants 256, the dataset has 64"
has L4 "[info] adaround: run (level 4 >= 3) on 64 images: level 4 wants 1024, the dataset has 64"
for level in 1 2 3 4; do
  has L$level "[info] bias_correction: run (level $level >= 1): iterative"
  grep -Eq "^\[info\] $gain" L$level.txt || { echo "L$level: no gain line"; cat L$level.txt; exit 1; }
done
# the levels from 1 on run the same algorithms in hq: the same integer params
cmp <(tar -xOf L1.har sample.q.npz) <(tar -xOf L4.har sample.q.npz)

# the script's policy beats the level, either way
optimize up "model_optimization_flavor(optimization_level=0)" \
  "post_quantization_optimization(bias_correction, policy=enabled, mode=analytic)"
has up "[info] bias_correction: run (policy=enabled in the script): analytic"
optimize down "post_quantization_optimization(bias_correction, policy=disabled)" \
  "pre_quantization_optimization(equalization, policy=disabled)" \
  "post_quantization_optimization(finetune, policy=disabled)"
has down "[info] bias_correction: skipped (policy=disabled in the script)"
has down "[info] equalization: skipped (policy=disabled in the script)"
has down "[info] finetune: skipped (policy=disabled in the script)"
optimize ask "model_optimization_flavor(optimization_level=0)" \
  "post_quantization_optimization(adaround, policy=enabled)"
has ask "[info] adaround: run (policy=enabled in the script)"
hasnt ask "adaround: not applied"

# where the gain is measured: the 64 samples beyond calibset_size 48 -> the last 16 held back
optimize held "model_optimization_config(calibration, calibset_size=48)"
has held "output SQNR measured on 16 held-back sample(s) [48, 64) that calibration did not see"
grep -Eq "^\[info\] $gain" held.txt
grep -q "gain .* on held-back samples" held.txt
has L2 "output SQNR measured on 16 calibration sample(s): the dataset has no sample beyond calibset_size 64"

# on 16 calibration samples the final SQNR is the noise analysis' SNR of the output layer
"$py" -c "import numpy as np; np.save('c16.npy', np.load('$s/sample_calib.npy')[:16])"
"$HQ" optimize sample.har -d c16.npy -m "$s/sample_correct.alls" -o c16.har >c16.txt
grep -q "output SQNR measured on 16 calibration sample(s)" c16.txt
"$py" - <<'PY'
import io, re, tarfile
import numpy as np
log = open("c16.txt").read()
after = float(re.search(r"bias_correction: run .* -> (-?[0-9.]+) dB", log).group(1))
q = np.load(io.BytesIO(tarfile.open("c16.har").extractfile("sample.q.npz").read()))
snr = float(q["sample/output_layer1/layer_noise_analysis/snr:0"][0])
assert abs(after - snr) < 0.01, (after, snr)
PY
echo ok
