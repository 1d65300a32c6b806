"""Every request form of the Open Inference Protocol's HTTP/REST binding, on both routes.

JSON or binary-extension inputs; with or without ``Content-Type``; all outputs or requested
``outputs``; JSON or binary outputs (``binary_data_output`` for all, ``binary_data`` per output,
the per-output flag winning). Each answer is checked against ONNX Runtime's probabilities.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from components.schema import FEATURES
from serving.examples import example_row, v2_binary_request, v2_request
from tests.support.v2_requests import decode

pytestmark = pytest.mark.integration
NAMES = ("churn_probability", "churn")

OUTPUTS = {  # requested outputs -> (names answered in order, per-output binary flag or None)
    "all": (None, NAMES, (None, None)),
    "both": ([{"name": "churn_probability"}, {"name": "churn"}], NAMES, (None, None)),
    "one": ([{"name": "churn"}], ("churn",), (None,)),
    "binary-one": ([{"name": "churn_probability", "parameters": {"binary_data": True}}],
                   ("churn_probability",), (True,)),
    "mixed": ([{"name": "churn", "parameters": {"binary_data": False}},
               {"name": "churn_probability", "parameters": {"binary_data": True}}],
              ("churn", "churn_probability"), (False, True)),
}  # fmt: skip
BINARY_DEFAULT = {"unset": None, "json": False, "binary": True}


def request(rows, inputs: str, content_type: bool, outputs, binary_default) -> tuple[bytes, dict]:
    """The body and headers of one form."""
    if inputs == "binary":
        payload, headers = v2_binary_request(FEATURES, rows, "form")
        length = int(headers["Inference-Header-Content-Length"])
        doc, blobs = json.loads(payload[:length]), payload[length:]
    else:
        doc, blobs, headers = v2_request(FEATURES, rows, "form"), b"", {"Content-Type": "application/json"}
    if outputs is not None:
        doc["outputs"] = outputs
    if binary_default is not None:
        doc["parameters"] = {"binary_data_output": binary_default}
    head = json.dumps(doc).encode()
    if inputs == "binary":
        headers["Inference-Header-Content-Length"] = str(len(head))
    if not content_type:
        headers.pop("Content-Type")
    return head + blobs, headers


FORMS = list(itertools.product(["json", "binary"], [True, False], OUTPUTS, BINARY_DEFAULT))


@pytest.mark.parametrize("route", ["lean", "generic"])
@pytest.mark.parametrize(
    "inputs,content_type,outputs,binary_default",
    FORMS,
    ids=[f"{i}-{'ct' if c else 'no-ct'}-{o}-{b}" for i, c, o, b in FORMS],
)
def test_request_form(server, generic, test_rows, onnx_probabilities, metadata, route, inputs, content_type,
                      outputs, binary_default):  # fmt: skip
    srv = {"lean": server, "generic": generic}[route]
    requested, names, flags = OUTPUTS[outputs]
    payload, headers = request(test_rows.to_dict("records"), inputs, content_type, requested,
                               BINARY_DEFAULT[binary_default])  # fmt: skip
    response = srv.post("/v2/models/churn/infer", data=payload, headers=headers)
    assert response.status_code == 200, response.text
    answer = decode(response)
    assert answer["id"] == "form" and answer["model_name"] == "churn"
    assert [o["name"] for o in answer["outputs"]] == list(names)
    for output, flag in zip(answer["outputs"], flags, strict=True):
        binary = flag if flag is not None else bool(BINARY_DEFAULT[binary_default])
        assert output.get("binary", False) is binary, output["name"]
        assert output["shape"] == [len(test_rows)]
        expected = {
            "churn_probability": onnx_probabilities,
            "churn": onnx_probabilities >= metadata.threshold,
        }[output["name"]]
        np.testing.assert_allclose(output["data"], expected, atol=1e-6)


@pytest.mark.parametrize("route", ["lean", "generic"])
def test_unknown_requested_output_is_a_400_naming_it(server, generic, route):
    srv = {"lean": server, "generic": generic}[route]
    payload, headers = request([example_row(FEATURES)], "json", True, [{"name": "score"}], None)
    response = srv.post("/v2/models/churn/infer", data=payload, headers=headers)
    assert response.status_code == 400 and "score" in response.json()["error"]
