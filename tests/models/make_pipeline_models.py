#!/usr/bin/python3
"""Builds the models of tests/e2e/onnx_pipeline_real.sh into the shared model cache (never
committed): real torch exports taken through parse, optimize, hq-diag, compile and run.

Writes into ${HQ_MODEL_CACHE:-<repo>/.cache/models}/pipeline/, per model M:
  M.onnx          exported in eval mode by Debian's torch 1.13, opset 13, dynamic batch
  M.input.npy     4 images, float32, NHWC (the archive's layout; for nhwc_mobilenet_v2 the
                  model's own)
  M.calib.npy     8 more images for hq optimize, NHWC
  M.output.npz    torch's float32 outputs for M.input.npy, NHWC where they are images, keyed by
                  the ONNX output name (for yolov8_heads: by the name of the Concat node of each
                  detection head, the cut's end nodes)
  yolov8_heads.decoded.npy  the detector's own output for M.input.npy: [N, 4 + 8, 84] boxes
                  (centre, size in pixels) and class scores of the 84 anchors

The models, 64x64, random weights (seeded) with BatchNorm statistics recomputed on one random
batch (bench/onnx_import_sweep.py's recompute_batch_norm), so every layer has activations of
order one:
  nhwc_mobilenet_v2  torchvision's mobilenet_v2 behind tests/models/channels_last_cases.py's
                     Preprocess: input [N, 64, 64, 3] in 0..255, (x / 255 - mean) / std per
                     channel, permuted to NCHW inside (a channels-last export)
  yolov8_heads       a YOLOv8n-style detector written from its public architecture (Conv =
                     conv-BN-SiLU, C2f with its Split, SPPF, the upsampling PAN neck, the decoupled
                     Detect head with 16 DFL bins and 8 classes) with the DFL decode (softmax,
                     the arange conv, anchors, dist2bbox, strides) in the graph: the test cuts it
                     at the heads with --end-node-names /detect/Concat /detect/Concat_1
                     /detect/Concat_2 (outputs [N, 8, 8, 72], [N, 4, 4, 72], [N, 2, 2, 72])
  shufflenet_v2      torchvision's shufflenet_v2_x0_5 (16 channel shuffles)
ConvNeXt-Tiny, the fourth model of the test, is tests/models/make_convnext.py's (built too, in
its own folder beside this one). Images are make_convnext.py's smooth random ones. Idempotent: a
model whose files all exist is kept (delete the folder to rebuild). Prints the folder.
Run: /usr/bin/python3 tests/models/make_pipeline_models.py
"""
import contextlib
import io
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [HERE, os.path.join(ROOT, "bench")]

import make_convnext  # noqa: E402  (images, save_atomic, the model cache)
import onnx_import_sweep  # noqa: E402  (recompute_batch_norm, torchvision builders)

OUT = os.path.join(make_convnext.CACHE, "pipeline")
SIZE = make_convnext.SIZE
SEED = 20261207
OPSET = 13
NAMES = ("nhwc_mobilenet_v2", "yolov8_heads", "shufflenet_v2")


