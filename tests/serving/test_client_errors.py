"""Client errors on both routes: body and id limits (413), malformed or empty bodies (400), one JSON
shape ``{"error": "..."}`` for all, and one log line per client error (no traceback)."""

from __future__ import annotations

import gzip
import json
import re

import pytest

from components.schema import FEATURES
from serving.examples import example_row, v2_binary_request
from tests.support.model_server import start_model_server
from tests.support.v2_requests import body

pytestmark = pytest.mark.integration
MAX_BODY, MAX_ID = 64 * 1024, 32


@pytest.fixture(scope="module", params=["lean", "generic"])
def limited(request, bundle_dir, tmp_path_factory):
    """A server with small limits, on the lean route or on kserve's route alone."""
    work = tmp_path_factory.mktemp(f"limits-{request.param}")
    args = ["--max_body_bytes", str(MAX_BODY), "--max_request_id_chars", str(MAX_ID)]
    if request.param == "generic":
        args.append("--no-lean_infer_route")
    srv = start_model_server(bundle_dir, work / "server.log", extra_args=args)
    yield srv
    srv.stop()


def post(srv, data: bytes, headers: dict | None = None, path: str = "/v2/models/churn/infer"):
    return srv.post(path, data=data, headers=headers or {})


def assert_client_error(response, status: int, *words: str) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    answer = response.json()
    assert list(answer) == ["error"] and isinstance(answer["error"], str), answer
    for word in words:
        assert word in answer["error"], (word, answer["error"])
    return answer["error"]


def test_body_over_the_limit_is_413(limited):
    big = json.dumps({**body(1), "id": "big", "pad": "x" * MAX_BODY}).encode()
    assert_client_error(post(limited, big, {"Content-Type": "application/json"}), 413, str(MAX_BODY))


def test_streamed_body_over_the_limit_is_413(limited):
    """No Content-Length (chunked): the limit holds while reading."""
    chunks = (b"x" * 8192 for _ in range(MAX_BODY // 8192 + 2))
    assert_client_error(post(limited, chunks, {"Content-Type": "application/json"}), 413, str(MAX_BODY))


def test_binary_body_over_the_limit_is_413(limited):
    payload, headers = v2_binary_request(FEATURES, [example_row(FEATURES)] * 600)
    assert len(payload) > MAX_BODY
    assert_client_error(post(limited, payload, headers), 413)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_compressed_body_is_a_415_naming_the_encoding(limited, encoding):
    """Neither route decompresses: a compressed body is refused by name, not misread as bad JSON."""
    compressed = gzip.compress(json.dumps(body(1)).encode())
    headers = {"Content-Type": "application/json", "Content-Encoding": encoding}
    assert_client_error(post(limited, compressed, headers), 415, "Content-Encoding", encoding, "uncompressed")
    plain = post(limited, json.dumps(body(1)).encode(), {"Content-Encoding": "identity"})
    assert plain.status_code == 200, plain.text


@pytest.mark.parametrize("where", ["body", "header"])
def test_request_id_over_the_limit_is_413(limited, where):
    long_id = "i" * (MAX_ID + 1)
    request, headers = body(1), {"Content-Type": "application/json"}
    if where == "body":
        request["id"] = long_id
    else:
        headers["x-request-id"] = long_id
    response = post(limited, json.dumps(request).encode(), headers)
    assert_client_error(response, 413, str(MAX_ID))
    assert long_id not in response.text  # never echoed


def test_id_at_the_limit_is_echoed(limited):
    request = {**body(1), "id": "i" * MAX_ID}
    response = post(limited, json.dumps(request).encode(), {"Content-Type": "application/json"})
    assert response.status_code == 200 and response.json()["id"] == "i" * MAX_ID


MALFORMED = {
    "empty": b"",
    "not json": b"{not json",
    "a list": b"[1, 2]",
    "a string": b'"hello"',
    "no inputs": b"{}",
    "inputs not a list": b'{"inputs": 3}',
    "input not an object": b'{"inputs": [3]}',
    "input without a name": b'{"inputs": [{"datatype": "FP32", "shape": [1], "data": [1]}]}',
    "truncated": json.dumps(body(1)).encode()[:-7],
}


@pytest.mark.parametrize("content_type", [True, False], ids=["json", "no-content-type"])
@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_malformed_body_is_a_400_in_the_one_error_shape(limited, case, content_type):
    headers = {"Content-Type": "application/json"} if content_type else {}
    assert_client_error(post(limited, MALFORMED[case], headers), 400)


def test_unknown_model_and_route_answer_in_the_one_error_shape(limited):
    assert_client_error(
        post(limited, json.dumps(body(1)).encode(), path="/v2/models/nope/infer"), 404, "nope"
    )
    assert_client_error(limited.get("/no/such/route"), 404)
    assert_client_error(limited.get("/v2/models/churn/infer"), 405)


def test_each_client_error_is_one_log_line_with_its_request_id(limited):
    cases = {
        "log-missing": {**body(1), "inputs": body(1)["inputs"][1:]},
        "log-range": {**body(1), "inputs": [
            {**i, "data": [500.0]} if i["name"] == "tenure" else i for i in body(1)["inputs"]]},
        "log-malformed": None,
    }  # fmt: skip
    for request_id, request in cases.items():
        data = b"{oops" if request is None else json.dumps({**request, "id": request_id}).encode()
        response = post(limited, data, {"Content-Type": "application/json", "x-request-id": request_id})
        assert 400 <= response.status_code < 500
    post(limited, b"x" * (MAX_BODY + 1), {"x-request-id": "log-big"})
    log = limited.log()
    assert "Traceback" not in log, log[-3000:]
    for request_id in [*cases, "log-big"]:
        lines = [line for line in log.splitlines() if request_id in line]
        assert len(lines) == 1, (request_id, lines)
        assert re.search(r"\b(WARNING|INFO)\b", lines[0]) and re.search(r"\b4\d\d\b", lines[0]), lines[0]
