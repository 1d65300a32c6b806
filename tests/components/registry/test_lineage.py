"""Data lineages: the synthetic demo registers in its own namespace and never replaces a real champion."""

from __future__ import annotations

from dataclasses import replace

import pytest

from components.ingest import synthetic_uri
from components.registry.lineage import lineage_settings
from components.registry_names import (
    LINEAGE_REAL,
    LINEAGE_SYNTHETIC,
    TAG_DATA_LINEAGE,
    data_lineage,
    model_store_for_lineage,
    registered_model_for,
)
from tests.support.bundles import register_run


def test_the_lineage_and_its_names_are_decided_in_one_place():
    assert data_lineage(synthetic_uri(100, 1)) == LINEAGE_SYNTHETIC
    assert data_lineage("/data/telco.csv") == data_lineage("s3://b/telco.csv") == LINEAGE_REAL
    assert registered_model_for(synthetic_uri(100, 1), "churn") == "churn-synthetic"
    assert registered_model_for("s3://b/telco.csv", "churn") == "churn"
    assert model_store_for_lineage("s3://b/models/", LINEAGE_SYNTHETIC) == "s3://b/models/synthetic"
    assert model_store_for_lineage("s3://b/models/", LINEAGE_REAL) == "s3://b/models"
    with pytest.raises(ValueError, match="data lineage"):
        model_store_for_lineage("/m", "other")


def test_a_demo_run_never_replaces_the_real_champion(good, settings, aliases, registry):
    real = register_run(good, settings)  # the user's own data file: the user's registered model
    demo_run = replace(good, lineage=replace(good.lineage, source_uri=synthetic_uri(3000, 0)))
    demo = register_run(demo_run, settings)  # then a plain `make run`

    assert real["registered_model"] == settings.registered_model
    demo_settings = lineage_settings(settings, LINEAGE_SYNTHETIC)
    assert demo["registered_model"] == demo_settings.registered_model
    assert demo_settings.registered_model == f"{settings.registered_model}-synthetic"
    assert demo["version"] == "1" and demo["compared_against_champion"] is None  # its own first champion
    assert aliases(settings) == {"champion": "1", "challenger": "1"}  # the real champion stayed
    assert aliases(demo_settings) == {"champion": "1", "challenger": "1"}
    assert demo["bundle_uri"].startswith(demo_settings.model_store_uri)
    assert not real["bundle_uri"].startswith(demo_settings.model_store_uri)
    real_tags = registry.client.get_model_version(settings.registered_model, "1").tags
    assert real_tags[TAG_DATA_LINEAGE] == LINEAGE_REAL
    demo_tags = registry.client.get_model_version(demo_settings.registered_model, "1").tags
    assert demo_tags[TAG_DATA_LINEAGE] == LINEAGE_SYNTHETIC


def test_the_gate_refuses_a_champion_of_another_lineage(good, settings, registry, aliases):
    register_run(good, settings)  # v1
    # a version that got into this model from other data (e.g. registered before lineages existed)
    registry.client.set_model_version_tag(settings.registered_model, "1", TAG_DATA_LINEAGE, LINEAGE_SYNTHETIC)
    out = register_run(good, settings)
    assert out["gate"]["verdict"] == "refused" and not out["gate"]["passed"]
    assert any("data lineage 'synthetic'" in r and "'real'" in r for r in out["gate"]["reasons"])
    assert aliases(settings) == {"champion": "1", "challenger": "1"}  # nothing moved
