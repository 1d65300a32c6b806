"""Serving benchmark: this predictor vs Triton-ORT, MLServer (scikit-learn runtime), FastAPI + pandas.

One run, loopback, the same model and rows for every server, ``--rounds`` times (2). Prints p50/p99
latency and req/s for single-row requests (1 and 8 concurrent clients), rows/s for 1,000-row
requests, each server's CPU time per single-row request (``benchmarks/proc_stats.py``), 8-client
errors and RSS, the in-process ONNX Runtime floor, the ratios against the issues' targets (issue 15:
against Triton with the ONNX Runtime backend, ``benchmarks/triton_ort.py``), a head-to-head of this
server and Triton-ORT in ``--pairs`` interleaved pairs (``benchmarks/paired.py``: the goals judged on
the median of the pairs' ratios), and a per-stage profile of one request. Id-only scoring: the
feature transformer (churn_transformer, Feast on a real Redis) in front of this server, 1 and 100
customer ids per request, against the same rows sent in full to the predictor
(``--feature-store-only`` measures just that).

    python benchmarks/serving.py [--bundle DIR --rows PARQUET --sklearn JOBLIB] [--seconds 5] [--rounds 2]
                                 [--pairs 8] [--pair-seconds 1.5]

Without ``--bundle`` it trains the real model first (``components.steps.run_steps``: XGBoost on
4,000 synthetic rows, seed 7, search budget 2, registered in a throwaway ``CHURN_HOME``; ~15 s).
"this server" is ``python -m serving`` with its lean v2 route; "kserve generic route" is the same
server with ``--no-lean_infer_route`` (the path before the lean route). MLServer runs from
``.venv-mlserver`` and Triton from ``.venv-triton`` (created on first use: their pins clash with the
project's); Triton-ORT is skipped, with one line saying why, where its backend is not built here.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
from fastapi import FastAPI, Request

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import paired, proc_stats  # noqa: E402
from benchmarks.triton_ort import TritonUnavailable, start_triton  # noqa: E402
from components.bundle import MODEL_FILE  # noqa: E402
from components.config import load_settings  # noqa: E402
from components.schema import FEATURES  # noqa: E402
from serving.bundle import open_bundle  # noqa: E402
from serving.examples import v2_binary_request, v2_request  # noqa: E402
from serving.validation import Column, Validator  # noqa: E402
from tests.support.model_server import start_model_server  # noqa: E402
from tests.support.server_process import ServerProcess, free_port, http_ok  # noqa: E402

MLSERVER_VENV = ROOT / ".venv-mlserver"
OURS, OURS_BINARY, GENERIC = "this server (v2 JSON)", "this server (v2 binary)", "kserve generic route"
MLSERVER, FASTAPI, FLOOR = "MLServer 1.7.1 sklearn", "FastAPI+pandas+sklearn", "in-process ORT run (floor)"
TRITON = "Triton 2.51 + ORT backend"
PARITY_TOLERANCE = 1e-5  # |probability| difference allowed between Triton and this server, same rows
MLSERVER_PINS = ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop==0.21.0"]


# --------------------------------------------------------------------------------------- load
class Client:
    """One keep-alive HTTP/1.1 connection posting a pre-encoded body (client cost kept minimal)."""

    def __init__(self, port: int, path: str, body: bytes, headers: dict[str, str]):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.path, self.body, self.headers = path, body, {"Content-Type": "application/json", **headers}

    def send(self) -> tuple[int, bytes]:
        """Status and body of one request."""
        self.conn.request("POST", self.path, self.body, self.headers)
        response = self.conn.getresponse()
        return response.status, response.read()

    def call(self) -> bytes:
        """The body of one request; anything but 200 raises."""
        status, data = self.send()
        if status != 200:
            raise RuntimeError(f"{status}: {data[:300]!r}")
        return data


def no_cpu() -> float:
    return 0.0


@dataclass
class Phase:
    """One timed phase: latencies of the 200 answers, wall time, the server's CPU seconds, failures."""

    latencies: list[float]
    elapsed: float
    server_cpu: float
    errors: int = 0
    first_error: str = ""

    def cpu_per_request_us(self) -> float:
        return self.server_cpu / max(len(self.latencies) + self.errors, 1) * 1e6


def sequential(client: Client, seconds: float, cpu: Callable[[], float] = no_cpu) -> Phase:
    """One client, one request at a time; ``cpu()`` (the server's CPU seconds) read around the timed part."""
    for _ in range(50):  # warm-up
        client.call()
    latencies = []
    cpu_start, started = cpu(), time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        client.call()
        latencies.append(time.perf_counter() - start)
    elapsed = time.perf_counter() - started
    return Phase(latencies, elapsed, cpu() - cpu_start)


