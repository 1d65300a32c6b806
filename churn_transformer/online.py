"""Read the model's features for customer ids from the Feast online store, refusing what is unfit.

Feast's online store ignores a view's ttl (feast#6821) and answers an unknown key with nulls, so
both checks are made here: an id with no row in a view is unknown, a row older than its view's
ttl is stale. Neither is ever scored.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from components import schema

FEATURE_SERVICE = "churn_model"  # feature_repo/churn_features.py: the schema's features
TS_SUFFIX = "__ts"  # Feast's to_dict(include_event_timestamps=True) column suffix (epoch seconds)


@dataclass(frozen=True)
class Stale:
    """One customer's feature view whose newest row is older than the view's ttl."""

    customer_id: str
    view: str
    age_s: float
    ttl_s: float

    def to_dict(self) -> dict:
        return {"customer_id": self.customer_id, "view": self.view,
                "age_s": round(self.age_s, 1), "ttl_s": self.ttl_s}  # fmt: skip


@dataclass(frozen=True)
class Lookup:
    """The rows found (schema feature name -> value, in request order) and what was refused."""

    rows: list[dict]
    unknown: list[str] = field(default_factory=list)
    stale: list[Stale] = field(default_factory=list)


class OnlineFeatures:
    """The feature service's views, features and ttls, read once from the Feast registry."""

    def __init__(self, store):
        self.store = store
        self.service = store.get_feature_service(FEATURE_SERVICE)
        self.view_of: dict[str, str] = {}
        self.ttl_s: dict[str, float] = {}
        for projection in self.service.feature_view_projections:
            view = store.get_feature_view(projection.name)
            self.ttl_s[projection.name] = view.ttl.total_seconds() if view.ttl else float("inf")
            for feature in projection.features:
                self.view_of[feature.name] = projection.name
        missing = sorted(set(schema.FEATURE_NAMES) - set(self.view_of))
        if missing:
            raise ValueError(f"feature service {FEATURE_SERVICE!r} lacks schema feature(s) {missing}")

    def lookup(self, customer_ids: Sequence[str], now: float | None = None) -> Lookup:
        """The schema features of ``customer_ids``; unknown and stale ids listed, not returned."""
        now = time.time() if now is None else now
        answer = self.store.get_online_features(
            features=self.service,
            entity_rows=[{schema.ID_COLUMN: c} for c in customer_ids],
        ).to_dict(include_event_timestamps=True)
        rows, unknown, stale = [], [], []
        for i, customer in enumerate(customer_ids):
            # Per view: one timestamp (every feature of a view is written together).
            written = {self.view_of[n]: answer[n + TS_SUFFIX][i] for n in schema.FEATURE_NAMES}
            if not all(written.values()):
                unknown.append(customer)
                continue
            old = [Stale(customer, v, now - ts, self.ttl_s[v]) for v, ts in written.items()
                   if now - ts > self.ttl_s[v]]  # fmt: skip
            if old:
                stale.extend(old)
                continue
            rows.append({n: answer[n][i] for n in schema.FEATURE_NAMES})
        return Lookup(rows, unknown, stale)
