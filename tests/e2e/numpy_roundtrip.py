#!/usr/bin/python3
"""numpy side of the .npy/.npz round trip (tests/e2e/numpy_roundtrip.sh).

  gen DIR      write .npy/.npz files with numpy (every dtype, both orders and byte orders,
               header versions 1-3, savez, savez_compressed, zip64) and DIR/manifest.tsv
               that says what hq must read from each; plus files hq must refuse.
  check DIR    after hq read the files and wrote DIR/out/*, check with numpy what hq wrote.
  corpus ROOT  write the fuzz seed corpora ROOT/npy and ROOT/npz (small files).

Manifest lines (tab separated):
  npy  FILE  -    DTYPE  SHAPE  RAW    hq reads FILE as DTYPE/SHAPE with C-order LE bytes RAW
  npz  FILE  KEY  DTYPE  SHAPE  RAW    same for member KEY of FILE
  refuse FILE FIELD                    hq must refuse FILE with a message naming FIELD
SHAPE is comma separated ('' for a scalar).
"""
import io
import os
import sys
import zipfile

import numpy as np

DTYPES = ["f4", "f8", "f2", "u1", "i1", "u2", "i2", "i4", "i8", "b1"]


def values(code, shape):
    n = int(np.prod(shape))
    base = np.arange(n, dtype=np.float64).reshape(shape)
    if code == "b1":
        return (base.astype(np.int64) % 3 == 0)
    if code[0] == "f":
        return (base * 0.75 - n / 3).astype(code)
    if code[0] == "i":
        info = np.iinfo(code)
        out = (base * 37 - n * 10).astype(np.int64)
        out.flat[0] = info.min
        out.flat[-1] = info.max
        return out.astype(code)
    info = np.iinfo(code)
    out = (base * 37).astype(np.int64) % (int(info.max) + 1)
    out.flat[-1] = info.max
    return out.astype(code)


def canonical(a):
    """What hq should hold in memory: C order, little endian."""
    a = np.asarray(a)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return a.copy(order="C")  # (ascontiguousarray would turn a scalar into shape (1,))


def variants():
    """(name, array) pairs covering dtypes, orders, byte orders and shapes."""
    for code in DTYPES:
        for order in "CF":
            for endian in "<>":
                if endian == ">" and code in ("u1", "i1", "b1"):
                    continue
                a = values(code, (2, 3, 4))
                a = a.astype(a.dtype.newbyteorder(endian)) if endian == ">" else a
                a = np.asfortranarray(a) if order == "F" else np.ascontiguousarray(a)
                yield "%s_%s_%s" % (code, order, "be" if endian == ">" else "le"), a
    yield "scalar_f8", np.array(2.5)
    yield "vector_i4", values("i4", (7,))
    yield "empty_f4", np.zeros((0, 3), dtype="f4")
    yield "eight_dims_u1", values("u1", (1, 2, 1, 3, 1, 2, 1, 2))
    yield "fortran_2d_f4_be", np.asfortranarray(values("f4", (5, 3)).astype(">f4"))
    yield "nhwc_u1", values("u1", (2, 4, 4, 3))


def write_manifest_line(m, kind, fname, key, a, raw_dir):
    c = canonical(a)
    raw = "%s.%s.raw" % (fname, key.replace("/", "_").replace(":", "_"))
    with open(os.path.join(raw_dir, raw), "wb") as f:
        f.write(c.tobytes(order="C"))
    m.write("\t".join([kind, fname, key, c.dtype.name, ",".join(str(d) for d in c.shape), raw])
            + "\n")


