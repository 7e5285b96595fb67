"""hq.Archive (a `.har` model archive held by libhq) and the calls that make or transform one:
parse, optimize, analyze_noise, profile, compile, emulate."""
import ctypes
import json
import os

import numpy as np

from . import _lib
from ._data import Dataset
from .errors import ArgumentError, NotFoundError

_PARAMS_KINDS = {"native": 0, "fp_optimized": 1, "quantized": 2}
_DTYPES = [np.float32, np.float64, np.float16, np.uint8, np.int8, np.uint16, np.int16, np.int32,
           np.int64, np.bool_]


def _tensor_to_numpy(tensor):
    """A copy of an hq_tensor_t as a numpy array."""
    t = tensor.contents
    shape = tuple(int(t.shape[d]) for d in range(t.ndim))
    dtype = np.dtype(_DTYPES[t.dtype])
    raw = ctypes.string_at(t.data, t.nbytes) if t.nbytes else b""
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


class Archive:
    """A model archive (hq-har(5)) held in memory by libhq. Made by hq.parse, Archive.open,
    hq.optimize; written with save()."""

    def __init__(self, ptr):
        self._ptr = ptr

    @classmethod
    def open(cls, path):
        """Reads the archive at `path`; hq.Error naming the file when it cannot."""
        ptr = ctypes.c_void_p()
        err = _lib.new_error()
        _lib.check(_lib.hq.hq_archive_open(_lib.encode(path), ctypes.byref(ptr),
                                           ctypes.byref(err)), err)
        return cls(ptr)

    @classmethod
    def from_bytes(cls, data, name="archive"):
        """An archive from the bytes of a `.har` (as save_bytes returns them)."""
        ptr = ctypes.c_void_p()
        err = _lib.new_error()
        _lib.check(_lib.hq.hq_archive_open_memory(data, len(data), _lib.encode(name),
                                                  ctypes.byref(ptr), ctypes.byref(err)), err)
        return cls(ptr)

    def close(self):
        """Frees the library's copy now (else when the object is collected)."""
        if getattr(self, "_ptr", None):
            _lib.hq.hq_archive_destroy(self._ptr)
            self._ptr = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _handle(self):
        if not self._ptr:
            raise ArgumentError("the archive is closed")
        return self._ptr

    def save(self, path):
        """Writes the archive atomically to `path` (the same bytes `hq` writes)."""
        err = _lib.new_error()
        _lib.check(_lib.hq.hq_archive_save(self._handle(), _lib.encode(path), ctypes.byref(err)),
                   err)

    def save_bytes(self):
        """The bytes save() would write."""
        data = ctypes.c_void_p()
        length = ctypes.c_size_t()
        err = _lib.new_error()
        _lib.check(_lib.hq.hq_archive_save_memory(self._handle(), ctypes.byref(data),
                                                  ctypes.byref(length), ctypes.byref(err)), err)
        return _lib.take_malloced(data, length.value)

    def copy(self):
        """An independent copy (the saved bytes read back, named like this archive)."""
        return Archive.from_bytes(self.save_bytes(), self.path or self.net_name)

    # ---- what it holds ----------------------------------------------------------------------

    @property
    def path(self):
        return _lib.hq.hq_archive_path(self._handle()).decode()

    @property
    def net_name(self):
        return _lib.hq.hq_archive_net_name(self._handle()).decode()

    @property
    def state(self):
        """"parsed_model", "fp_optimized_model", "quantized_model" or "compiled_model"."""
        return _lib.hq.hq_model_state_name(_lib.hq.hq_archive_state(self._handle())).decode()

    @property
    def hw_arch(self):
        return _lib.hq.hq_archive_hw_arch(self._handle()).decode()

    def _graph(self):
        graph = ctypes.c_void_p()
        err = _lib.new_error()
        _lib.check(_lib.hq.hq_archive_graph(self._handle(), ctypes.byref(graph),
                                            ctypes.byref(err)), err)
        return graph

    def _layer_names(self, getter):
        graph = self._graph()
        count = ctypes.c_int()
        idx = getter(graph, ctypes.byref(count))
        return [_lib.hq.hq_graph_layer(graph, idx[i]).contents.name.decode()
                for i in range(count.value)]

    @property
    def inputs(self):
        """Scoped names of the input layers, in the graph's order."""
        return self._layer_names(_lib.hq.hq_graph_inputs)

    @property
    def outputs(self):
        """Scoped names of the output layers, in the order outputs are returned."""
        return self._layer_names(_lib.hq.hq_graph_outputs)

    @property
    def layers(self):
        """Every layer in topological order, as dicts: name (scoped), bare_name, type (`.hn`
        name), input_shapes (list of tuples, -1 = any batch), output_shapes (one per output
        piece), precision_mode ("" before quantization), params (the `.hn` params)."""
        graph = self._graph()
        json_ptr = ctypes.c_void_p()
        length = ctypes.c_size_t()
        err = _lib.new_error()
        _lib.check(_lib.hq.hq_graph_to_json(graph, ctypes.byref(json_ptr), ctypes.byref(length),
                                            ctypes.byref(err)), err)
        hn_layers = json.loads(_lib.take_malloced(json_ptr, length.value)).get("layers", {})
        count = ctypes.c_int()
        order = _lib.hq.hq_graph_topo_order(graph, ctypes.byref(count))
        result = []
        for i in range(count.value):
            layer = _lib.hq.hq_graph_layer(graph, order[i])
            head = layer.contents
            name = head.name.decode()
            hn = hn_layers.get(name, {})
            result.append({
                "name": name,
                "bare_name": head.bare_name.decode(),
                "type": _lib.hq.hq_layer_type_name(head.type).decode(),
                "input_shapes": [head.input_shapes[k].to_tuple()
                                 for k in range(head.input_shape_count)],
                "output_shapes": [_lib.hq.hq_layer_port_shape(layer, p).to_tuple()
                                  for p in range(_lib.hq.hq_layer_port_count(layer))],
                "precision_mode": hn.get("quantization_params", {}).get("precision_mode", ""),
                "params": hn.get("params", {}),
            })
        return result

    @property
    def info(self):
        """What `hq info` shows, as data: net_name, state, hw_arch, inputs, outputs, params (the
        kinds present), layers (see `layers`) and script (text)."""
        return {
            "net_name": self.net_name,
            "state": self.state,
            "hw_arch": self.hw_arch,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "params": [k for k, v in _PARAMS_KINDS.items()
                       if _lib.hq.hq_archive_has_params(self._handle(), v)],
            "layers": self.layers,
            "script": self.script,
        }

    def params(self, kind="native"):
        """A params set ("native", "fp_optimized" or "quantized") as a dict of numpy arrays
        (copies), keyed as in the archive ("net/conv1/kernel:0")."""
        if kind not in _PARAMS_KINDS:
            raise ArgumentError(f"unknown params kind '{kind}' (native, fp_optimized or "
                                f"quantized)")
        npz = ctypes.c_void_p()
        err = _lib.new_error()
        _lib.check(_lib.hq.hq_archive_params(self._handle(), _PARAMS_KINDS[kind],
                                             ctypes.byref(npz), ctypes.byref(err)), err)
        return {_lib.hq.hq_npz_key(npz, i).decode():
                _tensor_to_numpy(_lib.hq.hq_npz_get_index(npz, i))
                for i in range(_lib.hq.hq_npz_count(npz))}

    @property
    def script(self):
        """The model script (`.alls`) as text, one command per line in canonical spacing."""
        script = ctypes.c_void_p()
        err = _lib.new_error()
        _lib.check(_lib.hq.hq_archive_script(self._handle(), ctypes.byref(script),
                                             ctypes.byref(err)), err)
        text = ctypes.c_void_p()
        _lib.check(_lib.hq.hq_script_print(script, ctypes.byref(text), ctypes.byref(err)), err)
        return _lib.take_malloced(text, len(ctypes.string_at(text))).decode()

    @script.setter
    def script(self, text):
        script = parse_script(text, "model script")
        err = _lib.new_error()
        # the archive takes ownership, also on failure
        _lib.check(_lib.hq.hq_archive_set_script(self._handle(), script, ctypes.byref(err)), err)

    # ---- running it ---------------------------------------------------------------------------

    def emulate(self, x, target="native", taps=(), batch_size=8, threads=0):
        """Runs the network on `x` and returns {name: array} with the keys `hq emulate -o`
        writes: each output layer's scoped name, then each tapped layer's (name:port for the
        pieces after the first of a feature_splitter), samples along axis 0, float32.

        `x`: a numpy array [N, H, W, C] (or [N, C]) for a single-input network, a dict
        {input layer name: array}, or the path of a `.npy`, `.npz` or image folder; checked
        by the library exactly as `hq emulate -d` checks a file (an in-memory array is named
        "array" in messages). `target`: "native", "fp_optimized" or "quantized"."""
        handle = self._handle()
        code = ctypes.c_int()
        if not isinstance(target, str) or \
                _lib.hq.hq_target_from_name(target.encode(), ctypes.byref(code)) != 0:
            raise NotFoundError(f"unknown target (native, fp_optimized or quantized) '{target}'")
        if isinstance(taps, str):
            taps = [taps]
        if not isinstance(batch_size, int) or not 1 <= batch_size <= 1 << 30:
            raise ArgumentError(f"batch size must be an integer from 1 to 2^30, got "
                                f"'{batch_size}'")
        if not isinstance(threads, int) or not 0 <= threads <= 256:
            raise ArgumentError(f"threads must be an integer from 1 to 256 (0: default), got "
                                f"'{threads}'")
        err = _lib.new_error()
        graph = self._graph()
        emu = ctypes.c_void_p()
        _lib.check(_lib.hq.hq_emulator_create_from_archive(handle, code.value, ctypes.byref(emu),
                                                           ctypes.byref(err)), err)
        try:
            if threads > 0:
                _lib.check(_lib.hq.hq_emulator_set_threads(emu, threads, ctypes.byref(err)), err)
            with Dataset(x, graph) as data:
                return _run_emulator(self, graph, emu, data, list(taps), batch_size)
        finally:
            _lib.hq.hq_emulator_destroy(emu)

    def analyze_noise(self, data, mode="simple", count=0, threads=0):
        """Per-layer SQNR of the quantized model against the float one over `data` (path, array
        or dict as for emulate; count > 0: only the first `count` samples). The results are
        stored in this archive's quantized params, as `hq analyze-noise` stores them (save() to
        keep them), and returned as {scoped layer name: {"snr": dB, "partial_snr": dB or None}}
        in topological order (partial_snr, the SQNR when only that layer is quantized, in
        "advanced" mode only)."""
        modes = {"simple": 0, "advanced": 1}
        if mode not in modes:
            raise ArgumentError(f"--analyze-mode must be simple or advanced, got '{mode}'")
        options = _lib.OptimizeOptions()
        options.threads = threads
        err = _lib.new_error()
        with Dataset(data, self._graph()) as ds:
            _lib.check(_lib.hq.hq_analyze_noise(self._handle(), ds.ptr, count, modes[mode],
                                                ctypes.byref(options), ctypes.byref(err)), err)
        npz = ctypes.c_void_p()
        _lib.check(_lib.hq.hq_archive_params(self._handle(), _PARAMS_KINDS["quantized"],
                                             ctypes.byref(npz), ctypes.byref(err)), err)

        def scalar(key):
            t = _lib.hq.hq_npz_get(npz, key.encode())
            return float(_tensor_to_numpy(t).reshape(-1)[0]) if t else None

        result = {}
        for layer in self.layers:
            snr = scalar(f"{layer['name']}/layer_noise_analysis/snr:0")
            if snr is None:
                continue
            result[layer["name"]] = {
                "snr": snr,
                "partial_snr": scalar(f"{layer['name']}/layer_noise_analysis/partial_snr:0"),
            }
        return result


