"""A lean ``POST /v2/models/{name}/infer`` in front of kserve's generic route, on kserve's own app.

kserve's generic route parses the body into pydantic models, converts them to ``InferRequest``,
builds an ``InferResponse``, converts it back to a pydantic model and runs FastAPI's encoder over
it: ~0.5 ms of a one-row request whose scoring takes ~30 µs. This route reads the raw body: the usual
JSON request decoded and validated in one pass (:meth:`Validator.v2_body`, msgspec), any other with
orjson (JSON, or the v2 binary tensor extension: ``Inference-Header-Content-Length`` + raw
little-endian tensors, BYTES as 4-byte-length-prefixed strings); it scores through the two halves of
:meth:`ChurnModel.score` (:meth:`ChurnModel.evaluate` before the answer is sent,
:meth:`ChurnModel.record` after: same validation, metrics, payload log) and answers pre-encoded JSON
with the same fields, values and errors as the generic route.

Requested ``outputs`` and binary outputs (``binary_data_output`` for all outputs, ``binary_data``
per output, the per-output flag winning) are answered here too, binary ones in the binary tensor
extension (``Inference-Header-Content-Length`` + the raw tensors: FP32 little-endian, BOOL one
byte each). What it does not handle goes to kserve's own route untouched: a model still loading and
bodies that are not a well-formed v2 request (so kserve's messages stay the answer for those).
:mod:`serving.http_edge` in front has read the body (within its limit) already, and refused a
compressed one (415).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import orjson
from fastapi import FastAPI
from kserve.logging import trace_logger
from starlette.routing import Match, Route

from serving import metrics
from serving.http_edge import compressed, read_body, replaying
from serving.model import ChurnModel, Scored
from serving.validation import REQUEST_KEYS, Batch, Column, RequestError, Validator, by_name

BINARY_DTYPES = {
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8", "INT8": "i1", "INT16": "<i2", "INT32": "<i4",
    "INT64": "<i8", "UINT8": "u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
}  # fmt: skip
_LENGTH = struct.Struct("<I")
JSON_HEADERS = [(b"content-type", b"application/json")]
BINARY_HEADERS = [(b"content-type", b"application/octet-stream")]
OUTPUT_NAMES = ("churn_probability", "churn")
# A request naming no outputs gets every output, JSON or all binary: shared, never mutated.
EVERY_OUTPUT = {flag: tuple((name, flag) for name in OUTPUT_NAMES) for flag in (False, True)}
Headers = list[tuple[bytes, bytes]]  # a request's, as ASGI and uvicorn's protocol hold them


class Answer(NamedTuple):
    """A 200 answer: headers (content-length included), body, and what :meth:`LeanInfer.finish` records."""

    headers: list[tuple[bytes, bytes]]
    content: bytes
    scored: Scored
    times: tuple[float, float, float, float]  # perf_counter: started, parsed, scored, encoded


class Taken(NamedTuple):
    """A request :meth:`LeanInfer.take` parsed and validated, for :meth:`LeanInfer.score`."""

    head: Head
    validate: Callable[[Validator], Batch]  # for ChurnModel.evaluate
    started: float  # perf_counter
    parsed: float


def install(app: FastAPI, model: ChurnModel | LeanInfer) -> Route:
    """Put the lean route (of ``model``, or that endpoint) first on ``app`` (kserve's routes follow)."""
    endpoint = model if isinstance(model, LeanInfer) else LeanInfer(app, model)
    route = Route(f"/v2/models/{endpoint.model.name}/infer", endpoint, methods=["POST"])
    app.router.routes.insert(0, route)
    return route


class LeanInfer:
    """The raw ASGI endpoint: body -> feeds -> ONNX Runtime -> pre-encoded JSON."""

    def __init__(self, app: FastAPI, model: ChurnModel):
        self.app, self.model = app, model
        self.stages = metrics.stage_times(model.name)  # kserve's three stage histograms

    async def __call__(self, scope: dict, receive, send) -> None:
        body = await read_body(receive)
        answer = self.answer(scope["headers"], body)
        if answer is None:
            await self.generic(scope, body, receive, send)
            return
        try:
            await send({"type": "http.response.start", "status": 200, "headers": answer.headers})
            await send({"type": "http.response.body", "body": answer.content})
        finally:  # scored is scored, whether or not the client stayed to read it
            self.finish(answer)

    def answer(self, headers: Headers, body: bytes) -> Answer | None:
        """The 200 answer to a v2 infer request; None: kserve's route answers it; raises its errors.

        Synchronous: the ASGI route above and the HTTP protocol of :mod:`serving.lean_http` share it.
        The caller writes the answer, then calls :meth:`finish` with it.
        """
        taken = self.take(headers, body)
        return None if taken is None else self.score(taken)

    def take(self, headers: Headers, body: bytes) -> Taken | None:
        """A request parsed and validated for :meth:`score`; None: kserve's route answers it; raises
        the errors found before scoring (an unknown output; validation's are raised by :meth:`score`)."""
        started = time.perf_counter()
        scanned = scan_headers(headers) if self.model.ready else None
        if scanned is None:
            return None
        json_length, header_id = scanned
        validator = self.model.validator
        # The usual JSON request is decoded and validated in one pass, without a dict per input.
        typed = validator.v2_body(body) if json_length is None and validator is not None else None
        head = typed_head(typed[0], header_id) if typed is not None else None
        fast = typed[1] if head is not None else None
        inputs = None
        if head is None:
            head = parse_head(json_length, header_id, body)
            inputs = None if head is None else parse_inputs(head, body)
            if inputs is None:
                return None
        for name, _ in head.outputs:
            if name not in OUTPUT_NAMES:  # kserve's message for the same request
                error = RequestError(
                    "unknown_output", f"Unexpected inference output '{name}' for model '{self.model.name}'"
                )
                error.request_id = head.request_id  # for its log line
                raise error

        def validate(current: Validator) -> Batch:
            if fast is not None and current is validator:
                return fast
            # the general path, or a reload since: validate against the model now loaded (a body
            # the former model's types decoded is well-formed JSON: parse_head takes it)
            parsed = inputs if inputs is not None else parse_inputs(parse_head(None, header_id, body), body)
            return current.columns(by_name(parsed))

        return Taken(head, validate, started, time.perf_counter())

    def score(self, taken: Taken) -> Answer:
        """The 200 answer of a taken request (:meth:`ChurnModel.evaluate`); raises its errors."""
        return self.encode(taken, self.model.evaluate(taken.validate, taken.head.request_id))

    def score_many(self, taken: list[Taken]) -> list[Answer | Exception]:
        """:meth:`score` for requests that arrived together, the valid ones in one ONNX Runtime run
        (:meth:`ChurnModel.evaluate_many`); raised errors are returned."""
        scored = self.model.evaluate_many([(t.validate, t.head.request_id) for t in taken])
        return [
            s if isinstance(s, Exception) else self.encode(t, s) for t, s in zip(taken, scored, strict=True)
        ]

    def encode(self, taken: Taken, scored: Scored) -> Answer:
        """The 200 answer of a scored request, with its stage times."""
        scored_at = time.perf_counter()
        content, json_length = encode_response(self.model.name, scored, taken.head.outputs)
        headers = JSON_HEADERS if json_length is None else [
            *BINARY_HEADERS, (b"inference-header-content-length", str(json_length).encode())
        ]  # fmt: skip
        headers = [*headers, (b"content-length", str(len(content)).encode())]
        times = (taken.started, taken.parsed, scored_at, time.perf_counter())
        return Answer(headers, content, scored, times)

    def finish(self, answer: Answer) -> None:
        """Record a written answer: the model's counters and payload log, kserve's stage histograms
        and its ``--enable_latency_logging`` line (same format).

        Kept off the answer's path on purpose: the client reads the answer meanwhile.
        """
        self.model.record(answer.scored)
        started, parsed, scored_at, done = answer.times
        self.stages.observe(parsed - started, scored_at - parsed, done - scored_at)
        if self.model.enable_latency_logging:
            trace_logger.info(
                f"requestId: {answer.scored.request_id}, preprocess_ms: {(parsed - started) * 1000}, "
                f"explain_ms: 0, predict_ms: {(scored_at - parsed) * 1000}, "
                f"postprocess_ms: {(done - scored_at) * 1000}"
            )

    async def generic(self, scope: dict, body: bytes, receive, send) -> None:
        """Hand the request, body already read, to the route kserve registered for it."""
        replay = replaying(body, receive)
        for route in self.app.router.routes:
            if getattr(route, "app", None) is self:
                continue
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                await route.handle({**scope, **child_scope}, replay, send)
                return
        raise RuntimeError(f"no kserve route for {scope['path']}")  # kserve always registers one


def encode_response(
    model_name: str, scored: Scored, outputs: Sequence[tuple[str, bool]]
) -> tuple[bytes, int | None]:
    """The v2 response and, if any output is binary, the length of its JSON header.

    All-JSON answers are field for field what kserve's generic route writes; binary ones follow
    kserve's ``InferResponse.to_rest``: a JSON header whose binary outputs carry
    ``parameters.binary_data_size``, then those tensors' bytes in output order.
    """
    tensors = {
        "churn_probability": ("FP32", scored.scores, "<f4"),
        "churn": ("BOOL", scored.churn, "?"),
    }
    if outputs is EVERY_OUTPUT[False] or not any(binary for _, binary in outputs):
        return orjson.dumps(
            {
                "model_name": model_name,
                "model_version": scored.version,
                "id": scored.request_id,
                "parameters": None,
                "outputs": [
                    {"name": name, "shape": [scored.rows], "datatype": tensors[name][0], "parameters": None,
                     "data": tensors[name][1].tolist()}
                    for name, _ in outputs
                ],
            }
        ), None  # fmt: skip
    described, blobs = [], []
    for name, binary in outputs:
        datatype, values, dtype = tensors[name]
        output: dict = {"name": name, "shape": [scored.rows], "datatype": datatype}
        if binary:
            blobs.append(values.astype(dtype, copy=False).tobytes())
            output["parameters"] = {"binary_data_size": len(blobs[-1])}
        else:
            output["data"] = values.tolist()
        described.append(output)
    header = orjson.dumps(
        {
            "id": scored.request_id,
            "model_name": model_name,
            "model_version": scored.version,
            "outputs": described,
        }
    )
    return header + b"".join(blobs), len(header)


class Head(NamedTuple):
    """A v2 request's parts outside its inputs: JSON document, JSON length (binary extension), id, outputs."""

    doc: dict | None  # None: decoded by Validator.v2_body
    json_length: int | None  # None: a JSON body; else the binary extension's JSON header length
    request_id: Any
    outputs: Sequence[tuple[str, bool]]


def scan_headers(headers: Headers) -> tuple[int | None, str | None] | None:
    """A request's binary-extension JSON length (None: a JSON body; -1: malformed) and ``x-request-id``;
    None if its body is compressed (:mod:`serving.http_edge` answers it: 415)."""
    json_length = header_id = None
    for key, value in headers:
        if key == b"inference-header-content-length":
            json_length = int(value) if value.isdigit() else -1
        elif key == b"x-request-id":
            header_id = value.decode("latin-1") or None
        elif key == b"content-encoding" and compressed(value):
            return None
    return json_length, header_id


def typed_head(request, header_id: str | None) -> Head | None:
    """The head of a request :meth:`Validator.v2_body` decoded; None if its outputs are malformed."""
    outputs = requested_outputs(request.parameters, request.outputs)
    return None if outputs is None else Head(None, None, request.id or header_id, outputs)


def parse_head(json_length: int | None, header_id: str | None, body: bytes) -> Head | None:
    """Everything of a well-formed v2 request but its inputs (:func:`parse_inputs`); else None.

    ``json_length`` and ``header_id`` are what :func:`scan_headers` found.
    """
    if json_length is not None and not 0 < json_length <= len(body):
        return None
    try:
        doc = orjson.loads(body if json_length is None else memoryview(body)[:json_length])
    except orjson.JSONDecodeError:
        return None
    if type(doc) is not dict or not doc.keys() <= REQUEST_KEYS or type(doc.get("inputs")) is not list:
        return None
    outputs = requested_outputs(doc.get("parameters"), doc.get("outputs"))
    if outputs is None:
        return None
    request_id = doc.get("id")
    if request_id is not None and type(request_id) is not str:
        return None
    return Head(doc, json_length, request_id or header_id, outputs)


def parse_inputs(head: Head, body: bytes) -> list[tuple[str, Column]] | None:
    """The named input columns of a request (binary tensors read from ``body``); None if malformed."""
    json_length = head.json_length
    offset, inputs = json_length or 0, []
    for item in head.doc["inputs"]:
        if type(item) is not dict:
            return None
        name, datatype, shape = item.get("name"), item.get("datatype"), item.get("shape")
        if type(name) is not str or type(datatype) is not str or type(shape) is not list:
            return None
        for d in shape:  # a loop, not all(<generator>): ~1 µs less per input
            if type(d) is not int:
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
    return inputs


def requested_outputs(parameters: Any, named: Any) -> Sequence[tuple[str, bool]] | None:
    """``[(output name, binary?), ...]`` to answer (every output if none are named); None if malformed.

    ``parameters`` and ``named`` are the request's ``parameters`` and ``outputs``. The binary flag
    is the output's ``parameters.binary_data``, else the request's ``parameters.binary_data_output``,
    else False (JSON).
    """
    if parameters is None:
        parameters = {}
    elif type(parameters) is not dict:
        return None
    default = parameters.get("binary_data_output", False)
    if type(default) is not bool:
        return None
    if not named:  # absent or []: every output, as kserve does
        return EVERY_OUTPUT[default]
    if type(named) is not list:
        return None
    out = []
    for item in named:
        if type(item) is not dict or type(item.get("name")) is not str:
            return None
        own = item.get("parameters") or {}
        flag = own.get("binary_data") if type(own) is dict else "malformed"
        if flag is not None and type(flag) is not bool:
            return None
        out.append((item["name"], default if flag is None else flag))
    return out


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
