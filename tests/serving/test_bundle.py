"""serving/bundle.py: the packed graph scores exactly as the bundle's own graph, or is not used."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from components.schema import FEATURES
from serving import bundle as served
from serving.bundle import PACKED_MAX_ROWS, open_bundle
from serving.packed_graph import PACKED_FLOATS, PACKED_SCORE, PACKED_STRINGS
from serving.validation import Batch, Column, Validator


def batch_of(validator: Validator, rows) -> Batch:
    return validator.columns({f.name: Column(rows[f.name].tolist(), f.v2_datatype) for f in FEATURES})


def own_graph(bundle, batch: Batch) -> np.ndarray:
    """The bundle's own graph on ``batch``: one input per feature."""
    (probabilities,) = bundle.session.run([bundle.probabilities_output], batch.feeds)
    return probabilities[:, bundle.positive_column]


@pytest.fixture(scope="module")
def opened(bundle_dir):
    return open_bundle(bundle_dir)


def test_the_packed_graph_gives_the_bundle_graphs_probabilities_at_every_batch_size(opened, test_rows):
    """The suite's 20 held-out rows, in batches of 1 to 6 and all 20 (the packed session takes up to
    PACKED_MAX_ROWS): its probabilities equal the bundle graph's on the same batch, bit for bit."""
    assert opened.packed is not None
    validator = Validator(opened.features, 100)
    for n in [*range(1, 7), len(test_rows)]:
        for start in range(0, len(test_rows) - n + 1, n):
            batch = batch_of(validator, test_rows.iloc[start : start + n])
            (packed,) = opened.packed.run(
                [PACKED_SCORE], {PACKED_STRINGS: batch.strings.T.copy(), PACKED_FLOATS: batch.floats.T.copy()}
            )
            own = own_graph(opened, batch)
            assert np.array_equal(packed[:, 0], own), (n, start)
            assert np.array_equal(opened.score(batch), own), (n, start)


def test_score_takes_the_packed_graph_up_to_its_row_limit_only(opened, test_rows, monkeypatch):
    """The switch itself: small batches run the packed session, larger ones the bundle's own."""
    validator = Validator(opened.features, 100)
    calls = []
    for name in ("_packed_run", "_run"):
        run = getattr(opened, name)
        monkeypatch.setitem(
            opened.__dict__, name, lambda *a, _run=run, _name=name: calls.append(_name) or _run(*a)
        )
    many = pd.concat([test_rows] * (PACKED_MAX_ROWS // len(test_rows) + 2), ignore_index=True)
    for n in (1, PACKED_MAX_ROWS, PACKED_MAX_ROWS + 1, len(many)):
        opened.score(batch_of(validator, many.head(n)))
    assert calls == ["_packed_run", "_packed_run", "_run", "_run"]


def test_a_packed_graph_that_cannot_be_built_leaves_the_bundle_graph_scoring(
    bundle_dir, test_rows, monkeypatch, caplog
):
    def broken(*_):
        raise ValueError("no Split for you")

    monkeypatch.setattr(served, "packed_graph", broken)
    with caplog.at_level(logging.WARNING, logger="kserve"):
        opened = open_bundle(bundle_dir)
    assert opened.packed is None
    assert "no packed graph" in caplog.text and "no Split for you" in caplog.text
    batch = batch_of(Validator(opened.features, 100), test_rows.head(1))
    assert np.array_equal(opened.score(batch), own_graph(opened, batch))


def test_a_packed_graph_that_scores_otherwise_is_not_used(bundle_dir, monkeypatch, caplog):
    """Columns fed to the wrong inputs (the categorical names reversed): the probe rows differ."""
    real = served.packed_graph
    monkeypatch.setattr(
        served, "packed_graph", lambda model, cat, *rest: real(model, list(reversed(cat)), *rest)
    )
    with caplog.at_level(logging.WARNING, logger="kserve"):
        opened = open_bundle(bundle_dir)
    assert opened.packed is None
    assert "probabilities differ on the probe rows" in caplog.text
