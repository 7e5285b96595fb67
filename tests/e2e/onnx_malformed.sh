#!/usr/bin/env bash
# Malformed and unsupported ONNX files: hq parse exits 2 with exactly one line on stderr that names
# the file and what is wrong, and writes nothing. The models are built here with python3-onnx.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

/usr/bin/python3 - <<'PY'
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

def save(name, nodes, inits, in_shape=(1, 3, 8, 8), out="y"):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), name)

w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
w2 = numpy_helper.from_array(np.ones((4, 27), np.float32), "w")
save("good.onnx", [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], [w])
# the Conv reads 'w', which nothing defines
save("missing.onnx", [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], [])
# 2-D weights for a 2-D convolution
save("rank.onnx", [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], [w2])
# a 5-D input (3-D volumes)
save("input_rank.onnx", [helper.make_node("Relu", ["x"], ["y"], name="relu")], [], in_shape=(1, 3, 8, 8, 8))
# an op hq does not map, after a supported one
save("unsupported.onnx", [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
                          helper.make_node("Erf", ["c"], ["y"], name="erf")], [w])
# an unsupported op on the input itself: the network starts after it
save("unsupported_first.onnx", [helper.make_node("Erf", ["x"], ["e"], name="erf"),
                                helper.make_node("Conv", ["e", "w"], ["y"], name="conv")], [w])
PY

# expect_fail FILE PATTERN: exit 2, one stderr line matching PATTERN, no archive
expect_fail() {
    set +e
    "$HQ" parse "$1" -o out.har 2>err.txt >out.txt
    local rc=$?
    set -e
    if [ $rc -ne 2 ] || [ "$(wc -l <err.txt)" -ne 1 ] || ! grep -q -- "$2" err.txt || [ -e out.har ]; then
        echo "hq parse $1: exit $rc, stderr:"; cat err.txt
        echo "expected exit 2, one line matching: $2"
        exit 1
    fi
}

"$HQ" parse good.onnx -o good.har >/dev/null
head -c 60 good.onnx >truncated.onnx
expect_fail truncated.onnx "truncated.onnx: not a valid ONNX model"
printf 'this is not a protobuf at all\n' >text.onnx
expect_fail text.onnx "text.onnx: not a valid ONNX model"
: >empty.onnx
expect_fail empty.onnx "empty.onnx: "
expect_fail missing.onnx "missing.onnx: node 'conv' (Conv): input 'w' is not an initializer, a graph input or the output of an earlier node"
expect_fail rank.onnx "rank.onnx: node 'conv' (Conv): weights 'w' must be a 4-D float tensor (rank 2)"
expect_fail input_rank.onnx "input_rank.onnx: input 'x' has rank 5"
expect_fail unsupported.onnx "unsupported.onnx: node 'erf' (Erf) is post-processing hq cannot convert; cut before it with --end-node-names conv"
expect_fail unsupported_first.onnx "unsupported_first.onnx: node 'erf' (Erf) is preprocessing hq cannot convert; start after it with --start-node-names conv"
expect_fail no_such_file.onnx "no_such_file.onnx"
# the way out works
"$HQ" parse unsupported.onnx -o cut.har --end-node-names conv >/dev/null
test -f cut.har
