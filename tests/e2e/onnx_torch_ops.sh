#!/usr/bin/env bash
# Torch exports of the ops real networks need beyond the basic set (tests/models/torch_op_cases.py,
# Debian's torch, built in a temporary folder): hq parse gives the expected layers (a
# ShuffleNetV2 block's Reshape -> Transpose -> Reshape is one channel_shuffle, x.mean([2, 3]) one
# global_avg_pool, MaxPool2d with dilation 2 one dilated maxpool, PReLU with a [C, 1, 1] or [1]
# slope fuses into the conv, torch.nn.GELU's
# Div/Erf/Add/Mul/Mul becomes the conv's gelu activation) and hq emulate (native) on the NHWC data
# equals torch's output: |hq - torch| <= 1e-4 * max|torch| + 1e-5; the GELU model quantized
# (hq optimize) gives the same bytes in quantized emulation (reference and default kernels) as
# hq compile + hq run. Skipped (exit 0 with a note) only when
# /usr/bin/python3 cannot import torch and torchvision.
set -euo pipefail
. "$HQ_SOURCE_DIR/tests/fixtures/onnx/e2e_prelude.sh"
need_python onnx_torch_ops torch torchvision
make_scratch
cd "$tmp"
cases="shuffle_block shufflenet_v2_x0_5 mnasnet0_5 reduce_mean_keep pool_dilated prelu_slopes gelu"
"$py" "$HQ_SOURCE_DIR/tests/models/torch_op_cases.py" . $cases 2>/dev/null
status=0
fail() { echo "FAIL $*"; status=1; }

# layer counts by type that each parse must give
declare -A want=([shuffle_block]="channel_shuffle=1 transpose=0 reshape=0"
                 [shufflenet_v2_x0_5]="channel_shuffle=16 transpose=0 reshape=0 global_avg_pool=1"
                 [mnasnet0_5]="global_avg_pool=1 reshape=0"
                 [reduce_mean_keep]="global_avg_pool=1"
                 [pool_dilated]="conv=2 maxpool=1"
                 [prelu_slopes]="conv=2 activation=0"
                 [gelu]="conv=2 activation=0 ew_mult=0 ew_div=0 ew_add=0")
for m in $cases; do
    "$HQ" parse "$m.onnx" -o "$m.har" >/dev/null || { fail "$m: hq parse"; continue; }
    "$HQ" info "$m.har" >"$m.info"
    for w in ${want[$m]}; do
        got=$(awk -v t="${w%=*}" -v p="$m/" 'index($1, p) == 1 && $2 == t' "$m.info" | wc -l)
        [ "$got" = "${w#*=}" ] || fail "$m: $got ${w%=*} layers, not ${w#*=}"
    done
    "$HQ" emulate "$m.har" -d "$m.input.npy" -o "$m.npz" >/dev/null
    "$py" - "$m.npz" "$m.output.npy" "$m" <<'PY' || status=1
import sys
import numpy as np
out = np.load(sys.argv[1])
got = out[list(out.keys())[0]].astype(np.float64)
ref = np.load(sys.argv[2]).astype(np.float64)
if got.shape != ref.shape:
    print("FAIL %s: hq output %s, torch %s" % (sys.argv[3], got.shape, ref.shape))
    sys.exit(1)
err = np.abs(got - ref).max()
bound = 1e-4 * np.abs(ref).max() + 1e-5
print("%s: %s, max|hq - torch| %.3g, max|ref| %.4g, bound %.3g" % (
    sys.argv[3], got.shape, err, np.abs(ref).max(), bound))
sys.exit(0 if err <= bound else 1)
PY
done

# GELU: both convs carry it; quantized emulation and the compiled program agree bit for bit
"$py" - gelu.har <<'PY' || fail "gelu: the convs do not carry the gelu activation"
import json, sys, tarfile
t = tarfile.open(sys.argv[1])
hn = json.load(t.extractfile([m for m in t.getmembers() if m.name.endswith(".hn")][0]))
acts = {k: v.get("params", {}).get("activation") for k, v in hn["layers"].items()}
sys.exit(0 if acts["gelu/conv1"] == acts["gelu/conv2"] == "gelu" else 1)
PY
"$HQ" optimize gelu.har -d gelu.input.npy -o gelu_q.har >/dev/null 2>&1
"$HQ" compile gelu_q.har -o gelu.hqx >/dev/null
HQ_EMULATE_KERNELS=reference "$HQ" emulate gelu_q.har --target quantized -d gelu.input.npy \
    -o gelu_emu.npz >/dev/null
"$HQ" emulate gelu_q.har --target quantized -d gelu.input.npy -o gelu_emufast.npz >/dev/null
"$HQ" run gelu.hqx -d gelu.input.npy -o gelu_run.npz -j 2 >/dev/null
"$py" - <<'PY' || status=1
import sys
import numpy as np
emu = np.load("gelu_emu.npz")
ok = True
for label in ("emufast", "run"):
    got = np.load("gelu_%s.npz" % label)
    for k in emu.files:
        if got[k].dtype != emu[k].dtype or got[k].tobytes() != emu[k].tobytes():
            print("FAIL gelu: %s differs from quantized emulation in %s" % (label, k))
            ok = False
ref = np.load("gelu.output.npy").astype(np.float64)
got = emu[emu.files[0]].astype(np.float64)
print("gelu quantized: bit-exact with hq run %s, max|q - torch| %.3g of max|torch| %.4g" % (
    ok, np.abs(got - ref).max(), np.abs(ref).max()))
sys.exit(0 if ok else 1)
PY

exit $status
