"""benchmarks/serving.py's load phases count failures instead of dying on them, and meter server CPU.

A real HTTP server on 127.0.0.1 (the standard library's, one thread per connection) answers every
third request with 503 and drops the connection of every fifth; the 8-client phase must count
those, keep going on a fresh connection, and time only the 200 answers.
"""

from __future__ import annotations

import itertools
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

# benchmarks.serving is imported inside the tests, not here: it imports the real `serving` package,
# and doing that while pytest collects would shadow tests/serving (collected as the package
# `serving`, whose conftest then cannot be found): bare `pytest` failed to collect.


class Flaky(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the benchmark's clients use
    counter = itertools.count(1)
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            n = next(self.counter)
        if n % 5 == 0:
            self.close_connection = True  # no answer at all: the client sees the connection drop
            return
        status = 503 if n % 3 == 0 else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def flaky_port():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_eight_clients_count_non_200_answers_and_dropped_connections(flaky_port):
    from benchmarks.serving import Client, concurrent

    calls = []

    def cpu() -> float:
        calls.append(len(calls))
        return 1.5 * len(calls)  # 1.5 "seconds" between the two reads

    phase = concurrent(lambda: Client(flaky_port, "/", b"{}", {}), 8, 0.5, cpu)
    answered = len(phase.latencies) + phase.errors
    assert answered > 50
    # 1 in 5 dropped, 1 in 3 of the rest (those not multiples of 5) 503: ~7/15 fail.
    assert 0.3 < phase.errors / answered < 0.6
    assert phase.first_error
    assert len(calls) == 2 and phase.server_cpu == pytest.approx(1.5)
    assert phase.cpu_per_request_us() == pytest.approx(1.5 / answered * 1e6)


def test_one_client_fails_loudly_on_a_non_200_answer(flaky_port):
    from benchmarks.serving import Client, sequential

    with pytest.raises((RuntimeError, OSError)):
        sequential(Client(flaky_port, "/", b"{}", {}), 0.2)


def test_issue_15_goals_compare_with_triton_of_the_same_round():
    from benchmarks.serving import OURS, TRITON, issue_15_goals

    ours = {"p50": 0.5, "rps8": 2000.0, "rows_s": 100_000.0, "cpu1_us": 250.0, "cpu8_us": 251.0}
    triton = {"p50": 0.5, "rps8": 2500.0, "rows_s": 90_000.0, "cpu1_us": 200.0, "cpu8_us": 200.0}
    goals = {
        label: (reached.strip(), met)
        for label, reached, _, met in issue_15_goals({OURS: ours, TRITON: triton})
    }
    assert goals == {
        "1-row p50 vs Triton-ORT": ("1.00x", True),  # equal is reached (<= 1.0x)
        "8-client req/s vs Triton-ORT": ("0.80x", False),
        "1000-row rows/s vs Triton-ORT": ("1.11x", True),
        "server CPU per 1-row request, 1 client": ("250µs", True),
        "server CPU per 1-row request, 8 clients": ("251µs", False),
    }
    # Without Triton in the round only the absolute CPU ceiling can be judged.
    assert [label for label, *_ in issue_15_goals({OURS: ours})] == [
        "server CPU per 1-row request, 1 client",
        "server CPU per 1-row request, 8 clients",
    ]
