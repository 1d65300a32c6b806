"""Validator: the vectorised all-good path and the row-by-row path agree (property-based).

``Validator.columns`` tries ``_all_good`` (a whole matrix at a time) and falls back to
``_one_by_one``, which names the first problem. The fast path may only say "not sure": whenever
it accepts a request, the row-by-row path must accept it too and build the very same feeds; and
on well-formed requests it must accept (or the server silently loses its fast path).
"""

from __future__ import annotations

import copy
import json
import math
import re

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.schema import FEATURES
from serving.validation import NUMERIC_DATATYPES, Batch, Column, RequestError, Validator
from tests.support.v2_requests import BAD, body, edit, spellings

MAX_ROWS = 6
VALIDATOR = Validator(FEATURES, MAX_ROWS)
CATEGORICAL = [f for f in FEATURES if f.is_categorical]
NUMERIC = [f for f in FEATURES if not f.is_categorical]
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def numeric_value(feature):
    """A value in range: whole for integer features."""
    if feature.integer:
        return st.integers(int(feature.minimum), int(feature.maximum)).map(float)
    return st.floats(feature.minimum, feature.maximum, allow_nan=False, width=32)


def packed(values: list, datatype: str | None, shape: str, container: str) -> Column:
    """One input as a client may send it: flat, nested [[v], ...] or numpy; with or without shape."""
    n = len(values)
    if container == "nested":
        data = [[v] for v in values]
    elif container == "numpy":
        data = np.array(values, dtype=object if datatype in (None, "BYTES") else np.float64)
    else:
        data = list(values)
    return Column(data, datatype, {"none": None, "flat": [n], "column": [n, 1]}[shape])


@st.composite
def valid_columns(draw, rows=None) -> dict[str, Column]:
    n = draw(rows if rows is not None else st.integers(1, MAX_ROWS))
    shape = st.sampled_from(["none", "flat", "column"])
    container = st.sampled_from(["flat", "nested", "numpy"])
    columns = {}
    for f in CATEGORICAL:
        values = draw(st.lists(st.sampled_from(f.categories), min_size=n, max_size=n))
        columns[f.name] = packed(values, "BYTES", draw(shape), draw(container))
    for f in NUMERIC:
        values = draw(st.lists(numeric_value(f), min_size=n, max_size=n))
        datatype = draw(st.sampled_from(sorted(NUMERIC_DATATYPES)))
        columns[f.name] = packed(values, datatype, draw(shape), draw(container))
    return columns


def bad_value(feature):
    """A value the schema refuses for ``feature`` (or, for categoricals, one it counts or normalises)."""
    if feature.is_categorical:
        return st.sampled_from(
            ["Martian", "", "  ", feature.categories[0].lower(), b"Male", 3, None, 1.5, ("x",), True]
        )
    lo, hi = feature.minimum, feature.maximum
    values = [math.nan, math.inf, -math.inf, lo - 1, hi + 1, "12", None, True, b"1"]
    if feature.integer:
        values.append(lo + 0.5)
    return st.sampled_from(values)


@st.composite
def spoiled_columns(draw, rows=None) -> dict[str, Column]:
    """A valid request with one input spoiled: a bad value, datatype, length, shape or no datatype."""
    columns = draw(valid_columns(rows))
    feature = draw(st.sampled_from(draw(st.sampled_from([CATEGORICAL, NUMERIC]))))
    column = columns[feature.name]
    values = list(np.asarray(column.values, dtype=object).reshape(-1))
    how = draw(
        st.sampled_from(["value", "value", "value", "datatype", "length", "shape", "untyped", "empty"])
    )
    datatype, shape = column.datatype, column.shape
    if how == "value":
        values[draw(st.integers(0, len(values) - 1))] = draw(bad_value(feature))
    elif how == "datatype":
        datatype = draw(st.sampled_from(["FP32", "INT64", "BOOL", "BYTES", "STRING"]))
    elif how == "length":
        values = values + values[:1]
        shape = None
    elif how == "shape":
        shape = [len(values) + draw(st.integers(1, 3)), 1]
    elif how == "untyped":  # v1 records carry no datatype: only the row-by-row path takes them
        datatype = None
    else:
        values, shape = [], None
    columns[feature.name] = Column(values, datatype, shape)
    return columns


