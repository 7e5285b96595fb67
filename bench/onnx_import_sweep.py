#!/usr/bin/python3
"""The ONNX import sweep: what real exporters write, imported by hq and checked against onnxruntime.

Exports torchvision classifiers (random weights, BatchNorm statistics recomputed on one random
batch so that every layer has activations of order one), F.interpolate modules and small modules
that compute with their input's shape, at ONNX opsets 11, 13 and 17, into a cache folder (never
committed): with a static shape, a dynamic batch, and a dynamic batch, height and width
("dynamic_hw", for the networks at opset 13: the shape arithmetic stays in the graph as
Shape/Gather/Range/... subgraphs, which hq folds with the size given by `--tensor-shapes`;
"dynamic_hw_unfolded" also without torch's constant folding, so every weight transpose and shape
computation is a node).
For each case: `hq parse`, then `hq emulate` (native float) on the NHWC input, against onnxruntime-node
(CPU, fp32) on the NCHW input. A case passes when max|hq - ort| <= 1e-4 * (max(ort) - min(ort)),
or is reported with hq's one-line refusal. One line per case, then a closing count; the failures
are listed again at the end with their reason.

usage: onnx_import_sweep.py --hq BUILD/hq --node-modules DIR [--cache DIR] [--cases REGEX]
                            [--size N]
Needs /usr/bin/python3 with torch and torchvision, node with onnxruntime-node under
--node-modules (tests/models/fetch_models.sh installs it). bench/onnx_import_sweep.sh drives it.
"""
import argparse
import os
import re
import subprocess
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REFERENCE_JS = os.path.join(ROOT, "tests", "models", "make_reference.js")
SEED = 20261207
OPSETS = (11, 13, 17)
TOLERANCE = 1e-4

# torchvision 0.14 families; constructor keyword arguments for random-weight, export-ready models
CLASSIFIERS = {
    "resnet18": {},
    "mobilenet_v2": {},
    "mobilenet_v3_small": {},
    "shufflenet_v2_x0_5": {},
    "mnasnet0_5": {},
    "squeezenet1_1": {},
    "efficientnet_b0": {},
    "regnet_x_400mf": {},
    "googlenet": {"aux_logits": False, "init_weights": True},
    "densenet121": {},
}

# torchvision segmentation nets (output 'out': [N, 21, H, W], upsampled by F.interpolate to the
# input's size, which the export computes from Shape): constructor keyword arguments and the input
# side (None: --size). FCN-ResNet50 is the deep one (53 convolutions before the head, 2048
# channels, dilated layer3/layer4), at the 256x256 its users run it at.
SEGMENTERS = {
    "lraspp_mobilenet_v3_large": ({}, None),
    "deeplabv3_mobilenet_v3_large": ({}, None),
    "fcn_resnet50": ({"aux_loss": False}, 256),
}

# F.interpolate forms (mode, align_corners, scale or size); the module convolves first so that
# the resize reads a computed tensor, as in a network
RESIZES = {
    "resize_nearest_x2": dict(mode="nearest", scale_factor=2.0),
    "resize_nearest_x1_5": dict(mode="nearest", scale_factor=1.5),
    "resize_nearest_x1_7": dict(mode="nearest", scale_factor=1.7),
    "resize_nearest_size": dict(mode="nearest", size=(13, 7)),
    "resize_bilinear_x2": dict(mode="bilinear", scale_factor=2.0, align_corners=False),
    "resize_bilinear_align_x2": dict(mode="bilinear", scale_factor=2.0, align_corners=True),
    "resize_bilinear_down_size": dict(mode="bilinear", size=(5, 9), align_corners=False),
    "resize_bilinear_x0_75": dict(mode="bilinear", scale_factor=0.75, align_corners=False),
    "resize_nearest_down_x0_5": dict(mode="nearest", scale_factor=0.5),
    # refused, with the reason: align_corners by a fractional scale, bicubic
    "resize_bilinear_align_x1_7": dict(mode="bilinear", scale_factor=1.7, align_corners=True),
    "resize_bicubic_x2": dict(mode="bicubic", scale_factor=2.0, align_corners=False),
}


