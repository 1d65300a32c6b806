"""Interleaved A/B measurement: ratios that the machine's drift cannot hand to one side.

On these shared 2-core VMs the machine's speed drifts over tens of seconds (hypervisor steal, other
sessions), so two servers measured one after the other can differ by 2x for reasons that are not
theirs: one full round of ``benchmarks/serving.py`` measured our p50 at 1.11 ms, the next at
0.49 ms, the same server on the same machine. Here the two sides alternate in short slices, in ABBA
order (A then B, then B then A: a steady drift costs both the same), and each pair gives one ratio;
the median of the pairs' ratios and their range are the result.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

Measure = Callable[[], dict]


def interleave(measure_a: Measure, measure_b: Measure, pairs: int) -> list[tuple[dict, dict]]:
    """``pairs`` results of (``measure_a()``, ``measure_b()``), the pairs run in ABBA order."""
    if pairs < 1:
        raise ValueError(f"pairs must be >= 1, got {pairs}")
    results = []
    for i in range(pairs):
        if i % 2 == 0:
            a = measure_a()
            b = measure_b()
        else:
            b = measure_b()
            a = measure_a()
        results.append((a, b))
    return results


@dataclass(frozen=True)
class Spread:
    """The median of per-pair values and the smallest and largest of them."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))


def ratios(pairs: list[tuple[dict, dict]], key: str) -> Spread:
    """``a[key] / b[key]`` of every pair: their median and range."""
    return Spread.of([a[key] / b[key] for a, b in pairs])


def values(pairs: list[tuple[dict, dict]], key: str, side: int = 0) -> Spread:
    """``key`` of side A (0) or B (1) over the pairs: its median and range."""
    return Spread.of([pair[side][key] for pair in pairs])
