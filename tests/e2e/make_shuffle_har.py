#!/usr/bin/python3
"""Writes OUT_DIR/shuffle.har (a parsed archive of a ShuffleNetV2-style block with two
channel_shuffle layers), OUT_DIR/shuffle_calib.npy and OUT_DIR/shuffle_in.npy, and
OUT_DIR/shuffle_expect.npy: the block's float output computed here with numpy, the channel shuffle
done as ONNX does it (NCHW Reshape [N, g, C/g, H, W], Transpose [0, 2, 1, 3, 4], Reshape back).

    input [8, 8, 4] -> conv1 3x3 4->8 relu -> split [4, 4] -> (a, conv2 1x1 4->4 relu on b)
    -> concat -> shuffle1 (groups 2) -> conv3 1x1 8->12 -> shuffle2 (groups 3) -> output

Weights come from a fixed seed. Run: /usr/bin/python3 make_shuffle_har.py OUT_DIR
"""
import sys

import numpy as np

from har_fixture import parsed_members, write_har

NET = "shuffle"
out_dir = sys.argv[1]
rng = np.random.default_rng(20240611)


def layer(kind, inputs, outputs, in_shapes, out_shape, params=None):
    return {"type": kind,
            "input": [f"{NET}/{n}" for n in inputs],
            "output": [f"{NET}/{n}" for n in outputs],
            "input_shapes": in_shapes,
            "output_shapes": [out_shape] * max(1, len(outputs)),
            "params": params or {}}


def conv(k, cin, cout, act):
    p = k // 2
    return {"kernel_shape": [k, k, cin, cout], "strides": [1, 1, 1, 1], "dilations": [1, 1, 1, 1],
            "padding": "EXPLICIT", "pads": [p, p, p, p], "groups": 1, "bias": True,
            "batch_norm": False, "elementwise_add": False, "activation": act}


def shape(c):
    return [-1, 8, 8, c]


layers = {
    "input_layer1": layer("input_layer", [], ["conv1"], [shape(4)], shape(4)),
    "conv1": layer("conv", ["input_layer1"], ["split1"], [shape(4)], shape(8),
                   conv(3, 4, 8, "relu")),
    "split1": layer("feature_splitter", ["conv1"], ["concat1", "conv2"], [shape(8)], shape(4),
                    {"axis": 3, "split_sizes": [4, 4]}),
    "conv2": layer("conv", ["split1"], ["concat1"], [shape(4)], shape(4), conv(1, 4, 4, "relu")),
    "concat1": layer("concat", ["split1", "conv2"], ["shuffle1"], [shape(4), shape(4)], shape(8),
                     {"axis": 3}),
    "shuffle1": layer("channel_shuffle", ["concat1"], ["conv3"], [shape(8)], shape(8),
                      {"groups": 2}),
    "conv3": layer("conv", ["shuffle1"], ["shuffle2"], [shape(8)], shape(12),
                   conv(1, 8, 12, "linear")),
    "shuffle2": layer("channel_shuffle", ["conv3"], ["output_layer1"], [shape(12)], shape(12),
                      {"groups": 3}),
    "output_layer1": layer("output_layer", ["shuffle2"], [], [shape(12)], shape(12)),
}
# the splitter sends piece 0 to concat1 and piece 1 to conv2
layers["split1"]["output_ports"] = [0, 1]
hn = {"name": NET, "net_params": {"output_layers_order": [f"{NET}/output_layer1"]},
      "layers": {f"{NET}/{k}": v for k, v in layers.items()}}

w = {
    "conv1": (rng.normal(0, 0.4, (3, 3, 4, 8)), rng.normal(0, 0.1, 8)),
    "conv2": (rng.normal(0, 0.5, (1, 1, 4, 4)), rng.normal(0, 0.1, 4)),
    "conv3": (rng.normal(0, 0.4, (1, 1, 8, 12)), rng.normal(0, 0.1, 12)),
}
params = {}
for name, (k, b) in w.items():
    params[f"{NET}/{name}/kernel:0"] = k.astype(np.float32)
    params[f"{NET}/{name}/bias:0"] = b.astype(np.float32)
write_har(f"{out_dir}/{NET}.har", parsed_members(NET, hn, params))

calib = rng.uniform(-1, 1, (16, 8, 8, 4)).astype(np.float32)
x = rng.uniform(-1, 1, (3, 8, 8, 4)).astype(np.float32)
np.save(f"{out_dir}/{NET}_calib.npy", calib)
np.save(f"{out_dir}/{NET}_in.npy", x)


def conv_ref(x, name, relu):
    k, b = (a.astype(np.float64) for a in w[name])
    kh = k.shape[0]
    p = kh // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    y = np.zeros(x.shape[:3] + (k.shape[3],))
    for i in range(kh):
        for j in range(kh):
            y += np.einsum("nhwc,cd->nhwd", xp[:, i:i + x.shape[1], j:j + x.shape[2]], k[i, j])
    y += b
    return np.maximum(y, 0) if relu else y


def onnx_shuffle(x, g):
    n, h, w_, c = x.shape
    nchw = x.transpose(0, 3, 1, 2)
    y = nchw.reshape(n, g, c // g, h, w_).transpose(0, 2, 1, 3, 4).reshape(n, c, h, w_)
    return y.transpose(0, 2, 3, 1)


y1 = conv_ref(x.astype(np.float64), "conv1", True)
a, b = y1[..., :4], y1[..., 4:]
y = onnx_shuffle(np.concatenate([a, conv_ref(b, "conv2", True)], axis=3), 2)
y = onnx_shuffle(conv_ref(y, "conv3", False), 3)
np.save(f"{out_dir}/{NET}_expect.npy", y.astype(np.float32))
