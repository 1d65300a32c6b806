"""Checks of the rollout's configured bounds: a bad value is an error naming ``Class.field``."""

from __future__ import annotations

import math


def _is_number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def whole(where: str, value, error: type[Exception], minimum: int = 1) -> int:
    """``value`` as an int (KFP hands ints over as floats: 2.0 is 2); ``error`` unless whole, >= minimum."""
    if not _is_number(value) or not math.isfinite(value) or value != int(value) or value < minimum:
        raise error(f"{where} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def number(where: str, value, error: type[Exception], low: float = 0.0, high: float = math.inf) -> float:
    """``value`` if it is a finite number in [low, high], else ``error`` naming ``where``."""
    if not _is_number(value) or not math.isfinite(value) or not low <= value <= high:
        span = f">= {low:g}" if high == math.inf else f"in [{low:g}, {high:g}]"
        raise error(f"{where} must be a finite number {span}, got {value!r}")
    return float(value)
