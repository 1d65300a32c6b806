"""components.storage.atomic_path: atomic for files, and never replaces a device or a pipe."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from components.storage import atomic_path


def test_atomic_path_replaces_a_file_whole_or_not_at_all(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.json"]
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_atomic_path_writes_through_a_pipe_instead_of_replacing_it(tmp_path):
    """`--json-out /dev/null` once replaced the machine's /dev/null with a regular file: a pipe
    stands in for the device here (same rule: not a regular file), read by a thread."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    with atomic_path(fifo) as tmp:
        tmp.write_text('{"status": "ok"}\n')
    assert stat.S_ISFIFO(os.stat(fifo).st_mode), "the pipe was replaced by a regular file"
    reader.join(timeout=10)
    assert got == [b'{"status": "ok"}\n']
