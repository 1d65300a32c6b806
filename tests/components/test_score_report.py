"""The scoring report (components.score_report): chunked aggregates, previous-run overlap, the page."""

from __future__ import annotations

import re
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components import schema
from components.config import load_settings
from components.reasons import top_reasons
from components.score import ScoreConfig, ScoreError, run_folder_model, score_table
from components.score_report import HISTOGRAM_BINS, ReportBuilder, reason_key, tenure_band
from components.scored_output import report_uri
from components.synthetic import generate

ROWS = 2400


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    return generate(ROWS, seed=17).drop(columns=[schema.LABEL_COLUMN, schema.TRUTH_COLUMN])


@pytest.fixture(scope="module")
def model(trained_run):
    return run_folder_model(trained_run.artifacts.bundle, with_reasons=True)


@pytest.fixture(scope="module")
def ranked(tmp_path_factory, customers, model):
    """One scored list (chunks of 500) and its path."""
    out = tmp_path_factory.mktemp("report") / "scores.parquet"
    pq.write_table(pa.Table.from_pandas(customers, preserve_index=False), out.with_suffix(".in.parquet"))
    score_table(
        str(out.with_suffix(".in.parquet")), str(out), model, ScoreConfig(chunk_rows=500, top_k=300),
        load_settings(),
    )  # fmt: skip
    return out


def test_chunked_aggregates_equal_the_whole_list_computed_at_once(ranked, model):
    whole = pd.read_parquet(ranked)
    builder = ReportBuilder(len(whole), model.metadata.threshold, top_k=300)
    for batch in pq.ParquetFile(ranked).iter_batches(batch_size=317):  # chunks unrelated to k or grid
        builder.add(pa.Table.from_batches([batch]))
    s = builder.summary()
    p, profit = whole["churn_probability"], whole["expected_profit"]
    assert builder.histogram.tolist() == np.histogram(p, bins=HISTOGRAM_BINS, range=(0, 1))[0].tolist()
    cumulative = profit.cumsum().to_numpy()
    assert s["profit"]["top 300"] == pytest.approx(cumulative[299])
    flagged = whole["decision"] == 1
    assert s["profit"][f"flagged at threshold ({flagged.sum()})"] == pytest.approx(profit[flagged].sum())
    best = int(cumulative.argmax()) + 1
    assert s["profit"][f"best number to call ({best})"] == pytest.approx(cumulative.max())
    assert s["profit"][f"all ({ROWS})"] == pytest.approx(profit.sum())
    assert builder.curve[-1] == pytest.approx(profit.sum())
    assert builder.top_ids == whole[schema.ID_COLUMN].head(300).tolist()
    # every reason counted once per customer who has it among the top 3
    keys = pd.concat([reason_key(whole[f"reason_{i}"]) for i in (1, 2, 3)]).dropna()
    expected = keys.value_counts()
    assert {r["reason"]: r["customers"] for r in s["top_reasons"]} == expected.head(10).to_dict()
    month = whole[whole["Contract"] == "Month-to-month"]
    seg = s["segments"]["Contract"]["Month-to-month"]
    assert seg["customers"] == len(month)
    assert seg["mean_probability"] == pytest.approx(month["churn_probability"].mean())
    in_month = pd.concat([reason_key(month[f"reason_{i}"]) for i in (1, 2, 3)]).value_counts()
    assert [k for k, _ in seg["top_reasons"]] == in_month.head(3).index.tolist()
    bands = s["segments"]["tenure band"]
    assert list(bands) == ["0-5 months", "6-11 months", "12-23 months", "24-47 months", "48+ months"]
    assert sum(b["customers"] for b in bands.values()) == ROWS


def test_reason_labels_group_into_readable_reasons(trained_run, customers):
    labels = top_reasons(joblib.load(trained_run.artifacts.model), customers.head(400))["reason_1"]
    keys = reason_key(labels)
    assert set(keys[labels.str.startswith("tenure = ", na=False)]) == {"tenure"}
    assert set(keys[labels.str.startswith("charges ", na=False)]) <= {"charges vs average"}
    contract = labels.str.startswith("Contract = ", na=False)
    assert contract.any() and (keys[contract] == labels[contract]).all()  # a category keeps its value
    assert keys[labels.isna()].isna().all()
    assert reason_key(pd.Series(["SeniorCitizen = Yes", "MonthlyCharges = 99.10", None])).tolist()[:2] == [
        "SeniorCitizen = Yes",
        "MonthlyCharges",
    ]


