"""``churn schedule create|list|delete``: KFP recurring runs of the project's pipelines.

``create`` compiles the named pipeline for CHURN_ENV exactly as ``churn pipeline compile`` (or the
scoring/monitoring equivalents) does, checks every ``--param`` against the compiled pipeline's own
inputs (name, type, required ones present; ``churn-training`` values also through
:class:`~components.params.PipelineParams`, as ``churn pipeline submit`` checks them), finds or
creates the experiment (default: CHURN_EXPERIMENT) and creates a recurring run through
``kfp.Client.create_recurring_run`` with the compiled spec inline, ``max_concurrency`` 1 and no
catch-up (a server that was down does not fire every missed run at once).

Cron: KFP's scheduler takes six fields with seconds first (``0 0 3 * * *``); the usual five
(``0 3 * * *``) are accepted and get ``0`` seconds. Wired into ``churn`` by
:func:`add_schedule_parser`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import yaml

from components.config import ConfigError, load_settings
from components.errors import ChurnError
from components.params import PipelineParams


class KfpError(ChurnError, ConnectionError):
    """The KFP API server failed or refused a call; the message names the host and the call."""


class ScheduleArgumentError(ConfigError):
    """A bad ``--cron`` or ``--param``: a usage error (exit 2), raised before the server is called."""


def _compile_training(out: Path) -> Path:
    from pipelines.remote import compile_pipeline

    return compile_pipeline(out)


def _compile_scoring(out: Path) -> Path:
    from pipelines.scoring_pipeline import compile_scoring_pipeline

    return compile_scoring_pipeline(out)


def _compile_monitoring(out: Path) -> Path:
    from pipelines.monitoring_pipeline import compile_monitoring_pipeline

    return compile_monitoring_pipeline(out)


COMPILERS: dict[str, Callable[[Path], Path]] = {
    "churn-training": _compile_training,
    "churn-scoring": _compile_scoring,
    "churn-monitoring": _compile_monitoring,
}
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,?#\-]+$")
_KINDS = {"STRING": str, "NUMBER_INTEGER": int, "NUMBER_DOUBLE": float, "BOOLEAN": bool}


def kfp_cron(expression: str) -> str:
    """``expression`` as KFP's six-field cron (seconds first); a :class:`ConfigError` names a bad one."""
    parts = expression.split()
    if len(parts) not in (5, 6) or not all(_CRON_FIELD.match(p) for p in parts):
        raise ScheduleArgumentError(
            f"--cron {expression!r}: expected 5 fields (minute hour day month weekday) "
            "or KFP's 6 (second first), e.g. '0 3 * * *'"
        )
    return " ".join(["0", *parts] if len(parts) == 5 else parts)


def pipeline_inputs(package: Path) -> dict[str, dict]:
    """The compiled pipeline's parameters: ``{name: {"parameterType", "defaultValue"?, "isOptional"?}}``."""
    spec = next(yaml.safe_load_all(Path(package).read_text()))
    return spec["root"].get("inputDefinitions", {}).get("parameters", {})


def _convert(name: str, text: str, kind: str):
    if kind == "BOOLEAN":
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ScheduleArgumentError(f"--param {name}={text!r}: expected true or false")
        return text.lower() in ("true", "1", "yes")
    try:
        return _KINDS[kind](text)
    except KeyError:
        raise ScheduleArgumentError(
            f"--param {name}: a {kind} parameter cannot be set from the command line"
        ) from None
    except ValueError:
        raise ScheduleArgumentError(
            f"--param {name}={text!r}: expected {'an integer' if kind == 'NUMBER_INTEGER' else 'a number'}"
        ) from None


