"""benchmarks/serving.py's in-process parts run against the server code of this tree.

The in-process floor and the one-request profile call the serving package directly (its model,
validator, lean route and kserve's app); a change of their signatures must fail here, not at the
end of a ten-minute benchmark run. Short settings: this checks that they run and what they report,
not how fast.
"""

from __future__ import annotations

import pandas as pd
import pytest

from components.schema import FEATURES


def rows(trained_run, n: int) -> list[dict]:
    frame = pd.read_parquet(trained_run.artifacts.test)[[f.name for f in FEATURES]]
    return frame.head(n).to_dict("records")


def test_the_in_process_floor_scores_one_row_and_a_batch(trained_run):
    from benchmarks.serving import in_process_floor

    many = rows(trained_run, 50)
    floor = in_process_floor(trained_run.artifacts.bundle, many[:1], many, seconds=0.2)
    assert floor["rps1"] > 0 and floor["rows_s"] > 0 and floor["cpu1_us"] > 0
    assert floor["p50"] <= floor["p99"]


def test_the_one_request_profile_times_every_stage(trained_run):
    from benchmarks.serving import profile_one_request

    stages = profile_one_request(trained_run.artifacts.bundle, rows(trained_run, 1), n=20)
    names = [name for name, _ in stages]
    assert any("Validator.v2_body" in name for name in names)
    assert any("kserve's generic route" in name for name in names)
    assert all(us > 0 for name, us in stages if "event-loop" not in name), stages


def test_a_partial_set_of_run_files_is_refused_by_name(monkeypatch, capsys, tmp_path):
    """--bundle alone used to start the servers and fail minutes later on the missing rows."""
    from benchmarks import serving

    monkeypatch.setattr("sys.argv", ["serving.py", "--bundle", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_:
        serving.main()
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("--rows, --sklearn missing")
    monkeypatch.setattr(
        "sys.argv", ["serving.py", "--bundle", str(tmp_path), "--rows", "nope", "--sklearn", "nope"]
    )
    with pytest.raises(SystemExit):
        serving.main()
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("--rows nope: no such file or directory")


def test_the_idle_gap_benchmark_times_every_kind_of_gap(trained_run):
    from benchmarks.serving_idle import measure

    blocks = measure(trained_run.artifacts.bundle, rows(trained_run, 1)[0], rounds=2, requests=5)
    gaps = [f"after a {gap} ms {kind}" for gap in ("0.2", "1") for kind in ("sleep", "spin")]
    assert set(blocks) == {"back to back", *gaps}
    assert all(len(v) == 2 and min(v) > 0 for v in blocks.values()), blocks
