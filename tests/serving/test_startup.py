"""Start-up: bind what is configured, say what was bound, "Ready" only once listening, a busy port is
one clear line and exit 1."""

from __future__ import annotations

import re
import socket
import sys
import time
from pathlib import Path

import pytest

from tests.support.model_server import REPO, start_model_server
from tests.support.server_process import ServerProcess, free_port

pytestmark = pytest.mark.integration


def listening_addresses(port: int) -> set[str]:
    """IPv4 addresses with a socket listening on ``port`` (Linux ``/proc/net/tcp``; state 0A = LISTEN)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


@pytest.mark.parametrize(("flag", "bound"), [([], "127.0.0.1"), (["--host", "0.0.0.0"], "0.0.0.0")])
def test_binds_the_configured_address_and_logs_it(bundle_dir, tmp_path, flag, bound):
    srv = start_model_server(bundle_dir, tmp_path / "server.log", extra_args=flag)
    try:
        assert listening_addresses(srv.http_port) == {bound}
        # The line comes from a thread that polls the socket: it may follow the first answer.
        line, deadline = f"listening on http://{bound}:{srv.http_port}", time.monotonic() + 15
        while line not in srv.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert line in srv.log()
        assert "0.0.0.0" not in srv.log() or bound == "0.0.0.0"  # no line claims an address not bound
    finally:
        srv.stop()


def test_ready_is_printed_only_once_the_port_listens(bundle_dir, tmp_path):
    port, log = free_port(), tmp_path / "server.log"
    process = ServerProcess("model server", log)
    command = [sys.executable, "-m", "serving", "--model_name", "churn", "--model_dir", str(bundle_dir),
               "--http_port", str(port), "--grpc_port", str(free_port())]  # fmt: skip
    process.start(command, cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while "Ready" not in process.log():
            assert time.monotonic() < deadline and process.process.poll() is None, process.log()
            time.sleep(0.005)
        with socket.create_connection(("127.0.0.1", port), timeout=1):  # refused if Ready came first
            pass
        assert re.search(
            rf"Ready\. Try:\n\s+curl -s http://127\.0\.0\.1:{port}/v2/models/churn/infer", process.log()
        )
    finally:
        process.stop(grace_s=15)


def run_to_exit(bundle_dir, tmp_path, args: list[str]) -> tuple[int, str]:
    """Run ``python -m serving ARGS`` (a server expected to exit by itself): its exit status and log."""
    process = ServerProcess("model server", tmp_path / "server.log")
    command = [sys.executable, "-m", "serving", "--model_name", "churn", "--model_dir", str(bundle_dir),
               "--grpc_port", str(free_port()), *args]  # fmt: skip
    process.start(command, cwd=REPO)
    try:
        returncode = process.process.wait(60)
    finally:
        log = process.log()
        process.stop(grace_s=0)
    return returncode, log


def test_busy_port_is_one_clear_line_and_exit_1(bundle_dir, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        returncode, log = run_to_exit(bundle_dir, tmp_path, ["--http_port", str(port)])
    assert returncode == 1, log
    assert "Traceback" not in log and "Event loop is closed" not in log, log
    errors = [line for line in log.splitlines() if str(port) in line and "in use" in line]
    assert len(errors) == 1, log


def test_image_binds_every_interface():
    dockerfile = (REPO / "serving" / "Dockerfile").read_text()
    entrypoint = next(line for line in dockerfile.splitlines() if line.startswith("ENTRYPOINT"))
    assert '"--host", "0.0.0.0"' in entrypoint


def test_workers_other_than_one_is_a_usage_error(bundle_dir, tmp_path):
    """kserve's --workers N pickles the model (it cannot): refused up front, not a crash after start."""
    returncode, log = run_to_exit(bundle_dir, tmp_path, ["--http_port", str(free_port()), "--workers", "2"])
    assert returncode == 2, log
    last = log.strip().splitlines()[-1]
    assert last.endswith("--workers 2: this server runs one process (scale with replicas)"), log
    assert "Traceback" not in log
