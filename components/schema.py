"""The one feature schema: IBM "Telco Customer Churn" layout.

Ingest, training, ONNX export, serving's input validation and drift monitoring all read the
column lists, types, categories and ranges from here. This module imports nothing but the
standard library so the serving image can ship it without the training stack.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cache

SCHEMA_VERSION = "1"

ID_COLUMN = "customerID"
LABEL_COLUMN = "Churn"
# Optional: the synthetic generator's true churn probability, kept through ingest so evaluation
# can report the oracle AUC. Never a model input.
TRUTH_COLUMN = "churn_probability"

_YES_NO = ("Yes", "No")
_INTERNET_ADDON = ("Yes", "No", "No internet service")


@dataclass(frozen=True)
class Feature:
    """One model input column.

    ``kind`` is ``"categorical"`` (string tensor, fixed category list) or ``"numeric"``
    (float tensor, inclusive ``[minimum, maximum]``; ``integer`` ones must be whole numbers).
    """

    name: str
    kind: str
    categories: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    description: str = ""

    @property
    def is_categorical(self) -> bool:
        return self.kind == "categorical"

    @property
    def v2_datatype(self) -> str:
        """Open Inference Protocol v2 datatype of this model input (strings are BYTES)."""
        return "BYTES" if self.is_categorical else "FP32"

    def v2_input(self) -> dict:
        """This feature as a v2 model-metadata input: one (N, 1) tensor."""
        return {"name": self.name, "datatype": self.v2_datatype, "shape": [-1, 1]}

    def to_dict(self) -> dict:
        out: dict = {"name": self.name, "kind": self.kind, "description": self.description}
        if self.is_categorical:
            out["categories"] = list(self.categories)
        else:
            out.update(minimum=self.minimum, maximum=self.maximum, integer=self.integer)
        return out


def _cat(name: str, categories: tuple[str, ...], description: str = "") -> Feature:
    return Feature(name, "categorical", categories=categories, description=description)


def _num(name: str, lo: float, hi: float, integer: bool = False, description: str = "") -> Feature:
    return Feature(name, "numeric", minimum=lo, maximum=hi, integer=integer, description=description)


FEATURES: tuple[Feature, ...] = (
    _cat("gender", ("Female", "Male")),
    _num("SeniorCitizen", 0, 1, integer=True, description="1 if the customer is 65 or older"),
    _cat("Partner", _YES_NO),
    _cat("Dependents", _YES_NO),
    _num("tenure", 0, 120, integer=True, description="months with the company"),
    _cat("PhoneService", _YES_NO),
    _cat("MultipleLines", ("Yes", "No", "No phone service")),
    _cat("InternetService", ("DSL", "Fiber optic", "No")),
    _cat("OnlineSecurity", _INTERNET_ADDON),
    _cat("OnlineBackup", _INTERNET_ADDON),
    _cat("DeviceProtection", _INTERNET_ADDON),
    _cat("TechSupport", _INTERNET_ADDON),
    _cat("StreamingTV", _INTERNET_ADDON),
    _cat("StreamingMovies", _INTERNET_ADDON),
    _cat("Contract", ("Month-to-month", "One year", "Two year")),
    _cat("PaperlessBilling", _YES_NO),
    _cat(
        "PaymentMethod",
        ("Electronic check", "Mailed check", "Bank transfer (automatic)", "Credit card (automatic)"),
    ),
    _num("MonthlyCharges", 0, 500, description="current monthly bill"),
    _num("TotalCharges", 0, 100_000, description="billed over the whole tenure"),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
CATEGORICAL: tuple[str, ...] = tuple(f.name for f in FEATURES if f.is_categorical)
NUMERIC: tuple[str, ...] = tuple(f.name for f in FEATURES if not f.is_categorical)
BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}

# Add-on services counted by the "number of services" engineered feature.
SERVICE_COLUMNS: tuple[str, ...] = (
    "PhoneService",
    "MultipleLines",
    "OnlineSecurity",
    "OnlineBackup",
    "DeviceProtection",
    "TechSupport",
    "StreamingTV",
    "StreamingMovies",
)
NO_INTERNET_COLUMNS: tuple[str, ...] = tuple(f.name for f in FEATURES if f.categories == _INTERNET_ADDON)

# Label spellings seen in real exports, matched after lower-casing and stripping.
LABEL_VALUES: dict[str, int] = {
    "yes": 1, "y": 1, "true": 1, "t": 1, "1": 1, "1.0": 1, "churn": 1, "churned": 1,
    "no": 0, "n": 0, "false": 0, "f": 0, "0": 0, "0.0": 0, "stay": 0, "retained": 0,
}  # fmt: skip


def header_key(name: str) -> str:
    """Case-, space-, dash- and underscore-insensitive key used to match column headers."""
    return re.sub(r"[\s_\-]+", "", str(name)).lower()


def _category_key(text: str) -> str:
    """Case- and whitespace-insensitive key: whitespace runs become one space, case is folded."""
    return " ".join(text.split()).casefold()


@cache
def _category_keys(feature: Feature) -> dict[str, str]:
    return {_category_key(c): c for c in feature.categories}


def normalise_category(feature: Feature, value: object) -> str | None:
    """The one normalisation of a raw categorical value; ingest, serving and scoring all call it.

    Rules, in order:

    1. ``None``, a float NaN, or text that is empty after stripping whitespace -> ``None``
       (missing: ingest quarantines the row, serving answers 400 naming the field).
    2. ``bytes`` are decoded as UTF-8, undecodable bytes replaced by U+FFFD (v2 BYTES tensors
       arrive as bytes); any other non-string value is taken as ``str(value)``.
    3. The text matches a category of ``feature`` when both are equal after folding case
       (``str.casefold``), stripping leading/trailing whitespace and collapsing every inner run
       of whitespace (spaces, tabs, non-breaking spaces) to one space: ``" month-TO-month"``,
       ``"FIBER  optic"`` -> the schema's spelling (``"Month-to-month"``, ``"Fiber optic"``).
    4. Anything else is unknown and comes back as the text stripped of surrounding whitespace,
       otherwise unchanged (not in ``feature.categories``; the model's one-hot encodes it as all
       zeros, serving scores and counts it, ingest quarantines it).

    Text such as ``"NaN"`` or ``"null"`` is not treated as missing: it is an unknown value.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
    text = text.strip()
    if not text:
        return None
    return _category_keys(feature).get(_category_key(text), text)


REQUIRED_COLUMNS: tuple[str, ...] = (ID_COLUMN, *FEATURE_NAMES, LABEL_COLUMN)
HEADER_KEYS: dict[str, str] = {header_key(c): c for c in REQUIRED_COLUMNS}


@dataclass(frozen=True)
class Schema:
    """Serializable view of the schema, embedded in every model's metadata.json."""

    version: str = SCHEMA_VERSION
    id_column: str = ID_COLUMN
    label_column: str = LABEL_COLUMN
    features: tuple[Feature, ...] = field(default=FEATURES)

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "id_column": self.id_column,
            "label_column": self.label_column,
            "features": [f.to_dict() for f in self.features],
        }


def schema_dict() -> dict:
    """The schema as plain JSON-able data."""
    return Schema().to_dict()
