"""Read a time window of the payload log, one Parquet row group at a time, into fixed-size counts.

The payload log's format is owned by ``serving/payload_log.py`` (``to_table``: one row per
served row with ``timestamp``, ``request_id``, the model identity columns, every feature,
``churn_probability`` and ``churn``). ``components`` may not import ``serving`` (the import
contract), so the column names this reader needs are restated in :data:`COLUMNS`; the tests
write their logs with serving's own writer, so a rename there fails them.

Memory does not grow with the window: per row group the reader adds to counts in the
reference's bins, a uniform reservoir sample of numerics and scores (for KS), a fine score
histogram per hour (for CBPE over time) and, only when labels are given, the (key, time, score)
of rows whose key has a label. Row groups entirely outside the window are skipped from the
footer statistics without reading them.
"""

from __future__ import annotations

import logging
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from components import reference as ref_format
from components import schema
from components.config import Settings
from components.errors import ChurnError
from components.monitoring import cbpe
from components.reference import Reference
from components.storage import is_s3, parse_s3, s3_client, s3_errors

log = logging.getLogger(__name__)

TIMESTAMP, REQUEST_ID, SCORE, DECISION = "timestamp", "request_id", "churn_probability", "churn"
VERSION_COLUMNS = ("model_name", "model_version", "content_sha256", "registry_version")
COLUMNS = (TIMESTAMP, REQUEST_ID, *VERSION_COLUMNS, *schema.FEATURE_NAMES, SCORE, DECISION)
# String columns read dictionary-encoded (as the writer stored them): no per-row Python strings,
# and category counts run over the few distinct values (3x faster than plain strings, measured).
DICTIONARY_COLUMNS = (REQUEST_ID, *VERSION_COLUMNS, *schema.CATEGORICAL)
HOUR_US = 3600 * 1_000_000
DEFAULT_SAMPLE = 10_000


class PayloadLogError(ChurnError, ValueError):
    """The payload log cannot be read or is not in the payload-log format; names file and column."""


def to_micros(when: datetime | None) -> int | None:
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp() * 1_000_000)


@dataclass
class NumericCounts:
    counts: np.ndarray
    missing: int = 0


@dataclass
class CategoricalCounts:
    counts: np.ndarray  # per schema category, then one "unknown" slot
    unknown_values: Counter = field(default_factory=Counter)


@dataclass
class WindowCounts:
    """Everything the monitor computes from, merged over the row groups of a window."""

    rows: int
    numeric: dict[str, NumericCounts]
    categorical: dict[str, CategoricalCounts]
    score_counts: np.ndarray  # in the reference's score deciles
    score_histogram: np.ndarray  # reference.SCORE_HISTOGRAM_BINS bins, for plots
    cbpe_counts: np.ndarray  # cbpe.BINS
    cbpe_sums: np.ndarray
    hourly: dict[int, tuple[np.ndarray, np.ndarray]]  # hour (µs // HOUR_US) -> (counts, sums)
    positives: int  # rows the server decided "churn" (its threshold)
    versions: Counter  # (model_version, registry_version, content_sha256) -> rows
    first: int | None  # µs since the epoch
    last: int | None
    sample: dict[str, np.ndarray]  # numeric features and SCORE: uniform reservoir of the window
    labelled: dict[str, list] | None  # key, timestamp, score of rows whose key has a label
    files: int = 0
    row_groups: int = 0
    skipped_row_groups: int = 0


