"""Ingest: read a Telco-format table, clean what is safe, quarantine what is not, split.

Real exports are messy: the delimiter is ``,`` or ``;``, header case varies, numerics hold
blanks, text or decimal commas, labels come as Yes/No, 1/0 or True/False, customers appear
twice. Each rule below either normalises a value (safe) or quarantines the row with a reason
(unsafe). The run fails, naming the problem, when a required column is absent, more than
``max_bad_share`` of the rows are bad, or a split would get too few rows of a class: never
train silently on garbage.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import logging
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from components import feature_store, schema, storage, synthetic
from components.artifacts import FEATURE_LINEAGE, RunArtifacts
from components.config import ConfigError, Settings
from components.errors import ChurnError

log = logging.getLogger(__name__)

REASON_COLUMN = "quarantine_reason"
ROW_COLUMN = "source_row"  # 1-based data row number in the source file (header excluded)
_BOOL_WORDS = {"yes": 1.0, "no": 0.0, "true": 1.0, "false": 0.0}
_HIST_BINS = 20
# Delimiters a CSV export may use; the one whose header names most schema columns wins.
DELIMITERS = (",", ";", "\t", "|")
_DECIMAL_COMMA = re.compile(r"^\s*[+-]?\d*,\d+\s*$")
# Fewest rows of each class a split may hold: below it the validation threshold and the test
# metrics cannot be computed. Below WARN_CLASS_ROWS they can, but are noisy: the summary says so.
MIN_CLASS_ROWS = 5
WARN_CLASS_ROWS = 30
_CLASS_NAMES = {1: "churn", 0: "no churn"}


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
    # Rows in ``quarantine`` by kind: "invalid" (a bad value), "duplicates" (an exact copy of an
    # earlier row), "duplicate_ids" (an earlier row's id and label with other values) and
    # "label_conflicts" (every row of an id seen with both labels). They sum to len(quarantine).
    counts: dict[str, int]
    dropped_columns: tuple[str, ...]

    @property
    def n_bad(self) -> int:
        """Rows that count against ``max_bad_share``: bad values and contradictory labels."""
        return self.counts["invalid"] + self.counts["label_conflicts"]


def read_table(path: Path) -> pd.DataFrame:
    """Read CSV (everything as text, nothing guessed) or Parquet by suffix.

    A CSV's delimiter is detected (:func:`sniff_delimiter`); in a file not delimited by ``,``
    numeric columns may use a decimal comma (:func:`_convert_decimal_commas`). What was detected is in
    ``frame.attrs["csv"]`` (``{"delimiter": ..., "decimal": ...}``).
    """
    path = Path(path)
    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    if suffix in {".parquet", ".pq"}:
        return pd.read_parquet(path)
    if suffix not in {".csv", ".csv.gz", ".txt"}:
        raise IngestError(f"{path.name}: unsupported file type {suffix!r} (expected .csv or .parquet)")
    opener = gzip.open if suffix == ".csv.gz" else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        header = handle.readline()
    if not header.strip():
        raise IngestError(f"{path.name}: the file is empty")
    delimiter = sniff_delimiter(header, path.name)
    frame = pd.read_csv(
        path, sep=delimiter, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8-sig"
    )
    decimal = "," if delimiter != "," and _convert_decimal_commas(frame) else "."
    frame.attrs["csv"] = {"delimiter": delimiter, "decimal": decimal}
    return frame


def sniff_delimiter(header: str, source: str) -> str:
    """The delimiter of :data:`DELIMITERS` whose split of the header line names the most schema
    columns (``,`` on a tie). Raises :class:`IngestError` when none names any."""

    def known_columns(delimiter: str) -> int:
        names = next(csv.reader([header], delimiter=delimiter), [])
        return sum(schema.header_key(name) in schema.HEADER_KEYS for name in names)

    best = max(DELIMITERS, key=known_columns)
    if known_columns(best) == 0:
        raise IngestError(
            f"{source}: no header names the schema's columns with any of the delimiters "
            f"{', '.join(repr(d) for d in DELIMITERS)} (header: {header.strip()[:120]!r})"
        )
    return best


def _convert_decimal_commas(frame: pd.DataFrame) -> bool:
    """Rewrite the numeric columns' decimal commas ("29,85") as points, in place, when they use
    them and no numeric value holds a point (a file mixing both is left as is: its comma values
    are then quarantined as "not a number", never guessed)."""
    numeric = [c for c in frame.columns if schema.HEADER_KEYS.get(schema.header_key(c)) in schema.NUMERIC]
    values = [frame[c].str for c in numeric]
    if not any(v.match(_DECIMAL_COMMA).any() for v in values) or any(
        v.contains(".", regex=False).any() for v in values
    ):
        return False
    for column in numeric:
        frame[column] = frame[column].str.replace(",", ".", regex=False)
    return True


def _match_headers(frame: pd.DataFrame) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Rename headers to the schema's spelling; drop and report columns the schema lacks.

    The result shares the caller's column data (a shallow copy, renamed, on a fresh RangeIndex):
    cleaning reads the raw columns and never writes to them.
    """
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
    kept = frame.iloc[:, [i for i, col in enumerate(frame.columns) if col in renames]] if dropped else frame
    matched = kept.copy(deep=False)
    matched.columns = [renames[col] for col in kept.columns]
    matched.index = pd.RangeIndex(len(matched))
    return matched, tuple(dropped)


