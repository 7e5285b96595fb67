"""hq.diag: the hq-diag runner (include/hq/diag.h) as a call returning a Report, and hq.compare:
`hq compare`'s per-output metrics in numpy.

The findings, recommendations, headline and verdict are read from the JSON report the library
writes for `hq-diag --json`, so a Report holds exactly what that file holds."""
import ctypes
import dataclasses
import html
import json
import math
import os
import tempfile

import numpy as np

from . import _lib
from ._data import ARRAY_NAME, to_npy_bytes
from .archive import Archive
from .errors import ArgumentError, InvalidError, NotFoundError

_LEVEL_WORDS = ("info", "warning", "error")
_EVENT_MESSAGE, _EVENT_RECOMMENDATION = 0, 5


@dataclasses.dataclass
class Finding:
    """One finding: `level` "info", "warning" or "error"; `layer` the bare layer name or None;
    `numbers` the values behind it ({name: float or None})."""
    inspector: str
    level: str
    layer: object
    message: str
    numbers: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Recommendation:
    """One recommended model-script line. Handed to an `accept` callable while the run asks
    (then `accepted` and `layer` are None); in a Report, `accepted` says what was decided."""
    line: str
    inspector: str
    level: str
    accepted: object
    reason: str = ""
    layer: object = None
    group: str = ""


class Report:
    """What one hq-diag run found. `messages` are the console lines ((level, inspector or None,
    text)) hq-diag would print for the run."""

    def __init__(self, json_text, script_text, html_bytes, messages):
        self._json = json_text
        self._script = script_text
        self._html = html_bytes
        self.messages = messages
        data = json.loads(json_text)
        self.data = data
        self.findings = [Finding(d["inspector"], d["level"], d["layer"], d["message"],
                                 d.get("numbers", {})) for d in data["diagnostics"]]
        self.recommendations = [
            Recommendation(r["line"], r["inspector"], r["level"], r["accepted"], r["reason"],
                           r["layer"], r["group"]) for r in data["recommendations"]]
        self.verdict = data.get("verdict")
        self.output_sqnr = {o["output"]: {k: v for k, v in o.items() if k != "output"}
                            for o in data.get("output_sqnr_db", [])}
        self.exit_status = data["exit_status"]
        # the ranked causes (at most 5), as hq-diag ends its console and --json: dicts with rank,
        # inspector, level, summary, lines ([{line, accepted}]), expected_gain_db,
        # measured_gain_db
        self.triage = data.get("triage", [])
        # --verify's figures (hq-diag(1), JSON: verify), None without verify=True
        self.verify = data.get("verify")

    def script(self):
        """The archive's model script merged with the accepted lines: the text hq-diag writes
        to its output model script."""
        return self._script

    def to_json(self):
        """The JSON report, as `hq-diag --json` writes it (schema in hq-diag(1))."""
        return self._json

    def to_html(self, path):
        """Writes the self-contained HTML report (`hq-diag --report`) to `path`."""
        with open(path, "wb") as f:
            f.write(self._html)

    def __repr__(self):
        s = self.data["summary"]
        verdict = self.verdict["summary"] if self.verdict else "no verdict"
        return (f"<hq.Report {self.data['network']}: {s['error']} error(s), {s['warning']} "
                f"warning(s), {s['info']} info, {s['accepted']} of {s['recommendations']} "
                f"recommendation(s) accepted; {verdict}>")

    def _repr_html_(self):
        rows = "".join(
            f"<tr><td>{html.escape(f.inspector)}</td><td>{html.escape(f.level)}</td>"
            f"<td>{html.escape(f.layer or '')}</td><td>{html.escape(f.message)}</td></tr>"
            for f in self.findings)
        return ("<table><tr><th>inspector</th><th>level</th><th>layer</th><th>finding</th></tr>"
                f"{rows}</table>")


def inspector_folders():
    """The built-in inspector folders: $HQ_INSPECTOR_PATH (colon-separated), else the first
    existing of <folder of libhq>/hq-inspectors (a build tree) and <folder of
    libhq>/hq/inspectors (an install), as hq-diag finds them beside itself."""
    env = os.environ.get("HQ_INSPECTOR_PATH")
    if env:
        return [d for d in env.split(":") if d]
    libdir = os.path.dirname(os.path.realpath(_lib.hq_path))
    for folder in (os.path.join(libdir, "hq-inspectors"), os.path.join(libdir, "hq", "inspectors")):
        if os.path.isdir(folder):
            return [folder]
    return []


