"""Start a real Prometheus (Debian's ``prometheus`` binary) scraping given targets every second."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import requests

from tests.support.server_process import ServerProcess, free_port, http_ok


def prometheus_binary() -> str | None:
    """Path of the ``prometheus`` binary, or None (``apt-get install prometheus``)."""
    return shutil.which("prometheus")


class Prometheus:
    """A running Prometheus on 127.0.0.1."""

    def __init__(self, workdir: Path):
        self.server = ServerProcess("prometheus", workdir / "prometheus.log")
        self.port = free_port()

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
        raise TimeoutError(f"no result for {promql!r} after {timeout} s:\n{self.server.log()[-3000:]}")

    def stop(self) -> None:
        self.server.stop(grace_s=10)


def start_prometheus(
    targets: list[str],
    workdir: Path,
    job: str = "model",
    timeout: float = 30,
    rule_files: tuple[Path, ...] = (),
) -> Prometheus:
    """Start Prometheus scraping ``targets`` (``host:port``) at 1 s with ``rule_files``; wait until ready."""
    binary = prometheus_binary()
    if binary is None:
        raise FileNotFoundError("prometheus is not installed (apt-get install prometheus)")
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    quoted = ", ".join(f"'{t}'" for t in targets)
    rules = "".join(f"  - '{path}'\n" for path in rule_files)
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        + (f"rule_files:\n{rules}" if rules else "")
        + f"scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: [{quoted}]\n"
    )
    prometheus = Prometheus(workdir)
    command = [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
               f"--web.listen-address=127.0.0.1:{prometheus.port}"]  # fmt: skip
    prometheus.server.launch(command, lambda: http_ok(f"{prometheus.url}/-/ready"), timeout=timeout)
    return prometheus
