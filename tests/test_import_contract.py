"""The import contract, read from the source (AST), so the serving image boundary is enforced.

- ``serving/`` imports only the standard library, ``serving`` itself, the packages of the
  ``serving`` extra in pyproject.toml, and the bottom-layer modules in :data:`BOTTOM`;
- the bottom-layer modules import only the standard library, each other and the ``serving``
  extra's packages (never pandas, scikit-learn, xgboost, mlflow, onnx, ...): the serving image
  ships exactly these files (``serving/Dockerfile``);
- nothing in ``components/`` imports ``pipelines`` or ``serving`` (nothing imports upward).

Every import counts, also one inside a function.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
import tomllib  # Python >= 3.11 (the venv and every image); ruff's py310 target files it here

REPO = Path(__file__).resolve().parents[1]
BOTTOM = frozenset({"components", *(f"components.{m}" for m in
                    ("schema", "config", "storage", "errors", "bundle", "registry_names",
                     "payload_log"))})  # fmt: skip
NEVER_IN_BOTTOM = ("pandas", "sklearn", "xgboost", "mlflow", "onnx", "onnxruntime", "onnxmltools", "skl2onnx")
STDLIB = frozenset(sys.stdlib_module_names)


def _normalise(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def serving_extra_modules() -> frozenset[str]:
    """Top-level import names provided by the distributions of pyproject's ``serving`` extra."""
    # pyproject.toml, not installed metadata: a stale *.egg-info in the tree would shadow the latter.
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {_normalise(re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0])
              for r in project["optional-dependencies"]["serving"]}  # fmt: skip
    provided = importlib.metadata.packages_distributions()
    return frozenset(m for m, dists in provided.items() if wanted & {_normalise(d) for d in dists})


def imports(path: Path, root: Path = REPO) -> Iterable[tuple[int, str]]:
    """``(line, absolute dotted module)`` of every import in ``path`` (relative ones resolved)."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module
            if module == "__future__":
                continue
            # ``from components import bundle`` imports the module components.bundle.
            yield from ((node.lineno, f"{module}.{alias.name}") for alias in node.names)


def _allowed_module(module: str, allowed: frozenset[str]) -> bool:
    """``module`` or, for ``from pkg import name``, the package itself is in ``allowed``."""
    parts = module.split(".")
    return any(".".join(parts[:i]) in allowed for i in range(1, len(parts) + 1))


def violations(files: Iterable[Path], ok: Callable[[str], bool], root: Path = REPO) -> list[str]:
    """``file:line: imports module`` for each import in ``files`` that ``ok`` refuses."""
    return [f"{path.relative_to(root)}:{line}: imports {module}"
            for path in files for line, module in imports(path, root) if not ok(module)]  # fmt: skip


def serving_rule(extra: frozenset[str]) -> Callable[[str], bool]:
    def ok(module: str) -> bool:
        top = module.split(".")[0]
        if top == "components":
            # "components.schema.FEATURES" (from-import of a name) or "components.schema".
            return ".".join(module.split(".")[:2]) in BOTTOM
        return top in STDLIB or top == "serving" or top in extra

    return ok


def bottom_rule(extra: frozenset[str]) -> Callable[[str], bool]:
    def ok(module: str) -> bool:
        top = module.split(".")[0]
        if top in NEVER_IN_BOTTOM:
            return False
        if top == "components":
            return ".".join(module.split(".")[:2]) in BOTTOM
        return top in STDLIB or top in extra

    return ok


def not_upward(module: str) -> bool:
    return module.split(".")[0] not in {"pipelines", "serving"}


def bottom_files() -> list[Path]:
    return [REPO / "components" / "__init__.py"] + [
        REPO / f"{name.replace('.', '/')}.py" for name in sorted(BOTTOM - {"components"})
    ]


@pytest.fixture(scope="module")
def extra() -> frozenset[str]:
    modules = serving_extra_modules()
    assert {"kserve", "onnxruntime", "numpy"} <= modules, "the serving extra is not installed"
    return modules


# The feature transformer's image (churn_transformer/Dockerfile) ships these project modules only.
TRANSFORMER_SHIPS = frozenset({"components", "components.schema", "serving", "serving.examples",
                               "serving.bound_server"})  # fmt: skip


def test_the_transformer_imports_only_its_requirements_and_what_its_image_ships():
    """churn_transformer/ (Feast + kserve) never pulls in the predictor's or the training stack."""
    lines = (REPO / "churn_transformer" / "requirements.txt").read_text().splitlines()
    wanted = {_normalise(re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0]) for r in lines if r and r[0] != "#"}
    provided = importlib.metadata.packages_distributions()
    own = frozenset(m for m, dists in provided.items() if wanted & {_normalise(d) for d in dists})
    assert {"feast", "kserve"} <= own

    def ok(module: str) -> bool:
        top = module.split(".")[0]
        in_image = ".".join(module.split(".")[:2]) in TRANSFORMER_SHIPS
        return top in STDLIB or top in own or top == "churn_transformer" or in_image

    assert violations(sorted((REPO / "churn_transformer").rglob("*.py")), ok) == []
    dockerfile = (REPO / "churn_transformer" / "Dockerfile").read_text()
    shipped = set(re.findall(r"((?:components|serving)/\w+)\.py", dockerfile))
    assert {s.replace("/", ".") for s in shipped} - {"components.__init__", "serving.__init__"} == (
        TRANSFORMER_SHIPS - {"components", "serving"}
    )


