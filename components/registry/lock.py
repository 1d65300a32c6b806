"""The registry-wide promotion lock, held in MLflow itself.

MLflow has no compare-and-set on aliases, so alias moves run under a lock whose acquisition is
atomic in MLflow's database: creating the registered model ``<name>.promotion-lock`` succeeds for
exactly one caller (unique name constraint), whichever backend store is behind the tracking URI
(tested on SQLite and PostgreSQL).
The critical section holds only re-reading an alias and writing it, so it lasts seconds.

The lock's tags record its holder (``owner``, ``host``, ``pid``, ``acquired_at``) and a
``heartbeat_at`` the holder refreshes every ``heartbeat_s`` while it holds the lock. A caller
that finds the lock taken:

- breaks it at once when the holder is provably gone (same host, process not running);
- breaks it when asked to (``break_lock``, ``--break-lock`` on the CLI);
- fails at once, naming the holder and since when, when the heartbeat is older than
  ``stale_after_s`` (a holder on another host that went silent: only a human can tell whether
  it is gone, so the message says to use ``--break-lock``);
- otherwise says once who holds it and waits up to ``timeout_s`` for it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from components.registry.client import Registry, RegistryError, already_exists, is_missing
from components.registry.holder import Holder, now, when

log = logging.getLogger(__name__)

LOCK_SUFFIX = ".promotion-lock"


class RegistryBusyError(RegistryError):
    """The promotion lock is held by someone else; the message names the holder."""


@dataclass(frozen=True)
class LockInfo:
    """What a lock's tags say about its holder."""

    owner: str
    token: str | None
    holder: Holder | None
    acquired_at: float | None
    heartbeat_at: float | None

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> LockInfo:
        return cls(
            owner=tags.get("owner", "unknown"),
            token=tags.get("token"),
            holder=Holder.from_tags(tags),
            acquired_at=_float(tags.get("acquired_at")),
            heartbeat_at=_float(tags.get("heartbeat_at")) or _float(tags.get("acquired_at")),
        )

    def describe(self, lock_name: str, kind: str = "promotion") -> str:
        """``<kind> lock X held by OWNER (pid P on HOST) since T``."""
        who = f"{self.owner} ({self.holder})" if self.holder else f"{self.owner} (host and pid not recorded)"
        since = f" since {when(self.acquired_at)}" if self.acquired_at is not None else ""
        return f"{kind} lock {lock_name} held by {who}{since}"


@contextmanager
def promotion_lock(
    registry: Registry,
    *,
    owner: str,
    timeout_s: float = 150.0,
    stale_after_s: float = 30.0,
    heartbeat_s: float = 5.0,
    break_lock: bool = False,
    kind: str = "promotion",
) -> Iterator[None]:
    """Hold the promotion lock of the registered model (see module docstring).

    ``kind`` names another lock of the same mechanism (``<name>.<kind>-lock``): the rollout
    driver holds ``rollout`` for a whole rollout, with ``timeout_s=0`` so a second driver refuses
    at once, naming the first.
    """
    from mlflow.exceptions import MlflowException

    lock_name = f"{registry.name}.{kind}-lock"  # promotion: LOCK_SUFFIX
    client = registry.client
    deadline = time.monotonic() + timeout_s
    delay, told = 0.1, False
    token = uuid.uuid4().hex
    while True:
        stamp = now()
        tags = {"owner": owner, "token": token, "acquired_at": stamp, "heartbeat_at": stamp}
        try:
            client.create_registered_model(
                lock_name,
                tags={**tags, **Holder.current().tags()},
                description=f"{kind} lock of {registry.name}; held by {owner}",
            )
            break
        except MlflowException as exc:
            # On PostgreSQL a create that loses the race re-reads the name to report it, and
            # finds it gone when the holder released in between: a free lock, try again.
            if is_missing(exc):
                continue
            if not already_exists(exc):
                raise
        info = _read(registry, lock_name)
        if info is None:  # released meanwhile
            continue
        if info.holder is not None and info.holder.provably_gone():
            log.warning("%s: that process is gone; breaking the lock", info.describe(lock_name, kind))
            _release(registry, lock_name, info.token)
            continue
        if break_lock:
            log.warning("%s: breaking it as asked (--break-lock)", info.describe(lock_name, kind))
            _release(registry, lock_name, info.token)
            break_lock = False  # break the lock we saw, never a newer holder's
            continue
        silent = None if info.heartbeat_at is None else time.time() - info.heartbeat_at
        if silent is None or silent > stale_after_s:
            heard = "no heartbeat recorded" if silent is None else f"no heartbeat for {silent:.0f} s"
            raise RegistryBusyError(
                f"{info.describe(lock_name, kind)}; {heard}. If that process is gone, run again with "
                "--break-lock (promote/rollback) to break the lock"
            )
        if not told:
            log.warning(
                "%s (heartbeat %.0f s ago); waiting up to %.0f s",
                info.describe(lock_name, kind), silent, timeout_s,
            )  # fmt: skip
            told = True
        if time.monotonic() > deadline:
            raise RegistryBusyError(
                f"{info.describe(lock_name, kind)}; still held after waiting {timeout_s:.0f} s"
            )
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
    stop = threading.Event()
    beat = threading.Thread(
        target=_heartbeat, args=(registry, lock_name, heartbeat_s, stop), name="promotion-lock-heartbeat",
        daemon=True,
    )  # fmt: skip
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join()
        _release(registry, lock_name, token)


def _heartbeat(registry: Registry, lock_name: str, every_s: float, stop: threading.Event) -> None:
    """Refresh ``heartbeat_at`` until ``stop``: waiters can tell a live holder from a silent one."""
    while not stop.wait(every_s):
        try:
            registry.client.set_registered_model_tag(lock_name, "heartbeat_at", now())
        except Exception as exc:  # a missed beat only makes waiters fail sooner, never wrongly break
            log.warning("promotion lock %s: heartbeat failed: %s", lock_name, exc)


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _read(registry: Registry, lock_name: str, attempts: int = 3) -> LockInfo | None:
    """The lock's holder, or None when there is no lock.

    A lock is created with its tags in one transaction, yet a read can find it without any:
    MLflow's SQL store reads the model and its tags in two statements, and a release between
    them (PostgreSQL's read-committed, SQLite's per-statement reads) leaves the tags gone. So
    a tagless read is read again; only a lock still tagless after ``attempts`` reads is one.
    """
    from mlflow.exceptions import MlflowException

    for _ in range(attempts):
        try:
            tags = dict(registry.client.get_registered_model(lock_name).tags)
        except MlflowException as exc:
            if is_missing(exc):
                return None
            raise
        if tags:
            break
    return LockInfo.from_tags(tags)


def _release(registry: Registry, lock_name: str, token: str | None) -> None:
    """Delete the lock if it is still the one with ``token`` (a lock without one: whatever is there)."""
    from mlflow.exceptions import MlflowException

    current = _read(registry, lock_name)
    if current is None or (token is not None and current.token not in (None, token)):
        return  # gone, or someone else's by now: theirs to release
    try:
        registry.client.delete_registered_model(lock_name)
    except MlflowException as exc:
        if not is_missing(exc):
            raise