def yolov8_classes():
    """The YOLOv8 building blocks (ultralytics' architecture), as torch modules."""
    import torch
    from torch import nn

    class Conv(nn.Module):
        def __init__(self, c1, c2, k=1, s=1):
            super().__init__()
            self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
            self.bn = nn.BatchNorm2d(c2)

        def forward(self, x):
            return nn.functional.silu(self.bn(self.conv(x)))

    class Bottleneck(nn.Module):
        def __init__(self, c, shortcut):
            super().__init__()
            self.cv1, self.cv2 = Conv(c, c, 3), Conv(c, c, 3)
            self.add = shortcut

        def forward(self, x):
            y = self.cv2(self.cv1(x))
            return x + y if self.add else y

    class C2f(nn.Module):
        def __init__(self, c1, c2, n, shortcut):
            super().__init__()
            self.c = c2 // 2
            self.cv1 = Conv(c1, 2 * self.c, 1)
            self.cv2 = Conv((2 + n) * self.c, c2, 1)
            self.m = nn.ModuleList(Bottleneck(self.c, shortcut) for _ in range(n))

        def forward(self, x):
            y = list(self.cv1(x).split((self.c, self.c), 1))
            y.extend(m(y[-1]) for m in self.m)
            return self.cv2(torch.cat(y, 1))

    class SPPF(nn.Module):
        def __init__(self, c1, c2, k=5):
            super().__init__()
            self.cv1, self.cv2 = Conv(c1, c1 // 2, 1), Conv(c1 // 2 * 4, c2, 1)
            self.m = nn.MaxPool2d(k, 1, k // 2)

        def forward(self, x):
            x = self.cv1(x)
            y1 = self.m(x)
            y2 = self.m(y1)
            return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))

    class Detect(nn.Module):
        def __init__(self, nc, ch, strides=(8, 16, 32), reg_max=16):
            super().__init__()
            self.nc, self.reg_max, self.strides = nc, reg_max, strides
            c2, c3 = max(16, ch[0] // 4, reg_max * 4), max(ch[0], min(nc, 100))
            self.cv2 = nn.ModuleList(nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3),
                                                   nn.Conv2d(c2, 4 * reg_max, 1)) for x in ch)
            self.cv3 = nn.ModuleList(nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3),
                                                   nn.Conv2d(c3, nc, 1)) for x in ch)
            self.dfl = nn.Conv2d(reg_max, 1, 1, bias=False).requires_grad_(False)
            self.dfl.weight.data[:] = torch.arange(reg_max, dtype=torch.float32).view(
                1, reg_max, 1, 1)
            self.heads_only = False

        def forward(self, xs):
            xs = [torch.cat((b(x), c(x)), 1) for x, b, c in zip(xs, self.cv2, self.cv3)]
            if self.heads_only:
                return xs
            n = xs[0].shape[0]
            anchors, strides = [], []
            for x, s in zip(xs, self.strides):
                h, w = x.shape[2:]
                sy, sx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5,
                                        indexing="ij")
                anchors.append(torch.stack((sx, sy), -1).view(-1, 2))
                strides.append(torch.full((h * w, 1), float(s)))
            anchors = torch.cat(anchors).transpose(0, 1).unsqueeze(0)
            strides = torch.cat(strides).transpose(0, 1)
            y = torch.cat([x.view(n, 4 * self.reg_max + self.nc, -1) for x in xs], 2)
            box, cls = y.split((4 * self.reg_max, self.nc), 1)
            a = box.shape[2]
            dist = self.dfl(box.view(n, 4, self.reg_max, a).transpose(2, 1).softmax(1))
            lt, rb = dist.view(n, 4, a).chunk(2, 1)
            x1y1, x2y2 = anchors - lt, anchors + rb
            dbox = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * strides
            return torch.cat((dbox, cls.sigmoid()), 1)

    class YOLOv8(nn.Module):
        """yolov8n: depth 0.33, width 0.25 (channels 16 to 256)."""

        def __init__(self, nc=8):
            super().__init__()
            c = [16, 32, 64, 128, 256]
            self.b0, self.b1 = Conv(3, c[0], 3, 2), Conv(c[0], c[1], 3, 2)
            self.b2, self.b3 = C2f(c[1], c[1], 1, True), Conv(c[1], c[2], 3, 2)
            self.b4, self.b5 = C2f(c[2], c[2], 2, True), Conv(c[2], c[3], 3, 2)
            self.b6, self.b7 = C2f(c[3], c[3], 2, True), Conv(c[3], c[4], 3, 2)
            self.b8, self.b9 = C2f(c[4], c[4], 1, True), SPPF(c[4], c[4])
            self.up = nn.Upsample(scale_factor=2.0, mode="nearest")
            self.n12 = C2f(c[4] + c[3], c[3], 1, False)
            self.n15 = C2f(c[3] + c[2], c[2], 1, False)
            self.n16 = Conv(c[2], c[2], 3, 2)
            self.n18 = C2f(c[2] + c[3], c[3], 1, False)
            self.n19 = Conv(c[3], c[3], 3, 2)
            self.n21 = C2f(c[3] + c[4], c[4], 1, False)
            self.detect = Detect(nc, (c[2], c[3], c[4]))

        def forward(self, x):
            p3 = self.b4(self.b3(self.b2(self.b1(self.b0(x)))))
            p4 = self.b6(self.b5(p3))
            p5 = self.b9(self.b8(self.b7(p4)))
            h12 = self.n12(torch.cat((self.up(p5), p4), 1))
            h15 = self.n15(torch.cat((self.up(h12), p3), 1))
            h18 = self.n18(torch.cat((self.n16(h15), h12), 1))
            h21 = self.n21(torch.cat((self.n19(h18), p5), 1))
            return self.detect([h15, h18, h21])

    return YOLOv8


