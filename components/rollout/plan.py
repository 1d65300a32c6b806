"""The step plan of a canary rollout: traffic shares, bake time per step, bounds on waiting.

The default is 10 % -> 50 % -> 100 %: the challenger takes 10 % of the requests, bakes, is judged,
takes 50 %, bakes, is judged, and the last step (100) is the promotion itself. A plan is written
on the InferenceService (annotation, :mod:`components.rollout.state`) when the rollout starts,
so ``resume`` continues the plan the rollout started with, whatever the command line says then.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from components.config import ConfigError

DEFAULT_STEPS = (10, 50, 100)
DEFAULT_BAKE_S = 600.0  # 10 minutes at each share before it is judged
DEFAULT_READY_TIMEOUT_S = 600.0  # a new revision that is not Ready by then is rolled back
DEFAULT_HOLD_TIMEOUT_S = 3600.0  # "hold" (too little traffic) for longer than this: roll back


@dataclass(frozen=True)
class RolloutPlan:
    """Canary shares (strictly increasing, each 1..100, the last exactly 100) and the waits."""

    steps: tuple[int, ...] = DEFAULT_STEPS
    bake_s: float = DEFAULT_BAKE_S
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S
    hold_timeout_s: float = DEFAULT_HOLD_TIMEOUT_S

    def __post_init__(self) -> None:
        steps = tuple(self.steps)
        if not steps or any(not isinstance(s, int) or isinstance(s, bool) for s in steps):
            raise ConfigError(f"--steps: expected whole percentages such as 10,50,100, got {self.steps!r}")
        if any(not 1 <= s <= 100 for s in steps):
            raise ConfigError(f"--steps {format_steps(steps)}: every share must be between 1 and 100")
        if any(b <= a for a, b in pairwise(steps)):
            raise ConfigError(f"--steps {format_steps(steps)}: shares must increase step by step")
        if steps[-1] != 100:
            raise ConfigError(
                f"--steps {format_steps(steps)}: the last step must be 100 (the promotion); a rollout "
                "that never reaches 100 % never ends"
            )
        for name in ("bake_s", "ready_timeout_s", "hold_timeout_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"{name}: expected a number of seconds >= 0, got {value!r}")
        object.__setattr__(self, "steps", steps)

    @property
    def canary_steps(self) -> tuple[int, ...]:
        """The shares below 100: each is a canary step that is baked and judged."""
        return self.steps[:-1]

    def share(self, step: int) -> int:
        """The traffic share of step ``step`` (0-based)."""
        return self.steps[step]

    def is_last_canary(self, step: int) -> bool:
        return step == len(self.canary_steps) - 1

    def to_text(self) -> str:
        """``10,50,100;bake=600;ready=600;hold=3600``: how the plan is kept on the InferenceService."""
        return (
            f"{format_steps(self.steps)};bake={self.bake_s:g};ready={self.ready_timeout_s:g};"
            f"hold={self.hold_timeout_s:g}"
        )

    @classmethod
    def from_text(cls, text: str) -> RolloutPlan:
        """The plan :meth:`to_text` wrote; :class:`ConfigError` names what is unreadable."""
        head, *rest = text.split(";")
        waits = {}
        for item in rest:
            key, sep, value = item.partition("=")
            if not sep or key not in {"bake", "ready", "hold"}:
                raise ConfigError(f"rollout plan {text!r}: unreadable part {item!r}")
            try:
                waits[key] = float(value)
            except ValueError:
                raise ConfigError(f"rollout plan {text!r}: {key}={value!r} is not a number") from None
        return cls(
            steps=parse_steps(head),
            bake_s=waits.get("bake", DEFAULT_BAKE_S),
            ready_timeout_s=waits.get("ready", DEFAULT_READY_TIMEOUT_S),
            hold_timeout_s=waits.get("hold", DEFAULT_HOLD_TIMEOUT_S),
        )


def parse_steps(text: str) -> tuple[int, ...]:
    """``"10,50,100"`` -> ``(10, 50, 100)``; :class:`ConfigError` names the bad part."""
    out = []
    for part in str(text).split(","):
        part = part.strip().rstrip("%")
        if not part.isdigit():
            raise ConfigError(f"--steps {text!r}: {part!r} is not a whole percentage")
        out.append(int(part))
    return tuple(out)


def format_steps(steps: tuple[int, ...]) -> str:
    return ",".join(str(s) for s in steps)
