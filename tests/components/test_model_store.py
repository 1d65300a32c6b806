"""The model store: versioned, immutable, hash-verified bundle paths (local folder)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from components import bundle
from components.config import load_settings
from components.model_store import ModelStore
from components.storage import StorageError


def test_model_store_paths_are_immutable_and_downloads_verified(trained_run, tmp_path):
    settings = load_settings({"CHURN_HOME": str(tmp_path), "CHURN_MODEL_STORE_URI": str(tmp_path / "models")})
    store = ModelStore(settings.model_store_uri, settings)
    source = trained_run.artifacts.bundle
    # the same model with another threshold: a different bundle (other metadata bytes)
    other = tmp_path / "other"
    shutil.copytree(source, other)
    bundle.write_metadata(other, replace(bundle.read_metadata(source), threshold=0.99))

    def publish(bundle_dir: Path):
        staged = store.stage(bundle_dir)
        return store.commit(staged, staged.metadata.registered(7, "churn-test", "run-7"))

    published = publish(source)
    assert bundle.read_metadata(Path(published.uri)).registry_version == "7"
    again = publish(source)
    assert again.sha256 == published.sha256  # same bytes again: an idempotent retry
    with pytest.raises(StorageError, match="immutable"):
        publish(other)
    staged = store.stage(source)
    with pytest.raises(StorageError, match="registry version"):
        store.commit(staged, staged.metadata)  # not yet registered: no version path to publish to
    store.download(published.uri, tmp_path / "copy", published.sha256)
    (Path(published.uri) / "model.onnx").write_bytes(b"tampered")
    with pytest.raises(StorageError, match="does not match"):
        store.download(published.uri, tmp_path / "copy2", published.sha256)
