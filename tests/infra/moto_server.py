"""moto in server mode on 127.0.0.1: the AWS APIs (S3, IAM, STS, Secrets Manager) that the cluster
path calls, served by a real HTTP server the real clients (boto3, minio, kserve-storage,
terraform's AWS provider) talk to. AWS itself cannot run here; this is the stand-in.

moto lives in the tools venv (`make tools`) so the project's venv stays `pip check` clean.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.infra.tools import require_tool
from tests.support.server_process import ServerProcess, free_port, http_ok

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "eu-west-1"}


@dataclass
class MotoServer:
    url: str
    log: Path

    def env(self) -> dict[str, str]:
        """Environment pointing boto3 (AWS_ENDPOINT_URL) at this server, with dummy keys."""
        return {**CREDENTIALS, "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL": self.url}

    def requests(self) -> list[str]:
        """Request lines the server logged so far (`METHOD /path?query`), oldest first."""
        lines = []
        for line in self.log.read_text(errors="replace").splitlines():
            if '"' in line and " HTTP/1.1" in line:
                lines.append(line.split('"')[1].rsplit(" HTTP/", 1)[0])
        return lines


@contextlib.contextmanager
def moto_server(workdir: Path) -> Iterator[MotoServer]:
    """Start `moto_server` on a free loopback port, yield it, stop its process group."""
    binary = require_tool("moto_server", "make tools (moto[server] is in .venv-tools)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "moto.log"
    server = ServerProcess("moto", log)
    server.launch(
        [binary, "-H", "127.0.0.1", "-p", str(port)], lambda: http_ok(f"{url}/moto-api/"), timeout=60
    )
    try:
        yield MotoServer(url, log)
    finally:
        server.stop(grace_s=5)
