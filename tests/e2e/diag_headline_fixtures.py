#!/usr/bin/python3
"""Writes the archives of tests/e2e/diag_headline.sh into the folder given as argument, from the
committed tests/fixtures/inspectors/data/twoout_net.parsed.har made by `hq parse` (passed as the
second argument: the test parses it first, this script needs numpy only):

  fragile.parsed.har  twoout_net (two heads: dense1 -> output_layer1, dense2 -> output_layer2)
                      with conv2's channels 1 and 2 copies of channel 0, so that global_avg_pool2
                      holds the same value x three times, and dense2's kernel [7, -3.4, -3.4, 0...]
                      (bias 0): the second head computes 0.2 x as a difference of large terms.
                      With 8-bit weights the rounding of -3.4 and the activation noise leave it
                      about 14 dB (degraded); with 4-bit weights -3.4 rounds to -3 and the head
                      computes about 1.0 x, an error larger than the signal: below 0 dB. dense1, whose
                      weights do not cancel, keeps the first head above 30 dB.
  sigmoid.parsed.har  the same network with a sigmoid fused into dense2, whose output is then a
                      probability map (one element per sample) judged by its decision agreement:
                      dense2's kernel [70, -34, -34, 0...] and bias -0.48 put the float head's
                      pre-activation 2 x - 0.48 below 0 for half of the calibration samples (x's
                      median is 0.24). With 4-bit weights -34 rounds to -30 and the head computes
                      10 x - 0.48: most of the samples below 0.5 land above it, a destroyed map
                      (agreement about 61%); with 8-bit weights the map keeps 25 dB.
  sigmoid_kept.parsed.har  the same with dense2's kernel x 0.5 and bias 0: x >= 0 keeps every
                      sample at or above 0.5, with x in float and 5 x under 4-bit weights: the
                      values move far (under 10 dB) and no decision changes.
  w4_head.alls        4-bit weights on dense2 only, equalization and bias correction off (they
                      would move the weights set here)
  w8.alls             the same without the 4-bit line

Run: /usr/bin/python3 tests/e2e/diag_headline_fixtures.py OUT_DIR twoout_net.parsed.har
"""
import io
import json
import os
import sys
import tarfile

import numpy as np

from har_fixture import npz_bytes, write_har

out_dir, src = sys.argv[1], sys.argv[2]
net = "twoout_net"
with tarfile.open(src) as tar:
    members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
params = dict(np.load(io.BytesIO(members[f"{net}.npz"])))
kernel = params[f"{net}/conv2/kernel:0"].copy()  # HWIO
bias = params[f"{net}/conv2/bias:0"].copy()
for c in (1, 2):
    kernel[..., c] = kernel[..., 0]
    bias[c] = bias[0]
params[f"{net}/conv2/kernel:0"] = kernel
params[f"{net}/conv2/bias:0"] = bias
dense = np.zeros_like(params[f"{net}/dense2/kernel:0"])
dense[:3, 0] = [7.0, -3.4, -3.4]
params[f"{net}/dense2/kernel:0"] = dense
params[f"{net}/dense2/bias:0"] = np.zeros_like(params[f"{net}/dense2/bias:0"])


def write_fixture(name, members, params):
    write_har(os.path.join(out_dir, name), {**members, f"{net}.npz": npz_bytes(params)})


write_fixture("fragile.parsed.har", members, params)

# the sigmoid head: a threshold decision per sample, flipped by the 4-bit rounding of -34
hn = json.loads(members[f"{net}.hn"])
hn["layers"][f"{net}/dense2"]["params"]["activation"] = "sigmoid"
sigmoid_members = dict(members)
sigmoid_members[f"{net}.hn"] = json.dumps(hn, indent=1).encode()
sigmoid_params = dict(params)
sigmoid_params[f"{net}/dense2/kernel:0"] = dense * 10
sigmoid_params[f"{net}/dense2/bias:0"] = np.full_like(params[f"{net}/dense2/bias:0"], -0.48)
write_fixture("sigmoid.parsed.har", sigmoid_members, sigmoid_params)
sigmoid_params[f"{net}/dense2/kernel:0"] = dense * -10
sigmoid_params[f"{net}/dense2/bias:0"] = np.zeros_like(params[f"{net}/dense2/bias:0"])
write_fixture("sigmoid_kept.parsed.har", sigmoid_members, sigmoid_params)

common = ("pre_quantization_optimization(equalization, policy=disabled)\n"
          "post_quantization_optimization(bias_correction, policy=disabled)\n")
with open(os.path.join(out_dir, "w8.alls"), "w") as f:
    f.write("# 8-bit everywhere: both heads healthy\n" + common)
with open(os.path.join(out_dir, "w4_head.alls"), "w") as f:
    f.write("# 4-bit weights on the fragile head only\n" + common +
            "quantization_param(dense2, precision_mode=a8_w4)\n")
