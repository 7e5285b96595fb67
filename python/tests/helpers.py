"""What the tests share: the sample's paths, the `hq` command ($HQ) and the CLI's results on
the sample, made once per test run in a temporary folder."""
import atexit
import os
import subprocess
import tempfile

import numpy as np

SOURCE = os.environ.get("HQ_SOURCE_DIR",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
ONNX = os.path.join(SOURCE, "samples", "sample.onnx")
CALIB = os.path.join(SOURCE, "samples", "sample_calib.npy")
ALLS = os.path.join(SOURCE, "samples", "sample.alls")
HQ = os.environ.get("HQ", "hq")

_work = tempfile.TemporaryDirectory(prefix="hq_python_tests_")
WORK = _work.name
atexit.register(_work.cleanup)
_done = {}


def hq_cli(*args, check=True):
    """Runs `hq ARGS` in the work folder; returns the CompletedProcess (text)."""
    proc = subprocess.run([HQ, *args], cwd=WORK, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"hq {' '.join(args)} failed: {proc.stderr}")
    return proc


def work(name):
    return os.path.join(WORK, name)


def cli_parsed():
    """The sample parsed by `hq parse` (path)."""
    if "parsed" not in _done:
        hq_cli("parse", ONNX, "-o", work("cli_parsed.har"))
        _done["parsed"] = work("cli_parsed.har")
    return _done["parsed"]


def cli_quantized():
    """`hq optimize` of cli_parsed() with the sample's script and calibration set (path)."""
    if "quantized" not in _done:
        hq_cli("optimize", cli_parsed(), "-m", ALLS, "-d", CALIB, "-o", work("cli_q.har"))
        _done["quantized"] = work("cli_q.har")
    return _done["quantized"]


def calib(count=None):
    x = np.load(CALIB)
    return x if count is None else x[:count]


def load_npz(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()
