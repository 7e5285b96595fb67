#!/usr/bin/env bash
# hq compile / hq run on bad input: a corrupted program (flipped byte, truncated, wrong version,
# an offset out of range under a valid checksum, not a program) is refused by `hq run` with ONE
# line on stderr, exit 2, and no output file; an
# archive that is not quantized is refused by `hq compile` and nothing is written.
set -euo pipefail
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
"$HQ" parse "$HQ_SOURCE_DIR/tests/fixtures/onnx/conv.onnx" -o "$tmp/m.har" >/dev/null
"$py" -c "import numpy as np; np.save('$tmp/d.npy', np.random.RandomState(1).randn(4,4,4,2).astype(np.float32))"

# compile refuses a parsed (not quantized) archive
if "$HQ" compile "$tmp/m.har" -o "$tmp/bad.hqx" 2>"$tmp/err"; then echo "compile accepted a parsed archive"; fail=1; fi
[ "$(wc -l <"$tmp/err")" -eq 1 ] || { echo "compile: expected one line:"; cat "$tmp/err"; fail=1; }
grep -q "quantized" "$tmp/err" || { echo "compile: message does not say why:"; cat "$tmp/err"; fail=1; }
[ ! -e "$tmp/bad.hqx" ] && [ ! -e "$tmp/m_compiled.har" ] || { echo "compile wrote files on failure"; fail=1; }

"$HQ" optimize "$tmp/m.har" -d "$tmp/d.npy" -o "$tmp/q.har" >/dev/null
"$HQ" compile "$tmp/q.har" -o "$tmp/ok.hqx" >/dev/null
"$HQ" run "$tmp/ok.hqx" -d "$tmp/d.npy" -o "$tmp/ok.npz" >/dev/null

# refused <file> <expected words> <what>
refused() {
    rm -f "$tmp/out.npz"
    local code=0
    "$HQ" run "$1" -d "$tmp/d.npy" -o "$tmp/out.npz" 2>"$tmp/err" >/dev/null || code=$?
    if [ $code -ne 2 ]; then echo "$3: exit $code, expected 2"; fail=1; fi
    if [ "$(wc -l <"$tmp/err")" -ne 1 ]; then echo "$3: expected one line on stderr:"; cat "$tmp/err"; fail=1; fi
    if ! grep -q "$2" "$tmp/err"; then echo "$3: message lacks '$2':"; cat "$tmp/err"; fail=1; fi
    if [ -e "$tmp/out.npz" ]; then echo "$3: wrote an output"; fail=1; fi
    echo "$3: $(cat "$tmp/err")"
}
size=$(stat -c %s "$tmp/ok.hqx")
"$py" - "$tmp" "$size" <<'PY'
import struct, sys
tmp, size = sys.argv[1], int(sys.argv[2])
data = bytearray(open(tmp + "/ok.hqx", "rb").read())
flip = bytearray(data); flip[size // 2] ^= 0x40; open(tmp + "/flip.hqx", "wb").write(flip)
open(tmp + "/trunc.hqx", "wb").write(data[: size - 7])
ver = bytearray(data); struct.pack_into("<I", ver, 8, 9); open(tmp + "/version.hqx", "wb").write(ver)
open(tmp + "/text.hqx", "wb").write(b"this is not a program" * 20)


def resealed(d):  # FNV-1a-64 over the file with the checksum bytes read as zero
    d[24:32] = bytes(8)
    h = 0xcbf29ce484222325
    for x in d:
        h = ((h ^ x) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    struct.pack_into("<Q", d, 24, h)
    return d


oob = bytearray(data); struct.pack_into("<Q", oob, 88, size + 64)   # ops_offset past the end
open(tmp + "/oob.hqx", "wb").write(resealed(oob))
PY
refused "$tmp/flip.hqx" "checksum mismatch" "flipped byte"
refused "$tmp/trunc.hqx" "truncated" "truncated"
refused "$tmp/version.hqx" "version 9" "wrong version"
refused "$tmp/text.hqx" "bad magic" "not a program"
refused "$tmp/oob.hqx" "out of bounds" "offset out of range (valid checksum)"
refused "$tmp/missing.hqx" "No such file" "missing file"
[ $fail -eq 0 ] && echo "deploy_cli: all bad programs refused with one line"
exit $fail
