"""Strict structural check of Kubernetes objects and KFP API bodies against the client SDKs' OpenAPI models.

The kserve SDK (pinned in pyproject) carries the InferenceService and ServingRuntime models of
the KServe release we target, and the kubernetes client the core ones. Walking a manifest against
a model's `openapi_types` / `attribute_map` catches misspelt or misplaced fields and wrong
scalar types, offline, for CRDs that no bundled JSON schema knows.
"""

from __future__ import annotations

import re
from typing import Any

import kfp_server_api.models
import kserve.models
import kubernetes.client.models

SCALARS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "bool": (bool,),
    "float": (int, float),
    "datetime": (str,),
    "object": (object,),
}
LIST = re.compile(r"^list\[(.+)\]$")
DICT = re.compile(r"^dict\(str, (.+)\)$")
# Types whose JSON form is not their model's shape (int-or-string, quantities).
FREE_FORM = {"IntOrString", "Quantity"}


def model_class(name: str) -> type:
    for namespace in (kserve.models, kubernetes.client.models, kfp_server_api.models):
        if hasattr(namespace, name):
            return getattr(namespace, name)
    raise LookupError(f"no OpenAPI model named {name}")


def errors(value: Any, type_name: str, path: str = "") -> list[str]:
    """Every field of value that the model type_name does not define, or defines as another type."""
    if type_name in FREE_FORM:
        return []
    if type_name in SCALARS:
        ok = isinstance(value, SCALARS[type_name]) and not (type_name == "int" and isinstance(value, bool))
        return [] if ok else [f"{path or '/'}: expected {type_name}, got {type(value).__name__}"]
    if match := LIST.match(type_name):
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [e for i, item in enumerate(value) for e in errors(item, match[1], f"{path}[{i}]")]
    if match := DICT.match(type_name):
        if not isinstance(value, dict):
            return [f"{path}: expected a mapping"]
        return [e for k, item in value.items() for e in errors(item, match[1], f"{path}.{k}")]
    cls = model_class(type_name)
    if getattr(cls, "allowable_values", None):  # an enum model (kfp_server_api): its JSON is one of them
        ok = value in cls.allowable_values
        return [] if ok else [f"{path}: {value!r} is not one of {type_name} {cls.allowable_values}"]
    if not isinstance(value, dict):
        return [f"{path}: expected an object ({type_name})"]
    by_json_name = {json: attr for attr, json in cls.attribute_map.items()}
    found = []
    for key, item in value.items():
        if key not in by_json_name:
            found.append(f"{path}.{key}: not a field of {type_name}")
            continue
        found += errors(item, cls.openapi_types[by_json_name[key]], f"{path}.{key}")
    return found


def model_for(manifest: dict) -> str | None:
    """The model name for a manifest's apiVersion/kind, or None when no SDK knows it."""
    group_version = manifest["apiVersion"]
    version = group_version.split("/")[-1]
    group = group_version.split("/")[0] if "/" in group_version else "core"
    v1_groups = ("core", "apps", "networking.k8s.io", "policy", "rbac.authorization.k8s.io")
    prefix = "V1" if group in v1_groups else None
    if group == "serving.kserve.io":
        prefix = version.capitalize()
    if prefix is None:
        return None
    name = prefix + manifest["kind"]
    try:
        model_class(name)
    except LookupError:
        return None
    return name
