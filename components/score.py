"""Batch scoring: a customer table in, a ranked list out (``churn score``, the churn-scoring pipeline).

A table (CSV or Parquet) is read in chunks -- Parquet by row group, at most ``chunk_rows`` rows
at a time, CSV by ``chunk_rows`` lines -- so memory does not grow with the file. Each chunk is
cleaned by ingest's own rules (:func:`components.ingest.clean`: header matching, the schema's one
category normalisation, numeric checks, consistency checks, repeated ids *within the chunk*);
no label is needed. Rows that fail go to a quarantine file with their reasons and are never
scored. The rest are scored by the bundle's ONNX graph on ONNX Runtime, exactly as the model
server scores them, and optionally explained (:mod:`components.reasons`).

Scoring is two passes so the output can be sorted by rank without holding the rows:

1. :func:`score_part` writes the scored rows of one input (or one shard's row groups) to an
   Arrow IPC *part* file, in source order; :func:`score_parts` runs it over a Parquet file's
   row-group ranges in forked processes at once when there are no reason codes (cleaning is
   Python that holds the GIL: threads cannot spread it over cores);
2. :func:`write_ranked` ranks every row of the parts by churn probability (1 = most likely to
   churn; ties in source order), spills the rows to on-disk rank buckets and writes the buckets in
   rank order to a temporary file renamed into place only when complete (no partial output on a
   crash).

A sharded run (the ``churn-scoring`` pipeline) runs pass 1 per shard and pass 2 once on the
parts in shard order, which is why its output is byte-identical to a single-shard run.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from components import bundle, forked, schema, storage
from components.artifacts import RunArtifacts
from components.bundle import MODEL_FILE, BundleMetadata
from components.config import ConfigError, Settings
from components.evaluate import BusinessConfig
from components.export import onnx_predict_proba
from components.ingest import REASON_COLUMN, ROW_COLUMN, IngestError, clean, sniff_delimiter
from components.reasons import top_reasons
from components.score_report import PreviousList, ReportBuilder, find_previous, write_report
from components.scored_output import (
    CONTENT_SHA,
    DECISION,
    PROBABILITY,
    PROFIT,
    RANK,
    REGISTRY_VERSION,
    SEGMENT_COLUMNS,
    ScoreError,
    is_parquet,
    quarantine_uri,
    report_uri,
)

log = logging.getLogger(__name__)

FORMATS = ("parquet", "csv")
# ingest.clean needs a label column; scoring has none. Every row gets this placeholder, which clean
# accepts and this module drops again: it decides nothing (no label is read or written).
_PLACEHOLDER_LABEL = "No"
# Rows per ONNX Runtime run (the unit handed to a worker thread): ~50 ms of scoring, so a run's
# fixed cost (~50 µs) is lost in it.
_SLICE_ROWS = 8192
# Pass 2 spills rows into at most this many rank buckets (open files at once).
MAX_BUCKETS = 256
_RANK_KEY = "__rank"
# A part file's column of id hashes (pass 1 computes them in its processes; pass 2 finds repeated
# ids with them): never in the output.
_ID_HASH = "__id_hash"


@dataclass(frozen=True)
class ScoreConfig:
    """How the table is read, how many bad rows are tolerated, how long the report's call list is."""

    chunk_rows: int = 100_000
    max_bad_share: float = 0.05
    output_format: str = "parquet"
    top_k: int = 1000  # the call list the report prices and compares with the previous run's
    # CPUs to use (0: every CPU this process may run on): processes over a Parquet file's row
    # groups (score_parts), else concurrent ONNX Runtime runs over a chunk's rows. A shard's pod
    # has one CPU and passes 1.
    workers: int = 0

    def __post_init__(self):
        if self.chunk_rows < 1:
            raise ConfigError(f"chunk_rows must be >= 1, got {self.chunk_rows}")
        if self.workers < 0:
            raise ConfigError(f"workers must be >= 0 (0: one per CPU), got {self.workers}")
        if not 0 <= self.max_bad_share < 1:
            raise ConfigError(f"max_bad_share must be in [0, 1), got {self.max_bad_share}")
        if self.output_format not in FORMATS:
            raise ConfigError(
                f"output_format must be one of {', '.join(FORMATS)}, got {self.output_format!r}"
            )
        if self.top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {self.top_k}")


@dataclass(frozen=True)
class ScoringModel:
    """A local bundle and what scoring needs beside its graph.

    ``business_source`` says where the business inputs were read (the run folder's metrics.json
    or the MLflow run's params); ``explain`` turns cleaned rows into reason columns (None: no
    reason codes).
    """

    bundle_dir: Path
    metadata: BundleMetadata
    business: BusinessConfig
    business_source: str
    explain: Callable[[pd.DataFrame], pd.DataFrame] | None = None