def concurrent(
    make_client: Callable[[], Client], clients: int, seconds: float, cpu: Callable[[], float] = no_cpu
) -> Phase:
    """``clients`` threads, each on its own connection; non-200 answers and broken connections counted."""
    results: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    first_error: list[str] = []
    barrier = threading.Barrier(clients + 1)

    def one(i: int, client: Client) -> tuple[Client, bool]:
        try:
            status, data = client.send()
        except (OSError, http.client.HTTPException) as exc:
            errors[i] += 1
            first_error.append(repr(exc))
            return make_client(), False
        if status != 200:
            errors[i] += 1
            first_error.append(f"{status}: {data[:300]!r}")
        return client, status == 200

    def worker(i: int) -> None:
        client = make_client()
        for _ in range(20):  # warm-up (not counted)
            client, _ok = one(i, client)
        errors[i] = 0
        barrier.wait()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            client, ok = one(i, client)
            if ok:
                results[i].append(time.perf_counter() - start)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    cpu_start, started = cpu(), time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    latencies = [x for r in results for x in r]
    return Phase(latencies, elapsed, cpu() - cpu_start, sum(errors), first_error[0] if first_error else "")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


# ------------------------------------------------------------------------------------ servers
Encoder = Callable[[list[dict]], tuple[bytes, dict]]


class Target:
    """How to send one batch of rows to one kind of server (``encode`` gives body and extra headers).

    ``session`` is the server's session id (its launcher's pid): CPU time and RSS are summed over
    every process of that session.
    """

    def __init__(self, name: str, port: int, path: str, encode: Encoder, session: int):
        self.name, self.port, self.path, self.encode, self.session = name, port, path, encode, session

    def cpu(self) -> float:
        return proc_stats.cpu_seconds(self.session)

    def client(self, rows: list[dict]) -> Client:
        body, headers = self.encode(rows)
        return Client(self.port, self.path, body, headers)


def json_body(make: Callable[[list[dict]], dict]) -> Callable[[list[dict]], tuple[bytes, dict]]:
    return lambda rows: (orjson.dumps(make(rows)), {})


def mlserver_body(rows: list[dict]) -> dict:
    body = v2_request(FEATURES, rows)
    body["parameters"] = {"content_type": "pd"}
    body["outputs"] = [{"name": "predict_proba"}]
    return body


def ensure_mlserver_venv() -> Path:
    """``.venv-mlserver`` with MLServer and the model's own libraries at the project's versions."""
    import sklearn
    import xgboost

    binary, python = MLSERVER_VENV / "bin" / "mlserver", MLSERVER_VENV / "bin" / "python"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(MLSERVER_VENV)], check=True)
    wanted = f"{sklearn.__version__} {xgboost.__version__}"
    probe = "import sklearn, xgboost; print(sklearn.__version__, xgboost.__version__)"
    found = subprocess.run([str(python), "-c", probe], capture_output=True, text=True).stdout.strip()
    if not binary.exists() or found != wanted:
        pins = [*MLSERVER_PINS, f"scikit-learn=={sklearn.__version__}", f"xgboost=={xgboost.__version__}"]
        subprocess.run([str(MLSERVER_VENV / "bin" / "pip"), "install", "-q", *pins], check=True)
    return binary


def start_mlserver(sklearn_path: Path, work: Path) -> tuple[ServerProcess, int]:
    binary = ensure_mlserver_venv()
    model_dir = work / "mlserver" / "churn"
    model_dir.mkdir(parents=True)
    (model_dir / "model.joblib").write_bytes(Path(sklearn_path).read_bytes())
    (model_dir / "model-settings.json").write_text(
        json.dumps({"name": "churn", "implementation": "mlserver_sklearn.SKLearnModel",
                    "parameters": {"uri": "./model.joblib"}})
    )  # fmt: skip
    port = free_port()
    (work / "mlserver" / "settings.json").write_text(
        json.dumps({"host": "127.0.0.1", "http_port": port, "grpc_port": free_port(),
                    "metrics_port": free_port(), "debug": False})
    )  # fmt: skip
    server = ServerProcess("MLServer", work / "mlserver.log")
    ready = f"http://127.0.0.1:{port}/v2/models/churn/ready"
    server.launch(
        [str(binary), "start", str(work / "mlserver")], lambda: http_ok(ready), timeout=90, cwd=ROOT
    )
    return server, port


def fastapi_app():
    """Baseline: FastAPI + pandas + the pickled scikit-learn pipeline (records in, probabilities out)."""
    import joblib

    model = joblib.load(os.environ["CHURN_SKLEARN_MODEL"])
    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request) -> dict:
        frame = pd.DataFrame((await request.json())["instances"])
        return {"churn_probability": model.predict_proba(frame)[:, 1].tolist()}

    return app


