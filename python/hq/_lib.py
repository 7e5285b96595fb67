"""Loading libhq and libhqrt with ctypes, the C declarations this package calls, and the
translation of a failed call into an hq.Error."""
import ctypes
import ctypes.util
import os

from . import errors

HQ_ERROR_MESSAGE_MAX = 512
HQ_TENSOR_MAX_DIMS = 8


class ErrorStruct(ctypes.Structure):
    """hq_error_t"""
    _fields_ = [("status", ctypes.c_int), ("message", ctypes.c_char * HQ_ERROR_MESSAGE_MAX)]


class Shape(ctypes.Structure):
    """hq_shape_t"""
    _fields_ = [("ndim", ctypes.c_int), ("dims", ctypes.c_int64 * HQ_TENSOR_MAX_DIMS)]

    def to_tuple(self):
        return tuple(int(self.dims[d]) for d in range(self.ndim))


class Tensor(ctypes.Structure):
    """hq_tensor_t"""
    _fields_ = [("dtype", ctypes.c_int), ("ndim", ctypes.c_int),
                ("shape", ctypes.c_int64 * HQ_TENSOR_MAX_DIMS), ("data", ctypes.c_void_p),
                ("nbytes", ctypes.c_size_t)]


class LayerHead(ctypes.Structure):
    """The leading fields of hq_layer_t, up to its output shape (the rest is not read)."""
    _fields_ = [("name", ctypes.c_char_p), ("bare_name", ctypes.c_char_p), ("type", ctypes.c_int),
                ("input_count", ctypes.c_int), ("inputs", ctypes.POINTER(ctypes.c_int)),
                ("input_ports", ctypes.POINTER(ctypes.c_int)), ("output_count", ctypes.c_int),
                ("outputs", ctypes.POINTER(ctypes.c_int)),
                ("output_ports", ctypes.POINTER(ctypes.c_int)),
                ("input_shape_count", ctypes.c_int), ("input_shapes", ctypes.POINTER(Shape)),
                ("output_shape", Shape)]


class ParseOptions(ctypes.Structure):
    """hq_parse_options_t"""
    _fields_ = [("net_name", ctypes.c_char_p), ("start_nodes", ctypes.POINTER(ctypes.c_char_p)),
                ("start_count", ctypes.c_int), ("end_nodes", ctypes.POINTER(ctypes.c_char_p)),
                ("end_count", ctypes.c_int), ("hw_arch", ctypes.c_char_p),
                ("input_shapes", ctypes.POINTER(Shape)), ("input_shape_count", ctypes.c_int)]


LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p)
PROGRESS_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int64,
                               ctypes.c_int64)


class OptimizeOptions(ctypes.Structure):
    """hq_optimize_options_t"""
    _fields_ = [("hw_arch", ctypes.c_char_p), ("calibset_size", ctypes.c_int64),
                ("batch_size", ctypes.c_int64), ("threads", ctypes.c_int), ("log", LOG_FN),
                ("log_user", ctypes.c_void_p), ("script_name", ctypes.c_char_p),
                ("progress", PROGRESS_FN), ("progress_user", ctypes.c_void_p),
                ("no_noise_analysis", ctypes.c_int)]


class CostModel(ctypes.Structure):
    """hq_cost_model_t"""
    _fields_ = [("hw_arch", ctypes.c_char_p)] + [(name, ctypes.c_double) for name in (
        "macs_per_second", "cost_a16_w8", "cost_a8_w16", "cost_a16_w16", "cost_w4",
        "weight_memory_bytes", "stream_bytes_per_second", "activation_bytes_per_second",
        "layer_overhead_seconds")]


class LayerCost(ctypes.Structure):
    """hq_layer_cost_t"""
    _fields_ = [("layer", ctypes.c_int), ("name", ctypes.c_char_p), ("type", ctypes.c_char_p),
                ("precision", ctypes.c_char * 16), ("input_bits", ctypes.c_int),
                ("weight_bits", ctypes.c_int), ("output_bits", ctypes.c_int),
                ("macs", ctypes.c_int64), ("weight_bytes", ctypes.c_int64),
                ("activation_bytes", ctypes.c_int64), ("compute_seconds", ctypes.c_double),
                ("memory_seconds", ctypes.c_double), ("seconds", ctypes.c_double)]


