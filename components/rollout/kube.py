"""The InferenceService through the ``kubernetes`` Python client: read, merge-patch, wait for Ready.

Credentials: inside a pod the service account (``load_incluster_config``), elsewhere the
kubeconfig (``KUBECONFIG`` or ``~/.kube/config``, as kubectl). Every failure becomes a
:class:`KubeError` naming the object and what the API server said (a 403 names the verb and the
RBAC rule that is missing). Patches are JSON merge patches (RFC 7386), so re-sending one after an
interruption is harmless: the rollout is built on that.

KServe's deployment mode is read from the object itself: the ``serving.kserve.io/deploymentMode``
annotation (``Knative``; ``Serverless`` is the legacy spelling the webhook rewrites), else
``status.deploymentMode`` that the controller writes. Only Knative mode splits traffic with
``canaryTrafficPercent``; :func:`require_traffic_splitting` refuses the others with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from components.errors import ChurnError

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
TAG_ROUTING_ANNOTATION = "serving.kserve.io/enable-tag-routing"
KNATIVE, STANDARD, MODELMESH = "Knative", "Standard", "ModelMesh"
# KServe's own normalisation (pkg/constants ParseDeploymentMode): the legacy names.
_LEGACY = {"Serverless": KNATIVE, "RawDeployment": STANDARD}


class KubeError(ChurnError, RuntimeError):
    """The Kubernetes API refused or failed; the message names the object and the reason."""


class ModeError(KubeError):
    """The InferenceService's KServe mode cannot split traffic with canaryTrafficPercent."""


def api_client(
    host: str | None = None,
    *,
    retries: int = 3,
    timeout_s: float = 30.0,
    env: str | None = None,
    kubeconfig: str | None = None,
):
    """A ``kubernetes.client.ApiClient``: ``host`` (tests) without credentials, else the pod's
    service account inside a cluster, else the current context of ``kubeconfig`` (a path or
    a KUBECONFIG-style list; None: ``~/.kube/config``).

    With ``env``, a kubeconfig context must be that environment's EKS cluster (``churn-<env>``,
    what ``make kubeconfig ENV=...`` writes): a rollout never patches another environment's
    InferenceService because the shell pointed elsewhere.
    """
    from kubernetes import client, config

    configuration = client.Configuration()
    if host is not None:
        configuration.host = host
    else:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            _load_kubeconfig(configuration, env, kubeconfig)
    configuration.retries = retries
    api = client.ApiClient(configuration)
    api.churn_timeout_s = timeout_s
    return api


def cluster_name(env: str) -> str:
    """The EKS cluster of ``env`` (terraform/envs/<env>)."""
    return f"churn-{env}"


def _load_kubeconfig(configuration, env: str | None, kubeconfig: str | None) -> None:
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts(config_file=kubeconfig)
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    except (config.ConfigException, OSError) as exc:
        raise KubeError(
            f"no Kubernetes credentials: not in a pod and no usable kubeconfig ({exc}); "
            "run `make kubeconfig ENV=...` first"
        ) from exc
    if env is None:
        return
    cluster = (active or {}).get("context", {}).get("cluster", "")
    wanted = cluster_name(env)
    if cluster != wanted and not cluster.endswith(f"/{wanted}"):
        raise KubeError(
            f"--env {env}: the kubeconfig's current context {active.get('name')!r} is cluster {cluster!r}, "
            f"not {wanted}; run `make kubeconfig ENV={env}`"
        )


