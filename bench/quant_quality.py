#!/usr/bin/python3
"""Quantization quality against the peer: hq optimize vs torch FX post-training quantization.

Trains, with Debian's torch, a small clean CNN (conv+batch norm+ReLU x3, global average pool,
linear) on real data: scikit-learn's handwritten digits as 24x24 colour images, the same data and
training loop as the bundled sample (samples/make_sample.py), but without the sample's seeded
problems. Exports it to ONNX, then quantizes it on the SAME 64 calibration images (training split,
normalized as the model expects) with

  torch   FX PTQ, engine "onednn", the onednn default qconfig (per-channel symmetric int8 weights,
          histogram-calibrated uint8 activations), prepare_fx -> calibration passes -> convert_fx;
  hq      `hq parse` + `hq optimize` (default a8_w8, and a16_w16 everywhere through
          `quantization_param({*}, precision_mode=a16_w16)`), then `hq emulate --target quantized`;
          and 4-bit weights everywhere (a8_w4), rounded to nearest and with AdaRound
          (`post_quantization_optimization(adaround, policy=enabled)`, its default keys), each
          with the default (analytic) and the iterative bias correction;

and prints, for each, the top-1 accuracy on the held-out split, the output SQNR against the float
model (dB, 10*log10(sum x^2 / sum (x - xq)^2) over all logits of the held-out split; also over
the calibration images, where no range clipping can occur) and the
quantization wall time, median of --repeat runs (torch: prepare + calibration + convert in this
process; hq: the whole `hq optimize` process, including loading and writing the archives).
The float model's accuracy, and hq's float emulation of the parsed ONNX, are printed as references.

Run: bench/run_quant_quality.sh (builds hq, writes bench/results/), or directly:
  /usr/bin/python3 bench/quant_quality.py --hq build/release/hq [--work DIR]
Timings are wall-clock on a shared machine: noisy; torch runs single-threaded (--threads).
"""
import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in samples/
sys.path.insert(0, os.path.join(ROOT, "samples"))
import make_sample as sample  # noqa: E402  (shared data and training helpers)

CALIB_COUNT = 64
CALIB_BATCH = 8  # hq's default calibration batch size; torch calibrates with the same batches
A16_SCRIPT = "quantization_param({*}, precision_mode=a16_w16)\n"
W4_SCRIPT = "quantization_param({*}, precision_mode=a8_w4)\n"
ADAROUND_LINE = "post_quantization_optimization(adaround, policy=enabled)\n"
ADAROUND_ALL_LINE = "post_quantization_optimization(adaround, policy=enabled, mode=train_all)\n"
FINETUNE16_LINE = "post_quantization_optimization(finetune, policy=enabled, epochs=16)\n"
# level 1: iterative bias correction and no training; level 2 (the default) adds finetune
LEVEL1 = "model_optimization_flavor(optimization_level=1)\n"


def clean_net(torch):
    """The bench's model: the sample's layout with batch norm after every conv and one head."""
    nn = torch.nn
    torch.manual_seed(sample.SEED)

    class CleanNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(16)
            self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
            self.bn2 = nn.BatchNorm2d(32)
            self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
            self.bn3 = nn.BatchNorm2d(64)
            self.pool = nn.MaxPool2d(2)
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            x = self.pool(torch.relu(self.bn1(self.conv1(x))))
            x = self.pool(torch.relu(self.bn2(self.conv2(x))))
            x = torch.relu(self.bn3(self.conv3(x)))
            return self.fc(torch.flatten(self.gap(x), 1))

    return CleanNet()


def sqnr_db(reference, test):
    reference = np.asarray(reference, np.float64)
    noise = reference - np.asarray(test, np.float64)
    signal_power = float((reference**2).sum())
    noise_power = float((noise**2).sum())
    return float("inf") if noise_power == 0.0 else 10.0 * np.log10(signal_power / noise_power)


def torch_fx_ptq(torch, model, calib_nchw):
    """Returns (quantized model, seconds) for onednn per-channel FX PTQ on the calibration set."""
    import copy

    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "onednn"
    started = time.perf_counter()
    example = (torch.from_numpy(calib_nchw[:1]),)
    prepared = prepare_fx(copy.deepcopy(model).eval(), get_default_qconfig_mapping("onednn"), example)
    with torch.no_grad():
        for start in range(0, len(calib_nchw), CALIB_BATCH):
            prepared(torch.from_numpy(calib_nchw[start:start + CALIB_BATCH]))
    quantized = convert_fx(prepared)
    return quantized, time.perf_counter() - started


