"""Batch scoring (components.score): chunked cleaning, ONNX scores, ranking, quarantine, atomic output."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components import schema
from components.config import load_settings
from components.export import onnx_predict_proba
from components.ingest import clean
from components.reasons import reason_columns
from components.score import (
    ScoreConfig,
    ScoreError,
    quarantine_uri,
    run_folder_model,
    score_table,
    scoring_session,
)
from components.synthetic import generate

ROWS = 3000


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    """Synthetic customers without the label column (what a weekly scoring table holds)."""
    return generate(ROWS, seed=99).drop(columns=[schema.LABEL_COLUMN, schema.TRUTH_COLUMN])


@pytest.fixture(scope="module")
def model(trained_run):
    return run_folder_model(trained_run.artifacts.bundle, with_reasons=True)


def _parquet(frame: pd.DataFrame, path, row_group_size: int = 800):
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=row_group_size)
    return path


def test_scores_ranks_and_identity(tmp_path, customers, model, trained_run):
    out = tmp_path / "scores.parquet"
    summary = score_table(
        str(_parquet(customers, tmp_path / "in.parquet")), str(out), model, ScoreConfig(chunk_rows=500),
        load_settings(),
    )  # fmt: skip
    scored = pd.read_parquet(out)
    assert summary["rows"] == summary["scored"] == len(scored) == ROWS
    assert scored["rank"].tolist() == list(range(1, ROWS + 1))
    assert scored["churn_probability"].is_monotonic_decreasing
    graph = trained_run.artifacts.bundle / "model.onnx"
    ours = scored["churn_probability"].to_numpy()
    expected = pd.Series(
        onnx_predict_proba(scoring_session(graph), customers), index=customers[schema.ID_COLUMN]
    )
    assert np.abs(ours - expected[scored[schema.ID_COLUMN]].to_numpy()).max() == 0
    # ORT's tree ensemble sums in another order on more threads (the server's default session)
    default = pd.Series(onnx_predict_proba(graph, customers), index=customers[schema.ID_COLUMN])
    assert np.abs(ours - default[scored[schema.ID_COLUMN]].to_numpy()).max() <= 1e-6
    threshold = model.metadata.threshold
    assert (scored["decision"] == (scored["churn_probability"] >= threshold)).all()
    evaluation = json.loads(trained_run.artifacts.evaluation.read_text())["business"]
    profit = scored["churn_probability"] * evaluation["offer_success_rate"] * evaluation["customer_value"]
    assert np.allclose(scored["expected_profit"], profit - evaluation["offer_cost"])
    assert set(scored["content_sha256"]) == {model.metadata.content_sha256}
    assert set(scored["registry_version"]) == {""}  # a run folder's bundle: not registered
    assert set(reason_columns()) <= set(scored.columns)
    assert summary["business"]["source"] == str(trained_run.artifacts.evaluation)


def test_chunk_size_does_not_change_the_answer(tmp_path, customers, model):
    source = str(_parquet(customers, tmp_path / "in.parquet"))
    outputs = []
    for chunk_rows in (300, 100_000):
        out = tmp_path / f"out-{chunk_rows}.parquet"
        score_table(source, str(out), model, ScoreConfig(chunk_rows=chunk_rows), load_settings())
        outputs.append(pd.read_parquet(out))
    pd.testing.assert_frame_equal(*outputs)


def test_bad_rows_are_quarantined_with_reasons_and_input_row_numbers(tmp_path, customers, model):
    messy = customers.astype({"tenure": str})
    messy.loc[10, "Contract"] = "Lifetime"
    messy.loc[2500, "tenure"] = "soon"
    messy.loc[77, "Contract"] = " month-TO-month "  # cleaned, as ingest and serving do: scored
    messy.to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "scores.csv"
    summary = score_table(
        str(tmp_path / "in.csv"),
        str(out),
        model,
        ScoreConfig(chunk_rows=1000, output_format="csv"),
        load_settings(),
    )
    quarantine = pd.read_csv(quarantine_uri(str(out)))
    assert quarantine["source_row"].tolist() == [11, 2501]
    assert quarantine["quarantine_reason"].tolist() == [
        "Contract has unknown category 'Lifetime'",
        "tenure is not a number: 'soon'",
    ]
    scored = pd.read_csv(out)
    assert summary["quarantined"] == 2 and len(scored) == ROWS - 2
    assert messy.loc[77, schema.ID_COLUMN] in set(scored[schema.ID_COLUMN])
    assert not set(quarantine[schema.ID_COLUMN]) & set(scored[schema.ID_COLUMN])


def test_missing_column_is_a_clear_error_and_nothing_is_written(tmp_path, customers, model):
    source = _parquet(customers.drop(columns=["tenure"]), tmp_path / "in.parquet")
    out = tmp_path / "out" / "scores.parquet"
    with pytest.raises(ScoreError, match=r"required column.*missing: tenure"):
        score_table(str(source), str(out), model, ScoreConfig(), load_settings())
    assert not out.exists()


def test_a_chunk_with_no_valid_row_fails_and_leaves_no_output(tmp_path, customers, model):
    messy = customers.astype({"MonthlyCharges": str})  # a text column, as some exports hold
    messy.loc[1000:1499, "MonthlyCharges"] = "n/a"
    source = _parquet(messy, tmp_path / "in.parquet", row_group_size=500)
    out = tmp_path / "scores.parquet"
    with pytest.raises(
        ScoreError, match=r"rows 1001-1500 hold no valid row .*MonthlyCharges is not a number"
    ):
        score_table(
            str(source), str(out), model, ScoreConfig(chunk_rows=500, max_bad_share=0.5), load_settings()
        )
    assert not out.exists()
    assert len(pd.read_csv(quarantine_uri(str(out)))) == 500  # the bad rows stay inspectable
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_too_many_bad_rows_are_refused(tmp_path, customers, model):
    messy = customers.copy()
    messy.loc[::10, "gender"] = "?"
    out = tmp_path / "scores.parquet"
    with pytest.raises(ScoreError, match=r"10.0% of rows failed validation, over the 5.0% limit"):
        score_table(
            str(_parquet(messy, tmp_path / "in.parquet")), str(out), model, ScoreConfig(), load_settings()
        )
    assert not out.exists()


def test_a_crash_mid_way_leaves_no_partial_output(tmp_path, customers, model):
    calls = []

    def explain_then_crash(data):
        calls.append(len(data))
        if len(calls) == 3:
            raise RuntimeError("killed mid-way")
        return model.explain(data)

    out = tmp_path / "scores.parquet"
    out.write_bytes(b"last week's list")
    with pytest.raises(RuntimeError, match="killed mid-way"):
        crashing = replace(model, explain=explain_then_crash)
        source = str(_parquet(customers, tmp_path / "in.parquet"))
        score_table(source, str(out), crashing, ScoreConfig(chunk_rows=500), load_settings())
    assert out.read_bytes() == b"last week's list"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_unsupported_input_type_is_named(tmp_path, model):
    (tmp_path / "in.xlsx").write_text("x")
    with pytest.raises(ScoreError, match=r"in.xlsx: unsupported file type '.xlsx'"):
        score_table(
            str(tmp_path / "in.xlsx"), str(tmp_path / "o.parquet"), model, ScoreConfig(), load_settings()
        )


def test_scoring_rows_are_cleaned_like_ingest(customers):
    """The ids scored are exactly ingest's valid rows (same rules, no label needed)."""
    from components.score import clean_chunk

    data, quarantine = clean_chunk(customers, first_row=1)
    labelled = clean(customers.assign(**{schema.LABEL_COLUMN: "Yes"})).data
    assert data[schema.ID_COLUMN].tolist() == labelled[schema.ID_COLUMN].tolist()
    assert quarantine.empty and schema.LABEL_COLUMN not in data