def _as_text(values: pd.Series) -> np.ndarray:
    """Values as stripped text, missing as "". Works on the few distinct values, not every row."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    text = np.append(np.asarray([str(u).strip() for u in uniques], dtype=object), "")
    return text[codes]


def _ids_as_text(values: pd.Series) -> np.ndarray:
    """:func:`_as_text` for a column of (mostly) distinct values, such as ids: row by row, without
    the hash table that only pays off on repeated values (~2x faster on unique ids)."""
    raw = values.to_numpy(dtype=object)
    text = np.asarray([str(v).strip() for v in raw], dtype=object)
    text[pd.isna(raw)] = ""
    return text


def _text_lookup(text: np.ndarray, mapping: dict[str, float]) -> np.ndarray:
    """``mapping[t.lower()]`` for each text, NaN where absent: looked up once per distinct text."""
    codes, uniques = pd.factorize(text)
    found = np.asarray([mapping.get(u.lower(), np.nan) for u in uniques], dtype=np.float64)
    return found[codes]


@dataclass(frozen=True)
class _Categorical:
    """A cleaned categorical column as codes into its few cleaned values (None: missing or
    unknown): rows compare on their distinct values, not row by row."""

    codes: np.ndarray  # -1 (pandas' missing) indexes the trailing None of ``values``
    values: np.ndarray

    def rows(self) -> np.ndarray:
        return self.values[self.codes]

    def equals(self, value: str | None) -> np.ndarray:
        if value is None:
            return np.equal(self.values, None)[self.codes]
        return (self.values == value)[self.codes]


def _clean_categorical(
    values: pd.Series, feature: schema.Feature
) -> tuple[_Categorical, np.ndarray, np.ndarray]:
    """Canonical categories by :func:`schema.normalise_category`, decided once per distinct value:
    the column, each row's reason ("" if none) and which rows have one."""
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
    reasons_arr = np.asarray(reasons, dtype=object)
    column = _Categorical(codes, np.asarray(cleaned, dtype=object))
    return column, reasons_arr[codes], (reasons_arr != "")[codes]


def _exact_numbers(values: pd.Series) -> bool:
    """True for float64 / integer columns (typed Parquet): their text form would parse back to the
    same float64, so cleaning can skip the text round trip. float32, bool, nullable and object
    columns take the text path (float32's text is not its float64 value)."""
    return values.dtype == np.float64 or (values.dtype.kind in "iu" and isinstance(values.dtype, np.dtype))


def _is_blank(values: pd.Series) -> np.ndarray:
    """Missing or whitespace-only, as :func:`_as_text` sees it (``""``)."""
    return values.isna().to_numpy() if _exact_numbers(values) else _as_text(values) == ""


