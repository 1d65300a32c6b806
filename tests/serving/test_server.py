"""The real server on 127.0.0.1: every protocol agrees with ONNX Runtime, bad input is refused clearly."""

from __future__ import annotations

import asyncio
import copy
import time

import numpy as np
import pandas as pd
import pytest
from kserve import InferenceGRPCClient, InferenceRESTClient, RESTConfig
from kserve.protocol.infer_type import InferInput, InferRequest

from components.schema import FEATURES
from serving.examples import example_row, v2_request
from tests.support.v2_requests import BAD, body, outputs

pytestmark = pytest.mark.integration


def infer(server, request) -> dict:
    response = server.post(f"/v2/models/{server.model_name}/infer", json=request)
    assert response.status_code == 200, response.text
    return response.json()


def kserve_request(rows: pd.DataFrame, binary: bool) -> InferRequest:
    """A request built with kserve's own types, categoricals as numpy str objects."""
    inputs = []
    for f in FEATURES:
        array = rows[[f.name]].to_numpy(dtype=object if f.is_categorical else np.float32)
        item = InferInput(f.name, list(array.shape), f.v2_datatype)
        item.set_data_from_numpy(array, binary_data=binary)
        inputs.append(item)
    return InferRequest(model_name="churn", infer_inputs=inputs, request_id="kserve-client")


def test_v2_rest_matches_onnx_and_names_the_version(server, test_rows, onnx_probabilities, metadata):
    answer = infer(server, v2_request(FEATURES, test_rows.to_dict("records")))  # no "id" on purpose
    out = outputs(answer)
    assert out["churn_probability"]["datatype"] == "FP32"
    assert out["churn"]["datatype"] == "BOOL"
    np.testing.assert_allclose(out["churn_probability"]["data"], onnx_probabilities, atol=1e-6)
    assert out["churn"]["data"] == (onnx_probabilities >= metadata.threshold).tolist()
    # A run-folder bundle has no registry version: responses name its content id instead.
    assert metadata.registry_version is None
    assert answer["model_version"] == metadata.content_id
    assert answer["id"]  # generated when the request has none


def test_request_id_is_echoed(server, test_rows):
    assert infer(server, v2_request(FEATURES, test_rows.head(1).to_dict("records"), "abc-1"))["id"] == "abc-1"


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary-extension"])
def test_kserve_rest_client(server, test_rows, onnx_probabilities, binary):
    async def call():
        client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
        try:
            return await client.infer(server.url, kserve_request(test_rows, binary), model_name="churn")
        finally:
            await client.close()

    response = asyncio.run(call())
    probabilities = response.get_output_by_name("churn_probability").as_numpy()
    np.testing.assert_allclose(probabilities, onnx_probabilities, atol=1e-6)


@pytest.mark.parametrize("binary", [False, True], ids=["contents", "raw-contents"])
def test_kserve_grpc_client_bytes(server, test_rows, onnx_probabilities, binary):
    async def call():
        client = InferenceGRPCClient(server.grpc_target, timeout=30)
        try:
            return await client.infer(kserve_request(test_rows, binary))
        finally:
            await client.close()

    response = asyncio.run(call())
    np.testing.assert_allclose(
        response.get_output_by_name("churn_probability").as_numpy(), onnx_probabilities, atol=1e-6
    )
    assert response.get_output_by_name("churn").as_numpy().dtype == np.bool_


def test_v1_instances(server, test_rows, onnx_probabilities, metadata):
    response = server.post("/v1/models/churn:predict", json={"instances": test_rows.to_dict("records")})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model_version"] == metadata.content_id
    np.testing.assert_allclose(
        [p["churn_probability"] for p in answer["predictions"]], onnx_probabilities, atol=1e-6
    )


def test_metadata_lists_every_input_and_both_identities(server, metadata):
    meta = server.get("/v2/models/churn").json()
    assert meta["parameters"] == {
        "model_version": metadata.content_id,
        "content_sha256": metadata.content_sha256,
        "registry_version": None,
        "registered_model": None,
    }
    assert [(i["name"], i["datatype"], i["shape"]) for i in meta["inputs"]] == [
        (f.name, f.v2_datatype, [-1, 1]) for f in FEATURES
    ]
    assert {o["name"] for o in meta["outputs"]} == {"churn_probability", "churn"}
    assert server.get("/v2/health/live").ok and server.get("/v2/health/ready").ok
    assert server.get("/v2/models/churn/ready").json()["ready"] is True


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input_is_refused_and_server_keeps_serving(server, case):
    make, expected = BAD[case]
    response = server.post("/v2/models/churn/infer", json=make(copy.deepcopy(body())))
    assert 400 <= response.status_code < 500, response.text
    assert expected in response.json()["error"]
    assert outputs(infer(server, body(1)))["churn_probability"]["shape"] == [1]