def build(name, calibration_nchw):
    """The eval-mode module, with BatchNorm statistics from one pass over the calibration."""
    import torch
    import torchvision
    from channels_last_cases import Preprocess

    torch.manual_seed(SEED)
    batch = torch.from_numpy(calibration_nchw)
    if name == "nhwc_mobilenet_v2":
        model = Preprocess()
        model.body = onnx_import_sweep.recompute_batch_norm(
            torchvision.models.mobilenet_v2(weights=None),
            (batch / 255.0 - model.mean.view(1, 3, 1, 1)) / model.std.view(1, 3, 1, 1))
        return model.eval()
    if name == "yolov8_heads":
        return onnx_import_sweep.recompute_batch_norm(yolov8_classes()(), batch)
    return onnx_import_sweep.recompute_batch_norm(
        torchvision.models.shufflenet_v2_x0_5(weights=None), batch)


def nhwc(array):
    array = array.numpy().astype(np.float32)
    return np.ascontiguousarray(array.transpose(0, 2, 3, 1) if array.ndim == 4 else array)


def make(name):
    """Exports NAME and writes its data unless every file of it is there."""
    import torch

    files = [os.path.join(OUT, name + ext)
             for ext in (".onnx", ".input.npy", ".calib.npy", ".output.npz")]
    decoded_path = os.path.join(OUT, name + ".decoded.npy")
    if all(os.path.exists(f) for f in files) and (
            name != "yolov8_heads" or os.path.exists(decoded_path)):
        return
    rng = np.random.default_rng(SEED)
    x, calib = make_convnext.images(rng, 4), make_convnext.images(rng, 8)  # NCHW
    if name == "nhwc_mobilenet_v2":  # the user's pixels: 0..255, channels last
        x, calib = (np.clip(a * 48 + 128, 0, 255).transpose(0, 2, 3, 1) for a in (x, calib))
    x, calib = (np.ascontiguousarray(a, np.float32) for a in (x, calib))
    model = build(name, calib if x.shape[1] == 3 else calib.transpose(0, 3, 1, 2))
    onnx_path, input_path, calib_path, output_path = files
    make_convnext.save_atomic(onnx_path, lambda tmp: torch.onnx.export(
        model, torch.from_numpy(x[:1]), tmp, opset_version=OPSET, input_names=["images"],
        output_names=["output"], dynamic_axes={"images": {0: "n"}, "output": {0: "n"}}))
    with torch.no_grad():
        if name == "yolov8_heads":  # the tensors the cut makes the outputs
            decoded = model(torch.from_numpy(x)).numpy().astype(np.float32)
            make_convnext.save_atomic(decoded_path, lambda tmp: np.save(open(tmp, "wb"), decoded))
            model.detect.heads_only = True
            names = ["/detect/Concat"] + ["/detect/Concat_%d" % i for i in (1, 2)]
            outputs = dict(zip(names, map(nhwc, model(torch.from_numpy(x)))))
        else:
            outputs = {"output": nhwc(model(torch.from_numpy(x)))}
    if x.shape[1] == 3:  # NCHW: the archive's input is NHWC
        x, calib = (np.ascontiguousarray(a.transpose(0, 2, 3, 1)) for a in (x, calib))
    make_convnext.save_atomic(input_path, lambda tmp: np.save(open(tmp, "wb"), x))
    make_convnext.save_atomic(calib_path, lambda tmp: np.save(open(tmp, "wb"), calib))
    make_convnext.save_atomic(output_path, lambda tmp: np.savez(open(tmp, "wb"), **outputs))


def main():
    import warnings

    import torch

    warnings.filterwarnings("ignore")  # the exporter warns about every traced shape
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    for name in NAMES:
        make(name)
    convnext = [os.path.join(make_convnext.OUT, f) for f in (
        "convnext_tiny_op17.onnx", "input_nhwc.npy", "calib_nhwc.npy", "torch_output.npy")]
    if not all(os.path.exists(f) for f in convnext):
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its folder
            make_convnext.main()
    print(OUT)


if __name__ == "__main__":
    main()
