"""Feast definitions of the churn features: ONLY definitions (``feast apply`` imports every .py here).

Entity ``customer`` (join key ``customerID``); one feature view per history table of
:mod:`components.history` (account, services, billing). Feature names are the schema's
(:mod:`components.schema`), so the feature service ``churn_model`` yields exactly the columns the
model and its ONNX graph take. ``charges_change_3m`` (trailing 3-month bill change) is stored
and served but is not a model input of schema v1. Numbers are Float64/Int64: Float32 would lose
precision against the offline values. The source tables live under ``CHURN_FEATURE_DATA``
(a folder or an ``s3://`` prefix, read through components.config).
"""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource
from feast.types import Float64, Int64, String
from feast.value_type import ValueType

from components import history, schema
from components.config import load_settings

# Monthly snapshots: a customer whose newest row is older than this has no current features.
SNAPSHOT_TTL = timedelta(days=45)
_DATA = load_settings().feature_data_uri.rstrip("/")

customer = Entity(
    name="customer", join_keys=[schema.ID_COLUMN], value_type=ValueType.STRING,
    description="a customer account",
)  # fmt: skip


def _field(name: str) -> Field:
    if name == history.CHARGE_CHANGE_3M:
        return Field(name=name, dtype=Float64)
    feature = schema.BY_NAME[name]
    if feature.is_categorical:
        return Field(name=name, dtype=String)
    return Field(name=name, dtype=Int64 if feature.integer else Float64)


def _view(group: str, extra: tuple[str, ...] = ()) -> FeatureView:
    source = FileSource(
        name=f"{group}_source", path=f"{_DATA}/{group}.parquet", timestamp_field=history.TIMESTAMP
    )
    return FeatureView(
        name=group, entities=[customer], ttl=SNAPSHOT_TTL, online=True, source=source,
        schema=[_field(c) for c in (*history.GROUPS[group], *extra)],
        tags={"schema_version": schema.SCHEMA_VERSION},
    )  # fmt: skip


account = _view("account")
services = _view("services")
billing = _view("billing", extra=(history.CHARGE_CHANGE_3M,))

# What the model reads: the schema's features, no more.
churn_model = FeatureService(
    name="churn_model",
    features=[account, services, billing[list(history.BILLING_COLUMNS)]],
    tags={"schema_version": schema.SCHEMA_VERSION},
)
