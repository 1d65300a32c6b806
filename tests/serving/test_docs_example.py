"""docs/serving.md's v2 example, run against the real server: the documented response has the fields,
order, shapes and types the server answers (README copies its example from that page)."""

from __future__ import annotations

import pytest

from tests.support.model_server import REPO
from tests.support.v2_requests import docs_example

pytestmark = pytest.mark.integration
DOCS = REPO / "docs" / "serving.md"


def skeleton(answer: dict) -> dict:
    """A response without its values: keys in order, output names, shapes, types and data lengths."""
    return {
        "keys": list(answer),
        "id": answer["id"],
        "outputs": [
            {**{k: v for k, v in o.items() if k != "data"}, "data": [type(x).__name__ for x in o["data"]]}
            for o in answer["outputs"]
        ],
    }


@pytest.mark.parametrize("route", ["lean", "generic"])
def test_documented_example_matches_the_server(server, generic, route, metadata):
    srv = {"lean": server, "generic": generic}[route]
    request, documented = docs_example(DOCS)
    response = srv.post("/v2/models/churn/infer", json=request)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert skeleton(answer) == skeleton(documented)
    # The page documents `make serve` on a registered champion: model_version is the registry
    # version (a decimal number), never a content hash; this run-folder server names its content id.
    assert documented["model_version"].isdecimal()
    assert answer["model_version"] == metadata.content_id
