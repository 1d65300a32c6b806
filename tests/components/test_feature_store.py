"""Training from the Feast store (embedded configuration: duckdb offline, SQLite online), for real.

The point-in-time trap: a customer's bill is raised AFTER an as-of date. The store's
point-in-time join must give that as-of row the bill before the change; a naive join (each
customer's latest snapshot) hands it the later value — the leak the store exists to prevent.
"""

from __future__ import annotations

import pandas as pd
import pytest

from components import feature_store, history, schema
from components.config import load_settings


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    work = tmp_path_factory.mktemp("feature-store")
    settings = load_settings({"CHURN_HOME": str(work)})
    hist = history.generate_history(200, 6, seed=9)
    # The trap: customer 0 is on the books throughout; their bill jumps at the last snapshot.
    trapped = hist.billing[schema.ID_COLUMN].iloc[0]
    at_end = (hist.billing[schema.ID_COLUMN] == trapped) & (hist.billing[history.TIMESTAMP] == hist.end)
    assert at_end.sum() == 1, "the trapped customer must still be a customer at the end"
    hist.billing.loc[at_end, "MonthlyCharges"] = 399.0
    feature_store.publish_history(hist, settings)
    return settings, hist, feature_store.apply(settings), trapped


def test_a_value_written_after_the_as_of_never_reaches_its_row_but_does_with_a_naive_join(built):
    _, hist, store, trapped = built
    as_of = hist.snapshots[2]
    labels = pd.DataFrame({schema.ID_COLUMN: [trapped], history.AS_OF: [as_of], schema.LABEL_COLUMN: ["No"]})
    at_as_of = hist.billing[
        (hist.billing[schema.ID_COLUMN] == trapped) & (hist.billing[history.TIMESTAMP] == as_of)
    ]
    point_in_time = feature_store.historical_features(store, labels)
    naive = feature_store.naive_join(hist, labels)
    assert point_in_time["MonthlyCharges"].iloc[0] == at_as_of["MonthlyCharges"].iloc[0] != 399.0
    assert naive["MonthlyCharges"].iloc[0] == 399.0  # the future leaked into the past


def test_the_join_matches_an_as_of_merge_with_the_ttl_on_every_label_row(built):
    """Feast's join == pandas.merge_asof(backward, tolerance=ttl) on the whole label set."""
    _, hist, store, _ = built
    labels = history.label_rows(hist, horizon_days=30)
    joined = feature_store.historical_features(store, labels).sort_values([history.AS_OF, schema.ID_COLUMN])
    expected = labels.sort_values(history.AS_OF)
    for group in feature_store.VIEWS:
        table = getattr(hist, group).sort_values(history.TIMESTAMP)
        expected = pd.merge_asof(
            expected, table, left_on=history.AS_OF, right_on=history.TIMESTAMP, by=schema.ID_COLUMN,
            direction="backward", tolerance=pd.Timedelta(days=45),
        ).drop(columns=[history.TIMESTAMP])  # fmt: skip
    expected = expected.sort_values([history.AS_OF, schema.ID_COLUMN])
    assert len(joined) == len(labels)
    for name in schema.FEATURE_NAMES:
        assert joined[name].tolist() == expected[name].tolist(), name


def test_training_table_is_the_raw_layout_one_row_per_customer_with_lineage(built, tmp_path):
    settings, hist, _, _ = built
    labels = history.label_rows(hist, horizon_days=30)
    path = tmp_path / "labels.parquet"
    labels.to_parquet(path)
    table = feature_store.read_feast_source(feature_store.source_uri(str(path)), settings)
    assert list(table.columns) == list(schema.REQUIRED_COLUMNS)
    assert table[schema.ID_COLUMN].is_unique
    assert len(table) == labels[schema.ID_COLUMN].nunique()
    lineage = table.attrs[feature_store.FEATURE_LINEAGE]
    assert [v["name"] for v in lineage["views"]] == list(feature_store.VIEWS)
    assert all(len(v["definition_sha256"]) == 64 for v in lineage["views"])
    assert lineage["as_of_min"] == labels[history.AS_OF].min().isoformat()
    assert lineage["as_of_max"] == labels[history.AS_OF].max().isoformat()
    assert lineage["label_rows"] == len(labels)


def test_labels_without_an_as_of_column_fail_naming_it(built, tmp_path):
    settings, *_ = built
    path = tmp_path / "bad.csv"
    pd.DataFrame({schema.ID_COLUMN: ["a"], schema.LABEL_COLUMN: ["No"]}).to_csv(path, index=False)
    with pytest.raises(feature_store.FeatureStoreError, match="as_of"):
        feature_store.read_feast_source(feature_store.source_uri(str(path)), settings)
