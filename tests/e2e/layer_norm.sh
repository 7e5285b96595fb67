#!/usr/bin/env bash
# layer_norm end to end, on the network make_layer_norm_har.py writes (conv, layer_norm, conv,
# layer_norm): the float emulation (reference and fast kernels) equals numpy's ONNX-style
# LayerNormalization within 1e-4; quantized at 8 bits and with 16-bit input and output on the
# first layer_norm, `hq run` of
# the compiled program (1 and 2 threads) and of the compiled archive writes the very bytes of
# `hq emulate --target quantized` (reference and default kernels); the program is format
# version 3 (it uses the layer_norm op). Accuracy at 8 bits against the float network: the
# output's SQNR is above 30 dB, and the first layer_norm alone (its integer output against the
# float formula applied to its own quantized input) above 35 dB (measured: 32.0 and 39.3 dB).
set -euo pipefail
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=$HQ_SOURCE_DIR
: >"$tmp/names"
. "$src/tests/fixtures/deploy/compare.sh"

"$py" "$src/tests/e2e/make_layer_norm_har.py" "$tmp"
for kernels in reference fast; do
    HQ_EMULATE_KERNELS=$kernels "$HQ" emulate "$tmp/lnorm.har" --target native \
        -d "$tmp/lnorm_in.npy" -o "$tmp/native_$kernels.npz" >/dev/null
done

"$HQ" optimize "$tmp/lnorm.har" -d "$tmp/lnorm_calib.npy" -o "$tmp/lnorm8_q.har" >/dev/null
compare lnorm8 "$tmp/lnorm_in.npy"
"$HQ" emulate "$tmp/lnorm8_q.har" --target quantized -d "$tmp/lnorm_in.npy" --tap conv1 \
    --tap norm1 -o "$tmp/lnorm8_taps.npz" >/dev/null
cat >"$tmp/a16.alls" <<'ALLS'
quantization_param(conv1, precision_mode=a16_w16)
quantization_param(norm1, precision_mode=a16_w16)
ALLS
"$HQ" optimize "$tmp/lnorm.har" -d "$tmp/lnorm_calib.npy" -o "$tmp/lnorm16_q.har" \
    -m "$tmp/a16.alls" >/dev/null
compare lnorm16 "$tmp/lnorm_in.npy"

"$py" - "$tmp" <<'PY'
import io
import os
import sys
import tarfile
import numpy as np
sys.path.insert(0, os.environ["HQ_SOURCE_DIR"] + "/tests/fixtures/deploy")
import compare
tmp = sys.argv[1]
ok = True
expect = np.load(tmp + "/lnorm_expect.npy").astype(np.float64)


def sqnr(ref, got):
    return 10 * np.log10((ref ** 2).sum() / ((ref - got) ** 2).sum())


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
    q = emu[emu.files[0]].astype(np.float64)
    s = sqnr(expect, q)
    print("%s: output SQNR against the float network %.1f dB" % (name, s))
    ok &= s > 30
    version = int.from_bytes(open(tmp + "/%s.hqx" % name, "rb").read()[8:12], "little")
    print("%s.hqx: format version %d" % (name, version))
    ok &= version == 3
# the first layer_norm alone: its codes against the float formula on its own quantized input
taps = np.load(tmp + "/lnorm8_taps.npz")
x = taps["lnorm/conv1"].astype(np.float64)
params = np.load(io.BytesIO(tarfile.open(tmp + "/lnorm.har").extractfile("lnorm.npz").read()))
g, b = (params["lnorm/norm1/%s:0" % k].astype(np.float64) for k in ("gamma", "beta"))
mean = x.mean(-1, keepdims=True)
ref = (x - mean) / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + 1e-5) * g + b
s = sqnr(ref, taps["lnorm/norm1"].astype(np.float64))
print("lnorm8: norm1 alone, SQNR against the float formula on its quantized input %.1f dB" % s)
ok &= s > 35
sys.exit(0 if ok else 1)
PY
