"""A real ``mlflow server`` for tests: SQLite (or a given) backend, artifacts proxied to S3 (or local).

Started on a free 127.0.0.1 port in its own process group with its own TMPDIR (it writes a lock
file there), one worker and no job runner (healthy in ~8 s as 2 processes instead of 15), AWS
retries bounded on the server side. ``stop()`` stops the whole group; ``start()`` again
restarts it on the same port and database (the registry must survive that).

The backend store is ``root/mlflow.db`` (SQLite) unless ``backend_store_uri`` names another, e.g.
``postgresql+psycopg://...`` of a :class:`~tests.support.postgres_server.PostgresServer` (the
production registry runs on PostgreSQL; ``psycopg`` is in pyproject's ``dev`` list).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.server_process import ServerProcess, free_port, http_ok


@dataclass
class MlflowServer:
    root: Path
    artifacts_destination: str | None = None  # e.g. s3://bucket/mlflow; default: root/artifacts
    s3_env: dict[str, str] = field(default_factory=dict)
    backend_store_uri: str | None = None  # default: sqlite:///root/mlflow.db
    port: int = 0
    server: ServerProcess = field(init=False)

    def __post_init__(self) -> None:
        self.server = ServerProcess("mlflow server", self.root / "mlflow.log")

    @property
    def process(self):
        return self.server.process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.server.log()

    def command(self) -> list[str]:
        destination = self.artifacts_destination or (self.root / "artifacts").as_uri()
        backend = self.backend_store_uri or f"sqlite:///{self.root / 'mlflow.db'}"
        return [
            sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
            "--backend-store-uri", backend,
            "--artifacts-destination", destination, "--workers", "1",
        ]  # fmt: skip

    def start(self, timeout: float = 90) -> MlflowServer:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "tmp").mkdir(exist_ok=True)
        self.port = self.port or free_port()
        env = {
            **self.s3_env,
            "TMPDIR": str(self.root / "tmp"),
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            # A dead object store must fail the server's upload in seconds, not minutes.
            "AWS_MAX_ATTEMPTS": "2",
            "AWS_RETRY_MODE": "standard",
            "MLFLOW_TRACKING_URI": None,  # it is the tracking server, not a client of one
        }
        self.server.launch(
            self.command(), lambda: http_ok(f"{self.url}/health"), timeout=timeout, what="healthy",
            grace_s=20, env=env,
        )  # fmt: skip
        return self

    def stop(self) -> None:
        """Stop the whole group: killing only the parent leaves uvicorn workers serving."""
        self.server.stop(grace_s=20)

    def __enter__(self) -> MlflowServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_mlflow_server(
    root: Path,
    artifacts_destination: str | None = None,
    s3_env: dict[str, str] | None = None,
    timeout: float = 90,
    backend_store_uri: str | None = None,
) -> MlflowServer:
    """Start ``mlflow server`` under ``root`` on ``backend_store_uri`` (default SQLite); wait for health."""
    server = MlflowServer(Path(root), artifacts_destination, dict(s3_env or {}), backend_store_uri)
    return server.start(timeout)
