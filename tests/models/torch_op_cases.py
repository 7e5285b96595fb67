#!/usr/bin/python3
"""torch_op_cases.py OUTDIR [CASE...] — torch exports of the ops real networks need beyond the
basic set, for tests/e2e/onnx_torch_ops.sh; written to OUTDIR, never committed.

Per case OUTDIR/<case>.onnx, <case>.input.npy (NHWC float32, batch 2) and <case>.output.npy
(torch's output for it, NHWC when the model returns an image):

  shuffle_block       a ShuffleNetV2-style block: conv, x.view(n, g, c // g, h, w).transpose(1, 2)
                      .contiguous().view(n, c, h, w) with g = 4, conv (hq: one channel_shuffle)
  shufflenet_v2_x0_5  torchvision's, random weights (weights=None), 64x64, logits
  mnasnet0_5          torchvision's, random weights, 64x64, logits (x.mean([2, 3]) = ReduceMean)
  reduce_mean_keep    conv, x.mean([2, 3], keepdim=True), conv (ReduceMean with keepdims 1)
  pool_dilated        conv, MaxPool2d(3, stride=1, padding=1, dilation=2), conv
  prelu_slopes        conv, PReLU(C) (slope [C, 1, 1]), conv, PReLU() (slope [1])
  gelu                conv, torch.nn.GELU() (Erf), conv, GELU, dense

The torchvision networks' BatchNorm statistics come from one train-mode pass over random data, so
their activations are of order one instead of fading with depth. Exported by Debian's torch 1.13,
opset 13, constant folding on, eval mode. Prints nothing; exit 0.
"""
import os
import sys

import numpy as np
import torch

SEED = 20261207
OPSET = 13


class ShuffleBlock(torch.nn.Module):
    def __init__(self, channels=16, groups=4):
        super().__init__()
        self.groups = groups
        self.c1 = torch.nn.Conv2d(3, channels, 3, padding=1)
        self.c2 = torch.nn.Conv2d(channels, 8, 1)

    def forward(self, x):
        x = torch.relu(self.c1(x))
        n, c, h, w = x.size()
        x = x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).contiguous()
        return self.c2(x.view(n, c, h, w))


class ReduceMeanKeep(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = torch.nn.Conv2d(8, 5, 1)

    def forward(self, x):
        return self.c2(torch.relu(self.c1(x)).mean([2, 3], keepdim=True))


class PoolDilated(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.pool = torch.nn.MaxPool2d(3, stride=1, padding=1, dilation=2)
        self.c2 = torch.nn.Conv2d(8, 5, 3, padding=1)

    def forward(self, x):
        return self.c2(self.pool(self.c1(x)))


class PReluSlopes(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.p1 = torch.nn.PReLU(8)
        self.c2 = torch.nn.Conv2d(8, 5, 3, padding=1)
        self.p2 = torch.nn.PReLU()
        with torch.no_grad():
            self.p1.weight.copy_(torch.linspace(-0.5, 0.7, 8))
            self.p2.weight.fill_(0.3)

    def forward(self, x):
        return self.p2(self.c2(self.p1(self.c1(x))))


class Gelu(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = torch.nn.Conv2d(8, 6, 3, stride=2, padding=1)
        self.act = torch.nn.GELU()
        self.fc = torch.nn.Linear(6, 4)

    def forward(self, x):
        x = self.act(self.c2(self.act(self.c1(x))))
        return self.fc(x.mean([2, 3]))


def torchvision_net(name):
    import torchvision

    def build():
        model = getattr(torchvision.models, name)(weights=None)
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.reset_running_stats()
                module.momentum = None
        model.train()
        with torch.no_grad():
            model(torch.randn(8, 3, 64, 64))
        return model

    return build, (3, 64, 64)


CASES = {
    "shuffle_block": (ShuffleBlock, (3, 12, 10)),
    "shufflenet_v2_x0_5": torchvision_net("shufflenet_v2_x0_5"),
    "mnasnet0_5": torchvision_net("mnasnet0_5"),
    "reduce_mean_keep": (ReduceMeanKeep, (3, 12, 10)),
    "pool_dilated": (PoolDilated, (3, 12, 10)),
    "prelu_slopes": (PReluSlopes, (3, 12, 10)),
    "gelu": (Gelu, (3, 12, 10)),
}


def main():
    out = sys.argv[1]
    names = sys.argv[2:] or list(CASES)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    for name in names:
        build, chw = CASES[name]
        torch.manual_seed(SEED)
        model = build().eval()
        x = torch.randn(2, *chw)
        with torch.no_grad():
            y = model(x).numpy()
        if y.ndim == 4:
            y = y.transpose(0, 2, 3, 1)
        path = os.path.join(out, name)
        torch.onnx.export(model, x, path + ".onnx", opset_version=OPSET, do_constant_folding=True,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "n"}, "output": {0: "n"}})
        np.save(path + ".input.npy", np.ascontiguousarray(x.numpy().transpose(0, 2, 3, 1)))
        np.save(path + ".output.npy", np.ascontiguousarray(y.astype(np.float32)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
