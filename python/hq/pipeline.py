"""hq.parse, hq.optimize, hq.profile and hq.compile: the `hq` subcommands as calls."""
import ctypes
import os

from . import _lib
from ._data import Dataset
from .archive import Archive, parse_script
from .errors import ArgumentError, IoError, NotFoundError
from .program import Program


def _strings(values, what):
    if values is None:
        return None, 0
    if isinstance(values, str):
        values = [values]
    values = list(values)
    if not all(isinstance(v, str) for v in values):
        raise ArgumentError(f"{what} must be strings")
    array = (ctypes.c_char_p * max(1, len(values)))(*[v.encode() for v in values])
    return array, len(values)


def parse(onnx_path, net_name=None, hw_arch=None, start_nodes=None, end_nodes=None,
          tensor_shapes=None):
    """Imports an ONNX model (`hq parse`): an Archive in state parsed_model. `start_nodes` /
    `end_nodes` cut the graph at these ONNX node names; `tensor_shapes` gives one shape per
    graph input in ONNX layout ([N, C, H, W] or [N, C], batch ignored) for dynamic
    dimensions."""
    opts = _lib.ParseOptions()
    opts.net_name = _lib.encode(net_name)
    opts.hw_arch = _lib.encode(hw_arch)
    start, opts.start_count = _strings(start_nodes, "start_nodes")
    end, opts.end_count = _strings(end_nodes, "end_nodes")
    if start is not None:
        opts.start_nodes = start
    if end is not None:
        opts.end_nodes = end
    if tensor_shapes:
        shapes = (_lib.Shape * len(tensor_shapes))()
        for i, shape in enumerate(tensor_shapes):
            dims = [int(d) for d in shape]
            if not 0 < len(dims) <= _lib.HQ_TENSOR_MAX_DIMS or min(dims) < 1:
                raise ArgumentError(f"tensor_shapes: '{shape}' is not a shape like (1, 3, 640, 640)")
            shapes[i].ndim = len(dims)
            for d, v in enumerate(dims):
                shapes[i].dims[d] = v
        opts.input_shapes = shapes
        opts.input_shape_count = len(tensor_shapes)
    ptr = ctypes.c_void_p()
    err = _lib.new_error()
    _lib.check(_lib.hq.hq_parse_onnx(_lib.encode(onnx_path), ctypes.byref(opts), ctypes.byref(ptr),
                                     ctypes.byref(err)), err)
    return Archive(ptr)


def _script_text(script):
    """(script text or None, name for messages) from None, a path, text or a list of lines."""
    if script is None:
        return None, None
    if isinstance(script, (list, tuple)):
        return "\n".join(script) + "\n", "model script"
    if isinstance(script, str) and ("(" in script or "\n" in script):
        return script, "model script"
    if isinstance(script, (str, os.PathLike)):
        path = os.fspath(script)
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace"), path
        except FileNotFoundError:
            raise NotFoundError(f"{path}: No such file or directory") from None
        except OSError as e:
            raise IoError(f"{path}: {e.strerror}") from None
    raise ArgumentError(f"script must be a path, model-script text or a list of lines, not "
                        f"{type(script).__name__}")


def _read_script(script):
    """(hq_script_t pointer or None, name for messages) from a path, text or list of lines."""
    text, name = _script_text(script)
    return (parse_script(text, name) if text is not None else None), name


