"""Pipeline benchmark: seconds per stage at 100k and 1M rows, and what kfp.local orchestration
adds on top of calling the step functions directly (the baseline, measured in the same run).

    .venv/bin/python benchmarks/pipeline.py                 # 100k x3 and 1M x1
    .venv/bin/python benchmarks/pipeline.py --rows 100000 --repeats 5

Both paths run the same steps with the same parameters (search budget and CV folds are kept
small so 1M rows finishes in minutes; the ratio, not the absolute time, is the point).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from components.config import load_settings
from components.params import PipelineParams
from components.steps import STEPS, run_steps


def direct(params: PipelineParams, root: Path) -> dict[str, float]:
    """The in-process chain (:func:`components.steps.run_steps`); seconds per step and in total."""
    started: dict[str, float] = {}

    def mark(message: str) -> None:
        if message in STEPS:  # a step starting; the register step's own lines are not timed
            started[message] = time.perf_counter()

    run_steps(params, root, load_settings(), progress=mark, pipeline_run_id="benchmark")
    ends = [*(started[s] for s in STEPS[1:]), time.perf_counter()]
    times = {step: end - started[step] for step, end in zip(STEPS, ends, strict=True)}
    times["total"] = sum(times.values())
    return times


def under_kfp_local(params: PipelineParams, root: Path) -> float:
    """Wall time of the same pipeline under kfp.local's SubprocessRunner."""
    import kfp.local

    from pipelines.pipeline import churn_pipeline

    kfp.local.init(runner=kfp.local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    t = time.perf_counter()
    churn_pipeline(**params.as_arguments())
    return time.perf_counter() - t


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, nargs="+", default=[3, 1], help="per --rows entry")
    parser.add_argument("--search-budget", type=int, default=2)
    parser.add_argument("--cv-folds", type=int, default=2)
    args = parser.parse_args()
    repeats = args.repeats + [args.repeats[-1]] * (len(args.rows) - len(args.repeats))
    # A throwaway registry and model store: the benchmark must not add versions to the user's.
    os.environ["CHURN_HOME"] = tempfile.mkdtemp(prefix="churn-bench-")
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger().handlers[0].setLevel(logging.WARNING)

    table = []
    for rows, n in zip(args.rows, repeats, strict=False):
        params = PipelineParams(rows=rows, search_budget=args.search_budget, cv_folds=args.cv_folds)
        directs, kfps = [], []
        for i in range(n):
            with tempfile.TemporaryDirectory() as tmp:
                directs.append(direct(params, Path(tmp) / "direct"))
                kfps.append(under_kfp_local(params, Path(tmp) / "kfp"))
            print(f"{rows:>9,} rows run {i + 1}/{n}: direct {directs[-1]['total']:.1f}s, "
                  f"kfp.local {kfps[-1]:.1f}s", flush=True)  # fmt: skip
        med = {s: statistics.median(d[s] for d in directs) for s in (*STEPS, "total")}
        table.append((rows, n, med, statistics.median(kfps)))

    print(f"\nmedians; search budget {args.search_budget}, {args.cv_folds}-fold CV\n")
    print(f"{'rows':>10} {'n':>2} " + " ".join(f"{s:>9}" for s in STEPS)
          + f" {'direct':>9} {'kfp.local':>10} {'overhead':>9} {'ratio':>6}")  # fmt: skip
    for rows, n, med, kfp_total in table:
        stages = " ".join(f"{med[s]:>8.1f}s" for s in STEPS)
        overhead = kfp_total - med["total"]
        print(f"{rows:>10,} {n:>2} {stages} {med['total']:>8.1f}s {kfp_total:>9.1f}s {overhead:>8.1f}s "
              f"{kfp_total / med['total']:>5.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
