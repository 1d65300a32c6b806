"""benchmarks/paired.py interleaves two sides in ABBA order and judges medians of per-pair ratios;
benchmarks/serving.py's head-to-head table judges issue 15's goals on those medians."""

from __future__ import annotations

import pytest

from benchmarks import paired


def test_pairs_alternate_in_abba_order_so_a_steady_drift_costs_both_sides_the_same():
    calls = []

    def side(name):
        def measure():
            calls.append(name)
            return {"t": len(calls)}  # a machine that slows down steadily: later calls take longer

        return measure

    pairs = paired.interleave(side("a"), side("b"), 4)
    assert "".join(calls) == "abbaabba"
    # Over the ABBA pairs, each side got the same total of "time" on the drifting machine.
    assert sum(a["t"] for a, _ in pairs) == sum(b["t"] for _, b in pairs)
    with pytest.raises(ValueError, match="pairs must be >= 1"):
        paired.interleave(side("a"), side("b"), 0)


def test_ratio_is_the_median_of_the_pairs_ratios_with_their_range():
    pairs = [({"p50": 1.0}, {"p50": 2.0}), ({"p50": 3.0}, {"p50": 1.0}), ({"p50": 0.9}, {"p50": 1.0})]
    assert paired.ratios(pairs, "p50") == paired.Spread(median=0.9, low=0.5, high=3.0)
    # the ratio of the medians would be 1.0: one noisy pair cannot move the median of ratios that far
    assert paired.values(pairs, "p50", side=1) == paired.Spread(median=1.0, low=1.0, high=2.0)


def test_head_to_head_goals_judge_the_medians():
    from benchmarks.serving import head_to_head_goals

    ours = {"p50": 0.5, "rps8": 2000.0, "rows_s": 100_000.0, "cpu1_us": 300.0, "cpu8_us": 240.0}
    triton = {"p50": 0.6, "rps8": 2500.0, "rows_s": 90_000.0, "cpu1_us": 200.0, "cpu8_us": 180.0}
    slow = {**ours, "p50": 1.2}  # one pair hit by a steal burst
    goals = {label: (median, met) for label, median, _, _, met in head_to_head_goals(
        [(ours, triton), (slow, triton), (ours, triton)])}  # fmt: skip
    assert goals["1-row p50 vs Triton-ORT"] == ("0.83x", True)
    assert goals["8-client req/s vs Triton-ORT"] == ("0.80x", False)
    assert goals["1000-row rows/s vs Triton-ORT"] == ("1.11x", True)
    assert goals["server CPU per 1-row request, 1 client"] == ("300µs", False)
    assert goals["server CPU per 1-row request, 8 clients"] == ("240µs", True)
    assert goals["  (Triton-ORT's own) server CPU per 1-row request, 8 clients"][0] == "180µs"
