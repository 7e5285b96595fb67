#!/usr/bin/env bash
# hq optimize end to end: a small ONNX CNN (tests/fixtures/optimize/small_cnn.onnx, made by
# make_small_cnn.py) is parsed, then quantized with a model script; the output archive must be in
# state quantized_model with the script, per-layer precision modes, integer params, statistics and
# compression keys. Bad inputs exit 2 with one line and write nothing.
set -euo pipefail
py=/usr/bin/python3
src="$HQ_SOURCE_DIR/tests/fixtures/optimize"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

"$HQ" parse "$src/small_cnn.onnx" -o small.har >/dev/null
"$py" -c "import numpy as np; np.save('calib.npy', np.random.RandomState(0).uniform(0, 255, (20, 16, 16, 3)).astype(np.float32))"
cat > model.alls <<'ALLS'
# e2e script
norm1 = normalization([127.5, 127.5, 127.5], [64.0, 64.0, 64.0])
quantization_param(conv1, precision_mode=a16_w16)
model_optimization_config(calibration, batch_size=4, calibset_size=16)
pre_quantization_optimization(activation_clipping, layers=[conv4], mode=percentile, clipping_values=[0.0, 99.9])
model_optimization_flavor(compression_level=1)
nms_postprocess(meta.json, meta_arch=yolov5)
nms_postprocess(other.json)
ALLS

"$HQ" optimize small.har -d calib.npy -m model.alls > log.txt
grep -q "conv2 raised to a16_w16_a8" log.txt
grep -q "feature_splitter1 raised to a16_w16" log.txt
[ "$(grep -c 'nms_postprocess: not applied' log.txt)" = 1 ]
grep -q "concat1: the inputs of the concat share one range" log.txt
grep -q "calibration: 16 sample(s) in batches of 4" log.txt
[ -f small_quantized.har ]   # the default output name

"$py" - <<'PY'
import io, json, tarfile
import numpy as np
t = tarfile.open("small_quantized.har")
names = t.getnames()
meta = json.load(t.extractfile("small_cnn.metadata.json"))
assert meta["state"] == "quantized_model", meta
for m in ("small_cnn.hn", "small_cnn.npz", "small_cnn.fpo.npz", "small_cnn.q.npz", "small_cnn.alls"):
    assert m in names, (m, names)
hn = json.load(t.extractfile("small_cnn.hn"))
layers = hn["layers"]
def mode(name):
    return layers["small_cnn/" + name]["quantization_params"]["precision_mode"] \
        if "quantization_params" in layers["small_cnn/" + name] else layers["small_cnn/" + name]["precision_mode"]
assert mode("conv1") == "a16_w16", mode("conv1")
assert mode("conv2") == "a16_w16_a8", mode("conv2")
assert mode("norm1") == "a8_w8_a16", mode("norm1")
assert layers["small_cnn/norm1"]["type"] == "normalization"
alls = t.extractfile("small_cnn.alls").read().decode()
assert "nms_postprocess(other.json)" in alls and "# e2e script" in alls, alls
q = np.load(io.BytesIO(t.extractfile("small_cnn.q.npz").read()))
fpo = np.load(io.BytesIO(t.extractfile("small_cnn.fpo.npz").read()))
assert "small_cnn/norm1/mean:0" in fpo.files
for layer in ("input_layer1", "norm1", "conv1", "concat1", "conv4", "dense1", "output_layer1"):
    p = "small_cnn/%s/" % layer
    for k in ("qp_scale:0", "qp_zp:0", "activation_bits:0", "stats/output_0/stats_limvals:0",
              "stats/output_0/histogram:0"):
        assert p + k in q.files, p + k
    assert q[p + "stats/output_0/histogram:0"].dtype == np.int64
    assert q[p + "stats/output_0/histogram:0"].shape == (100,)
for layer in ("conv1", "conv4", "dense1"):
    p = "small_cnn/%s/" % layer
    for k in ("kernel:0", "kernel_scale:0", "bias:0", "stats/preact_mean:0", "stats/preact_std:0"):
        assert p + k in q.files, p + k
assert int(q["small_cnn/conv1/activation_bits:0"][0]) == 16
assert int(q["small_cnn/conv2/activation_bits:0"][0]) == 8
# concat inputs share one range: same scale and zero point
for k in ("qp_scale:0", "qp_zp:0"):
    assert q["small_cnn/conv2/" + k][0] == q["small_cnn/conv3/" + k][0] == q["small_cnn/concat1/" + k][0], k
# compression level 1: 20% of the 1424 kernel weights at 4 bit, largest first among the 8-bit
# layers without an explicit mode: conv4 (864) overshoots, conv2/conv3 are 16-bit (raised),
# conv1 is explicit; conv5 (64) and dense1 (40) fit: 104 / 1424
assert int(q["small_cnn/compression/level:0"][0]) == 1
r = float(q["small_cnn/compression/ratio_4bit:0"][0])
assert abs(r - 104 / 1424) < 1e-6, r
assert int(q["small_cnn/conv5/weight_bits:0"][0]) == 4
assert int(q["small_cnn/conv4/weight_bits:0"][0]) == 8
assert mode("conv5") == "a8_w4", mode("conv5")
# the simple noise analysis ran at the end
assert "small_cnn/conv4/layer_noise_analysis/snr:0" in q.files
lim = q["small_cnn/conv4/stats/output_0/stats_limvals:0"]
assert lim[0] <= 0 < lim[1]
print("archive checks passed")
PY

# the fp-optimized float network runs, and the integer one stays close to it (SQNR of two
# inner layers; the sigmoid output saturates on this untrained model)
for t in fp_optimized quantized; do
    "$HQ" emulate small_quantized.har -d calib.npy --target $t -o $t.npz --tap conv4 --tap conv5 >/dev/null
