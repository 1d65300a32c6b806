"""Batch scoring benchmark: ``churn score`` rows/s against native XGBoost ``predict_proba`` on the
same rows (the baseline, measured in the same run), the cost of reason codes, peak memory at two
sizes, and the churn-scoring pipeline's kfp.local fan-out over 1, 2 and 4 shards.

    .venv/bin/python benchmarks/scoring.py   # 1M rows (3 runs; 1 with reasons), RSS 1M/5M, fan-out 200k
    .venv/bin/python benchmarks/scoring.py --rows 200000 --big-rows 1000000 --repeats 1

Every measurement runs in its own subprocess (a fresh interpreter: peak RSS is that process's
``VmHWM``, or its largest forked scoring process's; no run warms the next one's caches).
``churn score`` is timed end to end (read Parquet row groups, ingest's cleaning, ONNX Runtime,
ranking, writing the ranked Parquet and the report); the baseline only calls the fitted
scikit-learn Pipeline's ``predict_proba`` (its feature steps + XGBoost, all threads) on the rows
already in memory, reading excluded.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import paired  # noqa: E402

BLOCK_ROWS = 250_000  # synthetic rows generated at a time (and the file's row-group multiple)


def _child(args: list[str]) -> dict:
    """Run this script's ``--child`` mode in a fresh interpreter; its one-line JSON result."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _peak_mb() -> float:
    """The peak RSS of this process (VmHWM) or of the largest process it forked (pass 1's
    processes), whichever is higher. Not this process's own ``ru_maxrss``: Linux carries that over
    ``exec`` from the forking parent, so every child would report at least the parent's peak. A
    forked child's ``ru_maxrss`` counts the pages it shares with this process, so the largest
    process is reported, not a sum that would count the shared stack twice."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # kB
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return max(int(line.split()[1]) / 1024, children)
    raise RuntimeError("no VmHWM in /proc/self/status")


def make_table(path: Path, rows: int) -> Path:
    """``rows`` synthetic customers without labels, unique ids, Parquet row groups of 100k rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from components import schema
    from components.synthetic import generate

    writer = None
    for block, start in enumerate(range(0, rows, BLOCK_ROWS)):
        n = min(BLOCK_ROWS, rows - start)
        frame = generate(n, seed=1000 + block).drop(columns=[schema.LABEL_COLUMN, schema.TRUTH_COLUMN])
        frame[schema.ID_COLUMN] = [f"c{start + i:08d}" for i in range(n)]
        table = pa.Table.from_pandas(frame, preserve_index=False)
        writer = writer or pq.ParquetWriter(str(path), table.schema)
        writer.write_table(table, row_group_size=100_000)
    writer.close()
    return path