class Profile(ctypes.Structure):
    """hq_profile_t"""
    _fields_ = [("model", CostModel), ("layer_count", ctypes.c_int),
                ("layers", ctypes.POINTER(LayerCost)), ("total_macs", ctypes.c_int64),
                ("total_weight_bytes", ctypes.c_int64), ("weights_stream", ctypes.c_bool),
                ("compute_seconds", ctypes.c_double), ("memory_seconds", ctypes.c_double),
                ("overhead_seconds", ctypes.c_double), ("seconds_per_frame", ctypes.c_double),
                ("fps", ctypes.c_double)]


TAP_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                          ctypes.POINTER(Shape), ctypes.POINTER(ctypes.c_float),
                          ctypes.POINTER(ErrorStruct))
BATCH_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                            ctypes.POINTER(ctypes.POINTER(ctypes.c_float)),
                            ctypes.POINTER(ErrorStruct))



class DiagEvent(ctypes.Structure):
    """hq_diag_event_t"""
    _fields_ = [("kind", ctypes.c_int), ("level", ctypes.c_int), ("inspector", ctypes.c_char_p),
                ("text", ctypes.c_char_p), ("detail", ctypes.c_char_p),
                ("done", ctypes.c_int64), ("total", ctypes.c_int64), ("number", ctypes.c_int)]


DIAG_EVENT_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(DiagEvent))
DIAG_ASK_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                               ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int)
DIAG_PICK_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                ctypes.POINTER(ctypes.c_bool))


class DiagOptions(ctypes.Structure):
    """hq_diag_options_t"""
    _fields_ = [("hw_arch", ctypes.c_char_p), ("sample_count", ctypes.c_int64),
                ("batch_size", ctypes.c_int64), ("output_dir", ctypes.c_char_p),
                ("on_event", DIAG_EVENT_FN), ("event_user", ctypes.c_void_p),
                ("ask", DIAG_ASK_FN), ("ask_user", ctypes.c_void_p),
                ("pick", DIAG_PICK_FN), ("accept", ctypes.c_int)]


class DiagVerifyOptions(ctypes.Structure):
    """hq_diag_verify_options_t"""
    _fields_ = [("data_path", ctypes.c_char_p), ("from_path", ctypes.c_char_p),
                ("threads", ctypes.c_int)]


# libhqrt

HQRT_ERROR_MAX = 256


class RtErrorStruct(ctypes.Structure):
    """hqrt_error_t"""
    _fields_ = [("status", ctypes.c_int), ("message", ctypes.c_char * HQRT_ERROR_MAX)]


class RtIo(ctypes.Structure):
    """hqrt_io_t"""
    _fields_ = [("count", ctypes.c_int), ("name", ctypes.c_char_p), ("ndim", ctypes.c_int),
                ("dims", ctypes.c_int64 * 4), ("elements", ctypes.c_int64), ("bits", ctypes.c_int),
                ("bytes", ctypes.c_size_t), ("qp_scale", ctypes.c_float), ("qp_zp", ctypes.c_int32)]


class RtRunOptions(ctypes.Structure):
    """hqrt_run_options_t"""
    _fields_ = [("threads", ctypes.c_int)]


P = ctypes.c_void_p
PP = ctypes.POINTER(ctypes.c_void_p)
S = ctypes.c_char_p
I = ctypes.c_int
I64 = ctypes.c_int64
Z = ctypes.c_size_t
ERR = ctypes.POINTER(ErrorStruct)

