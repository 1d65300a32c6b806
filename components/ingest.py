"""Ingest: read a Telco-format table, clean what is safe, quarantine what is not, split.

Real exports are messy: header case varies, numerics hold blanks or text, labels come as
Yes/No, 1/0 or True/False. Each rule below either normalises a value (safe) or quarantines the
row with a reason (unsafe). The run fails, naming the problem, when a required column is absent
or more than ``max_bad_share`` of the rows are bad: never train silently on garbage.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from components import schema, storage, synthetic
from components.artifacts import RunArtifacts
from components.config import ConfigError, Settings
from components.errors import ChurnError

log = logging.getLogger(__name__)

REASON_COLUMN = "quarantine_reason"
ROW_COLUMN = "source_row"  # 1-based data row number in the source file (header excluded)
_BOOL_WORDS = {"yes": 1.0, "no": 0.0, "true": 1.0, "false": 0.0}
_HIST_BINS = 20


class IngestError(ChurnError, ValueError):
    """The source cannot be used for training; the message names the problem."""


@dataclass(frozen=True)
class IngestConfig:
    """How strictly to clean and how to split."""

    max_bad_share: float = 0.05
    test_size: float = 0.2
    valid_size: float = 0.1
    seed: int = 42

    def __post_init__(self):
        if not 0 <= self.max_bad_share < 1:
            raise ConfigError(f"max_bad_share must be in [0, 1), got {self.max_bad_share}")
        if not (0 < self.test_size < 1 and 0 < self.valid_size < 1 and self.test_size + self.valid_size < 1):
            raise ConfigError(
                "test_size and valid_size must be in (0, 1) and sum below 1, "
                f"got {self.test_size} and {self.valid_size}"
            )


@dataclass(frozen=True)
class Cleaned:
    """Result of :func:`clean`: rows fit for training, and the rejected ones with reasons."""

    data: pd.DataFrame
    quarantine: pd.DataFrame
    n_source: int
    n_duplicates: int
    dropped_columns: tuple[str, ...]


def read_table(path: Path) -> pd.DataFrame:
    """Read CSV (everything as text, nothing guessed) or Parquet by suffix."""
    path = Path(path)
    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    if suffix in {".parquet", ".pq"}:
        return pd.read_parquet(path)
    if suffix in {".csv", ".csv.gz", ".txt"}:
        try:
            return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
        except pd.errors.EmptyDataError as exc:
            raise IngestError(f"{path.name}: the file is empty") from exc
    raise IngestError(f"{path.name}: unsupported file type {suffix!r} (expected .csv or .parquet)")


def _match_headers(frame: pd.DataFrame) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Rename headers to the schema's spelling; drop and report columns the schema lacks."""
    renames, dropped, seen = {}, [], {}
    for col in frame.columns:
        canonical = schema.HEADER_KEYS.get(schema.header_key(col))
        if canonical is None and schema.header_key(col) == schema.header_key(schema.TRUTH_COLUMN):
            canonical = schema.TRUTH_COLUMN
        if canonical is None:
            dropped.append(str(col))
            continue
        if canonical in seen:
            raise IngestError(f"columns {seen[canonical]!r} and {col!r} both map to {canonical!r}")
        seen[canonical] = col
        renames[col] = canonical
    if schema.LABEL_COLUMN not in seen:
        raise IngestError(
            f"label column {schema.LABEL_COLUMN!r} is missing (found columns: {list(frame.columns)})"
        )
    missing = [c for c in schema.REQUIRED_COLUMNS if c not in seen]
    if missing:
        raise IngestError(f"required column(s) missing: {', '.join(missing)}")
    return frame[list(renames)].rename(columns=renames), tuple(dropped)


