"""Find the command-line tools the infrastructure tests drive, and run them.

Every tool is looked up in one place so a test that cannot run names the missing tool in its
skip reason. `make tools` installs the installable ones (checkov, actionlint) into
`.venv-tools/`, away from the project's venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS_VENV = REPO / ".venv-tools"


def find_tool(name: str) -> str | None:
    """A tool from the tools venv, the project venv (the one running pytest) or PATH."""
    for folder in (TOOLS_VENV / "bin", Path(sys.executable).parent):
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def require_tool(name: str, install_hint: str = "make tools") -> str:
    """The tool's path, or skip the calling test naming the tool and how to get it."""
    path = find_tool(name)
    if path is None:
        pytest.skip(f"{name} is not installed ({install_hint})")
    return path


def run(
    cmd: list[str], cwd: Path | str | None = None, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output, never raise on a non-zero exit (the test asserts)."""
    return subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def explain(result: subprocess.CompletedProcess[str]) -> str:
    """Command, exit code and output, for an assertion message."""
    return f"$ {' '.join(result.args)}\nexit {result.returncode}\n{result.stdout}\n{result.stderr}"


def run_checkov(framework: str, *target: str) -> subprocess.CompletedProcess[str]:
    """checkov over target (-d DIR or -f FILE) for one framework; exit 1 means findings.

    --skip-download keeps it offline (no Prisma Cloud guidelines or policies are fetched).
    """
    checkov = require_tool("checkov")
    args = [checkov, *target, "--framework", framework, "--compact", "--quiet", "--skip-download"]
    return run(args, timeout=600)
