#!/usr/bin/env python3
"""Generate the tiny ONNX models that infergate's tests and example use.

The models are committed next to this script (a few KB each); run it again
only to change them:

    python3 scripts/gen_test_models.py            # testdata/models + configs/example-repository
    python3 scripts/gen_test_models.py --bench DIR # the larger benchmark MLPs (not committed)

Needs the `onnx` and `numpy` Python packages (Debian: apt-get install python3-onnx).
Weights come from a fixed seed, so the output is byte-for-byte reproducible.
"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# KServe v2 datatype -> ONNX element type, for the identity models.
DATATYPES = {
    "bool": TensorProto.BOOL,
    "uint8": TensorProto.UINT8,
    "uint16": TensorProto.UINT16,
    "uint32": TensorProto.UINT32,
    "uint64": TensorProto.UINT64,
    "int8": TensorProto.INT8,
    "int16": TensorProto.INT16,
    "int32": TensorProto.INT32,
    "int64": TensorProto.INT64,
    "fp16": TensorProto.FLOAT16,
    "fp32": TensorProto.FLOAT,
    "fp64": TensorProto.DOUBLE,
    "bytes": TensorProto.STRING,
}


def save(model, repo, name, version=1, config=None):
    onnx.checker.check_model(model)
    d = os.path.join(repo, name, str(version))
    os.makedirs(d, exist_ok=True)
    onnx.save(model, os.path.join(d, "model.onnx"))
    if config is not None:
        with open(os.path.join(repo, name, "config.yaml"), "w") as f:
            f.write(config)


def make(nodes, inputs, outputs, initializers=(), name="g"):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="infergate-gen")
    model.ir_version = 8
    return model


def mlp(sizes, seed, batch="batch"):
    """A ReLU MLP: Gemm (+Relu) per layer, softmax at the end."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    prev = "input"
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        w = (rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32)
        bias = (rng.standard_normal(b) * 0.1).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(bias, f"b{i}")]
        out = f"h{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [out]))
        if i < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [out], [out + "r"]))
            out += "r"
        prev = out
    nodes.append(helper.make_node("Softmax", [prev], ["output"], axis=-1))
    return make(nodes,
                [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, sizes[0]])],
                [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, sizes[-1]])],
                inits, name="mlp")