done
"$py" - <<'PY'
import numpy as np
a, b = np.load("fp_optimized.npz"), np.load("quantized.npz")
for k in ("small_cnn/conv4", "small_cnn/conv5"):
    x, y = a[k].astype(np.float64), b[k].astype(np.float64)
    sqnr = 10 * np.log10((x ** 2).sum() / ((x - y) ** 2).sum())
    print("%s: SQNR %.1f dB" % (k, sqnr))
    assert sqnr > 20, (k, sqnr)
PY

# bad inputs: exit 2, one line, nothing written
expect_fail() {  # $1 = output path that must not appear, rest = command
    local out=$1; shift
    set +e
    "$@" >/dev/null 2>err.txt
    local rc=$?
    set -e
    [ $rc -eq 2 ] || { echo "expected exit 2, got $rc: $*"; cat err.txt; exit 1; }
    [ "$(wc -l <err.txt)" -eq 1 ] || { echo "expected one line: $*"; cat err.txt; exit 1; }
    [ ! -e "$out" ] || { echo "$out was written: $*"; exit 1; }
}
printf 'quantization_param(conv1, precision_mode=a16_w16)\nquantization_param(conv2, precision_mode=a8_w8)\n' > bad.alls
expect_fail bad.har "$HQ" optimize small.har -d calib.npy -m bad.alls -o bad.har
grep -q "conv1 -> feature_splitter1 -> conv2" err.txt
printf 'quantization_param(conv1, precision_mode=a7_w8)\n' > bad2.alls
expect_fail bad.har "$HQ" optimize small.har -d calib.npy -m bad2.alls -o bad.har
grep -q "bad2.alls:1" err.txt
expect_fail bad.har "$HQ" optimize small.har -d missing.npy -o bad.har
expect_fail bad.har "$HQ" optimize small.har -d calib.npy --hw-arch hailo99 -o bad.har
grep -q "hailo8l" err.txt
expect_fail bad.har "$HQ" optimize small_quantized.har -d calib.npy -o bad.har
grep -q "parsed_model" err.txt
"$py" -c "import numpy as np; np.save('wrong.npy', np.zeros((4, 8, 8, 3), np.float32))"
expect_fail bad.har "$HQ" optimize small.har -d wrong.npy -o bad.har

# the model-script vocabulary: a misspelt command, key or algorithm is refused with a did-you-mean
printf 'quantizaton_param(conv1, precision_mode=a16_w16)\n' > typo_command.alls
expect_fail bad.har "$HQ" optimize small.har -d calib.npy -m typo_command.alls -o bad.har
grep -qF "typo_command.alls:1: unknown command 'quantizaton_param' (did you mean 'quantization_param'?)" err.txt
printf '# a comment\nquantization_param(conv1, precison_mode=a16_w16)\n' > typo_key.alls
expect_fail bad.har "$HQ" optimize small.har -d calib.npy -m typo_key.alls -o bad.har
grep -qF "typo_key.alls:2: quantization_param: unknown key 'precison_mode' (did you mean 'precision_mode'?)" err.txt
printf 'model_optimization_flavor(compresion_level=1)\n' > typo_key2.alls
expect_fail bad.har "$HQ" optimize small.har -d calib.npy -m typo_key2.alls -o bad.har
grep -qF "unknown key 'compresion_level' (did you mean 'compression_level'?)" err.txt
printf 'post_quantization_optimization(finetun, policy=enabled)\n' > typo_word.alls
expect_fail bad.har "$HQ" optimize small.har -d calib.npy -m typo_word.alls -o bad.har
grep -qF "post_quantization_optimization: unknown algorithm 'finetun' (did you mean 'finetune'?)" err.txt

# compiler-side commands are kept and counted in one line; a name far from every known one is a
# warning; both stay in the archive's script
cat > compiler.alls <<'ALLS'
norm1 = normalization([127.5, 127.5, 127.5], [64.0, 64.0, 64.0])
buffers(conv1, conv2, 2)
compilation_param(conv1, resources_allocation_strategy=manual_scs_selection)
allocator_param(timeout=3600, enable_muxer=False)
performance_param(compiler_optimization_level=max)
resources_param(max_compute_utilization=0.8, max_memory_utilization=0.8)
context_switch_param(mode=enabled)
shortcut(conv1, conv2)
defuse(conv4, 2)
context_0 = context([conv1, conv2])
context_0.place(0, [conv1, conv2])
hef_param(share_config=enabled)
platform_param(hef_version=5)
network_group([small_cnn])
brand_new_compiler_option(level=3)
ALLS
"$HQ" optimize small.har -d calib.npy -m compiler.alls -o compiler.har > log.txt 2>&1
[ "$(grep -c 'compiler-side command' log.txt)" = 1 ]
grep -qF "[info] compiler.alls: 13 compiler-side commands kept for the compiler" log.txt
grep -qF "[warning] compiler.alls:15: unknown command 'brand_new_compiler_option' (kept in the script)" log.txt
if grep -q "not applied (kept" log.txt; then cat log.txt; exit 1; fi
grep -qF "model script: 1 command(s) applied, 1 not applied" log.txt
"$py" - <<'PY'
import tarfile
alls = tarfile.open("compiler.har").extractfile("small_cnn.alls").read().decode()
for line in ("context_0.place(0, [conv1, conv2])", "brand_new_compiler_option(level=3)",
             "buffers(conv1, conv2, 2)"):
    assert line in alls, (line, alls)
PY
echo "optimize_cli: ok"
