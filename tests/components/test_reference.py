"""The monitoring reference every exported version carries (components/reference.py, in the bundle)."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from components import bundle, reference, schema
from components.bundle import BundleError, NoReferenceError
from components.config import load_settings
from components.export import onnx_predict_proba
from components.model_store import ModelStore


@pytest.fixture(scope="module")
def exported(trained_run):
    return trained_run.artifacts


def test_export_writes_the_reference_into_the_bundle_with_its_hash(exported):
    meta = bundle.verify(exported.bundle)
    data = (exported.bundle / bundle.REFERENCE_FILE).read_bytes()
    assert meta.reference_sha256 == hashlib.sha256(data).hexdigest()
    assert meta.files == (bundle.MODEL_FILE, bundle.REFERENCE_FILE, bundle.METADATA_FILE)
    _, files = bundle.bundle_digest(exported.bundle)
    assert set(files) == {bundle.MODEL_FILE, bundle.REFERENCE_FILE, bundle.METADATA_FILE}


def test_reference_holds_the_test_split_as_scored_by_the_exported_graph(exported):
    ref = reference.load(exported.bundle)
    test = pd.read_parquet(exported.test)
    scores = onnx_predict_proba(exported.bundle / bundle.MODEL_FILE, test)
    y = test[schema.LABEL_COLUMN].to_numpy()
    assert ref.rows == len(test)
    assert ref.score.mean == pytest.approx(scores.mean(), abs=1e-12)
    assert ref.metrics["roc_auc"] == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    assert ref.threshold == bundle.read_metadata(exported.bundle).threshold
    assert ref.score.positive_rate == pytest.approx((scores >= ref.threshold).mean())
    business = json.loads(exported.evaluation.read_text())["business"]
    assert ref.business == business
    for name, num in ref.numeric.items():
        assert sum(num.counts) + num.missing == len(test), name
        assert len(num.sample) == min(len(test), reference.SAMPLE_SIZE)
        assert np.all(np.diff(num.cuts) > 0), name
    for name, cat in ref.categorical.items():
        assert sum(cat.counts) + cat.unknown == len(test), name
        assert cat.categories == list(schema.BY_NAME[name].categories)
    assert sum(ref.score.counts) == sum(ref.score.histogram) == len(test)
    assert ref.cbpe["realised_roc_auc"] == ref.metrics["roc_auc"]
    low, high = ref.cbpe["interval"]
    assert low < ref.cbpe["estimated_roc_auc"] < high


def test_reference_round_trips_through_json(exported):
    ref = reference.load(exported.bundle)
    assert reference.from_json(ref.to_json()) == ref


def test_a_bundle_without_a_reference_stays_readable_and_says_so(exported, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    meta = bundle.verify(exported.bundle)
    # An earlier release's bundle: two files, and no reference_sha256 key in its metadata.
    (old / bundle.MODEL_FILE).write_bytes((exported.bundle / bundle.MODEL_FILE).read_bytes())
    record = {k: v for k, v in meta.to_dict().items() if k != "reference_sha256"}
    (old / bundle.METADATA_FILE).write_text(json.dumps(record))
    assert bundle.verify(old).reference_sha256 is None
    digest, files = bundle.bundle_digest(old)
    assert set(files) == set(bundle.BUNDLE_FILES)
    assert digest == bundle.manifest_sha256(files)
    with pytest.raises(NoReferenceError, match=r"^no reference in this bundle \(.*re-run the pipeline"):
        reference.load(old)


def test_a_replaced_reference_fails_verification(exported, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(exported.bundle, copy)
    text = json.loads((copy / bundle.REFERENCE_FILE).read_text())
    text["rows"] += 1
    (copy / bundle.REFERENCE_FILE).write_text(json.dumps(text))
    with pytest.raises(BundleError, match=r"reference.json has sha256 .* metadata reference_sha256 says"):
        bundle.verify(copy)


def test_the_model_store_publishes_and_downloads_the_reference(exported, tmp_path):
    store = ModelStore(str(tmp_path / "store"), load_settings())
    staged = store.stage(exported.bundle)
    published = store.commit(staged, staged.metadata.registered(7, "churn-classifier", "run-1"))
    assert set(published.files) == {bundle.MODEL_FILE, bundle.REFERENCE_FILE, bundle.METADATA_FILE}
    local = store.download(published.uri, tmp_path / "down", published.sha256)
    assert reference.load(local) == reference.load(exported.bundle)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: {**d, "format": "something-else"}, "not a churn-monitoring-reference file"),
        (lambda d: {**d, "format_version": 99}, "format_version 99, this release reads 1"),
        (lambda d: {**d, "numeric": {}}, r"no reference for feature\(s\) \['MonthlyCharges'"),
        (lambda d: {k: v for k, v in d.items() if k != "score"}, "missing or unexpected field"),
    ],
)
def test_bad_reference_files_name_the_problem(exported, change, message):
    data = json.loads((exported.bundle / bundle.REFERENCE_FILE).read_text())
    with pytest.raises(reference.ReferenceFormatError, match=message):
        reference.from_dict(change(data), "reference.json")
