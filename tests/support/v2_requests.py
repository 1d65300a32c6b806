"""v2 request bodies shared by the serving tests: a valid body, edits of it, and the bad-input cases.

``BAD`` maps a case name to ``(make(body) -> bad body, text the 400's error must contain)``.
"""

from __future__ import annotations

from collections.abc import Callable

from components.schema import FEATURES
from serving.examples import example_row, v2_request


def body(rows: int = 2) -> dict:
    """A valid v2 JSON request of ``rows`` copies of the example row."""
    return v2_request(FEATURES, [example_row(FEATURES)] * rows)


def edit(name: str, **changes) -> Callable[[dict], dict]:
    """A function that updates input ``name`` of a body with ``changes`` (in place) and returns it."""

    def apply(request: dict) -> dict:
        for item in request["inputs"]:
            if item["name"] == name:
                item.update(changes)
        return request

    return apply


def outputs(answer: dict) -> dict:
    """A v2 response's outputs by name."""
    return {o["name"]: o for o in answer["outputs"]}


BAD: dict[str, tuple[Callable[[dict], dict], str]] = {
    "unknown input": (
        lambda b: {**b, "inputs": [*b["inputs"], {**b["inputs"][0], "name": "shoe_size"}]},
        "shoe_size",
    ),
    "missing input": (lambda b: {**b, "inputs": [i for i in b["inputs"] if i["name"] != "tenure"]}, "tenure"),
    "wrong datatype": (edit("Contract", datatype="FP32", data=[1.0, 2.0]), "Contract"),
    "numeric as BYTES": (edit("tenure", datatype="BYTES", data=["12", "13"]), "tenure"),
    "different lengths": (edit("MonthlyCharges", shape=[3, 1], data=[1.0, 2.0, 3.0]), "MonthlyCharges"),
    "shape mismatch": (edit("MonthlyCharges", shape=[2, 1], data=[1.0]), "MonthlyCharges"),
    "NaN": (edit("TotalCharges", data=[1.0, "NaN"]), "TotalCharges"),
    "infinite": (edit("TotalCharges", data=["inf", 1.0]), "TotalCharges"),
    "above maximum": (edit("tenure", data=[12.0, 500.0]), "tenure"),
    "negative": (edit("MonthlyCharges", data=[-5.0, 10.0]), "MonthlyCharges"),
    "not a whole number": (edit("SeniorCitizen", data=[0.5, 1.0]), "SeniorCitizen"),
    "category not a string": (edit("gender", data=[1, 2], datatype="BYTES"), "gender"),
    "text in numeric": (edit("tenure", data=["a lot", 1.0]), "tenure"),
    "oversized batch": (lambda b: body(51), "51 rows"),
}
