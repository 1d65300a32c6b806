"""Stop a server started with ``start_new_session=True`` together with every process it spawned."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def stop_group(process: subprocess.Popen | None, grace_s: float = 10.0) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace_s`` (at once if ``grace_s`` is 0).

    The group is SIGKILLed at the end even when the leader is already gone: servers such as
    ``mlflow server`` leave workers serving when only the parent dies.
    """
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
