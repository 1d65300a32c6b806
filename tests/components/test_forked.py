"""Forked tasks (components.forked): results in order, messages, errors, dead and cancelled children."""

from __future__ import annotations

import os
import signal
import time

from components import forked
from components.errors import ChurnError


def test_results_come_back_in_task_order_with_every_message():
    def task(n):
        def run(send):
            time.sleep(0.05 * (3 - n))  # the last task ends first
            for k in range(n + 1):
                send((n, k))
            return {"task": n, "pid": os.getpid()}

        return run

    messages = []
    outcomes = forked.run([task(n) for n in range(3)], lambda i, m: messages.append((i, m)))
    assert [o.result["task"] for o in outcomes] == [0, 1, 2]
    assert os.getpid() not in {o.result["pid"] for o in outcomes}  # each ran in a child
    assert len({o.result["pid"] for o in outcomes}) == 3
    assert sorted(messages) == [(0, (0, 0)), (1, (1, 0)), (1, (1, 1)), (2, (2, 0)), (2, (2, 1)), (2, (2, 2))]
    assert all(o.error is None and not o.cancelled for o in outcomes)


def test_an_error_keeps_its_type_and_message_and_names_the_child_and_its_traceback():
    def fails(_send):
        raise ChurnError("rows 1-10 hold no valid row")

    (outcome,) = forked.run([fails], lambda i, m: None)
    assert type(outcome.error) is ChurnError and str(outcome.error) == "rows 1-10 hold no valid row"
    (note,) = outcome.error.__notes__
    assert note.startswith("in child process ") and "in fails" in note


def test_an_error_that_does_not_pickle_arrives_as_its_text():
    class Local(Exception):  # a local class cannot be pickled by reference
        pass

    def fails(_send):
        raise Local("disk full")

    (outcome,) = forked.run([fails], lambda i, m: None)
    assert type(outcome.error) is RuntimeError and str(outcome.error) == "Local: disk full"


def test_a_child_killed_without_a_result_is_an_error_naming_its_exit():
    def killed(_send):
        os.kill(os.getpid(), signal.SIGKILL)

    (outcome,) = forked.run([killed], lambda i, m: None)
    assert isinstance(outcome.error, forked.ChildDied)
    assert "exit code -9" in str(outcome.error)


def test_a_failure_stops_the_tasks_after_it_not_those_before():
    def slow(send):
        time.sleep(1.5)
        return "finished"

    def fails(_send):
        raise ValueError("bad chunk")

    started = time.monotonic()
    outcomes = forked.run([slow, fails, slow], lambda i, m: None)
    assert outcomes[0].result == "finished"  # the work before the failure is still needed
    assert isinstance(outcomes[1].error, ValueError)
    assert outcomes[2].cancelled and outcomes[2].result is None
    assert time.monotonic() - started < 10


def test_a_failure_ready_together_with_a_later_tasks_message_cancels_it_cleanly():
    """Task 1 always has a message waiting when task 0 fails: both pipes are ready in one wait.
    Cancelling task 1 while handling task 0 must not leave its pipe to be read after (a KeyError
    in a full suite run, when a forked scoring pass failed)."""

    def failing(send):
        time.sleep(0.3)
        raise ChurnError("range 0 failed")

    def chatty(send):
        while True:
            send("still going")

    outcomes = forked.run([failing, chatty], lambda i, message: None)
    assert isinstance(outcomes[0].error, ChurnError) and outcomes[1].cancelled
