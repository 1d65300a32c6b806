"""The lean v2 route answers exactly as kserve's generic route, and takes the binary tensor extension."""

from __future__ import annotations

import copy
import time

import numpy as np
import orjson
import pytest
from fastapi import FastAPI

from components.config import load_settings
from components.schema import FEATURES
from serving.examples import example_row, v2_binary_request, v2_request
from serving.fast_route import LeanInfer, from_binary, split_strings
from serving.model import ChurnModel
from serving.validation import RequestError
from tests.support.model_server import start_model_server
from tests.support.v2_requests import BAD, body, edit, outputs

pytestmark = pytest.mark.integration


def counter(server, prefix: str) -> float:
    """Sum of every sample of a metric whose line starts with ``prefix``."""
    lines = server.get("/metrics").text.splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(prefix))


def test_same_answer_as_kserve_generic_route(server, generic, test_rows):
    request = v2_request(FEATURES, test_rows.to_dict("records"), "same-1")
    lean, slow = (srv.post("/v2/models/churn/infer", json=request) for srv in (server, generic))
    assert lean.status_code == slow.status_code == 200
    assert lean.json() == slow.json()  # field for field, value for value, id included
    assert lean.headers["content-type"] == slow.headers["content-type"] == "application/json"


def test_x_request_id_header_is_the_id_when_the_body_has_none(server, generic):
    for srv in (server, generic):
        response = srv.post("/v2/models/churn/infer", json=body(1), headers={"x-request-id": "hdr-7"})
        assert response.json()["id"] == "hdr-7"


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_same_errors_as_kserve_generic_route(server, generic, case):
    make, _ = BAD[case]
    request = make(copy.deepcopy(body()))
    lean, slow = (srv.post("/v2/models/churn/infer", json=request) for srv in (server, generic))
    assert (lean.status_code, lean.json()) == (slow.status_code, slow.json())


ODD = {  # (input, changes, status class both routes answer)
    "nested category": ("gender", {"data": [["Male"], [["Female"]]]}, 4),
    "data not a list": ("tenure", {"data": 3.0}, 4),
    "text shape": ("tenure", {"shape": ["2", "1"]}, 2),  # kserve's pydantic reads "2" as 2
}


@pytest.mark.parametrize("case", list(ODD), ids=list(ODD))
def test_odd_bodies_get_the_same_status_on_both_routes(server, generic, case):
    name, changes, status_class = ODD[case]
    request = edit(name, **changes)(body())
    for srv in (server, generic):
        response = srv.post("/v2/models/churn/infer", json=request)
        assert response.status_code // 100 == status_class, (srv is server, response.text)


def test_duplicate_input_is_refused(server):
    request = body()
    request["inputs"].append(copy.deepcopy(request["inputs"][0]))
    response = server.post("/v2/models/churn/infer", json=request)
    assert response.status_code == 400 and "given more than once" in response.json()["error"]


def test_binary_extension_matches_onnx(server, test_rows, onnx_probabilities):
    payload, headers = v2_binary_request(FEATURES, test_rows.to_dict("records"), "bin-1")
    response = server.post("/v2/models/churn/infer", data=payload, headers=headers)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["id"] == "bin-1"
    np.testing.assert_allclose(outputs(answer)["churn_probability"]["data"], onnx_probabilities, atol=1e-6)


def test_binary_extension_is_validated(server):
    row = {**example_row(FEATURES), "tenure": 500.0}
    payload, headers = v2_binary_request(FEATURES, [row])
    response = server.post("/v2/models/churn/infer", data=payload, headers=headers)
    assert response.status_code == 400 and "tenure" in response.json()["error"]


def test_requests_the_lean_route_leaves_to_kserve_still_work(server, test_rows, onnx_probabilities):
    request = v2_request(FEATURES, test_rows.to_dict("records"))
    request["outputs"] = [{"name": "churn_probability"}]  # requested outputs: kserve's route
    answer = server.post("/v2/models/churn/infer", json=request).json()
    assert [o["name"] for o in answer["outputs"]] == ["churn_probability"]
    np.testing.assert_allclose(answer["outputs"][0]["data"], onnx_probabilities, atol=1e-6)
    broken = server.post("/v2/models/churn/infer", data=b"{not json", headers={"Content-Type": "text/json"})
    assert 400 <= broken.status_code < 500  # kserve's own message for a body that is not JSON


def test_lean_route_keeps_kserve_and_churn_metrics(server):
    before_kserve = counter(server, 'request_predict_seconds_count{model_name="churn"}')
    before_ours = counter(server, "churn_rows_total{content_id=")
    for _ in range(3):
        assert server.post("/v2/models/churn/infer", json=body(2)).ok
    assert counter(server, 'request_predict_seconds_count{model_name="churn"}') == before_kserve + 3
    assert counter(server, "churn_rows_total{content_id=") >= before_ours + 6


def test_binary_decoding_rejects_malformed_tensors():
    assert split_strings(b"\x02\x00\x00\x00hi\x01\x00\x00\x00x") == ["hi", "x"]
    assert split_strings(b"\x05\x00\x00\x00hi") is None  # length runs past the end
    assert split_strings(b"\x02\x00\x00\x00\xff\xfe") is None  # not UTF-8
    assert from_binary(np.array([1.5, 2], "<f4").tobytes(), "FP32").tolist() == [1.5, 2.0]
    assert from_binary(b"\x00\x00\x80", "FP32") is None  # not a whole number of floats
    assert from_binary(b"\x01", "BOOL") is None


def test_latency_logging_flag_logs_lean_requests(bundle_dir, tmp_path):
    log = tmp_path / "server.log"
    srv = start_model_server(bundle_dir, log, extra_args=["--enable_latency_logging", "true"])
    try:
        assert srv.post("/v2/models/churn/infer", json=body(1) | {"id": "lat-1"}).ok
        deadline = time.monotonic() + 10
        while "requestId: lat-1, preprocess_ms:" not in srv.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "requestId: lat-1, preprocess_ms:" in srv.log()
    finally:
        srv.stop()


@pytest.mark.parametrize("form", ["JSON", "binary"])
def test_a_request_taken_before_a_reload_is_validated_by_the_model_loaded_since(bundle_dir, form):
    """``take`` validates against the model loaded then; if a reload lands before ``score``, the
    request is validated again against the new one (its typed decoder, else its general path)."""
    model = ChurnModel("reloaded", str(bundle_dir), load_settings({}), max_batch_rows=50)
    assert model.load()
    route = LeanInfer(FastAPI(), model)
    if form == "JSON":
        raw, headers = orjson.dumps(body(3)), []
    else:
        raw, named = v2_binary_request(FEATURES, [example_row(FEATURES)] * 3)
        headers = [(k.lower().encode(), v.encode()) for k, v in named.items()]
    before = route.take(headers, raw)
    assert model.load()  # the same bundle again: a new validator
    assert route.score(before).scored.rows == 3
    taken = route.take(headers, raw)
    model.max_batch_rows = 2
    assert model.load()  # the model loaded now takes 2 rows at most
    with pytest.raises(RequestError) as error:
        route.score(taken)
    assert error.value.label == "batch_too_large"
