"""Tracking, registration, quality-gated promotion and lineage on MLflow's own model registry.

One job per module (``docs/registry.md`` has the whole story):

- :mod:`~components.registry.client`: the bounded, preflighted MLflow client and error mapping;
- :mod:`~components.registry.tracking`: the MLflow run (params, metrics, lineage, artifacts);
- :mod:`~components.registry.scoring`: re-scoring bundles and gating against the champion;
- :mod:`~components.registry.register`: the register transaction with undo;
- :mod:`~components.registry.lock` / :mod:`~components.registry.audit`: the promotion lock and
  the audit trail, both stored in MLflow;
- :mod:`~components.registry.promotion`: the one alias-move function, promote and rollback;
- :mod:`~components.registry.queries`: read-only list/show/compare/history.
"""

from components.registry.audit import AuditEvent
from components.registry.client import Registry, RegistryError, connect, is_missing
from components.registry.lock import RegistryBusyError
from components.registry.promotion import AliasMove, Expect, move_alias, promote, rollback
from components.registry.queries import (
    alias_bundle_uri,
    audit_history,
    compare_versions,
    list_versions,
    show_version,
)
from components.registry.register import register_model

__all__ = [
    "AliasMove",
    "AuditEvent",
    "Expect",
    "Registry",
    "RegistryBusyError",
    "RegistryError",
    "alias_bundle_uri",
    "audit_history",
    "compare_versions",
    "connect",
    "is_missing",
    "list_versions",
    "move_alias",
    "promote",
    "register_model",
    "rollback",
    "show_version",
]
