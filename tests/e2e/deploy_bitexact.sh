#!/usr/bin/env bash
# The deploy runtime is bit-exact with quantized emulation on every model the test suite quantizes
# from its committed fixtures: for each, `hq run` on the compiled program (libhqrt: AVX-512 VNNI or
# AVX2 kernels where they apply, the shared reference kernels elsewhere) at 1 and 2 threads, and
# on the compiled archive, writes the very bytes of `hq emulate --target quantized` on the same
# inputs (the emulation with HQ_EMULATE_KERNELS=reference, i.e. the scalar reference kernels;
# the default emulation, whose conv/dense layers run the runtime's fast kernels, is compared too,
# as "emufast"). Models: the conv fixture; the sample model with its model script (and with
# iterative bias correction); small_cnn with the optimize test's precision script (a16_w16,
# a16_w16_a8, a8_w8_a16 layers), with 4-bit compression, and with 4-bit compression and AdaRound or finetune;
# the inspector fixtures (tests/fixtures/inspectors/data: 4-bit weights, LUT
# activations, two outputs, concat heads); and every ONNX pattern case that quantizes (a case that
# `hq emulate --target quantized` refuses must be refused by `hq compile` too). The test also
# checks that the models compared cover a8_w8, a16_w16 and 4-bit-weight layers.
# Real models (resnet18, mobilenet_v2, PP-OCR det and cls): tests/e2e/deploy_bitexact_real.sh.
set -euo pipefail
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=$HQ_SOURCE_DIR
status=0
: >"$tmp/names"

# quantize NAME ONNX CALIB.npy INPUT.npy SCRIPT.alls|-: parse, optimize, compile, emulate, run
quantize() {
    local name=$1 onnx=$2 calib=$3 input=$4 script=$5
    local extra=()
    [ "$script" != "-" ] && extra=(-m "$script")
    "$HQ" parse "$onnx" -o "$tmp/$name.har" >/dev/null
    "$HQ" optimize "$tmp/$name.har" -d "$calib" -o "$tmp/${name}_q.har" "${extra[@]}" >/dev/null
    compare "$name" "$input"
}

# compare NAME INPUT.npy: $tmp/NAME_q.har compiled, emulated and run
. "$src/tests/fixtures/deploy/compare.sh"

# inputs: random data for the fixtures without a calibration set, first samples of the others
"$py" - "$tmp" "$src" <<'PY'
import sys
import numpy as np
tmp, src = sys.argv[1], sys.argv[2]
r = np.random.RandomState(7)
np.save(tmp + "/conv.npy", (r.rand(16, 4, 4, 2) * 2 - 0.5).astype(np.float32))
np.save(tmp + "/small_calib.npy", r.uniform(0, 255, (20, 16, 16, 3)).astype(np.float32))
np.save(tmp + "/small_in.npy", r.uniform(-20, 280, (3, 16, 16, 3)).astype(np.float32))
np.save(tmp + "/sample_in.npy", np.load(src + "/samples/sample_calib.npy")[:6])
rgb = np.load(src + "/tests/fixtures/inspectors/data/calib_rgb.npy")
np.save(tmp + "/rgb.npy", rgb)
np.save(tmp + "/rgb_in.npy", rgb[-4:].astype(np.float32))
PY

quantize conv "$src/tests/fixtures/onnx/conv.onnx" "$tmp/conv.npy" "$tmp/conv.npy" -
quantize sample "$src/samples/sample.onnx" "$src/samples/sample_calib.npy" "$tmp/sample_in.npy" \
    "$src/samples/sample_correct.alls"

# the sample again, its integer biases corrected iteratively on the quantized network
cat "$src/samples/sample_correct.alls" >"$tmp/iterative.alls"
echo 'post_quantization_optimization(bias_correction, policy=enabled, mode=iterative)' \
    >>"$tmp/iterative.alls"
quantize sample_iterative "$src/samples/sample.onnx" "$src/samples/sample_calib.npy" \
    "$tmp/sample_in.npy" "$tmp/iterative.alls"

# small_cnn: the optimize test's mixed-precision script, then 4-bit compression
cat >"$tmp/mixed.alls" <<'ALLS'
norm1 = normalization([127.5, 127.5, 127.5], [64.0, 64.0, 64.0])
quantization_param(conv1, precision_mode=a16_w16)
model_optimization_config(calibration, batch_size=4, calibset_size=16)
ALLS
cat >"$tmp/w4.alls" <<'ALLS'
norm1 = normalization([127.5, 127.5, 127.5], [64.0, 64.0, 64.0])
model_optimization_flavor(compression_level=3)
ALLS
quantize small_mixed "$src/tests/fixtures/optimize/small_cnn.onnx" "$tmp/small_calib.npy" \
    "$tmp/small_in.npy" "$tmp/mixed.alls"