def run(command, what):
    """Runs a command, returns (stdout, seconds); raises with its stderr when it fails."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {done.returncode}): {' '.join(command)}\n"
                           f"{done.stderr.strip()}")
    return done.stdout + done.stderr, seconds


def load_single_output(path):
    with np.load(path) as outputs:
        keys = [k for k in outputs.files if "output" in k] or outputs.files
        return outputs[keys[0]].reshape(outputs[keys[0]].shape[0], -1)


def hq_quantize(hq, work, har, calib_path, eval_path, name, script, repeat):
    """hq optimize (+ optional script) then quantized emulation; returns (logits, seconds, log)."""
    command = [hq, "optimize", har, "-d", calib_path, "-o", os.path.join(work, name + ".har")]
    if script:
        script_path = os.path.join(work, name + ".alls")
        with open(script_path, "w") as f:
            f.write(script)
        command[3:3] = ["-m", script_path]
    log, _ = run(command, f"hq optimize ({name})")  # warm-up
    runs = [run(command, f"hq optimize ({name})") for _ in range(repeat)]
    seconds = float(np.median([r[1] for r in runs]))
    out_path = os.path.join(work, name + "_out.npz")
    run([hq, "emulate", os.path.join(work, name + ".har"), "-d", eval_path, "--target", "quantized",
         "-o", out_path], f"hq emulate --target quantized ({name})")
    return load_single_output(out_path), seconds, log


def hq_supports_optimize(hq):
    done = subprocess.run([hq, "optimize", "--help"], capture_output=True, text=True)
    return done.returncode == 0 and "optimize" in done.stdout + done.stderr


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hq", default=os.path.join(ROOT, "build", "release", "hq"),
                        help="the hq binary (default: build/release/hq)")
    parser.add_argument("--work", help="folder for the intermediate files (default: a temporary one)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--epochs", type=int, default=60, help="training epochs (default 60)")
    parser.add_argument("--repeat", type=int, default=10,
                        help="quantization runs per tool; the median time is printed (default 10)")
    parser.add_argument("--adaround-repeat", type=int, default=3,
                        help="runs of the AdaRound row, which trains for seconds (default 3)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    work = args.work or tempfile.mkdtemp(prefix="hq-quant-quality-")
    os.makedirs(work, exist_ok=True)
    print(f"# hq quantization quality vs torch FX PTQ (onednn), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
          f"torch {torch.__version__}, {args.threads} thread(s); timings are noisy (shared machine)")

    images, labels, _ = sample.digits_rgb()
    train_idx, test_idx = sample.split(labels)
    mean01, std01 = sample.channel_stats(images[train_idx])
    x_train = sample.to_model_input(images[train_idx], mean01, std01)
    x_test = sample.to_model_input(images[test_idx], mean01, std01)
    y_test = labels[test_idx]
    rng = np.random.default_rng(sample.SEED)
    calib_pick = np.sort(rng.choice(len(train_idx), CALIB_COUNT, replace=False))
    calib_nchw = np.ascontiguousarray(x_train[calib_pick])

    started = time.perf_counter()
    model = sample.train(torch, clean_net(torch), x_train, labels[train_idx], epochs=args.epochs)
    train_seconds = time.perf_counter() - started
    # Every model runs on the held-out images followed by the calibration images: accuracy and
    # SQNR on the former; the SQNR on the latter has no range clipping (the ranges were calibrated
    # on exactly those images), which separates arithmetic noise from range coverage.
    x_all = np.concatenate([x_test, calib_nchw])
    with torch.no_grad():
        float_logits = model(torch.from_numpy(x_all)).numpy()

    def score(label, logits, seconds=None):
        held_out, calib = logits[:len(x_test)], logits[len(x_test):]
        same = logits is float_logits
        rows.append((label, sample.accuracy(held_out, y_test),
                     None if same else sqnr_db(float_logits[:len(x_test)], held_out),
                     None if same else sqnr_db(float_logits[len(x_test):], calib), seconds))
    print(f"# data: sklearn load_digits as 24x24 RGB, {len(train_idx)} train / {len(test_idx)} "
          f"held-out images, {CALIB_COUNT} calibration images from the train split; "
          f"trained {args.epochs} epochs in {train_seconds:.0f} s")

    rows = []
    score("float (torch)", float_logits)

    torch_fx_ptq(torch, model, calib_nchw)  # warm-up
    ptq = [torch_fx_ptq(torch, model, calib_nchw) for _ in range(args.repeat)]
    quantized, torch_seconds = ptq[0][0], float(np.median([p[1] for p in ptq]))
    with torch.no_grad():
        torch_logits = quantized(torch.from_numpy(x_all)).numpy()
    score("torch FX PTQ int8 (onednn, per-channel)", torch_logits, torch_seconds)

    onnx_path = os.path.join(work, "digits.onnx")
    sample.export_onnx(torch, model, x_test[:1], onnx_path, "logits")
    calib_path = os.path.join(work, "calib.npy")
    eval_path = os.path.join(work, "eval.npy")
    np.save(calib_path, np.ascontiguousarray(calib_nchw.transpose(0, 2, 3, 1)))
    np.save(eval_path, np.ascontiguousarray(x_all.transpose(0, 2, 3, 1)))

    missing = None
    hq = args.hq
    if not (os.path.isfile(hq) and os.access(hq, os.X_OK)):
        missing = f"no hq binary at {hq}"
    else:
        version, _ = run([hq, "--version"], "hq --version")
        commit = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                                capture_output=True, text=True).stdout.strip() or "unknown"
        print(f"# {version.strip()} ({hq}), source tree {commit}")
        har = os.path.join(work, "digits.har")
        run([hq, "parse", onnx_path, "-o", har], "hq parse")
        native_path = os.path.join(work, "native_out.npz")
        run([hq, "emulate", har, "-d", eval_path, "-o", native_path], "hq emulate (native)")
        native_logits = load_single_output(native_path)
        score("hq float emulation (native)", native_logits)
        if not hq_supports_optimize(hq):
            missing = f"{hq} has no `optimize` command yet"
        else:
            for name, label, script, repeat in (
                    ("a8_w8", "hq a8_w8 nearest (level 1)", LEVEL1, args.repeat),
                    ("a8_w8_adaround", "hq a8_w8 AdaRound (train_all)",
                     LEVEL1 + ADAROUND_ALL_LINE, args.adaround_repeat),
                    ("a8_w8_finetune", "hq a8_w8 finetune (level 2)", None, args.repeat),
                    ("a16_w16", "hq a16_w16 nearest (level 1)", LEVEL1 + A16_SCRIPT, args.repeat),
                    ("a8_w4", "hq a8_w4 nearest (level 1)", LEVEL1 + W4_SCRIPT, args.repeat),
                    ("a8_w4_adaround", "hq a8_w4 AdaRound", LEVEL1 + W4_SCRIPT + ADAROUND_LINE,
                     args.adaround_repeat),
                    ("a8_w4_finetune", "hq a8_w4 finetune (level 2)", W4_SCRIPT, args.repeat),
                    ("a8_w4_finetune16", "hq a8_w4 finetune, epochs=16",
                     W4_SCRIPT + FINETUNE16_LINE, args.repeat)):
                logits, seconds, _ = hq_quantize(hq, work, har, calib_path, eval_path, name, script,
                                                 repeat)
                score(label, logits, seconds)

    print()
    print(f"{'model':<42} {'top-1':>8} {'SQNR dB':>8} {'(calib)':>8} {'quant. time':>12}")
    for label, top1, sqnr, sqnr_calib, seconds in rows:
        sqnr_text = "-" if sqnr is None else f"{sqnr:8.2f}"
        calib_text = "-" if sqnr_calib is None else f"{sqnr_calib:8.2f}"
        time_text = "-" if seconds is None else f"{seconds:10.2f} s"
        print(f"{label:<42} {top1 * 100:7.2f}% {sqnr_text:>8} {calib_text:>8} {time_text:>12}")
    print()
    print(f"top-1 and SQNR: {len(test_idx)} held-out images (one image = "
          f"{100.0 / len(test_idx):.2f}% top-1); SQNR (calib): the {CALIB_COUNT} calibration images,")
    print("where no value falls outside the calibrated ranges. Quantization time: median of "
          f"{args.repeat} runs after one warm-up ({args.adaround_repeat} for AdaRound).")
    print("Optimization level 1 = iterative bias correction; level 2 (hq's default) = finetune, "
          "then iterative bias correction.")
    if missing:
        print(f"hq rows missing: {missing}")
    print("PP-OCRv4 det (real detector, real images): bench/ocr_quant_quality.py")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
