"""The payload log never blocks the request path: when the writer is behind, rows are dropped and counted."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd

from components.config import load_settings
from serving.metrics import PAYLOAD_LOG_DROPPED
from serving.payload_log import Entry, PayloadLog


def _entry(rows: int) -> Entry:
    feeds = {
        "Contract": np.array([["Two year"]] * rows, dtype=object),
        "tenure": np.ones((rows, 1), np.float32),
    }
    scores = np.linspace(0, 1, rows, dtype=np.float32)
    return Entry(time.time(), "r", "churn", "7", "0" * 64, "7", feeds, scores, scores >= 0.5)


def test_full_queue_drops_and_counts_without_blocking(tmp_path):
    log = PayloadLog(str(tmp_path), load_settings(), max_queue=2, flush_rows=1, flush_seconds=60)
    release = threading.Event()
    real_write = log.sink.write

    def stuck_write(name, table):  # a sink that hangs until released
        release.wait(30)
        return real_write(name, table)

    log.sink.write = stuck_write
    dropped = PAYLOAD_LOG_DROPPED.labels("queue_full")
    before = dropped._value.get()
    for _ in range(10):  # the writer holds one, the queue two: at least 7 must be dropped, none waited for
        log.log(_entry(3))
    assert dropped._value.get() - before >= 7 * 3
    release.set()
    log.close()
    logged = pd.concat(pd.read_parquet(f) for f in tmp_path.glob("*.parquet"))
    assert 3 <= len(logged) <= 9 and set(logged.columns) >= {
        "timestamp",
        "Contract",
        "tenure",
        "churn_probability",
    }
    assert not list(tmp_path.glob("*.tmp"))
