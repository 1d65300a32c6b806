"""Who is doing something: host, pid and start time, recorded as MLflow tags.

The promotion lock and the register step record their holder, so a later process can tell a
holder that is provably gone (same host, process no longer running: its lock can be broken, its
half-done registration cleaned up) from one that may still be alive (another host, or a process
that is running). Nothing is ever decided by age alone.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

TAG_HOST = "host"
TAG_PID = "pid"


@dataclass(frozen=True)
class Holder:
    """A process: the host it runs on and its pid."""

    host: str
    pid: int

    @classmethod
    def current(cls) -> Holder:
        """This process."""
        return cls(socket.gethostname(), os.getpid())

    @classmethod
    def from_tags(cls, tags: Mapping[str, str], prefix: str = "") -> Holder | None:
        """The holder recorded by :meth:`tags`, or None when it was not recorded."""
        host, pid = tags.get(f"{prefix}{TAG_HOST}"), tags.get(f"{prefix}{TAG_PID}")
        if not host or not pid or not pid.isdigit():
            return None
        return cls(host, int(pid))

    def tags(self, prefix: str = "") -> dict[str, str]:
        """The tags that record this holder."""
        return {f"{prefix}{TAG_HOST}": self.host, f"{prefix}{TAG_PID}": str(self.pid)}

    def provably_gone(self) -> bool:
        """True only when the holder ran on this host and its process no longer exists.

        A reused pid makes a gone holder look alive: the safe way round (nothing is broken).
        """
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # exists, owned by another user
            return False
        return False

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}"


def when(epoch_s: float) -> str:
    """A time as the messages print it (UTC, seconds)."""
    return datetime.fromtimestamp(epoch_s, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def now() -> str:
    """The current time as a tag value (seconds since the epoch)."""
    return repr(time.time())
