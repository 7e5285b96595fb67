#!/usr/bin/python3
"""seeded_ocr.py — data and measurements for the seeded-problem run (bench/seeded_ocr.sh).

  seeded_ocr.py images OUTDIR SIZE   writes, NHWC float32, SIZE x SIZE:
        calib_rgb.npy  64 calibration images, raw 0-255 pixels, RGB (as skimage/PIL read them)
        calib_bgr.npy  the same with the channel order reversed (case c)
        held_rgb.npy, held_bgr.npy   8 held-out images, same layouts
        held_ref.npy   the held-out images preprocessed the PaddleOCR way (BGR, x/255, ImageNet
                       mean/std in PaddleOCR's order): the input of the float reference
        images.txt     which file went where
  seeded_ocr.py sqnr REF.npz TEST.npz
        prints "sqnr_db <v> mask_agree <v>": the output SQNR of TEST against REF over all
        held-out images together, 10*log10(sum ref^2 / sum (test - ref)^2), and the share of
        pixels where the text masks (probability > 0.3, PaddleOCR's det_db_thresh) agree
  seeded_ocr.py answer TEXT ANSWER -- hq-diag ARGS...
        runs hq-diag interactively on a pseudo-terminal, types ANSWER to the questions that
        contain TEXT and Enter (the documented default) to every other question; prints the
        transcript, exits with hq-diag's status (how case c's "Swap the input channels?"
        recommendation, offered with default "no", is accepted)

Images are the real photographs the machine has (python3-skimage's data folder, opencv-doc's
examples, darknet's data), resized to SIZE x SIZE with cv2.INTER_LINEAR geometry
(PaddleOCR's DetResizeForTest with a fixed image_shape resizes without keeping the aspect ratio).
Grayscale files count only when they hold text (they are repeated to 3 channels). When fewer than
64 colour images are available, centre crops (60%) of the largest calibration images fill up the
set. Everything is deterministic: the same files give the same bytes.
"""
import glob
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "models"))
from real_cases import DET_MEAN, DET_STD, resize_bilinear  # noqa: E402  (PaddleOCR constants)

SKIMAGE = "/usr/lib/python3/dist-packages/skimage/data"
SOURCES = [SKIMAGE + "/*.png", SKIMAGE + "/*.jpg",
           "/usr/share/doc/opencv-doc/examples/data/*.jpg",
           "/usr/share/doc/opencv-doc/examples/data/*.png",
           "/usr/share/darknet/data/*.jpg"]
# grayscale images that hold text: kept (an OCR detector's calibration set should see text)
GRAY_TEXT = {"page.png", "text.png", "bw_text.png", "notes.png"}
# held out from calibration: photos and text, for the SQNR measurement
HELD_OUT = ["astronaut.png", "coffee.png", "dog.jpg", "fruits.jpg", "imageTextN.png",
            "licenseplate_motion.jpg", "page.png", "text_motion.jpg"]
CALIB = 64
TEXT_THRESH = 0.3


def load(path):
    import skimage.io  # python3-skimage

    img = np.asarray(skimage.io.imread(path))
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    if img.ndim != 3 or img.shape[2] < 3:
        return None
    return img[..., :3].astype(np.float64)


def candidates():
    seen, out = set(), []
    for pattern in SOURCES:
        for path in sorted(glob.glob(pattern)):
            name = os.path.basename(path)
            if name in seen:
                continue
            try:
                img = load(path)
            except Exception:  # truncated.jpg and friends: not images we can use
                continue
            if img is None or min(img.shape[:2]) < 100:
                continue
            gray = np.abs(img[..., 0] - img[..., 2]).mean() < 2.0
            if gray and name not in GRAY_TEXT:
                continue
            seen.add(name)
            out.append((name, path, img))
    return out


