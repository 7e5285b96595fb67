#!/usr/bin/python3
"""The torch side of bench/run_deploy.sh: a torchvision classifier (random weights, seeded),
exported for hq and quantized to int8 by torch itself (FX post-training quantization, backend
onednn: Debian's torch 1.13 has no fbgemm), then timed. MODEL is one of resnet18 (the default),
mobilenet_v2, mobilenet_v3_large, efficientnet_b0.

  deploy_torch.py make DIR [-m MODEL]
      writes DIR/MODEL.pt (state dict), DIR/MODEL.onnx (opset 13, input [1,3,224,224]),
      DIR/calib_nchw.npy and DIR/calib_nhwc.npy (the 16 calibration samples both quantizers use).
      Idempotent: existing files are kept.
  deploy_torch.py bench DIR [-m MODEL] -j THREADS -b BATCH -n RUNS -w WARMUP [-c]
      loads (or builds once and caches as DIR/MODEL_int8_onednn.pt) the int8 model: prepare_fx
      with get_default_qconfig_mapping("onednn") (per-channel int8 weights, uint8 activations),
      calibration on calib_nchw.npy, convert_fx, torch.jit.trace + freeze. Times `runs` calls on
      one batch of seeded random input after `warmup` untimed calls and prints
      "ms_median=... ms_min=... ms_max=... threads=T batch=B ms_all=t1,t2,...". -c times process
      CPU time instead of wall clock (a development aid on a loaded machine).
  deploy_torch.py info
      prints torch's version and the ISA oneDNN dispatches to on this CPU.

Random weights: good for timing only. BatchNorm statistics are recomputed on the calibration
batch (one train-mode pass), so that activations have a realistic range for both quantizers.
"""
import os
import sys
import time

import numpy as np

SEED = 20261123
CLOCK = time.perf_counter
SIZE = 224
CALIB = 16


MODELS = ("resnet18", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0")


def build(name):
    import torch
    import torchvision

    torch.manual_seed(SEED)
    return getattr(torchvision.models, name)(weights=None)


def cmd_make(folder, name):
    import torch

    os.makedirs(folder, exist_ok=True)
    state, onnx_path = os.path.join(folder, name + ".pt"), os.path.join(folder, name + ".onnx")
    nchw_path, nhwc_path = os.path.join(folder, "calib_nchw.npy"), os.path.join(folder, "calib_nhwc.npy")
    if not os.path.exists(nchw_path):
        rng = np.random.RandomState(SEED)
        calib = rng.standard_normal((CALIB, 3, SIZE, SIZE)).astype(np.float32)
        np.save(nhwc_path + ".tmp.npy", np.ascontiguousarray(calib.transpose(0, 2, 3, 1)))
        os.replace(nhwc_path + ".tmp.npy", nhwc_path)
        np.save(nchw_path + ".tmp.npy", calib)
        os.replace(nchw_path + ".tmp.npy", nchw_path)
    calib = torch.from_numpy(np.load(nchw_path))
    if not os.path.exists(state):
        model = build(name)
        model.train()
        with torch.no_grad():  # real BatchNorm statistics of the calibration batch
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.reset_running_stats()
                    m.momentum = None
            model(calib)
        model.eval()
        torch.save(model.state_dict(), state + ".tmp")
        os.replace(state + ".tmp", state)
    if not os.path.exists(onnx_path):
        model = build(name)
        model.load_state_dict(torch.load(state))
        model.eval()
        torch.onnx.export(model, torch.zeros(1, 3, SIZE, SIZE), onnx_path + ".tmp", opset_version=13,
                          input_names=["input"], output_names=["logits"], do_constant_folding=True)
        os.replace(onnx_path + ".tmp", onnx_path)
    print(onnx_path)


def int8_model(folder, name):
    import torch
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "onednn"
    cached = os.path.join(folder, name + "_int8_onednn.pt")
    if os.path.exists(cached):
        return torch.jit.load(cached)
    model = build(name)
    model.load_state_dict(torch.load(os.path.join(folder, name + ".pt")))
    model.eval()
    calib = torch.from_numpy(np.load(os.path.join(folder, "calib_nchw.npy")))
    example = torch.zeros(1, 3, SIZE, SIZE)
    prepared = prepare_fx(model, get_default_qconfig_mapping("onednn"), example_inputs=(example,))
    with torch.no_grad():
        for i in range(0, calib.shape[0], 4):
            prepared(calib[i:i + 4])
        quantized = convert_fx(prepared)
        traced = torch.jit.freeze(torch.jit.trace(quantized, example).eval())
    torch.jit.save(traced, cached + ".tmp")
    os.replace(cached + ".tmp", cached)
    return torch.jit.load(cached)


def cmd_bench(folder, name, threads, batch, runs, warmup):
    import torch

    torch.backends.quantized.engine = "onednn"
    torch.set_num_threads(threads)
    model = int8_model(folder, name)
    x = torch.from_numpy(np.random.RandomState(1).standard_normal((batch, 3, SIZE, SIZE))
                         .astype(np.float32))
    times = []
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        for _ in range(runs):
            t0 = CLOCK()
            model(x)
            times.append((CLOCK() - t0) * 1e3)
    s = sorted(times)
    print("ms_median=%.3f ms_min=%.3f ms_max=%.3f threads=%d batch=%d ms_all=%s"
          % (float(np.median(s)), s[0], s[-1], threads, batch, ",".join("%.3f" % t for t in times)))


def cmd_info():
    import torch

    isa = "unknown"
    try:
        isa = torch.backends.mkldnn.get_cpu_isa() if hasattr(torch.backends.mkldnn, "get_cpu_isa") \
            else isa
    except Exception:  # noqa: BLE001 - informative only
        pass
    print("torch %s, quantized engines %s, oneDNN ISA: %s" % (
        torch.__version__, ",".join(torch.backends.quantized.supported_engines), isa))


def model_option(rest):
    """(MODEL of -m, the other arguments); exits on an unknown model."""
    if "-m" not in rest:
        return "resnet18", rest
    i = rest.index("-m")
    if i + 1 >= len(rest) or rest[i + 1] not in MODELS:
        sys.exit("deploy_torch.py: -m: expected one of %s" % ", ".join(MODELS))
    return rest[i + 1], rest[:i] + rest[i + 2:]


def main(argv):
    if len(argv) >= 3 and argv[1] == "make":
        name, _ = model_option(argv[3:])
        cmd_make(argv[2], name)
        return 0
    if len(argv) >= 3 and argv[1] == "bench":
        opts = {"-j": 1, "-b": 1, "-n": 10, "-w": 2}
        name, rest = model_option(argv[3:])
        if "-c" in rest:  # process CPU time instead of wall clock (development aid)
            global CLOCK
            CLOCK = time.process_time
            rest = [a for a in rest if a != "-c"]
        for i in range(0, len(rest) - 1, 2):
            if rest[i] not in opts:
                break
            opts[rest[i]] = int(rest[i + 1])
        cmd_bench(argv[2], name, opts["-j"], opts["-b"], opts["-n"], opts["-w"])
        return 0
    if len(argv) == 2 and argv[1] == "info":
        cmd_info()
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