def _clean_numeric(values: pd.Series, feature: schema.Feature) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The column as float64, each row's reason ("" if none) and which rows have one. Each rule
    writes its reason only where it applies: a clean column costs no string work."""
    reasons = np.full(len(values), "", dtype=object)
    bad = np.zeros(len(values), dtype=bool)

    def flag(rows: np.ndarray, reason) -> None:
        if rows.any():
            reasons[rows] = reason(rows) if callable(reason) else reason
            bad[rows] = True

    if _exact_numbers(values):  # same result as the text path, ~10x faster on typed Parquet
        number = values.to_numpy(dtype=np.float64, copy=True)  # TotalCharges' fix writes to it
        flag(np.isnan(number), f"{feature.name} is missing")
    else:
        text = _as_text(values)
        number = pd.to_numeric(pd.Series(text, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
        if feature.integer and feature.minimum == 0 and feature.maximum == 1:
            words = np.isnan(number)
            number[words] = _text_lookup(text[words], _BOOL_WORDS)  # "Yes"/"No" flags
        blank = text == ""
        flag(blank, f"{feature.name} is missing")
        flag(
            np.isnan(number) & ~blank,
            lambda rows: [f"{feature.name} is not a number: '{t}'" for t in text[rows]],
        )
    shown = pd.Series(number, dtype=np.float64)  # pandas' float text ("-5.0") in the reasons

    finite = np.isfinite(number)
    flag(~finite & ~np.isnan(number), f"{feature.name} is not finite")
    out_of_range = finite & ((number < feature.minimum) | (number > feature.maximum))
    flag(
        out_of_range,
        lambda rows: (
            f"{feature.name}="
            + shown[rows].astype(str)
            + f" outside [{feature.minimum:g}, {feature.maximum:g}]"
        ).to_numpy(),
    )
    if feature.integer:
        fractional = finite & ~out_of_range & (number != np.round(number))
        flag(
            fractional,
            lambda rows: (f"{feature.name}=" + shown[rows].astype(str) + " is not a whole number").to_numpy(),
        )
    return number, reasons, bad


def _consistency_reasons(columns: dict[str, _Categorical]) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose service columns contradict each other (e.g. a security add-on without internet):
    each row's reason ("" if none) and which rows have one."""
    rows = len(next(iter(columns.values())).codes)
    reasons = np.full(rows, "", dtype=object)
    flagged = np.zeros(rows, dtype=bool)

    def contradicts(col: str, says_none_value: str, parent: str, parent_none: str) -> None:
        values, parents = columns[col], columns[parent]
        known = ~values.equals(None) & ~parents.equals(None)
        bad = known & (values.equals(says_none_value) != parents.equals(parent_none))
        if bad.any():
            reasons[bad] = [f"{col}='{v}' contradicts {parent}" for v in values.values[values.codes[bad]]]
            flagged[bad] = True

    for col in schema.NO_INTERNET_COLUMNS:
        contradicts(col, "No internet service", "InternetService", "No")
    contradicts("MultipleLines", "No phone service", "PhoneService", "No")
    return reasons, flagged


