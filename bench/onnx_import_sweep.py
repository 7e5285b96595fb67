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
Beyond torchvision's classifiers (family_cases): ConvNeXt-Tiny, YOLOv5- and YOLOv8-style
detectors at 128x128 (the raw heads; the whole detector with its box decode; the same cut at the
heads with --end-node-names, where onnxruntime runs the export with the cut tensors as its
outputs), the channels-last models (NHWC input permuted or reshaped inside, one with
preprocessing arithmetic first, one with an NHWC output), each at opsets 11, 13 and 17 with a
static shape and a dynamic batch; and PaddleOCR's det (320x320 and 640x640), cls and rec (whole,
and cut where its convolutional part ends) from the model cache's fixed ONNX files.
For each case: `hq parse`, then `hq emulate` (native float) on the NHWC input, against onnxruntime-node
(CPU, fp32) on the NCHW input (a channels-last model: both on its own NHWC input). A case passes
when max|hq - ort| <= 1e-4 * (max(ort) - min(ort)) on every output; a case hq refuses on purpose
(EXPECTED_REFUSALS: a bicubic resize, YOLOv5's rank-5 decode, ...) is REFUSED when hq's one line
gives the expected reason, and any other refusal FAILs. One line per case, then a closing count;
the refusals and failures are listed again at the end with their reason. Exit 1 when a case
failed.

usage: onnx_import_sweep.py --hq BUILD/hq --node-modules DIR [--cache DIR] [--cases REGEX]
                            [--work DIR] [--size N] [--ocr DIR]
Needs /usr/bin/python3 with torch, torchvision (and skimage for PaddleOCR's images), node with
onnxruntime-node under --node-modules (tests/models/fetch_models.sh installs it).
bench/onnx_import_sweep.sh drives it.
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
        torch.onnx.export(module, x, tmp_name(stem + ".onnx"), opset_version=opset,
                          input_names=["input"], output_names=["output"], dynamic_axes=dynamic,
                          do_constant_folding=not batch.endswith("_unfolded"))
    os.replace(tmp_name(stem + ".onnx"), stem + ".onnx")
    save_npy(stem + ".input.npy", x.numpy().astype(np.float32))
    return stem


# Families beyond torchvision's classifiers, in their own lists and functions (family_cases,
# export_family, family_spec): ConvNeXt-Tiny (tests/models/make_convnext.py's, with visible layer
# scales and LayerNorm affines), YOLOv5- and YOLOv8-style detectors (tests/models/yolo_cases.py),
# channels-last models (tests/models/channels_last_cases.py) and PaddleOCR's fixed ONNX files
# from the model cache.
CONVNEXT = ("convnext_tiny",)
# detectors at DETECTOR_SIZE: 'heads' exports the raw head outputs (three NCHW tensors), 'decode'
# the whole detector with its box decode, 'decode_cut' the same export parsed with
# --end-node-names at the heads (yolo_cases.HEAD_NODES; onnxruntime's reference is the export
# with those tensors made its outputs)
DETECTORS = ("yolov5n", "yolov8n")
DETECTOR_FORMS = ("heads", "decode", "decode_cut")
DETECTOR_SIZE = 128
# channels_last_cases.py's models: the class, the input channels, the scale of the 0..255 data
# the user has, whether the model's output is NHWC already
CHANNELS_LAST = {
    "nhwc_permute": ("Permute", 3, 1 / 255.0, False),
    "nhwc_preprocess": ("Preprocess", 3, 1.0, False),
    "nhwc_gray": ("Gray", 1, 1 / 255.0, False),
    "nhwc_output": ("Output", 3, 1 / 255.0, True),
}
# PaddleOCR (fixed ONNX files under <model cache>/ocr, dynamic H and W, so one opset and shapes
# given with --tensor-shapes): the file, the input shape, the end nodes of a cut (None: whole)
# and the image, preprocessed the PaddleOCR way by tests/models/real_cases.py (a detector's
# probability map on random noise is all near 0, a range too small to measure against). The
# recognizer's SVTR neck normalizes a [N, T, C] sequence, which hq refuses, so it is swept whole
# (the refusal) and cut where its convolutional part ends (swish_12.tmp_0, [N, 120, 1, T]).
TEXT_LINE = ("page", 4, 36, 2, 130, False)  # a line of skimage's page.png, as real_cases.py's
OCR = {
    "ppocr_det_320": ("ch_PP-OCRv4_det_infer.onnx", (1, 3, 320, 320), None, "page"),
    "ppocr_det_640": ("ch_PP-OCRv4_det_infer.onnx", (1, 3, 640, 640), None, "astronaut"),
    "ppocr_cls": ("ch_ppocr_mobile_v2.0_cls_infer.onnx", (1, 3, 48, 192), None, TEXT_LINE),
    "ppocr_rec": ("ch_PP-OCRv4_rec_infer.onnx", (1, 3, 48, 320), None, TEXT_LINE),
    "ppocr_rec_cut": ("ch_PP-OCRv4_rec_infer.onnx", (1, 3, 48, 320), ["p2o.Mul.177"], TEXT_LINE),
}


def family_cases():
    cases = []
    torch_made = list(CONVNEXT) + ["%s_%s" % (d, f) for d in DETECTORS for f in DETECTOR_FORMS]
    for model in torch_made + list(CHANNELS_LAST):
        for opset in OPSETS:
            for batch in ("static", "dynamic"):
                cases.append((model, opset, batch))
    for model in OCR:
        cases.append((model, 0, "fixed"))
    return cases


def family_spec(name, stem):
    """How a family case is parsed and compared: the extra `hq parse` options, whether the input
    file is NHWC already, whether onnxruntime's 4-D outputs are NHWC already, and the model
    onnxruntime runs for the reference."""
    spec = {"parse": [], "nhwc_input": False, "nhwc_output": False, "reference": stem + ".onnx"}
    detector = name.rsplit("_", 2)[0] if name.endswith("_decode_cut") else None
    if detector in DETECTORS:
        spec["parse"] = ["--end-node-names"] + yolo_cases_module().HEAD_NODES[detector]
        spec["reference"] = stem + ".cut.onnx"
    elif name == "yolov8n_decode":  # [N, 4 + classes, anchors]: boxes, then class scores
        spec["channel_groups"] = [4, yolo_cases_module().CLASSES]
    elif name in CHANNELS_LAST:
        spec["nhwc_input"] = True
        spec["nhwc_output"] = CHANNELS_LAST[name][3]
    elif name in OCR:
        _, shape, cut, _ = OCR[name]
        spec["parse"] = ["--tensor-shapes", ",".join(map(str, shape))]
        if cut:
            spec["parse"] += ["--end-node-names"] + cut
            spec["reference"] = stem + ".cut.onnx"
    return spec


def yolo_cases_module():
    models = os.path.join(ROOT, "tests", "models")
    if models not in sys.path:
        sys.path.insert(0, models)
    import yolo_cases

    return yolo_cases


def build_family_module(name, size):
    """(eval-mode module, input shape, input array or None) for a torch-made family case."""
    import torch

    torch.manual_seed(SEED)
    if name in CONVNEXT:
        yolo_cases_module()  # puts tests/models on the path
        import make_convnext

        return make_convnext.model(), (1, 3, size, size), None
    if name in CHANNELS_LAST:
        yolo_cases_module()
        import channels_last_cases

        cls, channels, scale, _ = CHANNELS_LAST[name]
        model = getattr(channels_last_cases, cls)().eval()
        h, w = channels_last_cases.H, channels_last_cases.W
        rgb = np.random.default_rng(SEED).uniform(0, 255, (1, h, w, channels))
        return model, (1, h, w, channels), (rgb * scale).astype(np.float32)
    detector, form = name.split("_", 1)
    side = DETECTOR_SIZE
    calibration = torch.randn(4, 3, side, side, generator=torch.Generator().manual_seed(SEED))
    model = recompute_batch_norm(yolo_cases_module().build(detector), calibration)
    model.detect.heads_only = form == "heads"
    return model, (1, 3, side, side), None


def export_family(name, opset, batch, folder, size, ocr_folder):
    """Writes <case>.onnx, <case>.input.npy (the model's own layout) and, for a cut,
    <case>.cut.onnx (the export with the cut tensors as its outputs) unless present."""
    import torch

    stem = os.path.join(folder, "%s_op%d_%s" % (name, opset, batch))
    if name in OCR:
        stem = os.path.join(folder, name)
    done = [stem + ".onnx", stem + ".input.npy"]
    cut_nodes = None
    if name in OCR:
        cut_nodes = OCR[name][2]
    elif name.endswith("_decode_cut"):
        cut_nodes = yolo_cases_module().HEAD_NODES[name.split("_", 1)[0]]
    if cut_nodes:
        done.append(stem + ".cut.onnx")
    if all(os.path.exists(f) for f in done):
        return stem
    if name in OCR:
        file, shape, _, image = OCR[name]
        with open(os.path.join(ocr_folder, file), "rb") as f:
            model_bytes = f.read()
        save_bytes(stem + ".onnx", model_bytes)
        yolo_cases_module()  # puts tests/models on the path
        import real_cases

        make = real_cases.det_input if isinstance(image, str) else real_cases.cls_input
        x = make(image, shape[2], shape[3])[None]
    else:
        module, shape, x = build_family_module(name, size)
        if x is None:
            x = torch.randn(*shape, generator=torch.Generator().manual_seed(SEED + 1)).numpy()
        dynamic = None
        if batch == "dynamic":
            dynamic = {"input": {0: "batch"}}
        with torch.no_grad():
            torch.onnx.export(module, torch.from_numpy(x), tmp_name(stem + ".onnx"),
                              opset_version=opset, input_names=["input"], dynamic_axes=dynamic)
        os.replace(tmp_name(stem + ".onnx"), stem + ".onnx")
        with open(stem + ".onnx", "rb") as f:
            model_bytes = f.read()
    if cut_nodes:
        save_bytes(stem + ".cut.onnx", onnx_with_outputs(model_bytes, cut_nodes))
    save_npy(stem + ".input.npy", np.ascontiguousarray(x, np.float32))
    return stem


# Files in the cache are written under a name of this process and then renamed: runs sharing the
# cache (the test command's subset alongside a full sweep) never read a half-written file.
def tmp_name(path):
    stem, ext = os.path.splitext(path)
    return "%s.tmp%d%s" % (stem, os.getpid(), ext)


def save_bytes(path, data):
    with open(tmp_name(path), "wb") as f:
        f.write(data)
    os.replace(tmp_name(path), path)


def save_npy(path, array):
    np.save(tmp_name(path), array)
    os.replace(tmp_name(path), path)


def _varint(data, i):
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _fields(data):
    """(field number, value, raw bytes of the whole field) of a protobuf message."""
    i = 0
    while i < len(data):
        start = i
        key, i = _varint(data, i)
        wire = key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            n, i = _varint(data, i)
            value, i = data[i:i + n], i + n
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            value, i = data[i:i + n], i + n
        else:
            raise ValueError("protobuf wire type %d" % wire)
        yield key >> 3, value, data[start:i]


def _length_delimited(field, payload):
    def varint(n):
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return bytes(out)

    return varint(field << 3 | 2) + varint(len(payload)) + payload


def onnx_with_outputs(model, node_names):
    """The ONNX model bytes with its graph outputs replaced by the first outputs of the nodes
    NODE_NAMES, in that order (ModelProto.graph = 7; GraphProto.node = 1, .output = 12;
    NodeProto.output = 2, .name = 3; ValueInfoProto.name = 1): what onnxruntime runs for the
    reference of an --end-node-names cut."""
    out = bytearray()
    for field, graph, raw in _fields(model):
        if field != 7:
            out += raw
            continue
        produced = {}
        for f, node, _ in _fields(graph):
            if f == 1:
                outputs = [v.decode() for g, v, _ in _fields(node) if g == 2]
                names = [v.decode() for g, v, _ in _fields(node) if g == 3]
                if names and outputs:
                    produced[names[0]] = outputs[0]
        missing = [n for n in node_names if n not in produced]
        if missing:
            raise ValueError("no node named %s" % ", ".join(missing))
        body = b"".join(r for f, _, r in _fields(graph) if f != 12)
        body += b"".join(_length_delimited(12, _length_delimited(1, produced[n].encode()))
                         for n in node_names)
        out += _length_delimited(7, body)
    return bytes(out)


CACHE_PREFIX = []  # the cache folder, left out of the messages (they name the model file)

# The cases hq refuses on purpose, each with what its one line must say (a regular expression);
# any other refusal, or one of these refused for another reason, is a failure. A case here that
# parses and matches onnxruntime passes.
EXPECTED_REFUSALS = (
    # align_corners by a fractional scale, where the ONNX reference and onnxruntime disagree
    (r"^resize_bilinear_align_x1_7_", r"align_corners with scale 1\.7 .*export with sizes"),
    (r"^resize_bicubic_", r"mode 'cubic' is not supported"),
    # the rank-5 view of YOLOv5's decode, with the cut at the three heads that leaves it out
    (r"^yolov5n_decode_op", r"\(Reshape\): reshape to rank 5 .*; it is post-processing: cut "
                            r"before it with --end-node-names /detect/m\.0/Conv /detect/m\.1/Conv "
                            r"/detect/m\.2/Conv$"),
)


def expected_refusal(case, line):
    """True when CASE is refused on purpose and LINE (hq's refusal) gives the reason it must."""
    return any(re.search(c, case) and re.search(r, line) for c, r in EXPECTED_REFUSALS)


def first_line(text):
    lines = [l for l in text.strip().splitlines() if l.strip()]
    line = lines[-1] if lines else "(no message)"
    for prefix in CACHE_PREFIX:
        line = line.replace(prefix, "")
    return line


def run_case(args, stem, work, spec=None):
    """Returns (status, detail): PASS / FAIL / REFUSED. SPEC (family_spec's) adds parse options,
    says which layouts the input and the outputs have and which model gives the reference; every
    output is compared, the detail names the worst."""
    spec = spec or {"parse": [], "nhwc_input": False, "nhwc_output": False,
                    "reference": stem + ".onnx"}
    base = os.path.join(work, os.path.basename(stem))
    ref_prefix = base + ".ort"
    if not os.path.exists(ref_prefix + ".0.npy"):
        r = subprocess.run(["node", REFERENCE_JS, args.node_modules, spec["reference"],
                            stem + ".input.npy", ref_prefix], capture_output=True, text=True)
        if r.returncode != 0:
            return "FAIL", "onnxruntime: " + first_line(r.stderr)
    shape = np.load(stem + ".input.npy").shape
    command = [args.hq, "parse", stem + ".onnx", "-o", base + ".har"] + spec["parse"]
    if "_dynamic_hw" in stem:
        command += ["--tensor-shapes", ",".join(str(d) for d in shape)]
    r = subprocess.run(command, capture_output=True, text=True)
    if r.returncode != 0:
        return "REFUSED", first_line(r.stderr)
    x = np.load(stem + ".input.npy")
    nhwc = np.ascontiguousarray(x if spec["nhwc_input"] else x.transpose(0, 2, 3, 1))
    np.save(base + ".nhwc.npy", nhwc)
    r = subprocess.run([args.hq, "emulate", base + ".har", "-d", base + ".nhwc.npy", "-o",
                        base + ".hq.npz"], capture_output=True, text=True)
    if r.returncode != 0:
        return "FAIL", "hq emulate: " + first_line(r.stderr)
    out = np.load(base + ".hq.npz")
    refs = []
    while os.path.exists("%s.%d.npy" % (ref_prefix, len(refs))):
        refs.append(np.load("%s.%d.npy" % (ref_prefix, len(refs))).astype(np.float64))
    if len(out.files) != len(refs):
        return "FAIL", "hq has %d outputs, onnxruntime %d" % (len(out.files), len(refs))
    worst, parts = None, 0
    for k, (key, ref) in enumerate(zip(out.files, refs)):
        got = out[key].astype(np.float64)
        if ref.ndim == 4 and not spec["nhwc_output"]:
            ref = ref.transpose(0, 2, 3, 1)
        elif ref.ndim == 3:  # [N, C, L]: hq's [N, 1, L, C]
            ref = ref.transpose(0, 2, 1)[:, None]
        if got.shape != ref.shape:
            return "FAIL", "hq output %d %s, onnxruntime %s" % (k, got.shape, ref.shape)
        # channel groups of different scales (a decoded detector's boxes in pixels and class
        # scores in 0..1) are each held to their own range
        bounds = np.cumsum([0] + spec.get("channel_groups", [got.shape[-1]]))
        for g, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
            a, b = got[..., lo:hi], ref[..., lo:hi]
            err, span = float(np.abs(a - b).max()), float(b.max() - b.min())
            if worst is None or err / max(span, 1e-30) > worst[0] / max(worst[1], 1e-30):
                worst = (err, span, "output %d" % k if len(bounds) == 2 else
                         "output %d channels %d-%d" % (k, lo, hi - 1))
            parts += 1
    err, span, where = worst
    detail = "max|hq-ort| %.3g of range %.4g (%.2g relative)" % (err, span, err / max(span, 1e-30))
    if parts > 1:
        detail += ", worst of %d parts: %s" % (parts, where)
    return ("PASS" if err <= TOLERANCE * span else "FAIL"), detail


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hq", required=True)
    parser.add_argument("--node-modules", required=True)
    parser.add_argument("--cache", default=os.path.join(
        os.environ.get("HQ_MODEL_CACHE") or os.path.join(ROOT, ".cache", "models"), "sweep"),
        help="where the exports are kept (${HQ_MODEL_CACHE:-<repo>/.cache/models}/sweep)")
    parser.add_argument("--cases", default="", help="only cases whose name matches this regex")
    parser.add_argument("--work", help="where hq's archives and outputs and onnxruntime's "
                        "references go (<cache>/run)")
    parser.add_argument("--size", type=int, default=96, help="classifier input side (96)")
    parser.add_argument("--ocr", default=os.path.join(
        os.environ.get("HQ_MODEL_CACHE") or os.path.join(ROOT, ".cache", "models"), "ocr"),
        help="the PaddleOCR ONNX files (${HQ_MODEL_CACHE:-<repo>/.cache/models}/ocr)")
    args = parser.parse_args()

    import torch

    warnings.filterwarnings("ignore")  # torch's exporter warns on every case
    torch.set_num_threads(1)
    os.makedirs(args.cache, exist_ok=True)
    CACHE_PREFIX.append(os.path.join(os.path.abspath(args.cache), ""))
    work = args.work or os.path.join(args.cache, "run")
    os.makedirs(work, exist_ok=True)
    pattern = re.compile(args.cases)
    counts = {"PASS": 0, "FAIL": 0, "REFUSED": 0}
    problems = []
    families = set(family_cases())
    for name, opset, batch in all_cases() + family_cases():
        case = name if batch == "fixed" else "%s_op%d_%s" % (name, opset, batch)
        if not pattern.search(case):
            continue
        start = time.time()
        try:
            if (name, opset, batch) in families:
                stem = export_family(name, opset, batch, args.cache, args.size, args.ocr)
                status, detail = run_case(args, stem, work, family_spec(name, stem))
            else:
                stem = export(name, opset, batch, args.cache, args.size)
                status, detail = run_case(args, stem, work)
        except Exception as e:  # an export torch refuses is a result of the sweep too
            status, detail = "FAIL", "export: %s" % first_line(str(e))
        if status == "REFUSED" and not expected_refusal(case, detail):
            expected = any(re.search(c, case) for c, _ in EXPECTED_REFUSALS)
            status, detail = "FAIL", ("refused for another reason than expected: " if expected
                                      else "refused unexpectedly: ") + detail
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