def child(argv: list[str]) -> dict:
    """One measurement in this process: ``score DATA OUT BUNDLE reasons|plain``,
    ``native DATA SKLEARN``, ``ort DATA BUNDLE`` or ``fanout DATA OUT BUNDLE SHARDS ROOT``."""
    kind, data = argv[0], Path(argv[1])
    if kind == "score":
        from components.config import load_settings
        from components.score import ScoreConfig, run_folder_model, score_table

        out, bundle, mode = argv[2], Path(argv[3]), argv[4]
        model = run_folder_model(bundle, with_reasons=mode == "reasons")
        started = time.perf_counter()
        summary = score_table(str(data), out, model, ScoreConfig(), load_settings(), progress=lambda _: None)
        return {"seconds": time.perf_counter() - started, "rows": summary["scored"], "peak_mb": _peak_mb()}
    if kind in {"native", "ort"}:
        import joblib
        import pandas as pd

        from components.export import onnx_predict_proba, session

        frame = pd.read_parquet(data)
        if kind == "native":
            pipeline = joblib.load(argv[2])
            started = time.perf_counter()
            pipeline.predict_proba(frame)
        else:
            sess = session(Path(argv[2]) / "model.onnx")
            started = time.perf_counter()
            onnx_predict_proba(sess, frame)
        return {"seconds": time.perf_counter() - started, "rows": len(frame), "peak_mb": _peak_mb()}
    if kind == "fanout":
        from pipelines.scoring_pipeline import run_scoring_local

        out, bundle, shards, root = argv[2], argv[3], int(argv[4]), Path(argv[5])
        started = time.perf_counter()
        run_scoring_local(root, data_uri=str(data), model_uri=bundle, out_uri=out, shards=shards)
        return {"seconds": time.perf_counter() - started, "peak_mb": _peak_mb()}
    raise SystemExit(f"unknown child measurement {kind!r}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the timed runs")
    parser.add_argument("--big-rows", type=int, default=5_000_000, help="second size for peak RSS")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median)")
    parser.add_argument("--reason-repeats", type=int, default=1, help="timed runs with reason codes")
    parser.add_argument("--fanout-rows", type=int, default=200_000, help="rows of the kfp.local runs")
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return 0

    from components.config import load_settings
    from components.params import PipelineParams
    from components.steps import run_steps

    work = Path(tempfile.mkdtemp(prefix="bench-scoring-"))
    os.environ["CHURN_HOME"] = str(work / "home")  # a throwaway registry: never the user's
    load_start = os.getloadavg()
    print(
        f"load average {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}; work in {work}",
        flush=True,
    )
    print("training the benchmark model (XGBoost, 4,000 rows, seed 7, budget 2) ...", flush=True)
    made = run_steps(
        PipelineParams(rows=4000, seed=7, search_budget=2, cv_folds=3), work / "run", load_settings()
    )
    bundle, sklearn_model = str(made.bundle), str(made.model)
    sizes = sorted({args.rows, args.big_rows, args.fanout_rows})
    tables = {}
    for rows in sizes:
        started = time.perf_counter()
        tables[rows] = make_table(work / f"customers-{rows}.parquet", rows)
        print(f"generated {rows:,} rows in {time.perf_counter() - started:.0f}s", flush=True)

    def timed(name: str, argv: list[str], repeats: int) -> dict:
        return summarised(name, [_child(argv) for _ in range(repeats)])

    def summarised(name: str, runs: list[dict]) -> dict:
        seconds = statistics.median(r["seconds"] for r in runs)
        result = {"seconds": seconds, "runs": [round(r["seconds"], 2) for r in runs],
                  "peak_mb": max(r["peak_mb"] for r in runs), "load": os.getloadavg()[0]}  # fmt: skip
        print(f"  {name:<44} median {seconds:7.2f}s  runs {result['runs']}  "
              f"peak RSS {result['peak_mb']:.0f} MB  load {result['load']:.2f}", flush=True)  # fmt: skip
        return result

    n, data, out = args.rows, str(tables[args.rows]), str(work / "scores.parquet")
    print(f"\n{n:,} rows (median of the runs; the first two interleaved, ABBA):", flush=True)
    # the goal's two sides alternate: the machine's drift over a minute cannot favour either
    pairs = paired.interleave(
        lambda: _child(["native", data, sklearn_model]),
        lambda: _child(["score", data, out, bundle, "plain"]),
        args.repeats,
    )
    native = summarised("native XGBoost predict_proba (in memory)", [a for a, _ in pairs])
    plain = summarised("churn score, no reason codes (end to end)", [b for _, b in pairs])
    speedup = paired.ratios(pairs, "seconds")  # native's time / churn score's, pair by pair
    ort_only = timed("ONNX graph only (in memory, 1 thread)", ["ort", data, bundle], args.repeats)
    reasons = timed(
        "churn score with reason codes (end to end)",
        ["score", data, out, bundle, "reasons"],
        args.reason_repeats,
    )

    print("\npeak RSS by input size, no reason codes (one run):", flush=True)
    memory = {n: plain}
    for rows in sorted({args.big_rows} - {n}):
        memory[rows] = timed(
            f"churn score {rows:,} rows", ["score", str(tables[rows]), out, bundle, "plain"], 1
        )

    print(f"\nchurn-scoring under kfp.local, {args.fanout_rows:,} rows, no reason codes (one run each):")
    fanout, fan_data = {}, str(tables[args.fanout_rows])
    for shards in args.shards:
        fan_out = str(work / f"fan-{shards}.parquet")
        argv = ["fanout", fan_data, fan_out, bundle, str(shards), str(work / f"kfp-{shards}")]
        fanout[shards] = timed(f"{shards} shard(s), parallelism 2", argv, 1)
    direct = timed("churn score (same rows, one process)", ["score", fan_data, out, bundle, "plain"], 1)
    load_end = os.getloadavg()

    rate = {k: n / v["seconds"] for k, v in {"native": native, "ort": ort_only, "plain": plain,
                                             "reasons": reasons}.items()}  # fmt: skip
    print(f"\nload average before {load_start[0]:.2f}, after {load_end[0]:.2f} ({os.cpu_count()} CPUs)\n")
    rows_out = [
        ("rows/s native XGBoost predict_proba (baseline, in memory)", f"{rate['native']:,.0f}", ""),
        ("rows/s ONNX graph alone (1 thread, in memory)", f"{rate['ort']:,.0f}", ""),
        ("rows/s churn score, no reasons (end to end)", f"{rate['plain']:,.0f}", ""),
        ("rows/s churn score, reasons (end to end)", f"{rate['reasons']:,.0f}", ""),
        (
            "churn score (no reasons) vs native predict_proba, medians",
            f"{rate['plain'] / rate['native']:.2f}x",
            ">= 1.0x",
        ),
        (
            f"  the same, median of {len(pairs)} interleaved pairs (range)",
            f"{speedup.median:.2f}x ({speedup.low:.2f}-{speedup.high:.2f})",
            ">= 1.0x",
        ),
        ("ONNX graph vs native predict_proba (both in memory)", f"{rate['ort'] / rate['native']:.2f}x", ""),
        ("cost of reason codes (time with / without)", f"{reasons['seconds'] / plain['seconds']:.2f}x", ""),
    ]
    small, big = min(memory), max(memory)
    rows_out.append((
        f"peak RSS {small:,} -> {big:,} rows ({big / small:.0f}x rows)",
        f"{memory[small]['peak_mb']:.0f} -> {memory[big]['peak_mb']:.0f} MB "
        f"= {memory[big]['peak_mb'] / memory[small]['peak_mb']:.2f}x", "flat",
    ))  # fmt: skip
    for shards, result in fanout.items():
        rows_out.append((
            f"kfp.local {shards} shard(s) vs one process",
            f"{result['seconds']:.1f}s vs {direct['seconds']:.1f}s "
            f"= {result['seconds'] / direct['seconds']:.2f}x", "",
        ))  # fmt: skip
    print(f"{'measure':<62} {'reached':>34}   goal")
    for name, value, goal in rows_out:
        print(f"{name:<62} {value:>34}   {goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
