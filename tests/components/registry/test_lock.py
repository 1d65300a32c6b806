"""The promotion lock: exclusive; names its holder at once; broken only when the holder is provably gone."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time

import pytest

from components.registry import RegistryBusyError
from components.registry.lock import LOCK_SUFFIX, promotion_lock


def plant_lock(registry, **tags: str) -> str:
    """A lock left by someone else (a crashed or a live holder), as MLflow would hold it."""
    name = f"{registry.name}{LOCK_SUFFIX}"
    registry.client.create_registered_model(name, tags=tags)
    return name


def dead_pid() -> int:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(child.stdout)


def acquire(registry, **options) -> None:
    """Take the lock and let it go."""
    with promotion_lock(registry, **options):
        pass


def test_promotion_lock_is_exclusive(registry):
    second = promotion_lock(registry, owner="second", timeout_s=0.5)
    with promotion_lock(registry, owner="first"), pytest.raises(RegistryBusyError, match="held by first"):
        second.__enter__()
    assert not registry.client.search_registered_models(f"name = '{registry.name}{LOCK_SUFFIX}'")


def test_a_lock_whose_holder_process_is_gone_is_broken_at_once(registry):
    now = repr(time.time())
    plant_lock(
        registry, owner="killed promote", host=socket.gethostname(), pid=str(dead_pid()),
        acquired_at=now, heartbeat_at=now,
    )  # fmt: skip
    started = time.monotonic()
    with promotion_lock(registry, owner="next", timeout_s=30):
        lock = registry.client.get_registered_model(f"{registry.name}{LOCK_SUFFIX}")
        assert lock.tags["owner"] == "next" and lock.tags["pid"] == str(os.getpid())
    assert time.monotonic() - started < 5  # not a wait for the timeout


def test_a_silent_holder_elsewhere_is_named_at_once_and_broken_only_on_request(registry):
    long_ago = repr(time.time() - 600)
    plant_lock(
        registry, owner="cli promote by ana@ci-7", host="ci-7", pid="4242", acquired_at=long_ago,
        heartbeat_at=long_ago,
    )  # fmt: skip
    started = time.monotonic()
    with pytest.raises(RegistryBusyError) as caught:
        acquire(registry, owner="me", timeout_s=150)
    assert time.monotonic() - started < 5  # said at once, not after the wait
    message = str(caught.value)
    for part in ("cli promote by ana@ci-7", "pid 4242 on ci-7", "since", "no heartbeat for", "--break-lock"):
        assert part in message, message
    with promotion_lock(registry, owner="me", timeout_s=5, break_lock=True):
        assert registry.client.get_registered_model(f"{registry.name}{LOCK_SUFFIX}").tags["owner"] == "me"


def test_a_live_holder_heartbeats_and_a_waiter_is_told_who_holds_it(registry, caplog):
    with promotion_lock(registry, owner="first", heartbeat_s=0.2):
        name = f"{registry.name}{LOCK_SUFFIX}"
        beat = float(registry.client.get_registered_model(name).tags["heartbeat_at"])
        time.sleep(1.0)
        assert float(registry.client.get_registered_model(name).tags["heartbeat_at"]) > beat
        caplog.set_level(logging.WARNING, logger="components.registry.lock")
        with pytest.raises(RegistryBusyError, match=f"held by first \\(pid {os.getpid()} on"):
            acquire(registry, owner="second", timeout_s=1.0)
        told = [r.getMessage() for r in caplog.records if "waiting" in r.getMessage()]
        assert len(told) == 1 and "held by first" in told[0] and "since" in told[0]


def test_a_lock_without_holder_details_is_never_broken_silently(registry):
    plant_lock(registry, owner="dead", acquired_at="0")  # a lock written before holders were recorded
    with pytest.raises(RegistryBusyError, match="--break-lock"):
        acquire(registry, owner="third", timeout_s=5)
