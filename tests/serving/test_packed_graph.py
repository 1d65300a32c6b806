"""serving/packed_graph.py: the rebuilt graph computes the bundle graph's probabilities with fewer nodes."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from components import bundle as contract
from serving.bundle import open_bundle, probe_rows
from serving.packed_graph import ML_DOMAIN as ML
from serving.packed_graph import PACKED_FLOATS, PACKED_SCORE, PACKED_STRINGS, packed_graph


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    onnx.checker.check_model(model)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def packed_run(model: onnx.ModelProto, strings: np.ndarray, floats: np.ndarray) -> np.ndarray:
    """The packed graph's score, (R, 1), for (C, R) strings and (K, R) floats."""
    feeds = {PACKED_STRINGS: strings.T.copy(), PACKED_FLOATS: floats.T.astype(np.float32)}
    return session(model).run([PACKED_SCORE], feeds)[0]


def own_run(model: onnx.ModelProto, output: str, column: int, names, strings, floats) -> np.ndarray:
    """Column ``column`` of the bundle graph's ``output``, (R, 1), on the same rows."""
    feeds = {n: c.reshape(-1, 1) for n, c in zip(names, [*strings, *floats.astype(np.float32)], strict=True)}
    return session(model).run([output], feeds)[0][:, column : column + 1]


def ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


@pytest.fixture(scope="module")
def suite_graph(bundle_dir):
    """The suite's XGBoost bundle (skl2onnx's graph) and its packed graph."""
    opened = open_bundle(bundle_dir)
    categorical = [f for f in opened.features if f.is_categorical]
    numeric = [f for f in opened.features if not f.is_categorical]
    model = onnx.load(bundle_dir / contract.MODEL_FILE)
    output = opened.probabilities_output, opened.positive_column
    packed = packed_graph(model, [f.name for f in categorical], [f.name for f in numeric], *output)
    return model, packed, categorical, numeric, output


def test_the_suite_graph_loses_its_per_feature_encoders_and_unread_outputs(suite_graph):
    """skl2onnx's probabilities are Concat(1 - p, p): the packed graph ends at p itself."""
    model, packed, categorical, _, _ = suite_graph
    assert ops(model).count("OneHotEncoder") == len(categorical)
    assert ops(packed).count("OneHotEncoder") == 1
    assert "Split" not in ops(packed)  # every column is gathered, none read alone
    assert [o.name for o in packed.graph.output] == [PACKED_SCORE]
    producer = {out: node.op_type for node in packed.graph.node for out in node.output}
    assert producer[PACKED_SCORE] == "Sigmoid"  # not Identity(Concat(Sub(1, p), p)), nor a Gather
    assert ops(packed).count("Concat") == 1  # the features' two nested Concats are one
    assert len(packed.graph.node) < len(model.graph.node) - len(categorical) - 4


def test_the_suite_graph_scores_every_category_unknown_value_and_batch_size_bit_for_bit(suite_graph):
    """Random rows drawn from every category, the next column's categories and an unknown value,
    in batches of 1 to 40 rows; and the probe rows open_bundle checks."""
    model, packed, categorical, numeric, output = suite_graph
    names = [f.name for f in [*categorical, *numeric]]
    rng = np.random.default_rng(15)
    for rows in [*range(1, 9), 33, 40]:
        strings = np.array(
            [rng.choice([*f.categories, *categorical[(i + 1) % len(categorical)].categories, "unknown"], rows)
             for i, f in enumerate(categorical)], dtype=object,
        )  # fmt: skip
        floats = np.array([rng.uniform(f.minimum, f.maximum, rows) for f in numeric])
        expected = own_run(model, *output, names, strings, floats)
        assert np.array_equal(packed_run(packed, strings, floats), expected), rows
    strings, floats = probe_rows(categorical, numeric)
    expected = own_run(model, *output, names, strings, floats)
    assert np.array_equal(packed_run(packed, strings, floats), expected)


