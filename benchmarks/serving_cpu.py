"""Server CPU per request, latency and throughput of ``python -m serving`` builds, side by side.

    python benchmarks/serving_cpu.py [--bundle DIR --rows PARQUET] [--seconds 4]
        [--server NAME=REPO_DIR[:EXTRA ARGS]] ...

Each ``--server`` is a checkout run with its own ``.venv`` (e.g. ``main=/work/main``, today's main;
default: this checkout, lean and generic routes). Every server gets the same bundle and rows on
loopback. All are started, then measured in turns, ``--rounds`` times in a rotated order (on a
shared machine the load drifts; each ratio is taken within one round, and the median of the
rounds is printed). Per phase (1 client, 8 clients, 1,000-row requests): p50, req/s (rows/s),
the server's CPU per request (``benchmarks/proc_stats.py``: utime+stime of its session over
the phase ÷ requests, every thread counted) and its RSS before and after the 8-client phase;
then a concurrency sweep of the first server and the load average before and after. The phases
and clients are ``benchmarks/serving.py``'s (one keep-alive ``http.client`` connection per client).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import proc_stats  # noqa: E402
from benchmarks.serving import Client, concurrent, pct, sequential, train_benchmark_model  # noqa: E402
from components.schema import FEATURES  # noqa: E402
from serving.examples import v2_request  # noqa: E402
from tests.support.server_process import ServerProcess, free_port, http_ok  # noqa: E402

PATH = "/v2/models/churn/infer"


def start(name: str, repo: Path, extra: list[str], bundle: Path, work: Path) -> tuple[ServerProcess, int]:
    port = free_port()
    server = ServerProcess(name, work / f"{name}.log")
    command = [str(repo / ".venv" / "bin" / "python"), "-m", "serving", "--model_name", "churn",
               "--model_dir", str(bundle), "--http_port", str(port), "--grpc_port", str(free_port()),
               *extra]  # fmt: skip
    ready = f"http://127.0.0.1:{port}/v2/models/churn/ready"
    server.launch(command, lambda: http_ok(ready), timeout=90, what="ready", grace_s=15, cwd=repo)
    return server, port


def rss_mib(session: int) -> float:
    return proc_stats.rss_bytes(session) / 2**20


def phase(session: int, run) -> tuple[object, float]:
    """``run()``'s result and the CPU seconds the server's session used meanwhile."""
    before = proc_stats.cpu_seconds(session)
    result = run()
    return result, proc_stats.cpu_seconds(session) - before


def measure(pid: int, port: int, one: bytes, many: bytes, seconds: float) -> dict:
    client = Client(port, PATH, one, {})
    for _ in range(200):
        client.call()
    single, cpu1 = phase(pid, lambda: sequential(client, seconds).latencies)
    rss_before = rss_mib(pid)
    eight, cpu8 = phase(pid, lambda: concurrent(lambda: Client(port, PATH, one, {}), 8, seconds))
    conc, rps8 = eight.latencies, len(eight.latencies) / eight.elapsed
    rss_after = rss_mib(pid)
    big = Client(port, PATH, many, {})

    def batches() -> list[float]:
        times, deadline = [], time.perf_counter() + seconds
        while time.perf_counter() < deadline or len(times) < 5:
            started = time.perf_counter()
            big.call()
            times.append(time.perf_counter() - started)
        return times

    times, cpu_big = phase(pid, batches)
    return {
        "p50_ms": pct(single, 50), "p99_ms": pct(single, 99), "rps1": len(single) / sum(single),
        "cpu_us_1": cpu1 / len(single) * 1e6,
        "p50_8_ms": pct(conc, 50), "rps8": rps8, "cpu_us_8": cpu8 / len(conc) * 1e6,
        "rows_s": 1000 * len(times) / sum(times), "cpu_us_1000row": cpu_big / len(times) * 1e6,
        "rss_mib_8_before": rss_before, "rss_mib_8_after": rss_after,
    }  # fmt: skip


def sweep(pid: int, port: int, one: bytes, seconds: float, clients: list[int]) -> list[dict]:
    """req/s, p50/p99 and CPU per request with 1, 2, 4, ... concurrent one-row clients (Knative's
    concurrency: requests in flight per pod)."""
    out = []
    for n in clients:
        done, cpu = phase(pid, lambda n=n: concurrent(lambda: Client(port, PATH, one, {}), n, seconds))
        latencies, rps = done.latencies, len(done.latencies) / done.elapsed
        out.append({"clients": n, "rps": rps, "p50_ms": pct(latencies, 50), "p99_ms": pct(latencies, 99),
                    "cpu_us": cpu / len(latencies) * 1e6})  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--rows", type=Path)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--server", action="append", default=[], help="NAME=REPO_DIR[:EXTRA ARGS]")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds; every server is measured once per round"
    )
    parser.add_argument("--baseline", help="server the ratios are against (default: the last --server)")
    parser.add_argument(
        "--sweep", default="1,2,3,4,6,8,16", help="client counts of the concurrency sweep (first server only)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-serving-cpu-"))
    if args.bundle is None:
        made = train_benchmark_model(work)
        args.bundle, args.rows = made.bundle, made.test
    frame = pd.read_parquet(args.rows)[[f.name for f in FEATURES]]
    rows = pd.concat([frame] * (1000 // len(frame) + 1)).head(1000).to_dict("records")
    one, many = orjson.dumps(v2_request(FEATURES, rows[:1])), orjson.dumps(v2_request(FEATURES, rows))
    specs = args.server or [f"lean={ROOT}", f"generic={ROOT}:--no-lean_infer_route"]
    load_before, started, sweeps = os.getloadavg(), {}, {}
    rounds: list[dict[str, dict]] = []
    try:
        for spec in specs:  # all up at once (idle between their phases), measured in turns
            name, _, rest = spec.partition("=")
            repo, _, extra = rest.partition(":")
            started[name] = start(name, Path(repo), shlex.split(extra), args.bundle, work)
        for r in range(args.rounds):
            # Each round measures every server once, in an order rotated by one each round, so a
            # change in the machine's load hits every server alike; ratios are taken within a round.
            order = list(started)[r % len(started) :] + list(started)[: r % len(started)]
            rounds.append({})
            for name in order:
                server, port = started[name]
                print(f"round {r + 1}: measuring {name} ...", file=sys.stderr, flush=True)
                # ServerProcess starts each server as a session leader: its pid is the session id
                rounds[-1][name] = measure(server.process.pid, port, one, many, args.seconds)
                print(json.dumps({name: rounds[-1][name]}), file=sys.stderr, flush=True)
        first = next(iter(started))
        if args.sweep:
            server, port = started[first]
            sweeps[first] = sweep(
                server.process.pid, port, one, args.seconds, [int(c) for c in args.sweep.split(",")]
            )
    finally:
        for server, _ in started.values():
            server.stop()
    load_after = os.getloadavg()
    baseline = specs[-1].partition("=")[0] if args.baseline is None else args.baseline
    report(rounds, sweeps, baseline, load_before, load_after, args)


COLUMNS = [("p50_ms", "1-row p50 ms", ".3f"), ("rps1", "req/s 1 client", ",.0f"),
           ("cpu_us_1", "CPU µs/req (1)", ".0f"), ("rps8", "req/s 8 clients", ",.0f"),
           ("cpu_us_8", "CPU µs/req (8)", ".0f"), ("rows_s", "rows/s 1000-row", ",.0f"),
           ("rss_mib_8_before", "RSS MiB before 8", ".1f"),
           ("rss_mib_8_after", "RSS MiB after 8", ".1f")]  # fmt: skip


def report(rounds: list[dict], sweeps: dict, baseline: str, load_before, load_after, args) -> None:
    """Medians over rounds, the median per-round ratio against ``baseline``, the sweep, the load."""
    names = list(rounds[0])
    median = {n: {k: statistics.median(r[n][k] for r in rounds) for k, _, _ in COLUMNS} for n in names}
    print(f"medians of {len(rounds)} rounds ({args.seconds:g} s per phase):")
    print("| server | " + " | ".join(c[1] for c in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for name in names:
        print(f"| {name} | " + " | ".join(format(median[name][k], f) for k, _, f in COLUMNS) + " |")
    print(f"\nratio to {baseline} (median of the per-round ratios):")
    keys = COLUMNS[:6]
    print("| server | " + " | ".join(c[1] for c in keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for name in names:
        if name != baseline:
            cells = [statistics.median(r[name][k] / r[baseline][k] for r in rounds) for k, _, _ in keys]
            print(f"| {name} | " + " | ".join(f"{c:.2f}x" for c in cells) + " |")
    for name, rows in sweeps.items():
        print(f"\nconcurrency sweep, {name} (one-row requests):")
        print("| clients | req/s | p50 ms | p99 ms | CPU µs/req |\n|---|---|---|---|---|")
        for r in rows:
            cells = (f"{r['rps']:,.0f}", f"{r['p50_ms']:.3f}", f"{r['p99_ms']:.3f}", f"{r['cpu_us']:.0f}")
            print(f"| {r['clients']} | " + " | ".join(cells) + " |")
    print(f"\nload average before {load_before}, after {load_after}")
    if args.json_out:
        out = {"rounds": rounds, "sweeps": sweeps, "load": [load_before, load_after]}
        args.json_out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
