"""A recording fake of the Kubeflow Pipelines v2beta1 REST API on 127.0.0.1.

KFP's API server needs a Kubernetes cluster (Argo, MySQL, MinIO) and cannot run on one machine,
so tests of ``churn schedule`` and of retrain submission talk to this instead, through the real
``kfp.Client``. Every request body is checked field by field against the ``kfp_server_api``
OpenAPI models of the pinned kfp (unknown or misplaced fields, wrong types, bad enum values are
a 400 and recorded in :attr:`FakeKfpApi.errors`), plus the checks the real server makes that
the models cannot express: an existing experiment, a six-field cron, ``max_concurrency`` 1-10, a
pipeline spec (or version reference), and runtime parameters the spec declares.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from tests.infra.openapi_models import errors

API = "/apis/v2beta1"


class FakeKfpApi:
    """The fake server: ``experiments``, ``recurring_runs``, ``runs`` by id; ``requests`` in order."""

    def __init__(self):
        self.experiments: dict[str, dict] = {}
        self.recurring_runs: dict[str, dict] = {}
        self.runs: dict[str, dict] = {}
        self.requests: list[tuple[str, str, dict | None]] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeKfpApi:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- the API --------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict, body: dict | None) -> tuple[int, dict]:
        with self._lock:
            self.requests.append((method, path, body))
            parts = path.removeprefix(API).strip("/").split("/")
            if (method, parts) == ("GET", ["healthz"]):
                return 200, {"multi_user": False}
            if parts[0] == "experiments":
                return self._experiments(method, parts, query, body)
            if parts[0] == "recurringruns":
                return self._recurring_runs(method, parts, query, body)
            if parts[0] == "runs" and method == "POST" and len(parts) == 1:
                return self._create_run(body)
            return 404, {"error": f"no route {method} {path}"}

    def _invalid(self, body: dict | None, model: str) -> list[str]:
        return ["empty body"] if body is None else errors(body, model)

    def _refuse(self, problems: list[str]) -> tuple[int, dict]:
        self.errors += problems
        return 400, {"error": "; ".join(problems), "code": 3}

    def _experiments(self, method, parts, query, body):
        if method == "POST":
            if problems := self._invalid(body, "V2beta1Experiment") or (
                [] if body.get("display_name") else ["experiment: display_name is required"]
            ):
                return self._refuse(problems)
            experiment = {
                **body,
                "experiment_id": str(uuid.uuid4()),
                "created_at": _now(),
                "storage_state": "AVAILABLE",
            }
            self.experiments[experiment["experiment_id"]] = experiment
            return 200, experiment
        if len(parts) == 2:
            found = self.experiments.get(parts[1])
            return (200, found) if found else (404, {"error": f"experiment {parts[1]} not found"})
        wanted = _display_name_filter(query)
        listed = [e for e in self.experiments.values() if wanted is None or e["display_name"] == wanted]
        return 200, {"experiments": listed, "total_size": len(listed)}

    def _spec_problems(self, body: dict, what: str) -> list[str]:
        problems = []
        if body.get("experiment_id") not in self.experiments:
            problems.append(f"{what}: experiment_id {body.get('experiment_id')!r} does not exist")
        spec = body.get("pipeline_spec")
        if not spec and not body.get("pipeline_version_reference"):
            problems.append(f"{what}: neither pipeline_spec nor pipeline_version_reference")
        if spec:
            spec = spec.get("pipeline_spec", spec)  # with a platform spec: {pipeline_spec, platform_spec}
            declared = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
            given = (body.get("runtime_config") or {}).get("parameters") or {}
            problems += [
                f"{what}: parameter {name!r} is not an input of the pipeline"
                for name in given
                if name not in declared
            ]
        return problems

    def _recurring_runs(self, method, parts, query, body):
        if method == "POST" and len(parts) == 1:
            if isinstance(body, dict) and isinstance(body.get("max_concurrency"), int):
                # an int64 field: protobuf JSON (the server's grpc-gateway) takes a number or a string
                body = {**body, "max_concurrency": str(body["max_concurrency"])}
            problems = self._invalid(body, "V2beta1RecurringRun")
            if not problems:
                problems = self._spec_problems(body, "recurring run")
                if not body.get("display_name"):
                    problems.append("recurring run: display_name is required")
                cron = ((body.get("trigger") or {}).get("cron_schedule") or {}).get("cron")
                if cron is None or len(cron.split()) != 6:
                    problems.append(
                        f"recurring run: cron {cron!r} is not a 6-field (seconds first) expression"
                    )
                if not 1 <= int(body.get("max_concurrency") or 0) <= 10:
                    problems.append(
                        f"recurring run: max_concurrency {body.get('max_concurrency')!r} not in 1..10"
                    )
            if problems:
                return self._refuse(problems)
            job = {**body, "recurring_run_id": str(uuid.uuid4()), "created_at": _now(), "updated_at": _now(),
                   "status": "ENABLED" if body.get("mode") != "DISABLE" else "DISABLED"}  # fmt: skip
            self.recurring_runs[job["recurring_run_id"]] = job
            return 200, job
        if method == "DELETE" and len(parts) == 2:
            if self.recurring_runs.pop(parts[1], None) is None:
                return 404, {"error": f"recurring run {parts[1]} not found", "code": 5}
            return 200, {}
        if method == "GET" and len(parts) == 1:
            jobs = sorted(self.recurring_runs.values(), key=lambda j: j["created_at"], reverse=True)
            if experiment := query.get("experiment_id", [None])[0]:
                jobs = [j for j in jobs if j["experiment_id"] == experiment]
            size, start = int(query.get("page_size", ["10"])[0]), int(query.get("page_token", ["0"])[0] or 0)
            page = jobs[start : start + size]
            token = str(start + size) if start + size < len(jobs) else ""
            return 200, {"recurringRuns": page, "total_size": len(jobs), "next_page_token": token}
        return 404, {"error": f"no route {method} recurringruns/{'/'.join(parts[1:])}"}

    def _create_run(self, body):
        problems = self._invalid(body, "V2beta1Run") or self._spec_problems(body, "run")
        if not problems and not body.get("display_name"):
            problems = ["run: display_name is required"]
        if problems:
            return self._refuse(problems)
        run = {**body, "run_id": str(uuid.uuid4()), "created_at": _now(), "state": "PENDING"}
        self.runs[run["run_id"]] = run
        return 200, run

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                status, answer = api.handle(method, url.path, parse_qs(url.query), body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def do_DELETE(self):
                self._serve("DELETE")

            def log_message(self, *args):  # quiet
                pass

        return Handler


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _display_name_filter(query: dict) -> str | None:
    text = query.get("filter", [None])[0]
    if not text:
        return None
    for predicate in json.loads(text).get("predicates", []):
        if predicate.get("key") == "display_name":
            return predicate.get("stringValue") or predicate.get("string_value")
    return None