quantize small_w4 "$src/tests/fixtures/optimize/small_cnn.onnx" "$tmp/small_calib.npy" \
    "$tmp/small_in.npy" "$tmp/w4.alls"
# ... and with AdaRound on every weighted layer (only the integer kernels and biases change)
cat "$tmp/w4.alls" >"$tmp/w4_adaround.alls"
echo 'post_quantization_optimization(adaround, policy=enabled, mode=train_all, epochs=4)' \
    >>"$tmp/w4_adaround.alls"
quantize small_w4_adaround "$src/tests/fixtures/optimize/small_cnn.onnx" "$tmp/small_calib.npy" \
    "$tmp/small_in.npy" "$tmp/w4_adaround.alls"
# ... and with finetune (block-wise reconstruction) trained longer than level 2's default: again
# only the integer kernels and biases change
cat "$tmp/w4.alls" >"$tmp/w4_finetune.alls"
echo 'post_quantization_optimization(finetune, policy=enabled, epochs=16)' >>"$tmp/w4_finetune.alls"
quantize small_w4_finetune "$src/tests/fixtures/optimize/small_cnn.onnx" "$tmp/small_calib.npy" \
    "$tmp/small_in.npy" "$tmp/w4_finetune.alls"

# the inspector fixtures, with the scripts their tests quantize them with
ins="$src/tests/fixtures/inspectors/data"
quantize bn_w4 "$ins/bn_net.onnx" "$tmp/rgb.npy" "$tmp/rgb_in.npy" "$ins/compress_explicit.alls"
quantize bn_auto4 "$ins/bn_net.onnx" "$tmp/rgb.npy" "$tmp/rgb_in.npy" "$ins/compress_implicit.alls"
quantize hp "$ins/hp_net.onnx" "$tmp/rgb.npy" "$tmp/rgb_in.npy" "$ins/hp.alls"
for net in nobn_net concat_net twoout_net tail_net edge_bn_net bounded_net silu_net; do
    quantize "$net" "$ins/$net.onnx" "$tmp/rgb.npy" "$tmp/rgb_in.npy" "$ins/norm_ok.alls"
done

# per-code chains fused into the producing conv's output stage (docs/deploy.md "Stage fusion"):
# conv -> relu -> x*c -> +c -> sigmoid, conv -> +c -> hardswish -> x*c (a graph output), and a
# conv whose output two layers read (not fused); the bytes are compared as for every model, and
# the program must hold no elementwise or lookup op of the fused chains (hq run --stats)
"$py" - "$tmp" <<'PY'
import sys
import numpy as np
from onnx import TensorProto, helper, numpy_helper
tmp = sys.argv[1]
r = np.random.RandomState(11)
inits, nodes = [], []
def const(name, value):
    inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
    return name
def conv(name, x, cin, cout, k):
    w = const(name + "_w", r.randn(cout, cin, k, k) * 0.4)
    b = const(name + "_b", r.randn(cout) * 0.1)
    nodes.append(helper.make_node("Conv", [x, w, b], [name], pads=[k // 2] * 4))
    return name
def op(kind, name, *ins, **attrs):
    nodes.append(helper.make_node(kind, list(ins), [name], **attrs))
    return name
x = conv("c1", "x", 3, 8, 3)
x = op("Relu", "r1", x)
x = op("Mul", "m1", x, const("k1", 0.75))
x = op("Add", "a1", x, const("k2", -0.2))
x = op("Sigmoid", "s1", x)
y = conv("c2", x, 8, 6, 1)
y = op("Add", "a2", y, const("k3", 0.5))
y = op("HardSwish", "h2", y)
y = op("Mul", "out1", y, const("k4", 1.5))
z = conv("c3", x, 8, 4, 3)
z2 = op("Mul", "m3", z, const("k5", 0.6))
op("Add", "out2", z, z2)
g = helper.make_graph(nodes, "fuse_net",
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 12, 12])],
                      [helper.make_tensor_value_info("out1", TensorProto.FLOAT, [1, 6, 12, 12]),
                       helper.make_tensor_value_info("out2", TensorProto.FLOAT, [1, 4, 12, 12])],
                      inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])
