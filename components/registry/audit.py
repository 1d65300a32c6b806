"""Audit trail of alias moves, stored in MLflow itself.

Every alias move is one registered-model tag ``audit.<ms since epoch>.<id>`` whose value is the
JSON event (when, actor, via, alias, from_version, to_version, reason, run_id). It lives in
MLflow's backend store (SQLite locally, the server's database otherwise), so it survives
restarts, needs no extra service, and any MLflow client or the UI can read it; the time-sortable
key gives the order.

One event must fit in one registered-model tag: MLflow's SQL schema stores it in VARCHAR(5000).
SQLite does not enforce that length (and MLflow's own check allows 100,000 characters), but
PostgreSQL, the production store, does: a longer event would fail after its alias had moved.
So :func:`check_fits` refuses such a move (by its ``reason``) before anything is written.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from components.registry.client import Registry, RegistryError
from components.registry_names import CHAMPION

AUDIT_PREFIX = "audit."
MAX_EVENT_CHARS = 5000  # registered_model_tags.value is VARCHAR(5000) (module docstring)
# The version an alias moves from is read under the lock, after the check: room for a long one.
_FROM_VERSION_ROOM = "9" * 20


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


def record(
    registry: Registry,
    *,
    alias: str,
    from_version: str | None,
    to_version: str,
    reason: str,
    via: str,
    run_id: str | None = None,
) -> AuditEvent:
    """Write one audit event as a registered-model tag and return it."""
    now = time.time()
    event = _event(now, alias, from_version, to_version, reason, via, run_id)
    key = f"{AUDIT_PREFIX}{int(now * 1000):015d}.{uuid.uuid4().hex[:8]}"
    registry.client.set_registered_model_tag(registry.name, key, _encode(event))
    return event


def check_fits(*, alias: str, to_version: str, reason: str, via: str, run_id: str | None = None) -> None:
    """Raise :class:`RegistryError` naming ``reason`` if this move's event would not fit in one tag."""
    worst = _event(time.time(), alias, _FROM_VERSION_ROOM, to_version, reason, via, run_id)
    size = len(_encode(worst))
    if size > MAX_EVENT_CHARS:
        raise RegistryError(
            f"reason: {len(reason)} characters; its audit event would be {size} characters, more than "
            f"the {MAX_EVENT_CHARS} a registered-model tag holds in MLflow's PostgreSQL store "
            f"(shorten the reason by {size - MAX_EVENT_CHARS} or more)"
        )


def _event(
    at: float,
    alias: str,
    from_version: str | None,
    to_version: str,
    reason: str,
    via: str,
    run_id: str | None,
) -> AuditEvent:
    return AuditEvent(
        at=datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="milliseconds"),
        actor=actor(),
        via=via,
        alias=alias,
        from_version=from_version,
        to_version=to_version,
        reason=reason,
        run_id=run_id,
    )


def _encode(event: AuditEvent) -> str:
    return json.dumps(event.to_dict(), sort_keys=True)


def history(registry: Registry) -> list[AuditEvent]:
    """All audit events of the registered model, oldest first."""
    tags = registry.client.get_registered_model(registry.name).tags
    return [AuditEvent(**json.loads(tags[k])) for k in sorted(tags) if k.startswith(AUDIT_PREFIX)]


def champion_stack(events: list[AuditEvent], alias: str = CHAMPION) -> list[str]:
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
