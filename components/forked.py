"""Tasks run at once in forked child processes, their progress and results sent back over pipes.

Fork, not spawn: a child starts with everything the parent has imported and loaded (the stack,
the model), where a spawned one would import it all again (not timed here) and need its arguments
pickled. Only messages and results travel, pickled, from child to parent. Fork copies one thread:
a child must not need a lock another thread of the parent held at the fork. The tasks run here
read and write local files and run ONNX Runtime (one thread); XGBoost's OpenMP is the one library
measured to hang in a forked child, so callers keep it out (``score.process_plan``).
"""

from __future__ import annotations

import multiprocessing
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

Send = Callable[[Any], None]
Task = Callable[[Send], Any]


class ChildDied(RuntimeError):
    """A child process ended without sending its result (killed, out of memory, ``os._exit``)."""


@dataclass
class Outcome:
    """What became of one task: its ``result``, the ``error`` it raised, or ``cancelled``."""

    result: Any = None
    error: BaseException | None = None
    cancelled: bool = False


def available() -> bool:
    """Whether this platform can fork (not Windows; macOS can but defaults to spawn)."""
    return "fork" in multiprocessing.get_all_start_methods()


def run(tasks: Sequence[Task], on_message: Callable[[int, Any], None]) -> list[Outcome]:
    """Run every ``task(send)`` at once, each in its own forked process; their outcomes in task order.

    ``on_message(i, message)`` is called in this process for each ``send(message)`` of task ``i``.
    When a task fails, the tasks after it are stopped (``cancelled``): callers use the first
    failure in task order and the work before it. If this process is interrupted, every child is
    stopped before the interruption propagates.
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # a child flushes its copy of the buffers on exit: nothing printed twice
    context = multiprocessing.get_context("fork")
    processes, channels = [], {}
    outcomes: list[Outcome | None] = [None] * len(tasks)
    try:
        for i, task in enumerate(tasks):
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(target=_child, args=(task, sender), daemon=True)
            process.start()
            sender.close()
            processes.append(process)
            channels[receiver] = i
        while channels:
            for channel in wait(list(channels)):
                if channel not in channels:  # cancelled by a failure read earlier in this batch
                    continue
                i = channels[channel]
                message = _receive(channel)
                if message is None or message[0] != "message":
                    del channels[channel]
                    channel.close()
                    outcomes[i] = _outcome(message, processes[i])
                    if outcomes[i].error is not None:
                        _cancel(i, processes, channels, outcomes)
                else:
                    on_message(i, message[1])
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()
    return [outcome or Outcome(cancelled=True) for outcome in outcomes]


def _child(task: Task, sender: Connection) -> None:
    try:
        result = task(lambda message: sender.send(("message", message)))
        sender.send(("done", result))
    except BaseException as exc:  # every failure goes back to the parent
        trace = traceback.format_exc()
        try:
            sender.send(("error", exc, trace))
        except Exception:  # an exception that does not pickle: its text does
            sender.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}"), trace))
    finally:
        sender.close()


def _receive(channel: Connection) -> tuple | None:
    """The next message, None at the end of the pipe (the child is gone)."""
    try:
        return channel.recv()
    except EOFError:
        return None
    except Exception as exc:  # sent, but does not unpickle here
        return ("error", RuntimeError(f"a child's message could not be read: {exc!r}"), "")


def _outcome(message: tuple | None, process) -> Outcome:
    if message is not None and message[0] == "done":
        return Outcome(result=message[1])
    if message is not None:
        error, trace = message[1], message[2]
        if trace and hasattr(error, "add_note"):  # Python >= 3.11
            error.add_note(f"in child process {process.pid}:\n{trace.rstrip()}")
        return Outcome(error=error)
    process.join()
    return Outcome(error=ChildDied(f"child process {process.pid} ended (exit code {process.exitcode}) "
                                   "without a result"))  # fmt: skip


def _cancel(failed: int, processes: list, channels: dict, outcomes: list) -> None:
    """Stop the tasks after ``failed`` that are still running: their work is not needed."""
    for channel, i in list(channels.items()):
        if i > failed:
            processes[i].terminate()
            del channels[channel]
            channel.close()
            outcomes[i] = Outcome(cancelled=True)
