"""The registry against real servers on 127.0.0.1: ``mlflow server`` + SeaweedFS S3 (MinIO client).

Tests taking ``any_settings`` / ``any_mlflow_server`` (aliases, compare-and-set, the promotion
lock, concurrent registrations) run twice: on MLflow's SQLite store and on a real PostgreSQL, the
production backend store, which enforces what SQLite lets through.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from components.bundle import BUNDLE_FILES, bundle_digest, read_metadata
from components.config import load_settings
from components.gate import GateConfig
from components.registry import (
    RegistryError,
    connect,
    list_versions,
    move_alias,
    promote,
    rollback,
    show_version,
)
from components.registry.audit import history
from components.registry.lock import LOCK_SUFFIX, promotion_lock
from components.registry.promotion import AliasMove
from components.storage import StorageError, parse_s3
from tests.integration.env import ARTIFACT_BUCKET, server_env
from tests.integration.workers import register_in_child
from tests.support.bundles import register_run
from tests.support.mlflow_server import start_mlflow_server
from tests.support.s3_server import start_s3_server

pytestmark = pytest.mark.integration


def aliases(settings) -> dict[str, str]:
    with connect(settings, "read aliases") as registry:
        found = registry.client.get_registered_model(registry.name).aliases
    return {alias: str(version) for alias, version in found.items()}


def version_numbers(settings) -> list[str]:
    with connect(settings, "read versions") as registry:
        found = registry.client.search_model_versions(f"name = '{registry.name}'")
    return sorted((str(v.version) for v in found), key=int)


def audit_events(settings):
    with connect(settings, "read audit trail") as registry:
        return history(registry)


def model_version(settings, version: str):
    with connect(settings, "read version") as registry:
        return registry.client.get_model_version(registry.name, version)


def download_bundle(s3, uri: str, dest: Path) -> Path:
    """Fetch a published bundle the way a KServe storage initializer would: by its S3 prefix."""
    loc = parse_s3(uri)
    for name in BUNDLE_FILES:
        s3.client().fget_object(loc.bucket, f"{loc.key}{name}", str(dest / name))
    for name in set(read_metadata(dest).files) - set(BUNDLE_FILES):  # reference.json
        s3.client().fget_object(loc.bucket, f"{loc.key}{name}", str(dest / name))
    return dest


def test_pipeline_run_against_mlflow_server_and_s3(good, s3, settings, tmp_path):
    on_kfp = replace(good, lineage=replace(good.lineage, kfp_run_id="kfp-0f3a"))
    first = register_run(on_kfp, settings, run_id="pipeline-run-1")
    assert first["version"] == "1" and first["gate"]["passed"]
    assert aliases(settings) == {"champion": "1", "challenger": "1"}
    assert first["bundle_uri"] == f"{settings.model_store_uri}/1/"

    mv = model_version(settings, "1")
    assert mv.tags["bundle_uri"] == first["bundle_uri"] and mv.tags["registration_state"] == "complete"
    assert mv.tags["data_hash"] == good.lineage.data_hash and mv.tags["pipeline_run_id"] == "pipeline-run-1"
    assert mv.tags["kfp_run_id"] == "kfp-0f3a" and len(mv.tags["git_commit"]) == 40
    with connect(settings, "read run") as registry:
        run_tags = registry.client.get_run(first["run_id"]).data.tags
    assert run_tags["kfp_run_id"] == "kfp-0f3a" and run_tags["source_uri"] == good.lineage.source_uri
    assert mv.tags["gate_verdict"] == "passed"

    # the published bundle downloads back with the registered hash and the registry version
    local = download_bundle(s3, first["bundle_uri"], tmp_path)
    assert bundle_digest(local)[0] == mv.tags["bundle_sha256"]
    assert read_metadata(local).registry_version == "1"
    # nothing left in staging
    loc = parse_s3(settings.model_store_uri + "/.staging/")
    assert not list(s3.client().list_objects(loc.bucket, prefix=loc.key, recursive=True))

    # MLflow's artifacts went through the server into the same object store
    stored = [
        o.object_name for o in s3.client().list_objects(ARTIFACT_BUCKET, prefix="mlflow/", recursive=True)
    ]
    assert any(name.endswith(f"{first['run_id']}/artifacts/bundle/model.onnx") for name in stored)
    assert any(name.endswith("/artifacts/MLmodel") for name in stored)  # the sklearn LoggedModel
    shown = show_version(settings, "1")
    assert {"report/report.html", "profile/data_profile.json", "evaluation/metrics.json"} <= set(
        shown["artifacts"]
    )

    # the serving helper resolves models:/NAME@champion through MLflow's REST API and our tag
    from serving.storage import local_bundle

    with local_bundle(f"models:/{settings.registered_model}@champion", settings) as served:
        assert bundle_digest(served)[0] == mv.tags["bundle_sha256"]

    # `make run` a second time: compared against the first champion on the same rows, and says so
    second = register_run(good, settings, run_id="pipeline-run-2")
    assert second["compared_against_champion"]["champion_version"] == "1"
    assert second["message"].startswith("Compared against champion v1 re-scored on the ")
    assert "test rows neither model trained on" in second["message"]
    assert aliases(settings)["champion"] == "2"


def test_worse_model_fails_gate_then_promote_and_rollback(good, worse, mediocre, any_settings):
    settings = any_settings
    register_run(good, settings)  # v1 champion
    history_before = audit_events(settings)
    failed = register_run(worse, settings)  # v2
    assert failed["gate"]["verdict"] == "failed"
    assert any("vs champion v1" in reason for reason in failed["gate"]["reasons"])
    assert aliases(settings) == {"champion": "1", "challenger": "1"}
    assert audit_events(settings) == history_before
    tags = model_version(settings, "2").tags
    assert tags["gate_verdict"] == "failed" and json.loads(tags["gate_reasons"])

    register_run(mediocre, settings, promote=False, gate=_tolerant())  # v3 challenger
    assert aliases(settings) == {"champion": "1", "challenger": "3"}
    promote(settings, "3", reason="canary healthy for 30 min")
    assert aliases(settings)["champion"] == "3"
    rollback(settings, reason="error budget burn")
    assert aliases(settings)["champion"] == "1"
    moves = [(e.alias, e.from_version, e.to_version, e.reason) for e in audit_events(settings)]
    assert moves[-2:] == [
        ("champion", "1", "3", "canary healthy for 30 min"),
        ("champion", "3", "1", "error budget burn"),
    ]
    rows = {r["version"]: r for r in list_versions(settings)}
    assert rows["1"]["aliases"] == ["champion"] and rows["2"]["gate"] == "failed"
    assert rows["3"]["aliases"] == ["challenger"]
    assert [e["to_version"] for e in show_version(settings, "3")["promotion_history"]] == ["3", "3", "1"]


def _tolerant() -> GateConfig:
    return GateConfig(max_regression=0.1)


def test_object_store_stopped_mid_run_leaves_registry_as_it_was(good, s3, mlflow_server, tmp_path):
    store = start_s3_server(tmp_path / "model-store")
    try:
        env = {
            **server_env(s3, mlflow_server.url, tmp_path / "home"),
            "CHURN_S3_ENDPOINT_URL": store.endpoint,
        }
        settings = load_settings(env)
        register_run(good, settings)  # v1 champion, published to the dedicated store
        before = (version_numbers(settings), aliases(settings))

        def kill_store_once_registered(line: str) -> None:
            if "publishing bundle" in line:  # version created, bundle staged: worst moment
                store.stop(grace_s=0)

        with pytest.raises(StorageError, match=store.endpoint.replace(".", r"\.")):
            register_run(good, settings, progress=kill_store_once_registered)
        assert (version_numbers(settings), aliases(settings)) == before  # the new version was undone

        store.start()  # same ports, same data
        half = parse_s3(f"{settings.model_store_uri}/2/")
        assert not list(store.client().list_objects(half.bucket, prefix=half.key, recursive=True))
        again = register_run(good, settings)
        assert again["version"] == "3"  # v2 was created and deleted; numbers are never reused
        assert again["compared_against_champion"]["champion_version"] == "1"
        assert aliases(settings) == {"champion": "3", "challenger": "3"}
    finally:
        store.stop(grace_s=0)
    # the launcher also removed the gRPC sockets SeaweedFS leaves in the system temp folder
    ports = set(store.ports.values())
    leftovers = Path(tempfile.gettempdir()).glob("seaweedfs-*-grpc-*.sock")
    assert [p for p in leftovers if int(p.stem.rsplit("-", 1)[-1]) in ports] == []


def test_mlflow_server_down_gives_clear_error_and_registry_survives_restart(good, s3, tmp_path):
    server = start_mlflow_server(tmp_path / "mlflow", f"s3://{ARTIFACT_BUCKET}/down-test", s3_env=s3.env)
    try:
        settings = load_settings(server_env(s3, server.url, tmp_path / "home"))
        register_run(good, settings)  # v1 champion
        server.stop()
        with pytest.raises(RegistryError, match=f"MLflow tracking server {server.url}: connect failed"):
            register_run(good, settings)

        # down in the middle of the run: after its MLflow run was logged, before the version
        server.start()

        def stop_server_before_version(line: str) -> None:
            if line.startswith("staging bundle"):
                server.stop()

        with pytest.raises(RegistryError, match=f"{server.url}: staging bundle failed"):
            register_run(good, settings, progress=stop_server_before_version)

        server.start()  # same port, same database: everything as it was, audit trail included
        assert version_numbers(settings) == ["1"] and aliases(settings) == {
            "champion": "1",
            "challenger": "1",
        }
        events = audit_events(settings)
        assert [(e.alias, e.to_version) for e in events] == [("challenger", "1"), ("champion", "1")]
        assert register_run(good, settings)["champion_after"] == "2"  # re-running succeeds
    finally:
        server.stop()


def test_two_runs_finishing_at_once_keep_aliases_consistent(good, mediocre, s3, any_mlflow_server, tmp_path):
    """Champion v1 = mediocre; A = good and B = mediocre register at once (barrier-synchronised).

    Both gates ran against v1 and pass. Whichever moves ``champion`` second finds it moved and
    re-gates against the new champion: B cannot beat A (beyond tolerance), A beats B. So in
    either order the final champion is A, and every champion move in the audit trail starts
    from the version the previous move ended on (no lost update).
    """
    env = server_env(s3, any_mlflow_server.url, tmp_path / "home")
    settings = load_settings(env)
    register_run(mediocre, settings)  # v1
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    workers = [
        ctx.Process(target=register_in_child, args=(env, bundle, name, barrier, results))
        for name, bundle in (("A", good), ("B", mediocre))
    ]
    for w in workers:
        w.start()
    outcome = {}
    try:
        for _ in workers:
            name, status, payload = results.get(timeout=240)
            assert status == "ok", payload
            outcome[name] = payload
    finally:
        barrier.abort()  # a child that failed early must not leave the other waiting
        for w in workers:
            w.join(30)
            if w.is_alive():
                w.terminate()

    a, b = outcome["A"], outcome["B"]
    assert a["compared_against_champion"]["champion_version"] == "1"
    assert b["compared_against_champion"]["champion_version"] == "1"
    assert aliases(settings)["champion"] == a["version"]
    champion_moves = [(e.from_version, e.to_version) for e in audit_events(settings) if e.alias == "champion"]
    for (_, previous_to), (next_from, _) in itertools.pairwise(champion_moves):
        assert next_from == previous_to, champion_moves
    if b["aliases_moved"].get("champion"):  # B won the lock first, then A re-gated against B
        assert a["regated_against"]["version"] == b["version"] and a["aliases_moved"]["champion"]
        assert champion_moves[-2:] == [("1", b["version"]), (b["version"], a["version"])]
    else:  # A first; B re-gated against A, failed, and left the alias
        assert b["regated_against"]["version"] == a["version"] and "re-gate failed" in b["note"]
        assert champion_moves[-1] == ("1", a["version"])
        tags = model_version(settings, b["version"]).tags
        assert "re-gate failed" in tags["promotion"]


def test_promotion_lock_admits_one_holder_at_a_time_under_contention(any_settings):
    """Threads take the lock over and over: never two inside, no acquisition fails.

    The lock is the unique name of a registered model. Under contention the server can answer a
    create with "does not exist" (the name was taken at the insert and released before the
    server re-read it): that is a released lock, not an error. Hold times are short so the
    release-while-waiting race happens many times per run.
    """
    threads, rounds = 4, 5
    inside, most, done = 0, 0, []
    guard = threading.Lock()

    def take_turns(worker: int) -> None:
        nonlocal inside, most
        with connect(any_settings, f"lock worker {worker}") as registry:
            for turn in range(rounds):
                with promotion_lock(registry, owner=f"worker {worker}", timeout_s=60, heartbeat_s=0.5):
                    with guard:
                        inside += 1
                        most = max(most, inside)
                    time.sleep(0.02)
                    with guard:
                        inside -= 1
                        done.append((worker, turn))

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(take_turns, w) for w in range(threads)]:
            future.result()  # re-raises a worker's failure
    assert most == 1 and len(done) == threads * rounds
    with connect(any_settings, "read lock") as registry:  # released at the end
        lock_name = f"{registry.name}{LOCK_SUFFIX}"
        assert not registry.client.search_registered_models(f"name = '{lock_name}'")


def test_concurrent_compare_and_set_moves_an_alias_once(good, any_settings):
    """Threads race to set the unset alias ``canary``, half to v1, half to v2: exactly one move wins.

    Same-target losers find it already there, the others a conflict; one audit event records it.
    """
    register_run(good, any_settings)  # v1 champion
    register_run(good, any_settings, promote=False)  # v2
    targets = ["1", "2"] * 3
    with connect(any_settings, "race on canary") as registry:

        def move(target: str):
            return move_alias(registry, "canary", target, reason=f"to {target}", via="test", expected=None)

        with ThreadPoolExecutor(len(targets)) as pool:
            moves = list(pool.map(move, targets))
        events = [e for e in history(registry) if e.alias == "canary"]
    winners = [m for m in moves if m.moved]
    assert len(winners) == 1 and winners[0].from_version is None
    won = winners[0].to_version
    assert all(m.conflict == (m.to_version != won) for m in moves if not m.moved)
    assert aliases(any_settings)["canary"] == won
    assert [(e.from_version, e.to_version) for e in events] == [(None, won)]
    stale = move_alias_on(any_settings, "canary", "2" if won == "1" else "1", expected=None)
    assert stale.conflict and aliases(any_settings)["canary"] == won


def move_alias_on(settings, alias: str, version: str, expected: str | None) -> AliasMove:
    """One ``move_alias`` on its own connection (a caller whose view of ``alias`` is ``expected``)."""
    with connect(settings, f"move {alias}") as registry:
        return move_alias(registry, alias, version, reason="stale view", via="test", expected=expected)


def test_a_reason_too_long_for_the_audit_trail_is_refused_before_anything_moves(good, any_settings):
    """An audit event is one registered-model tag: at most 5000 characters in a PostgreSQL store.

    SQLite does not enforce the column length, so only PostgreSQL would fail -- after the alias
    moved, leaving a move without its audit event. Both stores refuse it up front, by field.
    """
    register_run(good, any_settings)  # v1 champion
    before = (aliases(any_settings), audit_events(any_settings))
    with pytest.raises(RegistryError, match=r"reason: 6000 characters.*more than the 5000"):
        promote(any_settings, "1", alias="canary", reason="r" * 6000)
    assert (aliases(any_settings), audit_events(any_settings)) == before
    moved = promote(any_settings, "1", alias="canary", reason="r" * 4000)  # what fits is stored whole
    assert moved["moved"] and audit_events(any_settings)[-1].reason == "r" * 4000


def test_real_pipeline_artifacts_register_against_servers(trained_run, settings):
    """The shared fixture's artifacts (XGBoost, real evaluate, report, profile) as the pipeline has them."""
    out = register_run(trained_run, settings, run_id="fixture")
    assert out["gate"]["passed"], out["gate"]
    evaluated = json.loads(trained_run.artifacts.evaluation.read_text())
    # the gate's ONNX re-score of the candidate agrees with evaluate's scikit-learn numbers
    assert out["gate"]["candidate"]["roc_auc"] == pytest.approx(evaluated["roc_auc"], abs=1e-5)
    with connect(settings, "read run") as registry:
        client = registry.client
        run = client.get_run(out["run_id"])
        logged = client.get_logged_model(
            client.get_model_version(out["registered_model"], "1").source[len("models:/") :]
        )
        metadata_file = client.download_artifacts(out["run_id"], "bundle/metadata.json")  # proxied download
    for name in ("roc_auc", "pr_auc", "log_loss", "brier", "threshold", "precision", "recall", "f1"):
        assert run.data.metrics[name] == pytest.approx(evaluated[name])
    assert run.data.tags["source_uri"] == trained_run.lineage.source_uri
    assert json.loads(Path(metadata_file).read_text())["data_hash"] == trained_run.lineage.data_hash
    assert logged.source_run_id == out["run_id"]
