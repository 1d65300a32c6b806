"""``churn deploy render|release-env`` and ``churn rollout start|status|analyze|promote|rollback|resume``.

Wired into the ``churn`` CLI by :func:`add_rollout_parsers`. Registry settings are the pipeline's
(``MLFLOW_TRACKING_URI`` etc.; ``--model`` picks another registered model); the Kubernetes
credentials are the pod's service account or the kubeconfig, whose current context must be the
``--env`` cluster (``make kubeconfig ENV=...``). Every verdict is printed as a table. Errors are
:class:`~components.errors.ChurnError` subclasses: one ``error: ...`` line, exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from components.config import ConfigError, Settings, load_settings
from components.rollout.plan import (
    DEFAULT_BAKE_S,
    DEFAULT_HOLD_TIMEOUT_S,
    DEFAULT_READY_TIMEOUT_S,
    DEFAULT_STEPS,
    RolloutPlan,
    format_steps,
    parse_steps,
)
from pipelines.rollout_preflight_cli import add_preflight_parser

NAMESPACE, NAME = "churn", "churn"  # the InferenceService of manifests/base/inferenceservice.yaml


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings()
    return replace(settings, registered_model=args.model) if args.model else settings


def _print(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# ---- churn deploy -------------------------------------------------------------------------------
def _cmd_render(args: argparse.Namespace) -> int:
    from components.rollout.render import build_overlay, release_of, render, to_yaml

    release = release_of(_settings(args), args.version)
    sys.stdout.write(to_yaml(render(build_overlay(Path(args.manifests), args.env), release, args.canary)))
    return 0


def _cmd_release_env(args: argparse.Namespace) -> int:
    from components.rollout.render import build_overlay, release_env, release_of, render
    from components.storage import atomic_path

    release = release_of(_settings(args), args.version)
    render(build_overlay(Path(args.manifests), args.env), release)  # the same checks as render
    target = Path(args.manifests) / "overlays" / args.env / "release.env"
    with atomic_path(target) as tmp:
        tmp.write_text(release_env(args.env, release, args.mlflow_image_tag))
    print(f"wrote {target}: v{release.version}, serving image tag {release.image_tag}")
    return 0


# ---- churn rollout ------------------------------------------------------------------------------
def _driver(args: argparse.Namespace, *, need_analysis: bool):
    from components.rollout.driver import Driver, preflight_replay, prometheus_analysis
    from components.rollout.kube import InferenceServices, api_client

    settings = _settings(args)
    if settings.environment != args.env and settings.in_cluster:
        raise ConfigError(f"--env {args.env}: this pod's CHURN_ENV is {settings.environment!r}")
    url = getattr(args, "prometheus_url", None) or settings.prometheus_url
    if need_analysis and not url:
        raise ConfigError("--prometheus-url (or CHURN_PROMETHEUS_URL): required to judge the canary")

    def no_analysis(stable: str, canary: str, window_s: float):
        raise ConfigError("--prometheus-url (or CHURN_PROMETHEUS_URL): required to judge the canary")

    analysis = prometheus_analysis(url, namespace=args.namespace) if url else no_analysis
    api = api_client(env=args.env, timeout_s=settings.io_timeout_s, kubeconfig=settings.kubeconfig)
    isvc = InferenceServices(api, args.namespace, args.name)
    driver = Driver(settings, isvc, analysis, say=_print, on_verdict=lambda v: print(v.table()),
                    break_lock=getattr(args, "break_lock", False))  # fmt: skip
    if getattr(args, "payload_log", None):
        driver.preflight = preflight_replay(settings, args.payload_log)
    return driver


def _plan(args: argparse.Namespace) -> RolloutPlan:
    return RolloutPlan(
        steps=args.steps,
        bake_s=args.bake_minutes * 60,
        ready_timeout_s=args.ready_timeout_minutes * 60,
        hold_timeout_s=args.hold_timeout_minutes * 60,
    )


def _check_version(args: argparse.Namespace, state) -> None:
    if args.version is not None and state is not None and state.version != str(args.version):
        raise ConfigError(f"--version {args.version}: the rollout recorded is of v{state.version}")


def _report(state) -> int:
    print(f"v{state.version}: {state.phase}" + (f" ({state.reason})" if state.reason else ""))
    return 0


def _recorded_state(driver):
    from components.rollout.state import RolloutState

    return RolloutState.from_annotations(driver.isvc.require()["metadata"].get("annotations"))


def _cmd_start(args: argparse.Namespace) -> int:
    driver = _driver(args, need_analysis=True)
    return _report(driver.start(str(args.version), _plan(args)))


def _cmd_resume(args: argparse.Namespace) -> int:
    driver = _driver(args, need_analysis=True)
    _check_version(args, _recorded_state(driver))
    return _report(driver.resume())


def _cmd_promote(args: argparse.Namespace) -> int:
    driver = _driver(args, need_analysis=False)
    _check_version(args, _recorded_state(driver))
    return _report(driver.promote(args.reason))


def _cmd_rollback(args: argparse.Namespace) -> int:
    driver = _driver(args, need_analysis=False)
    _check_version(args, _recorded_state(driver))
    return _report(driver.rollback(args.reason))


def _cmd_analyze(args: argparse.Namespace) -> int:
    driver = _driver(args, need_analysis=True)
    _check_version(args, _recorded_state(driver))
    driver.analyze()  # printed by on_verdict, stored on the version
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    driver = _driver(args, need_analysis=False)
    status = driver.status()
    _check_version(args, _recorded_state(driver))
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True, default=str))
        return 0
    print(f"InferenceService {status['inferenceservice']}  mode {status['mode']}")
    print(f"storageUri      {status['storage_uri']}  image tag {status['runtime_version']}")
    share = status["canary_traffic_percent"]
    print(f"canary share    {'-' if share is None else f'{share} %'}")
    for target in status["traffic"] or []:
        print(
            f"traffic         {target.get('percent')} % -> {target.get('revisionName')} "
            f"({target.get('tag', '-')})"
        )
    rollout = status["rollout"]
    if rollout is None:
        print("rollout         none recorded")
        return 0
    plan = RolloutPlan.from_text(rollout["plan"])
    print(f"rollout         v{rollout['version']} replacing v{rollout['stable_version'] or '-'}: "
          f"{rollout['phase']}, step {rollout['step']} of {format_steps(plan.steps)}, "
          f"by {rollout['driver']}")  # fmt: skip
    if rollout["reason"]:
        print(f"reason          {rollout['reason']}")
    print(f"champion        v{status.get('champion') or '-'}")
    if status.get("rejected"):
        print(f"rejected        {status['rejected']}")
    if status.get("verdict"):
        from components.rollout.verdict import Verdict

        verdict = {k: v for k, v in status["verdict"].items() if k != "step"}
        print(f"last verdict (step {status['verdict'].get('step')}):")
        print(Verdict.from_dict(verdict).table())
    return 0


def _steps(text: str) -> tuple[int, ...]:
    try:
        steps = parse_steps(text)
        RolloutPlan(steps=steps)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return steps


def _common(parser: argparse.ArgumentParser, *, version_required: bool) -> None:
    parser.add_argument("--env", required=True, choices=("dev", "staging", "prod"), help="the environment")
    parser.add_argument("--version", required=version_required, type=int,
                        help="registry version" + ("" if version_required else
                                                  " (checked against the recorded one)"))  # fmt: skip
    parser.add_argument("--model", help="registered model (default: $CHURN_REGISTERED_MODEL)")


def add_rollout_parsers(subparsers) -> None:
    """``churn deploy ...`` and ``churn rollout ...``."""
    deploy = subparsers.add_parser("deploy", help="manifests for a registry version").add_subparsers(
        dest="deploy_command", required=True
    )
    for name, func, help_text in [
        ("render", _cmd_render, "print the environment's final manifests for a registry version"),
        ("release-env", _cmd_release_env, "write overlays/ENV/release.env from the registry"),
    ]:
        cmd = deploy.add_parser(name, help=help_text)
        _common(cmd, version_required=True)
        cmd.add_argument(
            "--manifests", default="manifests", help="the manifests folder (default: %(default)s)"
        )
        if name == "render":
            cmd.add_argument("--canary", type=int, help="canaryTrafficPercent 1-99 (default: all traffic)")
        else:
            cmd.add_argument("--mlflow-image-tag", required=True, help="the MLflow server image tag")
        cmd.set_defaults(func=func)

    rollout = subparsers.add_parser("rollout", help="canary rollout of a registry version on KServe")
    commands = rollout.add_subparsers(dest="rollout_command", required=True)
    for name, func, help_text in [
        ("start", _cmd_start, "roll a version out step by step, judging each step from Prometheus"),
        ("resume", _cmd_resume, "continue the rollout recorded on the InferenceService"),
        ("status", _cmd_status, "what the InferenceService and the registry say about the rollout"),
        ("analyze", _cmd_analyze, "judge the canary now (printed and stored on the version; no change)"),
        ("promote", _cmd_promote, "all traffic to the canary and alias champion to it, now"),
        ("rollback", _cmd_rollback, "all traffic back to the stable version; the canary is tagged rejected"),
    ]:
        cmd = commands.add_parser(name, help=help_text)
        _common(cmd, version_required=name == "start")
        cmd.add_argument(
            "--namespace", default=NAMESPACE, help="the InferenceService's namespace (default: %(default)s)"
        )
        cmd.add_argument("--name", default=NAME, help="the InferenceService (default: %(default)s)")
        if name in ("start", "resume", "analyze"):
            cmd.add_argument(
                "--prometheus-url", help="Prometheus for the analysis (default: $CHURN_PROMETHEUS_URL)"
            )
        if name == "start":
            cmd.add_argument(
                "--steps",
                type=_steps,
                default=DEFAULT_STEPS,
                help=f"traffic shares, the last 100 (default: {format_steps(DEFAULT_STEPS)})",
            )
            cmd.add_argument(
                "--bake-minutes",
                type=float,
                default=DEFAULT_BAKE_S / 60,
                help="time at each share before it is judged",
            )
            cmd.add_argument(
                "--ready-timeout-minutes",
                type=float,
                default=DEFAULT_READY_TIMEOUT_S / 60,
                help="a revision not Ready by then is rolled back",
            )
            cmd.add_argument("--hold-timeout-minutes", type=float, default=DEFAULT_HOLD_TIMEOUT_S / 60,
                             help="too little traffic for this long after the bake: rolled back")  # fmt: skip
        if name in ("promote", "rollback"):
            cmd.add_argument("--reason", required=True, help="goes into the audit trail")
        if name != "status":
            cmd.add_argument("--break-lock", action="store_true",
                             help="break a rollout lock whose holder is gone silent")  # fmt: skip
        else:
            cmd.add_argument("--json", action="store_true")
        cmd.set_defaults(func=func)
    add_preflight_parser(commands)
