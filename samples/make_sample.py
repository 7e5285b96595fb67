#!/usr/bin/python3
"""Trains the bundled sample model on real data and writes the files the README's demo runs on.

The sample is a small CNN that reads handwritten digits (scikit-learn's `load_digits`: 1797 real
8x8 scans from the UCI set), upsampled to 24x24 and drawn as amber ink on a navy background so that
the input has three distinct colour channels. It is trained here, with Debian's torch, in about ten
seconds of CPU, from fixed seeds. It is deliberately built with the problems hq-diag exists to find
(samples/README.md lists them):

  - no batch normalization anywhere, so the conv activations grow layer after layer to a range of
    several hundred (BatchNorm and Clipping inspectors);
  - its single output is a concat of two heads: the 10 digit logits and a regression of the ink
    coverage in percent, whose range is much wider than the logits' (ConcatenatedOutputs);
  - the model expects (x/255 - mean) / std, but samples/sample.alls writes the normalization with the
    0-1 scale constants (copied from a torchvision `Normalize`) while the calibration images are
    0-255 pixels (Norm inspector: a warning on the script, an error on the data).

Writes, next to this file:
  sample.onnx          the float model, opset 13, input "image" [N,3,24,24] normalized, output
                       "digit_and_ink" [N,11] (10 logits, then ink %)
  sample_calib.npy     64 training images, NHWC float32 in 0-255 (what a camera gives)
  sample_eval.npz      held-out images "images" (N,24,24,3) uint8 0-255 and "labels" (N,) int64
  sample.alls          the model script with the seeded normalization mistake
  sample_correct.alls  the same script with the right normalization (for comparisons and tests)
Prints the held-out float accuracy. Run: /usr/bin/python3 samples/make_sample.py [--out DIR]

The data and training helpers are shared with bench/quant_quality.py, which trains a clean variant.
"""
import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SIZE = 24  # pixels; load_digits' 8x8 upsampled x3 (bicubic)
INK = np.array([255.0, 176.0, 48.0], np.float32)  # amber, RGB
BACKGROUND = np.array([24.0, 36.0, 72.0], np.float32)  # navy, RGB
PIXEL_NOISE = 6.0  # std of the sensor-like noise added to every pixel, 0-255 scale
TEST_SHARE = 0.3  # held-out share of load_digits, stratified
CALIB_COUNT = 64
EVAL_COUNT = 300
SEED = 20261123
OPSET = 13


def digits_rgb(seed=SEED):
    """All of load_digits as colour images: uint8 (1797,24,24,3) RGB 0-255, labels int64, and the
    ink coverage in percent (share of pixels whose ink intensity exceeds one half) as float32."""
    from skimage.transform import resize
    from sklearn.datasets import load_digits

    digits = load_digits()
    intensity = np.stack([
        np.clip(resize(image / 16.0, (SIZE, SIZE), order=3, mode="edge", anti_aliasing=False), 0, 1)
        for image in digits.images
    ]).astype(np.float32)
    rng = np.random.default_rng(seed)
    rgb = BACKGROUND + intensity[..., None] * (INK - BACKGROUND)
    rgb = rgb + rng.normal(0.0, PIXEL_NOISE, rgb.shape).astype(np.float32)
    images = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    ink = (intensity > 0.5).mean(axis=(1, 2)).astype(np.float32) * 100.0
    return images, digits.target.astype(np.int64), ink


