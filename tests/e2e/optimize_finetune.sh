#!/usr/bin/env bash
# hq optimize with post_quantization_optimization(finetune): the bundled sample with every weighted
# layer at 4-bit weights (a8_w4), quantized at level 1 (round to nearest, iterative bias
# correction) and at level 2 (finetune, then the same bias correction); the quantized emulation of
# the finetuned archive is closer to the float (fp_optimized) outputs on held-out images
# (sample_eval.npz, not seen by the optimizer) than round-to-nearest's, by a clear margin, and the
# log has the summary and gain lines. An out-of-range key exits 2 with one line naming the script
# and the key, and writes nothing.
set -euo pipefail
py=/usr/bin/python3
src=$HQ_SOURCE_DIR
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

"$HQ" parse "$src/samples/sample.onnx" -o sample.har >/dev/null
"$py" -c "
import numpy as np
d = np.load('$src/samples/sample_eval.npz')
np.save('eval.npy', d['images'][:120].astype(np.float32))"
cp "$src/samples/sample_correct.alls" finetune.alls
echo 'quantization_param({conv*, dense*}, precision_mode=a8_w4)' >>finetune.alls
cp finetune.alls nearest.alls
echo 'model_optimization_flavor(optimization_level=1)' >>nearest.alls

for m in nearest finetune; do
    "$HQ" optimize sample.har -d "$src/samples/sample_calib.npy" -m $m.alls -o $m.har \
        --no-noise-analysis -j 2 >$m.log
done
grep -q "finetune: skipped (level 1 < 2)" nearest.log
grep -q "^\[info\] finetune: 3 block(s) of 7 layer(s) on 64 sample(s), 32 step(s) each, block loss" finetune.log
grep -Eq "^\[info\] finetune: run \(level 2 >= 2\) on 64 images: .* output SQNR -?[0-9.]+ -> -?[0-9.]+ dB, gain [-+][0-9.]+ dB" finetune.log

"$HQ" emulate nearest.har --target fp_optimized -d eval.npy -o float.npz -q >/dev/null
sqnr() { "$HQ" compare float.npz --against "$1" -d eval.npy --target quantized -q | awk 'NR == 2 {print $4}'; }
near=$(sqnr nearest.har)
tuned=$(sqnr finetune.har)
echo "output SQNR on 120 held-out images: round to nearest $near dB, finetune $tuned dB"
"$py" -c "import sys; sys.exit(0 if $tuned > $near + 1.5 else 1)" ||
    { echo "finetune ($tuned dB) is not 1.5 dB above round to nearest ($near dB)"; exit 1; }

# out of range: exit 2, one line naming the script and the key, no archive
cp nearest.alls bad.alls
echo 'post_quantization_optimization(finetune, policy=enabled, loss_types=[l1])' >>bad.alls
rc=0
"$HQ" optimize sample.har -d "$src/samples/sample_calib.npy" -m bad.alls -o bad.har \
    >/dev/null 2>err.txt || rc=$?
[ "$rc" = 2 ] || { echo "expected exit 2, got $rc"; exit 1; }
[ "$(wc -l <err.txt)" = 1 ]
grep -q "bad.alls:$(wc -l <bad.alls): post_quantization_optimization: loss_types: 'l1' is not" err.txt
[ ! -e bad.har ]
echo "optimize_finetune: ok"
