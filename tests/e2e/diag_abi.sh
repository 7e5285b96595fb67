#!/usr/bin/env bash
# The plugin ABI across versions (hq-inspector(3), "Compatibility"). TestLayers10
# (tests/plugins/abi/layers_1_0.c), built against the frozen 1.0 headers only, runs on this
# hq-diag and reads every layer through 1.0's `layer` slot exactly as TestLayers
# (tests/plugins/abi/layers.c) reads it through layer_info and layer_params, and both agree with
# the archive's .hn: names, types, edges, shapes, original names, precision modes, params. The
# sized copies fill a smaller or larger module struct correctly. A module of another major and one
# of a newer minor are each refused with one line naming the file and both versions, and the run
# goes on without them.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
abi="$HQ_BUILD_DIR/tests/plugins/abi"
broken="$HQ_BUILD_DIR/tests/plugins/broken"
samples="$HQ_SOURCE_DIR/samples"
/usr/bin/python3 "$HQ_SOURCE_DIR/tests/e2e/diag_fixtures.py" "$work"
cd "$work"
"$HQ" parse "$samples/sample.onnx" -o sample.har >/dev/null
"$HQ" optimize sample.har -m "$samples/sample.alls" -d "$samples/sample_calib.npy" \
  -o sample_quantized.har >/dev/null
fail=0
check() {
  local what=$1; shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=1; fi
}

for har in parsed quantized sample_quantized; do
  mkdir "out_$har"
  set +e
  "$HQ_DIAG" --plugin-path "$abi/layers_1_0.so" --plugin-path "$abi/layers.so" \
    --order TestLayers10 TestLayers --log-path "out_$har/hq-diag.log" "$har.har" \
    >"out_$har/console.txt" 2>&1 <&-
  rc=$?
  set -e
  check "$har: both modules run (exit 0)" \
    bash -c "[ $rc -eq 0 ] && grep -qx 'Module: TestLayers10' out_$har/console.txt &&
             grep -qx 'Module: TestLayers' out_$har/console.txt"
  check "$har: the 1.0 module reads every layer field as the current ABI gives it" \
    bash -c "[ -s out_$har/hq-diag_files/layers_1_0.txt ] &&
             diff out_$har/hq-diag_files/layers_1_0.txt <(sed '/^out_of_range=/q' out_$har/hq-diag_files/layers.txt)"
  check "$har: the layers read agree with the archive's .hn" \
    /usr/bin/python3 - "$har.har" "out_$har/hq-diag_files/layers_1_0.txt" "$HQ_SOURCE_DIR/include/hq" <<'PY'
import json, re, sys, tarfile
har, dump, include_dir = sys.argv[1:4]
with tarfile.open(har) as t:
    hn = json.loads(t.extractfile([n for n in t.getnames() if n.endswith(".hn")][0]).read())
# enum names in declaration order (the enums are append-only: their values are part of the ABI)
text = "".join(open(f"{include_dir}/{h}").read() for h in ("layer_types.h", "graph.h"))
def enum(name):
    body = re.search(r"typedef enum %s \{(.*?)\}" % name, text, re.S).group(1)
    return re.findall(r'/\* "([a-z_0-9]+)"', body)
types, activations = enum("hq_layer_type"), enum("hq_activation")
names = list(hn["layers"])
lines = open(dump).read().splitlines()
assert lines[-1] == "out_of_range=1", lines[-1]
assert len(lines) - 1 == len(names), (len(lines), len(names))
floats = lambda s: [float(x) for x in s.split(",") if x]
ints = lambda s: [int(x) for x in s.split(",") if x]
checked = set()
for line in lines[:-1]:
    f = dict(re.findall(r"(\w+)=(\[[^\]]*\]|\S*)", line))
    f = {k: v.strip("[]") for k, v in f.items()}
    name = f["name"]
    layer, params = hn["layers"][name], hn["layers"][name].get("params", {})
    assert f["bare"] == name.split("/")[-1], line
    assert types[int(f["type"])] == layer["type"], (name, f["type"], layer["type"])
    assert [names[i] for i in ints(f["inputs"])] == layer["input"], (name, f["inputs"])
    assert sorted(names[i] for i in ints(f["outputs"])) == sorted(layer["output"]), name
    assert ints(f["output_shape"]) == layer["output_shapes"][0], (name, f["output_shape"])
    for i, shape in enumerate(layer.get("input_shapes", [])):
        assert ints(f["input_shape%d" % i]) == shape, (name, i)
    assert f["original_names"].split(",") == layer.get("original_names", [""]) or \
        (f["original_names"] == "" and not layer.get("original_names")), name
    assert f["precision_mode"] == layer.get("quantization_params", {}).get("precision_mode", ""), name
    if "precision_mode" in layer.get("quantization_params", {}):
        checked.add("precision_mode")
    if "activation" in params:
        assert activations[int(f["activation"])] == params["activation"], name
        checked.add("activation")
    if "kernel_shape" in params and layer["type"] in ("conv", "dw", "deconv"):
        assert ints(f["kernel"]) == params["kernel_shape"], (name, f["kernel"])
        checked.add("kernel")
    if "pads" in params:
        assert ints(f["pads"]) == params["pads"], name
    for key in ("mean", "std"):
        if key in params:
            got, want = floats(f[key]), params[key]
            assert len(got) == len(want) and all(abs(a - b) <= 1e-6 * max(1, abs(b))
                                                 for a, b in zip(got, want)), (name, key, got)
            checked.add(key)
print(len(names), "layers;", "checked", ", ".join(sorted(checked)) or "names, types, edges, shapes")
PY
done
check "the sample's quantized archive exercised precision modes, normalization and kernels" \
  bash -c "grep -q 'precision_mode=a8_w8' out_sample_quantized/hq-diag_files/layers.txt &&
           grep -q 'type=8 ' out_sample_quantized/hq-diag_files/layers.txt &&
           grep -q 'kernel=3,3,' out_sample_quantized/hq-diag_files/layers.txt"
check "layer_info and layer_params fill the module's struct and say how much" \
  grep -qx "layer_size=1 params_size=1 bigger_filled=1 future_zeroed=1 older_filled=1 older_type_untouched=1 older_name=input_layer1" \
  out_parsed/hq-diag_files/layers.txt
check "port and param counts come with the layer" \
  bash -c "grep -qx '1 ports=1 params=224' out_parsed/hq-diag_files/layers.txt && grep -qx '0 ports=1 params=0' out_parsed/hq-diag_files/layers.txt"

set +e
"$HQ_DIAG" --plugin-path "$broken/wrongabi.so" --plugin-path "$abi/newer_minor.so" \
  --plugin-path "$abi/layers.so" --order TestLayers --log-path out_parsed/refused.log \
  parsed.har >refused.txt 2>&1 <&-
rc=$?
set -e
check "another major is refused with one line naming the file and both versions" \
  bash -c "[ \$(grep -c wrongabi refused.txt) -eq 1 ] &&
           grep -q '^\[warning\] Refused plugin .*/wrongabi.so: inspector ABI version 99, but this hq-diag speaks version 1 ' refused.txt"
check "a newer minor is refused with one line naming the file and both versions" \
  bash -c "[ \$(grep -c newer_minor refused.txt) -eq 1 ] &&
           grep -q '^\[warning\] Refused plugin .*/newer_minor.so: inspector ABI version 1.99, newer than this hq-diag.s 1.2 ' refused.txt"
check "after the refusals the run goes on (exit 0) with the modules that load" \
  bash -c "[ $rc -eq 0 ] && grep -qx 'Module: TestLayers' refused.txt"
exit $fail