def clean(raw: pd.DataFrame) -> Cleaned:
    """Normalise a raw frame to the schema and split off bad rows with one reason string each."""
    frame, dropped = _match_headers(raw)
    frame.insert(0, ROW_COLUMN, np.arange(1, len(frame) + 1))
    columns: dict[str, np.ndarray] = {}  # cleaned, in the output's column order
    reasons: dict[str, np.ndarray] = {}
    flagged: dict[str, np.ndarray] = {}

    ids = _ids_as_text(frame[schema.ID_COLUMN])
    columns[schema.ID_COLUMN] = ids
    flagged[schema.ID_COLUMN] = ids == ""
    reasons[schema.ID_COLUMN] = np.where(
        flagged[schema.ID_COLUMN], f"{schema.ID_COLUMN} is missing", ""
    ).astype(object)

    categorical: dict[str, _Categorical] = {}
    for feature in schema.FEATURES:
        if feature.is_categorical:
            categorical[feature.name], reasons[feature.name], flagged[feature.name] = _clean_categorical(
                frame[feature.name], feature
            )
            columns[feature.name] = categorical[feature.name].rows()
        else:
            columns[feature.name], reasons[feature.name], flagged[feature.name] = _clean_numeric(
                frame[feature.name], feature
            )

    # The public Telco export leaves TotalCharges blank for customers in their first month.
    blank_total = _is_blank(frame["TotalCharges"]) & (columns["tenure"] == 0)
    columns["TotalCharges"][blank_total] = 0.0
    reasons["TotalCharges"][blank_total] = ""
    flagged["TotalCharges"] &= ~blank_total

    label_text = _as_text(frame[schema.LABEL_COLUMN])
    label = _text_lookup(label_text, schema.LABEL_VALUES)
    flagged[schema.LABEL_COLUMN] = np.isnan(label)
    reasons[schema.LABEL_COLUMN] = np.full(len(frame), "", dtype=object)
    reasons[schema.LABEL_COLUMN][flagged[schema.LABEL_COLUMN]] = [
        f"{schema.LABEL_COLUMN} label '{text}' is not one of yes/no, 1/0, true/false"
        for text in label_text[flagged[schema.LABEL_COLUMN]]
    ]
    columns[schema.LABEL_COLUMN] = label
    truth = (
        pd.to_numeric(frame[schema.TRUTH_COLUMN], errors="coerce") if schema.TRUTH_COLUMN in frame else None
    )
    reasons["consistency"], flagged["consistency"] = _consistency_reasons(categorical)

    bad = np.logical_or.reduce(list(flagged.values()))
    bad_rows = np.flatnonzero(bad)
    reason = pd.Series(
        [
            "; ".join(x for x in row if x)
            for row in zip(*(r[bad_rows] for r in reasons.values()), strict=True)
        ],
        index=bad_rows,
        dtype=object,
    )
    quarantine = frame.iloc[bad_rows].copy()
    quarantine[REASON_COLUMN] = reason

    good = np.flatnonzero(~bad)
    repeats = _repeat_reasons(columns, frame[ROW_COLUMN].to_numpy(), good)
    counts = {"invalid": len(bad_rows)} | {k: int((repeats.kind == k).sum()) for k in _REPEAT_KINDS}
    repeated = frame.loc[repeats.index].copy()
    repeated[REASON_COLUMN] = repeats.reason
    keep = np.setdiff1d(good, repeats.index.to_numpy(dtype=np.int64), assume_unique=True)
    everything = len(keep) == len(frame)  # the usual chunk: no row taken out, nothing to copy
    data = {name: values if everything else values[keep] for name, values in columns.items()}
    data[schema.LABEL_COLUMN] = data[schema.LABEL_COLUMN].astype(np.int64)
    if truth is not None:
        data[schema.TRUTH_COLUMN] = truth.array.take(keep)  # a copy: to_numeric may return the raw column
    return Cleaned(
        data=pd.DataFrame(data, copy=False),
        quarantine=pd.concat([quarantine, repeated]).sort_values(ROW_COLUMN).astype(str),
        n_source=len(frame),
        counts=counts,
        dropped_columns=dropped,
    )


_REPEAT_KINDS = ("duplicates", "duplicate_ids", "label_conflicts")


def _repeat_reasons(
    columns: dict[str, np.ndarray], source_rows: np.ndarray, good: np.ndarray
) -> pd.DataFrame:
    """Valid rows (positions ``good`` of the cleaned ``columns``) to quarantine because their
    customer id was seen before: one row per such row (indexed by position) with its ``kind``
    (of :data:`_REPEAT_KINDS`) and ``reason``.

    An id seen with both labels has no trustworthy label: all its rows go. Otherwise the first
    row of an id is kept; a later exact copy (same cleaned values) is "duplicate of row N", a
    later row with other values "customerID X repeats row N with different values".
    """
    # Only rows whose id occurs more than once can be repeats: work on those few.
    positions = good[pd.Series(columns[schema.ID_COLUMN][good]).duplicated(keep=False).to_numpy()]
    if len(positions) == 0:  # what the rules below give for no rows, without their groupbys
        return pd.DataFrame(
            {"kind": pd.Series(dtype=object), "reason": pd.Series(dtype=object)}, index=positions
        )
    shared = pd.DataFrame(
        {ROW_COLUMN: source_rows[positions], **{c: columns[c][positions] for c in schema.REQUIRED_COLUMNS}},
        index=positions,
    )
    ids = shared[schema.ID_COLUMN]
    conflict = shared.groupby(schema.ID_COLUMN, sort=False)[schema.LABEL_COLUMN].transform("nunique") > 1
    rest = shared[~conflict]
    exact = rest.duplicated(subset=list(schema.REQUIRED_COLUMNS), keep="first")
    first_copy = rest.groupby(list(schema.REQUIRED_COLUMNS), sort=False)[ROW_COLUMN].transform("first")
    distinct = rest[~exact]
    repeat = distinct[schema.ID_COLUMN].duplicated(keep="first")
    first_of_id = distinct.groupby(schema.ID_COLUMN, sort=False)[ROW_COLUMN].transform("first")
    conflict_reason = f"conflicting labels for {schema.ID_COLUMN} " + ids[conflict]
    copy_reason = "duplicate of row " + first_copy[exact].astype(str)
    repeat_reason = (
        f"{schema.ID_COLUMN} " + distinct.loc[repeat, schema.ID_COLUMN]
        + " repeats row " + first_of_id[repeat].astype(str) + " with different values"
    )  # fmt: skip
    parts = [
        ("label_conflicts", conflict_reason),
        ("duplicates", copy_reason),
        ("duplicate_ids", repeat_reason),
    ]
    return pd.concat([pd.DataFrame({"kind": kind, "reason": reason}) for kind, reason in parts])


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


