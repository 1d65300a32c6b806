"""Shared fixtures: one small model trained by the real steps, reused across the suite."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest

# Every test run gets its own project data dir: nothing reads or writes the developer's .churn/.
os.environ["CHURN_HOME"] = tempfile.mkdtemp(prefix="churn-test-home-")
atexit.register(shutil.rmtree, os.environ["CHURN_HOME"], ignore_errors=True)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """An XGBoost churn model on 4,000 synthetic rows (seed 7), with every artifact the steps write."""
    from tests.support.bundles import build_run

    return build_run(tmp_path_factory.mktemp("trained"))


@pytest.fixture(scope="session")
def trained_bundle(trained_run):
    """Transitional alias of ``trained_run`` while other test packages switch over; to be removed."""
    return trained_run