def gen(d):
    m = open(os.path.join(d, "manifest.tsv"), "w")
    for name, a in variants():
        fname = name + ".npy"
        np.save(os.path.join(d, fname), a)
        write_manifest_line(m, "npy", fname, "-", a, d)
    # header versions 2.0 and 3.0
    for version in ((2, 0), (3, 0)):
        a = values("i2", (3, 5))
        fname = "version_%d.npy" % version[0]
        with open(os.path.join(d, fname), "wb") as f:
            np.lib.format.write_array(f, a, version=version)
        write_manifest_line(m, "npy", fname, "-", a, d)
    # '=' (native) byte order, which numpy itself never writes
    a = values("i4", (2, 2))
    buf = io.BytesIO()
    np.save(buf, a)
    with open(os.path.join(d, "native_order.npy"), "wb") as f:
        f.write(buf.getvalue().replace(b"'<i4'", b"'=i4'", 1))
    write_manifest_line(m, "npy", "native_order.npy", "-", a, d)

    params = {
        "net/conv1/kernel:0": values("f4", (3, 3, 3, 8)),
        "net/conv1/bias:0": values("f4", (8,)),
        "stats/output_0/stats_limvals:0": np.array([-1.5, 6.0], dtype="f4"),
        "fortran_be": np.asfortranarray(values("i2", (4, 3)).astype(">i2")),
        "flags": values("b1", (5,)),
        "step": np.array(7, dtype=np.int64),
    }
    for fname, save in (("savez.npz", np.savez), ("savez_compressed.npz", np.savez_compressed)):
        save(os.path.join(d, fname), **params)
        for key, a in params.items():
            write_manifest_line(m, "npz", fname, key, a, d)

    # zip64 everywhere: extra fields in local and central headers, zip64 end of central
    # directory record and locator (zipfile only writes them past its limits, so lower them)
    saved = zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT
    zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = -1, 0
    try:
        for fname, method in (("zip64_stored.npz", zipfile.ZIP_STORED),
                              ("zip64_deflated.npz", zipfile.ZIP_DEFLATED)):
            with zipfile.ZipFile(os.path.join(d, fname), "w", method) as z:
                for key, a in params.items():
                    with z.open(key + ".npy", "w", force_zip64=True) as f:
                        np.lib.format.write_array(f, a)
            for key, a in params.items():
                write_manifest_line(m, "npz", fname, key, a, d)
    finally:
        zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = saved
    with zipfile.ZipFile(os.path.join(d, "zip64_stored.npz")) as z:
        assert z.infolist()[-1].header_offset > 0  # sanity: the archive is readable by zipfile

    # files hq must refuse, each naming the field at fault
    refusals = {
        "complex.npy": (np.zeros(3, dtype=np.complex64), "descr"),
        "object.npy": (np.array([None, 1], dtype=object), "descr"),
        "unicode.npy": (np.array(["ab", "c"]), "descr"),
        "structured.npy": (np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]), "descr"),
        "nine_dims.npy": (np.zeros((1,) * 9, dtype="f4"), "shape"),
        "uint32.npy": (np.zeros(2, dtype="u4"), "descr"),
    }
    for fname, (a, field) in refusals.items():
        np.save(os.path.join(d, fname), a, allow_pickle=True)
        m.write("refuse\t%s\t%s\n" % (fname, field))
    # a header that lies about its data
    buf = io.BytesIO()
    np.save(buf, np.zeros((10, 10), dtype="f8"))
    with open(os.path.join(d, "truncated.npy"), "wb") as f:
        f.write(buf.getvalue()[:-8])
    m.write("refuse\ttruncated.npy\tshape\n")
    m.close()


def check(d):
    out = os.path.join(d, "out")
    if not os.path.exists(os.path.join(out, "DONE")):
        sys.exit("hq did not run the round trip (no %s/DONE)" % out)
    failures = 0
    checked = 0
    npz_files = {}
    for line in open(os.path.join(d, "manifest.tsv")):
        f = line.rstrip("\n").split("\t")
        if f[0] == "npy":
            orig = canonical(np.load(os.path.join(d, f[1])))
            path = os.path.join(out, f[1])
            got = np.load(path)
            if got.dtype != orig.dtype or got.shape != orig.shape or not np.array_equal(
                    got, orig, equal_nan=orig.dtype.kind == "f"):
                print("FAIL %s: hq wrote %s %s" % (f[1], got.dtype, got.shape))
                failures += 1
            # and byte for byte what numpy writes for the same array
            buf = io.BytesIO()
            np.save(buf, orig)
            if open(path, "rb").read() != buf.getvalue():
                print("FAIL %s: hq's bytes differ from numpy.save" % f[1])
                failures += 1
            checked += 1
        elif f[0] == "npz":
            npz_files.setdefault(f[1], []).append(f[2])
    for fname, keys in npz_files.items():
        with np.load(os.path.join(d, fname)) as orig:
            for variant in ("stored", "deflated", "zip64"):
                path = os.path.join(out, "%s.%s.npz" % (fname, variant))
                with zipfile.ZipFile(path) as z:
                    methods = {i.compress_type for i in z.infolist()}
                    want = zipfile.ZIP_STORED if variant == "stored" else zipfile.ZIP_DEFLATED
                    if methods != {want} or z.testzip() is not None:
                        print("FAIL %s: methods %s or bad CRC" % (path, methods))
                        failures += 1
                zip64 = b"PK\x06\x06" in open(path, "rb").read()
                if zip64 != (variant == "zip64"):
                    print("FAIL %s: zip64 end record %s" % (path, "present" if zip64 else "absent"))
                    failures += 1
                with np.load(path) as got:
                    if list(got.keys()) != keys:
                        print("FAIL %s: keys %s, expected %s" % (path, list(got.keys()), keys))
                        failures += 1
                        continue
                    for key in keys:
                        a, b = canonical(orig[key]), got[key]
                        if a.dtype != b.dtype or a.shape != b.shape or not np.array_equal(a, b):
                            print("FAIL %s[%s]" % (path, key))
                            failures += 1
                        checked += 1
    print("numpy checked %d arrays written by hq, %d failures" % (checked, failures))
    sys.exit(1 if failures or checked == 0 else 0)


