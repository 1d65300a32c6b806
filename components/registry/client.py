"""The one way the project talks to MLflow: a bounded, preflighted client with errors mapped.

``with connect(settings, "list versions") as registry:`` gives a :class:`Registry` (an
``MlflowClient`` on the configured tracking + registry URI, no process-global MLflow state) after
one cheap preflight call, so a dead server fails at once and by name. Any failure inside the block
becomes a :class:`RegistryError` naming the endpoint and the step (``registry.step(...)`` names a
finer one); the project's own errors pass through unchanged.

Bounds: MLflow's defaults (7 retries, backoff factor 2, 120 s timeout) turn a dead server into a
~4-minute hang. mlflow 3.17 reads ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` / ``_TIMEOUT`` /
``_BACKOFF_FACTOR`` from ``os.environ`` at every request (``mlflow.environment_variables``, read
in ``mlflow.utils.rest_utils.http_request``), and neither ``MlflowClient``, its REST stores nor the
artifact repositories take them as arguments: the environment is the only lever. So this module,
and only this one, sets them: only the variables the user has not set, only while an operation
runs, removed afterwards (nested and concurrent uses share one setting).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from components.config import Settings
from components.errors import ChurnError


class RegistryError(ChurnError, RuntimeError):
    """Tracking, registry or model store failed; the message names the endpoint and the step."""


def is_missing(exc: BaseException) -> bool:
    """MLflow says the thing asked for does not exist (model, version, alias, lock)."""
    code = getattr(exc, "error_code", None)
    # An unknown alias is INVALID_PARAMETER_VALUE "Registered model alias ... not found" in 3.17.
    return code == "RESOURCE_DOES_NOT_EXIST" or (
        code == "INVALID_PARAMETER_VALUE" and "not found" in str(exc)
    )


def already_exists(exc: BaseException) -> bool:
    """MLflow refused to create something because that name is taken."""
    return getattr(exc, "error_code", None) == "RESOURCE_ALREADY_EXISTS"


def endpoint(settings: Settings) -> str:
    """The tracking endpoint as error messages name it."""
    uri = settings.mlflow_tracking_uri
    return f"MLflow tracking server {uri}" if uri.startswith("http") else f"MLflow store {uri}"


class Registry:
    """An ``MlflowClient`` for ``settings.registered_model``; build it with :func:`connect`."""

    def __init__(self, settings: Settings):
        from mlflow import MlflowClient

        if settings.mlflow_tracking_uri.startswith("sqlite:"):
            settings.home.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.name = settings.registered_model
        self.endpoint = endpoint(settings)
        self.client = MlflowClient(
            tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri
        )

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        """Turn any failure inside into a :class:`RegistryError` naming the endpoint and ``what``."""
        try:
            yield
        except ChurnError:
            raise
        except Exception as exc:  # MlflowException, requests/urllib3 errors, sqlite errors...
            raise RegistryError(f"{self.endpoint}: {what} failed: {exc}") from exc

    def alias_version(self, alias: str) -> str | None:
        """The version ``alias`` points at, or None (also when the model does not exist yet)."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(self.name, alias).version)
        except MlflowException as exc:
            if is_missing(exc):
                return None
            raise

    def get_version(self, version: str):
        """A model version of the registered model; :class:`RegistryError` if it is not there."""
        from mlflow.exceptions import MlflowException

        if not str(version).isdigit():
            raise RegistryError(f"VERSION must be a version number, got {version!r}")
        try:
            return self.client.get_model_version(self.name, str(version))
        except MlflowException as exc:
            if is_missing(exc):
                raise RegistryError(f"{self.name} v{version}: not found ({exc.error_code})") from exc
            raise

    @contextmanager
    def global_tracking_uri(self) -> Iterator[None]:
        """Point MLflow's process-global tracking URI at ours for one call, then restore it.

        mlflow 3.17's database registry store resolves a ``models:/<id>`` version source through
        ``MlflowClient()`` -- the global URI, not the client's (a TODO in its code); without this
        it looks in ``./mlflow.db``. A server resolves it itself, so only local stores need this.
        """
        if self.settings.mlflow_tracking_uri.startswith("http"):
            yield
            return
        import mlflow
        from mlflow.tracking._tracking_service import utils

        with _GLOBAL_URI_LOCK:
            old_uri, old_env = utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
            mlflow.set_tracking_uri(self.settings.mlflow_tracking_uri)
            try:
                yield
            finally:
                mlflow.set_tracking_uri(old_uri)
                os.environ.pop("MLFLOW_TRACKING_URI", None)
                if old_env is not None:
                    os.environ["MLFLOW_TRACKING_URI"] = old_env


@contextmanager
def connect(settings: Settings, step: str) -> Iterator[Registry]:
    """A bounded :class:`Registry` after a preflight call; failures inside name ``step``."""
    with _bounded(settings):
        registry = Registry(settings)
        with registry.step("connect"):
            registry.client.search_experiments(max_results=1)
        with registry.step(step):
            yield registry


_GLOBAL_URI_LOCK = threading.Lock()
_BOUND_LOCK = threading.Lock()
_bound_depth = 0
_bound_added: list[str] = []


def _bounds(settings: Settings) -> dict[str, str]:
    return {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(settings.io_retries),
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(int(max(1, settings.io_timeout_s))),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",  # mlflow parses it as an int
        # Only used when the client writes s3:// artifacts itself (non-proxied artifact root).
        "AWS_MAX_ATTEMPTS": str(settings.io_retries + 1),
        "AWS_RETRY_MODE": "standard",
        "MLFLOW_S3_ENDPOINT_URL": settings.s3_endpoint_url,
    }


@contextmanager
def _bounded(settings: Settings) -> Iterator[None]:
    """Set the bounds the user left unset while any operation runs (module docstring: why env)."""
    global _bound_depth
    wanted = _bounds(settings)
    with _BOUND_LOCK:  # nested or concurrent (threads) uses: the outermost sets and clears
        if _bound_depth == 0:
            _bound_added[:] = [k for k in wanted if k not in os.environ]
            for key in _bound_added:
                os.environ[key] = wanted[key]
        _bound_depth += 1
    try:
        yield
    finally:
        with _BOUND_LOCK:
            _bound_depth -= 1
            if _bound_depth == 0:
                for key in _bound_added:
                    os.environ.pop(key, None)
