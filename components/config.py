"""Runtime configuration: every environment variable the project reads, read here only.

Everything has a local default so `make run` needs no configuration at all. Like the schema,
this module imports only the standard library (the serving image ships it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from components.errors import ChurnError

PACKAGE = "churn-mlops"
# Set on every step of the compiled pipeline (pipelines/pipeline.py) to the ConfigMap its platform
# configuration comes from; a step in a pod without that configuration must stop, not use SQLite.
PLATFORM_CONFIG_ENV = "CHURN_PLATFORM_CONFIG"
PLATFORM_CONFIGMAP = "churn-platform"
# Keys of the churn-platform ConfigMap a pipeline step in a cluster cannot run without.
REQUIRED_IN_CLUSTER = ("MLFLOW_TRACKING_URI", "CHURN_MODEL_STORE_URI")


class ConfigError(ChurnError, ValueError):
    """A parameter or environment setting is unusable; the message names it and the value."""


def package_version() -> str:
    """The project's version: pyproject.toml is its one source."""
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0+unknown"


# feature_repo/ configurations: local files + SQLite (embedded) or S3 + Redis (production).
FEATURE_STORE_ENVS: tuple[str, ...] = ("embedded", "production")


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Build it with :func:`load_settings`, pass it down explicitly."""

    home: Path
    s3_endpoint_url: str
    s3_access_key: str | None
    s3_secret_key: str | None
    s3_session_token: str | None
    s3_region: str | None
    # The pod's IRSA web identity (EKS sets both) and where to exchange it / find instance metadata.
    aws_role_arn: str | None
    aws_web_identity_token_file: str | None
    aws_role_session_name: str | None
    sts_endpoint_url: str | None
    ec2_metadata_endpoint_url: str | None
    mlflow_tracking_uri: str
    mlflow_artifact_root: str
    experiment: str
    registered_model: str
    model_store_uri: str
    components_image: str
    # The tag both images of this build carry (<version>-<git sha>, `make images-build` bakes it
    # into the components image); None outside a CD-built image.
    image_tag: str | None
    environment: str
    # Where the rollout's canary analysis queries Prometheus (in a cluster: the churn-platform
    # ConfigMap's value, the Prometheus Operator's `prometheus-operated` Service).
    prometheus_url: str | None
    kubeconfig: str | None  # KUBECONFIG as kubectl reads it (default ~/.kube/config)
    in_cluster: bool  # running in a Kubernetes pod (KUBERNETES_SERVICE_HOST); kfp.local runs are not
    io_timeout_s: float
    io_retries: int
    # Feature store (docs/feature-store.md): which feature_repo/ configuration, where its registry,
    # online store and offline tables live.
    feature_store_env: str
    feature_repo: Path  # the feature_repo/ folder (definitions + YAML per environment)
    feature_home: Path
    feature_data_uri: str
    feature_registry: str
    redis_connection: str
    retrain_data_uri: str  # fresh labelled data an automatic retrain trains on (components/retrain.py)

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the environment (or ``env``) once into a :class:`Settings`.

    A pipeline step in a pod (``KUBERNETES_SERVICE_HOST`` and ``CHURN_PLATFORM_CONFIG`` set) gets
    no local default for MLflow or the model store: a missing one is a :class:`ConfigError`
    naming it. Other pods (the predictor, CI runners) and laptops keep the defaults.
    """
    env = os.environ if env is None else env
    _require_platform_config(env)
    home = Path(env.get("CHURN_HOME") or Path.cwd() / ".churn").resolve()
    feature_home = Path(env.get("CHURN_FEATURE_HOME") or home / "features").resolve()
    endpoint = (
        env.get("CHURN_S3_ENDPOINT_URL")
        or env.get("AWS_ENDPOINT_URL_S3")
        or env.get("AWS_ENDPOINT_URL")
        or env.get("MLFLOW_S3_ENDPOINT_URL")
        or "https://s3.amazonaws.com"
    )
    return Settings(
        home=home,
        s3_endpoint_url=endpoint,
        s3_access_key=env.get("AWS_ACCESS_KEY_ID") or None,
        s3_secret_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
        s3_session_token=env.get("AWS_SESSION_TOKEN") or None,
        s3_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        aws_role_arn=env.get("AWS_ROLE_ARN") or None,
        aws_web_identity_token_file=env.get("AWS_WEB_IDENTITY_TOKEN_FILE") or None,
        aws_role_session_name=env.get("AWS_ROLE_SESSION_NAME") or None,
        sts_endpoint_url=env.get("AWS_ENDPOINT_URL_STS") or env.get("AWS_ENDPOINT_URL") or None,
        ec2_metadata_endpoint_url=env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or None,
        mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}",
        mlflow_artifact_root=env.get("CHURN_MLFLOW_ARTIFACT_ROOT") or (home / "mlartifacts").as_uri(),
        experiment=env.get("CHURN_EXPERIMENT", "churn"),
        registered_model=env.get("CHURN_REGISTERED_MODEL", "churn-classifier"),
        model_store_uri=env.get("CHURN_MODEL_STORE_URI") or str(home / "models"),
        components_image=env.get("CHURN_COMPONENTS_IMAGE")
        or f"ghcr.io/churn-mlops/components:{package_version()}",
        image_tag=env.get("CHURN_IMAGE_TAG") or None,
        environment=env.get("CHURN_ENV") or "dev",
        prometheus_url=env.get("CHURN_PROMETHEUS_URL") or None,
        kubeconfig=env.get("KUBECONFIG") or None,
        in_cluster=bool(env.get("KUBERNETES_SERVICE_HOST")),
        io_timeout_s=_number(env, "CHURN_IO_TIMEOUT_S", "30", float),
        io_retries=_number(env, "CHURN_IO_RETRIES", "3", int),
        feature_store_env=_choice(env, "CHURN_FEATURE_STORE", FEATURE_STORE_ENVS),
        feature_repo=Path(
            env.get("CHURN_FEATURE_REPO") or Path(__file__).resolve().parents[1] / "feature_repo"
        ),
        feature_home=feature_home,
        feature_data_uri=env.get("CHURN_FEATURE_DATA") or str(feature_home / "data"),
        feature_registry=env.get("CHURN_FEATURE_REGISTRY") or str(feature_home / "registry.db"),
        redis_connection=env.get("CHURN_REDIS_CONNECTION") or "127.0.0.1:6379",
        retrain_data_uri=env.get("CHURN_RETRAIN_DATA_URI", ""),
    )


def _require_platform_config(env: Mapping[str, str]) -> None:
    if not (env.get("KUBERNETES_SERVICE_HOST") and env.get(PLATFORM_CONFIG_ENV)):
        return
    missing = [name for name in REQUIRED_IN_CLUSTER if not env.get(name)]
    if missing:
        raise ConfigError(
            f"{', '.join(missing)} not set in this pipeline pod: add {' and '.join(missing)} to the "
            f"ConfigMap {env[PLATFORM_CONFIG_ENV]} in the pipeline's namespace (kubectl apply -k "
            "manifests/overlays/<env>); a cluster run never falls back to the local SQLite "
            "registry or model folder"
        )


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """``env[name]`` (default: the first of ``choices``); anything else is a ConfigError naming it."""
    value = env.get(name) or choices[0]
    if value not in choices:
        raise ConfigError(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return value


def _number(env: Mapping[str, str], name: str, default: str, kind: type):
    value = env.get(name, default)
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(
            f"{name} must be {'an integer' if kind is int else 'a number'}, got {value!r}"
        ) from None
