"""v2 request bodies shared by the serving tests: a valid body, edits of it, and the bad-input cases.

``BAD`` maps a case name to ``(make(body) -> bad body, text the 400's error must contain)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

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
    "number as a JSON string": (edit("tenure", data=[12.0, "13"]), "input 'tenure': row 1 is a string"),
    "boolean in numeric": (edit("SeniorCitizen", data=[0.0, True]), "input 'SeniorCitizen': row 1 is true"),
    "null in numeric": (edit("MonthlyCharges", data=[None, 5.0]), "input 'MonthlyCharges': row 0 is null"),
    "oversized batch": (lambda b: body(51), "51 rows"),
}


def spellings(category: str) -> list[str]:
    """Ways a client may spell ``category`` that ingest reads as it: case, outer and inner whitespace."""
    doubled = category.replace(" ", "  \t")
    return [category.lower(), category.upper(), f"  {category} ", f"\t{doubled}\u00a0", category.swapcase()]


def decode(response) -> dict:
    """A v2 response as JSON, binary-extension outputs decoded into ``data`` (FP32 and BOOL)."""
    length = response.headers.get("inference-header-content-length")
    if length is None:
        return response.json()
    header = json.loads(response.content[: int(length)])
    offset = int(length)
    for output in header["outputs"]:
        size = (output.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            dtype = {"FP32": "<f4", "BOOL": "?"}[output["datatype"]]
            output["data"] = np.frombuffer(response.content[offset : offset + size], dtype).tolist()
            output["binary"] = True
            offset += size
    assert offset == len(response.content), "binary outputs do not add up to the body"
    return header


def docs_example(page: Path) -> tuple[dict, dict]:
    """The v2 request and response documented in ``page`` (docs/serving.md): the JSON block whose
    introducing paragraph is "`request.json`:" and the one whose paragraph starts "Response"."""
    blocks = {}
    for match in re.finditer(r"(?:^|\n\n)((?:[^\n]+\n)+)\n```json\n(.*?)\n```", page.read_text(), re.DOTALL):
        blocks[match.group(1).strip()] = json.loads(match.group(2))
    request = next(doc for lead, doc in blocks.items() if lead == "`request.json`:")
    response = next(doc for lead, doc in blocks.items() if lead.startswith("Response"))
    return request, response