def _split_shares(config: IngestConfig) -> dict[str, float]:
    return {"train": 1.0 - config.test_size - config.valid_size, "valid": config.valid_size,
            "test": config.test_size}  # fmt: skip


def check_class_sizes(labels: pd.Series, config: IngestConfig) -> None:
    """Fail before splitting when a split would get fewer than :data:`MIN_CLASS_ROWS` rows of a
    class (its share of that class's rows, rounded down); the message names the smallest one."""
    counts = labels.value_counts()
    expected = [
        (int(counts.get(value, 0) * share), split_name, name, share, int(counts.get(value, 0)))
        for split_name, share in _split_shares(config).items()
        for value, name in _CLASS_NAMES.items()
    ]
    fewest, split_name, name, share, total = min(expected, key=lambda item: item[0])
    if fewest < MIN_CLASS_ROWS:
        raise IngestError(
            f"too few rows to train and evaluate: the {split_name} split would get {fewest} '{name}' "
            f"rows, below the minimum of {MIN_CLASS_ROWS} per class in each split (it takes {share:.0%} "
            f"of the {total} '{name}' rows among {len(labels)} usable rows); provide more data"
        )


def small_split_warnings(splits: dict[str, pd.DataFrame]) -> list[str]:
    """One line per split and class with fewer than :data:`WARN_CLASS_ROWS` rows."""
    warnings = []
    for split_name, frame in splits.items():
        counts = frame[schema.LABEL_COLUMN].value_counts()
        for value, name in _CLASS_NAMES.items():
            if (n := int(counts.get(value, 0))) < WARN_CLASS_ROWS:
                warnings.append(
                    f"the {split_name} split has only {n} '{name}' rows (fewer than {WARN_CLASS_ROWS}): "
                    "its metrics and threshold are noisy"
                )
    return warnings


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
    """Read a local path, an ``s3://`` object, a ``synthetic://?rows=N&seed=S`` source or a
    ``feast://?labels=URI`` training set (:mod:`components.feature_store`)."""
    if source_uri.startswith(feature_store.SCHEME):  # a training set built by the feature store
        return feature_store.read_feast_source(source_uri, settings)
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

    bad_share = cleaned.n_bad / cleaned.n_source
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
    check_class_sizes(cleaned.data[schema.LABEL_COLUMN], config)
    data_hash = content_hash(cleaned.data)
    train, valid, test = split(cleaned.data, config)
    for frame, path in ((train, paths.train), (valid, paths.valid), (test, paths.test)):
        with storage.atomic_path(path) as tmp:
            frame.to_parquet(tmp, index=False)
    warnings = small_split_warnings({"train": train, "valid": valid, "test": test})
    for warning in warnings:
        log.warning("ingest: %s", warning)

    summary = {
        "source_uri": source_uri,
        "csv": raw.attrs.get("csv"),
        FEATURE_LINEAGE: raw.attrs.get(FEATURE_LINEAGE),  # feature views, versions, as-of range
        "data_hash": data_hash,
        "source_rows": cleaned.n_source,
        "rows": len(cleaned.data),
        "quarantined": len(cleaned.quarantine),
        **cleaned.counts,
        "bad_share": bad_share,
        "dropped_columns": list(cleaned.dropped_columns),
        "splits": {"train": len(train), "valid": len(valid), "test": len(test)},
        "warnings": warnings,
        "config": asdict(config),
    }
    report = {**summary, **profile(cleaned.data)}
    if len(cleaned.quarantine):
        report["quarantine_reasons"] = _top_reasons(cleaned.quarantine, k=20)
    with storage.atomic_path(paths.profile) as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    log.info(
        "ingest: %d usable rows, %d quarantined (%s), hash %s",
        len(cleaned.data), len(cleaned.quarantine),
        ", ".join(f"{n} {kind}" for kind, n in cleaned.counts.items()), data_hash[:12],
    )  # fmt: skip
    return summary