def start_fastapi(sklearn_path: Path, work: Path) -> tuple[ServerProcess, int]:
    port, server = free_port(), ServerProcess("FastAPI baseline", work / "fastapi.log")
    server.launch(
        [sys.executable, "-m", "uvicorn", "benchmarks.serving:fastapi_app", "--factory", "--host",
         "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"],
        lambda: http_ok(f"http://127.0.0.1:{port}/docs"), timeout=90, cwd=ROOT,
        env={"CHURN_SKLEARN_MODEL": str(sklearn_path), "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    return server, port


# ------------------------------------------------------------------------------------ measure
def in_process_floor(bundle_dir: Path, one: list[dict], many: list[dict], seconds: float) -> dict:
    """The server's own scoring call (``Bundle.score``) on validated batches, without a request."""
    bundle = open_bundle(bundle_dir)
    validator = Validator(bundle.features, len(many))

    def feeds(rows):
        return validator.columns({f.name: Column([r[f.name] for r in rows], f.v2_datatype) for f in FEATURES})

    single, batch = feeds(one), feeds(many)
    for _ in range(200):
        bundle.score(single)
    latencies, deadline, cpu_start = [], time.perf_counter() + seconds, time.process_time()
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        bundle.score(single)
        latencies.append(time.perf_counter() - start)
    cpu = time.process_time() - cpu_start
    batch_times = []
    for _ in range(30):
        start = time.perf_counter()
        bundle.score(batch)
        batch_times.append(time.perf_counter() - start)
    return {
        "p50": pct(latencies, 50), "p99": pct(latencies, 99), "rps1": len(latencies) / sum(latencies),
        "cpu1_us": cpu / len(latencies) * 1e6, "rows_s": len(many) / statistics.median(batch_times),
    }  # fmt: skip


def measure(target: Target, one: list[dict], many: list[dict], seconds: float) -> dict:
    """1-row latency and req/s (1 and 8 clients), 1,000-row rows/s, server CPU per request, RSS."""
    single = sequential(target.client(one), seconds, target.cpu)
    rss_before = proc_stats.rss_bytes(target.session)
    conc = concurrent(lambda: target.client(one), 8, seconds, target.cpu)
    rss_after = proc_stats.rss_bytes(target.session)
    if conc.errors:
        print(f"{target.name}: {conc.errors} failed requests with 8 clients, first: {conc.first_error}",
              file=sys.stderr, flush=True)  # fmt: skip
    big = target.client(many)
    for _ in range(3):
        big.call()
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 5:
        start = time.perf_counter()
        big.call()
        times.append(time.perf_counter() - start)
    return {
        "p50": pct(single.latencies, 50), "p99": pct(single.latencies, 99),
        "rps1": len(single.latencies) / sum(single.latencies),
        "p50_8": pct(conc.latencies, 50), "p99_8": pct(conc.latencies, 99),
        "rps8": len(conc.latencies) / conc.elapsed, "errors8": conc.errors,
        "cpu1_us": single.cpu_per_request_us(), "cpu8_us": conc.cpu_per_request_us(),
        "rss_before_mb": rss_before / 2**20, "rss_after_mb": rss_after / 2**20,
        "rows_s": len(many) / statistics.median(times),
    }  # fmt: skip


def same_model(ours_port: int, triton_port: int, rows: list[dict]) -> float:
    """Largest |churn probability difference| between this server and Triton on ``rows`` (<= 1e-5 or raise).

    The same body goes to both: our ``churn_probability`` against column 1 of Triton's
    ``probabilities`` (the graph's own output), so a mismatch means they do not run the same model.
    """
    body = orjson.dumps(v2_request(FEATURES, rows))
    path = "/v2/models/churn/infer"

    def output(port: int, name: str) -> np.ndarray:
        answer = orjson.loads(Client(port, path, body, {}).call())
        return np.asarray(next(o["data"] for o in answer["outputs"] if o["name"] == name), dtype=np.float64)

    ours = output(ours_port, "churn_probability")
    theirs = output(triton_port, "probabilities").reshape(-1, 2)[:, 1]
    if ours.shape != theirs.shape:
        raise RuntimeError(f"Triton answered {theirs.shape[0]} probabilities for {ours.shape[0]} rows")
    diff = float(np.max(np.abs(ours - theirs)))
    if diff > PARITY_TOLERANCE:
        worst = int(np.argmax(np.abs(ours - theirs)))
        raise RuntimeError(
            f"Triton and this server disagree on row {worst}: {theirs[worst]!r} vs {ours[worst]!r} "
            f"(|diff| {diff:.2e} > {PARITY_TOLERANCE:g}): not the same model"
        )
    return diff


LEAN_ROUTE = "LeanInfer.answer + finish: the whole route (serving/lean_http.py)"


def profile_one_request(bundle_dir: Path, one: list[dict], n: int = 3000) -> list[tuple[str, float]]:
    """Where one single-row v2 JSON request spends its time inside the server process (µs, median).

    The stages are the functions the default server runs for it (serving/lean_http.py calls
    ``LeanInfer.answer``: decode and validate in one pass, score, encode; writes the answer;
    then ``LeanInfer.finish``: counters, stage histograms, payload log) on a loaded model;
    the last two rows call kserve's whole ASGI app (middleware, routing, then the lean route as
    ``--no-lean_http`` serves it, or kserve's generic one) without the socket.
    """
    import asyncio
    import logging

    from kserve import ModelServer
    from kserve.model_server import app
    from kserve.protocol.rest.server import RESTServer

    from serving import fast_route, http_edge
    from serving.model import ChurnModel

    model = ChurnModel("churn", str(bundle_dir), load_settings())
    model.load()
    raw = orjson.dumps(v2_request(FEATURES, one))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    bundle, validator, _ = model._state
    typed = validator.v2_body(raw)
    if typed is None:
        raise RuntimeError("the benchmark row does not take the one-pass validation the server uses")
    head, batch = fast_route.typed_head(typed[0], None), typed[1]
    scored = model.score(lambda v: v.v2_body(raw)[1])
    route = fast_route.LeanInfer(app, model)

    def stage(fn) -> float:
        for _ in range(200):
            fn()
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
        return statistics.median(samples) * 1e6

    server = ModelServer(http_port=free_port(), enable_grpc=False)  # (re)configures logging
    logging.getLogger("kserve.trace").setLevel(logging.WARNING)  # as the server runs by default
    server.register_model(model)
    http_edge.install(app, 16 * 1024 * 1024)  # as serving/__main__.py does
    lean = fast_route.install(app, route)
    rest = RESTServer("kserve.model_server:app", server.dataplane, server.model_repository_extension, 0)
    rest.create_application()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/v2/models/churn/infer", "raw_path": b"/v2/models/churn/infer", "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2),
    }  # fmt: skip

    async def receive() -> dict:
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"in-process request answered {message['status']}")

    loop = asyncio.new_event_loop()

    def app_call() -> None:
        loop.run_until_complete(app(dict(scope), receive, send))

    def call_baseline() -> None:
        loop.run_until_complete(asyncio.sleep(0))

    try:
        stages = [
            ("typed decode + validation -> batch (Validator.v2_body, 19 inputs)",
             stage(lambda: validator.v2_body(raw))),
            ("ONNX Runtime run (Bundle.score: one row, the packed graph)",
             stage(lambda: bundle.score(batch))),
            ("score(): validation + run + metrics + payload log",
             stage(lambda: model.score(lambda v: v.v2_body(raw)[1]))),
            ("response: orjson.dumps (fast_route.encode_response)",
             stage(lambda: fast_route.encode_response("churn", scored, head.outputs))),
            ("LeanInfer.answer: what comes before the answer is written",
             stage(lambda: route.answer(headers, raw))),
            (LEAN_ROUTE, stage(lambda: route.finish(route.answer(headers, raw)))),
            ("(event-loop round trip, subtracted from the app calls)", stage(call_baseline)),
        ]  # fmt: skip
        loop_cost = stages[-1][1]
        stages.append(("the lean route in kserve's ASGI app (--no-lean_http)", stage(app_call) - loop_cost))
        app.router.routes.remove(lean)
        stages.append(("kserve's generic route, same app (the path before)", stage(app_call) - loop_cost))
    finally:
        loop.close()
    return stages