# modules whose forward computes with the input's shape (what detectors and segmentation nets
# do to pad to a stride, build coordinate grids or broadcast a bias)
SHAPE_MODULES = ("pad_to_multiple", "expand_bias", "arange_scale")


def all_cases():
    cases = []
    for model in tuple(CLASSIFIERS) + tuple(SEGMENTERS):
        for opset in OPSETS:
            for batch in ("static", "dynamic"):
                cases.append((model, opset, batch))
        # a dynamic height and width too, and the same exported without torch's constant
        # folding (every weight and shape computation stays a node for hq to fold), at opset 13
        cases.append((model, 13, "dynamic_hw"))
        cases.append((model, 13, "dynamic_hw_unfolded"))
    for model in tuple(RESIZES) + SHAPE_MODULES:
        for opset in OPSETS:
            for batch in ("static", "dynamic_hw"):
                cases.append((model, opset, batch))
    return cases


def recompute_batch_norm(model, batch):
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average: one pass gives the batch statistics
    model.train()
    with torch.no_grad():
        model(batch)
    return model.eval()


def build_module(name, size):
    import torch
    import torchvision

    ShapeModule = shape_module_class()
    torch.manual_seed(SEED)
    if name in CLASSIFIERS:
        model = getattr(torchvision.models, name)(weights=None, **CLASSIFIERS[name])
        calibration = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(SEED))
        return recompute_batch_norm(model, calibration), (1, 3, size, size)

    if name in SEGMENTERS:

        class Segmenter(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.net = getattr(torchvision.models.segmentation, name)(
                    weights=None, weights_backbone=None, **SEGMENTERS[name][0])

            def forward(self, x):
                return self.net(x)["out"]

        size = SEGMENTERS[name][1] or size
        calibration = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(SEED))
        return recompute_batch_norm(Segmenter(), calibration), (1, 3, size, size)

    if name in SHAPE_MODULES:
        return ShapeModule(name).eval(), (1, 3, 13, 18)

    spec = RESIZES[name]

    class Resize(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            return torch.nn.functional.interpolate(self.conv(x), **spec)

    return Resize().eval(), (1, 3, 10, 12)


def shape_module_class():
    import torch

    class ShapeModule(torch.nn.Module):
        def __init__(self, kind):
            super().__init__()
            self.kind = kind
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.head = torch.nn.Conv2d(8, 4, 3, stride=2)
            self.bias = torch.nn.Parameter(torch.randn(1, 8, 1, 1))

        def forward(self, x):
            y = self.conv(x)
            if self.kind == "pad_to_multiple":  # pad H and W up to a multiple of 8
                h, w = y.shape[2], y.shape[3]
                y = torch.nn.functional.pad(y, (0, (8 - w % 8) % 8, 0, (8 - h % 8) % 8))
            elif self.kind == "expand_bias":  # a bias broadcast to the full shape first
                y = y + self.bias.expand(y.shape[0], y.shape[1], y.shape[2], y.shape[3])
            else:  # channel weights 1..C built from the shape
                c = y.shape[1]
                y = y * (torch.arange(c, dtype=torch.float32) + 1).view(1, c, 1, 1) / c
            return self.head(torch.relu(y))

    return ShapeModule


def export(name, opset, batch, folder, size):
    """Writes <case>.onnx and <case>.input.npy (NCHW) unless present; returns the case stem."""
    import torch

    stem = os.path.join(folder, "%s_op%d_%s" % (name, opset, batch))
    if os.path.exists(stem + ".onnx") and os.path.exists(stem + ".input.npy"):
        return stem
    module, shape = build_module(name, size)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(SEED + 1))
    dynamic = None
    if batch == "dynamic":
        dynamic = {"input": {0: "batch"}, "output": {0: "batch"}}
    elif batch.startswith("dynamic_hw"):
        dynamic = {"input": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(module, x, stem + ".tmp.onnx", opset_version=opset,
                          input_names=["input"], output_names=["output"], dynamic_axes=dynamic,
                          do_constant_folding=not batch.endswith("_unfolded"))
    os.replace(stem + ".tmp.onnx", stem + ".onnx")
    np.save(stem + ".input.npy", x.numpy().astype(np.float32))
    return stem


CACHE_PREFIX = []  # the cache folder, left out of the messages (they name the model file)


def first_line(text):
    lines = [l for l in text.strip().splitlines() if l.strip()]
    line = lines[-1] if lines else "(no message)"
    for prefix in CACHE_PREFIX:
        line = line.replace(prefix, "")
    return line


def run_case(args, stem, work):
    """Returns (status, detail): PASS / FAIL / REFUSED."""
    base = os.path.join(work, os.path.basename(stem))
    ref_prefix = base + ".ort"
    if not os.path.exists(ref_prefix + ".0.npy"):
        r = subprocess.run(["node", REFERENCE_JS, args.node_modules, stem + ".onnx",
                            stem + ".input.npy", ref_prefix], capture_output=True, text=True)
        if r.returncode != 0:
            return "FAIL", "onnxruntime: " + first_line(r.stderr)
    shape = np.load(stem + ".input.npy").shape
    command = [args.hq, "parse", stem + ".onnx", "-o", base + ".har"]
    if "_dynamic_hw" in stem:
        command += ["--tensor-shapes", ",".join(str(d) for d in shape)]
    r = subprocess.run(command, capture_output=True, text=True)
    if r.returncode != 0:
        return "REFUSED", first_line(r.stderr)
    nhwc = np.ascontiguousarray(np.load(stem + ".input.npy").transpose(0, 2, 3, 1))
    np.save(base + ".nhwc.npy", nhwc)
    r = subprocess.run([args.hq, "emulate", base + ".har", "-d", base + ".nhwc.npy", "-o",
                        base + ".hq.npz"], capture_output=True, text=True)
    if r.returncode != 0:
        return "FAIL", "hq emulate: " + first_line(r.stderr)
    out = np.load(base + ".hq.npz")
    got = out[out.files[0]].astype(np.float64)
    ref = np.load(ref_prefix + ".0.npy").astype(np.float64)
    if ref.ndim == 4:
        ref = ref.transpose(0, 2, 3, 1)
    if got.shape != ref.shape:
        return "FAIL", "hq output %s, onnxruntime %s" % (got.shape, ref.shape)
    err = float(np.abs(got - ref).max())
    span = float(ref.max() - ref.min())
    detail = "max|hq-ort| %.3g of range %.4g (%.2g relative)" % (err, span, err / max(span, 1e-30))
    return ("PASS" if err <= TOLERANCE * span else "FAIL"), detail


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hq", required=True)
    parser.add_argument("--node-modules", required=True)
    parser.add_argument("--cache", default=os.path.join(ROOT, ".cache", "models", "sweep"))
    parser.add_argument("--cases", default="", help="only cases whose name matches this regex")
    parser.add_argument("--size", type=int, default=96, help="classifier input side (96)")
    args = parser.parse_args()

    import torch

    warnings.filterwarnings("ignore")  # torch's exporter warns on every case
    torch.set_num_threads(1)
    os.makedirs(args.cache, exist_ok=True)
    CACHE_PREFIX.append(os.path.join(os.path.abspath(args.cache), ""))
    work = os.path.join(args.cache, "run")
    os.makedirs(work, exist_ok=True)
    pattern = re.compile(args.cases)
    counts = {"PASS": 0, "FAIL": 0, "REFUSED": 0}
    problems = []
    for name, opset, batch in all_cases():
        case = "%s_op%d_%s" % (name, opset, batch)
        if not pattern.search(case):
            continue
        start = time.time()
        try:
            stem = export(name, opset, batch, args.cache, args.size)
            status, detail = run_case(args, stem, work)
        except Exception as e:  # an export torch refuses is a result of the sweep too
            status, detail = "FAIL", "export: %s" % first_line(str(e))
        counts[status] += 1
        if status != "PASS":
            problems.append("%s: %s: %s" % (case, status, detail))
        print("%-7s %-36s %s (%.0f s)" % (status, case, detail, time.time() - start), flush=True)
    total = sum(counts.values())
    print("# %d cases: %d pass, %d refused, %d fail" % (total, counts["PASS"], counts["REFUSED"],
                                                         counts["FAIL"]))
    for p in problems:
        print("#   " + p)
    return 0 if counts["FAIL"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
