"""The infer route answered inside uvicorn's HTTP protocol (serving/lean_http.py), on real servers.

HTTP on a raw socket (keep-alive, pipelining, chunked bodies, 100-continue, HTTP/1.0, malformed
requests), eight concurrent clients (no errors, RSS stable), and the same metrics, payload log and
log lines as the lean route inside kserve's ASGI app (``--no-lean_http``) for the same requests.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from pathlib import Path

import orjson
import pandas as pd
import pytest

from components.schema import FEATURES
from serving.examples import example_row, v2_binary_request, v2_request
from tests.support.model_server import start_model_server
from tests.support.v2_requests import body, edit

pytestmark = pytest.mark.integration
PATH = "/v2/models/churn/infer"
MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def pair(bundle_dir, tmp_path_factory):
    """Two servers alike but for ``--lean_http``: ``"http"`` answers in the protocol, ``"asgi"`` not."""
    servers = {}
    try:
        for name, extra in (("http", []), ("asgi", ["--no-lean_http"])):
            work = tmp_path_factory.mktemp(f"lean-{name}")
            args = ["--max_batch_rows", "50", "--max_body_bytes", str(MAX_BODY),
                    "--payload_log_uri", str(work / "payload"),
                    "--payload_log_flush_seconds", "1", *extra]  # fmt: skip
            servers[name] = start_model_server(bundle_dir, work / "server.log", extra_args=args)
            servers[name].payload_dir = work / "payload"
        yield servers
    finally:
        for srv in servers.values():
            srv.stop()


def request_bytes(data: bytes, headers: dict | None = None, path: str = PATH, method: str = "POST") -> bytes:
    head = {"Host": "127.0.0.1", "Content-Length": str(len(data)), **(headers or {})}
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in head.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def read_response(stream) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length from a socket's ``makefile('rb')``."""
    status = stream.readline()
    assert status.startswith(b"HTTP/1.1 "), status
    headers = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status.split()[1]), headers, stream.read(int(headers["content-length"]))


def connect(srv) -> socket.socket:
    return socket.create_connection(("127.0.0.1", srv.http_port), timeout=10)


def on_eight_threads(client) -> None:
    """``client(i)`` for i in 0..7, each on its own thread, all at once; returns when all are done."""
    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def one_row(request_id: str) -> bytes:
    return orjson.dumps(v2_request(FEATURES, [example_row(FEATURES)], request_id))


def test_keep_alive_connection_answers_request_after_request(pair):
    with connect(pair["http"]) as sock, sock.makefile("rb") as stream:
        for i in range(5):
            sock.sendall(request_bytes(one_row(f"ka-{i}")))
            status, headers, content = read_response(stream)
            assert status == 200 and "connection" not in headers
            assert headers["content-type"] == "application/json" and "date" in headers
            assert orjson.loads(content)["id"] == f"ka-{i}"


def test_keep_alive_timeout_closes_only_a_connection_idle_for_all_of_it(bundle_dir, tmp_path):
    """``--timeout-keep-alive 1``: answers 0.6 s apart (the infer route and kserve's) keep the connection
    past the first timeout; it closes once idle for the whole second, not before."""
    srv = start_model_server(bundle_dir, tmp_path / "server.log", extra_args=["--timeout-keep-alive", "1"])
    try:
        with connect(srv) as sock, sock.makefile("rb") as stream:
            for i, (method, path) in enumerate([("POST", PATH), ("GET", "/v2/models/churn"), ("POST", PATH)]):
                if i:
                    time.sleep(0.6)
                sock.sendall(
                    request_bytes(one_row(f"idle-{i}") if method == "POST" else b"", method=method, path=path)
                )
                assert read_response(stream)[0] == 200
            answered = time.monotonic()
            assert stream.read(1) == b""  # the server closed it
            idle = time.monotonic() - answered
        assert 0.9 <= idle < 3, f"closed after {idle:.2f} s idle"
    finally:
        srv.stop()


@pytest.mark.parametrize("server", ["http", "asgi"])
@pytest.mark.parametrize(("method", "path"), [("POST", PATH), ("GET", "/v2/models/churn")])
def test_answers_carry_a_date_and_no_server_header(pair, server, method, path):
    """HTTP requires the date; ``server: uvicorn`` only names the software (and costs every client a line)."""
    data = one_row("hdr") if method == "POST" else b""
    with connect(pair[server]) as sock, sock.makefile("rb") as stream:
        sock.sendall(request_bytes(data, method=method, path=path))
        status, headers, _ = read_response(stream)
    assert status == 200 and "date" in headers and "server" not in headers, headers


