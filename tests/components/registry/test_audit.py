"""The audit trail's replay of champion moves (what ``rollback`` walks back through)."""

from __future__ import annotations

from components.registry.audit import AuditEvent, champion_stack


def test_champion_stack_replays_promotions_and_rollbacks():
    def ev(alias, frm, to, via):
        return AuditEvent("t", "me", via, alias, frm, to, "r")

    events = [
        ev("champion", None, "1", "pipeline register"),
        ev("challenger", None, "2", "pipeline register"),
        ev("champion", "1", "2", "cli promote"),
        ev("champion", "2", "3", "pipeline register"),
        ev("champion", "3", "2", "cli rollback"),
    ]
    assert champion_stack(events) == ["1", "2"]