# name: (restype, argtypes)
_HQ_FUNCTIONS = {
    "hq_version": (S, []),
    "hq_status_string": (S, [I]),
    "hq_archive_open": (I, [S, PP, ERR]),
    "hq_archive_open_memory": (I, [P, Z, S, PP, ERR]),
    "hq_archive_destroy": (None, [P]),
    "hq_archive_save": (I, [P, S, ERR]),
    "hq_archive_save_memory": (I, [P, PP, ctypes.POINTER(Z), ERR]),
    "hq_archive_path": (S, [P]),
    "hq_archive_net_name": (S, [P]),
    "hq_archive_state": (I, [P]),
    "hq_model_state_name": (S, [I]),
    "hq_archive_hw_arch": (S, [P]),
    "hq_archive_graph": (I, [P, PP, ERR]),
    "hq_archive_params": (I, [P, I, PP, ERR]),
    "hq_archive_has_params": (ctypes.c_bool, [P, I]),
    "hq_archive_script": (I, [P, PP, ERR]),
    "hq_archive_set_script": (I, [P, P, ERR]),
    "hq_archive_member": (I, [P, S, PP, ctypes.POINTER(Z), ERR]),
    "hq_script_parse": (I, [S, Z, S, PP, ERR]),
    "hq_script_destroy": (None, [P]),
    "hq_script_print": (I, [P, PP, ERR]),
    "hq_graph_to_json": (I, [P, PP, ctypes.POINTER(Z), ERR]),
    "hq_graph_layer_count": (I, [P]),
    "hq_graph_layer": (ctypes.POINTER(LayerHead), [P, I]),
    "hq_graph_find": (I, [P, S]),
    "hq_graph_topo_order": (ctypes.POINTER(I), [P, ctypes.POINTER(I)]),
    "hq_graph_inputs": (ctypes.POINTER(I), [P, ctypes.POINTER(I)]),
    "hq_graph_outputs": (ctypes.POINTER(I), [P, ctypes.POINTER(I)]),
    "hq_layer_port_count": (I, [ctypes.POINTER(LayerHead)]),
    "hq_layer_port_shape": (Shape, [ctypes.POINTER(LayerHead), I]),
    "hq_layer_type_name": (S, [I]),
    "hq_npz_get": (ctypes.POINTER(Tensor), [P, S]),
    "hq_npz_count": (Z, [P]),
    "hq_npz_key": (S, [P, Z]),
    "hq_npz_get_index": (ctypes.POINTER(Tensor), [P, Z]),
    "hq_parse_onnx": (I, [S, ctypes.POINTER(ParseOptions), PP, ERR]),
    "hq_dataset_open": (I, [S, P, PP, ERR]),
    "hq_dataset_open_memory": (I, [P, Z, S, P, PP, ERR]),
    "hq_dataset_destroy": (None, [P]),
    "hq_dataset_count": (I64, [P]),
    "hq_dataset_input_count": (I, [P]),
    "hq_dataset_input_layer": (I, [P, I]),
    "hq_dataset_read": (I, [P, I, I64, I64, P, ERR]),
    "hq_graph_create": (I, [S, PP, ERR]),
    "hq_graph_destroy": (None, [P]),
    "hq_graph_add_layer": (I, [P, S, I, ctypes.POINTER(I), ERR]),
    "hq_layer_set_output_shape": (I, [P, I, ctypes.POINTER(Shape), ERR]),
    "hq_graph_finalize": (I, [P, S, ERR]),
    "hq_target_from_name": (I, [S, ctypes.POINTER(I)]),
    "hq_emulator_create_from_archive": (I, [P, I, PP, ERR]),
    "hq_emulator_destroy": (None, [P]),
    "hq_emulator_set_threads": (I, [P, I, ERR]),
    "hq_emulator_run_dataset": (I, [P, P, I64, BATCH_FN, TAP_FN, P, ERR]),
    "hq_optimize": (I, [P, P, P, ctypes.POINTER(OptimizeOptions), ERR]),
    "hq_analyze_noise": (I, [P, P, I64, I, ctypes.POINTER(OptimizeOptions), ERR]),
    "hq_profile": (I, [P, S, ctypes.POINTER(S), I, ctypes.POINTER(ctypes.POINTER(Profile)), ERR]),
    "hq_profile_destroy": (None, [ctypes.POINTER(Profile)]),
    "hq_compile": (I, [P, PP, ctypes.POINTER(Z), ERR]),
    "hq_diag_create": (I, [ctypes.POINTER(DiagOptions), PP, ERR]),
    "hq_diag_destroy": (None, [P]),
    "hq_diag_load_plugins": (I, [P, S, ctypes.c_bool, ERR]),
    "hq_diag_load_plugin": (I, [P, S, ERR]),
    "hq_diag_inspector_count": (I, [P]),
    "hq_diag_set_order": (I, [P, ctypes.POINTER(S), I, ERR]),
    "hq_diag_open": (I, [P, S, S, ERR]),
    "hq_diag_run": (I, [P, ERR]),
    "hq_diag_script_text": (I, [P, PP, ERR]),
    "hq_diag_write_json": (I, [P, S, ERR]),
    "hq_diag_write_html": (I, [P, S, ERR]),
    "hq_diag_set_reference": (I, [P, S, ERR]),
    "hq_diag_set_verify": (I, [P, ctypes.POINTER(DiagVerifyOptions), ERR]),
    "hq_diag_verify": (I, [P, ERR]),
}

