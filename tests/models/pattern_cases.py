#!/usr/bin/python3
"""pattern_cases.py — small crafted ONNX models, one per op form or fusion pattern that hq parse
must handle (the issue's op list), with their onnxruntime reference outputs.

  pattern_cases.py list                      one line per case: name
  pattern_cases.py build OUTDIR              writes OUTDIR/<case>.onnx and OUTDIR/<case>.input.npy
                                             (NCHW float32, what onnxruntime is fed)
  pattern_cases.py pack CASE INPUT.npy REF_PREFIX OUT.npz
                                             stores the input and onnxruntime's outputs
                                             (REF_PREFIX.<k>.npy) as the fixture OUT.npz
  pattern_cases.py inputs FIXTURES WORK       writes WORK/<case>.nhwc.npy (hq's layout)
  pattern_cases.py taps CASE                 the --tap arguments of a case run with taps
  pattern_cases.py quantized CASE            "yes" for a case also quantized, compiled and run
  pattern_cases.py check CASE MODEL.har HQ_OUT.npz FIXTURE.npz
                                             compares hq's outputs (NHWC) with the fixture,
                                             element by element, and the parsed graph (.hn in the
                                             archive) with what the case expects; exit 1 on a miss
  pattern_cases.py check-all WORK FIXTURES   check for every case (tests/e2e/onnx_patterns.sh),
                                             plus fp_optimized outputs and taps where run, and
                                             the quantized cases' compiled runs

Models are built with the onnx helper of /usr/bin/python3 (python3-onnx 1.12) and committed
(tests/fixtures/onnx/patterns/<case>.onnx, a few KB each) together with <case>.npz: the input
(NCHW, float32, seeded numpy) and onnxruntime-node 1.30.0's outputs (CPU, one thread) made by
tests/models/make_pattern_reference.sh. The reference is onnxruntime, not a re-implementation,
so a misread attribute in hq cannot be mirrored in the expected values.

Tolerance, per element: |hq - ref| <= 1e-4 * |ref| + 1e-5 (the issue's conformance bound).
Each case also states the layers the graph must have after parsing (the fusions: a fused BN or
activation leaves no layer of its own), so a pattern that silently falls back to unfused layers
fails even when its numbers are right.
"""
import io
import json
import sys
import tarfile

import numpy as np

REL = 1e-4
ABS = 1e-5

CASES = {}


def case(name, layers, params=(), opset=13, seed=0, scale=2.0, nhwc_outputs=()):
    """Registers a builder. `layers`: the multiset of hq layer types (input/output layers left
    out) the parsed graph must have; `params`: (type, {param: value}) pairs, each matched by
    some layer of that type; `nhwc_outputs`: the outputs made by a final transpose to NHWC, which
    hq gives in onnxruntime's layout (docs/onnx.md, channels-last inputs and outputs)."""
    def wrap(fn):
        CASES[name] = dict(fn=fn, layers=sorted(layers), params=list(params), opset=opset,
                           seed=seed, scale=scale, nhwc_outputs=tuple(nhwc_outputs))
        return fn
    return wrap


# ---- model building helpers ------------------------------------------------------------------

