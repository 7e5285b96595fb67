#!/usr/bin/env bash
# hq optimize with post_quantization_optimization(adaround): the bundled sample with every weighted
# layer at 4-bit weights (a8_w4), quantized with and without AdaRound; the quantized emulation of
# the AdaRound archive is closer to the float (fp_optimized) outputs on the held-out images
# (sample_eval.npz, not seen by the optimizer) than round-to-nearest's, by a clear margin, and the
# log has the summary line. An out-of-range key exits 2 with one line naming the script and the
# key, and writes nothing.
set -euo pipefail
. "$HQ_SOURCE_DIR/tests/fixtures/optimize/trainer_e2e.sh"

cp a8_w4.alls nearest.alls
# level 2 (the default) runs finetune: off, so that the rows compare rounding alone
echo 'post_quantization_optimization(finetune, policy=disabled)' >>nearest.alls
cp nearest.alls adaround.alls
echo 'post_quantization_optimization(adaround, policy=enabled, epochs=100, batch_size=8)' \
    >>adaround.alls

optimize nearest adaround
if grep -q "adaround: run" nearest.log; then echo "FAIL round to nearest ran AdaRound"; exit 1; fi
grep -q "adaround: 5 layer(s) on 64 sample(s), 800 step(s) each, reconstruction error" adaround.log
gains_over nearest adaround AdaRound 2.0

# out of range: exit 2, one line naming the script and the key, no archive
refuses nearest 'post_quantization_optimization(adaround, policy=enabled, b_range=[2, 20])' \
    "post_quantization_optimization: b_range must be"
echo "optimize_adaround: ok"
