"""hq: the post-training-quantization toolchain's library (libhq) from Python, through ctypes.

    import hq, numpy as np
    har = hq.parse("model.onnx")
    q = hq.optimize(har, np.load("calib.npy"), "model.alls")
    out = q.emulate(x, target="quantized")       # {output layer name: float32 array}

libhq is found from $HQ_LIBRARY, else beside an installed copy of this package, else by the
dynamic linker. docs/python.md describes the API."""
from . import _lib
from .archive import Archive
from .diag import Finding, Recommendation, Report, compare, diag
from .errors import (ArgumentError, Error, FormatError, InvalidError, IoError, LimitError,
                     NoMemoryError, NotFoundError, StateError, UnsupportedError)
from .pipeline import compile, optimize, parse, profile
from .program import Program

__version__ = _lib.hq.hq_version().decode()
library_path = _lib.hq_path

__all__ = ["Archive", "Program", "parse", "optimize", "profile", "compile", "Error", "IoError",
           "FormatError", "UnsupportedError", "NoMemoryError", "ArgumentError", "NotFoundError",
           "LimitError", "InvalidError", "StateError", "library_path", "diag", "compare", "Report", "Finding",
           "Recommendation"]