@dataclass(frozen=True)
class PartSummary:
    """What :func:`score_part` did: rows read, scored and quarantined (JSON-able via :meth:`to_dict`)."""

    rows: int
    scored: int
    quarantined: int

    def to_dict(self) -> dict:
        return {"rows": self.rows, "scored": self.scored, "quarantined": self.quarantined}

    @classmethod
    def total(cls, summaries: Sequence[PartSummary]) -> PartSummary:
        """The counts of several parts added up."""
        return cls(*(sum(getattr(s, name) for s in summaries) for name in ("rows", "scored", "quarantined")))


def business_from_evaluation(evaluation: dict, source: str) -> BusinessConfig:
    """The business inputs an evaluation (``metrics.json``) was computed with; names ``source`` if absent."""
    try:
        return BusinessConfig(**evaluation["business"])
    except (KeyError, TypeError) as exc:
        raise ScoreError(
            f"{source}: no business inputs (a 'business' record of {BusinessConfig.__name__})"
        ) from exc


def scoring_model(
    bundle_dir: Path, business: BusinessConfig, business_source: str, sklearn_model=None
) -> ScoringModel:
    """A :class:`ScoringModel` for a verified local bundle; reasons from ``sklearn_model`` when given."""
    explain = None if sklearn_model is None else partial(top_reasons, sklearn_model)
    return ScoringModel(Path(bundle_dir), bundle.verify(bundle_dir), business, business_source, explain)


def run_folder_model(bundle_dir: Path, *, with_reasons: bool) -> ScoringModel | None:
    """The model of a bundle that sits in a run folder (``<run>/model``), else None.

    Business inputs come from the run's ``metrics.json``; reason codes from its fitted Pipeline
    ``sklearn/model.joblib`` (:class:`~components.artifacts.RunArtifacts` layout).
    """
    bundle_dir = Path(bundle_dir).resolve()
    run = RunArtifacts.in_dir(bundle_dir.parent)
    if run.bundle != bundle_dir or not run.evaluation.is_file():
        return None
    business = business_from_evaluation(json.loads(run.evaluation.read_text()), str(run.evaluation))
    sklearn_model = None
    if with_reasons:
        if not run.model.is_file():
            raise ScoreError(f"reason codes need the fitted Pipeline {run.model}: it is missing")
        sklearn_model = joblib.load(run.model)
    return scoring_model(bundle_dir, business, str(run.evaluation), sklearn_model)


def _csv_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        header = handle.readline()
    if not header.strip():
        raise ScoreError(f"{path.name}: the file is empty")
    reader = pd.read_csv(
        path, sep=sniff_delimiter(header, path.name), dtype=str, keep_default_na=False,
        skipinitialspace=True, encoding="utf-8-sig", chunksize=chunk_rows,
    )  # fmt: skip
    with reader:
        yield from reader


def row_group_rows(path: Path) -> list[int]:
    """Rows in each row group of a Parquet file (the shard planner and row numbering use it)."""
    metadata = pq.ParquetFile(path).metadata
    return [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]


def read_chunks(
    path: Path, chunk_rows: int, row_groups: Sequence[int] | None = None
) -> Iterator[pd.DataFrame]:
    """The table at ``path`` in chunks of at most ``chunk_rows`` rows, all values as read.

    Parquet is read row group by row group (``row_groups``: only those, in that order), so a
    chunk never spans two row groups and the chunks of a shard are the same as in a whole-file
    run. CSV is read as text, its delimiter detected as ingest does.
    """
    path = Path(path)
    if is_parquet(path):
        names = pq.read_schema(path).names
        categorical = [n for n in names if schema.HEADER_KEYS.get(schema.header_key(n)) in schema.CATEGORICAL]
        reader = pq.ParquetFile(path, read_dictionary=categorical)
        for group in range(reader.num_row_groups) if row_groups is None else row_groups:
            for batch in reader.iter_batches(batch_size=chunk_rows, row_groups=[group]):
                yield _to_pandas(batch)
    elif path.suffix in {".csv", ".txt"}:
        if row_groups is not None:
            raise ScoreError(f"{path.name}: row-group shards need a Parquet file")
        yield from _csv_chunks(path, chunk_rows)
    else:
        raise ScoreError(f"{path.name}: unsupported file type {path.suffix!r} (expected .csv or .parquet)")


