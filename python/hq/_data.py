"""Data given to hq as a file path, a numpy array or a dict of arrays, opened as an hq_dataset_t
through the library's own checks (so that a wrong shape or a NaN is refused with the message
the command-line tools print)."""
import ctypes
import io
import os

import numpy as np

from . import _lib
from .errors import ArgumentError

# The name an in-memory array carries in messages, in place of a file name.
ARRAY_NAME = "array"


class Dataset:
    """An open hq_dataset_t matched to a graph. Keeps the bytes it was opened from alive."""

    def __init__(self, data, graph):
        self._ptr = ctypes.c_void_p()
        self._bytes = None
        err = _lib.new_error()
        if isinstance(data, (str, os.PathLike)):
            st = _lib.hq.hq_dataset_open(_lib.encode(data), graph, ctypes.byref(self._ptr),
                                         ctypes.byref(err))
        else:
            self._bytes = to_npy_bytes(data)
            st = _lib.hq.hq_dataset_open_memory(self._bytes, len(self._bytes),
                                                ARRAY_NAME.encode(), graph,
                                                ctypes.byref(self._ptr), ctypes.byref(err))
        _lib.check(st, err)

    @property
    def ptr(self):
        return self._ptr

    def count(self):
        return _lib.hq.hq_dataset_count(self._ptr)

    def close(self):
        if self._ptr:
            _lib.hq.hq_dataset_destroy(self._ptr)
            self._ptr = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()


def to_npy_bytes(data):
    """A numpy array as `.npy` bytes, a dict of arrays as uncompressed `.npz` bytes (keys: input
    layer names, scoped, bare or original)."""
    buf = io.BytesIO()
    if isinstance(data, dict):
        np.savez(buf, **{str(k): np.asarray(v) for k, v in data.items()})
    elif isinstance(data, np.ndarray):
        np.save(buf, data, allow_pickle=False)
    else:
        raise ArgumentError(f"data must be a path, a numpy array or a dict of arrays, "
                            f"not {type(data).__name__}")
    return buf.getvalue()
