"""Resolve a model location to a local bundle directory.

Accepted: a local path (or ``file://``), ``s3://bucket/prefix`` (MinIO or S3, settings from
``components.config``), and ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` through the
MLflow REST API (the version's ``bundle_uri`` tag says where the bundle was published), so the
serving image needs no mlflow package.
"""

from __future__ import annotations

import json
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from components.config import load_settings
from components.storage import parse_s3, s3_client
from serving.bundle import METADATA_FILE, MODEL_FILE, BundleError

BUNDLE_URI_TAG = "bundle_uri"


def _download_s3(uri: str, target: Path) -> Path:
    from minio.error import S3Error

    location = parse_s3(uri)
    bucket, prefix = location.bucket, location.key.strip("/")
    client = s3_client(load_settings())
    target.mkdir(parents=True, exist_ok=True)
    for name in (MODEL_FILE, METADATA_FILE):
        key = f"{prefix}/{name}" if prefix else name
        try:
            client.fget_object(bucket, key, str(target / name))
        except S3Error as exc:
            raise BundleError(f"cannot fetch s3://{bucket}/{key}: {exc.code}") from exc
    return target


def _mlflow_get(path: str, params: dict[str, str]) -> dict:
    settings = load_settings()
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


def resolve_registry_uri(uri: str) -> str:
    """``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` -> the version's ``bundle_uri`` tag."""
    spec = uri.removeprefix("models:/")
    if "@" in spec:
        name, alias = spec.split("@", 1)
        body = _mlflow_get("registered-models/alias", {"name": name, "alias": alias})
    else:
        name, _, version = spec.partition("/")
        body = _mlflow_get("model-versions/get", {"name": name, "version": version})
    tags = {t["key"]: t["value"] for t in body.get("model_version", {}).get("tags", [])}
    if BUNDLE_URI_TAG not in tags:
        raise BundleError(f"{uri}: the model version has no '{BUNDLE_URI_TAG}' tag")
    return tags[BUNDLE_URI_TAG]


def resolve_bundle_dir(uri: str, cache_dir: str | Path | None = None) -> Path:
    """Return a local directory holding ``model.onnx`` and ``metadata.json`` for ``uri``."""
    if uri.startswith("models:/"):
        return resolve_bundle_dir(resolve_registry_uri(uri), cache_dir)
    if uri.startswith("s3://"):
        target = Path(cache_dir) if cache_dir else Path(tempfile.mkdtemp(prefix="churn-bundle-"))
        return _download_s3(uri, target)
    if uri.startswith("file://"):
        return Path(urllib.parse.urlparse(uri).path)
    return Path(uri)
