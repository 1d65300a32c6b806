"""Fixtures of the monitoring tests (data helpers: ``tests/support/payload_logs.py``)."""

from __future__ import annotations

import pytest

from components import reference
from components.config import load_settings
from tests.support.payload_logs import make_reference


@pytest.fixture(scope="session")
def synthetic_reference() -> reference.Reference:
    """The reference of 10,000 undrifted rows (seed 1) scored by their true probabilities."""
    return make_reference()


@pytest.fixture(scope="session")
def settings():
    return load_settings()