m.ir_version = 7
open(tmp + "/fuse_net.onnx", "wb").write(m.SerializeToString())
np.save(tmp + "/fuse_calib.npy", r.uniform(-1, 1, (16, 12, 12, 3)).astype(np.float32))
np.save(tmp + "/fuse_in.npy", r.uniform(-1.2, 1.2, (5, 12, 12, 3)).astype(np.float32))
PY
quantize fuse_net "$tmp/fuse_net.onnx" "$tmp/fuse_calib.npy" "$tmp/fuse_in.npy" -
stats=$("$HQ" run "$tmp/fuse_net.hqx" -d "$tmp/fuse_in.npy" --stats -q)
fused_ew=$(sed -n 's/^stats: time eltwise .*(\([0-9]*\) op runs)$/\1/p' <<<"$stats")
if [ "${fused_ew:-0}" != 10 ] || grep -qE '^stats: time (lut|activation) ' <<<"$stats"; then
    echo "fuse_net: expected only the unfused x*c and its sum as elementwise ops (2 per sample)," \
        "no lut or activation op; hq run --stats says:"
    echo "$stats"
    status=1
fi

# every ONNX pattern case that quantizes; the others must be refused by compile as by emulate
"$py" "$src/tests/models/pattern_cases.py" inputs "$src/tests/fixtures/onnx/patterns" "$tmp"
refused=0
while read -r case; do
    in="$tmp/$case.nhwc.npy"
    "$HQ" parse "$src/tests/fixtures/onnx/patterns/$case.onnx" -o "$tmp/p_$case.har" >/dev/null
    "$HQ" optimize "$tmp/p_$case.har" -d "$in" -o "$tmp/p_${case}_q.har" >/dev/null 2>&1 || continue
    if ! "$HQ" emulate "$tmp/p_${case}_q.har" --target quantized -d "$in" -o "$tmp/e.npz" \
        >/dev/null 2>"$tmp/emu_err"; then
        if "$HQ" compile "$tmp/p_${case}_q.har" -o "$tmp/p_$case.hqx" >/dev/null 2>"$tmp/err"; then
            echo "$case: hq emulate --target quantized refuses it ($(cat "$tmp/emu_err")) but hq compile accepts it"
            status=1
        fi
        refused=$((refused + 1))
        continue
    fi
    compare "p_$case" "$in"
done < <("$py" "$src/tests/models/pattern_cases.py" list)
echo "deploy_bitexact: $refused pattern case(s) not quantizable, refused alike by emulate and compile"

"$py" - "$tmp" <<'PY' || status=1
import json
import os
import sys
import tarfile
import numpy as np
sys.path.insert(0, os.environ["HQ_SOURCE_DIR"] + "/tests/fixtures/deploy")
import compare
tmp = sys.argv[1]
names = compare.names(tmp)
ok_all, modes = True, {}
for name in names:
    base = tmp + "/" + name
    emu = np.load(base + "_emu.npz")
    differ = compare.differences(tmp, name)
    for lines in differ.values():
        print("\n".join(lines))
    ok = not differ
    with tarfile.open(base + "_q.har") as t:
        hn = json.load(t.extractfile([m for m in t.getmembers() if m.name.endswith(".hn")][0]))
    layer_modes = set()
    for layer in hn["layers"].values():
        q = layer.get("quantization_params", {})
        mode = q.get("precision_mode", layer.get("precision_mode"))
        if mode and layer.get("type") in ("conv", "dense", "dw", "deconv"):
            layer_modes.add(mode)
    for m in layer_modes:
        modes.setdefault(m, []).append(name)
    print("%-45s %d output(s), %7d bytes: %s  [%s]" % (
        name, len(emu.files), sum(emu[k].nbytes for k in emu.files),
        "bit-exact (1 thread, 2 threads, compiled .har)" if ok else "MISMATCH",
        " ".join(sorted(layer_modes))))
    ok_all &= ok
need = {"a8_w8": lambda m: m == "a8_w8", "a16_w16*": lambda m: m.startswith("a16_w16"),
        "4-bit weights": lambda m: "_w4" in m}
for what, test in need.items():
    who = sorted({n for m, ns in modes.items() if test(m) for n in ns})
    print("coverage %-14s %s" % (what, "%d model(s): %s%s" % (len(who), ", ".join(who[:6]),
          ", ..." if len(who) > 6 else "") if who else "NONE"))
    if not who:
        ok_all = False
print("deploy_bitexact: %d model(s) compared" % len(names))
sys.exit(0 if ok_all and len(names) >= 20 else 1)
PY
exit $status
