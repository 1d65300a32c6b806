"""The bundle's graph rebuilt for small batches: two packed inputs, one one-hot encoder, fewer nodes.

On a one-row run ONNX Runtime's cost is mostly per input and per node, not per value: the
bundle's graph (skl2onnx's) has one input per feature, a ``OneHotEncoder`` per categorical
feature and the nodes of outputs the server never reads. :func:`packed_graph` gives the same
computation fewer of each:

- two inputs, an (N, C) string matrix and an (N, K) float matrix, the columns in the order named;
- a ``Concat`` of columns of one matrix becomes a ``Gather`` of them (an ``Identity`` if it is
  the whole matrix in order);
- one-hot encoders of single columns (``zeros=1``: unknown values encode as zeros) feeding one
  ``Concat`` become one encoder over the whole string matrix, with the union of their categories,
  and a ``Gather`` of each column's own categories from it: a value another column knows lands in
  a slot nobody gathers, so it is zeros as before;
- a ``Concat`` of a ``Concat`` on the same axis, read by it alone, becomes one ``Concat``;
- only the nodes P(churn) needs are kept, and the graph ends at it (:data:`PACKED_SCORE`, (N, 1)):
  the positive input of skl2onnx's ``Concat(1 - p, p)`` where shape inference shows single
  columns, else a ``Gather`` of the column;
- a column still read on its own comes from a ``Split``.

Every value is computed by the same operator on the same numbers (``Gather``, ``Reshape``,
``Concat`` and ``Identity`` copy; one-hot encoding is exact), so P(churn) is the bundle graph's bit
for bit; :func:`serving.bundle.open_bundle` checks that on probe rows before using it. A graph
without these patterns is only re-plumbed (inputs, pruning, ``Split``, a ``Gather`` at the end).
The XGBoost bundle's 47 nodes become 28; one row runs in 0.42x the bundle graph's time, feeds
included (benchmarks/README.md, twelfth session).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# The packed graph's two inputs and its output: names no bundle graph uses for its own.
PACKED_STRINGS, PACKED_FLOATS = "serving.packed_strings", "serving.packed_floats"
PACKED_SCORE = "serving.score"
ML_DOMAIN = "ai.onnx.ml"


def packed_graph(
    model: onnx.ModelProto, categorical: Sequence[str], numeric: Sequence[str], output: str, column: int
) -> onnx.ModelProto:
    """``model`` computing column ``column`` of ``output`` as :data:`PACKED_SCORE`, an (N, 1) float
    tensor, from (N, len(categorical)) strings and (N, len(numeric)) floats.

    ``categorical`` and ``numeric`` name the graph's own inputs in their matrix's column order.
    """
    graph = model.graph
    columns = {name: (PACKED_STRINGS, i) for i, name in enumerate(categorical)}
    columns |= {name: (PACKED_FLOATS, i) for i, name in enumerate(numeric)}
    widths = {PACKED_STRINGS: len(categorical), PACKED_FLOATS: len(numeric)}
    original = list(graph.node)  # one set of node objects: folding is tracked by their ids
    producer, readers = _wiring(original)
    initializers = list(graph.initializer)

    def constant(name: str, values: list[int]) -> str:
        initializers.append(numpy_helper.from_array(np.asarray(values, dtype=np.int64), f"serving.{name}"))
        return initializers[-1].name

    folded: set[int] = set()  # ids of the encoders a replacement took over
    nodes: list[onnx.NodeProto] = []
    for k, node in enumerate(original):
        rebuilt = None
        if node.op_type == "Concat" and node.domain in ("", "ai.onnx"):
            rebuilt = _gathered_columns(node, columns, widths, lambda v, k=k: constant(f"columns{k}", v))
            if rebuilt is None:
                encoders = [producer.get(name) for name in node.input]
                rebuilt = _one_encoder(node, encoders, columns, readers, len(categorical),
                                       lambda name, v, k=k: constant(f"{name}{k}", v))  # fmt: skip
                if rebuilt is not None:
                    folded.update(id(e) for e in encoders)
        nodes += [node] if rebuilt is None else rebuilt
    nodes = _flattened([n for n in nodes if id(n) not in folded])  # encoders came before their Concat
    nodes = _needed(nodes, output)  # what shape inference sees next: P(churn)'s nodes, not the label's
    inputs = [
        helper.make_tensor_value_info(PACKED_STRINGS, TensorProto.STRING, [None, len(categorical)]),
        helper.make_tensor_value_info(PACKED_FLOATS, TensorProto.FLOAT, [None, len(numeric)]),
    ]
    score = _column_tensor(model, nodes, [*inputs, *graph.input], initializers, output, column)
    if score is None:  # not found in the graph: cut it out of the output
        score = f"serving.{output}.column"
        gather = [output, constant("column", [column])]
        nodes.append(helper.make_node("Gather", gather, [score], axis=1))
    nodes = [_renamed(n, score, PACKED_SCORE) for n in _needed(nodes, score)]

    read = {name for node in nodes for name in node.input}
    split = []
    for packed, names in ((PACKED_STRINGS, categorical), (PACKED_FLOATS, numeric)):
        if read.isdisjoint(names):
            continue
        if _opset(model) >= 13:  # the split sizes became an input in opset 13
            sizes = constant(f"{packed.removeprefix('serving.')}.sizes", [1] * len(names))
            split.append(helper.make_node("Split", [packed, sizes], list(names), axis=1))
        else:
            split.append(helper.make_node("Split", [packed], list(names), axis=1, split=[1] * len(names)))
    nodes = split + nodes
    read = {name for node in nodes for name in node.input}
    outputs = [helper.make_tensor_value_info(PACKED_SCORE, TensorProto.FLOAT, [None, 1])]
    rebuilt_graph = helper.make_graph(
        nodes, graph.name, inputs, outputs, [t for t in initializers if t.name in read]
    )
    return helper.make_model(
        rebuilt_graph, opset_imports=list(model.opset_import), ir_version=model.ir_version
    )


def _gathered_columns(node, columns, widths, constant) -> list[onnx.NodeProto] | None:
    """A ``Concat`` (axis 1) of columns of one packed matrix as a ``Gather`` of them; None if not one."""
    if _axis(node) not in (1, -1) or not node.input or any(name not in columns for name in node.input):
        return None
    matrices = {columns[name][0] for name in node.input}
    if len(matrices) != 1:
        return None
    (packed,) = matrices
    indices = [columns[name][1] for name in node.input]
    if indices == list(range(widths[packed])):  # the matrix itself (ONNX Runtime drops the Identity)
        return [helper.make_node("Identity", [packed], list(node.output))]
    return [helper.make_node("Gather", [packed, constant(indices)], list(node.output), axis=1)]


def _one_encoder(node, encoders, columns, readers, width, constant) -> list[onnx.NodeProto] | None:
    """A ``Concat`` (last axis) of one-hot encoders of single string columns as one encoder of the
    string matrix and a ``Gather``; None if the pattern does not hold exactly."""
    if _axis(node) not in (-1, 2) or not encoders:
        return None
    categories = []
    for encoder in encoders:
        if encoder is None or encoder.op_type != "OneHotEncoder" or encoder.domain != ML_DOMAIN:
            return None
        attributes = {a.name: helper.get_attribute_value(a) for a in encoder.attribute}
        (source,) = encoder.input
        if (
            attributes.get("zeros", 1) != 1  # zeros=0 raises on an unknown value: not foldable
            or "cats_strings" not in attributes
            or columns.get(source, (None,))[0] != PACKED_STRINGS
            or readers[encoder.output[0]] != 1  # its encoding is read by this Concat only
        ):
            return None
        categories.append((columns[source][1], list(attributes["cats_strings"])))
    union = list(dict.fromkeys(c for _, cats in categories for c in cats))
    slot = {c: i for i, c in enumerate(union)}
    picked = [column * len(union) + slot[c] for column, cats in categories for c in cats]
    encoded, flat = f"serving.{node.output[0]}.encoded", f"serving.{node.output[0]}.flat"
    return [
        # (N, C) strings -> (N, C, U) one-hot over the union -> (N, 1, C*U) -> each column's own slots,
        # the (N, 1, total) the per-column encoders' Concat gave
        helper.make_node(
            "OneHotEncoder", [PACKED_STRINGS], [encoded], domain=ML_DOMAIN, cats_strings=union, zeros=1
        ),
        helper.make_node("Reshape", [encoded, constant("shape", [0, 1, width * len(union)])], [flat]),
        helper.make_node("Gather", [flat, constant("slots", picked)], list(node.output), axis=2),
    ]


def _flattened(nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    """A ``Concat`` of a ``Concat`` on the same axis, read by it alone, as one ``Concat``."""
    producer, readers = _wiring(nodes)
    out = []
    for node in nodes:
        if node.op_type == "Concat":
            parts = []
            for name in node.input:
                inner = producer.get(name)
                same = inner is not None and inner.op_type == "Concat" and _axis(inner) == _axis(node)
                parts += list(inner.input) if same and readers[name] == 1 else [name]
            if parts != list(node.input):
                node = helper.make_node("Concat", parts, list(node.output), name=node.name, axis=_axis(node))
        out.append(node)  # an inner Concat left unread is pruned by _needed
    return out


def _column_tensor(
    model: onnx.ModelProto, nodes: list, inputs: list, initializers: list, output: str, column: int
) -> str | None:
    """The tensor that is column ``column`` of ``output``, if ``output`` is (through ``Identity``
    nodes) a ``Concat`` of (N, 1) tensors, as skl2onnx writes ``probabilities``; else None."""
    producer, _ = _wiring(nodes)
    node = producer.get(output)
    while node is not None and node.op_type == "Identity":
        node = producer.get(node.input[0])
    if node is None or node.op_type != "Concat" or _axis(node) not in (1, -1) or column >= len(node.input):
        return None
    try:
        probe = helper.make_model(
            helper.make_graph(nodes, "shapes", inputs, [], initializers),
            opset_imports=list(model.opset_import), ir_version=model.ir_version,
        )  # fmt: skip
        inferred = onnx.shape_inference.infer_shapes(probe).graph.value_info
    except Exception:  # onnx raises its own types; without shapes the column is cut out instead
        return None
    shapes = {v.name: v.type.tensor_type.shape.dim for v in inferred}  # node outputs only
    for name in node.input:  # a graph input or initializer has none here: no node to end the graph at
        dims = shapes.get(name)
        if dims is None or len(dims) != 2 or not dims[1].HasField("dim_value") or dims[1].dim_value != 1:
            return None
    return node.input[column]


def _wiring(nodes: list[onnx.NodeProto]) -> tuple[dict[str, onnx.NodeProto], dict[str, int]]:
    """Each tensor's producing node, and how many node inputs read each tensor."""
    producer = {out: node for node in nodes for out in node.output}
    readers: dict[str, int] = {}
    for node in nodes:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    return producer, readers


def _renamed(node: onnx.NodeProto, old: str, new: str) -> onnx.NodeProto:
    if old not in node.input and old not in node.output:
        return node
    renamed = onnx.NodeProto()
    renamed.CopyFrom(node)
    renamed.input[:] = [new if name == old else name for name in node.input]
    renamed.output[:] = [new if name == old else name for name in node.output]
    return renamed


def _needed(nodes: list[onnx.NodeProto], output: str) -> list[onnx.NodeProto]:
    """The nodes ``output`` depends on, in their order (the graph is topologically sorted)."""
    wanted, kept = {output}, []
    for node in reversed(nodes):
        if not wanted.isdisjoint(node.output):
            kept.append(node)
            wanted.update(node.input)
    return kept[::-1]


def _axis(node: onnx.NodeProto) -> int | None:
    return next((a.i for a in node.attribute if a.name == "axis"), None)


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