def _run_emulator(archive, graph, emu, data, taps, batch_size):
    samples = data.count()
    items = []  # [layer, port, output index or -1, key, array]

    def add(index, port, output):
        for item in items:
            if item[0] == index and item[1] == port:
                return  # tapped twice, or an output tapped
        layer = _lib.hq.hq_graph_layer(graph, index)
        shape = _lib.hq.hq_layer_port_shape(layer, port).to_tuple()
        name = layer.contents.name.decode()
        key = name if port == 0 else f"{name}:{port}"
        items.append([index, port, output, key,
                      np.zeros((samples,) + shape[1:], dtype=np.float32)])

    count = ctypes.c_int()
    outs = _lib.hq.hq_graph_outputs(graph, ctypes.byref(count))
    for o in range(count.value):
        add(outs[o], 0, o)
    for tap in taps:
        index = _lib.hq.hq_graph_find(graph, _lib.encode(tap))
        if index < 0:
            raise NotFoundError(f"{archive.path or archive.net_name}: tap: no layer named '{tap}'")
        layer = _lib.hq.hq_graph_layer(graph, index)
        for port in range(_lib.hq.hq_layer_port_count(layer)):
            add(index, port, -1)
    cursor = [0]

    def on_batch(user, first, n, outputs, err):
        for layer, port, output, key, array in items:
            if output >= 0:
                size = array[0].size
                ctypes.memmove(array.ctypes.data + first * size * 4, outputs[output],
                               n * size * 4)
        cursor[0] = first + n
        return 0

    def on_tap(user, layer, port, shape, values, err):
        for index, p, output, key, array in items:
            if output < 0 and index == layer and p == port:
                size = array[0].size
                ctypes.memmove(array.ctypes.data + cursor[0] * size * 4, values,
                               shape.contents.dims[0] * size * 4)
        return 0

    batch_cb = _lib.BATCH_FN(on_batch)
    tap_cb = _lib.TAP_FN(on_tap) if taps else _lib.TAP_FN()
    err = _lib.new_error()
    _lib.check(_lib.hq.hq_emulator_run_dataset(emu, data.ptr, batch_size, batch_cb, tap_cb, None,
                                               ctypes.byref(err)), err)
    return {item[3]: item[4] for item in items}


def parse_script(text, name):
    """Parses model-script text; the caller owns the returned hq_script_t pointer."""
    raw = text.encode("utf-8")
    script = ctypes.c_void_p()
    err = _lib.new_error()
    _lib.check(_lib.hq.hq_script_parse(raw, len(raw), _lib.encode(name), ctypes.byref(script),
                                       ctypes.byref(err)), err)
    return script
