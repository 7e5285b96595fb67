#!/usr/bin/env bash
# hq optimize with post_quantization_optimization(finetune): the bundled sample with every weighted
# layer at 4-bit weights (a8_w4), quantized at level 1 (round to nearest, iterative bias
# correction) and at level 2 (finetune, then the same bias correction); the quantized emulation of
# the finetuned archive is closer to the float (fp_optimized) outputs on held-out images
# (sample_eval.npz, not seen by the optimizer) than round-to-nearest's, by a clear margin, and the
# log has the summary and gain lines. An out-of-range key exits 2 with one line naming the script
# and the key, and writes nothing.
set -euo pipefail
. "$HQ_SOURCE_DIR/tests/fixtures/optimize/trainer_e2e.sh"

cp a8_w4.alls finetune.alls
cp a8_w4.alls nearest.alls
echo 'model_optimization_flavor(optimization_level=1)' >>nearest.alls

optimize nearest finetune
grep -q "finetune: skipped (level 1 < 2)" nearest.log
grep -q "^\[info\] finetune: 3 block(s) of 7 layer(s) on 64 sample(s), 32 step(s) each, block loss" finetune.log
grep -Eq "^\[info\] finetune: run \(level 2 >= 2\) on 64 images: .* output SQNR -?[0-9.]+ -> -?[0-9.]+ dB, gain [-+][0-9.]+ dB" finetune.log
gains_over nearest finetune finetune 1.5

# out of range: exit 2, one line naming the script and the key, no archive
refuses nearest 'post_quantization_optimization(finetune, policy=enabled, loss_types=[l1])' \
    "post_quantization_optimization: loss_types: 'l1' is not"
echo "optimize_finetune: ok"
