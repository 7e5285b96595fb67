"""hq.Program: a compiled integer program (`.hqx`) run by the deploy runtime, libhqrt."""
import ctypes
import os

import numpy as np

from . import _lib
from ._data import Dataset
from .errors import ArgumentError, NotFoundError

_INPUT, _OUTPUT = 0, 1


class Program:
    """A loaded, validated `.hqx` (libhqrt). Program.open(path), or hq.compile(archive)."""

    def __init__(self, data, name="program"):
        self._model = None
        self.bytes = bytes(data)
        # libhqrt uses the program in place and wants it aligned: a 64-byte-aligned copy that
        # lives as long as the model
        self._buffer = np.zeros(len(self.bytes) + 128, dtype=np.uint8)
        offset = (-self._buffer.ctypes.data) % 64
        self._aligned = self._buffer[offset:offset + len(self.bytes)]
        self._aligned[:] = np.frombuffer(self.bytes, dtype=np.uint8)
        model = ctypes.c_void_p()
        err = _lib.RtErrorStruct()
        rt = _lib.hqrt()
        _lib.check_rt(rt.hqrt_open_memory(self._aligned.ctypes.data, len(self.bytes),
                                          _lib.encode(name), ctypes.byref(model),
                                          ctypes.byref(err)), err)
        self._model = model

    @classmethod
    def open(cls, path):
        """Loads a `.hqx` file."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise NotFoundError(f"{os.fspath(path)}: No such file or directory") from None
        return cls(data, name=os.fspath(path))

    def save(self, path):
        """Writes the program (the bytes `hq compile -o` writes)."""
        if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
            # /dev/null, a FIFO: written in place, never replaced by a regular file
            with open(path, "wb") as f:
                f.write(self.bytes)
            return
        tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(self.bytes)
        os.replace(tmp, path)

    def close(self):
        if getattr(self, "_model", None):
            _lib.hqrt().hqrt_close(self._model)
            self._model = None

    def __del__(self):
        self.close()

    def _describe(self, direction, index):
        io = _lib.RtIo()
        err = _lib.RtErrorStruct()
        _lib.check_rt(_lib.hqrt().hqrt_describe(self._model, direction, index, ctypes.byref(io),
                                                ctypes.byref(err)), err)
        return io

    def _ios(self, direction):
        first = self._describe(direction, 0)
        return [first] + [self._describe(direction, i) for i in range(1, first.count)]

    @staticmethod
    def _info(io):
        return {"name": io.name.decode(), "shape": tuple(int(io.dims[d]) for d in range(io.ndim)),
                "bits": io.bits, "scale": float(io.qp_scale), "zero_point": int(io.qp_zp)}

    @property
    def inputs(self):
        """Per input: name, shape (one sample), bits, scale, zero_point."""
        return [self._info(io) for io in self._ios(_INPUT)]

    @property
    def outputs(self):
        return [self._info(io) for io in self._ios(_OUTPUT)]

    def _inputs_graph(self, ins):
        """A graph of the program's input layers alone (names, per-sample shapes): what the
        dataset needs to match arrays to inputs and check their shapes, as `hq run` does."""
        first = ins[0].name.decode()
        net = first.rsplit("/", 1)[0] if "/" in first.lstrip("/") else "program"
        graph = ctypes.c_void_p()
        err = _lib.new_error()
        _lib.check(_lib.hq.hq_graph_create(net.encode(), ctypes.byref(graph), ctypes.byref(err)),
                   err)
        try:
            for io in ins:
                index = ctypes.c_int(-1)
                bare = io.name.decode().rsplit("/", 1)[-1]
                _lib.check(_lib.hq.hq_graph_add_layer(graph, bare.encode(), 0, ctypes.byref(index),
                                                      ctypes.byref(err)), err)
                shape = _lib.Shape()
                shape.ndim = io.ndim
                shape.dims[0] = -1
                for d in range(1, io.ndim):
                    shape.dims[d] = io.dims[d]
                _lib.check(_lib.hq.hq_layer_set_output_shape(graph, index, ctypes.byref(shape),
                                                             ctypes.byref(err)), err)
            _lib.check(_lib.hq.hq_graph_finalize(graph, net.encode(), ctypes.byref(err)), err)
        except BaseException:
            _lib.hq.hq_graph_destroy(graph)
            raise
        return graph

    def run(self, x, threads=1, codes=False):
        """Runs every sample of `x` (`hq run`): a float array [N, ...] for a one-input program, a
        dict {input layer name (scoped or bare): array}, or a path; read and checked by the
        library as `hq run -d` reads a file (an in-memory array is named "array" in messages).
        Values are quantized with each input's qp, integer arithmetic only, outputs
        dequantized. Returns {output layer name: float32 array}, and with codes=True also
        '<name>:codes' with the raw integer codes."""
        if not self._model:
            raise ArgumentError("the program is closed")
        if not isinstance(threads, int) or not 1 <= threads <= 64:
            raise ArgumentError(f"threads must be an integer from 1 to 64, got '{threads}'")
        ins = self._ios(_INPUT)
        outs = self._ios(_OUTPUT)
        rt = _lib.hqrt()
        graph = self._inputs_graph(ins)
        try:
            with Dataset(x, graph) as data:
                samples = data.count()
                in_codes = [None] * len(ins)
                err = _lib.new_error()
                # the dataset's inputs follow the graph's input layers: the program's order
                for i in range(_lib.hq.hq_dataset_input_count(data.ptr)):
                    k = _lib.hq.hq_dataset_input_layer(data.ptr, i)
                    io = ins[k]
                    values = np.empty(samples * io.elements, dtype=np.float32)
                    _lib.check(_lib.hq.hq_dataset_read(data.ptr, i, 0, samples,
                                                       values.ctypes.data, ctypes.byref(err)), err)
                    q = np.empty(samples * io.elements,
                                 dtype=np.uint8 if io.bits == 8 else np.uint16)
                    rt.hqrt_quantize(ctypes.byref(io), values.ctypes.data, samples * io.elements,
                                     q.ctypes.data)
                    in_codes[k] = q
        finally:
            _lib.hq.hq_graph_destroy(graph)
        out_codes = [np.empty(samples * io.elements, dtype=np.uint8 if io.bits == 8 else np.uint16)
                     for io in outs]
        in_ptrs = (ctypes.c_void_p * len(in_codes))(*[c.ctypes.data for c in in_codes])
        out_ptrs = (ctypes.c_void_p * len(out_codes))(*[c.ctypes.data for c in out_codes])
        options = _lib.RtRunOptions(threads)
        err = _lib.RtErrorStruct()
        _lib.check_rt(rt.hqrt_run(self._model, samples, in_ptrs, out_ptrs, ctypes.byref(options),
                                  ctypes.byref(err)), err)
        result = {}
        for io, c in zip(outs, out_codes):
            shape = (samples,) + tuple(int(io.dims[d]) for d in range(1, io.ndim))
            y = np.empty(shape, dtype=np.float32)
            rt.hqrt_dequantize(ctypes.byref(io), c.ctypes.data, samples * io.elements,
                               y.ctypes.data)
            name = io.name.decode()
            result[name] = y
            if codes:
                result[f"{name}:codes"] = c.reshape(shape)
        return result