def _as_text(values: pd.Series) -> pd.Series:
    """Values as stripped text, missing as "". Works on the few distinct values, not every row."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    text = np.append(np.asarray([str(u).strip() for u in uniques], dtype=object), "")
    return pd.Series(text[codes], index=values.index, dtype=object)


def _clean_categorical(values: pd.Series, feature: schema.Feature) -> tuple[pd.Series, pd.Series]:
    """Canonical categories by :func:`schema.normalise_category`, decided once per distinct value."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    cleaned, reasons = [], []
    for raw in [*uniques, None]:  # the trailing None stands for missing values (code -1)
        category = schema.normalise_category(feature, raw)
        if category is None:
            cleaned.append(None)
            reasons.append(f"{feature.name} is missing")
        elif category in feature.categories:
            cleaned.append(category)
            reasons.append("")
        else:
            cleaned.append(None)
            reasons.append(f"{feature.name} has unknown category '{category}'")
    cleaned_arr, reasons_arr = np.asarray(cleaned, dtype=object), np.asarray(reasons, dtype=object)
    return (
        pd.Series(cleaned_arr[codes], index=values.index, dtype=object),
        pd.Series(reasons_arr[codes], index=values.index, dtype=object),
    )


def _clean_numeric(values: pd.Series, feature: schema.Feature) -> tuple[pd.Series, pd.Series]:
    text = _as_text(values)
    number = pd.to_numeric(text, errors="coerce").astype(float)
    if feature.integer and feature.minimum == 0 and feature.maximum == 1:
        number = number.fillna(text.str.lower().map(_BOOL_WORDS))  # "Yes"/"No" flags
    reasons = pd.Series("", index=values.index, dtype=object)
    bad_text = number.isna() & (text != "")
    reasons[text == ""] = f"{feature.name} is missing"
    reasons[bad_text] = f"{feature.name} is not a number: '" + text[bad_text].astype(str) + "'"
    finite = np.isfinite(number)
    reasons[~finite & number.notna()] = f"{feature.name} is not finite"
    out_of_range = finite & ((number < feature.minimum) | (number > feature.maximum))
    reasons[out_of_range] = (
        f"{feature.name}=" + number[out_of_range].astype(str) + f" outside [{feature.minimum:g}, "
        f"{feature.maximum:g}]"
    )
    if feature.integer:
        fractional = finite & ~out_of_range & (number != np.round(number))
        reasons[fractional] = f"{feature.name}=" + number[fractional].astype(str) + " is not a whole number"
    return number, reasons


def _consistency_reasons(data: pd.DataFrame) -> pd.Series:
    """Rows whose service columns contradict each other (e.g. a security add-on without internet)."""
    reasons = pd.Series("", index=data.index, dtype=object)
    no_internet = data["InternetService"] == "No"
    for col in schema.NO_INTERNET_COLUMNS:
        says_none = data[col] == "No internet service"
        bad = data[col].notna() & data["InternetService"].notna() & (says_none != no_internet)
        reasons[bad] = f"{col}='" + data.loc[bad, col] + "' contradicts InternetService"
    no_phone = data["PhoneService"] == "No"
    says_none = data["MultipleLines"] == "No phone service"
    bad = data["MultipleLines"].notna() & data["PhoneService"].notna() & (says_none != no_phone)
    reasons[bad] = "MultipleLines='" + data.loc[bad, "MultipleLines"] + "' contradicts PhoneService"
    return reasons


