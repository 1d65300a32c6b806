"""Request validation: turn named input columns into ONNX Runtime feeds, or say exactly what is wrong.

Every check reads the feature list, categories and ranges from the bundle's schema (the same
``components.schema`` the pipeline trained on); nothing here repeats a column list.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, NamedTuple, Union

import msgspec
import numpy as np
from kserve.errors import InvalidInput

from components.schema import Feature, normalise_category

NUMERIC_DATATYPES = frozenset(
    {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
)


_BYTES = frozenset({"BYTES"})
# What JSON parsers make of a JSON number: a numeric input's list values must be these exact types
# (bool is an int subclass, and numpy would turn "5" or true into 5.0 and 1.0 without a word).
_NUMBER_TYPES = frozenset({int, float})

# A v2 infer request's keys but ``inputs``, as the typed decoder takes them (kserve's client sends
# ``model_name``); REQUEST_KEYS is every key the lean route accepts, on either path.
_REQUEST_FIELDS = [("id", str | None, None), ("model_name", Any, None), ("parameters", dict | None, None),
                   ("outputs", list | None, None)]  # fmt: skip
REQUEST_KEYS = frozenset({"inputs", *(name for name, *_ in _REQUEST_FIELDS)})


class RequestError(InvalidInput):
    """A 400-class problem with the request. ``reason`` is a short label for the error metric.

    ``request_id`` is set once the request's id is known, so the one log line can name it.
    """

    status = 400

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.label = reason
        self.request_id: str | None = None


class RequestTooLarge(RequestError):
    """A request past one of the server's size limits (body bytes, id length): HTTP 413."""

    status = 413


class Batch(NamedTuple):  # NamedTuple, not a frozen dataclass: built per request, 4x cheaper
    """A validated batch: the features' values as two matrices, its row count and unknown categories.

    ``strings`` is (categorical features, rows) of ``str`` and ``floats`` (numeric features, rows) of
    float32, contiguous, one matrix row per feature in ``names`` order (the categorical features,
    then the numeric ones, each in schema order). :attr:`feeds` gives them as the graph's inputs.
    """

    strings: np.ndarray
    floats: np.ndarray
    rows: int
    unknown_categories: dict[str, int]
    names: tuple[tuple[str, ...], tuple[str, ...]]  # the features of strings' rows, of floats' rows

    @property
    def feeds(self) -> dict[str, np.ndarray]:
        """One (rows, 1) view per feature, by name: the bundle graph's own inputs."""
        categorical, numeric = self.names
        feeds = dict(zip(categorical, self.strings.reshape(-1, self.rows, 1), strict=True))
        feeds.update(zip(numeric, self.floats.reshape(-1, self.rows, 1), strict=True))
        return feeds


class Column(NamedTuple):  # one per input per request (19 for a row): a NamedTuple is cheap to build
    """One request input: its values (flat or nested list, or a numpy array), datatype and shape if sent."""

    values: Any
    datatype: str | None = None
    shape: Sequence[int] | None = None


def by_name(columns: Sequence[tuple[str, Column]]) -> dict[str, Column]:
    """``{name: column}`` for a request's inputs; an input given twice is an error."""
    named = dict(columns)
    if len(named) != len(columns):
        names = [name for name, _ in columns]
        twice = sorted({n for n in names if names.count(n) > 1})
        raise RequestError("duplicate_input", f"input '{twice[0]}' is given more than once")
    return named


def _names(names) -> str:
    return ", ".join(f"'{n}'" for n in sorted(names))