def _to_pandas(batch: pa.RecordBatch) -> pd.DataFrame:
    """``batch.to_pandas()``, but a dictionary column becomes an object column of its few distinct
    strings (one shared object per value, None for null) instead of a Categorical or a new string
    object per row: the same values for cleaning at a fraction of the memory and time."""
    if len(set(batch.schema.names)) < batch.num_columns:
        return batch.to_pandas()  # repeated headers: kept for cleaning to refuse by name
    columns = {}
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if pa.types.is_dictionary(column.type):
            values = np.append(np.asarray(column.dictionary.to_pylist(), dtype=object), None)
            columns[name] = values[pc.fill_null(column.indices, len(column.dictionary)).to_numpy()]
        else:
            columns[name] = column.to_pandas()
    return pd.DataFrame(columns, copy=False)  # arrays made here: consolidating them would copy each


def clean_chunk(raw: pd.DataFrame, first_row: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ingest's cleaning of one chunk without a label: ``(valid rows, quarantined rows)``.

    Quarantined rows keep their raw values, ``source_row`` (1-based data row of the whole input,
    ``first_row`` being this chunk's first) and ``quarantine_reason``. A missing column raises
    :class:`ScoreError` naming it.
    """
    label_key = schema.header_key(schema.LABEL_COLUMN)
    labels = [i for i, c in enumerate(raw.columns) if schema.header_key(c) == label_key]
    unlabelled = raw.iloc[:, [i for i in range(raw.shape[1]) if i not in labels]] if labels else raw
    placeholder = unlabelled.copy(deep=False)  # raw's columns, not copied; the label is its own
    placeholder[schema.LABEL_COLUMN] = _PLACEHOLDER_LABEL
    try:
        cleaned = clean(placeholder)
    except IngestError as exc:
        raise ScoreError(str(exc)) from exc
    quarantine = cleaned.quarantine.drop(columns=[schema.LABEL_COLUMN])
    quarantine[ROW_COLUMN] = quarantine[ROW_COLUMN].astype(int) + (first_row - 1)
    data = cleaned.data
    del data[schema.LABEL_COLUMN]
    return data, quarantine


def scoring_session(model_file: Path):
    """An ONNX Runtime session on one thread. A run scales over cores by concurrent runs of this
    session on slices of a chunk (:func:`predict`), a pipeline by shards: ORT's own intra-op
    threads measured 2x slower on 2 shared cores."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])


def cpu_workers(config: ScoreConfig) -> int:
    """``config.workers``, or the CPUs this process may run on when it is 0."""
    return config.workers or len(os.sched_getaffinity(0))


def predict(sess, data: pd.DataFrame, pool: ThreadPoolExecutor | None, workers: int) -> np.ndarray:
    """P(churn) of ``data``, scored in slices of :data:`_SLICE_ROWS` rows, run concurrently on
    ``sess`` by ``workers`` threads of ``pool`` (ORT's run releases the GIL; a session may be run
    from several threads). The slices do not depend on ``workers``: ORT's vectorised kernels can
    round a row's score differently (1 float32 ulp) at another position in a batch, and the output
    must be the same bytes for any number of workers or shards."""
    slices = [data.iloc[start : start + _SLICE_ROWS] for start in range(0, len(data), _SLICE_ROWS)]
    if pool is None or workers < 2 or len(slices) < 2:
        scores = [onnx_predict_proba(sess, rows) for rows in slices]
    else:
        scores = [
            future.result() for future in [pool.submit(onnx_predict_proba, sess, rows) for rows in slices]
        ]
    return np.concatenate(scores) if scores else np.zeros(0)


def score_rows(model: ScoringModel, data: pd.DataFrame, p: np.ndarray) -> pd.DataFrame:
    """Scored columns (id, probability ``p``, decision, expected profit, segments, reasons) of clean
    rows. The model's identity is not repeated per row here: :func:`write_ranked` adds it."""
    business = model.business
    out = pd.DataFrame(
        {
            schema.ID_COLUMN: data[schema.ID_COLUMN].astype(str).to_numpy(),
            PROBABILITY: p,
            DECISION: (p >= model.metadata.threshold).astype(np.int8),
            PROFIT: p * business.offer_success_rate * business.customer_value - business.offer_cost,
            **{column: data[column].to_numpy() for column in SEGMENT_COLUMNS},
        }
    )
    if model.explain is not None:
        out = pd.concat([out, model.explain(data).reset_index(drop=True)], axis=1)
    return out


def _identity(model: ScoringModel) -> dict[bytes, bytes]:
    """The part file's schema metadata: the model identity columns pass 2 adds to every row."""
    meta = model.metadata
    return {
        REGISTRY_VERSION.encode(): (meta.registry_version or "").encode(),
        CONTENT_SHA.encode(): meta.content_sha256.encode(),
    }


def _append_quarantine(path: Path, quarantine: pd.DataFrame) -> None:
    """Append rows to the quarantine CSV; the first call writes the header, even with no rows."""
    first = path.stat().st_size == 0
    quarantine.to_csv(path, mode="a", header=first, index=False, quoting=csv.QUOTE_MINIMAL)


def _top_reasons(quarantine: pd.DataFrame, k: int = 3) -> str:
    reasons = quarantine[REASON_COLUMN].str.split("; ").explode().value_counts().head(k)
    return "; ".join(f"{reason} ({n} rows)" for reason, n in reasons.items())


def score_part(
    source: Path,
    model: ScoringModel,
    config: ScoreConfig,
    part: Path,
    quarantine: Path,
    *,
    row_groups: Sequence[int] | None = None,
    first_row: int = 1,
    progress: Callable[[str], None] | None = None,
    counted: Callable[[PartSummary], None] | None = None,
) -> PartSummary:
    """Pass 1: clean and score ``source`` (or its ``row_groups``) chunk by chunk into the part file
    ``part`` (Arrow IPC, source order) and append bad rows to the CSV ``quarantine``.

    ``first_row`` is the 1-based input row number of the first row read (a shard's offset).
    ``counted`` sees the running counts after each chunk. Raises :class:`ScoreError` when a chunk
    holds no valid row.
    """
    say = progress or log.info
    sess = scoring_session(Path(model.bundle_dir) / MODEL_FILE)
    workers = cpu_workers(config)
    quarantine.parent.mkdir(parents=True, exist_ok=True)
    quarantine.write_text("")
    rows = scored = bad = 0
    writer = None

    def scored_table(data: pd.DataFrame) -> pa.Table:
        scored = score_rows(model, data, predict(sess, data, pool, workers))
        table = pa.Table.from_pandas(scored, preserve_index=False).append_column(
            _ID_HASH, pa.array(_id_hashes(scored[schema.ID_COLUMN].to_numpy()))
        )
        return table.replace_schema_metadata(_identity(model))

    # Chunk k is scored (ORT on `workers` threads, the GIL released) while this thread reads and
    # cleans chunk k+1: at most two chunks are in memory.
    with ThreadPoolExecutor(max_workers=workers + 1, thread_name_prefix="churn-score") as pool:
        pending: Future | None = None
        try:
            for chunk in read_chunks(source, config.chunk_rows, row_groups):
                data, rejected = clean_chunk(chunk, first_row + rows)
                _append_quarantine(quarantine, rejected)
                if data.empty:
                    start = first_row + rows
                    raise ScoreError(
                        f"{source.name}: rows {start}-{start + len(chunk) - 1} hold no valid row "
                        f"(all {len(chunk)} quarantined): {_top_reasons(rejected)}"
                    )
                if pending is not None:
                    writer = _write_part(writer, part, pending.result())
                pending = pool.submit(scored_table, data)
                rows, scored, bad = rows + len(chunk), scored + len(data), bad + len(rejected)
                say(progress_line(PartSummary(rows, scored, bad)))
                if counted is not None:
                    counted(PartSummary(rows, scored, bad))
            if pending is not None:
                writer = _write_part(writer, part, pending.result())
                pending = None
        finally:
            if pending is not None:
                pending.cancel()
                wait([pending])
            if writer is not None:
                writer.close()
    if rows == 0:
        raise ScoreError(f"{source.name}: no data rows")
    return PartSummary(rows, scored, bad)


def progress_line(summary: PartSummary) -> str:
    """The progress line of pass 1: rows read, scored and quarantined so far."""
    counts = f"{summary.rows:,} rows read, {summary.scored:,} scored, {summary.quarantined:,} quarantined"
    return f"score: {counts}"


def process_plan(source: Path, model: ScoringModel, config: ScoreConfig) -> list[dict]:
    """The row-group ranges (:func:`plan_shards`) pass 1 runs in processes at once: one per worker
    for a Parquet file of several non-empty row groups when the platform forks, else ``[]`` (one
    process: a CSV file has no row groups to split). Never with reason codes: they run XGBoost,
    whose OpenMP runtime (libgomp) hangs in a forked child once the parent has run it (measured)."""
    workers = cpu_workers(config)
    if workers < 2 or model.explain is not None or not is_parquet(source) or not forked.available():
        return []
    sizes = row_group_rows(source)
    if len(sizes) < 2 or min(sizes) == 0:
        return []
    return plan_shards(sizes, workers)


def score_parts(
    source: Path,
    model: ScoringModel,
    config: ScoreConfig,
    work: Path,
    quarantine: Path,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[Path], PartSummary]:
    """Pass 1 of a whole table: its part files in source order (in ``work``) and the totals.

    A Parquet file's row groups are split into ranges (:func:`process_plan`), each scored by
    :func:`score_part` in a forked process with an equal share of the workers; the parts and the
    rows are the same as one process's (chunks never span row groups), so pass 2 writes the
    same bytes. The bad rows read go to the CSV ``quarantine`` -- also when a range fails: then
    the error raised, and the quarantine, are those one process reading in order would have
    stopped with (the first failing range's, its rows up to the failure).
    """
    say = progress or log.info
    plan = process_plan(source, model, config)
    if not plan:
        part = work / "part.arrow"
        return [part], score_part(source, model, config, part, quarantine, progress=say)
    each = replace(config, workers=max(1, cpu_workers(config) // len(plan)))
    parts = [work / f"part-{shard['shard']:03d}.arrow" for shard in plan]
    quarantines = [work / f"part-{shard['shard']:03d}.quarantine.csv" for shard in plan]

    def task(i: int, shard: dict) -> forked.Task:
        return lambda send: score_part(
            source, model, each, parts[i], quarantines[i], row_groups=shard["row_groups"],
            first_row=shard["first_row"], progress=lambda _: None, counted=send,
        )  # fmt: skip

    latest = [PartSummary(0, 0, 0)] * len(plan)

    def counted(i: int, summary: PartSummary) -> None:
        latest[i] = summary
        say(progress_line(PartSummary.total(latest)))

    outcomes = forked.run([task(i, shard) for i, shard in enumerate(plan)], counted)
    failed = next((i for i, outcome in enumerate(outcomes) if outcome.error is not None), None)
    kept = len(plan) if failed is None else failed + 1
    merge_quarantines([q for q in quarantines[:kept] if q.exists()], quarantine)
    if failed is not None:
        raise outcomes[failed].error
    return parts, PartSummary.total([outcome.result for outcome in outcomes])


def _write_part(writer, part: Path, table: pa.Table):
    """Append ``table`` to the part file, opening it on the first table; the writer."""
    if writer is None:
        writer = pa.ipc.new_file(str(part), table.schema)
    writer.write_table(table)
    return writer


def _batches(parts: Sequence[Path]) -> Iterator[pa.RecordBatch]:
    """Every record batch of the part files in order, one in memory at a time (read, not mapped:
    mapped pages would count towards the process's memory until the map is closed)."""
    for part in parts:
        with pa.OSFile(str(part)) as handle:
            reader = pa.ipc.open_file(handle)
            for i in range(reader.num_record_batches):
                yield reader.get_batch(i)


def _part_identity(parts: Sequence[Path]) -> dict[str, str]:
    """The model identity recorded in the parts (:func:`_identity`); they must all agree."""
    found = set()
    for part in parts:
        with pa.OSFile(str(part)) as handle:
            found.add(tuple(sorted((pa.ipc.open_file(handle).schema.metadata or {}).items())))
    if len(found) != 1:
        raise ScoreError(f"the {len(parts)} scored parts were scored by different models: {sorted(found)}")
    identity = dict(found.pop())
    return {key: identity.get(key.encode(), b"").decode() for key in (REGISTRY_VERSION, CONTENT_SHA)}


def sort_keys(batch: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray]:
    """A scored batch's probabilities and id hashes, as arrays that own their memory.

    Pass 2 keeps these for every row while it reads on; a zero-copy ``to_numpy()`` view would keep
    each whole batch (every column) alive with it: 5M rows peaked at 949 MB instead of ~720 MB.
    """
    return batch.column(PROBABILITY).to_numpy().copy(), batch.column(_ID_HASH).to_numpy().copy()


def _id_hashes(ids: np.ndarray) -> np.ndarray:
    """64-bit hashes of customer ids (strings): equal ids, equal hashes."""
    return pd.util.hash_array(ids.astype(object, copy=False))


def check_unique_ids(parts: Sequence[Path], hashes: np.ndarray, chunk_rows: int) -> None:
    """Refuse ids scored twice: cleaning quarantines repeats within a chunk, this finds those across
    chunks. ``hashes`` (8 bytes per row, sorted here in place) find candidates; a second pass over
    the parts confirms them on the ids themselves."""
    hashes.sort()
    candidates = np.unique(hashes[1:][hashes[1:] == hashes[:-1]])
    if len(candidates) == 0:
        return
    seen: set[str] = set()
    repeated: set[str] = set()
    for batch in _batches(parts):
        rows = np.flatnonzero(np.isin(batch.column(_ID_HASH).to_numpy(), candidates))
        for value in batch.column(schema.ID_COLUMN).take(pa.array(rows)).to_pylist():
            (repeated if value in seen else seen).add(value)
    if repeated:
        first = sorted(repeated)
        raise ScoreError(
            f"{schema.ID_COLUMN} {first[0]!r} and {len(first) - 1} more appear in more than one chunk "
            f"of {chunk_rows:,} rows (repeats within a chunk are quarantined): de-duplicate the input; "
            "nothing written but the quarantine file"
        )


def ranks(probability: np.ndarray) -> np.ndarray:
    """Row order by rank: highest probability first, ties in source order."""
    return np.argsort(-probability, kind="stable")


def bucket_rows(rows: int, chunk_rows: int) -> int:
    """Rows per rank bucket of pass 2 (and per written piece): ``chunk_rows``, more when the
    table would otherwise need over :data:`MAX_BUCKETS` buckets."""
    return max(chunk_rows, math.ceil(rows / MAX_BUCKETS))


def _spill(parts: Sequence[Path], rank: np.ndarray, size: int, spill_dir: Path) -> list[Path]:
    """Pass 2's distribution: each part row into the spill file of its rank bucket
    (``rank // size``), with its rank, in source order; the spill files by bucket."""
    spills = [spill_dir / f"bucket-{b:05d}.arrow" for b in range((len(rank) + size - 1) // size)]
    writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}
    start = 0
    try:
        for batch in _batches(parts):
            batch = batch.drop_columns([_ID_HASH])
            batch_rank = rank[start : start + batch.num_rows]
            start += batch.num_rows
            bucket = batch_rank // size
            by_bucket = np.argsort(bucket, kind="stable")
            edges = np.flatnonzero(np.diff(bucket[by_bucket])) + 1
            for rows in np.split(by_bucket, edges):
                b = int(bucket[rows[0]])
                piece = batch.take(pa.array(rows)).append_column(_RANK_KEY, pa.array(batch_rank[rows]))
                if b not in writers:
                    writers[b] = pa.ipc.new_stream(str(spills[b]), piece.schema)
                writers[b].write_batch(piece)
    finally:
        for writer in writers.values():
            writer.close()
    return spills


def write_ranked(
    parts: Sequence[Path],
    out: Path,
    config: ScoreConfig,
    observe: Callable[[int], Callable[[pa.Table], None]] | None = None,
) -> int:
    """Pass 2: rank every row of ``parts`` and write them to ``out`` in rank order, atomically.

    Memory is bounded by a bucket of rows plus 24 bytes per row at the peak (probabilities, their
    order, each row's rank; 8 bytes of it stay through the write): rows are spilled to rank buckets
    on disk (:func:`_spill`), then each bucket is sorted and written in turn.

    ``observe(rows)`` (the report) is called once with the row count and returns a function that
    sees every written chunk, in rank order. Returns the number of rows written.
    """
    identity = _part_identity(parts)
    probability, hashes = [], []
    for batch in _batches(parts):
        batch_probability, batch_hashes = sort_keys(batch)
        probability.append(batch_probability)
        hashes.append(batch_hashes)
    hashes_all = np.concatenate(hashes)
    del hashes
    check_unique_ids(parts, hashes_all, config.chunk_rows)
    del hashes_all
    order = ranks(np.concatenate(probability))
    del probability
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    del order
    see = observe(len(rank)) if observe is not None else None
    size = bucket_rows(len(rank), config.chunk_rows)
    with tempfile.TemporaryDirectory(prefix="churn-rank-", dir=Path(parts[0]).parent) as spill_dir, \
            storage.atomic_path(out) as tmp:  # fmt: skip
        spills = _spill(parts, rank, size, Path(spill_dir))
        written = len(rank)
        del rank
        writer, pending = None, None
        # each piece is written on a thread while the report reads it and the
        # next bucket is sorted: one write at a time, in rank order
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="churn-write")
        try:
            for spill in spills:
                with pa.OSFile(str(spill)) as handle:
                    bucket = pa.ipc.open_stream(handle).read_all()
                spill.unlink()
                bucket_rank = bucket.column(_RANK_KEY).to_numpy()
                chunk = bucket.take(pa.array(np.argsort(bucket_rank))).drop_columns([_RANK_KEY])
                chunk = chunk.replace_schema_metadata(None).add_column(
                    1, RANK, pa.array(np.sort(bucket_rank) + 1)
                )
                for name, value in identity.items():  # the same for every row: not kept per row
                    chunk = chunk.append_column(
                        name, pa.array([value], pa.string()).take(np.zeros(len(chunk), np.int32))
                    )
                if writer is None:
                    writer = _writer(tmp, chunk.schema, config.output_format)
                if pending is not None:
                    pending.result()
                pending = pool.submit(writer.write_table, chunk)
                if see is not None:
                    see(chunk)
            if pending is not None:
                pending.result()
        finally:
            pool.shutdown(wait=True)  # a write still running (after an error) ends before the close
            if writer is not None:
                writer.close()
    return written


def _writer(path: Path, table_schema: pa.Schema, output_format: str):
    if output_format == "csv":
        import pyarrow.csv as pa_csv

        return pa_csv.CSVWriter(str(path), table_schema)
    return pq.ParquetWriter(str(path), table_schema)


def check_bad_share(summary: PartSummary, config: ScoreConfig, source: str) -> None:
    """Refuse a table with more than ``max_bad_share`` of its rows quarantined."""
    share = summary.quarantined / summary.rows
    if share > config.max_bad_share:
        raise ScoreError(
            f"{source}: {share:.1%} of rows failed validation, over the {config.max_bad_share:.1%} limit "
            "(max_bad_share); nothing written but the quarantine file"
        )


def merge_quarantines(quarantines: Sequence[Path], dest: Path) -> None:
    """Concatenate shard quarantine CSVs in order (one header) into ``dest``, atomically."""
    with storage.atomic_path(dest) as tmp, open(tmp, "w", newline="") as out:
        header_written = False
        for path in quarantines:
            with open(path, newline="") as part:
                header = part.readline()
                if header and not header_written:
                    out.write(header)
                    header_written = True
                shutil.copyfileobj(part, out)


def deliver(local: Path, out_uri: str, settings: Settings) -> None:
    """Put a finished local file at ``out_uri``: an atomic rename beside a local target, one PUT on
    S3 (an object appears whole or not at all)."""
    if not storage.is_s3(out_uri):
        if Path(out_uri).resolve() != Path(local).resolve():
            with storage.atomic_path(Path(out_uri)) as tmp:
                shutil.copyfile(local, tmp)
        return
    loc = storage.parse_s3(out_uri)
    with storage.s3_errors(out_uri, settings):
        storage.s3_client(settings).fput_object(loc.bucket, loc.key, str(local))


@dataclass(frozen=True)
class ReportRequest:
    """What the run's report needs beside the ranked rows.

    ``out``: where the report goes; ``threshold``: the bundle's; ``context``: the run table;
    ``previous``: last run's ranked output as given (must exist); ``replaces``: the URI this run's
    output overwrites, last run's list when something is there (used when ``previous`` is empty).
    """

    out: str
    threshold: float
    context: dict
    previous: str = ""
    replaces: str = ""


def finish(
    parts: Sequence[Path],
    quarantines: Sequence[Path],
    summary: PartSummary,
    out_uri: str,
    quarantine_out: str,
    report: ReportRequest,
    config: ScoreConfig,
    settings: Settings,
    work: Path,
) -> int:
    """After pass 1: the merged quarantine at ``quarantine_out``, the bad-share check, the previous
    run's list (read before the output replaces it), then the ranked output at ``out_uri`` and its
    report at ``report.out``, each whole or not at all. Returns the rows written; on a refusal only
    the quarantine exists.
    """
    merge_quarantines(quarantines, work / "quarantine.csv")
    deliver(work / "quarantine.csv", quarantine_out, settings)
    check_bad_share(summary, config, out_uri)
    previous: PreviousList | None = find_previous(
        report.previous, report.replaces, config.top_k, settings, work
    )
    builders: list[ReportBuilder] = []

    def observe(rows: int):
        builders.append(ReportBuilder(rows, report.threshold, config.top_k))
        return builders[0].add

    local_out = work / "ranked" if storage.is_s3(out_uri) else Path(out_uri)
    written = write_ranked(parts, local_out, config, observe)
    html_text = builders[0].render(f"Churn scoring: {written:,} customers ranked", report.context, previous)
    write_report(html_text, work / "report.html")
    deliver(local_out, out_uri, settings)
    deliver(work / "report.html", report.out, settings)
    return written


def model_context(model: ScoringModel) -> dict:
    """The model facts a report names (JSON-able: shards hand it to the join in their manifest)."""
    meta = model.metadata
    return {
        "model": f"{meta.model_name} v{meta.registry_version or '-'} ({meta.content_id})",
        "content_sha256": meta.content_sha256,
        "threshold": meta.threshold,
        **{f"business.{k}": v for k, v in asdict(model.business).items()},
        "business inputs from": model.business_source,
    }


def score_table(
    data_uri: str,
    out_uri: str,
    model: ScoringModel,
    config: ScoreConfig,
    settings: Settings,
    progress: Callable[[str], None] | None = None,
    previous: str = "",
) -> dict:
    """Score ``data_uri`` (local path or ``s3://``) into ``out_uri`` (local path or ``s3://``).

    The quarantine file goes beside the output (``<out_uri>.quarantine.csv``), also when scoring
    fails (the bad rows can be inspected); the output only once every row is scored and ranked:
    on any error nothing is written at ``out_uri``. The report (``<out_uri>.report.html``) follows
    the output; it compares the list with ``previous`` (a ranked output) if given, else with the
    list the new output replaces at ``out_uri`` if there is one. Returns a summary (rows, scored,
    quarantined, model identity, business inputs and where they came from).
    """
    say = progress or log.info
    meta = model.metadata
    with tempfile.TemporaryDirectory(prefix="churn-score-") as tmp:
        work = Path(tmp)
        source = storage.fetch(data_uri, settings, work)
        say(f"score: {data_uri} with {meta.model_name} v{meta.registry_version or '-'} ({meta.content_id}), "
            f"threshold {meta.threshold:.2f}, business inputs from {model.business_source}")  # fmt: skip
        quarantine = work / "pass1.quarantine.csv"
        try:
            parts, summary = score_parts(source, model, config, work, quarantine, progress=say)
        except ScoreError:
            if quarantine.exists():
                deliver(quarantine, quarantine_uri(out_uri), settings)
            raise
        context = {"data": data_uri, **summary.to_dict(), **model_context(model)}
        report = ReportRequest(report_uri(out_uri), meta.threshold, context, previous, replaces=out_uri)
        written = finish(
            parts, [quarantine], summary, out_uri, quarantine_uri(out_uri), report, config, settings, work
        )
    say(f"score: wrote {written:,} ranked rows to {out_uri} ({summary.quarantined:,} quarantined)")
    return {
        **summary.to_dict(),
        "out": str(out_uri),
        "quarantine": quarantine_uri(out_uri),
        "report": report_uri(out_uri),
        "registry_version": meta.registry_version,
        "content_sha256": meta.content_sha256,
        "threshold": meta.threshold,
        "business": {**asdict(model.business), "source": model.business_source},
    }


def to_row_groups(data_uri: str, dest: Path, chunk_rows: int, settings: Settings) -> list[int]:
    """Copy ``data_uri`` to the Parquet file ``dest`` with one row group per chunk that
    :func:`read_chunks` yields (so a shard's chunks are the whole-file run's); rows per group."""
    with tempfile.TemporaryDirectory(prefix="churn-plan-") as tmp:
        source = storage.fetch(data_uri, settings, Path(tmp))
        sizes: list[int] = []
        with storage.atomic_path(dest) as staged:
            writer = None
            try:
                for chunk in read_chunks(source, chunk_rows):
                    table = pa.Table.from_pandas(chunk, preserve_index=False, schema=writer and writer.schema)
                    writer = writer or pq.ParquetWriter(str(staged), table.schema)
                    writer.write_table(table, row_group_size=len(chunk))
                    sizes.append(len(chunk))
            finally:
                if writer is not None:
                    writer.close()
    if not sizes:
        raise ScoreError(f"{data_uri}: no data rows")
    return sizes


def plan_shards(rows_per_group: Sequence[int], shards: int) -> list[dict]:
    """Split row groups into at most ``shards`` contiguous ranges of similar row counts:
    ``[{"shard": i, "row_groups": [...], "first_row": n}]`` (``first_row`` 1-based)."""
    if shards < 1:
        raise ConfigError(f"shards must be >= 1, got {shards}")
    groups = np.array_split(np.arange(len(rows_per_group)), min(shards, len(rows_per_group)))
    starts = np.concatenate([[0], np.cumsum(rows_per_group)])
    return [
        {"shard": i, "row_groups": [int(g) for g in chosen], "first_row": int(starts[chosen[0]]) + 1}
        for i, chosen in enumerate(groups)
    ]


def join_shards(
    manifests: Sequence[dict],
    parts: Sequence[Path],
    quarantines: Sequence[Path],
    out_uri: str,
    quarantine_out: str,
    report_out: str,
    config: ScoreConfig,
    settings: Settings,
    previous: str = "",
    replaces: str = "",
) -> dict:
    """Pass 2 of a sharded run: ``parts`` / ``quarantines`` in the order of ``manifests`` (collected
    from the shards), ranked into ``out_uri``, bad rows into ``quarantine_out``, the report into
    ``report_out`` (``previous`` / ``replaces`` as :class:`ReportRequest`'s). Returns the totals."""
    order = sorted(range(len(manifests)), key=lambda i: int(manifests[i]["shard"]))
    totals = PartSummary(
        *(sum(int(manifests[i][k]) for i in order) for k in ("rows", "scored", "quarantined"))
    )
    first = manifests[order[0]]["model"]  # every shard scored with the same model
    context = {**totals.to_dict(), "shards": len(manifests), **first}
    report = ReportRequest(report_out, float(first["threshold"]), context, previous, replaces)
    with tempfile.TemporaryDirectory(prefix="churn-join-") as tmp:
        written = finish(
            [parts[i] for i in order], [quarantines[i] for i in order], totals, out_uri, quarantine_out,
            report, config, settings, Path(tmp),
        )  # fmt: skip
    return {**totals.to_dict(), "shards": len(manifests), "written": written, "out": out_uri}
