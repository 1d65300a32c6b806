"""The lean v2 infer route answered inside uvicorn's HTTP protocol, below ASGI and starlette.

On a one-row request most of the server's CPU went to the layers around the route: uvicorn's
per-request ASGI task and ``RequestResponseCycle``, then starlette's middleware stack, routing and
response objects. :class:`LeanHttp` is uvicorn's own httptools protocol (same parser, keep-alive,
timeouts, pipelining queue, malformed-request 400s, graceful shutdown) with one difference: a
``POST /v2/models/{name}/infer`` is answered synchronously in the parser's callbacks through
:meth:`serving.fast_route.LeanInfer.answer` (the code the ASGI lean route runs: same parsing,
validation, scoring), written with the status line and headers uvicorn writes, then recorded by
:meth:`~serving.fast_route.LeanInfer.finish` (same metrics, payload log) while the client reads it.
Everything this layer does in the ASGI stack is done here too: the body limit (413), the
``{"error": ...}`` answers and their one log line (the app's own exception handlers, kserve's
and :mod:`serving.http_edge`'s, are called), the request id for log lines, and the per-version
request latency of :mod:`serving.request_metrics`.

Every other request goes through uvicorn's ASGI path to kserve's app untouched, and so does an
infer request this layer does not take: the model not loaded yet, a compressed body, a body that
is not a well-formed v2 request (kserve's messages stay the answer), a request pipelined behind
one still being answered (answers stay in order), or a URL with a query string.
"""

from __future__ import annotations

import logging
import time
from typing import NamedTuple

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.protocols.utils import get_client_addr

from serving.fast_route import LeanInfer
from serving.http_edge import REQUEST_ID, too_large

SERVER_ERROR_HEADERS = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"21")]


def protocol(route: LeanInfer, max_body_bytes: int) -> type[HttpToolsProtocol]:
    """uvicorn's HTTP protocol class answering ``route``'s model's infer requests (``Config(http=...)``)."""
    path = f"/v2/models/{route.model.name}/infer".encode()
    return type("LeanHttp", (LeanHttp,), {"route": route, "path": path, "max_body_bytes": max_body_bytes})


class Pending(NamedTuple):
    """An infer request this protocol answers, while its body arrives."""

    started: float  # perf_counter when its headers were in (as request_metrics times it)
    keep_alive: bool
    chunks: list[bytes]


class LeanHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol that answers one route itself (see the module docstring)."""

    route: LeanInfer
    path: bytes
    max_body_bytes: int

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pending: Pending | None = None
        self.body_size = 0

    def takes(self) -> bool:
        """Whether the request whose headers just arrived is answered here."""
        return (
            self.url == self.path
            and self.parser.get_method() == b"POST"
            and self.route.model.ready
            and (self.cycle is None or self.cycle.response_complete)  # nothing in flight on it
            and not self.pipeline
            and self.limit_concurrency is None
            and not self.parser.should_upgrade()
            and not any(name == b"content-encoding" for name, _ in self.headers)
        )

    def on_headers_complete(self) -> None:
        # An answer written here arms the keep-alive timer; a request pipelined after it is live.
        self._unset_keepalive_if_required()
        if not self.takes():
            super().on_headers_complete()
            return
        keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
        self.pending, self.body_size = Pending(time.perf_counter(), keep_alive, []), 0
        if self.expect_100_continue:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.expect_100_continue = False

    def on_body(self, body: bytes) -> None:
        if self.pending is None:
            super().on_body(body)
            return
        self.body_size += len(body)
        if self.body_size <= self.max_body_bytes:
            self.pending.chunks.append(body)
        elif self.pending.chunks:
            self.pending.chunks.clear()  # over the limit: read on to the end, keep nothing

    def on_message_complete(self) -> None:
        pending = self.pending
        if pending is None:
            super().on_message_complete()
            return
        self.pending = None
        request_id = next((v.decode("latin-1") for k, v in self.headers if k == b"x-request-id"), None)
        token = REQUEST_ID.set(request_id)  # for the one log line of a client error
        answer = None
        try:
            if self.body_size > self.max_body_bytes:
                status, headers, content = respond(too_large(self.max_body_bytes))
            else:
                body = pending.chunks[0] if len(pending.chunks) == 1 else b"".join(pending.chunks)
                try:
                    answer = self.route.answer(self.headers, body)
                except Exception as exc:
                    status, headers, content = self.handled(exc)
                else:
                    if answer is None:
                        self.to_asgi(body)
                        return
                    status, headers, content = 200, answer.headers, answer.content
        finally:
            REQUEST_ID.reset(token)
        self.write(status, headers, content, pending.keep_alive)
        answered = time.perf_counter()
        if answer is not None:
            try:  # after the write: the client reads the answer while this counts and logs it
                self.route.finish(answer)
            except Exception as failure:  # the answer is out; a raise here would drop the connection
                self.logger.error("Exception recording an answered request\n", exc_info=failure)
        series = self.route.model.series
        if series is not None:
            series.answered(answered - pending.started, status)

    def to_asgi(self, body: bytes) -> None:
        """Hand a request this layer read but does not answer to uvicorn's ASGI path, body and all."""
        super().on_headers_complete()  # builds the scope and cycle, starts the ASGI task
        self.cycle.body += body
        self.cycle.more_body = False
        self.cycle.message_event.set()

    def handled(self, exc: Exception) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """The app's answer to ``exc``: the handler starlette would pick (its class's nearest in the MRO).

        Without one (kserve registers one for ``Exception`` at start), or if it fails: uvicorn's
        500 and traceback for an exception escaping an ASGI app.
        """
        handlers = self.route.app.exception_handlers
        handler = next((handlers[c] for c in type(exc).__mro__ if c in handlers), None)
        try:
            if handler is None:
                raise exc
            coroutine = handler(None, exc)  # the handlers answer without awaiting anything
            try:
                coroutine.send(None)
            except StopIteration as done:
                return respond(done.value)
            coroutine.close()
            raise RuntimeError(f"exception handler {handler.__qualname__} awaited outside ASGI")
        except Exception as failure:
            self.logger.error("Exception in the lean infer route\n", exc_info=failure)
            return 500, SERVER_ERROR_HEADERS, b"Internal Server Error"

    def write(self, status: int, headers: list, content: bytes, keep_alive: bool) -> None:
        """Status line, uvicorn's default headers (date, server), ``headers``, body, as uvicorn writes."""
        out = [STATUS_LINE[status]]
        for name, value in (*self.server_state.default_headers, *headers):
            out += (name, b": ", value, b"\r\n")
        if not keep_alive:
            out.append(b"connection: close\r\n")
        out += (b"\r\n", content)
        self.transport.write(b"".join(out))
        if self.access_log and self.access_logger.isEnabledFor(logging.INFO):
            self.access_logger.info(
                '%s - "%s %s HTTP/%s" %d',
                get_client_addr({"client": self.client}),
                "POST",
                self.url.decode("latin-1"),
                self.parser.get_http_version(),
                status,
            )
        if not keep_alive:
            self.transport.close()
        self.on_response_complete()

    def shutdown(self) -> None:
        if self.pending is None:
            super().shutdown()
        else:  # answer the request whose body is arriving, then close
            self.pending = self.pending._replace(keep_alive=False)


def respond(response) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of a starlette ``Response``."""
    return response.status_code, response.raw_headers, response.body
