"""``python -m serving --model_name churn --model_dir DIR|s3://...|models:/NAME@ALIAS``

KServe-style entry point: kserve's own argument parser plus this predictor's flags. The server
comes up at once on ``--host`` (loopback unless told otherwise; the image passes 0.0.0.0); the
model loads in the background (retrying with backoff), and readiness (``/v2/health/ready``,
``/v2/models/{name}/ready``) stays false until it has loaded. "Ready" is printed once the model is
loaded AND the port accepts connections; a port already in use is one line and exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import socket
import sys
import threading

from kserve import model_server
from kserve.logging import logger
from kserve.model_server import app as kserve_app
from kserve.protocol.dataplane import DataPlane

from components.config import load_settings
from serving import fast_route, http_edge, lean_http, metadata_route, request_metrics
from serving.bound_server import BoundModelServer
from serving.examples import curl_example
from serving.model import ChurnModel
from serving.payload_log import PayloadLog

parser = argparse.ArgumentParser(parents=[model_server.parser], description=__doc__)
parser.add_argument(
    "--model_dir",
    default="/mnt/models",
    help="bundle directory or storage URI (s3://..., models:/NAME@ALIAS)",
)
parser.add_argument(
    "--host",
    default="127.0.0.1",
    help="address the REST server binds (0.0.0.0: every interface, as in the image)",
)
parser.add_argument("--max_batch_rows", type=int, default=10_000, help="largest batch accepted per request")
parser.add_argument(
    "--max_body_bytes", type=int, default=16 * 1024 * 1024, help="largest request body accepted (413 beyond)"
)
parser.add_argument(
    "--max_request_id_chars", type=int, default=256, help="longest request id accepted (413 beyond)"
)
parser.add_argument(
    "--payload_log_uri", default="", help="folder or s3:// prefix for the Parquet payload log (empty: off)"
)
parser.add_argument("--payload_log_queue", type=int, default=1024, help="requests queued before dropping")
parser.add_argument(
    "--payload_log_flush_rows", type=int, default=10_000, help="rows per Parquet file (at most)"
)
parser.add_argument("--payload_log_flush_seconds", type=float, default=10.0, help="flush at least this often")
parser.add_argument("--ort_threads", type=int, default=1, help="ONNX Runtime intra-op threads")
parser.add_argument(
    "--load_retry_max_seconds", type=float, default=60.0, help="longest wait between load attempts"
)
parser.add_argument(
    "--lean_infer_route",
    action=argparse.BooleanOptionalAction,
    default=True,
    help="serve POST /v2/models/NAME/infer with the lean route (serving/fast_route.py) in front of kserve's",
)
parser.add_argument(
    "--lean_http",
    action=argparse.BooleanOptionalAction,
    default=True,
    help="answer the lean route inside uvicorn's HTTP protocol, below ASGI (serving/lean_http.py)",
)
# A log line per request costs ~10 % of a one-row request; Prometheus has the latencies anyway.
parser.set_defaults(enable_latency_logging=False)


class ModelsReadyDataPlane(DataPlane):
    """Server readiness = every registered model is ready (kserve's default says ready at once)."""

    async def ready(self) -> bool:
        models = self.model_registry.get_models()
        return bool(models) and all([await self.model_registry.is_model_ready(n) for n in models])


def use_uvloop(event_loop: str) -> None:
    """Honour ``--event-loop`` for the whole server.

    kserve runs its servers under ``asyncio.run``, so uvicorn's loop setting never applies and
    the stock asyncio loop serves every request; uvloop takes ~0.1 ms off each one here.
    """
    if event_loop in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if event_loop == "uvloop":
                raise
            return
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        # kserve calls asyncio.get_event_loop() before asyncio.run; uvloop >= 0.22 raises there
        # ("There is no current event loop") unless one is set.
        asyncio.set_event_loop(asyncio.new_event_loop())


def port_in_use(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (e.g. "address already in use"), or None if it can."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            return "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
    return None


def base_url(host: str, port: int) -> str:
    """The URL a local client uses for a server bound to ``host`` (every interface: loopback)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def wait_listening(host: str, port: int, stop: threading.Event) -> bool:
    """Until ``host:port`` accepts a TCP connection (True), or ``stop`` is set (False)."""
    target = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    while not stop.is_set():
        try:
            with socket.create_connection((target, port), timeout=1):
                return True
        except OSError:
            stop.wait(0.05)
    return False


def load_until_ready(model: ChurnModel, max_wait: float, stop: threading.Event) -> None:
    """Load in the background, backing off on failure (a bad bundle is logged, never a crash loop)."""
    wait = 1.0
    while not model.load():
        if stop.wait(wait):
            return
        wait = min(wait * 2, max_wait)


def announce(model: ChurnModel, host: str, port: int, stop: threading.Event) -> None:
    """Log the address once it listens; print the Ready line once the model is loaded too."""
    if not wait_listening(host, port, stop):
        return
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    logger.info("listening on %s (REST)", url)
    while not model.ready:
        if stop.wait(0.05):
            return
    print(
        f"\nReady. Try:\n  {curl_example(model.bundle.features, model.name, base_url(host, port))}\n",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    args = parser.parse_args(argv)
    if args.workers != 1:
        # kserve's multiprocess mode pickles the model for each worker; an ONNX Runtime session (and
        # the model's locks) do not pickle, and the per-process metrics would need aggregating.
        parser.error(f"--workers {args.workers}: this server runs one process (scale with replicas)")
    busy = port_in_use(args.host, args.http_port)
    if busy:
        print(
            f"error: cannot listen on {args.host}:{args.http_port}: {busy} (pass --http_port)",
            file=sys.stderr,
        )
        sys.exit(1)
    settings = load_settings()
    payload_log = (
        PayloadLog(
            args.payload_log_uri,
            settings,
            args.payload_log_queue,
            args.payload_log_flush_rows,
            args.payload_log_flush_seconds,
        )
        if args.payload_log_uri
        else None
    )
    model = ChurnModel(
        args.model_name,
        args.model_dir,
        settings,
        args.max_batch_rows,
        payload_log,
        args.ort_threads,
        args.max_request_id_chars,
    )
    lean = fast_route.LeanInfer(kserve_app, model) if args.lean_infer_route else None
    server = BoundModelServer(
        args.host,
        http_protocol=lean_http.protocol(lean, args.max_body_bytes) if lean and args.lean_http else None,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=args.workers,
        max_threads=args.max_threads,
        max_asyncio_workers=args.max_asyncio_workers,
        enable_grpc=args.enable_grpc,
        enable_latency_logging=args.enable_latency_logging,
        event_loop=args.event_loop,
        timeout_keep_alive=args.timeout_keep_alive,
    )
    if not args.enable_latency_logging:
        for name in ("kserve.trace", "uvicorn.access"):
            logging.getLogger(name).setLevel(logging.WARNING)
    http_edge.install(kserve_app, args.max_body_bytes)
    metadata_route.install(kserve_app, model)
    if lean is not None:
        fast_route.install(kserve_app, lean)
    request_metrics.install(kserve_app, model)  # outermost: times the whole request
    use_uvloop(args.event_loop)
    server.dataplane = ModelsReadyDataPlane(server.registered_models)
    # Registered before it is ready, so readiness reports it (kserve refuses to start otherwise).
    server.register_model(model)
    model.enable_latency_logging = args.enable_latency_logging
    stop = threading.Event()
    threading.Thread(
        target=load_until_ready, args=(model, args.load_retry_max_seconds, stop), daemon=True
    ).start()
    threading.Thread(target=announce, args=(model, args.host, args.http_port, stop), daemon=True).start()
    try:
        server.start([])
    finally:
        stop.set()
        if payload_log is not None:
            payload_log.close()


if __name__ == "__main__":
    main()