class _Run:
    """The callbacks of one run: console messages, and the answers to the group questions."""

    def __init__(self, accept):
        self.accept = accept
        self.messages = []
        self.pending = []
        self.error = None

    def on_event(self, user, event_ptr):
        e = event_ptr.contents
        inspector = e.inspector.decode() if e.inspector else None
        level = _LEVEL_WORDS[e.level] if 0 <= e.level < 3 else str(e.level)
        if e.kind == _EVENT_MESSAGE:
            self.messages.append((level, inspector, e.text.decode("utf-8", "replace")))
        elif e.kind == _EVENT_RECOMMENDATION:
            self.pending.append(Recommendation(e.text.decode(), inspector or "", level, None,
                                               e.detail.decode() if e.detail else ""))

    def ask(self, user, inspector, question, choices, count, default_index):
        words = [choices[i].decode() for i in range(count)]
        lines, self.pending = self.pending, []
        if not lines or self.error is not None:
            return default_index  # a question of an inspector's own, or after a failure
        try:
            return self._answer(words, lines, default_index)
        except BaseException as e:  # raised again once the run is over
            self.error = e
            return default_index

    def _answer(self, words, lines, default_index):
        if self.accept in ("all", "none"):
            wanted = {"all": ("all", "y"), "none": ("none", "n")}[self.accept]
            return next((i for i, w in enumerate(words) if w in wanted), default_index)
        picks = [bool(self.accept(line)) for line in lines]
        if words == ["y", "n"]:
            return 0 if all(picks) else 1
        # none / warning / all: the widest answer that accepts no line the callable refused
        serious = [p for p, line in zip(picks, lines) if line.level != "info"]
        word = "all" if all(picks) else "warning" if serious and all(serious) else "none"
        return words.index(word) if word in words else default_index


def _as_file(data, folder, name):
    """A path as given, or arrays (an array, or a dict of them) written to `folder` as .npy/.npz
    (so that they pass the same checks as files)."""
    if isinstance(data, (str, os.PathLike)):
        return os.fspath(data)
    path = os.path.join(folder, name + (".npz" if isinstance(data, dict) else ".npy"))
    with open(path, "wb") as f:
        f.write(to_npy_bytes(data))
    return path


def _order_names(order):
    if isinstance(order, str):
        order = order.replace(",", " ").split()
    names = [str(n) for n in order]
    if not names:
        raise ArgumentError("order: name at least one inspector")
    return names


def _load_plugins(diag, plugin_path):
    err = _lib.new_error()
    for folder in inspector_folders():
        _lib.check(_lib.hq.hq_diag_load_plugins(diag, _lib.encode(folder), False,
                                                ctypes.byref(err)), err)
    for folder in os.environ.get("HQ_PLUGIN_PATH", "").split(":"):
        if folder:  # an empty entry would mean the current folder: never
            _lib.check(_lib.hq.hq_diag_load_plugins(diag, _lib.encode(folder), False,
                                                    ctypes.byref(err)), err)
    if isinstance(plugin_path, (str, os.PathLike)):
        plugin_path = [plugin_path]
    for path in plugin_path or ():
        if os.path.isfile(path):
            st = _lib.hq.hq_diag_load_plugin(diag, _lib.encode(path), ctypes.byref(err))
        else:
            st = _lib.hq.hq_diag_load_plugins(diag, _lib.encode(path), True, ctypes.byref(err))
        _lib.check(st, err)
    if _lib.hq.hq_diag_inspector_count(diag) == 0:
        looked = inspector_folders() or ["(no built-in folder beside " + _lib.hq_path + ")"]
        raise NotFoundError(f"hq-diag: no inspector found in {', '.join(looked)}: set "
                            "HQ_INSPECTOR_PATH to the folder of the inspector modules")