def run_arguments(pipeline: str, package: Path, given: list[str]) -> dict:
    """``KEY=VALUE`` strings as the pipeline's typed arguments; unknown names, bad values and
    missing required parameters are :class:`ConfigError` naming them."""
    inputs = pipeline_inputs(package)
    arguments: dict = {}
    for item in given:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise ScheduleArgumentError(f"--param {item!r}: expected KEY=VALUE")
        if name not in inputs:
            raise ScheduleArgumentError(
                f"--param {name}: {pipeline} has no such parameter; it takes {', '.join(sorted(inputs))}"
            )
        arguments[name] = _convert(name, text, inputs[name]["parameterType"])
    missing = sorted(
        n
        for n, d in inputs.items()
        if n not in arguments and "defaultValue" not in d and not d.get("isOptional")
    )
    if missing:
        raise ScheduleArgumentError(f"{pipeline} needs --param for {', '.join(missing)}")
    if pipeline == "churn-training":  # the same value checks as churn run / churn pipeline submit
        known = {f.name for f in fields(PipelineParams)}
        try:
            PipelineParams(**{k: v for k, v in arguments.items() if k in known})
        except ConfigError as exc:
            raise ScheduleArgumentError(f"--param: {exc}") from None
    return arguments


def _client(host: str):
    import warnings

    import kfp

    try:
        with warnings.catch_warnings():  # "only works with KFP v2.0.0-beta.2 and later": we target 2.x
            warnings.simplefilter("ignore", FutureWarning)
            return kfp.Client(host=host)
    except Exception as exc:  # urllib3 MaxRetryError, TimeoutError, ApiException
        raise KfpError(f"KFP server {host}: cannot connect: {exc}") from exc


def _call(host: str, what: str, fn, *args, **kwargs):
    """``fn(...)``; failures become a :class:`KfpError` naming ``host`` and ``what``. kfp prints
    links ("Experiment details: ...") to stdout: they go to stderr, so ``--json`` stays JSON."""
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return fn(*args, **kwargs)
    except ChurnError:
        raise
    except Exception as exc:  # ApiException (status + body), urllib3 errors
        detail = (
            f"HTTP {exc.status} {getattr(exc, 'body', '') or exc.reason}"
            if hasattr(exc, "status")
            else str(exc)
        )
        raise KfpError(f"KFP server {host}: {what} failed: {detail}".strip()) from exc


def create_schedule(
    host: str,
    pipeline: str,
    cron: str,
    arguments: list[str],
    *,
    experiment: str,
    name: str | None = None,
    namespace: str | None = None,
    max_concurrency: int = 1,
) -> dict:
    """Compile ``pipeline``, check ``arguments`` (``KEY=VALUE``) and create its recurring run."""
    if pipeline not in COMPILERS:
        raise ConfigError(f"--pipeline {pipeline!r}: expected one of {', '.join(COMPILERS)}")
    if max_concurrency < 1:
        raise ScheduleArgumentError(f"--max-concurrency must be >= 1, got {max_concurrency}")
    expression = kfp_cron(cron)
    with tempfile.TemporaryDirectory(prefix="churn-schedule-") as tmp:
        package = COMPILERS[pipeline](Path(tmp) / f"{pipeline}.yaml")
        params = run_arguments(pipeline, package, arguments)
        client = _client(host)
        exp = _call(
            host,
            f"find or create experiment {experiment!r}",
            client.create_experiment,
            experiment,
            namespace=namespace,
        )
        job = _call(
            host,
            f"create recurring run of {pipeline}",
            client.create_recurring_run,
            experiment_id=exp.experiment_id,
            job_name=name or f"{pipeline}-schedule",
            description=f"churn schedule create --pipeline {pipeline} --cron '{cron}'",
            cron_expression=expression,
            max_concurrency=max_concurrency,
            no_catchup=True,
            params=params,
            pipeline_package_path=str(package),
        )
    return {
        "recurring_run_id": job.recurring_run_id,
        "name": job.display_name,
        "pipeline": pipeline,
        "cron": expression,
        "experiment": experiment,
        "experiment_id": exp.experiment_id,
        "params": params,
    }


