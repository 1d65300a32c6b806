"""`churn`: the one command-line entry point (data, pipeline, registry, serving).

Exit codes: 0 done (a run's gate passed); 1 an error, printed as one ``error: ...`` line;
2 a usage error; 3 a run finished but its gate failed; 4 a run finished but its gate refused
the comparison; 130 interrupted (Ctrl-C); 141 the reader of stdout went away (``| head``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import fields
from pathlib import Path

from components.config import load_settings
from components.errors import ChurnError
from components.params import PipelineParams
from pipelines.feature_store_cli import (
    add_feature_source_options,
    add_feature_store_parsers,
    feature_source_uri,
)
from pipelines.monitor_cli import add_monitor_parser
from pipelines.registry_cli import add_registry_parser
from pipelines.retrain_cli import add_retrain_parser
from pipelines.rollout_cli import add_rollout_parsers
from pipelines.schedule_cli import add_schedule_parser

log = logging.getLogger("churn")

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EXIT_GATE_FAILED = 3  # the run registered a version that missed a floor or regressed
EXIT_GATE_REFUSED = 4  # the run registered a version that could not be compared fairly
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what `cmd | head` gives any tool whose reader left
_GATE_EXIT = {"passed": EXIT_OK, "failed": EXIT_GATE_FAILED, "refused": EXIT_GATE_REFUSED}


def gate_exit_code(verdict: str) -> int:
    """The exit code of a finished run whose gate said ``verdict``."""
    if verdict not in _GATE_EXIT:
        raise ValueError(f"gate verdict {verdict!r}: expected one of {sorted(_GATE_EXIT)}")
    return _GATE_EXIT[verdict]


def _add_param_options(parser: argparse.ArgumentParser, defaults: PipelineParams) -> None:
    """One option per :class:`PipelineParams` field, its help text taken from the field."""
    for field in fields(PipelineParams):
        flag = "--" + field.name.replace("_", "-")
        default = getattr(defaults, field.name)
        kind = (
            {"action": argparse.BooleanOptionalAction}
            if isinstance(default, bool)
            else {"type": type(default)}
        )
        parser.add_argument(
            flag, *field.metadata["aliases"], dest=field.name, default=default, **kind,
            help=f"{field.metadata['help']} (default: %(default)s)",
        )  # fmt: skip
    parser.set_defaults(params_parser=parser)


def _params(args: argparse.Namespace) -> PipelineParams:
    """The parsed options as PipelineParams; a bad value is a usage error of the sub-command (exit 2)."""
    try:
        args.data_uri = feature_source_uri(args) or args.data_uri  # --features feast --labels URI
        return PipelineParams(**{f.name: getattr(args, f.name) for f in fields(PipelineParams)})
    except ValueError as exc:
        args.params_parser.error(str(exc))


def _cmd_generate(args: argparse.Namespace) -> int:
    from components.synthetic import Drift, generate, write_table

    drift = Drift(
        args.drift_charges_scale, args.drift_month_to_month, args.drift_fiber, args.drift_churn_shift
    )
    frame = generate(
        args.rows, seed=args.seed, churn_rate=args.churn_rate, drift=drift, with_truth=not args.no_truth
    )
    path = write_table(frame, Path(args.out))
    print(f"wrote {len(frame)} rows to {path} (churn rate {(frame['Churn'] == 'Yes').mean():.3f})")
    return 0


def _print_summary(summary: dict) -> None:
    m = summary["metrics"]
    print("\n=== churn run summary ===")
    print(f"run folder      {summary['run_dir']}")
    print(f"data            {summary['data']['source_uri']}  hash {summary['data']['data_hash'][:16]}")
    data = summary["data"]
    kinds = ("invalid", "duplicates", "duplicate_ids", "label_conflicts")
    breakdown = ", ".join(f"{data[k]} {k.replace('_', ' ')}" for k in kinds if data.get(k))
    print(f"rows            {data['rows']} usable, {data['quarantined']} quarantined"
          f"{f' ({breakdown})' if breakdown else ''}, splits {data['splits']}")  # fmt: skip
    for warning in data.get("warnings") or ():
        print(f"warning         {warning}")
    oracle = (
        f"  (oracle {m['oracle_roc_auc']:.4f}, gap {m['oracle_roc_auc'] - m['roc_auc']:+.4f})"
        if "oracle_roc_auc" in m
        else ""
    )
    print(f"test ROC AUC    {m['roc_auc']:.4f}{oracle}")
    print(f"test PR AUC     {m['pr_auc']:.4f}   log loss {m['log_loss']:.4f}   Brier {m['brier']:.4f}")
    print(f"threshold       {m['threshold']:.2f} (max expected profit; max-F1: {m['threshold_max_f1']:.2f})")
    print(f"at threshold    precision {m['precision']:.3f} recall {m['recall']:.3f} F1 {m['f1']:.3f}, "
          f"expected profit {m['expected_profit']:,.0f} on the test split")  # fmt: skip
    model = summary["model"]
    print(f"ONNX            parity {model['parity_max_abs_diff']:.1e} (max |sklearn - onnx|), "
          f"content sha256 {model['content_sha256'][:12]}")  # fmt: skip
    for name, path in summary["artifacts"].items():
        print(f"{name:<15} {path}")
    if "registry" in summary:
        print(f"registry        {summary['registry'].get('message', summary['registry'])}")


def _cmd_run(args: argparse.Namespace) -> int:
    from pipelines.local import LOG_FILE, new_run_dir, point_latest, run_local
    from pipelines.run_status import INTERRUPTED

    params, settings = _params(args), load_settings()
    out = Path(args.out).resolve() if args.out else new_run_dir(settings.runs_dir)
    print(f"running the churn pipeline locally into {out} (kfp's own log: {out / LOG_FILE})", flush=True)
    try:
        summary = run_local(params, out, verbose=args.verbose)
    except KeyboardInterrupt:
        print(f"error: interrupted; {out} is marked {INTERRUPTED!r}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if out.parent == settings.runs_dir:
        point_latest(settings.runs_dir, out)
    _print_summary(summary)
    registry = summary["registry"]
    code = gate_exit_code(registry["gate"]["verdict"])
    if code != EXIT_OK:
        print(f"gate {registry['gate']['verdict']}: v{registry['version']} of {registry['registered_model']} "
              f"stays a candidate (exit {code})", file=sys.stderr)  # fmt: skip
    return code


def _cmd_compile(args: argparse.Namespace) -> int:
    from pipelines.remote import compile_pipeline

    print(f"wrote {compile_pipeline(Path(args.out))}")
    return 0


def _cmd_submit(args: argparse.Namespace) -> int:
    from pipelines.remote import submit

    experiment = args.experiment or load_settings().experiment
    run_id = submit(args.host, _params(args), experiment=experiment, run_name=args.run_name)
    print(f"submitted run {run_id} to {args.host}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from pipelines.feature_store_cli import serve_with_feature_store
    from pipelines.serve import exec_server, resolve_model

    if args.feature_store:
        return serve_with_feature_store(
            resolve_model(load_settings(), args.model), args.http_port, args.grpc_port
        )
    exec_server(resolve_model(load_settings(), args.model), args.http_port, args.grpc_port, args.server_args)
    return 0  # not reached: exec_server replaces the process


def _cmd_score(args: argparse.Namespace) -> int:
    import json
    import tempfile

    from components.score import ScoreConfig, score_table
    from components.scoring_model import load_scoring_model
    from pipelines.serve import resolve_model

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    settings = load_settings()
    given = {
        "chunk_rows": args.chunk_rows,
        "max_bad_share": args.max_bad_share,
        "top_k": args.top_k,
        "workers": args.workers,
    }  # None: ScoreConfig's default
    config = ScoreConfig(output_format=args.format, **{k: v for k, v in given.items() if v is not None})
    try:
        with tempfile.TemporaryDirectory(prefix="churn-score-model-") as work:
            model = load_scoring_model(
                resolve_model(settings, args.model), settings, Path(work), with_reasons=args.reasons
            )
            summary = score_table(args.data, args.out, model, config, settings, progress, args.previous or "")
    except KeyboardInterrupt:
        print("error: interrupted; the output, its quarantine file and its report are each written whole "
              "or not at all", file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    print(json.dumps(summary, indent=2))
    return 0


def _add_run_parser(subparsers, name: str) -> None:
    """``churn run`` and ``churn pipeline run``: the same command under two names."""
    run = subparsers.add_parser(name, help="run the whole pipeline locally (kfp.local) and print a summary")
    # A laptop has no canary to wait for: local runs promote a passing challenger by default.
    _add_param_options(run, PipelineParams(promote=True))
    run.add_argument("--out", help="run folder (default: a new $CHURN_HOME/runs/<UTC time>-<random>)")
    add_feature_source_options(run)
    # SUPPRESS: `churn -v run` and `churn run -v` both work (a default here would undo the first)
    run.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                     help="show kfp.local's own output too (always in the run's kfp.log)")  # fmt: skip
    run.set_defaults(func=_cmd_run)


def build_parser() -> argparse.ArgumentParser:
    """The ``churn`` parser; building it reads no settings (commands read them when they run)."""
    parser = argparse.ArgumentParser(prog="churn", description=__doc__)
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="debug logging; `run`: kfp.local's own output on screen too",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="data utilities").add_subparsers(dest="data_command", required=True)
    gen = data.add_parser("generate", help="write synthetic Telco-format data")
    gen.add_argument("--rows", type=int, default=PipelineParams.rows)
    gen.add_argument("--seed", type=int, default=PipelineParams.seed)
    gen.add_argument("--out", required=True, help="output .csv or .parquet")
    gen.add_argument("--churn-rate", type=float, default=0.25)
    gen.add_argument("--no-truth", action="store_true", help="omit the true churn probability column")
    gen.add_argument("--drift-charges-scale", type=float, default=1.0, help="multiply monthly charges")
    gen.add_argument("--drift-month-to-month", type=float, default=0.0, help="share moved to month-to-month")
    gen.add_argument("--drift-fiber", type=float, default=0.0, help="share of DSL moved to fiber")
    gen.add_argument("--drift-churn-shift", type=float, default=0.0, help="added to churn log-odds")
    gen.set_defaults(func=_cmd_generate)

    _add_run_parser(sub, "run")

    pipe = sub.add_parser("pipeline", help="compile, run or submit the KFP pipeline")
    pipe_sub = pipe.add_subparsers(dest="pipeline_command", required=True)
    comp = pipe_sub.add_parser("compile", help="write the pipeline IR YAML")
    comp.add_argument("--out", default="build/churn_pipeline.yaml")
    comp.set_defaults(func=_cmd_compile)
    _add_run_parser(pipe_sub, "run")
    subm = pipe_sub.add_parser("submit", help="start a run on a Kubeflow Pipelines server")
    subm.add_argument("--host", required=True, help="KFP API endpoint, e.g. https://kfp.example.com")
    subm.add_argument("--experiment", help="KFP experiment (default: $CHURN_EXPERIMENT or 'churn')")
    subm.add_argument("--run-name", default=None)
    _add_param_options(subm, PipelineParams())
    subm.set_defaults(func=_cmd_submit)

    serve = sub.add_parser("serve", help="serve the champion (or --model) with the KServe v2 server")
    serve.add_argument("--model", help="bundle dir, s3://... or models:/NAME@ALIAS (default: the champion)")
    serve.add_argument("--http-port", type=int, default=8080)
    serve.add_argument("--grpc-port", type=int, default=8081)
    serve.add_argument("--feature-store", action="store_true",
                       help="id-only scoring: transformer on --http-port, predictor behind")  # fmt: skip
    serve.add_argument("server_args", nargs=argparse.REMAINDER, help="passed on to python -m serving")
    serve.set_defaults(func=_cmd_serve)

    score = sub.add_parser("score", help="score a customer table: ranked list with reason codes")
    score.add_argument("--data", required=True, help="customer table: CSV/Parquet path or s3://bucket/key")
    score.add_argument(
        "--out", required=True, help="ranked output path or s3:// URI (+ .quarantine.csv beside it)"
    )
    score.add_argument(
        "--model", help="bundle dir, s3://... or models:/NAME@ALIAS (default: as `churn serve`)"
    )
    score.add_argument("--format", choices=("parquet", "csv"), default="parquet", help="output format")
    score.add_argument("--chunk-rows", type=int, help="rows read and scored at a time (default: 100000)")
    score.add_argument(
        "--max-bad-share", type=float, help="refuse above this share of bad rows (default: 0.05)"
    )
    score.add_argument("--top-k", type=int, help="call-list length the report prices and compares (1000)")
    score.add_argument(
        "--workers",
        type=int,
        help="CPUs to use: processes over a Parquet file's row groups with --no-reasons, else ONNX "
        "Runtime threads (default 0: one per CPU)",
    )
    score.add_argument("--previous", help="last run's ranked output to compare (default: what --out holds)")
    score.add_argument("--reasons", action=argparse.BooleanOptionalAction, default=True,
                       help="top-3 reason codes per row (needs the version's sklearn model)")  # fmt: skip
    score.set_defaults(func=_cmd_score)

    add_registry_parser(sub)
    add_feature_store_parsers(sub, data)
    add_rollout_parsers(sub)
    add_schedule_parser(sub)
    add_monitor_parser(sub)
    add_retrain_parser(sub)
    return parser


def _run_command(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    try:
        return args.func(args)
    except ChurnError as exc:
        log.debug("failed", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def main(argv: list[str] | None = None) -> int:
    """Run one command; the exit codes are in this module's docstring. A :class:`ChurnError` is one
    ``error: ...`` line on stderr; anything else is a bug and keeps its traceback."""
    try:
        try:
            code = _run_command(argv)
        except SystemExit as exc:  # argparse: --help, usage errors
            code = EXIT_OK if exc.code is None else exc.code
        sys.stdout.flush()  # inside the try: a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        # The reader left (`churn registry list | head`): not an error. Point stdout at /dev/null
        # so the interpreter's final flush has nowhere to fail, and exit as a tool killed by SIGPIPE.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
