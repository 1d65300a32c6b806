"""Resolve a model location to a local bundle folder for the time it takes to open it.

Accepted: a local path (or ``file://``), ``s3://bucket/prefix`` (MinIO or S3, through
``components.storage``'s bounded client), and ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``
through the MLflow REST API (the version's ``bundle_uri`` tag says where the bundle was
published), so the serving image needs no mlflow package.
"""

from __future__ import annotations

import json
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from components.bundle import BUNDLE_FILES, BundleError, read_metadata
from components.config import Settings
from components.registry_names import TAG_BUNDLE_URI, is_model_uri, parse_model_uri
from components.storage import is_s3, parse_s3, s3_client


def _download_s3(uri: str, target: Path, settings: Settings) -> None:
    from minio.error import S3Error

    location = parse_s3(uri)
    bucket, prefix = location.bucket, location.key.strip("/")
    client = s3_client(settings)

    def fetch(name: str) -> None:
        key = f"{prefix}/{name}" if prefix else name
        try:
            client.fget_object(bucket, key, str(target / name))
        except S3Error as exc:
            raise BundleError(f"cannot fetch s3://{bucket}/{key}: {exc.code}") from exc

    for name in BUNDLE_FILES:
        fetch(name)
    # Then what the metadata says the bundle also holds (the monitoring reference): the local copy
    # is the published bundle, with its digest, though serving reads only the two files above.
    for name in read_metadata(target).files:
        if not (target / name).is_file():
            fetch(name)


def _mlflow_get(path: str, params: dict[str, str], settings: Settings) -> dict:
    base = settings.mlflow_tracking_uri.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise BundleError(
            "models:/ URIs need an MLflow tracking server; "
            f"MLFLOW_TRACKING_URI is {settings.mlflow_tracking_uri!r}"
        )
    url = f"{base}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=settings.io_timeout_s) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        raise BundleError(f"MLflow answered {exc.code} for {url}: {exc.read()[:300]!r}") from exc
    except OSError as exc:
        raise BundleError(f"cannot reach MLflow at {url}: {exc}") from exc


def resolve_registry_uri(uri: str, settings: Settings) -> str:
    """``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` -> the version's ``bundle_uri`` tag."""
    try:
        ref = parse_model_uri(uri)
    except ValueError as exc:
        raise BundleError(str(exc)) from exc
    if ref.alias is not None:
        body = _mlflow_get("registered-models/alias", {"name": ref.name, "alias": ref.alias}, settings)
    else:
        body = _mlflow_get("model-versions/get", {"name": ref.name, "version": ref.version}, settings)
    tags = {t["key"]: t["value"] for t in body.get("model_version", {}).get("tags", [])}
    if TAG_BUNDLE_URI not in tags:
        raise BundleError(f"{uri}: the model version has no '{TAG_BUNDLE_URI}' tag")
    return tags[TAG_BUNDLE_URI]


@contextmanager
def local_bundle(uri: str, settings: Settings, scratch_dir: str | Path | None = None) -> Iterator[Path]:
    """A local folder holding the bundle at ``uri`` for the duration of the ``with`` block.

    A remote bundle is downloaded into a fresh folder under ``scratch_dir`` (default: the system
    temp folder) that is removed when the block ends: ONNX Runtime holds the graph in memory
    once the session is built, so a server reloading from s3:// keeps no copies on disk.
    """
    if is_model_uri(uri):
        uri = resolve_registry_uri(uri, settings)
    if not is_s3(uri):
        yield Path(urllib.parse.urlparse(uri).path) if uri.startswith("file://") else Path(uri)
        return
    with tempfile.TemporaryDirectory(prefix="churn-bundle-", dir=scratch_dir) as target:
        _download_s3(uri, Path(target), settings)
        yield Path(target)
