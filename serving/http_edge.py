"""The HTTP edge in front of kserve's routes: body limit, JSON bodies, one answer and one log line per 4xx.

- :class:`BodyGuard` (ASGI middleware) reads every POST body up to ``--max_body_bytes`` (413
  beyond), refuses a compressed one (415: kserve does not decompress, it would read the compressed
  bytes as JSON), and marks a v2 ``/infer`` body without ``Inference-Header-Content-Length`` as JSON
  whatever its ``Content-Type`` says: kserve's generic route takes any non-JSON content type as
  the binary extension and answers 400 "header is missing" (v2 client libraries send no
  Content-Type; ``curl -d`` sends a form type).
- :func:`install` answers every client error as ``{"error": "..."}`` (FastAPI's 422 validation
  answers become 400s; 404/405 lose FastAPI's ``detail`` shape) and makes each one ONE WARNING line
  with the request id and the reason; only server faults (5xx) keep kserve's traceback.
"""

from __future__ import annotations

import logging
import math
from contextvars import ContextVar
from http import HTTPStatus

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from kserve.errors import InvalidInput, ModelNotFound
from kserve.logging import logger
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from serving.validation import RequestError

# The request's id for log lines: the x-request-id header, replaced by the body's id once known.
REQUEST_ID: ContextVar[str | None] = ContextVar("churn_request_id", default=None)
JSON_CONTENT_TYPE = (b"content-type", b"application/json")


def install(app: FastAPI, max_body_bytes: int) -> None:
    """Add the body guard and the client-error handlers to kserve's ``app`` (before the server starts)."""
    app.add_middleware(BodyGuard, max_body_bytes=max_body_bytes)
    app.add_exception_handler(RequestError, _request_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    # kserve registers its own handlers for the errors it raises (bad binary tensors, unknown
    # model names) at start, after these; they log a traceback, which this filter turns into one line.
    logger.addFilter(_one_line_for_client_errors)


def log_client_error(status: int, reason: object, request_id: str | None = None) -> None:
    """The one log line of a 4xx: status, request id ("-" if none) and reason."""
    logger.warning(
        "client error %d (request id %s): %s", status, request_id or REQUEST_ID.get() or "-", reason
    )


def error_response(status: int, message: str, request_id: str | None = None) -> Response:
    """``{"error": message}`` with ``status``, logged as one line."""
    log_client_error(status, message, request_id)
    return Response(orjson.dumps({"error": message}), status_code=status, media_type="application/json")


def too_large(max_body_bytes: int) -> Response:
    """The 413 answer to a body past ``--max_body_bytes`` (logged as one line)."""
    message = (
        f"request body is larger than {max_body_bytes} bytes, the most this server takes (--max_body_bytes)"
    )
    return error_response(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, message)


def compressed(content_encoding: bytes) -> bool:
    """Whether a ``Content-Encoding`` header's value says the body is compressed."""
    return content_encoding.strip().lower() not in (b"", b"identity")


def not_decompressed(encoding: str) -> Response:
    """The 415 answer to a compressed body (logged as one line): no route here decompresses."""
    message = f"Content-Encoding {encoding!r} is not supported: send the body uncompressed"
    return error_response(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, message)


class BodyGuard:
    """Reads POST bodies up to a limit, then hands them on (413 past it); marks v2 JSON bodies as JSON."""

    def __init__(self, app, max_body_bytes: int):
        self.app, self.max_body_bytes = app, max_body_bytes

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers, binary, request_id, encoding = scope["headers"], False, None, None
        for key, value in headers:
            if key == b"inference-header-content-length":
                binary = True
            elif key == b"x-request-id":
                request_id = value.decode("latin-1")
            elif key == b"content-encoding" and compressed(value):
                encoding = value.decode("latin-1")
        REQUEST_ID.set(request_id)
        body = await read_body(receive, self.max_body_bytes)
        if body is None:
            await too_large(self.max_body_bytes)(scope, receive, send)
            return
        if encoding is not None:  # kserve would read the compressed bytes as the body itself
            await not_decompressed(encoding)(scope, receive, send)
            return
        if not binary and scope["path"].endswith("/infer"):
            scope = {
                **scope,
                "headers": [*(h for h in headers if h[0] != b"content-type"), JSON_CONTENT_TYPE],
            }
        await self.app(scope, replaying(body, receive), send)


def replaying(body: bytes, receive):
    """An ASGI ``receive`` that gives ``body`` (already read) as one message, then defers to ``receive``."""
    replayed = False

    async def replay() -> dict:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def read_body(receive, limit: float = math.inf) -> bytes | None:
    """The whole request body, or None if it is longer than ``limit`` bytes.

    A body past the limit is still read to its end, but not kept: the client gets its answer
    only once it has sent everything.
    """
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body"):
        return body if len(body) <= limit else None
    chunks, size = [body], len(body)
    while message.get("more_body"):
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif chunks:
            chunks = []  # over the limit: drop what was kept, read on to the end
    return b"".join(chunks) if size <= limit else None


async def _request_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status", HTTPStatus.BAD_REQUEST)
    return error_response(status, str(exc), getattr(exc, "request_id", None))


async def _validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's 422 for a body that is not a v2 request: a 400 that says what is wrong, in one line."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    # FastAPI tries the body as an InferenceRequest and as bytes: the first explains it best.
    first = next((e for e in errors if "InferenceRequest" in e.get("loc", ())), errors[0] if errors else {})
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "InferenceRequest"))
    if first.get("type") == "json_invalid":
        message = f"the request body is not valid JSON: {first.get('ctx', {}).get('error', first.get('msg'))}"
    elif first.get("type") == "missing" and not where:
        message = "the request body is empty: expected a v2 inference request (JSON with 'inputs')"
    else:
        message = f"not a v2 inference request: {where or 'body'}: {first.get('msg', 'invalid')}"
    return error_response(HTTPStatus.BAD_REQUEST, message)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", HTTPStatus.INTERNAL_SERVER_ERROR)
    if status >= 500:
        logger.error("server error %d on %s", status, request.url.path, exc_info=exc)
    else:
        log_client_error(status, f"{request.method} {request.url.path}: {getattr(exc, 'detail', exc)}")
    return Response(
        orjson.dumps({"error": str(getattr(exc, "detail", exc))}),
        status_code=status,
        media_type="application/json",
        headers=getattr(exc, "headers", None),
    )


def _client_status(exc: BaseException | None) -> int | None:
    if isinstance(exc, InvalidInput):
        return getattr(exc, "status", HTTPStatus.BAD_REQUEST)
    if isinstance(exc, ModelNotFound):
        return HTTPStatus.NOT_FOUND
    return None


def _one_line_for_client_errors(record: logging.LogRecord) -> bool:
    """Rewrite kserve's "Exception:" + traceback record of a client error into the one 4xx line."""
    exc = record.exc_info[1] if record.exc_info else None
    status = _client_status(exc)
    if status is not None and record.levelno >= logging.ERROR:
        record.msg = "client error %d (request id %s): %s"
        record.args = (status, getattr(exc, "request_id", None) or REQUEST_ID.get() or "-", exc)
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info, record.exc_text = None, None
    return True
