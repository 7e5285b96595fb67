#!/usr/bin/env bash
# hq optimize with post_quantization_optimization(adaround): the bundled sample with every weighted
# layer at 4-bit weights (a8_w4), quantized with and without AdaRound; the quantized emulation of
# the AdaRound archive is closer to the float (fp_optimized) outputs on the held-out images
# (sample_eval.npz, not seen by the optimizer) than round-to-nearest's, by a clear margin, and the
# log has the summary line. An out-of-range key exits 2 with one line naming the script and the
# key, and writes nothing.
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
cp "$src/samples/sample_correct.alls" nearest.alls
echo 'quantization_param({conv*, dense*}, precision_mode=a8_w4)' >>nearest.alls
# level 2 (the default) runs finetune: off, so that the rows compare rounding alone
echo 'post_quantization_optimization(finetune, policy=disabled)' >>nearest.alls
cp nearest.alls adaround.alls
echo 'post_quantization_optimization(adaround, policy=enabled, epochs=100, batch_size=8)' \
    >>adaround.alls

for m in nearest adaround; do
    "$HQ" optimize sample.har -d "$src/samples/sample_calib.npy" -m $m.alls -o $m.har \
        --no-noise-analysis -j 2 >$m.log
done
! grep -q "adaround: run" nearest.log
grep -q "adaround: 5 layer(s) on 64 sample(s), 800 step(s) each, reconstruction error" adaround.log

"$HQ" emulate nearest.har --target fp_optimized -d eval.npy -o float.npz -q >/dev/null
sqnr() { "$HQ" compare float.npz --against "$1" -d eval.npy --target quantized -q | awk 'NR == 2 {print $4}'; }
near=$(sqnr nearest.har)
ada=$(sqnr adaround.har)
echo "output SQNR on 120 held-out images: round to nearest $near dB, AdaRound $ada dB"
"$py" -c "import sys; sys.exit(0 if $ada > $near + 2.0 else 1)" ||
    { echo "AdaRound ($ada dB) is not 2 dB above round to nearest ($near dB)"; exit 1; }

# out of range: exit 2, one line naming the script and the key, no archive
cp nearest.alls bad.alls
echo 'post_quantization_optimization(adaround, policy=enabled, b_range=[2, 20])' >>bad.alls
rc=0
"$HQ" optimize sample.har -d "$src/samples/sample_calib.npy" -m bad.alls -o bad.har \
    >/dev/null 2>err.txt || rc=$?
[ "$rc" = 2 ] || { echo "expected exit 2, got $rc"; exit 1; }
[ "$(wc -l <err.txt)" = 1 ]
grep -q "bad.alls:$(wc -l <bad.alls): post_quantization_optimization: b_range must be" err.txt
[ ! -e bad.har ]
echo "optimize_adaround: ok"
