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
from components.evaluate import BusinessConfig, evaluate, headline
from components.export import export
from components.gate import GateConfig
from components.ingest import IngestConfig, IngestPaths, ingest, synthetic_uri
from components.registry import register_model
from components.report import write_report
from components.train import TrainConfig, train
from pipelines.params import PipelineParams

STAGES = ("ingest", "train", "evaluate", "export", "register")


def direct(rows: int, params: PipelineParams, root: Path) -> dict[str, float]:
    """Call each step function in turn, as the KFP components do; seconds per stage."""
    times = {}
    paths = IngestPaths(*(root / n for n in ("train.pq", "valid.pq", "test.pq", "q.csv", "profile.json")))
    t = time.perf_counter()
    summary = ingest(synthetic_uri(rows, params.seed), paths, IngestConfig(seed=params.seed), load_settings())
    times["ingest"] = time.perf_counter() - t

    t = time.perf_counter()
    config = TrainConfig(params.model_type, params.search_budget, params.cv_folds, params.seed)
    train(paths.train, root / "model.joblib", root / "search.json", config)
    times["train"] = time.perf_counter() - t

    t = time.perf_counter()
    business = BusinessConfig(params.offer_cost, params.customer_value, params.offer_success_rate)
    result = evaluate(root / "model.joblib", paths.valid, paths.test, root / "metrics.json", business)
    write_report(result, root / "report.html", "benchmark", {})
    times["evaluate"] = time.perf_counter() - t

    t = time.perf_counter()
    meta = {"metrics": headline(result), "data_hash": summary["data_hash"], "model_type": params.model_type}
    export(root / "model.joblib", paths.test, root / "bundle", threshold=result["threshold"], **meta)
    times["export"] = time.perf_counter() - t

    t = time.perf_counter()
    register_model(
        bundle_dir=root / "bundle", sklearn_model_path=root / "model.joblib",
        metrics_path=root / "metrics.json", report_path=root / "report.html",
        profile_path=paths.profile, test_path=paths.test,
        params=params.as_arguments(), data_hash=summary["data_hash"], source_uri=summary["source_uri"],
        pipeline_run_id="benchmark", gate=GateConfig(), promote=params.promote, settings=load_settings(),
    )  # fmt: skip
    times["register"] = time.perf_counter() - t
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
                directs.append(direct(rows, params, Path(tmp)))
                kfps.append(under_kfp_local(params, Path(tmp) / "kfp"))
            print(f"{rows:>9,} rows run {i + 1}/{n}: direct {directs[-1]['total']:.1f}s, "
                  f"kfp.local {kfps[-1]:.1f}s", flush=True)  # fmt: skip
        med = {s: statistics.median(d[s] for d in directs) for s in (*STAGES, "total")}
        table.append((rows, n, med, statistics.median(kfps)))

    print(f"\nmedians; search budget {args.search_budget}, {args.cv_folds}-fold CV\n")
    print(f"{'rows':>10} {'n':>2} " + " ".join(f"{s:>9}" for s in STAGES)
          + f" {'direct':>9} {'kfp.local':>10} {'overhead':>9} {'ratio':>6}")  # fmt: skip
    for rows, n, med, kfp_total in table:
        stages = " ".join(f"{med[s]:>8.1f}s" for s in STAGES)
        overhead = kfp_total - med["total"]
        print(f"{rows:>10,} {n:>2} {stages} {med['total']:>8.1f}s {kfp_total:>9.1f}s {overhead:>8.1f}s "
              f"{kfp_total / med['total']:>5.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
