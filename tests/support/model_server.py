"""Start the churn model server (``python -m serving``) as a real subprocess on free loopback ports."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import requests

from tests.support.server_process import ServerProcess, free_port, http_ok

REPO = Path(__file__).resolve().parents[2]


class ModelServer:
    """A running ``python -m serving`` process."""

    def __init__(self, log_path: Path, model_name: str):
        self.server = ServerProcess("model server", log_path)
        self.http_port, self.grpc_port, self.model_name = free_port(), free_port(), model_name

    @property
    def process(self):
        return self.server.process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log(self) -> str:
        return self.server.log()

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, timeout=10, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return requests.post(self.url + path, timeout=30, **kwargs)

    def live(self) -> bool:
        return http_ok(f"{self.url}/v2/health/live")

    def model_ready(self) -> bool:
        return http_ok(f"{self.url}/v2/models/{self.model_name}/ready")

    def wait_ready(self, timeout: float = 60) -> None:
        """Until the model is loaded and ``/v2/models/{name}/ready`` says so."""
        self.server.wait_until(self.model_ready, timeout, "ready")

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL if it lingers."""
        self.server.stop(grace_s=15)


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
    """Start ``python -m serving`` with explicit ports; wait until ``wait`` ("ready" or "live")."""
    server = ModelServer(log_path, model_name)
    command = [
        sys.executable, "-m", "serving", "--model_name", model_name, "--model_dir", str(model_dir),
        "--http_port", str(server.http_port), "--grpc_port", str(server.grpc_port), *extra_args,
    ]  # fmt: skip
    ready = {"ready": server.model_ready, "live": server.live}[wait]
    server.server.launch(command, ready, timeout=timeout, what=wait, grace_s=15, env=env, cwd=REPO)
    return server
