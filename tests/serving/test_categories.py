"""Category values are normalised exactly as ingest does (``components.schema.normalise_category``)
before the ONNX feeds, through the real server on the lean route and on kserve's generic route."""

from __future__ import annotations

import pytest

from components.schema import FEATURES
from serving.examples import example_row, v2_binary_request, v2_request
from tests.support.v2_requests import decode, outputs, spellings

pytestmark = pytest.mark.integration
CATEGORICAL = [f for f in FEATURES if f.is_categorical]


def scores(server, rows: list[dict], binary: bool = False) -> list[float]:
    if binary:
        payload, headers = v2_binary_request(FEATURES, rows)
        response = server.post("/v2/models/churn/infer", data=payload, headers=headers)
    else:
        response = server.post("/v2/models/churn/infer", json=v2_request(FEATURES, rows))
    assert response.status_code == 200, response.text
    return outputs(decode(response))["churn_probability"]["data"]


def unknown_total(server, feature: str) -> float:
    label = f'feature="{feature}"'
    lines = server.get("/metrics").text.splitlines()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith("churn_unknown_categories_total{") and label in line
    )


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary-extension"])
@pytest.mark.parametrize("route", ["lean", "generic"])
def test_every_spelling_ingest_accepts_scores_as_the_canonical_value(server, generic, route, binary):
    srv = {"lean": server, "generic": generic}[route]
    base = example_row(FEATURES)
    for feature in CATEGORICAL:
        canonical, spelled = [], []
        for category in feature.categories:
            for spelling in spellings(category):
                canonical.append({**base, feature.name: category})
                spelled.append({**base, feature.name: spelling})
        for start in range(0, len(spelled), 50):  # the fixtures' --max_batch_rows
            before = unknown_total(srv, feature.name)
            got = scores(srv, spelled[start : start + 50], binary)
            assert got == scores(srv, canonical[start : start + 50], binary), feature.name
            assert unknown_total(srv, feature.name) == before, f"{feature.name}: spellings counted as unknown"


@pytest.mark.parametrize("route", ["lean", "generic"])
@pytest.mark.parametrize("blank", ["", "   ", None], ids=["empty", "spaces", "null"])
def test_blank_or_null_category_is_a_400_naming_the_field(server, generic, route, blank):
    srv = {"lean": server, "generic": generic}[route]
    rows = [example_row(FEATURES), {**example_row(FEATURES), "Contract": blank}]
    response = srv.post("/v2/models/churn/infer", json=v2_request(FEATURES, rows))
    assert response.status_code == 400, response.text
    assert "'Contract'" in response.json()["error"] and "row 1" in response.json()["error"]


@pytest.mark.parametrize("route", ["lean", "generic"])
def test_truly_unknown_values_are_scored_and_counted(server, generic, route):
    srv = {"lean": server, "generic": generic}[route]
    before = unknown_total(srv, "PaymentMethod")
    rows = [{**example_row(FEATURES), "PaymentMethod": v} for v in ("Bitcoin", " bitcoin ", "Mailed check")]
    got = scores(srv, rows)
    assert len(got) == 3 and all(0.0 <= p <= 1.0 for p in got)
    assert unknown_total(srv, "PaymentMethod") == before + 2
