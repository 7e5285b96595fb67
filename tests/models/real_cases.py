#!/usr/bin/python3
"""real_cases.py — the real-model cases of the ONNX tests: PP-OCRv4 det, PP-OCR cls and PP-OCRv4
rec on real images from python3-skimage, preprocessed the PaddleOCR way.

  real_cases.py list                          one line per case: name model-key nchw-shape
  real_cases.py inputs OUTDIR                 writes OUTDIR/<case>.nchw.npy (onnxruntime) and
                                              OUTDIR/<case>.nhwc.npy (hq), float32
  real_cases.py summarize CASE REF.npy OUT.npz  turns onnxruntime's full output (NCHW) into the
                                              small committed fixture OUT.npz
  real_cases.py check CASE HQ_OUT.npz FIXTURE.npz [INPUT.nhwc.npy]
                                              compares hq's output (NHWC) with the fixture;
                                              prints the errors, exit 1 on a mismatch

Inputs are regenerated, never committed: the preprocessing below uses only elementwise float64
numpy arithmetic on lossless PNGs, so it gives the same bytes on every machine, and each fixture
records the SHA-256 of the input it was made from (a drift is reported as such, not as a model
error).

Fixtures (tests/fixtures/onnx/real/<case>.npz) keep the reference small: for 4-D outputs a
strided grid of values (every GRID-th row and column from GRID_OFFSET), the sum of every row and
of every column, and min/max/mean of the whole tensor; 2-D outputs are stored whole; 3-D outputs
(the recognizer's [N, T, classes] probabilities) keep every CLASS_STRIDE-th class from
GRID_OFFSET at every step, each step's largest value and its class, and min/max/mean. The
tolerance, the same for every number compared (a sum of n values gets n times the bound):
    |hq - ref| <= 1e-4 * max|ref| + 1e-5
where max|ref| is the largest magnitude of the whole reference output of that case. The largest
per-element ratio |hq - ref| / (1e-4 * |ref| + 1e-5) over the stored values is printed too.
"""
import hashlib
import os
import sys

import numpy as np

DATA = "/usr/lib/python3/dist-packages/skimage/data"
GRID = 8
GRID_OFFSET = 3
CLASS_STRIDE = 256
REL = 1e-4
ABS = 1e-5

# PaddleOCR det: DetResizeForTest(image_shape) + NormalizeImage (ImageNet mean/std on the BGR
# image, as PaddleOCR applies it to what cv2.imread returns) + ToCHWImage.
DET_MEAN = np.array([0.485, 0.456, 0.406])
DET_STD = np.array([0.229, 0.224, 0.225])

# name: (model key, images, (H, W)) — model keys are fetch_models.sh's
CASES = {
    "det_640x640": ("det", ["astronaut", "coffee"], (640, 640)),
    "det_320x640": ("det", ["page"], (320, 640)),
    # text-line crops of `page` (rows y0:y1, cols x0:x1), upright and turned by 180 degrees
    "cls_48x192": ("cls", [("page", 4, 36, 2, 130, False), ("page", 42, 62, 0, 80, False),
                           ("page", 4, 36, 2, 130, True), ("page", 42, 62, 0, 80, True)],
                   (48, 192)),
    # two text lines of `page` at the recognizer's 48x320 (the same resize and normalization)
    "rec_48x320": ("rec", [("page", 4, 36, 2, 130, False), ("page", 42, 62, 0, 80, False)],
                   (48, 320)),
}


def load_bgr(name):
    """The image as float64 HWC in BGR order (cv2.imread's layout), values 0..255."""
    import skimage.io  # python3-skimage; PNG is lossless, so the pixels are exact

    img = np.asarray(skimage.io.imread(os.path.join(DATA, name + ".png")))
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    img = img[..., :3].astype(np.float64)
    return img[..., ::-1]


