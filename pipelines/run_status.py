"""A run folder's ``status.json``: whether the run is running, finished, failed or was interrupted.

``churn run`` writes ``running`` (with its host and pid) before anything else, and exactly one of
the other states when it ends. A folder still saying ``running`` whose pid is gone was killed
(``kill -9``, power loss). Only a ``finished`` run may become ``runs/latest``.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path

from components.errors import ChurnError
from components.storage import atomic_path

STATUS_FILE = "status.json"
RUNNING, FINISHED, FAILED, INTERRUPTED = "running", "finished", "failed", "interrupted"
STATES: tuple[str, ...] = (RUNNING, FINISHED, FAILED, INTERRUPTED)


class RunStateError(ChurnError, RuntimeError):
    """A run folder is not in the state an operation needs (e.g. `latest` on an unfinished run)."""


def write_status(run_dir: Path, state: str, **details) -> dict:
    """Record ``state`` (one of :data:`STATES`) and ``details`` in ``run_dir/status.json`` atomically.

    The first record's start time, host and pid are kept in every later one.
    """
    if state not in STATES:
        raise ValueError(f"run state must be one of {STATES}, got {state!r}")
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    first = read_status(run_dir) or {"started": now, "host": socket.gethostname(), "pid": os.getpid()}
    record = {k: first[k] for k in ("started", "host", "pid")} | {"state": state, "updated": now, **details}
    with atomic_path(Path(run_dir) / STATUS_FILE) as tmp:
        tmp.write_text(json.dumps(record, indent=2))
    return record


def read_status(run_dir: Path) -> dict | None:
    """The folder's status record, or None when it has none (not a run folder, or a pre-status run)."""
    path = Path(run_dir) / STATUS_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def require_state(run_dir: Path, state: str) -> None:
    """Raise :class:`RunStateError` unless ``run_dir`` is in ``state``."""
    status = read_status(run_dir)
    found = status["state"] if status else "no status.json"
    if found != state:
        raise RunStateError(f"{run_dir}: state {found!r}, not {state!r}")
