"""The payload log read back: what the real writer wrote, in a time window, newest file first.

Local folder and a real S3 (SeaweedFS on 127.0.0.1) through the same writer and reader.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pytest

from components.config import load_settings
from components.payload_log import DECISION_COLUMN, SCORE_COLUMN, PayloadLogError, file_name, read_log
from serving.payload_log import Entry, PayloadLog
from tests.integration.conftest import s3  # noqa: F401 (session fixture)


def _entry(rows: int, at: float, request_id: str) -> Entry:
    feeds = {
        "Contract": np.array([["Two year"]] * rows, dtype=object),
        "tenure": np.arange(rows, dtype=np.float32).reshape(-1, 1),
    }
    scores = np.linspace(0, 1, rows, dtype=np.float32)
    return Entry(at, request_id, "churn", "7", "0" * 64, "7", feeds, scores, scores >= 0.5)


def _write(uri: str, settings, entries: list[Entry]) -> None:
    log = PayloadLog(uri, settings, flush_rows=1, flush_seconds=60)  # one file per entry
    for entry in entries:
        log.log(entry)
        time.sleep(0.01)  # distinct write stamps
    log.close()


def _rows(batches) -> pa.Table:
    return pa.Table.from_batches(list(batches))


def _check_round_trip(uri: str, settings) -> None:
    now = time.time()
    _write(
        uri, settings, [_entry(3, now - 7200, "old"), _entry(4, now - 60, "recent"), _entry(5, now, "new")]
    )
    everything = _rows(read_log(uri, settings))
    assert everything.column("request_id").to_pylist() == ["new"] * 5 + ["recent"] * 4 + ["old"] * 3
    assert {SCORE_COLUMN, DECISION_COLUMN, "Contract", "tenure", "registry_version"} <= set(
        everything.column_names
    )
    since = datetime.fromtimestamp(now - 3600, timezone.utc)
    window = _rows(read_log(uri, settings, since=since, columns=["tenure"]))
    assert window.column_names == ["tenure", "timestamp"]
    assert window.num_rows == 9
    until = datetime.fromtimestamp(now - 30, timezone.utc)
    assert _rows(read_log(uri, settings, since=since, until=until)).num_rows == 4


def test_local_folder_round_trip_and_window(tmp_path):
    _check_round_trip(str(tmp_path), load_settings())


@pytest.mark.integration
def test_s3_round_trip_and_window(s3):  # noqa: F811
    settings = load_settings(s3.env)
    s3.client().make_bucket("payload-read")
    _check_round_trip("s3://payload-read/prod/churn", settings)


def test_files_written_before_the_window_are_never_opened(tmp_path):
    settings = load_settings()
    _write(str(tmp_path), settings, [_entry(2, time.time(), "fresh")])
    stale = tmp_path / file_name(datetime.now(timezone.utc) - timedelta(days=2))
    stale.write_bytes(b"not parquet")
    (tmp_path / "notes.txt").write_text("other files in the folder are ignored")
    since = datetime.now(timezone.utc) - timedelta(days=1)
    assert _rows(read_log(str(tmp_path), settings, since=since)).num_rows == 2
    with pytest.raises(PayloadLogError, match=f"cannot read {stale.name}"):
        list(read_log(str(tmp_path), settings))


def test_a_missing_folder_is_an_error_naming_it(tmp_path):
    with pytest.raises(PayloadLogError, match="no such folder"):
        list(read_log(str(tmp_path / "nowhere"), load_settings()))