class Accumulator:
    """Adds row groups (pyarrow tables in the payload-log format) to :class:`WindowCounts`."""

    def __init__(
        self,
        reference: Reference,
        sample_size: int = DEFAULT_SAMPLE,
        seed: int = 0,
        label_keys: pa.Array | None = None,
        key_column: str = REQUEST_ID,
    ):
        self.reference = reference
        self.sample_size = sample_size
        self.rng = np.random.default_rng(seed)
        self.label_keys = label_keys
        self.key_column = key_column
        self._sample_keys = np.empty(0)
        sampled = (*schema.NUMERIC, SCORE)
        self.counts = WindowCounts(
            rows=0,
            numeric={
                n: NumericCounts(np.zeros(len(r.cuts) + 1, np.int64)) for n, r in reference.numeric.items()
            },
            categorical={
                n: CategoricalCounts(np.zeros(len(r.categories) + 1, np.int64))
                for n, r in reference.categorical.items()
            },
            score_counts=np.zeros(len(reference.score.cuts) + 1, np.int64),
            score_histogram=np.zeros(ref_format.SCORE_HISTOGRAM_BINS, np.int64),
            cbpe_counts=np.zeros(cbpe.BINS),
            cbpe_sums=np.zeros(cbpe.BINS),
            hourly={},
            positives=0,
            versions=Counter(),
            first=None,
            last=None,
            sample={n: np.empty(0) for n in sampled},
            labelled={"key": [], "timestamp": [], "score": []} if label_keys is not None else None,
        )

    def add(self, table: pa.Table) -> None:
        n = table.num_rows
        if n == 0:
            return
        c = self.counts
        c.rows += n
        ts = table[TIMESTAMP].cast(pa.int64()).to_numpy()
        c.first = int(ts.min()) if c.first is None else min(c.first, int(ts.min()))
        c.last = int(ts.max()) if c.last is None else max(c.last, int(ts.max()))
        self._versions(table)
        values: dict[str, np.ndarray] = {}
        for name, counts in c.numeric.items():
            v = table[name].to_numpy(zero_copy_only=False).astype(np.float64)
            finite = np.isfinite(v)
            counts.missing += int(n - finite.sum())
            counts.counts += ref_format.bin_counts(self.reference.numeric[name].cuts, v[finite])
            values[name] = v
        for name, counts in c.categorical.items():
            self._categorical(name, counts, table[name])
        scores = table[SCORE].to_numpy(zero_copy_only=False).astype(np.float64)
        values[SCORE] = scores
        c.score_counts += ref_format.bin_counts(self.reference.score.cuts, scores)
        c.score_histogram += ref_format.score_histogram(scores)
        hist_counts, hist_sums = cbpe.histogram(scores)
        c.cbpe_counts += hist_counts
        c.cbpe_sums += hist_sums
        hours = ts // HOUR_US
        distinct = np.unique(hours)
        for hour in distinct:
            hc, hs = cbpe.histogram(scores[hours == hour]) if len(distinct) > 1 else (hist_counts, hist_sums)
            old = c.hourly.get(int(hour))
            c.hourly[int(hour)] = (hc, hs) if old is None else (old[0] + hc, old[1] + hs)
        c.positives += int(pc.sum(table[DECISION].cast(pa.int64())).as_py() or 0)
        self._reservoir(values, n)
        if c.labelled is not None:
            self._labelled(table, ts, scores)

    def _versions(self, table: pa.Table) -> None:
        grouped = table.group_by(["model_version", "registry_version", "content_sha256"]).aggregate(
            [("model_version", "count")]
        )
        for row in grouped.to_pylist():
            key = (row["model_version"], row["registry_version"], row["content_sha256"])
            self.counts.versions[key] += row["model_version_count"]

    def _categorical(self, name: str, counts: CategoricalCounts, column: pa.ChunkedArray) -> None:
        feature = schema.BY_NAME[name]
        index = {cat: i for i, cat in enumerate(feature.categories)}
        for value, count in _distinct_counts(column):
            normalised = schema.normalise_category(feature, value)
            slot = index.get(normalised, len(feature.categories))
            counts.counts[slot] += count
            if slot == len(feature.categories):
                counts.unknown_values[str(value)] += count

    def _reservoir(self, values: dict[str, np.ndarray], n: int) -> None:
        """Keep the rows with the smallest uniform keys: a uniform sample without replacement."""
        keys = np.concatenate([self._sample_keys, self.rng.random(n)])
        merged = {k: np.concatenate([self.counts.sample[k], v]) for k, v in values.items()}
        if len(keys) > self.sample_size:
            keep = np.argpartition(keys, self.sample_size)[: self.sample_size]
            keys = keys[keep]
            merged = {k: v[keep] for k, v in merged.items()}
        self._sample_keys = keys
        self.counts.sample = merged

    def _labelled(self, table: pa.Table, ts: np.ndarray, scores: np.ndarray) -> None:
        if self.key_column not in table.column_names:
            raise PayloadLogError(f"payload log has no {self.key_column!r} column to join labels on")
        keys = table[self.key_column].cast(pa.string())
        mask = pc.is_in(keys, value_set=self.label_keys).to_numpy(zero_copy_only=False)
        if mask.any():
            self.counts.labelled["key"].append(
                np.asarray(keys.filter(pa.array(mask)).to_pylist(), dtype=object)
            )
            self.counts.labelled["timestamp"].append(ts[mask])
            self.counts.labelled["score"].append(scores[mask])


def _distinct_counts(column: pa.ChunkedArray) -> Iterator[tuple[object, int]]:
    """``(value, rows)`` per distinct value: a bincount of dictionary indices, else Arrow's value_counts."""
    for chunk in column.chunks:
        if pa.types.is_dictionary(chunk.type) and not chunk.null_count:
            counts = np.bincount(chunk.indices.to_numpy(), minlength=len(chunk.dictionary))
            yield from ((v, int(n)) for v, n in zip(chunk.dictionary.to_pylist(), counts, strict=True) if n)
        else:
            yield from ((item["values"], item["counts"]) for item in pc.value_counts(chunk).to_pylist())


