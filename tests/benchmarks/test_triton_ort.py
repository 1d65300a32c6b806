"""benchmarks.triton_ort without Triton: the model config read from the real ONNX graph, the skip message.

Triton itself is not needed by the suite (the benchmark starts it where it is installed); these
tests check the parts that decide what Triton is asked to serve.
"""

from __future__ import annotations

import re

import pytest

from benchmarks import triton_ort
from components.bundle import MODEL_FILE
from components.schema import FEATURES


def tensors(config: str, block: str) -> list[tuple[str, str, str]]:
    body = re.search(rf"^{block} \[\n(.*?)\n\]", config, re.S | re.M).group(1)
    return re.findall(r'name: "([^"]+)" data_type: (\w+) dims: \[ ([^\]]*) \]', body)


def test_model_config_serves_the_bundle_graph_as_is(trained_run):
    config = triton_ort.model_config(trained_run.artifacts.bundle / MODEL_FILE)
    assert tensors(config, "input") == [
        (f.name, "TYPE_STRING" if f.is_categorical else "TYPE_FP32", "-1, 1") for f in FEATURES
    ]
    outputs = [("label", "TYPE_INT64", "-1"), ("probabilities", "TYPE_FP32", "-1, 2")]
    assert tensors(config, "output") == outputs
    assert 'backend: "onnxruntime"' in config and "max_batch_size: 0" in config
    assert "instance_group [ { kind: KIND_CPU count: 1 } ]" in config
    for key in ("intra_op_thread_count", "inter_op_thread_count"):
        assert f'key: "{key}" value: {{ string_value: "1" }}' in config


def test_a_tensor_type_triton_cannot_hold_is_rejected_by_name():
    with pytest.raises(ValueError, match=r"'weird'.*tensor\(float16\)"):
        triton_ort._tensor_config("weird", "tensor(float16)", [None, 1])


def test_a_missing_backend_is_one_sentence_naming_where_it_was_looked_for(tmp_path):
    expected = tmp_path / "backends" / "onnxruntime" / "libtriton_onnxruntime.so"
    with pytest.raises(triton_ort.TritonUnavailable) as raised:
        triton_ort.find_backend(tmp_path)
    message = str(raised.value)
    assert message.startswith("Triton-ORT skipped:") and str(expected) in message
    expected.parent.mkdir(parents=True)
    expected.write_bytes(b"\x7fELF")
    assert triton_ort.find_backend(tmp_path) == expected
