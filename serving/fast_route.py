"""A lean ``POST /v2/models/{name}/infer`` in front of kserve's generic route, on kserve's own app.

kserve's generic route parses the body into pydantic models, converts them to ``InferRequest``,
builds an ``InferResponse``, converts it back to a pydantic model and runs FastAPI's encoder over
it: ~0.5 ms of a one-row request whose scoring takes ~30 µs. This route reads the raw body with
orjson (JSON, or the v2 binary tensor extension: ``Inference-Header-Content-Length`` + raw
little-endian tensors, BYTES as 4-byte-length-prefixed strings), scores through the same
:meth:`ChurnModel.score` (same validation, metrics, payload log) and answers pre-encoded JSON with
the same fields, values and errors as the generic route.

What it does not handle goes to kserve's own route untouched: a model still loading, compressed
bodies, requested ``outputs`` or binary outputs, and bodies that are not a well-formed v2 request
(so kserve's messages stay the answer for those).
"""

from __future__ import annotations

import struct
import time
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI
from kserve.logging import trace_logger
from kserve.metrics import POST_HIST_TIME, PRE_HIST_TIME, PREDICT_HIST_TIME
from starlette.routing import Match, Route

from serving.model import ChurnModel, Scored
from serving.validation import Column, by_name

REQUEST_KEYS = frozenset({"id", "model_name", "parameters", "inputs"})  # kserve's client sends model_name
BINARY_DTYPES = {
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8", "INT8": "i1", "INT16": "<i2", "INT32": "<i4",
    "INT64": "<i8", "UINT8": "u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
}  # fmt: skip
_LENGTH = struct.Struct("<I")
JSON_HEADERS = [(b"content-type", b"application/json")]


def install(app: FastAPI, model: ChurnModel) -> Route:
    """Put the lean route first on ``app`` (kserve adds its own routes behind it at start)."""
    route = Route(f"/v2/models/{model.name}/infer", LeanInfer(app, model), methods=["POST"])
    app.router.routes.insert(0, route)
    return route


class LeanInfer:
    """The raw ASGI endpoint: body -> feeds -> ONNX Runtime -> pre-encoded JSON."""

    def __init__(self, app: FastAPI, model: ChurnModel):
        self.app, self.model = app, model
        self.pre, self.predict, self.post = (
            h.labels(model_name=model.name) for h in (PRE_HIST_TIME, PREDICT_HIST_TIME, POST_HIST_TIME)
        )

    async def __call__(self, scope: dict, receive, send) -> None:
        body = await read_body(receive)
        started = time.perf_counter()
        request = parse_request(scope["headers"], body) if self.model.ready else None
        if request is None:
            await self.generic(scope, body, receive, send)
            return
        request_id, inputs = request
        parsed = time.perf_counter()
        scored = self.model.score(lambda validator: validator.columns(by_name(inputs)), request_id)
        scored_at = time.perf_counter()
        content = encode_response(self.model.name, scored)
        done = time.perf_counter()
        self.pre.observe(parsed - started)
        self.predict.observe(scored_at - parsed)
        self.post.observe(done - scored_at)
        if self.model.enable_latency_logging:  # kserve's --enable_latency_logging line, same format
            trace_logger.info(
                f"requestId: {scored.request_id}, preprocess_ms: {(parsed - started) * 1000}, "
                f"explain_ms: 0, predict_ms: {(scored_at - parsed) * 1000}, "
                f"postprocess_ms: {(done - scored_at) * 1000}"
            )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*JSON_HEADERS, (b"content-length", str(len(content)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": content})

    async def generic(self, scope: dict, body: bytes, receive, send) -> None:
        """Hand the request, body already read, to the route kserve registered for it."""
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        for route in self.app.router.routes:
            if getattr(route, "app", None) is self:
                continue
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                await route.handle({**scope, **child_scope}, replay, send)
                return
        raise RuntimeError(f"no kserve route for {scope['path']}")  # kserve always registers one


def encode_response(model_name: str, scored: Scored) -> bytes:
    """The v2 JSON response, field for field as kserve's generic route writes it."""
    return orjson.dumps(
        {
            "model_name": model_name,
            "model_version": scored.version,
            "id": scored.request_id,
            "parameters": None,
            "outputs": [
                {"name": "churn_probability", "shape": [scored.rows], "datatype": "FP32",
                 "parameters": None, "data": scored.scores.tolist()},
                {"name": "churn", "shape": [scored.rows], "datatype": "BOOL",
                 "parameters": None, "data": scored.churn.tolist()},
            ],
        }
    )  # fmt: skip


async def read_body(receive) -> bytes:
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body"):
        return body
    chunks = [body]
    while message.get("more_body"):
        message = await receive()
        chunks.append(message.get("body", b""))
    return b"".join(chunks)


def parse_request(headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[Any, list] | None:
    """``(id, [(name, Column), ...])`` of a plain v2 request (JSON or binary extension), else None."""
    json_length = header_id = None
    for key, value in headers:
        if key == b"inference-header-content-length":
            json_length = int(value) if value.isdigit() else -1
        elif key == b"x-request-id":
            header_id = value.decode("latin-1") or None
        elif key == b"content-encoding":
            return None  # compressed: kserve's route
    if json_length is not None and not 0 < json_length <= len(body):
        return None
    try:
        doc = orjson.loads(body if json_length is None else memoryview(body)[:json_length])
    except orjson.JSONDecodeError:
        return None
    if type(doc) is not dict or not doc.keys() <= REQUEST_KEYS or type(doc.get("inputs")) is not list:
        return None
    if doc.get("parameters") is not None and (
        type(doc["parameters"]) is not dict or doc["parameters"].get("binary_data_output")
    ):
        return None
    request_id = doc.get("id")
    if request_id is not None and type(request_id) is not str:
        return None
    offset, inputs = json_length or 0, []
    for item in doc["inputs"]:
        if type(item) is not dict:
            return None
        name, datatype, shape = item.get("name"), item.get("datatype"), item.get("shape")
        if type(name) is not str or type(datatype) is not str or type(shape) is not list:
            return None
        if not all(type(d) is int for d in shape):
            return None
        parameters = item.get("parameters") or {}
        size = parameters.get("binary_data_size") if type(parameters) is dict else -1
        if size is None:
            values = item.get("data")
            if type(values) is not list:
                return None
        elif json_length is None or type(size) is not int or not 0 <= size <= len(body) - offset:
            return None
        else:
            values = from_binary(body[offset : offset + size], datatype)
            offset += size
            if values is None:
                return None
        inputs.append((name, Column(values, datatype, shape)))
    return request_id or header_id, inputs


def from_binary(raw: bytes, datatype: str) -> np.ndarray | list[str] | None:
    """One binary-extension tensor: numbers by ``np.frombuffer``, BYTES as ``str``; None if malformed."""
    if datatype == "BYTES":
        return split_strings(raw)
    dtype = BINARY_DTYPES.get(datatype)
    if dtype is None or len(raw) % np.dtype(dtype).itemsize:
        return None
    return np.frombuffer(raw, dtype)


def split_strings(raw: bytes) -> list[str] | None:
    """4-byte little-endian length + UTF-8 bytes, repeated."""
    out, pos, end, unpack = [], 0, len(raw), _LENGTH.unpack_from
    try:
        while pos < end:
            (n,) = unpack(raw, pos)
            pos += 4
            out.append(raw[pos : pos + n].decode())
            pos += n
    except (struct.error, UnicodeDecodeError):
        return None
    return out if pos == end else None