def assert_same_batch(fast: Batch, slow: Batch) -> None:
    assert fast.rows == slow.rows
    assert fast.unknown_categories == slow.unknown_categories
    assert fast.feeds.keys() == slow.feeds.keys()
    for name, array in fast.feeds.items():
        other = slow.feeds[name]
        assert array.dtype == other.dtype and array.shape == other.shape == (fast.rows, 1), name
        assert array.tolist() == other.tolist(), name


def agree(columns: dict[str, Column]) -> Batch | None:
    """The property: if the fast path accepts, the slow path accepts with the same batch."""
    fast = VALIDATOR._all_good(columns)
    try:
        slow = VALIDATOR._one_by_one(columns)
    except RequestError:
        slow = None
    if fast is not None:
        assert slow is not None, "the fast path accepted what the row-by-row path refuses"
        assert_same_batch(fast, slow)
    return fast


@PROPERTY
@given(valid_columns())
def test_well_formed_requests_take_the_fast_path_and_match_row_by_row(columns):
    assert agree(columns) is not None


@PROPERTY
@given(spoiled_columns())
def test_spoiled_requests_get_the_row_by_row_answer_whichever_path_runs(columns):
    """The fast path never accepts what row by row refuses; the answer (batch or error) is row by row's."""
    agree(columns)
    try:
        expected = VALIDATOR._one_by_one(columns)
    except RequestError as exc:
        with pytest.raises(RequestError) as error:
            VALIDATOR.columns(columns)
        assert (error.value.label, str(error.value)) == (exc.label, str(exc))
        return
    assert_same_batch(VALIDATOR.columns(columns), expected)


@settings(PROPERTY, max_examples=30)
@given(valid_columns(rows=st.just(MAX_ROWS + 1)))
def test_oversized_batches_are_refused_on_both_paths(columns):
    assert VALIDATOR._all_good(columns) is None
    with pytest.raises(RequestError) as error:
        VALIDATOR.columns(columns)
    assert error.value.label == "batch_too_large"


def respelled(column: Column, draw) -> Column:
    """``column`` with every value written as one of the spellings ingest reads as it (or as bytes)."""
    values = list(np.asarray(column.values, dtype=object).reshape(-1))
    spelled = [draw(st.sampled_from([*spellings(v), v.encode()])) for v in values]
    return Column(spelled, column.datatype, column.shape)


@PROPERTY
@given(st.data())
def test_spellings_give_the_canonical_batch_and_count_nothing_unknown(data):
    """Case, whitespace and bytes variants of a category build the very feeds the canonical values do."""
    columns = data.draw(valid_columns())
    canonical = VALIDATOR.columns(columns)
    spelled = dict(columns)
    for feature in data.draw(st.lists(st.sampled_from(CATEGORICAL), min_size=1, unique=True)):
        spelled[feature.name] = respelled(columns[feature.name], data.draw)
    agree(spelled)
    assert_same_batch(VALIDATOR.columns(spelled), canonical)


@pytest.mark.parametrize("blank", ["", " \t ", None])
def test_blank_category_names_the_field_and_row(blank):
    columns = {
        f.name: Column([f.categories[0]] * 3 if f.is_categorical else [f.minimum] * 3, f.v2_datatype)
        for f in FEATURES
    }
    columns["Contract"] = Column(["One year", "Two year", blank], "BYTES")
    with pytest.raises(RequestError) as error:
        VALIDATOR.columns(columns)
    assert error.value.label == "missing_value"
    assert "input 'Contract': row 2 is blank or null" in str(error.value)


def as_json_items(columns: dict[str, Column]) -> list:
    """The columns as a v2 JSON body's ``inputs`` after a JSON round trip (what the lean route parses)."""
    items = []
    for name, column in columns.items():
        data = column.values.tolist() if isinstance(column.values, np.ndarray) else column.values
        item = {"name": name, "datatype": column.datatype, "data": data}
        if column.shape is not None:
            item["shape"] = list(column.shape)
        items.append(item)
    return orjson.loads(
        orjson.dumps(items, default=lambda v: v.decode() if isinstance(v, bytes) else repr(v))
    )


def parsed(items: list) -> dict[str, Column]:
    """What the lean route's general path builds from JSON ``inputs``."""
    return {i["name"]: Column(i["data"], i["datatype"], i.get("shape")) for i in items}