def resize_bilinear(img, h, w):
    """cv2.INTER_LINEAR geometry (half-pixel centres, edge clamp) in float64."""
    ih, iw = img.shape[:2]

    def axis(n_out, n_in):
        src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
        src = np.clip(src, 0, n_in - 1)
        i0 = np.floor(src).astype(np.int64)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, src - i0

    y0, y1, fy = axis(h, ih)
    x0, x1, fx = axis(w, iw)
    fy = fy[:, None, None]
    fx = fx[None, :, None]
    top = img[y0][:, x0] * (1 - fx) + img[y0][:, x1] * fx
    bottom = img[y1][:, x0] * (1 - fx) + img[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def det_input(name, h, w):
    img = resize_bilinear(load_bgr(name), h, w)
    img = (img / 255.0 - DET_MEAN) / DET_STD
    return img.transpose(2, 0, 1)


def cls_input(spec, h, w):
    """PaddleOCR resize_norm_img for cls and rec: height 48, width by aspect up to w (192 for cls,
    320 for rec), (x/255-0.5)/0.5, zero padding on the right."""
    name, y0, y1, x0, x1, turn = spec
    img = load_bgr(name)[y0:y1, x0:x1]
    if turn:
        img = img[::-1, ::-1]
    ratio = img.shape[1] / img.shape[0]
    rw = min(w, int(np.ceil(h * ratio)))
    img = resize_bilinear(img, h, rw)
    img = (img / 255.0 - 0.5) / 0.5
    out = np.zeros((3, h, w))
    out[:, :, :rw] = img.transpose(2, 0, 1)
    return out


def make_input(case):
    model, images, (h, w) = CASES[case]
    make = det_input if model == "det" else cls_input
    return np.ascontiguousarray(np.stack([make(i, h, w) for i in images]), dtype=np.float32)


def sha(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def summarize(case, ref_path, out_path):
    ref = np.load(ref_path).astype(np.float32)
    x = make_input(case)
    fields = {
        "input_sha256": np.array(sha(x)),
        "output_sha256": np.array(sha(ref)),
        "shape": np.array(ref.shape, dtype=np.int64),
        "max_abs": np.array(np.abs(ref).max(), dtype=np.float64),
        "min": np.array(ref.min(), dtype=np.float64),
        "max": np.array(ref.max(), dtype=np.float64),
        "mean": np.array(ref.astype(np.float64).mean()),
    }
    if ref.ndim == 4:
        fields["grid"] = ref[:, :, GRID_OFFSET::GRID, GRID_OFFSET::GRID]
        fields["row_sums"] = ref.astype(np.float64).sum(axis=3)
        fields["col_sums"] = ref.astype(np.float64).sum(axis=2)
    elif ref.ndim == 3:
        top2 = np.sort(ref, axis=2)[:, :, -2:]
        fields["classes"] = ref[:, :, GRID_OFFSET::CLASS_STRIDE]
        fields["top"] = top2[:, :, 1]
        fields["margin"] = top2[:, :, 1] - top2[:, :, 0]
        fields["argmax"] = ref.argmax(axis=2).astype(np.int64)
    else:
        fields["full"] = ref
    np.savez_compressed(out_path, **fields)
    print("%s: %s, max|ref| %.6g, fixture %s (%d bytes)"
          % (case, list(ref.shape), fields["max_abs"], out_path, os.path.getsize(out_path)))


def check(case, hq_path, fixture_path, input_path=None):
    fx = np.load(fixture_path)
    if input_path is not None:
        x = np.load(input_path).transpose(0, 3, 1, 2)
        if sha(np.ascontiguousarray(x)) != str(fx["input_sha256"]):
            print("%s: the regenerated input differs from the one the reference was made from "
                  "(preprocessing or image drift, not a model error): rerun "
                  "tests/models/make_reference.sh" % case)
            return 1
    outs = np.load(hq_path)
    keys = list(outs.keys())
    if len(keys) != 1:
        print("%s: expected one output in %s, found %s" % (case, hq_path, keys))
        return 1
    got = outs[keys[0]].astype(np.float64)
    shape = tuple(int(v) for v in fx["shape"])
    if got.ndim == 4 and len(shape) == 3:
        got = got[:, 0].transpose(0, 2, 1)  # [N, C, L] is hq's [N, 1, L, C]
    elif got.ndim == 4:
        got = got.transpose(0, 3, 1, 2)  # hq writes NHWC
    if got.shape != shape:
        print("%s: hq output shape %s, reference %s" % (case, got.shape, shape))
        return 1
    bound = REL * float(fx["max_abs"]) + ABS
    checks = []
    if "full" in fx:
        checks.append(("all values", got, fx["full"], 1))
    elif "classes" in fx:
        checks.append(("class values", got[:, :, GRID_OFFSET::CLASS_STRIDE], fx["classes"], 1))
        checks.append(("step maxima", got.max(axis=2), fx["top"], 1))
        # the class read at each step, where onnxruntime's choice is clear by more than the bound
        clear = fx["margin"] > 2 * (REL * float(fx["max_abs"]) + ABS)
        wrong = int(np.sum((got.argmax(axis=2) != fx["argmax"]) & clear))
        if wrong:
            print("%s: %d of %d steps read another class than onnxruntime"
                  % (case, wrong, int(clear.sum())))
            return 1
    else:
        checks.append(("grid values", got[:, :, GRID_OFFSET::GRID, GRID_OFFSET::GRID], fx["grid"], 1))
        checks.append(("row sums", got.sum(axis=3), fx["row_sums"], shape[3]))
        checks.append(("column sums", got.sum(axis=2), fx["col_sums"], shape[2]))
    checks.append(("min", got.min(), fx["min"], 1))
    checks.append(("max", got.max(), fx["max"], 1))
    checks.append(("mean", got.mean(), fx["mean"], 1))
    worst = 0.0
    failed = False
    for what, a, b, n in checks:
        err = float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())
        ratio = err / (n * bound)
        worst = max(worst, ratio)
        if not err <= n * bound:
            print("%s: %s differ by %.3g, more than %.3g (= %d x (1e-4 x %.4g + 1e-5))"
                  % (case, what, err, n * bound, n, float(fx["max_abs"])))
            failed = True
    # element by element, each against its own magnitude: reported, not asserted (a value near
    # zero made by cancelling large partial sums carries their rounding; docs/emulation.md)
    a, b = np.asarray(checks[0][1], np.float64), np.asarray(checks[0][2], np.float64)
    elem_ratio = float((np.abs(a - b) / (REL * np.abs(b) + ABS)).max())
    grid_err = float(np.abs(checks[0][1] - checks[0][2]).max())
    print("%s: max|hq - ref| %.3g over %s (max|ref| %.4g, bound %.3g); worst check at %.3f of "
          "its bound; per element at most %.3f of 1e-4 |ref| + 1e-5"
          % (case, grid_err, checks[0][0], float(fx["max_abs"]), bound, worst, elem_ratio))
    return 1 if failed else 0


def main(argv):
    if len(argv) >= 1 and argv[0] == "list":
        for name, (model, _, (h, w)) in CASES.items():
            n = len(CASES[name][1])
            print(name, model, "%d,3,%d,%d" % (n, h, w))
        return 0
    if len(argv) == 2 and argv[0] == "inputs":
        os.makedirs(argv[1], exist_ok=True)
        for case in CASES:
            x = make_input(case)
            np.save(os.path.join(argv[1], case + ".nchw.npy"), x)
            np.save(os.path.join(argv[1], case + ".nhwc.npy"),
                    np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
        return 0
    if len(argv) == 4 and argv[0] == "summarize":
        summarize(argv[1], argv[2], argv[3])
        return 0
    if len(argv) in (4, 5) and argv[0] == "check":
        return check(*argv[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