def diag(archive, calib=None, order=None, accept="defaults", count=64, hw_arch=None,
         output_dir=".", plugin_path=None, reference=None, verify=False, verify_data=None,
         verify_from=None, threads=0):
    """Runs hq-diag on `archive` (an Archive or a .har path) with `calib` (a path, an array or a
    dict of arrays, as for hq.optimize; None: no dataset) and returns a Report.

    `order`: the inspectors to run, in this order (`hq-diag --order`); `accept`: "defaults"
    (the answers `hq-diag --no-interactive` takes), "all", "none", or a callable that gets each
    offered Recommendation and returns whether to accept it (a group is answered as a whole:
    yes/no groups are accepted only when every line is, none/warning/all groups with the widest
    answer that takes no refused line); `count`: samples used (`-c`); `output_dir`: where
    inspectors write their files (hq-diag: the log's folder); `plugin_path`: more inspector
    folders or module files (`--plugin-path`); `reference`: the framework's outputs on the
    diagnosis samples (`--reference`: a path, an array or a dict of arrays); `verify`: re-quantize
    with the accepted lines and measure the gains (`--verify`), on `verify_data` (a path or an
    array, `--verify-data`), from the parsed archive `verify_from` (`--verify-from`), with
    `threads` (`-j`); the figures are in Report.verify."""
    if not (accept in ("defaults", "all", "none") or callable(accept)):
        raise ArgumentError(f"accept: 'defaults', 'all', 'none' or a callable, not {accept!r}")
    if int(count) < 1:
        raise ArgumentError(f"count: {count} is not a positive number")
    run = _Run(accept)
    event_fn = _lib.DIAG_EVENT_FN(run.on_event)
    ask_fn = _lib.DIAG_ASK_FN(run.ask)
    options = _lib.DiagOptions()
    options.hw_arch = _lib.encode(hw_arch)
    options.sample_count = int(count)
    options.output_dir = _lib.encode(os.fspath(output_dir))
    options.on_event = event_fn
    if accept != "defaults":
        options.ask = ask_fn
    err = _lib.new_error()
    ptr = ctypes.c_void_p()
    _lib.check(_lib.hq.hq_diag_create(ctypes.byref(options), ctypes.byref(ptr),
                                      ctypes.byref(err)), err)
    with tempfile.TemporaryDirectory(prefix="hq_diag_") as tmp:
        try:
            _load_plugins(ptr, plugin_path)
            if order is not None:
                names = _order_names(order)
                array = (ctypes.c_char_p * len(names))(*[n.encode() for n in names])
                _lib.check(_lib.hq.hq_diag_set_order(ptr, array, len(names), ctypes.byref(err)),
                           err)
            if isinstance(archive, Archive):
                model = os.path.join(tmp, f"{archive.net_name}.har")
                archive.save(model)
            else:
                model = os.fspath(archive)
            data = calib
            if calib is not None and not isinstance(calib, (str, os.PathLike)):
                data = os.path.join(tmp, ARRAY_NAME + (".npz" if isinstance(calib, dict)
                                                       else ".npy"))
                with open(data, "wb") as f:
                    f.write(to_npy_bytes(calib))
            _lib.check(_lib.hq.hq_diag_open(ptr, _lib.encode(model), _lib.encode(data),
                                            ctypes.byref(err)), err)
            if reference is not None:
                path = _as_file(reference, tmp, "reference")
                _lib.check(_lib.hq.hq_diag_set_reference(ptr, _lib.encode(path),
                                                         ctypes.byref(err)), err)
            if verify:
                held = None if verify_data is None else _as_file(verify_data, tmp, "held_out")
                verify_options = _lib.DiagVerifyOptions(
                    _lib.encode(held), _lib.encode(None if verify_from is None
                                                   else os.fspath(verify_from)), int(threads))
                _lib.check(_lib.hq.hq_diag_set_verify(ptr, ctypes.byref(verify_options),
                                                      ctypes.byref(err)), err)
            _lib.check(_lib.hq.hq_diag_run(ptr, ctypes.byref(err)), err)
            if verify:
                _lib.check(_lib.hq.hq_diag_verify(ptr, ctypes.byref(err)), err)
            if run.error is not None:
                raise run.error
            text = ctypes.c_void_p()
            _lib.check(_lib.hq.hq_diag_script_text(ptr, ctypes.byref(text), ctypes.byref(err)),
                       err)
            script = ctypes.string_at(text.value).decode()
            _lib._libc_free(text)
            json_path, html_path = os.path.join(tmp, "report.json"), os.path.join(tmp, "report.html")
            _lib.check(_lib.hq.hq_diag_write_json(ptr, _lib.encode(json_path), ctypes.byref(err)),
                       err)
            _lib.check(_lib.hq.hq_diag_write_html(ptr, _lib.encode(html_path), ctypes.byref(err)),
                       err)
            with open(json_path, encoding="utf-8") as f:
                json_text = f.read()
            with open(html_path, "rb") as f:
                html_bytes = f.read()
        finally:
            _lib.hq.hq_diag_destroy(ptr)
    return Report(json_text, script, html_bytes, run.messages)


