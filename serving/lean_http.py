"""The lean v2 infer route answered inside uvicorn's HTTP protocol, below ASGI and starlette.

On a one-row request most of the server's CPU went to the layers around the route: uvicorn's
per-request ASGI task and ``RequestResponseCycle``, then starlette's middleware stack, routing and
response objects. :class:`LeanHttp` is uvicorn's own httptools protocol (same parser, keep-alive
and its timeout, pipelining queue, malformed-request 400s, graceful shutdown) with two
differences. Its keep-alive timeout is one timer per connection, not one made per answer (the
connection still closes once idle for ``--timeout-keep-alive`` seconds). And a
``POST /v2/models/{name}/infer`` is answered synchronously in the parser's callbacks through
:meth:`serving.fast_route.LeanInfer.take` and ``score`` (the code the ASGI lean route runs: same
parsing, validation, scoring), written with the status line and headers uvicorn writes, then recorded by
:meth:`~serving.fast_route.LeanInfer.finish` (same metrics, payload log) while the client reads it.
Everything this layer does in the ASGI stack is done here too: the body limit (413), the
``{"error": ...}`` answers and their one log line (the app's own exception handlers, kserve's
and :mod:`serving.http_edge`'s, are called), the request id for log lines, and the per-version
request latency of :mod:`serving.request_metrics`.

While other connections are sending too, the requests read in one event-loop turn are scored in one
ONNX Runtime run (:class:`Coalescer`), each parsed, validated, answered and recorded on its own.

Every other request goes through uvicorn's ASGI path to kserve's app untouched, and so does an
infer request this layer does not take: the model not loaded yet, a compressed body (refused there
with a 415, :mod:`serving.http_edge`), a body that is not a well-formed v2 request (kserve's
messages stay the answer), a request pipelined behind
one still being answered (answers stay in order), or a URL with a query string.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import NamedTuple

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.protocols.utils import get_client_addr

from serving import metrics
from serving.fast_route import Answer, LeanInfer, Taken
from serving.http_edge import REQUEST_ID, too_large

# How recently another connection must have sent a request for one to wait for company: eight
# closed-loop clients here send within ~0.2 ms of each other; one client's own pace does not count.
ACTIVE_SECONDS = 0.002
SERVER_ERROR_HEADERS = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"21")]


def protocol(route: LeanInfer, max_body_bytes: int) -> type[HttpToolsProtocol]:
    """uvicorn's HTTP protocol class answering ``route``'s model's infer requests (``Config(http=...)``)."""
    path = f"/v2/models/{route.model.name}/infer".encode()
    members = {"route": route, "path": path, "max_body_bytes": max_body_bytes, "coalescer": Coalescer(route)}
    return type("LeanHttp", (LeanHttp,), members)


class Pending(NamedTuple):
    """An infer request this protocol answers, while its body arrives."""

    started: float  # perf_counter when its headers were in (as request_metrics times it)
    keep_alive: bool
    chunks: list[bytes]


@dataclass(slots=True)
class Job:
    """A read infer request waiting for its answer (mutable: a shutdown meanwhile ends keep-alive)."""

    protocol: LeanHttp
    pending: Pending
    request_id: str | None  # its x-request-id header
    taken: Taken | None  # parsed and validated (LeanInfer.take)


class Written(NamedTuple):
    """A written answer, for :meth:`LeanHttp.record`."""

    started: float
    answered: float  # perf_counter when written
    status: int
    answer: Answer | None  # a 200's, to record


