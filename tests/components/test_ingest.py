"""Ingest on real files: messy CSVs are cleaned or quarantined, unusable ones fail clearly."""

import json

import pandas as pd
import pytest

from components import schema
from components.artifacts import RunArtifacts
from components.config import load_settings
from components.ingest import REASON_COLUMN, IngestConfig, IngestError, clean, ingest
from components.synthetic import generate


def _messy_csv(tmp_path, rows=400):
    """A Telco export the way real ones look: every quirk the ingest step must handle."""
    frame = generate(rows, seed=11, with_truth=False).astype(str)
    frame.loc[frame["tenure"] == "0", "TotalCharges"] = " "  # blank for first-month customers
    frame["Churn"] = frame["Churn"].map({"Yes": "1", "No": "0"})
    frame.loc[0:49, "Churn"] = frame.loc[0:49, "Churn"].map({"1": "True", "0": "False"})
    frame.loc[50:59, "Churn"] = frame.loc[50:59, "Churn"].map({"1": " yes", "0": "NO "})
    frame.loc[60:69, "Contract"] = frame.loc[60:69, "Contract"].str.upper()  # case differs
    frame.loc[3, "tenure"] = "-4"
    frame.loc[4, "MonthlyCharges"] = "n/a"
    frame.loc[5, "PaymentMethod"] = "Bitcoin"
    frame.loc[6, "InternetService"] = "No"  # contradicts its add-on columns
    frame.loc[7, [schema.ID_COLUMN, "Churn"]] = frame.loc[8, [schema.ID_COLUMN, "Churn"]]  # row 9 repeats 8
    frame["ExtraColumn"] = "ignored"
    frame.columns = [c.upper() if i % 3 == 0 else f" {c.lower()} " for i, c in enumerate(frame.columns)]
    path = tmp_path / "messy.csv"
    frame.to_csv(path, index=False)
    return path


def test_messy_csv_is_cleaned_and_bad_rows_quarantined_with_reasons(tmp_path):
    paths = RunArtifacts.in_dir(tmp_path)
    summary = ingest(str(_messy_csv(tmp_path)), paths, IngestConfig(max_bad_share=0.05), load_settings())

    quarantine = pd.read_csv(paths.quarantine)
    reasons = dict(zip(quarantine["source_row"], quarantine[REASON_COLUMN], strict=True))
    assert reasons[4] == "tenure=-4.0 outside [0, 120]"
    assert reasons[5] == "MonthlyCharges is not a number: 'n/a'"
    assert reasons[6] == "PaymentMethod has unknown category 'Bitcoin'"
    assert "contradicts InternetService" in reasons[7]
    assert reasons[9].startswith("customerID ") and reasons[9].endswith("repeats row 8 with different values")
    assert len(reasons) == 5
    assert summary["quarantined"] == 5 and summary["invalid"] == 4 and summary["duplicate_ids"] == 1
    assert summary["rows"] == 395 and [c.strip().lower() for c in summary["dropped_columns"]] == [
        "extracolumn"
    ]

    data = pd.concat(pd.read_parquet(p) for p in (paths.train, paths.valid, paths.test))
    assert len(data) == 395
    assert set(data[schema.LABEL_COLUMN]) == {0, 1}
    assert set(data["Contract"]) <= set(schema.BY_NAME["Contract"].categories)
    assert data["TotalCharges"].notna().all()
    assert (data.loc[data["tenure"] == 0, "TotalCharges"] == 0).all()

    profile = json.loads(paths.profile.read_text())
    assert profile["data_hash"] == summary["data_hash"]
    assert profile["features"]["Contract"]["counts"]["Month-to-month"] > 0


def test_label_spellings_are_normalised():
    raw = generate(6, seed=1, with_truth=False).astype(str)
    raw["Churn"] = ["Yes", "no", "1", "0", "TRUE", "false"]
    assert clean(raw).data[schema.LABEL_COLUMN].tolist() == [1, 0, 1, 0, 1, 0]


def test_unknown_label_is_quarantined():
    raw = generate(5, seed=1, with_truth=False).astype(str)
    raw.loc[2, "Churn"] = "maybe"
    cleaned = clean(raw)
    assert len(cleaned.data) == 4
    assert cleaned.quarantine[REASON_COLUMN].tolist() == [
        "Churn label 'maybe' is not one of yes/no, 1/0, true/false"
    ]


