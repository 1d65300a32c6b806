"""``churn data history``, ``churn features apply|materialize``, ``churn run --features feast``,
``churn serve --feature-store``: the feature-store commands (docs/feature-store.md)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from components.config import ConfigError, load_settings
from components.storage import atomic_path, is_s3

FEATURE_SOURCES = ("table", "feast")


def _cmd_history(args: argparse.Namespace) -> int:
    from components import history

    start = args.start or history.recent_start(args.months)
    hist = history.generate_history(args.customers, args.months, seed=args.seed, start=start)
    paths = hist.write(Path(args.out))
    labels = history.label_rows(hist, horizon_days=args.horizon_days)
    labels_path = Path(args.out) / "labels.parquet"
    with atomic_path(labels_path) as tmp:
        labels.to_parquet(tmp, index=False)
    print(f"wrote {len(hist.account)} snapshot rows of {len(hist.customers)} customers "
          f"({hist.snapshots[0].date()}..{hist.end.date()}), {len(hist.churn_events)} churn events, "
          f"{len(labels)} labels ({args.horizon_days}-day horizon, churn rate "
          f"{(labels['Churn'] == 'Yes').mean():.3f}) to {args.out}")  # fmt: skip
    for name, path in {**paths, "labels": labels_path}.items():
        print(f"  {name:<13} {path}")
    return 0


def _cmd_apply(args: argparse.Namespace) -> int:
    from components import feature_store, history

    settings = load_settings()
    if args.history:
        feature_store.publish_history(history.read_history(Path(args.history)), settings)
    feature_store.apply(settings)
    print(f"applied feature_repo/ ({settings.feature_store_env}) to {settings.feature_registry}")
    return 0


def _cmd_materialize(args: argparse.Namespace) -> int:
    from components.feature_store import materialize_window

    print(materialize_window(load_settings(), args.start, args.end))
    return 0


def add_feature_store_parsers(sub, data_sub) -> None:
    """``churn data history`` under ``data_sub``; ``churn features ...`` under ``sub``."""
    hist = data_sub.add_parser("history", help="write a time-stamped customer history and its labels")
    hist.add_argument("--months", type=int, required=True, help="monthly snapshots (>= 4)")
    hist.add_argument("--out", required=True, help="output folder (one Parquet file per table)")
    hist.add_argument("--customers", type=int, default=5000)
    hist.add_argument("--seed", type=int, default=42)
    hist.add_argument("--start", help="first snapshot date (default: the last one is this month's)")
    hist.add_argument("--horizon-days", type=int, default=90, help="label: churned within this many days")
    hist.set_defaults(func=_cmd_history)

    feats = sub.add_parser("features", help="the Feast feature store: apply, materialize")
    fsub = feats.add_subparsers(dest="features_command", required=True)
    apply = fsub.add_parser("apply", help="feast apply feature_repo/ (optionally publishing a history first)")
    apply.add_argument("--history", help="folder written by `churn data history`: publish its tables first")
    apply.set_defaults(func=_cmd_apply)
    mat = fsub.add_parser("materialize", help="load feature rows of a time window into the online store")
    mat.add_argument("--start", required=True, help="window start (ISO date/time, UTC)")
    mat.add_argument("--end", help="window end (default: now)")
    mat.set_defaults(func=_cmd_materialize)


def add_feature_source_options(run: argparse.ArgumentParser) -> None:
    """``--features table|feast`` and ``--labels URI`` on ``churn run``."""
    run.add_argument("--features", choices=FEATURE_SOURCES, default="table",
                     help="feast: training set from the feature store (default: table)")  # fmt: skip
    run.add_argument("--labels", help="labels table (customerID, as_of, Churn) for --features feast")


def feature_source_uri(args: argparse.Namespace) -> str | None:
    """The ingest source URI that ``--features feast --labels URI`` stands for (None: a plain table)."""
    from components.feature_store import source_uri

    if getattr(args, "features", "table") != "feast":
        if getattr(args, "labels", None):
            raise ConfigError("--labels goes with --features feast")
        return None
    if args.data_uri:
        raise ConfigError("--features feast builds the training set itself: drop --data")
    labels = args.labels or ""
    if labels and not is_s3(labels):
        if not Path(labels).is_file():
            raise ConfigError(f"--labels {labels}: no such file")
        labels = str(Path(labels).resolve())  # the lineage names the file wherever the run is read
    return source_uri(labels)


def serve_with_feature_store(model_uri: str, http_port: int, grpc_port: int) -> int:
    """Run predictor + transformer locally until Ctrl-C: clients send ids to ``http_port``."""
    from components.feature_store import config_file, feast_env

    settings = load_settings()
    predictor_port = http_port + 10
    predictor = subprocess.Popen([
        sys.executable, "-m", "serving", "--model_dir", model_uri, "--model_name", "churn",
        "--http_port", str(predictor_port), "--grpc_port", str(grpc_port),
    ])  # fmt: skip
    transformer = subprocess.Popen([
        sys.executable, "-m", "churn_transformer", "--model_name", "churn",
        "--predictor_host", f"127.0.0.1:{predictor_port}",
        "--feature_store_yaml", str(config_file(settings)),
        "--http_port", str(http_port), "--grpc_port", str(grpc_port + 10),
    ], env={**os.environ, **feast_env(settings)})  # fmt: skip
    print(f"transformer on http://127.0.0.1:{http_port}/v1/models/churn:predict "
          f"(body {{\"customer_id\": [...]}}), predictor on 127.0.0.1:{predictor_port}; Ctrl-C stops both",
          flush=True)  # fmt: skip
    try:
        while predictor.poll() is None and transformer.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for process in (transformer, predictor):
            if process.poll() is None:
                process.terminate()
        for process in (transformer, predictor):
            process.wait(timeout=20)
    for name, process in (("predictor", predictor), ("transformer", transformer)):
        if process.returncode not in (0, -15):  # -15: stopped by us (SIGTERM)
            print(f"error: the {name} exited with status {process.returncode} (its output is above)",
                  file=sys.stderr)  # fmt: skip
            return 1
    return 0