def clean(raw: pd.DataFrame) -> Cleaned:
    """Normalise a raw frame to the schema and split off bad rows with one reason string each."""
    frame, dropped = _match_headers(raw)
    frame = frame.reset_index(drop=True)
    frame.insert(0, ROW_COLUMN, np.arange(1, len(frame) + 1))
    out = pd.DataFrame({ROW_COLUMN: frame[ROW_COLUMN]})
    reasons: dict[str, pd.Series] = {}

    ids = _as_text(frame[schema.ID_COLUMN])
    out[schema.ID_COLUMN] = ids.astype(object)
    reasons[schema.ID_COLUMN] = pd.Series("", index=frame.index, dtype=object)
    reasons[schema.ID_COLUMN][ids == ""] = f"{schema.ID_COLUMN} is missing"

    for feature in schema.FEATURES:
        cleaner = _clean_categorical if feature.is_categorical else _clean_numeric
        out[feature.name], reasons[feature.name] = cleaner(frame[feature.name], feature)

    # The public Telco export leaves TotalCharges blank for customers in their first month.
    blank_total = (_as_text(frame["TotalCharges"]) == "") & (out["tenure"] == 0)
    out.loc[blank_total, "TotalCharges"] = 0.0
    reasons["TotalCharges"][blank_total] = ""

    label_text = _as_text(frame[schema.LABEL_COLUMN])
    out[schema.LABEL_COLUMN] = label_text.str.lower().map(schema.LABEL_VALUES)
    bad_label = out[schema.LABEL_COLUMN].isna()
    reasons[schema.LABEL_COLUMN] = pd.Series("", index=frame.index, dtype=object)
    reasons[schema.LABEL_COLUMN][bad_label] = (
        f"{schema.LABEL_COLUMN} label '" + label_text[bad_label].astype(str)
        + "' is not one of yes/no, 1/0, true/false"
    )  # fmt: skip
    if schema.TRUTH_COLUMN in frame:
        out[schema.TRUTH_COLUMN] = pd.to_numeric(frame[schema.TRUTH_COLUMN], errors="coerce")
    reasons["consistency"] = _consistency_reasons(out)

    table = pd.concat(reasons.values(), axis=1)
    bad = (table != "").any(axis=1)
    reason = pd.Series(
        ["; ".join(x for x in row if x) for row in table[bad].itertuples(index=False)],
        index=table.index[bad],
        dtype=object,
    )
    quarantine = frame[bad].copy()
    quarantine[REASON_COLUMN] = reason

    good = out[~bad]
    duplicated = good[schema.ID_COLUMN].duplicated(keep="first")
    dups = frame.loc[good.index[duplicated]].copy()
    dups[REASON_COLUMN] = f"duplicate {schema.ID_COLUMN} (first occurrence kept)"
    data = good[~duplicated].copy()
    data[schema.LABEL_COLUMN] = data[schema.LABEL_COLUMN].astype(np.int64)
    for name in schema.NUMERIC:
        data[name] = data[name].astype(np.float64)
    return Cleaned(
        data=data.drop(columns=[ROW_COLUMN]).reset_index(drop=True),
        quarantine=pd.concat([quarantine, dups]).sort_values(ROW_COLUMN).astype(str),
        n_source=len(frame),
        n_duplicates=int(duplicated.sum()),
        dropped_columns=dropped,
    )


