"""Alias moves: the one function that moves an alias, and ``churn registry promote/rollback``.

:func:`move_alias` is used by the register step, the CLI and the rollout alike: under the
promotion lock (:mod:`components.registry.lock`) it re-reads the alias, moves it only if it still
points where the caller expects (compare-and-set), writes the audit event
(:mod:`components.registry.audit`) and, for ``champion``, the version's ``promotion`` tag. So
manual and automatic moves are serialised and recorded alike.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from components.config import Settings
from components.registry.audit import AuditEvent, actor, champion_stack, check_fits, history, record
from components.registry.client import Registry, RegistryError, connect
from components.registry.lock import promotion_lock
from components.registry_names import (
    CHAMPION,
    STATE_COMPLETE,
    TAG_BUNDLE_URI,
    TAG_GATE,
    TAG_GATE_REASONS,
    TAG_PROMOTION,
    TAG_STATE,
)


class Expect(enum.Enum):
    """Sentinel for :func:`move_alias`: move the alias wherever it points now."""

    ANYWHERE = "anywhere"


@dataclass(frozen=True)
class AliasMove:
    """What :func:`move_alias` found (``from_version``, read under the lock) and did."""

    alias: str
    from_version: str | None
    to_version: str
    moved: bool
    event: AuditEvent | None = None

    @property
    def conflict(self) -> bool:
        """The alias pointed somewhere other than expected, so it was left alone."""
        return not self.moved and self.from_version != self.to_version

    def to_dict(self) -> dict:
        out = {"alias": self.alias, "from": self.from_version, "to": self.to_version, "moved": self.moved}
        if self.event is not None:
            out["event"] = self.event.to_dict()
        return out


def move_alias(
    registry: Registry,
    alias: str,
    to_version: str,
    *,
    reason: str,
    via: str,
    expected: str | Expect | None = Expect.ANYWHERE,
    run_id: str | None = None,
    break_lock: bool = False,
) -> AliasMove:
    """Point ``alias`` at ``to_version`` if it still points at ``expected`` (None: at nothing).

    Under the promotion lock; an audit event records the move and, for ``champion``, the version
    gets a ``promotion`` tag. Nothing is written when the alias is already there or points
    elsewhere than expected (see :attr:`AliasMove.conflict`; the caller decides what to do).
    ``break_lock`` breaks a promotion lock whose holder is silent (:mod:`~components.registry.lock`).
    A ``reason`` too long for the audit trail is refused before the lock (:func:`.audit.check_fits`).
    """
    to_version = str(to_version)
    check_fits(alias=alias, to_version=to_version, reason=reason, via=via, run_id=run_id)
    owner = f"{via} by {actor()}" + (f" (run {run_id})" if run_id else "")
    with promotion_lock(registry, owner=owner, break_lock=break_lock):
        current = registry.alias_version(alias)
        if current == to_version or (expected is not Expect.ANYWHERE and current != expected):
            return AliasMove(alias, current, to_version, moved=False)
        registry.client.set_registered_model_alias(registry.name, alias, to_version)
        event = record(
            registry, alias=alias, from_version=current, to_version=to_version, reason=reason, via=via,
            run_id=run_id,
        )  # fmt: skip
        if alias == CHAMPION:
            registry.client.set_model_version_tag(
                registry.name, to_version, TAG_PROMOTION, f"champion ({via}: {reason})"
            )
    return AliasMove(alias, current, to_version, moved=True, event=event)


def promote(
    settings: Settings,
    version: str,
    *,
    reason: str,
    alias: str = CHAMPION,
    force: bool = False,
    via: str = "cli promote",
    break_lock: bool = False,
) -> dict:
    """Point ``alias`` at ``version`` (audited); refuses incomplete versions and unforced gate failures."""
    if not reason or not reason.strip():
        raise RegistryError("--reason: required (it goes into the audit trail)")
    with connect(settings, f"promote v{version}") as registry:
        mv = registry.get_version(version)
        if mv.tags.get(TAG_STATE) != STATE_COMPLETE or not mv.tags.get(TAG_BUNDLE_URI):
            raise RegistryError(
                f"{registry.name} v{version}: registration incomplete (no published bundle); cannot promote"
            )
        if mv.tags.get(TAG_GATE) != "passed" and not force:
            raise RegistryError(
                f"{registry.name} v{version}: quality gate {mv.tags.get(TAG_GATE)} "
                f"({mv.tags.get(TAG_GATE_REASONS)}); use --force to promote anyway"
            )
        move = move_alias(
            registry, alias, str(mv.version), reason=reason.strip(), via=via, break_lock=break_lock
        )
        return move.to_dict()


def rollback(
    settings: Settings, *, reason: str = "rollback", via: str = "cli rollback", break_lock: bool = False
) -> dict:
    """Move ``champion`` back to the champion before the current one (per the audit trail)."""
    with connect(settings, "rollback") as registry:
        current = registry.alias_version(CHAMPION)
        if current is None:
            raise RegistryError(f"{registry.name}: no champion to roll back")
        stack = champion_stack(history(registry))
        if not stack or stack[-1] != current:  # alias moved outside this tool: trust the alias
            stack.append(current)
        previous = next((v for v in reversed(stack[:-1]) if v != current), None)
        if previous is None:
            raise RegistryError(
                f"{registry.name}: champion v{current} has no previous champion to roll back to"
            )
        move = move_alias(
            registry, CHAMPION, previous, reason=reason, via=via, expected=current, break_lock=break_lock
        )
        if move.conflict:
            raise RegistryError(
                f"{registry.name}: champion moved from v{current} to v{move.from_version} during the "
                "rollback; nothing changed, run it again"
            )
        return move.to_dict()
