#!/bin/bash
# tar_interop.sh — GNU tar and Python's tarfile read the tars and .har archives hq writes.
# The archives come from the unit tests, which write them to $HQ_TAR_OUT when it is set.
set -euo pipefail

build=${HQ_BUILD_DIR:?HQ_BUILD_DIR must name the build folder}
python=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

long_dir="models/a-directory-name-long-enough-that-paths-below-it-need-the-ustar-prefix-field-dddddddddd"
flat_long="$(printf 'n%.0s' $(seq 120)).txt"
long_note="notes/a-folder-name-long-enough-that-the-member-path-is-over-one-hundred-bytes-long/readme.txt"

fail() { echo "tar_interop: $*" >&2; exit 1; }

# ---- a plain tar from hqi_tar_write ----------------------------------------------------------
HQ_TAR_OUT="$work/plain.tar" "$build/tests/test_tar" >"$work/log" 2>&1 || { cat "$work/log"; fail "test_tar failed"; }
[ -s "$work/plain.tar" ] || fail "test_tar wrote nothing to HQ_TAR_OUT"
expected=$(printf '%s\n' hello.txt empty.txt "$long_dir/weights.bin" "$flat_long")
[ "$(tar tf "$work/plain.tar")" = "$expected" ] || fail "GNU tar lists other names: $(tar tf "$work/plain.tar")"
mkdir "$work/x"
tar xf "$work/plain.tar" -C "$work/x"
[ "$(cat "$work/x/hello.txt")" = "hello, tar" ] || fail "GNU tar extracted other contents"
[ "$(stat -c %s "$work/x/$long_dir/weights.bin")" = 768 ] || fail "weights.bin has the wrong size"

"$python" - "$work/plain.tar" "$long_dir" "$flat_long" <<'PY'
import sys, tarfile
path, long_dir, flat_long = sys.argv[1:]
with tarfile.open(path) as t:
    members = t.getmembers()
    names = [m.name for m in members]
    assert names == ["hello.txt", "empty.txt", long_dir + "/weights.bin", flat_long], names
    for m in members:
        assert m.isreg() and m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.mode == 0o644, m
    assert t.extractfile("hello.txt").read() == b"hello, tar\n"
    assert t.extractfile(long_dir + "/weights.bin").read() == bytes(range(256)) * 3
    assert t.extractfile(flat_long).read() == b"flat long name\n"
PY

# ---- a model archive from hq_archive_save ----------------------------------------------------
HQ_TAR_OUT="$work/model.har" "$build/tests/test_archive" >"$work/log" 2>&1 || { cat "$work/log"; fail "test_archive failed"; }
[ -s "$work/model.har" ] || fail "test_archive wrote nothing to HQ_TAR_OUT"
expected=$(printf '%s\n' net.metadata.json net.hn net.npz net.q.npz net.alls "$long_note" net.hef)
[ "$(tar tf "$work/model.har")" = "$expected" ] || fail "GNU tar lists other names: $(tar tf "$work/model.har")"

"$python" - "$work/model.har" "$long_note" <<'PY'
import io, json, sys, tarfile
import numpy as np
path, long_note = sys.argv[1:]
with tarfile.open(path) as t:
    meta = json.load(t.extractfile("net.metadata.json"))
    assert meta["state"] == "quantized_model" and meta["hn"] == "net.hn", meta
    assert meta["hw_arch"] == "hailo8l", meta
    hn = json.load(t.extractfile("net.hn"))
    assert "net/act" in hn["layers"], hn
    params = np.load(io.BytesIO(t.extractfile("net.q.npz").read()))
    assert params["net/act/kernel:0"].tolist() == [[10.0, 11.0], [12.0, 13.0]]
    assert t.extractfile(long_note).read() == b"read me\n"
    assert t.extractfile("net.hef").read() == b"HEF"
    assert b"normalization" in t.extractfile("net.alls").read()
PY
echo "tar_interop: ok"