@dataclass
class InferenceServices:
    """One InferenceService ``namespace/name`` (KServe v1beta1) behind ``api`` (:func:`api_client`)."""

    api: object
    namespace: str
    name: str

    @property
    def ref(self) -> str:
        return f"InferenceService {self.namespace}/{self.name}"

    def _custom(self):
        from kubernetes import client

        return client.CustomObjectsApi(self.api)

    def _call(self, what: str, fn: Callable[[], dict]) -> dict:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn()
        except ApiException as exc:
            raise KubeError(f"{self.ref}: {what} refused: {_api_reason(exc)}") from exc
        except (HTTPError, OSError) as exc:
            host = self.api.configuration.host
            raise KubeError(f"{self.ref}: {what} failed: Kubernetes API {host} unreachable ({exc})") from exc

    def get(self) -> dict | None:
        """The object, or None when it does not exist."""
        from kubernetes.client.exceptions import ApiException

        def fetch() -> dict | None:
            try:
                return self._custom().get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, self.name,
                    _request_timeout=self.api.churn_timeout_s,
                )  # fmt: skip
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise

        return self._call("get", fetch)

    def require(self) -> dict:
        found = self.get()
        if found is None:
            raise KubeError(
                f"{self.ref}: not found; apply the environment's manifests first "
                "(`churn deploy render --env ENV --version N | kubectl apply -f -`)"
            )
        return found

    def patch(self, body: dict) -> dict:
        """Merge-patch the object with ``body``; returns the object as the API server stored it."""
        return self._call(
            "patch",
            lambda: self._custom().patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, self.name, body,
                _request_timeout=self.api.churn_timeout_s,
            ),
        )  # fmt: skip

    def wait_ready(
        self,
        timeout_s: float,
        *,
        poll_s: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> dict:
        """Wait until the controller has reconciled the current spec and reports Ready.

        A Ready condition of "False" on the current generation (a revision that failed) raises
        at once with the controller's message; "Unknown" keeps waiting up to ``timeout_s``.
        """
        deadline = clock() + timeout_s
        while True:
            obj = self.require()
            ready, message = readiness(obj)
            if ready is True:
                return obj
            if ready is False:
                raise KubeError(f"{self.ref}: not ready: {message}")
            if clock() >= deadline:
                raise KubeError(f"{self.ref}: not ready after {timeout_s:.0f} s ({message})")
            sleep(poll_s)


def readiness(obj: dict) -> tuple[bool | None, str]:
    """(True, ...) ready; (False, message) failed on the current spec; (None, message) still working.

    Ready means: the controller has seen this generation, its Ready condition is True, and the
    newest predictor revision is the ready one (a canary revision still starting leaves
    ``latestReadyRevision`` on the previous one while Ready can already say True).
    """
    generation = obj.get("metadata", {}).get("generation")
    status = obj.get("status") or {}
    observed = status.get("observedGeneration")
    if generation is not None and (observed is None or observed < generation):
        return None, f"generation {generation} not reconciled yet (observed {observed})"
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is None:
        return None, "no Ready condition yet"
    message = ready.get("message") or ready.get("reason") or ""
    if ready.get("status") == "False":
        return False, message or "Ready=False"
    if ready.get("status") != "True":
        return None, message or "Ready=Unknown"
    predictor = (status.get("components") or {}).get("predictor") or {}
    created, ready_revision = predictor.get("latestCreatedRevision"), predictor.get("latestReadyRevision")
    if created and created != ready_revision:
        return None, f"revision {created} not ready yet (ready: {ready_revision})"
    return True, "Ready"


def deployment_mode(obj: dict) -> str | None:
    """KServe's mode of the object, normalised as KServe does (Serverless -> Knative); None if unknown."""
    annotations = obj.get("metadata", {}).get("annotations") or {}
    mode = annotations.get(MODE_ANNOTATION) or (obj.get("status") or {}).get("deploymentMode")
    if not mode:
        return None
    return _LEGACY.get(mode, mode)


def require_traffic_splitting(obj: dict, ref: str) -> str:
    """The mode if it splits traffic with ``canaryTrafficPercent`` (Knative); else :class:`ModeError`."""
    mode = deployment_mode(obj)
    if mode == KNATIVE:
        return mode
    if mode is None:
        raise ModeError(
            f"{ref}: KServe deployment mode unknown (no {MODE_ANNOTATION} annotation, no "
            f"status.deploymentMode); set the annotation to {KNATIVE!r}: only Knative mode splits "
            "traffic with canaryTrafficPercent"
        )
    raise ModeError(
        f"{ref}: KServe deployment mode {mode!r} cannot run this canary: canaryTrafficPercent splits "
        "traffic only in Knative mode (Standard/RawDeployment before KServe 0.20 ignores it silently; "
        "0.20+'s spec.canary in Standard mode needs the Gateway API and is not supported here); "
        f"deploy the InferenceService with {MODE_ANNOTATION}: {KNATIVE}"
    )


def _api_reason(exc) -> str:
    import json

    detail = exc.reason or ""
    try:
        body = json.loads(exc.body or "{}")
        detail = body.get("message") or detail
    except (TypeError, ValueError):
        pass
    hint = ""
    if exc.status == 403:
        hint = " (the service account needs get and patch on inferenceservices.serving.kserve.io)"
    return f"HTTP {exc.status} {detail}{hint}"
