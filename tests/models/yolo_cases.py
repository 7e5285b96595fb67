#!/usr/bin/python3
"""YOLOv5- and YOLOv8-style detectors written from their public architectures, as torch modules,
for bench/onnx_import_sweep.py (random weights; the sweep recomputes the BatchNorm statistics).

  yolov5n  YOLOv5 v6.x at depth 0.33, width 0.25 (channels 16 to 256): Conv = conv-BN-SiLU with a
           6x6 stride-2 stem, C3 blocks (two 1x1 branches, bottlenecks, a 1x1 after the concat),
           SPPF, the PAN neck (1x1 conv, nearest x2 upsample, concat, C3 without shortcut, then
           3x3 stride-2 convs back down), and the Detect head: one 1x1 conv per scale giving
           3 anchors x (4 box + 1 objectness + classes) channels. The decode: view to
           [N, 3, 5 + classes, H, W], permute to [N, 3, H, W, 5 + classes], sigmoid,
           xy = (2 sigmoid - 0.5 + grid) * stride, wh = (2 sigmoid)^2 * anchor, concat, view to
           [N, 3 H W, 5 + classes] and concat over the three scales.
  yolov8n  tests/models/make_pipeline_models.py's YOLOv8n-style detector (C2f, SPPF, PAN neck,
           the decoupled head with 16 DFL bins; the decode: softmax over the bins, the
           arange-weighted 1x1 conv, dist2bbox with the anchor grid and strides, sigmoid classes,
           concat).

build(name) returns the module with its decode; setting module.detect.heads_only = True makes it
return the raw head outputs instead (one NCHW tensor per scale), the tensors that
HEAD_NODES[name] (the ONNX node names torch 1.13 gives them) cut the decoded export at.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

CLASSES = 8
HEAD_NODES = {
    "yolov5n": ["/detect/m.0/Conv", "/detect/m.1/Conv", "/detect/m.2/Conv"],
    "yolov8n": ["/detect/Concat", "/detect/Concat_1", "/detect/Concat_2"],
}


def yolov5_class():
    """The YOLOv5 building blocks (ultralytics' v6.x architecture), as torch modules."""
    import torch
    from torch import nn

    class Conv(nn.Module):
        def __init__(self, c1, c2, k=1, s=1, p=None):
            super().__init__()
            self.conv = nn.Conv2d(c1, c2, k, s, k // 2 if p is None else p, bias=False)
            self.bn = nn.BatchNorm2d(c2)

        def forward(self, x):
            return nn.functional.silu(self.bn(self.conv(x)))

    class Bottleneck(nn.Module):
        def __init__(self, c, shortcut):
            super().__init__()
            self.cv1, self.cv2 = Conv(c, c, 1), Conv(c, c, 3)
            self.add = shortcut

        def forward(self, x):
            y = self.cv2(self.cv1(x))
            return x + y if self.add else y

    class C3(nn.Module):
        def __init__(self, c1, c2, n, shortcut=True):
            super().__init__()
            c = c2 // 2
            self.cv1, self.cv2, self.cv3 = Conv(c1, c, 1), Conv(c1, c, 1), Conv(2 * c, c2, 1)
            self.m = nn.Sequential(*(Bottleneck(c, shortcut) for _ in range(n)))

        def forward(self, x):
            return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))

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
        ANCHORS = ((10, 13, 16, 30, 33, 23), (30, 61, 62, 45, 59, 119),
                   (116, 90, 156, 198, 373, 326))  # pixels, per scale: 3 (w, h) pairs

        def __init__(self, nc, ch, strides=(8, 16, 32)):
            super().__init__()
            self.nc, self.no, self.na, self.strides = nc, nc + 5, 3, strides
            self.m = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in ch)
            self.heads_only = False

        def forward(self, xs):
            xs = [m(x) for m, x in zip(self.m, xs)]
            if self.heads_only:
                return xs
            z = []
            for i, x in enumerate(xs):
                n, _, ny, nx = x.shape
                x = x.view(n, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()
                yv, xv = torch.meshgrid(torch.arange(ny), torch.arange(nx), indexing="ij")
                grid = torch.stack((xv, yv), 2).view(1, 1, ny, nx, 2).float() - 0.5
                anchor = torch.tensor(self.ANCHORS[i], dtype=torch.float32).view(
                    1, self.na, 1, 1, 2)
                xy, wh, conf = x.sigmoid().split((2, 2, self.nc + 1), 4)
                xy = (xy * 2 + grid) * self.strides[i]
                wh = (wh * 2) ** 2 * anchor
                z.append(torch.cat((xy, wh, conf), 4).view(n, self.na * ny * nx, self.no))
            return torch.cat(z, 1)

    class YOLOv5(nn.Module):
        """yolov5n: depth 0.33, width 0.25 (channels 16 to 256)."""

        def __init__(self, nc=CLASSES):
            super().__init__()
            c = [16, 32, 64, 128, 256]
            self.b0, self.b1 = Conv(3, c[0], 6, 2, 2), Conv(c[0], c[1], 3, 2)
            self.b2, self.b3 = C3(c[1], c[1], 1), Conv(c[1], c[2], 3, 2)
            self.b4, self.b5 = C3(c[2], c[2], 2), Conv(c[2], c[3], 3, 2)
            self.b6, self.b7 = C3(c[3], c[3], 3), Conv(c[3], c[4], 3, 2)
            self.b8, self.b9 = C3(c[4], c[4], 1), SPPF(c[4], c[4])
            self.up = nn.Upsample(scale_factor=2.0, mode="nearest")
            self.n10, self.n13 = Conv(c[4], c[3], 1), C3(c[4], c[3], 1, False)
            self.n14, self.n17 = Conv(c[3], c[2], 1), C3(c[3], c[2], 1, False)
            self.n18, self.n20 = Conv(c[2], c[2], 3, 2), C3(c[3], c[3], 1, False)
            self.n21, self.n23 = Conv(c[3], c[3], 3, 2), C3(c[4], c[4], 1, False)
            self.detect = Detect(nc, (c[2], c[3], c[4]))

        def forward(self, x):
            p3 = self.b4(self.b3(self.b2(self.b1(self.b0(x)))))
            p4 = self.b6(self.b5(p3))
            h10 = self.n10(self.b9(self.b8(self.b7(p4))))
            h14 = self.n14(self.n13(torch.cat((self.up(h10), p4), 1)))
            h17 = self.n17(torch.cat((self.up(h14), p3), 1))
            h20 = self.n20(torch.cat((self.n18(h17), h14), 1))
            h23 = self.n23(torch.cat((self.n21(h20), h10), 1))
            return self.detect([h17, h20, h23])

    return YOLOv5


def build(name):
    """The detector NAME ('yolov5n' or 'yolov8n') with its decode, random weights."""
    if name == "yolov5n":
        return yolov5_class()()
    if name == "yolov8n":
        from make_pipeline_models import yolov8_classes

        return yolov8_classes()()
    raise ValueError("yolo_cases: unknown detector '%s'" % name)