def _array_set(data, name):
    """{key: array} of a compare argument: a dict, an array ("array"), or a .npz / .npy path."""
    if isinstance(data, dict):
        return {str(k): np.asarray(v) for k, v in data.items()}, name
    if isinstance(data, np.ndarray):
        return {ARRAY_NAME: data}, name
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if path.endswith(".npy"):
            return {ARRAY_NAME: np.load(path, allow_pickle=False)}, path
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}, path
    raise ArgumentError(f"compare: expected a path, an array or a dict of arrays, "
                        f"not {type(data).__name__}")


def _as_doubles(name, key, array):
    values = np.ascontiguousarray(array, dtype=np.float64).ravel()
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        what = "NaN" if np.isnan(values[bad[0]]) else "Inf"
        raise InvalidError(f"{name}: array '{key}' holds {what} at element {bad[0]}")
    return values


def _sequential_sum(values):
    """The sum in index order, as a C loop adds (numpy's sum adds pairwise)."""
    return float(np.cumsum(values)[-1]) if values.size else 0.0


def compare(a, b, min_sqnr=None, threshold=None):
    """`hq compare A B`: how far `b` is from `a` (the reference), per array both hold (the same
    key, or the two arrays when each side holds one). `a`, `b`: a dict of arrays, an array, or
    an .npz / .npy path. Returns {key: {"shape", "sqnr_db" (inf when identical), "cosine",
    "max_abs", "argmax" (share of samples whose argmax agrees for [N, C] / [N, 1, 1, C] class
    vectors, else None), and with `threshold` "mask", with `min_sqnr` "below_min_sqnr"}}."""
    ref, ref_name = _array_set(a, ARRAY_NAME)
    other, other_name = _array_set(b, ARRAY_NAME)
    results = {}
    for key, r in ref.items():
        o = next(iter(other.values())) if len(ref) == 1 and len(other) == 1 else other.get(key)
        if o is None:
            continue
        if r.shape != o.shape:
            raise InvalidError(f"{other_name}: array '{key}' has shape {tuple(o.shape)}, "
                               f"{ref_name} has {tuple(r.shape)}")
        x = _as_doubles(ref_name, key, r)
        y = _as_doubles(other_name, key, o)
        d = x - y
        signal, noise = _sequential_sum(x * x), _sequential_sum(d * d)
        dot, other_energy = _sequential_sum(x * y), _sequential_sum(y * y)
        if noise == 0:
            sqnr = float("inf")
        elif signal == 0:
            sqnr = float("-inf")
        else:
            sqnr = 10.0 * math.log10(signal / noise)
        if signal == 0 and other_energy == 0:
            cosine = 1.0
        elif signal == 0 or other_energy == 0:
            cosine = 0.0
        else:
            cosine = dot / (math.sqrt(signal) * math.sqrt(other_energy))
        entry = {"shape": tuple(int(s) for s in r.shape), "sqnr_db": float(sqnr),
                 "cosine": float(cosine), "max_abs": float(np.abs(d).max()) if d.size else 0.0,
                 "argmax": None}
        vector = r.ndim == 2 or (r.ndim == 4 and r.shape[1] == 1 and r.shape[2] == 1)
        if vector and r.shape[-1] >= 2 and r.shape[0] > 0:
            classes = r.shape[-1]
            agree = x.reshape(-1, classes).argmax(1) == y.reshape(-1, classes).argmax(1)
            entry["argmax"] = float(np.count_nonzero(agree) / agree.size)
        if threshold is not None:
            same = (x > threshold) == (y > threshold)
            entry["mask"] = float(np.count_nonzero(same) / same.size) if same.size else None
        if min_sqnr is not None:
            entry["below_min_sqnr"] = bool(sqnr < min_sqnr)
        results[key] = entry
    if not results:
        raise NotFoundError(f"{ref_name} and {other_name}: no array name in common")
    return results
