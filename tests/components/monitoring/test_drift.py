"""The monitor on the generator's drift knobs: alerts on what drifted, never on what did not.

Every log here is written by ``serving.payload_log``; scores are the rows' true probabilities
(a perfectly calibrated "model"), so prediction drift follows the features exactly.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from components import schema
from components.monitoring import ALERT, NOT_ENOUGH, OK, WARN, MonitorConfig, MonitorError, run_monitor
from components.synthetic import Drift
from tests.support.payload_logs import T0, window, write_log, write_log_fast

# Features each knob moves directly (must alert), and those its generator code never touches
# (must stay silent: no alert and no warning). Features downstream of a knob (TotalCharges is
# tenure x MonthlyCharges; add-ons and billing depend on fiber) may do either.
UNTOUCHED_BY_ANY = (
    "gender",
    "SeniorCitizen",
    "Partner",
    "Dependents",
    "PhoneService",
    "MultipleLines",
    "PaymentMethod",
)
KNOBS = {
    "charges": (Drift(monthly_charges_scale=1.3), {"MonthlyCharges"}),
    "month_to_month": (Drift(month_to_month_share=0.5), {"Contract"}),
    "fiber": (Drift(fiber_share_boost=0.5), {"InternetService"}),
}
# What each knob's generator code reads, beyond the feature it sets (see components/synthetic.py).
DOWNSTREAM = {
    "charges": {"TotalCharges"},
    "month_to_month": {"tenure", "TotalCharges"},
    "fiber": {"MonthlyCharges", "TotalCharges", "PaperlessBilling", *schema.NO_INTERNET_COLUMNS},
}


@pytest.fixture(scope="module")
def drifted_results(tmp_path_factory, synthetic_reference, settings):
    results = {}
    for name, (drift, _) in KNOBS.items():
        log = write_log(tmp_path_factory.mktemp(name), window(11, 50_000, drift))
        results[name] = run_monitor(str(log), synthetic_reference, settings=settings)
    return results


@pytest.mark.parametrize("knob", sorted(KNOBS))
def test_each_knob_alerts_on_its_features_and_no_untouched_one(drifted_results, knob):
    result = drifted_results[knob]
    expected = KNOBS[knob][1]
    alerted = result.alerted("data_drift")
    assert expected <= alerted, [c.reason for c in result.checks if c.feature in expected]
    untouched = set(schema.FEATURE_NAMES) - expected - DOWNSTREAM[knob]
    assert untouched >= set(UNTOUCHED_BY_ANY)
    noisy = {c.feature: c.reason for c in result.checks if c.feature in untouched and c.level != OK}
    assert noisy == {}
    assert result.status == ALERT
    assert all(c.reason for c in result.alerts)


def test_undrifted_million_rows_from_another_seed_raise_no_alert(tmp_path, synthetic_reference, settings):
    """The large-sample trap: with 1M rows tiny differences are "significant"; effect sizes decide."""
    log = write_log_fast(tmp_path / "log", window(99, 1_000_000))
    result = run_monitor(str(log), synthetic_reference, settings=settings)
    assert result.rows == 1_000_000
    assert result.alerts == [], [c.reason for c in result.alerts]
    assert result.status == OK
    drift = [c for c in result.checks if c.check == "data_drift"]
    assert len(drift) == len(schema.FEATURE_NAMES)
    assert max(c.values["psi"] for c in drift) < 0.02


def test_window_bounds_select_rows_and_skip_row_groups(tmp_path, synthetic_reference, settings):
    log = write_log_fast(tmp_path / "log", window(5, 40_000), per_request=1_000, rows_per_file=10_000)
    since = datetime.fromtimestamp(T0 + 10, timezone.utc)  # entry i is stamped T0 + i seconds
    until = datetime.fromtimestamp(T0 + 30, timezone.utc)
    result = run_monitor(str(log), synthetic_reference, settings=settings, since=since, until=until)
    assert result.rows == 20_000
    assert result.window["skipped_row_groups"] == 2  # files 0 and 3 hold only rows outside


def test_empty_window_is_a_clear_error(tmp_path, synthetic_reference, settings):
    log = write_log(tmp_path / "log", window(5, 1_000))
    late = datetime(2030, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(MonitorError, match=r"empty window: no payload-log rows .* between 2030-01-01"):
        run_monitor(str(log), synthetic_reference, settings=settings, since=late)
    (tmp_path / "nothing").mkdir()
    with pytest.raises(MonitorError, match="empty window"):
        run_monitor(str(tmp_path / "nothing"), synthetic_reference, settings=settings)


def test_below_minimum_window_says_not_enough_data(tmp_path, synthetic_reference, settings):
    log = write_log(tmp_path / "log", window(5, 300))
    result = run_monitor(str(log), synthetic_reference, settings=settings, config=MonitorConfig(min_rows=500))
    assert result.status == NOT_ENOUGH
    assert result.alerts == []
    assert result.checks[0].reason == "not enough data (N = 300 < 500)"


def test_window_with_only_unknown_categories_names_them(tmp_path, synthetic_reference, settings):
    frame = window(5, 2_000)
    frame["Contract"] = "Monthly"  # a client sending its own spelling: scored (all-zero one-hot), counted
    result = run_monitor(str(write_log(tmp_path / "log", frame)), synthetic_reference, settings=settings)
    (unknown,) = [c for c in result.checks if c.check == "unknown_categories" and c.feature == "Contract"]
    assert unknown.level == ALERT
    assert unknown.reason.startswith("all 2,000 values are unknown categories ('Monthly' x2,000)")
    assert "Month-to-month" in unknown.reason
    assert "Contract" in result.alerted("data_drift")
    others = [c for c in result.checks if c.check == "unknown_categories" and c.feature != "Contract"]
    assert {c.level for c in others} == {OK}


def test_a_few_unknown_categories_warn_with_examples(tmp_path, synthetic_reference, settings):
    frame = window(5, 2_000)
    frame.loc[:39, "PaymentMethod"] = "Crypto"  # 2%: above the 1% warn share, below the 5% alert
    result = run_monitor(str(write_log(tmp_path / "log", frame)), synthetic_reference, settings=settings)
    (check,) = [c for c in result.checks if c.check == "unknown_categories" and c.feature == "PaymentMethod"]
    assert check.level == WARN
    assert check.values["unknown"] == 40 and "'Crypto' x40" in check.reason


def test_same_season_baseline_compares_with_the_window_a_season_before(
    tmp_path, synthetic_reference, settings
):
    """A seasonal population (higher bills every winter) alerts against the reference, not against
    last year's same window."""
    from datetime import timedelta

    season = timedelta(days=364)
    winter = Drift(monthly_charges_scale=1.3)
    log = tmp_path / "log"
    write_log_fast(log / "last", window(21, 20_000, winter), t0=T0 - season.total_seconds())
    write_log_fast(log / "this", window(22, 20_000, winter), t0=T0)
    since = datetime.fromtimestamp(T0, timezone.utc)
    until = since + timedelta(hours=1)
    plain = run_monitor(str(log), synthetic_reference, settings=settings, since=since, until=until)
    assert "MonthlyCharges" in plain.alerted("data_drift")
    seasonal = run_monitor(
        str(log),
        synthetic_reference,
        settings=settings,
        since=since,
        until=until,
        config=MonitorConfig(season_offset=season),
    )
    assert seasonal.baseline.startswith("same season")
    assert seasonal.rows == 20_000
    assert seasonal.alerted("data_drift") == set()
