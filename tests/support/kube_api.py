"""A recording fake of the Kubernetes API server for InferenceServices: THE one fake of the suite.

No Kubernetes API server can run on these machines (no kind, k3s, kube-apiserver or envtest
binary installs here, no container engine: see TRAPS.md), so the rollout tests talk to this
small real HTTP server on 127.0.0.1 through the real ``kubernetes`` Python client. It serves
GET and merge-PATCH (RFC 7386, what ``CustomObjectsApi.patch_namespaced_custom_object`` sends) of
``serving.kserve.io/v1beta1`` InferenceServices and:

- records every request (method, path, content type, body) so a test can assert the exact patch
  sequence;
- validates every patch body AND every object it would store against the kserve SDK's
  ``V1beta1InferenceService`` model with unknown fields rejected (the walker of
  ``tests/infra/openapi_models.py`` the manifest tests use); an invalid one is answered 422 and
  not stored, as the API server's structural schema would;
- plays KServe's controller in Knative mode just enough for a driver to watch: a change of the
  predictor (other than ``canaryTrafficPercent``) creates a revision; ``status`` gets
  ``observedGeneration``, a Ready condition and the traffic split between the latest and the
  previously rolled-out revision (tags ``latest``/``prev``), as KServe reports it;
- can be told to cut a request short, to test interruptions: ``cut(N)`` applies the N-th PATCH
  from then on and closes the connection without an answer (the driver died right after the API
  server acted); ``fail_revision=True`` makes new revisions report Ready=False.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.infra import openapi_models

PATH = re.compile(r"^/apis/serving\.kserve\.io/v1beta1/namespaces/([^/]+)/inferenceservices/([^/?]+)")
MERGE_PATCH = "application/merge-patch+json"


def merge_patch(target, patch):
    """RFC 7386: objects merge key by key, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


@dataclass
class Request:
    method: str
    path: str
    content_type: str | None
    body: dict | None


@dataclass
class FakeKubeApi:
    """Start with ``with FakeKubeApi() as api:``; ``api.url`` is the API server's address."""

    objects: dict[tuple[str, str], dict] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    cut_after_patch: int | None = None
    fail_revision: bool = False
    rejected: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._patches = 0
        self._revisions: dict[tuple[str, str], int] = {}

    # ---- test side -----------------------------------------------------------------------------
    def add(self, obj: dict) -> None:
        """Store ``obj`` as if applied; it becomes Ready on revision 1, serving 100 %."""
        problems = openapi_models.errors(obj, "V1beta1InferenceService")
        assert problems == [], problems
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        obj = copy.deepcopy(obj)
        obj["metadata"]["generation"] = 1
        self._revisions[key] = 0
        self._reconcile(key, obj, previous=None)
        self.objects[key] = obj

    def cut(self, after: int | None) -> None:
        """Cut the ``after``-th PATCH from now short (see the module docstring); None: no more cuts."""
        self.cut_after_patch = None if after is None else self._patches + after

    def get(self, namespace: str, name: str) -> dict:
        return copy.deepcopy(self.objects[(namespace, name)])

    def patches(self) -> list[dict]:
        return [r.body for r in self.requests if r.method == "PATCH"]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeKubeApi:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                fake._handle(self, "GET")

            def do_PATCH(self):
                fake._handle(self, "PATCH")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    # ---- server side ---------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        with self._lock:
            self.requests.append(Request(method, handler.path, handler.headers.get("Content-Type"), body))
            match = PATH.match(handler.path)
            if not match:
                return _answer(handler, 404, _status(404, f"no route {handler.path}"))
            key = match.groups()
            if key not in self.objects:
                return _answer(handler, 404, _status(404, f'inferenceservices "{key[1]}" not found'))
            if method == "GET":
                return _answer(handler, 200, self.objects[key])
            if handler.headers.get("Content-Type") != MERGE_PATCH:
                return _answer(handler, 415, _status(415, "only merge patches are served"))
            problems = _patch_problems(body)
            updated = merge_patch(self.objects[key], body)
            problems += _object_problems(updated)
            if problems:
                self.rejected += problems
                return _answer(handler, 422, _status(422, "; ".join(problems)))
            self._patches += 1
            previous = self.objects[key]
            if updated.get("spec") != previous.get("spec"):
                updated["metadata"]["generation"] = previous["metadata"]["generation"] + 1
            self._reconcile(key, updated, previous)
            self.objects[key] = updated
            if self.cut_after_patch == self._patches:
                handler.close_connection = True
                handler.connection.close()  # acted, but the caller never hears back
                return None
            return _answer(handler, 200, updated)

    def _reconcile(self, key, obj: dict, previous: dict | None) -> None:
        """KServe's controller in Knative mode, reduced to what a rollout driver observes."""
        predictor = obj["spec"]["predictor"]
        share = predictor.get("canaryTrafficPercent")
        status = copy.deepcopy(previous.get("status", {})) if previous else {}
        component = status.setdefault("components", {}).setdefault("predictor", {})

        def template(o):
            return {k: v for k, v in o["spec"]["predictor"].items() if k != "canaryTrafficPercent"}

        new_revision = previous is None or template(previous) != template(obj)
        if new_revision:
            self._revisions[key] += 1
            name = f"{key[1]}-predictor-{self._revisions[key]:05d}"
            component["latestCreatedRevision"] = name
            if not self.fail_revision or previous is None:
                component["latestReadyRevision"] = name
        latest = component["latestCreatedRevision"]
        rolled = component.get("latestRolledoutRevision")
        if share is None or share == 100 or rolled is None or rolled == latest:
            if rolled != latest:
                component["previousRolledoutRevision"] = rolled
            component["latestRolledoutRevision"] = latest
            traffic = [{"revisionName": latest, "percent": 100, "latestRevision": True, "tag": "latest"}]
        else:
            traffic = [
                {"revisionName": latest, "percent": share, "latestRevision": True, "tag": "latest"},
                {"revisionName": rolled, "percent": 100 - share, "latestRevision": False, "tag": "prev"},
            ]
        component["traffic"] = [t for t in traffic if t["percent"] > 0 or t["tag"] == "latest"]
        failed = self.fail_revision and component.get("latestReadyRevision") != latest
        status["observedGeneration"] = obj["metadata"]["generation"]
        status["conditions"] = [
            {"type": "Ready", "status": "False", "reason": "RevisionFailed",
             "message": f"Revision {latest} failed with message: container exited (1)"}
            if failed
            else {"type": "Ready", "status": "True"}
        ]  # fmt: skip
        obj["status"] = status


def _object_problems(obj: dict) -> list[str]:
    """The object as a client wrote it (status is this fake's own controller's, and the SDK lacks
    models of some Knative status types) against V1beta1InferenceService."""
    return openapi_models.errors({k: v for k, v in obj.items() if k != "status"}, "V1beta1InferenceService")


def _patch_problems(body) -> list[str]:
    if not isinstance(body, dict):
        return ["patch body: expected a JSON object"]
    if "status" in body:
        return ["patch body: status is the controller's; a client patch must not write it"]
    # The body itself must be a (partial) InferenceService: nulls delete, so check without them.
    return openapi_models.errors(_without_nulls(body), "V1beta1InferenceService")


def _without_nulls(value):
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def _status(code: int, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}


def _answer(handler: BaseHTTPRequestHandler, code: int, body: dict) -> None:
    data = json.dumps(body).encode()
    handler.send_response(code)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
