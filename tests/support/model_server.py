"""Start the churn model server (``python -m serving``) as a real subprocess on free loopback ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support.process_group import stop_group


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ModelServer:
    """A running ``python -m serving`` process."""

    process: subprocess.Popen
    http_port: int
    grpc_port: int
    log_path: Path
    model_name: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, timeout=10, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return requests.post(self.url + path, timeout=30, **kwargs)

    def wait_listening(self, timeout: float = 60) -> None:
        """Until ``/v2/health/live`` answers (the model may still be loading)."""
        self._wait(lambda: self.get("/v2/health/live").ok, timeout, "live")

    def wait_ready(self, timeout: float = 60) -> None:
        """Until the model is loaded and ``/v2/models/{name}/ready`` says so."""
        self._wait(lambda: self.get(f"/v2/models/{self.model_name}/ready").ok, timeout, "ready")

    def _wait(self, check, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"model server exited with {self.process.returncode}:\n{self.log()[-4000:]}"
                )
            try:
                if check():
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"model server not {what} after {timeout} s:\n{self.log()[-4000:]}")

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL if it lingers."""
        stop_group(self.process, grace_s=15)


def start_model_server(
    model_dir: str | Path,
    log_path: Path,
    *,
    model_name: str = "churn",
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    wait: str = "ready",
    timeout: float = 60,
) -> ModelServer:
    """Start ``python -m serving`` with explicit ports; wait until ``wait`` ("ready", "live" or "")."""
    http_port, grpc_port = free_port(), free_port()
    args = [
        sys.executable, "-m", "serving", "--model_name", model_name, "--model_dir", str(model_dir),
        "--http_port", str(http_port), "--grpc_port", str(grpc_port), *extra_args,
    ]  # fmt: skip
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=Path(__file__).resolve().parents[2],
            start_new_session=True,
        )
    server = ModelServer(process, http_port, grpc_port, log_path, model_name)
    try:
        if wait == "ready":
            server.wait_ready(timeout)
        elif wait == "live":
            server.wait_listening(timeout)
    except Exception:
        server.stop()
        raise
    return server