def test_an_id_repeated_in_another_chunk_is_refused_and_nothing_is_written(tmp_path, customers, model):
    """Cleaning quarantines repeats within a chunk; a repeat in a later chunk would be ranked twice."""
    messy = customers.copy()
    messy.loc[2600, schema.ID_COLUMN] = messy.loc[10, schema.ID_COLUMN]
    out = tmp_path / "scores.parquet"
    with pytest.raises(
        ScoreError, match=rf"customerID '{messy.loc[10, schema.ID_COLUMN]}' and 0 more appear"
    ):
        score_table(
            str(_parquet(messy, tmp_path / "in.parquet")), str(out), model, ScoreConfig(chunk_rows=500),
            load_settings(),
        )  # fmt: skip
    assert not out.exists()


def test_concurrent_ort_runs_and_rank_buckets_do_not_change_the_bytes(
    tmp_path, customers, model, monkeypatch
):
    """A chunk's slices scored by 3 concurrent threads (a CSV file: one process), and pass 2 capped
    at 4 rank buckets, write the same bytes as one thread and one bucket per chunk."""
    import components.score as score

    monkeypatch.setattr(score, "_SLICE_ROWS", 128)
    source = str(tmp_path / "in.csv")
    customers.to_csv(source, index=False)
    assert score.process_plan(Path(source), replace(model, explain=None), ScoreConfig(workers=3)) == []
    plain = tmp_path / "plain.parquet"
    score_table(source, str(plain), model, ScoreConfig(chunk_rows=1000, workers=1), load_settings())
    monkeypatch.setattr(score, "MAX_BUCKETS", 4)
    assert score.bucket_rows(ROWS, 300) == 750
    sliced = tmp_path / "sliced.parquet"
    score_table(source, str(sliced), model, ScoreConfig(chunk_rows=1000, workers=3), load_settings())
    assert sliced.read_bytes() == plain.read_bytes()
    spread = tmp_path / "spread.parquet"
    score_table(source, str(spread), model, ScoreConfig(chunk_rows=300, workers=3), load_settings())
    pd.testing.assert_frame_equal(pd.read_parquet(spread), pd.read_parquet(plain))


