"""benchmarks.proc_stats: a server's CPU time and RSS summed over its session, threads and children."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from benchmarks import proc_stats

BURN = 0.4  # CPU seconds each burner uses (thread time, so machine load does not change it)
BURNER = f"""
import subprocess, sys, threading, time

def burn():
    start = time.thread_time()
    while time.thread_time() - start < {BURN}:
        pass

if sys.argv[1] == "parent":  # starts a child (same session), burns in a second thread
    subprocess.Popen([sys.executable, __file__, "child"])
    worker = threading.Thread(target=burn)
    worker.start()
    worker.join()
else:
    burn()
print("burnt", flush=True)
time.sleep(60)
"""


def test_cpu_and_rss_cover_every_thread_and_child_of_the_session(tmp_path):
    script = tmp_path / "burner.py"
    script.write_text(BURNER)
    parent = subprocess.Popen(
        [sys.executable, str(script), "parent"], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert [parent.stdout.readline(), parent.stdout.readline()] == ["burnt\n", "burnt\n"]
        pids = proc_stats.session_pids(parent.pid)
        assert len(pids) == 2 and parent.pid in pids  # the parent and its child, nothing else
        # Both burners are counted (either alone is ~BURN s), plus the interpreters' start-up.
        used = proc_stats.cpu_seconds(parent.pid)
        assert 2 * BURN * 0.95 <= used < 2 * BURN + 2.0
        time.sleep(0.3)
        assert proc_stats.cpu_seconds(parent.pid) - used < 0.05  # sleeping processes use nothing
        assert proc_stats.rss_bytes(parent.pid) > 2 * 5 * 2**20  # two interpreters, each > 5 MB
    finally:
        os.killpg(parent.pid, signal.SIGKILL)  # the session's group: the parent and its child
        parent.wait()


def test_machine_ticks_advance_with_wall_time_on_every_cpu():
    steal_before, total_before = proc_stats.machine_ticks()
    started = time.monotonic()
    time.sleep(0.5)
    wall = time.monotonic() - started
    steal_after, total_after = proc_stats.machine_ticks()
    expected = wall * os.cpu_count() * proc_stats.CLOCK_TICKS
    assert 0.7 * expected <= total_after - total_before <= 1.3 * expected + 2
    assert 0 <= steal_after - steal_before <= total_after - total_before
