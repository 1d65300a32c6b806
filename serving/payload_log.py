"""Payload log for monitoring: served rows (features, score, timestamp) to rolling Parquet files.

The request path only does a ``put_nowait`` of references to arrays it already built; a
background thread batches them and writes one Parquet file per flush to a local folder or an
``s3://`` prefix. When the queue is full the rows are dropped and counted, never waited for.
The format (file names, columns) and its reader are :mod:`components.payload_log`'s.
"""

from __future__ import annotations

import io
import os
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from kserve.logging import logger

from components.config import Settings
from components.payload_log import DECISION_COLUMN, SCORE_COLUMN, file_name
from components.storage import is_s3, parse_s3, s3_client
from serving.metrics import PAYLOAD_LOG_DROPPED, PAYLOAD_LOG_ROWS


@dataclass(frozen=True)
class Entry:
    """One served request, as references to arrays the request already made."""

    timestamp: float
    request_id: str
    model_name: str
    model_version: str  # as in the response: the registry version, else the content id
    content_sha256: str
    registry_version: str | None  # None: served from a run folder (a null in the Parquet column)
    feeds: dict[str, np.ndarray]
    scores: np.ndarray
    labels: np.ndarray


class _LocalSink:
    def __init__(self, directory: str):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def write(self, name: str, table: pa.Table) -> str:
        final = self.directory / name
        partial = final.with_suffix(".parquet.tmp")
        pq.write_table(table, partial)
        os.replace(partial, final)  # readers never see half a file
        return str(final)


class _S3Sink:
    def __init__(self, uri: str, settings: Settings):
        location = parse_s3(uri)
        self.bucket, self.prefix = location.bucket, location.key.strip("/")
        self.client = s3_client(settings)

    def write(self, name: str, table: pa.Table) -> str:
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        key = f"{self.prefix.rstrip('/')}/{name}" if self.prefix else name
        self.client.put_object(self.bucket, key, io.BytesIO(buffer.getvalue()), len(buffer.getvalue()))
        return f"s3://{self.bucket}/{key}"


class PayloadLog:
    """Bounded queue + background Parquet writer. ``log`` never blocks."""

    def __init__(
        self,
        uri: str,
        settings: Settings,
        max_queue: int = 1024,
        flush_rows: int = 10_000,
        flush_seconds: float = 10.0,
    ):
        self.uri = uri
        self.sink = _S3Sink(uri, settings) if is_s3(uri) else _LocalSink(uri)
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self._queue: queue.Queue[Entry | None] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._run, name="payload-log-writer", daemon=True)
        self._thread.start()

    def log(self, entry: Entry) -> None:
        """Enqueue a served request; drop and count it if the writer is behind."""
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            PAYLOAD_LOG_DROPPED.labels("queue_full").inc(len(entry.scores))

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is queued and stop the writer."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            logger.warning("payload log queue still full at shutdown; pending rows are lost")
            return
        self._thread.join(timeout)

    def _run(self) -> None:
        pending: list[Entry] = []
        rows, deadline = 0, time.monotonic() + self.flush_seconds
        while True:
            try:
                entry = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                entry = ...  # time to flush
            if entry is None:
                self._flush(pending)
                return
            if entry is not ...:
                pending.append(entry)
                rows += len(entry.scores)
            if rows >= self.flush_rows or (entry is ... and pending):
                self._flush(pending)
                pending, rows = [], 0
            if entry is ...:
                deadline = time.monotonic() + self.flush_seconds

    def _flush(self, entries: list[Entry]) -> None:
        if not entries:
            return
        rows = sum(len(e.scores) for e in entries)
        try:
            table = to_table(entries)
            where = self.sink.write(file_name(datetime.now(timezone.utc)), table)
            PAYLOAD_LOG_ROWS.inc(rows)
            logger.debug("payload log: %d rows to %s", rows, where)
        except Exception:  # a sink outage must not kill the writer thread
            logger.exception("payload log: could not write %d rows to %s", rows, self.uri)
            PAYLOAD_LOG_DROPPED.labels("write_failed").inc(rows)


def to_table(entries: list[Entry]) -> pa.Table:
    """One row per served row: timestamp, request id, model identity, every feature, score and decision."""
    repeat = [len(e.scores) for e in entries]
    columns: dict[str, pa.Array] = {
        "timestamp": pa.array(
            np.repeat(np.array([e.timestamp for e in entries]) * 1e6, repeat).astype("int64"),
            pa.timestamp("us", tz="UTC"),
        ),
        "request_id": pa.array(np.repeat([e.request_id for e in entries], repeat)),
        "model_name": pa.array(np.repeat([e.model_name for e in entries], repeat)),
        "model_version": pa.array(np.repeat([e.model_version for e in entries], repeat)),
        "content_sha256": pa.array(np.repeat([e.content_sha256 for e in entries], repeat)),
        "registry_version": pa.array(
            np.repeat(np.array([e.registry_version for e in entries], dtype=object), repeat), pa.string()
        ),
    }
    for name in entries[0].feeds:
        columns[name] = pa.array(np.concatenate([e.feeds[name].reshape(-1) for e in entries]))
    columns[SCORE_COLUMN] = pa.array(np.concatenate([e.scores for e in entries]))
    columns[DECISION_COLUMN] = pa.array(np.concatenate([e.labels for e in entries]))
    return pa.table(columns)