def test_parts_scored_by_different_models_are_not_joined(tmp_path, customers, model):
    from components.score import score_part, write_ranked

    source = _parquet(customers, tmp_path / "in.parquet")
    other = replace(model, metadata=replace(model.metadata, content_sha256="0" * 64))
    parts = []
    for i, scorer in enumerate((model, other)):
        parts.append(tmp_path / f"part-{i}.arrow")
        score_part(source, scorer, ScoreConfig(), parts[-1], tmp_path / f"q-{i}.csv", row_groups=[i])
    out = tmp_path / "out.parquet"
    with pytest.raises(ScoreError, match="scored by different models"):
        write_ranked(parts, out, ScoreConfig())
    assert not out.exists()


def test_parquet_chunks_hold_the_values_pandas_reads(tmp_path, customers):
    """Categorical columns are read as Parquet dictionaries (shared strings); the chunks must hold
    exactly what ``pd.read_parquet`` gives, nulls and odd spellings included."""
    from components.score import read_chunks

    messy = customers.head(900).copy()
    messy.loc[[3, 400], "Contract"] = [None, " month-TO-month"]
    messy.loc[5, "gender"] = None
    path = _parquet(messy, tmp_path / "in.parquet", row_group_size=300)
    chunks = list(read_chunks(path, chunk_rows=200))
    assert [len(c) for c in chunks] == [200, 100] * 3
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), pd.read_parquet(path))


