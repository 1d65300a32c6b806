"""Monitor benchmark: ``run_monitor`` time and peak RSS on 1M and 5M payload-log rows, against the
time (and RSS) to merely read the same Parquet row group by row group with the same columns and
read options (the floor for any streaming reader), measured in the same run.

    .venv/bin/python benchmarks/monitor.py                       # 1M x3 and 5M x1
    .venv/bin/python benchmarks/monitor.py --rows 1000000 --repeats 5

The log is written in the payload-log format (``serving.payload_log.to_table``: requests of 1,000
rows, files of 100,000 rows, as a server flushing every 10k-100k rows writes them) from 1M
synthetic rows, repeated with later timestamps for larger sizes. Each measurement runs in its own
process so peak RSS (``VmHWM``) is that measurement's alone. Scores are the generator's true
probabilities; the reference is 10,000 undrifted rows (as an exported bundle would carry).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# This folder holds benchmarks/serving.py, which would shadow the serving package: the repository first.
HERE = Path(__file__).resolve().parent
sys.path[:] = [str(REPO), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]
ROWS_PER_REQUEST = 1_000
ROWS_PER_FILE = 100_000
BASE_ROWS = 1_000_000


def write_log(directory: Path, rows: int) -> None:
    """``rows`` payload-log rows under ``directory`` (1M generated rows, repeated)."""
    import numpy as np
    import pyarrow.parquet as pq

    from components import schema
    from components.synthetic import generate
    from serving.payload_log import Entry, to_table

    frame = generate(min(rows, BASE_ROWS), seed=2)
    columns = {
        f.name: frame[[f.name]].to_numpy(dtype=object if f.is_categorical else np.float32)
        for f in schema.FEATURES
    }
    scores = frame[schema.TRUTH_COLUMN].to_numpy(dtype=np.float32)
    directory.mkdir(parents=True, exist_ok=True)
    written, t0 = 0, 1_780_000_000.0
    while written < rows:
        for start in range(0, len(frame), ROWS_PER_FILE):
            entries = []
            for r in range(start, min(start + ROWS_PER_FILE, len(frame)), ROWS_PER_REQUEST):
                end = r + ROWS_PER_REQUEST
                s = scores[r:end]
                feeds = {n: v[r:end] for n, v in columns.items()}
                entries.append(
                    Entry(
                        t0 + (written + r) / 100.0, f"r{r}", "churn", "1", "a" * 64, "1", feeds, s, s >= 0.3
                    )
                )
            pq.write_table(to_table(entries), directory / f"payload-{written + start:09d}.parquet")
        written += len(frame)


def child(mode: str, log: str) -> dict:
    """One measurement in this process: seconds and peak RSS (MB)."""
    from components.config import load_settings

    if mode == "read":
        from components.monitoring.window import COLUMNS, open_log_file

        started, rows = time.perf_counter(), 0
        for path in sorted(Path(log).glob("*.parquet")):
            handle = open_log_file(path, str(path))  # the monitor's own read options
            for group in range(handle.num_row_groups):
                rows += handle.read_row_group(group, columns=list(COLUMNS)).num_rows
        seconds = time.perf_counter() - started
    else:
        from components import reference, schema
        from components.monitoring import run_monitor
        from components.synthetic import generate

        frame = generate(10_000, seed=1)
        frame[schema.LABEL_COLUMN] = (frame[schema.LABEL_COLUMN] == "Yes").astype(int)
        business = {"offer_cost": 50.0, "customer_value": 500.0, "offer_success_rate": 0.3}
        ref = reference.build(frame, frame[schema.TRUTH_COLUMN].to_numpy(), 0.3, business)
        started = time.perf_counter()
        result = run_monitor(log, ref, settings=load_settings())
        seconds, rows = time.perf_counter() - started, result.rows
        if result.alerts:
            raise SystemExit(f"undrifted benchmark data raised alerts: {[c.reason for c in result.alerts]}")
    return {
        "seconds": seconds,
        "rows": rows,
        "rss_mb": peak_rss_mb(),
    }


def peak_rss_mb() -> float:
    """This process's peak RSS: ``VmHWM`` (``ru_maxrss`` would keep the parent's peak across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def measure(mode: str, log: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(log)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    if out.returncode:
        raise SystemExit(f"{mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--repeats", type=int, nargs="+", default=[3, 1], help="per --rows entry")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "LOG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0
    repeats = args.repeats + [args.repeats[-1]] * (len(args.rows) - len(args.repeats))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    table = []
    with tempfile.TemporaryDirectory(prefix="churn-bench-monitor-") as tmp:
        for rows, n in zip(args.rows, repeats, strict=False):
            log = Path(tmp) / f"log-{rows}"
            started = time.perf_counter()
            write_log(log, rows)
            size = sum(p.stat().st_size for p in log.glob("*.parquet")) / 1e6
            print(
                f"{rows:>10,} rows: wrote {size:.0f} MB in {time.perf_counter() - started:.0f}s", flush=True
            )
            reads, monitors = [], []
            for i in range(n):  # interleaved, so load changes hit both alike
                reads.append(measure("read", log))
                monitors.append(measure("monitor", log))
                print(
                    f"{rows:>10,} rows run {i + 1}/{n}: read {reads[-1]['seconds']:.2f}s "
                    f"{reads[-1]['rss_mb']:.0f} MB, monitor {monitors[-1]['seconds']:.2f}s "
                    f"{monitors[-1]['rss_mb']:.0f} MB",
                    flush=True,
                )
            assert {m["rows"] for m in monitors} == {rows}
            table.append(
                (
                    rows,
                    n,
                    size,
                    *(
                        statistics.median(m[k] for m in runs)
                        for runs in (reads, monitors)
                        for k in ("seconds", "rss_mb")
                    ),
                )
            )
            shutil.rmtree(log)  # 5M rows take ~1 GB of disk
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print(
        f"{'rows':>10} {'n':>2} {'parquet':>8} {'read':>8} {'read RSS':>9} {'monitor':>8} {'mon. RSS':>9} "
        f"{'time ratio':>10} {'rows/s':>11}"
    )
    for rows, n, size, read_s, read_rss, mon_s, mon_rss in table:
        print(
            f"{rows:>10,} {n:>2} {size:>6.0f}MB {read_s:>7.2f}s {read_rss:>7.0f}MB {mon_s:>7.2f}s "
            f"{mon_rss:>7.0f}MB {mon_s / read_s:>9.2f}x {rows / mon_s:>11,.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
