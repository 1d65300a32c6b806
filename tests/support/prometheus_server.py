"""Start a real Prometheus (Debian's ``prometheus`` binary) scraping given targets every second."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support.model_server import free_port
from tests.support.process_group import stop_group


def prometheus_binary() -> str | None:
    """Path of the ``prometheus`` binary, or None (``apt-get install prometheus``)."""
    return shutil.which("prometheus")


@dataclass
class Prometheus:
    """A running Prometheus on 127.0.0.1."""

    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, promql: str) -> list[dict]:
        """Instant query; the ``result`` list of the answer."""
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10).json()
        if answer.get("status") != "success":
            raise RuntimeError(f"Prometheus query {promql!r} failed: {answer}")
        return answer["data"]["result"]

    def wait_for(self, promql: str, timeout: float = 30) -> list[dict]:
        """Query until the answer is non-empty."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.query(promql)
            if result:
                return result
            time.sleep(0.5)
        raise TimeoutError(
            f"no result for {promql!r} after {timeout} s:\n{self.log_path.read_text()[-3000:]}"
        )

    def stop(self) -> None:
        stop_group(self.process, grace_s=10)


def start_prometheus(
    targets: list[str], workdir: Path, job: str = "model", timeout: float = 30
) -> Prometheus:
    """Start Prometheus scraping ``targets`` (``host:port``) at 1 s; wait until it is ready."""
    binary = prometheus_binary()
    if binary is None:
        raise FileNotFoundError("prometheus is not installed (apt-get install prometheus)")
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    quoted = ", ".join(f"'{t}'" for t in targets)
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: [{quoted}]\n"
    )
    port = free_port()
    log_path = workdir / "prometheus.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    server = Prometheus(process, port, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{server.url}/-/ready", timeout=2).ok:
                return server
        except requests.ConnectionError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"Prometheus did not become ready:\n{log_path.read_text()[-3000:]}")