def test_pass_two_keeps_only_its_sort_keys_not_the_batches(tmp_path, customers, model):
    """Pass 2 holds every row's sort keys while it reads on; they must not keep their batches alive
    (a zero-copy ``to_numpy()`` view did: 5M rows peaked at 949 MB instead of ~720 MB)."""
    from components.score import score_part, sort_keys

    part = tmp_path / "part.arrow"
    score_part(_parquet(customers, tmp_path / "in.parquet"), model, ScoreConfig(), part, tmp_path / "q.csv")
    before = pa.total_allocated_bytes()
    kept, largest = [], 0
    with pa.OSFile(str(part)) as handle:
        reader = pa.ipc.open_file(handle)
        for i in range(reader.num_record_batches):
            batch = reader.get_batch(i)
            largest = max(largest, batch.nbytes)
            kept.append(sort_keys(batch))
            del batch
    held = pa.total_allocated_bytes() - before
    assert sum(len(p) for p, _ in kept) == ROWS
    assert held < largest / 4, f"{held} bytes of Arrow memory held by the keys (a batch is {largest})"


def test_row_group_ranges_scored_in_processes_write_the_bytes_of_one_process(tmp_path, customers, model):
    """Pass 1 forked over 3 row-group ranges: the same output bytes, quarantine and counts as one
    process reading the file in order; the progress lines add the processes' counts up. Reason
    codes keep one process (XGBoost's OpenMP hangs in a forked child)."""
    from components.score import process_plan

    assert process_plan(_parquet(customers, tmp_path / "r.parquet", 500), model, ScoreConfig(workers=3)) == []
    model = replace(model, explain=None)
    messy = customers.copy()
    messy.loc[[5, 1700, 2999], "gender"] = "?"  # a bad row in the first, a middle and the last range
    source = _parquet(messy, tmp_path / "in.parquet", row_group_size=500)
    assert [r["row_groups"] for r in process_plan(source, model, ScoreConfig(workers=3))] == [
        [0, 1], [2, 3], [4, 5],
    ]  # fmt: skip
    assert process_plan(source, model, ScoreConfig(workers=1)) == []
    runs = {}
    for workers in (1, 3):
        out, lines = tmp_path / f"out-{workers}.parquet", []
        config = ScoreConfig(chunk_rows=250, workers=workers)
        summary = score_table(str(source), str(out), model, config, load_settings(), progress=lines.append)
        runs[workers] = (out.read_bytes(), Path(quarantine_uri(str(out))).read_text(), summary, lines)
    assert runs[3][0] == runs[1][0]
    assert runs[3][1] == runs[1][1] and runs[3][1].count("gender has unknown category") == 3
    assert {k: v for k, v in runs[3][2].items() if k != "out" and k != "quarantine" and k != "report"} == {
        k: v for k, v in runs[1][2].items() if k != "out" and k != "quarantine" and k != "report"
    }
    counts = [line for line in runs[3][3] if "rows read" in line]
    assert len(counts) == ROWS // 250  # one line per chunk of any process
    assert counts[-1] == "score: 3,000 rows read, 2,997 scored, 3 quarantined"


def test_the_first_failing_range_in_file_order_is_the_error_of_a_forked_pass(tmp_path, customers, model):
    """Rows 1001-1500 (the first range's last chunk) and 1501-2000 (the second range's first) hold
    no valid row. The second range fails first in time; the error, and the quarantine, are the
    first range's: what one process reading in order stops with."""
    model = replace(model, explain=None)
    messy = customers.astype({"MonthlyCharges": str})
    messy.loc[1000:1999, "MonthlyCharges"] = "n/a"
    source = _parquet(messy, tmp_path / "in.parquet", row_group_size=500)
    out = tmp_path / "scores.parquet"
    config = ScoreConfig(chunk_rows=500, max_bad_share=0.5, workers=2)
    with pytest.raises(ScoreError, match=r"rows 1001-1500 hold no valid row"):
        score_table(str(source), str(out), model, config, load_settings())
    assert not out.exists()
    quarantine = pd.read_csv(quarantine_uri(str(out)))
    assert quarantine["source_row"].tolist() == list(range(1001, 1501))
