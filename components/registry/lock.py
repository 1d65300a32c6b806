"""The registry-wide promotion lock, held in MLflow itself.

MLflow has no compare-and-set on aliases, so alias moves run under a lock whose acquisition is
atomic in MLflow's database: creating the registered model ``<name>.promotion-lock`` succeeds for
exactly one caller (unique name constraint), whichever backend store is behind the tracking URI.
The holder deletes it when done. A lock older than ``stale_after_s`` (a crashed holder) is
broken. The critical section holds only re-reading an alias and writing it, so it lasts seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from components.registry.client import Registry, RegistryError, already_exists, is_missing

log = logging.getLogger(__name__)

LOCK_SUFFIX = ".promotion-lock"


class RegistryBusyError(RegistryError):
    """Another process held the promotion lock for longer than we were willing to wait."""


@contextmanager
def promotion_lock(
    registry: Registry, *, owner: str, timeout_s: float = 150.0, stale_after_s: float = 120.0
) -> Iterator[None]:
    """Hold the promotion lock of the registered model (see module docstring)."""
    from mlflow.exceptions import MlflowException

    lock_name = f"{registry.name}{LOCK_SUFFIX}"
    client = registry.client
    deadline = time.monotonic() + timeout_s
    delay = 0.1
    while True:
        try:
            client.create_registered_model(
                lock_name,
                tags={"owner": owner, "acquired_at": repr(time.time())},
                description=f"promotion lock of {registry.name}; held by {owner}",
            )
            break
        except MlflowException as exc:
            if not already_exists(exc):
                raise
        acquired = _acquired_at(registry, lock_name)
        if acquired is not None and time.time() - acquired > stale_after_s:
            log.warning(
                "breaking stale promotion lock %s (acquired %.0f s ago)", lock_name, time.time() - acquired
            )
            _release(registry, lock_name)
            continue
        if time.monotonic() > deadline:
            raise RegistryBusyError(f"promotion lock {lock_name} still held after {timeout_s:.0f} s")
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
    try:
        yield
    finally:
        _release(registry, lock_name)


def _acquired_at(registry: Registry, lock_name: str) -> float | None:
    try:
        return float(registry.client.get_registered_model(lock_name).tags.get("acquired_at", "nan"))
    except Exception:  # released meanwhile, or a tag we cannot read: not known to be stale
        return None


def _release(registry: Registry, lock_name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        registry.client.delete_registered_model(lock_name)
    except MlflowException as exc:
        if not is_missing(exc):
            raise
