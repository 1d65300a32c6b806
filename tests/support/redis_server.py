"""Start a real Redis (Debian's ``redis-server``) on a free 127.0.0.1 port, without persistence."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from tests.support.server_process import ServerProcess, free_port


def redis_binary() -> str | None:
    """Path of ``redis-server``, or None (``apt-get install redis-server``; `make system-tools`)."""
    return shutil.which("redis-server")


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class Redis:
    """A running redis-server; ``connection`` is Feast's ``connection_string`` for it."""

    def __init__(self, workdir: Path):
        self.server = ServerProcess("redis-server", workdir / "redis.log")
        self.port = free_port()

    @property
    def connection(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.stop(grace_s=5)


def start_redis(workdir: Path, timeout: float = 15) -> Redis:
    """Start redis-server on 127.0.0.1 only (no RDB/AOF files); wait until it answers PING."""
    binary = redis_binary()
    if binary is None:
        raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
    workdir.mkdir(parents=True, exist_ok=True)
    redis = Redis(workdir)
    command = [binary, "--bind", "127.0.0.1", "--port", str(redis.port), "--save", "",
               "--appendonly", "no", "--dir", str(workdir), "--protected-mode", "yes"]  # fmt: skip
    redis.server.launch(command, lambda: _pong(redis.port), timeout=timeout)
    return redis