def one_pass(items: list, validator: Validator = VALIDATOR) -> Batch | None:
    """``Validator.v2_body`` of a JSON body with these ``inputs`` (NaN and Infinity written as
    Python's json writes them, bytes as text), its batch or None."""
    raw = json.dumps({"inputs": items}, default=lambda v: v.decode() if isinstance(v, bytes) else repr(v))
    typed = validator.v2_body(raw.encode())
    return None if typed is None else typed[1]


def one_pass_agrees(items: list) -> Batch | None:
    """``v2_body`` accepts only what ``columns`` accepts, with the same feeds."""
    fast = one_pass(items)
    if fast is not None:
        assert_same_batch(fast, VALIDATOR.columns(parsed(items)))
    return fast


# One row has its own check in the one pass (Python comparisons instead of numpy's), so one-row
# requests are drawn on their own as well as among the others.
ROWS = pytest.mark.parametrize("rows", [None, st.just(1)], ids=["any rows", "one row"])


@ROWS
@settings(PROPERTY, max_examples=100)
@given(data=st.data())
def test_v2_body_one_pass_matches_columns_and_takes_flat_shaped_bodies(rows, data):
    columns = data.draw(valid_columns(rows))
    fast = one_pass_agrees(as_json_items(columns))
    nested = any(isinstance(c.values, list) and isinstance(c.values[0], list) for c in columns.values())
    if not nested and all(c.shape is not None for c in columns.values()):
        assert fast is not None, "a flat, shaped, valid body missed the one-pass path"


@ROWS
@settings(PROPERTY, max_examples=100)
@given(data=st.data())
def test_v2_body_one_pass_never_accepts_what_columns_refuses(rows, data):
    columns = data.draw(spoiled_columns(rows))
    items = as_json_items(columns)
    for item in items:
        item.setdefault("shape", [len(item["data"])])
    try:
        VALIDATOR.columns(parsed(items))
    except RequestError:
        assert one_pass(items) is None
        return
    one_pass_agrees(items)


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_v2_body_one_pass_leaves_every_bad_body_to_the_general_path(case):
    make, _ = BAD[case]
    assert one_pass(make(copy.deepcopy(body()))["inputs"], Validator(FEATURES, 50)) is None


def _one_row_refusals():
    for f in NUMERIC:
        lo, hi = f.minimum, f.maximum
        values = [math.nan, math.inf, -math.inf, lo - 1, hi + 1, "12", None, True, False]
        yield from ((f.name, v) for v in values + ([lo + 0.5] if f.integer else []))


@pytest.mark.parametrize(("name", "value"), list(_one_row_refusals()))
def test_v2_body_one_row_leaves_every_refused_number_to_the_general_path(name, value):
    """Every value the general path refuses, as the one row's value: the one pass must say "unsure"."""
    items = [{**i, "data": [value]} if i["name"] == name else i for i in body(1)["inputs"]]
    with pytest.raises(RequestError, match=f"input '{name}'"):
        VALIDATOR.columns(parsed(items))
    assert one_pass(items) is None


@pytest.mark.parametrize("bound", ["minimum", "maximum"])
def test_v2_body_one_row_takes_the_bounds_and_whole_ints(bound):
    items = [
        {**i, "data": [int(getattr(f, bound)) if f.integer else getattr(f, bound)]}
        for i, f in zip(body(1)["inputs"], FEATURES, strict=True)
        if not f.is_categorical
    ] + [i for i, f in zip(body(1)["inputs"], FEATURES, strict=True) if f.is_categorical]
    assert_same_batch(one_pass(items), VALIDATOR.columns(parsed(items)))


# Each shape is right but for one thing, for n rows (list equality alone takes 1.0 and True for 1).
NOT_INT_SHAPES = {
    "n as a float": lambda n: [float(n)],
    "1 as a float": lambda n: [n, 1.0],
    "1 as true": lambda n: [n, True],
    "second dim 2": lambda n: [n, 2],
    "n + 1 rows": lambda n: [n + 1],
    "three dims": lambda n: [n, 1, 1],
    "no dims": lambda n: [],
    "a string": lambda n: str(n),
    "nested": lambda n: [[n]],
    "null": lambda n: None,
}


