"""docs/deploy.md: every command it gives is a make target, and `make -n` of each (what it would
run, with the page's own example values) succeeds. The targets' effects are tested elsewhere:
the bootstrap plan (test_platform_bootstrap), submit (test_submit), the roots (test_terraform)."""

from __future__ import annotations

import os
import re
import shlex

import pytest

from tests.infra.tools import REPO, explain, run

DOC = REPO / "docs" / "deploy.md"
BLOCK = re.compile(r"```bash\n(.*?)```", re.S)


def makefiles() -> list[str]:
    found = ["-f", "Makefile"]
    if "include platform/platform.mk" not in (REPO / "Makefile").read_text():
        found += ["-f", "platform/platform.mk"]
    return found


def commands() -> list[tuple[dict[str, str], str]]:
    """(exported variables so far, command) for every command line of the page, in order."""
    env: dict[str, str] = {}
    found = []
    for block in BLOCK.findall(DOC.read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("export "):
                env.update(word.split("=", 1) for word in shlex.split(line)[1:])
                continue
            found.append((dict(env), line))
    return found


COMMANDS = commands()


def test_the_walkthrough_has_every_stage():
    targets = [shlex.split(command)[1] for _, command in COMMANDS]
    for stage in ("tf-state-bucket", "tf-apply", "kubeconfig", "platform", "images", "submit", "canary"):
        assert stage in targets, stage


@pytest.mark.parametrize("env, command", COMMANDS, ids=[c for _, c in COMMANDS])
def test_command_is_a_make_target_that_dry_runs(env, command):
    words = shlex.split(command)
    assert words[0] == "make", f"{command}: put it behind a make target so `make -n` shows it"
    environ = {**os.environ, **env}
    args = [re.sub(r"\$(\w+)", lambda m: environ.get(m[1], m[0]), word) for word in words[1:]]
    result = run(["make", "-n", "--no-print-directory", *makefiles(), *args], cwd=REPO, env=environ)
    assert result.returncode == 0, explain(result)
