"""What an idle wait between requests costs the next one: the lean route in process, with and without.

    python benchmarks/serving_idle.py [--bundle DIR --rows PARQUET] [--rounds 8] [--requests 300]

With one client, a server waits idle between requests (the client reads the answer and sends the
next one). On these VMs a one-row request then costs up to twice its back-to-back time, and the
server's CPU per request (what ``benchmarks/serving.py`` reads from /proc) counts that. This runs
the route the server runs for it (``LeanInfer.answer`` + ``finish`` on a loaded model, no socket)
``--requests`` times per block, each request after a gap of one kind: none (back to back), a
sleep (the thread blocks, the core may go idle), or a spin of the same length (the thread stays on
the core). The kinds are interleaved within each round, the median request time per block is kept,
and the medians over the rounds and their ratio to back to back are printed with the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.serving import train_benchmark_model  # noqa: E402
from components.config import load_settings  # noqa: E402
from components.schema import FEATURES  # noqa: E402
from serving.examples import v2_request  # noqa: E402

GAPS_S = (0.0002, 0.001)  # a loopback round trip of a Python client is ~0.2-0.5 ms here


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def measure(bundle_dir: Path, row: dict, rounds: int, requests: int) -> dict[str, list[float]]:
    """Median µs of one request per block, by gap kind, ``rounds`` blocks each (interleaved)."""
    from kserve.model_server import app

    from serving.fast_route import LeanInfer
    from serving.model import ChurnModel

    model = ChurnModel("churn", str(bundle_dir), load_settings())
    if not model.load():
        raise SystemExit(f"no model loaded from {bundle_dir} (the log line above says why)")
    raw = orjson.dumps(v2_request(FEATURES, [row]))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    route = LeanInfer(app, model)
    kinds = {"back to back": lambda: None}
    for gap in GAPS_S:
        kinds[f"after a {gap * 1e3:g} ms sleep"] = lambda gap=gap: time.sleep(gap)
        kinds[f"after a {gap * 1e3:g} ms spin"] = lambda gap=gap: spin(gap)
    for _ in range(500):  # warm-up
        route.finish(route.answer(headers, raw))
    out: dict[str, list[float]] = {kind: [] for kind in kinds}
    for r in range(rounds):
        order = list(kinds)[r % len(kinds) :] + list(kinds)[: r % len(kinds)]
        for kind in order:
            wait, samples = kinds[kind], []
            for _ in range(requests):
                wait()
                start = time.perf_counter()
                route.finish(route.answer(headers, raw))
                samples.append(time.perf_counter() - start)
            out[kind].append(statistics.median(samples) * 1e6)
        print(f"round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", type=Path, help="bundle dir (model.onnx + metadata.json)")
    parser.add_argument("--rows", type=Path, help="Parquet of held-out rows (raw feature columns)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--requests", type=int, default=300, help="requests per block")
    args = parser.parse_args()
    if (args.bundle is None) != (args.rows is None):
        parser.error("--bundle and --rows go together (one trained run)")
    if args.bundle is None:
        made = train_benchmark_model(Path(tempfile.mkdtemp(prefix="bench-serving-idle-")))
        args.bundle, args.rows = made.bundle, made.test
    row = pd.read_parquet(args.rows)[[f.name for f in FEATURES]].head(1).to_dict("records")[0]
    before = os.getloadavg()
    blocks = measure(args.bundle, row, args.rounds, args.requests)
    after = os.getloadavg()
    base = blocks["back to back"]
    print(f"one-row lean route in process, {args.rounds} rounds of {args.requests} requests per kind")
    print(f"{'gap before each request':28s} {'median µs':>10s} {'ratio to back to back':>22s}")
    for kind, values in blocks.items():
        ratio = statistics.median(v / b for v, b in zip(values, base, strict=True))
        print(f"{kind:28s} {statistics.median(values):10.0f} {ratio:21.2f}x")
    print(f"load average before {before[0]:.2f} {before[1]:.2f} {before[2]:.2f}, "
          f"after {after[0]:.2f} {after[1]:.2f} {after[2]:.2f} on {os.cpu_count()} cores")  # fmt: skip


if __name__ == "__main__":
    main()
