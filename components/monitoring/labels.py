"""Delayed churn labels (CSV or Parquet: customer id, label, label date) and their join to what was served.

Columns are matched case-, space- and underscore-insensitively: the id as ``customerID`` or
``customer_id``, the label as ``Churn`` or ``label`` (any spelling :data:`schema.LABEL_VALUES`
knows: Yes/No, 1/0, True/False...), the date as ``label_date``. A label is joined to the LAST
row served for that customer at or before its label date (the prediction that was live when the
customer churned or stayed); labels with no such row are counted, not guessed.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from components import schema
from components.config import Settings
from components.errors import ChurnError
from components.storage import fetch

ID_NAMES = (schema.ID_COLUMN, "customer_id")
LABEL_NAMES = (schema.LABEL_COLUMN, "label")
DATE_NAMES = ("label_date",)


class LabelsError(ChurnError, ValueError):
    """The labels file is unusable; the message names the file and the column or row."""


@dataclass(frozen=True)
class Labels:
    key: np.ndarray  # object array of customer ids (str)
    label: np.ndarray  # int 0/1
    date: np.ndarray  # int64 µs since the epoch, UTC
    source: str


def _column(frame: pd.DataFrame, names: tuple[str, ...], what: str, source: str) -> str:
    keys = {schema.header_key(c): c for c in frame.columns}
    for name in names:
        if schema.header_key(name) in keys:
            return keys[schema.header_key(name)]
    raise LabelsError(
        f"labels {source}: no {what} column (expected one of {list(names)}; has {list(frame.columns)})"
    )


def read_labels(uri: str, settings: Settings) -> Labels:
    """Read and validate a labels file (local path or ``s3://``)."""
    with tempfile.TemporaryDirectory(prefix="churn-labels-") as tmp:
        path = fetch(uri, settings, Path(tmp))
        try:
            frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str)
        except Exception as exc:  # pandas raises many types for unreadable files
            raise LabelsError(f"labels {uri}: cannot read ({exc})") from exc
    id_col = _column(frame, ID_NAMES, "customer id", uri)
    label_col = _column(frame, LABEL_NAMES, "label", uri)
    date_col = _column(frame, DATE_NAMES, "label date", uri)
    raw = frame[label_col].astype(str).str.strip().str.lower()
    label = raw.map(schema.LABEL_VALUES)
    bad = label.isna()
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise LabelsError(
            f"labels {uri}: {int(bad.sum())} row(s) with an unknown {label_col!r} value, first at row "
            f"{first + 1}: {frame[label_col].iloc[first]!r} (expected Yes/No, 1/0 or True/False)"
        )
    dates = pd.to_datetime(frame[date_col], utc=True, errors="coerce")
    if dates.isna().any():
        first = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise LabelsError(
            f"labels {uri}: {int(dates.isna().sum())} row(s) with no valid {date_col!r}, first at row "
            f"{first + 1}: {frame[date_col].iloc[first]!r}"
        )
    ids = frame[id_col].astype(str).str.strip()
    return Labels(
        key=ids.to_numpy(dtype=object),
        label=label.to_numpy(dtype=np.int64),
        date=(dates.astype("int64") // 1000).to_numpy(),  # ns -> µs
        source=uri,
    )


def join(labels: Labels, served: dict[str, list]) -> pd.DataFrame:
    """Each label with the score of the last row served for its key at or before its date.

    Returns columns ``key, label, label_date, timestamp, score``; unmatched labels are dropped
    (the caller reports how many).
    """
    if not served["key"]:
        return pd.DataFrame(columns=["key", "label", "label_date", "timestamp", "score"])
    rows = pd.DataFrame(
        {
            "key": np.concatenate(served["key"]).astype(str),
            "timestamp": np.concatenate(served["timestamp"]),
            "score": np.concatenate(served["score"]),
        }
    ).sort_values("timestamp", kind="stable")
    wanted = pd.DataFrame({"key": labels.key.astype(str), "label": labels.label, "label_date": labels.date})
    joined = pd.merge_asof(
        wanted.sort_values("label_date", kind="stable"),
        rows,
        left_on="label_date",
        right_on="timestamp",
        by="key",
        direction="backward",
    )
    return joined.dropna(subset=["score"]).reset_index(drop=True)
