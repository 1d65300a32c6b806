"""terraform fmt, validate for every environment root, and `terraform test` (AWS mocked)."""

from __future__ import annotations

import pytest

from tests.infra import terraform_env
from tests.infra.tools import REPO, explain, find_tool, run

TREE = REPO / "terraform"
ROOTS = terraform_env.roots(TREE)
TESTED = terraform_env.test_dirs(TREE)


def _ids(folders):
    return [str(f.relative_to(TREE)) for f in folders]


def test_layout_has_every_environment_and_module():
    assert [r.name for r in ROOTS] == ["dev", "prod", "staging"]
    for module in ("network", "eks", "storage", "iam", "rds", "kms", "irsa-role", "service-role", "platform"):
        assert list((TREE / "modules" / module).glob("*.tf")), f"modules/{module} is empty"
    # Every security-relevant module carries its own terraform tests.
    for module in ("network", "eks", "storage", "iam", "rds", "platform"):
        assert TREE / "modules" / module in TESTED, f"modules/{module} has no tests/*.tftest.hcl"


def test_fmt_is_clean():
    binary = find_tool("terraform")
    if binary is None:
        pytest.skip("terraform is not installed (needs the terraform CLI >= 1.10 on PATH)")
    # fmt -check only reads, so it runs on the checkout itself.
    result = run([binary, "fmt", "-check", "-recursive", "-diff", "-no-color", str(TREE)])
    assert result.returncode == 0, explain(result)


def _steps(terraform, folder):
    steps = terraform.results[terraform.tree / folder.relative_to(TREE)]
    assert steps["init"].returncode == 0, f"mirror={terraform.mirror}\n" + explain(steps["init"])
    return steps


@pytest.mark.parametrize("root", ROOTS, ids=_ids(ROOTS))
def test_root_initialises_offline_and_validates(terraform, root):
    result = _steps(terraform, root)["validate"]
    assert result.returncode == 0, explain(result)


@pytest.mark.parametrize("folder", TESTED, ids=_ids(TESTED))
def test_terraform_test_passes_with_mocked_aws(terraform, folder):
    result = _steps(terraform, folder)["test"]
    assert result.returncode == 0, explain(result)
    assert "0 failed" in result.stdout and " 0 passed" not in result.stdout, result.stdout


def test_mirror_search_honours_the_override(tmp_path):
    (tmp_path / "registry.terraform.io" / "hashicorp" / "aws").mkdir(parents=True)
    assert terraform_env.find_provider_mirror({"TF_PROVIDER_MIRROR": str(tmp_path)}) == tmp_path
    assert terraform_env.find_provider_mirror({"TF_PROVIDER_MIRROR": str(tmp_path / "nope")}) is None