def optimize(archive, calib, script=None, threads=0, hw_arch=None, log=None, level=None):
    """Quantizes a copy of `archive` (`hq optimize`) and returns it (state quantized_model);
    `archive` itself is left as it was.

    `calib`: the calibration data (path, numpy array or dict, as for Archive.emulate).
    `script`: None (the archive's own model script), the path of an `.alls`, script text (a
    string with a '(' or a newline) or a list of lines. `log`: a callable(level, message)
    receiving the quantizer's log lines (level 0 debug .. 3 error). `level`: an optimization
    level 0..4, appended to the script as `model_optimization_flavor(optimization_level=L)`
    (a later line wins, so it overrides the script's own; None: the script's)."""
    if level is not None:
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 4:
            raise ArgumentError(f"level must be an integer from 0 to 4, not {level!r}")
        text = _script_text(script)[0]
        if text is None:
            text = archive.script
        if text and not text.endswith("\n"):
            text += "\n"
        script = (text or "") + f"model_optimization_flavor(optimization_level={level})\n"
    result = archive.copy()
    script_ptr, script_name = _read_script(script)
    try:
        options = _lib.OptimizeOptions()
        options.threads = threads
        options.hw_arch = _lib.encode(hw_arch)
        options.script_name = _lib.encode(script_name or archive.path or "model script")
        if log is not None:
            options.log = _lib.LOG_FN(lambda user, level, message:
                                      log(level, message.decode("utf-8", "replace")))
        err = _lib.new_error()
        with Dataset(calib, result._graph()) as data:
            _lib.check(_lib.hq.hq_optimize(result._handle(), script_ptr, data.ptr,
                                           ctypes.byref(options), ctypes.byref(err)), err)
    except BaseException:
        result.close()
        raise
    finally:
        if script_ptr:
            _lib.hq.hq_script_destroy(script_ptr)
    return result


def profile(archive, a16=(), hw_arch=None):
    """The cost-model estimate of `hq profile` (an ESTIMATE, docs/deploy.md), with the layers in
    `a16` profiled as if they were a16_w16. Returns a dict: hw_arch, fps, seconds_per_frame,
    total_macs, total_weight_bytes, weights_stream, compute_seconds, memory_seconds,
    overhead_seconds, layers (list of dicts: name, type, precision, macs, weight_bytes,
    activation_bytes, compute_seconds, memory_seconds, seconds)."""
    names, count = _strings(list(a16 or ()), "a16")
    out = ctypes.POINTER(_lib.Profile)()
    err = _lib.new_error()
    _lib.check(_lib.hq.hq_profile(archive._handle(), _lib.encode(hw_arch), names, count,
                                  ctypes.byref(out), ctypes.byref(err)), err)
    try:
        p = out.contents
        layers = []
        for i in range(p.layer_count):
            c = p.layers[i]
            layers.append({
                "name": c.name.decode(), "type": c.type.decode(),
                "precision": c.precision.decode(), "input_bits": c.input_bits,
                "weight_bits": c.weight_bits, "output_bits": c.output_bits, "macs": c.macs,
                "weight_bytes": c.weight_bytes, "activation_bytes": c.activation_bytes,
                "compute_seconds": c.compute_seconds, "memory_seconds": c.memory_seconds,
                "seconds": c.seconds,
            })
        return {
            "hw_arch": p.model.hw_arch.decode(), "fps": p.fps,
            "seconds_per_frame": p.seconds_per_frame, "total_macs": p.total_macs,
            "total_weight_bytes": p.total_weight_bytes, "weights_stream": bool(p.weights_stream),
            "compute_seconds": p.compute_seconds, "memory_seconds": p.memory_seconds,
            "overhead_seconds": p.overhead_seconds, "layers": layers,
        }
    finally:
        _lib.hq.hq_profile_destroy(out)


def compile(archive):  # noqa: A001 (the `hq compile` subcommand's name)
    """Compiles a quantized archive (`hq compile`) into a Program for the deploy runtime.
    `archive` is left as it was (the compiled program is not added to it)."""
    work = archive.copy()
    try:
        data = ctypes.c_void_p()
        length = ctypes.c_size_t()
        err = _lib.new_error()
        _lib.check(_lib.hq.hq_compile(work._handle(), ctypes.byref(data), ctypes.byref(length),
                                      ctypes.byref(err)), err)
        program = _lib.take_malloced(data, length.value)
    finally:
        work.close()
    return Program(program, name=f"{archive.path or archive.net_name}({archive.net_name}.hqx)")