@contextmanager
def _local_files(uri: str, settings: Settings) -> Iterator[Iterator[tuple[str, Callable[[], Path]]]]:
    """``(name, fetch)`` per Parquet file of the log, in name order; ``fetch`` gives a local path
    (an S3 object is downloaded into a scratch folder, one at a time, and deleted after use)."""
    if not is_s3(uri):
        root = Path(uri).expanduser()
        if not root.exists():
            raise PayloadLogError(f"payload log {uri}: no such folder or file")
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*.parquet") if p.is_file())
        yield ((str(p), lambda p=p: p) for p in files)
        return
    location = parse_s3(uri)
    with s3_errors(uri, settings):
        client = s3_client(settings)
        prefix = location.key.rstrip("/") + "/" if location.key else ""
        names = sorted(
            o.object_name
            for o in client.list_objects(location.bucket, prefix=prefix, recursive=True)
            if o.object_name.endswith(".parquet")
        )
    with tempfile.TemporaryDirectory(prefix="churn-monitor-") as scratch:

        def fetch(name: str) -> Path:
            for old in Path(scratch).iterdir():
                old.unlink()
            dest = Path(scratch) / Path(name).name
            with s3_errors(f"s3://{location.bucket}/{name}", settings):
                client.fget_object(location.bucket, name, str(dest))
            return dest

        yield ((f"s3://{location.bucket}/{n}", lambda n=n: fetch(n)) for n in names)


def open_log_file(path: Path, name: str) -> pq.ParquetFile:
    """A payload-log Parquet file opened for row-group reads, string columns as dictionaries."""
    try:
        return pq.ParquetFile(path, read_dictionary=list(DICTIONARY_COLUMNS))
    except (pa.ArrowInvalid, OSError) as exc:
        raise PayloadLogError(f"payload log file {name}: not readable Parquet: {exc}") from exc


def _row_group_range(meta: pq.FileMetaData, group: int, column: int) -> tuple[int, int] | None:
    stats = meta.row_group(group).column(column).statistics
    if stats is None or not stats.has_min_max:
        return None
    lo, hi = stats.min, stats.max
    return to_micros(lo) if isinstance(lo, datetime) else int(lo), to_micros(hi) if isinstance(
        hi, datetime
    ) else int(hi)


def read_window(
    uri: str,
    settings: Settings,
    accumulator: Accumulator,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> WindowCounts:
    """Stream the log at ``uri`` (folder, file or ``s3://`` prefix) rows with ``since <= t < until``."""
    lo, hi = to_micros(since), to_micros(until)
    counts = accumulator.counts
    with _local_files(uri, settings) as files:
        for name, fetch in files:
            path = fetch()
            handle = open_log_file(path, name)
            missing = [c for c in COLUMNS if c not in handle.schema_arrow.names]
            if missing:
                raise PayloadLogError(
                    f"payload log file {name}: missing column(s) {missing} (not a payload log?)"
                )
            wanted = list(COLUMNS)
            if counts.labelled is not None and accumulator.key_column not in wanted:
                wanted.append(accumulator.key_column)
            ts_index = handle.schema_arrow.names.index(TIMESTAMP)
            counts.files += 1
            for group in range(handle.num_row_groups):
                span = _row_group_range(handle.metadata, group, ts_index)
                if span and ((lo is not None and span[1] < lo) or (hi is not None and span[0] >= hi)):
                    counts.skipped_row_groups += 1
                    continue
                table = handle.read_row_group(group, columns=wanted)
                if lo is not None or hi is not None:
                    ts = table[TIMESTAMP].cast(pa.int64())
                    keep = pc.and_(
                        pc.greater_equal(ts, lo) if lo is not None else pa.scalar(True),
                        pc.less(ts, hi) if hi is not None else pa.scalar(True),
                    )
                    table = table.filter(keep)
                accumulator.add(table)
                counts.row_groups += 1
            if progress:
                progress(f"monitor: {counts.files} file(s), {counts.rows:,} rows in the window so far")
    return counts


def served_versions(
    uri: str, settings: Settings, since: datetime | None = None, until: datetime | None = None
) -> Counter:
    """Rows per ``(model_version, registry_version, content_sha256)`` in the window (reads only
    those columns, a row group at a time)."""
    lo, hi = to_micros(since), to_micros(until)
    found: Counter = Counter()
    names = [TIMESTAMP, *VERSION_COLUMNS[1:]]
    with _local_files(uri, settings) as files:
        for name, fetch in files:
            handle = open_log_file(fetch(), name)
            missing = [c for c in names if c not in handle.schema_arrow.names]
            if missing:
                raise PayloadLogError(
                    f"payload log file {name}: missing column(s) {missing} (not a payload log?)"
                )
            for group in range(handle.num_row_groups):
                table = handle.read_row_group(group, columns=names)
                ts = table[TIMESTAMP].cast(pa.int64()).to_numpy()
                mask = np.ones(len(ts), bool)
                if lo is not None:
                    mask &= ts >= lo
                if hi is not None:
                    mask &= ts < hi
                kept = table.filter(pa.array(mask))
                for row in (
                    kept.group_by(list(VERSION_COLUMNS[1:]))
                    .aggregate([("model_version", "count")])
                    .to_pylist()
                ):
                    key = (row["model_version"], row["registry_version"], row["content_sha256"])
                    found[key] += row["model_version_count"]
    return found