class G:
    """A graph under construction: nodes, initializers, one NCHW input 'x'."""

    def __init__(self, shape, rng):
        self.shape = list(shape)
        self.rng = rng
        self.nodes = []
        self.inits = []
        self.outputs = []
        self.out_shapes = {}
        self.k = 0

    def name(self, base):
        self.k += 1
        return "%s_%d" % (base, self.k)

    def const(self, value, name=None, dtype=np.float32):
        from onnx import numpy_helper
        name = name or self.name("c")
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def weights(self, *shape, lo=-0.5, hi=0.5):
        return self.const(self.rng.uniform(lo, hi, size=shape).astype(np.float32))

    def op(self, op_type, inputs, n_out=1, name=None, **attrs):
        from onnx import helper
        name = name or self.name(op_type)
        outs = ["%s_out%d" % (name, i) for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=name, **attrs))
        return outs[0] if n_out == 1 else outs

    def const_node(self, value, dtype=np.float32):
        """A Constant node (PaddlePaddle's way of storing weights)."""
        from onnx import numpy_helper
        name = self.name("Constant")
        t = numpy_helper.from_array(np.asarray(value, dtype=dtype), name + "_value")
        return self.op("Constant", [], name=name, value=t)

    def conv(self, x, cin, cout, k=3, group=1, bias=True, **attrs):
        kh, kw = (k, k) if isinstance(k, int) else k
        ins = [x, self.weights(cout, cin // group, kh, kw)]
        if bias:
            ins.append(self.weights(cout))
        attrs.setdefault("kernel_shape", [kh, kw])
        if "auto_pad" not in attrs:
            attrs.setdefault("pads", [kh // 2, kw // 2, kh // 2, kw // 2])
        return self.op("Conv", ins, group=group, **attrs)

    def bn(self, x, c):
        r = self.rng
        return self.op("BatchNormalization", [
            x, self.const(r.uniform(0.5, 1.5, c)), self.const(r.uniform(-0.5, 0.5, c)),
            self.const(r.uniform(-0.5, 0.5, c)), self.const(r.uniform(0.2, 2.0, c))],
            epsilon=1e-3)

    def out(self, t, shape=None):
        """Marks t a graph output; `shape` only where onnx's shape inference cannot tell."""
        self.outputs.append(t)
        if shape:
            self.out_shapes[t] = shape


def build(name):
    import onnx
    from onnx import helper, TensorProto
    spec = CASES[name]
    rng = np.random.default_rng(spec["seed"])
    g = G([], rng)
    x_shape = spec["fn"](g, "x")
    graph = helper.make_graph(
        g.nodes, name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [], g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", spec["opset"])],
                              producer_name="hq pattern_cases.py")
    model.ir_version = 7
    # output types and shapes from onnx's shape inference (the checker wants them)
    inferred = {vi.name: vi for vi in onnx.shape_inference.infer_shapes(model).graph.value_info
                if vi.type.tensor_type.HasField("shape")}
    for o in g.outputs:
        model.graph.output.append(inferred.get(o) or helper.make_tensor_value_info(
            o, TensorProto.FLOAT, g.out_shapes[o]))
    onnx.checker.check_model(model)
    x = rng.uniform(-spec["scale"], spec["scale"], size=x_shape).astype(np.float32)
    return model, x


# ---- the cases ---------------------------------------------------------------------------------
# Inputs are batch 2 so that a batch mix-up shows.

@case("conv_groups_dilation_asymmetric_pads", ["conv"],
      [("conv", {"groups": 2, "padding": "EXPLICIT", "dilations": [1, 2, 1, 1]})])
def _(g, x):
    g.out(g.conv(x, 4, 6, k=3, group=2, dilations=[2, 1], strides=[1, 2], pads=[0, 1, 2, 1]))
    return [2, 4, 9, 10]


@case("conv_auto_pad_same_upper", ["conv"], [("conv", {"padding": "SAME_TENSORFLOW"})])
def _(g, x):
    g.out(g.conv(x, 3, 5, k=3, strides=[2, 2], auto_pad="SAME_UPPER"))
    return [2, 3, 8, 9]


@case("conv_auto_pad_same_lower", ["conv"], [("conv", {"padding": "SAME"})])
def _(g, x):
    g.out(g.conv(x, 3, 5, k=[3, 4], strides=[2, 2], auto_pad="SAME_LOWER"))
    return [2, 3, 8, 9]


@case("dw_multiplier_auto_pad_valid", ["dw"], [("dw", {"padding": "VALID"})])
def _(g, x):
    g.out(g.conv(x, 3, 6, k=[3, 5], group=3, auto_pad="VALID"))
    return [2, 3, 7, 8]


@case("dw_dilated_with_bn_relu6", ["dw"],
      [("dw", {"batch_norm": True, "activation": "relu6", "dilations": [1, 2, 2, 1]})])
def _(g, x):
    t = g.bn(g.conv(x, 4, 4, k=3, group=4, bias=False, dilations=[2, 2], pads=[2, 2, 2, 2]), 4)
    g.out(g.op("Clip", [t, g.const(0.0), g.const(6.0)]))
    return [2, 4, 8, 8]


@case("conv_bn_relu_folded", ["conv"],
      [("conv", {"batch_norm": True, "activation": "relu"})])
def _(g, x):
    g.out(g.op("Relu", [g.bn(g.conv(x, 3, 8, bias=False), 8)]))
    return [2, 3, 6, 7]


@case("batch_norm_kept_on_input_and_shared_conv", ["batch_norm", "batch_norm", "conv", "ew_add"],
      [("conv", {"batch_norm": False})])
def _(g, x):
    b = g.bn(x, 3)                      # no producer to fold into
    c = g.conv(b, 3, 4)
    g.out(g.op("Add", [g.bn(c, 4), c]))  # the conv's output is read twice: BN stays a layer
    return [2, 3, 6, 6]


@case("clip_0_6_inputs_is_relu6", ["conv"], [("conv", {"activation": "relu6"})], scale=6.0)
def _(g, x):
    g.out(g.op("Clip", [g.conv(x, 3, 4), g.const(0.0), g.const(6.0)]))
    return [2, 3, 5, 5]


@case("clip_attributes_opset6", ["conv", "activation"],
      [("conv", {"activation": "clip"}), ("activation", {"activation": "relu6"})],
      opset=6, scale=8.0)
def _(g, x):
    g.out(g.op("Clip", [g.conv(x, 3, 4)], min=-1.0, max=2.0))
    g.out(g.op("Clip", [x], min=0.0, max=6.0))
    return [2, 3, 5, 5]


@case("clip_min_only_and_max_only_inputs", ["activation", "activation"],
      [("activation", {"activation": "relu"}), ("activation", {"activation": "clip"})],
      scale=4.0)
def _(g, x):
    g.out(g.op("Clip", [x, g.const(0.0)]))
    g.out(g.op("Clip", [x, "", g.const(1.5)]))
    return [2, 3, 4, 5]


@case("activations_fuse_into_convs",
      ["conv"] * 6 + ["activation"],
      [("conv", {"activation": a}) for a in
       ("leaky", "prelu", "sigmoid", "tanh", "hardsigmoid", "hardswish")] +
      [("activation", {"activation": "leaky"})], opset=14)
def _(g, x):
    g.out(g.op("LeakyRelu", [g.conv(x, 3, 4)], alpha=0.2))
    g.out(g.op("PRelu", [g.conv(x, 3, 4), g.const(np.array([0.1, -0.2, 0.3, 0.05]).reshape(4, 1, 1))]))
    g.out(g.op("Sigmoid", [g.conv(x, 3, 4)]))
    g.out(g.op("Tanh", [g.conv(x, 3, 4)]))
    g.out(g.op("HardSigmoid", [g.conv(x, 3, 4)], alpha=0.3, beta=0.4))
    g.out(g.op("HardSwish", [g.conv(x, 3, 4)]))
    g.out(g.op("LeakyRelu", [x], alpha=0.1))   # on the input: a layer of its own
    return [2, 3, 6, 5]


@case("prelu_scalar_slope_on_input", ["activation"], [("activation", {"activation": "prelu"})])
def _(g, x):
    g.out(g.op("PRelu", [x, g.const(np.array([0.25]))]))
    return [2, 3, 4, 4]


PRELU_SPLIT = ["activation", "activation", "const_input", "ew_mult", "ew_add"]


@case("prelu_slope_per_element_row_and_column", ["conv"] + PRELU_SPLIT * 3,
      [("activation", {"activation": "relu"}), ("activation", {"activation": "clip"})])
def _(g, x):
    r = g.rng
    t = g.conv(x, 3, 4)   # read by the three PRelus: nothing fuses into it
    g.out(g.op("PRelu", [t, g.const(r.uniform(-0.5, 1.5, (4, 5, 6)))]))  # Keras' [C, H, W]
    g.out(g.op("PRelu", [t, g.const(r.uniform(-0.5, 1.5, (1, 6)))]))     # one per column
    g.out(g.op("PRelu", [t, g.const(r.uniform(-0.5, 1.5, (5, 1)))]))     # one per row
    return [2, 3, 5, 6]


@case("prelu_slope_along_a_sequence", ["reshape"] + PRELU_SPLIT * 2, [])
def _(g, x):
    r = g.rng
    t = g.op("Reshape", [x, g.const([0, 3, 20], dtype=np.int64)])   # [N, C, L]
    g.out(g.op("PRelu", [t, g.const(r.uniform(-0.5, 1.5, (20,)))]))     # one per position
    g.out(g.op("PRelu", [t, g.const(r.uniform(-0.5, 1.5, (3, 20)))]))   # one per element
    return [2, 3, 4, 5]


@case("maxpool_dilated_strides_pads_ceil", ["conv", "maxpool", "maxpool", "maxpool"],
      [("maxpool", {"dilations": [1, 2, 3, 1], "strides": [1, 2, 1, 1], "padding": "EXPLICIT"}),
       ("maxpool", {"dilations": [1, 2, 2, 1], "padding": "EXPLICIT", "pads": [0, 0, 0, 1]})])
def _(g, x):
    t = g.conv(x, 3, 4)
    g.out(g.op("MaxPool", [t], kernel_shape=[3, 2], dilations=[2, 3], strides=[2, 1],
               pads=[1, 1, 2, 0], ceil_mode=1))
    g.out(g.op("MaxPool", [t], kernel_shape=[3, 3], dilations=[2, 2], strides=[2, 2], ceil_mode=1))
    g.out(g.op("MaxPool", [t], kernel_shape=[2, 2], dilations=[3, 1], strides=[3, 3]))
    return [2, 3, 11, 10]


@case("hardswish_decomposed_clip_forms", ["conv"] * 3,
      [("conv", {"activation": "hardswish"})], opset=11, scale=3.0)
def _(g, x):
    for form in range(3):
        t = g.conv(x, 3, 4)
        c = g.op("Clip", [g.op("Add", [t, g.const(3.0)]), g.const(0.0), g.const(6.0)])
        if form == 0:    # x * Clip(x + 3, 0, 6) / 6
            y = g.op("Div", [g.op("Mul", [t, c]), g.const(6.0)])
        elif form == 1:  # x * (Clip(x + 3, 0, 6) / 6), operands swapped
            y = g.op("Mul", [g.op("Div", [c, g.const(6.0)]), t])
        else:            # x * Clip(x + 3, 0, 6) * (1/6)
            y = g.op("Mul", [g.op("Mul", [t, c]), g.const(1.0 / 6.0)])
        g.out(y)
    return [2, 3, 6, 6]


@case("hardswish_as_x_times_hardsigmoid_and_silu", ["conv"] * 4 + ["activation"],
      [("conv", {"activation": "hardswish"}), ("conv", {"activation": "silu"}),
       ("activation", {"activation": "silu"})], scale=4.0)
def _(g, x):
    t = g.conv(x, 3, 4)
    g.out(g.op("Mul", [t, g.op("HardSigmoid", [t], alpha=1.0 / 6.0, beta=0.5)]))
    t = g.conv(x, 3, 4)
    g.out(g.op("Mul", [g.op("HardSigmoid", [t], alpha=1.0 / 6.0, beta=0.5), t]))
    t = g.conv(x, 3, 4)
    g.out(g.op("Mul", [t, g.op("Sigmoid", [t])]))
    t = g.conv(x, 3, 4)
    g.out(g.op("Mul", [g.op("Sigmoid", [t]), t]))
    g.out(g.op("Mul", [x, g.op("Sigmoid", [x])]))
    return [2, 3, 5, 6]


@case("max_min_with_constants_are_clamps", ["conv", "conv", "activation", "activation"],
      [("conv", {"activation": "clip"}), ("conv", {"activation": "relu6"}),
       ("activation", {"activation": "relu"}), ("activation", {"activation": "clip"})],
      scale=8.0)
def _(g, x):
    g.out(g.op("Min", [g.op("Max", [g.conv(x, 3, 4), g.const(-0.5)]), g.const(0.7)]))
    g.out(g.op("Min", [g.op("Relu", [g.conv(x, 3, 4)]), g.const(6.0)]))
    g.out(g.op("Max", [x, g.const(0.0)]))
    g.out(g.op("Min", [g.const(0.3), x]))
    return [2, 3, 5, 5]


# a per-channel or scalar Add/Sub/Mul/Div by a constant on the network input is a normalization
# layer (preprocessing); the other constants are const_input layers
@case("elementwise_with_constants_and_broadcast",
      ["ew_add", "ew_sub", "ew_sub", "ew_mult", "ew_mult", "ew_mult", "ew_div", "ew_max",
       "ew_min", "global_avg_pool", "activation", "conv"] + ["const_input"] * 4
      + ["normalization"] * 4,
      [("ew_mult", {"activation": "linear"})])
def _(g, x):
    r = g.rng
    g.out(g.op("Add", [x, g.const(r.uniform(-1, 1, (1, 4, 1, 1)))]))          # normalization
    g.out(g.op("Sub", [g.const(1.5), x]))                                       # c - x
    g.out(g.op("Mul", [x, g.const(r.uniform(-1, 1, (1, 1, 5, 6)))]))           # spatial
    g.out(g.op("Div", [x, g.const(r.uniform(1, 2, (4, 1, 1)))]))               # rank 3 const
    g.out(g.op("Div", [g.const(2.0), g.op("Add", [g.op("Mul", [x, x]), g.const(1.0)])]))
    s = g.op("Sigmoid", [g.op("GlobalAveragePool", [x])])                      # SE block
    g.out(g.op("Mul", [x, s]))                                                  # [N,C,H,W]*[N,C,1,1]
    g.out(g.op("Sub", [x, g.conv(x, 4, 4, k=1)]))
    g.out(g.op("Max", [x, g.op("Mul", [x, g.const(-0.5)])]))
    g.out(g.op("Min", [x, g.op("Sub", [x, g.const(0.25)])]))
    return [2, 4, 5, 6]


@case("conv_add_residual_becomes_elementwise_add", ["conv", "conv", "conv"],
      [("conv", {"elementwise_add": True, "activation": "relu"}),
       ("conv", {"elementwise_add": True, "activation": "linear"})])
def _(g, x):
    a = g.op("Relu", [g.conv(x, 4, 4)])
    b = g.op("Relu", [g.op("Add", [g.conv(a, 4, 4), x])])
    g.out(g.op("Add", [b, g.conv(b, 4, 4)]))       # the conv second in the Add
    return [2, 4, 6, 6]


@case("conv_affine_constants_fold_then_activation", ["conv"],
      [("conv", {"activation": "relu", "bias": True})])
def _(g, x):
    t = g.conv(x, 3, 4)
    t = g.op("Mul", [t, g.const(g.rng.uniform(0.5, 1.5, (1, 4, 1, 1)))])
    t = g.op("Add", [t, g.const(g.rng.uniform(-0.5, 0.5, (4, 1, 1)))])
    t = g.op("Sub", [t, g.const(0.1)])
    t = g.op("Div", [t, g.const(2.0)])
    g.out(g.op("Relu", [t]))
    return [2, 3, 5, 5]


@case("pools_ceil_pads_and_global", ["maxpool", "avgpool", "avgpool", "avgpool", "avgpool",
                                     "pad", "global_avg_pool", "maxpool"],
      [("avgpool", {"count_include_pad": False}), ("avgpool", {"count_include_pad": True})])
def _(g, x):
    g.out(g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 1, 1],
               ceil_mode=1))
    g.out(g.op("AveragePool", [x], kernel_shape=[3, 2], strides=[2, 2], pads=[1, 1, 0, 1]))
    # ceil mode with count_include_pad: ONNX's divisor stops at the declared pads
    g.out(g.op("AveragePool", [x], kernel_shape=[3, 3], strides=[1, 2], pads=[1, 1, 1, 1],
               count_include_pad=1, ceil_mode=1))
    g.out(g.op("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 0, 1, 1],
               count_include_pad=1))
    g.out(g.op("AveragePool", [x], kernel_shape=[2, 3], strides=[2, 2], count_include_pad=1,
               ceil_mode=1))
    g.out(g.op("GlobalAveragePool", [x]))
    g.out(g.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_UPPER"))
    return [2, 3, 7, 8]


@case("concat_split_slice_pad", ["conv", "conv", "concat", "feature_splitter", "slice", "pad",
                                 "pad", "pad", "concat"],
      [("pad", {"pad_mode": "reflect"}), ("pad", {"pad_mode": "edge"}),
       ("pad", {"pad_mode": "constant"})])
def _(g, x):
    c = g.op("Concat", [g.conv(x, 3, 2), g.conv(x, 3, 4)], axis=1)
    p0, p1 = g.op("Split", [c, g.const(np.array([2, 4]), dtype=np.int64)], n_out=2, axis=1)
    g.out(g.op("Slice", [p0, g.const([1, 0], dtype=np.int64), g.const([-1, 100], dtype=np.int64),
                         g.const([2, 3], dtype=np.int64), g.const([1, 2], dtype=np.int64)]))
    g.out(g.op("Pad", [p1, g.const([0, 0, 1, 2, 0, 0, 2, 1], dtype=np.int64)], mode="reflect"))
    g.out(g.op("Pad", [p1, g.const([0, 0, 0, 1, 0, 0, 2, 0], dtype=np.int64)], mode="edge"))
    g.out(g.op("Pad", [x, g.const([0, 1, 1, 0, 0, 0, 1, 1], dtype=np.int64), g.const(-0.5)]))
    g.out(g.op("Concat", [x, c], axis=-3))
    return [2, 3, 6, 7]


@case("split_equal_and_attribute_opset11", ["feature_splitter", "feature_splitter"],
      [("feature_splitter", {"axis": 3}), ("feature_splitter", {"axis": 1})], opset=11)
def _(g, x):
    for o in g.op("Split", [x], n_out=3, axis=1):
        g.out(o)
    for o in g.op("Split", [x], n_out=2, axis=2, split=[1, 3]):
        g.out(o)
    return [2, 6, 4, 5]


@case("resize_nearest_asymmetric_floor_by_scales", ["resize"],
      [("resize", {"resize_method": "nearest_neighbor"})])
def _(g, x):
    g.out(g.op("Resize", [x, "", g.const([1.0, 1.0, 2.0, 3.0])], mode="nearest",
               coordinate_transformation_mode="asymmetric", nearest_mode="floor"))
    return [2, 3, 4, 5]


@case("resize_nearest_by_sizes", ["resize", "resize"], [("resize", {"resize_method": "nearest_neighbor"})])
def _(g, x):
    g.out(g.op("Resize", [x, "", "", g.const([1, 3, 12, 9], dtype=np.int64)], mode="nearest",
               coordinate_transformation_mode="asymmetric", nearest_mode="floor"))
    g.out(g.op("Resize", [x, "", "", g.const([1, 3, 3, 4], dtype=np.int64)], mode="nearest"))
    return [1, 3, 8, 6]   # sizes carry the batch: 1, as exported models have it


@case("resize_linear_half_pixel_by_sizes", ["resize", "resize"],
      [("resize", {"resize_method": "bilinear"})])
def _(g, x):
    g.out(g.op("Resize", [x, "", "", g.const([1, 3, 13, 7], dtype=np.int64)], mode="linear",
               coordinate_transformation_mode="half_pixel"))
    g.out(g.op("Resize", [x, "", "", g.const([1, 3, 3, 4], dtype=np.int64)], mode="linear",
               coordinate_transformation_mode="pytorch_half_pixel"))
    return [1, 3, 5, 6]


@case("resize_linear_align_corners_by_scales", ["resize"],
      [("resize", {"resize_method": "bilinear"})])
def _(g, x):
    g.out(g.op("Resize", [x, "", g.const([1.0, 1.0, 2.0, 2.0])], mode="linear",
               coordinate_transformation_mode="align_corners"))
    return [2, 3, 4, 5]


@case("upsample_nearest_opset9", ["resize"], [("resize", {"resize_method": "nearest_neighbor"})],
      opset=9)
def _(g, x):
    g.out(g.op("Upsample", [x, g.const([1.0, 1.0, 2.0, 2.0])], mode="nearest"))
    return [2, 3, 3, 4]


@case("upsample_scales_attribute_opset7", ["resize"], [("resize", {"resize_method": "bilinear"})],
      opset=7)
def _(g, x):
    g.out(g.op("Upsample", [x], mode="linear", scales=[1.0, 1.0, 2.0, 3.0]))
    return [2, 3, 3, 4]


@case("flatten_reshape_squeeze_fold_into_dense", ["dense", "dense", "global_avg_pool", "dense",
                                                  "reshape", "ew_mult", "dense"], [])
def _(g, x):
    g.out(g.op("Gemm", [g.op("Flatten", [x], axis=1), g.weights(5, 48), g.weights(5)],
               transB=1))
    r = g.op("Reshape", [x, g.const([0, -1], dtype=np.int64)])
    g.out(g.op("MatMul", [r, g.weights(48, 6)]))
    s = g.op("Squeeze", [g.op("GlobalAveragePool", [x]), g.const([2, 3], dtype=np.int64)])
    s = g.op("Gemm", [s, g.weights(3, 3), g.weights(3)])
    g.out(g.op("Mul", [x, g.op("Unsqueeze", [s, g.const([-1, -2], dtype=np.int64)])]))
    g.out(g.op("Gemm", [g.op("Flatten", [x]), g.weights(48, 2)], alpha=0.5))
    return [2, 3, 4, 4]


@case("transpose_hw_and_channels", ["transpose", "transpose", "conv"], [])
def _(g, x):
    t = g.op("Transpose", [x], perm=[0, 1, 3, 2])
    g.out(g.conv(t, 3, 2))
    g.out(g.op("Transpose", [x], perm=[0, 2, 1, 3]))
    return [2, 3, 4, 6]


@case("transpose_to_channels_last_and_rank3_heads", ["reshape", "transpose", "softmax", "conv",
                                                     "conv"],
      [("reshape", {})], nhwc_outputs=[0])  # [N, C, H, W] -> [N, C, H*W]: one reshape in NHWC too
def _(g, x):
    # detection-head layouts: NCHW -> NHWC for the output (the transpose vanishes: hq's output is
    # that NHWC tensor), [N, C, H*W] sequences
    g.out(g.op("Transpose", [g.conv(x, 4, 6, k=1)], perm=[0, 2, 3, 1]))
    seq = g.op("Reshape", [g.conv(x, 4, 5, k=1), g.const([0, 5, -1], dtype=np.int64)])
    g.out(g.op("Softmax", [g.op("Transpose", [seq], perm=[0, 2, 1])], axis=-1))
    return [2, 4, 3, 4]


@case("opset10_resize_pad_and_squeeze_attributes", ["resize", "global_avg_pool", "dense",
                                                    "ew_mult", "reshape", "pad"],
      [("resize", {"resize_method": "nearest_neighbor"}), ("pad", {"pad_mode": "constant"})],
      opset=10)
def _(g, x):
    g.out(g.op("Resize", [x, g.const([1.0, 1.0, 2.0, 2.0])], mode="nearest"))
    g.out(g.op("Pad", [x], pads=[0, 0, 1, 2, 0, 0, 0, 1], value=0.5))  # Pad-2: attributes
    s = g.op("Squeeze", [g.op("GlobalAveragePool", [x])], axes=[2, 3])
    s = g.op("Gemm", [s, g.weights(3, 3), g.weights(3)])
    g.out(g.op("Mul", [x, g.op("Unsqueeze", [s], axes=[2, 3])]))
    return [2, 3, 4, 5]


@case("constant_operands_with_batch_one", ["concat", "const_input", "ew_mult", "const_input",
                                           "conv"], [("concat", {"axis": 3})])
def _(g, x):
    # batch 1, as exported: constants of the full [1, C, H, W] shape are operands
    g.out(g.op("Concat", [g.conv(x, 3, 2), g.const(g.rng.uniform(-1, 1, (1, 2, 4, 5)))], axis=1))
    g.out(g.op("Mul", [x, g.const(g.rng.uniform(-1, 1, (1, 3, 4, 5)))]))
    return [1, 3, 4, 5]


@case("depth_to_space_and_softmax", ["depth_to_space", "depth_to_space", "softmax", "softmax"],
      [("depth_to_space", {"mode": "CRD"}),
       ("depth_to_space", {"mode": "DCR"})], scale=5.0)
def _(g, x):
    g.out(g.op("DepthToSpace", [x], blocksize=2, mode="DCR"))
    g.out(g.op("DepthToSpace", [x], blocksize=2, mode="CRD"))
    g.out(g.op("Softmax", [x], axis=1))
    g.out(g.op("Softmax", [x], axis=-1))
    return [2, 8, 3, 4]


@case("paddle_constant_node_weights", ["conv", "dw", "global_avg_pool", "conv", "conv",
                                       "ew_mult"],
      [("conv", {"batch_norm": True, "activation": "hardswish"}),
       ("dw", {"batch_norm": True, "activation": "relu"}),
       ("conv", {"activation": "hardsigmoid"})], opset=11, scale=3.0)
def _(g, x):
    """A PP-LCNet-style block as PaddlePaddle exports it: every weight a Constant node."""
    r = g.rng

    def conv_bn(t, cin, cout, k, group):
        w = g.const_node(r.uniform(-0.5, 0.5, (cout, cin // group, k, k)))
        t = g.op("Conv", [t, w], kernel_shape=[k, k], pads=[k // 2] * 4, group=group)
        return g.op("BatchNormalization", [
            t, g.const_node(r.uniform(0.5, 1.5, cout)), g.const_node(r.uniform(-.5, .5, cout)),
            g.const_node(r.uniform(-.5, .5, cout)), g.const_node(r.uniform(0.2, 2.0, cout))],
            epsilon=1e-5)
    t = conv_bn(x, 3, 8, 3, 1)
    c = g.op("Clip", [g.op("Add", [t, g.const_node(3.0)]), g.const_node(0.0), g.const_node(6.0)])
    t = g.op("Div", [g.op("Mul", [t, c]), g.const_node(6.0)])
    t = g.op("Relu", [conv_bn(t, 8, 8, 3, 8)])
    s = g.op("GlobalAveragePool", [t])
    s = g.op("Relu", [g.op("Conv", [s, g.const_node(r.uniform(-.5, .5, (2, 8, 1, 1))),
                                    g.const_node(r.uniform(-.5, .5, 2))], kernel_shape=[1, 1])])
    s = g.op("Conv", [s, g.const_node(r.uniform(-.5, .5, (8, 2, 1, 1))),
                      g.const_node(r.uniform(-.5, .5, 8))], kernel_shape=[1, 1])
    s = g.op("HardSigmoid", [s], alpha=0.2, beta=0.5)
    g.out(g.op("Mul", [t, s]))
    return [2, 3, 8, 8]


@case("constant_of_shape_channel_padding", ["conv", "pad"],
      [("pad", {"pad_channels": [0, 3]})])
def _(g, x):
    y = g.conv(x, 3, 4)
    shp = g.op("Shape", [y])
    idx = lambda i: g.op("Gather", [shp, g.const(np.array([i]), dtype=np.int64)], axis=0)
    zshape = g.op("Concat", [idx(0), g.const([3], dtype=np.int64), idx(2), idx(3)], axis=0)
    z = g.op("ConstantOfShape", [zshape],
             value=__import__("onnx").numpy_helper.from_array(np.zeros(1, np.float32)))
    g.out(g.op("Concat", [y, z], axis=1))
    return [2, 3, 5, 6]


@case("shape_driven_subgraphs_fold", ["resize", "dense"], [])
def _(g, x):
    shp = g.op("Shape", [x])
    hw = g.op("Slice", [shp, g.const([2], dtype=np.int64), g.const([4], dtype=np.int64)])
    hw2 = g.op("Mul", [hw, g.const([2], dtype=np.int64)])
    sizes = g.op("Concat", [g.op("Slice", [shp, g.const([0], dtype=np.int64),
                                           g.const([2], dtype=np.int64)]), hw2], axis=0)
    g.out(g.op("Resize", [x, "", "", sizes], mode="nearest",
               coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
          shape=[2, 3, 8, 10])
    n = g.op("Unsqueeze", [g.op("Gather", [shp, g.const(0, dtype=np.int64)], axis=0),
                           g.const([0], dtype=np.int64)])
    flat = g.op("Reshape", [x, g.op("Concat", [n, g.const([-1], dtype=np.int64)], axis=0)])
    g.out(g.op("Gemm", [flat, g.weights(60, 4)]), shape=[2, 4])
    return [2, 3, 4, 5]


@case("conv_transpose_groups_output_padding_bn", ["deconv", "deconv"],
      [("deconv", {"batch_norm": True, "activation": "relu", "groups": 2})])
def _(g, x):
    w = g.weights(4, 3, 3, 3)
    t = g.op("ConvTranspose", [x, w, g.weights(6)], group=2, strides=[2, 2],
             pads=[1, 0, 1, 1], output_padding=[1, 0], kernel_shape=[3, 3])
    g.out(g.op("Relu", [g.bn(t, 6)]))
    g.out(g.op("ConvTranspose", [x, g.weights(4, 2, 2, 2)], strides=[2, 2],
               output_shape=[9, 11]))
    return [2, 4, 4, 5]


def _layer_norm_decomposed(g, x, c):
    """LayerNorm over the last axis as PaddlePaddle and torch export it at opset 13."""
    mean = g.op("ReduceMean", [x], axes=[-1])
    d = g.op("Sub", [x, mean])
    var = g.op("ReduceMean", [g.op("Pow", [d, g.const(2.0)])], axes=[-1])
    y = g.op("Div", [d, g.op("Sqrt", [g.op("Add", [var, g.const(1e-5)])])])
    return g.op("Add", [g.op("Mul", [y, g.const(g.rng.uniform(0.5, 1.5, c))]),
                        g.const(g.rng.uniform(-0.5, 0.5, c))])


@case("sequence_layer_norm_and_attention",
      ["conv", "layer_norm", "conv", "slice", "slice", "slice", "reshape", "reshape", "reshape",
       "transpose", "transpose", "transpose", "transpose", "ew_mult", "const_input", "matmul",
       "softmax", "matmul", "transpose", "reshape", "transpose", "conv", "layer_norm",
       "transpose", "conv"],
      [("conv", {"elementwise_add": True}), ("softmax", {"axis": 2})], scale=1.0)
def _(g, x):
    # an SVTR-style mixer (PP-OCRv4 rec's neck) as PaddlePaddle exports it: the feature map
    # [N, C, 1, W] flattened to [N, C, W] and transposed to the sequence [N, T, C]; LayerNorm
    # over C; one MatMul for q, k and v, reshaped to [N, T, 3, heads, C/heads], transposed to
    # [3, N, heads, T, C/heads] and unstacked (Slice + Squeeze for q and k, Gather for v);
    # attention; heads merged back; projection, residual, LayerNorm; back to [N, C, 1, W]
    c, heads, t = 8, 2, 6
    dh = c // heads
    f = g.conv(x, 4, c, k=1)
    seq = g.op("Transpose", [g.op("Reshape", [f, g.const([0, c, -1], dtype=np.int64)])],
               perm=[0, 2, 1])
    h = _layer_norm_decomposed(g, seq, c)
    qkv = g.op("Add", [g.op("MatMul", [h, g.weights(c, 3 * c)]), g.weights(3 * c)])
    qkv = g.op("Reshape", [qkv, g.const([0, -1, 3, heads, dh], dtype=np.int64)])
    qkv = g.op("Transpose", [qkv], perm=[2, 0, 3, 1, 4])

    def piece(i):
        s = g.op("Slice", [qkv, g.const([i], dtype=np.int64), g.const([i + 1], dtype=np.int64),
                           g.const([0], dtype=np.int64)])
        return g.op("Squeeze", [s, g.const([0], dtype=np.int64)])
    q = g.op("Mul", [piece(0), g.const(dh ** -0.5)])
    k = piece(1)
    v = g.op("Gather", [qkv, g.const(2, dtype=np.int64)], axis=0)
    a = g.op("Softmax", [g.op("MatMul", [q, g.op("Transpose", [k], perm=[0, 1, 3, 2])])],
             axis=-1)
    o = g.op("Transpose", [g.op("MatMul", [a, v])], perm=[0, 2, 1, 3])
    o = g.op("Reshape", [o, g.const([0, -1, c], dtype=np.int64)])
    o = g.op("Add", [g.op("MatMul", [o, g.weights(c, c)]), g.weights(c)])
    y = _layer_norm_decomposed(g, g.op("Add", [seq, o]), c)
    g.out(y)  # the sequence [N, T, C] itself
    img = g.op("Transpose", [g.op("Reshape", [y, g.const([0, 1, t, c], dtype=np.int64)])],
               perm=[0, 3, 1, 2])
    g.out(g.conv(img, c, 3, k=(1, 3)))
    return [2, 4, 1, t]


@case("gemm_bn_matmul_softmax_on_vectors", ["dense", "dense", "softmax"],
      [("dense", {"activation": "relu", "batch_norm": True})])
def _(g, x):
    t = g.op("Gemm", [x, g.weights(6, 16), g.weights(6)], transB=1, alpha=0.7, beta=1.3)
    t = g.op("Relu", [g.bn(t, 6)])  # BatchNorm1d after a Linear: folded into the dense
    t = g.op("Add", [g.op("MatMul", [t, g.weights(6, 5)]), g.weights(5)])
    g.out(g.op("Softmax", [t], axis=-1))
    return [2, 16]


# ---- commands -----------------------------------------------------------------------------------

def to_nhwc(a):
    if a.ndim == 4:
        return a.transpose(0, 2, 3, 1)
    if a.ndim == 3:  # [N, C, L] is hq's [N, 1, L, C]
        return a.transpose(0, 2, 1)[:, None]
    return a


def check(name, har, hq_path, fixture_path, label="native"):
    spec = CASES[name]
    fix = np.load(fixture_path)
    got = np.load(hq_path)
    ok = True
    # the graph
    with tarfile.open(har) as tar:
        hn_name = [m for m in tar.getnames() if m.endswith(".hn")][0]
        hn = json.load(io.TextIOWrapper(tar.extractfile(hn_name), encoding="utf-8"))
    layers = hn["layers"]
    types = sorted(v["type"] for v in layers.values()
                   if v["type"] not in ("input_layer", "output_layer"))
    if types != spec["layers"]:
        print("%s: layers %s, expected %s" % (name, types, spec["layers"]))
        ok = False
    for typ, want in spec["params"]:
        cands = [v["params"] for v in layers.values() if v["type"] == typ]
        if not any(all(p.get(k) == val for k, val in want.items()) for p in cands):
            print("%s: no %s layer with %s (have %s)" % (name, typ, want, cands))
            ok = False
    # the numbers
    order = hn["net_params"]["output_layers_order"]
    k = 0
    worst = 0.0
    while "output_%d" % k in fix.files:
        ref = fix["output_%d" % k]
        ref = (ref if k in spec["nhwc_outputs"] else to_nhwc(ref)).astype(np.float64)
        key = [f for f in got.files if f.endswith("/output_layer%d" % (k + 1))]
        if len(order) <= k or not key:
            print("%s: hq has no output %d" % (name, k + 1))
            ok = False
            k += 1
            continue
        h = got[key[0]].astype(np.float64)
        if h.shape != ref.shape:
            print("%s: output %d has shape %s, onnxruntime %s" % (name, k, h.shape, ref.shape))
            ok = False
        else:
            excess = np.abs(h - ref) - (REL * np.abs(ref) + ABS)
            if np.any(excess > 0) or np.any(np.isnan(h)):
                i = np.unravel_index(np.argmax(excess), excess.shape)
                print("%s: output %d at %s: hq %.8g, onnxruntime %.8g" % (
                    name, k, tuple(int(v) for v in i), h[i], ref[i]))
                ok = False
            worst = max(worst, float(np.max(np.abs(h - ref) / (np.abs(ref) + ABS / REL))))
        k += 1
    n_out = len([f for f in got.files if "/output_layer" in f])
    if n_out != k:
        print("%s: hq wrote %d outputs, onnxruntime %d" % (name, n_out, k))
        ok = False
    print("%-45s %-13s %s  outputs %d  max |hq-ref|/(|ref|+0.1) %.2e" % (
        name, label, "ok  " if ok else "FAIL", k, worst))
    return ok


def check_taps(name, native_path, fpo_path):
    """--tap by ONNX node name and by hq layer name: every tap is saved with the batch, the tap
    of the layer feeding the output equals the output bit for bit, in native and fp_optimized."""
    ok = True
    nat, fpo = np.load(native_path), np.load(fpo_path)
    taps = sorted(f for f in nat.files if "/output_layer" not in f)
    if len(taps) != len(TAPS[name]) or sorted(fpo.files) != sorted(nat.files):
        print("%s: taps %s / %s for --tap %s" % (name, nat.files, fpo.files, TAPS[name]))
        return False
    out = [f for f in nat.files if f.endswith("/output_layer1")][0]
    last = "%s/%s" % (name, TAPS_LAST[name])
    if not np.array_equal(nat[last], nat[out]) or not np.array_equal(fpo[last], fpo[out]):
        print("%s: tap %s differs from the output it feeds" % (name, last))
        ok = False
    for t in taps:  # (values of inner layers may differ: hq optimize equalizes in float)
        if nat[t].shape[0] != 2 or nat[t].shape != fpo[t].shape or not np.all(np.isfinite(fpo[t])):
            print("%s: tap %s: native %s, fp_optimized %s" % (name, t, nat[t].shape, fpo[t].shape))
            ok = False
    print("%-45s %-13s %s  taps %s" % (name, "--tap", "ok  " if ok else "FAIL", ", ".join(taps)))
    return ok


# Cases also run as fp_optimized (after hq optimize) with taps: hq emulate --tap arguments (ONNX
# node names and hq layer names) and the hq layer that feeds output_layer1.
TAPS = {"conv_add_residual_becomes_elementwise_add": ["Relu_9", "Add_13", "conv1"],
        "paddle_constant_node_weights": ["Relu_23", "HardSigmoid_32", "ew_mult1"]}
TAPS_LAST = {"conv_add_residual_becomes_elementwise_add": "conv3",
             "paddle_constant_node_weights": "ew_mult1"}


# Cases also quantized (hq optimize on the case's own input), compiled and run: hq run's outputs
# equal quantized emulation's byte for byte, with the reference and the default kernels, and stay
# within QUANT_TOL of onnxruntime's range (8-bit activations on two samples).
QUANTIZED = {"prelu_slope_per_element_row_and_column", "prelu_slope_along_a_sequence",
             "maxpool_dilated_strides_pads_ceil"}
QUANT_TOL = 0.05


def check_quantized(name, work, fixture_path):
    fix = np.load(fixture_path)
    emu = np.load("%s/%s.qref.npz" % (work, name))
    ok = True
    for label in ("qfast", "run"):
        got = np.load("%s/%s.%s.npz" % (work, name, label))
        for k in emu.files:
            if k not in got.files or got[k].dtype != emu[k].dtype or \
                    got[k].tobytes() != emu[k].tobytes():
                print("%s: %s differs from quantized emulation in %s" % (name, label, k))
                ok = False
    worst = 0.0
    k = 0
    while "output_%d" % k in fix.files:
        ref = to_nhwc(fix["output_%d" % k]).astype(np.float64)
        key = [f for f in emu.files if f.endswith("/output_layer%d" % (k + 1))]
        if not key or emu[key[0]].shape != ref.shape:
            print("%s: quantized output %d missing or of another shape" % (name, k))
            ok = False
        else:
            err = np.abs(emu[key[0]].astype(np.float64) - ref).max() / np.abs(ref).max()
            worst = max(worst, err)
        k += 1
    ok = ok and worst <= QUANT_TOL
    print("%-45s %-13s %s  bit-exact with hq run, max |q-ref| / max|ref| %.2e" % (
        name, "quantized", "ok  " if ok else "FAIL", worst))
    return ok


def check_all(work, fixtures):
    """hq's results in WORK (<case>.har, <case>.out.npz, <case>.refk.npz from the scalar
    reference kernels; for TAPS cases also <case>.fpo.npz and <case>.taps.npz from fp_optimized
    and native runs with taps) against FIXTURES."""
    ok = True
    for name in CASES:
        fix = "%s/%s.npz" % (fixtures, name)
        har = "%s/%s.har" % (work, name)
        try:
            ok = check(name, har, "%s/%s.out.npz" % (work, name), fix, "native") and ok
            ok = check(name, har, "%s/%s.refk.npz" % (work, name), fix, "native (ref)") and ok
            if name in TAPS:
                ok = check(name, har, "%s/%s.fpo.npz" % (work, name), fix, "fp_optimized") and ok
                ok = check_taps(name, "%s/%s.taps.npz" % (work, name),
                                "%s/%s.fpo.npz" % (work, name)) and ok
            if name in QUANTIZED:
                ok = check_quantized(name, work, fix) and ok
        except (OSError, KeyError, ValueError) as e:
            print("%s: FAIL: %s" % (name, e))
            ok = False
    print("onnx patterns: %d cases (fast and reference kernels), %d also fp_optimized with taps, "
          "%d quantized and run: %s" % (
        len(CASES), len(TAPS), len(QUANTIZED), "all match onnxruntime" if ok else "FAILED"))
    return ok


def main(argv):
    if len(argv) >= 1 and argv[0] == "list":
        for n in CASES:
            print(n)
        return 0
    if len(argv) == 2 and argv[0] == "build":
        import onnx
        for n in CASES:
            model, x = build(n)
            onnx.save(model, "%s/%s.onnx" % (argv[1], n))
            np.save("%s/%s.input.npy" % (argv[1], n), x)
        return 0
    if len(argv) == 5 and argv[0] == "pack":
        arrays = {"input": np.load(argv[2])}
        k = 0
        while True:
            try:
                arrays["output_%d" % k] = np.load("%s.%d.npy" % (argv[3], k))
            except FileNotFoundError:
                break
            k += 1
        np.savez_compressed(argv[4], **arrays)
        return 0
    if len(argv) == 5 and argv[0] == "check":
        return 0 if check(*argv[1:]) else 1
    if len(argv) == 3 and argv[0] == "check-all":
        return 0 if check_all(argv[1], argv[2]) else 1
    if len(argv) == 3 and argv[0] == "inputs":  # FIXTURES -> WORK/<case>.nhwc.npy (hq's layout)
        for n in CASES:
            fix = np.load("%s/%s.npz" % (argv[1], n))
            np.save("%s/%s.nhwc.npy" % (argv[2], n), np.ascontiguousarray(to_nhwc(fix["input"])))
        return 0
    if len(argv) == 2 and argv[0] == "quantized":
        print("yes" if argv[1] in QUANTIZED else "")
        return 0
    if len(argv) == 2 and argv[0] == "taps":
        print(" ".join("--tap " + t for t in TAPS.get(argv[1], [])))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
