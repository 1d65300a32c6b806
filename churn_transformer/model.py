"""The transformer: ``{"customer_id": [...]}`` in, the predictor's v2 request out, scores back.

KServe's documented pattern for Feast (docs/samples/v1beta1/transformer/feast): ``preprocess``
reads the online store and builds the predictor's request; kserve forwards it to
``--predictor_host`` (v2 REST) and ``postprocess`` shapes the answer. Clients call
``POST /v1/models/churn:predict`` with ``{"customer_id": ["0000042-ABCDE", ...]}`` and get
``{"model_version": ..., "churn_probability": [...], "churn": [...]}`` in the ids' order.

Refusals (the whole request, nothing scored), each naming every offending id:

- 400: the body is not ``{"customer_id": [non-empty strings]}`` or holds more than ``max_ids``;
- 404: ids with no features in the online store (``unknown_customer_ids``);
- 409: ids whose newest features are older than their view's ttl (``stale``), since the online
  store does not enforce the ttl itself.
"""

from __future__ import annotations

import json

from fastapi import HTTPException
from kserve import InferResponse, Model

from churn_transformer.online import OnlineFeatures
from components.schema import FEATURES
from serving.examples import v2_request

ID_FIELD = "customer_id"


class FeatureTransformer(Model):
    """A kserve Model named as the predictor's model, forwarding to it over v2 REST."""

    def __init__(self, name: str, store_factory, max_ids: int = 1000):
        super().__init__(name)
        self._store_factory = store_factory
        self.max_ids = max_ids
        self.features: OnlineFeatures | None = None

    def load(self) -> bool:
        self.features = OnlineFeatures(self._store_factory())
        self.ready = True
        return self.ready

    def customer_ids(self, payload) -> list[str]:
        """The request's ids, or a 400 naming the problem."""
        if isinstance(payload, (bytes, str)):  # kserve hands over the raw body without a JSON content type
            try:
                payload = json.loads(payload)
            except ValueError:
                raise HTTPException(
                    400, {"error": f'the body is not JSON: expected {{"{ID_FIELD}": [id, ...]}}'}
                ) from None
        ids = payload.get(ID_FIELD) if isinstance(payload, dict) else None
        if not isinstance(ids, list) or not ids:
            raise HTTPException(400, {"error": f'expected {{"{ID_FIELD}": [id, ...]}} with at least one id'})
        bad = [i for i in ids if not isinstance(i, str) or not i.strip()]
        if bad:
            raise HTTPException(
                400, {"error": f"{ID_FIELD}: every id must be a non-empty string, got {bad[:5]}"}
            )
        if len(ids) > self.max_ids:
            raise HTTPException(
                400, {"error": f"{ID_FIELD}: {len(ids)} ids, more than the {self.max_ids} allowed"}
            )
        return ids

    async def preprocess(self, payload, headers: dict[str, str] | None = None) -> dict:
        ids = self.customer_ids(payload)
        found = self.features.lookup(ids)
        if found.unknown:
            raise HTTPException(404, {
                "error": f"{len(found.unknown)} unknown customer id(s): {', '.join(found.unknown[:20])}",
                "unknown_customer_ids": found.unknown,
            })  # fmt: skip
        if found.stale:
            names = sorted({s.customer_id for s in found.stale})
            raise HTTPException(409, {
                "error": f"{len(names)} customer id(s) with features older than the view's ttl: "
                         f"{', '.join(names[:20])}",
                "stale": [s.to_dict() for s in found.stale],
            })  # fmt: skip
        return v2_request(FEATURES, found.rows)

    async def postprocess(self, result, headers=None, response_headers=None) -> dict:
        """The predictor's scores, in the order of the request's ids."""
        if isinstance(result, InferResponse):
            outputs = {o.name: o.data for o in result.outputs}
            version = result.model_version
        else:
            outputs = {o["name"]: o["data"] for o in result["outputs"]}
            version = result.get("model_version")
        return {"model_version": version, "churn_probability": list(outputs["churn_probability"]),
                "churn": list(outputs["churn"])}  # fmt: skip
