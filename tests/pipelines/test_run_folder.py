"""Run folders: unique names, a status.json that says how the run ended, `latest` only on a finished run."""

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest

from pipelines.local import new_run_dir, point_latest
from pipelines.run_status import FINISHED, INTERRUPTED, RUNNING, RunStateError, read_status, write_status


def test_run_folders_started_in_the_same_second_never_collide(tmp_path):
    made = [new_run_dir(tmp_path) for _ in range(20)]  # well inside one second
    assert len(set(made)) == 20
    assert all(path.is_dir() and not any(path.iterdir()) for path in made)


def test_latest_only_points_at_a_finished_run(tmp_path):
    run = new_run_dir(tmp_path)
    write_status(run, RUNNING)
    with pytest.raises(RunStateError, match=f"{run}: state 'running', not 'finished'"):
        point_latest(tmp_path, run)
    assert not (tmp_path / "latest").exists()
    write_status(run, FINISHED)
    point_latest(tmp_path, run)
    assert (tmp_path / "latest").resolve() == run.resolve()
    assert read_status(run)["state"] == FINISHED and read_status(tmp_path / "nothing-here") is None


def test_an_interrupted_run_is_marked_and_never_latest(tmp_path):
    home = tmp_path / "home"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "run", "--rows", "2000", "--budget", "1", "--cv-folds", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "CHURN_HOME": str(home)}, start_new_session=True,
        # A suite started in the background (`make test &`) inherits SIGINT ignored, and Python
        # keeps an ignored SIGINT: give the run the terminal's default, as a user's shell would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not list((home / "runs").glob("*/status.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)  # inside kfp.local by now
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    (run,) = (home / "runs").iterdir()
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == INTERRUPTED and status["pid"] == proc.pid
    assert stderr.splitlines()[-1] == f"error: interrupted; {run} is marked {INTERRUPTED!r}"
    assert not (home / "runs" / "latest").exists()


def _point_many(runs_dir, run, times):
    for _ in range(times):
        point_latest(runs_dir, run)


def test_runs_finishing_at_once_both_move_latest_safely(tmp_path):
    runs = [new_run_dir(tmp_path) for _ in range(2)]
    for run in runs:
        write_status(run, FINISHED)
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_point_many, args=(tmp_path, run, 300)) for run in runs]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0]  # no worker tripped over the other's temporary link
    assert (tmp_path / "latest").resolve() in {run.resolve() for run in runs}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