@pytest.mark.parametrize("make", list(NOT_INT_SHAPES.values()), ids=list(NOT_INT_SHAPES))
@pytest.mark.parametrize("rows", [1, 3])
def test_v2_body_one_pass_takes_shapes_of_ints_only(make, rows):
    """[n] or [n, 1] in JSON ints; anything else goes to the general path, which parses it itself."""
    items = body(rows)["inputs"]
    items[5] = {**items[5], "shape": make(rows)}
    assert one_pass(items) is None


def test_v2_body_one_pass_refuses_true_as_a_one_row_shape():
    """[true] equals [1]: one row's shape must still be an int."""
    items = body(1)["inputs"]
    items[5] = {**items[5], "shape": [True]}
    assert one_pass(items) is None


def test_v2_body_one_pass_takes_the_usual_body():
    request = body(3)
    assert_same_batch(
        one_pass(request["inputs"]),
        VALIDATOR.columns(parsed(request["inputs"])),
    )


def test_v2_body_returns_the_request_fields_beside_the_batch():
    request = {**body(2), "id": "r-1", "model_name": "churn", "parameters": {"binary_data_output": True},
               "outputs": [{"name": "churn"}]}  # fmt: skip
    decoded, batch = VALIDATOR.v2_body(orjson.dumps(request))
    assert (decoded.id, decoded.model_name, decoded.parameters, decoded.outputs) == (
        "r-1", "churn", {"binary_data_output": True}, [{"name": "churn"}]
    )  # fmt: skip
    assert_same_batch(batch, VALIDATOR.columns(parsed(request["inputs"])))


# What the typed decoder refuses though the general path may take it: each goes to the general path.
NOT_TYPED = {
    "an unknown request key": lambda b: {**b, "priority": 1},
    "an id that is not a string": lambda b: {**b, "id": 5},
    "an input with parameters": edit("gender", parameters={}),
    "an input with an unknown key": edit("gender", note=1),
    "a respelled category": edit("gender", data=["male", "Male"]),
    "an int for a whole number written 22.5": edit("tenure", data=[22.5, 22]),
    "inputs not a list": lambda b: {**b, "inputs": {}},
    "no inputs": lambda b: {**b, "inputs": []},
    "an input given twice": lambda b: {**b, "inputs": [*b["inputs"], b["inputs"][0]]},
    "an input given twice, another missing": lambda b: {**b, "inputs": [b["inputs"][0], *b["inputs"][:-1]]},
    "not JSON": lambda b: b"{",
}  # fmt: skip


@pytest.mark.parametrize("make", list(NOT_TYPED.values()), ids=list(NOT_TYPED))
def test_v2_body_leaves_what_it_does_not_type_to_the_general_path(make):
    made = make(body(2))
    assert VALIDATOR.v2_body(made if isinstance(made, bytes) else orjson.dumps(made)) is None


def test_v2_body_takes_json_ints_for_numbers_as_their_floats():
    ints = edit("tenure", data=[22, 3])(edit("MonthlyCharges", data=[70, 5])(body(2)))
    floats = edit("tenure", data=[22.0, 3.0])(edit("MonthlyCharges", data=[70.0, 5.0])(body(2)))
    assert_same_batch(VALIDATOR.v2_body(orjson.dumps(ints))[1], VALIDATOR.v2_body(orjson.dumps(floats))[1])


@pytest.mark.parametrize(
    ("value", "said"),
    [("13", 'a string "13"'), (True, "true (a boolean)"), (False, "false (a boolean)"), (None, "null"),
     (b"13", 'a string "13"')],
)  # fmt: skip
@pytest.mark.parametrize("container", ["list", "object array"])
def test_a_numeric_input_takes_numbers_only_whatever_its_datatype(value, said, container):
    """ "13" and true were read as 13.0 and 1.0 under FP32; ingest quarantines true for tenure."""
    values = [12.0, value]
    data = values if container == "list" else np.array(values, dtype=object)
    columns = parsed(body(2)["inputs"]) | {"tenure": Column(data, "FP32", [2, 1])}
    with pytest.raises(RequestError, match=f"^input 'tenure': row 1 is {re.escape(said)}, not a number$"):
        VALIDATOR.columns(columns)
    # numbers of any Python number type still pass, ints included
    VALIDATOR.columns(parsed(body(2)["inputs"]) | {"tenure": Column([12, 13.0], "FP32", [2, 1])})
