"""The payload log's format, and its reader: what the model server logged, streamed back.

The writer is :mod:`serving.payload_log` (a background thread in the model server); the
pre-flight replay and monitoring read through :func:`read_log`. Bottom layer: the serving image
ships this module.

Files are ``payload-<UTC write time>-<8 hex>.parquet`` in one folder or ``s3://`` prefix; every
row in a file was served before the file's write time. Columns: ``timestamp`` (UTC, µs),
``request_id``, ``model_name``, ``model_version`` (as answered: registry version, else content
id), ``content_sha256``, ``registry_version`` (null from a run folder), one column per feature as
the model was fed (categories already normalised, numbers float32), ``churn_probability``, ``churn``.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from components.config import Settings
from components.errors import ChurnError
from components.storage import is_s3, parse_s3, s3_client

SCORE_COLUMN = "churn_probability"
DECISION_COLUMN = "churn"
FILE_NAME = re.compile(r"^payload-(\d{8}T\d{12})Z-[0-9a-f]{8}\.parquet$")
_STAMP = "%Y%m%dT%H%M%S%f"


class PayloadLogError(ChurnError, RuntimeError):
    """The payload log cannot be listed or read; the message names the location."""


def file_name(written_at: datetime) -> str:
    """The name of a payload-log file written at ``written_at`` (UTC)."""
    return f"payload-{written_at.astimezone(timezone.utc).strftime(_STAMP)}Z-{uuid.uuid4().hex[:8]}.parquet"


def _written_at(name: str) -> datetime | None:
    match = FILE_NAME.match(name)
    return datetime.strptime(match.group(1), _STAMP).replace(tzinfo=timezone.utc) if match else None


def read_log(
    uri: str,
    settings: Settings,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    columns: list[str] | None = None,
    batch_rows: int = 65_536,
) -> Iterator[pa.RecordBatch]:
    """Stream the rows of the payload log at ``uri`` served in ``[since, until)``, newest file first.

    Files written before ``since`` are never opened; rows outside the window are dropped.
    ``columns`` picks columns (``timestamp`` is always read to filter). Other files in the
    folder are ignored; an unreadable location raises :class:`PayloadLogError`.
    """
    wanted = None if columns is None else sorted({*columns, "timestamp"})
    for name, opened in _files(uri, settings, since):
        try:
            parquet = pq.ParquetFile(opened())
            for batch in parquet.iter_batches(batch_size=batch_rows, columns=wanted):
                keep = _in_window(batch.column("timestamp"), since, until)
                if keep is not None:
                    batch = batch.filter(keep)
                if batch.num_rows:
                    yield batch
        except (OSError, pa.ArrowException) as exc:
            raise PayloadLogError(f"payload log {uri}: cannot read {name}: {exc}") from exc


def _in_window(timestamps: pa.Array, since: datetime | None, until: datetime | None):
    mask = None
    for bound, compare in ((since, pc.greater_equal), (until, pc.less)):
        if bound is not None:
            test = compare(timestamps, pa.scalar(bound, pa.timestamp("us", tz="UTC")))
            mask = test if mask is None else pc.and_(mask, test)
    return mask


def _files(uri: str, settings: Settings, since: datetime | None):
    """``(name, open())`` of the log's files written at or after ``since``, newest first."""
    if is_s3(uri):
        location = parse_s3(uri)
        prefix = location.key.strip("/")
        client = s3_client(settings)
        try:
            keys = [
                o.object_name
                for o in client.list_objects(location.bucket, prefix=f"{prefix}/" if prefix else "")
            ]
        except Exception as exc:  # minio raises S3Error, urllib3 its own connection errors
            raise PayloadLogError(f"payload log {uri}: cannot list: {exc}") from exc
        named = {k.rsplit("/", 1)[-1]: k for k in keys}

        def opener(key: str):
            def fetch() -> io.BytesIO:  # one file is at most flush_rows rows: read it whole
                response = client.get_object(location.bucket, key)
                try:
                    return io.BytesIO(response.read())
                finally:
                    response.close()
                    response.release_conn()

            return fetch

        found = {name: opener(key) for name, key in named.items()}
    else:
        folder = Path(uri.removeprefix("file://"))
        if not folder.is_dir():
            raise PayloadLogError(f"payload log {uri}: no such folder")
        found = {p.name: (lambda p=p: str(p)) for p in folder.iterdir()}
    dated = [(_written_at(name), name) for name in found]
    chosen = sorted(
        ((when, name) for when, name in dated if when and (since is None or when >= since)), reverse=True
    )
    return [(name, found[name]) for _, name in chosen]
