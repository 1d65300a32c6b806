"""Live accuracy once delayed labels land, and its reconciliation with the label-free estimate.

Logs are written one customer per request (the request id is the customer id, the join key);
labels come as a CSV the way a CRM export would (Yes/No, a label date weeks after serving).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from components import schema
from components.monitoring import ALERT, NOT_ENOUGH, OK, MonitorConfig, run_monitor
from components.monitoring.labels import LabelsError, read_labels
from components.monitoring.monitor import CONCEPT_DRIFT_NOTE
from components.monitoring.report import render
from components.synthetic import Drift, generate
from tests.support.payload_logs import T0, write_log

ROWS = 20_000
LABEL_DATE = pd.Timestamp(T0 + 30 * 86_400, unit="s", tz="UTC")  # churn is known a month later


def _labels_csv(path, frame: pd.DataFrame, date=LABEL_DATE):
    pd.DataFrame(
        {
            "customerID": frame[schema.ID_COLUMN],
            "Churn": frame[schema.LABEL_COLUMN],
            "label_date": date.isoformat(),
        }
    ).to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """20k customers served by the true (undrifted) churn model, one request each."""
    frame = generate(ROWS, seed=31)
    log = write_log(tmp_path_factory.mktemp("log"), frame, per_request=1)
    return frame, str(log)


@pytest.fixture(scope="module")
def concept(tmp_path_factory, served, synthetic_reference, settings):
    """The same customers, whose churn process then shifted (+1 log-odds): features and scores unchanged."""
    frame, log = served
    shifted = generate(ROWS, seed=31, drift=Drift(churn_logit_shift=1.0))
    assert shifted[schema.FEATURE_NAMES[0]].equals(frame[schema.FEATURE_NAMES[0]])
    before = run_monitor(log, synthetic_reference, settings=settings)
    labels = _labels_csv(tmp_path_factory.mktemp("labels") / "labels.csv", shifted)
    after = run_monitor(log, synthetic_reference, settings=settings, labels=labels)
    return before, after


def test_live_accuracy_on_undrifted_labels_agrees_with_sklearn_and_the_estimate(
    tmp_path, served, synthetic_reference, settings
):
    frame, log = served
    result = run_monitor(
        log, synthetic_reference, settings=settings, labels=_labels_csv(tmp_path / "l.csv", frame)
    )
    assert result.live["joined"] == ROWS and result.live["unmatched"] == 0
    y = (frame[schema.LABEL_COLUMN] == "Yes").to_numpy()
    scores = frame[schema.TRUTH_COLUMN].to_numpy(dtype=np.float32)  # as logged
    assert result.live["metrics"]["roc_auc"] == pytest.approx(roc_auc_score(y, scores), abs=1e-9)
    assert result.reconciliation["concept_drift"] is False
    assert {c.level for c in result.checks if c.check in ("live_accuracy", "reconciliation")} == {OK}
    assert result.status == OK
    periods = [p for p in result.estimate_over_time if "realised_roc_auc" in p]
    assert len(periods) >= 3  # 20k requests a second apart: ~6 hours


def test_concept_drift_is_invisible_without_labels(concept):
    before, _ = concept
    assert before.status == OK, [c.reason for c in before.alerts]
    assert before.live is None and before.reconciliation is None


def test_concept_drift_is_caught_by_live_accuracy_and_by_the_estimate_vs_realised_gap(concept):
    _, after = concept
    assert after.alerted("data_drift") == set() and after.alerted("prediction_drift") == set()
    assert "calibration" in after.alerted("live_accuracy")
    assert {"churn_rate", "precision"} <= after.alerted("reconciliation")
    assert after.reconciliation["concept_drift"] is True
    churn = after.reconciliation["metrics"]["churn_rate"]
    assert churn["realised"] > churn["high"] + 0.05
    reasons = " ".join(c.reason for c in after.alerts)
    assert CONCEPT_DRIFT_NOTE in reasons
    page = render(after)
    assert "Concept drift:" in page and CONCEPT_DRIFT_NOTE in page


def test_labels_join_the_last_row_served_at_or_before_the_label_date(tmp_path, synthetic_reference, settings):
    frame = generate(1_000, seed=32)
    log = write_log(tmp_path / "log", frame, per_request=1)  # customer i served at T0 + i s
    early = pd.Timestamp(T0 + 499.5, unit="s", tz="UTC")  # before customers 500.. were served
    labels = _labels_csv(tmp_path / "labels.csv", frame, early)
    result = run_monitor(
        str(log),
        synthetic_reference,
        settings=settings,
        labels=labels,
        config=MonitorConfig(min_labelled=100),
    )
    assert result.live["joined"] == 500 and result.live["unmatched"] == 500


def test_too_few_labels_is_not_enough_data(tmp_path, served, synthetic_reference, settings):
    frame, log = served
    labels = _labels_csv(tmp_path / "labels.csv", frame.head(150))
    result = run_monitor(log, synthetic_reference, settings=settings, labels=labels)
    (check,) = [c for c in result.checks if c.check == "live_accuracy"]
    assert check.level == NOT_ENOUGH
    assert check.reason == "not enough data (N = 150 labelled rows joined < 200)"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("id,Churn,label_date\na,Yes,2026-01-01\n", "no customer id column"),
        ("customerID,Churn,when\na,Yes,2026-01-01\n", "no label date column"),
        (
            "customerID,Churn,label_date\na,Yes,2026-01-01\nb,maybe,2026-01-01\n",
            "1 row(s) with an unknown 'Churn' value, first at row 2: 'maybe'",
        ),
        (
            "customer_id,label,label_date\na,1,2026-01-01\nb,0,someday\n",
            "1 row(s) with no valid 'label_date', first at row 2: 'someday'",
        ),
    ],
)
def test_bad_labels_files_name_the_column_and_row(tmp_path, settings, content, message):
    path = tmp_path / "labels.csv"
    path.write_text(content)
    with pytest.raises(LabelsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_labels(str(path), settings)


def test_alerting_outputs_are_in_the_json(concept):
    _, after = concept
    data = after.to_dict()
    assert data["status"] == ALERT
    assert {a["check"] for a in data["alerts"]} == {"live_accuracy", "reconciliation"}
    assert data["reconciliation"]["note"] == CONCEPT_DRIFT_NOTE
