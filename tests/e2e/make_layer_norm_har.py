#!/usr/bin/python3
"""Writes OUT_DIR/lnorm.har (a parsed archive: a 3x3 conv, a layer_norm over its 64 channels, a
1x1 conv, and a second layer_norm read directly by the output), OUT_DIR/lnorm_calib.npy,
OUT_DIR/lnorm_in.npy, and the float references computed here with numpy:
OUT_DIR/lnorm_expect.npy (the network's output) and OUT_DIR/lnorm_norm1.npy (the first
layer_norm's output), the normalization done as ONNX LayerNormalization over the last axis.

    input [8, 8, 16] -> conv1 3x3 16->64 -> norm1 (layer_norm, eps 1e-5) -> conv2 1x1 64->48
    -> norm2 (layer_norm, eps 1e-3) -> output

Weights, gamma and beta come from a fixed seed. Run: /usr/bin/python3 make_layer_norm_har.py OUT_DIR
"""
import sys

import numpy as np

from har_fixture import parsed_members, write_har

NET = "lnorm"
out_dir = sys.argv[1]
rng = np.random.default_rng(20261207)


def layer(kind, inputs, outputs, in_shape, out_shape, params=None):
    return {"type": kind,
            "input": [f"{NET}/{n}" for n in inputs],
            "output": [f"{NET}/{n}" for n in outputs],
            "input_shapes": [in_shape] if inputs else [out_shape],
            "output_shapes": [out_shape],
            "params": params or {}}


def conv(k, cin, cout):
    p = k // 2
    return {"kernel_shape": [k, k, cin, cout], "strides": [1, 1, 1, 1], "dilations": [1, 1, 1, 1],
            "padding": "EXPLICIT", "pads": [p, p, p, p], "groups": 1, "bias": True,
            "batch_norm": False, "elementwise_add": False, "activation": "linear"}


def shape(c):
    return [-1, 8, 8, c]


layers = {
    "input_layer1": layer("input_layer", [], ["conv1"], None, shape(16)),
    "conv1": layer("conv", ["input_layer1"], ["norm1"], shape(16), shape(64), conv(3, 16, 64)),
    "norm1": layer("layer_norm", ["conv1"], ["conv2"], shape(64), shape(64), {"epsilon": 1e-5}),
    "conv2": layer("conv", ["norm1"], ["norm2"], shape(64), shape(48), conv(1, 64, 48)),
    "norm2": layer("layer_norm", ["conv2"], ["output_layer1"], shape(48), shape(48),
                   {"epsilon": 1e-3}),
    "output_layer1": layer("output_layer", ["norm2"], [], shape(48), shape(48)),
}
hn = {"name": NET, "net_params": {"output_layers_order": [f"{NET}/output_layer1"]},
      "layers": {f"{NET}/{k}": v for k, v in layers.items()}}

w = {
    "conv1": (rng.normal(0, 0.3, (3, 3, 16, 64)), rng.normal(0.5, 0.5, 64)),
    "conv2": (rng.normal(0, 0.2, (1, 1, 64, 48)), rng.normal(0, 0.3, 48)),
}
norm = {
    "norm1": (rng.uniform(0.5, 1.5, 64) * rng.choice([-1, 1], 64), rng.uniform(-0.3, 0.3, 64),
              1e-5),
    "norm2": (rng.uniform(0.5, 2.0, 48), rng.uniform(-0.5, 0.5, 48), 1e-3),
}
params = {}
for name, (k, b) in w.items():
    params[f"{NET}/{name}/kernel:0"] = k.astype(np.float32)
    params[f"{NET}/{name}/bias:0"] = b.astype(np.float32)
for name, (g, b, _) in norm.items():
    params[f"{NET}/{name}/gamma:0"] = g.astype(np.float32)
    params[f"{NET}/{name}/beta:0"] = b.astype(np.float32)
write_har(f"{out_dir}/{NET}.har", parsed_members(NET, hn, params))

calib = rng.normal(0, 1, (16, 8, 8, 16)).astype(np.float32)
x = rng.normal(0, 1, (4, 8, 8, 16)).astype(np.float32)
np.save(f"{out_dir}/{NET}_calib.npy", calib)
np.save(f"{out_dir}/{NET}_in.npy", x)


def conv_ref(x, name):
    k, b = (a.astype(np.float64) for a in w[name])
    kh = k.shape[0]
    p = kh // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    y = np.zeros(x.shape[:3] + (k.shape[3],))
    for i in range(kh):
        for j in range(kh):
            y += np.einsum("nhwc,cd->nhwd", xp[:, i:i + x.shape[1], j:j + x.shape[2]], k[i, j])
    return y + b


def layer_norm_ref(x, name):
    g, b, eps = norm[name]
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * g + b


n1 = layer_norm_ref(conv_ref(x.astype(np.float64), "conv1"), "norm1")
y = layer_norm_ref(conv_ref(n1, "conv2"), "norm2")
np.save(f"{out_dir}/{NET}_norm1.npy", n1.astype(np.float32))
np.save(f"{out_dir}/{NET}_expect.npy", y.astype(np.float32))