def test_models(repo):
    # One identity model per KServe datatype: [batch, 4] in, same out.
    for dt, et in DATATYPES.items():
        m = make([helper.make_node("Identity", ["INPUT0"], ["OUTPUT0"])],
                 [helper.make_tensor_value_info("INPUT0", et, ["batch", 4])],
                 [helper.make_tensor_value_info("OUTPUT0", et, ["batch", 4])])
        save(m, repo, f"identity_{dt}")

    # The small MLP (16 -> 32 -> 4), in two versions with different weights.
    save(mlp([16, 32, 4], seed=1), repo, "mlp", 1)
    save(mlp([16, 32, 4], seed=2), repo, "mlp", 2, config="""# Serve both versions; without a version the highest (2) answers.
version_policy:
  all: {}
""")

    # Two inputs of different types, two outputs of different types.
    m = make([
        helper.make_node("Cast", ["b"], ["bf"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["a", "bf"], ["sum"]),
        helper.make_node("Add", ["b", "b"], ["double_b"]),
    ], [
        helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 3]),
        helper.make_tensor_value_info("b", TensorProto.INT64, ["batch", 3]),
    ], [
        helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["batch", 3]),
        helper.make_tensor_value_info("double_b", TensorProto.INT64, ["batch", 3]),
    ])
    save(m, repo, "multi_io")

    # No batch axis: a fixed [2, 3] input summed over axis 0 to [3].
    m = make([helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)],
             [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
             [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
             [numpy_helper.from_array(np.array([0], dtype=np.int64), "axes")])
    save(m, repo, "no_batch")

    # A scalar input and output: y = 2 * x.
    m = make([helper.make_node("Mul", ["x", "two"], ["y"])],
             [helper.make_tensor_value_info("x", TensorProto.FLOAT, [])],
             [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])],
             [numpy_helper.from_array(np.array(2, dtype=np.float32), "two")])
    save(m, repo, "scalar")

    # A string model: lower-cases a [N] string tensor (StringNormalizer).
    m = make([helper.make_node("StringNormalizer", ["text"], ["lower"], case_change_action="LOWER", locale="C")],
             [helper.make_tensor_value_info("text", TensorProto.STRING, ["n"])],
             [helper.make_tensor_value_info("lower", TensorProto.STRING, ["n"])])
    save(m, repo, "strings")

    # Dynamic non-batch dims pinned by config.yaml (Triton's input/output dims).
    m = make([helper.make_node("Identity", ["x"], ["y"])],
             [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "d"])],
             [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "d"])])
    save(m, repo, "pinned", config="""# Pins the model's variable second dimension to 4.
max_batch_size: 8
input:
  - name: x
    data_type: TYPE_FP32
    dims: [4]
output:
  - name: y
    data_type: TYPE_FP32
    dims: [4]
""")

    # Two versions of one signature for the breaker tests: version 1 is an
    # identity on x [n]; version 2 reshapes x to [3], so that it runs only
    # when given exactly 3 elements and fails (500) otherwise.
    save(make([helper.make_node("Identity", ["x"], ["y"])],
              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])]), repo, "breaker", 1)
    save(make([helper.make_node("Reshape", ["x", "three"], ["y"])],
              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
              [numpy_helper.from_array(np.array([3], dtype=np.int64), "three")]), repo, "breaker", 2,
         config="""# Both versions serve; the routing document of each test picks.
version_policy:
  all: {}
""")

    # A variable leading dimension that is not the batch: x [batch, 2] is
    # reshaped to y [2 * batch, 1]. Served with dynamic batching, every
    # request is refused (400), whether or not it shares a run.
    save(make([helper.make_node("Reshape", ["x", "column"], ["y"])],
              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1])],
              [numpy_helper.from_array(np.array([-1, 1], dtype=np.int64), "column")]), repo, "unbatched_output",
         config="""# The output's leading dimension is variable, so the load accepts batching.
max_batch_size: 8
dynamic_batching: {max_queue_delay_microseconds: 2000}
instance_group: [{count: 1}]
""")

    # A 256-feature, 10-class softmax classifier for the drift tests.
    save(mlp([256, 10], seed=7), repo, "drift_mlp")

    # A slow model for lifecycle tests: 400 chained 32x32 orthogonal MatMuls
    # (about 0.4 M multiply-adds a row), two versions with different weights.
    for version, seed in ((1, 5), (2, 6)):
        q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((32, 32)))
        nodes, prev = [], "x"
        for i in range(400):
            nodes.append(helper.make_node("MatMul", [prev, "w"], [f"h{i}"]))
            prev = f"h{i}"
        nodes.append(helper.make_node("Identity", [prev], ["y"]))
        m = make(nodes,
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 32])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 32])],
                 [numpy_helper.from_array(q.astype(np.float32), "w")])
        save(m, repo, "slow", version)

    # Fails at run time unless given exactly 3 elements: for ONNX Runtime errors (500).
    m = make([helper.make_node("Reshape", ["x", "three"], ["y"])],
             [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
             [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
             [numpy_helper.from_array(np.array([3], dtype=np.int64), "three")])
    save(m, repo, "reshape3")

    # An unsupported operator: valid ONNX, but ONNX Runtime cannot load it.
    m = make([helper.make_node("NoSuchOperator", ["x"], ["y"], domain="infergate.test")],
             [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
             [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])])
    m.opset_import.append(helper.make_opsetid("infergate.test", 1))
    d = os.path.join(repo, "bad_operator", "1")
    os.makedirs(d, exist_ok=True)
    onnx.save(m, os.path.join(d, "model.onnx"))

    # A corrupt file: not a protobuf at all.
    d = os.path.join(repo, "corrupt", "1")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(b"this is not an onnx model\n")


def bench_models(out):
    save(mlp([256, 512, 512, 10], seed=3), out, "mlp_256")
    save(mlp([512, 2048, 2048, 10], seed=4), out, "mlp_2048")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench", metavar="DIR", help="write the benchmark MLPs into DIR instead")
    args = p.parse_args()
    if args.bench:
        bench_models(args.bench)
        return
    test_models(os.path.join(ROOT, "testdata", "models"))
    example = os.path.join(ROOT, "configs", "example-repository")
    save(mlp([16, 32, 4], seed=1), example, "mlp", 1, config="""# The example model served by `make run`: a 16 -> 32 -> 4 MLP with a batch axis.
max_batch_size: 64
""")


if __name__ == "__main__":
    main()
