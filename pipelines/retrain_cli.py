"""``churn retrain check|list``: start the training pipeline when the monitor says so, once per incident.

``check`` reads a monitor result (the JSON of ``churn monitor run --json-out``, or with ``--log``
runs the monitor itself, in the same process), applies the
retraining policy (:mod:`components.retrain`), claims the incident (:mod:`components.retrain_claims`)
and, only when this call won the claim, starts the ``churn-training`` pipeline on the fresh
labelled data (``--data``, default CHURN_RETRAIN_DATA_URI): under ``kfp.local`` in a new run
folder (as ``churn run``), or with ``--host`` on a KFP server (as ``churn pipeline submit``).
It prints the outcome as JSON: ``action`` is ``none`` (no rule fired), ``skipped`` (the incident
or the cooldown is already taken: its ``message`` says by whom) or ``submitted``. ``list`` shows
the recorded incidents. Exit codes as every ``churn`` command: 0 whatever was decided, 1 an error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from components.config import load_settings
from components.errors import ChurnError
from components.params import PipelineParams
from components.retrain import RetrainPolicy, Submitter

_P = RetrainPolicy()


class ResultError(ChurnError, ValueError):
    """The monitor result given to ``churn retrain check`` is missing or not JSON."""


class SubmitError(ChurnError, RuntimeError):
    """Starting the training run failed; its claim is marked failed, so a later check retries."""


def local_submitter(settings, verbose: bool = False) -> Submitter:
    """Run the training pipeline here under ``kfp.local`` (a run folder, as ``churn run``)."""

    def submit(params: PipelineParams, run_name: str) -> dict:
        from pipelines.local import new_run_dir, point_latest, run_local

        out = new_run_dir(settings.runs_dir)
        print(f"retraining locally into {out} ({run_name})", file=sys.stderr, flush=True)
        summary = run_local(params, out, verbose=verbose, console=sys.stderr)
        point_latest(settings.runs_dir, out)
        registry = summary["registry"]
        return {
            "id": str(out),
            "where": "kfp.local",
            "registered_model": registry["registered_model"],
            "version": registry["version"],
            "gate": registry["gate"]["verdict"],
            "champion_after": registry.get("champion_after"),
        }

    return submit


def kfp_submitter(host: str, experiment: str) -> Submitter:
    """Submit the training pipeline to the KFP server at ``host`` (as ``churn pipeline submit``)."""

    def submit(params: PipelineParams, run_name: str) -> dict:
        from pipelines.remote import submit as submit_run

        return {"id": submit_run(host, params, experiment=experiment, run_name=run_name), "where": host}

    return submit


def _monitor_result(args: argparse.Namespace, settings) -> dict:
    """The monitor result: read from ``--result``, or a monitor run on ``--log`` here and now."""
    if args.result:
        try:
            return json.loads(Path(args.result).read_text())
        except (OSError, ValueError) as exc:
            raise ResultError(f"--result {args.result}: cannot read the monitor result: {exc}") from None
    from datetime import datetime, timezone

    from components.monitor_step import monitor_step

    since, until = args.since, args.until
    if args.last is not None:
        until = until or datetime.now(timezone.utc)
        since = until - args.last
    result = monitor_step(
        settings,
        args.log,
        model=args.model,
        since=since,
        until=until,
        labels=args.labels,
        result_path=Path(args.json_out) if args.json_out else None,
        report_path=Path(args.report) if args.report else None,
    )
    return result.to_dict()


def _cmd_check(args: argparse.Namespace) -> int:
    from components.retrain import retrain_params, signals_from_result, trigger_retrain

    settings = load_settings()
    signals = signals_from_result(_monitor_result(args, settings))
    policy = RetrainPolicy(
        on_drift=args.on_drift,
        min_auc=args.min_auc,
        max_gap=args.max_gap,
        cooldown_s=args.cooldown.total_seconds(),
    )
    promote = (
        args.promote if args.promote is not None else args.host is None
    )  # as churn run / pipeline submit
    base = PipelineParams(search_budget=args.budget, cv_folds=args.cv_folds, promote=promote)
    params = retrain_params(base, args.data or settings.retrain_data_uri, signals)
    if args.host:
        submit = kfp_submitter(args.host, args.experiment or settings.experiment)
    else:
        submit = local_submitter(settings, args.verbose)
    try:
        outcome = trigger_retrain(signals, policy, params, settings, submit, owner=args.owner)
    except ChurnError:
        raise
    except (ConnectionError, RuntimeError) as exc:  # kfp.local's "task failed", KFP unreachable
        raise SubmitError(f"retrain submission failed (the incident stays open): {exc}") from exc
    print(json.dumps(outcome.to_dict(), indent=2, sort_keys=True))
    print(f"retrain: {outcome.action}: {outcome.message}", file=sys.stderr)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from components.retrain_claims import list_records

    settings = load_settings()
    records = list_records(settings, args.model or settings.registered_model, args.limit)
    if args.json:
        print(json.dumps([r.to_dict() for r in records], indent=2, sort_keys=True))
        return 0
    for r in records:
        print(
            f"{r.to_dict()['claimed_at']}  v{r.model_version}  {r.kind:<11} {r.status:<9} {r.key}  {r.reason}"
        )
    return 0


def add_retrain_parser(subparsers) -> None:
    """Add ``retrain check|list`` to the ``churn`` parser's sub-parsers."""
    from pipelines.monitor_cli import duration, moment

    retrain = subparsers.add_parser("retrain", help="retraining the monitor starts once per incident")
    sub = retrain.add_subparsers(dest="retrain_command", required=True)
    check = sub.add_parser("check", help="decide from a monitor result and start one retrain per incident")
    given = check.add_mutually_exclusive_group(required=True)
    given.add_argument("--result", help="a monitor result JSON (churn monitor run --json-out)")
    given.add_argument(
        "--log", help="monitor this payload log (folder or s3:// prefix) first, in this process"
    )
    check.add_argument(
        "--model", help="with --log: the served bundle or models:/ URI (default: from the log)"
    )
    check.add_argument("--since", type=moment, help="with --log: window start (ISO 8601)")
    check.add_argument("--until", type=moment, help="with --log: window end (ISO 8601, exclusive)")
    check.add_argument("--last", type=duration, help="with --log: this long before --until (default now)")
    check.add_argument("--labels", help="with --log: delayed labels (CSV/Parquet)")
    check.add_argument("--json-out", help="with --log: also write the monitor result JSON here")
    check.add_argument("--report", help="with --log: also write the monitor's HTML report here")
    check.add_argument("--data", help="fresh labelled data to train on (default: $CHURN_RETRAIN_DATA_URI)")
    check.add_argument("--host", help="submit to this KFP server (default: run here under kfp.local)")
    check.add_argument("--experiment", help="KFP experiment (default: $CHURN_EXPERIMENT or 'churn')")
    check.add_argument(
        "--min-auc",
        type=float,
        default=_P.min_auc,
        help="estimated or realised ROC AUC below this retrains (default: %(default)s)",
    )
    check.add_argument(
        "--max-gap",
        type=float,
        default=_P.max_gap,
        help="|realised - estimated| ROC AUC above this retrains (default: %(default)s)",
    )
    check.add_argument(
        "--on-drift",
        action=argparse.BooleanOptionalAction,
        default=_P.on_drift,
        help="retrain on the monitor's drift alerts (default: %(default)s)",
    )
    check.add_argument(
        "--cooldown",
        type=duration,
        default=duration(f"{_P.cooldown_s:g}s"),
        help="no second retrain this soon after one, e.g. 12h (default: 1d)",
    )
    check.add_argument("--budget", type=int, default=PipelineParams.search_budget, help="search budget")
    check.add_argument("--cv-folds", type=int, default=PipelineParams.cv_folds)
    check.add_argument(
        "--promote",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="champion to a passing version (default: yes locally, no on KFP)",
    )
    check.add_argument("--owner", default="churn retrain check", help="recorded as the claimant")
    check.set_defaults(func=_cmd_check)
    ls = sub.add_parser("list", help="recorded retrain incidents, newest first")
    ls.add_argument("--model", help="registered model (default: CHURN_REGISTERED_MODEL)")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_cmd_list)
