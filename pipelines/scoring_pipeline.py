"""The ``churn-scoring`` pipeline: plan shards, score each (``dsl.ParallelFor``), rank (``dsl.Collected``).

The plan task copies the input to one Parquet table whose row groups are the chunks
``churn score`` would read, and splits the row groups into contiguous shards; each shard is its
own task (its own pod in a cluster, sized by pipelines/resources.py like every step) running pass 1 of
:mod:`components.score`; the rank task collects the shards' parts and small manifests (counts,
never rows) and writes one ranked output. The output is byte-identical to a single-shard run.

Keep ``shards`` in the tens to low hundreds: KFP backends fail with thousands of iterations.
``python -m pipelines.scoring_pipeline`` runs it under ``kfp.local`` (``make score``) or compiles it.
"""

import argparse
import sys
from pathlib import Path
from typing import NamedTuple

from kfp import dsl

from components.kfp_scoring import plan_shards_op, rank_op, score_shard_op
from components.score import ScoreConfig
from components.scored_output import report_uri
from pipelines.remote import write_ir
from pipelines.resources import for_environment, on_the_platform

PIPELINE_NAME = "churn-scoring"
DEFAULT_PARALLELISM = 2  # kfp.local runs at most 2 tasks at once anyway
_D = ScoreConfig()


class ScoringOutputs(NamedTuple):
    """What a run hands back (kfp.local runs expose only these)."""

    scores: dsl.Dataset
    report: dsl.HTML


def build_scoring_pipeline(parallelism: int = DEFAULT_PARALLELISM, environment: str = "dev"):
    """The pipeline function for ``environment``; ``parallelism`` (shard tasks at once) is fixed at
    compile time in KFP."""
    resources = for_environment(environment)

    @dsl.pipeline(
        name=PIPELINE_NAME, description="Score a customer table in shards: a ranked list with reasons."
    )
    def scoring_pipeline(
        data_uri: str,
        model_uri: str,
        out_uri: str = "",
        shards: int = 4,
        chunk_rows: int = _D.chunk_rows,
        reasons: bool = True,
        output_format: str = _D.output_format,
        max_bad_share: float = _D.max_bad_share,
        top_k: int = _D.top_k,
        previous_uri: str = "",
    ) -> ScoringOutputs:
        plan = plan_shards_op(data_uri=data_uri, shards=shards, chunk_rows=chunk_rows)
        on_the_platform(plan, "plan", resources)
        with dsl.ParallelFor(plan.outputs["Output"], parallelism=parallelism) as shard:
            scored = score_shard_op(
                table=plan.outputs["table"],
                shard=shard,
                model_uri=model_uri,
                chunk_rows=chunk_rows,
                reasons=reasons,
            )
            on_the_platform(scored, "score-shard", resources)
        ranked = rank_op(
            parts=dsl.Collected(scored.outputs["part"]),
            quarantines=dsl.Collected(scored.outputs["quarantine"]),
            manifests=dsl.Collected(scored.outputs["Output"]),
            out_uri=out_uri,
            output_format=output_format,
            chunk_rows=chunk_rows,
            max_bad_share=max_bad_share,
            top_k=top_k,
            previous_uri=previous_uri,
        )
        on_the_platform(ranked, "rank", resources)
        return ScoringOutputs(scores=ranked.outputs["scores"], report=ranked.outputs["report"])

    return scoring_pipeline


def run_scoring_local(
    pipeline_root: Path, parallelism: int = DEFAULT_PARALLELISM, **arguments
) -> tuple[Path, Path]:
    """Run the pipeline under ``kfp.local`` (subprocess runner, this interpreter): the paths of the
    ranked file and of its HTML report."""
    import kfp.local

    kfp.local.init(
        runner=kfp.local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        raise_on_error=True,
    )
    outputs = build_scoring_pipeline(parallelism)(**arguments).outputs
    return Path(outputs["scores"].path), Path(outputs["report"].path)


def compile_scoring_pipeline(
    out: Path, parallelism: int = DEFAULT_PARALLELISM, environment: str | None = None
) -> Path:
    """Write the pipeline's IR YAML for ``environment`` (default: CHURN_ENV, else dev) to ``out``."""
    from components.config import load_settings

    return write_ir(build_scoring_pipeline(parallelism, environment or load_settings().environment), out)


def main(argv: list[str] | None = None) -> int:
    """``python -m pipelines.scoring_pipeline run|compile``: ``make score`` calls ``run``."""
    from components.config import load_settings
    from components.errors import ChurnError
    from pipelines.serve import resolve_model

    parser = argparse.ArgumentParser(prog="python -m pipelines.scoring_pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run under kfp.local")
    run.add_argument("--data", required=True, help="CSV/Parquet path or s3:// URI")
    run.add_argument("--out", required=True, help="ranked output (local path or s3://)")
    run.add_argument("--model", help="bundle dir, s3://... or models:/NAME@ALIAS (default: as churn serve)")
    run.add_argument("--shards", type=int, default=4)
    run.add_argument("--parallelism", type=int, default=DEFAULT_PARALLELISM)
    run.add_argument("--chunk-rows", type=int, default=_D.chunk_rows)
    run.add_argument("--top-k", type=int, default=_D.top_k, help="the report's call list")
    run.add_argument("--previous", default="", help="last run's ranked output (default: what --out holds)")
    run.add_argument("--pipeline-root", default="build/scoring-kfp", help="kfp.local's pipeline root")
    comp = sub.add_parser("compile", help="write the IR YAML")
    comp.add_argument("--out", default="build/churn_scoring_pipeline.yaml")
    comp.add_argument("--parallelism", type=int, default=DEFAULT_PARALLELISM)
    args = parser.parse_args(argv)
    if args.command == "compile":
        print(f"wrote {compile_scoring_pipeline(Path(args.out), args.parallelism)}")
        return 0
    try:
        model = resolve_model(load_settings(), args.model)
        print(f"scoring {args.data} with {model} in {args.shards} shards under kfp.local", file=sys.stderr)
        run_scoring_local(
            Path(args.pipeline_root).resolve(), args.parallelism, data_uri=args.data, model_uri=model,
            out_uri=args.out, shards=args.shards, chunk_rows=args.chunk_rows, top_k=args.top_k,
            previous_uri=args.previous,
        )  # fmt: skip
    except (ChurnError, RuntimeError) as exc:  # RuntimeError: kfp.local's "task failed" (details above)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} and {report_uri(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
