#!/usr/bin/python3
"""Builds torch-exported test models into the shared model cache (never committed).

Writes into ${HQ_MODEL_CACHE:-<repo>/.cache/models}/torch/:
  resnet18.onnx, mobilenet_v2.onnx    torchvision architectures with random weights (weights=None,
                                      seeded), exported in eval mode by Debian's torch 1.13, opset 13,
                                      constant folding on. torch's export folds BatchNormalization
                                      into the convs, and leaves Identity nodes (shared weights) and,
                                      in mobilenet_v2, Clip(0,6) with min/max as Constant inputs.
  input_nchw.npy, input_nhwc.npy      one real image (skimage astronaut, resized to 224x224,
                                      ImageNet mean/std normalized), float32, shapes
                                      [1,3,224,224] and [1,224,224,3]
  resnet18_output.npy, mobilenet_v2_output.npy   torch's float32 logits [1,1000] for that input

Random weights make these models good for parsing, float conformance and timing, not for accuracy.
Before export, the BatchNorm running statistics are recomputed on a batch of real image crops (one
forward pass in train mode): torchvision's initialisation alone leaves mobilenet_v2's logits near
1e-9, which would make any relative comparison meaningless; with real statistics every layer has
activations of order one, as in a trained network.
Idempotent: a file that exists is kept (delete the folder to rebuild). Prints the paths it provides.
Run: /usr/bin/python3 tests/models/make_torch_models.py   (needs python3-torch, python3-torchvision,
python3-skimage; .ci/install-deps.sh installs them)
"""
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("HQ_MODEL_CACHE") or os.path.join(ROOT, ".cache", "models")
OUT = os.path.join(CACHE, "torch")
OPSET = 13
SIZE = 224
MODELS = ("resnet18", "mobilenet_v2")
SEED = 20261123
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def save_atomic_npy(path, array):
    tmp = path + ".tmp.npy"
    np.save(tmp, array)
    os.replace(tmp, path)


def make_input():
    """The fixed input: astronaut resized to SIZE x SIZE, ImageNet-normalized, NCHW and NHWC."""
    from skimage import io, transform

    image = io.imread(os.path.join(os.path.dirname(__import__("skimage").__file__), "data",
                                   "astronaut.png"))[:, :, :3]
    image = transform.resize(image, (SIZE, SIZE), order=1, anti_aliasing=True)  # float64 in [0,1]
    nhwc = ((image.astype(np.float32) - IMAGENET_MEAN) / IMAGENET_STD)[None].astype(np.float32)
    return np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2)), np.ascontiguousarray(nhwc)


def calibration_batch():
    """Crops of several real skimage photos, normalized like the fixed input, NCHW float32."""
    from skimage import io, transform

    folder = os.path.join(os.path.dirname(__import__("skimage").__file__), "data")
    crops = []
    for name in ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png",
                 "hubble_deep_field.jpg", "immunohistochemistry.png", "coins.png"):
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            continue
        image = io.imread(path)
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        image = image[:, :, :3]
        h, w = image.shape[:2]
        side = min(h, w)
        for top, left in ((0, 0), (h - side, w - side)):
            crop = transform.resize(image[top:top + side, left:left + side], (SIZE, SIZE), order=1,
                                    anti_aliasing=True).astype(np.float32)
            crops.append((crop - IMAGENET_MEAN) / IMAGENET_STD)
    return np.ascontiguousarray(np.stack(crops).transpose(0, 3, 1, 2))


def recompute_batch_norm(model, batch):
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average: one pass gives the batch statistics
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(batch))
    return model.eval()


def main():
    import torch
    import torchvision

    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    nchw_path = os.path.join(OUT, "input_nchw.npy")
    nhwc_path = os.path.join(OUT, "input_nhwc.npy")
    if not (os.path.exists(nchw_path) and os.path.exists(nhwc_path)):
        nchw, nhwc = make_input()
        save_atomic_npy(nhwc_path, nhwc)
        save_atomic_npy(nchw_path, nchw)
    nchw = np.load(nchw_path)
    paths = [nchw_path, nhwc_path]
    batch = None
    for name in MODELS:
        onnx_path = os.path.join(OUT, name + ".onnx")
        out_path = os.path.join(OUT, name + "_output.npy")
        paths += [onnx_path, out_path]
        if os.path.exists(onnx_path) and os.path.exists(out_path):
            continue
        torch.manual_seed(SEED)  # same seed per model: rebuilding one model gives the same weights
        model = getattr(torchvision.models, name)(weights=None)
        if batch is None:
            batch = calibration_batch()
        model = recompute_batch_norm(model, batch)
        x = torch.from_numpy(nchw)
        with torch.no_grad():
            y = model(x).numpy().astype(np.float32)
            tmp = onnx_path + ".tmp"
            torch.onnx.export(model, x, tmp, opset_version=OPSET, do_constant_folding=True,
                              input_names=["input"], output_names=["logits"])
        os.replace(tmp, onnx_path)
        save_atomic_npy(out_path, y)
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