def make_images(outdir, size):
    os.makedirs(outdir, exist_ok=True)
    pool = candidates()
    by_name = {n: (p, im) for n, p, im in pool}
    missing = [n for n in HELD_OUT if n not in by_name]
    if missing:
        sys.exit("seeded_ocr.py: held-out images not found: %s" % ", ".join(missing))
    held = [(n, by_name[n][1]) for n in HELD_OUT]
    calib = [(n, im) for n, _, im in pool if n not in HELD_OUT]
    if len(calib) > CALIB:
        calib = calib[:CALIB]
    # fill up with centre crops of the largest images
    largest = sorted(calib, key=lambda t: -t[1].shape[0] * t[1].shape[1])
    k = 0
    while len(calib) < CALIB and largest:
        n, im = largest[k % len(largest)]
        h, w = im.shape[:2]
        ch, cw = int(h * 0.6), int(w * 0.6)
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        calib.append((n + "[centre 60%]", im[y0:y0 + ch, x0:x0 + cw]))
        k += 1
    if len(calib) < CALIB:
        sys.exit("seeded_ocr.py: only %d calibration images" % len(calib))

    def stack(items):
        return np.stack([resize_bilinear(im, size, size) for _, im in items])

    c_rgb = stack(calib)
    h_rgb = stack(held)
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    np.save(os.path.join(outdir, "calib_rgb.npy"), f32(c_rgb))
    np.save(os.path.join(outdir, "calib_bgr.npy"), f32(c_rgb[..., ::-1]))
    np.save(os.path.join(outdir, "held_rgb.npy"), f32(h_rgb))
    np.save(os.path.join(outdir, "held_bgr.npy"), f32(h_rgb[..., ::-1]))
    # PaddleOCR: cv2.imread (BGR), NormalizeImage((x/255 - mean) / std) with mean/std in the
    # listed order applied to B, G, R
    np.save(os.path.join(outdir, "held_ref.npy"), f32((h_rgb[..., ::-1] / 255.0 - DET_MEAN) / DET_STD))
    with open(os.path.join(outdir, "images.txt"), "w") as f:
        for n, _ in calib:
            f.write("calib\t%s\n" % n)
        for n, _ in held:
            f.write("held_out\t%s\n" % n)
    m = c_rgb.reshape(-1, 3).mean(axis=0)
    print("%d calibration + %d held-out images at %dx%d in %s; calibration channel means (RGB) "
          "%.1f %.1f %.1f" % (len(calib), len(held), size, size, outdir, m[0], m[1], m[2]))


def only_output(path):
    z = np.load(path)
    keys = [k for k in z.keys()]
    if len(keys) != 1:
        sys.exit("seeded_ocr.py: %s: expected one output, found %s" % (path, keys))
    return z[keys[0]].astype(np.float64)


def sqnr(ref_path, test_path):
    ref, test = only_output(ref_path), only_output(test_path)
    if ref.shape != test.shape:
        sys.exit("seeded_ocr.py: shapes differ: %s %s" % (ref.shape, test.shape))
    noise = np.sum((test - ref) ** 2)
    db = 200.0 if noise == 0 else 10.0 * np.log10(np.sum(ref ** 2) / noise)
    agree = np.mean((ref > TEXT_THRESH) == (test > TEXT_THRESH))
    print("sqnr_db %.2f mask_agree %.2f" % (db, 100.0 * agree))


def answer(text, reply, argv):
    import pty
    import re
    import select

    pid, fd = pty.fork()
    if pid == 0:
        os.environ["NO_COLOR"] = "1"
        os.execvp(argv[0], argv)
    out, answered = b"", 0
    prompt = re.compile(rb"(\[Y/n\]|\[y/N\]|\) \[[a-z]+\]) $")
    while True:
        ready, _, _ = select.select([fd], [], [], 600)
        if not ready:
            os.kill(pid, 9)
            break
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        out += data
        if prompt.search(out[answered:]):
            question = out[answered:].decode(errors="replace")
            line = reply if text in question.splitlines()[-1] else ""
            os.write(fd, line.encode() + b"\n")
            answered = len(out)  # the next prompt comes after this one
    _, status = os.waitpid(pid, 0)
    # drop progress-bar redraws (\r) and keep what a person would read
    for raw in out.decode(errors="replace").replace("\r\n", "\n").split("\n"):
        sys.stdout.write(raw.split("\r")[-1] + "\n")
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 98


def main(argv):
    if len(argv) >= 4 and argv[0] == "answer" and argv[3] == "--":
        return answer(argv[1], argv[2], argv[4:])
    if len(argv) == 3 and argv[0] == "images":
        make_images(argv[1], int(argv[2]))
        return 0
    if len(argv) == 3 and argv[0] == "sqnr":
        sqnr(argv[1], argv[2])
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
