"""The prod feature-store overlay (manifests/feature-store/prod): the InferenceService gains the
feature transformer. The cluster is faked: the built objects are validated against the kserve
SDK and Kubernetes OpenAPI models, and checked against what the transformer reads."""

from __future__ import annotations

import re

import pytest
import yaml

from components import feature_store
from tests.infra import openapi_models
from tests.infra.test_manifests import MANIFESTS, build, one
from tests.infra.tools import REPO

OVERLAY = MANIFESTS / "feature-store" / "prod"


@pytest.fixture(scope="module")
def docs():
    return build(OVERLAY)


def test_every_object_matches_the_kserve_and_kubernetes_models(docs):
    checked = set()
    for doc in docs:
        model = openapi_models.model_for(doc)
        if model is not None:
            checked.add(doc["kind"])
            assert openapi_models.errors(doc, model) == [], f"{doc['kind']}/{doc['metadata']['name']}"
    assert {"InferenceService", "NetworkPolicy"} <= checked
    assert "TRANSFORMER_IMAGE" not in yaml.safe_dump_all(docs)


def test_the_inference_service_has_the_transformer_in_front_of_the_unchanged_predictor(docs):
    isvc = one(docs, "InferenceService", "churn")
    prod = one(build(MANIFESTS / "overlays" / "prod"), "InferenceService", "churn")
    assert isvc["spec"]["predictor"] == prod["spec"]["predictor"]
    (container,) = isvc["spec"]["transformer"]["containers"]
    assert re.fullmatch(r".+/transformer:[\w.-]+", container["image"])
    assert container["args"][:2] == ["--model_name", isvc["metadata"]["name"]]


def test_the_transformer_gets_every_variable_its_feast_configuration_reads(docs):
    """The production YAML's ${...} names are exactly what the container's env provides."""
    (container,) = one(docs, "InferenceService", "churn")["spec"]["transformer"]["containers"]
    given = {e["name"] for e in container["env"]}
    wanted = set(
        re.findall(
            r"\$\{(\w+)\}", (REPO / "feature_repo" / feature_store.CONFIG_FILES["production"]).read_text()
        )
    )
    assert wanted <= given, wanted - given
    registry = next(e["value"] for e in container["env"] if e["name"] == "CHURN_FEATURE_REGISTRY")
    assert registry.startswith("s3://")


def test_the_transformer_may_reach_the_predictor_and_redis_and_the_predictor_admits_it(docs):
    out = one(docs, "NetworkPolicy", "churn-transformer")["spec"]
    assert {p["port"] for rule in out["egress"] for p in rule["ports"]} >= {6379, 8012}
    into = one(docs, "NetworkPolicy", "churn-predictor-from-transformer")["spec"]
    (rule,) = into["ingress"]
    assert rule["from"][0]["podSelector"]["matchLabels"]["component"] == "transformer"
