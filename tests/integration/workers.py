"""Entry points run in child processes by the concurrency test (importable for ``spawn``)."""

from __future__ import annotations

import traceback


def register_in_child(env: dict, run, run_id: str, barrier, results) -> None:
    """Register the built ``run`` with promotion; wait at ``barrier`` once the version exists.

    The barrier makes both runs finish their gate and registration before either moves an
    alias, so the race on ``champion`` is certain, not a matter of timing luck.
    """
    try:
        from components.config import load_settings
        from tests.support.bundles import register_run

        def progress(line: str) -> None:
            if "publishing bundle" in line:
                barrier.wait(timeout=120)

        summary = register_run(run, load_settings(env), run_id=run_id, progress=progress)
        results.put((run_id, "ok", summary))
    except BaseException:
        results.put((run_id, "error", traceback.format_exc()))


def register_and_die(env: dict, run, marker: str) -> None:
    """Register ``run`` and SIGKILL this process at the first progress line containing ``marker``.

    A ``kill -9`` at that point of the registration: no ``finally``, no undo, nothing flushed.
    """
    import os
    import signal

    from components.config import load_settings
    from tests.support.bundles import register_run

    def progress(line: str) -> None:
        if marker in line:
            os.kill(os.getpid(), signal.SIGKILL)

    register_run(run, load_settings(env), progress=progress)
    raise SystemExit(f"never reached {marker!r}")
