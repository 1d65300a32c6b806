"""KFP components of the ``churn-scoring`` pipeline (pipelines/scoring_pipeline.py).

:func:`plan_shards_op` makes one Parquet table with fixed row groups and splits its row groups into
shards; :func:`score_shard_op` runs pass 1 of :mod:`components.score` on one shard (a
``dsl.ParallelFor`` iteration) and returns a small manifest; :func:`rank_op` takes the collected
parts (``dsl.Collected``) and writes the ranked output and quarantine. Bodies import inside
themselves because KFP ships each function's source alone; the model lookup they share with
``churn score`` is :mod:`components.scoring_model`.
"""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Output

from components.config import load_settings

IMAGE = load_settings().components_image
component = dsl.component(base_image=IMAGE, install_kfp_package=False)


@component
def plan_shards_op(data_uri: str, shards: int, chunk_rows: int, table: Output[Dataset]) -> list:
    """Copy the input to one Parquet table with row groups of ``chunk_rows`` rows and split its row
    groups into at most ``shards`` contiguous ranges: ``[{"shard", "row_groups", "first_row"}]``."""
    from pathlib import Path

    from components.config import load_settings
    from components.score import plan_shards, to_row_groups

    rows_per_group = to_row_groups(data_uri, Path(table.path), chunk_rows, load_settings())
    return plan_shards(rows_per_group, shards)


@component
def score_shard_op(
    table: Input[Dataset],
    shard: dict,
    model_uri: str,
    chunk_rows: int,
    reasons: bool,
    part: Output[Artifact],
    quarantine: Output[Dataset],
) -> dict:
    """Pass 1 on one shard: score its row groups into ``part``; return its manifest (counts and the
    model facts the report names)."""
    import tempfile
    from pathlib import Path

    from components.config import load_settings
    from components.score import ScoreConfig, model_context, score_part
    from components.scoring_model import load_scoring_model

    with tempfile.TemporaryDirectory(prefix="churn-shard-") as work:
        model = load_scoring_model(model_uri, load_settings(), Path(work), with_reasons=reasons)
        # Ints inside dict parameters arrive as floats (kfp): make them ints again.
        summary = score_part(
            Path(table.path), model, ScoreConfig(chunk_rows=chunk_rows, workers=1), Path(part.path),
            Path(quarantine.path), row_groups=[int(g) for g in shard["row_groups"]],
            first_row=int(shard["first_row"]),
        )  # fmt: skip
    return {"shard": int(shard["shard"]), **summary.to_dict(), "model": model_context(model)}


@component
def rank_op(
    parts: Input[list[Artifact]],
    quarantines: Input[list[Dataset]],
    manifests: list,
    out_uri: str,
    output_format: str,
    chunk_rows: int,
    max_bad_share: float,
    top_k: int,
    previous_uri: str,
    scores: Output[Dataset],
    quarantine: Output[Dataset],
    report: Output[HTML],
) -> dict:
    """Pass 2: rank every shard's rows into ``scores`` and write the run's ``report`` (copied to
    ``out_uri``, ``<out_uri>.quarantine.csv`` and ``<out_uri>.report.html`` when given); bad rows
    of all shards into ``quarantine``. The report compares the list with ``previous_uri``, else
    with the list at ``out_uri`` this run replaces. Returns the totals."""
    from pathlib import Path

    from components.config import load_settings
    from components.score import ScoreConfig, deliver, join_shards, quarantine_uri, report_uri

    settings = load_settings()
    config = ScoreConfig(
        chunk_rows=chunk_rows, max_bad_share=max_bad_share, output_format=output_format, top_k=top_k
    )
    result = join_shards(
        manifests, [Path(p.path) for p in parts], [Path(q.path) for q in quarantines], scores.path,
        quarantine.path, report.path, config, settings, previous=previous_uri, replaces=out_uri,
    )  # fmt: skip
    if out_uri:
        deliver(Path(quarantine.path), quarantine_uri(out_uri), settings)
        deliver(Path(scores.path), out_uri, settings)
        deliver(Path(report.path), report_uri(out_uri), settings)
    return result
