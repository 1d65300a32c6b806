"""Pre-flight replay on a real payload log written by the real model server.

The champion (the suite's model, published as version 1) serves held-out rows through
``python -m serving`` with its payload log on; the replay reads that log back. A challenger
equal to the champion passes, one trained on shuffled labels is rejected, an empty window is
skipped. The registry-backed command runs on the embedded SQLite registry.
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from components import bundle
from components.config import load_settings
from components.payload_log import read_log
from components.rollout.preflight import Challenger, PreflightConfig, PreflightError, replay, top_overlap
from components.rollout.verdict import PROMOTE, ROLLBACK, SKIPPED
from components.schema import FEATURES
from pipelines.rollout_preflight_cli import EXIT_PASSED, EXIT_REJECTED, EXIT_SKIPPED, add_preflight_parser
from serving.examples import v2_request
from tests.components.rollout.conftest import publish
from tests.support.bundles import register_run
from tests.support.model_server import start_model_server

pytestmark = pytest.mark.integration

REQUESTS, ROWS_EACH = 30, 50


@pytest.fixture(scope="module")
def served(trained_run, served_rows, tmp_path_factory):
    """``(payload log folder, champion metadata, time before serving)`` after 1,500 served rows."""
    work = tmp_path_factory.mktemp("preflight-serving")
    champion_dir = publish(trained_run.artifacts.bundle, work / "v1", "1")
    log_dir = work / "payload"
    server = start_model_server(
        champion_dir, work / "server.log",
        extra_args=["--payload_log_uri", str(log_dir), "--payload_log_flush_seconds", "0.5"],
    )  # fmt: skip
    before = datetime.now(timezone.utc)
    try:
        for i in range(REQUESTS):
            rows = [served_rows[(i * ROWS_EACH + j) % len(served_rows)] for j in range(ROWS_EACH)]
            assert server.post("/v2/models/churn/infer", json=v2_request(FEATURES, rows)).ok
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and logged(log_dir) < REQUESTS * ROWS_EACH:
            time.sleep(0.3)
        assert logged(log_dir) == REQUESTS * ROWS_EACH
    finally:
        server.stop()
    return log_dir, bundle.verify(champion_dir), before


def logged(log_dir) -> int:
    if not log_dir.exists():
        return 0
    return sum(b.num_rows for b in read_log(str(log_dir), load_settings(), columns=["timestamp"]))


def test_a_challenger_equal_to_the_champion_passes(served, trained_run, tmp_path):
    log_dir, champion, _ = served
    challenger = Challenger.open(publish(trained_run.artifacts.bundle, tmp_path / "v2", "2"))
    verdict = replay(str(log_dir), challenger, champion.content_sha256, load_settings())
    assert verdict.decision == PROMOTE, verdict.table()
    assert (verdict.stable_version, verdict.canary_version) == ("1", "2")
    values = {c.check: c.value for c in verdict.checks}
    assert values["score distribution (JS distance)"] == pytest.approx(0.0, abs=1e-6)
    assert values["Spearman rank correlation"] == pytest.approx(1.0)
    assert values["top-decile overlap"] == 1.0 and values["positive rate"] == 0.0
    assert f"{REQUESTS * ROWS_EACH} rows" in verdict.window


def test_a_shuffled_label_challenger_is_rejected_with_reasons(served, shuffled_run, tmp_path):
    log_dir, champion, _ = served
    challenger = Challenger.open(publish(shuffled_run.artifacts.bundle, tmp_path / "v5", "5"))
    verdict = replay(str(log_dir), challenger, champion.content_sha256, load_settings())
    assert verdict.decision == ROLLBACK, verdict.table()
    failed = {c.check for c in verdict.failed}
    assert {"Spearman rank correlation", "top-decile overlap"} <= failed, verdict.table()
    assert len(verdict.reasons) == len(failed) and all("breaks bound" in r for r in verdict.reasons)


def test_an_empty_log_is_skipped_not_passed(served, trained_run, tmp_path):
    _, champion, _ = served
    (tmp_path / "empty").mkdir()
    challenger = Challenger.open(publish(trained_run.artifacts.bundle, tmp_path / "v2", "2"))
    verdict = replay(str(tmp_path / "empty"), challenger, champion.content_sha256, load_settings())
    assert verdict.decision == SKIPPED and verdict.reasons == ("skipped: 0 rows < minimum 1000",)


def test_a_window_too_small_or_of_another_version_is_skipped(served, trained_run, tmp_path):
    log_dir, champion, before = served
    challenger = Challenger.open(publish(trained_run.artifacts.bundle, tmp_path / "v2", "2"))
    settings = load_settings()
    earlier = replay(
        str(log_dir), challenger, champion.content_sha256, settings, until=before - timedelta(hours=1)
    )
    assert earlier.decision == SKIPPED and earlier.reasons == ("skipped: 0 rows < minimum 1000",)
    bigger = replay(
        str(log_dir), challenger, champion.content_sha256, settings, PreflightConfig(min_rows=2000)
    )
    assert bigger.reasons == (f"skipped: {REQUESTS * ROWS_EACH} rows < minimum 2000",)
    other = replay(str(log_dir), challenger, "0" * 64, settings)  # rows another version served
    assert other.decision == SKIPPED


def test_max_rows_reads_the_newest_rows_only(served, trained_run, tmp_path):
    log_dir, champion, _ = served
    challenger = Challenger.open(publish(trained_run.artifacts.bundle, tmp_path / "v2", "2"))
    config = PreflightConfig(min_rows=100, max_rows=400)
    verdict = replay(str(log_dir), challenger, champion.content_sha256, load_settings(), config)
    assert verdict.decision == PROMOTE and "400 rows" in verdict.window


def test_a_log_without_a_challenger_input_is_refused_naming_it(served, trained_run, tmp_path):
    log_dir, champion, _ = served
    folder = tmp_path / "log"
    folder.mkdir()
    for path in sorted(log_dir.glob("*.parquet")):
        pd.read_parquet(path).drop(columns=["tenure"]).to_parquet(folder / path.name)
    challenger = Challenger.open(publish(trained_run.artifacts.bundle, tmp_path / "v2", "2"))
    with pytest.raises(PreflightError, match="no column 'tenure'"):
        replay(str(folder), challenger, champion.content_sha256, load_settings())


def test_top_overlap_counts_the_shared_top_decile():
    import numpy as np

    scores = np.arange(100, dtype=float)
    assert top_overlap(scores, scores, 0.1) == 1.0
    assert top_overlap(scores, -scores, 0.1) == 0.0
    assert top_overlap(scores, np.r_[scores[:95], scores[95:] - 100], 0.1) == 0.5


def test_bounds_are_checked_naming_the_field():
    with pytest.raises(PreflightError, match=r"PreflightConfig\.min_rows must be a whole number"):
        PreflightConfig(min_rows=0)
    with pytest.raises(
        PreflightError, match=r"PreflightConfig.min_spearman must be a finite number in \[-1, 1\]"
    ):
        PreflightConfig(min_spearman=2)


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """``churn rollout preflight`` on a fresh embedded registry (SQLite MLflow, local model store)."""
    env = {
        "CHURN_HOME": str(tmp_path / "home"),
        "CHURN_REGISTERED_MODEL": f"churn-{uuid.uuid4().hex[:8]}",
        "CHURN_MODEL_STORE_URI": str(tmp_path / "models"),
        "CHURN_IO_RETRIES": "0",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    parser = argparse.ArgumentParser(prog="churn")
    rollout = parser.add_subparsers(dest="command", required=True).add_parser("rollout")
    add_preflight_parser(rollout.add_subparsers(dest="rollout_command", required=True))

    def run(*argv: str) -> int:
        args = parser.parse_args(["rollout", "preflight", *argv])
        return args.func(args)

    run.settings = load_settings()
    return run


def test_the_command_judges_versions_against_the_champion(served, trained_run, shuffled_run, cli, capsys):
    log_dir, _, _ = served
    first = register_run(trained_run, cli.settings, promote=True)
    second = register_run(shuffled_run, cli.settings, promote=False)
    assert (first["version"], second["version"]) == ("1", "2")
    model = ("--model", first["registered_model"])  # the synthetic lineage's registered model
    assert cli("--version", "1", "--payload-log", str(log_dir), *model) == EXIT_PASSED
    assert "preflight verdict: PROMOTE" in capsys.readouterr().out
    assert cli("--version", "2", "--payload-log", str(log_dir), *model) == EXIT_REJECTED
    out = capsys.readouterr().out
    assert "preflight verdict: ROLLBACK" in out and "Spearman rank correlation" in out
    early = ("--until", "2000-01-01T00:00", "--since", "1999-12-01T00:00")
    assert cli("--version", "2", "--payload-log", str(log_dir), *model, *early) == EXIT_SKIPPED
    assert "skipped: 0 rows < minimum 1000" in capsys.readouterr().out