class Coalescer:
    """Infer requests read in one event-loop turn, answered together at the start of the next.

    uvloop reads every ready connection in a turn, then runs the callbacks scheduled meanwhile:
    :meth:`flush` scores every request read in the turn in one ONNX Runtime run
    (:meth:`LeanInfer.score_many`), writes every answer, then records them. A request that
    arrives alone waits one turn (an empty poll) for company, so a request waits only when
    company is likely (:meth:`worth_waiting`): another connection sent one within
    :data:`ACTIVE_SECONDS`. An open connection alone is not company: a proxy in front (Knative's
    queue-proxy) keeps idle ones open, and with one of those a lone client's every request waited
    (~56 µs more CPU and +17% p50 per one-row request, measured with one idle connection open).
    """

    def __init__(self, route: LeanInfer):
        self.route = route
        self.jobs: list[Job] = []
        self.sizes = metrics.COALESCED_REQUESTS.labels(route.model.name)
        # The connections of the last two requests from different connections, and when they came
        self.latest: tuple[object, float] = (None, -math.inf)
        self.before: tuple[object, float] = (None, -math.inf)

    def worth_waiting(self, connection: object, arrived: float) -> bool:
        """Whether a request that ``connection`` sent at ``arrived`` (perf_counter) waits for company:
        requests are already waiting, or another connection sent one within :data:`ACTIVE_SECONDS`."""
        if self.latest[0] is not connection:
            self.before, self.latest = self.latest, (connection, arrived)
        else:
            self.latest = (connection, arrived)
        return bool(self.jobs) or arrived - self.before[1] < ACTIVE_SECONDS

    def add(self, job: Job, loop: asyncio.AbstractEventLoop) -> None:
        if not self.jobs:
            loop.call_soon(self.flush)
        self.jobs.append(job)

    def flush(self) -> None:
        jobs, self.jobs = self.jobs, []
        self.sizes.observe(len(jobs))
        try:
            outcomes = self.route.score_many([job.taken for job in jobs])
        except Exception as exc:  # a bug: each request still gets its 500, none waits forever
            outcomes = [exc] * len(jobs)
        written = []
        for job, outcome in zip(jobs, outcomes, strict=True):
            try:
                written.append((job.protocol, job.protocol.reply(job, outcome)))
            except Exception as failure:  # a raise here would leave the next ones unanswered
                job.protocol.logger.error("Exception writing a coalesced answer\n", exc_info=failure)
                job.protocol.transport.close()
        for protocol, done in written:
            protocol.record(done)


class LeanHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol that answers one route itself (see the module docstring)."""

    route: LeanInfer
    path: bytes
    max_body_bytes: int
    coalescer: Coalescer

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pending: Pending | None = None
        self.body_size = 0
        self.queued: Job | None = None  # read, waiting in the coalescer
        self.idle_since: float | None = None  # loop time the last answer completed; None: busy
        self.keep_alive_timer: asyncio.TimerHandle | None = None

    # uvicorn arms a keep-alive timer after every answer and cancels it on the next request's
    # first bytes: a timer made and dropped per request (~3 µs of a one-row request). Here one
    # timer stays armed while the connection is open; when it fires it closes the connection if
    # it has been idle for the whole timeout, waits for the rest of it if it answered since, and
    # lapses while a request is in progress (that request's answer arms it again).
    def on_response_complete(self) -> None:
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self.idle_since = self.loop.time()
        if self.keep_alive_timer is None:
            self.keep_alive_timer = self.loop.call_later(self.timeout_keep_alive, self.keep_alive_due)

    def on_message_begin(self) -> None:
        # uvicorn builds the request's ASGI scope here (~1 µs): only a request handed to the ASGI
        # path uses it, so it is built then (asgi_scope).
        self.url = b""
        self.expect_100_continue = False
        self.headers = []

    def asgi_scope(self) -> None:
        """Build uvicorn's scope of the request whose headers are in, as its ``on_message_begin`` would."""
        url, headers, expect_100_continue = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.url, self.expect_100_continue = url, expect_100_continue
        self.headers += headers  # the list the scope holds

    def _unset_keepalive_if_required(self) -> None:
        self.idle_since = None  # data arrived: busy until the next answer completes

    def keep_alive_due(self) -> None:
        """The keep-alive timer: close the connection if idle for the timeout, else wait the rest."""
        self.keep_alive_timer = None
        if self.idle_since is None or self.transport.is_closing():
            return  # busy: the next completed answer arms it again
        left = self.idle_since + self.timeout_keep_alive - self.loop.time()
        if left > 0:
            self.keep_alive_timer = self.loop.call_later(left, self.keep_alive_due)
        else:
            self.timeout_keep_alive_handler()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.keep_alive_timer is not None:
            self.keep_alive_timer.cancel()
            self.keep_alive_timer = None

    def takes(self) -> bool:
        """Whether the request whose headers just arrived is answered here."""
        return (
            self.url == self.path
            and self.parser.get_method() == b"POST"
            and self.route.model.ready
            and (self.cycle is None or self.cycle.response_complete)  # nothing in flight on it
            and self.queued is None
            and not self.pipeline
            and self.limit_concurrency is None
            and not self.parser.should_upgrade()
        )  # a compressed body is read here, then handed on (LeanInfer.take leaves it to the ASGI app)

    def on_headers_complete(self) -> None:
        # An answer written here marks the connection idle; a request pipelined after it is live.
        self._unset_keepalive_if_required()
        if not self.takes():
            self.asgi_scope()
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
        request_id = None
        for name, value in self.headers:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
                break
        job = Job(self, pending, request_id, None)
        body = pending.chunks[0] if len(pending.chunks) == 1 else b"".join(pending.chunks)
        token = REQUEST_ID.set(request_id)  # for the log line of a client error
        try:
            if self.body_size > self.max_body_bytes:
                outcome = too_large(self.max_body_bytes)
            else:
                outcome = job.taken = self.route.take(self.headers, body)
                if job.taken is not None and not self.coalescer.worth_waiting(self, pending.started):
                    outcome = self.route.score(job.taken)
        except Exception as exc:
            outcome = exc
        finally:
            REQUEST_ID.reset(token)
        if outcome is None:
            self.to_asgi(body)
            return
        if type(outcome) is Taken:  # others are sending too: score with what arrives this turn
            self.queued = job
            self.coalescer.add(job, self.loop)
            return
        self.record(self.reply(job, outcome))

    def reply(self, job: Job, outcome) -> Written:
        """Write the answer to ``job``: an :class:`Answer`, an error, or a starlette ``Response``."""
        self.queued = None
        answer = outcome if type(outcome) is Answer else None
        if answer is not None:
            status, headers, content = 200, answer.headers, answer.content
        else:
            token = REQUEST_ID.set(job.request_id)  # for the error's one log line
            try:
                status, headers, content = (
                    self.handled(outcome) if isinstance(outcome, Exception) else respond(outcome)
                )
            finally:
                REQUEST_ID.reset(token)
        if not self.transport.is_closing():  # a coalesced answer may find its client gone
            self.write(status, headers, content, job.pending.keep_alive)
        return Written(job.pending.started, time.perf_counter(), status, answer)

    def record(self, written: Written) -> None:
        """Count and log a written answer, and its latency up to the write."""
        if written.answer is not None:
            try:  # after the write: the client reads the answer while this counts and logs it
                self.route.finish(written.answer)
            except Exception as failure:  # the answer is out; a raise here would drop the connection
                self.logger.error("Exception recording an answered request\n", exc_info=failure)
        series = self.route.model.series
        if series is not None:
            series.answered(written.answered - written.started, written.status)

    def to_asgi(self, body: bytes) -> None:
        """Hand a request this layer read but does not answer to uvicorn's ASGI path, body and all."""
        self.asgi_scope()
        super().on_headers_complete()  # builds the cycle, starts the ASGI task
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
                self.path.decode("latin-1"),  # the one path taken (self.url may be a later request's)
                self.parser.get_http_version(),
                status,
            )
        if not keep_alive:
            self.transport.close()
        if self.cycle is None or self.cycle.response_complete:
            self.on_response_complete()
        else:  # a coalesced answer, written while the request pipelined behind it is in kserve's app:
            # that one's completion resumes reading, starts the next or marks the connection idle
            self.server_state.total_requests += 1

    def shutdown(self) -> None:
        if self.pending is not None:  # answer the request whose body is arriving, then close
            self.pending = self.pending._replace(keep_alive=False)
        elif self.queued is not None:  # answer the request in the coalescer, then close
            self.queued.pending = self.queued.pending._replace(keep_alive=False)
        else:
            super().shutdown()


def respond(response) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of a starlette ``Response``."""
    return response.status_code, response.raw_headers, response.body
