#!/usr/bin/python3
"""Writes the bad-input catalogue into the folder given as argv[1]: each file is the bundled
sample (samples/tiny.har, samples/tiny_calib.npy) with exactly one thing wrong. Prints one line
per case: '<tool> <file> <expected words in the error>' for bad_inputs.sh."""
import io
import json
import os
import sys
import tarfile
import zipfile

import numpy as np

src = os.environ["HQ_SOURCE_DIR"]
out = sys.argv[1]
har_path = os.path.join(src, "samples", "tiny.har")
with tarfile.open(har_path) as t:
    members = {m.name: t.extractfile(m).read() for m in t.getmembers()}
order = list(members)


def write_har(name, changes=None, drop=()):
    m = dict(members)
    m.update(changes or {})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for k in order + [k for k in m if k not in order]:
            if k in drop or k not in m:
                continue
            info = tarfile.TarInfo(k)
            info.size = len(m[k])
            t.addfile(info, io.BytesIO(m[k]))
    path = os.path.join(out, name)
    open(path, "wb").write(buf.getvalue())
    return path


def case(tool, path, words):
    print(f"{tool}\t{os.path.basename(path)}\t{words}")


raw = open(har_path, "rb").read()
p = os.path.join(out, "truncated.har"); open(p, "wb").write(raw[:1500]); case("info", p, "truncated")
bad = bytearray(raw); bad[148:156] = b"0000000\0"
p = os.path.join(out, "bad_checksum.har"); open(p, "wb").write(bytes(bad)); case("info", p, "checksum")
p = write_har("no_metadata.har", drop=("tiny.metadata.json",)); case("info", p, "metadata")
p = write_har("metadata_syntax.har", {"tiny.metadata.json": b'{"state": "parsed_model",'})
case("info", p, "metadata.json")
p = write_har("hn_syntax.har", {"tiny.hn": members["tiny.hn"][:-40]}); case("info", p, "tiny.hn")
hn = json.loads(members["tiny.hn"])
hn["layers"]["tiny/conv2"]["input"] = ["tiny/conv9"]
p = write_har("dangling_edge.har", {"tiny.hn": json.dumps(hn).encode()}); case("info", p, "conv9")
hn = json.loads(members["tiny.hn"])
hn["layers"]["tiny/conv2"]["type"] = "quantum_conv"
p = write_har("unknown_type.har", {"tiny.hn": json.dumps(hn).encode()}); case("info", p, "quantum_conv")
hn = json.loads(members["tiny.hn"])
hn["layers"]["tiny/conv2"]["output_shapes"] = [[-1, 8, 8, 17]]
p = write_har("shape_mismatch.har", {"tiny.hn": json.dumps(hn).encode()}); case("info", p, "conv2")
p = write_har("alls_syntax.har", {"tiny.alls": b"normalization1 = normalization([1, 2, 3], [4, 5, 6]\n"})
case("info", p, "tiny.alls:1")
p = write_har("npz_truncated.har", {"tiny.npz": members["tiny.npz"][:-100]}); case("info", p, "tiny.npz")
zbuf = io.BytesIO()
with zipfile.ZipFile(zbuf, "w") as z:
    text = b"{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }"
    text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
    z.writestr("tiny/conv1/kernel:0.npy",
               b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + b"\0" * 16)
p = write_har("npz_dtype.har", {"tiny.npz": zbuf.getvalue()}); case("info", p, "<c8")

calib = os.path.join(src, "samples", "tiny_calib.npy")
craw = open(calib, "rb").read()
p = os.path.join(out, "truncated.npy"); open(p, "wb").write(craw[:5000]); case("diag", p, "truncated.npy")
p = os.path.join(out, "short_header.npy"); open(p, "wb").write(craw[:20]); case("diag", p, "short_header.npy")
hdr_end = craw.index(b"\n") + 1
header = craw[:hdr_end].replace(b"(16, 16, 16, 3)", b"(99, 16, 16, 3)")
p = os.path.join(out, "header_lies.npy"); open(p, "wb").write(header + craw[hdr_end:]); case("diag", p, "header promises")
header = craw[:hdr_end].replace(b"'<f4'", b"'<c8'")
p = os.path.join(out, "unknown_dtype.npy"); open(p, "wb").write(header + craw[hdr_end:]); case("diag", p, "<c8")
a = np.zeros((4, 3, 16, 16), np.float32)
p = os.path.join(out, "nchw.npy"); np.save(p, a); case("diag", p, "NCHW")
a = np.zeros((4, 16, 16, 3), np.float32); a[2, 1, 1, 1] = np.nan
p = os.path.join(out, "nan.npy"); np.save(p, a); case("diag", p, "NaN")
p = os.path.join(out, "truncated.npz")
np.savez_compressed(p, input_layer1=np.zeros((4, 16, 16, 3), np.float32))
open(p, "wb").write(open(p, "rb").read()[:-30]); case("diag", p, "truncated.npz")
p = os.path.join(out, "wrong_key.npz")
np.savez(p, images=np.zeros((4, 16, 16, 3), np.float32)); case("diag", p, "input_layer1")
