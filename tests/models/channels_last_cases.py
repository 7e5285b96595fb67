#!/usr/bin/python3
"""channels_last_cases.py OUTDIR — small torch-exported models for hq parse's channels-last rule
and post-processing cut hint (tests/e2e/onnx_channels_last.sh); written to OUTDIR, never committed.

Per case OUTDIR/<case>.onnx, <case>.input.npy (the NHWC float32 data the user has, batch 2) and
<case>.output.npy (torch's output for it, converted to NHWC when the model returns NCHW):

  nhwc_permute      input [N, 16, 12, 3], x.permute(0, 3, 1, 2) then conv-relu-conv (NCHW out)
  nhwc_preprocess   input [N, 16, 12, 3], (x * (1/255) - mean) / std per channel, then permute
  nhwc_gray         input [N, 16, 12, 1], x.reshape(-1, 1, 16, 12) (the C = 1 form)
  nhwc_output       input [N, 16, 12, 3] permuted in, output permuted back to NHWC

and detector.onnx: two conv heads -> concat -> sigmoid scores -> TopK and NonZero/Gather decoding
(no reference output: only its parse is tested). Exported by Debian's torch 1.13, opset 13, batch
dimension dynamic. Prints nothing; exit 0.
"""
import os
import sys

import numpy as np
import torch

H, W = 16, 12
SEED = 20261124


class Body(torch.nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.c1 = torch.nn.Conv2d(cin, 8, 3, padding=1)
        self.c2 = torch.nn.Conv2d(8, 5, 3, stride=2, padding=1)

    def forward(self, x):
        return self.c2(torch.relu(self.c1(x)))


class Permute(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = Body(3)

    def forward(self, x):
        return self.body(x.permute(0, 3, 1, 2))


class Preprocess(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = Body(3)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]))

    def forward(self, x):
        x = (x * (1.0 / 255.0) - self.mean) / self.std
        return self.body(x.permute(0, 3, 1, 2))


class Gray(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = Body(1)

    def forward(self, x):
        return self.body(x.reshape(-1, 1, H, W))


class Output(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = Body(3)

    def forward(self, x):
        return self.body(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class Detector(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = Body(3)
        self.box = torch.nn.Conv2d(5, 4, 1)
        self.score = torch.nn.Conv2d(5, 2, 1)

    def forward(self, x):
        f = torch.relu(self.body(x))
        boxes = self.box(f).flatten(2)
        scores = torch.sigmoid(self.score(f)).flatten(2)
        both = torch.cat([boxes, scores], 1)[0]
        best, index = both[4].topk(5)
        keep = torch.nonzero(best > 0.5).flatten()
        return both[:4, index[keep]], best[keep]


def export(model, x, path, nchw_output):
    model.eval()
    with torch.no_grad():
        y = model(torch.from_numpy(x))
    torch.onnx.export(model, torch.from_numpy(x[:1]), path, opset_version=13,
                      do_constant_folding=True, input_names=["image"],
                      dynamic_axes={"image": {0: "batch"}})
    if nchw_output:
        y = y.permute(0, 2, 3, 1)
    return np.ascontiguousarray(y.numpy().astype(np.float32))


def main():
    out = sys.argv[1]
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    rng = np.random.default_rng(SEED)
    rgb = rng.uniform(0, 255, (2, H, W, 3)).astype(np.float32)
    cases = {
        "nhwc_permute": (Permute(), rgb / 255.0, True),
        "nhwc_preprocess": (Preprocess(), rgb, True),
        "nhwc_gray": (Gray(), rgb[..., :1] / 255.0, True),
        "nhwc_output": (Output(), rgb / 255.0, False),
    }
    for name, (model, x, nchw_output) in cases.items():
        x = np.ascontiguousarray(x.astype(np.float32))
        y = export(model, x, os.path.join(out, name + ".onnx"), nchw_output)
        np.save(os.path.join(out, name + ".input.npy"), x)
        np.save(os.path.join(out, name + ".output.npy"), y)
    det = Detector().eval()
    x = torch.from_numpy(rgb[:1].transpose(0, 3, 1, 2).copy() / 255.0)
    torch.onnx.export(det, x, os.path.join(out, "detector.onnx"), opset_version=13,
                      do_constant_folding=True, input_names=["image"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