def _json_kind(value: Any) -> str:
    """How a client would spell ``value`` in its JSON, with what it is: 'a string "5"', 'true'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true (a boolean)" if value else "false (a boolean)"
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return f"a string {json.dumps(text[:40])}"


def _flat(values: Any) -> Any:
    if isinstance(values, np.ndarray):
        return values.reshape(-1)
    if values and isinstance(values[0], list | tuple):  # [[a], [b]] for shape [N, 1]
        return [x for row in values for x in row]
    return values


class Validator:
    """Checks requests against the features of one bundle."""

    def __init__(self, features: Sequence[Feature], max_batch_rows: int):
        self.features = tuple(features)
        self.names = frozenset(f.name for f in self.features)
        self.max_batch_rows = max_batch_rows
        self._categories = {f.name: frozenset(f.categories) for f in self.features if f.is_categorical}
        # For the vectorised all-good check: the features in two groups, the bounds as column vectors.
        self._categorical_features = tuple(f for f in self.features if f.is_categorical)
        self._numeric_features = tuple(f for f in self.features if not f.is_categorical)
        self._minimum = np.array([[f.minimum] for f in self._numeric_features], dtype=np.float64)
        self._maximum = np.array([[f.maximum] for f in self._numeric_features], dtype=np.float64)
        # (numeric features, 1): True where fractions are allowed (the whole-number check skips them)
        self._fractional = np.array([[not f.integer] for f in self._numeric_features], dtype=bool)
        self._categorical_names = tuple(f.name for f in self._categorical_features)
        self._numeric_names = tuple(f.name for f in self._numeric_features)
        self._names = (self._categorical_names, self._numeric_names)
        self._decoder = _typed_request_decoder(
            self._categorical_features + self._numeric_features, max_batch_rows
        )

    def columns(self, columns: Mapping[str, Column]) -> Batch:
        """Validate one column per feature and build the feeds."""
        unknown = columns.keys() - self.names
        if unknown:
            raise RequestError(
                "unknown_input", f"unknown input {_names(unknown)} (GET /v2/models/<name> lists the inputs)"
            )
        missing = self.names - columns.keys()
        if missing:
            raise RequestError("missing_input", f"missing input {_names(missing)}")
        return self._all_good(columns) or self._one_by_one(columns)

    def v2_body(self, body: bytes | memoryview) -> tuple[Any, Batch] | None:
        """A v2 JSON infer body decoded and validated in one pass; ``(request, batch)`` or None if unsure.

        msgspec decodes the body into types built from the schema (each input's name, datatype,
        known categories, numbers in range and whole where the feature is), so a valid request
        is checked as it is parsed, without a dict per input. What is left here: each feature
        once, one row count, shape ``[n]`` or ``[n, 1]``. ``request`` holds the body's ``id``,
        ``model_name``, ``parameters`` and ``outputs``. Anything else (unknown keys, parameters on
        an input, nested data, an unknown spelling, bad JSON) answers None and the caller takes
        the general path (:meth:`columns` after parsing), which accepts it or names its problem.
        Accepted requests give the feeds :meth:`columns` gives.
        """
        try:
            request = self._decoder.decode(body)
        except msgspec.DecodeError:  # ValidationError included
            return None
        inputs = request.inputs
        values: list = [None] * len(self.features)  # each feature's data, categorical features first
        if len(inputs) != len(values):
            return None
        rows = len(inputs[0].data)  # 1 to max_batch_rows: the decoder checked
        column, flat = [rows, 1], [rows]
        for item in inputs:
            data = item.data
            if len(data) != rows:
                return None
            shape = item.shape  # JSON ints: the decoder refused 1.0 and true
            if shape != column and shape != flat:
                return None
            values[item.slot] = data
        if None in values:  # a feature given twice, so another one missing
            return None
        split = len(self._categorical_features)
        # float32 straight from the decoded Python floats: the rounding of float64 then float32, one copy less
        if rows == 1:  # flat lists: numpy discovers a nested list's shape element by element
            strings = np.array([v for (v,) in values[:split]], dtype=object).reshape(-1, 1)
            floats = np.array([v for (v,) in values[split:]], dtype=np.float32).reshape(-1, 1)
        else:
            strings = np.array(values[:split], dtype=object)
            floats = np.array(values[split:], dtype=np.float32)
        return request, self._batch(strings, floats, rows)

    def _all_good(self, columns: Mapping[str, Column]) -> Batch | None:
        """The usual request, checked a whole matrix at a time; None if anything is off.

        Only says yes or no: any request it does not accept goes through :meth:`_one_by_one`,
        which finds the first problem in feature order and names it (so the messages do not
        depend on which path ran), or accepts what this one is unsure of (unknown categories,
        bytes, v1 records without datatypes).
        """
        rows = -1
        categorical, numeric = [], []
        for group, out, datatypes in (
            (self._categorical_features, categorical, _BYTES),
            (self._numeric_features, numeric, NUMERIC_DATATYPES),
        ):
            for feature in group:
                column = columns[feature.name]
                values = _flat(column.values)
                n = len(values)
                if column.datatype not in datatypes or (rows >= 0 and n != rows):
                    return None
                if column.shape is not None and math.prod(column.shape) != n:
                    return None
                rows = n
                out.append(values)
        if not 0 < rows <= self.max_batch_rows:
            return None
        try:
            for feature, values in zip(self._categorical_features, categorical, strict=True):
                if not self._categories[feature.name].issuperset(values):
                    return None  # unknown categories, bytes or non-strings: counted or named one by one
        except TypeError:  # unhashable values (nested lists)
            return None
        return self._feeds(categorical, numeric, rows)

    def _feeds(self, categorical: list, numeric: list, rows: int) -> Batch | None:
        """The feeds of flat value lists (features' order) whose categories are known; None if unsure."""
        for values in numeric:
            python_objects = not isinstance(values, np.ndarray) or values.dtype == object
            if python_objects and not _NUMBER_TYPES.issuperset(map(type, values)):
                return None  # strings, booleans, nulls (or numpy scalars): row by row names or takes them
        try:
            matrix = np.array(numeric, dtype=np.float64)  # (numeric features, rows)
        except (TypeError, ValueError):
            return None
        if matrix.shape != (len(numeric), rows):
            return None
        ok = (matrix >= self._minimum) & (matrix <= self._maximum)  # False for NaN too
        ok &= (matrix == np.floor(matrix)) | self._fractional  # broadcast: half the cost of fancy indexing
        if not ok.all():
            return None
        strings = np.array(categorical, dtype=object)  # (categorical features, rows)
        if strings.shape != (len(categorical), rows):
            return None
        return self._batch(strings, matrix.astype(np.float32), rows)

    def _batch(self, strings: np.ndarray, floats: np.ndarray, rows: int) -> Batch:
        """The batch of (categorical features, rows) strings and (numeric features, rows) float32s."""
        return Batch(strings, floats, rows, {}, self._names)

    def _one_by_one(self, columns: Mapping[str, Column]) -> Batch:
        feeds: dict[str, np.ndarray] = {}
        unknown_categories: dict[str, int] = {}
        rows, first = -1, ""
        for feature in self.features:
            name, column = feature.name, columns[feature.name]
            values = _flat(column.values)
            n = len(values)
            if column.shape is not None and math.prod(column.shape) != n:  # math.prod: np.prod costs ~3 µs
                raise RequestError(
                    "shape", f"input '{name}': shape {list(column.shape)} does not match its {n} values"
                )
            if rows < 0:
                rows, first = n, name
                if n == 0:
                    raise RequestError("empty", f"input '{name}' has no rows")
                if n > self.max_batch_rows:
                    raise self._too_large(f"input '{name}'", n)
            elif n != rows:
                raise RequestError(
                    "length_mismatch", f"input '{name}' has {n} rows but input '{first}' has {rows}"
                )
            if feature.is_categorical:
                feeds[name], unknown_count = self._categorical(feature, column.datatype, values)
                if unknown_count:
                    unknown_categories[name] = unknown_count
            else:
                feeds[name] = self._numeric(feature, column.datatype, values)
        strings = np.stack([feeds[name][:, 0] for name in self._categorical_names])
        floats = np.stack([feeds[name][:, 0] for name in self._numeric_names])
        return Batch(strings, floats, rows, unknown_categories, self._names)

    def records(self, records: Any) -> Batch:
        """Validate v1 ``instances``: a list of ``{feature: value}`` records."""
        if not isinstance(records, list) or not records:
            raise RequestError("bad_request", "'instances' must be a non-empty list of records")
        if len(records) > self.max_batch_rows:
            raise self._too_large("'instances'", len(records))
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                raise RequestError("bad_request", f"instance {i} is not an object of feature values")
            if record.keys() != self.names:
                unknown, missing = record.keys() - self.names, self.names - record.keys()
                if unknown:
                    raise RequestError("unknown_input", f"instance {i}: unknown input {_names(unknown)}")
                raise RequestError("missing_input", f"instance {i}: missing input {_names(missing)}")
        return self.columns({n: Column([r[n] for r in records]) for n in self.names})

    def _too_large(self, what: str, rows: int) -> RequestError:
        return RequestError(
            "batch_too_large", f"{what} has {rows} rows; this server takes at most {self.max_batch_rows}"
        )

    def _categorical(self, feature: Feature, datatype: str | None, values: Any) -> tuple[np.ndarray, int]:
        name = feature.name
        if datatype is not None and datatype != "BYTES":
            raise RequestError(
                "datatype", f"input '{name}' is categorical: datatype must be BYTES, not {datatype}"
            )
        try:
            distinct = set(values.tolist() if isinstance(values, np.ndarray) else values)
        except TypeError:
            raise RequestError("bad_value", f"input '{name}': values must be strings") from None
        categories = self._categories[name]
        if distinct <= categories:  # the usual case: known strings, nothing more to check
            return np.array(values, dtype=object).reshape(-1, 1), 0
        bad = next((v for v in distinct if v is not None and not isinstance(v, str | bytes)), None)
        if bad is not None:
            raise RequestError("bad_value", f"input '{name}': values must be strings, got {bad!r}")
        # Ingest's one normalisation (case, whitespace, bytes), once per distinct value: a client's
        # "month-to-month" must score as the "Month-to-month" the model trained on.
        normal = {v: normalise_category(feature, v) for v in distinct}
        values = values.tolist() if isinstance(values, np.ndarray) else values
        if None in normal.values():
            row = next(i for i, v in enumerate(values) if normal[v] is None)
            raise RequestError(
                "missing_value", f"input '{name}': row {row} is blank or null (a category is required)"
            )
        values = [normal[v] for v in values]
        unknown = set(normal.values()) - categories
        # Unknown categories are scored (the one-hot encoder ignores them) but counted.
        unknown_count = sum(1 for v in values if v in unknown) if unknown else 0
        return np.array(values, dtype=object).reshape(-1, 1), unknown_count

    @staticmethod
    def _numeric(feature: Feature, datatype: str | None, values: Any) -> np.ndarray:
        name = feature.name
        if datatype is not None and datatype not in NUMERIC_DATATYPES:
            raise RequestError(
                "datatype",
                f"input '{name}' is numeric: datatype must be FP32 (or another number type), not {datatype}",
            )
        if not isinstance(values, np.ndarray) or values.dtype == object:
            # A JSON string or boolean is not a number, whatever the datatype says: "5" and true
            # would score as 5.0 and 1.0, where ingest quarantines true for tenure.
            not_numbers = (i for i, v in enumerate(values) if isinstance(v, bool | str | bytes) or v is None)
            row = next(not_numbers, None)
            if row is not None:
                raise RequestError(
                    "bad_value", f"input '{name}': row {row} is {_json_kind(values[row])}, not a number"
                )
        try:
            array = np.asarray(values, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise RequestError("bad_value", f"input '{name}': values must be numbers") from None
        ok = (array >= feature.minimum) & (array <= feature.maximum)  # False for NaN too
        if feature.integer:
            ok &= array == np.floor(array)
        if not ok.all():
            row = int(np.argmin(ok))
            value = array[row]
            if not np.isfinite(value):
                raise RequestError(
                    "non_finite", f"input '{name}': row {row} is not a finite number ({value})"
                )
            if feature.minimum <= value <= feature.maximum:
                raise RequestError(
                    "not_integer", f"input '{name}': row {row} value {value} must be a whole number"
                )
            raise RequestError(
                "out_of_range",
                f"input '{name}': row {row} value {value:g} is outside "
                f"[{feature.minimum:g}, {feature.maximum:g}]",
            )
        return array.astype(np.float32).reshape(-1, 1)


def _typed_request_decoder(features: Sequence[Feature], max_batch_rows: int) -> msgspec.json.Decoder:
    """The decoder of :meth:`Validator.v2_body`: a v2 request whose ``inputs`` are one type per feature.

    Each input type is tagged by its ``name`` and carries ``slot``, its index in ``features``.
    Every other key of a request or an input is refused (the general path reads them).
    """
    inputs = []
    for slot, f in enumerate(features):
        if f.is_categorical:
            datatypes, value = Literal["BYTES"], Literal[f.categories]
        else:  # a JSON int is taken as a float, a boolean is not
            whole = {"multiple_of": 1} if f.integer else {}
            datatypes = Literal[tuple(sorted(NUMERIC_DATATYPES))]
            value = Annotated[float, msgspec.Meta(ge=f.minimum, le=f.maximum, **whole)]
        data = Annotated[list[value], msgspec.Meta(min_length=1, max_length=max_batch_rows)]
        fields = [("datatype", datatypes), ("shape", list[int]), ("data", data), ("parameters", None, None)]
        inputs.append(
            msgspec.defstruct(f"Input_{slot}", fields, namespace={"slot": slot}, tag_field="name",
                              tag=f.name, forbid_unknown_fields=True)
        )  # fmt: skip
    request = [("inputs", list[Union[tuple(inputs)]]), *_REQUEST_FIELDS]  # noqa: UP007 (types made at run time)
    return msgspec.json.Decoder(msgspec.defstruct("TypedRequest", request, forbid_unknown_fields=True))
