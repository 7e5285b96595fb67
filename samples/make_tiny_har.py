#!/usr/bin/python3
"""Writes samples/tiny.har (a small parsed CNN archive in hq's HAR layout) and
samples/tiny_calib.npy (16 calibration samples, NHWC uint8-range floats).

The weights are drawn from a fixed seed: this archive exists to exercise the file formats
(`hq info`, archive/dataset loading), not to be accurate. Run: /usr/bin/python3 samples/make_tiny_har.py
"""
import io
import json
import os
import tarfile

import numpy as np

NET = "tiny"
HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20261123)


def layer(kind, inputs, outputs, in_shapes, out_shape, params=None, original=None):
    return {
        "type": kind,
        "input": [f"{NET}/{n}" for n in inputs],
        "output": [f"{NET}/{n}" for n in outputs],
        "input_shapes": in_shapes,
        "output_shapes": [out_shape] * max(1, len(outputs)),
        "original_names": original or [],
        "params": params or {},
    }


def conv(kh, kw, cin, cout, stride, pads, act):
    return {"kernel_shape": [kh, kw, cin, cout], "strides": [1, stride, stride, 1],
            "dilations": [1, 1, 1, 1], "padding": "EXPLICIT", "pads": pads, "groups": 1,
            "bias": True, "batch_norm": False, "elementwise_add": False, "activation": act}


layers = {
    "input_layer1": layer("input_layer", [], ["conv1"], [[-1, 16, 16, 3]], [-1, 16, 16, 3],
                          original=["input"]),
    "conv1": layer("conv", ["input_layer1"], ["maxpool1"], [[-1, 16, 16, 3]], [-1, 16, 16, 8],
                   conv(3, 3, 3, 8, 1, [1, 1, 1, 1], "relu"), ["/conv1/Conv"]),
    "maxpool1": layer("maxpool", ["conv1"], ["conv2"], [[-1, 16, 16, 8]], [-1, 8, 8, 8],
                      {"kernel_shape": [1, 2, 2, 1], "strides": [1, 2, 2, 1], "padding": "VALID",
                       "pads": [0, 0, 0, 0]}, ["/pool/MaxPool"]),
    "conv2": layer("conv", ["maxpool1"], ["avgpool1"], [[-1, 8, 8, 8]], [-1, 8, 8, 16],
                   conv(3, 3, 8, 16, 1, [1, 1, 1, 1], "relu"), ["/conv2/Conv"]),
    "avgpool1": layer("global_avg_pool", ["conv2"], ["fc1"], [[-1, 8, 8, 16]], [-1, 1, 1, 16],
                      {}, ["/gap/GlobalAveragePool"]),
    "fc1": layer("dense", ["avgpool1"], ["output_layer1"], [[-1, 1, 1, 16]], [-1, 10],
                 {"kernel_shape": [16, 10], "bias": True, "activation": "linear"}, ["/fc/Gemm"]),
    "output_layer1": layer("output_layer", ["fc1"], [], [[-1, 10]], [-1, 10], original=["logits"]),
}
hn = {"name": NET, "net_params": {"output_layers_order": [f"{NET}/output_layer1"]},
      "layers": {f"{NET}/{k}": v for k, v in layers.items()}}

params = {
    f"{NET}/conv1/kernel:0": rng.normal(0, 0.3, (3, 3, 3, 8)).astype(np.float32),
    f"{NET}/conv1/bias:0": rng.normal(0, 0.1, (8,)).astype(np.float32),
    f"{NET}/conv2/kernel:0": rng.normal(0, 0.2, (3, 3, 8, 16)).astype(np.float32),
    f"{NET}/conv2/bias:0": rng.normal(0, 0.1, (16,)).astype(np.float32),
    f"{NET}/fc1/kernel:0": rng.normal(0, 0.3, (16, 10)).astype(np.float32),
    f"{NET}/fc1/bias:0": np.zeros((10,), np.float32),
}
npz = io.BytesIO()
np.savez_compressed(npz, **params)

metadata = {"state": "parsed_model", "hn": f"{NET}.hn", "hw_arch": "hailo8",
            "hq_version": "0.1.0"}
alls = ("# a normalization for 0..255 images\n"
        "normalization1 = normalization([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])\n"
        "model_optimization_config(calibration, batch_size=8, calibset_size=16)\n")

members = [
    (f"{NET}.metadata.json", json.dumps(metadata, indent=2).encode()),
    (f"{NET}.hn", json.dumps(hn, indent=2).encode()),
    (f"{NET}.npz", npz.getvalue()),
    (f"{NET}.alls", alls.encode()),
]
out = io.BytesIO()
with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
    for name, data in members:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))
with open(os.path.join(HERE, "tiny.har"), "wb") as f:
    f.write(out.getvalue())

calib = rng.uniform(0, 255, (16, 16, 16, 3)).astype(np.float32)
np.save(os.path.join(HERE, "tiny_calib.npy"), calib)
print("wrote samples/tiny.har and samples/tiny_calib.npy")
