"""``churn rollout preflight``: replay recent production rows through a registry version before it serves.

Hooked under ``churn rollout`` by :func:`add_preflight_parser` (``pipelines/rollout_cli.py`` calls
it with the ``rollout`` sub-command's subparsers). Prints the verdict table, or JSON with
``--json``. Exit codes: 0 the challenger passed; 3 rejected (beyond a bound); 4 skipped (too few
rows in the window to judge); 1 an error (unreachable registry or store, unreadable log); 2 usage.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from dataclasses import fields, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from components.config import load_settings
from components.rollout.preflight import PreflightConfig, PreflightError, replay_version
from components.rollout.verdict import PROMOTE, ROLLBACK, SKIPPED

EXIT_PASSED, EXIT_REJECTED, EXIT_SKIPPED = 0, 3, 4
_EXIT = {PROMOTE: EXIT_PASSED, ROLLBACK: EXIT_REJECTED, SKIPPED: EXIT_SKIPPED}
_DURATION = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
_BOUND_HELP = {
    "min_rows": "fewer champion rows in the window: skipped",
    "max_rows": "newest rows read at most",
    "max_js_distance": "largest Jensen-Shannon distance of the score distributions",
    "max_positive_rate_change": "largest change in positive rate",
    "min_spearman": "smallest Spearman rank correlation of the scores",
    "min_top_decile_overlap": "smallest share of the champion's top 10%% also in the challenger's",
    "bins": "score histogram bins for the JS distance",
}


def when(text: str) -> datetime:
    """``--since``/``--until``: ISO 8601 (UTC if no zone) or a duration back from now (90m, 24h, 7d)."""
    match = _DURATION.match(text.strip())
    if match:
        return datetime.now(timezone.utc) - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected an ISO 8601 time (2026-12-01T10:00) or a duration (90m, 24h, 7d)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def add_preflight_parser(rollout_sub) -> None:
    """Add ``preflight`` to the subparsers of ``churn rollout``."""
    parser = rollout_sub.add_parser(
        "preflight",
        help="replay recent payload-log rows through a version and compare with the champion's answers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", required=True, help="registry version of the challenger")
    parser.add_argument(
        "--payload-log", required=True, metavar="URI",
        help="the serving payload log: a folder or s3://bucket/prefix (the server's --payload_log_uri)",
    )  # fmt: skip
    parser.add_argument("--since", type=when, default=None, help="window start (default: 24h)")
    parser.add_argument("--until", type=when, default=None, help="window end (default: now)")
    parser.add_argument("--model", default=None, help="registered model name (default: from the settings)")
    defaults = PreflightConfig()
    for field in fields(PreflightConfig):
        default = getattr(defaults, field.name)
        parser.add_argument(
            "--" + field.name.replace("_", "-"), type=type(default), default=default,
            help=f"{_BOUND_HELP[field.name]} (default: %(default)s)",
        )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")
    parser.set_defaults(func=_cmd_preflight, preflight_parser=parser)


def _cmd_preflight(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.model:
        settings = replace(settings, registered_model=args.model)
    try:
        config = PreflightConfig(**{f.name: getattr(args, f.name) for f in fields(PreflightConfig)})
    except PreflightError as exc:
        args.preflight_parser.error(str(exc))
    with tempfile.TemporaryDirectory(prefix="churn-preflight-") as work:
        verdict = replay_version(
            settings, args.version, args.payload_log, Path(work), config, since=args.since, until=args.until
        )
    print(json.dumps(verdict.to_dict(), indent=2) if args.json else verdict.table())
    return _EXIT[verdict.decision]
