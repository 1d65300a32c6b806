"""Environment of a pipeline run against the test servers (remote MLflow + S3 model store)."""

from __future__ import annotations

import uuid

ARTIFACT_BUCKET = "mlflow-artifacts"
MODEL_BUCKET = "churn-models"


def server_env(s3, tracking_uri: str, home, name: str | None = None) -> dict[str, str]:
    """Environment of a pipeline run against real servers: remote MLflow + S3 model store."""
    name = name or f"churn-{uuid.uuid4().hex[:8]}"
    return {
        **s3.env,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "CHURN_HOME": str(home),
        "CHURN_EXPERIMENT": "churn-integration",
        "CHURN_REGISTERED_MODEL": name,
        "CHURN_MODEL_STORE_URI": f"s3://{MODEL_BUCKET}/{name}/churn/models",
        "CHURN_IO_RETRIES": "1",
        "CHURN_IO_TIMEOUT_S": "5",
    }
