"""Per-version latency and status of every inference request, measured at the outermost ASGI layer.

kserve's own histograms (``request_predict_seconds``) are labelled by model name only, and
Knative 1.19+ no longer exports revision latencies, so the canary analysis needs the server to
say how long each version took. The clock starts when the request's headers are in (before the
body is read) and stops when the answer is handed to the HTTP server, so a slow upload, a
blocked event loop or a slow model all show; the network to the caller does not.
"""

from __future__ import annotations

import re
import time

from fastapi import FastAPI

from serving.model import ChurnModel

# v2 REST infer and v1 predict; metadata, health and /metrics are not requests for a model.
INFERENCE_PATH = re.compile(r"^/v2/models/[^/]+(/versions/[^/]+)?/infer$|^/v1/models/[^/]+:predict$")


def install(app: FastAPI, model: ChurnModel) -> None:
    """Add the middleware outermost on ``app`` (call it after every other ``add_middleware``)."""
    app.add_middleware(RequestMetrics, model=model)


class RequestMetrics:
    """Observes ``churn_request_duration_seconds`` for each inference request (loaded version, status)."""

    def __init__(self, app, model: ChurnModel):
        self.app, self.model = app, model

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not INFERENCE_PATH.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500  # an exception that escapes is answered 500

        async def sending(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            series = self.model.series
            if series is not None:  # not loaded: no version to charge; churn_model_ready says so
                series.answered(time.perf_counter() - started, status)
