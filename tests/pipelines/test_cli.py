"""The `churn` entry point: exit codes a script can tell apart, and quiet pipes."""

import os
import subprocess
import sys

import pytest

from pipelines.cli import EXIT_BROKEN_PIPE, EXIT_GATE_FAILED, EXIT_GATE_REFUSED, EXIT_OK, gate_exit_code


def test_each_gate_verdict_has_its_own_exit_code():
    assert gate_exit_code("passed") == EXIT_OK == 0
    codes = {gate_exit_code("failed"), gate_exit_code("refused"), 0, 1, 2}
    assert len(codes) == 5  # distinct from success, errors (1) and usage errors (2)
    assert (EXIT_GATE_FAILED, EXIT_GATE_REFUSED) == (3, 4)
    with pytest.raises(ValueError, match="gate verdict 'maybe'"):
        gate_exit_code("maybe")


@pytest.mark.parametrize(
    "args", [["registry", "list"], ["data", "generate", "--rows", "100", "--out", "d.csv"]]
)
def test_a_closed_pipe_is_not_an_error_message(tmp_path, args):
    """`churn registry list | head`: the reader went away; no "Broken pipe" traceback or message."""
    env = {**os.environ, "CHURN_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
    )  # fmt: skip
    proc.stdout.close()  # the reader is gone before the command writes anything
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == EXIT_BROKEN_PIPE, stderr
    assert "Broken pipe" not in stderr and "BrokenPipeError" not in stderr, stderr