def content_hash(data: pd.DataFrame) -> str:
    """SHA-256 of the cleaned rows, independent of row order and of the source file's format."""
    ordered = data.sort_values(schema.ID_COLUMN).reset_index(drop=True)
    ordered = ordered[[c for c in schema.REQUIRED_COLUMNS]]
    digest = hashlib.sha256(",".join(ordered.columns).encode())
    digest.update(pd.util.hash_pandas_object(ordered, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def profile(data: pd.DataFrame) -> dict:
    """Counts, class balance and per-feature statistics (the drift reference)."""
    features: dict[str, dict] = {}
    for feature in schema.FEATURES:
        col = data[feature.name]
        if feature.is_categorical:
            counts = col.value_counts()
            features[feature.name] = {
                "kind": "categorical",
                "counts": {c: int(counts.get(c, 0)) for c in feature.categories},
            }
        else:
            values = col.to_numpy(dtype=float)
            hist, edges = np.histogram(values, bins=_HIST_BINS)
            features[feature.name] = {
                "kind": "numeric",
                "mean": float(values.mean()),
                "std": float(values.std()),
                "min": float(values.min()),
                "max": float(values.max()),
                "quantiles": {str(q): float(np.quantile(values, q)) for q in (0.01, 0.25, 0.5, 0.75, 0.99)},
                "histogram": {"edges": edges.tolist(), "counts": hist.tolist()},
            }
    positives = int(data[schema.LABEL_COLUMN].sum())
    return {
        "rows": len(data),
        "class_balance": {"churn": positives, "no_churn": len(data) - positives,
                          "churn_rate": positives / len(data)},
        "features": features,
    }  # fmt: skip


def split(data: pd.DataFrame, config: IngestConfig) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Stratified, seeded train / valid / test split."""
    y = data[schema.LABEL_COLUMN]
    if y.nunique() < 2:
        raise IngestError(
            f"label {schema.LABEL_COLUMN!r} has a single class ({int(y.iloc[0])}): cannot train"
        )
    rest, test = train_test_split(data, test_size=config.test_size, stratify=y, random_state=config.seed)
    valid_share = config.valid_size / (1.0 - config.test_size)
    train, valid = train_test_split(
        rest, test_size=valid_share, stratify=rest[schema.LABEL_COLUMN], random_state=config.seed
    )
    return train.reset_index(drop=True), valid.reset_index(drop=True), test.reset_index(drop=True)


def _top_reasons(quarantine: pd.DataFrame, k: int = 3) -> str:
    reasons = quarantine[REASON_COLUMN].str.split("; ").explode().value_counts().head(k)
    return "; ".join(f"{r} ({n} rows)" for r, n in reasons.items())


def synthetic_uri(rows: int, seed: int) -> str:
    """The source URI that stands for the generator's data (recorded as the data's lineage)."""
    return f"synthetic://?rows={rows}&seed={seed}"


def read_source(source_uri: str, settings: Settings) -> pd.DataFrame:
    """Read a local path, an ``s3://`` object or a ``synthetic://?rows=N&seed=S`` source."""
    if source_uri.startswith("synthetic://"):
        query = {k: v[-1] for k, v in parse_qs(urlparse(source_uri).query).items()}
        try:
            return synthetic.generate(int(query["rows"]), seed=int(query.get("seed", 42)))
        except (KeyError, ValueError) as exc:
            raise IngestError(f"{source_uri}: expected synthetic://?rows=N&seed=S ({exc})") from exc
    with tempfile.TemporaryDirectory() as tmp:
        return read_table(storage.fetch(source_uri, settings, Path(tmp)))


def ingest(source_uri: str, paths: RunArtifacts, config: IngestConfig, settings: Settings) -> dict:
    """Read ``source_uri``, clean, quarantine, hash, profile and split it into ``paths``
    (its ``train``, ``valid``, ``test``, ``quarantine`` and ``profile``).

    Returns a summary with the data hash. Raises :class:`IngestError` (after writing the
    quarantine file, so the bad rows can be inspected) when the data is unusable.
    """
    raw = read_source(source_uri, settings)
    log.info("ingest: read %d rows x %d columns from %s", len(raw), raw.shape[1], source_uri)
    if raw.empty:
        raise IngestError(f"{source_uri}: no data rows")
    cleaned = clean(raw)
    with storage.atomic_path(paths.quarantine) as tmp:
        cleaned.quarantine.to_csv(tmp, index=False)

    n_bad = len(cleaned.quarantine) - cleaned.n_duplicates
    bad_share = n_bad / cleaned.n_source
    if cleaned.data.empty:
        raise IngestError(
            f"{source_uri}: no usable rows, all {cleaned.n_source} were quarantined "
            f"(see {paths.quarantine}); top reasons: {_top_reasons(cleaned.quarantine)}"
        )
    if bad_share > config.max_bad_share:
        raise IngestError(
            f"{source_uri}: {bad_share:.1%} of rows are bad, over the {config.max_bad_share:.1%} limit "
            f"(see {paths.quarantine}); top reasons: {_top_reasons(cleaned.quarantine)}"
        )
    data_hash = content_hash(cleaned.data)
    train, valid, test = split(cleaned.data, config)
    for frame, path in ((train, paths.train), (valid, paths.valid), (test, paths.test)):
        with storage.atomic_path(path) as tmp:
            frame.to_parquet(tmp, index=False)

    summary = {
        "source_uri": source_uri,
        "data_hash": data_hash,
        "source_rows": cleaned.n_source,
        "rows": len(cleaned.data),
        "quarantined": n_bad,
        "duplicates_dropped": cleaned.n_duplicates,
        "bad_share": bad_share,
        "dropped_columns": list(cleaned.dropped_columns),
        "splits": {"train": len(train), "valid": len(valid), "test": len(test)},
        "config": asdict(config),
    }
    report = {**summary, **profile(cleaned.data)}
    if n_bad:
        report["quarantine_reasons"] = _top_reasons(cleaned.quarantine, k=20)
    with storage.atomic_path(paths.profile) as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    log.info(
        "ingest: %d usable rows, %d quarantined, %d duplicates dropped, hash %s",
        len(cleaned.data), n_bad, cleaned.n_duplicates, data_hash[:12],
    )  # fmt: skip
    return summary