def test_missing_label_column_fails_naming_it(tmp_path):
    path = tmp_path / "nolabel.csv"
    generate(50, seed=1).drop(columns=["Churn"]).to_csv(path, index=False)
    with pytest.raises(IngestError, match="label column 'Churn' is missing"):
        ingest(str(path), RunArtifacts.in_dir(tmp_path), IngestConfig(), load_settings())


def test_missing_feature_column_fails_naming_it(tmp_path):
    path = tmp_path / "nocontract.parquet"
    generate(50, seed=1).drop(columns=["Contract", "tenure"]).to_parquet(path)
    with pytest.raises(IngestError, match="required column\\(s\\) missing: tenure, Contract"):
        ingest(str(path), RunArtifacts.in_dir(tmp_path), IngestConfig(), load_settings())


def test_all_bad_file_fails_and_writes_only_the_quarantine(tmp_path):
    frame = generate(30, seed=1, with_truth=False)
    frame["tenure"] = -1
    path = tmp_path / "allbad.csv"
    frame.to_csv(path, index=False)
    paths = RunArtifacts.in_dir(tmp_path)
    with pytest.raises(IngestError, match=r"no usable rows, all 30 were quarantined.*tenure=-1\.0 outside"):
        ingest(str(path), paths, IngestConfig(), load_settings())
    assert len(pd.read_csv(paths.quarantine)) == 30
    assert not paths.train.exists() and not paths.profile.exists()


def test_too_many_bad_rows_fail_over_the_limit(tmp_path):
    frame = generate(400, seed=1, with_truth=False)
    frame.loc[:39, "MonthlyCharges"] = -5.0  # 10% bad
    path = tmp_path / "tenpercent.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(IngestError, match=r"10\.0% of rows are bad, over the 5\.0% limit"):
        ingest(str(path), RunArtifacts.in_dir(tmp_path), IngestConfig(max_bad_share=0.05), load_settings())
    ingest(str(path), RunArtifacts.in_dir(tmp_path), IngestConfig(max_bad_share=0.2), load_settings())


def test_unreadable_sources_fail_clearly(tmp_path):
    with pytest.raises(Exception, match="no such file"):
        ingest(str(tmp_path / "absent.csv"), RunArtifacts.in_dir(tmp_path), IngestConfig(), load_settings())
    (tmp_path / "data.xlsx").write_text("x")
    with pytest.raises(IngestError, match="unsupported file type"):
        ingest(str(tmp_path / "data.xlsx"), RunArtifacts.in_dir(tmp_path), IngestConfig(), load_settings())


def test_content_hash_ignores_format_and_row_order(tmp_path):
    frame = generate(300, seed=9, with_truth=False)
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.sample(frac=1.0, random_state=1).to_parquet(tmp_path / "b.parquet", index=False)
    a = ingest(str(tmp_path / "a.csv"), RunArtifacts.in_dir(tmp_path / "a"), IngestConfig(), load_settings())
    b = ingest(
        str(tmp_path / "b.parquet"), RunArtifacts.in_dir(tmp_path / "b"), IngestConfig(), load_settings()
    )
    assert a["data_hash"] == b["data_hash"]
    frame.loc[0, "tenure"] += 1
    frame.to_csv(tmp_path / "c.csv", index=False)
    c = ingest(str(tmp_path / "c.csv"), RunArtifacts.in_dir(tmp_path / "c"), IngestConfig(), load_settings())
    assert c["data_hash"] != a["data_hash"]


def test_splits_are_stratified_and_seeded(tmp_path):
    source = "synthetic://?rows=3000&seed=3"
    first, second = RunArtifacts.in_dir(tmp_path / "1"), RunArtifacts.in_dir(tmp_path / "2")
    one = ingest(source, first, IngestConfig(seed=1), load_settings())
    rates = [pd.read_parquet(p)[schema.LABEL_COLUMN].mean() for p in (first.train, first.valid, first.test)]
    assert max(rates) - min(rates) < 0.01
    assert one["splits"] == {"train": 2100, "valid": 300, "test": 600}
    ingest(source, second, IngestConfig(seed=1), load_settings())
    for name in ("train", "test"):
        assert pd.read_parquet(getattr(first, name)).equals(pd.read_parquet(getattr(second, name)))


