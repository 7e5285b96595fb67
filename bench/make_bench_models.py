#!/usr/bin/python3
"""Builds the torch-exported models that only the benchmarks use, into the model cache.

Writes into ${HQ_MODEL_CACHE:-<repo>/.cache/models}/torch/:
  mobilenet_v3_large.onnx, efficientnet_b0.onnx   torchvision 0.14 architectures with random
      weights (weights=None, seeded), BatchNorm statistics recomputed on real image crops as
      tests/models/make_torch_models.py does (so every layer has activations of order one and no
      timing is distorted by vanishing values), exported in eval mode by torch 1.13, opset 13,
      constant folding on, batch dimension fixed to 1 (run_emulate.sh makes it symbolic for
      onnxruntime, as for the other torch exports).
Idempotent: a file that exists is kept. Prints the paths it provides.
Run: /usr/bin/python3 bench/make_bench_models.py   (python3-torch, python3-torchvision,
python3-skimage)
"""
import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ("mobilenet_v3_large", "efficientnet_b0")


def load_torch_models():
    """tests/models/make_torch_models.py: the fixed input, calibration crops, seed and opset."""
    path = os.path.join(ROOT, "tests", "models", "make_torch_models.py")
    spec = importlib.util.spec_from_file_location("make_torch_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    import torch
    import torchvision

    base = load_torch_models()
    base.main()  # the shared input and the test models, if not there yet (prints their paths)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    os.makedirs(base.OUT, exist_ok=True)
    nchw = __import__("numpy").load(os.path.join(base.OUT, "input_nchw.npy"))
    batch = None
    for name in MODELS:
        onnx_path = os.path.join(base.OUT, name + ".onnx")
        if not os.path.exists(onnx_path):
            torch.manual_seed(base.SEED)
            model = getattr(torchvision.models, name)(weights=None)
            if batch is None:
                batch = base.calibration_batch()
            model = base.recompute_batch_norm(model, batch)
            tmp = onnx_path + ".tmp"
            with torch.no_grad():
                torch.onnx.export(model, torch.from_numpy(nchw), tmp, opset_version=base.OPSET,
                                  do_constant_folding=True, input_names=["input"],
                                  output_names=["logits"])
            os.replace(tmp, onnx_path)
        print(onnx_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
