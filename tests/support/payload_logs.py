"""Synthetic monitoring data: a reference and payload logs written in the real payload-log format.

The "model" here is the generator's own churn process: each row's score is its TRUE churn
probability (``schema.TRUTH_COLUMN``), calibrated by construction, so these tests need no
training. Logs are written by ``serving.payload_log`` itself: small ones through
:class:`~serving.payload_log.PayloadLog` (the server's writer thread), large ones through its
``to_table`` (the same Parquet layout without the queue).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from components import reference, schema
from components.config import load_settings
from components.synthetic import NO_DRIFT, Drift, generate
from serving.payload_log import Entry, PayloadLog, to_table

BUSINESS = {"offer_cost": 50.0, "customer_value": 500.0, "offer_success_rate": 0.3}
THRESHOLD = 0.3
T0 = 1_780_000_000.0  # 2026-05-28: the logs' first request (Unix seconds)
CONTENT = "c" * 64


def labelled(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out[schema.LABEL_COLUMN] = (out[schema.LABEL_COLUMN] == "Yes").astype(int)
    return out


def make_reference(seed: int = 1, rows: int = 10_000) -> reference.Reference:
    frame = labelled(generate(rows, seed=seed))
    return reference.build(
        frame, frame[schema.TRUTH_COLUMN].to_numpy(), THRESHOLD, BUSINESS, "synthetic test"
    )


def entries(
    frame: pd.DataFrame, scores: np.ndarray, per_request: int, t0: float, step_s: float
) -> list[Entry]:
    """One payload-log entry per ``per_request`` rows, as the server builds them (validated feeds);
    each request's id is its first customer's id (one customer per request when ``per_request`` is 1)."""
    columns = {
        f.name: frame[[f.name]].to_numpy(dtype=object if f.is_categorical else np.float32)
        for f in schema.FEATURES
    }
    ids = frame[schema.ID_COLUMN].astype(str).to_numpy()
    scores = np.asarray(scores, dtype=np.float32)
    out = []
    for i, start in enumerate(range(0, len(frame), per_request)):
        end = start + per_request
        feeds = {name: values[start:end] for name, values in columns.items()}
        s = scores[start:end]
        out.append(Entry(t0 + i * step_s, ids[start], "churn", "3", CONTENT, "3", feeds, s, s >= THRESHOLD))
    return out


def write_log(
    target: Path | str,
    frame: pd.DataFrame,
    scores: np.ndarray | None = None,
    *,
    per_request: int = 500,
    t0: float = T0,
    step_s: float = 1.0,
    settings=None,
    flush_rows: int = 20_000,
) -> Path | str:
    """Through the server's own writer (:class:`PayloadLog`) into a folder or an ``s3://`` prefix."""
    scores = frame[schema.TRUTH_COLUMN].to_numpy() if scores is None else scores
    log = PayloadLog(
        str(target), settings or load_settings(), max_queue=100_000, flush_rows=flush_rows, flush_seconds=60
    )
    for entry in entries(frame, scores, per_request, t0, step_s):
        log.log(entry)
    log.close(timeout=120)
    return target


def write_log_fast(
    directory: Path,
    frame: pd.DataFrame,
    scores: np.ndarray | None = None,
    *,
    per_request: int = 10_000,
    rows_per_file: int = 200_000,
    t0: float = T0,
) -> Path:
    """Through ``serving.payload_log.to_table`` (the writer's format), files of ``rows_per_file``."""
    directory.mkdir(parents=True, exist_ok=True)
    scores = frame[schema.TRUTH_COLUMN].to_numpy() if scores is None else scores
    all_entries = entries(frame, scores, per_request, t0, 1.0)
    per_file = max(1, rows_per_file // per_request)
    for i in range(0, len(all_entries), per_file):
        pq.write_table(to_table(all_entries[i : i + per_file]), directory / f"payload-{i:06d}.parquet")
    return directory


def window(seed: int, rows: int, drift: Drift = NO_DRIFT) -> pd.DataFrame:
    return generate(rows, seed=seed, drift=drift)