def test_duplicates_and_label_conflicts_are_counted_apart_and_listed(tmp_path):
    frame = generate(300, seed=4, with_truth=False).astype(str)
    ids = frame[schema.ID_COLUMN]
    copies = frame.iloc[[0, 0, 0]].copy()  # source rows 301-303: exact copies of row 1
    copies.iloc[0, copies.columns.get_loc("Churn")] = f" {frame.loc[0, 'Churn'].upper()}"  # same value
    flipped = frame.iloc[[20]].copy()  # source row 304: row 21 with the opposite label
    flipped["Churn"] = flipped["Churn"].map({"Yes": "No", "No": "Yes"})
    changed = frame.iloc[[30]].copy()  # source row 305: row 31's id and label, another tenure
    changed["tenure"] = str(int(changed["tenure"].iloc[0]) + 1)
    frame.loc[40, "tenure"] = "-1"  # source row 41: invalid
    path = tmp_path / "dups.csv"
    pd.concat([frame, copies, flipped, changed]).to_csv(path, index=False)

    paths = RunArtifacts.in_dir(tmp_path)
    summary = ingest(str(path), paths, IngestConfig(), load_settings())

    quarantine = pd.read_csv(paths.quarantine)
    reasons = dict(zip(quarantine["source_row"], quarantine[REASON_COLUMN], strict=True))
    assert reasons == {
        21: f"conflicting labels for customerID {ids[20]}",
        41: "tenure=-1.0 outside [0, 120]",
        301: "duplicate of row 1",
        302: "duplicate of row 1",
        303: "duplicate of row 1",
        304: f"conflicting labels for customerID {ids[20]}",
        305: f"customerID {ids[30]} repeats row 31 with different values",
    }
    assert summary["invalid"] == 1 and summary["duplicates"] == 3
    assert summary["duplicate_ids"] == 1 and summary["label_conflicts"] == 2
    assert summary["quarantined"] == len(quarantine) == 7
    assert summary["rows"] == summary["source_rows"] - 7 == 298
    assert summary["bad_share"] == pytest.approx(3 / 305)  # invalid rows and label conflicts
    kept = pd.concat(pd.read_parquet(p) for p in (paths.train, paths.valid, paths.test))
    assert ids[20] not in set(kept[schema.ID_COLUMN]) and kept[schema.ID_COLUMN].is_unique


def _csv(tmp_path, rows: int) -> str:
    path = tmp_path / f"rows{rows}.csv"
    generate(rows, seed=2, with_truth=False).to_csv(path, index=False)
    return str(path)


def test_too_few_rows_of_a_class_fail_before_any_split_is_written(tmp_path):
    paths = RunArtifacts.in_dir(tmp_path)
    with pytest.raises(
        IngestError, match=r"the valid split would get [0-4] 'churn' rows?, below the minimum of 5"
    ):
        ingest(_csv(tmp_path, 30), paths, IngestConfig(), load_settings())
    assert not paths.train.exists() and not paths.profile.exists()
    with pytest.raises(IngestError, match=r"valid split would get [0-4] 'churn' row"):
        ingest(_csv(tmp_path, 60), paths, IngestConfig(), load_settings())


def test_small_but_usable_data_is_split_with_a_warning(tmp_path):
    paths = RunArtifacts.in_dir(tmp_path)
    summary = ingest(_csv(tmp_path, 240), paths, IngestConfig(), load_settings())
    assert any(w.startswith("the valid split has only ") and "'churn' rows (fewer than 30)" in w
               for w in summary["warnings"]), summary["warnings"]  # fmt: skip
    assert json.loads(paths.profile.read_text())["warnings"] == summary["warnings"]
    assert ingest(_csv(tmp_path, 3000), paths, IngestConfig(), load_settings())["warnings"] == []


