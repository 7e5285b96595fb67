#!/usr/bin/python3
"""Writes the archives the hq-diag e2e tests run on, into the folder given as argument:

  parsed.har     samples/tiny.har as is (state parsed_model)
  quantized.har  the same network marked quantized_model, with fp-optimized params (a copy of the
                 native ones), a <net>.q.npz holding noise-analysis SQNR for conv1/conv2, and a
                 model script whose conv1 precision line contradicts TestFindings' recommendation
  typo.har       quantized.har with a misspelt command in its model script (written by a tool
                 other than hq optimize, which refuses it)

The quantized params are not a real quantization: they exist to exercise hq-diag's plumbing
(state checks, noise loading, script merge), not the integer emulation.
Run: /usr/bin/python3 tests/e2e/diag_fixtures.py OUT_DIR
"""
import json
import os
import sys
import tarfile

import numpy as np

from har_fixture import npz_bytes, write_har

out_dir = sys.argv[1]
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
src = os.path.join(root, "samples", "tiny.har")

with tarfile.open(src) as tar:
    members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
with open(os.path.join(out_dir, "parsed.har"), "wb") as f:
    f.write(open(src, "rb").read())

net = "tiny"
meta = json.loads(members[f"{net}.metadata.json"])
meta["state"] = "quantized_model"
members[f"{net}.metadata.json"] = json.dumps(meta, indent=2).encode()
members[f"{net}.fpo.npz"] = members[f"{net}.npz"]
q = {
    f"{net}/conv1/layer_noise_analysis/snr:0": np.array([8.5], np.float32),
    f"{net}/conv2/layer_noise_analysis/snr:0": np.array([21.0], np.float32),
    f"{net}/conv1/qp_scale:0": np.array([0.05], np.float32),
    f"{net}/compression/ratio_4bit:0": np.array([0.0], np.float32),
}
members[f"{net}.q.npz"] = npz_bytes(q)
members[f"{net}.alls"] = (
    "# test script\n"
    "normalization1 = normalization([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])\n"
    "quantization_param(conv1, precision_mode=a8_w8)  # chosen by hand\n"
    "model_optimization_flavor(optimization_level=2)\n").encode()



def write_archive(name):
    write_har(os.path.join(out_dir, name), members)


write_archive("quantized.har")
members[f"{net}.alls"] = (
    "# test script\n"
    "quantizaton_param(conv1, precision_mode=a8_w8)\n").encode()
write_archive("typo.har")
