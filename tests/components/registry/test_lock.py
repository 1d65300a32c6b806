"""The promotion lock: exclusive, and a crashed holder's lock is broken."""

from __future__ import annotations

import pytest

from components.registry import RegistryBusyError
from components.registry.lock import LOCK_SUFFIX, promotion_lock


def test_promotion_lock_is_exclusive_and_a_stale_one_is_broken(registry):
    client, name = registry.client, registry.name
    second = promotion_lock(registry, owner="second", timeout_s=0.5)
    first = promotion_lock(registry, owner="first")
    with first, pytest.raises(RegistryBusyError, match="promotion-lock still held"):
        second.__enter__()
    # a holder that crashed long ago: its lock is broken instead of blocking everyone
    client.create_registered_model(f"{name}{LOCK_SUFFIX}", tags={"owner": "dead", "acquired_at": "0"})
    with promotion_lock(registry, owner="third", timeout_s=5, stale_after_s=60):
        lock = client.get_registered_model(f"{name}{LOCK_SUFFIX}")
        assert lock.tags["owner"] == "third"
    assert not client.search_registered_models(f"name = '{name}{LOCK_SUFFIX}'")
