"""``GET /v2/models/{name}``: kserve's model metadata plus the loaded model's identities.

kserve's own route validates its answer against the v2 ``ModelMetadataResponse``, which has no
``parameters`` and drops any extra field. This route answers the same fields (name, versions,
platform, inputs, outputs) and adds ``parameters`` from :meth:`ChurnModel.identity`:
``model_version`` (what responses call it), ``content_sha256``, ``registry_version`` (null for a
bundle served from a run folder) and ``registered_model``; ``parameters`` is null while loading.
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from serving.model import ChurnModel


def install(app: FastAPI, model: ChurnModel) -> Route:
    """Put the metadata route first on ``app`` (kserve adds its own routes behind it at start)."""

    async def metadata(request: Request) -> Response:
        body = {
            "name": model.name,
            "versions": None,
            "platform": "",
            "inputs": model.get_input_types(),
            "outputs": model.get_output_types(),
            "parameters": model.identity() or None,
        }
        return Response(orjson.dumps(body), media_type="application/json")

    route = Route(f"/v2/models/{model.name}", metadata, methods=["GET"])
    app.router.routes.insert(0, route)
    return route
