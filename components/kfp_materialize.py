"""The KFP ``materialize`` component and its one-task pipeline: keep the online store fresh.

The body calls :func:`components.feature_store.materialize_window` (the step); the pipeline is
what a recurring run schedules (docs/feature-store.md: daily, a window of ``lookback_days``).
"""

from kfp import dsl

from components.kfp_components import component


@component
def materialize_op(lookback_days: int, start: str, end: str) -> str:
    """Materialize ``[start or now - lookback_days, end or now]`` into the online store."""
    import logging
    from datetime import datetime, timedelta, timezone

    from components.config import load_settings
    from components.feature_store import materialize_window

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    begin = start or (datetime.now(timezone.utc) - timedelta(days=lookback_days)).isoformat()
    summary = materialize_window(load_settings(), begin, end or None)
    print(summary)
    return summary


@dsl.pipeline(name="churn-feature-materialize", description="load recent feature rows into the online store")
def materialize_pipeline(lookback_days: int = 2, start: str = "", end: str = "") -> str:
    """One task; schedule it (daily) so the online store never serves features past their ttl."""
    return materialize_op(lookback_days=lookback_days, start=start, end=end).output