def tiny_model(zeros_b: int = 1, opset: int = 17) -> onnx.ModelProto:
    """Two string columns one-hot encoded (a: p q; b: q r), two numbers, a linear layer, softmax."""
    inputs = [helper.make_tensor_value_info(n, TensorProto.STRING, [None, 1]) for n in ("a", "b")]
    inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, 1]) for n in ("x", "y")]
    weights = np.arange(14, dtype=np.float32).reshape(7, 2) / 7 - 0.8
    nodes = [
        helper.make_node("OneHotEncoder", ["a"], ["ea"], domain=ML, cats_strings=["p", "q"], zeros=1),
        helper.make_node("OneHotEncoder", ["b"], ["eb"], domain=ML, cats_strings=["q", "r"], zeros=zeros_b),
        helper.make_node("Concat", ["ea", "eb"], ["e"], axis=-1),
        helper.make_node("Reshape", ["e", "shape"], ["e2"]),
        helper.make_node("Concat", ["y", "x"], ["yx"], axis=1),  # not the float matrix's order
        helper.make_node("Mul", ["x", "two"], ["x2"]),  # a column read on its own
        helper.make_node("Concat", ["yx", "x2", "e2"], ["features"], axis=1),
        helper.make_node("MatMul", ["features", "weights"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["logits"], ["label"], axis=1),
    ]  # fmt: skip
    initializers = [
        numpy_helper.from_array(np.array([-1, 4], dtype=np.int64), "shape"),
        numpy_helper.from_array(np.array([2.0], dtype=np.float32), "two"),
        numpy_helper.from_array(weights, "weights"),
    ]
    outputs = [
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2]),
        helper.make_tensor_value_info("label", TensorProto.INT64, [None, 1]),
    ]
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, initializers)
    opsets = [helper.make_opsetid("", opset), helper.make_opsetid("ai.onnx.ml", 3)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=8)


TINY_STRINGS = np.array([["p", "q", "r", "zz", "p", "q"], ["q", "r", "p", "q", "zz", "r"]], dtype=object)
TINY_FLOATS = np.array([[0.5, -1.0, 3.0, 0.0, 2.5, 1.0], [1.5, 2.0, -3.0, 0.25, 0.0, 7.0]])


@pytest.mark.parametrize("opset", [12, 17])
@pytest.mark.parametrize("column", [0, 1])
def test_a_small_graph_is_folded_and_a_column_read_alone_comes_from_a_split(opset, column):
    """b's "p" (a's category, not b's) and "zz" (nobody's) encode as zeros, as b's own encoder did;
    the softmax's column is cut out of it by a Gather (no Concat of columns to take it from)."""
    model = tiny_model(opset=opset)
    packed = packed_graph(model, ["a", "b"], ["x", "y"], "probabilities", column)
    assert ops(packed).count("OneHotEncoder") == 1
    assert ops(packed)[0] == "Split" and "ArgMax" not in ops(packed)
    assert ops(packed)[-2:] == ["Softmax", "Gather"]
    expected = own_run(model, "probabilities", column, ["a", "b", "x", "y"], TINY_STRINGS, TINY_FLOATS)
    assert np.array_equal(packed_run(packed, TINY_STRINGS, TINY_FLOATS), expected)


def test_an_encoder_that_raises_on_unknown_values_is_not_folded():
    """zeros=0: b's encoder refuses "p"; one encoder for both columns would refuse it for a too."""
    model = tiny_model(zeros_b=0)
    packed = packed_graph(model, ["a", "b"], ["x", "y"], "probabilities", 1)
    assert ops(packed).count("OneHotEncoder") == 2
    known = TINY_STRINGS[:, :2]  # b: q, r only
    floats = TINY_FLOATS[:, :2]
    expected = own_run(model, "probabilities", 1, ["a", "b", "x", "y"], known, floats)
    assert np.array_equal(packed_run(packed, known, floats), expected)
    with pytest.raises(Exception, match=r"(?i)unknown|not found|category"):
        packed_run(packed, TINY_STRINGS[:, 2:3], TINY_FLOATS[:, 2:3])


def test_a_column_that_is_a_graph_input_is_cut_out_by_a_gather():
    """probabilities = Concat(1 - y, y) with y an input: no node ends at y, so a Gather takes it."""
    inputs = [helper.make_tensor_value_info(n, TensorProto.STRING, [None, 1]) for n in ("a", "b")]
    inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, 1]) for n in ("x", "y")]
    nodes = [
        helper.make_node("Sub", ["one", "y"], ["q"]),
        helper.make_node("Concat", ["q", "y"], ["probabilities"], axis=1),
    ]
    one = numpy_helper.from_array(np.array([1.0], dtype=np.float32), "one")
    output = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])
    graph = helper.make_graph(nodes, "input column", inputs, [output], [one])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    packed = packed_graph(model, ["a", "b"], ["x", "y"], "probabilities", 1)
    assert ops(packed)[-1] == "Gather"
    expected = own_run(model, "probabilities", 1, ["a", "b", "x", "y"], TINY_STRINGS, TINY_FLOATS)
    assert np.array_equal(packed_run(packed, TINY_STRINGS, TINY_FLOATS), expected)