@pytest.mark.parametrize("coalescing", [False, True], ids=["alone", "coalescing"])
def test_pipelined_requests_are_answered_in_order(pair, coalescing):
    """Infer, metadata (kserve's app), infer with a bad value, infer: four answers in request order,
    also while another connection is sending (the first infer then waits in the coalescer while the
    metadata request runs in kserve's app)."""
    bad = orjson.dumps(edit("tenure", data=[-5])(v2_request(FEATURES, [example_row(FEATURES)], "p-bad")))
    burst = b"".join([
        request_bytes(one_row("p-1")), request_bytes(b"", method="GET", path="/v2/models/churn"),
        request_bytes(bad), request_bytes(one_row("p-2")),
    ])  # fmt: skip
    runs = coalesced(pair["http"])[0]
    with connect(pair["http"]) as sock, sock.makefile("rb") as stream, connect(pair["http"]) as other:
        if coalescing:  # company: the other connection's request, just answered
            with other.makefile("rb") as other_stream:
                other.sendall(request_bytes(one_row("p-other")))
                assert read_response(other_stream)[0] == 200
        sock.sendall(burst)
        answers = [read_response(stream) for _ in range(4)]
    assert [a[0] for a in answers] == [200, 200, 400, 200]
    assert orjson.loads(answers[0][2])["id"] == "p-1"
    assert orjson.loads(answers[1][2])["name"] == "churn"
    assert "tenure" in orjson.loads(answers[2][2])["error"]
    assert orjson.loads(answers[3][2])["id"] == "p-2"
    assert (coalesced(pair["http"])[0] > runs) == coalescing


def test_idle_connections_do_not_keep_a_lone_client_waiting(pair):
    """A proxy keeps idle connections open: a lone client's requests are still answered at once,
    not held for company that does not come (no coalesced runs)."""
    with connect(pair["http"]) as idle, idle.makefile("rb") as idle_stream:
        idle.sendall(request_bytes(one_row("used-once")))
        assert read_response(idle_stream)[0] == 200
        time.sleep(0.05)  # idle since
        before = coalesced(pair["http"])
        with connect(pair["http"]) as sock, sock.makefile("rb") as stream:
            for i in range(20):
                sock.sendall(request_bytes(one_row(f"lone-{i}")))
                assert read_response(stream)[0] == 200
        assert coalesced(pair["http"]) == before


def test_chunked_body_scores_like_a_sized_one(pair):
    data = one_row("chunked")
    pieces = [data[i : i + 100] for i in range(0, len(data), 100)]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    head = f"POST {PATH} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    with connect(pair["http"]) as sock, sock.makefile("rb") as stream:
        sock.sendall(head + chunked)
        status, _, content = read_response(stream)
        sock.sendall(request_bytes(data))
        _, _, sized = read_response(stream)
    assert status == 200 and orjson.loads(content) == orjson.loads(sized)


def test_chunked_body_over_the_limit_is_413_and_the_connection_lives_on(pair):
    chunk = b"x" * 8192
    chunks = (
        b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(MAX_BODY // 8192 + 2)) + b"0\r\n\r\n"
    )
    head = f"POST {PATH} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    with connect(pair["http"]) as sock, sock.makefile("rb") as stream:
        sock.sendall(head + chunks)
        status, _, content = read_response(stream)
        assert status == 413 and str(MAX_BODY) in orjson.loads(content)["error"]
        sock.sendall(request_bytes(one_row("after-413")))
        assert read_response(stream)[0] == 200


def test_expect_100_continue_gets_continue_then_the_answer(pair):
    data = one_row("continue")
    with connect(pair["http"]) as sock, sock.makefile("rb") as stream:
        sock.sendall(request_bytes(b"", {"Content-Length": str(len(data)), "Expect": "100-continue"}))
        assert stream.readline() == b"HTTP/1.1 100 Continue\r\n" and stream.readline() == b"\r\n"
        sock.sendall(data)
        status, _, content = read_response(stream)
    assert status == 200 and orjson.loads(content)["id"] == "continue"


def test_http_1_0_request_is_answered_and_closed(pair):
    data = one_row("old")
    head = f"POST {PATH} HTTP/1.0\r\nContent-Length: {len(data)}\r\n\r\n".encode()
    with connect(pair["http"]) as sock, sock.makefile("rb") as stream:
        sock.sendall(head + data)
        status, headers, content = read_response(stream)
        assert stream.read() == b""  # closed by the server
    assert status == 200 and headers["connection"] == "close" and orjson.loads(content)["id"] == "old"


def test_malformed_http_is_a_400_and_the_server_serves_on(pair):
    with connect(pair["http"]) as sock, sock.makefile("rb") as stream:
        sock.sendall(b"POST " + PATH.encode() + b" HTTP/1.1\r\nContent-Length: abc\r\n\r\n")
        status, _, content = read_response(stream)
    assert status == 400 and b"Invalid HTTP request" in content
    assert pair["http"].post(PATH, json=body(1)).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        PATH + "?x=1",
        "/v2/models/churn/versions/1/infer",
        "/v2/models/other/infer",
        "/v1/models/churn:predict",
    ],
)
def test_requests_it_does_not_take_are_answered_as_kserve_answers_them(pair, path):
    answers = [srv.post(path, json=body(1), headers={"x-request-id": "other"}) for srv in pair.values()]
    assert answers[0].status_code == answers[1].status_code
    assert answers[0].json() == answers[1].json()