def split(labels, seed=SEED):
    """Stratified train/test index split, fixed by the seed."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    train, test = train_test_split(index, test_size=TEST_SHARE, random_state=seed % (2**31),
                                   stratify=labels)
    return np.sort(train), np.sort(test)


def channel_stats(images_uint8):
    """Per-channel mean and std of the images in the 0-1 scale (torchvision Normalize's scale)."""
    x = images_uint8.astype(np.float64) / 255.0
    return x.mean(axis=(0, 1, 2)).astype(np.float32), x.std(axis=(0, 1, 2)).astype(np.float32)


def to_model_input(images_uint8, mean01, std01):
    """What the float model expects: NCHW float32, (x/255 - mean) / std."""
    x = (images_uint8.astype(np.float32) / 255.0 - mean01) / std01
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def sample_net(torch, seed=SEED):
    """The sample's architecture: three 3x3 convs with ReLU and no batch norm, max pools, global
    average pool, two linear heads concatenated into one output. Without batch norm nothing keeps
    the activations near unit scale: after training, conv3's pre-activations span a few hundred and
    most channels have means far from zero (the findings the sample must show)."""
    nn = torch.nn
    torch.manual_seed(seed)  # the initial weights

    class SampleNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
            self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
            self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.digit = nn.Linear(64, 10)
            self.ink = nn.Linear(64, 1)

        def forward(self, x):
            x = self.pool(torch.relu(self.conv1(x)))
            x = self.pool(torch.relu(self.conv2(x)))
            x = torch.relu(self.conv3(x))
            x = torch.flatten(self.gap(x), 1)
            return torch.cat([self.digit(x), self.ink(x)], dim=1)

    return SampleNet()


def train(torch, model, x, labels, ink=None, ink_weight=0.0005, epochs=60, batch=64, lr=2e-3, seed=SEED,
          log=None):
    """Adam on cross-entropy over the first 10 outputs (+ MSE on the ink head when given), with
    random shifts of up to 2 pixels as augmentation. Deterministic for a given seed on one thread."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(x)
    y = torch.from_numpy(labels)
    target_ink = torch.from_numpy(ink) if ink is not None else None
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for start in range(0, len(x), batch):
            pick = order[start:start + batch]
            dy, dx = torch.randint(-2, 3, (2,), generator=generator).tolist()
            xb = torch.roll(x[pick], shifts=(dy, dx), dims=(2, 3))
            out = model(xb)
            loss = torch.nn.functional.cross_entropy(out[:, :10], y[pick])
            if target_ink is not None:
                loss = loss + ink_weight * torch.nn.functional.mse_loss(out[:, 10], target_ink[pick])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss) * len(pick)
        schedule.step()
        if log and (epoch + 1) % 10 == 0:
            log(f"epoch {epoch + 1}/{epochs}: loss {total / len(x):.4f}")
    return model.eval()


def accuracy(logits, labels):
    """Top-1 accuracy over the first 10 columns (the digit logits)."""
    return float((np.asarray(logits)[:, :10].argmax(axis=1) == labels).mean())


def export_onnx(torch, model, example, path, output_name):
    """Float ONNX export, opset 13, constant folding; written atomically."""
    tmp = path + ".tmp"
    with torch.no_grad():
        torch.onnx.export(model, torch.from_numpy(example), tmp, opset_version=OPSET,
                          do_constant_folding=True, input_names=["image"],
                          output_names=[output_name])
    os.replace(tmp, path)


def normalization_line(mean, std):
    fmt = lambda values: "[" + ", ".join(f"{v:.4f}" for v in values) + "]"
    return f"normalization1 = normalization({fmt(mean)}, {fmt(std)})"


def write_text_atomic(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def save_npy_atomic(path, array):
    np.save(path + ".tmp.npy", array)
    os.replace(path + ".tmp.npy", path)


SCRIPT_HEADER = """\
# Model script of the hq sample (samples/make_sample.py writes it; see samples/README.md).
# The model expects (x/255 - mean) / std; the calibration images are 0-255 pixels.
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=HERE, help="output folder (default: samples/)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)  # single-threaded CPU training is deterministic
    log = lambda text: print(f"make_sample: {text}", file=sys.stderr)
    started = time.time()
    images, labels, ink = digits_rgb()
    train_idx, test_idx = split(labels)
    mean01, std01 = channel_stats(images[train_idx])
    x_train = to_model_input(images[train_idx], mean01, std01)
    x_test = to_model_input(images[test_idx], mean01, std01)

    model = sample_net(torch)
    train(torch, model, x_train, labels[train_idx], ink[train_idx], log=log)
    with torch.no_grad():
        out_test = model(torch.from_numpy(x_test)).numpy()
    test_accuracy = accuracy(out_test, labels[test_idx])
    ink_error = float(np.abs(out_test[:, 10] - ink[test_idx]).mean())

    os.makedirs(args.out, exist_ok=True)
    export_onnx(torch, model, x_test[:1], os.path.join(args.out, "sample.onnx"), "digit_and_ink")
    rng = np.random.default_rng(SEED)
    calib = images[np.sort(rng.choice(train_idx, CALIB_COUNT, replace=False))]
    save_npy_atomic(os.path.join(args.out, "sample_calib.npy"), calib.astype(np.float32))
    eval_idx = test_idx[:EVAL_COUNT]
    tmp = os.path.join(args.out, "sample_eval.tmp.npz")
    np.savez_compressed(tmp, images=images[eval_idx], labels=labels[eval_idx])
    os.replace(tmp, os.path.join(args.out, "sample_eval.npz"))
    write_text_atomic(
        os.path.join(args.out, "sample.alls"), SCRIPT_HEADER +
        "# Seeded mistake: the constants below are in the 0-1 scale (torchvision's Normalize), so the\n"
        "# 0-255 calibration images come out of this layer hundreds of times too large.\n" +
        normalization_line(mean01, std01) + "\n")
    write_text_atomic(
        os.path.join(args.out, "sample_correct.alls"), SCRIPT_HEADER +
        "# The right normalization for 0-255 input: the training mean and std times 255.\n" +
        normalization_line(mean01 * 255.0, std01 * 255.0) + "\n")

    with torch.no_grad():
        x = torch.from_numpy(x_test)
        conv3 = model.conv3(model.pool(torch.relu(model.conv2(model.pool(torch.relu(
            model.conv1(x))))))).numpy()
    log(f"trained in {time.time() - started:.0f} s; held-out top-1 {test_accuracy * 100:.2f}% "
        f"on {len(test_idx)} images; ink mean abs error {ink_error:.2f} points; "
        f"conv3 pre-activation range [{conv3.min():.1f}, {conv3.max():.1f}]")
    print(f"top1={test_accuracy:.4f} test_images={len(test_idx)} eval_images={len(eval_idx)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
