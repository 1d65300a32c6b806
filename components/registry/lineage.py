"""Settings of one data lineage: its registered model and its model-store root.

A lineage (``registry_names.data_lineage``: the synthetic demo, or the user's own data) is its
own registered model, so champions are only ever compared with and replaced by versions of the
same lineage. The names come from :mod:`components.registry_names`; this module only applies
them to :class:`~components.config.Settings`, whose ``registered_model`` / ``model_store_uri``
are the user's (real-data) ones.
"""

from __future__ import annotations

from dataclasses import replace

from components.config import Settings
from components.registry_names import (
    data_lineage,
    model_store_for_lineage,
    registered_model_for_lineage,
)


def lineage_settings(settings: Settings, lineage: str) -> Settings:
    """``settings`` pointed at ``lineage``'s registered model and model-store root."""
    return replace(
        settings,
        registered_model=registered_model_for_lineage(lineage, settings.registered_model),
        model_store_uri=model_store_for_lineage(settings.model_store_uri, lineage),
    )


def settings_for_source(settings: Settings, source_uri: str) -> Settings:
    """The settings a run on ``source_uri`` registers with."""
    return lineage_settings(settings, data_lineage(source_uri))
