"""The one way the tests run a real server: own process group, wait until ready, stop the group.

Every launcher in ``tests/support`` (model server, MLflow, SeaweedFS S3, Prometheus) starts its
command through :class:`ServerProcess`, so each gets the same guarantees: output goes to a log
file, readiness is polled while watching for an early exit, any failure to come up raises with
the log's tail and stops what was started, and ``stop()`` ends the whole group (servers such as
``mlflow server`` leave workers serving when only the parent dies).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import requests

LOG_TAIL = 4000  # characters of the server's log quoted in an error


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_ok(url: str) -> bool:
    """True if ``GET url`` answers 2xx within 2 s (connection errors count as not yet)."""
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


class ServerProcess:
    """One server command run in its own session; restartable (``start`` again after ``stop``)."""

    def __init__(self, name: str, log_path: Path):
        self.name, self.log_path = name, Path(log_path)
        self.process: subprocess.Popen | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(
        self, command: Sequence[str], *, env: Mapping[str, str | None] | None = None, cwd: Path | None = None
    ) -> None:
        """Spawn ``command`` (``env`` on top of this environment; None unsets), output appended to the log."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        environ = {**os.environ, **(env or {})}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                list(command),
                stdout=log,
                stderr=subprocess.STDOUT,
                env={k: v for k, v in environ.items() if v is not None},
                cwd=cwd,
                start_new_session=True,
            )

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str = "ready") -> None:
        """Poll ``ready()`` until true; raise with the log's tail if the process exits or time runs out."""
        deadline, last = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log()[-LOG_TAIL:]}"
                )
            try:
                if ready():
                    return
            except Exception as exc:  # not up yet: refused connection, 503 while starting...
                last = exc
            time.sleep(0.1)
        detail = f" ({last})" if last else ""
        raise TimeoutError(f"{self.name} not {what} after {timeout} s{detail}:\n{self.log()[-LOG_TAIL:]}")

    def launch(
        self,
        command: Sequence[str],
        ready: Callable[[], bool],
        *,
        timeout: float,
        what: str = "ready",
        grace_s: float = 10.0,
        env: Mapping[str, str | None] | None = None,
        cwd: Path | None = None,
    ) -> None:
        """:meth:`start` then :meth:`wait_until`; a server that does not come up is stopped again."""
        self.start(command, env=env, cwd=cwd)
        try:
            self.wait_until(ready, timeout, what)
        except BaseException:
            self.stop(grace_s)
            raise

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace_s`` (at once if ``grace_s`` is 0).

        The group is SIGKILLed at the end even when the leader is already gone.
        """
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM if grace_s > 0 else signal.SIGKILL)
                process.wait(max(grace_s, 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
            except ProcessLookupError:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
