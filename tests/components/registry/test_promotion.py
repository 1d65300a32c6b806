"""Alias moves: compare-and-set, audit trail and tags; ``promote`` and ``rollback``."""

from __future__ import annotations

import pytest

from components.registry import Expect, RegistryError, list_versions, move_alias, promote, rollback
from components.registry.audit import history
from tests.support.bundles import register_run


def test_promote_and_rollback_are_audited(good, mediocre, worse, settings, registry, aliases, tolerant):
    register_run(good, settings)  # v1 champion
    register_run(mediocre, settings, promote=False, gate=tolerant)  # v2 challenger
    register_run(worse, settings)  # v3 failed gate
    with pytest.raises(RegistryError, match="--reason"):
        promote(settings, "2", reason=" ")
    with pytest.raises(RegistryError, match="quality gate failed"):
        promote(settings, "3", reason="try it")
    with pytest.raises(RegistryError, match="not found"):
        promote(settings, "99", reason="nope")

    moved = promote(settings, "2", reason="canary healthy")
    assert moved["from"] == "1" and moved["to"] == "2" and aliases(settings)["champion"] == "2"
    back = rollback(settings, reason="latency regression")
    assert back["from"] == "2" and back["to"] == "1" and aliases(settings)["champion"] == "1"
    with pytest.raises(RegistryError, match="no previous champion"):
        rollback(settings)

    # history from a fresh client (a restart): every move, in order, with reason and actor
    events = history(registry)
    champion_moves = [
        (e.from_version, e.to_version, e.via, e.reason) for e in events if e.alias == "champion"
    ]
    assert champion_moves == [
        (None, "1", "pipeline register", "gate passed (first champion)"),
        ("1", "2", "cli promote", "canary healthy"),
        ("2", "1", "cli rollback", "latency regression"),
    ]
    assert all(e.actor and e.at for e in events)
    assert [r["version"] for r in list_versions(settings, alias="champion")] == ["1"]
    assert [r["version"] for r in list_versions(settings, metric_filters=["roc_auc<0.6"])] == ["3"]
    assert [r["version"] for r in list_versions(settings, tags={"gate_verdict": "failed"})] == ["3"]


def test_move_alias_is_compare_and_set(good, settings, registry, aliases):
    register_run(good, settings, promote=False)  # v1 challenger, no champion
    register_run(good, settings, promote=False)  # v2
    first = move_alias(registry, "champion", "1", reason="first", via="test", expected=None)
    assert first.moved and first.from_version is None and first.event.to_version == "1"
    stale = move_alias(registry, "champion", "2", reason="stale view", via="test", expected=None)
    assert stale.conflict and not stale.moved and stale.from_version == "1"
    assert aliases(settings)["champion"] == "1"  # a move based on a stale view changes nothing
    again = move_alias(registry, "champion", "1", reason="again", via="test", expected=Expect.ANYWHERE)
    assert not again.moved and not again.conflict  # already there: no event
    assert [e.reason for e in history(registry) if e.alias == "champion"] == ["first"]
    tag = registry.client.get_model_version(settings.registered_model, "1").tags["promotion"]
    assert tag == "champion (test: first)"
