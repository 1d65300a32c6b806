"""``churn registry ...``: list/search, show, compare, promote, rollback, history, gc.

Wired into the ``churn`` CLI by :func:`add_registry_parser`. Every command reads the same
settings as the pipeline (``MLFLOW_TRACKING_URI`` etc., embedded SQLite default) and prints a
table, or JSON with ``--json``. Errors (unreachable MLflow or store, unknown version, bad filter)
raise :class:`~components.errors.ChurnError` subclasses naming the endpoint or the argument; the
``churn`` entry point prints them as one line and exits 1. The operations themselves live in
:mod:`components.registry` (imported per command: mlflow is slow to import).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import datetime, timezone

from components.config import Settings, load_settings
from components.gate import GATE_METRICS
from components.registry_names import ALIASES, CHAMPION, LINEAGE_SYNTHETIC, registered_model_for_lineage

_LISTED_METRICS = (*GATE_METRICS, "f1")


def _settings(args: argparse.Namespace) -> Settings:
    """The environment's settings, on ``--model`` when given."""
    settings = load_settings()
    return replace(settings, registered_model=args.model) if args.model else settings


def _json(data) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _when(millis) -> str:
    if not millis:
        return "-"
    return datetime.fromtimestamp(int(millis) / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M")


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def _tag_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--tag {text!r}: expected KEY=VALUE")
    return key, value


def _cmd_list(args: argparse.Namespace) -> int:
    from components.registry import list_versions

    settings = _settings(args)
    rows = list_versions(
        settings, alias=args.alias, tags=dict(args.tag or []), metric_filters=args.metric, limit=args.limit
    )
    if args.json:
        _json(rows)
        return 0
    if not rows:
        print(f"no versions of {settings.registered_model} match (tracking: {settings.mlflow_tracking_uri})")
        if not args.model:
            demo = registered_model_for_lineage(LINEAGE_SYNTHETIC, settings.registered_model)
            print(f"runs on synthetic data register under {demo}: add --model {demo}")
        return 0
    print(f"{settings.registered_model} @ {settings.mlflow_tracking_uri}")
    _table(
        ["version", "created (UTC)", "aliases", "gate", *_LISTED_METRICS, "data hash", "state"],
        [
            [
                r["version"], _when(r["created"]), ",".join(r["aliases"]) or "-", r["gate"],
                *(_fmt(r.get(m)) for m in _LISTED_METRICS), (r["data_hash"] or "-")[:12], r["state"],
            ]
            for r in rows
        ],
    )  # fmt: skip
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from components.registry import show_version

    info = show_version(_settings(args), args.version)
    if args.json:
        _json(info)
        return 0
    print(f"{info['registered_model']} v{info['version']}  aliases: {', '.join(info['aliases']) or '-'}")
    print(f"state           {info['state']}")
    print(f"gate            {info['gate']['verdict']}  (compared against: {info['compared_against']})")
    for reason in info["gate"]["reasons"]:
        print(f"                - {reason}")
    if info["promotion"]:
        print(f"promotion       {info['promotion']}")
    for key, value in info["lineage"].items():
        print(f"{key:<15} {value}")
    print(f"bundle          {info['bundle']['uri']}  sha256 {info['bundle']['sha256']}")
    print(f"mlflow run      {info['run_id']}   model source {info['source']}")
    metrics = info["metrics"]
    print("metrics         " + ", ".join(f"{k}={_fmt(metrics[k])}" for k in sorted(metrics)))
    print("artifacts       " + ", ".join(info["artifacts"]))
    print("promotion history:")
    _print_events(info["promotion_history"])
    return 0


def _print_events(events: list[dict]) -> None:
    if not events:
        print("  (none)")
        return
    _table(
        ["when (UTC)", "alias", "from", "to", "via", "who", "reason"],
        [
            [
                e["at"],
                e["alias"],
                _fmt(e["from_version"]),
                _fmt(e["to_version"]),
                e["via"],
                e["actor"],
                e["reason"],
            ]
            for e in events
        ],
    )


def _cmd_compare(args: argparse.Namespace) -> int:
    from components.registry import compare_versions

    out = compare_versions(_settings(args), args.a, args.b, data_uri=args.data)
    if args.json:
        _json(out)
        return 0
    rows = [["aliases", ",".join(out["aliases"][0]) or "-", ",".join(out["aliases"][1]) or "-", ""]]
    rows.append(["gate", _fmt(out["gate"][0]), _fmt(out["gate"][1]), ""])
    for key, (left, right) in out["lineage"].items():
        rows.append([key, _fmt(left), _fmt(right), "" if left == right else "differs"])
    for key, (left, right) in out["metrics"].items():
        delta = right - left if isinstance(left, float) and isinstance(right, float) else None
        rows.append([key, _fmt(left), _fmt(right), "" if delta is None else f"{delta:+.4f}"])
    if "rescored" in out:
        re = out["rescored"]
        for key in GATE_METRICS:
            left, right = re["a"][key], re["b"][key]
            rows.append([f"{key} on --data", _fmt(left), _fmt(right), f"{right - left:+.4f}"])
        rows.append(["rows scored", str(re["rows"]), str(re["rows"]), re["data"]])
        rows.append(["rows quarantined", str(re["quarantined"]), "", f"of {re['source_rows']} read"])
        seen = [_fmt(n) for n in re["seen_in_training"]]
        rows.append(["of them trained on", *seen, "- = no record of its training rows"])
    _table(["", f"v{out['a']}", f"v{out['b']}", "b - a"], rows)
    return 0


def _cmd_promote(args: argparse.Namespace) -> int:
    from components.registry import promote

    out = promote(
        _settings(args), args.version, reason=args.reason, alias=args.alias, force=args.force,
        break_lock=args.break_lock,
    )  # fmt: skip
    if args.json:
        _json(out)
    elif out["moved"]:
        print(f"{out['alias']}: v{out['from'] or '-'} -> v{out['to']} ({args.reason})")
    else:
        print(f"{out['alias']} already points at v{out['to']}; nothing moved")
    return 0


def _cmd_rollback(args: argparse.Namespace) -> int:
    from components.registry import rollback

    out = rollback(_settings(args), reason=args.reason, break_lock=args.break_lock)
    if args.json:
        _json(out)
    else:
        print(f"champion rolled back: v{out['from']} -> v{out['to']} ({args.reason})")
    return 0


def _cmd_history(args: argparse.Namespace) -> int:
    from components.registry import audit_history

    events = audit_history(_settings(args))
    if args.json:
        _json(events)
    else:
        _print_events(events)
    return 0


def _cmd_gc(args: argparse.Namespace) -> int:
    from components.registry.cleanup import collect_garbage

    done = collect_garbage(load_settings(), older_than_s=args.older_than)
    if args.json:
        _json(done)
        return 0
    for item in done["versions"]:
        print(f"{item['model']} v{item['version']}: {item['action']} ({item['why']})")
    for item in done["runs"]:
        print(f"MLflow run {item['run_id']}: {item['action']} ({item['why']})")
    for line in done["left"]:
        print(f"left alone: {line} (--older-than SECONDS to close it anyway)")
    if not any(done.values()):
        print("nothing to clean up")
    return 0


def add_registry_parser(subparsers) -> None:
    """Add ``registry`` and its sub-commands to the ``churn`` parser's sub-parsers."""
    reg = subparsers.add_parser("registry", help="model registry: list, show, compare, promote, rollback")
    sub = reg.add_subparsers(dest="registry_command", required=True)

    def with_json(parser: argparse.ArgumentParser, *, model: bool = True) -> argparse.ArgumentParser:
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
        if not model:
            return parser
        parser.add_argument(
            "--model",
            metavar="NAME",
            help="registered model (default CHURN_REGISTERED_MODEL, the lineage of your own data; "
            "the synthetic demo's is NAME-synthetic)",
        )
        return parser

    def with_break_lock(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--break-lock",
            action="store_true",
            help="break a promotion lock whose holder went silent (only when you know it is gone)",
        )

    ls = with_json(sub.add_parser("list", aliases=["search"], help="versions with metrics, aliases, gate"))
    ls.add_argument("--alias", help="only the version holding this alias (champion, challenger)")
    ls.add_argument("--tag", action="append", type=_tag_pair, metavar="KEY=VALUE", help="tag equals value")
    ls.add_argument("--metric", action="append", metavar="EXPR", help="metric filter, e.g. 'roc_auc>=0.8'")
    ls.add_argument("--limit", type=int, default=50)
    ls.set_defaults(func=_cmd_list)

    show = with_json(sub.add_parser("show", help="full lineage and promotion history of one version"))
    show.add_argument("version")
    show.set_defaults(func=_cmd_show)

    cmp_ = with_json(sub.add_parser("compare", help="two versions side by side"))
    cmp_.add_argument("a")
    cmp_.add_argument("b")
    cmp_.add_argument("--data", help="labelled rows (Parquet/CSV path or s3://) to re-score both on")
    cmp_.set_defaults(func=_cmd_compare)

    pro = with_json(sub.add_parser("promote", help="point an alias (default champion) at VERSION"))
    pro.add_argument("version")
    pro.add_argument("--reason", required=True, help="why; recorded in the audit trail")
    pro.add_argument("--alias", default=CHAMPION, choices=ALIASES)
    pro.add_argument("--force", action="store_true", help="promote even if the quality gate failed")
    with_break_lock(pro)
    pro.set_defaults(func=_cmd_promote)

    rb = with_json(sub.add_parser("rollback", help="champion back to the previous champion"))
    rb.add_argument("--reason", default="manual rollback", help="recorded in the audit trail")
    with_break_lock(rb)
    rb.set_defaults(func=_cmd_rollback)

    hist = with_json(sub.add_parser("history", help="the audit trail of alias moves"))
    hist.set_defaults(func=_cmd_history)

    gc_help = "close registrations a kill left half-done (pending versions, RUNNING runs)"
    gc = with_json(sub.add_parser("gc", help=gc_help), model=False)  # gc covers every lineage
    gc.add_argument(
        "--older-than",
        type=float,
        metavar="SECONDS",
        help="also close those whose process cannot be proven gone (another host) but started this long ago",
    )
    gc.set_defaults(func=_cmd_gc)
