"""Example requests built from a bundle's schema: the curl line printed at start-up, tests, benchmarks."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np

from components.schema import Feature


def example_row(features: Sequence[Feature]) -> dict:
    """One plausible row: each categorical's first category, each numeric's midpoint (whole if integer)."""
    row: dict = {}
    for f in features:
        if f.is_categorical:
            row[f.name] = f.categories[0]
        else:
            mid = (f.minimum + f.maximum) / 2
            row[f.name] = float(round(mid)) if f.integer else round(mid, 2)
    return row


def v2_request(features: Sequence[Feature], rows: Sequence[Mapping], request_id: str | None = None) -> dict:
    """An Open Inference Protocol v2 JSON body: one named input per feature, N rows."""
    body: dict = {
        "inputs": [
            {
                "name": f.name,
                "datatype": f.v2_datatype,
                "shape": [len(rows), 1],
                "data": [r[f.name] for r in rows],
            }
            for f in features
        ]
    }
    if request_id is not None:
        body["id"] = request_id
    return body


def curl_example(features: Sequence[Feature], model_name: str, base_url: str) -> str:
    """A ready-to-paste curl command scoring one example row."""
    body = json.dumps(v2_request(features, [example_row(features)]), separators=(",", ":"))
    return (
        f"curl -s {base_url}/v2/models/{model_name}/infer "
        f"-H 'Content-Type: application/json' -d '{body.replace(chr(39), chr(39) + chr(92) + chr(39) * 2)}'"
    )


def v2_binary_request(
    features: Sequence[Feature], rows: Sequence[Mapping], request_id: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """The same request in the v2 binary tensor extension: body and headers.

    A JSON header naming each input with ``parameters.binary_data_size``, then the tensors back
    to back: numerics as little-endian FP32, BYTES as a 4-byte little-endian length + UTF-8.
    """
    header = v2_request(features, rows, request_id)
    blobs = []
    for item in header["inputs"]:
        data = item.pop("data")
        if item["datatype"] == "BYTES":
            blob = b"".join(len(b).to_bytes(4, "little") + b for b in (str(v).encode() for v in data))
        else:
            blob = np.asarray(data, dtype="<f4").tobytes()
        item["parameters"] = {"binary_data_size": len(blob)}
        blobs.append(blob)
    head = json.dumps(header, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(head))}
    return head + b"".join(blobs), headers