def test_serving_imports_only_the_stdlib_its_extra_and_the_bottom_layer(extra):
    assert violations(sorted((REPO / "serving").rglob("*.py")), serving_rule(extra)) == []


def test_bottom_layer_imports_only_the_stdlib_its_peers_and_the_serving_extra(extra):
    files = bottom_files()
    assert all(path.is_file() for path in files), files
    assert violations(files, bottom_rule(extra)) == []


def test_components_never_import_pipelines_or_serving():
    assert violations(sorted((REPO / "components").rglob("*.py")), not_upward) == []


def test_the_serving_image_ships_exactly_the_bottom_layer():
    dockerfile = (REPO / "serving" / "Dockerfile").read_text()
    copied = set(re.findall(r"components/(\w+)\.py", dockerfile))
    assert copied == {"__init__"} | {m.split(".")[1] for m in BOTTOM - {"components"}}


@pytest.mark.parametrize(
    ("where", "source", "rule"),
    [
        ("serving/x.py", "import pandas\n", "serving"),
        ("serving/x.py", "def f():\n    from components.train import train\n", "serving"),
        ("serving/x.py", "from components import export\n", "serving"),
        ("components/x.py", "from . import steps\n", "bottom"),
        ("components/x.py", "import onnx.helper\n", "bottom"),
        ("components/x.py", "from serving.model import ChurnModel\n", "upward"),
    ],
)
def test_the_checker_catches_a_broken_contract(tmp_path, extra, where, source, rule):
    """Broken on purpose: each of these sources must be reported."""
    path = tmp_path / where
    path.parent.mkdir(parents=True)
    path.write_text(source)
    ok = {"serving": serving_rule(extra), "bottom": bottom_rule(extra), "upward": not_upward}[rule]
    assert len(violations([path], ok, tmp_path)) == 1


# Layers inside components/ (docs/architecture.md): a module imports only its own layer or lower ones.
_LAYER_MEMBERS: tuple[tuple[str, ...], ...] = (
    ("errors", "schema", "config", "storage", "bundle", "registry_names", "artifacts", "payload_log"),
    ("synthetic", "history", "feature_store", "ingest", "features", "calibration", "onnx_converters", "train",
     "evaluate", "report", "export", "gate", "model_store", "params", "score", "reasons", "scored_output",
     "score_report", "forked", "search", "reference", "monitoring"),
    ("registry", "rollout"),
    ("steps", "kfp_components", "kfp_scoring", "scoring_model", "kfp_materialize", "kfp_deploy",
     "monitor_model", "retrain", "retrain_claims", "monitor_step", "kfp_monitoring"),
)  # fmt: skip
COMPONENT_LAYERS: dict[str, int] = {
    name: layer for layer, names in enumerate(_LAYER_MEMBERS) for name in names
}


def component_layer(module: str) -> int | None:
    """Layer of ``components.<name>...`` (None for the package itself or non-components modules)."""
    parts = module.split(".")
    if parts[0] != "components" or len(parts) < 2 or parts[1] == "__init__":
        return None
    return COMPONENT_LAYERS[parts[1]]


def layer_rule(own: int) -> Callable[[str], bool]:
    def ok(module: str) -> bool:
        layer = component_layer(module)
        return layer is None or layer <= own

    return ok


def test_every_components_module_has_a_layer():
    names = {p.stem for p in (REPO / "components").glob("*.py")} - {"__init__"}
    names |= {p.name for p in (REPO / "components").iterdir() if (p / "__init__.py").is_file()}
    assert names == set(COMPONENT_LAYERS), "add the module to COMPONENT_LAYERS and docs/architecture.md"


def test_components_import_only_their_own_layer_or_lower():
    found = []
    for path in sorted((REPO / "components").rglob("*.py")):
        layer = component_layer(".".join(path.relative_to(REPO).with_suffix("").parts))
        if layer is not None:
            found += violations([path], layer_rule(layer))
    assert found == []


def test_the_layer_check_catches_an_upward_import(tmp_path):
    """Broken on purpose: a step module importing the registry (layer 1 -> 2) is reported."""
    path = tmp_path / "components" / "ingest.py"
    path.parent.mkdir()
    path.write_text("def f():\n    from components.registry import register_model\n")
    assert len(violations([path], layer_rule(COMPONENT_LAYERS["ingest"]), tmp_path)) == 1
