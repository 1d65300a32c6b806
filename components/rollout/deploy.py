"""The pipeline's deploy step: after ``register``, roll the registered version out (in a cluster).

- The gate did not pass: nothing is deployed (the version stays a candidate).
- Under ``kfp.local`` (no Kubernetes: :attr:`Settings.in_cluster` is false) there is no
  InferenceService to patch: promotion is what the register step did with ``promote=True``, as
  ``churn run`` always did; this step reports it.
- In a cluster (the pipeline pod's service account, ``pipeline-runner``): the step records the
  serving image tag of the CD-built image it runs in (``CHURN_IMAGE_TAG``, the tag CD pushed for
  both images of this commit) on the version, then drives the canary rollout
  (:class:`~components.rollout.driver.Driver`, the Prometheus analysis) to promoted or rolled back.
  The whole plan must finish within ``timeout_s``; past it the canary is rolled back (a pipeline
  never leaves a canary unattended).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from components.config import ConfigError, Settings
from components.rollout.driver import Driver, RolloutError, prometheus_analysis, record_image_tag
from components.rollout.kube import InferenceServices, api_client
from components.rollout.plan import RolloutPlan

NAMESPACE, NAME = "churn", "churn"


def deploy_registered(
    registration: Path,
    settings: Settings,
    plan: RolloutPlan,
    *,
    timeout_s: float,
    say: Callable[[str], None] = print,
    namespace: str = NAMESPACE,
    name: str = NAME,
    api=None,
) -> dict:
    """Deploy what ``registration`` (the register step's summary JSON) registered; a summary dict.

    ``api``: a ``kubernetes`` ApiClient (default: the pod's service account, :func:`.kube.api_client`).
    """
    summary = json.loads(Path(registration).read_text())
    version, model = str(summary["version"]), summary["registered_model"]
    verdict = summary["gate"]["verdict"]
    out = {"registered_model": model, "version": version, "gate": verdict}
    if verdict != "passed":
        return {**out, "action": "none", "message": f"gate {verdict}: v{version} not deployed"}
    if not settings.in_cluster:
        champion = summary.get("champion_after")
        done = f"champion is v{champion}" if champion else "no champion"
        message = f"kfp.local: no cluster to roll out to; {done} (the register step's promote)"
        return {**out, "action": "local", "champion": champion, "message": message}
    if summary.get("champion_after") == version:
        raise RolloutError(
            f"{model} v{version}: the register step already made it champion (promote=true) before it "
            "served any traffic; on a cluster submit with promote=false (the default) so the rollout "
            "judges it first"
        )
    if not settings.image_tag:
        raise ConfigError(
            "CHURN_IMAGE_TAG not set in this pod: the components image was not built by `make "
            "images-build`, so which serving image goes with this version is unknown"
        )
    if not settings.prometheus_url:
        raise ConfigError(
            "CHURN_PROMETHEUS_URL not set in this pod: add it to the churn-platform ConfigMap "
            "(kubectl apply -k manifests/overlays/<env>)"
        )
    settings = replace(settings, registered_model=model)
    record_image_tag(settings, version, settings.image_tag)
    deadline = time.time() + timeout_s  # on the driver's clock
    driver = Driver(
        settings,
        InferenceServices(api or api_client(timeout_s=settings.io_timeout_s), namespace, name),
        prometheus_analysis(settings.prometheus_url, namespace=namespace),
        say=say,
        on_verdict=lambda v: say(v.table()),
        deadline=deadline,
    )
    state = driver.start(version, plan)
    return {
        **out,
        "action": "rollout",
        "phase": state.phase,
        "message": f"v{version}: {state.phase} ({state.reason})",
    }
