"""``churn monitor run|serve``: drift, label-free performance and live accuracy of the served version.

``run`` monitors one window of the payload log and writes JSON (stdout or ``--json-out``), an
HTML report (``--report``), MLflow metrics on the version (``--mlflow``) and, with
``--pushgateway``, Prometheus gauges. ``serve`` repeats it every ``--interval`` seconds over the
last ``--last`` of the log and exposes the gauges on ``/metrics`` for Prometheus to scrape.

Exit codes: 0 done (whatever the verdict, unless ``--fail-on``); 1 an error (one ``error:``
line: empty window, no reference in the bundle, unreadable log or labels); 2 usage;
5 the verdict reached ``--fail-on`` (``warn`` or ``alert``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from components.config import load_settings

EXIT_VERDICT = 5
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_LEVELS = ("warn", "alert")


def duration(text: str) -> timedelta:
    """``30m``, ``6h``, ``7d``, ``52w`` -> a timedelta (argparse type)."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a duration such as 30m, 6h, 7d or 52w")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def moment(text: str) -> datetime:
    """An ISO 8601 time (UTC unless it says otherwise) (argparse type)."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected an ISO 8601 time, e.g. 2026-11-30T00:00Z"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _window(args: argparse.Namespace) -> tuple[datetime | None, datetime | None]:
    until = args.until
    if args.last is not None:
        until = until or datetime.now(timezone.utc)
        return until - args.last, until
    return args.since, until


def _config(args: argparse.Namespace):
    from components.monitoring import MonitorConfig

    return MonitorConfig(
        psi_warn=args.psi_warn,
        psi_alert=args.psi_alert,
        js_alert=args.js_alert,
        alpha=args.alpha,
        correction=args.correction,
        min_rows=args.min_rows,
        min_labelled=args.min_labelled,
        season_offset=args.season_offset,
    )


def monitor_once(args: argparse.Namespace, settings):
    """Run the monitor on the window asked for and write the outputs asked for; return the result
    (the JSON result is printed or written by the caller)."""
    from components.monitor_step import monitor_step

    since, until = _window(args)
    return monitor_step(
        settings,
        args.log,
        model=args.model,
        since=since,
        until=until,
        labels=args.labels,
        key_column=args.key_column,
        config=_config(args),
        report_path=Path(args.report) if args.report else None,
        mlflow=bool(args.mlflow),
        pushgateway=args.pushgateway or None,
        progress=(lambda line: print(line, file=sys.stderr, flush=True)) if args.progress else None,
    )


def _print_summary(result) -> None:
    print(
        f"monitor: {result.status}  ({result.rows:,} rows, "
        f"{result.window['first']} .. {result.window['last']}; "
        f"baseline: {result.baseline})",
        file=sys.stderr,
    )
    for check in result.alerts:
        print(f"  {check.level:<5} {check.name}: {check.reason}", file=sys.stderr)
    for check in result.checks:
        if check.level == "not_enough_data":
            print(f"  {check.name}: {check.reason}", file=sys.stderr)


def _cmd_run(args: argparse.Namespace) -> int:
    from components.storage import atomic_path

    result = monitor_once(args, load_settings())
    text = json.dumps(result.to_dict(), indent=2, default=str)
    if args.json_out:
        with atomic_path(Path(args.json_out)) as tmp:
            tmp.write_text(text + "\n")
    else:
        print(text)
    _print_summary(result)
    if args.fail_on and _LEVELS.index(args.fail_on) <= (
        _LEVELS.index(result.status) if result.status in _LEVELS else -1
    ):
        return EXIT_VERDICT
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from prometheus_client import start_http_server

    from components.errors import ChurnError
    from components.monitoring.metrics import registry_for

    settings = load_settings()
    holder = {"registry": None}

    class _Latest:  # what /metrics serves: the latest run's registry
        def collect(self):
            registry = holder["registry"]
            return registry.collect() if registry is not None else iter(())

    from prometheus_client import CollectorRegistry

    served = CollectorRegistry()
    served.register(_Latest())
    start_http_server(args.port, addr=args.host, registry=served)
    print(
        f"churn monitor serving /metrics on http://{args.host}:{args.port} every {args.interval:g}s",
        flush=True,
    )
    while True:
        try:
            result = monitor_once(args, settings)
            holder["registry"] = registry_for(result)
            print(
                f"monitor: {result.status}, {result.rows:,} rows, {len(result.alerts)} alert(s)", flush=True
            )
        except ChurnError as exc:  # an empty window now is not fatal: the next interval may have rows
            print(f"error: {exc}", file=sys.stderr, flush=True)
        time.sleep(args.interval)


def _add_common(p: argparse.ArgumentParser) -> None:
    from components.monitoring import MonitorConfig

    d = MonitorConfig()
    p.add_argument("--log", required=True, help="payload log: folder, Parquet file or s3://bucket/prefix")
    p.add_argument(
        "--model",
        help="bundle folder, s3:// bundle or models:/NAME@ALIAS (default: the version "
        "that served the window, from the log's content_sha256 and the registry)",
    )
    p.add_argument("--since", type=moment, help="window start (ISO 8601, inclusive)")
    p.add_argument("--until", type=moment, help="window end (ISO 8601, exclusive)")
    p.add_argument("--labels", help="delayed labels (CSV/Parquet: customer id, label, label_date)")
    p.add_argument(
        "--key-column",
        default="request_id",
        help="payload-log column holding the customer id labels join on (default: %(default)s)",
    )
    p.add_argument("--psi-warn", type=float, default=d.psi_warn, help="(default: %(default)s)")
    p.add_argument("--psi-alert", type=float, default=d.psi_alert, help="(default: %(default)s)")
    p.add_argument(
        "--js-alert", type=float, default=d.js_alert, help="JS distance bound (default: %(default)s)"
    )
    p.add_argument(
        "--alpha", type=float, default=d.alpha, help="significance after correction (default: %(default)s)"
    )
    p.add_argument(
        "--correction", choices=("bh", "holm"), default=d.correction, help="(default: %(default)s)"
    )
    p.add_argument(
        "--min-rows", type=int, default=d.min_rows, help="fewer rows: not enough data (default: %(default)s)"
    )
    p.add_argument("--min-labelled", type=int, default=d.min_labelled, help="(default: %(default)s)")
    p.add_argument(
        "--season-offset",
        type=duration,
        help="compare with the same window this long before (e.g. 52w) instead of the reference",
    )
    p.add_argument("--report", help="write the HTML report here")
    p.add_argument("--mlflow", action="store_true", help="log metrics on the model version in MLflow")
    p.add_argument("--pushgateway", help="push the gauges to this Prometheus Pushgateway (host:port)")
    p.add_argument("--progress", action="store_true", help="a progress line per payload file on stderr")


def add_monitor_parser(subparsers) -> None:
    """``churn monitor run`` and ``churn monitor serve``."""
    monitor = subparsers.add_parser("monitor", help="drift, estimated and live accuracy of the served model")
    sub = monitor.add_subparsers(dest="monitor_command", required=True)
    run = sub.add_parser(
        "run",
        help="monitor one window of the payload log",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(run)
    run.add_argument("--last", type=duration, help="window: this long before --until (default now), e.g. 7d")
    run.add_argument("--json-out", help="write the JSON here instead of stdout")
    run.add_argument(
        "--fail-on", choices=_LEVELS, help=f"exit {EXIT_VERDICT} when the verdict is at least this"
    )
    run.set_defaults(func=_cmd_run)
    serve = sub.add_parser("serve", help="monitor every --interval seconds and expose /metrics")
    _add_common(serve)
    serve.add_argument("--last", type=duration, default=timedelta(days=1), help="window length (default: 1d)")
    serve.add_argument(
        "--interval", type=float, default=300.0, help="seconds between runs (default: %(default)s)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="(default: %(default)s)")
    serve.add_argument("--port", type=int, default=9108, help="(default: %(default)s)")
    serve.set_defaults(func=_cmd_serve)
