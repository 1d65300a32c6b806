"""A real ``mlflow server`` for tests: SQLite backend, artifacts proxied to an S3 store (or local).

Started on a free 127.0.0.1 port in its own process group with its own TMPDIR (it writes a lock
file there), one worker and no job runner (healthy in ~8 s as 2 processes instead of 15), AWS
retries bounded on the server side. ``stop()`` stops the whole group; ``start()`` again
restarts it on the same port and database (the registry must survive that).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.support.model_server import free_port
from tests.support.process_group import stop_group


@dataclass
class MlflowServer:
    root: Path
    artifacts_destination: str | None = None  # e.g. s3://bucket/mlflow; default: root/artifacts
    s3_env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / "mlflow.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def command(self) -> list[str]:
        destination = self.artifacts_destination or (self.root / "artifacts").as_uri()
        return [
            sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
            "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
            "--artifacts-destination", destination, "--workers", "1",
        ]  # fmt: skip

    def start(self, timeout: float = 90) -> MlflowServer:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "tmp").mkdir(exist_ok=True)
        self.port = self.port or free_port()
        env = {
            **os.environ,
            **self.s3_env,
            "TMPDIR": str(self.root / "tmp"),
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            # A dead object store must fail the server's upload in seconds, not minutes.
            "AWS_MAX_ATTEMPTS": "2",
            "AWS_RETRY_MODE": "standard",
        }
        env.pop("MLFLOW_TRACKING_URI", None)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        try:
            self._wait_healthy(timeout)
        except Exception:
            self.stop()
            raise
        return self

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"mlflow server exited with {self.process.returncode}:\n{self.log()[-4000:]}"
                )
            try:
                if requests.get(f"{self.url}/health", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"mlflow server not healthy after {timeout} s:\n{self.log()[-4000:]}")

    def stop(self) -> None:
        """Stop the whole group: killing only the parent leaves uvicorn workers serving."""
        stop_group(self.process, grace_s=20)
        self.process = None

    def __enter__(self) -> MlflowServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_mlflow_server(
    root: Path,
    artifacts_destination: str | None = None,
    s3_env: dict[str, str] | None = None,
    timeout: float = 90,
) -> MlflowServer:
    """Start ``mlflow server`` under ``root`` and wait for ``/health``."""
    return MlflowServer(Path(root), artifacts_destination, dict(s3_env or {})).start(timeout)
