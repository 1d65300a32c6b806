"""What ``churn run`` shows while kfp.local runs, and the step error it ends with.

kfp.local writes everything to ``sys.stdout``: its own coloured status lines, each task's whole
executor input, the task's logs and, on failure, chained tracebacks. :func:`kfp_output_to_log`
sends all of it (colours stripped) to the run's log file and shows on the console only each
step's start and end and the steps' marked progress lines (:data:`components.steps.PROGRESS_MARK`);
``verbose`` shows everything as well. :func:`step_error` reads the failed task's own error back
out of its output, so the run can end with that message instead of kfp's "Inner task failed".
"""

from __future__ import annotations

import contextlib
import io
import logging
import pydoc
import re
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from components.errors import ChurnError
from components.steps import PROGRESS_MARK

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TASK_START = re.compile(r"Executing task '([^']+)'")
_TASK_END = re.compile(r"Task '([^']+)' finished with status (\w+)")
_TRACEBACK = "Traceback (most recent call last):"


def step_name(task: str) -> str:
    """The pipeline step a kfp task runs: ``ingest-op`` -> ``ingest``."""
    return task.removesuffix("-op")


class KfpOutput(io.TextIOBase):
    """Stands in for ``sys.stdout`` while kfp.local runs; see the module docstring."""

    def __init__(self, log: TextIO, console: TextIO, verbose: bool):
        self._log, self._console, self._verbose = log, console, verbose
        self._partial = ""
        self._started: float | None = None
        self.task_lines: list[str] = []  # the current (or last) task's output, for step_error

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._line(_ANSI.sub("", line))
        return len(text)

    def flush(self) -> None:
        self._log.flush()
        self._console.flush()

    def _line(self, line: str) -> None:
        self._log.write(line + "\n")
        if self._verbose:
            self._console.write(line + "\n")
        if started := _TASK_START.search(line):
            self.task_lines, self._started = [], time.monotonic()
            self._show(f"{step_name(started.group(1))} ...")
        elif ended := _TASK_END.search(line):
            seconds = time.monotonic() - (self._started or time.monotonic())
            outcome = "done in" if ended.group(2) == "SUCCESS" else "failed after"
            self._show(f"{step_name(ended.group(1))} {outcome} {seconds:.1f} s")
        else:
            self.task_lines.append(line)
            if PROGRESS_MARK in line:
                self._show("  " + line.split(PROGRESS_MARK, 1)[1])

    def _show(self, text: str) -> None:
        if not self._verbose:
            self._console.write(text + "\n")
            self._console.flush()


@contextlib.contextmanager
def kfp_output_to_log(log_path: Path, console: TextIO, verbose: bool) -> Iterator[KfpOutput]:
    """Route kfp.local's stdout, the root logger and warnings to ``log_path`` for the block."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    with open(log_path, "a", encoding="utf-8") as log, warnings.catch_warnings():
        output = KfpOutput(log, console, verbose)
        handler = logging.StreamHandler(output)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        root.handlers = [handler]  # kfp.local swaps in its own handler per run and restores ours
        # kfp.local's warnings about settings a laptop ignores (display names, images): log only
        warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: output.write(
            warnings.formatwarning(message, category, filename, lineno, line)
        )
        try:
            with contextlib.redirect_stdout(output):
                yield output
        finally:
            output.write("\n")
            root.handlers, root.level = saved_handlers, saved_level


def step_error(task_lines: list[str]) -> tuple[str, bool] | None:
    """The error the failed task raised, from its traceback: ``(message, expected)``.

    ``expected`` is True for a :class:`ChurnError` (the message alone is for the user); for any
    other exception the message keeps its type name. None when the output holds no traceback.
    """
    starts = [i for i, line in enumerate(task_lines) if line.strip() == _TRACEBACK]
    if not starts:
        return None
    indent = len(task_lines[starts[-1]]) - len(task_lines[starts[-1]].lstrip())
    for line in task_lines[starts[-1] + 1 :]:
        if line.strip() and len(line) - len(line.lstrip()) == indent:
            name, _, message = line.strip().partition(": ")
            kind = pydoc.locate(name)
            expected = isinstance(kind, type) and issubclass(kind, ChurnError)
            return (message if expected else f"{name}: {message}"), expected
    return None


class StepFailedError(ChurnError, RuntimeError):
    """A pipeline step failed under kfp.local; the message is the step's own error."""


def task_failure(exc: RuntimeError, output: KfpOutput, log_path: Path) -> StepFailedError | None:
    """The failure kfp.local reported as ``exc``, as the step's own error; None for any other error."""
    message = _ANSI.sub("", str(exc))
    if "finished with status FAILURE" not in message:
        return None
    failed = re.search(r"Inner task failed: '([^']+)'", message)
    step = step_name(failed.group(1)) if failed else "a step"
    found = step_error(output.task_lines)
    if found is None:
        return StepFailedError(f"step {step!r} failed; its log: {log_path}")
    text, expected = found
    return StepFailedError(text if expected else f"step {step!r} failed: {text} (traceback in {log_path})")
