"""The verdict format: decisions derived from checks, round trip, table."""

from __future__ import annotations

import json

import pytest

from components.rollout.verdict import (
    CANARY,
    HOLD,
    PREFLIGHT,
    PROMOTE,
    ROLLBACK,
    SKIPPED,
    Check,
    Verdict,
    judged,
    skipped,
)

OK = Check("error rate", 0.001, 0.002, 0.001, "<= 0.01 above stable", True)
BAD = Check("p99 latency (s)", 0.010, 0.200, 20.0, "<= 1.5x stable", False, "canary is slower")
WAIT = Check("score JS distance", None, None, None, "<= 0.1", None, "canary has 12 of 200 requests")


@pytest.mark.parametrize(
    ("checks", "decision"),
    [([OK], PROMOTE), ([OK, WAIT], HOLD), ([OK, WAIT, BAD], ROLLBACK), ([], HOLD)],
)
def test_decision_follows_the_checks(checks, decision):
    verdict = judged(CANARY, "3", "4", checks)
    assert verdict.decision == decision
    if decision == ROLLBACK:
        assert verdict.reasons == (BAD.reason(),) and "breaks bound <= 1.5x stable" in verdict.reasons[0]
    if decision == HOLD and checks:
        assert verdict.reasons == ("score JS distance: canary has 12 of 200 requests",)


def test_round_trip_through_json_keeps_everything():
    verdict = judged(CANARY, "3", "4", [OK, WAIT, BAD], window="last 2m")
    again = Verdict.from_json(verdict.to_json())
    assert again == verdict
    assert json.loads(verdict.to_json())["checks"][2]["passed"] is False


def test_non_finite_numbers_are_stored_as_null():
    check = Check("p99 latency (s)", float("nan"), 0.1, float("inf"), "<= 1.5x stable", False)
    data = judged(CANARY, "1", "2", [check]).to_dict()
    assert data["checks"][0]["stable"] is None and data["checks"][0]["value"] is None


def test_a_decision_that_contradicts_its_checks_is_refused():
    with pytest.raises(ValueError, match="contradicts"):
        Verdict(CANARY, PROMOTE, "1", "2", (BAD,))
    with pytest.raises(ValueError, match="pre-flight replay only"):
        Verdict(CANARY, SKIPPED, "1", "2")
    with pytest.raises(ValueError, match="decision must be one of"):
        Verdict(CANARY, "pass", "1", "2")


def test_skipped_is_not_a_pass_and_says_the_counts():
    verdict = skipped("3", "4", rows=12, minimum=500)
    assert verdict.kind == PREFLIGHT and verdict.decision == SKIPPED
    assert verdict.reasons == ("skipped: 12 rows < minimum 500",)
    assert Verdict.from_dict(verdict.to_dict()) == verdict


def test_table_shows_every_check_and_the_reasons():
    text = judged(CANARY, "3", "4", [OK, WAIT, BAD], window="last 2m").table()
    lines = text.splitlines()
    assert lines[0].startswith("canary verdict: ROLLBACK") and "last 2m" in lines[0]
    assert lines[1].split() == ["check", "stable", "canary", "value", "bound", "pass"]
    body = "\n".join(lines[3:])
    assert "error rate" in body and "wait" in body and "FAIL" in body and "pass" in body
    assert lines[-1].startswith("- p99 latency (s): 20")