@pytest.mark.parametrize(
    ("sep", "decimal", "encoding"),
    [
        (";", ",", "utf-8"),
        (";", ".", "utf-8"),
        ("\t", ",", "utf-8"),
        (";", ",", "utf-8-sig"),
        (",", ".", "utf-8-sig"),
    ],
    ids=["semicolon-decimal-comma", "semicolon", "tab-decimal-comma", "semicolon-bom", "comma-bom"],
)
def test_delimiter_and_decimal_comma_are_detected(tmp_path, sep, decimal, encoding):
    frame = generate(300, seed=6, with_truth=False)
    frame.to_csv(tmp_path / "plain.csv", index=False)
    frame.to_csv(tmp_path / "export.csv", index=False, sep=sep, decimal=decimal, encoding=encoding)
    plain = ingest(
        str(tmp_path / "plain.csv"), RunArtifacts.in_dir(tmp_path / "a"), IngestConfig(), load_settings()
    )
    export = ingest(
        str(tmp_path / "export.csv"), RunArtifacts.in_dir(tmp_path / "b"), IngestConfig(), load_settings()
    )
    assert export["quarantined"] == 0
    assert export["data_hash"] == plain["data_hash"]
    assert export["csv"] == {"delimiter": sep, "decimal": decimal}


def test_an_undetectable_delimiter_names_the_candidates(tmp_path):
    path = tmp_path / "colon.csv"
    generate(50, seed=1).to_csv(path, index=False, sep=":")
    with pytest.raises(IngestError, match=r"no header names the schema's columns with any of the delimiters"):
        ingest(str(path), RunArtifacts.in_dir(tmp_path), IngestConfig(), load_settings())


def test_typed_numbers_are_cleaned_exactly_as_their_text():
    """Typed float64/int columns (Parquet) skip the text round trip; they must clean to the same
    rows, values and reasons as the same table read as text (a CSV)."""
    import numpy as np

    typed = generate(600, seed=8).drop(columns=[schema.TRUTH_COLUMN])
    typed["tenure"] = typed["tenure"].astype(np.int64)
    # Not 0.1 + 0.2: pandas' text parser reads "0.30000000000000004" as 0.3 (it is not correctly
    # rounded at 17 digits); the typed path keeps the exact float64.
    values = [np.nan, np.inf, -np.inf, -5.0, 1e9, 2.5, -0.0, 1234.5678]
    for i, column in enumerate(("MonthlyCharges", "TotalCharges", "SeniorCitizen")):
        rows = np.arange(i, 600, 23)[: len(values)]
        typed[column] = typed[column].astype(np.float64)
        typed.loc[rows, column] = values
    typed.loc[[3, 4], "tenure"] = [0, 0]
    typed.loc[3, "TotalCharges"] = np.nan  # a first-month customer: blank total means 0
    text = typed.astype(object).where(typed.notna(), "").astype(str)
    as_typed, as_text = clean(typed), clean(text)
    assert as_typed.counts["invalid"] >= 15  # the test exercises the reasons, not only good rows
    pd.testing.assert_frame_equal(as_typed.data, as_text.data, check_exact=True)
    pd.testing.assert_series_equal(
        as_typed.quarantine[REASON_COLUMN], as_text.quarantine[REASON_COLUMN], check_exact=True
    )


def test_cleaning_leaves_the_callers_frame_as_it_was():
    """Cleaning reads the caller's columns without copying them (scoring cleans 100k-row chunks):
    the one value it rewrites, a first-month customer's blank TotalCharges, is written to its own
    column, and the caller's frame keeps every value, column and index."""
    import numpy as np

    typed = generate(300, seed=9).set_axis(np.arange(1000, 1300))
    typed["TotalCharges"] = typed["TotalCharges"].astype(np.float64)
    typed.loc[[1003, 1004], "tenure"] = 0
    typed.loc[[1003, 1004], "TotalCharges"] = np.nan
    text = typed.astype(object).where(typed.notna(), "").astype(str)
    for frame in (typed, typed.assign(Unused=1), text):  # all columns used (not copied), or not
        before = frame.copy()
        cleaned = clean(frame)
        assert cleaned.data.loc[cleaned.data[schema.ID_COLUMN] == typed.loc[1003, schema.ID_COLUMN],
                                "TotalCharges"].tolist() == [0.0]  # fmt: skip
        pd.testing.assert_frame_equal(frame, before, check_exact=True)