def test_tenure_bands_use_the_models_band_edges():
    assert tenure_band([0, 5, 6, 11.5, 12, 47, 48, 72]).tolist() == [
        "0-5 months", "0-5 months", "6-11 months", "6-11 months", "12-23 months", "24-47 months",
        "48+ months", "48+ months",
    ]  # fmt: skip


def test_report_is_one_self_contained_page_beside_the_output(ranked):
    page = report_uri(str(ranked))
    text = Path(page).read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") == 3  # distribution, profit curve, reasons
    assert 'src="http' not in text and "<script" not in text
    for section in ("Expected profit of calling", "Top reasons", "By Contract", "By tenure band"):
        assert section in text
    assert "Contract = Month-to-month" in text
    assert "No previous run" in text  # nothing was at the output's location before the first run


def _overlap(page: str) -> dict:
    """The overlap table's rows (``<tr><th>name</th><td>value</td></tr>``) of a report page."""
    text = Path(page).read_text(encoding="utf-8")
    section = text.split("Overlap with the previous run", 1)[1].split("<h2>", 1)[0]
    return dict(re.findall(r"<tr><th>([^<]+)</th><td>([^<]+)</td></tr>", section))


def test_second_run_compares_with_the_list_it_replaces(tmp_path, customers, model):
    source = tmp_path / "week.parquet"
    pq.write_table(pa.Table.from_pandas(customers, preserve_index=False), source)
    out = tmp_path / "scores.parquet"
    config = ScoreConfig(chunk_rows=600, top_k=250)
    score_table(str(source), str(out), model, config, load_settings())
    first_top = set(pd.read_parquet(out)[schema.ID_COLUMN].head(250))
    # next week: a tenth of the customers left, new ones joined, the rest a month older
    later = customers.iloc[ROWS // 10 :].assign(tenure=lambda f: f["tenure"] + 1)
    newcomers = generate(300, seed=5).drop(columns=[schema.LABEL_COLUMN, schema.TRUTH_COLUMN])
    week2 = pd.concat([later, newcomers.assign(customerID="new-" + newcomers[schema.ID_COLUMN])])
    pq.write_table(pa.Table.from_pandas(week2, preserve_index=False), source)
    score_table(str(source), str(out), model, config, load_settings())
    both = len(first_top & set(pd.read_parquet(out)[schema.ID_COLUMN].head(250)))
    overlap = _overlap(report_uri(str(out)))
    assert 0 < both < 250  # the comparison is not trivial
    assert int(overlap["in both lists"]) == both and int(overlap["new in this list"]) == 250 - both
    assert overlap["previous run"] == str(out)


def test_an_explicit_previous_run_must_exist(tmp_path, customers, model):
    source = tmp_path / "week.parquet"
    pq.write_table(pa.Table.from_pandas(customers, preserve_index=False), source)
    out = tmp_path / "scores.parquet"
    with pytest.raises(ScoreError, match=r"previous run .*last-week.parquet: no such file"):
        score_table(
            str(source), str(out), model, ScoreConfig(), load_settings(),
            previous=str(tmp_path / "last-week.parquet"),
        )  # fmt: skip
    assert not out.exists() and not (tmp_path / "scores.parquet.report.html").exists()


def test_a_file_at_the_output_that_is_no_ranked_list_is_named_not_compared(tmp_path, customers, model):
    source = tmp_path / "week.parquet"
    pq.write_table(pa.Table.from_pandas(customers.head(500), preserve_index=False), source)
    out = tmp_path / "scores.csv"
    out.write_text("something else\n1\n")
    score_table(str(source), str(out), model, ScoreConfig(output_format="csv"), load_settings())
    text = Path(report_uri(str(out))).read_text(encoding="utf-8")
    assert "is not a ranked scoring output" in text and "not compared" in text