RTERR = ctypes.POINTER(RtErrorStruct)
_HQRT_FUNCTIONS = {
    "hqrt_open_memory": (I, [P, Z, S, PP, RTERR]),
    "hqrt_describe": (I, [P, I, I, ctypes.POINTER(RtIo), RTERR]),
    "hqrt_run": (I, [P, I64, PP, PP, ctypes.POINTER(RtRunOptions), RTERR]),
    "hqrt_quantize": (None, [ctypes.POINTER(RtIo), P, I64, P]),
    "hqrt_dequantize": (None, [ctypes.POINTER(RtIo), P, I64, P]),
    "hqrt_close": (None, [P]),
    "hqrt_status_text": (S, [I]),
}


def _installed_libdir():
    """The library folder an installed copy of the package was configured with, or None."""
    try:
        from . import _install  # written by `cmake --install` only
    except ImportError:
        return None
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                         _install.LIBDIR_FROM_PACKAGE))


def _candidates(env, soname, short):
    """Where to look for a library, in order: $env, the installed package's libdir, the
    dynamic linker's search (ctypes.util.find_library)."""
    found = []
    if os.environ.get(env):
        found.append(os.environ[env])
    libdir = _installed_libdir()
    if libdir and os.path.exists(os.path.join(libdir, soname)):
        found.append(os.path.join(libdir, soname))
    name = ctypes.util.find_library(short)
    if name:
        found.append(name)
    return found


def _declare(lib, table):
    for name, (restype, argtypes) in table.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes


def _load(env, soname, short, table):
    tried = _candidates(env, soname, short)
    if not tried:
        raise ImportError(f"hq: {soname} not found: set {env} to its path, or install hq")
    lib = ctypes.CDLL(tried[0])
    _declare(lib, table)
    return lib, tried[0]


hq, hq_path = _load("HQ_LIBRARY", "libhq.so", "hq", _HQ_FUNCTIONS)
_hqrt = None


def hqrt():
    """libhqrt, loaded on first use: $HQRT_LIBRARY, else the folder libhq came from, else the
    same places as libhq."""
    global _hqrt
    if _hqrt is None:
        beside = os.path.join(os.path.dirname(hq_path), "libhqrt.so")
        if not os.environ.get("HQRT_LIBRARY") and os.path.exists(beside):
            os.environ.setdefault("HQRT_LIBRARY", beside)
        _hqrt, _ = _load("HQRT_LIBRARY", "libhqrt.so", "hqrt", _HQRT_FUNCTIONS)
    return _hqrt


def new_error():
    return ErrorStruct()


def check(status, err):
    """Raises the hq.Error for a failed call; `err` is the hq_error_t passed to it."""
    if status == 0:
        return
    message = err.message.decode("utf-8", "replace") if err is not None else ""
    if not message:
        message = hq.hq_status_string(status).decode()
    raise errors.from_status(status, message)


def check_rt(status, err):
    if status == 0:
        return
    message = err.message.decode("utf-8", "replace")
    if not message:
        message = hqrt().hqrt_status_text(status).decode()
    raise errors.from_status(status, message)


def encode(text):
    return None if text is None else os.fsencode(text) if isinstance(text, os.PathLike) \
        else text.encode("utf-8")


def take_malloced(ptr, length):
    """Copies `length` bytes at a malloc()ed pointer into bytes and frees the pointer."""
    data = ctypes.string_at(ptr, length) if length else b""
    _libc_free(ptr)
    return data


_libc = ctypes.CDLL(None)
_libc.free.argtypes = [ctypes.c_void_p]
_libc.free.restype = None


def _libc_free(ptr):
    _libc.free(ptr)
