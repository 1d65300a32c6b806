"""``ChurnModel.evaluate_many`` (serving/model.py), in process on the suite's real bundle and ONNX Runtime.

What the lean HTTP protocol's coalescer relies on: requests scored together each get what
``evaluate`` alone gives them, and each is counted as ``evaluate`` counts it. Also the ids
generated for requests that bring none.
"""

from __future__ import annotations

import numpy as np
import pytest
from kserve.errors import InferenceError
from prometheus_client import REGISTRY

from components.config import load_settings
from components.schema import FEATURES
from serving.model import ChurnModel, Scored
from serving.validation import Batch, Column, RequestError, Validator


@pytest.fixture(scope="module")
def model(bundle_dir) -> ChurnModel:
    loaded = ChurnModel("coalesced", str(bundle_dir), load_settings({}), max_batch_rows=50)
    assert loaded.load()
    return loaded


def validating(rows: list[dict], **overrides):
    """A ``validate`` for ``evaluate``: the rows as columns (``overrides`` replace a feature's values)."""
    columns = {f.name: Column(overrides.get(f.name, [r[f.name] for r in rows])) for f in FEATURES}
    return lambda validator: validator.columns(columns)


def count(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def invalid_count(model: ChurnModel) -> float:
    bundle = model.bundle
    labels = {
        "model_name": model.name,
        "content_id": bundle.content_id,
        "registry_version": bundle.registry_label,
    }
    return count("churn_requests_total", **labels, outcome="invalid")


def test_each_request_gets_what_evaluate_alone_gives_it(model, test_rows):
    rows = test_rows.to_dict("records")
    requests = [
        (validating(rows[:1]), "one"),
        (validating(rows[1:2], tenure=[-5]), "out-of-range"),
        (validating(rows[2:5]), "three"),
        (validating(rows[5:6]), "x" * 300),  # over --max_request_id_chars (256)
        (validating(rows[6:7]), None),
    ]
    alone: list = []
    invalid_before = invalid_count(model)
    for validate, request_id in requests:
        try:
            alone.append(model.evaluate(validate, request_id))
        except RequestError as exc:
            alone.append(exc)
    invalid_alone = invalid_count(model) - invalid_before
    together = model.evaluate_many(requests)
    assert invalid_count(model) - invalid_before == 2 * invalid_alone == 4
    assert [type(r) for r in together] == [type(r) for r in alone]
    for one, many in zip(alone, together, strict=True):
        if isinstance(one, Exception):
            assert str(many) == str(one) and many.label == one.label
            continue
        assert isinstance(many, Scored) and many.rows == one.rows and many.version == one.version
        np.testing.assert_allclose(many.scores, one.scores, rtol=0, atol=1e-6)  # one float32 ulp at most
        np.testing.assert_array_equal(many.churn, one.churn)
        assert many.batch is not one.batch and many.batch.rows == one.batch.rows
    assert together[0].request_id == "one" and together[2].request_id == "three"
    assert len(together[4].request_id) == 32 != len(together[0].request_id)  # generated, as alone


def test_a_failed_run_fails_every_valid_request_and_counts_each(model, test_rows):
    """A feed ONNX Runtime refuses (float64 where the graph takes float32) fails the shared run:
    each valid request gets ONNX Runtime's error as its own InferenceError, the invalid one its
    validation error, and the error counters count every failed request and its rows."""
    rows = test_rows.to_dict("records")
    good = validating(rows[:2])

    def refused(validator: Validator) -> Batch:
        batch = good(validator)
        return batch._replace(floats=batch.floats.astype(np.float64))  # the graph takes float32

    bundle = model.bundle
    labels = {
        "model_name": model.name,
        "content_id": bundle.content_id,
        "registry_version": bundle.registry_label,
    }
    before = (
        count("churn_requests_total", **labels, outcome="error"),
        count("churn_rows_total", **labels, outcome="error"),
    )
    out = model.evaluate_many([(refused, "a"), (validating(rows[:1], tenure=[-5]), "b"), (good, "c")])
    assert [type(r) for r in out] == [InferenceError, RequestError, InferenceError]
    assert str(out[0]).startswith("ONNX Runtime failed: ") and str(out[0]) == str(out[2])
    after = (
        count("churn_requests_total", **labels, outcome="error"),
        count("churn_rows_total", **labels, outcome="error"),
    )
    assert (after[0] - before[0], after[1] - before[1]) == (2, 4)


def test_nothing_valid_runs_nothing(model, test_rows):
    rows = test_rows.to_dict("records")
    out = model.evaluate_many([(validating(rows[:1], tenure=[-5]), "only")])
    assert len(out) == 1 and isinstance(out[0], RequestError)
    assert model.evaluate_many([]) == []


def test_generated_request_ids_are_unique_and_a_forked_child_draws_its_own():
    """32 hex digits, never repeated in a process; after a fork the child's ids share nothing with
    the parent's (the per-process random half is drawn again)."""
    import os
    import re

    from serving.model import new_request_id

    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child reports through the pipe)
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    theirs, ours = os.read(read, 64).decode(), new_request_id()
    os.close(read)
    assert re.fullmatch(r"[0-9a-f]{32}", theirs) and theirs[:16] != ours[:16]
