"""Fixtures shared by the step tests."""

import pytest

from components.ingest import IngestConfig, clean, split
from components.synthetic import generate


@pytest.fixture(scope="session")
def splits():
    """Train / valid / test of 2,500 cleaned synthetic rows: enough to fit every model type fast."""
    return split(clean(generate(2500, seed=21)).data, IngestConfig(seed=21))
