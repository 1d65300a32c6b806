"""Terraform offline: find a provider mirror, write a CLI config for it, work on a copy.

The machine may point TF_CLI_CONFIG_FILE at a file that does not exist and no registry is
reachable, so every terraform command here runs with a CLI config written for the session: the
filesystem mirror of hashicorp/aws (found, never hard-coded) plus a plugin cache shared by all
roots. Terraform writes `.terraform/` and lock files next to the configuration, so it runs on a
copy of terraform/ and the checkout stays clean.
"""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

PROVIDER_DIR = Path("registry.terraform.io") / "hashicorp" / "aws"
# Where distributions and images put provider mirrors; TF_PROVIDER_MIRROR overrides them all.
SEARCH_ROOTS = [
    "/usr/share",
    "/usr/local/share",
    "/usr/local",
    "/opt",
    "/root",
    str(Path.home() / ".terraform.d"),
    str(Path.home() / ".local" / "share"),
]
MAX_DEPTH = 3


def find_provider_mirror(environ: dict[str, str] | None = None) -> Path | None:
    """The folder holding `registry.terraform.io/hashicorp/aws`, or None when there is none."""
    environ = os.environ if environ is None else environ
    override = environ.get("TF_PROVIDER_MIRROR")
    if override:
        return Path(override) if (Path(override) / PROVIDER_DIR).is_dir() else None
    for root in SEARCH_ROOTS:
        for depth in range(MAX_DEPTH + 1):
            pattern = os.path.join(root, *(["*"] * depth), str(PROVIDER_DIR))
            for hit in sorted(glob.glob(pattern)):
                if Path(hit).is_dir():
                    return Path(hit).parents[2]
    return None


MIRROR_BLOCK = """
provider_installation {
  filesystem_mirror {
    path    = "%s"
    include = ["registry.terraform.io/*/*"]
  }
  direct {
    exclude = ["registry.terraform.io/*/*"]
  }
}
"""


def cli_config(mirror: Path | None, plugin_cache: Path) -> str:
    """Terraform CLI configuration: registry providers from the mirror only, one plugin cache."""
    config = f'plugin_cache_dir = "{plugin_cache}"\n'
    return config + (MIRROR_BLOCK % mirror if mirror is not None else "")


def prepare(source: Path, workdir: Path, mirror: Path | None) -> tuple[Path, dict[str, str]]:
    """Copy the terraform tree into workdir and return (copy, environment for terraform)."""
    copy = workdir / "terraform"
    # symlinks=True keeps envs/<env>/*.tf -> ../common/*.tf pointing inside the copy.
    shutil.copytree(source, copy, symlinks=True, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
    # The environment roots read the repository's one versions file (platform/versions.yaml).
    versions = source.parent / "platform" / "versions.yaml"
    (workdir / "platform").mkdir()
    shutil.copy2(versions, workdir / "platform" / versions.name)
    cache = workdir / "plugin-cache"
    cache.mkdir()
    config = workdir / "terraform.rc"
    config.write_text(cli_config(mirror, cache))
    env = dict(os.environ)
    env.update(
        TF_CLI_CONFIG_FILE=str(config),
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",
        TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE="1",
    )
    env.pop("TF_DATA_DIR", None)
    return copy, env


def roots(tree: Path) -> list[Path]:
    """Environment roots: every envs/<env>/ holding a main.tf (envs/common only holds shared files)."""
    return sorted(p.parent for p in (tree / "envs").glob("*/main.tf"))


def test_dirs(tree: Path) -> list[Path]:
    """Every configuration folder with tests/*.tftest.hcl (modules, and env roots whose tests/
    links the shared envs/tests)."""
    found = {p.parent.parent for p in tree.glob("**/tests/*.tftest.hcl")}
    return sorted(folder for folder in found if any(folder.glob("*.tf")))