def test_bad_v1_record_names_the_field(server):
    record = example_row(FEATURES)
    del record["Contract"]
    response = server.post("/v1/models/churn:predict", json={"instances": [example_row(FEATURES), record]})
    assert response.status_code == 400
    assert "instance 1" in response.json()["error"] and "Contract" in response.json()["error"]


def test_bad_grpc_input_is_invalid_argument(server, test_rows):
    import grpc

    request = kserve_request(test_rows.head(2), binary=False)
    request.inputs = [i for i in request.inputs if i.name != "PaymentMethod"]

    async def call():
        client = InferenceGRPCClient(server.grpc_target, timeout=30, retries=0)
        try:
            return await client.infer(request)
        finally:
            await client.close()

    with pytest.raises(grpc.RpcError) as error:
        asyncio.run(call())
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "PaymentMethod" in error.value.details()


def test_unknown_category_is_scored_and_counted(server):
    def unknown_total() -> float:
        for line in server.get("/metrics").text.splitlines():
            if line.startswith("churn_unknown_categories_total{") and 'feature="PaymentMethod"' in line:
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = unknown_total()
    row = {**example_row(FEATURES), "PaymentMethod": "Bitcoin"}
    probability = outputs(infer(server, v2_request(FEATURES, [row, row])))["churn_probability"]["data"]
    assert len(probability) == 2 and 0.0 <= probability[0] <= 1.0
    assert unknown_total() == before + 2


def test_metrics_are_exposed_with_both_identities(server, metadata):
    infer(server, body(3))
    text = server.get("/metrics").text
    # Both identities label every per-version series (the exposition sorts labels by name).
    version = (
        f'content_id="{metadata.content_id}",model_name="churn",outcome="ok",registry_version="unregistered"'
    )
    for name in (
        "request_predict_seconds_bucket",  # kserve's own
        "churn_requests_total{" + version,
        "churn_rows_total{" + version,
        f'content_sha256="{metadata.content_sha256}"',  # on churn_model_info
        "churn_prediction_score_bucket",
        "churn_positive_predictions_total",
        "churn_validation_errors_total",
        "churn_model_load_seconds",
        "churn_model_info",
    ):
        assert name in text, name


def test_request_latency_is_counted_per_version_and_status_class(server, metadata):
    version = f'content_id="{metadata.content_id}",model_name="churn",registry_version="unregistered"'

    def count(code: str) -> float:
        prefix = f'churn_request_duration_seconds_count{{code="{code}",{version}}}'
        lines = [line for line in server.get("/metrics").text.splitlines() if line.startswith(prefix)]
        return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0

    ok, bad = count("2xx"), count("4xx")
    infer(server, body(2))  # lean v2 route
    assert server.post("/v1/models/churn:predict", json={"instances": [example_row(FEATURES)]}).ok
    assert server.post("/v2/models/churn/infer", json=BAD["missing input"][0](body(2))).status_code == 400
    assert server.get("/v2/models/churn").ok  # metadata is not an inference request
    assert (count("2xx"), count("4xx")) == (ok + 2, bad + 1)


def test_payload_log_writes_served_rows(server, test_rows, onnx_probabilities, metadata):
    infer(server, v2_request(FEATURES, test_rows.to_dict("records"), "payload-check"))
    deadline, logged = time.monotonic() + 20, pd.DataFrame()
    while time.monotonic() < deadline:
        files = sorted(server.payload_dir.glob("*.parquet"))
        if files:
            logged = pd.concat([pd.read_parquet(f) for f in files])
            logged = logged[logged.request_id == "payload-check"]
            if len(logged) == len(test_rows):
                break
        time.sleep(0.3)
    assert len(logged) == len(test_rows)
    identity = {"model_version", "content_sha256", "registry_version"}
    assert {f.name for f in FEATURES} | {"timestamp", "churn_probability", "churn"} | identity <= set(logged)
    assert logged.content_sha256.unique().tolist() == [metadata.content_sha256]
    assert logged.registry_version.isna().all()
    np.testing.assert_allclose(logged.churn_probability.to_numpy(), onnx_probabilities, atol=1e-6)
    assert logged.Contract.tolist() == test_rows.Contract.tolist()
