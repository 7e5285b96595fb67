#!/usr/bin/env bash
# channel_shuffle end to end, on a ShuffleNetV2-style block written by make_shuffle_har.py: the
# float emulation (reference and fast kernels) equals numpy's ONNX-style Reshape-Transpose-Reshape
# within 1e-4; quantized, at 8 bits and with 16-bit activations, `hq run` of the compiled program
# (1 and 2 threads) and of the compiled archive writes the very bytes of
# `hq emulate --target quantized`; the program is format version 2 (it uses transpose_view; that a
# program without one stays version 1 is checked by tests/unit/test_hqrt.c and by every other
# deploy test's unchanged bytes).
set -euo pipefail
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=$HQ_SOURCE_DIR
: >"$tmp/names"
. "$src/tests/fixtures/deploy/compare.sh"

"$py" "$src/tests/e2e/make_shuffle_har.py" "$tmp"
for kernels in reference fast; do
    HQ_EMULATE_KERNELS=$kernels "$HQ" emulate "$tmp/shuffle.har" --target native \
        -d "$tmp/shuffle_in.npy" -o "$tmp/native_$kernels.npz" >/dev/null
done

"$HQ" optimize "$tmp/shuffle.har" -d "$tmp/shuffle_calib.npy" -o "$tmp/shuffle8_q.har" >/dev/null
compare shuffle8 "$tmp/shuffle_in.npy"
cat >"$tmp/a16.alls" <<'ALLS'
quantization_param(conv3, precision_mode=a16_w16)
ALLS
"$HQ" optimize "$tmp/shuffle.har" -d "$tmp/shuffle_calib.npy" -o "$tmp/shuffle16_q.har" \
    -m "$tmp/a16.alls" >/dev/null
compare shuffle16 "$tmp/shuffle_in.npy"

"$py" - "$tmp" <<'PY'
import os
import sys
import numpy as np
sys.path.insert(0, os.environ["HQ_SOURCE_DIR"] + "/tests/fixtures/deploy")
import compare
tmp = sys.argv[1]
ok = True
expect = np.load(tmp + "/shuffle_expect.npy")
for kernels in ("reference", "fast"):
    got = np.load(tmp + "/native_%s.npz" % kernels)
    y = got[got.files[0]]
    diff = np.abs(y.astype(np.float64) - expect).max()
    print("native emulation (%s kernels) vs numpy: max diff %.3g" % (kernels, diff))
    ok &= y.shape == expect.shape and diff <= 1e-4
for name in compare.names(tmp):
    emu = np.load(tmp + "/%s_emu.npz" % name)
    differ = compare.differences(tmp, name)
    for label in compare.LABELS:
        print("%s: %s %s hq emulate --target quantized" % (name, label,
              "DIFFERS FROM" if label in differ else "equals"))
        for line in differ.get(label, []):
            print(line)
    ok &= not differ
    # the quantized output still follows the float one: mean error about 0.2% of the range,
    # where channels in another order would be off by over 10%
    q = emu[emu.files[0]].astype(np.float64)
    err = np.abs(q - expect).mean() / np.abs(expect).max()
    print("%s: quantized vs numpy float: mean error %.3g of the range" % (name, err))
    ok &= err < 0.01
    version = int.from_bytes(open(tmp + "/%s.hqx" % name, "rb").read()[8:12], "little")
    print("%s.hqx: format version %d" % (name, version))
    ok &= version == 2
sys.exit(0 if ok else 1)
PY
