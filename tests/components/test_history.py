"""The time-stamped history and its horizon labels."""

from __future__ import annotations

import pandas as pd
import pytest

from components import history, schema
from components.config import ConfigError


@pytest.fixture(scope="module")
def hist():
    return history.generate_history(300, 8, seed=5)


def test_every_group_holds_its_schema_columns_and_one_row_per_active_customer_and_month(hist):
    for group, columns in history.GROUPS.items():
        frame = getattr(hist, group)
        assert set(columns) <= set(frame.columns)
        assert not frame.duplicated([schema.ID_COLUMN, history.TIMESTAMP]).any()
    assert len(hist.account) == len(hist.services) == len(hist.billing)
    assert len(hist.snapshots) == 8


def test_customers_join_and_leave(hist):
    first = hist.account.groupby(schema.ID_COLUMN)[history.TIMESTAMP].min()
    last = hist.account.groupby(schema.ID_COLUMN)[history.TIMESTAMP].max()
    assert (first > hist.snapshots[0]).any(), "some customers join during the history"
    gone = hist.churn_events.set_index(schema.ID_COLUMN)[history.CHURN_DATE]
    assert len(gone) > 0
    # No snapshot after a churn event; the last one precedes it.
    assert (last[gone.index] < gone).all()
    joined = first[first > hist.snapshots[0]].index
    assert (hist.account.set_index(schema.ID_COLUMN).loc[joined].groupby(level=0)["tenure"].min() == 0).all()


def test_charges_change_3m_is_the_bill_minus_three_snapshots_before(hist):
    bills = hist.billing.pivot(index=schema.ID_COLUMN, columns=history.TIMESTAMP, values="MonthlyCharges")
    changes = hist.billing.pivot(
        index=schema.ID_COLUMN, columns=history.TIMESTAMP, values=history.CHARGE_CHANGE_3M
    )
    month = hist.snapshots[5]
    expected = (bills[month] - bills[hist.snapshots[2]]).round(2).dropna()
    assert (changes.loc[expected.index, month] - expected).abs().max() < 0.011
    assert (changes[hist.snapshots[0]].dropna() == 0).all()


def test_labels_say_yes_exactly_for_churn_within_the_horizon(hist):
    labels = history.label_rows(hist, horizon_days=60)
    assert labels[history.AS_OF].max() + pd.Timedelta(days=60) <= hist.end
    events = hist.customers.set_index(schema.ID_COLUMN)[history.CHURN_DATE]
    churn = events.loc[labels[schema.ID_COLUMN]].reset_index(drop=True)
    as_of = labels[history.AS_OF].reset_index(drop=True)
    within = (churn > as_of) & (churn <= as_of + pd.Timedelta(days=60))
    assert ((labels[schema.LABEL_COLUMN] == "Yes") == within).all()
    assert 0 < within.sum() < len(labels)
    # Nobody is labelled after leaving.
    assert not (churn <= as_of).any()


def test_an_as_of_whose_horizon_passes_the_end_is_refused(hist):
    with pytest.raises(ConfigError, match="horizon runs past"):
        history.label_rows(hist, as_of=[hist.end], horizon_days=30)