def corpus(root):
    npy = os.path.join(root, "npy")
    npz = os.path.join(root, "npz")
    os.makedirs(npy, exist_ok=True)
    os.makedirs(npz, exist_ok=True)
    small = {
        "f4_c_le": values("f4", (2, 3)),
        "f8_f_be": np.asfortranarray(values("f8", (2, 3)).astype(">f8")),
        "f2_scalar": np.array(1.5, dtype="f2"),
        "u1_nhwc": values("u1", (1, 2, 2, 3)),
        "i2_f_be_3d": np.asfortranarray(values("i2", (2, 2, 3)).astype(">i2")),
        "i8_empty": np.zeros((0, 4), dtype="i8"),
        "b1_vec": values("b1", (9,)),
        "u2_8dims": values("u2", (1, 2, 1, 2, 1, 1, 2, 1)),
    }
    for name, a in small.items():
        np.save(os.path.join(npy, name + ".npy"), a)
    with open(os.path.join(npy, "i4_version3.npy"), "wb") as f:
        np.lib.format.write_array(f, values("i4", (3,)), version=(3, 0))
    buf = io.BytesIO()
    np.save(buf, values("i1", (4,)))
    with open(os.path.join(npy, "descr_native.npy"), "wb") as f:
        f.write(buf.getvalue().replace(b"'|i1'", b"'=i1'"))
    with open(os.path.join(npy, "truncated.npy"), "wb") as f:
        f.write(buf.getvalue()[:-1])
    np.save(os.path.join(npy, "complex.npy"), np.zeros(2, dtype="c8"))

    params = {"net/conv1/kernel:0": values("f4", (2, 2, 1, 2)),
              "bias": values("i4", (2,)), "f": np.asfortranarray(values("u2", (2, 3)))}
    np.savez(os.path.join(npz, "savez.npz"), **params)
    np.savez_compressed(os.path.join(npz, "savez_compressed.npz"), **params)
    np.savez(os.path.join(npz, "empty.npz"))
    saved = zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT
    zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = -1, 0
    try:
        with zipfile.ZipFile(os.path.join(npz, "zip64.npz"), "w", zipfile.ZIP_DEFLATED) as z:
            for key, a in params.items():
                with z.open(key + ".npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, a)
    finally:
        zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = saved
    with zipfile.ZipFile(os.path.join(npz, "comment_and_dir.npz"), "w") as z:
        z.writestr("dir/", b"")
        buf = io.BytesIO()
        np.save(buf, values("i1", (3,)))
        z.writestr("dir/x.npy", buf.getvalue())
        z.comment = b"a comment after the end record"
    raw = open(os.path.join(npz, "savez.npz"), "rb").read()
    with open(os.path.join(npz, "bad_crc.npz"), "wb") as f:
        i = raw.index(b"NUMPY") + 100
        f.write(raw[:i] + bytes([raw[i] ^ 1]) + raw[i + 1:])


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("gen", "check", "corpus"):
        sys.exit(__doc__)
    {"gen": gen, "check": check, "corpus": corpus}[sys.argv[1]](sys.argv[2])
