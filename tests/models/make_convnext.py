#!/usr/bin/python3
"""Builds the ConvNeXt-Tiny test models into the shared model cache (never committed).

Writes into ${HQ_MODEL_CACHE:-<repo>/.cache/models}/convnext/:
  convnext_tiny_op13.onnx   torchvision 0.14 convnext_tiny() with random weights (seeded),
  convnext_tiny_op17.onnx   exported in eval mode by Debian's torch 1.13 at opset 13 (LayerNorm
                            decomposed: ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add)
                            and opset 17 (LayerNormalization), input [N, 3, 64, 64], dynamic batch
  input_nchw.npy            4 images, float32 [4, 3, 64, 64], and the same as NHWC
  input_nhwc.npy
  calib_nhwc.npy            16 more images for hq optimize, NHWC
  torch_output.npy          torch's float32 logits [4, 1000]

torchvision initialises every layer scale to 1e-6 and every LayerNorm to the identity, which
would leave the residual branches and the normalization's affine part invisible in the output.
So before export the layer scales are drawn from [0.3, 0.8], the LayerNorm weights from
[0.5, 1.5] and their biases from [-0.2, 0.2]: every block then changes the logits, as in a
trained network. Inputs are smooth random images (a low-resolution noise upsampled), not
photographs.
Idempotent: a file that exists is kept (delete the folder to rebuild). Prints the folder.
Run: /usr/bin/python3 tests/models/make_convnext.py
"""
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("HQ_MODEL_CACHE") or os.path.join(ROOT, ".cache", "models")
OUT = os.path.join(CACHE, "convnext")
SIZE = 64
SEED = 20261207


def save_atomic(path, write):
    """write(tmp) then rename: readers never see half a file, and builders running at once (two
    tests on a cold cache) each write their own temporary file."""
    tmp = "%s.%d.tmp" % (path, os.getpid())
    write(tmp)
    os.replace(tmp, path)


def images(rng, count):
    """Smooth random images: 8x8 noise upsampled bilinearly, ImageNet-like scale, NCHW."""
    import torch

    low = torch.from_numpy(rng.standard_normal((count, 3, 8, 8)).astype(np.float32))
    high = torch.nn.functional.interpolate(low, size=(SIZE, SIZE), mode="bilinear",
                                           align_corners=False)
    return high.numpy() + 0.3 * rng.standard_normal((count, 3, SIZE, SIZE)).astype(np.float32)


def model():
    """convnext_tiny() in eval mode, seeded random weights, layer scales and LayerNorm affines
    drawn as the header says (bench/onnx_import_sweep.py builds it too)."""
    import torch
    import torchvision

    torch.manual_seed(SEED)
    net = torchvision.models.convnext_tiny().eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("layer_scale"):
                p.uniform_(0.3, 0.8)
        for module in net.modules():
            if isinstance(module, torch.nn.LayerNorm):  # LayerNorm2d is one too
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return net


def main():
    import torch

    os.makedirs(OUT, exist_ok=True)
    net = model()
    rng = np.random.default_rng(SEED)
    x = images(rng, 4)
    calib = images(rng, 16)
    for opset in (13, 17):
        path = os.path.join(OUT, "convnext_tiny_op%d.onnx" % opset)
        if not os.path.exists(path):
            save_atomic(path, lambda tmp: torch.onnx.export(
                net, torch.from_numpy(x[:1]), tmp, opset_version=opset, input_names=["x"],
                output_names=["logits"], dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}}))
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy().astype(np.float32)
    files = {"input_nchw.npy": x, "input_nhwc.npy": x.transpose(0, 2, 3, 1),
             "calib_nhwc.npy": calib.transpose(0, 2, 3, 1), "torch_output.npy": ref}
    for name, array in files.items():
        path = os.path.join(OUT, name)
        if not os.path.exists(path):
            save_atomic(path, lambda tmp: np.save(open(tmp, "wb"),
                                                  np.ascontiguousarray(array, np.float32)))
    print(OUT)


if __name__ == "__main__":
    main()
