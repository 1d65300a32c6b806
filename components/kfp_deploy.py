"""The pipeline's ``deploy`` step as a thin KFP v2 component (logic: :mod:`components.rollout.deploy`).

Its own module, like the scoring components: the body imports inside itself because KFP ships the
function's source alone; it runs in the components image (``install_kfp_package=False``) or in
the current interpreter under ``kfp.local``.
"""

from kfp import dsl
from kfp.dsl import Artifact, Input, Output

from components.config import load_settings
from components.rollout.plan import (
    DEFAULT_BAKE_S,
    DEFAULT_HOLD_TIMEOUT_S,
    DEFAULT_READY_TIMEOUT_S,
    DEFAULT_STEPS,
)

IMAGE = load_settings().components_image
component = dsl.component(base_image=IMAGE, install_kfp_package=False)

CANARY_STEPS = ",".join(str(s) for s in DEFAULT_STEPS)
BAKE_MINUTES = DEFAULT_BAKE_S / 60
# Worst case of the default plan: every step waits for Ready and bakes, the last canary holds as
# long as it may, plus slack for the patches and queries; past it the canary is rolled back.
TIMEOUT_MINUTES = (
    len(DEFAULT_STEPS) * (DEFAULT_READY_TIMEOUT_S + DEFAULT_BAKE_S) + DEFAULT_HOLD_TIMEOUT_S
) / 60 + 10


@component
def deploy_op(
    registration: Input[Artifact],
    canary_steps: str,
    bake_minutes: float,
    timeout_minutes: float,
    deployment: Output[Artifact],
) -> str:
    """Roll the registered version out as a KServe canary (cluster); under kfp.local, report."""
    import json
    import logging

    from components.config import load_settings
    from components.rollout.deploy import deploy_registered
    from components.rollout.plan import RolloutPlan, parse_steps
    from components.storage import atomic_path

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    plan = RolloutPlan(steps=parse_steps(canary_steps), bake_s=bake_minutes * 60)
    summary = deploy_registered(registration.path, load_settings(), plan, timeout_s=timeout_minutes * 60)
    with atomic_path(deployment.path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    deployment.metadata.update({k: summary[k] for k in ("version", "action") if k in summary})
    return summary["message"]
