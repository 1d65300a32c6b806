"""Session fixtures for the infrastructure tests: one terraform copy, initialised once."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.infra import terraform_env
from tests.infra.tools import REPO, find_tool, run


@dataclass
class TerraformSession:
    binary: str
    tree: Path
    env: dict[str, str]
    mirror: Path | None
    # results[folder][step]: the init, validate and test runs of each folder of the copy.
    results: dict[Path, dict[str, object]] = field(default_factory=dict)

    def __call__(self, folder: Path, *args: str, timeout: float = 300):
        return run([self.binary, *args, "-no-color"], cwd=folder, env=self.env, timeout=timeout)

    def init(self, folder: Path):
        return self(folder, "init", "-backend=false", "-input=false")

    def check(
        self, folder: Path, roots: set[Path], tested: set[Path], init=None
    ) -> tuple[Path, dict[str, object]]:
        """init, then validate (roots) and test (folders with tests), stopping at a failed init."""
        steps = {"init": init or self.init(folder)}
        if steps["init"].returncode == 0:
            if folder in roots:
                steps["validate"] = self(folder, "validate")
            if folder in tested:
                steps["test"] = self(folder, "test")
        return folder, steps


@pytest.fixture(scope="session")
def terraform(tmp_path_factory: pytest.TempPathFactory) -> TerraformSession:
    """terraform init/validate/test of every root and tested module, on a copy of terraform/.

    Each `terraform test` spends seconds of CPU loading the AWS provider schema, so the folders
    are checked in parallel once per session and the tests read the stored results. One init runs
    first to fill the shared plugin cache; the others link from it.
    """
    binary = find_tool("terraform")
    if binary is None:
        pytest.skip("terraform is not installed (needs the terraform CLI >= 1.10 on PATH)")
    mirror = terraform_env.find_provider_mirror()
    tree, env = terraform_env.prepare(REPO / "terraform", tmp_path_factory.mktemp("tf"), mirror)
    session = TerraformSession(binary=binary, tree=tree, env=env, mirror=mirror)
    roots = set(terraform_env.roots(tree))
    tested = set(terraform_env.test_dirs(tree))
    folders = sorted(roots | tested)
    first_init = session.init(folders[0])
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        checks = pool.map(
            lambda f: session.check(f, roots, tested, first_init if f == folders[0] else None), folders
        )
        session.results.update(checks)
    return session
