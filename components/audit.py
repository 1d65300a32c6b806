"""Audit trail of alias moves and the registry-wide promotion lock, both stored in MLflow itself.

Audit trail: every alias move is one registered-model tag ``audit.<ms since epoch>.<id>`` whose
value is the JSON event (when, actor, via, alias, from_version, to_version, reason, run_id).
It lives in MLflow's backend store (SQLite locally, the server's database otherwise), so it
survives restarts, needs no extra service, and any MLflow client or the UI can read it; the
time-sortable key gives the order. Registered-model tags hold up to 100,000 characters.

Promotion lock: MLflow has no compare-and-set on aliases, so alias moves run under a lock
whose acquisition is atomic in MLflow's database: creating the registered model
``<name>.promotion-lock`` succeeds for exactly one caller (unique name constraint), whichever
backend store is behind the tracking URI. The holder deletes it when done. A lock older than
``stale_after_s`` (a crashed holder) is broken. The critical section holds only re-reading the
champion, an optional re-gate and the alias writes, so it lasts seconds.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

log = logging.getLogger(__name__)

AUDIT_PREFIX = "audit."
LOCK_SUFFIX = ".promotion-lock"


class RegistryBusyError(RuntimeError):
    """Another process held the promotion lock for longer than we were willing to wait."""


def actor() -> str:
    """Who is acting: ``CHURN_ACTOR`` if set (CI, a KFP service account), else user@host."""
    explicit = os.environ.get("CHURN_ACTOR")
    if explicit:
        return explicit
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class AuditEvent:
    at: str
    actor: str
    via: str
    alias: str
    from_version: str | None
    to_version: str | None
    reason: str
    run_id: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def record(client, model: str, *, alias: str, from_version, to_version, reason: str, via: str, run_id=None):
    """Write one audit event as a registered-model tag and return it."""
    now = time.time()
    event = AuditEvent(
        at=datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds"),
        actor=actor(),
        via=via,
        alias=alias,
        from_version=None if from_version is None else str(from_version),
        to_version=None if to_version is None else str(to_version),
        reason=reason,
        run_id=run_id,
    )
    key = f"{AUDIT_PREFIX}{int(now * 1000):015d}.{uuid.uuid4().hex[:8]}"
    client.set_registered_model_tag(model, key, json.dumps(event.to_dict(), sort_keys=True))
    return event


def history(client, model: str) -> list[AuditEvent]:
    """All audit events of ``model``, oldest first."""
    tags = client.get_registered_model(model).tags
    return [AuditEvent(**json.loads(tags[k])) for k in sorted(tags) if k.startswith(AUDIT_PREFIX)]


def champion_stack(events: list[AuditEvent], alias: str = "champion") -> list[str]:
    """Replay ``alias`` moves: promotions push a version, rollbacks pop back to the previous one."""
    stack: list[str] = []
    for event in events:
        if event.alias != alias:
            continue
        if event.via.endswith("rollback"):
            if stack:
                stack.pop()
            if event.to_version and (not stack or stack[-1] != event.to_version):
                stack.append(event.to_version)
        elif event.to_version:
            stack.append(event.to_version)
    return stack


def _created_at(client, lock_name: str) -> float | None:
    try:
        return float(client.get_registered_model(lock_name).tags.get("acquired_at", "nan"))
    except Exception:
        return None


@contextmanager
def promotion_lock(
    client, model: str, *, owner: str, timeout_s: float = 150.0, stale_after_s: float = 120.0
) -> Iterator[None]:
    """Hold the registry-wide promotion lock of ``model`` (see module docstring)."""
    from mlflow.exceptions import MlflowException

    lock_name = f"{model}{LOCK_SUFFIX}"
    deadline = time.monotonic() + timeout_s
    delay = 0.1
    while True:
        try:
            client.create_registered_model(
                lock_name,
                tags={"owner": owner, "acquired_at": repr(time.time())},
                description=f"promotion lock of {model}; held by {owner}",
            )
            break
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        created = _created_at(client, lock_name)
        if created is not None and time.time() - created > stale_after_s:
            log.warning(
                "breaking stale promotion lock %s (acquired %.0f s ago)", lock_name, time.time() - created
            )
            _release(client, lock_name)
            continue
        if time.monotonic() > deadline:
            raise RegistryBusyError(f"promotion lock {lock_name} still held after {timeout_s:.0f} s")
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
    try:
        yield
    finally:
        _release(client, lock_name)


def _release(client, lock_name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.delete_registered_model(lock_name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
