"""The rollout verdict: the one format of a pre-flight or canary judgement.

A verdict is a list of checks, each comparing the stable (champion) and the canary
(challenger) on one quantity against a bound, and the decision derived from them:

- ``rollback``: at least one check failed (pre-flight: the challenger is rejected before it
  sees a request; canary: traffic back to the stable version, challenger tagged rejected);
- ``hold``: nothing failed, but at least one check is still waiting for data (fewer requests
  than its minimum); the reasons say how many it waits for;
- ``promote``: every check passed;
- ``skipped``: pre-flight only: the payload-log window was too small to judge (never a pass).

The pre-flight replay (:mod:`components.rollout.preflight`), the Prometheus analysis
(:mod:`components.rollout.analysis`) and the driver all use this module; the driver stores
:meth:`Verdict.to_json` on the MLflow model version and prints :meth:`Verdict.table`.
Standard library only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone

PROMOTE = "promote"
HOLD = "hold"
ROLLBACK = "rollback"
SKIPPED = "skipped"
DECISIONS: tuple[str, ...] = (PROMOTE, HOLD, ROLLBACK, SKIPPED)

PREFLIGHT = "preflight"
CANARY = "canary"
KINDS: tuple[str, ...] = (PREFLIGHT, CANARY)

# What a check row's ``passed`` shows in the table; None is a check still waiting for data.
_PASS_TEXT = {True: "pass", False: "FAIL", None: "wait"}


@dataclass(frozen=True)
class Check:
    """One row: a quantity of the stable and the canary version, and the bound it is judged by.

    ``value`` is the number the bound applies to (a difference, a ratio, a distance, or the
    canary's own value); ``bound`` says it in words (``"<= 0.05"``, ``"<= 1.5x stable"``).
    ``passed`` is None while the check waits for data; ``detail`` then says what it waits for
    and, for a failed check, why it failed.
    """

    check: str
    stable: float | None
    canary: float | None
    value: float | None
    bound: str
    passed: bool | None
    detail: str = ""

    @property
    def waiting(self) -> bool:
        return self.passed is None

    def reason(self) -> str:
        """One line for the verdict's reasons: what failed or what the check waits for."""
        if self.passed is None:
            return f"{self.check}: {self.detail or 'waiting for data'}"
        shown = _number(self.value)
        text = f"{self.check}: {shown} (stable {_number(self.stable)}, canary {_number(self.canary)})"
        return f"{text} breaks bound {self.bound}" + (f"; {self.detail}" if self.detail else "")

    def to_dict(self) -> dict:
        return {
            "check": self.check,
            "stable": _finite_or_none(self.stable),
            "canary": _finite_or_none(self.canary),
            "value": _finite_or_none(self.value),
            "bound": self.bound,
            "passed": self.passed,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Check:
        return cls(
            check=str(data["check"]),
            stable=_float_or_none(data.get("stable")),
            canary=_float_or_none(data.get("canary")),
            value=_float_or_none(data.get("value")),
            bound=str(data.get("bound", "")),
            passed=data.get("passed"),
            detail=str(data.get("detail", "")),
        )


def decide(checks: tuple[Check, ...] | list[Check]) -> str:
    """The decision a set of checks gives: any failure rolls back, any wait holds, else promote."""
    if any(c.passed is False for c in checks):
        return ROLLBACK
    if any(c.passed is None for c in checks) or not checks:
        return HOLD
    return PROMOTE


@dataclass(frozen=True)
class Verdict:
    """A judged comparison of ``canary_version`` against ``stable_version``.

    Build it with :func:`judged` (decision derived from the checks) or :func:`skipped`; the
    constructor checks that a stored decision still agrees with its checks.
    """

    kind: str
    decision: str
    stable_version: str
    canary_version: str
    checks: tuple[Check, ...] = ()
    reasons: tuple[str, ...] = ()
    window: str = ""  # what was compared: "last 5m", "2026-12-01T10:00Z..2026-12-01T11:00Z, 4,000 rows"
    at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Verdict.kind must be one of {KINDS}, got {self.kind!r}")
        if self.decision not in DECISIONS:
            raise ValueError(f"Verdict.decision must be one of {DECISIONS}, got {self.decision!r}")
        if self.decision == SKIPPED:
            if self.kind != PREFLIGHT:
                raise ValueError("Verdict.decision 'skipped' is for the pre-flight replay only")
        elif self.decision != decide(self.checks):
            raise ValueError(
                f"Verdict.decision {self.decision!r} contradicts its checks ({decide(self.checks)!r})"
            )
        object.__setattr__(self, "checks", tuple(self.checks))
        object.__setattr__(self, "reasons", tuple(self.reasons))

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.passed is False)

    @property
    def waiting(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.passed is None)

    def table(self) -> str:
        """The verdict as a text table (check, stable, canary, value, bound, pass) with its reasons."""
        header = ("check", "stable", "canary", "value", "bound", "pass")
        rows = [
            (c.check, _number(c.stable), _number(c.canary), _number(c.value), c.bound, _PASS_TEXT[c.passed])
            for c in self.checks
        ]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        where = f", {self.window}" if self.window else ""
        lines = [
            f"{self.kind} verdict: {self.decision.upper()}  "
            f"(stable {self.stable_version}, canary {self.canary_version}{where})"
        ]
        for row in [header, tuple("-" * w for w in widths), *rows]:
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        lines.extend(f"- {reason}" for reason in self.reasons)
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """A JSON-ready dict (non-finite numbers become None)."""
        return {
            "kind": self.kind,
            "decision": self.decision,
            "stable_version": self.stable_version,
            "canary_version": self.canary_version,
            "window": self.window,
            "at": self.at,
            "checks": [c.to_dict() for c in self.checks],
            "reasons": list(self.reasons),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Verdict:
        return cls(
            kind=data["kind"],
            decision=data["decision"],
            stable_version=str(data["stable_version"]),
            canary_version=str(data["canary_version"]),
            checks=tuple(Check.from_dict(c) for c in data.get("checks", ())),
            reasons=tuple(data.get("reasons", ())),
            window=str(data.get("window", "")),
            at=str(data.get("at", "")),
        )

    def to_json(self) -> str:
        """Compact JSON, for a model-version tag (a handful of checks stays well under 5,000 chars)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> Verdict:
        return cls.from_dict(json.loads(text))


def judged(
    kind: str,
    stable_version: str,
    canary_version: str,
    checks: list[Check] | tuple[Check, ...],
    window: str = "",
) -> Verdict:
    """The verdict of ``checks``: decision from :func:`decide`, reasons from the failed or waiting checks."""
    decision = decide(checks)
    if decision == ROLLBACK:
        reasons = [c.reason() for c in checks if c.passed is False]
    elif decision == HOLD:
        reasons = [c.reason() for c in checks if c.passed is None] or ["no checks were made"]
    else:
        reasons = []
    return Verdict(kind, decision, stable_version, canary_version, tuple(checks), tuple(reasons), window)


def skipped(stable_version: str, canary_version: str, rows: int, minimum: int, window: str = "") -> Verdict:
    """The pre-flight verdict of a window too small to judge: ``skipped: N rows < minimum M``."""
    reason = f"skipped: {rows} rows < minimum {minimum}"
    return Verdict(PREFLIGHT, SKIPPED, stable_version, canary_version, (), (reason,), window)


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _float_or_none(value) -> float | None:
    return None if value is None else float(value)


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"