def test_eight_concurrent_clients_no_errors_rss_stable(pair):
    """8 keep-alive connections x 250 one-row requests: every answer 200 with its own id; RSS flat.

    The RSS check compares after two loads (allocations warmed up) with after two more as long,
    each time once the payload log has written what the load left: its first Parquet write maps
    pyarrow's writer and its buffers (~17 MB, once: 252 -> 269 MB), which a reading taken before
    it would count as growth. 14 such loads stayed within 266-269 MB, also with other processes
    busy on both cores (load average 4).
    """
    srv = pair["http"]

    def settle() -> None:
        """Until the payload log has written what the last load left pending: no new file for
        2.5x its 1 s flush interval (rows it dropped, when its queue was full, never come)."""
        deadline, seen, quiet_since = time.monotonic() + 60, None, time.monotonic()
        while time.monotonic() - quiet_since < 2.5:
            files = sorted(srv.payload_dir.rglob("*.parquet"))
            if files != seen:
                seen, quiet_since = files, time.monotonic()
            assert time.monotonic() < deadline, "the payload log kept writing for a minute after a load"
            time.sleep(0.2)

    def rss_mib() -> float:
        status = Path(f"/proc/{srv.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024

    def load(tag: str) -> list[str]:
        failures: list[str] = []

        def client(i: int) -> None:
            try:
                with connect(srv) as sock, sock.makefile("rb") as stream:
                    for n in range(250):
                        rid = f"{tag}-{i}-{n}"
                        sock.sendall(request_bytes(one_row(rid)))
                        status, _, content = read_response(stream)
                        if status != 200 or orjson.loads(content)["id"] != rid:
                            failures.append(f"{rid}: {status} {content[:200]!r}")
            except Exception as exc:  # a thread's exception would otherwise pass unseen
                failures.append(f"client {i}: {exc!r}")

        on_eight_threads(client)
        return failures

    for tag in ("warm-1", "warm-2"):
        assert load(tag) == []
    settle()
    warmed = rss_mib()
    for tag in ("check-1", "check-2"):
        assert load(tag) == []
    settle()
    assert rss_mib() - warmed < 16, (warmed, rss_mib())  # a leak of 4 kB a request would show


def coalesced(srv) -> tuple[float, float]:
    """``churn_coalesced_requests``: (runs, requests answered in them)."""
    text = srv.get("/metrics").text
    runs = re.search(r'^churn_coalesced_requests_count\{model_name="churn"\} (\S+)$', text, re.M)
    total = re.search(r'^churn_coalesced_requests_sum\{model_name="churn"\} (\S+)$', text, re.M)
    return (float(runs.group(1)), float(total.group(1))) if runs else (0.0, 0.0)


def test_concurrent_connections_are_scored_together_each_with_its_own_answer(pair, test_rows):
    """8 connections sending at once: requests read in one event-loop turn share one ONNX Runtime
    run (``churn_coalesced_requests`` counts runs of more than one), and every answer is what the
    ASGI server answers to the same request alone: 4xx byte for byte, 200 field for field with
    P(churn) within 1e-6 (ONNX Runtime's tree ensemble sums a row in a batch in another order than
    alone: up to one float32 ulp, 6e-8, as any multi-row request)."""
    rows = test_rows.to_dict("records")
    bodies = [orjson.dumps(v2_request(FEATURES, [row], f"co-{i}")) for i, row in enumerate(rows)]
    bodies.append(orjson.dumps(v2_request(FEATURES, rows[:3], "co-three")))
    bodies.append(orjson.dumps(edit("tenure", data=[-5])(v2_request(FEATURES, rows[:1], "co-range"))))
    bodies.append(orjson.dumps({**v2_request(FEATURES, rows[:1], "co-out"), "outputs": [{"name": "nope"}]}))
    alone = []
    for data in bodies:
        answer = pair["asgi"].post(PATH, data=data, headers={"content-type": "application/json"})
        alone.append((answer.status_code, answer.content))
    assert [status for status, _ in alone] == [200] * 21 + [400, 400]
    runs, answered = coalesced(pair["http"])
    failures: list[str] = []

    def same(k: int, status: int, content: bytes) -> bool:
        if (status, content) == alone[k]:
            return True
        if status != 200 or alone[k][0] != 200:
            return False
        got, want = orjson.loads(content), orjson.loads(alone[k][1])
        p_got, p_want = got["outputs"][0].pop("data"), want["outputs"][0].pop("data")
        return (
            got == want
            and len(p_got) == len(p_want)
            and max(map(abs, map(float.__sub__, p_got, p_want))) <= 1e-6
        )

    connected = threading.Barrier(8, timeout=30)  # all 8 open before any sends: each may coalesce

    def client(i: int) -> None:
        try:
            with connect(pair["http"]) as sock, sock.makefile("rb") as stream:
                connected.wait()
                for n in range(40):
                    k = (i * 7 + n) % len(bodies)
                    sock.sendall(request_bytes(bodies[k]))
                    status, _, content = read_response(stream)
                    if not same(k, status, content):
                        failures.append(f"{k}: {status} {content!r} != {alone[k][1]!r}")
        except Exception as exc:  # a thread's exception would otherwise pass unseen
            failures.append(f"client {i}: {exc!r}")

    on_eight_threads(client)
    assert failures == []
    runs_after, answered_after = coalesced(pair["http"])
    # Requests go through the coalescer while other connections are sending (not a last client's
    # last ones), and some runs scored several.
    assert answered_after - answered > runs_after - runs > 0


COUNTED = re.compile(
    r"^(churn_(requests|rows|positive_predictions|validation_errors|unknown_categories)_total"
    r"|churn_prediction_score_(bucket|count)|churn_request_duration_seconds_count"
    r"|request_(preprocess|predict|postprocess)_seconds_count)\{"
)


def counted(srv) -> dict[str, float]:
    """The request-path series whose values do not depend on timing (counts, not durations)."""
    out = {}
    for line in srv.get("/metrics").text.splitlines():
        if COUNTED.match(line):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_same_metrics_payload_log_and_log_lines_as_the_asgi_route(pair, test_rows):
    """The same requests to both servers: equal counters, equal payload-log rows, equal 4xx lines."""
    rows = test_rows.to_dict("records")
    unknown = v2_request(FEATURES, rows[:3], "same-unknown")
    unknown["inputs"][[i["name"] for i in unknown["inputs"]].index("Contract")]["data"][0] = "Weekly"
    binary, binary_headers = v2_binary_request(FEATURES, rows[:4])
    sends = [
        ({"json": v2_request(FEATURES, rows[:1], "same-1")}, 200),
        ({"json": v2_request(FEATURES, rows, "same-20")}, 200),
        ({"json": unknown}, 200),
        ({"data": binary, "headers": {**binary_headers, "x-request-id": "same-bin"}}, 200),
        ({"json": edit("tenure", data=[-5])(v2_request(FEATURES, rows[:1], "same-range"))}, 400),
        ({"json": {**v2_request(FEATURES, rows[:1], "same-out"), "outputs": [{"name": "nope"}]}}, 400),
        ({"data": b'{"inputs": [', "headers": {"x-request-id": "same-json"}}, 400),
        ({"data": json.dumps({"pad": "x" * MAX_BODY}), "headers": {"x-request-id": "same-big"}}, 413),
    ]
    before = {name: counted(srv) for name, srv in pair.items()}
    for kwargs, status in sends:
        for srv in pair.values():
            assert srv.post(PATH, **kwargs).status_code == status, kwargs.get("json", kwargs.get("data"))[:80]
    delta = {
        name: {k: v - before[name].get(k, 0.0) for k, v in counted(srv).items()} for name, srv in pair.items()
    }
    assert delta["http"] == delta["asgi"]
    assert delta["http"][next(k for k in delta["http"] if 'outcome="ok"' in k and "requests" in k)] == 4

    def logged(srv) -> pd.DataFrame:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            files = sorted(srv.payload_dir.glob("*.parquet"))
            frame = pd.concat([pd.read_parquet(f) for f in files]) if files else pd.DataFrame()
            frame = frame[frame.request_id.str.startswith("same-")] if len(frame) else frame
            if len(frame) == 1 + 20 + 3 + 4:
                return (
                    frame.drop(columns="timestamp")
                    .sort_values(["request_id", "tenure"])
                    .reset_index(drop=True)
                )
            time.sleep(0.3)
        raise AssertionError(f"payload log of {srv.url} did not get the 28 rows")

    pd.testing.assert_frame_equal(logged(pair["http"]), logged(pair["asgi"]))

    def client_errors(srv) -> list[str]:
        lines = [
            line for line in srv.log().splitlines() if "client error" in line and "(request id same-" in line
        ]
        return [line[line.index("client error") :] for line in lines]

    errors = client_errors(pair["http"])
    assert len(errors) == 4 and errors == client_errors(pair["asgi"])
    assert "Exception in" not in pair["http"].log()  # neither our route's nor uvicorn's ASGI fault line
