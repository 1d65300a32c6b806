"""Id-only scoring end to end: real Redis, the real predictor, the real transformer, real Feast.

Nothing is faked: Feast's production configuration (Redis online store) on a small generated
history (300 customers, 6 months ending this month), materialized; ``python -m serving`` on the
suite's trained bundle; ``python -m churn_transformer`` in front of it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn_transformer.online import OnlineFeatures
from components import feature_store, history, schema
from serving.examples import v2_request
from tests.support.feature_store import fill_store, start_transformer
from tests.support.model_server import start_model_server
from tests.support.redis_server import start_redis
from tests.support.v2_requests import outputs

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    work = tmp_path_factory.mktemp("id-scoring")
    redis = start_redis(work / "redis")
    try:
        yield fill_store(work, redis.connection)
    finally:
        redis.stop()


@pytest.fixture(scope="module")
def servers(filled, trained_run, tmp_path_factory):
    work = tmp_path_factory.mktemp("id-scoring-servers")
    predictor = start_model_server(trained_run.artifacts.bundle, work / "predictor.log")
    try:
        transformer = start_transformer(filled.settings, predictor.http_port, work / "transformer.log")
        try:
            yield predictor, transformer
        finally:
            transformer.stop()
    finally:
        predictor.stop()


@pytest.fixture(scope="module")
def latest(filled) -> pd.DataFrame:
    """Offline (point-in-time) features of every customer active at the last snapshot."""
    hist = filled.history
    active = hist.account.loc[hist.account[history.TIMESTAMP] == hist.end, [schema.ID_COLUMN]]
    return feature_store.historical_features(filled.store, active.assign(**{history.AS_OF: hist.end}))


def test_online_features_equal_the_offline_ones_for_the_latest_as_of(filled, latest):
    ids = latest[schema.ID_COLUMN].tolist()
    found = OnlineFeatures(filled.store).lookup(ids)
    assert found.unknown == [] and found.stale == []
    online = pd.DataFrame(found.rows)[list(schema.FEATURE_NAMES)]
    offline = latest[list(schema.FEATURE_NAMES)].reset_index(drop=True)
    for name in schema.CATEGORICAL:
        assert online[name].tolist() == offline[name].tolist(), name
    for name in schema.NUMERIC:
        np.testing.assert_allclose(online[name].astype(float), offline[name].astype(float), rtol=0, atol=1e-9)


def test_transformer_plus_predictor_scores_equal_the_full_row_request(servers, latest):
    predictor, transformer = servers
    sample = latest.head(25)
    answer = transformer.score(sample[schema.ID_COLUMN].tolist())
    assert answer.status_code == 200, answer.text
    by_id = np.asarray(answer.json()["churn_probability"], dtype=float)
    rows = sample[list(schema.FEATURE_NAMES)].to_dict("records")
    full = predictor.post("/v2/models/churn/infer", json=v2_request(schema.FEATURES, rows))
    assert full.status_code == 200, full.text
    direct = np.asarray(outputs(full.json())["churn_probability"]["data"], dtype=float)
    assert len(by_id) == len(direct) == 25
    assert np.max(np.abs(by_id - direct)) <= 1e-6


def test_unknown_ids_are_a_404_naming_each_and_nothing_is_scored(servers, latest):
    _, transformer = servers
    known = latest[schema.ID_COLUMN].iloc[0]
    answer = transformer.score([known, "no-such-customer", "9999999-ZZZZZ"])
    assert answer.status_code == 404, answer.text
    detail = answer.json()["detail"]
    assert detail["unknown_customer_ids"] == ["no-such-customer", "9999999-ZZZZZ"]
    assert "no-such-customer" in detail["error"]


def test_stale_features_are_refused_naming_the_id_and_view(filled, servers):
    """A customer who left months ago still has rows in Redis (Feast's online store ignores the
    ttl); the transformer refuses to score them."""
    _, transformer = servers
    events = filled.history.churn_events
    gone = events.loc[
        events[history.CHURN_DATE] < filled.history.end - pd.Timedelta(days=60), schema.ID_COLUMN
    ]
    assert len(gone), "the history should hold customers who left two months before its end"
    customer = gone.iloc[0]
    answer = transformer.score([customer])
    assert answer.status_code == 409, answer.text
    stale = answer.json()["detail"]["stale"]
    assert {s["customer_id"] for s in stale} == {customer}
    assert {s["view"] for s in stale} == set(feature_store.VIEWS)
    assert all(s["age_s"] > s["ttl_s"] for s in stale)


def test_a_body_sent_without_a_json_content_type_is_read_too(servers, latest):
    """curl -d sends a form-encoded content type: the ids are still read; text that is not JSON is
    a 400 (kserve's own decoder or ours answers it)."""
    import requests

    _, transformer = servers
    url = f"{transformer.url}/v1/models/churn:predict"
    known = latest[schema.ID_COLUMN].iloc[0]
    answer = requests.post(url, data=f'{{"customer_id": ["{known}"]}}', timeout=30)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["churn_probability"]) == 1
    bad = requests.post(url, data="customer_id=1", timeout=30)
    assert bad.status_code == 400, bad.text


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"customer_id": []},
        {"customer_id": "0000001-ABCDE"},
        {"customer_id": [1, 2]},
        {"customer_id": [""]},
    ],
)
def test_malformed_bodies_are_a_400_naming_the_field(servers, body):
    import requests

    _, transformer = servers
    answer = requests.post(f"{transformer.url}/v1/models/churn:predict", json=body, timeout=30)
    assert answer.status_code == 400, answer.text
    assert "customer_id" in answer.json()["detail"]["error"]