# --------------------------------------------------------------------------------------- main
@dataclass
class Round:
    """One measurement of every server: the load average around it, the machine's CPU steal, results."""

    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    steal_pct: float
    results: dict


def train_benchmark_model(work: Path):
    """The serving benchmarks' model (``run_steps``' result): XGBoost on 4,000 synthetic rows, seed 7,
    search budget 2, registered in a throwaway CHURN_HOME under ``work``, never the user's."""
    from components.params import PipelineParams
    from components.steps import run_steps

    print("training the benchmark model (XGBoost bundle) ...", file=sys.stderr, flush=True)
    params = PipelineParams(rows=4000, seed=7, search_budget=2, cv_folds=3)
    return run_steps(params, work / "model", load_settings({"CHURN_HOME": str(work / "home")}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", type=Path, help="bundle dir (model.onnx + metadata.json)")
    parser.add_argument("--rows", type=Path, help="Parquet of held-out rows (raw feature columns)")
    parser.add_argument("--sklearn", type=Path, help="joblib of the equivalent scikit-learn pipeline")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each timed phase")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="measure every server this many times (0: the head-to-head only)",
    )
    parser.add_argument(
        "--pairs", type=int, default=8, help="interleaved (this server, Triton-ORT) pairs; 0: no head-to-head"
    )
    parser.add_argument("--pair-seconds", type=float, default=1.5, help="duration of each head-to-head phase")
    parser.add_argument("--skip-mlserver", action="store_true")
    parser.add_argument("--skip-triton", action="store_true", help="do not start Triton-ORT")
    parser.add_argument("--feature-store-only", action="store_true",
                        help="only the transformer + predictor on Redis vs full-row rows")  # fmt: skip
    args = parser.parse_args()
    given = [flag for flag in ("bundle", "rows", "sklearn") if getattr(args, flag) is not None]
    if given and len(given) < 3:  # one trained run's three files, or none (then one is trained)
        missing = ", ".join(f"--{f}" for f in ("bundle", "rows", "sklearn") if f not in given)
        parser.error(f"--bundle, --rows and --sklearn go together (one trained run): {missing} missing")
    for flag in given:
        if not getattr(args, flag).exists():
            parser.error(f"--{flag} {getattr(args, flag)}: no such file or directory")

    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    if args.bundle is None:
        made = train_benchmark_model(work)
        args.bundle, args.rows, args.sklearn = made.bundle, made.test, made.model
    frame = pd.read_parquet(args.rows)[[f.name for f in FEATURES]]
    many = pd.concat([frame] * (1000 // len(frame) + 1)).head(1000).to_dict("records")
    one = many[:1]
    load_before = os.getloadavg()

    targets, servers = [], []
    path = "/v2/models/churn/infer"
    v2_json = json_body(lambda r: v2_request(FEATURES, r))
    if args.feature_store_only:
        ours = start_model_server(args.bundle, work / "ours.log")
        try:
            id_rows = measure_id_scoring(ours.http_port, work, args.seconds)
        finally:
            ours.stop()
        report_id_scoring(id_rows, load_before, os.getloadavg())
        return
    rounds, parity, triton_skipped = [], None, "--skip-triton" if args.skip_triton else ""
    try:
        ours = start_model_server(args.bundle, work / "ours.log")
        servers.append(ours)
        ours_session = ours.process.pid
        targets.append(Target(OURS, ours.http_port, path, v2_json, ours_session))
        if not args.skip_triton:
            try:
                triton, port = start_triton(Path(args.bundle) / MODEL_FILE, work)
            except TritonUnavailable as exc:
                triton_skipped = str(exc)
                print(triton_skipped, file=sys.stderr, flush=True)
            else:
                servers.append(triton)
                # The very same pre-encoded body as for our server's JSON route.
                targets.append(Target(TRITON, port, path, v2_json, triton.process.pid))
                parity = same_model(ours.http_port, port, many)
                print(f"Triton-ORT and this server: max |probability diff| {parity:.2e} on {len(many)} rows",
                      file=sys.stderr, flush=True)  # fmt: skip
        generic = start_model_server(args.bundle, work / "generic.log", extra_args=["--no-lean_infer_route"])
        servers.append(generic)
        targets.append(Target(GENERIC, generic.http_port, path, v2_json, generic.process.pid))
        targets.append(
            Target(OURS_BINARY, ours.http_port, path, lambda r: v2_binary_request(FEATURES, r), ours_session)
        )
        if not args.skip_mlserver:
            mlserver, port = start_mlserver(args.sklearn, work)
            servers.append(mlserver)
            targets.append(Target(MLSERVER, port, path, json_body(mlserver_body), mlserver.process.pid))
        fastapi, port = start_fastapi(args.sklearn, work)
        servers.append(fastapi)
        targets.append(
            Target(FASTAPI, port, "/predict", json_body(lambda r: {"instances": r}), fastapi.process.pid)
        )
        for n in range(args.rounds):
            # Every other round in reverse order, so drifting machine load does not favour one server.
            order = targets if n % 2 == 0 else targets[::-1]
            before, results, ticks = os.getloadavg(), {}, proc_stats.machine_ticks()
            for target in order:
                print(f"round {n + 1}/{args.rounds}: {target.name} ...", file=sys.stderr, flush=True)
                results[target.name] = measure(target, one, many, args.seconds)
                print(json.dumps({target.name: results[target.name]}), file=sys.stderr, flush=True)
            results = {t.name: results[t.name] for t in targets}  # the table's order, whatever the run's
            results[FLOOR] = in_process_floor(args.bundle, one, many, args.seconds)
            steal, total = (b - a for a, b in zip(ticks, proc_stats.machine_ticks(), strict=True))
            rounds.append(Round(before, os.getloadavg(), 100 * steal / max(total, 1), results))
        head_to_head = None
        by_name = {t.name: t for t in targets}
        if TRITON in by_name and args.pairs > 0:
            print(f"head to head: {args.pairs} interleaved pairs ...", file=sys.stderr, flush=True)
            before, ticks = os.getloadavg(), proc_stats.machine_ticks()
            pairs = paired.interleave(
                lambda: measure(by_name[OURS], one, many, args.pair_seconds),
                lambda: measure(by_name[TRITON], one, many, args.pair_seconds),
                args.pairs,
            )
            steal, total = (b - a for a, b in zip(ticks, proc_stats.machine_ticks(), strict=True))
            head_to_head = (pairs, before, os.getloadavg(), 100 * steal / max(total, 1))
        id_rows = measure_id_scoring(ours.http_port, work, args.seconds)
    finally:
        for server in servers:
            server.stop()
    profile = profile_one_request(args.bundle, one) if rounds or head_to_head else None
    for n, r in enumerate(rounds, 1):
        print(f"\n===== round {n} of {len(rounds)} =====")
        report(r.results, profile if n == len(rounds) else None, r.load_before, r.load_after, triton_skipped,
               r.steal_pct)  # fmt: skip
    report_goals_by_round(rounds)
    if head_to_head is not None:
        pairs, before, after, steal = head_to_head
        report_head_to_head(pairs, args.pair_seconds, before, after, steal)
        if not rounds:  # the rounds' report shows the profile otherwise
            report_profile(profile, paired.values(pairs, "p50").median)
    if parity is not None:
        print(f"\nsame model: Triton-ORT's probabilities vs this server's on the same {len(many)} rows: "
              f"max |diff| {parity:.2e} (<= {PARITY_TOLERANCE:g})")  # fmt: skip
    print(f"\nwhole run: load average before {fmt_load(load_before)}, after {fmt_load(os.getloadavg())}"
          f" on {os.cpu_count()} cores")  # fmt: skip
    report_id_scoring(id_rows, load_before, os.getloadavg())


# ------------------------------------------------------------------------- id-only scoring
ID_CUSTOMERS = 2000  # a history of this many customers (6 months ending this month) in Redis


def measure_id_scoring(predictor_port: int, work: Path, seconds: float) -> dict:
    """p50/p99 of the transformer (ids) and of the predictor (the same rows in full), 1 and 100 rows."""
    from components import feature_store, history
    from components.schema import ID_COLUMN
    from tests.support.feature_store import fill_store, start_transformer
    from tests.support.redis_server import start_redis

    print(
        "id-only scoring: Redis, history, feast apply + materialize, transformer ...",
        file=sys.stderr,
        flush=True,
    )
    redis = start_redis(work / "redis")
    transformer = None
    try:
        filled = fill_store(work / "feast", redis.connection, customers=ID_CUSTOMERS)
        hist = filled.history
        active = hist.account.loc[hist.account[history.TIMESTAMP] == hist.end, [ID_COLUMN]].head(100)
        rows = feature_store.historical_features(filled.store, active.assign(**{history.AS_OF: hist.end}))
        ids = rows[ID_COLUMN].tolist()
        full = rows[[f.name for f in FEATURES]].to_dict("records")
        transformer = start_transformer(filled.settings, predictor_port, work / "transformer.log")
        out = {}
        for n in (1, 100):
            by_id = Client(transformer.http_port, "/v1/models/churn:predict",
                           orjson.dumps({"customer_id": ids[:n]}), {})  # fmt: skip
            direct = Client(
                predictor_port, "/v2/models/churn/infer", orjson.dumps(v2_request(FEATURES, full[:n])), {}
            )
            for name, client in ((f"transformer + predictor, {n} id(s)", by_id),
                                 (f"predictor, the same {n} full row(s)", direct)):  # fmt: skip
                latencies = sequential(client, seconds).latencies
                out[name] = {
                    "n": n,
                    "p50": pct(latencies, 50),
                    "p99": pct(latencies, 99),
                    "requests": len(latencies),
                }
                print(json.dumps({name: out[name]}), file=sys.stderr, flush=True)
        return out
    finally:
        if transformer is not None:
            transformer.stop()
        redis.stop()


def report_id_scoring(rows: dict, load_before, load_after) -> None:
    print(f"\nid-only scoring (Feast online store on Redis, {ID_CUSTOMERS} customers), one client;"
          f" load average before {' '.join(f'{x:.2f}' for x in load_before)}, "
          f"after {' '.join(f'{x:.2f}' for x in load_after)} on {os.cpu_count()} cores")  # fmt: skip
    print(f"{'request':42} {'p50':>9} {'p99':>9} {'requests':>9}")
    for name, r in rows.items():
        print(f"{name:42} {r['p50']:7.3f}ms {r['p99']:7.3f}ms {r['requests']:9d}")
    for n in (1, 100):
        ids = rows[f"transformer + predictor, {n} id(s)"]
        full = rows[f"predictor, the same {n} full row(s)"]
        print(f"overhead of id-only scoring, {n:>3} id(s): p50 {ids['p50'] - full['p50']:+.3f} ms "
              f"({ids['p50'] / full['p50']:.1f}x), p99 {ids['p99'] - full['p99']:+.3f} ms")  # fmt: skip


def fmt_load(load: tuple[float, float, float]) -> str:
    return " ".join(f"{x:.2f}" for x in load)


# Issue 15's goals: (label, result key, goal, met) against Triton-ORT, and the absolute CPU ceiling.
RATIO_GOALS: tuple[tuple[str, str, str, Callable[[float], bool]], ...] = (
    ("1-row p50 vs Triton-ORT", "p50", "<= 1.0x", lambda ratio: ratio <= 1),
    ("8-client req/s vs Triton-ORT", "rps8", ">= 1.0x", lambda ratio: ratio >= 1),
    ("1000-row rows/s vs Triton-ORT", "rows_s", ">= 1.0x", lambda ratio: ratio >= 1),
)
CPU_CEILING_US = 250
CPU_GOALS = (
    ("server CPU per 1-row request, 1 client", "cpu1_us"),
    ("server CPU per 1-row request, 8 clients", "cpu8_us"),
)


def issue_15_goals(results: dict) -> list[tuple[str, str, str, bool]]:
    """``(label, reached, goal, met)`` for each of issue 15's goals measurable in ``results``.

    The three ratios need Triton-ORT in the same round; the CPU ceiling is absolute.
    """
    ours, triton = results[OURS], results.get(TRITON)
    goals = []
    if triton is not None:
        for label, key, goal, met in RATIO_GOALS:
            ratio = ours[key] / triton[key]
            goals.append((label, f"{ratio:8.2f}x", goal, met(ratio)))
    for label, key in CPU_GOALS:
        goals.append((label, f"{ours[key]:7.0f}µs", f"<= {CPU_CEILING_US} µs", ours[key] <= CPU_CEILING_US))
    return goals


def head_to_head_goals(pairs: list[tuple[dict, dict]]) -> list[tuple[str, str, str, str, bool]]:
    """``(label, median, range, goal, met)`` of issue 15's goals over interleaved (ours, Triton) pairs:
    each ratio is the median of the pairs' ratios, the CPU the median of our per-pair CPU; ``met``
    judges the median."""
    goals = []
    for label, key, goal, met in RATIO_GOALS:
        r = paired.ratios(pairs, key)
        goals.append((label, f"{r.median:.2f}x", f"{r.low:.2f}-{r.high:.2f}x", goal, met(r.median)))
    for label, key in CPU_GOALS:
        for side, who in ((0, ""), (1, "  (Triton-ORT's own) ")):
            v = paired.values(pairs, key, side)
            goal, met = (f"<= {CPU_CEILING_US} µs", v.median <= CPU_CEILING_US) if side == 0 else ("", True)
            goals.append((who + label, f"{v.median:.0f}µs", f"{v.low:.0f}-{v.high:.0f}µs", goal, met))
    return goals


def report_head_to_head(pairs: list[tuple[dict, dict]], seconds: float, before, after, steal: float) -> None:
    """The head-to-head table: issue 15's goals judged on the medians of interleaved pairs."""
    print(f"\nissue 15 goals, head to head: {len(pairs)} interleaved pairs (ABBA order) of this server "
          f"and Triton-ORT, {seconds:g} s per phase; load {before[0]:.2f} -> {after[0]:.2f}, "
          f"steal {steal:.1f}%")  # fmt: skip
    print(f"{'goal':62} {'median':>8} {'range over the pairs':>22}   {'goal':10} met (median)")
    for label, median, spread, goal, met in head_to_head_goals(pairs):
        verdict = ("yes" if met else "no") if goal else ""
        print(f"{label:62} {median:>8} {spread:>22}   {goal:10} {verdict}")


def triton_goals(results: dict, skipped: str) -> list[tuple[str, str, str]]:
    """The target rows of issue 15 for one round (n/a, with why, when Triton was skipped)."""
    rows = [(label, reached, goal) for label, reached, goal, _ in issue_15_goals(results)]
    if TRITON not in results:
        return [("vs Triton-ORT", "n/a", skipped or "not measured"), *rows]
    rows.append(("  (Triton-ORT: server CPU per 1-row request, 8 clients)",
                 f"{results[TRITON]['cpu8_us']:7.0f}µs", ""))  # fmt: skip
    return rows


def report_goals_by_round(rounds: list[Round]) -> None:
    """Issue 15's goals side by side for every round, and whether each was met in all of them."""
    if not rounds:
        return  # --rounds 0: the head-to-head only
    loads = ", ".join(
        f"round {n}: load {r.load_before[0]:.2f} -> {r.load_after[0]:.2f}, steal {r.steal_pct:.1f}%"
        for n, r in enumerate(rounds, 1)
    )
    print(f"\nissue 15 goals, round by round ({loads}):")
    per_round = [issue_15_goals(r.results) for r in rounds]
    header = " ".join(f"{f'round {n}':>10}" for n in range(1, len(rounds) + 1))
    print(f"{'goal':42} {header}   {'goal':10} met in every round")
    for i, (label, _, goal, _) in enumerate(per_round[0]):
        cells = " ".join(f"{r[i][1]:>10}" for r in per_round)
        print(f"{label:42} {cells}   {goal:10} {'yes' if all(r[i][3] for r in per_round) else 'no'}")


def report(
    results: dict,
    profile: list[tuple[str, float]] | None,
    load_before,
    load_after,
    triton_skipped: str = "",
    steal: float | None = None,
) -> None:
    """One round: the table, server CPU and memory, the targets reached; the profile when given."""
    print(f"\nload average (1/5/15 min) before: {fmt_load(load_before)}, "
          f"after: {fmt_load(load_after)} on {os.cpu_count()} cores"
          + (f"; CPU steal (hypervisor) {steal:.1f}% of the round" if steal is not None else ""))  # fmt: skip
    print(f"\n{'server':28} {'1-row p50':>10} {'p99':>8} {'req/s':>8} | {'8 clients p50':>13} {'p99':>8} "
          f"{'req/s':>8} | {'1000-row rows/s':>15}")  # fmt: skip
    for name, r in results.items():
        eight = (
            f"{r['p50_8']:10.3f}ms {r['p99_8']:7.2f}ms {r['rps8']:8.0f}"
            if "rps8" in r
            else f"{'-':>13} {'-':>8} {'-':>8}"
        )
        print(
            f"{name:28} {r['p50']:8.3f}ms {r['p99']:6.2f}ms {r['rps1']:8.0f} | {eight} | {r['rows_s']:15,.0f}"
        )
    print(f"\n{'server CPU per 1-row request':28} {'1 client':>10} {'8 clients':>10} | "
          f"{'8-client errors':>15} | {'RSS before -> after 8 clients':>29}")  # fmt: skip
    for name, r in results.items():
        if "rps8" in r:
            rss = f"{r['rss_before_mb']:10.1f} MB -> {r['rss_after_mb']:7.1f} MB"
            print(f"{name:28} {r['cpu1_us']:8.0f}µs {r['cpu8_us']:8.0f}µs | {r['errors8']:15d} | {rss:>29}")
        else:
            print(f"{name:28} {r['cpu1_us']:8.0f}µs {'-':>10} | {'-':>15} | (in the benchmark's process)")
    ours, floor, fastapi, ml = results[OURS], results[FLOOR], results[FASTAPI], results.get(MLSERVER)
    best_rows = max(ours["rows_s"], results[OURS_BINARY]["rows_s"])
    generic = results[GENERIC]
    rows = [
        *triton_goals(results, triton_skipped),
        ("own overhead (p50 - in-process floor)", f"{ours['p50'] - floor['p50']:8.3f}ms", "<= 0.8 ms"),
        ("1000-row rows/s vs in-process ORT (JSON)", f"{ours['rows_s'] / floor['rows_s']:8.2f}x", ">= 0.6x"),
        ("1000-row rows/s vs in-process ORT (best)", f"{best_rows / floor['rows_s']:8.2f}x", ">= 0.6x"),
        ("1000-row rows/s vs FastAPI+pandas (JSON)", f"{ours['rows_s'] / fastapi['rows_s']:8.2f}x", ">= 3x"),
        ("lean vs kserve generic route: 1-row p50", f"{ours['p50'] / generic['p50']:8.2f}x", ""),
        ("lean vs kserve generic route: 8-client req/s", f"{ours['rps8'] / generic['rps8']:8.2f}x", ""),
        ("lean vs kserve generic route: 1000-row rows/s", f"{ours['rows_s'] / generic['rows_s']:8.2f}x", ""),
    ]
    if ml:
        rows += [
            ("single-row p50 vs MLServer", f"{ours['p50'] / ml['p50']:8.3f}x", "<= 0.1x"),
            ("8-client req/s vs MLServer", f"{ours['rps8'] / ml['rps8']:8.1f}x", ">= 20x"),
        ]
    print(f"\n{'target':56} {'reached':>10}   goal")
    for label, reached, goal in rows:
        print(f"{label:56} {reached:>10}   {goal}")
    if profile is not None:
        report_profile(profile, ours["p50"])


def report_profile(profile: list[tuple[str, float]], p50_ms: float) -> None:
    """One request's stages inside the server process, and what the HTTP layer adds to ``p50_ms``."""
    print("\none single-row v2 JSON request inside the server process (median µs):")
    for label, micros in profile:
        print(f"  {label:62} {micros:8.1f}")
    print(f"  {'HTTP layer + kernel + client (this server p50 - the whole route)':62} "
          f"{p50_ms * 1000 - dict(profile)[LEAN_ROUTE]:8.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