def list_schedules(
    host: str, experiment: str | None = None, namespace: str | None = None, page_size: int = 100
) -> list[dict]:
    """Every recurring run (of ``experiment`` when given), newest first, all pages."""
    client = _client(host)
    experiment_id = None
    if experiment:
        experiment_id = _call(
            host,
            f"find experiment {experiment!r}",
            client.get_experiment,
            experiment_name=experiment,
            namespace=namespace,
        ).experiment_id
    rows, token = [], ""
    while True:
        page = _call(
            host,
            "list recurring runs",
            client.list_recurring_runs,
            page_token=token,
            page_size=page_size,
            sort_by="created_at desc",
            experiment_id=experiment_id,
            namespace=namespace,
        )
        for job in page.recurring_runs or ():
            cron = job.trigger.cron_schedule.cron if job.trigger and job.trigger.cron_schedule else None
            rows.append(
                {
                    "recurring_run_id": job.recurring_run_id,
                    "name": job.display_name,
                    "cron": cron,
                    "status": job.status,
                    "experiment_id": job.experiment_id,
                    "created_at": job.created_at.isoformat() if job.created_at else None,
                }
            )
        token = page.next_page_token
        if not token:
            return rows


def delete_schedule(host: str, recurring_run_id: str) -> None:
    """Delete one recurring run (its past runs stay)."""
    client = _client(host)
    _call(host, f"delete recurring run {recurring_run_id}", client.delete_recurring_run, recurring_run_id)


def _cmd_create(args: argparse.Namespace) -> int:
    try:
        created = create_schedule(
            args.host,
            args.pipeline,
            args.cron,
            args.param,
            experiment=args.experiment or load_settings().experiment,
            name=args.name,
            namespace=args.namespace,
            max_concurrency=args.max_concurrency,
        )
    except ScheduleArgumentError as exc:
        args.create_parser.error(str(exc))
    if args.json:
        print(json.dumps(created, indent=2, sort_keys=True))
    else:
        print(
            f"created recurring run {created['recurring_run_id']} ({created['name']}): {created['pipeline']} "
            f"at cron '{created['cron']}' in experiment {created['experiment']}"
        )
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    rows = list_schedules(args.host, args.experiment, args.namespace)
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
        return 0
    header = ["id", "name", "cron", "status", "created"]
    table = [
        [
            r["recurring_run_id"],
            r["name"] or "-",
            r["cron"] or "-",
            str(r["status"] or "-"),
            r["created_at"] or "-",
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) if table else len(h) for i, h in enumerate(header)]
    for row in [header, *table]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _cmd_delete(args: argparse.Namespace) -> int:
    delete_schedule(args.host, args.recurring_run_id)
    print(f"deleted recurring run {args.recurring_run_id}")
    return 0


def add_schedule_parser(subparsers) -> None:
    """Add ``schedule`` and its sub-commands to the ``churn`` parser's sub-parsers."""
    schedule = subparsers.add_parser("schedule", help="KFP recurring runs: create, list, delete")
    sub = schedule.add_subparsers(dest="schedule_command", required=True)

    def common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument("--host", required=True, help="KFP API endpoint, e.g. https://kfp.example.com")
        parser.add_argument("--namespace", help="KFP namespace (multi-user deployments)")
        return parser

    create = common(sub.add_parser("create", help="run a pipeline on a cron schedule"))
    create.add_argument("--cron", required=True, help="'MIN HOUR DAY MONTH WEEKDAY' (or KFP's 6 fields)")
    create.add_argument("--pipeline", required=True, choices=list(COMPILERS))
    create.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a pipeline parameter (repeat); names and types come from the compiled pipeline",
    )
    create.add_argument("--experiment", help="KFP experiment (default: $CHURN_EXPERIMENT or 'churn')")
    create.add_argument("--name", help="recurring run name (default: PIPELINE-schedule)")
    create.add_argument("--max-concurrency", type=int, default=1, help="runs of it at once (default: 1)")
    create.add_argument("--json", action="store_true")
    create.set_defaults(func=_cmd_create, create_parser=create)

    ls = common(sub.add_parser("list", help="recurring runs, newest first"))
    ls.add_argument("--experiment", help="only this experiment's")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_cmd_list)

    delete = common(sub.add_parser("delete", help="delete a recurring run"))
    delete.add_argument("recurring_run_id")
    delete.set_defaults(func=_cmd_delete)
